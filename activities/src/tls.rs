//! TLS of our outbound calls (the core banking system, the SMS carriers): rustls with ring.
//!
//! - Certificates are always verified: no code path here (or anywhere in this crate) turns server
//!   verification off. Without a CA of our own, the server is checked against the platform's
//!   trust store (`rustls-platform-verifier`, as reqwest does by default); with one
//!   (`PCN_BANK_CA`, `PCN_CARRIER_CA`), against it.
//! - PEM input (certificate chains, private keys, CA bundles) is parsed with errors that say what
//!   is wrong with it, for the configuration to name the setting.
//! - A failed request's rustls error, buried in reqwest's and hyper's error chain, is described in
//!   words an operator can act on ([`failure`]): whose certificate was refused, and why.

use std::error::Error as StdError;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, CertificateError, RootCertStore};

/// The crypto provider of every TLS connection of the project (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (a chain or a CA bundle): at least one, all well-formed.
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not a PEM certificate file ({e})"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned());
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            "holds no PEM private key (-----BEGIN PRIVATE KEY-----)".to_owned()
        }
        other => format!("is not a PEM private key file ({other})"),
    })
}

/// A root store holding every certificate of a PEM CA bundle.
pub fn root_store(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(pem)? {
        roots
            .add(cert)
            .map_err(|e| format!("holds a certificate that cannot be a CA ({e})"))?;
    }
    Ok(roots)
}

/// The rustls error somewhere in `err`'s chain of sources, looking inside `std::io::Error`s too
/// (hyper hands rustls's errors on wrapped in one, whose `source()` skips them).
pub fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = rustls_error(inner)
        {
            return Some(found);
        }
        next = current.source();
    }
    None
}

/// What went wrong in a TLS handshake, for the caller to decide (our credentials refused, or the
/// server not to be trusted) and to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// The server refused our client certificate (or wanted one and got none).
    ClientCertificateRefused(String),
    /// We refused the server's certificate, or the two sides share no protocol.
    Server(String),
}

impl TlsFailure {
    /// The description, whichever side failed.
    pub fn text(&self) -> &str {
        match self {
            Self::ClientCertificateRefused(text) | Self::Server(text) => text,
        }
    }
}

/// Describes the TLS failure in `err`'s chain, if it is one. `peer` names the server ("the
/// bank"); `trust` says which CAs it was checked against, for a certificate of an unknown issuer
/// ("a CA not in PCN_BANK_CA").
pub fn failure(err: &(dyn StdError + 'static), peer: &str, trust: &str) -> Option<TlsFailure> {
    let err = rustls_error(err)?;
    Some(match err {
        rustls::Error::InvalidCertificate(cert) => TlsFailure::Server(match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("TLS: {peer}'s certificate has expired")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("TLS: {peer}'s certificate is not valid yet")
            }
            CertificateError::UnknownIssuer => format!(
                "TLS: {peer}'s certificate is not signed by a CA we trust (self-signed, or from \
                 {trust})"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("TLS: {peer}'s certificate is not valid for the host name of its URL")
            }
            CertificateError::Revoked => format!("TLS: {peer}'s certificate is revoked"),
            CertificateError::BadSignature => {
                format!("TLS: {peer}'s certificate has a bad signature")
            }
            other => format!("TLS: {peer}'s certificate was refused ({other:?})"),
        }),
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => TlsFailure::ClientCertificateRefused(format!(
                "TLS: {peer} requires a client certificate and got none (mutual TLS)"
            )),
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied
            // What a server's verifier answers to a certificate whose issuer's name matches one
            // of its CAs but whose signature does not (another CA of the same name).
            | AlertDescription::DecryptError => TlsFailure::ClientCertificateRefused(format!(
                "TLS: {peer} refused our client certificate (alert {alert:?}: not signed by a CA \
                 it trusts, expired or revoked)"
            )),
            AlertDescription::ProtocolVersion => TlsFailure::Server(format!(
                "TLS: {peer} does not speak the TLS version we require (alert ProtocolVersion)"
            )),
            other => TlsFailure::Server(format!("TLS: {peer} ended the handshake (alert {other:?})")),
        },
        rustls::Error::PeerIncompatible(why) => {
            TlsFailure::Server(format!("TLS: {peer} and we share no protocol ({why:?})"))
        }
        rustls::Error::InvalidMessage(_) => TlsFailure::Server(format!(
            "TLS: {peer} did not answer in TLS (a plain-HTTP server behind an https:// URL?)"
        )),
        other => TlsFailure::Server(format!("TLS: handshake with {peer} failed ({other})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rustls_error_is_found_inside_an_io_error() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
        );
        let failure = failure(&io, "the bank", "a CA not in PCN_BANK_CA").unwrap();
        assert!(matches!(failure, TlsFailure::ClientCertificateRefused(_)));
        assert!(failure.text().contains("refused our client certificate"));
    }

    #[test]
    fn an_unknown_issuer_says_which_cas_were_trusted() {
        let err = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let failure = failure(&err, "the carrier", "a CA not in PCN_CARRIER_CA").unwrap();
        assert_eq!(
            failure,
            TlsFailure::Server(
                "TLS: the carrier's certificate is not signed by a CA we trust (self-signed, or \
                 from a CA not in PCN_CARRIER_CA)"
                    .to_owned()
            )
        );
    }

    #[test]
    fn other_errors_are_not_tls_failures() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(failure(&io, "the bank", "anything"), None);
    }

    #[test]
    fn garbage_is_neither_a_certificate_nor_a_key() {
        assert!(
            parse_certs(b"hello")
                .unwrap_err()
                .contains("no PEM certificate")
        );
        assert!(
            parse_key(b"hello")
                .unwrap_err()
                .contains("no PEM private key")
        );
    }
}
