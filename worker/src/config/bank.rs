//! `BankArgs`: how to reach the core banking system, how we authenticate to it (API key,
//! Bearer, mutual TLS), and how hard to push it.

use super::*;

/// How to reach the core banking system, how we authenticate to it, and how hard to push it.
#[derive(Debug, Clone, Args)]
pub struct BankArgs {
    /// Base URL of the balance API. `http://` only in the development profile or with
    /// `PCN_BANK_PLAINTEXT=true`.
    #[arg(long, env = "PCN_BANK_URL", default_value = "http://127.0.0.1:8081")]
    pub bank_url: String,
    /// How we authenticate: `api-key` (`X-API-Key`), `bearer` (`Authorization: Bearer`) or
    /// `mtls` (a client certificate; https only).
    #[arg(long, env = "PCN_BANK_AUTH", default_value = "api-key")]
    pub bank_auth: String,
    /// API key sent as `X-API-Key` (`api-key`; development value `dev-bank-key`).
    #[arg(long, env = "PCN_BANK_API_KEY", hide_env_values = true)]
    pub bank_api_key: Option<String>,
    /// File holding the bank API key (instead of `PCN_BANK_API_KEY`).
    #[arg(long, env = "PCN_BANK_API_KEY_FILE")]
    pub bank_api_key_file: Option<PathBuf>,
    /// Token sent as `Authorization: Bearer` (`bearer`; no development value).
    #[arg(long, env = "PCN_BANK_BEARER_TOKEN", hide_env_values = true)]
    pub bank_bearer_token: Option<String>,
    /// File holding the bearer token (instead of `PCN_BANK_BEARER_TOKEN`).
    #[arg(long, env = "PCN_BANK_BEARER_TOKEN_FILE")]
    pub bank_bearer_token_file: Option<PathBuf>,
    /// PEM certificate chain (leaf first) we present to the bank (`mtls`).
    #[arg(long, env = "PCN_BANK_CLIENT_CERT")]
    pub bank_client_cert: Option<PathBuf>,
    /// PEM private key of that certificate (`mtls`).
    #[arg(long, env = "PCN_BANK_CLIENT_KEY")]
    pub bank_client_key: Option<PathBuf>,
    /// PEM CA bundle the bank's server certificate must chain to (any method over https); unset:
    /// the platform's trust store.
    #[arg(long, env = "PCN_BANK_CA")]
    pub bank_ca: Option<PathBuf>,
    /// Talk to the bank over plain `http://` in production anyway (e.g. through a local TLS
    /// proxy): an explicit choice, never a default.
    #[arg(long, env = "PCN_BANK_PLAINTEXT", default_value_t = false)]
    pub bank_plaintext: bool,
    /// Per-request timeout, seconds.
    #[arg(long, env = "PCN_BANK_TIMEOUT_SECS", default_value_t = 30)]
    pub bank_timeout_secs: u64,
    /// Attempts per account before the account is handed back to Temporal's retry.
    #[arg(long, env = "PCN_BANK_ATTEMPTS", default_value_t = 3)]
    pub bank_attempts: u32,
    /// First retry backoff, milliseconds (doubles per attempt).
    #[arg(long, env = "PCN_BANK_BACKOFF_MS", default_value_t = 2_000)]
    pub bank_backoff_ms: u64,
    /// Customers per page of the sweep.
    #[arg(long, env = "PCN_SWEEP_PAGE_SIZE", default_value_t = 1_000)]
    pub sweep_page_size: i64,
    /// Bank requests in flight at once.
    #[arg(long, env = "PCN_SWEEP_CONCURRENCY", default_value_t = 64)]
    pub sweep_concurrency: usize,
}

