//! Money: [`Nis`], an exact amount of New Israeli Shekels.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{DomainError, shown};

/// An amount of New Israeli Shekels, exact to the agora (two decimal places).
///
/// Negative amounts are allowed because overdrawn accounts are real. The magnitude is kept
/// below 10^16 so every value fits the `NUMERIC(18,2)` column it is stored in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Nis(Decimal);

impl Nis {
    /// Exclusive bound on whole shekels, from `NUMERIC(18,2)`: 16 integer digits.
    const WHOLE_LIMIT: i64 = 10_000_000_000_000_000;

    /// Zero shekels.
    pub const ZERO: Self = Self::from_whole(0);

    /// Parses a plain decimal such as `"15000"`, `"15000.00"` or `"-12.5"`.
    ///
    /// Only `-?digits(.digits)?` is accepted: exponents, underscores, a leading `+` and
    /// surrounding whitespace are all rejected, as is anything finer than an agora.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = || {
            DomainError::new(
                "amount",
                format!("expected a decimal like 1234.56, got {}", shown(s)),
            )
        };
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !frac.is_none_or(all_digits) {
            return Err(bad());
        }
        let d = Decimal::from_str_exact(s)
            .map_err(|_| DomainError::new("amount", format!("{} is out of range", shown(s))))?;
        Self::from_decimal(d)
    }

    /// Wraps a decimal, rejecting sub-agora precision and magnitudes of 10^16 or more.
    ///
    /// Trailing zeros are not precision, so `15000.000` is accepted while `1.005` is not:
    /// silently rounding money is how ledgers stop balancing.
    pub fn from_decimal(d: Decimal) -> Result<Self, DomainError> {
        // `normalize` also turns -0 into 0, so "-0.00" and "0.00" are one value on the wire.
        let mut v = d.normalize();
        if v.scale() > 2 {
            return Err(DomainError::new(
                "amount",
                format!("{d} has more than 2 decimal places"),
            ));
        }
        if v.abs() >= Decimal::from(Self::WHOLE_LIMIT) {
            return Err(DomainError::new(
                "amount",
                format!("{d} does not fit NUMERIC(18,2) (|amount| must be < 10^16)"),
            ));
        }
        v.rescale(2);
        Ok(Self(v))
    }

    /// The amount, always with exactly two decimal places.
    pub fn amount(self) -> Decimal {
        self.0
    }

    /// A whole number of shekels, usable in constants (e.g. the 15,000 default threshold).
    ///
    /// # Panics
    ///
    /// If `|n| >= 10^16`; in a `const` this is a compile error.
    pub const fn from_whole(n: i64) -> Self {
        assert!(
            n > -Self::WHOLE_LIMIT && n < Self::WHOLE_LIMIT,
            "Nis::from_whole: |n| must be < 10^16"
        );
        // |n * 100| < 10^18 < 2^64, so the mantissa fits the low 64 of Decimal's 96 bits.
        let agorot = n.unsigned_abs() * 100;
        Self(Decimal::from_parts(
            (agorot & 0xFFFF_FFFF) as u32,
            (agorot >> 32) as u32,
            0,
            n < 0,
            2,
        ))
    }

    /// Parses a notification threshold: an amount as in [`Nis::parse`] that is strictly
    /// positive, because a zero or negative threshold would notify every customer.
    pub fn parse_threshold(s: &str) -> Result<Self, DomainError> {
        let v = Self::parse(s).map_err(|e| DomainError::new("threshold", e.message))?;
        if v.0 <= Decimal::ZERO {
            return Err(DomainError::new(
                "threshold",
                format!("must be > 0, got {v}"),
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for Nis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The inner value always has scale 2, so this prints exactly two decimals.
        fmt::Display::fmt(&self.0, f)
    }
}

string_conversions_via_display!(Nis);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::json_round_trip;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    // --- Nis -----------------------------------------------------------------------------

    #[test]
    fn nis_parses_plain_decimals() {
        assert_eq!(
            Nis::parse("15000").unwrap(),
            Nis::from_decimal(dec!(15000.00)).unwrap()
        );
        assert_eq!(Nis::parse("15000").unwrap(), Nis::from_whole(15_000));
        assert_eq!(Nis::parse("15000.00").unwrap().to_string(), "15000.00");
        assert_eq!(Nis::parse("-12.5").unwrap().to_string(), "-12.50");
        assert_eq!(Nis::parse("0.01").unwrap().amount(), dec!(0.01));
        assert_eq!(Nis::parse("1.230").unwrap().to_string(), "1.23");
        assert_eq!(Nis::parse("007").unwrap().to_string(), "7.00");
    }

    #[test]
    fn nis_rejects_malformed() {
        for s in [
            "1e5",
            "abc",
            "1.234",
            "",
            "-",
            ".5",
            "5.",
            "+5",
            " 5",
            "5 ",
            "1_000",
            "1,000.00",
            "--5",
            "5-",
            "NaN",
            "10000000000000000",
            "-10000000000000000",
            "99999999999999999999999999999999",
            "1.0000000000000000000000000000001",
        ] {
            let err = Nis::parse(s).expect_err(s);
            assert_eq!(err.field, "amount", "{s:?}");
        }
        assert!(Nis::parse("9999999999999999.99").is_ok());
        assert!(Nis::parse("-9999999999999999.99").is_ok());
    }

    #[test]
    fn nis_from_decimal_normalises_trailing_zeros_only() {
        assert_eq!(
            Nis::from_decimal(dec!(15000.000)).unwrap(),
            Nis::from_whole(15_000)
        );
        assert!(Nis::from_decimal(dec!(1.005)).is_err());
        assert!(Nis::from_decimal(dec!(10000000000000000)).is_err());
        assert_eq!(Nis::from_decimal(dec!(7)).unwrap().amount().scale(), 2);
    }

    #[test]
    fn nis_negative_zero_is_zero() {
        let z = Nis::parse("-0.00").unwrap();
        assert_eq!(z, Nis::ZERO);
        assert_eq!(z.to_string(), "0.00");
        assert_eq!(Nis::from_whole(0).to_string(), "0.00");
    }

    #[test]
    fn nis_from_whole_is_const_and_exact() {
        const DEFAULT_THRESHOLD: Nis = Nis::from_whole(15_000);
        assert_eq!(DEFAULT_THRESHOLD.to_string(), "15000.00");
        assert_eq!(Nis::from_whole(-42).amount(), dec!(-42.00));
        assert_eq!(
            Nis::from_whole(9_999_999_999_999_999).to_string(),
            "9999999999999999.00"
        );
        assert_eq!(
            Nis::from_whole(-9_999_999_999_999_999).to_string(),
            "-9999999999999999.00"
        );
        assert_eq!(Nis::from_whole(5_000_000_000).amount(), dec!(5000000000));
    }

    #[test]
    #[should_panic(expected = "10^16")]
    fn nis_from_whole_panics_out_of_range() {
        let _ = Nis::from_whole(10_000_000_000_000_000);
    }

    #[test]
    fn nis_threshold_must_be_positive() {
        assert_eq!(
            Nis::parse_threshold("15000").unwrap(),
            Nis::from_whole(15_000)
        );
        assert_eq!(Nis::parse_threshold("0.01").unwrap().to_string(), "0.01");
        for s in ["0", "0.00", "-1", "-0", "abc", "1.001"] {
            assert_eq!(
                Nis::parse_threshold(s).unwrap_err().field,
                "threshold",
                "{s:?}"
            );
        }
    }

    #[test]
    fn nis_ordering_and_serde() {
        assert!(Nis::parse("-0.01").unwrap() < Nis::ZERO);
        assert!(Nis::parse("14999.99").unwrap() < Nis::from_whole(15_000));
        let n = Nis::parse("-12.5").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"-12.50\"");
        assert_eq!(json_round_trip(&n), n);
        assert!(serde_json::from_str::<Nis>("\"1.005\"").is_err());
    }

    // --- Properties ----------------------------------------------------------------------

    proptest! {
        #[test]
        fn prop_nis_cents_round_trip(cents in -999_999_999_999_999_999i64..=999_999_999_999_999_999) {
            let n = Nis::from_decimal(Decimal::new(cents, 2)).unwrap();
            let shown = n.to_string();
            prop_assert_eq!(Nis::parse(&shown).unwrap(), n);
            prop_assert_eq!(n.amount().mantissa(), i128::from(cents));
            prop_assert_eq!(n.amount().scale(), 2);
            prop_assert_eq!(json_round_trip(&n), n);
        }

        #[test]
        fn prop_nis_ordering_matches_decimal(a in any::<i64>(), b in any::<i64>()) {
            let (a, b) = (Decimal::new(a / 10, 2), Decimal::new(b / 10, 2));
            let (na, nb) = (Nis::from_decimal(a).unwrap(), Nis::from_decimal(b).unwrap());
            prop_assert_eq!(na.cmp(&nb), a.cmp(&b));
            prop_assert_eq!(na == nb, a == b);
        }

        #[test]
        fn prop_nis_from_whole_matches_parse(n in -9_999_999_999_999_999i64..=9_999_999_999_999_999) {
            prop_assert_eq!(Nis::from_whole(n), Nis::parse(&n.to_string()).unwrap());
        }

        #[test]
        fn prop_nis_rejects_sub_agora(cents in any::<i32>(), extra in 1i64..=9) {
            let d = Decimal::new(i64::from(cents) * 10 + extra, 3);
            prop_assert!(Nis::from_decimal(d).is_err());
            prop_assert!(Nis::parse(&d.to_string()).is_err());
        }
    }
}
