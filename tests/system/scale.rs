//! The SMS phase at a scale the suite can afford: submissions of concurrent workflows go out in
//! batches, a carrier rate holds across two workers, a carrier's 429s lose nothing, and a burst
//! of workflows facing a slow carrier waits in the gateway without a workflow task running out.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pcn_activities::budget::{self, Rate};
use pcn_activities::carrier::CarrierKind;
use pcn_activities::gateway::GatewaySettings;
use pcn_carrier_sim::SimConfig;
use pcn_tests::{
    InProcessWorker, SmsBench, TestCarrier, TestDb, temporal_address, temporal_client,
    unique_task_queue,
};
use pcn_workflows::domain::YearMonth;
use temporalio_client::{Client, WorkflowFetchHistoryOptions};
use temporalio_common::protos::temporal::api::enums::v1::TimeoutType;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

use crate::sms::{open_window_settings, start_sms, wait_notifications_final};

/// The tests of this file one at a time: each loads the 2 cores on its own, and batch sizes
/// depend on how fast a worker's workflow tasks reach the gateway.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the SMS workflows of customers `0..n` for `month` (no worker needs to run yet).
async fn start_all(client: &Client, queue: &str, month: YearMonth, n: u64) -> Vec<String> {
    let settings = open_window_settings();
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(64) {
        let started = futures::future::join_all(
            chunk
                .iter()
                .map(|&i| start_sms(client, queue, month, i, &settings)),
        )
        .await;
        ids.extend(started);
    }
    ids
}

#[tokio::test]
async fn two_thousand_notifications_reach_the_carrier_in_at_most_twenty_requests() {
    pcn_tests::init();
    let _alone = ONE_AT_A_TIME.lock().await;
    let n: u64 = 2_000;
    let db = TestDb::with_customers(n).await;
    let bank = pcn_tests::spawn_sim(n, 1, Default::default()).await;
    // A carrier that takes 3 s per request ("dispatch under 5 s per batch"): while one batch is
    // with it, the next gathers.
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig {
            answer_delay: Duration::from_secs(3),
            ..SimConfig::default()
        },
    )
    .await;
    let queue = unique_task_queue("batches");
    let client = temporal_client().await;
    let month = YearMonth::parse("2022-11").unwrap();
    // Every workflow is started before a worker polls: their submissions arrive together, as
    // the fan-out's do when the server is faster than the carrier.
    start_all(&client, &queue, month, n).await;
    let worker = InProcessWorker::with_gateway(
        &queue,
        &db,
        &bank,
        carrier.carrier_config(),
        GatewaySettings {
            queue_limit: 2_000,
            ..GatewaySettings::default()
        },
    );
    wait_notifications_final(&db, n, Duration::from_secs(300), "SMS phase").await;
    worker.stop();
    let stats = carrier.sim.stats();
    assert_eq!(stats.accepted, n, "{stats:?}");
    assert_eq!(stats.repeated_references, 0, "{stats:?}");
    // 5 requests on an idle machine. A batch holds what reaches the gateway within 4 s plus the
    // carrier's 3 s, so a starved CPU makes batches smaller (19 requests with two CPU hogs beside
    // the suite): the bound is the benchmark's 0.01 requests per message.
    assert!(
        stats.submit_requests <= 20,
        "{} carrier requests for {n} messages",
        stats.submit_requests
    );
    eprintln!(
        "{n} messages in {} carrier requests ({:.4} requests per message)",
        stats.submit_requests,
        stats.submit_requests as f64 / n as f64
    );
}

