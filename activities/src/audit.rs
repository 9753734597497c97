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

/// Which entries [`list`] returns: every given field must match exactly.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    /// Kind of the subject.
    pub subject_type: Option<&'a str>,
    /// Its id.
    pub subject_id: Option<&'a str>,
    /// Who.
    pub actor: Option<&'a str>,
    /// The verb.
    pub action: Option<&'a str>,
    /// Only entries older than this id (the page before).
    pub before: Option<i64>,
}

/// The newest entries matching `filter`, at most `limit`: `id, occurred_at, actor, action,
/// subject_type, subject_id, details` (as JSON text).
pub async fn list(
    pool: &sqlx::PgPool,
    filter: &Filter<'_>,
    limit: i64,
) -> sqlx::Result<Vec<sqlx::postgres::PgRow>> {
    sqlx::query(
        "SELECT id, occurred_at, actor, action, subject_type, subject_id, details::text AS details
           FROM audit_log
          WHERE ($1::text IS NULL OR subject_type = $1) AND ($2::text IS NULL OR subject_id = $2)
            AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR action = $4)
            AND ($5::bigint IS NULL OR id < $5)
          ORDER BY id DESC LIMIT $6",
    )
    .bind(filter.subject_type)
    .bind(filter.subject_id)
    .bind(filter.actor)
    .bind(filter.action)
    .bind(filter.before)
    .bind(limit)
    .fetch_all(pool)
    .await
}
