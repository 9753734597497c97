//! Unit tests of the settings: every bad value is refused with its field named.

use super::*;

fn month_args() -> MonthArgs {
    MonthArgs {
        check_time: "22:00".into(),
        threshold: "15000".into(),
        give_up_after_secs: 7_200,
        sweep_heartbeat_timeout_secs: 60,
        sms_window: "sun-thu 09:00-20:00".into(),
        sms_max_attempts: 3,
        sms_retry_delay_secs: 6 * 3600,
        sms_confirmation_timeout_secs: 72 * 3600,
        sms_poll_interval_secs: 2 * 3600,
        sms_reconcile_secs: 600,
        fanout_page: 2_000,
        notification_poll_secs: 900,
    }
}

fn setup_args() -> SetupArgs {
    SetupArgs {
        database_setup_url: "postgres://postgres@127.0.0.1:5432/pcn".into(),
        database_owner_role: "pcn_owner".into(),
    }
}

#[test]
fn setup_takes_the_application_role_and_its_password_from_the_database_url() {
    let roles = setup_args()
        .roles("postgres://pcn_app:s%40cret@db:5432/pcn")
        .unwrap();
    assert_eq!(roles.owner.as_str(), "pcn_owner");
    assert_eq!(roles.app.as_str(), "pcn_app");
    assert_eq!(roles.app_password.unwrap().expose(), "s@cret");
    let default = setup_args()
        .roles("postgres://pcn_app@127.0.0.1:5432/pcn")
        .unwrap();
    assert!(default.app_password.is_none());
}

#[test]
fn setup_refuses_roles_it_cannot_separate_naming_the_field() {
    let refused = |args: SetupArgs, url: &str| args.roles(url).unwrap_err().field;
    assert_eq!(
        refused(setup_args(), "postgres://127.0.0.1:5432/pcn"),
        "database_url"
    );
    assert_eq!(
        refused(setup_args(), "postgres://Pcn-App@127.0.0.1:5432/pcn"),
        "database_url"
    );
    assert_eq!(
        refused(setup_args(), "postgres://pcn_owner@127.0.0.1:5432/pcn"),
        "database_owner_role"
    );
    assert_eq!(
        refused(setup_args(), "postgres://pcn_app@127.0.0.1:5432/other"),
        "database_setup_url"
    );
    let mut args = setup_args();
    args.database_owner_role = "pcn owner".into();
    assert_eq!(
        refused(args, "postgres://pcn_app@127.0.0.1:5432/pcn"),
        "database_owner_role"
    );
}

#[test]
fn the_defaults_parse() {
    let settings = month_args().parse().unwrap();
    assert_eq!(settings, MonthSettings::default());
}

#[test]
fn a_bad_check_time_names_the_field() {
    let mut args = month_args();
    args.check_time = "25:00".into();
    assert!(args.parse().unwrap_err().to_string().contains("check_time"));
}

#[test]
fn a_saturday_window_is_refused_with_its_field() {
    let mut args = month_args();
    args.sms_window = "sun-sat 09:00-20:00".into();
    assert!(
        args.parse()
            .unwrap_err()
            .to_string()
            .contains("send_window")
    );
}

#[test]
fn a_zero_threshold_names_the_field() {
    let mut args = month_args();
    args.threshold = "0".into();
    assert!(args.parse().unwrap_err().to_string().contains("threshold"));
}

#[test]
fn a_bank_url_without_scheme_names_the_field() {
    let args = bank_args(&["--bank-url", "bank.internal", "--bank-api-key", "k"]);
    assert_eq!(
        args.parse(Profile::Development).unwrap_err().field,
        "bank_url"
    );
}

fn bank_args(extra: &[&str]) -> BankArgs {
    args_of(extra)
}

/// The `field: message` a bank setting is refused with.
fn bank_refused(extra: &[&str], profile: Profile) -> String {
    bank_args(extra).parse(profile).unwrap_err().to_string()
}

/// A directory of PEM files made at run time: a CA, a client certificate it signed and its key,
/// another key, and a file that is no PEM at all.
fn pem_dir() -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = std::env::temp_dir().join(format!(
        "pcn-bank-tls-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["pcn-worker".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    for (name, contents) in [
        ("ca.pem", ca.pem()),
        ("client.pem", cert.pem()),
        ("client.key", key.serialize_pem()),
        ("other.key", KeyPair::generate().unwrap().serialize_pem()),
        ("garbage.pem", "not a PEM file\n".to_owned()),
    ] {
        std::fs::write(dir.join(name), contents).unwrap();
    }
    dir
}

