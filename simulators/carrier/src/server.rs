//! The HTTP server: both carrier APIs of `docs/carrier-wire.md`, the admin endpoints, and the
//! handle tests use to steer a running simulator.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::ListenerExt as _;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::callbacks::{Delivery, Dispatcher, Payload, Script};
use crate::faults::{Faults, RateLimiter};
use crate::hash::{chance_ppm, hash_str, mix, tag};
use crate::model::{Api, Outcome, OutcomeMix, SentMessage, is_valid_e164, mask_phone};
use crate::sign::{sign_generic, twilio_signature};
use crate::stats::{Stats, StatsCollector, bump};

/// The default (fixed, fake) Twilio account SID: `AC` and 32 hex digits.
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "AC5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

/// The Twilio API version in paths and callbacks.
pub const TWILIO_API_VERSION: &str = "2010-04-01";

/// Most messages in one generic batch.
pub const MAX_BATCH: usize = 1000;

/// Longest generic `messageId`.
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// How long [`SimHandle::shutdown`] lets in-flight requests finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Timeout of one callback or inbound POST.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// How the simulator is set up (at start, or later through [`SimHandle::update_config`]).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every pseudo-random choice (outcomes, jitter, duplicates, reordering, ids).
    pub seed: u64,
    /// The generic API's `Authorization: Bearer <key>`.
    pub generic_api_key: String,
    /// HMAC-SHA256 key of `X-Carrier-Signature` (generic callbacks and inbound messages).
    pub webhook_secret: String,
    /// Twilio account SID (Basic auth user, path segment, `AccountSid` in callbacks).
    pub twilio_account_sid: String,
    /// Twilio auth token (Basic auth password, `X-Twilio-Signature` key).
    pub twilio_auth_token: String,
    /// Our sending number: `To` of inbound messages, and `From` of Twilio callbacks for messages
    /// sent with a `MessagingServiceSid` instead of a `From`.
    pub sender_number: String,
    /// Delay from acceptance to the final callback.
    pub callback_delay: Duration,
    /// Plus a per-message deterministic extra delay in `0..=callback_jitter`.
    pub callback_jitter: Duration,
    /// Until this long after acceptance the status API answers QUEUED / `queued`.
    pub status_delay: Duration,
    /// Outcome of new submissions to phones without a plan.
    pub mix: OutcomeMix,
    /// Probability (ppm) that the final callback is sent twice.
    pub duplicate_ppm: u32,
    /// Probability (ppm) that a stale SENT callback follows the final one.
    pub reorder_ppm: u32,
    /// Send a SENT / `sent` callback (at half the delay) before the final one.
    pub intermediate: bool,
    /// Where [`SimHandle::send_inbound`] posts generic inbound messages.
    pub inbound_generic_url: Option<String>,
    /// Where [`SimHandle::send_inbound`] posts Twilio inbound messages.
    pub inbound_twilio_url: Option<String>,
    /// Most callback POSTs in flight at once (read at start only).
    pub callback_concurrency: usize,
    /// Faults in force (also changed by [`SimHandle::set_faults`] and friends).
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            generic_api_key: "dev-carrier-key".to_owned(),
            webhook_secret: "dev-webhook-secret".to_owned(),
            twilio_account_sid: DEFAULT_TWILIO_ACCOUNT_SID.to_owned(),
            twilio_auth_token: "dev-twilio-token".to_owned(),
            sender_number: "+15005550006".to_owned(),
            callback_delay: Duration::from_millis(200),
            callback_jitter: Duration::ZERO,
            status_delay: Duration::ZERO,
            mix: OutcomeMix::default(),
            duplicate_ppm: 0,
            reorder_ppm: 0,
            intermediate: false,
            inbound_generic_url: None,
            inbound_twilio_url: None,
            callback_concurrency: 256,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// Callback delay of one message: `callback_delay` plus its deterministic jitter.
    fn callback_delay_for(&self, carrier_id: &str) -> Duration {
        let jitter_ms = u64::try_from(self.callback_jitter.as_millis()).unwrap_or(u64::MAX);
        if jitter_ms == 0 {
            return self.callback_delay;
        }
        let extra = mix(&[self.seed, tag::JITTER, hash_str(carrier_id)]) % (jitter_ms + 1);
        self.callback_delay + Duration::from_millis(extra)
    }
}

