//! The deterministic sequence of runs of a sweep: one PCG stream per (function, memory
//! limit) derived from the seed, so the same config and seed give the same
//! (input, parameters, memory) sequence, and adding a function leaves others unchanged.
use std::sync::Arc;

use rand_pcg::Pcg64;
use serde_json::{Map, Value};

use super::config::{GenConfig, GenFunction};
use faasload_trace::stream_rngs;
use faasload_trace::{InputSpec, draw_params};

/// One run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedRun {
    /// Position in the whole sequence (0-based).
    pub seq: u64,
    pub action: String,
    /// The deployed variant, `<action>_<memory>`.
    pub variant: String,
    pub memory_mb: u64,
    pub repetition: u64,
    pub input: Option<String>,
    pub params: Map<String, Value>,
}

/// The draw stream of (action, memory): the "user" slot of the seed key holds the
/// memory limit so each variant has its own stream.
pub(crate) fn variant_rng(seed: u64, action: &str, memory_mb: u64) -> Pcg64 {
    stream_rngs(seed, &format!("mem{memory_mb}"), action, 0).1
}

/// The variant name of `action` at `memory_mb`.
pub fn variant_name(action: &str, memory_mb: u64) -> String {
    format!("{action}_{memory_mb}")
}

fn inputs_per_repetition(f: &GenFunction) -> u64 {
    match &f.inputs {
        Some(InputSpec::Numbered { count, .. }) => *count,
        Some(InputSpec::List(v)) => v.len().max(1) as u64,
        None => 1,
    }
}

/// Number of runs of the whole sweep.
pub fn total(c: &GenConfig) -> u64 {
    c.functions
        .iter()
        .map(|f| f.memory_mb.len() as u64 * c.repetitions * inputs_per_repetition(f))
        .sum()
}

/// The runs of the sweep, drawn lazily in order: function, then memory limit, then
/// repetition, then input. After each run, [`Planner::rng_state`] is the state of that
/// run's stream (what a checkpoint keeps to prove a resumed plan is the same plan).
pub struct Planner {
    cfg: Arc<GenConfig>,
    f: usize,
    m: usize,
    /// Index within the current variant (repetition x inputs + input).
    k: u64,
    seq: u64,
    rng: Option<Pcg64>,
}

impl Planner {
    pub fn new(cfg: Arc<GenConfig>) -> Planner {
        Planner {
            cfg,
            f: 0,
            m: 0,
            k: 0,
            seq: 0,
            rng: None,
        }
    }

    /// The position of the next run.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The state of the stream of the last run drawn, as JSON text (None before the first).
    pub fn rng_state(&self) -> Option<String> {
        self.rng
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok())
    }

    /// Draws and drops runs until the next one is `seq`.
    pub fn skip_to(&mut self, seq: u64) {
        while self.seq < seq && self.next().is_some() {}
    }
}

impl Iterator for Planner {
    type Item = PlannedRun;

    fn next(&mut self) -> Option<PlannedRun> {
        loop {
            let f = self.cfg.functions.get(self.f)?;
            let Some(&mem) = f.memory_mb.get(self.m) else {
                self.f += 1;
                self.m = 0;
                continue;
            };
            let per_rep = inputs_per_repetition(f);
            if self.k >= per_rep * self.cfg.repetitions {
                self.m += 1;
                self.k = 0;
                self.rng = None;
                continue;
            }
            let seed = self.cfg.seed;
            let rng = self
                .rng
                .get_or_insert_with(|| variant_rng(seed, &f.action, mem));
            let (rep, i) = (self.k / per_rep, self.k % per_rep);
            let params = draw_params(&f.params, rng);
            let run = PlannedRun {
                seq: self.seq,
                action: f.action.clone(),
                variant: variant_name(&f.action, mem),
                memory_mb: mem,
                repetition: rep,
                input: f.inputs.as_ref().and_then(|s| s.name(i)),
                params,
            };
            self.k += 1;
            self.seq += 1;
            return Some(run);
        }
    }
}

/// Every run of the sweep, in order (see [`Planner`]).
pub fn plan(c: &GenConfig) -> Vec<PlannedRun> {
    Planner::new(Arc::new(c.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;

    const CFG: &str = "seed: 11
repetitions: 2
memory_mb: [128, 256]
functions:
  - action: burn
    parameters:
      ms: {range_int: {min: 1, max: 1000}}
  - action: wand_blur
    inputs: {kind: image, count: 3}
    parameters:
      sigma: {range_float: {min: 0.5, max: 2.0}}
";

    #[test]
    fn same_config_and_seed_same_sequence() {
        let c = parse_config(CFG, "g", None).unwrap();
        let a = plan(&c);
        assert_eq!(a, plan(&c));
        // 2 memories x 2 reps x 1 + 2 memories x 2 reps x 3 inputs.
        assert_eq!(a.len(), 4 + 12);
        assert_eq!(a[4].variant, "wand_blur_128");
        assert_eq!(a[4].input.as_deref(), Some("image/1.jpg"));
        assert_eq!(a[6].input.as_deref(), Some("image/3.jpg"));
        assert!(a.iter().enumerate().all(|(i, r)| r.seq == i as u64));
    }

    #[test]
    fn seed_changes_draws_and_streams_are_independent() {
        let c = parse_config(CFG, "g", None).unwrap();
        let mut d = c.clone();
        d.seed = 12;
        let p = |c: &GenConfig| plan(c).into_iter().map(|r| r.params).collect::<Vec<_>>();
        assert_ne!(p(&c), p(&d));
        // Dropping the first function leaves the second one's draws unchanged.
        let mut e = c.clone();
        e.functions.remove(0);
        assert_eq!(p(&c)[4..].to_vec(), p(&e));
        // Each (function, memory) has its own stream.
        let a = plan(&c);
        assert_ne!(a[0].params, a[2].params);
    }

    #[test]
    fn a_planner_resumed_mid_way_draws_the_same_rest() {
        let c = parse_config(CFG, "g", None).unwrap();
        let all = plan(&c);
        assert_eq!(total(&c), all.len() as u64);
        for at in [0, 1, 3, 4, 9, 15, 16] {
            let mut p = Planner::new(Arc::new(c.clone()));
            p.skip_to(at);
            assert_eq!(p.next_seq(), at);
            let rest: Vec<PlannedRun> = p.collect();
            assert_eq!(rest, all[at as usize..].to_vec(), "from {at}");
        }
        // The stream state after a run is a function of the plan up to it.
        let mut a = Planner::new(Arc::new(c.clone()));
        a.skip_to(6);
        let mut b = Planner::new(Arc::new(c.clone()));
        b.skip_to(6);
        assert_eq!(a.rng_state(), b.rng_state());
        let mut d = c.clone();
        d.seed += 1;
        let mut e = Planner::new(Arc::new(d));
        e.skip_to(6);
        assert_ne!(a.rng_state(), e.rng_state());
    }
}
