//! The simulator over real HTTP: body shape, errors, profiles across a month, faults, stats.

use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate};
use pcn_bank_sim::{
    Faults, Profile, ProfileMix, SimConfig, SimHandle, SimOutcome, account_id, customer_id,
    month_days, spawn,
};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;

const KEY: &str = "dev-bank-key";

async fn spawn_sim(config: SimConfig) -> SimHandle {
    spawn(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn spawn_with(mix: ProfileMix) -> SimHandle {
    spawn_sim(SimConfig {
        accounts: 200,
        mix,
        ..SimConfig::default()
    })
    .await
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn balance_url(sim: &SimHandle, account: &str, query: &str) -> String {
    format!(
        "{}/api/v1/accounts/{account}/balance?{query}",
        sim.base_url()
    )
}

/// GET the balance of account `i` on `d` with the right key: (status, raw body).
async fn fetch(c: &reqwest::Client, sim: &SimHandle, i: u64, d: NaiveDate) -> (StatusCode, String) {
    get_raw(
        c,
        &balance_url(sim, &account_id(i), &format!("asOfDate={d}")),
        Some(KEY),
    )
    .await
}

async fn get_raw(c: &reqwest::Client, url: &str, key: Option<&str>) -> (StatusCode, String) {
    let mut req = c.get(url);
    if let Some(key) = key {
        req = req.header("X-API-Key", key);
    }
    let resp = req.send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

/// The raw text of the `amount` value.
fn amount_text(body: &str) -> &str {
    let start = body.find(r#""amount":"#).expect("an amount") + r#""amount":"#.len();
    let rest = &body[start..];
    &rest[..rest.find([',', '}']).unwrap()]
}

fn error_code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    assert!(v["message"].is_string(), "{body}");
    v["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_balance_has_exactly_the_documented_fields_and_a_two_decimal_amount() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let d = date(2026, 10, 5);
    sim.set_override(42, d, SimOutcome::nis_cents(2_500_000));

    let (status, body) = fetch(&c, &sim, 42, d).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(amount_text(&body), "25000.00");
    let reference = sim.scenario().reference_id(42, d);
    assert_eq!(
        body,
        format!(
            r#"{{"accountId":"ACC-00000-00042","customerId":"C0000000042","balance":{{"amount":25000.00,"currency":"NIS","asOfDate":"2026-10-05","asOfTime":"21:00:00"}},"accountStatus":"ACTIVE","timestamp":"2026-10-05T18:00:00Z","referenceId":"{reference}"}}"#
        )
    );

    let v: Value = serde_json::from_str(&body).unwrap();
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "accountId",
            "accountStatus",
            "balance",
            "customerId",
            "referenceId",
            "timestamp"
        ]
    );
    let mut balance_keys: Vec<_> = v["balance"].as_object().unwrap().keys().cloned().collect();
    balance_keys.sort();
    assert_eq!(balance_keys, ["amount", "asOfDate", "asOfTime", "currency"]);
    assert!(v["balance"]["amount"].is_number());

    // The reference id is stable for the same (account, date).
    let (_, again) = fetch(&c, &sim, 42, d).await;
    assert_eq!(again, body);
    sim.shutdown().await;
}

#[tokio::test]
async fn every_generated_amount_is_written_with_two_decimals_and_matches_the_scenario() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let d = date(2026, 11, 18);
    let mut balances = 0;
    for i in 0..150 {
        let (status, body) = fetch(&c, &sim, i, d).await;
        match sim.scenario().outcome(i, d) {
            SimOutcome::Balance { amount, currency } => {
                assert_eq!(status, StatusCode::OK);
                let text = amount_text(&body);
                let (_, decimals) = text.split_once('.').expect("a decimal point");
                assert_eq!(decimals.len(), 2, "{text}");
                assert_eq!(text.parse::<Decimal>().unwrap(), amount);
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["balance"]["currency"], currency.as_str());
                assert_eq!(v["accountId"], account_id(i).as_str());
                assert_eq!(v["customerId"], customer_id(i).as_str());
                // Winter time: 21:00 in Israel is 19:00 UTC.
                assert_eq!(v["timestamp"], "2026-11-18T19:00:00Z");
                balances += 1;
            }
            SimOutcome::NotFound => assert_eq!(status, StatusCode::NOT_FOUND),
            SimOutcome::Malformed => assert_eq!(status, StatusCode::OK),
        }
    }
    assert!(balances > 100);
}

#[tokio::test]
async fn boundary_accounts_show_exactly_15000_or_one_day_of_14999_99_over_a_month() {
    let sim = spawn_with(ProfileMix::only(Profile::Boundary)).await;
    let c = client();
    let s = sim.scenario();
    let almost = (0..200).find(|&i| s.boundary_almost(i)).unwrap();
    let steady = (0..200).find(|&i| !s.boundary_almost(i)).unwrap();
    for (i, is_almost) in [(almost, true), (steady, false)] {
        let mut below = Vec::new();
        for d in month_days(2026, 10) {
            let (status, body) = fetch(&c, &sim, i, d).await;
            assert_eq!(status, StatusCode::OK);
            match amount_text(&body) {
                "15000.00" => {}
                "14999.99" => below.push(d.day()),
                other => panic!("unexpected amount {other}"),
            }
        }
        if is_almost {
            assert_eq!(below, [s.special_day(i, 2026, 10)]);
        } else {
            assert!(below.is_empty());
        }
        assert_eq!(s.qualifies(i, 2026, 10), !is_almost);
    }
}

#[tokio::test]
async fn a_dipper_is_below_the_threshold_on_exactly_one_day_of_the_month() {
    let sim = spawn_with(ProfileMix::only(Profile::Dipper)).await;
    let c = client();
    let threshold = Decimal::new(1_500_000, 2);
    for i in [0, 17, 199] {
        let mut below = 0;
        for d in month_days(2026, 11) {
            let (status, body) = fetch(&c, &sim, i, d).await;
            assert_eq!(status, StatusCode::OK);
            let amount: Decimal = amount_text(&body).parse().unwrap();
            below += u32::from(amount < threshold);
        }
        assert_eq!(below, 1, "account {i}");
    }
}

#[tokio::test]
async fn unknown_accounts_and_accounts_outside_the_population_are_404() {
    let sim = spawn_with(ProfileMix::only(Profile::Unknown)).await;
    let c = client();
    for i in [0, 5, 199, 200, 99_999_999] {
        for d in [date(2026, 10, 1), date(2026, 10, 31)] {
            let (status, body) = fetch(&c, &sim, i, d).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            assert_eq!(error_code(&body), "NOT_FOUND");
        }
    }
}

#[tokio::test]
async fn data_quality_days_answer_in_usd_or_with_a_malformed_body() {
    let sim = spawn_with(ProfileMix::only(Profile::DataQuality)).await;
    let c = client();
    let (mut usd, mut malformed) = (0, 0);
    for i in 0..12 {
        let special = sim.scenario().special_day(i, 2026, 10);
        for d in month_days(2026, 10) {
            let (status, body) = fetch(&c, &sim, i, d).await;
            assert_eq!(status, StatusCode::OK);
            let parsed = serde_json::from_str::<Value>(&body).ok();
            let well_formed = parsed
                .as_ref()
                .is_some_and(|v| v["balance"]["amount"].is_number() && v["timestamp"].is_string());
            if d.day() != special {
                assert!(well_formed, "{body}");
                assert_eq!(parsed.unwrap()["balance"]["currency"], "NIS");
            } else if well_formed {
                assert_eq!(parsed.unwrap()["balance"]["currency"], "USD");
                usd += 1;
            } else {
                assert_eq!(sim.scenario().outcome(i, d), SimOutcome::Malformed);
                malformed += 1;
            }
        }
    }
    assert_eq!(usd + malformed, 12);
    assert!(usd > 0 && malformed > 0, "usd {usd}, malformed {malformed}");
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_401() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let url = balance_url(&sim, &account_id(1), "asOfDate=2026-10-05");
    for key in [None, Some("wrong"), Some("")] {
        let (status, body) = get_raw(&c, &url, key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}");
        assert_eq!(error_code(&body), "UNAUTHORIZED");
    }
    assert_eq!(get_raw(&c, &url, Some(KEY)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_account_ids_and_bad_or_missing_dates_are_400() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let good = account_id(1);
    for (account, query) in [
        ("ACC-1-2", "asOfDate=2026-10-05"),
        ("42", "asOfDate=2026-10-05"),
        ("ACC-00000-0004x", "asOfDate=2026-10-05"),
        (good.as_str(), ""),
        (good.as_str(), "asOfDate="),
        (good.as_str(), "asOfDate=2026-02-30"),
        (good.as_str(), "asOfDate=05-10-2026"),
        (good.as_str(), "asOfDate=2026-10-05&asOfTime=9pm"),
    ] {
        let (status, body) = get_raw(&c, &balance_url(&sim, account, query), Some(KEY)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{account} {query}");
        assert_eq!(error_code(&body), "INVALID_REQUEST");
    }
}

#[tokio::test]
async fn as_of_time_is_echoed_even_when_percent_encoded() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    sim.set_override(3, date(2026, 10, 5), SimOutcome::nis_cents(100));
    let url = format!(
        "{}/api/v1/accounts/{}/balance",
        sim.base_url(),
        account_id(3)
    );
    let resp = c
        .get(&url)
        .query(&[("asOfDate", "2026-10-05"), ("asOfTime", "22:00:00")])
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["balance"]["asOfTime"], "22:00:00");
    assert_eq!(v["timestamp"], "2026-10-05T19:00:00Z");
}

#[tokio::test]
async fn injected_errors_at_a_million_ppm_hit_every_request() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let d = date(2026, 10, 5);
    sim.set_faults(Faults {
        error_503_ppm: 1_000_000,
        ..Faults::default()
    });
    // An empty key in the new faults keeps the configured one.
    assert_eq!(sim.api_key(), KEY);
    for i in 0..20 {
        let (status, body) = fetch(&c, &sim, i, d).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
    }
    sim.set_faults(Faults {
        error_500_ppm: 1_000_000,
        ..Faults::default()
    });
    for i in 0..20 {
        let (status, body) = fetch(&c, &sim, i, d).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error_code(&body), "INTERNAL_ERROR");
    }
    sim.set_faults(Faults::default());
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);
}

