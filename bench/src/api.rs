//! Control API and monthly report benchmarks (`make bench`, or `pcn-bench --only api`), on the
//! qualification benchmark's month: N customers (default 100,000) × 31 days of balance checks
//! (3.1 M rows), every customer decided, one notification per qualified customer with a status
//! mix and its attempts. That data is reused when the sweep benchmark left it in `pcn_bench`
//! (`make bench`), else seeded here.
//!
//! - `report_seconds`: `pcn_worker::report::build` of that month; baseline: the required 120 s
//!   (`docs/requirements.md#targets`).
//!   `report_export_ms`: its CSV, XLSX and HTML exports, one after the other.
//! - `api_get_month_p50_ms`, `api_get_month_p99_ms`, `api_get_month_per_s`: `GetMonth` of that
//!   month through a real tonic client, C concurrent clients (default 32, one HTTP/2 connection
//!   each, back to back, no think time) for S seconds (default 10). The month has a closed run in
//!   Temporal, so a computation is one describe plus three counts; the one-second single-flight
//!   cache serves every other call.
//! - `api_get_month_uncached_ms`: one client, calls 1.1 s apart, so each computes the view.
//!   `api_get_month_running_uncached_ms`: the same for a month whose run is live (waiting for its
//!   first day), where the view adds the `progress` query, answered by an in-process worker.
//! - `api_get_customer_p50_ms`, `api_get_customer_p99_ms`, `api_get_customer_per_s`:
//!   `GetCustomer` of random customers (31 checks, a decision, most a notification) under the
//!   same load.
//! - `customer_month_checks_buffers`: shared buffers one customer's month of checks touches
//!   (`EXPLAIN (ANALYZE, BUFFERS)`), beside the heap read it replaced (index-only scans off).
//!
//! The month's run: running the real month workflow on this data would fan out tens of thousands
//! of SMS workflows, so the closed run is a stand-in — a trivial workflow completed under the
//! month's workflow id (`qualification/YYYY-MM`), which is all `GetMonth` reads of a closed run
//! (describe: status and run id). The live run is the real `MonthlyQualificationWorkflow` of
//! next month, started through `pcn_worker::months::start_month` on a worker of this process.
//!
//! Server, load generator, Postgres and Temporal share this machine's cores: under a closed loop
//! at saturation, latency includes the load generator's own CPU.
//!
//! Over 600 lines: one benchmark (the control API and the webhook) with its data set, load
//! generators and printed table.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pcn_activities::bank::{BankAuth, BankConfig, Secret};
use pcn_activities::metrics::Metrics;
use pcn_activities::setup::ActivitySetup;
use pcn_activities::sweep::SweepSettings;
use pcn_activities::{PcnActivities, db, qualify};
use pcn_proto::v1 as pb;
use pcn_proto::v1::control_service_client::ControlServiceClient;
use pcn_worker::api::auth::{TokenTable, hash_token};
use pcn_worker::api::{ApiServer, ApiState};
use pcn_worker::dispatch::ClientSlot;
use pcn_workflows::contracts::{QualifyInput, RunRef};
use pcn_workflows::domain::{BusinessDate, Nis, YearMonth};
use pcn_workflows::month::{self, MonthSettings};
use sqlx::PgPool;
use temporalio_client::{Client, WorkflowGetResultOptions, WorkflowStartOptions};
use temporalio_sdk::{Worker, WorkerOptions};
use tonic::transport::Channel;

use crate::harness::{DevServer, with_worker};
use crate::sms::BenchEmptyWorkflow;
use crate::{Args, Figure, figure};

/// The qualification benchmark's month (its data is reused when present).
const MONTH: &str = "2025-12";
/// The `authorization` header of the bench's viewer (the API is configured with the token's
/// hash, as in production).
const BEARER: &str = "Bearer bench-viewer-token";
/// Sequential `GetMonth` calls of the uncached figures, and the spacing that defeats the cache.
const UNCACHED_CALLS: usize = 10;
const UNCACHED_SPACING: Duration = Duration::from_millis(1_100);
/// The required time of the monthly report (`docs/requirements.md#targets`).
const REPORT_BASELINE_SECS: f64 = 120.0;

