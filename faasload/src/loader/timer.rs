//! Precise waiting for the scheduler thread: absolute CLOCK_MONOTONIC deadlines slept with
//! `clock_nanosleep(TIMER_ABSTIME)` on a thread whose timer slack is 1 ns (Linux adds the
//! default 50 µs of slack to every sleep of a normal thread). A release costs one
//! wake-up: no spinning, so the loader leaves the cores to what it measures.
use crate::util::clock::mono_ns;

/// Asks the kernel to wake this thread as close to its deadlines as it can (the slack is
/// per thread; only the scheduler thread calls this).
pub fn precise_wakeups() {
    // SAFETY: PR_SET_TIMERSLACK takes an integer and touches only this thread's state.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
}

/// Sleeps until `deadline_ns` on the CLOCK_MONOTONIC clock ([`mono_ns`]); returns at
/// once if it has passed. Never returns early (an interrupted sleep is resumed).
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    while mono_ns() < deadline_ns {
        // SAFETY: `ts` is a valid timespec; no remaining-time output with TIMER_ABSTIME.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if r != 0 && r != libc::EINTR {
            // Cannot happen with a valid absolute timespec; fall back to a short sleep
            // rather than spinning.
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_wakes_early() {
        precise_wakeups();
        for us in [0u64, 50, 900, 2500, 7000] {
            let d = mono_ns() + us * 1000;
            sleep_until_ns(d);
            assert!(mono_ns() >= d, "woke before a {us} µs deadline");
        }
    }

    #[test]
    fn a_passed_deadline_returns_at_once() {
        let before = mono_ns();
        sleep_until_ns(before.saturating_sub(1_000_000_000));
        // A generous bound: only checks that it did not sleep a whole second.
        assert!(mono_ns() - before < 500_000_000);
    }
}
