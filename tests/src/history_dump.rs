//! A workflow history a test could not replay, kept for diagnosis: the whole history saved as
//! JSON (the format the replay fixtures use) and a one-line-per-event listing short enough to
//! go into a failure message, so a CI log alone shows what the worker met.

use std::fmt::Write as _;
use std::path::PathBuf;

use pcn_workflows::month::MonthlyQualificationWorkflow;
use temporalio_client::{Client, WorkflowFetchHistoryOptions};
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

/// Where [`save`] writes: `$CARGO_TARGET_DIR` (or the system temp dir)
/// `/pcn-failed-histories`.
pub fn dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join("pcn-failed-histories")
}

/// Fetches `workflow_id`'s latest run, writes its JSON under [`dir`] and returns the path and
/// the listing of its events ([`listing`]). Never panics: a failure to fetch or write is
/// described in the returned text instead.
pub async fn save(client: &Client, workflow_id: &str) -> String {
    let handle = client.get_workflow_handle::<MonthlyQualificationWorkflow>(workflow_id.to_owned());
    let json = match handle
        .fetch_history(WorkflowFetchHistoryOptions::builder().build())
        .to_json()
        .await
    {
        Ok(json) => json,
        Err(e) => return format!("(history of {workflow_id} not fetched: {e})"),
    };
    let path = dir().join(format!(
        "{}-{}.json",
        workflow_id.replace(['/', ' '], "_"),
        std::process::id()
    ));
    let saved = std::fs::create_dir_all(dir())
        .and_then(|()| std::fs::write(&path, &json))
        .map(|()| format!("saved to {}", path.display()))
        .unwrap_or_else(|e| format!("not saved ({e})"));
    format!("history of {workflow_id} {saved}:\n{}", listing(&json))
}

/// One line per event of the history JSON `json`: id, type, and what tells commands apart
/// (marker names with their details, timer ids, activity types, task attempts and causes).
pub fn listing(json: &[u8]) -> String {
    let history: History = match serde_json::from_slice(json) {
        Ok(h) => h,
        Err(e) => return format!("(not a history: {e})"),
    };
    let mut out = String::new();
    for event in &history.events {
        let _ = write!(out, "{:>4} {:?}", event.event_id, event.event_type());
        match &event.attributes {
            Some(Attributes::MarkerRecordedEventAttributes(a)) => {
                let _ = write!(out, " {}", a.marker_name);
                let mut keys: Vec<_> = a.details.keys().collect();
                keys.sort();
                for key in keys {
                    if key == "result" {
                        continue;
                    }
                    for p in &a.details[key].payloads {
                        let text = String::from_utf8_lossy(&p.data);
                        let text: String = text.chars().take(160).collect();
                        let _ = write!(out, " {key}={text}");
                    }
                }
            }
            Some(Attributes::TimerStartedEventAttributes(a)) => {
                let _ = write!(
                    out,
                    " timer {} {:?}",
                    a.timer_id,
                    a.start_to_fire_timeout.map(|d| d.seconds)
                );
            }
            Some(Attributes::TimerFiredEventAttributes(a)) => {
                let _ = write!(out, " timer {}", a.timer_id);
            }
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                let name = a.activity_type.as_ref().map(|t| t.name.as_str());
                let _ = write!(out, " {} {:?}", a.activity_id, name);
            }
            Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) => {
                let _ = write!(out, " attempt {}", a.attempt);
            }
            Some(Attributes::WorkflowTaskTimedOutEventAttributes(a)) => {
                let _ = write!(out, " {:?}", a.timeout_type());
            }
            Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => {
                let message = a.failure.as_ref().map(|f| f.message.as_str());
                let _ = write!(out, " {:?} {:?}", a.cause(), message);
            }
            Some(Attributes::WorkflowTaskCompletedEventAttributes(a)) => {
                let _ = write!(out, " started {}", a.started_event_id);
            }
            _ => {}
        }
        out.push('\n');
    }
    out
}

/// The patch ids of the history JSON `json` whose markers come after its first local-activity
/// marker, in order. A patch first asked there can answer differently on replay (see
/// `pcn_workflows::month::PATCH_DECIDED_FIRST`); a month run recorded by the current code has
/// none.
pub fn patches_after_a_local_activity(json: &[u8]) -> Vec<String> {
    let history: History = serde_json::from_slice(json).expect("a history");
    let mut seen_local_activity = false;
    let mut late = Vec::new();
    for event in &history.events {
        let Some(Attributes::MarkerRecordedEventAttributes(a)) = &event.attributes else {
            continue;
        };
        match a.marker_name.as_str() {
            "core_local_activity" => seen_local_activity = true,
            "core_patch" if seen_local_activity => {
                let id = a
                    .details
                    .get("patch-data")
                    .and_then(|p| p.payloads.first())
                    .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p.data).ok())
                    .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| "(unreadable patch marker)".to_owned());
                late.push(id);
            }
            _ => {}
        }
    }
    late
}
