//! Container discovery by cgroup layout: which cgroup paths are containers (configurable
//! regex patterns with an `id` group) and a walk of the CPU hierarchy to find the ones
//! that exist now (at start, and as a periodic safety net to kernel events).
use std::path::{Path, PathBuf};

use regex::Regex;

use super::config::Pattern;

/// Compiled patterns.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    pats: Vec<(String, Regex)>,
}

/// A cgroup recognised as a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Found {
    /// Container id (the pattern's `id` group).
    pub id: String,
    /// Layout label.
    pub kind: String,
    /// Path relative to the hierarchy root, without leading slash.
    pub rel: PathBuf,
}

impl Matcher {
    /// Compiles the patterns (validated by the config already).
    pub(crate) fn new(patterns: &[Pattern]) -> anyhow::Result<Matcher> {
        let mut pats = Vec::new();
        for p in patterns {
            pats.push((p.kind.clone(), Regex::new(&p.regex)?));
        }
        Ok(Matcher { pats })
    }

    /// Is `rel` (relative, no leading slash) a container cgroup?
    pub(crate) fn matches(&self, rel: &str) -> Option<Found> {
        let rel = rel.trim_start_matches('/');
        for (kind, re) in &self.pats {
            if let Some(c) = re.captures(rel)
                && let Some(id) = c.name("id")
            {
                return Some(Found {
                    id: id.as_str().to_string(),
                    kind: kind.clone(),
                    rel: PathBuf::from(rel),
                });
            }
        }
        None
    }

    /// Walks `root` (a hierarchy mount) and returns every container cgroup, and for each
    /// its descendant cgroups (relative paths) whose CPU time belongs to it.
    pub(crate) fn scan(&self, root: &Path) -> Vec<(Found, Vec<PathBuf>)> {
        let mut out = Vec::new();
        let mut stack = vec![(root.to_path_buf(), 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    continue;
                }
                let p = e.path();
                let Ok(rel) = p.strip_prefix(root) else {
                    continue;
                };
                let Some(rel_s) = rel.to_str() else { continue };
                if let Some(f) = self.matches(rel_s) {
                    let subs = descendants(&p)
                        .into_iter()
                        .filter_map(|d| d.strip_prefix(root).ok().map(Path::to_path_buf))
                        .collect();
                    out.push((f, subs));
                } else if depth < 8 {
                    stack.push((p, depth + 1));
                }
            }
        }
        out
    }
}

/// Every cgroup directory below `dir` (not `dir` itself).
pub(crate) fn descendants(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(e.path());
                stack.push(e.path());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_patterns;

    #[test]
    fn scan_finds_containers_and_their_children() {
        let tmp = tempfile::tempdir().unwrap();
        let id = "b".repeat(64);
        std::fs::create_dir_all(tmp.path().join(format!("docker/{id}/sub"))).unwrap();
        std::fs::create_dir_all(tmp.path().join("faasload/platform/wsk0_3_guest_a")).unwrap();
        std::fs::create_dir_all(tmp.path().join("user.slice/other")).unwrap();
        let m = Matcher::new(&default_patterns()).unwrap();
        let mut found = m.scan(tmp.path());
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].0.id, id);
        assert_eq!(found[0].0.kind, "docker");
        assert_eq!(found[0].1, vec![PathBuf::from(format!("docker/{id}/sub"))]);
        assert_eq!(found[1].0.id, "wsk0_3_guest_a");
        assert_eq!(
            m.matches("/faasload/platform/x").unwrap().rel,
            PathBuf::from("faasload/platform/x")
        );
    }
}
