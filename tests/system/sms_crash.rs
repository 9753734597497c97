//! kill -9 of the real worker process at random moments of the SMS fan-out, twice, with restarts,
//! against a carrier that does not deduplicate and answers in 300 ms: afterwards every one of
//! 1,000 qualified customers got exactly one message at the carrier.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_tests::{
    TestCarrier, TestDb, WorkerProcess, temporal_address, temporal_client, unique_task_queue,
    wait_completed,
};
use pcn_worker::months::start_month;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::MonthSettings;

use crate::exactly_once::{assert_exactly_once, crash_month_settings, resolutions, slow_carrier};

async fn attempts(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sms_attempts")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn exactly_one_message_per_qualified_customer_across_kill_9_during_the_fan_out() {
    pcn_tests::init();
    let n: u64 = 1_000;
    let db = TestDb::with_customers(n).await;
    let bank = crate::exactly_once::premium_bank(n, 5).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        slow_carrier(),
    )
    .await;
    let queue = unique_task_queue("sms-crash");
    let client = temporal_client().await;
    let month = YearMonth::parse("2024-05").unwrap();
    let settings = MonthSettings {
        fanout_page: 250,
        ..crash_month_settings()
    };
    start_month(&client, &queue, month, settings).await.unwrap();

    // Two kills at moments drawn from the clock (printed, so a failure can be replayed by hand).
    let nanos = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos(),
    );
    let cuts = [50 + nanos % 250, 450 + (nanos / 7) % 300];
    eprintln!("kill -9 after {} and {} submissions", cuts[0], cuts[1]);
    let mut worker = WorkerProcess::start(&queue, &db.url, &bank.base_url(), 32, &carrier);
    for cut in cuts {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while attempts(&db.pool).await < i64::try_from(cut).unwrap() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fan-out never reached {cut}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        worker.kill_9();
        worker = WorkerProcess::start(&queue, &db.url, &bank.base_url(), 32, &carrier);
    }
    let progress = wait_completed(&client, month, Duration::from_secs(600)).await;
    drop(worker);

    let counts = progress.notifications.expect("notification counts");
    assert_eq!(counts.qualified, n);
    assert_eq!(counts.delivered, n, "{counts:?}");
    assert!(progress.fanout.started + progress.fanout.already_started >= n);
    assert_exactly_once(&db, &carrier, n).await;
    eprintln!(
        "in-doubt resolutions after two kills: {:?}",
        resolutions(&db.pool).await
    );
}
