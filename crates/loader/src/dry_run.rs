//! `faasload load --dry-run TRACE`: the replay without sending. The trace is read and
//! validated as for a real load, then the loader's own schedule (the same lazy iterator
//! the scheduler consumes) is walked to the end at full speed, in order, holding nothing
//! per invocation; the result is the count per (user, function), the time span and how
//! fast the schedule was produced. Nothing is started, deployed or sent.
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use faasload_trace::Trace;

/// What a dry run saw.
#[derive(Debug, Default, PartialEq)]
pub struct DryRun {
    pub invocations: u64,
    /// Intended instant of the first and last invocation (ns from the start).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Invocations per (user, function) pair, in the trace's pair order.
    pub per_pair: Vec<((u32, u32), u64)>,
    /// Time spent producing the schedule.
    pub elapsed: Duration,
}

/// Walks the whole schedule of `trace` once; an error if it is out of time order or
/// names a pair the trace does not deploy (the scheduler would send it anyway).
pub fn walk(trace: &Trace) -> Result<DryRun> {
    // Pair index by function, then user (a function is invoked by few users): O(1) per
    // invocation without a users x functions table.
    let mut counts = vec![0u64; trace.pairs.len()];
    let mut by_function: Vec<Vec<(u32, usize)>> = vec![Vec::new(); trace.functions.len()];
    for (i, &(u, f)) in trace.pairs.iter().enumerate() {
        if let Some(v) = by_function.get_mut(f as usize) {
            v.push((u, i));
        }
    }
    let t0 = Instant::now();
    let mut d = DryRun::default();
    let mut last = 0u64;
    for inv in trace.invocations() {
        if inv.at_ns < last {
            bail!(
                "{}: invocation {} at {} ns comes after one at {} ns (schedule out of order)",
                trace.origin,
                inv.seq,
                inv.at_ns,
                last
            );
        }
        if d.invocations == 0 {
            d.first_ns = inv.at_ns;
        }
        last = inv.at_ns;
        d.invocations += 1;
        let slot = by_function
            .get(inv.function as usize)
            .and_then(|v| v.iter().find(|&&(u, _)| u == inv.user))
            .map(|&(_, i)| i);
        match slot {
            Some(i) => counts[i] += 1,
            None => bail!(
                "{}: invocation {} is for user {} / function {}, a pair the trace does not deploy",
                trace.origin,
                inv.seq,
                inv.user,
                inv.function
            ),
        }
    }
    d.elapsed = t0.elapsed();
    d.last_ns = last;
    d.per_pair = trace.pairs.iter().copied().zip(counts).collect();
    Ok(d)
}

/// The dry run as text: a header line, then `user<TAB>function<TAB>count` per pair.
pub fn render(trace: &Trace, d: &DryRun) -> String {
    let mut s = String::new();
    let secs = d.elapsed.as_secs_f64();
    let _ = writeln!(
        s,
        "dry run of {}: {} invocations from {:.3} s to {:.3} s (span {:.3} s), {} users, \
         {} functions, {} pairs; schedule walked in {:.3} s ({:.0} invocations/s); nothing sent",
        trace.origin,
        d.invocations,
        d.first_ns as f64 / 1e9,
        d.last_ns as f64 / 1e9,
        d.last_ns.saturating_sub(d.first_ns) as f64 / 1e9,
        trace.users.len(),
        trace.functions.len(),
        d.per_pair.len(),
        secs,
        if secs > 0.0 {
            d.invocations as f64 / secs
        } else {
            0.0
        },
    );
    let _ = writeln!(s, "user\tfunction\tinvocations");
    for &((u, f), n) in &d.per_pair {
        let _ = writeln!(
            s,
            "{}\t{}\t{n}",
            trace.users[u as usize].name, trace.functions[f as usize].name
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use faasload_trace::{Function, Invocation, User};

    fn trace(times: Vec<(u64, u32, u32)>) -> Trace {
        let user = |n: &str| User {
            name: n.into(),
            namespace: n.into(),
            auth: None,
            api_host: None,
            create: true,
        };
        let func = |n: &str| Function {
            name: n.into(),
            action: n.into(),
            kind: "python:3".into(),
            code: "noop.py".into(),
            main: None,
            memory_mb: 128,
            timeout_ms: 1000,
            parameters: Default::default(),
            input_kind: None,
        };
        let times = Arc::new(times);
        Trace {
            origin: "test".into(),
            users: vec![user("a"), user("b")],
            functions: vec![func("f"), func("g")],
            seed: 1,
            pairs: vec![(0, 1), (1, 0)],
            total: Some(times.len() as u64),
            schedule: Box::new(move || {
                let t = times.clone();
                Box::new((0..t.len()).map(move |i| Invocation {
                    seq: i as u64,
                    at_ns: t[i].0,
                    user: t[i].1,
                    function: t[i].2,
                    input: None,
                    params: Default::default(),
                }))
            }),
        }
    }

    #[test]
    fn counts_every_pair_and_the_span() {
        let t = trace(vec![(5, 0, 1), (7, 1, 0), (7, 0, 1), (9, 0, 1)]);
        let d = walk(&t).unwrap();
        assert_eq!(d.invocations, 4);
        assert_eq!((d.first_ns, d.last_ns), (5, 9));
        assert_eq!(d.per_pair, vec![((0, 1), 3), ((1, 0), 1)]);
        let text = render(&t, &d);
        assert!(text.contains("a\tg\t3\n"), "{text}");
        assert!(text.contains("b\tf\t1\n"), "{text}");
    }

    #[test]
    fn out_of_order_and_undeployed_pairs_are_errors() {
        let e = walk(&trace(vec![(5, 0, 1), (4, 0, 1)])).unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        let e = walk(&trace(vec![(5, 0, 0)])).unwrap_err();
        assert!(e.to_string().contains("does not deploy"), "{e}");
    }
}
