//! Operator-facing behaviour: the monthly schedule, the health and metrics endpoint, and bad
//! input at the command line.

use std::process::Command;

use pcn_tests::{TestDb, temporal_address, temporal_client, workspace_binary};
use pcn_worker::months::{ScheduleOutcome, apply_schedule};
use pcn_workflows::month::MonthSettings;

#[tokio::test]
async fn applying_the_schedule_twice_changes_nothing_the_second_time() {
    pcn_tests::init();
    let client = temporal_client().await;
    let queue = "pcn-schedule-test";
    let settings = MonthSettings::default();
    assert_eq!(
        apply_schedule(&client, queue, &settings).await.unwrap(),
        ScheduleOutcome::Created
    );
    assert_eq!(
        apply_schedule(&client, queue, &settings).await.unwrap(),
        ScheduleOutcome::Unchanged
    );
    let changed = MonthSettings {
        check_time: chrono::NaiveTime::from_hms_opt(21, 30, 0).unwrap(),
        ..settings
    };
    assert_eq!(
        apply_schedule(&client, queue, &changed).await.unwrap(),
        ScheduleOutcome::Updated
    );
    assert_eq!(
        apply_schedule(&client, queue, &changed).await.unwrap(),
        ScheduleOutcome::Unchanged
    );
    let description = client
        .get_schedule_handle(pcn_worker::months::SCHEDULE_ID)
        .describe(Default::default())
        .await
        .unwrap();
    let next = description.future_action_times();
    assert!(!next.is_empty(), "the schedule has upcoming runs");
    for at in next {
        let local = chrono::DateTime::<chrono::Utc>::from(at)
            .with_timezone(&pcn_workflows::domain::JERUSALEM);
        assert_eq!(
            local.format("%d %H:%M").to_string(),
            "01 00:00",
            "fires at midnight of the 1st, Israel time"
        );
    }
}

#[tokio::test]
async fn the_ops_endpoint_reports_health_readiness_and_metrics() {
    pcn_tests::init();
    let db = TestDb::new().await;
    let metrics = pcn_activities::metrics::Metrics::new();
    metrics.checks.with_label_values(&["PASSED"]).inc_by(3);
    let (addr, task) = pcn_worker::http::serve(
        "127.0.0.1:0".parse().unwrap(),
        db.pool.clone(),
        metrics.clone(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("http://{addr}{path}")).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let body = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        body.contains("pcn_balance_checks_total{outcome=\"PASSED\"} 3"),
        "{body}"
    );
    db.pool.close().await;
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    task.abort();
}

