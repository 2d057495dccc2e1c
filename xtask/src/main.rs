//! `cargo xtask`: faasload's build and test orchestration.
//!
//! Every command installs what it needs first (idempotently, and quickly when it is
//! already there), so the same command works on a fresh machine and on a warm one.

mod bench;
mod browser;
mod cmd;
mod demo;
mod deploy_check;
mod docker;
mod ebpf;
mod functions;
mod images;
mod layout;
mod promclient;
mod pyarrow;
mod stable;
mod test;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "faasload's build and test orchestration"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel programs (installs nightly rust-src and bpf-linker if missing):
    /// builds the monitor crate, whose build script builds and embeds them.
    BuildEbpf,
    /// Benchmarks, side by side with a peer in the same run; writes BENCHMARKS.md
    /// (needs root). Suites: platform, loader, monitor-overhead, monitor-precision,
    /// monitor-query, trace-ingest. All suites when none is named.
    Bench {
        /// Suites to run (default: all).
        suites: Vec<String>,
        /// Short run for the smoke test; writes target/bench/<suite>.md, not BENCHMARKS.md.
        #[arg(long)]
        quick: bool,
        /// With --quick: measure the unoptimised debug binary instead of building the
        /// release one (the CI smoke test; its numbers mean nothing).
        #[arg(long, requires = "quick")]
        dev_build: bool,
    },
    /// The README's first command: installs the eBPF toolchain pieces, builds the release
    /// binary, then replays config/demo-trace.yaml on the embedded platform with the
    /// monitor (`faasload load --embedded`), prints the latency report and stores every
    /// invocation in faasload-results.db (needs root).
    Demo,
    /// Installs the function suite's dependencies (libMagickWand, Wand in functions/.venv,
    /// sharp in functions/nodejs/node_modules); quick when they are there.
    EnsureFunctions,
    /// Builds the Docker backend's runtime images (python, nodejs) from Debian packages
    /// with debootstrap + docker import; reuses images whose inputs did not change.
    Images {
        /// Docker daemon (default: $DOCKER_HOST, else unix:///var/run/docker.sock).
        #[arg(long)]
        docker_host: Option<String>,
    },
    /// The tests' private dockerd alone (the `cargo xtask test` step): `start` starts it
    /// and builds the runtime images (then `export
    /// FAASLOAD_TEST_DOCKER_HOST=unix:///run/faasload-test/docker.sock` to run the Docker
    /// tests by hand), `stop` removes its containers, stops it and checks nothing is left.
    Dockerd {
        #[arg(value_parser = ["start", "stop"])]
        action: String,
    },
    /// The `cargo xtask test` step alone that checks every crate but the monitor on the
    /// stable toolchain with the nightly and bpf-linker hidden.
    CheckStable,
    /// The project's test command: installs and builds everything the tests need, then
    /// runs `cargo test --workspace` (needs root: cgroups and eBPF).
    Test {
        /// Extra arguments for `cargo test`, after `--` (e.g. `-- btf -- --nocapture`).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ws = workspace::Workspace::locate();
    let result = match cli.command {
        Command::BuildEbpf => ebpf::build(&ws),
        Command::Test { args } => test::run(&ws, &args),
        Command::CheckStable => stable::check_without_nightly(&ws),
        Command::Images { docker_host } => images::build(
            &ws,
            &docker_host
                .or_else(|| std::env::var("DOCKER_HOST").ok())
                .unwrap_or_else(|| "unix:///var/run/docker.sock".into()),
        ),
        Command::Dockerd { action } if action == "start" => docker::ensure(&ws),
        Command::Dockerd { .. } => docker::stop(),
        Command::Demo => demo::run(&ws),
        Command::EnsureFunctions => functions::ensure(&ws),
        Command::Bench {
            suites,
            quick,
            dev_build,
        } => bench::run(&ws, &suites, &bench::Options { quick, dev_build }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `cargo xtask bench --help` names every suite there is (its list is written by hand).
    #[test]
    fn bench_help_names_every_suite() {
        let cmd = Cli::command();
        let bench = cmd.find_subcommand("bench").expect("a bench subcommand");
        let help = bench
            .get_about()
            .expect("bench has a help text")
            .to_string();
        for name in crate::bench::suite_names() {
            assert!(
                help.contains(name),
                "`bench --help` does not name the suite {name}: {help}"
            );
        }
    }
}
