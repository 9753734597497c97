//! The report as one self-contained HTML page: KPI tiles, tables of the shared figure list and
//! inline SVG charts.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Bar, Figure, Kpi, Value, figures, kpis, outcome_bars, pass_rate_axis, reason_bars};
use crate::report::{MonthlyReport, NameCount};

/// The report as one self-contained HTML page: inline CSS and SVG, no script, no external asset,
/// so it opens offline, mails as an attachment and prints on A4. Every text is escaped.
pub fn html(r: &MonthlyReport) -> String {
    let all = figures(r);
    let title = format!(
        "Premium customer notifications: {} {}",
        r.month.english_name(),
        r.month.year()
    );
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n\
         <p class=\"sub\">Monthly report for {} &middot; generated {}</p>\n</header>\n",
        esc(&title),
        esc(&title),
        esc(&r.month.to_string()),
        esc(&time_text(Some(r.generated_at))),
    );
    kpi_tiles(&mut h, r);

    section_start(&mut h, "Programme summary");
    figure_rows(&mut h, &all, &["summary"]);
    h.push_str("</section>\n");

    section_start(&mut h, "Qualification");
    h.push_str("<div class=\"cols\"><div>");
    figure_rows(&mut h, &all, &["qualification"]);
    h.push_str("</div><div><h3>Reasons for non-qualification</h3>");
    hbars(&mut h, "Reasons for non-qualification", &reason_bars(r));
    h.push_str("</div></div>\n</section>\n");

    section_start(&mut h, "Daily balance checks");
    pass_rate_chart(&mut h, r);
    daily_table(&mut h, r);
    h.push_str("</section>\n");

    section_start(&mut h, "SMS delivery");
    h.push_str("<div class=\"cols\"><div>");
    figure_rows(&mut h, &all, &["delivery"]);
    h.push_str("</div><div><h3>Where the notifications ended</h3>");
    hbars(&mut h, "Delivery outcomes", &outcome_bars(r));
    h.push_str("</div></div>\n</section>\n");

    section_start(&mut h, "Delivery failures");
    h.push_str("<div class=\"cols\"><div><h3>Failure categories</h3>");
    name_table(&mut h, "Category", "Notifications", &r.failure_categories);
    h.push_str("</div><div><h3>Top carrier error codes</h3>");
    name_table(&mut h, "Error code", "Attempts", &r.top_error_codes);
    h.push_str("</div></div>\n</section>\n");

    section_start(&mut h, "Carriers");
    carrier_table(&mut h, r);
    h.push_str("</section>\n");

    section_start(&mut h, "System performance");
    figure_rows(&mut h, &all, &["processing"]);
    h.push_str("</section>\n");

    section_start(&mut h, "Recommendations");
    h.push_str("<ul class=\"recs\">");
    for line in &r.recommendations {
        let _ = write!(h, "<li>{}</li>", esc(line));
    }
    h.push_str("</ul>\n</section>\n");
    let _ = write!(
        h,
        "<footer>Figures read from the system's database in one snapshot at {}. Percentages are \
         rounded to two places.</footer>\n</body>\n</html>\n",
        esc(&time_text(Some(r.generated_at)))
    );
    h
}

const CSS: &str = "
:root{--ink:#1c2733;--muted:#5f6b7a;--line:#dde3ea;--accent:#1f3a5f;--bg:#f5f7fa}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1100px;padding:24px 28px;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif;color:var(--ink);background:#fff}
header{border-bottom:3px solid var(--accent);margin-bottom:18px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:17px;margin:0 0 10px;color:var(--accent)}
h3{font-size:14px;margin:0 0 8px;color:var(--muted);font-weight:600}
.sub{color:var(--muted);margin:0 0 12px}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:12px;margin-bottom:18px}
.kpi{background:var(--bg);border:1px solid var(--line);border-left:5px solid var(--accent);border-radius:6px;padding:12px 14px}
.kpi .v{font-size:26px;font-weight:700;font-variant-numeric:tabular-nums}
.kpi .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .n{color:var(--muted);font-size:12px}
section{border:1px solid var(--line);border-radius:6px;padding:14px 16px;margin-bottom:16px;break-inside:avoid}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:18px;align-items:start}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right}
table.daily td,table.daily th{padding:2px 6px;font-size:12px}
tr.warn td{background:#fff4e5}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif}
.empty{color:var(--muted);font-style:italic}
.recs li{margin-bottom:4px}
footer{color:var(--muted);font-size:12px;margin-top:8px}
@media (max-width:760px){.kpis{grid-template-columns:repeat(2,1fr)}.cols{grid-template-columns:1fr}}
@media print{@page{size:A4;margin:12mm}body{max-width:none;padding:0;font-size:11px}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}section{break-inside:avoid}
.daily-wrap{break-before:auto}}
";

