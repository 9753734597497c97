//! What a delivery report does to a notification: the rules of the SMS workflow's `delivery`
//! signal as one pure function, so every case (early, stale, duplicate, foreign, progress, late)
//! is tested without a server. The workflow applies the answer; nothing here touches its state.

use crate::contracts::DeliveryReport;

use super::{AttemptView, NotificationState};

/// Most final reports kept for attempts not yet recorded (a handful of attempts, a few ids each).
pub(super) const MAX_EARLY_REPORTS: usize = 16;

/// What the notification looks like when a report arrives.
pub(super) struct Seen<'a> {
    /// Its state.
    pub state: NotificationState,
    /// The attempts recorded so far (the last one is the current attempt).
    pub attempts: &'a [AttemptView],
    /// Whether the current attempt already has its final report.
    pub has_report: bool,
    /// Reports kept for attempts not recorded yet.
    pub early: &'a [DeliveryReport],
}

/// The effect of one report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effect {
    /// The current attempt's final report, naming its carrier id: the wait ends with it.
    Apply,
    /// Its attempt is not recorded yet (the report overtook the submission's answer, or the
    /// attempt is in doubt): kept as evidence, applied only if the attempt turns out to carry
    /// this carrier id.
    KeepEarly,
    /// Changes nothing (counted in `ignored_reports`).
    Ignore(Ignored),
}

/// Why a report changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ignored {
    /// A progress report (QUEUED, SENT): only final reports are signalled.
    NotFinal,
    /// The notification already ended.
    AfterTheEnd,
    /// An early report already kept (same attempt and carrier id), or no room for more.
    EarlyDuplicateOrFull,
    /// About an earlier attempt than the current one.
    Stale,
    /// Names another carrier id than the current attempt's.
    Foreign,
    /// The current attempt already has its report, or is not waiting for one.
    NotWaiting,
}

