//! Sweep plots with plotters: a line of time to failure over one constant,
//! a heatmap of outcome and time to failure over two. The format follows
//! the file extension (`.svg` or `.png`). Text is set in DejaVu Sans,
//! bundled (harness/assets/fonts/, inside the package) and registered with plotters' `ab_glyph`
//! backend, so a plot reads the same on a machine without fonts: a title
//! (the spec and profile), axis labels with the constants' names and units,
//! tick numbers, a legend of outcomes and a colour bar for time to failure.

use super::{Axis, Kind, Point, SweepReport};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

const SURVIVED: RGBColor = RGBColor(46, 160, 67);
const WIDTH: u32 = 800;
const HEIGHT: u32 = 600;
/// Width of the heatmap's colour bar and legend column.
const KEY_WIDTH: u32 = 170;
/// Bands in the colour bar's gradient.
pub const COLOUR_BAR_BANDS: u32 = 40;
const FONT: &str = "sans-serif";
const DEJAVU_SANS: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// The failure outcomes in legend order; anything else is drawn as the last.
const FAILURES: [&str; 3] = ["disconnected", "dead_session", "blocked"];

/// Registers the bundled font once per process (plotters keeps a global
/// table of fonts by family name).
fn font_ready() -> Result<(), String> {
    static READY: OnceLock<bool> = OnceLock::new();
    let ok = *READY.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| "the bundled plot font failed to load".to_string())
}

