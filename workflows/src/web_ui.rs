//! What the Temporal Web UI shows of our runs besides their ids: the *current details* (Markdown,
//! answered from the run's state through Temporal's `__temporal_workflow_metadata` query, so they
//! cost no history event) and the summaries of timers. Pure functions of a run's state, unit-tested
//! here; the workflows publish them at each change. No personal data: customer ids and counts,
//! never a name or a phone number.

use chrono::{DateTime, Utc};

use crate::domain::{JERUSALEM, YearMonth};
use crate::month::{MonthPhase, MonthProgress};
use crate::sms::SmsStatus;
use crate::vocabulary::NotificationState;

/// `2026-11-14 22:00` in Israel time.
pub fn israel_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&JERUSALEM)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The month run's current details: its phase, what it is doing or waiting for, the days swept
/// with their counts, the decision and the notifications; when BLOCKED, why and what to do.
pub fn month_details(p: &MonthProgress) -> String {
    let month = p.month;
    let mut out = format!(
        "**{}** — {} of {} days swept",
        p.phase.as_str(),
        p.days_done,
        p.days_total
    );
    if let Some(date) = p.sweeping {
        out.push_str(&format!(", sweeping {date} now"));
    } else if let Some(at) = p.next_check_at {
        out.push_str(&format!(
            ", next daily check {} Israel time",
            israel_time(at)
        ));
    }
    out.push('\n');
    match p.phase {
        MonthPhase::Blocked => out.push_str(&format!(
            "\n**Blocked**: {}\n\nFix the cause, then `pcnctl month resume {month} --reason \"…\"` \
             (the failed step runs again; nothing done is redone).\n",
            p.blocked_reason
                .as_deref()
                .unwrap_or("a step failed for good")
        )),
        MonthPhase::Paused => out.push_str(&format!(
            "\nPaused by an operator: `pcnctl month resume {month} --reason \"…\"` to go on.\n"
        )),
        _ => {}
    }
    if !p.days.is_empty() {
        let sum = |f: fn(&crate::contracts::SweepSummary) -> u64| -> u64 {
            p.days.iter().map(|d| f(&d.summary)).sum()
        };
        out.push_str(&format!(
            "\nChecks so far: {} passed, {} below threshold, {} missing, {} account not found, \
             {} invalid.\n",
            sum(|s| s.passed),
            sum(|s| s.below_threshold),
            sum(|s| s.missing),
            sum(|s| s.not_found),
            sum(|s| s.invalid),
        ));
        out.push_str("\n| day | checked | passed | below | missing | not found | invalid |\n");
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        // The latest days; the whole month is in the progress query and `pcnctl month get`.
        let start = p.days.len().saturating_sub(7);
        for d in &p.days[start..] {
            let s = &d.summary;
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                s.date, s.checked, s.passed, s.below_threshold, s.missing, s.not_found, s.invalid
            ));
        }
    }
    if let Some(q) = &p.qualification {
        out.push_str(&format!(
            "\nDecided: **{} of {} qualified**; not monitored the whole month {}, below threshold \
             {}, account not found {}, invalid response {}, missing data {}.\n",
            q.qualified,
            q.customers,
            q.not_monitored_whole_month,
            q.below_threshold,
            q.account_not_found,
            q.invalid_response,
            q.missing_data
        ));
    }
    if p.fanout.seen > 0 || p.fanout.done {
        out.push_str(&format!(
            "\nFan-out: {} SMS runs started ({} found already started){}.\n",
            p.fanout.started,
            p.fanout.already_started,
            if p.fanout.done { "" } else { ", going on" }
        ));
    }
    if let Some(n) = &p.notifications {
        out.push_str(&format!(
            "\nNotifications: {} final of {} — delivered {}, failed {}, undeliverable {}, opted out \
             {}, cancelled {}; in flight: pending {}, waiting for the window {}, submitted {}, \
             retry wait {}.\n",
            n.finished(),
            n.total,
            n.delivered,
            n.failed,
            n.undeliverable,
            n.opted_out,
            n.cancelled,
            n.pending,
            n.waiting_window,
            n.submitted,
            n.retry_wait
        ));
    }
    out
}

