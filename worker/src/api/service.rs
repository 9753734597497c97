//! The control API's methods. Each one: authenticate and authorise, parse the request into
//! domain types (INVALID_ARGUMENT naming the field), then do the work; a change writes its audit
//! entry (actor `api:<token name>`) in the same transaction as the change where there is one.

use std::collections::HashMap;

use chrono::Utc;
use pcn_activities::audit::{self, AuditEntry};
use pcn_activities::consent;
use pcn_proto::v1 as pb;
use pcn_proto::v1::control_service_server::ControlService;
use pcn_workflows::customer::Customer;
use pcn_workflows::domain::{BusinessDate, CustomerId, DomainError, YearMonth};
use pcn_workflows::month::{self, MonthlyQualificationWorkflow};
use pcn_workflows::sms::{self, SmsInput, SmsNotificationWorkflow};
use serde_json::json;
use sqlx::Row as _;
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowExecutionStatus, WorkflowIdReusePolicy,
    WorkflowSignalOptions,
};
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{Caller, Role};
use super::convert::{self, opt_dec, opt_ts, ts};
use super::month_view::{self, MonthViews};
use super::{ApiState, db_error, internal, invalid, read_error, temporal_error};

/// The service.
#[derive(Clone)]
pub struct Control {
    state: ApiState,
    views: MonthViews,
}

impl Control {
    /// A service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self {
            state,
            views: MonthViews::default(),
        }
    }

    fn caller<T>(
        &self,
        request: &Request<T>,
        needed: Role,
        method: &str,
    ) -> Result<Caller, Status> {
        let caller = self.state.tokens.authenticate(request.metadata())?;
        caller.require(needed, method)?;
        Ok(caller)
    }

    async fn temporal(&self) -> Result<Client, Status> {
        self.state
            .temporal
            .get()
            .await
            .ok_or_else(|| Status::unavailable("Temporal is unavailable; try again"))
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), Status> {
        audit::record(&self.state.pool, &entry)
            .await
            .map(|_| ())
            .map_err(|e| db_error("writing the audit entry", e))
    }
}

fn month_of(s: &str) -> Result<YearMonth, Status> {
    YearMonth::parse(s).map_err(invalid)
}

fn customer_of(s: &str) -> Result<CustomerId, Status> {
    CustomerId::parse(s).map_err(invalid)
}

/// Free text kept in the audit log: at most 500 characters, no control characters.
fn reason_of(s: &str) -> Result<String, Status> {
    if s.chars().count() > 500 || s.chars().any(char::is_control) {
        return Err(invalid(DomainError::new(
            "reason",
            "at most 500 characters, no control characters",
        )));
    }
    Ok(s.trim().to_owned())
}

fn today() -> BusinessDate {
    BusinessDate::of_instant(Utc::now())
}

#[tonic::async_trait]
impl ControlService for Control {
    async fn start_month(
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

    async fn get_month(
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

    async fn pause_month(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "PauseMonth")?;
        self.month_action(caller, request.into_inner(), MonthAction::Pause)
            .await
    }

    async fn resume_month(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "ResumeMonth")?;
        self.month_action(caller, request.into_inner(), MonthAction::Resume)
            .await
    }

