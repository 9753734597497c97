//! Live months on the time-skipping test server: the durable timers fire at 22:00 Israel time on
//! every day of the month, across the March and October DST changes, with the real default
//! settings (no shortened durations).

use std::time::Duration;

use chrono::{NaiveTime, Timelike};
use pcn_tests::time_skipping::TimeSkippingServer;
use pcn_tests::{InProcessWorker, TestDb, spawn_sim, test_bank_config, unique_task_queue};
use pcn_worker::months::start_month;
use pcn_workflows::domain::{JERUSALEM, YearMonth};
use pcn_workflows::month::{MonthPhase, MonthSettings};
use temporalio_common::protos::temporal::api::testservice::v1::UnlockTimeSkippingRequest;

#[tokio::test]
async fn timers_fire_at_22_00_local_every_day_across_both_dst_changes() {
    pcn_tests::init();
    let server = TimeSkippingServer::start().await;
    let address = server.target.clone();

    let n = 20;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 29, pcn_bank_sim::Faults::default()).await;
    let queue = unique_task_queue("dst");
    let worker = InProcessWorker::start(
        address.clone(),
        queue.clone(),
        db.url.clone(),
        test_bank_config(&sim.base_url()),
        pcn_tests::CarrierSetup::Embedded,
    );
    let client = pcn_worker::temporal::connect_patiently(
        &address,
        "default",
        &pcn_tests::payload_codec(),
        Duration::from_secs(120),
    )
    .await
    .unwrap();

    // Future months, so every day waits on its timer. Israel: summer time from Friday 2027-03-26,
    // winter time from Sunday 2027-10-31.
    let months = [
        YearMonth::parse("2027-03").unwrap(),
        YearMonth::parse("2027-10").unwrap(),
    ];
    for month in months {
        // The real defaults, but the test server cannot hold custom search attributes.
        let mut settings = MonthSettings {
            search_attributes: false,
            ..MonthSettings::default()
        };
        settings.sms.search_attributes = false;
        start_month(&client, &queue, month, settings).await.unwrap();
    }
    client
        .connection()
        .test_service()
        .unlock_time_skipping(tonic::Request::new(UnlockTimeSkippingRequest {}))
        .await
        .unwrap();

    for month in months {
        let progress = pcn_tests::wait_for_month(&client, month, Duration::from_secs(240), |p| {
            p.phase == MonthPhase::Completed
        })
        .await;
        assert_eq!(progress.days_done, month.num_days());
        for (day, date) in progress.days.iter().zip(month.days()) {
            assert_eq!(day.summary.date, date);
            let local = day.started_at.with_timezone(&JERUSALEM);
            assert_eq!(local.date_naive(), date.as_naive(), "{date}");
            let time = local.time();
            assert!(
                time >= NaiveTime::from_hms_opt(22, 0, 0).unwrap()
                    && time < NaiveTime::from_hms_opt(22, 0, 30).unwrap(),
                "{date}: the check started at {time} local"
            );
            assert_eq!(day.summary.checked, n, "{date}");
        }
        // The UTC hour moves with the offset: 20:00Z in winter (+02), 19:00Z in summer (+03).
        let utc_hour = |d: u32| progress.days[d as usize - 1].started_at.hour();
        if month.month() == 3 {
            assert_eq!(utc_hour(25), 20, "2027-03-25 is still winter time");
            assert_eq!(utc_hour(26), 19, "2027-03-26 is summer time");
        } else {
            assert_eq!(utc_hour(30), 19, "2027-10-30 is still summer time");
            assert_eq!(utc_hour(31), 20, "2027-10-31 is winter time");
        }
        let q = progress.qualification.unwrap();
        assert_eq!(q.customers, n);
    }
    worker.stop();
    server.shutdown().await;
}

