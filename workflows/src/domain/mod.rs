//! Domain primitives of the Premium Customer Notification System.
//!
//! Every value that crosses a boundary (HTTP, database, Temporal payloads, configuration) is
//! parsed into one of these types exactly once. After that the type itself is the proof that the
//! value is valid, so workflow code never re-checks formats and never sees a malformed month, a
//! fractional cent or an un-normalised phone number ("parse, don't validate").
//!
//! All types serialise as plain strings and deserialise through the same fallible constructors,
//! so a corrupted or hand-edited payload is rejected instead of smuggling an invalid value in.
//!
//! Nothing here reads the clock or any other ambient state: workflow code must stay
//! deterministic under Temporal replay, and time always comes in as an explicit argument.
//!
//! One file per concept, every type re-exported here so that it is named `domain::X`:
//! `calendar` ([`YearMonth`], [`BusinessDate`], [`JERUSALEM`]), `money` ([`Nis`]), `phone`
//! ([`Phone`]), `ids` ([`AccountId`], [`CustomerId`]) and `language` ([`Language`]).

/// Error for any value rejected at the boundary; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct DomainError {
    /// Name of the rejected field as the outside world knows it (e.g. `"month"`).
    pub field: &'static str,
    /// Human-readable reason for the rejection.
    pub message: String,
}

impl DomainError {
    /// Creates an error for `field` with a human-readable `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Quotes rejected input for error messages, bounded so that a hostile multi-megabyte value
/// cannot bloat logs or API responses.
pub(crate) fn shown(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    if s.chars().count() <= MAX_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    }
}

/// Implements `FromStr`, `TryFrom<String>` and `From<T> for String` in terms of `T::parse` and
/// `Display`, so that serde, `str::parse` and the inherent constructor can never disagree.
macro_rules! string_conversions_via_display {
    ($ty:ty) => {
        impl FromStr for $ty {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.to_string()
            }
        }
    };
}

// Declared after `string_conversions_via_display!`, which they use: a `macro_rules!` macro is
// only in scope below its definition.
mod calendar;
mod ids;
mod language;
mod money;
mod phone;

pub(crate) use calendar::MONTH_NAMES;
pub use calendar::{BusinessDate, JERUSALEM, YearMonth};
pub use ids::{AccountId, CustomerId};
pub use language::Language;
pub use money::Nis;
pub use phone::Phone;

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared by the tests of every domain type.
    pub(super) fn json_round_trip<T>(value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    // --- DomainError ---------------------------------------------------------------------

    #[test]
    fn error_message_names_the_field() {
        let e = DomainError::new("month", "bad");
        assert_eq!(e.to_string(), "invalid month: bad");
    }

    #[test]
    fn every_type_names_its_field_in_errors() {
        let cases = [
            (YearMonth::parse("2026-13").unwrap_err(), "month"),
            (BusinessDate::parse("2026-02-30").unwrap_err(), "date"),
            (Nis::parse("1e5").unwrap_err(), "amount"),
            (Nis::parse_threshold("0").unwrap_err(), "threshold"),
            (Nis::parse_threshold("abc").unwrap_err(), "threshold"),
            (Phone::parse("abc").unwrap_err(), "phone"),
            (AccountId::parse("a/b").unwrap_err(), "account_id"),
            (CustomerId::parse("").unwrap_err(), "customer_id"),
            (Language::parse("fr").unwrap_err(), "language"),
        ];
        for (err, field) in cases {
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn long_input_is_truncated_in_error_messages() {
        let huge = "x".repeat(10_000);
        assert!(YearMonth::parse(&huge).unwrap_err().to_string().len() < 200);
        assert!(AccountId::parse(&huge).unwrap_err().to_string().len() < 200);
    }
}
