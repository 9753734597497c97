//! `--json` output: each response message as a JSON object, mapped by hand.
//!
//! Field names are the proto's (snake_case); enums are their names without the type prefix
//! (`"DELIVERED"`); 64-bit counts are plain numbers; an absent sub-message is `null`.

use pcn_proto::v1::{
    AuditEntry, BalanceCheck, CategoryCount, CheckOutcome, Customer, DailyRow, DayCounts,
    DeliveryMetrics, GetCustomerResponse, Month, MonthActionResponse, MonthPhase, MonthlyReport,
    Notification, NotificationCounts, NotificationStatus, ProcessingMetrics, Qualification,
    QualificationCounts, QualificationMetrics, QualificationReason, ReasonCount, ReportDelivery,
    ReportDeliveryStatus, ReportSummary, RetryNotificationResponse, SendReportResponse, SmsAttempt,
    StartMonthResponse,
};
use serde_json::{Value, json};

use crate::enums::name;

fn list<T>(items: &[T], each: fn(&T) -> Value) -> Value {
    Value::Array(items.iter().map(each).collect())
}

fn optional<T>(item: Option<&T>, each: fn(&T) -> Value) -> Value {
    item.map_or(Value::Null, each)
}

/// `StartMonthResponse`.
pub fn start_month(r: &StartMonthResponse) -> Value {
    json!({
        "month": r.month,
        "workflow_id": r.workflow_id,
        "run_id": r.run_id,
        "backfill": r.backfill,
    })
}

/// `MonthActionResponse`.
pub fn month_action(r: &MonthActionResponse) -> Value {
    json!({
        "month": r.month,
        "workflow_id": r.workflow_id,
        "phase_before": name::<MonthPhase>(r.phase_before),
    })
}

fn qualification_counts(c: &QualificationCounts) -> Value {
    json!({
        "decided": c.decided,
        "qualified": c.qualified,
        "not_monitored_whole_month": c.not_monitored_whole_month,
        "below_threshold": c.below_threshold,
        "account_not_found": c.account_not_found,
        "invalid_response": c.invalid_response,
        "missing_data": c.missing_data,
    })
}

fn notification_counts(c: &NotificationCounts) -> Value {
    json!({
        "total": c.total,
        "pending": c.pending,
        "waiting_window": c.waiting_window,
        "submitted": c.submitted,
        "retry_wait": c.retry_wait,
        "delivered": c.delivered,
        "failed": c.failed,
        "undeliverable": c.undeliverable,
        "opted_out": c.opted_out,
        "cancelled": c.cancelled,
    })
}

fn day_counts(d: &DayCounts) -> Value {
    json!({
        "date": d.date,
        "checked": d.checked,
        "passed": d.passed,
        "below_threshold": d.below_threshold,
        "missing": d.missing,
        "not_found": d.not_found,
        "invalid": d.invalid,
    })
}

/// `Month`.
pub fn month(m: &Month) -> Value {
    json!({
        "month": m.month,
        "workflow_id": m.workflow_id,
        "run_id": m.run_id,
        "phase": name::<MonthPhase>(m.phase),
        "blocked_reason": m.blocked_reason,
        "days_total": m.days_total,
        "days_done": m.days_done,
        "next_check_at": m.next_check_at,
        "qualification": optional(m.qualification.as_ref(), qualification_counts),
        "notifications": optional(m.notifications.as_ref(), notification_counts),
        "fanout_started": m.fanout_started,
        "days": list(&m.days, day_counts),
        "carriers": m.carriers.iter().map(|b| json!({
            "carrier": b.carrier,
            "state": pcn_proto::v1::BreakerState::try_from(b.state)
                .map(|s| s.as_str_name())
                .unwrap_or("BREAKER_STATE_UNSPECIFIED"),
            "changed_at": b.changed_at,
            "worker": b.worker,
        })).collect::<Vec<_>>(),
        "as_of": m.as_of,
        "degraded": m.degraded,
    })
}

/// `Qualification`.
pub fn qualification(q: &Qualification) -> Value {
    json!({
        "month": q.month,
        "customer_id": q.customer_id,
        "qualified": q.qualified,
        "reason": name::<QualificationReason>(q.reason),
        "days_in_month": q.days_in_month,
        "days_passed": q.days_passed,
        "days_below": q.days_below,
        "days_missing": q.days_missing,
        "days_not_found": q.days_not_found,
        "days_invalid": q.days_invalid,
        "threshold": q.threshold,
        "decided_at": q.decided_at,
    })
}

/// `ListQualificationsResponse` (all the pages read).
pub fn qualifications(items: &[Qualification], next_page_token: &str) -> Value {
    json!({
        "qualifications": list(items, qualification),
        "next_page_token": next_page_token,
    })
}

