//! Arrival processes: when the invocations of one stream happen, generated one at a time
//! (a day-long stream is never materialised) and, where the law allows, with the count
//! known up front.
//!
//! - `periodic`: one arrival every `1/rate` s, with a random phase in `[0, 1/rate)`.
//! - `exponential`: a Poisson process of intensity `rate`: the count is drawn from
//!   Poisson(rate x duration) and the arrival times are that many sorted uniforms over the
//!   window, generated in increasing order (same law as exponential gaps, count known).
//! - `uniform`: gaps drawn uniformly in `[0, 2/rate]` (mean `1/rate`); count unknown.
use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use rand_pcg::Pcg64;

/// The law of the gaps between arrivals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    Periodic,
    Exponential,
    Uniform,
}

impl Law {
    pub const NAMES: &'static str = "periodic, exponential, uniform";
}

impl FromStr for Law {
    type Err = String;
    fn from_str(s: &str) -> Result<Law, String> {
        match s {
            "periodic" => Ok(Law::Periodic),
            "exponential" | "poisson" => Ok(Law::Exponential),
            "uniform" => Ok(Law::Uniform),
            _ => Err(format!(
                "unknown distribution '{s}' (expected {})",
                Law::NAMES
            )),
        }
    }
}

impl fmt::Display for Law {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Law::Periodic => "periodic",
            Law::Exponential => "exponential",
            Law::Uniform => "uniform",
        })
    }
}

/// An arrival process over `[start_s, start_s + duration_s)` (seconds from the run's start).
/// Validated values are finite, `rate > 0`, `duration_s >= 0`, `start_s >= 0`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrival {
    pub law: Law,
    /// Mean arrivals per second.
    pub rate: f64,
    pub duration_s: f64,
    pub start_s: f64,
}

fn to_ns(s: f64) -> u64 {
    // Saturating: validated spans are far below u64::MAX ns (584 years).
    (s * 1e9).round() as u64
}

/// A uniform draw in (0, 1].
fn open_unit(rng: &mut Pcg64) -> f64 {
    1.0 - rng.random::<f64>()
}

impl Arrival {
    /// The arrival instants (ns from the run's start), in increasing order. The first
    /// draws fix the phase (periodic) or the count (exponential).
    pub fn times(&self, mut rng: Pcg64) -> ArrivalTimes {
        let state = match self.law {
            Law::Periodic => {
                let period = 1.0 / self.rate;
                let phase = rng.random::<f64>() * period;
                let n = if self.duration_s > phase {
                    ((self.duration_s - phase) / period).ceil() as u64
                } else {
                    0
                };
                State::Periodic { phase, period, n }
            }
            Law::Exponential => State::Poisson {
                n: poisson(self.rate * self.duration_s, &mut rng),
                remaining: 1.0,
            },
            Law::Uniform => State::Uniform { t: 0.0 },
        };
        ArrivalTimes {
            arrival: self.clone(),
            rng,
            state,
            i: 0,
        }
    }

    /// The number of arrivals when known without walking them (periodic, exponential).
    pub fn count(&self, rng: Pcg64) -> Option<u64> {
        self.times(rng).len_hint()
    }
}

#[derive(Clone, Debug)]
enum State {
    Periodic { phase: f64, period: f64, n: u64 },
    Poisson { n: u64, remaining: f64 },
    Uniform { t: f64 },
}

/// Arrival instants of one stream, generated on the fly.
#[derive(Clone, Debug)]
pub struct ArrivalTimes {
    arrival: Arrival,
    rng: Pcg64,
    state: State,
    i: u64,
}

impl ArrivalTimes {
    /// The total number of arrivals when it is known.
    pub fn len_hint(&self) -> Option<u64> {
        match self.state {
            State::Periodic { n, .. } | State::Poisson { n, .. } => Some(n),
            State::Uniform { .. } => None,
        }
    }
}

impl Iterator for ArrivalTimes {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        let a = &self.arrival;
        let offset = match &mut self.state {
            State::Periodic { phase, period, n } => {
                if self.i >= *n {
                    return None;
                }
                *phase + self.i as f64 * *period
            }
            State::Poisson { n, remaining } => {
                if self.i >= *n {
                    return None;
                }
                // The minimum of the m uniforms left in (y, 1) is 1 - (1-y) U^(1/m).
                let m = (*n - self.i) as f64;
                *remaining *= (open_unit(&mut self.rng).ln() / m).exp();
                (1.0 - *remaining) * a.duration_s
            }
            State::Uniform { t } => {
                *t += self.rng.random::<f64>() * 2.0 / a.rate;
                if *t >= a.duration_s {
                    return None;
                }
                *t
            }
        };
        self.i += 1;
        Some(to_ns(a.start_s + offset))
    }
}

/// ln Γ(x) (Stirling series with a shift for small x; numpy's `random_loggam`).
fn loggam(x: f64) -> f64 {
    const A: [f64; 10] = [
        8.333333333333333e-02,
        -2.777777777777778e-03,
        7.936507936507937e-04,
        -5.952380952380952e-04,
        8.417508417508418e-04,
        -1.917526917526918e-03,
        6.410_256_410_256_41e-3,
        -2.955065359477124e-02,
        1.796443723688307e-01,
        -1.39243221690590e+00,
    ];
    if x == 1.0 || x == 2.0 {
        return 0.0;
    }
    let n = if x < 7.0 { (7.0 - x) as i64 } else { 0 };
    let mut x0 = x + n as f64;
    let x2 = (1.0 / x0) * (1.0 / x0);
    let mut gl0 = A[9];
    for a in A[..9].iter().rev() {
        gl0 = gl0 * x2 + a;
    }
    let mut gl = gl0 / x0 + 0.5 * (2.0 * std::f64::consts::PI).ln() + (x0 - 0.5) * x0.ln() - x0;
    for _ in 0..n {
        gl -= (x0 - 1.0).ln();
        x0 -= 1.0;
    }
    gl
}

