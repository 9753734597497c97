//! Shared helpers of the system tests: a fresh Postgres database per test, the bank simulator on
//! port 0, an in-process or out-of-process worker, and the Temporal dev server that `make test`
//! starts (`PCN_TEST_TEMPORAL_ADDRESS`).
//!
//! # Layout
//!
//! - [`TestDb`]: `CREATE DATABASE pcn_test_<uuid>`, set up as `pcn-worker setup` does (roles,
//!   migrations as the owner, grants); the tests run as the application role.
//! - [`InProcessWorker`]: the real worker on its own thread and runtime (the SDK's `Worker::run`
//!   is not `Send`); [`WorkerProcess`]: the real `pcn-worker` binary, for kill -9 (`worker.rs`).
//! - [`TestApi`]: the control API in process, a token per role, and [`pcnctl`] (`api.rs`).
//! - [`customers_for`]: customers matching the simulator's accounts.
//! - [`time_skipping`]: the time-skipping test server, with a startup wait that holds under load.
//! - [`dev_server`]: a file-backed Temporal dev server of a test's own, to kill -9 and restart.
//! - [`smtp`]: a real SMTP server on loopback (and a MIME reader) for the report's emails.
//! - [`history_dump`]: a history the worker could not replay, saved and listed event by event.
//!
//! Everything is re-exported at the crate root: tests import `pcn_tests::X` whatever file holds it.

mod api;
pub mod dev_server;
pub mod history_dump;
pub mod smtp;
pub mod time_skipping;
mod worker;

pub use api::*;
pub use worker::*;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::NaiveDate;
use pcn_activities::bank::{BankAuth, BankConfig, Secret};
use pcn_activities::carrier::{CarrierConfig, CarrierKind, GenericConfig, TwilioConfig};
use pcn_activities::db;
use pcn_activities::gateway::GatewaySettings;
use pcn_activities::metrics::Metrics;
use pcn_activities::setup::{ActivitySetup, SmsSetup};
use pcn_activities::sweep::SweepSettings;
use pcn_worker::dispatch::{self, ClientSlot, DispatchSettings};
use pcn_worker::webhook::{WebhookConfig, WebhookServer};
use pcn_workflows::customer::{Customer, FirstName};
use pcn_workflows::domain::{AccountId, BusinessDate, CustomerId, Language, Phone, YearMonth};
use pcn_workflows::message::{TemplateLimits, TemplateSet};
use pcn_workflows::month::{MonthPhase, MonthProgress, MonthSettings};
use pcn_workflows::sms::SmsSettings;
use pcn_workflows::window::SendWindow;
use sqlx::PgPool;
use temporalio_client::Client;

/// Superuser connection used to create test databases.
pub const ADMIN_DB: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The application role the whole suite runs as (created by the first test's setup; roles are
/// cluster-wide, so every test database shares it): the grants of `activities/src/grants.sql`
/// must be enough for everything the code does.
pub const APP_ROLE: &str = "pcn_app";

/// The owner role of every test database's schema.
pub const OWNER_ROLE: &str = "pcn_owner";

/// The roles `pcn-worker setup` uses by default, as the tests set them up.
pub fn test_roles() -> pcn_activities::roles::Roles {
    pcn_activities::roles::Roles {
        owner: pcn_activities::roles::RoleName::parse(OWNER_ROLE).expect("owner role name"),
        app: pcn_activities::roles::RoleName::parse(APP_ROLE).expect("application role name"),
        app_password: None,
    }
}

/// Installs the ring TLS provider once (reqwest is built without a default one).
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _ = pcn_worker::telemetry::init("pretty");
}

/// The Temporal dev server of this test run.
pub fn temporal_address() -> String {
    std::env::var("PCN_TEST_TEMPORAL_ADDRESS").unwrap_or_else(|_| {
        panic!(
            "PCN_TEST_TEMPORAL_ADDRESS is not set: run the suite with `make test`, which starts \
             a Temporal dev server and points the tests at it"
        )
    })
}

/// The payload codec of every client and worker of the suite: the development keyring, as the
/// `pcn-worker` processes the tests start use it (`PCN_PROFILE=development`).
pub fn payload_codec() -> pcn_worker::codec::PayloadEncryption {
    pcn_worker::codec::PayloadEncryption::development()
}

