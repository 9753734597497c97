//! The database's two roles and `pcn-worker setup`'s work on them: the **owner** role owns the
//! schema and runs the migrations; the **application** role, which the worker, webhook and control
//! API connect as, owns nothing and may do exactly what the code does (`grants.sql`).
//!
//! [`setup`] is idempotent and safe to run concurrently on several databases of one cluster (roles
//! are cluster-wide: the system tests' databases share them). In order, on a connection that may
//! create roles (a superuser, or a `CREATEROLE` role that is a member of the owner role):
//!
//! 1. creates the two roles if they are missing (the owner cannot log in; the application can)
//!    and refuses to go on when the application role could get around its grants (a superuser,
//!    `BYPASSRLS`, `CREATEROLE`, `CREATEDB`, `REPLICATION`, a member of the owner role);
//! 2. database and schema privileges: nobody but the owner creates objects in `public`, nobody
//!    but superusers creates temporary tables;
//! 3. hands the objects of an install migrated before the roles existed (owned by whoever ran
//!    those migrations) to the owner role;
//! 4. runs the migrations as the owner (`SET ROLE`), so everything they create is the owner's,
//!    `_sqlx_migrations` included;
//! 5. grants `grants.sql` to the application role, as the owner, in one transaction.

use anyhow::Context as _;
use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::{Connection as _, Executor as _, PgPool, Row as _};

use crate::bank::Secret;

/// What the application role may do, table by table; `{app}` stands for the role.
pub const GRANTS: &str = include_str!("grants.sql");

/// A Postgres role name: 1–63 lowercase ASCII letters, digits and `_`, starting with a letter or
/// `_` — a name that needs no quoting, so it reads the same in SQL, logs and URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleName(String);

