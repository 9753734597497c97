//! Monthly reports: `GetReport`, `ExportReport` (CSV, XLSX, HTML, PDF), `SendReport` (the
//! report by email: queues the outbox rows that the worker's mailer sends) and
//! `ListReportDeliveries` (where those emails stand, for a viewer).

use pcn_activities::report_deliveries::{self, ReportDelivery, ReportDeliveryStatus};
use pcn_proto::v1 as pb;
use pcn_workflows::domain::{DomainError, YearMonth};
use tonic::{Request, Response, Status};

use super::auth::Role;
use super::convert::{opt_dec, opt_ts, ts};
use super::service::{Control, month_of, reason_of};
use super::{db_error, internal, invalid, read_error};

impl Control {
    pub(super) async fn get_report_impl(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::MonthlyReport>, Status> {
        self.caller(&request, Role::Viewer, "GetReport")?;
        let month = month_of(&request.get_ref().month)?;
        let report = self.report(month).await?;
        Ok(Response::new(report_message(&report)))
    }

    pub(super) async fn export_report_impl(
        &self,
        request: Request<pb::ExportReportRequest>,
    ) -> Result<Response<pb::ExportReportResponse>, Status> {
        self.caller(&request, Role::Viewer, "ExportReport")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let format = match pb::ReportFormat::try_from(r.format) {
            Ok(
                f @ (pb::ReportFormat::Csv
                | pb::ReportFormat::Xlsx
                | pb::ReportFormat::Html
                | pb::ReportFormat::Pdf),
            ) => f,
            _ => {
                return Err(invalid(DomainError::new(
                    "format",
                    "one of REPORT_FORMAT_CSV, REPORT_FORMAT_XLSX, REPORT_FORMAT_HTML, \
                     REPORT_FORMAT_PDF",
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
            pb::ReportFormat::Pdf => (
                "pdf",
                "application/pdf",
                crate::report::export::pdf(&report),
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

    pub(super) async fn send_report_impl(
        &self,
        request: Request<pb::SendReportRequest>,
    ) -> Result<Response<pb::SendReportResponse>, Status> {
        let caller = self.caller(&request, Role::Operator, "SendReport")?;
        let r = request.into_inner();
        let month = month_of(&r.month)?;
        let reason = reason_of(&r.reason)?;
        if self.state.report_recipients.is_empty() {
            return Err(Status::failed_precondition(
                "no report recipients are configured (PCN_REPORT_RECIPIENTS of the control API \
                 and the worker): nothing to send",
            ));
        }
        // A month without data has no report to send.
        self.report(month).await?;
        let pool = &self.state.pool;
        let done = report_deliveries::requeue(
            pool,
            month,
            &self.state.report_recipients,
            r.resend_in_doubt,
            &caller.actor(),
            &reason,
        )
        .await
        .map_err(|e| db_error("queueing the report emails", e))?;
        let rows = report_deliveries::list(pool, month)
            .await
            .map_err(|e| db_error("listing the report emails", e))?;
        let count = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(pb::SendReportResponse {
            queued: count(done.queued),
            retried: count(done.retried),
            resent: count(done.resent),
            deliveries: rows.iter().map(delivery_message).collect(),
        }))
    }

    pub(super) async fn list_report_deliveries_impl(
        &self,
        request: Request<pb::ListReportDeliveriesRequest>,
    ) -> Result<Response<pb::ListReportDeliveriesResponse>, Status> {
        self.caller(&request, Role::Viewer, "ListReportDeliveries")?;
        let month = month_of(&request.get_ref().month)?;
        let rows = report_deliveries::list(&self.state.pool, month)
            .await
            .map_err(|e| db_error("listing the report emails", e))?;
        Ok(Response::new(pb::ListReportDeliveriesResponse {
            deliveries: rows.iter().map(delivery_message).collect(),
        }))
    }

    async fn report(&self, month: YearMonth) -> Result<crate::report::MonthlyReport, Status> {
        crate::report::build(&self.state.pool, month)
            .await
            .map_err(|e| read_error("building the report", e))?
            .ok_or_else(|| Status::not_found(format!("month {month} has no data to report")))
    }
}

/// One report email as an API message.
fn delivery_message(d: &ReportDelivery) -> pb::ReportDelivery {
    let status = match d.status {
        ReportDeliveryStatus::Pending => pb::ReportDeliveryStatus::Pending,
        ReportDeliveryStatus::Sending => pb::ReportDeliveryStatus::Sending,
        ReportDeliveryStatus::Sent => pb::ReportDeliveryStatus::Sent,
        ReportDeliveryStatus::Failed => pb::ReportDeliveryStatus::Failed,
        ReportDeliveryStatus::InDoubt => pb::ReportDeliveryStatus::InDoubt,
    };
    pb::ReportDelivery {
        recipient: d.recipient.clone(),
        status: status.into(),
        request: u32::try_from(d.request).unwrap_or(0),
        attempts: u32::try_from(d.attempts).unwrap_or(0),
        next_attempt_at: ts(d.next_attempt_at),
        last_error: d.last_error.clone().unwrap_or_default(),
        message_id: d.message_id.clone().unwrap_or_default(),
        requested_by: d.requested_by.clone(),
        created_at: ts(d.created_at),
        updated_at: ts(d.updated_at),
        sent_at: opt_ts(d.sent_at),
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
