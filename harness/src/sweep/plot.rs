//! Sweep plots with plotters: a line of time to failure over one constant,
//! a heatmap of outcome and time to failure over two. The format follows
//! the file extension (`.svg` or `.png`). Plotters is built without a font
//! backend (no system fonts needed), so the pictures carry no text: the
//! axes' ranges are in the sweep's table/CSV/JSON, and the colours are
//! described in README.md.

use super::SweepReport;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

const SURVIVED: RGBColor = RGBColor(46, 160, 67);
const WIDTH: u32 = 800;
const HEIGHT: u32 = 600;

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

pub fn plot(report: &SweepReport, path: &Path) -> Result<(), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "svg" => draw(
            report,
            SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area(),
        ),
        "png" => draw(
            report,
            BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area(),
        ),
        _ => Err(format!("{}: plot must end in .svg or .png", path.display())),
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
    let area = area.margin(20, 20, 20, 20);
    match report.axes.len() {
        1 => {
            let n = report.axes[0].len() as f64;
            // The y range is the failures' span, padded; survivors sit on
            // the top edge since they never failed.
            let pad = ((max_at - min_at) * 0.1).max(1.0);
            let (bottom, top) = (min_at - pad, max_at + pad);
            let mut chart = ChartBuilder::on(&area)
                .build_cartesian_2d(0f64..n.max(1.0), bottom..top)
                .map_err(e)?;
            let y = |p: &super::Point| p.at.unwrap_or(top);
            let pts: Vec<(f64, f64)> = report
                .points
                .iter()
                .map(|p| (p.index as f64 + 0.5, y(p)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, BLACK.stroke_width(1)))
                .map_err(e)?;
            chart
                .draw_series(report.points.iter().map(|p| {
                    let colour = match p.at {
                        Some(at) => failure_colour(&p.outcome, at, (min_at, max_at)),
                        None => SURVIVED,
                    };
                    Circle::new((p.index as f64 + 0.5, y(p)), 4, colour.filled())
                }))
                .map_err(e)?;
        }
        _ => {
            let (cols, rows) = (report.axes[1].len(), report.axes[0].len());
            let mut chart = ChartBuilder::on(&area)
                .build_cartesian_2d(0u64..cols, 0u64..rows)
                .map_err(e)?;
            // First axis up the y axis, second along x; index is row-major.
            chart
                .draw_series(report.points.iter().map(|p| {
                    let (r, c) = (p.index / cols, p.index % cols);
                    let colour = match p.at {
                        Some(at) => failure_colour(&p.outcome, at, (min_at, max_at)),
                        None => SURVIVED,
                    };
                    Rectangle::new([(c, r), (c + 1, r + 1)], colour.filled())
                }))
                .map_err(e)?;
        }
    }
    area.present().map_err(e)
}
