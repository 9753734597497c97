//! How a simulator is set up: [`SimConfig`], its defaults (a carrier no kinder than the real
//! world) and the limits of the two APIs.

use std::time::Duration;

use crate::early;
use crate::faults::Faults;
use crate::hash::{hash_str, mix, tag};
use crate::model::{OutcomeMix, SentMessage};

/// The default (fixed, fake) Twilio account SID: `AC` and 32 hex digits.
pub const DEFAULT_TWILIO_ACCOUNT_SID: &str = "AC5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e";

/// The Twilio API version in paths and callbacks.
pub const TWILIO_API_VERSION: &str = "2010-04-01";

/// Most messages in one generic batch.
pub const MAX_BATCH: usize = 1000;

/// Longest generic `messageId`.
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// How the simulator is set up (at start, or later through
/// [`SimHandle::update_config`](crate::SimHandle::update_config)).
///
/// The [`Default`] is deliberately no kinder than a real carrier: repeated references are new
/// messages, about 2 % of final callbacks come twice and 2 % are followed by a stale SENT,
/// callbacks arrive with up to 200 ms of jitter, and 1 % of them overtake the submission's
/// answer. Tests that need a polite carrier say so explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Seed of every pseudo-random choice (outcomes, jitter, duplicates, reordering, early
    /// callbacks, ids).
    pub seed: u64,
    /// The generic API's `Authorization: Bearer <key>`.
    pub generic_api_key: String,
    /// HMAC-SHA256 key of `X-Carrier-Signature` (generic callbacks and inbound messages).
    pub webhook_secret: String,
    /// Twilio account SID (Basic auth user, path segment, `AccountSid` in callbacks).
    pub twilio_account_sid: String,
    /// Twilio auth token (Basic auth password, `X-Twilio-Signature` key).
    pub twilio_auth_token: String,
    /// Our sending number: `To` of inbound messages, and `From` of Twilio callbacks for messages
    /// sent with a `MessagingServiceSid` instead of a `From`.
    pub sender_number: String,
    /// Delay from acceptance to the final callback.
    pub callback_delay: Duration,
    /// Plus a per-message deterministic extra delay in `0..=callback_jitter`.
    pub callback_jitter: Duration,
    /// Until this long after acceptance the status API answers QUEUED / `queued` (and a Twilio
    /// message has no `date_sent`).
    pub status_delay: Duration,
    /// Outcome of new submissions to phones without a plan.
    pub mix: OutcomeMix,
    /// Probability (ppm) that the final callback is sent twice.
    pub duplicate_ppm: u32,
    /// Probability (ppm) that a stale SENT callback follows the final one.
    pub reorder_ppm: u32,
    /// Probability (ppm) that the final callback is posted right away and the submission's HTTP
    /// answer waits for it (bounded by a few seconds): the callback overtakes the answer.
    pub early_callback_ppm: u32,
    /// Answer a repeated generic `messageId` or Twilio `I-Twilio-Idempotency-Token` with the
    /// first answer and record nothing. Real carriers promise no such thing, so this is off by
    /// default: a repeat is a new message (a double send), counted in
    /// [`Stats::repeated_references`](crate::Stats::repeated_references).
    pub dedup_references: bool,
    /// How long a submission's HTTP answer is held after the submission was processed (message
    /// recorded, callbacks scheduled): a carrier slow to answer. Unlike
    /// [`Faults::latency_ms`], which delays before processing.
    pub answer_delay: Duration,
    /// Most messages in one generic batch (at most [`MAX_BATCH`]); a larger batch gets a 400.
    pub max_batch: usize,
    /// Send a SENT / `sent` callback (at half the delay) before the final one.
    pub intermediate: bool,
    /// Where [`SimHandle::send_inbound`](crate::SimHandle::send_inbound) posts generic inbound
    /// messages.
    pub inbound_generic_url: Option<String>,
    /// Where [`SimHandle::send_inbound`](crate::SimHandle::send_inbound) posts Twilio inbound
    /// messages.
    pub inbound_twilio_url: Option<String>,
    /// Most callback POSTs in flight at once (read at start only).
    pub callback_concurrency: usize,
    /// Faults in force (also changed by [`SimHandle::set_faults`](crate::SimHandle::set_faults)
    /// and friends).
    pub faults: Faults,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            generic_api_key: "dev-carrier-key".to_owned(),
            webhook_secret: "dev-webhook-secret".to_owned(),
            twilio_account_sid: DEFAULT_TWILIO_ACCOUNT_SID.to_owned(),
            twilio_auth_token: "dev-twilio-token".to_owned(),
            sender_number: "+15005550006".to_owned(),
            callback_delay: Duration::from_millis(200),
            callback_jitter: Duration::from_millis(200),
            status_delay: Duration::ZERO,
            mix: OutcomeMix::default(),
            duplicate_ppm: 20_000,
            reorder_ppm: 20_000,
            early_callback_ppm: 10_000,
            dedup_references: false,
            answer_delay: Duration::ZERO,
            max_batch: MAX_BATCH,
            intermediate: false,
            inbound_generic_url: None,
            inbound_twilio_url: None,
            callback_concurrency: 256,
            faults: Faults::default(),
        }
    }
}

impl SimConfig {
    /// Callback delay of one message: `callback_delay` plus its deterministic jitter.
    pub(crate) fn callback_delay_for(&self, carrier_id: &str) -> Duration {
        let jitter_ms = u64::try_from(self.callback_jitter.as_millis()).unwrap_or(u64::MAX);
        if jitter_ms == 0 {
            return self.callback_delay;
        }
        let extra = mix(&[self.seed, tag::JITTER, hash_str(carrier_id)]) % (jitter_ms + 1);
        self.callback_delay + Duration::from_millis(extra)
    }

    /// From acceptance to the final status of `m`: none at all when its callback is early,
    /// else [`callback_delay_for`](Self::callback_delay_for).
    pub(crate) fn final_delay(&self, m: &SentMessage) -> Duration {
        if early::is_early(self, m) {
            Duration::ZERO
        } else {
            self.callback_delay_for(&m.carrier_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_deterministic_and_bounded() {
        let cfg = SimConfig {
            callback_jitter: Duration::from_millis(100),
            ..SimConfig::default()
        };
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let id = format!("TRK{i}");
            let d = cfg.callback_delay_for(&id);
            assert_eq!(d, cfg.callback_delay_for(&id));
            assert!(d >= cfg.callback_delay && d <= cfg.callback_delay + cfg.callback_jitter);
            seen.insert(d);
        }
        assert!(seen.len() > 20, "jitter should vary: {}", seen.len());
    }

    #[test]
    fn the_default_is_no_kinder_than_a_real_carrier() {
        let cfg = SimConfig::default();
        assert!(!cfg.dedup_references);
        assert_eq!(cfg.duplicate_ppm, 20_000);
        assert_eq!(cfg.reorder_ppm, 20_000);
        assert_eq!(cfg.early_callback_ppm, 10_000);
        assert_eq!(cfg.callback_jitter, Duration::from_millis(200));
        assert_eq!(cfg.answer_delay, Duration::ZERO);
    }
}
