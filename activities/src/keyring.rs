//! Keys for encryption at rest: AES-256-GCM keyrings and the HMAC-SHA256 blind index.
//!
//! A [`Keyring`] is an ordered list of named 256-bit keys, **newest first**. Values are sealed
//! with the newest key and a fresh random 96-bit nonce; the key's id is stored beside every
//! ciphertext, so any key still on the ring opens what it sealed. Rotating is: put a new key first,
//! keep the old ones until `pcn-worker rotate-keys` has re-sealed everything, then drop them.
//!
//! The textual form of a keyring (an environment variable or a key file) is
//! `id:BASE64KEY` entries separated by commas, whitespace or new lines, newest first, e.g.
//! `k2026b:3q2+7w…=,k2026a:…`. Ids are 1–32 characters of `[A-Za-z0-9_-]`; keys are exactly 32
//! bytes (standard base64, 44 characters). Lines starting with `#` are comments.
//!
//! The [`BlindIndex`] is HMAC-SHA256 under its own key: equal inputs give equal digests, so a
//! column of digests answers "which row holds this phone number?" without holding the number.

use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Length of an AES-256 key and of the blind index's HMAC key, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of the GCM nonce stored in front of every ciphertext, in bytes.
pub const NONCE_LEN: usize = 12;

/// Why a key setting or a ciphertext was refused. Every message names the setting or the key id
/// and never contains key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The setting holds no key at all.
    #[error("{setting}: no key given (expected `id:BASE64KEY`, newest first)")]
    Empty {
        /// The setting (environment variable or file) that was read.
        setting: String,
    },
    /// An entry is not `id:BASE64KEY` or its id has characters outside `[A-Za-z0-9_-]`.
    #[error("{setting}: entry {position} is not `id:BASE64KEY` with an id of 1-32 [A-Za-z0-9_-]")]
    Malformed {
        /// The setting.
        setting: String,
        /// 1-based position of the entry.
        position: usize,
    },
    /// The key is not valid base64.
    #[error("{setting}: key `{id}` is not valid base64")]
    NotBase64 {
        /// The setting.
        setting: String,
        /// The key's id.
        id: String,
    },
    /// The key is not 32 bytes.
    #[error("{setting}: key `{id}` is {len} bytes; AES-256 and HMAC-SHA256 keys here are 32 bytes")]
    WrongLength {
        /// The setting.
        setting: String,
        /// The key's id.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Two entries share an id.
    #[error("{setting}: key id `{id}` appears twice")]
    DuplicateId {
        /// The setting.
        setting: String,
        /// The repeated id.
        id: String,
    },
    /// A ciphertext names a key that is not on the ring.
    #[error("ciphertext sealed with key `{id}`, which is not on the keyring {setting}")]
    UnknownKey {
        /// The keyring's setting.
        setting: String,
        /// The key id found with the ciphertext.
        id: String,
    },
    /// The ciphertext is shorter than a nonce and a tag, or does not authenticate under its key.
    #[error(
        "ciphertext sealed with key `{id}` does not open: truncated, altered or for another field"
    )]
    Corrupt {
        /// The key id found with the ciphertext.
        id: String,
    },
}

/// A key's name, stored beside each ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(s.to_owned()))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value sealed under one key of a [`Keyring`]: `nonce ‖ ciphertext ‖ tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The key that sealed it.
    pub key_id: KeyId,
    /// 12-byte nonce, then the AES-GCM ciphertext with its 16-byte tag.
    pub bytes: Vec<u8>,
}

/// Named AES-256-GCM keys, newest first. Never prints its keys.
#[derive(Clone)]
pub struct Keyring {
    setting: String,
    /// Id, cipher, and the key's SHA-256 (to compare rings without a second copy of the key).
    keys: Vec<(KeyId, Aes256Gcm, [u8; 32])>,
}

/// SHA-256 of a key: equal keys, equal fingerprints.
fn fingerprint(key: &[u8]) -> [u8; 32] {
    Sha256::digest(key).into()
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, ..)| id.as_str()).collect();
        f.debug_struct("Keyring")
            .field("setting", &self.setting)
            .field("ids", &ids)
            .finish()
    }
}

/// Parses `id:BASE64KEY` entries (see the module docs) into ids and 32-byte keys.
fn parse_entries(setting: &str, spec: &str) -> Result<Vec<(KeyId, Vec<u8>)>, KeyError> {
    let entries = spec
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .flat_map(|line| line.split(|c: char| c == ',' || c.is_whitespace()))
        .filter(|entry| !entry.is_empty());
    let mut out: Vec<(KeyId, Vec<u8>)> = Vec::new();
    for (i, entry) in entries.enumerate() {
        let malformed = || KeyError::Malformed {
            setting: setting.to_owned(),
            position: i + 1,
        };
        let (id, key) = entry.split_once(':').ok_or_else(malformed)?;
        let id = KeyId::parse(id).ok_or_else(malformed)?;
        let key = B64.decode(key).map_err(|_| KeyError::NotBase64 {
            setting: setting.to_owned(),
            id: id.0.clone(),
        })?;
        if key.len() != KEY_LEN {
            return Err(KeyError::WrongLength {
                setting: setting.to_owned(),
                id: id.0,
                len: key.len(),
            });
        }
        if out.iter().any(|(seen, _)| *seen == id) {
            return Err(KeyError::DuplicateId {
                setting: setting.to_owned(),
                id: id.0,
            });
        }
        out.push((id, key));
    }
    if out.is_empty() {
        return Err(KeyError::Empty {
            setting: setting.to_owned(),
        });
    }
    Ok(out)
}

