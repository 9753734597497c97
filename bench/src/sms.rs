//! SMS benchmarks (`make bench`, or `pcn-bench --only sms`), each beside a baseline measured in
//! the same run against the same Temporal dev server, which this module starts itself
//! (`.pcn/bin/temporal server start-dev`, file-backed SQLite with the WAL pragmas, our search
//! attributes) and stops at the end:
//!
//! - `empty_workflows_per_s`: M trivial workflows started with 32 starts in flight, until all
//!   completed — what the server does with no work at all.
//! - `sms_fanout_messages_per_s`: N qualified customers; the month's fan-out step
//!   (`pcn_activities::fanout::start_page`, pages of 2,000) until every SMS workflow has an attempt
//!   the carrier simulator accepted. Baseline: the empty-workflow rate.
//! - `history_events_per_delivered_message`: events of one DELIVERED SMS workflow.
//! - `signal_delivery_per_s`: callbacks held by the simulator until all N messages were accepted,
//!   then released: from the release until every DELIVERED event is signalled into its workflow
//!   (simulator → webhook → Postgres → dispatcher → signal). Baseline `raw_signals_per_s`: one
//!   signal to each of N tiny waiting workflows straight from the client, 64 in flight.
//! - `callback_to_state_change_p99_ms`: p99 of `notifications.finished_at −
//!   delivery_events.received_at`.
//! - `fanout_children_tree_per_s` against `fanout_client_starts_per_s`: the two fan-out
//!   mechanisms side by side, N leaves each ([`crate::tree`]).
//! - `worker_peak_rss_mb`: peak RSS of the process running the worker during the SMS part.
//! - `webhook_ack_per_s`, `webhook_ack_p99_ms`: signed generic callbacks from 64 concurrent
//!   clients against the webhook alone (dispatcher disabled), every one checked stored.
//!
//! Over 600 lines: one benchmark (the SMS phase) with its setup, its measurements and the printed
//! table; shared infrastructure is in `harness.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt, stream};
use pcn_activities::db;
use pcn_activities::fanout::FanoutDeps;
use pcn_worker::dispatch::Dispatcher;
use pcn_worker::webhook::WebhookConfig;
use pcn_workflows::contracts::{RunRef, StartNotificationsInput};
use pcn_workflows::domain::{CustomerId, YearMonth};
use pcn_workflows::sms::{SmsNotificationWorkflow, SmsSettings};
use pcn_workflows::window::SendWindow;
use sqlx::PgPool;
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::runtime::PollerBehavior;
use temporalio_sdk::{Worker, WorkerOptions};
use temporalio_workflow::{SyncWorkflowContext, WorkflowContext, WorkflowResult};

use crate::harness::{
    DevServer, bench_activities, carrier_stack, fresh_database, vm_hwm_kib, wait_count, with_worker,
};
use crate::{Args, Figure, figure};

/// Starts in flight when starting bench workflows (the fan-out's own default concurrency).
const START_CONCURRENCY: usize = 32;
/// Signals / result waits / webhook clients in flight.
const SIGNAL_CONCURRENCY: usize = 64;
/// Customers per fan-out page (the month workflow's default page).
const FANOUT_PAGE: u32 = 2_000;
/// The month the bench's customers qualified in.
const MONTH: &str = "2025-11";

/// Workflows whose first task ran (not replaying): lets the raw-signal baseline wait until every
/// receiver is parked in its `wait_condition`, as the SMS workflows are when callbacks resume.
static SIGNAL_RECEIVERS_READY: AtomicU64 = AtomicU64::new(0);

/// A workflow that completes at once: the server's cost of a workflow with no work.
#[workflow]
#[derive(Default)]
pub struct BenchEmptyWorkflow {
    _nothing: (),
}

#[workflow_methods]
impl BenchEmptyWorkflow {
    /// Returns immediately.
    #[run(name = "BenchEmpty")]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

/// A workflow that waits for one signal, then completes.
#[workflow]
#[derive(Default)]
pub struct BenchSignalWorkflow {
    signalled: bool,
}

#[workflow_methods]
impl BenchSignalWorkflow {
    /// Waits for `go`.
    #[run(name = "BenchSignalWait")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        if !ctx.is_replaying() {
            SIGNAL_RECEIVERS_READY.fetch_add(1, Ordering::Relaxed);
        }
        ctx.wait_condition(|s| s.signalled).await?;
        Ok(())
    }

    /// The one signal.
    #[signal(name = "go")]
    pub fn go(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _value: u32) {
        self.signalled = true;
    }
}

