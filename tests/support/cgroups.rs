//! Test cgroups: `faasload/<unique>/<name>` in every hierarchy of the chosen version,
//! read directly from cgroupfs (the ground truth the monitor is compared with), and
//! removed when dropped (the test asserts nothing is left).
use std::path::{Path, PathBuf};

use faasload_cgroup::{Controller, Layout, OwnedCgroup, Version};

/// A group of test cgroups sharing one parent under faasload's subtree.
pub struct TestTree {
    pub layout: Layout,
    /// `<unique>`: the parent below `faasload/`.
    pub name: String,
}

impl TestTree {
    /// A new tree for cgroup version `v` (None: the host's choice).
    pub fn new(v: Option<Version>) -> TestTree {
        let layout = Layout::detect_with(v).expect("cgroup hierarchies");
        TestTree {
            layout,
            name: crate::unique("test"),
        }
    }

    /// The monitor pattern matching this tree's containers.
    pub fn pattern(&self) -> String {
        format!(
            "^faasload/{}/(?P<id>[A-Za-z0-9_.-]+)$",
            regex_escape(&self.name)
        )
    }

    /// Creates container cgroup `<name>`.
    pub fn create(&self, name: &str) -> OwnedCgroup {
        OwnedCgroup::create(&self.layout, format!("{}/{name}", self.name))
            .expect("create test cgroup")
    }

    /// Directories of this tree (for the clean-up check).
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.layout
            .roots()
            .iter()
            .map(|r| r.join("faasload").join(&self.name))
            .collect()
    }
}

impl Drop for TestTree {
    fn drop(&mut self) {
        for d in self.dirs() {
            let _ = std::fs::remove_dir(&d);
        }
        faasload_cgroup::prune_empty(&self.layout, std::path::Path::new(&self.name));
        if !std::thread::panicking() {
            for d in self.dirs() {
                assert!(!d.exists(), "test cgroup {} left behind", d.display());
            }
        }
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn kv(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The cgroup's own CPU accounting in ns (v1 cpuacct.usage, v2 cpu.stat usage_usec).
pub fn cpu_usage_ns(cg: &OwnedCgroup, v: Version) -> u64 {
    match v {
        Version::V1 => read(&cg.dir(Controller::Cpuacct).unwrap().join("cpuacct.usage"))
            .trim()
            .parse()
            .unwrap(),
        Version::V2 => {
            kv(
                &read(&cg.dir(Controller::Cpu).unwrap().join("cpu.stat")),
                "usage_usec",
            )
            .unwrap()
                * 1000
        }
    }
}

/// The cgroup's own peak memory counter, if this host has one for the version.
pub fn mem_peak(cg: &OwnedCgroup, v: Version) -> Option<u64> {
    let d = cg.dir(Controller::Memory)?;
    let f = match v {
        Version::V1 => d.join("memory.max_usage_in_bytes"),
        Version::V2 => d.join("memory.peak"),
    };
    std::fs::read_to_string(f).ok()?.trim().parse().ok()
}
