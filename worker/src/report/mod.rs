//! The monthly report: what happened in a month, from the balance checks to the last delivery
//! report, for the programme's owners (contents: `docs/requirements.md#report`).
//!
//! Every figure is aggregated by Postgres (`count(*) FILTER`, `percentile_cont`, `GROUP BY`) in
//! three statements that share one read-only snapshot, so the sections agree with each other even
//! while notifications of the month are still in flight. Rust only turns counts into percentages
//! (exact [`Decimal`] arithmetic) and words the recommendations.
//!
//! # Layout
//!
//! - [`build`]: the report of a month, or `None` when the month has no data.
//! - [`MonthlyReport`] and its sections: plain serialisable data.
//! - [`export`]: CSV, XLSX, a self-contained HTML page with inline SVG charts, and an A4 PDF.
//! - [`mail`]: the mailer that sends the report to its recipients (the outbox
//!   `report_deliveries`, exactly one email per recipient and month).
//!
//! Over 600 lines: the report's read-only analytics queries and the assembly of the report; the
//! exports are in `export/`, one file per format.

pub mod export;
pub mod mail;

use anyhow::Context as _;
use chrono::{DateTime, NaiveDate, Utc};
use pcn_workflows::domain::YearMonth;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

/// The report of one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReport {
    /// The month reported on.
    pub month: YearMonth,
    /// When the figures were read (the database clock at the start of the snapshot).
    pub generated_at: DateTime<Utc>,
    /// Programme summary: the headline figures.
    pub summary: Summary,
    /// Who qualified, and why the others did not.
    pub qualification: QualificationMetrics,
    /// One row per business date that has balance checks, in date order.
    pub daily: Vec<DailyRow>,
    /// SMS delivery.
    pub delivery: DeliveryMetrics,
    /// Why notifications did not end delivered: failure categories, largest first.
    pub failure_categories: Vec<NameCount>,
    /// The carriers' most frequent error codes over all attempts (at most 10), largest first.
    pub top_error_codes: Vec<NameCount>,
    /// The month's attempts by the carrier that took (or was to take) them: after a failover,
    /// the primary and the secondary.
    #[serde(default)]
    pub carriers: Vec<CarrierFigures>,
    /// System performance: when each stage ran, latencies and error rates.
    pub processing: Processing,
    /// What to look at, derived from the figures; `["No issues found."]` when nothing stands out.
    pub recommendations: Vec<String>,
}

/// The headline figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Customers with a qualification decision for the month.
    pub customers_monitored: u64,
    /// Customers who qualified.
    pub qualified: u64,
    /// Qualified, in percent of decided customers.
    pub qualification_rate: Decimal,
    /// Notifications of the month.
    pub notifications: u64,
    /// Notifications delivered.
    pub delivered: u64,
    /// Delivered, in percent of the notifications submitted at least once.
    pub delivery_rate: Decimal,
}

/// Qualification decisions of the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualificationMetrics {
    /// Customers decided.
    pub decided: u64,
    /// Decided qualified.
    pub qualified: u64,
    /// Decided not qualified.
    pub not_qualified: u64,
    /// Reasons for non-qualification, largest first (ties by name).
    pub reasons: Vec<ReasonCount>,
    /// Customers who missed by a single day below the threshold and nothing else.
    pub near_misses: u64,
    /// The threshold in NIS (the largest in force among the month's decisions).
    pub threshold: Option<Decimal>,
}

/// How many decisions gave one reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// The stored reason, e.g. `BELOW_THRESHOLD`.
    pub reason: String,
    /// Decisions with it.
    pub count: u64,
    /// In percent of all decisions.
    pub percent: Decimal,
}

/// The balance checks of one business date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyRow {
    /// The business date.
    pub date: NaiveDate,
    /// Checks stored for it.
    pub checked: u64,
    /// Balance at or above the threshold.
    pub passed: u64,
    /// Balance below the threshold.
    pub below_threshold: u64,
    /// No usable answer from the bank.
    pub missing: u64,
    /// The bank does not know the account.
    pub not_found: u64,
    /// The answer failed validation (e.g. not in NIS).
    pub invalid: u64,
    /// Passed, in percent of checked.
    pub pass_rate: Decimal,
}

