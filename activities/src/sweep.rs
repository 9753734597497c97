//! The daily balance sweep: one business date, every active monitored customer.
//!
//! Customers are read in keyset pages of customers that have **no row yet** for the date, so a
//! retry after a crash resumes exactly where the rows stop: nobody is checked twice (the primary
//! key `(customer_id, business_date)` and `ON CONFLICT DO NOTHING` make even a race harmless) and
//! nobody is skipped (a customer without a row is found by the next attempt). Bank requests run
//! with bounded concurrency; each page is written with one `INSERT ... SELECT FROM UNNEST`, while
//! the next page is already being fetched.
//!
//! Just over 600 lines: the owner of `balance_checks` and `daily_sweeps` (the sweep, its writes,
//! its reads for the control API) with its fault log lines; the bank client is `bank.rs`.

use std::future::Future;
use std::time::Instant;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use pcn_workflows::contracts::{DailySweepInput, SweepSummary};
use pcn_workflows::domain::{AccountId, BusinessDate, Nis};
use pcn_workflows::vocabulary::CheckOutcome;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use tokio::task::JoinHandle;

use crate::audit::{self, AuditEntry};
use crate::bank::{BankAnswer, BankClient, BankError};
use crate::metrics::Metrics;

/// Page size and concurrency of the sweep.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// Customers per page (and per insert statement).
    pub page_size: i64,
    /// Bank requests in flight at once.
    pub concurrency: usize,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            page_size: 1_000,
            concurrency: 64,
        }
    }
}

/// Which execution of a day's sweep this is (from the activity's info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first execution.
    pub number: u32,
    /// When the day's sweep was first scheduled (the first attempt): the whole day's sweep is
    /// measured from there.
    pub first_scheduled: Option<DateTime<Utc>>,
}

impl Attempt {
    /// The first execution, scheduled now (benchmarks, tools).
    pub fn first() -> Self {
        Self {
            number: 1,
            first_scheduled: None,
        }
    }
}

/// A batch of bank answers that takes longer than this is logged as a slow bank (the bank's
/// response-time target, docs/requirements.md#targets).
const SLOW_BATCH: std::time::Duration = std::time::Duration::from_secs(5);

/// Heartbeat details: how far this execution got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Rows written by this execution so far.
    pub written: u64,
    /// Last customer id of the last page fetched.
    pub cursor: Option<String>,
    /// Accounts the bank could not answer yet.
    pub unanswered: u64,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The bank refused our credentials: retrying cannot help.
    #[error("core banking refused our credentials: {0}")]
    BankAuthentication(String),
    /// Temporal cancelled the activity.
    #[error("cancelled")]
    Cancelled,
    /// Anything else; retryable.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// One row to insert.
struct CheckRow {
    customer_id: String,
    outcome: CheckOutcome,
    amount: Option<Decimal>,
    currency: Option<String>,
    reference_id: Option<String>,
    detail: Option<String>,
    fetched_at: DateTime<Utc>,
}

impl CheckRow {
    fn from_answer(customer_id: String, answer: BankAnswer, threshold: Nis) -> Self {
        let fetched_at = Utc::now();
        match answer {
            BankAnswer::Balance {
                amount,
                reference_id,
            } => Self {
                customer_id,
                outcome: if amount >= threshold {
                    CheckOutcome::Passed
                } else {
                    CheckOutcome::BelowThreshold
                },
                amount: Some(amount.amount()),
                currency: Some("NIS".to_owned()),
                reference_id,
                detail: None,
                fetched_at,
            },
            BankAnswer::NotFound => Self {
                customer_id,
                outcome: CheckOutcome::AccountNotFound,
                amount: None,
                currency: None,
                reference_id: None,
                detail: Some("HTTP 404".to_owned()),
                fetched_at,
            },
            BankAnswer::Invalid {
                detail,
                currency,
                amount,
                reference_id,
            } => Self {
                customer_id,
                outcome: CheckOutcome::InvalidResponse,
                // NUMERIC(18,2) would round a longer scale; keep only what fits exactly.
                amount: amount
                    .filter(|a| a.scale() <= 2 && a.abs() < Decimal::from(10_i64.pow(15))),
                currency,
                reference_id,
                detail: Some(detail),
                fetched_at,
            },
        }
    }

