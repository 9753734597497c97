//! Phone numbers at rest: sealed with AES-256-GCM, found by an HMAC blind index.
//!
//! Every table that keeps a phone number (`customers`, `sms_attempts`, `inbound_messages`) stores
//! `phone_key_id` + `phone_sealed` instead of the number (migration 15). The authenticated context
//! of each value is its table and business key ([`Context`]), so a ciphertext copied into another
//! row or table does not open there. `customers` and `inbound_messages` also keep `phone_index`
//! (HMAC-SHA256 of the E.164 number under its own key): an inbound STOP finds its customer by it.
//!
//! Rows written before migration 15 may still hold `phone_e164` in clear until
//! `pcn-worker rotate-keys` seals them; [`PhoneVault::reveal`] reads both.

use pcn_workflows::domain::Phone;

use crate::keyring::{BlindIndex, KeyError, Keyring, development};

/// The keys of phone numbers: the keyring that seals them and the blind index's key.
#[derive(Debug, Clone)]
pub struct PhoneVault {
    keys: Keyring,
    index: BlindIndex,
}

/// A sealed phone number as stored: which key, and nonce ‖ ciphertext ‖ tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPhone {
    /// `phone_key_id`.
    pub key_id: String,
    /// `phone_sealed`.
    pub sealed: Vec<u8>,
}

/// Where a sealed number lives: its table and the row's business key. Part of the authenticated
/// data, never stored.
#[derive(Debug, Clone, Copy)]
pub enum Context<'a> {
    /// `customers`, by customer id.
    Customer(&'a str),
    /// `sms_attempts`, by message reference (`sms/YYYY-MM/<customer>#N`).
    Attempt(&'a str),
    /// `inbound_messages`, by carrier and the carrier's message id.
    Inbound(&'a str, &'a str),
}

impl Context<'_> {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Customer(id) => format!("customers\0{id}").into_bytes(),
            Self::Attempt(reference) => format!("sms_attempts\0{reference}").into_bytes(),
            Self::Inbound(carrier, id) => format!("inbound_messages\0{carrier}\0{id}").into_bytes(),
        }
    }
}

/// Why a stored number could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    /// The key or the ciphertext (see [`KeyError`]).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The row has neither a sealed nor a legacy number, or what opened is not a phone number.
    #[error("stored phone number of {0} is missing or not a phone number")]
    Invalid(String),
}

impl PhoneVault {
    /// A vault from a keyring (newest first) and the blind index's key.
    pub fn new(keys: Keyring, index: BlindIndex) -> Self {
        Self { keys, index }
    }

    /// The development keys (the `development` profile's default; production refuses them).
    pub fn development() -> Self {
        Self::new(
            Keyring::parse("PCN_PHONE_KEYS", development::PHONE_KEYS).expect("development key"),
            BlindIndex::parse("PCN_PHONE_INDEX_KEY", development::PHONE_INDEX_KEY)
                .expect("development key"),
        )
    }

    /// The key new numbers are sealed with.
    pub fn newest_key(&self) -> &str {
        self.keys.newest().as_str()
    }

    /// Seals `phone` for the row `context` with the newest key.
    pub fn seal(&self, phone: &Phone, context: Context<'_>) -> SealedPhone {
        let sealed = self.keys.seal(phone.as_e164().as_bytes(), &context.bytes());
        SealedPhone {
            key_id: sealed.key_id.as_str().to_owned(),
            sealed: sealed.bytes,
        }
    }

    /// The blind index of `phone` (32 bytes): equal numbers, equal digests.
    pub fn index(&self, phone: &Phone) -> Vec<u8> {
        self.index.digest(phone.as_e164().as_bytes())
    }

    /// Opens a sealed number of the row `context`.
    pub fn open(
        &self,
        key_id: &str,
        sealed: &[u8],
        context: Context<'_>,
    ) -> Result<Phone, RevealError> {
        let plain = self.keys.open(key_id, sealed, &context.bytes())?;
        std::str::from_utf8(&plain)
            .ok()
            .and_then(|s| Phone::parse(s).ok())
            .ok_or_else(|| RevealError::Invalid(format!("{context:?}")))
    }

    /// The number of a row from its columns: sealed (`phone_key_id`, `phone_sealed`) or, for a row
    /// written before encryption and not yet rotated, `phone_e164`.
    pub fn reveal(
        &self,
        key_id: Option<&str>,
        sealed: Option<&[u8]>,
        legacy: Option<&str>,
        context: Context<'_>,
    ) -> Result<Phone, RevealError> {
        match (key_id, sealed, legacy) {
            (Some(key_id), Some(sealed), _) => self.open(key_id, sealed, context),
            (_, _, Some(e164)) => {
                Phone::parse(e164).map_err(|_| RevealError::Invalid(format!("{context:?}")))
            }
            _ => Err(RevealError::Invalid(format!("{context:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone() -> Phone {
        Phone::parse("+972501234567").unwrap()
    }

    #[test]
    fn sealed_numbers_open_only_in_their_own_row() {
        let vault = PhoneVault::development();
        let s = vault.seal(&phone(), Context::Customer("C1"));
        assert_eq!(s.key_id, "dev1");
        assert!(!String::from_utf8_lossy(&s.sealed).contains("501234567"));
        let opened = vault
            .open(&s.key_id, &s.sealed, Context::Customer("C1"))
            .unwrap();
        assert_eq!(opened, phone());
        assert!(
            vault
                .open(&s.key_id, &s.sealed, Context::Customer("C2"))
                .is_err()
        );
        assert!(
            vault
                .open(&s.key_id, &s.sealed, Context::Attempt("C1"))
                .is_err()
        );
    }

    #[test]
    fn reveal_reads_sealed_or_legacy_and_names_what_is_wrong() {
        let vault = PhoneVault::development();
        let s = vault.seal(&phone(), Context::Attempt("sms/2026-11/C1#1"));
        let ctx = Context::Attempt("sms/2026-11/C1#1");
        assert_eq!(
            vault
                .reveal(Some(&s.key_id), Some(&s.sealed), None, ctx)
                .unwrap(),
            phone()
        );
        assert_eq!(
            vault
                .reveal(None, None, Some("+972501234567"), ctx)
                .unwrap(),
            phone()
        );
        let err = vault
            .reveal(Some("gone"), Some(&s.sealed), None, ctx)
            .unwrap_err();
        assert!(err.to_string().contains("key `gone`"), "{err}");
        assert!(vault.reveal(None, None, None, ctx).is_err());
    }

    #[test]
    fn the_index_finds_the_same_number_whatever_its_ciphertext() {
        let vault = PhoneVault::development();
        let a = vault.seal(&phone(), Context::Customer("C1"));
        let b = vault.seal(&phone(), Context::Customer("C1"));
        assert_ne!(a.sealed, b.sealed);
        assert_eq!(vault.index(&phone()), vault.index(&phone()));
        assert_eq!(vault.index(&phone()).len(), 32);
    }
}