/// The month's timer before a daily check.
pub fn daily_check_timer(due: DateTime<Utc>) -> String {
    format!("wait for the daily check, {} Israel time", israel_time(due))
}

/// The month's timer between two counts of its notifications.
pub fn notification_count_timer(month: YearMonth) -> String {
    format!("wait, then count {month}'s notifications again")
}

/// The SMS run's one-line static summary.
pub fn sms_summary(
    month: YearMonth,
    customer: &str,
    first_attempt: u32,
    max_attempts: u32,
) -> String {
    let last = first_attempt.saturating_add(max_attempts.max(1) - 1);
    if first_attempt > 1 {
        format!("{month} · customer {customer} · manual retry, attempt {first_attempt}")
    } else {
        format!("{month} · customer {customer} · up to {last} attempts")
    }
}

/// The SMS run's current details: its state, the attempt, what it waits for.
pub fn sms_details(s: &SmsStatus, last_attempt: u32) -> String {
    let mut out = format!("**{}**", s.state.as_str());
    if s.attempt > 0 {
        out.push_str(&format!(" — attempt {} of {last_attempt}", s.attempt));
    }
    let waiting = match s.state {
        NotificationState::Pending => Some("preparing"),
        NotificationState::WaitingWindow => Some("waiting for the send window to open"),
        NotificationState::Submitted => Some("with the carrier, waiting for its delivery report"),
        NotificationState::RetryWait => Some("waiting before the next attempt"),
        _ => None,
    };
    if let Some(what) = waiting {
        out.push_str(&format!("; {what}"));
        if let Some(at) = s.next_wake_at {
            out.push_str(&format!(" (next wake-up {} Israel time)", israel_time(at)));
        }
    }
    if let Some(n) = s.in_doubt {
        out.push_str(&format!(
            "\n\nAttempt {n} is **in doubt**: the carrier may have it; it is never sent blindly \
             again (evidence is awaited, then the attempt is resolved)."
        ));
    }
    if let Some(category) = s.failure_category {
        out.push_str(&format!("\n\nWhy: {}", category.as_str()));
    }
    if s.ignored_reports > 0 {
        out.push_str(&format!(
            "\n\n{} delivery report(s) changed nothing (duplicate, stale, foreign or progress).",
            s.ignored_reports
        ));
    }
    out.push('\n');
    out
}

/// The SMS run's timer until the send window opens.
pub fn window_timer(opens: DateTime<Utc>) -> String {
    format!(
        "wait for the send window, {} Israel time",
        israel_time(opens)
    )
}

/// The SMS run's timer until the next poll of the carrier (or the deadline).
pub fn report_timer(attempt: u32) -> String {
    format!("wait for attempt {attempt}'s delivery report (then poll the carrier)")
}

/// The SMS run's timer before the next attempt.
pub fn retry_timer(wake: DateTime<Utc>) -> String {
    format!("retry delay, until {} Israel time", israel_time(wake))
}

/// The SMS run's timer while the carrier's rate or the worker's queue is full.
pub fn deferred_timer(secs: u64) -> String {
    format!("carrier busy: submit again in {secs} s")
}

