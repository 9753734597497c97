//! Consent that sticks: a STOP survives imports and unexplained opt-ins, only the customer's own
//! START or an admin with a reason opts back in, a STOP that arrives after the SMS workflow
//! started still wins, and the carrier's "unsubscribed" (21610) opts the customer out for good.
//! The database itself refuses any change of `customers.opted_out` that bypasses the ledger.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_carrier_sim::{Api, Outcome, SimConfig};
use pcn_proto::v1 as pb;
use pcn_tests::{
    InProcessWorker, SmsBench, TestApi, TestCarrier, TestDb, authed, temporal_address,
    temporal_client, unique_task_queue,
};
use pcn_workflows::delivery::FailureCategory;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::sms::NotificationState;
use tonic::Code;

use crate::sms::{open_window_settings, phone, start_sms, wait_final};

/// `(opted_out, ledger rows, CUSTOMER_OPTED_OUT audits, CUSTOMER_OPTED_IN audits)` of customer `i`.
async fn consent_of(pool: &sqlx::PgPool, i: u64) -> (bool, i64, i64, i64) {
    sqlx::query_as(
        "SELECT c.opted_out,
                (SELECT count(*) FROM consent_events WHERE customer_id = c.customer_id),
                (SELECT count(*) FROM audit_log WHERE action = 'CUSTOMER_OPTED_OUT' AND subject_id = c.customer_id),
                (SELECT count(*) FROM audit_log WHERE action = 'CUSTOMER_OPTED_IN' AND subject_id = c.customer_id)
           FROM customers c WHERE customer_id = $1",
    )
    .bind(pcn_bank_sim::customer_id(i))
    .fetch_one(pool)
    .await
    .unwrap()
}

fn row(i: u64, opted_out: Option<bool>) -> pb::CustomerRow {
    let c = &pcn_tests::customers_for(i + 1)[usize::try_from(i).unwrap()];
    pb::CustomerRow {
        customer_id: c.customer_id.as_str().to_owned(),
        account_id: c.account_id.as_str().to_owned(),
        // A routine import also refreshes master data.
        first_name: "Dana-Renamed".to_owned(),
        phone: c.phone.as_e164().to_owned(),
        language: c.language.code().to_owned(),
        monitored_since: c.monitored_since.to_string(),
        opted_out,
        active: Some(true),
    }
}