/// Runs the report and control API benchmarks; figures are pushed as they are measured.
pub async fn run(args: &Args, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let started = Instant::now();
    let month = YearMonth::parse(MONTH)?;
    let (pool, url) = month_database(args, month).await?;
    seed_notifications(&pool, month).await?;

    report(&pool, month, args.customers, figures).await?;
    customer_buffers(&pool, month, args.customers, figures).await?;

    println!(
        "API: starting a Temporal dev server on 127.0.0.1:{}...",
        args.temporal_port
    );
    let mut server = DevServer::start(&args.temporal_bin, args.temporal_port, "temporal-api")?;
    let client = server.client().await?;
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow::anyhow!("SDK runtime: {e}"))?;
    let run_tag = uuid::Uuid::new_v4().simple().to_string();

    // The closed run of the month: a stand-in completed under the month's workflow id.
    let stand_in_queue = format!("pcn-bench-api-stand-in-{run_tag}");
    let options = WorkerOptions::new(&stand_in_queue)
        .register_workflow::<BenchEmptyWorkflow>()?
        .build();
    let worker = Worker::new(&runtime, client.clone(), options).context("stand-in worker")?;
    with_worker(worker, {
        let client = client.clone();
        async move {
            let options =
                WorkflowStartOptions::new(stand_in_queue, month::workflow_id(month)).build();
            client
                .start_workflow(BenchEmptyWorkflow::run, (), options)
                .await
                .context("starting the month's stand-in run")?
                .get_result(WorkflowGetResultOptions::default())
                .await
                .context("the month's stand-in run")
        }
    })
    .await?;

    // The real worker (nothing but the live month's first workflow task and queries to run).
    let task_queue = format!("pcn-bench-api-{run_tag}");
    let worker = pcn_worker::temporal::build_worker(
        &runtime,
        client.clone(),
        &task_queue,
        idle_activities(&url).await?,
    )?;
    let api_pool = db::connect(&url, 16).await?;
    let api = serve_api(api_pool.clone(), client.clone(), &task_queue).await?;
    let measured = Arc::new(Mutex::new(Vec::new()));
    let body = measure_api(
        Arc::clone(&measured),
        ApiLoad {
            url: format!("http://{}", api.addr),
            client,
            task_queue,
            month,
            customers: args.customers,
            clients: args.api_clients,
            duration: Duration::from_secs(args.api_seconds),
        },
    );
    let result = with_worker(worker, body).await;
    figures.append(&mut measured.lock().unwrap_or_else(|p| p.into_inner()));
    api.abort();
    api_pool.close().await;
    pool.close().await;
    drop(server);
    println!(
        "  (API and report benchmarks: {:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    result
}

/// Random customers of the buffer figures.
const BUFFER_SAMPLES: u64 = 200;

/// `customer_month_checks_buffers`: shared buffers (hit + read) the per-customer read of a month
/// of checks touches — the statement `GetCustomer` runs — averaged over random customers, from
/// `EXPLAIN (ANALYZE, BUFFERS)`: a figure no noisy machine can move, and what a cold cache turns
/// into random reads. Baseline in the same run: the same statement with index-only scans off,
/// i.e. reading the heap, where a customer's 31 days lie in 31 pages. The table is vacuumed
/// first, as autovacuum does after each daily sweep (migration 000009), so its pages are marked
/// all-visible.
async fn customer_buffers(
    pool: &PgPool,
    month: YearMonth,
    customers: u64,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    sqlx::query("VACUUM (ANALYZE) balance_checks")
        .execute(pool)
        .await
        .context("vacuuming balance_checks")?;
    let mut conn = pool.acquire().await?;
    let mut touched = [0u64; 2];
    for (i, index_only) in [true, false].into_iter().enumerate() {
        sqlx::query(if index_only {
            "SET enable_indexonlyscan = on"
        } else {
            "SET enable_indexonlyscan = off"
        })
        .execute(&mut *conn)
        .await?;
        for k in 0..BUFFER_SAMPLES {
            let customer = pcn_bank_sim::customer_id((k * 7_919) % customers.max(1));
            let plan: serde_json::Value = sqlx::query_scalar(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
                 SELECT business_date, outcome, amount, threshold, detail, fetched_at
                   FROM balance_checks
                  WHERE customer_id = $1 AND business_date >= $2
                    AND business_date < ($2 + interval '1 month')::date
                  ORDER BY business_date",
            )
            .bind(&customer)
            .bind(month.first_day().as_naive())
            .fetch_one(&mut *conn)
            .await?;
            let top = &plan[0]["Plan"];
            touched[i] += top["Shared Hit Blocks"].as_u64().unwrap_or(0)
                + top["Shared Read Blocks"].as_u64().unwrap_or(0);
        }
    }
    sqlx::query("RESET enable_indexonlyscan")
        .execute(&mut *conn)
        .await?;
    let per_call = |t: u64| t as f64 / BUFFER_SAMPLES as f64;
    let (covered, heap) = (per_call(touched[0]), per_call(touched[1]));
    println!(
        "GetCustomer's month of checks: {covered:.1} shared buffers per call (heap read: {heap:.1})"
    );
    figures.push(figure(
        "customer_month_checks_buffers",
        covered,
        "shared buffers per call",
        heap,
        if covered > 0.0 { heap / covered } else { 0.0 },
        "<= 10",
    ));
    Ok(())
}