/// Escapes text for HTML and SVG content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A stored code as words: `NOT_MONITORED_WHOLE_MONTH` → `Not monitored whole month`.
pub(super) fn words(code: &str) -> String {
    let lower = code.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn section_start(h: &mut String, title: &str) {
    let _ = write!(h, "<section>\n<h2>{}</h2>\n", esc(title));
}

/// `1234567` → `1,234,567`.
pub(super) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A decimal with its integer part grouped: `10000.00` → `10,000.00`.
fn grouped_decimal(d: Decimal) -> String {
    let text = d.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let int = int
        .parse::<u64>()
        .map(grouped)
        .unwrap_or_else(|_| int.to_owned());
    let sign = if d.is_sign_negative() && !d.is_zero() {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

pub(super) fn time_text(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::Count(n) => grouped(*n),
        Value::Percent(p) => format!("{p}%"),
        Value::Amount(Some(a), unit) => format!("{} {unit}", grouped_decimal(*a)),
        Value::Amount(None, _) => "—".to_owned(),
        Value::Time(t) => time_text(*t),
        Value::Text(t) => t.clone(),
    }
}

fn kpi_tiles(h: &mut String, r: &MonthlyReport) {
    h.push_str("<div class=\"kpis\">\n");
    for Kpi {
        label, value, note, ..
    } in kpis(r)
    {
        let _ = writeln!(
            h,
            "<div class=\"kpi\"><div class=\"l\">{}</div><div class=\"v\">{}</div>\
             <div class=\"n\">{}</div></div>",
            esc(label),
            esc(&value),
            esc(&note)
        );
    }
    h.push_str("</div>\n");
}

fn figure_rows(h: &mut String, all: &[Figure], sections: &[&str]) {
    h.push_str("<table>\n");
    for f in all.iter().filter(|f| sections.contains(&f.section)) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&f.label),
            esc(&value_text(&f.value))
        );
    }
    h.push_str("</table>\n");
}

fn name_table(h: &mut String, name: &str, count: &str, items: &[NameCount]) {
    if items.is_empty() {
        h.push_str("<p class=\"empty\">None.</p>\n");
        return;
    }
    let _ = writeln!(
        h,
        "<table><tr><th>{}</th><th class=\"num\">{}</th></tr>",
        esc(name),
        esc(count)
    );
    for i in items {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td></tr>",
            esc(&i.name),
            grouped(i.count)
        );
    }
    h.push_str("</table>\n");
}

fn carrier_table(h: &mut String, r: &MonthlyReport) {
    if r.carriers.is_empty() {
        h.push_str("<p class=\"empty\">No attempts.</p>\n");
        return;
    }
    h.push_str(
        "<table><tr><th>Carrier</th><th class=\"num\">Attempts</th><th class=\"num\">Accepted</th>\
         <th class=\"num\">Delivered</th><th class=\"num\">Failed</th></tr>\n",
    );
    for c in &r.carriers {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&c.carrier),
            grouped(c.attempts),
            grouped(c.accepted),
            grouped(c.delivered),
            grouped(c.failed)
        );
    }
    h.push_str("</table>\n");
}

fn daily_table(h: &mut String, r: &MonthlyReport) {
    if r.daily.is_empty() {
        h.push_str("<p class=\"empty\">No balance checks in this month.</p>\n");
        return;
    }
    h.push_str(
        "<table class=\"daily\"><tr><th>Date</th><th class=\"num\">Checked</th>\
         <th class=\"num\">Passed</th><th class=\"num\">Below threshold</th>\
         <th class=\"num\">Missing</th><th class=\"num\">Not found</th>\
         <th class=\"num\">Invalid</th><th class=\"num\">Pass rate</th></tr>\n",
    );
    for d in &r.daily {
        let class = if d.missing > 0 { " class=\"warn\"" } else { "" };
        let _ = write!(h, "<tr{class}><td>{}</td>", d.date);
        for n in [
            d.checked,
            d.passed,
            d.below_threshold,
            d.missing,
            d.not_found,
            d.invalid,
        ] {
            let _ = write!(h, "<td class=\"num\">{}</td>", grouped(n));
        }
        let _ = writeln!(h, "<td class=\"num\">{}%</td></tr>", d.pass_rate);
    }
    h.push_str("</table>\n");
}

/// Horizontal bars, lengths proportional to the counts (integer pixels).
fn hbars(h: &mut String, title: &str, bars: &[Bar]) {
    if bars.is_empty() {
        h.push_str("<p class=\"empty\">None.</p>\n");
        return;
    }
    const LABEL_W: u64 = 190;
    const BAR_W: u64 = 260;
    const ROW_H: u64 = 26;
    let width = LABEL_W + BAR_W + 110;
    let height = ROW_H * bars.len() as u64 + 6;
    let max = bars.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let _ = writeln!(
        h,
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" \
         role=\"img\" aria-label=\"{}\">",
        esc(title)
    );
    for (i, b) in (0u64..).zip(bars) {
        let y = i * ROW_H + 4;
        let len = b.count * BAR_W / max;
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"13\" text-anchor=\"end\" fill=\"#1c2733\">{}</text>\
             <rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{BAR_W}\" height=\"18\" fill=\"#eef1f5\"/>\
             <rect x=\"{LABEL_W}\" y=\"{y}\" width=\"{len}\" height=\"18\" fill=\"{}\">\
             <title>{}: {}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"13\" fill=\"#1c2733\">{} ({})</text>",
            LABEL_W - 8,
            y + 13,
            esc(&b.label),
            b.color,
            esc(&b.label),
            grouped(b.count),
            LABEL_W + BAR_W + 8,
            y + 13,
            grouped(b.count),
            esc(&b.note),
        );
    }
    h.push_str("</svg>\n");
}

