//! `MonthlyQualificationWorkflow`: one run per calendar month, id `qualification/YYYY-MM`.
//!
//! For every day of the month it sleeps on a durable timer until the check time (22:00
//! Asia/Jerusalem by default), then runs the daily balance sweep; days already past (a backfill,
//! or a run started late) run at once. After the last day it decides the month with the
//! qualification activity and hands the result to the notification step; when every notification
//! is final it queues the report's emails (`QueueReport`, a database insert: the worker's mailer
//! sends them) and completes.
//!
//! Operators steer it with the `pause` / `resume` signals and read it with the `progress` query.
//! A sweep or decision that fails in a way retrying cannot fix (the bank refusing our credentials)
//! does not fail the month: the run turns BLOCKED, says why in `progress` and in the `PcnPhase`
//! search attribute, and waits for `resume` to try again — a month-long run is never lost to a
//! credential rotation.
//!
//! ScheduledMonthStart is the small workflow a Temporal Schedule starts on the 1st: schedules
//! append a timestamp to workflow ids, so it starts the month run under its business id.
//!
//! Over 600 lines on purpose: the month workflow reads top to bottom in one file (days, hold,
//! qualification, fan-out, wait); its pure parts are in `window.rs`, `domain/calendar.rs` and the
//! activity contracts.

use std::time::Duration;

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_workflow::common::error::StartChildWorkflowExecutionFailedCause;
use temporalio_workflow::common::search_attributes::SearchAttributes;
use temporalio_workflow::{
    ActivityExecutionError, ActivityOptions, ChildWorkflowOptions, ChildWorkflowStartError,
    LocalActivityOptions, ParentClosePolicy, RetryPolicy, SyncWorkflowContext, TimerOptions,
    WorkflowContext, WorkflowContextView, WorkflowIdReusePolicy, WorkflowResult,
    WorkflowTermination, workflow, workflow_methods,
};

use crate::contracts::{
    CountNotifications, CountNotificationsInput, DailyBalanceSweep, DailySweepInput, ERR_BANK_AUTH,
    ERR_INVALID_INPUT, NotificationCounts, QualificationSummary, QualifyInput, QualifyMonth,
    QueueReport, QueueReportInput, RunRef, StartNotifications, StartNotificationsInput,
    StartNotificationsOutput, SweepSummary,
};
use crate::domain::{BusinessDate, CustomerId, Nis, YearMonth};
use crate::sms::SmsSettings;
use crate::{TASK_QUEUE, search, web_ui, workflow_now};

/// The workflow id of a month: the business key that makes a second start of the same month a
/// no-op.
pub fn workflow_id(month: YearMonth) -> String {
    format!("qualification/{month}")
}

/// Tunables of a month run, carried in the workflow input so a run keeps the settings it
/// started with. Every field has the production default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonthSettings {
    /// Local (Asia/Jerusalem) wall-clock time of the daily check. Default 22:00.
    pub check_time: NaiveTime,
    /// Balance that passes a day (inclusive). Default 15,000.00 NIS.
    pub threshold: Nis,
    /// How long the bank may stay unreachable before the remaining accounts of a day are
    /// recorded as MISSING (docs/requirements.md#daily-sweep: two hours).
    pub give_up_after_secs: u64,
    /// Heartbeat timeout of the sweep: how fast a sweep lost with its worker is retried elsewhere.
    pub sweep_heartbeat_timeout_secs: u64,
    /// Set the `PcnMonth` / `PcnPhase` search attributes. On by default; off only for a namespace
    /// that cannot have them (the time-skipping test server has no custom search attributes).
    pub search_attributes: bool,
    /// Qualified customers per fan-out activity (each starts that many SMS workflows).
    pub fanout_page: u32,
    /// How often the notification counts are re-read from Postgres while messages are out.
    pub notification_poll_secs: u64,
    /// Settings of the month's SMS workflows.
    pub sms: SmsSettings,
}

impl Default for MonthSettings {
    fn default() -> Self {
        Self {
            check_time: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
            threshold: Nis::from_whole(15_000),
            give_up_after_secs: 2 * 60 * 60,
            sweep_heartbeat_timeout_secs: 60,
            search_attributes: true,
            fanout_page: 2_000,
            notification_poll_secs: 15 * 60,
            sms: SmsSettings::default(),
        }
    }
}

