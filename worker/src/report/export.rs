//! The report as files: CSV for scripts, XLSX for spreadsheets, one HTML page for people.
//!
//! All three render the same figures from a [`MonthlyReport`]; the CSV and the HTML tables walk
//! the same list of [`Figure`]s so they never disagree on what a section holds.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;
use rust_xlsxwriter::{
    Chart, ChartMarker, ChartMarkerType, ChartType, Color, ExcelDateTime, Format, FormatBorder,
    Workbook, Worksheet,
};

use super::{MonthlyReport, NameCount, percent};

/// One value of the report, typed so each export can format it its own way.
enum Value {
    Count(u64),
    /// A percentage, e.g. `12.50` for 12.5 %.
    Percent(Decimal),
    /// A plain decimal with its unit (NIS, s).
    Amount(Option<Decimal>, &'static str),
    Time(Option<DateTime<Utc>>),
    Text(String),
}

/// One `section,metric,value` line: the section, a stable machine key and a label for people.
struct Figure {
    section: &'static str,
    metric: String,
    label: String,
    value: Value,
}

fn fig(section: &'static str, metric: &str, label: &str, value: Value) -> Figure {
    Figure {
        section,
        metric: metric.to_owned(),
        label: label.to_owned(),
        value,
    }
}

/// Every key figure of the report in export order (the daily table is separate).
fn figures(r: &MonthlyReport) -> Vec<Figure> {
    use Value::{Amount, Count, Percent, Text, Time};
    let s = &r.summary;
    let q = &r.qualification;
    let p = &r.processing;
    let mut out = vec![
        fig("report", "month", "Month", Text(r.month.to_string())),
        fig(
            "report",
            "generated_at",
            "Generated at",
            Time(Some(r.generated_at)),
        ),
        fig(
            "summary",
            "customers_monitored",
            "Customers monitored",
            Count(s.customers_monitored),
        ),
        fig("summary", "qualified", "Qualified", Count(s.qualified)),
        fig(
            "summary",
            "qualification_rate",
            "Qualification rate",
            Percent(s.qualification_rate),
        ),
        fig(
            "summary",
            "notifications",
            "Notifications",
            Count(s.notifications),
        ),
        fig("summary", "delivered", "Delivered", Count(s.delivered)),
        fig(
            "summary",
            "delivery_rate",
            "Delivery rate (of submitted)",
            Percent(s.delivery_rate),
        ),
        fig("qualification", "decided", "Decided", Count(q.decided)),
        fig(
            "qualification",
            "qualified",
            "Qualified",
            Count(q.qualified),
        ),
        fig(
            "qualification",
            "not_qualified",
            "Not qualified",
            Count(q.not_qualified),
        ),
        fig(
            "qualification",
            "near_misses",
            "Near misses (one day below)",
            Count(q.near_misses),
        ),
        fig(
            "qualification",
            "threshold",
            "Threshold",
            Amount(q.threshold, "NIS"),
        ),
    ];
    for reason in &q.reasons {
        out.push(fig(
            "reasons",
            &reason.reason,
            &reason.reason,
            Count(reason.count),
        ));
    }
    for reason in &q.reasons {
        out.push(fig(
            "reasons_percent",
            &reason.reason,
            &reason.reason,
            Percent(reason.percent),
        ));
    }
    for (metric, label, n) in delivery_counts(r) {
        out.push(fig("delivery", metric, label, Count(n)));
    }
    out.extend(named("failure_categories", &r.failure_categories));
    out.extend(named("top_error_codes", &r.top_error_codes));
    for c in &r.carriers {
        for (metric, label, n) in [
            ("attempts", "attempts", c.attempts),
            ("accepted", "accepted", c.accepted),
            ("delivered", "delivered", c.delivered),
            ("failed", "failed", c.failed),
        ] {
            out.push(fig(
                "carriers",
                &format!("{}_{metric}", c.carrier),
                &format!("{}: {label}", c.carrier),
                Count(n),
            ));
        }
    }
    out.extend([
        fig(
            "processing",
            "days_swept",
            "Days swept",
            Count(p.days_swept),
        ),
        fig(
            "processing",
            "first_sweep_at",
            "First daily sweep",
            Time(p.first_sweep_at),
        ),
        fig(
            "processing",
            "last_sweep_at",
            "Last daily sweep",
            Time(p.last_sweep_at),
        ),
        fig(
            "processing",
            "decided_at",
            "Month decided",
            Time(p.decided_at),
        ),
        fig(
            "processing",
            "first_submission_at",
            "First SMS submitted",
            Time(p.first_submission_at),
        ),
        fig(
            "processing",
            "last_final_at",
            "Last notification final",
            Time(p.last_final_at),
        ),
        fig(
            "processing",
            "delivery_latency_p50_secs",
            "Delivery latency, median",
            Amount(p.delivery_latency_p50_secs, "s"),
        ),
        fig(
            "processing",
            "delivery_latency_p95_secs",
            "Delivery latency, 95th percentile",
            Amount(p.delivery_latency_p95_secs, "s"),
        ),
        fig(
            "processing",
            "submission_wait_p50_secs",
            "Wait from fan-out to first submission, median",
            Amount(p.submission_wait_p50_secs, "s"),
        ),
        fig(
            "processing",
            "submission_wait_p95_secs",
            "Wait from fan-out to first submission, 95th percentile",
            Amount(p.submission_wait_p95_secs, "s"),
        ),
        fig(
            "processing",
            "check_error_rate",
            "Balance-check error rate",
            Percent(p.check_error_rate),
        ),
        fig(
            "processing",
            "submission_reject_rate",
            "Submission reject rate",
            Percent(p.submission_reject_rate),
        ),
    ]);
    for (i, line) in r.recommendations.iter().enumerate() {
        let n = (i + 1).to_string();
        out.push(fig("recommendations", &n, &n, Text(line.clone())));
    }
    out
}

/// The delivery section: machine key, label, count.
fn delivery_counts(r: &MonthlyReport) -> [(&'static str, &'static str, u64); 17] {
    let d = &r.delivery;
    [
        ("qualified", "Qualified customers", d.qualified),
        ("notifications", "Notifications", d.notifications),
        ("submitted", "Submitted at least once", d.submitted),
        ("delivered", "Delivered", d.delivered),
        ("failed", "Failed", d.failed),
        ("undeliverable", "Undeliverable", d.undeliverable),
        ("pending", "Pending (in flight)", d.pending),
        ("opted_out", "Opted out", d.opted_out),
        ("cancelled", "Cancelled", d.cancelled),
        ("messages_sent", "Messages sent", d.messages_sent),
        (
            "delivered_first_attempt",
            "Delivered at the first attempt",
            d.delivered_first_attempt,
        ),
        ("segments_total", "SMS segments", d.segments_total),
        (
            "in_doubt_adopted",
            "Submissions in doubt, adopted (the carrier had them)",
            d.in_doubt_adopted,
        ),
        (
            "in_doubt_resubmitted",
            "Submissions in doubt, sent again (no evidence)",
            d.in_doubt_resubmitted,
        ),
        (
            "in_doubt_abandoned",
            "Submissions in doubt, not sent again (opted out)",
            d.in_doubt_abandoned,
        ),
        (
            "foreign_reports",
            "Delivery reports about another message (flagged)",
            d.foreign_reports,
        ),
        (
            "content_filtered",
            "Filtered by the carrier for content (30007)",
            d.content_filtered,
        ),
    ]
}

/// Where each notification ended (or that it has not yet): the outcome chart of every export.
fn outcomes(r: &MonthlyReport) -> [(&'static str, u64, &'static str); 6] {
    let d = &r.delivery;
    [
        ("Delivered", d.delivered, "#2e7d32"),
        ("Failed", d.failed, "#c62828"),
        ("Undeliverable", d.undeliverable, "#ef6c00"),
        ("Pending", d.pending, "#1565c0"),
        ("Opted out", d.opted_out, "#757575"),
        ("Cancelled", d.cancelled, "#424242"),
    ]
}

fn named(section: &'static str, items: &[NameCount]) -> Vec<Figure> {
    items
        .iter()
        .map(|i| fig(section, &i.name, &i.name, Value::Count(i.count)))
        .collect()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

// --- CSV -----------------------------------------------------------------------------------------

/// The daily table's columns, shared by the CSV and the XLSX.
const DAILY_COLUMNS: [&str; 8] = [
    "date",
    "checked",
    "passed",
    "below_threshold",
    "missing",
    "not_found",
    "invalid",
    "pass_rate",
];

/// The report as CSV (RFC 4180: CRLF line ends, fields quoted when they hold a comma, a quote or
/// a line break). First `section,metric,value` rows, then after an empty line the daily table
/// with its own header. Percentages are plain numbers (`12.50` for 12.5 %), times RFC 3339 UTC,
/// absent values empty.
pub fn csv(r: &MonthlyReport) -> String {
    let mut out = String::new();
    csv_line(&mut out, &["section", "metric", "value"]);
    for f in figures(r) {
        let value = match f.value {
            Value::Count(n) => n.to_string(),
            Value::Percent(p) => p.to_string(),
            Value::Amount(a, _) => a.map(|a| a.to_string()).unwrap_or_default(),
            Value::Time(t) => t.map(rfc3339).unwrap_or_default(),
            Value::Text(t) => t,
        };
        csv_line(&mut out, &[f.section, &f.metric, &value]);
    }
    out.push_str("\r\n");
    csv_line(&mut out, &DAILY_COLUMNS);
    for d in &r.daily {
        csv_line(
            &mut out,
            &[
                &d.date.to_string(),
                &d.checked.to_string(),
                &d.passed.to_string(),
                &d.below_threshold.to_string(),
                &d.missing.to_string(),
                &d.not_found.to_string(),
                &d.invalid.to_string(),
                &d.pass_rate.to_string(),
            ],
        );
    }
    out
}

fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_field(field));
    }
    out.push_str("\r\n");
}

