//! Postgres: the pool, the migrations, a helper for count rows. Each table's SQL is in its owner
//! module (see the README's "Where each table is written").

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

/// The schema migrations in `migrations/`, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects a pool to `url`.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url)
        .await
        .context("connecting to Postgres")
}

/// Applies pending migrations as the pool's role: `roles::setup` runs it as the owner role (the
/// serving processes never migrate); the benches run it on a database of their own.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("running migrations")
}

/// Column `i` of a `count(*)` row as `u64` (counts are never negative).
pub(crate) fn count_column(row: &PgRow, i: usize) -> u64 {
    u64::try_from(row.get::<i64, _>(i)).unwrap_or(0)
}
