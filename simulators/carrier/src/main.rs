//! `pcn-carrier-sim`: runs the SMS carrier simulator until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use pcn_carrier_sim::{Faults, OutcomeMix, SimConfig};
use tracing_subscriber::EnvFilter;

/// `SimConfig::default()`, where every flag's default comes from (so the binary and the library
/// agree on what an unconfigured carrier does).
fn defaults() -> SimConfig {
    SimConfig::default()
}

/// A duration as whole milliseconds (the flags' unit).
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// SMS carrier simulator (generic carrier API and Twilio-compatible Messages API).
///
/// Its defaults are no kinder than a real carrier: repeated references are new messages, and a
/// few callbacks come twice, stale, jittered or before the submission's answer.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PCN_CARRIER_SIM_BIND", default_value = "127.0.0.1:8082")]
    bind: SocketAddr,
    /// Seed of every pseudo-random choice.
    #[arg(long, env = "PCN_CARRIER_SIM_SEED", default_value_t = defaults().seed)]
    seed: u64,
    /// Milliseconds from acceptance to the final delivery callback.
    #[arg(long, env = "PCN_CARRIER_SIM_CALLBACK_DELAY_MS", default_value_t = ms(defaults().callback_delay))]
    callback_delay_ms: u64,
    /// Extra per-message callback delay in 0..=N milliseconds.
    #[arg(long, env = "PCN_CARRIER_SIM_CALLBACK_JITTER_MS", default_value_t = ms(defaults().callback_jitter))]
    callback_jitter_ms: u64,
    /// Milliseconds after acceptance during which the status API still says QUEUED.
    #[arg(long, env = "PCN_CARRIER_SIM_STATUS_DELAY_MS", default_value_t = ms(defaults().status_delay))]
    status_delay_ms: u64,
    /// Send a SENT callback before the final one.
    #[arg(long, env = "PCN_CARRIER_SIM_INTERMEDIATE")]
    intermediate: bool,
    /// Probability (ppm) that the final callback is sent twice.
    #[arg(long, env = "PCN_CARRIER_SIM_DUPLICATE_PPM", default_value_t = defaults().duplicate_ppm)]
    duplicate_ppm: u32,
    /// Probability (ppm) that a stale SENT callback follows the final one.
    #[arg(long, env = "PCN_CARRIER_SIM_REORDER_PPM", default_value_t = defaults().reorder_ppm)]
    reorder_ppm: u32,
    /// Probability (ppm) that the final callback is posted before the submission is answered.
    #[arg(long, env = "PCN_CARRIER_SIM_EARLY_CALLBACK_PPM", default_value_t = defaults().early_callback_ppm)]
    early_callback_ppm: u32,
    /// Answer a repeated messageId / idempotency token with the first answer instead of sending
    /// again (kinder than a real carrier).
    #[arg(long, env = "PCN_CARRIER_SIM_DEDUP_REFERENCES")]
    dedup_references: bool,
    /// Milliseconds a submission's answer is held after the submission was processed.
    #[arg(long, env = "PCN_CARRIER_SIM_ANSWER_DELAY_MS", default_value_t = ms(defaults().answer_delay))]
    answer_delay_ms: u64,
    /// Most messages in one generic batch (at most 1000); larger batches get a 400.
    #[arg(long, env = "PCN_CARRIER_SIM_MAX_BATCH", default_value_t = defaults().max_batch)]
    max_batch: usize,
    /// Share (ppm) of messages that fail (code 30003, unreachable handset: retried).
    #[arg(long, env = "PCN_CARRIER_SIM_FAILED_PPM", default_value_t = defaults().mix.failed_ppm)]
    failed_ppm: u32,
    /// Share (ppm) of messages that end undeliverable (code 21211).
    #[arg(long, env = "PCN_CARRIER_SIM_UNDELIVERABLE_PPM", default_value_t = defaults().mix.undeliverable_ppm)]
    undeliverable_ppm: u32,
    /// Share (ppm) of messages that never get a callback (status stays SENT).
    #[arg(long, env = "PCN_CARRIER_SIM_SILENT_PPM", default_value_t = defaults().mix.silent_ppm)]
    silent_ppm: u32,
    /// Capacity in messages per second before 429s with `Retry-After` (token bucket over both
    /// APIs; a generic batch takes one token per message).
    #[arg(long, env = "PCN_CARRIER_SIM_RATE_LIMIT_PER_SEC")]
    rate_limit_per_sec: Option<u32>,
    /// Milliseconds added to every submit and status request, before it is processed.
    #[arg(long, env = "PCN_CARRIER_SIM_LATENCY_MS", default_value_t = defaults().faults.latency_ms)]
    latency_ms: u64,
    /// Where generic inbound replies are posted.
    #[arg(long, env = "PCN_CARRIER_SIM_INBOUND_GENERIC_URL")]
    inbound_generic_url: Option<String>,
    /// Where Twilio inbound replies are posted.
    #[arg(long, env = "PCN_CARRIER_SIM_INBOUND_TWILIO_URL")]
    inbound_twilio_url: Option<String>,
    /// The generic API's Bearer key.
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_API_KEY",
        default_value_t = defaults().generic_api_key,
        hide_env_values = true
    )]
    api_key: String,
    /// The X-Carrier-Signature HMAC key.
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_WEBHOOK_SECRET",
        default_value_t = defaults().webhook_secret,
        hide_env_values = true
    )]
    webhook_secret: String,
    /// The Twilio account SID.
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_TWILIO_ACCOUNT_SID",
        default_value_t = defaults().twilio_account_sid
    )]
    twilio_account_sid: String,
    /// The Twilio auth token (Basic auth password and X-Twilio-Signature key).
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_TWILIO_AUTH_TOKEN",
        default_value_t = defaults().twilio_auth_token,
        hide_env_values = true
    )]
    twilio_auth_token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let bind = args.bind;
    let config = args.into_config();
    let (seed, callback_delay, dedup) =
        (config.seed, config.callback_delay, config.dedup_references);
    let sim = pcn_carrier_sim::spawn(config, bind).await?;
    tracing::info!(
        addr = %sim.addr,
        seed,
        callback_delay_ms = ms(callback_delay),
        dedup_references = dedup,
        "carrier simulator listening"
    );
    shutdown_signal()
        .await
        .context("waiting for a shutdown signal")?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

