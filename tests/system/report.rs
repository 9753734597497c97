//! The monthly report against a month seeded straight into Postgres (every reason, every
//! notification status, noise in the neighbouring months): each figure is compared with the same
//! figure computed here, in Rust, from the raw rows; then the three exports. A month without data
//! has no report.
//!
//! `PCN_WRITE_REPORT_EXAMPLE=1` also writes the seeded month's HTML to `docs/report-example.html`.
//!
//! Over 600 lines: the report's system tests, one area per test, sharing one month's fixtures.

use pcn_activities::phone_vault::{Context, PhoneVault};
use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use pcn_tests::{TestDb, customer};
use pcn_worker::report::{
    self, CarrierFigures, DailyRow, DeliveryMetrics, NameCount, Processing, QualificationMetrics,
    ReasonCount, Summary, export,
};
use pcn_workflows::domain::YearMonth;
use rust_decimal::prelude::ToPrimitive as _;
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use sqlx::{PgPool, Row};

/// splitmix64: reproducible variety without a dependency.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const CUSTOMERS: u64 = 360;
/// Bank outages: on these days some customers' checks got no answer.
const OUTAGE_DAYS: [u32; 2] = [3, 17];

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

/// What customer `i`'s month looks like.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Profile {
    Clean,
    /// One day below the threshold and nothing else wrong.
    NearMiss,
    Below,
    /// One day below and one without an answer.
    BelowAndMissing,
    NotFound,
    Invalid,
    /// Monitored from the 10th only.
    JoinedLate,
    /// One day without any row.
    NoRow,
}

fn profile(i: u64) -> Profile {
    match mix(i) % 100 {
        60..=67 => Profile::NearMiss,
        68..=77 => Profile::Below,
        78..=81 => Profile::BelowAndMissing,
        82..=84 => Profile::NotFound,
        85..=87 => Profile::Invalid,
        88..=90 => Profile::JoinedLate,
        91..=93 => Profile::NoRow,
        _ => Profile::Clean,
    }
}

/// The outcome of customer `i`'s check on `day`, `None` for no row.
fn outcome(i: u64, day: u32) -> Option<&'static str> {
    let odd_day = (mix(i + 7) % 28) as u32 + 1;
    let p = profile(i);
    if p == Profile::JoinedLate && day < 10 {
        return None;
    }
    if OUTAGE_DAYS.contains(&day) && mix(i * 31 + u64::from(day)).is_multiple_of(12) {
        return Some("MISSING");
    }
    Some(match p {
        Profile::NearMiss if day == odd_day => "BELOW_THRESHOLD",
        Profile::Below if day % 9 == (i % 9) as u32 => "BELOW_THRESHOLD",
        Profile::BelowAndMissing if day == odd_day => "BELOW_THRESHOLD",
        Profile::BelowAndMissing if day == odd_day + 1 => "MISSING",
        Profile::NotFound => "ACCOUNT_NOT_FOUND",
        Profile::Invalid if day == odd_day => "INVALID_RESPONSE",
        Profile::NoRow if day == odd_day => return None,
        _ => "PASSED",
    })
}

/// Carrier error codes, some more frequent than others (more than ten, so the top ten cuts),
/// with a few that need quoting in CSV and escaping in HTML.
const ERROR_CODES: [&str; 20] = [
    "30003",
    "30003",
    "30003",
    "30005",
    "30005",
    "30006",
    "21211",
    "21211",
    "21614",
    "20429",
    "20429",
    "50001",
    "503",
    "timeout",
    "30008",
    "21610",
    "ERR,\"q\"",
    "ERR,\"q\"",
    "<b>x</b>",
    "=1+1",
];

fn error_code(seed: u64) -> String {
    ERROR_CODES[(mix(seed) % 20) as usize].to_owned()
}

