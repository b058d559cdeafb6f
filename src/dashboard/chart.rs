//! Inline SVG charts: the per-server reachability timeline, downtime budget
//! bars and simple horizontal bar charts. Each chart carries `<title>` and
//! `<desc>` (the same facts in words) for screen readers.

use std::fmt::Write as _;

use super::html::{duration, esc};
use crate::model::Timestamp;

pub const UP: &str = "#2e7d32";
pub const DOWN: &str = "#c62828";
pub const UNKNOWN: &str = "#b0b0b0";

/// One server's probe results over time: `(when, reachable)`; `None` when
/// the round did not report the server.
pub struct Lane {
    pub server: String,
    pub samples: Vec<(Timestamp, Option<bool>)>,
}

struct Segment {
    from: Timestamp,
    to: Timestamp,
    up: Option<bool>,
}

/// Merge consecutive samples with the same result; each lasts until the
/// next sample (the last one until `to`).
fn segments(lane: &Lane, from: Timestamp, to: Timestamp) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut samples: Vec<_> = lane
        .samples
        .iter()
        .filter(|(t, _)| *t <= to)
        .cloned()
        .collect();
    samples.sort_by_key(|(t, _)| *t);
    for (i, (t, up)) in samples.iter().enumerate() {
        let start = (*t).max(from);
        let end = samples.get(i + 1).map(|(n, _)| *n).unwrap_or(to).min(to);
        if end <= start {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.up == *up && last.to == start => last.to = end,
            _ => out.push(Segment {
                from: start,
                to: end,
                up: *up,
            }),
        }
    }
    out
}

fn tick_label(t: Timestamp, span_secs: i64) -> String {
    if span_secs <= 2 * 86400 {
        t.format("%H:%M").to_string()
    } else {
        t.format("%m-%d %H:%M").to_string()
    }
}

/// A reachability timeline, one lane per server, from `from` to `to`.
pub fn timeline(id: &str, lanes: &[Lane], from: Timestamp, to: Timestamp) -> String {
    const W: f64 = 960.0;
    const LABEL: f64 = 210.0;
    const LANE: f64 = 24.0;
    const GAP: f64 = 10.0;
    const TOP: f64 = 8.0;
    let plot_w = W - LABEL - 10.0;
    let span = (to - from).num_seconds().max(1);
    let x = |t: Timestamp| LABEL + plot_w * ((t - from).num_seconds() as f64 / span as f64);
    let axis_y = TOP + lanes.len() as f64 * (LANE + GAP);
    let h = axis_y + 56.0;
    let mut body = String::new();
    let mut words = Vec::new();
    for (i, lane) in lanes.iter().enumerate() {
        let y = TOP + i as f64 * (LANE + GAP);
        let _ = write!(
            body,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LABEL - 8.0,
            y + LANE * 0.68,
            esc(&lane.server)
        );
        let _ = write!(
            body,
            "<rect x=\"{LABEL}\" y=\"{y:.1}\" width=\"{plot_w:.1}\" height=\"{LANE}\" fill=\"#f4f4f4\" stroke=\"#c8c8c8\"/>"
        );
        let segs = segments(lane, from, to);
        let mut down = 0i64;
        let mut probed = 0i64;
        for s in &segs {
            let secs = (s.to - s.from).num_seconds();
            let (fill, what) = match s.up {
                Some(true) => (UP, "reachable"),
                Some(false) => (DOWN, "unreachable"),
                None => (UNKNOWN, "not probed"),
            };
            if s.up == Some(false) {
                down += secs;
            }
            if s.up.is_some() {
                probed += secs;
            }
            let x0 = x(s.from);
            let w = (x(s.to) - x0).max(1.0);
            let _ = write!(
                body,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{LANE}\" fill=\"{fill}\"><title>{}: {what} {} – {} ({})</title></rect>",
                esc(&lane.server),
                s.from.format("%m-%d %H:%M"),
                s.to.format("%m-%d %H:%M"),
                duration(secs)
            );
        }
        words.push(if segs.is_empty() {
            format!("{}: no probe results", lane.server)
        } else {
            format!(
                "{}: unreachable {} of {} probed",
                lane.server,
                duration(down),
                duration(probed)
            )
        });
    }
    // Axis with five ticks.
    let _ = write!(
        body,
        "<line x1=\"{LABEL}\" x2=\"{:.1}\" y1=\"{axis_y:.1}\" y2=\"{axis_y:.1}\" stroke=\"#4a4a4a\"/>",
        LABEL + plot_w
    );
    for k in 0..=4 {
        let t = from + chrono::Duration::seconds(span * k / 4);
        let tx = x(t);
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            body,
            "<line x1=\"{tx:.1}\" x2=\"{tx:.1}\" y1=\"{axis_y:.1}\" y2=\"{:.1}\" stroke=\"#4a4a4a\"/>\
<text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            axis_y + 5.0,
            axis_y + 18.0,
            tick_label(t, span)
        );
    }
    // Legend.
    let ly = axis_y + 34.0;
    let mut lx = LABEL;
    for (fill, label) in [
        (UP, "reachable"),
        (DOWN, "unreachable"),
        (UNKNOWN, "no result"),
    ] {
        let _ = write!(
            body,
            "<rect x=\"{lx:.0}\" y=\"{ly:.0}\" width=\"14\" height=\"14\" fill=\"{fill}\"/>\
<text x=\"{:.0}\" y=\"{:.0}\">{label}</text>",
            lx + 19.0,
            ly + 11.5
        );
        lx += 130.0;
    }
    let title = format!(
        "Reachability of each nameserver, {} to {} (UTC)",
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M")
    );
    format!(
        "<svg id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" viewBox=\"0 0 {W} {h:.0}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" xmlns=\"http://www.w3.org/2000/svg\">\
<title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{body}</svg>",
        esc(&title),
        esc(&words.join("; "))
    )
}