    async fn cancel_month(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "CancelMonth")?;
        self.month_action(caller, request.into_inner(), MonthAction::Cancel)
            .await
    }

    async fn list_qualifications(
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM qualifications
              WHERE month = $1 AND ($2::bool IS NULL OR qualified = $2)
                AND ($3::text IS NULL OR reason = $3) AND ($4::text IS NULL OR customer_id > $4)
              ORDER BY customer_id LIMIT $5",
            convert::QUALIFICATION_COLUMNS
        )))
        .bind(month.first_day().as_naive())
        .bind(r.qualified)
        .bind(reason)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.state.pool)
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

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        self.caller(&request, Role::Viewer, "GetCustomer")?;
        let r = request.into_inner();
        let customer = customer_of(&r.customer_id)?;
        let month = if r.month.is_empty() {
            None
        } else {
            Some(month_of(&r.month)?)
        };
        self.customer_detail(&customer, month)
            .await
            .map(Response::new)
    }

    async fn upsert_customers(
        &self,
        request: Request<Streaming<pb::CustomerRow>>,
    ) -> Result<Response<pb::UpsertCustomersResponse>, Status> {
        let caller = self.caller(&request, Role::Admin, "UpsertCustomers")?;
        let mut stream = request.into_inner();
        let actor = caller.actor();
        let mut import = Import::default();
        let mut index: u64 = 0;
        while let Some(row) = stream.next().await {
            let row = row?;
            import.add(index, &row);
            index += 1;
            if import.valid.len() >= IMPORT_CHUNK {
                import.flush(&self.state.pool, &actor).await?;
            }
        }
        import.flush(&self.state.pool, &actor).await?;
        let response = import.response(index);
        self.audit(AuditEntry {
            actor: caller.actor(),
            action: "CUSTOMERS_IMPORTED",
            subject_type: "customers",
            subject_id: uuid::Uuid::new_v4().to_string(),
            details: json!({
                "received": response.received,
                "upserted": response.upserted,
                "unchanged": response.unchanged,
                "rejected": response.rejected,
            }),
            idempotency_key: None,
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn set_opt_out(
        &self,
        request: Request<pb::SetOptOutRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        let caller = self.caller(&request, Role::Admin, "SetOptOut")?;
        let r = request.into_inner();
        let customer = customer_of(&r.customer_id)?;
        let reason = reason_of(&r.reason)?;
        if !r.opted_out && reason.is_empty() {
            return Err(invalid(DomainError::new(
                "reason",
                "required to opt a customer back in (say why, e.g. the customer's written consent)",
            )));
        }
        let actor = caller.actor();
        let fact = consent::Fact {
            customer: customer.as_str(),
            source: consent::Source::Admin,
            actor: &actor,
            reason: Some(&reason).filter(|r| !r.is_empty()).map(String::as_str),
            carrier_message_id: None,
            idempotency_key: None,
        };
        let mut tx = self
            .state
            .pool
            .begin()
            .await
            .map_err(|e| db_error("opt-out", e))?;
        let recorded = if r.opted_out {
            consent::opt_out(&mut tx, &fact).await
        } else {
            consent::opt_in(&mut tx, &fact).await
        };
        match recorded {
            Ok(_) => {}
            Err(consent::ConsentError::UnknownCustomer(_)) => {
                return Err(Status::not_found(format!("customer {customer} not found")));
            }
            Err(consent::ConsentError::OptInRefused(what)) => {
                return Err(invalid(DomainError::new(
                    "reason",
                    format!("opting a customer back in needs {what}"),
                )));
            }
            Err(consent::ConsentError::Database(e)) => return Err(db_error("opt-out", e)),
        }
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM customers WHERE customer_id = $1",
            convert::CUSTOMER_COLUMNS
        )))
        .bind(customer.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| db_error("opt-out", e))?;
        tx.commit().await.map_err(|e| db_error("opt-out", e))?;
        Ok(Response::new(convert::customer(&row)))
    }

    async fn list_notifications(
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
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM notifications
              WHERE month = $1 AND ($2::text IS NULL OR status = $2)
                AND ($3::text IS NULL OR customer_id > $3)
              ORDER BY customer_id LIMIT $4",
            convert::NOTIFICATION_COLUMNS
        )))
        .bind(month.first_day().as_naive())
        .bind(status)
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&self.state.pool)
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

    async fn retry_notification(
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

    async fn cancel_notification(
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

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::MonthlyReport>, Status> {
        self.caller(&request, Role::Viewer, "GetReport")?;
        let month = month_of(&request.get_ref().month)?;
        let report = self.report(month).await?;
        Ok(Response::new(report_message(&report)))
    }

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<pb::ExportReportResponse>, Status> {
        self.caller(&request, Role::Viewer, "ExportReport")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let format = match pb::ReportFormat::try_from(r.format) {
            Ok(f @ (pb::ReportFormat::Csv | pb::ReportFormat::Xlsx | pb::ReportFormat::Html)) => f,
            _ => {
                return Err(invalid(DomainError::new(
                    "format",
                    "one of REPORT_FORMAT_CSV, REPORT_FORMAT_XLSX, REPORT_FORMAT_HTML",
                )));
            }
        };
        let report = self.report(month).await?;
        let (extension, content_type, content) = match format {
            pb::ReportFormat::Csv => (
                "csv",
                "text/csv; charset=utf-8",
                crate::report::export::csv(&report).into_bytes(),
            ),
            pb::ReportFormat::Xlsx => (
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                crate::report::export::xlsx(&report)
                    .map_err(|e| internal("exporting XLSX", format!("{e:#}")))?,
            ),
            _ => (
                "html",
                "text/html; charset=utf-8",
                crate::report::export::html(&report).into_bytes(),
            ),
        };
        Ok(Response::new(pb::ExportReportResponse {
            filename: format!("pcn-report-{month}.{extension}"),
            content_type: content_type.to_owned(),
            content,
        }))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        self.caller(&request, Role::Viewer, "ListAuditEntries")?;
        let r = request.into_inner();
        let limit = convert::page_size(r.page_size).map_err(invalid)?;
        for (field, value) in [
            ("subject_type", &r.subject_type),
            ("subject_id", &r.subject_id),
            ("actor", &r.actor),
            ("action", &r.action),
        ] {
            if value.len() > 200 {
                return Err(invalid(DomainError::new(field, "at most 200 characters")));
            }
        }
        let query = format!(
            "a|{}|{}|{}|{}",
            r.subject_type, r.subject_id, r.actor, r.action
        );
        let before = convert::read_page_token(&r.page_token, &query)
            .map_err(invalid)?
            .map(|s| s.parse::<i64>())
            .transpose()
            .map_err(|_| invalid(DomainError::new("page_token", "not a page token")))?;
        let empty_to_null = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let rows = sqlx::query(
            "SELECT id, occurred_at, actor, action, subject_type, subject_id, details::text AS details
               FROM audit_log
              WHERE ($1::text IS NULL OR subject_type = $1) AND ($2::text IS NULL OR subject_id = $2)
                AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR action = $4)
                AND ($5::bigint IS NULL OR id < $5)
              ORDER BY id DESC LIMIT $6",
        )
        .bind(empty_to_null(&r.subject_type))
        .bind(empty_to_null(&r.subject_id))
        .bind(empty_to_null(&r.actor))
        .bind(empty_to_null(&r.action))
        .bind(before)
        .bind(limit + 1)
        .fetch_all(&self.state.pool)
        .await
        .map_err(|e| db_error("listing audit entries", e))?;
        let entry = |row: &sqlx::postgres::PgRow| pb::AuditEntry {
            id: u64::try_from(row.get::<i64, _>("id")).unwrap_or(0),
            occurred_at: ts(row.get("occurred_at")),
            actor: row.get("actor"),
            action: row.get("action"),
            subject_type: row.get("subject_type"),
            subject_id: row.get("subject_id"),
            details_json: row.get("details"),
        };
        let mut entries: Vec<pb::AuditEntry> = rows.iter().map(entry).collect();
        let next = if entries.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            entries.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries,
            next_page_token: next
                .map(|last| convert::page_token(&query, &last))
                .unwrap_or_default(),
        }))
    }
}