/// `Customer`.
pub fn customer(c: &Customer) -> Value {
    json!({
        "customer_id": c.customer_id,
        "account_id": c.account_id,
        "first_name": c.first_name,
        "phone": c.phone,
        "language": c.language,
        "opted_out": c.opted_out,
        "active": c.active,
        "monitored_since": c.monitored_since,
        "updated_at": c.updated_at,
    })
}

fn balance_check(b: &BalanceCheck) -> Value {
    json!({
        "date": b.date,
        "outcome": name::<CheckOutcome>(b.outcome),
        "amount": b.amount,
        "threshold": b.threshold,
        "detail": b.detail,
        "fetched_at": b.fetched_at,
    })
}

fn sms_attempt(a: &SmsAttempt) -> Value {
    json!({
        "attempt": a.attempt,
        "message_ref": a.message_ref,
        "carrier": a.carrier,
        "carrier_message_id": a.carrier_message_id,
        "status": a.status,
        "error_code": a.error_code,
        "failure_category": a.failure_category,
        "submitted_at": a.submitted_at,
        "finished_at": a.finished_at,
    })
}

/// `Notification`.
pub fn notification(n: &Notification) -> Value {
    json!({
        "month": n.month,
        "customer_id": n.customer_id,
        "workflow_id": n.workflow_id,
        "status": name::<NotificationStatus>(n.status),
        "attempts": n.attempts,
        "language": n.language,
        "segments": n.segments,
        "failure_category": n.failure_category,
        "detail": n.detail,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
        "finished_at": n.finished_at,
        "manual_retries": n.manual_retries,
        "sms_attempts": list(&n.sms_attempts, sms_attempt),
    })
}

/// `GetCustomerResponse`.
pub fn customer_details(r: &GetCustomerResponse) -> Value {
    json!({
        "customer": optional(r.customer.as_ref(), customer),
        "checks_month": r.checks_month,
        "checks": list(&r.checks, balance_check),
        "qualifications": list(&r.qualifications, qualification),
        "notifications": list(&r.notifications, notification),
        "consent": list(&r.consent, |e| json!({
            "opted_out": e.opted_out,
            "source": e.source,
            "occurred_at": e.occurred_at,
            "actor": e.actor,
            "reason": e.reason,
            "carrier_message_id": e.carrier_message_id,
        })),
    })
}

/// `ListNotificationsResponse` (all the pages read).
pub fn notifications(items: &[Notification], next_page_token: &str) -> Value {
    json!({
        "notifications": list(items, notification),
        "next_page_token": next_page_token,
    })
}

/// `RetryNotificationResponse`.
pub fn retry(r: &RetryNotificationResponse) -> Value {
    json!({
        "notification": optional(r.notification.as_ref(), notification),
        "attempt": r.attempt,
        "run_id": r.run_id,
        "replayed": r.replayed,
    })
}

/// `report send`.
pub fn send_report(r: &SendReportResponse) -> Value {
    json!({
        "queued": r.queued,
        "retried": r.retried,
        "resent": r.resent,
        "deliveries": report_deliveries(&r.deliveries),
    })
}

/// `report deliveries` (and the deliveries of `report send`).
pub fn report_deliveries(deliveries: &[ReportDelivery]) -> Value {
    let deliveries: Vec<Value> = deliveries
        .iter()
        .map(|d| {
            json!({
                "recipient": d.recipient,
                "status": name::<ReportDeliveryStatus>(d.status),
                "request": d.request,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at,
                "last_error": d.last_error,
                "message_id": d.message_id,
                "requested_by": d.requested_by,
                "created_at": d.created_at,
                "updated_at": d.updated_at,
                "sent_at": d.sent_at,
            })
        })
        .collect();
    Value::Array(deliveries)
}

fn reason_count(r: &ReasonCount) -> Value {
    json!({"reason": r.reason, "count": r.count, "percent": r.percent})
}

fn category_count(c: &CategoryCount) -> Value {
    json!({"name": c.name, "count": c.count})
}

fn summary(s: &ReportSummary) -> Value {
    json!({
        "customers_monitored": s.customers_monitored,
        "qualified": s.qualified,
        "qualification_rate": s.qualification_rate,
        "notifications": s.notifications,
        "delivered": s.delivered,
        "delivery_rate": s.delivery_rate,
    })
}

fn qualification_metrics(q: &QualificationMetrics) -> Value {
    json!({
        "decided": q.decided,
        "qualified": q.qualified,
        "not_qualified": q.not_qualified,
        "reasons": list(&q.reasons, reason_count),
        "near_misses": q.near_misses,
        "threshold": q.threshold,
    })
}

