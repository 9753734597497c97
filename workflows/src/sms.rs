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
    CancellableFuture, LocalActivityOptions, RetryPolicy, SyncWorkflowContext,
    WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult, select,
    workflow, workflow_methods,
};

use crate::contracts::{
    AttemptOutcome, DeliveryReport, NotificationKey, PollDelivery, PollInput, PrepareInput,
    PrepareNotification, Prepared, RecordInput, RecordNotification, RunRef, SubmitInput,
    SubmitResult, SubmitSms,
};
use crate::delivery::{DeliveryStatus, FailureCategory, notification_workflow_id};
use crate::domain::{CustomerId, YearMonth};
use crate::{search, workflow_now};

mod reports;

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

/// One attempt, as the `status` query shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptView {
    /// Attempt number.
    pub attempt: u32,
    /// The carrier's id, once submitted.
    pub carrier_message_id: Option<String>,
    /// Workflow time at which the carrier took (or refused) the attempt.
    #[serde(default)]
    pub submitted_at: Option<DateTime<Utc>>,
    /// How it ended, once it did.
    pub outcome: Option<AttemptOutcome>,
    /// The carrier's error code.
    pub error_code: Option<String>,
}

/// Answer of the `status` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsStatus {
    /// Current state.
    pub state: NotificationState,
    /// Current attempt (0 before the first submission).
    pub attempt: u32,
    /// Every attempt so far.
    pub attempts: Vec<AttemptView>,
    /// When the run next wakes up by itself (window opening, poll, retry, deadline).
    pub next_wake_at: Option<DateTime<Utc>>,
    /// Why it did not end DELIVERED.
    pub failure_category: Option<FailureCategory>,
    /// Delivery reports received that changed nothing (duplicates, stale or progress reports,
    /// reports naming another carrier id than the attempt's).
    pub ignored_reports: u32,
    /// The attempt whose submission is in doubt (the carrier may have it; evidence is awaited).
    #[serde(default)]
    pub in_doubt: Option<u32>,
}

/// Result of an SMS run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsOutcome {
    /// Final state.
    pub state: NotificationState,
    /// Attempts submitted.
    pub attempts: u32,
    /// Why it did not end DELIVERED.
    pub failure_category: Option<FailureCategory>,
}

/// See the module docs.
#[workflow]
pub struct SmsNotificationWorkflow {
    input: SmsInput,
    state: NotificationState,
    attempts: Vec<AttemptView>,
    /// The final report of the current attempt, from a signal or a poll.
    report: Option<DeliveryReport>,
    /// Final reports that arrived before their attempt was recorded as submitted (a callback can
    /// overtake the submission's own result, e.g. when a worker died after the carrier took the
    /// message): applied when the attempt is.
    early_reports: Vec<DeliveryReport>,
    cancel_reason: Option<String>,
    next_wake_at: Option<DateTime<Utc>>,
    failure_category: Option<FailureCategory>,
    ignored_reports: u32,
    in_doubt: Option<u32>,
}

/// How waiting on one attempt ended.
enum Wait {
    Report(DeliveryReport),
    NoConfirmation,
    Cancelled,
}

#[workflow_methods]
impl SmsNotificationWorkflow {
    #[init]
    fn new(_ctx: &WorkflowContextView, input: SmsInput) -> Self {
        Self {
            input,
            state: NotificationState::Pending,
            attempts: Vec::new(),
            report: None,
            early_reports: Vec::new(),
            cancel_reason: None,
            next_wake_at: None,
            failure_category: None,
            ignored_reports: 0,
            in_doubt: None,
        }
    }