fn pcn_worker(args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(workspace_binary("pcn-worker"));
    // Real (not development) keys, so that each case meets the setting it is about first.
    command
        .args(args)
        .env("PCN_TEMPORAL_ADDRESS", temporal_address())
        .env("PCN_PAYLOAD_KEYS", TEST_KEYS[0])
        .env("PCN_PHONE_KEYS", TEST_KEYS[1])
        .env("PCN_PHONE_INDEX_KEY", TEST_KEYS[2]);
    for (k, v) in envs {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Keys for the production-profile cases: payloads, phones, the phones' blind index.
const TEST_KEYS: [&str; 3] = [
    "p1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
    "k1:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
    "i1:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
];

/// Bad month settings are refused by the commands that take them, before they connect to
/// anything; a bad month name is the control API's to refuse (tests/system/api.rs).
#[tokio::test]
async fn bad_input_at_the_command_line_names_the_field() {
    pcn_tests::init();
    for (args, envs, field) in [
        (
            vec!["schedule"],
            vec![("PCN_THRESHOLD", "15,000")],
            "threshold",
        ),
        (vec!["schedule"], vec![("PCN_THRESHOLD", "-1")], "threshold"),
        (
            vec!["schedule"],
            vec![("PCN_CHECK_TIME", "10pm")],
            "check_time",
        ),
        (vec!["api"], vec![("PCN_THRESHOLD", "-1")], "threshold"),
        (
            vec!["run"],
            vec![("PCN_BANK_URL", "bank.internal")],
            "bank_url",
        ),
        // Production (the default profile): a secret left unset, or left at its development
        // value, is refused, naming the setting and never echoing the value.
        (
            vec!["run"],
            vec![("PCN_PROFILE", "production")],
            "bank_api_key: is not set: set PCN_BANK_API_KEY or PCN_BANK_API_KEY_FILE",
        ),
        (
            vec!["run"],
            vec![
                ("PCN_PROFILE", "production"),
                ("PCN_BANK_API_KEY", "dev-bank-key"),
            ],
            "bank_api_key: is the development value",
        ),
        (
            vec!["run"],
            vec![
                ("PCN_PROFILE", "production"),
                ("PCN_BANK_API_KEY", "real-bank-key"),
            ],
            "bank_url: is http://: production talks to the bank over TLS",
        ),
        (
            vec!["run"],
            vec![
                ("PCN_PROFILE", "production"),
                ("PCN_BANK_API_KEY", "real-bank-key"),
                ("PCN_BANK_URL", "https://core-banking.internal"),
            ],
            "carrier_api_key: is not set",
        ),
        (
            vec!["run"],
            vec![
                ("PCN_BANK_URL", "https://core-banking.internal"),
                ("PCN_BANK_AUTH", "mtls"),
            ],
            "bank_client_cert: is needed with PCN_BANK_AUTH=mtls",
        ),
        (
            vec!["webhook"],
            vec![("PCN_PROFILE", "production")],
            "carrier_webhook_secret: is not set",
        ),
        (
            vec!["webhook"],
            vec![
                ("PCN_PROFILE", "production"),
                ("PCN_CARRIER_WEBHOOK_SECRET", "a-real-webhook-secret"),
                ("PCN_TWILIO_AUTH_TOKEN", "a-real-twilio-token"),
                ("PCN_PHONE_KEYS", "k1:c2hvcnQ="),
            ],
            "phone_keys: PCN_PHONE_KEYS: key `k1` is 5 bytes",
        ),
        (
            vec!["run"],
            vec![
                ("PCN_PROFILE", "production"),
                (
                    "PCN_PAYLOAD_KEYS",
                    pcn_activities::keyring::development::PAYLOAD_KEYS,
                ),
            ],
            "payload_keys: is the development value",
        ),
        (
            vec!["webhook"],
            vec![
                ("PCN_PROFILE", "production"),
                ("PCN_CARRIER_WEBHOOK_SECRET_FILE", "/nonexistent/pcn-secret"),
            ],
            "carrier_webhook_secret: PCN_CARRIER_WEBHOOK_SECRET_FILE /nonexistent/pcn-secret cannot be read",
        ),
    ] {
        let (ok, stderr) = pcn_worker(&args, &envs);
        assert!(!ok, "{args:?} {envs:?} must fail");
        assert!(stderr.contains(field), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("dev-bank-key"),
            "a secret is never echoed: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_schedules_month_run_explains_itself_in_the_web_ui() {
    use pcn_workflows::month::{MonthlyQualificationWorkflow, ScheduledMonthStart};
    use temporalio_client::{
        WorkflowGetResultOptions, WorkflowStartOptions, WorkflowTerminateOptions,
    };
    pcn_tests::init();
    let db = TestDb::new().await;
    let bank = pcn_tests::spawn_sim(1, 1, Default::default()).await;
    let queue = pcn_tests::unique_task_queue("schedule-start");
    let worker = pcn_tests::InProcessWorker::for_test(&queue, &db, &bank);
    let client = temporal_client().await;
    // What the schedule starts on the 1st; its month run goes to the production task queue,
    // which no test worker polls: only its start is looked at here.
    let handle = client
        .start_workflow(
            ScheduledMonthStart::run,
            MonthSettings::default(),
            WorkflowStartOptions::new(queue.clone(), format!("schedule-start-{queue}")).build(),
        )
        .await
        .unwrap();
    let month_id = handle
        .get_result(WorkflowGetResultOptions::default())
        .await
        .unwrap();
    worker.stop();
    let month = client.get_workflow_handle::<MonthlyQualificationWorkflow>(month_id.clone());
    // The summary a workflow gives its child is encrypted by the codec like every payload: read it
    // as the Web UI does, through the codec (the SDK's own describe cannot, see describe_raw).
    let described = pcn_worker::temporal::describe_raw(&client, &month_id)
        .await
        .unwrap();
    let _ = month.terminate(WorkflowTerminateOptions::default()).await;
    let metadata = described
        .execution_config
        .and_then(|c| c.user_metadata)
        .expect("the month run has a summary");
    let open = |payload: Option<temporalio_common::protos::temporal::api::common::v1::Payload>| {
        let payload = payload.expect("summary and details are set");
        assert!(
            pcn_worker::codec::PayloadEncryption::is_encrypted(&payload),
            "stored encrypted"
        );
        let plain = pcn_tests::payload_codec().decode_one(payload).unwrap();
        serde_json::from_slice::<String>(&plain.data).unwrap()
    };
    let summary = open(metadata.summary);
    let details = open(metadata.details);
    let ym = month_id.trim_start_matches("qualification/");
    assert!(
        summary.starts_with(ym) && summary.contains("15000.00 NIS"),
        "{summary}"
    );
    assert!(
        details.contains(&format!("query=PcnMonth%3D%22{ym}%22")),
        "{details}"
    );
}
