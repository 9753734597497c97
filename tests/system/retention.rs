//! Seven years, kept cheaply: `balance_checks` is partitioned by month; `pcn-worker retention`
//! exports the partitions past the retention period, verifies the export, drops them and audits
//! it, once; an export re-imported gives the same rows back; the application role can neither
//! drop, detach nor truncate a partition; a row of a month without a partition still lands (in
//! the default partition) and is reported.

use chrono::NaiveDate;
use pcn_activities::partitions::{self, MonthPartition};
use pcn_tests::{APP_ROLE, OWNER_ROLE, TestDb};
use pcn_worker::retention::{self, Action, RetentionSettings};
use sqlx::{Connection as _, PgConnection, PgPool};

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

/// Checks of every customer for every day of `first..=last`, written as the application writes
/// them (through the parent table); one day of each month carries a detail that CSV must quote
/// (a comma, a quote, a line break) and no amount.
async fn checks(pool: &PgPool, first: &str, last: &str) {
    sqlx::query(
        "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
                                     threshold, detail, fetched_at, workflow_id, run_id)
         SELECT c.customer_id, d::date,
                CASE WHEN extract(day FROM d) = 3 THEN 'MISSING'
                     WHEN c.customer_id LIKE '%1' THEN 'BELOW_THRESHOLD' ELSE 'PASSED' END,
                CASE WHEN extract(day FROM d) = 3 THEN NULL ELSE 14999.99 + extract(day FROM d) END,
                CASE WHEN extract(day FROM d) = 3 THEN NULL ELSE 'NIS' END,
                15000,
                CASE WHEN extract(day FROM d) = 3 THEN E'HTTP 503, \"busy\"\\nafter 3 attempts' END,
                d + interval '20 hours 0.123456 seconds', 'daily-sweep/' || d::date, 'run-1'
           FROM customers c, generate_series($1::date, $2::date, interval '1 day') d",
    )
    .bind(day(first))
    .bind(day(last))
    .execute(pool)
    .await
    .expect("balance checks");
}

/// The rows of `[first, end)` as text, in key order: the content, not only the count.
async fn content(admin: &PgPool, first: NaiveDate, end: NaiveDate) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(string_agg(b::text, E'\\n' ORDER BY customer_id, business_date), '')
           FROM balance_checks b WHERE business_date >= $1 AND business_date < $2",
    )
    .bind(first)
    .bind(end)
    .fetch_one(admin)
    .await
    .expect("content")
}

async fn tallies(admin: &PgPool, month: NaiveDate) -> String {
    sqlx::query_scalar(
        "SELECT coalesce(string_agg(t::text, ';' ORDER BY customer_id), '')
           FROM monthly_tallies t WHERE month = $1",
    )
    .bind(month)
    .fetch_one(admin)
    .await
    .expect("tallies")
}

async fn exists(admin: &PgPool, name: &str) -> bool {
    sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass($1)::text")
        .bind(name)
        .fetch_one(admin)
        .await
        .expect("to_regclass")
        .is_some()
}

async fn audit(admin: &PgPool, action: &str) -> Vec<(String, serde_json::Value)> {
    sqlx::query_as(
        "SELECT subject_id, details FROM audit_log WHERE action = $1 ORDER BY subject_id, id",
    )
    .bind(action)
    .fetch_all(admin)
    .await
    .expect("audit")
}

async fn owner(db: &TestDb) -> PgConnection {
    let setup_url = db.url.replacen(APP_ROLE, "postgres", 1);
    let owner = pcn_activities::roles::RoleName::parse(OWNER_ROLE).expect("role");
    retention::owner_connection(&setup_url, &owner)
        .await
        .expect("owner connection")
}

fn partition(month: &str) -> MonthPartition {
    MonthPartition::of("balance_checks", day(month)).expect("partition")
}