/// Input of a month run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthInput {
    /// The month to monitor and decide.
    pub month: YearMonth,
    /// Tunables; defaults when absent.
    #[serde(default)]
    pub settings: MonthSettings,
}

/// Coarse phase of a month run; also the value of the `PcnPhase` search attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MonthPhase {
    /// Waiting for the next check time or sweeping a day.
    Monitoring,
    /// Paused by an operator; the next day waits for `resume`.
    Paused,
    /// Stopped on a failure retrying cannot fix; waits for `resume`.
    Blocked,
    /// Deciding the month.
    Qualifying,
    /// Handing the qualified customers to the notification step.
    Notifying,
    /// Done.
    Completed,
}

impl MonthPhase {
    /// Every phase, in the order a month usually passes through them.
    pub const ALL: [Self; 6] = [
        Self::Monitoring,
        Self::Paused,
        Self::Blocked,
        Self::Qualifying,
        Self::Notifying,
        Self::Completed,
    ];

    /// The search-attribute spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monitoring => "MONITORING",
            Self::Paused => "PAUSED",
            Self::Blocked => "BLOCKED",
            Self::Qualifying => "QUALIFYING",
            Self::Notifying => "NOTIFYING",
            Self::Completed => "COMPLETED",
        }
    }
}

/// One swept day, as seen by the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayProgress {
    /// Workflow time at which the sweep started (22:00 local for a live month).
    pub started_at: DateTime<Utc>,
    /// Counts returned by the sweep.
    pub summary: SweepSummary,
}

/// Answer of the `progress` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthProgress {
    /// The month.
    pub month: YearMonth,
    /// Current phase.
    pub phase: MonthPhase,
    /// Why the run is blocked, when it is.
    pub blocked_reason: Option<String>,
    /// Calendar days in the month.
    pub days_total: u32,
    /// Days swept so far.
    pub days_done: u32,
    /// The day being swept right now.
    pub sweeping: Option<BusinessDate>,
    /// When the next daily check is due (workflow time).
    pub next_check_at: Option<DateTime<Utc>>,
    /// Every swept day.
    pub days: Vec<DayProgress>,
    /// The month's decision counts, once decided.
    pub qualification: Option<QualificationSummary>,
    /// SMS workflows started by the fan-out so far (and found already started).
    #[serde(default)]
    pub fanout: StartNotificationsOutput,
    /// The month's notifications by state, as last read from Postgres.
    #[serde(default)]
    pub notifications: Option<NotificationCounts>,
}

/// Result of a completed month run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthOutcome {
    /// The month.
    pub month: YearMonth,
    /// Days swept.
    pub days_swept: u32,
    /// Decision counts.
    pub qualification: QualificationSummary,
    /// Final notification counts (None for runs that predate the SMS step).
    #[serde(default)]
    pub notifications: Option<NotificationCounts>,
}

/// What holds a month run, if anything: one value for the pause flag, the block's reason and the
/// phase to return to, so the three cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hold {
    /// Running.
    Free,
    /// Paused by an operator (`pause` signal); `resume` returns to `resume_to`.
    Paused { resume_to: MonthPhase },
    /// A step failed for good (e.g. the bank refused our key); `resume` tries it again and the
    /// run returns to `resume_to`.
    Blocked {
        resume_to: MonthPhase,
        reason: String,
    },
}

impl Hold {
    fn is_held(&self) -> bool {
        !matches!(self, Self::Free)
    }

    fn blocked_reason(&self) -> Option<String> {
        match self {
            Self::Blocked { reason, .. } => Some(reason.clone()),
            Self::Free | Self::Paused { .. } => None,
        }
    }
}

/// See the module docs.
#[workflow]
pub struct MonthlyQualificationWorkflow {
    input: MonthInput,
    phase: MonthPhase,
    /// Whether an operator's pause or a failed step holds the run.
    hold: Hold,
    sweeping: Option<BusinessDate>,
    next_check_at: Option<DateTime<Utc>>,
    days: Vec<DayProgress>,
    qualification: Option<QualificationSummary>,
    fanout: StartNotificationsOutput,
    notifications: Option<NotificationCounts>,
}

/// Patch marker of the SMS step: runs recorded before it completed right after qualification.
pub const PATCH_SMS_FANOUT: &str = "sms-fanout";

/// Patch marker of the report's email delivery: runs recorded before it completed without
/// queueing the report emails.
pub const PATCH_REPORT_DELIVERY: &str = "report-delivery";