/// A Temporal client on the dev server, tried again for up to 120 s: on a loaded 2-core machine
/// the server can be slow to answer a new connection.
pub async fn temporal_client() -> Client {
    pcn_worker::temporal::connect_patiently(
        &temporal_address(),
        "default",
        &payload_codec(),
        std::time::Duration::from_secs(120),
    )
    .await
    .expect("connect to the Temporal dev server")
}

/// A unique task queue, so tests sharing the dev server never steal each other's tasks.
pub fn unique_task_queue(name: &str) -> String {
    format!("pcn-test-{name}-{}", uuid::Uuid::new_v4().simple())
}

/// A fresh database with the schema applied, set up as `pcn-worker setup` does it.
pub struct TestDb {
    /// Its URL as the application role: what the worker, webhook, control API and activities
    /// (in process or as `pcn-worker` child processes) connect with.
    pub url: String,
    /// A pool on it as the application role.
    pub pool: PgPool,
    /// A superuser pool on it: only for tests that inspect or tamper with data beyond what the
    /// application may, or show that a trigger holds even for a superuser.
    pub admin: PgPool,
}

impl TestDb {
    /// Creates `pcn_test_<uuid>` and sets it up (roles, migrations as the owner, grants).
    pub async fn new() -> Self {
        let name = format!("pcn_test_{}", uuid::Uuid::new_v4().simple());
        let admin = db::connect(ADMIN_DB, 1).await.expect("admin connection");
        // The name is generated here from a UUID: no outside input reaches this statement.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let admin_url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        pcn_activities::roles::setup(&admin_url, &test_roles())
            .await
            .expect("setup of the test database");
        let url = format!("postgres://{APP_ROLE}@127.0.0.1:5432/{name}");
        let pool = db::connect(&url, 16).await.expect("test database");
        let admin = db::connect(&admin_url, 2)
            .await
            .expect("test database, superuser");
        Self { url, pool, admin }
    }
}

impl TestDb {
    /// A fresh database holding customers `0..n` of the simulator's population.
    pub async fn with_customers(n: u64) -> Self {
        let db = Self::new().await;
        pcn_activities::customers::upsert(
            &db.pool,
            &pcn_activities::phone_vault::PhoneVault::development(),
            &customers_for(n),
            "test",
        )
        .await
        .expect("seed customers");
        db
    }
}

/// The bank simulator on a free port with `accounts` accounts, `seed` and `faults`.
pub async fn spawn_sim(
    accounts: u64,
    seed: u64,
    faults: pcn_bank_sim::Faults,
) -> pcn_bank_sim::SimHandle {
    pcn_bank_sim::spawn(
        pcn_bank_sim::SimConfig {
            seed,
            accounts,
            faults,
            ..pcn_bank_sim::SimConfig::default()
        },
        "127.0.0.1:0".parse().expect("loopback address"),
    )
    .await
    .expect("bank simulator")
}

/// Customer `i` of the simulator's population, monitored since `since`.
pub fn customer(i: u64, since: NaiveDate) -> Customer {
    Customer {
        customer_id: CustomerId::parse(&pcn_bank_sim::customer_id(i)).unwrap(),
        account_id: AccountId::parse(&pcn_bank_sim::account_id(i)).unwrap(),
        first_name: FirstName::parse("Dana").unwrap(),
        phone: Phone::parse(&format!("+9725{:08}", i)).unwrap(),
        language: Language::Hebrew,
        opted_out: None,
        active: true,
        monitored_since: BusinessDate::from_naive(since).unwrap(),
    }
}

/// Customers `0..n`, all monitored since 2020.
pub fn customers_for(n: u64) -> Vec<Customer> {
    let since = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    (0..n).map(|i| customer(i, since)).collect()
}

/// Bank client settings for tests: short timeout and backoff.
pub fn test_bank_config(base_url: &str) -> BankConfig {
    BankConfig {
        base_url: base_url.to_owned(),
        auth: BankAuth::ApiKey(Secret::new("dev-bank-key")),
        server_ca: None,
        timeout: Duration::from_secs(2),
        attempts: 3,
        backoff: Duration::from_millis(50),
        max_connections: 32,
    }
}