    fn missing(customer_id: String, why: String) -> Self {
        Self {
            customer_id,
            outcome: CheckOutcome::Missing,
            amount: None,
            currency: None,
            reference_id: None,
            detail: Some(why),
            fetched_at: Utc::now(),
        }
    }
}

/// Runs the sweep for `input.date`. `heartbeat` is called after every batch of bank answers (one
/// per `concurrency` accounts, so even a bank that takes 25 s per answer heartbeats every 25 s
/// and never looks like a dead attempt) and after every page; it returns false when the sweep
/// must stop (activity cancelled) — what was fetched is written first, so no account is asked
/// twice for the day because of a retry.
pub async fn run_daily_sweep<H, F>(
    pool: &PgPool,
    bank: &BankClient,
    settings: &SweepSettings,
    metrics: &Metrics,
    input: &DailySweepInput,
    attempt: Attempt,
    heartbeat: H,
) -> Result<SweepSummary, SweepError>
where
    H: Fn(Progress) -> F,
    F: Future<Output = bool>,
{
    if input.threshold <= Nis::ZERO {
        return Err(anyhow::anyhow!("threshold must be positive").into());
    }
    let started = Instant::now();
    let date = input.date;
    let month = date.year_month();
    // `balance_checks` is partitioned by month (migration 14): keep the partitions ahead.
    crate::partitions::keep_ahead(pool, date.as_naive()).await;
    if attempt.number > 1 {
        let before = day_summary(pool, date).await?;
        tracing::warn!(
            %month,
            %date,
            attempt = attempt.number,
            already_checked = before.checked,
            "daily sweep retried: the previous attempt failed or timed out; resuming where the rows stop"
        );
    }
    // Past the give-up time an account gets one attempt, then is recorded MISSING: a bank that is
    // still down must not hold the month hostage (docs/requirements.md#daily-sweep).
    let giving_up = Utc::now() >= input.give_up_at;
    let single_attempt = giving_up.then(|| bank.with_attempts(1));
    let bank = single_attempt.as_ref().unwrap_or(bank);

    let mut progress = Progress::default();
    let mut given_up: u64 = 0;
    let mut unanswered: Vec<(String, String)> = Vec::new();
    let mut pending_write: Option<JoinHandle<anyhow::Result<u64>>> = None;
    let mut cursor = String::new();
    loop {
        let page = unchecked_page(pool, date, &cursor, settings.page_size).await?;
        let Some((last, _)) = page.last() else { break };
        cursor = last.clone();

        let page_len = page.len();
        let mut fetching = stream::iter(page)
            .map(|(customer_id, account_id)| async move {
                let answer = match AccountId::parse(&account_id) {
                    Ok(account) => bank.balance(&account, date).await,
                    // The table constraint makes this unreachable; record it rather than panic.
                    Err(err) => Ok(BankAnswer::Invalid {
                        detail: err.to_string(),
                        currency: None,
                        amount: None,
                        reference_id: None,
                    }),
                };
                (customer_id, answer)
            })
            .buffer_unordered(settings.concurrency.max(1));
        let batch = settings.concurrency.max(1);
        let mut answers: Vec<(String, Result<BankAnswer, BankError>)> =
            Vec::with_capacity(page_len);
        let mut stopped = false;
        let mut batch_started = Instant::now();
        let mut slowest = std::time::Duration::ZERO;
        while let Some(answer) = fetching.next().await {
            answers.push(answer);
            if answers.len().is_multiple_of(batch) && answers.len() < page_len {
                slowest = slowest.max(batch_started.elapsed());
                batch_started = Instant::now();
                let mut beat = progress.clone();
                beat.unanswered = unanswered.len() as u64;
                if !heartbeat(beat).await {
                    stopped = true;
                    break;
                }
            }
        }
        drop(fetching);
        slowest = slowest.max(batch_started.elapsed());
        if slowest > SLOW_BATCH {
            tracing::warn!(
                %month,
                %date,
                accounts = answers.len(),
                slowest_batch_secs = slowest.as_secs_f64(),
                batch,
                "bank slow: a batch of balance requests took longer than 5 s"
            );
        }

        let mut rows = Vec::with_capacity(answers.len());
        for (customer_id, answer) in answers {
            match answer {
                Ok(answer) => {
                    metrics
                        .bank_answers
                        .with_label_values(&[answer_kind(&answer)])
                        .inc();
                    rows.push(CheckRow::from_answer(customer_id, answer, input.threshold));
                }
                Err(BankError::Unauthorized(why)) => {
                    metrics
                        .bank_answers
                        .with_label_values(&["unauthorized"])
                        .inc();
                    finish_write(pending_write.take()).await?;
                    tracing::error!(
                        %month,
                        %date,
                        written = progress.written,
                        reason = %why,
                        "daily sweep stopped: the bank refused our credentials; the month is BLOCKED until an operator resumes it (pcnctl month resume)"
                    );
                    return Err(SweepError::BankAuthentication(why));
                }
                Err(BankError::Unavailable(why)) => {
                    metrics
                        .bank_answers
                        .with_label_values(&["unavailable"])
                        .inc();
                    if giving_up {
                        given_up += 1;
                        rows.push(CheckRow::missing(customer_id, why));
                    } else {
                        unanswered.push((customer_id, why));
                    }
                }
            }
        }

        progress.written += finish_write(pending_write.take()).await?;
        for row in &rows {
            metrics
                .checks
                .with_label_values(&[row.outcome.as_str()])
                .inc();
        }
        let pool = pool.clone();
        let run = input.run.clone();
        let threshold = input.threshold;
        pending_write = Some(tokio::spawn(async move {
            insert_checks(&pool, date, threshold, &run.workflow_id, &run.run_id, rows).await
        }));
        progress.cursor = Some(cursor.clone());
        progress.unanswered = unanswered.len() as u64;
        if stopped || !heartbeat(progress.clone()).await {
            finish_write(pending_write.take()).await?;
            return Err(SweepError::Cancelled);
        }
    }
    progress.written += finish_write(pending_write.take()).await?;

    if !unanswered.is_empty() {
        let (_, example) = &unanswered[0];
        tracing::warn!(
            %month,
            %date,
            attempt = attempt.number,
            unanswered = unanswered.len(),
            written = progress.written,
            example = %example,
            give_up_at = %input.give_up_at,
            elapsed_secs = started.elapsed().as_secs_f64(),
            "daily sweep attempt failed: accounts not answered yet; Temporal retries it (only the unanswered accounts are asked again) until the give-up time"
        );
        return Err(anyhow::anyhow!(
            "{} accounts not answered yet for {date} (e.g. {example}); retrying until {}",
            unanswered.len(),
            input.give_up_at
        )
        .into());
    }

    let mut summary = day_summary(pool, date).await?;
    summary.written_now = progress.written;
    if given_up > 0 {
        tracing::error!(
            %month,
            %date,
            missing = given_up,
            checked = summary.checked,
            give_up_at = %input.give_up_at,
            "daily sweep gave up: accounts the bank did not answer by the give-up time are recorded MISSING (they cannot qualify this month)"
        );
    }
    // The whole day's sweep, from its first scheduling across every retry.
    let whole = attempt
        .first_scheduled
        .and_then(|at| (Utc::now() - at).to_std().ok())
        .unwrap_or_else(|| started.elapsed());
    metrics.sweep_duration.observe(whole.as_secs_f64());
    record_completion(pool, input, &summary).await?;
    Ok(summary)
}