/// `pcn_bench` with the month's checks and decisions: the sweep benchmark's when it left them,
/// else a fresh database seeded the same way. Returns the pool and its URL.
async fn month_database(args: &Args, month: YearMonth) -> anyhow::Result<(PgPool, String)> {
    let url = args
        .admin_url
        .rsplit_once('/')
        .map(|(base, _)| format!("{base}/pcn_bench"))
        .context("admin url without a database")?;
    let n = i64::try_from(args.customers)?;
    if let Some(pool) = reusable(&url, month, n).await {
        println!("API: reusing pcn_bench ({n} customers decided for {month})");
        return Ok((pool, url));
    }
    let started = Instant::now();
    println!(
        "API: seeding {n} customers and {} balance checks...",
        n * 31
    );
    let pool = crate::fresh_database(&args.admin_url, crate::Schema::Partitioned).await?;
    crate::seed_customers(&pool, args.customers).await?;
    crate::seed_month(&pool, month).await?;
    let decided = qualify::qualify_month(
        &pool,
        &QualifyInput {
            month,
            threshold: Nis::from_whole(15_000),
            run: RunRef {
                workflow_id: "bench".into(),
                run_id: "qualify".into(),
            },
        },
    )
    .await?;
    anyhow::ensure!(
        decided.customers == args.customers,
        "decided {}",
        decided.customers
    );
    println!("  seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok((pool, url))
}

/// The database at `url` if it holds `n` customers, all decided for `month` on 31 days of checks.
async fn reusable(url: &str, month: YearMonth, n: i64) -> Option<PgPool> {
    let pool = db::connect(url, 32).await.ok()?;
    db::migrate(&pool).await.ok()?;
    let (customers, decided, checks): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM customers),
                (SELECT count(*) FROM qualifications WHERE month = $1),
                (SELECT count(*) FROM balance_checks WHERE business_date BETWEEN $1 AND $2)",
    )
    .bind(month.first_day().as_naive())
    .bind(month.last_day().as_naive())
    .fetch_one(&pool)
    .await
    .ok()?;
    let days = i64::from(month.num_days());
    (customers == n && decided == n && checks == n * days).then_some(pool)
}

