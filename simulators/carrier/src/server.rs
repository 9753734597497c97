//! The HTTP server's core: the shared state (recorded messages, plans, the dedup cache, repeat
//! counts), [`spawn`], the router, and the request gates both APIs pass through.
//!
//! The handlers live by resource: `generic` (generic carrier API), `twilio` and `twilio_list`
//! (Twilio-compatible API), `admin` (test controls); [`SimHandle`](crate::SimHandle) in `handle`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::callbacks::{Dispatcher, Script};
use crate::config::SimConfig;
use crate::early;
use crate::faults::RateLimiter;
use crate::generic::GenericItem;
use crate::handle::SimHandle;
use crate::hash::{chance_ppm, hash_str, message_key, mix, tag};
use crate::model::{Outcome, SentMessage, is_valid_e164};
use crate::payloads::callback_delivery;
use crate::repeats::Repeats;
use crate::stats::{StatsCollector, bump};
use crate::{admin, generic, twilio, twilio_list};

/// Timeout of one callback or inbound POST.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// One accepted message and when its final status became (or becomes) known.
pub(crate) struct Record {
    pub(crate) msg: SentMessage,
    pub(crate) final_at: DateTime<Utc>,
}

impl Record {
    /// A freshly accepted message; its final status is due after its callback delay.
    pub(crate) fn new(cfg: &SimConfig, msg: SentMessage) -> Self {
        let final_at =
            msg.accepted_at + TimeDelta::from_std(cfg.final_delay(&msg)).unwrap_or(TimeDelta::MAX);
        Self { msg, final_at }
    }
}

/// The Twilio API's answer to a create (cached per idempotency token).
#[derive(Debug, Clone)]
pub(crate) struct TwilioAnswer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
}

/// Everything the simulator remembers between requests.
#[derive(Default)]
pub(crate) struct Store {
    pub(crate) messages: Vec<Record>,
    by_carrier_id: HashMap<String, usize>,
    /// The first answer per generic `messageId` (consulted only with `dedup_references`).
    pub(crate) generic_answers: HashMap<String, GenericItem>,
    /// The first answer per Twilio idempotency token (consulted only with `dedup_references`).
    pub(crate) twilio_answers: HashMap<String, TwilioAnswer>,
    pub(crate) plans: HashMap<String, VecDeque<Outcome>>,
    pub(crate) repeats: Repeats,
}

impl Store {
    /// The outcome of a new submission to `to`: invalid numbers are always rejected; then the
    /// phone's plan; then the mix.
    pub(crate) fn decide(&mut self, cfg: &SimConfig, to: &str, key: &str) -> Outcome {
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

    /// Records an accepted message; `true` when its reference had been accepted before (a
    /// repeat: the carrier sends it again).
    pub(crate) fn insert(&mut self, record: Record) -> bool {
        let repeat = self
            .repeats
            .record(record.msg.idempotency_key.as_deref(), &record.msg.to);
        self.by_carrier_id
            .insert(record.msg.carrier_id.clone(), self.messages.len());
        self.messages.push(record);
        repeat
    }

    pub(crate) fn get(&self, carrier_id: &str) -> Option<&Record> {
        self.by_carrier_id
            .get(carrier_id)
            .and_then(|&i| self.messages.get(i))
    }

    /// Accepted messages per phone.
    pub(crate) fn counts_by_phone(&self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for r in &self.messages {
            *counts.entry(r.msg.to.clone()).or_insert(0) += 1;
        }
        counts
    }
}

/// State shared by every request.
pub(crate) struct AppState {
    /// Swapped whole on change; readers clone the `Arc` and never hold the lock across an await.
    config: RwLock<Arc<SimConfig>>,
    /// Short-held, never across an await.
    store: Mutex<Store>,
    pub(crate) stats: Arc<StatsCollector>,
    limiter: RateLimiter,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// Id counter (never reset, so ids stay unique across [`SimHandle::reset`]).
    seq: AtomicU64,
}

impl AppState {
    pub(crate) fn config(&self) -> Arc<SimConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn update_config(&self, change: impl FnOnce(&mut SimConfig)) -> SimConfig {
        let mut current = self.config.write().unwrap_or_else(PoisonError::into_inner);
        let mut cfg = SimConfig::clone(&current);
        change(&mut cfg);
        *current = Arc::new(cfg.clone());
        cfg
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh 32-hex-digit id body.
    pub(crate) fn next_hex(&self, seed: u64) -> String {
        self.next_hex_tagged(seed, tag::ID_HIGH)
    }

    /// A fresh 32-hex-digit id body whose first half is drawn under `high`.
    pub(crate) fn next_hex_tagged(&self, seed: u64, high: u64) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!(
            "{:016x}{:016x}",
            mix(&[seed, high, n]),
            mix(&[seed, tag::ID_LOW, n])
        )
    }

