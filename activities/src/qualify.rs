//! Month-end qualification: one set-based statement decides every customer of the month.
//!
//! A customer qualifies only if every calendar day of the month has a PASSED check (balance at or
//! above the threshold, inclusive). A missing day, a day the bank did not know the account or
//! answered unusably, or a day below the threshold disqualifies (fail-safe,
//! `docs/requirements.md#qualification`). A customer monitored from after the 1st cannot qualify
//! for that month. Decisions are inserted with `ON CONFLICT DO NOTHING` and the table refuses
//! updates, so re-running rewrites nothing.

use anyhow::Context as _;
use pcn_workflows::contracts::{QualificationSummary, QualifyInput};
use pcn_workflows::domain::{CustomerId, Nis, YearMonth};
use sqlx::PgPool;
use sqlx::postgres::PgRow;

use crate::audit::{self, AuditEntry};

/// Decides `input.month` for every active customer monitored on or before its last day.
pub async fn qualify_month(
    pool: &PgPool,
    input: &QualifyInput,
) -> anyhow::Result<QualificationSummary> {
    anyhow::ensure!(input.threshold > Nis::ZERO, "threshold must be positive");
    let month = input.month;
    let mut tx = pool.begin().await?;
    // The per-month tallies are kept by a trigger on `balance_checks` (migration 2), so the
    // decision reads one row per customer instead of aggregating every check of the month.
    let written = sqlx::query(
        "INSERT INTO qualifications (month, customer_id, qualified, reason, days_in_month,
                                     days_passed, days_below, days_missing, days_not_found,
                                     days_invalid, threshold, workflow_id, run_id)
         SELECT $1, c.customer_id,
                c.monitored_since <= $1 AND coalesce(t.passed, 0) = $3,
                CASE WHEN c.monitored_since > $1 THEN 'NOT_MONITORED_WHOLE_MONTH'
                     WHEN coalesce(t.passed, 0) = $3 THEN 'QUALIFIED'
                     WHEN coalesce(t.below, 0) > 0 THEN 'BELOW_THRESHOLD'
                     WHEN coalesce(t.not_found, 0) > 0 THEN 'ACCOUNT_NOT_FOUND'
                     WHEN coalesce(t.invalid, 0) > 0 THEN 'INVALID_RESPONSE'
                     ELSE 'MISSING_DATA' END,
                $3,
                coalesce(t.passed, 0), coalesce(t.below, 0),
                $3 - coalesce(t.passed, 0) - coalesce(t.below, 0) - coalesce(t.not_found, 0)
                   - coalesce(t.invalid, 0),
                coalesce(t.not_found, 0), coalesce(t.invalid, 0),
                $4, $5, $6
           FROM customers c
           LEFT JOIN monthly_tallies t ON t.month = $1 AND t.customer_id = c.customer_id
          WHERE c.active AND c.monitored_since <= $2
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(month.first_day().as_naive())
    .bind(month.last_day().as_naive())
    .bind(i16::try_from(month.num_days()).unwrap_or(31))
    .bind(input.threshold.amount())
    .bind(&input.run.workflow_id)
    .bind(&input.run.run_id)
    .execute(&mut *tx)
    .await
    .context("deciding the month")?
    .rows_affected();

    let mut summary = month_summary(&mut *tx, month).await?;
    summary.written_now = written;
    audit::record(
        &mut *tx,
        &AuditEntry {
            actor: format!("workflow:{}", input.run.workflow_id),
            action: "MONTH_QUALIFIED",
            subject_type: "month",
            subject_id: month.to_string(),
            details: serde_json::json!({
                "customers": summary.customers,
                "qualified": summary.qualified,
                "not_monitored_whole_month": summary.not_monitored_whole_month,
                "below_threshold": summary.below_threshold,
                "account_not_found": summary.account_not_found,
                "invalid_response": summary.invalid_response,
                "missing_data": summary.missing_data,
                "threshold": input.threshold.to_string(),
                "run_id": input.run.run_id,
            }),
            idempotency_key: Some(format!("qualification/{month}")),
        },
    )
    .await
    .context("auditing the decision")?;
    tx.commit().await?;
    Ok(summary)
}