/// One attempt to insert.
struct Attempt {
    attempt: i16,
    status: &'static str,
    error_code: Option<String>,
    submitted_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// One notification to insert, with its attempts.
struct Notification {
    customer_id: String,
    status: &'static str,
    segments: Option<i16>,
    failure_category: Option<&'static str>,
    finished_at: Option<DateTime<Utc>>,
    attempts: Vec<Attempt>,
}

/// The notification of customer `i` (qualified) in `month_start`'s month, attempts included.
fn notification(i: u64, base: DateTime<Utc>) -> Notification {
    let h = mix(i * 7 + 1);
    let status = match h % 1000 {
        0..=809 => "DELIVERED",
        810..=844 => "UNDELIVERABLE",
        845..=869 => "FAILED",
        870..=894 => "OPTED_OUT",
        895..=914 => "CANCELLED",
        915..=934 => "PENDING",
        935..=954 => "WAITING_WINDOW",
        955..=974 => "SUBMITTED",
        _ => "RETRY_WAIT",
    };
    let start = base + Duration::seconds(i as i64 * 7);
    // Whole milliseconds: Postgres keeps microseconds, so the times round-trip exactly.
    let latency = |k: u64| Duration::milliseconds(800 + (mix(i * 13 + k) % 90_000) as i64);
    let at = |n: i16| start + Duration::hours(6 * i64::from(n - 1));
    // A retry's earlier attempt: refused at submission or failed after it.
    let earlier = |n: i16| {
        let rejected = mix(i + u64::from(n as u16)).is_multiple_of(3);
        Attempt {
            attempt: n,
            status: if rejected { "REJECTED" } else { "FAILED" },
            error_code: Some(error_code(i * 100 + u64::from(n as u16))),
            submitted_at: Some(at(n)),
            finished_at: Some(at(n) + latency(u64::from(n as u16))),
        }
    };
    let last = |n: i16, status: &'static str, code: Option<String>| Attempt {
        attempt: n,
        status,
        error_code: code,
        submitted_at: Some(at(n)),
        finished_at: (status != "SUBMITTED").then(|| at(n) + latency(u64::from(n as u16))),
    };
    let mut attempts = Vec::new();
    let mut failure_category = None;
    match status {
        "DELIVERED" => {
            let n = if h.is_multiple_of(7) { 2 } else { 1 };
            if n == 2 {
                attempts.push(earlier(1));
                // The earlier failure's category stays on the row: not a failure of the month.
                failure_category = Some("NETWORK_ERROR");
            }
            attempts.push(last(n, "DELIVERED", None));
        }
        "UNDELIVERABLE" => {
            if h.is_multiple_of(2) {
                attempts.push(last(1, "UNDELIVERABLE", Some(error_code(i))));
                failure_category = Some("INVALID_NUMBER");
            } else {
                attempts.push(earlier(1));
                attempts.push(last(2, "NO_CONFIRMATION", None));
                failure_category = Some("NO_CONFIRMATION");
            }
        }
        "FAILED" => {
            attempts.push(earlier(1));
            attempts.push(earlier(2));
            attempts.push(last(3, "FAILED", Some(error_code(i + 5))));
            failure_category =
                Some(["PROVIDER_ERROR", "CARRIER_REJECT", "CONTENT_FILTERED"][(h % 3) as usize]);
        }
        "CANCELLED" if h.is_multiple_of(2) => attempts.push(last(1, "CANCELLED", None)),
        "SUBMITTED" => {
            if h.is_multiple_of(2) {
                attempts.push(earlier(1));
                attempts.push(last(2, "SUBMITTED", None));
            } else {
                attempts.push(last(1, "SUBMITTED", None));
            }
        }
        "RETRY_WAIT" => {
            attempts.push(earlier(1));
            failure_category = Some("RATE_LIMITED");
        }
        "PENDING" if h.is_multiple_of(2) => {
            // Written before the carrier call, not confirmed yet: not a submitted attempt.
            attempts.push(Attempt {
                attempt: 1,
                status: "SUBMITTING",
                error_code: None,
                submitted_at: None,
                finished_at: None,
            });
        }
        _ => {}
    }
    let finished_at = matches!(
        status,
        "DELIVERED" | "FAILED" | "UNDELIVERABLE" | "OPTED_OUT" | "CANCELLED"
    )
    .then(|| {
        attempts
            .iter()
            .filter_map(|a| a.finished_at)
            .max()
            .unwrap_or(start + Duration::minutes(1))
    });
    let submitted = attempts.iter().any(|a| a.status != "SUBMITTING");
    let segments = if submitted || status == "WAITING_WINDOW" {
        Some(if h.is_multiple_of(3) { 2 } else { 1 })
    } else {
        None
    };
    Notification {
        customer_id: pcn_bank_sim::customer_id(i),
        status,
        segments,
        failure_category,
        finished_at,
        attempts,
    }
}

