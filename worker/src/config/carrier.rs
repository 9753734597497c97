//! `CarrierArgs`: the SMS carrier (generic or Twilio-compatible, a secondary behind the
//! breaker), its rate and the message templates.

use super::*;

/// The SMS carrier and the message templates.
#[derive(Debug, Clone, Args)]
pub struct CarrierArgs {
    /// Which carrier API messages go through: `generic` or `twilio`.
    #[arg(long, env = "PCN_CARRIER", default_value = "generic")]
    pub carrier: String,
    /// Base URL of the carrier API.
    #[arg(long, env = "PCN_CARRIER_URL", default_value = "http://127.0.0.1:8082")]
    pub carrier_url: String,
    /// Bearer key of the generic carrier (development value `dev-carrier-key`).
    #[arg(long, env = "PCN_CARRIER_API_KEY", hide_env_values = true)]
    pub carrier_api_key: Option<String>,
    /// File holding the generic carrier's key (instead of `PCN_CARRIER_API_KEY`).
    #[arg(long, env = "PCN_CARRIER_API_KEY_FILE")]
    pub carrier_api_key_file: Option<PathBuf>,
    /// Twilio Account SID (`AC…`).
    #[arg(
        long,
        env = "PCN_TWILIO_ACCOUNT_SID",
        default_value = "AC00000000000000000000000000000000"
    )]
    pub twilio_account_sid: String,
    /// Twilio auth token (Basic auth password; key of `X-Twilio-Signature`; development value
    /// `dev-twilio-token`).
    #[arg(long, env = "PCN_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// File holding the Twilio auth token (instead of `PCN_TWILIO_AUTH_TOKEN`).
    #[arg(long, env = "PCN_TWILIO_AUTH_TOKEN_FILE")]
    pub twilio_auth_token_file: Option<PathBuf>,
    /// Twilio sender (`From`), or a Messaging Service SID (`MG…`).
    #[arg(long, env = "PCN_TWILIO_FROM", default_value = "BankPremium")]
    pub twilio_from: String,
    /// Public base URL of our webhook, as the carrier reaches it (callback URLs are built on it).
    #[arg(
        long,
        env = "PCN_WEBHOOK_PUBLIC_URL",
        default_value = "http://127.0.0.1:8090"
    )]
    pub webhook_public_url: String,
    /// Carrier request timeout, seconds.
    #[arg(long, env = "PCN_CARRIER_TIMEOUT_SECS", default_value_t = 10)]
    pub carrier_timeout_secs: u64,
    /// PEM CA bundle trusted for the carriers' certificates besides the platform's trust store
    /// (a carrier or gateway behind a private CA). The certificates are always verified.
    #[arg(long, env = "PCN_CARRIER_CA")]
    pub carrier_ca: Option<PathBuf>,
    /// Directory of the message templates (`he.txt`, `ar.txt`, `en.txt`, `ru.txt`).
    #[arg(long, env = "PCN_SMS_TEMPLATES", default_value = "templates/sms")]
    pub sms_templates: std::path::PathBuf,
    /// Most SMS segments a rendered message may take (checked when the templates load).
    #[arg(long, env = "PCN_SMS_MAX_SEGMENTS", default_value_t = pcn_workflows::message::TemplateLimits::DEFAULT_MAX_SEGMENTS)]
    pub sms_max_segments: u32,
    /// SMS workflow starts in flight at once during the fan-out.
    #[arg(long, env = "PCN_FANOUT_CONCURRENCY", default_value_t = 32)]
    pub fanout_concurrency: usize,
    /// Most messages the submission gateway puts in one carrier request.
    #[arg(long, env = "PCN_SMS_BATCH_MAX", default_value_t = 500)]
    pub sms_batch_max: usize,
    /// A carrier request closes when no submission joined it for this long, milliseconds.
    #[arg(long, env = "PCN_SMS_BATCH_LINGER_MS", default_value_t = 1_000)]
    pub sms_batch_linger_ms: u64,
    /// … and at the latest this long after its first submission, milliseconds (at most 10 s:
    /// with a rate wait of the same length and the carrier's answer, still inside the SMS
    /// workflows' 30 s task timeout). The default keeps a workflow task under the SDK's 5 s
    /// warning while gathering ~40 messages a second into batches of ~150.
    #[arg(long, env = "PCN_SMS_BATCH_MAX_WAIT_MS", default_value_t = 4_000)]
    pub sms_batch_max_wait_ms: u64,
    /// Submissions waiting for a batch at most in this worker; beyond it they are deferred (the
    /// workflow comes back after a timer).
    #[arg(long, env = "PCN_SMS_QUEUE_LIMIT", default_value_t = 1_000)]
    pub sms_queue_limit: usize,
    /// Messages per second the carrier takes, for every worker together (a token bucket in
    /// Postgres). Unset: no limit is set by this worker (one set before stays).
    #[arg(long, env = "PCN_CARRIER_RATE_PER_SEC")]
    pub carrier_rate_per_sec: Option<u32>,
    /// The secondary carrier (failover while the primary's circuit breaker is open): the other
    /// adapter, `generic` or `twilio`, with its credentials from the same settings. Unset: none.
    #[arg(long, env = "PCN_CARRIER_SECONDARY")]
    pub carrier_secondary: Option<String>,
    /// Base URL of the secondary carrier's API.
    #[arg(long, env = "PCN_CARRIER_SECONDARY_URL")]
    pub carrier_secondary_url: Option<String>,
    /// Failed carrier requests in a row that open a carrier's circuit breaker.
    #[arg(long, env = "PCN_CARRIER_BREAKER_FAILURES", default_value_t = 5)]
    pub carrier_breaker_failures: u32,
    /// How long an open breaker refuses before one probe request, seconds.
    #[arg(long, env = "PCN_CARRIER_BREAKER_OPEN_SECS", default_value_t = 30)]
    pub carrier_breaker_open_secs: u64,
}

