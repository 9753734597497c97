//! Phone numbers at rest (issue 12): sealed in every table, never readable by the application
//! role, masked in the stored callback bodies; an inbound STOP still finds its customer by number,
//! before and after `pcn-worker rotate-keys`, which is batched, resumable and audited.

use std::time::Duration;

use pcn_activities::carrier::CarrierKind;
use pcn_activities::carrier::events::InboundSms;
use pcn_activities::consent::{self, InboundAction};
use pcn_activities::keyring::{BlindIndex, Keyring, development};
use pcn_activities::phone_vault::PhoneVault;
use pcn_carrier_sim::{Api, SimConfig};
use pcn_tests::{
    InProcessWorker, SmsBench, TestDb, temporal_client, unique_task_queue, workspace_binary,
};
use pcn_workflows::domain::{Phone, YearMonth};
use pcn_workflows::sms::NotificationState;
use sqlx::PgPool;

use crate::sms::{open_window_settings, phone, start_sms, wait_final};

/// A second key (`k2`), made for this test.
const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

/// The phone digits (without `+972`) of customers `0..n`: what must never be found in clear.
fn national(n: u64) -> Vec<String> {
    (0..n).map(|i| phone(i)[4..].to_owned()).collect()
}

/// Every row of every table of the schema, as the application role reads it (JSON text; bytea
/// as hex), with the table's name.
async fn every_row(pool: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 10, "the schema's tables: {tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let json: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {table} t"
        )))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("the application role reads {table}: {e}"));
        rows.extend(json.into_iter().map(|row| (table.clone(), row)));
    }
    rows
}

fn vault(ring: &str) -> PhoneVault {
    PhoneVault::new(
        Keyring::parse("PCN_PHONE_KEYS", ring).unwrap(),
        BlindIndex::parse("PCN_PHONE_INDEX_KEY", development::PHONE_INDEX_KEY).unwrap(),
    )
}

fn inbound(from: &str, id: &str, body: &str) -> InboundSms {
    InboundSms {
        carrier: CarrierKind::Generic,
        carrier_message_id: id.to_owned(),
        from: Phone::parse(from).unwrap(),
        body: body.to_owned(),
    }
}

