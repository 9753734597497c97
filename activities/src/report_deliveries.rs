//! The owner of `report_deliveries`: the outbox of the monthly report's emails, one row per
//! (month, recipient), and the only SQL that writes it.
//!
//! The rule that makes it exactly one email per recipient per month, across crashes:
//!
//! 1. a row is inserted once (`queue`, `requeue`: the unique (month, recipient) key);
//! 2. a mailer claims it — PENDING/FAILED → SENDING — in one statement that skips rows another
//!    mailer holds (`claim_due`), *before* the SMTP transaction starts;
//! 3. it becomes SENT only after the server's 250 (`mark_sent`), FAILED when the server refused or
//!    could not be reached (`mark_failed`, retried later);
//! 4. a row still SENDING after the grace period was left by a mailer that stopped mid-way: the
//!    email may have gone, so it turns IN_DOUBT (`mark_in_doubt_stale`) and is never sent again by
//!    itself — an operator may ask for it explicitly (`requeue` with `include_in_doubt`), which
//!    starts a new request with a new Message-ID.
//!
//! Every row queued, sent, put in doubt or requeued is an audit entry in the same transaction.

use chrono::{DateTime, Utc};
use pcn_workflows::domain::{BusinessDate, DomainError, YearMonth};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::audit::{self, AuditEntry};

/// Where one report email stands (`report_deliveries.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportDeliveryStatus {
    /// Due for sending at `next_attempt_at`.
    Pending,
    /// Claimed by a mailer; the SMTP transaction runs.
    Sending,
    /// The SMTP server accepted it (250).
    Sent,
    /// Refused or unreachable; retried at `next_attempt_at`.
    Failed,
    /// The mailer stopped between claiming and recording: the email may have gone.
    InDoubt,
}

impl ReportDeliveryStatus {
    /// Every status.
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::InDoubt,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Sending => "SENDING",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
            Self::InDoubt => "IN_DOUBT",
        }
    }

    /// Parses the stored spelling (field `status`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::new("status", format!("unknown report delivery {s:?}")))
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportDelivery {
    /// Row id.
    pub id: i64,
    /// The reported month.
    pub month: YearMonth,
    /// The address it goes to.
    pub recipient: String,
    /// Where it stands.
    pub status: ReportDeliveryStatus,
    /// 1 for the month's own email, +1 for every explicit resend of an in-doubt row.
    pub request: i32,
    /// SMTP transactions started, over all requests.
    pub attempts: i32,
    /// When a PENDING or FAILED row is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed, or why the row is in doubt.
    pub last_error: Option<String>,
    /// The Message-ID of the latest attempt.
    pub message_id: Option<String>,
    /// Who asked for it.
    pub requested_by: String,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// The latest transition.
    pub updated_at: DateTime<Utc>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, month, recipient, status, request, attempts, next_attempt_at, \
                       last_error, message_id, requested_by, created_at, updated_at, sent_at";

/// [`COLUMNS`] qualified with a table alias.
fn prefixed(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn delivery(row: &PgRow) -> sqlx::Result<ReportDelivery> {
    let decode = |field: &str, e: DomainError| sqlx::Error::ColumnDecode {
        index: field.to_owned(),
        source: Box::new(e),
    };
    let month: chrono::NaiveDate = row.try_get("month")?;
    let month = BusinessDate::from_naive(month)
        .map(YearMonth::of)
        .map_err(|e| decode("month", e))?;
    let status: String = row.try_get("status")?;
    Ok(ReportDelivery {
        id: row.try_get("id")?,
        month,
        recipient: row.try_get("recipient")?,
        status: ReportDeliveryStatus::parse(&status).map_err(|e| decode("status", e))?,
        request: row.try_get("request")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        message_id: row.try_get("message_id")?,
        requested_by: row.try_get("requested_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        sent_at: row.try_get("sent_at")?,
    })
}

fn deliveries(rows: &[PgRow]) -> sqlx::Result<Vec<ReportDelivery>> {
    rows.iter().map(delivery).collect()
}

/// Audit entry of one row's transition.
fn entry(
    d: &ReportDelivery,
    actor: &str,
    action: &'static str,
    details: serde_json::Value,
) -> AuditEntry {
    AuditEntry {
        actor: actor.to_owned(),
        action,
        subject_type: "report_delivery",
        subject_id: format!("{}/{}", d.month, d.recipient),
        details,
        idempotency_key: Some(format!("{action}/{}/r{}", d.id, d.request)),
    }
}

/// Inserts a PENDING row for each recipient of `month` that has none (idempotent: a repeat, a
/// retried local activity or a replay inserts nothing). Returns the rows inserted now, each
/// audited `REPORT_DELIVERY_QUEUED`.
#[tracing::instrument(skip_all, fields(month = %month, recipients = recipients.len()))]
pub async fn queue(
    pool: &PgPool,
    month: YearMonth,
    recipients: &[String],
    actor: &str,
) -> sqlx::Result<Vec<ReportDelivery>> {
    let mut tx = pool.begin().await?;
    let inserted = insert_missing(&mut tx, month, recipients, actor).await?;
    tx.commit().await?;
    Ok(inserted)
}

async fn insert_missing(
    tx: &mut Transaction<'_, Postgres>,
    month: YearMonth,
    recipients: &[String],
    actor: &str,
) -> sqlx::Result<Vec<ReportDelivery>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO report_deliveries (month, recipient, requested_by)
         SELECT $1, r, $3 FROM UNNEST($2::text[]) AS r
         ON CONFLICT ON CONSTRAINT report_deliveries_one_per_recipient DO NOTHING
         RETURNING {COLUMNS}"
    )))
    .bind(month.first_day().as_naive())
    .bind(recipients)
    .bind(actor)
    .fetch_all(&mut **tx)
    .await?;
    let inserted = deliveries(&rows)?;
    for d in &inserted {
        audit::record(
            &mut **tx,
            &entry(
                d,
                actor,
                "REPORT_DELIVERY_QUEUED",
                json!({ "month": month.to_string() }),
            ),
        )
        .await?;
    }
    Ok(inserted)
}