/// One notification per qualified customer of `month` (85 % delivered, the rest failed,
/// undeliverable, opted out, cancelled or still in flight), their attempts, and the month's
/// daily sweep rows. Idempotent: a rerun on reused data adds nothing.
async fn seed_notifications(pool: &PgPool, month: YearMonth) -> anyhow::Result<()> {
    let started = Instant::now();
    let first = month.first_day().as_naive();
    let last = month.last_day().as_naive();
    // The fan-out runs the morning after the month's last check.
    let fanout_at = month
        .next()
        .first_day()
        .as_naive()
        .and_hms_opt(8, 0, 0)
        .context("fan-out time")?
        .and_utc();
    sqlx::query(
        "INSERT INTO daily_sweeps (business_date, checked, passed, below_threshold, missing,
             not_found, invalid, completed_at, workflow_id, run_id)
         SELECT business_date, count(*), count(*) FILTER (WHERE outcome = 'PASSED'),
                count(*) FILTER (WHERE outcome = 'BELOW_THRESHOLD'),
                count(*) FILTER (WHERE outcome = 'MISSING'),
                count(*) FILTER (WHERE outcome = 'ACCOUNT_NOT_FOUND'),
                count(*) FILTER (WHERE outcome = 'INVALID_RESPONSE'),
                business_date + time '20:05', 'bench', 'seed'
           FROM balance_checks WHERE business_date BETWEEN $1 AND $2
          GROUP BY business_date
         ON CONFLICT (business_date) DO NOTHING",
    )
    .bind(first)
    .bind(last)
    .execute(pool)
    .await
    .context("seeding daily sweeps")?;
    let notifications = sqlx::query(
        "WITH q AS (
             SELECT customer_id, abs(hashtext(customer_id || '/sms')) % 100 AS b,
                    $3::timestamptz
                        + (abs(hashtext(customer_id || '/at')) % 3600) * interval '1 second' AS at
               FROM qualifications WHERE month = $1 AND qualified
         ), s AS (
             SELECT customer_id, at,
                    CASE WHEN b < 85 THEN 'DELIVERED' WHEN b < 89 THEN 'FAILED'
                         WHEN b < 92 THEN 'UNDELIVERABLE' WHEN b < 94 THEN 'OPTED_OUT'
                         WHEN b < 95 THEN 'CANCELLED' WHEN b < 98 THEN 'SUBMITTED'
                         WHEN b < 99 THEN 'RETRY_WAIT' ELSE 'PENDING' END AS status
               FROM q
         )
         INSERT INTO notifications (month, customer_id, workflow_id, status, attempts, language,
             encoding, segments, failure_category, detail, created_at, updated_at, finished_at)
         SELECT $1, customer_id, 'sms/' || $2 || '/' || customer_id, status,
                CASE status WHEN 'FAILED' THEN 3 WHEN 'OPTED_OUT' THEN 0 WHEN 'CANCELLED' THEN 0
                            WHEN 'PENDING' THEN 0 ELSE 1 END,
                'he', 'UCS2', 2,
                CASE status WHEN 'FAILED' THEN 'PROVIDER_ERROR'
                            WHEN 'UNDELIVERABLE' THEN 'INVALID_NUMBER' END,
                CASE status WHEN 'FAILED' THEN 'carrier error 30008 on every attempt' END,
                at, at + interval '1 minute',
                CASE WHEN status IN ('DELIVERED', 'FAILED', 'UNDELIVERABLE', 'OPTED_OUT',
                                     'CANCELLED')
                     THEN at + interval '1 minute' END
           FROM s
         ON CONFLICT (month, customer_id) DO NOTHING",
    )
    .bind(first)
    .bind(month.to_string())
    .bind(fanout_at)
    .execute(pool)
    .await
    .context("seeding notifications")?
    .rows_affected();
    // Earlier attempts of a notification failed; the last one ended as the notification did.
    let attempts = sqlx::query(
        "WITH a AS (
             SELECT n.month, n.customer_id, n.workflow_id, c.phone_key_id, c.phone_sealed,
                    k AS attempt,
                    n.created_at + (k - 1) * interval '6 hours' AS submitted_at,
                    CASE WHEN k < n.attempts OR n.status = 'RETRY_WAIT' THEN 'FAILED'
                         WHEN n.status IN ('DELIVERED', 'FAILED', 'UNDELIVERABLE') THEN n.status
                         ELSE 'SUBMITTED' END AS status,
                    (2000 + abs(hashtext(n.customer_id || '/latency')) % 28000)
                        * interval '1 millisecond' AS latency
               FROM notifications n
               JOIN customers c USING (customer_id)
              CROSS JOIN generate_series(1, n.attempts) AS k
              WHERE n.month = $1
         )
         -- The customer's sealed number stands in for the attempt's (the API never opens it).
         INSERT INTO sms_attempts (month, customer_id, attempt, message_ref, carrier,
             phone_key_id, phone_sealed, body, status, carrier_message_id, error_code, failure_category, created_at,
             submitted_at, finished_at)
         SELECT month, customer_id, attempt, workflow_id || '#' || attempt, 'generic',
                phone_key_id, phone_sealed,
                'Dana, your balance stayed above 15,000 NIS all month: thank you for banking with us.',
                status, 'bench-' || workflow_id || '#' || attempt,
                CASE status WHEN 'FAILED' THEN '30008' WHEN 'UNDELIVERABLE' THEN '30003' END,
                CASE status WHEN 'FAILED' THEN 'PROVIDER_ERROR'
                            WHEN 'UNDELIVERABLE' THEN 'INVALID_NUMBER' END,
                submitted_at, submitted_at,
                CASE WHEN status <> 'SUBMITTED' THEN submitted_at + latency END
           FROM a
         ON CONFLICT DO NOTHING",
    )
    .bind(first)
    .execute(pool)
    .await
    .context("seeding SMS attempts")?
    .rows_affected();
    sqlx::query("VACUUM ANALYZE notifications, sms_attempts, daily_sweeps")
        .execute(pool)
        .await?;
    println!(
        "API: {notifications} notifications and {attempts} attempts seeded for {month} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `report_seconds` (the build, twice: the figure is the first) and `report_export_ms`.
async fn report(
    pool: &PgPool,
    month: YearMonth,
    customers: u64,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
    println!("report of {month}...");
    let started = Instant::now();
    let report = pcn_worker::report::build(pool, month)
        .await?
        .context("the month has no data")?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.summary.customers_monitored == customers,
        "the report decided {} customers",
        report.summary.customers_monitored
    );
    let again = Instant::now();
    pcn_worker::report::build(pool, month).await?;
    println!(
        "  built in {secs:.2} s (again: {:.2} s); {} customers, {} checks on {} days, {} \
         notifications",
        again.elapsed().as_secs_f64(),
        report.summary.customers_monitored,
        report.daily.iter().map(|d| d.checked).sum::<u64>(),
        report.daily.len(),
        report.summary.notifications
    );
    figures.push(figure(
        "report_seconds",
        secs,
        "s",
        REPORT_BASELINE_SECS,
        REPORT_BASELINE_SECS / secs,
        "<= 120 s (required)",
    ));

    let started = Instant::now();
    let csv = pcn_worker::report::export::csv(&report);
    let csv_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let xlsx = pcn_worker::report::export::xlsx(&report)?;
    let xlsx_ms = started.elapsed().as_secs_f64() * 1000.0;
    let started = Instant::now();
    let html = pcn_worker::report::export::html(&report);
    let html_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  exports: csv {csv_ms:.1} ms ({} B), xlsx {xlsx_ms:.1} ms ({} B), html {html_ms:.1} ms \
         ({} B)",
        csv.len(),
        xlsx.len(),
        html.len()
    );
    figures.push(figure(
        "report_export_ms",
        csv_ms + xlsx_ms + html_ms,
        "ms (csv + xlsx + html)",
        0.0,
        0.0,
        "reported",
    ));
    Ok(())
}