/// Notifications attempts as stored (`attempts` counts the attempts that reached the carrier).
async fn insert_notifications(pool: &PgPool, month: NaiveDate, all: &[Notification]) {
    let ym = format!("{:04}-{:02}", month.year(), month.month());
    let mut ids = Vec::new();
    let mut workflow_ids = Vec::new();
    let mut statuses = Vec::new();
    let mut counts: Vec<i16> = Vec::new();
    let mut segments = Vec::new();
    let mut categories = Vec::new();
    let mut finished = Vec::new();
    for n in all {
        ids.push(n.customer_id.clone());
        workflow_ids.push(format!("sms/{ym}/{}", n.customer_id));
        statuses.push(n.status.to_owned());
        let submitted = n
            .attempts
            .iter()
            .filter(|a| a.status != "SUBMITTING")
            .count();
        counts.push(submitted as i16);
        segments.push(n.segments);
        categories.push(n.failure_category.map(str::to_owned));
        finished.push(n.finished_at);
    }
    sqlx::query(
        "INSERT INTO notifications (month, customer_id, workflow_id, status, attempts, segments,
                                    failure_category, finished_at)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::int2[], $6::int2[],
                                  $7::text[], $8::timestamptz[])",
    )
    .bind(month)
    .bind(&ids)
    .bind(&workflow_ids)
    .bind(&statuses)
    .bind(&counts)
    .bind(&segments)
    .bind(&categories)
    .bind(&finished)
    .execute(pool)
    .await
    .expect("insert notifications");

    let mut a_ids = Vec::new();
    let mut a_nums = Vec::new();
    let mut refs = Vec::new();
    let mut a_statuses = Vec::new();
    let mut carrier_ids = Vec::new();
    let mut codes = Vec::new();
    let mut submitted = Vec::new();
    let mut a_finished = Vec::new();
    let mut sealed = Vec::new();
    let vault = PhoneVault::development();
    for n in all {
        for a in &n.attempts {
            a_ids.push(n.customer_id.clone());
            a_nums.push(a.attempt);
            let r = format!("sms/{ym}/{}#{}", n.customer_id, a.attempt);
            let phone = pcn_workflows::domain::Phone::parse("+972500000000").unwrap();
            sealed.push(vault.seal(&phone, Context::Attempt(&r)).sealed);
            let has_id = !matches!(a.status, "SUBMITTING" | "REJECTED");
            carrier_ids.push(has_id.then(|| format!("SM-{r}")));
            refs.push(r);
            a_statuses.push(a.status.to_owned());
            codes.push(a.error_code.clone());
            submitted.push(a.submitted_at);
            a_finished.push(a.finished_at);
        }
    }
    sqlx::query(
        "INSERT INTO sms_attempts (month, customer_id, attempt, message_ref, carrier,
                                   phone_key_id, phone_sealed, body, status, carrier_message_id,
                                   error_code, submitted_at, finished_at)
         SELECT $1, u.customer_id, u.attempt, u.message_ref, 'generic', $10, u.sealed,
                'You qualified', u.status, u.carrier_message_id, u.error_code, u.submitted_at,
                u.finished_at
           FROM UNNEST($2::text[], $3::int2[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::timestamptz[], $9::timestamptz[], $11::bytea[])
                AS u(customer_id, attempt, message_ref, status, carrier_message_id, error_code,
                     submitted_at, finished_at, sealed)",
    )
    .bind(month)
    .bind(&a_ids)
    .bind(&a_nums)
    .bind(&refs)
    .bind(&a_statuses)
    .bind(&carrier_ids)
    .bind(&codes)
    .bind(&submitted)
    .bind(&a_finished)
    .bind(vault.newest_key())
    .bind(&sealed)
    .execute(pool)
    .await
    .expect("insert attempts");
}

/// Balance checks of `customers` on `dates` as `outcome(i, day)` says.
async fn insert_checks(pool: &PgPool, customers: &[u64], dates: &[NaiveDate], outcomes: bool) {
    let (mut ids, mut days, mut results, mut amounts) = (vec![], vec![], vec![], vec![]);
    for &i in customers {
        for &d in dates {
            let result = if outcomes {
                outcome(i, d.day())
            } else {
                Some("PASSED")
            };
            let Some(result) = result else { continue };
            ids.push(pcn_bank_sim::customer_id(i));
            days.push(d);
            results.push(result.to_owned());
            amounts.push(match result {
                "PASSED" => Some(dec!(10000.00) + Decimal::new((mix(i) % 500_000) as i64, 2)),
                "BELOW_THRESHOLD" => Some(dec!(9999.99)),
                _ => None,
            });
        }
    }
    sqlx::query(
        "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
                                     threshold, fetched_at, workflow_id, run_id)
         SELECT u.customer_id, u.business_date, u.outcome, u.amount,
                CASE WHEN u.amount IS NULL THEN NULL ELSE 'NIS' END, 10000.00,
                u.business_date + time '20:00', 'daily/' || u.business_date, 'run-1'
           FROM UNNEST($1::text[], $2::date[], $3::text[], $4::numeric[])
                AS u(customer_id, business_date, outcome, amount)",
    )
    .bind(&ids)
    .bind(&days)
    .bind(&results)
    .bind(&amounts)
    .execute(pool)
    .await
    .expect("insert balance checks");
}

async fn insert_sweep(pool: &PgPool, date: NaiveDate, completed_at: DateTime<Utc>) {
    sqlx::query(
        "INSERT INTO daily_sweeps (business_date, checked, passed, below_threshold, missing,
                                   not_found, invalid, completed_at, workflow_id, run_id)
         VALUES ($1, 0, 0, 0, 0, 0, 0, $2, 'daily/' || $1, 'run-1')",
    )
    .bind(date)
    .bind(completed_at)
    .execute(pool)
    .await
    .expect("insert sweep");
}

/// One decision to insert.
struct Decision {
    customer_id: String,
    reason: &'static str,
    days: [i16; 6],
    threshold: Decimal,
    decided_at: DateTime<Utc>,
}