/// Failure colour: the hue names the outcome, darker is earlier within
/// the sweep's own span of failure times.
fn failure_colour(outcome: &str, at: f64, (min_at, max_at): (f64, f64)) -> RGBColor {
    let late = if max_at > min_at {
        ((at - min_at) / (max_at - min_at)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    let shade = |c: u8| (f64::from(c) * (0.35 + 0.65 * late)) as u8;
    match outcome {
        "disconnected" => RGBColor(shade(230), shade(60), shade(40)),
        "dead_session" => RGBColor(shade(150), shade(40), shade(200)),
        _ => RGBColor(shade(40), shade(90), shade(220)),
    }
}

fn colour(p: &Point, span: (f64, f64)) -> RGBColor {
    match p.at {
        Some(at) => failure_colour(&p.outcome, at, span),
        None => SURVIVED,
    }
}

/// The legend's name for a failure outcome (what `failure_colour` draws it as).
fn failure_class(outcome: &str) -> &'static str {
    match outcome {
        "disconnected" => "disconnected",
        "dead_session" => "dead_session",
        _ => "blocked",
    }
}

/// An axis value in plot units: seconds for durations, the count itself.
fn plot_value(axis: &Axis, raw: u64) -> f64 {
    match axis.kind {
        Kind::Duration => raw as f64 / 1e6,
        Kind::Count => raw as f64,
    }
}

fn axis_label(axis: &Axis) -> String {
    match axis.kind {
        Kind::Duration => format!("{} (s)", axis.name),
        Kind::Count => axis.name.clone(),
    }
}

/// A tick number without trailing zeros: 15, 2.5, 0.125.
fn tick(v: &f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The axis's range in plot units, widened by half a step each side so
/// the end points sit inside, as heatmap cells or dots.
fn axis_range(axis: &Axis) -> std::ops::Range<f64> {
    let half = plot_value(axis, axis.step) / 2.0;
    plot_value(axis, axis.lo) - half..plot_value(axis, axis.hi) + half
}

/// The axis value of grid point `index` along axis `which` (row-major).
fn point_value(report: &SweepReport, index: u64, which: usize) -> f64 {
    let after: u64 = report.axes[which + 1..].iter().map(Axis::len).product();
    let i = (index / after) % report.axes[which].len();
    plot_value(&report.axes[which], report.axes[which].value(i))
}

pub fn plot(report: &SweepReport, path: &Path) -> Result<(), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !matches!(ext.as_str(), "svg" | "png") {
        return Err(format!("{}: plot must end in .svg or .png", path.display()));
    }
    if report.axes.is_empty() || report.axes.len() > 2 {
        return Err("a plot takes a sweep over one or two constants".into());
    }
    font_ready()?;
    if ext == "svg" {
        draw(
            report,
            SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area(),
        )
    } else {
        draw(
            report,
            BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area(),
        )
    }
}

fn draw<DB: DrawingBackend>(
    report: &SweepReport,
    area: DrawingArea<DB, Shift>,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(e)?;
    let span = report
        .points
        .iter()
        .filter_map(|p| p.at)
        .fold((f64::MAX, 0.0f64), |(lo, hi), a| (lo.min(a), hi.max(a)));
    let (min_at, max_at) = if span.0 > span.1 { (0.0, 0.0) } else { span };
    let title = format!("{} ({})", report.spec, report.profile);
    let area = area
        .titled(&title, (FONT, 20))
        .map_err(e)?
        .margin(5, 10, 10, 10);
    let failures: Vec<&str> = FAILURES
        .into_iter()
        .filter(|f| {
            report
                .points
                .iter()
                .any(|p| p.at.is_some() && failure_class(&p.outcome) == *f)
        })
        .collect();
    let any_survived = report.points.iter().any(|p| p.at.is_none());
    match report.axes.len() {
        1 => {
            let axis = &report.axes[0];
            // The y range is the failures' span, padded; survivors sit on
            // the top edge since they never failed.
            let pad = ((max_at - min_at) * 0.1).max(1.0);
            let (bottom, top) = ((min_at - pad).max(0.0), max_at + pad);
            let mut chart = ChartBuilder::on(&area)
                .x_label_area_size(45)
                .y_label_area_size(65)
                .build_cartesian_2d(axis_range(axis), bottom..top)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(axis_label(axis))
                .y_desc("time to failure (s)")
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .axis_desc_style((FONT, 16))
                .label_style((FONT, 13))
                .draw()
                .map_err(e)?;
            let xy = |p: &Point| (point_value(report, p.index, 0), p.at.unwrap_or(top));
            chart
                .draw_series(LineSeries::new(
                    report.points.iter().map(xy),
                    BLACK.stroke_width(1),
                ))
                .map_err(e)?;
            chart
                .draw_series(
                    report
                        .points
                        .iter()
                        .map(|p| Circle::new(xy(p), 4, colour(p, (min_at, max_at)).filled())),
                )
                .map_err(e)?;
            // Legend entries: empty series that carry only a label and swatch.
            let mut legend: Vec<(String, RGBColor)> = Vec::new();
            if any_survived {
                legend.push(("survived (drawn on the top edge)".into(), SURVIVED));
            }
            for f in &failures {
                legend.push((
                    format!("{f} (darker = earlier)"),
                    failure_colour(f, max_at, (min_at, max_at)),
                ));
            }
            for (label, c) in legend {
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                    .map_err(e)?
                    .label(label)
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        }
        _ => {
            let (rows, cols) = (&report.axes[0], &report.axes[1]);
            let (plot_area, key_area) = area.split_horizontally(area.dim_in_pixel().0 - KEY_WIDTH);
            let mut chart = ChartBuilder::on(&plot_area)
                .x_label_area_size(45)
                .y_label_area_size(65)
                .build_cartesian_2d(axis_range(cols), axis_range(rows))
                .map_err(e)?;
            chart
                .configure_mesh()
                .disable_mesh()
                .x_desc(axis_label(cols))
                .y_desc(axis_label(rows))
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .axis_desc_style((FONT, 16))
                .label_style((FONT, 13))
                .draw()
                .map_err(e)?;
            // First axis up the y axis, second along x.
            let (half_x, half_y) = (
                plot_value(cols, cols.step) / 2.0,
                plot_value(rows, rows.step) / 2.0,
            );
            chart
                .draw_series(report.points.iter().map(|p| {
                    let (y, x) = (
                        point_value(report, p.index, 0),
                        point_value(report, p.index, 1),
                    );
                    Rectangle::new(
                        [(x - half_x, y - half_y), (x + half_x, y + half_y)],
                        colour(p, (min_at, max_at)).filled(),
                    )
                }))
                .map_err(e)?;
            draw_key(&key_area, &failures, any_survived, (min_at, max_at)).map_err(e)?;
        }
    }
    area.present().map_err(e)
}

/// The heatmap's key: a swatch for survivors, then one gradient column per
/// failure outcome present, on a scale of time to failure in seconds.
fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    failures: &[&str],
    any_survived: bool,
    (min_at, max_at): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let text = (FONT, 13).into_font();
    let (swatches, bar) = area.split_vertically(30 + 20 * (failures.len() as u32 + 1));
    let mut y = 10;
    if any_survived {
        swatches.draw(&Rectangle::new([(10, y), (24, y + 14)], SURVIVED.filled()))?;
        swatches.draw(&Text::new("survived", (30, y), text.clone()))?;
        y += 20;
    }
    // Several gradient columns are too narrow for names: numbered instead.
    let column_name = |i: usize| {
        if failures.len() == 1 {
            failures[0].to_string()
        } else {
            (i + 1).to_string()
        }
    };
    for (i, f) in failures.iter().enumerate() {
        let c = failure_colour(f, max_at, (min_at, max_at));
        swatches.draw(&Rectangle::new([(10, y), (24, y + 14)], c.filled()))?;
        let label = if failures.len() == 1 {
            f.to_string()
        } else {
            format!("{} {f}", i + 1)
        };
        swatches.draw(&Text::new(label, (30, y), text.clone()))?;
        y += 20;
    }
    if failures.is_empty() {
        return Ok(());
    }
    let (lo, hi) = if max_at > min_at {
        (min_at, max_at)
    } else {
        (min_at - 1.0, min_at + 1.0)
    };
    let n = failures.len();
    // Integer ranges are inclusive here: `0..n - 1` is n columns.
    let mut chart = ChartBuilder::on(&bar)
        .margin(10)
        .x_label_area_size(25)
        .y_label_area_size(55)
        .build_cartesian_2d((0..n - 1).into_segmented(), lo..hi)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_desc("time to failure (s)")
        .y_label_formatter(&tick)
        .axis_desc_style((FONT, 14))
        .label_style((FONT, 12))
        .draw()?;
    let band = (hi - lo) / f64::from(COLOUR_BAR_BANDS);
    chart.draw_series(failures.iter().enumerate().flat_map(|(i, f)| {
        (0..COLOUR_BAR_BANDS).map(move |b| {
            let from = lo + band * f64::from(b);
            Rectangle::new(
                [
                    (SegmentValue::Exact(i), from),
                    (
                        if i + 1 == n {
                            SegmentValue::Last
                        } else {
                            SegmentValue::Exact(i + 1)
                        },
                        from + band,
                    ),
                ],
                failure_colour(f, from + band / 2.0, (min_at, max_at)).filled(),
            )
        })
    }))?;
    // Column names go under the columns' centres; the mesh's own labels
    // land on segment edges.
    let base = bar.get_base_pixel();
    let under = TextStyle::from(text.clone()).pos(Pos::new(HPos::Center, VPos::Top));
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    for i in 0..n {
        let centre = xs.start + (xs.end - xs.start) * (2 * i as i32 + 1) / (2 * n as i32);
        bar.draw(&Text::new(
            column_name(i),
            (centre - base.0, ys.end - base.1 + 4),
            under.clone(),
        ))?;
    }
    Ok(())
}
