//! The report's plots as SVG text (plotters): line charts of named series.

use plotters::prelude::*;

/// A named series of points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Draw markers at the points (for sparse series).
    pub markers: bool,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Title above the chart.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The series.
    pub series: Vec<Series>,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (low, high) = values
        .filter(|value| value.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(value), high.max(value))
        });
    if !low.is_finite() {
        return None;
    }
    let pad = if high > low {
        (high - low) * 0.05
    } else {
        low.abs().max(1.0) * 0.05
    };
    Some((low - pad, high + pad))
}

/// Renders the chart as an SVG document (`width` × `height` pixels); None when no series has a
/// point.
pub fn render(chart: &LineChart, width: u32, height: u32) -> Option<String> {
    let all = || chart.series.iter().flat_map(|series| series.points.iter());
    let x_range = range(all().map(|(x, _)| *x))?;
    let y_range = range(all().map(|(_, y)| *y))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut plot = ChartBuilder::on(&root)
            .caption(&chart.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .ok()?;
        plot.configure_mesh()
            .x_desc(&chart.x_label)
            .y_desc(&chart.y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .ok()?;
        for (index, series) in chart.series.iter().enumerate() {
            let color = PALETTE[index % PALETTE.len()];
            let points = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            plot.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .ok()?
                .label(series.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            if series.markers {
                plot.draw_series(points.map(|point| Circle::new(point, 4, color.filled())))
                    .ok()?;
            }
        }
        if chart.series.len() > 1 || chart.series.iter().any(|s| !s.label.is_empty()) {
            plot.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(200, 200, 200))
                .position(SeriesLabelPosition::LowerRight)
                .draw()
                .ok()?;
        }
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_renders_its_title_axes_and_every_series() {
        let chart = LineChart {
            title: "Latency CDF".to_owned(),
            x_label: "ms".to_owned(),
            y_label: "fraction".to_owned(),
            series: vec![
                Series {
                    label: "streaming".to_owned(),
                    points: vec![(0.0, 0.0), (10.0, 0.5), (20.0, 1.0)],
                    markers: false,
                },
                Series {
                    label: "batching".to_owned(),
                    points: vec![(5.0, 0.0), (8.0, 1.0)],
                    markers: true,
                },
            ],
        };
        let svg = render(&chart, 640, 400).expect("renders");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        for text in ["Latency CDF", "streaming", "batching", "fraction"] {
            assert!(svg.contains(text), "the SVG shows {text}");
        }
        assert!(svg.matches("<polyline").count() >= 2, "one line per series");
        assert!(svg.contains("<circle"), "markers for the sparse series");
    }

    #[test]
    fn nothing_to_draw_is_no_chart() {
        let chart = LineChart {
            title: "t".to_owned(),
            x_label: "x".to_owned(),
            y_label: "y".to_owned(),
            series: vec![Series {
                label: "empty".to_owned(),
                points: Vec::new(),
                markers: false,
            }],
        };
        assert_eq!(render(&chart, 100, 100), None);
    }
}
