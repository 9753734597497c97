//! `pcn-worker retention`: balance checks are kept for the retention period (84 months, the
//! 7-year rule) and no longer. A month partition of `balance_checks` whose every day is older than
//! the period is, in order:
//!
//! 1. exported to `<dir>/<partition>.csv.gz` (CSV with a header, primary-key order, gzip) with
//!    `<partition>.csv.gz.sha256` beside it (`sha256sum -c` reads it), each written under a
//!    `.partial` name, synced and renamed, so a file with the final name is always complete;
//! 2. verified from disk: the checksum matches the file and the file holds exactly as many rows as
//!    the partition;
//! 3. detached and dropped, its month's tallies deleted and the audit entry `PARTITION_ARCHIVED`
//!    (partition, rows, file, SHA-256) written, in one transaction.
//!
//! Killed anywhere, a run again picks up where it stopped: an export that exists and verifies is
//! not made again, a partition already dropped is not listed any more (the drop and its audit entry
//! commit together). Without `--apply` nothing is written; the run says what it would do. The
//! audit log itself is never touched: only `balance_checks` is partitioned.
//!
//! `--restore FILE` verifies an export against its checksum and copies it back through the parent
//! table (the partition is created again; its tallies are counted again), audited
//! `PARTITION_RESTORED`. A restored month past the period is archived again by the next run (the
//! same export, verified again). The command connects with the setup URL and acts as the owner role, the
//! only one that may detach and drop.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{Months, NaiveDate, Utc};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use pcn_activities::partitions::{self, ArchiveFacts, DefaultRows, MonthPartition};
use pcn_activities::roles::RoleName;
use sha2::{Digest as _, Sha256};
use sqlx::{Connection as _, Executor as _, PgConnection};

/// What a retention run does.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// The retention period in months.
    pub months: u32,
    /// Where the exports are written.
    pub dir: PathBuf,
    /// Export, drop and audit (false: only report).
    pub apply: bool,
    /// Today's business date (Asia/Jerusalem); the period is counted back from it.
    pub today: NaiveDate,
}

/// Today's business date in Asia/Jerusalem.
pub fn business_today() -> NaiveDate {
    Utc::now()
        .with_timezone(&pcn_workflows::domain::JERUSALEM)
        .date_naive()
}

/// The first day still kept: `today` minus the period. A partition is past the period when its
/// month ends on or before this day.
pub fn cutoff(today: NaiveDate, months: u32) -> NaiveDate {
    today
        .checked_sub_months(Months::new(months))
        .unwrap_or(NaiveDate::MIN)
}

/// What happened to one partition past the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Dry run: it would be exported and dropped.
    WouldArchive {
        /// Its rows.
        rows: i64,
    },
    /// Exported (or an earlier export verified), dropped and audited.
    Archived {
        /// Its rows.
        rows: i64,
        /// The export.
        file: PathBuf,
        /// The export's SHA-256.
        sha256: String,
        /// An export from an earlier, interrupted run was verified and used.
        reused_export: bool,
    },
}

/// What a run found and did.
#[derive(Debug, Clone)]
pub struct RetentionReport {
    /// The first day kept.
    pub cutoff: NaiveDate,
    /// The partitions past the period, oldest first.
    pub partitions: Vec<(MonthPartition, Action)>,
    /// Partitions kept (within the period).
    pub kept: usize,
    /// Rows in the default partitions (months without a partition): should be none.
    pub default_rows: Vec<DefaultRows>,
}

impl std::fmt::Display for RetentionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "retention: keeping balance checks from {} ({} month partitions kept)",
            self.cutoff, self.kept
        )?;
        if self.partitions.is_empty() {
            writeln!(f, "no partition is past the retention period")?;
        }
        for (partition, action) in &self.partitions {
            match action {
                Action::WouldArchive { rows } => writeln!(
                    f,
                    "would archive {} ({rows} rows): dry run, --apply to export, drop and audit",
                    partition.name()
                )?,
                Action::Archived {
                    rows,
                    file,
                    sha256,
                    reused_export,
                } => writeln!(
                    f,
                    "archived {} ({rows} rows) to {} sha256 {sha256}{}",
                    partition.name(),
                    file.display(),
                    if *reused_export {
                        " (export of an earlier run, verified)"
                    } else {
                        ""
                    }
                )?,
            }
        }
        for stray in &self.default_rows {
            writeln!(
                f,
                "WARNING: {} rows of {} in {}_default (the month has no partition; \
                 `pcn-worker setup` or the next sweep within 12 months creates it)",
                stray.rows,
                stray.month.format("%Y-%m"),
                stray.table
            )?;
        }
        Ok(())
    }
}

