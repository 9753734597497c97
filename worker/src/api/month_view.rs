//! `GetMonth`: the workflow's state (describe, then the `progress` query while it runs) plus the
//! Postgres counts (decisions by reason, notifications by status, swept days).
//!
//! Under load every caller of a month within [`FRESH_FOR`] shares one computation: the first
//! caller computes while the others wait on the month's lock, then all read the cached view. So
//! the figures are at most about a second old (`as_of` says when they were read), and 32
//! dashboards cost the server what one does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcn_proto::v1 as pb;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{self, MonthPhase, MonthProgress, MonthlyQualificationWorkflow};
use sqlx::{PgPool, Row as _};
use temporalio_client::errors::{WorkflowInteractionError, WorkflowQueryError};
use temporalio_client::{
    Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowQueryOptions,
};
use tonic::Status;

use super::convert::{opt_ts, ts};
use super::{db_error, internal, read_error, temporal_error};

/// How long a computed view is served to further callers.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, pb::Month)>>>;

/// The per-month cache.
#[derive(Clone, Default)]
pub struct MonthViews {
    slots: Arc<Mutex<HashMap<YearMonth, Slot>>>,
}

impl MonthViews {
    fn slot(&self, month: YearMonth) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(month).or_default().clone()
    }

    /// Forgets a month's view (after a change made through the API).
    pub async fn invalidate(&self, month: YearMonth) {
        *self.slot(month).lock().await = None;
    }

    /// The month's view, computed at most once per [`FRESH_FOR`].
    pub async fn get(
        &self,
        pool: &PgPool,
        client: Option<&Client>,
        month: YearMonth,
    ) -> Result<pb::Month, Status> {
        let slot = self.slot(month);
        let mut cached = slot.lock().await;
        if let Some((at, view)) = cached.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(view.clone());
        }
        let view = compute(pool, client, month).await?;
        *cached = Some((Instant::now(), view.clone()));
        Ok(view)
    }
}

/// A month run as Temporal knows it.
pub struct RunState {
    /// The run id.
    pub run_id: String,
    /// Its status.
    pub status: WorkflowExecutionStatus,
    /// The `progress` query's answer, while running (None if the query could not be answered).
    pub progress: Option<MonthProgress>,
}

impl RunState {
    /// The API's phase: the workflow's own phase while it runs, else from how it closed.
    pub fn phase(&self) -> pb::MonthPhase {
        match self.status {
            WorkflowExecutionStatus::Running => match self.progress.as_ref().map(|p| p.phase) {
                Some(MonthPhase::Monitoring) => pb::MonthPhase::Monitoring,
                Some(MonthPhase::Paused) => pb::MonthPhase::Paused,
                Some(MonthPhase::Blocked) => pb::MonthPhase::Blocked,
                Some(MonthPhase::Qualifying) => pb::MonthPhase::Qualifying,
                Some(MonthPhase::Notifying) => pb::MonthPhase::Notifying,
                Some(MonthPhase::Completed) => pb::MonthPhase::Completed,
                None => pb::MonthPhase::Unspecified,
            },
            WorkflowExecutionStatus::Completed => pb::MonthPhase::Completed,
            WorkflowExecutionStatus::Canceled => pb::MonthPhase::Cancelled,
            _ => pb::MonthPhase::Failed,
        }
    }
}

/// Describes the month's run (None if it has none) and queries its progress while it runs.
pub async fn run_state(client: &Client, month: YearMonth) -> Result<Option<RunState>, Status> {
    let handle =
        client.get_workflow_handle::<MonthlyQualificationWorkflow>(month::workflow_id(month));
    let description = match handle.describe(WorkflowDescribeOptions::default()).await {
        Ok(d) => d,
        Err(WorkflowInteractionError::NotFound(_)) => return Ok(None),
        Err(WorkflowInteractionError::Rpc(status)) => {
            return Err(temporal_error("describing the month", &status));
        }
        Err(err) => return Err(internal("describing the month", err)),
    };
    let status = description.status();
    let progress = if status == WorkflowExecutionStatus::Running {
        let query = handle.query(
            MonthlyQualificationWorkflow::progress,
            (),
            WorkflowQueryOptions::default(),
        );
        match tokio::time::timeout(Duration::from_secs(5), query).await {
            Ok(Ok(p)) => Some(p),
            Ok(Err(WorkflowQueryError::Rpc(status))) => {
                tracing::warn!(error = %status, %month, "month progress query failed");
                None
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, %month, "month progress query failed");
                None
            }
            Err(_) => {
                tracing::warn!(%month, "month progress query timed out (no worker?)");
                None
            }
        }
    } else {
        None
    };
    Ok(Some(RunState {
        run_id: description.run_id().to_owned(),
        status,
        progress,
    }))
}

