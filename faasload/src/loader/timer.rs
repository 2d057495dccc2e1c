//! Precise waits for the scheduler's own thread. tokio's timer has 1 ms granularity and a
//! yield-spin on a runtime worker keeps a core busy, so the scheduler runs on a dedicated
//! OS thread that sleeps with an absolute `clock_nanosleep` on CLOCK_MONOTONIC (the
//! thread's timer slack lowered to 1 ns) until [`SPIN_NS`] before the deadline, then
//! busy-waits the last stretch: a virtual machine's timer wake-up alone takes tens of
//! microseconds, so sleeping to the deadline would make every release late.
use crate::util::clock::mono_ns;

/// How much of each wait is busy-waited rather than slept.
pub const SPIN_NS: u64 = 100_000;

/// The longest single sleep, so a stop request is seen within this time.
pub const MAX_SLEEP_NS: u64 = 10_000_000;

/// Lowers the calling thread's timer slack to 1 ns (the default 50 µs would be added to
/// every wake-up). Failure only costs precision, so it is reported, not fatal.
pub fn tighten_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and affects this thread only.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        tracing::debug!(
            "PR_SET_TIMERSLACK failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Blocks the calling thread until CLOCK_MONOTONIC reaches `deadline_ns` (returns at once
/// if it has passed). Checks `stopped` at least every [`MAX_SLEEP_NS`]; returns false
/// when it says stop before the deadline.
pub fn wait_until(deadline_ns: u64, stopped: impl Fn() -> bool) -> bool {
    loop {
        let now = mono_ns();
        if now >= deadline_ns {
            return true;
        }
        let left = deadline_ns - now;
        if left <= SPIN_NS {
            while mono_ns() < deadline_ns {
                std::hint::spin_loop();
            }
            return true;
        }
        if stopped() {
            return false;
        }
        let wake = now + (left - SPIN_NS).min(MAX_SLEEP_NS);
        sleep_until_abs(wake);
    }
}

/// One absolute sleep on CLOCK_MONOTONIC (an interrupted sleep simply returns early; the
/// caller's loop re-checks the clock).
fn sleep_until_abs(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: valid timespec; a null remainder is allowed with TIMER_ABSTIME.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_wakes_early() {
        tighten_timer_slack();
        for us in [0u64, 50, 900, 2500, 15_000] {
            let d = mono_ns() + us * 1000;
            assert!(wait_until(d, || false));
            assert!(mono_ns() >= d, "woke before a {us} µs deadline");
        }
    }

    #[test]
    fn a_stop_request_ends_a_long_wait() {
        let d = mono_ns() + 60_000_000_000;
        let t0 = mono_ns();
        assert!(!wait_until(d, || mono_ns() > t0 + 30_000_000));
        assert!(mono_ns() < d);
    }

    #[test]
    fn a_passed_deadline_returns_at_once() {
        assert!(wait_until(mono_ns().saturating_sub(1), || true));
    }
}
