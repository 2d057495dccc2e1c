//! `faasload load`, `faasload deploy` and `faasload report`: read and validate the trace
//! (nothing is sent if it has a defect), resolve each user's endpoint, optionally start
//! the embedded platform and monitor, deploy, replay, store and report.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use super::target::{TargetArgs, backend, endpoints, http_options, monitor_socket, runtime};
use crate::embedded::Embedded;
use faasload_loader::RowSink;
use faasload_loader::openwhisk::RetryOptions;
use faasload_loader::openwhisk::{OpenWhiskOptions, deploy_all};
use faasload_loader::{ReplayOptions, replay};
use faasload_results::report::Report;
use faasload_results::store::{FunctionMeta, LoadMeta, LoadStatus, RunRow, Store};
use faasload_trace::Trace;

/// Arguments of `faasload load`.
#[derive(clap::Args, Debug)]
pub(crate) struct LoadArgs {
    /// Trace: a YAML file or an original FaaSLoad trace directory.
    pub trace: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Deploy the trace's actions first (always done with --embedded).
    #[arg(long)]
    pub deploy: bool,
    /// Results store URL: sqlite://file, postgres://..., mysql://...
    #[arg(long, default_value = "sqlite://faasload-results.db")]
    pub store: String,
    /// Do not store rows (report only).
    #[arg(long)]
    pub no_store: bool,
    /// The monitor's query socket (default: /run/faasload/query.sock when it exists).
    #[arg(long)]
    pub monitor_socket: Option<PathBuf>,
    /// Do not ask a monitor (with --embedded: do not start one).
    #[arg(long)]
    pub no_monitor: bool,
    /// Invocations in flight at once; beyond, they wait on the client (time recorded).
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
    /// Sender threads, each releasing its share of the invocations on its own
    /// connections (default: 1).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub senders: Option<u16>,
    /// Nice value of the sender threads (-20..=19): raised above the rest by default so
    /// that a busy host does not delay sends; 0 leaves them at the default priority.
    /// Below 0 needs root (CAP_SYS_NICE); refused, the run goes on with a warning.
    #[arg(long, default_value_t = faasload_loader::DEFAULT_SENDER_NICE,
          value_parser = clap::value_parser!(i32).range(-20..=19), allow_hyphen_values = true)]
    pub sender_nice: i32,
    /// Non-blocking invokes (202, then the record is polled).
    #[arg(long)]
    pub non_blocking: bool,
    /// Retries of throttled/failed sends (off by default: every outcome is recorded).
    #[arg(long, default_value_t = 0)]
    pub retries: u32,
    /// Client timeout of one request, in seconds.
    #[arg(long, default_value_t = 70.0)]
    pub request_timeout_s: f64,
    /// After SIGINT/SIGTERM, how long in-flight invocations may finish, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub grace_s: f64,
    /// Write an HdrHistogram interval log of latency here.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Validate the trace and walk its whole schedule in order without sending anything
    /// (nothing is started or deployed); print the count per user and function and the
    /// time span.
    #[arg(long)]
    pub dry_run: bool,
}

