//! `GetMonth`: the workflow's state (describe, then the `progress` query while it runs) plus the
//! Postgres counts (decisions by reason, notifications by status, swept days).
//!
//! Honest when a part is down: without a worker to answer the query, the phase is the one the run
//! last published (`PcnPhase`); without Temporal, it is inferred from Postgres
//! ([`inferred_phase`]); `degraded` says which, so `pcnctl month get/watch` never show
//! UNSPECIFIED for a month that exists.
//!
//! Under load every caller of a month within [`FRESH_FOR`] shares one computation: the first
//! caller computes while the others wait on the month's lock, then all read the cached view. So
//! the figures are at most about a second old (`as_of` says when they were read), and 32
//! dashboards cost the server what one does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcn_proto::v1 as pb;
use pcn_workflows::contracts::NotificationCounts;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{self, MonthPhase, MonthProgress, MonthlyQualificationWorkflow};
use sqlx::{PgPool, Row as _};
use temporalio_client::errors::WorkflowQueryError;
use temporalio_client::{Client, WorkflowExecutionStatus, WorkflowQueryOptions};
use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus as ProtoStatus;
use tonic::Status;

use super::convert::{opt_ts, ts};
use super::{db_error, read_error, temporal_error};

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
    /// The phase the run last published (its `PcnPhase` search attribute).
    pub published: Option<MonthPhase>,
}

impl RunState {
    /// The API's phase: the workflow's own phase while it runs, else from how it closed.
    pub fn phase(&self) -> pb::MonthPhase {
        match self.status {
            WorkflowExecutionStatus::Running => self
                .progress
                .as_ref()
                .map(|p| p.phase)
                .or(self.published)
                .map_or(pb::MonthPhase::Unspecified, api_phase),
            WorkflowExecutionStatus::Completed => pb::MonthPhase::Completed,
            WorkflowExecutionStatus::Canceled => pb::MonthPhase::Cancelled,
            _ => pb::MonthPhase::Failed,
        }
    }
}

/// The API's spelling of a workflow phase.
pub fn api_phase(phase: MonthPhase) -> pb::MonthPhase {
    match phase {
        MonthPhase::Monitoring => pb::MonthPhase::Monitoring,
        MonthPhase::Paused => pb::MonthPhase::Paused,
        MonthPhase::Blocked => pb::MonthPhase::Blocked,
        MonthPhase::Qualifying => pb::MonthPhase::Qualifying,
        MonthPhase::Notifying => pb::MonthPhase::Notifying,
        MonthPhase::Completed => pb::MonthPhase::Completed,
    }
}

/// The phase a run published last, from its description's `PcnPhase` search attribute.
fn published_phase(
    description: &temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkflowExecutionResponse,
) -> Option<MonthPhase> {
    let payload = description
        .workflow_execution_info
        .as_ref()?
        .search_attributes
        .as_ref()?
        .indexed_fields
        .get(pcn_workflows::search::PHASE.name())?;
    serde_json::from_slice(&payload.data).ok()
}

/// What Postgres says about a month whose run cannot be asked (Temporal unreachable): decisions
/// and notifications are written by the run's own steps, so they tell how far it got.
pub fn inferred_phase(
    days_recorded: u32,
    days_total: u32,
    decided: u64,
    qualified: u64,
    notifications: &NotificationCounts,
) -> pb::MonthPhase {
    let finals = notifications.delivered
        + notifications.failed
        + notifications.undeliverable
        + notifications.opted_out
        + notifications.cancelled;
    if decided == 0 {
        if days_recorded >= days_total {
            pb::MonthPhase::Qualifying
        } else {
            pb::MonthPhase::Monitoring
        }
    } else if notifications.total >= qualified && finals == notifications.total {
        pb::MonthPhase::Completed
    } else {
        pb::MonthPhase::Notifying
    }
}

/// Describes the month's run (None if it has none) and queries its progress while it runs.
pub async fn run_state(client: &Client, month: YearMonth) -> Result<Option<RunState>, Status> {
    let handle =
        client.get_workflow_handle::<MonthlyQualificationWorkflow>(month::workflow_id(month));
    let description = match crate::temporal::describe_raw(client, &month::workflow_id(month)).await
    {
        Ok(d) => d,
        Err(status) if status.code() == tonic::Code::NotFound => return Ok(None),
        Err(status) => return Err(temporal_error("describing the month", &status)),
    };
    let info = description.workflow_execution_info.as_ref();
    let status = info
        .and_then(|i| ProtoStatus::try_from(i.status).ok())
        .map(WorkflowExecutionStatus::from)
        .unwrap_or(WorkflowExecutionStatus::Unspecified);
    let run_id = info
        .and_then(|i| i.execution.as_ref())
        .map(|e| e.run_id.clone())
        .unwrap_or_default();
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
        run_id,
        status,
        progress,
        published: published_phase(&description),
    }))
}

