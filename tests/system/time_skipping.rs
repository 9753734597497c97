//! Live months on the time-skipping test server: the durable timers fire at 22:00 Israel time on
//! every day of the month, across the March and October DST changes, with the real default
//! settings (no shortened durations).

use std::time::Duration;

use chrono::{NaiveTime, Timelike};
use pcn_tests::{InProcessWorker, TestDb, spawn_sim, test_bank_config, unique_task_queue};
use pcn_worker::months::start_month;
use pcn_workflows::domain::{JERUSALEM, YearMonth};
use pcn_workflows::month::{MonthPhase, MonthSettings};
use temporalio_common::protos::temporal::api::testservice::v1::UnlockTimeSkippingRequest;
use temporalio_sdk_core::ephemeral_server::{EphemeralExe, TestServerConfig};

#[tokio::test]
async fn timers_fire_at_22_00_local_every_day_across_both_dst_changes() {
    pcn_tests::init();
    let exe = std::env::var("PCN_TEST_SERVER_BIN")
        .expect("PCN_TEST_SERVER_BIN: `make test` installs the time-skipping test server");
    let mut server = TestServerConfig::builder()
        .exe(EphemeralExe::ExistingPath(exe))
        .build()
        .start_server()
        .await
        .expect("time-skipping test server");
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
    let client = pcn_worker::temporal::connect(&address, "default")
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
    server.shutdown().await.unwrap();
}