/// Patch: the schedule's month run carries a static summary and details for the Web UI.
pub const PATCH_MONTH_DETAILS: &str = "month-static-details";

/// Patch: every other patch of the month run is decided in its first workflow task, before any
/// local activity has run.
///
/// Why: on replay the SDK core (0.10.1) resolves a local activity in the workflow task whose
/// completion carries its marker. When a query is answered while a local activity's result is
/// waiting to reach the workflow (an operator's `GetMonth` while the month counts its
/// notifications), the core completes the task with the marker and the workflow code sees the
/// result only in the next task. The code after it then runs one task earlier on replay than
/// it did live. That is harmless for commands, which are matched in order, but `patched` answers
/// from the markers of the current task only: a patch first asked right after such a local
/// activity answers `false` on replay where it answered `true` live, and the run no longer
/// replays (`TMPRL1100 Non-deprecated patch marker encountered`). Runs recorded before this
/// patch decide their patches where they always did.
pub const PATCH_DECIDED_FIRST: &str = "patches-decided-first";

/// The month run's one-line summary in the Web UI (no personal data).
pub fn run_summary(month: YearMonth, threshold: Nis) -> String {
    format!("{month} · threshold {threshold} NIS on every day")
}

/// The month run's static details in the Web UI: what it is, and one click to its SMS runs (the
/// fan-out starts them from an activity, not as children, so the UI does not list them under
/// the month).
pub fn run_details(namespace: &str, month: YearMonth) -> String {
    let query = format!(
        "{}=\"{month}\" AND WorkflowType=\"SmsNotificationWorkflow\"",
        search::MONTH.name()
    );
    format!(
        "Monthly qualification of **{month}**: a balance check of every monitored account each \
         evening (Asia/Jerusalem), the decision at month end, one SMS per qualified customer.\n\n\
         [SMS notifications of {month}](/namespaces/{}/workflows?query={})",
        percent_encode(namespace),
        percent_encode(&query)
    )
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[workflow_methods]
impl MonthlyQualificationWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: MonthInput) -> Self {
        Self {
            input,
            phase: MonthPhase::Monitoring,
            hold: Hold::Free,
            sweeping: None,
            next_check_at: None,
            days: Vec::new(),
            qualification: None,
            fanout: StartNotificationsOutput::default(),
            notifications: None,
        }
    }

    /// Runs the month: daily sweeps, then the decision, then the notification hand-off.
    #[run(name = "MonthlyQualificationWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<MonthOutcome> {
        let (month, settings) = ctx.state(|s| (s.input.month, s.input.settings.clone()));
        // Every patch of this run is decided here, before any local activity (see
        // [`PATCH_DECIDED_FIRST`]); runs recorded before it decide each one where it is used.
        let decided_first = ctx.patched(PATCH_DECIDED_FIRST);
        let sms_fanout = decided_first.then(|| ctx.patched(PATCH_SMS_FANOUT));
        let report_delivery = decided_first.then(|| ctx.patched(PATCH_REPORT_DELIVERY));
        let run = RunRef {
            workflow_id: ctx.workflow_id().to_owned(),
            run_id: ctx.run_id().to_owned(),
        };
        if settings.search_attributes {
            ctx.upsert_search_attributes([
                search::MONTH.value_set(month.to_string()),
                search::PHASE.value_set(MonthPhase::Monitoring.as_str().to_owned()),
            ]);
        }
        show(ctx);
        let give_up_after = chrono::Duration::seconds(
            i64::try_from(settings.give_up_after_secs).unwrap_or(i64::MAX / 1_000_000),
        );

        for date in month.days() {
            let due = date.at_local(settings.check_time);
            let now = workflow_now(ctx);
            if due > now {
                ctx.state_mut(|s| s.next_check_at = Some(due));
                show(ctx);
                ctx.timer(
                    TimerOptions::builder((due - now).to_std().unwrap_or_default())
                        .summary(web_ui::daily_check_timer(due))
                        .build(),
                )
                .await;
            }
            ctx.wait_condition(|s| !s.hold.is_held()).await?;

            let started_at = workflow_now(ctx);
            ctx.state_mut(|s| {
                s.next_check_at = None;
                s.sweeping = Some(date);
            });
            show(ctx);
            let input = DailySweepInput {
                date,
                threshold: settings.threshold,
                give_up_at: due.max(started_at) + give_up_after,
                run: run.clone(),
            };
            let summary =
                execute_or_block(ctx, DailyBalanceSweep, input, sweep_options(&settings)).await?;
            ctx.state_mut(|s| {
                s.sweeping = None;
                s.days.push(DayProgress {
                    started_at,
                    summary,
                });
            });
            show(ctx);
        }

        set_phase(ctx, MonthPhase::Qualifying);
        let input = QualifyInput {
            month,
            threshold: settings.threshold,
            run: run.clone(),
        };
        let qualification = execute_or_block(ctx, QualifyMonth, input, qualify_options()).await?;
        ctx.state_mut(|s| s.qualification = Some(qualification.clone()));
        show(ctx);

        // Notification: the qualified customers are the rows of `qualifications WHERE qualified`.
        set_phase(ctx, MonthPhase::Notifying);
        if sms_fanout.unwrap_or_else(|| ctx.patched(PATCH_SMS_FANOUT)) {
            fan_out(ctx, month, &settings, &run).await?;
            follow_notifications(ctx, month, &settings).await?;
        }

        // The report goes by email: the outbox rows are queued here, a database insert only; the
        // worker's mailer sends them. SMTP cannot block or fail the month.
        if report_delivery.unwrap_or_else(|| ctx.patched(PATCH_REPORT_DELIVERY)) {
            ctx.execute_local_activity(
                QueueReport,
                QueueReportInput {
                    month,
                    run: run.clone(),
                },
                count_options(),
            )
            .await?;
        }

        set_phase(ctx, MonthPhase::Completed);
        Ok(MonthOutcome {
            month,
            days_swept: ctx.state(|s| u32::try_from(s.days.len()).unwrap_or(u32::MAX)),
            qualification,
            notifications: ctx.state(|s| s.notifications.clone()),
        })
    }

    /// Pause before the next day's sweep (a running sweep finishes).
    #[signal(name = "pause")]
    pub fn pause(&mut self, ctx: &mut SyncWorkflowContext<Self>, reason: String) {
        if self.hold.is_held() {
            return;
        }
        self.hold = Hold::Paused {
            resume_to: self.phase,
        };
        if !ctx.is_replaying() {
            tracing::warn!(month = %self.input.month, reason = %reason, days_done = self.days.len(), "month PAUSED by an operator");
        }
        self.phase = MonthPhase::Paused;
        if self.input.settings.search_attributes {
            ctx.upsert_search_attributes([search::PHASE.value_set(self.phase.as_str().to_owned())]);
        }
        ctx.set_current_details(web_ui::month_details(&self.snapshot()));
    }

    /// Resume a paused or blocked run (a blocked step is tried again).
    #[signal(name = "resume")]
    pub fn resume(&mut self, ctx: &mut SyncWorkflowContext<Self>, reason: String) {
        let held = std::mem::replace(&mut self.hold, Hold::Free);
        let resume_to = match &held {
            Hold::Free => return,
            Hold::Paused { resume_to } | Hold::Blocked { resume_to, .. } => *resume_to,
        };
        if !ctx.is_replaying() {
            tracing::warn!(
                month = %self.input.month,
                reason = %reason,
                was = self.phase.as_str(),
                blocked_by = held.blocked_reason().unwrap_or_default(),
                to = resume_to.as_str(),
                "month resumed by an operator"
            );
        }
        self.phase = resume_to;
        if self.input.settings.search_attributes {
            ctx.upsert_search_attributes([search::PHASE.value_set(self.phase.as_str().to_owned())]);
        }
        ctx.set_current_details(web_ui::month_details(&self.snapshot()));
    }

    /// Where the month stands.
    #[query(name = "progress")]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> MonthProgress {
        self.snapshot()
    }
}

