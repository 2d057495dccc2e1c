//! The HTML report of a stored load: one self-contained file (inline SVG charts drawn by
//! plotters, inline CSS, no script, no external resource; its Content-Security-Policy
//! forbids any) with the load's description, its counts, seven figures (see
//! [`figures::FIGURE_IDS`]) and the percentile tables the text report prints. The load
//! is read from the store a page of rows at a time, feeding both the figures' data and
//! the tables' [`Report`], so memory stays bounded whatever the load's size.
//!
//! `faasload report STORE --html FILE` writes it ([`report_cli_html`]); the end of each
//! stored `faasload load` writes it to [`html_report_path`] ([`write_html_report`]).
mod charts;
mod data;
mod figures;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Report;
use super::metrics::{Metric, MetricSet, PERCENTILES, Summary, ms};
use crate::store::db::Target;
use crate::store::{LoadInfo, Store};
use data::PlotData;
use figures::{Body, Figure};

/// Rows read from the store at a time.
const PAGE_ROWS: u64 = 2000;

/// `s` with the HTML special characters escaped (for text and attribute values).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Epoch ms as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
fn utc(epoch_ms: i64) -> String {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03} UTC",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
}

/// Where the end of a load writes its HTML report: beside a SQLite store's file
/// (`<file>.load-<id>.html`), or `faasload-load-<id>.html` in the current directory for
/// a PostgreSQL or MariaDB store.
pub fn html_report_path(store_url: &str, load_id: i64) -> PathBuf {
    let name = format!("faasload-load-{load_id}.html");
    match Target::parse(store_url) {
        Ok(Target::Sqlite(file)) => {
            // `sqlite://file?mode=...`: the options are not part of the file's name.
            let file = file.split('?').next().unwrap_or(&file);
            if file.is_empty() || file.starts_with(':') {
                // In-memory databases have no file to sit beside.
                PathBuf::from(name)
            } else {
                PathBuf::from(format!("{file}.load-{load_id}.html"))
            }
        }
        _ => PathBuf::from(name),
    }
}

