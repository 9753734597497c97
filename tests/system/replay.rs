//! Replay of saved workflow histories (written by the Rust client from real runs): a change to the
//! workflow code that is not replay-compatible fails here, in CI, before it reaches a running month.
//!
//! Regenerate the fixtures with `PCN_WRITE_FIXTURES=1 make test` after a deliberate, versioned
//! (`ctx.patched`) change.

use std::path::PathBuf;

use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{
    MonthInput, MonthOutcome, MonthlyQualificationWorkflow, ScheduledMonthStart,
};
use pcn_workflows::sms::SmsNotificationWorkflow;
use temporalio_client::{Client, WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/histories")
}

/// Replays `json` against the current workflow code, decoding its payloads with the suite's
/// (development) payload keys; payloads recorded before the codec pass through as they are.
pub async fn replay_current(json: &[u8]) -> Result<(), String> {
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .data_converter(pcn_tests::payload_codec().data_converter())
            .register_workflow::<MonthlyQualificationWorkflow>()
            .map_err(|e| e.to_string())?
            .register_workflow::<ScheduledMonthStart>()
            .map_err(|e| e.to_string())?
            .register_workflow::<SmsNotificationWorkflow>()
            .map_err(|e| e.to_string())?
            .build(),
    )
    .map_err(|e| e.to_string())?;
    let history = WorkflowHistory::from_json(json).map_err(|e| e.to_string())?;
    replayer
        .replay_workflow(history)
        .await
        .map_err(|e| format!("{e:?}"))
}

/// [`check_and_maybe_save_workflow`] for the month run of `month`.
pub async fn check_and_maybe_save(client: &Client, month: YearMonth, fixture: &str) {
    check_and_maybe_save_workflow(client, &pcn_workflows::month::workflow_id(month), fixture).await;
}

/// Fetches the history of a finished run, checks that it replays and that it asked no patch
/// after a local activity (see `pcn_workflows::month::PATCH_DECIDED_FIRST`), and saves it as a
/// fixture when `PCN_WRITE_FIXTURES` is set.
pub async fn check_and_maybe_save_workflow(client: &Client, workflow_id: &str, fixture: &str) {
    let handle = client.get_workflow_handle::<MonthlyQualificationWorkflow>(workflow_id.to_owned());
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::builder().build())
        .to_json()
        .await
        .expect("history");
    replay_current(&json)
        .await
        .expect("a fresh history replays");
    assert_eq!(
        pcn_tests::history_dump::patches_after_a_local_activity(&json),
        Vec::<String>::new(),
        "{workflow_id}: a patch first asked after a local activity can answer otherwise on replay"
    );
    if std::env::var_os("PCN_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(fixtures()).unwrap();
        std::fs::write(fixtures().join(fixture), &json).unwrap();
    }
}

#[tokio::test]
async fn saved_month_histories_replay_on_the_current_code() {
    let mut replayed = 0;
    let mut encrypted = 0;
    for entry in std::fs::read_dir(fixtures()).expect("fixtures folder") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let json = std::fs::read(&path).unwrap();
            // base64 of `binary/encrypted`: a history recorded with the payload codec.
            if String::from_utf8_lossy(&json).contains("YmluYXJ5L2VuY3J5cHRlZA==") {
                encrypted += 1;
            }
            replay_current(&json)
                .await
                .unwrap_or_else(|e| panic!("{} no longer replays: {e}", path.display()));
            replayed += 1;
        }
    }
    assert!(replayed >= 2, "fixtures present: {replayed}");
    assert!(
        encrypted >= 1,
        "no fixture was recorded with the payload codec (tests/system/codec.rs writes one)"
    );
}

/// Recorded by the month code before [`PATCH_DECIDED_FIRST`] in a full-suite run: the test's
/// progress queries raced the last `CountNotifications` local activity, so its marker (event
/// 327) and the `report-delivery` patch marker (331) landed in different workflow tasks. Live,
/// the workflow saw the count in the second task and asked the patch there; on replay the core
/// hands it the count in the first, where the patch marker is not yet in sight. This is why the
/// month run now decides its patches first; the history stays unreplayable.
///
/// [`PATCH_DECIDED_FIRST`]: pcn_workflows::month::PATCH_DECIDED_FIRST
#[tokio::test]
async fn a_patch_first_asked_after_a_raced_local_activity_does_not_replay() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/unreplayable/month-report-patch-after-raced-query.json");
    let json = std::fs::read(&path).expect("the saved history");
    assert_eq!(
        pcn_tests::history_dump::patches_after_a_local_activity(&json),
        ["report-delivery"]
    );
    let err = replay_current(&json)
        .await
        .expect_err("this history's report-delivery patch answers false on replay");
    assert!(
        err.contains("TMPRL1100") && err.contains("report-delivery"),
        "{err}"
    );
}

#[tokio::test]
async fn an_encrypted_fixture_does_not_replay_without_its_key() {
    let json = std::fs::read(fixtures().join("sms-encrypted-2025-12.json"))
        .expect("fixture sms-encrypted-2025-12.json (tests/system/codec.rs)");
    let other_key = pcn_activities::keyring::Keyring::parse(
        "PCN_PAYLOAD_KEYS",
        "k9:CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    )
    .unwrap();
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .data_converter(pcn_worker::codec::PayloadEncryption::new(other_key).data_converter())
            .register_workflow::<SmsNotificationWorkflow>()
            .unwrap()
            .build(),
    )
    .unwrap();
    let history = WorkflowHistory::from_json(&json).unwrap();
    let err = replayer
        .replay_workflow(history)
        .await
        .expect_err("a history sealed with dev1 must not replay with only k9 on the ring");
    let err = format!("{err:?}");
    assert!(err.contains("`dev1`"), "{err}");
}

/// A stand-in with the same type name but different steps: what a careless edit looks like.
#[workflow]
#[derive(Default)]
struct AlteredMonth;

#[workflow_methods]
impl AlteredMonth {
    #[run(name = "MonthlyQualificationWorkflow")]
    async fn run(
        _ctx: &mut WorkflowContext<Self>,
        input: MonthInput,
    ) -> WorkflowResult<MonthOutcome> {
        Ok(MonthOutcome {
            month: input.month,
            days_swept: 0,
            qualification: Default::default(),
            notifications: None,
        })
    }
}

#[tokio::test]
async fn a_changed_workflow_is_caught_as_nondeterministic() {
    let path = fixtures().join("month-2026-10.json");
    let json = std::fs::read(&path).expect("fixture month-2026-10.json");
    let replayer = WorkflowReplayer::new(
        WorkflowReplayerOptions::new()
            .register_workflow::<AlteredMonth>()
            .unwrap()
            .build(),
    )
    .unwrap();
    let history = WorkflowHistory::from_json(&json).unwrap();
    let result = replayer.replay_workflow(history).await;
    assert!(
        result.is_err(),
        "an altered workflow must not replay the saved history"
    );
}
