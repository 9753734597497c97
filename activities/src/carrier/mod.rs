//! SMS carrier adapters (wire contract: `docs/carrier-wire.md`).
//!
//! Two carriers speak to the outside world: a generic REST carrier
//! (`docs/requirements.md#carrier-api`, JSON batches with a bearer key) and a Twilio-compatible
//! Messages API (one form POST per message, HTTP Basic).
//! Both are translated into the carrier-neutral types of this module, so the activities and the
//! SMS workflow never see a carrier's own spelling of a status or an error.
//!
//! - [`SmsCarrier`]: submit a batch, fetch the status of one message.
//! - [`AnyCarrier`]: the carrier chosen at start-up ([`CarrierConfig::build`]).
//! - [`signature`]: webhook signature checks (generic HMAC-SHA256 hex, Twilio HMAC-SHA1 base64).
//! - [`events`]: parsing of delivery callbacks and inbound replies into neutral events.
//!
//! Repeats: every submission carries our [`MessageRef`] (generic `messageId`, Twilio callback
//! `ref`), but **no carrier promises to deduplicate it** — a second submission of the same
//! reference is a second SMS. Whether a failed submission may be repeated is therefore decided by
//! the caller from [`CarrierError::certainly_not_taken`], and an attempt whose outcome is unknown
//! is resolved from evidence ([`SmsCarrier::status`] to confirm a carrier id, [`SmsCarrier::find_sent`]
//! where the API can list messages), not by sending it again.
//!
//! No full phone number is ever logged: [`Phone`]'s `Debug` is masked and nothing here prints
//! request bodies.
//!
//! Over 600 lines: about 440 of the carrier seam (the trait, the HTTP client, the error mapping
//! both adapters share) and 230 of unit tests.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pcn_workflows::delivery::{DeliveryStatus, FailureCategory, MessageRef};
use pcn_workflows::domain::{DomainError, Phone};
use serde::{Deserialize, Serialize};

pub mod events;
pub mod generic;
pub mod redact;
pub mod signature;
pub mod twilio;

pub use generic::{GenericCarrier, GenericConfig};
pub use twilio::{TwilioCarrier, TwilioConfig};

/// One SMS to submit: our reference (the idempotency key), the recipient and the rendered text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSms {
    /// Our name for this submission attempt, sent as the carrier's idempotency key.
    pub reference: MessageRef,
    /// The recipient (E.164).
    pub to: Phone,
    /// The rendered message text.
    pub body: String,
}

/// What the carrier said about one submitted message (one per message, in input order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// The carrier took the message; delivery is reported later (callback or status fetch).
    Accepted {
        /// The carrier's id of the message (generic `trackingId`, Twilio `sid`).
        carrier_message_id: String,
    },
    /// The carrier refused this message.
    Rejected {
        /// The carrier's error code (e.g. `"21211"`).
        code: String,
        /// Classification of the code ([`FailureCategory::from_code`]).
        category: FailureCategory,
        /// The carrier's explanation (no customer data added by us).
        message: String,
    },
}

/// The carrier's answer to a status fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    /// The carrier's id of the message.
    pub carrier_message_id: String,
    /// The neutral status.
    pub status: DeliveryStatus,
    /// The carrier's error code, if any (never `"0"` or empty).
    pub error_code: Option<String>,
    /// When the status was reached, when the carrier says.
    pub occurred_at: Option<DateTime<Utc>>,
    /// Our reference as the carrier keeps it (generic `messageId`; Twilio does not keep it).
    pub reference: Option<String>,
    /// The recipient as the carrier keeps it (Twilio `to`).
    pub to: Option<String>,
    /// The text as the carrier keeps it (Twilio `body`).
    pub body: Option<String>,
}

