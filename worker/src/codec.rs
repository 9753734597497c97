//! Encrypted Temporal payloads: the payload codec every client and worker of ours connects with,
//! so Temporal's database holds no customer data in clear.
//!
//! **Encode** marshals the whole `Payload` proto (its metadata — `encoding: json/plain` and the
//! like — and its data), seals it with the newest key of the payload keyring (AES-256-GCM, a fresh
//! nonce, [`pcn_activities::keyring`]) and replaces it by a payload with the metadata
//! `encoding: binary/encrypted` and `encryption-key-id: <id>` and the sealed bytes as its data:
//! the layout of Temporal's Go and TypeScript encryption samples, so the Web UI and `temporal`
//! tooling recognise it.
//!
//! **Decode** opens every `binary/encrypted` payload with the key its metadata names; any other
//! payload passes through unchanged, so histories written before the codec (the replay fixtures,
//! the runs in flight at the upgrade) still replay and run. A payload sealed with a key that is no
//! longer on the ring, or altered, fails with an error naming the key id (never a panic).
//!
//! The keyring is `PCN_PAYLOAD_KEYS` (or `PCN_PAYLOAD_KEYS_FILE`), newest first: rotating is
//! putting a new key first and keeping the old ones as long as any retained history holds payloads
//! sealed with them (see the README, *Rotating payload keys*).
//!
//! The SDK applies the codec to workflow and activity inputs and results, local activities (their
//! markers), signals, queries and their answers, updates, heartbeats, memos, the Schedule's start
//! input, and failures' details; with [`PayloadEncryption::data_converter`] failures' messages and
//! stack traces are moved into an encoded attribute too. Search attributes are never encoded (the
//! server indexes them), nor are the start options' static summary and details: neither may hold
//! personal data.

use std::sync::Arc;

use futures::future::BoxFuture;
use pcn_activities::keyring::{KeyError, Keyring, development};
use prost::Message as _;
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

/// The setting holding the payload keyring.
pub const SETTING: &str = "PCN_PAYLOAD_KEYS";
/// Metadata key of a payload's encoding.
pub const METADATA_ENCODING: &str = "encoding";
/// The encoding of an encrypted payload.
pub const ENCODING_ENCRYPTED: &str = "binary/encrypted";
/// Metadata key naming the key an encrypted payload was sealed with.
pub const METADATA_KEY_ID: &str = "encryption-key-id";
/// Authenticated with every payload (not stored): a ciphertext of another field sealed under the
/// same key does not open as a payload.
const CONTEXT: &[u8] = b"pcn temporal payload v1";

/// Why a payload could not be decoded. Messages name the key id and never hold key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The payload says `binary/encrypted` but names no key.
    #[error("payload is {ENCODING_ENCRYPTED} but has no {METADATA_KEY_ID} metadata")]
    NoKeyId,
    /// The key id is not UTF-8.
    #[error("payload's {METADATA_KEY_ID} is not UTF-8")]
    KeyIdNotUtf8,
    /// Unknown key or corrupt ciphertext (the message names the key id).
    #[error("{0}")]
    Key(#[from] KeyError),
    /// The ciphertext opened but is not a marshalled Payload.
    #[error("payload sealed with key `{key_id}` opened but does not hold a Temporal Payload")]
    NotAPayload {
        /// The key id.
        key_id: String,
    },
}

/// The payload codec: AES-256-GCM under a keyring, newest key first. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PayloadEncryption {
    keys: Arc<Keyring>,
}

impl PayloadEncryption {
    /// A codec sealing with the newest key of `keys` and opening with any of them.
    pub fn new(keys: Keyring) -> Self {
        Self {
            keys: Arc::new(keys),
        }
    }

    /// The development keyring ([`development::PAYLOAD_KEYS`]): tests, `make demo`, and the
    /// development profile when `PCN_PAYLOAD_KEYS` is unset. Production refuses it.
    pub fn development() -> Self {
        Self::new(
            Keyring::parse(SETTING, development::PAYLOAD_KEYS).expect("the development keyring"),
        )
    }

