//! `faasload monitor` command line (being written).
/// Arguments of `faasload monitor`.
#[derive(clap::Args, Debug)]
pub struct MonitorArgs {}

/// Runs the monitor.
pub fn run(_a: MonitorArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
