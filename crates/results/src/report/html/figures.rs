//! The report's figures from a load's [`PlotData`]: latency CDF per function (warm solid,
//! cold dashed), latency and send lag over time (p50, p99, max per time bin), achieved
//! rate over time (intended, sent, answered per second), CPU time and peak memory per
//! invocation per function from the monitor (CDFs), and the cold-start timeline. A
//! figure without data is a note saying why, never an empty chart.
use anyhow::Result;
use hdrhistogram::Histogram;
use plotters::style::RGBColor;

use super::charts::{self, Axis, Key, LaneChart, LineChart, PALETTE, Series};
use super::data::{Bin, FunctionData, PlotData, cdf_points, coarse_width, histogram, quantile};

/// Functions drawn in their own colour in a per-function chart; the rest are merged
/// into one grey "other functions" series.
pub(super) const MAX_SERIES: usize = 8;
/// Lanes of the cold-start timeline (the rest merged into one).
const MAX_LANES: usize = 20;
/// Steps of a CDF curve (see [`cdf_points`]).
const CDF_STEPS: usize = 400;

/// What a figure shows: a chart, or a note in its place.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Body {
    Svg(String),
    Note(String),
}

/// One figure of the report.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Figure {
    /// The element id (stable: tests and links use it).
    pub(super) id: &'static str,
    pub(super) title: String,
    /// What the chart shows and what it leaves out.
    pub(super) caption: String,
    pub(super) body: Body,
}

/// The ids of every figure, in page order.
#[cfg(test)]
pub(super) const FIGURE_IDS: [&str; 7] = [
    "latency-cdf",
    "latency-time",
    "lag-time",
    "rate-time",
    "cpu-cdf",
    "memory-cdf",
    "cold-starts",
];

/// A duration in ns, for captions ("10 ms", "2 s", "100 s").
pub(super) fn duration(ns: u64) -> String {
    if ns < 1_000_000_000 {
        format!("{} ms", charts::num(ns as f64 / 1e6))
    } else {
        format!("{} s", charts::num(ns as f64 / 1e9))
    }
}

/// The colour of the `i`-th function of a chart of `n` (the merged rest, last, is grey).
fn color_of(i: usize, merged: bool, n: usize) -> RGBColor {
    if merged && i + 1 == n {
        PALETTE[9]
    } else {
        PALETTE[i % 9]
    }
}

/// The CDF of `h` (values divided by `div`) as a step curve: from 0 up to the first
/// bucket's fraction at its value, then flat until the next bucket's value and up again
/// (so a distribution within one bucket is one vertical step, not a lone point).
fn cdf(h: &Histogram<u64>, div: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut below = 0.0;
    for (v, q) in cdf_points(h, CDF_STEPS) {
        let x = (v / div).max(1e-3);
        out.push((x, below));
        out.push((x, q));
        below = q;
    }
    out
}

/// The curves of a function in a per-function CDF chart: (histogram, dashed).
type Curves<'f> = Vec<(&'f Histogram<u64>, bool)>;

/// A per-function CDF chart: one or two curves per function (from `curves`: histogram
/// and dashed), the legend naming the functions (and the line styles, when given).
fn per_function_cdf(
    title: &str,
    x_desc: &str,
    fs: &[FunctionData],
    merged: bool,
    div: f64,
    curves: &dyn Fn(&FunctionData) -> Curves<'_>,
    styles: &[Key],
) -> Result<Option<String>> {
    let mut series = Vec::new();
    let mut legend = Vec::new();
    for (i, f) in fs.iter().enumerate() {
        let color = color_of(i, merged, fs.len());
        let mut any = false;
        for (h, dashed) in curves(f) {
            let points = cdf(h, div);
            if points.is_empty() {
                continue;
            }
            any = true;
            series.push(Series {
                color,
                dashed,
                points,
            });
        }
        if any {
            legend.push(Key::Line {
                label: f.name.clone(),
                color,
                dashed: false,
            });
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    let lo = series
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let hi = series
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.0))
        .fold(0.0, f64::max);
    legend.extend_from_slice(styles);
    let chart = LineChart {
        title: title.to_string(),
        x: Axis::around(lo, hi, 20.0, x_desc),
        y: Axis::fraction("fraction of invocations ≤ x"),
        series,
        legend,
        markers: false,
    };
    charts::line_chart(&chart).map(Some)
}