#[tokio::test]
async fn a_stop_survives_imports_and_unexplained_opt_ins_and_only_an_admin_with_a_reason_undoes_it()
{
    pcn_tests::init();
    let db = TestDb::with_customers(3).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        SimConfig::default(),
    )
    .await;
    let api = TestApi::start(&db, &unique_task_queue("consent-api")).await;
    let mut client = api.client().await;
    let admin = TestApi::token("admin");

    // The customer replies STOP.
    let status = carrier
        .sim
        .send_inbound(Api::Generic, &phone(0), "STOP")
        .await;
    assert_eq!(status.unwrap(), 200);
    assert_eq!(consent_of(&db.pool, 0).await, (true, 1, 1, 0));

    // 1. A routine import without the flag: master data refreshed, consent untouched.
    let imported = client
        .upsert_customers(authed(tokio_stream::iter(vec![row(0, None)]), Some(&admin)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (imported.upserted, imported.rejected),
        (1, 0),
        "{imported:?}"
    );
    assert_eq!(consent_of(&db.pool, 0).await, (true, 1, 1, 0));

    // 2. An import that says opted_out = false: the row is refused whole, with the reason.
    let refused = client
        .upsert_customers(authed(
            tokio_stream::iter(vec![row(0, Some(false)), row(1, Some(false))]),
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refused.rejected, 1, "{refused:?}");
    let error = &refused.errors[0];
    assert_eq!(
        (error.index, error.field.as_str()),
        (0, "opted_out"),
        "{error:?}"
    );
    assert!(
        error.message.contains("opted out by the customer's reply")
            && error.message.contains("cannot opt a customer back in"),
        "{}",
        error.message
    );
    assert_eq!(consent_of(&db.pool, 0).await, (true, 1, 1, 0));
    // The other row (an opted-in customer saying false) is fine and changes nothing of consent.
    assert_eq!(consent_of(&db.pool, 1).await, (false, 0, 0, 0));

    // 3. SetOptOut(false) without a reason: INVALID_ARGUMENT naming the reason.
    let no_reason = client
        .set_opt_out(authed(
            pb::SetOptOutRequest {
                customer_id: pcn_bank_sim::customer_id(0),
                opted_out: false,
                reason: "   ".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!(no_reason.code(), Code::InvalidArgument);
    assert!(no_reason.message().contains("reason"), "{no_reason:?}");
    assert_eq!(consent_of(&db.pool, 0).await, (true, 1, 1, 0));

    // 4. An admin with a reason: opted in, audited.
    let customer = client
        .set_opt_out(authed(
            pb::SetOptOutRequest {
                customer_id: pcn_bank_sim::customer_id(0),
                opted_out: false,
                reason: "signed consent form 2026-11-30".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!customer.opted_out);
    assert_eq!(consent_of(&db.pool, 0).await, (false, 2, 1, 1));

    // An import may opt out, never in.
    let out = client
        .upsert_customers(authed(
            tokio_stream::iter(vec![row(2, Some(true))]),
            Some(&admin),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((out.upserted, out.rejected), (1, 0));
    assert_eq!(consent_of(&db.pool, 2).await, (true, 1, 1, 0));

    // The ledger shows all of it, in order.
    let detail = client
        .get_customer(authed(
            pb::GetCustomerRequest {
                customer_id: pcn_bank_sim::customer_id(0),
                month: String::new(),
            },
            Some(&TestApi::token("viewer")),
        ))
        .await
        .unwrap()
        .into_inner();
    let history: Vec<(bool, &str, &str)> = detail
        .consent
        .iter()
        .map(|e| (e.opted_out, e.source.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        history,
        vec![
            (true, "INBOUND_KEYWORD", "carrier:generic"),
            (false, "ADMIN", "api:admin"),
        ]
    );
    assert_eq!(detail.consent[1].reason, "signed consent form 2026-11-30");

    // The database refuses every path around the ledger: the triggers, even for a superuser
    // (the application role has no privilege for these at all: `least_privilege`).
    for statement in [
        "UPDATE customers SET opted_out = true WHERE customer_id = 'C0000000001'",
        "UPDATE consent_events SET opted_out = false",
        "DELETE FROM consent_events",
        "TRUNCATE consent_events",
    ] {
        let err = sqlx::query(statement).execute(&db.admin).await.unwrap_err();
        assert!(
            err.to_string().contains("consent") || err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    let opt_in_by_import = sqlx::query(
        "INSERT INTO consent_events (customer_id, opted_out, source, actor)
         VALUES ('C0000000002', false, 'IMPORT', 'import:x')",
    )
    .execute(&db.pool)
    .await
    .unwrap_err();
    assert!(
        opt_in_by_import
            .to_string()
            .contains("consent_events_opt_in_source"),
        "{opt_in_by_import}"
    );
    assert_eq!(consent_of(&db.pool, 1).await, (false, 0, 0, 0));
    assert_eq!(consent_of(&db.pool, 2).await, (true, 1, 1, 0));
}

#[tokio::test]
async fn replies_in_every_language_opt_out_start_opts_in_and_anything_else_changes_nothing() {
    pcn_tests::init();
    let db = TestDb::with_customers(6).await;
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Twilio,
        SimConfig::default(),
    )
    .await;
    for (i, api, text) in [
        (0, Api::Generic, "עצור"),
        (1, Api::Twilio, "توقف"),
        (2, Api::Generic, "Стоп"),
        (3, Api::Twilio, "Stop!"),
    ] {
        let answer = carrier
            .sim
            .send_inbound(api, &phone(i), text)
            .await
            .unwrap();
        assert_eq!(answer, 200, "{text}");
        assert!(
            consent_of(&db.pool, i).await.0,
            "{text} opts customer {i} out"
        );
    }
    // Not a STOP: a sentence, an empty text, an unknown number. Stored, answered 200, no change.
    for (from, text) in [
        (phone(4), "please don't stop the messages"),
        (phone(4), ""),
        ("+972599999999".to_owned(), "STOP"),
    ] {
        let answer = carrier
            .sim
            .send_inbound(Api::Generic, &from, text)
            .await
            .unwrap();
        assert_eq!(answer, 200, "{text:?}");
    }
    assert_eq!(consent_of(&db.pool, 4).await, (false, 0, 0, 0));
    let ignored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM inbound_messages WHERE action = 'IGNORED'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(ignored, 3, "kept, not lost");
    // The customer's own START opts them back in.
    let answer = carrier
        .sim
        .send_inbound(Api::Generic, &phone(3), " START ")
        .await
        .unwrap();
    assert_eq!(answer, 200);
    assert_eq!(consent_of(&db.pool, 3).await, (false, 2, 1, 1));
}

#[tokio::test]
async fn a_stop_after_the_workflow_started_but_before_submission_wins() {
    pcn_tests::init();
    let n = 2;
    let SmsBench { db, bank, carrier } =
        SmsBench::start(n, CarrierKind::Generic, SimConfig::default()).await;
    let queue = unique_task_queue("consent-race");
    let client = temporal_client().await;
    let month = YearMonth::parse("2022-06").unwrap();
    // The workflows start (as the fan-out would) while no worker polls the queue yet…
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(start_sms(&client, &queue, month, i, &open_window_settings()).await);
    }
    // …the customer replies STOP meanwhile…
    let answer = carrier
        .sim
        .send_inbound(Api::Generic, &phone(0), "STOP")
        .await;
    assert_eq!(answer.unwrap(), 200);
    // …and only then a worker picks them up.
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let stopped = wait_final(&client, &ids[0], Duration::from_secs(60)).await;
    let other = wait_final(&client, &ids[1], Duration::from_secs(60)).await;
    worker.stop();
    assert_eq!(stopped.state, NotificationState::OptedOut);
    assert_eq!(other.state, NotificationState::Delivered);
    assert!(
        carrier.sim.messages_to(&phone(0)).is_empty(),
        "no message after STOP"
    );
    assert_eq!(carrier.sim.messages_to(&phone(1)).len(), 1);
}

#[tokio::test]
async fn twilio_unsubscribed_opts_out_for_good_and_content_filtered_is_undeliverable_without_retry()
{
    pcn_tests::init();
    let n = 2;
    let SmsBench { db, bank, carrier } = SmsBench::start(
        n,
        CarrierKind::Twilio,
        SimConfig {
            callback_delay: Duration::from_millis(50),
            ..SimConfig::default()
        },
    )
    .await;
    carrier
        .sim
        .set_plan(&phone(0), vec![Outcome::RejectUnsubscribed]);
    carrier
        .sim
        .set_plan(&phone(1), vec![Outcome::content_filtered()]);
    let queue = unique_task_queue("consent-twilio");
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let client = temporal_client().await;
    let month = YearMonth::parse("2022-07").unwrap();
    let mut finals = Vec::new();
    for i in 0..n {
        let id = start_sms(&client, &queue, month, i, &open_window_settings()).await;
        finals.push(wait_final(&client, &id, Duration::from_secs(60)).await);
    }
    worker.stop();
    // 21610: OPTED_OUT, the customer opted out in the ledger by the carrier, nothing retried.
    assert_eq!(finals[0].state, NotificationState::OptedOut);
    assert_eq!(finals[0].failure_category, Some(FailureCategory::OptedOut));
    assert_eq!(finals[0].attempt, 1);
    let source: String = sqlx::query_scalar(
        "SELECT source FROM consent_events WHERE customer_id = $1 AND opted_out",
    )
    .bind(pcn_bank_sim::customer_id(0))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(source, "CARRIER_ERROR");
    assert!(consent_of(&db.pool, 0).await.0);
    // 30007: UNDELIVERABLE (content filtered), one message, no second attempt.
    assert_eq!(finals[1].state, NotificationState::Undeliverable);
    assert_eq!(
        finals[1].failure_category,
        Some(FailureCategory::ContentFiltered)
    );
    assert_eq!(finals[1].attempt, 1);
    assert_eq!(carrier.sim.messages_to(&phone(1)).len(), 1);
    assert_eq!(
        carrier.sim.stats().submissions,
        2,
        "one submission each, no retry"
    );
}
