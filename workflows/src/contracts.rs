//! Activity contracts: the names, inputs and outputs that workflows schedule and that
//! `pcn-activities` implements. Keeping them here keeps the workflow crate free of IO while the
//! compiler still checks both sides against one definition.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_workflow::common::ActivityDefinition;

use crate::delivery::{DeliveryStatus, FailureCategory, MessageRef};
use crate::domain::{BusinessDate, CustomerId, Nis, YearMonth};
use crate::vocabulary::{NotificationState, QualificationReason};
use crate::window::SendWindow;

/// Activity type name of the daily balance sweep (as shown in the Web UI).
pub const DAILY_BALANCE_SWEEP: &str = "DailyBalanceSweep";
/// Activity type name of the month-end qualification.
pub const QUALIFY_MONTH: &str = "QualifyMonth";

/// Error type name of a failure that retrying cannot fix: the bank refused our credentials (401).
/// The month workflow stops on it and waits for an operator (`resume` signal) instead of retrying.
pub const ERR_BANK_AUTH: &str = "BankAuthenticationFailed";
/// Error type name of a configuration that the activity refuses (e.g. a non-positive threshold).
pub const ERR_INVALID_INPUT: &str = "InvalidInput";

/// Which workflow run asks for the work: stored on every row the activity writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    /// Temporal workflow id, e.g. `qualification/2026-10`.
    pub workflow_id: String,
    /// Temporal run id.
    pub run_id: String,
}

/// Input of [`DailyBalanceSweep`]: check every active monitored customer for one business date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailySweepInput {
    /// The business date whose end-of-day balance is read (`asOfDate`).
    pub date: BusinessDate,
    /// Balance at or above which a day passes (inclusive).
    pub threshold: Nis,
    /// After this instant accounts the bank still cannot answer are recorded as MISSING instead
    /// of retried (docs/requirements.md#daily-sweep: give up after a long outage). Before it, the
    /// activity fails retryably and Temporal retries it; a retry only visits customers without a
    /// row.
    pub give_up_at: DateTime<Utc>,
    /// The run that writes the rows.
    pub run: RunRef,
}

/// Counts of one business date's checks, after the sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepSummary {
    /// The business date.
    pub date: BusinessDate,
    /// Rows for this date in `balance_checks` (all outcomes).
    pub checked: u64,
    /// Rows with outcome PASSED.
    pub passed: u64,
    /// Rows with outcome BELOW_THRESHOLD.
    pub below_threshold: u64,
    /// Rows with outcome MISSING.
    pub missing: u64,
    /// Rows with outcome ACCOUNT_NOT_FOUND.
    pub not_found: u64,
    /// Rows with outcome INVALID_RESPONSE.
    pub invalid: u64,
    /// Rows this execution wrote (0 when everything had been written before, e.g. on a retry).
    pub written_now: u64,
}

/// Input of [`QualifyMonth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualifyInput {
    /// The month to decide.
    pub month: YearMonth,
    /// Threshold recorded with the decisions (the checks already carry their own outcome).
    pub threshold: Nis,
    /// The run that writes the decisions.
    pub run: RunRef,
}

/// Month-end decision counts. The qualified customers themselves stay in Postgres
/// (`qualifications WHERE qualified`): 100,000 ids do not belong in a workflow history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualificationSummary {
    /// The month decided.
    pub month: Option<YearMonth>,
    /// Customers with a decision for the month.
    pub customers: u64,
    /// Customers who kept the threshold on every calendar day.
    pub qualified: u64,
    /// Not qualified: joined the programme after the 1st of the month.
    pub not_monitored_whole_month: u64,
    /// Not qualified: at least one day below the threshold.
    pub below_threshold: u64,
    /// Not qualified: the bank did not know the account on some day.
    pub account_not_found: u64,
    /// Not qualified: a non-NIS or malformed answer on some day.
    pub invalid_response: u64,
    /// Not qualified: a day without a usable answer.
    pub missing_data: u64,
    /// Decisions this execution wrote (0 on a re-run: decisions are never rewritten).
    pub written_now: u64,
}

impl QualificationSummary {
    /// The customers of each reason, in [`QualificationReason::ALL`]'s order.
    pub fn by_reason(&self) -> [(QualificationReason, u64); 6] {
        QualificationReason::ALL.map(|reason| {
            let customers = match reason {
                QualificationReason::Qualified => self.qualified,
                QualificationReason::NotMonitoredWholeMonth => self.not_monitored_whole_month,
                QualificationReason::BelowThreshold => self.below_threshold,
                QualificationReason::AccountNotFound => self.account_not_found,
                QualificationReason::InvalidResponse => self.invalid_response,
                QualificationReason::MissingData => self.missing_data,
            };
            (reason, customers)
        })
    }
}

