//! `faasload generate CONFIG`: validates the sweep (nothing runs on a defect), opens or
//! resumes a generation (state directory with checkpoints, one load in the results
//! store), deploys every (function, memory) variant, runs the session, and writes the
//! last checkpoint. `--resume` picks the newest checkpoint, refuses a corrupt or stale
//! one with the reason, deletes the runs recorded after it ("lost runs", bounded by
//! `--max-lost`) and goes on, so the finished dataset equals an uninterrupted run's.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cmd::target::{TargetArgs, backend, endpoints, http_options, monitor_socket, runtime};
use crate::embedded::Embedded;
use faasload_generator::checkpoint::{self, Checkpoint, VERSION};
use faasload_generator::session::{self, Session, SessionOptions};
use faasload_generator::{GenConfig, Pacing, parse_config};
use faasload_generator::{Planner, total, variant_name};
use faasload_loader::openwhisk::{OpenWhiskOptions, deploy_all};
use faasload_results::store::{FunctionMeta, LoadMeta, LoadStatus, Store, redact};
use faasload_trace::FunctionCatalog;
use faasload_trace::{Function, Invocation, Trace, User};

/// Namespace of the generation on the embedded platform.
const EMBEDDED_NAMESPACE: &str = "faasload-gen";

/// Arguments of `faasload generate`.
#[derive(clap::Args, Debug)]
pub(crate) struct GenerateArgs {
    /// Generator configuration (see config/generator.yaml).
    pub config: PathBuf,
    /// Start the embedded platform and the monitor for this generation (root), deploy
    /// the variants, run the sweep, and clean up.
    #[arg(long)]
    pub embedded: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Namespace to deploy and invoke in (default: the key's own; `faasload-gen` with
    /// --embedded).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Results store URL: sqlite://file, postgres://..., mysql://...
    #[arg(long, default_value = "sqlite://faasload-dataset.db")]
    pub store: String,
    /// State directory holding the checkpoints (default: `<config stem>.state` in the
    /// current directory).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Go on from the newest checkpoint in the state directory.
    #[arg(long, conflicts_with = "fresh")]
    pub resume: bool,
    /// Start a new generation even if the state directory holds one (its checkpoints
    /// are removed; its runs stay in the store under their load).
    #[arg(long)]
    pub fresh: bool,
    /// Checkpoint after this many newly committed runs.
    #[arg(long, default_value_t = 20)]
    pub checkpoint_runs: u64,
    /// Checkpoint at least this often (seconds) while runs are committed.
    #[arg(long, default_value_t = 60.0)]
    pub checkpoint_secs: f64,
    /// Largest number of runs recorded after the checkpoint that --resume deletes
    /// (default: 2 x --checkpoint-runs + the runs in flight at once, at least 100).
    #[arg(long)]
    pub max_lost: Option<u64>,
    /// Seed (overrides the config's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Function catalog (default: the repository's config/traces/catalog.yaml).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
    /// The monitor's query socket (default: /run/faasload/query.sock when it exists).
    #[arg(long)]
    pub monitor_socket: Option<PathBuf>,
    /// Do not ask a monitor (with --embedded: do not start one).
    #[arg(long)]
    pub no_monitor: bool,
    /// Object store holding the inputs, to record their sizes (default:
    /// FAASLOAD_STORE_DIR; the embedded platform's own).
    #[arg(long)]
    pub store_dir: Option<PathBuf>,
    /// Runs in flight at once under `interval_ms` pacing.
    #[arg(long, default_value_t = 64)]
    pub max_in_flight: usize,
    /// Client timeout of one request, in seconds.
    #[arg(long, default_value_t = 330.0)]
    pub request_timeout_s: f64,
    /// After SIGINT/SIGTERM, how long runs in flight may finish, in seconds.
    #[arg(long, default_value_t = 60.0)]
    pub grace_s: f64,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// The config, validated against the catalog (unknown functions are errors).
fn load_config(a: &GenerateArgs) -> Result<(GenConfig, FunctionCatalog)> {
    let file = a.config.display().to_string();
    let text = std::fs::read_to_string(&a.config).with_context(|| format!("reading {file}"))?;
    let catalog = match &a.catalog {
        Some(c) => FunctionCatalog::load(c)?,
        None => {
            let dir = a.config.parent().filter(|p| !p.as_os_str().is_empty());
            FunctionCatalog::for_dir(dir.unwrap_or(Path::new(".")))?
        }
    };
    let known: Vec<String> = catalog.entries.keys().cloned().collect();
    let mut cfg = parse_config(&text, &file, Some(&known))?;
    if let Some(s) = a.seed {
        cfg.seed = s;
    }
    Ok((cfg, catalog))
}

/// The trace the loader's machinery works with: one user, one function per variant,
/// and the plan as its schedule (read for the inputs it names).
fn variant_trace(
    cfg: &Arc<GenConfig>,
    catalog: &FunctionCatalog,
    origin: &str,
    namespace: &str,
) -> Result<(Trace, HashMap<String, u32>)> {
    let mut functions = vec![];
    let mut index = HashMap::new();
    for f in &cfg.functions {
        let e = catalog
            .get(&f.action)
            .with_context(|| format!("{origin}: function {} is not in the catalog", f.action))?;
        for &mem in &f.memory_mb {
            let variant = variant_name(&f.action, mem);
            if index.contains_key(&variant) {
                continue;
            }
            index.insert(variant.clone(), functions.len() as u32);
            functions.push(Function {
                name: f.action.clone(),
                action: variant,
                kind: e.kind.clone(),
                code: e.code.clone(),
                main: e.main.clone(),
                memory_mb: u32::try_from(mem)
                    .with_context(|| format!("{origin}: memory {mem} MB is too large"))?,
                timeout_ms: e.timeout_ms,
                parameters: e.parameters.clone(),
                input_kind: f
                    .inputs
                    .as_ref()
                    .map(|i| match i {
                        faasload_trace::InputSpec::Numbered { kind, .. } => kind.clone(),
                        faasload_trace::InputSpec::List(_) => String::new(),
                    })
                    .filter(|k| !k.is_empty())
                    .or_else(|| e.input_kind.clone()),
            });
        }
    }
    let pairs = (0..functions.len() as u32).map(|f| (0, f)).collect();
    let sched_cfg = cfg.clone();
    let sched_index = index.clone();
    let trace = Trace {
        origin: origin.to_string(),
        users: vec![User {
            name: "generator".into(),
            namespace: namespace.to_string(),
            auth: None,
            api_host: None,
            create: true,
        }],
        functions,
        seed: cfg.seed,
        pairs,
        total: Some(total(cfg)),
        schedule: Box::new(move || {
            let index = sched_index.clone();
            Box::new(Planner::new(sched_cfg.clone()).map(move |r| Invocation {
                seq: r.seq,
                at_ns: 0,
                user: 0,
                function: index.get(&r.variant).copied().unwrap_or(0),
                input: r.input,
                params: r.params,
            }))
        }),
    };
    Ok((trace, index))
}

/// Sizes of the inputs the plan names, from the object store.
fn input_sizes(cfg: &Arc<GenConfig>, dir: Option<&Path>) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Some(dir) = dir else { return out };
    for f in &cfg.functions {
        let Some(spec) = &f.inputs else { continue };
        let n = match spec {
            faasload_trace::InputSpec::Numbered { count, .. } => *count,
            faasload_trace::InputSpec::List(v) => v.len() as u64,
        };
        for i in 0..n {
            if let Some(name) = spec.name(i)
                && let Ok(m) = std::fs::metadata(dir.join(&name))
            {
                out.insert(name, m.len());
            }
        }
    }
    out
}

/// The state directory of a run.
fn state_dir(a: &GenerateArgs) -> PathBuf {
    a.state.clone().unwrap_or_else(|| {
        let stem = a
            .config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "generator".into());
        PathBuf::from(format!("{stem}.state"))
    })
}

