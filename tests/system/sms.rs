//! SMS notifications end to end: the real dev server, Postgres, the carrier simulator over real
//! HTTP (both APIs), our webhook with signature checks, and the real worker.
//!
//! Every test uses its own month, so workflow ids `sms/YYYY-MM/<customer>` never meet across tests
//! on the shared dev server.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_activities::carrier::signature;
use pcn_activities::fanout::sms_start_options;
use pcn_carrier_sim::{Api, Outcome, SimConfig};
use pcn_tests::{
    InProcessWorker, SmsBench, TestCarrier, TestDb, spawn_sim, temporal_address, temporal_client,
    unique_task_queue,
};
use pcn_workflows::domain::{CustomerId, YearMonth};
use pcn_workflows::sms::{
    NotificationState, SmsInput, SmsNotificationWorkflow, SmsSettings, SmsStatus,
};
use temporalio_client::{Client, WorkflowQueryOptions};

/// SMS settings for the dev server: real durations, window always open.
pub fn open_window_settings() -> SmsSettings {
    pcn_tests::test_sms_settings()
}

/// Starts the SMS workflow of customer `i` for `month`.
pub async fn start_sms(
    client: &Client,
    queue: &str,
    month: YearMonth,
    i: u64,
    settings: &SmsSettings,
) -> String {
    let customer = CustomerId::parse(&pcn_bank_sim::customer_id(i)).unwrap();
    let input = SmsInput {
        month,
        customer: customer.clone(),
        settings: settings.clone(),
        first_attempt: 1,
    };
    let options = sms_start_options(queue, &input);
    client
        .start_workflow(SmsNotificationWorkflow::run, input, options)
        .await
        .expect("start SMS workflow");
    pcn_workflows::sms::workflow_id(month, &customer)
}

