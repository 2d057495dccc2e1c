//! Clocks: CLOCK_MONOTONIC nanoseconds (the clock of `bpf_ktime_get_ns`) and wall-clock
//! epoch time, plus the conversion between them taken once at start-up.
use std::time::{SystemTime, UNIX_EPOCH};

/// CLOCK_MONOTONIC in nanoseconds (same clock as the kernel programs' timestamps).
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Wall-clock time since the epoch in nanoseconds.
pub fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Converts monotonic timestamps to epoch time with an offset measured once.
#[derive(Clone, Copy, Debug)]
pub struct EpochMap {
    offset_ns: i128,
}

impl EpochMap {
    /// Measures the offset between the two clocks now (the pair read with the tightest gap
    /// of a few tries).
    pub fn now() -> EpochMap {
        let mut best = (u64::MAX, 0i128);
        for _ in 0..5 {
            let a = mono_ns();
            let e = epoch_ns();
            let b = mono_ns();
            if b - a < best.0 {
                best = (b - a, e as i128 - (a as i128 + (b - a) as i128 / 2));
            }
        }
        EpochMap { offset_ns: best.1 }
    }

    /// Epoch nanoseconds of monotonic instant `mono`.
    pub(crate) fn to_epoch(&self, mono: u64) -> u64 {
        (mono as i128 + self.offset_ns).max(0) as u64
    }

    /// Monotonic nanoseconds of epoch instant `epoch`.
    pub(crate) fn to_mono(&self, epoch: u64) -> u64 {
        (epoch as i128 - self.offset_ns).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = EpochMap::now();
        let t = mono_ns();
        assert_eq!(m.to_mono(m.to_epoch(t)), t);
        let diff = m.to_epoch(mono_ns()) as i128 - epoch_ns() as i128;
        assert!(diff.abs() < 50_000_000, "clocks disagree by {diff} ns");
    }
}
