//! Cheap reads of one cgroup's counters: files are opened once and re-read with `pread`,
//! so a sample costs a few syscalls and no path lookups. Works for any cgroup (read only),
//! except [`CgroupReader::reset_peak`] which resets a peak counter (v2: only this reader's
//! view of it; v1: the cgroup's `memory.max_usage_in_bytes`).
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

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

/// A counter file, opened on first use. A cgroup's directories in the different v1
/// hierarchies appear one after the other, so a file missing at first is looked for again
/// during [`RETRY_OPEN`] after the reader was made, then given up (hosts lacking a
/// controller pay nothing per sample).
#[derive(Debug)]
struct Slot {
    path: Option<PathBuf>,
    write: bool,
    file: OnceLock<File>,
}

/// How long missing counter files are looked for again.
pub(crate) const RETRY_OPEN: Duration = Duration::from_secs(3);

impl Slot {
    fn new(path: Option<PathBuf>, write: bool) -> Slot {
        let file = OnceLock::new();
        if let Some(f) = path.as_ref().and_then(|p| open(p, write)) {
            let _ = file.set(f);
        }
        Slot { path, write, file }
    }

    fn get(&self, born: Instant) -> Option<&File> {
        if let Some(f) = self.file.get() {
            return Some(f);
        }
        if born.elapsed() > RETRY_OPEN {
            return None;
        }
        let f = open(self.path.as_ref()?, self.write)?;
        let _ = self.file.set(f);
        self.file.get()
    }
}

/// Open files of one cgroup.
#[derive(Debug)]
pub struct CgroupReader {
    version: Version,
    born: Instant,
    cpu_usage: Slot,
    cpu_user: Slot,
    cpu_sys: Slot,
    cpu_stat: Slot,
    mem_usage: Slot,
    mem_peak: Slot,
    mem_stat: Slot,
    mem_events: Slot,
    freezer: Slot,
    paths: Vec<PathBuf>,
}

