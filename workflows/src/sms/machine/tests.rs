//! Every transition of the SMS state machine, without a server.

use chrono::{TimeZone, Utc};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap()
}

fn submitted(id: &str) -> Option<SubmitResult> {
    Some(SubmitResult::Submitted {
        carrier: "generic".to_owned(),
        carrier_message_id: id.to_owned(),
    })
}

fn report(attempt: u32, id: &str, status: DeliveryStatus, code: Option<&str>) -> DeliveryReport {
    DeliveryReport {
        attempt,
        carrier_message_id: id.to_owned(),
        status,
        error_code: code.map(str::to_owned),
        event_id: Some(7),
    }
}

fn ended(
    attempt: u32,
    outcome: AttemptOutcome,
    code: Option<&str>,
    category: Option<FailureCategory>,
) -> Ending {
    Ending {
        attempt: Some((attempt, outcome)),
        code: code.map(str::to_owned),
        category,
        detail: None,
    }
}

/// A machine whose current attempt was submitted as `id`.
fn following(first: u32, max: u32, id: &str) -> Machine {
    let mut m = Machine::new(first, max);
    let step = m.on_submission(submitted(id), now());
    assert_eq!(
        step,
        Step::Follow {
            carrier_message_id: id.to_owned()
        }
    );
    m
}

#[test]
fn the_happy_path_submits_follows_and_ends_delivered() {
    let mut m = Machine::new(1, 3);
    assert_eq!(
        m.on_prepared(&Prepared::Ready { segments: 1 }),
        Step::Submit
    );
    assert_eq!(m.attempt(), 1);
    let step = m.on_submission(submitted("A"), now());
    assert_eq!(
        step,
        Step::Follow {
            carrier_message_id: "A".to_owned()
        }
    );
    assert_eq!(m.state, NotificationState::Submitted);
    assert_eq!(m.attempts.len(), 1);
    assert_eq!(m.attempts[0].carrier_message_id.as_deref(), Some("A"));
    assert_eq!(m.attempts[0].submitted_at, Some(now()));

    m.on_report(report(1, "A", DeliveryStatus::Delivered, None));
    let report = m.report.clone().expect("the report applies");
    let step = m.on_wait(Wait::Report(report));
    assert_eq!(
        step,
        Step::Finish(
            NotificationState::Delivered,
            ended(1, AttemptOutcome::Delivered, None, None)
        )
    );
    let Step::Finish(state, ending) = step else {
        unreachable!()
    };
    let outcome = m.finished(state, &ending);
    assert_eq!(
        outcome,
        SmsOutcome {
            state: NotificationState::Delivered,
            attempts: 1,
            failure_category: None
        }
    );
}

#[test]
fn preparation_ends_an_opted_out_or_unknown_customer_and_a_cancel_before_sending() {
    let m = Machine::new(1, 3);
    assert_eq!(
        m.on_prepared(&Prepared::OptedOut),
        Step::Finish(NotificationState::OptedOut, Ending::default())
    );
    let Step::Finish(state, ending) = m.on_prepared(&Prepared::UnknownCustomer) else {
        panic!("an unknown customer ends the run");
    };
    assert_eq!(state, NotificationState::Failed);
    assert_eq!(ending.detail.as_deref(), Some("customer not found"));

    let mut m = Machine::new(1, 3);
    m.on_cancel("ops".to_owned());
    assert_eq!(
        m.on_prepared(&Prepared::Ready { segments: 1 }),
        Step::Finish(NotificationState::Cancelled, Ending::default())
    );
    // An opted-out customer is OPTED_OUT even when a cancel came too.
    assert_eq!(
        m.on_prepared(&Prepared::OptedOut),
        Step::Finish(NotificationState::OptedOut, Ending::default())
    );
}

