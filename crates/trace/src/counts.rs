//! Per-bin counts (Azure's invocations per minute, Huawei's requests per second) turned
//! into arrival times lazily, one bin at a time, keeping every bin's exact count and
//! placing every arrival inside its bin. Counts are held compactly (dense `u16` or sparse
//! `(bin, count)` pairs, whichever is smaller); arrival instants are never materialised
//! beyond the bin being generated.
//!
//! Laws (each stream draws its own phase `φ` in `[0, 1)` first, so functions do not all
//! fire at the start of a bin):
//! - `equidistant`: `n` arrivals at `(k + φ) / n` of the bin, `k = 0..n`.
//! - `poisson`: a Poisson process conditioned on `n` arrivals in the bin: `n` sorted
//!   uniforms, generated in increasing order.
//! - `exponential`: `n` exponential gaps normalised to the bin (vHive's method); arrival
//!   `k` at `S_(k-1) + φ g_k`, so the first is not at the bin's start.
use std::fmt;
use std::str::FromStr;

use rand::RngExt;
use rand_pcg::Pcg64;

/// How a bin's count becomes arrival instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountLaw {
    Equidistant,
    Poisson,
    Exponential,
}

impl CountLaw {
    pub const NAMES: &'static str = "equidistant, poisson, exponential";
}

impl FromStr for CountLaw {
    type Err = String;
    fn from_str(s: &str) -> Result<CountLaw, String> {
        match s {
            "equidistant" => Ok(CountLaw::Equidistant),
            "poisson" | "uniform" => Ok(CountLaw::Poisson),
            "exponential" => Ok(CountLaw::Exponential),
            _ => Err(format!(
                "unknown count law '{s}' (expected {})",
                CountLaw::NAMES
            )),
        }
    }
}

impl fmt::Display for CountLaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CountLaw::Equidistant => "equidistant",
            CountLaw::Poisson => "poisson",
            CountLaw::Exponential => "exponential",
        })
    }
}

/// The counts of one stream, by bin index.
#[derive(Clone, Debug, PartialEq)]
pub enum Counts {
    /// One `u16` per bin from bin 0.
    Dense(Vec<u16>),
    /// Non-zero bins, `(bin, count)` in increasing bin order.
    Sparse(Vec<(u32, u32)>),
}

impl Counts {
    /// From non-zero `(bin, count)` pairs in increasing bin order (zeros are dropped).
    pub fn from_pairs(mut pairs: Vec<(u32, u32)>) -> Counts {
        pairs.retain(|&(_, c)| c > 0);
        let bins = pairs.last().map_or(0, |&(b, _)| b as usize + 1);
        let fits16 = pairs.iter().all(|&(_, c)| c <= u32::from(u16::MAX));
        if fits16 && bins * 2 < pairs.len() * 8 {
            let mut v = vec![0u16; bins];
            for (b, c) in pairs {
                v[b as usize] = c as u16;
            }
            Counts::Dense(v)
        } else {
            pairs.shrink_to_fit();
            Counts::Sparse(pairs)
        }
    }

    /// The next non-zero bin at or after cursor `pos`, advancing it.
    pub fn next_nonzero(&self, pos: &mut usize) -> Option<(u32, u32)> {
        match self {
            Counts::Dense(v) => {
                while let Some(&c) = v.get(*pos) {
                    *pos += 1;
                    if c > 0 {
                        return Some(((*pos - 1) as u32, u32::from(c)));
                    }
                }
                None
            }
            Counts::Sparse(v) => {
                let x = v.get(*pos).copied();
                *pos += 1;
                x
            }
        }
    }

    /// The total count.
    pub fn total(&self) -> u64 {
        match self {
            Counts::Dense(v) => v.iter().map(|&c| u64::from(c)).sum(),
            Counts::Sparse(v) => v.iter().map(|&(_, c)| u64::from(c)).sum(),
        }
    }
}

/// A stream of binned counts: bin `b` covers `[start_ns + b bin_ns, start_ns + (b+1) bin_ns)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BinCounts {
    pub law: CountLaw,
    pub bin_ns: u64,
    pub start_ns: u64,
    pub counts: Counts,
}

/// The generation state of a [`BinCounts`] stream (the counts stay where they are).
#[derive(Clone, Debug)]
pub(crate) struct CountCursor {
    rng: Pcg64,
    phase: f64,
    pos: usize,
    bin_start: u64,
    n: u32,
    k: u32,
    remaining: f64,
    gaps: Vec<f64>,
}

fn open_unit(rng: &mut Pcg64) -> f64 {
    1.0 - rng.random::<f64>()
}

impl CountCursor {
    /// A cursor at the start; the first draw is the stream's phase.
    pub(crate) fn new(mut rng: Pcg64) -> CountCursor {
        let phase = rng.random::<f64>();
        CountCursor {
            rng,
            phase,
            pos: 0,
            bin_start: 0,
            n: 0,
            k: 0,
            remaining: 1.0,
            gaps: Vec::new(),
        }
    }