/// One field, quoted per RFC 4180 when needed. Text that a spreadsheet would run as a formula
/// (`=`, `+`, `-`, `@` first: carrier error codes are outside input) gets a leading `'`; no
/// figure of ours starts that way (counts and rates are never negative).
fn csv_field(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

// --- XLSX ----------------------------------------------------------------------------------------

/// Cell formats of the workbook.
struct Formats {
    title: Format,
    header: Format,
    count: Format,
    percent: Format,
    amount: Format,
    time: Format,
    date: Format,
    wrap: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            title: Format::new().set_bold().set_font_size(14),
            header: Format::new()
                .set_bold()
                .set_font_color(Color::White)
                .set_background_color(Color::RGB(0x1F3A5F))
                .set_border_bottom(FormatBorder::Thin),
            count: Format::new().set_num_format("#,##0"),
            percent: Format::new().set_num_format("0.00%"),
            amount: Format::new().set_num_format("#,##0.0#"),
            time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss \"UTC\""),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            wrap: Format::new().set_text_wrap(),
        }
    }
}

/// The report as an Excel workbook: sheets Summary (with processing and recommendations),
/// Qualification, Daily, Delivery and Failures; percentages are stored as fractions with a `%`
/// format, times as Excel date-times in UTC, and native charts show the daily pass rate, the
/// reasons for non-qualification and the delivery outcomes.
pub fn xlsx(r: &MonthlyReport) -> anyhow::Result<Vec<u8>> {
    let fmt = Formats::new();
    let all = figures(r);
    let mut book = Workbook::new();
    book.push_worksheet(summary_sheet(r, &all, &fmt)?);
    book.push_worksheet(qualification_sheet(r, &all, &fmt)?);
    book.push_worksheet(daily_sheet(r, &fmt)?);
    book.push_worksheet(delivery_sheet(r, &fmt)?);
    book.push_worksheet(failures_sheet(r, &fmt)?);
    Ok(book.save_to_buffer()?)
}

