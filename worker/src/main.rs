//! `pcn-worker`: the Temporal worker of the Premium Customer Notification System and the other
//! processes and set-up commands beside it (webhook, control API, setup, schedule, hash-token).
//! Operators act through the control API (`pcnctl`). Thin: parse flags, start telemetry, call the
//! library.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use pcn_activities::metrics::Metrics;
use pcn_activities::setup::{ActivitySetup, SmsSetup};
use pcn_activities::{db, roles};
use pcn_worker::config::{
    ApiArgs, BankArgs, CarrierArgs, ConnectionArgs, MonthArgs, OpsArgs, PhoneKeyArgs, ReportArgs,
    RetentionArgs, SetupArgs, WebhookArgs,
};
use pcn_worker::months;
use pcn_worker::{dispatch, http, telemetry, temporal, webhook};

#[derive(Parser)]
#[command(
    name = "pcn-worker",
    version,
    about = "Premium Customer Notification System worker"
)]
struct Cli {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Log format: pretty or json.
    #[arg(long, env = "PCN_LOG_FORMAT", default_value = "pretty", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
enum Command {
    /// Run the worker (workflows and activities) with its health and metrics endpoint.
    Run {
        #[command(flatten)]
        bank: BankArgs,
        #[command(flatten)]
        carrier: CarrierArgs,
        #[command(flatten)]
        ops: OpsArgs,
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        phones: PhoneKeyArgs,
    },
    /// Serve the carrier webhook (delivery callbacks, inbound STOP) and deliver stored events to
    /// the SMS workflows (with the reconciler for events stored while Temporal was unreachable).
    Webhook {
        #[command(flatten)]
        webhook: WebhookArgs,
    },
    /// Serve the gRPC control API (`pcn.v1.ControlService`, reflection, health) for admins and
    /// `pcnctl`.
    Api {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Read a token on stdin and print its SHA-256, for `PCN_API_TOKENS` (`name:role:<hash>`).
    /// With `--generate`, make a random token, print it and its hash.
    HashToken {
        /// Generate a fresh random token instead of reading one.
        #[arg(long)]
        generate: bool,
    },
    /// Prepare the database (create the owner and application roles if missing, migrate as the
    /// owner, grant the application role what it needs) and register the search attributes on
    /// the namespace. The serving processes (run, webhook, api) never migrate.
    Setup {
        #[command(flatten)]
        setup: SetupArgs,
    },
    /// Re-seal every stored phone number with the newest key of PCN_PHONE_KEYS (and seal the
    /// numbers of rows from before encryption), in batches, as the owner role; resumable (run it
    /// again after a stop) and audited. Then the older keys can leave the ring.
    RotateKeys {
        #[command(flatten)]
        setup: SetupArgs,
        #[command(flatten)]
        phones: PhoneKeyArgs,
        /// Rows per batch (one transaction each).
        #[arg(long, default_value_t = 1_000)]
        batch: i64,
        /// Re-seal every number, not only those on older keys (after changing
        /// PCN_PHONE_INDEX_KEY: the blind index is recomputed too).
        #[arg(long)]
        all: bool,
    },
    /// Create or update the monthly Temporal Schedule (idempotent).
    Schedule {
        #[command(flatten)]
        month: MonthArgs,
    },
    /// Archive the month partitions of `balance_checks` older than the retention period (export,
    /// verify, drop, audit; a dry run without `--apply`), or re-import an export (`--restore`).
    /// Connects with the setup URL as the owner role.
    Retention {
        #[command(flatten)]
        setup: SetupArgs,
        #[command(flatten)]
        retention: RetentionArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = telemetry::init(&cli.log_format) {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let conn = cli.connection;
    match cli.command {
        Command::Run {
            bank,
            carrier,
            ops,
            report,
            phones,
        } => run_worker(&conn, &bank, &carrier, &ops, &report, &phones).await,
        Command::RotateKeys {
            setup,
            phones,
            batch,
            all,
        } => {
            let vault = phones.parse(conn.profile())?;
            let roles = setup.roles(&conn.database_url)?;
            let pool = roles::owner_pool(&setup.database_setup_url, &roles.owner).await?;
            let done =
                pcn_activities::key_rotation::rotate(&pool, &vault, batch, all, "rotate-keys")
                    .await?;
            println!(
                "phone numbers sealed with key {}: {} customers, {} sms_attempts, {} \
                 inbound_messages ({} batches)",
                vault.newest_key(),
                done.rows[0],
                done.rows[1],
                done.rows[2],
                done.batches
            );
            Ok(())
        }
        Command::Webhook { webhook } => run_webhook(&conn, &webhook).await,
        Command::Api { api } => run_api(&conn, &api).await,
        Command::HashToken { generate } => {
            let token = if generate {
                let token = format!(
                    "pcn_{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                );
                println!("token: {token}");
                token
            } else {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                line.trim().to_owned()
            };
            anyhow::ensure!(
                token.len() >= 16,
                "a token must have at least 16 characters"
            );
            println!("sha256: {}", pcn_worker::api::auth::hash_token(&token));
            Ok(())
        }
        Command::Setup { setup } => {
            let roles = setup.roles(&conn.database_url)?;
            let codec = conn.payload_encryption()?;
            let report = roles::setup(&setup.database_setup_url, &roles).await?;
            let partitions = pcn_worker::retention::create_ahead(&setup.database_setup_url).await?;
            let client =
                temporal::connect(&conn.temporal_address, &conn.temporal_namespace, &codec).await?;
            temporal::register_search_attributes(&client, &conn.temporal_namespace).await?;
            println!(
                "database migrated as {owner}, {app} granted (roles created: {created}; objects \
                 handed to {owner}: {moved}; month partitions created: {partitions}); search \
                 attributes registered",
                owner = roles.owner,
                app = roles.app,
                created = if report.created_roles.is_empty() {
                    "none".to_owned()
                } else {
                    report.created_roles.join(", ")
                },
                moved = report.reassigned,
            );
            Ok(())
        }
        Command::Schedule { month } => {
            let settings = month.parse()?;
            let codec = conn.payload_encryption()?;
            let client =
                temporal::connect(&conn.temporal_address, &conn.temporal_namespace, &codec).await?;
            let outcome = months::apply_schedule(&client, &conn.task_queue, &settings).await?;
            println!("schedule {}: {outcome:?}", months::SCHEDULE_ID);
            Ok(())
        }
        Command::Retention { setup, retention } => {
            pcn_worker::retention::command(&setup, &retention, conn.profile()).await
        }
    }
}

async fn run_webhook(conn: &ConnectionArgs, args: &WebhookArgs) -> anyhow::Result<()> {
    let config = args.parse(conn.profile())?;
    let tls = args.tls(conn.profile())?;
    let codec = conn.payload_encryption()?;
    if tls.is_none() {
        tracing::warn!(
            "the webhook serves plain HTTP (development profile or PCN_WEBHOOK_PLAINTEXT)"
        );
    }
    let pool = db::connect(&conn.database_url, conn.database_pool).await?;
    roles::warn_if_privileged(&pool).await?;
    let slot = dispatch::ClientSlot::new(&conn.temporal_address, &conn.temporal_namespace, &codec);
    let dispatcher = dispatch::spawn(
        pool.clone(),
        slot,
        dispatch::DispatchSettings {
            concurrency: args.signal_concurrency,
            // Exposed on the webhook's own `/metrics`.
            metrics: Metrics::new(),
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(args.webhook_bind)
        .await
        .with_context(|| format!("binding the webhook to {}", args.webhook_bind))?;
    let server = webhook::serve_tls(listener, config, pool, dispatcher, tls)?;
    tracing::info!(addr = %server.addr, "carrier webhook listening");
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    server.abort();
    Ok(())
}

async fn run_api(conn: &ConnectionArgs, args: &ApiArgs) -> anyhow::Result<()> {
    let tokens = args.tokens()?;
    if tokens.is_empty() {
        tracing::warn!("no API tokens configured (PCN_API_TOKENS): every call will be refused");
    }
    let month_settings = args.month.parse()?;
    let tls = args.tls(conn.profile())?;
    let codec = conn.payload_encryption()?;
    let codec_settings = args.codec(conn.profile())?;
    let pool = db::connect(&conn.database_url, conn.database_pool).await?;
    roles::warn_if_privileged(&pool).await?;
    let listener = tokio::net::TcpListener::bind(args.api_bind)
        .await
        .with_context(|| format!("binding the control API to {}", args.api_bind))?;
    let secure = tls.is_some();
    let server = pcn_worker::api::serve_tls(
        listener,
        pcn_worker::api::ApiState {
            pool,
            temporal: dispatch::ClientSlot::new(
                &conn.temporal_address,
                &conn.temporal_namespace,
                &codec,
            ),
            task_queue: conn.task_queue.clone(),
            month_settings,
            tokens: std::sync::Arc::new(tokens),
            report_recipients: pcn_worker::config::parse_recipients(&args.report_recipients)?,
            phones: args.phones.parse(conn.profile())?,
        },
        tls.clone(),
    )
    .await?;
    // The remote codec server for the Web UI, on its own listener, with the API's tokens and TLS.
    let _codec_server = match codec_settings {
        Some(settings) => {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("binding the codec server to {}", settings.listen))?;
            let server = pcn_worker::api::codec_server::serve(
                listener,
                settings,
                codec,
                std::sync::Arc::new(args.tokens()?),
                tls,
            )
            .await?;
            tracing::info!(addr = %server.addr, tls = secure, "payload codec server listening");
            Some(server)
        }
        None => None,
    };
    if !secure {
        tracing::warn!(
            "the control API serves plaintext gRPC (development profile or PCN_API_PLAINTEXT)"
        );
    }
    tracing::info!(addr = %server.addr, tls = secure, tokens = args.tokens()?.len(), "control API listening");
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
    server.abort();
    Ok(())
}

async fn run_worker(
    conn: &ConnectionArgs,
    bank: &BankArgs,
    carrier: &CarrierArgs,
    ops: &OpsArgs,
    report: &ReportArgs,
    phones: &PhoneKeyArgs,
) -> anyhow::Result<()> {
    pcn_activities::failpoint::validate()?;
    let codec = conn.payload_encryption()?;
    let mail = report.parse()?;
    let (bank_config, sweep) = bank.parse(conn.profile())?;
    let (carrier_config, limits) = carrier.parse(conn.profile())?;
    let submission = carrier.submission()?;
    let templates = pcn_activities::templates::load_dir(&carrier.sms_templates, limits)
        .with_context(|| {
            format!(
                "loading SMS templates from {}",
                carrier.sms_templates.display()
            )
        })?;
    let pool = db::connect(&conn.database_url, conn.database_pool).await?;
    roles::warn_if_privileged(&pool).await?;
    if let Some(rate) = submission.rate {
        pcn_activities::budget::configure(&pool, carrier_config.kind.as_str(), rate).await?;
        tracing::info!(
            carrier = carrier_config.kind.as_str(),
            per_sec = rate.per_sec,
            "carrier rate set for every worker"
        );
    }
    let report_recipients = mail.recipients.clone();
    if report_recipients.is_empty() {
        tracing::info!(
            "no report recipients configured (PCN_REPORT_RECIPIENTS): reports are not mailed"
        );
    }
    // Runs even without recipients: rows queued through the API by another configuration still go.
    let _mailer = pcn_worker::report::mail::Mailer::new(pool.clone(), mail)?.spawn();
    let metrics = Metrics::new();
    let (addr, _ops_task) = http::serve(ops.http_bind, pool.clone(), metrics.clone()).await?;
    tracing::info!(%addr, "health and metrics endpoint listening");

    let sdk_metrics = if ops.sdk_metrics_bind.is_empty() {
        None
    } else {
        let bind = ops
            .sdk_metrics_bind
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid sdk_metrics_bind: expected host:port"))?;
        let server = temporalio_common::telemetry::start_prometheus_metric_exporter(
            temporalio_common::telemetry::PrometheusExporterOptions::builder()
                .socket_addr(bind)
                .build(),
        )?;
        tracing::info!(addr = %server.bound_addr, "Temporal SDK metrics listening");
        Some(server)
    };
    let telemetry = temporalio_common::telemetry::TelemetryOptions::builder()
        .maybe_metrics(sdk_metrics.as_ref().map(|s| {
            s.meter.clone() as std::sync::Arc<dyn temporalio_common::telemetry::metrics::CoreMeter>
        }))
        .build();
    let runtime = temporalio_sdk::Runtime::from_current_tokio(
        temporalio_sdk::runtime::RuntimeOptions::builder()
            .telemetry_options(telemetry)
            .build()
            .map_err(|e| anyhow::anyhow!("runtime options: {e}"))?,
    )?;
    // A worker that starts while Temporal is briefly away (a restart, a deployment order) waits
    // for it rather than exiting.
    let client = temporal::connect_patiently(
        &conn.temporal_address,
        &conn.temporal_namespace,
        &codec,
        std::time::Duration::from_secs(120),
    )
    .await?;
    let _gauges = pcn_worker::gauges::spawn(
        pool.clone(),
        client.clone(),
        metrics.clone(),
        pcn_worker::gauges::REFRESH_EVERY,
    );
    let activities = ActivitySetup {
        pool,
        bank: bank_config,
        sweep,
        metrics,
        sms: Some(SmsSetup {
            carrier: carrier_config,
            templates,
            gateway: submission.gateway,
            breaker: submission.breaker,
            client: client.clone(),
            fanout_concurrency: carrier.fanout_concurrency,
            phones: phones.parse(conn.profile())?,
        }),
        report_recipients,
    }
    .build()?;
    let mut worker = temporal::build_worker_with(
        &runtime,
        client,
        &conn.task_queue,
        activities,
        ops.capacity()?,
    )?;
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        shutdown();
    });
    tracing::info!(task_queue = %conn.task_queue, "worker running");
    worker.run().await?;
    Ok(())
}
