//! Account and customer identifiers of the simulated population.
//!
//! Account `i` is `ACC-{i / 100_000:05}-{i % 100_000:05}` and its customer is `C{i:010}`, so any
//! test can map between indices and ids without asking the simulator.

/// The account id of population index `i`, e.g. `ACC-00000-00042` for 42.
pub fn account_id(i: u64) -> String {
    format!("ACC-{:05}-{:05}", i / 100_000, i % 100_000)
}

/// The customer id owning account `i`, e.g. `C0000000042` for 42.
pub fn customer_id(i: u64) -> String {
    format!("C{i:010}")
}

/// The population index of an account id in the exact `ACC-ddddd-ddddd` format, or `None` for
/// anything else (the API answers 400 `INVALID_REQUEST` then).
pub fn parse_account_index(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != 15 || !id.starts_with("ACC-") || b[9] != b'-' {
        return None;
    }
    let high = digits(&b[4..9])?;
    let low = digits(&b[10..15])?;
    Some(high * 100_000 + low)
}

/// Parses a run of ASCII digits (no sign, no spaces).
fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_documented_format() {
        assert_eq!(account_id(42), "ACC-00000-00042");
        assert_eq!(account_id(1_234_567), "ACC-00012-34567");
        assert_eq!(customer_id(42), "C0000000042");
    }

    #[test]
    fn account_ids_round_trip() {
        for i in [0, 1, 99_999, 100_000, 123_456, 9_999_999_999] {
            assert_eq!(parse_account_index(&account_id(i)), Some(i));
        }
    }

    #[test]
    fn malformed_account_ids_are_rejected() {
        for bad in [
            "",
            "ACC-00000-0004",
            "ACC-00000-000421",
            "ACC-0000a-00042",
            "acc-00000-00042",
            "ACC_00000_00042",
            "ACC-00000+00042",
            "ACC--0000-00042",
            "ACC-00000-0004٢",
            "12345",
        ] {
            assert_eq!(parse_account_index(bad), None, "{bad:?}");
        }
    }
}
