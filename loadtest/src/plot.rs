//! The latency-over-time plot (`--plot PATH.svg`): p50, p99 and the maximum of each second (log
//! scale) above the acknowledged or delivered rate of each second, so that an operator sees a
//! stall, a slow start or a periodic hiccup at a glance rather than reading for it. Drawn with
//! plotters' SVG backend (text is left to the viewer's fonts).

use crate::report::{BurstReport, ChatReport, OfflineReport};
use crate::stats::Tick;
use plotters::prelude::*;
use std::path::Path;

/// One second's latency: (t, p50, p99, max), in seconds and milliseconds.
pub type LatencyPoint = (f64, f64, f64, f64);

/// What one plot shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// The title line.
    pub title: String,
    /// What the latency is (the y axis of the upper panel).
    pub latency_label: String,
    /// What the rate counts (the y axis of the lower panel).
    pub rate_label: String,
    /// Per second: (t, p50, p99, max) in ms; seconds without samples are absent.
    pub latency: Vec<LatencyPoint>,
    /// Per second: (t, events in that second).
    pub rate: Vec<(f64, f64)>,
}

impl Series {
    fn from_ticks(
        title: String,
        latency_label: &str,
        rate_label: &str,
        ticks: &[Tick],
        rate: fn(&Tick) -> u64,
    ) -> Self {
        Self {
            title,
            latency_label: latency_label.into(),
            rate_label: rate_label.into(),
            latency: ticks
                .iter()
                .filter(|t| t.e2e_max_ms > 0.0)
                .map(|t| (t.t as f64, t.e2e_p50_ms, t.e2e_p99_ms, t.e2e_max_ms))
                .collect(),
            rate: ticks.iter().map(|t| (t.t as f64, rate(t) as f64)).collect(),
        }
    }

    /// A chat or reconnect run: end-to-end latency user to agent, acknowledged messages.
    pub fn chat(r: &ChatReport) -> Self {
        let title = format!(
            "{}: {} users, target {:.0} msgs/s, {} ({})",
            r.scenario, r.users_ready, r.target_rate, r.hub.url, r.hub.backend
        );
        Self::from_ticks(title, "e2e user->agent (ms)", "acked msgs/s", &r.timeline, |t| t.acked)
    }

    /// A burst run: POST to receipt, deliveries.
    pub fn burst(r: &BurstReport) -> Self {
        let title = format!(
            "burst: {} sockets, {:.0} announcements/s, {} ({})",
            r.sockets_ready, r.announcements_per_s, r.hub.url, r.hub.backend
        );
        Self::from_ticks(title, "POST to receipt (ms)", "deliveries/s", &r.timeline, |t| t.delivered)
    }

    /// An offline run: an agent's message to the push's arrival, pushes received.
    pub fn offline(r: &OfflineReport) -> Self {
        let title = format!(
            "offline: {} closed apps, {:.0} agent msgs/s, {} ({})",
            r.users_ready, r.target_rate, r.hub.url, r.hub.backend
        );
        Self {
            title,
            latency_label: "message to push (ms)".into(),
            rate_label: "pushes/s".into(),
            latency: r
                .timeline
                .iter()
                .filter(|s| s.max_ms > 0.0)
                .map(|s| (s.t as f64, s.p50_ms, s.p99_ms, s.max_ms))
                .collect(),
            rate: r.timeline.iter().map(|s| (s.t as f64, s.pushes as f64)).collect(),
        }
    }
}

/// Writes `series` as an SVG file.
///
/// # Errors
/// The file cannot be written.
pub fn write_svg(path: &Path, series: &Series) -> anyhow::Result<()> {
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, (960, 600)), series).map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    std::fs::write(path, svg)?;
    Ok(())
}