/// SMS delivery of the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryMetrics {
    /// Customers who qualified (each should get one notification).
    pub qualified: u64,
    /// Notifications of the month.
    pub notifications: u64,
    /// Notifications submitted to a carrier at least once.
    pub submitted: u64,
    /// Ended delivered.
    pub delivered: u64,
    /// Ended failed (attempts exhausted).
    pub failed: u64,
    /// Ended undeliverable (permanent failure or no confirmation).
    pub undeliverable: u64,
    /// Not final yet: pending, waiting for the send window, submitted, or waiting to retry.
    pub pending: u64,
    /// Not sent: the customer opted out.
    pub opted_out: u64,
    /// Cancelled by an operator.
    pub cancelled: u64,
    /// Attempts a carrier accepted (they have a carrier message id).
    pub messages_sent: u64,
    /// Notifications delivered by their first attempt.
    pub delivered_first_attempt: u64,
    /// SMS segments of the submitted notifications (what the carrier bills).
    pub segments_total: u64,
    /// Submissions in doubt resolved by evidence that the carrier had the message (a callback,
    /// a signal, a carrier lookup): adopted, not sent again.
    pub in_doubt_adopted: u64,
    /// Submissions in doubt sent again under the same reference after the reconciliation period
    /// passed without evidence.
    pub in_doubt_resubmitted: u64,
    /// Submissions in doubt not sent again because the customer opted out meanwhile.
    pub in_doubt_abandoned: u64,
    /// Signed delivery reports that named one of the month's references but another carrier id
    /// (kept, flagged FOREIGN, never applied).
    pub foreign_reports: u64,
    /// Notifications the carrier filtered for their content (30007): the template needs review.
    pub content_filtered: u64,
}

/// One carrier's share of the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierFigures {
    /// The carrier (`generic`, `twilio`).
    pub carrier: String,
    /// Attempts claimed for it.
    pub attempts: u64,
    /// Attempts it accepted (they have its message id).
    pub accepted: u64,
    /// Attempts it reported delivered.
    pub delivered: u64,
    /// Attempts it refused or reported failed, undeliverable or never confirmed.
    pub failed: u64,
}

/// A name and how often it occurred.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameCount {
    /// A failure category or a carrier error code.
    pub name: String,
    /// Occurrences.
    pub count: u64,
}

/// System performance of the month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Processing {
    /// Business dates with balance checks.
    pub days_swept: u64,
    /// Completion of the first daily sweep of the month.
    pub first_sweep_at: Option<DateTime<Utc>>,
    /// Completion of the last daily sweep of the month.
    pub last_sweep_at: Option<DateTime<Utc>>,
    /// When the month was decided (the latest decision).
    pub decided_at: Option<DateTime<Utc>>,
    /// The first SMS submission.
    pub first_submission_at: Option<DateTime<Utc>>,
    /// The last notification to reach a final state.
    pub last_final_at: Option<DateTime<Utc>>,
    /// Median seconds from submission to the delivery report, over delivered attempts.
    pub delivery_latency_p50_secs: Option<Decimal>,
    /// 95th percentile of the same.
    pub delivery_latency_p95_secs: Option<Decimal>,
    /// Median seconds from the fan-out creating a notification to its first submission: the
    /// send window, the submission gateway's queue and the carrier's rate (deferrals, 429s).
    #[serde(default)]
    pub submission_wait_p50_secs: Option<Decimal>,
    /// 95th percentile of the same.
    #[serde(default)]
    pub submission_wait_p95_secs: Option<Decimal>,
    /// Checks without a usable balance (missing, account not found, invalid), in percent.
    pub check_error_rate: Decimal,
    /// Attempts the carrier refused at submission, in percent of attempts.
    pub submission_reject_rate: Decimal,
}

