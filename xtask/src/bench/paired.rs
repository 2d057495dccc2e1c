//! Paired on/off block designs and their statistics: a balanced, shuffled schedule of
//! blocks (each configuration paired with an adjacent block without it), Student-t
//! intervals on per-pair differences, and the verdict on a "≤ goal" whose answer may be
//! "not resolved" when the interval straddles the goal.

use std::fmt;

/// A small deterministic generator (xorshift64*), seeded so that a run's order can be
/// told and repeated.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        // xorshift has a fixed point at 0.
        Rng(seed | 1)
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform index below `n` (`n` > 0; the modulo bias is negligible for small `n`).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher–Yates.
    pub(super) fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// One block of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    pub round: usize,
    /// The configuration measured, `None` for the reference (no monitor).
    pub config: Option<usize>,
    /// The configuration whose pair this block belongs to (its own for an "on" block,
    /// its partner's for an "off" block).
    pub pair: usize,
}

/// `rounds` rounds; in each, every one of `configs` configurations once, in an order
/// shuffled round by round, as a pair of adjacent blocks: the configuration and the
/// reference. The reference comes first when `round + config` is even, so that over the
/// rounds each configuration has it first and second equally often (±1) and a trend
/// within a pair cancels.
pub(super) fn schedule(configs: usize, rounds: usize, rng: &mut Rng) -> Vec<Slot> {
    let mut out = Vec::with_capacity(2 * configs * rounds);
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..configs).collect();
        rng.shuffle(&mut order);
        for c in order {
            let on = Slot {
                round,
                config: Some(c),
                pair: c,
            };
            let off = Slot {
                round,
                config: None,
                pair: c,
            };
            if (round + c) % 2 == 0 {
                out.extend([off, on]);
            } else {
                out.extend([on, off]);
            }
        }
    }
    out
}

/// The two-sided 95 % quantile of Student's t with `df` degrees of freedom (for `df`
/// between tabulated values, the value of the next smaller one: slightly wide, never
/// narrow).
pub(super) fn t975(df: usize) -> f64 {
    const SMALL: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => SMALL[df - 1],
        31..=39 => 2.042,
        40..=59 => 2.021,
        60..=119 => 2.000,
        120..=999 => 1.980,
        _ => 1.960,
    }
}

/// A mean with its 95 % confidence interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Interval {
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    /// Values it was computed from.
    pub n: usize,
    /// Their sample standard deviation.
    pub sd: f64,
}

impl Interval {
    /// The t-interval of the mean of `v`; `None` with fewer than two values.
    pub(super) fn of(v: &[f64]) -> Option<Interval> {
        let n = v.len();
        if n < 2 {
            return None;
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let sd = var.sqrt();
        let h = t975(n - 1) * sd / (n as f64).sqrt();
        Some(Interval {
            mean,
            lo: mean - h,
            hi: mean + h,
            n,
            sd,
        })
    }

    pub(super) fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }

    /// The sum of two independent means: means add, half-widths add in quadrature.
    pub(super) fn plus(&self, o: &Interval) -> Interval {
        let mean = self.mean + o.mean;
        let h = self.half_width().hypot(o.half_width());
        Interval {
            mean,
            lo: mean - h,
            hi: mean + h,
            n: self.n.min(o.n),
            sd: f64::NAN,
        }
    }

    /// `mean [lo, hi]` with `d` decimals.
    pub(super) fn show(&self, d: usize) -> String {
        format!("{:.d$} [{:.d$}, {:.d$}]", self.mean, self.lo, self.hi)
    }

    /// The same with signs (for differences).
    pub(super) fn show_signed(&self, d: usize) -> String {
        format!("{:+.d$} [{:+.d$}, {:+.d$}]", self.mean, self.lo, self.hi)
    }
}

/// Whether a "value ≤ goal" holds, judged on the 95 % interval of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The whole interval is at or below the goal.
    Met,
    /// The whole interval is above the goal.
    NotMet,
    /// The interval straddles the goal.
    NotResolved,
    /// Fewer than two values: no interval.
    TooFew,
}

