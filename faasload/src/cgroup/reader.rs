//! Cheap reads of one cgroup's counters: files are opened once and re-read with `pread`,
//! so a sample costs a few syscalls and no path lookups. Works for any cgroup (read only),
//! except [`CgroupReader::reset_peak`] which resets a peak counter (v2: only this reader's
//! view of it; v1: the cgroup's `memory.max_usage_in_bytes`).
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Controller, Layout, Version};

/// One reading of a cgroup's counters; None where this host or cgroup lacks the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    /// Cumulative CPU time (ns): v1 `cpuacct.usage`, v2 `cpu.stat usage_usec`.
    pub cpu_ns: Option<u64>,
    /// Cumulative user CPU time (ns).
    pub cpu_user_ns: Option<u64>,
    /// Cumulative system CPU time (ns).
    pub cpu_sys_ns: Option<u64>,
    /// Memory charged now (bytes): v1 `memory.usage_in_bytes`, v2 `memory.current`.
    pub mem_bytes: Option<u64>,
    /// FaaSLoad's memory metric: rss + mapped_file (v1) or anon + file_mapped (v2).
    pub mem_rss_mapped: Option<u64>,
    /// Peak memory since the last reset (bytes).
    pub mem_peak: Option<u64>,
    /// Page faults (cumulative).
    pub pgfault: Option<u64>,
    /// Major page faults (cumulative).
    pub pgmajfault: Option<u64>,
    /// OOM kills in this cgroup (cumulative).
    pub oom_kills: Option<u64>,
}

/// Open files of one cgroup.
#[derive(Debug)]
pub struct CgroupReader {
    version: Version,
    cpu_usage: Option<File>,
    cpu_user: Option<File>,
    cpu_sys: Option<File>,
    cpu_stat: Option<File>,
    mem_usage: Option<File>,
    mem_peak: Option<File>,
    mem_stat: Option<File>,
    mem_events: Option<File>,
    freezer: Option<File>,
    paths: Vec<PathBuf>,
}

fn open(p: PathBuf, write: bool) -> Option<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(write)
        .open(p)
        .ok()
}

