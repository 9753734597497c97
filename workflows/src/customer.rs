//! A customer of the programme, as imported: every field already parsed.

use serde::{Deserialize, Serialize};

use crate::domain::{AccountId, BusinessDate, CustomerId, DomainError, Language, Phone};

/// A first name for the SMS greeting: 1 to 100 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FirstName(String);

impl FirstName {
    /// Parses a first name (field `first_name`); surrounding whitespace is trimmed.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(DomainError::new("first_name", "must not be empty"));
        }
        if trimmed.chars().count() > 100 {
            return Err(DomainError::new("first_name", "longer than 100 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(DomainError::new(
                "first_name",
                "contains control characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FirstName {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<FirstName> for String {
    fn from(value: FirstName) -> Self {
        value.0
    }
}

/// A monitored customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    /// The bank's customer id.
    pub customer_id: CustomerId,
    /// The monitored account.
    pub account_id: AccountId,
    /// For the greeting.
    pub first_name: FirstName,
    /// Mobile number, E.164.
    pub phone: Phone,
    /// Message language.
    pub language: Language,
    /// What the import row says about consent: `Some(true)` opts the customer out, `None` says
    /// nothing (changes nothing), `Some(false)` is refused for a customer who is opted out (only
    /// their own START reply or an admin with a reason opts them back in).
    pub opted_out: Option<bool>,
    /// Still monitored.
    pub active: bool,
    /// First monitored business date.
    pub monitored_since: BusinessDate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_first_name_is_refused_and_names_the_field() {
        let err = FirstName::parse("   ").unwrap_err();
        assert!(err.to_string().contains("first_name"));
    }

    #[test]
    fn a_first_name_is_trimmed() {
        assert_eq!(FirstName::parse("  Dana ").unwrap().as_str(), "Dana");
    }

    #[test]
    fn a_first_name_of_101_characters_is_refused() {
        assert!(FirstName::parse(&"א".repeat(101)).is_err());
        assert!(FirstName::parse(&"א".repeat(100)).is_ok());
    }
}