#[tokio::test]
async fn retention_exports_verifies_drops_and_audits_the_old_months_once_and_a_restore_gives_them_back()
 {
    let db = TestDb::with_customers(3).await;
    let dir = std::env::temp_dir().join(format!("pcn-retention-{}", uuid::Uuid::new_v4()));
    // Partitions for 2019-10 .. 2019-12 (as the application role: the SECURITY DEFINER function)
    // and for November 2026; 2019-10 and 2019-11 end before the cutoff of 84 months before
    // 2026-12-05 (2019-12-05), December 2019 does not.
    assert_eq!(
        partitions::create_ahead(&db.pool, day("2019-10-01"), 3)
            .await
            .unwrap(),
        3
    );
    partitions::create_ahead(&db.pool, day("2026-11-01"), 1)
        .await
        .unwrap();
    checks(&db.pool, "2019-10-01", "2019-12-31").await;
    checks(&db.pool, "2026-11-01", "2026-11-30").await;
    let (oct, nov, dec) = (
        partition("2019-10-01"),
        partition("2019-11-01"),
        partition("2026-11-01"),
    );
    let before_oct = content(&db.admin, oct.month, oct.end()).await;
    let before_nov = content(&db.admin, nov.month, nov.end()).await;
    let tallies_oct = tallies(&db.admin, oct.month).await;
    let kept_before = content(&db.admin, day("2019-12-01"), day("2027-01-01")).await;
    let kept_tallies = tallies(&db.admin, day("2019-12-01")).await;
    assert_eq!(
        before_oct.lines().count(),
        3 * 31 + 3,
        "quoted line breaks add a line"
    );
    assert!(before_oct.contains("\"busy\""), "{before_oct}");

    let mut conn = owner(&db).await;
    let settings = RetentionSettings {
        months: 84,
        dir: dir.clone(),
        apply: false,
        today: day("2026-12-05"),
    };

    // A dry run says what it would do, and does nothing.
    let dry = retention::run(&mut conn, &settings).await.expect("dry run");
    assert_eq!(dry.cutoff, day("2019-12-05"));
    assert_eq!(
        dry.partitions,
        vec![
            (oct.clone(), Action::WouldArchive { rows: 93 }),
            (nov.clone(), Action::WouldArchive { rows: 90 }),
        ]
    );
    assert!(exists(&db.admin, &oct.name()).await && exists(&db.admin, &nov.name()).await);
    assert!(!dir.exists(), "a dry run writes no file");
    assert!(audit(&db.admin, "PARTITION_ARCHIVED").await.is_empty());

    // November's export already exists from a run that was killed before the drop; a stale
    // `.partial` of October lies beside it. The run uses the first (it verifies) and ignores the
    // second.
    std::fs::create_dir_all(&dir).unwrap();
    let (nov_file, nov_sums) = retention::paths(&dir, &nov);
    retention::export(&mut conn, &nov, &nov_file, &nov_sums)
        .await
        .expect("export");
    let (oct_file, oct_sums) = retention::paths(&dir, &oct);
    std::fs::write(dir.join(format!("{}.csv.gz.partial", oct.name())), b"half").unwrap();

    let applied = retention::run(
        &mut conn,
        &RetentionSettings {
            apply: true,
            ..settings.clone()
        },
    )
    .await
    .expect("retention");
    print!("{applied}");
    let archived: Vec<(String, i64, bool)> = applied
        .partitions
        .iter()
        .map(|(p, a)| match a {
            Action::Archived {
                rows,
                reused_export,
                ..
            } => (p.name(), *rows, *reused_export),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        archived,
        vec![(oct.name(), 93, false), (nov.name(), 90, true),]
    );
    assert_eq!(applied.kept, 2, "December 2019 and November 2026 are kept");
    assert!(!exists(&db.admin, &oct.name()).await && !exists(&db.admin, &nov.name()).await);
    assert!(
        exists(&db.admin, "balance_checks_2019_12").await && exists(&db.admin, &dec.name()).await
    );
    assert_eq!(content(&db.admin, oct.month, nov.end()).await, "");
    assert_eq!(
        tallies(&db.admin, oct.month).await,
        "",
        "the month's tallies went with it"
    );
    assert_eq!(
        content(&db.admin, day("2019-12-01"), day("2027-01-01")).await,
        kept_before,
        "the months kept are untouched"
    );
    assert_eq!(tallies(&db.admin, day("2019-12-01")).await, kept_tallies);

    // The exports verify on their own (`sha256sum -c`), and the audit names each partition, its
    // rows and the file's checksum.
    for sums in [&oct_sums, &nov_sums] {
        let check = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(sums.file_name().unwrap())
            .current_dir(&dir)
            .output()
            .expect("sha256sum");
        assert!(check.status.success(), "{check:?}");
    }
    let entries = audit(&db.admin, "PARTITION_ARCHIVED").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    for ((subject, details), (file, sums, rows)) in entries
        .iter()
        .zip([(&oct_file, &oct_sums, 93), (&nov_file, &nov_sums, 90)])
    {
        let sha = std::fs::read_to_string(sums).unwrap();
        assert_eq!(subject, &retention::partition_of_file(file).unwrap().name());
        assert_eq!(details["rows"], rows);
        assert_eq!(details["sha256"].as_str().unwrap(), &sha[..64]);
        assert_eq!(
            details["file"].as_str().unwrap(),
            file.file_name().unwrap().to_str().unwrap()
        );
    }

    // A second run has nothing to do, and writes nothing.
    let again = retention::run(
        &mut conn,
        &RetentionSettings {
            apply: true,
            ..settings.clone()
        },
    )
    .await
    .expect("retention again");
    assert!(again.partitions.is_empty(), "{again}");
    assert_eq!(audit(&db.admin, "PARTITION_ARCHIVED").await.len(), 2);

    // Restoring the exports gives the same rows back, and the same tallies.
    for file in [&oct_file, &nov_file] {
        retention::restore(&mut conn, file).await.expect("restore");
    }
    assert_eq!(content(&db.admin, oct.month, oct.end()).await, before_oct);
    assert_eq!(content(&db.admin, nov.month, nov.end()).await, before_nov);
    assert_eq!(tallies(&db.admin, oct.month).await, tallies_oct);
    assert_eq!(audit(&db.admin, "PARTITION_RESTORED").await.len(), 2);
    // A second restore would duplicate the rows: refused, nothing copied.
    let err = retention::restore(&mut conn, &oct_file)
        .await
        .expect_err("restoring twice");
    assert!(
        format!("{err:#}").contains("already holds 93 rows"),
        "{err:#}"
    );
    assert_eq!(content(&db.admin, oct.month, oct.end()).await, before_oct);
    // A file that does not match its checksum is refused before anything is copied.
    let bad = dir.join(format!("{}.csv.gz", partition("2018-01-01").name()));
    std::fs::copy(&oct_file, &bad).unwrap();
    std::fs::write(
        dir.join(format!("{}.csv.gz.sha256", partition("2018-01-01").name())),
        format!("{}  x\n", "0".repeat(64)),
    )
    .unwrap();
    let err = retention::restore(&mut conn, &bad)
        .await
        .expect_err("a wrong checksum");
    assert!(format!("{err:#}").contains("SHA-256"), "{err:#}");
    assert!(!exists(&db.admin, "balance_checks_2018_01").await);

    // The restored months are still past the period: the next run archives them again from the
    // same exports (verified, not rewritten) and audits it again.
    let rerun = retention::run(
        &mut conn,
        &RetentionSettings {
            apply: true,
            ..settings.clone()
        },
    )
    .await
    .expect("retention after the restore");
    assert!(
        rerun.partitions.iter().all(|(_, a)| matches!(
            a,
            Action::Archived {
                reused_export: true,
                ..
            }
        )),
        "{rerun}"
    );
    assert_eq!(rerun.partitions.len(), 2);
    assert_eq!(audit(&db.admin, "PARTITION_ARCHIVED").await.len(), 4);
    assert_eq!(content(&db.admin, oct.month, nov.end()).await, "");

    std::fs::remove_dir_all(&dir).ok();
}

/// The error of `statement` run as the application role.
async fn refused(db: &TestDb, statement: &str) -> String {
    let mut conn = PgConnection::connect(&db.url)
        .await
        .expect("app connection");
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .expect_err(statement);
    format!("{err}")
}

#[tokio::test]
async fn the_application_role_cannot_drop_detach_or_truncate_a_partition_and_a_month_without_one_is_reported()
 {
    let db = TestDb::with_customers(2).await;
    partitions::create_ahead(&db.pool, day("2026-11-01"), 1)
        .await
        .unwrap();
    checks(&db.pool, "2026-11-01", "2026-11-02").await;
    for (statement, expected) in [
        (
            "DROP TABLE balance_checks_2026_11",
            "must be owner of table balance_checks_2026_11",
        ),
        (
            "ALTER TABLE balance_checks DETACH PARTITION balance_checks_2026_11",
            "must be owner of table balance_checks",
        ),
        (
            "ALTER TABLE balance_checks DETACH PARTITION balance_checks_default",
            "must be owner of table balance_checks",
        ),
        (
            "TRUNCATE balance_checks_2026_11",
            "permission denied for table balance_checks_2026_11",
        ),
        (
            "TRUNCATE balance_checks",
            "permission denied for table balance_checks",
        ),
        (
            "DELETE FROM balance_checks_default",
            "permission denied for table balance_checks_default",
        ),
        (
            "SELECT count(*) FROM balance_checks_2026_11",
            "permission denied for table balance_checks_2026_11",
        ),
        (
            "INSERT INTO balance_checks_2026_11 SELECT * FROM balance_checks",
            "permission denied for table balance_checks_2026_11",
        ),
        (
            "CREATE TABLE balance_checks_2031_01 PARTITION OF balance_checks \
             FOR VALUES FROM ('2031-01-01') TO ('2031-02-01')",
            "permission denied for schema public",
        ),
        (
            "SELECT create_month_partitions('2026-01-01', 37)",
            "months must be 1 to 36",
        ),
    ] {
        let err = refused(&db, statement).await;
        assert!(err.contains(expected), "{statement}: {err}");
    }
    assert_eq!(
        content(&db.admin, day("2026-11-01"), day("2026-12-01"))
            .await
            .lines()
            .count(),
        4
    );

    // A month with no partition: the insert still succeeds, the rows land in the default
    // partition and are reported, counted in the tallies once.
    assert!(!exists(&db.admin, "balance_checks_2031_05").await);
    checks(&db.pool, "2031-05-30", "2031-06-01").await;
    let mut app = db.pool.acquire().await.unwrap();
    let stray = partitions::default_rows(&mut app).await.unwrap();
    let found: Vec<(String, i64)> = stray
        .iter()
        .map(|s| (s.month.to_string(), s.rows))
        .collect();
    assert_eq!(
        found,
        vec![("2031-05-01".to_owned(), 4), ("2031-06-01".to_owned(), 2)]
    );
    let mut conn = owner(&db).await;
    let report = retention::run(
        &mut conn,
        &RetentionSettings {
            months: 84,
            dir: std::env::temp_dir().join("pcn-retention-unused"),
            apply: false,
            today: day("2026-12-05"),
        },
    )
    .await
    .unwrap();
    assert_eq!(report.default_rows, stray);
    assert!(
        format!("{report}").contains("WARNING: 4 rows of 2031-05 in balance_checks_default"),
        "{report}"
    );
    let tallies_may = tallies(&db.admin, day("2031-05-01")).await;
    assert!(!tallies_may.is_empty());

    // Creating the month's partition moves its rows there; the tallies do not count them again.
    let before = content(&db.admin, day("2031-05-01"), day("2031-07-01")).await;
    assert_eq!(
        partitions::create_ahead(&db.pool, day("2031-05-01"), 1)
            .await
            .unwrap(),
        1
    );
    let moved: i64 = sqlx::query_scalar("SELECT count(*) FROM balance_checks_2031_05")
        .fetch_one(&db.admin)
        .await
        .unwrap();
    assert_eq!(moved, 4);
    let left: Vec<(String, i64)> = partitions::default_rows(&mut app)
        .await
        .unwrap()
        .iter()
        .map(|s| (s.month.to_string(), s.rows))
        .collect();
    assert_eq!(left, vec![("2031-06-01".to_owned(), 2)]);
    assert_eq!(
        content(&db.admin, day("2031-05-01"), day("2031-07-01")).await,
        before
    );
    assert_eq!(tallies(&db.admin, day("2031-05-01")).await, tallies_may);
    // The moved rows are still append-only.
    let err = refused(&db, "UPDATE balance_checks SET outcome = 'PASSED'").await;
    assert!(err.contains("permission denied"), "{err}");
    let err = sqlx::query("DELETE FROM balance_checks_2031_05")
        .execute(&db.admin)
        .await
        .expect_err("even a superuser's delete");
    assert!(err.to_string().contains("append-only"), "{err}");
}

#[tokio::test]
async fn an_install_with_checks_keeps_every_row_and_tally_through_the_partitioning_migration() {
    let name = format!("pcn_test_{}", uuid::Uuid::new_v4().simple());
    let admin = pcn_activities::db::connect(pcn_tests::ADMIN_DB, 1)
        .await
        .expect("admin");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let pool =
        pcn_activities::db::connect(&format!("postgres://postgres@127.0.0.1:5432/{name}"), 2)
            .await
            .expect("database");
    // The schema as it was before migration 14, with two customers' checks of three months.
    pcn_activities::db::MIGRATOR
        .run_to(20261206000013, &pool)
        .await
        .expect("migrations up to 13");
    sqlx::query(
        "INSERT INTO customers (customer_id, account_id, first_name, phone_e164, monitored_since)
         VALUES ('C1', 'A1', 'Dana', '+972501234567', '2026-01-01'),
                ('C2', 'A2', 'Noa', '+972501234568', '2026-01-01')",
    )
    .execute(&pool)
    .await
    .expect("customers");
    checks(&pool, "2026-08-15", "2026-10-31").await;
    let rows = content(&pool, day("2000-01-01"), day("2100-01-01")).await;
    let all_tallies: String = sqlx::query_scalar(
        "SELECT string_agg(t::text, ';' ORDER BY month, customer_id) FROM monthly_tallies t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    pcn_activities::db::migrate(&pool).await.expect("the rest");
    assert_eq!(
        content(&pool, day("2000-01-01"), day("2100-01-01")).await,
        rows
    );
    let after: String = sqlx::query_scalar(
        "SELECT string_agg(t::text, ';' ORDER BY month, customer_id) FROM monthly_tallies t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(after, all_tallies, "the move counted nothing again");
    let placed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT tableoid::regclass::text, count(*) FROM balance_checks GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        placed,
        vec![
            ("balance_checks_2026_08".to_owned(), 34),
            ("balance_checks_2026_09".to_owned(), 60),
            ("balance_checks_2026_10".to_owned(), 62),
        ]
    );
    // The same constraints by name, and the append-only trigger on the moved rows.
    let constraints: Vec<String> = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint
          WHERE conrelid = 'balance_checks'::regclass ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        constraints,
        [
            "balance_checks_amount_when_read",
            "balance_checks_customer_id_fkey",
            "balance_checks_outcome_known",
            "balance_checks_pkey",
            "balance_checks_threshold_positive",
        ]
    );
    let err = sqlx::query("DELETE FROM balance_checks WHERE business_date = '2026-09-01'")
        .execute(&pool)
        .await
        .expect_err("append-only");
    assert!(err.to_string().contains("append-only"), "{err}");
    // And the sweep's ON CONFLICT target still names a unique index.
    let added = sqlx::query(
        "INSERT INTO balance_checks (customer_id, business_date, outcome, threshold, fetched_at,
                                     workflow_id, run_id)
         VALUES ('C1', '2026-09-01', 'MISSING', 15000, now(), 'w', 'r')
         ON CONFLICT (customer_id, business_date) DO NOTHING",
    )
    .execute(&pool)
    .await
    .expect("on conflict")
    .rows_affected();
    assert_eq!(added, 0);
    pool.close().await;
}