#[test]
fn production_talks_to_the_bank_over_tls_unless_plaintext_is_chosen() {
    let key = ["--bank-api-key", "real-bank-key"];
    let err = bank_refused(&key, Profile::Production);
    assert!(
        err.starts_with("invalid bank_url:") && err.contains("PCN_BANK_PLAINTEXT"),
        "{err}"
    );
    // The development profile keeps today's plaintext default (make demo, tests).
    assert!(bank_args(&key).parse(Profile::Development).is_ok());
    let plaintext = bank_args(&["--bank-api-key", "real-bank-key", "--bank-plaintext"]);
    assert!(plaintext.parse(Profile::Production).is_ok());
    let https = bank_args(&[
        "--bank-api-key",
        "real-bank-key",
        "--bank-url",
        "https://core-banking.internal",
    ]);
    let (config, _) = https.parse(Profile::Production).unwrap();
    assert_eq!(config.auth, BankAuth::ApiKey(Secret::new("real-bank-key")));
    assert_eq!(config.server_ca, None);
}

#[test]
fn mutual_tls_reads_and_checks_its_files_and_names_each_setting() {
    let dir = pem_dir();
    let file = |name: &str| dir.join(name).display().to_string();
    let https = "https://core-banking.internal";
    let mtls = |cert: &str, key: &str| {
        bank_args(&[
            "--bank-url",
            https,
            "--bank-auth",
            "mtls",
            "--bank-client-cert",
            &file(cert),
            "--bank-client-key",
            &file(key),
            "--bank-ca",
            &file("ca.pem"),
        ])
    };
    // Right: production needs no API key with mutual TLS.
    let (config, _) = mtls("client.pem", "client.key")
        .parse(Profile::Production)
        .unwrap();
    assert!(matches!(config.auth, BankAuth::MutualTls(_)));
    assert!(config.server_ca.is_some());
    let refused = |args: BankArgs| args.parse(Profile::Production).unwrap_err().to_string();
    let missing = refused(mtls("nope.pem", "client.key"));
    assert!(
        missing.starts_with("invalid bank_client_cert:") && missing.contains("cannot be read"),
        "{missing}"
    );
    let garbage = refused(mtls("garbage.pem", "client.key"));
    assert!(
        garbage.starts_with("invalid bank_client_cert:") && garbage.contains("no PEM certificate"),
        "{garbage}"
    );
    let not_a_key = refused(mtls("client.pem", "garbage.pem"));
    assert!(
        not_a_key.starts_with("invalid bank_client_key:")
            && not_a_key.contains("no PEM private key"),
        "{not_a_key}"
    );
    let mismatch = refused(mtls("client.pem", "other.key"));
    assert!(
        mismatch.starts_with("invalid bank_client_key:") && mismatch.contains("does not match"),
        "{mismatch}"
    );
    let bad_ca = refused(bank_args(&[
        "--bank-url",
        https,
        "--bank-api-key",
        "real-bank-key",
        "--bank-ca",
        &file("garbage.pem"),
    ]));
    assert!(bad_ca.starts_with("invalid bank_ca:"), "{bad_ca}");
    // Mutual TLS over http://, or without its files: refused whatever the profile.
    let plain = bank_refused(
        &[
            "--bank-auth",
            "mtls",
            "--bank-client-cert",
            &file("client.pem"),
            "--bank-client-key",
            &file("client.key"),
        ],
        Profile::Development,
    );
    assert!(
        plain.starts_with("invalid bank_url:") && plain.contains("https"),
        "{plain}"
    );
    let no_cert = bank_refused(
        &["--bank-url", https, "--bank-auth", "mtls"],
        Profile::Development,
    );
    assert!(
        no_cert.starts_with("invalid bank_client_cert:"),
        "{no_cert}"
    );
    let no_key = bank_refused(
        &[
            "--bank-url",
            https,
            "--bank-auth",
            "mtls",
            "--bank-client-cert",
            &file("client.pem"),
        ],
        Profile::Development,
    );
    assert!(no_key.starts_with("invalid bank_client_key:"), "{no_key}");
    // A client certificate given for another method is a mistake, not silently ignored.
    let stray = bank_refused(
        &["--bank-client-cert", &file("client.pem")],
        Profile::Development,
    );
    assert!(
        stray.starts_with("invalid bank_client_cert:") && stray.contains("api-key"),
        "{stray}"
    );
    let ca_over_http = bank_refused(&["--bank-ca", &file("ca.pem")], Profile::Development);
    assert!(
        ca_over_http.starts_with("invalid bank_ca:"),
        "{ca_over_http}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bearer_needs_its_token_from_the_setting_or_its_file() {
    let none = bank_refused(&["--bank-auth", "bearer"], Profile::Development);
    assert!(
        none.starts_with("invalid bank_bearer_token:")
            && none.contains("PCN_BANK_BEARER_TOKEN_FILE"),
        "{none}"
    );
    let (config, _) = bank_args(&["--bank-auth", "bearer", "--bank-bearer-token", "tok-1"])
        .parse(Profile::Development)
        .unwrap();
    assert_eq!(config.auth, BankAuth::Bearer(Secret::new("tok-1")));
    let dir = pem_dir();
    let token_file = dir.join("token");
    std::fs::write(&token_file, "tok-from-file\n").unwrap();
    let (config, _) = bank_args(&[
        "--bank-auth",
        "bearer",
        "--bank-bearer-token-file",
        &token_file.display().to_string(),
        "--bank-url",
        "https://core-banking.internal",
    ])
    .parse(Profile::Production)
    .unwrap();
    assert_eq!(config.auth, BankAuth::Bearer(Secret::new("tok-from-file")));
    let unknown = bank_refused(&["--bank-auth", "kerberos"], Profile::Development);
    assert!(unknown.starts_with("invalid bank_auth:"), "{unknown}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_carrier_ca_is_read_and_given_to_both_carriers() {
    let dir = pem_dir();
    let file = |name: &str| dir.join(name).display().to_string();
    let (config, _) = carrier_args(&["--carrier-ca", &file("ca.pem")])
        .parse(Profile::Development)
        .unwrap();
    assert!(config.generic.server_ca.is_some() && config.twilio.server_ca.is_some());
    let (none, _) = carrier_args(&[]).parse(Profile::Development).unwrap();
    assert_eq!(none.generic.server_ca, None);
    for bad in ["garbage.pem", "nope.pem"] {
        let err = carrier_args(&["--carrier-ca", &file(bad)])
            .parse(Profile::Development)
            .unwrap_err();
        assert_eq!(err.field, "carrier_ca", "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// One group of settings as the command line `pcn <extra…>` (and the environment) gives it.
fn args_of<T: clap::Args>(extra: &[&str]) -> T {
    #[derive(clap::Parser)]
    struct Cli<T: clap::Args> {
        #[command(flatten)]
        group: T,
    }
    let args = std::iter::once("pcn").chain(extra.iter().copied());
    <Cli<T> as clap::Parser>::try_parse_from(args)
        .unwrap()
        .group
}

fn carrier_args(extra: &[&str]) -> CarrierArgs {
    args_of(extra)
}

#[test]
fn a_secondary_carrier_is_the_other_adapter_with_its_own_url() {
    let args = carrier_args(&[
        "--carrier-secondary",
        "twilio",
        "--carrier-secondary-url",
        "http://backup.example:9000",
    ]);
    let (config, _) = args.parse(Profile::Development).unwrap();
    assert_eq!(config.kind, CarrierKind::Generic);
    assert_eq!(config.secondary, Some(CarrierKind::Twilio));
    assert_eq!(
        config.twilio.base_url.as_str(),
        "http://backup.example:9000/"
    );
    assert_eq!(config.generic.base_url.as_str(), "http://127.0.0.1:8082/");
}

#[test]
fn a_secondary_identical_to_the_primary_or_without_its_url_is_refused() {
    let same = carrier_args(&[
        "--carrier-secondary",
        "generic",
        "--carrier-secondary-url",
        "http://backup.example",
    ]);
    assert!(
        same.parse(Profile::Development)
            .unwrap_err()
            .to_string()
            .contains("carrier_secondary")
    );
    let no_url = carrier_args(&["--carrier-secondary", "twilio"]);
    assert!(
        no_url
            .parse(Profile::Development)
            .unwrap_err()
            .to_string()
            .contains("carrier_secondary_url")
    );
}

fn report_args(extra: &[&str]) -> ReportArgs {
    args_of(extra)
}

#[test]
fn report_recipients_are_parsed_and_a_bad_one_is_named_by_position() {
    let ok = parse_recipients(" a@bank.example, b@bank.example ,,a@bank.example").unwrap();
    assert_eq!(ok, ["a@bank.example", "b@bank.example"]);
    assert!(parse_recipients("").unwrap().is_empty());
    let err = parse_recipients("a@bank.example, not-an-address").unwrap_err();
    assert!(err.to_string().contains("report_recipients"));
    assert!(err.to_string().contains("entry 2"));
}

#[test]
fn the_smtp_url_is_checked_and_holds_no_password() {
    let ok = report_args(&["--smtp-url", "smtp://mail.bank.example:587?tls=required"]);
    assert!(ok.parse().is_ok());
    for bad in [
        "http://mail.bank.example",
        "smtp://user:secret@mail.bank.example",
        "smtp://mail.bank.example?tls=sometimes",
    ] {
        let err = report_args(&["--smtp-url", bad]).parse().unwrap_err();
        assert!(err.to_string().contains("smtp_url"), "{bad}: {err}");
        assert!(!err.to_string().contains("secret"));
    }
    let half = report_args(&["--smtp-username", "pcn"])
        .parse()
        .unwrap_err();
    assert!(half.to_string().contains("smtp_username"));
}

#[test]
fn a_breaker_that_never_opens_is_refused() {
    let args = carrier_args(&["--carrier-breaker-failures", "0"]);
    assert!(
        args.submission()
            .unwrap_err()
            .to_string()
            .contains("carrier_breaker_failures")
    );
}

#[test]
fn production_refuses_unset_and_development_secrets_and_names_the_setting() {
    let unset = secret(
        "bank_api_key",
        "PCN_BANK_API_KEY",
        None,
        None,
        "dev-bank-key",
        Profile::Production,
    )
    .unwrap_err()
    .to_string();
    assert!(
        unset.contains("bank_api_key") && unset.contains("PCN_BANK_API_KEY_FILE"),
        "{unset}"
    );
    let dev = secret(
        "bank_api_key",
        "PCN_BANK_API_KEY",
        Some("dev-bank-key"),
        None,
        "dev-bank-key",
        Profile::Production,
    )
    .unwrap_err()
    .to_string();
    assert!(dev.contains("development value"), "{dev}");
    assert!(
        !dev.contains("dev-bank-key"),
        "the error never echoes the secret: {dev}"
    );
    // Development: the simulators' value when unset; a set value as given.
    assert_eq!(
        secret("k", "PCN_K", None, None, "dev-k", Profile::Development).unwrap(),
        "dev-k"
    );
    assert_eq!(
        secret(
            "k",
            "PCN_K",
            Some("real"),
            None,
            "dev-k",
            Profile::Production
        )
        .unwrap(),
        "real"
    );
}

#[test]
fn a_secret_comes_from_its_file_without_the_trailing_newline_never_from_both() {
    let dir = std::env::temp_dir().join(format!("pcn-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bank_api_key");
    std::fs::write(&path, "s3cret-from-file\n").unwrap();
    assert_eq!(
        secret(
            "bank_api_key",
            "PCN_BANK_API_KEY",
            None,
            Some(&path),
            "dev",
            Profile::Production
        )
        .unwrap(),
        "s3cret-from-file"
    );
    let both = secret(
        "bank_api_key",
        "PCN_BANK_API_KEY",
        Some("x"),
        Some(&path),
        "dev",
        Profile::Production,
    )
    .unwrap_err()
    .to_string();
    assert!(both.contains("not both"), "{both}");
    let missing = secret(
        "bank_api_key",
        "PCN_BANK_API_KEY",
        None,
        Some(&dir.join("absent")),
        "dev",
        Profile::Production,
    )
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("cannot be read") && missing.contains("bank_api_key"),
        "{missing}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_carrier_and_webhook_secrets_follow_the_profile() {
    let carrier = carrier_args(&[]);
    assert!(carrier.parse(Profile::Development).is_ok());
    let err = carrier.parse(Profile::Production).unwrap_err().to_string();
    assert!(err.contains("carrier_api_key"), "{err}");
    let with_keys = carrier_args(&[
        "--carrier-api-key",
        "k1-real",
        "--twilio-auth-token",
        "t1-real",
    ]);
    assert!(with_keys.parse(Profile::Production).is_ok());
}

#[test]
fn the_api_serves_tls_in_production_unless_plaintext_is_chosen_explicitly() {
    let api_args = args_of::<ApiArgs>;
    let none = api_args(&[]);
    let err = none.tls(Profile::Production).unwrap_err().to_string();
    assert!(
        err.contains("api_tls_cert") && err.contains("PCN_API_PLAINTEXT"),
        "{err}"
    );
    assert!(none.tls(Profile::Development).unwrap().is_none());
    assert!(
        api_args(&["--api-plaintext"])
            .tls(Profile::Production)
            .unwrap()
            .is_none()
    );
    let half = api_args(&["--api-tls-cert", "/tmp/x.pem"]).tls(Profile::Development);
    assert!(half.unwrap_err().to_string().contains("api_tls_key"));
    let missing = api_args(&[
        "--api-tls-cert",
        "/nonexistent/c.pem",
        "--api-tls-key",
        "/nonexistent/k.pem",
    ])
    .tls(Profile::Production)
    .unwrap_err()
    .to_string();
    assert!(
        missing.contains("api_tls_cert") && missing.contains("cannot be read"),
        "{missing}"
    );
}

#[test]
fn payload_keys_follow_the_profile_and_production_refuses_the_development_key() {
    use pcn_activities::keyring::development::PAYLOAD_KEYS;
    let conn = args_of::<ConnectionArgs>;
    let dev = conn(&["--profile", "development"])
        .payload_encryption()
        .unwrap();
    assert_eq!(dev.newest_key_id(), "dev1");
    let unset = conn(&[]).payload_encryption().unwrap_err().to_string();
    assert!(
        unset.contains("payload_keys") && unset.contains("PCN_PAYLOAD_KEYS"),
        "{unset}"
    );
    let real = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";
    let with_dev = format!("{real},{PAYLOAD_KEYS}");
    let refused = conn(&["--payload-keys", &with_dev])
        .payload_encryption()
        .unwrap_err();
    assert_eq!(refused.field, "payload_keys");
    assert!(refused.message.contains("development key"), "{refused}");
    let ok = conn(&["--payload-keys", real])
        .payload_encryption()
        .unwrap();
    assert_eq!(ok.newest_key_id(), "k2");
    let short = conn(&["--payload-keys", "k1:AAAA"])
        .payload_encryption()
        .unwrap_err();
    assert!(
        short
            .to_string()
            .contains("PCN_PAYLOAD_KEYS: key `k1` is 3 bytes"),
        "{short}"
    );
    assert!(!short.to_string().contains("AAAA"));
    let dir = std::env::temp_dir().join(format!("pcn-payload-keys-{}", std::process::id()));
    std::fs::write(&dir, format!("# newest first\n{real}\n")).unwrap();
    let from_file = conn(&["--payload-keys-file", dir.to_str().unwrap()])
        .payload_encryption()
        .unwrap();
    assert_eq!(from_file.newest_key_id(), "k2");
    std::fs::remove_file(&dir).unwrap();
}

#[test]
fn the_codec_listener_and_its_cors_origins_are_checked() {
    let api = args_of::<ApiArgs>;
    let default = api(&[]).codec(Profile::Production).unwrap().unwrap();
    assert_eq!(default.listen.to_string(), "127.0.0.1:8089");
    assert!(default.cors_origins.is_empty() && !default.anonymous_decode);
    assert!(
        api(&["--codec-listen", ""])
            .codec(Profile::Production)
            .unwrap()
            .is_none()
    );
    let origins = api(&[
        "--codec-cors-origin",
        "http://localhost:8233, https://ui.bank.example",
    ])
    .codec(Profile::Production)
    .unwrap()
    .unwrap();
    assert_eq!(
        origins.cors_origins,
        ["http://localhost:8233", "https://ui.bank.example"]
    );
    let bad = api(&["--codec-cors-origin", "http://ui/x"]).codec(Profile::Production);
    assert_eq!(bad.unwrap_err().field, "codec_cors_origin");
    let bad = api(&["--codec-listen", "8089"]).codec(Profile::Production);
    assert_eq!(bad.unwrap_err().field, "codec_listen");
    let anonymous = api(&["--codec-anonymous-decode"]);
    assert_eq!(
        anonymous.codec(Profile::Production).unwrap_err().field,
        "codec_anonymous_decode"
    );
    assert!(
        anonymous
            .codec(Profile::Development)
            .unwrap()
            .unwrap()
            .anonymous_decode
    );
}

#[test]
fn the_workers_capacity_defaults_to_500_task_slots_and_names_a_bad_setting() {
    let capacity = args_of::<OpsArgs>(&[]).capacity().unwrap();
    assert_eq!(capacity, crate::temporal::WorkerCapacity::default());
    assert_eq!(capacity.workflow_task_slots, 500);
    let custom = args_of::<OpsArgs>(&["--workflow-task-slots", "200"])
        .capacity()
        .unwrap();
    assert_eq!(custom.workflow_task_slots, 200);
    for (flag, value, field) in [
        ("--workflow-task-slots", "0", "workflow_task_slots"),
        ("--workflow-task-slots", "10001", "workflow_task_slots"),
        ("--workflow-cache", "1", "workflow_cache"),
    ] {
        let err = args_of::<OpsArgs>(&[flag, value]).capacity().unwrap_err();
        assert!(err.to_string().contains(field), "{flag} {value}: {err}");
    }
}