/// `pcn-worker retention`: the settings parsed (each bad value named), then a run or a restore,
/// printed.
pub async fn command(
    setup: &crate::config::SetupArgs,
    args: &crate::config::RetentionArgs,
    profile: crate::config::Profile,
) -> anyhow::Result<()> {
    let months = args.months(profile)?;
    let owner = setup.owner_role()?;
    let mut conn = owner_connection(&setup.database_setup_url, &owner).await?;
    if let Some(file) = &args.restore {
        let (partition, rows) = restore(&mut conn, file).await?;
        println!(
            "restored {rows} rows of {} from {}",
            partition.name(),
            file.display()
        );
        return Ok(());
    }
    let report = run(
        &mut conn,
        &RetentionSettings {
            months,
            dir: args.retention_dir.clone(),
            apply: args.apply,
            today: business_today(),
        },
    )
    .await?;
    print!("{report}");
    Ok(())
}

/// `pcn-worker setup`'s part: the month partitions from this month to
/// [`partitions::AHEAD_MONTHS`] ahead (through `create_month_partitions`, which runs as the owner
/// whoever calls it); returns how many were created.
pub async fn create_ahead(setup_url: &str) -> anyhow::Result<i32> {
    let pool = pcn_activities::db::connect(setup_url, 1).await?;
    let created =
        partitions::create_ahead(&pool, business_today(), partitions::AHEAD_MONTHS + 1).await;
    pool.close().await;
    created
}

/// A connection with `setup_url` acting as `owner` (`SET ROLE`).
pub async fn owner_connection(setup_url: &str, owner: &RoleName) -> anyhow::Result<PgConnection> {
    let mut conn = PgConnection::connect(setup_url)
        .await
        .context("connecting with PCN_DATABASE_SETUP_URL")?;
    conn.execute(sqlx::AssertSqlSafe(format!("SET ROLE \"{owner}\"")))
        .await
        .with_context(|| {
            format!("acting as the owner role {owner} (the setup login must be a member of it)")
        })?;
    Ok(conn)
}

/// Archives every month partition past the period (see the module documentation).
pub async fn run(
    conn: &mut PgConnection,
    settings: &RetentionSettings,
) -> anyhow::Result<RetentionReport> {
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('pcn-retention'))")
        .fetch_one(&mut *conn)
        .await?;
    anyhow::ensure!(
        locked,
        "another `pcn-worker retention` is running on this database"
    );
    let result = archive_past(conn, settings).await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext('pcn-retention'))")
        .execute(&mut *conn)
        .await;
    result
}

async fn archive_past(
    conn: &mut PgConnection,
    settings: &RetentionSettings,
) -> anyhow::Result<RetentionReport> {
    let cutoff = cutoff(settings.today, settings.months);
    let all = partitions::list(conn).await?;
    let (past, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|p| p.end() <= cutoff);
    if settings.apply && !past.is_empty() {
        std::fs::create_dir_all(&settings.dir).with_context(|| {
            format!(
                "creating the retention directory {} (PCN_RETENTION_DIR)",
                settings.dir.display()
            )
        })?;
    }
    let mut done = Vec::new();
    for partition in past {
        let rows = partitions::row_count(conn, &partition).await?;
        if !settings.apply {
            done.push((partition, Action::WouldArchive { rows }));
            continue;
        }
        let (file, sums) = paths(&settings.dir, &partition);
        let (verified, reused_export) = match verify(&file, &sums) {
            Ok(v) if v.rows == rows => (v, true),
            _ => {
                export(conn, &partition, &file, &sums).await?;
                let v = verify(&file, &sums)
                    .with_context(|| format!("verifying the export {}", file.display()))?;
                anyhow::ensure!(
                    v.rows == rows,
                    "the export {} holds {} rows, {} has {rows}: not dropped",
                    file.display(),
                    v.rows,
                    partition.name()
                );
                (v, false)
            }
        };
        let facts = ArchiveFacts {
            rows,
            file: file_name(&file),
            sha256: verified.sha256.clone(),
            retention_months: settings.months,
        };
        partitions::drop_month(conn, &partition, &facts).await?;
        tracing::info!(partition = %partition.name(), rows, file = %file.display(), "partition archived");
        done.push((
            partition,
            Action::Archived {
                rows,
                file,
                sha256: verified.sha256,
                reused_export,
            },
        ));
    }
    Ok(RetentionReport {
        cutoff,
        partitions: done,
        kept: kept.len(),
        default_rows: partitions::default_rows(conn).await?,
    })
}

