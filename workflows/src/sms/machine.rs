//! The SMS workflow's decisions as a pure state machine: what a notification does after each
//! thing that can happen to it — the customer's preparation, a submission's result, the end of
//! the wait for an attempt's outcome, a delivery report, a cancel. The workflow (`super`) does the
//! waiting and the IO and asks [`Machine`] for the next [`Step`]; every transition is unit-tested
//! here without a server (`machine/tests.rs`).
//!
//! The rules (docs/requirements.md#sms-rules, #retry-policies): at most `max_attempts` attempts,
//! only a failure the carrier reported moves to the next attempt; a retryable failure waits the
//! retry delay; a permanent one ends UNDELIVERABLE; the carrier's "unsubscribed" ends OPTED_OUT; no
//! final report within the confirmation timeout ends UNDELIVERABLE (no confirmation); a
//! submission that got no answer at all is tried again as the *same* attempt, `max_attempts` times
//! in all, then FAILED (network error); a submission in doubt is never sent blindly again.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contracts::{AttemptOutcome, DeliveryReport, Prepared, SubmitResult};
use crate::delivery::{DeliveryStatus, FailureCategory};
use crate::vocabulary::NotificationState;

use super::reports;

#[cfg(test)]
mod tests;

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

/// How a notification ended (or an attempt failed), besides its state: the attempt that ended
/// and why. What `RecordNotification` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ending {
    /// The attempt that ended, and how.
    pub attempt: Option<(u32, AttemptOutcome)>,
    /// The carrier's error code.
    pub code: Option<String>,
    /// Why it did not end DELIVERED.
    pub category: Option<FailureCategory>,
    /// A note for the record (e.g. "customer not found"); a cancel's reason when absent.
    pub detail: Option<String>,
}

/// How waiting on one submitted attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Its final report (a signal or a poll's answer).
    Report(DeliveryReport),
    /// No final report within the confirmation timeout.
    NoConfirmation,
    /// Cancelled meanwhile.
    Cancelled,
}

/// What the workflow does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Submit the current attempt (again).
    Submit,
    /// Record `state` with the ending and end the run.
    Finish(NotificationState, Ending),
    /// Nothing was sent (the worker's queue was full or the carrier's rate used up): wait
    /// `secs` (a durable timer, or a cancel) and submit again.
    Defer {
        /// How long.
        secs: u64,
    },
    /// The carrier may have the attempt: never send it blindly again. Wait `secs`, or for a
    /// report naming the attempt, or a cancel, then submit again (passing the evidence).
    AwaitEvidence {
        /// When to ask again at the latest.
        secs: u64,
    },
    /// The carrier took the attempt: wait for its outcome (a signal, or a poll every poll
    /// interval) up to the confirmation timeout, then call [`Machine::on_wait`].
    Follow {
        /// The carrier's id of the attempt.
        carrier_message_id: String,
    },
    /// Record RETRY_WAIT with the ending, wait the retry delay (or a cancel), then call
    /// [`Machine::after_retry_wait`] and submit.
    Retry(Ending),
}

/// A notification's state between two steps: what the `status` query shows and what the
/// `delivery` and `cancel` signals change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Current state.
    pub state: NotificationState,
    /// Every attempt recorded so far; the last is the current one.
    pub attempts: Vec<AttemptView>,
    /// The final report of the current attempt, from a signal or a poll.
    pub report: Option<DeliveryReport>,
    /// Final reports that arrived before their attempt was recorded as submitted (a callback can
    /// overtake the submission's own result, e.g. when a worker died after the carrier took the
    /// message): applied when the attempt is.
    pub early_reports: Vec<DeliveryReport>,
    /// Set by the `cancel` signal.
    pub cancel_reason: Option<String>,
    /// When the run next wakes up by itself.
    pub next_wake_at: Option<DateTime<Utc>>,
    /// Why it did not end DELIVERED (set at the end).
    pub failure_category: Option<FailureCategory>,
    /// Reports that changed nothing.
    pub ignored_reports: u32,
    /// The attempt whose submission is in doubt.
    pub in_doubt: Option<u32>,
    /// The attempt being sent.
    attempt: u32,
    /// The last attempt this run may send.
    last_attempt: u32,
    /// Attempts a run may send; also how many unanswered submissions of one attempt end it.
    max_attempts: u32,
    /// Submissions of the current attempt that got no answer from the carrier.
    unanswered: u32,
}

