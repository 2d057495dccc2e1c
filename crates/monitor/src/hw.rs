//! Hardware counters (cycles, instructions, cache and LLC misses): available only where
//! the CPU exposes a PMU to the kernel (`/sys/bus/event_source/devices/cpu`). Virtual
//! machines like our development hosts have none; then every answer says
//! `available: false` with the reason, never zeros. Counting itself would use
//! `perf_event_open` in cgroup mode (one event per CPU per container, `PERF_FLAG_PID_CGROUP`),
//! which needs the v2 tree or a v1 `perf_event` hierarchy.
use std::path::Path;

use super::state::Hardware;

/// Says whether hardware counters can be had on this host, and why not.
pub(crate) fn detect() -> Hardware {
    detect_in(Path::new("/sys/bus/event_source/devices"))
}

fn detect_in(devices: &Path) -> Hardware {
    if !devices.join("cpu").exists() {
        return Hardware {
            available: false,
            reason: Some(format!(
                "no CPU PMU exposed by this machine ({} missing)",
                devices.join("cpu").display()
            )),
        };
    }
    Hardware {
        available: false,
        reason: Some("the CPU has a PMU, but per-container hardware counting is not implemented in this version".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pmu_is_unavailable_with_reason() {
        let tmp = tempfile::tempdir().unwrap();
        let h = detect_in(tmp.path());
        assert!(!h.available);
        assert!(h.reason.unwrap().contains("no CPU PMU"));
    }
}
