//! Core-banking balance client (`docs/requirements.md#bank-api`).
//!
//! `GET {base}/api/v1/accounts/{accountId}/balance?asOfDate=YYYY-MM-DD`, authenticated by
//! configuration ([`BankAuth`]): an API key (`X-API-Key`), a Bearer token, or mutual TLS (a client
//! certificate; seed 002 §2.3). Over `https://` the client speaks TLS 1.3 only and verifies the
//! bank's certificate against `PCN_BANK_CA` when given, else the platform's trust store. Each
//! request has a 30 s timeout; 5xx answers, timeouts and connection errors are retried with
//! exponential backoff (3 attempts by default); 404 means the bank does not know the account; 401
//! (or a client certificate the bank refuses in the handshake) means our credentials are wrong
//! and stops the sweep; a server certificate we do not trust is retried like an unreachable bank,
//! with the reason said; an answer that is not NIS, not a number with at most two decimals, or not
//! about the account and date asked is a data-quality failure.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use pcn_workflows::domain::{AccountId, BusinessDate, Nis};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use rustls_platform_verifier::BuilderVerifierExt as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::tls::{self, TlsFailure};

/// A secret that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the bank client proves who it is (`PCN_BANK_AUTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankAuth {
    /// `X-API-Key: <key>` on every request (`api-key`, the default).
    ApiKey(Secret),
    /// `Authorization: Bearer <token>` on every request (`bearer`).
    Bearer(Secret),
    /// A client certificate presented in the TLS handshake, no header (`mtls`; https only).
    MutualTls(ClientIdentity),
}

impl BankAuth {
    /// The name `PCN_BANK_AUTH` gives this method.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ApiKey(_) => "api-key",
            Self::Bearer(_) => "bearer",
            Self::MutualTls(_) => "mtls",
        }
    }
}

/// A client certificate chain and its private key, PEM (mutual TLS). The key never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first (`PCN_BANK_CLIENT_CERT`).
    pub cert_pem: Vec<u8>,
    /// The private key of the leaf (`PCN_BANK_CLIENT_KEY`).
    pub key_pem: Secret,
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientIdentity(certificate chain, key ***)")
    }
}

/// How to reach the bank.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// Base URL, e.g. `https://core-banking.internal`.
    pub base_url: String,
    /// How we authenticate.
    pub auth: BankAuth,
    /// PEM CA bundle the bank's server certificate must chain to (`PCN_BANK_CA`): with it, only
    /// these CAs are trusted; without it, the platform's trust store.
    pub server_ca: Option<Vec<u8>>,
    /// Per-request timeout (docs/requirements.md#bank-api: 30 s).
    pub timeout: Duration,
    /// Attempts per account before the sweep gives the account back to Temporal's retry.
    pub attempts: u32,
    /// First backoff; doubles per attempt (docs/requirements.md#retry-policies: 2 s, 4 s, ...).
    pub backoff: Duration,
    /// Connections kept open to the bank (at least the sweep's concurrency).
    pub max_connections: usize,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8081".to_owned(),
            auth: BankAuth::ApiKey(Secret::new("dev-bank-key")),
            server_ca: None,
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_secs(2),
            max_connections: 64,
        }
    }
}

/// Which part of the bank's TLS settings is wrong ([`BankTlsError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BankTlsPart {
    /// The client certificate chain (`PCN_BANK_CLIENT_CERT`).
    ClientCert,
    /// The client private key (`PCN_BANK_CLIENT_KEY`), or a key that does not match the chain.
    ClientKey,
    /// The CA bundle (`PCN_BANK_CA`).
    Ca,
}

/// A TLS setting of the bank client that cannot be used, and why (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct BankTlsError {
    /// Which setting.
    pub part: BankTlsPart,
    /// What is wrong with it.
    pub detail: String,
}

impl BankTlsError {
    fn new(part: BankTlsPart, detail: impl Into<String>) -> Self {
        Self {
            part,
            detail: detail.into(),
        }
    }
}

