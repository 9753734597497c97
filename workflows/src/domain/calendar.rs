//! Calendar: [`YearMonth`] and [`BusinessDate`], with the bank's time zone [`JERUSALEM`] and
//! the Asia/Jerusalem helpers that map business dates to instants and back.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Utc,
};

use super::{DomainError, shown};

/// Business time zone of the bank.
pub const JERUSALEM: chrono_tz::Tz = chrono_tz::Asia::Jerusalem;

/// Parses a fixed-width run of ASCII digits. `str::parse` is not used because it accepts a
/// leading `+`, which would let "+026-01" slip through as a year.
fn fixed_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
}

/// Smallest supported year. The range is deliberately narrow: anything outside it is a data
/// error (a typo such as "0226" or "20266"), not a real statement date.
const MIN_YEAR: i32 = 2000;
/// Largest supported year.
const MAX_YEAR: i32 = 2999;

/// The English month names, January first (also the English SMS template's month names).
pub(crate) const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Builds a date that the type invariants already guarantee to exist.
fn known_date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day)
        .expect("invariant: year/month/day were validated when the value was constructed")
}

const fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// A calendar month, written `"YYYY-MM"`, with a year in `2000..=2999`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct YearMonth {
    // Field order matters: the derived `Ord` must compare the year first.
    year: i32,
    month: u32,
}

impl YearMonth {
    /// The earliest supported month, `2000-01`.
    pub const MIN: Self = Self {
        year: MIN_YEAR,
        month: 1,
    };
    /// The latest supported month, `2999-12`.
    pub const MAX: Self = Self {
        year: MAX_YEAR,
        month: 12,
    };