/// Builds the report of `month`, or `None` when the month has no qualification decision, no
/// balance check and no notification.
///
/// Three statements in one `REPEATABLE READ READ ONLY` transaction: the headline aggregates of
/// every table, the daily table, and the named counts (reasons, failure categories, error codes).
/// The daily table aggregates the month's balance checks through `balance_checks_date_idx`
/// rather than trusting `daily_sweeps`: the checks are the evidence, a sweep row is a summary.
#[tracing::instrument(skip_all, fields(month = %month))]
pub async fn build(pool: &PgPool, month: YearMonth) -> anyhow::Result<Option<MonthlyReport>> {
    let first = month.first_day().as_naive();
    let last = month.last_day().as_naive();
    let mut tx = pool.begin().await.context("starting the report snapshot")?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await
        .context("setting the report snapshot")?;
    let totals = sqlx::query(TOTALS_SQL)
        .bind(first)
        .bind(last)
        .fetch_one(&mut *tx)
        .await
        .context("reading the month's totals")?;
    let daily = sqlx::query(DAILY_SQL)
        .bind(first)
        .bind(last)
        .fetch_all(&mut *tx)
        .await
        .context("reading the daily balance checks")?;
    let named = sqlx::query(NAMED_COUNTS_SQL)
        .bind(first)
        .fetch_all(&mut *tx)
        .await
        .context("reading reasons, failure categories and error codes")?;
    let carriers = sqlx::query(CARRIERS_SQL)
        .bind(first)
        .fetch_all(&mut *tx)
        .await
        .context("reading the attempts by carrier")?;
    tx.commit().await.context("ending the report snapshot")?;

    let daily: Vec<DailyRow> = daily.iter().map(daily_row).collect();
    let decided = count(&totals, "decided");
    let notifications = count(&totals, "notifications");
    if decided == 0 && daily.is_empty() && notifications == 0 {
        return Ok(None);
    }

    let qualified = count(&totals, "qualified");
    let mut reasons = Vec::new();
    let mut failure_categories = Vec::new();
    let mut top_error_codes = Vec::new();
    for row in &named {
        let name: String = row.get("name");
        let n = count(row, "n");
        match row.get::<&str, _>("kind") {
            "reason" => reasons.push(ReasonCount {
                reason: name,
                count: n,
                percent: percent(n, decided),
            }),
            "failure_category" => failure_categories.push(NameCount { name, count: n }),
            _ => top_error_codes.push(NameCount { name, count: n }),
        }
    }

    let delivery = DeliveryMetrics {
        qualified,
        notifications,
        submitted: count(&totals, "submitted"),
        delivered: count(&totals, "delivered"),
        failed: count(&totals, "failed"),
        undeliverable: count(&totals, "undeliverable"),
        pending: count(&totals, "pending"),
        opted_out: count(&totals, "opted_out"),
        cancelled: count(&totals, "cancelled"),
        messages_sent: count(&totals, "messages_sent"),
        delivered_first_attempt: count(&totals, "delivered_first_attempt"),
        segments_total: count(&totals, "segments_total"),
        in_doubt_adopted: count(&totals, "in_doubt_adopted"),
        in_doubt_resubmitted: count(&totals, "in_doubt_resubmitted"),
        in_doubt_abandoned: count(&totals, "in_doubt_abandoned"),
        foreign_reports: count(&totals, "foreign_reports"),
        content_filtered: count(&totals, "content_filtered"),
    };
    let checked: u64 = daily.iter().map(|d| d.checked).sum();
    let check_errors: u64 = daily
        .iter()
        .map(|d| d.missing + d.not_found + d.invalid)
        .sum();
    let processing = Processing {
        days_swept: daily.len() as u64,
        first_sweep_at: totals.get("first_sweep_at"),
        last_sweep_at: totals.get("last_sweep_at"),
        decided_at: totals.get("decided_at"),
        first_submission_at: totals.get("first_submission_at"),
        last_final_at: totals.get("last_final_at"),
        delivery_latency_p50_secs: totals.get("latency_p50"),
        delivery_latency_p95_secs: totals.get("latency_p95"),
        submission_wait_p50_secs: totals.get("wait_p50"),
        submission_wait_p95_secs: totals.get("wait_p95"),
        check_error_rate: percent(check_errors, checked),
        submission_reject_rate: percent(count(&totals, "rejected"), count(&totals, "attempts")),
    };
    let mut report = MonthlyReport {
        month,
        generated_at: totals.get("generated_at"),
        summary: Summary {
            customers_monitored: decided,
            qualified,
            qualification_rate: percent(qualified, decided),
            notifications,
            delivered: delivery.delivered,
            delivery_rate: percent(delivery.delivered, delivery.submitted),
        },
        qualification: QualificationMetrics {
            decided,
            qualified,
            not_qualified: decided - qualified,
            reasons,
            near_misses: count(&totals, "near_misses"),
            threshold: totals.get("threshold"),
        },
        daily,
        delivery,
        failure_categories,
        top_error_codes,
        carriers: carriers
            .iter()
            .map(|row| CarrierFigures {
                carrier: row.get("carrier"),
                attempts: count(row, "attempts"),
                accepted: count(row, "accepted"),
                delivered: count(row, "delivered"),
                failed: count(row, "failed"),
            })
            .collect(),
        processing,
        recommendations: Vec::new(),
    };
    report.recommendations = recommendations(&report);
    Ok(Some(report))
}