/// The daily pass rate as a line across every day of the month: a dot per business date with
/// checks (red when some checks got no answer), gaps where a day has none. The y axis starts at
/// the highest of 0/50/80/90/95 % strictly below the month's worst day, so a 99.1 % vs 99.8 % month still
/// shows its shape; the axis says where it starts.
fn pass_rate_chart(h: &mut String, r: &MonthlyReport) {
    const W: i64 = 960;
    const H: i64 = 270;
    const LEFT: i64 = 56;
    const RIGHT: i64 = 16;
    const TOP: i64 = 14;
    const BOTTOM: i64 = 46;
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let days = i64::from(r.month.num_days());
    let slot = plot_w / days;
    let (floor, step) = pass_rate_axis(r);
    let span = Decimal::from(100 - floor);
    let y_of = |rate: Decimal| -> Decimal {
        let clamped = rate.max(Decimal::from(floor));
        (Decimal::from(TOP) + (Decimal::ONE_HUNDRED - clamped) * Decimal::from(plot_h) / span)
            .round_dp(1)
    };
    let x_of = |day: i64| LEFT + slot * (day - 1) + slot / 2;
    let _ = writeln!(
        h,
        "<svg viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" \
         aria-label=\"Daily pass rate\">"
    );
    // Grid and y labels.
    let mut tick = floor;
    while tick <= 100 {
        let y = y_of(Decimal::from(tick));
        let _ = writeln!(
            h,
            "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#dde3ea\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5f6b7a\">{tick}%</text>",
            W - RIGHT,
            LEFT - 6,
            y + Decimal::from(4),
        );
        tick += step;
    }
    // X labels: every day number, every other one when space is tight.
    for day in 1..=days {
        if slot < 24 && day % 2 == 0 && day != days {
            continue;
        }
        let _ = writeln!(
            h,
            "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#5f6b7a\">{day}</text>",
            x_of(day),
            TOP + plot_h + 14,
        );
    }
    let _ = writeln!(
        h,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5f6b7a\">Day of {} {} \
         (share of balance checks that passed; red: checks without an answer from the bank)</text>\
         <line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{}\" stroke=\"#5f6b7a\"/>\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#5f6b7a\"/>",
        LEFT + plot_w / 2,
        H - 8,
        esc(r.month.english_name()),
        r.month.year(),
        TOP + plot_h,
        TOP + plot_h,
        W - RIGHT,
        TOP + plot_h,
    );
    // The line, broken where a day has no checks.
    let mut points: Vec<String> = Vec::new();
    for day in 1..=days {
        let row = r
            .daily
            .iter()
            .find(|d| i64::from(chrono::Datelike::day(&d.date)) == day);
        match row {
            Some(d) => points.push(format!("{},{}", x_of(day), y_of(d.pass_rate))),
            None => flush(h, &mut points),
        }
    }
    flush(h, &mut points);
    for d in &r.daily {
        let day = i64::from(chrono::Datelike::day(&d.date));
        let color = if d.missing > 0 { "#c62828" } else { "#1f3a5f" };
        let _ = writeln!(
            h,
            "<circle cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{color}\"><title>{}: {}% passed, {} \
             checked, {} missing</title></circle>",
            x_of(day),
            y_of(d.pass_rate),
            d.date,
            d.pass_rate,
            grouped(d.checked),
            grouped(d.missing),
        );
    }
    h.push_str("</svg>\n");
}

/// Draws the points gathered so far as one stretch of the line (a lone day is just its dot).
fn flush(h: &mut String, points: &mut Vec<String>) {
    if points.len() > 1 {
        let _ = writeln!(
            h,
            "<polyline fill=\"none\" stroke=\"#1f3a5f\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    points.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn html_is_self_contained_with_charts_and_escaped_text() {
        let page = html(&sample());
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("October 2026"));
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("&lt;script&gt;&quot;x&quot;,y"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("10,000.00 NIS"));
        assert!(page.contains(">90.00%<"));
        // The missing day is drawn red.
        assert!(page.contains("fill=\"#c62828\"><title>2026-10-03"));
        // The four headline tiles, with their long notes.
        assert_eq!(page.matches("<div class=\"kpi\">").count(), 4);
        assert!(page.contains("days with balance checks</div>"));
        assert!(page.contains("notifications still in flight</div>"));
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(3_100_000), "3,100,000");
        assert_eq!(grouped_decimal("1234567.5".parse().unwrap()), "1,234,567.5");
    }
}
