//! The binaries' library: everything `pcn-worker` does, testable and reused by the system tests.
//!
//! # Layout
//!
//! - [`config`]: flags and environment variables, parsed into domain types.
//! - [`telemetry`]: `tracing` set-up (pretty or JSON).
//! - [`temporal`]: client connection, worker construction, search-attribute registration.
//! - [`months`]: start a month (or backfill one), read its progress, apply the monthly schedule.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.

pub mod config;
pub mod customers;
pub mod http;
pub mod months;
pub mod telemetry;
pub mod temporal;