fn answer_kind(answer: &BankAnswer) -> &'static str {
    match answer {
        BankAnswer::Balance { .. } => "ok",
        BankAnswer::NotFound => "not_found",
        BankAnswer::Invalid { .. } => "invalid",
    }
}

async fn finish_write(handle: Option<JoinHandle<anyhow::Result<u64>>>) -> anyhow::Result<u64> {
    match handle {
        Some(handle) => handle.await.context("balance check writer")?,
        None => Ok(0),
    }
}

/// The latest business date whose daily sweep completed (`daily_sweeps`), if any.
pub async fn last_swept_date(pool: &PgPool) -> anyhow::Result<Option<BusinessDate>> {
    let date: Option<chrono::NaiveDate> =
        sqlx::query_scalar("SELECT max(business_date) FROM daily_sweeps")
            .fetch_one(pool)
            .await
            .context("reading the last swept date")?;
    date.map(BusinessDate::from_naive)
        .transpose()
        .context("a swept date out of the supported range")
}

/// The next page of customers due a check on `date` that have no row for it yet.
async fn unchecked_page(
    pool: &PgPool,
    date: BusinessDate,
    after: &str,
    limit: i64,
) -> anyhow::Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT c.customer_id, c.account_id
           FROM customers c
          WHERE c.active AND c.monitored_since <= $1 AND c.customer_id > $2
            AND NOT EXISTS (SELECT 1 FROM balance_checks b
                             WHERE b.customer_id = c.customer_id AND b.business_date = $1)
          ORDER BY c.customer_id
          LIMIT $3",
    )
    .bind(date.as_naive())
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("reading customers to check")?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect())
}