fn latency_cdf(d: &PlotData) -> Result<Figure> {
    let fs = d.top_functions(MAX_SERIES, |f| f.rows);
    let merged = d.functions.len() > MAX_SERIES;
    let none: u64 = fs.iter().map(|f| f.latency_none.len()).sum();
    let styles = [
        Key::Line {
            label: "warm start".into(),
            color: charts::PALETTE[9],
            dashed: false,
        },
        Key::Line {
            label: "cold start".into(),
            color: charts::PALETTE[9],
            dashed: true,
        },
    ];
    let svg = per_function_cdf(
        "Latency CDF per function, warm and cold starts",
        "latency from the intended send instant (ms)",
        &fs,
        merged,
        1000.0,
        &|f| vec![(&f.latency_warm, false), (&f.latency_cold, true)],
        &styles,
    )?;
    let mut caption = "Fraction of the answered invocations of each function whose latency \
                       (answer − intended send instant) is at most x; solid: warm starts, \
                       dashed: cold starts (the activation record has an initTime)."
        .to_string();
    if none > 0 {
        caption.push_str(&format!(
            " {none} answers without an activation record (errors, throttling) are left out."
        ));
    }
    if merged {
        caption.push_str(&format!(
            " The {MAX_SERIES} functions with the most invocations are drawn apart, the \
             other {} together.",
            d.functions.len() - MAX_SERIES
        ));
    }
    Ok(Figure {
        id: "latency-cdf",
        title: "Latency CDF per function".into(),
        caption,
        body: match svg {
            Some(s) => Body::Svg(s),
            None if none > 0 => Body::Note(format!(
                "No answer carried an activation record ({none} answers without one): no \
                 warm or cold latency to plot."
            )),
            None => Body::Note("No invocation was answered: no latency to plot.".into()),
        },
    })
}

/// Most bins of the percentile-over-time charts.
const MAX_PERCENTILE_BINS: usize = 200;
/// Most bins of the rate chart and of the cold-start timeline.
const MAX_COUNT_BINS: usize = 100;

/// The timeline's bins regrouped `cw` wide (see [`coarse_width`]): the index of the
/// wide bin of each fine one.
struct Regrouped {
    /// Width of a wide bin (ns).
    width_ns: u64,
    /// Fine bins per wide bin.
    per: usize,
    /// Wide bins.
    len: usize,
}

impl Regrouped {
    fn new(d: &PlotData, max: usize) -> Regrouped {
        let w = d.timeline.width_ns();
        let n = d.timeline.bins().len();
        let width_ns = coarse_width(w, n, max);
        // A multiple of `w`, and at most `n` of them.
        let per = usize::try_from(width_ns / w).unwrap_or(usize::MAX).max(1);
        Regrouped {
            width_ns,
            per,
            len: n.div_ceil(per),
        }
    }

    /// The centre of wide bin `i` in s.
    fn centre_s(&self, i: usize) -> f64 {
        (i as f64 + 0.5) * self.width_ns as f64 / 1e9
    }
}

/// The time axis of the over-time charts: to the end of the last bin with data (the
/// load's recorded end may be much later, e.g. a resumed generation).
fn time_axis(g: &Regrouped) -> Axis {
    let end = g.len as f64 * g.width_ns as f64 / 1e9;
    Axis::zero_to(end, "time since the load's start (s)")
}

/// p50, p99 and max per bin of the histogram `pick` chooses.
fn over_time(
    d: &PlotData,
    title: &str,
    what: &str,
    pick: fn(&Bin) -> Option<&Histogram<u64>>,
) -> Result<(Option<String>, u64)> {
    let g = Regrouped::new(d, MAX_PERCENTILE_BINS);
    let mut lines: [Vec<(f64, f64)>; 3] = Default::default();
    for (i, group) in d.timeline.bins().chunks(g.per).enumerate() {
        let mut h = histogram();
        for b in group {
            if let Some(x) = pick(b) {
                // Cannot fail: both auto-resize with the same precision.
                let _ = h.add(x);
            }
        }
        if h.is_empty() {
            continue;
        }
        let t = g.centre_s(i);
        for (line, q) in lines.iter_mut().zip([0.5, 0.99, 1.0]) {
            line.push((t, (quantile(&h, q) as f64 / 1000.0).max(1e-3)));
        }
    }
    if lines[0].is_empty() {
        return Ok((None, g.width_ns));
    }
    let lo = lines[0].iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = lines[2].iter().map(|p| p.1).fold(0.0, f64::max);
    let names = ["p50", "p99", "max"];
    let colors = [PALETTE[0], PALETTE[1], PALETTE[2]];
    let chart = LineChart {
        title: title.to_string(),
        x: time_axis(&g),
        y: Axis::auto(lo, hi, 100.0, &format!("{what} (ms)")),
        series: lines
            .into_iter()
            .zip(colors)
            .map(|(points, color)| Series {
                color,
                dashed: false,
                points,
            })
            .collect(),
        legend: names
            .iter()
            .zip(colors)
            .map(|(n, color)| Key::Line {
                label: format!("{n} per {} bin", duration(g.width_ns)),
                color,
                dashed: false,
            })
            .collect(),
        markers: true,
    };
    Ok((Some(charts::line_chart(&chart)?), g.width_ns))
}