#[tokio::test]
async fn retries_of_the_same_account_and_date_draw_faults_afresh() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    sim.set_faults(Faults {
        error_503_ppm: 500_000,
        ..Faults::default()
    });
    let d = date(2026, 10, 5);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..40 {
        seen.insert(fetch(&c, &sim, 1, d).await.0);
    }
    assert!(seen.contains(&StatusCode::OK) && seen.contains(&StatusCode::SERVICE_UNAVAILABLE));
}

#[tokio::test]
async fn faults_can_be_read_and_merged_over_http() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let url = format!("{}/admin/faults", sim.base_url());
    let resp = c
        .put(&url)
        .body(r#"{"error_503_ppm": 1000000, "latency_ms": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        fetch(&c, &sim, 1, date(2026, 10, 5)).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // Omitted fields keep their value.
    c.put(&url)
        .body(r#"{"latency_ms": 0}"#)
        .send()
        .await
        .unwrap();
    let f: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(f["error_503_ppm"], 1_000_000);
    assert_eq!(f["latency_ms"], 0);
    assert_eq!(sim.faults().error_503_ppm, 1_000_000);

    c.put(&url)
        .body(r#"{"error_503_ppm": 0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        fetch(&c, &sim, 1, date(2026, 10, 5)).await.0,
        StatusCode::OK
    );

    let bad = c.put(&url).body("not json").send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_rotated_api_key_makes_the_old_key_401() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let d = date(2026, 10, 5);
    c.put(format!("{}/admin/faults", sim.base_url()))
        .body(r#"{"api_key": "rotated"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(sim.api_key(), "rotated");
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::UNAUTHORIZED);
    let url = balance_url(&sim, &account_id(1), "asOfDate=2026-10-05");
    assert_eq!(get_raw(&c, &url, Some("rotated")).await.0, StatusCode::OK);

    let mut f = sim.faults();
    f.api_key = KEY.to_owned();
    sim.set_faults(f);
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);
}