/// Keyset pagination: `limit + 1` rows were read; the extra one says there is a next page.
fn page<T>(
    rows: Vec<sqlx::postgres::PgRow>,
    limit: i64,
    convert: fn(&sqlx::postgres::PgRow) -> T,
    key: fn(&T) -> &String,
) -> (Vec<T>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut items: Vec<T> = rows.iter().map(convert).collect();
    if items.len() > limit {
        items.truncate(limit);
        let last = items.last().map(|i| key(i).clone());
        (items, last)
    } else {
        (items, None)
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
        if phase == pb::MonthPhase::Unspecified {
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

    async fn notification(
        &self,
        month: YearMonth,
        customer: &CustomerId,
    ) -> Result<pb::Notification, Status> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM notifications WHERE month = $1 AND customer_id = $2",
            convert::NOTIFICATION_COLUMNS
        )))
        .bind(month.first_day().as_naive())
        .bind(customer.as_str())
        .fetch_optional(&self.state.pool)
        .await
        .map_err(|e| db_error("reading the notification", e))?;
        row.as_ref()
            .map(convert::notification)
            .ok_or_else(|| Status::not_found(format!("no notification for {customer} in {month}")))
    }

    async fn report(&self, month: YearMonth) -> Result<crate::report::MonthlyReport, Status> {
        crate::report::build(&self.state.pool, month)
            .await
            .map_err(|e| read_error("building the report", e))?
            .ok_or_else(|| Status::not_found(format!("month {month} has no data to report")))
    }

    async fn customer_detail(
        &self,
        customer: &CustomerId,
        month: Option<YearMonth>,
    ) -> Result<pb::GetCustomerResponse, Status> {
        let pool = &self.state.pool;
        let profile = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM customers WHERE customer_id = $1",
            convert::CUSTOMER_COLUMNS
        )))
        .bind(customer.as_str())
        .fetch_optional(pool)
        .await
        .map_err(|e| db_error("reading the customer", e))?
        .ok_or_else(|| Status::not_found(format!("customer {customer} not found")))?;
        let checks_month = match month {
            Some(m) => Some(m.first_day().as_naive()),
            None => sqlx::query_scalar(
                "SELECT date_trunc('month', max(business_date))::date FROM balance_checks
                  WHERE customer_id = $1",
            )
            .bind(customer.as_str())
            .fetch_one(pool)
            .await
            .map_err(|e| db_error("reading checks", e))?,
        };
        let (checks, decisions, notifications, attempts, consent) = tokio::try_join!(
            async {
                match checks_month {
                    None => Ok(Vec::new()),
                    Some(first) => sqlx::query(
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
                    .map_err(|e| db_error("reading checks", e)),
                }
            },
            async {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM qualifications WHERE customer_id = $1 ORDER BY month DESC",
                    convert::QUALIFICATION_COLUMNS
                )))
                .bind(customer.as_str())
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("reading decisions", e))
            },
            async {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {} FROM notifications WHERE customer_id = $1 ORDER BY month DESC",
                    convert::NOTIFICATION_COLUMNS
                )))
                .bind(customer.as_str())
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("reading notifications", e))
            },
            async {
                sqlx::query(
                    "SELECT month, attempt, message_ref, carrier, carrier_message_id, status,
                            error_code, failure_category, submitted_at, finished_at
                       FROM sms_attempts WHERE customer_id = $1 ORDER BY month DESC, attempt",
                )
                .bind(customer.as_str())
                .fetch_all(pool)
                .await
                .map_err(|e| db_error("reading attempts", e))
            },
            async {
                consent::history(pool, customer)
                    .await
                    .map_err(|e| read_error("reading the consent history", e))
            },
        )?;
        let mut by_month: HashMap<chrono::NaiveDate, Vec<pb::SmsAttempt>> = HashMap::new();
        for row in &attempts {
            by_month
                .entry(row.get("month"))
                .or_default()
                .push(pb::SmsAttempt {
                    attempt: u32::try_from(row.get::<i16, _>("attempt")).unwrap_or(0),
                    message_ref: row.get("message_ref"),
                    carrier: row.get("carrier"),
                    carrier_message_id: row
                        .get::<Option<String>, _>("carrier_message_id")
                        .unwrap_or_default(),
                    status: row.get("status"),
                    error_code: row
                        .get::<Option<String>, _>("error_code")
                        .unwrap_or_default(),
                    failure_category: row
                        .get::<Option<String>, _>("failure_category")
                        .unwrap_or_default(),
                    submitted_at: opt_ts(row.get("submitted_at")),
                    finished_at: opt_ts(row.get("finished_at")),
                });
        }
        let notifications = notifications
            .iter()
            .map(|row| {
                let mut n = convert::notification(row);
                n.sms_attempts = by_month
                    .remove(&row.get::<chrono::NaiveDate, _>("month"))
                    .unwrap_or_default();
                n
            })
            .collect();
        Ok(pb::GetCustomerResponse {
            customer: Some(convert::customer(&profile)),
            checks_month: checks_month
                .map(|d| d.format("%Y-%m").to_string())
                .unwrap_or_default(),
            checks: checks
                .iter()
                .map(|row| pb::BalanceCheck {
                    date: row.get::<chrono::NaiveDate, _>("business_date").to_string(),
                    outcome: convert::outcome(row.get::<&str, _>("outcome")).into(),
                    amount: opt_dec(row.get("amount")),
                    threshold: row.get::<rust_decimal::Decimal, _>("threshold").to_string(),
                    detail: row.get::<Option<String>, _>("detail").unwrap_or_default(),
                    fetched_at: ts(row.get("fetched_at")),
                })
                .collect(),
            qualifications: decisions.iter().map(convert::qualification).collect(),
            notifications,
            consent: consent
                .into_iter()
                .map(|e| pb::ConsentEvent {
                    opted_out: e.opted_out,
                    source: e.source.as_str().to_owned(),
                    occurred_at: ts(e.occurred_at),
                    actor: e.actor,
                    reason: e.reason.unwrap_or_default(),
                    carrier_message_id: e.carrier_message_id.unwrap_or_default(),
                })
                .collect(),
        })
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
        let first = month.first_day().as_naive();
        let db = |e| db_error("retrying the notification", e);
        let mut tx = pool.begin().await.map_err(db)?;
        // Serialise retries of one notification; a repeated request id finds its row.
        let existing = sqlx::query(
            "SELECT month, customer_id, attempt, run_id FROM notification_retries WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let (attempt, replayed) = if let Some(row) = existing {
            let same = row.get::<chrono::NaiveDate, _>("month") == first
                && row.get::<&str, _>("customer_id") == customer.as_str();
            if !same {
                return Err(Status::already_exists(format!(
                    "request_id {request_id} was used for another notification"
                )));
            }
            let attempt = u32::try_from(row.get::<i16, _>("attempt")).unwrap_or(0);
            if let Some(run_id) = row.get::<Option<String>, _>("run_id") {
                tx.rollback().await.map_err(db)?;
                return Ok(pb::RetryNotificationResponse {
                    notification: Some(self.notification(month, customer).await?),
                    attempt,
                    run_id,
                    replayed: true,
                });
            }
            (attempt, true)
        } else {
            let row = sqlx::query(
                "SELECT status, attempts FROM notifications
                  WHERE month = $1 AND customer_id = $2 FOR UPDATE",
            )
            .bind(first)
            .bind(customer.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| {
                Status::not_found(format!("no notification for {customer} in {month}"))
            })?;
            let status: String = row.get("status");
            if status != "FAILED" && status != "UNDELIVERABLE" {
                return Err(Status::failed_precondition(format!(
                    "notification of {customer} in {month} is {status}: only FAILED or UNDELIVERABLE can be retried"
                )));
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
            .await
            .map_err(db)?;
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
            .bind(caller.actor())
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            audit::record(
                &mut *tx,
                &AuditEntry {
                    actor: caller.actor(),
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
            .await
            .map_err(db)?;
            (u32::try_from(attempt).unwrap_or(0), false)
        };
        tx.commit().await.map_err(db)?;

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
        let mut options = pcn_activities::sms::sms_start_options(
            &self.state.task_queue,
            month,
            customer,
            settings.search_attributes,
        );
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
        sqlx::query(
            "UPDATE notification_retries SET run_id = $2 WHERE request_id = $1 AND run_id IS NULL",
        )
        .bind(request_id)
        .bind(&run_id)
        .execute(pool)
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

/// Rows per database write of an import.
const IMPORT_CHUNK: usize = 2_000;
/// Row errors returned in full (all are counted).
const MAX_LISTED_ERRORS: usize = 1_000;

/// An import in progress: validated rows waiting for their write, counts, errors.
#[derive(Default)]
struct Import {
    valid: Vec<(u64, Customer)>,
    /// Which row of this import claimed each customer id and account id.
    customer_rows: HashMap<String, u64>,
    account_owner: HashMap<String, String>,
    upserted: u64,
    written: u64,
    rejected: u64,
    errors: Vec<pb::RowError>,
}

impl Import {
    fn reject(&mut self, index: u64, customer_id: &str, field: &str, message: String) {
        self.rejected += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(pb::RowError {
                index,
                customer_id: customer_id.chars().take(64).collect(),
                field: field.to_owned(),
                message,
            });
        }
    }

    fn add(&mut self, index: u64, row: &pb::CustomerRow) {
        let parsed = crate::customers::parse_row(
            [
                &row.customer_id,
                &row.account_id,
                &row.first_name,
                &row.phone,
                &row.language,
                &row.monitored_since,
            ],
            row.opted_out,
            row.active.unwrap_or(true),
        );
        let customer = match parsed {
            Ok(c) => c,
            Err(err) => {
                return self.reject(index, &row.customer_id, err.field, err.to_string());
            }
        };
        let id = customer.customer_id.as_str().to_owned();
        if let Some(first) = self.customer_rows.get(&id) {
            let message = format!("customer_id {id} already appears in row {first} of this import");
            return self.reject(index, &id, "customer_id", message);
        }
        let account = customer.account_id.as_str().to_owned();
        if let Some(owner) = self.account_owner.get(&account) {
            let message = format!("account_id is already given to customer {owner} in this import");
            return self.reject(index, &id, "account_id", message);
        }
        self.customer_rows.insert(id.clone(), index);
        self.account_owner.insert(account, id);
        self.valid.push((index, customer));
    }

    /// Writes the valid rows. An account id that belongs to another customer in the database is
    /// a row error, not a failed import.
    async fn flush(&mut self, pool: &sqlx::PgPool, actor: &str) -> Result<(), Status> {
        if self.valid.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.valid);
        let accounts: Vec<String> = batch
            .iter()
            .map(|(_, c)| c.account_id.as_str().to_owned())
            .collect();
        let owners: HashMap<String, String> = sqlx::query_as(
            "SELECT account_id, customer_id FROM customers WHERE account_id = ANY($1)",
        )
        .bind(&accounts)
        .fetch_all(pool)
        .await
        .map_err(|e| db_error("import", e))?
        .into_iter()
        .collect();
        let mut keep = Vec::with_capacity(batch.len());
        for (index, customer) in batch {
            match owners.get(customer.account_id.as_str()) {
                Some(owner) if owner != customer.customer_id.as_str() => {
                    let message = format!("account_id already belongs to customer {owner}");
                    self.reject(index, customer.customer_id.as_str(), "account_id", message);
                }
                _ => keep.push((index, customer)),
            }
        }
        let customers: Vec<Customer> = keep.iter().map(|(_, c)| c.clone()).collect();
        match pcn_activities::db::upsert_customers(pool, &customers, actor).await {
            Ok(upserted) => self.count(&keep, upserted),
            Err(err) => {
                // A concurrent import took an account id between the check and the write: write
                // row by row so only the conflicting rows fail.
                tracing::warn!(error = %format!("{err:#}"), "import chunk failed; writing row by row");
                for (index, customer) in keep {
                    let one = [(index, customer)];
                    match pcn_activities::db::upsert_customers(
                        pool,
                        std::slice::from_ref(&one[0].1),
                        actor,
                    )
                    .await
                    {
                        Ok(upserted) => self.count(&one, upserted),
                        Err(_) => self.reject(
                            index,
                            one[0].1.customer_id.as_str(),
                            "account_id",
                            "conflicts with another customer's account_id".to_owned(),
                        ),
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts a written chunk: rows refused for trying to opt a customer back in are row errors
    /// (nothing of them was written).
    fn count(&mut self, rows: &[(u64, Customer)], upserted: pcn_activities::db::Upserted) {
        for (customer, why) in &upserted.refused {
            let index = rows
                .iter()
                .find(|(_, c)| c.customer_id.as_str() == customer)
                .map_or(0, |(i, _)| *i);
            self.reject(index, customer, "opted_out", why.clone());
        }
        let written = rows.len().saturating_sub(upserted.refused.len());
        self.written += u64::try_from(written).unwrap_or(u64::MAX);
        self.upserted += upserted.touched;
    }

    fn response(self, received: u64) -> pb::UpsertCustomersResponse {
        pb::UpsertCustomersResponse {
            received,
            upserted: self.upserted,
            unchanged: self.written.saturating_sub(self.upserted),
            rejected: self.rejected,
            errors: self.errors,
        }
    }
}

/// The report as an API message.
fn report_message(r: &crate::report::MonthlyReport) -> pb::MonthlyReport {
    let pct = |d: rust_decimal::Decimal| format!("{:.2}", d);
    let names = |v: &[crate::report::NameCount]| {
        v.iter()
            .map(|c| pb::CategoryCount {
                name: c.name.clone(),
                count: c.count,
            })
            .collect()
    };
    pb::MonthlyReport {
        month: r.month.to_string(),
        generated_at: ts(r.generated_at),
        summary: Some(pb::ReportSummary {
            customers_monitored: r.summary.customers_monitored,
            qualified: r.summary.qualified,
            qualification_rate: pct(r.summary.qualification_rate),
            notifications: r.summary.notifications,
            delivered: r.summary.delivered,
            delivery_rate: pct(r.summary.delivery_rate),
        }),
        qualification: Some(pb::QualificationMetrics {
            decided: r.qualification.decided,
            qualified: r.qualification.qualified,
            not_qualified: r.qualification.not_qualified,
            reasons: r
                .qualification
                .reasons
                .iter()
                .map(|c| pb::ReasonCount {
                    reason: c.reason.clone(),
                    count: c.count,
                    percent: pct(c.percent),
                })
                .collect(),
            near_misses: r.qualification.near_misses,
            threshold: opt_dec(r.qualification.threshold),
        }),
        daily: r
            .daily
            .iter()
            .map(|d| pb::DailyRow {
                date: d.date.to_string(),
                checked: d.checked,
                passed: d.passed,
                below_threshold: d.below_threshold,
                missing: d.missing,
                not_found: d.not_found,
                invalid: d.invalid,
                pass_rate: pct(d.pass_rate),
            })
            .collect(),
        delivery: Some(pb::DeliveryMetrics {
            qualified: r.delivery.qualified,
            notifications: r.delivery.notifications,
            submitted: r.delivery.submitted,
            delivered: r.delivery.delivered,
            failed: r.delivery.failed,
            undeliverable: r.delivery.undeliverable,
            pending: r.delivery.pending,
            opted_out: r.delivery.opted_out,
            cancelled: r.delivery.cancelled,
            messages_sent: r.delivery.messages_sent,
            delivered_first_attempt: r.delivery.delivered_first_attempt,
            segments_total: r.delivery.segments_total,
            in_doubt_adopted: r.delivery.in_doubt_adopted,
            in_doubt_resubmitted: r.delivery.in_doubt_resubmitted,
            in_doubt_abandoned: r.delivery.in_doubt_abandoned,
            foreign_reports: r.delivery.foreign_reports,
            content_filtered: r.delivery.content_filtered,
        }),
        failure_categories: names(&r.failure_categories),
        top_error_codes: names(&r.top_error_codes),
        processing: Some(pb::ProcessingMetrics {
            days_swept: u32::try_from(r.processing.days_swept).unwrap_or(u32::MAX),
            first_sweep_at: opt_ts(r.processing.first_sweep_at),
            last_sweep_at: opt_ts(r.processing.last_sweep_at),
            decided_at: opt_ts(r.processing.decided_at),
            first_submission_at: opt_ts(r.processing.first_submission_at),
            last_final_at: opt_ts(r.processing.last_final_at),
            delivery_latency_p50_secs: opt_dec(r.processing.delivery_latency_p50_secs),
            delivery_latency_p95_secs: opt_dec(r.processing.delivery_latency_p95_secs),
            submission_wait_p50_secs: opt_dec(r.processing.submission_wait_p50_secs),
            submission_wait_p95_secs: opt_dec(r.processing.submission_wait_p95_secs),
            check_error_rate: pct(r.processing.check_error_rate),
            submission_reject_rate: pct(r.processing.submission_reject_rate),
        }),
        recommendations: r.recommendations.clone(),
        carriers: r
            .carriers
            .iter()
            .map(|c| pb::CarrierFigures {
                carrier: c.carrier.clone(),
                attempts: c.attempts,
                accepted: c.accepted,
                delivered: c.delivered,
                failed: c.failed,
            })
            .collect(),
    }
}
