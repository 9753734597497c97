//! Identifiers: [`AccountId`] and [`CustomerId`], restricted to an alphabet that is safe in
//! URLs and Temporal workflow ids.

use std::fmt;
use std::str::FromStr;

use super::{DomainError, shown};

/// Longest accepted identifier, in characters (all ASCII, so also bytes).
const MAX_ID_LEN: usize = 64;

/// Checks the identifier alphabet. It is kept URL- and Temporal-workflow-id-safe so that ids
/// can be embedded in paths and composite ids (e.g. `"notify-ACC-1-2026-10"`) without escaping.
fn validate_identifier(field: &'static str, s: &str) -> Result<(), DomainError> {
    if s.is_empty() {
        return Err(DomainError::new(field, "must not be empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(DomainError::new(
            field,
            format!("longer than {MAX_ID_LEN} characters: {}", shown(s)),
        ));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(DomainError::new(
            field,
            format!("must start with a letter or digit: {}", shown(s)),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(DomainError::new(
            field,
            format!("may contain only A-Z, a-z, 0-9, '_' and '-': {}", shown(s)),
        ));
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            #[doc = concat!(
                "Parses a `", stringify!($name), "`: 1..=64 characters of `[A-Za-z0-9_-]`, ",
                "starting with a letter or digit. Errors name the field `\"", $field, "\"`."
            )]
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                validate_identifier($field, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                // Reuses the allocation; this is on the hot path of every deserialised payload.
                validate_identifier($field, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

identifier!(
    /// A bank account identifier, e.g. `"ACC-12345-67890"`.
    AccountId,
    "account_id"
);

identifier!(
    /// A customer identifier.
    CustomerId,
    "customer_id"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::json_round_trip;
    use proptest::prelude::*;

    // --- Identifiers ---------------------------------------------------------------------

    #[test]
    fn ids_accept_valid() {
        let a = AccountId::parse("ACC-12345-67890").unwrap();
        assert_eq!(a.as_str(), "ACC-12345-67890");
        assert_eq!(a.to_string(), "ACC-12345-67890");
        assert_eq!("ACC-12345-67890".parse::<AccountId>().unwrap(), a);
        assert_eq!(String::from(a.clone()), "ACC-12345-67890");
        assert_eq!(json_round_trip(&a), a);
        let c = CustomerId::parse("cust_42").unwrap();
        assert_eq!(json_round_trip(&c), c);
        assert!(AccountId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn ids_reject_invalid() {
        for s in [
            "", "-ACC", "_ACC", "ACC 1", "ACC/1", "ACC.1", "ACC\n", "ACC%2F", "ÄCC", "ACC-é",
        ] {
            assert_eq!(
                AccountId::parse(s).unwrap_err().field,
                "account_id",
                "{s:?}"
            );
            assert_eq!(
                CustomerId::parse(s).unwrap_err().field,
                "customer_id",
                "{s:?}"
            );
        }
        assert!(AccountId::parse(&"a".repeat(65)).is_err());
        assert!(serde_json::from_str::<AccountId>("\"a/b\"").is_err());
        assert!(AccountId::try_from("a b".to_owned()).is_err());
    }

    // --- Properties ----------------------------------------------------------------------

    fn valid_id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
    }

    proptest! {
        #[test]
        fn prop_ids_of_allowed_chars_parse(s in valid_id()) {
            let a = AccountId::parse(&s).unwrap();
            prop_assert_eq!(a.as_str(), s.as_str());
            prop_assert_eq!(AccountId::parse(&a.to_string()).unwrap(), a.clone());
            prop_assert_eq!(json_round_trip(&a), a);
            let c = CustomerId::parse(&s).unwrap();
            prop_assert_eq!(json_round_trip(&c), c);
        }

        #[test]
        fn prop_ids_with_slash_or_space_are_rejected(
            s in valid_id(),
            pos in any::<prop::sample::Index>(),
            bad in prop::sample::select(vec!['/', ' ']),
        ) {
            let mut s = s;
            let at = pos.index(s.len() + 1);
            s.insert(at, bad);
            prop_assert!(AccountId::parse(&s).is_err());
            prop_assert!(CustomerId::parse(&s).is_err());
        }

        #[test]
        fn prop_ids_too_long_are_rejected(s in "[A-Za-z0-9][A-Za-z0-9_-]{64,100}") {
            prop_assert!(AccountId::parse(&s).is_err());
        }
    }
}
