//! Configuration: defaults, then environment variables, then flags (clap reads both). Every value
//! is parsed into its domain type here, so a bad value fails at start-up with the field named.
//!
//! This file holds the shared rules (the secrets' profile and `_FILE` rule, the TLS rule, ranges,
//! URLs) and the smaller groups of settings; the bank's, the carrier's and the report mail's are in
//! `config/bank.rs`, `config/carrier.rs` and `config/report.rs`, the phone keys' in
//! `config/keys.rs`, and the unit tests of all of them in `config/tests.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use clap::Args;
use pcn_activities::bank::{BankAuth, BankConfig, BankTlsPart, ClientIdentity, Secret};
use pcn_activities::carrier::CarrierConfig;
use pcn_activities::carrier::CarrierKind;
use pcn_activities::carrier::generic::GenericConfig;
use pcn_activities::carrier::twilio::TwilioConfig;
use pcn_activities::roles::{RoleName, Roles};
use pcn_activities::sweep::SweepSettings;
use pcn_workflows::domain::{DomainError, Nis};
use pcn_workflows::message::TemplateLimits;
use pcn_workflows::month::MonthSettings;
use pcn_workflows::sms::SmsSettings;
use pcn_workflows::window::SendWindow;
use percent_encoding::percent_decode_str;
use url::Url;

/// Where Postgres and Temporal are.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Postgres URL of the application (worker, webhook, control API): it logs in as the
    /// application role, which `setup` creates (with the URL's password, when it has one).
    #[arg(
        long,
        env = "PCN_DATABASE_URL",
        default_value = "postgres://pcn_app@127.0.0.1:5432/pcn",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Postgres connections of a serving process (worker, webhook, API).
    #[arg(long, env = "PCN_DATABASE_POOL", default_value_t = 16)]
    pub database_pool: u32,
    /// Temporal frontend, host:port or URL.
    #[arg(
        long,
        env = "PCN_TEMPORAL_ADDRESS",
        default_value = "http://127.0.0.1:7233"
    )]
    pub temporal_address: String,
    /// Temporal namespace.
    #[arg(long, env = "PCN_TEMPORAL_NAMESPACE", default_value = "default")]
    pub temporal_namespace: String,
    /// Task queue of the workflows and activities.
    #[arg(long, env = "PCN_TASK_QUEUE", default_value = pcn_workflows::TASK_QUEUE)]
    pub task_queue: String,
    /// `production` (the default: every secret must be set, development secrets are refused) or
    /// `development` (unset secrets fall back to the simulators' development values).
    #[arg(long, env = "PCN_PROFILE", default_value = "production", value_parser = ["production", "development"])]
    pub profile: String,
    /// Keyring of the Temporal payload codec: `id:BASE64KEY` entries (32-byte keys), newest
    /// first; every process that talks to Temporal needs the same ring (a secret; development
    /// value `pcn_activities::keyring::development::PAYLOAD_KEYS`).
    #[arg(long, env = "PCN_PAYLOAD_KEYS", hide_env_values = true)]
    pub payload_keys: Option<String>,
    /// File holding that keyring (instead of `PCN_PAYLOAD_KEYS`; one entry a line, `#` comments).
    #[arg(long, env = "PCN_PAYLOAD_KEYS_FILE")]
    pub payload_keys_file: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The profile the process runs in.
    pub fn profile(&self) -> Profile {
        if self.profile == "development" {
            Profile::Development
        } else {
            Profile::Production
        }
    }

    /// The payload codec of every Temporal client and worker of this process, from
    /// `PCN_PAYLOAD_KEYS` / `PCN_PAYLOAD_KEYS_FILE` (the development keyring only in the
    /// development profile; production refuses any ring holding the development key).
    pub fn payload_encryption(&self) -> Result<crate::codec::PayloadEncryption, DomainError> {
        use pcn_activities::keyring::{Keyring, development};
        let profile = self.profile();
        let spec = secret(
            "payload_keys",
            crate::codec::SETTING,
            self.payload_keys.as_deref(),
            self.payload_keys_file.as_deref(),
            development::PAYLOAD_KEYS,
            profile,
        )?;
        let keys = Keyring::parse(crate::codec::SETTING, &spec)
            .map_err(|e| DomainError::new("payload_keys", e.to_string()))?;
        let development = Keyring::parse("development", development::PAYLOAD_KEYS)
            .expect("the development keyring parses");
        if profile == Profile::Production && keys.shares_a_key_with(&development) {
            return Err(DomainError::new(
                "payload_keys",
                format!(
                    "holds the development key; production refuses it (set real keys in {0} or \
                     {0}_FILE, or run with PCN_PROFILE=development)",
                    crate::codec::SETTING
                ),
            ));
        }
        Ok(crate::codec::PayloadEncryption::new(keys))
    }
}