/// One row of headline aggregates: each table is scanned once, by its month key (`$1` the first
/// day, `$2` the last day of the month). `percentile_cont` runs over intervals so the latency
/// stays exact (`EXTRACT` of an interval is NUMERIC): no float on the way.
const TOTALS_SQL: &str = "
SELECT now() AS generated_at, q.*, n.*, a.*, s.*, d.*, f.*, w.*
  FROM (SELECT count(*) AS decided,
               count(*) FILTER (WHERE qualified) AS qualified,
               count(*) FILTER (WHERE NOT qualified AND reason = 'BELOW_THRESHOLD'
                                  AND days_below = 1 AND days_missing = 0
                                  AND days_not_found = 0 AND days_invalid = 0) AS near_misses,
               max(threshold) AS threshold,
               max(decided_at) AS decided_at
          FROM qualifications WHERE month = $1) q,
       (SELECT count(*) AS notifications,
               count(*) FILTER (WHERE attempts >= 1) AS submitted,
               count(*) FILTER (WHERE status = 'DELIVERED') AS delivered,
               count(*) FILTER (WHERE status = 'FAILED') AS failed,
               count(*) FILTER (WHERE status = 'UNDELIVERABLE') AS undeliverable,
               count(*) FILTER (WHERE status IN ('PENDING', 'WAITING_WINDOW', 'SUBMITTED',
                                                 'RETRY_WAIT')) AS pending,
               count(*) FILTER (WHERE status = 'OPTED_OUT') AS opted_out,
               count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
               coalesce(sum(segments) FILTER (WHERE attempts >= 1), 0) AS segments_total,
               count(*) FILTER (WHERE failure_category = 'CONTENT_FILTERED') AS content_filtered,
               max(finished_at) AS last_final_at
          FROM notifications WHERE month = $1) n,
       (SELECT count(*) AS attempts,
               count(*) FILTER (WHERE carrier_message_id IS NOT NULL) AS messages_sent,
               count(*) FILTER (WHERE attempt = 1 AND status = 'DELIVERED')
                   AS delivered_first_attempt,
               count(*) FILTER (WHERE status = 'REJECTED') AS rejected,
               min(submitted_at) AS first_submission_at,
               round(EXTRACT(EPOCH FROM percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY finished_at - submitted_at) FILTER (WHERE status = 'DELIVERED')), 1)
                   AS latency_p50,
               round(EXTRACT(EPOCH FROM percentile_cont(0.95) WITHIN GROUP
                   (ORDER BY finished_at - submitted_at) FILTER (WHERE status = 'DELIVERED')), 1)
                   AS latency_p95
          FROM sms_attempts WHERE month = $1) a,
       (SELECT round(EXTRACT(EPOCH FROM percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY a.submitted_at - n.created_at)), 1) AS wait_p50,
               round(EXTRACT(EPOCH FROM percentile_cont(0.95) WITHIN GROUP
                   (ORDER BY a.submitted_at - n.created_at)), 1) AS wait_p95
          FROM notifications n
          JOIN sms_attempts a ON a.month = n.month AND a.customer_id = n.customer_id
                             AND a.attempt = 1
         WHERE n.month = $1 AND a.submitted_at IS NOT NULL) w,
       (SELECT min(completed_at) AS first_sweep_at, max(completed_at) AS last_sweep_at
          FROM daily_sweeps WHERE business_date BETWEEN $1 AND $2) s,
       (SELECT count(*) FILTER (WHERE resolution LIKE 'ADOPTED_%') AS in_doubt_adopted,
               count(*) FILTER (WHERE resolution = 'RESUBMITTED') AS in_doubt_resubmitted,
               count(*) FILTER (WHERE resolution = 'ABANDONED') AS in_doubt_abandoned
          FROM in_doubt_resolutions WHERE month = $1) d,
       (SELECT count(*) AS foreign_reports
          FROM delivery_events
         WHERE flag = 'FOREIGN' AND message_ref LIKE 'sms/' || to_char($1::date, 'YYYY-MM') || '/%') f";