    /// Parses exactly `"YYYY-MM"`: no whitespace, no single-digit month, no day part.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::new("month", format!("expected YYYY-MM, got {}", shown(s)));
        let (year, month) = s.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(bad());
        }
        let year = fixed_digits(year).ok_or_else(bad)?;
        let month = fixed_digits(month).ok_or_else(bad)?;
        // Four digits always fit in an i32.
        Self::new(year as i32, month)
    }

    /// Builds a month from its parts, rejecting years outside `2000..=2999` and months outside
    /// `1..=12`.
    pub fn new(year: i32, month: u32) -> Result<Self, DomainError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DomainError::new(
                "month",
                format!("year {year} is outside {MIN_YEAR}..={MAX_YEAR}"),
            ));
        }
        if !(1..=12).contains(&month) {
            return Err(DomainError::new(
                "month",
                format!("month {month} is outside 1..=12"),
            ));
        }
        Ok(Self { year, month })
    }

    /// The month that `date` falls in.
    pub fn of(date: BusinessDate) -> Self {
        Self {
            year: date.0.year(),
            month: date.0.month(),
        }
    }

    /// The year, in `2000..=2999`.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month number, in `1..=12`.
    pub fn month(self) -> u32 {
        self.month
    }

    /// The first day of the month.
    pub fn first_day(self) -> BusinessDate {
        BusinessDate(known_date(self.year, self.month, 1))
    }

    /// The last day of the month.
    pub fn last_day(self) -> BusinessDate {
        BusinessDate(known_date(self.year, self.month, self.num_days()))
    }

    /// Number of days in the month (28, 29, 30 or 31).
    pub fn num_days(self) -> u32 {
        match self.month {
            2 if is_leap_year(self.year) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// Every day of the month, in order, from the first to the last inclusive.
    pub fn days(self) -> impl Iterator<Item = BusinessDate> {
        self.first_day()
            .0
            .iter_days()
            .take(self.num_days() as usize)
            .map(BusinessDate)
    }

    /// Whether `d` falls in this month.
    pub fn contains(self, d: BusinessDate) -> bool {
        Self::of(d) == self
    }

    /// The following month. Saturates at `2999-12`: returning `Self` keeps call sites simple,
    /// and workflows must never panic on a date that is centuries away.
    pub fn next(self) -> Self {
        match self {
            Self::MAX => Self::MAX,
            Self { year, month: 12 } => Self {
                year: year + 1,
                month: 1,
            },
            Self { year, month } => Self {
                year,
                month: month + 1,
            },
        }
    }

    /// The preceding month. Saturates at `2000-01` for the same reason as [`YearMonth::next`].
    pub fn prev(self) -> Self {
        match self {
            Self::MIN => Self::MIN,
            Self { year, month: 1 } => Self {
                year: year - 1,
                month: 12,
            },
            Self { year, month } => Self {
                year,
                month: month - 1,
            },
        }
    }

    /// English name of the month, e.g. `"October"`.
    pub fn english_name(self) -> &'static str {
        MONTH_NAMES[(self.month - 1) as usize]
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

string_conversions_via_display!(YearMonth);

/// A calendar date in the bank's time zone (Asia/Jerusalem), written `"YYYY-MM-DD"`, with a
/// year in `2000..=2999`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct BusinessDate(NaiveDate);

impl BusinessDate {
    /// The earliest supported date, `2000-01-01`.
    pub const MIN: Self = Self(match NaiveDate::from_ymd_opt(MIN_YEAR, 1, 1) {
        Some(d) => d,
        None => panic!("2000-01-01 exists"),
    });
    /// The latest supported date, `2999-12-31`.
    pub const MAX: Self = Self(match NaiveDate::from_ymd_opt(MAX_YEAR, 12, 31) {
        Some(d) => d,
        None => panic!("2999-12-31 exists"),
    });

    /// Parses exactly `"YYYY-MM-DD"`. Chrono's own parser is not used because it is lenient
    /// (it accepts e.g. single-digit fields and signed years), and these strings end up as
    /// database keys and workflow ids where two spellings of one date would be a bug.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::new("date", format!("expected YYYY-MM-DD, got {}", shown(s)));
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let year = fixed_digits(&s[0..4]).ok_or_else(bad)?;
        let month = fixed_digits(&s[5..7]).ok_or_else(bad)?;
        let day = fixed_digits(&s[8..10]).ok_or_else(bad)?;
        let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| {
            DomainError::new("date", format!("{} is not a calendar date", shown(s)))
        })?;
        Self::from_naive(date)
    }

    /// Wraps a chrono date, rejecting years outside `2000..=2999`.
    pub fn from_naive(d: NaiveDate) -> Result<Self, DomainError> {
        if (MIN_YEAR..=MAX_YEAR).contains(&d.year()) {
            Ok(Self(d))
        } else {
            Err(DomainError::new(
                "date",
                format!("year {} is outside {MIN_YEAR}..={MAX_YEAR}", d.year()),
            ))
        }
    }

    /// The underlying chrono date.
    pub fn as_naive(self) -> NaiveDate {
        self.0
    }

    /// The month this date falls in.
    pub fn year_month(self) -> YearMonth {
        YearMonth::of(self)
    }

    /// The next day. Saturates at `2999-12-31` rather than panicking inside a workflow.
    pub fn succ(self) -> Self {
        self.0
            .succ_opt()
            .and_then(|d| Self::from_naive(d).ok())
            .unwrap_or(self)
    }

    /// The previous day. Saturates at `2000-01-01` rather than panicking inside a workflow.
    pub fn pred(self) -> Self {
        self.0
            .pred_opt()
            .and_then(|d| Self::from_naive(d).ok())
            .unwrap_or(self)
    }

    /// The business date that `instant` falls on in Asia/Jerusalem.
    ///
    /// Instants outside the supported years are clamped to [`BusinessDate::MIN`] /
    /// [`BusinessDate::MAX`], because this must be total: it is fed by Temporal's workflow clock.
    pub fn of_instant(instant: DateTime<Utc>) -> Self {
        // Checked on the UTC year first: converting instants near chrono's own limits to local
        // time would panic. Jerusalem is always ahead of UTC, so a UTC year before 2000 is a
        // local date <= 2000-01-01 and a UTC year after 2999 is a local date >= 3000-01-01;
        // clamping gives the same answer as converting.
        if instant.year() < MIN_YEAR {
            return Self::MIN;
        }
        if instant.year() > MAX_YEAR {
            return Self::MAX;
        }
        let local = instant.with_timezone(&JERUSALEM).date_naive();
        Self(local.clamp(Self::MIN.0, Self::MAX.0))
    }

    /// The UTC instant of wall-clock `time` on this date in Asia/Jerusalem. In a DST gap (the
    /// spring-forward hour) use the first valid instant after the gap; when ambiguous (autumn
    /// fall-back) use the earlier instant.
    pub fn at_local(self, time: NaiveTime) -> DateTime<Utc> {
        let local = self.0.and_time(time);
        match JERUSALEM.from_local_datetime(&local) {
            MappedLocalTime::Single(t) => t.with_timezone(&Utc),
            // Earlier wins so that a scheduled send never slips by an hour.
            MappedLocalTime::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            MappedLocalTime::None => first_instant_after_gap(local),
        }
    }
}

/// The instant at which the DST gap containing the non-existent wall time `local` ends.
///
/// chrono-tz does not expose its transition table, so the transition is found by bisection on
/// UTC seconds: it is the first instant whose Jerusalem wall time is later than `local`. Within
/// the +-1 day window the search uses there is at most one transition (Israel changes clocks
/// twice a year), so that predicate is monotonic.
fn first_instant_after_gap(local: NaiveDateTime) -> DateTime<Utc> {
    let window_start = local - TimeDelta::days(1);
    let utc_at = |secs: i64| window_start + TimeDelta::seconds(secs);
    let wall_is_after =
        |secs: i64| JERUSALEM.from_utc_datetime(&utc_at(secs)).naive_local() > local;
    // Invariant: wall(lo) <= local < wall(hi). Holds initially because real offsets are < 24h.
    let (mut lo, mut hi) = (0_i64, 2 * 86_400);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall_is_after(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Utc.from_utc_datetime(&utc_at(hi))
}

impl fmt::Display for BusinessDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Written out by hand so the wire format cannot change with chrono's formatting choices.
        write!(
            f,
            "{:04}-{:02}-{:02}",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

string_conversions_via_display!(BusinessDate);

// The tests are in `calendar/tests.rs` only to keep each file short.
#[cfg(test)]
mod tests;