/// Which secrets a process may fall back on (`PCN_PROFILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Every secret set (directly or through its `_FILE`); development values refused.
    Production,
    /// Unset secrets take the simulators' development values (`make demo`, `make chaos`, tests).
    Development,
}

/// One secret setting: its value (`PCN_X`) or the file holding it (`PCN_X_FILE`, e.g. a Docker or
/// Kubernetes secret; a trailing newline is dropped), never both. Unset, it is `dev_default` in the
/// development profile and an error naming the setting in production, where the development value
/// itself is refused too. Errors never echo a secret.
pub fn secret(
    field: &'static str,
    env: &'static str,
    value: Option<&str>,
    file: Option<&Path>,
    dev_default: &str,
    profile: Profile,
) -> Result<String, DomainError> {
    let resolved = match (value, file) {
        (Some(_), Some(_)) => {
            return Err(DomainError::new(
                field,
                format!("set {env} or {env}_FILE, not both"),
            ));
        }
        (Some(v), None) => v.to_owned(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| {
                DomainError::new(
                    field,
                    format!("{env}_FILE {} cannot be read: {}", path.display(), e.kind()),
                )
            })?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        (None, None) => match profile {
            Profile::Development => dev_default.to_owned(),
            Profile::Production => {
                return Err(DomainError::new(
                    field,
                    format!(
                        "is not set: set {env} or {env}_FILE (development values are used only \
                         with PCN_PROFILE=development)"
                    ),
                ));
            }
        },
    };
    if resolved.is_empty() {
        return Err(DomainError::new(field, "must not be empty"));
    }
    if profile == Profile::Production && resolved == dev_default {
        return Err(DomainError::new(
            field,
            format!(
                "is the development value; production refuses it (set a real secret in {env} or \
                 {env}_FILE, or run with PCN_PROFILE=development)"
            ),
        ));
    }
    Ok(resolved)
}

/// `pcn-worker setup`'s own connection and the owner role (see `pcn_activities::roles`).
#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// Postgres URL of `setup` only, on the application's database: a superuser, or a role with
    /// CREATEROLE that is a member of the owner role. No serving process uses it.
    #[arg(
        long,
        env = "PCN_DATABASE_SETUP_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/pcn",
        hide_env_values = true
    )]
    pub database_setup_url: String,
    /// The role that owns the schema and runs the migrations (created by `setup`; cannot log in).
    #[arg(long, env = "PCN_DATABASE_OWNER_ROLE", default_value = "pcn_owner")]
    pub database_owner_role: String,
}

