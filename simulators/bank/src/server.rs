//! The HTTP server: the balance endpoint of `docs/requirements.md#bank-api`, the admin endpoints,
//! and the handle tests use to steer a running simulator.
//!
//! Over 600 lines: about 700 of the simulated balance API (auth, faults, latency, the admin
//! endpoints) and its unit tests.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, TimeZone as _, Utc};
use chrono_tz::Asia::Jerusalem;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::Faults;
use crate::hash::{chance_ppm, day_word, mix, splitmix64, tag};
use crate::ids::parse_account_index;
use crate::scenario::{ProfileMix, Scenario, SimOutcome};
use crate::stats::{Stats, StatsCollector};
use crate::tls::SimTls;
use pcn_tls::TlsListener;

/// How the simulator is set up at start.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of every pseudo-random choice.
    pub seed: u64,
    /// Population size: account indices `0..accounts` exist.
    pub accounts: u64,
    /// Profile weights.
    pub mix: ProfileMix,
    /// The `X-API-Key` clients must send.
    pub api_key: String,
    /// Faults in force from the start (an empty `faults.api_key` means "use `api_key`").
    pub faults: Faults,
    /// A token also accepted as `Authorization: Bearer <token>` instead of the API key. Unset:
    /// only the API key is accepted.
    pub bearer_token: Option<String>,
    /// Serve HTTPS (and with a client CA, mutual TLS) instead of plain HTTP.
    pub tls: Option<SimTls>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            accounts: 1000,
            mix: ProfileMix::default(),
            api_key: "dev-bank-key".to_owned(),
            faults: Faults::default(),
            bearer_token: None,
            tls: None,
        }
    }
}

/// The `asOfTime` used when a request does not give one (end of business day, Israel time).
pub const DEFAULT_AS_OF_TIME: NaiveTime = match NaiveTime::from_hms_opt(21, 0, 0) {
    Some(t) => t,
    None => panic!("21:00:00 is a valid time"),
};

/// How long [`SimHandle::shutdown`] lets in-flight requests finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// State shared by every request.
struct AppState {
    scenario: Scenario,
    /// Swapped whole on change; readers clone the `Arc` and never hold the lock across an await.
    faults: RwLock<Arc<Faults>>,
    stats: StatsCollector,
    /// Global request counter: part of the fault hash so retries draw afresh.
    seq: AtomicU64,
    /// Accepted as `Authorization: Bearer` besides the API key.
    bearer_token: Option<String>,
    /// Every connection presented a client certificate of the client CA (mutual TLS): that is
    /// the client's credential, no header is needed.
    mutual_tls: bool,
}