impl StatusReport {
    /// Whether the carrier's record of this message shows it is `sms`: the same reference where
    /// the carrier keeps one (generic), else the same recipient and text (Twilio). Used before an
    /// in-doubt attempt adopts a carrier id that a callback or a signal named.
    pub fn describes(&self, sms: &OutboundSms) -> bool {
        match &self.reference {
            Some(reference) => *reference == sms.reference.to_string(),
            None => {
                self.to.as_deref() == Some(sms.to.as_e164())
                    && self.body.as_deref() == Some(sms.body.as_str())
            }
        }
    }
}

/// Why a call to the carrier gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarrierError {
    /// 5xx, 408, connection failures, timeouts: try again later.
    #[error("carrier unavailable ({}): {detail}", describe_status(*.status))]
    Unavailable {
        /// The HTTP status, when an answer came at all.
        status: Option<u16>,
        /// What went wrong (no customer data).
        detail: String,
    },
    /// 429: slow down; `retry_after` is the carrier's `Retry-After`, when given.
    #[error("rate limited by the carrier (retry after {retry_after:?})")]
    RateLimited {
        /// How long the carrier asked us to wait.
        retry_after: Option<Duration>,
    },
    /// 401/403: our credentials are wrong. A configuration problem: waiting does not help.
    #[error("carrier refused our credentials")]
    Unauthorized,
    /// The carrier's answer could not be understood, or it refused the request as malformed.
    #[error("carrier protocol error: {0}")]
    Protocol(String),
    /// The carrier does not know the message id asked about (status fetch).
    #[error("carrier does not know the message")]
    NotFound,
    /// The carrier refused the request as a whole (a 4xx other than 401/403/404/408/429): it was
    /// read and not acted on.
    #[error("carrier refused the request: {0}")]
    Refused(String),
}

/// `CarrierError::Unavailable::detail` of a request whose connection was never established.
pub(crate) const CONNECT_FAILED: &str = "connection failed";

fn describe_status(status: Option<u16>) -> String {
    match status {
        Some(code) => format!("HTTP {code}"),
        None => "no answer".to_owned(),
    }
}

impl CarrierError {
    /// Whether the same call may succeed later without any change on our side
    /// ([`Unavailable`](Self::Unavailable) and [`RateLimited`](Self::RateLimited)).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::RateLimited { .. })
    }

    /// Whether a failed *submission* certainly left no message with the carrier, so that sending
    /// the same messages again cannot double them: the connection was never established, or the
    /// carrier answered the request as a whole with a refusal (401/403, 429, 503, another 4xx).
    /// Everything else — a timeout, a reset or cut-off answer, 500/502/504, an answer we cannot
    /// read — leaves the submission **in doubt**: the carrier may have the messages.
    pub fn certainly_not_taken(&self) -> bool {
        match self {
            Self::Unavailable { status, detail } => {
                *status == Some(503) || (status.is_none() && detail.starts_with(CONNECT_FAILED))
            }
            Self::RateLimited { .. } | Self::Unauthorized | Self::Refused(_) => true,
            Self::Protocol(_) | Self::NotFound => false,
        }
    }

    /// The wait the carrier asked for ([`RateLimited`](Self::RateLimited) with `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// The error of a request that got no answer (timeout, connection refused, reset, a TLS
    /// handshake that failed: `connection failed: TLS: the carrier's certificate …`).
    pub(crate) fn transport(err: &reqwest::Error) -> Self {
        // Only the kind (and what TLS said): reqwest's own message carries the URL.
        let detail = if err.is_timeout() {
            "timeout".to_owned()
        } else if err.is_connect() {
            match crate::tls::failure(err, "the carrier", TRUSTED) {
                Some(tls) => format!("{CONNECT_FAILED}: {}", tls.text()),
                None => CONNECT_FAILED.to_owned(),
            }
        } else if err.is_body() || err.is_decode() {
            "answer cut off".to_owned()
        } else {
            "transport error".to_owned()
        };
        Self::Unavailable {
            status: err.status().map(|s| s.as_u16()),
            detail,
        }
    }
}

