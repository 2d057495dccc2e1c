//! The report's charts, drawn by plotters into SVG strings: line charts (linear or
//! logarithmic axes, solid or dashed series, markers when there are few points) and the
//! cold-start lane chart; each with a title, described axes with units, and a legend
//! drawn in a column of its own on the right (so it never hides a curve).
use std::ops::Range;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Size of every chart (px); the lane chart grows with its lanes.
pub(super) const WIDTH: u32 = 960;
pub(super) const HEIGHT: u32 = 400;
/// Width of the legend column.
const LEGEND_W: u32 = 240;
/// Series drawn with point markers too when they have at most this many points (a
/// single point draws no line).
const MARKERS_UP_TO: usize = 60;
/// Longest label in a legend or on the lane axis (chars).
const LABEL_CHARS: usize = 28;
const FONT: &str = "sans-serif";

/// Colours of the series (Tableau 10); the last, grey, is for "other functions".
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0x79, 0x70, 0x6e),
];

/// How an axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scale {
    Linear,
    Log,
}

/// One axis: its range, scale and description (with the unit).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Axis {
    pub(super) range: Range<f64>,
    pub(super) scale: Scale,
    pub(super) desc: String,
}

impl Axis {
    /// A linear axis from 0 to a little above `max`.
    pub(super) fn zero_to(max: f64, desc: &str) -> Axis {
        let hi = if max > 0.0 && max.is_finite() {
            max * 1.05
        } else {
            1.0
        };
        Axis {
            range: 0.0..hi,
            scale: Scale::Linear,
            desc: desc.to_string(),
        }
    }

    /// An axis holding the positive values `lo..=hi`: logarithmic (whole decades) when
    /// they span at least `log_ratio`, else linear from 0.
    pub(super) fn auto(lo: f64, hi: f64, log_ratio: f64, desc: &str) -> Axis {
        let lo = if lo.is_finite() && lo > 0.0 { lo } else { 1e-3 };
        let hi = if hi.is_finite() && hi > lo { hi } else { lo };
        if hi / lo >= log_ratio {
            let a = 10f64.powf(lo.log10().floor());
            let mut b = 10f64.powf(hi.log10().ceil());
            if b <= a {
                b = a * 10.0;
            }
            Axis {
                range: a..b,
                scale: Scale::Log,
                desc: desc.to_string(),
            }
        } else {
            Axis::zero_to(hi, desc)
        }
    }

    /// An axis holding the positive values `lo..=hi` closely: logarithmic (whole
    /// decades) when they span at least `log_ratio`; else linear, from 0 when `lo` is
    /// small beside `hi`, from a little below `lo` otherwise (a narrow distribution
    /// keeps its shape instead of standing as a wall at the right edge).
    pub(super) fn around(lo: f64, hi: f64, log_ratio: f64, desc: &str) -> Axis {
        let a = Axis::auto(lo, hi, log_ratio, desc);
        if a.scale == Scale::Log || !(lo.is_finite() && hi.is_finite()) || lo <= 0.25 * hi {
            return a;
        }
        let pad = if hi > lo { (hi - lo) * 0.05 } else { hi * 0.1 };
        Axis {
            range: (lo - pad).max(0.0)..hi + pad,
            ..a
        }
    }

    /// The fraction axis of a CDF.
    pub(super) fn fraction(desc: &str) -> Axis {
        Axis {
            range: 0.0..1.0,
            scale: Scale::Linear,
            desc: desc.to_string(),
        }
    }
}

/// A line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Series {
    pub(super) color: RGBColor,
    pub(super) dashed: bool,
    pub(super) points: Vec<(f64, f64)>,
}

/// An entry of a legend.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Key {
    /// A line sample (solid or dashed) and its label.
    Line {
        label: String,
        color: RGBColor,
        dashed: bool,
    },
    /// A filled circle of `radius` px and its label.
    Circle {
        label: String,
        color: RGBColor,
        radius: i32,
    },
    /// A line of text alone.
    Note(String),
}

/// A line chart.
#[derive(Clone, Debug)]
pub(super) struct LineChart {
    pub(super) title: String,
    pub(super) x: Axis,
    pub(super) y: Axis,
    pub(super) series: Vec<Series>,
    pub(super) legend: Vec<Key>,
    /// Draw point markers on series with few points (not on step curves).
    pub(super) markers: bool,
}

