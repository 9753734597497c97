//! The generic carrier REST API (`docs/requirements.md#carrier-api`): batch submit and status,
//! JSON with Bearer auth.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{MAX_BATCH, MAX_MESSAGE_ID_LEN};
use crate::early;
use crate::model::{Api, Outcome, SentMessage, mask_phone};
use crate::server::{AppState, Record, capacity, gate, json_response, rfc3339, still_queued};
use crate::stats::bump;

/// The generic API's per-message answer (cached for deduplicated resubmission).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenericItem {
    message_id: String,
    tracking_id: Option<String>,
    status: &'static str,
    error_code: Option<String>,
    error_message: Option<String>,
}

fn refusal(status: StatusCode) -> Response {
    let body = match status {
        StatusCode::UNAUTHORIZED => json!({"error": "unauthorized"}),
        StatusCode::TOO_MANY_REQUESTS => json!({"error": "rate limited", "code": "20429"}),
        StatusCode::SERVICE_UNAVAILABLE => json!({"error": "service unavailable"}),
        _ => json!({"error": status.canonical_reason().unwrap_or("error")}),
    };
    json_response(status, &body)
}

fn bad_request(st: &AppState, message: &str) -> Response {
    bump(&st.stats.bad_requests);
    json_response(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

fn bearer_ok(headers: &HeaderMap, key: &str) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given.trim() == key)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchRequest {
    #[serde(default)]
    batch_id: Option<String>,
    messages: Vec<BatchMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchMessage {
    message_id: String,
    phone_number: String,
    content: String,
    #[serde(default)]
    callback_url: Option<String>,
}

/// `POST /api/v1/messages/batch`.
pub(crate) async fn submit(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = st.config();
    let authorized = bearer_ok(&headers, &cfg.generic_api_key);
    if let Err(refusal) = gate(&st, &cfg, authorized, 0, refusal).await {
        return refusal;
    }
    let Ok(req) = serde_json::from_slice::<BatchRequest>(&body) else {
        return bad_request(&st, "malformed JSON");
    };
    if req.messages.is_empty() {
        return bad_request(&st, "no messages");
    }
    if req.messages.len() > cfg.max_batch.min(MAX_BATCH) {
        return bad_request(
            &st,
            &format!("more than {} messages", cfg.max_batch.min(MAX_BATCH)),
        );
    }
    if req
        .messages
        .iter()
        .any(|m| m.message_id.is_empty() || m.message_id.len() > MAX_MESSAGE_ID_LEN)
    {
        return bad_request(&st, "messageId must be 1 to 128 characters");
    }
    let n = u32::try_from(req.messages.len()).unwrap_or(u32::MAX);
    if let Some(refusal) = capacity(&st, &cfg, n, refusal) {
        return refusal;
    }
    bump(&st.stats.submit_requests);
    let now = Utc::now();
    let mut items = Vec::with_capacity(req.messages.len());
    let mut accepted = Vec::new();
    {
        let mut store = st.store();
        for m in req.messages {
            bump(&st.stats.submissions);
            if cfg.dedup_references
                && let Some(first) = store.generic_answers.get(&m.message_id)
            {
                bump(&st.stats.duplicate_submissions);
                items.push(first.clone());
                continue;
            }
            let outcome = store.decide(&cfg, &m.phone_number, &m.message_id);
            let item = if outcome.is_rejection() {
                bump(&st.stats.rejected);
                tracing::debug!(to = %mask_phone(&m.phone_number), ?outcome, "carrier simulator: generic message rejected");
                GenericItem {
                    message_id: m.message_id.clone(),
                    tracking_id: None,
                    status: outcome.generic_status(),
                    error_code: outcome.code().map(str::to_owned),
                    error_message: outcome.rejection_message().map(str::to_owned),
                }
            } else {
                let tracking_id = format!("TRK{}", st.next_hex(cfg.seed));
                let record = Record::new(
                    &cfg,
                    SentMessage {
                        carrier_id: tracking_id.clone(),
                        api: Api::Generic,
                        idempotency_key: Some(m.message_id.clone()),
                        to: m.phone_number,
                        from: None,
                        body: m.content,
                        callback_url: m.callback_url,
                        accepted_at: now,
                        outcome,
                    },
                );
                tracing::debug!(to = %mask_phone(&record.msg.to), tracking_id, outcome = ?record.msg.outcome, "carrier simulator: generic message accepted");
                accepted.push((record.msg.clone(), record.final_at));
                st.accept(&mut store, record);
                GenericItem {
                    message_id: m.message_id.clone(),
                    tracking_id: Some(tracking_id),
                    status: "QUEUED",
                    error_code: None,
                    error_message: None,
                }
            };
            // The first answer stays, so switching dedup on later answers as a deduplicating
            // carrier would have.
            store
                .generic_answers
                .entry(m.message_id)
                .or_insert_with(|| item.clone());
            items.push(item);
        }
    }
    let processed_at = tokio::time::Instant::now();
    let early: Vec<_> = accepted
        .iter()
        .filter_map(|(msg, final_at)| st.schedule_callbacks(&cfg, *final_at, msg))
        .collect();
    let batch_id = req
        .batch_id
        .unwrap_or_else(|| format!("batch-{}", st.next_hex(cfg.seed)));
    early::hold_answer(&st.dispatcher, &cfg, early, processed_at).await;
    json_response(
        StatusCode::ACCEPTED,
        &json!({
            "batchId": batch_id,
            "submissionStatus": "ACCEPTED",
            "timestamp": rfc3339(now),
            "messages": items,
        }),
    )
}

/// `GET /api/v1/messages/{trackingId}/status`.
pub(crate) async fn status(
    State(st): State<Arc<AppState>>,
    Path(tracking_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let cfg = st.config();
    let authorized = bearer_ok(&headers, &cfg.generic_api_key);
    if let Err(refusal) = gate(&st, &cfg, authorized, 0, refusal).await {
        return refusal;
    }
    bump(&st.stats.status_queries);
    let now = Utc::now();
    let store = st.store();
    let Some(r) = store
        .get(&tracking_id)
        .filter(|r| r.msg.api == Api::Generic)
    else {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    };
    let m = &r.msg;
    let (status, ts, code, text) = if still_queued(&cfg, m.accepted_at, now) {
        ("QUEUED", Value::Null, "0", "Queued")
    } else {
        let ts = match m.outcome {
            Outcome::Silent => Value::Null,
            _ => Value::from(rfc3339(r.final_at.min(now))),
        };
        let text = match m.outcome {
            Outcome::Delivered => "Delivered",
            Outcome::Failed { .. } => "Failed",
            Outcome::Undeliverable { .. } => "Undeliverable",
            _ => "Sent",
        };
        (
            m.outcome.generic_status(),
            ts,
            m.outcome.code().unwrap_or("0"),
            text,
        )
    };
    json_response(
        StatusCode::OK,
        &json!({
            "trackingId": m.carrier_id,
            "messageId": m.idempotency_key,
            "status": status,
            "deliveryTimestamp": ts,
            "statusCode": code,
            "statusMessage": text,
        }),
    )
}