#[test]
fn submission_answers_that_end_the_run() {
    let mut m = Machine::new(1, 3);
    assert_eq!(
        m.on_submission(Some(SubmitResult::OptedOut), now()),
        Step::Finish(NotificationState::OptedOut, Ending::default())
    );
    let Step::Finish(state, _) = m.on_submission(Some(SubmitResult::UnknownCustomer), now()) else {
        panic!("an unknown customer ends the run");
    };
    assert_eq!(state, NotificationState::Failed);
    assert!(m.attempts.is_empty(), "nothing was sent");
}

#[test]
fn deferred_waits_and_submits_the_same_attempt_without_counting_it() {
    let mut m = Machine::new(1, 3);
    for _ in 0..10 {
        assert_eq!(
            m.on_submission(Some(SubmitResult::Deferred { retry_secs: 5 }), now()),
            Step::Defer { secs: 5 }
        );
    }
    assert_eq!(m.attempt(), 1);
    assert!(m.attempts.is_empty());
    assert_eq!(
        m.on_submission(submitted("A"), now()),
        Step::Follow {
            carrier_message_id: "A".to_owned()
        }
    );
    assert_eq!(m.attempts[0].attempt, 1);
}

#[test]
fn in_doubt_awaits_evidence_and_an_early_report_is_applied_when_the_id_is_adopted() {
    let mut m = Machine::new(1, 3);
    assert_eq!(
        m.on_submission(Some(SubmitResult::InDoubt { recheck_secs: 0 }), now()),
        Step::AwaitEvidence { secs: 1 },
        "at least a second"
    );
    assert_eq!(m.in_doubt, Some(1));
    assert_eq!(m.status().in_doubt, Some(1));
    // A report for the attempt overtakes the answer: kept as evidence.
    m.on_report(report(1, "A", DeliveryStatus::Delivered, None));
    assert_eq!(m.evidence(), vec!["A".to_owned()]);
    assert_eq!(m.evidence_count(1), 1);
    assert_eq!(m.report, None);
    // Deferred keeps the doubt; the adopted id clears it and applies the report.
    m.on_submission(Some(SubmitResult::Deferred { retry_secs: 1 }), now());
    assert_eq!(m.in_doubt, Some(1));
    let step = m.on_submission(submitted("A"), now());
    assert_eq!(
        step,
        Step::Follow {
            carrier_message_id: "A".to_owned()
        }
    );
    assert_eq!(m.in_doubt, None);
    assert_eq!(
        m.report.as_ref().map(|r| r.status),
        Some(DeliveryStatus::Delivered)
    );
    assert!(m.early_reports.is_empty());
}

#[test]
fn an_early_report_naming_another_id_is_not_applied() {
    let mut m = Machine::new(1, 3);
    m.on_report(report(1, "FORGED", DeliveryStatus::Delivered, None));
    m.on_submission(submitted("A"), now());
    assert_eq!(m.report, None, "the attempt carries A, not FORGED");
    assert!(
        m.early_reports.is_empty(),
        "reports of the recorded attempt are dropped"
    );
}

#[test]
fn early_reports_of_a_later_attempt_are_kept() {
    let mut m = Machine::new(1, 3);
    m.on_report(report(2, "B", DeliveryStatus::Delivered, None));
    m.on_submission(submitted("A"), now());
    assert_eq!(m.early_reports.len(), 1);
    assert_eq!(m.early_reports[0].attempt, 2);
}

#[test]
fn a_submission_without_an_answer_retries_the_same_attempt_then_fails() {
    let mut m = Machine::new(1, 3);
    let network = Ending {
        category: Some(FailureCategory::NetworkError),
        ..Ending::default()
    };
    for _ in 0..2 {
        assert_eq!(m.on_submission(None, now()), Step::Retry(network.clone()));
        m.after_retry_wait(&network);
        assert_eq!(m.attempt(), 1, "the same attempt again");
    }
    assert_eq!(
        m.on_submission(None, now()),
        Step::Finish(NotificationState::Failed, network)
    );
}

