//! `make bench`: prints each figure and writes `target/bench/results.json`
//! (`{"figures": [{"name", "value", "unit", "baseline", "ratio", "target"}]}`).
//!
//! Figures (each beside a baseline measured in the same run):
//! - `daily_sweep_accounts_per_s`: the daily sweep of N accounts (default 100,000) against the
//!   bank simulator over HTTP, written to Postgres; baseline: the naive approach, one account at
//!   a time with one insert per row, on a sample.
//! - `qualification_seconds`: month-end qualification of N customers × 31 days; baseline: the
//!   naive per-customer loop, one query per customer.
//! - `balance_checks_insert_rows_per_s`: the N × 31 checks of that month written by one
//!   `INSERT ... SELECT` through the parent table (partition routing, constraints, the tally
//!   trigger). With `--unpartitioned-baseline` the sweep, insert and qualification figures are
//!   measured first on the schema before migration 14 (`balance_checks` unpartitioned), named
//!   `..._unpartitioned`, so both schemas are compared in one run.
//! - The SMS figures of [`sms`] (fan-out, signals, webhook, history, worker memory), on a Temporal
//!   dev server the bench starts itself.
//! - The control API and monthly report figures of [`api`] (GetMonth, GetCustomer, the report of
//!   the qualification month and its exports).
//! - A whole month end to end, [`month`]: phase times, SMS/s beside the empty-workflow rate,
//!   carrier requests per message, largest history, peak RSS, database size.

// Rates and ratios of timings are floats by nature; no money is computed here.
#![allow(clippy::float_arithmetic)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use clap::Parser;
use pcn_activities::bank::{BankAuth, BankClient, BankConfig, Secret};
use pcn_activities::metrics::Metrics;
use pcn_activities::sweep::{SweepSettings, run_daily_sweep};
use pcn_activities::{db, qualify};
use pcn_workflows::contracts::{DailySweepInput, QualifyInput, RunRef};
use pcn_workflows::domain::{BusinessDate, Nis, YearMonth};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

mod api;
mod harness;
mod keys;
mod month;
mod sms;
mod tree;

#[derive(Parser)]
struct Args {
    /// Customers (and simulated accounts).
    #[arg(long, env = "PCN_BENCH_CUSTOMERS", default_value_t = 100_000)]
    customers: u64,
    /// Accounts in the sequential baseline sample.
    #[arg(long, default_value_t = 2_000)]
    baseline_sample: u64,
    /// Admin Postgres URL (a `pcn_bench` database is created from it).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    admin_url: String,
    /// Bank requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Which benchmarks to run.
    #[arg(long, value_enum, default_value_t = Only::All)]
    only: Only,
    /// Qualified customers (SMS workflows) of the SMS benchmarks.
    #[arg(long, env = "PCN_BENCH_SMS_CUSTOMERS", default_value_t = 2_000)]
    sms_customers: u64,
    /// Customers of the whole-month benchmark (`--only month`; 100,000 is the seeds' scale and
    /// takes ≈ 25–30 min on a 2-core machine, so the default run uses 10,000).
    #[arg(long, env = "PCN_BENCH_MONTH_CUSTOMERS", default_value_t = 10_000)]
    month_customers: u64,
    /// Workflow tasks the whole-month benchmark's worker holds at once (the worker's
    /// `PCN_WORKFLOW_TASK_SLOTS`), to compare a month under another value.
    #[arg(long, env = "PCN_BENCH_MONTH_TASK_SLOTS", default_value_t = pcn_worker::temporal::DEFAULT_WORKFLOW_TASK_SLOTS)]
    month_task_slots: usize,
    /// Trivial workflows of the empty-workflow baseline.
    #[arg(long, default_value_t = 500)]
    empty_workflows: u64,
    /// Signed callbacks of the webhook acknowledgement benchmark.
    #[arg(long, default_value_t = 20_000)]
    webhook_callbacks: usize,
    /// The `temporal` CLI whose dev server the SMS benchmarks start (`make tools` installs it).
    #[arg(long, default_value = ".pcn/bin/temporal")]
    temporal_bin: String,
    /// gRPC port of that dev server (HTTP on +10, metrics on +11); not the test suite's 17233.
    #[arg(long, default_value_t = 17_433)]
    temporal_port: u16,
    /// Concurrent clients of the control API benchmarks (one HTTP/2 connection each).
    #[arg(long, default_value_t = 32)]
    api_clients: usize,
    /// Seconds each control API load runs.
    #[arg(long, default_value_t = 10)]
    api_seconds: u64,
    /// Also measure the sweep, insert and qualification figures on the schema before
    /// `balance_checks` was partitioned (migrations up to 13), first, for comparison.
    #[arg(long)]
    unpartitioned_baseline: bool,
}

