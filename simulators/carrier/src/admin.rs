//! The admin endpoints (unauthenticated: this is a test tool): faults, outages, stats, reset,
//! recorded messages and repeats, plans, callback pause/resume, inbound replies.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::Faults;
use crate::model::{Api, Outcome, SentMessage};
use crate::server::{AppState, json_response};

/// Every `/admin/…` route.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route("/admin/outage", post(post_outage).delete(delete_outage))
        .route("/admin/stats", get(get_stats))
        .route("/admin/reset", post(post_reset))
        .route("/admin/messages", get(get_messages))
        .route("/admin/messages/counts", get(get_message_counts))
        .route("/admin/repeats", get(get_repeats))
        .route("/admin/plans", put(put_plan).delete(delete_plans))
        .route("/admin/callbacks", get(get_callbacks))
        .route("/admin/callbacks/pause", post(post_pause))
        .route("/admin/callbacks/resume", post(post_resume))
        .route("/admin/inbound", post(post_inbound))
}

fn faults_response(f: &Faults) -> Response {
    match serde_json::to_value(f) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": e.to_string()}),
        ),
    }
}

fn admin_bad_request(message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": message}))
}

async fn get_faults(State(st): State<Arc<AppState>>) -> Response {
    faults_response(&st.config().faults)
}

/// Merges the given fields into the current faults: omitted fields keep their value, `null`
/// clears an optional one (`"rate_limit_per_sec": null`).
async fn put_faults(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(&body) else {
        return admin_bad_request("expected a JSON object");
    };
    let Ok(Value::Object(mut merged)) = serde_json::to_value(&st.config().faults) else {
        return admin_bad_request("cannot read the current faults");
    };
    merged.extend(patch);
    match serde_json::from_value::<Faults>(Value::Object(merged)) {
        Ok(f) => faults_response(&st.update_config(|c| c.faults = f).faults),
        Err(e) => admin_bad_request(&e.to_string()),
    }
}

/// `POST /admin/outage?seconds=N`: 503 for the next N seconds (`seconds=0` ends the outage).
async fn post_outage(State(st): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let seconds = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|p| p.strip_prefix("seconds="))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|&s| s >= 0);
    let Some(seconds) = seconds else {
        return admin_bad_request("expected ?seconds=N with N >= 0");
    };
    let cfg = st.update_config(|c| {
        if seconds == 0 {
            c.faults.outage = false;
            c.faults.outage_until = None;
        } else {
            c.faults.outage_until =
                Some(Utc::now() + TimeDelta::try_seconds(seconds).unwrap_or(TimeDelta::MAX));
        }
    });
    faults_response(&cfg.faults)
}

async fn delete_outage(State(st): State<Arc<AppState>>) -> Response {
    let cfg = st.update_config(|c| {
        c.faults.outage = false;
        c.faults.outage_until = None;
    });
    faults_response(&cfg.faults)
}

async fn get_stats(State(st): State<Arc<AppState>>) -> Response {
    let stats = st.stats.snapshot();
    let mut v = serde_json::to_value(&stats).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "callbacks_in_flight".into(),
            st.dispatcher.in_flight().into(),
        );
    }
    json_response(StatusCode::OK, &v)
}

async fn post_reset(State(st): State<Arc<AppState>>) -> StatusCode {
    st.reset();
    StatusCode::NO_CONTENT
}

/// `GET /admin/messages[?to=%2B9725…]`. A `+` left unencoded in `to` reads as a space; a
/// leading space is taken for the `+`.
async fn get_messages(State(st): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let to = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "to")
        .map(|(_, v)| match v.strip_prefix(' ') {
            Some(rest) => format!("+{rest}"),
            None => v.into_owned(),
        });
    let store = st.store();
    let list: Vec<&SentMessage> = store
        .messages
        .iter()
        .map(|r| &r.msg)
        .filter(|m| to.as_ref().is_none_or(|to| &m.to == to))
        .collect();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(list).unwrap_or(Value::Null),
    )
}

async fn get_message_counts(State(st): State<Arc<AppState>>) -> Response {
    let counts = st.store().counts_by_phone();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(counts).unwrap_or(Value::Null),
    )
}

/// `GET /admin/repeats`: `{"repeated_references": n, "phones": [{"phone", "repeated_references"}],
/// "references": [{"reference", "messages"}]}`, phones and references sorted, only those that
/// repeated. Full numbers: this is a test tool's admin endpoint (logs mask them).
async fn get_repeats(State(st): State<Arc<AppState>>) -> Response {
    let store = st.store();
    let repeats = &store.repeats;
    json_response(
        StatusCode::OK,
        &json!({
            "repeated_references": repeats.total(),
            "phones": repeats.phones(),
            "references": repeats.repeated(),
        }),
    )
}

#[derive(Deserialize)]
struct PlanRequest {
    phone: String,
    outcomes: Vec<Outcome>,
}

/// `PUT /admin/plans` `{"phone": "+9725…", "outcomes": [{"outcome": "failed", "code": "21614"},
/// {"outcome": "delivered"}]}`.
async fn put_plan(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let req = match serde_json::from_slice::<PlanRequest>(&body) {
        Ok(r) => r,
        Err(e) => return admin_bad_request(&e.to_string()),
    };
    let mut store = st.store();
    if req.outcomes.is_empty() {
        store.plans.remove(&req.phone);
    } else {
        store.plans.insert(req.phone, req.outcomes.into());
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_plans(State(st): State<Arc<AppState>>) -> StatusCode {
    st.store().plans.clear();
    StatusCode::NO_CONTENT
}

fn callbacks_response(st: &AppState) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "in_flight": st.dispatcher.in_flight(),
            "paused": st.dispatcher.is_paused(),
        }),
    )
}

async fn get_callbacks(State(st): State<Arc<AppState>>) -> Response {
    callbacks_response(&st)
}

async fn post_pause(State(st): State<Arc<AppState>>) -> Response {
    st.dispatcher.pause();
    callbacks_response(&st)
}

async fn post_resume(State(st): State<Arc<AppState>>) -> Response {
    st.dispatcher.resume();
    callbacks_response(&st)
}

#[derive(Deserialize)]
struct InboundRequest {
    api: Api,
    from: String,
    body: String,
}

/// `POST /admin/inbound` `{"api": "generic"|"twilio", "from": "+9725…", "body": "STOP"}` →
/// `200 {"webhook_status": N}`, or `502` when the webhook could not be reached.
async fn post_inbound(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let req = match serde_json::from_slice::<InboundRequest>(&body) {
        Ok(r) => r,
        Err(e) => return admin_bad_request(&e.to_string()),
    };
    match st.send_inbound(req.api, &req.from, &req.body).await {
        Ok(status) => json_response(StatusCode::OK, &json!({"webhook_status": status})),
        Err(e) => json_response(StatusCode::BAD_GATEWAY, &json!({"error": format!("{e:#}")})),
    }
}
