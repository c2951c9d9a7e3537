//! Distributions as cumulative distribution functions (CDF), drawn with
//! plotters as SVG: `failover --plot cdf.svg`.

use plotters::prelude::*;
use std::path::Path;

/// One curve: its legend, its samples (any order) and its colour.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// The samples.
    pub values: Vec<f64>,
    /// Line colour.
    pub colour: RGBColor,
}

/// The empirical CDF of `values`: each distinct sample with the fraction of
/// samples at or below it, as a step line starting at (min, 0).
#[must_use]
pub fn cdf_points(values: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let Some(&first) = sorted.first() else {
        return Vec::new();
    };
    let n = sorted.len() as f64;
    let mut points = vec![(first, 0.0)];
    for (i, &value) in sorted.iter().enumerate() {
        let below = i as f64 / n;
        let at_or_below = (i + 1) as f64 / n;
        points.push((value, below));
        points.push((value, at_or_below));
    }
    points
}

/// A plot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {reason}")]
pub struct PlotError {
    path: String,
    reason: String,
}

/// Writes the CDFs of `series` on one chart to `path` as SVG, with `x_label`
/// under the horizontal axis.
pub fn write_cdf_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[Series],
) -> Result<(), PlotError> {
    let error = |reason: String| PlotError {
        path: path.display().to_string(),
        reason,
    };
    let all = series.iter().flat_map(|s| s.values.iter().copied());
    let (low, high) = all
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if low > high {
        return Err(error("no samples to plot".to_owned()));
    }
    let pad = ((high - low) * 0.03).max(1.0);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((low - pad)..(high + pad), 0.0..1.0)
        .map_err(|e| error(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("fraction of trials at or below")
        .draw()
        .map_err(|e| error(e.to_string()))?;
    for s in series {
        let colour = s.colour;
        chart
            .draw_series(LineSeries::new(
                cdf_points(&s.values),
                colour.stroke_width(2),
            ))
            .map_err(|e| error(e.to_string()))?
            .label(format!("{} ({} trials)", s.name, s.values.len()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| error(e.to_string()))?;
    root.present().map_err(|e| error(e.to_string()))
}