/// The report and the figures' data of load `info`, read a page of rows at a time.
async fn gather(store: &Store, info: &LoadInfo) -> Result<(Report, PlotData)> {
    let mut report = Report::new();
    report.start_epoch_ms = Some(info.start_epoch_ms.max(0) as u64);
    let mut plots = PlotData::new(info.start_epoch_ms);
    let mut after = None;
    loop {
        let page = store
            .rows_page(info.id, after, PAGE_ROWS)
            .await
            .with_context(|| format!("reading the rows of load {}", info.id))?;
        let Some(last) = page.last() else { break };
        after = Some((last.seq, last.id));
        for r in &page {
            report.record_stored(r, info.start_epoch_ms);
            plots.add(r);
        }
        if (page.len() as u64) < PAGE_ROWS {
            break;
        }
    }
    Ok((report, plots))
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1000px;\
padding:1em 1.5em;color:#222;background:#fff}\
h1{font-size:1.5em;margin-bottom:.3em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}\
h3{font-size:1.05em;margin:1.2em 0 .4em}\
dl.meta{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}\
dl.meta dt{color:#666}dl.meta dd{margin:0}\
nav ul{padding-left:1.2em;columns:2}\
figure{margin:1.5em 0;border:1px solid #e4e4e4;border-radius:4px;padding:.5em}\
figure svg{display:block;max-width:100%;height:auto}\
figcaption{font-size:.9em;color:#444;margin-top:.4em}\
p.note{background:#f7f7f7;border-left:4px solid #bbb;padding:.8em 1em;margin:.5em 0}\
table{border-collapse:collapse;font-size:.85em;margin:.3em 0 1em}\
th,td{padding:.15em .5em;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.scroll{overflow-x:auto}footer{margin-top:2em;font-size:.8em;color:#777}";

fn pct_label(p: f64) -> String {
    if p >= 100.0 {
        "max".to_string()
    } else {
        format!("p{p}")
    }
}

/// A percentile table: one row per group and metric with values (as the text report).
fn table<'s>(
    out: &mut String,
    groups: &[&str],
    rows: impl IntoIterator<Item = (Vec<&'s str>, &'s MetricSet)>,
) {
    out.push_str("<div class=\"scroll\"><table><thead><tr>");
    for g in groups {
        let _ = write!(out, "<th>{}</th>", esc(g));
    }
    out.push_str("<th>metric</th><th class=\"n\">count</th><th class=\"n\">mean</th><th class=\"n\">stdev</th>");
    for p in PERCENTILES {
        let _ = write!(out, "<th class=\"n\">{}</th>", pct_label(p));
    }
    out.push_str("</tr></thead><tbody>\n");
    for (names, set) in rows {
        for m in Metric::ALL {
            let sum = Summary::of(set.get(m));
            if sum.count == 0 {
                continue;
            }
            out.push_str("<tr>");
            for n in &names {
                let _ = write!(out, "<td>{}</td>", esc(n));
            }
            let _ = write!(
                out,
                "<td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>",
                m.label(),
                sum.count,
                ms(sum.mean),
                ms(sum.stdev)
            );
            for v in sum.at {
                let _ = write!(out, "<td class=\"n\">{}</td>", ms(v as f64));
            }
            out.push_str("</tr>\n");
        }
    }
    out.push_str("</tbody></table></div>\n");
}

fn figure(out: &mut String, f: &Figure) {
    let _ = writeln!(out, "<figure id=\"{}\">", f.id);
    match &f.body {
        Body::Svg(svg) => out.push_str(svg),
        Body::Note(n) => {
            let _ = write!(
                out,
                "<h3>{}</h3>\n<p class=\"note\">{}</p>\n",
                esc(&f.title),
                esc(n)
            );
        }
    }
    let _ = write!(
        out,
        "<figcaption>{}</figcaption>\n</figure>\n",
        esc(&f.caption)
    );
}

/// The whole page. `source` names the store (redacted) for the footer.
fn render(info: &LoadInfo, report: &Report, figs: &[Figure], source: &str) -> String {
    let mut out = String::new();
    let title = format!("faasload load {} — {}", info.id, info.origin);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{}</title>\n<style>{STYLE}</style>\n\
         </head>\n<body>\n<h1>{}</h1>\n<dl class=\"meta\">\n",
        esc(&title),
        esc(&title)
    );
    let mut meta = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(&v));
    };
    meta("status", info.status.as_str().to_string());
    meta(
        "started",
        format!(
            "{} (epoch {} ms)",
            utc(info.start_epoch_ms),
            info.start_epoch_ms
        ),
    );
    if let Some(end) = info.end_epoch_ms {
        meta(
            "ended",
            format!(
                "{}, after {:.3} s",
                utc(end),
                (end - info.start_epoch_ms) as f64 / 1e3
            ),
        );
    }
    if let Some(seed) = info.seed {
        meta("seed", seed.to_string());
    }
    let mut stored = format!("{} ({} failed)", info.rows, info.failed);
    if let Some(p) = info.planned {
        let _ = write!(stored, " of {p} planned");
    }
    meta("rows stored", stored);
    let classes: Vec<String> = report
        .classes()
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    meta(
        "outcomes",
        if classes.is_empty() {
            "none".to_string()
        } else {
            classes.join(", ")
        },
    );
    let (cold, warm, none) = report.starts();
    meta(
        "starts",
        format!("cold {cold}, warm {warm}, without a record {none}"),
    );
    out.push_str("</dl>\n<nav><ul>\n");
    for f in figs {
        let _ = writeln!(out, "<li><a href=\"#{}\">{}</a></li>", f.id, esc(&f.title));
    }
    out.push_str("<li><a href=\"#tables\">Percentile tables</a></li>\n</ul></nav>\n");
    out.push_str("<h2 id=\"figures\">Figures</h2>\n");
    for f in figs {
        figure(&mut out, f);
    }
    out.push_str(
        "<h2 id=\"tables\">Percentile tables</h2>\n<p>Values in ms; latency is measured \
         from the intended send instant (no coordinated omission), send lag is sent − \
         intended; duration, waitTime and initTime come from the activation records.</p>\n",
    );
    out.push_str("<h3>Overall (ms)</h3>\n");
    table(&mut out, &[], [(Vec::new(), report.overall())]);
    out.push_str("<h3>Per function (ms)</h3>\n");
    table(
        &mut out,
        &["function"],
        report
            .by_function
            .iter()
            .map(|(f, s)| (vec![f.as_str()], s)),
    );
    let pairs: usize = report.by_user.values().map(|m| m.len()).sum();
    let _ = writeln!(
        out,
        "<details{}><summary><h3 style=\"display:inline\">Per user and function (ms)</h3> \
         ({pairs} pairs)</summary>",
        if pairs <= 50 { " open" } else { "" }
    );
    table(
        &mut out,
        &["user", "function"],
        report.by_user.iter().flat_map(|(u, fs)| {
            fs.iter()
                .map(move |(f, s)| (vec![u.as_str(), f.as_str()], s))
        }),
    );
    out.push_str("</details>\n");
    let _ = write!(
        out,
        "<footer>Written by faasload {} from {}.</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(source)
    );
    out
}

/// Writes `text` to `path` whole or not at all (a temporary file beside it, renamed).
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("renaming {} to {}", tmp.display(), path.display())
    })
}