impl AppState {
    fn faults(&self) -> Arc<Faults> {
        Arc::clone(&self.faults.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the faults; an empty API key keeps the current one.
    fn set_faults(&self, mut faults: Faults) -> Faults {
        let mut current = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        if faults.api_key.is_empty() {
            faults.api_key.clone_from(&current.api_key);
        }
        *current = Arc::new(faults.clone());
        faults
    }

    fn update_faults(&self, change: impl FnOnce(&mut Faults)) -> Faults {
        let mut current = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        let mut faults = Faults::clone(&current);
        change(&mut faults);
        if faults.api_key.is_empty() {
            faults.api_key.clone_from(&current.api_key);
        }
        *current = Arc::new(faults.clone());
        faults
    }
}

/// A running simulator. Dropping it stops the server too; [`SimHandle::shutdown`] also waits.
pub struct SimHandle {
    /// The address the server listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    https: bool,
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
    /// `http://127.0.0.1:PORT`, or `https://…` when serving TLS (a wildcard bind address is
    /// replaced by loopback; a test certificate needs the IP address `127.0.0.1` among its names).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// The scenario the server answers from (overrides set here apply to the server at once).
    pub fn scenario(&self) -> &Scenario {
        &self.state.scenario
    }

    /// The API key clients must currently send.
    pub fn api_key(&self) -> String {
        self.state.faults().api_key.clone()
    }

    /// Replaces the faults (an empty `api_key` keeps the current key).
    pub fn set_faults(&self, faults: Faults) {
        self.state.set_faults(faults);
    }

    /// Changes some fault settings in place and returns the result.
    pub fn update_faults(&self, change: impl FnOnce(&mut Faults)) -> Faults {
        self.state.update_faults(change)
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        Faults::clone(&self.state.faults())
    }

    /// Every balance request gets a 503 for the next `duration` (wall clock).
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

    /// Pins the answer for account `i` on `date` (wins over the profile).
    pub fn set_override(&self, i: u64, date: NaiveDate, outcome: SimOutcome) {
        self.state.scenario.set_override(i, date, outcome);
    }

    /// Removes every override.
    pub fn clear_overrides(&self) {
        self.state.scenario.clear_overrides();
    }

    /// A snapshot of the request counters, including the per-(account, date) counts.
    pub fn stats(&self) -> Stats {
        self.state.stats.snapshot(true)
    }

    /// Balance requests so far for account `i` on `date` (cheaper than [`stats`](Self::stats)).
    pub fn requests_for(&self, i: u64, date: NaiveDate) -> u64 {
        self.state.stats.requests_for(i, date)
    }

    /// Zeroes every counter.
    pub fn reset_stats(&self) {
        self.state.stats.reset();
    }

    /// Stops accepting connections, lets in-flight requests finish (up to 5 s), and waits.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
        {
            tracing::warn!(
                "bank simulator: in-flight requests still running after the grace period, aborting"
            );
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the simulator on `bind` (use `127.0.0.1:0` in tests) and returns once it accepts
/// connections: plain HTTP, or HTTPS with [`SimConfig::tls`].
pub async fn spawn(config: SimConfig, bind: SocketAddr) -> anyhow::Result<SimHandle> {
    anyhow::ensure!(config.mix.total() > 0, "the profile mix weights sum to 0");
    anyhow::ensure!(
        config.bearer_token.as_deref() != Some(""),
        "the bearer token is empty"
    );
    let tls = config.tls.as_ref().map(SimTls::server_config).transpose()?;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding the bank simulator to {bind}"))?;
    let addr = listener.local_addr().context("reading the bound address")?;

    let mut faults = config.faults;
    if faults.api_key.is_empty() {
        faults.api_key = config.api_key;
    }
    let state = Arc::new(AppState {
        scenario: Scenario::new(config.seed, config.accounts, config.mix),
        faults: RwLock::new(Arc::new(faults)),
        stats: StatsCollector::new(),
        seq: AtomicU64::new(0),
        bearer_token: config.bearer_token,
        mutual_tls: config
            .tls
            .as_ref()
            .is_some_and(|tls| tls.client_ca_pem.is_some()),
    });
    let app = router(Arc::clone(&state));
    let (tx, rx) = oneshot::channel::<()>();
    let https = tls.is_some();
    let task = match tls {
        Some(tls) => tokio::spawn(serve(
            TlsListener::new("bank simulator", listener, tls)?,
            app,
            rx,
        )),
        None => {
            // Small JSON answers on keep-alive connections: Nagle would only add latency.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            tokio::spawn(serve(listener, app, rx))
        }
    };
    tracing::debug!(%addr, https, "bank simulator listening");
    Ok(SimHandle {
        addr,
        https,
        state,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Serves `app` on `listener` until `stop` fires.
async fn serve<L>(listener: L, app: Router, stop: oneshot::Receiver<()>)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stop.await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "bank simulator stopped with an error");
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/accounts/{account_id}/balance", get(balance))
        .route("/admin/faults", get(get_faults).put(put_faults))
        .route("/admin/outage", post(post_outage).delete(delete_outage))
        .route("/admin/stats", get(get_stats).delete(delete_stats))
        .route(
            "/health",
            get(|| async { json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned()) }),
        )
        .fallback(|| async { error(ApiError::NoRoute) })
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Balance endpoint
// ---------------------------------------------------------------------------------------------

/// The error answers of the balance API (docs/requirements.md#bank-api).
#[derive(Debug, Clone, Copy)]
enum ApiError {
    BadAccountId,
    MissingDate,
    BadDate,
    BadTime,
    BadBody,
    Unauthorized,
    NotFound,
    NoRoute,
    Internal,
    Unavailable,
}

impl ApiError {
    fn parts(self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadAccountId => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "Invalid account ID format",
            ),
            Self::MissingDate => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "Missing asOfDate query parameter",
            ),
            Self::BadDate => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "Invalid asOfDate, expected YYYY-MM-DD",
            ),
            Self::BadTime => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "Invalid asOfTime, expected HH:MM:SS",
            ),
            Self::BadBody => (
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST",
                "Invalid request body",
            ),
            Self::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "Authentication failed",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND", "Account not found"),
            Self::NoRoute => (StatusCode::NOT_FOUND, "NOT_FOUND", "No such endpoint"),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "Server error",
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Temporary unavailability",
            ),
        }
    }
}

