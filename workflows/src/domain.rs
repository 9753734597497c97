//! Domain primitives of the Premium Customer Notification System.
//!
//! Every value that crosses a boundary (HTTP, database, Temporal payloads, configuration) is
//! parsed into one of these types exactly once. After that the type itself is the proof that the
//! value is valid, so workflow code never re-checks formats and never sees a malformed month, a
//! fractional cent or an un-normalised phone number ("parse, don't validate").
//!
//! All types serialise as plain strings and deserialise through the same fallible constructors,
//! so a corrupted or hand-edited payload is rejected instead of smuggling an invalid value in.
//!
//! Nothing here reads the clock or any other ambient state: workflow code must stay
//! deterministic under Temporal replay, and time always comes in as an explicit argument.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Utc,
};
use rust_decimal::Decimal;

/// Business time zone of the bank.
pub const JERUSALEM: chrono_tz::Tz = chrono_tz::Asia::Jerusalem;

/// Error for any value rejected at the boundary; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct DomainError {
    /// Name of the rejected field as the outside world knows it (e.g. `"month"`).
    pub field: &'static str,
    /// Human-readable reason for the rejection.
    pub message: String,
}

impl DomainError {
    /// Creates an error for `field` with a human-readable `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Quotes rejected input for error messages, bounded so that a hostile multi-megabyte value
/// cannot bloat logs or API responses.
fn shown(s: &str) -> String {
    const MAX_CHARS: usize = 40;
    if s.chars().count() <= MAX_CHARS {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX_CHARS).collect();
        format!("{head:?}...")
    }
}

/// Parses a fixed-width run of ASCII digits. `str::parse` is not used because it accepts a
/// leading `+`, which would let "+026-01" slip through as a year.
fn fixed_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
}

