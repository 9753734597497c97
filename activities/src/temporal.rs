//! The Temporal activity implementations. Each is bound to its contract in
//! `pcn_workflows::contracts` with `definition = ...`, so the compiler checks that name, input and
//! output agree with what the workflows schedule.

use std::sync::Arc;

use pcn_workflows::contracts::{
    self, DailySweepInput, QualificationSummary, QualifyInput, SweepSummary,
};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::PcnActivities;
use crate::qualify;
use crate::sweep::{self, SweepError};

#[activities]
impl PcnActivities {
    /// Checks every active monitored customer's balance for one business date.
    #[activity(definition = contracts::DailyBalanceSweep)]
    pub async fn daily_balance_sweep(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: DailySweepInput,
    ) -> Result<SweepSummary, ActivityError> {
        let heartbeat = |progress: sweep::Progress| {
            let ctx = &ctx;
            async move {
                // A failed heartbeat (server unreachable) is not a reason to abandon the sweep:
                // the rows it writes are what makes a retry resume.
                if let Err(err) = ctx.record_heartbeat(progress).await {
                    tracing::warn!(error = %err, "heartbeat not recorded");
                }
                !ctx.is_cancelled()
            }
        };
        let result = sweep::run_daily_sweep(
            &self.pool,
            &self.bank,
            &self.sweep,
            &self.metrics,
            &input,
            heartbeat,
        )
        .await;
        match result {
            Ok(summary) => Ok(summary),
            Err(SweepError::BankAuthentication(detail)) => Err(ActivityError::application(
                ApplicationFailure::builder(anyhow::anyhow!(
                    "core banking refused our credentials (HTTP 401): {detail}"
                ))
                .type_name(contracts::ERR_BANK_AUTH.to_owned())
                .non_retryable(true)
                .build(),
            )),
            Err(SweepError::Cancelled) => Err(ActivityError::cancelled()),
            Err(SweepError::Other(err)) => Err(err.into()),
        }
    }

    /// Decides the month for every customer (idempotent: decisions are never rewritten).
    #[activity(definition = contracts::QualifyMonth)]
    pub async fn qualify_month(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: QualifyInput,
    ) -> Result<QualificationSummary, ActivityError> {
        Ok(qualify::qualify_month(&self.pool, &input).await?)
    }
}