/// Marker for the daily balance sweep activity.
#[derive(Debug, Clone, Copy, Default)]
pub struct DailyBalanceSweep;

impl ActivityDefinition for DailyBalanceSweep {
    type Input = DailySweepInput;
    type Output = SweepSummary;
    fn name(&self) -> &str {
        DAILY_BALANCE_SWEEP
    }
}

/// Marker for the month-end qualification activity.
#[derive(Debug, Clone, Copy, Default)]
pub struct QualifyMonth;

impl ActivityDefinition for QualifyMonth {
    type Input = QualifyInput;
    type Output = QualificationSummary;
    fn name(&self) -> &str {
        QUALIFY_MONTH
    }
}

// ---------------------------------------------------------------------------------------------
// SMS notifications
// ---------------------------------------------------------------------------------------------

/// Activity type name of the fan-out step (starts one SMS workflow per qualified customer).
pub const START_NOTIFICATIONS: &str = "StartNotifications";
/// Local activity: a month's notification counts by state, from Postgres.
pub const COUNT_NOTIFICATIONS: &str = "CountNotifications";
/// Local activity: queue the month's report emails (the outbox rows of the configured recipients).
pub const QUEUE_REPORT: &str = "QueueReport";
/// Local activity: load the customer, check the opt-out, render and size the message.
pub const PREPARE_NOTIFICATION: &str = "PrepareNotification";
/// Local activity: submit one attempt to the carrier (idempotent per message reference).
pub const SUBMIT_SMS: &str = "SubmitSms";
/// Local activity: ask the carrier for an attempt's delivery status (the 2-hourly poll).
pub const POLL_DELIVERY: &str = "PollDeliveryStatus";
/// Local activity: record a state change of a notification (and its attempt) in Postgres.
pub const RECORD_NOTIFICATION: &str = "RecordNotification";

/// Input of [`StartNotifications`]: start the SMS workflows of one page of qualified customers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartNotificationsInput {
    /// The month decided.
    pub month: YearMonth,
    /// Keyset cursor: start after this customer id (None: from the first).
    pub after: Option<CustomerId>,
    /// Customers in this page.
    pub limit: u32,
    /// Settings every SMS workflow of the month is started with.
    pub settings: SmsSettings,
    /// Task queue of the SMS workflows.
    pub task_queue: String,
    /// The month run that fans out.
    pub run: RunRef,
}

/// What one fan-out page did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartNotificationsOutput {
    /// Qualified customers in the page.
    pub seen: u64,
    /// SMS workflows started by this execution.
    pub started: u64,
    /// Customers whose workflow already existed (a retried or reset fan-out): not started again.
    pub already_started: u64,
    /// The last customer of the page: the cursor of the next one.
    pub last: Option<CustomerId>,
    /// No qualified customer after this page.
    pub done: bool,
}

/// Input of [`QueueReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueReportInput {
    /// The completed month.
    pub month: YearMonth,
    /// The run that asks (the actor of the outbox rows and their audit entries).
    pub run: RunRef,
}

/// What [`QueueReport`] did: a database insert only, so SMTP can never hold the month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueReportOutput {
    /// Recipients configured on the worker that ran it.
    pub recipients: u32,
    /// Outbox rows inserted now (0 on a retry: one row per recipient and month).
    pub queued: u32,
}

/// Input of [`CountNotifications`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountNotificationsInput {
    /// The month.
    pub month: YearMonth,
}

/// A month's notifications by state (from Postgres, the source of truth).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationCounts {
    /// Qualified customers of the month.
    pub qualified: u64,
    /// Notifications created (one per qualified customer once the fan-out is through).
    pub total: u64,
    /// PENDING.
    pub pending: u64,
    /// WAITING_WINDOW.
    pub waiting_window: u64,
    /// SUBMITTED.
    pub submitted: u64,
    /// RETRY_WAIT.
    pub retry_wait: u64,
    /// DELIVERED.
    pub delivered: u64,
    /// FAILED.
    pub failed: u64,
    /// UNDELIVERABLE.
    pub undeliverable: u64,
    /// OPTED_OUT.
    pub opted_out: u64,
    /// CANCELLED.
    pub cancelled: u64,
}

impl NotificationCounts {
    /// Notifications in a final state.
    pub fn finished(&self) -> u64 {
        self.delivered + self.failed + self.undeliverable + self.opted_out + self.cancelled
    }