fn latency_time(d: &PlotData) -> Result<Figure> {
    let (svg, w) = over_time(d, "Latency over time", "latency", |b| b.latency.as_ref())?;
    Ok(Figure {
        id: "latency-time",
        title: "Latency over time".into(),
        caption: format!(
            "Latency (answer − intended send instant) of the invocations intended in each \
             {} bin: median, 99th percentile and maximum.",
            duration(w)
        ),
        body: svg.map_or_else(
            || Body::Note("No invocation was answered: no latency to plot.".into()),
            Body::Svg,
        ),
    })
}

fn lag_time(d: &PlotData) -> Result<Figure> {
    let (svg, w) = over_time(d, "Send lag over time", "send lag", |b| b.lag.as_ref())?;
    Ok(Figure {
        id: "lag-time",
        title: "Send lag over time".into(),
        caption: format!(
            "How late requests left the loader (sent − intended instant) for the \
             invocations intended in each {} bin: median, 99th percentile and maximum.",
            duration(w)
        ),
        body: svg.map_or_else(
            || Body::Note("No request was sent: no send lag to plot.".into()),
            Body::Svg,
        ),
    })
}

fn rate_time(d: &PlotData, span_ns: Option<u64>) -> Result<Figure> {
    let g = Regrouped::new(d, MAX_COUNT_BINS);
    let w = g.width_ns;
    let body = if d.timeline.bins().is_empty() {
        Body::Note("The load has no invocation: no rate to plot.".into())
    } else {
        let mut lines: [Vec<(f64, f64)>; 3] = Default::default();
        for (i, group) in d.timeline.bins().chunks(g.per).enumerate() {
            let start = i as u64 * w;
            // The bin holding the load's end covers only the part before it.
            let width = match span_ns {
                Some(s) if s > start && s - start < w => (s - start).max(w / 10),
                _ => w,
            } as f64
                / 1e9;
            let t = g.centre_s(i);
            let counts = group.iter().fold([0u64; 3], |[a, b, c], x| {
                [a + x.intended, b + x.sent, c + x.answered]
            });
            for (line, n) in lines.iter_mut().zip(counts) {
                line.push((t, n as f64 / width));
            }
        }
        let hi = lines.iter().flatten().map(|p| p.1).fold(0.0f64, f64::max);
        let styles = [
            ("intended (the schedule)", PALETTE[9], false),
            ("sent", PALETTE[0], false),
            ("answered", PALETTE[1], false),
        ];
        let chart = LineChart {
            title: "Achieved rate over time".into(),
            x: time_axis(&g),
            y: Axis::zero_to(hi, "invocations per second"),
            series: lines
                .into_iter()
                .zip(styles)
                .map(|(points, (_, color, dashed))| Series {
                    color,
                    dashed,
                    points,
                })
                .collect(),
            legend: styles
                .iter()
                .map(|&(label, color, dashed)| Key::Line {
                    label: label.into(),
                    color,
                    dashed,
                })
                .collect(),
            markers: true,
        };
        Body::Svg(charts::line_chart(&chart)?)
    };
    Ok(Figure {
        id: "rate-time",
        title: "Achieved rate over time".into(),
        caption: format!(
            "Invocations per second in each {} bin: intended by the schedule, sent by the \
             loader, and answered (any outcome).",
            duration(w)
        ),
        body,
    })
}

/// Why there are no monitor readings, from the `monitor_missing` counts.
fn no_readings(d: &PlotData, what: &str) -> String {
    let mut s = format!("No {what} readings from the monitor in this load");
    if d.missing.is_empty() {
        s.push('.');
    } else {
        let mut reasons: Vec<(&String, &u64)> = d.missing.iter().collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(*r.1));
        let list: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|(r, n)| format!("“{r}” ({n})"))
            .collect();
        s.push_str(&format!(": {}.", list.join(", ")));
    }
    s
}