/// The SMS retry paths with the real default durations (6 h between attempts, 3 attempts, 72 h
/// confirmation window, 2-hourly polls, Sunday–Thursday 09:00–20:00 window), on the time-skipping
/// server: a failure then a delivery; three failures → FAILED; no callback → UNDELIVERABLE after
/// 72 h of polling. No attempt is submitted outside the send window.
#[tokio::test]
async fn sms_retry_paths_with_the_real_default_durations() {
    use pcn_activities::carrier::CarrierKind;
    use pcn_carrier_sim::{Outcome, SimConfig};
    use pcn_tests::{CarrierSetup, TestCarrier};
    use pcn_workflows::delivery::FailureCategory;
    use pcn_workflows::sms::{NotificationState, SmsSettings};

    pcn_tests::init();
    let server = TimeSkippingServer::start().await;
    let address = server.target.clone();
    let n = 4;
    let db = TestDb::with_customers(n).await;
    let bank = spawn_sim(n, 29, pcn_bank_sim::Faults::default()).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &address,
        CarrierKind::Generic,
        SimConfig {
            callback_delay: Duration::from_millis(20),
            ..SimConfig::default()
        },
    )
    .await;
    let failed = || Outcome::Failed {
        code: "30003".into(),
    };
    carrier
        .sim
        .set_plan(&crate::sms::phone(0), vec![failed(), Outcome::Delivered]);
    carrier
        .sim
        .set_plan(&crate::sms::phone(1), vec![failed(), failed(), failed()]);
    carrier
        .sim
        .set_plan(&crate::sms::phone(2), vec![Outcome::Silent]);
    let queue = unique_task_queue("sms-dst");
    let worker = InProcessWorker::start(
        address.clone(),
        queue.clone(),
        db.url.clone(),
        test_bank_config(&bank.base_url()),
        CarrierSetup::External(Box::new(carrier.carrier_config())),
    );
    let client = pcn_worker::temporal::connect_patiently(
        &address,
        "default",
        &pcn_tests::payload_codec(),
        Duration::from_secs(120),
    )
    .await
    .unwrap();
    let settings = SmsSettings {
        search_attributes: false,
        ..SmsSettings::default()
    };
    let month = YearMonth::parse("2027-05").unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(crate::sms::start_sms(&client, &queue, month, i, &settings).await);
    }
    client
        .connection()
        .test_service()
        .unlock_time_skipping(tonic::Request::new(UnlockTimeSkippingRequest {}))
        .await
        .unwrap();
    let mut finals = Vec::new();
    for id in &ids {
        finals.push(crate::sms::wait_final(&client, id, Duration::from_secs(180)).await);
    }

    crate::replay::check_and_maybe_save_workflow(
        &client,
        &ids[0],
        "sms-failed-then-delivered.json",
    )
    .await;
    crate::replay::check_and_maybe_save_workflow(&client, &ids[2], "sms-no-confirmation.json")
        .await;

    // 0: failed, 6 h later (or at the next window opening) delivered.
    assert_eq!(finals[0].state, NotificationState::Delivered);
    assert_eq!(finals[0].attempt, 2);
    let t = |s: &pcn_workflows::sms::SmsStatus, i: usize| s.attempts[i].submitted_at.unwrap();
    assert!(t(&finals[0], 1) - t(&finals[0], 0) >= chrono::Duration::hours(6));
    assert_eq!(carrier.sim.messages_to(&crate::sms::phone(0)).len(), 2);
    // 1: three failures → FAILED, three messages, no fourth.
    assert_eq!(finals[1].state, NotificationState::Failed);
    assert_eq!(finals[1].attempt, 3);
    assert_eq!(
        finals[1].failure_category,
        Some(FailureCategory::CarrierReject)
    );
    assert_eq!(carrier.sim.messages_to(&crate::sms::phone(1)).len(), 3);
    // 2: never a final status → UNDELIVERABLE after 72 h, polled every 2 h meanwhile.
    assert_eq!(finals[2].state, NotificationState::Undeliverable);
    assert_eq!(
        finals[2].failure_category,
        Some(FailureCategory::NoConfirmation)
    );
    assert_eq!(finals[2].attempt, 1);
    let polls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM delivery_events WHERE workflow_id = $1 AND raw = 'status poll'",
    )
    .bind(&ids[2])
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(polls >= 1, "the poll answers are stored");
    assert!(
        carrier.sim.stats().status_queries >= 35,
        "polled every 2 h for 72 h: {:?}",
        carrier.sim.stats()
    );
    // 3: delivered on the first attempt.
    assert_eq!(finals[3].state, NotificationState::Delivered);
    // The window: every attempt was submitted inside Sunday–Thursday 09:00–20:00 Israel time.
    for status in &finals {
        for attempt in &status.attempts {
            let at = attempt.submitted_at.unwrap();
            assert!(
                settings.window.is_open(at),
                "submitted outside the window: {at}"
            );
        }
    }
    let rows: Vec<(String, i16)> =
        sqlx::query_as("SELECT status, attempts FROM notifications ORDER BY customer_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("DELIVERED".to_owned(), 2),
            ("FAILED".to_owned(), 3),
            ("UNDELIVERABLE".to_owned(), 1),
            ("DELIVERED".to_owned(), 1),
        ]
    );
    worker.stop();
    server.shutdown().await;
}