/// A Poisson(lambda) draw: multiplication method below 10, Hörmann's PTRS above.
pub(crate) fn poisson(lambda: f64, rng: &mut Pcg64) -> u64 {
    if lambda.is_nan() || lambda <= 0.0 || !lambda.is_finite() {
        return 0;
    }
    if lambda < 10.0 {
        let limit = (-lambda).exp();
        let mut prod = 1.0;
        let mut k = 0;
        loop {
            prod *= rng.random::<f64>();
            if prod > limit {
                k += 1;
            } else {
                return k;
            }
        }
    }
    let slam = lambda.sqrt();
    let loglam = lambda.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let invalpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = rng.random::<f64>() - 0.5;
        let v = rng.random::<f64>();
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k as u64;
        }
        if k.is_nan() || k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + invalpha.ln() - (a / (us * us) + b).ln()
            <= -lambda + k * loglam - loggam(k + 1.0)
        {
            return k as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn arrival(law: Law, rate: f64, duration_s: f64, start_s: f64) -> Arrival {
        Arrival {
            law,
            rate,
            duration_s,
            start_s,
        }
    }

    #[test]
    fn poisson_has_the_right_mean_and_variance() {
        let mut rng = Pcg64::seed_from_u64(7);
        for &lambda in &[0.5, 4.0, 30.0, 1000.0, 1e7] {
            let n = 4000;
            let xs: Vec<f64> = (0..n).map(|_| poisson(lambda, &mut rng) as f64).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            let se = (lambda / n as f64).sqrt();
            assert!(
                (mean - lambda).abs() < 5.0 * se,
                "lambda {lambda}: mean {mean}"
            );
            assert!(
                (var / lambda - 1.0).abs() < 0.15,
                "lambda {lambda}: var {var}"
            );
        }
    }

    #[test]
    fn periodic_is_evenly_spaced_with_a_random_phase() {
        let a = arrival(Law::Periodic, 4.0, 10.0, 2.0);
        let t: Vec<u64> = a.times(Pcg64::seed_from_u64(1)).collect();
        assert_eq!(t.len() as u64, a.count(Pcg64::seed_from_u64(1)).unwrap());
        assert!(t.len() == 40 || t.len() == 39, "{}", t.len());
        for w in t.windows(2) {
            assert!((w[1] - w[0]).abs_diff(250_000_000) <= 1);
        }
        assert!(t[0] >= 2_000_000_000 && t[0] < 2_250_000_000);
        assert!(*t.last().unwrap() < 12_000_000_000);
        let phases: std::collections::HashSet<u64> = (0..5)
            .map(|s| a.times(Pcg64::seed_from_u64(s)).next().unwrap())
            .collect();
        assert_eq!(phases.len(), 5, "the phase depends on the stream");
    }

    #[test]
    fn exponential_count_and_gaps_match_a_poisson_process() {
        let a = arrival(Law::Exponential, 50.0, 200.0, 0.0);
        let times = a.times(Pcg64::seed_from_u64(9));
        let n = times.len_hint().unwrap();
        let t: Vec<u64> = times.collect();
        assert_eq!(t.len() as u64, n);
        // 10000 expected, sd 100.
        assert!((n as f64 - 10_000.0).abs() < 500.0, "{n}");
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        assert!(*t.last().unwrap() < 200_000_000_000);
        let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((mean - 0.02).abs() < 0.001, "mean gap {mean}");
        // Exponential: coefficient of variation 1.
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // Half the arrivals in each half of the window.
        let first_half = t.iter().filter(|&&x| x < 100_000_000_000).count() as f64;
        assert!((first_half / n as f64 - 0.5).abs() < 0.03);
    }

    #[test]
    fn uniform_gaps_have_the_right_mean() {
        let a = arrival(Law::Uniform, 10.0, 100.0, 1.0);
        assert_eq!(a.count(Pcg64::seed_from_u64(1)), None);
        let t: Vec<u64> = a.times(Pcg64::seed_from_u64(1)).collect();
        assert!((t.len() as f64 - 1000.0).abs() < 60.0, "{}", t.len());
        assert!(t[0] >= 1_000_000_000 && *t.last().unwrap() < 101_000_000_000);
        let gaps: Vec<u64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g <= 200_000_001));
    }

    #[test]
    fn a_huge_stream_starts_at_once() {
        let a = arrival(Law::Exponential, 1e6, 1e5, 0.0);
        let mut t = a.times(Pcg64::seed_from_u64(1));
        let n = t.len_hint().unwrap();
        assert!((n as f64 - 1e11).abs() < 1e7);
        let first: Vec<u64> = t.by_ref().take(10).collect();
        assert!(first.windows(2).all(|w| w[0] <= w[1]));
        assert!(first[9] < 1_000_000, "{first:?}");
    }

    #[test]
    fn law_names() {
        assert_eq!("periodic".parse::<Law>().unwrap(), Law::Periodic);
        assert!(
            "gamma"
                .parse::<Law>()
                .unwrap_err()
                .contains("unknown distribution 'gamma'")
        );
    }
}