impl RoleName {
    /// Parses a role name.
    pub fn parse(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !first_ok || !rest_ok || name.len() > 63 {
            return Err(format!(
                "{name:?} is not a role name (1–63 of a-z, 0-9 and _, not starting with a digit)"
            ));
        }
        if name.starts_with("pg_") {
            return Err(format!(
                "{name:?}: names starting with pg_ are Postgres's own"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an SQL identifier (quoted, although it never needs it).
    fn ident(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl std::fmt::Display for RoleName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two roles of the database.
#[derive(Debug, Clone)]
pub struct Roles {
    /// Owns the schema and runs the migrations; cannot log in.
    pub owner: RoleName,
    /// What the worker, webhook and control API connect as.
    pub app: RoleName,
    /// The application role's password, set on every setup when given (none: trust or
    /// certificate authentication, or a password managed elsewhere).
    pub app_password: Option<Secret>,
}

/// What [`setup`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// Roles that did not exist and were created.
    pub created_roles: Vec<String>,
    /// Objects of an earlier install handed to the owner role.
    pub reassigned: u64,
}

/// Creates the roles if missing, migrates as the owner and grants to the application role (see
/// the module documentation). `setup_url` names the database to set up.
pub async fn setup(setup_url: &str, roles: &Roles) -> anyhow::Result<SetupReport> {
    anyhow::ensure!(
        roles.owner != roles.app,
        "the owner role and the application role must differ (both are {})",
        roles.app
    );
    let mut admin = PgConnection::connect(setup_url)
        .await
        .context("connecting to Postgres for setup")?;
    let mut created_roles = Vec::new();
    if create_role_if_missing(&mut admin, &roles.owner, "NOLOGIN").await? {
        created_roles.push(roles.owner.to_string());
    }
    if create_role_if_missing(&mut admin, &roles.app, "LOGIN").await? {
        created_roles.push(roles.app.to_string());
    }
    if let Some(password) = &roles.app_password {
        set_password(&mut admin, &roles.app, password).await?;
    }
    refuse_privileged(&mut admin, roles).await?;
    restrict_database(&mut admin, roles).await?;
    let reassigned = reassign_to_owner(&mut admin, &roles.owner).await?;
    admin.close().await.ok();

    let owner = owner_pool(setup_url, &roles.owner).await?;
    crate::db::migrate(&owner).await?;
    grant(&owner, &roles.app).await?;
    owner.close().await;
    Ok(SetupReport {
        created_roles,
        reassigned,
    })
}

/// Warns when a serving process is connected as a role that could get around the database's
/// protections (a superuser, `BYPASSRLS`, or the owner of a table): it should be the
/// application role. Only a warning, so that a development setup keeps working.
pub async fn warn_if_privileged(pool: &PgPool) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT current_user::text, rolsuper OR rolbypassrls,
                EXISTS (SELECT FROM pg_class c
                         WHERE c.relnamespace = 'public'::regnamespace AND c.relowner = r.oid)
           FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await
    .context("reading the privileges of the database role")?;
    let (user, superuser, owner): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    if superuser || owner {
        tracing::warn!(
            role = %user,
            superuser,
            owns_tables = owner,
            "connected to Postgres with more rights than the application needs: the append-only \
             tables can be got around; connect as the application role that `pcn-worker setup` \
             creates (PCN_DATABASE_URL)"
        );
    }
    Ok(())
}

/// Creates `role` with `attributes` unless it exists; true when this call created it. Another
/// setup creating it at the same moment (tests set up many databases at once) counts as existing.
async fn create_role_if_missing(
    conn: &mut PgConnection,
    role: &RoleName,
    attributes: &str,
) -> anyhow::Result<bool> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)")
            .bind(role.as_str())
            .fetch_one(&mut *conn)
            .await?;
    if exists {
        return Ok(false);
    }
    // A role name parsed by `RoleName` (no quote can be in it) and a fixed attribute list.
    let statement = format!(
        "CREATE ROLE {} {attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS",
        role.ident()
    );
    match conn.execute(sqlx::AssertSqlSafe(statement)).await {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(e))
            if matches!(e.code().as_deref(), Some("42710") | Some("23505")) =>
        {
            Ok(false)
        }
        Err(e) => Err(e).with_context(|| format!("creating role {role}")),
    }
}

/// Sets the application role's password (quoted by the server's `format('%L')`).
async fn set_password(
    conn: &mut PgConnection,
    role: &RoleName,
    password: &Secret,
) -> anyhow::Result<()> {
    let statement: String =
        sqlx::query_scalar("SELECT format('ALTER ROLE %I PASSWORD %L', $1, $2)")
            .bind(role.as_str())
            .bind(password.expose())
            .fetch_one(&mut *conn)
            .await?;
    conn.execute(sqlx::AssertSqlSafe(statement))
        .await
        .with_context(|| format!("setting the password of role {role}"))?;
    Ok(())
}

/// Refuses roles that could get around the grants: an application role (or owner) that is a
/// superuser, may bypass row security, create roles or databases, replicate, or is a member of
/// the owner role.
async fn refuse_privileged(conn: &mut PgConnection, roles: &Roles) -> anyhow::Result<()> {
    for role in [&roles.owner, &roles.app] {
        let row = sqlx::query(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication
               FROM pg_roles WHERE rolname = $1",
        )
        .bind(role.as_str())
        .fetch_one(&mut *conn)
        .await?;
        for (i, attribute) in [
            "SUPERUSER",
            "BYPASSRLS",
            "CREATEROLE",
            "CREATEDB",
            "REPLICATION",
        ]
        .iter()
        .enumerate()
        {
            anyhow::ensure!(
                !row.get::<bool, _>(i),
                "role {role} has {attribute}: the owner and application roles must not \
                 (ALTER ROLE {role} NO{attribute}, or choose other role names)"
            );
        }
    }
    let member: bool = sqlx::query_scalar("SELECT pg_has_role($1, $2, 'MEMBER')")
        .bind(roles.app.as_str())
        .bind(roles.owner.as_str())
        .fetch_one(&mut *conn)
        .await?;
    anyhow::ensure!(
        !member,
        "role {} is a member of the owner role {}: it would have the owner's rights",
        roles.app,
        roles.owner
    );
    Ok(())
}

/// Database and schema privileges: only the owner creates objects in `public` (Postgres before 15
/// let everyone), only superusers create temporary tables (a temporary table is DDL too), and the
/// two roles may connect and use the schema.
async fn restrict_database(conn: &mut PgConnection, roles: &Roles) -> anyhow::Result<()> {
    let (owner, app) = (roles.owner.ident(), roles.app.ident());
    let statements = format!(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE, CREATE ON SCHEMA public TO {owner};
         GRANT USAGE ON SCHEMA public TO {app};
         DO $$ BEGIN
             EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
             EXECUTE format('GRANT CONNECT ON DATABASE %I TO {owner}, {app}', current_database());
         END $$;"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(statements))
        .execute(&mut *conn)
        .await
        .context("restricting the database and schema privileges")?;
    Ok(())
}

/// Hands every table, view, sequence and function of `public` that another role owns to the
/// owner (an install migrated before the roles existed; extensions' objects stay theirs). Tables
/// first: their sequences move with them.
async fn reassign_to_owner(conn: &mut PgConnection, owner: &RoleName) -> anyhow::Result<u64> {
    let mut moved = 0;
    for query in [
        "SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, $1::text)
           FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND c.relowner <> $1::text::regrole
            AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype = 'e')",
        "SELECT format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, $1::text)
           FROM pg_class c
          WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
            AND c.relowner <> $1::text::regrole
            AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))",
        "SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $1::text)
           FROM pg_proc p
          WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> $1::text::regrole
            AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                              AND d.objid = p.oid AND d.deptype = 'e')",
    ] {
        let statements: Vec<String> = sqlx::query_scalar(query)
            .bind(owner.as_str())
            .fetch_all(&mut *conn)
            .await?;
        for statement in statements {
            conn.execute(sqlx::AssertSqlSafe(statement.clone()))
                .await
                .with_context(|| format!("{statement} (setup's connection must be a superuser)"))?;
            moved += 1;
        }
    }
    if moved > 0 {
        tracing::info!(objects = moved, %owner, "objects of an earlier install handed to the owner role");
    }
    Ok(moved)
}

