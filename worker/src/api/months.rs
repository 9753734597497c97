//! Months: `StartMonth`, `GetMonth`, `PauseMonth`, `ResumeMonth`, `CancelMonth`, and a month's
//! decisions, `ListQualifications`.

use pcn_activities::audit::AuditEntry;
use pcn_proto::v1 as pb;
use pcn_workflows::domain::DomainError;
use pcn_workflows::month::{self, MonthlyQualificationWorkflow};
use serde_json::json;
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError};
use temporalio_client::{WorkflowCancelOptions, WorkflowExecutionStatus, WorkflowSignalOptions};
use tonic::{Request, Response, Status};

use super::auth::{Caller, Role};
use super::convert;
use super::month_view;
use super::service::{Control, month_of, page, reason_of, today};
use super::{db_error, internal, invalid, temporal_error};

impl Control {
    pub(super) async fn start_month_impl(
        &self,
        request: Request<pb::StartMonthRequest>,
    ) -> Result<Response<pb::StartMonthResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "StartMonth")?;
        let month = month_of(&request.get_ref().month)?;
        let current = today().year_month();
        if month > current.next() {
            return Err(invalid(DomainError::new(
                "month",
                format!("{month} is more than one month ahead (now {current})"),
            )));
        }
        let client = self.temporal().await?;
        let outcome = crate::months::start_month(
            &client,
            &self.state.task_queue,
            month,
            self.state.month_settings.clone(),
        )
        .await
        .map_err(|e| match e.downcast_ref::<WorkflowStartError>() {
            Some(WorkflowStartError::Rpc(status)) => temporal_error("starting the month", status),
            _ => internal("starting the month", format!("{e:#}")),
        })?;
        let run_id = match outcome {
            crate::months::StartOutcome::Started { run_id } => run_id,
            crate::months::StartOutcome::AlreadyStarted => {
                return Err(Status::already_exists(format!(
                    "{} already has a run; a month runs once",
                    month::workflow_id(month)
                )));
            }
        };
        let backfill = month.last_day() < today();
        self.audit(AuditEntry {
            actor: caller.actor(),
            action: "MONTH_STARTED",
            subject_type: "month",
            subject_id: month.to_string(),
            details: json!({ "run_id": run_id, "backfill": backfill, "role": caller.role.as_str() }),
            idempotency_key: Some(format!("month/{month}/started/{run_id}")),
        })
        .await?;
        self.views.invalidate(month).await;
        Ok(Response::new(pb::StartMonthResponse {
            month: month.to_string(),
            workflow_id: month::workflow_id(month),
            run_id,
            backfill,
        }))
    }

    pub(super) async fn get_month_impl(
        &self,
        request: Request<pb::GetMonthRequest>,
    ) -> Result<Response<pb::Month>, Status> {
        self.caller(&request, Role::Viewer, "GetMonth")?;
        let month = month_of(&request.get_ref().month)?;
        let client = self.state.temporal.get().await;
        let view = self
            .views
            .get(&self.state.pool, client.as_ref(), month)
            .await?;
        Ok(Response::new(view))
    }

    pub(super) async fn pause_month_impl(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "PauseMonth")?;
        self.month_action(caller, request.into_inner(), MonthAction::Pause)
            .await
    }

    pub(super) async fn resume_month_impl(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "ResumeMonth")?;
        self.month_action(caller, request.into_inner(), MonthAction::Resume)
            .await
    }

    pub(super) async fn cancel_month_impl(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "CancelMonth")?;
        self.month_action(caller, request.into_inner(), MonthAction::Cancel)
            .await
    }

    pub(super) async fn list_qualifications_impl(
        &self,
        request: Request<pb::ListQualificationsRequest>,
    ) -> Result<Response<pb::ListQualificationsResponse>, Status> {
        self.caller(&request, Role::Viewer, "ListQualifications")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let reason = pb::QualificationReason::try_from(r.reason)
            .map_err(|_| invalid(DomainError::new("reason", "unknown reason")))?;
        let reason = convert::reason_name(reason);
        let limit = convert::page_size(r.page_size).map_err(invalid)?;
        let query = format!("q|{month}|{:?}|{}", r.qualified, reason.unwrap_or(""));
        let after = convert::read_page_token(&r.page_token, &query).map_err(invalid)?;
        let rows = pcn_activities::qualify::list(
            &self.state.pool,
            month,
            r.qualified,
            reason,
            after.as_deref(),
            limit + 1,
        )
        .await
        .map_err(|e| db_error("listing qualifications", e))?;
        let (items, next) = page(rows, limit, convert::qualification, |q| &q.customer_id);
        Ok(Response::new(pb::ListQualificationsResponse {
            next_page_token: next
                .map(|last| convert::page_token(&query, &last))
                .unwrap_or_default(),
            qualifications: items,
        }))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MonthAction {
    Pause,
    Resume,
    Cancel,
}

impl Control {
    async fn month_action(
        &self,
        caller: Caller,
        request: pb::MonthActionRequest,
        action: MonthAction,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let month = month_of(&request.month)?;
        let reason = reason_of(&request.reason)?;
        let client = self.temporal().await?;
        let Some(run) = month_view::run_state(&client, month).await? else {
            return Err(Status::not_found(format!(
                "{} has no run",
                month::workflow_id(month)
            )));
        };
        let phase = run.phase();
        let name = phase.as_str_name().trim_start_matches("MONTH_PHASE_");
        if run.status != WorkflowExecutionStatus::Running {
            return Err(Status::failed_precondition(format!(
                "month {month} is {name}: its run is closed"
            )));
        }
        // Act only on the run's own answer, not on the phase it last published.
        if run.progress.is_none() {
            return Err(Status::unavailable(
                "the month's run did not answer its progress query (is a worker running?); try again",
            ));
        }
        let handle =
            client.get_workflow_handle::<MonthlyQualificationWorkflow>(month::workflow_id(month));
        let label = format!("{}: {reason}", caller.actor());
        let (result, verb) = match action {
            MonthAction::Pause => {
                if matches!(phase, pb::MonthPhase::Paused | pb::MonthPhase::Blocked) {
                    return Err(Status::failed_precondition(format!(
                        "month {month} is already {name}"
                    )));
                }
                (
                    handle
                        .signal(
                            MonthlyQualificationWorkflow::pause,
                            label,
                            WorkflowSignalOptions::default(),
                        )
                        .await,
                    "MONTH_PAUSE_REQUESTED",
                )
            }
            MonthAction::Resume => {
                if !matches!(phase, pb::MonthPhase::Paused | pb::MonthPhase::Blocked) {
                    return Err(Status::failed_precondition(format!(
                        "month {month} is {name}, not paused or blocked"
                    )));
                }
                (
                    handle
                        .signal(
                            MonthlyQualificationWorkflow::resume,
                            label,
                            WorkflowSignalOptions::default(),
                        )
                        .await,
                    "MONTH_RESUME_REQUESTED",
                )
            }
            MonthAction::Cancel => (
                handle
                    .cancel(WorkflowCancelOptions::builder().reason(label).build())
                    .await,
                "MONTH_CANCEL_REQUESTED",
            ),
        };
        match result {
            Ok(()) => {}
            Err(WorkflowInteractionError::NotFound(_)) => {
                return Err(Status::failed_precondition(format!(
                    "month {month}'s run closed meanwhile"
                )));
            }
            Err(WorkflowInteractionError::Rpc(status)) => {
                return Err(temporal_error("signalling the month", &status));
            }
            Err(err) => return Err(internal("signalling the month", err)),
        }
        self.audit(AuditEntry {
            actor: caller.actor(),
            action: verb,
            subject_type: "month",
            subject_id: month.to_string(),
            details: json!({ "reason": reason, "run_id": run.run_id, "phase_before": name }),
            idempotency_key: None,
        })
        .await?;
        self.views.invalidate(month).await;
        Ok(Response::new(pb::MonthActionResponse {
            month: month.to_string(),
            workflow_id: month::workflow_id(month),
            phase_before: phase.into(),
        }))
    }
}
