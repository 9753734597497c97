//! A whole month, end to end (`pcn-bench --only month`, also part of `make bench`): N customers
//! (`--month-customers`, default 10,000; `PCN_BENCH_MONTH_CUSTOMERS=100000` for the seeds' scale,
//! which takes ≈ 25–30 min here), a past month backfilled through the real
//! `MonthlyQualificationWorkflow` on a dev server this module starts (file-backed, WAL): 31 sweeps
//! against the bank simulator over HTTP, qualification, the fan-out, every qualified customer's
//! SMS through the carrier simulator (generic API, no deduplication, duplicated / reordered /
//! early callbacks, callbacks within ≈ 0.4 s) to a final state, then the month's completion.
//! The worker, webhook, dispatcher and both simulators run in this process.
//!
//! Figures: wall time per phase (sweeps, qualification, SMS, whole month) read from Postgres's own
//! timestamps; SMS per second beside the server's empty-workflow rate measured first in the same
//! run; carrier requests per message; the largest history of any workflow of the month; the
//! process's peak RSS (worker and everything beside it: an upper bound); the database's size.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::TryStreamExt;
use pcn_activities::db;
use pcn_activities::fanout::FanoutDeps;
use pcn_workflows::domain::YearMonth;
use pcn_workflows::month::{MonthSettings, MonthlyQualificationWorkflow};
use pcn_workflows::sms::SmsSettings;
use pcn_workflows::window::SendWindow;
use sqlx::PgPool;
use temporalio_client::{WorkflowGetResultOptions, WorkflowListOptions};

use crate::harness::{DevServer, bench_activities, carrier_stack, with_worker};
use crate::sms::{bench_worker, empty_rate};
use crate::{Args, Figure, figure};

/// The backfilled month (31 days).
const MONTH: &str = "2026-10";

