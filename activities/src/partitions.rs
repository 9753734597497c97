//! The month partitions of the partitioned tables (migration 14: `balance_checks`, by the month of
//! its business date) and the SQL of their life cycle: created ahead, exported, dropped, restored.
//!
//! - **Ahead.** [`create_ahead`] calls `create_month_partitions`, a SECURITY DEFINER function owned
//!   by the owner role that creates only the missing month partitions of the known tables (the
//!   application role runs no DDL, but may call it). `pcn-worker setup` creates the next 12
//!   months; every daily sweep ([`keep_ahead`]) keeps 12 months ahead of the date it checks.
//! - **Default.** A row whose month has no partition lands in `balance_checks_default`, so no
//!   insert ever fails; [`default_rows`] reports it (the sweep logs a warning, the worker's
//!   `pcn_partition_default_rows` gauge and `pcn-worker retention` show it), and creating the
//!   month's partition moves it there.
//! - **Retention** (`pcn-worker retention`, as the owner): [`export_csv`] streams a partition as
//!   CSV, [`drop_month`] detaches and drops it, deletes the month's tallies (derived from its
//!   rows) and writes the audit entry, in one transaction; [`restore_csv`] puts an export back
//!   through the parent table, whose trigger counts the tallies again.
//!
//! Partition names are made here from a table of [`PARTITIONED`] and a month, never taken from
//! input, so the identifiers in the statements below are always `<table>_YYYY_MM`.

use anyhow::Context as _;
use chrono::{Datelike as _, Months, NaiveDate};
use futures::StreamExt as _;
use sqlx::{Connection as _, PgConnection, PgPool, Row as _};

use crate::audit::{self, AuditEntry};

/// The tables partitioned by month, with their partition key.
pub const PARTITIONED: [(&str, &str); 1] = [("balance_checks", "business_date")];

/// Months the daily sweep and `setup` keep created ahead of the current month.
pub const AHEAD_MONTHS: i32 = 12;

/// The columns of `balance_checks` in export order (the file's header).
pub const BALANCE_CHECK_COLUMNS: &str = "customer_id, business_date, outcome, amount, currency, \
     threshold, bank_reference_id, detail, fetched_at, workflow_id, run_id";

/// One month partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthPartition {
    /// The partitioned table (one of [`PARTITIONED`]).
    pub table: &'static str,
    /// The first day of its month.
    pub month: NaiveDate,
}

impl MonthPartition {
    /// The partition of `table` (one of [`PARTITIONED`]) for the month of `day`.
    pub fn of(table: &str, day: NaiveDate) -> anyhow::Result<Self> {
        let table = PARTITIONED
            .iter()
            .map(|(t, _)| *t)
            .find(|t| *t == table)
            .with_context(|| format!("{table:?} is not a partitioned table"))?;
        Ok(Self {
            table,
            month: first_of_month(day),
        })
    }

    /// Its name: `<table>_YYYY_MM`.
    pub fn name(&self) -> String {
        format!(
            "{}_{:04}_{:02}",
            self.table,
            self.month.year(),
            self.month.month()
        )
    }

    /// The first day after its month.
    pub fn end(&self) -> NaiveDate {
        self.month + Months::new(1)
    }

    /// The partition key column of its table.
    fn key(&self) -> &'static str {
        PARTITIONED
            .iter()
            .find(|(t, _)| *t == self.table)
            .map(|(_, k)| *k)
            .unwrap_or("business_date")
    }
}

/// The first day of `day`'s month.
pub fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Creates the missing month partitions for `months` months from the month of `first` (at most
/// 36); returns how many were created.
pub async fn create_ahead(pool: &PgPool, first: NaiveDate, months: i32) -> anyhow::Result<i32> {
    sqlx::query_scalar("SELECT create_month_partitions($1, $2)")
        .bind(first)
        .bind(months)
        .fetch_one(pool)
        .await
        .with_context(|| format!("creating {months} month partitions from {first}"))
}

/// What the daily sweep does before writing the checks of `date`: the month partitions from
/// `date`'s month to [`AHEAD_MONTHS`] later exist, and rows in a default partition are reported.
/// Never fails the sweep: a row without its partition still lands in the default partition.
pub async fn keep_ahead(pool: &PgPool, date: NaiveDate) {
    match create_ahead(pool, date, AHEAD_MONTHS + 1).await {
        Ok(0) => {}
        Ok(created) => tracing::info!(created, from = %date, "month partitions created ahead"),
        Err(err) => tracing::warn!(
            error = %format!("{err:#}"),
            "creating month partitions ahead failed: rows of a month without a partition go to \
             the default partition until it is created"
        ),
    }
    let rows = match pool.acquire().await {
        Ok(mut conn) => default_rows(&mut conn).await,
        Err(err) => Err(err.into()),
    };
    match rows {
        Ok(rows) => {
            for stray in rows {
                tracing::warn!(
                    table = stray.table,
                    month = %stray.month,
                    rows = stray.rows,
                    "rows in the default partition: their month has no partition (it is created \
                     by the next sweep of a date within 12 months of it, or `pcn-worker setup`)"
                );
            }
        }
        Err(err) => {
            tracing::warn!(error = %format!("{err:#}"), "reading the default partitions failed")
        }
    }
}

/// Rows of one month found in a table's default partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRows {
    /// The partitioned table.
    pub table: &'static str,
    /// The month of the rows.
    pub month: NaiveDate,
    /// How many.
    pub rows: i64,
}

