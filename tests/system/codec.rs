//! Encrypted Temporal payloads: a month run through its SMS phase with the codec on every path (the
//! control API starts it and reads it, the worker runs workflows, activities and local activities,
//! the webhook signals deliveries), then its histories exported from the dev server with the
//! `temporal` CLI — what anyone with access to Temporal's database sees — hold no customer name,
//! phone, account id or balance, and every payload outside the search attributes and the Web UI's
//! summary is `binary/encrypted`. The codec server decodes them for a viewer and refuses the rest.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use pcn_bank_sim::{Faults, SimOutcome};
use pcn_proto::v1 as pb;
use pcn_tests::{
    InProcessWorker, TestApi, TestDb, authed, spawn_sim, temporal_address, temporal_client,
    unique_task_queue,
};
use pcn_worker::api::codec_server::{self, CodecServerSettings};
use pcn_workflows::domain::{CustomerId, YearMonth};
use serde_json::{Value, json};

/// The Web UI's origin the codec server admits in this test.
const UI_ORIGIN: &str = "http://localhost:8233";

/// `temporal workflow show --output json` of `workflow_id` on the suite's dev server, with `extra`
/// options (e.g. a codec endpoint; async, so this test's codec server keeps serving meanwhile).
async fn exported_history(workflow_id: &str, extra: &[&str]) -> String {
    let address = temporal_address();
    let address = address.split("://").last().unwrap_or(&address).to_owned();
    let output = tokio::process::Command::new(pcn_tests::dev_server::temporal_bin())
        .args([
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--address",
            &address,
            "--namespace",
            "default",
            "--output",
            "json",
        ])
        .args(extra)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("temporal workflow show answered within 120 s")
        .expect("run the temporal CLI (PCN_TEST_TEMPORAL_BIN)");
    assert!(
        output.status.success(),
        "temporal workflow show {workflow_id}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 history")
}

/// A payload found in a history, with where it was.
struct Found {
    path: String,
    payload: Value,
}