/// A latency line: its name, colour, and which value of a point it draws.
type Line = (&'static str, RGBColor, fn(&LatencyPoint) -> f64);

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(backend: SVGBackend<'_>, s: &Series) -> DrawResult {
    let root = backend.into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&s.title, ("sans-serif", 18))?;
    let (upper, lower) = root.split_vertically(360);
    let t_max = s.rate.iter().map(|p| p.0).chain(s.latency.iter().map(|p| p.0)).fold(1.0, f64::max);

    // Latency, log scale: a stall shows as a spike of max and p99 over a flat p50.
    let lat_max = s.latency.iter().map(|p| p.3).fold(1.0, f64::max) * 1.5;
    let lat_min = s.latency.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(lat_max / 10.0) * 0.7;
    let lat_min = if lat_min.is_finite() && lat_min > 0.0 { lat_min } else { 0.01 };
    let mut chart = ChartBuilder::on(&upper)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..t_max, (lat_min..lat_max).log_scale())?;
    chart.configure_mesh().y_desc(s.latency_label.as_str()).x_desc("seconds since the load started").draw()?;
    let lines: [Line; 3] = [("p50", BLUE, |p| p.1), ("p99", RGBColor(230, 120, 0), |p| p.2), ("max", RED, |p| p.3)];
    for (name, color, pick) in lines {
        let points = s.latency.iter().map(|p| (p.0, pick(p).max(lat_min)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // The rate: a stall shows as a dip here at the same second.
    let rate_max = s.rate.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..t_max, 0f64..rate_max)?;
    chart.configure_mesh().y_desc(s.rate_label.as_str()).x_desc("seconds since the load started").draw()?;
    chart.draw_series(LineSeries::new(s.rate.iter().copied(), GREEN.stroke_width(2)))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::PushSecond;

    fn tick(t: u64, acked: u64, p50: f64, p99: f64, max: f64) -> Tick {
        Tick { t, acked, delivered: acked * 10, e2e_p50_ms: p50, e2e_p99_ms: p99, e2e_max_ms: max, ..Tick::default() }
    }

    #[test]
    fn seconds_without_samples_are_left_out_of_the_latency_lines() {
        let ticks = [tick(1, 0, 0.0, 0.0, 0.0), tick(2, 100, 1.0, 5.0, 9.0), tick(3, 90, 1.2, 4.0, 80.0)];
        let r = ChatReport { scenario: "chat", timeline: ticks.to_vec(), ..Default::default() };
        let s = Series::chat(&r);
        assert_eq!(s.latency, vec![(2.0, 1.0, 5.0, 9.0), (3.0, 1.2, 4.0, 80.0)]);
        assert_eq!(s.rate, vec![(1.0, 0.0), (2.0, 100.0), (3.0, 90.0)]);
        let b = Series::burst(&BurstReport { timeline: ticks.to_vec(), ..Default::default() });
        assert_eq!(b.rate[1], (2.0, 1000.0), "deliveries, not acks");
    }

    #[test]
    fn an_offline_plot_shows_push_latency_over_pushes_per_second() {
        let second =
            |t, pushes, max_ms| PushSecond { t, pushes, p50_ms: 1.0, p99_ms: 2.0, max_ms, ..Default::default() };
        let r = OfflineReport { timeline: vec![second(1, 0, 0.0), second(2, 190, 400.0)], ..Default::default() };
        let s = Series::offline(&r);
        assert_eq!(s.latency, vec![(2.0, 1.0, 2.0, 400.0)]);
        assert_eq!(s.rate, vec![(1.0, 0.0), (2.0, 190.0)]);
    }

    #[test]
    fn the_svg_has_a_title_three_latency_lines_and_the_rate() {
        let ticks: Vec<Tick> = (1..=10).map(|t| tick(t, 1000, 1.0, 3.0 + t as f64, 20.0)).collect();
        let r = ChatReport { scenario: "chat", timeline: ticks, ..Default::default() };
        let mut svg = String::new();
        draw(SVGBackend::with_string(&mut svg, (960, 600)), &Series::chat(&r)).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
        assert!(svg.contains("chat: 0 users"));
        assert!(svg.contains("acked msgs/s") && svg.contains("p99") && svg.contains("max"));
        // Axes and ticks are thin; the data lines and legend marks are 2 px wide.
        let thick = svg.matches("stroke-width=\"2\"").count();
        assert_eq!(thick, 4 + 3, "3 latency lines, 1 rate line, 3 legend marks");
    }

    #[test]
    fn an_empty_run_still_draws() {
        let mut svg = String::new();
        draw(SVGBackend::with_string(&mut svg, (320, 200)), &Series::default()).unwrap();
        assert!(svg.contains("</svg>"));
    }
}
