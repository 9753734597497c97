//! `SmsNotificationWorkflow`: one run per qualified customer and month, id
//! `sms/YYYY-MM/<customer>` — the business key that makes a second start (a retried or reset
//! fan-out) impossible.
//!
//! prepare → wait for the send window → submit → wait for a delivery signal (or poll every 2 h)
//! up to 72 h → on a retryable failure wait 6 h and try again, 3 attempts in all → DELIVERED /
//! FAILED / UNDELIVERABLE / OPTED_OUT / CANCELLED.
//!
//! Every history event costs server time at 100,000 messages a month, so the happy path is two
//! local activities (submit, record) around one timer and one signal: 13 events. Progress
//! reports (QUEUED/SENT) are stored by the webhook but never signalled; the poll timer is left to
//! lapse rather than cancelled when the run completes anyway.
//!
//! Submission is at most once per attempt against a carrier that deduplicates nothing: the
//! attempt's reference `sms/YYYY-MM/<customer>#N` keys the `sms_attempts` row, an attempt with a
//! carrier id is never submitted again (a reset of this run to any point sends nothing twice),
//! and a submission whose outcome is unknown is **in doubt**: `SubmitSms` answers `InDoubt` and
//! this run waits — for the activity's recheck time, or for a delivery signal naming the attempt —
//! and asks again, passing the carrier ids such signals named as evidence. The activity adopts the
//! carrier's id when the evidence holds, and sends again under the same reference only after the
//! reconciliation period (`reconcile_secs`, default 10 min) passed without any. Only a failure the
//! carrier reported moves to the next attempt.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use temporalio_workflow::{
    CancellableFuture, LocalActivityOptions, RetryPolicy, SyncWorkflowContext, TimerOptions,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult, select,
    workflow, workflow_methods,
};

use crate::contracts::{
    DeliveryReport, NotificationKey, PollDelivery, PollInput, PrepareInput, PrepareNotification,
    Prepared, RecordInput, RecordNotification, RunRef, SubmitInput, SubmitSms,
};
use crate::delivery::notification_workflow_id;
use crate::domain::{CustomerId, YearMonth};
use crate::{search, web_ui, workflow_now};

mod machine;
mod reports;

pub use machine::{
    AttemptView, Ending, Machine, SmsOutcome, SmsStatus, Step, Wait, classify_failure,
};

/// The workflow id of a customer-month.
pub fn workflow_id(month: YearMonth, customer: &CustomerId) -> String {
    notification_workflow_id(month, customer)
}

pub use crate::contracts::SmsSettings;
pub use crate::vocabulary::NotificationState;

/// Input of an SMS workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsInput {
    /// The month the customer qualified in.
    pub month: YearMonth,
    /// The customer.
    pub customer: CustomerId,
    /// Tunables.
    #[serde(default)]
    pub settings: SmsSettings,
    /// Number of the first attempt this run sends: 1, or for a manual retry (the control API's
    /// `RetryNotification`) the attempt after the last one, with `settings.max_attempts` 1.
    #[serde(default = "first_attempt_default")]
    pub first_attempt: u32,
}

fn first_attempt_default() -> u32 {
    1
}

/// See the module docs. The notification's state is the [`Machine`]'s; the run waits and does
/// the IO.
#[workflow]
pub struct SmsNotificationWorkflow {
    input: SmsInput,
    machine: Machine,
}

