//! `month watch`: poll GetMonth until the month ends, as a progress bar on a terminal or as one
//! line per change otherwise.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pcn_proto::v1::{GetMonthRequest, Month, MonthPhase};
use tonic::{Code, Status};

use crate::api::Api;
use crate::enums::name;
use crate::exit::MonthNotCompleted;
use crate::output::{self, Format};
use crate::render::{self, final_notifications};

/// Polls failing with UNAVAILABLE or DEADLINE_EXCEEDED in a row before giving up (a restarting
/// server should not end a watch that may last the whole month).
const MAX_FAILED_POLLS: u32 = 10;

/// What the bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Days swept of the month's days.
    Days,
    /// Notifications in a final status of all notifications.
    Notifications,
}

/// What a watch shows of a month; a new line is printed when it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    phase: String,
    stage: Stage,
    done: u64,
    total: u64,
    blocked_reason: String,
    /// What did not answer (GetMonth's `degraded`).
    degraded: String,
}

impl Progress {
    fn of(m: &Month) -> Self {
        let notifications = m.notifications.unwrap_or_default();
        let phase = MonthPhase::try_from(m.phase).unwrap_or_default();
        // Once notifications exist the days are over; a pause while notifying stays there.
        let notifying = matches!(phase, MonthPhase::Notifying | MonthPhase::Completed)
            || notifications.total > 0;
        let (stage, done, total) = if notifying {
            (
                Stage::Notifications,
                final_notifications(&notifications),
                notifications.total,
            )
        } else {
            (Stage::Days, u64::from(m.days_done), u64::from(m.days_total))
        };
        Self {
            phase: name::<MonthPhase>(m.phase),
            stage,
            done,
            total,
            blocked_reason: m.blocked_reason.clone(),
            degraded: m.degraded.clone(),
        }
    }

    fn unit(&self) -> &'static str {
        match self.stage {
            Stage::Days => "days swept",
            Stage::Notifications => "notifications final",
        }
    }

    /// The line of the line-per-change output.
    fn line(&self, m: &Month) -> String {
        let mut line = format!(
            "{} {} {} {}/{} {}",
            if m.as_of.is_empty() { "-" } else { &m.as_of },
            m.month,
            self.phase,
            self.done,
            self.total,
            self.unit()
        );
        if !self.blocked_reason.is_empty() {
            line.push_str(&format!(": {}", self.blocked_reason));
        }
        if !self.degraded.is_empty() {
            line.push_str(&format!(" (note: {})", self.degraded));
        }
        line
    }
}

/// How the watch ends, once the month is in a phase it will not leave by itself.
fn ending(m: &Month) -> Option<Result<(), MonthNotCompleted>> {
    let phase = MonthPhase::try_from(m.phase).ok()?;
    match phase {
        MonthPhase::Completed => Some(Ok(())),
        MonthPhase::Cancelled | MonthPhase::Failed | MonthPhase::Blocked => {
            Some(Err(MonthNotCompleted {
                month: m.month.clone(),
                phase: name::<MonthPhase>(m.phase),
                reason: m.blocked_reason.clone(),
            }))
        }
        MonthPhase::Unspecified
        | MonthPhase::Monitoring
        | MonthPhase::Paused
        | MonthPhase::Qualifying
        | MonthPhase::Notifying => None,
    }
}

/// Where progress goes.
enum View {
    Bar(ProgressBar),
    Lines {
        format: Format,
        last_progress: Option<Progress>,
        last_month: Option<Box<Month>>,
    },
}