fn sheet(name: &str) -> anyhow::Result<Worksheet> {
    let mut ws = Worksheet::new();
    ws.set_name(name)?;
    Ok(ws)
}

fn headers(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    names: &[&str],
    fmt: &Formats,
) -> anyhow::Result<()> {
    for (i, name) in (col..).zip(names) {
        ws.write_string_with_format(row, i, *name, &fmt.header)?;
    }
    Ok(())
}

/// `n` as an Excel number (Excel holds every count this report can have exactly: < 2^53).
fn number(n: u64) -> f64 {
    n as f64
}

/// A percentage (`12.50`) as the fraction Excel's `%` format expects (`0.125`).
fn fraction(p: Decimal) -> f64 {
    (p / Decimal::ONE_HUNDRED).to_f64().unwrap_or_default()
}

fn excel_time(t: DateTime<Utc>) -> anyhow::Result<ExcelDateTime> {
    Ok(ExcelDateTime::parse_from_str(
        &t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )?)
}

/// Writes `value` at (`row`, `col`) with the format its kind calls for.
fn write_value(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    value: &Value,
    fmt: &Formats,
) -> anyhow::Result<()> {
    match value {
        Value::Count(n) => {
            ws.write_number_with_format(row, col, number(*n), &fmt.count)?;
        }
        Value::Percent(p) => {
            ws.write_number_with_format(row, col, fraction(*p), &fmt.percent)?;
        }
        Value::Amount(Some(a), _) => {
            ws.write_number_with_format(row, col, a.to_f64().unwrap_or_default(), &fmt.amount)?;
        }
        Value::Time(Some(t)) => {
            ws.write_datetime_with_format(row, col, excel_time(*t)?, &fmt.time)?;
        }
        Value::Amount(None, _) | Value::Time(None) => {}
        Value::Text(t) => {
            ws.write_string_with_format(row, col, t, &fmt.wrap)?;
        }
    }
    Ok(())
}

