//! Webhook signatures, exposed so tests (and the system's own checks) can forge and verify them.
//!
//! - Generic carrier: `X-Carrier-Signature: sha256=<lowercase hex HMAC-SHA256(secret, raw body)>`.
//! - Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(auth_token, url + name1 + value1 + …))` with
//!   the POST parameters sorted by name (Twilio's documented scheme; the URL is the full URL the
//!   request was sent to, query string included).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// The `X-Carrier-Signature` value for `body`: `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub fn sign_generic(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is a valid `X-Carrier-Signature` for `body` (constant-time comparison).
pub fn verify_generic_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The `X-Twilio-Signature` value for a form POST of `params` to `url`:
/// `base64(HMAC-SHA1(auth_token, url + concat(name + value for params sorted by name)))`.
/// Repeated names are ordered by value, as Twilio's helper libraries do.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is a valid `X-Twilio-Signature` for `params` posted to `url`
/// (constant-time comparison).
pub fn verify_twilio_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let Ok(expected) =
        base64::engine::general_purpose::STANDARD.decode(twilio_signature(auth_token, url, params))
    else {
        return false;
    };
    given.len() == expected.len()
        && given
            .iter()
            .zip(&expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Twilio's published validation vector (the `RequestValidatorTest` of Twilio's official
    /// helper libraries, e.g. twilio-php and twilio-csharp): auth token `12345`, this URL and
    /// these parameters give `RSOYDt4T1cUTdK1PDd93/VVr8B8=`.
    #[test]
    fn twilio_signature_matches_twilios_published_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        // Deliberately out of order: the signature sorts them.
        let p = params(&[
            ("From", "+14158675309"),
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        assert_eq!(
            twilio_signature("12345", url, &p),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
        assert!(verify_twilio_signature(
            "12345",
            url,
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!verify_twilio_signature(
            "12346",
            url,
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!verify_twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &p,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
        assert!(!verify_twilio_signature("12345", url, &p, "not base64!"));
    }

    /// RFC 4231 test case 2 (HMAC-SHA256 with key "Jefe").
    #[test]
    fn generic_signature_matches_rfc_4231() {
        let sig = sign_generic(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_generic_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(!verify_generic_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig
        ));
        assert!(!verify_generic_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig.replace("sha256=", "")
        ));
    }
}