fn open(p: &Path, write: bool) -> Option<File> {
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
        let f = |c, name: &str| Slot::new(d(c).map(|d| d.join(name)), false);
        let w = |c, name: &str| Slot::new(d(c).map(|d| d.join(name)), true);
        let none = || Slot::new(None, false);
        let version = layout.version();
        let mut paths: Vec<PathBuf> = Vec::new();
        for c in Controller::ALL {
            if let Some(p) = d(c)
                && !paths.contains(&p)
            {
                paths.push(p);
            }
        }
        let born = Instant::now();
        match version {
            Version::V1 => CgroupReader {
                version,
                born,
                cpu_usage: f(Controller::Cpuacct, "cpuacct.usage"),
                cpu_user: f(Controller::Cpuacct, "cpuacct.usage_user"),
                cpu_sys: f(Controller::Cpuacct, "cpuacct.usage_sys"),
                cpu_stat: none(),
                mem_usage: f(Controller::Memory, "memory.usage_in_bytes"),
                mem_peak: w(Controller::Memory, "memory.max_usage_in_bytes"),
                mem_stat: f(Controller::Memory, "memory.stat"),
                mem_events: f(Controller::Memory, "memory.oom_control"),
                freezer: f(Controller::Freezer, "freezer.state"),
                paths,
            },
            Version::V2 => CgroupReader {
                version,
                born,
                cpu_usage: none(),
                cpu_user: none(),
                cpu_sys: none(),
                cpu_stat: f(Controller::Cpu, "cpu.stat"),
                mem_usage: f(Controller::Memory, "memory.current"),
                mem_peak: w(Controller::Memory, "memory.peak"),
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
                c.cpu_ns = read_u64(self.cpu_usage.get(self.born), &mut buf);
                c.cpu_user_ns = read_u64(self.cpu_user.get(self.born), &mut buf);
                c.cpu_sys_ns = read_u64(self.cpu_sys.get(self.born), &mut buf);
                c.mem_bytes = read_u64(self.mem_usage.get(self.born), &mut buf);
                c.mem_peak = read_u64(self.mem_peak.get(self.born), &mut buf);
                if let Some(s) = read_text(self.mem_stat.get(self.born), &mut buf) {
                    let rss = kv(s, "total_rss");
                    let mapped = kv(s, "total_mapped_file");
                    c.mem_rss_mapped = rss.zip(mapped).map(|(a, b)| a + b);
                    c.pgfault = kv(s, "total_pgfault");
                    c.pgmajfault = kv(s, "total_pgmajfault");
                }
                c.oom_kills = read_text(self.mem_events.get(self.born), &mut buf)
                    .and_then(|s| kv(s, "oom_kill"));
            }
            Version::V2 => {
                if let Some(s) = read_text(self.cpu_stat.get(self.born), &mut buf) {
                    c.cpu_ns = kv(s, "usage_usec").map(|v| v * 1000);
                    c.cpu_user_ns = kv(s, "user_usec").map(|v| v * 1000);
                    c.cpu_sys_ns = kv(s, "system_usec").map(|v| v * 1000);
                }
                c.mem_bytes = read_u64(self.mem_usage.get(self.born), &mut buf);
                c.mem_peak = read_u64(self.mem_peak.get(self.born), &mut buf);
                if let Some(s) = read_text(self.mem_stat.get(self.born), &mut buf) {
                    let anon = kv(s, "anon");
                    let mapped = kv(s, "file_mapped");
                    c.mem_rss_mapped = anon.zip(mapped).map(|(a, b)| a + b);
                    c.pgfault = kv(s, "pgfault");
                    c.pgmajfault = kv(s, "pgmajfault");
                }
                c.oom_kills = read_text(self.mem_events.get(self.born), &mut buf)
                    .and_then(|s| kv(s, "oom_kill"));
            }
        }
        c
    }

    /// What one periodic sample needs, and nothing more: the memory charged, FaaSLoad's
    /// `rss + mapped_file`, and the CPU counter only when `with_cpu` (the eBPF backend
    /// has its own). Two or three file reads instead of [`read`](Self::read)'s seven:
    /// this runs for every container on every tick.
    pub fn read_sample(&self, with_cpu: bool) -> (Option<u64>, Option<u64>, Option<u64>) {
        let mut buf = [0u8; 8192];
        let cpu = if !with_cpu {
            None
        } else {
            match self.version {
                Version::V1 => read_u64(self.cpu_usage.get(self.born), &mut buf),
                Version::V2 => read_text(self.cpu_stat.get(self.born), &mut buf)
                    .and_then(|s| kv(s, "usage_usec"))
                    .map(|v| v * 1000),
            }
        };
        let mem = read_u64(self.mem_usage.get(self.born), &mut buf);
        let (rss_key, mapped_key) = match self.version {
            Version::V1 => ("total_rss", "total_mapped_file"),
            Version::V2 => ("anon", "file_mapped"),
        };
        let rss_mapped = read_text(self.mem_stat.get(self.born), &mut buf)
            .and_then(|s| kv(s, rss_key).zip(kv(s, mapped_key)))
            .map(|(a, b)| a + b);
        (cpu, mem, rss_mapped)
    }

    /// Only the memory charged now (the cheapest sample).
    pub fn mem_bytes(&self) -> Option<u64> {
        read_u64(self.mem_usage.get(self.born), &mut [0u8; 64])
    }

    /// Is the cgroup frozen (v1 freezer `FROZEN`, v2 `frozen 1`)?
    pub fn frozen(&self) -> Option<bool> {
        let mut buf = [0u8; 512];
        let s = read_text(self.freezer.get(self.born), &mut buf)?;
        Some(match self.version {
            Version::V1 => s.trim() == "FROZEN",
            Version::V2 => s.lines().any(|l| l == "frozen 1"),
        })
    }

    /// Resets the peak memory counter; returns false if this host cannot.
    pub fn reset_peak(&self) -> bool {
        let Some(f) = self.mem_peak.get(self.born) else {
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

fn read_text<'a>(f: Option<&File>, buf: &'a mut [u8]) -> Option<&'a str> {
    let f = f?;
    let n = f.read_at(buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

fn read_u64(f: Option<&File>, buf: &mut [u8]) -> Option<u64> {
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

    /// The light per-tick sample reads the same counters as the full read, on this
    /// host's real root cgroup (present on v1 and v2 alike).
    #[test]
    fn a_light_sample_reads_what_the_full_read_reads() {
        let layout = crate::Layout::detect().expect("cgroup layout");
        let r = super::CgroupReader::open(&layout, std::path::Path::new(""));
        let full = r.read();
        let (cpu, mem, rss_mapped) = r.read_sample(true);
        assert_eq!(cpu.is_some(), full.cpu_ns.is_some());
        assert_eq!(mem.is_some(), full.mem_bytes.is_some());
        assert_eq!(rss_mapped.is_some(), full.mem_rss_mapped.is_some());
        assert!(
            cpu.unwrap_or(0) >= full.cpu_ns.unwrap_or(0),
            "CPU only grows"
        );
        assert_eq!(r.read_sample(false).0, None, "no CPU read when not asked");
    }
}