/// The schema the sweep and qualification figures are measured on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Every migration: `balance_checks` partitioned by month.
    Partitioned,
    /// Migrations up to 13: `balance_checks` one table (the comparison).
    Unpartitioned,
}

/// The migration that partitions `balance_checks` (left out for [`Schema::Unpartitioned`]).
const PARTITIONING: i64 = 20261207000014;

impl Schema {
    /// Its benchmark database (both exist at once, for the interleaved inserts).
    fn database(self) -> &'static str {
        match self {
            Schema::Partitioned => "pcn_bench",
            Schema::Unpartitioned => "pcn_bench_unpartitioned",
        }
    }
}

/// A subset of the benchmarks.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    /// Everything.
    All,
    /// The daily sweep and the qualification.
    Sweep,
    /// The SMS benchmarks.
    Sms,
    /// The control API and monthly report benchmarks.
    Api,
    /// A whole month end to end (`--month-customers`).
    Month,
    /// Phone numbers at rest: `rotate-keys` over `--customers`, sealing per message.
    Keys,
}

#[derive(Serialize, Deserialize)]
struct Figure {
    name: String,
    value: f64,
    unit: String,
    baseline: f64,
    ratio: f64,
    target: String,
}

#[derive(Serialize, Deserialize)]
struct Results {
    figures: Vec<Figure>,
}