/// One accepted message and when its final status became (or becomes) known.
struct Record {
    msg: SentMessage,
    final_at: DateTime<Utc>,
}

/// The generic API's per-message answer (cached for idempotent resubmission).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenericItem {
    message_id: String,
    tracking_id: Option<String>,
    status: &'static str,
    error_code: Option<String>,
    error_message: Option<String>,
}

/// The Twilio API's answer to a create (cached per idempotency token).
#[derive(Debug, Clone)]
struct TwilioAnswer {
    status: StatusCode,
    body: String,
}

#[derive(Default)]
struct Store {
    messages: Vec<Record>,
    by_carrier_id: HashMap<String, usize>,
    generic_answers: HashMap<String, GenericItem>,
    twilio_answers: HashMap<String, TwilioAnswer>,
    plans: HashMap<String, VecDeque<Outcome>>,
}

impl Store {
    /// The outcome of a new submission to `to`: invalid numbers are always rejected; then the
    /// phone's plan; then the mix.
    fn decide(&mut self, cfg: &SimConfig, to: &str, key: &str) -> Outcome {
        if !is_valid_e164(to) {
            return Outcome::RejectInvalidNumber;
        }
        if let Some(plan) = self.plans.get_mut(to) {
            let next = plan.pop_front();
            if plan.is_empty() {
                self.plans.remove(to);
            }
            if let Some(outcome) = next {
                return outcome;
            }
        }
        cfg.mix.pick(mix(&[cfg.seed, tag::OUTCOME, hash_str(key)]))
    }

    fn insert(&mut self, record: Record) {
        self.by_carrier_id
            .insert(record.msg.carrier_id.clone(), self.messages.len());
        self.messages.push(record);
    }

    fn get(&self, carrier_id: &str) -> Option<&Record> {
        self.by_carrier_id
            .get(carrier_id)
            .and_then(|&i| self.messages.get(i))
    }
}

/// State shared by every request.
struct AppState {
    /// Swapped whole on change; readers clone the `Arc` and never hold the lock across an await.
    config: RwLock<Arc<SimConfig>>,
    /// Short-held, never across an await.
    store: Mutex<Store>,
    stats: Arc<StatsCollector>,
    limiter: RateLimiter,
    dispatcher: Arc<Dispatcher>,
    /// Id counter (never reset, so ids stay unique across [`SimHandle::reset`]).
    seq: AtomicU64,
}

