//! The webhook judges each callback alone: a poisoned callback among honest ones is refused by
//! itself (400) and changes no other answer, and a signed report that names our reference but
//! another carrier id is kept, flagged FOREIGN and never applied. Each answer is counted on the
//! webhook's `/metrics`.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_activities::carrier::signature;
use pcn_carrier_sim::{Outcome, SimConfig};
use pcn_tests::{
    InProcessWorker, SmsBench, TestCarrier, TestDb, temporal_address, temporal_client,
    unique_task_queue,
};
use pcn_workflows::contracts::DeliveryReport;
use pcn_workflows::delivery::DeliveryStatus;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::sms::{NotificationState, SmsNotificationWorkflow};
use temporalio_client::WorkflowSignalOptions;

use crate::sms::{
    notification_state, open_window_settings, phone, post_generic, sms_status, start_sms,
};

async fn submitted_state(db: &TestDb, workflow_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM notifications WHERE workflow_id = $1")
        .bind(workflow_id)
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

fn signed(body: &str) -> String {
    let secret = SimConfig::default().webhook_secret;
    signature::generic_signature(secret.as_bytes(), body.as_bytes())
}

fn callback(tracking_id: &str, reference: &str, status: &str) -> String {
    serde_json::json!({
        "trackingId": tracking_id,
        "messageId": reference,
        "status": status,
        "deliveryTimestamp": "2026-11-30T10:00:00Z",
        "phoneNumber": "+972500000000",
        "statusCode": "0",
    })
    .to_string()
}

#[tokio::test]
async fn a_poisoned_callback_among_honest_ones_is_refused_alone() {
    pcn_tests::init();
    let db = TestDb::with_customers(1).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig::default(),
    )
    .await;
    let url = carrier.webhook_url();
    let mut bodies: Vec<(String, u16)> = (0..200)
        .map(|i| {
            let reference = format!("sms/2022-08/C{i:010}#1");
            (
                callback(&format!("TRK-honest-{i}"), &reference, "DELIVERED"),
                200,
            )
        })
        .collect();
    // A NUL byte inside a JSON string, an 8 KB id, an attempt number out of range.
    bodies.insert(
        57,
        (
            callback("TRK\u{0}nul", "sms/2022-08/C0000000001#1", "DELIVERED"),
            400,
        ),
    );
    bodies.insert(
        123,
        (
            callback(
                &"T".repeat(8 * 1024),
                "sms/2022-08/C0000000002#1",
                "DELIVERED",
            ),
            400,
        ),
    );
    bodies.insert(
        150,
        (
            callback("TRK-big", "sms/2022-08/C0000000003#99999", "DELIVERED"),
            400,
        ),
    );
    let answers = futures::future::join_all(bodies.iter().map(|(body, _)| {
        let url = url.clone();
        async move {
            let response = post_generic(&url, body, Some(&signed(body))).await;
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
    }))
    .await;
    for ((_, expected), (status, text)) in bodies.iter().zip(&answers) {
        assert_eq!(status, expected, "{text}");
    }
    let refused: Vec<&str> = answers
        .iter()
        .filter(|(s, _)| *s == 400)
        .map(|(_, t)| t.as_str())
        .collect();
    assert!(refused[0].contains("trackingId"), "{refused:?}");
    assert!(refused[1].contains("trackingId"), "{refused:?}");
    assert!(refused[2].contains("messageId"), "{refused:?}");
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM delivery_events WHERE carrier_message_id LIKE 'TRK-honest-%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 200, "every honest callback stored");
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(all, 200, "nothing of the poisoned ones");
    // Every answer is counted by route and status on the webhook's own /metrics.
    let metrics = reqwest::get(format!("{url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "pcn_webhook_requests_total{route=\"/webhooks/sms-delivery\",status=\"200\"} 200",
        "pcn_webhook_requests_total{route=\"/webhooks/sms-delivery\",status=\"400\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn a_report_about_another_message_is_flagged_and_never_applied() {
    pcn_tests::init();
    let SmsBench { db, bank, carrier } =
        SmsBench::start(1, CarrierKind::Generic, SimConfig::default()).await;
    // The carrier never reports on its own: the notification stays SUBMITTED.
    carrier.sim.set_plan(&phone(0), vec![Outcome::Silent]);
    let queue = unique_task_queue("foreign");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let client = temporal_client().await;
    let month = YearMonth::parse("2022-09").unwrap();
    let id = start_sms(&client, &queue, month, 0, &open_window_settings()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while submitted_state(&db, &id).await.as_deref() != Some("SUBMITTED") {
        assert!(tokio::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ours = carrier.sim.messages_to(&phone(0)).remove(0).carrier_id;

    // Signed, our reference, a tracking id that is not this attempt's: stored, flagged.
    let body = callback("TRK-someone-else", "sms/2022-09/C0000000000#1", "DELIVERED");
    let answer = post_generic(&carrier.webhook_url(), &body, Some(&signed(&body))).await;
    assert_eq!(answer.status(), 200);
    let (signal_state, flag): (String, Option<String>) = sqlx::query_as(
        "SELECT signal_state, flag FROM delivery_events WHERE carrier_message_id = 'TRK-someone-else'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        (signal_state.as_str(), flag.as_deref()),
        ("NOT_SIGNALLED", Some("FOREIGN"))
    );

    // The same report signalled straight into the workflow (past the webhook): ignored too.
    client
        .get_workflow_handle::<SmsNotificationWorkflow>(id.clone())
        .signal(
            SmsNotificationWorkflow::delivery,
            DeliveryReport {
                attempt: 1,
                carrier_message_id: "TRK-someone-else".into(),
                status: DeliveryStatus::Delivered,
                error_code: None,
                event_id: None,
            },
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = sms_status(&client, &id).await.expect("status");
    assert_eq!(status.state, NotificationState::Submitted);
    assert!(status.ignored_reports >= 1, "{status:?}");
    assert_eq!(notification_state(&db, &id).await.0, "SUBMITTED");
    assert_eq!(
        status.attempts[0].carrier_message_id.as_deref(),
        Some(ours.as_str())
    );

    // The real report for the real id still finishes it.
    let body = callback(&ours, "sms/2022-09/C0000000000#1", "DELIVERED");
    let answer = post_generic(&carrier.webhook_url(), &body, Some(&signed(&body))).await;
    assert_eq!(answer.status(), 200);
    let done = crate::sms::wait_final(&client, &id, Duration::from_secs(30)).await;
    assert_eq!(done.state, NotificationState::Delivered);
    worker.stop();
}
