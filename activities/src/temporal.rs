//! The Temporal activity implementations. Each is bound to its contract in
//! `pcn_workflows::contracts` with `definition = ...`, so the compiler checks that name, input and
//! output agree with what the workflows schedule.

use std::sync::Arc;

use pcn_workflows::contracts::{
    self, CountNotificationsInput, DailySweepInput, DeliveryReport, NotificationCounts, PollInput,
    PrepareInput, Prepared, QualificationSummary, QualifyInput, QueueReportInput,
    QueueReportOutput, RecordInput, StartNotificationsInput, StartNotificationsOutput, SubmitInput,
    SubmitResult, SweepSummary,
};
use temporalio_common::error::ApplicationFailure;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

use crate::PcnActivities;
use crate::fanout::{self, FanoutDeps};
use crate::gateway::Gateway;
use crate::notifications;
use crate::qualify;
use crate::report_deliveries;
use crate::sms_steps::{self as sms, SmsDeps};
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
        let info = ctx.info();
        let attempt = sweep::Attempt {
            number: info.attempt,
            first_scheduled: info
                .scheduled_time
                .map(chrono::DateTime::<chrono::Utc>::from),
        };
        let result = sweep::run_daily_sweep(
            &self.pool,
            &self.bank,
            &self.sweep,
            &self.metrics,
            &input,
            attempt,
            heartbeat,
        )
        .await;
        match result {
            Ok(summary) => Ok(summary),
            Err(SweepError::BankAuthentication(detail)) => Err(ActivityError::application(
                ApplicationFailure::builder(anyhow::anyhow!(
                    "core banking refused our credentials: {detail}"
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
        let summary = qualify::qualify_month(&self.pool, &input).await?;
        for (reason, customers) in summary.by_reason() {
            self.metrics
                .qualification_customers
                .with_label_values(&[reason.as_str()])
                .set(i64::try_from(customers).unwrap_or(i64::MAX));
        }
        Ok(summary)
    }

    /// Starts the SMS workflows of one page of qualified customers.
    #[activity(definition = contracts::StartNotifications)]
    pub async fn start_notifications(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: StartNotificationsInput,
    ) -> Result<StartNotificationsOutput, ActivityError> {
        let deps = self.fanout_deps()?;
        let progress = |done: u64| {
            let ctx = &ctx;
            async move {
                // Progress only: a lost heartbeat is made good by the next one.
                if let Err(err) = ctx.record_heartbeat(done).await {
                    tracing::warn!(error = %err, "fan-out heartbeat not recorded");
                }
            }
        };
        let output = fanout::start_page(&self.pool, deps, &input, progress).await?;
        self.metrics.sms_workflows_started.inc_by(output.started);
        Ok(output)
    }

    /// A month's notification counts.
    #[activity(definition = contracts::CountNotifications)]
    pub async fn count_notifications(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CountNotificationsInput,
    ) -> Result<NotificationCounts, ActivityError> {
        Ok(notifications::month_counts(&self.pool, input.month).await?)
    }

    /// Queues the completed month's report emails: one outbox row per configured recipient
    /// (idempotent), sent later by the worker's mailer.
    #[activity(definition = contracts::QueueReport)]
    pub async fn queue_report(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: QueueReportInput,
    ) -> Result<QueueReportOutput, ActivityError> {
        let recipients = &self.report_recipients;
        if recipients.is_empty() {
            tracing::info!(
                month = %input.month,
                "no report recipients configured (PCN_REPORT_RECIPIENTS): the month's report is not mailed"
            );
            return Ok(QueueReportOutput::default());
        }
        let actor = format!("workflow:{}", input.run.workflow_id);
        let queued = report_deliveries::queue(&self.pool, input.month, recipients, &actor)
            .await
            .map_err(anyhow::Error::from)?;
        tracing::info!(month = %input.month, queued = queued.len(), "report emails queued");
        Ok(QueueReportOutput {
            recipients: u32::try_from(recipients.len()).unwrap_or(u32::MAX),
            queued: u32::try_from(queued.len()).unwrap_or(u32::MAX),
        })
    }

    /// Prepares a notification while the send window is closed.
    #[activity(definition = contracts::PrepareNotification)]
    pub async fn prepare_notification(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PrepareInput,
    ) -> Result<Prepared, ActivityError> {
        Ok(sms::prepare(&self.pool, self.sms_deps()?, &input).await?)
    }

    /// Submits one attempt (at most once).
    #[activity(definition = contracts::SubmitSms)]
    pub async fn submit_sms(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: SubmitInput,
    ) -> Result<SubmitResult, ActivityError> {
        let deps = self.sms.clone().ok_or_else(|| {
            ActivityError::from(anyhow::anyhow!("this worker has no SMS carrier configured"))
        })?;
        let gateway = deps
            .running
            .get_or_init(|| {
                Gateway::spawn(
                    self.pool.clone(),
                    std::sync::Arc::clone(&deps),
                    self.metrics.clone(),
                )
            })
            .clone();
        Ok(gateway.submit(input).await?)
    }

    /// Polls the carrier for an attempt's status.
    #[activity(definition = contracts::PollDelivery)]
    pub async fn poll_delivery_status(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PollInput,
    ) -> Result<Option<DeliveryReport>, ActivityError> {
        Ok(sms::poll(&self.pool, self.sms_deps()?, &input).await?)
    }

    /// Records a notification's state change.
    #[activity(definition = contracts::RecordNotification)]
    pub async fn record_notification(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordInput,
    ) -> Result<(), ActivityError> {
        if let Some(state) = sms::record(&self.pool, &input).await? {
            self.metrics
                .notifications_finished
                .with_label_values(&[state.as_str()])
                .inc();
        }
        Ok(())
    }
}

impl PcnActivities {
    fn sms_deps(&self) -> Result<&SmsDeps, ActivityError> {
        self.sms
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("this worker has no SMS carrier configured").into())
    }

    fn fanout_deps(&self) -> Result<&FanoutDeps, ActivityError> {
        self.fanout.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this worker has no Temporal client for the fan-out").into()
        })
    }
}
