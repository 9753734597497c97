//! The owner of `notifications` and `notification_retries`: the only module with SQL for them.
//!
//! - The fan-out creates one PENDING row per qualified customer ([`create_page`]); the SMS steps
//!   move it through WAITING_WINDOW, SUBMITTED and RETRY_WAIT to a final state
//!   ([`mark_prepared`], [`mark_submitted`], [`set_state`]); a final row never changes again…
//! - …except by an operator's manual retry ([`begin_manual_retry`]), which reopens a notification
//!   that ended FAILED or UNDELIVERABLE, once per request id, with its `notification_retries` row
//!   and audit entry in the same transaction.
//! - Reads for the control API and the month's counts.

use pcn_workflows::contracts::{NotificationCounts, NotificationKey};
use pcn_workflows::delivery::FailureCategory;
use pcn_workflows::domain::{CustomerId, Language, YearMonth};
use pcn_workflows::message::RenderedMessage;
use pcn_workflows::sms::{self, NotificationState};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};

use crate::audit::{self, AuditEntry};

/// A manual retry that may proceed: the attempt number it sends, and the run already started for
/// it when the same request came before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryStart {
    /// The attempt the new run submits (fixed here, so a repeated start submits the same
    /// reference: the carrier's idempotency key, never a second message).
    pub attempt: u32,
    /// The run started for this request id before, if one was recorded.
    pub run_id: Option<String>,
    /// Whether this request id was seen before.
    pub replayed: bool,
}