/// Activities of a worker that runs no activity here (the live month waits for its first day).
async fn idle_activities(url: &str) -> anyhow::Result<PcnActivities> {
    ActivitySetup {
        pool: db::connect(url, 2).await?,
        bank: BankConfig {
            base_url: "http://127.0.0.1:9".to_owned(),
            auth: BankAuth::ApiKey(Secret::new("unused")),
            server_ca: None,
            timeout: Duration::from_secs(1),
            attempts: 1,
            backoff: Duration::from_millis(10),
            max_connections: 1,
        },
        sweep: SweepSettings {
            page_size: 500,
            concurrency: 8,
        },
        metrics: Metrics::new(),
        sms: None,
        report_recipients: Vec::new(),
    }
    .build()
}

/// The control API on port 0, with one viewer token.
async fn serve_api(pool: PgPool, client: Client, task_queue: &str) -> anyhow::Result<ApiServer> {
    let tokens = TokenTable::parse(&format!(
        "bench:viewer:{}",
        hash_token(BEARER.trim_start_matches("Bearer "))
    ))
    .map_err(|e| anyhow::anyhow!("bench token: {e}"))?;
    // Bound as `pcn-worker api` binds it: what the server does with accepted sockets is measured.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    pcn_worker::api::serve(
        listener,
        ApiState {
            pool,
            temporal: ClientSlot::connected(client),
            task_queue: task_queue.to_owned(),
            month_settings: MonthSettings::default(),
            tokens: Arc::new(tokens),
            report_recipients: Vec::new(),
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        },
    )
    .await
}