/// A two-column Metric/Value table of the figures in `sections` from `row`; returns the next
/// free row.
fn figure_table(
    ws: &mut Worksheet,
    mut row: u32,
    all: &[Figure],
    sections: &[&str],
    fmt: &Formats,
) -> anyhow::Result<u32> {
    headers(ws, row, 0, &["Metric", "Value", "Unit"], fmt)?;
    row += 1;
    for f in all.iter().filter(|f| sections.contains(&f.section)) {
        ws.write_string(row, 0, &f.label)?;
        write_value(ws, row, 1, &f.value, fmt)?;
        if let Value::Amount(_, unit) = f.value {
            ws.write_string(row, 2, unit)?;
        }
        row += 1;
    }
    Ok(row + 1)
}

fn summary_sheet(r: &MonthlyReport, all: &[Figure], fmt: &Formats) -> anyhow::Result<Worksheet> {
    let mut ws = sheet("Summary")?;
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Premium customer notifications: {} {}",
            r.month.english_name(),
            r.month.year()
        ),
        &fmt.title,
    )?;
    let mut row = figure_table(&mut ws, 2, all, &["report", "summary"], fmt)?;
    ws.write_string_with_format(row, 0, "System performance", &fmt.title)?;
    row = figure_table(&mut ws, row + 1, all, &["processing"], fmt)?;
    ws.write_string_with_format(row, 0, "Recommendations", &fmt.title)?;
    row += 1;
    for line in &r.recommendations {
        ws.merge_range(row, 0, row, 2, line, &fmt.wrap)?;
        ws.set_row_height(row, 30)?;
        row += 1;
    }
    ws.set_column_width(0, 34)?;
    ws.set_column_width(1, 26)?;
    ws.set_column_width(2, 40)?;
    Ok(ws)
}