/// Claims up to `limit` due rows (PENDING, or FAILED whose retry time has come): SENDING,
/// `attempts + 1`, the Message-ID of their request set — in one statement, skipping rows another
/// mailer has locked, so two mailers never claim the same row. The Message-ID is
/// `<pcn-report.YYYY-MM.<row>.r<request>@<message_domain>>`: the same request always carries the
/// same id, and a resend (a new request) is recognisable.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    message_domain: &str,
) -> sqlx::Result<Vec<ReportDelivery>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE report_deliveries d
            SET status = 'SENDING', attempts = d.attempts + 1, updated_at = now(),
                message_id = format('<pcn-report.%s.%s.r%s@%s>',
                                    to_char(d.month, 'YYYY-MM'), d.id, d.request, $2::text)
          WHERE d.id IN (SELECT id FROM report_deliveries
                          WHERE status IN ('PENDING', 'FAILED') AND next_attempt_at <= now()
                          ORDER BY next_attempt_at, id
                          LIMIT $1
                          FOR UPDATE SKIP LOCKED)
      RETURNING {}",
        prefixed("d")
    )))
    .bind(limit)
    .bind(message_domain)
    .fetch_all(pool)
    .await?;
    let mut claimed = deliveries(&rows)?;
    claimed.sort_by_key(|d| (d.month, d.id));
    Ok(claimed)
}

/// The server accepted the email: SENT, audited `REPORT_DELIVERY_SENT`. A row another mailer
/// meanwhile put in doubt (this one was slower than the grace period) is SENT too: the server's
/// answer is the evidence. Returns false when the row was not this request's any more.
pub async fn mark_sent(pool: &PgPool, claimed: &ReportDelivery, actor: &str) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE report_deliveries
            SET status = 'SENT', sent_at = now(), updated_at = now(), last_error = NULL
          WHERE id = $1 AND request = $2 AND status IN ('SENDING', 'IN_DOUBT')
      RETURNING {COLUMNS}"
    )))
    .bind(claimed.id)
    .bind(claimed.request)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let d = delivery(&row)?;
    audit::record(
        &mut *tx,
        &entry(
            &d,
            actor,
            "REPORT_DELIVERY_SENT",
            json!({ "message_id": d.message_id, "attempts": d.attempts, "request": d.request }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// The server refused the email or could not be reached: FAILED, due again at `next_attempt_at`.
pub async fn mark_failed(
    pool: &PgPool,
    claimed: &ReportDelivery,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE report_deliveries
            SET status = 'FAILED', next_attempt_at = $3, last_error = $4, updated_at = now()
          WHERE id = $1 AND request = $2 AND status = 'SENDING'",
    )
    .bind(claimed.id)
    .bind(claimed.request)
    .bind(next_attempt_at)
    .bind(bounded(error))
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// The outcome of one claimed row is unknown (the connection broke after the message may have
/// been sent): IN_DOUBT at once, audited `REPORT_DELIVERY_IN_DOUBT`.
pub async fn mark_in_doubt(
    pool: &PgPool,
    claimed: &ReportDelivery,
    why: &str,
    actor: &str,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE report_deliveries
            SET status = 'IN_DOUBT', last_error = $3, updated_at = now()
          WHERE id = $1 AND request = $2 AND status = 'SENDING'
      RETURNING {COLUMNS}"
    )))
    .bind(claimed.id)
    .bind(claimed.request)
    .bind(bounded(why))
    .fetch_all(&mut *tx)
    .await?;
    let done = !rows.is_empty();
    audit_in_doubt(&mut tx, &deliveries(&rows)?, actor).await?;
    tx.commit().await?;
    Ok(done)
}