/// Arguments of `faasload deploy`.
#[derive(clap::Args, Debug)]
pub(crate) struct DeployArgs {
    /// Trace whose actions to create or update in each user's namespace.
    pub trace: PathBuf,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `faasload report`.
#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// Results store URL (as given to `faasload load --store`).
    #[arg(default_value = "sqlite://faasload-results.db")]
    pub store: String,
    /// Which load (default: the last one).
    #[arg(long)]
    pub load: Option<i64>,
    /// Also write the load's HTML report (self-contained: SVG charts and the
    /// percentile tables) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `faasload deploy`.
pub(crate) fn deploy(a: DeployArgs) -> Result<()> {
    let trace = faasload_trace::load(&a.trace)?;
    runtime()?.block_on(async {
        let eps = endpoints(&trace, &a.target, None)?;
        let b = backend(
            &a.target,
            OpenWhiskOptions {
                http: http_options(&a.target, Duration::from_secs(70)),
                ..OpenWhiskOptions::default()
            },
        )?;
        let r = deploy_all(b.as_ref(), &eps, &trace).await?;
        println!("deployed {} actions", r.deployed.len());
        Ok(())
    })
}

/// `faasload report`.
pub(crate) fn report(a: ReportArgs) -> Result<()> {
    match &a.html {
        None => print!(
            "{}",
            faasload_results::report::report_cli(&a.store, a.load)?
        ),
        Some(html) => {
            print!(
                "{}",
                faasload_results::report::report_cli_html(&a.store, a.load, html)?
            );
            eprintln!("HTML report written to {}", html.display());
        }
    }
    Ok(())
}

/// The report, shared between the recorder (as a sink) and the end of the run.
struct SharedReport(Arc<Mutex<Report>>);

impl RowSink for SharedReport {
    fn row(&mut self, r: &RunRow) {
        if let Ok(mut rep) = self.0.lock() {
            rep.record(r);
        }
    }
}

/// `faasload load`.
pub(crate) fn load(a: LoadArgs) -> Result<()> {
    // Everything about the trace is checked before anything is started or sent.
    let trace = Arc::new(faasload_trace::load(&a.trace)?);
    if a.dry_run {
        let d = faasload_loader::walk_dry_run(&trace)?;
        print!("{}", faasload_loader::render_dry_run(&trace, &d));
        return Ok(());
    }
    runtime()?.block_on(load_async(a, trace))
}

async fn load_async(a: LoadArgs, trace: Arc<Trace>) -> Result<()> {
    let emb = if a.target.embedded {
        Some(Embedded::start(&trace, !a.no_monitor).await?)
    } else {
        None
    };
    let result = run_load(&a, trace, emb.as_ref()).await;
    if let Some(e) = emb {
        e.stop().await?;
    }
    result
}

async fn run_load(a: &LoadArgs, trace: Arc<Trace>, emb: Option<&Embedded>) -> Result<()> {
    let eps = endpoints(&trace, &a.target, emb)?;
    let ow = OpenWhiskOptions {
        http: http_options(
            &a.target,
            Duration::from_secs_f64(a.request_timeout_s.max(0.001)),
        ),
        blocking: !a.non_blocking,
        retries: RetryOptions {
            max: a.retries,
            ..RetryOptions::default()
        },
        ..OpenWhiskOptions::default()
    };
    let b = backend(&a.target, ow)?;
    if a.deploy || emb.is_some() {
        let r = deploy_all(b.as_ref(), &eps, &trace).await?;
        tracing::info!("deployed {} actions", r.deployed.len());
    }
    let monitor = monitor_socket(a.no_monitor, a.monitor_socket.as_ref(), emb);

    let store = if a.no_store {
        None
    } else {
        Some(Store::open(&a.store).await.with_context(|| {
            format!(
                "opening the results store {}",
                faasload_results::store::redact(&a.store)
            )
        })?)
    };
    let start_epoch_ms = faasload_os::clock::epoch_ns() / 1_000_000;
    let (load_id, writer, writer_task) = match &store {
        Some(s) => {
            let mut meta = LoadMeta::new(trace.origin.clone(), start_epoch_ms);
            meta.seed = Some(trace.seed);
            meta.planned = trace.total;
            meta.functions = trace
                .functions
                .iter()
                .map(|f| FunctionMeta {
                    name: f.name.clone(),
                    runtime: Some(f.kind.clone()),
                    image: None,
                    parameters: None,
                    input_kind: f.input_kind.clone(),
                })
                .collect();
            let id = s.begin_load(&meta).await?;
            let (tx, task) = s.writer(id, Duration::from_secs(1));
            (Some(id), Some(tx), Some(task))
        }
        None => (None, None, None),
    };

    let report = Arc::new(Mutex::new(Report::new()));
    let opts = ReplayOptions {
        max_in_flight: a.max_in_flight,
        senders: a
            .senders
            .map_or_else(faasload_loader::default_senders, usize::from),
        sender_nice: a.sender_nice,
        monitor,
        grace: Duration::from_secs_f64(a.grace_s.max(0.0)),
        quiet: a.quiet,
        ..ReplayOptions::default()
    };
    let (res, _sinks) = replay(
        trace.clone(),
        eps,
        b,
        &opts,
        vec![Box::new(SharedReport(report.clone()))],
        writer,
    )
    .await?;

    let mut stored = None;
    let mut html = None;
    if let (Some(s), Some(id), Some(task)) = (&store, load_id, writer_task) {
        let ws = task.await.context("store writer")??;
        stored = Some(ws);
        let status = if res.interrupted {
            LoadStatus::Interrupted
        } else {
            LoadStatus::Completed
        };
        s.end_load(id, status).await?;
        // The HTML report, from the store: a failure is reported, the load stays as it is.
        let path = faasload_results::report::html_report_path(&a.store, id);
        html = Some(
            faasload_results::report::write_html_report(s, &a.store, id, &path)
                .await
                .map(|()| path),
        );
        s.close().await;
    }
    let rep = report
        .lock()
        .map_err(|_| anyhow::anyhow!("report lock poisoned"))?;
    println!("{}", rep.render_text());
    if let Some(p) = &a.hlog {
        rep.write_hlog(p)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    println!(
        "{} invocations in {:.1} s{}{}",
        res.recorder.rows,
        res.wall.as_secs_f64(),
        match (load_id, &stored) {
            (Some(id), Some(w)) => format!(
                ", stored as load {id} in {} ({w:?})",
                faasload_results::store::redact(&a.store)
            ),
            _ => String::new(),
        },
        if res.interrupted {
            format!(", INTERRUPTED ({} abandoned in flight)", res.abandoned)
        } else {
            String::new()
        }
    );
    match html {
        Some(Ok(p)) => println!("HTML report: {}", p.display()),
        Some(Err(e)) => eprintln!("error: writing the HTML report: {e:#}"),
        None => {}
    }
    if res.recorder.not_stored > 0 {
        anyhow::bail!("{} rows could not be stored", res.recorder.not_stored);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::LoadArgs;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let mut all = vec!["faasload", "trace.yaml"];
        all.extend_from_slice(args);
        Cmd::try_parse_from(all).map(|c| c.load)
    }

    #[test]
    fn sender_nice_defaults_to_raised_and_takes_the_nice_range() {
        assert_eq!(
            parse(&[]).unwrap().sender_nice,
            faasload_loader::DEFAULT_SENDER_NICE
        );
        assert_eq!(parse(&["--sender-nice", "-5"]).unwrap().sender_nice, -5);
        assert_eq!(parse(&["--sender-nice", "0"]).unwrap().sender_nice, 0);
        for bad in ["20", "-21", "x"] {
            let e = parse(&["--sender-nice", bad]).expect_err(bad);
            assert!(e.to_string().contains("--sender-nice"), "{e}");
        }
    }
}