fn qualification_sheet(
    r: &MonthlyReport,
    all: &[Figure],
    fmt: &Formats,
) -> anyhow::Result<Worksheet> {
    let mut ws = sheet("Qualification")?;
    let row = figure_table(&mut ws, 0, all, &["qualification"], fmt)?;
    headers(
        &mut ws,
        row,
        0,
        &["Reason not qualified", "Customers", "% of decided"],
        fmt,
    )?;
    let first = row + 1;
    for (i, reason) in (first..).zip(&r.qualification.reasons) {
        ws.write_string(i, 0, &reason.reason)?;
        ws.write_number_with_format(i, 1, number(reason.count), &fmt.count)?;
        ws.write_number_with_format(i, 2, fraction(reason.percent), &fmt.percent)?;
    }
    if let Some(last) = last_row(first, r.qualification.reasons.len()) {
        let mut chart = Chart::new(ChartType::Bar);
        chart
            .add_series()
            .set_name("Customers")
            .set_categories(("Qualification", first, 0, last, 0))
            .set_values(("Qualification", first, 1, last, 1));
        chart.title().set_name("Reasons for non-qualification");
        chart.legend().set_hidden();
        chart.y_axis().set_reverse();
        ws.insert_chart(0, 5, &chart)?;
    }
    ws.set_column_width(0, 30)?;
    ws.set_column_width(1, 14)?;
    ws.set_column_width(2, 14)?;
    Ok(ws)
}

/// The last row of `len` data rows starting at `first`, or `None` when there are none.
fn last_row(first: u32, len: usize) -> Option<u32> {
    let len = u32::try_from(len).ok()?;
    (len > 0).then(|| first + len - 1)
}

fn daily_sheet(r: &MonthlyReport, fmt: &Formats) -> anyhow::Result<Worksheet> {
    let mut ws = sheet("Daily")?;
    headers(
        &mut ws,
        0,
        0,
        &[
            "Date",
            "Checked",
            "Passed",
            "Below threshold",
            "Missing",
            "Not found",
            "Invalid",
            "Pass rate",
        ],
        fmt,
    )?;
    for (row, d) in (1..).zip(&r.daily) {
        let date = ExcelDateTime::parse_from_str(&d.date.format("%Y-%m-%d").to_string())?;
        ws.write_datetime_with_format(row, 0, date, &fmt.date)?;
        for (col, n) in (1..).zip([
            d.checked,
            d.passed,
            d.below_threshold,
            d.missing,
            d.not_found,
            d.invalid,
        ]) {
            ws.write_number_with_format(row, col, number(n), &fmt.count)?;
        }
        ws.write_number_with_format(row, 7, fraction(d.pass_rate), &fmt.percent)?;
    }
    if let Some(last) = last_row(1, r.daily.len()) {
        let mut chart = Chart::new(ChartType::Line);
        chart
            .add_series()
            .set_name("Pass rate")
            .set_marker(
                ChartMarker::new()
                    .set_type(ChartMarkerType::Circle)
                    .set_size(5),
            )
            .set_categories(("Daily", 1, 0, last, 0))
            .set_values(("Daily", 1, 7, last, 7));
        chart.title().set_name("Daily pass rate");
        chart.legend().set_hidden();
        chart.y_axis().set_num_format("0%").set_max(1);
        chart.x_axis().set_num_format("dd");
        chart.set_width(720);
        ws.insert_chart(1, 9, &chart)?;
    }
    ws.set_freeze_panes(1, 0)?;
    ws.set_column_width(0, 12)?;
    for col in 1..=7 {
        ws.set_column_width(col, 15)?;
    }
    Ok(ws)
}