impl MonthlyQualificationWorkflow {
    /// Where the month stands (the `progress` query, the Web UI's current details).
    fn snapshot(&self) -> MonthProgress {
        MonthProgress {
            month: self.input.month,
            phase: self.phase,
            blocked_reason: self.hold.blocked_reason(),
            days_total: self.input.month.num_days(),
            days_done: u32::try_from(self.days.len()).unwrap_or(u32::MAX),
            sweeping: self.sweeping,
            next_check_at: self.next_check_at,
            days: self.days.clone(),
            qualification: self.qualification.clone(),
            fanout: self.fanout.clone(),
            notifications: self.notifications.clone(),
        }
    }
}

/// Starts one SMS workflow per qualified customer, a page per activity. The workflows are started
/// by the activity through the client (not as children): no per-child events in this history, no
/// parent lock contention, and the id `sms/YYYY-MM/<customer>` with reuse rejected makes a
/// retried, replayed or reset fan-out start nothing twice.
async fn fan_out(
    ctx: &WorkflowContext<MonthlyQualificationWorkflow>,
    month: YearMonth,
    settings: &MonthSettings,
    run: &RunRef,
) -> WorkflowResult<()> {
    let mut after: Option<CustomerId> = None;
    loop {
        let input = StartNotificationsInput {
            month,
            after: after.clone(),
            limit: settings.fanout_page.max(1),
            settings: settings.sms.clone(),
            task_queue: ctx.task_queue().to_owned(),
            run: run.clone(),
        };
        let page = execute_or_block(ctx, StartNotifications, input, fanout_options()).await?;
        let done = page.done;
        after = page.last.clone();
        ctx.state_mut(|s| {
            s.fanout.seen += page.seen;
            s.fanout.started += page.started;
            s.fanout.already_started += page.already_started;
            s.fanout.last = page.last;
            s.fanout.done = done;
        });
        show(ctx);
        if done || after.is_none() {
            return Ok(());
        }
    }
}