async fn compute(
    pool: &PgPool,
    client: Option<&Client>,
    month: YearMonth,
) -> Result<pb::Month, Status> {
    let client = client.ok_or_else(|| Status::unavailable("Temporal is unavailable; try again"))?;
    let as_of = chrono::Utc::now();
    let first = month.first_day().as_naive();
    let last = month.last_day().as_naive();
    // The run first, then the rows: a phase that says COMPLETED is never shown beside counts read
    // before the last notifications ended (the month completes only once they have).
    let run = run_state(client, month).await?;
    let (decisions, notifications, days, breakers) = tokio::try_join!(
        async {
            pcn_activities::qualify::month_summary(pool, month)
                .await
                .map_err(|e| read_error("counting decisions", e))
        },
        async {
            pcn_activities::notifications::status_counts(pool, month)
                .await
                .map_err(|e| read_error("counting notifications", e))
        },
        async {
            pcn_activities::sweep::days(pool, first, last)
                .await
                .map_err(|e| db_error("reading days", e))
        },
        async {
            pcn_activities::breaker::stored(pool)
                .await
                .map_err(|e| read_error("reading carrier breakers", e))
        },
    )?;
    if run.is_none() && decisions.customers == 0 && notifications.total == 0 && days.is_empty() {
        return Err(Status::not_found(format!(
            "month {month} has no run and no data"
        )));
    }
    let q = pb::QualificationCounts {
        decided: decisions.customers,
        qualified: decisions.qualified,
        not_monitored_whole_month: decisions.not_monitored_whole_month,
        below_threshold: decisions.below_threshold,
        account_not_found: decisions.account_not_found,
        invalid_response: decisions.invalid_response,
        missing_data: decisions.missing_data,
    };
    let c = pb::NotificationCounts {
        total: notifications.total,
        pending: notifications.pending,
        waiting_window: notifications.waiting_window,
        submitted: notifications.submitted,
        retry_wait: notifications.retry_wait,
        delivered: notifications.delivered,
        failed: notifications.failed,
        undeliverable: notifications.undeliverable,
        opted_out: notifications.opted_out,
        cancelled: notifications.cancelled,
    };
    let count =
        |row: &sqlx::postgres::PgRow, col: &str| u64::try_from(row.get::<i32, _>(col)).unwrap_or(0);
    let days: Vec<pb::DayCounts> = days
        .iter()
        .map(|row| pb::DayCounts {
            date: row.get::<chrono::NaiveDate, _>("business_date").to_string(),
            checked: count(row, "checked"),
            passed: count(row, "passed"),
            below_threshold: count(row, "below_threshold"),
            missing: count(row, "missing"),
            not_found: count(row, "not_found"),
            invalid: count(row, "invalid"),
        })
        .collect();
    let progress = run.as_ref().and_then(|r| r.progress.as_ref());
    let days_done = progress
        .map(|p| p.days_done)
        .unwrap_or_else(|| u32::try_from(days.len()).unwrap_or(u32::MAX));
    Ok(pb::Month {
        month: month.to_string(),
        workflow_id: month::workflow_id(month),
        run_id: run.as_ref().map(|r| r.run_id.clone()).unwrap_or_default(),
        phase: run
            .as_ref()
            .map(RunState::phase)
            .unwrap_or(pb::MonthPhase::Unspecified)
            .into(),
        blocked_reason: progress
            .and_then(|p| p.blocked_reason.clone())
            .unwrap_or_default(),
        days_total: month.num_days(),
        days_done,
        next_check_at: opt_ts(progress.and_then(|p| p.next_check_at)),
        qualification: Some(q),
        notifications: Some(c),
        fanout_started: progress
            .map(|p| p.fanout.started + p.fanout.already_started)
            .unwrap_or(0),
        days,
        as_of: ts(as_of),
        carriers: breakers
            .into_iter()
            .map(|b| pb::CarrierBreaker {
                state: match b.state.as_str() {
                    "closed" => pb::BreakerState::Closed,
                    "half_open" => pb::BreakerState::HalfOpen,
                    "open" => pb::BreakerState::Open,
                    _ => pb::BreakerState::Unspecified,
                }
                .into(),
                carrier: b.carrier,
                changed_at: ts(b.changed_at),
                worker: b.worker,
            })
            .collect(),
    })
}
