//! A precise async sleep for the sender threads. tokio's timer has 1 ms granularity, so
//! the wait is armed on a `timerfd` (the kernel's high-resolution timer, absolute
//! CLOCK_MONOTONIC deadline, no timer slack) registered with the runtime, set to fire a
//! little before the deadline; the last stretch is spun with `yield_now` (the runtime
//! keeps polling I/O meanwhile). The stretch adapts: it tracks the 99th percentile of
//! the timer's own lateness on this machine (tens of µs on bare metal, up to ~200 µs on
//! some VMs), so a precise host spins little and a noisy one still sends on time.
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use faasload_os::clock::mono_ns;

/// Bounds of the spun stretch (ns).
const MIN_SPIN_NS: f64 = 20_000.0;
const MAX_SPIN_NS: f64 = 1_000_000.0;
/// Step of the quantile tracker (ns): the estimate rises by 0.99 step when the timer is
/// later than it, and falls by 0.01 step otherwise, settling on the 99th percentile.
const STEP_NS: f64 = 4_000.0;
const QUANTILE: f64 = 0.99;
/// The last stretch before a deadline is busy-waited without yielding (ns).
const BUSY_WAIT_NS: u64 = 15_000;

/// A reusable precise sleeper (one per sender thread; must be created inside a runtime).
pub(crate) struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
    /// Current estimate of the timer's p99 lateness, i.e. how early it is armed (ns).
    spin_ns: f64,
}

impl PreciseTimer {
    /// How long before a deadline the timer is currently armed (ns).
    #[cfg(test)]
    fn spin_ns(&self) -> u64 {
        self.spin_ns as u64
    }

    /// A timer registered with the current runtime.
    pub(crate) fn new() -> std::io::Result<PreciseTimer> {
        // SAFETY: plain syscall; the returned descriptor is owned below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd is moved into the AsyncFd, which keeps it open (and the
        // same descriptor) for its whole life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(PreciseTimer {
            fd,
            spin_ns: 100_000.0,
        })
    }

    /// Returns at `deadline_ns` on the CLOCK_MONOTONIC clock ([`mono_ns`]), never before;
    /// at once if it has passed.
    pub(crate) async fn sleep_until(&mut self, deadline_ns: u64) -> std::io::Result<()> {
        let wake = deadline_ns.saturating_sub(self.spin_ns as u64);
        if mono_ns() < wake {
            self.arm(wake)?;
            loop {
                let mut guard = self.fd.readable().await?;
                let mut expirations = 0u64;
                // SAFETY: reads 8 bytes into a u64 from a timerfd we own.
                let n = unsafe {
                    libc::read(
                        guard.get_inner().as_raw_fd(),
                        (&raw mut expirations).cast(),
                        8,
                    )
                };
                // Readiness is cleared either way: after a read the next expiry is a
                // new edge, and a stale readiness would cost the next wait a read.
                guard.clear_ready();
                if n == 8 {
                    break;
                }
            }
            self.learn(mono_ns().saturating_sub(wake));
        }
        // Yield while there is time (the runtime polls I/O meanwhile: answers of
        // earlier invocations are read), busy-wait the last few µs.
        loop {
            let now = mono_ns();
            if now >= deadline_ns {
                return Ok(());
            }
            if deadline_ns - now > BUSY_WAIT_NS {
                tokio::task::yield_now().await;
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn arm(&self, at_ns: u64) -> std::io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (at_ns / 1_000_000_000) as libc::time_t,
                tv_nsec: (at_ns % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and itimerspec; no old value requested.
        let r = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// One observation of the timer's lateness.
    fn learn(&mut self, late_ns: u64) {
        let step = if late_ns as f64 > self.spin_ns {
            STEP_NS * QUANTILE
        } else {
            -STEP_NS * (1.0 - QUANTILE)
        };
        self.spin_ns = (self.spin_ns + step).clamp(MIN_SPIN_NS, MAX_SPIN_NS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn never_wakes_early() {
        let mut t = PreciseTimer::new().unwrap();
        for us in [0u64, 50, 900, 2500, 7000, 300] {
            let d = mono_ns() + us * 1000;
            t.sleep_until(d).await.unwrap();
            assert!(mono_ns() >= d, "woke before a {us} µs deadline");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_passed_deadline_returns_at_once() {
        let mut t = PreciseTimer::new().unwrap();
        let before = mono_ns();
        t.sleep_until(before.saturating_sub(1_000_000_000))
            .await
            .unwrap();
        // A generous bound: only checks that it did not wait for the timer at all.
        assert!(mono_ns() - before < 500_000_000);
    }

    #[test]
    fn the_spun_stretch_settles_on_a_high_quantile_within_bounds() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let mut t = PreciseTimer::new().unwrap();
        // Lateness 50 µs 98 % of the time, 300 µs 2 %: the p99 is 300 µs.
        for i in 0..20_000u64 {
            t.learn(if i % 50 == 0 { 300_000 } else { 50_000 });
        }
        assert!(
            (250_000..=310_000).contains(&t.spin_ns()),
            "{} ns",
            t.spin_ns()
        );
        // A quiet timer brings it down to the floor; a wild one is capped.
        for _ in 0..200_000 {
            t.learn(1_000);
        }
        assert_eq!(t.spin_ns(), MIN_SPIN_NS as u64);
        for _ in 0..10_000 {
            t.learn(50_000_000);
        }
        assert_eq!(t.spin_ns(), MAX_SPIN_NS as u64);
    }
}
