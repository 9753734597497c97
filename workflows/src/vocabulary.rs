//! The words the month's evidence is stored under, one enum per vocabulary and one spelling per
//! word: the outcome of one balance check, the reason of one decision, the state of one
//! notification, what the webhook's dispatcher did with a delivery event, and — defined beside
//! the carrier adapters that translate into them, re-exported here — what a carrier says about a
//! message ([`DeliveryStatus`]) and why a message failed ([`FailureCategory`]). An attempt's
//! status is `pcn_activities::attempts::AttemptStatus` (its ending is
//! [`crate::contracts::AttemptOutcome`]). The SQL `CHECK` constraints, the control API's enums and
//! the report use these spellings (the `vocabulary` system test and a unit test of the API
//! conversion hold them to it).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::DomainError;

pub use crate::delivery::{DeliveryStatus, FailureCategory};

/// The outcome of one balance check (`balance_checks.outcome`), see
/// `docs/requirements.md#qualification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckOutcome {
    /// The balance was at least the threshold.
    Passed,
    /// The balance was below the threshold.
    BelowThreshold,
    /// No usable answer before the day's sweep gave up.
    Missing,
    /// The bank does not know the account (HTTP 404).
    AccountNotFound,
    /// The answer failed the data-quality checks (currency, scale, body, another account/date).
    InvalidResponse,
}

impl CheckOutcome {
    /// Every outcome.
    pub const ALL: [Self; 5] = [
        Self::Passed,
        Self::BelowThreshold,
        Self::Missing,
        Self::AccountNotFound,
        Self::InvalidResponse,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "PASSED",
            Self::BelowThreshold => "BELOW_THRESHOLD",
            Self::Missing => "MISSING",
            Self::AccountNotFound => "ACCOUNT_NOT_FOUND",
            Self::InvalidResponse => "INVALID_RESPONSE",
        }
    }

    /// Parses the stored spelling (field `outcome`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| DomainError::new("outcome", "unknown check outcome"))
    }
}

impl fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reason of a month's decision for one customer (`qualifications.reason`): `Qualified`, or
/// the first reason that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QualificationReason {
    /// Every day of the month PASSED.
    Qualified,
    /// Monitored from after the month's first day.
    NotMonitoredWholeMonth,
    /// At least one day below the threshold.
    BelowThreshold,
    /// At least one day the bank did not know the account.
    AccountNotFound,
    /// At least one day with an answer that failed the data-quality checks.
    InvalidResponse,
    /// At least one day without a usable answer (or without a row).
    MissingData,
}

impl QualificationReason {
    /// Every reason, `Qualified` first, then in precedence order.
    pub const ALL: [Self; 6] = [
        Self::Qualified,
        Self::NotMonitoredWholeMonth,
        Self::BelowThreshold,
        Self::AccountNotFound,
        Self::InvalidResponse,
        Self::MissingData,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Qualified => "QUALIFIED",
            Self::NotMonitoredWholeMonth => "NOT_MONITORED_WHOLE_MONTH",
            Self::BelowThreshold => "BELOW_THRESHOLD",
            Self::AccountNotFound => "ACCOUNT_NOT_FOUND",
            Self::InvalidResponse => "INVALID_RESPONSE",
            Self::MissingData => "MISSING_DATA",
        }
    }

    /// Parses the stored spelling (field `reason`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| DomainError::new("reason", "unknown qualification reason"))
    }
}

impl fmt::Display for QualificationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// State of a notification; also the `PcnNotificationStatus` search attribute and
/// `notifications.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationState {
    /// Started, not yet submitted.
    Pending,
    /// Outside the send window: waiting for it to open.
    WaitingWindow,
    /// An attempt is with the carrier.
    Submitted,
    /// An attempt failed; the next one waits for the retry delay.
    RetryWait,
    /// Final: on the handset.
    Delivered,
    /// Final: every attempt failed.
    Failed,
    /// Final: permanent failure, or no confirmation within the window.
    Undeliverable,
    /// Final: the customer opted out; nothing was sent.
    OptedOut,
    /// Final: cancelled by an operator.
    Cancelled,
}

impl NotificationState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 9] = [
        Self::Pending,
        Self::WaitingWindow,
        Self::Submitted,
        Self::RetryWait,
        Self::Delivered,
        Self::Failed,
        Self::Undeliverable,
        Self::OptedOut,
        Self::Cancelled,
    ];

    /// The stored / search-attribute spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::WaitingWindow => "WAITING_WINDOW",
            Self::Submitted => "SUBMITTED",
            Self::RetryWait => "RETRY_WAIT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Undeliverable => "UNDELIVERABLE",
            Self::OptedOut => "OPTED_OUT",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the notification is over.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Delivered | Self::Failed | Self::Undeliverable | Self::OptedOut | Self::Cancelled
        )
    }

    /// Whether an operator may send it again (one more attempt, `RetryNotification`): only a
    /// notification that ended without reaching the handset through the carrier's fault — never
    /// a delivered, opted-out, cancelled or unfinished one.
    pub fn can_be_retried_by_hand(self) -> bool {
        matches!(self, Self::Failed | Self::Undeliverable)
    }
}

/// What the dispatcher did with a stored delivery event (`delivery_events.signal_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalState {
    /// A final report to be signalled to its SMS workflow.
    Pending,
    /// The workflow has it.
    Signalled,
    /// No running workflow (finished or unknown): kept, not signalled.
    WorkflowClosed,
    /// A progress report (QUEUED, SENT, NO_STATUS), a poll's answer or a report naming another
    /// carrier id than its attempt's: stored, never signalled.
    NotSignalled,
}

impl SignalState {
    /// Every state.
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Signalled,
        Self::WorkflowClosed,
        Self::NotSignalled,
    ];

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Signalled => "SIGNALLED",
            Self::WorkflowClosed => "WORKFLOW_CLOSED",
            Self::NotSignalled => "NOT_SIGNALLED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for SignalState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_and_matches_serde() {
        for o in CheckOutcome::ALL {
            assert_eq!(CheckOutcome::parse(o.as_str()), Ok(o));
            assert_eq!(serde_json::to_string(&o).unwrap(), format!("\"{o}\""));
        }
        for r in QualificationReason::ALL {
            assert_eq!(QualificationReason::parse(r.as_str()), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!(CheckOutcome::parse("passed").is_err());
        let by_hand: Vec<_> = NotificationState::ALL
            .into_iter()
            .filter(|s| s.can_be_retried_by_hand())
            .collect();
        assert_eq!(
            by_hand,
            [NotificationState::Failed, NotificationState::Undeliverable]
        );
        assert!(QualificationReason::parse("").is_err());
        for v in SignalState::ALL {
            assert_eq!(SignalState::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        for c in FailureCategory::ALL {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
        for d in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(d.as_str()), Ok(d));
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
    }
}