async fn insert_checks(
    pool: &PgPool,
    date: BusinessDate,
    threshold: Nis,
    workflow_id: &str,
    run_id: &str,
    rows: Vec<CheckRow>,
) -> anyhow::Result<u64> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut amounts = Vec::with_capacity(rows.len());
    let mut currencies = Vec::with_capacity(rows.len());
    let mut references = Vec::with_capacity(rows.len());
    let mut details = Vec::with_capacity(rows.len());
    let mut fetched = Vec::with_capacity(rows.len());
    for row in rows {
        ids.push(row.customer_id);
        outcomes.push(row.outcome.as_str());
        amounts.push(row.amount);
        currencies.push(row.currency);
        references.push(row.reference_id);
        details.push(row.detail);
        fetched.push(row.fetched_at);
    }
    let written = sqlx::query(
        "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
                                     threshold, bank_reference_id, detail, fetched_at,
                                     workflow_id, run_id)
         SELECT u.customer_id, $1, u.outcome, u.amount, u.currency, $2, u.reference, u.detail,
                u.fetched_at, $3, $4
           FROM UNNEST($5::text[], $6::text[], $7::numeric[], $8::text[], $9::text[], $10::text[],
                       $11::timestamptz[])
                AS u(customer_id, outcome, amount, currency, reference, detail, fetched_at)
         ON CONFLICT (customer_id, business_date) DO NOTHING",
    )
    .bind(date.as_naive())
    .bind(threshold.amount())
    .bind(workflow_id)
    .bind(run_id)
    .bind(&ids)
    .bind(&outcomes)
    .bind(&amounts)
    .bind(&currencies)
    .bind(&references)
    .bind(&details)
    .bind(&fetched)
    .execute(pool)
    .await
    .context("writing balance checks")?
    .rows_affected();
    Ok(written)
}

/// Counts of the rows for `date`, by outcome.
pub async fn day_summary(pool: &PgPool, date: BusinessDate) -> anyhow::Result<SweepSummary> {
    let row = sqlx::query(
        "SELECT count(*),
                count(*) FILTER (WHERE outcome = 'PASSED'),
                count(*) FILTER (WHERE outcome = 'BELOW_THRESHOLD'),
                count(*) FILTER (WHERE outcome = 'MISSING'),
                count(*) FILTER (WHERE outcome = 'ACCOUNT_NOT_FOUND'),
                count(*) FILTER (WHERE outcome = 'INVALID_RESPONSE')
           FROM balance_checks WHERE business_date = $1",
    )
    .bind(date.as_naive())
    .fetch_one(pool)
    .await
    .context("counting balance checks")?;
    let n = |i| crate::db::count_column(&row, i);
    Ok(SweepSummary {
        date,
        checked: n(0),
        passed: n(1),
        below_threshold: n(2),
        missing: n(3),
        not_found: n(4),
        invalid: n(5),
        written_now: 0,
    })
}