async fn insert_decisions(pool: &PgPool, month: NaiveDate, all: &[Decision]) {
    let mut cols: [Vec<i16>; 6] = Default::default();
    for d in all {
        for (c, v) in cols.iter_mut().zip(d.days) {
            c.push(v);
        }
    }
    sqlx::query(
        "INSERT INTO qualifications (month, customer_id, qualified, reason, days_in_month,
                                     days_passed, days_below, days_missing, days_not_found,
                                     days_invalid, threshold, decided_at, workflow_id, run_id)
         SELECT $1, u.customer_id, u.reason = 'QUALIFIED', u.reason, u.d0, u.d1, u.d2, u.d3, u.d4,
                u.d5, u.threshold, u.decided_at, 'qualification/test', 'run-1'
           FROM UNNEST($2::text[], $3::text[], $4::int2[], $5::int2[], $6::int2[], $7::int2[],
                       $8::int2[], $9::int2[], $10::numeric[], $11::timestamptz[])
                AS u(customer_id, reason, d0, d1, d2, d3, d4, d5, threshold, decided_at)",
    )
    .bind(month)
    .bind(
        all.iter()
            .map(|d| d.customer_id.clone())
            .collect::<Vec<_>>(),
    )
    .bind(all.iter().map(|d| d.reason.to_owned()).collect::<Vec<_>>())
    .bind(&cols[0])
    .bind(&cols[1])
    .bind(&cols[2])
    .bind(&cols[3])
    .bind(&cols[4])
    .bind(&cols[5])
    .bind(all.iter().map(|d| d.threshold).collect::<Vec<_>>())
    .bind(all.iter().map(|d| d.decided_at).collect::<Vec<_>>())
    .execute(pool)
    .await
    .expect("insert decisions");
}

/// The decision for customer `i` from its checks, by the documented precedence.
fn decide(i: u64, month: YearMonth, decided_at: DateTime<Utc>) -> Decision {
    let (mut passed, mut below, mut missing, mut not_found, mut invalid) = (0, 0, 0, 0, 0);
    for d in month.days() {
        match outcome(i, d.as_naive().day()) {
            Some("PASSED") => passed += 1,
            Some("BELOW_THRESHOLD") => below += 1,
            Some("ACCOUNT_NOT_FOUND") => not_found += 1,
            Some("INVALID_RESPONSE") => invalid += 1,
            _ => missing += 1,
        }
    }
    let reason = if profile(i) == Profile::JoinedLate {
        "NOT_MONITORED_WHOLE_MONTH"
    } else if below > 0 {
        "BELOW_THRESHOLD"
    } else if not_found > 0 {
        "ACCOUNT_NOT_FOUND"
    } else if invalid > 0 {
        "INVALID_RESPONSE"
    } else if missing > 0 {
        "MISSING_DATA"
    } else {
        "QUALIFIED"
    };
    Decision {
        customer_id: pcn_bank_sim::customer_id(i),
        reason,
        days: [31, passed, below, missing, not_found, invalid],
        // One decision under a later, higher threshold: the report shows the largest.
        threshold: if i == 5 {
            dec!(12000.00)
        } else {
            dec!(10000.00)
        },
        decided_at,
    }
}

/// Seeds October 2026 in full, with September and November noise around it.
async fn seed(pool: &PgPool) {
    let october = YearMonth::parse("2026-10").unwrap();
    let september = october.prev();
    let since = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let late = NaiveDate::from_ymd_opt(2026, 10, 10).unwrap();
    let customers: Vec<_> = (0..CUSTOMERS)
        .map(|i| {
            customer(
                i,
                if profile(i) == Profile::JoinedLate {
                    late
                } else {
                    since
                },
            )
        })
        .collect();
    pcn_activities::customers::upsert(
        pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &customers,
        "test",
    )
    .await
    .expect("customers");
    let all: Vec<u64> = (0..CUSTOMERS).collect();
    let days: Vec<NaiveDate> = october.days().map(|d| d.as_naive()).collect();
    insert_checks(pool, &all, &days, true).await;
    for (n, d) in (0..).zip(&days) {
        let completed = d.and_hms_opt(21, 0, 0).unwrap().and_utc() + Duration::minutes(n * 3);
        insert_sweep(pool, *d, completed).await;
    }
    // Noise: the last day of September and the first of November.
    let sep30 = september.last_day().as_naive();
    let nov1 = october.next().first_day().as_naive();
    insert_checks(pool, &all, &[sep30], false).await;
    insert_checks(pool, &all[..50], &[nov1], false).await;
    insert_sweep(pool, sep30, utc(2026, 9, 30, 20, 0, 0)).await;
    insert_sweep(pool, nov1, utc(2026, 11, 1, 22, 0, 0)).await;

    let decisions: Vec<Decision> = all
        .iter()
        .map(|&i| {
            decide(
                i,
                october,
                utc(2026, 11, 1, 0, 5, 0) + Duration::milliseconds(i as i64 * 3),
            )
        })
        .collect();
    insert_decisions(pool, october.first_day().as_naive(), &decisions).await;
    let september_decisions: Vec<Decision> = all
        .iter()
        .map(|&i| Decision {
            customer_id: pcn_bank_sim::customer_id(i),
            reason: "QUALIFIED",
            days: [30, 30, 0, 0, 0, 0],
            threshold: dec!(15000.00),
            decided_at: utc(2026, 12, 1, 0, 0, 0),
        })
        .collect();
    insert_decisions(pool, september.first_day().as_naive(), &september_decisions).await;

    // Every qualified customer has a notification but a few the fan-out has not reached yet.
    let notifications: Vec<Notification> = decisions
        .iter()
        .zip(&all)
        .filter(|(d, i)| d.reason == "QUALIFIED" && !mix(**i + 3).is_multiple_of(40))
        .map(|(_, &i)| notification(i, utc(2026, 11, 1, 8, 0, 0)))
        .collect();
    insert_notifications(pool, october.first_day().as_naive(), &notifications).await;
    let noise: Vec<Notification> = all[..40]
        .iter()
        .map(|&i| notification(i, utc(2026, 10, 1, 8, 0, 0)))
        .collect();
    insert_notifications(pool, september.first_day().as_naive(), &noise).await;
    insert_evidence(pool, october).await;
    insert_evidence(pool, september).await;
}