impl AppState {
    fn config(&self) -> Arc<SimConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn update_config(&self, change: impl FnOnce(&mut SimConfig)) -> SimConfig {
        let mut current = self.config.write().unwrap_or_else(PoisonError::into_inner);
        let mut cfg = SimConfig::clone(&current);
        change(&mut cfg);
        *current = Arc::new(cfg.clone());
        cfg
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh 32-hex-digit id body.
    fn next_hex(&self, seed: u64) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}{:016x}",
            mix(&[seed, tag::ID_HIGH, n]),
            mix(&[seed, tag::ID_LOW, n])
        )
    }

    fn reset(&self) {
        *self.store() = Store::default();
        self.stats.reset();
    }

    /// Builds and schedules the callbacks of a freshly accepted message.
    fn schedule_callbacks(&self, cfg: &SimConfig, record_final_at: DateTime<Utc>, m: &SentMessage) {
        let Some(url) = m.callback_url.clone() else {
            return;
        };
        if m.outcome == Outcome::Silent || m.outcome.is_rejection() {
            return;
        }
        let key = hash_str(m.idempotency_key.as_deref().unwrap_or(&m.carrier_id));
        let final_status = callback_delivery(cfg, m, &url, false, record_final_at);
        let sent = || callback_delivery(cfg, m, &url, true, record_final_at);
        let script = Script {
            delay: cfg.callback_delay_for(&m.carrier_id),
            intermediate: cfg.intermediate.then(sent),
            final_status,
            duplicate: chance_ppm(mix(&[cfg.seed, tag::DUPLICATE, key]), cfg.duplicate_ppm),
            stale: chance_ppm(mix(&[cfg.seed, tag::REORDER, key]), cfg.reorder_ppm).then(sent),
        };
        self.dispatcher.schedule(script);
    }

    /// Posts one signed inbound message; the HTTP status our webhook answered.
    async fn send_inbound(&self, api: Api, from: &str, body: &str) -> anyhow::Result<u16> {
        let cfg = self.config();
        let hex = {
            let n = self.seq.fetch_add(1, Ordering::Relaxed);
            format!(
                "{:016x}{:016x}",
                mix(&[cfg.seed, tag::INBOUND, n]),
                mix(&[cfg.seed, tag::ID_LOW, n])
            )
        };
        let delivery = match api {
            Api::Generic => {
                let url = cfg
                    .inbound_generic_url
                    .clone()
                    .context("no inbound_generic_url configured")?;
                let raw = json!({
                    "messageId": format!("MO{hex}"),
                    "from": from,
                    "to": cfg.sender_number,
                    "body": body,
                    "receivedAt": rfc3339(Utc::now()),
                })
                .to_string();
                Delivery {
                    url,
                    payload: Payload::Json {
                        signature: sign_generic(cfg.webhook_secret.as_bytes(), raw.as_bytes()),
                        body: Bytes::from(raw),
                    },
                }
            }
            Api::Twilio => {
                let url = cfg
                    .inbound_twilio_url
                    .clone()
                    .context("no inbound_twilio_url configured")?;
                let sid = format!("SM{hex}");
                let params = pairs(&[
                    ("MessageSid", &sid),
                    ("SmsSid", &sid),
                    ("AccountSid", &cfg.twilio_account_sid),
                    ("From", from),
                    ("To", &cfg.sender_number),
                    ("Body", body),
                    ("NumMedia", "0"),
                    ("ApiVersion", TWILIO_API_VERSION),
                ]);
                form_delivery(&cfg, url, &params)
            }
        };
        bump(&self.stats.inbound_sent);
        let resp = self.dispatcher.client().post(&delivery.url).header(
            reqwest::header::CONTENT_TYPE,
            match &delivery.payload {
                Payload::Json { .. } => "application/json",
                Payload::Form { .. } => "application/x-www-form-urlencoded",
            },
        );
        let resp = match delivery.payload {
            Payload::Json { body, signature } => {
                resp.header("X-Carrier-Signature", signature).body(body)
            }
            Payload::Form { body, signature } => {
                resp.header("X-Twilio-Signature", signature).body(body)
            }
        };
        let resp = resp
            .send()
            .await
            .with_context(|| format!("posting the inbound message to {}", delivery.url))?;
        tracing::info!(from = %mask_phone(from), ?api, status = resp.status().as_u16(), "carrier simulator: inbound message posted");
        Ok(resp.status().as_u16())
    }
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn form_delivery(cfg: &SimConfig, url: String, params: &[(String, String)]) -> Delivery {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    Delivery {
        payload: Payload::Form {
            signature: twilio_signature(&cfg.twilio_auth_token, &url, params),
            body: Bytes::from(body),
        },
        url,
    }
}

