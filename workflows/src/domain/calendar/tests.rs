//! Tests of [`YearMonth`], [`BusinessDate`] and the Asia/Jerusalem conversions.

use super::*;
use crate::domain::tests::json_round_trip;
use proptest::prelude::*;

fn ym(s: &str) -> YearMonth {
    YearMonth::parse(s).unwrap()
}

fn date(s: &str) -> BusinessDate {
    BusinessDate::parse(s).unwrap()
}

fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

// --- YearMonth -----------------------------------------------------------------------

#[test]
fn year_month_parses_and_displays() {
    let m = ym("2026-10");
    assert_eq!((m.year(), m.month()), (2026, 10));
    assert_eq!(m.to_string(), "2026-10");
    assert_eq!(m.english_name(), "October");
    assert_eq!("2026-10".parse::<YearMonth>().unwrap(), m);
    assert_eq!(String::from(m), "2026-10");
    assert_eq!(YearMonth::try_from("2026-10".to_owned()).unwrap(), m);
}

#[test]
fn year_month_rejects_malformed() {
    for s in [
        "2026-1",
        "2026-13",
        "2026-00",
        "26-01",
        " 2026-01",
        "2026-01 ",
        "2026-01-01",
        "",
        "2026",
        "202a-01",
        "+026-01",
        "2026-+1",
        "1999-12",
        "3000-01",
        "2026/01",
        "2026--1",
        "20260-1",
    ] {
        assert!(YearMonth::parse(s).is_err(), "{s:?} should be rejected");
    }
    assert!(YearMonth::new(2026, 0).is_err());
    assert!(YearMonth::new(2026, 13).is_err());
    assert!(YearMonth::new(1999, 5).is_err());
}

#[test]
fn year_month_num_days() {
    assert_eq!(ym("2024-02").num_days(), 29);
    assert_eq!(ym("2026-02").num_days(), 28);
    assert_eq!(ym("2000-02").num_days(), 29); // divisible by 400
    assert_eq!(ym("2026-04").num_days(), 30);
    assert_eq!(ym("2026-10").num_days(), 31);
    assert_eq!(ym("2026-12").num_days(), 31);
}

#[test]
fn year_month_first_and_last_day() {
    let m = ym("2024-02");
    assert_eq!(m.first_day(), date("2024-02-01"));
    assert_eq!(m.last_day(), date("2024-02-29"));
    assert!(m.contains(date("2024-02-15")));
    assert!(!m.contains(date("2024-03-01")));
    assert!(!m.contains(date("2023-02-15")));
}

#[test]
fn year_month_next_prev_across_years_and_saturation() {
    assert_eq!(ym("2026-12").next(), ym("2027-01"));
    assert_eq!(ym("2027-01").prev(), ym("2026-12"));
    assert_eq!(ym("2026-05").next(), ym("2026-06"));
    assert_eq!(YearMonth::MAX.next(), YearMonth::MAX);
    assert_eq!(YearMonth::MIN.prev(), YearMonth::MIN);
}

#[test]
fn year_month_ordering_is_chronological() {
    assert!(ym("2025-12") < ym("2026-01"));
    assert!(ym("2026-02") < ym("2026-10"));
}

#[test]
fn year_month_english_names() {
    let names: Vec<_> = (1..=12)
        .map(|m| YearMonth::new(2026, m).unwrap().english_name())
        .collect();
    assert_eq!(names[0], "January");
    assert_eq!(names[11], "December");
}

#[test]
fn year_month_serde() {
    let m = ym("2026-10");
    assert_eq!(serde_json::to_string(&m).unwrap(), "\"2026-10\"");
    assert_eq!(json_round_trip(&m), m);
    assert!(serde_json::from_str::<YearMonth>("\"2026-13\"").is_err());
    assert!(serde_json::from_str::<YearMonth>("202610").is_err());
}

// --- BusinessDate --------------------------------------------------------------------

#[test]
fn business_date_parses_and_displays() {
    let d = date("2026-10-05");
    assert_eq!(d.to_string(), "2026-10-05");
    assert_eq!(d.as_naive(), NaiveDate::from_ymd_opt(2026, 10, 5).unwrap());
    assert_eq!(d.year_month(), ym("2026-10"));
    assert_eq!(String::from(d), "2026-10-05");
    assert_eq!("2026-10-05".parse::<BusinessDate>().unwrap(), d);
}

#[test]
fn business_date_rejects_malformed() {
    for s in [
        "2026-1-05",
        "2026-10-5",
        "26-10-05",
        " 2026-10-05",
        "2026-10-05 ",
        "2026-10-05T00:00",
        "2026/10/05",
        "2026-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-10-00",
        "1999-12-31",
        "3000-01-01",
        "",
        "+026-10-05",
        "2026-10-+5",
        "2026-10",
        "２026-10-05",
    ] {
        assert!(BusinessDate::parse(s).is_err(), "{s:?} should be rejected");
    }
    assert!(BusinessDate::parse("2024-02-29").is_ok());
}