/// Every `Payload` object (`{"metadata": {...}, "data": ...}`) under `value`; `clear_by_design`
/// tells those the codec never encodes: under `searchAttributes` (the server indexes them),
/// `userMetadata` (the start options' summary) and markers' own fields.
fn payloads(value: &Value, path: &str, out: &mut Vec<Found>) {
    match value {
        Value::Object(map) => {
            if map.get("metadata").is_some_and(Value::is_object)
                && (map.contains_key("data") || map["metadata"].get("encoding").is_some())
            {
                out.push(Found {
                    path: path.to_owned(),
                    payload: value.clone(),
                });
                return;
            }
            for (key, child) in map {
                payloads(child, &format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                payloads(child, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn clear_by_design(path: &str) -> bool {
    // The SDK's core writes markers' own fields outside the codec: a patch's id and flag, a local
    // activity's sequence number, type and times (its result is the codec's).
    path.contains("searchAttributes")
        || path.contains("userMetadata")
        || path.contains("markerRecordedEventAttributes.details.patch-data")
        || path.contains("markerRecordedEventAttributes.details.data")
}

fn metadata(payload: &Value, key: &str) -> Option<String> {
    let encoded = payload["metadata"].get(key)?.as_str()?;
    Some(String::from_utf8(B64.decode(encoded).ok()?).unwrap_or_default())
}

fn data(payload: &Value) -> Vec<u8> {
    payload
        .get("data")
        .and_then(Value::as_str)
        .map(|d| B64.decode(d).expect("base64 data"))
        .unwrap_or_default()
}

/// Customer data of the test population that must never be readable in Temporal.
fn sensitive_strings(sim: &pcn_bank_sim::SimHandle, n: u64, month: YearMonth) -> Vec<String> {
    let mut out: BTreeSet<String> = BTreeSet::new();
    out.insert("Dana".to_owned()); // every test customer's first name
    for i in 0..n {
        let customer = pcn_tests::customer(i, chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        let phone = customer.phone.as_e164().to_owned();
        out.insert(phone.trim_start_matches('+').to_owned());
        out.insert(phone);
        out.insert(customer.account_id.as_str().to_owned());
    }
    // Balances of the first customers, every day of the month, as the bank gave them.
    for i in 0..n.min(10) {
        for day in month.days() {
            if let SimOutcome::Balance { amount, .. } = sim.scenario().outcome(i, day.as_naive()) {
                let text = amount.to_string();
                // The threshold (15000.00) is the run's public setting, shown in its summary.
                if text.len() >= 6 && text != "15000.00" {
                    out.insert(text);
                }
            }
        }
    }
    out.into_iter().collect()
}

async fn codec_server() -> (codec_server::CodecServer, String) {
    let spec = ["viewer", "operator"]
        .iter()
        .map(|role| {
            format!(
                "{role}:{role}:{}",
                pcn_worker::api::auth::hash_token(&TestApi::token(role))
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let tokens = pcn_worker::api::auth::TokenTable::parse(&spec).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = codec_server::serve(
        listener,
        CodecServerSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cors_origins: vec![UI_ORIGIN.to_owned()],
            anonymous_decode: false,
        },
        pcn_tests::payload_codec(),
        std::sync::Arc::new(tokens),
        None,
    )
    .await
    .unwrap();
    let url = format!("http://{}", server.addr);
    (server, url)
}

/// POSTs `body` to the codec's `op` (`decode`/`encode`) with `token`: status and body text.
async fn call(url: &str, op: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/{op}"))
        .header("content-type", "application/json")
        .header("x-namespace", "default")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("codec server answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn temporal_holds_only_ciphertext_and_the_codec_server_decodes_it_for_a_viewer() {
    pcn_tests::init();
    let n = 30;
    let db = TestDb::with_customers(n).await;
    let sim = spawn_sim(n, 29, Faults::default()).await;
    let queue = unique_task_queue("codec");
    let worker = InProcessWorker::for_test(&queue, &db, &sim);
    let api = TestApi::start(&db, &queue).await;
    let mut grpc = api.client().await;
    let month = YearMonth::parse("2025-12").unwrap();
    // Started through the control API (its client encodes the month's input).
    grpc.start_month(authed(
        pb::StartMonthRequest {
            month: month.to_string(),
        },
        Some(&TestApi::token("operator")),
    ))
    .await
    .expect("StartMonth");
    let client = temporal_client().await;
    let progress = pcn_tests::wait_completed(&client, month, Duration::from_secs(300)).await;
    let qualification = progress.qualification.clone().unwrap();
    assert!(qualification.qualified > 0, "{qualification:?}");
    // The API's month view reads the run's progress query through the codec.
    let view = grpc
        .get_month(authed(
            pb::GetMonthRequest {
                month: month.to_string(),
            },
            Some(&TestApi::token("viewer")),
        ))
        .await
        .expect("GetMonth")
        .into_inner();
    assert_eq!(view.phase, pb::MonthPhase::Completed as i32, "{view:?}");
    assert!(
        view.degraded.is_empty(),
        "the run answered: {}",
        view.degraded
    );
    worker.stop();

    let qualified = pcn_tests::qualified_in_db(&db.pool, month).await;
    let customer = CustomerId::parse(&qualified[0]).unwrap();
    let sms_id = pcn_workflows::sms::workflow_id(month, &customer);
    let delivered: String =
        sqlx::query_scalar("SELECT status FROM notifications WHERE workflow_id = $1")
            .bind(&sms_id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(delivered, "DELIVERED");

    let sensitive = sensitive_strings(&sim, n, month);
    let mut encrypted: Vec<Value> = Vec::new();
    let mut sms_input = None;
    for id in [pcn_workflows::month::workflow_id(month), sms_id.clone()] {
        let raw = exported_history(&id, &[]).await;
        for s in &sensitive {
            assert!(
                !raw.contains(s.as_str()),
                "{id}'s history holds {s:?} in clear"
            );
        }
        let history: Value = serde_json::from_str(&raw).unwrap();
        let mut found = Vec::new();
        payloads(&history, "", &mut found);
        let mut ours = 0;
        for Found { path, payload } in found {
            let bytes = data(&payload);
            let text = String::from_utf8_lossy(&bytes);
            for s in &sensitive {
                assert!(
                    !text.contains(s.as_str()),
                    "{id} {path}: {s:?} in a payload's data"
                );
            }
            if clear_by_design(&path) {
                continue;
            }
            assert_eq!(
                metadata(&payload, "encoding").as_deref(),
                Some("binary/encrypted"),
                "{id} {path}: a payload in clear: {payload}"
            );
            assert_eq!(
                metadata(&payload, "encryption-key-id").as_deref(),
                Some("dev1")
            );
            assert!(
                !text.contains(customer.as_str()),
                "{id} {path}: the customer id in clear"
            );
            if id == sms_id && path.contains("workflowExecutionStartedEventAttributes.input") {
                sms_input = Some(payload.clone());
            }
            encrypted.push(payload);
            ours += 1;
        }
        assert!(ours >= 3, "{id}: only {ours} encrypted payloads found");
    }
    let sms_input = sms_input.expect("the SMS workflow's input in its history");

    // The codec server decodes them for a viewer, into the JSON the workflows read.
    let (_server, url) = codec_server().await;
    let viewer = TestApi::token("viewer");
    let operator = TestApi::token("operator");
    let (status, body) = call(
        &url,
        "decode",
        Some(&viewer),
        &json!({ "payloads": [sms_input] }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let decoded: Value = serde_json::from_str(&body).unwrap();
    let first = &decoded["payloads"][0];
    assert_eq!(metadata(first, "encoding").as_deref(), Some("json/plain"));
    let input: Value = serde_json::from_slice(&data(first)).unwrap();
    assert_eq!(input["customer"], customer.as_str(), "{input}");
    assert_eq!(input["month"], month.to_string(), "{input}");
    assert_eq!(input["first_attempt"], 1, "{input}");
    // The whole of both histories at once (a UI page does the same).
    let all = json!({ "payloads": encrypted }).to_string();
    let (status, body) = call(&url, "decode", Some(&viewer), &all).await;
    assert_eq!(status, 200, "{body}");
    let decoded: Value = serde_json::from_str(&body).unwrap();
    let decoded = decoded["payloads"].as_array().unwrap();
    assert_eq!(decoded.len(), encrypted.len());
    for payload in decoded {
        assert_ne!(
            metadata(payload, "encoding").as_deref(),
            Some("binary/encrypted")
        );
    }

    // Temporal's own tooling speaks the same protocol: the CLI shows the history decoded through
    // the codec server with a viewer token.
    let auth = format!("Bearer {viewer}");
    let shown = exported_history(&sms_id, &["--codec-endpoint", &url, "--codec-auth", &auth]).await;
    let shown: Value = serde_json::from_str(&shown).unwrap();
    let mut found = Vec::new();
    payloads(&shown, "", &mut found);
    let mut inputs = 0;
    for Found { path, payload } in &found {
        assert_ne!(
            metadata(payload, "encoding").as_deref(),
            Some("binary/encrypted"),
            "{path}: not decoded by the CLI through the codec"
        );
        if path.contains("workflowExecutionStartedEventAttributes.input") {
            let input: Value = serde_json::from_slice(&data(payload)).unwrap();
            assert_eq!(input["customer"], customer.as_str(), "{input}");
            inputs += 1;
        }
    }
    assert_eq!(inputs, 1, "the SMS input among the CLI's decoded payloads");

    // Authorization: none or an unknown token is 401; encode needs operator.
    let (status, body) = call(&url, "decode", None, &all).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = call(&url, "decode", Some("not-a-token-of-ours"), &all).await;
    assert_eq!(status, 401);
    let plain = json!({ "payloads": [{
        "metadata": { "encoding": B64.encode("json/plain") },
        "data": B64.encode(r#"{"hello":"codec"}"#),
    }] })
    .to_string();
    let (status, body) = call(&url, "encode", Some(&viewer), &plain).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("operator"), "{body}");
    let (status, body) = call(&url, "encode", Some(&operator), &plain).await;
    assert_eq!(status, 200, "{body}");
    let sealed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        metadata(&sealed["payloads"][0], "encoding").as_deref(),
        Some("binary/encrypted")
    );
    assert!(!body.contains(&B64.encode(r#"{"hello":"codec"}"#)));
    let (status, body) = call(&url, "decode", Some(&viewer), &sealed.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        serde_json::from_str::<Value>(&plain).unwrap()
    );

    // Bad input: 400 naming the payload and field.
    let (status, body) = call(&url, "decode", Some(&viewer), "{\"payloads\": [").await;
    assert_eq!(status, 400, "{body}");
    let bad_base64 = json!({ "payloads": [sms_input, { "metadata": {}, "data": "%%%" }] });
    let (status, body) = call(&url, "decode", Some(&viewer), &bad_base64.to_string()).await;
    assert_eq!(status, 400);
    assert!(body.contains("payloads[1].data"), "{body}");
    let mut corrupt = sms_input.clone();
    let mut bytes = data(&corrupt);
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    corrupt["data"] = Value::String(B64.encode(bytes));
    let (status, body) = call(
        &url,
        "decode",
        Some(&viewer),
        &json!({ "payloads": [corrupt] }).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("payloads[0]") && body.contains("`dev1`"),
        "{body}"
    );
    let mut unknown = sms_input.clone();
    unknown["metadata"]["encryption-key-id"] = Value::String(B64.encode("k9"));
    let (status, body) = call(
        &url,
        "decode",
        Some(&viewer),
        &json!({ "payloads": [unknown] }).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("`k9`") && body.contains("PCN_PAYLOAD_KEYS"),
        "{body}"
    );

    // CORS: the Web UI's preflight is answered for its origin, not for another.
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, format!("{url}/decode"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-namespace",
            )
            .send()
    };
    let answer = preflight(UI_ORIGIN).await.unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(answer.headers()["access-control-allow-origin"], UI_ORIGIN);
    let allowed = answer.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("x-namespace"),
        "{allowed}"
    );
    let other = preflight("http://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // The SMS history, recorded with the codec, replays (and is saved as a fixture on request).
    crate::replay::check_and_maybe_save_workflow(&client, &sms_id, "sms-encrypted-2025-12.json")
        .await;
}
