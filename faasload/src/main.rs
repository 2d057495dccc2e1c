//! The `faasload` command line: parses arguments and hands over to one library crate per
//! job (see the README's layout section).
mod cmd;
mod embedded;
mod logging;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the loader allocates a little per invocation on
/// several threads at once, where glibc's arenas cost measurably (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "faasload",
    version,
    about = "FaaS load generator, per-container eBPF monitor and embedded OpenWhisk-compatible platform"
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
    Monitor(cmd::monitor::MonitorArgs),
    /// Replay a trace (injector mode): schedule, invoke, record, report.
    Load(cmd::load::LoadArgs),
    /// Create or update the actions of a trace in each user's namespace.
    Deploy(cmd::load::DeployArgs),
    /// Print the latency report of a stored load.
    Report(cmd::load::ReportArgs),
    #[cfg(feature = "monitor")]
    /// Check the monitor on this host: run it against a sample workload and print what it
    /// saw next to the cgroups' own counters (root).
    MonitorCheck(cmd::monitor_check::CheckArgs),
    /// Run the embedded OpenWhisk-compatible platform (root).
    Platform(cmd::platform::PlatformArgs),
    /// Build a dataset of function executions: a sweep of functions x memory limits x
    /// inputs, with checkpoints (--resume goes on where a run stopped).
    Generate(cmd::generate::GenerateArgs),
    /// Generate deterministic input sets for the function suite (images, data files).
    Inputs(faasload_inputs::InputsArgs),
    /// Traces: convert production traces, synthesise tenants, check, stats.
    Trace(cmd::trace::TraceArgs),
    /// Export a stored load as a dataset (Parquet or CSV): one row per run, plus resources.
    Export(faasload_results::export::ExportArgs),
    /// Test and benchmark workloads of known CPU and memory cost (used by tests and benches).
    #[command(hide = true)]
    Workload(cmd::workload::WorkloadArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log);
    let res = match cli.cmd {
        #[cfg(feature = "monitor")]
        Cmd::Monitor(a) => cmd::monitor::run(a),
        Cmd::Load(a) => {
            faasload_os::memory::steady();
            cmd::load::load(a)
        }
        Cmd::Deploy(a) => cmd::load::deploy(a),
        Cmd::Report(a) => cmd::load::report(a),
        #[cfg(feature = "monitor")]
        Cmd::MonitorCheck(a) => cmd::monitor_check::run(a),
        Cmd::Platform(a) => cmd::platform::run(a),
        Cmd::Generate(a) => {
            faasload_os::memory::steady();
            cmd::generate::run(a)
        }
        Cmd::Inputs(a) => faasload_inputs::run(a),
        Cmd::Trace(a) => cmd::trace::run(a),
        Cmd::Export(a) => faasload_results::export::run(a),
        Cmd::Workload(a) => cmd::workload::run(a),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faasload: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
