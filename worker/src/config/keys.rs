//! The keys of phone numbers at rest (`PCN_PHONE_KEYS`, `PCN_PHONE_INDEX_KEY`), read by every
//! process that writes or reads a number: `run`, `webhook`, `api` and `rotate-keys`.

use std::path::PathBuf;

use clap::Args;
use pcn_activities::keyring::{BlindIndex, Keyring, development};
use pcn_activities::phone_vault::PhoneVault;
use pcn_workflows::domain::DomainError;

use super::{Profile, secret};

/// Phone numbers' keys. Both are secrets (a value or a `_FILE`), with development values only in
/// the development profile.
#[derive(Debug, Clone, Args)]
pub struct PhoneKeyArgs {
    /// The keyring that seals phone numbers: `id:BASE64KEY` entries (32-byte keys), newest first,
    /// separated by commas or new lines. New numbers are sealed with the first; any opens.
    #[arg(long, env = "PCN_PHONE_KEYS", hide_env_values = true)]
    pub phone_keys: Option<String>,
    /// File holding the keyring (instead of `PCN_PHONE_KEYS`).
    #[arg(long, env = "PCN_PHONE_KEYS_FILE")]
    pub phone_keys_file: Option<PathBuf>,
    /// The blind index's HMAC-SHA256 key, `id:BASE64KEY` (32 bytes), another key than the ring's.
    #[arg(long, env = "PCN_PHONE_INDEX_KEY", hide_env_values = true)]
    pub phone_index_key: Option<String>,
    /// File holding the index key (instead of `PCN_PHONE_INDEX_KEY`).
    #[arg(long, env = "PCN_PHONE_INDEX_KEY_FILE")]
    pub phone_index_key_file: Option<PathBuf>,
}

impl PhoneKeyArgs {
    /// The vault, or an error naming the setting (never echoing a key).
    pub fn parse(&self, profile: Profile) -> Result<PhoneVault, DomainError> {
        let ring = secret(
            "phone_keys",
            "PCN_PHONE_KEYS",
            self.phone_keys.as_deref(),
            self.phone_keys_file.as_deref(),
            development::PHONE_KEYS,
            profile,
        )?;
        let index = secret(
            "phone_index_key",
            "PCN_PHONE_INDEX_KEY",
            self.phone_index_key.as_deref(),
            self.phone_index_key_file.as_deref(),
            development::PHONE_INDEX_KEY,
            profile,
        )?;
        let keys = Keyring::parse("PCN_PHONE_KEYS", &ring)
            .map_err(|e| DomainError::new("phone_keys", e.to_string()))?;
        let index_key = BlindIndex::parse("PCN_PHONE_INDEX_KEY", &index)
            .map_err(|e| DomainError::new("phone_index_key", e.to_string()))?;
        // `secret` refuses the development value as a whole; a ring that also holds the
        // development key is refused here, whatever its id.
        let development = Keyring::parse("development", development::PHONE_KEYS)
            .expect("the development keyring parses");
        if profile == Profile::Production && keys.shares_a_key_with(&development) {
            return Err(DomainError::new(
                "phone_keys",
                "holds the development key; production refuses it (set PCN_PHONE_KEYS or \
                 PCN_PHONE_KEYS_FILE, or run with PCN_PROFILE=development)",
            ));
        }
        if index_key.is_on(&keys) {
            return Err(DomainError::new(
                "phone_index_key",
                "is one of PCN_PHONE_KEYS' keys: the blind index needs a key of its own",
            ));
        }
        Ok(PhoneVault::new(keys, index_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(keys: Option<&str>, index: Option<&str>) -> PhoneKeyArgs {
        PhoneKeyArgs {
            phone_keys: keys.map(str::to_owned),
            phone_keys_file: None,
            phone_index_key: index.map(str::to_owned),
            phone_index_key_file: None,
        }
    }

    const K1: &str = "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    const I1: &str = "i1:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";

    #[test]
    fn production_needs_real_keys_and_names_the_setting() {
        let err = args(None, Some(I1)).parse(Profile::Production).unwrap_err();
        assert!(err.to_string().contains("PCN_PHONE_KEYS"), "{err}");
        let err = args(Some(K1), None).parse(Profile::Production).unwrap_err();
        assert!(err.to_string().contains("PCN_PHONE_INDEX_KEY"), "{err}");
        let dev_and_real = format!("{K1},{}", development::PHONE_KEYS);
        let err = args(Some(&dev_and_real), Some(I1))
            .parse(Profile::Production)
            .unwrap_err();
        assert!(err.to_string().contains("development key"), "{err}");
        let dev_key = development::PHONE_KEYS.split_once(':').unwrap().1;
        let renamed = format!("{K1},old:{dev_key}");
        let err = args(Some(&renamed), Some(I1))
            .parse(Profile::Production)
            .unwrap_err();
        assert!(err.to_string().contains("development key"), "{err}");
        let vault = args(Some(&format!("{K2},{K1}")), Some(I1))
            .parse(Profile::Production)
            .unwrap();
        assert_eq!(vault.newest_key(), "k2");
        args(None, None).parse(Profile::Development).unwrap();
    }

    #[test]
    fn short_keys_and_a_shared_index_key_are_refused_without_echoing_them() {
        let short = "k1:c2hvcnQ=";
        let err = args(Some(short), Some(I1))
            .parse(Profile::Production)
            .unwrap_err();
        assert!(err.to_string().contains("is 5 bytes"), "{err}");
        assert!(!err.to_string().contains("c2hvcnQ="), "{err}");
        let shared = format!("i9:{}", K1.split_once(':').unwrap().1);
        let err = args(Some(K1), Some(&shared))
            .parse(Profile::Production)
            .unwrap_err();
        assert!(err.to_string().contains("a key of its own"), "{err}");
    }
}
