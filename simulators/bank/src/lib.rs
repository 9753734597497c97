//! Core-banking simulator for the Premium Customer Notification System.
//!
//! A real HTTP server implementing the balance API of `docs/requirements.md#bank-api`:
//!
//! ```text
//! GET /api/v1/accounts/{accountId}/balance?asOfDate=YYYY-MM-DD[&asOfTime=HH:MM:SS]
//! X-API-Key: <key>            (or, when configured, Authorization: Bearer <token>)
//! ```
//!
//! Plain HTTP by default; with [`SimConfig::tls`] it serves HTTPS, and with a client CA it
//! requires mutual TLS: a client without a certificate signed by that CA fails the handshake,
//! and one with such a certificate needs no API key.
//!
//! Every balance is a pure function of a seed, the account index and the date (see
//! [`Scenario`]), so tests can compute the expected qualified set on their own, e.g. with
//! [`Scenario::qualified_accounts`]. Faults (latency, jitter, 500/503 rates, hangs, outages, a
//! rotated API key) are adjustable at runtime through the [`SimHandle`] or the admin endpoints:
//!
//! | endpoint | purpose |
//! | --- | --- |
//! | `GET /admin/faults`, `PUT /admin/faults` | read / merge-update [`Faults`] (JSON) |
//! | `POST /admin/outage?seconds=N`, `DELETE /admin/outage` | 503 for N seconds / end it |
//! | `GET /admin/stats[?accountId=&asOfDate=]`, `DELETE /admin/stats` | [`Stats`] / reset |
//! | `GET /health` | liveness |
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = pcn_bank_sim::spawn(Default::default(), "127.0.0.1:0".parse()?).await?;
//! let url = format!("{}/api/v1/accounts/{}/balance?asOfDate=2026-10-05",
//!     sim.base_url(), pcn_bank_sim::account_id(42));
//! // ... call `url` with `X-API-Key: dev-bank-key` ...
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `ids`: account and customer ids ↔ population index ([`account_id`], [`parse_account_index`]).
//! - `scenario`: [`Profile`], [`ProfileMix`], [`SimOutcome`] and the deterministic [`Scenario`].
//! - `faults`: injectable [`Faults`].
//! - `stats`: request counters ([`Stats`]), atomics plus sharded maps.
//! - `server`: the axum server, [`spawn`], [`SimHandle`], [`SimConfig`].
//! - `tls`: HTTPS and mutual TLS ([`SimTls`]).
//! - `hash`: the splitmix64 hashing that stands in for a random number generator.
//! - `main.rs`: the thin `pcn-bank-sim` binary.

mod faults;
mod hash;
mod ids;
mod scenario;
mod server;
mod stats;
mod tls;

pub use faults::Faults;
pub use ids::{account_id, customer_id, parse_account_index};
pub use scenario::{
    Profile, ProfileMix, Scenario, SimOutcome, THRESHOLD, days_in_month, month_days,
};
pub use server::{DEFAULT_AS_OF_TIME, SimConfig, SimHandle, spawn};
pub use stats::Stats;
pub use tls::SimTls;