/// In-doubt resolutions of `month` whose kind starts with `kind`, counted in Rust.
async fn resolutions_of(pool: &PgPool, month: NaiveDate, kind: &str) -> u64 {
    let rows: Vec<(NaiveDate, String)> =
        sqlx::query_as("SELECT month, resolution FROM in_doubt_resolutions")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.iter()
        .filter(|(m, r)| *m == month && r.starts_with(kind))
        .count() as u64
}

/// Delivery events flagged FOREIGN whose reference starts with `prefix`, counted in Rust.
async fn foreign_reports_of(pool: &PgPool, prefix: &str) -> u64 {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT message_ref, flag FROM delivery_events")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.iter()
        .filter(|(r, f)| r.starts_with(prefix) && f.as_deref() == Some("FOREIGN"))
        .count() as u64
}

/// In-doubt resolutions and delivery events (some flagged FOREIGN) for the first attempts of
/// `month`'s notifications: every kind, and noise around it.
async fn insert_evidence(pool: &PgPool, month: YearMonth) {
    let first = month.first_day().as_naive();
    let refs: Vec<(String, i16, String)> = sqlx::query_as(
        "SELECT customer_id, attempt, message_ref FROM sms_attempts
          WHERE month = $1 ORDER BY customer_id, attempt LIMIT 24",
    )
    .bind(first)
    .fetch_all(pool)
    .await
    .unwrap();
    let kinds = [
        "ADOPTED_CALLBACK",
        "ADOPTED_SIGNAL",
        "ADOPTED_LOOKUP",
        "RESUBMITTED",
        "ABANDONED",
    ];
    for (k, (customer, attempt, reference)) in refs.iter().enumerate() {
        sqlx::query(
            "INSERT INTO in_doubt_resolutions (month, customer_id, attempt, message_ref, submission,
                                               resolution, waited, workflow_id, run_id)
             VALUES ($1, $2, $3, $4, 1, $5, interval '10 minutes', 'sms/x', 'r')",
        )
        .bind(first)
        .bind(customer)
        .bind(attempt)
        .bind(reference)
        .bind(kinds[k % kinds.len()])
        .execute(pool)
        .await
        .expect("insert resolution");
        sqlx::query(
            "INSERT INTO delivery_events (carrier, carrier_message_id, status, message_ref,
                                          workflow_id, attempt, raw, signal_state, flag)
             VALUES ('generic', $1, 'DELIVERED', $2, 'sms/x', $3, '{}', 'NOT_SIGNALLED', $4)",
        )
        .bind(format!("TRK-evidence-{reference}"))
        .bind(reference)
        .bind(attempt)
        .bind((k % 3 == 0).then_some("FOREIGN"))
        .execute(pool)
        .await
        .expect("insert event");
    }
}

/// `part` in percent of `whole`, to hundredths, half up — integer arithmetic only.
fn pct(part: u64, whole: u64) -> Decimal {
    if whole == 0 {
        return Decimal::ZERO;
    }
    Decimal::new(((20_000 * part + whole) / (2 * whole)) as i64, 2)
}

/// `percentile_cont(p)` of sorted microsecond values, in seconds rounded to 0.1 half up.
fn percentile_secs(sorted_us: &[i64], p: Decimal) -> Option<Decimal> {
    let last = sorted_us.len().checked_sub(1)?;
    let pos = p * Decimal::from(last);
    let lo = pos.floor();
    let (i, j) = (lo.to_usize()?, pos.ceil().to_usize()?);
    let us = Decimal::from(sorted_us[i]) + (pos - lo) * Decimal::from(sorted_us[j] - sorted_us[i]);
    Some(
        (us / Decimal::from(1_000_000))
            .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero),
    )
}