impl CgroupReader {
    /// Opens the counter files of cgroup `rel` (relative to the hierarchy roots).
    pub fn open(layout: &Layout, rel: &Path) -> CgroupReader {
        let d = |c| layout.dir(c, rel);
        let f = |c, name: &str| d(c).and_then(|d| open(d.join(name), false));
        let version = layout.version();
        let mut paths: Vec<PathBuf> = Vec::new();
        for c in Controller::ALL {
            if let Some(p) = d(c) {
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        match version {
            Version::V1 => CgroupReader {
                version,
                cpu_usage: f(Controller::Cpuacct, "cpuacct.usage"),
                cpu_user: f(Controller::Cpuacct, "cpuacct.usage_user"),
                cpu_sys: f(Controller::Cpuacct, "cpuacct.usage_sys"),
                cpu_stat: None,
                mem_usage: f(Controller::Memory, "memory.usage_in_bytes"),
                mem_peak: d(Controller::Memory)
                    .and_then(|d| open(d.join("memory.max_usage_in_bytes"), true)),
                mem_stat: f(Controller::Memory, "memory.stat"),
                mem_events: f(Controller::Memory, "memory.oom_control"),
                freezer: f(Controller::Freezer, "freezer.state"),
                paths,
            },
            Version::V2 => CgroupReader {
                version,
                cpu_usage: None,
                cpu_user: None,
                cpu_sys: None,
                cpu_stat: f(Controller::Cpu, "cpu.stat"),
                mem_usage: f(Controller::Memory, "memory.current"),
                mem_peak: d(Controller::Memory).and_then(|d| open(d.join("memory.peak"), true)),
                mem_stat: f(Controller::Memory, "memory.stat"),
                mem_events: f(Controller::Memory, "memory.events"),
                freezer: f(Controller::Cpu, "cgroup.events"),
                paths,
            },
        }
    }

    /// The cgroup's directories (one per hierarchy).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Does the cgroup still exist?
    pub fn exists(&self) -> bool {
        self.paths.first().is_some_and(|p| p.exists())
    }

    /// Reads every counter.
    pub fn read(&self) -> Counters {
        let mut buf = [0u8; 8192];
        let mut c = Counters::default();
        match self.version {
            Version::V1 => {
                c.cpu_ns = read_u64(&self.cpu_usage, &mut buf);
                c.cpu_user_ns = read_u64(&self.cpu_user, &mut buf);
                c.cpu_sys_ns = read_u64(&self.cpu_sys, &mut buf);
                c.mem_bytes = read_u64(&self.mem_usage, &mut buf);
                c.mem_peak = read_u64(&self.mem_peak, &mut buf);
                if let Some(s) = read_text(&self.mem_stat, &mut buf) {
                    let rss = kv(s, "total_rss");
                    let mapped = kv(s, "total_mapped_file");
                    c.mem_rss_mapped = rss.zip(mapped).map(|(a, b)| a + b);
                    c.pgfault = kv(s, "total_pgfault");
                    c.pgmajfault = kv(s, "total_pgmajfault");
                }
                c.oom_kills = read_text(&self.mem_events, &mut buf).and_then(|s| kv(s, "oom_kill"));
            }
            Version::V2 => {
                if let Some(s) = read_text(&self.cpu_stat, &mut buf) {
                    c.cpu_ns = kv(s, "usage_usec").map(|v| v * 1000);
                    c.cpu_user_ns = kv(s, "user_usec").map(|v| v * 1000);
                    c.cpu_sys_ns = kv(s, "system_usec").map(|v| v * 1000);
                }
                c.mem_bytes = read_u64(&self.mem_usage, &mut buf);
                c.mem_peak = read_u64(&self.mem_peak, &mut buf);
                if let Some(s) = read_text(&self.mem_stat, &mut buf) {
                    let anon = kv(s, "anon");
                    let mapped = kv(s, "file_mapped");
                    c.mem_rss_mapped = anon.zip(mapped).map(|(a, b)| a + b);
                    c.pgfault = kv(s, "pgfault");
                    c.pgmajfault = kv(s, "pgmajfault");
                }
                c.oom_kills = read_text(&self.mem_events, &mut buf).and_then(|s| kv(s, "oom_kill"));
            }
        }
        c
    }

    /// Only the memory charged now (the cheapest sample).
    pub fn mem_bytes(&self) -> Option<u64> {
        read_u64(&self.mem_usage, &mut [0u8; 64])
    }

    /// Is the cgroup frozen (v1 freezer `FROZEN`, v2 `frozen 1`)?
    pub fn frozen(&self) -> Option<bool> {
        let mut buf = [0u8; 512];
        let s = read_text(&self.freezer, &mut buf)?;
        Some(match self.version {
            Version::V1 => s.trim() == "FROZEN",
            Version::V2 => s.lines().any(|l| l == "frozen 1"),
        })
    }

    /// Resets the peak memory counter; returns false if this host cannot.
    pub fn reset_peak(&self) -> bool {
        let Some(f) = &self.mem_peak else {
            return false;
        };
        let mut f: &File = f;
        let v: &[u8] = match self.version {
            Version::V1 => b"0",
            Version::V2 => b"reset",
        };
        f.write_all(v).is_ok()
    }
}

fn read_text<'a>(f: &Option<File>, buf: &'a mut [u8]) -> Option<&'a str> {
    let f = f.as_ref()?;
    let n = f.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

fn read_u64(f: &Option<File>, buf: &mut [u8]) -> Option<u64> {
    read_text(f, buf)?.trim().parse().ok()
}

/// Value of `key` in a `key value` per line file.
fn kv(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::kv;

    #[test]
    fn key_values() {
        let s = "cache 10\nrss 20\ntotal_rss 30\ntotal_mapped_file 4\n";
        assert_eq!(kv(s, "rss"), Some(20));
        assert_eq!(kv(s, "total_rss"), Some(30));
        assert_eq!(kv(s, "missing"), None);
    }
}