/// The callback for message `m`: its final status, or a SENT one when `sent`.
fn callback_delivery(
    cfg: &SimConfig,
    m: &SentMessage,
    url: &str,
    sent: bool,
    final_at: DateTime<Utc>,
) -> Delivery {
    match m.api {
        Api::Generic => {
            let (status, ts, code) = if sent {
                ("SENT", Value::Null, "0")
            } else {
                (
                    m.outcome.generic_status(),
                    Value::from(rfc3339(final_at)),
                    m.outcome.code().unwrap_or("0"),
                )
            };
            let raw = json!({
                "trackingId": m.carrier_id,
                "messageId": m.idempotency_key,
                "status": status,
                "deliveryTimestamp": ts,
                "phoneNumber": m.to,
                "statusCode": code,
            })
            .to_string();
            Delivery {
                url: url.to_owned(),
                payload: Payload::Json {
                    signature: sign_generic(cfg.webhook_secret.as_bytes(), raw.as_bytes()),
                    body: Bytes::from(raw),
                },
            }
        }
        Api::Twilio => {
            let status = if sent {
                "sent"
            } else {
                m.outcome.twilio_status()
            };
            let from = m.from.as_deref().unwrap_or(&cfg.sender_number);
            let mut params = pairs(&[
                ("MessageSid", &m.carrier_id),
                ("SmsSid", &m.carrier_id),
                ("AccountSid", &cfg.twilio_account_sid),
                ("From", from),
                ("To", &m.to),
                ("MessageStatus", status),
                ("SmsStatus", status),
                ("ApiVersion", TWILIO_API_VERSION),
            ]);
            if !sent && let Some(code) = m.outcome.code() {
                params.push(("ErrorCode".to_owned(), code.to_owned()));
            }
            form_delivery(cfg, url.to_owned(), &params)
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] also waits.
pub struct SimHandle {
    /// The address the server listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` (a wildcard bind address is replaced by loopback).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The configuration in force (faults included).
    pub fn config(&self) -> SimConfig {
        SimConfig::clone(&self.state.config())
    }

    /// Changes the configuration in place (applies to requests from now on; callbacks already
    /// scheduled keep their payloads and timing) and returns the result.
    pub fn update_config(&self, change: impl FnOnce(&mut SimConfig)) -> SimConfig {
        self.state.update_config(change)
    }

    /// Replaces the plan of `phone`: the next new submissions to it get these outcomes, one
    /// each, in order; after that the mix decides again. An empty plan removes it.
    pub fn set_plan(&self, phone: &str, outcomes: Vec<Outcome>) {
        let mut store = self.state.store();
        if outcomes.is_empty() {
            store.plans.remove(phone);
        } else {
            store.plans.insert(phone.to_owned(), outcomes.into());
        }
    }

    /// Removes every plan.
    pub fn clear_plans(&self) {
        self.state.store().plans.clear();
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.state.config().faults.clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state.update_config(|c| c.faults = faults);
    }

    /// Changes some fault settings in place and returns the result.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) -> Faults {
        self.state.update_config(|c| change(&mut c.faults)).faults
    }

    /// Every submit and status request gets a 503 for the next `duration` (wall clock).
    pub fn start_outage(&self, duration: Duration) {
        let until = Utc::now() + TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        self.update_faults(|f| f.outage_until = Some(until));
    }

    /// Ends any outage (both the flag and the deadline).
    pub fn end_outage(&self) {
        self.update_faults(|f| {
            f.outage = false;
            f.outage_until = None;
        });
    }

    /// Every accepted message, in acceptance order.
    pub fn messages(&self) -> Vec<SentMessage> {
        self.state
            .store()
            .messages
            .iter()
            .map(|r| r.msg.clone())
            .collect()
    }

    /// The accepted messages to `phone`, in acceptance order.
    pub fn messages_to(&self, phone: &str) -> Vec<SentMessage> {
        self.state
            .store()
            .messages
            .iter()
            .filter(|r| r.msg.to == phone)
            .map(|r| r.msg.clone())
            .collect()
    }

    /// Accepted messages per phone.
    pub fn message_counts_by_phone(&self) -> HashMap<String, u64> {
        counts_by_phone(&self.state.store())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.stats.snapshot()
    }

    /// Forgets every message, idempotency key and plan, and zeroes the counters. Callbacks
    /// already scheduled still go out (and are counted).
    pub fn reset(&self) {
        self.state.reset();
    }

    /// Holds every callback that falls due (and every retry) until [`resume_callbacks`].
    ///
    /// [`resume_callbacks`]: Self::resume_callbacks
    pub fn pause_callbacks(&self) {
        self.state.dispatcher.pause();
    }

    /// Sends the held callbacks and lets new ones go out when due.
    pub fn resume_callbacks(&self) {
        self.state.dispatcher.resume();
    }

    /// Messages whose callbacks are scheduled, held or being sent (not yet finished).
    pub fn callbacks_in_flight(&self) -> usize {
        self.state.dispatcher.in_flight()
    }

    /// Waits until [`callbacks_in_flight`](Self::callbacks_in_flight) is 0; `false` if
    /// `timeout` passed first.
    pub async fn wait_callbacks_idle(&self, timeout: Duration) -> bool {
        self.state.dispatcher.wait_idle(timeout).await
    }

    /// Posts a signed inbound message (e.g. a "STOP" reply) from `from` to the configured
    /// `inbound_generic_url` / `inbound_twilio_url`; returns the HTTP status our webhook
    /// answered. Errors when no URL is configured or nothing answered.
    pub async fn send_inbound(&self, api: Api, from: &str, body: &str) -> anyhow::Result<u16> {
        self.state.send_inbound(api, from, body).await
    }

    /// Stops accepting connections, drops every scheduled callback, lets in-flight requests
    /// finish (up to 5 s), and waits.
    pub async fn shutdown(mut self) {
        self.state.dispatcher.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            tracing::warn!(
                "carrier simulator: in-flight requests still running after the grace period, aborting"
            );
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.dispatcher.close();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn counts_by_phone(store: &Store) -> HashMap<String, u64> {
    let mut counts = HashMap::new();
    for r in &store.messages {
        *counts.entry(r.msg.to.clone()).or_insert(0) += 1;
    }
    counts
}

/// Starts the simulator on `bind` (use `127.0.0.1:0` in tests) and returns once it accepts
/// connections.
pub async fn spawn(config: SimConfig, bind: SocketAddr) -> anyhow::Result<SimHandle> {
    // reqwest is built without a default rustls provider; callbacks to https URLs need one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the carrier simulator to {bind}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;

    let stats = Arc::new(StatsCollector::default());
    let client = reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .pool_max_idle_per_host(config.callback_concurrency.max(1))
        .tcp_nodelay(true)
        .build()
        .context("building the callback HTTP client")?;
    let dispatcher = Arc::new(Dispatcher::new(
        client,
        config.callback_concurrency,
        Arc::clone(&stats),
    ));
    let state = Arc::new(AppState {
        config: RwLock::new(Arc::new(config)),
        store: Mutex::new(Store::default()),
        stats,
        limiter: RateLimiter::new(),
        dispatcher,
        seq: AtomicU64::new(0),
    });
    let app = router(Arc::clone(&state));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "carrier simulator stopped with an error");
        }
    });
    tracing::debug!(%addr, "carrier simulator listening");
    Ok(SimHandle {
        addr,
        state,
        shutdown: Some(tx),
        task: Some(task),
    })
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/messages/batch", post(generic_submit))
        .route("/api/v1/messages/{tracking_id}/status", get(generic_status))
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(twilio_create),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages/{sid_json}",
            get(twilio_fetch),
        )
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route("/admin/outage", post(post_outage).delete(delete_outage))
        .route("/admin/stats", get(get_stats))
        .route("/admin/reset", post(post_reset))
        .route("/admin/messages", get(get_messages))
        .route("/admin/messages/counts", get(get_message_counts))
        .route("/admin/plans", put(put_plan).delete(delete_plans))
        .route("/admin/callbacks", get(get_callbacks))
        .route("/admin/callbacks/pause", post(post_pause))
        .route("/admin/callbacks/resume", post(post_resume))
        .route("/admin/inbound", post(post_inbound))
        .route(
            "/health",
            get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .fallback(|| async { json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})) })
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

