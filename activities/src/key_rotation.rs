//! `pcn-worker rotate-keys`: re-seals every stored phone number with the newest key.
//!
//! The one writer of the phone columns besides their owner modules' inserts: it rewrites
//! `phone_key_id`, `phone_sealed` (and `phone_index`, `phone_masked` where the table has them) of
//! `customers`, `sms_attempts` and `inbound_messages`, and clears `phone_e164` of rows written
//! before encryption. It runs as the owner role (the application role may not rewrite a phone).
//!
//! Batched and resumable: each batch (`SELECT … FOR UPDATE SKIP LOCKED`, then one `UPDATE`) is its
//! own transaction and picks rows not yet on the newest key, so a run stopped anywhere is finished
//! by running it again, and a second run finds nothing. A value that does not open (a key missing
//! from the ring, an altered ciphertext) stops the run before its batch is written, naming the
//! table, the row and the key id. Each run writes one audit entry (`PHONE_KEYS_ROTATED`) with
//! the counts.

use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use sqlx::{PgPool, Row};

use crate::audit::{self, AuditEntry};
use crate::failpoint;
use crate::phone_vault::{Context, PhoneVault};

/// A table with a sealed phone number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `customers` (with the blind index and the masked form).
    Customers,
    /// `sms_attempts`.
    Attempts,
    /// `inbound_messages` (with the blind index).
    Inbound,
}

