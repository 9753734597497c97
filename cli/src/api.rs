//! The connection to the control API: a lazily connected channel, the bearer token on every
//! call, and one deadline per call.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use pcn_proto::v1::control_service_client::ControlServiceClient;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::args::Token;

/// Large enough for an XLSX or HTML report export (tonic's default is 4 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The generated client with the bearer token attached.
pub type Client = ControlServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds `authorization: Bearer <token>` to each call (nothing without a token, so the server
/// answers UNAUTHENTICATED rather than pcnctl guessing).
#[derive(Clone)]
pub struct Bearer(Option<AsciiMetadataValue>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A client and the deadline each call gets.
#[derive(Clone)]
pub struct Api {
    client: Client,
    timeout: Duration,
    /// For error messages.
    address: String,
}

impl Api {
    /// Prepares the channel; nothing is dialled until the first call, so an unreachable server
    /// surfaces as that call's UNAVAILABLE.
    pub fn new(
        address: &str,
        token: Option<&Token>,
        timeout: Duration,
        ca: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let address = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}")
        };
        let mut endpoint = Endpoint::from_shared(address.clone())
            .with_context(|| format!("invalid --address {address}"))?
            .connect_timeout(timeout.min(Duration::from_secs(10)));
        if address.starts_with("https://") {
            let ca = ca.ok_or_else(|| {
                anyhow::anyhow!(
                    "{address} is TLS: give the certificate authority that signed its certificate \
                     with --ca FILE (or PCN_API_CA)"
                )
            })?;
            let pem =
                std::fs::read(ca).with_context(|| format!("reading --ca {}", ca.display()))?;
            endpoint = endpoint
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                )
                .context("TLS settings")?;
        }
        let header = match token.map(Token::expose).filter(|t| !t.is_empty()) {
            Some(token) => {
                let mut value: AsciiMetadataValue =
                    MetadataValue::try_from(format!("Bearer {token}"))
                        .map_err(|_| anyhow::anyhow!("the token must be printable ASCII"))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let client =
            ControlServiceClient::with_interceptor(endpoint.connect_lazy(), Bearer(header))
                .max_decoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            client,
            timeout,
            address,
        })
    }

    /// A client to make one call with (clones share the channel).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A request carrying the deadline, so the server can stop working on it too.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Awaits a call, DEADLINE_EXCEEDED if no answer comes within the timeout.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(self.explain(status)),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer within {} s (see --timeout)",
                self.timeout.as_secs()
            ))),
        }
    }

    /// tonic says only "tcp connect error" when the server cannot be reached; name the address
    /// and the root cause (connection refused, no route to host, ...).
    fn explain(&self, status: Status) -> Status {
        let Some(source) = std::error::Error::source(&status) else {
            return status;
        };
        if status.code() != tonic::Code::Unavailable {
            return status;
        }
        let mut root = source;
        while let Some(inner) = root.source() {
            root = inner;
        }
        let message = format!("{} to {}: {root}", status.message(), self.address);
        Status::unavailable(message)
    }
}