impl Keyring {
    /// Parses a keyring from its textual form; `setting` names where it came from in errors.
    pub fn parse(setting: &str, spec: &str) -> Result<Self, KeyError> {
        let keys = parse_entries(setting, spec)?
            .into_iter()
            .map(|(id, key)| {
                let cipher = Aes256Gcm::new_from_slice(&key).expect("32-byte key checked above");
                (id, cipher, fingerprint(&key))
            })
            .collect();
        Ok(Self {
            setting: setting.to_owned(),
            keys,
        })
    }

    /// Whether a key with this fingerprint is on the ring.
    fn holds(&self, fingerprint: &[u8; 32]) -> bool {
        self.keys.iter().any(|(.., f)| f == fingerprint)
    }

    /// Whether a key of `other` is also on this ring, whatever its id (production refuses a
    /// ring that holds a development key).
    pub fn shares_a_key_with(&self, other: &Keyring) -> bool {
        self.keys.iter().any(|(.., f)| other.holds(f))
    }

    /// The key new values are sealed with.
    pub fn newest(&self) -> &KeyId {
        &self.keys[0].0
    }

    /// Every key id on the ring, newest first.
    pub fn ids(&self) -> impl Iterator<Item = &KeyId> {
        self.keys.iter().map(|(id, ..)| id)
    }

    /// Seals `plaintext` with the newest key and a fresh random nonce. `context` is authenticated
    /// but not stored (e.g. the column's name), so a ciphertext moved to another field does not
    /// open there.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Sealed {
        let (id, cipher, _) = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of a bounded value cannot fail");
        let mut bytes = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&ciphertext);
        Sealed {
            key_id: id.clone(),
            bytes,
        }
    }

    /// Opens a value sealed by [`Keyring::seal`] with the key `key_id` and the same `context`.
    pub fn open(&self, key_id: &str, bytes: &[u8], context: &[u8]) -> Result<Vec<u8>, KeyError> {
        let Some((_, cipher, _)) = self.keys.iter().find(|(id, ..)| id.as_str() == key_id) else {
            return Err(KeyError::UnknownKey {
                setting: self.setting.clone(),
                id: key_id.to_owned(),
            });
        };
        let corrupt = || KeyError::Corrupt {
            id: key_id.to_owned(),
        };
        if bytes.len() < NONCE_LEN + 16 {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().expect("split at NONCE_LEN");
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context,
                },
            )
            .map_err(|_| corrupt())
    }
}

/// HMAC-SHA256 under its own key: a deterministic digest to find rows by an encrypted value.
#[derive(Clone)]
pub struct BlindIndex {
    key: Vec<u8>,
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndex(***)")
    }
}

impl BlindIndex {
    /// Parses the index key: one `id:BASE64KEY` entry (the id is kept for the operator's sake).
    pub fn parse(setting: &str, spec: &str) -> Result<Self, KeyError> {
        let mut entries = parse_entries(setting, spec)?;
        let (_, key) = entries.swap_remove(0);
        Ok(Self { key })
    }

    /// Whether this index key is also one of `ring`'s keys (the index needs a key of its own).
    pub fn is_on(&self, ring: &Keyring) -> bool {
        ring.holds(&fingerprint(&self.key))
    }

