//! TLS towards the core banking system and the carriers (issue 12 §3): the bank client over mutual
//! TLS, Bearer and API key against the bank simulator serving HTTPS, the handshakes the bank and
//! our client refuse (no client certificate, one of another CA, an expired or self-signed server
//! certificate), a month swept by the real worker over mutual TLS, and the carrier client
//! verifying the carrier's certificate. Every certificate is made at run time with rcgen.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveDate;
use pcn_activities::bank::{
    BankAnswer, BankAuth, BankClient, BankConfig, BankError, ClientIdentity, Secret,
};
use pcn_activities::carrier::{
    CarrierError, CarrierKind, GenericCarrier, GenericConfig, SmsCarrier,
};
use pcn_bank_sim::{SimConfig, SimHandle, SimOutcome, SimTls};
use pcn_tests::{
    TestCarrier, TestDb, WorkerProcess, temporal_address, temporal_client, test_month_settings,
    unique_task_queue,
};
use pcn_worker::months::start_month;
use pcn_workflows::domain::{AccountId, BusinessDate, YearMonth};
use pcn_workflows::month::{MonthPhase, MonthlyQualificationWorkflow};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use temporalio_client::WorkflowSignalOptions;

/// A certificate authority made at run time.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate and its private key, PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

/// A distinguished name of its own (rcgen's default is the same for every certificate, which
/// would make every CA look like the issuer of every certificate).
fn named(params: &mut CertificateParams, what: &str) {
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("PCN test {what} {}", uuid::Uuid::new_v4().simple()),
    );
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        named(&mut params, "CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `localhost` and `127.0.0.1` (server or client alike).
    fn issue(&self) -> Leaf {
        self.issue_with(|_| {})
    }

    fn issue_with(&self, change: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        named(&mut params, "leaf");
        change(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, in no CA bundle.
fn self_signed() -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    named(&mut params, "self-signed");
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// The bank simulator over HTTPS with `server`'s certificate; with `client_ca`, mutual TLS.
async fn https_bank(server: &Leaf, client_ca: Option<&Ca>, bearer: Option<&str>) -> SimHandle {
    pcn_bank_sim::spawn(
        SimConfig {
            accounts: 20,
            seed: 12,
            bearer_token: bearer.map(str::to_owned),
            tls: Some(SimTls {
                cert_pem: server.cert_pem.clone().into_bytes(),
                key_pem: server.key_pem.clone().into_bytes(),
                client_ca_pem: client_ca.map(|ca| ca.pem().into_bytes()),
            }),
            ..SimConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("bank simulator over HTTPS")
}

fn client(sim: &SimHandle, auth: BankAuth, ca: Option<&Ca>) -> BankClient {
    BankClient::new(BankConfig {
        auth,
        server_ca: ca.map(|ca| ca.pem().into_bytes()),
        attempts: 1,
        ..pcn_tests::test_bank_config(&sim.base_url())
    })
    .expect("bank client")
}

fn mtls(leaf: &Leaf) -> BankAuth {
    BankAuth::MutualTls(ClientIdentity {
        cert_pem: leaf.cert_pem.clone().into_bytes(),
        key_pem: Secret::new(leaf.key_pem.clone()),
    })
}

fn day() -> BusinessDate {
    BusinessDate::parse("2026-03-02").unwrap()
}

/// The balance the simulator gives account `i` on [`day`], asked with `client`.
async fn ask(client: &BankClient, i: u64) -> Result<BankAnswer, BankError> {
    client
        .balance(
            &AccountId::parse(&pcn_bank_sim::account_id(i)).unwrap(),
            day(),
        )
        .await
}

/// Account `i` answers `amount` NIS on [`day`], whatever its profile.
fn pin(sim: &SimHandle, i: u64, amount: &str) {
    sim.set_override(
        i,
        day().as_naive(),
        SimOutcome::Balance {
            amount: amount.parse().unwrap(),
            currency: "NIS".to_owned(),
        },
    );
}

fn expect_balance(answer: Result<BankAnswer, BankError>, amount: &str) {
    match answer {
        Ok(BankAnswer::Balance { amount: got, .. }) => {
            assert_eq!(got.amount().to_string(), amount)
        }
        other => panic!("expected a balance of {amount}, got {other:?}"),
    }
}

fn unauthorized(answer: Result<BankAnswer, BankError>) -> String {
    match answer {
        Err(BankError::Unauthorized(why)) => why,
        other => panic!("expected refused credentials, got {other:?}"),
    }
}

fn unavailable(answer: Result<BankAnswer, BankError>) -> String {
    match answer {
        Err(BankError::Unavailable(why)) => why,
        other => panic!("expected no answer, got {other:?}"),
    }
}

#[tokio::test]
async fn the_bank_answers_over_mutual_tls_and_refuses_clients_without_its_certificate() {
    pcn_tests::init();
    let bank_ca = Ca::new();
    let our_ca = Ca::new();
    let other_ca = Ca::new();
    let sim = https_bank(&bank_ca.issue(), Some(&our_ca), None).await;
    assert!(sim.base_url().starts_with("https://"));
    pin(&sim, 3, "15234.50");

    // Our certificate, signed by the CA the bank trusts; the bank's, verified with PCN_BANK_CA.
    let ours = client(&sim, mtls(&our_ca.issue()), Some(&bank_ca));
    expect_balance(ask(&ours, 3).await, "15234.50");
    assert_eq!(sim.stats().status(200), 1);

    // No client certificate (API key over TLS): the handshake fails, our credentials are refused.
    let keyed = client(
        &sim,
        BankAuth::ApiKey(Secret::new("dev-bank-key")),
        Some(&bank_ca),
    );
    let why = unauthorized(ask(&keyed, 3).await);
    assert!(why.contains("requires a client certificate"), "{why}");

    // A certificate from another CA: refused in the handshake, said so.
    let stranger = client(&sim, mtls(&other_ca.issue()), Some(&bank_ca));
    let why = unauthorized(ask(&stranger, 3).await);
    assert!(why.contains("refused our client certificate"), "{why}");

    // Neither refused client reached the balance API.
    assert_eq!(sim.stats().total, 1, "refused handshakes ask nothing");

    // A raw TLS client without a certificate gets no HTTP answer at all either.
    let plain = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(bank_ca.pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("{}/health", sim.base_url()))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bearer_token_is_accepted_and_a_wrong_one_is_a_401() {
    pcn_tests::init();
    let bank_ca = Ca::new();
    let sim = https_bank(&bank_ca.issue(), None, Some("bank-bearer-token-1")).await;
    pin(&sim, 5, "20000.00");
    let bearer = |token: &str| client(&sim, BankAuth::Bearer(Secret::new(token)), Some(&bank_ca));
    expect_balance(ask(&bearer("bank-bearer-token-1"), 5).await, "20000.00");
    let why = unauthorized(ask(&bearer("bank-bearer-token-2"), 5).await);
    assert_eq!(why, "HTTP 401 from the balance API");
    // The API key still works over HTTPS, verified against PCN_BANK_CA.
    let keyed = client(
        &sim,
        BankAuth::ApiKey(Secret::new("dev-bank-key")),
        Some(&bank_ca),
    );
    expect_balance(ask(&keyed, 5).await, "20000.00");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_or_self_signed_bank_certificate_is_refused_with_the_reason() {
    pcn_tests::init();
    let bank_ca = Ca::new();
    let our_ca = Ca::new();
    let expired = bank_ca.issue_with(|p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let key = || BankAuth::ApiKey(Secret::new("dev-bank-key"));

    let sim = https_bank(&expired, None, None).await;
    let why = unavailable(ask(&client(&sim, key(), Some(&bank_ca)), 1).await);
    assert_eq!(
        why,
        "TLS: the bank's certificate has expired (after 1 attempts)"
    );
    // Expired for our client certificate's sake too: no client certificate leaves with it.
    let why = unavailable(ask(&client(&sim, mtls(&our_ca.issue()), Some(&bank_ca)), 1).await);
    assert!(why.contains("has expired"), "{why}");
    sim.shutdown().await;

    let sim = https_bank(&self_signed(), None, None).await;
    let why = unavailable(ask(&client(&sim, key(), Some(&bank_ca)), 1).await);
    assert!(
        why.contains("not signed by a CA we trust") && why.contains("PCN_BANK_CA"),
        "{why}"
    );
    // Without PCN_BANK_CA the platform's trust store decides: a self-signed certificate is
    // not in it either.
    let why = unavailable(ask(&client(&sim, key(), None), 1).await);
    assert!(
        why.contains("not signed by a CA we trust") && why.contains("platform"),
        "{why}"
    );
    assert_eq!(
        sim.stats().total,
        0,
        "no request went out over an untrusted connection"
    );
    sim.shutdown().await;
}

/// Writes `files` (name, contents) into a fresh directory.
fn write_files(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pcn-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, contents) in files {
        std::fs::write(dir.join(file), contents).unwrap();
    }
    dir
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// The worker's JSON log lines whose message contains `what`.
fn lines(log: &Path, what: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(what)))
        .collect()
}

#[tokio::test]
async fn the_worker_sweeps_over_mutual_tls_and_a_refused_certificate_blocks_the_month() {
    pcn_tests::init();
    let n = 6;
    let month = YearMonth::parse("2019-11").unwrap();
    let db = TestDb::new().await;
    // Only the last three days of the month have accounts to check.
    let since = NaiveDate::from_ymd_opt(2019, 11, 28).unwrap();
    let customers: Vec<_> = (0..n).map(|i| pcn_tests::customer(i, since)).collect();
    pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &customers,
        "test",
    )
    .await
    .unwrap();
    let bank_ca = Ca::new();
    let our_ca = Ca::new();
    let other_ca = Ca::new();
    let sim = https_bank(&bank_ca.issue(), Some(&our_ca), None).await;
    let ours = our_ca.issue();
    let stranger = other_ca.issue();
    let dir = write_files(
        "bank-mtls",
        &[
            ("bank-ca.pem", &bank_ca.pem()),
            ("client.pem", &ours.cert_pem),
            ("client.key", &ours.key_pem),
            ("stranger.pem", &stranger.cert_pem),
            ("stranger.key", &stranger.key_pem),
        ],
    );
    let carrier = TestCarrier::start(
        &db.pool,
        &temporal_address(),
        CarrierKind::Generic,
        pcn_carrier_sim::SimConfig::default(),
    )
    .await;
    let queue = unique_task_queue("bank-mtls");
    let log = dir.join("worker.log");
    let env = |cert: &str, key: &str| {
        [
            ("PCN_BANK_AUTH", "mtls".to_owned()),
            ("PCN_BANK_CLIENT_CERT", path(&dir, cert)),
            ("PCN_BANK_CLIENT_KEY", path(&dir, key)),
            ("PCN_BANK_CA", path(&dir, "bank-ca.pem")),
        ]
    };

    // 1. The worker presents a certificate of a CA the bank does not trust: the first day's
    // sweep stops, the month is BLOCKED and the log says why.
    let wrong = env("stranger.pem", "stranger.key");
    let wrong = wrong.each_ref().map(|(k, v)| (*k, v.as_str()));
    let worker =
        WorkerProcess::start_logged(&queue, &db.url, &sim.base_url(), 4, &carrier, &wrong, &log);
    let client = temporal_client().await;
    start_month(&client, &queue, month, test_month_settings())
        .await
        .unwrap();
    let blocked = pcn_tests::wait_for_month(&client, month, Duration::from_secs(90), |p| {
        p.phase == MonthPhase::Blocked
    })
    .await;
    let reason = blocked.blocked_reason.unwrap_or_default();
    assert!(
        reason.contains("refused our client certificate"),
        "{reason}"
    );
    let refused = lines(&log, "the bank refused our credentials");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("refused our client certificate")),
        "{refused:?}"
    );
    assert_eq!(
        sim.stats().total,
        0,
        "nothing asked over a refused handshake"
    );
    worker.kill_9();

    // 2. The operator installs the right certificate and resumes: the month is swept over
    // mutual TLS to its end.
    let right = env("client.pem", "client.key");
    let right = right.each_ref().map(|(k, v)| (*k, v.as_str()));
    let worker = WorkerProcess::start_with(&queue, &db.url, &sim.base_url(), 4, &carrier, &right);
    client
        .get_workflow_handle::<MonthlyQualificationWorkflow>(pcn_workflows::month::workflow_id(
            month,
        ))
        .signal(
            MonthlyQualificationWorkflow::resume,
            "client certificate replaced".to_owned(),
            WorkflowSignalOptions::default(),
        )
        .await
        .unwrap();
    let done = pcn_tests::wait_completed(&client, month, Duration::from_secs(180)).await;
    assert_eq!(done.blocked_reason, None);
    let (checks, missing, balances): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE outcome = 'MISSING'),
                count(*) FILTER (WHERE outcome IN ('PASSED', 'BELOW_THRESHOLD'))
           FROM balance_checks",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(checks, 3 * n as i64, "every account-day checked once");
    assert_eq!(
        missing, 0,
        "the bank answered every request over mutual TLS"
    );
    assert!(balances > 0, "balances were read over mutual TLS");
    assert_eq!(sim.stats().total, 3 * n, "each account asked once a day");
    worker.kill_9();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small HTTPS server answering every request `404 {}` with `leaf`'s certificate, speaking only
/// the TLS `versions`: enough for a client's handshake to succeed or fail.
async fn https_stub(
    leaf: &Leaf,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (String, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0_u8; 16 * 1024];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
                          content-length: 2\r\nconnection: close\r\n\r\n{}",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn the_carrier_client_verifies_the_carriers_certificate_and_speaks_tls_1_3_only() {
    pcn_tests::init();
    let carrier_ca = Ca::new();
    let (url, server) = https_stub(&carrier_ca.issue(), rustls::DEFAULT_VERSIONS).await;
    let carrier = |ca: Option<&Ca>| {
        GenericCarrier::new(GenericConfig {
            base_url: url::Url::parse(&url).unwrap(),
            server_ca: ca.map(|ca| ca.pem().into_bytes()),
            timeout: Duration::from_secs(10),
            ..GenericConfig::default()
        })
        .unwrap()
    };
    // Not told to trust the carrier's CA: the handshake is refused, nothing is sent, and the
    // error says why (and that the message was certainly not taken).
    let refused = carrier(None).status("T-1").await.unwrap_err();
    match &refused {
        CarrierError::Unavailable {
            status: None,
            detail,
        } => assert!(
            detail.contains("not signed by a CA we trust") && detail.contains("PCN_CARRIER_CA"),
            "{detail}"
        ),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    assert!(refused.certainly_not_taken());
    // Told to (PCN_CARRIER_CA): the handshake succeeds and the carrier's answer is read.
    assert_eq!(
        carrier(Some(&carrier_ca)).status("T-1").await.unwrap_err(),
        CarrierError::NotFound
    );
    // Another CA does not make a stranger trusted.
    let other = Ca::new();
    assert!(matches!(
        carrier(Some(&other)).status("T-1").await.unwrap_err(),
        CarrierError::Unavailable { status: None, .. }
    ));
    server.abort();
    // A carrier offering TLS 1.2 only, with a certificate we trust: no handshake, the error
    // says why, and the message was certainly not taken.
    let (url, old) = https_stub(&carrier_ca.issue(), &[&rustls::version::TLS12]).await;
    let old_carrier = GenericCarrier::new(GenericConfig {
        base_url: url::Url::parse(&url).unwrap(),
        server_ca: Some(carrier_ca.pem().into_bytes()),
        timeout: Duration::from_secs(10),
        ..GenericConfig::default()
    })
    .unwrap();
    let refused = old_carrier.status("T-1").await.unwrap_err();
    match &refused {
        CarrierError::Unavailable {
            status: None,
            detail,
        } => assert!(detail.contains("TLS version"), "{detail}"),
        other => panic!("expected a refused handshake, got {other:?}"),
    }
    assert!(refused.certainly_not_taken());
    old.abort();
}

#[tokio::test]
async fn the_bank_client_speaks_tls_1_3_only() {
    pcn_tests::init();
    let bank_ca = Ca::new();
    let leaf = bank_ca.issue();
    let bank = |url: &str| {
        BankClient::new(BankConfig {
            server_ca: Some(bank_ca.pem().into_bytes()),
            attempts: 1,
            ..pcn_tests::test_bank_config(url)
        })
        .unwrap()
    };
    // A bank offering TLS 1.2 only: no handshake, and the error says why.
    let (url, old) = https_stub(&leaf, &[&rustls::version::TLS12]).await;
    let why = unavailable(ask(&bank(&url), 1).await);
    assert!(why.contains("TLS version"), "{why}");
    old.abort();
    // The same certificate over TLS 1.3: the handshake succeeds (the stub answers 404).
    let (url, new) = https_stub(&leaf, &[&rustls::version::TLS13]).await;
    assert_eq!(ask(&bank(&url), 1).await.unwrap(), BankAnswer::NotFound);
    new.abort();
}
