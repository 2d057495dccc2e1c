//! How `faasload` ends: its exit statuses (documented in the README and in `--help`),
//! and writing to standard output so that a reader that went away (`| head`, `| true`)
//! ends the output quietly instead of a panic.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// The exit status of a command. A command that fails before or outside a replay exits
/// [`Exit::Error`]; clap's usage errors exit 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Exit {
    /// 0: done; for `load`, a completed replay with at most `--max-failed` failed
    /// invocations, every row stored.
    Success,
    /// 1: an error (bad trace or arguments, platform unreachable, ...).
    Error,
    /// 3: the replay completed with more failed invocations than `--max-failed`.
    TooManyFailed,
    /// 4: the replay was interrupted (SIGINT/SIGTERM): its rows up to then are kept.
    Interrupted,
    /// 5: the results store failed (could not be opened, or stopped taking rows: they
    /// are then in the spill journal).
    Store,
}

impl Exit {
    /// The process exit status.
    pub(crate) fn status(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Error => 1,
            Exit::TooManyFailed => 3,
            Exit::Interrupted => 4,
            Exit::Store => 5,
        }
    }

    /// The exit status of a command that failed with `e`: [`Exit::Store`] when the store
    /// is the cause, else [`Exit::Error`].
    pub(crate) fn of_error(e: &anyhow::Error) -> Exit {
        let store = e.chain().any(|c| {
            c.downcast_ref::<faasload_results::store::StoreError>()
                .is_some()
        });
        if store { Exit::Store } else { Exit::Error }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.status())
    }
}

/// The exit statuses, for `--help` texts (a macro: `concat!` takes only literals).
macro_rules! exit_statuses {
    () => {
        "Exit status: 0 done (for load: completed, failed invocations within --max-failed, \
every row stored); 1 error; 2 usage; 3 more failed invocations than --max-failed; \
4 interrupted (SIGINT/SIGTERM); 5 results store error (rows not stored are in the spill \
journal)."
    };
}
pub(crate) use exit_statuses;

/// Writes `text` to standard output. A reader that went away (a broken pipe) is not an
/// error: the rest of the output has nowhere to go, and the command ends as it would
/// have.
pub(crate) fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to standard output"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_have_their_own_status() {
        let e = anyhow::Error::new(faasload_results::store::StoreError::Invalid("x".into()))
            .context("opening the store");
        assert_eq!(Exit::of_error(&e), Exit::Store);
        assert_eq!(Exit::of_error(&anyhow::anyhow!("bad trace")), Exit::Error);
        let codes: Vec<u8> = [
            Exit::Success,
            Exit::Error,
            Exit::TooManyFailed,
            Exit::Interrupted,
            Exit::Store,
        ]
        .iter()
        .map(|e| e.status())
        .collect();
        assert_eq!(codes, [0, 1, 3, 4, 5]);
    }
}