    /// The 32-byte digest of `value` (callers normalise first: one number, one digest).
    pub fn digest(&self, value: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Development-only keys (the `development` profile's defaults; production refuses them).
pub mod development {
    /// A development keyring for phone numbers (one key, `dev1`).
    pub const PHONE_KEYS: &str = "dev1:ZGV2ZWxvcG1lbnQtb25seS1waG9uZS1rZXktMzJieXQ=";
    /// The development blind-index key.
    pub const PHONE_INDEX_KEY: &str = "dev1:ZGV2ZWxvcG1lbnQtb25seS1pbmRleC1rZXktMzJieXQ=";
    /// A development keyring for Temporal payloads.
    pub const PAYLOAD_KEYS: &str = "dev1:ZGV2ZWxvcG1lbnQtb25seS1wYXlsb2FkLWtleS0zMmI=";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        B64.encode([byte; KEY_LEN])
    }

    fn ring(spec: &str) -> Keyring {
        Keyring::parse("PCN_TEST_KEYS", spec).unwrap()
    }

    #[test]
    fn rings_are_compared_by_their_keys_not_their_ids() {
        let a = ring(&format!("a1:{}, a2:{}", key(1), key(2)));
        assert!(a.shares_a_key_with(&ring(&format!("other:{}", key(2)))));
        assert!(!a.shares_a_key_with(&ring(&format!("a1:{}", key(3)))));
        let index =
            |byte| BlindIndex::parse("PCN_TEST_INDEX", &format!("i:{}", key(byte))).unwrap();
        assert!(index(1).is_on(&a));
        assert!(!index(4).is_on(&a));
    }

    #[test]
    fn development_keys_parse() {
        Keyring::parse("dev", development::PHONE_KEYS).unwrap();
        Keyring::parse("dev", development::PAYLOAD_KEYS).unwrap();
        BlindIndex::parse("dev", development::PHONE_INDEX_KEY).unwrap();
    }

    #[test]
    fn seals_with_the_newest_and_opens_with_any() {
        let old = ring(&format!("k1:{}", key(1)));
        let sealed_old = old.seal(b"+972501234567", b"customers.phone");
        let both = ring(&format!("k2:{}\nk1:{}", key(2), key(1)));
        assert_eq!(both.newest().as_str(), "k2");
        let sealed_new = both.seal(b"+972501234567", b"customers.phone");
        assert_eq!(sealed_new.key_id.as_str(), "k2");
        for sealed in [&sealed_old, &sealed_new] {
            let plain = both
                .open(sealed.key_id.as_str(), &sealed.bytes, b"customers.phone")
                .unwrap();
            assert_eq!(plain, b"+972501234567");
        }
    }

    #[test]
    fn a_fresh_nonce_every_time() {
        let r = ring(&format!("k1:{}", key(1)));
        let a = r.seal(b"same", b"");
        let b = r.seal(b"same", b"");
        assert_ne!(a.bytes, b.bytes);
        assert_ne!(a.bytes[..NONCE_LEN], b.bytes[..NONCE_LEN]);
    }

    #[test]
    fn unknown_key_altered_bytes_and_other_context_are_refused() {
        let r = ring(&format!("k1:{}", key(1)));
        let sealed = r.seal(b"+972501234567", b"customers.phone");
        let err = r.open("k9", &sealed.bytes, b"customers.phone").unwrap_err();
        assert_eq!(
            err.to_string(),
            "ciphertext sealed with key `k9`, which is not on the keyring PCN_TEST_KEYS"
        );
        let mut altered = sealed.bytes.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            r.open("k1", &altered, b"customers.phone"),
            Err(KeyError::Corrupt { .. })
        ));
        assert!(matches!(
            r.open("k1", &sealed.bytes, b"sms_attempts.phone"),
            Err(KeyError::Corrupt { .. })
        ));
        assert!(matches!(
            r.open("k1", &sealed.bytes[..20], b"customers.phone"),
            Err(KeyError::Corrupt { .. })
        ));
    }

    #[test]
    fn bad_settings_name_themselves_and_never_the_key() {
        let short = B64.encode([7u8; 16]);
        let err = Keyring::parse("PCN_PHONE_KEYS", &format!("k1:{short}")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "PCN_PHONE_KEYS: key `k1` is 16 bytes; AES-256 and HMAC-SHA256 keys here are 32 bytes"
        );
        assert!(!err.to_string().contains(&short));
        assert!(matches!(
            Keyring::parse("S", ""),
            Err(KeyError::Empty { .. })
        ));
        assert!(matches!(
            Keyring::parse("S", "# only a comment\n"),
            Err(KeyError::Empty { .. })
        ));
        assert!(matches!(
            Keyring::parse("S", &key(1)),
            Err(KeyError::Malformed { position: 1, .. })
        ));
        assert!(matches!(
            Keyring::parse("S", &format!("k 1:{}", key(1))),
            Err(KeyError::Malformed { .. })
        ));
        assert!(matches!(
            Keyring::parse("S", "k1:not*base64"),
            Err(KeyError::NotBase64 { .. })
        ));
        assert!(matches!(
            Keyring::parse("S", &format!("k1:{},k1:{}", key(1), key(2))),
            Err(KeyError::DuplicateId { .. })
        ));
        let debug = format!("{:?}", ring(&format!("k1:{}", key(1))));
        assert!(debug.contains("k1") && !debug.contains(&key(1)));
    }

    #[test]
    fn the_blind_index_is_deterministic_and_keyed() {
        let a = BlindIndex::parse("I", &format!("i1:{}", key(3))).unwrap();
        let b = BlindIndex::parse("I", &format!("i1:{}", key(4))).unwrap();
        assert_eq!(a.digest(b"+972501234567"), a.digest(b"+972501234567"));
        assert_ne!(a.digest(b"+972501234567"), a.digest(b"+972501234568"));
        assert_ne!(a.digest(b"+972501234567"), b.digest(b"+972501234567"));
        assert_eq!(a.digest(b"x").len(), 32);
    }
}
