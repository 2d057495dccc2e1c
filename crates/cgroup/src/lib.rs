//! cgroup access for the whole program: which hierarchies this host has (v1, v2 or both,
//! chosen at run time), cgroups that faasload creates under its own subtree, and cheap
//! readers of a cgroup's CPU and memory counters.
//!
//! faasload only ever creates cgroups below `<hierarchy>/faasload/` and removes them;
//! other cgroups are only read.
mod layout;
mod owned;
mod reader;

pub use layout::{Controller, Layout, Version};
pub use owned::{OwnedCgroup, inode, prune_empty, remove_subtree};
pub use reader::{CgroupReader, Counters};

/// Name of faasload's own subtree in every hierarchy.
pub const SUBTREE: &str = "faasload";

/// Errors of cgroup access, with the path involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy found in /proc/self/mountinfo")]
    NoHierarchy,
    #[error("cgroup v{0} requested but not mounted on this host")]
    NotMounted(u8),
    #[error("refusing to touch {0}: not under faasload's own subtree")]
    NotOwned(String),
    #[error("{path}: cannot parse {what}: {text:?}")]
    Parse {
        path: std::path::PathBuf,
        what: &'static str,
        text: String,
    },
}

impl CgroupError {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        CgroupError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result of cgroup access.
pub type Result<T> = std::result::Result<T, CgroupError>;