fn daily_row(d: &DailyRow) -> Value {
    json!({
        "date": d.date,
        "checked": d.checked,
        "passed": d.passed,
        "below_threshold": d.below_threshold,
        "missing": d.missing,
        "not_found": d.not_found,
        "invalid": d.invalid,
        "pass_rate": d.pass_rate,
    })
}

fn delivery(d: &DeliveryMetrics) -> Value {
    json!({
        "qualified": d.qualified,
        "notifications": d.notifications,
        "submitted": d.submitted,
        "delivered": d.delivered,
        "failed": d.failed,
        "undeliverable": d.undeliverable,
        "pending": d.pending,
        "opted_out": d.opted_out,
        "cancelled": d.cancelled,
        "messages_sent": d.messages_sent,
        "delivered_first_attempt": d.delivered_first_attempt,
        "segments_total": d.segments_total,
        "in_doubt_adopted": d.in_doubt_adopted,
        "in_doubt_resubmitted": d.in_doubt_resubmitted,
        "in_doubt_abandoned": d.in_doubt_abandoned,
        "foreign_reports": d.foreign_reports,
        "content_filtered": d.content_filtered,
    })
}

fn processing(p: &ProcessingMetrics) -> Value {
    json!({
        "days_swept": p.days_swept,
        "first_sweep_at": p.first_sweep_at,
        "last_sweep_at": p.last_sweep_at,
        "decided_at": p.decided_at,
        "first_submission_at": p.first_submission_at,
        "last_final_at": p.last_final_at,
        "delivery_latency_p50_secs": p.delivery_latency_p50_secs,
        "delivery_latency_p95_secs": p.delivery_latency_p95_secs,
        "submission_wait_p50_secs": p.submission_wait_p50_secs,
        "submission_wait_p95_secs": p.submission_wait_p95_secs,
        "check_error_rate": p.check_error_rate,
        "submission_reject_rate": p.submission_reject_rate,
    })
}

/// `MonthlyReport`.
pub fn report(r: &MonthlyReport) -> Value {
    json!({
        "month": r.month,
        "generated_at": r.generated_at,
        "summary": optional(r.summary.as_ref(), summary),
        "qualification": optional(r.qualification.as_ref(), qualification_metrics),
        "daily": list(&r.daily, daily_row),
        "delivery": optional(r.delivery.as_ref(), delivery),
        "failure_categories": list(&r.failure_categories, category_count),
        "top_error_codes": list(&r.top_error_codes, category_count),
        "carriers": r.carriers.iter().map(|c| json!({
            "carrier": c.carrier,
            "attempts": c.attempts,
            "accepted": c.accepted,
            "delivered": c.delivered,
            "failed": c.failed,
        })).collect::<Vec<_>>(),
        "processing": optional(r.processing.as_ref(), processing),
        "recommendations": r.recommendations,
    })
}

/// `AuditEntry`.
pub fn audit_entry(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "occurred_at": e.occurred_at,
        "actor": e.actor,
        "action": e.action,
        "subject_type": e.subject_type,
        "subject_id": e.subject_id,
        "details_json": e.details_json,
    })
}

/// `ListAuditEntriesResponse` (all the pages read).
pub fn audit_entries(items: &[AuditEntry], next_page_token: &str) -> Value {
    json!({
        "entries": list(items, audit_entry),
        "next_page_token": next_page_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_prints_its_status_by_name_and_its_attempts() {
        let n = Notification {
            month: "2026-10".into(),
            customer_id: "C1".into(),
            workflow_id: "sms/2026-10/C1".into(),
            status: NotificationStatus::Delivered as i32,
            attempts: 2,
            sms_attempts: vec![SmsAttempt {
                attempt: 1,
                status: "FAILED".into(),
                ..SmsAttempt::default()
            }],
            ..Notification::default()
        };
        let value = notification(&n);
        assert_eq!(value["status"], "DELIVERED");
        assert_eq!(value["attempts"], 2);
        assert_eq!(value["workflow_id"], "sms/2026-10/C1");
        assert_eq!(value["sms_attempts"][0]["status"], "FAILED");
        assert_eq!(value["sms_attempts"][0]["attempt"], 1);
    }

    #[test]
    fn a_month_without_counts_prints_null_and_its_phase_by_name() {
        let m = Month {
            month: "2026-10".into(),
            phase: MonthPhase::Blocked as i32,
            blocked_reason: "bank answered 401".into(),
            days_total: 31,
            days_done: 12,
            ..Month::default()
        };
        let value = month(&m);
        assert_eq!(value["phase"], "BLOCKED");
        assert_eq!(value["days_done"], 12);
        assert!(value["qualification"].is_null());
        assert_eq!(value["days"], json!([]));
    }
}