fn json(status: StatusCode, body: String) -> Response {
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

fn error(e: ApiError) -> Response {
    let (status, code, message) = e.parts();
    json(
        status,
        format!(r#"{{"code":"{code}","message":"{message}"}}"#),
    )
}

async fn balance(
    State(st): State<Arc<AppState>>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let response = answer_balance(&st, path, query.as_deref(), &headers).await;
    st.stats.record_status(response.status().as_u16());
    response
}

async fn answer_balance(
    st: &AppState,
    path: Result<Path<String>, PathRejection>,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let seq = st.seq.fetch_add(1, Ordering::Relaxed);
    let index = path.ok().and_then(|Path(id)| parse_account_index(&id));
    let when = parse_query(query);
    if let (Some(i), Ok((date, _))) = (index, &when) {
        st.stats.record_request(i, *date);
    }

    let faults = st.faults();
    // An outage looks like the bank's gateway being down: it answers before authentication.
    if faults.outage_possible() && faults.outage_active(Utc::now()) {
        return error(ApiError::Unavailable);
    }
    if !st.mutual_tls && !authorized(headers, &faults.api_key, st.bearer_token.as_deref()) {
        return error(ApiError::Unauthorized);
    }

    let draw = mix(&[
        st.scenario.seed(),
        tag::FAULT,
        seq,
        index.unwrap_or(u64::MAX),
        when.as_ref().map_or(0, |(d, _)| day_word(*d)),
    ]);
    let mut delay_ms = faults.latency_ms;
    if faults.jitter_ms > 0 {
        delay_ms = delay_ms.saturating_add(splitmix64(draw ^ 1) % faults.jitter_ms);
    }
    if chance_ppm(splitmix64(draw ^ 2), faults.hang_ppm) {
        delay_ms = delay_ms.saturating_add(faults.hang_ms);
    }
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    if chance_ppm(splitmix64(draw ^ 3), faults.error_503_ppm) {
        return error(ApiError::Unavailable);
    }
    if chance_ppm(splitmix64(draw ^ 4), faults.error_500_ppm) {
        return error(ApiError::Internal);
    }

    let Some(i) = index else {
        return error(ApiError::BadAccountId);
    };
    let (date, time) = match when {
        Ok(w) => w,
        Err(e) => return error(e),
    };
    match st.scenario.outcome(i, date) {
        SimOutcome::Balance { amount, currency } => json(
            StatusCode::OK,
            balance_body(&st.scenario, i, date, time, amount, &currency),
        ),
        SimOutcome::NotFound => error(ApiError::NotFound),
        SimOutcome::Malformed => json(StatusCode::OK, malformed_body(&st.scenario, i, date, time)),
    }
}

/// Whether a request carries the API key, or the bearer token when one is configured.
fn authorized(headers: &HeaderMap, api_key: &str, bearer_token: Option<&str>) -> bool {
    let key = headers.get("x-api-key").map(HeaderValue::as_bytes);
    if key == Some(api_key.as_bytes()) {
        return true;
    }
    let Some(token) = bearer_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given == token)
}

/// The 200 body, written by hand so `amount` is a JSON number with exactly two decimals (going
/// through `f64` would print `15000.0` and could lose agorot).
fn balance_body(
    scenario: &Scenario,
    i: u64,
    date: NaiveDate,
    time: NaiveTime,
    amount: rust_decimal::Decimal,
    currency: &str,
) -> String {
    let mut amount = amount.round_dp(2);
    amount.rescale(2);
    let currency = if currency.bytes().all(|b| b.is_ascii_alphanumeric()) {
        format!("\"{currency}\"")
    } else {
        serde_json::Value::from(currency).to_string()
    };
    let mut body = String::with_capacity(256);
    // Writing into a String cannot fail.
    let _ = write!(
        body,
        r#"{{"accountId":"ACC-{:05}-{:05}","customerId":"C{:010}","balance":{{"amount":{},"currency":{},"asOfDate":"{}","asOfTime":"{}"}},"accountStatus":"ACTIVE","timestamp":"{}","referenceId":"{}"}}"#,
        i / 100_000,
        i % 100_000,
        i,
        amount,
        currency,
        date.format("%Y-%m-%d"),
        time.format("%H:%M:%S"),
        utc_of_israel_time(date, time).format("%Y-%m-%dT%H:%M:%SZ"),
        scenario.reference_id(i, date),
    );
    body
}

/// A 200 body a client must reject: wrong types, missing fields or truncated JSON.
fn malformed_body(scenario: &Scenario, i: u64, date: NaiveDate, time: NaiveTime) -> String {
    let kind = mix(&[scenario.seed(), tag::MALFORMED_KIND, i, day_word(date)]) % 3;
    match kind {
        0 => format!(
            r#"{{"accountId":"ACC-{:05}-{:05}","balance":{{"amount":"oops"}}}}"#,
            i / 100_000,
            i % 100_000
        ),
        1 => {
            let mut full = balance_body(
                scenario,
                i,
                date,
                time,
                rust_decimal::Decimal::new(2_500_000, 2),
                "NIS",
            );
            full.truncate(full.len() / 2);
            full
        }
        _ => format!(
            r#"{{"accountId":"ACC-{:05}-{:05}","customerId":"C{:010}","balance":{{"amount":null,"currency":"NIS","asOfDate":"{}"}},"accountStatus":"ACTIVE"}}"#,
            i / 100_000,
            i % 100_000,
            i,
            date.format("%Y-%m-%d"),
        ),
    }
}

/// `asOfDate`/`asOfTime` are Israel local time (the daily check runs at 22:00 Asia/Jerusalem);
/// `timestamp` is the same instant in UTC.
fn utc_of_israel_time(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let local = date.and_time(time);
    match Jerusalem.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        // Inside the spring-forward gap: read it as standard time (UTC+2).
        None => Utc.from_utc_datetime(&(local - TimeDelta::hours(2))),
    }
}