/// The export and its checksum file of `partition` in `dir`.
pub fn paths(dir: &Path, partition: &MonthPartition) -> (PathBuf, PathBuf) {
    let file = dir.join(format!("{}.csv.gz", partition.name()));
    let sums = dir.join(format!("{}.csv.gz.sha256", partition.name()));
    (file, sums)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A file's bytes pass through a SHA-256 on their way to disk.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `path` under `path.partial`, synced, then renamed: a file with the final name is whole.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Exports `partition` to `file` (gzip CSV) and its checksum to `sums`, each under a `.partial`
/// name first (step 1 of a run; [`verify`] is step 2).
pub async fn export(
    conn: &mut PgConnection,
    partition: &MonthPartition,
    file: &Path,
    sums: &Path,
) -> anyhow::Result<()> {
    let tmp = partial(file);
    let out = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut gz = GzEncoder::new(
        Hashing {
            inner: BufWriter::new(out),
            hash: Sha256::new(),
        },
        Compression::default(),
    );
    partitions::export_csv(conn, partition, |chunk| {
        gz.write_all(chunk)
            .with_context(|| format!("writing {}", tmp.display()))
    })
    .await?;
    let hashing = gz.finish().context("finishing the gzip stream")?;
    let sha256 = hex::encode(hashing.hash.finalize());
    let out = hashing
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", tmp.display()))?;
    out.sync_all()?;
    std::fs::rename(&tmp, file).with_context(|| format!("renaming {}", tmp.display()))?;
    let tmp_sums = partial(sums);
    {
        let mut out = File::create(&tmp_sums)?;
        writeln!(out, "{sha256}  {}", file_name(file))?;
        out.sync_all()?;
    }
    std::fs::rename(&tmp_sums, sums).with_context(|| format!("renaming {}", tmp_sums.display()))?;
    if let Some(dir) = file.parent() {
        // The renames themselves survive a crash once the directory is synced.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// An export checked against its checksum file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The file's SHA-256 (hex), equal to the one in the checksum file.
    pub sha256: String,
    /// Rows in the file (records after the header).
    pub rows: i64,
}

/// Checks `file` against the checksum in `sums` and counts its rows.
pub fn verify(file: &Path, sums: &Path) -> anyhow::Result<Verified> {
    let expected = std::fs::read_to_string(sums)
        .with_context(|| format!("reading the checksum file {}", sums.display()))?;
    let expected = expected
        .split_whitespace()
        .next()
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| format!("{} holds no SHA-256", sums.display()))?
        .to_ascii_lowercase();
    let mut hash = Sha256::new();
    let mut reader =
        BufReader::new(File::open(file).with_context(|| format!("opening {}", file.display()))?);
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
    }
    let sha256 = hex::encode(hash.finalize());
    anyhow::ensure!(
        sha256 == expected,
        "{}: SHA-256 {sha256}, but {} says {expected}",
        file.display(),
        sums.display()
    );
    let records = count_csv_records(GzDecoder::new(BufReader::new(File::open(file)?)))
        .with_context(|| format!("reading {}", file.display()))?;
    anyhow::ensure!(records >= 1, "{}: no CSV header", file.display());
    Ok(Verified {
        sha256,
        rows: i64::try_from(records - 1).unwrap_or(i64::MAX),
    })
}

