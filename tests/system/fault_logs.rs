//! Faults leave one structured line each in the real worker's log (`pcn-worker run`, JSON lines):
//! a month BLOCKED and resumed, a day's sweep retried and given up to MISSING, a slow bank — and a
//! slow bank never makes Temporal retry a sweep that is still fetching (the sweep heartbeats per
//! batch of accounts), so each account is asked once per day.

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use pcn_activities::carrier::CarrierKind;
use pcn_carrier_sim::SimConfig;
use pcn_tests::{
    TestCarrier, TestDb, WorkerProcess, spawn_sim, temporal_address, temporal_client,
    test_month_settings, unique_task_queue,
};
use pcn_worker::months::start_month;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{MonthPhase, MonthSettings, MonthlyQualificationWorkflow};
use temporalio_client::WorkflowSignalOptions;

fn log_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pcn-test-{name}-{}.log", std::process::id()))
}

/// The worker's JSON log lines whose message contains `what`.
fn lines(log: &PathBuf, what: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(what)))
        .collect()
}

/// Customers `0..n`, monitored only from `since` (earlier days have nobody to check).
async fn customers_since(db: &TestDb, n: u64, since: NaiveDate) {
    let customers: Vec<_> = (0..n).map(|i| pcn_tests::customer(i, since)).collect();
    pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &customers,
        "test",
    )
    .await
    .expect("seed customers");
}

async fn count(db: &TestDb, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn blocked_resumed_retried_and_given_up_each_leave_one_line() {
    pcn_tests::init();
    let n = 6;
    let month = YearMonth::parse("2020-04").unwrap();
    let db = TestDb::new().await;
    // Only the last three days have accounts to check.
    customers_since(&db, n, NaiveDate::from_ymd_opt(2020, 4, 28).unwrap()).await;
    let bank = spawn_sim(n, 5, Default::default()).await;
    bank.update_faults(|f| f.api_key = "rotated-key".into());
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig::default(),
    )
    .await;
    let queue = unique_task_queue("fault-logs");
    let log = log_path("fault-logs");
    let worker =
        WorkerProcess::start_logged(&queue, &db.url, &bank.base_url(), 4, &carrier, &[], &log);
    let client = temporal_client().await;
    let settings = MonthSettings {
        give_up_after_secs: 3,
        ..test_month_settings()
    };
    start_month(&client, &queue, month, settings).await.unwrap();

    // 1. The bank refuses our key: the sweep says so and the month is BLOCKED, once each.
    pcn_tests::wait_for_month(&client, month, Duration::from_secs(90), |p| {
        p.phase == MonthPhase::Blocked
    })
    .await;
    let refused = lines(&log, "the bank refused our credentials");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["level"], "ERROR");
    assert_eq!(refused[0]["date"], "2020-04-28");
    let blocked = lines(&log, "month BLOCKED");
    assert_eq!(blocked.len(), 1, "{blocked:?}");
    assert_eq!(blocked[0]["level"], "ERROR");
    assert_eq!(blocked[0]["month"], "2020-04");
    assert!(
        blocked[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("401"),
        "{blocked:?}"
    );

    // 2. The operator fixes the key while the bank is down for good, and resumes: every day with
    // accounts is retried, then given up to MISSING — a line for the resume, each failed
    // attempt, each retry and each give-up.
    bank.update_faults(|f| {
        f.api_key = "dev-bank-key".into();
        f.outage = true;
    });
    client
        .get_workflow_handle::<MonthlyQualificationWorkflow>(pcn_workflows::month::workflow_id(
            month,
        ))
        .signal(
            MonthlyQualificationWorkflow::resume,
            "key rotated".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    pcn_tests::wait_completed(&client, month, Duration::from_secs(180)).await;
    let missing = count(
        &db,
        "SELECT count(*) FROM balance_checks WHERE outcome = 'MISSING'",
    )
    .await;
    assert_eq!(missing, 3 * n as i64, "three days given up");
    // Let the worker flush its last lines.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let resumed = lines(&log, "month resumed by an operator");
    assert_eq!(resumed.len(), 1, "{resumed:?}");
    assert_eq!(resumed[0]["was"], "BLOCKED");
    assert_eq!(resumed[0]["reason"], "key rotated");
    let given_up = lines(&log, "daily sweep gave up");
    let days: Vec<_> = given_up
        .iter()
        .map(|l| l["date"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        days,
        ["2020-04-28", "2020-04-29", "2020-04-30"],
        "{given_up:?}"
    );
    assert!(
        given_up
            .iter()
            .all(|l| l["level"] == "ERROR" && l["missing"] == n && l["month"] == "2020-04")
    );
    let failed = lines(&log, "daily sweep attempt failed");
    assert!(!failed.is_empty(), "each unanswered attempt says so");
    assert!(
        failed
            .iter()
            .all(|l| l["level"] == "WARN" && l["unanswered"].as_u64().unwrap_or(0) > 0)
    );
    let retried = lines(&log, "daily sweep retried");
    assert!(!retried.is_empty(), "each retry says so");
    assert!(
        retried
            .iter()
            .all(|l| l["attempt"].as_u64().unwrap_or(0) > 1)
    );
    // Nothing in the log names a phone number, a key, a token or a secret.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.is_empty());
    for secret in [
        "+9725",
        "dev-bank-key",
        "rotated-key",
        "dev-carrier-key",
        "dev-webhook-secret",
        "dev-twilio-token",
    ] {
        assert!(!text.contains(secret), "{secret} in the worker log");
    }
    worker.kill_9();
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn a_slow_bank_is_logged_and_each_account_is_asked_once_per_day() {
    pcn_tests::init();
    let n = 16;
    let month = YearMonth::parse("2020-06").unwrap();
    let last = NaiveDate::from_ymd_opt(2020, 6, 30).unwrap();
    let db = TestDb::new().await;
    customers_since(&db, n, last).await;
    // 5.5 s per answer, 4 in flight: a page of 16 accounts takes 22 s, well past the 8 s
    // heartbeat timeout — a sweep that heartbeat only per page would be retried while still
    // fetching, and would ask the bank twice.
    let bank = spawn_sim(
        n,
        6,
        pcn_bank_sim::Faults {
            latency_ms: 5_500,
            ..Default::default()
        },
    )
    .await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig::default(),
    )
    .await;
    let queue = unique_task_queue("slow-bank");
    let log = log_path("slow-bank");
    let worker = WorkerProcess::start_logged(
        &queue,
        &db.url,
        &bank.base_url(),
        4,
        &carrier,
        &[("PCN_BANK_TIMEOUT_SECS", "30")],
        &log,
    );
    let client = temporal_client().await;
    let settings = MonthSettings {
        sweep_heartbeat_timeout_secs: 8,
        ..test_month_settings()
    };
    start_month(&client, &queue, month, settings).await.unwrap();
    pcn_tests::wait_completed(&client, month, Duration::from_secs(180)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stats = bank.stats();
    assert_eq!(stats.total, n, "one request per account-day: {stats:?}");
    for i in 0..n {
        assert_eq!(bank.requests_for(i, last), 1, "account {i}");
    }
    let slow = lines(&log, "bank slow");
    assert!(!slow.is_empty(), "a slow bank is logged");
    assert!(slow.iter().all(|l| l["level"] == "WARN"
        && l["date"] == "2020-06-30"
        && l["slowest_batch_secs"].as_f64().unwrap_or(0.0) > 5.0));
    assert!(
        lines(&log, "daily sweep retried").is_empty(),
        "no attempt was retried"
    );
    worker.kill_9();
    let _ = std::fs::remove_file(&log);
}
