//! The report as an Excel workbook: one sheet per part of the report, with native charts.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive as _;
use rust_xlsxwriter::{
    Chart, ChartMarker, ChartMarkerType, ChartType, Color, ExcelDateTime, Format, FormatBorder,
    Workbook, Worksheet,
};

use super::{Figure, Value, delivery_counts, figures, outcomes};
use crate::report::{MonthlyReport, percent};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

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
}
