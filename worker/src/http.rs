//! The worker's own HTTP endpoint: liveness, readiness (Postgres reachable) and our metrics.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use pcn_activities::metrics::Metrics;
use sqlx::PgPool;

#[derive(Clone)]
struct Ops {
    pool: PgPool,
    metrics: Metrics,
}

/// Serves `/healthz`, `/readyz` and `/metrics` on `bind` until the returned task is aborted.
/// Returns the bound address (port 0 picks one).
pub async fn serve(
    bind: SocketAddr,
    pool: PgPool,
    metrics: Metrics,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(render))
        .with_state(Ops { pool, metrics });
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "ops endpoint stopped");
        }
    });
    Ok((addr, task))
}

async fn ready(State(ops): State<Ops>) -> (StatusCode, &'static str) {
    match sqlx::query("SELECT 1").execute(&ops.pool).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn render(State(ops): State<Ops>) -> String {
    ops.metrics.render()
}
