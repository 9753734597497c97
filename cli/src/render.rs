//! Readable output: each response as aligned `key  value` lines and tables.
//!
//! Over 600 lines on purpose: one readable renderer per response message of the control API, kept
//! together so every table and field reads alike.

use std::fmt::Write as _;

use pcn_proto::v1::{
    AuditEntry, CategoryCount, CheckOutcome, Customer, GetCustomerResponse, Month,
    MonthActionResponse, MonthPhase, MonthlyReport, Notification, NotificationCounts,
    NotificationStatus, Qualification, QualificationCounts, QualificationReason, ReportDelivery,
    ReportDeliveryStatus, RetryNotificationResponse, SendReportResponse, StartMonthResponse,
};

use crate::enums::name;
use crate::table::{Table, pairs};

/// Empty strings print as `-` so table columns stay readable.
fn dash(value: &str) -> String {
    if value.is_empty() {
        "-".to_owned()
    } else {
        value.to_owned()
    }
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

fn percent(value: &str) -> String {
    if value.is_empty() {
        "-".to_owned()
    } else {
        format!("{value}%")
    }
}

/// A titled block, separated from what comes before by a blank line.
fn section(out: &mut String, title: &str, body: &str) {
    let _ = write!(out, "\n{title}\n{body}");
}

fn table_or_none(table: &Table) -> String {
    if table.is_empty() {
        "(none)\n".to_owned()
    } else {
        table.to_string()
    }
}

/// Non-zero counts as `label n, label n`, or `none`.
fn breakdown(counts: &[(&str, u64)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `month start`.
pub fn start_month(r: &StartMonthResponse) -> String {
    let mut out = pairs(&[
        ("started", r.month.clone()),
        ("workflow", r.workflow_id.clone()),
        ("run id", r.run_id.clone()),
        ("backfill", yes_no(r.backfill)),
    ]);
    if r.backfill {
        out.push_str("The month is over: its days are swept at once.\n");
    }
    out
}

/// `month pause|resume|cancel`.
pub fn month_action(action: &str, r: &MonthActionResponse) -> String {
    format!(
        "{action} of {} accepted (phase was {}); the run applies it shortly.\n",
        r.month,
        name::<MonthPhase>(r.phase_before)
    )
}

fn qualification_counts(c: &QualificationCounts) -> String {
    format!(
        "{} (qualified {}; not qualified: {})",
        c.decided,
        c.qualified,
        breakdown(&[
            ("not monitored whole month", c.not_monitored_whole_month),
            ("below threshold", c.below_threshold),
            ("account not found", c.account_not_found),
            ("invalid response", c.invalid_response),
            ("missing data", c.missing_data),
        ])
    )
}

/// Notifications in a final status: they will not change without an operator.
pub fn final_notifications(c: &NotificationCounts) -> u64 {
    c.delivered + c.failed + c.undeliverable + c.opted_out + c.cancelled
}

fn notification_counts(c: &NotificationCounts) -> String {
    format!(
        "{} ({})",
        c.total,
        breakdown(&[
            ("pending", c.pending),
            ("waiting window", c.waiting_window),
            ("submitted", c.submitted),
            ("retry wait", c.retry_wait),
            ("delivered", c.delivered),
            ("failed", c.failed),
            ("undeliverable", c.undeliverable),
            ("opted out", c.opted_out),
            ("cancelled", c.cancelled),
        ])
    )
}

/// `month get`.
pub fn month(m: &Month) -> String {
    let mut rows = vec![
        ("month", m.month.clone()),
        ("phase", name::<MonthPhase>(m.phase)),
    ];
    if !m.blocked_reason.is_empty() {
        rows.push(("blocked", m.blocked_reason.clone()));
    }
    if !m.degraded.is_empty() {
        rows.push(("note", m.degraded.clone()));
    }
    rows.extend([
        ("workflow", dash(&m.workflow_id)),
        ("run id", dash(&m.run_id)),
        ("days swept", format!("{} of {}", m.days_done, m.days_total)),
    ]);
    if !m.next_check_at.is_empty() {
        rows.push(("next check", m.next_check_at.clone()));
    }
    if let Some(q) = &m.qualification {
        rows.push(("decided", qualification_counts(q)));
    }
    if let Some(n) = &m.notifications {
        rows.push(("notifications", notification_counts(n)));
    }
    rows.extend([(
        "fan-out",
        format!("{} SMS workflows started", m.fanout_started),
    )]);
    for b in &m.carriers {
        let state = match pcn_proto::v1::BreakerState::try_from(b.state) {
            Ok(pcn_proto::v1::BreakerState::Open) => "OPEN",
            Ok(pcn_proto::v1::BreakerState::HalfOpen) => "half-open",
            Ok(pcn_proto::v1::BreakerState::Closed) => "closed",
            _ => "unknown",
        };
        rows.push((
            "carrier breaker",
            format!(
                "{} {state} since {} ({})",
                b.carrier, b.changed_at, b.worker
            ),
        ));
    }
    rows.push(("as of", dash(&m.as_of)));
    let mut out = pairs(&rows);
    if !m.days.is_empty() {
        let mut days = Table::new(&[
            "DATE",
            "CHECKED",
            "PASSED",
            "BELOW",
            "MISSING",
            "NOT_FOUND",
            "INVALID",
        ]);
        for d in &m.days {
            days.push(vec![
                d.date.clone(),
                d.checked.to_string(),
                d.passed.to_string(),
                d.below_threshold.to_string(),
                d.missing.to_string(),
                d.not_found.to_string(),
                d.invalid.to_string(),
            ]);
        }
        section(&mut out, "Days", &days.to_string());
    }
    out
}

fn qualifications_table(items: &[Qualification], with_customer: bool) -> Table {
    let first = if with_customer { "CUSTOMER" } else { "MONTH" };
    let mut table = Table::new(&[
        first,
        "QUALIFIED",
        "REASON",
        "DAYS",
        "PASSED",
        "BELOW",
        "MISSING",
        "NOT_FOUND",
        "INVALID",
        "THRESHOLD",
        "DECIDED_AT",
    ]);
    for q in items {
        table.push(vec![
            if with_customer {
                q.customer_id.clone()
            } else {
                q.month.clone()
            },
            yes_no(q.qualified),
            name::<QualificationReason>(q.reason),
            q.days_in_month.to_string(),
            q.days_passed.to_string(),
            q.days_below.to_string(),
            q.days_missing.to_string(),
            q.days_not_found.to_string(),
            q.days_invalid.to_string(),
            dash(&q.threshold),
            dash(&q.decided_at),
        ]);
    }
    table
}

/// The hint under a listing that has more pages.
pub fn next_page(token: &str) -> String {
    if token.is_empty() {
        String::new()
    } else {
        format!("(more: --page-token {token}, or --all)\n")
    }
}

/// `qualifications list`.
pub fn qualifications(items: &[Qualification], next_page_token: &str) -> String {
    table_or_none(&qualifications_table(items, true)) + &next_page(next_page_token)
}

/// `customer opt-out|opt-in`, and the profile of `customer get`.
pub fn customer(c: &Customer) -> String {
    pairs(&[
        ("customer", c.customer_id.clone()),
        ("account", dash(&c.account_id)),
        ("first name", dash(&c.first_name)),
        ("phone", dash(&c.phone)),
        ("language", dash(&c.language)),
        ("opted out", yes_no(c.opted_out)),
        ("active", yes_no(c.active)),
        ("monitored since", dash(&c.monitored_since)),
        ("updated at", dash(&c.updated_at)),
    ])
}

fn notifications_table(items: &[Notification], with_customer: bool) -> Table {
    let first = if with_customer { "CUSTOMER" } else { "MONTH" };
    let mut table = Table::new(&[
        first,
        "STATUS",
        "ATTEMPTS",
        "RETRIES",
        "LANG",
        "SEGMENTS",
        "FAILURE",
        "DETAIL",
        "UPDATED_AT",
    ]);
    for n in items {
        table.push(vec![
            if with_customer {
                n.customer_id.clone()
            } else {
                n.month.clone()
            },
            name::<NotificationStatus>(n.status),
            n.attempts.to_string(),
            n.manual_retries.to_string(),
            dash(&n.language),
            n.segments.to_string(),
            dash(&n.failure_category),
            dash(&n.detail),
            dash(&n.updated_at),
        ]);
    }
    table
}

/// `customer get`.
pub fn customer_details(r: &GetCustomerResponse) -> String {
    let mut out = r.customer.as_ref().map(customer).unwrap_or_default();

    let mut checks = Table::new(&[
        "DATE",
        "OUTCOME",
        "AMOUNT",
        "THRESHOLD",
        "DETAIL",
        "FETCHED_AT",
    ]);
    for c in &r.checks {
        checks.push(vec![
            c.date.clone(),
            name::<CheckOutcome>(c.outcome),
            dash(&c.amount),
            dash(&c.threshold),
            dash(&c.detail),
            dash(&c.fetched_at),
        ]);
    }
    let title = if r.checks_month.is_empty() {
        "Daily checks".to_owned()
    } else {
        format!("Daily checks of {}", r.checks_month)
    };
    section(&mut out, &title, &table_or_none(&checks));
    section(
        &mut out,
        "Decisions",
        &table_or_none(&qualifications_table(&r.qualifications, false)),
    );
    let mut consent = Table::new(&["AT", "OPTED_OUT", "SOURCE", "ACTOR", "REASON"]);
    for e in &r.consent {
        consent.push(vec![
            dash(&e.occurred_at),
            yes_no(e.opted_out),
            dash(&e.source),
            dash(&e.actor),
            dash(&e.reason),
        ]);
    }
    section(&mut out, "Consent history", &table_or_none(&consent));
    section(
        &mut out,
        "Notifications",
        &table_or_none(&notifications_table(&r.notifications, false)),
    );
    for n in r
        .notifications
        .iter()
        .filter(|n| !n.sms_attempts.is_empty())
    {
        let mut attempts = Table::new(&[
            "#",
            "MESSAGE_REF",
            "CARRIER",
            "CARRIER_ID",
            "STATUS",
            "ERROR",
            "FAILURE",
            "SUBMITTED_AT",
            "FINISHED_AT",
        ]);
        for a in &n.sms_attempts {
            attempts.push(vec![
                a.attempt.to_string(),
                dash(&a.message_ref),
                dash(&a.carrier),
                dash(&a.carrier_message_id),
                dash(&a.status),
                dash(&a.error_code),
                dash(&a.failure_category),
                dash(&a.submitted_at),
                dash(&a.finished_at),
            ]);
        }
        section(
            &mut out,
            &format!("Attempts of {}", n.workflow_id),
            &attempts.to_string(),
        );
    }
    out
}

/// `notifications list`.
pub fn notifications(items: &[Notification], next_page_token: &str) -> String {
    table_or_none(&notifications_table(items, true)) + &next_page(next_page_token)
}

/// `notifications cancel`, and the notification of a retry.
pub fn notification(n: &Notification) -> String {
    pairs(&[
        ("notification", n.workflow_id.clone()),
        ("status", name::<NotificationStatus>(n.status)),
        ("attempts", n.attempts.to_string()),
        ("manual retries", n.manual_retries.to_string()),
        ("failure", dash(&n.failure_category)),
        ("detail", dash(&n.detail)),
        ("updated at", dash(&n.updated_at)),
    ])
}

/// `notifications retry`.
pub fn retry(request_id: &str, r: &RetryNotificationResponse) -> String {
    let mut out = pairs(&[
        ("request id", request_id.to_owned()),
        (
            "replayed",
            if r.replayed {
                "yes (this request id was seen before; nothing was sent this time)".to_owned()
            } else {
                "no".to_owned()
            },
        ),
        ("attempt", r.attempt.to_string()),
        ("run id", dash(&r.run_id)),
    ]);
    if let Some(n) = &r.notification {
        out.push('\n');
        out.push_str(&notification(n));
    }
    out
}

fn categories(items: &[CategoryCount], header: &str) -> String {
    let mut table = Table::new(&[header, "COUNT"]);
    for c in items {
        table.push(vec![c.name.clone(), c.count.to_string()]);
    }
    table_or_none(&table)
}

/// `report send`: what changed, then the month's report emails.
pub fn send_report(r: &SendReportResponse) -> String {
    let mut out = pairs(&[
        ("queued now", r.queued.to_string()),
        ("failed, due again now", r.retried.to_string()),
        ("in doubt, sent again", r.resent.to_string()),
    ]);
    out.push('\n');
    out.push_str(&report_deliveries(&r.deliveries));
    out
}

/// `report deliveries` (and the table of `report send`).
pub fn report_deliveries(deliveries: &[ReportDelivery]) -> String {
    let mut table = Table::new(&[
        "RECIPIENT",
        "STATUS",
        "REQUEST",
        "ATTEMPTS",
        "SENT_AT",
        "NEXT_ATTEMPT_AT",
        "LAST_ERROR",
    ]);
    for d in deliveries {
        let status = name::<ReportDeliveryStatus>(d.status);
        let next = if status == "PENDING" || status == "FAILED" {
            d.next_attempt_at.clone()
        } else {
            String::new()
        };
        table.push(vec![
            d.recipient.clone(),
            status,
            d.request.to_string(),
            d.attempts.to_string(),
            dash(&d.sent_at),
            dash(&next),
            dash(&d.last_error),
        ]);
    }
    table_or_none(&table)
}

/// `report show`.
pub fn report(r: &MonthlyReport) -> String {
    let mut out = format!(
        "Monthly report {} (generated at {})\n",
        r.month,
        dash(&r.generated_at)
    );
    if let Some(s) = &r.summary {
        let body = pairs(&[
            ("customers monitored", s.customers_monitored.to_string()),
            (
                "qualified",
                format!("{} ({})", s.qualified, percent(&s.qualification_rate)),
            ),
            ("notifications", s.notifications.to_string()),
            (
                "delivered",
                format!(
                    "{} ({} of submitted)",
                    s.delivered,
                    percent(&s.delivery_rate)
                ),
            ),
        ]);
        section(&mut out, "Summary", &body);
    }
    if let Some(q) = &r.qualification {
        let mut body = pairs(&[
            ("threshold", format!("{} NIS", dash(&q.threshold))),
            ("decided", q.decided.to_string()),
            ("qualified", q.qualified.to_string()),
            ("not qualified", q.not_qualified.to_string()),
            ("near misses", format!("{} (one day below)", q.near_misses)),
        ]);
        let mut reasons = Table::new(&["REASON", "COUNT", "PERCENT"]);
        for reason in &q.reasons {
            reasons.push(vec![
                reason.reason.clone(),
                reason.count.to_string(),
                dash(&reason.percent),
            ]);
        }
        if !reasons.is_empty() {
            body.push('\n');
            body.push_str(&reasons.to_string());
        }
        section(&mut out, "Qualification", &body);
    }
    let mut daily = Table::new(&[
        "DATE",
        "CHECKED",
        "PASSED",
        "BELOW",
        "MISSING",
        "NOT_FOUND",
        "INVALID",
        "PASS_RATE",
    ]);
    for d in &r.daily {
        daily.push(vec![
            d.date.clone(),
            d.checked.to_string(),
            d.passed.to_string(),
            d.below_threshold.to_string(),
            d.missing.to_string(),
            d.not_found.to_string(),
            d.invalid.to_string(),
            dash(&d.pass_rate),
        ]);
    }
    section(&mut out, "Daily checks", &table_or_none(&daily));
    if let Some(d) = &r.delivery {
        let body = pairs(&[
            ("qualified", d.qualified.to_string()),
            ("notifications", d.notifications.to_string()),
            ("submitted", d.submitted.to_string()),
            (
                "delivered",
                format!(
                    "{} ({} at the first attempt)",
                    d.delivered, d.delivered_first_attempt
                ),
            ),
            ("failed", d.failed.to_string()),
            ("undeliverable", d.undeliverable.to_string()),
            ("pending", d.pending.to_string()),
            ("opted out", d.opted_out.to_string()),
            ("cancelled", d.cancelled.to_string()),
            ("messages sent", d.messages_sent.to_string()),
            ("segments", d.segments_total.to_string()),
            (
                "in doubt",
                format!(
                    "{} adopted, {} sent again, {} abandoned",
                    d.in_doubt_adopted, d.in_doubt_resubmitted, d.in_doubt_abandoned
                ),
            ),
            ("foreign reports", d.foreign_reports.to_string()),
            ("content filtered", d.content_filtered.to_string()),
        ]);
        section(&mut out, "Delivery", &body);
    }
    section(
        &mut out,
        "Failure categories",
        &categories(&r.failure_categories, "CATEGORY"),
    );
    section(
        &mut out,
        "Top error codes",
        &categories(&r.top_error_codes, "ERROR_CODE"),
    );
    let mut carriers = Table::new(&["CARRIER", "ATTEMPTS", "ACCEPTED", "DELIVERED", "FAILED"]);
    for c in &r.carriers {
        carriers.push(vec![
            c.carrier.clone(),
            c.attempts.to_string(),
            c.accepted.to_string(),
            c.delivered.to_string(),
            c.failed.to_string(),
        ]);
    }
    section(&mut out, "Carriers", &table_or_none(&carriers));
    if let Some(p) = &r.processing {
        let body = pairs(&[
            ("days swept", p.days_swept.to_string()),
            ("first sweep", dash(&p.first_sweep_at)),
            ("last sweep", dash(&p.last_sweep_at)),
            ("decided", dash(&p.decided_at)),
            ("first submission", dash(&p.first_submission_at)),
            ("last final", dash(&p.last_final_at)),
            (
                "delivery latency",
                format!(
                    "p50 {} s, p95 {} s",
                    dash(&p.delivery_latency_p50_secs),
                    dash(&p.delivery_latency_p95_secs)
                ),
            ),
            (
                "wait to first submission",
                format!(
                    "p50 {} s, p95 {} s",
                    dash(&p.submission_wait_p50_secs),
                    dash(&p.submission_wait_p95_secs)
                ),
            ),
            ("check errors", percent(&p.check_error_rate)),
            ("submission rejects", percent(&p.submission_reject_rate)),
        ]);
        section(&mut out, "Processing", &body);
    }
    let recommendations: String = if r.recommendations.is_empty() {
        "(none)\n".to_owned()
    } else {
        r.recommendations
            .iter()
            .map(|r| format!("- {r}\n"))
            .collect()
    };
    section(&mut out, "Recommendations", &recommendations);
    out
}

/// `audit list`.
pub fn audit_entries(items: &[AuditEntry], next_page_token: &str) -> String {
    let mut table = Table::new(&["ID", "OCCURRED_AT", "ACTOR", "ACTION", "SUBJECT", "DETAILS"]);
    for e in items {
        let subject = match (e.subject_type.as_str(), e.subject_id.as_str()) {
            ("", "") => "-".to_owned(),
            (kind, "") => kind.to_owned(),
            (kind, id) => format!("{kind}/{id}"),
        };
        table.push(vec![
            e.id.to_string(),
            dash(&e.occurred_at),
            dash(&e.actor),
            dash(&e.action),
            subject,
            dash(&e.details_json),
        ]);
    }
    table_or_none(&table) + &next_page(next_page_token)
}