    /// The next arrival instant (ns from the run's start) of `s`.
    pub(crate) fn next(&mut self, s: &BinCounts) -> Option<u64> {
        while self.k >= self.n {
            let (bin, n) = s.counts.next_nonzero(&mut self.pos)?;
            self.bin_start = s.start_ns + u64::from(bin) * s.bin_ns;
            self.n = n;
            self.k = 0;
            self.remaining = 1.0;
            if s.law == CountLaw::Exponential {
                self.gaps.clear();
                let mut sum = 0.0;
                for _ in 0..n {
                    let g = -open_unit(&mut self.rng).ln();
                    sum += g;
                    self.gaps.push(g);
                }
                // Cumulative starts S_(k-1), normalised; gaps normalised in place.
                let mut acc = 0.0;
                for g in &mut self.gaps {
                    let norm = *g / sum;
                    *g = acc + self.phase * norm;
                    acc += norm;
                }
            }
        }
        let (k, n) = (self.k, self.n);
        let frac = match s.law {
            CountLaw::Equidistant => (f64::from(k) + self.phase) / f64::from(n),
            CountLaw::Poisson => {
                let m = f64::from(n - k);
                self.remaining *= (open_unit(&mut self.rng).ln() / m).exp();
                1.0 - self.remaining
            }
            CountLaw::Exponential => self.gaps[k as usize],
        };
        self.k += 1;
        let off = ((frac * s.bin_ns as f64) as u64).min(s.bin_ns - 1);
        Some(self.bin_start + off)
    }
}

/// Counts scaled by `factor` with cumulative rounding: the running total after each bin
/// is `round(factor x original running total)`, so no count is lost to rounding.
pub(crate) struct Scaler {
    factor: f64,
    orig: u64,
    out: u64,
}

impl Scaler {
    pub(crate) fn new(factor: f64) -> Scaler {
        Scaler {
            factor,
            orig: 0,
            out: 0,
        }
    }

    /// The scaled count of the next bin.
    pub(crate) fn scale(&mut self, c: u64) -> u64 {
        if self.factor == 1.0 {
            return c;
        }
        self.orig += c;
        let target = (self.orig as f64 * self.factor).round() as u64;
        let n = target.saturating_sub(self.out);
        self.out += n;
        n
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn walk(law: CountLaw, counts: &[(u32, u32)], seed: u64) -> Vec<u64> {
        let s = BinCounts {
            law,
            bin_ns: 60_000_000_000,
            start_ns: 5_000_000_000,
            counts: Counts::from_pairs(counts.to_vec()),
        };
        let mut c = CountCursor::new(Pcg64::seed_from_u64(seed));
        std::iter::from_fn(|| c.next(&s)).collect()
    }

    const LAWS: [CountLaw; 3] = [
        CountLaw::Equidistant,
        CountLaw::Poisson,
        CountLaw::Exponential,
    ];

    #[test]
    fn every_law_keeps_each_bins_exact_count_inside_the_bin() {
        let counts = [(0, 1), (1, 7), (3, 250), (4, 2), (1439, 60_000)];
        for law in LAWS {
            let t = walk(law, &counts, 3);
            assert!(t.windows(2).all(|w| w[0] <= w[1]), "{law}: sorted");
            for &(bin, n) in &counts {
                let lo = 5_000_000_000 + u64::from(bin) * 60_000_000_000;
                let hi = lo + 60_000_000_000;
                let got = t.iter().filter(|&&x| x >= lo && x < hi).count();
                assert_eq!(got, n as usize, "{law}: bin {bin}");
            }
            assert_eq!(t.len(), counts.iter().map(|c| c.1 as usize).sum::<usize>());
        }
    }

    #[test]
    fn phases_differ_between_streams_and_seeds_repeat() {
        for law in LAWS {
            let firsts: std::collections::HashSet<u64> =
                (0..20).map(|s| walk(law, &[(0, 3)], s)[0]).collect();
            assert_eq!(firsts.len(), 20, "{law}: first arrivals differ");
            assert_eq!(walk(law, &[(2, 9)], 4), walk(law, &[(2, 9)], 4));
        }
        // Equidistant: evenly spaced, shifted by the phase (not at the bin's start).
        let t = walk(CountLaw::Equidistant, &[(0, 4)], 1);
        assert!(t[0] > 5_000_000_000);
        for w in t.windows(2) {
            assert!(w[1] - w[0] >= 14_999_999_999 && w[1] - w[0] <= 15_000_000_001);
        }
    }

    #[test]
    fn poisson_within_a_bin_is_uniform() {
        let t = walk(CountLaw::Poisson, &[(0, 100_000)], 9);
        let first_half = t.iter().filter(|&&x| x < 35_000_000_000).count() as f64;
        assert!((first_half / 1e5 - 0.5).abs() < 0.01, "{first_half}");
    }

    #[test]
    fn compact_storage_picks_the_smaller_form() {
        let dense = Counts::from_pairs((0..1440).map(|b| (b, 1 + b % 3)).collect());
        assert!(matches!(dense, Counts::Dense(_)));
        assert_eq!(dense.total(), (0..1440u64).map(|b| 1 + b % 3).sum::<u64>());
        let sparse = Counts::from_pairs(vec![(5, 1), (1000, 70_000)]);
        assert!(matches!(sparse, Counts::Sparse(_)));
        let mut pos = 0;
        assert_eq!(sparse.next_nonzero(&mut pos), Some((5, 1)));
        assert_eq!(sparse.next_nonzero(&mut pos), Some((1000, 70_000)));
        assert_eq!(sparse.next_nonzero(&mut pos), None);
    }

    #[test]
    fn scaling_loses_no_count_to_rounding() {
        let mut s = Scaler::new(0.3);
        let out: u64 = (0..1000).map(|_| s.scale(1)).sum();
        assert_eq!(out, 300);
        let mut s = Scaler::new(2.5);
        assert_eq!((0..4).map(|_| s.scale(3)).sum::<u64>(), 30);
    }
}