/// Why a manual retry cannot proceed.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    /// The request id was used for another notification.
    #[error("request_id {0} was used for another notification")]
    RequestIdReused(String),
    /// No notification for that customer and month.
    #[error("no notification for {customer} in {month}")]
    NotFound {
        /// The customer.
        customer: CustomerId,
        /// The month.
        month: YearMonth,
    },
    /// Its state does not allow a retry.
    #[error(
        "notification of {customer} in {month} is {status}: only FAILED or UNDELIVERABLE can be retried"
    )]
    NotRetryable {
        /// The customer.
        customer: CustomerId,
        /// The month.
        month: YearMonth,
        /// Its stored status.
        status: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Reopens the notification for one more attempt on behalf of `actor` (or finds the same
/// request's earlier answer), in one transaction: the notification back to PENDING, the
/// `notification_retries` row, the audit entry.
pub async fn begin_manual_retry(
    pool: &PgPool,
    month: YearMonth,
    customer: &CustomerId,
    request_id: &str,
    reason: &str,
    actor: &str,
) -> Result<RetryStart, RetryError> {
    let first = month.first_day().as_naive();
    let mut tx = pool.begin().await?;
    // Serialise retries of one notification; a repeated request id finds its row.
    let existing = sqlx::query(
        "SELECT month, customer_id, attempt, run_id FROM notification_retries WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = existing {
        let same = row.get::<chrono::NaiveDate, _>("month") == first
            && row.get::<&str, _>("customer_id") == customer.as_str();
        if !same {
            return Err(RetryError::RequestIdReused(request_id.to_owned()));
        }
        let attempt = u32::try_from(row.get::<i16, _>("attempt")).unwrap_or(0);
        let run_id = row.get::<Option<String>, _>("run_id");
        tx.rollback().await?;
        return Ok(RetryStart {
            attempt,
            run_id,
            replayed: true,
        });
    }
    let row = sqlx::query(
        "SELECT status, attempts FROM notifications
          WHERE month = $1 AND customer_id = $2 FOR UPDATE",
    )
    .bind(first)
    .bind(customer.as_str())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| RetryError::NotFound {
        customer: customer.clone(),
        month,
    })?;
    let status: String = row.get("status");
    let retryable =
        NotificationState::parse(&status).is_some_and(NotificationState::can_be_retried_by_hand);
    if !retryable {
        return Err(RetryError::NotRetryable {
            customer: customer.clone(),
            month,
            status,
        });
    }
    let attempt = row.get::<i16, _>("attempts") + 1;
    sqlx::query(
        "UPDATE notifications
            SET status = 'PENDING', finished_at = NULL, failure_category = NULL,
                detail = NULL, manual_retries = manual_retries + 1, updated_at = now()
          WHERE month = $1 AND customer_id = $2",
    )
    .bind(first)
    .bind(customer.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO notification_retries
             (request_id, month, customer_id, attempt, from_status, requested_by, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(request_id)
    .bind(first)
    .bind(customer.as_str())
    .bind(attempt)
    .bind(&status)
    .bind(actor)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut *tx,
        &AuditEntry {
            actor: actor.to_owned(),
            action: "NOTIFICATION_RETRY_REQUESTED",
            subject_type: "notification",
            subject_id: sms::workflow_id(month, customer),
            details: json!({
                "request_id": request_id,
                "attempt": attempt,
                "from_status": status,
                "reason": reason,
            }),
            idempotency_key: Some(format!("notification-retry/{request_id}")),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(RetryStart {
        attempt: u32::try_from(attempt).unwrap_or(0),
        run_id: None,
        replayed: false,
    })
}

/// Records the run started for a manual retry (the first start wins).
pub async fn record_retry_run(pool: &PgPool, request_id: &str, run_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notification_retries SET run_id = $2 WHERE request_id = $1 AND run_id IS NULL",
    )
    .bind(request_id)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(())
}

// The SMS steps' writes. Every change of a notification's state goes through one of these; a
// row that ended (`finished_at` set) is never changed again except by `begin_manual_retry`.

/// Creates the notification row when the workflow was started some other way than the fan-out
/// (an operator, a test); a no-op otherwise.
pub(crate) async fn ensure(pool: &PgPool, key: &NotificationKey) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notifications (month, customer_id, workflow_id) VALUES ($1, $2, $3)
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .bind(sms::workflow_id(key.month, &key.customer))
    .execute(pool)
    .await?;
    Ok(())
}

/// [`ensure`] for a batch.
pub(crate) async fn ensure_many(pool: &PgPool, keys: &[&NotificationKey]) -> anyhow::Result<()> {
    let months: Vec<_> = keys
        .iter()
        .map(|k| k.month.first_day().as_naive())
        .collect();
    let customers: Vec<&str> = keys.iter().map(|k| k.customer.as_str()).collect();
    let ids: Vec<String> = keys
        .iter()
        .map(|k| sms::workflow_id(k.month, &k.customer))
        .collect();
    sqlx::query(
        "INSERT INTO notifications (month, customer_id, workflow_id)
         SELECT * FROM UNNEST($1::date[], $2::text[], $3::text[])
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(&months)
    .bind(&customers)
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(())
}

/// `PrepareNotification`'s mark: `state` (WAITING_WINDOW) with the message's language and size.
pub(crate) async fn mark_prepared(
    pool: &PgPool,
    key: &NotificationKey,
    state: NotificationState,
    language: Language,
    message: &RenderedMessage,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications
            SET status = $3, language = $4, encoding = $5, segments = $6, updated_at = now()
          WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .bind(state.as_str())
    .bind(language.code())
    .bind(message.segments.encoding.as_str())
    .bind(i16::try_from(message.segments.segments).unwrap_or(i16::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// The notification is with the carrier: SUBMITTED, with the attempt count and the message size.
pub(crate) async fn mark_submitted(
    conn: &mut sqlx::PgConnection,
    key: &NotificationKey,
    attempt: u32,
    language: Language,
    message: &RenderedMessage,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE notifications
            SET status = 'SUBMITTED', attempts = greatest(attempts, $3), language = $4,
                encoding = $5, segments = $6, updated_at = now()
          WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .bind(i16::try_from(attempt).unwrap_or(i16::MAX))
    .bind(language.code())
    .bind(message.segments.encoding.as_str())
    .bind(i16::try_from(message.segments.segments).unwrap_or(i16::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// One notification of a batch whose attempt went to the carrier.
pub(crate) struct Submitted<'a> {
    pub(crate) key: &'a NotificationKey,
    pub(crate) attempt: u32,
    /// The carrier took it (false: refused at submission).
    pub(crate) accepted: bool,
    pub(crate) language: &'static str,
    pub(crate) encoding: &'static str,
    pub(crate) segments: u32,
}

/// [`mark_submitted`] for a batch; refused ones only count their attempt.
pub(crate) async fn mark_submitted_many(
    conn: &mut sqlx::PgConnection,
    rows: &[Submitted<'_>],
) -> anyhow::Result<()> {
    let months: Vec<_> = rows
        .iter()
        .map(|r| r.key.month.first_day().as_naive())
        .collect();
    let customers: Vec<&str> = rows.iter().map(|r| r.key.customer.as_str()).collect();
    let attempts: Vec<i16> = rows
        .iter()
        .map(|r| i16::try_from(r.attempt).unwrap_or(i16::MAX))
        .collect();
    let accepted: Vec<bool> = rows.iter().map(|r| r.accepted).collect();
    let languages: Vec<&str> = rows.iter().map(|r| r.language).collect();
    let encodings: Vec<&str> = rows.iter().map(|r| r.encoding).collect();
    let segments: Vec<i16> = rows
        .iter()
        .map(|r| i16::try_from(r.segments).unwrap_or(i16::MAX))
        .collect();
    sqlx::query(
        "UPDATE notifications n
            SET status = CASE WHEN u.accepted THEN 'SUBMITTED' ELSE n.status END,
                attempts = greatest(n.attempts, u.attempt),
                language = CASE WHEN u.accepted THEN u.language ELSE n.language END,
                encoding = CASE WHEN u.accepted THEN u.encoding ELSE n.encoding END,
                segments = CASE WHEN u.accepted THEN u.segments ELSE n.segments END,
                updated_at = now()
           FROM UNNEST($1::date[], $2::text[], $3::int2[], $4::bool[], $5::text[], $6::text[],
                       $7::int2[])
                AS u(month, customer_id, attempt, accepted, language, encoding, segments)
          WHERE n.month = u.month AND n.customer_id = u.customer_id AND n.finished_at IS NULL",
    )
    .bind(&months)
    .bind(&customers)
    .bind(&attempts)
    .bind(&accepted)
    .bind(&languages)
    .bind(&encodings)
    .bind(&segments)
    .execute(conn)
    .await?;
    Ok(())
}

/// An attempt the carrier refused at submission still counts as an attempt.
pub(crate) async fn count_attempt(
    conn: &mut sqlx::PgConnection,
    key: &NotificationKey,
    attempt: u32,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE notifications SET attempts = greatest(attempts, $3), updated_at = now()
          WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .bind(i16::try_from(attempt).unwrap_or(i16::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// `RecordNotification`'s state change: a final `state` sets `finished_at`, after which the row
/// no longer changes. Returns whether the row changed (false: it was already final).
pub(crate) async fn set_state(
    conn: &mut sqlx::PgConnection,
    key: &NotificationKey,
    state: NotificationState,
    category: Option<FailureCategory>,
    detail: Option<&str>,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "UPDATE notifications
            SET status = $3, failure_category = $4, detail = $5, updated_at = now(),
                finished_at = CASE WHEN $6 THEN now() END
          WHERE month = $1 AND customer_id = $2 AND finished_at IS NULL",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .bind(state.as_str())
    .bind(category.map(|c| c.as_str()))
    .bind(detail)
    .bind(state.is_final())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// Attempts sent and manual retries requested so far (for the final audit entry's key).
pub(crate) async fn tallies(
    conn: &mut sqlx::PgConnection,
    key: &NotificationKey,
) -> sqlx::Result<(i16, i16)> {
    sqlx::query_as(
        "SELECT attempts, manual_retries FROM notifications WHERE month = $1 AND customer_id = $2",
    )
    .bind(key.month.first_day().as_naive())
    .bind(key.customer.as_str())
    .fetch_one(conn)
    .await
}

/// The fan-out's rows: one PENDING notification per customer of a page (existing rows kept).
pub(crate) async fn create_page(
    pool: &PgPool,
    month: YearMonth,
    customers: &[CustomerId],
) -> sqlx::Result<()> {
    let names: Vec<&str> = customers.iter().map(CustomerId::as_str).collect();
    let ids: Vec<String> = customers
        .iter()
        .map(|c| sms::workflow_id(month, c))
        .collect();
    sqlx::query(
        "INSERT INTO notifications (month, customer_id, workflow_id)
         SELECT $1, c, w FROM UNNEST($2::text[], $3::text[]) AS t(c, w)
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(month.first_day().as_naive())
    .bind(&names)
    .bind(&ids)
    .execute(pool)
    .await?;
    Ok(())
}

// Reads.

/// A month's notifications by state, with the number of qualified customers.
pub async fn month_counts(pool: &PgPool, month: YearMonth) -> anyhow::Result<NotificationCounts> {
    Ok(NotificationCounts {
        qualified: crate::qualify::qualified_count(pool, month).await?,
        ..status_counts(pool, month).await?
    })
}

/// A month's notifications by state (`qualified` left 0).
pub async fn status_counts(pool: &PgPool, month: YearMonth) -> anyhow::Result<NotificationCounts> {
    let rows = sqlx::query(
        "SELECT status, count(*) AS n FROM notifications WHERE month = $1 GROUP BY status",
    )
    .bind(month.first_day().as_naive())
    .fetch_all(pool)
    .await?;
    let mut counts = NotificationCounts::default();
    for row in rows {
        let n = u64::try_from(row.get::<i64, _>("n")).unwrap_or_default();
        counts.total += n;
        let slot = match NotificationState::parse(row.get("status")) {
            Some(NotificationState::Pending) => &mut counts.pending,
            Some(NotificationState::WaitingWindow) => &mut counts.waiting_window,
            Some(NotificationState::Submitted) => &mut counts.submitted,
            Some(NotificationState::RetryWait) => &mut counts.retry_wait,
            Some(NotificationState::Delivered) => &mut counts.delivered,
            Some(NotificationState::Failed) => &mut counts.failed,
            Some(NotificationState::Undeliverable) => &mut counts.undeliverable,
            Some(NotificationState::OptedOut) => &mut counts.opted_out,
            Some(NotificationState::Cancelled) => &mut counts.cancelled,
            None => continue,
        };
        *slot += n;
    }
    Ok(counts)
}

/// The columns of a notification as the control API shows it.
pub const COLUMNS: &str = "month, customer_id, workflow_id, status, attempts, language, segments, \
     failure_category, detail, created_at, updated_at, finished_at, manual_retries";

/// A page of `month`'s notifications ([`COLUMNS`]) in customer order, after `after`, optionally
/// in one `status`; at most `limit` rows.
pub async fn list(
    pool: &PgPool,
    month: YearMonth,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<PgRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications
          WHERE month = $1 AND ($2::text IS NULL OR status = $2)
            AND ($3::text IS NULL OR customer_id > $3)
          ORDER BY customer_id LIMIT $4"
    )))
    .bind(month.first_day().as_naive())
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One notification ([`COLUMNS`]).
pub async fn get(
    pool: &PgPool,
    month: YearMonth,
    customer: &CustomerId,
) -> sqlx::Result<Option<PgRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE month = $1 AND customer_id = $2"
    )))
    .bind(month.first_day().as_naive())
    .bind(customer.as_str())
    .fetch_optional(pool)
    .await
}

/// Every notification of `customer` ([`COLUMNS`]), newest month first.
pub async fn of_customer(pool: &PgPool, customer: &CustomerId) -> sqlx::Result<Vec<PgRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notifications WHERE customer_id = $1 ORDER BY month DESC"
    )))
    .bind(customer.as_str())
    .fetch_all(pool)
    .await
}
