//! SMS carrier simulator for the Premium Customer Notification System.
//!
//! A real HTTP server speaking both carrier APIs of `docs/carrier-wire.md` on one listener: the
//! generic carrier REST API (`docs/requirements.md#carrier-api`) and a Twilio-compatible
//! Messages API. It records every accepted message ([`SentMessage`]), decides each one's fate
//! ([`Outcome`]: per-phone plans set with [`SimHandle::set_plan`], else a seeded
//! [`OutcomeMix`]), answers status queries, and posts signed delivery callbacks (optionally an
//! intermediate SENT, duplicated finals, stale SENTs after the final, finals that overtake the
//! submission's answer) with retries. It can also post signed inbound replies ("STOP") to our
//! webhooks ([`SimHandle::send_inbound`]).
//!
//! It is no kinder than a real carrier: by default ([`SimConfig::default`]) a repeated reference
//! (generic `messageId`, Twilio idempotency token) is a new message — a double send, counted in
//! [`Stats::repeated_references`] and [`SimHandle::repeated_references_by_phone`] — and some
//! callbacks come twice, stale, late or before the answer. Tests that need a polite carrier
//! configure one explicitly.
//!
//! | endpoint | purpose |
//! | --- | --- |
//! | `POST /api/v1/messages/batch` | generic submit (Bearer auth) |
//! | `GET /api/v1/messages/{trackingId}/status` | generic status |
//! | `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` | Twilio create (Basic auth) |
//! | `GET /2010-04-01/Accounts/{AccountSid}/Messages.json` | Twilio list (`To`, `From`, `DateSent`, `DateSent<`, `DateSent>`, paged) |
//! | `GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json` | Twilio fetch |
//! | `GET /admin/faults`, `PUT /admin/faults` | read / merge-update [`Faults`] (JSON) |
//! | `POST /admin/outage?seconds=N`, `DELETE /admin/outage` | 503 for N seconds / end it |
//! | `GET /admin/stats` | [`Stats`] plus `callbacks_in_flight` |
//! | `POST /admin/reset` | forget messages, references, plans; zero the counters |
//! | `GET /admin/messages[?to=%2B9725…]` | recorded [`SentMessage`]s (JSON array) |
//! | `GET /admin/messages/counts` | accepted messages per phone |
//! | `GET /admin/repeats` | `{"repeated_references", "phones": [{"phone", "repeated_references"}], "references": [{"reference", "messages"}]}` |
//! | `PUT /admin/plans`, `DELETE /admin/plans` | set one phone's plan `{"phone", "outcomes": [Outcome…]}` / clear all |
//! | `GET /admin/callbacks`, `POST /admin/callbacks/pause`, `POST /admin/callbacks/resume` | `{"in_flight", "paused"}` |
//! | `POST /admin/inbound` | `{"api": "generic"\|"twilio", "from", "body"}` → `{"webhook_status"}` |
//! | `GET /health` | liveness |
//!
//! Every "random" choice (mix outcome, callback jitter, duplicate, reordered and early
//! callbacks, ids) is a splitmix64 hash of the seed and the message's reference (or carrier id),
//! so runs are reproducible. Probabilities are integer parts per million.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use pcn_carrier_sim::{Outcome, SimConfig};
//! let sim = pcn_carrier_sim::spawn(SimConfig::default(), "127.0.0.1:0".parse()?).await?;
//! sim.set_plan("+972501234567", vec![Outcome::failed("30003"), Outcome::Delivered]);
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
//! - `config`: [`SimConfig`] and its (unkind) defaults.
//! - `sign`: the two webhook signature schemes ([`sign_generic`], [`twilio_signature`]).
//! - `faults`: injectable [`Faults`] and the rate limiter.
//! - `stats`: counters ([`Stats`]).
//! - `repeats`: messages per reference and repeats per phone.
//! - `callbacks`: the callback dispatcher (timing, retries, pause, concurrency bound).
//! - `payloads`: the signed callback and inbound bodies of both APIs.
//! - `early`: when an answer leaves (answer delay, callbacks that overtake it).
//! - `server`: shared state, [`spawn`], the router and the request gates.
//! - `generic`, `twilio`, `twilio_list`, `admin`: the endpoints, by resource.
//! - `handle`: [`SimHandle`].
//! - `hash`: the splitmix64 hashing that stands in for a random number generator.
//! - `main.rs`: the thin `pcn-carrier-sim` binary.

mod admin;
mod callbacks;
mod config;
mod early;
mod faults;
mod generic;
mod handle;
mod hash;
mod model;
mod payloads;
mod repeats;
mod server;
mod sign;
mod stats;
mod twilio;
mod twilio_list;

pub use config::{
    DEFAULT_TWILIO_ACCOUNT_SID, MAX_BATCH, MAX_MESSAGE_ID_LEN, SimConfig, TWILIO_API_VERSION,
};
pub use faults::Faults;
pub use handle::SimHandle;
pub use model::{
    Api, CARRIER_REJECT_CODE, CONTENT_FILTERED_CODE, INVALID_NUMBER_CODE, MIX_FAILED_CODE,
    MIX_UNDELIVERABLE_CODE, Outcome, OutcomeMix, SentMessage, UNSUBSCRIBED_CODE, is_valid_e164,
    mask_phone,
};
pub use server::spawn;
pub use sign::{sign_generic, twilio_signature, verify_generic_signature, verify_twilio_signature};
pub use stats::Stats;
