//! `pcn-carrier-sim`: runs the SMS carrier simulator until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use pcn_carrier_sim::{Faults, OutcomeMix, SimConfig};
use tracing_subscriber::EnvFilter;

/// SMS carrier simulator (generic carrier API and Twilio-compatible Messages API).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PCN_CARRIER_SIM_BIND", default_value = "127.0.0.1:8082")]
    bind: SocketAddr,
    /// Seed of every pseudo-random choice.
    #[arg(long, env = "PCN_CARRIER_SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Milliseconds from acceptance to the final delivery callback.
    #[arg(long, env = "PCN_CARRIER_SIM_CALLBACK_DELAY_MS", default_value_t = 200)]
    callback_delay_ms: u64,
    /// Extra per-message callback delay in 0..=N milliseconds.
    #[arg(long, env = "PCN_CARRIER_SIM_CALLBACK_JITTER_MS", default_value_t = 0)]
    callback_jitter_ms: u64,
    /// Milliseconds after acceptance during which the status API still says QUEUED.
    #[arg(long, env = "PCN_CARRIER_SIM_STATUS_DELAY_MS", default_value_t = 0)]
    status_delay_ms: u64,
    /// Send a SENT callback before the final one.
    #[arg(long, env = "PCN_CARRIER_SIM_INTERMEDIATE")]
    intermediate: bool,
    /// Probability (ppm) that the final callback is sent twice.
    #[arg(long, env = "PCN_CARRIER_SIM_DUPLICATE_PPM", default_value_t = 0)]
    duplicate_ppm: u32,
    /// Probability (ppm) that a stale SENT callback follows the final one.
    #[arg(long, env = "PCN_CARRIER_SIM_REORDER_PPM", default_value_t = 0)]
    reorder_ppm: u32,
    /// Share (ppm) of messages that fail (code 21614).
    #[arg(long, env = "PCN_CARRIER_SIM_FAILED_PPM", default_value_t = 0)]
    failed_ppm: u32,
    /// Share (ppm) of messages that end undeliverable (code 21211).
    #[arg(long, env = "PCN_CARRIER_SIM_UNDELIVERABLE_PPM", default_value_t = 0)]
    undeliverable_ppm: u32,
    /// Share (ppm) of messages that never get a callback (status stays SENT).
    #[arg(long, env = "PCN_CARRIER_SIM_SILENT_PPM", default_value_t = 0)]
    silent_ppm: u32,
    /// Submit requests per second before 429s (token bucket over both APIs).
    #[arg(long, env = "PCN_CARRIER_SIM_RATE_LIMIT_PER_SEC")]
    rate_limit_per_sec: Option<u32>,
    /// Milliseconds added to every submit and status request.
    #[arg(long, env = "PCN_CARRIER_SIM_LATENCY_MS", default_value_t = 0)]
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
        default_value = "dev-carrier-key",
        hide_env_values = true
    )]
    api_key: String,
    /// The X-Carrier-Signature HMAC key.
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_WEBHOOK_SECRET",
        default_value = "dev-webhook-secret",
        hide_env_values = true
    )]
    webhook_secret: String,
    /// The Twilio account SID.
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_TWILIO_ACCOUNT_SID",
        default_value = pcn_carrier_sim::DEFAULT_TWILIO_ACCOUNT_SID
    )]
    twilio_account_sid: String,
    /// The Twilio auth token (Basic auth password and X-Twilio-Signature key).
    #[arg(
        long,
        env = "PCN_CARRIER_SIM_TWILIO_AUTH_TOKEN",
        default_value = "dev-twilio-token",
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
    let config = SimConfig {
        seed: args.seed,
        generic_api_key: args.api_key,
        webhook_secret: args.webhook_secret,
        twilio_account_sid: args.twilio_account_sid,
        twilio_auth_token: args.twilio_auth_token,
        callback_delay: Duration::from_millis(args.callback_delay_ms),
        callback_jitter: Duration::from_millis(args.callback_jitter_ms),
        status_delay: Duration::from_millis(args.status_delay_ms),
        mix: OutcomeMix {
            delivered_ppm: 1_000_000u32
                .saturating_sub(args.failed_ppm)
                .saturating_sub(args.undeliverable_ppm)
                .saturating_sub(args.silent_ppm),
            failed_ppm: args.failed_ppm,
            undeliverable_ppm: args.undeliverable_ppm,
            silent_ppm: args.silent_ppm,
        },
        duplicate_ppm: args.duplicate_ppm,
        reorder_ppm: args.reorder_ppm,
        intermediate: args.intermediate,
        inbound_generic_url: args.inbound_generic_url,
        inbound_twilio_url: args.inbound_twilio_url,
        faults: Faults {
            latency_ms: args.latency_ms,
            rate_limit_per_sec: args.rate_limit_per_sec,
            ..Faults::default()
        },
        ..SimConfig::default()
    };
    let sim = pcn_carrier_sim::spawn(config, args.bind).await?;
    tracing::info!(
        addr = %sim.addr,
        seed = args.seed,
        callback_delay_ms = args.callback_delay_ms,
        "carrier simulator listening"
    );
    shutdown_signal()
        .await
        .context("waiting for a shutdown signal")?;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
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
