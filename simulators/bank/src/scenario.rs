//! The simulated population: which profile each account has and what the bank answers for it on
//! any given date. Everything is a pure function of the seed, the account index and the date
//! (plus explicit overrides), so a test can compute the expected qualified set on its own.
//!
//! Over 600 lines: about 470 of scenario generation and 250 of unit tests.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::hash::{day_word, in_range, mix, tag};

/// The qualification threshold of the product: 15,000.00 NIS, inclusive.
pub const THRESHOLD: Decimal = Decimal::from_parts(1_500_000, 0, 0, false, 2);

/// 15,000.00 in cents.
const THRESHOLD_CENTS: i64 = 1_500_000;
/// 250,000.00 in cents: the top of a premium balance.
const PREMIUM_MAX_CENTS: i64 = 25_000_000;
/// 60,000.00 in cents: the top of a regular account's occasional good day.
const REGULAR_PEAK_MAX_CENTS: i64 = 6_000_000;
/// -2,000.00 in cents: regular accounts may be overdrawn.
const REGULAR_MIN_CENTS: i64 = -200_000;

/// How an account behaves over time; chosen per account by `hash(seed, i)` and the [`ProfileMix`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Profile {
    /// Every day at least 15,000.00 NIS (about one day in ten exactly 15,000.00).
    Premium,
    /// Exactly 15,000.00 every day; "almost" accounts have one day a month at 14,999.99.
    Boundary,
    /// Premium-like, except exactly one day per calendar month below 15,000.00.
    Dipper,
    /// Mostly below 15,000.00, with the occasional day above.
    Regular,
    /// The bank does not know the account: every request is a 404.
    Unknown,
    /// Premium-like, except one day per month answered in USD or with a malformed body.
    DataQuality,
}

impl Profile {
    /// All profiles, in [`ProfileMix`] order.
    pub const ALL: [Self; 6] = [
        Self::Premium,
        Self::Boundary,
        Self::Dipper,
        Self::Regular,
        Self::Unknown,
        Self::DataQuality,
    ];
}

/// Relative weights of the profiles (normally summing to 100, i.e. percentages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileMix {
    /// Weight of [`Profile::Premium`].
    pub premium: u32,
    /// Weight of [`Profile::Boundary`].
    pub boundary: u32,
    /// Weight of [`Profile::Dipper`].
    pub dipper: u32,
    /// Weight of [`Profile::Regular`].
    pub regular: u32,
    /// Weight of [`Profile::Unknown`].
    pub unknown: u32,
    /// Weight of [`Profile::DataQuality`].
    pub data_quality: u32,
}

impl Default for ProfileMix {
    fn default() -> Self {
        Self {
            premium: 40,
            boundary: 5,
            dipper: 10,
            regular: 40,
            unknown: 2,
            data_quality: 3,
        }
    }
}

impl ProfileMix {
    /// A mix with every account of one profile.
    pub fn only(profile: Profile) -> Self {
        let mut mix = Self {
            premium: 0,
            boundary: 0,
            dipper: 0,
            regular: 0,
            unknown: 0,
            data_quality: 0,
        };
        *mix.weight_mut(profile) = 100;
        mix
    }

    /// The weight of one profile.
    pub fn weight(&self, profile: Profile) -> u32 {
        match profile {
            Profile::Premium => self.premium,
            Profile::Boundary => self.boundary,
            Profile::Dipper => self.dipper,
            Profile::Regular => self.regular,
            Profile::Unknown => self.unknown,
            Profile::DataQuality => self.data_quality,
        }
    }

    fn weight_mut(&mut self, profile: Profile) -> &mut u32 {
        match profile {
            Profile::Premium => &mut self.premium,
            Profile::Boundary => &mut self.boundary,
            Profile::Dipper => &mut self.dipper,
            Profile::Regular => &mut self.regular,
            Profile::Unknown => &mut self.unknown,
            Profile::DataQuality => &mut self.data_quality,
        }
    }

    /// Sum of all weights (100 for a percentage mix).
    pub fn total(&self) -> u64 {
        Profile::ALL
            .iter()
            .map(|&p| u64::from(self.weight(p)))
            .sum()
    }