/// The rows of every partitioned table's default partition, by month (empty when all is well).
/// The application role may read the default partitions (grants.sql) for this.
pub async fn default_rows(conn: &mut PgConnection) -> anyhow::Result<Vec<DefaultRows>> {
    let mut found = Vec::new();
    for (table, key) in PARTITIONED {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT date_trunc('month', {key})::date, count(*) FROM {table}_default GROUP BY 1 ORDER BY 1"
        )))
        .fetch_all(&mut *conn)
        .await
        .with_context(|| format!("reading {table}_default"))?;
        found.extend(rows.into_iter().map(|r| DefaultRows {
            table,
            month: r.get(0),
            rows: r.get(1),
        }));
    }
    Ok(found)
}

/// The month partitions attached to the partitioned tables, oldest first (the default partitions
/// are not listed: see [`default_rows`]). Only partitions named as this module names them are
/// listed, so nothing made by hand is ever touched.
pub async fn list(conn: &mut PgConnection) -> anyhow::Result<Vec<MonthPartition>> {
    let mut found = Vec::new();
    for (table, _) in PARTITIONED {
        let rows = sqlx::query(
            "SELECT c.relname::text,
                    (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                  'FROM \\(''([0-9-]+)''\\) TO'))[1]::date
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = $1::regclass
                AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
              ORDER BY 2",
        )
        .bind(table)
        .fetch_all(&mut *conn)
        .await
        .with_context(|| format!("listing the partitions of {table}"))?;
        for row in rows {
            let (name, lower): (String, Option<NaiveDate>) = (row.get(0), row.get(1));
            let Some(month) = lower else { continue };
            let partition = MonthPartition { table, month };
            if partition.name() == name && first_of_month(month) == month {
                found.push(partition);
            } else {
                tracing::warn!(partition = %name, "a partition not made by pcn: left alone");
            }
        }
    }
    Ok(found)
}

/// Whether `partition` exists (attached or not).
pub async fn exists(conn: &mut PgConnection, partition: &MonthPartition) -> anyhow::Result<bool> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT to_regclass(format('public.%I', $1::text))::text")
            .bind(partition.name())
            .fetch_one(&mut *conn)
            .await?;
    Ok(found.is_some())
}

/// The rows of `partition`.
pub async fn row_count(conn: &mut PgConnection, partition: &MonthPartition) -> anyhow::Result<i64> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}",
        partition.name()
    )))
    .fetch_one(&mut *conn)
    .await
    .with_context(|| format!("counting the rows of {}", partition.name()))
}

/// Streams `partition` as CSV with a header ([`BALANCE_CHECK_COLUMNS`], in primary-key order) to
/// `sink`, chunk by chunk; returns the bytes written.
pub async fn export_csv<F>(
    conn: &mut PgConnection,
    partition: &MonthPartition,
    mut sink: F,
) -> anyhow::Result<u64>
where
    F: FnMut(&[u8]) -> anyhow::Result<()>,
{
    let statement = format!(
        "COPY (SELECT {BALANCE_CHECK_COLUMNS} FROM {} ORDER BY customer_id, business_date)
           TO STDOUT WITH (FORMAT csv, HEADER true)",
        partition.name()
    );
    let mut stream = conn
        .copy_out_raw(&statement)
        .await
        .with_context(|| format!("exporting {}", partition.name()))?;
    let mut bytes = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("exporting {}", partition.name()))?;
        bytes += chunk.len() as u64;
        sink(&chunk)?;
    }
    Ok(bytes)
}

/// What the audit entry of a dropped or restored partition names.
#[derive(Debug, Clone)]
pub struct ArchiveFacts {
    /// Rows of the partition.
    pub rows: i64,
    /// The export's file name.
    pub file: String,
    /// SHA-256 of the export (hex).
    pub sha256: String,
    /// The retention period the partition was past, in months.
    pub retention_months: u32,
}

