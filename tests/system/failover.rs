//! Failover: the primary carrier goes down in the middle of a fan-out; its circuit breaker opens,
//! the rest go out through the secondary (the other adapter), nobody gets two messages from the
//! two non-deduplicating carriers together, and the breaker closes once the primary is back.

use std::collections::HashMap;
use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_activities::gateway::GatewaySettings;
use pcn_carrier_sim::SimConfig;
use pcn_tests::{
    InProcessWorker, TEST_BREAKER, TestCarrier, TestDb, failover_config, temporal_address,
    temporal_client, unique_task_queue,
};
use pcn_workflows::domain::YearMonth;
use temporalio_client::Client;

use crate::sms::{open_window_settings, start_sms, wait_notifications_final};

/// Starts the SMS workflows of customers `range`.
async fn start_range(client: &Client, queue: &str, month: YearMonth, range: std::ops::Range<u64>) {
    let settings = open_window_settings();
    for i in range {
        start_sms(client, queue, month, i, &settings).await;
    }
}

/// Waits until the stored breaker of `carrier` (what `GetMonth` shows) is `state`.
async fn wait_breaker(db: &TestDb, carrier: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let stored = pcn_activities::breaker::stored(&db.pool).await.unwrap();
        if stored
            .iter()
            .any(|b| b.carrier == carrier && b.state == state)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "breaker of {carrier} not {state}: {stored:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A generic primary and a Twilio secondary on `db`'s webhook. Neither deduplicates a repeated
/// reference (the defaults): a message sent through both would reach the phone twice.
async fn two_carriers(db: &TestDb) -> (TestCarrier, TestCarrier) {
    let sim = SimConfig {
        callback_delay: Duration::from_millis(100),
        ..SimConfig::default()
    };
    let primary = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        sim.clone(),
    )
    .await;
    let secondary =
        TestCarrier::start(&db.pool, &temporal_address(), CarrierKind::Twilio, sim).await;
    (primary, secondary)
}

/// Messages accepted per phone by both carriers together.
fn messages_per_phone(primary: &TestCarrier, secondary: &TestCarrier) -> HashMap<String, u64> {
    let mut per_phone = primary.sim.message_counts_by_phone();
    for (phone, count) in secondary.sim.message_counts_by_phone() {
        *per_phone.entry(phone).or_default() += count;
    }
    per_phone
}

#[tokio::test]
async fn the_primary_going_down_mid_fan_out_fails_over_without_a_second_message() {
    pcn_tests::init();
    let wave: u64 = 60;
    let n = 3 * wave;
    let db = TestDb::with_customers(n).await;
    let bank = pcn_tests::spawn_sim(n, 1, Default::default()).await;
    let (primary, secondary) = two_carriers(&db).await;
    let queue = unique_task_queue("failover");
    let client = temporal_client().await;
    let month = YearMonth::parse("2023-06").unwrap();
    let worker = InProcessWorker::with_gateway(
        &queue,
        &db,
        &bank,
        failover_config(&primary, &secondary),
        GatewaySettings {
            max_batch: 10,
            linger: Duration::from_millis(100),
            ..GatewaySettings::default()
        },
    );

    // 1. Both up: everything through the primary.
    start_range(&client, &queue, month, 0..wave).await;
    wait_notifications_final(&db, wave, Duration::from_secs(240), "primary up").await;
    assert_eq!(primary.sim.stats().accepted, wave);
    assert_eq!(secondary.sim.stats().accepted, 0);

    // 2. The primary answers 503 to everything: its breaker opens after TEST_BREAKER.failures
    // requests, and the wave goes out through the secondary.
    primary.sim.start_outage(Duration::from_secs(3_600));
    start_range(&client, &queue, month, wave..2 * wave).await;
    wait_notifications_final(&db, 2 * wave, Duration::from_secs(240), "primary down").await;
    assert_eq!(
        primary.sim.stats().accepted,
        wave,
        "nothing more reached the primary"
    );
    assert_eq!(secondary.sim.stats().accepted, wave);
    let refusals = primary.sim.stats().outage_refusals;
    assert!(
        refusals >= u64::from(TEST_BREAKER.failures),
        "{refusals} requests refused by the primary before its breaker opened"
    );
    wait_breaker(&db, "generic", "open").await;

    // 3. The primary is back: after the open period a probe closes the breaker, and the last wave
    // goes through the primary again.
    primary.sim.end_outage();
    tokio::time::sleep(TEST_BREAKER.open_for + Duration::from_millis(500)).await;
    start_range(&client, &queue, month, 2 * wave..n).await;
    wait_notifications_final(&db, n, Duration::from_secs(240), "primary back").await;
    wait_breaker(&db, "generic", "closed").await;
    worker.stop();
    let (p, s) = (primary.sim.stats(), secondary.sim.stats());
    assert_eq!(
        p.accepted,
        2 * wave,
        "the primary took the last wave: {p:?}"
    );
    assert_eq!(s.accepted, wave, "{s:?}");

    // Nobody twice, over both carriers together.
    assert_eq!(p.repeated_references + s.repeated_references, 0);
    let per_phone = messages_per_phone(&primary, &secondary);
    assert_eq!(per_phone.len() as u64, n, "every customer got a message");
    let twice: Vec<_> = per_phone.values().filter(|&&c| c > 1).collect();
    assert!(twice.is_empty(), "{} phones got two messages", twice.len());

    // Every notification delivered, and each attempt row names the carrier that has it.
    let by_carrier: Vec<(String, i64)> = sqlx::query_as(
        "SELECT carrier, count(*) FROM sms_attempts WHERE carrier_message_id IS NOT NULL
          GROUP BY carrier ORDER BY carrier",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        by_carrier,
        vec![
            ("generic".to_owned(), i64::try_from(2 * wave).unwrap()),
            ("twilio".to_owned(), i64::try_from(wave).unwrap()),
        ]
    );
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'DELIVERED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(delivered, i64::try_from(n).unwrap());

    // The month's report splits the attempts by carrier.
    let report = pcn_worker::report::build(&db.pool, month)
        .await
        .unwrap()
        .expect("a report");
    let shares: Vec<(&str, u64, u64)> = report
        .carriers
        .iter()
        .map(|c| (c.carrier.as_str(), c.accepted, c.delivered))
        .collect();
    assert_eq!(
        shares,
        vec![("generic", 2 * wave, 2 * wave), ("twilio", wave, wave)]
    );
    let html = pcn_worker::report::export::html(&report);
    assert!(html.contains("Carriers") && html.contains("twilio"));
}