#[tokio::test]
async fn outages_can_be_toggled_from_the_handle_and_over_http() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let d = date(2026, 10, 5);

    sim.update_faults(|f| f.outage = true);
    assert_eq!(
        fetch(&c, &sim, 1, d).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    sim.end_outage();
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);

    sim.start_outage(Duration::from_secs(60));
    assert_eq!(
        fetch(&c, &sim, 1, d).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let resp = c
        .delete(format!("{}/admin/outage", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);

    let resp = c
        .post(format!("{}/admin/outage?seconds=1", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let f: Value = resp.json().await.unwrap();
    assert!(f["outage_until"].is_string());
    let (status, body) = fetch(&c, &sim, 1, d).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "SERVICE_UNAVAILABLE");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);

    c.post(format!("{}/admin/outage?seconds=60", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        fetch(&c, &sim, 1, d).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    c.post(format!("{}/admin/outage?seconds=0", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);
}

#[tokio::test]
async fn latency_delays_and_hangs_outlast_a_client_timeout() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let d = date(2026, 10, 5);
    sim.update_faults(|f| f.latency_ms = 150);
    let started = Instant::now();
    assert_eq!(fetch(&c, &sim, 1, d).await.0, StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(150));

    sim.set_faults(Faults {
        hang_ppm: 1_000_000,
        hang_ms: 5_000,
        ..Faults::default()
    });
    let err = c
        .get(balance_url(&sim, &account_id(1), "asOfDate=2026-10-05"))
        .header("X-API-Key", KEY)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn stats_count_requests_by_status_and_by_account_and_date() {
    let sim = spawn_with(ProfileMix::only(Profile::Premium)).await;
    let c = client();
    let d = date(2026, 10, 5);
    for _ in 0..3 {
        assert_eq!(fetch(&c, &sim, 5, d).await.0, StatusCode::OK);
    }
    fetch(&c, &sim, 6, d).await;
    fetch(&c, &sim, 500, d).await; // outside the population: 404
    let url = balance_url(&sim, &account_id(5), "asOfDate=2026-10-05");
    assert_eq!(get_raw(&c, &url, None).await.0, StatusCode::UNAUTHORIZED);
    let bad = balance_url(&sim, "nope", "asOfDate=2026-10-05");
    assert_eq!(
        get_raw(&c, &bad, Some(KEY)).await.0,
        StatusCode::BAD_REQUEST
    );
    sim.update_faults(|f| f.outage = true);
    fetch(&c, &sim, 5, d).await;

    let s = sim.stats();
    assert_eq!(s.total, 8);
    assert_eq!(s.status(200), 4);
    assert_eq!(s.status(404), 1);
    assert_eq!(s.status(401), 1);
    assert_eq!(s.status(400), 1);
    assert_eq!(s.status(503), 1);
    // Every attempt counts, whatever the answer.
    assert_eq!(s.requests_for(5, d), 5);
    assert_eq!(s.requests_for(6, d), 1);
    assert_eq!(s.requests_for(5, d.succ_opt().unwrap()), 0);
    assert_eq!(sim.requests_for(5, d), 5);
    assert_eq!(s.distinct_account_dates, 3);

    let stats_url = format!("{}/admin/stats", sim.base_url());
    let v: Value = c
        .get(format!(
            "{stats_url}?accountId={}&asOfDate=2026-10-05",
            account_id(5)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["total"], 8);
    assert_eq!(v["by_status"]["200"], 4);
    assert_eq!(v["requests_for"], 5);

    let resp = c.delete(&stats_url).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(sim.stats().total, 0);
    assert_eq!(sim.requests_for(5, d), 0);
}

#[tokio::test]
async fn the_same_seed_gives_the_same_balances_and_another_seed_different_ones() {
    let config = |seed| SimConfig {
        seed,
        ..SimConfig::default()
    };
    let (a, b, other) = (
        spawn_sim(config(7)).await,
        spawn_sim(config(7)).await,
        spawn_sim(config(8)).await,
    );
    let c = client();
    let d = date(2026, 10, 5);
    let mut differ = 0;
    for i in 0..40 {
        let (from_a, from_b, from_other) = (
            fetch(&c, &a, i, d).await,
            fetch(&c, &b, i, d).await,
            fetch(&c, &other, i, d).await,
        );
        assert_eq!(from_a, from_b);
        differ += u32::from(from_a != from_other);
    }
    assert!(differ > 30, "{differ}");
    assert_eq!(
        a.scenario().qualified_accounts(2026, 10),
        b.scenario().qualified_accounts(2026, 10)
    );
}

#[tokio::test]
async fn unknown_routes_are_json_404s_and_health_answers() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    let (status, body) = get_raw(&c, &format!("{}/nope", sim.base_url()), Some(KEY)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NOT_FOUND");
    let (status, _) = get_raw(&c, &format!("{}/health", sim.base_url()), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn after_shutdown_the_port_refuses_connections() {
    let sim = spawn_sim(SimConfig::default()).await;
    let c = client();
    assert_eq!(
        fetch(&c, &sim, 1, date(2026, 10, 5)).await.0,
        StatusCode::OK
    );
    let url = balance_url(&sim, &account_id(1), "asOfDate=2026-10-05");
    sim.shutdown().await;
    // A fresh client: the old one's pooled connection was closed by the graceful shutdown.
    let err = client()
        .get(&url)
        .header("X-API-Key", KEY)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}
