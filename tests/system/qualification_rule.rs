//! The qualification rule on generated months, against Postgres, compared with a straightforward
//! computation written independently here.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use pcn_activities::qualify::qualify_month;
use pcn_tests::{TestDb, customer};
use pcn_workflows::contracts::{QualifyInput, RunRef};
use pcn_workflows::domain::{Nis, YearMonth};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

/// A day of generated evidence.
#[derive(Clone, Copy, Debug)]
enum Day {
    Amount(Decimal),
    NoRow,
    Missing,
    NotFound,
    Invalid,
}

/// splitmix64: a reproducible generator, no dependency.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn generate(i: u64, day: u32) -> Day {
    let h = mix(i * 1_000 + u64::from(day));
    // Most customers are clean premium or clean below; some get one odd day.
    let kind = mix(i) % 10;
    let odd_day = (mix(i + 7) % 28) as u32 + 1;
    match kind {
        0..=3 => Day::Amount(dec!(15000.00) + Decimal::new((h % 1_000_000) as i64, 2)),
        4 => Day::Amount(dec!(15000.00)),
        5 if day == odd_day => Day::Amount(dec!(14999.99)),
        5 => Day::Amount(dec!(15000.00)),
        6 if day == odd_day => {
            [Day::NoRow, Day::Missing, Day::NotFound, Day::Invalid][(h % 4) as usize]
        }
        6 => Day::Amount(dec!(20000.00)),
        _ => Day::Amount(Decimal::new((h % 1_500_000) as i64, 2)),
    }
}

fn expected_qualified(days: &[Day], monitored_from_first: bool) -> bool {
    monitored_from_first
        && days
            .iter()
            .all(|d| matches!(d, Day::Amount(a) if *a >= dec!(15000.00)))
}

async fn run_month(month: YearMonth) {
    let db = TestDb::new().await;
    let n: u64 = 400;
    let first = month.first_day().as_naive();
    let mut expected = BTreeMap::new();
    let mut customers = Vec::new();
    for i in 0..n {
        // Every 25th customer joins on the 2nd or later of the month.
        let since = if i % 25 == 3 {
            first.with_day(2 + (i % 20) as u32).unwrap()
        } else {
            NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
        };
        customers.push(customer(i, since));
        let days: Vec<Day> = month
            .days()
            .map(|d| {
                if d.as_naive() < since {
                    Day::NoRow
                } else {
                    generate(i, d.as_naive().day())
                }
            })
            .collect();
        expected.insert(
            pcn_bank_sim::customer_id(i),
            (expected_qualified(&days, since <= first), days),
        );
    }
    pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &customers,
        "test",
    )
    .await
    .unwrap();
    for (customer_id, (_, days)) in &expected {
        for (date, day) in month.days().zip(days) {
            let (outcome, amount) = match day {
                Day::NoRow => continue,
                Day::Amount(a) if *a >= dec!(15000.00) => ("PASSED", Some(*a)),
                Day::Amount(a) => ("BELOW_THRESHOLD", Some(*a)),
                Day::Missing => ("MISSING", None),
                Day::NotFound => ("ACCOUNT_NOT_FOUND", None),
                Day::Invalid => ("INVALID_RESPONSE", None),
            };
            sqlx::query(
                "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
                     threshold, fetched_at, workflow_id, run_id)
                 VALUES ($1, $2, $3, $4, CASE WHEN $4::numeric IS NULL THEN NULL ELSE 'NIS' END,
                         15000, now(), 'test', 'test')",
            )
            .bind(customer_id)
            .bind(date.as_naive())
            .bind(outcome)
            .bind(amount)
            .execute(&db.pool)
            .await
            .unwrap();
        }
    }

    // The trigger-kept tallies agree with a recount of the evidence.
    let disagreeing: i64 = sqlx::query_scalar(
        "WITH recount AS (
             SELECT date_trunc('month', business_date)::date AS month, customer_id,
                    count(*) FILTER (WHERE outcome = 'PASSED') AS passed,
                    count(*) FILTER (WHERE outcome = 'BELOW_THRESHOLD') AS below,
                    count(*) FILTER (WHERE outcome = 'MISSING') AS missing,
                    count(*) FILTER (WHERE outcome = 'ACCOUNT_NOT_FOUND') AS not_found,
                    count(*) FILTER (WHERE outcome = 'INVALID_RESPONSE') AS invalid
               FROM balance_checks GROUP BY 1, 2
         ),
         tallies AS (
             SELECT month, customer_id, passed, below, missing, not_found, invalid
               FROM monthly_tallies
         )
         SELECT count(*) FROM (
             (SELECT * FROM tallies EXCEPT SELECT * FROM recount)
             UNION ALL
             (SELECT * FROM recount EXCEPT SELECT * FROM tallies)
         ) d",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(disagreeing, 0, "tallies match the checks");

    let input = QualifyInput {
        month,
        threshold: Nis::from_whole(15_000),
        run: RunRef {
            workflow_id: format!("qualification/{month}"),
            run_id: "r1".into(),
        },
    };
    let summary = qualify_month(&db.pool, &input).await.unwrap();
    assert_eq!(summary.customers, n);
    assert_eq!(summary.written_now, n);

    let decided = pcn_tests::qualified_in_db(&db.pool, month).await;
    let want: Vec<String> = expected
        .iter()
        .filter(|(_, (q, _))| *q)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(decided, want, "qualified set of {month}");
    assert!(
        !want.is_empty() && want.len() < n as usize,
        "a meaningful mix in {month}"
    );

    // Each reason is the first failure in the documented order.
    let rows: Vec<(String, String, i16)> = sqlx::query_as(
        "SELECT customer_id, reason, days_passed FROM qualifications WHERE month = $1",
    )
    .bind(month.first_day().as_naive())
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for (customer_id, reason, passed) in rows {
        let (qualified, days) = &expected[&customer_id];
        let count = |f: fn(&Day) -> bool| days.iter().filter(|d| f(d)).count();
        let want_passed = count(|d| matches!(d, Day::Amount(a) if *a >= dec!(15000.00)));
        assert_eq!(passed as usize, want_passed, "{customer_id}");
        let want_reason = if !customers
            .iter()
            .find(|c| c.customer_id.as_str() == customer_id)
            .map(|c| c.monitored_since.as_naive() <= first)
            .unwrap()
        {
            "NOT_MONITORED_WHOLE_MONTH"
        } else if *qualified {
            "QUALIFIED"
        } else if count(|d| matches!(d, Day::Amount(a) if *a < dec!(15000.00))) > 0 {
            "BELOW_THRESHOLD"
        } else if count(|d| matches!(d, Day::NotFound)) > 0 {
            "ACCOUNT_NOT_FOUND"
        } else if count(|d| matches!(d, Day::Invalid)) > 0 {
            "INVALID_RESPONSE"
        } else {
            "MISSING_DATA"
        };
        assert_eq!(reason, want_reason, "{customer_id}");
    }

    // Idempotent: a re-run writes nothing and reports the same decision.
    let again = qualify_month(&db.pool, &input).await.unwrap();
    assert_eq!(again.written_now, 0);
    assert_eq!(again.qualified, summary.qualified);
    let audits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'MONTH_QUALIFIED' AND subject_id = $1",
    )
    .bind(month.to_string())
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(audits, 1, "one audit entry however often the decision runs");
}

