//! Month runs from the outside: start (or backfill) a month under its business id, read its
//! progress, and keep the monthly Temporal Schedule in place.

use anyhow::Context as _;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{
    self, MonthInput, MonthPhase, MonthProgress, MonthSettings, MonthlyQualificationWorkflow,
    ScheduledMonthStart,
};
use pcn_workflows::search;
use temporalio_client::WorkflowIdReusePolicy;
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::schedules::{CreateScheduleOptions, ScheduleAction, ScheduleSpec};
use temporalio_client::{Client, WorkflowQueryOptions, WorkflowStartOptions};
use temporalio_common::search_attributes::SearchAttributes;

/// What `start_month` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new run started.
    Started {
        /// Its run id.
        run_id: String,
    },
    /// The month already has a run (running or finished): nothing was started.
    AlreadyStarted,
}

/// Starts `month` under `qualification/YYYY-MM`. A second start of the same month — while it runs
/// or after it finished — starts nothing: the id is the business key and reuse is rejected.
pub async fn start_month(
    client: &Client,
    task_queue: &str,
    month: YearMonth,
    settings: MonthSettings,
) -> anyhow::Result<StartOutcome> {
    let attributes = settings.search_attributes.then(|| {
        SearchAttributes::new([
            search::MONTH.value_set(month.to_string()),
            search::PHASE.value_set(MonthPhase::Monitoring.as_str().to_owned()),
        ])
    });
    let options = WorkflowStartOptions::new(task_queue, month::workflow_id(month))
        .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
        .maybe_search_attributes(attributes)
        .static_summary(month::run_summary(month, settings.threshold))
        .static_details(month::run_details(&client.options().namespace, month))
        .build();
    match client
        .start_workflow(
            MonthlyQualificationWorkflow::run,
            MonthInput { month, settings },
            options,
        )
        .await
    {
        Ok(handle) => Ok(StartOutcome::Started {
            run_id: handle.run_id().unwrap_or_default().to_owned(),
        }),
        Err(WorkflowStartError::AlreadyStarted { .. }) => Ok(StartOutcome::AlreadyStarted),
        Err(err) => Err(err).context("starting the month workflow"),
    }
}

/// The `progress` query of the month's run.
pub async fn progress(client: &Client, month: YearMonth) -> anyhow::Result<MonthProgress> {
    client
        .get_workflow_handle::<MonthlyQualificationWorkflow>(month::workflow_id(month))
        .query(
            MonthlyQualificationWorkflow::progress,
            (),
            WorkflowQueryOptions::default(),
        )
        .await
        .context("querying month progress")
}

/// Id of the monthly schedule.
pub const SCHEDULE_ID: &str = "pcn-monthly-qualification";
/// Cron of the schedule: midnight of the 1st, read in [`SCHEDULE_TIME_ZONE`].
pub const SCHEDULE_CRON: &str = "0 0 1 * *";
/// Time zone of the schedule.
pub const SCHEDULE_TIME_ZONE: &str = "Asia/Jerusalem";

/// What `apply_schedule` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleOutcome {
    /// The schedule did not exist and was created.
    Created,
    /// It existed with other settings and was updated.
    Updated,
    /// It existed with these settings: nothing changed.
    Unchanged,
}

/// Creates or updates the schedule that starts each month on the 1st (Asia/Jerusalem).
/// Re-running with the same settings changes nothing (the settings' fingerprint is kept in the
/// schedule's note and compared first).
pub async fn apply_schedule(
    client: &Client,
    task_queue: &str,
    settings: &MonthSettings,
) -> anyhow::Result<ScheduleOutcome> {
    let fingerprint = format!(
        "pcn v1 cron={SCHEDULE_CRON} tz={SCHEDULE_TIME_ZONE} queue={task_queue} settings={}",
        serde_json::to_string(settings)?
    );
    let spec = || {
        ScheduleSpec::builder()
            .cron_strings(vec![SCHEDULE_CRON.to_owned()])
            .timezone_name(SCHEDULE_TIME_ZONE.to_owned())
            .build()
    };
    let action = || {
        ScheduleAction::start_workflow(
            ScheduledMonthStart::run,
            settings.clone(),
            task_queue.to_owned(),
            "pcn-month-start".to_owned(),
        )
    };
    let handle = client.get_schedule_handle(SCHEDULE_ID);
    match handle.describe(Default::default()).await {
        Ok(description) => {
            if description.note() == Some(fingerprint.as_str()) {
                return Ok(ScheduleOutcome::Unchanged);
            }
            let (spec, action) = (spec(), action());
            handle
                .update(
                    move |update| {
                        update
                            .set_spec(spec)
                            .set_action(action)
                            .set_note(fingerprint);
                    },
                    Default::default(),
                )
                .await
                .context("updating the schedule")?;
            Ok(ScheduleOutcome::Updated)
        }
        Err(temporalio_client::schedules::ScheduleError::Rpc(status))
            if status.code() == tonic::Code::NotFound =>
        {
            client
                .create_schedule(
                    SCHEDULE_ID,
                    CreateScheduleOptions::builder()
                        .action(action())
                        .spec(spec())
                        .note(fingerprint)
                        .build(),
                )
                .await
                .context("creating the schedule")?;
            Ok(ScheduleOutcome::Created)
        }
        Err(err) => Err(err).context("reading the schedule"),
    }
}