/// Re-reads the notification counts from Postgres until every notification is final. The counts
/// come from the database, not from signals: no SMS workflow reports to this run.
async fn follow_notifications(
    ctx: &WorkflowContext<MonthlyQualificationWorkflow>,
    month: YearMonth,
    settings: &MonthSettings,
) -> WorkflowResult<()> {
    loop {
        let counts = ctx
            .execute_local_activity(
                CountNotifications,
                CountNotificationsInput { month },
                count_options(),
            )
            .await?;
        let finished = counts.in_flight() == 0 && counts.total >= counts.qualified;
        ctx.state_mut(|s| s.notifications = Some(counts));
        show(ctx);
        if finished {
            return Ok(());
        }
        ctx.timer(
            TimerOptions::builder(Duration::from_secs(settings.notification_poll_secs.max(1)))
                .summary(web_ui::notification_count_timer(month))
                .build(),
        )
        .await;
    }
}

fn fanout_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60 * 60))
        .heartbeat_timeout(Duration::from_secs(60))
        .summary("start SMS workflows".to_owned())
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(2))
                .maximum_interval(Duration::from_secs(60))
                .non_retryable_error_types([ERR_INVALID_INPUT])
                .build(),
        )
        .build()
}

fn count_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .maximum_interval(Duration::from_secs(60))
                .build(),
        )
        .build()
}

fn set_phase(ctx: &WorkflowContext<MonthlyQualificationWorkflow>, phase: MonthPhase) {
    let changed = ctx.state_mut(|s| {
        let changed = s.phase != phase;
        s.phase = phase;
        changed && s.input.settings.search_attributes
    });
    if changed {
        ctx.upsert_search_attributes([search::PHASE.value_set(phase.as_str().to_owned())]);
    }
    show(ctx);
}

/// Publishes the Web UI's current details (answered from state: no history event).
fn show(ctx: &WorkflowContext<MonthlyQualificationWorkflow>) {
    let details = ctx.state(|s| web_ui::month_details(&s.snapshot()));
    ctx.set_current_details(details);
}