impl BankConfig {
    /// The rustls configuration of the bank connection: TLS 1.3 only; the bank's certificate
    /// verified against [`server_ca`](Self::server_ca) or the platform's trust store; our client
    /// certificate with [`BankAuth::MutualTls`]. Checks what can be checked before connecting:
    /// PEM that parses, a key that matches the certificate, CA certificates that can be roots.
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, BankTlsError> {
        let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| BankTlsError::new(BankTlsPart::Ca, format!("TLS 1.3: {e}")))?;
        let builder = match &self.server_ca {
            Some(pem) => builder.with_root_certificates(
                tls::root_store(pem).map_err(|e| BankTlsError::new(BankTlsPart::Ca, e))?,
            ),
            None => builder.with_platform_verifier().map_err(|e| {
                BankTlsError::new(
                    BankTlsPart::Ca,
                    format!(
                        "is not set and the platform's trust store cannot be used ({e}): give \
                         the bank's CA"
                    ),
                )
            })?,
        };
        let mut config = match &self.auth {
            BankAuth::MutualTls(identity) => {
                let chain = tls::parse_certs(&identity.cert_pem)
                    .map_err(|e| BankTlsError::new(BankTlsPart::ClientCert, e))?;
                let key = tls::parse_key(identity.key_pem.expose().as_bytes())
                    .map_err(|e| BankTlsError::new(BankTlsPart::ClientKey, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| match e {
                        rustls::Error::InconsistentKeys(_) => BankTlsError::new(
                            BankTlsPart::ClientKey,
                            "does not match the client certificate (the first certificate of \
                             PCN_BANK_CLIENT_CERT)",
                        ),
                        other => BankTlsError::new(
                            BankTlsPart::ClientKey,
                            format!("cannot be used with the client certificate ({other})"),
                        ),
                    })?
            }
            BankAuth::ApiKey(_) | BankAuth::Bearer(_) => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// What a server certificate of an unknown issuer was checked against, for the error.
    fn trusted(&self) -> &'static str {
        if self.server_ca.is_some() {
            "a CA not in PCN_BANK_CA"
        } else {
            "a CA not in the platform's trust store: give a private CA in PCN_BANK_CA"
        }
    }
}

/// A usable answer of the bank about one account and date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankAnswer {
    /// A balance in NIS.
    Balance {
        /// The amount.
        amount: Nis,
        /// The bank's reference of the answer.
        reference_id: Option<String>,
    },
    /// 404: the bank does not know the account.
    NotFound,
    /// A data-quality failure: the answer cannot be used.
    Invalid {
        /// What was wrong (no customer data in it).
        detail: String,
        /// The currency, when one was given.
        currency: Option<String>,
        /// The amount, when one could be read.
        amount: Option<Decimal>,
        /// The bank's reference.
        reference_id: Option<String>,
    },
}

/// The bank could not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// 401/403, or our client certificate refused in the TLS handshake: our credentials are
    /// wrong; retrying cannot help. The text says which (`HTTP 401 from the balance API`).
    #[error("{0}")]
    Unauthorized(String),
    /// 5xx, 400, timeouts or connection errors, still failing after every attempt.
    #[error("{0}")]
    Unavailable(String),
}

/// The balance client. Cheap to clone (one connection pool).
#[derive(Debug, Clone)]
pub struct BankClient {
    http: reqwest::Client,
    config: BankConfig,
    /// `pcn_bank_request_duration_seconds`, when the client reports to a registry.
    requests: Option<prometheus::HistogramVec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BalanceBody<'a> {
    account_id: Option<&'a str>,
    #[serde(borrow)]
    balance: BalanceFields<'a>,
    reference_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BalanceFields<'a> {
    /// Kept raw: a JSON number parsed through f64 would not be exact.
    #[serde(borrow)]
    amount: &'a RawValue,
    currency: Option<String>,
    as_of_date: Option<&'a str>,
}

