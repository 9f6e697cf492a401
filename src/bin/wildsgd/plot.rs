//! Line charts for `compare` and `bench`, drawn with plotters as SVG; a `.png` name
//! rasterizes that SVG with resvg (pure Rust; text uses the system's fonts).

use std::path::Path;

use anyhow::{Result, bail};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One named line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Checks that `path` names a chart format we write (`.svg` or `.png`).
pub fn check_chart_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(()),
        other => bail!(wildsgd::Error::config(
            "plot",
            format!(
                "{}: unsupported chart format {:?}; use a .svg or .png file name",
                path.display(),
                other.unwrap_or("")
            )
        )),
    }
}

/// Rasterizes an SVG document to PNG bytes.
fn svg_to_png(svg: &str) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_system_fonts();
    // The chart asks for "sans-serif"; map it to an installed family (DejaVu Sans,
    // Liberation Sans, ...) rather than fontdb's default of Arial.
    let family = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .min_by_key(|name| (!name.contains("Sans"), name.contains("Mono"), name.len()));
    if let Some(family) = family {
        db.set_sans_serif_family(family);
    }
    let tree = usvg::Tree::from_str(svg, &opt)?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| anyhow::anyhow!("empty chart"))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    Ok(pixmap.encode_png()?)
}

/// One scheme's measured points for [`scaling_chart`].
pub struct Scaling {
    pub name: String,
    /// (threads, speedup over sequential, oversubscribed).
    pub points: Vec<(usize, f64, bool)>,
}

/// Draws speedup over sequential against threads the way scaling plots are read:
/// threads on a log2 axis with ticks at 1, 2, 4, 8, …, the ideal linear speedup and
/// sequential (1) as dashed references, one line per scheme, oversubscribed points
/// (threads > cores) drawn hollow. SVG, or PNG for a `.png` name, written atomically.
pub fn scaling_chart(path: &Path, title: &str, series: &[Scaling]) -> Result<()> {
    check_chart_path(path)?;
    let max_t = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .max()
        .unwrap_or(1)
        .max(2);
    let x1 = (max_t as f64).log2().ceil().max(1.0);
    let y1 = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(2f64.powf(x1), f64::max)
        * 1.08;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.15..x1 + 0.15, 0f64..y1)?;
        let ticks = |v: &f64| {
            let r = v.round();
            if (v - r).abs() < 1e-9 && r >= 0.0 {
                format!("{}", 2u64.pow(r as u32))
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc("threads (log2 scale)")
            .y_desc("speedup over sequential")
            .x_labels(4 * x1 as usize + 2)
            .x_label_formatter(&ticks)
            .label_style(("sans-serif", 14))
            .draw()?;
        let dashed = |color: RGBColor, pts: Vec<(f64, f64)>| {
            DashedLineSeries::new(pts, 8, 6, color.stroke_width(2))
        };
        let ideal: Vec<(f64, f64)> = (0..=(16.0 * x1) as u32)
            .map(|k| f64::from(k) / 16.0)
            .map(|x| (x, 2f64.powf(x)))
            .collect();
        chart
            .draw_series(dashed(RGBColor(150, 150, 150), ideal))?
            .label("ideal (linear speedup)")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x, y), (x + 18, y)],
                    RGBColor(150, 150, 150).stroke_width(2),
                )
            });
        chart
            .draw_series(dashed(BLACK, vec![(0.0, 1.0), (x1, 1.0)]))?
            .label("sequential")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        for (k, s) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let pts: Vec<(f64, f64, bool)> = s
                .points
                .iter()
                .filter(|p| p.1.is_finite() && p.0 > 0)
                .map(|&(t, v, o)| ((t as f64).log2(), v, o))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0, p.1)),
                    color.stroke_width(2),
                ))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.iter().map(|&(x, y, over)| {
                let style = if over {
                    color.stroke_width(2)
                } else {
                    color.filled()
                };
                Circle::new((x, y), 4, style)
            }))?;
        }
        if series.iter().any(|s| s.points.iter().any(|p| p.2)) {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label("hollow: oversubscribed (threads > cores)")
                .legend(|(x, y)| Circle::new((x + 9, y), 4, BLACK.stroke_width(2)));
        }
        draw_legend(&mut chart)?;
        root.present()?;
    }
    write_chart(path, svg)
}

/// The legend box, upper left, of either chart.
fn draw_legend<'a, 'b>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
) -> Result<()>
where
    'b: 'a,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
    Ok(())
}

/// Writes an SVG document, or its PNG rendering for a `.png` name, atomically.
fn write_chart(path: &Path, svg: String) -> Result<()> {
    let bytes = if path.extension().is_some_and(|e| e == "png") {
        svg_to_png(&svg)?
    } else {
        svg.into_bytes()
    };
    wildsgd::atomic::write_atomic(path, &bytes).map_err(|source| wildsgd::Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(())
}

/// Draws `series` as lines with markers into `path` (SVG, or PNG for a `.png` name),
/// written atomically.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    check_chart_path(path)?;
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.1.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        bail!("nothing to plot");
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 14))
            .draw()?;
        for (k, s) in series.iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|p| p.1.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(s.name.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        draw_legend(&mut chart)?;
        root.present()?;
    }
    write_chart(path, svg)
}
