//! The control API's methods. Each one: authenticate and authorise, parse the request into
//! domain types (INVALID_ARGUMENT naming the field), then do the work; a change writes its audit
//! entry (actor `api:<token name>`) in the same transaction as the change where there is one.
//!
//! This module holds the service, its shared request parsing and the one `ControlService`
//! implementation, which hands each method to its resource module (`api::months`, with
//! `ListQualifications`; `api::customers`; `api::notifications`; `api::reports`;
//! `api::audit_log`), where the method's work is, as `Control::<method>_impl`.

use chrono::Utc;
use pcn_activities::audit::{self, AuditEntry};
use pcn_proto::v1 as pb;
use pcn_proto::v1::control_service_server::ControlService;
use pcn_workflows::domain::{BusinessDate, CustomerId, DomainError, YearMonth};
use temporalio_client::Client;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{Caller, Role};
use super::month_view::MonthViews;
use super::{ApiState, db_error, invalid};

/// The service.
#[derive(Clone)]
pub struct Control {
    pub(super) state: ApiState,
    pub(super) views: MonthViews,
}

impl Control {
    /// A service over `state`.
    pub fn new(state: ApiState) -> Self {
        Self {
            state,
            views: MonthViews::default(),
        }
    }

    pub(super) fn caller<T>(
        &self,
        request: &Request<T>,
        needed: Role,
        method: &str,
    ) -> Result<Caller, Status> {
        let caller = self.state.tokens.authenticate(request.metadata())?;
        caller.require(needed, method)?;
        Ok(caller)
    }

    pub(super) async fn temporal(&self) -> Result<Client, Status> {
        self.state
            .temporal
            .get()
            .await
            .ok_or_else(|| Status::unavailable("Temporal is unavailable; try again"))
    }

    pub(super) async fn audit(&self, entry: AuditEntry) -> Result<(), Status> {
        audit::record(&self.state.pool, &entry)
            .await
            .map(|_| ())
            .map_err(|e| db_error("writing the audit entry", e))
    }
}

pub(super) fn month_of(s: &str) -> Result<YearMonth, Status> {
    YearMonth::parse(s).map_err(invalid)
}

pub(super) fn customer_of(s: &str) -> Result<CustomerId, Status> {
    CustomerId::parse(s).map_err(invalid)
}

/// Free text kept in the audit log: at most 500 characters, no control characters.
pub(super) fn reason_of(s: &str) -> Result<String, Status> {
    if s.chars().count() > 500 || s.chars().any(char::is_control) {
        return Err(invalid(DomainError::new(
            "reason",
            "at most 500 characters, no control characters",
        )));
    }
    Ok(s.trim().to_owned())
}

pub(super) fn today() -> BusinessDate {
    BusinessDate::of_instant(Utc::now())
}

/// Keyset pagination: `limit + 1` rows were read; the extra one says there is a next page.
pub(super) fn page<T>(
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

#[tonic::async_trait]
impl ControlService for Control {
    async fn start_month(
        &self,
        request: Request<pb::StartMonthRequest>,
    ) -> Result<Response<pb::StartMonthResponse>, Status> {
        self.start_month_impl(request).await
    }

    async fn get_month(
        &self,
        request: Request<pb::GetMonthRequest>,
    ) -> Result<Response<pb::Month>, Status> {
        self.get_month_impl(request).await
    }

    async fn pause_month(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        self.pause_month_impl(request).await
    }

    async fn resume_month(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        self.resume_month_impl(request).await
    }

    async fn cancel_month(
        &self,
        request: Request<pb::MonthActionRequest>,
    ) -> Result<Response<pb::MonthActionResponse>, Status> {
        self.cancel_month_impl(request).await
    }

    async fn list_qualifications(
        &self,
        request: Request<pb::ListQualificationsRequest>,
    ) -> Result<Response<pb::ListQualificationsResponse>, Status> {
        self.list_qualifications_impl(request).await
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        self.get_customer_impl(request).await
    }

    async fn upsert_customers(
        &self,
        request: Request<Streaming<pb::CustomerRow>>,
    ) -> Result<Response<pb::UpsertCustomersResponse>, Status> {
        self.upsert_customers_impl(request).await
    }

    async fn set_opt_out(
        &self,
        request: Request<pb::SetOptOutRequest>,
    ) -> Result<Response<pb::Customer>, Status> {
        self.set_opt_out_impl(request).await
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        self.list_notifications_impl(request).await
    }

    async fn retry_notification(
        &self,
        request: Request<pb::RetryNotificationRequest>,
    ) -> Result<Response<pb::RetryNotificationResponse>, Status> {
        self.retry_notification_impl(request).await
    }

    async fn cancel_notification(
        &self,
        request: Request<pb::CancelNotificationRequest>,
    ) -> Result<Response<pb::Notification>, Status> {
        self.cancel_notification_impl(request).await
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::MonthlyReport>, Status> {
        self.get_report_impl(request).await
    }

    async fn export_report(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<pb::ExportReportResponse>, Status> {
        self.export_report_impl(request).await
    }

    async fn send_report(
        &self,
        request: Request<pb::SendReportRequest>,
    ) -> Result<Response<pb::SendReportResponse>, Status> {
        self.send_report_impl(request).await
    }

    async fn list_report_deliveries(
        &self,
        request: Request<pb::ListReportDeliveriesRequest>,
    ) -> Result<Response<pb::ListReportDeliveriesResponse>, Status> {
        self.list_report_deliveries_impl(request).await
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        self.list_audit_entries_impl(request).await
    }
}
