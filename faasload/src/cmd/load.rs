//! `faasload load`, `faasload deploy` and `faasload report`: read and validate the trace
//! (nothing is sent if it has a defect), resolve each user's endpoint, optionally start
//! the embedded platform and monitor, deploy, replay, store (with a heartbeat, and a
//! spill journal for what the store does not take) and report, ending with a summary
//! and an exit status that says how the run went.
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};

use super::exit::{Exit, print};
use super::target::{TargetArgs, backend, endpoints, http_options, monitor_socket, runtime};
use crate::embedded::Embedded;
use faasload_loader::openwhisk::RetryOptions;
use faasload_loader::openwhisk::{OpenWhiskOptions, deploy_all};
use faasload_loader::{MaxFailed, ReplayOptions, ReplayResult, RowSink, RunSummary, replay};
use faasload_results::report::Report;
use faasload_results::store::journal::{self, JOURNAL_VERSION};
use faasload_results::store::{
    FunctionMeta, Heartbeat, JournalEnd, JournalHeader, JournalSpec, LoadMeta, LoadStatus, RunRow,
    Store, StoreError, WriterEnd, WriterStats, redact,
};
use faasload_trace::Trace;

/// Arguments of `faasload load`.
#[derive(clap::Args, Debug)]
pub(crate) struct LoadArgs {
    /// Trace: a YAML file or an original FaaSLoad trace directory.
    pub trace: PathBuf,
    /// Start the embedded platform and the monitor for this run (root), deploy, replay,
    /// report, and clean up.
    #[arg(long)]
    pub embedded: bool,
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
    /// Where the spill journal goes if the store stops taking rows mid-run (full disk,
    /// database gone): `faasload-spill-load<ID>-<START>.jsonl`, loaded later with
    /// `faasload store load-journal`.
    #[arg(long, default_value = ".")]
    pub spill_dir: PathBuf,
    /// Failed invocations (any class but success) the run may have and still exit 0: a
    /// count (5) or a fraction of the invocations made (0.01 or 1%).
    #[arg(long, default_value = "0")]
    pub max_failed: MaxFailed,
    /// The platform's directory object store (as FAASLOAD_STORE_DIR), when this host
    /// can read it: rows get the size of their input object (`input_bytes`). With
    /// --embedded, the embedded platform's.
    #[arg(long, env = "FAASLOAD_STORE_DIR")]
    pub inputs_dir: Option<PathBuf>,
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
        None => print(&faasload_results::report::report_cli(&a.store, a.load)?),
        Some(html) => {
            print(&faasload_results::report::report_cli_html(
                &a.store, a.load, html,
            )?)?;
            eprintln!("HTML report written to {}", html.display());
            Ok(())
        }
    }
}

/// A row sink shared between the recorder and the end of the run.
struct Shared<T>(Arc<Mutex<T>>, fn(&mut T, &RunRow));

impl<T: Send> RowSink for Shared<T> {
    fn row(&mut self, r: &RunRow) {
        if let Ok(mut t) = self.0.lock() {
            (self.1)(&mut t, r);
        }
    }
}

/// `faasload load`: the exit status says how the replay went (see [`Exit`]).
pub(crate) fn load(a: LoadArgs) -> Result<Exit> {
    // Everything about the trace is checked before anything is started or sent.
    let trace = Arc::new(faasload_trace::load(&a.trace)?);
    if a.dry_run {
        let d = faasload_loader::walk_dry_run(&trace)?;
        print(&faasload_loader::render_dry_run(&trace, &d))?;
        return Ok(Exit::Success);
    }
    runtime()?.block_on(load_async(a, trace))
}