async fn record_completion(
    pool: &PgPool,
    input: &DailySweepInput,
    summary: &SweepSummary,
) -> anyhow::Result<()> {
    let count = |v: u64| i32::try_from(v).unwrap_or(i32::MAX);
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO daily_sweeps (business_date, checked, passed, below_threshold, missing,
                                   not_found, invalid, workflow_id, run_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (business_date) DO NOTHING",
    )
    .bind(input.date.as_naive())
    .bind(count(summary.checked))
    .bind(count(summary.passed))
    .bind(count(summary.below_threshold))
    .bind(count(summary.missing))
    .bind(count(summary.not_found))
    .bind(count(summary.invalid))
    .bind(&input.run.workflow_id)
    .bind(&input.run.run_id)
    .execute(&mut *tx)
    .await
    .context("recording the sweep")?;
    audit::record(
        &mut *tx,
        &AuditEntry {
            actor: format!("workflow:{}", input.run.workflow_id),
            action: "DAILY_SWEEP_COMPLETED",
            subject_type: "business_date",
            subject_id: input.date.to_string(),
            details: serde_json::json!({
                "checked": summary.checked,
                "passed": summary.passed,
                "below_threshold": summary.below_threshold,
                "missing": summary.missing,
                "not_found": summary.not_found,
                "invalid": summary.invalid,
                "threshold": input.threshold.to_string(),
                "run_id": input.run.run_id,
            }),
            idempotency_key: Some(format!("sweep/{}", input.date)),
        },
    )
    .await
    .context("auditing the sweep")?;
    tx.commit().await?;
    Ok(())
}

/// The first day of the latest month with a check of `customer` (None: never checked).
pub async fn latest_checked_month(
    pool: &PgPool,
    customer: &pcn_workflows::domain::CustomerId,
) -> sqlx::Result<Option<chrono::NaiveDate>> {
    sqlx::query_scalar(
        "SELECT date_trunc('month', max(business_date))::date FROM balance_checks
          WHERE customer_id = $1",
    )
    .bind(customer.as_str())
    .fetch_one(pool)
    .await
}

/// `customer`'s checks of the month starting on `first`, by day: `business_date, outcome,
/// amount, threshold, detail, fetched_at`.
pub async fn customer_checks(
    pool: &PgPool,
    customer: &pcn_workflows::domain::CustomerId,
    first: chrono::NaiveDate,
) -> sqlx::Result<Vec<sqlx::postgres::PgRow>> {
    sqlx::query(
        "SELECT business_date, outcome, amount, threshold, detail, fetched_at
           FROM balance_checks
          WHERE customer_id = $1 AND business_date >= $2
            AND business_date < ($2 + interval '1 month')::date
          ORDER BY business_date",
    )
    .bind(customer.as_str())
    .bind(first)
    .fetch_all(pool)
    .await
}

/// The recorded sweeps (`daily_sweeps`) of the days `first..=last`: `business_date, checked,
/// passed, below_threshold, missing, not_found, invalid`.
pub async fn days(
    pool: &PgPool,
    first: chrono::NaiveDate,
    last: chrono::NaiveDate,
) -> sqlx::Result<Vec<sqlx::postgres::PgRow>> {
    sqlx::query(
        "SELECT business_date, checked, passed, below_threshold, missing, not_found, invalid
           FROM daily_sweeps WHERE business_date BETWEEN $1 AND $2 ORDER BY business_date",
    )
    .bind(first)
    .bind(last)
    .fetch_all(pool)
    .await
}
