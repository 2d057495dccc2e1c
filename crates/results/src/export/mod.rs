//! `faasload export`: a load of the results store as a dataset file, Parquet or CSV, one
//! row per run (function, kind, memory limit, input and its size, one typed column per
//! parameter, outcome, timings, CPU, memory, counters), and the monitor's resources time
//! series as a second file. Both files are written whole or not at all.
//!
//! The column set is in [`columns`], parameter typing in [`params`], the formats in
//! [`parquet`] and [`csv`].
mod columns;
mod csv;
mod output;
mod params;
mod parquet;
mod table;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::store::{LoadInfo, Store, redact};
use output::OutFile;
use table::Table;

/// A dataset file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    /// The file extension (without the dot).
    pub fn ext(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }

    /// The format a path's extension names, if any.
    pub fn of_path(p: &Path) -> Option<Format> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" | "pq" => Some(Format::Parquet),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// Results store URL (as given to `faasload load --store`).
    #[arg(default_value = "sqlite://faasload-results.db")]
    pub store: String,
    /// Which load (default: the last one).
    #[arg(long)]
    pub load: Option<i64>,
    /// File format (default: from the extension of --out).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The runs file (one row per run).
    #[arg(long)]
    pub out: PathBuf,
    /// The resources file (one row per monitor sample); default `<out stem>.resources.<ext>`.
    #[arg(long)]
    pub resources: Option<PathBuf>,
    /// Runs read from the store at a time, and rows per Parquet row group of the runs
    /// table (a page's resource samples make one row group of the resources table).
    #[arg(long, default_value_t = parquet::ROWS_PER_GROUP as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub row_group_rows: u64,
}

/// The format and the two output paths of `a`.
fn plan(a: &ExportArgs) -> Result<(Format, PathBuf, PathBuf)> {
    let format = match a.format {
        Some(f) => f,
        None => Format::of_path(&a.out).with_context(|| {
            format!(
                "cannot tell the format of {} from its extension: give --format parquet or \
                 --format csv",
                a.out.display()
            )
        })?,
    };
    let resources = match &a.resources {
        Some(p) => p.clone(),
        None => default_resources_path(&a.out, format),
    };
    if resources == a.out {
        bail!(
            "--out and --resources are the same file ({})",
            a.out.display()
        );
    }
    Ok((format, a.out.clone(), resources))
}

/// `<out stem>.resources.<ext>`, next to `out`.
pub fn default_resources_path(out: &Path, format: Format) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!("{stem}.resources.{}", format.ext()))
}

/// The load `want` (or the last) among `loads`.
fn pick(loads: &[LoadInfo], want: Option<i64>, url: &str) -> Result<LoadInfo> {
    match want {
        Some(id) => loads.iter().find(|l| l.id == id).cloned().with_context(|| {
            let ids: Vec<String> = loads.iter().map(|l| l.id.to_string()).collect();
            format!(
                "no load {id} in the store {} (loads: {})",
                redact(url),
                if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                }
            )
        }),
        None => loads
            .last()
            .cloned()
            .with_context(|| format!("the store {} holds no load yet", redact(url))),
    }
}

/// The two files of an export, in their format.
#[expect(
    clippy::large_enum_variant,
    reason = "one value for the whole export: the variants' sizes do not matter"
)]
enum Sinks<'f> {
    Parquet(
        parquet::ParquetSink<&'f mut OutFile>,
        parquet::ParquetSink<&'f mut OutFile>,
    ),
    Csv(csv::CsvSink<&'f mut OutFile>, csv::CsvSink<&'f mut OutFile>),
}

impl Sinks<'_> {
    fn write(
        &mut self,
        runs: &Table<'_, columns::Run<'_>>,
        samples: &Table<'_, columns::Sample<'_>>,
    ) -> Result<()> {
        match self {
            Sinks::Parquet(r, s) => r.write(runs).and_then(|()| s.write(samples)),
            Sinks::Csv(r, s) => r.write(runs).and_then(|()| s.write(samples)),
        }
    }

    /// (runs, samples) written.
    fn finish(self) -> Result<(u64, u64)> {
        match self {
            Sinks::Parquet(r, s) => Ok((r.finish()?, s.finish()?)),
            Sinks::Csv(r, s) => Ok((r.finish()?, s.finish()?)),
        }
    }
}

