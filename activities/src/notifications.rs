//! Rules of `notifications` that an operator's request changes: a manual retry reopens a
//! notification that ended FAILED or UNDELIVERABLE, once per request id, with its
//! `notification_retries` row and audit entry in the same transaction. The SMS steps' own writes
//! (`PrepareNotification`, `RecordNotification`) are in [`crate::sms`].

use pcn_workflows::domain::{CustomerId, YearMonth};
use pcn_workflows::sms::{self, NotificationState};
use serde_json::json;
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
