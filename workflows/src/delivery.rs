//! The carrier-neutral vocabulary of SMS delivery: what a carrier says about a message
//! ([`DeliveryStatus`]), why a message failed ([`FailureCategory`], [`FAILURE_CODES`]) and how a
//! message is named on the wire ([`MessageRef`]).
//!
//! Both carrier adapters (generic REST and Twilio-compatible) translate their own spellings into
//! these types; the SMS workflow decides on them alone.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::{CustomerId, DomainError, YearMonth};

/// Delivery state of one submitted message as the carrier reports it (`docs/carrier-wire.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeliveryStatus {
    /// Accepted, awaiting send.
    Queued,
    /// Handed to the mobile network.
    Sent,
    /// On the handset: success, final.
    Delivered,
    /// Delivery failed; the error code says whether another attempt can help.
    Failed,
    /// The carrier gave up on the message for good (permanent failure).
    Undeliverable,
    /// The carrier has nothing to say (yet).
    NoStatus,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Sent,
        Self::Delivered,
        Self::Failed,
        Self::Undeliverable,
        Self::NoStatus,
    ];

    /// The stable spelling stored in Postgres (`delivery_events.status`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Sent => "SENT",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::Undeliverable => "UNDELIVERABLE",
            Self::NoStatus => "NO_STATUS",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::new("status", format!("unknown delivery status {s:?}")))
    }

    /// Whether this status ends the attempt (the workflow acts on it). QUEUED, SENT and
    /// NO_STATUS are progress reports: stored, never signalled.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Undeliverable)
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message did not arrive. Carrier error codes map onto it through [`FAILURE_CODES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCategory {
    /// The number cannot receive SMS (invalid, not a mobile, unknown, landline): permanent.
    InvalidNumber,
    /// The handset could not be reached this time (30003): another attempt may reach it.
    CarrierReject,
    /// Rate limited (20429): retried after a backoff.
    RateLimited,
    /// Carrier-side system error (50001–50999, 5xx, Twilio 30001/30002/30008): retried.
    ProviderError,
    /// The network did not answer (503, timeouts): retried.
    NetworkError,
    /// The carrier reported the message undeliverable without a more specific code: permanent.
    Undeliverable,
    /// No final status within the confirmation window (72 h): permanent.
    NoConfirmation,
    /// The recipient unsubscribed at the carrier (Twilio 21610, they replied STOP there): the
    /// customer is opted out and the notification ends OPTED_OUT, never retried.
    OptedOut,
    /// The carrier filtered the message for its content (Twilio 30007): permanent for this text,
    /// and flagged in the monthly report (the template needs a look, not the customer).
    ContentFiltered,
    /// A failure code this system does not know: retried (a later attempt may succeed).
    Unknown,
}

/// Every carrier error code the system classifies, with what it means: one table, used by both
/// carrier adapters and the SMS workflow. The codes are Twilio's (the generic carrier uses the
/// same numbers); anything else is [`FailureCategory::Unknown`] and retried.
pub const FAILURE_CODES: &[(u32, FailureCategory, &str)] = &[
    (
        21211,
        FailureCategory::InvalidNumber,
        "invalid 'To' phone number",
    ),
    (
        21614,
        FailureCategory::InvalidNumber,
        "'To' number is not a mobile number",
    ),
    (
        30005,
        FailureCategory::InvalidNumber,
        "unknown destination handset",
    ),
    (
        30006,
        FailureCategory::InvalidNumber,
        "landline or unreachable carrier",
    ),
    (
        21610,
        FailureCategory::OptedOut,
        "recipient unsubscribed (replied STOP)",
    ),
    (
        30007,
        FailureCategory::ContentFiltered,
        "message filtered by the carrier",
    ),
    (
        30003,
        FailureCategory::CarrierReject,
        "unreachable destination handset",
    ),
    (
        30001,
        FailureCategory::ProviderError,
        "carrier queue overflow",
    ),
    (
        30002,
        FailureCategory::ProviderError,
        "account suspended at the carrier",
    ),
    (
        30008,
        FailureCategory::ProviderError,
        "unknown error at the carrier",
    ),
    (20429, FailureCategory::RateLimited, "too many requests"),
    (
        429,
        FailureCategory::RateLimited,
        "too many requests (HTTP)",
    ),
    (
        500,
        FailureCategory::ProviderError,
        "carrier internal error (HTTP)",
    ),
    (
        501,
        FailureCategory::ProviderError,
        "carrier internal error (HTTP)",
    ),
    (
        502,
        FailureCategory::ProviderError,
        "carrier gateway error (HTTP)",
    ),
    (
        504,
        FailureCategory::ProviderError,
        "carrier gateway timeout (HTTP)",
    ),
    (503, FailureCategory::NetworkError, "network unavailable"),
];

impl FailureCategory {
    /// Every category.
    pub const ALL: [Self; 10] = [
        Self::InvalidNumber,
        Self::CarrierReject,
        Self::RateLimited,
        Self::ProviderError,
        Self::NetworkError,
        Self::Undeliverable,
        Self::NoConfirmation,
        Self::OptedOut,
        Self::ContentFiltered,
        Self::Unknown,
    ];

    /// The stable spelling stored in Postgres (`notifications.failure_category`,
    /// `sms_attempts.failure_category`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidNumber => "INVALID_NUMBER",
            Self::CarrierReject => "CARRIER_REJECT",
            Self::RateLimited => "RATE_LIMITED",
            Self::ProviderError => "PROVIDER_ERROR",
            Self::NetworkError => "NETWORK_ERROR",
            Self::Undeliverable => "UNDELIVERABLE",
            Self::NoConfirmation => "NO_CONFIRMATION",
            Self::OptedOut => "OPTED_OUT",
            Self::ContentFiltered => "CONTENT_FILTERED",
            Self::Unknown => "UNKNOWN",
        }
    }

    /// Whether another attempt (after the retry delay) can help.
    pub fn is_retryable(self) -> bool {
        !matches!(
            self,
            Self::InvalidNumber
                | Self::Undeliverable
                | Self::NoConfirmation
                | Self::OptedOut
                | Self::ContentFiltered
        )
    }

    /// Classifies a carrier error code through [`FAILURE_CODES`] (provider errors 50001–50999
    /// of the generic carrier are a range).
    pub fn from_code(code: Option<&str>) -> Self {
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Self::Unknown;
        };
        let Ok(code) = code.parse::<u32>() else {
            return Self::Unknown;
        };
        if (50001..=50999).contains(&code) {
            return Self::ProviderError;
        }
        FAILURE_CODES
            .iter()
            .find(|(c, ..)| *c == code)
            .map_or(Self::Unknown, |(_, category, _)| *category)
    }
}

impl fmt::Display for FailureCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Our name for one submission attempt of one notification, sent to the carrier as the message id
/// (generic) or callback reference (Twilio) and as the idempotency key: `sms/YYYY-MM/<customer>#N`.
/// A callback carrying it leads straight to the workflow id and attempt, with no database lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageRef {
    /// The month of the notification.
    pub month: YearMonth,
    /// The customer notified.
    pub customer: CustomerId,
    /// Attempt number, from 1.
    pub attempt: u32,
}

