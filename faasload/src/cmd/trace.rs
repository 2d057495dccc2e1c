//! `faasload trace ...`: convert production traces, synthesise tenants, check and
//! summarise a trace. Argument parsing and output only; the work is in the trace modules.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use faasload_trace::CountLaw;
use faasload_trace::DEFAULT_SEED;
use faasload_trace::FunctionCatalog;
use faasload_trace::convert::{self, Mapping, OnBadRow, Summary};
use faasload_trace::load_yaml_parts;
use faasload_trace::stats;
use faasload_trace::synth;
use faasload_trace::write_yaml;
use faasload_trace::{read_faasload_dir, write_faasload_parts};

#[derive(Args)]
pub(crate) struct TraceArgs {
    #[command(subcommand)]
    cmd: TraceCmd,
}

#[derive(Subcommand)]
enum TraceCmd {
    /// Convert a production trace (Azure 2019/2021, Huawei 2023) or an original FaaSLoad
    /// TSV directory into a faasload trace (or YAML back into a TSV directory).
    #[command(
        subcommand,
        after_help = "Examples:
  faasload trace convert azure2019 invocations_per_function_md.anon.d01.csv --top 20 -o day.yaml
  faasload trace convert azure2021 AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt -o a21.yaml
  faasload trace convert huawei requests_per_second_day_00.csv -o hw.yaml
  faasload trace convert tsv-to-yaml config/traces/faasload-sample -o sample.yaml"
    )]
    Convert(ConvertCmd),
    /// Synthesise tenants x functions with arrival laws, as a YAML trace (and optionally
    /// the original FaaSLoad TSV directory).
    #[command(after_help = "Examples:
  faasload trace synth --tenants 4 --functions 3 --mean-iat 2 --law conditional --span 600 -o synth.yaml
  faasload trace synth --tenants 2 --functions 2 --span 60 -o s.yaml --tsv s-tsv/")]
    Synth(synth::SynthArgs),
    /// Validate a trace (errors say file:line:col).
    #[command(after_help = "Examples:
  faasload trace check day.yaml
  faasload trace check config/traces/faasload-sample")]
    Check(CheckArgs),
    /// Per-user and per-function counts, rate over time, expected concurrency.
    #[command(after_help = "Examples:
  faasload trace stats day.yaml
  faasload trace stats day.yaml --json --rows 60")]
    Stats(stats::StatsArgs),
}

#[derive(Args)]
pub(crate) struct Common {
    /// Output YAML trace (per-bin counts go beside it, in `NAME.counts.tsv`).
    #[arg(short, long)]
    out: PathBuf,
    /// Seed of the selection and of the arrival draws.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Mapping of trace functions onto faasload functions (YAML rules); default: no-op
    /// below 2 ms, else `python/burn.py` with the mean duration and a quarter of the memory.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// What to do with a malformed CSV row: fail at once, or skip it (reported with
    /// file:line and counted).
    #[arg(long, value_enum, default_value_t = OnBadRow::Fail)]
    on_bad_row: OnBadRow,
}

#[derive(Subcommand)]
enum ConvertCmd {
    /// Azure Functions 2019: invocations_per_function_md (+ durations, app memory).
    #[command(after_help = "Examples:
  faasload trace convert azure2019 invocations_per_function_md.anon.d01.csv \\
      --durations function_durations_percentiles.anon.d01.csv \\
      --memory app_memory_percentiles.anon.d01.csv \\
      --top 20 --from-minute 60 --to-minute 120 --scale 0.5 --law poisson -o day.yaml")]
    Azure2019(Azure2019Args),
    /// Azure Functions 2021: app, func, end_timestamp, duration (start = end - duration).
    #[command(after_help = "Examples:
  faasload trace convert azure2021 AzureFunctionsInvocationTraceForTwoWeeksJan2021.txt -o a21.yaml
  faasload trace convert azure2021 a21.txt --from 3600 --to 7200 --memory 512 -o hour.yaml")]
    Azure2021(Azure2021Args),
    /// Huawei 2023 per-second or per-minute request files (a time column, one column per
    /// function).
    #[command(after_help = "Examples:
  faasload trace convert huawei requests_per_second_day_00.csv -o hw.yaml
  faasload trace convert huawei requests_per_minute_day_00.csv --bin 60 --scale 0.1 -o hw.yaml")]
    Huawei(HuaweiArgs),
    /// Original FaaSLoad TSV directory -> YAML (lossless: file names are kept).
    #[command(after_help = "Examples:
  faasload trace convert tsv-to-yaml config/traces/faasload-sample -o sample.yaml")]
    TsvToYaml(TsvToYamlArgs),
    /// YAML trace -> original FaaSLoad TSV directory.
    #[command(after_help = "Examples:
  faasload trace convert yaml-to-tsv sample.yaml -o sample-tsv/")]
    YamlToTsv(YamlToTsvArgs),
}

