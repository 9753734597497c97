//! The simulator over real HTTP: both APIs, repeated references (new messages by default,
//! deduplicated on request), plans, the status and list APIs, signed callbacks (with duplicates,
//! reordering, early callbacks, retries, pause/resume), slow answers, faults, auth and inbound
//! replies.
//!
//! The simulator's defaults are unkind (like a real carrier). Tests that count callbacks exactly
//! or need repeats deduplicated say so in their configuration: [`punctual`] callbacks, and
//! `dedup_references: true`.
//!
//! Over 600 lines: the carrier simulator's HTTP tests (both APIs, signatures, plans, duplicates,
//! outages, inbound), sharing one harness.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use pcn_carrier_sim::{
    Api, Faults, Outcome, OutcomeMix, SimConfig, SimHandle, sign_generic, spawn, twilio_signature,
};
use serde_json::{Value, json};

const KEY: &str = "dev-carrier-key";
const SECRET: &str = "dev-webhook-secret";
const TOKEN: &str = "dev-twilio-token";
const PHONE: &str = "+972501234567";
const IDLE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn spawn_sim(config: SimConfig) -> SimHandle {
    spawn(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// A fast simulator: callbacks 20 ms after acceptance (otherwise the unkind defaults).
fn fast() -> SimConfig {
    SimConfig {
        callback_delay: Duration::from_millis(20),
        ..SimConfig::default()
    }
}

/// [`fast`] with callbacks exactly once and on time: no duplicates, no stale SENTs, no jitter,
/// none ahead of the answer. For tests that count callbacks.
fn punctual() -> SimConfig {
    SimConfig {
        callback_jitter: Duration::ZERO,
        duplicate_ppm: 0,
        reorder_ppm: 0,
        early_callback_ppm: 0,
        ..fast()
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

/// One request our test webhook received.
#[derive(Debug, Clone)]
struct Received {
    /// Path and query, exactly as requested.
    uri: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    fn form_field(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).unwrap().to_str().unwrap()
    }
}

/// A tiny webhook that records everything, answers 500 to the first `fail_first` requests and
/// 200 after, optionally slowly.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<AtomicUsize>,
    delay_ms: Arc<AtomicU64>,
}

impl Receiver {
    async fn start() -> Self {
        let got = Arc::new(Mutex::new(Vec::new()));
        let fail_first = Arc::new(AtomicUsize::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (g, f, d) = (
            Arc::clone(&got),
            Arc::clone(&fail_first),
            Arc::clone(&delay_ms),
        );
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let (g, f, d) = (Arc::clone(&g), Arc::clone(&f), Arc::clone(&d));
            async move {
                let delay = d.load(Ordering::SeqCst);
                if delay > 0 {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                }
                g.lock().unwrap().push(Received {
                    uri: uri.to_string(),
                    headers,
                    body,
                });
                let failing = f
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if failing {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            got,
            fail_first,
            delay_ms,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn received_on(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.uri.starts_with(prefix))
            .collect()
    }
}

fn generic_message(id: &str, phone: &str, callback: Option<&str>) -> Value {
    json!({
        "messageId": id,
        "phoneNumber": phone,
        "content": "Your balance is above 15,000 NIS",
        "priority": "HIGH",
        "callbackUrl": callback,
    })
}

async fn submit_generic(
    c: &reqwest::Client,
    sim: &SimHandle,
    messages: Vec<Value>,
) -> (StatusCode, Value) {
    submit_generic_with_key(c, sim, messages, KEY).await
}

async fn submit_generic_with_key(
    c: &reqwest::Client,
    sim: &SimHandle,
    messages: Vec<Value>,
    key: &str,
) -> (StatusCode, Value) {
    let resp = c
        .post(format!("{}/api/v1/messages/batch", sim.base_url()))
        .bearer_auth(key)
        .json(&json!({
            "batchId": "B-1",
            "messages": messages,
            "metadata": {"campaignId": "premium-2026-10", "correlationId": "corr-1"},
        }))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn generic_status(
    c: &reqwest::Client,
    sim: &SimHandle,
    tracking_id: &str,
) -> (StatusCode, Value) {
    let resp = c
        .get(format!(
            "{}/api/v1/messages/{tracking_id}/status",
            sim.base_url()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn messages_url(sim: &SimHandle) -> String {
    format!(
        "{}/2010-04-01/Accounts/{}/Messages.json",
        sim.base_url(),
        sim.config().twilio_account_sid
    )
}

/// A Twilio create: (status, headers, body).
async fn submit_twilio(
    c: &reqwest::Client,
    sim: &SimHandle,
    to: &str,
    callback: Option<&str>,
    token: Option<&str>,
    auth_token: &str,
) -> (StatusCode, HeaderMap, Value) {
    let mut form = vec![("To", to), ("From", "+15005550006"), ("Body", "Hello")];
    if let Some(cb) = callback {
        form.push(("StatusCallback", cb));
    }
    let mut req = c
        .post(messages_url(sim))
        .basic_auth(sim.config().twilio_account_sid, Some(auth_token))
        .form(&form);
    if let Some(t) = token {
        req = req.header("I-Twilio-Idempotency-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let headers = resp.headers().clone();
    (status, headers, resp.json().await.unwrap_or(Value::Null))
}

async fn twilio_fetch(c: &reqwest::Client, sim: &SimHandle, sid: &str) -> (StatusCode, Value) {
    let cfg = sim.config();
    let resp = c
        .get(format!(
            "{}/2010-04-01/Accounts/{}/Messages/{sid}.json",
            sim.base_url(),
            cfg.twilio_account_sid
        ))
        .basic_auth(&cfg.twilio_account_sid, Some(&cfg.twilio_auth_token))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Recomputes `X-Carrier-Signature` independently of the simulator's code.
fn expect_generic_signature(r: &Received) {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.header("x-carrier-signature"), expected);
    assert_eq!(r.header("content-type"), "application/json");
}

/// Recomputes `X-Twilio-Signature` independently: full URL (query included) + the received
/// params sorted by name, HMAC-SHA1 with the auth token, base64.
fn expect_twilio_signature(base: &str, r: &Received) {
    let url = format!("{base}{}", r.uri);
    let mut params = r.form();
    params.sort();
    let mut data = url.clone();
    for (k, v) in &params {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(r.header("x-twilio-signature"), expected, "url {url}");
    // And the library helper agrees.
    assert_eq!(twilio_signature(TOKEN, &url, &r.form()), expected);
}

fn ref_callback(base: &str, msg_ref: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(msg_ref.as_bytes()).collect();
    format!("{base}/webhooks/twilio/status?ref={encoded}")
}

// ---------------------------------------------------------------------------------------------
// Generic API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_generic_batch_is_answered_in_order_and_recorded() {
    let sim = spawn_sim(fast()).await;
    let c = client();
    let (status, body) = submit_generic(
        &c,
        &sim,
        vec![
            generic_message("sms/2026-10/C0000000001#1", PHONE, None),
            generic_message("sms/2026-10/C0000000002#1", "0501234567", None),
            generic_message("sms/2026-10/C0000000003#1", "+972507654321", None),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["batchId"], "B-1");
    assert_eq!(body["submissionStatus"], "ACCEPTED");
    assert!(
        chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok(),
        "{body}"
    );
    let items = body["messages"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["messageId"], "sms/2026-10/C0000000001#1");
    assert_eq!(items[0]["status"], "QUEUED");
    assert!(items[0]["trackingId"].is_string());
    assert!(items[0]["errorCode"].is_null());
    assert_eq!(items[1]["status"], "REJECTED");
    assert_eq!(items[1]["errorCode"], "21211");
    assert!(items[1]["trackingId"].is_null());
    assert_eq!(items[2]["status"], "QUEUED");
    assert_ne!(items[0]["trackingId"], items[2]["trackingId"]);

    let messages = sim.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].api, Api::Generic);
    assert_eq!(messages[0].to, PHONE);
    assert_eq!(
        messages[0].idempotency_key.as_deref(),
        Some("sms/2026-10/C0000000001#1")
    );
    assert_eq!(
        messages[0].carrier_id,
        items[0]["trackingId"].as_str().unwrap()
    );
    assert_eq!(messages[0].outcome, Outcome::Delivered);
    assert_eq!(sim.messages_to(PHONE).len(), 1);
    assert_eq!(sim.message_counts_by_phone().get("+972507654321"), Some(&1));

    let s = sim.stats();
    assert_eq!((s.submissions, s.accepted, s.rejected), (3, 2, 1));

    // Whole-batch errors.
    let (status, body) = submit_generic(&c, &sim, vec![]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].is_string());
    let too_many = (0..1001)
        .map(|i| generic_message(&format!("m{i}"), PHONE, None))
        .collect();
    assert_eq!(
        submit_generic(&c, &sim, too_many).await.0,
        StatusCode::BAD_REQUEST
    );
    let resp = c
        .post(format!("{}/api/v1/messages/batch", sim.base_url()))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(sim.stats().bad_requests, 3);
    assert_eq!(sim.messages().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn with_dedup_on_a_repeated_message_id_gets_the_first_answer_and_records_nothing() {
    let sim = spawn_sim(SimConfig {
        dedup_references: true,
        ..fast()
    })
    .await;
    let c = client();
    let id = "sms/2026-10/C0000000042#1";
    let (_, first) = submit_generic(&c, &sim, vec![generic_message(id, PHONE, None)]).await;
    let (status, again) = submit_generic(
        &c,
        &sim,
        vec![
            generic_message(id, PHONE, None),
            generic_message("sms/2026-10/C0000000042#2", PHONE, None),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(again["messages"][0], first["messages"][0]);
    assert_ne!(
        again["messages"][1]["trackingId"],
        first["messages"][0]["trackingId"]
    );
    assert_eq!(sim.messages_to(PHONE).len(), 2);
    let s = sim.stats();
    assert_eq!(s.duplicate_submissions, 1);
    assert_eq!(s.accepted, 2);
    assert_eq!(s.submissions, 3);
    assert_eq!(s.repeated_references, 0);
    assert!(sim.repeated_references_by_phone().is_empty());
    assert_eq!(sim.messages_by_reference().get(id), Some(&1));

    // A rejected messageId stays rejected on resubmission, without counting twice.
    sim.set_plan("+972500000001", vec![Outcome::RejectCarrier]);
    let (_, r1) = submit_generic(
        &c,
        &sim,
        vec![generic_message("rej", "+972500000001", None)],
    )
    .await;
    let (_, r2) = submit_generic(
        &c,
        &sim,
        vec![generic_message("rej", "+972500000001", None)],
    )
    .await;
    assert_eq!(r1["messages"][0]["errorCode"], "21614");
    assert_eq!(r2["messages"][0], r1["messages"][0]);
    assert_eq!(sim.stats().rejected, 1);
    assert_eq!(sim.stats().duplicate_submissions, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_plan_is_consumed_one_outcome_per_new_submission() {
    // Deduplicated, so the resubmissions in between are not new submissions.
    let sim = spawn_sim(SimConfig {
        dedup_references: true,
        ..fast()
    })
    .await;
    let c = client();
    sim.set_plan(
        PHONE,
        vec![
            Outcome::RejectCarrier,
            Outcome::failed("21614"),
            Outcome::undeliverable("30005"),
            Outcome::Delivered,
        ],
    );
    let mut answers = Vec::new();
    for attempt in 1..=5 {
        let id = format!("sms/2026-10/C0000000042#{attempt}");
        let (_, body) = submit_generic(&c, &sim, vec![generic_message(&id, PHONE, None)]).await;
        answers.push(body["messages"][0].clone());
        // A duplicate in between never consumes the plan.
        submit_generic(&c, &sim, vec![generic_message(&id, PHONE, None)]).await;
    }
    assert_eq!(answers[0]["status"], "REJECTED");
    assert_eq!(answers[0]["errorCode"], "21614");
    let outcomes: Vec<Outcome> = sim
        .messages_to(PHONE)
        .into_iter()
        .map(|m| m.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            Outcome::failed("21614"),
            Outcome::undeliverable("30005"),
            Outcome::Delivered,
            // The plan is used up: the default mix (all delivered).
            Outcome::Delivered,
        ]
    );

    // The Twilio API follows plans too: a synchronous rejection is a 400.
    sim.set_plan(
        PHONE,
        vec![Outcome::RejectInvalidNumber, Outcome::RejectCarrier],
    );
    let (status, _, body) = submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 21211);
    assert_eq!(body["status"], 400);
    let (status, _, body) = submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 21614);
    assert_eq!(sim.messages_to(PHONE).len(), 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_mix_is_deterministic_from_the_seed_and_the_message_id() {
    let config = SimConfig {
        mix: OutcomeMix {
            delivered_ppm: 250_000,
            failed_ppm: 250_000,
            undeliverable_ppm: 250_000,
            silent_ppm: 250_000,
        },
        ..fast()
    };
    let a = spawn_sim(config.clone()).await;
    let b = spawn_sim(config).await;
    let c = client();
    let batch: Vec<Value> = (0..40)
        .map(|i| generic_message(&format!("sms/2026-10/C{i:010}#1"), PHONE, None))
        .collect();
    submit_generic(&c, &a, batch.clone()).await;
    // The other simulator sees them in reverse order: outcomes follow the ids, not the order.
    submit_generic(&c, &b, batch.into_iter().rev().collect()).await;
    let outcome_of = |sim: &SimHandle| {
        let mut v: Vec<(String, Outcome)> = sim
            .messages()
            .into_iter()
            .map(|m| (m.idempotency_key.unwrap(), m.outcome))
            .collect();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let (oa, ob) = (outcome_of(&a), outcome_of(&b));
    assert_eq!(oa, ob);
    let distinct: std::collections::HashSet<_> = oa.iter().map(|(_, o)| o.clone()).collect();
    assert_eq!(distinct.len(), 4, "{oa:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_status_api_says_queued_then_the_final_status() {
    let sim = spawn_sim(SimConfig {
        status_delay: Duration::from_millis(300),
        ..fast()
    })
    .await;
    let c = client();
    sim.set_plan(
        PHONE,
        vec![
            Outcome::failed("21614"),
            Outcome::Silent,
            Outcome::Delivered,
        ],
    );
    let (_, body) = submit_generic(
        &c,
        &sim,
        vec![
            generic_message("m1", PHONE, None),
            generic_message("m2", PHONE, None),
            generic_message("m3", PHONE, None),
        ],
    )
    .await;
    let ids: Vec<String> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["trackingId"].as_str().unwrap().to_owned())
        .collect();
    let (status, early) = generic_status(&c, &sim, &ids[0]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(early["status"], "QUEUED");
    assert_eq!(early["messageId"], "m1");
    assert!(early["deliveryTimestamp"].is_null());

    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, failed) = generic_status(&c, &sim, &ids[0]).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["statusCode"], "21614");
    assert_eq!(failed["trackingId"], ids[0].as_str());
    let (_, silent) = generic_status(&c, &sim, &ids[1]).await;
    assert_eq!(silent["status"], "SENT");
    let (_, delivered) = generic_status(&c, &sim, &ids[2]).await;
    assert_eq!(delivered["status"], "DELIVERED");
    assert!(delivered["deliveryTimestamp"].is_string());
    assert!(delivered["statusMessage"].is_string());

    let (status, _) = generic_status(&c, &sim, "TRK-nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(sim.stats().status_queries, 5);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Twilio API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn twilio_create_fetch_and_a_deduplicated_idempotency_token() {
    let sim = spawn_sim(SimConfig {
        status_delay: Duration::from_millis(200),
        dedup_references: true,
        ..fast()
    })
    .await;
    let c = client();
    let sid_account = sim.config().twilio_account_sid;
    sim.set_plan(PHONE, vec![Outcome::undeliverable("30005")]);
    let (status, _, created) =
        submit_twilio(&c, &sim, PHONE, None, Some("sms/2026-10/C1#1"), TOKEN).await;
    assert_eq!(status, StatusCode::CREATED);
    let sid = created["sid"].as_str().unwrap().to_owned();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
    assert!(sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(created["status"], "queued");
    assert_eq!(created["account_sid"], sid_account.as_str());
    assert_eq!(created["to"], PHONE);
    assert_eq!(created["from"], "+15005550006");
    assert_eq!(created["num_segments"], "1");
    assert!(created["error_code"].is_null());
    assert!(
        chrono::DateTime::parse_from_rfc2822(created["date_created"].as_str().unwrap()).is_ok()
    );
    assert_eq!(
        created["uri"],
        format!("/2010-04-01/Accounts/{sid_account}/Messages/{sid}.json")
    );

    // Same token: the same resource, nothing new recorded.
    let (status, _, again) =
        submit_twilio(&c, &sim, PHONE, None, Some("sms/2026-10/C1#1"), TOKEN).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again, created);
    assert_eq!(sim.messages().len(), 1);
    assert_eq!(sim.stats().duplicate_submissions, 1);
    assert_eq!(sim.stats().repeated_references, 0);
    // No token: always a new message.
    let (_, _, other) = submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_ne!(other["sid"], created["sid"]);
    assert_eq!(sim.messages().len(), 2);
    assert_eq!(
        sim.messages()[0].idempotency_key.as_deref(),
        Some("sms/2026-10/C1#1")
    );
    assert_eq!(sim.messages()[1].idempotency_key, None);

    let (status, fetched) = twilio_fetch(&c, &sim, &sid).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["status"], "queued");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, fetched) = twilio_fetch(&c, &sim, &sid).await;
    assert_eq!(fetched["status"], "undelivered");
    assert_eq!(fetched["error_code"], 30005);
    let (status, missing) = twilio_fetch(&c, &sim, "SM0000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], 20404);

    // Request errors.
    let resp = c
        .post(messages_url(&sim))
        .basic_auth(&sid_account, Some(TOKEN))
        .form(&[("To", PHONE), ("From", "+15005550006")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 21602);
    let resp = c
        .post(messages_url(&sim))
        .basic_auth(&sid_account, Some(TOKEN))
        .form(&[("Body", "x"), ("From", "+15005550006")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 21604);
    let (status, _, invalid) = submit_twilio(&c, &sim, "+0123", None, None, TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid["code"], 21211);
    assert!(invalid["more_info"].is_string());
    assert_eq!(sim.messages().len(), 2);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Callbacks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn generic_callbacks_carry_the_final_status_and_a_valid_signature() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cb = format!("{}/webhooks/generic/status", recv.url);
    sim.set_plan("+972500000002", vec![Outcome::failed("21614")]);
    let (_, body) = submit_generic(
        &c,
        &sim,
        vec![
            generic_message("sms/2026-10/C1#1", PHONE, Some(&cb)),
            generic_message("sms/2026-10/C2#1", "+972500000002", Some(&cb)),
            // No callback URL: nothing is sent.
            generic_message("sms/2026-10/C3#1", "+972500000003", None),
        ],
    )
    .await;
    assert!(sim.wait_callbacks_idle(IDLE).await);
    let got = recv.received();
    assert_eq!(got.len(), 2, "{got:?}");
    let mut by_id: Vec<Value> = got
        .iter()
        .map(|r| {
            expect_generic_signature(r);
            assert_eq!(r.uri, "/webhooks/generic/status");
            r.json()
        })
        .collect();
    by_id.sort_by_key(|v| v["messageId"].as_str().unwrap().to_owned());
    assert_eq!(by_id[0]["messageId"], "sms/2026-10/C1#1");
    assert_eq!(by_id[0]["trackingId"], body["messages"][0]["trackingId"]);
    assert_eq!(by_id[0]["status"], "DELIVERED");
    assert_eq!(by_id[0]["phoneNumber"], PHONE);
    assert!(by_id[0]["deliveryTimestamp"].is_string());
    assert_eq!(by_id[1]["status"], "FAILED");
    assert_eq!(by_id[1]["statusCode"], "21614");
    // A forged body would not verify with the published helper either.
    assert_ne!(
        sign_generic(SECRET.as_bytes(), b"{}"),
        got[0].header("x-carrier-signature")
    );
    let s = sim.stats();
    assert_eq!(s.callbacks_sent, 2);
    assert_eq!(s.callback_attempts, 2);
    assert_eq!(s.callbacks_by_http_status.get(&200), Some(&2));
    sim.shutdown().await;
}

#[tokio::test]
async fn twilio_callbacks_are_signed_over_the_full_url_with_the_query() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cb = ref_callback(&recv.url, "sms/2026-10/C0000000042#1");
    assert!(cb.contains("?ref=sms%2F2026-10%2FC0000000042%231"), "{cb}");
    sim.set_plan(PHONE, vec![Outcome::failed("30003")]);
    let (_, _, created) = submit_twilio(&c, &sim, PHONE, Some(&cb), Some("t1"), TOKEN).await;
    let (_, _, delivered) = submit_twilio(&c, &sim, "+972500000009", Some(&cb), None, TOKEN).await;
    assert!(sim.wait_callbacks_idle(IDLE).await);
    let got = recv.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(
            r.uri,
            "/webhooks/twilio/status?ref=sms%2F2026-10%2FC0000000042%231"
        );
        assert_eq!(
            r.header("content-type"),
            "application/x-www-form-urlencoded"
        );
        expect_twilio_signature(&recv.url, r);
        assert_eq!(r.form_field("ApiVersion").as_deref(), Some("2010-04-01"));
        assert_eq!(
            r.form_field("AccountSid"),
            Some(sim.config().twilio_account_sid)
        );
        assert_eq!(r.form_field("MessageSid"), r.form_field("SmsSid"));
        assert_eq!(r.form_field("MessageStatus"), r.form_field("SmsStatus"));
    }
    let failed = got
        .iter()
        .find(|r| r.form_field("MessageSid").as_deref() == created["sid"].as_str())
        .unwrap();
    assert_eq!(
        failed.form_field("MessageStatus").as_deref(),
        Some("failed")
    );
    assert_eq!(failed.form_field("ErrorCode").as_deref(), Some("30003"));
    assert_eq!(failed.form_field("To").as_deref(), Some(PHONE));
    assert_eq!(failed.form_field("From").as_deref(), Some("+15005550006"));
    let ok = got
        .iter()
        .find(|r| r.form_field("MessageSid").as_deref() == delivered["sid"].as_str())
        .unwrap();
    assert_eq!(ok.form_field("MessageStatus").as_deref(), Some("delivered"));
    assert_eq!(ok.form_field("ErrorCode"), None);
    sim.shutdown().await;
}

#[tokio::test]
async fn intermediate_duplicate_and_stale_callbacks_come_in_that_order() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(SimConfig {
        intermediate: true,
        duplicate_ppm: 1_000_000,
        reorder_ppm: 1_000_000,
        ..punctual()
    })
    .await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    submit_generic(&c, &sim, vec![generic_message("m1", PHONE, Some(&cb))]).await;
    let tw = ref_callback(&recv.url, "sms/2026-10/C1#1");
    submit_twilio(&c, &sim, "+972500000007", Some(&tw), None, TOKEN).await;
    assert!(sim.wait_callbacks_idle(IDLE).await);

    let generic: Vec<String> = recv
        .received_on("/g")
        .iter()
        .map(|r| {
            expect_generic_signature(r);
            r.json()["status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(generic, ["SENT", "DELIVERED", "DELIVERED", "SENT"]);
    let twilio: Vec<String> = recv
        .received_on("/webhooks/twilio")
        .iter()
        .map(|r| {
            expect_twilio_signature(&recv.url, r);
            r.form_field("MessageStatus").unwrap()
        })
        .collect();
    assert_eq!(twilio, ["sent", "delivered", "delivered", "sent"]);
    assert_eq!(sim.stats().callbacks_sent, 8);

    // Silent messages never call back, whatever the options.
    sim.set_plan(PHONE, vec![Outcome::Silent]);
    submit_generic(&c, &sim, vec![generic_message("m2", PHONE, Some(&cb))]).await;
    assert_eq!(sim.callbacks_in_flight(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(recv.received().len(), 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_callbacks_are_retried_then_given_up() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    // Two 500s, then a 200.
    recv.fail_first.store(2, Ordering::SeqCst);
    submit_generic(&c, &sim, vec![generic_message("m1", PHONE, Some(&cb))]).await;
    assert!(sim.wait_callbacks_idle(IDLE).await);
    assert_eq!(recv.received().len(), 3);
    let bodies: std::collections::HashSet<Bytes> =
        recv.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies.len(), 1, "a retry resends the same signed body");
    let s = sim.stats();
    assert_eq!(
        (s.callbacks_sent, s.callbacks_failed, s.callback_attempts),
        (1, 0, 3)
    );
    assert_eq!(s.callbacks_by_http_status.get(&500), Some(&2));

    // Always failing: five tries (200 + 400 + 800 + 1600 ms apart), then given up.
    recv.fail_first.store(usize::MAX, Ordering::SeqCst);
    let started = Instant::now();
    submit_generic(&c, &sim, vec![generic_message("m2", PHONE, Some(&cb))]).await;
    assert!(sim.wait_callbacks_idle(IDLE).await);
    assert!(started.elapsed() >= Duration::from_millis(3000));
    assert_eq!(recv.received().len(), 8);
    let s = sim.stats();
    assert_eq!(
        (s.callbacks_sent, s.callbacks_failed, s.callback_attempts),
        (1, 1, 8)
    );

    // Nobody listening: counted with status 0.
    sim.reset();
    submit_generic(
        &c,
        &sim,
        vec![generic_message(
            "m3",
            PHONE,
            Some("http://127.0.0.1:9/closed"),
        )],
    )
    .await;
    assert!(sim.wait_callbacks_idle(IDLE).await);
    let s = sim.stats();
    assert_eq!(s.callbacks_failed, 1);
    assert_eq!(s.callbacks_by_http_status.get(&0), Some(&5));
    sim.shutdown().await;
}

#[tokio::test]
async fn paused_callbacks_are_held_and_sent_on_resume() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    sim.pause_callbacks();
    submit_generic(
        &c,
        &sim,
        vec![
            generic_message("m1", PHONE, Some(&cb)),
            generic_message("m2", "+972500000002", Some(&cb)),
        ],
    )
    .await;
    assert_eq!(sim.callbacks_in_flight(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(recv.received().is_empty());
    assert_eq!(sim.callbacks_in_flight(), 2);
    assert!(!sim.wait_callbacks_idle(Duration::from_millis(50)).await);

    // Through the admin endpoint this time.
    let state: Value = c
        .post(format!("{}/admin/callbacks/resume", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["paused"], false);
    assert!(sim.wait_callbacks_idle(IDLE).await);
    assert_eq!(recv.received().len(), 2);
    assert_eq!(sim.callbacks_in_flight(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn callbacks_are_sent_concurrently() {
    let recv = Receiver::start().await;
    // Every callback takes 100 ms to answer: 400 of them one by one would take 40 s.
    recv.delay_ms.store(100, Ordering::SeqCst);
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    let batch = (0..400)
        .map(|i| generic_message(&format!("m{i}"), &format!("+97250{i:07}"), Some(&cb)))
        .collect();
    let started = Instant::now();
    let (status, _) = submit_generic(&c, &sim, batch).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(sim.wait_callbacks_idle(IDLE).await);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(recv.received().len(), 400);
    assert_eq!(sim.stats().callbacks_sent, 400);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Faults and auth
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn capacity_is_in_messages_and_a_batch_over_the_maximum_is_refused() {
    let sim = spawn_sim(SimConfig {
        faults: Faults {
            rate_limit_per_sec: Some(10),
            ..Faults::default()
        },
        max_batch: 6,
        ..fast()
    })
    .await;
    let c = client();
    let batch = |from: usize, n: usize| -> Vec<Value> {
        (from..from + n)
            .map(|i| generic_message(&format!("b{i}"), PHONE, None))
            .collect()
    };
    let (status, _) = submit_generic(&c, &sim, batch(0, 7)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "7 > max_batch 6");
    let (status, _) = submit_generic(&c, &sim, batch(10, 6)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // 4 tokens left of 10: a batch of 6 does not fit and takes none.
    let (status, body) = submit_generic(&c, &sim, batch(20, 6)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let (status, _) = submit_generic(&c, &sim, batch(30, 4)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let s = sim.stats();
    assert_eq!(s.accepted, 10);
    assert_eq!(s.rate_limited, 1);
    assert_eq!(s.bad_requests, 1);
}

#[tokio::test]
async fn over_the_rate_limit_submits_get_429_with_retry_after() {
    let sim = spawn_sim(SimConfig {
        faults: Faults {
            rate_limit_per_sec: Some(3),
            ..Faults::default()
        },
        ..fast()
    })
    .await;
    let c = client();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let (status, body) = submit_generic(
            &c,
            &sim,
            vec![generic_message(&format!("m{i}"), PHONE, None)],
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body, json!({"error": "rate limited", "code": "20429"}));
        }
        statuses.push(status);
    }
    let limited = statuses
        .iter()
        .filter(|&&s| s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(limited, 2, "{statuses:?}");
    let (status, headers, body) = submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert_eq!(body["code"], 20429);
    let s = sim.stats();
    assert_eq!(s.rate_limited, 3);
    assert_eq!(s.accepted, 3);
    assert_eq!(sim.messages().len(), 3);

    // Lifting the limit through the admin endpoint.
    let faults: Value = c
        .put(format!("{}/admin/faults", sim.base_url()))
        .json(&json!({"rate_limit_per_sec": null}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(faults["rate_limit_per_sec"].is_null());
    assert_eq!(sim.faults().rate_limit_per_sec, None);
    for i in 10..20 {
        let (status, _) = submit_generic(
            &c,
            &sim,
            vec![generic_message(&format!("m{i}"), PHONE, None)],
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn an_outage_answers_503_to_submit_and_status() {
    let sim = spawn_sim(fast()).await;
    let c = client();
    let (_, body) = submit_generic(&c, &sim, vec![generic_message("m1", PHONE, None)]).await;
    let tracking = body["messages"][0]["trackingId"]
        .as_str()
        .unwrap()
        .to_owned();

    sim.start_outage(Duration::from_secs(60));
    let (status, _) = submit_generic(&c, &sim, vec![generic_message("m2", PHONE, None)]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        generic_status(&c, &sim, &tracking).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, _, body) = submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], 503);
    sim.end_outage();
    assert_eq!(generic_status(&c, &sim, &tracking).await.0, StatusCode::OK);

    // The admin endpoints do the same.
    let resp = c
        .post(format!("{}/admin/outage?seconds=30", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(sim.faults().outage_until.is_some());
    assert_eq!(
        submit_generic(&c, &sim, vec![generic_message("m3", PHONE, None)])
            .await
            .0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    c.delete(format!("{}/admin/outage", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        submit_generic(&c, &sim, vec![generic_message("m3", PHONE, None)])
            .await
            .0,
        StatusCode::ACCEPTED
    );
    let s = sim.stats();
    assert_eq!(s.outage_refusals, 4);
    assert_eq!(s.accepted, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_credentials_get_401() {
    let sim = spawn_sim(fast()).await;
    let c = client();
    let (status, body) =
        submit_generic_with_key(&c, &sim, vec![generic_message("m1", PHONE, None)], "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "unauthorized"}));
    let resp = c
        .post(format!("{}/api/v1/messages/batch", sim.base_url()))
        .json(&json!({"batchId": "b", "messages": [generic_message("m1", PHONE, None)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = c
        .get(format!("{}/api/v1/messages/x/status", sim.base_url()))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    let (status, _, body) = submit_twilio(&c, &sim, PHONE, None, None, "wrong-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 20003);
    assert_eq!(body["message"], "Authenticate");
    assert_eq!(body["status"], 401);
    // Right credentials, another account in the path.
    let resp = c
        .post(format!(
            "{}/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
            sim.base_url()
        ))
        .basic_auth(sim.config().twilio_account_sid, Some(TOKEN))
        .form(&[("To", PHONE), ("From", "+15005550006"), ("Body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    assert_eq!(sim.stats().unauthorized, 5);
    assert!(sim.messages().is_empty());
    // A rotated key locks the old one out.
    sim.update_config(|c| c.generic_api_key = "rotated".into());
    assert_eq!(
        submit_generic(&c, &sim, vec![generic_message("m1", PHONE, None)])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        submit_generic_with_key(
            &c,
            &sim,
            vec![generic_message("m1", PHONE, None)],
            "rotated"
        )
        .await
        .0,
        StatusCode::ACCEPTED
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Inbound replies and admin
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn inbound_stop_replies_are_posted_signed() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(SimConfig {
        inbound_generic_url: Some(format!("{}/webhooks/generic/inbound", recv.url)),
        inbound_twilio_url: Some(format!("{}/webhooks/twilio/inbound?src=sim", recv.url)),
        ..fast()
    })
    .await;
    let status = sim.send_inbound(Api::Generic, PHONE, "STOP").await.unwrap();
    assert_eq!(status, 200);
    let status = sim.send_inbound(Api::Twilio, PHONE, "STOP").await.unwrap();
    assert_eq!(status, 200);

    let generic = recv.received_on("/webhooks/generic/inbound");
    assert_eq!(generic.len(), 1);
    expect_generic_signature(&generic[0]);
    let v = generic[0].json();
    assert_eq!(v["from"], PHONE);
    assert_eq!(v["body"], "STOP");
    assert_eq!(v["to"], sim.config().sender_number.as_str());
    assert!(v["messageId"].is_string());
    assert!(chrono::DateTime::parse_from_rfc3339(v["receivedAt"].as_str().unwrap()).is_ok());

    let twilio = recv.received_on("/webhooks/twilio/inbound");
    assert_eq!(twilio.len(), 1);
    assert_eq!(twilio[0].uri, "/webhooks/twilio/inbound?src=sim");
    expect_twilio_signature(&recv.url, &twilio[0]);
    assert_eq!(twilio[0].form_field("Body").as_deref(), Some("STOP"));
    assert_eq!(twilio[0].form_field("From").as_deref(), Some(PHONE));
    assert_eq!(twilio[0].form_field("NumMedia").as_deref(), Some("0"));
    assert!(
        twilio[0]
            .form_field("MessageSid")
            .unwrap()
            .starts_with("SM")
    );

    // Our webhook's answer is passed back, and the admin endpoint does the same.
    recv.fail_first.store(1, Ordering::SeqCst);
    let c = client();
    let answer: Value = c
        .post(format!("{}/admin/inbound", sim.base_url()))
        .json(&json!({"api": "generic", "from": PHONE, "body": "stop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["webhook_status"], 500);
    assert_eq!(recv.received().len(), 3);
    assert_eq!(sim.stats().inbound_sent, 3);

    // No URL configured: an error, not a panic.
    sim.update_config(|c| c.inbound_twilio_url = None);
    assert!(sim.send_inbound(Api::Twilio, PHONE, "STOP").await.is_err());
    sim.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints_expose_messages_plans_stats_and_reset() {
    // Deduplicating, so that forgetting the references on reset shows.
    let sim = spawn_sim(SimConfig {
        dedup_references: true,
        ..fast()
    })
    .await;
    let c = client();
    let base = sim.base_url();
    let resp = c
        .put(format!("{base}/admin/plans"))
        .json(&json!({"phone": PHONE, "outcomes": [{"outcome": "failed", "code": "21614"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    submit_generic(
        &c,
        &sim,
        vec![
            generic_message("m1", PHONE, None),
            generic_message("m2", "+972500000002", None),
        ],
    )
    .await;
    let listed: Value = c
        .get(format!("{base}/admin/messages?to=%2B972501234567"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        listed[0]["outcome"],
        json!({"outcome": "failed", "code": "21614"})
    );
    assert_eq!(listed[0]["api"], "generic");
    let all: Value = c
        .get(format!("{base}/admin/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let counts: Value = c
        .get(format!("{base}/admin/messages/counts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts[PHONE], 1);
    let stats: Value = c
        .get(format!("{base}/admin/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["accepted"], 2);
    assert_eq!(stats["callbacks_in_flight"], 0);
    let health = c.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);

    let resp = c.post(format!("{base}/admin/reset")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(sim.messages().is_empty());
    assert_eq!(sim.stats().accepted, 0);
    // Idempotency keys are forgotten too: m1 is new again.
    let (_, body) = submit_generic(&c, &sim, vec![generic_message("m1", PHONE, None)]).await;
    assert_eq!(body["messages"][0]["status"], "QUEUED");
    assert_eq!(sim.stats().duplicate_submissions, 0);
    assert_eq!(sim.messages().len(), 1);
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Repeated references: a real carrier sends every submission
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_repeated_message_id_is_a_new_message_by_default() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(SimConfig {
        dedup_references: false,
        ..punctual()
    })
    .await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    let id = "sms/2026-10/C0000000042#1";
    let (_, first) = submit_generic(&c, &sim, vec![generic_message(id, PHONE, Some(&cb))]).await;
    // Again, and twice within one batch.
    let (status, again) = submit_generic(
        &c,
        &sim,
        vec![
            generic_message(id, PHONE, Some(&cb)),
            generic_message(id, PHONE, Some(&cb)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let tracking: std::collections::HashSet<&str> = [
        &first["messages"][0],
        &again["messages"][0],
        &again["messages"][1],
    ]
    .iter()
    .map(|m| {
        assert_eq!(m["status"], "QUEUED");
        m["trackingId"].as_str().unwrap()
    })
    .collect();
    assert_eq!(tracking.len(), 3, "every submission is a new message");
    assert_eq!(sim.messages_to(PHONE).len(), 3);
    let s = sim.stats();
    assert_eq!(
        (
            s.submissions,
            s.accepted,
            s.repeated_references,
            s.duplicate_submissions
        ),
        (3, 3, 2, 0)
    );
    assert_eq!(sim.messages_by_reference().get(id), Some(&3));
    assert_eq!(sim.repeated_references_by_phone().get(PHONE), Some(&2));
    assert_eq!(sim.message_counts_by_phone().get(PHONE), Some(&3));

    // The customer's phone gets three messages, so our webhook hears of three.
    assert!(sim.wait_callbacks_idle(IDLE).await);
    let called_back: std::collections::HashSet<String> = recv
        .received()
        .iter()
        .map(|r| {
            let v = r.json();
            assert_eq!(v["messageId"], id);
            v["trackingId"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(called_back.len(), 3);

    // A reference first rejected, then accepted, is not a repeat; accepted again, it is.
    let other = "+972500000001";
    sim.set_plan(other, vec![Outcome::RejectCarrier]);
    for _ in 0..3 {
        submit_generic(&c, &sim, vec![generic_message("rej", other, None)]).await;
    }
    let s = sim.stats();
    assert_eq!((s.rejected, s.repeated_references), (1, 3));
    assert_eq!(sim.messages_by_reference().get("rej"), Some(&2));
    assert_eq!(sim.repeated_references_by_phone().get(other), Some(&1));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_repeated_twilio_idempotency_token_is_a_new_message_by_default() {
    let sim = spawn_sim(fast()).await;
    let c = client();
    let token = Some("sms/2026-10/C1#1");
    let (s1, _, first) = submit_twilio(&c, &sim, PHONE, None, token, TOKEN).await;
    let (s2, _, again) = submit_twilio(&c, &sim, PHONE, None, token, TOKEN).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_ne!(first["sid"], again["sid"]);
    // Without a token there is no reference, so nothing to repeat.
    submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_eq!(sim.messages_to(PHONE).len(), 4);
    let s = sim.stats();
    assert_eq!(
        (s.accepted, s.repeated_references, s.duplicate_submissions),
        (4, 1, 0)
    );
    assert_eq!(
        sim.messages_by_reference(),
        [("sms/2026-10/C1#1".to_owned(), 2)].into()
    );
    assert_eq!(
        sim.repeated_references_by_phone(),
        [(PHONE.to_owned(), 1)].into()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_repeats_endpoint_shows_double_sends_per_phone() {
    let sim = spawn_sim(fast()).await;
    let c = client();
    let base = sim.base_url();
    let second = "+972500000002";
    submit_generic(
        &c,
        &sim,
        vec![
            generic_message("a", PHONE, None),
            generic_message("a", PHONE, None),
            generic_message("a", PHONE, None),
            generic_message("b", second, None),
            generic_message("c", second, None),
        ],
    )
    .await;
    submit_twilio(&c, &sim, second, None, Some("t"), TOKEN).await;
    submit_twilio(&c, &sim, second, None, Some("t"), TOKEN).await;
    let repeats: Value = c
        .get(format!("{base}/admin/repeats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        repeats,
        json!({
            "repeated_references": 3,
            "phones": [
                {"phone": second, "repeated_references": 1},
                {"phone": PHONE, "repeated_references": 2},
            ],
            "references": [
                {"reference": "a", "messages": 3},
                {"reference": "t", "messages": 2},
            ],
        })
    );
    assert_eq!(sim.stats().repeated_references, 3);

    c.post(format!("{base}/admin/reset")).send().await.unwrap();
    let repeats: Value = c
        .get(format!("{base}/admin/repeats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        repeats,
        json!({"repeated_references": 0, "phones": [], "references": []})
    );
    assert!(sim.messages_by_reference().is_empty());
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Slow answers and callbacks that overtake them
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_slow_answer_comes_after_the_message_was_recorded_and_called_back() {
    let recv = Receiver::start().await;
    let sim = Arc::new(
        spawn_sim(SimConfig {
            answer_delay: Duration::from_millis(800),
            ..punctual()
        })
        .await,
    );
    let c = client();
    let cb = format!("{}/g", recv.url);
    let tw = ref_callback(&recv.url, "sms/2026-10/C1#1");
    let started = Instant::now();
    let generic = tokio::spawn({
        let (c, sim, cb) = (c.clone(), Arc::clone(&sim), cb.clone());
        async move { submit_generic(&c, &sim, vec![generic_message("m1", PHONE, Some(&cb))]).await }
    });
    let twilio = tokio::spawn({
        let (c, sim) = (c.clone(), Arc::clone(&sim));
        async move { submit_twilio(&c, &sim, "+972500000002", Some(&tw), None, TOKEN).await }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Accepted, recorded and called back (20 ms), while both answers are still held.
    assert_eq!(sim.messages().len(), 2);
    assert_eq!(recv.received().len(), 2);
    assert!(!generic.is_finished() && !twilio.is_finished());
    let (status, body) = generic.await.unwrap();
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, created) = twilio.await.unwrap();
    assert_eq!(status, StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(800));
    let called_back: Vec<Value> = recv.received_on("/g").iter().map(Received::json).collect();
    assert_eq!(
        called_back[0]["trackingId"],
        body["messages"][0]["trackingId"]
    );
    assert_eq!(
        recv.received_on("/webhooks/twilio")[0].form_field("MessageSid"),
        created["sid"].as_str().map(str::to_owned)
    );
    Arc::into_inner(sim).unwrap().shutdown().await;
}

#[tokio::test]
async fn latency_is_spent_before_the_submission_is_processed() {
    let sim = Arc::new(
        spawn_sim(SimConfig {
            faults: Faults {
                latency_ms: 600,
                ..Faults::default()
            },
            ..punctual()
        })
        .await,
    );
    let c = client();
    let pending = tokio::spawn({
        let sim = Arc::clone(&sim);
        async move { submit_generic(&c, &sim, vec![generic_message("m1", PHONE, None)]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(sim.messages().is_empty(), "not yet processed");
    assert_eq!(pending.await.unwrap().0, StatusCode::ACCEPTED);
    assert_eq!(sim.messages().len(), 1);
    Arc::into_inner(sim).unwrap().shutdown().await;
}

#[tokio::test]
async fn an_early_callback_reaches_the_webhook_before_the_answer() {
    let recv = Receiver::start().await;
    // Our webhook takes 300 ms: the answer waits for the whole POST.
    recv.delay_ms.store(300, Ordering::SeqCst);
    let sim = spawn_sim(SimConfig {
        early_callback_ppm: 1_000_000,
        // A callback that was not early would take 30 s.
        callback_delay: Duration::from_secs(30),
        ..punctual()
    })
    .await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    let started = Instant::now();
    let (_, body) = submit_generic(&c, &sim, vec![generic_message("m1", PHONE, Some(&cb))]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let got = recv.received();
    assert_eq!(got.len(), 1, "the callback came before the answer");
    expect_generic_signature(&got[0]);
    let v = got[0].json();
    assert_eq!(v["status"], "DELIVERED");
    assert_eq!(v["messageId"], "m1");
    assert_eq!(v["trackingId"], body["messages"][0]["trackingId"]);
    // Its final status was known at acceptance.
    assert_eq!(v["deliveryTimestamp"], body["timestamp"]);

    let tw = ref_callback(&recv.url, "sms/2026-10/C1#1");
    let (_, _, created) = submit_twilio(&c, &sim, "+972500000002", Some(&tw), None, TOKEN).await;
    let twilio = recv.received_on("/webhooks/twilio");
    assert_eq!(twilio.len(), 1);
    expect_twilio_signature(&recv.url, &twilio[0]);
    assert_eq!(
        twilio[0].form_field("MessageSid"),
        created["sid"].as_str().map(str::to_owned)
    );
    assert_eq!(
        twilio[0].form_field("MessageStatus").as_deref(),
        Some("delivered")
    );
    // The create answer still says queued, as Twilio's does.
    assert_eq!(created["status"], "queued");
    assert!(started.elapsed() < Duration::from_secs(5));
    sim.shutdown().await;
}

#[tokio::test]
async fn early_callbacks_are_a_seeded_share_of_the_messages() {
    let config = SimConfig {
        early_callback_ppm: 500_000,
        callback_delay: Duration::from_secs(30),
        ..punctual()
    };
    let mut early_sets = Vec::new();
    for _ in 0..2 {
        let recv = Receiver::start().await;
        let sim = spawn_sim(config.clone()).await;
        let cb = format!("{}/g", recv.url);
        let batch = (0..40)
            .map(|i| {
                generic_message(
                    &format!("sms/2026-10/C{i:010}#1"),
                    &format!("+97250{i:07}"),
                    Some(&cb),
                )
            })
            .collect();
        submit_generic(&client(), &sim, batch).await;
        let early: std::collections::BTreeSet<String> = recv
            .received()
            .iter()
            .map(|r| r.json()["messageId"].as_str().unwrap().to_owned())
            .collect();
        early_sets.push(early);
        sim.shutdown().await;
    }
    assert_eq!(
        early_sets[0], early_sets[1],
        "the same seed, the same share"
    );
    assert!(
        (10..=30).contains(&early_sets[0].len()),
        "{}",
        early_sets[0].len()
    );
}

#[tokio::test]
async fn an_answer_does_not_wait_for_early_callbacks_while_callbacks_are_paused() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(SimConfig {
        early_callback_ppm: 1_000_000,
        ..punctual()
    })
    .await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    sim.pause_callbacks();
    let started = Instant::now();
    let (status, _) = submit_generic(&c, &sim, vec![generic_message("m1", PHONE, Some(&cb))]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(recv.received().is_empty());
    sim.resume_callbacks();
    assert!(sim.wait_callbacks_idle(IDLE).await);
    assert_eq!(recv.received().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_early_callback_that_hangs_holds_the_answer_only_a_few_seconds() {
    let recv = Receiver::start().await;
    recv.delay_ms.store(9_000, Ordering::SeqCst);
    let sim = spawn_sim(SimConfig {
        early_callback_ppm: 1_000_000,
        ..punctual()
    })
    .await;
    let cb = format!("{}/g", recv.url);
    let started = Instant::now();
    let (status, _) = submit_generic(
        &client(),
        &sim,
        vec![generic_message("m1", PHONE, Some(&cb))],
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Defaults: no kinder than a real carrier
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_default_carrier_duplicates_reorders_jitters_and_overtakes_some_callbacks() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    let batch = (0..1000)
        .map(|i| {
            generic_message(
                &format!("sms/2026-10/C{i:010}#1"),
                &format!("+97250{i:07}"),
                Some(&cb),
            )
        })
        .collect();
    let (status, body) = submit_generic(&c, &sim, batch).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let before_answer: std::collections::HashSet<String> = recv
        .received()
        .iter()
        .map(|r| r.json()["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert!(sim.wait_callbacks_idle(IDLE).await);

    let accepted_at =
        chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).unwrap();
    let mut by_message: std::collections::HashMap<String, Vec<Value>> = Default::default();
    for r in recv.received() {
        let v = r.json();
        by_message
            .entry(v["messageId"].as_str().unwrap().to_owned())
            .or_default()
            .push(v);
    }
    assert_eq!(by_message.len(), 1000, "every message calls back");
    let (mut duplicated, mut stale, mut early) = (0, 0, Vec::new());
    let mut offsets_ms = std::collections::BTreeSet::new();
    for (id, callbacks) in &by_message {
        let finals: Vec<&Value> = callbacks
            .iter()
            .filter(|v| v["status"] == "DELIVERED")
            .collect();
        assert!(matches!(finals.len(), 1 | 2), "{callbacks:?}");
        duplicated += usize::from(finals.len() == 2);
        // A SENT only ever comes after the final (no intermediate by default): stale.
        assert_eq!(callbacks[0]["status"], "DELIVERED");
        stale += callbacks.iter().filter(|v| v["status"] == "SENT").count();
        let delivered_at =
            chrono::DateTime::parse_from_rfc3339(finals[0]["deliveryTimestamp"].as_str().unwrap())
                .unwrap();
        let offset = (delivered_at - accepted_at).num_milliseconds();
        if offset == 0 {
            early.push(id.clone());
        } else {
            assert!((200..=400).contains(&offset), "{offset}");
            offsets_ms.insert(offset);
        }
    }
    // About 2 %, 2 % and 1 % of 1000.
    assert!((5..=40).contains(&duplicated), "duplicated {duplicated}");
    assert!((5..=40).contains(&stale), "stale {stale}");
    assert!((2..=25).contains(&early.len()), "early {}", early.len());
    assert!(early.iter().all(|id| before_answer.contains(id)));
    assert!(offsets_ms.len() > 50, "jitter spreads the callbacks");
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Twilio message list
// ---------------------------------------------------------------------------------------------

/// `GET …/Messages.json` with these query parameters (encoded as Twilio's helpers do).
async fn twilio_list(
    c: &reqwest::Client,
    sim: &SimHandle,
    query: &[(&str, &str)],
) -> (StatusCode, Value) {
    let cfg = sim.config();
    let resp = c
        .get(messages_url(sim))
        .query(query)
        .basic_auth(&cfg.twilio_account_sid, Some(&cfg.twilio_auth_token))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A page URI from a list answer (`next_page_uri`, …), fetched as is.
async fn twilio_page(c: &reqwest::Client, sim: &SimHandle, uri: &Value) -> (StatusCode, Value) {
    let cfg = sim.config();
    let resp = c
        .get(format!("{}{}", sim.base_url(), uri.as_str().unwrap()))
        .basic_auth(&cfg.twilio_account_sid, Some(&cfg.twilio_auth_token))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn sids(page: &Value) -> Vec<String> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["sid"].as_str().unwrap().to_owned())
        .collect()
}

/// A Twilio create from `from`.
async fn submit_twilio_from(c: &reqwest::Client, sim: &SimHandle, to: &str, from: &str) -> Value {
    let cfg = sim.config();
    let resp = c
        .post(messages_url(sim))
        .basic_auth(&cfg.twilio_account_sid, Some(&cfg.twilio_auth_token))
        .form(&[("To", to), ("From", from), ("Body", "Hello")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_twilio_list_filters_by_to_from_and_date_sent() {
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let other = "+972500000002";
    let a = submit_twilio_from(&c, &sim, PHONE, "+15005550006").await;
    let b = submit_twilio_from(&c, &sim, other, "+15005550006").await;
    let d = submit_twilio_from(&c, &sim, PHONE, "+15005550007").await;
    // Generic messages are not Twilio messages.
    submit_generic(&c, &sim, vec![generic_message("g1", PHONE, None)]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (status, all) = twilio_list(&c, &sim, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        sids(&all),
        [&d["sid"], &b["sid"], &a["sid"]].map(|s| s.as_str().unwrap())
    );
    // The same resource as the fetch endpoint.
    let (_, fetched) = twilio_fetch(&c, &sim, a["sid"].as_str().unwrap()).await;
    assert_eq!(all["messages"][2], fetched);
    assert_eq!(fetched["status"], "delivered");

    let (_, to) = twilio_list(&c, &sim, &[("To", PHONE)]).await;
    assert_eq!(
        sids(&to),
        [&d["sid"], &a["sid"]].map(|s| s.as_str().unwrap())
    );
    let (_, from) = twilio_list(&c, &sim, &[("To", PHONE), ("From", "+15005550006")]).await;
    assert_eq!(sids(&from), [a["sid"].as_str().unwrap()]);

    let day = |days: i64| {
        (chrono::Utc::now().date_naive() + chrono::TimeDelta::days(days))
            .format("%Y-%m-%d")
            .to_string()
    };
    let count = |page: Value| page["messages"].as_array().unwrap().len();
    let (today, yesterday, tomorrow) = (day(0), day(-1), day(1));
    assert_eq!(
        count(twilio_list(&c, &sim, &[("DateSent", &today)]).await.1),
        3
    );
    assert_eq!(
        count(twilio_list(&c, &sim, &[("DateSent", &yesterday)]).await.1),
        0
    );
    assert_eq!(
        count(twilio_list(&c, &sim, &[("DateSent<", &today)]).await.1),
        3
    );
    assert_eq!(
        count(twilio_list(&c, &sim, &[("DateSent<", &yesterday)]).await.1),
        0
    );
    assert_eq!(
        count(twilio_list(&c, &sim, &[("DateSent>", &today)]).await.1),
        3
    );
    assert_eq!(
        count(twilio_list(&c, &sim, &[("DateSent>", &tomorrow)]).await.1),
        0
    );
    let (_, window) = twilio_list(
        &c,
        &sim,
        &[
            ("To", other),
            ("DateSent>", &yesterday),
            ("DateSent<", &tomorrow),
        ],
    )
    .await;
    assert_eq!(sids(&window), [b["sid"].as_str().unwrap()]);
    assert_eq!(
        window["uri"],
        format!(
            "/2010-04-01/Accounts/{}/Messages.json?To=%2B972500000002&DateSent%3E={yesterday}&DateSent%3C={tomorrow}&PageSize=50&Page=0",
            sim.config().twilio_account_sid
        )
    );
    // The URL form Twilio documents, written by hand.
    let (_, raw) = twilio_page(
        &c,
        &sim,
        &json!(format!(
            "/2010-04-01/Accounts/{}/Messages.json?DateSent%3E={tomorrow}",
            sim.config().twilio_account_sid
        )),
    )
    .await;
    assert_eq!(count(raw), 0);

    let (status, bad) = twilio_list(&c, &sim, &[("DateSent", "last tuesday")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["status"], 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_twilio_list_pages_newest_first_through_next_page_uri() {
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let mut created = Vec::new();
    for i in 0..7 {
        let to = format!("+97250000000{i}");
        created.push(
            submit_twilio_from(&c, &sim, &to, "+15005550006").await["sid"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let (status, first) = twilio_list(&c, &sim, &[("PageSize", "3")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sids(&first), newest_first[0..3]);
    assert_eq!(
        (first["page"].as_u64(), first["page_size"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(
        (first["start"].as_u64(), first["end"].as_u64()),
        (Some(0), Some(2))
    );
    assert!(first["previous_page_uri"].is_null());
    assert_eq!(first["uri"], first["first_page_uri"]);

    // Newer messages do not shift the pages that follow a token.
    submit_twilio_from(&c, &sim, "+972500000009", "+15005550006").await;
    let (_, second) = twilio_page(&c, &sim, &first["next_page_uri"]).await;
    assert_eq!(sids(&second), newest_first[3..6]);
    assert_eq!(second["page"], 1);
    assert_eq!(
        (second["start"].as_u64(), second["end"].as_u64()),
        (Some(3), Some(5))
    );
    let (_, last) = twilio_page(&c, &sim, &second["next_page_uri"]).await;
    assert_eq!(sids(&last), newest_first[6..7]);
    assert!(last["next_page_uri"].is_null());
    let (_, back) = twilio_page(&c, &sim, &last["previous_page_uri"]).await;
    assert_eq!(sids(&back), newest_first[3..6]);

    // As on Twilio: a later page only through its token; page sizes stop at 1000.
    let (status, body) = twilio_list(&c, &sim, &[("PageSize", "3"), ("Page", "1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Paged requests must include a PageToken");
    let (_, big) = twilio_list(&c, &sim, &[("PageSize", "5000")]).await;
    assert_eq!(big["page_size"], 1000);
    assert_eq!(big["messages"].as_array().unwrap().len(), 8);
    let (_, default) = twilio_list(&c, &sim, &[]).await;
    assert_eq!(default["page_size"], 50);
    assert!(default["next_page_uri"].is_null());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_queued_twilio_message_matches_no_date_sent_filter() {
    let sim = spawn_sim(SimConfig {
        status_delay: Duration::from_millis(400),
        ..punctual()
    })
    .await;
    let c = client();
    let created = submit_twilio_from(&c, &sim, PHONE, "+15005550006").await;
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let (_, listed) = twilio_list(&c, &sim, &[]).await;
    assert_eq!(sids(&listed), [created["sid"].as_str().unwrap()]);
    assert_eq!(listed["messages"][0]["status"], "queued");
    assert!(listed["messages"][0]["date_sent"].is_null());
    for filter in ["DateSent", "DateSent<", "DateSent>"] {
        let (_, page) = twilio_list(&c, &sim, &[(filter, &today)]).await;
        assert!(sids(&page).is_empty(), "{filter}");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, page) = twilio_list(&c, &sim, &[("DateSent", &today)]).await;
    assert_eq!(sids(&page), [created["sid"].as_str().unwrap()]);
    assert!(page["messages"][0]["date_sent"].is_string());
    sim.shutdown().await;
}

#[tokio::test]
async fn the_twilio_list_passes_the_same_auth_outage_and_latency_gates() {
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cfg = sim.config();
    let resp = c
        .get(messages_url(&sim))
        .basic_auth(&cfg.twilio_account_sid, Some("wrong-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap()["code"], 20003);
    let resp = c
        .get(format!(
            "{}/2010-04-01/Accounts/AC00000000000000000000000000000000/Messages.json",
            sim.base_url()
        ))
        .basic_auth(&cfg.twilio_account_sid, Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    sim.start_outage(Duration::from_secs(60));
    let (status, body) = twilio_list(&c, &sim, &[]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], 503);
    sim.end_outage();

    sim.update_faults(|f| f.latency_ms = 300);
    let started = Instant::now();
    assert_eq!(twilio_list(&c, &sim, &[]).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let s = sim.stats();
    assert_eq!(
        (s.unauthorized, s.outage_refusals, s.status_queries),
        (2, 1, 1)
    );
    sim.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Unsubscribed recipients and filtered content
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_unsubscribed_recipient_is_rejected_with_21610_on_both_apis() {
    let sim = spawn_sim(punctual()).await;
    let c = client();
    // Through the admin endpoint's JSON form.
    let resp = c
        .put(format!("{}/admin/plans", sim.base_url()))
        .json(&json!({"phone": PHONE, "outcomes": [
            {"outcome": "reject_unsubscribed"},
            {"outcome": "reject_unsubscribed"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let (status, body) = submit_generic(&c, &sim, vec![generic_message("m1", PHONE, None)]).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let item = &body["messages"][0];
    assert_eq!(item["status"], "REJECTED");
    assert_eq!(item["errorCode"], "21610");
    assert_eq!(
        item["errorMessage"],
        "Attempt to send to unsubscribed recipient"
    );
    assert!(item["trackingId"].is_null());

    let (status, _, body) = submit_twilio(&c, &sim, PHONE, None, None, TOKEN).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], 21610);
    assert_eq!(body["message"], "Attempt to send to unsubscribed recipient");
    assert_eq!(body["status"], 400);
    assert_eq!(
        body["more_info"],
        "https://www.twilio.com/docs/errors/21610"
    );

    assert!(sim.messages().is_empty());
    let s = sim.stats();
    assert_eq!((s.submissions, s.rejected, s.accepted), (2, 2, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_content_filtered_message_calls_back_undelivered_with_30007() {
    let recv = Receiver::start().await;
    let sim = spawn_sim(punctual()).await;
    let c = client();
    let cb = format!("{}/g", recv.url);
    let tw = ref_callback(&recv.url, "sms/2026-10/C1#1");
    sim.set_plan(
        PHONE,
        vec![Outcome::content_filtered(), Outcome::content_filtered()],
    );
    let (_, body) = submit_generic(&c, &sim, vec![generic_message("m1", PHONE, Some(&cb))]).await;
    let (status, _, created) = submit_twilio(&c, &sim, PHONE, Some(&tw), None, TOKEN).await;
    assert_eq!(status, StatusCode::CREATED, "filtered after acceptance");
    assert!(sim.wait_callbacks_idle(IDLE).await);

    let generic = recv.received_on("/g");
    assert_eq!(generic.len(), 1);
    let v = generic[0].json();
    assert_eq!(v["status"], "UNDELIVERABLE");
    assert_eq!(v["statusCode"], "30007");
    let tracking = body["messages"][0]["trackingId"].as_str().unwrap();
    let (_, status) = generic_status(&c, &sim, tracking).await;
    assert_eq!(status["status"], "UNDELIVERABLE");
    assert_eq!(status["statusCode"], "30007");

    let twilio = recv.received_on("/webhooks/twilio");
    assert_eq!(twilio.len(), 1);
    expect_twilio_signature(&recv.url, &twilio[0]);
    assert_eq!(
        twilio[0].form_field("MessageStatus").as_deref(),
        Some("undelivered")
    );
    assert_eq!(twilio[0].form_field("ErrorCode").as_deref(), Some("30007"));
    let (_, fetched) = twilio_fetch(&c, &sim, created["sid"].as_str().unwrap()).await;
    assert_eq!(fetched["status"], "undelivered");
    assert_eq!(fetched["error_code"], 30007);
    assert_eq!(sim.messages_to(PHONE).len(), 2);
    sim.shutdown().await;
}
