//! Postgres: pool, migrations and customers.

use std::time::Duration;

use anyhow::Context as _;
use pcn_workflows::customer::Customer;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};

use crate::consent;

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

/// What an import of customers did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Upserted {
    /// Customers inserted or changed (master data or an opt-out).
    pub touched: u64,
    /// Customers the import opted out (recorded in the consent ledger).
    pub opted_out: Vec<String>,
    /// Rows refused whole because they would opt an opted-out customer back in, with why.
    pub refused: Vec<(String, String)>,
}

/// Inserts or updates customers in batches (one statement per 5,000 rows). The customer id is
/// the key: importing the same file twice changes nothing the second time.
///
/// Consent follows the rules of [`crate::consent`]: a row's `opted_out = Some(true)` opts the
/// customer out (ledger fact, `actor`), `None` changes nothing, and `Some(false)` for a customer
/// who is opted out refuses the whole row (listed in [`Upserted::refused`] with the fact that
/// opted them out): only their own START reply or an admin with a reason opts them back in.
pub async fn upsert_customers(
    pool: &PgPool,
    customers: &[Customer],
    actor: &str,
) -> anyhow::Result<Upserted> {
    let mut out = Upserted::default();
    for chunk in customers.chunks(5_000) {
        let mut tx = pool.begin().await?;
        let wants_in: Vec<String> = chunk
            .iter()
            .filter(|c| c.opted_out == Some(false))
            .map(|c| c.customer_id.as_str().to_owned())
            .collect();
        let refused = consent::refused_opt_ins(&mut tx, &wants_in).await?;
        let keep: Vec<&Customer> = chunk
            .iter()
            .filter(|c| !refused.iter().any(|(id, _)| id == c.customer_id.as_str()))
            .collect();
        for (id, last) in refused {
            let why = match last {
                Some(fact) => format!(
                    "{fact}; an import cannot opt a customer back in (their own START reply or \
                     SetOptOut with a reason can)"
                ),
                None => "opted out; an import cannot opt a customer back in".to_owned(),
            };
            out.refused.push((id, why));
        }
        let mut ids = Vec::with_capacity(keep.len());
        let mut accounts = Vec::with_capacity(keep.len());
        let mut names = Vec::with_capacity(keep.len());
        let mut phones = Vec::with_capacity(keep.len());
        let mut languages = Vec::with_capacity(keep.len());
        let mut active = Vec::with_capacity(keep.len());
        let mut since = Vec::with_capacity(keep.len());
        for c in &keep {
            ids.push(c.customer_id.as_str().to_owned());
            accounts.push(c.account_id.as_str().to_owned());
            names.push(c.first_name.as_str().to_owned());
            phones.push(c.phone.as_e164().to_owned());
            languages.push(c.language.code().to_owned());
            active.push(c.active);
            since.push(c.monitored_since.as_naive());
        }
        // Master data only: `opted_out` is the consent ledger's (a new customer starts in).
        let mut touched: Vec<String> = sqlx::query_scalar(
            "INSERT INTO customers (customer_id, account_id, first_name, phone_e164, language,
                                    active, monitored_since)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                  $6::bool[], $7::date[])
             ON CONFLICT (customer_id) DO UPDATE SET
                 account_id = EXCLUDED.account_id, first_name = EXCLUDED.first_name,
                 phone_e164 = EXCLUDED.phone_e164, language = EXCLUDED.language,
                 active = EXCLUDED.active, monitored_since = EXCLUDED.monitored_since,
                 updated_at = now()
             WHERE (customers.account_id, customers.first_name, customers.phone_e164,
                    customers.language, customers.active, customers.monitored_since)
                IS DISTINCT FROM
                   (EXCLUDED.account_id, EXCLUDED.first_name, EXCLUDED.phone_e164,
                    EXCLUDED.language, EXCLUDED.active, EXCLUDED.monitored_since)
             RETURNING customer_id",
        )
        .bind(&ids)
        .bind(&accounts)
        .bind(&names)
        .bind(&phones)
        .bind(&languages)
        .bind(&active)
        .bind(&since)
        .fetch_all(&mut *tx)
        .await
        .context("upserting customers")?;
        let opt_outs: Vec<String> = keep
            .iter()
            .filter(|c| c.opted_out == Some(true))
            .map(|c| c.customer_id.as_str().to_owned())
            .collect();
        let consent = consent::import_opt_outs(&mut tx, &opt_outs, actor).await?;
        tx.commit().await?;
        touched.extend(consent.opted_out.iter().cloned());
        touched.sort_unstable();
        touched.dedup();
        out.touched += u64::try_from(touched.len()).unwrap_or(u64::MAX);
        out.opted_out.extend(consent.opted_out);
    }
    Ok(out)
}

/// Column `i` of a `count(*)` row as `u64` (counts are never negative).
pub(crate) fn count_column(row: &PgRow, i: usize) -> u64 {
    u64::try_from(row.get::<i64, _>(i)).unwrap_or(0)
}
