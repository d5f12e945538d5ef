//! `--svg`: throughput and p99 latency over the measured window, one line per
//! run (plotters' SVG backend only: no system font libraries).

use std::path::Path;

use plotters::prelude::*;

use super::engine::Measurement;

const COLOURS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

/// Draws `runs` (name, measurement) to `path`.
pub fn draw(path: &Path, runs: &[(String, &Measurement)]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    let (top, bottom) = root.split_vertically(300);
    let seconds = runs.iter().map(|(_, m)| m.timeline.len()).max().unwrap_or(1).max(1) as f64;

    let max_rate = runs.iter().flat_map(|(_, m)| m.timeline.iter().map(|s| s.ok as f64)).fold(1.0, f64::max);
    let mut throughput = ChartBuilder::on(&top)
        .margin(20)
        .caption("throughput (ok calls per second)", ("sans-serif", 16))
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, 0.0..max_rate * 1.1)
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    throughput.configure_mesh().x_desc("second").draw().map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    for (i, (name, m)) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        throughput
            .draw_series(LineSeries::new(
                m.timeline.iter().enumerate().map(|(s, sec)| (s as f64, sec.ok as f64)),
                colour,
            ))
            .map_err(|e| anyhow::anyhow!("drawing: {e}"))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    throughput.configure_series_labels().border_style(BLACK).draw().map_err(|e| anyhow::anyhow!("drawing: {e}"))?;

    let p99 = |sec: &super::engine::Second| sec.latency.value_at_quantile(0.99) as f64 / 1000.0;
    let max_latency = runs.iter().flat_map(|(_, m)| m.timeline.iter().map(p99)).fold(0.1, f64::max);
    let mut latency = ChartBuilder::on(&bottom)
        .margin(20)
        .caption("p99 latency (ms)", ("sans-serif", 16))
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, 0.0..max_latency * 1.1)
        .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    latency.configure_mesh().x_desc("second").draw().map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    for (i, (_, m)) in runs.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        latency
            .draw_series(LineSeries::new(m.timeline.iter().enumerate().map(|(s, sec)| (s as f64, p99(sec))), colour))
            .map_err(|e| anyhow::anyhow!("drawing: {e}"))?;
    }
    root.present().map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