/// Parses `asOfDate` (required) and `asOfTime` (default 21:00:00) from the raw query string.
fn parse_query(query: Option<&str>) -> Result<(NaiveDate, NaiveTime), ApiError> {
    let mut date = None;
    let mut time = DEFAULT_AS_OF_TIME;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "asOfDate" => {
                date = Some(
                    percent_decode(value)
                        .as_deref()
                        .and_then(parse_date)
                        .ok_or(ApiError::BadDate)?,
                );
            }
            "asOfTime" => {
                time = percent_decode(value)
                    .as_deref()
                    .and_then(parse_time)
                    .ok_or(ApiError::BadTime)?;
            }
            _ => {}
        }
    }
    Ok((date.ok_or(ApiError::MissingDate)?, time))
}

/// Strict `YYYY-MM-DD`.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(number(&b[0..4])?).ok()?;
    let month = u32::try_from(number(&b[5..7])?).ok()?;
    let day = u32::try_from(number(&b[8..10])?).ok()?;
    NaiveDate::from_ymd_opt(year, month, day)
}

/// Strict `HH:MM:SS`.
fn parse_time(s: &str) -> Option<NaiveTime> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h = u32::try_from(number(&b[0..2])?).ok()?;
    let m = u32::try_from(number(&b[3..5])?).ok()?;
    let sec = u32::try_from(number(&b[6..8])?).ok()?;
    NaiveTime::from_hms_opt(h, m, sec)
}