/// The month's balance checks per business date (`$1`..=`$2`), read from
/// `balance_checks_date_idx`.
const DAILY_SQL: &str = "
SELECT business_date,
       count(*) AS checked,
       count(*) FILTER (WHERE outcome = 'PASSED') AS passed,
       count(*) FILTER (WHERE outcome = 'BELOW_THRESHOLD') AS below_threshold,
       count(*) FILTER (WHERE outcome = 'MISSING') AS missing,
       count(*) FILTER (WHERE outcome = 'ACCOUNT_NOT_FOUND') AS not_found,
       count(*) FILTER (WHERE outcome = 'INVALID_RESPONSE') AS invalid
  FROM balance_checks
 WHERE business_date BETWEEN $1 AND $2
 GROUP BY business_date
 ORDER BY business_date";

/// Reasons for non-qualification, failure categories of undelivered notifications and the ten
/// most frequent carrier error codes, each largest first with ties by name in byte order
/// (`COLLATE "C"`, so the order never depends on the server's locale).
const NAMED_COUNTS_SQL: &str = r#"
SELECT kind, name, n FROM (
    SELECT 'reason' AS kind, reason AS name, count(*) AS n
      FROM qualifications WHERE month = $1 AND NOT qualified
     GROUP BY reason
    UNION ALL
    SELECT 'failure_category', failure_category, count(*)
      FROM notifications
     WHERE month = $1 AND status <> 'DELIVERED' AND failure_category IS NOT NULL
     GROUP BY failure_category
    UNION ALL
    (SELECT 'error_code', error_code, count(*)
       FROM sms_attempts WHERE month = $1 AND error_code IS NOT NULL
      GROUP BY error_code
      ORDER BY count(*) DESC, error_code COLLATE "C"
      LIMIT 10)
) named
ORDER BY kind, n DESC, name COLLATE "C""#;

/// The month's attempts by carrier, in byte order of the carrier's name.
const CARRIERS_SQL: &str = r#"
SELECT carrier,
       count(*) AS attempts,
       count(carrier_message_id) AS accepted,
       count(*) FILTER (WHERE status = 'DELIVERED') AS delivered,
       count(*) FILTER (WHERE status IN ('REJECTED', 'FAILED', 'UNDELIVERABLE', 'NO_CONFIRMATION'))
           AS failed
  FROM sms_attempts WHERE month = $1
 GROUP BY carrier
 ORDER BY carrier COLLATE "C""#;

fn daily_row(row: &PgRow) -> DailyRow {
    let checked = count(row, "checked");
    let passed = count(row, "passed");
    DailyRow {
        date: row.get("business_date"),
        checked,
        passed,
        below_threshold: count(row, "below_threshold"),
        missing: count(row, "missing"),
        not_found: count(row, "not_found"),
        invalid: count(row, "invalid"),
        pass_rate: percent(passed, checked),
    }
}

/// A `count(*)` (BIGINT, never negative) as `u64`.
fn count(row: &PgRow, column: &str) -> u64 {
    u64::try_from(row.get::<i64, _>(column)).unwrap_or(0)
}

/// `part` in percent of `whole`, rounded half away from zero to 2 places (as Postgres' `round`
/// and a pocket calculator do); 0 when `whole` is 0.
pub(crate) fn percent(part: u64, whole: u64) -> Decimal {
    if whole == 0 {
        return Decimal::new(0, 2);
    }
    let mut p = (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole))
        .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    // Always two places, so "12.50" prints the same in every export.
    p.rescale(2);
    p
}

/// Unanswered balance checks at or above this share (percent) of a day's checks mark an outage.
const OUTAGE_MISSING_PERCENT: u64 = 1;
/// Undeliverable notifications above this share (percent) point at bad phone numbers.
const UNDELIVERABLE_ALERT_PERCENT: u64 = 2;
/// Carrier rejections at submission above this share (percent) point at the carrier account.
const REJECT_ALERT_PERCENT: u64 = 5;

