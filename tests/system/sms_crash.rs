//! kill -9 of the real worker process at random moments of the SMS fan-out, twice, with restarts:
//! afterwards every one of 1,000 qualified customers got exactly one message at the carrier.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_carrier_sim::SimConfig;
use pcn_tests::{
    TestCarrier, TestDb, WorkerProcess, temporal_address, temporal_client, unique_task_queue,
    wait_completed,
};
use pcn_worker::months::start_month;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::MonthSettings;

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
    let bank = pcn_bank_sim::spawn(
        pcn_bank_sim::SimConfig {
            seed: 5,
            accounts: n,
            mix: pcn_bank_sim::ProfileMix::only(pcn_bank_sim::Profile::Premium),
            ..pcn_bank_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig {
            callback_delay: Duration::from_millis(200),
            ..SimConfig::default()
        },
    )
    .await;
    let queue = unique_task_queue("sms-crash");
    let client = temporal_client().await;
    let month = YearMonth::parse("2024-05").unwrap();
    let settings = MonthSettings {
        sweep_heartbeat_timeout_secs: 3,
        fanout_page: 250,
        ..pcn_tests::test_month_settings()
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
    let by_phone = carrier.sim.message_counts_by_phone();
    assert_eq!(
        by_phone.len(),
        usize::try_from(n).unwrap(),
        "every customer reached"
    );
    assert!(
        by_phone.values().all(|&c| c == 1),
        "one message per customer: {:?}",
        by_phone
            .iter()
            .filter(|(_, c)| **c != 1)
            .collect::<Vec<_>>()
    );
    let stats = carrier.sim.stats();
    assert_eq!(stats.accepted, n);
    eprintln!(
        "{} resubmissions after the kills were answered from the carrier's idempotency key",
        stats.duplicate_submissions
    );
    let (rows, first_attempts): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE attempt = 1 AND status = 'DELIVERED') FROM sms_attempts",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((rows, first_attempts), (1_000, 1_000));
}