/// Waits until `n` notifications of the database are final; panics after `timeout`, naming
/// `what` was awaited.
pub async fn wait_notifications_final(db: &TestDb, n: u64, timeout: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notifications WHERE finished_at IS NOT NULL")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if u64::try_from(done).unwrap_or(0) >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {done} of {n} notifications final after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `status` query of an SMS workflow.
pub async fn sms_status(client: &Client, workflow_id: &str) -> Option<SmsStatus> {
    client
        .get_workflow_handle::<SmsNotificationWorkflow>(workflow_id.to_owned())
        .query(
            SmsNotificationWorkflow::status,
            (),
            WorkflowQueryOptions::default(),
        )
        .await
        .ok()
}

/// Waits until the SMS workflow reports a final state.
pub async fn wait_final(client: &Client, workflow_id: &str, timeout: Duration) -> SmsStatus {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let status = sms_status(client, workflow_id).await;
        if let Some(status) = &status
            && status.state.is_final()
        {
            return status.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{workflow_id} not final in time: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The phone of simulator customer `i` (see `pcn_tests::customer`).
pub fn phone(i: u64) -> String {
    format!("+9725{i:08}")
}

pub async fn notification_state(db: &TestDb, workflow_id: &str) -> (String, i16) {
    sqlx::query_as("SELECT status, attempts FROM notifications WHERE workflow_id = $1")
        .bind(workflow_id)
        .fetch_one(&db.pool)
        .await
        .expect("notification row")
}

pub async fn post_generic(url: &str, body: &str, signature: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{url}/webhooks/sms-delivery"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("x-carrier-signature", signature);
    }
    request.send().await.expect("webhook answers")
}

async fn events_of(db: &TestDb, workflow_id: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT status, signal_state FROM delivery_events WHERE workflow_id = $1 ORDER BY id",
    )
    .bind(workflow_id)
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

/// Duplicate, reordered and late callbacks change nothing after the first; a bad signature is
/// refused and changes nothing; a malformed body is a 400.
#[tokio::test]
async fn duplicate_reordered_late_and_forged_callbacks_change_nothing() {
    pcn_tests::init();
    let n = 4;
    let SmsBench { db, bank, carrier } = SmsBench::start(
        n,
        CarrierKind::Generic,
        SimConfig {
            callback_delay: Duration::from_millis(100),
            intermediate: true,
            duplicate_ppm: 1_000_000,
            reorder_ppm: 1_000_000,
            ..SimConfig::default()
        },
    )
    .await;
    let queue = unique_task_queue("sms-callbacks");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let client = temporal_client().await;
    let month = YearMonth::parse("2024-06").unwrap();
    let settings = open_window_settings();

    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(start_sms(&client, &queue, month, i, &settings).await);
    }
    for id in &ids {
        let status = wait_final(&client, id, Duration::from_secs(60)).await;
        assert_eq!(status.state, NotificationState::Delivered, "{id}");
        assert_eq!(status.attempt, 1);
        assert_eq!(notification_state(&db, id).await, ("DELIVERED".into(), 1));
    }
    assert!(
        carrier
            .sim
            .wait_callbacks_idle(Duration::from_secs(20))
            .await
    );
    let stats = carrier.sim.stats();
    assert_eq!(stats.accepted, n, "one message per customer");
    // SENT, DELIVERED, DELIVERED again, stale SENT: four callbacks per message, all answered 2xx.
    assert_eq!(stats.callbacks_sent, 4 * n, "{stats:?}");
    assert_eq!(stats.callbacks_failed, 0);
    for id in &ids {
        let events = events_of(&db, id).await;
        assert_eq!(
            events,
            vec![
                ("SENT".to_owned(), "NOT_SIGNALLED".to_owned()),
                ("DELIVERED".to_owned(), "SIGNALLED".to_owned())
            ],
            "{id}: one row per status, only the outcome signalled"
        );
    }

    // A late FAILED for the first (finished) message: stored, answered 200, kept as
    // WORKFLOW_CLOSED, and the notification stays DELIVERED.
    let first = carrier.sim.messages_to(&phone(0)).remove(0);
    let late = serde_json::json!({
        "trackingId": first.carrier_id,
        "messageId": first.idempotency_key.clone().unwrap(),
        "status": "FAILED",
        "deliveryTimestamp": "2024-07-01T10:00:00Z",
        "phoneNumber": phone(0),
        "statusCode": "21614",
    })
    .to_string();
    let secret = SimConfig::default().webhook_secret;
    let sig = signature::generic_signature(secret.as_bytes(), late.as_bytes());
    let url = carrier.webhook_url();
    assert_eq!(post_generic(&url, &late, Some(&sig)).await.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = events_of(&db, &ids[0]).await;
        if events
            .iter()
            .any(|(s, st)| s == "FAILED" && st == "WORKFLOW_CLOSED")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "late event: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(notification_state(&db, &ids[0]).await.0, "DELIVERED");

    // Forged: a FAILED for the second message with a wrong signature → 401, nothing stored.
    let second = carrier.sim.messages_to(&phone(1)).remove(0);
    let forged = late.replace(&first.carrier_id, &second.carrier_id).replace(
        &first.idempotency_key.clone().unwrap(),
        &second.idempotency_key.clone().unwrap(),
    );
    let wrong = signature::generic_signature(b"not-the-secret", forged.as_bytes());
    assert_eq!(
        post_generic(&url, &forged, Some(&wrong)).await.status(),
        401
    );
    assert_eq!(post_generic(&url, &forged, None).await.status(), 401);
    // Signed, but the body changed after signing.
    let tampered = forged.replace("21614", "21211");
    let sig_of_forged = signature::generic_signature(secret.as_bytes(), forged.as_bytes());
    assert_eq!(
        post_generic(&url, &tampered, Some(&sig_of_forged))
            .await
            .status(),
        401
    );
    // Signed garbage: 400.
    let garbage = r#"{"trackingId": 5}"#;
    let sig = signature::generic_signature(secret.as_bytes(), garbage.as_bytes());
    assert_eq!(post_generic(&url, garbage, Some(&sig)).await.status(), 400);
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM delivery_events WHERE workflow_id = $1 AND status = 'FAILED'",
    )
    .bind(&ids[1])
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows, 0, "refused callbacks store nothing");
    assert_eq!(notification_state(&db, &ids[1]).await.0, "DELIVERED");

    crate::replay::check_and_maybe_save_workflow(
        &client,
        &ids[0],
        "sms-delivered-duplicate-callbacks.json",
    )
    .await;

    // Every final state is in the audit log once.
    let audits: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'NOTIFICATION_FINISHED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(audits, i64::try_from(n).unwrap());
    worker.stop();
}

/// Opted-out customers get nothing; a STOP reply opts a customer out (audited) before their
/// message goes out.
#[tokio::test]
async fn opted_out_and_stop_customers_get_nothing() {
    pcn_tests::init();
    let n = 3;
    let db = TestDb::with_customers(n).await;
    // Customer 0 was opted out by an import (a fact in the consent ledger).
    let mut out = pcn_tests::customers_for(1);
    out[0].opted_out = Some(true);
    let imported = pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &out,
        "import:test",
    )
    .await
    .unwrap();
    assert_eq!(imported.opted_out, vec![pcn_bank_sim::customer_id(0)]);
    let bank = spawn_sim(n, 1, Default::default()).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig::default(),
    )
    .await;
    // Customer 1 replies STOP (to an earlier month's message) before this month's goes out.
    assert_eq!(
        carrier
            .sim
            .send_inbound(Api::Generic, &phone(1), " stop ")
            .await
            .unwrap(),
        200
    );
    // The same inbound message again (carrier retry) changes nothing more.
    let opted: (bool, i64) = sqlx::query_as(
        "SELECT c.opted_out, (SELECT count(*) FROM audit_log WHERE action = 'CUSTOMER_OPTED_OUT' AND subject_id = c.customer_id)
           FROM customers c WHERE customer_id = $1",
    )
    .bind(pcn_bank_sim::customer_id(1))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(opted, (true, 1));

    let queue = unique_task_queue("sms-optout");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let client = temporal_client().await;
    let month = YearMonth::parse("2024-07").unwrap();
    let settings = open_window_settings();
    let mut states = Vec::new();
    for i in 0..n {
        let id = start_sms(&client, &queue, month, i, &settings).await;
        states.push(
            wait_final(&client, &id, Duration::from_secs(60))
                .await
                .state,
        );
    }
    assert_eq!(
        states,
        vec![
            NotificationState::OptedOut,
            NotificationState::OptedOut,
            NotificationState::Delivered
        ]
    );
    assert!(carrier.sim.messages_to(&phone(0)).is_empty());
    assert!(carrier.sim.messages_to(&phone(1)).is_empty());
    assert_eq!(carrier.sim.messages_to(&phone(2)).len(), 1);
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM sms_attempts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 1, "no attempt row for opted-out customers");
    worker.stop();
}