fn monitor_cdf(d: &PlotData, memory: bool) -> Result<Figure> {
    let (id, title, x_desc, div, what) = if memory {
        (
            "memory-cdf",
            "Peak memory per invocation, per function",
            "peak memory of the container during the activation (MiB)",
            1024.0,
            "memory",
        )
    } else {
        (
            "cpu-cdf",
            "CPU time per invocation, per function",
            "CPU time of the container during the activation (ms)",
            1000.0,
            "CPU",
        )
    };
    let pick = move |f: &FunctionData| -> u64 {
        if memory {
            f.mem_kib.len()
        } else {
            f.cpu_us.len()
        }
    };
    let fs = d.top_functions(MAX_SERIES, pick);
    let merged = d.functions.len() > MAX_SERIES;
    let n: u64 = fs.iter().map(pick).sum();
    let svg = if n == 0 {
        None
    } else {
        per_function_cdf(
            title,
            x_desc,
            &fs,
            merged,
            div,
            &|f| vec![(if memory { &f.mem_kib } else { &f.cpu_us }, false)],
            &[],
        )?
    };
    Ok(Figure {
        id,
        title: title.into(),
        caption: format!(
            "Fraction of each function's invocations measured by the monitor ({n} of {}) \
             whose {} is at most x.",
            d.rows,
            if memory {
                "peak memory"
            } else {
                "CPU time (user + system)"
            }
        ),
        body: svg.map_or_else(|| Body::Note(no_readings(d, what)), Body::Svg),
    })
}

fn cold_starts(d: &PlotData) -> Result<Figure> {
    let total: u64 = d.functions.iter().map(|f| f.cold).sum();
    let g = Regrouped::new(d, MAX_COUNT_BINS);
    let w = g.width_ns;
    let caption = format!(
        "When cold starts happened: one lane per function, a circle per {} bin with cold \
         starts (by intended instant), its area proportional to their count; {total} cold \
         starts in all.",
        duration(w)
    );
    if total == 0 {
        return Ok(Figure {
            id: "cold-starts",
            title: "Cold-start timeline".into(),
            caption,
            body: Body::Note(
                "No cold start in this load (no activation record carries an initTime).".into(),
            ),
        });
    }
    let mut with: Vec<(usize, &FunctionData)> = d
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.cold > 0)
        .collect();
    with.sort_by_key(|(_, f)| std::cmp::Reverse(f.cold));
    let mut lane_of = vec![usize::MAX; d.functions.len()];
    let mut lanes = Vec::new();
    for (rank, (fi, f)) in with.iter().enumerate() {
        let lane = rank.min(MAX_LANES);
        lane_of[*fi] = lane;
        if rank < MAX_LANES {
            lanes.push(f.name.clone());
        }
    }
    if with.len() > MAX_LANES {
        lanes.push(format!("other functions ({})", with.len() - MAX_LANES));
    }
    let mut points = Vec::new();
    for (i, group) in d.timeline.bins().chunks(g.per).enumerate() {
        let mut per_lane = vec![0u64; lanes.len()];
        for (&fi, &n) in group.iter().flat_map(|b| &b.cold) {
            if let Some(c) = lane_of.get(fi).and_then(|&l| per_lane.get_mut(l)) {
                *c += n;
            }
        }
        for (lane, &n) in per_lane.iter().enumerate() {
            if n > 0 {
                points.push((g.centre_s(i), lane, n));
            }
        }
    }
    let chart = LaneChart {
        title: "Cold-start timeline".into(),
        x: time_axis(&g),
        lanes,
        points,
        color: PALETTE[2],
        what: "cold starts".into(),
    };
    Ok(Figure {
        id: "cold-starts",
        title: "Cold-start timeline".into(),
        caption,
        body: Body::Svg(charts::lane_chart(&chart)?),
    })
}

/// Every figure of the report, in page order. `span_ns` is the load's length when it
/// ended (the rate of the bin holding the end counts only the time before it).
pub(super) fn figures(d: &PlotData, span_ns: Option<u64>) -> Result<Vec<Figure>> {
    Ok(vec![
        latency_cdf(d)?,
        latency_time(d)?,
        lag_time(d)?,
        rate_time(d, span_ns)?,
        monitor_cdf(d, false)?,
        monitor_cdf(d, true)?,
        cold_starts(d)?,
    ])
}