fn delivery_sheet(r: &MonthlyReport, fmt: &Formats) -> anyhow::Result<Worksheet> {
    let mut ws = sheet("Delivery")?;
    headers(&mut ws, 0, 0, &["Metric", "Count"], fmt)?;
    let mut row = 1;
    for (_, label, n) in delivery_counts(r) {
        ws.write_string(row, 0, label)?;
        ws.write_number_with_format(row, 1, number(n), &fmt.count)?;
        row += 1;
    }
    row += 1;
    headers(
        &mut ws,
        row,
        0,
        &["Outcome", "Notifications", "% of notifications"],
        fmt,
    )?;
    let first = row + 1;
    for (i, (label, n, _)) in (first..).zip(outcomes(r)) {
        ws.write_string(i, 0, label)?;
        ws.write_number_with_format(i, 1, number(n), &fmt.count)?;
        let share = percent(n, r.delivery.notifications);
        ws.write_number_with_format(i, 2, fraction(share), &fmt.percent)?;
    }
    let last = first + 5;
    let mut chart = Chart::new(ChartType::Column);
    chart
        .add_series()
        .set_name("Notifications")
        .set_categories(("Delivery", first, 0, last, 0))
        .set_values(("Delivery", first, 1, last, 1));
    chart.title().set_name("Delivery outcomes");
    chart.legend().set_hidden();
    ws.insert_chart(0, 4, &chart)?;
    ws.set_column_width(0, 32)?;
    ws.set_column_width(1, 14)?;
    ws.set_column_width(2, 18)?;
    Ok(ws)
}

fn failures_sheet(r: &MonthlyReport, fmt: &Formats) -> anyhow::Result<Worksheet> {
    let mut ws = sheet("Failures")?;
    headers(&mut ws, 0, 0, &["Failure category", "Notifications"], fmt)?;
    for (row, c) in (1..).zip(&r.failure_categories) {
        ws.write_string(row, 0, &c.name)?;
        ws.write_number_with_format(row, 1, number(c.count), &fmt.count)?;
    }
    headers(&mut ws, 0, 3, &["Carrier error code", "Attempts"], fmt)?;
    for (row, c) in (1..).zip(&r.top_error_codes) {
        ws.write_string(row, 3, &c.name)?;
        ws.write_number_with_format(row, 4, number(c.count), &fmt.count)?;
    }
    ws.set_column_width(0, 24)?;
    ws.set_column_width(1, 14)?;
    ws.set_column_width(2, 4)?;
    headers(
        &mut ws,
        0,
        6,
        &["Carrier", "Attempts", "Accepted", "Delivered", "Failed"],
        fmt,
    )?;
    for (row, c) in (1..).zip(&r.carriers) {
        ws.write_string(row, 6, &c.carrier)?;
        for (col, n) in (7..).zip([c.attempts, c.accepted, c.delivered, c.failed]) {
            ws.write_number_with_format(row, col, number(n), &fmt.count)?;
        }
    }
    ws.set_column_width(3, 22)?;
    ws.set_column_width(4, 12)?;
    ws.set_column_width(5, 4)?;
    ws.set_column_width(6, 14)?;
    Ok(ws)
}