    /// Sends the message and follows it to a final state.
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
        let max_attempts = settings.max_attempts.max(1);
        let first_attempt = input.first_attempt.max(1);
        // The last attempt number this run may send.
        let last_attempt = first_attempt.saturating_add(max_attempts - 1);
        let mut attempt = first_attempt;
        // Submission tries of the current attempt that got no answer from the carrier.
        let mut unanswered = 0;
        loop {
            // 1. The send window.
            match wait_for_window(ctx, &key, &settings).await? {
                Prepared::Ready { .. } => {}
                Prepared::OptedOut => {
                    return finish(ctx, &run, NotificationState::OptedOut, Ending::default()).await;
                }
                Prepared::UnknownCustomer => {
                    let detail = Some("customer not found".to_owned());
                    return finish(ctx, &run, NotificationState::Failed, Ending::detail(detail))
                        .await;
                }
            }
            if ctx.state(|s| s.cancel_reason.is_some()) {
                return finish(ctx, &run, NotificationState::Cancelled, Ending::default()).await;
            }

            // 2. Submit (idempotent per attempt reference).
            let now = workflow_now(ctx);
            let budget = settings
                .window
                .closes_at(now)
                .map(|close| (close - now).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_secs(30 * 60))
                .clamp(Duration::from_secs(1), Duration::from_secs(30 * 60));
            let reported_ids = ctx.state(|s| {
                s.early_reports
                    .iter()
                    .filter(|r| r.attempt == attempt)
                    .map(|r| r.carrier_message_id.clone())
                    .collect()
            });
            let submitted = ctx
                .execute_local_activity(
                    SubmitSms,
                    SubmitInput {
                        key: key.clone(),
                        attempt,
                        reported_ids,
                        reconcile_secs: settings.reconcile_secs,
                        run: Some(run.clone()),
                    },
                    submit_options(budget),
                )
                .await;
            if !matches!(
                submitted,
                Ok(SubmitResult::InDoubt { .. } | SubmitResult::Deferred { .. })
            ) {
                ctx.state_mut(|s| s.in_doubt = None);
            }
            let (outcome, code, category) = match submitted {
                Ok(SubmitResult::Deferred { retry_secs }) => {
                    // Nothing was sent: the worker's queue was full or the carrier's rate used
                    // up. Come back after a durable timer (or a cancel).
                    defer(ctx, retry_secs).await;
                    continue;
                }
                Ok(SubmitResult::InDoubt { recheck_secs }) => {
                    // The carrier may have this attempt: never send it blindly again. Wait for
                    // the recheck time or a delivery signal naming it, then ask again (the
                    // window and a cancel are looked at first).
                    await_evidence(ctx, attempt, recheck_secs).await;
                    continue;
                }
                Ok(SubmitResult::Submitted {
                    carrier_message_id, ..
                }) => {
                    ctx.state_mut(|s| {
                        s.state = NotificationState::Submitted;
                        s.report = s
                            .early_reports
                            .iter()
                            .find(|r| {
                                r.attempt == attempt && r.carrier_message_id == carrier_message_id
                            })
                            .cloned();
                        s.early_reports.retain(|r| r.attempt > attempt);
                        s.attempts.push(AttemptView {
                            attempt,
                            carrier_message_id: Some(carrier_message_id.clone()),
                            submitted_at: Some(now),
                            outcome: None,
                            error_code: None,
                        });
                    });

                    // 3. Wait for the outcome: a signal, or a poll every poll interval, up to the
                    // deadline.
                    let waited =
                        wait_for_outcome(ctx, &key, attempt, &carrier_message_id, &settings).await;
                    match waited {
                        Wait::Cancelled => {
                            let ended = Some((attempt, AttemptOutcome::Cancelled));
                            return finish(
                                ctx,
                                &run,
                                NotificationState::Cancelled,
                                Ending::attempt(ended, None, None),
                            )
                            .await;
                        }
                        Wait::NoConfirmation => {
                            let ended = Some((attempt, AttemptOutcome::NoConfirmation));
                            return finish(
                                ctx,
                                &run,
                                NotificationState::Undeliverable,
                                Ending::attempt(ended, None, Some(FailureCategory::NoConfirmation)),
                            )
                            .await;
                        }
                        Wait::Report(report) => match report.status {
                            DeliveryStatus::Delivered => {
                                let ended = Some((attempt, AttemptOutcome::Delivered));
                                return finish(
                                    ctx,
                                    &run,
                                    NotificationState::Delivered,
                                    Ending::attempt(ended, None, None),
                                )
                                .await;
                            }
                            status => {
                                let category =
                                    classify_failure(status, report.error_code.as_deref());
                                let outcome = if status == DeliveryStatus::Undeliverable {
                                    AttemptOutcome::Undeliverable
                                } else {
                                    AttemptOutcome::Failed
                                };
                                (outcome, report.error_code, category)
                            }
                        },
                    }
                }
                Ok(SubmitResult::OptedOut) => {
                    return finish(ctx, &run, NotificationState::OptedOut, Ending::default()).await;
                }
                Ok(SubmitResult::UnknownCustomer) => {
                    let detail = Some("customer not found".to_owned());
                    return finish(ctx, &run, NotificationState::Failed, Ending::detail(detail))
                        .await;
                }
                Ok(SubmitResult::Rejected { category, code }) => {
                    ctx.state_mut(|s| {
                        s.attempts.push(AttemptView {
                            attempt,
                            carrier_message_id: None,
                            submitted_at: Some(now),
                            outcome: None,
                            error_code: None,
                        })
                    });
                    (AttemptOutcome::Rejected, Some(code), category)
                }
                Err(_) => {
                    // The carrier certainly did not take it (refused, unreachable) for the whole
                    // budget (the window closing, 30 min at most): the *same* attempt is tried
                    // again after the retry delay.
                    unanswered += 1;
                    if unanswered >= max_attempts {
                        return finish(
                            ctx,
                            &run,
                            NotificationState::Failed,
                            Ending::attempt(None, None, Some(FailureCategory::NetworkError)),
                        )
                        .await;
                    }
                    retry_wait(
                        ctx,
                        &run,
                        &key,
                        &settings,
                        None,
                        None,
                        FailureCategory::NetworkError,
                    )
                    .await?;
                    continue;
                }
            };
            ctx.state_mut(|s| {
                if let Some(view) = s.attempts.last_mut() {
                    view.outcome = Some(outcome);
                    view.error_code = code.clone();
                }
            });
            let ended = Some((attempt, outcome));
            if category == FailureCategory::OptedOut {
                // The carrier says the recipient unsubscribed (Twilio 21610): the customer is
                // opted out when this is recorded, and nothing is ever retried.
                return finish(
                    ctx,
                    &run,
                    NotificationState::OptedOut,
                    Ending::attempt(ended, code, Some(category)),
                )
                .await;
            }
            if !category.is_retryable() {
                return finish(
                    ctx,
                    &run,
                    NotificationState::Undeliverable,
                    Ending::attempt(ended, code, Some(category)),
                )
                .await;
            }
            if attempt >= last_attempt {
                return finish(
                    ctx,
                    &run,
                    NotificationState::Failed,
                    Ending::attempt(ended, code, Some(category)),
                )
                .await;
            }
            retry_wait(ctx, &run, &key, &settings, ended, code, category).await?;
            attempt += 1;
            unanswered = 0;
        }
    }

    /// A final delivery report of an attempt (from the carrier webhook). Duplicates, reports of an
    /// earlier attempt, progress reports, reports naming another carrier id than the attempt's
    /// and anything after the outcome change nothing.
    #[signal(name = "delivery")]
    pub fn delivery(&mut self, _ctx: &mut SyncWorkflowContext<Self>, report: DeliveryReport) {
        let seen = reports::Seen {
            state: self.state,
            attempts: &self.attempts,
            has_report: self.report.is_some(),
            early: &self.early_reports,
        };
        match reports::on_report(&seen, &report) {
            reports::Effect::Apply => self.report = Some(report),
            reports::Effect::KeepEarly => self.early_reports.push(report),
            reports::Effect::Ignore(_) => self.ignored_reports += 1,
        }
    }

    /// Cancel the notification (an operator): nothing more is sent; a message already with the
    /// carrier is no longer followed.
    #[signal(name = "cancel")]
    pub fn cancel(&mut self, _ctx: &mut SyncWorkflowContext<Self>, reason: String) {
        if !self.state.is_final() && self.cancel_reason.is_none() {
            self.cancel_reason = Some(reason);
        }
    }

    /// Where the notification stands.
    #[query(name = "status")]
    pub fn status(&self, _ctx: &WorkflowContextView) -> SmsStatus {
        SmsStatus {
            state: self.state,
            attempt: self.attempts.last().map_or(0, |a| a.attempt),
            attempts: self.attempts.clone(),
            next_wake_at: self.next_wake_at,
            failure_category: self.failure_category,
            ignored_reports: self.ignored_reports,
            in_doubt: self.in_doubt,
        }
    }
}