/// Runs the month benchmark.
pub async fn run(args: &Args, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let n = args.month_customers;
    let month = YearMonth::parse(MONTH)?;
    println!(
        "month: a Temporal dev server on 127.0.0.1:{} (file-backed, WAL)...",
        args.temporal_port
    );
    let mut server = DevServer::start(&args.temporal_bin, args.temporal_port, "temporal-month")?;
    let client = server.client().await?;
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow::anyhow!("SDK runtime: {e}"))?;
    let tag = uuid::Uuid::new_v4().simple().to_string();

    // Baseline: the same server's empty-workflow rate, before the month loads it.
    let bench_queue = format!("pcn-bench-month-empty-{tag}");
    let worker = bench_worker(&runtime, client.clone(), &bench_queue)?;
    let baseline = with_worker(
        worker,
        empty_rate(
            client.clone(),
            bench_queue,
            tag.clone(),
            args.empty_workflows,
        ),
    )
    .await?;

    let (pool, url) = crate::harness::fresh_database(&args.admin_url, "pcn_bench_month").await?;
    println!("month: seeding {n} customers and a bank of {n} accounts...");
    crate::seed_customers(&pool, n).await?;
    let bank = pcn_bank_sim::spawn(
        pcn_bank_sim::SimConfig {
            seed: 42,
            accounts: n,
            ..pcn_bank_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let (sim, webhook, carrier) =
        carrier_stack(&pool, &client, pcn_carrier_sim::SimConfig::default()).await?;
    let fanout = FanoutDeps {
        client: client.clone(),
        concurrency: 32,
    };
    let activities = bench_activities(
        db::connect(&url, 16).await?,
        &bank.base_url(),
        &carrier,
        &fanout,
    )?;
    let task_queue = format!("pcn-bench-month-{tag}");
    let capacity = pcn_worker::temporal::WorkerCapacity {
        workflow_task_slots: args.month_task_slots,
        ..Default::default()
    };
    println!(
        "month: the worker holds up to {} workflow tasks",
        capacity.workflow_task_slots
    );
    let worker = pcn_worker::temporal::build_worker_with(
        &runtime,
        client.clone(),
        &task_queue,
        activities,
        capacity,
    )?;

    let settings = MonthSettings {
        notification_poll_secs: 2,
        // As `make demo`: the window open at any hour, and a failure's retry delay (6 h), the
        // confirmation window (72 h) and the in-doubt reconciliation (10 min) shortened so a
        // rare in-doubt submission or lost callback plays out within the run.
        sms: SmsSettings {
            window: SendWindow::unrestricted(),
            retry_delay_secs: 15,
            confirmation_timeout_secs: 300,
            poll_interval_secs: 30,
            reconcile_secs: 60,
            ..SmsSettings::default()
        },
        ..MonthSettings::default()
    };
    let body = {
        let (client, pool) = (client.clone(), pool.clone());
        async move {
            let started = Instant::now();
            let outcome =
                pcn_worker::months::start_month(&client, &task_queue, month, settings).await?;
            println!("month: {month} backfill started ({outcome:?}); waiting for its end...");
            let progress = {
                let pool = pool.clone();
                tokio::spawn(async move { report_progress(&pool, started).await })
            };
            let result = client
                .get_workflow_handle::<MonthlyQualificationWorkflow>(
                    pcn_workflows::month::workflow_id(month),
                )
                .get_result(WorkflowGetResultOptions::default())
                .await;
            progress.abort();
            result.context("the month's run")?;
            Ok(started.elapsed())
        }
    };
    let total = with_worker(worker, body).await?;
    let stats = sim.stats();
    sim.shutdown().await;
    webhook.abort();

    let phases = Phases::read(&pool, month).await?;
    let largest = largest_history(&client, month).await?;
    let db_mb: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database()) / 1048576")
        .fetch_one(&pool)
        .await?;
    let hwm_mb = crate::harness::vm_hwm_kib(std::process::id())? as f64 / 1024.0;
    pool.close().await;
    drop(server);

    let unit = |u: &str| format!("{u} (N={n})");
    println!(
        "month: {} qualified of {n}, {} notifications final ({} delivered); carrier: {} messages \
         in {} requests, {} repeated references",
        phases.qualified,
        phases.final_notifications,
        phases.delivered,
        stats.submissions,
        stats.submit_requests,
        stats.repeated_references
    );
    anyhow::ensure!(
        phases.final_notifications == phases.qualified,
        "{} of {} notifications final when the month completed",
        phases.final_notifications,
        phases.qualified
    );
    anyhow::ensure!(
        stats.repeated_references == 0,
        "the carrier received {} repeated references (double sends)",
        stats.repeated_references
    );
    figures.push(figure(
        "month_total_s",
        total.as_secs_f64(),
        &unit("s"),
        0.0,
        0.0,
        "reported",
    ));
    figures.push(figure(
        "month_sweeps_s",
        phases.sweeps_s,
        &unit("s, 31 days"),
        0.0,
        0.0,
        "reported",
    ));
    figures.push(figure(
        "month_qualification_s",
        phases.qualification_s,
        &unit("s, last sweep -> first notification row"),
        0.0,
        0.0,
        "reported",
    ));
    figures.push(figure(
        "month_sms_phase_s",
        phases.sms_s,
        &unit("s"),
        0.0,
        0.0,
        "reported",
    ));
    let sms_rate = phases.qualified as f64 / phases.sms_s.max(0.001);
    figures.push(figure(
        "month_sms_per_s",
        sms_rate,
        &unit("messages/s to a final state"),
        baseline,
        sms_rate / baseline,
        "reported; baseline = empty workflows/s, same server, same run",
    ));
    let per_message = stats.submit_requests as f64 / stats.submissions.max(1) as f64;
    figures.push(figure(
        "month_carrier_requests_per_message",
        per_message,
        &unit("requests/message"),
        0.0,
        0.0,
        "<= 0.01",
    ));
    figures.push(figure(
        "month_largest_history_events",
        largest.0 as f64,
        &format!("events ({}, N={n})", largest.1),
        0.0,
        0.0,
        "< 10,240 (Temporal's warning)",
    ));
    println!(
        "  (peak RSS of the whole bench process {}: worker, webhook, dispatcher, both simulators)",
        if hwm_reset {
            "during the month"
        } else {
            "since it started"
        }
    );
    figures.push(figure(
        "month_peak_rss_mb",
        hwm_mb,
        &unit("MB (VmHWM)"),
        0.0,
        0.0,
        "reported",
    ));
    figures.push(figure(
        "month_postgres_mb",
        db_mb as f64,
        &unit("MB"),
        0.0,
        0.0,
        "reported",
    ));
    Ok(())
}