#[workflow_methods]
impl SmsNotificationWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: SmsInput) -> Self {
        let machine = Machine::new(input.first_attempt, input.settings.max_attempts);
        Self { input, machine }
    }

    /// Sends the message and follows it to a final state: each step is the [`Machine`]'s answer
    /// to what the last one brought.
    #[run(name = "SmsNotificationWorkflow")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<SmsOutcome> {
        let (input, settings) = ctx.state(|s| (s.input.clone(), s.input.settings.clone()));
        let key = NotificationKey {
            month: input.month,
            customer: input.customer.clone(),
        };
        let run = RunRef {
            workflow_id: ctx.workflow_id().to_owned(),
            run_id: ctx.run_id().to_owned(),
        };
        loop {
            // 1. The send window (the customer is looked at while it is closed), a cancel.
            let prepared = wait_for_window(ctx, &key, &settings).await?;
            if let Step::Finish(state, ending) = ctx.state(|s| s.machine.on_prepared(&prepared)) {
                return finish(ctx, &run, state, ending).await;
            }

            // 2. Submit (idempotent per attempt reference).
            let now = workflow_now(ctx);
            let (attempt, evidence) = ctx.state(|s| (s.machine.attempt(), s.machine.evidence()));
            let submitted = ctx
                .execute_local_activity(
                    SubmitSms,
                    SubmitInput {
                        key: key.clone(),
                        attempt,
                        reported_ids: evidence,
                        reconcile_secs: settings.reconcile_secs,
                        run: Some(run.clone()),
                    },
                    submit_options(submit_budget(&settings, now)),
                )
                .await
                .ok();
            let step = ctx.state_mut(|s| s.machine.on_submission(submitted, now));
            show(ctx);
            let step = match step {
                // 3. Follow a submitted attempt to its outcome: a signal, or a poll every poll
                // interval, up to the confirmation timeout.
                Step::Follow { carrier_message_id } => {
                    let waited =
                        wait_for_outcome(ctx, &key, attempt, &carrier_message_id, &settings).await;
                    ctx.state_mut(|s| s.machine.on_wait(waited))
                }
                step => step,
            };

            // 4. End, or wait and go round again.
            match step {
                Step::Finish(state, ending) => return finish(ctx, &run, state, ending).await,
                Step::Defer { secs } => defer(ctx, secs).await,
                Step::AwaitEvidence { secs } => await_evidence(ctx, attempt, secs).await,
                Step::Retry(ending) => {
                    retry_wait(ctx, &run, &key, &settings, &ending).await?;
                    ctx.state_mut(|s| s.machine.after_retry_wait(&ending));
                }
                Step::Submit | Step::Follow { .. } => {}
            }
        }
    }

    /// A final delivery report of an attempt (from the carrier webhook). Duplicates, reports of an
    /// earlier attempt, progress reports, reports naming another carrier id than the attempt's
    /// and anything after the outcome change nothing.
    #[signal(name = "delivery")]
    pub fn delivery(&mut self, _ctx: &mut SyncWorkflowContext<Self>, report: DeliveryReport) {
        self.machine.on_report(report);
    }

    /// Cancel the notification (an operator): nothing more is sent; a message already with the
    /// carrier is no longer followed.
    #[signal(name = "cancel")]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, reason: String) {
        self.machine.on_cancel(reason);
    }

    /// Where the notification stands.
    #[query(name = "status")]
    pub fn status(&self, _ctx: &WorkflowContextView) -> SmsStatus {
        self.machine.status()
    }
}

/// How long a submission may keep trying: until the window closes, at most 30 min.
fn submit_budget(settings: &SmsSettings, now: DateTime<Utc>) -> Duration {
    settings
        .window
        .closes_at(now)
        .map(|close| (close - now).to_std().unwrap_or_default())
        .unwrap_or(Duration::from_secs(30 * 60))
        .clamp(Duration::from_secs(1), Duration::from_secs(30 * 60))
}

/// Waits until the send window is open (or a cancel arrives). While it is closed the
/// notification is prepared — an opted-out customer ends here without waiting.
async fn wait_for_window(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    key: &NotificationKey,
    settings: &SmsSettings,
) -> WorkflowResult<Prepared> {
    loop {
        let now = workflow_now(ctx);
        if settings.window.is_open(now) {
            ctx.state_mut(|s| s.machine.next_wake_at = None);
            return Ok(Prepared::Ready { segments: 0 });
        }
        let prepared = ctx
            .execute_local_activity(
                PrepareNotification,
                PrepareInput {
                    key: key.clone(),
                    state: NotificationState::WaitingWindow,
                },
                record_options(),
            )
            .await?;
        if !matches!(prepared, Prepared::Ready { .. }) {
            return Ok(prepared);
        }
        let opens = settings.window.next_open(now);
        set_state(ctx, NotificationState::WaitingWindow, Some(opens));
        let mut timer = std::pin::pin!(
            ctx.timer(
                TimerOptions::builder((opens - now).to_std().unwrap_or_default())
                    .summary(web_ui::window_timer(opens))
                    .build()
            )
        );
        select! {
            _ = timer.as_mut() => {}
            _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| s.machine.cancel_reason.is_some()) => {
                timer.cancel();
                return Ok(prepared);
            }
        }
    }
}