    pub(crate) fn reset(&self) {
        *self.store() = Store::default();
        self.stats.reset();
    }

    /// Records an accepted message under the store lock and counts it (a repeat too).
    pub(crate) fn accept(&self, store: &mut Store, record: Record) {
        bump(&self.stats.accepted);
        if store.insert(record) {
            bump(&self.stats.repeated_references);
        }
    }

    /// Builds and schedules the callbacks of a freshly accepted message. For an early one, the
    /// receiver is told once its final callback was posted (the answer waits on it).
    pub(crate) fn schedule_callbacks(
        &self,
        cfg: &SimConfig,
        final_at: DateTime<Utc>,
        m: &SentMessage,
    ) -> Option<oneshot::Receiver<()>> {
        let url = m.callback_url.clone()?;
        if m.outcome == Outcome::Silent || m.outcome.is_rejection() {
            return None;
        }
        let key = message_key(m);
        let sent = || callback_delivery(cfg, m, &url, true, final_at);
        let (tell, posted) = if early::is_early(cfg, m) {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let script = Script {
            delay: cfg.final_delay(m),
            intermediate: cfg.intermediate.then(sent),
            final_status: callback_delivery(cfg, m, &url, false, final_at),
            duplicate: chance_ppm(mix(&[cfg.seed, tag::DUPLICATE, key]), cfg.duplicate_ppm),
            stale: chance_ppm(mix(&[cfg.seed, tag::REORDER, key]), cfg.reorder_ppm).then(sent),
            final_posted: tell,
        };
        self.dispatcher.schedule(script);
        posted
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whether the status API still says QUEUED for a message accepted at `accepted_at`.
pub(crate) fn still_queued(
    cfg: &SimConfig,
    accepted_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    now < accepted_at + TimeDelta::from_std(cfg.status_delay).unwrap_or(TimeDelta::MAX)
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
    Ok(SimHandle::new(addr, state, tx, task))
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/messages/batch", post(generic::submit))
        .route(
            "/api/v1/messages/{tracking_id}/status",
            get(generic::status),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(twilio::create).get(twilio_list::list),
        )
        .route(
            "/2010-04-01/Accounts/{account_sid}/Messages/{sid_json}",
            get(twilio::fetch),
        )
        .merge(admin::routes())
        .route(
            "/health",
            get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }),
        )
        .fallback(|| async { json_response(StatusCode::NOT_FOUND, &json!({"error": "not found"})) })
        .with_state(state)
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    json_text(status, body.to_string())
}

pub(crate) fn json_text(status: StatusCode, body: String) -> Response {
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

fn with_retry_after(mut resp: Response, wait: Duration) -> Response {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    resp
}

/// The request-level gates shared by both APIs, in order: latency, outage, auth, then the
/// capacity for `messages` (0: not a submit; a generic batch passes 0 here and calls
/// [`capacity`] once it knows its size). `Err` is the refusal to send.
pub(crate) async fn gate(
    st: &AppState,
    cfg: &SimConfig,
    authorized: bool,
    messages: u32,
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
    match capacity(st, cfg, messages, refuse) {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

/// The carrier's capacity (`Faults::rate_limit_per_sec`) for `messages` (none taken for 0):
/// the refusal (`429` with `Retry-After`) when they do not fit now.
pub(crate) fn capacity(
    st: &AppState,
    cfg: &SimConfig,
    messages: u32,
    refuse: impl Fn(StatusCode) -> Response,
) -> Option<Response> {
    if messages > 0 && st.limiter.refuse_forced(cfg.faults.refuse_first_submits) {
        bump(&st.stats.rate_limited);
        return Some(with_retry_after(
            refuse(StatusCode::TOO_MANY_REQUESTS),
            Duration::from_secs(1),
        ));
    }
    if messages > 0
        && let Some(rate) = cfg.faults.rate_limit_per_sec
        && let Err(wait) = st.limiter.try_acquire(rate, messages, Instant::now())
    {
        bump(&st.stats.rate_limited);
        return Some(with_retry_after(
            refuse(StatusCode::TOO_MANY_REQUESTS),
            wait,
        ));
    }
    None
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
}