impl BankClient {
    /// Builds the client (no request is made). Mutual TLS needs an `https://` URL.
    pub fn new(config: BankConfig) -> anyhow::Result<Self> {
        let https = config.base_url.trim().starts_with("https://");
        anyhow::ensure!(
            https || !matches!(config.auth, BankAuth::MutualTls(_)),
            "bank_url: mutual TLS needs an https:// URL"
        );
        let tls = config.tls_config()?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            // An https bank never sends us (and our credentials) on over plain HTTP.
            .https_only(https)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.max_connections)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            config,
            requests: None,
        })
    }

    /// The same client, timing each request in `requests` (by outcome).
    pub fn observed_by(mut self, requests: prometheus::HistogramVec) -> Self {
        self.requests = Some(requests);
        self
    }

    /// The same client (connection pool and metrics) with another number of attempts.
    pub fn with_attempts(&self, attempts: u32) -> Self {
        let mut client = self.clone();
        client.config.attempts = attempts;
        client
    }

    /// The configuration in use.
    pub fn config(&self) -> &BankConfig {
        &self.config
    }

    /// The balance of `account` at the end of `date`, with retries (see the module docs).
    pub async fn balance(
        &self,
        account: &AccountId,
        date: BusinessDate,
    ) -> Result<BankAnswer, BankError> {
        let attempts = self.config.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.balance_once(account, date).await {
                Ok(answer) => return Ok(answer),
                Err(BankError::Unauthorized(why)) => return Err(BankError::Unauthorized(why)),
                Err(BankError::Unavailable(why)) => last = why,
            }
            if attempt < attempts {
                let backoff = self
                    .config
                    .backoff
                    .saturating_mul(1 << (attempt - 1).min(10));
                tokio::time::sleep(backoff).await;
            }
        }
        Err(BankError::Unavailable(format!(
            "{last} (after {attempts} attempts)"
        )))
    }

    async fn balance_once(
        &self,
        account: &AccountId,
        date: BusinessDate,
    ) -> Result<BankAnswer, BankError> {
        let started = std::time::Instant::now();
        let result = self.request(account, date).await;
        if let Some(requests) = &self.requests {
            let outcome = match &result {
                Ok(BankAnswer::NotFound) => "not_found",
                Ok(_) => "ok",
                Err(BankError::Unauthorized(_)) => "unauthorized",
                Err(BankError::Unavailable(_)) => "unavailable",
            };
            requests
                .with_label_values(&[outcome])
                .observe(started.elapsed().as_secs_f64());
        }
        result
    }

    async fn request(
        &self,
        account: &AccountId,
        date: BusinessDate,
    ) -> Result<BankAnswer, BankError> {
        let url = format!(
            "{}/api/v1/accounts/{}/balance",
            self.config.base_url.trim_end_matches('/'),
            account.as_str()
        );
        let request = self.http.get(url).query(&[("asOfDate", date.to_string())]);
        let request = match &self.config.auth {
            BankAuth::ApiKey(key) => request.header("X-API-Key", key.expose()),
            BankAuth::Bearer(token) => request.bearer_auth(token.expose()),
            BankAuth::MutualTls(_) => request,
        };
        let response = request.send().await.map_err(|err| self.transport(&err))?;
        let status = response.status();
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(BankAnswer::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(BankError::Unauthorized(format!(
                    "HTTP {} from the balance API",
                    status.as_u16()
                )));
            }
            other => return Err(BankError::Unavailable(format!("HTTP {}", other.as_u16()))),
        }
        let body = response.bytes().await.map_err(|err| self.transport(&err))?;
        Ok(interpret(&body, account, date))
    }

    /// The error of a request that got no answer: a refused client certificate is refused
    /// credentials; a TLS failure says what failed; otherwise only the kind (reqwest's own message
    /// carries the URL).
    fn transport(&self, err: &reqwest::Error) -> BankError {
        match tls::failure(err, "the bank", self.config.trusted()) {
            Some(TlsFailure::ClientCertificateRefused(why)) => BankError::Unauthorized(why),
            Some(TlsFailure::Server(why)) => BankError::Unavailable(why),
            None => BankError::Unavailable(describe_transport(err)),
        }
    }
}

fn describe_transport(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timeout".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "transport error".to_owned()
    }
}