async fn key_ids(db: &TestDb) -> Vec<(String, Option<String>, i64)> {
    sqlx::query_as(
        "SELECT 'customers', phone_key_id, count(*) FROM customers GROUP BY 2
         UNION ALL SELECT 'sms_attempts', phone_key_id, count(*) FROM sms_attempts GROUP BY 2
         UNION ALL SELECT 'inbound_messages', phone_key_id, count(*) FROM inbound_messages GROUP BY 2
         ORDER BY 1, 2",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn no_table_holds_a_phone_in_clear_and_stop_finds_its_customer_before_and_after_rotation() {
    pcn_tests::init();
    let n = 3;
    let SmsBench { db, bank, carrier } =
        SmsBench::start(n, CarrierKind::Twilio, SimConfig::default()).await;
    let queue = unique_task_queue("phones");
    let client = temporal_client().await;
    let month = YearMonth::parse("2021-07").unwrap();
    let worker = InProcessWorker::with_carrier(&queue, &db, &bank, &carrier);
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(start_sms(&client, &queue, month, i, &open_window_settings()).await);
    }
    for id in &ids {
        let status = wait_final(&client, id, Duration::from_secs(90)).await;
        assert_eq!(status.state, NotificationState::Delivered, "{id}");
    }
    worker.stop();
    // The carrier sent to the real numbers (opened from the sealed rows).
    for i in 0..n {
        assert_eq!(carrier.sim.messages_to(&phone(i)).len(), 1, "customer {i}");
    }
    // Replies through the real webhook: a STOP by number (Twilio form) and a chat (generic JSON).
    assert_eq!(
        carrier
            .sim
            .send_inbound(Api::Twilio, &phone(1), "STOP")
            .await
            .unwrap(),
        200
    );
    assert_eq!(
        carrier
            .sim
            .send_inbound(Api::Generic, &phone(2), "hello")
            .await
            .unwrap(),
        200
    );
    let opted: Vec<String> =
        sqlx::query_scalar("SELECT customer_id FROM customers WHERE opted_out ORDER BY 1")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        opted,
        vec![pcn_bank_sim::customer_id(1)],
        "STOP found its customer by number"
    );

    // Nothing the application role can read holds a number: not the customers, attempts or
    // replies (sealed), not the stored callback bodies (masked), not any other table.
    let rows = every_row(&db.pool).await;
    let callbacks = rows.iter().filter(|(t, _)| t == "delivery_events").count();
    assert!(callbacks >= 3, "callbacks stored: {callbacks}");
    for (table, row) in &rows {
        for digits in national(n) {
            assert!(
                !row.contains(&digits),
                "{table} holds {digits} in clear: {row}"
            );
        }
    }
    let masked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM delivery_events WHERE raw LIKE '%To=%2B97250*****%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        usize::try_from(masked).unwrap(),
        callbacks,
        "every body kept, masked"
    );
    let shown: Vec<String> = sqlx::query_scalar("SELECT phone_masked FROM customers ORDER BY 1")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(shown[0], "+97250*****00");
    // The application role cannot store a number in clear, even on purpose.
    for statement in [
        "UPDATE customers SET phone_e164 = '+972500000000'",
        "INSERT INTO inbound_messages (carrier, carrier_message_id, phone_e164, body, action)
         VALUES ('generic', 'x', '+972500000000', 'x', 'IGNORED')",
    ] {
        let err = sqlx::query(statement).execute(&db.pool).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{statement}: {err}"
        );
    }

    // Rotation to k2 (dev1 kept on the ring to open the old values), stopped after its first
    // batch by a failpoint, then finished by running it again.
    let before = key_ids(&db).await;
    let total: i64 = before.iter().map(|(_, _, c)| c).sum();
    assert!(
        before.iter().all(|(_, k, _)| k.as_deref() == Some("dev1")),
        "{before:?}"
    );
    let ring = format!("{K2},{}", development::PHONE_KEYS);
    let rotate = |failpoint: Option<&str>| {
        let mut cmd = std::process::Command::new(workspace_binary("pcn-worker"));
        cmd.args(["rotate-keys", "--batch", "2"])
            .env("PCN_PROFILE", "development")
            .env("PCN_DATABASE_URL", &db.url)
            .env(
                "PCN_DATABASE_SETUP_URL",
                db.url.replace(pcn_tests::APP_ROLE, "postgres"),
            )
            .env("PCN_PHONE_KEYS", &ring)
            .env_remove("PCN_FAILPOINT");
        if let Some(point) = failpoint {
            cmd.env("PCN_FAILPOINT", point);
        }
        cmd.output().expect("run pcn-worker rotate-keys")
    };
    let crashed = rotate(Some("rotate.after_batch"));
    assert!(!crashed.status.success(), "the failpoint aborts the run");
    let halfway = key_ids(&db).await;
    let on_k2: i64 = halfway
        .iter()
        .filter(|(_, k, _)| k.as_deref() == Some("k2"))
        .map(|r| r.2)
        .sum();
    assert_eq!(
        on_k2, 2,
        "one batch of 2 committed before the crash: {halfway:?}"
    );
    let done = rotate(None);
    let out = String::from_utf8_lossy(&done.stdout);
    assert!(
        done.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(out.contains("sealed with key k2"), "{out}");
    let after = key_ids(&db).await;
    assert!(
        after.iter().all(|(_, k, _)| k.as_deref() == Some("k2")),
        "{after:?}"
    );
    assert_eq!(
        after.iter().map(|r| r.2).sum::<i64>(),
        total,
        "no row lost or added"
    );
    // Nothing left: a third run seals nothing, and every run is audited.
    let again = rotate(None);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 customers, 0 sms_attempts, 0"));
    let audits: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'PHONE_KEYS_ROTATED' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        audits.len(),
        2,
        "the crashed run wrote no entry; the two others did"
    );
    let counted = |d: &serde_json::Value| {
        ["customers", "sms_attempts", "inbound_messages"]
            .iter()
            .map(|t| d[t].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!(counted(&audits[0]) + 2, total);
    assert_eq!(counted(&audits[1]), 0);

    // With the old key gone from the ring, everything still opens and STOP still finds by number.
    let k2_only = vault(K2);
    let stop = consent::record_inbound(
        &db.pool,
        &k2_only,
        &inbound(&phone(0), "after-rotation", "STOP"),
    )
    .await
    .unwrap();
    assert_eq!(stop, (InboundAction::OptedOut, 1));
    let reference = format!("{}#1", ids[2]);
    let rows =
        pcn_activities::attempts::load_many(&db.pool, &k2_only, std::slice::from_ref(&reference))
            .await
            .unwrap();
    assert_eq!(rows[&reference].phone.as_e164(), phone(2));
    // A ring without the key a value was sealed with names that key and reads nothing.
    let err = pcn_activities::attempts::load_many(
        &db.pool,
        &vault(development::PHONE_KEYS),
        &[reference],
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("key `k2`, which is not on the keyring"),
        "{err:#}"
    );
}