    /// Notifications not yet final.
    pub fn in_flight(&self) -> u64 {
        self.total.saturating_sub(self.finished())
    }
}

/// Identifies a notification: the customer and month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationKey {
    /// The month.
    pub month: YearMonth,
    /// The customer.
    pub customer: CustomerId,
}

impl NotificationKey {
    /// The reference of one attempt of this notification.
    pub fn attempt(&self, attempt: u32) -> MessageRef {
        MessageRef {
            month: self.month,
            customer: self.customer.clone(),
            attempt,
        }
    }
}

/// Input of [`PrepareNotification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepareInput {
    /// Which notification.
    pub key: NotificationKey,
    /// Record this state (WAITING_WINDOW while the send window is closed).
    pub state: NotificationState,
}

/// What preparing found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prepared {
    /// The message renders; it will be sent when the window opens.
    Ready {
        /// Segments of the rendered message.
        segments: u32,
    },
    /// The customer opted out: nothing will be sent.
    OptedOut,
    /// No such customer (never expected: notifications come from decided customers).
    UnknownCustomer,
}

/// Input of [`SubmitSms`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitInput {
    /// Which notification.
    pub key: NotificationKey,
    /// Attempt number (from 1): with the key, the reference the carrier gets.
    pub attempt: u32,
    /// Carrier ids named by delivery signals of this attempt that arrived before the attempt was
    /// recorded: evidence that the carrier has it, should it be in doubt.
    #[serde(default)]
    pub reported_ids: Vec<String>,
    /// How long an attempt in doubt waits for evidence (callbacks, signals, a carrier lookup)
    /// before it is sent again under the same reference.
    #[serde(default = "default_reconcile_secs")]
    pub reconcile_secs: u64,
    /// The run submitting (recorded with an in-doubt resolution).
    #[serde(default)]
    pub run: Option<RunRef>,
}

/// Default reconciliation period of an attempt in doubt: 10 minutes, long enough for a normal
/// callback to arrive.
pub const DEFAULT_RECONCILE_SECS: u64 = 10 * 60;

fn default_reconcile_secs() -> u64 {
    DEFAULT_RECONCILE_SECS
}

/// What a submission did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SubmitResult {
    /// The carrier took the message (now or in an earlier execution of the same attempt).
    Submitted {
        /// Carrier name (`generic`, `twilio`).
        carrier: String,
        /// The carrier's id of the message.
        carrier_message_id: String,
    },
    /// The carrier refused the message.
    Rejected {
        /// Why.
        category: FailureCategory,
        /// The carrier's code.
        code: String,
    },
    /// The customer opted out before the message went out: nothing sent.
    OptedOut,
    /// No such customer.
    UnknownCustomer,
    /// The attempt is in doubt (an earlier send may have reached the carrier, and no evidence
    /// either way was found yet): nothing was sent now. Ask again after `recheck_secs`, or sooner
    /// when a delivery signal for the attempt arrives.
    InDoubt {
        /// When to ask again.
        recheck_secs: u64,
    },
    /// Not now: the worker's submission queue is full or the carrier's rate is used up. Nothing
    /// was claimed or sent; ask again after `retry_secs` (a durable timer, not a failure).
    Deferred {
        /// When to ask again.
        retry_secs: u64,
    },
}

/// Input of [`PollDelivery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollInput {
    /// Which attempt.
    pub reference: MessageRef,
    /// The carrier's id of it.
    pub carrier_message_id: String,
}

/// A delivery report, from a webhook signal or a status poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The attempt it is about.
    pub attempt: u32,
    /// The carrier's id of the message.
    pub carrier_message_id: String,
    /// What the carrier says.
    pub status: DeliveryStatus,
    /// The carrier's error code, if any.
    pub error_code: Option<String>,
    /// Row id in `delivery_events` (None for a poll answer).
    pub event_id: Option<i64>,
}

/// How one attempt ended, as recorded on its `sms_attempts` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AttemptOutcome {
    /// Refused at submission.
    Rejected,
    /// Delivered.
    Delivered,
    /// Failed (see the category).
    Failed,
    /// Permanently undeliverable.
    Undeliverable,
    /// No final status within the confirmation window.
    NoConfirmation,
    /// The notification was cancelled while this attempt was out.
    Cancelled,
}