    /// The profile a uniform draw `h` falls into.
    fn pick(&self, h: u64) -> Profile {
        let total = self.total();
        if total == 0 {
            return Profile::Regular;
        }
        let mut point = h % total;
        for p in Profile::ALL {
            let w = u64::from(self.weight(p));
            if point < w {
                return p;
            }
            point -= w;
        }
        Profile::Regular
    }
}

/// Parses `premium=40,boundary=5,dipper=10,regular=40,unknown=2,data_quality=3`; profiles left
/// out get weight 0.
impl FromStr for ProfileMix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut mix = Self {
            premium: 0,
            boundary: 0,
            dipper: 0,
            regular: 0,
            unknown: 0,
            data_quality: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("expected name=weight, got {part:?}"))?;
            let profile = match name.trim().to_ascii_lowercase().replace('-', "_").as_str() {
                "premium" => Profile::Premium,
                "boundary" => Profile::Boundary,
                "dipper" => Profile::Dipper,
                "regular" => Profile::Regular,
                "unknown" => Profile::Unknown,
                "data_quality" | "dataquality" => Profile::DataQuality,
                other => return Err(format!("unknown profile {other:?}")),
            };
            *mix.weight_mut(profile) = weight
                .trim()
                .parse()
                .map_err(|e| format!("bad weight for {name}: {e}"))?;
        }
        if mix.total() == 0 {
            return Err("the weights sum to 0".into());
        }
        Ok(mix)
    }
}

impl fmt::Display for ProfileMix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "premium={},boundary={},dipper={},regular={},unknown={},data_quality={}",
            self.premium, self.boundary, self.dipper, self.regular, self.unknown, self.data_quality
        )
    }
}

/// What the bank answers for one account on one date (before any injected fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutcome {
    /// 200 with a well-formed body. The amount is always written with two decimals.
    Balance {
        /// The balance (scale 2 for generated values).
        amount: Decimal,
        /// `NIS`, or another code for data-quality days.
        currency: String,
    },
    /// 404 `NOT_FOUND`.
    NotFound,
    /// 200 with a body that is not a valid balance response (wrong types or truncated JSON).
    Malformed,
}

impl SimOutcome {
    /// A NIS balance from an amount in agorot (hundredths), e.g. `nis_cents(1_500_000)`.
    pub fn nis_cents(cents: i64) -> Self {
        Self::Balance {
            amount: Decimal::new(cents, 2),
            currency: "NIS".to_owned(),
        }
    }

    /// Whether this answer counts as a qualifying day: a NIS balance of at least [`THRESHOLD`].
    pub fn is_qualifying(&self) -> bool {
        matches!(self, Self::Balance { amount, currency } if currency == "NIS" && *amount >= THRESHOLD)
    }
}

/// The deterministic population behind the simulator: seed, size, profile mix and overrides.
///
/// Overrides are the only mutable part (behind a lock that is skipped entirely while the map is
/// empty, so the request path stays lock-free in the common case).
#[derive(Debug)]
pub struct Scenario {
    seed: u64,
    accounts: u64,
    mix: ProfileMix,
    has_overrides: AtomicBool,
    overrides: RwLock<HashMap<(u64, NaiveDate), SimOutcome>>,
}

