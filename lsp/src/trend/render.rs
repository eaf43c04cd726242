//! The trend in four shapes: a compact text table with a sparkline, JSON and CSV for
//! dashboards, and one self-contained HTML page (inline SVG and CSS, no script, no network)
//! that draws the curve, marks the commits where duplication jumped and names the patterns
//! that grew there.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::Context;

use super::{Point, Trend};
use crate::report::html::{escape_html, escape_json_for_script};

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

fn day(date: &str) -> &str {
    &date[..date.len().min(10)]
}

/// The narrowest range of percentage points a sparkline spans: a history that moved by a
/// hundredth of a point is drawn nearly flat, not from the lowest bar to the highest.
const SPARKLINE_MIN_SPAN: f64 = 1.0;

/// One character per point, scaled between the lowest and highest percentage, over at
/// least `SPARKLINE_MIN_SPAN` points centred on them.
pub fn sparkline(points: &[Point]) -> String {
    let (low, high) = points.iter().fold((f64::MAX, f64::MIN), |(low, high), point| (low.min(point.duplicated_percent), high.max(point.duplicated_percent)));
    let (low, high) = if high - low < SPARKLINE_MIN_SPAN {
        let middle = (low + high) / 2.0;
        (middle - SPARKLINE_MIN_SPAN / 2.0, middle + SPARKLINE_MIN_SPAN / 2.0)
    } else {
        (low, high)
    };
    points
        .iter()
        .map(|point| {
            let level = if high > low { ((point.duplicated_percent - low) / (high - low) * 7.0).round() as usize } else { 0 };
            SPARKS[level.min(7)]
        })
        .collect()
}

fn change(trend: &Trend) -> String {
    match (trend.points.first(), trend.points.last()) {
        (Some(first), Some(last)) if trend.points.len() > 1 => {
            let delta = last.duplicated_percent - first.duplicated_percent;
            let direction = if delta > 0.0 { "up" } else if delta < 0.0 { "down" } else { "unchanged" };
            format!("{:.2}% -> {:.2}% ({direction} {:+.2} points) over {} commits", first.duplicated_percent, last.duplicated_percent, delta, trend.points.len())
        }
        (Some(only), _) => format!("{:.2}% at one commit", only.duplicated_percent),
        _ => "no commits".to_string(),
    }
}

pub fn text(trend: &Trend) -> String {
    let mut out = String::new();
    if trend.points.is_empty() {
        out.push_str("no commits to measure\n");
        return out;
    }
    let _ = writeln!(out, "duplication {}  {}", sparkline(&trend.points), change(trend));
    let _ = writeln!(out, "{:<10}  {:<10}  {:>8}  {:>9}  {:>7}  {:>6}  {:>8}", "commit", "date", "lines", "dup lines", "dup %", "pairs", "patterns");
    for point in &trend.points {
        let mark = if point.jump {
            let grown = point.grew.first().map(|growth| format!(" {} '{}'", growth.id, growth.name)).unwrap_or_default();
            format!("  ^ jump{grown}")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{:<10}  {:<10}  {:>8}  {:>9}  {:>6.2}%  {:>6}  {:>8}{mark}",
            short(&point.commit),
            day(&point.date),
            point.lines,
            point.duplicated_lines,
            point.duplicated_percent,
            point.clone_pairs,
            point.patterns,
        );
    }
    out
}