    /// The id of the key new payloads are sealed with.
    pub fn newest_key_id(&self) -> &str {
        self.keys.newest().as_str()
    }

    /// True when `payload` is one of ours, encrypted.
    pub fn is_encrypted(payload: &Payload) -> bool {
        payload
            .metadata
            .get(METADATA_ENCODING)
            .is_some_and(|e| e == ENCODING_ENCRYPTED.as_bytes())
    }

    /// Seals `payload` (metadata and data) with the newest key. An already encrypted payload is
    /// returned as it is (encoding twice would only cost).
    pub fn encode_one(&self, payload: Payload) -> Payload {
        if Self::is_encrypted(&payload) {
            return payload;
        }
        let sealed = self.keys.seal(&payload.encode_to_vec(), CONTEXT);
        Payload {
            metadata: [
                (
                    METADATA_ENCODING.to_owned(),
                    ENCODING_ENCRYPTED.as_bytes().to_vec(),
                ),
                (
                    METADATA_KEY_ID.to_owned(),
                    sealed.key_id.as_str().as_bytes().to_vec(),
                ),
            ]
            .into_iter()
            .collect(),
            data: sealed.bytes,
            external_payloads: Vec::new(),
        }
    }

    /// Opens an encrypted payload with the key its metadata names; any other payload is returned
    /// unchanged.
    pub fn decode_one(&self, payload: Payload) -> Result<Payload, CodecError> {
        if !Self::is_encrypted(&payload) {
            return Ok(payload);
        }
        let key_id = payload
            .metadata
            .get(METADATA_KEY_ID)
            .ok_or(CodecError::NoKeyId)?;
        let key_id = std::str::from_utf8(key_id).map_err(|_| CodecError::KeyIdNotUtf8)?;
        let plain = self.keys.open(key_id, &payload.data, CONTEXT)?;
        Payload::decode(plain.as_slice()).map_err(|_| CodecError::NotAPayload {
            key_id: key_id.to_owned(),
        })
    }

    /// [`Self::encode_one`] of each.
    pub fn encode_all(&self, payloads: Vec<Payload>) -> Vec<Payload> {
        payloads.into_iter().map(|p| self.encode_one(p)).collect()
    }

    /// [`Self::decode_one`] of each; the first failure is returned with its index.
    pub fn decode_all(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, (usize, CodecError)> {
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.decode_one(p).map_err(|e| (i, e)))
            .collect()
    }

    /// The data converter of our clients and workers: JSON payloads (the SDK's default), failure
    /// messages and stack traces moved into an encoded attribute, and this codec.
    pub fn data_converter(&self) -> DataConverter {
        DataConverter::new(
            PayloadConverter::default(),
            DefaultFailureConverter::new(true),
            self.clone(),
        )
    }
}

