//! Logging set-up: `tracing` to stderr with an EnvFilter.
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `filter` uses EnvFilter syntax (`info`, `faasload=debug`).
pub(crate) fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