/// `s` cut to [`LABEL_CHARS`] chars (with an ellipsis).
pub(super) fn short(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(LABEL_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// A tick label: 3 significant digits, no trailing zeros.
pub(super) fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    let a = v.abs();
    if a >= 1000.0 {
        return format!("{v:.0}");
    }
    let decimals = (2 - a.log10().floor() as i32).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn mesh_color() -> ShapeStyle {
    RGBColor(0xe4, 0xe4, 0xe4).stroke_width(1)
}

/// Draws `c`'s axes and series on `area` with the coordinates `x` and `y`.
fn draw_lines<X, Y>(area: &Area<'_>, x: X, y: Y, c: &LineChart) -> Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(area)
        .caption(&c.title, (FONT, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y)
        .context("laying out the chart")?;
    chart
        .configure_mesh()
        .x_desc(c.x.desc.as_str())
        .y_desc(c.y.desc.as_str())
        .x_label_formatter(&|v| num(*v))
        .y_label_formatter(&|v| num(*v))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .bold_line_style(mesh_color())
        .light_line_style(RGBColor(0xf4, 0xf4, 0xf4).stroke_width(1))
        .draw()
        .context("drawing the axes")?;
    for s in &c.series {
        let style = s.color.stroke_width(2);
        let pts = s.points.iter().copied();
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 7, 5, style))
                .context("drawing a series")?;
        } else {
            chart
                .draw_series(LineSeries::new(pts, style))
                .context("drawing a series")?;
        }
        if c.markers && s.points.len() <= MARKERS_UP_TO {
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, 3, s.color.filled())),
                )
                .context("drawing markers")?;
        }
    }
    Ok(())
}

/// Draws a legend in its column.
fn draw_legend(area: &Area<'_>, keys: &[Key]) -> Result<()> {
    let font = (FONT, 14).into_font();
    let mut y = 56;
    for k in keys {
        match k {
            Key::Line {
                label,
                color,
                dashed,
            } => {
                let style = color.stroke_width(3);
                if *dashed {
                    for (a, b) in [(4, 12), (17, 25), (30, 34)] {
                        area.draw(&PathElement::new(vec![(a, y), (b, y)], style))?;
                    }
                } else {
                    area.draw(&PathElement::new(vec![(4, y), (34, y)], style))?;
                }
                area.draw(&Text::new(short(label), (42, y - 8), font.clone()))?;
            }
            Key::Circle {
                label,
                color,
                radius,
            } => {
                area.draw(&Circle::new((19, y), *radius, color.filled()))?;
                area.draw(&Text::new(short(label), (42, y - 8), font.clone()))?;
            }
            Key::Note(text) => {
                area.draw(&Text::new(text.clone(), (4, y - 8), font.clone()))?;
            }
        }
        y += 24;
    }
    Ok(())
}

/// The SVG of a line chart.
pub(super) fn line_chart(c: &LineChart) -> Result<String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_W);
        let (x, y) = (c.x.range.clone(), c.y.range.clone());
        match (c.x.scale, c.y.scale) {
            (Scale::Linear, Scale::Linear) => draw_lines(&plot, x, y, c),
            (Scale::Log, Scale::Linear) => draw_lines(&plot, x.log_scale(), y, c),
            (Scale::Linear, Scale::Log) => draw_lines(&plot, x, y.log_scale(), c),
            (Scale::Log, Scale::Log) => draw_lines(&plot, x.log_scale(), y.log_scale(), c),
        }
        .with_context(|| format!("drawing the chart {:?}", c.title))?;
        draw_legend(&legend, &c.legend)
            .with_context(|| format!("drawing the legend of {:?}", c.title))?;
        root.present()?;
    }
    Ok(buf)
}

/// A chart of events along time, one lane per label: a circle per (lane, time bin)
/// with events, its area proportional to their count.
#[derive(Clone, Debug)]
pub(super) struct LaneChart {
    pub(super) title: String,
    pub(super) x: Axis,
    /// Lane labels, top first.
    pub(super) lanes: Vec<String>,
    /// (x, lane index, count).
    pub(super) points: Vec<(f64, usize, u64)>,
    pub(super) color: RGBColor,
    /// What a count is, for the legend ("cold starts").
    pub(super) what: String,
}

/// Circle radius (px) of `count` where the largest count is `max`.
pub(super) fn radius(count: u64, max: u64) -> i32 {
    let f = (count as f64 / max.max(1) as f64).sqrt();
    (2.0 + 8.0 * f).round() as i32
}