fn figure(name: &str, value: f64, unit: &str, baseline: f64, ratio: f64, target: &str) -> Figure {
    println!(
        "{name}: {value:.3} {unit} (baseline {baseline:.3} {unit}, ratio {ratio:.2}, target {target})"
    );
    Figure {
        name: name.to_owned(),
        value,
        unit: unit.to_owned(),
        baseline,
        ratio,
        target: target.to_owned(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let mut figures = Vec::new();
    if matches!(args.only, Only::All | Only::Sweep) {
        let before = if args.unpartitioned_baseline {
            let result = sweep_and_qualification(&args, &mut figures, Schema::Unpartitioned).await;
            write_results(&mut figures)?;
            Some(result?)
        } else {
            None
        };
        let result = sweep_and_qualification(&args, &mut figures, Schema::Partitioned).await;
        write_results(&mut figures)?;
        let after = result?;
        if let Some(before) = before {
            let slower = |old: f64, new: f64| (old / new - 1.0) * 100.0;
            println!(
                "partitioned vs unpartitioned (same run; + is slower): sweep {:+.1} %, \
                 insert {:+.1} %, qualification {:+.1} %",
                slower(before.sweep_rate, after.sweep_rate),
                slower(before.insert_rate, after.insert_rate),
                slower(after.qualification_s, before.qualification_s),
            );
            let result = interleaved_inserts(&before.pool, &after.pool, &mut figures).await;
            write_results(&mut figures)?;
            result?;
        }
    }
    if matches!(args.only, Only::All | Only::Sms) {
        let result = sms::run(&args, &mut figures).await;
        write_results(&mut figures)?;
        result?;
    }
    if matches!(args.only, Only::All | Only::Api) {
        let result = api::run(&args, &mut figures).await;
        write_results(&mut figures)?;
        result?;
    }
    if matches!(args.only, Only::All | Only::Keys) {
        let result = keys::run(&args, &mut figures).await;
        write_results(&mut figures)?;
        result?;
    }
    if matches!(args.only, Only::All | Only::Month) {
        let result = month::run(&args, &mut figures).await;
        write_results(&mut figures)?;
        result?;
    }
    Ok(())
}

/// Merges `figures` into `target/bench/results.json` (and empties it).
fn write_results(figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    if figures.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all("target/bench")?;
    let path = "target/bench/results.json";
    let mut all = read_existing(path);
    all.retain(|f| !figures.iter().any(|g| g.name == f.name));
    all.append(figures);
    std::fs::write(
        path,
        serde_json::to_string_pretty(&Results { figures: all })?,
    )?;
    println!("written {path}");
    Ok(())
}

/// What [`sweep_and_qualification`] measured, to compare the two schemas.
struct Measured {
    /// Accounts swept per second.
    sweep_rate: f64,
    /// Checks inserted per second (the month's `INSERT ... SELECT`).
    insert_rate: f64,
    /// The qualification's seconds.
    qualification_s: f64,
    /// The database, kept for the interleaved inserts.
    pool: PgPool,
}

/// The daily sweep and the month-end qualification.
async fn sweep_and_qualification(
    args: &Args,
    figures: &mut Vec<Figure>,
    schema: Schema,
) -> anyhow::Result<Measured> {
    let suffix = match schema {
        Schema::Partitioned => "",
        Schema::Unpartitioned => {
            println!("schema before migration 14 (balance_checks unpartitioned):");
            "_unpartitioned"
        }
    };
    let pool = fresh_database(&args.admin_url, schema).await?;
    println!("seeding {} customers...", args.customers);
    seed_customers(&pool, args.customers).await?;

    let sim = pcn_bank_sim::spawn(
        pcn_bank_sim::SimConfig {
            seed: 42,
            accounts: args.customers,
            ..pcn_bank_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let bank = BankClient::new(BankConfig {
        base_url: sim.base_url(),
        auth: BankAuth::ApiKey(Secret::new("dev-bank-key")),
        server_ca: None,
        timeout: Duration::from_secs(30),
        attempts: 3,
        backoff: Duration::from_millis(100),
        max_connections: args.concurrency,
    })?;

    // Baseline sweep: one account at a time, one INSERT per row, on a sample.
    let sample_date = BusinessDate::parse("2026-01-01")?;
    let started = Instant::now();
    let sample: Vec<(String, String)> = sqlx::query_as(
        "SELECT customer_id, account_id FROM customers ORDER BY customer_id LIMIT $1",
    )
    .bind(i64::try_from(args.baseline_sample)?)
    .fetch_all(&pool)
    .await?;
    for (customer_id, account_id) in &sample {
        let account = pcn_workflows::domain::AccountId::parse(account_id)?;
        let answer = bank.balance(&account, sample_date).await;
        let (outcome, amount) = match answer {
            Ok(pcn_activities::bank::BankAnswer::Balance { amount, .. }) => (
                if amount >= Nis::from_whole(15_000) {
                    "PASSED"
                } else {
                    "BELOW_THRESHOLD"
                },
                Some(amount.amount()),
            ),
            Ok(pcn_activities::bank::BankAnswer::NotFound) => ("ACCOUNT_NOT_FOUND", None),
            _ => ("INVALID_RESPONSE", None),
        };
        sqlx::query(
            "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
                 threshold, fetched_at, workflow_id, run_id)
             VALUES ($1, $2, $3, $4, CASE WHEN $4::numeric IS NULL THEN NULL ELSE 'NIS' END,
                     15000, now(), 'bench', 'baseline')
             ON CONFLICT DO NOTHING",
        )
        .bind(customer_id)
        .bind(sample_date.as_naive())
        .bind(outcome)
        .bind(amount)
        .execute(&pool)
        .await?;
    }
    let baseline_rate = sample.len() as f64 / started.elapsed().as_secs_f64();

    // Our sweep: every customer, a date no baseline row touched.
    let date = BusinessDate::parse("2026-01-02")?;
    let input = DailySweepInput {
        date,
        threshold: Nis::from_whole(15_000),
        give_up_at: Utc::now() + chrono::Duration::hours(2),
        run: RunRef {
            workflow_id: "bench".into(),
            run_id: "sweep".into(),
        },
    };
    let settings = SweepSettings {
        page_size: 2_000,
        concurrency: args.concurrency,
    };
    let metrics = Metrics::new();
    let started = Instant::now();
    let attempt = pcn_activities::sweep::Attempt::first();
    let summary = run_daily_sweep(
        &pool,
        &bank,
        &settings,
        &metrics,
        &input,
        attempt,
        |_| async { true },
    )
    .await
    .map_err(|e| anyhow::anyhow!("sweep: {e}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary.checked == args.customers,
        "sweep checked {}",
        summary.checked
    );
    let rate = args.customers as f64 / elapsed;
    figures.push(figure(
        &format!("daily_sweep_accounts_per_s{suffix}"),
        rate,
        "accounts/s",
        baseline_rate,
        rate / baseline_rate,
        ">= 5000 accounts/s",
    ));
    println!(
        "  ({} accounts in {elapsed:.1} s; baseline sample {} accounts)",
        args.customers,
        sample.len()
    );

    // Qualification: N customers × 31 days of checks.
    let month = YearMonth::parse("2025-12")?;
    println!("seeding {} balance checks...", args.customers * 31);
    let inserted = seed_month(&pool, month).await?;
    figures.push(figure(
        &format!("balance_checks_insert_rows_per_s{suffix}"),
        inserted,
        "rows/s",
        inserted,
        1.0,
        "within 10 % of the unpartitioned schema",
    ));
    let input = QualifyInput {
        month,
        threshold: Nis::from_whole(15_000),
        run: RunRef {
            workflow_id: "bench".into(),
            run_id: "qualify".into(),
        },
    };
    let started = Instant::now();
    let decided = qualify::qualify_month(&pool, &input).await?;
    let ours = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        decided.customers == args.customers,
        "decided {}",
        decided.customers
    );

    // Baseline: one query per customer, the naive algorithm (docs/requirements.md#targets).
    let started = Instant::now();
    let ids: Vec<String> = sqlx::query_scalar("SELECT customer_id FROM customers ORDER BY 1")
        .fetch_all(&pool)
        .await?;
    let mut qualified = 0_u64;
    for id in &ids {
        let passed: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM balance_checks
              WHERE customer_id = $1 AND business_date BETWEEN $2 AND $3 AND outcome = 'PASSED'",
        )
        .bind(id)
        .bind(month.first_day().as_naive())
        .bind(month.last_day().as_naive())
        .fetch_one(&pool)
        .await?;
        if passed == i64::from(month.num_days()) {
            qualified += 1;
        }
    }
    let baseline = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        qualified == decided.qualified,
        "baseline {qualified} vs {}",
        decided.qualified
    );
    figures.push(figure(
        &format!("qualification_seconds{suffix}"),
        ours,
        "s",
        baseline,
        baseline / ours,
        "<= 1 s",
    ));
    Ok(Measured {
        sweep_rate: rate,
        insert_rate: inserted,
        qualification_s: ours,
        pool,
    })
}

/// The sweep's own insert (pages of 2,000 rows through `UNNEST`, `ON CONFLICT DO NOTHING`) of a
/// whole day of checks, on both schemas in turn, alternating which goes first, for
/// [`INSERT_ROUNDS`] days: the medians are compared, so a machine busy with something else in one
/// moment weighs on both schemas alike.
async fn interleaved_inserts(
    unpartitioned: &PgPool,
    partitioned: &PgPool,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT customer_id FROM customers ORDER BY 1")
        .fetch_all(partitioned)
        .await?;
    let first = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).context("date")?;
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..INSERT_ROUNDS {
        let date = first + chrono::Days::new(round);
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let pool = [unpartitioned, partitioned][i];
            let started = Instant::now();
            for page in ids.chunks(2_000) {
                sqlx::query(
                    "INSERT INTO balance_checks (customer_id, business_date, outcome, amount,
                                                 currency, threshold, fetched_at, workflow_id,
                                                 run_id)
                     SELECT u.customer_id, $1, 'PASSED', 20000, 'NIS', 15000, now(), 'bench',
                            'interleaved'
                       FROM UNNEST($2::text[]) AS u(customer_id)
                     ON CONFLICT (customer_id, business_date) DO NOTHING",
                )
                .bind(date)
                .bind(page)
                .execute(pool)
                .await?;
            }
            rates[i].push(ids.len() as f64 / started.elapsed().as_secs_f64());
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (old, new) = (median(&mut rates[0]), median(&mut rates[1]));
    figures.push(figure(
        "sweep_insert_rows_per_s",
        new,
        "rows/s",
        old,
        new / old,
        "ratio >= 0.9 (baseline: the unpartitioned schema, interleaved)",
    ));
    Ok(())
}