/// The error for an HTTP status that means the same thing on every carrier endpoint: 401/403,
/// 408, 429 and 5xx. `None` for the statuses each endpoint interprets itself (2xx, 400, 404, ...).
pub(crate) fn classify_http(status: u16, retry_after: Option<&str>) -> Option<CarrierError> {
    match status {
        401 | 403 => Some(CarrierError::Unauthorized),
        429 => Some(CarrierError::RateLimited {
            retry_after: parse_retry_after(retry_after),
        }),
        408 | 500..=599 => Some(CarrierError::Unavailable {
            status: Some(status),
            detail: format!("HTTP {status}"),
        }),
        _ => None,
    }
}

/// `Retry-After` in delta-seconds (the form both carriers use), at most [`MAX_RETRY_AFTER_SECS`];
/// an HTTP date or garbage is ignored (the caller waits its own default).
pub(crate) fn parse_retry_after(header: Option<&str>) -> Option<Duration> {
    header?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|secs| Duration::from_secs(secs.min(MAX_RETRY_AFTER_SECS)))
}

/// The longest `Retry-After` we honour: a carrier asking for more (or for nonsense such as
/// `99999999999`) is asked again after an hour, rather than holding the month's SMS for years.
pub const MAX_RETRY_AFTER_SECS: u64 = 3_600;

/// The `Retry-After` header of a response, as text.
/// Reads the answer to a status fetch: the HTTP-level refusals (auth, rate limit, 5xx) and 404
/// become errors; otherwise the status code and the body, for the carrier to interpret.
pub(crate) async fn status_answer(
    response: reqwest::Response,
) -> Result<(u16, Vec<u8>), CarrierError> {
    let status = response.status().as_u16();
    if let Some(err) = classify_http(status, retry_after_header(&response).as_deref()) {
        return Err(err);
    }
    if status == 404 {
        return Err(CarrierError::NotFound);
    }
    let body = response
        .bytes()
        .await
        .map_err(|err| CarrierError::transport(&err))?;
    Ok((status, body.to_vec()))
}

pub(crate) fn retry_after_header(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// At most 200 characters of a carrier's error text, for error messages and logs.
pub(crate) fn bounded(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX_CHARS).collect();
        format!("{head}...")
    }
}

/// A carrier error code as text: a JSON string or integer; `None` for null, empty or `"0"`
/// (the generic carrier's "no error").
pub(crate) fn code_text(value: &serde_json::Value) -> Option<String> {
    let text = match value {
        serde_json::Value::String(s) => s.trim().to_owned(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty() && text != "0").then_some(text)
}

/// `base` with `segments` appended as percent-encoded path segments.
pub(crate) fn endpoint(base: &url::Url, segments: &[&str]) -> Result<url::Url, CarrierError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| CarrierError::Protocol("carrier base URL cannot have a path".to_owned()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Which carrier API a message went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CarrierKind {
    /// The generic REST carrier (docs/requirements.md#carrier-api), the default.
    #[default]
    Generic,
    /// The Twilio-compatible Messages API.
    Twilio,
}

impl CarrierKind {
    /// The stable spelling (configuration, Postgres, metrics labels): `generic` or `twilio`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Twilio => "twilio",
        }
    }

    /// Parses the stable spelling, ignoring ASCII case and surrounding whitespace (field `carrier`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let t = s.trim();
        [Self::Generic, Self::Twilio]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| DomainError::new("carrier", "expected generic or twilio"))
    }
}

impl fmt::Display for CarrierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CarrierKind {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An SMS carrier API.
pub trait SmsCarrier: Send + Sync {
    /// Which carrier this is.
    fn name(&self) -> CarrierKind;

    /// Submits `batch`; one outcome per message, in input order. An `Err` means the outcome of
    /// the batch is unknown in part: submit it again (the references make that idempotent).
    fn submit(
        &self,
        batch: &[OutboundSms],
    ) -> impl Future<Output = Result<Vec<SubmitOutcome>, CarrierError>> + Send;

