//! Core-banking balance client (`docs/requirements.md#bank-api`).
//!
//! `GET {base}/api/v1/accounts/{accountId}/balance?asOfDate=YYYY-MM-DD` with `X-API-Key`. Each
//! request has a 30 s timeout; 5xx answers, timeouts and connection errors are retried with
//! exponential backoff (3 attempts by default); 404 means the bank does not know the account; 401
//! means our credentials are wrong and stops the sweep; an answer that is not NIS, not a number
//! with at most two decimals, or not about the account and date asked is a data-quality failure.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use pcn_workflows::domain::{AccountId, BusinessDate, Nis};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

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

/// How to reach the bank.
#[derive(Debug, Clone)]
pub struct BankConfig {
    /// Base URL, e.g. `https://core-banking.internal`.
    pub base_url: String,
    /// Value of the `X-API-Key` header.
    pub api_key: Secret,
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
            api_key: Secret::new("dev-bank-key"),
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_secs(2),
            max_connections: 64,
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
    /// 401: our credentials are wrong; retrying cannot help.
    #[error("unauthorized (HTTP 401)")]
    Unauthorized,
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
    /// Builds the client (no request is made).
    pub fn new(config: BankConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
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
                Err(BankError::Unauthorized) => return Err(BankError::Unauthorized),
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
                Err(BankError::Unauthorized) => "unauthorized",
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
        let response = self
            .http
            .get(url)
            .query(&[("asOfDate", date.to_string())])
            .header("X-API-Key", self.config.api_key.expose())
            .send()
            .await
            .map_err(|err| BankError::Unavailable(describe_transport(&err)))?;
        let status = response.status();
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(BankAnswer::NotFound),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(BankError::Unauthorized);
            }
            other => return Err(BankError::Unavailable(format!("HTTP {}", other.as_u16()))),
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| BankError::Unavailable(describe_transport(&err)))?;
        Ok(interpret(&body, account, date))
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
    }
}
