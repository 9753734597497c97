//! The application role (`pcn_app`, what the worker, webhook and control API connect as) can do
//! what the code does and nothing that would get around the database's protections: no UPDATE,
//! DELETE or TRUNCATE of the evidence, not even after `SET session_replication_role = replica`
//! (which it may not run), no DDL, nothing on `_sqlx_migrations`. The rest of the suite runs as
//! this role, which shows the grants are enough.

use std::collections::BTreeSet;

use pcn_activities::audit::{self, AuditEntry};
use pcn_tests::{APP_ROLE, OWNER_ROLE, TestDb};
use sqlx::{Connection as _, PgPool};

/// The error of `statement` run as the application role on a connection of its own.
async fn refused(db: &TestDb, statement: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(&db.url)
        .await
        .expect("app connection");
    let err = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&mut conn)
        .await
        .expect_err(statement);
    let code = err
        .as_database_error()
        .and_then(|e| e.code().map(|c| c.into_owned()));
    assert_eq!(code.as_deref(), Some("42501"), "{statement}: {err}");
    err.to_string()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .expect("count")
}

/// One row in each evidence table, written the way the application writes it.
async fn seed_evidence(db: &TestDb) {
    pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &pcn_tests::customers_for(1),
        "test",
    )
    .await
    .expect("customer");
    audit::record(
        &db.pool,
        &AuditEntry {
            actor: "system".into(),
            action: "TEST",
            subject_type: "test",
            subject_id: "1".into(),
            details: serde_json::json!({ "why": "least privilege" }),
            idempotency_key: None,
        },
    )
    .await
    .expect("the application records an audit entry");
    for statement in [
        "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
             threshold, fetched_at, workflow_id, run_id)
         VALUES ('C0000000000', '2026-10-01', 'PASSED', 20000, 'NIS', 15000, now(), 't', 't')",
        "INSERT INTO qualifications (month, customer_id, qualified, reason, days_in_month,
             days_passed, days_below, days_missing, days_not_found, days_invalid, threshold,
             workflow_id, run_id)
         VALUES ('2026-10-01', 'C0000000000', false, 'MISSING_DATA', 31, 1, 0, 30, 0, 0, 15000,
                 't', 't')",
        "INSERT INTO consent_events (customer_id, opted_out, source, actor)
         VALUES ('C0000000000', true, 'ADMIN', 'api:test')",
    ] {
        sqlx::query(statement)
            .execute(&db.pool)
            .await
            .expect(statement);
    }
}

/// The append-only tables, each with a column to try to change.
const EVIDENCE: [(&str, &str); 4] = [
    ("audit_log", "actor"),
    ("balance_checks", "outcome"),
    ("qualifications", "reason"),
    ("consent_events", "opted_out"),
];