/// Runs an activity; when it fails for good, blocks the month until an operator resumes it and
/// then runs it again (activities are idempotent, so the retry redoes only what is missing).
async fn execute_or_block<AD>(
    ctx: &WorkflowContext<MonthlyQualificationWorkflow>,
    activity: AD,
    input: AD::Input,
    options: ActivityOptions,
) -> WorkflowResult<AD::Output>
where
    AD: temporalio_workflow::common::ActivityDefinition + Clone,
    AD::Input: Clone,
{
    loop {
        match ctx
            .execute_activity(activity.clone(), input.clone(), options.clone())
            .await
        {
            Ok(output) => return Ok(output),
            Err(ActivityExecutionError::Cancelled(_)) => {
                return Err(WorkflowTermination::cancelled());
            }
            Err(err) => {
                let reason = match err.cause() {
                    Some(cause) => format!("{}: {cause}", activity.name()),
                    None => format!("{}: {err}", activity.name()),
                };
                // One line when it happens, not again on every replay.
                if !ctx.is_replaying() {
                    let (month, days_done) = ctx.state(|s| (s.input.month, s.days.len()));
                    tracing::error!(
                        %month,
                        days_done,
                        step = activity.name(),
                        reason = %reason,
                        "month BLOCKED: a step failed for good; fix the cause, then `pcnctl month resume {month} --reason …`"
                    );
                }
                let publish = ctx.state_mut(|s| {
                    // A pause that came while the step ran keeps the phase it would return to.
                    let resume_to = match &s.hold {
                        Hold::Paused { resume_to } | Hold::Blocked { resume_to, .. } => *resume_to,
                        Hold::Free => s.phase,
                    };
                    s.hold = Hold::Blocked { resume_to, reason };
                    s.phase = MonthPhase::Blocked;
                    s.input.settings.search_attributes
                });
                if publish {
                    ctx.upsert_search_attributes([
                        search::PHASE.value_set(MonthPhase::Blocked.as_str().to_owned())
                    ]);
                }
                show(ctx);
                ctx.wait_condition(|s| !s.hold.is_held()).await?;
            }
        }
    }
}

fn sweep_options(settings: &MonthSettings) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(4 * 60 * 60))
        .heartbeat_timeout(Duration::from_secs(
            settings.sweep_heartbeat_timeout_secs.max(1),
        ))
        .summary("daily balance sweep".to_owned())
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(2))
                .maximum_interval(Duration::from_secs(60))
                .non_retryable_error_types([ERR_BANK_AUTH, ERR_INVALID_INPUT])
                .build(),
        )
        .build()
}

fn qualify_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(15 * 60))
        .summary("month-end qualification".to_owned())
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(2))
                .maximum_interval(Duration::from_secs(60))
                .non_retryable_error_types([ERR_INVALID_INPUT])
                .build(),
        )
        .build()
}

/// Started by the monthly Temporal Schedule (whose workflow ids carry a timestamp): starts the
/// current month's run under its business id `qualification/YYYY-MM`, abandoning it so it
/// outlives this short workflow. A month already started (by an operator, or a schedule
/// re-trigger) is left alone.
#[workflow]
#[derive(Default)]
pub struct ScheduledMonthStart;

#[workflow_methods]
impl ScheduledMonthStart {
    /// Starts the month the schedule fired in (Asia/Jerusalem) and returns its workflow id.
    #[run(name = "ScheduledMonthStart")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        settings: MonthSettings,
    ) -> WorkflowResult<String> {
        let month = YearMonth::of(BusinessDate::of_instant(workflow_now(ctx)));
        let id = workflow_id(month);
        // Runs started before this patch replay without the Web UI texts.
        let texts = ctx.patched(PATCH_MONTH_DETAILS).then(|| {
            (
                run_summary(month, settings.threshold),
                run_details(ctx.info().namespace(), month),
            )
        });
        let (summary, details) = texts.unzip();
        let options = ChildWorkflowOptions::builder()
            .workflow_id(id.clone())
            .task_queue(TASK_QUEUE.to_owned())
            .maybe_static_summary(summary)
            .maybe_static_details(details)
            .parent_close_policy(ParentClosePolicy::Abandon)
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .maybe_search_attributes(settings.search_attributes.then(|| {
                SearchAttributes::new([
                    search::MONTH.value_set(month.to_string()),
                    search::PHASE.value_set(MonthPhase::Monitoring.as_str().to_owned()),
                ])
            }))
            .build();
        let input = MonthInput { month, settings };
        match ctx
            .start_child_workflow(MonthlyQualificationWorkflow::run, input, options)
            .await
        {
            Ok(_) => Ok(id),
            Err(ChildWorkflowStartError::StartFailed {
                cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
                ..
            }) => Ok(id),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_web_ui_texts_name_the_month_and_link_to_its_sms_runs() {
        let month = YearMonth::parse("2026-11").unwrap();
        assert_eq!(
            run_summary(month, Nis::from_whole(15_000)),
            "2026-11 · threshold 15000.00 NIS on every day"
        );
        let details = run_details("bank prod", month);
        assert!(details.contains(
            "(/namespaces/bank%20prod/workflows?query=PcnMonth%3D%222026-11%22%20AND%20\
             WorkflowType%3D%22SmsNotificationWorkflow%22)"
        ));
    }
}