/// `faasload export`.
pub fn run(a: ExportArgs) -> Result<()> {
    let (format, out, res_out) = plan(&a)?;
    // Opening a SQLite store creates it: a mistyped path must not leave an empty store.
    if let crate::store::db::Target::Sqlite(path) = crate::store::db::Target::parse(&a.store)?
        && !Path::new(&path).exists()
    {
        bail!("no results store at {path} (the SQLite file does not exist)");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the export's runtime")?;
    rt.block_on(export(&a, format, &out, &res_out))
}

async fn export(a: &ExportArgs, format: Format, out: &Path, res_out: &Path) -> Result<()> {
    let store = Store::open_read(&a.store)
        .await
        .with_context(|| format!("opening the store {}", redact(&a.store)))?;
    let loads = store.loads().await?;
    let info = pick(&loads, a.load, &a.store)?;
    if info.rows == 0 {
        bail!(
            "load {} ({}, {}) has no runs: nothing to export",
            info.id,
            info.origin,
            info.status.as_str()
        );
    }
    let functions: HashMap<String, _> = store
        .functions()
        .await?
        .into_iter()
        .map(|f| (f.name.clone(), f))
        .collect();
    // Both files are created before any work, so an unwritable place fails at once.
    let mut runs_file = OutFile::create(out)?;
    let mut res_file = OutFile::create(res_out)?;

    // The parameter columns' types, over the whole load (streamed).
    let mut inference = params::Inference::default();
    store
        .for_each_parameter(info.id, |n, v| inference.add(n, v))
        .await?;
    let param_types = inference.columns();
    let type_of: HashMap<&str, table::ColType> =
        param_types.iter().map(|(n, t)| (n.as_str(), *t)).collect();

    let meta = |table: &str| {
        vec![
            ("faasload.table".to_string(), table.to_string()),
            ("faasload.load_id".to_string(), info.id.to_string()),
            ("faasload.load_origin".to_string(), info.origin.clone()),
            (
                "faasload.load_status".to_string(),
                info.status.as_str().to_string(),
            ),
            (
                "faasload.load_seed".to_string(),
                info.seed.map(|s| s.to_string()).unwrap_or_default(),
            ),
            ("faasload.units".to_string(), UNITS.to_string()),
        ]
    };
    let (run_cols, sample_cols) = (
        columns::run_columns(&param_types),
        columns::sample_columns(),
    );
    let page = usize::try_from(a.row_group_rows).unwrap_or(usize::MAX);
    let mut sinks = match format {
        Format::Parquet => Sinks::Parquet(
            parquet::ParquetSink::new("runs", &run_cols, meta("runs"), page, &mut runs_file)?,
            // A page's samples, however many, make one row group.
            parquet::ParquetSink::new(
                "resources",
                &sample_cols,
                meta("resources"),
                usize::MAX,
                &mut res_file,
            )?,
        ),
        Format::Csv => Sinks::Csv(
            csv::CsvSink::new("runs", &run_cols, &mut runs_file)?,
            csv::CsvSink::new("resources", &sample_cols, &mut res_file)?,
        ),
    };
    // One page of runs in memory at a time.
    let mut after = None;
    loop {
        let page = store.rows_page(info.id, after, a.row_group_rows).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.seq, last.id));
        for r in &page {
            params::check(&type_of, &r.params).map_err(|e| {
                anyhow::anyhow!(
                    "load {} changed during the export (run seq {}: {e}); export it again \
                     once it has ended",
                    info.id,
                    r.seq
                )
            })?;
        }
        let runs = columns::runs(&page, &functions);
        let samples = columns::samples(&page);
        sinks.write(
            &Table {
                rows: &runs,
                columns: columns::run_columns(&param_types),
            },
            &Table {
                rows: &samples,
                columns: columns::sample_columns(),
            },
        )?;
        if (page.len() as u64) < a.row_group_rows {
            break;
        }
    }
    store.close().await;
    let (n_runs, n_samples) = sinks.finish()?;
    runs_file.commit()?;
    res_file.commit()?;
    eprintln!(
        "load {}: {n_runs} runs -> {}, {n_samples} resource samples -> {}",
        info.id,
        out.display(),
        res_out.display()
    );
    Ok(())
}