impl Table {
    /// Every table, in the order a run takes them.
    pub const ALL: [Table; 3] = [Table::Customers, Table::Attempts, Table::Inbound];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Customers => "customers",
            Self::Attempts => "sms_attempts",
            Self::Inbound => "inbound_messages",
        }
    }

    /// The row key (text) and the two parts of its sealing context.
    fn key_columns(self) -> (&'static str, &'static str) {
        match self {
            Self::Customers => ("customer_id", "customer_id AS c1, '' AS c2"),
            Self::Attempts => ("message_ref", "message_ref AS c1, '' AS c2"),
            Self::Inbound => ("id", "carrier AS c1, carrier_message_id AS c2"),
        }
    }

    fn context<'a>(self, c1: &'a str, c2: &'a str) -> Context<'a> {
        match self {
            Self::Customers => Context::Customer(c1),
            Self::Attempts => Context::Attempt(c1),
            Self::Inbound => Context::Inbound(c1, c2),
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Rows re-sealed per table, in [`Table::ALL`]'s order.
    pub rows: [u64; 3],
    /// Batches committed.
    pub batches: u64,
}

impl Rotated {
    /// Rows re-sealed in all.
    pub fn total(&self) -> u64 {
        self.rows.iter().sum()
    }
}

/// Re-seals, in batches of `batch`, every number not sealed with `phones`' newest key (with
/// `all`, every number: after a change of the blind index's key). `pool` acts as the owner role.
pub async fn rotate(
    pool: &PgPool,
    phones: &PhoneVault,
    batch: i64,
    all: bool,
    actor: &str,
) -> anyhow::Result<Rotated> {
    anyhow::ensure!(
        (1..=100_000).contains(&batch),
        "batch must be 1..=100000, not {batch}"
    );
    let started = Instant::now();
    let newest = phones.newest_key().to_owned();
    let mut out = Rotated::default();
    for (t, table) in Table::ALL.into_iter().enumerate() {
        // With `all`, rows are taken in key order past the last one done (each is re-sealed
        // once); otherwise the rows still to do are exactly those not on the newest key.
        let mut after = String::new();
        loop {
            let n = rotate_batch(
                pool,
                phones,
                table,
                &newest,
                batch,
                all.then_some(&mut after),
            )
            .await?;
            if n == 0 {
                break;
            }
            out.rows[t] += n;
            out.batches += 1;
            tracing::info!(
                table = table.name(),
                rows = out.rows[t],
                "rotate-keys: batch committed"
            );
            failpoint::hit(failpoint::ROTATE_AFTER_BATCH);
        }
    }
    audit::record(
        pool,
        &AuditEntry {
            actor: actor.to_owned(),
            action: "PHONE_KEYS_ROTATED",
            subject_type: "phone_key",
            subject_id: newest.clone(),
            details: json!({
                "customers": out.rows[0],
                "sms_attempts": out.rows[1],
                "inbound_messages": out.rows[2],
                "batches": out.batches,
                "all": all,
                "seconds": started.elapsed().as_secs(),
            }),
            idempotency_key: None,
        },
    )
    .await
    .context("auditing the rotation")?;
    Ok(out)
}

/// One batch of `table`, in its own transaction: the rows read, opened, sealed again and
/// written. Returns how many.
async fn rotate_batch(
    pool: &PgPool,
    phones: &PhoneVault,
    table: Table,
    newest: &str,
    batch: i64,
    after: Option<&mut String>,
) -> anyhow::Result<u64> {
    let name = table.name();
    let (key, context) = table.key_columns();
    let filter = if after.is_some() {
        format!("{key}::text > $1")
    } else {
        "(phone_key_id IS DISTINCT FROM $1 OR phone_e164 IS NOT NULL)".to_owned()
    };
    let order = if table == Table::Inbound {
        // Numeric order for the bigint key, text order otherwise (matches the filter).
        "id::text".to_owned()
    } else {
        key.to_owned()
    };
    let select = format!(
        "SELECT {key}::text AS key, {context}, phone_key_id, phone_sealed, phone_e164
           FROM {name} WHERE {filter}
          ORDER BY {order} LIMIT $2 FOR UPDATE SKIP LOCKED"
    );
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(select))
        .bind(after.as_deref().map_or(newest, String::as_str))
        .bind(batch)
        .fetch_all(&mut *tx)
        .await
        .with_context(|| format!("reading a batch of {name}"))?;
    let mut keys = Vec::with_capacity(rows.len());
    let mut key_ids = Vec::with_capacity(rows.len());
    let mut sealed = Vec::with_capacity(rows.len());
    let mut indexes = Vec::with_capacity(rows.len());
    let mut masked = Vec::with_capacity(rows.len());
    for row in &rows {
        let row_key: String = row.get("key");
        let (c1, c2): (String, String) = (row.get("c1"), row.get("c2"));
        let context = table.context(&c1, &c2);
        let phone = phones
            .reveal(
                row.get("phone_key_id"),
                row.get("phone_sealed"),
                row.get("phone_e164"),
                context,
            )
            .with_context(|| format!("{name} row {row_key}: nothing of this batch was written"))?;
        let again = phones.seal(&phone, context);
        key_ids.push(again.key_id);
        sealed.push(again.sealed);
        indexes.push(phones.index(&phone));
        masked.push(phone.masked());
        keys.push(row_key);
    }
    let Some(last) = keys.last().cloned() else {
        return Ok(0);
    };
    let extra = match table {
        Table::Customers => ", phone_index = u.idx, phone_masked = u.masked",
        Table::Inbound => ", phone_index = u.idx",
        Table::Attempts => "",
    };
    let update = format!(
        "UPDATE {name} AS t
            SET phone_key_id = u.key_id, phone_sealed = u.sealed, phone_e164 = NULL{extra}
           FROM UNNEST($1::text[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])
                AS u(key, key_id, sealed, idx, masked)
          WHERE t.{key}::text = u.key"
    );
    let written = sqlx::query(sqlx::AssertSqlSafe(update))
        .bind(&keys)
        .bind(&key_ids)
        .bind(&sealed)
        .bind(&indexes)
        .bind(&masked)
        .execute(&mut *tx)
        .await
        .with_context(|| format!("re-sealing a batch of {name}"))?
        .rows_affected();
    tx.commit().await?;
    if let Some(after) = after {
        *after = last;
    }
    Ok(written)
}
