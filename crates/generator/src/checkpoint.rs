//! Generator checkpoints: what a generation must know to go on exactly where it stopped
//! (the config it was made for, the store and load its runs go to, the first run not yet
//! committed, the draw stream's state after the last committed run). Written atomically
//! (temp file, fsync, rename, fsync of the directory) as `checkpoint-<next>.json` in the
//! generation's state directory, the newest few kept. A file is its JSON body on one line
//! and a checksum line, so a torn or edited file is detected, never trusted. A writer
//! killed before its rename leaves a `.checkpoint-*.json.tmp`: [`remove_orphans`] removes
//! them when the generation resumes.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Format version of the body.
pub const VERSION: u32 = 1;
/// Checkpoints kept in the state directory (older ones are removed).
const KEEP: usize = 3;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".json";

/// The last committed run and its draw stream's state after it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastRun {
    pub seq: u64,
    pub variant: String,
    /// [`super::Planner::rng_state`] after this run.
    pub rng: String,
}

/// One checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// [`config_hash`] of the configuration (seed included).
    pub config_hash: String,
    pub config_file: String,
    pub seed: u64,
    /// The store URL, password redacted (for messages).
    pub store: String,
    pub load_id: i64,
    /// Runs in the whole sweep.
    pub total: u64,
    /// Every run before this one is committed in the store.
    pub next_seq: u64,
    /// None when no run is committed yet.
    pub last: Option<LastRun>,
    pub written_epoch_ms: u64,
    /// Why it was written: `start`, `runs`, `time`, `signal`, `end`, `error`.
    pub reason: String,
}

/// FNV-1a, 64 bits (corruption detection, not security).
pub fn fnv64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A fingerprint of a parsed configuration and the effective seed: any change to what is
/// planned changes it (comments and layout do not).
pub fn config_hash(cfg: &super::GenConfig) -> String {
    format!("{:016x}", fnv64(format!("{cfg:?}").as_bytes()))
}

/// The file name of the checkpoint whose next run is `next_seq`.
fn file_name(next_seq: u64) -> String {
    format!("{PREFIX}{next_seq:012}{SUFFIX}")
}

/// Checkpoint files in `dir`, by their next run, oldest first.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = vec![];
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((n, e.path()));
    }
    out.sort();
    Ok(out)
}

