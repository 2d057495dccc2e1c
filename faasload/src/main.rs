//! The `faasload` command line: parses arguments and hands over to one domain module.
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
    /// Run the per-container monitor daemon (root): eBPF or cgroupfs backend, UNIX sockets.
    Monitor(faasload::monitor::cli::MonitorArgs),
    /// Replay a trace (injector mode): schedule, invoke, record, report.
    Load(faasload::loader::cli::LoadArgs),
    /// Create or update the actions of a trace in each user's namespace.
    Deploy(faasload::loader::cli::DeployArgs),
    /// Print the latency report of a stored load.
    Report(faasload::loader::cli::ReportArgs),
    /// Check the monitor on this host: run it against a sample workload and print what it
    /// saw next to the cgroups' own counters (root).
    MonitorCheck(faasload::monitor::check::CheckArgs),
    /// Run the embedded OpenWhisk-compatible platform (root).
    Platform(faasload::platform::cli::PlatformArgs),
    /// Build a dataset of function executions: a sweep of functions x memory limits x
    /// inputs, with checkpoints (--resume goes on where a run stopped).
    Generate(faasload::generator::cli::GenerateArgs),
    /// Generate deterministic input sets for the function suite (images, data files).
    Inputs(faasload::inputs::InputsArgs),
    /// Traces: convert production traces, synthesise tenants, check, stats.
    Trace(faasload::trace::cli::TraceArgs),
    /// Export a stored load as a dataset (Parquet or CSV): one row per run, plus resources.
    Export(faasload::export::ExportArgs),
    /// Test and benchmark workloads of known CPU and memory cost (used by tests and benches).
    #[command(hide = true)]
    Workload(faasload::util::workload::WorkloadArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    faasload::util::logging::init(&cli.log);
    let res = match cli.cmd {
        Cmd::Monitor(a) => faasload::monitor::cli::run(a),
        Cmd::Load(a) => {
            faasload::util::memory::steady();
            faasload::loader::cli::load(a)
        }
        Cmd::Deploy(a) => faasload::loader::cli::deploy(a),
        Cmd::Report(a) => faasload::loader::cli::report(a),
        Cmd::MonitorCheck(a) => faasload::monitor::check::run(a),
        Cmd::Platform(a) => faasload::platform::cli::run(a),
        Cmd::Generate(a) => {
            faasload::util::memory::steady();
            faasload::generator::cli::run(a)
        }
        Cmd::Inputs(a) => faasload::inputs::run(a),
        Cmd::Trace(a) => faasload::trace::cli::run(a),
        Cmd::Export(a) => faasload::export::run(a),
        Cmd::Workload(a) => faasload::util::workload::run(a),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("faasload: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