fn number(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// Decodes `%XX` escapes and `+` (clients encode `:` in `asOfTime` as `%3A`). Borrows when there
/// is nothing to decode, which is the common case.
fn percent_decode(s: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(std::borrow::Cow::Borrowed(s));
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'%' => {
                let hex = b.get(k + 1..k + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                k += 3;
            }
            b'+' => {
                out.push(b' ');
                k += 1;
            }
            c => {
                out.push(c);
                k += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(std::borrow::Cow::Owned)
}

// ---------------------------------------------------------------------------------------------
// Admin endpoints (unauthenticated: this is a test tool, and a rotated API key must not lock
// the operator out)
// ---------------------------------------------------------------------------------------------

async fn get_faults(State(st): State<Arc<AppState>>) -> Response {
    faults_response(&st.faults())
}

fn faults_response(f: &Faults) -> Response {
    match serde_json::to_string(f) {
        Ok(body) => json(StatusCode::OK, body),
        Err(_) => error(ApiError::Internal),
    }
}

/// Merges the given fields into the current faults: omitted fields keep their value, `null`
/// clears an optional one (`"outage_until": null`), an empty `api_key` keeps the key.
async fn put_faults(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let Ok(serde_json::Value::Object(patch)) = serde_json::from_slice::<serde_json::Value>(&body)
    else {
        return error(ApiError::BadBody);
    };
    let current = st.faults();
    let Ok(serde_json::Value::Object(mut merged)) = serde_json::to_value(&*current) else {
        return error(ApiError::Internal);
    };
    merged.extend(patch);
    match serde_json::from_value::<Faults>(serde_json::Value::Object(merged)) {
        Ok(f) => faults_response(&st.set_faults(f)),
        Err(_) => error(ApiError::BadBody),
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
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"code":"INVALID_REQUEST","message":"expected ?seconds=N with N >= 0"}"#.to_owned(),
        );
    };
    let f = st.update_faults(|f| {
        if seconds == 0 {
            f.outage = false;
            f.outage_until = None;
        } else {
            f.outage_until =
                Some(Utc::now() + TimeDelta::try_seconds(seconds).unwrap_or(TimeDelta::MAX));
        }
    });
    faults_response(&f)
}

/// `DELETE /admin/outage`: ends any outage.
async fn delete_outage(State(st): State<Arc<AppState>>) -> Response {
    let f = st.update_faults(|f| {
        f.outage = false;
        f.outage_until = None;
    });
    faults_response(&f)
}

/// `GET /admin/stats[?accountId=…&asOfDate=…]`: the counters, plus `requests_for` when an
/// (account, date) is named.
async fn get_stats(State(st): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let stats = st.stats.snapshot(false);
    let Ok(mut value) = serde_json::to_value(&stats) else {
        return error(ApiError::Internal);
    };
    let (mut account, mut date) = (None, None);
    for pair in query.as_deref().unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("accountId", v)) => account = parse_account_index(v),
            Some(("asOfDate", v)) => date = parse_date(v),
            _ => {}
        }
    }
    if let (Some(i), Some(d), Some(obj)) = (account, date, value.as_object_mut()) {
        obj.insert("requests_for".into(), st.stats.requests_for(i, d).into());
    }
    json(StatusCode::OK, value.to_string())
}