/// Month settings for tests: defaults, with a short heartbeat timeout so a lost sweep is retried
/// quickly, notification counts re-read every second, and the SMS settings of [`test_sms_settings`].
pub fn test_month_settings() -> MonthSettings {
    MonthSettings {
        sweep_heartbeat_timeout_secs: 5,
        notification_poll_secs: 1,
        sms: test_sms_settings(),
        ..MonthSettings::default()
    }
}

/// Reconciliation period of an SMS attempt in doubt in tests: far above the simulator's callback
/// delays (well under a second), far below the production default (10 min), so a submission
/// that timed out on a loaded machine is resolved within the test's time.
pub const TEST_RECONCILE_SECS: u64 = 8;

/// SMS settings for tests: the send window always open (the suite runs at any hour; the window
/// itself is tested on the time-skipping server) and a short reconciliation period.
pub fn test_sms_settings() -> SmsSettings {
    SmsSettings {
        window: SendWindow::unrestricted(),
        reconcile_secs: TEST_RECONCILE_SECS,
        ..SmsSettings::default()
    }
}

/// The shipped SMS templates (`templates/sms`).
pub fn templates_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../templates/sms"))
}

/// The shipped SMS templates, loaded with the default limits.
pub fn test_templates() -> TemplateSet {
    pcn_activities::templates::load_dir(&templates_dir(), TemplateLimits::default())
        .expect("shipped templates load")
}

/// The carrier simulator and our webhook in front of Postgres, wired to each other: the carrier
/// side of a test.
pub struct TestCarrier {
    /// The carrier simulator.
    pub sim: pcn_carrier_sim::SimHandle,
    /// Our webhook (batch ingest, dispatcher, reconciler).
    pub webhook: WebhookServer,
    /// Which API the worker submits through.
    pub kind: CarrierKind,
}

impl TestCarrier {
    /// Starts the webhook on `pool` (signalling through `temporal_address`) and the simulator
    /// calling it back, with `config` for the simulator (its URLs are filled in here).
    pub async fn start(
        pool: &PgPool,
        temporal_address: &str,
        kind: CarrierKind,
        config: pcn_carrier_sim::SimConfig,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("webhook port");
        let public = format!("http://{}", listener.local_addr().expect("webhook addr"));
        let sim_defaults = pcn_carrier_sim::SimConfig::default();
        let webhook_config = WebhookConfig {
            generic_secret: sim_defaults.webhook_secret.as_bytes().to_vec(),
            twilio_auth_token: sim_defaults.twilio_auth_token.as_bytes().to_vec(),
            public_base_url: public.clone(),
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        };
        let dispatcher = dispatch::spawn(
            pool.clone(),
            ClientSlot::new(temporal_address, "default", &payload_codec()),
            DispatchSettings {
                reconcile_every: Duration::from_millis(500),
                reconcile_grace: Duration::from_secs(2),
                ..DispatchSettings::default()
            },
        );
        let webhook =
            pcn_worker::webhook::serve(listener, webhook_config, pool.clone(), dispatcher)
                .expect("webhook");
        let sim = pcn_carrier_sim::spawn(
            pcn_carrier_sim::SimConfig {
                inbound_generic_url: Some(format!("{public}/webhooks/sms-inbound")),
                inbound_twilio_url: Some(format!("{public}/webhooks/twilio/inbound")),
                ..config
            },
            "127.0.0.1:0".parse().expect("loopback address"),
        )
        .await
        .expect("carrier simulator");
        Self { sim, webhook, kind }
    }

    /// The worker's carrier configuration pointing at this simulator and webhook.
    pub fn carrier_config(&self) -> CarrierConfig {
        carrier_config(
            self.kind,
            &self.sim,
            &format!("http://{}", self.webhook.addr),
        )
    }

    /// The webhook's base URL.
    pub fn webhook_url(&self) -> String {
        format!("http://{}", self.webhook.addr)
    }
}

