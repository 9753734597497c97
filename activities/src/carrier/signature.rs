//! Webhook signatures of both carriers (`docs/carrier-wire.md`).
//!
//! - Generic: `X-Carrier-Signature: sha256=<lowercase hex HMAC-SHA256(webhook_secret, raw body)>`.
//! - Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(auth_token, url + name+value of every POST
//!   parameter, sorted))`, where `url` is the full URL the request was sent to, query included.
//!
//! Verification always recomputes the MAC and compares in constant time
//! ([`Mac::verify_slice`]); a missing or malformed header is simply "not valid".

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Prefix of the generic carrier's signature header value.
const SHA256_PREFIX: &str = "sha256=";

fn hmac_sha256(secret: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

fn hmac_sha1_twilio(auth_token: &[u8], url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    // Twilio's own validators sign a repeated identical name=value pair once.
    sorted.dedup();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The generic carrier's `X-Carrier-Signature` of `body`: `sha256=<lowercase hex>`.
pub fn generic_signature(secret: &[u8], body: &[u8]) -> String {
    let tag = hmac_sha256(secret, body).finalize().into_bytes();
    format!("{SHA256_PREFIX}{}", hex::encode(tag))
}

/// Whether `header` (the `X-Carrier-Signature` value, `sha256=<hex>`) signs `body` with `secret`.
/// A missing header, a missing `sha256=` prefix or non-hex digits are invalid.
pub fn verify_generic(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_tag) = header.and_then(|h| h.trim().strip_prefix(SHA256_PREFIX)) else {
        return false;
    };
    let Ok(tag) = hex::decode(hex_tag) else {
        return false;
    };
    hmac_sha256(secret, body).verify_slice(&tag).is_ok()
}

/// Twilio's `X-Twilio-Signature` of a request to `url` (exactly as requested, query included)
/// with the form parameters `params`: base64 of HMAC-SHA1 keyed by the auth token over `url`
/// followed by name and value of every parameter, sorted by name, then by value.
pub fn twilio_signature(auth_token: &[u8], url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(
        hmac_sha1_twilio(auth_token, url, params)
            .finalize()
            .into_bytes(),
    )
}

/// Whether `header` (the `X-Twilio-Signature` value) signs a request to `url` with `params`.
/// A missing header or one that is not base64 is invalid.
pub fn verify_twilio(
    auth_token: &[u8],
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> bool {
    let Some(tag) = header.and_then(|h| BASE64.decode(h.trim()).ok()) else {
        return false;
    };
    hmac_sha1_twilio(auth_token, url, params)
        .verify_slice(&tag)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The worked example of Twilio's request-validation documentation (also the test vector of
    /// Twilio's helper libraries, e.g. twilio-php `RequestValidatorTest`).
    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const TWILIO_SIGNATURE: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

    fn twilio_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn twilio_documented_vector() {
        assert_eq!(
            twilio_signature(b"12345", TWILIO_URL, &twilio_params()),
            TWILIO_SIGNATURE
        );
        assert!(verify_twilio(
            b"12345",
            TWILIO_URL,
            &twilio_params(),
            Some(TWILIO_SIGNATURE)
        ));
        // Parameter order on the wire does not matter.
        let mut shuffled = twilio_params();
        shuffled.reverse();
        assert!(verify_twilio(
            b"12345",
            TWILIO_URL,
            &shuffled,
            Some(TWILIO_SIGNATURE)
        ));
    }

    #[test]
    fn twilio_repeated_parameters_vector() {
        // Twilio helper libraries' vector for repeated names: sorted by value, duplicates once.
        let params = pairs(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert_eq!(
            twilio_signature(b"12345", TWILIO_URL, &params),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn twilio_tampering_is_detected() {
        let params = twilio_params();
        let ok = |token: &[u8], url: &str, params: &[(String, String)], header: Option<&str>| {
            verify_twilio(token, url, params, header)
        };
        assert!(!ok(b"12346", TWILIO_URL, &params, Some(TWILIO_SIGNATURE)));
        assert!(!ok(
            b"12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            Some(TWILIO_SIGNATURE)
        ));
        assert!(!ok(
            b"12345",
            "https://mycompany.com/myapp.php",
            &params,
            Some(TWILIO_SIGNATURE)
        ));
        let mut changed = params.clone();
        changed[2].1 = "9999".to_owned();
        assert!(!ok(b"12345", TWILIO_URL, &changed, Some(TWILIO_SIGNATURE)));
        let mut extra = params.clone();
        extra.push(("ErrorCode".to_owned(), "30003".to_owned()));
        assert!(!ok(b"12345", TWILIO_URL, &extra, Some(TWILIO_SIGNATURE)));
        assert!(!ok(
            b"12345",
            TWILIO_URL,
            &params[1..],
            Some(TWILIO_SIGNATURE)
        ));
        assert!(!ok(b"12345", TWILIO_URL, &params, None));
        assert!(!ok(b"12345", TWILIO_URL, &params, Some("")));
        assert!(!ok(b"12345", TWILIO_URL, &params, Some("not base64!")));
        assert!(!ok(
            b"12345",
            TWILIO_URL,
            &params,
            Some("RSOYDt4T1cUTdK1PDd93/VVr8A==")
        ));
        // A truncated tag is not a prefix match.
        assert!(!ok(b"12345", TWILIO_URL, &params, Some("RSOYDt4T")));
    }

    #[test]
    fn twilio_round_trip_of_a_status_callback() {
        let url =
            "http://127.0.0.1:8090/webhooks/twilio/status?ref=sms%2F2026-10%2FC0000000042%231";
        let params = pairs(&[
            ("MessageSid", "SM0123456789abcdef0123456789abcdef"),
            ("MessageStatus", "delivered"),
            ("ApiVersion", "2010-04-01"),
        ]);
        let header = twilio_signature(b"token", url, &params);
        assert!(verify_twilio(b"token", url, &params, Some(&header)));
        assert!(!verify_twilio(b"other", url, &params, Some(&header)));
    }

    #[test]
    fn generic_known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            generic_signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn generic_round_trip_and_tampering() {
        let body =
            br#"{"trackingId":"T1","messageId":"sms/2026-10/C0000000042#1","status":"DELIVERED"}"#;
        let header = generic_signature(b"whsec", body);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert!(
            header[7..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(verify_generic(b"whsec", body, Some(&header)));

        let mut changed = body.to_vec();
        changed[20] ^= 1;
        assert!(!verify_generic(b"whsec", &changed, Some(&header)));
        assert!(!verify_generic(
            b"whsec",
            &body[..body.len() - 1],
            Some(&header)
        ));
        assert!(!verify_generic(b"whsec2", body, Some(&header)));
        assert!(!verify_generic(b"whsec", body, None));
        assert!(!verify_generic(b"whsec", body, Some("")));
        assert!(!verify_generic(b"whsec", body, Some("sha256=")));
        // Only with the prefix.
        assert!(!verify_generic(b"whsec", body, Some(&header[7..])));
        assert!(!verify_generic(
            b"whsec",
            body,
            Some(&header.replacen("sha256=", "sha1=", 1))
        ));
        assert!(!verify_generic(b"whsec", body, Some("sha256=zz")));
        // A truncated tag is not a prefix match.
        assert!(!verify_generic(b"whsec", body, Some(&header[..40])));
    }
}
