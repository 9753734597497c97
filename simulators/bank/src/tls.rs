//! HTTPS of the simulator: a certificate and key in PEM, served with rustls (ring), and optionally
//! mutual TLS: only clients presenting a certificate signed by the given CA finish the handshake.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// HTTPS settings of the simulator ([`SimConfig::tls`](crate::SimConfig::tls)).
#[derive(Clone)]
pub struct SimTls {
    /// The server's certificate chain, PEM.
    pub cert_pem: Vec<u8>,
    /// The server's private key, PEM.
    pub key_pem: Vec<u8>,
    /// CA bundle (PEM) client certificates must be signed by. Set: every client must present
    /// such a certificate or the handshake fails, and a client so authenticated needs no API key
    /// (mutual TLS is its credential). Unset: no client certificates are asked for.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl SimTls {
    /// The rustls server configuration (TLS 1.2 and 1.3, like a real bank may offer).
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = CertificateDer::pem_slice_iter(&self.cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("reading the TLS certificate chain (PEM)")?;
        anyhow::ensure!(
            !certs.is_empty(),
            "the TLS certificate file holds no certificate"
        );
        let key = PrivateKeyDer::from_pem_slice(&self.key_pem)
            .context("reading the TLS private key (PEM)")?;
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS versions")?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in CertificateDer::pem_slice_iter(pem) {
                    roots
                        .add(ca.context("reading the client CA bundle (PEM)")?)
                        .context("a client CA certificate cannot be a root")?;
                }
                anyhow::ensure!(!roots.is_empty(), "the client CA file holds no certificate");
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .context("the client certificate verifier")?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .context("the TLS certificate and key do not go together")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
