//! `faasload platform` command line (being written).
/// Arguments of `faasload platform`.
#[derive(clap::Args, Debug)]
pub struct PlatformArgs {}

/// Runs the platform.
pub fn run(_a: PlatformArgs) -> anyhow::Result<()> {
    anyhow::bail!("the embedded platform is not part of this build yet")
}