impl SetupArgs {
    /// The roles to set up: the owner by name, the application role (and its password) as
    /// `database_url` logs in. Both URLs must name the same database.
    pub fn roles(&self, database_url: &str) -> Result<Roles, DomainError> {
        let app_url = Url::parse(database_url)
            .map_err(|e| DomainError::new("database_url", format!("not a URL: {e}")))?;
        let setup_url = Url::parse(&self.database_setup_url)
            .map_err(|e| DomainError::new("database_setup_url", format!("not a URL: {e}")))?;
        if app_url.path() != setup_url.path() {
            return Err(DomainError::new(
                "database_setup_url",
                format!(
                    "names database {:?}, but database_url names {:?}: setup prepares the \
                     application's database",
                    setup_url.path().trim_start_matches('/'),
                    app_url.path().trim_start_matches('/')
                ),
            ));
        }
        let user = percent_decode_str(app_url.username())
            .decode_utf8()
            .map_err(|_| DomainError::new("database_url", "the user is not UTF-8"))?;
        if user.is_empty() {
            return Err(DomainError::new(
                "database_url",
                "names no user: it must log in as the application role (e.g. pcn_app@)",
            ));
        }
        let app = RoleName::parse(&user).map_err(|e| {
            DomainError::new(
                "database_url",
                format!("the user is the application role: {e}"),
            )
        })?;
        let owner = RoleName::parse(&self.database_owner_role)
            .map_err(|e| DomainError::new("database_owner_role", e))?;
        if owner == app {
            return Err(DomainError::new(
                "database_owner_role",
                format!("is {owner}, the role database_url logs in as: the two must differ"),
            ));
        }
        let app_password = match app_url.password() {
            None => None,
            Some(encoded) => Some(Secret::new(
                percent_decode_str(encoded)
                    .decode_utf8()
                    .map_err(|_| DomainError::new("database_url", "the password is not UTF-8"))?,
            )),
        };
        Ok(Roles {
            owner,
            app,
            app_password,
        })
    }
}

impl SetupArgs {
    /// The owner role alone (`pcn-worker retention` acts as it through the setup URL).
    pub fn owner_role(&self) -> Result<RoleName, DomainError> {
        RoleName::parse(&self.database_owner_role)
            .map_err(|e| DomainError::new("database_owner_role", e))
    }
}

/// The 7-year rule (docs/requirements.md): the shortest retention production accepts, in months.
pub const MIN_PRODUCTION_RETENTION_MONTHS: u32 = 84;

/// `pcn-worker retention`: how long balance checks are kept and where the exports of older
/// months go. It connects with `PCN_DATABASE_SETUP_URL` and acts as the owner role.
#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Months of balance checks kept: a month partition is archived once all its days are older
    /// than this many months. Production refuses less than 84 (seven years).
    #[arg(long, env = "PCN_RETENTION_MONTHS", default_value = "84")]
    pub retention_months: String,
    /// Directory of the exports: `<partition>.csv.gz` and `<partition>.csv.gz.sha256`.
    #[arg(long, env = "PCN_RETENTION_DIR", default_value = "archive")]
    pub retention_dir: PathBuf,
    /// Export, verify, drop and audit. Without it, only print what would be done.
    #[arg(long)]
    pub apply: bool,
    /// Re-import an export (`<partition>.csv.gz` with its `.sha256` beside it) instead.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    pub restore: Option<PathBuf>,
}

impl RetentionArgs {
    /// The retention period in months (1–1200; at least 84 in production).
    pub fn months(&self, profile: Profile) -> Result<u32, DomainError> {
        let months: u32 = self
            .retention_months
            .trim()
            .parse()
            .ok()
            .filter(|m| (1..=1200).contains(m))
            .ok_or_else(|| {
                DomainError::new(
                    "retention_months",
                    format!(
                        "{:?} is not a number of months from 1 to 1200",
                        self.retention_months
                    ),
                )
            })?;
        if profile == Profile::Production && months < MIN_PRODUCTION_RETENTION_MONTHS {
            return Err(DomainError::new(
                "retention_months",
                format!(
                    "{months} months is shorter than the {MIN_PRODUCTION_RETENTION_MONTHS} months \
                     (seven years) the bank must keep; shorter periods only in the development \
                     profile"
                ),
            ));
        }
        Ok(months)
    }
}

