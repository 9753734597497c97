//! The pure, deterministic heart of the Premium Customer Notification System.
//!
//! Nothing in this crate performs IO, reads a clock or draws a random number: it holds the domain
//! types that parse input at the boundary, the Temporal workflow definitions (which must replay
//! deterministically) and the *contracts* of the activities (names and typed inputs/outputs). The
//! activity implementations, which own all IO, live in `pcn-activities` and register under the
//! same names.
//!
//! # Layout
//!
//! - [`domain`]: `YearMonth`, `BusinessDate` (Asia/Jerusalem), `Nis`, `Phone`, ids, `Language`.
//! - [`contracts`]: activity names, inputs and outputs shared by workflows and activities.
//! - [`delivery`]: carrier-neutral delivery statuses, failure categories, message references.
//! - [`month`]: `MonthlyQualificationWorkflow`, one run per month (`qualification/YYYY-MM`).
//! - [`sms`]: `SmsNotificationWorkflow`, one run per customer and month (`sms/YYYY-MM/<customer>`).
//! - [`search`]: the custom search attributes ops filter on in the Temporal Web UI.
//! - [`vocabulary`]: the stored words of checks and decisions (`CheckOutcome`,
//!   `QualificationReason`).

pub mod contracts;
pub mod customer;
pub mod delivery;
pub mod domain;
pub mod message;
// `#[workflow_methods]` generates an undocumented constant per method (the methods carry the
// docs), which `missing_docs` cannot tell apart.
#[allow(missing_docs)]
pub mod month;
pub mod search;
#[allow(missing_docs)]
pub mod sms;
pub mod vocabulary;
pub mod web_ui;
pub mod window;

/// Task queue served by the worker (one queue: workflows and activities of this system).
pub const TASK_QUEUE: &str = "pcn";

/// Workflow time: the time of the current workflow task, the same on every replay (never the
/// system clock).
pub(crate) fn workflow_now<W>(
    ctx: &temporalio_workflow::WorkflowContext<W>,
) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::<chrono::Utc>::from(
        ctx.workflow_time()
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH),
    )
}
