//! The deterministic sequence of runs of a sweep: one PCG stream per (function, memory
//! limit) derived from the seed, so the same config and seed give the same
//! (input, parameters, memory) sequence, and adding a function leaves others unchanged.
use rand_pcg::Pcg64;
use serde_json::{Map, Value};

use super::config::GenConfig;
use crate::trace::seed::stream_rngs;
use crate::trace::spec::draw_params;

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
pub fn variant_rng(seed: u64, action: &str, memory_mb: u64) -> Pcg64 {
    stream_rngs(seed, &format!("mem{memory_mb}"), action, 0).1
}

/// Every run of the sweep, in order: function, then memory limit, then repetition,
/// then input.
pub fn plan(c: &GenConfig) -> Vec<PlannedRun> {
    let mut out = vec![];
    for f in &c.functions {
        for &mem in &f.memory_mb {
            let mut rng = variant_rng(c.seed, &f.action, mem);
            let n_inputs = match &f.inputs {
                Some(crate::trace::spec::InputSpec::Numbered { count, .. }) => *count,
                Some(crate::trace::spec::InputSpec::List(v)) => v.len().max(1) as u64,
                None => 1,
            };
            for rep in 0..c.repetitions {
                for i in 0..n_inputs {
                    let input = f.inputs.as_ref().and_then(|s| s.name(i));
                    let params = draw_params(&f.params, &mut rng);
                    out.push(PlannedRun {
                        seq: out.len() as u64,
                        action: f.action.clone(),
                        variant: format!("{}_{mem}", f.action),
                        memory_mb: mem,
                        repetition: rep,
                        input,
                        params,
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::config::parse_config;

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
}
