//! A precise sleep: tokio's timer has 1 ms granularity, so sleep with it until shortly
//! before the deadline, then yield-spin on the monotonic clock for the last stretch.
use std::time::Duration;

use tokio::time::Instant;

/// How much of the wait is spun rather than slept.
pub const SPIN: Duration = Duration::from_micros(1500);

/// Returns at `deadline` (or at once if it has passed), within a few microseconds.
pub async fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now + SPIN {
        tokio::time::sleep_until(deadline - SPIN).await;
    }
    while Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_wakes_early() {
        for us in [0u64, 50, 900, 2500, 7000] {
            let d = Instant::now() + Duration::from_micros(us);
            sleep_until(d).await;
            assert!(Instant::now() >= d, "woke before a {us} µs deadline");
        }
    }
}