/// The SMS run's timer while an attempt is in doubt.
pub fn in_doubt_timer(attempt: u32, secs: u64) -> String {
    format!("attempt {attempt} in doubt: look for evidence again in {secs} s")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::contracts::{NotificationCounts, QualificationSummary, SweepSummary};
    use crate::domain::BusinessDate;
    use crate::month::DayProgress;

    fn progress(phase: MonthPhase) -> MonthProgress {
        MonthProgress {
            month: YearMonth::parse("2026-11").unwrap(),
            phase,
            blocked_reason: None,
            days_total: 30,
            days_done: 0,
            sweeping: None,
            next_check_at: None,
            days: Vec::new(),
            qualification: None,
            fanout: Default::default(),
            notifications: None,
        }
    }

    fn day(d: &str, passed: u64, missing: u64) -> DayProgress {
        DayProgress {
            started_at: Utc.with_ymd_and_hms(2026, 11, 1, 20, 0, 0).unwrap(),
            summary: SweepSummary {
                date: BusinessDate::parse(d).unwrap(),
                checked: passed + missing,
                passed,
                below_threshold: 0,
                missing,
                not_found: 0,
                invalid: 0,
                written_now: passed + missing,
            },
        }
    }

    #[test]
    fn a_monitoring_month_says_the_next_check_in_israel_time_and_the_days() {
        let mut p = progress(MonthPhase::Monitoring);
        p.days = vec![day("2026-11-01", 90, 10), day("2026-11-02", 100, 0)];
        p.days_done = 2;
        // 20:00 UTC = 22:00 in Israel (winter).
        p.next_check_at = Some(Utc.with_ymd_and_hms(2026, 11, 3, 20, 0, 0).unwrap());
        let text = month_details(&p);
        assert!(
            text.starts_with("**MONITORING** — 2 of 30 days swept"),
            "{text}"
        );
        assert!(
            text.contains("next daily check 2026-11-03 22:00 Israel time"),
            "{text}"
        );
        assert!(text.contains("190 passed"), "{text}");
        assert!(
            text.contains("| 2026-11-01 | 100 | 90 | 0 | 10 | 0 | 0 |"),
            "{text}"
        );
    }

    #[test]
    fn a_blocked_month_says_why_and_what_to_do() {
        let mut p = progress(MonthPhase::Blocked);
        p.blocked_reason = Some("DailyBalanceSweep: HTTP 401 from the balance API".into());
        let text = month_details(&p);
        assert!(text.contains("HTTP 401"), "{text}");
        assert!(text.contains("pcnctl month resume 2026-11"), "{text}");
    }

    #[test]
    fn a_notifying_month_shows_the_decision_and_the_notifications() {
        let mut p = progress(MonthPhase::Notifying);
        p.days_done = 30;
        p.qualification = Some(QualificationSummary {
            customers: 466,
            qualified: 138,
            below_threshold: 300,
            ..Default::default()
        });
        p.fanout.started = 138;
        p.fanout.seen = 138;
        p.fanout.done = true;
        p.notifications = Some(NotificationCounts {
            qualified: 138,
            total: 138,
            delivered: 100,
            submitted: 38,
            ..Default::default()
        });
        let text = month_details(&p);
        assert!(text.contains("**138 of 466 qualified**"), "{text}");
        assert!(text.contains("Fan-out: 138 SMS runs started"), "{text}");
        assert!(text.contains("Notifications: 100 final of 138"), "{text}");
    }

    #[test]
    fn sms_texts_name_the_attempt_and_the_wait_and_no_personal_data() {
        let month = YearMonth::parse("2026-11").unwrap();
        assert_eq!(
            sms_summary(month, "C0000000042", 1, 3),
            "2026-11 · customer C0000000042 · up to 3 attempts"
        );
        assert_eq!(
            sms_summary(month, "C0000000042", 4, 1),
            "2026-11 · customer C0000000042 · manual retry, attempt 4"
        );
        let status = SmsStatus {
            state: NotificationState::Submitted,
            attempt: 2,
            attempts: Vec::new(),
            next_wake_at: Some(Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap()),
            failure_category: None,
            ignored_reports: 1,
            in_doubt: None,
        };
        let text = sms_details(&status, 3);
        assert!(
            text.starts_with("**SUBMITTED** — attempt 2 of 3; with the carrier"),
            "{text}"
        );
        assert!(text.contains("2026-11-02 10:00 Israel time"), "{text}");
        assert!(!text.contains('+'), "no phone number: {text}");
        assert_eq!(
            daily_check_timer(Utc.with_ymd_and_hms(2026, 11, 14, 20, 0, 0).unwrap()),
            "wait for the daily check, 2026-11-14 22:00 Israel time"
        );
    }
}