#[test]
fn business_date_from_naive_checks_range() {
    assert!(BusinessDate::from_naive(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap()).is_err());
    assert!(BusinessDate::from_naive(NaiveDate::from_ymd_opt(3000, 1, 1).unwrap()).is_err());
    assert_eq!(
        BusinessDate::from_naive(NaiveDate::from_ymd_opt(2000, 1, 1).unwrap()).unwrap(),
        BusinessDate::MIN
    );
}

#[test]
fn business_date_succ_pred_and_saturation() {
    assert_eq!(date("2024-02-28").succ(), date("2024-02-29"));
    assert_eq!(date("2026-12-31").succ(), date("2027-01-01"));
    assert_eq!(date("2026-03-01").pred(), date("2026-02-28"));
    assert_eq!(BusinessDate::MAX.succ(), BusinessDate::MAX);
    assert_eq!(BusinessDate::MIN.pred(), BusinessDate::MIN);
}

#[test]
fn business_date_serde() {
    let d = date("2026-10-05");
    assert_eq!(serde_json::to_string(&d).unwrap(), "\"2026-10-05\"");
    assert_eq!(json_round_trip(&d), d);
    assert!(serde_json::from_str::<BusinessDate>("\"2026-02-30\"").is_err());
}

#[test]
fn of_instant_uses_jerusalem_not_utc() {
    // 22:30 UTC on 4 Oct is 01:30 on 5 Oct in Jerusalem (UTC+3 in summer).
    let t = Utc.with_ymd_and_hms(2026, 10, 4, 22, 30, 0).unwrap();
    assert_eq!(BusinessDate::of_instant(t), date("2026-10-05"));
    // 21:30 UTC on 4 Jan is 23:30 on 4 Jan (UTC+2 in winter).
    let t = Utc.with_ymd_and_hms(2026, 1, 4, 21, 30, 0).unwrap();
    assert_eq!(BusinessDate::of_instant(t), date("2026-01-04"));
}

#[test]
fn of_instant_clamps_out_of_range_instants_without_panicking() {
    assert_eq!(
        BusinessDate::of_instant(DateTime::<Utc>::MIN_UTC),
        BusinessDate::MIN
    );
    assert_eq!(
        BusinessDate::of_instant(DateTime::<Utc>::MAX_UTC),
        BusinessDate::MAX
    );
    assert_eq!(
        BusinessDate::of_instant(DateTime::<Utc>::UNIX_EPOCH),
        BusinessDate::MIN
    );
    // Still 1999 in UTC but already 2000 in Jerusalem.
    let t = Utc.with_ymd_and_hms(1999, 12, 31, 23, 0, 0).unwrap();
    assert_eq!(BusinessDate::of_instant(t), BusinessDate::MIN);
    let t = Utc.with_ymd_and_hms(2999, 12, 31, 23, 0, 0).unwrap();
    assert_eq!(BusinessDate::of_instant(t), BusinessDate::MAX);
}

#[test]
fn at_local_22_00_every_day_of_2026() {
    let summer = date("2026-03-27")..=date("2026-10-24");
    let mut d = date("2026-01-01");
    while d.year_month().year() == 2026 {
        let t = d.at_local(hm(22, 0));
        assert_eq!(BusinessDate::of_instant(t), d, "{d}");
        assert_eq!(t.with_timezone(&JERUSALEM).time(), hm(22, 0), "{d}");
        let expected_utc_hour = if summer.contains(&d) { 19 } else { 20 };
        assert_eq!(chrono::Timelike::hour(&t), expected_utc_hour, "{d}");
        d = d.succ();
    }
}

#[test]
fn at_local_around_2026_transitions() {
    // Spring forward: Friday 2026-03-27 02:00 -> 03:00.
    assert_eq!(
        date("2026-03-26").at_local(hm(22, 0)),
        Utc.with_ymd_and_hms(2026, 3, 26, 20, 0, 0).unwrap()
    );
    assert_eq!(
        date("2026-03-27").at_local(hm(22, 0)),
        Utc.with_ymd_and_hms(2026, 3, 27, 19, 0, 0).unwrap()
    );
    // Fall back: Sunday 2026-10-25 02:00 -> 01:00.
    assert_eq!(
        date("2026-10-24").at_local(hm(22, 0)),
        Utc.with_ymd_and_hms(2026, 10, 24, 19, 0, 0).unwrap()
    );
    assert_eq!(
        date("2026-10-25").at_local(hm(22, 0)),
        Utc.with_ymd_and_hms(2026, 10, 25, 20, 0, 0).unwrap()
    );
}