/// The contents of a file a setting names, or an error naming the setting and the file.
fn read_file(field: &'static str, path: &Path) -> Result<Vec<u8>, DomainError> {
    std::fs::read(path).map_err(|e| {
        DomainError::new(
            field,
            format!("{} cannot be read: {}", path.display(), e.kind()),
        )
    })
}

/// The webhook server: where it listens and the secrets callbacks are signed with.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Bind address of the webhook.
    #[arg(long, env = "PCN_WEBHOOK_BIND", default_value = "127.0.0.1:8090")]
    pub webhook_bind: SocketAddr,
    /// Public base URL of the webhook as the carrier calls it (Twilio signs the full URL).
    #[arg(
        long,
        env = "PCN_WEBHOOK_PUBLIC_URL",
        default_value = "http://127.0.0.1:8090"
    )]
    pub webhook_public_url: String,
    /// HMAC-SHA256 key of the generic carrier's callbacks (development value
    /// `dev-webhook-secret`).
    #[arg(long, env = "PCN_CARRIER_WEBHOOK_SECRET", hide_env_values = true)]
    pub carrier_webhook_secret: Option<String>,
    /// File holding the webhook secret (instead of `PCN_CARRIER_WEBHOOK_SECRET`).
    #[arg(long, env = "PCN_CARRIER_WEBHOOK_SECRET_FILE")]
    pub carrier_webhook_secret_file: Option<PathBuf>,
    /// Twilio auth token (key of `X-Twilio-Signature`; development value `dev-twilio-token`).
    #[arg(long, env = "PCN_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// File holding the Twilio auth token (instead of `PCN_TWILIO_AUTH_TOKEN`).
    #[arg(long, env = "PCN_TWILIO_AUTH_TOKEN_FILE")]
    pub twilio_auth_token_file: Option<PathBuf>,
    /// Signals in flight at once.
    #[arg(long, env = "PCN_SIGNAL_CONCURRENCY", default_value_t = 64)]
    pub signal_concurrency: usize,
    /// PEM certificate chain the webhook serves HTTPS with (with `PCN_WEBHOOK_TLS_KEY`).
    #[arg(long, env = "PCN_WEBHOOK_TLS_CERT")]
    pub webhook_tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "PCN_WEBHOOK_TLS_KEY")]
    pub webhook_tls_key: Option<PathBuf>,
    /// Serve plain HTTP in production anyway (e.g. behind a TLS-terminating load balancer): an
    /// explicit choice, never a default.
    #[arg(long, env = "PCN_WEBHOOK_PLAINTEXT", default_value_t = false)]
    pub webhook_plaintext: bool,
    /// The keys of phone numbers (inbound replies).
    #[command(flatten)]
    pub phones: PhoneKeyArgs,
}

impl WebhookArgs {
    /// The TLS identity the webhook serves with, or None for plain HTTP: only in the development
    /// profile or when chosen explicitly (`PCN_WEBHOOK_PLAINTEXT`).
    pub fn tls(&self, profile: Profile) -> Result<Option<crate::tls::TlsIdentity>, DomainError> {
        tls_identity(
            ["webhook_tls_cert", "webhook_tls_key"],
            "PCN_WEBHOOK",
            "the webhook",
            (
                self.webhook_tls_cert.as_deref(),
                self.webhook_tls_key.as_deref(),
            ),
            self.webhook_plaintext,
            profile,
        )
    }

