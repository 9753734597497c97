//! The owner of `customers`: the only module with SQL for the customer master data. Consent
//! (`customers.opted_out` and its ledger) is [`crate::consent`]'s: an import changes master data
//! here and can only opt a customer out, through the ledger, never back in.
//!
//! Writes: [`upsert`] (the control API's `ImportCustomers`, tests, benches). Reads: the SMS steps'
//! [`recipients`], and the control API's [`profile`] and [`account_owners`].

use std::collections::HashMap;

use anyhow::Context as _;
use pcn_workflows::customer::{Customer, FirstName};
use pcn_workflows::domain::{CustomerId, Language, Phone};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::consent;
use crate::phone_vault::{Context, PhoneVault};

/// The columns of a customer as the control API shows it.
pub const PROFILE_COLUMNS: &str = "customer_id, account_id, first_name, phone_masked, language, \
     opted_out, active, monitored_since, updated_at";

/// A customer's row ([`PROFILE_COLUMNS`]), in `executor`'s transaction when it is one.
pub async fn profile<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    customer: &CustomerId,
) -> sqlx::Result<Option<PgRow>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PROFILE_COLUMNS} FROM customers WHERE customer_id = $1"
    )))
    .bind(customer.as_str())
    .fetch_optional(executor)
    .await
}

/// Which customer holds each of `accounts` now (an account belongs to one customer).
pub async fn account_owners(
    pool: &PgPool,
    accounts: &[String],
) -> sqlx::Result<HashMap<String, String>> {
    let owners: Vec<(String, String)> =
        sqlx::query_as("SELECT account_id, customer_id FROM customers WHERE account_id = ANY($1)")
            .bind(accounts)
            .fetch_all(pool)
            .await?;
    Ok(owners.into_iter().collect())
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
pub async fn upsert(
    pool: &PgPool,
    phones: &PhoneVault,
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
        let mut key_ids = Vec::with_capacity(keep.len());
        let mut sealed = Vec::with_capacity(keep.len());
        let mut indexes = Vec::with_capacity(keep.len());
        let mut masked = Vec::with_capacity(keep.len());
        let mut languages = Vec::with_capacity(keep.len());
        let mut active = Vec::with_capacity(keep.len());
        let mut since = Vec::with_capacity(keep.len());
        for c in &keep {
            ids.push(c.customer_id.as_str().to_owned());
            accounts.push(c.account_id.as_str().to_owned());
            names.push(c.first_name.as_str().to_owned());
            let phone = phones.seal(&c.phone, Context::Customer(c.customer_id.as_str()));
            key_ids.push(phone.key_id);
            sealed.push(phone.sealed);
            indexes.push(phones.index(&c.phone));
            masked.push(c.phone.masked());
            languages.push(c.language.code().to_owned());
            active.push(c.active);
            since.push(c.monitored_since.as_naive());
        }
        // Master data only: `opted_out` is the consent ledger's (a new customer starts in). The
        // number is compared by its blind index (ciphertexts differ at every seal). A row still in
        // clear from before encryption gets sealed here; `rotate-keys` clears its `phone_e164`.
        let mut touched: Vec<String> = sqlx::query_scalar(
            "INSERT INTO customers (customer_id, account_id, first_name, phone_key_id,
                                    phone_sealed, phone_index, phone_masked, language,
                                    active, monitored_since)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[],
                                  $6::bytea[], $7::text[], $8::text[], $9::bool[], $10::date[])
             ON CONFLICT (customer_id) DO UPDATE SET
                 account_id = EXCLUDED.account_id, first_name = EXCLUDED.first_name,
                 phone_key_id = EXCLUDED.phone_key_id, phone_sealed = EXCLUDED.phone_sealed,
                 phone_index = EXCLUDED.phone_index, phone_masked = EXCLUDED.phone_masked,
                 language = EXCLUDED.language,
                 active = EXCLUDED.active, monitored_since = EXCLUDED.monitored_since,
                 updated_at = now()
             WHERE (customers.account_id, customers.first_name, customers.phone_index,
                    customers.language, customers.active, customers.monitored_since)
                IS DISTINCT FROM
                   (EXCLUDED.account_id, EXCLUDED.first_name, EXCLUDED.phone_index,
                    EXCLUDED.language, EXCLUDED.active, EXCLUDED.monitored_since)
             RETURNING customer_id",
        )
        .bind(&ids)
        .bind(&accounts)
        .bind(&names)
        .bind(&key_ids)
        .bind(&sealed)
        .bind(&indexes)
        .bind(&masked)
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

/// A customer as the SMS steps need them.
pub(crate) struct Recipient {
    pub(crate) first_name: FirstName,
    pub(crate) phone: Phone,
    pub(crate) language: Language,
    pub(crate) opted_out: bool,
}

impl Recipient {
    fn from_row(phones: &PhoneVault, row: &sqlx::postgres::PgRow) -> anyhow::Result<Self> {
        let customer: String = row.get("customer_id");
        Ok(Self {
            first_name: FirstName::parse(row.get("first_name"))?,
            phone: phones.reveal(
                row.get("phone_key_id"),
                row.get("phone_sealed"),
                row.get("phone_e164"),
                Context::Customer(&customer),
            )?,
            language: Language::parse(row.get("language"))?,
            opted_out: row.get("opted_out"),
        })
    }
}

/// The customers of a batch as the SMS steps need them, by customer id (consent read now).
pub(crate) async fn recipients(
    pool: &PgPool,
    phones: &PhoneVault,
    customers: &[String],
) -> anyhow::Result<HashMap<String, Recipient>> {
    let rows = sqlx::query(
        "SELECT customer_id, first_name, phone_key_id, phone_sealed, phone_e164, language,
                opted_out
           FROM customers WHERE customer_id = ANY($1)",
    )
    .bind(customers)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| Ok((row.get("customer_id"), Recipient::from_row(phones, row)?)))
        .collect()
}

/// One customer as the SMS steps need them (consent read now).
pub(crate) async fn recipient(
    pool: &PgPool,
    phones: &PhoneVault,
    customer: &CustomerId,
) -> anyhow::Result<Option<Recipient>> {
    let row = sqlx::query(
        "SELECT customer_id, first_name, phone_key_id, phone_sealed, phone_e164, language,
                opted_out
           FROM customers WHERE customer_id = $1",
    )
    .bind(customer.as_str())
    .fetch_optional(pool)
    .await?;
    row.as_ref()
        .map(|row| Recipient::from_row(phones, row))
        .transpose()
}
