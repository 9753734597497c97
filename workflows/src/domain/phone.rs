//! Phone numbers: [`Phone`], normalised to E.164 and masked wherever it is printed.

use std::fmt;

use super::DomainError;

/// A phone number in E.164 form (`"+"` then digits), ready to hand to the SMS gateway.
///
/// There is intentionally no `Display`: a phone number is personal data, and `Debug` prints
/// only the masked form, so neither `{}` nor `?phone` in a log line can leak it. Use
/// [`Phone::as_e164`] where the real number is genuinely needed.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Longest input considered; anything longer cannot be a phone number even with separators,
    /// and the cap keeps hostile input from costing anything.
    const MAX_INPUT_LEN: usize = 40;

    /// Accepts Israeli mobile numbers in local formats ("050-123-4567", "0501234567",
    /// "050 1234567", "(050) 123-4567"), with country code ("972501234567", "+972 50-123-4567",
    /// "+972-50-1234567", "00972501234567") and normalises them to "+9725XXXXXXXX" (Israeli
    /// mobiles: 05 then 8 digits locally, i.e. "+9725" + 8 digits).
    ///
    /// Also accepts any international E.164 number: "+" then 8..=15 digits, first digit 1-9
    /// (separators space, '-', '.', '(', ')' are stripped first; "00" prefix treated as "+").
    /// A number with +972 that is not a mobile (e.g. a landline "+97221234567") is rejected: we
    /// only text mobiles in Israel. Letters, empty, too short/long are rejected. Errors name the
    /// field "phone" and never echo the input.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        // Messages never echo the input: it is personal data and errors end up in logs.
        let err = |m: &str| DomainError::new("phone", m);
        if s.len() > Self::MAX_INPUT_LEN {
            return Err(err("too long"));
        }
        let mut plus = false;
        let mut digits = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                ' ' | '-' | '.' | '(' | ')' => {}
                '+' if !plus && digits.is_empty() => plus = true,
                '0'..='9' => digits.push(c),
                _ => {
                    return Err(err(
                        "may contain only digits, a leading '+' and the separators ' ', '-', '.', '(', ')'",
                    ));
                }
            }
        }
        if digits.is_empty() {
            return Err(err("no digits"));
        }

        let international: String = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if digits.starts_with("972") {
            // Israeli customers commonly type the country code without '+'.
            digits
        } else if let Some(national) = digits.strip_prefix('0') {
            if national.len() == 9 && national.starts_with('5') {
                format!("972{national}")
            } else {
                return Err(err(
                    "not an Israeli mobile number (expected 05 followed by 8 digits)",
                ));
            }
        } else {
            return Err(err(
                "missing country code (expected a leading '+', '00' or a local 05 number)",
            ));
        };

        if !(8..=15).contains(&international.len()) {
            return Err(err("must have 8 to 15 digits including the country code"));
        }
        if international.starts_with('0') {
            return Err(err("country code cannot start with 0"));
        }
        if let Some(national) = international.strip_prefix("972")
            && !(national.len() == 9 && national.starts_with('5'))
        {
            return Err(err(
                "only Israeli mobile numbers (+972 5X XXX XXXX) can receive messages",
            ));
        }
        Ok(Self(format!("+{international}")))
    }

    /// The number in E.164 form, e.g. `"+972501234567"`.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// For logs: keeps "+" , the first 5 digits and the last 2, stars in between: "+97250*****67".
    pub fn masked(&self) -> String {
        // All characters are ASCII and there are at least 8 digits, so the slices are in bounds
        // and at least one digit is always hidden.
        let digits = &self.0[1..];
        let hidden = digits.len() - 7;
        format!(
            "+{}{}{}",
            &digits[..5],
            "*".repeat(hidden),
            &digits[digits.len() - 2..]
        )
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Phone").field(&self.masked()).finish()
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> Self {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::json_round_trip;
    use proptest::prelude::*;

    // --- Phone ---------------------------------------------------------------------------

    const ISRAELI_FORMATS: [&str; 10] = [
        "050-123-4567",
        "0501234567",
        "050 1234567",
        "(050) 123-4567",
        "972501234567",
        "+972 50-123-4567",
        "+972-50-1234567",
        "00972501234567",
        "+972501234567",
        "050.123.4567",
    ];

    #[test]
    fn phone_israeli_formats_normalise_to_e164() {
        for s in ISRAELI_FORMATS {
            assert_eq!(Phone::parse(s).unwrap().as_e164(), "+972501234567", "{s:?}");
        }
    }

    #[test]
    fn phone_international_numbers() {
        assert_eq!(
            Phone::parse("+1 (212) 555-0123").unwrap().as_e164(),
            "+12125550123"
        );
        assert_eq!(
            Phone::parse("0044 20 7946 0958").unwrap().as_e164(),
            "+442079460958"
        );
        assert_eq!(Phone::parse("+12345678").unwrap().as_e164(), "+12345678"); // 8 digits
        assert_eq!(
            Phone::parse("+123456789012345").unwrap().as_e164(),
            "+123456789012345"
        ); // 15 digits
    }

    #[test]
    fn phone_rejects_invalid() {
        for s in [
            "",
            "   ",
            "+",
            "abc",
            "050-123-456a",
            "+97221234567",   // Jerusalem landline
            "021234567",      // local landline
            "+9725012345678", // Israeli mobile, one digit too many
            "+97250123456",   // one digit too few
            "050123456",
            "05012345678",
            "+1234567",          // 7 digits
            "+1234567890123456", // 16 digits
            "+0123456789",
            "+00972501234567",
            "12125550123", // no country code marker
            "050+1234567",
            "++972501234567",
            "+972_50_123_4567",
            "+972 50 123 4567\n",
            "0\u{0665}01234567", // Arabic-Indic digit
        ] {
            let err = Phone::parse(s).expect_err(s);
            assert_eq!(err.field, "phone", "{s:?}");
        }
    }

    #[test]
    fn phone_errors_do_not_echo_the_number() {
        let err = Phone::parse("+97221234567").unwrap_err().to_string();
        assert!(!err.contains("21234567"), "{err}");
    }

    #[test]
    fn phone_masking() {
        let p = Phone::parse("050-123-4567").unwrap();
        assert_eq!(p.masked(), "+97250*****67");
        assert!(!p.masked().contains("12345"));
        assert_eq!(format!("{p:?}"), "Phone(\"+97250*****67\")");
        assert_eq!(Phone::parse("+12345678").unwrap().masked(), "+12345*78");
    }

    #[test]
    fn phone_serde_uses_full_number() {
        let p = Phone::parse("050-123-4567").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+972501234567\"");
        assert_eq!(json_round_trip(&p), p);
        assert_eq!(String::from(p.clone()), "+972501234567");
        assert_eq!(Phone::try_from("0501234567".to_owned()).unwrap(), p);
        assert!(serde_json::from_str::<Phone>("\"+97221234567\"").is_err());
    }

    // --- Properties ----------------------------------------------------------------------

    proptest! {
        #[test]
        fn prop_israeli_mobile_suffix_parses(suffix in "[0-9]{8}") {
            let expected = format!("+9725{suffix}");
            for s in [
                format!("05{suffix}"),
                format!("05{}-{}", &suffix[..1], &suffix[1..]),
                format!("+972 5{suffix}"),
                format!("009725{suffix}"),
                format!("9725{suffix}"),
            ] {
                let p = Phone::parse(&s).unwrap();
                prop_assert_eq!(p.as_e164(), expected.as_str());
                let masked = p.masked();
                prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 7);
                prop_assert_eq!(&masked, &format!("+9725{}*****{}", &suffix[..1], &suffix[6..]));
                let debug = format!("{:?}", p);
                prop_assert!(!debug.contains(&expected[1..]));
            }
        }

        #[test]
        fn prop_phone_international_round_trips(digits in "[1-9][0-9]{7,14}") {
            let p = Phone::parse(&format!("+{digits}"));
            if digits.starts_with("972") {
                // Only mobiles are accepted under +972.
                prop_assert_eq!(p.is_ok(), digits.len() == 12 && digits.as_bytes()[3] == b'5');
            } else {
                let p = p.unwrap();
                prop_assert_eq!(Phone::parse(p.as_e164()).unwrap(), p.clone());
                prop_assert_eq!(json_round_trip(&p), p.clone());
                prop_assert_eq!(p.masked().len(), p.as_e164().len());
            }
        }

        #[test]
        fn prop_phone_with_letters_is_rejected(s in "[0-9 +()-]{0,8}[A-Za-z][0-9A-Za-z +()-]{0,12}") {
            prop_assert!(Phone::parse(&s).is_err());
        }
    }
}