/// Runs the SMS benchmarks; figures are pushed as they are measured (so a failure keeps those).
pub async fn run(args: &Args, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    // Peak RSS of this part only: reset the high-water mark (Linux: "5" > clear_refs).
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    println!(
        "starting the Temporal dev server on 127.0.0.1:{} (file-backed, WAL)...",
        args.temporal_port
    );
    let mut server = DevServer::start(&args.temporal_bin, args.temporal_port, "temporal")?;
    let client = server.client().await?;
    let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow::anyhow!("SDK runtime: {e}"))?;
    let n = args.sms_customers;
    let run_tag = uuid::Uuid::new_v4().simple().to_string();

    // 1. Empty workflows and raw signals, on a worker of the bench's own workflows.
    let bench_queue = format!("pcn-bench-{run_tag}");
    let worker = bench_worker(&runtime, client.clone(), &bench_queue)?;
    let ((empty_rate, raw_signal_rate), (client_start_rate, tree_rate)) = with_worker(worker, {
        let (client, tag, m) = (client.clone(), run_tag.clone(), args.empty_workflows);
        async move {
            let rates = baselines(client.clone(), bench_queue.clone(), tag.clone(), m, n).await?;
            let tree = crate::tree::compare(client, bench_queue, tag, n).await?;
            Ok((rates, tree))
        }
    })
    .await?;
    figures.push(figure(
        "empty_workflows_per_s",
        empty_rate,
        "workflows/s",
        0.0,
        0.0,
        "baseline of sms_fanout_messages_per_s",
    ));

    figures.push(figure(
        "fanout_client_starts_per_s",
        client_start_rate,
        &format!("workflows/s (N={n})"),
        0.0,
        0.0,
        "baseline of fanout_children_tree_per_s",
    ));
    figures.push(figure(
        "fanout_children_tree_per_s",
        tree_rate,
        &format!("workflows/s (N={n})"),
        client_start_rate,
        tree_rate / client_start_rate,
        "reported; the faster mechanism is kept",
    ));

    // 2.–4. The SMS path: fan-out, callbacks, signals.
    let sms = sms_path(args, &runtime, &client, &run_tag).await?;
    let fanout_unit = format!("messages/s (N={n})");
    figures.push(figure(
        "sms_fanout_messages_per_s",
        sms.fanout_rate,
        &fanout_unit,
        empty_rate,
        sms.fanout_rate / empty_rate,
        "ratio >= 0.8",
    ));
    figures.push(figure(
        "history_events_per_delivered_message",
        sms.history_events as f64,
        "events",
        0.0,
        0.0,
        "reported; fewer is better",
    ));
    figures.push(figure(
        "raw_signals_per_s",
        raw_signal_rate,
        "signals/s",
        0.0,
        0.0,
        "baseline of signal_delivery_per_s",
    ));
    figures.push(figure(
        "signal_delivery_per_s",
        sms.signal_rate,
        "signals/s",
        raw_signal_rate,
        sms.signal_rate / raw_signal_rate,
        "ratio >= 0.8",
    ));
    figures.push(figure(
        "callback_to_state_change_p99_ms",
        sms.callback_p99_ms,
        "ms",
        0.0,
        0.0,
        "reported",
    ));

    // 6. Peak RSS of the in-process worker's process.
    let hwm = vm_hwm_kib(std::process::id())?;
    let rss_unit = "MB (VmHWM, in-process worker)";
    println!(
        "  (peak RSS of the whole bench process {}: the worker runs in it, beside the webhook, \
         the dispatcher, the carrier simulator and the load generator — an upper bound)",
        if hwm_reset {
            "during the SMS part"
        } else {
            "since it started"
        }
    );
    let rss_mb = hwm as f64 / 1024.0;
    figures.push(figure(
        "worker_peak_rss_mb",
        rss_mb,
        rss_unit,
        0.0,
        0.0,
        "<= 300 MB",
    ));
    drop(server);

    // 5. The webhook's acknowledgement path alone.
    let (ack_rate, ack_p99) = webhook_ack(&args.admin_url, args.webhook_callbacks).await?;
    figures.push(figure(
        "webhook_ack_per_s",
        ack_rate,
        "callbacks/s",
        0.0,
        0.0,
        ">= 2000/s",
    ));
    figures.push(figure(
        "webhook_ack_p99_ms",
        ack_p99,
        "ms",
        0.0,
        0.0,
        "<= 50 ms",
    ));
    Ok(())
}