impl Args {
    /// The simulator configuration these flags describe.
    fn into_config(self) -> SimConfig {
        SimConfig {
            seed: self.seed,
            generic_api_key: self.api_key,
            webhook_secret: self.webhook_secret,
            twilio_account_sid: self.twilio_account_sid,
            twilio_auth_token: self.twilio_auth_token,
            callback_delay: Duration::from_millis(self.callback_delay_ms),
            callback_jitter: Duration::from_millis(self.callback_jitter_ms),
            status_delay: Duration::from_millis(self.status_delay_ms),
            mix: OutcomeMix {
                delivered_ppm: 1_000_000u32
                    .saturating_sub(self.failed_ppm)
                    .saturating_sub(self.undeliverable_ppm)
                    .saturating_sub(self.silent_ppm),
                failed_ppm: self.failed_ppm,
                undeliverable_ppm: self.undeliverable_ppm,
                silent_ppm: self.silent_ppm,
            },
            duplicate_ppm: self.duplicate_ppm,
            reorder_ppm: self.reorder_ppm,
            early_callback_ppm: self.early_callback_ppm,
            dedup_references: self.dedup_references,
            answer_delay: Duration::from_millis(self.answer_delay_ms),
            max_batch: self.max_batch,
            intermediate: self.intermediate,
            inbound_generic_url: self.inbound_generic_url,
            inbound_twilio_url: self.inbound_twilio_url,
            faults: Faults {
                latency_ms: self.latency_ms,
                rate_limit_per_sec: self.rate_limit_per_sec,
                ..Faults::default()
            },
            ..SimConfig::default()
        }
    }
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (what `docker stop` and process supervisors send).
async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without flags (and without `PCN_CARRIER_SIM_*` variables) the binary runs the library's
    /// default carrier.
    #[test]
    fn no_flags_give_the_library_default() {
        let args = Args::try_parse_from(["pcn-carrier-sim"]).unwrap();
        if std::env::vars().any(|(k, _)| k.starts_with("PCN_CARRIER_SIM_")) {
            return;
        }
        assert_eq!(args.into_config(), SimConfig::default());
    }

    #[test]
    fn flags_reach_the_config() {
        let args = Args::try_parse_from([
            "pcn-carrier-sim",
            "--dedup-references",
            "--answer-delay-ms",
            "1500",
            "--early-callback-ppm",
            "0",
            "--duplicate-ppm",
            "0",
        ])
        .unwrap();
        let config = args.into_config();
        assert!(config.dedup_references);
        assert_eq!(config.answer_delay, Duration::from_millis(1500));
        assert_eq!(config.early_callback_ppm, 0);
        assert_eq!(config.duplicate_ppm, 0);
    }
}
