//! Activity contracts: the names, inputs and outputs that workflows schedule and that
//! `pcn-activities` implements. Keeping them here keeps the workflow crate free of IO while the
//! compiler still checks both sides against one definition.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_workflow::common::ActivityDefinition;

use crate::domain::{BusinessDate, Nis, YearMonth};

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
    /// of retried (seed 002 §7.1: skip the day after a long outage). Before it, the activity
    /// fails retryably and Temporal retries it; a retry only visits customers without a row.
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