/// Phase times from the month's own rows: sweeps from the first check fetched to the last day's
/// sweep recorded; "qualification" from there to the first notification row (the decision, the
/// month's turns between, the fan-out's first page); SMS from there to the last final state.
struct Phases {
    sweeps_s: f64,
    qualification_s: f64,
    sms_s: f64,
    qualified: i64,
    final_notifications: i64,
    delivered: i64,
}

impl Phases {
    async fn read(pool: &PgPool, month: YearMonth) -> anyhow::Result<Self> {
        let first = month.first_day().as_naive();
        let (sweeps_s, qualification_s, sms_s): (f64, f64, f64) = sqlx::query_as(
            "WITH s AS (SELECT max(completed_at) AS last FROM daily_sweeps
                         WHERE business_date >= $1
                           AND business_date < ($1::date + interval '1 month')),
                  q AS (SELECT min(created_at) AS first FROM notifications WHERE month = $1),
                  n AS (SELECT max(finished_at) AS last FROM notifications WHERE month = $1),
                  c AS (SELECT min(fetched_at) AS first FROM balance_checks
                         WHERE business_date >= $1
                           AND business_date < ($1::date + interval '1 month'))
             SELECT EXTRACT(EPOCH FROM (s.last - c.first))::float8,
                    coalesce(EXTRACT(EPOCH FROM (q.first - s.last))::float8, 0),
                    coalesce(EXTRACT(EPOCH FROM (n.last - q.first))::float8, 0)
               FROM s, q, n, c",
        )
        .bind(first)
        .fetch_one(pool)
        .await
        .context("reading the phase times")?;
        let (qualified, final_notifications, delivered): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM qualifications WHERE month = $1 AND qualified),
                    (SELECT count(*) FROM notifications WHERE month = $1 AND finished_at IS NOT NULL),
                    (SELECT count(*) FROM notifications WHERE month = $1 AND status = 'DELIVERED')",
        )
        .bind(first)
        .fetch_one(pool)
        .await?;
        Ok(Self {
            sweeps_s,
            qualification_s,
            sms_s,
            qualified,
            final_notifications,
            delivered,
        })
    }
}

/// Prints what the month has done every 30 s (rows in Postgres).
async fn report_progress(pool: &PgPool, started: Instant) {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        let counts: Result<(i64, i64, i64, i64), _> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM daily_sweeps),
                    (SELECT count(*) FROM qualifications),
                    (SELECT count(*) FROM notifications),
                    (SELECT count(*) FROM notifications WHERE finished_at IS NOT NULL)",
        )
        .fetch_one(pool)
        .await;
        if let Ok((days, decided, notifications, finished)) = counts {
            println!(
                "  {:>5.0} s: {days} days swept, {decided} decided, {notifications} notifications, \
                 {finished} final",
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// The largest history (events) among the month's workflows (the month and its SMS runs).
async fn largest_history(
    client: &temporalio_client::Client,
    month: YearMonth,
) -> anyhow::Result<(i64, String)> {
    let query = format!("PcnMonth = \"{month}\"");
    let mut largest = (0, String::new());
    let mut listed = 0_u64;
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    while let Some(execution) = stream
        .try_next()
        .await
        .context("listing the month's runs")?
    {
        listed += 1;
        if execution.history_length() > largest.0 {
            largest = (
                execution.history_length(),
                execution.workflow_type().to_owned(),
            );
        }
    }
    println!(
        "  {listed} runs of {month} listed; largest history {} events ({})",
        largest.0, largest.1
    );
    Ok(largest)
}
