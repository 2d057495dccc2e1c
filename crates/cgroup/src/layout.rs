//! The host's cgroup hierarchies, read from /proc/self/mountinfo: cgroup v1 controllers
//! (hybrid hosts) and/or the cgroup2 unified tree. The version used for containers is the
//! v1 one when the `cpu` controller is mounted on v1, else v2; callers may force one.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{CgroupError, Result};

/// The cgroup version faasload works with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    #[serde(rename = "v1")]
    V1,
    #[serde(rename = "v2")]
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// The v1 controllers faasload uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Memory,
    Freezer,
    Pids,
}

impl Controller {
    /// All controllers faasload uses, in creation order.
    pub const ALL: [Controller; 5] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Memory,
        Controller::Freezer,
        Controller::Pids,
    ];

    /// Kernel name of the controller.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Memory => "memory",
            Controller::Freezer => "freezer",
            Controller::Pids => "pids",
        }
    }
}

/// Where the hierarchies are mounted, and which version is in use.
#[derive(Clone, Debug)]
pub struct Layout {
    version: Version,
    v1: BTreeMap<Controller, PathBuf>,
    v2: Option<PathBuf>,
}

impl Layout {
    /// Reads the mounts and picks the version: v1 when `cpu` is a v1 controller here.
    pub fn detect() -> Result<Layout> {
        Self::detect_with(None)
    }

    /// Like [`Layout::detect`], with the version forced when `version` is given.
    pub fn detect_with(version: Option<Version>) -> Result<Layout> {
        let text = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| CgroupError::io("/proc/self/mountinfo", e))?;
        Self::from_mountinfo(&text, version)
    }

    /// Builds a layout from the text of a mountinfo file.
    pub fn from_mountinfo(text: &str, version: Option<Version>) -> Result<Layout> {
        let mut v1 = BTreeMap::new();
        let mut v2 = None;
        for line in text.lines() {
            // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mut l = left.split(' ');
            let mount = l.nth(4).map(unescape);
            let mut r = right.split(' ');
            let fstype = r.next();
            let superopts = r.nth(1).unwrap_or("");
            let Some(mount) = mount else { continue };
            match fstype {
                Some("cgroup2") if v2.is_none() => {
                    v2 = Some(PathBuf::from(mount));
                }
                Some("cgroup") => {
                    for opt in superopts.split(',') {
                        for c in Controller::ALL {
                            if opt == c.name() {
                                v1.entry(c).or_insert_with(|| PathBuf::from(&mount));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let auto = if v1.contains_key(&Controller::Cpu) {
            Version::V1
        } else {
            Version::V2
        };
        let version = version.unwrap_or(auto);
        match version {
            Version::V1 if v1.is_empty() => return Err(CgroupError::NotMounted(1)),
            Version::V2 if v2.is_none() => return Err(CgroupError::NotMounted(2)),
            _ => {}
        }
        if v1.is_empty() && v2.is_none() {
            return Err(CgroupError::NoHierarchy);
        }
        Ok(Layout { version, v1, v2 })
    }

    /// The version in use for containers.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Mount point of a v1 controller, if mounted.
    pub fn v1(&self, c: Controller) -> Option<&Path> {
        self.v1.get(&c).map(PathBuf::as_path)
    }

    /// Mount point of the cgroup2 tree, if mounted.
    pub fn v2(&self) -> Option<&Path> {
        self.v2.as_deref()
    }

    /// The hierarchy whose cgroup ids key CPU accounting: v1 `cpu`, or the v2 root.
    pub fn cpu_root(&self) -> &Path {
        match self.version {
            Version::V1 => self.v1(Controller::Cpu).expect("checked in detect"),
            Version::V2 => self.v2().expect("checked in detect"),
        }
    }

    /// Distinct directories (one per hierarchy in use) in which a container cgroup lives.
    pub fn roots(&self) -> Vec<PathBuf> {
        match self.version {
            Version::V2 => self.v2.iter().cloned().collect(),
            Version::V1 => {
                let mut out: Vec<PathBuf> = Vec::new();
                for p in self.v1.values() {
                    if !out.contains(p) {
                        out.push(p.clone());
                    }
                }
                out
            }
        }
    }

    /// Directory of the cgroup `rel` for controller `c` (v1) or in the v2 tree.
    pub fn dir(&self, c: Controller, rel: &Path) -> Option<PathBuf> {
        match self.version {
            Version::V1 => self.v1(c).map(|m| m.join(rel)),
            Version::V2 => self.v2().map(|m| m.join(rel)),
        }
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = oct.and_then(|o| u8::from_str_radix(o, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:28 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const PURE_V2: &str =
        "35 25 0:31 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn hybrid_picks_v1_and_knows_both() {
        let l = Layout::from_mountinfo(HYBRID, None).unwrap();
        assert_eq!(l.version(), Version::V1);
        assert_eq!(
            l.v1(Controller::Memory).unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
        assert_eq!(l.v2().unwrap(), Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(l.cpu_root(), Path::new("/sys/fs/cgroup/cpu"));
        let forced = Layout::from_mountinfo(HYBRID, Some(Version::V2)).unwrap();
        assert_eq!(forced.cpu_root(), Path::new("/sys/fs/cgroup/unified"));
        assert_eq!(
            forced.roots(),
            vec![PathBuf::from("/sys/fs/cgroup/unified")]
        );
    }

    #[test]
    fn pure_v2_and_missing_v1() {
        let l = Layout::from_mountinfo(PURE_V2, None).unwrap();
        assert_eq!(l.version(), Version::V2);
        assert!(matches!(
            Layout::from_mountinfo(PURE_V2, Some(Version::V1)),
            Err(CgroupError::NotMounted(1))
        ));
        assert!(matches!(
            Layout::from_mountinfo("", None),
            Err(CgroupError::NotMounted(2))
        ));
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
    }
}