    /// The current status of one message, by the carrier's id of it.
    fn status(
        &self,
        carrier_message_id: &str,
    ) -> impl Future<Output = Result<StatusReport, CarrierError>> + Send;

    /// The carrier ids of messages the carrier holds that are `sms` (same recipient and text),
    /// accepted since `since`: the lookup that finds a message whose submission answer was lost.
    /// `None` when the carrier's API offers no such lookup (the generic API can only fetch by
    /// its own tracking id).
    fn find_sent(
        &self,
        sms: &OutboundSms,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<Vec<String>>, CarrierError>> + Send;
}

/// The carrier configured for this deployment.
#[derive(Debug, Clone)]
pub enum AnyCarrier {
    /// The generic REST carrier.
    Generic(GenericCarrier),
    /// The Twilio-compatible carrier.
    Twilio(TwilioCarrier),
}

impl SmsCarrier for AnyCarrier {
    fn name(&self) -> CarrierKind {
        match self {
            Self::Generic(c) => c.name(),
            Self::Twilio(c) => c.name(),
        }
    }

    async fn submit(&self, batch: &[OutboundSms]) -> Result<Vec<SubmitOutcome>, CarrierError> {
        match self {
            Self::Generic(c) => c.submit(batch).await,
            Self::Twilio(c) => c.submit(batch).await,
        }
    }

    async fn status(&self, carrier_message_id: &str) -> Result<StatusReport, CarrierError> {
        match self {
            Self::Generic(c) => c.status(carrier_message_id).await,
            Self::Twilio(c) => c.status(carrier_message_id).await,
        }
    }

    async fn find_sent(
        &self,
        sms: &OutboundSms,
        since: DateTime<Utc>,
    ) -> Result<Option<Vec<String>>, CarrierError> {
        match self {
            Self::Generic(c) => c.find_sent(sms, since).await,
            Self::Twilio(c) => c.find_sent(sms, since).await,
        }
    }
}

/// Which carrier to use and how to reach each (the worker fills it from the environment).
#[derive(Debug, Clone, Default)]
pub struct CarrierConfig {
    /// The carrier messages are submitted through.
    pub kind: CarrierKind,
    /// The other adapter as secondary carrier (failover), if any.
    pub secondary: Option<CarrierKind>,
    /// Settings of the generic carrier.
    pub generic: GenericConfig,
    /// Settings of the Twilio-compatible carrier.
    pub twilio: TwilioConfig,
}

impl CarrierConfig {
    /// Builds the client of the configured carrier (no request is made). Like every reqwest
    /// client here, it needs a rustls crypto provider installed first (the worker does).
    pub fn build(&self) -> anyhow::Result<AnyCarrier> {
        self.build_kind(self.kind)
    }

    /// The client of the secondary carrier, when one is configured.
    pub fn build_secondary(&self) -> anyhow::Result<Option<AnyCarrier>> {
        self.secondary.map(|kind| self.build_kind(kind)).transpose()
    }

