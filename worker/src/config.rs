//! Configuration: defaults, then environment variables, then flags (clap reads both). Every value
//! is parsed into its domain type here, so a bad value fails at start-up with the field named.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveTime;
use clap::Args;
use pcn_activities::bank::{BankConfig, Secret};
use pcn_activities::sweep::SweepSettings;
use pcn_workflows::domain::{DomainError, Nis};
use pcn_workflows::month::MonthSettings;

/// Where Postgres and Temporal are.
#[derive(Debug, Clone, Args)]
pub struct ConnectionArgs {
    /// Postgres URL.
    #[arg(
        long,
        env = "PCN_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/pcn"
    )]
    pub database_url: String,
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
}

/// How to reach the core banking system and how hard to push it.
#[derive(Debug, Clone, Args)]
pub struct BankArgs {
    /// Base URL of the balance API.
    #[arg(long, env = "PCN_BANK_URL", default_value = "http://127.0.0.1:8081")]
    pub bank_url: String,
    /// API key sent as `X-API-Key`.
    #[arg(
        long,
        env = "PCN_BANK_API_KEY",
        default_value = "dev-bank-key",
        hide_env_values = true
    )]
    pub bank_api_key: String,
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
    /// The validated bank client configuration and sweep settings.
    pub fn parse(&self) -> Result<(BankConfig, SweepSettings), DomainError> {
        let url = self.bank_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(DomainError::new(
                "bank_url",
                "must start with http:// or https://",
            ));
        }
        if self.bank_api_key.is_empty() {
            return Err(DomainError::new("bank_api_key", "must not be empty"));
        }
        if !(1..=300).contains(&self.bank_timeout_secs) {
            return Err(DomainError::new(
                "bank_timeout_secs",
                "must be between 1 and 300",
            ));
        }
        if !(1..=10).contains(&self.bank_attempts) {
            return Err(DomainError::new(
                "bank_attempts",
                "must be between 1 and 10",
            ));
        }
        if !(1..=100_000).contains(&self.sweep_page_size) {
            return Err(DomainError::new(
                "sweep_page_size",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=1_024).contains(&self.sweep_concurrency) {
            return Err(DomainError::new(
                "sweep_concurrency",
                "must be between 1 and 1024",
            ));
        }
        Ok((
            BankConfig {
                base_url: url.to_owned(),
                api_key: Secret::new(self.bank_api_key.clone()),
                timeout: Duration::from_secs(self.bank_timeout_secs),
                attempts: self.bank_attempts,
                backoff: Duration::from_millis(self.bank_backoff_ms),
                max_connections: self.sweep_concurrency,
            },
            SweepSettings {
                page_size: self.sweep_page_size,
                concurrency: self.sweep_concurrency,
            },
        ))
    }
}

/// Tunables of month runs started from this process (schedule or command).
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
        Ok(MonthSettings {
            check_time,
            threshold,
            give_up_after_secs: self.give_up_after_secs,
            sweep_heartbeat_timeout_secs: self.sweep_heartbeat_timeout_secs,
            search_attributes: true,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month_args() -> MonthArgs {
        MonthArgs {
            check_time: "22:00".into(),
            threshold: "15000".into(),
            give_up_after_secs: 7_200,
            sweep_heartbeat_timeout_secs: 60,
        }
    }

    #[test]
    fn the_defaults_parse() {
        let settings = month_args().parse().unwrap();
        assert_eq!(settings, MonthSettings::default());
    }

    #[test]
    fn a_bad_check_time_names_the_field() {
        let mut args = month_args();
        args.check_time = "25:00".into();
        assert!(args.parse().unwrap_err().to_string().contains("check_time"));
    }

    #[test]
    fn a_zero_threshold_names_the_field() {
        let mut args = month_args();
        args.threshold = "0".into();
        assert!(args.parse().unwrap_err().to_string().contains("threshold"));
    }

    #[test]
    fn a_bank_url_without_scheme_names_the_field() {
        let args = BankArgs {
            bank_url: "bank.internal".into(),
            bank_api_key: "k".into(),
            bank_timeout_secs: 30,
            bank_attempts: 3,
            bank_backoff_ms: 10,
            sweep_page_size: 10,
            sweep_concurrency: 4,
        };
        assert!(args.parse().unwrap_err().to_string().contains("bank_url"));
    }
}
