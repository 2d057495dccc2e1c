//! The spill journal: where the rows of a load go once its store stops taking them (a
//! full disk, a database gone read-only or away), so that none is lost. A journal is a
//! file of JSON lines, each a [`JournalLine`]: the load it belongs to first, then one
//! line per row (the [`RunRow`] exactly as the writer would have stored it), and, when
//! the load ended, its status. [`load_journal`] puts a journal's rows into a store
//! later (`faasload store load-journal FILE --store URL`), into the same load when the
//! store has it (rows already there are skipped, so loading twice adds nothing) or
//! into a new load with the journal's metadata.
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{LoadMeta, LoadStatus, RunRow, Store, StoreError};

/// Format version of a journal (its first line says which).
pub const JOURNAL_VERSION: u32 = 1;

/// Rows written to the store per transaction when a journal is loaded.
const LOAD_BATCH: usize = 2000;

/// One line of a journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalLine {
    /// The first line: the load the rows belong to.
    Load(JournalHeader),
    /// A row the store did not take.
    Run(Box<RunRow>),
    /// The last line, once the load ended.
    End(JournalEnd),
}

/// The load a journal's rows belong to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    /// [`JOURNAL_VERSION`].
    pub version: u32,
    /// The store that did not take the rows (URL, password redacted).
    pub store: String,
    /// The load's id in that store.
    pub load_id: i64,
    /// What the load was when it started (origin, seed, start, planned, functions).
    pub meta: LoadMeta,
    /// Why the rows are here: the store's error.
    pub reason: String,
}

/// How the load ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEnd {
    pub status: LoadStatus,
    /// Rows of this journal (the `run` lines).
    pub rows: u64,
}

/// Where a load's journal goes, and what its first line says.
#[derive(Clone, Debug)]
pub struct JournalSpec {
    /// The directory it is written in (created if missing).
    pub dir: PathBuf,
    pub header: JournalHeader,
}

impl JournalSpec {
    /// The journal's path: `faasload-spill-load<ID>-<START_MS>.jsonl` in [`Self::dir`].
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!(
            "faasload-spill-load{}-{}.jsonl",
            self.header.load_id, self.header.meta.start_epoch_ms
        ))
    }
}

/// An open journal, appended to row by row.
pub(crate) struct JournalWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
    rows: u64,
}

/// A journal write error, with the file.
fn io_error(path: &Path, what: &str, e: &std::io::Error) -> String {
    format!("{what} {}: {e}", path.display())
}

impl JournalWriter {
    /// Creates the journal of `spec` (refusing to overwrite one) and writes its first
    /// line, with `reason`.
    pub(crate) fn create(spec: &JournalSpec, reason: &str) -> Result<JournalWriter, String> {
        std::fs::create_dir_all(&spec.dir)
            .map_err(|e| io_error(&spec.dir, "creating the spill directory", &e))?;
        let path = spec.path();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_error(&path, "creating the spill journal", &e))?;
        let mut w = JournalWriter {
            path,
            out: BufWriter::new(file),
            rows: 0,
        };
        let mut header = spec.header.clone();
        header.reason = reason.to_string();
        w.line(&JournalLine::Load(header))?;
        w.sync()?;
        Ok(w)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn line(&mut self, l: &JournalLine) -> Result<(), String> {
        let path = self.path.clone();
        serde_json::to_writer(&mut self.out, l)
            .map_err(|e| format!("writing the spill journal {}: {e}", path.display()))?;
        self.out
            .write_all(b"\n")
            .map_err(|e| io_error(&path, "writing the spill journal", &e))
    }

    /// Appends `rows` (buffered: [`Self::sync`] makes them durable).
    pub(crate) fn append(&mut self, rows: &[RunRow]) -> Result<(), String> {
        for r in rows {
            self.line(&JournalLine::Run(Box::new(r.clone())))?;
            self.rows += 1;
        }
        Ok(())
    }

    /// Flushes and fsyncs what was appended.
    pub(crate) fn sync(&mut self) -> Result<(), String> {
        let path = self.path.clone();
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_data())
            .map_err(|e| io_error(&path, "syncing the spill journal", &e))
    }
}

/// Appends the end line (the load's final status and the journal's row count) to the
/// journal at `path`, durably.
pub fn append_end(path: &Path, end: &JournalEnd) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, "opening the spill journal", &e))?;
    let mut line = serde_json::to_string(&JournalLine::End(end.clone()))
        .map_err(|e| format!("encoding the end of {}: {e}", path.display()))?;
    line.push('\n');
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| io_error(path, "writing the spill journal", &e))
}

/// What [`load_journal`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalLoaded {
    /// The load the rows went to.
    pub load_id: i64,
    /// Whether that load was created (the store did not have the journal's load).
    pub created: bool,
    /// Rows written.
    pub written: u64,
    /// Rows already in the load (a journal loaded before), not written again.
    pub skipped: u64,
    /// The status set: the journal's end line's; `interrupted` for a created load
    /// whose journal has none (the loader did not end); None: an existing load's status
    /// was left as it was.
    pub status: Option<LoadStatus>,
}

