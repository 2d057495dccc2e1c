//! `faasload loads STORE` (the loads of a store: id, state, counts, span, trace; a load
//! whose loader is gone shows `crashed`) and `faasload store load-journal FILE` (the rows
//! a store did not take during a load, from the spill journal, into a store).
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::exit::print;
use super::target::runtime;
use faasload_results::store::journal::load_journal;
use faasload_results::store::{Store, redact, render_loads};

/// Arguments of `faasload loads`.
#[derive(Args, Debug)]
pub(crate) struct LoadsArgs {
    /// Results store URL (as given to `faasload load --store`); opened read-only.
    #[arg(default_value = "sqlite://faasload-results.db")]
    pub store: String,
}

/// `faasload store ...`.
#[derive(Args, Debug)]
pub(crate) struct StoreArgs {
    #[command(subcommand)]
    cmd: StoreCmd,
}

#[derive(Subcommand, Debug)]
enum StoreCmd {
    /// Write the rows of a spill journal (written by `faasload load` when its store
    /// stopped taking rows) into a store: into the journal's load when the store has it
    /// (rows already there are skipped), else into a new load with the journal's trace,
    /// seed and start; the load then gets the journal's final status.
    #[command(after_help = "Examples:
  faasload store load-journal faasload-spill-load4-1700000000000.jsonl
  faasload store load-journal spill.jsonl --store postgres://faasload:pw@db.example/faasload")]
    LoadJournal(LoadJournalArgs),
}

#[derive(Args, Debug)]
struct LoadJournalArgs {
    /// The journal (`faasload-spill-load<ID>-<START>.jsonl`).
    journal: PathBuf,
    /// Results store URL to write the rows into.
    #[arg(long, default_value = "sqlite://faasload-results.db")]
    store: String,
}

/// `faasload loads`.
pub(crate) fn loads(a: LoadsArgs) -> Result<()> {
    let text = runtime()?.block_on(async {
        let store = Store::open_read(&a.store)
            .await
            .with_context(|| format!("opening the store {}", redact(&a.store)))?;
        let loads = store.loads().await?;
        store.close().await;
        let now = (faasload_os::clock::epoch_ns() / 1_000_000) as i64;
        Ok::<_, anyhow::Error>(render_loads(&loads, now))
    })?;
    print(&text)
}

/// `faasload store ...`.
pub(crate) fn run(a: StoreArgs) -> Result<()> {
    match a.cmd {
        StoreCmd::LoadJournal(j) => runtime()?.block_on(async {
            let store = Store::open(&j.store)
                .await
                .with_context(|| format!("opening the store {}", redact(&j.store)))?;
            let done = load_journal(&store, &j.journal).await;
            store.close().await;
            let done = done.with_context(|| format!("loading {}", j.journal.display()))?;
            print(&format!(
                "{} rows of {} written into {} load {} of {}{}{}\n",
                done.written,
                j.journal.display(),
                if done.created { "new" } else { "its" },
                done.load_id,
                redact(&j.store),
                if done.skipped > 0 {
                    format!(" ({} already there, skipped)", done.skipped)
                } else {
                    String::new()
                },
                done.status
                    .map(|s| format!("; load {} is {}", done.load_id, s.as_str()))
                    .unwrap_or_default()
            ))
        }),
    }
}
