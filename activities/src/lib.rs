//! All IO of the Premium Customer Notification System: Postgres, the core-banking client, and the
//! Temporal activities that the workflows in `pcn-workflows` schedule by name.
//!
//! # Layout
//!
//! - [`db`]: connection pool, migrations.
//! - [`roles`]: the owner and application roles, `pcn-worker setup`'s migrations and grants.
//! - [`bank`]: the core-banking balance client (`docs/requirements.md#bank-api`): timeouts,
//!   retries, error mapping.
//! - [`sweep`]: the daily balance sweep over every monitored customer.
//! - [`qualify`]: the set-based month-end decision.
//! - [`carrier`]: the SMS carrier adapters (generic REST, Twilio-compatible), signatures, callbacks.
//! - [`templates`]: loading the SMS templates.
//! - [`notifications`]: an operator's changes of `notifications` (the manual retry).
//! - [`sms_steps`]: the SMS steps (prepare, submit, poll, record); [`fanout`]: the fan-out.
//! - [`attempts`]: the owner of `sms_attempts` and `in_doubt_resolutions` (claims, adoption).
//! - [`in_doubt`]: the resolution rule of an attempt whose submission outcome is unknown.
//! - [`delivery_events`]: the evidence reads and FOREIGN flags of stored delivery events.
//! - [`keyring`]: AES-256-GCM keyrings and the HMAC blind index (encryption at rest).
//! - [`phone_vault`]: phone numbers sealed at rest and their blind index; [`key_rotation`]:
//!   `pcn-worker rotate-keys`.
//! - [`failpoint`]: named crash points for the crash tests (`PCN_FAILPOINT`).
//! - [`gateway`]: the submission gateway — batches across workflows, admission control.
//! - [`budget`]: the owner of `carrier_budgets`, the per-carrier rate shared by all workers.
//! - [`audit`]: the append-only audit log.
//! - [`partitions`]: the month partitions of `balance_checks`: created ahead, exported, dropped,
//!   restored (`pcn-worker retention`).
//! - [`report_deliveries`]: the outbox of the monthly report's emails (exactly one per recipient
//!   and month; the in-doubt rule).
//! - [`consent`]: the consent ledger, the only way `customers.opted_out` changes.
//! - [`metrics`]: Prometheus metrics of our own (the SDK exports its own).
//! - [`setup`]: the one assembly of [`PcnActivities`] from settings (worker, tests, benches).
//! - [`PcnActivities`]: the Temporal activity implementations, registered on the worker.

pub mod attempts;
pub mod audit;
pub mod bank;
pub mod breaker;
pub mod budget;
pub mod carrier;
pub mod consent;
pub mod customers;
pub mod db;
pub mod delivery_events;
pub mod failpoint;
pub mod fanout;
pub mod gateway;
pub mod in_doubt;
pub mod key_rotation;
pub mod keyring;
pub mod metrics;
pub mod notifications;
pub mod partitions;
pub mod phone_vault;
pub mod qualify;
pub mod report_deliveries;
pub mod roles;
pub mod setup;
pub mod sms_steps;
pub mod sweep;
pub mod templates;
pub mod tls;

use crate::bank::BankClient;
use crate::metrics::Metrics;
use crate::sweep::SweepSettings;

// `#[activities]` generates an undocumented marker per method (the methods carry the docs).
#[allow(missing_docs)]
mod temporal;

/// Shared state of the activities: the pool, the bank client, settings and metrics.
pub struct PcnActivities {
    /// Postgres pool.
    pub pool: sqlx::PgPool,
    /// Core-banking client.
    pub bank: BankClient,
    /// Page size and concurrency of the sweep.
    pub sweep: SweepSettings,
    /// Our metrics.
    pub metrics: Metrics,
    /// Carrier and templates of the SMS steps (None: this worker cannot send SMS, and fails those
    /// activities retryably so another worker can).
    pub sms: Option<std::sync::Arc<sms_steps::SmsDeps>>,
    /// Temporal client of the fan-out (None: same as above).
    pub fanout: Option<fanout::FanoutDeps>,
    /// Addresses the monthly report is mailed to (`PCN_REPORT_RECIPIENTS`, parsed); empty: the
    /// report is not mailed.
    pub report_recipients: Vec<String>,
}