/// Why a journal could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("reading {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}:{line}: {why}")]
    Bad {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What a journal holds, from a first reading of all of it.
struct Scanned {
    header: JournalHeader,
    end: Option<JournalEnd>,
    /// `run` lines (a torn last line not counted).
    rows: u64,
}

/// Reads the journal at `path` line by line, checking every line, and hands each row
/// to `row`: the header first, and once more at the end with the end line.
fn read_journal(
    path: &Path,
    mut row: impl FnMut(&JournalHeader, RunRow) -> Result<(), JournalError>,
) -> Result<Scanned, JournalError> {
    let io = |error| JournalError::Io {
        path: path.to_path_buf(),
        error,
    };
    let bad = |line: usize, why: String| JournalError::Bad {
        path: path.to_path_buf(),
        line,
        why,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::new(file);
    let mut header: Option<JournalHeader> = None;
    let mut end: Option<JournalEnd> = None;
    let mut rows = 0;
    let mut text = String::new();
    let mut n = 0;
    loop {
        text.clear();
        if reader.read_line(&mut text).map_err(io)? == 0 {
            break;
        }
        n += 1;
        let torn = !text.ends_with('\n');
        let line: JournalLine = match serde_json::from_str(text.trim_end()) {
            Ok(l) => l,
            // A loader killed while appending leaves a last line without its newline:
            // that row never reached the journal whole.
            Err(e) if torn => {
                tracing::warn!("{}:{n}: a torn last line is ignored ({e})", path.display());
                break;
            }
            Err(e) => return Err(bad(n, format!("not a journal line: {e}"))),
        };
        match (line, &header, &end) {
            (JournalLine::Load(h), None, _) => {
                if h.version != JOURNAL_VERSION {
                    return Err(bad(
                        n,
                        format!(
                            "journal format version {} (this faasload reads {JOURNAL_VERSION})",
                            h.version
                        ),
                    ));
                }
                header = Some(h);
            }
            (_, None, _) => {
                return Err(bad(
                    n,
                    "the first line must be the load (`{\"load\": ...}`)".into(),
                ));
            }
            (JournalLine::Load(_), Some(_), _) => return Err(bad(n, "a second load line".into())),
            (_, Some(_), Some(_)) => return Err(bad(n, "a line after the end line".into())),
            (JournalLine::Run(r), Some(h), None) => {
                rows += 1;
                row(h, *r)?;
            }
            (JournalLine::End(e), Some(_), None) => {
                if e.rows != rows {
                    return Err(bad(
                        n,
                        format!(
                            "the end line counts {} rows, the journal holds {rows}",
                            e.rows
                        ),
                    ));
                }
                end = Some(e);
            }
        }
    }
    let header = header.ok_or_else(|| bad(0, "an empty journal".into()))?;
    Ok(Scanned { header, end, rows })
}

/// Reads the journal at `path` and writes its rows into `store` (see the module
/// documentation). The whole file is read and checked before anything is written; rows
/// are then written [`LOAD_BATCH`] at a time, never all held in memory.
pub async fn load_journal(store: &Store, path: &Path) -> Result<JournalLoaded, JournalError> {
    let scanned = read_journal(path, |_, _| Ok(()))?;
    let header = &scanned.header;
    // The journal's load, when the store has it: same origin and start.
    let existing = store.loads().await?.into_iter().find(|l| {
        l.origin == header.meta.origin
            && l.start_epoch_ms == super::db::big(header.meta.start_epoch_ms)
    });
    let (load_id, created) = match existing {
        Some(l) => (l.id, false),
        None => (store.begin_load(&header.meta).await?, true),
    };
    let present: HashSet<u64> = store.run_seqs(load_id).await?.into_iter().collect();
    // The second reading hands rows over through a bounded channel to this task, which
    // writes them in batches.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RunRow>(LOAD_BATCH);
    let reading = {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            read_journal(&path, |_, r| {
                if present.contains(&r.seq) {
                    return Ok(());
                }
                // The receiver is gone only when writing failed: that error is returned.
                tx.blocking_send(r).map_err(|_| JournalError::Bad {
                    path: path.clone(),
                    line: 0,
                    why: "writing stopped".into(),
                })
            })
        })
    };
    let mut functions: HashMap<String, i64> = HashMap::new();
    let mut written = 0;
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    loop {
        let n = rx.recv_many(&mut batch, LOAD_BATCH).await;
        if n == 0 {
            break;
        }
        written += store.write_now(load_id, &mut functions, &batch).await?.rows;
        batch.clear();
    }
    let second = reading.await.map_err(|e| JournalError::Bad {
        path: path.to_path_buf(),
        line: 0,
        why: format!("reading task: {e}"),
    })??;
    if second.rows != scanned.rows {
        return Err(JournalError::Bad {
            path: path.to_path_buf(),
            line: 0,
            why: format!(
                "the journal changed while it was loaded ({} rows, then {})",
                scanned.rows, second.rows
            ),
        });
    }
    let status = match (scanned.end.as_ref().map(|e| e.status), created) {
        (Some(s), _) => Some(s),
        // The loader did not end the load: a new one is `interrupted` (its rows are all
        // there is); an existing one is left as it is.
        (None, true) => Some(LoadStatus::Interrupted),
        (None, false) => None,
    };
    if let Some(s) = status {
        store.end_load(load_id, s).await?;
    }
    Ok(JournalLoaded {
        load_id,
        created,
        written,
        skipped: scanned.rows - written,
        status,
    })
}