#[tokio::test]
async fn messages_in_doubt_at_the_primary_are_never_sent_through_the_secondary() {
    pcn_tests::init();
    let wave: u64 = 60;
    let db = TestDb::with_customers(wave).await;
    let bank = pcn_tests::spawn_sim(wave, 1, Default::default()).await;
    let (primary, secondary) = two_carriers(&db).await;
    // The primary takes every message but holds its answer past our 1 s timeout: each of its
    // batches is in doubt, and it really has them (its callbacks will say so).
    primary
        .sim
        .update_config(|c| c.answer_delay = Duration::from_secs(3));
    let mut config = failover_config(&primary, &secondary);
    config.generic.timeout = Duration::from_secs(1);
    let queue = unique_task_queue("failover-doubt");
    let client = temporal_client().await;
    let month = YearMonth::parse("2023-07").unwrap();
    let worker = InProcessWorker::with_gateway(
        &queue,
        &db,
        &bank,
        config,
        GatewaySettings {
            max_batch: 10,
            linger: Duration::from_millis(200),
            ..GatewaySettings::default()
        },
    );
    start_range(&client, &queue, month, 0..wave).await;
    wait_notifications_final(
        &db,
        wave,
        Duration::from_secs(240),
        "in doubt at the primary",
    )
    .await;
    worker.stop();

    let (p, s) = (primary.sim.stats(), secondary.sim.stats());
    assert!(
        p.accepted >= u64::from(TEST_BREAKER.failures),
        "the primary took the batches before its breaker opened: {p:?}"
    );
    assert!(s.accepted > 0, "the rest went through the secondary: {s:?}");
    assert_eq!(p.repeated_references + s.repeated_references, 0);
    let per_phone = messages_per_phone(&primary, &secondary);
    assert_eq!(per_phone.len() as u64, wave, "every customer got a message");
    assert!(
        per_phone.values().all(|&c| c == 1),
        "a phone got two messages: {:?}",
        per_phone.values().filter(|&&c| c > 1).count()
    );
    // Every doubt was resolved by the primary's own evidence, never by sending again.
    let resolutions: Vec<(String, i64)> =
        sqlx::query_as("SELECT resolution, count(*) FROM in_doubt_resolutions GROUP BY resolution")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(!resolutions.is_empty(), "batches were in doubt");
    assert!(
        resolutions.iter().all(|(r, _)| r.starts_with("ADOPTED_")),
        "{resolutions:?}"
    );
    let generic: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sms_attempts WHERE carrier = 'generic' AND carrier_message_id IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(u64::try_from(generic).unwrap(), p.accepted);
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'DELIVERED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(delivered, i64::try_from(wave).unwrap());
}
