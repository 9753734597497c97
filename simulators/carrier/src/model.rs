//! What the simulator records and decides: the two APIs, the outcome of a message, the default
//! outcome mix and the recorded [`SentMessage`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The error code a message drawn as failed from the [`OutcomeMix`] carries (unreachable handset,
/// retried by the workflow).
pub const MIX_FAILED_CODE: &str = "30003";
/// The error code a message drawn as undeliverable from the [`OutcomeMix`] carries (the number
/// cannot receive SMS).
pub const MIX_UNDELIVERABLE_CODE: &str = "21211";
/// Error code of a synchronous invalid-number rejection.
pub const INVALID_NUMBER_CODE: &str = "21211";
/// Error code of a synchronous carrier rejection.
pub const CARRIER_REJECT_CODE: &str = "21614";
/// Error code of a synchronous rejection because the recipient unsubscribed (replied STOP).
pub const UNSUBSCRIBED_CODE: &str = "21610";
/// Error code of a message the carrier's content filter blocked (ends undeliverable:
/// [`Outcome::content_filtered`]).
pub const CONTENT_FILTERED_CODE: &str = "30007";

/// Which of the two wire APIs a message came through (see `docs/carrier-wire.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// The generic carrier REST API (`/api/v1/messages/batch`, JSON, Bearer auth).
    Generic,
    /// The Twilio-compatible Messages API (form-encoded, Basic auth).
    Twilio,
}

/// What happens to one submission.
///
/// JSON form (admin endpoints): `{"outcome": "delivered"}`, `{"outcome": "failed", "code":
/// "21614"}`, `{"outcome": "undeliverable", "code": "30005"}`, `{"outcome": "silent"}`,
/// `{"outcome": "reject_invalid_number"}`, `{"outcome": "reject_carrier"}`,
/// `{"outcome": "reject_unsubscribed"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Accepted, then DELIVERED / `delivered`.
    Delivered,
    /// Accepted, then FAILED / `failed` with this error code.
    Failed {
        /// The carrier error code (`statusCode`, Twilio `ErrorCode`).
        code: String,
    },
    /// Accepted, then UNDELIVERABLE / `undelivered` with this error code.
    Undeliverable {
        /// The carrier error code (`statusCode`, Twilio `ErrorCode`).
        code: String,
    },
    /// Accepted, then nothing: no callback ever, and the status stays SENT / `sent`.
    Silent,
    /// Rejected at submit as an invalid number (generic `REJECTED` 21211, Twilio 400 21211); not
    /// recorded as a message.
    RejectInvalidNumber,
    /// Rejected at submit by the carrier (generic `REJECTED` 21614, Twilio 400 21614); not
    /// recorded as a message.
    RejectCarrier,
    /// Rejected at submit because the recipient unsubscribed (generic `REJECTED` 21610, Twilio
    /// 400 21610 "Attempt to send to unsubscribed recipient"); not recorded as a message.
    RejectUnsubscribed,
}

impl Outcome {
    /// `Failed { code }`.
    pub fn failed(code: impl Into<String>) -> Self {
        Self::Failed { code: code.into() }
    }

    /// `Undeliverable { code }`.
    pub fn undeliverable(code: impl Into<String>) -> Self {
        Self::Undeliverable { code: code.into() }
    }

    /// `Undeliverable` with [`CONTENT_FILTERED_CODE`] (Twilio 30007, "message filtered").
    pub fn content_filtered() -> Self {
        Self::undeliverable(CONTENT_FILTERED_CODE)
    }