/// Reads a 200 body; anything unusable is a data-quality outcome, never a panic or a retry.
pub fn interpret(body: &[u8], account: &AccountId, date: BusinessDate) -> BankAnswer {
    let invalid = |detail: &str| BankAnswer::Invalid {
        detail: detail.to_owned(),
        currency: None,
        amount: None,
        reference_id: None,
    };
    let Ok(parsed) = serde_json::from_slice::<BalanceBody<'_>>(body) else {
        return invalid("malformed body");
    };
    if parsed.account_id.is_some_and(|id| id != account.as_str()) {
        return invalid("answer is about another account");
    }
    if parsed
        .balance
        .as_of_date
        .is_some_and(|d| d != date.to_string())
    {
        return invalid("answer is about another date");
    }
    let amount = Decimal::from_str(parsed.balance.amount.get()).ok();
    let currency = parsed.balance.currency;
    let reference_id = parsed.reference_id;
    let Some(amount) = amount else {
        return BankAnswer::Invalid {
            detail: "amount is not a number".to_owned(),
            currency,
            amount: None,
            reference_id,
        };
    };
    if currency.as_deref() != Some("NIS") {
        return BankAnswer::Invalid {
            detail: format!("currency {}", currency.as_deref().unwrap_or("missing")),
            currency,
            amount: Some(amount),
            reference_id,
        };
    }
    match Nis::from_decimal(amount) {
        Ok(amount) => BankAnswer::Balance {
            amount,
            reference_id,
        },
        Err(_) => BankAnswer::Invalid {
            detail: "amount has more than two decimals or is out of range".to_owned(),
            currency,
            amount: None,
            reference_id,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc() -> AccountId {
        AccountId::parse("ACC-00000-00001").unwrap()
    }
    fn day() -> BusinessDate {
        BusinessDate::parse("2026-10-05").unwrap()
    }
    fn body(amount: &str, currency: &str) -> Vec<u8> {
        format!(
            r#"{{"accountId":"ACC-00000-00001","customerId":"1","balance":{{"amount":{amount},"currency":"{currency}","asOfDate":"2026-10-05","asOfTime":"21:00:00"}},"accountStatus":"ACTIVE","timestamp":"2026-10-05T18:00:00Z","referenceId":"REF-1"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn an_exact_amount_is_read_without_floating_point() {
        let answer = interpret(&body("14999.99", "NIS"), &acc(), day());
        assert_eq!(
            answer,
            BankAnswer::Balance {
                amount: Nis::parse("14999.99").unwrap(),
                reference_id: Some("REF-1".to_owned())
            }
        );
    }

    #[test]
    fn a_foreign_currency_is_a_data_quality_failure() {
        assert!(matches!(
            interpret(&body("20000.00", "USD"), &acc(), day()),
            BankAnswer::Invalid { ref detail, .. } if detail == "currency USD"
        ));
    }

    #[test]
    fn a_string_amount_or_a_truncated_body_is_invalid() {
        assert!(matches!(
            interpret(&body("\"oops\"", "NIS"), &acc(), day()),
            BankAnswer::Invalid { .. }
        ));
        assert!(matches!(
            interpret(b"{\"accountId\":", &acc(), day()),
            BankAnswer::Invalid { .. }
        ));
    }

    #[test]
    fn three_decimals_are_refused() {
        assert!(matches!(
            interpret(&body("15000.001", "NIS"), &acc(), day()),
            BankAnswer::Invalid { .. }
        ));
    }

    #[test]
    fn an_answer_about_another_date_is_refused() {
        let other = BusinessDate::parse("2026-10-06").unwrap();
        assert!(matches!(
            interpret(&body("20000.00", "NIS"), &acc(), other),
            BankAnswer::Invalid { .. }
        ));
    }

    #[test]
    fn the_api_key_never_prints() {
        let config = BankConfig::default();
        assert!(!format!("{config:?}").contains("dev-bank-key"));
        let config = BankConfig {
            auth: BankAuth::MutualTls(ClientIdentity {
                cert_pem: b"CERT".to_vec(),
                key_pem: Secret::new("-----BEGIN PRIVATE KEY-----"),
            }),
            ..BankConfig::default()
        };
        assert!(!format!("{config:?}").contains("PRIVATE KEY"));
    }

    #[test]
    fn mutual_tls_over_plain_http_is_refused() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = BankConfig {
            auth: BankAuth::MutualTls(ClientIdentity {
                cert_pem: Vec::new(),
                key_pem: Secret::new(""),
            }),
            ..BankConfig::default()
        };
        let err = BankClient::new(config).unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
    }

    #[test]
    fn unusable_tls_settings_name_their_part() {
        let config = |cert: &str, key: &str, ca: Option<&str>| BankConfig {
            base_url: "https://bank.example".to_owned(),
            auth: BankAuth::MutualTls(ClientIdentity {
                cert_pem: cert.as_bytes().to_vec(),
                key_pem: Secret::new(key),
            }),
            server_ca: ca.map(|ca| ca.as_bytes().to_vec()),
            ..BankConfig::default()
        };
        let err = |c: BankConfig| c.tls_config().unwrap_err();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pcn".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert_eq!(
            err(config("x", "y", Some("not a CA"))).part,
            BankTlsPart::Ca
        );
        assert_eq!(
            err(config("x", "y", Some(&cert))).part,
            BankTlsPart::ClientCert
        );
        assert_eq!(
            err(config(&cert, "y", Some(&cert))).part,
            BankTlsPart::ClientKey
        );
        let mismatch = err(config(&cert, &other_key, Some(&cert)));
        assert_eq!(mismatch.part, BankTlsPart::ClientKey);
        assert!(mismatch.detail.contains("does not match"), "{mismatch}");
        assert!(
            config(&cert, &key.serialize_pem(), Some(&cert))
                .tls_config()
                .is_ok()
        );
    }
}