impl Machine {
    /// A notification that sends attempts `first_attempt ..` (`max_attempts` of them; both at
    /// least 1).
    pub fn new(first_attempt: u32, max_attempts: u32) -> Self {
        let first_attempt = first_attempt.max(1);
        let max_attempts = max_attempts.max(1);
        Self {
            state: NotificationState::Pending,
            attempts: Vec::new(),
            report: None,
            early_reports: Vec::new(),
            cancel_reason: None,
            next_wake_at: None,
            failure_category: None,
            ignored_reports: 0,
            in_doubt: None,
            attempt: first_attempt,
            last_attempt: first_attempt.saturating_add(max_attempts - 1),
            max_attempts,
            unanswered: 0,
        }
    }

    /// The attempt being sent.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The last attempt this run may send.
    pub fn last_attempt(&self) -> u32 {
        self.last_attempt
    }

    /// Whether an operator cancelled the notification.
    pub fn cancelled(&self) -> bool {
        self.cancel_reason.is_some()
    }

    /// Carrier ids that reports named for the current attempt before it was recorded: evidence
    /// that the carrier has it, passed to `SubmitSms`.
    pub fn evidence(&self) -> Vec<String> {
        self.early_reports
            .iter()
            .filter(|r| r.attempt == self.attempt)
            .map(|r| r.carrier_message_id.clone())
            .collect()
    }

    /// Reports kept as evidence for `attempt` (a new one wakes a run that awaits evidence).
    pub fn evidence_count(&self, attempt: u32) -> usize {
        self.early_reports
            .iter()
            .filter(|r| r.attempt == attempt)
            .count()
    }

    /// The window is open (or the customer was looked at while it is closed): whether to go on
    /// and submit, or how the notification ends before anything is sent.
    pub fn on_prepared(&self, prepared: &Prepared) -> Step {
        match prepared {
            Prepared::OptedOut => Step::Finish(NotificationState::OptedOut, Ending::default()),
            Prepared::UnknownCustomer => Step::Finish(
                NotificationState::Failed,
                Ending {
                    detail: Some("customer not found".to_owned()),
                    ..Ending::default()
                },
            ),
            Prepared::Ready { .. } if self.cancelled() => {
                Step::Finish(NotificationState::Cancelled, Ending::default())
            }
            Prepared::Ready { .. } => Step::Submit,
        }
    }

    /// The current attempt's submission answered `result` (`None`: no answer from the carrier
    /// within the submission budget) at workflow time `now`.
    pub fn on_submission(&mut self, result: Option<SubmitResult>, now: DateTime<Utc>) -> Step {
        if !matches!(
            result,
            Some(SubmitResult::InDoubt { .. } | SubmitResult::Deferred { .. })
        ) {
            self.in_doubt = None;
        }
        let attempt = self.attempt;
        match result {
            Some(SubmitResult::Deferred { retry_secs }) => Step::Defer { secs: retry_secs },
            Some(SubmitResult::InDoubt { recheck_secs }) => {
                self.in_doubt = Some(attempt);
                Step::AwaitEvidence {
                    secs: recheck_secs.max(1),
                }
            }
            Some(SubmitResult::Submitted {
                carrier_message_id, ..
            }) => {
                self.state = NotificationState::Submitted;
                self.report = self
                    .early_reports
                    .iter()
                    .find(|r| r.attempt == attempt && r.carrier_message_id == carrier_message_id)
                    .cloned();
                self.early_reports.retain(|r| r.attempt > attempt);
                self.attempts.push(AttemptView {
                    attempt,
                    carrier_message_id: Some(carrier_message_id.clone()),
                    submitted_at: Some(now),
                    outcome: None,
                    error_code: None,
                });
                Step::Follow { carrier_message_id }
            }
            Some(SubmitResult::OptedOut) => {
                Step::Finish(NotificationState::OptedOut, Ending::default())
            }
            Some(SubmitResult::UnknownCustomer) => self.on_prepared(&Prepared::UnknownCustomer),
            Some(SubmitResult::Rejected { category, code }) => {
                self.attempts.push(AttemptView {
                    attempt,
                    carrier_message_id: None,
                    submitted_at: Some(now),
                    outcome: None,
                    error_code: None,
                });
                self.attempt_failed(AttemptOutcome::Rejected, Some(code), category)
            }
            None => {
                // The carrier certainly did not take it (refused, unreachable) for the whole
                // budget: the *same* attempt is tried again after the retry delay.
                self.unanswered += 1;
                let ending = Ending {
                    category: Some(FailureCategory::NetworkError),
                    ..Ending::default()
                };
                if self.unanswered >= self.max_attempts {
                    Step::Finish(NotificationState::Failed, ending)
                } else {
                    Step::Retry(ending)
                }
            }
        }
    }

