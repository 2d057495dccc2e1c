//! Per-namespace rate limits as OpenWhisk's controller applies them to invocations: a
//! per-calendar-minute counter and a count of activations in flight, with the 429 texts.
use std::collections::HashMap;
use std::sync::Mutex;

/// Why an invocation is refused (429 with this text).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Throttled {
    #[error("Too many concurrent requests in flight (count: {0}, allowed: {1}).")]
    Concurrent(u32, u32),
    #[error("Too many requests in the last minute (count: {0}, allowed: {1}).")]
    PerMinute(u32, u32),
}

#[derive(Default)]
struct NsState {
    minute: u64,
    count: u32,
    in_flight: u32,
}

/// Counters of every namespace.
#[derive(Default)]
pub struct Throttle {
    state: Mutex<HashMap<String, NsState>>,
}

impl Throttle {
    /// Admits one invocation of `ns` at `now_ms` or says why not; on success the caller
    /// must call [`Throttle::done`] when the activation ends.
    pub fn admit(
        &self,
        ns: &str,
        now_ms: u64,
        per_minute: u32,
        concurrent: u32,
    ) -> Result<(), Throttled> {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let s = match g.get_mut(ns) {
            Some(s) => s,
            None => g.entry(ns.to_string()).or_default(),
        };
        if s.in_flight >= concurrent {
            return Err(Throttled::Concurrent(s.in_flight, concurrent));
        }
        let minute = now_ms / 60_000;
        if s.minute != minute {
            s.minute = minute;
            s.count = 0;
        }
        s.count += 1;
        if s.count > per_minute {
            return Err(Throttled::PerMinute(s.count, per_minute));
        }
        s.in_flight += 1;
        Ok(())
    }

    /// One admitted activation of `ns` has ended.
    pub fn done(&self, ns: &str) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = g.get_mut(ns) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minute_and_concurrency() {
        let t = Throttle::default();
        assert!(t.admit("g", 0, 2, 10).is_ok());
        assert!(t.admit("g", 1, 2, 10).is_ok());
        assert_eq!(t.admit("g", 2, 2, 10), Err(Throttled::PerMinute(3, 2)));
        assert!(t.admit("g", 60_000, 2, 10).is_ok());
        let t = Throttle::default();
        assert!(t.admit("g", 0, 100, 1).is_ok());
        let e = t.admit("g", 0, 100, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Too many concurrent requests in flight (count: 1, allowed: 1)."
        );
        t.done("g");
        assert!(t.admit("g", 0, 100, 1).is_ok());
    }
}
