//! Whole months end to end: the month workflow on the dev server, the real worker, the bank
//! simulator over HTTP, Postgres.

use std::collections::BTreeSet;
use std::time::Duration;

use pcn_bank_sim::{Faults, SimOutcome};
use pcn_tests::{
    InProcessWorker, TestDb, spawn_sim, temporal_client, test_month_settings, unique_task_queue,
    wait_completed, wait_for_month,
};
use pcn_worker::months::{StartOutcome, start_month};
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{MonthPhase, MonthlyQualificationWorkflow};
use temporalio_client::WorkflowSignalOptions;

/// What the month should decide, computed straight from the simulator's scenario.
fn expected_qualified(sim: &pcn_bank_sim::SimHandle, month: YearMonth) -> Vec<String> {
    let mut ids: Vec<String> = sim
        .scenario()
        .qualified_accounts(month.year(), month.month())
        .into_iter()
        .map(pcn_bank_sim::customer_id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_backfilled_month_decides_what_an_independent_computation_decides() {
    pcn_tests::init();
    let n = 300;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 7, Faults::default()).await;
    let queue = unique_task_queue("backfill");
    let worker = InProcessWorker::for_test(&queue, &db, &sim);
    let client = temporal_client().await;
    // The month of the autumn DST change (Israel falls back on 2026-10-25).
    let month = YearMonth::parse("2026-10").unwrap();
    let started = start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    assert!(matches!(started, StartOutcome::Started { .. }));
    let progress = wait_completed(&client, month, Duration::from_secs(180)).await;
    let id = pcn_workflows::month::workflow_id(month);
    let now = pcn_tests::month_current_details(&client, &id).await;
    let q = progress.qualification.clone().unwrap();
    assert!(
        now.starts_with("**COMPLETED** — 31 of 31 days swept"),
        "{now}"
    );
    assert!(
        now.contains(&format!("**{} of {} qualified**", q.qualified, q.customers)),
        "{now}"
    );
    worker.stop();
    crate::replay::check_and_maybe_save(&client, month, "month-2026-10-sms.json").await;

    assert_eq!(progress.days_done, 31);
    let decided = pcn_tests::qualified_in_db(&db.pool, month).await;
    let want = expected_qualified(&sim, month);
    assert_eq!(decided, want);
    assert!(!want.is_empty() && want.len() < n as usize);
    let q = progress.qualification.unwrap();
    assert_eq!(q.customers, n);
    assert_eq!(q.qualified, want.len() as u64);

    // Every customer has exactly one check per day, and each outcome is what the bank said.
    let rows: Vec<(
        String,
        chrono::NaiveDate,
        String,
        Option<rust_decimal::Decimal>,
    )> = sqlx::query_as(
        "SELECT customer_id, business_date, outcome, amount FROM balance_checks
              WHERE business_date BETWEEN '2026-10-01' AND '2026-10-31'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows.len() as u64, n * 31);
    let distinct: BTreeSet<_> = rows.iter().map(|r| (r.0.clone(), r.1)).collect();
    assert_eq!(distinct.len(), rows.len());
    for (customer_id, date, outcome, amount) in &rows {
        let i: u64 = customer_id[1..].parse().unwrap();
        let want = match sim.scenario().outcome(i, *date) {
            SimOutcome::Balance {
                amount: a,
                currency,
            } if currency == "NIS" => {
                assert_eq!(amount.as_ref(), Some(&a), "{customer_id} {date}");
                if a >= rust_decimal_macros::dec!(15000.00) {
                    "PASSED"
                } else {
                    "BELOW_THRESHOLD"
                }
            }
            SimOutcome::Balance { .. } | SimOutcome::Malformed => "INVALID_RESPONSE",
            SimOutcome::NotFound => "ACCOUNT_NOT_FOUND",
        };
        assert_eq!(outcome, want, "{customer_id} {date}");
    }

    let sweeps: i64 = sqlx::query_scalar("SELECT count(*) FROM daily_sweeps")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(sweeps, 31);
}

#[tokio::test]
async fn the_same_month_started_twice_runs_once() {
    pcn_tests::init();
    let n = 40;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 11, Faults::default()).await;
    let queue = unique_task_queue("twice");
    let client = temporal_client().await;
    // A month no other test uses on the shared dev server.
    let month = YearMonth::parse("2025-02").unwrap();
    let first = start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    let second = start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    assert!(matches!(first, StartOutcome::Started { .. }));
    assert_eq!(second, StartOutcome::AlreadyStarted);

    let worker = InProcessWorker::for_test(&queue, &db, &sim);
    wait_completed(&client, month, Duration::from_secs(120)).await;
    // Even after it completed, the business id refuses a second run.
    let third = start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    assert_eq!(third, StartOutcome::AlreadyStarted);
    worker.stop();

    let runs: i64 = sqlx::query_scalar("SELECT count(DISTINCT run_id) FROM balance_checks")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(runs, 1);
    let per_day_max: i64 = sqlx::query_scalar(
        "SELECT max(c) FROM (SELECT count(*) c FROM balance_checks GROUP BY customer_id, business_date) t",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(per_day_max, 1);
    // The bank was asked about each account-day once: nothing ran twice.
    let stats = sim.stats();
    assert_eq!(stats.total, n * 28);
}

#[tokio::test]
async fn bank_503_bursts_and_timeouts_are_retried_to_success_and_404s_recorded() {
    pcn_tests::init();
    let n = 120;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 13, Faults::default()).await;
    sim.set_faults(Faults {
        error_503_ppm: 250_000,
        hang_ppm: 20_000,
        hang_ms: 3_000, // longer than the client's 2 s timeout
        ..Faults::default()
    });
    let queue = unique_task_queue("faults");
    let worker = InProcessWorker::for_test(&queue, &db, &sim);
    let client = temporal_client().await;
    let month = YearMonth::parse("2025-04").unwrap();
    start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    let progress = wait_completed(&client, month, Duration::from_secs(240)).await;
    worker.stop();

    let (missing, not_found, total): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'MISSING'),
                count(*) FILTER (WHERE outcome = 'ACCOUNT_NOT_FOUND'),
                count(*)
           FROM balance_checks",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(total as u64, n * 30, "every account-day recorded once");
    assert_eq!(
        missing, 0,
        "transient faults were retried, not recorded as missing"
    );
    let unknown = (0..n)
        .filter(|&i| sim.scenario().profile(i) == pcn_bank_sim::Profile::Unknown)
        .count() as i64;
    assert!(unknown > 0, "the population has unknown accounts");
    assert_eq!(not_found, unknown * 30);
    let stats = sim.stats();
    assert!(stats.status(503) > 0, "faults were injected");
    assert!(
        stats.total > n * 30,
        "retries happened: {} requests",
        stats.total
    );
    assert_eq!(
        pcn_tests::qualified_in_db(&db.pool, month).await,
        expected_qualified(&sim, month)
    );
    assert_eq!(progress.qualification.unwrap().customers, n);
}