/// Largest first, ties by name (byte order).
fn ranked(counts: BTreeMap<String, u64>) -> Vec<NameCount> {
    let mut v: Vec<NameCount> = counts
        .into_iter()
        .map(|(name, count)| NameCount { name, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v
}

/// Checks of outcome column `slot` over the month.
fn check_errors_of(per_day: &BTreeMap<NaiveDate, [u64; 5]>, slot: usize) -> u64 {
    per_day.values().map(|c| c[slot]).sum()
}

fn in_month(d: NaiveDate, m: YearMonth) -> bool {
    d.year() == m.year() && d.month() == m.month()
}

#[tokio::test]
async fn the_monthly_report_matches_the_rows_it_summarises() {
    let db = TestDb::new().await;
    seed(&db.pool).await;
    let month = YearMonth::parse("2026-10").unwrap();
    let first = month.first_day().as_naive();

    let started = Instant::now();
    let r = report::build(&db.pool, month)
        .await
        .expect("report")
        .expect("October has data");
    let took = started.elapsed();
    assert!(took.as_secs() < 5, "report took {took:?}");
    assert_eq!(r.month, month);
    assert!((Utc::now() - r.generated_at).num_seconds().abs() < 120);

    // --- Everything again, from the raw rows, filtered and counted here. -------------------
    let pool = &db.pool;
    let decisions: Vec<_> = sqlx::query(
        "SELECT month, qualified, reason, days_below, days_missing, days_not_found, days_invalid,
                threshold, decided_at FROM qualifications",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .filter(|row| row.get::<NaiveDate, _>("month") == first)
    .collect();
    let decided = decisions.len() as u64;
    let qualified = decisions
        .iter()
        .filter(|d| d.get::<bool, _>("qualified"))
        .count() as u64;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let mut near_misses = 0;
    for d in decisions.iter().filter(|d| !d.get::<bool, _>("qualified")) {
        let reason: String = d.get("reason");
        let one_day = d.get::<i16, _>("days_below") == 1
            && d.get::<i16, _>("days_missing") == 0
            && d.get::<i16, _>("days_not_found") == 0
            && d.get::<i16, _>("days_invalid") == 0;
        if reason == "BELOW_THRESHOLD" && one_day {
            near_misses += 1;
        }
        *reasons.entry(reason).or_default() += 1;
    }
    assert_eq!(
        reasons.len(),
        5,
        "the seed covers every reason: {reasons:?}"
    );
    let expected_reasons: Vec<ReasonCount> = ranked(reasons)
        .into_iter()
        .map(|n| ReasonCount {
            percent: pct(n.count, decided),
            reason: n.name,
            count: n.count,
        })
        .collect();
    let threshold = decisions
        .iter()
        .map(|d| d.get::<Decimal, _>("threshold"))
        .max();
    let decided_at = decisions
        .iter()
        .map(|d| d.get::<DateTime<Utc>, _>("decided_at"))
        .max();
    assert!(near_misses > 0);
    assert_eq!(
        r.qualification,
        QualificationMetrics {
            decided,
            qualified,
            not_qualified: decided - qualified,
            reasons: expected_reasons,
            near_misses,
            threshold,
        }
    );
    assert_eq!(r.qualification.threshold, Some(dec!(12000.00)));

    let mut per_day: BTreeMap<NaiveDate, [u64; 5]> = BTreeMap::new();
    for row in sqlx::query("SELECT business_date, outcome FROM balance_checks")
        .fetch_all(pool)
        .await
        .unwrap()
    {
        let date: NaiveDate = row.get("business_date");
        if !in_month(date, month) {
            continue;
        }
        let slot = match row.get::<&str, _>("outcome") {
            "PASSED" => 0,
            "BELOW_THRESHOLD" => 1,
            "MISSING" => 2,
            "ACCOUNT_NOT_FOUND" => 3,
            _ => 4,
        };
        per_day.entry(date).or_default()[slot] += 1;
    }
    let expected_daily: Vec<DailyRow> = per_day
        .iter()
        .map(|(&date, c)| {
            let checked = c.iter().sum();
            DailyRow {
                date,
                checked,
                passed: c[0],
                below_threshold: c[1],
                missing: c[2],
                not_found: c[3],
                invalid: c[4],
                pass_rate: pct(c[0], checked),
            }
        })
        .collect();
    assert_eq!(expected_daily.len(), 31);
    assert_eq!(r.daily, expected_daily);
    let checked: u64 = per_day.values().flatten().sum();
    let check_errors: u64 = per_day.values().map(|c| c[2] + c[3] + c[4]).sum();

    let notifications: Vec<_> = sqlx::query(
        "SELECT month, customer_id, created_at, status, attempts, segments, failure_category,
                finished_at
           FROM notifications",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .filter(|row| row.get::<NaiveDate, _>("month") == first)
    .collect();
    let with_status = |s: &[&str]| {
        notifications
            .iter()
            .filter(|n| s.contains(&n.get::<&str, _>("status")))
            .count() as u64
    };
    let statuses = [
        "PENDING",
        "WAITING_WINDOW",
        "SUBMITTED",
        "RETRY_WAIT",
        "DELIVERED",
        "FAILED",
        "UNDELIVERABLE",
        "OPTED_OUT",
        "CANCELLED",
    ];
    for s in statuses {
        assert!(with_status(&[s]) > 0, "the seed covers {s}");
    }
    let submitted_rows: Vec<_> = notifications
        .iter()
        .filter(|n| n.get::<i16, _>("attempts") >= 1)
        .collect();
    let mut categories: BTreeMap<String, u64> = BTreeMap::new();
    for n in &notifications {
        if let Some(c) = n.get::<Option<String>, _>("failure_category")
            && n.get::<&str, _>("status") != "DELIVERED"
        {
            *categories.entry(c).or_default() += 1;
        }
    }

    let attempts: Vec<_> = sqlx::query(
        "SELECT month, customer_id, carrier, attempt, status, carrier_message_id, error_code,
                submitted_at, finished_at
           FROM sms_attempts",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .filter(|row| row.get::<NaiveDate, _>("month") == first)
    .collect();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut latencies = Vec::new();
    for a in &attempts {
        if let Some(code) = a.get::<Option<String>, _>("error_code") {
            *codes.entry(code).or_default() += 1;
        }
        if a.get::<&str, _>("status") == "DELIVERED" {
            let took = a.get::<DateTime<Utc>, _>("finished_at")
                - a.get::<DateTime<Utc>, _>("submitted_at");
            latencies.push(took.num_microseconds().unwrap());
        }
    }
    latencies.sort_unstable();
    // Fan-out (the notification row) to the first submission.
    let created: BTreeMap<String, DateTime<Utc>> = notifications
        .iter()
        .map(|n| (n.get("customer_id"), n.get("created_at")))
        .collect();
    let mut waits: Vec<i64> = attempts
        .iter()
        .filter(|a| a.get::<i16, _>("attempt") == 1)
        .filter_map(|a| {
            let at = a.get::<Option<DateTime<Utc>>, _>("submitted_at")?;
            let from = created.get(&a.get::<String, _>("customer_id"))?;
            (at - *from).num_microseconds()
        })
        .collect();
    waits.sort_unstable();
    assert!(!waits.is_empty());
    // By carrier.
    let mut by_carrier: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for a in &attempts {
        let c = by_carrier.entry(a.get("carrier")).or_default();
        let status = a.get::<&str, _>("status");
        c[0] += 1;
        c[1] += u64::from(a.get::<Option<String>, _>("carrier_message_id").is_some());
        c[2] += u64::from(status == "DELIVERED");
        c[3] += u64::from(matches!(
            status,
            "REJECTED" | "FAILED" | "UNDELIVERABLE" | "NO_CONFIRMATION"
        ));
    }
    let expected_carriers: Vec<CarrierFigures> = by_carrier
        .into_iter()
        .map(|(carrier, c)| CarrierFigures {
            carrier,
            attempts: c[0],
            accepted: c[1],
            delivered: c[2],
            failed: c[3],
        })
        .collect();
    assert!(codes.len() > 10, "the seed has more codes than the top ten");
    let mut top_codes = ranked(codes);
    top_codes.truncate(10);

    let delivered = with_status(&["DELIVERED"]);
    let expected_delivery = DeliveryMetrics {
        qualified,
        notifications: notifications.len() as u64,
        submitted: submitted_rows.len() as u64,
        delivered,
        failed: with_status(&["FAILED"]),
        undeliverable: with_status(&["UNDELIVERABLE"]),
        pending: with_status(&["PENDING", "WAITING_WINDOW", "SUBMITTED", "RETRY_WAIT"]),
        opted_out: with_status(&["OPTED_OUT"]),
        cancelled: with_status(&["CANCELLED"]),
        messages_sent: attempts
            .iter()
            .filter(|a| a.get::<Option<String>, _>("carrier_message_id").is_some())
            .count() as u64,
        delivered_first_attempt: attempts
            .iter()
            .filter(|a| {
                a.get::<i16, _>("attempt") == 1 && a.get::<&str, _>("status") == "DELIVERED"
            })
            .count() as u64,
        segments_total: submitted_rows
            .iter()
            .map(|n| n.get::<Option<i16>, _>("segments").unwrap_or(0) as u64)
            .sum(),
        in_doubt_adopted: resolutions_of(pool, first, "ADOPTED_").await,
        in_doubt_resubmitted: resolutions_of(pool, first, "RESUBMITTED").await,
        in_doubt_abandoned: resolutions_of(pool, first, "ABANDONED").await,
        foreign_reports: foreign_reports_of(pool, "sms/2026-10/").await,
        content_filtered: notifications
            .iter()
            .filter(|n| {
                n.get::<Option<String>, _>("failure_category").as_deref()
                    == Some("CONTENT_FILTERED")
            })
            .count() as u64,
    };
    assert!(expected_delivery.in_doubt_adopted > 0 && expected_delivery.in_doubt_resubmitted > 0);
    assert!(expected_delivery.foreign_reports > 0 && expected_delivery.content_filtered > 0);
    assert_eq!(r.delivery, expected_delivery);
    assert!(expected_delivery.qualified > expected_delivery.notifications);
    assert_eq!(r.failure_categories, ranked(categories));
    assert_eq!(r.top_error_codes, top_codes);
    assert_eq!(r.carriers, expected_carriers);

    assert_eq!(
        r.summary,
        Summary {
            customers_monitored: decided,
            qualified,
            qualification_rate: pct(qualified, decided),
            notifications: notifications.len() as u64,
            delivered,
            delivery_rate: pct(delivered, submitted_rows.len() as u64),
        }
    );

    let sweeps: Vec<DateTime<Utc>> =
        sqlx::query("SELECT business_date, completed_at FROM daily_sweeps")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .filter(|row| in_month(row.get("business_date"), month))
            .map(|row| row.get("completed_at"))
            .collect();
    let rejected = attempts
        .iter()
        .filter(|a| a.get::<&str, _>("status") == "REJECTED")
        .count() as u64;
    assert!(rejected > 0);
    assert_eq!(
        r.processing,
        Processing {
            days_swept: per_day.len() as u64,
            first_sweep_at: sweeps.iter().min().copied(),
            last_sweep_at: sweeps.iter().max().copied(),
            decided_at,
            first_submission_at: attempts
                .iter()
                .filter_map(|a| a.get::<Option<DateTime<Utc>>, _>("submitted_at"))
                .min(),
            last_final_at: notifications
                .iter()
                .filter_map(|n| n.get::<Option<DateTime<Utc>>, _>("finished_at"))
                .max(),
            delivery_latency_p50_secs: percentile_secs(&latencies, dec!(0.5)),
            delivery_latency_p95_secs: percentile_secs(&latencies, dec!(0.95)),
            submission_wait_p50_secs: percentile_secs(&waits, dec!(0.5)),
            submission_wait_p95_secs: percentile_secs(&waits, dec!(0.95)),
            check_error_rate: pct(check_errors, checked),
            submission_reject_rate: pct(rejected, attempts.len() as u64),
        }
    );

    // --- Recommendations name the figures. ------------------------------------------------
    let recs = r.recommendations.join("\n");
    let outage_days: Vec<String> = per_day
        .iter()
        .filter(|(_, c)| c[2] > 0 && c[2] * 100 >= c.iter().sum::<u64>())
        .map(|(d, _)| d.to_string())
        .collect();
    assert!(outage_days.contains(&"2026-10-03".to_owned()));
    assert!(outage_days.contains(&"2026-10-17".to_owned()));
    assert!(
        recs.contains(&format!(
            "{} balance checks got no answer from core banking; on {} day(s) that was 1% or \
             more of the day's checks: check core-banking availability on {}.",
            check_errors_of(&per_day, 2),
            outage_days.len(),
            outage_days.join(", ")
        )),
        "{recs}"
    );
    assert!(recs.contains(&format!("{near_misses} customers missed qualification")));
    assert!(recs.contains(&format!(
        "{} notifications are still in flight",
        expected_delivery.pending
    )));
    let top = &r.failure_categories[0];
    assert!(recs.contains(&format!("{} ({} notifications)", top.name, top.count)));
    assert!(!recs.contains("No issues found."));

    // --- Exports. ----------------------------------------------------------------------------
    let csv = export::csv(&r);
    assert!(csv.starts_with("section,metric,value\r\nreport,month,2026-10\r\n"));
    assert!(csv.contains(&format!("summary,customers_monitored,{decided}\r\n")));
    assert!(csv.contains(&format!(
        "summary,qualification_rate,{}\r\n",
        pct(qualified, decided)
    )));
    let daily_part = csv
        .split("\r\n\r\n")
        .nth(1)
        .expect("the daily table follows an empty line");
    assert_eq!(daily_part.lines().count(), 1 + 31);
    for code in &r.top_error_codes {
        let mut field = code.name.clone();
        if field.starts_with('=') {
            field.insert(0, '\'');
        }
        if field.contains([',', '"']) {
            field = format!("\"{}\"", field.replace('"', "\"\""));
        }
        assert!(
            csv.contains(&format!("top_error_codes,{field},{}\r\n", code.count)),
            "{field}"
        );
    }

    let html = export::html(&r);
    assert!(html.contains("October 2026"));
    assert_eq!(html.matches("<svg").count(), 3);
    for code in &r.top_error_codes {
        let escaped = code
            .name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;");
        assert!(html.contains(&escaped), "{escaped}");
    }
    assert!(!html.contains("<b>x</b>"));

    let xlsx = export::xlsx(&r).expect("xlsx");
    assert!(xlsx.starts_with(b"PK\x03\x04") && xlsx.len() > 5_000);

    if std::env::var_os("PCN_WRITE_REPORT_EXAMPLE").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        std::fs::write(docs.join("report-example.html"), &html).expect("write the example");
    }
}

#[tokio::test]
async fn a_month_without_data_has_no_report() {
    let db = TestDb::new().await;
    seed(&db.pool).await;
    // August has nothing; the seeded neighbours of October do not leak into it.
    let august = YearMonth::parse("2026-08").unwrap();
    assert_eq!(report::build(&db.pool, august).await.unwrap(), None);
    let december = YearMonth::parse("2026-12").unwrap();
    assert_eq!(report::build(&db.pool, december).await.unwrap(), None);
}
