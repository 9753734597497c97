//! The carrier webhook (axum): delivery callbacks of the generic carrier (JSON, HMAC-SHA256 over
//! the raw body) and of the Twilio-compatible one (form, `X-Twilio-Signature`), and inbound
//! replies where STOP opts the customer out.
//!
//! The order of work per callback is what makes it lossless:
//! 1. the signature is checked (constant time) over the raw body — 401 otherwise, nothing stored;
//! 2. the body is parsed — 400 when malformed, nothing stored;
//! 3. the event is **stored** (phone fields masked: `carrier::redact`; idempotent per carrier,
//!    carrier message id and status) by a batch
//!    writer that turns concurrent callbacks into one `INSERT ... FROM UNNEST` (group commit);
//! 4. the carrier gets its 2xx — also for a duplicate, or an event of a finished or unknown
//!    workflow, so it stops retrying;
//! 5. the [`dispatch`](crate::dispatch) task signals the running workflow, decoupled from the
//!    acknowledgement; whatever it could not deliver (Temporal down) stays PENDING in Postgres and
//!    the reconciler delivers it later.
//!
//! Every answer to a carrier is counted by route and status (`pcn_webhook_requests_total`, with
//! the run of non-2xx answers in `pcn_webhook_consecutive_failures`); `GET /metrics` exposes them
//! with the reconciler's backlog.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, MatchedPath, OriginalUri, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pcn_activities::carrier::events::{self, CarrierEvent, InboundSms};
use pcn_activities::carrier::{redact, signature};
use pcn_activities::metrics::Metrics;
use pcn_activities::{consent, delivery_events};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{DispatchItem, Dispatcher};

/// Largest request body accepted (callbacks are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Secrets and addresses of the webhook.
#[derive(Clone)]
pub struct WebhookConfig {
    /// HMAC-SHA256 key of the generic carrier's callbacks.
    pub generic_secret: Vec<u8>,
    /// Twilio auth token (HMAC-SHA1 key of `X-Twilio-Signature`).
    pub twilio_auth_token: Vec<u8>,
    /// The public base URL the carrier calls (scheme://host[:port]), needed to recompute Twilio
    /// signatures, which cover the full URL.
    pub public_base_url: String,
    /// The keys of phone numbers (an inbound reply's number is looked up by its blind index and
    /// stored sealed).
    pub phones: pcn_activities::phone_vault::PhoneVault,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("public_base_url", &self.public_base_url)
            .finish_non_exhaustive()
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
struct AppState {
    config: Arc<WebhookConfig>,
    pool: PgPool,
    ingest: mpsc::Sender<IngestRequest>,
    metrics: Metrics,
}

/// The router; `ingest` is the sender of [`spawn_ingest`], `metrics` where answers are counted.
pub fn router(
    config: WebhookConfig,
    pool: PgPool,
    ingest: mpsc::Sender<IngestRequest>,
    metrics: Metrics,
) -> Router {
    let state = AppState {
        config: Arc::new(config),
        pool,
        ingest,
        metrics,
    };
    Router::new()
        .route("/webhooks/sms-delivery", post(generic_callback))
        // The path of the original carrier contract (docs/requirements.md#carrier-api), for
        // carriers configured with it.
        .route("/api/webhooks/sms-delivery", post(generic_callback))
        .route("/webhooks/sms-inbound", post(generic_inbound))
        .route("/webhooks/twilio/status", post(twilio_callback))
        .route("/webhooks/twilio/inbound", post(twilio_inbound))
        // Counts the carrier-facing routes above only (route layers apply to routes added
        // before them).
        .route_layer(middleware::from_fn_with_state(state.clone(), count_answer))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { state.metrics.render() }),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Counts each answer by its route (the matched path: a fixed, small set) and status.
async fn count_answer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .webhook_answered(&route, response.status().as_u16());
    response
}

/// Why a callback was refused (mapped to the HTTP status the carrier sees). Internal details are
/// logged, never returned.
enum Refusal {
    BadSignature,
    Malformed(String),
    Unavailable,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // One line per refusal, by reason (never the body: it may hold a phone number).
        match &self {
            Self::BadSignature => {
                tracing::warn!(
                    reason = "bad_signature",
                    status = 401,
                    "webhook refused a request"
                )
            }
            Self::Malformed(field) => tracing::warn!(
                reason = "malformed",
                status = 400,
                field = %field,
                "webhook refused a request"
            ),
            Self::Unavailable => tracing::error!(
                reason = "unavailable",
                status = 503,
                "webhook refused a request: storage unavailable, the carrier will retry"
            ),
        }
        match self {
            Self::BadSignature => (
                StatusCode::UNAUTHORIZED,
                Json(serde_json::json!({"error": "invalid signature"})),
            )
                .into_response(),
            Self::Malformed(field) => (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "malformed callback", "field": field})),
            )
                .into_response(),
            // 503: the carrier retries later; nothing was acknowledged, so nothing is lost.
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "temporarily unavailable"})),
            )
                .into_response(),
        }
    }
}

