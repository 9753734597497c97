//! The binaries' library: everything `pcn-worker` does, testable and reused by the system tests.
//!
//! # Layout
//!
//! - [`config`]: flags and environment variables, parsed into domain types.
//! - [`telemetry`]: `tracing` set-up (pretty or JSON).
//! - [`codec`]: the payload codec (AES-256-GCM) every Temporal client and worker of ours uses.
//! - [`temporal`]: client connection, worker construction, search-attribute registration.
//! - [`months`]: start a month (or backfill one), read its progress, apply the monthly schedule.
//! - [`customers`]: an imported customer row parsed into domain types (`UpsertCustomers`).
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`webhook`]: the carrier webhook (delivery callbacks, inbound STOP).
//! - [`api`]: the gRPC control API (`pcn.v1`), its tokens and roles.
//! - [`report`]: the monthly report, computed in Postgres, and its CSV/XLSX/HTML exports.
//! - [`dispatch`]: stored delivery events → signals into the SMS workflows; the reconciler.
//! - [`gauges`]: month runs by phase and the last swept date, refreshed for the alert rules.

pub mod api;
pub mod codec;
pub mod config;
pub mod customers;
pub mod dispatch;
pub mod gauges;
pub mod http;
pub mod months;
pub mod report;
pub mod retention;
pub mod telemetry;
pub mod temporal;
pub mod tls;
pub mod webhook;