async fn compute(
    pool: &PgPool,
    client: Option<&Client>,
    month: YearMonth,
) -> Result<pb::Month, Status> {
    let as_of = chrono::Utc::now();
    let first = month.first_day().as_naive();
    let last = month.last_day().as_naive();
    // The run first, then the rows: a phase that says COMPLETED is never shown beside counts read
    // before the last notifications ended (the month completes only once they have).
    let (run, temporal_down) = match client {
        None => (None, Some("Temporal is unreachable".to_owned())),
        Some(client) => match run_state(client, month).await {
            Ok(run) => (run, None),
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded
                ) =>
            {
                (
                    None,
                    Some(format!("Temporal did not answer ({})", status.message())),
                )
            }
            Err(status) => return Err(status),
        },
    };
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
        if let Some(down) = temporal_down {
            return Err(Status::unavailable(format!(
                "{down} and Postgres has no data for {month}: whether it has a run is unknown; try again"
            )));
        }
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
    let days_recorded = u32::try_from(days.len()).unwrap_or(u32::MAX);
    let days_done = progress.map_or(days_recorded, |p| p.days_done);
    let from_postgres = || {
        inferred_phase(
            days_recorded,
            month.num_days(),
            q.decided,
            q.qualified,
            &notifications,
        )
    };
    const NO_WORKER: &str = "no worker answered the run's progress query";
    let (phase, degraded) = match (&run, temporal_down) {
        (_, Some(down)) => (
            from_postgres(),
            format!(
                "{down}: the phase is inferred from Postgres (decisions, notifications, swept days)"
            ),
        ),
        (Some(r), None) if r.status == WorkflowExecutionStatus::Running && r.progress.is_none() => {
            match r.published {
                Some(_) => (
                    r.phase(),
                    format!(
                        "{NO_WORKER}: the phase is the one the run last published (PcnPhase); \
                         is a worker running?"
                    ),
                ),
                None => (
                    from_postgres(),
                    format!(
                        "{NO_WORKER} and the run published no phase: the phase is inferred from \
                         Postgres; is a worker running?"
                    ),
                ),
            }
        }
        (Some(r), None) => (r.phase(), String::new()),
        // No run, but data (e.g. a run removed by retention): what Postgres says.
        (None, None) => (
            from_postgres(),
            "the month has no run in Temporal: the phase is inferred from Postgres".to_owned(),
        ),
    };
    Ok(pb::Month {
        month: month.to_string(),
        workflow_id: month::workflow_id(month),
        run_id: run.as_ref().map(|r| r.run_id.clone()).unwrap_or_default(),
        phase: phase.into(),
        degraded,
        blocked_reason: progress
            .and_then(|p| p.blocked_reason.clone())
            .unwrap_or_default(),
        days_total: month.num_days(),
        days_done,
        next_check_at: opt_ts(progress.and_then(|p| p.next_check_at)),
        qualification: Some(q),
        notifications: Some(c),
        fanout_started: progress.map_or(c.total, |p| p.fanout.started + p.fanout.already_started),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(total: u64, delivered: u64, submitted: u64) -> NotificationCounts {
        NotificationCounts {
            total,
            delivered,
            submitted,
            ..NotificationCounts::default()
        }
    }

    #[test]
    fn postgres_tells_how_far_a_month_got() {
        let none = counts(0, 0, 0);
        assert_eq!(
            inferred_phase(0, 30, 0, 0, &none),
            pb::MonthPhase::Monitoring
        );
        assert_eq!(
            inferred_phase(12, 30, 0, 0, &none),
            pb::MonthPhase::Monitoring
        );
        assert_eq!(
            inferred_phase(30, 30, 0, 0, &none),
            pb::MonthPhase::Qualifying
        );
        // Decided, fan-out not done or notifications still out.
        assert_eq!(
            inferred_phase(30, 30, 100, 40, &counts(10, 10, 0)),
            pb::MonthPhase::Notifying
        );
        assert_eq!(
            inferred_phase(30, 30, 100, 40, &counts(40, 39, 1)),
            pb::MonthPhase::Notifying
        );
        // Every qualified customer's notification is final.
        assert_eq!(
            inferred_phase(30, 30, 100, 40, &counts(40, 40, 0)),
            pb::MonthPhase::Completed
        );
        // Nobody qualified: nothing to send.
        assert_eq!(
            inferred_phase(30, 30, 100, 0, &none),
            pb::MonthPhase::Completed
        );
    }
}
