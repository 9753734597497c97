//! The TLS accept loop our HTTPS servers share: the worker's webhook and codec endpoint, and the
//! bank simulator. Each builds its own `rustls::ServerConfig` (certificates, client
//! verification, protocol versions); this crate turns a TCP listener into connections axum
//! serves, with handshakes in their own tasks so a slow or refused client never holds up the
//! others.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener that hands axum TLS connections; handshakes run in their own tasks, so a slow or
/// refused client never holds up the others. A failed handshake is logged (WARN) and dropped.
pub struct TlsListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on `tcp`; `name` (e.g. `"webhook"`) starts its log lines.
    pub fn new(
        name: &'static str,
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> anyhow::Result<Self> {
        let addr = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, accepted) = mpsc::channel(64);
        let accept_loop = tokio::spawn(async move {
            loop {
                match tcp.accept().await {
                    Ok((stream, peer)) => {
                        // Small JSON answers on keep-alive connections: Nagle only adds latency.
                        let _ = stream.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(tls)) => {
                                    let _ = tx.send((tls, peer)).await;
                                }
                                Ok(Err(err)) => {
                                    tracing::warn!(%peer, error = %err, "{name}: TLS handshake failed")
                                }
                                Err(_) => {
                                    tracing::warn!(%peer, "{name}: TLS handshake timed out")
                                }
                            }
                        });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "{name}: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(Self {
            accepted,
            addr,
            accept_loop,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The TCP listener lives in the accept loop: stop it with the server.
        self.accept_loop.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
