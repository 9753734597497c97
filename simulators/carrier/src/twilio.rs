//! The Twilio-compatible Messages API: create and fetch (the list is in `twilio_list`), form
//! encoded with Basic auth, and the Message resource they share.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::{SimConfig, TWILIO_API_VERSION};
use crate::early;
use crate::model::{Api, Outcome, SentMessage, mask_phone};
use crate::server::{AppState, Record, TwilioAnswer, gate, json_response, json_text, still_queued};
use crate::stats::bump;

pub(crate) fn error(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(status, &error_body(status, code, message))
}

fn error_body(status: StatusCode, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    })
}

/// The answer to a request refused by [`gate`].
pub(crate) fn refusal(status: StatusCode) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => {
            let mut resp = error(status, 20003, "Authenticate");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
            resp
        }
        StatusCode::TOO_MANY_REQUESTS => error(status, 20429, "Too Many Requests"),
        StatusCode::SERVICE_UNAVAILABLE => error(status, 20503, "Service Unavailable"),
        _ => error(status, 20500, "Internal Server Error"),
    }
}

/// Basic `AccountSid:AuthToken` matching the configuration, for the account in the path.
pub(crate) fn basic_ok(headers: &HeaderMap, cfg: &SimConfig, path_sid: &str) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    decoded
        .split_once(':')
        .is_some_and(|(user, pass)| user == cfg.twilio_account_sid && pass == cfg.twilio_auth_token)
        && path_sid == cfg.twilio_account_sid
}

/// When `r` was sent as of `now`: `None` while it is still queued (see
/// [`SimConfig::status_delay`]).
pub(crate) fn date_sent(cfg: &SimConfig, r: &Record, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (!still_queued(cfg, r.msg.accepted_at, now)).then_some(r.msg.accepted_at)
}

/// The Twilio Message resource of `r` as of `now`.
pub(crate) fn resource(cfg: &SimConfig, r: &Record, now: DateTime<Utc>) -> Value {
    let m = &r.msg;
    let sent = date_sent(cfg, r, now);
    let queued = sent.is_none();
    let status = if queued {
        "queued"
    } else {
        m.outcome.twilio_status()
    };
    let (error_code, error_message) = match (&m.outcome, queued) {
        (Outcome::Failed { code }, false) => (
            code.parse::<u64>().ok().map(Value::from),
            Some("Message delivery failed"),
        ),
        (Outcome::Undeliverable { code }, false) => (
            code.parse::<u64>().ok().map(Value::from),
            Some("Message undelivered"),
        ),
        _ => (None, None),
    };
    json!({
        "sid": m.carrier_id,
        "account_sid": cfg.twilio_account_sid,
        "to": m.to,
        "from": m.from,
        "body": m.body,
        "status": status,
        "num_segments": "1",
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": TWILIO_API_VERSION,
        "price": Value::Null,
        "price_unit": "USD",
        "error_code": error_code,
        "error_message": error_message,
        "date_created": m.accepted_at.to_rfc2822(),
        "date_updated": (if queued { m.accepted_at } else { r.final_at.min(now) }).to_rfc2822(),
        "date_sent": sent.map(|t| t.to_rfc2822()),
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{}.json", cfg.twilio_account_sid, m.carrier_id),
    })
}

/// The 400 of a synchronous rejection (Twilio names the number in some of them).
fn rejection(outcome: &Outcome, to: &str) -> TwilioAnswer {
    let code = outcome
        .code()
        .and_then(|c| c.parse::<u32>().ok())
        .unwrap_or(20500);
    let message = match outcome {
        Outcome::RejectInvalidNumber => {
            format!("The 'To' number {to} is not a valid phone number.")
        }
        Outcome::RejectCarrier => format!("'To' number {to} is not a valid mobile number"),
        other => other.rejection_message().unwrap_or("Rejected").to_owned(),
    };
    TwilioAnswer {
        status: StatusCode::BAD_REQUEST,
        body: error_body(StatusCode::BAD_REQUEST, code, &message).to_string(),
    }
}