/// SENDING rows claimed longer than `older_than` ago were left by a mailer that stopped between
/// the claim and the record (a crash, a kill): IN_DOUBT, audited `REPORT_DELIVERY_IN_DOUBT`, never
/// sent again by themselves. Returns them.
pub async fn mark_in_doubt_stale(
    pool: &PgPool,
    older_than: std::time::Duration,
    actor: &str,
) -> sqlx::Result<Vec<ReportDelivery>> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE report_deliveries
            SET status = 'IN_DOUBT', updated_at = now(),
                last_error = 'the mailer stopped between claiming the email and recording the \
                              server''s answer: it may have been sent'
          WHERE status = 'SENDING' AND updated_at < now() - make_interval(secs => $1)
      RETURNING {COLUMNS}"
    )))
    .bind(older_than.as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    let stale = deliveries(&rows)?;
    audit_in_doubt(&mut tx, &stale, actor).await?;
    tx.commit().await?;
    Ok(stale)
}

async fn audit_in_doubt(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[ReportDelivery],
    actor: &str,
) -> sqlx::Result<()> {
    for d in rows {
        audit::record(
            &mut **tx,
            &entry(
                d,
                actor,
                "REPORT_DELIVERY_IN_DOUBT",
                json!({
                    "message_id": d.message_id,
                    "request": d.request,
                    "why": d.last_error,
                    "resend": format!("pcnctl report send {} --resend-in-doubt --reason …", d.month),
                }),
            ),
        )
        .await?;
    }
    Ok(())
}

/// What [`requeue`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Rows inserted for recipients that had none.
    pub queued: u64,
    /// FAILED rows made due now.
    pub retried: u64,
    /// IN_DOUBT rows asked for again (a new request).
    pub resent: u64,
}

/// The on-demand path (the control API's `SendReport`): rows for `recipients` that have none are
/// queued, FAILED rows are due at once, and — only with `include_in_doubt` — IN_DOUBT rows become
/// PENDING under a new request (a new Message-ID). SENT rows stay SENT: one email per recipient
/// and month. Audited `REPORT_DELIVERY_QUEUED` / `REPORT_DELIVERY_REQUEUED` with `reason`.
pub async fn requeue(
    pool: &PgPool,
    month: YearMonth,
    recipients: &[String],
    include_in_doubt: bool,
    actor: &str,
    reason: &str,
) -> sqlx::Result<Requeued> {
    let mut tx = pool.begin().await?;
    let inserted = insert_missing(&mut tx, month, recipients, actor).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH asked AS (
             SELECT id, status AS was FROM report_deliveries
              WHERE month = $1 AND (status = 'FAILED' OR ($2 AND status = 'IN_DOUBT'))
                FOR UPDATE)
         UPDATE report_deliveries d
            SET request = d.request + CASE WHEN asked.was = 'IN_DOUBT' THEN 1 ELSE 0 END,
                status = 'PENDING', next_attempt_at = now(), updated_at = now(),
                requested_by = $3
           FROM asked
          WHERE d.id = asked.id
      RETURNING {}, asked.was",
        prefixed("d")
    )))
    .bind(month.first_day().as_naive())
    .bind(include_in_doubt)
    .bind(actor)
    .fetch_all(&mut *tx)
    .await?;
    let mut out = Requeued {
        queued: inserted.len() as u64,
        ..Requeued::default()
    };
    for row in &rows {
        let d = delivery(row)?;
        let was: String = row.try_get("was")?;
        let resend = was == ReportDeliveryStatus::InDoubt.as_str();
        if resend {
            out.resent += 1;
        } else {
            out.retried += 1;
        }
        audit::record(
            &mut *tx,
            &entry(
                &d,
                actor,
                "REPORT_DELIVERY_REQUEUED",
                json!({
                    "reason": reason,
                    "was": was,
                    "request": d.request,
                    "previous_message_id": d.message_id,
                }),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(out)
}

/// The month's rows, by recipient.
pub async fn list(pool: &PgPool, month: YearMonth) -> sqlx::Result<Vec<ReportDelivery>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM report_deliveries WHERE month = $1 ORDER BY recipient"
    )))
    .bind(month.first_day().as_naive())
    .fetch_all(pool)
    .await?;
    deliveries(&rows)
}

/// At most 1,000 characters of an error text.
fn bounded(s: &str) -> String {
    s.chars().take(1_000).collect()
}

/// The wait before the next attempt after `attempts` failed ones: `first`, doubling, at most
/// `max`.
pub fn backoff(
    attempts: i32,
    first: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    first.saturating_mul(1 << doublings).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn statuses_round_trip_their_spelling() {
        for s in ReportDeliveryStatus::ALL {
            assert_eq!(ReportDeliveryStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(ReportDeliveryStatus::parse("DONE").is_err());
    }

    #[test]
    fn the_backoff_doubles_from_30_seconds_to_an_hour() {
        let (first, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        let waits: Vec<u64> = (1..=9).map(|a| backoff(a, first, max).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(1_000, first, max), max);
    }
}