/// Detaches and drops `partition` and deletes its month's tallies (derived from its rows, rebuilt
/// by a restore), with the audit entry `PARTITION_ARCHIVED`, in one transaction: either all of it
/// happened or none. `expected_rows` is the count the export was verified against; a partition
/// that no longer has it is left alone. Returns false when the partition was already gone.
pub async fn drop_month(
    conn: &mut PgConnection,
    partition: &MonthPartition,
    facts: &ArchiveFacts,
) -> anyhow::Result<bool> {
    let name = partition.name();
    let mut tx = conn.begin().await?;
    // Detaching takes the parent's lock: wait for a running sweep a while, not for ever.
    sqlx::raw_sql("SET LOCAL lock_timeout = '30s'")
        .execute(&mut *tx)
        .await?;
    if !exists(&mut tx, partition).await? {
        return Ok(false);
    }
    let rows = row_count(&mut tx, partition).await?;
    anyhow::ensure!(
        rows == facts.rows,
        "{name} has {rows} rows, its export {} has {}: not dropped",
        facts.file,
        facts.rows
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE {table} DETACH PARTITION {name}; DROP TABLE {name};",
        table = partition.table
    )))
    .execute(&mut *tx)
    .await
    .with_context(|| format!("detaching and dropping {name}"))?;
    let tallies = sqlx::query("DELETE FROM monthly_tallies WHERE month = $1")
        .bind(partition.month)
        .execute(&mut *tx)
        .await
        .context("deleting the month's tallies")?
        .rows_affected();
    audit::record(
        &mut *tx,
        &AuditEntry {
            actor: "system".into(),
            action: "PARTITION_ARCHIVED",
            subject_type: "partition",
            subject_id: name.clone(),
            details: serde_json::json!({
                "table": partition.table,
                "month": partition.month.to_string(),
                "rows": facts.rows,
                "file": facts.file,
                "sha256": facts.sha256,
                "retention_months": facts.retention_months,
                "tallies_deleted": tallies,
            }),
            // The drop and the entry commit together, so a retry cannot write it twice; and a
            // month restored and archived again gets an entry each time.
            idempotency_key: None,
        },
    )
    .await
    .context("auditing the archived partition")?;
    tx.commit().await?;
    Ok(true)
}

/// Puts an export of `partition` back (`csv`: its decompressed content, header included): creates
/// the partition if it is missing, refuses when it already holds rows, copies the rows in through
/// the parent table, so every constraint is checked and the tally trigger counts the month again,
/// and writes the audit entry `PARTITION_RESTORED`, in one transaction. Returns the rows copied.
pub async fn restore_csv(
    conn: &mut PgConnection,
    partition: &MonthPartition,
    csv: &mut dyn std::io::Read,
    facts: &ArchiveFacts,
) -> anyhow::Result<u64> {
    let name = partition.name();
    sqlx::query("SELECT create_month_partitions($1, 1)")
        .bind(partition.month)
        .execute(&mut *conn)
        .await
        .with_context(|| format!("creating {name}"))?;
    let mut tx = conn.begin().await?;
    let rows = row_count(&mut tx, partition).await?;
    anyhow::ensure!(
        rows == 0,
        "{name} already holds {rows} rows: restoring {} would duplicate them (nothing copied)",
        facts.file
    );
    let mut copy = tx
        .copy_in_raw(&format!(
            "COPY {table} ({BALANCE_CHECK_COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER true)",
            table = partition.table
        ))
        .await
        .context("starting the restore")?;
    let mut buffer = vec![0_u8; 1 << 20];
    loop {
        let n = match csv.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) => {
                let _ = copy.abort("reading the export failed").await;
                return Err(err).with_context(|| format!("reading {}", facts.file));
            }
        };
        if let Err(err) = copy.send(&buffer[..n]).await {
            let _ = copy.abort("send failed").await;
            return Err(err).context("copying the export");
        }
    }
    let copied = copy.finish().await.context("copying the export")?;
    // Every row of the file must be of the partition's month.
    let inside: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {table} WHERE {key} >= $1 AND {key} < $2",
        table = partition.table,
        key = partition.key()
    )))
    .bind(partition.month)
    .bind(partition.end())
    .fetch_one(&mut *tx)
    .await?;
    anyhow::ensure!(
        inside >= i64::try_from(copied).unwrap_or(i64::MAX),
        "{} holds rows outside {name}'s month: nothing restored",
        facts.file
    );
    audit::record(
        &mut *tx,
        &AuditEntry {
            actor: "system".into(),
            action: "PARTITION_RESTORED",
            subject_type: "partition",
            subject_id: name.clone(),
            details: serde_json::json!({
                "table": partition.table,
                "month": partition.month.to_string(),
                "rows": copied,
                "file": facts.file,
                "sha256": facts.sha256,
            }),
            idempotency_key: None,
        },
    )
    .await
    .context("auditing the restore")?;
    tx.commit().await?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_are_the_table_and_the_month() {
        let day = NaiveDate::from_ymd_opt(2019, 10, 17).unwrap();
        let p = MonthPartition::of("balance_checks", day).unwrap();
        assert_eq!(p.name(), "balance_checks_2019_10");
        assert_eq!(p.month, NaiveDate::from_ymd_opt(2019, 10, 1).unwrap());
        assert_eq!(p.end(), NaiveDate::from_ymd_opt(2019, 11, 1).unwrap());
        let december = MonthPartition::of(
            "balance_checks",
            NaiveDate::from_ymd_opt(2019, 12, 31).unwrap(),
        )
        .unwrap();
        assert_eq!(december.end(), NaiveDate::from_ymd_opt(2020, 1, 1).unwrap());
        assert!(MonthPartition::of("audit_log", day).is_err());
    }
}