fn json_text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn with_retry_after(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// The request-level gates shared by both APIs, in order: latency, outage, auth, then (submits
/// only) the rate limit. `Err` is the refusal to send.
async fn gate(
    st: &AppState,
    cfg: &SimConfig,
    authorized: bool,
    submit: bool,
    refuse: impl Fn(StatusCode) -> Response,
) -> Result<(), Response> {
    if cfg.faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(cfg.faults.latency_ms)).await;
    }
    if cfg.faults.outage_active(Utc::now()) {
        bump(&st.stats.outage_refusals);
        return Err(refuse(StatusCode::SERVICE_UNAVAILABLE));
    }
    if !authorized {
        bump(&st.stats.unauthorized);
        return Err(refuse(StatusCode::UNAUTHORIZED));
    }
    if submit
        && let Some(rate) = cfg.faults.rate_limit_per_sec
        && !st.limiter.try_acquire(rate, Instant::now())
    {
        bump(&st.stats.rate_limited);
        return Err(with_retry_after(refuse(StatusCode::TOO_MANY_REQUESTS)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generic carrier API
// ---------------------------------------------------------------------------------------------

fn generic_refusal(status: StatusCode) -> Response {
    let body = match status {
        StatusCode::UNAUTHORIZED => json!({"error": "unauthorized"}),
        StatusCode::TOO_MANY_REQUESTS => json!({"error": "rate limited", "code": "20429"}),
        StatusCode::SERVICE_UNAVAILABLE => json!({"error": "service unavailable"}),
        _ => json!({"error": status.canonical_reason().unwrap_or("error")}),
    };
    json_response(status, &body)
}

fn generic_bad_request(st: &AppState, message: &str) -> Response {
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

async fn generic_submit(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = st.config();
    let authorized = bearer_ok(&headers, &cfg.generic_api_key);
    if let Err(refusal) = gate(&st, &cfg, authorized, true, generic_refusal).await {
        return refusal;
    }
    let Ok(req) = serde_json::from_slice::<BatchRequest>(&body) else {
        return generic_bad_request(&st, "malformed JSON");
    };
    if req.messages.is_empty() {
        return generic_bad_request(&st, "no messages");
    }
    if req.messages.len() > MAX_BATCH {
        return generic_bad_request(&st, "more than 1000 messages");
    }
    if req
        .messages
        .iter()
        .any(|m| m.message_id.is_empty() || m.message_id.len() > MAX_MESSAGE_ID_LEN)
    {
        return generic_bad_request(&st, "messageId must be 1 to 128 characters");
    }
    let now = Utc::now();
    let mut items = Vec::with_capacity(req.messages.len());
    let mut accepted = Vec::new();
    {
        let mut store = st.store();
        for m in req.messages {
            bump(&st.stats.submissions);
            if let Some(first) = store.generic_answers.get(&m.message_id) {
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
                    status: "REJECTED",
                    error_code: outcome.code().map(str::to_owned),
                    error_message: Some(
                        if outcome == Outcome::RejectInvalidNumber {
                            "Invalid phone number"
                        } else {
                            "Rejected by the carrier"
                        }
                        .to_owned(),
                    ),
                }
            } else {
                bump(&st.stats.accepted);
                let tracking_id = format!("TRK{}", st.next_hex(cfg.seed));
                let msg = SentMessage {
                    carrier_id: tracking_id.clone(),
                    api: Api::Generic,
                    idempotency_key: Some(m.message_id.clone()),
                    to: m.phone_number,
                    from: None,
                    body: m.content,
                    callback_url: m.callback_url,
                    accepted_at: now,
                    outcome,
                };
                let final_at = final_at(&cfg, &msg);
                tracing::debug!(to = %mask_phone(&msg.to), tracking_id, outcome = ?msg.outcome, "carrier simulator: generic message accepted");
                accepted.push((msg.clone(), final_at));
                store.insert(Record { msg, final_at });
                GenericItem {
                    message_id: m.message_id.clone(),
                    tracking_id: Some(tracking_id),
                    status: "QUEUED",
                    error_code: None,
                    error_message: None,
                }
            };
            store.generic_answers.insert(m.message_id, item.clone());
            items.push(item);
        }
    }
    for (msg, final_at) in &accepted {
        st.schedule_callbacks(&cfg, *final_at, msg);
    }
    let batch_id = req
        .batch_id
        .unwrap_or_else(|| format!("batch-{}", st.next_hex(cfg.seed)));
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

fn final_at(cfg: &SimConfig, msg: &SentMessage) -> DateTime<Utc> {
    msg.accepted_at
        + TimeDelta::from_std(cfg.callback_delay_for(&msg.carrier_id)).unwrap_or(TimeDelta::MAX)
}

/// Whether the status API still says QUEUED for a message accepted at `accepted_at`.
fn still_queued(cfg: &SimConfig, accepted_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < accepted_at + TimeDelta::from_std(cfg.status_delay).unwrap_or(TimeDelta::MAX)
}

async fn generic_status(
    State(st): State<Arc<AppState>>,
    Path(tracking_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let cfg = st.config();
    let authorized = bearer_ok(&headers, &cfg.generic_api_key);
    if let Err(refusal) = gate(&st, &cfg, authorized, false, generic_refusal).await {
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

// ---------------------------------------------------------------------------------------------
// Twilio-compatible API
// ---------------------------------------------------------------------------------------------

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    json_response(status, &twilio_error_body(status, code, message))
}

fn twilio_error_body(status: StatusCode, code: u32, message: &str) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    })
}

fn twilio_refusal(status: StatusCode) -> Response {
    match status {
        StatusCode::UNAUTHORIZED => {
            let mut resp = twilio_error(status, 20003, "Authenticate");
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
            resp
        }
        StatusCode::TOO_MANY_REQUESTS => twilio_error(status, 20429, "Too Many Requests"),
        StatusCode::SERVICE_UNAVAILABLE => twilio_error(status, 20503, "Service Unavailable"),
        _ => twilio_error(status, 20500, "Internal Server Error"),
    }
}

/// Basic `AccountSid:AuthToken` matching the configuration, for the account in the path.
fn basic_ok(headers: &HeaderMap, cfg: &SimConfig, path_sid: &str) -> bool {
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

/// The Twilio Message resource of `r`.
fn twilio_resource(cfg: &SimConfig, r: &Record, now: DateTime<Utc>) -> Value {
    let m = &r.msg;
    let queued = still_queued(cfg, m.accepted_at, now);
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
    let date_sent = if queued {
        Value::Null
    } else {
        Value::from(m.accepted_at.to_rfc2822())
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
        "date_sent": date_sent,
        "uri": format!("/2010-04-01/Accounts/{}/Messages/{}.json", cfg.twilio_account_sid, m.carrier_id),
    })
}

async fn twilio_create(
    State(st): State<Arc<AppState>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let cfg = st.config();
    let authorized = basic_ok(&headers, &cfg, &account_sid);
    if let Err(refusal) = gate(&st, &cfg, authorized, true, twilio_refusal).await {
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
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    let Some(text) = field("Body") else {
        bump(&st.stats.bad_requests);
        return twilio_error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let from = field("From");
    if from.is_none() && field("MessagingServiceSid").is_none() {
        bump(&st.stats.bad_requests);
        return twilio_error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        );
    }
    let callback_url = field("StatusCallback");
    let token = headers
        .get("I-Twilio-Idempotency-Token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .filter(|t| !t.is_empty());

    let now = Utc::now();
    let (answer, accepted) = {
        let mut store = st.store();
        bump(&st.stats.submissions);
        if let Some(first) = token.as_ref().and_then(|t| store.twilio_answers.get(t)) {
            bump(&st.stats.duplicate_submissions);
            return json_text(first.status, first.body.clone());
        }
        let sid = format!("SM{}", st.next_hex(cfg.seed));
        let outcome = store.decide(&cfg, &to, token.as_deref().unwrap_or(&sid));
        let (answer, accepted) = match outcome {
            Outcome::RejectInvalidNumber | Outcome::RejectCarrier => {
                bump(&st.stats.rejected);
                tracing::debug!(to = %mask_phone(&to), ?outcome, "carrier simulator: Twilio message rejected");
                let body = if outcome == Outcome::RejectInvalidNumber {
                    twilio_error_body(
                        StatusCode::BAD_REQUEST,
                        21211,
                        &format!("The 'To' number {to} is not a valid phone number."),
                    )
                } else {
                    twilio_error_body(
                        StatusCode::BAD_REQUEST,
                        21614,
                        &format!("'To' number {to} is not a valid mobile number"),
                    )
                };
                (
                    TwilioAnswer {
                        status: StatusCode::BAD_REQUEST,
                        body: body.to_string(),
                    },
                    None,
                )
            }
            outcome => {
                bump(&st.stats.accepted);
                let msg = SentMessage {
                    carrier_id: sid,
                    api: Api::Twilio,
                    idempotency_key: token.clone(),
                    to,
                    from,
                    body: text,
                    callback_url,
                    accepted_at: now,
                    outcome,
                };
                let record = Record {
                    final_at: final_at(&cfg, &msg),
                    msg,
                };
                tracing::debug!(to = %mask_phone(&record.msg.to), sid = %record.msg.carrier_id, outcome = ?record.msg.outcome, "carrier simulator: Twilio message accepted");
                // Created: the resource as it is at acceptance (always queued).
                let mut resource = twilio_resource(&cfg, &record, now);
                resource["status"] = Value::from("queued");
                resource["error_code"] = Value::Null;
                resource["error_message"] = Value::Null;
                resource["date_sent"] = Value::Null;
                let accepted = (record.msg.clone(), record.final_at);
                store.insert(record);
                (
                    TwilioAnswer {
                        status: StatusCode::CREATED,
                        body: resource.to_string(),
                    },
                    Some(accepted),
                )
            }
        };
        if let Some(t) = token {
            store.twilio_answers.insert(t, answer.clone());
        }
        (answer, accepted)
    };
    if let Some((msg, final_at)) = &accepted {
        st.schedule_callbacks(&cfg, *final_at, msg);
    }
    json_text(answer.status, answer.body)
}

async fn twilio_fetch(
    State(st): State<Arc<AppState>>,
    Path((account_sid, sid_json)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let cfg = st.config();
    let authorized = basic_ok(&headers, &cfg, &account_sid);
    if let Err(refusal) = gate(&st, &cfg, authorized, false, twilio_refusal).await {
        return refusal;
    }
    bump(&st.stats.status_queries);
    let store = st.store();
    let found = sid_json
        .strip_suffix(".json")
        .and_then(|sid| store.get(sid))
        .filter(|r| r.msg.api == Api::Twilio);
    match found {
        Some(r) => json_response(StatusCode::OK, &twilio_resource(&cfg, r, Utc::now())),
        None => twilio_error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Admin endpoints (unauthenticated: this is a test tool)
// ---------------------------------------------------------------------------------------------

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
    let counts = counts_by_phone(&st.store());
    json_response(
        StatusCode::OK,
        &serde_json::to_value(counts).unwrap_or(Value::Null),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_consumed_in_order_then_the_mix_decides() {
        let cfg = SimConfig::default();
        let mut store = Store::default();
        store.plans.insert(
            "+972501234567".into(),
            vec![Outcome::failed("21614"), Outcome::Silent].into(),
        );
        assert_eq!(
            store.decide(&cfg, "+972501234567", "a"),
            Outcome::failed("21614")
        );
        // An invalid number never consumes the plan.
        assert_eq!(
            store.decide(&cfg, "0501234567", "b"),
            Outcome::RejectInvalidNumber
        );
        assert_eq!(store.decide(&cfg, "+972501234567", "c"), Outcome::Silent);
        assert_eq!(store.decide(&cfg, "+972501234567", "d"), Outcome::Delivered);
        assert!(store.plans.is_empty());
    }

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let cfg = SimConfig {
            callback_jitter: Duration::from_millis(100),
            ..SimConfig::default()
        };
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let id = format!("TRK{i}");
            let d = cfg.callback_delay_for(&id);
            assert_eq!(d, cfg.callback_delay_for(&id));
            assert!(d >= cfg.callback_delay && d <= cfg.callback_delay + cfg.callback_jitter);
            seen.insert(d);
        }
        assert!(seen.len() > 20, "jitter should vary: {}", seen.len());
    }
}