/// Writes `c` atomically into `dir` and removes all but the newest [`KEEP`] checkpoints.
pub fn write(dir: &Path, c: &Checkpoint) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let body = serde_json::to_string(c).context("encoding a checkpoint")?;
    let text = format!("{body}\nfnv64 {:016x}\n", fnv64(body.as_bytes()));
    let path = dir.join(file_name(c.next_seq));
    let tmp = dir.join(format!(".{}.tmp", file_name(c.next_seq)));
    {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    let all = list(dir)?;
    if all.len() > KEEP {
        for (_, old) in &all[..all.len() - KEEP] {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(path)
}

/// Removes the temporary files of checkpoints whose writer was killed before renaming
/// them (`.checkpoint-*.json.tmp`): only a generation that owns `dir` may call it (on
/// resume), since a running writer's temporary file looks the same. Returns the files
/// removed.
pub fn remove_orphans(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut removed = Vec::new();
    for e in rd {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let name = e.file_name();
        let orphan = name.to_str().is_some_and(|n| {
            n.strip_prefix('.')
                .and_then(|n| n.strip_suffix(".tmp"))
                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(SUFFIX))
        });
        if orphan {
            let p = e.path();
            std::fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            removed.push(p);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Reads and verifies one checkpoint file: a torn, edited or foreign file is an error
/// that says what is wrong.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading checkpoint {}", path.display()))?;
    let corrupt = |why: String| {
        anyhow::anyhow!(
            "checkpoint {} is corrupt ({why}): refusing to resume from it",
            path.display()
        )
    };
    let mut lines = text.lines();
    let body = lines.next().unwrap_or("");
    let sum = lines
        .next()
        .and_then(|l| l.strip_prefix("fnv64 "))
        .ok_or_else(|| corrupt("no checksum line".into()))?;
    if lines.next().is_some() {
        return Err(corrupt("trailing data".into()));
    }
    let want = format!("{:016x}", fnv64(body.as_bytes()));
    if sum != want {
        return Err(corrupt(format!(
            "checksum {sum} but the content hashes to {want}"
        )));
    }
    let c: Checkpoint =
        serde_json::from_str(body).map_err(|e| corrupt(format!("unreadable body: {e}")))?;
    if c.version != VERSION {
        bail!(
            "checkpoint {} has format version {} (this faasload reads {VERSION})",
            path.display(),
            c.version
        );
    }
    if c.next_seq > c.total || c.last.as_ref().map_or(0, |l| l.seq + 1) != c.next_seq {
        return Err(corrupt(format!(
            "next run {} of {} does not follow its last run {:?}",
            c.next_seq,
            c.total,
            c.last.as_ref().map(|l| l.seq)
        )));
    }
    Ok(c)
}

/// The newest checkpoint in `dir` (None when there is none). A newest file that is
/// corrupt is an error naming the previous one: it is never skipped silently.
pub fn newest(dir: &Path) -> Result<Option<(PathBuf, Checkpoint)>> {
    let all = list(dir)?;
    let Some((_, path)) = all.last() else {
        return Ok(None);
    };
    match read(path) {
        Ok(c) => Ok(Some((path.clone(), c))),
        Err(e) => {
            let hint = match all.len() {
                n if n >= 2 => format!(
                    "; to resume from the previous checkpoint instead, remove this one (the previous is {})",
                    all[n - 2].1.display()
                ),
                _ => "; start over with --fresh".to_string(),
            };
            Err(e.context(format!("resuming from {}{hint}", dir.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(next: u64) -> Checkpoint {
        Checkpoint {
            version: VERSION,
            config_hash: "00ff".into(),
            config_file: "g.yaml".into(),
            seed: 3,
            store: "sqlite://x.db".into(),
            load_id: 1,
            total: 10,
            next_seq: next,
            last: (next > 0).then(|| LastRun {
                seq: next - 1,
                variant: "f_128".into(),
                rng: "{}".into(),
            }),
            written_epoch_ms: 5,
            reason: "runs".into(),
        }
    }

    #[test]
    fn written_checkpoints_read_back_and_only_the_newest_few_stay() {
        let d = tempfile::tempdir().unwrap();
        for n in 0..6 {
            write(d.path(), &ck(n)).unwrap();
        }
        let all = list(d.path()).unwrap();
        assert_eq!(all.iter().map(|x| x.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        let (_, c) = newest(d.path()).unwrap().unwrap();
        assert_eq!(c, ck(5));
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn corrupt_checkpoints_are_refused_with_the_reason() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &ck(2)).unwrap();
        let p = write(d.path(), &ck(4)).unwrap();
        let good = std::fs::read_to_string(&p).unwrap();
        // One changed digit in the body.
        std::fs::write(&p, good.replacen("\"next_seq\":4", "\"next_seq\":5", 1)).unwrap();
        let e = format!("{:#}", newest(d.path()).unwrap_err());
        assert!(e.contains("corrupt") && e.contains("checksum"), "{e}");
        assert!(e.contains("checkpoint-000000000002.json"), "{e}");
        // Torn: the checksum line is missing.
        std::fs::write(&p, good.lines().next().unwrap()).unwrap();
        let e = format!("{:#}", newest(d.path()).unwrap_err());
        assert!(e.contains("no checksum line"), "{e}");
        // Garbage.
        std::fs::write(&p, "\0\0\0").unwrap();
        assert!(format!("{:#}", read(&p).unwrap_err()).contains("corrupt"));
    }

    #[test]
    fn orphan_temporaries_are_removed_and_nothing_else() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), &ck(2)).unwrap();
        // What a writer killed between create and rename leaves.
        let orphan = d.path().join(".checkpoint-000000000004.json.tmp");
        std::fs::write(&orphan, "{\"torn").unwrap();
        let other = d.path().join(".notes.tmp");
        std::fs::write(&other, "x").unwrap();
        assert_eq!(remove_orphans(d.path()).unwrap(), vec![orphan.clone()]);
        assert!(!orphan.exists() && other.exists());
        assert_eq!(list(d.path()).unwrap().len(), 1);
        assert!(remove_orphans(d.path()).unwrap().is_empty());
        assert!(
            remove_orphans(&d.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn an_empty_directory_has_no_checkpoint() {
        let d = tempfile::tempdir().unwrap();
        assert!(newest(d.path()).unwrap().is_none());
        assert!(newest(&d.path().join("missing")).unwrap().is_none());
    }
}
