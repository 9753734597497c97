//! The gRPC control API (`pcn.v1.ControlService`, see `proto/pcn/v1/control.proto`), served by
//! `pcn-worker api` on its own port with gRPC server reflection and the standard health service.
//!
//! - [`auth`]: bearer tokens (configured as hashes) → callers with roles.
//! - [`service`]: the service and its one `ControlService` implementation, which hands each
//!   method to its resource: `months` (with `ListQualifications`), `customers`,
//!   `notifications`, `reports`, `audit_log`. Each method: authorisation, validation at the
//!   boundary, then the work.
//! - [`month_view`]: `GetMonth`, with a one-second single-flight cache per month so a crowd of
//!   dashboards costs one workflow query and three counts per second.
//! - [`convert`]: rows and domain values → API messages.
//! - [`codec_server`]: the remote payload codec for the Web UI, on its own HTTP listener, with
//!   these tokens.
//!
//! Errors never carry internal text: a failure is logged with a reference, and the caller gets
//! `INTERNAL` with that reference only.

mod audit_log;
pub mod auth;
pub mod codec_server;
pub mod convert;
mod customers;
pub mod month_view;
mod months;
mod notifications;
mod reports;
pub mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use pcn_proto::v1::control_service_server::ControlServiceServer;
use pcn_workflows::domain::DomainError;
use pcn_workflows::month::MonthSettings;
use sqlx::PgPool;
use tonic::Status;

use crate::dispatch::ClientSlot;

/// What the API needs.
#[derive(Clone)]
pub struct ApiState {
    /// The database.
    pub pool: PgPool,
    /// Temporal, connected on first use (the API starts and serves reads while it is down).
    pub temporal: ClientSlot,
    /// Task queue of the worker (for StartMonth and retries).
    pub task_queue: String,
    /// Settings of months started through the API, and of retried notifications (`sms`).
    pub month_settings: MonthSettings,
    /// The tokens.
    pub tokens: Arc<auth::TokenTable>,
    /// Who the monthly report is mailed to (`SendReport` queues one email per address).
    pub report_recipients: Vec<String>,
    /// The keys of phone numbers: `ImportCustomers` seals what it stores (the API shows only
    /// `customers.phone_masked`).
    pub phones: pcn_activities::phone_vault::PhoneVault,
}

/// A running API server.
pub struct ApiServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Stops serving.
    pub fn abort(&self) {
        self.task.abort();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves the control API, reflection and health on `listener`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
) -> anyhow::Result<ApiServer> {
    serve_tls(listener, state, None).await
}

pub use crate::tls::TlsIdentity;

/// [`serve`], over TLS (rustls) when `tls` is given.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: ApiState,
    tls: Option<TlsIdentity>,
) -> anyhow::Result<ApiServer> {
    let addr = listener.local_addr()?;
    // Reflection in both versions: grpcurl and Postman speak v1, older tools v1alpha.
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pcn_proto::v1::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building the reflection service")?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pcn_proto::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building the reflection service")?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ControlServiceServer<service::Control>>()
        .await;
    let control = ControlServiceServer::new(service::Control::new(state))
        .max_decoding_message_size(16 * 1024 * 1024);
    // TCP_NODELAY: without it a small response waits for the client's delayed ACK (~40 ms per
    // call; measured by the API benchmark: p50 44 ms → 1 ms).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(
                tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem),
            ))
            .context("the control API's TLS certificate or key")?;
    }
    let task = tokio::spawn(async move {
        let result = builder
            .add_service(health)
            .add_service(reflection)
            .add_service(reflection_alpha)
            .add_service(control)
            .serve_with_incoming(incoming)
            .await;
        if let Err(err) = result {
            tracing::error!(error = %err, "control API server stopped");
        }
    });
    Ok(ApiServer { addr, task })
}

/// INVALID_ARGUMENT naming the field.
pub(crate) fn invalid(err: DomainError) -> Status {
    Status::invalid_argument(err.to_string())
}

/// INTERNAL with a reference; the cause is logged, never returned.
pub(crate) fn internal(context: &str, err: impl std::fmt::Display) -> Status {
    let reference = uuid::Uuid::new_v4().simple().to_string();
    tracing::error!(%reference, context, error = %err, "control API call failed");
    Status::internal(format!("internal error (reference {reference})"))
}

/// A database error: UNAVAILABLE when Postgres cannot be reached, INTERNAL otherwise.
pub(crate) fn db_error(context: &str, err: sqlx::Error) -> Status {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
            tracing::warn!(context, error = %err, "database unavailable");
            Status::unavailable("the database is unavailable; try again")
        }
        other => internal(context, other),
    }
}

/// An error of a database-reading library function: [`db_error`] if it is a database error,
/// INTERNAL otherwise.
pub(crate) fn read_error(context: &str, err: anyhow::Error) -> Status {
    match err.downcast::<sqlx::Error>() {
        Ok(db) => db_error(context, db),
        Err(other) => internal(context, format!("{other:#}")),
    }
}

/// A Temporal RPC error: UNAVAILABLE when the server cannot be reached, INTERNAL otherwise.
pub(crate) fn temporal_error(context: &str, status: &tonic::Status) -> Status {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
            tracing::warn!(context, error = %status, "Temporal unavailable");
            Status::unavailable("Temporal is unavailable; try again")
        }
        _ => internal(context, status),
    }
}