/// The usual bench of an SMS test: `n` customers in a fresh database, the bank simulator for
/// them, and a carrier simulator of `kind` with its webhook, on the suite's dev server.
pub struct SmsBench {
    /// The test's database.
    pub db: TestDb,
    /// The bank simulator.
    pub bank: pcn_bank_sim::SimHandle,
    /// The carrier simulator and webhook.
    pub carrier: TestCarrier,
}

impl SmsBench {
    /// Starts the three (customers `0..n`, bank seed 1, no bank faults).
    pub async fn start(n: u64, kind: CarrierKind, config: pcn_carrier_sim::SimConfig) -> Self {
        let db = TestDb::with_customers(n).await;
        let bank = spawn_sim(n, 1, Default::default()).await;
        let carrier = TestCarrier::start(&db.pool, &temporal_address(), kind, config).await;
        Self { db, bank, carrier }
    }
}

/// The test workers' circuit breakers: open after 3 failed requests in a row, probe after 2 s.
pub const TEST_BREAKER: pcn_activities::breaker::BreakerSettings =
    pcn_activities::breaker::BreakerSettings {
        failures: 3,
        open_for: Duration::from_secs(2),
    };

/// The configuration of `primary` with `secondary` (the other adapter) to fail over to.
pub fn failover_config(primary: &TestCarrier, secondary: &TestCarrier) -> CarrierConfig {
    assert_ne!(primary.kind, secondary.kind, "failover needs both adapters");
    let first = primary.carrier_config();
    let second = secondary.carrier_config();
    let (generic, twilio) = match primary.kind {
        CarrierKind::Generic => (first.generic, second.twilio),
        CarrierKind::Twilio => (second.generic, first.twilio),
    };
    CarrierConfig {
        kind: primary.kind,
        secondary: Some(secondary.kind),
        generic,
        twilio,
    }
}

/// A carrier configuration for `sim` with callbacks to `webhook_base`.
pub fn carrier_config(
    kind: CarrierKind,
    sim: &pcn_carrier_sim::SimHandle,
    webhook_base: &str,
) -> CarrierConfig {
    let config = sim.config();
    let base = url::Url::parse(&sim.base_url()).expect("sim URL");
    let public = url::Url::parse(webhook_base).expect("webhook URL");
    CarrierConfig {
        kind,
        secondary: None,
        generic: GenericConfig {
            base_url: base.clone(),
            api_key: Secret::new(config.generic_api_key.clone()),
            callback_url: public.join("/webhooks/sms-delivery").expect("url"),
            timeout: Duration::from_secs(10),
            ..GenericConfig::default()
        },
        twilio: TwilioConfig {
            base_url: base,
            account_sid: config.twilio_account_sid.clone(),
            auth_token: Secret::new(config.twilio_auth_token.clone()),
            status_callback_base: public.join("/webhooks/twilio/status").expect("url"),
            timeout: Duration::from_secs(10),
            ..TwilioConfig::default()
        },
    }
}

/// Polls the month's `progress` query until `done` holds (or panics after `timeout`).
pub async fn wait_for_month(
    client: &Client,
    month: YearMonth,
    timeout: Duration,
    done: impl Fn(&MonthProgress) -> bool,
) -> MonthProgress {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match pcn_worker::months::progress(client, month).await {
            Ok(progress) => {
                if done(&progress) {
                    return progress;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {month}; last progress: {progress:?}"
                );
            }
            Err(err) => {
                // A history the worker cannot replay never answers: keep it and stop now.
                let text = format!("{err:#}");
                if text.contains("TMPRL1100") {
                    let id = pcn_workflows::month::workflow_id(month);
                    let saved = history_dump::save(client, &id).await;
                    panic!("{month}: the worker could not replay the run ({text}); {saved}");
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {month}: no progress answer ({text})"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the month's run is COMPLETED.
pub async fn wait_completed(client: &Client, month: YearMonth, timeout: Duration) -> MonthProgress {
    wait_for_month(client, month, timeout, |p| p.phase == MonthPhase::Completed).await
}

/// The customers decided as qualified for `month`, sorted.
pub async fn qualified_in_db(pool: &PgPool, month: YearMonth) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT customer_id FROM qualifications WHERE month = $1 AND qualified ORDER BY customer_id",
    )
    .bind(month.first_day().as_naive())
    .fetch_all(pool)
    .await
    .expect("qualified customers")
}
