//! A month through a kill -9 of its Temporal server (file-backed, its own) during the daily sweeps
//! and again while SMS go out and their callbacks arrive, and a kill -9 of the worker: afterwards
//! every customer-day was checked exactly once, the qualified customers are exactly an
//! independent recount, every qualified phone got exactly one message from a carrier that does
//! not deduplicate, every notification is final and no delivery event is left PENDING.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::NaiveDate;
use pcn_activities::carrier::CarrierKind;
use pcn_tests::dev_server::DevServer;
use pcn_tests::{TestCarrier, TestDb, WorkerProcess, unique_task_queue, wait_completed};
use pcn_worker::months::start_month;
use pcn_workflows::domain::YearMonth;

use crate::exactly_once::{assert_exactly_once, crash_month_settings, resolutions, slow_carrier};

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn wait_rows(pool: &sqlx::PgPool, sql: &str, at_least: i64, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while count(pool, sql).await < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never reached: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Balance checks exactly once per customer and day of `month`, and the qualified customers
/// recounted in Rust from the raw checks equal the decisions.
pub async fn assert_checks_and_decisions(db: &TestDb, month: YearMonth, customers: u64) {
    let first = month.first_day().as_naive();
    let rows: Vec<(String, NaiveDate, String)> = sqlx::query_as(
        "SELECT customer_id, business_date, outcome FROM balance_checks
          WHERE business_date BETWEEN $1 AND $2",
    )
    .bind(first)
    .bind(month.last_day().as_naive())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let days = u64::from(month.num_days());
    assert_eq!(
        rows.len() as u64,
        customers * days,
        "one check per customer-day"
    );
    let mut passed: HashMap<&str, BTreeSet<NaiveDate>> = HashMap::new();
    let mut seen = BTreeSet::new();
    for (customer, date, outcome) in &rows {
        assert!(
            seen.insert((customer, date)),
            "{customer} {date} checked twice"
        );
        if outcome == "PASSED" {
            passed.entry(customer).or_default().insert(*date);
        }
    }
    let recount: BTreeSet<String> = passed
        .into_iter()
        .filter(|(_, dates)| dates.len() as u64 == days)
        .map(|(c, _)| c.to_owned())
        .collect();
    let decided: BTreeSet<String> = pcn_tests::qualified_in_db(&db.pool, month)
        .await
        .into_iter()
        .collect();
    assert_eq!(decided, recount, "qualified = independent recount");
}

#[tokio::test]
async fn a_month_survives_kill_9_of_its_temporal_server_and_of_the_worker() {
    pcn_tests::init();
    let n: u64 = 60;
    let mut server = DevServer::start("restarts").await;
    let client = server.client().await;
    let db = TestDb::with_customers(n).await;
    let bank = crate::exactly_once::premium_bank(n, 11).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &server.address(),
        CarrierKind::Generic,
        slow_carrier(),
    )
    .await;
    let queue = unique_task_queue("restarts");
    let month = YearMonth::parse("2022-10").unwrap();
    start_month(&client, &queue, month, crash_month_settings())
        .await
        .unwrap();
    let address = server.address();
    let env = [("PCN_TEMPORAL_ADDRESS", address.as_str())];
    let worker = WorkerProcess::start_with(&queue, &db.url, &bank.base_url(), 8, &carrier, &env);

    // 1. The server dies during the daily sweeps.
    wait_rows(
        &db.pool,
        "SELECT count(*) FROM balance_checks",
        200,
        "sweeps under way",
    )
    .await;
    server.kill_9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.restart().await;

    // 2. The worker dies as SMS go out.
    wait_rows(
        &db.pool,
        "SELECT count(*) FROM sms_attempts",
        5,
        "SMS under way",
    )
    .await;
    worker.kill_9();
    let worker = WorkerProcess::start_with(&queue, &db.url, &bank.base_url(), 8, &carrier, &env);

    // 3. The server dies again while callbacks arrive: the webhook stores them (PENDING) and its
    //    reconciler signals them once the server is back.
    wait_rows(
        &db.pool,
        "SELECT count(*) FROM sms_attempts",
        20,
        "more SMS under way",
    )
    .await;
    server.kill_9();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let pending_while_down = count(
        &db.pool,
        "SELECT count(*) FROM delivery_events WHERE signal_state = 'PENDING'",
    )
    .await;
    let client = server.restart().await;

    let progress = wait_completed(&client, month, Duration::from_secs(600)).await;
    drop(worker);
    let counts = progress.notifications.expect("notification counts");
    assert_eq!(
        counts.total,
        counts.finished(),
        "every notification final: {counts:?}"
    );
    assert_checks_and_decisions(&db, month, n).await;
    assert_exactly_once(&db, &carrier, n).await;
    eprintln!(
        "events pending while Temporal was down: {pending_while_down}; in-doubt resolutions: {:?}",
        resolutions(&db.pool).await
    );
}
