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
    let args = BankArgs {
        bank_url: "bank.internal".into(),
        bank_api_key: Some("k".into()),
        bank_api_key_file: None,
        bank_timeout_secs: 30,
        bank_attempts: 3,
        bank_backoff_ms: 10,
        sweep_page_size: 10,
        sweep_concurrency: 4,
    };
    assert!(
        args.parse(Profile::Development)
            .unwrap_err()
            .to_string()
            .contains("bank_url")
    );
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