#[test]
fn a_reported_failure_moves_to_the_next_attempt_and_resets_the_unanswered_count() {
    let mut m = Machine::new(1, 3);
    let network = Ending {
        category: Some(FailureCategory::NetworkError),
        ..Ending::default()
    };
    assert_eq!(m.on_submission(None, now()), Step::Retry(network.clone()));
    m.after_retry_wait(&network);
    m.on_submission(submitted("A"), now());
    let step = m.on_wait(Wait::Report(report(
        1,
        "A",
        DeliveryStatus::Failed,
        Some("30003"),
    )));
    let expected = ended(
        1,
        AttemptOutcome::Failed,
        Some("30003"),
        Some(FailureCategory::CarrierReject),
    );
    assert_eq!(step, Step::Retry(expected.clone()));
    assert_eq!(m.attempts[0].outcome, Some(AttemptOutcome::Failed));
    assert_eq!(m.attempts[0].error_code.as_deref(), Some("30003"));
    m.after_retry_wait(&expected);
    assert_eq!(m.attempt(), 2);
    // Two more unanswered submissions of attempt 2 are allowed again (the count restarted).
    assert!(matches!(m.on_submission(None, now()), Step::Retry(_)));
    m.after_retry_wait(&network);
    assert!(matches!(m.on_submission(None, now()), Step::Retry(_)));
}

#[test]
fn the_last_attempts_retryable_failure_ends_failed() {
    let mut m = following(1, 2, "A");
    let step = m.on_wait(Wait::Report(report(1, "A", DeliveryStatus::Failed, None)));
    let Step::Retry(ending) = step else {
        panic!("attempt 1 of 2 is retried: {step:?}")
    };
    m.after_retry_wait(&ending);
    m.on_submission(submitted("B"), now());
    let step = m.on_wait(Wait::Report(report(2, "B", DeliveryStatus::Failed, None)));
    assert_eq!(
        step,
        Step::Finish(
            NotificationState::Failed,
            ended(
                2,
                AttemptOutcome::Failed,
                None,
                Some(FailureCategory::Unknown)
            )
        )
    );
    let Step::Finish(state, ending) = step else {
        unreachable!()
    };
    assert_eq!(m.finished(state, &ending).attempts, 2);
    assert_eq!(m.status().failure_category, Some(FailureCategory::Unknown));
}

#[test]
fn a_manual_retry_sends_one_attempt_numbered_after_the_last() {
    let mut m = following(3, 1, "C");
    assert_eq!(m.attempts[0].attempt, 3);
    let step = m.on_wait(Wait::Report(report(3, "C", DeliveryStatus::Failed, None)));
    assert!(
        matches!(step, Step::Finish(NotificationState::Failed, _)),
        "{step:?}"
    );
}

#[test]
fn a_permanent_failure_ends_undeliverable() {
    let mut m = following(1, 3, "A");
    let step = m.on_wait(Wait::Report(report(
        1,
        "A",
        DeliveryStatus::Undeliverable,
        Some("21211"),
    )));
    assert_eq!(
        step,
        Step::Finish(
            NotificationState::Undeliverable,
            ended(
                1,
                AttemptOutcome::Undeliverable,
                Some("21211"),
                Some(FailureCategory::InvalidNumber)
            )
        )
    );
    // Undeliverable without a code is permanent too.
    let mut m = following(1, 3, "A");
    let step = m.on_wait(Wait::Report(report(
        1,
        "A",
        DeliveryStatus::Undeliverable,
        None,
    )));
    assert!(
        matches!(step, Step::Finish(NotificationState::Undeliverable, _)),
        "{step:?}"
    );
}

#[test]
fn the_carriers_unsubscribed_ends_opted_out_never_retried() {
    let mut m = following(1, 3, "A");
    let step = m.on_wait(Wait::Report(report(
        1,
        "A",
        DeliveryStatus::Failed,
        Some("21610"),
    )));
    assert_eq!(
        step,
        Step::Finish(
            NotificationState::OptedOut,
            ended(
                1,
                AttemptOutcome::Failed,
                Some("21610"),
                Some(FailureCategory::OptedOut)
            )
        )
    );
}