    /// The validated webhook configuration.
    pub fn parse(&self, profile: Profile) -> Result<crate::webhook::WebhookConfig, DomainError> {
        let public = parse_url("webhook_public_url", &self.webhook_public_url)?;
        let webhook_secret = secret(
            "carrier_webhook_secret",
            "PCN_CARRIER_WEBHOOK_SECRET",
            self.carrier_webhook_secret.as_deref(),
            self.carrier_webhook_secret_file.as_deref(),
            "dev-webhook-secret",
            profile,
        )?;
        if webhook_secret.len() < 8 {
            return Err(DomainError::new(
                "carrier_webhook_secret",
                "must be at least 8 bytes",
            ));
        }
        let twilio_auth_token = secret(
            "twilio_auth_token",
            "PCN_TWILIO_AUTH_TOKEN",
            self.twilio_auth_token.as_deref(),
            self.twilio_auth_token_file.as_deref(),
            "dev-twilio-token",
            profile,
        )?;
        in_range("signal_concurrency", self.signal_concurrency, 1..=1_000)?;
        Ok(crate::webhook::WebhookConfig {
            generic_secret: webhook_secret.into_bytes(),
            twilio_auth_token: twilio_auth_token.into_bytes(),
            public_base_url: public.as_str().trim_end_matches('/').to_owned(),
            phones: self.phones.parse(profile)?,
        })
    }
}

/// A server's TLS identity from its certificate and key files, or None for plaintext, which only
/// the development profile or an explicit `<PREFIX>_PLAINTEXT=true` may choose.
fn tls_identity(
    fields: [&'static str; 2],
    prefix: &str,
    server: &str,
    (cert, key): (Option<&Path>, Option<&Path>),
    plaintext: bool,
    profile: Profile,
) -> Result<Option<crate::tls::TlsIdentity>, DomainError> {
    let [cert_field, key_field] = fields;
    let read = |field: &'static str, path: &Path| {
        std::fs::read(path).map_err(|e| {
            DomainError::new(
                field,
                format!("{} cannot be read: {}", path.display(), e.kind()),
            )
        })
    };
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(crate::tls::TlsIdentity {
            cert_pem: read(cert_field, cert)?,
            key_pem: read(key_field, key)?,
        })),
        (Some(_), None) => Err(DomainError::new(
            key_field,
            format!("is needed with {cert_field}"),
        )),
        (None, Some(_)) => Err(DomainError::new(
            cert_field,
            format!("is needed with {key_field}"),
        )),
        (None, None) if plaintext || profile == Profile::Development => Ok(None),
        (None, None) => Err(DomainError::new(
            cert_field,
            format!(
                "is not set: {server} serves TLS in production (set {prefix}_TLS_CERT and \
                 {prefix}_TLS_KEY, or choose plaintext explicitly with {prefix}_PLAINTEXT=true, \
                 e.g. behind a TLS-terminating proxy)"
            ),
        )),
    }
}

