//! Pseudo-randomness without a `rand` crate: every "random" choice of the simulator is a
//! splitmix64-style hash of the values that identify it (seed, account index, date, attempt), so
//! the same inputs always give the same answer and tests can recompute anything independently.

use std::hash::{BuildHasher, Hasher};

use chrono::{Datelike, NaiveDate};

/// Domain tags keep the hash streams of unrelated decisions independent of each other.
pub(crate) mod tag {
    pub(crate) const PROFILE: u64 = 0x01;
    pub(crate) const BOUNDARY_ALMOST: u64 = 0x02;
    pub(crate) const SPECIAL_DAY: u64 = 0x03;
    pub(crate) const DAY: u64 = 0x04;
    pub(crate) const DATA_QUALITY_KIND: u64 = 0x05;
    pub(crate) const REFERENCE: u64 = 0x06;
    pub(crate) const FAULT: u64 = 0x07;
    pub(crate) const MALFORMED_KIND: u64 = 0x08;
}

/// One splitmix64 step (Steele, Lea & Flood 2014): a cheap bijective mixer with full avalanche.
pub(crate) const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a sequence of words into one; order matters.
pub(crate) fn mix(parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(0x5EED_0BA4_C0DE_0002, |acc, &p| splitmix64(acc ^ p))
}

/// A date as a hashable word (days since 0001-01-01, never negative for the dates we parse).
pub(crate) fn day_word(date: NaiveDate) -> u64 {
    u64::from(date.num_days_from_ce().unsigned_abs())
}

/// Uniform draw in the inclusive range `[lo, hi]` (modulo bias is irrelevant at these sizes).
pub(crate) fn in_range(h: u64, lo: i64, hi: i64) -> i64 {
    let span = hi.abs_diff(lo) + 1;
    lo.wrapping_add_unsigned(h % span)
}

/// `true` with probability `ppm / 1_000_000`.
pub(crate) fn chance_ppm(h: u64, ppm: u32) -> bool {
    h % 1_000_000 < u64::from(ppm)
}

/// A `Hasher` for keys that are already a single well-distributed `u64` word: much cheaper than
/// SipHash on the request path, and the keys are not attacker-controlled in a simulator.
#[derive(Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = splitmix64(self.0 ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = splitmix64(self.0 ^ i);
    }
}

impl BuildHasher for WordHasher {
    type Hasher = Self;

    fn build_hasher(&self) -> Self {
        Self(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_is_order_sensitive_and_deterministic() {
        assert_eq!(mix(&[1, 2, 3]), mix(&[1, 2, 3]));
        assert_ne!(mix(&[1, 2, 3]), mix(&[3, 2, 1]));
        assert_ne!(mix(&[0]), mix(&[0, 0]));
    }

    #[test]
    fn ranges_are_inclusive_and_bounded() {
        for h in 0..10_000u64 {
            let v = in_range(splitmix64(h), -200_000, 1_499_999);
            assert!((-200_000..=1_499_999).contains(&v));
        }
        assert_eq!(in_range(0, 5, 5), 5);
        assert_eq!(in_range(u64::MAX, 5, 5), 5);
    }

    #[test]
    fn chance_extremes_are_never_and_always() {
        for h in 0..1_000u64 {
            let h = splitmix64(h);
            assert!(!chance_ppm(h, 0));
            assert!(chance_ppm(h, 1_000_000));
        }
    }
}