/// The Twilio-compatible adapter end to end: form submission with basic auth and idempotency
/// token, `X-Twilio-Signature` checked on every callback (the workflow only completes within the
/// test's time through a verified callback: the first status poll is 2 h away).
#[tokio::test]
async fn twilio_adapter_end_to_end_with_signed_callbacks() {
    pcn_tests::init();
    let n = 3;
    let SmsBench { db, bank, carrier } = SmsBench::start(
        n,
        CarrierKind::Twilio,
        SimConfig {
            callback_delay: Duration::from_millis(50),
            intermediate: true,
            ..SimConfig::default()
        },
    )
    .await;
    carrier
        .sim
        .set_plan(&phone(1), vec![Outcome::RejectInvalidNumber]);
    let queue = unique_task_queue("sms-twilio");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let client = temporal_client().await;
    let month = YearMonth::parse("2024-08").unwrap();
    let settings = open_window_settings();
    let mut results = Vec::new();
    for i in 0..n {
        let id = start_sms(&client, &queue, month, i, &settings).await;
        results.push(wait_final(&client, &id, Duration::from_secs(60)).await);
    }
    assert_eq!(results[0].state, NotificationState::Delivered);
    assert_eq!(
        results[1].state,
        NotificationState::Undeliverable,
        "21211 invalid number is permanent"
    );
    assert_eq!(results[2].state, NotificationState::Delivered);
    let messages = carrier.sim.messages();
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| m.api == Api::Twilio));
    // Twilio keeps no reference of ours: it travels in the StatusCallback URL only.
    assert!(messages.iter().all(|m| {
        m.callback_url
            .as_deref()
            .is_some_and(|u| u.contains("?ref=sms%2F2024-08%2F"))
    }));
    assert!(
        carrier
            .sim
            .wait_callbacks_idle(Duration::from_secs(20))
            .await
    );
    let stats = carrier.sim.stats();
    assert_eq!(stats.callbacks_failed, 0, "{stats:?}");
    assert_eq!(stats.callbacks_by_http_status.get(&401), None, "{stats:?}");

    // A Twilio callback signed with the wrong token is refused.
    let url = format!(
        "{}/webhooks/twilio/status?ref=sms%2F2024-08%2FC0000000000%231",
        carrier.webhook_url()
    );
    let params = vec![
        ("MessageSid".to_owned(), messages[0].carrier_id.clone()),
        ("MessageStatus".to_owned(), "failed".to_owned()),
        ("ErrorCode".to_owned(), "30003".to_owned()),
    ];
    let forged = signature::twilio_signature(b"wrong-token", &url, &params);
    let answer = reqwest::Client::new()
        .post(&url)
        .header("x-twilio-signature", forged)
        .form(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    worker.stop();
}

/// A callback that arrives while the worker is down is stored, signalled into the server, and
/// applied when the worker returns.
#[tokio::test]
async fn a_callback_while_the_worker_is_down_is_applied_when_it_returns() {
    pcn_tests::init();
    let n = 1;
    let SmsBench { db, bank, carrier } = SmsBench::start(
        n,
        CarrierKind::Generic,
        SimConfig {
            callback_delay: Duration::from_millis(10),
            ..SimConfig::default()
        },
    )
    .await;
    carrier.sim.pause_callbacks();
    let queue = unique_task_queue("sms-down");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let client = temporal_client().await;
    let month = YearMonth::parse("2024-09").unwrap();
    let id = start_sms(&client, &queue, month, 0, &open_window_settings()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while sms_status(&client, &id)
        .await
        .is_none_or(|s| s.state != NotificationState::Submitted)
    {
        assert!(tokio::time::Instant::now() < deadline, "never submitted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.stop();

    carrier.sim.resume_callbacks();
    assert!(
        carrier
            .sim
            .wait_callbacks_idle(Duration::from_secs(20))
            .await
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let events = events_of(&db, &id).await;
        if events == vec![("DELIVERED".to_owned(), "SIGNALLED".to_owned())] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{events:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        notification_state(&db, &id).await.0,
        "SUBMITTED",
        "no worker, no change yet"
    );

    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let status = wait_final(&client, &id, Duration::from_secs(60)).await;
    assert_eq!(status.state, NotificationState::Delivered);
    assert_eq!(notification_state(&db, &id).await, ("DELIVERED".into(), 1));
    assert_eq!(carrier.sim.stats().accepted, 1);
    worker.stop();
}