impl Scenario {
    /// A population of `accounts` accounts (indices `0..accounts`) drawn from `seed` and `mix`.
    pub fn new(seed: u64, accounts: u64, mix: ProfileMix) -> Self {
        Self {
            seed,
            accounts,
            mix,
            has_overrides: AtomicBool::new(false),
            overrides: RwLock::new(HashMap::new()),
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Number of accounts in the population.
    pub fn accounts(&self) -> u64 {
        self.accounts
    }

    /// The profile mix.
    pub fn mix(&self) -> ProfileMix {
        self.mix
    }

    /// The profile of account `i` (indices outside the population report [`Profile::Unknown`]).
    pub fn profile(&self, i: u64) -> Profile {
        if i >= self.accounts {
            return Profile::Unknown;
        }
        self.mix.pick(mix(&[self.seed, tag::PROFILE, i]))
    }

    /// Whether a [`Profile::Boundary`] account is of the "almost" kind (one day a month at
    /// 14,999.99). About half of them are.
    pub fn boundary_almost(&self, i: u64) -> bool {
        mix(&[self.seed, tag::BOUNDARY_ALMOST, i]).is_multiple_of(2)
    }

    /// The hash-chosen day of the month (1-based) on which boundary-almost, dipper and
    /// data-quality accounts misbehave in `year`/`month`.
    pub fn special_day(&self, i: u64, year: i32, month: u32) -> u32 {
        let days = u64::from(days_in_month(year, month));
        let h = mix(&[
            self.seed,
            tag::SPECIAL_DAY,
            i,
            u64::from(year.unsigned_abs()),
            u64::from(month),
        ]);
        // `days` ≤ 31, so the cast cannot truncate.
        1 + (h % days) as u32
    }

    /// What the bank answers for account `i` on `date`: an override if one is set, otherwise the
    /// profile's behaviour (accounts outside the population are [`SimOutcome::NotFound`]).
    pub fn outcome(&self, i: u64, date: NaiveDate) -> SimOutcome {
        if self.has_overrides.load(Ordering::Acquire)
            && let Some(o) = self
                .overrides
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&(i, date))
        {
            return o.clone();
        }
        self.profile_outcome(i, date)
    }

    /// The profile's answer for account `i` on `date`, ignoring overrides.
    pub fn profile_outcome(&self, i: u64, date: NaiveDate) -> SimOutcome {
        if i >= self.accounts {
            return SimOutcome::NotFound;
        }
        let special = || self.special_day(i, date.year(), date.month()) == date.day();
        match self.profile(i) {
            Profile::Premium => SimOutcome::nis_cents(self.premium_cents(i, date)),
            Profile::Boundary => {
                if self.boundary_almost(i) && special() {
                    SimOutcome::nis_cents(THRESHOLD_CENTS - 1)
                } else {
                    SimOutcome::nis_cents(THRESHOLD_CENTS)
                }
            }
            Profile::Dipper => {
                if special() {
                    let h = self.day_hash(i, date, 1);
                    SimOutcome::nis_cents(in_range(h, 0, THRESHOLD_CENTS - 1))
                } else {
                    SimOutcome::nis_cents(self.premium_cents(i, date))
                }
            }
            Profile::Regular => {
                let h = self.day_hash(i, date, 0);
                let cents = if h.is_multiple_of(20) {
                    in_range(
                        self.day_hash(i, date, 1),
                        THRESHOLD_CENTS,
                        REGULAR_PEAK_MAX_CENTS,
                    )
                } else {
                    in_range(
                        self.day_hash(i, date, 1),
                        REGULAR_MIN_CENTS,
                        THRESHOLD_CENTS - 1,
                    )
                };
                SimOutcome::nis_cents(cents)
            }
            Profile::Unknown => SimOutcome::NotFound,
            Profile::DataQuality => {
                if special() {
                    let kind = mix(&[
                        self.seed,
                        tag::DATA_QUALITY_KIND,
                        i,
                        u64::from(date.year().unsigned_abs()),
                        u64::from(date.month()),
                    ]);
                    if kind.is_multiple_of(2) {
                        SimOutcome::Balance {
                            amount: Decimal::new(self.premium_cents(i, date), 2),
                            currency: "USD".to_owned(),
                        }
                    } else {
                        SimOutcome::Malformed
                    }
                } else {
                    SimOutcome::nis_cents(self.premium_cents(i, date))
                }
            }
        }
    }

    /// Pins the answer for account `i` on `date`; it wins over the profile until cleared.
    pub fn set_override(&self, i: u64, date: NaiveDate, outcome: SimOutcome) {
        let mut map = self
            .overrides
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert((i, date), outcome);
        self.has_overrides.store(true, Ordering::Release);
    }

    /// Removes the override of account `i` on `date`, if any.
    pub fn clear_override(&self, i: u64, date: NaiveDate) {
        let mut map = self
            .overrides
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.remove(&(i, date));
        self.has_overrides.store(!map.is_empty(), Ordering::Release);
    }

    /// Removes every override.
    pub fn clear_overrides(&self) {
        let mut map = self
            .overrides
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.clear();
        self.has_overrides.store(false, Ordering::Release);
    }

    /// The `referenceId` of the response for account `i` on `date`, e.g. `REF-004211873305`.
    pub fn reference_id(&self, i: u64, date: NaiveDate) -> String {
        let h = mix(&[self.seed, tag::REFERENCE, i, day_word(date)]);
        format!("REF-{:012}", h % 1_000_000_000_000)
    }

    /// Whether account `i` qualifies for `year`/`month` by the product's rule, computed from the
    /// scenario alone: every calendar day is a NIS balance of at least [`THRESHOLD`] (a 404,
    /// a malformed body or another currency on any day disqualifies). Overrides are included.
    pub fn qualifies(&self, i: u64, year: i32, month: u32) -> bool {
        month_days(year, month).all(|d| self.outcome(i, d).is_qualifying())
    }

    /// Every account index in the population that [`qualifies`](Self::qualifies) for the month,
    /// ascending.
    pub fn qualified_accounts(&self, year: i32, month: u32) -> Vec<u64> {
        (0..self.accounts)
            .filter(|&i| self.qualifies(i, year, month))
            .collect()
    }

    /// A premium-like balance: about one day in ten exactly 15,000.00, otherwise uniform in
    /// [15,000.00, 250,000.00].
    fn premium_cents(&self, i: u64, date: NaiveDate) -> i64 {
        if self.day_hash(i, date, 0).is_multiple_of(10) {
            THRESHOLD_CENTS
        } else {
            in_range(
                self.day_hash(i, date, 1),
                THRESHOLD_CENTS,
                PREMIUM_MAX_CENTS,
            )
        }
    }

    fn day_hash(&self, i: u64, date: NaiveDate, draw: u64) -> u64 {
        mix(&[self.seed, tag::DAY, i, day_word(date), draw])
    }
}

/// Number of days in `year`/`month` (0 for an invalid month).
pub fn days_in_month(year: i32, month: u32) -> u32 {
    let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
        return 0;
    };
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    next.map_or(31, |n| {
        u32::try_from(n.signed_duration_since(first).num_days()).unwrap_or(31)
    })
}