/// Days of the interleaved insert comparison.
const INSERT_ROUNDS: u64 = 9;

/// Figures an earlier run wrote (other benchmarks may add theirs to the same file).
fn read_existing(path: &str) -> Vec<Figure> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Results>(&b).ok())
        .map(|r| r.figures)
        .unwrap_or_default()
}

async fn fresh_database(admin_url: &str, schema: Schema) -> anyhow::Result<PgPool> {
    let name = schema.database();
    let admin = db::connect(admin_url, 1).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    let url = admin_url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/{name}"))
        .context("admin url without a database")?;
    let pool = db::connect(&url, 32).await?;
    match schema {
        Schema::Partitioned => {
            db::migrate(&pool).await?;
            // As `pcn-worker setup` and the sweeps would have: the months benchmarked have their
            // partitions (December 2025 for the qualification, January 2026 for the sweep).
            let first = chrono::NaiveDate::from_ymd_opt(2025, 12, 1).context("date")?;
            pcn_activities::partitions::create_ahead(&pool, first, 14).await?;
        }
        Schema::Unpartitioned => {
            // Every migration but the partitioning one (the later ones do not touch the checks).
            let without = sqlx::migrate::Migrator {
                migrations: db::MIGRATOR
                    .migrations
                    .iter()
                    .filter(|m| m.version != PARTITIONING)
                    .cloned()
                    .collect::<Vec<_>>()
                    .into(),
                ..sqlx::migrate::Migrator::DEFAULT
            };
            without
                .run(&pool)
                .await
                .context("migrating to the unpartitioned schema")?
        }
    }
    Ok(pool)
}