#[tokio::test]
async fn the_rule_holds_for_a_28_day_month() {
    run_month(YearMonth::parse("2026-02").unwrap()).await;
}

#[tokio::test]
async fn the_rule_holds_for_a_29_day_month() {
    run_month(YearMonth::parse("2024-02").unwrap()).await;
}

#[tokio::test]
async fn the_rule_holds_for_a_30_day_month() {
    run_month(YearMonth::parse("2026-04").unwrap()).await;
}

#[tokio::test]
async fn the_rule_holds_for_a_31_day_month() {
    run_month(YearMonth::parse("2026-10").unwrap()).await;
}

#[tokio::test]
async fn exactly_15000_qualifies_and_14999_99_does_not() {
    let db = TestDb::new().await;
    let month = YearMonth::parse("2026-06").unwrap();
    let since = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &[customer(0, since), customer(1, since)],
        "test",
    )
    .await
    .unwrap();
    for date in month.days() {
        for (i, amount) in [(0, dec!(15000.00)), (1, dec!(15000.00))] {
            let amount = if i == 1 && date.as_naive().day() == 17 {
                dec!(14999.99)
            } else {
                amount
            };
            let outcome = if amount >= dec!(15000.00) {
                "PASSED"
            } else {
                "BELOW_THRESHOLD"
            };
            sqlx::query(
                "INSERT INTO balance_checks (customer_id, business_date, outcome, amount, currency,
                     threshold, fetched_at, workflow_id, run_id)
                 VALUES ($1, $2, $3, $4, 'NIS', 15000, now(), 't', 't')",
            )
            .bind(pcn_bank_sim::customer_id(i))
            .bind(date.as_naive())
            .bind(outcome)
            .bind(amount)
            .execute(&db.pool)
            .await
            .unwrap();
        }
    }
    let input = QualifyInput {
        month,
        threshold: Nis::from_whole(15_000),
        run: RunRef {
            workflow_id: "t".into(),
            run_id: "t".into(),
        },
    };
    let summary = qualify_month(&db.pool, &input).await.unwrap();
    assert_eq!(summary.qualified, 1);
    assert_eq!(summary.below_threshold, 1);
    assert_eq!(
        pcn_tests::qualified_in_db(&db.pool, month).await,
        vec![pcn_bank_sim::customer_id(0)]
    );
}

#[tokio::test]
async fn decisions_and_the_audit_log_refuse_updates_and_deletes() {
    let db = TestDb::new().await;
    pcn_activities::audit::record(
        &db.pool,
        &pcn_activities::audit::AuditEntry {
            actor: "system".into(),
            action: "TEST",
            subject_type: "test",
            subject_id: "1".into(),
            details: serde_json::json!({}),
            idempotency_key: None,
        },
    )
    .await
    .unwrap();
    // The triggers hold even for a superuser (the application role has no privilege for these
    // at all: `least_privilege`).
    for statement in [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(statement).execute(&db.admin).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    pcn_activities::customers::upsert(
        &db.pool,
        &pcn_activities::phone_vault::PhoneVault::development(),
        &[customer(0, NaiveDate::from_ymd_opt(2020, 1, 1).unwrap())],
        "test",
    )
    .await
    .unwrap();
    let err = sqlx::query("DELETE FROM customers")
        .execute(&db.admin)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("never deleted"), "{err}");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}