#[tokio::test]
async fn a_carrier_rate_holds_across_two_workers_and_every_message_is_delivered() {
    pcn_tests::init();
    let _alone = ONE_AT_A_TIME.lock().await;
    let n: u64 = 400;
    let rate = Rate::per_sec(50).unwrap();
    let SmsBench { db, bank, carrier } =
        SmsBench::start(n, CarrierKind::Generic, SimConfig::default()).await;
    budget::configure(&db.pool, "generic", rate).await.unwrap();
    let queue = unique_task_queue("rate");
    let client = temporal_client().await;
    let month = YearMonth::parse("2022-12").unwrap();
    let ids = start_all(&client, &queue, month, n).await;
    let workers: Vec<InProcessWorker> = (0..2)
        .map(|_| InProcessWorker::with_carrier(&queue, &db, &bank, &carrier))
        .collect();
    wait_notifications_final(&db, n, Duration::from_secs(300), "SMS phase").await;
    for w in workers {
        w.stop();
    }
    let mut accepted: Vec<DateTime<Utc>> = carrier
        .sim
        .messages()
        .iter()
        .map(|m| m.accepted_at)
        .collect();
    accepted.sort_unstable();
    assert_eq!(accepted.len() as u64, n);
    // The most messages in any one-second window.
    let mut most = 0;
    let mut start = 0;
    for end in 0..accepted.len() {
        while accepted[end] - accepted[start] >= chrono::Duration::seconds(1) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    let allowed = (rate.per_sec + rate.burst) as usize;
    assert!(
        most <= allowed,
        "{most} messages in one second (limit {}, burst {})",
        rate.per_sec,
        rate.burst
    );
    let span = (*accepted.last().unwrap() - accepted[0]).num_milliseconds();
    eprintln!(
        "{n} messages over {span} ms, at most {most} in any second (rate {} + burst {})",
        rate.per_sec, rate.burst
    );
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'DELIVERED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        delivered,
        i64::try_from(n).unwrap(),
        "every message delivered"
    );
    assert_eq!(ids.len() as u64, n);
    assert_eq!(carrier.sim.stats().repeated_references, 0);
}

/// What the histories of a set of SMS workflows hold.
struct Histories {
    /// Workflow tasks that ran out of time while being worked on (start to close).
    timeouts: usize,
    /// Events in all histories.
    events: usize,
    /// The longest history, as its event types.
    longest: Vec<String>,
    /// The first history with a timed-out task, as its event types and milliseconds since its start.
    timed_out: Option<String>,
}

/// Reads the history of every workflow in `ids`.
async fn histories(client: &Client, ids: &[String]) -> Histories {
    let mut seen = Histories {
        timeouts: 0,
        events: 0,
        longest: Vec::new(),
        timed_out: None,
    };
    for id in ids {
        let events = client
            .get_workflow_handle::<pcn_workflows::sms::SmsNotificationWorkflow>(id.clone())
            .fetch_history(WorkflowFetchHistoryOptions::builder().build())
            .into_events()
            .await
            .expect("history");
        seen.events += events.len();
        if events.len() > seen.longest.len() {
            seen.longest = events
                .iter()
                .map(|e| format!("{:?}", e.event_type()))
                .collect();
        }
        // Only a task that ran out of time while being worked on (start to close): a sticky task
        // that waited for a poller (schedule to start) on a loaded machine is moved, not lost.
        let timeouts = events
            .iter()
            .filter(|e| {
                matches!(
                    &e.attributes,
                    Some(Attributes::WorkflowTaskTimedOutEventAttributes(a))
                        if a.timeout_type() == TimeoutType::StartToClose
                )
            })
            .count();
        seen.timeouts += timeouts;
        if timeouts > 0 && seen.timed_out.is_none() {
            let ms = |e: &temporalio_common::protos::temporal::api::history::v1::HistoryEvent| {
                e.event_time
                    .map_or(0, |t| t.seconds * 1_000 + i64::from(t.nanos) / 1_000_000)
            };
            let start = events.first().map_or(0, ms);
            let listing: Vec<String> = events
                .iter()
                .map(|e| format!("{:?}@+{}ms", e.event_type(), ms(e) - start))
                .collect();
            seen.timed_out = Some(format!("{id}: {}", listing.join(" ")));
        }
    }
    seen
}