#[derive(Args)]
struct Azure2019Args {
    /// invocations_per_function_md.anon.dNN.csv
    invocations: PathBuf,
    /// function_durations_percentiles.anon.dNN.csv
    #[arg(long)]
    durations: Option<PathBuf>,
    /// app_memory_percentiles.anon.dNN.csv
    #[arg(long)]
    memory: Option<PathBuf>,
    #[arg(long, default_value = "AverageAllocatedMb_pct50")]
    memory_column: String,
    /// Keep the N functions with the most invocations in the window.
    #[arg(long, conflicts_with = "random")]
    top: Option<usize>,
    /// Keep N functions drawn at random (seeded).
    #[arg(long)]
    random: Option<usize>,
    /// Keep only these triggers (http, timer, queue, ...); repeatable.
    #[arg(long)]
    trigger: Vec<String>,
    /// First minute kept (0-based: column `1` is minute 0).
    #[arg(long, default_value_t = 0)]
    from_minute: u32,
    /// End of the window (exclusive).
    #[arg(long)]
    to_minute: Option<u32>,
    /// Rate scale factor (cumulative rounding: no count lost).
    #[arg(long, default_value_t = 1.0, value_parser = positive_scale)]
    scale: f64,
    /// How a minute's count becomes arrivals: equidistant, poisson (sorted uniforms),
    /// exponential (normalised gaps); exact count either way.
    #[arg(long, default_value = "poisson")]
    law: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct Azure2021Args {
    input: PathBuf,
    /// First second kept (instants are counted from it).
    #[arg(long, default_value_t = 0.0)]
    from: f64,
    #[arg(long)]
    to: Option<f64>,
    #[arg(long, default_value_t = 256)]
    memory: u32,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct HuaweiArgs {
    input: PathBuf,
    /// Seconds per row: 1 (per-second files) or 60 (per-minute).
    #[arg(long, default_value_t = 1.0)]
    bin: f64,
    /// Rate scale factor (cumulative rounding: no count lost).
    #[arg(long, default_value_t = 1.0, value_parser = positive_scale)]
    scale: f64,
    #[arg(long, default_value = "poisson")]
    law: String,
    #[arg(long, default_value_t = 256)]
    memory: u32,
    /// Mean duration used by the mapping (ms).
    #[arg(long, default_value_t = 100.0)]
    duration_ms: f64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct TsvToYamlArgs {
    dir: PathBuf,
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Args)]
struct YamlToTsvArgs {
    trace: PathBuf,
    #[arg(short, long)]
    out: PathBuf,
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// YAML trace or original FaaSLoad directory.
    trace: PathBuf,
}

impl Common {
    /// The converters' shared options (the mapping read and checked).
    fn output(self) -> Result<convert::Output> {
        Ok(convert::Output {
            mapping: Mapping::load(self.mapping.as_deref())?,
            out: self.out,
            seed: self.seed,
            on_bad_row: self.on_bad_row,
        })
    }
}

/// A `--scale`: a positive finite number.
fn positive_scale(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive number")),
    }
}

fn law(s: &str) -> Result<CountLaw> {
    s.parse::<CountLaw>().map_err(anyhow::Error::msg)
}

fn report(s: &Summary) {
    eprintln!(
        "{} rows read, {} skipped as malformed; {} users, {} functions, {} invocations",
        s.rows_read, s.rows_skipped, s.users, s.functions, s.invocations
    );
}

pub(crate) fn run(a: TraceArgs) -> Result<()> {
    match a.cmd {
        TraceCmd::Convert(c) => convert_cmd(c),
        TraceCmd::Synth(s) => synth::run(s),
        TraceCmd::Check(c) => {
            let t = faasload_trace::load(&c.trace)?;
            println!(
                "{}: ok ({} users, {} functions, {} pairs{})",
                c.trace.display(),
                t.users.len(),
                t.functions.len(),
                t.pairs.len(),
                t.total
                    .map(|n| format!(", {n} invocations"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        TraceCmd::Stats(s) => stats::run(s),
    }
}

fn convert_cmd(c: ConvertCmd) -> Result<()> {
    match c {
        ConvertCmd::Azure2019(a) => {
            let select = match (a.top, a.random) {
                (Some(n), _) => convert::azure2019::Select::Top(n),
                (_, Some(n)) => convert::azure2019::Select::Random(n),
                _ => convert::azure2019::Select::All,
            };
            let s = convert::azure2019::convert(&convert::azure2019::Options {
                invocations: a.invocations,
                durations: a.durations,
                memory: a.memory,
                memory_column: a.memory_column,
                select,
                triggers: a.trigger,
                from_minute: a.from_minute,
                to_minute: a.to_minute,
                scale: a.scale,
                law: law(&a.law)?,
                output: a.common.output()?,
            })?;
            report(&s);
        }
        ConvertCmd::Azure2021(a) => {
            let s = convert::azure2021::convert(&convert::azure2021::Options {
                input: a.input,
                from_s: a.from,
                to_s: a.to,
                memory_mb: a.memory,
                output: a.common.output()?,
            })?;
            report(&s);
        }
        ConvertCmd::Huawei(a) => {
            let s = convert::huawei::convert(&convert::huawei::Options {
                input: a.input,
                bin_s: a.bin,
                scale: a.scale,
                law: law(&a.law)?,
                memory_mb: a.memory,
                duration_ms: a.duration_ms,
                output: a.common.output()?,
            })?;
            report(&s);
        }
        ConvertCmd::TsvToYaml(a) => {
            let catalog = FunctionCatalog::for_dir(&a.dir)?;
            let parts = read_faasload_dir(&a.dir, &catalog)?;
            let header = format!(
                "Converted from the FaaSLoad trace directory {} by `faasload trace convert tsv-to-yaml`.",
                a.dir.display()
            );
            write_yaml(&parts, None, &a.out, &header)?;
        }
        ConvertCmd::YamlToTsv(a) => {
            let parts = load_yaml_parts(&a.trace)?;
            let files = write_faasload_parts(&parts, &a.out)
                .with_context(|| format!("writing {}", a.out.display()))?;
            eprintln!("{} files written in {}", files.len(), a.out.display());
        }
    }
    Ok(())
}