impl MessageRef {
    /// Highest attempt number a reference may carry (3 automatic attempts plus manual retries;
    /// also the bound of `sms_attempts.attempt`).
    pub const MAX_ATTEMPT: u32 = 999;

    /// The SMS workflow id this message belongs to.
    pub fn workflow_id(&self) -> String {
        notification_workflow_id(self.month, &self.customer)
    }

    /// Parses `sms/YYYY-MM/<customer>#N` (field `ref`).
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::new("ref", "expected sms/YYYY-MM/<customer>#<attempt>");
        let rest = s.strip_prefix("sms/").ok_or_else(bad)?;
        let (month, rest) = rest.split_once('/').ok_or_else(bad)?;
        let (customer, attempt) = rest.rsplit_once('#').ok_or_else(bad)?;
        let text = attempt;
        let attempt: u32 = attempt.parse().map_err(|_| bad())?;
        // Canonical digits only ("+1" and "01" would name attempt 1 a second way).
        if attempt == 0 || attempt > Self::MAX_ATTEMPT || attempt.to_string() != text {
            return Err(bad());
        }
        Ok(Self {
            month: YearMonth::parse(month).map_err(|_| bad())?,
            customer: CustomerId::parse(customer).map_err(|_| bad())?,
            attempt,
        })
    }
}