/// `value` within `range` (inclusive), or an error naming `field`.
fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), DomainError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(DomainError::new(
            field,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

fn parse_url(field: &'static str, s: &str) -> Result<Url, DomainError> {
    let url = Url::parse(s.trim())
        .map_err(|_| DomainError::new(field, "expected an http:// or https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(DomainError::new(
            field,
            "expected an http:// or https:// URL",
        ));
    }
    Ok(url)
}

/// Tunables of month runs started from this process (the schedule or the control API).
#[derive(Debug, Clone, Args)]
pub struct MonthArgs {
    /// Local (Asia/Jerusalem) time of the daily check, HH:MM.
    #[arg(long, env = "PCN_CHECK_TIME", default_value = "22:00")]
    pub check_time: String,
    /// Threshold in NIS (inclusive).
    #[arg(long, env = "PCN_THRESHOLD", default_value = "15000.00")]
    pub threshold: String,
    /// Seconds the bank may stay unreachable before a day's remaining accounts are MISSING.
    #[arg(long, env = "PCN_GIVE_UP_AFTER_SECS", default_value_t = 7_200)]
    pub give_up_after_secs: u64,
    /// Heartbeat timeout of the sweep, seconds.
    #[arg(long, env = "PCN_SWEEP_HEARTBEAT_TIMEOUT_SECS", default_value_t = 60)]
    pub sweep_heartbeat_timeout_secs: u64,
    /// When SMS may go out, Asia/Jerusalem: e.g. `sun-thu 09:00-20:00` (never Friday evening or
    /// Saturday); `always` only for demos and tests.
    #[arg(long, env = "PCN_SMS_WINDOW", default_value = "sun-thu 09:00-20:00")]
    pub sms_window: String,
    /// SMS attempts in all.
    #[arg(long, env = "PCN_SMS_MAX_ATTEMPTS", default_value_t = 3)]
    pub sms_max_attempts: u32,
    /// Wait between SMS attempts, seconds.
    #[arg(long, env = "PCN_SMS_RETRY_DELAY_SECS", default_value_t = 6 * 3600)]
    pub sms_retry_delay_secs: u64,
    /// How long an attempt may go without a final status, seconds.
    #[arg(long, env = "PCN_SMS_CONFIRMATION_TIMEOUT_SECS", default_value_t = 72 * 3600)]
    pub sms_confirmation_timeout_secs: u64,
    /// Status poll interval, seconds.
    #[arg(long, env = "PCN_SMS_POLL_INTERVAL_SECS", default_value_t = 2 * 3600)]
    pub sms_poll_interval_secs: u64,
    /// How long an SMS attempt whose submission outcome is unknown (in doubt) waits for evidence
    /// (callbacks, a carrier lookup) before it is sent again under the same reference, seconds.
    #[arg(long, env = "PCN_SMS_RECONCILE_SECS", default_value_t = 600)]
    pub sms_reconcile_secs: u64,
    /// Qualified customers per fan-out activity.
    #[arg(long, env = "PCN_FANOUT_PAGE", default_value_t = 2_000)]
    pub fanout_page: u32,
    /// How often the month re-reads its notification counts, seconds.
    #[arg(long, env = "PCN_NOTIFICATION_POLL_SECS", default_value_t = 900)]
    pub notification_poll_secs: u64,
}

impl MonthArgs {
    /// The validated month settings.
    pub fn parse(&self) -> Result<MonthSettings, DomainError> {
        let check_time = NaiveTime::parse_from_str(self.check_time.trim(), "%H:%M")
            .map_err(|_| DomainError::new("check_time", "expected HH:MM (24-hour clock)"))?;
        let threshold = Nis::parse_threshold(self.threshold.trim())?;
        if self.sweep_heartbeat_timeout_secs == 0 {
            return Err(DomainError::new(
                "sweep_heartbeat_timeout_secs",
                "must be positive",
            ));
        }
        let window = SendWindow::parse(&self.sms_window)?;
        in_range("sms_max_attempts", self.sms_max_attempts, 1..=10)?;
        for (field, value) in [
            ("sms_retry_delay_secs", self.sms_retry_delay_secs),
            (
                "sms_confirmation_timeout_secs",
                self.sms_confirmation_timeout_secs,
            ),
            ("sms_poll_interval_secs", self.sms_poll_interval_secs),
            ("sms_reconcile_secs", self.sms_reconcile_secs),
            ("notification_poll_secs", self.notification_poll_secs),
        ] {
            if value == 0 {
                return Err(DomainError::new(field, "must be positive"));
            }
        }
        in_range("fanout_page", self.fanout_page, 1..=2_000)?;
        Ok(MonthSettings {
            check_time,
            threshold,
            give_up_after_secs: self.give_up_after_secs,
            sweep_heartbeat_timeout_secs: self.sweep_heartbeat_timeout_secs,
            search_attributes: true,
            fanout_page: self.fanout_page,
            notification_poll_secs: self.notification_poll_secs,
            sms: SmsSettings {
                max_attempts: self.sms_max_attempts,
                retry_delay_secs: self.sms_retry_delay_secs,
                confirmation_timeout_secs: self.sms_confirmation_timeout_secs,
                poll_interval_secs: self.sms_poll_interval_secs,
                window,
                search_attributes: true,
                reconcile_secs: self.sms_reconcile_secs,
            },
        })
    }
}

/// The worker's own HTTP endpoint and logging.
#[derive(Debug, Clone, Args)]
pub struct OpsArgs {
    /// Bind address of `/healthz`, `/readyz` and `/metrics` (our metrics).
    #[arg(long, env = "PCN_HTTP_BIND", default_value = "127.0.0.1:9464")]
    pub http_bind: SocketAddr,
    /// Bind address of the Temporal SDK's Prometheus exporter (empty: disabled).
    #[arg(long, env = "PCN_SDK_METRICS_BIND", default_value = "127.0.0.1:9465")]
    pub sdk_metrics_bind: String,
    /// Log format: `pretty` or `json`.
    #[arg(long, env = "PCN_LOG_FORMAT", default_value = "pretty")]
    pub log_format: String,
    /// Workflow runs kept in memory (sticky cache): more means fewer replays from the whole
    /// history and less work for the server, at ≈ 10 KB of memory per run.
    #[arg(long, env = "PCN_WORKFLOW_CACHE", default_value_t = crate::temporal::DEFAULT_WORKFLOW_CACHE)]
    pub workflow_cache: usize,
    /// Workflow tasks the worker holds at once. A task's timeout runs while the worker holds it,
    /// so more than the worker and the server finish within it times tasks out; a submission
    /// waiting for its batch holds one, so a batch is at most this large.
    #[arg(long, env = "PCN_WORKFLOW_TASK_SLOTS", default_value_t = crate::temporal::DEFAULT_WORKFLOW_TASK_SLOTS)]
    pub workflow_task_slots: usize,
}

impl OpsArgs {
    /// The worker's capacity, checked: a cache of 2 to 1,000,000 runs, 1 to 10,000 task slots.
    pub fn capacity(&self) -> Result<crate::temporal::WorkerCapacity, DomainError> {
        in_range("workflow_cache", self.workflow_cache, 2..=1_000_000)?;
        in_range("workflow_task_slots", self.workflow_task_slots, 1..=10_000)?;
        Ok(crate::temporal::WorkerCapacity {
            workflow_cache: self.workflow_cache,
            workflow_task_slots: self.workflow_task_slots,
        })
    }
}

/// The control API (`pcn-worker api`).
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Bind address of the gRPC control API (with reflection and health).
    #[arg(long, env = "PCN_API_BIND", default_value = "127.0.0.1:50051")]
    pub api_bind: SocketAddr,
    /// Tokens as `name:role:sha256hex` entries, comma- or newline-separated (role: viewer,
    /// operator, admin). Only hashes: make one with `pcn-worker hash-token`.
    #[arg(
        long,
        env = "PCN_API_TOKENS",
        default_value = "",
        hide_env_values = true
    )]
    pub api_tokens: String,
    /// A file of such entries, one per line (`#` comments), added to `--api-tokens`.
    #[arg(long, env = "PCN_API_TOKENS_FILE")]
    pub api_tokens_file: Option<std::path::PathBuf>,
    /// Settings of the months the API starts and of retried notifications.
    #[command(flatten)]
    pub month: MonthArgs,
    /// Who the report is mailed to (`SendReport`; the API only queues, the worker's mailer sends).
    #[arg(long, env = "PCN_REPORT_RECIPIENTS", default_value = "")]
    pub report_recipients: String,
    /// PEM certificate chain the API serves TLS with (with `PCN_API_TLS_KEY`).
    #[arg(long, env = "PCN_API_TLS_CERT")]
    pub api_tls_cert: Option<PathBuf>,
    /// PEM private key of that certificate.
    #[arg(long, env = "PCN_API_TLS_KEY")]
    pub api_tls_key: Option<PathBuf>,
    /// Serve plaintext gRPC in production anyway (e.g. behind a TLS-terminating proxy): an
    /// explicit choice, never a default.
    #[arg(long, env = "PCN_API_PLAINTEXT", default_value_t = false)]
    pub api_plaintext: bool,
    /// The keys of phone numbers (`ImportCustomers` seals the numbers it stores).
    #[command(flatten)]
    pub phones: PhoneKeyArgs,
    /// Bind address of the remote payload codec for the Web UI (`POST /decode`, `/encode`), served
    /// beside the API with its tokens and TLS; empty: not served.
    #[arg(long, env = "PCN_CODEC_LISTEN", default_value = "127.0.0.1:8089")]
    pub codec_listen: String,
    /// Origins allowed to call the codec from a browser (CORS), comma-separated, e.g. the Web UI's
    /// `http://localhost:8233`; empty: none.
    #[arg(long, env = "PCN_CODEC_CORS_ORIGIN", default_value = "")]
    pub codec_cors_origin: String,
    /// Decode without a token (development profile only: the dev server's Web UI has no login to
    /// pass a token from).
    #[arg(long, env = "PCN_CODEC_ANONYMOUS_DECODE", default_value_t = false)]
    pub codec_anonymous_decode: bool,
}

