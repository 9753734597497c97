//! The simulator over real HTTP: both APIs, idempotency, plans, the status API, signed callbacks
//! (with duplicates, reordering, retries, pause/resume), faults, auth and inbound replies.

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

/// A fast simulator: callbacks 20 ms after acceptance.
fn fast() -> SimConfig {
    SimConfig {
        callback_delay: Duration::from_millis(20),
        ..SimConfig::default()
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
async fn a_repeated_message_id_gets_the_first_answer_and_records_nothing() {
    let sim = spawn_sim(fast()).await;
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
    let sim = spawn_sim(fast()).await;
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
async fn twilio_create_fetch_and_idempotency_token() {
    let sim = spawn_sim(SimConfig {
        status_delay: Duration::from_millis(200),
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
    let sim = spawn_sim(fast()).await;
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
    let sim = spawn_sim(fast()).await;
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
        ..fast()
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
    let sim = spawn_sim(fast()).await;
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
    let sim = spawn_sim(fast()).await;
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
    let sim = spawn_sim(fast()).await;
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
    let sim = spawn_sim(fast()).await;
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