/// How SMS are submitted: the gateway's batching and admission, and the carrier's rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmissionSettings {
    /// Batching and admission of the submission gateway.
    pub gateway: pcn_activities::gateway::GatewaySettings,
    /// The carrier's rate, when configured.
    pub rate: Option<pcn_activities::budget::Rate>,
    /// When a carrier's circuit breaker opens, and for how long.
    pub breaker: pcn_activities::breaker::BreakerSettings,
}

impl CarrierArgs {
    /// The validated submission settings.
    pub fn submission(&self) -> Result<SubmissionSettings, DomainError> {
        in_range("sms_batch_max", self.sms_batch_max, 1..=1_000)?;
        in_range("sms_batch_linger_ms", self.sms_batch_linger_ms, 1..=10_000)?;
        in_range(
            "sms_batch_max_wait_ms",
            self.sms_batch_max_wait_ms,
            1..=10_000,
        )?;
        in_range("sms_queue_limit", self.sms_queue_limit, 1..=100_000)?;
        in_range(
            "carrier_breaker_failures",
            self.carrier_breaker_failures,
            1..=1_000,
        )?;
        in_range(
            "carrier_breaker_open_secs",
            self.carrier_breaker_open_secs,
            1..=3_600,
        )?;
        let rate = match self.carrier_rate_per_sec {
            None => None,
            Some(n) => Some(pcn_activities::budget::Rate::per_sec(n).ok_or_else(|| {
                DomainError::new(
                    "carrier_rate_per_sec",
                    "must be positive (unset it for no limit)",
                )
            })?),
        };
        Ok(SubmissionSettings {
            gateway: pcn_activities::gateway::GatewaySettings {
                max_batch: self.sms_batch_max,
                linger: Duration::from_millis(self.sms_batch_linger_ms),
                max_wait: Duration::from_millis(self.sms_batch_max_wait_ms),
                queue_limit: self.sms_queue_limit,
                ..pcn_activities::gateway::GatewaySettings::default()
            },
            rate,
            breaker: pcn_activities::breaker::BreakerSettings {
                failures: self.carrier_breaker_failures,
                open_for: Duration::from_secs(self.carrier_breaker_open_secs),
            },
        })
    }
}

