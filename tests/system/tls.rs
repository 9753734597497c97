//! TLS where the system crosses a network: the control API (gRPC, verified by `pcnctl --ca`) and
//! the webhook (HTTPS), with a certificate authority and certificates made at run time.

use std::time::Duration;

use pcn_tests::{TestApi, TestDb, temporal_address, unique_task_queue, workspace_binary};

/// A certificate authority and a `localhost` certificate it signed, made at run time.
fn test_pki() -> (String, pcn_worker::api::TlsIdentity) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (
        ca.pem(),
        pcn_worker::api::TlsIdentity {
            cert_pem: cert.pem().into_bytes(),
            key_pem: key.serialize_pem().into_bytes(),
        },
    )
}

#[tokio::test]
async fn the_control_api_serves_tls_and_pcnctl_verifies_it() {
    pcn_tests::init();
    let db = TestDb::new().await;
    let (ca_pem, identity) = test_pki();
    let (other_ca_pem, _) = test_pki();
    let dir = std::env::temp_dir().join(format!("pcn-api-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_path = dir.join("ca.pem");
    let other_ca_path = dir.join("other-ca.pem");
    std::fs::write(&ca_path, &ca_pem).unwrap();
    std::fs::write(&other_ca_path, &other_ca_pem).unwrap();
    let viewer = TestApi::token("viewer");
    let tokens = pcn_worker::api::auth::TokenTable::parse(&format!(
        "viewer:viewer:{}",
        pcn_worker::api::auth::hash_token(&viewer)
    ))
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = pcn_worker::api::serve_tls(
        listener,
        pcn_worker::api::ApiState {
            pool: db.pool.clone(),
            temporal: pcn_worker::dispatch::ClientSlot::new(
                &temporal_address(),
                "default",
                &pcn_tests::payload_codec(),
            ),
            task_queue: unique_task_queue("api-tls"),
            month_settings: pcn_tests::test_month_settings(),
            tokens: std::sync::Arc::new(tokens),
            report_recipients: Vec::new(),
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        },
        Some(identity),
    )
    .await
    .unwrap();
    let https = format!("https://localhost:{}", server.addr.port());
    let run = |args: Vec<String>| {
        tokio::process::Command::new(workspace_binary("pcnctl"))
            .args(args)
            .env("PCN_API_TOKEN", &viewer)
            .env_remove("PCN_API_CA")
            .output()
    };
    // Verified against the CA that signed the API's certificate: an answer.
    let ok = run(vec![
        "--address".into(),
        https.clone(),
        "--ca".into(),
        ca_path.display().to_string(),
        "audit".into(),
        "list".into(),
    ])
    .await
    .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // No CA given for an https:// address: refused before dialling, saying what is missing.
    let no_ca = run(vec![
        "--address".into(),
        https.clone(),
        "audit".into(),
        "list".into(),
    ])
    .await
    .unwrap();
    assert!(!no_ca.status.success());
    assert!(
        String::from_utf8_lossy(&no_ca.stderr).contains("--ca"),
        "{}",
        String::from_utf8_lossy(&no_ca.stderr)
    );
    // Another CA: the certificate does not verify, nothing is answered.
    let wrong = run(vec![
        "--address".into(),
        https.clone(),
        "--ca".into(),
        other_ca_path.display().to_string(),
        "audit".into(),
        "list".into(),
    ])
    .await
    .unwrap();
    assert!(
        !wrong.status.success(),
        "a certificate from another CA is refused"
    );
    // Plaintext gRPC to the TLS port gets no answer either.
    let plain = run(vec![
        "--address".into(),
        format!("http://127.0.0.1:{}", server.addr.port()),
        "--timeout".into(),
        "5".into(),
        "audit".into(),
        "list".into(),
    ])
    .await
    .unwrap();
    assert!(
        !plain.status.success(),
        "plaintext is not served on the TLS port"
    );
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_webhook_serves_https_with_its_certificate() {
    pcn_tests::init();
    let db = TestDb::new().await;
    let (ca_pem, identity) = test_pki();
    let (other_ca_pem, _) = test_pki();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let dispatcher = pcn_worker::dispatch::spawn(
        db.pool.clone(),
        pcn_worker::dispatch::ClientSlot::new(
            &temporal_address(),
            "default",
            &pcn_tests::payload_codec(),
        ),
        pcn_worker::dispatch::DispatchSettings::default(),
    );
    let server = pcn_worker::webhook::serve_tls(
        listener,
        pcn_worker::webhook::WebhookConfig {
            generic_secret: b"a-webhook-secret".to_vec(),
            twilio_auth_token: b"a-twilio-token".to_vec(),
            public_base_url: format!("https://localhost:{port}"),
            phones: pcn_activities::phone_vault::PhoneVault::development(),
        },
        db.pool.clone(),
        dispatcher,
        Some(identity),
    )
    .unwrap();
    let client = |ca: &str| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    // The carrier verifies our certificate: answered.
    let ok = client(&ca_pem)
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // A client trusting another CA refuses the connection; plain HTTP gets no answer.
    assert!(
        client(&other_ca_pem)
            .get(format!("https://localhost:{port}/healthz"))
            .send()
            .await
            .is_err()
    );
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        plain.map(|r| r.status() != 200).unwrap_or(true),
        "plain HTTP is not served on the HTTPS port"
    );
    server.abort();
}