#[test]
fn at_local_in_spring_gap_lands_on_first_instant_after_it() {
    let d = date("2026-03-27");
    let t = d.at_local(hm(2, 30));
    assert_eq!(t, Utc.with_ymd_and_hms(2026, 3, 27, 0, 0, 0).unwrap());
    let local = t.with_timezone(&JERUSALEM);
    assert_eq!(local.time(), hm(3, 0));
    assert_eq!(BusinessDate::of_instant(t), d);
    // The very start of the gap and a time with seconds behave the same way.
    assert_eq!(d.at_local(hm(2, 0)), t);
    assert_eq!(d.at_local(NaiveTime::from_hms_opt(2, 59, 59).unwrap()), t);
    // Just outside the gap is untouched.
    assert_eq!(
        d.at_local(NaiveTime::from_hms_opt(1, 59, 59).unwrap()),
        t - TimeDelta::seconds(1)
    );
    assert_eq!(d.at_local(hm(3, 0)), t);
}

#[test]
fn at_local_in_autumn_overlap_picks_earlier_instant() {
    let t = date("2026-10-25").at_local(hm(1, 30));
    // 01:30 happens at +03:00 first (22:30 UTC the day before), then at +02:00.
    assert_eq!(t, Utc.with_ymd_and_hms(2026, 10, 24, 22, 30, 0).unwrap());
    assert_eq!(t.with_timezone(&JERUSALEM).time(), hm(1, 30));
}

// --- Properties ----------------------------------------------------------------------

fn any_year_month() -> impl Strategy<Value = YearMonth> {
    (MIN_YEAR..=MAX_YEAR, 1u32..=12).prop_map(|(y, m)| YearMonth::new(y, m).unwrap())
}

fn any_business_date() -> impl Strategy<Value = BusinessDate> {
    let span = (BusinessDate::MAX.0 - BusinessDate::MIN.0).num_days();
    (0..=span).prop_map(|n| BusinessDate(BusinessDate::MIN.0 + TimeDelta::days(n)))
}

proptest! {
    #[test]
    fn prop_year_month_round_trips(m in any_year_month()) {
        prop_assert_eq!(YearMonth::parse(&m.to_string()).unwrap(), m);
        prop_assert_eq!(json_round_trip(&m), m);
    }

    #[test]
    fn prop_year_month_next_prev_inverse(m in any_year_month()) {
        prop_assume!(m != YearMonth::MIN && m != YearMonth::MAX);
        prop_assert_eq!(m.next().prev(), m);
        prop_assert_eq!(m.prev().next(), m);
        prop_assert!(m.prev() < m && m < m.next());
        prop_assert_eq!(m.last_day().succ(), m.next().first_day());
    }

    #[test]
    fn prop_year_month_days_are_consecutive_and_inside(m in any_year_month()) {
        let days: Vec<_> = m.days().collect();
        prop_assert_eq!(days.len(), m.num_days() as usize);
        prop_assert_eq!(days[0], m.first_day());
        prop_assert_eq!(*days.last().unwrap(), m.last_day());
        prop_assert!(days.iter().all(|d| m.contains(*d) && YearMonth::of(*d) == m));
        prop_assert!(days.windows(2).all(|w| w[0].succ() == w[1]));
        // Cross-check the hand-written leap-year rule against chrono.
        prop_assert!(NaiveDate::from_ymd_opt(m.year(), m.month(), m.num_days()).is_some());
        prop_assert!(NaiveDate::from_ymd_opt(m.year(), m.month(), m.num_days() + 1).is_none());
    }

    #[test]
    fn prop_business_date_round_trips(d in any_business_date()) {
        prop_assert_eq!(BusinessDate::parse(&d.to_string()).unwrap(), d);
        prop_assert_eq!(d.to_string(), d.as_naive().format("%Y-%m-%d").to_string());
        prop_assert_eq!(json_round_trip(&d), d);
        prop_assert_eq!(BusinessDate::from_naive(d.as_naive()).unwrap(), d);
    }

    #[test]
    fn prop_business_date_succ_pred_inverse(d in any_business_date()) {
        prop_assume!(d != BusinessDate::MIN && d != BusinessDate::MAX);
        prop_assert_eq!(d.succ().pred(), d);
        prop_assert_eq!(d.pred().succ(), d);
    }

    #[test]
    fn prop_at_local_stays_on_the_same_date(
        d in any_business_date(),
        h in 0u32..24,
        m in 0u32..60,
        s in 0u32..60,
    ) {
        let time = NaiveTime::from_hms_opt(h, m, s).unwrap();
        let t = d.at_local(time);
        prop_assert_eq!(BusinessDate::of_instant(t), d);
        let wall = t.with_timezone(&JERUSALEM).naive_local();
        let requested = d.as_naive().and_time(time);
        // Only a DST gap may move the wall time, and then only forward by at most an hour.
        if wall != requested {
            prop_assert!(JERUSALEM.from_local_datetime(&requested).single().is_none());
            prop_assert!(wall > requested && wall - requested <= TimeDelta::hours(1));
        }
    }
}
