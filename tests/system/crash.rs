//! kill -9 of the real worker process in the middle of a daily sweep: after a restart every
//! customer has exactly one check for that day (and every other), nobody skipped.

use std::time::Duration;

use chrono::NaiveDate;
use pcn_bank_sim::Faults;
use pcn_tests::{
    TestDb, WorkerProcess, spawn_sim, temporal_client, unique_task_queue, wait_completed,
};
use pcn_worker::months::start_month;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::MonthSettings;

async fn rows_for(pool: &sqlx::PgPool, date: NaiveDate) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM balance_checks WHERE business_date = $1")
        .bind(date)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_worker_killed_mid_sweep_leaves_exactly_one_check_per_customer_and_day() {
    pcn_tests::init();
    let n: u64 = 1_500;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(
        n,
        23,
        Faults {
            latency_ms: 15,
            ..Faults::default()
        },
    )
    .await;
    let queue = unique_task_queue("crash");
    let client = temporal_client().await;
    let month = YearMonth::parse("2025-11").unwrap();
    let first_day = month.first_day().as_naive();
    let settings = MonthSettings {
        sweep_heartbeat_timeout_secs: 3,
        ..pcn_tests::test_month_settings()
    };
    start_month(&client, &queue, month, settings).await.unwrap();
    let carrier = pcn_tests::TestCarrier::start(
        &db.pool,
        &pcn_tests::temporal_address(),
        pcn_activities::carrier::CarrierKind::Generic,
        Default::default(),
    )
    .await;

    let worker = WorkerProcess::start(&queue, &db.url, &sim.base_url(), 8, &carrier);
    // Wait until the first day's sweep is under way, then kill -9.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = rows_for(&db.pool, first_day).await;
        if rows >= 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sweep never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.kill_9();
    let at_kill = rows_for(&db.pool, first_day).await;
    assert!(
        (200..n as i64).contains(&at_kill),
        "killed mid-sweep: {at_kill} of {n} rows"
    );

    // Restart (and let the rest of the month go fast).
    sim.update_faults(|f| f.latency_ms = 0);
    let worker = WorkerProcess::start(&queue, &db.url, &sim.base_url(), 32, &carrier);
    let progress = wait_completed(&client, month, Duration::from_secs(300)).await;
    drop(worker);

    assert_eq!(progress.days_done, 30);
    let (rows, distinct, missing): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT (customer_id, business_date)),
                count(*) FILTER (WHERE outcome = 'MISSING')
           FROM balance_checks",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows, n as i64 * 30, "every customer, every day");
    assert_eq!(distinct, rows, "no day written twice");
    assert_eq!(missing, 0);
    let per_day: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM balance_checks GROUP BY business_date ORDER BY business_date",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(per_day.iter().all(|&c| c == n as i64), "{per_day:?}");
    let audits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'DAILY_SWEEP_COMPLETED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(audits, 30, "one audit entry per day despite the retry");
    let mut want: Vec<String> = sim
        .scenario()
        .qualified_accounts(month.year(), month.month())
        .into_iter()
        .map(pcn_bank_sim::customer_id)
        .collect();
    want.sort();
    assert_eq!(pcn_tests::qualified_in_db(&db.pool, month).await, want);
}
