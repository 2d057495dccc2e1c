//! `faasload inputs`: deterministic input sets for the function suite, generated from a
//! seed so that no download is ever needed. One container (sub-directory of the store
//! root) per input kind, objects named `<N>.<ext>` from 1 like the original FaaSLoad's,
//! so an original trace's `INPUT` column (`image/17.jpg`) finds them; `--trace` writes
//! exactly the inputs a trace names, also in per-user containers (`user001/15.jpg`, the
//! kind then from the extension). Each file's content depends only on (seed, kind, N):
//! the same seed gives byte-identical files, and asking for more files of a kind keeps
//! the first ones.
mod data;
mod image;
pub mod suite;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand_pcg::Pcg64;

/// The original FaaSLoad's default seed.
pub const DEFAULT_SEED: u64 = 19_940_503;

/// Input kinds and what they hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Photo-like scenes, `N.jpg` and `N.png` (the same picture).
    Image,
    /// A square matrix of floats, `N.csv`.
    Matrix,
    /// Lines of pseudo-words, `N.txt`.
    Text,
    /// Nested records, `N.json`.
    Json,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Image, Kind::Matrix, Kind::Text, Kind::Json];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Image => "image",
            Kind::Matrix => "matrix",
            Kind::Text => "text",
            Kind::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// File extensions written for each input of this kind.
    pub fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Image => &["jpg", "png"],
            Kind::Matrix => &["csv"],
            Kind::Text => &["txt"],
            Kind::Json => &["json"],
        }
    }

    fn id(self) -> u64 {
        self as u64 + 1
    }
}

/// `kind:count,...` as given to `--kinds`.
pub fn parse_kinds(s: &str) -> Result<Vec<(Kind, u32)>> {
    let mut out: Vec<(Kind, u32)> = Vec::new();
    for (i, part) in s.split(',').enumerate() {
        let part = part.trim();
        let Some((k, n)) = part.split_once(':') else {
            bail!(
                "--kinds item {} {part:?}: expected kind:count (e.g. image:20)",
                i + 1
            );
        };
        let Some(kind) = Kind::parse(k.trim()) else {
            let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            bail!(
                "--kinds item {} {part:?}: unknown kind {k:?} (known: {})",
                i + 1,
                known.join(", ")
            );
        };
        let n: u32 = n
            .trim()
            .parse()
            .with_context(|| format!("--kinds item {} {part:?}: count is not a number", i + 1))?;
        if out.iter().any(|(o, _)| *o == kind) {
            bail!(
                "--kinds item {} {part:?}: kind {} given twice",
                i + 1,
                kind.name()
            );
        }
        out.push((kind, n));
    }
    Ok(out)
}

/// The RNG of input `n` of `kind` (splitmix64 of the three, so streams never overlap).
pub fn rng_for(seed: u64, kind: Kind, n: u32) -> Pcg64 {
    let mut x = seed;
    for v in [kind.id(), u64::from(n)] {
        x = splitmix(x ^ splitmix(v));
    }
    Pcg64::seed_from_u64(x)
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The files of input `n` of `kind`: (extension, bytes).
pub fn render(seed: u64, kind: Kind, n: u32) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let mut rng = rng_for(seed, kind, n);
    Ok(match kind {
        Kind::Image => {
            let img = image::scene(&mut rng);
            vec![("jpg", image::jpeg(&img)?), ("png", image::png(&img)?)]
        }
        Kind::Matrix => vec![("csv", data::matrix(&mut rng))],
        Kind::Text => vec![("txt", data::text(&mut rng))],
        Kind::Json => vec![("json", data::json(&mut rng)?)],
    })
}

/// Writes every input into `dir/<kind>/<N>.<ext>`; returns the files written.
pub fn generate(dir: &Path, seed: u64, kinds: &[(Kind, u32)]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for &(kind, count) in kinds {
        let cont = dir.join(kind.name());
        std::fs::create_dir_all(&cont).with_context(|| format!("creating {}", cont.display()))?;
        for n in 1..=count {
            for (ext, bytes) in render(seed, kind, n)? {
                let p = cont.join(format!("{n}.{ext}"));
                let tmp = cont.join(format!(".{n}.{ext}.tmp"));
                std::fs::write(&tmp, &bytes)
                    .with_context(|| format!("writing {}", tmp.display()))?;
                std::fs::rename(&tmp, &p)
                    .with_context(|| format!("renaming to {}", p.display()))?;
                written.push(p);
            }
        }
    }
    Ok(written)
}