// --- HTML ----------------------------------------------------------------------------------------

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
    let reasons: Vec<Bar> = r
        .qualification
        .reasons
        .iter()
        .map(|x| Bar {
            label: words(&x.reason),
            count: x.count,
            note: format!("{}%", x.percent),
            color: "#8e24aa",
        })
        .collect();
    hbars(&mut h, "Reasons for non-qualification", &reasons);
    h.push_str("</div></div>\n</section>\n");

    section_start(&mut h, "Daily balance checks");
    pass_rate_chart(&mut h, r);
    daily_table(&mut h, r);
    h.push_str("</section>\n");

    section_start(&mut h, "SMS delivery");
    h.push_str("<div class=\"cols\"><div>");
    figure_rows(&mut h, &all, &["delivery"]);
    h.push_str("</div><div><h3>Where the notifications ended</h3>");
    let bars: Vec<Bar> = outcomes(r)
        .iter()
        .map(|&(label, count, color)| Bar {
            label: label.to_owned(),
            count,
            note: format!("{}%", percent(count, r.delivery.notifications)),
            color,
        })
        .collect();
    hbars(&mut h, "Delivery outcomes", &bars);
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
fn words(code: &str) -> String {
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
fn grouped(n: u64) -> String {
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

fn time_text(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

fn value_text(v: &Value) -> String {
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
    let s = &r.summary;
    let tiles = [
        (
            "Customers monitored",
            grouped(s.customers_monitored),
            format!("{} days with balance checks", r.processing.days_swept),
        ),
        (
            "Qualified",
            format!("{}%", s.qualification_rate),
            format!(
                "{} of {} decided",
                grouped(s.qualified),
                grouped(s.customers_monitored)
            ),
        ),
        (
            "Delivered",
            format!("{}%", s.delivery_rate),
            format!(
                "{} of {} submitted",
                grouped(s.delivered),
                grouped(r.delivery.submitted)
            ),
        ),
        (
            "Pending",
            grouped(r.delivery.pending),
            "notifications still in flight".to_owned(),
        ),
    ];
    h.push_str("<div class=\"kpis\">\n");
    for (label, value, note) in tiles {
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

/// One horizontal bar.
struct Bar {
    label: String,
    count: u64,
    note: String,
    color: &'static str,
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
    let worst = r
        .daily
        .iter()
        .map(|d| d.pass_rate)
        .min()
        .unwrap_or(Decimal::ONE_HUNDRED);
    let floor = [95, 90, 80, 50, 0]
        .into_iter()
        .find(|f| Decimal::from(*f) < worst)
        .unwrap_or(0);
    let step = match floor {
        95 => 1,
        90 => 2,
        80 => 5,
        50 => 10,
        _ => 20,
    };
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
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn csv_quotes_commas_and_quotes_and_ends_lines_with_crlf() {
        let text = csv(&sample());
        assert!(text.starts_with("section,metric,value\r\nreport,month,2026-10\r\n"));
        assert!(text.contains("report,generated_at,2026-11-03T06:30:00Z\r\n"));
        assert!(text.contains("summary,qualification_rate,90.00\r\n"));
        assert!(text.contains("failure_categories,\"<script>\"\"x\"\",y\",2\r\n"));
        assert!(text.contains("qualification,threshold,10000.00\r\n"));
        assert!(text.contains("processing,last_final_at,\r\n"));
        assert!(text.contains(
            "\r\n\r\ndate,checked,passed,below_threshold,missing,not_found,invalid,pass_rate\r\n"
        ));
        assert!(text.contains("2026-10-03,1000,950,8,40,1,1,95.00\r\n"));
        // Every line has the fields its header promises (no stray unquoted comma).
        for line in text.split("\r\n").take_while(|l| !l.is_empty()) {
            let plain = line.replace("\"\"", "");
            let commas = plain
                .split('"')
                .step_by(2)
                .map(|s| s.matches(',').count())
                .sum::<usize>();
            assert_eq!(commas, 2, "{line}");
        }
    }

    #[test]
    fn csv_defuses_formulas() {
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
        assert_eq!(csv_field("12.50"), "12.50");
    }

    #[test]
    fn xlsx_is_a_zip_with_the_five_sheets() {
        let bytes = xlsx(&sample()).unwrap();
        assert!(bytes.starts_with(b"PK\x03\x04"));
        assert!(bytes.len() > 5_000);
        let text = String::from_utf8_lossy(&bytes);
        // Part names are stored uncompressed in the zip directory.
        assert!(text.contains("xl/worksheets/sheet5.xml"));
        assert!(text.contains("xl/charts/chart3.xml"));
    }

    #[test]
    fn xlsx_of_an_empty_month_still_opens() {
        let mut r = sample();
        r.daily.clear();
        r.qualification.reasons.clear();
        r.failure_categories.clear();
        r.top_error_codes.clear();
        let bytes = xlsx(&r).unwrap();
        assert!(bytes.starts_with(b"PK"));
    }

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