/// Plain rules over the figures, in a fixed order: data first (checks, decisions), then delivery.
fn recommendations(r: &MonthlyReport) -> Vec<String> {
    let mut out = Vec::new();
    let unanswered: u64 = r.daily.iter().map(|d| d.missing).sum();
    // A day where at least 1 % of the checks went unanswered was an outage, not a blip.
    let outage_days: Vec<String> = r
        .daily
        .iter()
        .filter(|d| d.missing > 0 && d.missing * 100 >= d.checked * OUTAGE_MISSING_PERCENT)
        .map(|d| d.date.to_string())
        .collect();
    if !outage_days.is_empty() {
        out.push(format!(
            "{unanswered} balance checks got no answer from core banking; on {} day(s) that was \
             {OUTAGE_MISSING_PERCENT}% or more of the day's checks: check core-banking \
             availability on {}.",
            outage_days.len(),
            outage_days.join(", ")
        ));
    } else if unanswered > 0 {
        let days = r.daily.iter().filter(|d| d.missing > 0).count();
        out.push(format!(
            "{unanswered} balance checks got no answer from core banking, spread over {days} \
             day(s) (under {OUTAGE_MISSING_PERCENT}% on each): no outage, but the customers \
             concerned cannot qualify."
        ));
    }
    let days = u64::from(r.month.num_days());
    if r.qualification.decided > 0 && r.processing.days_swept < days {
        out.push(format!(
            "Only {} of the month's {days} days have balance checks although the month was \
             decided: check the daily sweeps.",
            r.processing.days_swept
        ));
    }
    let not_found: u64 = r.daily.iter().map(|d| d.not_found).sum();
    if not_found > 0 {
        out.push(format!(
            "{not_found} balance checks found no account at the bank: review the customers' \
             account numbers."
        ));
    }
    let invalid: u64 = r.daily.iter().map(|d| d.invalid).sum();
    if invalid > 0 {
        out.push(format!(
            "{invalid} balance checks got an invalid answer (e.g. not in NIS): raise them with \
             core banking."
        ));
    }
    if r.qualification.near_misses > 0 {
        out.push(format!(
            "{} customers missed qualification by a single day below the threshold: consider \
             telling them how close they came.",
            r.qualification.near_misses
        ));
    }
    let d = &r.delivery;
    let undeliverable = percent(d.undeliverable, d.notifications);
    if undeliverable > Decimal::from(UNDELIVERABLE_ALERT_PERCENT) {
        out.push(format!(
            "{undeliverable}% of notifications ({}) were undeliverable: check the customers' \
             phone numbers.",
            d.undeliverable
        ));
    }
    if d.content_filtered > 0 {
        out.push(format!(
            "{} messages were filtered by the carrier for their content (30007): review the \
             template wording with the carrier before the next month.",
            d.content_filtered
        ));
    }
    if d.foreign_reports > 0 {
        out.push(format!(
            "{} signed delivery reports named our messages with another carrier id and were not \
             applied: ask the carrier why.",
            d.foreign_reports
        ));
    }
    if let Some(top) = r.failure_categories.first() {
        out.push(format!(
            "The most frequent delivery failure is {} ({} notifications).",
            top.name, top.count
        ));
    }
    let rejected = r.processing.submission_reject_rate;
    if rejected > Decimal::from(REJECT_ALERT_PERCENT) {
        out.push(format!(
            "{rejected}% of submission attempts were refused by the carrier: check the carrier \
             account and sender settings."
        ));
    }
    if d.qualified > d.notifications {
        out.push(format!(
            "{} qualified customers have no notification yet: check the notification fan-out.",
            d.qualified - d.notifications
        ));
    }
    if d.pending > 0 {
        out.push(format!(
            "{} notifications are still in flight: these figures are not final yet.",
            d.pending
        ));
    }
    if out.is_empty() {
        out.push("No issues found.".to_owned());
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// A hand-built report with something in every section.
    pub(crate) fn sample() -> MonthlyReport {
        let month = YearMonth::parse("2026-10").unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2026, 10, d, h, 0, 0).unwrap();
        let daily = (1..=31)
            .map(|day| {
                let missing = if day == 3 { 40 } else { 0 };
                let below = 5 + u64::from(day % 4);
                let passed = 1000 - missing - below - 2;
                DailyRow {
                    date: NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
                    checked: 1000,
                    passed,
                    below_threshold: below,
                    missing,
                    not_found: 1,
                    invalid: 1,
                    pass_rate: percent(passed, 1000),
                }
            })
            .collect();
        let mut r = MonthlyReport {
            month,
            generated_at: Utc.with_ymd_and_hms(2026, 11, 3, 6, 30, 0).unwrap(),
            summary: Summary {
                customers_monitored: 1000,
                qualified: 900,
                qualification_rate: percent(900, 1000),
                notifications: 900,
                delivered: 850,
                delivery_rate: percent(850, 880),
            },
            qualification: QualificationMetrics {
                decided: 1000,
                qualified: 900,
                not_qualified: 100,
                reasons: vec![
                    ReasonCount {
                        reason: "BELOW_THRESHOLD".into(),
                        count: 60,
                        percent: percent(60, 1000),
                    },
                    ReasonCount {
                        reason: "MISSING_DATA".into(),
                        count: 40,
                        percent: percent(40, 1000),
                    },
                ],
                near_misses: 7,
                threshold: Some(dec("10000.00")),
            },
            daily,
            delivery: DeliveryMetrics {
                qualified: 900,
                notifications: 900,
                submitted: 880,
                delivered: 850,
                failed: 5,
                undeliverable: 20,
                pending: 5,
                opted_out: 15,
                cancelled: 5,
                messages_sent: 900,
                delivered_first_attempt: 820,
                segments_total: 1760,
                in_doubt_adopted: 3,
                in_doubt_resubmitted: 1,
                in_doubt_abandoned: 0,
                foreign_reports: 0,
                content_filtered: 0,
            },
            failure_categories: vec![
                NameCount {
                    name: "INVALID_NUMBER".into(),
                    count: 15,
                },
                NameCount {
                    name: "<script>\"x\",y".into(),
                    count: 2,
                },
            ],
            top_error_codes: vec![NameCount {
                name: "21211".into(),
                count: 15,
            }],
            processing: Processing {
                days_swept: 31,
                first_sweep_at: Some(at(1, 21)),
                last_sweep_at: Some(at(31, 21)),
                decided_at: Some(at(31, 22)),
                first_submission_at: Some(at(31, 23)),
                last_final_at: None,
                delivery_latency_p50_secs: Some(dec("4.2")),
                delivery_latency_p95_secs: Some(dec("31.0")),
                submission_wait_p50_secs: Some(dec("2.5")),
                submission_wait_p95_secs: Some(dec("40.0")),
                check_error_rate: percent(102, 31_000),
                submission_reject_rate: percent(3, 903),
            },
            carriers: vec![CarrierFigures {
                carrier: "generic".into(),
                attempts: 10,
                accepted: 9,
                delivered: 8,
                failed: 1,
            }],
            recommendations: Vec::new(),
        };
        r.recommendations = recommendations(&r);
        r
    }

    #[test]
    fn percentages_round_half_away_from_zero_to_two_places() {
        assert_eq!(percent(1, 8).to_string(), "12.50");
        assert_eq!(percent(1, 3).to_string(), "33.33");
        assert_eq!(percent(2, 3).to_string(), "66.67");
        // 1/1600 = 0.0625 % → 0.06 (not a midpoint); 1/800 = 0.125 % → 0.13 (away from zero).
        assert_eq!(percent(1, 800).to_string(), "0.13");
        assert_eq!(percent(5, 0).to_string(), "0.00");
        assert_eq!(percent(7, 7).to_string(), "100.00");
    }

    #[test]
    fn recommendations_name_the_days_and_the_figures() {
        let r = sample();
        let all = r.recommendations.join("\n");
        assert!(all.contains("check core-banking availability on 2026-10-03."));
        assert!(all.contains("7 customers missed qualification"));
        assert!(all.contains("2.22% of notifications (20) were undeliverable"));
        assert!(all.contains("INVALID_NUMBER (15 notifications)"));
        assert!(all.contains("5 notifications are still in flight"));
        assert!(!all.contains("No issues found."));
    }

    #[test]
    fn a_quiet_month_has_no_issues() {
        let mut r = sample();
        r.daily.iter_mut().for_each(|d| {
            d.missing = 0;
            d.not_found = 0;
            d.invalid = 0;
        });
        r.qualification.near_misses = 0;
        r.delivery.undeliverable = 1;
        r.delivery.pending = 0;
        r.failure_categories.clear();
        assert_eq!(recommendations(&r), vec!["No issues found.".to_owned()]);
    }
}
