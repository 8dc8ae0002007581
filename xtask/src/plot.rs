//! The scaling plot: cost per actor against N, for proc-daemon and its
//! peers, as a self-contained SVG (no plotting crate, no fonts to embed;
//! GitHub and browsers render it from docs/).
//!
//! One panel per idle-actor measure of the scaling table (spawn, memory,
//! ask, memory after the asks, stop; per actor), both axes logarithmic, one line per framework; a flat line is the target of
//! issue 24.

use std::fmt::Write;

/// One line of a panel: a name, a colour and its (N, value) points.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) colour: &'static str,
    pub(crate) points: Vec<(f64, f64)>,
}

/// One panel: a title, the unit of its values and its lines.
pub(crate) struct Panel {
    pub(crate) title: String,
    pub(crate) unit: &'static str,
    pub(crate) series: Vec<Series>,
}

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 280.0;
const MARGIN_L: f64 = 64.0;
const MARGIN_R: f64 = 16.0;
const MARGIN_T: f64 = 30.0;
const MARGIN_B: f64 = 40.0;
const LEGEND_H: f64 = 36.0;

/// Powers of ten that cover `low..=high`, for the grid lines.
fn decades(low: f64, high: f64) -> Vec<f64> {
    let first = low.log10().floor() as i32;
    let last = high.log10().ceil() as i32;
    (first..=last).map(|e| 10f64.powi(e)).collect()
}

fn label(value: f64) -> String {
    if value >= 1e6 {
        format!("{}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{}k", value / 1e3)
    } else if value >= 1.0 {
        format!("{value}")
    } else {
        format!("{value:.2}")
    }
}

fn panel(out: &mut String, panel: &Panel, left: f64, top: f64) {
    let points = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(n, v)| *n > 0.0 && *v > 0.0);
    let (mut x_low, mut x_high, mut y_low, mut y_high) = (f64::MAX, 0f64, f64::MAX, 0f64);
    for &(n, v) in points {
        x_low = x_low.min(n);
        x_high = x_high.max(n);
        y_low = y_low.min(v);
        y_high = y_high.max(v);
    }
    if x_high <= 0.0 {
        return;
    }
    let xs = decades(x_low, x_high);
    let ys = decades(y_low, y_high);
    let (x0, x1) = (
        xs[0].log10(),
        xs[xs.len() - 1].log10().max(xs[0].log10() + 1.0),
    );
    let (y0, y1) = (
        ys[0].log10(),
        ys[ys.len() - 1].log10().max(ys[0].log10() + 1.0),
    );
    let plot_w = PANEL_W - MARGIN_L - MARGIN_R;
    let plot_h = PANEL_H - MARGIN_T - MARGIN_B;
    let x = |n: f64| left + MARGIN_L + (n.log10() - x0) / (x1 - x0) * plot_w;
    let y = |v: f64| top + MARGIN_T + plot_h - (v.log10() - y0) / (y1 - y0) * plot_h;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="14" font-weight="bold">{} ({})</text>"#,
        left + MARGIN_L,
        top + 18.0,
        panel.title,
        panel.unit
    );
    for &n in &xs {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{0:.1}" y2="{2:.1}" stroke="#ddd"/><text x="{0:.1}" y="{3:.1}" font-size="11" text-anchor="middle">{4}</text>"##,
            x(n),
            top + MARGIN_T,
            top + MARGIN_T + plot_h,
            top + MARGIN_T + plot_h + 16.0,
            label(n)
        );
    }
    for &v in &ys {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1:.1}" x2="{2:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{3:.1}" y="{4:.1}" font-size="11" text-anchor="end">{5}</text>"##,
            left + MARGIN_L,
            y(v),
            left + MARGIN_L + plot_w,
            left + MARGIN_L - 6.0,
            y(v) + 4.0,
            label(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">N (actors)</text>"#,
        left + MARGIN_L + plot_w / 2.0,
        top + PANEL_H - 6.0
    );
    for series in &panel.series {
        let path: Vec<String> = series
            .points
            .iter()
            .filter(|(n, v)| *n > 0.0 && *v > 0.0)
            .map(|&(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
            .collect();
        if path.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
            series.colour,
            path.join(" ")
        );
        for point in &path {
            let (px, py) = point.split_once(',').expect("x,y");
            let _ = writeln!(
                out,
                r#"<circle cx="{px}" cy="{py}" r="3" fill="{}"/>"#,
                series.colour
            );
        }
    }
}

/// The whole figure: panels two to a row, the legend (every series name
/// once, in the order first seen) at the bottom.
pub(crate) fn svg(title: &str, panels: &[Panel]) -> String {
    let columns = 2.0;
    let rows = (panels.len() as f64 / columns).ceil();
    let width = PANEL_W * columns;
    let height = 28.0 + PANEL_H * rows + LEGEND_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="12" y="20" font-size="15">{title}</text>"#
    );
    for (index, p) in panels.iter().enumerate() {
        let left = (index % 2) as f64 * PANEL_W;
        let top = 28.0 + (index / 2) as f64 * PANEL_H;
        panel(&mut out, p, left, top);
    }
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for series in panels.iter().flat_map(|p| p.series.iter()) {
        if !seen.iter().any(|(name, _)| *name == series.name) {
            seen.push((&series.name, series.colour));
        }
    }
    let legend_top = 28.0 + PANEL_H * rows + 14.0;
    let mut left = 16.0;
    for (name, colour) in seen {
        let _ = writeln!(
            out,
            r#"<rect x="{left:.1}" y="{:.1}" width="14" height="4" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12">{name}</text>"#,
            legend_top,
            left + 20.0,
            legend_top + 6.0
        );
        left += 30.0 + 7.0 * name.len() as f64;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_has_a_line_and_a_point_per_value() {
        let panels = [Panel {
            title: "spawn".to_owned(),
            unit: "µs",
            series: vec![Series {
                name: "ours".to_owned(),
                colour: "#1f77b4",
                points: vec![(1e3, 0.7), (1e4, 0.8), (1e5, 0.9)],
            }],
        }];
        let svg = svg("test", &panels);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains(">ours<"));
        assert!(svg.contains(">100k<"));
    }
}