/// Waits for the attempt's final report: a signal, or the answer of a poll.
async fn wait_for_outcome(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    key: &NotificationKey,
    attempt: u32,
    carrier_message_id: &str,
    settings: &SmsSettings,
) -> Wait {
    let deadline =
        workflow_now(ctx) + chrono::Duration::seconds(secs_i64(settings.confirmation_timeout_secs));
    let poll = chrono::Duration::seconds(secs_i64(settings.poll_interval_secs.max(1)));
    loop {
        if let Some(report) = ctx.state(|s| s.machine.report.clone()) {
            return Wait::Report(report);
        }
        if ctx.state(|s| s.machine.cancel_reason.is_some()) {
            return Wait::Cancelled;
        }
        let now = workflow_now(ctx);
        if now >= deadline {
            return Wait::NoConfirmation;
        }
        let wake = (now + poll).min(deadline);
        ctx.state_mut(|s| s.machine.next_wake_at = Some(wake));
        let mut timer = std::pin::pin!(
            ctx.timer(
                TimerOptions::builder((wake - now).to_std().unwrap_or_default())
                    .summary(web_ui::report_timer(attempt))
                    .build()
            )
        );
        let mut fired = false;
        select! {
            _ = timer.as_mut() => { fired = true; }
            _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| {
                s.machine.report.is_some() || s.machine.cancel_reason.is_some()
            }) => {}
        }
        if !fired {
            // A report or a cancel arrived. The poll timer is left to lapse: cancelling it in the
            // same workflow task as the next local activity is refused by the time-skipping test
            // server ("invalid history builder state for action"), and when the run ends now it
            // costs nothing; when a retry follows it fires once, unawaited, during the 6 h wait.
            continue;
        }
        if wake >= deadline {
            continue;
        }
        let polled = ctx
            .execute_local_activity(
                PollDelivery,
                PollInput {
                    reference: key.attempt(attempt),
                    carrier_message_id: carrier_message_id.to_owned(),
                },
                poll_options(),
            )
            .await;
        if let Ok(Some(report)) = polled
            && report.status.is_final()
        {
            ctx.state_mut(|s| {
                if s.machine.report.is_none() {
                    s.machine.report = Some(report);
                }
            });
        }
    }
}

/// Waits while `attempt` is in doubt: until `recheck_secs` passed, a new final report naming the
/// attempt arrived (evidence to pass to the next `SubmitSms`), or a cancel. The timer is left to
/// lapse when something else woke the run (see `wait_for_outcome`).
async fn await_evidence(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    attempt: u32,
    recheck_secs: u64,
) {
    let reports_of = move |s: &SmsNotificationWorkflow| s.machine.evidence_count(attempt);
    let known = ctx.state(reports_of);
    let now = workflow_now(ctx);
    let wait = Duration::from_secs(recheck_secs.max(1));
    ctx.state_mut(|s| {
        s.machine.next_wake_at = Some(now + chrono::Duration::seconds(secs_i64(wait.as_secs())));
    });
    let mut timer = std::pin::pin!(
        ctx.timer(
            TimerOptions::builder(wait)
                .summary(web_ui::in_doubt_timer(attempt, wait.as_secs()))
                .build()
        )
    );
    select! {
        _ = timer.as_mut() => {}
        _ = ctx.wait_condition(move |s: &SmsNotificationWorkflow| {
            s.machine.cancel_reason.is_some() || reports_of(s) > known
        }) => {}
    }
}

/// Waits `retry_secs` before asking the gateway again (or until cancelled); the timer is left to
/// lapse when a cancel wakes the run.
async fn defer(ctx: &WorkflowContext<SmsNotificationWorkflow>, retry_secs: u64) {
    let now = workflow_now(ctx);
    let wait = Duration::from_secs(retry_secs.max(1));
    ctx.state_mut(|s| {
        s.machine.next_wake_at = Some(now + chrono::Duration::seconds(secs_i64(wait.as_secs())));
    });
    let mut timer = std::pin::pin!(
        ctx.timer(
            TimerOptions::builder(wait)
                .summary(web_ui::deferred_timer(wait.as_secs()))
                .build()
        )
    );
    select! {
        _ = timer.as_mut() => {}
        _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| s.machine.cancel_reason.is_some()) => {}
    }
}