async fn load_async(a: LoadArgs, trace: Arc<Trace>) -> Result<Exit> {
    let emb = if a.embedded {
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

/// The store side of a load while it runs.
struct Storing {
    store: Store,
    load_id: i64,
    writer: tokio::task::JoinHandle<WriterEnd>,
    heartbeat: Heartbeat,
}

/// What the store side did, once the load ended.
struct Stored {
    load_id: i64,
    end: WriterEnd,
    /// The HTML report written beside the store, or why it could not be.
    html: Result<PathBuf, String>,
    /// Errors after the rows: ending the load, appending the journal's end line.
    later: Vec<String>,
}

impl Stored {
    fn failed(&self) -> bool {
        self.end.error.is_some() || !self.later.is_empty()
    }
}

async fn run_load(a: &LoadArgs, trace: Arc<Trace>, emb: Option<&Embedded>) -> Result<Exit> {
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

    let storing = if a.no_store {
        None
    } else {
        Some(start_storing(a, &trace).await?)
    };
    let writer = storing.as_ref().map(|s| s.1.clone());
    let storing = storing.map(|s| s.0);

    let report = Arc::new(Mutex::new(Report::new()));
    let summary = Arc::new(Mutex::new(RunSummary::new()));
    let opts = ReplayOptions {
        max_in_flight: a.max_in_flight,
        senders: a
            .senders
            .map_or_else(faasload_loader::default_senders, usize::from),
        sender_nice: a.sender_nice,
        monitor,
        grace: Duration::from_secs_f64(a.grace_s.max(0.0)),
        quiet: a.quiet,
        inputs_dir: emb
            .and_then(|e| e.store_dir.clone())
            .or_else(|| a.inputs_dir.clone()),
        ..ReplayOptions::default()
    };
    let (res, _sinks) = replay(
        trace.clone(),
        eps,
        b,
        &opts,
        vec![
            Box::new(Shared(report.clone(), Report::record)),
            Box::new(Shared(summary.clone(), RunSummary::record)),
        ],
        writer,
    )
    .await?;
    let stored = match storing {
        Some(s) => Some(end_storing(s, &res, &a.store).await),
        None => None,
    };
    finish(a, &res, &report, &summary, stored.as_ref())
}

/// Records the load's start, and starts its writer (spilling to `--spill-dir`) and its
/// heartbeat.
async fn start_storing(
    a: &LoadArgs,
    trace: &Trace,
) -> Result<(Storing, tokio::sync::mpsc::Sender<RunRow>)> {
    let store = Store::open(&a.store)
        .await
        .with_context(|| format!("opening the results store {}", redact(&a.store)))?;
    let start_epoch_ms = faasload_os::clock::epoch_ns() / 1_000_000;
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
    let load_id = store.begin_load(&meta).await?;
    let spec = JournalSpec {
        dir: a.spill_dir.clone(),
        header: JournalHeader {
            version: JOURNAL_VERSION,
            store: redact(&a.store),
            load_id,
            meta,
            reason: String::new(),
        },
    };
    let (tx, writer) = store.writer_spilling(load_id, Duration::from_secs(1), spec);
    let heartbeat = store.keep_alive(load_id);
    Ok((
        Storing {
            store,
            load_id,
            writer,
            heartbeat,
        },
        tx,
    ))
}

/// Waits for the writer, ends the load (and its journal, if rows were spilled). Errors
/// are kept to be reported with the rest: the report and the summary come first.
async fn end_storing(s: Storing, res: &ReplayResult, url: &str) -> Stored {
    let end = s.writer.await.unwrap_or_else(|e| WriterEnd {
        stats: WriterStats::default(),
        error: Some(StoreError::Invalid(format!("the store writer failed: {e}"))),
        journal: None,
        journal_error: None,
    });
    let status = if res.interrupted {
        LoadStatus::Interrupted
    } else {
        LoadStatus::Completed
    };
    // Alive until the load is ended (the writer may take a while to drain).
    s.heartbeat.stop();
    let mut later = Vec::new();
    if let Err(e) = s.store.end_load(s.load_id, status).await {
        later.push(e.to_string());
    }
    if let Some(j) = &end.journal {
        let tail = JournalEnd {
            status,
            rows: end.stats.spilled,
        };
        if let Err(e) = journal::append_end(j, &tail) {
            later.push(e);
        }
    }
    // The HTML report, from the store: a failure is reported, the load stays as it is.
    let path = faasload_results::report::html_report_path(url, s.load_id);
    let html = faasload_results::report::write_html_report(&s.store, url, s.load_id, &path)
        .await
        .map(|()| path)
        .map_err(|e| format!("{e:#}"));
    s.store.close().await;
    Stored {
        load_id: s.load_id,
        end,
        html,
        later,
    }
}

/// Prints the report, writes the interval log, prints the summary and what was stored,
/// and says how the run ends.
fn finish(
    a: &LoadArgs,
    res: &ReplayResult,
    report: &Mutex<Report>,
    summary: &Mutex<RunSummary>,
    stored: Option<&Stored>,
) -> Result<Exit> {
    let rep = report
        .lock()
        .map_err(|_| anyhow::anyhow!("report lock poisoned"))?;
    let sum = summary
        .lock()
        .map_err(|_| anyhow::anyhow!("summary lock poisoned"))?;
    let mut out = rep.render_text();
    out.push('\n');
    let hlog_error = a.hlog.as_ref().and_then(|p| {
        rep.write_hlog(p)
            .err()
            .map(|e| format!("writing {}: {e}", p.display()))
    });
    out.push_str(&sum.render(a.max_failed));
    let url = redact(&a.store);
    let rows = res.recorder.rows;
    let where_ = match stored {
        None => ", not stored (--no-store)".to_string(),
        Some(st) => {
            let w = &st.end.stats;
            // Rows the writer's channel refused (the writer thread died) are lost too.
            let lost = w.lost + res.recorder.not_stored;
            if let Some(e) = &st.end.error {
                let _ = writeln!(
                    out,
                    "STORE ERROR: {} rows stored in load {}, then the store stopped taking rows: {e}",
                    w.rows, st.load_id
                );
            }
            if let Some(j) = &st.end.journal {
                let _ = writeln!(
                    out,
                    "  {} rows are in the spill journal {}; load them with: faasload store load-journal {} --store {url}",
                    w.spilled,
                    j.display(),
                    j.display()
                );
            }
            if lost > 0 {
                let _ = writeln!(
                    out,
                    "  {lost} rows are LOST (neither stored nor journaled){}",
                    st.end
                        .journal_error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                );
            }
            for e in &st.later {
                let _ = writeln!(out, "STORE ERROR: {e}");
            }
            if st.end.error.is_some() {
                format!(
                    ", {} stored as load {} in {url}, {} in the spill journal, {lost} lost",
                    w.rows, st.load_id, w.spilled
                )
            } else {
                format!(", stored as load {} in {url} ({w})", st.load_id)
            }
        }
    };
    if let Some(st) = stored {
        match &st.html {
            Ok(p) => {
                let _ = writeln!(out, "HTML report: {}", p.display());
            }
            Err(e) => eprintln!("error: writing the HTML report: {e}"),
        }
    }
    let _ = writeln!(
        out,
        "{rows} invocations in {:.1} s{where_}{}",
        res.wall.as_secs_f64(),
        if res.interrupted {
            format!(", INTERRUPTED ({} abandoned in flight)", res.abandoned)
        } else {
            String::new()
        }
    );
    print(&out)?;
    let (exit, why) = if stored.is_some_and(|s| s.failed() || s.end.stats.lost > 0)
        || res.recorder.not_stored > 0
    {
        (Exit::Store, "the results store failed".to_string())
    } else if res.interrupted {
        (Exit::Interrupted, "the replay was interrupted".to_string())
    } else if !a.max_failed.allows(sum.failed(), sum.rows()) {
        (
            Exit::TooManyFailed,
            format!(
                "{} of {} invocations failed, more than --max-failed {}",
                sum.failed(),
                sum.rows(),
                a.max_failed
            ),
        )
    } else if let Some(e) = &hlog_error {
        (Exit::Error, e.clone())
    } else {
        (Exit::Success, String::new())
    };
    if let Some(e) = hlog_error.as_ref().filter(|_| exit != Exit::Error) {
        eprintln!("faasload: error: {e}");
    }
    if exit != Exit::Success {
        eprintln!("faasload: {why} (exit status {})", exit.status());
    }
    Ok(exit)
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