/// A pool whose connections act as `owner` (`SET ROLE` on the setup connection's login).
pub async fn owner_pool(setup_url: &str, owner: &RoleName) -> anyhow::Result<PgPool> {
    let set_role = format!("SET ROLE {}", owner.ident());
    PgPoolOptions::new()
        .max_connections(1)
        .after_connect(move |conn, _| {
            let set_role = set_role.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(set_role)).await?;
                Ok(())
            })
        })
        .connect(setup_url)
        .await
        .with_context(|| {
            format!("connecting as the owner role {owner} (setup's login must be a member of it)")
        })
}

/// Runs [`GRANTS`] for `app` on a pool acting as the owner, in one transaction.
async fn grant(owner: &PgPool, app: &RoleName) -> anyhow::Result<()> {
    let mut tx = owner.begin().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(GRANTS.replace("{app}", &app.ident())))
        .execute(&mut *tx)
        .await
        .context("granting grants.sql to the application role")?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_plain_lowercase_identifiers() {
        for good in ["pcn_app", "pcn_owner", "_x", "a1"] {
            assert_eq!(RoleName::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "1pcn",
            "PCN",
            "pcn-app",
            "pcn app",
            "pcn\"; DROP",
            "pg_read_all_data",
            &"a".repeat(64),
        ] {
            assert!(RoleName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn every_grant_names_the_application_role_placeholder() {
        let sql: String = GRANTS
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let statements: Vec<&str> = sql.split(';').filter(|s| !s.trim().is_empty()).collect();
        assert!(statements.len() > 10, "{statements:?}");
        for statement in statements {
            assert!(statement.trim_end().ends_with("{app}"), "{statement}");
        }
        assert!(!sql.contains("DELETE"), "the application deletes nothing");
        assert!(
            !sql.contains("TRUNCATE"),
            "the application truncates nothing"
        );
        assert!(!sql.contains("GRANT ALL"), "grants are listed, never ALL");
    }
}