/// Reads load `info` from `store`, writes its HTML report to `path`, and returns the
/// report (for the text tables).
async fn write_for(store: &Store, info: &LoadInfo, path: &Path, source: &str) -> Result<Report> {
    let (report, plots) = gather(store, info).await?;
    let span = info
        .end_epoch_ms
        .map(|e| (e.saturating_sub(info.start_epoch_ms).max(0) as u64).saturating_mul(1_000_000));
    let figs = figures::figures(&plots, span).context("drawing the report's figures")?;
    let html = render(info, &report, &figs, source);
    write_atomically(path, &html)?;
    Ok(report)
}

/// Writes the HTML report of load `load_id` of `store` (opened from `store_url`) to
/// `path`. For the end of a load; errors say what failed, nothing else is touched.
pub async fn write_html_report(
    store: &Store,
    store_url: &str,
    load_id: i64,
    path: &Path,
) -> Result<()> {
    let info = store
        .loads()
        .await?
        .into_iter()
        .find(|l| l.id == load_id)
        .with_context(|| format!("no load {load_id} in the store"))?;
    write_for(store, &info, path, &crate::store::redact(store_url)).await?;
    Ok(())
}

/// `faasload report STORE --html FILE`: writes the HTML report of a stored load (the
/// last one by default) to `html` and returns the text report, exactly as
/// [`super::report_cli`] gives it, both from one read of the store. Synchronous (it runs
/// its own runtime); inside a runtime use [`report_store_html`].
pub fn report_cli_html(url: &str, load: Option<i64>, html: &Path) -> Result<String> {
    if tokio::runtime::Handle::try_current().is_ok() {
        anyhow::bail!("report_cli_html called inside a tokio runtime: use report_store_html");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the report's runtime")?;
    rt.block_on(report_store_html(url, load, html))
}

/// [`report_cli_html`], async.
pub async fn report_store_html(url: &str, load: Option<i64>, html: &Path) -> Result<String> {
    let store = Store::open_read(url)
        .await
        .with_context(|| format!("opening the store {}", crate::store::redact(url)))?;
    let info = super::pick_load(&store, load).await?;
    let report = write_for(&store, &info, html, &crate::store::redact(url))
        .await
        .with_context(|| format!("writing the HTML report {}", html.display()));
    store.close().await;
    let report = report?;
    let mut out = super::text::load_header(&info);
    out.push_str(&report.render_text());
    Ok(out)
}

#[cfg(test)]
mod tests;
