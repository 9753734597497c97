//! The one place the activities are assembled from their settings: `pcn-worker run`, the test
//! helpers and the benchmarks all build their [`PcnActivities`] here, so a new dependency is
//! added once and nobody's worker differs from production by accident.

use std::sync::Arc;

use temporalio_client::Client;

use crate::PcnActivities;
use crate::bank::{BankClient, BankConfig};
use crate::breaker::BreakerSettings;
use crate::carrier::CarrierConfig;
use crate::fanout::FanoutDeps;
use crate::gateway::GatewaySettings;
use crate::metrics::Metrics;
use crate::sms_steps::SmsDeps;
use crate::sweep::SweepSettings;
use pcn_workflows::message::TemplateSet;

/// What a worker's activities are made of.
pub struct ActivitySetup {
    /// Postgres pool.
    pub pool: sqlx::PgPool,
    /// The core-banking client's settings.
    pub bank: BankConfig,
    /// Page size and concurrency of the sweep.
    pub sweep: SweepSettings,
    /// Our metrics.
    pub metrics: Metrics,
    /// The SMS side; `None`: this worker sends no SMS (those activities fail retryably so another
    /// worker can run them).
    pub sms: Option<SmsSetup>,
    /// Addresses the monthly report is mailed to when a month completes (parsed e-mail
    /// addresses); empty: not mailed.
    pub report_recipients: Vec<String>,
}

/// The SMS side of a worker.
pub struct SmsSetup {
    /// The carrier (and its secondary, if configured).
    pub carrier: CarrierConfig,
    /// The message templates.
    pub templates: TemplateSet,
    /// Batching and admission of submissions.
    pub gateway: GatewaySettings,
    /// When a carrier's circuit breaker opens (used with a secondary carrier).
    pub breaker: BreakerSettings,
    /// The Temporal client the fan-out starts SMS workflows with.
    pub client: Client,
    /// Starts in flight in the fan-out.
    pub fanout_concurrency: usize,
    /// The keys of stored phone numbers (`PCN_PHONE_KEYS`, `PCN_PHONE_INDEX_KEY`).
    pub phones: crate::phone_vault::PhoneVault,
}

impl ActivitySetup {
    /// The activities, with their clients built (fails on a bad bank or carrier configuration,
    /// or a secondary carrier identical to the primary).
    pub fn build(self) -> anyhow::Result<PcnActivities> {
        let (sms, fanout) = match self.sms {
            None => (None, None),
            Some(setup) => {
                let deps = SmsDeps::with_gateway(
                    setup.carrier.build()?,
                    setup.templates,
                    setup.gateway,
                    setup.phones,
                )
                .with_failover(setup.carrier.build_secondary()?, setup.breaker)?;
                let fanout = FanoutDeps {
                    client: setup.client,
                    concurrency: setup.fanout_concurrency,
                };
                (Some(Arc::new(deps)), Some(fanout))
            }
        };
        Ok(PcnActivities {
            pool: self.pool,
            bank: BankClient::new(self.bank)?.observed_by(self.metrics.bank_requests.clone()),
            sweep: self.sweep,
            metrics: self.metrics,
            sms,
            fanout,
            report_recipients: self.report_recipients,
        })
    }
}