impl PayloadCodec for PayloadEncryption {
    fn encode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let encoded = self.encode_all(payloads);
        Box::pin(async move { Ok(encoded) })
    }

    fn decode(
        &self,
        _context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let decoded = self.decode_all(payloads).map_err(|(i, err)| {
            PayloadConversionError::EncodingError(format!("decoding payload {i}: {err}").into())
        });
        Box::pin(async move { decoded })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    fn ring(spec: &str) -> PayloadEncryption {
        PayloadEncryption::new(Keyring::parse(SETTING, spec).unwrap())
    }

    fn key(byte: u8) -> String {
        B64.encode([byte; 32])
    }

    fn json(data: &str) -> Payload {
        Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())]
                .into_iter()
                .collect(),
            data: data.as_bytes().to_vec(),
            external_payloads: Vec::new(),
        }
    }

    const SECRET: &str = r#"{"first_name":"Dana","phone":"+972501234567","balance":"15000.00"}"#;

    #[test]
    fn round_trip_hides_data_and_metadata() {
        let codec = PayloadEncryption::development();
        let encoded = codec.encode_one(json(SECRET));
        assert!(PayloadEncryption::is_encrypted(&encoded));
        assert_eq!(encoded.metadata[METADATA_KEY_ID], b"dev1");
        assert_eq!(
            encoded.metadata.len(),
            2,
            "json/plain is inside, not beside"
        );
        let raw = String::from_utf8_lossy(&encoded.data);
        assert!(!raw.contains("Dana") && !raw.contains("+97250") && !raw.contains("json/plain"));
        assert_eq!(codec.decode_one(encoded.clone()).unwrap(), json(SECRET));
        // Encoding is idempotent: an encrypted payload is not sealed twice.
        assert_eq!(codec.encode_one(encoded.clone()), encoded);
        // Fresh nonce: the same payload never gives the same ciphertext.
        assert_ne!(codec.encode_one(json(SECRET)).data, encoded.data);
    }

    #[test]
    fn payloads_written_before_the_codec_pass_through() {
        let codec = PayloadEncryption::development();
        let plain = vec![json(SECRET), Payload::default()];
        assert_eq!(codec.decode_all(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn an_unknown_key_is_named() {
        let old = ring(&format!("k1:{}", key(1)));
        let new = ring(&format!("k2:{}", key(2)));
        let sealed = old.encode_one(json(SECRET));
        let err = new.decode_all(vec![json("1"), sealed]).unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(
            err.1.to_string(),
            "ciphertext sealed with key `k1`, which is not on the keyring PCN_PAYLOAD_KEYS"
        );
    }

    #[test]
    fn corrupt_or_incomplete_payloads_are_refused_with_the_key_named() {
        let codec = PayloadEncryption::development();
        let mut altered = codec.encode_one(json(SECRET));
        let last = altered.data.len() - 1;
        altered.data[last] ^= 1;
        let err = codec.decode_one(altered).unwrap_err();
        assert!(err.to_string().contains("`dev1`"), "{err}");
        let mut truncated = codec.encode_one(json(SECRET));
        truncated.data.truncate(5);
        assert!(matches!(
            codec.decode_one(truncated),
            Err(CodecError::Key(KeyError::Corrupt { .. }))
        ));
        let mut no_key = codec.encode_one(json(SECRET));
        no_key.metadata.remove(METADATA_KEY_ID);
        assert_eq!(codec.decode_one(no_key), Err(CodecError::NoKeyId));
    }

    #[test]
    fn rotation_seals_with_the_newest_and_opens_the_older() {
        let k1 = ring(&format!("k1:{}", key(1)));
        let before = k1.encode_one(json(SECRET));
        let rotated = ring(&format!("k2:{},k1:{}", key(2), key(1)));
        assert_eq!(rotated.newest_key_id(), "k2");
        let after = rotated.encode_one(json(SECRET));
        assert_eq!(after.metadata[METADATA_KEY_ID], b"k2");
        assert_eq!(rotated.decode_one(before).unwrap(), json(SECRET));
        assert_eq!(rotated.decode_one(after.clone()).unwrap(), json(SECRET));
        // The old ring alone cannot read what the new key sealed.
        assert!(k1.decode_one(after).is_err());
    }

    #[tokio::test]
    async fn the_sdk_trait_reports_errors_instead_of_panicking() {
        let codec = PayloadEncryption::development();
        let ctx = SerializationContextData::None;
        let encoded = PayloadCodec::encode(&codec, &ctx, vec![json(SECRET)])
            .await
            .unwrap();
        let decoded = PayloadCodec::decode(&codec, &ctx, encoded.clone())
            .await
            .unwrap();
        assert_eq!(decoded, vec![json(SECRET)]);
        let other = ring(&format!("k9:{}", key(9)));
        let err = PayloadCodec::decode(&other, &ctx, encoded)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("payload 0") && err.to_string().contains("`dev1`"));
    }
}
