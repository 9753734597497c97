//! Language: [`Language`], the customer's preferred language for messages.

use std::fmt;
use std::str::FromStr;

use super::{DomainError, shown};

/// Preferred language for messages; Hebrew is the default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Language {
    /// Hebrew (`"he"`).
    #[default]
    Hebrew,
    /// Arabic (`"ar"`).
    Arabic,
    /// English (`"en"`).
    English,
    /// Russian (`"ru"`).
    Russian,
}

impl Language {
    /// Every supported language, in a stable order.
    pub const ALL: [Self; 4] = [Self::Hebrew, Self::Arabic, Self::English, Self::Russian];

    /// Parses an ISO 639-1 code (`"he"`, `"ar"`, `"en"`, `"ru"`), ignoring ASCII case because
    /// upstream systems are inconsistent about it.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                DomainError::new(
                    "language",
                    format!("expected one of he, ar, en, ru, got {}", shown(s)),
                )
            })
    }

    /// The lower-case ISO 639-1 code, e.g. `"he"`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Hebrew => "he",
            Self::Arabic => "ar",
            Self::English => "en",
            Self::Russian => "ru",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

string_conversions_via_display!(Language);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::json_round_trip;

    // --- Language ------------------------------------------------------------------------

    #[test]
    fn language_codes() {
        assert_eq!(Language::default(), Language::Hebrew);
        for (s, l) in [
            ("he", Language::Hebrew),
            ("AR", Language::Arabic),
            ("En", Language::English),
            ("rU", Language::Russian),
        ] {
            assert_eq!(Language::parse(s).unwrap(), l);
        }
        for l in Language::ALL {
            assert_eq!(l.code().parse::<Language>().unwrap(), l);
            assert_eq!(l.to_string(), l.code());
            assert_eq!(String::from(l), l.code());
            assert_eq!(json_round_trip(&l), l);
        }
        assert_eq!(serde_json::to_string(&Language::Russian).unwrap(), "\"ru\"");
        for s in ["", "fr", "heb", " he", "Hebrew", "iw"] {
            assert!(Language::parse(s).is_err(), "{s:?}");
        }
    }
}