/// The SVG of a lane chart.
pub(super) fn lane_chart(c: &LaneChart) -> Result<String> {
    let n = c.lanes.len();
    let height = (140 + 28 * n as u32).max(260);
    let label_w = c
        .lanes
        .iter()
        .map(|l| short(l).chars().count())
        .max()
        .unwrap_or(0) as u32
        * 8
        + 24;
    let max = c.points.iter().map(|p| p.2).max().unwrap_or(1);
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_W);
        let lanes = n as i32;
        // Lane i (top first) at y = n - 1 - i; one empty lane of margin each side.
        let y_of = |i: usize| lanes - 1 - i as i32;
        let mut chart = ChartBuilder::on(&plot)
            .caption(&c.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(label_w.min(WIDTH / 3))
            .build_cartesian_2d(c.x.range.clone(), -1..lanes)
            .context("laying out the lane chart")?;
        let label = |v: &i32| {
            let i = lanes - 1 - *v;
            usize::try_from(i)
                .ok()
                .and_then(|i| c.lanes.get(i))
                .map(|s| short(s))
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_desc(c.x.desc.as_str())
            .y_desc("function")
            .x_label_formatter(&|v| num(*v))
            .y_label_formatter(&label)
            .y_labels(n + 2)
            .axis_desc_style((FONT, 15))
            .label_style((FONT, 13))
            .bold_line_style(mesh_color())
            .light_line_style(WHITE.stroke_width(0))
            .draw()
            .context("drawing the lane chart's axes")?;
        chart
            .draw_series(c.points.iter().map(|&(x, lane, count)| {
                Circle::new(
                    (x, y_of(lane)),
                    radius(count, max),
                    c.color.mix(0.75).filled(),
                )
            }))
            .context("drawing the lane chart's points")?;
        let mut keys = vec![Key::Note(format!("{} per time bin:", c.what))];
        let mut sizes = vec![1, max.div_ceil(2), max];
        sizes.dedup();
        for s in sizes {
            keys.push(Key::Circle {
                label: s.to_string(),
                color: c.color,
                radius: radius(s, max),
            });
        }
        draw_legend(&legend, &keys).context("drawing the lane chart's legend")?;
        root.present()?;
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(1.0), "1");
        assert_eq!(num(0.001), "0.001");
        assert_eq!(num(0.12345), "0.123");
        assert_eq!(num(12.5), "12.5");
        assert_eq!(num(250.0), "250");
        assert_eq!(num(123456.7), "123457");
        assert_eq!(num(-2.5), "-2.5");
    }

    #[test]
    fn axes() {
        let a = Axis::auto(0.5, 2000.0, 20.0, "ms");
        assert_eq!(a.scale, Scale::Log);
        assert_eq!(a.range, 0.1..10000.0);
        let b = Axis::auto(50.0, 60.0, 20.0, "MiB");
        assert_eq!(b.scale, Scale::Linear);
        assert_eq!(b.range, 0.0..63.0);
        let d = Axis::around(50.0, 60.0, 20.0, "MiB");
        assert_eq!(d.scale, Scale::Linear);
        assert_eq!(d.range, 49.5..60.5);
        assert_eq!(Axis::around(2.0, 2.0, 20.0, "ms").range, 1.8..2.2);
        assert_eq!(Axis::around(1.0, 10.0, 20.0, "ms").range, 0.0..10.5);
        assert_eq!(Axis::around(1.0, 100.0, 20.0, "ms").scale, Scale::Log);
        // Exactly a power of ten: still a decade wide.
        let c = Axis::auto(10.0, 10.0, 1.0, "ms");
        assert_eq!(c.range, 10.0..100.0);
        assert_eq!(Axis::zero_to(0.0, "x").range, 0.0..1.0);
    }

    #[test]
    fn charts_are_svg_with_their_texts_and_lines() {
        let c = LineChart {
            title: "Latency <&>".into(),
            x: Axis::auto(0.1, 100.0, 20.0, "latency (ms)"),
            y: Axis::fraction("fraction"),
            series: vec![
                Series {
                    color: PALETTE[0],
                    dashed: false,
                    points: vec![(0.1, 0.1), (1.0, 0.5), (100.0, 1.0)],
                },
                Series {
                    color: PALETTE[1],
                    dashed: true,
                    points: vec![(0.5, 0.2), (50.0, 1.0)],
                },
            ],
            legend: vec![Key::Line {
                label: "f\"<x>".into(),
                color: PALETTE[0],
                dashed: false,
            }],
            markers: true,
        };
        let svg = line_chart(&c).unwrap();
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("Latency &lt;&amp;&gt;"));
        assert!(svg.contains("f&quot;&lt;x&gt;"));
        assert!(svg.contains("latency (ms)"));
        assert!(svg.contains("<polyline"));
        assert!(svg.contains("<circle"));
        let lanes = LaneChart {
            title: "Cold starts".into(),
            x: Axis::zero_to(10.0, "time (s)"),
            lanes: vec!["a".into(), "b".into()],
            points: vec![(1.0, 0, 3), (2.0, 1, 1)],
            color: PALETTE[2],
            what: "cold starts".into(),
        };
        let svg = lane_chart(&lanes).unwrap();
        assert_eq!(svg.matches("<circle").count(), 2 + 3);
        assert!(
            svg.contains(">\na\n</text>") || svg.contains("a\n</text>"),
            "{svg}"
        );
    }

    #[test]
    fn radii_grow_with_the_count() {
        assert_eq!(radius(1, 1), 10);
        assert_eq!(radius(0, 0), 2);
        assert!(radius(1, 100) < radius(50, 100));
        assert!(radius(50, 100) < radius(100, 100));
    }
}
