//! The SVG bar chart of the ratios to native (plotters, SVG backend): one group of bars per
//! benchmark, one bar per contender, from 1 (native) to the contender's ratio on a log scale,
//! so a bar going down is faster than native and one going up is slower.

use std::path::Path;

use plotters::prelude::*;

use super::report::Document;

/// Draws the chart of `doc` into `path`.
pub fn draw(doc: &Document, path: &Path) -> Result<(), String> {
    let runners: Vec<&str> = doc
        .runners
        .iter()
        .filter(|r| r.status == "ran" && r.name != "native")
        .map(|r| r.name.as_str())
        .collect();
    let benches: Vec<(&str, &str)> = doc.benchmarks.iter().map(|b| (b.name, b.title)).collect();
    // (bench index, runner index, ratio)
    let mut bars = Vec::new();
    for (bi, (name, _)) in benches.iter().enumerate() {
        for (ri, runner) in runners.iter().enumerate() {
            if let Some(ratio) = doc
                .results
                .iter()
                .find(|r| r.benchmark == *name && r.runner == *runner)
                .and_then(|r| r.ratio_to_native)
                .filter(|r| r.is_finite() && *r > 0.0)
            {
                bars.push((bi, ri, ratio));
            }
        }
    }
    let lo = bars.iter().map(|b| b.2).fold(1.0f64, f64::min);
    let hi = bars.iter().map(|b| b.2).fold(1.0f64, f64::max);
    // One spare decade above the tallest bar holds the legend.
    let (ymin, ymax) = (decade_below(lo), decade_above(hi) * 10.0);
    let n = benches.len().max(1);
    let width = u32::try_from(160 + 56 * n).unwrap_or(4000).max(900);
    draw_inner(
        path,
        (width, 620),
        &benches,
        &runners,
        &bars,
        (ymin, ymax),
        doc,
    )
    .map_err(|e| format!("chart {}: {e}", path.display()))
}

fn decade_below(v: f64) -> f64 {
    10f64.powf((v * 0.8).log10().floor()).min(0.1)
}

fn decade_above(v: f64) -> f64 {
    10f64.powf((v * 1.25).log10().ceil()).max(10.0)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw_inner(
    path: &Path,
    size: (u32, u32),
    benches: &[(&str, &str)],
    runners: &[&str],
    bars: &[(usize, usize, f64)],
    (ymin, ymax): (f64, f64),
    doc: &Document,
) -> DrawResult {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let n = benches.len().max(1);
    let caption = format!(
        "pvm bench: median time relative to native (log scale, no bar = failed; {} mode, {} rounds, CPUs {})",
        doc.mode,
        doc.rounds,
        if doc.pinned_cpus.is_empty() {
            "unpinned".to_string()
        } else {
            format!("{:?}", doc.pinned_cpus)
        }
    );
    #[allow(clippy::cast_precision_loss)] // a handful of benchmarks
    let x_range = -0.5..(n as f64 - 0.5);
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(100)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, (ymin..ymax).log_scale())?;
    let names: Vec<String> = benches
        .iter()
        .map(|(name, _)| (*name).to_string())
        .collect();
    let label = move |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked >= 0
            let i = i as usize;
            names.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&label)
        .x_label_style(
            ("sans-serif", 13)
                .into_font()
                .transform(FontTransform::Rotate90),
        )
        .y_desc("time / native time")
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    #[allow(clippy::cast_precision_loss)] // small counts
    let bar_w = 0.8 / runners.len().max(1) as f64;
    for (ri, runner) in runners.iter().enumerate() {
        let color = Palette99::pick(ri).to_rgba();
        #[allow(clippy::cast_precision_loss)] // small indices
        let rects = bars
            .iter()
            .filter(|b| b.1 == ri)
            .map(move |&(bi, _, ratio)| {
                let x0 = bi as f64 - 0.4 + ri as f64 * bar_w;
                Rectangle::new([(x0, 1.0), (x0 + bar_w * 0.9, ratio)], color.filled())
            });
        chart
            .draw_series(rects)?
            .label(*runner)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    #[allow(clippy::cast_precision_loss)] // small counts
    let right = n as f64 - 0.5;
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.0), (right, 1.0)],
            BLACK.stroke_width(1),
        ))?
        .label("native = 1")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
