//! SMS carrier simulator for the Premium Customer Notification System.
//!
//! A real HTTP server speaking both carrier APIs of `docs/carrier-wire.md` on one listener: the
//! generic carrier REST API (seed 002 §3) and a Twilio-compatible Messages API. It records every
//! accepted message ([`SentMessage`]), decides each one's fate ([`Outcome`]: per-phone plans set
//! with [`SimHandle::set_plan`], else a seeded [`OutcomeMix`]), answers status queries, and posts
//! signed delivery callbacks (optionally an intermediate SENT, duplicated finals, stale SENTs
//! after the final) with retries. It can also post signed inbound replies ("STOP") to our
//! webhooks ([`SimHandle::send_inbound`]).
//!
//! | endpoint | purpose |
//! | --- | --- |
//! | `POST /api/v1/messages/batch` | generic submit (Bearer auth) |
//! | `GET /api/v1/messages/{trackingId}/status` | generic status |
//! | `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` | Twilio create (Basic auth, `I-Twilio-Idempotency-Token`) |
//! | `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json` | Twilio fetch |
//! | `GET /admin/faults`, `PUT /admin/faults` | read / merge-update [`Faults`] (JSON) |
//! | `POST /admin/outage?seconds=N`, `DELETE /admin/outage` | 503 for N seconds / end it |
//! | `GET /admin/stats` | [`Stats`] plus `callbacks_in_flight` |
//! | `POST /admin/reset` | forget messages, idempotency keys, plans; zero the counters |
//! | `GET /admin/messages[?to=%2B9725…]` | recorded [`SentMessage`]s (JSON array) |
//! | `GET /admin/messages/counts` | accepted messages per phone |
//! | `PUT /admin/plans`, `DELETE /admin/plans` | set one phone's plan `{"phone", "outcomes": [Outcome…]}` / clear all |
//! | `GET /admin/callbacks`, `POST /admin/callbacks/pause`, `POST /admin/callbacks/resume` | `{"in_flight", "paused"}` |
//! | `POST /admin/inbound` | `{"api": "generic"\|"twilio", "from", "body"}` → `{"webhook_status"}` |
//! | `GET /health` | liveness |
//!
//! Every "random" choice (mix outcome, callback jitter, duplicate and reordered callbacks, ids)
//! is a splitmix64 hash of the seed and the message's idempotency key (or carrier id), so runs are
//! reproducible. Probabilities are integer parts per million.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use pcn_carrier_sim::{Outcome, SimConfig};
//! let sim = pcn_carrier_sim::spawn(SimConfig::default(), "127.0.0.1:0".parse()?).await?;
//! sim.set_plan("+972501234567", vec![Outcome::failed("21614"), Outcome::Delivered]);
//! // ... POST to {sim.base_url()}/api/v1/messages/batch with `Authorization: Bearer dev-carrier-key` ...
//! // Wait for the signed callbacks to reach our webhook, then inspect what the carrier saw.
//! sim.wait_callbacks_idle(std::time::Duration::from_secs(5)).await;
//! let attempts = sim.messages_to("+972501234567");
//! let stats = sim.stats();
//! # let _ = (attempts, stats);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `model`: [`Api`], [`Outcome`], [`OutcomeMix`], [`SentMessage`], phone helpers.
//! - `sign`: the two webhook signature schemes ([`sign_generic`], [`twilio_signature`]).
//! - `faults`: injectable [`Faults`] and the rate limiter.
//! - `stats`: counters ([`Stats`]).
//! - `callbacks`: the callback dispatcher (timing, retries, pause, concurrency bound).
//! - `server`: the axum server, [`spawn`], [`SimHandle`], [`SimConfig`].
//! - `hash`: the splitmix64 hashing that stands in for a random number generator.
//! - `main.rs`: the thin `pcn-carrier-sim` binary.

mod callbacks;
mod faults;
mod hash;
mod model;
mod server;
mod sign;
mod stats;

pub use faults::Faults;
pub use model::{
    Api, CARRIER_REJECT_CODE, INVALID_NUMBER_CODE, MIX_FAILED_CODE, MIX_UNDELIVERABLE_CODE,
    Outcome, OutcomeMix, SentMessage, is_valid_e164, mask_phone,
};
pub use server::{
    DEFAULT_TWILIO_ACCOUNT_SID, MAX_BATCH, MAX_MESSAGE_ID_LEN, SimConfig, SimHandle,
    TWILIO_API_VERSION, spawn,
};
pub use sign::{sign_generic, twilio_signature, verify_generic_signature, verify_twilio_signature};
pub use stats::Stats;