async fn seed_customers(pool: &PgPool, n: u64) -> anyhow::Result<()> {
    let since = BusinessDate::parse("2020-01-01")?;
    let customers: Vec<_> = (0..n)
        .map(|i| {
            Ok(pcn_workflows::customer::Customer {
                customer_id: pcn_workflows::domain::CustomerId::parse(&pcn_bank_sim::customer_id(
                    i,
                ))?,
                account_id: pcn_workflows::domain::AccountId::parse(&pcn_bank_sim::account_id(i))?,
                first_name: pcn_workflows::customer::FirstName::parse("Dana")?,
                phone: pcn_workflows::domain::Phone::parse(&format!("+9725{i:08}"))?,
                language: pcn_workflows::domain::Language::Hebrew,
                opted_out: None,
                active: true,
                monitored_since: since,
            })
        })
        .collect::<Result<_, pcn_workflows::domain::DomainError>>()?;
    pcn_activities::customers::upsert(
        pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &customers,
        "bench",
    )
    .await?;
    Ok(())
}

/// One check per customer and day of `month`, 1 in 40 days below the threshold; returns the rows
/// inserted per second (the insert alone, not the VACUUM after it).
async fn seed_month(pool: &PgPool, month: YearMonth) -> anyhow::Result<f64> {
    let started = Instant::now();
    let rows = sqlx::query(
        "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
             threshold, fetched_at, workflow_id, run_id)
         SELECT c.customer_id, d::date,
                CASE WHEN abs(hashtext(c.customer_id || d::text)) % 40 = 0
                     THEN 'BELOW_THRESHOLD' ELSE 'PASSED' END,
                CASE WHEN abs(hashtext(c.customer_id || d::text)) % 40 = 0
                     THEN 100.00 ELSE 20000.00 END,
                'NIS', 15000, now(), 'bench', 'seed'
           FROM customers c
          CROSS JOIN generate_series($1::date, $2::date, interval '1 day') AS d",
    )
    .bind(month.first_day().as_naive())
    .bind(month.last_day().as_naive())
    .execute(pool)
    .await?
    .rows_affected();
    let rate = rows as f64 / started.elapsed().as_secs_f64();
    sqlx::query("VACUUM ANALYZE balance_checks")
        .execute(pool)
        .await?;
    Ok(rate)
}