/// The effect of `report` on a notification seen as `seen`.
pub(super) fn on_report(seen: &Seen<'_>, report: &DeliveryReport) -> Effect {
    if !report.status.is_final() {
        return Effect::Ignore(Ignored::NotFinal);
    }
    if seen.state.is_final() {
        return Effect::Ignore(Ignored::AfterTheEnd);
    }
    if !seen.attempts.iter().any(|a| a.attempt == report.attempt) {
        let known = seen.early.iter().any(|r| {
            r.attempt == report.attempt && r.carrier_message_id == report.carrier_message_id
        });
        return if !known && seen.early.len() < MAX_EARLY_REPORTS {
            Effect::KeepEarly
        } else {
            Effect::Ignore(Ignored::EarlyDuplicateOrFull)
        };
    }
    let Some(current) = seen.attempts.last() else {
        return Effect::Ignore(Ignored::Stale);
    };
    if current.attempt != report.attempt {
        return Effect::Ignore(Ignored::Stale);
    }
    if current.carrier_message_id.as_deref() != Some(report.carrier_message_id.as_str()) {
        return Effect::Ignore(Ignored::Foreign);
    }
    if seen.state != NotificationState::Submitted || seen.has_report {
        return Effect::Ignore(Ignored::NotWaiting);
    }
    Effect::Apply
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::DeliveryStatus;

    fn attempt(n: u32, id: Option<&str>) -> AttemptView {
        AttemptView {
            attempt: n,
            carrier_message_id: id.map(str::to_owned),
            submitted_at: None,
            outcome: None,
            error_code: None,
        }
    }

    fn report(n: u32, id: &str, status: DeliveryStatus) -> DeliveryReport {
        DeliveryReport {
            attempt: n,
            carrier_message_id: id.to_owned(),
            status,
            error_code: None,
            event_id: Some(1),
        }
    }

    fn seen<'a>(
        state: NotificationState,
        attempts: &'a [AttemptView],
        early: &'a [DeliveryReport],
    ) -> Seen<'a> {
        Seen {
            state,
            attempts,
            has_report: false,
            early,
        }
    }

    const SUBMITTED: NotificationState = NotificationState::Submitted;

    #[test]
    fn the_current_attempts_final_report_with_its_id_applies() {
        let attempts = [attempt(1, Some("A"))];
        for status in [
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::Undeliverable,
        ] {
            let effect = on_report(&seen(SUBMITTED, &attempts, &[]), &report(1, "A", status));
            assert_eq!(effect, Effect::Apply, "{status}");
        }
    }

    #[test]
    fn a_progress_report_changes_nothing() {
        let attempts = [attempt(1, Some("A"))];
        for status in [DeliveryStatus::Queued, DeliveryStatus::Sent] {
            let effect = on_report(&seen(SUBMITTED, &attempts, &[]), &report(1, "A", status));
            assert_eq!(effect, Effect::Ignore(Ignored::NotFinal), "{status}");
        }
    }

    #[test]
    fn nothing_changes_a_notification_that_ended() {
        let attempts = [attempt(1, Some("A"))];
        for state in NotificationState::ALL.into_iter().filter(|s| s.is_final()) {
            let effect = on_report(
                &seen(state, &attempts, &[]),
                &report(1, "A", DeliveryStatus::Delivered),
            );
            assert_eq!(effect, Effect::Ignore(Ignored::AfterTheEnd), "{state:?}");
        }
    }

    #[test]
    fn a_duplicate_of_the_applied_report_changes_nothing() {
        let attempts = [attempt(1, Some("A"))];
        let mut s = seen(SUBMITTED, &attempts, &[]);
        s.has_report = true;
        let effect = on_report(&s, &report(1, "A", DeliveryStatus::Delivered));
        assert_eq!(effect, Effect::Ignore(Ignored::NotWaiting));
    }

    #[test]
    fn a_report_of_an_earlier_attempt_is_stale() {
        let attempts = [attempt(1, Some("A")), attempt(2, Some("B"))];
        let effect = on_report(
            &seen(SUBMITTED, &attempts, &[]),
            &report(1, "A", DeliveryStatus::Delivered),
        );
        assert_eq!(effect, Effect::Ignore(Ignored::Stale));
    }

    #[test]
    fn a_report_naming_another_carrier_id_is_foreign() {
        let attempts = [attempt(1, Some("A"))];
        let effect = on_report(
            &seen(SUBMITTED, &attempts, &[]),
            &report(1, "FORGED", DeliveryStatus::Delivered),
        );
        assert_eq!(effect, Effect::Ignore(Ignored::Foreign));
        // An attempt without a carrier id (refused) takes no report either.
        let refused = [attempt(1, None)];
        let effect = on_report(
            &seen(SUBMITTED, &refused, &[]),
            &report(1, "A", DeliveryStatus::Delivered),
        );
        assert_eq!(effect, Effect::Ignore(Ignored::Foreign));
    }

    #[test]
    fn a_report_while_not_waiting_for_one_changes_nothing() {
        let attempts = [attempt(1, Some("A"))];
        for state in [NotificationState::RetryWait, NotificationState::Pending] {
            let effect = on_report(
                &seen(state, &attempts, &[]),
                &report(1, "A", DeliveryStatus::Delivered),
            );
            assert_eq!(effect, Effect::Ignore(Ignored::NotWaiting), "{state:?}");
        }
    }

    #[test]
    fn a_report_before_its_attempt_is_kept_once_and_within_bounds() {
        let attempts = [attempt(1, Some("A"))];
        let early = report(2, "B", DeliveryStatus::Delivered);
        // Overtook its own submission: kept.
        let effect = on_report(&seen(NotificationState::Pending, &[], &[]), &early);
        assert_eq!(effect, Effect::KeepEarly);
        let effect = on_report(&seen(SUBMITTED, &attempts, &[]), &early);
        assert_eq!(effect, Effect::KeepEarly);
        // The same again: a duplicate.
        let kept = [early.clone()];
        let effect = on_report(&seen(SUBMITTED, &attempts, &kept), &early);
        assert_eq!(effect, Effect::Ignore(Ignored::EarlyDuplicateOrFull));
        // Another carrier id for the same attempt is kept too (which one is real is decided
        // when the attempt is recorded).
        let effect = on_report(
            &seen(SUBMITTED, &attempts, &kept),
            &report(2, "C", DeliveryStatus::Delivered),
        );
        assert_eq!(effect, Effect::KeepEarly);
        // No room beyond the bound.
        let full: Vec<_> = (0..MAX_EARLY_REPORTS)
            .map(|i| report(2, &format!("X{i}"), DeliveryStatus::Delivered))
            .collect();
        let effect = on_report(
            &seen(SUBMITTED, &attempts, &full),
            &report(2, "Y", DeliveryStatus::Delivered),
        );
        assert_eq!(effect, Effect::Ignore(Ignored::EarlyDuplicateOrFull));
    }
}