/// Counts of the decisions of `month`.
pub async fn month_summary<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    month: YearMonth,
) -> anyhow::Result<QualificationSummary> {
    // `reason = 'QUALIFIED'` rather than `qualified` (the same by the table's CHECK): every
    // column read is then in `qualifications_month_reason_idx`, an index-only scan.
    let row = sqlx::query(
        "SELECT count(*),
                count(*) FILTER (WHERE reason = 'QUALIFIED'),
                count(*) FILTER (WHERE reason = 'NOT_MONITORED_WHOLE_MONTH'),
                count(*) FILTER (WHERE reason = 'BELOW_THRESHOLD'),
                count(*) FILTER (WHERE reason = 'ACCOUNT_NOT_FOUND'),
                count(*) FILTER (WHERE reason = 'INVALID_RESPONSE'),
                count(*) FILTER (WHERE reason = 'MISSING_DATA')
           FROM qualifications WHERE month = $1",
    )
    .bind(month.first_day().as_naive())
    .fetch_one(executor)
    .await
    .context("counting decisions")?;
    let n = |i| crate::db::count_column(&row, i);
    Ok(QualificationSummary {
        month: Some(month),
        customers: n(0),
        qualified: n(1),
        not_monitored_whole_month: n(2),
        below_threshold: n(3),
        account_not_found: n(4),
        invalid_response: n(5),
        missing_data: n(6),
        written_now: 0,
    })
}

/// How many customers qualified in `month`.
pub async fn qualified_count(pool: &PgPool, month: YearMonth) -> sqlx::Result<u64> {
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM qualifications WHERE month = $1 AND qualified")
            .bind(month.first_day().as_naive())
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// The fan-out's page: up to `limit` customers who qualified in `month`, after `after`, in
/// customer order.
pub async fn qualified_page(
    pool: &PgPool,
    month: YearMonth,
    after: Option<&CustomerId>,
    limit: u32,
) -> anyhow::Result<Vec<CustomerId>> {
    let customers: Vec<String> = sqlx::query_scalar(
        "SELECT customer_id FROM qualifications
          WHERE month = $1 AND qualified AND customer_id > $2
          ORDER BY customer_id LIMIT $3",
    )
    .bind(month.first_day().as_naive())
    .bind(after.map_or("", CustomerId::as_str))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(customers
        .iter()
        .map(|c| CustomerId::parse(c))
        .collect::<Result<_, _>>()?)
}

/// The columns of a decision as the control API shows it.
pub const COLUMNS: &str = "month, customer_id, qualified, reason, days_in_month, days_passed, \
     days_below, days_missing, days_not_found, days_invalid, threshold, decided_at";

/// A page of `month`'s decisions ([`COLUMNS`]) in customer order, after `after`, optionally only
/// `qualified` ones or one `reason`; at most `limit` rows.
pub async fn list(
    pool: &PgPool,
    month: YearMonth,
    qualified: Option<bool>,
    reason: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<PgRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM qualifications
          WHERE month = $1 AND ($2::bool IS NULL OR qualified = $2)
            AND ($3::text IS NULL OR reason = $3) AND ($4::text IS NULL OR customer_id > $4)
          ORDER BY customer_id LIMIT $5"
    )))
    .bind(month.first_day().as_naive())
    .bind(qualified)
    .bind(reason)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Every decision about `customer` ([`COLUMNS`]), newest month first.
pub async fn of_customer(pool: &PgPool, customer: &CustomerId) -> sqlx::Result<Vec<PgRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM qualifications WHERE customer_id = $1 ORDER BY month DESC"
    )))
    .bind(customer.as_str())
    .fetch_all(pool)
    .await
}