async fn generic_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    verify_generic(&state, &headers, &body)?;
    let event =
        events::parse_generic_callback(&body).map_err(|err| Refusal::Malformed(err.to_string()))?;
    let raw = redact::mask_phones(&String::from_utf8_lossy(&body));
    ingest(&state, event, raw).await
}

async fn twilio_callback(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let params = verify_twilio(&state, &uri, &headers, &body)?;
    let reference = uri
        .query()
        .map(|q| form_params(q.as_bytes()))
        .and_then(|q| q.into_iter().find(|(k, _)| k == "ref").map(|(_, v)| v))
        .unwrap_or_default();
    let event = events::parse_twilio_callback(&params, &reference)
        .map_err(|err| Refusal::Malformed(err.to_string()))?;
    let raw = redact::mask_phones(&String::from_utf8_lossy(&body));
    ingest(&state, event, raw).await
}

async fn generic_inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    verify_generic(&state, &headers, &body)?;
    let inbound =
        events::parse_generic_inbound(&body).map_err(|err| Refusal::Malformed(err.to_string()))?;
    handle_inbound(&state, inbound).await
}

async fn twilio_inbound(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let params = verify_twilio(&state, &uri, &headers, &body)?;
    let inbound =
        events::parse_twilio_inbound(&params).map_err(|err| Refusal::Malformed(err.to_string()))?;
    handle_inbound(&state, inbound).await
}

/// A body with a NUL byte cannot be stored (Postgres text refuses it) and is never a carrier's:
/// refused alone, before anything else.
fn no_nul(body: &[u8]) -> Result<(), Refusal> {
    if body.contains(&0) {
        Err(Refusal::Malformed("body: contains a NUL byte".to_owned()))
    } else {
        Ok(())
    }
}

/// The generic carrier's `X-Carrier-Signature` over the raw body, checked in constant time.
fn verify_generic(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    no_nul(body)?;
    let header = headers
        .get("x-carrier-signature")
        .and_then(|v| v.to_str().ok());
    if signature::verify_generic(&state.config.generic_secret, body, header) {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// Twilio's `X-Twilio-Signature` over the full public URL (query included) and the form
/// parameters; returns the parameters when it holds.
fn verify_twilio(
    state: &AppState,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, Refusal> {
    no_nul(body)?;
    let params = form_params(body);
    let url = format!(
        "{}{}",
        state.config.public_base_url.trim_end_matches('/'),
        uri.path_and_query().map_or("", |p| p.as_str())
    );
    let header = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok());
    if signature::verify_twilio(&state.config.twilio_auth_token, &url, &params, header) {
        Ok(params)
    } else {
        Err(Refusal::BadSignature)
    }
}

fn form_params(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Stores an inbound reply and what it means for consent ([`consent::record_inbound`]: a STOP
/// keyword opts the number's customers out, START/UNSTOP back in, anything else is kept as
/// IGNORED); answers 200 once stored, 503 when Postgres could not take it.
async fn handle_inbound(state: &AppState, inbound: InboundSms) -> Result<Response, Refusal> {
    let result = consent::record_inbound(&state.pool, &state.config.phones, &inbound).await;
    match result {
        Ok((action, changed)) => {
            tracing::info!(
                from = %inbound.from.masked(),
                action = action.as_str(),
                customers_changed = changed,
                "inbound SMS stored"
            );
            Ok(StatusCode::OK.into_response())
        }
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "inbound SMS not stored");
            Err(Refusal::Unavailable)
        }
    }
}

async fn ingest(state: &AppState, event: CarrierEvent, raw: String) -> Result<Response, Refusal> {
    let (reply, answer) = oneshot::channel();
    state
        .ingest
        .send(IngestRequest { event, raw, reply })
        .await
        .map_err(|_| Refusal::Unavailable)?;
    match answer.await {
        Ok(Ok(Ingested::New(_))) => Ok((StatusCode::OK, "stored").into_response()),
        Ok(Ok(Ingested::Duplicate)) => Ok((StatusCode::OK, "duplicate").into_response()),
        Ok(Err(())) | Err(_) => Err(Refusal::Unavailable),
    }
}

/// A callback waiting to be stored.
pub struct IngestRequest {
    event: CarrierEvent,
    raw: String,
    reply: oneshot::Sender<Result<Ingested, ()>>,
}

/// What storing a callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// A new event, with its row id.
    New(i64),
    /// Seen before (same carrier, message and status): nothing changed.
    Duplicate,
}

/// Starts the batch writers: callbacks that arrive while a batch is being written form the next
/// batch (up to `max_batch`), so the database sees one statement per batch, not per callback.
/// New final events go to `dispatcher`.
pub fn spawn_ingest(
    pool: PgPool,
    dispatcher: Dispatcher,
    writers: usize,
    max_batch: usize,
) -> mpsc::Sender<IngestRequest> {
    let (tx, rx) = mpsc::channel::<IngestRequest>(max_batch * 8);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    for _ in 0..writers.max(1) {
        let rx = Arc::clone(&rx);
        let pool = pool.clone();
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            loop {
                let mut batch = Vec::with_capacity(max_batch);
                {
                    let mut rx = rx.lock().await;
                    if rx.recv_many(&mut batch, max_batch).await == 0 {
                        return;
                    }
                }
                write_batch(&pool, &dispatcher, batch).await;
            }
        });
    }
    tx
}