/// The units, as stored in each Parquet file's key-value metadata (`faasload.units`).
pub const UNITS: &str = "*_ns: nanoseconds; *_ms: milliseconds (start_ms, end_ms, \
timestamp_ms: Unix epoch); *_epoch_ns: Unix epoch in ns; *_bytes, input_bytes, outputsize, \
memory_B: bytes; memory_mb: MiB (the action's memory limit); proc_mCPU: ms of CPU since the \
activation window's first sample; nvcsw, nivcsw, wakeups, migrations, pgfault, pgmajfault: \
counts during the activation";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LoadStatus, StoredRow};

    fn args(out: &str, format: Option<Format>, resources: Option<&str>) -> ExportArgs {
        ExportArgs {
            store: "x.db".into(),
            load: None,
            format,
            out: out.into(),
            resources: resources.map(PathBuf::from),
            row_group_rows: 10,
        }
    }

    #[test]
    fn formats_and_paths() {
        let (f, o, r) = plan(&args("d/data.parquet", None, None)).unwrap();
        assert_eq!(
            (f, o, r),
            (
                Format::Parquet,
                "d/data.parquet".into(),
                "d/data.resources.parquet".into()
            )
        );
        let (f, _, r) = plan(&args("data", Some(Format::Csv), None)).unwrap();
        assert_eq!((f, r), (Format::Csv, "data.resources.csv".into()));
        let e = plan(&args("data.xlsx", None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.xlsx") && e.contains("--format"), "{e}");
        let e = plan(&args("a.csv", None, Some("a.csv")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("same file"), "{e}");
    }

    fn load(id: i64) -> LoadInfo {
        LoadInfo {
            id,
            origin: "o".into(),
            seed: None,
            start_epoch_ms: 0,
            end_epoch_ms: None,
            status: LoadStatus::Completed,
            planned: None,
            rows: 0,
            failed: 0,
            heartbeat_epoch_ms: None,
        }
    }

    #[test]
    fn picks_the_load() {
        let loads = [load(1), load(4)];
        assert_eq!(pick(&loads, None, "u").unwrap().id, 4);
        assert_eq!(pick(&loads, Some(1), "u").unwrap().id, 1);
        let e = pick(&loads, Some(2), "postgres://a:pw@h/db")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no load 2") && e.contains("1, 4") && !e.contains("pw"),
            "{e}"
        );
        assert!(
            pick(&[], None, "u")
                .unwrap_err()
                .to_string()
                .contains("no load yet")
        );
    }

    fn stored(seq: i64, params: &[(&str, &str)]) -> StoredRow {
        StoredRow {
            id: seq + 100,
            load_id: 7,
            seq,
            user: "u".into(),
            namespace: "ns".into(),
            function: "wand_blur".into(),
            action: "wand_blur_256".into(),
            input: Some("image/1.jpg".into()),
            activation_id: None,
            failed: false,
            start_ms: None,
            end_ms: None,
            wait_ms: None,
            init_ms: None,
            outputsize: None,
            extract_ms: None,
            transform_ms: None,
            load_ms: None,
            intended_epoch_ns: 5,
            sent_epoch_ns: None,
            answered_epoch_ns: None,
            queue_ns: 0,
            lag_ns: None,
            latency_ns: None,
            duration_ms: None,
            http_status: None,
            class: "success".into(),
            status: None,
            error: None,
            cold: Some(true),
            memory_mb: Some(256),
            container: None,
            cpu_user_ns: None,
            cpu_sys_ns: None,
            cpu_ns: None,
            mem_peak_bytes: None,
            mem_avg_bytes: None,
            nvcsw: None,
            nivcsw: None,
            wakeups: None,
            migrations: None,
            pgfault: None,
            pgmajfault: None,
            monitor_missing: None,
            polls: 0,
            retries: 0,
            input_bytes: Some(1234),
            init_cpu_ns: None,
            init_mem_peak_bytes: None,
            params: params
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            resources: vec![crate::store::ResourceRow {
                timestamp_ms: 10 + seq,
                memory_b: None,
                proc_mcpu: Some(1),
                cpu_ns: Some(2),
            }],
        }
    }

    /// The column set: every measured quantity, unique names, parameters typed and
    /// placed after the inputs, and values read from the right fields.
    #[test]
    fn run_and_resource_columns() {
        use table::{Cell, ColType};
        let rows = [
            stored(0, &[("sigma", "2"), ("mode", "fast")]),
            stored(1, &[("sigma", "0.5")]),
        ];
        let mut functions = HashMap::new();
        functions.insert(
            "wand_blur".to_string(),
            crate::store::FunctionMeta {
                name: "wand_blur".into(),
                runtime: Some("python:3".into()),
                ..Default::default()
            },
        );
        let none = HashMap::new();
        let types = params::columns(rows.iter().map(|r| r.params.iter()));
        let cols = columns::run_columns(&types);
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        let mut uniq = names.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), names.len(), "duplicate column in {names:?}");
        for want in [
            "load_id",
            "seq",
            "function",
            "action",
            "kind",
            "memory_mb",
            "input",
            "input_bytes",
            "param_mode",
            "param_sigma",
            "cold",
            "failed",
            "class",
            "status",
            "duration_ms",
            "init_ms",
            "wait_ms",
            "latency_ns",
            "cpu_user_ns",
            "cpu_sys_ns",
            "cpu_ns",
            "mem_peak_bytes",
            "mem_avg_bytes",
            "nvcsw",
            "nivcsw",
            "wakeups",
            "migrations",
            "pgfault",
            "pgmajfault",
            "outputsize",
            "extract_ms",
            "transform_ms",
            "load_ms",
            "activation_id",
            "container",
            "monitor_missing",
            "start_ms",
            "end_ms",
            "intended_epoch_ns",
            "sent_epoch_ns",
            "answered_epoch_ns",
        ] {
            assert!(names.contains(&want), "no column {want} in {names:?}");
        }
        let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
        assert_eq!(&names[..4], ["load_id", "seq", "function", "action"]);
        assert!(pos("input_bytes") < pos("param_mode") && pos("param_sigma") < pos("cold"));
        let col = |n: &str| &cols[pos(n)];
        assert_eq!(col("param_sigma").ty, ColType::Float64);
        assert_eq!(col("param_mode").ty, ColType::Utf8);
        assert_eq!(col("intended_epoch_ns").ty, ColType::TimestampNs);
        assert!(!col("seq").nullable && col("memory_mb").nullable);

        let runs = columns::runs(&rows, &functions);
        let get = |n: &str, i: usize| col(n).cell(&runs[i]).unwrap();
        assert_eq!(get("kind", 0), Cell::Str("python:3"));
        assert_eq!(get("action", 1), Cell::Str("wand_blur_256"));
        assert_eq!(get("param_sigma", 0), Cell::Float(2.0));
        assert_eq!(get("param_mode", 1), Cell::Null);
        assert_eq!(get("input_bytes", 0), Cell::Int(1234));
        assert_eq!(get("memory_mb", 0), Cell::Int(256));
        assert_eq!(get("cold", 0), Cell::Bool(true));
        assert_eq!(get("samples", 0), Cell::Int(1));
        // A function missing from `functions`: no kind.
        let bare = columns::runs(&rows, &none);
        assert_eq!(col("kind").cell(&bare[0]).unwrap(), Cell::Null);
        // Every column accepts every row (types and nullability agree with the store).
        for c in &cols {
            for r in &runs {
                c.cell(r).unwrap();
            }
        }

        let samples = columns::samples(&rows);
        let rc = columns::sample_columns();
        let rn: Vec<&str> = rc.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            rn,
            [
                "load_id",
                "seq",
                "timestamp_ms",
                "memory_B",
                "proc_mCPU",
                "cpu_ns"
            ]
        );
        assert_eq!(samples.len(), 2);
        assert_eq!(rc[1].cell(&samples[1]).unwrap(), Cell::Int(1));
        assert_eq!(rc[2].cell(&samples[1]).unwrap(), Cell::Int(11));
        assert_eq!(rc[3].cell(&samples[1]).unwrap(), Cell::Null);
    }
}
