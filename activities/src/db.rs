//! Postgres: pool, migrations and customers.

use std::time::Duration;

use anyhow::Context as _;
use pcn_workflows::customer::Customer;
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

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("running migrations")
}

/// Inserts or updates customers in batches (one statement per 5,000 rows); returns rows touched.
/// The customer id is the key: importing the same file twice changes nothing the second time.
pub async fn upsert_customers(pool: &PgPool, customers: &[Customer]) -> anyhow::Result<u64> {
    let mut touched = 0;
    for chunk in customers.chunks(5_000) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut accounts = Vec::with_capacity(chunk.len());
        let mut names = Vec::with_capacity(chunk.len());
        let mut phones = Vec::with_capacity(chunk.len());
        let mut languages = Vec::with_capacity(chunk.len());
        let mut opted_out = Vec::with_capacity(chunk.len());
        let mut active = Vec::with_capacity(chunk.len());
        let mut since = Vec::with_capacity(chunk.len());
        for c in chunk {
            ids.push(c.customer_id.as_str().to_owned());
            accounts.push(c.account_id.as_str().to_owned());
            names.push(c.first_name.as_str().to_owned());
            phones.push(c.phone.as_e164().to_owned());
            languages.push(c.language.code().to_owned());
            opted_out.push(c.opted_out);
            active.push(c.active);
            since.push(c.monitored_since.as_naive());
        }
        touched += sqlx::query(
            "INSERT INTO customers (customer_id, account_id, first_name, phone_e164, language,
                                    opted_out, active, monitored_since)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::bool[], $7::bool[], $8::date[])
             ON CONFLICT (customer_id) DO UPDATE SET
                 account_id = EXCLUDED.account_id, first_name = EXCLUDED.first_name,
                 phone_e164 = EXCLUDED.phone_e164, language = EXCLUDED.language,
                 opted_out = EXCLUDED.opted_out, active = EXCLUDED.active,
                 monitored_since = EXCLUDED.monitored_since, updated_at = now()
             WHERE (customers.account_id, customers.first_name, customers.phone_e164,
                    customers.language, customers.opted_out, customers.active,
                    customers.monitored_since)
                IS DISTINCT FROM
                   (EXCLUDED.account_id, EXCLUDED.first_name, EXCLUDED.phone_e164,
                    EXCLUDED.language, EXCLUDED.opted_out, EXCLUDED.active,
                    EXCLUDED.monitored_since)",
        )
        .bind(&ids)
        .bind(&accounts)
        .bind(&names)
        .bind(&phones)
        .bind(&languages)
        .bind(&opted_out)
        .bind(&active)
        .bind(&since)
        .execute(pool)
        .await
        .context("upserting customers")?
        .rows_affected();
    }
    Ok(touched)
}

/// Column `i` of a `count(*)` row as `u64` (counts are never negative).
pub(crate) fn count_column(row: &PgRow, i: usize) -> u64 {
    u64::try_from(row.get::<i64, _>(i)).unwrap_or(0)
}