/// `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`.
pub(crate) async fn create(
    State(st): State<Arc<AppState>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = st.config();
    let authorized = basic_ok(&headers, &cfg, &account_sid);
    if let Err(refusal) = gate(&st, &cfg, authorized, 1, refusal).await {
        return refusal;
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let Some(to) = field("To") else {
        bump(&st.stats.bad_requests);
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(text) = field("Body") else {
        bump(&st.stats.bad_requests);
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let from = field("From");
    if from.is_none() && field("MessagingServiceSid").is_none() {
        bump(&st.stats.bad_requests);
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    let callback_url = field("StatusCallback");
    // Twilio's Messages API has no idempotency key for creation: the token is recorded as the
    // message's reference (for the repeat counts) and deduplicated only when configured to.
    let token = headers
        .get("I-Twilio-Idempotency-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|t| !t.is_empty());

    let now = Utc::now();
    let (answer, accepted) = {
        let mut store = st.store();
        bump(&st.stats.submissions);
        bump(&st.stats.submit_requests);
        let cached = token
            .as_ref()
            .filter(|_| cfg.dedup_references)
            .and_then(|t| store.twilio_answers.get(t));
        if let Some(first) = cached {
            bump(&st.stats.duplicate_submissions);
            (first.clone(), None)
        } else {
            let sid = format!("SM{}", st.next_hex(cfg.seed));
            let outcome = store.decide(&cfg, &to, token.as_deref().unwrap_or(&sid));
            let (answer, accepted) = if outcome.is_rejection() {
                bump(&st.stats.rejected);
                tracing::debug!(to = %mask_phone(&to), ?outcome, "carrier simulator: Twilio message rejected");
                (rejection(&outcome, &to), None)
            } else {
                let record = Record::new(
                    &cfg,
                    SentMessage {
                        carrier_id: sid,
                        api: Api::Twilio,
                        idempotency_key: token.clone(),
                        to,
                        from,
                        body: text,
                        callback_url,
                        accepted_at: now,
                        outcome,
                    },
                );
                tracing::debug!(to = %mask_phone(&record.msg.to), sid = %record.msg.carrier_id, outcome = ?record.msg.outcome, "carrier simulator: Twilio message accepted");
                // Created: the resource as it is at acceptance (always queued).
                let mut resource = resource(&cfg, &record, now);
                resource["status"] = Value::from("queued");
                resource["error_code"] = Value::Null;
                resource["error_message"] = Value::Null;
                resource["date_sent"] = Value::Null;
                let accepted = (record.msg.clone(), record.final_at);
                st.accept(&mut store, record);
                let answer = TwilioAnswer {
                    status: StatusCode::CREATED,
                    body: resource.to_string(),
                };
                (answer, Some(accepted))
            };
            if let Some(t) = token {
                // The first answer stays (see the generic API).
                store
                    .twilio_answers
                    .entry(t)
                    .or_insert_with(|| answer.clone());
            }
            (answer, accepted)
        }
    };
    let processed_at = tokio::time::Instant::now();
    let early = accepted
        .and_then(|(msg, final_at)| st.schedule_callbacks(&cfg, final_at, &msg))
        .into_iter()
        .collect();
    early::hold_answer(&st.dispatcher, &cfg, early, processed_at).await;
    json_text(answer.status, answer.body)
}

/// `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`.
pub(crate) async fn fetch(
    State(st): State<Arc<AppState>>,
    Path((account_sid, sid_json)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let cfg = st.config();
    let authorized = basic_ok(&headers, &cfg, &account_sid);
    if let Err(refusal) = gate(&st, &cfg, authorized, 0, refusal).await {
        return refusal;
    }
    bump(&st.stats.status_queries);
    let store = st.store();
    let found = sid_json
        .strip_suffix(".json")
        .and_then(|sid| store.get(sid))
        .filter(|r| r.msg.api == Api::Twilio);
    match found {
        Some(r) => json_response(StatusCode::OK, &resource(&cfg, r, Utc::now())),
        None => error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
    }
}