/// Implements `FromStr`, `TryFrom<String>` and `From<T> for String` in terms of `T::parse` and
/// `Display`, so that serde, `str::parse` and the inherent constructor can never disagree.
macro_rules! string_conversions_via_display {
    ($ty:ty) => {
        impl FromStr for $ty {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(value: $ty) -> Self {
                value.to_string()
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Calendar
// ---------------------------------------------------------------------------------------------

/// Smallest supported year. The range is deliberately narrow: anything outside it is a data
/// error (a typo such as "0226" or "20266"), not a real statement date.
const MIN_YEAR: i32 = 2000;
/// Largest supported year.
const MAX_YEAR: i32 = 2999;

const MONTH_NAMES: [&str; 12] = [
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

// ---------------------------------------------------------------------------------------------
// Money
// ---------------------------------------------------------------------------------------------

/// An amount of New Israeli Shekels, exact to the agora (two decimal places).
///
/// Negative amounts are allowed because overdrawn accounts are real. The magnitude is kept
/// below 10^16 so every value fits the `NUMERIC(18,2)` column it is stored in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Nis(Decimal);

impl Nis {
    /// Exclusive bound on whole shekels, from `NUMERIC(18,2)`: 16 integer digits.
    const WHOLE_LIMIT: i64 = 10_000_000_000_000_000;

    /// Zero shekels.
    pub const ZERO: Self = Self::from_whole(0);

    /// Parses a plain decimal such as `"15000"`, `"15000.00"` or `"-12.5"`.
    ///
    /// Only `-?digits(.digits)?` is accepted: exponents, underscores, a leading `+` and
    /// surrounding whitespace are all rejected, as is anything finer than an agora.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let bad = || {
            DomainError::new(
                "amount",
                format!("expected a decimal like 1234.56, got {}", shown(s)),
            )
        };
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        let (int, frac) = match unsigned.split_once('.') {
            Some((int, frac)) => (int, Some(frac)),
            None => (unsigned, None),
        };
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !frac.is_none_or(all_digits) {
            return Err(bad());
        }
        let d = Decimal::from_str_exact(s)
            .map_err(|_| DomainError::new("amount", format!("{} is out of range", shown(s))))?;
        Self::from_decimal(d)
    }

    /// Wraps a decimal, rejecting sub-agora precision and magnitudes of 10^16 or more.
    ///
    /// Trailing zeros are not precision, so `15000.000` is accepted while `1.005` is not:
    /// silently rounding money is how ledgers stop balancing.
    pub fn from_decimal(d: Decimal) -> Result<Self, DomainError> {
        // `normalize` also turns -0 into 0, so "-0.00" and "0.00" are one value on the wire.
        let mut v = d.normalize();
        if v.scale() > 2 {
            return Err(DomainError::new(
                "amount",
                format!("{d} has more than 2 decimal places"),
            ));
        }
        if v.abs() >= Decimal::from(Self::WHOLE_LIMIT) {
            return Err(DomainError::new(
                "amount",
                format!("{d} does not fit NUMERIC(18,2) (|amount| must be < 10^16)"),
            ));
        }
        v.rescale(2);
        Ok(Self(v))
    }

    /// The amount, always with exactly two decimal places.
    pub fn amount(self) -> Decimal {
        self.0
    }

    /// A whole number of shekels, usable in constants (e.g. the 15,000 default threshold).
    ///
    /// # Panics
    ///
    /// If `|n| >= 10^16`; in a `const` this is a compile error.
    pub const fn from_whole(n: i64) -> Self {
        assert!(
            n > -Self::WHOLE_LIMIT && n < Self::WHOLE_LIMIT,
            "Nis::from_whole: |n| must be < 10^16"
        );
        // |n * 100| < 10^18 < 2^64, so the mantissa fits the low 64 of Decimal's 96 bits.
        let agorot = n.unsigned_abs() * 100;
        Self(Decimal::from_parts(
            (agorot & 0xFFFF_FFFF) as u32,
            (agorot >> 32) as u32,
            0,
            n < 0,
            2,
        ))
    }

    /// Parses a notification threshold: an amount as in [`Nis::parse`] that is strictly
    /// positive, because a zero or negative threshold would notify every customer.
    pub fn parse_threshold(s: &str) -> Result<Self, DomainError> {
        let v = Self::parse(s).map_err(|e| DomainError::new("threshold", e.message))?;
        if v.0 <= Decimal::ZERO {
            return Err(DomainError::new(
                "threshold",
                format!("must be > 0, got {v}"),
            ));
        }
        Ok(v)
    }
}

impl fmt::Display for Nis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The inner value always has scale 2, so this prints exactly two decimals.
        fmt::Display::fmt(&self.0, f)
    }
}

string_conversions_via_display!(Nis);

// ---------------------------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------------------------

/// A phone number in E.164 form (`"+"` then digits), ready to hand to the SMS gateway.
///
/// There is intentionally no `Display`: a phone number is personal data, and `Debug` prints
/// only the masked form, so neither `{}` nor `?phone` in a log line can leak it. Use
/// [`Phone::as_e164`] where the real number is genuinely needed.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Longest input considered; anything longer cannot be a phone number even with separators,
    /// and the cap keeps hostile input from costing anything.
    const MAX_INPUT_LEN: usize = 40;

    /// Accepts Israeli mobile numbers in local formats ("050-123-4567", "0501234567",
    /// "050 1234567", "(050) 123-4567"), with country code ("972501234567", "+972 50-123-4567",
    /// "+972-50-1234567", "00972501234567") and normalises them to "+9725XXXXXXXX" (Israeli
    /// mobiles: 05 then 8 digits locally, i.e. "+9725" + 8 digits).
    ///
    /// Also accepts any international E.164 number: "+" then 8..=15 digits, first digit 1-9
    /// (separators space, '-', '.', '(', ')' are stripped first; "00" prefix treated as "+").
    /// A number with +972 that is not a mobile (e.g. a landline "+97221234567") is rejected: we
    /// only text mobiles in Israel. Letters, empty, too short/long are rejected. Errors name the
    /// field "phone" and never echo the input.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        // Messages never echo the input: it is personal data and errors end up in logs.
        let err = |m: &str| DomainError::new("phone", m);
        if s.len() > Self::MAX_INPUT_LEN {
            return Err(err("too long"));
        }
        let mut plus = false;
        let mut digits = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                ' ' | '-' | '.' | '(' | ')' => {}
                '+' if !plus && digits.is_empty() => plus = true,
                '0'..='9' => digits.push(c),
                _ => {
                    return Err(err(
                        "may contain only digits, a leading '+' and the separators ' ', '-', '.', '(', ')'",
                    ));
                }
            }
        }
        if digits.is_empty() {
            return Err(err("no digits"));
        }

        let international: String = if plus {
            digits
        } else if let Some(rest) = digits.strip_prefix("00") {
            rest.to_owned()
        } else if digits.starts_with("972") {
            // Israeli customers commonly type the country code without '+'.
            digits
        } else if let Some(national) = digits.strip_prefix('0') {
            if national.len() == 9 && national.starts_with('5') {
                format!("972{national}")
            } else {
                return Err(err(
                    "not an Israeli mobile number (expected 05 followed by 8 digits)",
                ));
            }
        } else {
            return Err(err(
                "missing country code (expected a leading '+', '00' or a local 05 number)",
            ));
        };

        if !(8..=15).contains(&international.len()) {
            return Err(err("must have 8 to 15 digits including the country code"));
        }
        if international.starts_with('0') {
            return Err(err("country code cannot start with 0"));
        }
        if let Some(national) = international.strip_prefix("972")
            && !(national.len() == 9 && national.starts_with('5'))
        {
            return Err(err(
                "only Israeli mobile numbers (+972 5X XXX XXXX) can receive messages",
            ));
        }
        Ok(Self(format!("+{international}")))
    }

    /// The number in E.164 form, e.g. `"+972501234567"`.
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// For logs: keeps "+" , the first 5 digits and the last 2, stars in between: "+97250*****67".
    pub fn masked(&self) -> String {
        // All characters are ASCII and there are at least 8 digits, so the slices are in bounds
        // and at least one digit is always hidden.
        let digits = &self.0[1..];
        let hidden = digits.len() - 7;
        format!(
            "+{}{}{}",
            &digits[..5],
            "*".repeat(hidden),
            &digits[digits.len() - 2..]
        )
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Phone").field(&self.masked()).finish()
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> Self {
        p.0
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/// Longest accepted identifier, in characters (all ASCII, so also bytes).
const MAX_ID_LEN: usize = 64;

/// Checks the identifier alphabet. It is kept URL- and Temporal-workflow-id-safe so that ids
/// can be embedded in paths and composite ids (e.g. `"notify-ACC-1-2026-10"`) without escaping.
fn validate_identifier(field: &'static str, s: &str) -> Result<(), DomainError> {
    if s.is_empty() {
        return Err(DomainError::new(field, "must not be empty"));
    }
    if s.len() > MAX_ID_LEN {
        return Err(DomainError::new(
            field,
            format!("longer than {MAX_ID_LEN} characters: {}", shown(s)),
        ));
    }
    if !s.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(DomainError::new(
            field,
            format!("must start with a letter or digit: {}", shown(s)),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(DomainError::new(
            field,
            format!("may contain only A-Z, a-z, 0-9, '_' and '-': {}", shown(s)),
        ));
    }
    Ok(())
}

macro_rules! identifier {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            #[doc = concat!(
                "Parses a `", stringify!($name), "`: 1..=64 characters of `[A-Za-z0-9_-]`, ",
                "starting with a letter or digit. Errors name the field `\"", $field, "\"`."
            )]
            pub fn parse(s: &str) -> Result<Self, DomainError> {
                validate_identifier($field, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = DomainError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = DomainError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                // Reuses the allocation; this is on the hot path of every deserialised payload.
                validate_identifier($field, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

identifier!(
    /// A bank account identifier, e.g. `"ACC-12345-67890"`.
    AccountId,
    "account_id"
);

identifier!(
    /// A customer identifier.
    CustomerId,
    "customer_id"
);

// ---------------------------------------------------------------------------------------------
// Language
// ---------------------------------------------------------------------------------------------

/// Preferred language for messages; Hebrew is the default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum Language {
    /// Hebrew (`"he"`).
    #[default]
    Hebrew,
    /// Arabic (`"ar"`).
    Arabic,
    /// English (`"en"`).
    English,
    /// Russian (`"ru"`).
    Russian,
}

impl Language {
    /// Every supported language, in a stable order.
    pub const ALL: [Self; 4] = [Self::Hebrew, Self::Arabic, Self::English, Self::Russian];

    /// Parses an ISO 639-1 code (`"he"`, `"ar"`, `"en"`, `"ru"`), ignoring ASCII case because
    /// upstream systems are inconsistent about it.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                DomainError::new(
                    "language",
                    format!("expected one of he, ar, en, ru, got {}", shown(s)),
                )
            })
    }

    /// The lower-case ISO 639-1 code, e.g. `"he"`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Hebrew => "he",
            Self::Arabic => "ar",
            Self::English => "en",
            Self::Russian => "ru",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

string_conversions_via_display!(Language);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn ym(s: &str) -> YearMonth {
        YearMonth::parse(s).unwrap()
    }

    fn date(s: &str) -> BusinessDate {
        BusinessDate::parse(s).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn json_round_trip<T>(value: &T) -> T
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
    {
        serde_json::from_str(&serde_json::to_string(value).unwrap()).unwrap()
    }

    // --- DomainError ---------------------------------------------------------------------

    #[test]
    fn error_message_names_the_field() {
        let e = DomainError::new("month", "bad");
        assert_eq!(e.to_string(), "invalid month: bad");
    }

    #[test]
    fn every_type_names_its_field_in_errors() {
        let cases = [
            (YearMonth::parse("2026-13").unwrap_err(), "month"),
            (BusinessDate::parse("2026-02-30").unwrap_err(), "date"),
            (Nis::parse("1e5").unwrap_err(), "amount"),
            (Nis::parse_threshold("0").unwrap_err(), "threshold"),
            (Nis::parse_threshold("abc").unwrap_err(), "threshold"),
            (Phone::parse("abc").unwrap_err(), "phone"),
            (AccountId::parse("a/b").unwrap_err(), "account_id"),
            (CustomerId::parse("").unwrap_err(), "customer_id"),
            (Language::parse("fr").unwrap_err(), "language"),
        ];
        for (err, field) in cases {
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn long_input_is_truncated_in_error_messages() {
        let huge = "x".repeat(10_000);
        assert!(YearMonth::parse(&huge).unwrap_err().to_string().len() < 200);
        assert!(AccountId::parse(&huge).unwrap_err().to_string().len() < 200);
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

    // --- Nis -----------------------------------------------------------------------------

    #[test]
    fn nis_parses_plain_decimals() {
        assert_eq!(
            Nis::parse("15000").unwrap(),
            Nis::from_decimal(dec!(15000.00)).unwrap()
        );
        assert_eq!(Nis::parse("15000").unwrap(), Nis::from_whole(15_000));
        assert_eq!(Nis::parse("15000.00").unwrap().to_string(), "15000.00");
        assert_eq!(Nis::parse("-12.5").unwrap().to_string(), "-12.50");
        assert_eq!(Nis::parse("0.01").unwrap().amount(), dec!(0.01));
        assert_eq!(Nis::parse("1.230").unwrap().to_string(), "1.23");
        assert_eq!(Nis::parse("007").unwrap().to_string(), "7.00");
    }

    #[test]
    fn nis_rejects_malformed() {
        for s in [
            "1e5",
            "abc",
            "1.234",
            "",
            "-",
            ".5",
            "5.",
            "+5",
            " 5",
            "5 ",
            "1_000",
            "1,000.00",
            "--5",
            "5-",
            "NaN",
            "10000000000000000",
            "-10000000000000000",
            "99999999999999999999999999999999",
            "1.0000000000000000000000000000001",
        ] {
            let err = Nis::parse(s).expect_err(s);
            assert_eq!(err.field, "amount", "{s:?}");
        }
        assert!(Nis::parse("9999999999999999.99").is_ok());
        assert!(Nis::parse("-9999999999999999.99").is_ok());
    }

    #[test]
    fn nis_from_decimal_normalises_trailing_zeros_only() {
        assert_eq!(
            Nis::from_decimal(dec!(15000.000)).unwrap(),
            Nis::from_whole(15_000)
        );
        assert!(Nis::from_decimal(dec!(1.005)).is_err());
        assert!(Nis::from_decimal(dec!(10000000000000000)).is_err());
        assert_eq!(Nis::from_decimal(dec!(7)).unwrap().amount().scale(), 2);
    }

    #[test]
    fn nis_negative_zero_is_zero() {
        let z = Nis::parse("-0.00").unwrap();
        assert_eq!(z, Nis::ZERO);
        assert_eq!(z.to_string(), "0.00");
        assert_eq!(Nis::from_whole(0).to_string(), "0.00");
    }

    #[test]
    fn nis_from_whole_is_const_and_exact() {
        const DEFAULT_THRESHOLD: Nis = Nis::from_whole(15_000);
        assert_eq!(DEFAULT_THRESHOLD.to_string(), "15000.00");
        assert_eq!(Nis::from_whole(-42).amount(), dec!(-42.00));
        assert_eq!(
            Nis::from_whole(9_999_999_999_999_999).to_string(),
            "9999999999999999.00"
        );
        assert_eq!(
            Nis::from_whole(-9_999_999_999_999_999).to_string(),
            "-9999999999999999.00"
        );
        assert_eq!(Nis::from_whole(5_000_000_000).amount(), dec!(5000000000));
    }

    #[test]
    #[should_panic(expected = "10^16")]
    fn nis_from_whole_panics_out_of_range() {
        let _ = Nis::from_whole(10_000_000_000_000_000);
    }

    #[test]
    fn nis_threshold_must_be_positive() {
        assert_eq!(
            Nis::parse_threshold("15000").unwrap(),
            Nis::from_whole(15_000)
        );
        assert_eq!(Nis::parse_threshold("0.01").unwrap().to_string(), "0.01");
        for s in ["0", "0.00", "-1", "-0", "abc", "1.001"] {
            assert_eq!(
                Nis::parse_threshold(s).unwrap_err().field,
                "threshold",
                "{s:?}"
            );
        }
    }

    #[test]
    fn nis_ordering_and_serde() {
        assert!(Nis::parse("-0.01").unwrap() < Nis::ZERO);
        assert!(Nis::parse("14999.99").unwrap() < Nis::from_whole(15_000));
        let n = Nis::parse("-12.5").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"-12.50\"");
        assert_eq!(json_round_trip(&n), n);
        assert!(serde_json::from_str::<Nis>("\"1.005\"").is_err());
    }

    // --- Phone ---------------------------------------------------------------------------

    const ISRAELI_FORMATS: [&str; 10] = [
        "050-123-4567",
        "0501234567",
        "050 1234567",
        "(050) 123-4567",
        "972501234567",
        "+972 50-123-4567",
        "+972-50-1234567",
        "00972501234567",
        "+972501234567",
        "050.123.4567",
    ];

    #[test]
    fn phone_israeli_formats_normalise_to_e164() {
        for s in ISRAELI_FORMATS {
            assert_eq!(Phone::parse(s).unwrap().as_e164(), "+972501234567", "{s:?}");
        }
    }

    #[test]
    fn phone_international_numbers() {
        assert_eq!(
            Phone::parse("+1 (212) 555-0123").unwrap().as_e164(),
            "+12125550123"
        );
        assert_eq!(
            Phone::parse("0044 20 7946 0958").unwrap().as_e164(),
            "+442079460958"
        );
        assert_eq!(Phone::parse("+12345678").unwrap().as_e164(), "+12345678"); // 8 digits
        assert_eq!(
            Phone::parse("+123456789012345").unwrap().as_e164(),
            "+123456789012345"
        ); // 15 digits
    }

    #[test]
    fn phone_rejects_invalid() {
        for s in [
            "",
            "   ",
            "+",
            "abc",
            "050-123-456a",
            "+97221234567",   // Jerusalem landline
            "021234567",      // local landline
            "+9725012345678", // Israeli mobile, one digit too many
            "+97250123456",   // one digit too few
            "050123456",
            "05012345678",
            "+1234567",          // 7 digits
            "+1234567890123456", // 16 digits
            "+0123456789",
            "+00972501234567",
            "12125550123", // no country code marker
            "050+1234567",
            "++972501234567",
            "+972_50_123_4567",
            "+972 50 123 4567\n",
            "0\u{0665}01234567", // Arabic-Indic digit
        ] {
            let err = Phone::parse(s).expect_err(s);
            assert_eq!(err.field, "phone", "{s:?}");
        }
    }

    #[test]
    fn phone_errors_do_not_echo_the_number() {
        let err = Phone::parse("+97221234567").unwrap_err().to_string();
        assert!(!err.contains("21234567"), "{err}");
    }

    #[test]
    fn phone_masking() {
        let p = Phone::parse("050-123-4567").unwrap();
        assert_eq!(p.masked(), "+97250*****67");
        assert!(!p.masked().contains("12345"));
        assert_eq!(format!("{p:?}"), "Phone(\"+97250*****67\")");
        assert_eq!(Phone::parse("+12345678").unwrap().masked(), "+12345*78");
    }

    #[test]
    fn phone_serde_uses_full_number() {
        let p = Phone::parse("050-123-4567").unwrap();
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"+972501234567\"");
        assert_eq!(json_round_trip(&p), p);
        assert_eq!(String::from(p.clone()), "+972501234567");
        assert_eq!(Phone::try_from("0501234567".to_owned()).unwrap(), p);
        assert!(serde_json::from_str::<Phone>("\"+97221234567\"").is_err());
    }

    // --- Identifiers ---------------------------------------------------------------------

    #[test]
    fn ids_accept_valid() {
        let a = AccountId::parse("ACC-12345-67890").unwrap();
        assert_eq!(a.as_str(), "ACC-12345-67890");
        assert_eq!(a.to_string(), "ACC-12345-67890");
        assert_eq!("ACC-12345-67890".parse::<AccountId>().unwrap(), a);
        assert_eq!(String::from(a.clone()), "ACC-12345-67890");
        assert_eq!(json_round_trip(&a), a);
        let c = CustomerId::parse("cust_42").unwrap();
        assert_eq!(json_round_trip(&c), c);
        assert!(AccountId::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn ids_reject_invalid() {
        for s in [
            "", "-ACC", "_ACC", "ACC 1", "ACC/1", "ACC.1", "ACC\n", "ACC%2F", "ÄCC", "ACC-é",
        ] {
            assert_eq!(
                AccountId::parse(s).unwrap_err().field,
                "account_id",
                "{s:?}"
            );
            assert_eq!(
                CustomerId::parse(s).unwrap_err().field,
                "customer_id",
                "{s:?}"
            );
        }
        assert!(AccountId::parse(&"a".repeat(65)).is_err());
        assert!(serde_json::from_str::<AccountId>("\"a/b\"").is_err());
        assert!(AccountId::try_from("a b".to_owned()).is_err());
    }

    // --- Language ------------------------------------------------------------------------

    #[test]
    fn language_codes() {
        assert_eq!(Language::default(), Language::Hebrew);
        for (s, l) in [
            ("he", Language::Hebrew),
            ("AR", Language::Arabic),
            ("En", Language::English),
            ("rU", Language::Russian),
        ] {
            assert_eq!(Language::parse(s).unwrap(), l);
        }
        for l in Language::ALL {
            assert_eq!(l.code().parse::<Language>().unwrap(), l);
            assert_eq!(l.to_string(), l.code());
            assert_eq!(String::from(l), l.code());
            assert_eq!(json_round_trip(&l), l);
        }
        assert_eq!(serde_json::to_string(&Language::Russian).unwrap(), "\"ru\"");
        for s in ["", "fr", "heb", " he", "Hebrew", "iw"] {
            assert!(Language::parse(s).is_err(), "{s:?}");
        }
    }

    // --- Properties ----------------------------------------------------------------------

    fn any_year_month() -> impl Strategy<Value = YearMonth> {
        (MIN_YEAR..=MAX_YEAR, 1u32..=12).prop_map(|(y, m)| YearMonth::new(y, m).unwrap())
    }

    fn any_business_date() -> impl Strategy<Value = BusinessDate> {
        let span = (BusinessDate::MAX.0 - BusinessDate::MIN.0).num_days();
        (0..=span).prop_map(|n| BusinessDate(BusinessDate::MIN.0 + TimeDelta::days(n)))
    }

    fn valid_id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
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

        #[test]
        fn prop_nis_cents_round_trip(cents in -999_999_999_999_999_999i64..=999_999_999_999_999_999) {
            let n = Nis::from_decimal(Decimal::new(cents, 2)).unwrap();
            let shown = n.to_string();
            prop_assert_eq!(Nis::parse(&shown).unwrap(), n);
            prop_assert_eq!(n.amount().mantissa(), i128::from(cents));
            prop_assert_eq!(n.amount().scale(), 2);
            prop_assert_eq!(json_round_trip(&n), n);
        }

        #[test]
        fn prop_nis_ordering_matches_decimal(a in any::<i64>(), b in any::<i64>()) {
            let (a, b) = (Decimal::new(a / 10, 2), Decimal::new(b / 10, 2));
            let (na, nb) = (Nis::from_decimal(a).unwrap(), Nis::from_decimal(b).unwrap());
            prop_assert_eq!(na.cmp(&nb), a.cmp(&b));
            prop_assert_eq!(na == nb, a == b);
        }

        #[test]
        fn prop_nis_from_whole_matches_parse(n in -9_999_999_999_999_999i64..=9_999_999_999_999_999) {
            prop_assert_eq!(Nis::from_whole(n), Nis::parse(&n.to_string()).unwrap());
        }

        #[test]
        fn prop_nis_rejects_sub_agora(cents in any::<i32>(), extra in 1i64..=9) {
            let d = Decimal::new(i64::from(cents) * 10 + extra, 3);
            prop_assert!(Nis::from_decimal(d).is_err());
            prop_assert!(Nis::parse(&d.to_string()).is_err());
        }

        #[test]
        fn prop_israeli_mobile_suffix_parses(suffix in "[0-9]{8}") {
            let expected = format!("+9725{suffix}");
            for s in [
                format!("05{suffix}"),
                format!("05{}-{}", &suffix[..1], &suffix[1..]),
                format!("+972 5{suffix}"),
                format!("009725{suffix}"),
                format!("9725{suffix}"),
            ] {
                let p = Phone::parse(&s).unwrap();
                prop_assert_eq!(p.as_e164(), expected.as_str());
                let masked = p.masked();
                prop_assert_eq!(masked.chars().filter(char::is_ascii_digit).count(), 7);
                prop_assert_eq!(&masked, &format!("+9725{}*****{}", &suffix[..1], &suffix[6..]));
                let debug = format!("{:?}", p);
                prop_assert!(!debug.contains(&expected[1..]));
            }
        }

        #[test]
        fn prop_phone_international_round_trips(digits in "[1-9][0-9]{7,14}") {
            let p = Phone::parse(&format!("+{digits}"));
            if digits.starts_with("972") {
                // Only mobiles are accepted under +972.
                prop_assert_eq!(p.is_ok(), digits.len() == 12 && digits.as_bytes()[3] == b'5');
            } else {
                let p = p.unwrap();
                prop_assert_eq!(Phone::parse(p.as_e164()).unwrap(), p.clone());
                prop_assert_eq!(json_round_trip(&p), p.clone());
                prop_assert_eq!(p.masked().len(), p.as_e164().len());
            }
        }

        #[test]
        fn prop_phone_with_letters_is_rejected(s in "[0-9 +()-]{0,8}[A-Za-z][0-9A-Za-z +()-]{0,12}") {
            prop_assert!(Phone::parse(&s).is_err());
        }

        #[test]
        fn prop_ids_of_allowed_chars_parse(s in valid_id()) {
            let a = AccountId::parse(&s).unwrap();
            prop_assert_eq!(a.as_str(), s.as_str());
            prop_assert_eq!(AccountId::parse(&a.to_string()).unwrap(), a.clone());
            prop_assert_eq!(json_round_trip(&a), a);
            let c = CustomerId::parse(&s).unwrap();
            prop_assert_eq!(json_round_trip(&c), c);
        }

        #[test]
        fn prop_ids_with_slash_or_space_are_rejected(
            s in valid_id(),
            pos in any::<prop::sample::Index>(),
            bad in prop::sample::select(vec!['/', ' ']),
        ) {
            let mut s = s;
            let at = pos.index(s.len() + 1);
            s.insert(at, bad);
            prop_assert!(AccountId::parse(&s).is_err());
            prop_assert!(CustomerId::parse(&s).is_err());
        }

        #[test]
        fn prop_ids_too_long_are_rejected(s in "[A-Za-z0-9][A-Za-z0-9_-]{64,100}") {
            prop_assert!(AccountId::parse(&s).is_err());
        }
    }
}
