//! The sampling thread: one sample of every container per interval, on absolute
//! deadlines of the monotonic clock (no drift), on its own OS thread so that no client,
//! socket or event handling ever delays it. Also expires containers after their grace.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::state::Monitor;

/// Runs until `stop` is set.
pub(crate) fn run(m: Arc<Monitor>, stop: Arc<AtomicBool>) {
    let interval = m.cfg.interval();
    let mut next = Instant::now() + interval;
    let mut last_expire = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        m.sample_all();
        m.stats.sample_ticks.fetch_add(1, Ordering::Relaxed);
        next += interval;
        let after = Instant::now();
        if after > next {
            // Overran one or more ticks: skip them (counted), never burst to catch up.
            m.stats.late_ticks.fetch_add(1, Ordering::Relaxed);
            let behind = (after - next).as_nanos() / interval.as_nanos().max(1) + 1;
            next += interval * behind as u32;
        }
        if after - last_expire > Duration::from_secs(1) {
            m.expire();
            last_expire = after;
        }
    }
}
