//! `pcn-bank-sim`: runs the core-banking simulator until Ctrl-C or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use pcn_bank_sim::{Faults, ProfileMix, SimConfig, SimTls};
use tracing_subscriber::EnvFilter;

/// Core-banking simulator (balance API of docs/requirements.md#bank-api).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "BANK_SIM_BIND", default_value = "127.0.0.1:8081")]
    bind: SocketAddr,
    /// Seed of every pseudo-random choice.
    #[arg(long, env = "BANK_SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Number of accounts (indices 0..N).
    #[arg(long, env = "BANK_SIM_ACCOUNTS", default_value_t = 1000)]
    accounts: u64,
    /// The X-API-Key clients must send.
    #[arg(
        long,
        env = "BANK_SIM_API_KEY",
        default_value = "dev-bank-key",
        hide_env_values = true
    )]
    api_key: String,
    /// A token also accepted as `Authorization: Bearer <token>` (unset: API key only).
    #[arg(long, env = "BANK_SIM_BEARER_TOKEN", hide_env_values = true)]
    bearer_token: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with `--tls-key`).
    #[arg(long, env = "BANK_SIM_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "BANK_SIM_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Require mutual TLS: clients must present a certificate signed by a CA of this PEM bundle
    /// (then no API key is needed). Needs `--tls-cert`.
    #[arg(long, env = "BANK_SIM_CLIENT_CA", requires = "tls_cert")]
    client_ca: Option<std::path::PathBuf>,
    /// Profile weights, e.g. `premium=40,boundary=5,dipper=10,regular=40,unknown=2,data_quality=3`.
    #[arg(long, env = "BANK_SIM_MIX", default_value_t = ProfileMix::default())]
    mix: ProfileMix,
    /// Milliseconds added to every balance request.
    #[arg(long, env = "BANK_SIM_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
    /// Extra random delay in 0..N milliseconds.
    #[arg(long, env = "BANK_SIM_JITTER_MS", default_value_t = 0)]
    jitter_ms: u64,
    /// Probability of a 503 per request, in parts per million.
    #[arg(long, env = "BANK_SIM_ERROR_503_PPM", default_value_t = 0)]
    error_503_ppm: u32,
    /// Probability of a 500 per request, in parts per million.
    #[arg(long, env = "BANK_SIM_ERROR_500_PPM", default_value_t = 0)]
    error_500_ppm: u32,
    /// Instead of serving, write the simulated customers (one per account) as the CSV that
    /// `pcnctl customer import` reads, to this path, and exit.
    #[arg(long)]
    customers_csv: Option<std::path::PathBuf>,
    /// `monitored_since` of the customers written by `--customers-csv`.
    #[arg(long, default_value = "2020-01-01")]
    monitored_since: String,
}

/// Deterministic customers matching the simulated accounts: names and languages vary, phones are
/// unique Israeli mobiles in local format (the importer normalises them to E.164).
fn customers_csv(accounts: u64, monitored_since: &str) -> String {
    const NAMES: [(&str, &str); 8] = [
        ("Dana", "he"),
        ("Yossi", "he"),
        ("Noa", "he"),
        ("Omar", "ar"),
        ("Lina", "ar"),
        ("Olga", "ru"),
        ("Sam", "en"),
        ("Avi", "he"),
    ];
    let mut out =
        String::from("customer_id,account_id,first_name,phone,language,monitored_since\n");
    for i in 0..accounts {
        let (name, language) = NAMES[(i % 8) as usize];
        let phone = format!("05{}-{:07}", (i / 10_000_000) % 10, i % 10_000_000);
        out.push_str(&format!(
            "{},{},{name},{phone},{language},{monitored_since}\n",
            pcn_bank_sim::customer_id(i),
            pcn_bank_sim::account_id(i)
        ));
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if let Some(path) = &args.customers_csv {
        std::fs::write(path, customers_csv(args.accounts, &args.monitored_since))
            .with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), accounts = args.accounts, "customers written");
        return Ok(());
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(SimTls {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            client_ca_pem: args.client_ca.as_deref().map(read).transpose()?,
        }),
        _ => None,
    };
    let config = SimConfig {
        seed: args.seed,
        accounts: args.accounts,
        mix: args.mix,
        api_key: args.api_key,
        faults: Faults {
            latency_ms: args.latency_ms,
            jitter_ms: args.jitter_ms,
            error_503_ppm: args.error_503_ppm,
            error_500_ppm: args.error_500_ppm,
            ..Faults::default()
        },
        bearer_token: args.bearer_token,
        tls,
    };
    let sim = pcn_bank_sim::spawn(config, args.bind).await?;
    tracing::info!(
        addr = %sim.addr,
        seed = args.seed,
        accounts = args.accounts,
        mix = %args.mix,
        url = %sim.base_url(),
        mutual_tls = args.client_ca.is_some(),
        "bank simulator listening"
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