/// What the API measurements need.
struct ApiLoad {
    url: String,
    client: Client,
    task_queue: String,
    month: YearMonth,
    customers: u64,
    clients: usize,
    duration: Duration,
}

/// One API call of the load.
#[derive(Clone, Copy)]
enum Call {
    /// `GetMonth` of the month.
    Month(YearMonth),
    /// `GetCustomer` of a random customer among `customers`, with the month's checks.
    Customer { month: YearMonth, customers: u64 },
}

/// The API figures, pushed to `figures` as they are measured.
async fn measure_api(figures: Arc<Mutex<Vec<Figure>>>, load: ApiLoad) -> anyhow::Result<()> {
    let push = |f: Figure| figures.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    let mut api = ControlServiceClient::connect(load.url.clone()).await?;

    // The view is whole before the clock starts.
    let view = api
        .get_month(authed(pb::GetMonthRequest {
            month: load.month.to_string(),
        }))
        .await?
        .into_inner();
    let decided = view.qualification.as_ref().map_or(0, |q| q.decided);
    anyhow::ensure!(
        view.phase() == pb::MonthPhase::Completed && decided == load.customers,
        "GetMonth answered phase {:?} with {decided} decided",
        view.phase()
    );
    println!(
        "API: GetMonth {}: {:?}, {decided} decided, {} notifications, {} days",
        load.month,
        view.phase(),
        view.notifications.as_ref().map_or(0, |n| n.total),
        view.days.len()
    );

    let (ms, rate) = concurrent(&load, Call::Month(load.month)).await?;
    push(figure(
        "api_get_month_p50_ms",
        ms.0,
        "ms",
        0.0,
        0.0,
        "reported",
    ));
    push(figure(
        "api_get_month_p99_ms",
        ms.1,
        "ms",
        0.0,
        0.0,
        "<= 20 ms",
    ));
    push(figure(
        "api_get_month_per_s",
        rate,
        &format!("requests/s ({} clients)", load.clients),
        0.0,
        0.0,
        "reported",
    ));

    // The live month: the real workflow of next month, parked on its first day's timer.
    let live = BusinessDate::of_instant(chrono::Utc::now())
        .year_month()
        .next();
    pcn_worker::months::start_month(
        &load.client,
        &load.task_queue,
        live,
        MonthSettings::default(),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while pcn_worker::months::progress(&load.client, live)
        .await
        .is_err()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the live month {live} answers no progress query"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let view = api
        .get_month(authed(pb::GetMonthRequest {
            month: live.to_string(),
        }))
        .await?
        .into_inner();
    anyhow::ensure!(
        view.phase() == pb::MonthPhase::Monitoring,
        "the live month {live} is {:?}",
        view.phase()
    );

    println!(
        "API: GetMonth uncached, {UNCACHED_CALLS} calls {} ms apart, {} (closed) and {live} \
         (live)...",
        UNCACHED_SPACING.as_millis(),
        load.month
    );
    let mut closed = Vec::with_capacity(UNCACHED_CALLS);
    let mut running = Vec::with_capacity(UNCACHED_CALLS);
    for _ in 0..UNCACHED_CALLS {
        tokio::time::sleep(UNCACHED_SPACING).await;
        for (month, out) in [(load.month, &mut closed), (live, &mut running)] {
            let sent = Instant::now();
            api.get_month(authed(pb::GetMonthRequest {
                month: month.to_string(),
            }))
            .await?;
            out.push(sent.elapsed());
        }
    }
    for (name, what, latencies) in [
        ("api_get_month_uncached_ms", "closed run", &mut closed),
        (
            "api_get_month_running_uncached_ms",
            "live run",
            &mut running,
        ),
    ] {
        let (p50, _) = percentiles(latencies)?;
        println!(
            "  {what}: min {:.1} ms, max {:.1} ms",
            ms_of(latencies[0]),
            ms_of(latencies[latencies.len() - 1])
        );
        push(figure(name, p50, "ms (p50 of 10)", 0.0, 0.0, "reported"));
    }

    let customer = pcn_bank_sim::customer_id(load.customers / 2);
    let detail = api
        .get_customer(authed(pb::GetCustomerRequest {
            customer_id: customer.clone(),
            month: load.month.to_string(),
        }))
        .await?
        .into_inner();
    anyhow::ensure!(
        detail.checks.len() == 31 && !detail.qualifications.is_empty(),
        "GetCustomer {customer}: {} checks, {} decisions",
        detail.checks.len(),
        detail.qualifications.len()
    );
    let call = Call::Customer {
        month: load.month,
        customers: load.customers,
    };
    let (ms, rate) = concurrent(&load, call).await?;
    push(figure(
        "api_get_customer_p50_ms",
        ms.0,
        "ms",
        0.0,
        0.0,
        "reported",
    ));
    push(figure(
        "api_get_customer_p99_ms",
        ms.1,
        "ms",
        0.0,
        0.0,
        "<= 20 ms",
    ));
    push(figure(
        "api_get_customer_per_s",
        rate,
        &format!("requests/s ({} clients)", load.clients),
        0.0,
        0.0,
        "reported",
    ));
    Ok(())
}

/// `call` from `load.clients` clients, each on its own connection, back to back for
/// `load.duration`: ((p50, p99) in ms, requests per second).
async fn concurrent(load: &ApiLoad, call: Call) -> anyhow::Result<((f64, f64), f64)> {
    let what = match call {
        Call::Month(month) => format!("GetMonth {month}"),
        Call::Customer { .. } => "GetCustomer (random customers)".to_owned(),
    };
    println!(
        "API: {what} from {} clients for {} s...",
        load.clients,
        load.duration.as_secs()
    );
    // Every client connects and makes one call before the clock starts.
    let start = Arc::new(tokio::sync::Barrier::new(load.clients + 1));
    let tasks: Vec<_> = (0..u64::try_from(load.clients)?)
        .map(|i| {
            let (url, start, duration) = (load.url.clone(), Arc::clone(&start), load.duration);
            tokio::spawn(async move {
                let mut rng = 0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(i + 1);
                let ready = async {
                    let mut api = ControlServiceClient::connect(url).await?;
                    one(&mut api, call, &mut rng).await?;
                    Ok::<_, anyhow::Error>(api)
                }
                .await;
                // Past the barrier even on failure, so the others are not held forever.
                start.wait().await;
                let mut api = ready?;
                let end = Instant::now() + duration;
                let mut latencies = Vec::new();
                while Instant::now() < end {
                    let sent = Instant::now();
                    one(&mut api, call, &mut rng).await?;
                    latencies.push(sent.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    start.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = latencies.len() as f64 / secs;
    let (p50, p99) = percentiles(&mut latencies)?;
    println!(
        "  {} calls in {secs:.1} s ({rate:.0}/s): p50 {p50:.2} ms, p99 {p99:.2} ms, max {:.1} ms",
        latencies.len(),
        ms_of(latencies[latencies.len() - 1])
    );
    Ok(((p50, p99), rate))
}

/// One call; `rng` (xorshift64) picks the customer.
async fn one(
    api: &mut ControlServiceClient<Channel>,
    call: Call,
    rng: &mut u64,
) -> anyhow::Result<()> {
    match call {
        Call::Month(month) => {
            api.get_month(authed(pb::GetMonthRequest {
                month: month.to_string(),
            }))
            .await?;
        }
        Call::Customer { month, customers } => {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            api.get_customer(authed(pb::GetCustomerRequest {
                customer_id: pcn_bank_sim::customer_id(*rng % customers),
                month: month.to_string(),
            }))
            .await?;
        }
    }
    Ok(())
}

/// `message` with the bench's bearer token.
fn authed<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::from_static(BEARER),
    );
    request
}

/// Sorts `latencies`; (p50, p99) in ms.
fn percentiles(latencies: &mut [Duration]) -> anyhow::Result<(f64, f64)> {
    anyhow::ensure!(!latencies.is_empty(), "no latencies");
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100).saturating_sub(1)];
    Ok((ms_of(latencies[latencies.len() / 2]), ms_of(p99)))
}

fn ms_of(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