#[tokio::test]
async fn a_401_blocks_the_month_visibly_until_an_operator_resumes_it() {
    pcn_tests::init();
    let n = 30;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 17, Faults::default()).await;
    sim.update_faults(|f| f.api_key = "rotated-key".into());
    let queue = unique_task_queue("auth");
    let worker = InProcessWorker::for_test(&queue, &db, &sim);
    let client = temporal_client().await;
    let month = YearMonth::parse("2025-06").unwrap();
    start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    let blocked = wait_for_month(&client, month, Duration::from_secs(60), |p| {
        p.phase == MonthPhase::Blocked
    })
    .await;
    let reason = blocked.blocked_reason.unwrap();
    assert!(reason.contains("401"), "{reason}");
    assert_eq!(blocked.days_done, 0);
    // The Web UI's current details say why and what to do.
    let id = pcn_workflows::month::workflow_id(month);
    let now = pcn_tests::month_current_details(&client, &id).await;
    assert!(now.starts_with("**BLOCKED**"), "{now}");
    assert!(now.contains("401"), "{now}");
    assert!(now.contains("pcnctl month resume 2025-06"), "{now}");
    let checks: i64 = sqlx::query_scalar("SELECT count(*) FROM balance_checks")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(checks, 0, "nothing recorded with refused credentials");

    // The operator fixes the credentials and resumes.
    sim.update_faults(|f| f.api_key = "dev-bank-key".into());
    client
        .get_workflow_handle::<MonthlyQualificationWorkflow>(pcn_workflows::month::workflow_id(
            month,
        ))
        .signal(
            MonthlyQualificationWorkflow::resume,
            "credentials rotated".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let done = wait_completed(&client, month, Duration::from_secs(120)).await;
    worker.stop();
    crate::replay::check_and_maybe_save(&client, month, "month-blocked-then-resumed-sms.json")
        .await;
    assert_eq!(done.days_done, 30);
    assert_eq!(done.blocked_reason, None);
}

#[tokio::test]
async fn pause_holds_the_next_day_and_resume_continues() {
    pcn_tests::init();
    let n = 10;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 19, Faults::default()).await;
    let queue = unique_task_queue("pause");
    let client = temporal_client().await;
    let month = YearMonth::parse("2025-09").unwrap();
    start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    let handle = client.get_workflow_handle::<MonthlyQualificationWorkflow>(
        pcn_workflows::month::workflow_id(month),
    );
    // Paused before any worker picks it up: no day may run.
    handle
        .signal(
            MonthlyQualificationWorkflow::pause,
            "maintenance".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let worker = InProcessWorker::for_test(&queue, &db, &sim);
    let paused = wait_for_month(&client, month, Duration::from_secs(30), |p| {
        p.phase == MonthPhase::Paused
    })
    .await;
    assert!(
        paused.days_done <= 1,
        "at most the day already under way ran"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = pcn_worker::months::progress(&client, month).await.unwrap();
    assert_eq!(
        still.days_done, paused.days_done,
        "nothing ran while paused"
    );
    handle
        .signal(
            MonthlyQualificationWorkflow::resume,
            "done".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let done = wait_completed(&client, month, Duration::from_secs(120)).await;
    worker.stop();
    assert_eq!(done.days_done, 30);
}
