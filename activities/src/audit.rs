//! The append-only audit log. Entries are only ever inserted (the database refuses UPDATE,
//! DELETE and TRUNCATE); an entry written by a retried step carries an idempotency key so the
//! retry does not write it twice.

use serde_json::Value;
use sqlx::PgExecutor;

/// One audit entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who: `workflow:qualification/2026-10`, `admin:<name>`, `system`.
    pub actor: String,
    /// A stable verb: `DAILY_SWEEP_COMPLETED`, `MONTH_QUALIFIED`, ...
    pub action: &'static str,
    /// Kind of the subject: `business_date`, `month`, `customer`, ...
    pub subject_type: &'static str,
    /// Its id.
    pub subject_id: String,
    /// Structured details (never a phone number).
    pub details: Value,
    /// Business key of the step that writes it, when it may be retried.
    pub idempotency_key: Option<String>,
}

/// Appends `entry`; returns false when an entry with the same idempotency key already exists.
pub async fn record<'e>(executor: impl PgExecutor<'e>, entry: &AuditEntry) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO audit_log (actor, action, subject_type, subject_id, details, idempotency_key)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(&entry.actor)
    .bind(entry.action)
    .bind(entry.subject_type)
    .bind(&entry.subject_id)
    .bind(&entry.details)
    .bind(&entry.idempotency_key)
    .execute(executor)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
