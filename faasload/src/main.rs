//! The `faasload` command line: parses arguments and hands over to one library crate per
//! job (see the README's layout section).
mod cmd;
mod embedded;
mod logging;

use clap::{Parser, Subcommand};

use cmd::exit::exit_statuses;

/// mimalloc instead of glibc's malloc: the loader allocates a little per invocation on
/// several threads at once, where glibc's arenas cost measurably (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "faasload",
    version,
    about = "FaaS load generator, per-container eBPF monitor and embedded OpenWhisk-compatible platform",
    after_help = concat!(
        "Examples:
  sudo faasload load config/demo-trace.yaml --embedded   # platform + monitor, deploy, replay, report
  faasload load trace.yaml --store postgres://u:pw@db/faasload
  faasload report                                        # the last load of sqlite://faasload-results.db
  faasload loads                                         # every load of that store
  sudo faasload monitor --metrics 127.0.0.1:9464

",
        exit_statuses!()
    )
)]
struct Cli {
    /// Log filter (tracing EnvFilter syntax); also FAASLOAD_LOG.
    #[arg(long, global = true, env = "FAASLOAD_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    #[cfg(feature = "monitor")]
    /// Run the per-container monitor daemon (root): eBPF or cgroupfs backend, UNIX sockets.
    #[command(after_help = "Examples:
  sudo faasload monitor                                  # built-in defaults (config/monitor.yml documents them)
  sudo faasload monitor --config config/monitor.yml --metrics 127.0.0.1:9464
  sudo faasload monitor --backend cgroupfs               # no BPF: polling only
  faasload monitor --config /etc/faasload/monitor.yml --check-config")]
    Monitor(cmd::monitor::MonitorArgs),
    /// Replay a trace (injector mode): schedule, invoke, record, report.
    #[command(after_help = concat!(
        "Examples:
  faasload load trace.yaml                               # against ~/.wskprops or __OW_API_HOST/__OW_API_KEY
  sudo faasload load config/demo-trace.yaml --embedded   # embedded platform + monitor, deploy, replay, clean up
  faasload load traces/dir/ --store postgres://u:pw@db/faasload --max-failed 1%
  faasload load day.yaml --dry-run                       # validate and walk the schedule, send nothing
  faasload load trace.yaml --no-store --hlog latency.hlog --quiet

The run ends with the latency report and a summary: invocations per outcome class with \
their most frequent error messages (and the first seq of each). Rows the store does not \
take go to a spill journal in --spill-dir (faasload store load-journal loads it later).

",
        exit_statuses!()
    ))]
    Load(cmd::load::LoadArgs),
    /// Create or update the actions of a trace in each user's namespace.
    #[command(after_help = "Examples:
  faasload deploy trace.yaml                             # against ~/.wskprops or __OW_API_HOST/__OW_API_KEY
  faasload deploy traces/dir/ --api-host https://ow.example --auth \"$KEY\"")]
    Deploy(cmd::load::DeployArgs),
    /// Print the latency report of a stored load.
    #[command(after_help = "Examples:
  faasload report                                        # the last load of sqlite://faasload-results.db
  faasload report sqlite://results.db --load 3
  faasload report postgres://u:pw@db/faasload | less

The store is opened read-only: nothing is created or changed. A load whose loader \
stopped recording its heartbeat while running is shown as crashed.")]
    Report(cmd::load::ReportArgs),
    /// List the loads of a results store: id, state (a load whose loader is gone is
    /// `crashed`), row counts, span, trace.
    #[command(after_help = "Examples:
  faasload loads                                         # sqlite://faasload-results.db
  faasload loads postgres://u:pw@db/faasload

