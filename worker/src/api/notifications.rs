//! Notifications: `ListNotifications`, `RetryNotification` and `CancelNotification`.

use pcn_activities::audit::AuditEntry;
use pcn_activities::notifications::{self, RetryError};
use pcn_proto::v1 as pb;
use pcn_workflows::domain::{CustomerId, DomainError, YearMonth};
use pcn_workflows::sms::{SmsInput, SmsNotificationWorkflow};
use serde_json::json;
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError};
use temporalio_client::{WorkflowIdReusePolicy, WorkflowSignalOptions};
use tonic::{Request, Response, Status};

use super::auth::{Caller, Role};
use super::convert;
use super::service::{Control, customer_of, month_of, page, reason_of};
use super::{db_error, internal, invalid, temporal_error};

impl Control {
    pub(super) async fn list_notifications_impl(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        self.caller(&request, Role::Viewer, "ListNotifications")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let status = pb::NotificationStatus::try_from(r.status)
            .map_err(|_| invalid(DomainError::new("status", "unknown status")))?;
        let status = convert::status_name(status);
        let limit = convert::page_size(r.page_size).map_err(invalid)?;
        let query = format!("n|{month}|{}", status.unwrap_or(""));
        let after = convert::read_page_token(&r.page_token, &query).map_err(invalid)?;
        let rows =
            notifications::list(&self.state.pool, month, status, after.as_deref(), limit + 1)
                .await
                .map_err(|e| db_error("listing notifications", e))?;
        let (items, next) = page(rows, limit, convert::notification, |n| &n.customer_id);
        Ok(Response::new(pb::ListNotificationsResponse {
            next_page_token: next
                .map(|last| convert::page_token(&query, &last))
                .unwrap_or_default(),
            notifications: items,
        }))
    }

    pub(super) async fn retry_notification_impl(
        &self,
        request: Request<pb::RetryNotificationRequest>,
    ) -> Result<Response<pb::RetryNotificationResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "RetryNotification")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let customer = customer_of(&r.customer_id)?;
        let reason = reason_of(&r.reason)?;
        let request_id = r.request_id.trim();
        let id_ok = (1..=64).contains(&request_id.len())
            && request_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
        if !id_ok {
            return Err(invalid(DomainError::new(
                "request_id",
                "1-64 characters of [A-Za-z0-9._:-], chosen by the caller",
            )));
        }
        self.retry(&caller, month, &customer, request_id, &reason)
            .await
            .map(Response::new)
    }

    pub(super) async fn cancel_notification_impl(
        &self,
        request: Request<pb::CancelNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        let caller = self.caller(&request, Role::Operator, "CancelNotification")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let customer = customer_of(&r.customer_id)?;
        let reason = reason_of(&r.reason)?;
        let current = self.notification(month, &customer).await?;
        let status = pb::NotificationStatus::try_from(current.status).unwrap_or_default();
        if matches!(
            status,
            pb::NotificationStatus::Delivered
                | pb::NotificationStatus::Failed
                | pb::NotificationStatus::Undeliverable
                | pb::NotificationStatus::OptedOut
                | pb::NotificationStatus::Cancelled
        ) {
            return Err(Status::failed_precondition(format!(
                "notification {} is final ({}): nothing to cancel",
                current.workflow_id,
                convert::status_name(status).unwrap_or("?")
            )));
        }
        let client = self.temporal().await?;
        let signal = client
            .get_workflow_handle::<SmsNotificationWorkflow>(current.workflow_id.clone())
            .signal(
                SmsNotificationWorkflow::cancel,
                format!("cancelled by {}: {reason}", caller.actor()),
                WorkflowSignalOptions::default(),
            )
            .await;
        match signal {
            Ok(()) => {}
            Err(WorkflowInteractionError::NotFound(_)) => {
                return Err(Status::failed_precondition(format!(
                    "notification {} has no running workflow (not started yet, or just finished)",
                    current.workflow_id
                )));
            }
            Err(WorkflowInteractionError::Rpc(status)) => {
                return Err(temporal_error("cancelling the notification", &status));
            }
            Err(err) => return Err(internal("cancelling the notification", err)),
        }
        self.audit(AuditEntry {
            actor: caller.actor(),
            action: "NOTIFICATION_CANCEL_REQUESTED",
            subject_type: "notification",
            subject_id: current.workflow_id.clone(),
            details: json!({ "reason": reason, "status_before": convert::status_name(status) }),
            idempotency_key: None,
        })
        .await?;
        self.views.invalidate(month).await;
        Ok(Response::new(current))
    }

    async fn notification(
        &self,
        month: YearMonth,
        customer: &CustomerId,
    ) -> Result<pb::Notification, Status> {
        let row = notifications::get(&self.state.pool, month, customer)
            .await
            .map_err(|e| db_error("reading the notification", e))?;
        row.as_ref()
            .map(convert::notification)
            .ok_or_else(|| Status::not_found(format!("no notification for {customer} in {month}")))
    }

    async fn retry(
        &self,
        caller: &Caller,
        month: YearMonth,
        customer: &CustomerId,
        request_id: &str,
        reason: &str,
    ) -> Result<pb::RetryNotificationResponse, Status> {
        let pool = &self.state.pool;
        let db = |e| db_error("retrying the notification", e);
        let start = notifications::begin_manual_retry(
            pool,
            month,
            customer,
            request_id,
            reason,
            &caller.actor(),
        )
        .await
        .map_err(|e| match e {
            RetryError::RequestIdReused(_) => Status::already_exists(e.to_string()),
            RetryError::NotFound { .. } => Status::not_found(e.to_string()),
            RetryError::NotRetryable { .. } => Status::failed_precondition(e.to_string()),
            RetryError::Db(err) => db(err),
        })?;
        let (attempt, replayed) = (start.attempt, start.replayed);
        if let Some(run_id) = start.run_id {
            return Ok(pb::RetryNotificationResponse {
                notification: Some(self.notification(month, customer).await?),
                attempt,
                run_id,
                replayed: true,
            });
        }

        // Start the new run. The attempt number is fixed above, so a repeated start (a request
        // repeated before the run id was stored) submits the same reference: the carrier's
        // idempotency key, never a second message.
        let client = self.temporal().await?;
        let mut settings = self.state.month_settings.sms.clone();
        settings.max_attempts = 1;
        let input = SmsInput {
            month,
            customer: customer.clone(),
            settings: settings.clone(),
            first_attempt: attempt,
        };
        let mut options = pcn_activities::fanout::sms_start_options(&self.state.task_queue, &input);
        options.id_reuse_policy = WorkflowIdReusePolicy::AllowDuplicate;
        let run_id = match client
            .start_workflow(SmsNotificationWorkflow::run, input, options)
            .await
        {
            Ok(handle) => handle.run_id().unwrap_or_default().to_owned(),
            Err(WorkflowStartError::AlreadyStarted { .. }) => {
                return Err(Status::aborted(
                    "the notification's previous run is still closing; repeat the request with the same request_id",
                ));
            }
            Err(WorkflowStartError::Rpc(status)) => {
                return Err(temporal_error("starting the retry", &status));
            }
            Err(err) => return Err(internal("starting the retry", err)),
        };
        notifications::record_retry_run(pool, request_id, &run_id)
            .await
            .map_err(db)?;
        self.views.invalidate(month).await;
        Ok(pb::RetryNotificationResponse {
            notification: Some(self.notification(month, customer).await?),
            attempt,
            run_id,
            replayed,
        })
    }
}