/// CSV records in `reader` (Postgres's CSV: a quoted field may hold line breaks, a quote inside
/// it is doubled), header included; a last line without a line break counts.
pub fn count_csv_records(mut reader: impl Read) -> std::io::Result<u64> {
    let (mut records, mut quoted, mut pending) = (0_u64, false, false);
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        for &b in &buffer[..n] {
            match b {
                b'"' => {
                    quoted = !quoted;
                    pending = true;
                }
                b'\n' if !quoted => {
                    records += 1;
                    pending = false;
                }
                _ => pending = true,
            }
        }
    }
    Ok(records + u64::from(pending))
}

/// The partition an export's file name names (`<table>_YYYY_MM.csv.gz`).
pub fn partition_of_file(file: &Path) -> anyhow::Result<MonthPartition> {
    let name = file_name(file);
    let stem = name
        .strip_suffix(".csv.gz")
        .with_context(|| format!("{name}: an export is named <partition>.csv.gz"))?;
    let (table, month) = stem
        .len()
        .checked_sub(7)
        .map(|at| stem.split_at(at))
        .with_context(|| format!("{name}: no month in the name"))?;
    let table = table
        .strip_suffix('_')
        .with_context(|| format!("{name}: no month in the name"))?;
    let month = NaiveDate::parse_from_str(&format!("{month}_01"), "%Y_%m_%d")
        .with_context(|| format!("{name}: {month:?} is not a month (YYYY_MM)"))?;
    MonthPartition::of(table, month)
}

/// Verifies `file` against `<file>.sha256` and copies it back (see the module documentation);
/// returns the partition and the rows restored.
pub async fn restore(
    conn: &mut PgConnection,
    file: &Path,
) -> anyhow::Result<(MonthPartition, u64)> {
    let partition = partition_of_file(file)?;
    let mut sums = file.as_os_str().to_owned();
    sums.push(".sha256");
    let verified = verify(file, Path::new(&sums))?;
    let facts = ArchiveFacts {
        rows: verified.rows,
        file: file_name(file),
        sha256: verified.sha256,
        retention_months: 0,
    };
    let mut csv = GzDecoder::new(BufReader::new(File::open(file)?));
    let copied = partitions::restore_csv(conn, &partition, &mut csv, &facts).await?;
    anyhow::ensure!(
        i64::try_from(copied).ok() == Some(verified.rows),
        "{} rows copied, the file holds {}",
        copied,
        verified.rows
    );
    Ok((partition, copied))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_past_the_period_when_its_whole_month_is() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        let cut = cutoff(today, 84);
        assert_eq!(cut, NaiveDate::from_ymd_opt(2019, 12, 5).unwrap());
        let november = MonthPartition::of(
            "balance_checks",
            NaiveDate::from_ymd_opt(2019, 11, 1).unwrap(),
        )
        .unwrap();
        let december = MonthPartition::of(
            "balance_checks",
            NaiveDate::from_ymd_opt(2019, 12, 1).unwrap(),
        )
        .unwrap();
        assert!(november.end() <= cut);
        assert!(
            december.end() > cut,
            "its 5th and later days are still kept"
        );
    }

    #[test]
    fn csv_records_count_quoted_line_breaks_as_data() {
        let csv = b"a,b\n1,\"x\ny\"\n2,\"say \"\"hi\"\"\"\n3,z";
        assert_eq!(count_csv_records(&csv[..]).unwrap(), 4);
        assert_eq!(count_csv_records(&b"a,b\n"[..]).unwrap(), 1);
        assert_eq!(count_csv_records(&b""[..]).unwrap(), 0);
    }

    #[test]
    fn an_export_names_its_partition() {
        let p = partition_of_file(Path::new("/x/balance_checks_2019_10.csv.gz")).unwrap();
        assert_eq!(p.name(), "balance_checks_2019_10");
        for bad in [
            "balance_checks_2019_10.csv",
            "audit_log_2019_10.csv.gz",
            "balance_checks_2019_13.csv.gz",
            "x.csv.gz",
        ] {
            assert!(partition_of_file(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