/// Records the failed attempt, waits the retry delay (or until cancelled).
async fn retry_wait(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    run: &RunRef,
    key: &NotificationKey,
    settings: &SmsSettings,
    ending: &Ending,
) -> WorkflowResult<()> {
    let now = workflow_now(ctx);
    let wake = now + chrono::Duration::seconds(secs_i64(settings.retry_delay_secs));
    let record = RecordInput {
        key: key.clone(),
        state: NotificationState::RetryWait,
        attempt: ending.attempt,
        error_code: ending.code.clone(),
        category: ending.category,
        detail: None,
        run: run.clone(),
    };
    ctx.execute_local_activity(RecordNotification, record, record_options())
        .await?;
    set_state(ctx, NotificationState::RetryWait, Some(wake));
    let mut timer = std::pin::pin!(
        ctx.timer(
            TimerOptions::builder((wake - now).to_std().unwrap_or_default())
                .summary(web_ui::retry_timer(wake))
                .build()
        )
    );
    select! {
        _ = timer.as_mut() => {}
        _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| s.machine.cancel_reason.is_some()) => {
            timer.cancel();
        }
    }
    Ok(())
}

/// Records the final state (Postgres row + audit entry), publishes it, ends the run.
async fn finish(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    run: &RunRef,
    state: NotificationState,
    ending: Ending,
) -> WorkflowResult<SmsOutcome> {
    let key = ctx.state(|s| NotificationKey {
        month: s.input.month,
        customer: s.input.customer.clone(),
    });
    let detail = (ending.detail.clone()).or_else(|| ctx.state(|s| s.machine.cancel_reason.clone()));
    let record = RecordInput {
        key,
        state,
        attempt: ending.attempt,
        error_code: ending.code.clone(),
        category: ending.category,
        detail,
        run: run.clone(),
    };
    // Recorded even when the run is being cancelled: the final state must reach Postgres.
    let options = record_options_with(Some(WorkflowCancellationToken::new()));
    ctx.execute_local_activity(RecordNotification, record, options)
        .await?;
    let outcome = ctx.state_mut(|s| s.machine.finished(state, &ending));
    set_state(ctx, state, None);
    Ok(outcome)
}

fn set_state(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    state: NotificationState,
    next_wake_at: Option<DateTime<Utc>>,
) {
    let publish = ctx.state_mut(|s| {
        let changed = s.machine.state != state;
        s.machine.state = state;
        s.machine.next_wake_at = next_wake_at;
        changed && s.input.settings.search_attributes
    });
    if publish {
        ctx.upsert_search_attributes([
            search::NOTIFICATION_STATUS.value_set(state.as_str().to_owned())
        ]);
    }
    show(ctx);
}

/// Publishes the Web UI's current details (answered from state: no history event).
fn show(ctx: &WorkflowContext<SmsNotificationWorkflow>) {
    let details = ctx.state(|s| web_ui::sms_details(&s.machine.status(), s.machine.last_attempt()));
    ctx.set_current_details(details);
}

fn secs_i64(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 1_000_000)
}

/// Submission: quick retries while the budget lasts (the window's remaining time, at most 30 min).
fn submit_options(budget: Duration) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .schedule_to_close_timeout(budget)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .build(),
        )
        .summary("submit SMS".to_owned())
        .build()
}

/// Postgres writes: retried until they succeed (a database outage delays, never loses).
fn record_options() -> LocalActivityOptions {
    record_options_with(None)
}

fn record_options_with(
    cancellation_token: Option<WorkflowCancellationToken>,
) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_secs(1))
                .backoff_coefficient(2.0)
                .maximum_interval(Duration::from_secs(60))
                .build(),
        )
        .maybe_cancellation_token(cancellation_token)
        .build()
}

/// A poll that fails is simply not an answer: the next poll (or a callback) will do.
fn poll_options() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(RetryPolicy::builder().maximum_attempts(2).build())
        .build()
}
