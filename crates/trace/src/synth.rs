//! `faasload trace synth`: synthetic tenants x functions (the original FaaSLoad
//! generator's model): each (tenant, function) pair gets its own seeded arrival stream,
//! periodic with a random phase, exponential (Poisson process), or conditional Poisson
//! keeping an exact count (`round(span / mean IAT)` sorted uniforms over the span).
//! Functions are mapped by duration and memory like converted traces; parameters are
//! drawn from the spec language (`--param name=SPEC`, SPEC in YAML/JSON, e.g.
//! `{range_int: {min: 1, max: 9}}`). Writes the YAML trace and, on request, the original
//! TSV directory.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::arrival::{Arrival, Law};
use super::convert::{Mapping, counts_path};
use super::counts::{BinCounts, CountLaw, Counts};
use super::counts_file::write_row;
use super::faasload_dir::write_faasload_dir;
use super::model::User;
use super::schedule::{Parts, Stream, StreamKind};
use super::seed::DEFAULT_SEED;
use super::spec::ParamSpec;
use super::writer::{CountsRef, write_yaml};

#[derive(Args)]
pub struct SynthArgs {
    /// Output YAML trace.
    #[arg(short, long)]
    pub out: PathBuf,
    /// Also write the original FaaSLoad TSV directory here.
    #[arg(long)]
    pub tsv: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    pub tenants: u32,
    #[arg(long, default_value_t = 2)]
    pub functions: u32,
    /// Memory per function (MB).
    #[arg(long, default_value_t = 256)]
    pub memory: u32,
    /// Mean duration per function (ms), used by the mapping.
    #[arg(long, default_value_t = 100.0)]
    pub duration_ms: f64,
    /// Mean inter-arrival time per (tenant, function) (s).
    #[arg(long, default_value_t = 10.0)]
    pub mean_iat: f64,
    /// periodic (random phase), exponential, or conditional (exact count).
    #[arg(long, default_value = "periodic")]
    pub law: String,
    /// Length of the trace (s).
    #[arg(long, default_value_t = 600.0)]
    pub span: f64,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Mapping of (duration, memory) onto faasload functions (see `trace convert`).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Invocation parameter drawn per invocation: `name=SPEC` (repeatable).
    #[arg(long)]
    pub param: Vec<String>,
}

/// Rows of a counts file: (user index, function index, invocations).
type CountRows = Vec<(u32, u32, u64)>;

/// Builds the trace parts (and the counts rows of conditional streams).
pub(crate) fn build(a: &SynthArgs, base: &Path) -> Result<(Parts, CountRows)> {
    if !(a.mean_iat.is_finite() && a.mean_iat > 0.0) {
        bail!("--mean-iat must be a positive number of seconds");
    }
    if !(a.span.is_finite() && a.span > 0.0) {
        bail!("--span must be a positive number of seconds");
    }
    let mapping = Mapping::load(a.mapping.as_deref())?;
    let mut params = Vec::new();
    for p in &a.param {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p}: expected name=SPEC");
        };
        let v: serde_json::Value =
            yaml_serde::from_str(v).with_context(|| format!("--param {p}: not YAML"))?;
        let spec = ParamSpec::from_value(&v)
            .map_err(|e| anyhow::anyhow!("--param {p}: {}: {}", e.path.join("."), e.message))?;
        params.push((k.to_string(), spec));
    }
    let users: Vec<User> = (0..a.tenants)
        .map(|i| User {
            name: format!("user{i}"),
            namespace: format!("user{i}"),
            auth: None,
            api_host: None,
            create: true,
        })
        .collect();
    let mut functions = Vec::new();
    for j in 0..a.functions {
        functions.push(mapping.function(format!("fn{j}"), a.duration_ms, a.memory, base)?);
    }
    let mut streams = Vec::new();
    let mut counts = Vec::new();
    for u in 0..a.tenants {
        for f in 0..a.functions {
            let kind = match a.law.as_str() {
                "conditional" => {
                    let n = (a.span / a.mean_iat).round() as u64;
                    counts.push((u, f, n));
                    StreamKind::Counts(BinCounts {
                        law: CountLaw::Poisson,
                        bin_ns: (a.span * 1e9).round() as u64,
                        start_ns: 0,
                        counts: Counts::from_pairs(vec![(0, n as u32)]),
                    })
                }
                l => StreamKind::Arrival(Arrival {
                    law: l.parse::<Law>().map_err(anyhow::Error::msg)?,
                    rate: 1.0 / a.mean_iat,
                    duration_s: a.span,
                    start_s: 0.0,
                }),
            };
            streams.push(Stream {
                user: u,
                function: f,
                seed: a.seed,
                pair_index: 0,
                label: None,
                kind,
                params: params.clone(),
                inputs: None,
            });
        }
    }
    Ok((
        Parts {
            origin: a.out.display().to_string(),
            users,
            functions,
            seed: a.seed,
            streams,
        },
        counts,
    ))
}

pub fn run(a: SynthArgs) -> Result<()> {
    let base = a
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let (parts, counts) = build(&a, &base)?;
    let header = format!(
        "Synthesised by `faasload trace synth`: {} tenants x {} functions, {} MB, {} ms, \
         mean IAT {} s, law {}, span {} s, seed {}.",
        a.tenants, a.functions, a.memory, a.duration_ms, a.mean_iat, a.law, a.span, a.seed
    );
    let counts_ref = if counts.is_empty() {
        None
    } else {
        let p = counts_path(&a.out);
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?,
        );
        for (u, f, n) in &counts {
            write_row(
                &mut w,
                &parts.users[*u as usize].name,
                &parts.functions[*f as usize].name,
                [(0u32, *n)],
            )?;
        }
        w.flush()?;
        Some(CountsRef {
            file: p
                .file_name()
                .with_context(|| format!("{} has no file name", p.display()))?
                .to_string_lossy()
                .into_owned(),
            bin: a.span,
            law: CountLaw::Poisson,
            start: 0.0,
        })
    };
    write_yaml(&parts, counts_ref.as_ref(), &a.out, &header)?;
    if let Some(dir) = &a.tsv {
        let files = write_faasload_dir(&parts.clone().into_trace(), dir)?;
        eprintln!("{} files written in {}", files.len(), dir.display());
    }
    Ok(())
}