    /// Whether the submission is refused synchronously.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Self::RejectInvalidNumber | Self::RejectCarrier | Self::RejectUnsubscribed
        )
    }

    /// The human-readable reason of a synchronous rejection (generic `errorMessage`; Twilio's
    /// `message` where it does not name the number).
    pub fn rejection_message(&self) -> Option<&'static str> {
        match self {
            Self::RejectInvalidNumber => Some("Invalid phone number"),
            Self::RejectCarrier => Some("Rejected by the carrier"),
            Self::RejectUnsubscribed => Some("Attempt to send to unsubscribed recipient"),
            Self::Delivered | Self::Failed { .. } | Self::Undeliverable { .. } | Self::Silent => {
                None
            }
        }
    }

    /// The status an accepted message ends in, generic spelling (`SENT` for [`Outcome::Silent`],
    /// `REJECTED` for rejections).
    pub fn generic_status(&self) -> &'static str {
        match self {
            Self::Delivered => "DELIVERED",
            Self::Failed { .. } => "FAILED",
            Self::Undeliverable { .. } => "UNDELIVERABLE",
            Self::Silent => "SENT",
            Self::RejectInvalidNumber | Self::RejectCarrier | Self::RejectUnsubscribed => {
                "REJECTED"
            }
        }
    }

    /// The status an accepted message ends in, Twilio spelling (`sent` for [`Outcome::Silent`],
    /// `failed` for rejections).
    pub fn twilio_status(&self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed { .. }
            | Self::RejectInvalidNumber
            | Self::RejectCarrier
            | Self::RejectUnsubscribed => "failed",
            Self::Undeliverable { .. } => "undelivered",
            Self::Silent => "sent",
        }
    }

    /// The error code of a failure or rejection.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Failed { code } | Self::Undeliverable { code } => Some(code),
            Self::RejectInvalidNumber => Some(INVALID_NUMBER_CODE),
            Self::RejectCarrier => Some(CARRIER_REJECT_CODE),
            Self::RejectUnsubscribed => Some(UNSUBSCRIBED_CODE),
            Self::Delivered | Self::Silent => None,
        }
    }
}

/// The default outcome of a new submission when its phone has no plan, in parts per million.
///
/// A submission draws `h % 1_000_000` from a hash of the seed and its idempotency key: below
/// `failed_ppm` it fails ([`MIX_FAILED_CODE`]), then `undeliverable_ppm`
/// ([`MIX_UNDELIVERABLE_CODE`]), then `silent_ppm`; everything else (`delivered_ppm` and any
/// remainder) is delivered. The default is 100 % delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutcomeMix {
    /// Share delivered (informational: delivered also takes whatever the others leave).
    pub delivered_ppm: u32,
    /// Share failed.
    pub failed_ppm: u32,
    /// Share undeliverable.
    pub undeliverable_ppm: u32,
    /// Share silent (never a callback, status stays SENT).
    pub silent_ppm: u32,
}

impl Default for OutcomeMix {
    fn default() -> Self {
        Self {
            delivered_ppm: 1_000_000,
            failed_ppm: 0,
            undeliverable_ppm: 0,
            silent_ppm: 0,
        }
    }
}

impl OutcomeMix {
    /// The outcome for the hash word `h`.
    pub fn pick(&self, h: u64) -> Outcome {
        let r = h % 1_000_000;
        let failed = u64::from(self.failed_ppm);
        let undeliverable = failed + u64::from(self.undeliverable_ppm);
        let silent = undeliverable + u64::from(self.silent_ppm);
        if r < failed {
            Outcome::failed(MIX_FAILED_CODE)
        } else if r < undeliverable {
            Outcome::undeliverable(MIX_UNDELIVERABLE_CODE)
        } else if r < silent {
            Outcome::Silent
        } else {
            Outcome::Delivered
        }
    }
}

/// One message the simulator accepted (synchronous rejections are not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The carrier's id: the generic `trackingId` or the Twilio `sid` (`SM…`).
    pub carrier_id: String,
    /// The API it came through.
    pub api: Api,
    /// The generic `messageId` or the Twilio `I-Twilio-Idempotency-Token`, if any.
    pub idempotency_key: Option<String>,
    /// Recipient, E.164.
    pub to: String,
    /// Twilio `From` (absent for the generic API and with `MessagingServiceSid`).
    pub from: Option<String>,
    /// The text.
    pub body: String,
    /// Generic `callbackUrl` / Twilio `StatusCallback`, exactly as given.
    pub callback_url: Option<String>,
    /// When the simulator accepted it (wall clock).
    pub accepted_at: DateTime<Utc>,
    /// What happens to it.
    pub outcome: Outcome,
}