/// `DELETE /admin/stats`: zeroes every counter.
async fn delete_stats(State(st): State<Arc<AppState>>) -> StatusCode {
    st.stats.reset();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_api_key_or_the_configured_bearer_token_authorizes() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let key = headers(&[("x-api-key", "k")]);
        let bearer = headers(&[("authorization", "Bearer t")]);
        assert!(authorized(&key, "k", None));
        assert!(!authorized(&key, "other", None));
        assert!(
            !authorized(&bearer, "k", None),
            "no bearer unless configured"
        );
        assert!(authorized(&bearer, "k", Some("t")));
        assert!(!authorized(&bearer, "k", Some("t2")));
        assert!(!authorized(
            &headers(&[("authorization", "Basic t")]),
            "k",
            Some("t")
        ));
        assert!(!authorized(&headers(&[]), "k", Some("t")));
    }

    #[test]
    fn queries_parse_strictly_with_a_default_time() {
        assert_eq!(
            parse_query(Some("asOfDate=2026-10-05")).unwrap(),
            (date(2026, 10, 5), DEFAULT_AS_OF_TIME)
        );
        assert_eq!(
            parse_query(Some("asOfTime=22%3A00%3A00&asOfDate=2026-10-05"))
                .unwrap()
                .1,
            NaiveTime::from_hms_opt(22, 0, 0).unwrap()
        );
        assert!(matches!(parse_query(None), Err(ApiError::MissingDate)));
        assert!(matches!(
            parse_query(Some("x=1")),
            Err(ApiError::MissingDate)
        ));
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-1-05",
            "05/10/2026",
            "",
            "2026-10-05T00",
        ] {
            let q = format!("asOfDate={bad}");
            assert!(
                matches!(parse_query(Some(&q)), Err(ApiError::BadDate)),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_query(Some("asOfDate=2026-10-05&asOfTime=25:00:00")),
            Err(ApiError::BadTime)
        ));
    }

    #[test]
    fn the_timestamp_is_the_israel_local_time_in_utc() {
        let t = DEFAULT_AS_OF_TIME;
        // Summer time (UTC+3) and winter time (UTC+2).
        assert_eq!(
            utc_of_israel_time(date(2026, 7, 1), t).to_rfc3339(),
            "2026-07-01T18:00:00+00:00"
        );
        assert_eq!(
            utc_of_israel_time(date(2026, 11, 18), t).to_rfc3339(),
            "2026-11-18T19:00:00+00:00"
        );
    }

    #[test]
    fn balance_bodies_always_carry_two_decimals() {
        let s = Scenario::new(1, 10, ProfileMix::default());
        let t = DEFAULT_AS_OF_TIME;
        let d = date(2026, 10, 5);
        let body = balance_body(&s, 42, d, t, rust_decimal::Decimal::new(15_000, 0), "NIS");
        assert!(body.contains(r#""amount":15000.00,"#), "{body}");
        let body = balance_body(&s, 42, d, t, rust_decimal::Decimal::new(-5, 1), "NIS");
        assert!(body.contains(r#""amount":-0.50,"#), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["accountId"], "ACC-00000-00042");
        assert_eq!(v["customerId"], "C0000000042");
    }

    #[test]
    fn malformed_bodies_are_not_valid_balance_responses() {
        let s = Scenario::new(1, 10, ProfileMix::default());
        let mut kinds = std::collections::HashSet::new();
        for i in 0..60 {
            let body = malformed_body(&s, i, date(2026, 10, 5), DEFAULT_AS_OF_TIME);
            let kind = match serde_json::from_str::<serde_json::Value>(&body) {
                Err(_) => "truncated",
                Ok(v) if v["balance"]["amount"].is_string() => "string amount",
                Ok(v) if v["balance"]["amount"].is_null() => "null amount",
                Ok(v) => panic!("a well-formed amount in {v}"),
            };
            kinds.insert(kind);
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
    }
}