/// FAILED / UNDELIVERABLE plus a code → category. An UNDELIVERABLE without a known code is
/// permanent; a FAILED without one is worth another attempt.
pub fn classify_failure(status: DeliveryStatus, code: Option<&str>) -> FailureCategory {
    match FailureCategory::from_code(code) {
        FailureCategory::Unknown if status == DeliveryStatus::Undeliverable => {
            FailureCategory::Undeliverable
        }
        category => category,
    }
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
            ctx.state_mut(|s| s.next_wake_at = None);
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
        let mut timer = std::pin::pin!(ctx.timer((opens - now).to_std().unwrap_or_default()));
        select! {
            _ = timer.as_mut() => {}
            _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| s.cancel_reason.is_some()) => {
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
        if let Some(report) = ctx.state(|s| s.report.clone()) {
            return Wait::Report(report);
        }
        if ctx.state(|s| s.cancel_reason.is_some()) {
            return Wait::Cancelled;
        }
        let now = workflow_now(ctx);
        if now >= deadline {
            return Wait::NoConfirmation;
        }
        let wake = (now + poll).min(deadline);
        ctx.state_mut(|s| s.next_wake_at = Some(wake));
        let mut timer = std::pin::pin!(ctx.timer((wake - now).to_std().unwrap_or_default()));
        let mut fired = false;
        select! {
            _ = timer.as_mut() => { fired = true; }
            _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| {
                s.report.is_some() || s.cancel_reason.is_some()
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
                if s.report.is_none() {
                    s.report = Some(report);
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
    let reports_of = move |s: &SmsNotificationWorkflow| {
        s.early_reports
            .iter()
            .filter(|r| r.attempt == attempt)
            .count()
    };
    let known = ctx.state(reports_of);
    let now = workflow_now(ctx);
    let wait = Duration::from_secs(recheck_secs.max(1));
    ctx.state_mut(|s| {
        s.in_doubt = Some(attempt);
        s.next_wake_at = Some(now + chrono::Duration::seconds(secs_i64(wait.as_secs())));
    });
    let mut timer = std::pin::pin!(ctx.timer(wait));
    select! {
        _ = timer.as_mut() => {}
        _ = ctx.wait_condition(move |s: &SmsNotificationWorkflow| {
            s.cancel_reason.is_some() || reports_of(s) > known
        }) => {}
    }
}

/// Waits `retry_secs` before asking the gateway again (or until cancelled); the timer is left to
/// lapse when a cancel wakes the run.
async fn defer(ctx: &WorkflowContext<SmsNotificationWorkflow>, retry_secs: u64) {
    let now = workflow_now(ctx);
    let wait = Duration::from_secs(retry_secs.max(1));
    ctx.state_mut(|s| {
        s.next_wake_at = Some(now + chrono::Duration::seconds(secs_i64(wait.as_secs())));
    });
    let mut timer = std::pin::pin!(ctx.timer(wait));
    select! {
        _ = timer.as_mut() => {}
        _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| s.cancel_reason.is_some()) => {}
    }
}

/// Records the failed attempt, waits the retry delay (or until cancelled).
async fn retry_wait(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    run: &RunRef,
    key: &NotificationKey,
    settings: &SmsSettings,
    ended: Option<(u32, AttemptOutcome)>,
    code: Option<String>,
    category: FailureCategory,
) -> WorkflowResult<()> {
    let now = workflow_now(ctx);
    let wake = now + chrono::Duration::seconds(secs_i64(settings.retry_delay_secs));
    let record = RecordInput {
        key: key.clone(),
        state: NotificationState::RetryWait,
        attempt: ended,
        error_code: code,
        category: Some(category),
        detail: None,
        run: run.clone(),
    };
    ctx.execute_local_activity(RecordNotification, record, record_options())
        .await?;
    set_state(ctx, NotificationState::RetryWait, Some(wake));
    let mut timer = std::pin::pin!(ctx.timer((wake - now).to_std().unwrap_or_default()));
    select! {
        _ = timer.as_mut() => {}
        _ = ctx.wait_condition(|s: &SmsNotificationWorkflow| s.cancel_reason.is_some()) => {
            timer.cancel();
        }
    }
    Ok(())
}

/// How a notification ended, besides its state: the attempt that ended and why.
#[derive(Default)]
struct Ending {
    attempt: Option<(u32, AttemptOutcome)>,
    code: Option<String>,
    category: Option<FailureCategory>,
    detail: Option<String>,
}

impl Ending {
    fn attempt(
        attempt: Option<(u32, AttemptOutcome)>,
        code: Option<String>,
        category: Option<FailureCategory>,
    ) -> Self {
        Self {
            attempt,
            code,
            category,
            detail: None,
        }
    }

    fn detail(detail: Option<String>) -> Self {
        Self {
            detail,
            ..Self::default()
        }
    }
}

/// Records the final state (Postgres row + audit entry), publishes it, ends the run.
async fn finish(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    run: &RunRef,
    state: NotificationState,
    ending: Ending,
) -> WorkflowResult<SmsOutcome> {
    let Ending {
        attempt: ended,
        code,
        category,
        detail,
    } = ending;
    let key = ctx.state(|s| NotificationKey {
        month: s.input.month,
        customer: s.input.customer.clone(),
    });
    let detail = detail.or_else(|| ctx.state(|s| s.cancel_reason.clone()));
    let record = RecordInput {
        key,
        state,
        attempt: ended,
        error_code: code,
        category,
        detail,
        run: run.clone(),
    };
    // Recorded even when the run is being cancelled: the final state must reach Postgres.
    let options = record_options_with(Some(WorkflowCancellationToken::new()));
    ctx.execute_local_activity(RecordNotification, record, options)
        .await?;
    ctx.state_mut(|s| s.failure_category = category);
    set_state(ctx, state, None);
    Ok(SmsOutcome {
        state,
        attempts: ctx.state(|s| {
            s.attempts
                .iter()
                .map(|a| a.attempt)
                .max()
                .unwrap_or_default()
        }),
        failure_category: category,
    })
}

fn set_state(
    ctx: &WorkflowContext<SmsNotificationWorkflow>,
    state: NotificationState,
    next_wake_at: Option<DateTime<Utc>>,
) {
    let publish = ctx.state_mut(|s| {
        let changed = s.state != state;
        s.state = state;
        s.next_wake_at = next_wake_at;
        changed && s.input.settings.search_attributes
    });
    if publish {
        ctx.upsert_search_attributes([
            search::NOTIFICATION_STATUS.value_set(state.as_str().to_owned())
        ]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for s in NotificationState::ALL {
            assert_eq!(NotificationState::parse(s.as_str()), Some(s));
        }
        assert!(NotificationState::Delivered.is_final());
        assert!(!NotificationState::RetryWait.is_final());
    }

    #[test]
    fn undeliverable_without_a_code_is_permanent_failed_is_not() {
        assert!(!classify_failure(DeliveryStatus::Undeliverable, None).is_retryable());
        assert!(classify_failure(DeliveryStatus::Failed, None).is_retryable());
        assert!(classify_failure(DeliveryStatus::Undeliverable, Some("30003")).is_retryable());
        assert!(!classify_failure(DeliveryStatus::Failed, Some("21211")).is_retryable());
    }
}