impl ApiArgs {
    /// The TLS identity the API serves with, or None for plaintext: plaintext only in the
    /// development profile or when chosen explicitly (`PCN_API_PLAINTEXT`).
    pub fn tls(&self, profile: Profile) -> Result<Option<crate::tls::TlsIdentity>, DomainError> {
        tls_identity(
            ["api_tls_cert", "api_tls_key"],
            "PCN_API",
            "the control API",
            (self.api_tls_cert.as_deref(), self.api_tls_key.as_deref()),
            self.api_plaintext,
            profile,
        )
    }

    /// The codec server's settings, or None when `codec_listen` is empty.
    pub fn codec(
        &self,
        profile: Profile,
    ) -> Result<Option<crate::api::codec_server::CodecServerSettings>, DomainError> {
        let listen = self.codec_listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        let listen: SocketAddr = listen.parse().map_err(|_| {
            DomainError::new("codec_listen", "expected host:port, e.g. 127.0.0.1:8089")
        })?;
        let mut cors_origins = Vec::new();
        for (i, origin) in self.codec_cors_origin.split(',').map(str::trim).enumerate() {
            if origin.is_empty() {
                continue;
            }
            let url = parse_url("codec_cors_origin", origin).map_err(|_| {
                DomainError::new(
                    "codec_cors_origin",
                    format!("entry {} is not an origin (http[s]://host[:port])", i + 1),
                )
            })?;
            if url.path() != "/" || url.query().is_some() {
                return Err(DomainError::new(
                    "codec_cors_origin",
                    format!("entry {} must be an origin only, without a path", i + 1),
                ));
            }
            cors_origins.push(url.origin().ascii_serialization());
        }
        if self.codec_anonymous_decode && profile == Profile::Production {
            return Err(DomainError::new(
                "codec_anonymous_decode",
                "is refused in production: the codec decodes for callers with a token only \
                 (PCN_CODEC_ANONYMOUS_DECODE is for PCN_PROFILE=development)",
            ));
        }
        Ok(Some(crate::api::codec_server::CodecServerSettings {
            listen,
            cors_origins,
            anonymous_decode: self.codec_anonymous_decode,
        }))
    }

    /// The token table: both sources, parsed; a bad entry is refused with its number.
    pub fn tokens(&self) -> anyhow::Result<crate::api::auth::TokenTable> {
        let mut spec = self.api_tokens.clone();
        if let Some(path) = &self.api_tokens_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("reading api_tokens_file {}: {e}", path.display()))?;
            spec.push('\n');
            spec.push_str(&text);
        }
        crate::api::auth::TokenTable::parse(&spec).map_err(anyhow::Error::msg)
    }
}

mod bank;
mod carrier;
mod keys;
mod report;

pub use bank::*;
pub use carrier::*;
pub use keys::PhoneKeyArgs;
pub use report::*;

#[cfg(test)]
mod tests;
