//! Pseudo-randomness without a `rand` crate: every "random" choice of the simulator is a
//! splitmix64-style hash of the values that identify it (seed, idempotency key, message id), so
//! the same inputs always give the same answer and tests can recompute anything independently.
//! (The same scheme as the bank simulator's `hash.rs`.)

use crate::model::SentMessage;

/// Domain tags keep the hash streams of unrelated decisions independent of each other.
pub(crate) mod tag {
    pub(crate) const OUTCOME: u64 = 0x11;
    pub(crate) const JITTER: u64 = 0x12;
    pub(crate) const DUPLICATE: u64 = 0x13;
    pub(crate) const REORDER: u64 = 0x14;
    pub(crate) const ID_HIGH: u64 = 0x15;
    pub(crate) const ID_LOW: u64 = 0x16;
    pub(crate) const INBOUND: u64 = 0x17;
    pub(crate) const EARLY: u64 = 0x18;
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
        .fold(0x5EED_CA22_1E20_0003, |acc, &p| splitmix64(acc ^ p))
}

/// Hashes a string into one word (length-prefixed, so `"a"` and `"a\0"` differ).
pub(crate) fn hash_str(s: &str) -> u64 {
    s.as_bytes()
        .chunks(8)
        .fold(splitmix64(s.len() as u64), |acc, chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            splitmix64(acc ^ u64::from_le_bytes(word))
        })
}

/// The word a message's per-message choices (duplicate, stale, early callbacks) are drawn from:
/// its reference (generic `messageId`, Twilio idempotency token), else its carrier id. A repeated
/// reference therefore repeats those choices, as the outcome mix does.
pub(crate) fn message_key(m: &SentMessage) -> u64 {
    hash_str(m.idempotency_key.as_deref().unwrap_or(&m.carrier_id))
}

/// `true` with probability `ppm / 1_000_000`.
pub(crate) fn chance_ppm(h: u64, ppm: u32) -> bool {
    h % 1_000_000 < u64::from(ppm)
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
    fn string_hashes_differ_on_length_and_content() {
        assert_eq!(hash_str("sms/2026-10/C1#1"), hash_str("sms/2026-10/C1#1"));
        assert_ne!(hash_str("sms/2026-10/C1#1"), hash_str("sms/2026-10/C1#2"));
        assert_ne!(hash_str("a"), hash_str("a\0"));
        assert_ne!(hash_str(""), hash_str("\0"));
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