    fn build_kind(&self, kind: CarrierKind) -> anyhow::Result<AnyCarrier> {
        Ok(match kind {
            CarrierKind::Generic => AnyCarrier::Generic(GenericCarrier::new(self.generic.clone())?),
            CarrierKind::Twilio => AnyCarrier::Twilio(TwilioCarrier::new(self.twilio.clone())?),
        })
    }
}

/// Which CAs a carrier's certificate is checked against, for the error of an unknown issuer.
const TRUSTED: &str = "a CA not in the platform's trust store nor in PCN_CARRIER_CA";

/// The HTTP client both carriers use: per-request timeout, a shorter connect timeout.
///
/// Over `https://` the carrier's certificate is always verified (rustls, TLS 1.3 only): against
/// the platform's trust store, plus the certificates of `server_ca` (`PCN_CARRIER_CA`, PEM) for a
/// carrier behind a private CA. Nothing here or in the adapters turns verification off.
pub(crate) fn http_client(
    timeout: Duration,
    server_ca: Option<&[u8]>,
) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(32)
        .tcp_nodelay(true)
        .min_tls_version(reqwest::tls::Version::TLS_1_3);
    if let Some(pem) = server_ca {
        // Parsed by rustls first, for an error that says what is wrong with the file.
        crate::tls::parse_certs(pem).map_err(|e| anyhow::anyhow!("carrier_ca: {e}"))?;
        for cert in reqwest::Certificate::from_pem_bundle(pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A message to `+972501234567` with reference `sms/2026-10/C0000000042#<n>`.
    pub(crate) fn sms(n: u32) -> OutboundSms {
        OutboundSms {
            reference: MessageRef::parse(&format!("sms/2026-10/C0000000042#{n}")).unwrap(),
            to: Phone::parse("+972501234567").unwrap(),
            body: "שלום".to_owned(),
        }
    }

    #[test]
    fn kinds_round_trip() {
        for k in [CarrierKind::Generic, CarrierKind::Twilio] {
            assert_eq!(CarrierKind::parse(k.as_str()).unwrap(), k);
            assert_eq!(k.to_string().parse::<CarrierKind>().unwrap(), k);
        }
        assert_eq!(CarrierKind::parse(" Twilio ").unwrap(), CarrierKind::Twilio);
        assert_eq!(CarrierKind::parse("sns").unwrap_err().field, "carrier");
        assert_eq!(CarrierKind::default(), CarrierKind::Generic);
        assert_eq!(
            serde_json::to_string(&CarrierKind::Twilio).unwrap(),
            "\"twilio\""
        );
    }

    #[test]
    fn http_statuses_are_classified() {
        assert_eq!(classify_http(401, None), Some(CarrierError::Unauthorized));
        assert_eq!(classify_http(403, None), Some(CarrierError::Unauthorized));
        assert_eq!(
            classify_http(429, Some("7")),
            Some(CarrierError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            })
        );
        assert_eq!(
            classify_http(429, None),
            Some(CarrierError::RateLimited { retry_after: None })
        );
        for s in [408, 500, 502, 503, 504] {
            let err = classify_http(s, None).unwrap();
            assert_eq!(
                err,
                CarrierError::Unavailable {
                    status: Some(s),
                    detail: format!("HTTP {s}")
                }
            );
            assert!(err.is_transient());
        }
        for s in [200, 201, 202, 400, 404, 409] {
            assert_eq!(classify_http(s, None), None, "{s}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_only() {
        assert_eq!(
            parse_retry_after(Some(" 30 ")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(Some("0")), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(Some("-1")), None);
        assert_eq!(
            parse_retry_after(Some("99999999999")),
            Some(Duration::from_secs(MAX_RETRY_AFTER_SECS))
        );
        assert_eq!(parse_retry_after(Some("999999999999999999999999")), None);
        assert_eq!(parse_retry_after(Some("1.5")), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn only_waiting_errors_are_transient() {
        assert!(
            CarrierError::Unavailable {
                status: None,
                detail: "timeout".into()
            }
            .is_transient()
        );
        let limited = CarrierError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(limited.is_transient());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(2)));
        assert!(!CarrierError::Unauthorized.is_transient());
        assert!(!CarrierError::Protocol("x".into()).is_transient());
        assert!(!CarrierError::NotFound.is_transient());
        assert!(!CarrierError::Refused("x".into()).is_transient());
        assert_eq!(CarrierError::NotFound.retry_after(), None);
        assert_eq!(
            CarrierError::Unavailable {
                status: Some(503),
                detail: "HTTP 503".into()
            }
            .to_string(),
            "carrier unavailable (HTTP 503): HTTP 503"
        );
        assert_eq!(
            CarrierError::Unavailable {
                status: None,
                detail: "timeout".into()
            }
            .to_string(),
            "carrier unavailable (no answer): timeout"
        );
    }

    #[test]
    fn only_refusals_and_failed_connections_certainly_left_nothing_with_the_carrier() {
        let unavailable = |status: Option<u16>, detail: &str| CarrierError::Unavailable {
            status,
            detail: detail.to_owned(),
        };
        for not_taken in [
            unavailable(None, CONNECT_FAILED),
            unavailable(Some(503), "HTTP 503"),
            CarrierError::RateLimited { retry_after: None },
            CarrierError::Unauthorized,
            CarrierError::Refused("HTTP 400".into()),
        ] {
            assert!(not_taken.certainly_not_taken(), "{not_taken:?}");
        }
        for in_doubt in [
            unavailable(None, "timeout"),
            unavailable(None, "answer cut off"),
            unavailable(None, "transport error"),
            unavailable(Some(500), "HTTP 500"),
            unavailable(Some(502), "HTTP 502"),
            unavailable(Some(504), "HTTP 504"),
            unavailable(Some(408), "HTTP 408"),
            CarrierError::Protocol("malformed batch answer".into()),
        ] {
            assert!(!in_doubt.certainly_not_taken(), "{in_doubt:?}");
        }
    }

    #[test]
    fn a_status_report_describes_a_message_by_reference_or_by_recipient_and_text() {
        let ours = sms(1);
        let nothing = StatusReport {
            carrier_message_id: "T1".to_owned(),
            status: DeliveryStatus::Sent,
            error_code: None,
            occurred_at: None,
            reference: None,
            to: None,
            body: None,
        };
        let generic = StatusReport {
            reference: Some(ours.reference.to_string()),
            ..nothing.clone()
        };
        assert!(generic.describes(&ours));
        assert!(!generic.describes(&sms(2)), "another attempt's reference");
        let twilio = StatusReport {
            to: Some(ours.to.as_e164().to_owned()),
            body: Some(ours.body.clone()),
            ..nothing.clone()
        };
        assert!(twilio.describes(&ours));
        let other_text = OutboundSms {
            body: "another text".to_owned(),
            ..ours.clone()
        };
        assert!(!twilio.describes(&other_text));
        assert!(!nothing.describes(&ours), "nothing known: not ours");
    }

    #[test]
    fn endpoints_encode_segments_and_keep_the_base_path() {
        let base = url::Url::parse("http://carrier.test/prefix/").unwrap();
        assert_eq!(
            endpoint(&base, &["api", "v1", "messages", "a/b#c", "status"])
                .unwrap()
                .as_str(),
            "http://carrier.test/prefix/api/v1/messages/a%2Fb%23c/status"
        );
        let bare = url::Url::parse("http://carrier.test").unwrap();
        assert_eq!(
            endpoint(&bare, &["x"]).unwrap().as_str(),
            "http://carrier.test/x"
        );
        let odd = url::Url::parse("mailto:x@y").unwrap();
        assert!(matches!(
            endpoint(&odd, &["x"]),
            Err(CarrierError::Protocol(_))
        ));
    }

    #[test]
    fn codes_are_text_and_zero_is_none() {
        use serde_json::json;
        assert_eq!(code_text(&json!("21211")), Some("21211".to_owned()));
        assert_eq!(code_text(&json!(30007)), Some("30007".to_owned()));
        assert_eq!(code_text(&json!(" 21614 ")), Some("21614".to_owned()));
        for none in [
            json!(null),
            json!(""),
            json!("0"),
            json!(0),
            json!(true),
            json!([]),
        ] {
            assert_eq!(code_text(&none), None, "{none}");
        }
    }

    #[test]
    fn bounded_cuts_long_text() {
        assert_eq!(bounded("short"), "short");
        let long = "é".repeat(300);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), 203);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn the_configuration_never_prints_secrets() {
        let config = CarrierConfig::default();
        let shown = format!("{config:?}");
        assert!(!shown.contains(config.generic.api_key.expose()), "{shown}");
        assert!(
            !shown.contains(config.twilio.auth_token.expose()),
            "{shown}"
        );
    }
}