impl fmt::Display for MessageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sms/{}/{}#{}",
            self.month,
            self.customer.as_str(),
            self.attempt
        )
    }
}

impl TryFrom<String> for MessageRef {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MessageRef> for String {
    fn from(value: MessageRef) -> Self {
        value.to_string()
    }
}

/// The SMS workflow id of a customer-month: `sms/YYYY-MM/<customer>`, the business key that makes
/// a second start of the same notification impossible.
pub fn notification_workflow_id(month: YearMonth, customer: &CustomerId) -> String {
    format!("sms/{month}/{}", customer.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ref_round_trips() {
        let r = MessageRef {
            month: YearMonth::parse("2026-10").unwrap(),
            customer: CustomerId::parse("C0000000042").unwrap(),
            attempt: 3,
        };
        assert_eq!(r.to_string(), "sms/2026-10/C0000000042#3");
        assert_eq!(MessageRef::parse(&r.to_string()).unwrap(), r);
        assert_eq!(r.workflow_id(), "sms/2026-10/C0000000042");
    }

    #[test]
    fn message_ref_refuses_garbage() {
        for bad in [
            "",
            "sms/2026-10/C1",
            "sms/2026-13/C1#1",
            "sms/2026-10/C1#0",
            "sms/2026-10/C1#x",
            "sms/2026-10/C1#1000",
            "sms/2026-10/C1#99999",
            "sms/2026-10/C1#+1",
            "sms/2026-10/C1#01",
            "x/2026-10/C1#1",
            "sms/2026-10/bad id#1",
        ] {
            assert!(MessageRef::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn failure_codes_follow_their_meaning() {
        use FailureCategory as C;
        // Permanent: the number cannot take SMS.
        for code in ["21211", "21614", "30005", "30006"] {
            assert_eq!(C::from_code(Some(code)), C::InvalidNumber, "{code}");
            assert!(!C::from_code(Some(code)).is_retryable(), "{code}");
        }
        // Unsubscribed at the carrier: opted out, never retried.
        assert_eq!(C::from_code(Some("21610")), C::OptedOut);
        assert!(!C::OptedOut.is_retryable());
        // Filtered for content: permanent for this text.
        assert_eq!(C::from_code(Some("30007")), C::ContentFiltered);
        assert!(!C::ContentFiltered.is_retryable());
        // Retryable: unreachable handset, unknown carrier error, rate limits, provider errors.
        for (code, category) in [
            ("30003", C::CarrierReject),
            ("30008", C::ProviderError),
            ("20429", C::RateLimited),
            ("50777", C::ProviderError),
            ("503", C::NetworkError),
            (" 30003 ", C::CarrierReject),
        ] {
            assert_eq!(C::from_code(Some(code)), category, "{code}");
            assert!(category.is_retryable(), "{code}");
        }
        assert_eq!(C::from_code(None), C::Unknown);
        assert_eq!(C::from_code(Some("")), C::Unknown);
        assert_eq!(C::from_code(Some("SM12")), C::Unknown);
        assert_eq!(C::from_code(Some("99999")), C::Unknown);
        assert!(C::Unknown.is_retryable());
    }

    #[test]
    fn the_code_table_names_each_code_once() {
        let mut codes: Vec<u32> = FAILURE_CODES.iter().map(|(c, ..)| *c).collect();
        let n = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), n, "a code listed twice");
        for (code, category, meaning) in FAILURE_CODES {
            assert_eq!(
                FailureCategory::from_code(Some(&code.to_string())),
                *category
            );
            assert!(!meaning.is_empty());
        }
    }

    #[test]
    fn statuses_round_trip_and_only_outcomes_are_final() {
        for s in [
            "QUEUED",
            "SENT",
            "DELIVERED",
            "FAILED",
            "UNDELIVERABLE",
            "NO_STATUS",
        ] {
            assert_eq!(DeliveryStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(DeliveryStatus::parse("delivered").is_err());
        assert!(DeliveryStatus::Delivered.is_final());
        assert!(!DeliveryStatus::Sent.is_final());
    }
}