/// `faasload generate`.
pub(crate) fn run(a: GenerateArgs) -> Result<()> {
    // Every defect of the config is reported before anything starts.
    let (cfg, catalog) = load_config(&a)?;
    runtime()?.block_on(generate(a, Arc::new(cfg), catalog))
}

/// Where a generation starts: a new load, or a checked checkpoint.
struct Start {
    load_id: i64,
    ck: Option<Checkpoint>,
}

async fn open_generation(
    a: &GenerateArgs,
    cfg: &Arc<GenConfig>,
    store: &Store,
    dir: &Path,
    template: &Checkpoint,
    in_flight: u64,
    metas: Vec<FunctionMeta>,
) -> Result<Start> {
    let existing = checkpoint::newest(dir)?;
    match (&existing, a.resume, a.fresh) {
        (Some((p, c)), false, false) => bail!(
            "{} holds a generation ({} of {} runs committed, load {} in {}; newest checkpoint {}): \
             --resume to go on with it, --fresh to start a new one",
            dir.display(),
            c.next_seq,
            c.total,
            c.load_id,
            c.store,
            p.display()
        ),
        (None, true, _) => bail!(
            "no checkpoint in {}: nothing to resume (run without --resume to start)",
            dir.display()
        ),
        _ => {}
    }
    if a.resume || a.fresh {
        // Temporaries of a checkpoint writer that was killed before its rename.
        for p in checkpoint::remove_orphans(dir)? {
            tracing::info!(
                "removed {}, left by a generation killed while checkpointing",
                p.display()
            );
        }
    }
    if a.fresh {
        for (_, p) in checkpoint::list(dir)? {
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    if let (true, Some((path, ck))) = (a.resume, existing) {
        let stale = |why: String| {
            anyhow::anyhow!(
                "checkpoint {} is stale: {why}; refusing to resume (start a new generation with --fresh)",
                path.display()
            )
        };
        if ck.config_hash != template.config_hash {
            return Err(stale(format!(
                "it was written for another configuration of the sweep ({} then, {} now: config file or --seed changed)",
                ck.config_hash, template.config_hash
            )));
        }
        if ck.total != template.total {
            return Err(stale(format!(
                "{} runs then, {} now",
                ck.total, template.total
            )));
        }
        if !store.loads().await?.iter().any(|l| l.id == ck.load_id) {
            return Err(stale(format!(
                "load {} is not in {} (the checkpoint's store is {})",
                ck.load_id,
                redact(&a.store),
                ck.store
            )));
        }
        let seqs = store.run_seqs(ck.load_id).await?;
        let before = seqs.iter().filter(|s| **s < ck.next_seq).count() as u64;
        let distinct_before = {
            let mut b: Vec<u64> = seqs.iter().copied().filter(|s| *s < ck.next_seq).collect();
            b.dedup();
            b.len() as u64
        };
        if before != ck.next_seq || distinct_before != ck.next_seq {
            return Err(stale(format!(
                "the store holds {before} runs ({distinct_before} distinct) before run {} of load {}, \
                 where the checkpoint says every one of the {} is committed (another store, or rows removed?)",
                ck.next_seq, ck.load_id, ck.next_seq
            )));
        }
        let lost = seqs.len() as u64 - before;
        let bound = a
            .max_lost
            .unwrap_or_else(|| (2 * a.checkpoint_runs + in_flight).max(100));
        if lost > bound {
            bail!(
                "{lost} runs of load {} were recorded after checkpoint {} (more than the safety bound {bound}): \
                 resuming would delete them; check that this is the right checkpoint, then raise --max-lost",
                ck.load_id,
                path.display()
            );
        }
        // The plan up to the checkpoint must be the plan that was run.
        let mut p = Planner::new(cfg.clone());
        p.skip_to(ck.next_seq);
        if let Some(last) = &ck.last {
            let here = p.rng_state().unwrap_or_default();
            if here != last.rng {
                return Err(stale(format!(
                    "the draws of this faasload and config up to run {} differ from the ones recorded",
                    last.seq
                )));
            }
        }
        if lost > 0 {
            let n = store.delete_runs_from(ck.load_id, ck.next_seq).await?;
            tracing::warn!(
                "deleted {n} lost runs (recorded after checkpoint {}); they run again",
                path.display()
            );
            eprintln!("faasload: deleted {n} lost runs recorded after the checkpoint");
        }
        store.reopen_load(ck.load_id).await?;
        eprintln!(
            "faasload: resuming load {} at run {} of {} (checkpoint {})",
            ck.load_id,
            ck.next_seq,
            ck.total,
            path.display()
        );
        return Ok(Start {
            load_id: ck.load_id,
            ck: Some(ck),
        });
    }
    let mut meta = LoadMeta::new(
        format!("generate {}", a.config.display()),
        faasload_os::clock::epoch_ns() / 1_000_000,
    );
    meta.seed = Some(cfg.seed);
    meta.planned = Some(template.total);
    meta.functions = metas;
    let load_id = store.begin_load(&meta).await?;
    // A checkpoint at once: a generation killed before its first run resumes too.
    let first = Checkpoint {
        load_id,
        next_seq: 0,
        last: None,
        reason: "start".into(),
        written_epoch_ms: faasload_os::clock::epoch_ns() / 1_000_000,
        ..template.clone()
    };
    checkpoint::write(dir, &first)?;
    Ok(Start { load_id, ck: None })
}

async fn generate(a: GenerateArgs, cfg: Arc<GenConfig>, catalog: FunctionCatalog) -> Result<()> {
    let dir = state_dir(&a);
    let origin = a.config.display().to_string();
    let namespace = match (&a.namespace, a.embedded) {
        (Some(n), _) => n.clone(),
        (None, true) => EMBEDDED_NAMESPACE.to_string(),
        (None, false) => faasload_loader::openwhisk::resolve_endpoint(
            a.target.api_host.as_deref(),
            a.target.auth.as_deref(),
            None,
        )
        .map(|e| e.namespace)
        .unwrap_or_else(|_| "_".into()),
    };
    let (trace, variants) = variant_trace(&cfg, &catalog, &origin, &namespace)?;
    let trace = Arc::new(trace);
    let n_total = total(&cfg);
    let in_flight = match cfg.pacing {
        Pacing::MaxConcurrent(k) => u64::from(k),
        Pacing::IntervalMs(_) => a.max_in_flight as u64,
    };
    let store = Store::open(&a.store)
        .await
        .with_context(|| format!("opening the results store {}", redact(&a.store)))?;
    let mut template = Checkpoint {
        version: VERSION,
        config_hash: checkpoint::config_hash(&cfg),
        config_file: origin.clone(),
        seed: cfg.seed,
        store: redact(&a.store),
        load_id: 0,
        total: n_total,
        next_seq: 0,
        last: None,
        written_epoch_ms: 0,
        reason: String::new(),
    };
    // One `functions` row per function of the sweep (its variants share it).
    let mut metas: Vec<FunctionMeta> = vec![];
    for f in &trace.functions {
        if !metas.iter().any(|m| m.name == f.name) {
            metas.push(FunctionMeta {
                name: f.name.clone(),
                runtime: Some(f.kind.clone()),
                image: None,
                parameters: None,
                input_kind: f.input_kind.clone(),
            });
        }
    }
    let start = open_generation(&a, &cfg, &store, &dir, &template, in_flight, metas).await?;
    template.load_id = start.load_id;
    let (start_seq, last) = match &start.ck {
        Some(c) => (c.next_seq, c.last.clone()),
        None => (0, None),
    };
    if start_seq >= n_total {
        store.end_load(start.load_id, LoadStatus::Completed).await?;
        println!(
            "generation complete: {n_total} runs in load {} of {}",
            start.load_id,
            redact(&a.store)
        );
        return Ok(());
    }

    let emb = if a.embedded {
        Some(Embedded::start(&trace, !a.no_monitor).await?)
    } else {
        None
    };
    let res = run_session(
        &a,
        &cfg,
        trace,
        variants,
        emb.as_ref(),
        store.clone(),
        &dir,
        template,
        start_seq,
        last,
    )
    .await;
    if let Some(e) = emb {
        e.stop().await?;
    }
    store.close().await;
    res
}

#[expect(
    clippy::too_many_arguments,
    reason = "the session's parts, set up by `run` and handed over once"
)]
async fn run_session(
    a: &GenerateArgs,
    cfg: &Arc<GenConfig>,
    trace: Arc<Trace>,
    variants: HashMap<String, u32>,
    emb: Option<&Embedded>,
    store: Store,
    dir: &Path,
    template: Checkpoint,
    start_seq: u64,
    last: Option<faasload_generator::checkpoint::LastRun>,
) -> Result<()> {
    let eps = endpoints(&trace, &a.target, emb)?;
    let b = backend(
        &a.target,
        OpenWhiskOptions {
            http: http_options(
                &a.target,
                Duration::from_secs_f64(a.request_timeout_s.max(0.001)),
            ),
            ..OpenWhiskOptions::default()
        },
    )?;
    let r = deploy_all(b.as_ref(), &eps, &trace).await?;
    tracing::info!("deployed {} action variants", r.deployed.len());
    let store_dir = a
        .store_dir
        .clone()
        .or_else(|| emb.and_then(|e| e.store_dir.clone()))
        .or_else(|| std::env::var_os("FAASLOAD_STORE_DIR").map(PathBuf::from));
    let bar = (!a.quiet).then(|| {
        let bar = indicatif::ProgressBar::new(template.total);
        let style = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} runs, ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(start_seq);
        bar.reset_eta();
        bar
    });
    let mut planner = Planner::new(cfg.clone());
    planner.skip_to(start_seq);
    // While the session runs, the load's heartbeat says its generator is alive.
    let heartbeat = store.keep_alive(template.load_id);
    let session = Session {
        trace,
        variants,
        endpoints: eps,
        backend: b,
        monitor: monitor_socket(a.no_monitor, a.monitor_socket.as_ref(), emb),
        store: store.clone(),
        load_id: template.load_id,
        input_bytes: input_sizes(cfg, store_dir.as_deref()),
        state_dir: dir.to_path_buf(),
        template: template.clone(),
        last,
    };
    let opts = SessionOptions {
        pacing: cfg.pacing.clone(),
        cold: cfg.cold,
        checkpoint_runs: a.checkpoint_runs,
        checkpoint_every: Duration::from_secs_f64(a.checkpoint_secs.max(0.001)),
        max_in_flight: a.max_in_flight,
        grace: Duration::from_secs_f64(a.grace_s.max(0.0)),
        bar: bar.clone(),
    };
    let end = session::run(session, planner, opts).await?;
    heartbeat.stop();
    if let Some(b) = &bar {
        b.finish();
    }
    let reason = if end.store_error.is_some() {
        "error"
    } else if end.interrupted {
        "signal"
    } else {
        "end"
    };
    let ck = Checkpoint {
        next_seq: end.next_seq,
        last: end.last.clone(),
        written_epoch_ms: faasload_os::clock::epoch_ns() / 1_000_000,
        reason: reason.into(),
        ..template.clone()
    };
    let path = checkpoint::write(dir, &ck)?;
    let complete = end.next_seq >= template.total;
    store
        .end_load(
            template.load_id,
            if complete {
                LoadStatus::Completed
            } else {
                LoadStatus::Interrupted
            },
        )
        .await?;
    println!(
        "{} of {} runs committed in load {} of {} ({} this session, {} failed); checkpoint {}",
        end.next_seq,
        template.total,
        template.load_id,
        redact(&a.store),
        end.committed,
        end.failed,
        path.display()
    );
    if let Some(e) = end.store_error {
        return Err(e.context(format!(
            "committing runs stopped (store or checkpoint write failed); resume with: faasload generate {} --resume",
            a.config.display()
        )));
    }
    if !complete {
        println!(
            "INTERRUPTED{}: resume with `faasload generate {} --resume`",
            if end.abandoned > 0 {
                format!(
                    " ({} runs in flight abandoned; they run again)",
                    end.abandoned
                )
            } else {
                String::new()
            },
            a.config.display()
        );
    }
    Ok(())
}
