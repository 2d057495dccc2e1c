//! An output file written whole or not at all: the data goes to a temporary file next to
//! the destination, which is synced and renamed over it on [`OutFile::commit`]; dropped
//! uncommitted (an error on the way), the temporary file is removed.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file being written to `dest`.
pub(super) struct OutFile {
    dest: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl OutFile {
    /// Creates the temporary file next to `dest` (so an unwritable place fails here,
    /// before any work).
    pub(super) fn create(dest: &Path) -> Result<OutFile> {
        let name = dest
            .file_name()
            .with_context(|| format!("output path {} names no file", dest.display()))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = dest.with_file_name(tmp_name);
        let file = File::create(&tmp).with_context(|| {
            format!(
                "cannot write {} (creating {})",
                dest.display(),
                tmp.display()
            )
        })?;
        Ok(OutFile {
            dest: dest.to_path_buf(),
            tmp,
            file: Some(BufWriter::with_capacity(1 << 20, file)),
        })
    }

    /// The buffered writer.
    pub(super) fn writer(&mut self) -> &mut BufWriter<File> {
        self.file
            .as_mut()
            .expect("OutFile::writer after commit (commit consumes the OutFile)")
    }

    /// Flushes, syncs and renames the file to its destination.
    pub(super) fn commit(mut self) -> Result<()> {
        let ctx = || format!("writing {}", self.dest.display());
        let w = self.file.take().expect("committed once");
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(ctx)?;
        f.sync_all().with_context(ctx)?;
        drop(f);
        std::fs::rename(&self.tmp, &self.dest).with_context(|| {
            format!("renaming {} to {}", self.tmp.display(), self.dest.display())
        })?;
        Ok(())
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("a.csv");
        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"x\n").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"x\n");
        // Dropped uncommitted: nothing left, the old file untouched.
        let mut f = OutFile::create(&dest).unwrap();
        f.write_all(b"y\n").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&dest).unwrap(), b"x\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = OutFile::create(&dir.path().join("nope/a.csv"))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("cannot write"), "{e:#}");
    }
}