/// The bench workflows' worker, with the pollers of `pcn_worker::temporal::build_worker`.
pub(crate) fn bench_worker(
    runtime: &temporalio_sdk::Runtime,
    client: Client,
    task_queue: &str,
) -> anyhow::Result<Worker> {
    let options = WorkerOptions::new(task_queue)
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(20))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(10))
        // The same cache as the real worker: the baselines pay no replay the SMS path does not.
        .max_cached_workflows(pcn_worker::temporal::DEFAULT_WORKFLOW_CACHE)
        .register_workflow::<BenchEmptyWorkflow>()?
        .register_workflow::<BenchSignalWorkflow>()?
        .register_workflow::<crate::tree::BenchLeafWorkflow>()?
        .register_workflow::<crate::tree::BenchTreeRootWorkflow>()?
        .register_workflow::<crate::tree::BenchTreeBatchWorkflow>()?
        .build();
    Worker::new(runtime, client, options).context("building the bench worker")
}

/// Empty workflows per second, then raw signals per second (`k` receivers).
async fn baselines(
    client: Client,
    task_queue: String,
    run_tag: String,
    m: u64,
    k: u64,
) -> anyhow::Result<(f64, f64)> {
    let empty_rate = empty_rate(client.clone(), task_queue.clone(), run_tag.clone(), m).await?;
    let raw_rate = raw_signal_rate(client, task_queue, run_tag, k).await?;
    Ok((empty_rate, raw_rate))
}

