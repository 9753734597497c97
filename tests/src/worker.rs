//! The worker under test: [`InProcessWorker`] (the real worker on its own thread and runtime)
//! and [`WorkerProcess`] (the real `pcn-worker` binary, for kill -9).

use super::*;

/// Where the worker's SMS carrier comes from.
pub enum CarrierSetup {
    /// A carrier simulator and webhook of the worker's own (generic API, every message
    /// delivered): for tests about something else that still run a month to its end.
    Embedded,
    /// A carrier the test runs (see [`TestCarrier`]).
    External(Box<CarrierConfig>),
}

/// The real worker, in this process, on its own thread and Tokio runtime.
pub struct InProcessWorker {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessWorker {
    /// Starts a worker on `task_queue` against `temporal_address`, `database_url` and the bank.
    pub fn start(
        temporal_address: String,
        task_queue: String,
        database_url: String,
        bank: BankConfig,
        carrier: CarrierSetup,
    ) -> Self {
        Self::start_with_gateway(
            temporal_address,
            task_queue,
            database_url,
            bank,
            carrier,
            GatewaySettings::default(),
        )
    }

    /// Like [`Self::start`], with the submission gateway's settings.
    pub fn start_with_gateway(
        temporal_address: String,
        task_queue: String,
        database_url: String,
        bank: BankConfig,
        carrier: CarrierSetup,
        gateway: GatewaySettings,
    ) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("worker runtime");
            rt.block_on(async move {
                let runtime = temporalio_sdk::Runtime::from_current_tokio(Default::default())
                    .expect("sdk runtime");
                let client = pcn_worker::temporal::connect_patiently(
                    &temporal_address,
                    "default",
                    &payload_codec(),
                    Duration::from_secs(120),
                )
                .await
                .expect("worker client");
                let pool = db::connect(&database_url, 16).await.expect("worker pool");
                // Kept alive for the worker's lifetime.
                let mut _embedded = None;
                let carrier = match carrier {
                    CarrierSetup::External(config) => *config,
                    CarrierSetup::Embedded => {
                        let stack = TestCarrier::start(
                            &pool,
                            &temporal_address,
                            CarrierKind::Generic,
                            pcn_carrier_sim::SimConfig {
                                callback_delay: Duration::from_millis(50),
                                ..Default::default()
                            },
                        )
                        .await;
                        let config = stack.carrier_config();
                        _embedded = Some(stack);
                        config
                    }
                };
                let activities = ActivitySetup {
                    pool,
                    bank,
                    sweep: SweepSettings {
                        page_size: 500,
                        concurrency: 32,
                    },
                    metrics: Metrics::new(),
                    sms: Some(SmsSetup {
                        carrier,
                        templates: test_templates(),
                        gateway,
                        breaker: TEST_BREAKER,
                        client: client.clone(),
                        fanout_concurrency: 32,
                        phones: pcn_activities::phone_vault::PhoneVault::development(),
                    }),
                    // In-process workers run no mailer: the report-mail tests run the real binary.
                    report_recipients: Vec::new(),
                }
                .build()
                .expect("the worker's activities");
                let mut worker =
                    pcn_worker::temporal::build_worker(&runtime, client, &task_queue, activities)
                        .expect("worker");
                let shutdown = worker.shutdown_handle();
                let _ = ready_tx.send(());
                let run = worker.run();
                tokio::pin!(run);
                tokio::select! {
                    result = &mut run => result.expect("worker run"),
                    _ = stopped => {
                        shutdown();
                        let _ = run.await;
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("worker started");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The usual test worker: the `make test` dev server, `db`, and `sim` with test bank settings.
    /// Its SMS go to a carrier simulator of its own that delivers everything.
    pub fn for_test(task_queue: &str, db: &TestDb, sim: &pcn_bank_sim::SimHandle) -> Self {
        Self::start(
            temporal_address(),
            task_queue.to_owned(),
            db.url.clone(),
            test_bank_config(&sim.base_url()),
            CarrierSetup::Embedded,
        )
    }

    /// Like [`Self::for_test`], with the test's own carrier.
    pub fn with_carrier(
        task_queue: &str,
        db: &TestDb,
        sim: &pcn_bank_sim::SimHandle,
        carrier: &TestCarrier,
    ) -> Self {
        Self::start(
            temporal_address(),
            task_queue.to_owned(),
            db.url.clone(),
            test_bank_config(&sim.base_url()),
            CarrierSetup::External(Box::new(carrier.carrier_config())),
        )
    }

    /// The usual test worker on `db` and the bank `sim`, submitting through `carrier` with the
    /// submission gateway's `gateway` settings.
    pub fn with_gateway(
        task_queue: &str,
        db: &TestDb,
        sim: &pcn_bank_sim::SimHandle,
        carrier: CarrierConfig,
        gateway: GatewaySettings,
    ) -> Self {
        Self::start_with_gateway(
            temporal_address(),
            task_queue.to_owned(),
            db.url.clone(),
            test_bank_config(&sim.base_url()),
            CarrierSetup::External(Box::new(carrier)),
            gateway,
        )
    }

    /// Stops the worker and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcessWorker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Path of a workspace binary built by `cargo build` (`make test` builds them first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: `make test` builds it (cargo build --bins)",
        path.display()
    );
    path
}

/// The real `pcn-worker` binary as a child process.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// Starts `pcn-worker run` with the given settings; SMS go to `carrier`.
    pub fn start(
        task_queue: &str,
        database_url: &str,
        bank_url: &str,
        concurrency: usize,
        carrier: &TestCarrier,
    ) -> Self {
        Self::start_with(
            task_queue,
            database_url,
            bank_url,
            concurrency,
            carrier,
            &[],
        )
    }

    /// Like [`Self::start`], with extra environment (e.g. `PCN_FAILPOINT`).
    pub fn start_with(
        task_queue: &str,
        database_url: &str,
        bank_url: &str,
        concurrency: usize,
        carrier: &TestCarrier,
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(
            task_queue,
            database_url,
            bank_url,
            concurrency,
            carrier,
            env,
            Stdio::null(),
        )
    }

    /// Like [`Self::start_with`], writing the worker's log as JSON lines to `log` (WARN and up),
    /// for tests of what the log says.
    pub fn start_logged(
        task_queue: &str,
        database_url: &str,
        bank_url: &str,
        concurrency: usize,
        carrier: &TestCarrier,
        env: &[(&str, &str)],
        log: &std::path::Path,
    ) -> Self {
        let file = std::fs::File::create(log).expect("worker log file");
        let mut env = env.to_vec();
        env.push(("PCN_LOG_FORMAT", "json"));
        Self::spawn(
            task_queue,
            database_url,
            bank_url,
            concurrency,
            carrier,
            &env,
            Stdio::from(file),
        )
    }

    fn spawn(
        task_queue: &str,
        database_url: &str,
        bank_url: &str,
        concurrency: usize,
        carrier: &TestCarrier,
        env: &[(&str, &str)],
        log: Stdio,
    ) -> Self {
        let child = Command::new(workspace_binary("pcn-worker"))
            .arg("run")
            .env("PCN_CARRIER", carrier.kind.as_str())
            .env("PCN_CARRIER_URL", carrier.sim.base_url())
            .env(
                "PCN_TWILIO_ACCOUNT_SID",
                carrier.sim.config().twilio_account_sid,
            )
            .env("PCN_WEBHOOK_PUBLIC_URL", carrier.webhook_url())
            .env("PCN_SMS_TEMPLATES", templates_dir())
            .env("PCN_FANOUT_CONCURRENCY", "16")
            .env("PCN_DATABASE_URL", database_url)
            .env("PCN_TEMPORAL_ADDRESS", temporal_address())
            .env("PCN_TASK_QUEUE", task_queue)
            .env("PCN_BANK_URL", bank_url)
            .env("PCN_BANK_BACKOFF_MS", "50")
            .env("PCN_BANK_TIMEOUT_SECS", "2")
            .env("PCN_SWEEP_PAGE_SIZE", "100")
            .env("PCN_SWEEP_CONCURRENCY", concurrency.to_string())
            .env("PCN_HTTP_BIND", "127.0.0.1:0")
            .env("PCN_SDK_METRICS_BIND", "")
            .env("RUST_LOG", "warn")
            .env("PCN_PROFILE", "development")
            .envs(env.iter().copied())
            // The log goes to stdout (tracing's default writer).
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pcn-worker");
        Self { child }
    }

    /// kill -9.
    pub fn kill_9(mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Waits until the process ended by itself (an armed crash point aborted it); panics after
    /// `timeout` with `what` it was waiting for.
    pub async fn wait_exit(mut self, timeout: Duration, what: &str) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("worker status") {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the worker did not stop within {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