async fn write_batch(pool: &PgPool, dispatcher: &Dispatcher, batch: Vec<IngestRequest>) {
    let events: Vec<_> = batch
        .iter()
        .map(|r| delivery_events::NewCallback {
            event: &r.event,
            raw: &r.raw,
        })
        .collect();
    let mut attempt = 0;
    let rows = loop {
        match delivery_events::store_callbacks(pool, &events).await {
            Ok(rows) => break rows,
            Err(err) if attempt < 2 => {
                attempt += 1;
                tracing::warn!(error = %format!("{err:#}"), attempt, "storing callbacks failed; retrying");
                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
            }
            Err(err) if batch.len() > 1 => {
                // One row the database refuses must not refuse its neighbours: store them one
                // by one, so each callback gets its own answer.
                tracing::warn!(error = %format!("{err:#}"), callbacks = batch.len(), "batch refused; storing callbacks one by one");
                for request in batch {
                    Box::pin(write_batch(pool, dispatcher, vec![request])).await;
                }
                return;
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "callback not stored; the carrier will retry");
                for request in batch {
                    let _ = request.reply.send(Err(()));
                }
                return;
            }
        }
    };
    let mut new_items = Vec::new();
    for request in batch {
        let key = (
            request.event.carrier.as_str(),
            request.event.carrier_message_id.as_str(),
            request.event.status.as_str(),
        );
        let answer = match rows.iter().find(|row| {
            (
                row.carrier.as_str(),
                row.carrier_message_id.as_str(),
                row.status.as_str(),
            ) == key
        }) {
            Some(row) => {
                if row.is_pending() {
                    new_items.push(DispatchItem::from_event(row.id, &request.event));
                } else if row.flag.is_some() {
                    tracing::warn!(reference = %request.event.reference, "a delivery report names another carrier id than its attempt's: kept, flagged FOREIGN, not applied");
                }
                Ingested::New(row.id)
            }
            None => Ingested::Duplicate,
        };
        let _ = request.reply.send(Ok(answer));
    }
    dispatcher.submit(new_items);
}

/// A running webhook server.
pub struct WebhookServer {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The dispatcher behind it.
    pub dispatcher: Dispatcher,
    task: tokio::task::JoinHandle<()>,
}

impl WebhookServer {
    /// Stops serving (stored events stay in Postgres for the reconciler of the next one).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Starts the webhook on `listener`: the batch writers, the dispatcher with its reconciler, the
/// HTTP server.
pub fn serve(
    listener: tokio::net::TcpListener,
    config: WebhookConfig,
    pool: PgPool,
    dispatcher: Dispatcher,
) -> anyhow::Result<WebhookServer> {
    serve_tls(listener, config, pool, dispatcher, None)
}

/// [`serve`], over TLS (rustls) when `tls` is given.
pub fn serve_tls(
    listener: tokio::net::TcpListener,
    config: WebhookConfig,
    pool: PgPool,
    dispatcher: Dispatcher,
    tls: Option<crate::tls::TlsIdentity>,
) -> anyhow::Result<WebhookServer> {
    let addr = listener.local_addr()?;
    let ingest = spawn_ingest(pool.clone(), dispatcher.clone(), 2, 512);
    let app = router(config, pool, ingest, dispatcher.metrics().clone());
    let task = match tls {
        Some(identity) => {
            let listener =
                pcn_tls::TlsListener::new("webhook", listener, identity.server_config()?)?;
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, app).await {
                    tracing::error!(error = %err, "webhook server stopped");
                }
            })
        }
        None => tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "webhook server stopped");
            }
        }),
    };
    Ok(WebhookServer {
        addr,
        dispatcher,
        task,
    })
}