/// `m` trivial workflows started (32 in flight) until all completed: workflows per second.
pub(crate) async fn empty_rate(
    client: Client,
    task_queue: String,
    run_tag: String,
    m: u64,
) -> anyhow::Result<f64> {
    println!("empty workflows: {m}...");
    let started = Instant::now();
    let handles: Vec<_> = stream::iter(0..m)
        .map(|i| {
            let options =
                WorkflowStartOptions::new(task_queue.clone(), format!("bench-empty-{run_tag}-{i}"))
                    .build();
            client.start_workflow(BenchEmptyWorkflow::run, (), options)
        })
        .buffer_unordered(START_CONCURRENCY)
        .try_collect()
        .await
        .context("starting an empty workflow")?;
    stream::iter(handles)
        .map(|h| async move { h.get_result(WorkflowGetResultOptions::default()).await })
        .buffer_unordered(SIGNAL_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .context("an empty workflow did not complete")?;
    let empty_rate = m as f64 / started.elapsed().as_secs_f64();
    println!("  {m} in {:.1} s", started.elapsed().as_secs_f64());
    Ok(empty_rate)
}

/// One signal to each of `k` parked workflows (64 in flight): signals accepted per second.
async fn raw_signal_rate(
    client: Client,
    task_queue: String,
    run_tag: String,
    k: u64,
) -> anyhow::Result<f64> {
    println!("raw signals: starting {k} waiting workflows...");
    SIGNAL_RECEIVERS_READY.store(0, Ordering::Relaxed);
    let ids: Vec<String> = (0..k)
        .map(|i| format!("bench-signal-{run_tag}-{i}"))
        .collect();
    let started = Instant::now();
    stream::iter(ids.iter().cloned())
        .map(|id| {
            let options = WorkflowStartOptions::new(task_queue.clone(), id).build();
            client.start_workflow(BenchSignalWorkflow::run, (), options)
        })
        .buffer_unordered(START_CONCURRENCY)
        .try_for_each(|_| async { Ok(()) })
        .await
        .context("starting a signal receiver")?;
    wait_count(
        &SIGNAL_RECEIVERS_READY,
        k,
        "signal receivers ran their first task",
    )
    .await?;
    println!(
        "  {k} started and parked in {:.1} s; signalling...",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    stream::iter(ids.iter().cloned())
        .map(|id| {
            let handle = client.get_workflow_handle::<BenchSignalWorkflow>(id);
            async move {
                handle
                    .signal(BenchSignalWorkflow::go, 1, WorkflowSignalOptions::default())
                    .await
            }
        })
        .buffer_unordered(SIGNAL_CONCURRENCY)
        .try_for_each(|()| async { Ok(()) })
        .await
        .context("signalling a receiver")?;
    let signal_secs = started.elapsed().as_secs_f64();
    let raw_rate = k as f64 / signal_secs;
    println!("  {k} signals accepted in {signal_secs:.1} s; waiting for the receivers to end...");
    // Let the receivers finish so their completions do not overlap the next measurement.
    stream::iter(ids)
        .map(|id| {
            let handle = client.get_workflow_handle::<BenchSignalWorkflow>(id);
            async move { handle.get_result(WorkflowGetResultOptions::default()).await }
        })
        .buffer_unordered(SIGNAL_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .context("a signal receiver did not complete")?;
    println!(
        "  every receiver ended {:.1} s after the first signal",
        started.elapsed().as_secs_f64()
    );
    Ok(raw_rate)
}

/// What the SMS path measured.
struct SmsFigures {
    fanout_rate: f64,
    history_events: usize,
    signal_rate: f64,
    callback_p99_ms: f64,
}

async fn sms_path(
    args: &Args,
    runtime: &temporalio_sdk::Runtime,
    client: &Client,
    run_tag: &str,
) -> anyhow::Result<SmsFigures> {
    let n = args.sms_customers;
    let month = YearMonth::parse(MONTH)?;
    let (pool, url) = fresh_database(&args.admin_url, "pcn_bench_sms").await?;
    println!("SMS: seeding {n} customers qualified for {month}...");
    crate::seed_customers(&pool, n).await?;
    sqlx::query(
        "INSERT INTO qualifications (month, customer_id, qualified, reason, days_in_month,
             days_passed, days_below, days_missing, days_not_found, days_invalid, threshold,
             workflow_id, run_id)
         SELECT $1, customer_id, true, 'QUALIFIED', $2, $2, 0, 0, 0, 0, 15000, 'bench', 'seed'
           FROM customers",
    )
    .bind(month.first_day().as_naive())
    .bind(i16::try_from(month.num_days())?)
    .execute(&pool)
    .await?;

    // The carrier simulator (callbacks held), our webhook and dispatcher in front of the pool.
    let (sim, webhook, carrier) =
        carrier_stack(&pool, client, pcn_carrier_sim::SimConfig::default()).await?;
    sim.pause_callbacks();

    // The real worker (both workflows, every activity), in this process.
    let worker_pool = db::connect(&url, 16).await?;
    let fanout = FanoutDeps {
        client: client.clone(),
        concurrency: START_CONCURRENCY,
    };
    // The SMS path never calls the bank.
    let activities = bench_activities(worker_pool, "http://127.0.0.1:9", &carrier, &fanout)?;
    let task_queue = format!("pcn-bench-sms-{run_tag}");
    let worker =
        pcn_worker::temporal::build_worker(runtime, client.clone(), &task_queue, activities)?;

    let body = {
        let pool = pool.clone();
        let client = client.clone();
        async move {
            let figures = measure_sms(&pool, &client, &fanout, &sim, &task_queue, month, n).await;
            sim.shutdown().await;
            figures
        }
    };
    let figures = with_worker(worker, body).await;
    webhook.abort();
    pool.close().await;
    figures
}

#[allow(clippy::too_many_arguments)]
async fn measure_sms(
    pool: &PgPool,
    client: &Client,
    fanout: &FanoutDeps,
    sim: &pcn_carrier_sim::SimHandle,
    task_queue: &str,
    month: YearMonth,
    n: u64,
) -> anyhow::Result<SmsFigures> {
    let expected = i64::try_from(n)?;
    // Fan-out: the month workflow's StartNotifications step, page by page.
    println!("SMS fan-out of {n} notifications (callbacks held)...");
    let settings = SmsSettings {
        window: SendWindow::unrestricted(),
        ..SmsSettings::default()
    };
    let started = Instant::now();
    let mut after: Option<CustomerId> = None;
    let mut workflows = 0;
    loop {
        let page = pcn_activities::fanout::start_page(
            pool,
            fanout,
            &StartNotificationsInput {
                month,
                after: after.clone(),
                limit: FANOUT_PAGE,
                settings: settings.clone(),
                task_queue: task_queue.to_owned(),
                run: RunRef {
                    workflow_id: "bench".into(),
                    run_id: "fanout".into(),
                },
            },
            |_| async {},
        )
        .await?;
        workflows += page.started;
        after = page.last;
        if page.done {
            break;
        }
    }
    anyhow::ensure!(
        workflows == n,
        "the fan-out started {workflows} of {n} workflows"
    );
    println!("  {n} started in {:.1} s", started.elapsed().as_secs_f64());
    wait_for(
        pool,
        "SELECT count(*) FROM sms_attempts WHERE carrier_message_id IS NOT NULL",
        expected,
        "accepted attempts",
    )
    .await?;
    let fanout_secs = started.elapsed().as_secs_f64();
    let fanout_rate = n as f64 / fanout_secs;
    let accepted = sim.stats();
    println!(
        "  {n} accepted by the carrier in {fanout_secs:.1} s (simulator accepted {})",
        accepted.accepted
    );

    // Release the callbacks: until every DELIVERED event is signalled.
    println!("SMS: releasing {n} delivery callbacks...");
    let released_at: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now()").fetch_one(pool).await?;
    let started = Instant::now();
    sim.resume_callbacks();
    wait_for(
        pool,
        "SELECT count(*) FROM delivery_events WHERE status = 'DELIVERED' AND signal_state = 'SIGNALLED'",
        expected,
        "DELIVERED events signalled",
    )
    .await?;
    let signal_secs = started.elapsed().as_secs_f64();
    let signal_rate = n as f64 / signal_secs;
    println!("  {n} signalled in {signal_secs:.1} s");
    // Where the time went: the carrier's callbacks reaching Postgres through the webhook, then
    // the dispatcher's signals (stored -> signalled).
    let (stored_s, signalled_s, wait_p50, wait_p99): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM (max(received_at) - $1))::float8,
                EXTRACT(EPOCH FROM (max(signalled_at) - $1))::float8,
                (percentile_disc(0.5) WITHIN GROUP (ORDER BY
                    EXTRACT(EPOCH FROM (signalled_at - received_at)) * 1000))::float8,
                (percentile_disc(0.99) WITHIN GROUP (ORDER BY
                    EXTRACT(EPOCH FROM (signalled_at - received_at)) * 1000))::float8
           FROM delivery_events WHERE status = 'DELIVERED' AND signal_state = 'SIGNALLED'",
    )
    .bind(released_at)
    .fetch_one(pool)
    .await?;
    println!(
        "  last callback stored {stored_s:.1} s after the release, last signal {signalled_s:.1} s; \
         stored -> signalled p50 {wait_p50:.0} ms, p99 {wait_p99:.0} ms"
    );
    wait_for(
        pool,
        "SELECT count(*) FROM notifications WHERE status = 'DELIVERED' AND finished_at IS NOT NULL",
        expected,
        "notifications DELIVERED",
    )
    .await?;
    println!(
        "  {n} notifications DELIVERED {:.1} s after the release",
        started.elapsed().as_secs_f64()
    );
    let (p99, joined): (Option<f64>, i64) = sqlx::query_as(
        "SELECT percentile_disc(0.99) WITHIN GROUP (
                    ORDER BY (EXTRACT(EPOCH FROM (n.finished_at - e.received_at)) * 1000)::float8),
                count(*)
           FROM notifications n
           JOIN delivery_events e ON e.workflow_id = n.workflow_id AND e.status = 'DELIVERED'
          WHERE n.month = $1 AND n.status = 'DELIVERED'",
    )
    .bind(month.first_day().as_naive())
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        joined == expected,
        "{joined} delivered notifications with their event"
    );
    let callback_p99_ms = p99.context("no callback latency")?;

    // One delivered workflow's history.
    let first: String = sqlx::query_scalar(
        "SELECT workflow_id FROM notifications WHERE month = $1 ORDER BY customer_id LIMIT 1",
    )
    .bind(month.first_day().as_naive())
    .fetch_one(pool)
    .await?;
    let events = client
        .get_workflow_handle::<SmsNotificationWorkflow>(first.clone())
        .fetch_history(WorkflowFetchHistoryOptions::builder().build())
        .into_events()
        .await
        .with_context(|| format!("history of {first}"))?;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| {
            EventType::try_from(e.event_type)
                .map(|t| t.as_str_name())
                .unwrap_or("?")
                .trim_start_matches("EVENT_TYPE_")
        })
        .collect();
    println!(
        "  history of {first}: {} events: {}",
        events.len(),
        kinds.join(", ")
    );
    Ok(SmsFigures {
        fanout_rate,
        history_events: events.len(),
        signal_rate,
        callback_p99_ms,
    })
}

