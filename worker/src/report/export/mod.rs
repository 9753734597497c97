//! The report as files: CSV for scripts, XLSX for spreadsheets, one HTML page for people, and an
//! A4 PDF to print.
//!
//! All three render the same figures from a [`MonthlyReport`]; the CSV and the HTML tables walk
//! the same list of [`Figure`]s so they never disagree on what a section holds.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

use super::{MonthlyReport, NameCount};

mod csv;
mod html;
mod pdf;
mod xlsx;

pub use csv::csv;
pub use html::html;
pub use pdf::pdf;
pub use xlsx::xlsx;

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

/// One headline tile of the HTML and PDF exports: label, figure, and a note under it (`short` for
/// the PDF's narrower tiles).
struct Kpi {
    label: &'static str,
    value: String,
    note: String,
    short: String,
}

/// The four headline tiles, in order.
fn kpis(r: &MonthlyReport) -> [Kpi; 4] {
    use html::grouped;
    let s = &r.summary;
    let of = |part: u64, whole: u64| format!("{} of {}", grouped(part), grouped(whole));
    [
        Kpi {
            label: "Customers monitored",
            value: grouped(s.customers_monitored),
            note: format!("{} days with balance checks", r.processing.days_swept),
            short: format!("{} days with checks", r.processing.days_swept),
        },
        Kpi {
            label: "Qualified",
            value: format!("{}%", s.qualification_rate),
            note: format!("{} decided", of(s.qualified, s.customers_monitored)),
            short: of(s.qualified, s.customers_monitored),
        },
        Kpi {
            label: "Delivered",
            value: format!("{}%", s.delivery_rate),
            note: format!("{} submitted", of(s.delivered, r.delivery.submitted)),
            short: format!("{} submitted", of(s.delivered, r.delivery.submitted)),
        },
        Kpi {
            label: "Pending",
            value: grouped(r.delivery.pending),
            note: "notifications still in flight".to_owned(),
            short: "still in flight".to_owned(),
        },
    ]
}

/// One bar of a horizontal bar chart: the HTML and PDF exports draw the same bars.
struct Bar {
    label: String,
    count: u64,
    note: String,
    color: &'static str,
}

/// The reasons for non-qualification, as bars.
fn reason_bars(r: &MonthlyReport) -> Vec<Bar> {
    r.qualification
        .reasons
        .iter()
        .map(|x| Bar {
            label: html::words(&x.reason),
            count: x.count,
            note: format!("{}%", x.percent),
            color: "#8e24aa",
        })
        .collect()
}

/// Where the notifications ended, as bars with their share of all notifications.
fn outcome_bars(r: &MonthlyReport) -> Vec<Bar> {
    outcomes(r)
        .iter()
        .map(|&(label, count, color)| Bar {
            label: label.to_owned(),
            count,
            note: format!("{}%", super::percent(count, r.delivery.notifications)),
            color,
        })
        .collect()
}

/// The daily pass-rate chart's y axis: its lowest tick (the first of 95, 90, 80, 50, 0 below the
/// worst day, so every bar shows) and the step between ticks.
fn pass_rate_axis(r: &MonthlyReport) -> (i64, i64) {
    let worst = r
        .daily
        .iter()
        .map(|d| d.pass_rate)
        .min()
        .unwrap_or(Decimal::ONE_HUNDRED);
    let floor: i64 = [95, 90, 80, 50, 0]
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
    (floor, step)
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