#[test]
fn a_refused_submission_is_an_attempt_without_a_carrier_id() {
    let mut m = Machine::new(1, 3);
    let step = m.on_submission(
        Some(SubmitResult::Rejected {
            category: FailureCategory::RateLimited,
            code: "20429".to_owned(),
        }),
        now(),
    );
    let expected = ended(
        1,
        AttemptOutcome::Rejected,
        Some("20429"),
        Some(FailureCategory::RateLimited),
    );
    assert_eq!(step, Step::Retry(expected.clone()));
    assert_eq!(m.attempts[0].carrier_message_id, None);
    assert_eq!(m.attempts[0].outcome, Some(AttemptOutcome::Rejected));
    m.after_retry_wait(&expected);
    assert_eq!(m.attempt(), 2);
    // A permanent refusal ends the notification.
    let step = m.on_submission(
        Some(SubmitResult::Rejected {
            category: FailureCategory::InvalidNumber,
            code: "21211".to_owned(),
        }),
        now(),
    );
    assert!(
        matches!(step, Step::Finish(NotificationState::Undeliverable, _)),
        "{step:?}"
    );
}

#[test]
fn no_confirmation_within_the_timeout_ends_undeliverable() {
    let mut m = following(1, 3, "A");
    assert_eq!(
        m.on_wait(Wait::NoConfirmation),
        Step::Finish(
            NotificationState::Undeliverable,
            ended(
                1,
                AttemptOutcome::NoConfirmation,
                None,
                Some(FailureCategory::NoConfirmation)
            )
        )
    );
}

#[test]
fn a_cancel_while_following_ends_cancelled_and_keeps_the_first_reason() {
    let mut m = following(1, 3, "A");
    m.on_cancel("first".to_owned());
    m.on_cancel("second".to_owned());
    assert_eq!(m.cancel_reason.as_deref(), Some("first"));
    assert_eq!(
        m.on_wait(Wait::Cancelled),
        Step::Finish(
            NotificationState::Cancelled,
            ended(1, AttemptOutcome::Cancelled, None, None)
        )
    );
}

#[test]
fn a_cancel_after_the_end_changes_nothing() {
    let mut m = following(1, 3, "A");
    m.state = NotificationState::Delivered;
    m.on_cancel("late".to_owned());
    assert_eq!(m.cancel_reason, None);
}

#[test]
fn duplicate_stale_foreign_and_progress_reports_are_counted_not_applied() {
    let mut m = following(1, 3, "A");
    m.on_report(report(1, "A", DeliveryStatus::Sent, None)); // progress
    m.on_report(report(1, "FORGED", DeliveryStatus::Delivered, None)); // foreign
    assert_eq!(m.report, None);
    m.on_report(report(1, "A", DeliveryStatus::Failed, None)); // applies
    m.on_report(report(1, "A", DeliveryStatus::Failed, None)); // duplicate
    assert_eq!(m.ignored_reports, 3);
    let r = m.report.clone().unwrap();
    let Step::Retry(ending) = m.on_wait(Wait::Report(r)) else {
        panic!("retryable")
    };
    m.after_retry_wait(&ending);
    m.state = NotificationState::RetryWait;
    m.on_submission(submitted("B"), now());
    m.on_report(report(1, "A", DeliveryStatus::Delivered, None)); // stale
    assert_eq!(m.ignored_reports, 4);
    assert_eq!(m.report, None);
    assert_eq!(m.status().attempt, 2);
}

#[test]
fn undeliverable_without_a_code_is_permanent_failed_is_not() {
    assert!(!classify_failure(DeliveryStatus::Undeliverable, None).is_retryable());
    assert!(classify_failure(DeliveryStatus::Failed, None).is_retryable());
    assert!(classify_failure(DeliveryStatus::Undeliverable, Some("30003")).is_retryable());
    assert!(!classify_failure(DeliveryStatus::Failed, Some("21211")).is_retryable());
}

#[test]
fn states_round_trip() {
    for s in NotificationState::ALL {
        assert_eq!(NotificationState::parse(s.as_str()), Some(s));
    }
    assert!(NotificationState::Delivered.is_final());
    assert!(!NotificationState::RetryWait.is_final());
}