/// Polls `count_sql` (one bigint) until it reaches `expected`; fails after a generous deadline.
async fn wait_for(
    pool: &PgPool,
    count_sql: &'static str,
    expected: i64,
    what: &str,
) -> anyhow::Result<()> {
    let limit = Duration::from_secs(120 + u64::try_from(expected).unwrap_or(0) / 5);
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let count: i64 = sqlx::query_scalar(count_sql).fetch_one(pool).await?;
        if count >= expected {
            anyhow::ensure!(count == expected, "{count} {what}, expected {expected}");
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "timed out after {:.0} s: {count} of {expected} {what}",
            limit.as_secs_f64()
        );
        if last_report.elapsed() > Duration::from_secs(15) {
            println!("  ... {count} of {expected} {what}");
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Acknowledgements per second and p99 latency of `total` distinct signed callbacks.
async fn webhook_ack(admin_url: &str, total: usize) -> anyhow::Result<(f64, f64)> {
    let (pool, _) = fresh_database(admin_url, "pcn_bench_webhook").await?;
    let secret = b"bench-webhook-secret".to_vec();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = pcn_worker::webhook::serve(
        listener,
        WebhookConfig {
            generic_secret: secret.clone(),
            twilio_auth_token: b"unused".to_vec(),
            public_base_url: format!("http://{addr}"),
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        },
        pool.clone(),
        Dispatcher::disabled(),
    )?;
    // Bodies and signatures are prepared before the clock starts.
    let requests: Arc<Vec<(String, String)>> = Arc::new(
        (0..total)
            .map(|i| {
                let body = serde_json::json!({
                    "trackingId": format!("bench-{i:08}"),
                    "messageId": format!("sms/2024-01/C{i:010}#1"),
                    "status": "DELIVERED",
                    "deliveryTimestamp": "2024-01-07T10:00:00Z",
                    "phoneNumber": format!("+9725{i:08}"),
                    "statusCode": null,
                })
                .to_string();
                let signature =
                    pcn_activities::carrier::signature::generic_signature(&secret, body.as_bytes());
                (body, signature)
            })
            .collect(),
    );
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(SIGNAL_CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("http://{addr}/webhooks/sms-delivery");
    let next = Arc::new(AtomicUsize::new(0));
    println!("webhook: {total} signed callbacks from {SIGNAL_CONCURRENCY} clients...");
    let started = Instant::now();
    let tasks: Vec<_> = (0..SIGNAL_CONCURRENCY)
        .map(|_| {
            let (http, url, requests, next) = (
                http.clone(),
                url.clone(),
                Arc::clone(&requests),
                Arc::clone(&next),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, signature)) = requests.get(i) else {
                        return Ok::<_, anyhow::Error>(latencies);
                    };
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-carrier-signature", signature)
                        .body(body.clone())
                        .send()
                        .await?;
                    let status = response.status();
                    let text = response.text().await?;
                    latencies.push(sent.elapsed());
                    anyhow::ensure!(
                        status.is_success() && text == "stored",
                        "callback {i}: {status} {text}"
                    );
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let secs = started.elapsed().as_secs_f64();
    server.abort();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM delivery_events")
        .fetch_one(&pool)
        .await?;
    println!("  {total} acknowledged in {secs:.2} s; {stored} rows in delivery_events");
    anyhow::ensure!(
        stored == i64::try_from(total)?,
        "{stored} callbacks stored of {total} acknowledged"
    );
    pool.close().await;
    latencies.sort_unstable();
    let p99 = latencies
        .get((latencies.len() * 99).div_ceil(100).saturating_sub(1))
        .context("no latencies")?;
    let p50 = latencies[latencies.len() / 2];
    println!(
        "  latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    );
    Ok((total as f64 / secs, p99.as_secs_f64() * 1000.0))
}