#[tokio::test]
async fn a_burst_of_workflows_facing_a_slow_carrier_does_not_outlive_its_workflow_tasks() {
    pcn_tests::init();
    let _alone = ONE_AT_A_TIME.lock().await;
    let n: u64 = 1_000;
    let db = TestDb::with_customers(n).await;
    let bank = pcn_tests::spawn_sim(n, 1, Default::default()).await;
    // Two seconds per carrier request, and every submission waits in the gateway while its
    // workflow task stays open. Measured against the code before the gateway (6adad83, SDK
    // defaults: 100 workflow-task and 100 local-activity slots, one request per message), the
    // same burst took 31.7 s and 1,000 requests but did not time out either: the slots limit
    // what is outstanding. This test holds the gateway to the same promise with 1,000 workflows
    // ready at once and the worker's default slots (500, the largest batch); it does not
    // reproduce the 100,000-customer collapse (see the issue note).
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig {
            answer_delay: Duration::from_secs(2),
            ..SimConfig::default()
        },
    )
    .await;
    let queue = unique_task_queue("burst");
    let client = temporal_client().await;
    let month = YearMonth::parse("2023-04").unwrap();
    let ids = start_all(&client, &queue, month, n).await;
    let started = tokio::time::Instant::now();
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    wait_notifications_final(&db, n, Duration::from_secs(300), "SMS phase").await;
    let took = started.elapsed();
    worker.stop();
    let seen = histories(&client, &ids).await;
    let stats = carrier.sim.stats();
    let per_message = seen.events as f64 / n as f64;
    eprintln!(
        "{n} SMS in {took:?}: {} carrier requests, {} workflow-task timeouts, {per_message:.2} history \
         events per message, longest history {} events",
        stats.submit_requests,
        seen.timeouts,
        seen.longest.len()
    );
    if let Some(timed_out) = &seen.timed_out {
        eprintln!("a history with a timed-out workflow task: {timed_out}");
    }
    // The promise first: every message sent once, no submission ran twice.
    assert_eq!(stats.accepted, n);
    assert_eq!(stats.repeated_references, 0);
    let resolutions: i64 = sqlx::query_scalar("SELECT count(*) FROM in_doubt_resolutions")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(resolutions, 0, "no submission ran twice");
    // Submissions wait in the gateway (at most 4 s plus the carrier's 2 s), well inside the 30 s
    // task timeout. A machine starved of CPU can still let a rare task run out: the server is
    // the bottleneck (≈ 18 s of its CPU for this burst), and a task waits for it while held.
    // Seen with 1,000 slots: 15 of 1,000 in a loaded CI run, 9 beside six CPU hogs; with 500:
    // 0, 0 and 2 beside six hogs, 4 beside nine. More than 1 % is the collapse.
    assert!(
        seen.timeouts * 100 <= ids.len(),
        "{} of {} workflow tasks ran out of time",
        seen.timeouts,
        ids.len()
    );
    // Batched: 1,000 one-message requests would be the SDK's way.
    assert!(
        stats.submit_requests <= 100,
        "{} carrier requests for {n} messages",
        stats.submit_requests
    );
    // 13 events on the happy path; a callback that overtook the answer, a deferral or a retried
    // task adds a few to some, the collapse added dozens to each.
    assert!(
        per_message <= 16.0,
        "{per_message:.2} history events per message; longest: {}",
        seen.longest.join(" ")
    );
}

#[tokio::test]
async fn a_carrier_answering_429_loses_and_repeats_nothing() {
    pcn_tests::init();
    let _alone = ONE_AT_A_TIME.lock().await;
    let n: u64 = 300;
    let db = TestDb::with_customers(n).await;
    let bank = pcn_tests::spawn_sim(n, 1, Default::default()).await;
    // The carrier takes 40 messages a second and says 429 + Retry-After beyond; we configure no
    // rate of our own, so only its answers slow us down. Its first three submit requests are
    // refused whatever the rate: a loaded machine may never send faster than 40 a second (seen:
    // 12 batches of 25 and no 429), and then this test would test nothing.
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig {
            faults: pcn_carrier_sim::Faults {
                rate_limit_per_sec: Some(40),
                refuse_first_submits: 3,
                ..Default::default()
            },
            ..SimConfig::default()
        },
    )
    .await;
    let queue = unique_task_queue("carrier-429");
    let client = temporal_client().await;
    let month = YearMonth::parse("2023-05").unwrap();
    start_all(&client, &queue, month, n).await;
    let worker = InProcessWorker::with_gateway(
        &queue,
        &db,
        &bank,
        carrier.carrier_config(),
        GatewaySettings {
            max_batch: 25,
            ..GatewaySettings::default()
        },
    );
    wait_notifications_final(&db, n, Duration::from_secs(300), "SMS phase").await;
    worker.stop();
    let stats = carrier.sim.stats();
    eprintln!("{n} messages against a 40/s carrier: {stats:?}");
    assert!(stats.rate_limited >= 3, "the carrier said 429: {stats:?}");
    assert_eq!(stats.accepted, n, "every message sent once: {stats:?}");
    assert_eq!(stats.repeated_references, 0);
    let delivered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE status = 'DELIVERED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(delivered, i64::try_from(n).unwrap(), "a 429 failed nobody");
    // A 429 never costs an attempt: every notification was sent by its first.
    let second: i64 = sqlx::query_scalar("SELECT count(*) FROM sms_attempts WHERE attempt > 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(second, 0);
}