The store is opened read-only. A running load whose heartbeat (recorded every 2 s by its \
loader) is older than 10 s is crashed.")]
    Loads(cmd::store::LoadsArgs),
    /// Results store maintenance: load a spill journal into a store.
    #[command(after_help = "Examples:
  faasload store load-journal faasload-spill-load4-1700000000000.jsonl --store sqlite://faasload-results.db")]
    Store(cmd::store::StoreArgs),
    #[cfg(feature = "monitor")]
    /// Check the monitor on this host: run it against a sample workload and print what it
    /// saw next to the cgroups' own counters (root).
    #[command(after_help = "Examples:
  sudo faasload monitor-check
  sudo faasload monitor-check --backend cgroupfs")]
    MonitorCheck(cmd::monitor_check::CheckArgs),
    /// Run the embedded OpenWhisk-compatible platform (root).
    #[command(after_help = "Examples:
  sudo faasload platform                                 # defaults: process backend, loopback
  sudo faasload platform --config config/platform.yml --listen 127.0.0.1:3233
  sudo faasload platform --backend docker")]
    Platform(cmd::platform::PlatformArgs),
    /// Build a dataset of function executions: a sweep of functions x memory limits x
    /// inputs, with checkpoints (--resume goes on where a run stopped).
    #[command(after_help = "Examples:
  sudo faasload generate config/generator.yaml --embedded
  faasload generate sweep.yaml --api-host https://ow.example --auth \"$KEY\" --store postgres://u:pw@db/ds
  sudo faasload generate config/generator.yaml --embedded --resume   # after a stop or a crash")]
    Generate(cmd::generate::GenerateArgs),
    /// Generate deterministic input sets for the function suite (images, data files).
    #[command(after_help = "Examples:
  faasload inputs --dir /var/lib/faasload/store          # image:20,matrix:10,text:10,json:10
  faasload inputs --dir store --kinds image:100 --seed 7
  faasload inputs --dir store --trace traces/dir/        # exactly the inputs a trace names (also userNNN/N.jpg)")]
    Inputs(faasload_inputs::InputsArgs),
    /// Traces: convert production traces, synthesise tenants, check, stats.
    #[command(after_help = "Examples:
  faasload trace convert azure2021 AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt -o a21.yaml
  faasload trace synth --tenants 4 --functions 3 --mean-iat 2 --span 600 -o synth.yaml
  faasload trace check day.yaml
  faasload trace stats day.yaml --json")]
    Trace(cmd::trace::TraceArgs),
    /// Export a stored load as a dataset (Parquet or CSV): one row per run, plus resources.
    #[command(after_help = "Examples:
  faasload export sqlite://faasload-results.db --out runs.parquet      # also runs.resources.parquet
  faasload export postgres://u:pw@db/faasload --load 3 --format csv --out runs.csv")]
    Export(faasload_results::export::ExportArgs),
    /// Test and benchmark workloads of known CPU and memory cost (used by tests and benches).
    #[command(
        hide = true,
        after_help = "Examples:
  echo 'cpu 50' | faasload workload                      # burn 50 ms of CPU, answer one JSON line
  faasload workload --cpu-ms 20 --repeat 100"
    )]
    Workload(cmd::workload::WorkloadArgs),
}

fn main() -> std::process::ExitCode {
    use cmd::exit::Exit;
    let cli = Cli::parse();
    logging::init(&cli.log);
    let done = |r: anyhow::Result<()>| r.map(|()| Exit::Success);
    let res = match cli.cmd {
        #[cfg(feature = "monitor")]
        Cmd::Monitor(a) => done(cmd::monitor::run(a)),
        Cmd::Load(a) => {
            faasload_os::memory::steady();
            cmd::load::load(a)
        }
        Cmd::Deploy(a) => done(cmd::load::deploy(a)),
        Cmd::Report(a) => done(cmd::load::report(a)),
        Cmd::Loads(a) => done(cmd::store::loads(a)),
        Cmd::Store(a) => done(cmd::store::run(a)),
        #[cfg(feature = "monitor")]
        Cmd::MonitorCheck(a) => done(cmd::monitor_check::run(a)),
        Cmd::Platform(a) => done(cmd::platform::run(a)),
        Cmd::Generate(a) => {
            faasload_os::memory::steady();
            done(cmd::generate::run(a))
        }
        Cmd::Inputs(a) => done(faasload_inputs::run(a)),
        Cmd::Trace(a) => done(cmd::trace::run(a)),
        Cmd::Export(a) => done(faasload_results::export::run(a)),
        Cmd::Workload(a) => done(cmd::workload::run(a)),
    };
    match res {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("faasload: error: {e:#}");
            Exit::of_error(&e).into()
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every command and sub-command, with its path (`faasload trace convert huawei`).
    fn all(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            all(sub, format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_help_has_examples_of_its_own_command() {
        let mut cmds = Vec::new();
        all(&Cli::command(), "faasload".into(), &mut cmds);
        assert!(cmds.len() > 20, "{} commands", cmds.len());
        for (path, cmd) in &cmds {
            if path.ends_with(" help") {
                continue;
            }
            let after = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(after.starts_with("Examples:\n"), "{path} has no examples");
            // An example runs this very command (for a command with sub-commands, one
            // of them): its whole path appears.
            assert!(
                after.lines().skip(1).any(|l| l.contains(path.as_str())),
                "{path}: no example runs it:\n{after}"
            );
        }
    }

    #[test]
    fn deploy_help_speaks_of_deploying_only() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("deploy")
            .map(|c| c.render_long_help().to_string())
            .unwrap_or_default();
        assert!(help.contains("Create or update the actions"), "{help}");
        let lower = help.to_lowercase();
        for word in ["replay", "report"] {
            assert!(
                !lower.contains(word),
                "deploy --help speaks of {word}:\n{help}"
            );
        }
    }

    #[test]
    fn load_help_documents_the_exit_statuses() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("load")
            .map(|c| c.render_help().to_string())
            .unwrap_or_default();
        for s in [
            "3 more failed invocations",
            "4 interrupted",
            "5 results store error",
        ] {
            assert!(help.contains(s), "{s}:\n{help}");
        }
    }
}