/// Horizontal bars: `(label, value, colour)`, scaled to the largest value
/// or to `max` when given (a budget).
pub fn hbars(
    id: &str,
    title: &str,
    items: &[(String, f64, String, &str)],
    max: Option<f64>,
) -> String {
    const W: f64 = 640.0;
    const LABEL: f64 = 210.0;
    const ROW: f64 = 26.0;
    let plot_w = W - LABEL - 150.0;
    let top = items
        .iter()
        .map(|i| i.1)
        .fold(max.unwrap_or(0.0), f64::max)
        .max(1.0);
    let h = items.len() as f64 * ROW + 6.0;
    let mut body = String::new();
    let mut words = Vec::new();
    for (i, (label, v, text, fill)) in items.iter().enumerate() {
        let y = 3.0 + i as f64 * ROW;
        let w = plot_w * (v / top);
        let _ = write!(
            body,
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
<rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{plot_w:.1}\" height=\"16\" fill=\"#eeeeee\"/>\
<rect x=\"{LABEL}\" y=\"{:.1}\" width=\"{:.1}\" height=\"16\" fill=\"{fill}\"/>\
<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL - 8.0,
            y + 13.0,
            esc(label),
            y + 2.0,
            y + 2.0,
            w.max(if *v > 0.0 { 2.0 } else { 0.0 }),
            LABEL + plot_w + 8.0,
            y + 13.0,
            esc(text)
        );
        words.push(format!("{label}: {text}"));
    }
    format!(
        "<svg id=\"{id}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" viewBox=\"0 0 {W} {h:.0}\" width=\"{W}\" style=\"max-width:100%\" xmlns=\"http://www.w3.org/2000/svg\">\
<title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>{body}</svg>",
        esc(title),
        esc(&words.join("; "))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(m: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap()
            + chrono::Duration::minutes(i64::from(m))
    }

    #[test]
    fn segments_merge_and_clip() {
        let lane = Lane {
            server: "ns1.example.ru".into(),
            samples: vec![
                (t(0), Some(true)),
                (t(10), Some(true)),
                (t(20), Some(false)),
                (t(30), None),
                (t(40), Some(true)),
            ],
        };
        let s = segments(&lane, t(5), t(50));
        let v: Vec<_> = s.iter().map(|s| (s.from, s.to, s.up)).collect();
        assert_eq!(
            v,
            vec![
                (t(5), t(20), Some(true)),
                (t(20), t(30), Some(false)),
                (t(30), t(40), None),
                (t(40), t(50), Some(true)),
            ]
        );
    }

    #[test]
    fn timeline_is_labelled_and_escaped() {
        let lane = Lane {
            server: "<b>ns</b>".into(),
            samples: vec![(t(0), Some(false)), (t(30), Some(true))],
        };
        let svg = timeline("tl", &[lane], t(0), t(60));
        assert!(svg.contains("<title id=\"tl-t\">"));
        assert!(svg.contains("&lt;b&gt;ns&lt;/b&gt;: unreachable 30m of 1h probed"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains(DOWN) && svg.contains(UP));
    }
}