impl BankArgs {
    /// The validated bank client configuration and sweep settings. Certificate, key and CA files
    /// are read and checked here (PEM that parses, a key that matches its certificate), so a bad
    /// one stops the start-up with its setting named.
    pub fn parse(&self, profile: Profile) -> Result<(BankConfig, SweepSettings), DomainError> {
        let url = self.bank_url.trim();
        let https = url.starts_with("https://");
        if !(https || url.starts_with("http://")) {
            return Err(DomainError::new(
                "bank_url",
                "must start with http:// or https://",
            ));
        }
        let auth = match self.bank_auth.trim() {
            "api-key" => BankAuth::ApiKey(Secret::new(secret(
                "bank_api_key",
                "PCN_BANK_API_KEY",
                self.bank_api_key.as_deref(),
                self.bank_api_key_file.as_deref(),
                "dev-bank-key",
                profile,
            )?)),
            "bearer" => {
                if self.bank_bearer_token.is_none() && self.bank_bearer_token_file.is_none() {
                    return Err(DomainError::new(
                        "bank_bearer_token",
                        "is needed with PCN_BANK_AUTH=bearer: set PCN_BANK_BEARER_TOKEN or \
                         PCN_BANK_BEARER_TOKEN_FILE",
                    ));
                }
                // Set explicitly (checked above), so no development value is involved.
                BankAuth::Bearer(Secret::new(secret(
                    "bank_bearer_token",
                    "PCN_BANK_BEARER_TOKEN",
                    self.bank_bearer_token.as_deref(),
                    self.bank_bearer_token_file.as_deref(),
                    "",
                    Profile::Development,
                )?))
            }
            "mtls" => {
                if !https {
                    return Err(DomainError::new(
                        "bank_url",
                        "must be an https:// URL with PCN_BANK_AUTH=mtls (the client certificate \
                         is presented in the TLS handshake)",
                    ));
                }
                let needed = |field: &'static str, env: &str, what: &str| {
                    DomainError::new(
                        field,
                        format!("is needed with PCN_BANK_AUTH=mtls: set {env} to the {what}"),
                    )
                };
                let cert = self.bank_client_cert.as_deref().ok_or_else(|| {
                    needed(
                        "bank_client_cert",
                        "PCN_BANK_CLIENT_CERT",
                        "PEM certificate chain we present",
                    )
                })?;
                let key = self.bank_client_key.as_deref().ok_or_else(|| {
                    needed(
                        "bank_client_key",
                        "PCN_BANK_CLIENT_KEY",
                        "PEM private key of that certificate",
                    )
                })?;
                let key_pem = String::from_utf8(read_file("bank_client_key", key)?)
                    .map_err(|_| DomainError::new("bank_client_key", "is not a PEM text file"))?;
                BankAuth::MutualTls(ClientIdentity {
                    cert_pem: read_file("bank_client_cert", cert)?,
                    key_pem: Secret::new(key_pem),
                })
            }
            _ => {
                return Err(DomainError::new(
                    "bank_auth",
                    "expected api-key, bearer or mtls",
                ));
            }
        };
        if !matches!(auth, BankAuth::MutualTls(_)) {
            for (field, set) in [
                ("bank_client_cert", self.bank_client_cert.is_some()),
                ("bank_client_key", self.bank_client_key.is_some()),
            ] {
                if set {
                    return Err(DomainError::new(
                        field,
                        format!(
                            "is set but PCN_BANK_AUTH is {}: a client certificate is used only \
                             with PCN_BANK_AUTH=mtls",
                            auth.name()
                        ),
                    ));
                }
            }
        }
        if !https && self.bank_ca.is_some() {
            return Err(DomainError::new(
                "bank_ca",
                "is set but bank_url is http://: a CA is used only over https://",
            ));
        }
        if !https && profile == Profile::Production && !self.bank_plaintext {
            return Err(DomainError::new(
                "bank_url",
                "is http://: production talks to the bank over TLS (use an https:// URL, or \
                 choose plaintext explicitly with PCN_BANK_PLAINTEXT=true)",
            ));
        }
        let server_ca = self
            .bank_ca
            .as_deref()
            .map(|path| read_file("bank_ca", path))
            .transpose()?;
        in_range("bank_timeout_secs", self.bank_timeout_secs, 1..=300)?;
        in_range("bank_attempts", self.bank_attempts, 1..=10)?;
        in_range("sweep_page_size", self.sweep_page_size, 1..=100_000)?;
        in_range("sweep_concurrency", self.sweep_concurrency, 1..=1_024)?;
        let config = BankConfig {
            base_url: url.to_owned(),
            auth,
            server_ca,
            timeout: Duration::from_secs(self.bank_timeout_secs),
            attempts: self.bank_attempts,
            backoff: Duration::from_millis(self.bank_backoff_ms),
            max_connections: self.sweep_concurrency,
        };
        // Parse the PEM files now, so a bad one is named at start-up, not at the first request.
        config.tls_config().map_err(|err| {
            let (field, path) = match err.part {
                BankTlsPart::ClientCert => ("bank_client_cert", self.bank_client_cert.as_deref()),
                BankTlsPart::ClientKey => ("bank_client_key", self.bank_client_key.as_deref()),
                BankTlsPart::Ca => ("bank_ca", self.bank_ca.as_deref()),
            };
            match path {
                Some(path) => DomainError::new(field, format!("{} {}", path.display(), err.detail)),
                None => DomainError::new(field, err.detail),
            }
        })?;
        Ok((
            config,
            SweepSettings {
                page_size: self.sweep_page_size,
                concurrency: self.sweep_concurrency,
            },
        ))
    }
}
