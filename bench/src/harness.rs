//! What the benchmarks share: a Temporal dev server of their own, running a worker beside a
//! measurement, the carrier simulator with our webhook in front of a database, the worker's
//! activities as `pcn-worker run` assembles them, a fresh database, a process's peak memory.

use std::fs::File;
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use pcn_activities::bank::{BankAuth, BankConfig, Secret};
use pcn_activities::breaker::BreakerSettings;
use pcn_activities::carrier::{CarrierConfig, CarrierKind, GenericConfig};
use pcn_activities::fanout::FanoutDeps;
use pcn_activities::gateway::GatewaySettings;
use pcn_activities::metrics::Metrics;
use pcn_activities::setup::{ActivitySetup, SmsSetup};
use pcn_activities::sweep::SweepSettings;
use pcn_activities::{PcnActivities, db};
use pcn_worker::dispatch::{self, ClientSlot, DispatchSettings};
use pcn_worker::webhook::WebhookConfig;
use pcn_workflows::message::TemplateLimits;
use sqlx::PgPool;
use temporalio_client::Client;
use temporalio_sdk::Worker;

/// A Temporal dev server of the bench (killed on drop): file-backed SQLite at
/// `target/bench/<name>.db` with the WAL pragmas and our search attributes, its log at
/// `target/bench/<name>-devserver.log`. The SMS and API benchmarks each start their own.
pub(crate) struct DevServer {
    child: Child,
    address: String,
    log_path: String,
}