impl CarrierArgs {
    /// The validated carrier configuration and template limits.
    pub fn parse(&self, profile: Profile) -> Result<(CarrierConfig, TemplateLimits), DomainError> {
        let kind = CarrierKind::parse(&self.carrier)?;
        let carrier_api_key = secret(
            "carrier_api_key",
            "PCN_CARRIER_API_KEY",
            self.carrier_api_key.as_deref(),
            self.carrier_api_key_file.as_deref(),
            "dev-carrier-key",
            profile,
        )?;
        let twilio_auth_token = secret(
            "twilio_auth_token",
            "PCN_TWILIO_AUTH_TOKEN",
            self.twilio_auth_token.as_deref(),
            self.twilio_auth_token_file.as_deref(),
            "dev-twilio-token",
            profile,
        )?;
        let base = parse_url("carrier_url", &self.carrier_url)?;
        let public = parse_url("webhook_public_url", &self.webhook_public_url)?;
        let join = |path: &str| {
            public
                .join(path)
                .map_err(|_| DomainError::new("webhook_public_url", "cannot append a path"))
        };
        in_range("carrier_timeout_secs", self.carrier_timeout_secs, 1..=120)?;
        in_range("sms_max_segments", self.sms_max_segments, 1..=10)?;
        in_range("fanout_concurrency", self.fanout_concurrency, 1..=1_000)?;
        let timeout = Duration::from_secs(self.carrier_timeout_secs);
        let server_ca = match &self.carrier_ca {
            None => None,
            Some(path) => {
                let pem = read_file("carrier_ca", path)?;
                pcn_activities::tls::parse_certs(&pem).map_err(|e| {
                    DomainError::new("carrier_ca", format!("{} {e}", path.display()))
                })?;
                Some(pem)
            }
        };
        let secondary = match (&self.carrier_secondary, &self.carrier_secondary_url) {
            (None, None) => None,
            (Some(name), Some(url)) => {
                let other = CarrierKind::parse(name)?;
                if other == kind {
                    return Err(DomainError::new(
                        "carrier_secondary",
                        "must be the other adapter than carrier (one carrier cannot fail over to itself)",
                    ));
                }
                Some((other, parse_url("carrier_secondary_url", url)?))
            }
            (None, Some(_)) => {
                return Err(DomainError::new(
                    "carrier_secondary",
                    "is needed with carrier_secondary_url",
                ));
            }
            (Some(_), None) => {
                return Err(DomainError::new(
                    "carrier_secondary_url",
                    "is needed with carrier_secondary",
                ));
            }
        };
        let url_of = |k: CarrierKind| match &secondary {
            Some((other, url)) if *other == k => url.clone(),
            _ => base.clone(),
        };
        let config = CarrierConfig {
            kind,
            secondary: secondary.as_ref().map(|(other, _)| *other),
            generic: GenericConfig {
                base_url: url_of(CarrierKind::Generic),
                api_key: Secret::new(carrier_api_key),
                callback_url: join("/webhooks/sms-delivery")?,
                timeout,
                server_ca: server_ca.clone(),
                ..GenericConfig::default()
            },
            twilio: TwilioConfig {
                base_url: url_of(CarrierKind::Twilio),
                account_sid: self.twilio_account_sid.clone(),
                auth_token: Secret::new(twilio_auth_token),
                from: self.twilio_from.clone(),
                status_callback_base: join("/webhooks/twilio/status")?,
                timeout,
                server_ca,
                ..TwilioConfig::default()
            },
        };
        let limits = TemplateLimits {
            max_segments: self.sms_max_segments,
            ..TemplateLimits::default()
        };
        Ok((config, limits))
    }
}