/// `faasload inputs`.
#[derive(clap::Args, Debug)]
pub struct InputsArgs {
    /// Object store root: one sub-directory (container) per kind is written in it.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seed; the same seed and kinds give byte-identical files.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Kinds and counts: `kind:count,...` (kinds: image, matrix, text, json). Default
    /// `image:20,matrix:10,text:10,json:10`, none with --trace.
    #[arg(long)]
    pub kinds: Option<String>,
    /// Write exactly the inputs this trace (YAML or original FaaSLoad directory) names:
    /// `kind/N.ext`, and per-user containers like `user001/15.jpg` (the kind from the
    /// extension; the content of input N of that kind).
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

/// The default of `--kinds` without `--trace`.
const DEFAULT_KINDS: &str = "image:20,matrix:10,text:10,json:10";

pub fn run(a: InputsArgs) -> Result<()> {
    let kinds = match (&a.kinds, &a.trace) {
        (Some(k), _) => parse_kinds(k)?,
        (None, None) => parse_kinds(DEFAULT_KINDS)?,
        (None, Some(_)) => Vec::new(),
    };
    let mut files = generate(&a.dir, a.seed, &kinds)?;
    if let Some(t) = &a.trace {
        let trace = faasload_trace::load(t)?;
        let named = suite::named_inputs(&trace);
        if named.is_empty() {
            bail!(
                "{} names no input faasload can generate (`kind/N.ext` or `container/N.ext` \
                 with a known extension: {})",
                t.display(),
                Kind::ALL
                    .iter()
                    .flat_map(|k| k.extensions())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        files.extend(suite::write_inputs(&a.dir, a.seed, &named)?);
    }
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "wrote {} files ({} bytes) in {} (seed {})",
        files.len(),
        bytes,
        a.dir.display(),
        a.seed
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for k in std::fs::read_dir(dir).unwrap() {
            let k = k.unwrap().path();
            for f in std::fs::read_dir(&k).unwrap() {
                let f = f.unwrap().path();
                let rel = f.strip_prefix(dir).unwrap().display().to_string();
                v.push((rel, std::fs::read(&f).unwrap()));
            }
        }
        v.sort();
        v
    }

    #[test]
    fn same_seed_gives_byte_identical_files() {
        let kinds = parse_kinds("image:3,matrix:2,text:2,json:2").unwrap();
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        generate(a.path(), 7, &kinds).unwrap();
        generate(b.path(), 7, &kinds).unwrap();
        generate(c.path(), 8, &kinds).unwrap();
        let (ta, tb, tc) = (tree(a.path()), tree(b.path()), tree(c.path()));
        let names: Vec<&str> = ta.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "image/1.jpg",
                "image/1.png",
                "image/2.jpg",
                "image/2.png",
                "image/3.jpg",
                "image/3.png",
                "json/1.json",
                "json/2.json",
                "matrix/1.csv",
                "matrix/2.csv",
                "text/1.txt",
                "text/2.txt"
            ]
        );
        assert_eq!(ta, tb, "same seed, same bytes");
        for ((n, x), (_, y)) in ta.iter().zip(&tc) {
            assert_ne!(x, y, "{n}: another seed gives another file");
        }
        // No temporary file is left behind.
        assert!(ta.iter().all(|(n, _)| !n.contains(".tmp")));
    }

    #[test]
    fn more_inputs_keep_the_first_ones() {
        let a = render(5, Kind::Text, 2).unwrap();
        let _ = render(5, Kind::Text, 9).unwrap();
        assert_eq!(a, render(5, Kind::Text, 2).unwrap());
        assert_ne!(a, render(5, Kind::Text, 3).unwrap());
    }

    #[test]
    fn kinds_are_checked() {
        assert_eq!(
            parse_kinds("image:2, json:1").unwrap(),
            vec![(Kind::Image, 2), (Kind::Json, 1)]
        );
        let e = parse_kinds("image:2,audio:1").unwrap_err().to_string();
        assert!(
            e.contains("item 2") && e.contains("unknown kind \"audio\""),
            "{e}"
        );
        assert!(parse_kinds("image").is_err());
        assert!(parse_kinds("image:x").is_err());
        assert!(parse_kinds("image:1,image:2").is_err());
    }
}
