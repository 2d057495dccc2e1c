//! One live platform per invoker name on a host: an exclusive `flock` on
//! `/run/faasload/invoker-<name>.lock`, held for the platform's life (the kernel drops it
//! when the process dies, however it dies). Holding it is what makes the cgroups and
//! containers named after the invoker ours to clean up when a previous run left them.
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Where the locks live.
const LOCK_DIR: &str = "/run/faasload";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live platform on this host uses the name.
    #[error(
        "invoker name {name} is in use by another platform on this host (lock {path}); give this one another pool.invoker_name"
    )]
    Busy { name: String, path: String },
    #[error("invoker lock {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock (released on drop).
#[derive(Debug)]
pub(crate) struct InvokerLock {
    _file: File,
}

/// Takes the lock of invoker `name` without waiting.
pub(crate) fn acquire(name: &str) -> Result<InvokerLock, LockError> {
    let path = PathBuf::from(LOCK_DIR).join(format!("invoker-{name}.lock"));
    let io = |source| LockError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(LOCK_DIR).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    // SAFETY: flock on a descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            LockError::Busy {
                name: name.to_string(),
                path: path.display().to_string(),
            }
        } else {
            io(e)
        });
    }
    Ok(InvokerLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_once_until_dropped() {
        // SAFETY: no preconditions.
        assert_eq!(unsafe { libc::geteuid() }, 0, "needs root (/run/faasload)");
        let name = format!("unit{}", std::process::id());
        let a = acquire(&name).unwrap();
        assert!(matches!(acquire(&name), Err(LockError::Busy { .. })));
        drop(a);
        let _b = acquire(&name).unwrap();
        let _ = std::fs::remove_file(PathBuf::from(LOCK_DIR).join(format!("invoker-{name}.lock")));
    }
}