/// Every date of `year`/`month`, in order (empty for an invalid month).
pub fn month_days(year: i32, month: u32) -> impl Iterator<Item = NaiveDate> {
    (1..=days_in_month(year, month)).filter_map(move |d| NaiveDate::from_ymd_opt(year, month, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario_of(profile: Profile) -> Scenario {
        Scenario::new(42, 200, ProfileMix::only(profile))
    }

    fn amount(o: &SimOutcome) -> Decimal {
        match o {
            SimOutcome::Balance { amount, .. } => *amount,
            other => panic!("expected a balance, got {other:?}"),
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    const MONTHS: [(i32, u32); 4] = [(2026, 2), (2026, 10), (2026, 12), (2028, 2)];

    #[test]
    fn the_threshold_is_fifteen_thousand_with_two_decimals() {
        assert_eq!(THRESHOLD, Decimal::new(1_500_000, 2));
        assert_eq!(THRESHOLD.to_string(), "15000.00");
    }

    #[test]
    fn month_lengths_are_calendar_lengths() {
        assert_eq!(days_in_month(2026, 2), 28);
        assert_eq!(days_in_month(2028, 2), 29);
        assert_eq!(days_in_month(2026, 10), 31);
        assert_eq!(days_in_month(2026, 12), 31);
        assert_eq!(days_in_month(2026, 13), 0);
        assert_eq!(month_days(2026, 11).count(), 30);
    }

    #[test]
    fn premium_accounts_hold_at_least_the_threshold_every_day() {
        let s = scenario_of(Profile::Premium);
        let (mut exact, mut total) = (0, 0);
        for i in 0..s.accounts() {
            for &(y, m) in &MONTHS {
                for d in month_days(y, m) {
                    let o = s.outcome(i, d);
                    let a = amount(&o);
                    assert!(o.is_qualifying(), "{i} {d} {o:?}");
                    assert!(a <= Decimal::new(25_000_000, 2));
                    assert_eq!(a.scale(), 2);
                    exact += u32::from(a == THRESHOLD);
                    total += 1;
                }
            }
            assert!(s.qualifies(i, 2026, 10));
        }
        // About one day in ten sits exactly on the threshold.
        assert!((total / 14..total / 7).contains(&exact), "{exact}/{total}");
    }

    #[test]
    fn boundary_accounts_are_exactly_on_the_threshold_or_one_agora_below_once_a_month() {
        let s = scenario_of(Profile::Boundary);
        let mut almost_seen = 0;
        for i in 0..s.accounts() {
            for &(y, m) in &MONTHS {
                let below: Vec<_> = month_days(y, m)
                    .filter(|&d| {
                        let a = amount(&s.outcome(i, d));
                        assert!(a == THRESHOLD || a == Decimal::new(1_499_999, 2), "{a}");
                        a < THRESHOLD
                    })
                    .collect();
                if s.boundary_almost(i) {
                    assert_eq!(below.len(), 1);
                    assert_eq!(below[0].day(), s.special_day(i, y, m));
                    assert_eq!(amount(&s.outcome(i, below[0])).to_string(), "14999.99");
                    assert!(!s.qualifies(i, y, m));
                } else {
                    assert!(below.is_empty());
                    assert!(s.qualifies(i, y, m));
                }
            }
            almost_seen += u32::from(s.boundary_almost(i));
        }
        assert!((50..150).contains(&almost_seen), "{almost_seen}");
    }

    #[test]
    fn dippers_go_below_the_threshold_on_exactly_one_day_each_month() {
        let s = scenario_of(Profile::Dipper);
        for i in 0..s.accounts() {
            for &(y, m) in &MONTHS {
                let below: Vec<_> = month_days(y, m)
                    .filter(|&d| !s.outcome(i, d).is_qualifying())
                    .collect();
                assert_eq!(below.len(), 1, "account {i} {y}-{m}");
                assert_eq!(below[0].day(), s.special_day(i, y, m));
                let a = amount(&s.outcome(i, below[0]));
                assert!(a >= Decimal::ZERO && a < THRESHOLD);
                assert!(!s.qualifies(i, y, m));
            }
        }
    }

    #[test]
    fn regular_accounts_are_mostly_below_with_the_occasional_good_day() {
        let s = scenario_of(Profile::Regular);
        let (mut above, mut negative, mut total) = (0, 0, 0);
        for i in 0..s.accounts() {
            for d in month_days(2026, 10) {
                let a = amount(&s.outcome(i, d));
                assert!(a >= Decimal::new(-200_000, 2) && a <= Decimal::new(6_000_000, 2));
                above += u32::from(a >= THRESHOLD);
                negative += u32::from(a < Decimal::ZERO);
                total += 1;
            }
            assert!(!s.qualifies(i, 2026, 10));
        }
        assert!(above > 0 && above < total / 10, "{above}/{total}");
        assert!(negative > 0);
    }

    #[test]
    fn unknown_accounts_are_never_found() {
        let s = scenario_of(Profile::Unknown);
        for i in 0..s.accounts() {
            for d in month_days(2026, 10) {
                assert_eq!(s.outcome(i, d), SimOutcome::NotFound);
            }
        }
        assert!(s.qualified_accounts(2026, 10).is_empty());
    }

    #[test]
    fn data_quality_accounts_misbehave_on_exactly_one_day_each_month() {
        let s = scenario_of(Profile::DataQuality);
        let (mut usd, mut malformed) = (0, 0);
        for i in 0..s.accounts() {
            for &(y, m) in &MONTHS {
                for d in month_days(y, m) {
                    let o = s.outcome(i, d);
                    if d.day() == s.special_day(i, y, m) {
                        match &o {
                            SimOutcome::Balance { currency, amount } => {
                                assert_eq!(currency, "USD");
                                assert!(*amount >= THRESHOLD);
                                usd += 1;
                            }
                            SimOutcome::Malformed => malformed += 1,
                            SimOutcome::NotFound => panic!("unexpected 404"),
                        }
                    } else {
                        assert!(o.is_qualifying(), "{i} {d} {o:?}");
                    }
                }
                assert!(!s.qualifies(i, y, m));
            }
        }
        assert!(usd > 0 && malformed > 0, "usd {usd} malformed {malformed}");
    }

    #[test]
    fn the_default_mix_is_roughly_respected() {
        let s = Scenario::new(7, 20_000, ProfileMix::default());
        let mut counts = HashMap::new();
        for i in 0..s.accounts() {
            *counts.entry(s.profile(i)).or_insert(0u64) += 1;
        }
        for p in Profile::ALL {
            let expected = u64::from(ProfileMix::default().weight(p)) * 200;
            let got = counts.get(&p).copied().unwrap_or(0);
            assert!(
                got.abs_diff(expected) <= expected / 5 + 20,
                "{p:?}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn same_seed_same_balances_different_seed_different_balances() {
        let a = Scenario::new(42, 500, ProfileMix::default());
        let b = Scenario::new(42, 500, ProfileMix::default());
        let c = Scenario::new(43, 500, ProfileMix::default());
        let d = date(2026, 10, 5);
        let mut differ = 0;
        for i in 0..500 {
            assert_eq!(a.profile(i), b.profile(i));
            assert_eq!(a.outcome(i, d), b.outcome(i, d));
            assert_eq!(a.reference_id(i, d), b.reference_id(i, d));
            differ += u32::from(a.outcome(i, d) != c.outcome(i, d));
        }
        assert!(differ > 250, "{differ}");
        assert_eq!(
            a.qualified_accounts(2026, 10),
            b.qualified_accounts(2026, 10)
        );
        assert_ne!(
            a.qualified_accounts(2026, 10),
            c.qualified_accounts(2026, 10)
        );
    }

    #[test]
    fn overrides_win_over_the_profile_until_cleared() {
        let s = scenario_of(Profile::Premium);
        let d = date(2026, 10, 5);
        let before = s.outcome(3, d);
        s.set_override(3, d, SimOutcome::nis_cents(1_499_999));
        assert_eq!(s.outcome(3, d), SimOutcome::nis_cents(1_499_999));
        assert_eq!(
            s.outcome(3, date(2026, 10, 6)),
            s.profile_outcome(3, date(2026, 10, 6))
        );
        assert!(!s.qualifies(3, 2026, 10));
        s.clear_override(3, d);
        assert_eq!(s.outcome(3, d), before);
        s.set_override(3, d, SimOutcome::NotFound);
        s.clear_overrides();
        assert_eq!(s.outcome(3, d), before);
    }

    #[test]
    fn accounts_outside_the_population_are_not_found() {
        let s = scenario_of(Profile::Premium);
        assert_eq!(s.outcome(200, date(2026, 10, 5)), SimOutcome::NotFound);
        assert_eq!(s.profile(200), Profile::Unknown);
    }

    #[test]
    fn reference_ids_are_stable_per_account_and_date() {
        let s = scenario_of(Profile::Premium);
        let d = date(2026, 10, 5);
        let r = s.reference_id(1, d);
        assert!(r.starts_with("REF-") && r.len() == 16, "{r}");
        assert_eq!(r, s.reference_id(1, d));
        assert_ne!(r, s.reference_id(2, d));
        assert_ne!(r, s.reference_id(1, date(2026, 10, 6)));
    }

    #[test]
    fn mixes_parse_and_print() {
        let m: ProfileMix = "premium=40,boundary=5,dipper=10,regular=40,unknown=2,data_quality=3"
            .parse()
            .unwrap();
        assert_eq!(m, ProfileMix::default());
        assert_eq!(m.to_string().parse::<ProfileMix>().unwrap(), m);
        assert_eq!(
            "dipper=100".parse::<ProfileMix>().unwrap(),
            ProfileMix::only(Profile::Dipper)
        );
        assert!("premium=0".parse::<ProfileMix>().is_err());
        assert!("gold=3".parse::<ProfileMix>().is_err());
        assert!("premium".parse::<ProfileMix>().is_err());
    }
}