impl DevServer {
    pub(crate) fn start(bin: &str, port: u16, name: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all("target/bench")?;
        let db_file = format!("target/bench/{name}.db");
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let path = format!("{db_file}{suffix}");
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {path}")),
            }
        }
        let log_path = format!("target/bench/{name}-devserver.log");
        let log = File::create(&log_path)?;
        let mut command = Command::new(bin);
        command
            .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
            .args(["--port", &port.to_string()])
            .args(["--http-port", &(port + 10).to_string()])
            .args(["--metrics-port", &(port + 11).to_string()])
            .args(["--db-filename", &db_file])
            .args(["--sqlite-pragma", "journal_mode=wal"])
            .args(["--sqlite-pragma", "synchronous=normal"])
            .args(["--log-level", "error"]);
        for (name, kind) in pcn_workflows::search::ALL {
            command.args(["--search-attribute", &format!("{name}={kind}")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("starting the Temporal dev server {bin} (run `make tools`)")
            })?;
        Ok(Self {
            child,
            address: format!("127.0.0.1:{port}"),
            log_path,
        })
    }

    /// A client once the server answers (up to 60 s).
    pub(crate) async fn client(&mut self) -> anyhow::Result<Client> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the Temporal dev server exited ({status}); see {}",
                    self.log_path
                );
            }
            if let Ok(client) = pcn_worker::temporal::connect(
                &self.address,
                "default",
                &pcn_worker::codec::PayloadEncryption::development(),
            )
            .await
            {
                // Connected is not ready: wait until the namespace answers a list call.
                if client
                    .count_workflows("WorkflowType = 'BenchEmpty'", Default::default())
                    .await
                    .is_ok()
                {
                    return Ok(client);
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the Temporal dev server on {} did not come up in 60 s",
                self.address
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `worker` (not `Send`: polled here) while `body` runs as a task; then shuts it down.
pub(crate) async fn with_worker<T: Send + 'static>(
    mut worker: Worker,
    body: impl Future<Output = anyhow::Result<T>> + Send + 'static,
) -> anyhow::Result<T> {
    let shutdown = worker.shutdown_handle();
    let task = tokio::spawn(body);
    tokio::pin!(task);
    let run = worker.run();
    tokio::pin!(run);
    tokio::select! {
        result = &mut run => {
            task.abort();
            result.context("worker")?;
            anyhow::bail!("the worker stopped before the benchmark ended")
        }
        joined = &mut task => {
            shutdown();
            run.await.context("worker shutdown")?;
            joined.context("benchmark task")?
        }
    }
}

/// The carrier simulator (`config`), our webhook and its dispatcher in front of `pool`, and the
/// worker's carrier settings for them.
pub(crate) async fn carrier_stack(
    pool: &PgPool,
    client: &Client,
    config: pcn_carrier_sim::SimConfig,
) -> anyhow::Result<(
    pcn_carrier_sim::SimHandle,
    pcn_worker::webhook::WebhookServer,
    CarrierConfig,
)> {
    let sim = pcn_carrier_sim::spawn(config, "127.0.0.1:0".parse()?).await?;
    let sim_config = sim.config();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let public = format!("http://{}", listener.local_addr()?);
    let dispatcher = dispatch::spawn(
        pool.clone(),
        ClientSlot::connected(client.clone()),
        DispatchSettings::default(),
    );
    let webhook = pcn_worker::webhook::serve(
        listener,
        WebhookConfig {
            generic_secret: sim_config.webhook_secret.as_bytes().to_vec(),
            twilio_auth_token: sim_config.twilio_auth_token.as_bytes().to_vec(),
            public_base_url: public.clone(),
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        },
        pool.clone(),
        dispatcher,
    )?;
    let carrier = CarrierConfig {
        kind: CarrierKind::Generic,
        generic: GenericConfig {
            base_url: url::Url::parse(&sim.base_url())?,
            api_key: Secret::new(sim_config.generic_api_key.clone()),
            callback_url: url::Url::parse(&public)?.join("/webhooks/sms-delivery")?,
            timeout: Duration::from_secs(10),
            ..GenericConfig::default()
        },
        ..CarrierConfig::default()
    };
    Ok((sim, webhook, carrier))
}

/// The worker's activities as `pcn-worker run` assembles them, against the bank at `bank_url`
/// and `carrier`.
pub(crate) fn bench_activities(
    pool: PgPool,
    bank_url: &str,
    carrier: &CarrierConfig,
    fanout: &FanoutDeps,
) -> anyhow::Result<PcnActivities> {
    let templates = pcn_activities::templates::load_dir(
        std::path::Path::new("templates/sms"),
        TemplateLimits::default(),
    )
    .context("loading templates/sms (run the bench from the repository root)")?;
    ActivitySetup {
        pool,
        bank: BankConfig {
            base_url: bank_url.to_owned(),
            auth: BankAuth::ApiKey(Secret::new("dev-bank-key")),
            server_ca: None,
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(100),
            max_connections: 64,
        },
        // `pcn-worker run`'s defaults (PCN_SWEEP_PAGE_SIZE, PCN_SWEEP_CONCURRENCY).
        sweep: SweepSettings {
            page_size: 1_000,
            concurrency: 64,
        },
        metrics: Metrics::new(),
        sms: Some(SmsSetup {
            carrier: carrier.clone(),
            templates,
            gateway: GatewaySettings::default(),
            breaker: BreakerSettings::default(),
            client: fanout.client.clone(),
            fanout_concurrency: fanout.concurrency,
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        }),
        // The bench measures months, not mail: nothing is queued.
        report_recipients: Vec::new(),
    }
    .build()
}

/// Peak resident set of process `pid` in KiB (`VmHWM` of `/proc/<pid>/status`).
pub(crate) fn vm_hwm_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/<pid>/status")
}

/// Drops and recreates database `name` (a constant of this module) and migrates it.
pub(crate) async fn fresh_database(
    admin_url: &str,
    name: &'static str,
) -> anyhow::Result<(PgPool, String)> {
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
    db::migrate(&pool).await?;
    Ok((pool, url))
}

/// Waits until `counter` reaches `target` (polled every 20 ms; bound: 60 s + 1 s per 5), or fails
/// naming `what` and how far it got.
pub(crate) async fn wait_count(
    counter: &std::sync::atomic::AtomicU64,
    target: u64,
    what: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60 + target / 5);
    loop {
        let done = counter.load(std::sync::atomic::Ordering::Relaxed);
        if done >= target {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "only {done} of {target} {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