impl AttemptOutcome {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rejected => "REJECTED",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Undeliverable => "UNDELIVERABLE",
            Self::NoConfirmation => "NO_CONFIRMATION",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Every outcome.
    pub const ALL: [Self; 6] = [
        Self::Rejected,
        Self::Delivered,
        Self::Failed,
        Self::Undeliverable,
        Self::NoConfirmation,
        Self::Cancelled,
    ];

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Input of [`RecordNotification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordInput {
    /// Which notification.
    pub key: NotificationKey,
    /// Its new state.
    pub state: NotificationState,
    /// The attempt that ended, and how (None when no attempt ended).
    pub attempt: Option<(u32, AttemptOutcome)>,
    /// The carrier's error code of that attempt.
    pub error_code: Option<String>,
    /// Why it did not end DELIVERED.
    pub category: Option<FailureCategory>,
    /// For humans.
    pub detail: Option<String>,
    /// The workflow run that decides (audit).
    pub run: RunRef,
}

macro_rules! local_activity {
    ($(#[$doc:meta])* $marker:ident, $name:expr, $input:ty, $output:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $marker;

        impl ActivityDefinition for $marker {
            type Input = $input;
            type Output = $output;
            fn name(&self) -> &str {
                $name
            }
        }
    };
}

local_activity!(
    /// Marker for the fan-out activity.
    StartNotifications,
    START_NOTIFICATIONS,
    StartNotificationsInput,
    StartNotificationsOutput
);
local_activity!(
    /// Marker for the notification-count local activity.
    CountNotifications,
    COUNT_NOTIFICATIONS,
    CountNotificationsInput,
    NotificationCounts
);
local_activity!(
    /// Marker for the report-queueing local activity (run when a month completes).
    QueueReport,
    QUEUE_REPORT,
    QueueReportInput,
    QueueReportOutput
);
local_activity!(
    /// Marker for the prepare local activity.
    PrepareNotification,
    PREPARE_NOTIFICATION,
    PrepareInput,
    Prepared
);
local_activity!(
    /// Marker for the submit local activity.
    SubmitSms,
    SUBMIT_SMS,
    SubmitInput,
    SubmitResult
);
local_activity!(
    /// Marker for the status-poll local activity (None: the carrier did not answer).
    PollDelivery,
    POLL_DELIVERY,
    PollInput,
    Option<DeliveryReport>
);
local_activity!(
    /// Marker for the record local activity.
    RecordNotification,
    RECORD_NOTIFICATION,
    RecordInput,
    ()
);

/// Tunables of the SMS workflows, carried in their input (defaults:
/// docs/requirements.md#sms-rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SmsSettings {
    /// Attempts in all (initial + retries). Default 3.
    pub max_attempts: u32,
    /// Wait between a failed attempt and the next. Default 6 h.
    pub retry_delay_secs: u64,
    /// How long an attempt may stay without a final status before it is UNDELIVERABLE. Default 72 h.
    pub confirmation_timeout_secs: u64,
    /// Status poll interval while waiting for a callback. Default 2 h.
    pub poll_interval_secs: u64,
    /// When messages may go out (Asia/Jerusalem). Default Sunday–Thursday 09:00–20:00.
    pub window: SendWindow,
    /// Set the `PcnNotificationStatus` search attribute as the state changes (off only where the
    /// namespace cannot have it: the time-skipping test server).
    pub search_attributes: bool,
    /// How long an attempt in doubt waits for evidence before it is sent again under the same
    /// reference. Default 10 min (a normal callback arrives within seconds).
    pub reconcile_secs: u64,
}

impl Default for SmsSettings {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            retry_delay_secs: 6 * 60 * 60,
            confirmation_timeout_secs: 72 * 60 * 60,
            poll_interval_secs: 2 * 60 * 60,
            window: SendWindow::default(),
            search_attributes: true,
            reconcile_secs: DEFAULT_RECONCILE_SECS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_splits_its_customers_by_reason() {
        let summary = QualificationSummary {
            customers: 21,
            qualified: 1,
            not_monitored_whole_month: 2,
            below_threshold: 3,
            account_not_found: 4,
            invalid_response: 5,
            missing_data: 6,
            ..Default::default()
        };
        let by_reason = summary.by_reason();
        assert_eq!(
            by_reason.map(|(reason, n)| (reason.as_str(), n)),
            [
                ("QUALIFIED", 1),
                ("NOT_MONITORED_WHOLE_MONTH", 2),
                ("BELOW_THRESHOLD", 3),
                ("ACCOUNT_NOT_FOUND", 4),
                ("INVALID_RESPONSE", 5),
                ("MISSING_DATA", 6),
            ]
        );
        assert_eq!(
            by_reason.iter().map(|(_, n)| n).sum::<u64>(),
            summary.customers
        );
    }
}