impl View {
    fn new(format: Format) -> Self {
        if format == Format::Text && std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} {prefix}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            Self::Bar(bar)
        } else {
            Self::Lines {
                format,
                last_progress: None,
                last_month: None,
            }
        }
    }

    fn show(&mut self, m: &Month) -> std::io::Result<()> {
        let progress = Progress::of(m);
        match self {
            Self::Bar(bar) => {
                bar.set_prefix(progress.unit());
                bar.set_message(if progress.degraded.is_empty() {
                    progress.phase
                } else {
                    format!("{} (last known; {})", progress.phase, progress.degraded)
                });
                bar.update(|state| {
                    state.set_len(progress.total);
                    state.set_pos(progress.done);
                });
                // The setters above may each be rate-limited; show the whole new state now.
                bar.force_draw();
            }
            Self::Lines {
                format: Format::Text,
                last_progress,
                ..
            } => {
                if last_progress.as_ref() != Some(&progress) {
                    output::write(format!("{}\n", progress.line(m)))?;
                    *last_progress = Some(progress);
                }
            }
            Self::Lines {
                format: Format::Json,
                last_month,
                ..
            } => {
                // `as_of` changes on every poll; only a change of the figures is news.
                let figures = Box::new(Month {
                    as_of: String::new(),
                    ..m.clone()
                });
                if last_month.as_ref() != Some(&figures) {
                    output::write(format!("{}\n", crate::json::month(m)))?;
                    *last_month = Some(figures);
                }
            }
        }
        Ok(())
    }

    fn warn(&self, message: &str) {
        match self {
            Self::Bar(bar) => bar.println(format!("warning: {message}")),
            Self::Lines { .. } => eprintln!("warning: {message}"),
        }
    }

    fn finish(self, m: &Month, completed: bool) -> std::io::Result<()> {
        if let Self::Bar(bar) = self {
            let phase = name::<MonthPhase>(m.phase);
            if completed {
                bar.finish_with_message(phase);
                output::write(format!("\n{}", render::month(m)))?;
            } else {
                bar.abandon_with_message(phase);
            }
        }
        Ok(())
    }

    fn abandon(self) {
        if let Self::Bar(bar) = self {
            bar.abandon();
        }
    }
}

/// Follows `month` until COMPLETED (Ok) or CANCELLED, FAILED or BLOCKED (a `MonthNotCompleted`
/// error, exit 8). The first poll's error is returned as is (NOT_FOUND for a month never
/// started); later UNAVAILABLE or DEADLINE_EXCEEDED polls are retried.
pub async fn run(api: &Api, format: Format, month: &str, interval: Duration) -> anyhow::Result<()> {
    let mut view = View::new(format);
    let mut seen = false;
    let mut failed_polls = 0;
    loop {
        let request = api.request(GetMonthRequest {
            month: month.to_owned(),
        });
        match api.call(api.client().get_month(request)).await {
            Ok(m) => {
                seen = true;
                failed_polls = 0;
                view.show(&m)?;
                if let Some(end) = ending(&m) {
                    view.finish(&m, end.is_ok())?;
                    return end.map_err(anyhow::Error::new);
                }
            }
            Err(status) if seen && retryable(&status) && failed_polls < MAX_FAILED_POLLS => {
                failed_polls += 1;
                view.warn(&format!(
                    "{} ({failed_polls} of {MAX_FAILED_POLLS} failed polls in a row)",
                    crate::exit::describe(&anyhow::Error::new(status))
                ));
            }
            Err(status) => {
                view.abandon();
                return Err(status.into());
            }
        }
        tokio::time::sleep(interval).await;
    }
}

fn retryable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcn_proto::v1::NotificationCounts;

    fn month(phase: MonthPhase) -> Month {
        Month {
            month: "2026-10".into(),
            phase: phase as i32,
            days_total: 31,
            days_done: 12,
            as_of: "2026-10-12T21:00:00Z".into(),
            ..Month::default()
        }
    }

    #[test]
    fn while_monitoring_the_bar_counts_days_swept() {
        let progress = Progress::of(&month(MonthPhase::Monitoring));
        assert_eq!(
            (progress.stage, progress.done, progress.total),
            (Stage::Days, 12, 31)
        );
        assert_eq!(
            progress.line(&month(MonthPhase::Monitoring)),
            "2026-10-12T21:00:00Z 2026-10 MONITORING 12/31 days swept"
        );
    }

    #[test]
    fn while_notifying_the_bar_counts_final_notifications() {
        let m = Month {
            notifications: Some(NotificationCounts {
                total: 10,
                submitted: 4,
                delivered: 5,
                failed: 1,
                ..NotificationCounts::default()
            }),
            ..month(MonthPhase::Paused)
        };
        let progress = Progress::of(&m);
        assert_eq!(
            (progress.stage, progress.done, progress.total),
            (Stage::Notifications, 6, 10)
        );
    }

    #[test]
    fn the_watch_ends_on_completed_cancelled_failed_and_blocked_only() {
        assert!(ending(&month(MonthPhase::Monitoring)).is_none());
        assert!(ending(&month(MonthPhase::Paused)).is_none());
        assert!(matches!(
            ending(&month(MonthPhase::Completed)),
            Some(Ok(()))
        ));
        for phase in [
            MonthPhase::Cancelled,
            MonthPhase::Failed,
            MonthPhase::Blocked,
        ] {
            assert!(matches!(ending(&month(phase)), Some(Err(_))), "{phase:?}");
        }
    }
}