pub fn json(trend: &Trend) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(trend).context("cannot encode the trend")? + "\n")
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// One row per point; per-language columns for every language seen in the history.
pub fn csv(trend: &Trend) -> String {
    let languages: BTreeSet<&str> = trend.points.iter().flat_map(|point| point.languages.keys().map(String::as_str)).collect();
    let mut out = String::from("commit,date,author_date,files,lines,duplicated_lines,duplicated_percent,clone_pairs,patterns,jump");
    for language in &languages {
        let _ = write!(out, ",{language}_lines,{language}_duplicated_lines,{language}_duplicated_percent");
    }
    out.push('\n');
    for point in &trend.points {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            point.commit,
            csv_field(&point.date),
            csv_field(&point.author_date),
            point.files,
            point.lines,
            point.duplicated_lines,
            point.duplicated_percent,
            point.clone_pairs,
            point.patterns,
            point.jump
        );
        for language in &languages {
            let figures = point.languages.get(*language).cloned().unwrap_or_default();
            let _ = write!(out, ",{},{},{}", figures.lines, figures.duplicated_lines, figures.duplicated_percent);
        }
        out.push('\n');
    }
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2733;background:#fbfcfd}\
h1{font-size:20px;margin:0 0 4px}p.summary{margin:0 0 16px;color:#4a5868}\
svg{background:#fff;border:1px solid #dde3ea;border-radius:6px;max-width:100%;height:auto}\
.grid{stroke:#eef1f4}.axis{fill:#6b7886;font-size:11px}.curve{fill:none;stroke:#2f6fb3;stroke-width:2}\
.area{fill:#2f6fb3;fill-opacity:.08}.point{fill:#2f6fb3}.jump{fill:#d1453b;stroke:#fff;stroke-width:1.5}\
.jump-label{fill:#d1453b;font-size:11px;font-weight:600}table{border-collapse:collapse;margin-top:16px;font-size:13px}\
th,td{padding:4px 10px;border-bottom:1px solid #e5e9ee;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr.jump-row td{background:#fdf0ef}code{font-size:12px}";

/// Chart geometry.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 320.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 40.0;

fn chart(trend: &Trend) -> String {
    let points = &trend.points;
    let high = points.iter().map(|point| point.duplicated_percent).fold(0.0, f64::max);
    // A round top a little above the highest value.
    let top = if high <= 0.0 { 1.0 } else { ((high * 1.15) / 0.5).ceil() * 0.5 };
    let x = |index: usize| if points.len() <= 1 { LEFT + (WIDTH - LEFT - RIGHT) / 2.0 } else { LEFT + index as f64 * (WIDTH - LEFT - RIGHT) / (points.len() - 1) as f64 };
    let y = |percent: f64| TOP + (1.0 - percent / top) * (HEIGHT - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = write!(svg, "<svg id=\"trend-chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"Duplicated lines, percent of the code, per commit\">");
    for step in 0..=4 {
        let value = top * f64::from(step) / 4.0;
        let (level, right) = (y(value), WIDTH - RIGHT);
        let _ = write!(svg, "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{right}\" y1=\"{level:.1}\" y2=\"{level:.1}\"/>");
        let _ = write!(svg, "<text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{value:.1}%</text>", LEFT - 6.0, y(value) + 4.0);
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(svg, "<text class=\"axis\" x=\"{LEFT}\" y=\"{}\">{}</text>", HEIGHT - 12.0, day(&first.date));
        let _ = write!(svg, "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", WIDTH - RIGHT, HEIGHT - 12.0, day(&last.date));
    }
    let line: Vec<String> = points.iter().enumerate().map(|(index, point)| format!("{:.1},{:.1}", x(index), y(point.duplicated_percent))).collect();
    if !line.is_empty() {
        let _ = write!(svg, "<polygon class=\"area\" points=\"{:.1},{:.1} {} {:.1},{:.1}\"/>", x(0), y(0.0), line.join(" "), x(points.len() - 1), y(0.0));
        let _ = write!(svg, "<polyline class=\"curve\" points=\"{}\"/>", line.join(" "));
    }
    for (index, point) in points.iter().enumerate() {
        let class = if point.jump { "jump" } else { "point" };
        let radius = if point.jump { 5.5 } else { 2.5 };
        let _ = write!(
            svg,
            "<circle class=\"{class}\" data-commit=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{radius}\"><title>{} {}: {:.2}% ({} duplicated lines of {}), {} patterns</title></circle>",
            point.commit,
            x(index),
            y(point.duplicated_percent),
            short(&point.commit),
            day(&point.date),
            point.duplicated_percent,
            point.duplicated_lines,
            point.lines,
            point.patterns
        );
        if point.jump {
            let label = point.grew.first().map_or_else(|| short(&point.commit).to_string(), |growth| growth.name.clone());
            let _ = write!(svg, "<text class=\"jump-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>", x(index), (y(point.duplicated_percent) - 10.0).max(12.0), escape_html(&label));
        }
    }
    svg.push_str("</svg>");
    svg
}

fn growth_cell(point: &Point) -> String {
    point
        .grew
        .iter()
        .take(3)
        .map(|growth| {
            format!(
                "<code>{}</code> {} ({} → {} copies, +{} lines)",
                escape_html(&growth.id),
                escape_html(&growth.name),
                growth.members_before,
                growth.members,
                growth.duplicated_lines.saturating_sub(growth.duplicated_lines_before)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

pub fn html(trend: &Trend, title: &str) -> anyhow::Result<String> {
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    page.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n");
    let _ = writeln!(page, "<title>Duplication trend of {}</title>\n<style>{STYLE}</style>\n</head>\n<body>", escape_html(title));
    let _ = writeln!(page, "<h1>Duplication trend of {}</h1>", escape_html(title));
    let _ = writeln!(page, "<p class=\"summary\">{} on <code>{}</code>.</p>", escape_html(&change(trend)), escape_html(&trend.branch));
    page.push_str(&chart(trend));
    page.push('\n');
    let jumps: Vec<&Point> = trend.points.iter().filter(|point| point.jump).collect();
    if !jumps.is_empty() {
        page.push_str("<h2>Where duplication jumped</h2>\n<table id=\"jumps\"><tr><th>commit</th><th>date</th><th>subject</th><th>duplicated</th><th>patterns that grew</th></tr>\n");
        for point in jumps {
            let _ = writeln!(
                page,
                "<tr data-commit=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{:.2}%</td><td>{}</td></tr>",
                point.commit,
                short(&point.commit),
                day(&point.date),
                escape_html(&point.subject),
                point.duplicated_percent,
                growth_cell(point)
            );
        }
        page.push_str("</table>\n");
    }
    page.push_str("<h2>Every commit</h2>\n<table id=\"points\"><tr><th>commit</th><th>date</th><th>author</th><th>lines</th><th>duplicated lines</th><th>%</th><th>pairs</th><th>patterns</th><th>subject</th></tr>\n");
    for point in trend.points.iter().rev() {
        let _ = writeln!(
            page,
            "<tr{}><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.2}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            if point.jump { " class=\"jump-row\"" } else { "" },
            short(&point.commit),
            day(&point.date),
            escape_html(&point.author),
            point.lines,
            point.duplicated_lines,
            point.duplicated_percent,
            point.clone_pairs,
            point.patterns,
            escape_html(&point.subject)
        );
    }
    page.push_str("</table>\n");
    let data = serde_json::to_string(trend).context("cannot encode the trend")?;
    let _ = writeln!(page, "<script type=\"application/json\" id=\"trend-data\">{}</script>\n</body>\n</html>", escape_json_for_script(&data));
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_change_is_drawn_small_and_a_large_one_in_full() {
        let at = |percent: f64| Point { duplicated_percent: percent, ..Point::default() };
        let small = sparkline(&[at(12.30), at(12.31), at(12.29)]);
        let levels: Vec<usize> = small.chars().map(|spark| SPARKS.iter().position(|&known| known == spark).expect("a spark")).collect();
        assert!(levels.iter().max().expect("levels") - levels.iter().min().expect("levels") <= 1, "nearly flat: {small}");
        assert_eq!(sparkline(&[at(10.0), at(20.0), at(15.0)]), "▁█▅");
    }
}
