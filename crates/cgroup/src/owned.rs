//! Cgroups that faasload creates (always below `faasload/` in each hierarchy), with the
//! limits OpenWhisk's invoker sets, freezing, and removal that kills only the processes
//! placed there by faasload itself.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{CgroupError, Controller, Layout, Result, SUBTREE, Version};

/// A cgroup created by faasload, present in every hierarchy it needs.
#[derive(Debug)]
pub struct OwnedCgroup {
    layout: Layout,
    rel: PathBuf,
    /// (controller or None for v2, directory), in creation order.
    dirs: Vec<(Option<Controller>, PathBuf)>,
    removed: bool,
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| CgroupError::io(path, e))
}

impl OwnedCgroup {
    /// Creates `faasload/<rel>` (parents included) in every hierarchy in use. `rel` must be
    /// a relative path without `..`.
    pub fn create(layout: &Layout, rel: impl AsRef<Path>) -> Result<OwnedCgroup> {
        let rel = Path::new(SUBTREE).join(rel.as_ref());
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(CgroupError::NotOwned(rel.display().to_string()));
        }
        let mut dirs = Vec::new();
        match layout.version() {
            Version::V2 => {
                let root = layout.v2().ok_or(CgroupError::NotMounted(2))?;
                dirs.push((None, root.join(&rel)));
            }
            Version::V1 => {
                let mut seen: Vec<PathBuf> = Vec::new();
                for c in Controller::ALL {
                    if let Some(m) = layout.v1(c)
                        && !seen.iter().any(|s| s == m)
                    {
                        seen.push(m.to_path_buf());
                        dirs.push((Some(c), m.join(&rel)));
                    }
                }
            }
        }
        let mut cg = OwnedCgroup {
            layout: layout.clone(),
            rel,
            dirs: Vec::new(),
            removed: false,
        };
        for (c, d) in dirs {
            std::fs::create_dir_all(&d).map_err(|e| CgroupError::io(&d, e))?;
            cg.dirs.push((c, d));
        }
        if layout.version() == Version::V2 {
            cg.enable_v2_controllers();
        }
        Ok(cg)
    }

    /// On v2, enables the controllers the parent offers, from faasload's subtree root down
    /// (best effort: a host without them still gets a cgroup, just without those limits).
    fn enable_v2_controllers(&self) {
        let Some(root) = self.layout.v2() else { return };
        let mut dir = root.to_path_buf();
        for comp in self.rel.parent().into_iter().flat_map(|p| p.components()) {
            dir.push(comp);
            let avail = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
            for c in ["cpu", "memory", "pids"] {
                if avail.split_whitespace().any(|w| w == c) {
                    let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{c}"));
                }
            }
        }
    }

    /// Path relative to the hierarchy roots (`faasload/...`).
    pub fn rel(&self) -> &Path {
        &self.rel
    }

    /// The directory of this cgroup for controller `c` (v1) or the v2 directory.
    pub fn dir(&self, c: Controller) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(k, _)| k.is_none() || *k == Some(c))
            .map(|(_, d)| d.as_path())
    }

    /// Every directory of this cgroup.
    pub fn dirs(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|(_, d)| d.as_path())
    }

    /// Moves process `pid` (one faasload started) into this cgroup in every hierarchy.
    pub fn add_pid(&self, pid: u32) -> Result<()> {
        for (_, d) in &self.dirs {
            write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Processes in this cgroup (from the CPU hierarchy).
    pub fn procs(&self) -> Result<Vec<u32>> {
        let d = self.dirs.first().map(|(_, d)| d.join("cgroup.procs"));
        let Some(p) = d else { return Ok(vec![]) };
        let text = std::fs::read_to_string(&p).map_err(|e| CgroupError::io(&p, e))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Memory limit without swap (OpenWhisk: `--memory M --memory-swap M`).
    pub fn set_memory_limit(&self, bytes: u64) -> Result<()> {
        match self.layout.version() {
            Version::V1 => {
                if let Some(d) = self.dir(Controller::Memory) {
                    write(&d.join("memory.limit_in_bytes"), &bytes.to_string())?;
                    let sw = d.join("memory.memsw.limit_in_bytes");
                    if sw.exists() {
                        write(&sw, &bytes.to_string())?;
                    }
                    let _ = std::fs::write(d.join("memory.swappiness"), "0");
                }
            }
            Version::V2 => {
                if let Some(d) = self.dir(Controller::Memory) {
                    let max = d.join("memory.max");
                    if max.exists() {
                        write(&max, &bytes.to_string())?;
                        let sw = d.join("memory.swap.max");
                        if sw.exists() {
                            write(&sw, "0")?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// CPU shares (v1 `cpu.shares`; v2 `cpu.weight` mapped from shares like runc does).
    pub fn set_cpu_shares(&self, shares: u64) -> Result<()> {
        let Some(d) = self.dir(Controller::Cpu) else {
            return Ok(());
        };
        match self.layout.version() {
            Version::V1 => write(&d.join("cpu.shares"), &shares.max(2).to_string()),
            Version::V2 => {
                let w = d.join("cpu.weight");
                if w.exists() {
                    let shares = shares.clamp(2, 262_144);
                    let weight = 1 + ((shares - 2) * 9999) / 262_142;
                    write(&w, &weight.to_string())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Maximum number of tasks.
    pub fn set_pids_max(&self, n: u64) -> Result<()> {
        if let Some(d) = self.dir(Controller::Pids) {
            let p = d.join("pids.max");
            if p.exists() {
                write(&p, &n.to_string())?;
            }
        }
        Ok(())
    }

    /// Freezes (true) or thaws (false) every process of the cgroup and waits until done.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        match self.layout.version() {
            Version::V1 => {
                let Some(d) = self.dir(Controller::Freezer) else {
                    return Ok(());
                };
                let want = if frozen { "FROZEN" } else { "THAWED" };
                write(&d.join("freezer.state"), want)?;
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let s = std::fs::read_to_string(d.join("freezer.state")).unwrap_or_default();
                    if s.trim() == want || Instant::now() > deadline {
                        return Ok(());
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Version::V2 => {
                let Some(d) = self.dir(Controller::Cpu) else {
                    return Ok(());
                };
                write(&d.join("cgroup.freeze"), if frozen { "1" } else { "0" })
            }
        }
    }

    /// Kills every process of the cgroup (they are faasload's own: only faasload puts
    /// processes here) and waits until it is empty, up to `timeout`.
    pub fn kill_all(&self, timeout: Duration) -> Result<()> {
        let _ = self.set_frozen(false);
        let deadline = Instant::now() + timeout;
        loop {
            let pids = self.procs()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                // SAFETY: plain syscall; pids come from our own cgroup.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            if Instant::now() > deadline {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Kills what is left and removes the cgroup directories (children first).
    pub fn remove(mut self) -> Result<()> {
        self.remove_inner()
    }

    fn remove_inner(&mut self) -> Result<()> {
        if self.removed {
            return Ok(());
        }
        self.kill_all(Duration::from_secs(5))?;
        let mut first_err = None;
        for (_, d) in self.dirs.iter().rev() {
            if let Err(e) = remove_tree(d) {
                first_err.get_or_insert(e);
            }
        }
        self.removed = true;
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for OwnedCgroup {
    fn drop(&mut self) {
        if let Err(e) = self.remove_inner() {
            tracing::warn!("could not remove cgroup {}: {e}", self.rel.display());
        }
    }
}

/// Removes a cgroup directory and its child cgroups (rmdir, deepest first), retrying
/// briefly while the kernel finishes releasing exited tasks.
fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(CgroupError::io(dir, e)),
        }
    }
}

/// Removes faasload's subtree `faasload/<rel>` in every hierarchy (used by clean-ups).
pub fn remove_subtree(layout: &Layout, rel: &Path) -> Result<()> {
    let rel = Path::new(SUBTREE).join(rel);
    for root in layout
        .roots()
        .into_iter()
        .chain(layout.v2().map(Path::to_path_buf))
    {
        remove_tree(&root.join(&rel))?;
    }
    Ok(())
}

/// Removes `faasload/<rel>` and then `faasload/` itself in every hierarchy, if they are
/// empty of child cgroups (another user of the subtree keeps them: rmdir then fails with
/// EBUSY and nothing happens).
pub fn prune_empty(layout: &Layout, rel: &Path) {
    let roots = layout
        .roots()
        .into_iter()
        .chain(layout.v2().map(Path::to_path_buf));
    for root in roots {
        let _ = std::fs::remove_dir(root.join(SUBTREE).join(rel));
        let _ = std::fs::remove_dir(root.join(SUBTREE));
    }
}

/// The inode number of a cgroup directory, which is its cgroup id.
pub fn inode(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir)
        .map(|m| m.ino())
        .map_err(|e| CgroupError::io(dir, e))
}