#[tokio::test]
async fn the_application_role_can_neither_change_nor_remove_evidence_nor_switch_triggers_off() {
    let db = TestDb::new().await;
    seed_evidence(&db).await;
    // The consent ledger's trigger (SECURITY DEFINER) set the column the role may not update.
    let opted_out: bool =
        sqlx::query_scalar("SELECT opted_out FROM customers WHERE customer_id = 'C0000000000'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(opted_out, "the ledger's insert opts the customer out");
    // Tallies are kept by the balance checks' trigger, which the role may only read.
    assert_eq!(count(&db.pool, "monthly_tallies").await, 1);

    for (table, column) in EVIDENCE {
        for statement in [
            format!("UPDATE {table} SET {column} = {column}"),
            format!("DELETE FROM {table}"),
            format!("TRUNCATE {table}"),
        ] {
            let err = refused(&db, &statement).await;
            assert!(
                err.contains(&format!("permission denied for table {table}")),
                "{statement}: {err}"
            );
        }
    }
    for statement in [
        "UPDATE customers SET opted_out = false",
        "UPDATE monthly_tallies SET passed = 31",
        "INSERT INTO monthly_tallies (month, customer_id, passed) VALUES ('2026-11-01', 'x', 30)",
        "DELETE FROM notifications",
        "TRUNCATE carrier_budgets",
    ] {
        let err = refused(&db, statement).await;
        assert!(
            err.contains("permission denied for table"),
            "{statement}: {err}"
        );
    }

    // The triggers cannot be switched off: a non-superuser may not set the replication role,
    // in a transaction or out of one, and is not granted the parameter.
    for statement in [
        "SET session_replication_role = replica",
        "BEGIN; SET LOCAL session_replication_role = replica; \
         UPDATE audit_log SET actor = 'someone else'; DELETE FROM audit_log; COMMIT",
        "SELECT set_config('session_replication_role', 'replica', false)",
    ] {
        let err = refused(&db, statement).await;
        assert!(
            err.contains("permission denied to set parameter \"session_replication_role\""),
            "{statement}: {err}"
        );
    }
    let may_set: bool =
        sqlx::query_scalar("SELECT has_parameter_privilege($1, 'session_replication_role', 'SET')")
            .bind(APP_ROLE)
            .fetch_one(&db.admin)
            .await
            .unwrap();
    assert!(!may_set);
    // With the attempt refused the session is still `origin`, and the update still fails.
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let _ = sqlx::raw_sql("SET session_replication_role = replica")
        .execute(&mut conn)
        .await;
    let role: String = sqlx::query_scalar("SHOW session_replication_role")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(role, "origin");
    assert!(
        sqlx::query("DELETE FROM audit_log")
            .execute(&mut conn)
            .await
            .is_err()
    );

    // The same statements succeed for a superuser (rolled back): the refusals above are the
    // role's, not the statements'.
    let mut tx = db.admin.begin().await.unwrap();
    sqlx::raw_sql(
        "SET LOCAL session_replication_role = replica;
         UPDATE audit_log SET actor = 'someone else'; DELETE FROM audit_log;",
    )
    .execute(&mut *tx)
    .await
    .expect("a superuser can switch the triggers off: the hole the application role closes");
    tx.rollback().await.unwrap();

    for (table, _) in EVIDENCE {
        assert_eq!(count(&db.admin, table).await, 1, "{table} unchanged");
    }
    let actor: String = sqlx::query_scalar("SELECT actor FROM audit_log")
        .fetch_one(&db.admin)
        .await
        .unwrap();
    assert_eq!(actor, "system");
}

#[tokio::test]
async fn the_application_role_runs_no_ddl_owns_nothing_and_cannot_read_the_migrations() {
    let db = TestDb::new().await;
    for (statement, expected) in [
        (
            "CREATE TABLE t (x int)",
            "permission denied for schema public",
        ),
        (
            "CREATE TEMP TABLE t (x int)",
            "permission denied to create temporary tables",
        ),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "permission denied for schema public",
        ),
        (
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            "must be owner of table audit_log",
        ),
        (
            "ALTER TABLE balance_checks ADD COLUMN x int",
            "must be owner of table balance_checks",
        ),
        (
            "DROP TRIGGER consent_events_append_only ON consent_events",
            "must be owner of relation consent_events",
        ),
        (
            "DROP TABLE qualifications",
            "must be owner of table qualifications",
        ),
        (
            "ALTER FUNCTION forbid_mutation() RENAME TO f",
            "must be owner of function forbid_mutation",
        ),
        (
            "SELECT * FROM _sqlx_migrations",
            "permission denied for table _sqlx_migrations",
        ),
        (
            "DELETE FROM _sqlx_migrations",
            "permission denied for table _sqlx_migrations",
        ),
        (
            &format!("SET ROLE {OWNER_ROLE}"),
            "permission denied to set role",
        ),
        ("CREATE SCHEMA x", "permission denied for database"),
    ] {
        let err = refused(&db, statement).await;
        assert!(err.contains(expected), "{statement}: {err}");
    }

    let row: (bool, bool, bool, bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication
           FROM pg_roles WHERE rolname = $1",
    )
    .bind(APP_ROLE)
    .fetch_one(&db.admin)
    .await
    .unwrap();
    assert_eq!(row, (false, false, false, false, false));
    let owned: Vec<String> = sqlx::query_scalar(
        "SELECT c.oid::regclass::text FROM pg_class c
          WHERE c.relowner = $1::text::regrole
         UNION ALL
         SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.proowner = $1::text::regrole",
    )
    .bind(APP_ROLE)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert!(owned.is_empty(), "{APP_ROLE} owns {owned:?}");
    let owners: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableowner::text FROM pg_tables WHERE schemaname = 'public'",
    )
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert_eq!(owners, vec![OWNER_ROLE.to_owned()]);
    // No table of the schema lets the role delete or truncate, or change its triggers.
    let wide: Vec<(String, String)> = sqlx::query_as(
        "SELECT tablename::text, privilege FROM pg_tables,
                unnest(ARRAY['DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) AS privilege
          WHERE schemaname = 'public'
            AND has_table_privilege($1, format('public.%I', tablename), privilege)",
    )
    .bind(APP_ROLE)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert!(wide.is_empty(), "{wide:?}");
}

#[tokio::test]
async fn every_table_is_named_in_the_grants_file_and_readable_by_the_application() {
    let db = TestDb::new().await;
    let named: BTreeSet<&str> = pcn_activities::roles::GRANTS
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .flat_map(|line| line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| !word.is_empty())
        .collect();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables
          WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert!(tables.len() >= 15, "{tables:?}");
    let forgotten: Vec<&String> = tables
        .iter()
        .filter(|t| !named.contains(t.as_str()))
        .collect();
    assert!(
        forgotten.is_empty(),
        "tables that activities/src/grants.sql does not name: {forgotten:?}"
    );
    for table in &tables {
        let readable: bool = sqlx::query_scalar("SELECT has_table_privilege($1, $2, 'SELECT')")
            .bind(APP_ROLE)
            .bind(format!("public.{table}"))
            .fetch_one(&db.admin)
            .await
            .unwrap();
        assert!(readable, "{APP_ROLE} cannot read {table}");
    }
    // Every BIGSERIAL's sequence can be drawn from, and nothing more.
    let sequences: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, has_sequence_privilege($1, c.oid, 'USAGE'),
                has_sequence_privilege($1, c.oid, 'UPDATE')
           FROM pg_class c WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace",
    )
    .bind(APP_ROLE)
    .fetch_all(&db.admin)
    .await
    .unwrap();
    assert!(!sequences.is_empty());
    for (sequence, usage, update) in sequences {
        assert!(
            usage && !update,
            "{sequence}: usage {usage}, update {update}"
        );
    }
}

#[tokio::test]
async fn setup_run_again_creates_nothing_and_leaves_the_same_privileges() {
    let db = TestDb::new().await;
    let privileges = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT string_agg(c.relname || '=' || coalesce(c.relacl::text, '') || ' '
                               || coalesce((SELECT string_agg(a.attname || ':' || a.attacl::text, ','
                                                               ORDER BY a.attnum)
                                              FROM pg_attribute a
                                             WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL), ''),
                               E'\\n' ORDER BY c.relname)
               FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace",
        )
        .fetch_one(&db.admin)
        .await
        .unwrap()
    };
    let before = privileges().await;
    assert!(before.contains("pcn_app=ar/pcn_owner"), "{before}");
    let admin_url = db.url.replacen(APP_ROLE, "postgres", 1);
    let report = pcn_activities::roles::setup(&admin_url, &pcn_tests::test_roles())
        .await
        .expect("setup again");
    assert!(report.created_roles.is_empty(), "{report:?}");
    assert_eq!(report.reassigned, 0);
    assert_eq!(privileges().await, before);
}