impl Verdict {
    pub(super) fn at_most(iv: Option<&Interval>, goal: f64) -> Verdict {
        match iv {
            None => Verdict::TooFew,
            Some(iv) if iv.hi <= goal => Verdict::Met,
            Some(iv) if iv.lo > goal => Verdict::NotMet,
            Some(_) => Verdict::NotResolved,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Met => "**met**",
            Verdict::NotMet => "**not met**",
            Verdict::NotResolved => "**not resolved** (the interval straddles the goal)",
            Verdict::TooFew => "**not resolved** (fewer than 2 pairs or blocks)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_pairs_every_configuration_each_round_balanced() {
        let mut rng = Rng::new(7);
        let s = schedule(4, 6, &mut rng);
        assert_eq!(s.len(), 2 * 4 * 6);
        for pair in s.chunks(2) {
            // Adjacent, same round, same pair, one on and one off.
            assert_eq!(pair[0].round, pair[1].round);
            assert_eq!(pair[0].pair, pair[1].pair);
            assert_eq!(
                pair.iter().filter(|b| b.config.is_none()).count(),
                1,
                "{pair:?}"
            );
            let on = pair.iter().find(|b| b.config.is_some()).unwrap();
            assert_eq!(on.config, Some(on.pair));
        }
        for c in 0..4 {
            let first_off = s
                .chunks(2)
                .filter(|p| p[0].pair == c && p[0].config.is_none())
                .count();
            assert_eq!(
                first_off, 3,
                "configuration {c}: off first {first_off} of 6"
            );
            for r in 0..6 {
                assert_eq!(
                    s.iter()
                        .filter(|b| b.round == r && b.config == Some(c))
                        .count(),
                    1
                );
            }
        }
    }

    #[test]
    fn schedule_order_is_shuffled_and_reproducible() {
        let a = schedule(5, 8, &mut Rng::new(42));
        let b = schedule(5, 8, &mut Rng::new(42));
        assert_eq!(a, b);
        let orders: std::collections::HashSet<Vec<usize>> = a
            .chunks(10)
            .map(|r| r.chunks(2).map(|p| p[0].pair).collect())
            .collect();
        assert!(
            orders.len() > 1,
            "the same order in every round: {orders:?}"
        );
    }

    #[test]
    fn t_interval_matches_a_hand_computation() {
        // mean 2, sd 1 (values 1, 2, 3), t(2) = 4.303: half-width 4.303 / sqrt(3).
        let iv = Interval::of(&[1.0, 2.0, 3.0]).unwrap();
        assert!((iv.mean - 2.0).abs() < 1e-12);
        assert!((iv.sd - 1.0).abs() < 1e-12);
        assert!((iv.half_width() - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!(Interval::of(&[1.0]).is_none());
        assert!(t975(45) >= t975(60) && t975(60) > t975(10_000));
    }

    #[test]
    fn verdict_needs_the_whole_interval_on_one_side() {
        let iv = |lo: f64, hi: f64| Interval {
            mean: (lo + hi) / 2.0,
            lo,
            hi,
            n: 10,
            sd: 1.0,
        };
        assert_eq!(Verdict::at_most(Some(&iv(-0.2, 0.4)), 0.5), Verdict::Met);
        assert_eq!(Verdict::at_most(Some(&iv(-0.2, 0.5)), 0.5), Verdict::Met);
        assert_eq!(
            Verdict::at_most(Some(&iv(0.1, 0.9)), 0.5),
            Verdict::NotResolved
        );
        assert_eq!(Verdict::at_most(Some(&iv(0.6, 0.9)), 0.5), Verdict::NotMet);
        assert_eq!(Verdict::at_most(None, 0.5), Verdict::TooFew);
    }

    #[test]
    fn sums_add_half_widths_in_quadrature() {
        let a = Interval::of(&[1.0, 2.0, 3.0]).unwrap();
        let s = a.plus(&a);
        assert!((s.mean - 4.0).abs() < 1e-12);
        assert!((s.half_width() - a.half_width() * 2f64.sqrt()).abs() < 1e-9);
    }
}