/// Whether `phone` matches `^\+[1-9][0-9]{7,14}$` (E.164); anything else is rejected as an
/// invalid number (21211).
pub fn is_valid_e164(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A phone number for logs: the first 6 and last 3 characters kept, the middle starred
/// (`+972501234678` → `+97250****678`); short strings are starred whole.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() < 10 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..6].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}****{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::splitmix64;

    #[test]
    fn e164_validation_follows_the_pattern() {
        assert!(is_valid_e164("+972501234567"));
        assert!(is_valid_e164("+12345678"));
        assert!(is_valid_e164("+123456789012345"));
        assert!(!is_valid_e164("+1234567"));
        assert!(!is_valid_e164("+1234567890123456"));
        assert!(!is_valid_e164("972501234567"));
        assert!(!is_valid_e164("+0972501234567"));
        assert!(!is_valid_e164("+97250-1234567"));
        assert!(!is_valid_e164(""));
    }

    #[test]
    fn phones_are_masked_for_logs() {
        assert_eq!(mask_phone("+972501234678"), "+97250****678");
        assert_eq!(mask_phone("+1234"), "*****");
    }

    #[test]
    fn the_default_mix_always_delivers_and_shares_follow_the_ppm() {
        let all = OutcomeMix::default();
        assert!((0..1000).all(|i| all.pick(splitmix64(i)) == Outcome::Delivered));
        let mix = OutcomeMix {
            delivered_ppm: 400_000,
            failed_ppm: 300_000,
            undeliverable_ppm: 200_000,
            silent_ppm: 100_000,
        };
        let mut counts = [0u32; 4];
        for i in 0..100_000 {
            match mix.pick(splitmix64(i)) {
                Outcome::Delivered => counts[0] += 1,
                Outcome::Failed { code } => {
                    assert_eq!(code, MIX_FAILED_CODE);
                    counts[1] += 1;
                }
                Outcome::Undeliverable { .. } => counts[2] += 1,
                Outcome::Silent => counts[3] += 1,
                other => panic!("a mix never rejects: {other:?}"),
            }
        }
        for (n, expected) in counts.iter().zip([40_000, 30_000, 20_000, 10_000]) {
            assert!(n.abs_diff(expected) < 1_500, "{counts:?}");
        }
    }

    #[test]
    fn outcomes_have_a_json_form() {
        let o: Outcome = serde_json::from_str(r#"{"outcome":"failed","code":"30003"}"#).unwrap();
        assert_eq!(o, Outcome::failed("30003"));
        assert_eq!(
            serde_json::to_string(&Outcome::RejectCarrier).unwrap(),
            r#"{"outcome":"reject_carrier"}"#
        );
        assert_eq!(Outcome::Silent.twilio_status(), "sent");
        assert_eq!(
            Outcome::undeliverable("30005").generic_status(),
            "UNDELIVERABLE"
        );
    }

    #[test]
    fn an_unsubscribed_recipient_is_a_rejection_with_21610() {
        let o: Outcome = serde_json::from_str(r#"{"outcome":"reject_unsubscribed"}"#).unwrap();
        assert_eq!(o, Outcome::RejectUnsubscribed);
        assert!(o.is_rejection());
        assert_eq!(o.code(), Some("21610"));
        assert_eq!(o.generic_status(), "REJECTED");
        assert_eq!(
            o.rejection_message(),
            Some("Attempt to send to unsubscribed recipient")
        );
        assert_eq!(Outcome::Delivered.rejection_message(), None);
    }

    #[test]
    fn a_content_filtered_message_ends_undeliverable_with_30007() {
        let o = Outcome::content_filtered();
        assert_eq!(o, Outcome::undeliverable("30007"));
        assert!(!o.is_rejection());
        assert_eq!(o.generic_status(), "UNDELIVERABLE");
        assert_eq!(o.twilio_status(), "undelivered");
        assert_eq!(o.code(), Some(CONTENT_FILTERED_CODE));
    }
}