    /// The wait on the current (submitted) attempt ended.
    pub fn on_wait(&mut self, wait: Wait) -> Step {
        let attempt = self.attempt;
        let ended = |outcome| Ending {
            attempt: Some((attempt, outcome)),
            ..Ending::default()
        };
        match wait {
            Wait::Cancelled => Step::Finish(
                NotificationState::Cancelled,
                ended(AttemptOutcome::Cancelled),
            ),
            Wait::NoConfirmation => Step::Finish(
                NotificationState::Undeliverable,
                Ending {
                    category: Some(FailureCategory::NoConfirmation),
                    ..ended(AttemptOutcome::NoConfirmation)
                },
            ),
            Wait::Report(report) => match report.status {
                DeliveryStatus::Delivered => Step::Finish(
                    NotificationState::Delivered,
                    ended(AttemptOutcome::Delivered),
                ),
                status => {
                    let category = classify_failure(status, report.error_code.as_deref());
                    let outcome = if status == DeliveryStatus::Undeliverable {
                        AttemptOutcome::Undeliverable
                    } else {
                        AttemptOutcome::Failed
                    };
                    self.attempt_failed(outcome, report.error_code, category)
                }
            },
        }
    }

    /// The carrier said the current attempt failed (at submission or in a report).
    fn attempt_failed(
        &mut self,
        outcome: AttemptOutcome,
        code: Option<String>,
        category: FailureCategory,
    ) -> Step {
        if let Some(view) = self.attempts.last_mut() {
            view.outcome = Some(outcome);
            view.error_code = code.clone();
        }
        let ending = Ending {
            attempt: Some((self.attempt, outcome)),
            code,
            category: Some(category),
            detail: None,
        };
        if category == FailureCategory::OptedOut {
            // The carrier says the recipient unsubscribed (Twilio 21610): the customer is opted
            // out when this is recorded, and nothing is ever retried.
            Step::Finish(NotificationState::OptedOut, ending)
        } else if !category.is_retryable() {
            Step::Finish(NotificationState::Undeliverable, ending)
        } else if self.attempt >= self.last_attempt {
            Step::Finish(NotificationState::Failed, ending)
        } else {
            Step::Retry(ending)
        }
    }

    /// The retry delay after `ending` passed (or a cancel came): a failure the carrier reported
    /// moves to the next attempt; a submission without an answer tries the same one again.
    pub fn after_retry_wait(&mut self, ending: &Ending) {
        if ending.attempt.is_some() {
            self.attempt += 1;
            self.unanswered = 0;
        }
    }

    /// The `delivery` signal (see `reports` for which reports count).
    pub fn on_report(&mut self, report: DeliveryReport) {
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

    /// The `cancel` signal: the first reason counts; nothing changes once the notification ended.
    pub fn on_cancel(&mut self, reason: String) {
        if !self.state.is_final() && self.cancel_reason.is_none() {
            self.cancel_reason = Some(reason);
        }
    }

    /// The notification ended in `state` with `ending`: what the run returns. The detail to
    /// record is the ending's, or else a cancel's reason.
    pub fn finished(&mut self, state: NotificationState, ending: &Ending) -> SmsOutcome {
        self.failure_category = ending.category;
        SmsOutcome {
            state,
            attempts: self
                .attempts
                .iter()
                .map(|a| a.attempt)
                .max()
                .unwrap_or_default(),
            failure_category: ending.category,
        }
    }

    /// The `status` query.
    pub fn status(&self) -> SmsStatus {
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
