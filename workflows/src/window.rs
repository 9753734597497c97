//! The SMS send window: on which days and between which wall-clock times (Asia/Jerusalem)
//! messages may go out.
//!
//! Written as a spec string, e.g. `"sun-thu 09:00-20:00"` (the default) or
//! `"sun,mon,tue 09:00-20:00"`; that string is also the serde form. The window never opens on a
//! Friday evening or a Saturday: Saturday is refused outright, and Friday only when the window
//! ends by 14:00, before Shabbat begins. `"always"` is the unrestricted window, for demos and
//! tests only.
//!
//! The functions are pure over an explicit UTC instant (the workflow clock), so workflow code
//! stays deterministic under replay. Each allowed local date `d` opens the UTC interval
//! `[at(d, start), at(d, end))`, where `at` maps a wall-clock time to an instant the same way as
//! [`crate::domain::BusinessDate::at_local`]: the earlier instant when the time is ambiguous
//! (autumn fall-back), and the first instant after the gap when it does not exist (spring
//! forward). The end is exclusive: at 20:00:00 sharp a 09:00-20:00 window is closed.
//!
//! Over 600 lines: about 380 of the send-window rules and 330 of unit tests (DST, holidays, edges).

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc, Weekday,
};

use crate::domain::{DomainError, JERUSALEM, shown};

/// Error field of a rejected window.
const FIELD: &str = "send_window";

/// Spec of the unrestricted window.
const ALWAYS: &str = "always";

/// Day names in spec order (bit `i` of a day set is `DAY_NAMES[i]`).
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Latest end of a window that includes Friday (Shabbat starts Friday afternoon).
const FRIDAY_LATEST_END: NaiveTime = match NaiveTime::from_hms_opt(14, 0, 0) {
    Some(t) => t,
    None => panic!("14:00 exists"),
};

/// Bit of `day` in a day set (Sunday = bit 0).
fn day_bit(day: Weekday) -> u8 {
    1 << day.num_days_from_sunday()
}

/// The weekday of bit `i` (Sunday = 0).
fn weekday_of(i: usize) -> Weekday {
    [
        Weekday::Sun,
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
    ][i % 7]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// Every day, the whole day.
    Always,
    /// `days` (bit set, Sunday = bit 0), from `start` (inclusive) to `end` (exclusive).
    Weekly {
        days: u8,
        start: NaiveTime,
        end: NaiveTime,
    },
}

/// When SMS may be sent: days of the week and a local time range in Asia/Jerusalem.
///
/// Invariants (checked by every constructor): at least one day; no Saturday; Friday only if the
/// window ends by 14:00; start before end on the same day; whole minutes. The default is
/// Sunday–Thursday 09:00–20:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SendWindow(Kind);

impl Default for SendWindow {
    /// Sunday–Thursday, 09:00–20:00 Asia/Jerusalem.
    fn default() -> Self {
        let days = [
            Weekday::Sun,
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
        ]
        .into_iter()
        .fold(0, |acc, d| acc | day_bit(d));
        Self(Kind::Weekly {
            days,
            start: hm(9, 0),
            end: hm(20, 0),
        })
    }
}

/// A whole-minute time that is known to exist.
fn hm(hour: u32, minute: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN)
}

impl SendWindow {
    /// The window that is always open (`"always"`). **For demos and tests only**: it would send
    /// customers SMS at night and on Shabbat.
    pub fn unrestricted() -> Self {
        Self(Kind::Always)
    }

    /// A window on `days` from `start` (inclusive) to `end` (exclusive), Asia/Jerusalem.
    ///
    /// Refused: no days, Saturday, Friday with an end after 14:00, `start >= end`, and times that
    /// are not whole minutes.
    pub fn new(
        days: impl IntoIterator<Item = Weekday>,
        start: NaiveTime,
        end: NaiveTime,
    ) -> Result<Self, DomainError> {
        let days = days.into_iter().fold(0, |acc, d| acc | day_bit(d));
        if days == 0 {
            return Err(DomainError::new(FIELD, "no days given"));
        }
        if days & day_bit(Weekday::Sat) != 0 {
            return Err(DomainError::new(
                FIELD,
                "Saturday is not allowed: no messages on Shabbat",
            ));
        }
        for t in [start, end] {
            if t.second() != 0 || t.nanosecond() != 0 {
                return Err(DomainError::new(
                    FIELD,
                    format!("times must be whole minutes, got {t}"),
                ));
            }
        }
        if start >= end {
            return Err(DomainError::new(
                FIELD,
                format!(
                    "the start {} must be before the end {} (windows cannot span midnight)",
                    start.format("%H:%M"),
                    end.format("%H:%M")
                ),
            ));
        }
        if days & day_bit(Weekday::Fri) != 0 && end > FRIDAY_LATEST_END {
            return Err(DomainError::new(
                FIELD,
                format!(
                    "a window that includes Friday must end by 14:00 (no messages on Friday \
                     evening), got {}",
                    end.format("%H:%M")
                ),
            ));
        }
        Ok(Self(Kind::Weekly { days, start, end }))
    }

    /// Parses a spec: `"always"`, or days and a time range such as `"sun-thu 09:00-20:00"`,
    /// `"sun,tue-thu 09:30-18:00"` or `"fri 08:00-13:00"`. Days are `sun mon tue wed thu fri sat`
    /// (any ASCII case), as a comma-separated list of single days and ranges `a-b` in week order
    /// (Sunday first); times are `HH:MM`, 24-hour. Errors name the field `send_window`.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let spec = s.trim();
        if spec.eq_ignore_ascii_case(ALWAYS) {
            return Ok(Self::unrestricted());
        }
        let bad = |why: &str| DomainError::new(FIELD, format!("{why} in {}", shown(s)));
        let (days, times) = spec
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| bad("expected \"<days> HH:MM-HH:MM\" or \"always\""))?;
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| bad("expected a time range HH:MM-HH:MM"))?;
        let start = parse_time(start).ok_or_else(|| bad("expected a start time HH:MM"))?;
        let end = parse_time(end).ok_or_else(|| bad("expected an end time HH:MM"))?;
        let mut set = Vec::new();
        for item in days.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(bad("empty day"));
            }
            match item.split_once('-') {
                Some((from, to)) => {
                    let from = parse_day(from.trim()).ok_or_else(|| bad("unknown day"))?;
                    let to = parse_day(to.trim()).ok_or_else(|| bad("unknown day"))?;
                    if from > to {
                        return Err(bad("day range must run forward in the week (Sunday first)"));
                    }
                    set.extend((from..=to).map(weekday_of));
                }
                None => set.push(weekday_of(
                    parse_day(item).ok_or_else(|| bad("unknown day"))?,
                )),
            }
        }
        Self::new(set, start, end)
    }

    /// Whether this is the unrestricted window.
    pub fn is_unrestricted(&self) -> bool {
        self.0 == Kind::Always
    }

    /// The days the window opens on, Sunday first (all seven when unrestricted).
    pub fn days(&self) -> Vec<Weekday> {
        let bits = match self.0 {
            Kind::Always => 0x7f,
            Kind::Weekly { days, .. } => days,
        };
        (0..7)
            .filter(|i| bits & (1 << i) != 0)
            .map(weekday_of)
            .collect()
    }

    /// Local start (inclusive) and end (exclusive) times; `None` when unrestricted.
    pub fn hours(&self) -> Option<(NaiveTime, NaiveTime)> {
        match self.0 {
            Kind::Always => None,
            Kind::Weekly { start, end, .. } => Some((start, end)),
        }
    }

    /// Whether a message may be sent at `t`.
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        match self.0 {
            Kind::Always => true,
            Kind::Weekly { .. } => self.interval_from(t).is_some_and(|(open, _)| open <= t),
        }
    }

    /// The first instant at or after `t` when the window is open: `t` itself when it is open.
    pub fn next_open(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self.0 {
            Kind::Always => t,
            // `None` only happens at the ends of chrono's range (some 262,000 years away).
            Kind::Weekly { .. } => self.interval_from(t).map_or(t, |(open, _)| open.max(t)),
        }
    }

    /// When the open interval containing `t` closes (exclusive end). `None` when the window is
    /// closed at `t`, and when it is unrestricted (it never closes).
    pub fn closes_at(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.0 {
            Kind::Always => None,
            Kind::Weekly { .. } => self
                .interval_from(t)
                .filter(|&(open, _)| open <= t)
                .map(|(_, close)| close),
        }
    }

    /// The first non-empty open interval `[open, close)` with `close > t`: it contains `t` when
    /// `open <= t`, otherwise it is the next one.
    fn interval_from(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let Kind::Weekly { days, start, end } = self.0 else {
            return None;
        };
        // The intervals of consecutive dates are disjoint and in order. Starting the day before
        // `t`'s local date covers an interval that a DST change stretches past midnight, and
        // eight more days reach every weekday at least once.
        let mut date = local_date(t)?.pred_opt()?;
        for _ in 0..10 {
            if days & day_bit(date.weekday()) != 0 {
                let open = local_instant(date.and_time(start))?;
                let close = local_instant(date.and_time(end))?;
                // Both ends inside one spring-forward gap make an empty interval: skipped.
                if open < close && close > t {
                    return Some((open, close));
                }
            }
            date = date.succ_opt()?;
        }
        None
    }
}

/// The Asia/Jerusalem date of `t`; `None` within a day of chrono's range limits, where the
/// conversion could overflow.
fn local_date(t: DateTime<Utc>) -> Option<NaiveDate> {
    const LIMIT: i32 = 200_000;
    if t.year().abs() > LIMIT {
        return None;
    }
    Some(t.with_timezone(&JERUSALEM).date_naive())
}

/// The instant of Asia/Jerusalem wall time `local`: the earlier one when ambiguous, and when it
/// falls in a DST gap the first instant after the gap (the first existing wall-clock minute
/// after `local`; Israel's clock changes fall on whole hours, so that is the transition itself).
fn local_instant(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match JERUSALEM.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => Some(t.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        MappedLocalTime::None => (1..=24 * 60).find_map(|minutes| {
            let later = local.checked_add_signed(TimeDelta::minutes(minutes))?;
            JERUSALEM
                .from_local_datetime(&later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        }),
    }
}

/// Parses exactly `HH:MM` (24-hour).
fn parse_time(s: &str) -> Option<NaiveTime> {
    let (h, m) = s.split_once(':')?;
    let digits = |x: &str| {
        (x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
    };
    NaiveTime::from_hms_opt(digits(h)?, digits(m)?, 0)
}

/// Index (Sunday = 0) of a three-letter day name, any ASCII case.
fn parse_day(s: &str) -> Option<usize> {
    DAY_NAMES.iter().position(|d| d.eq_ignore_ascii_case(s))
}

impl fmt::Display for SendWindow {
    /// The canonical spec: `"always"`, or the days Sunday first, runs of three or more days as
    /// ranges (`"sun-thu"`, `"sun,tue,thu"`), then `HH:MM-HH:MM`. It parses back to an equal
    /// window.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Kind::Weekly { days, start, end } = self.0 else {
            return f.write_str(ALWAYS);
        };
        let mut items = Vec::new();
        let mut i = 0;
        while i < 7 {
            if days & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < 7 && days & (1 << (j + 1)) != 0 {
                j += 1;
            }
            match j - i {
                0 => items.push(DAY_NAMES[i].to_owned()),
                1 => items.extend([DAY_NAMES[i].to_owned(), DAY_NAMES[j].to_owned()]),
                _ => items.push(format!("{}-{}", DAY_NAMES[i], DAY_NAMES[j])),
            }
            i = j + 1;
        }
        write!(
            f,
            "{} {}-{}",
            items.join(","),
            start.format("%H:%M"),
            end.format("%H:%M")
        )
    }
}

impl FromStr for SendWindow {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SendWindow {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<SendWindow> for String {
    fn from(value: SendWindow) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(s: &str) -> SendWindow {
        SendWindow::parse(s).unwrap()
    }

    /// An instant given as Asia/Jerusalem wall time (must exist and be unambiguous).
    fn local(s: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        JERUSALEM
            .from_local_datetime(&naive)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    // --- parsing ------------------------------------------------------------------------------

    #[test]
    fn default_is_sunday_to_thursday_nine_to_eight() {
        let d = SendWindow::default();
        assert_eq!(d, w("sun-thu 09:00-20:00"));
        assert_eq!(d.to_string(), "sun-thu 09:00-20:00");
        assert_eq!(
            d.days(),
            vec![
                Weekday::Sun,
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu
            ]
        );
        assert_eq!(d.hours(), Some((hm(9, 0), hm(20, 0))));
        assert!(!d.is_unrestricted());
    }

    #[test]
    fn parses_lists_ranges_and_case() {
        assert_eq!(w("sun,mon,tue,wed,thu 09:00-20:00"), SendWindow::default());
        assert_eq!(w("SUN-Wed,thu 09:00-20:00"), SendWindow::default());
        assert_eq!(w("  sun, mon-thu   09:00-20:00 "), SendWindow::default());
        assert_eq!(w("mon,wed 10:30-12:00").to_string(), "mon,wed 10:30-12:00");
        assert_eq!(w("mon-tue 10:30-12:00").to_string(), "mon,tue 10:30-12:00");
        assert_eq!(
            w("sun,tue-thu,fri 08:00-14:00").to_string(),
            "sun,tue-fri 08:00-14:00"
        );
        assert_eq!(w("fri 08:00-13:00").days(), vec![Weekday::Fri]);
        assert_eq!(
            w("thu,thu,sun-mon 00:00-23:59").to_string(),
            "sun,mon,thu 00:00-23:59"
        );
    }

    #[test]
    fn always_is_unrestricted() {
        for spec in ["always", "ALWAYS", " always "] {
            let a = w(spec);
            assert!(a.is_unrestricted());
            assert_eq!(a, SendWindow::unrestricted());
        }
        let a = SendWindow::unrestricted();
        assert_eq!(a.to_string(), "always");
        assert_eq!(a.days().len(), 7);
        assert_eq!(a.hours(), None);
        let t = local("2026-10-24 23:30:00"); // a Saturday night
        assert!(a.is_open(t));
        assert_eq!(a.next_open(t), t);
        assert_eq!(a.closes_at(t), None);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            ("", "expected"),
            ("sun-thu", "expected"),
            ("09:00-20:00", "expected"),
            ("sun-thu 20:00-09:00", "must be before the end"),
            ("sun-thu 09:00-09:00", "must be before the end"),
            ("sun-sat 09:00-20:00", "Saturday"),
            ("sat 09:00-12:00", "Saturday"),
            ("thu-sun 09:00-12:00", "forward"),
            ("fri 09:00-14:01", "Friday"),
            ("sun-fri 09:00-20:00", "Friday"),
            ("sun-thu 9:00-20:00", "start time"),
            ("sun-thu 09:00-24:00", "end time"),
            ("sun-thu 09:00-20:60", "end time"),
            ("sun-thu 09:00", "time range"),
            ("sun,,mon 09:00-20:00", "empty day"),
            ("sunday 09:00-20:00", "unknown day"),
            ("sun-thu 09:00-+0:00", "end time"),
        ];
        for (spec, expected) in cases {
            let err = SendWindow::parse(spec).unwrap_err();
            assert_eq!(err.field, "send_window", "{spec:?}");
            assert!(err.message.contains(expected), "{spec:?}: {err}");
        }
        assert!(SendWindow::parse("fri 08:00-14:00").is_ok());
        let err = SendWindow::new([], hm(9, 0), hm(10, 0)).unwrap_err();
        assert!(err.message.contains("no days"), "{err}");
        let odd = NaiveTime::from_hms_opt(9, 0, 30).unwrap();
        assert!(SendWindow::new([Weekday::Mon], odd, hm(10, 0)).is_err());
    }

    #[test]
    fn serde_uses_the_spec_string() {
        let d = SendWindow::default();
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            "\"sun-thu 09:00-20:00\""
        );
        let back: SendWindow = serde_json::from_str("\"sun,mon,tue,wed,thu 09:00-20:00\"").unwrap();
        assert_eq!(back, d);
        let always: SendWindow = serde_json::from_str("\"always\"").unwrap();
        assert!(always.is_unrestricted());
        assert_eq!(serde_json::to_string(&always).unwrap(), "\"always\"");
        assert!(serde_json::from_str::<SendWindow>("\"sat 09:00-10:00\"").is_err());
        assert_eq!(
            "fri 08:00-13:00".parse::<SendWindow>().unwrap(),
            w("fri 08:00-13:00")
        );
    }

    // --- open / closed ------------------------------------------------------------------------

    #[test]
    fn friday_and_saturday_are_closed_by_default() {
        let d = SendWindow::default();
        // Friday 2026-10-23 13:00 → Sunday 2026-10-25 09:00.
        let friday = local("2026-10-23 13:00:00");
        assert!(!d.is_open(friday));
        assert_eq!(d.closes_at(friday), None);
        assert_eq!(d.next_open(friday), local("2026-10-25 09:00:00"));
        let saturday = local("2026-10-24 12:00:00");
        assert!(!d.is_open(saturday));
        assert_eq!(d.next_open(saturday), local("2026-10-25 09:00:00"));
    }

    #[test]
    fn a_friday_morning_window_is_open_on_friday_13_00() {
        let fri = w("sun-thu,fri 09:00-14:00");
        let t = local("2026-10-23 13:00:00");
        assert!(fri.is_open(t));
        assert_eq!(fri.next_open(t), t);
        assert_eq!(fri.closes_at(t), Some(local("2026-10-23 14:00:00")));
        assert!(!fri.is_open(local("2026-10-23 14:00:00")));
    }

    #[test]
    fn opening_and_closing_edges_on_a_sunday() {
        let d = SendWindow::default();
        let before = local("2026-11-01 08:59:59");
        let opening = local("2026-11-01 09:00:00");
        assert!(!d.is_open(before));
        assert_eq!(d.next_open(before), opening);
        assert!(d.is_open(opening));
        assert_eq!(d.next_open(opening), opening);
        assert_eq!(d.closes_at(opening), Some(local("2026-11-01 20:00:00")));
        let last = local("2026-11-01 19:59:59");
        assert!(d.is_open(last));
        let closing = local("2026-11-01 20:00:00");
        assert!(!d.is_open(closing));
        assert_eq!(d.closes_at(closing), None);
        assert_eq!(d.next_open(closing), local("2026-11-02 09:00:00"));
        // Thursday evening → Sunday morning.
        assert_eq!(
            d.next_open(local("2026-11-05 20:00:00")),
            local("2026-11-08 09:00:00")
        );
    }

    #[test]
    fn spring_forward_friday_2026_03_27() {
        // Israel moves from UTC+2 to UTC+3 at 02:00 on Friday 2026-03-27.
        let d = SendWindow::default();
        // Thursday 20:00 IST (18:00Z) closes; Sunday 09:00 IDT = 06:00Z opens.
        assert_eq!(
            d.closes_at(utc("2026-03-26T17:00:00Z")),
            Some(utc("2026-03-26T18:00:00Z"))
        );
        assert_eq!(
            d.next_open(utc("2026-03-26T18:00:00Z")),
            utc("2026-03-29T06:00:00Z")
        );
        // A window starting inside the missing hour opens when the gap ends (03:00 IDT).
        let early = w("fri 02:30-04:00");
        assert_eq!(
            early.next_open(utc("2026-03-26T12:00:00Z")),
            utc("2026-03-27T00:00:00Z")
        );
        assert!(early.is_open(utc("2026-03-27T00:00:00Z")));
        assert!(!early.is_open(utc("2026-03-26T23:59:59Z")));
        assert_eq!(
            early.closes_at(utc("2026-03-27T00:30:00Z")),
            Some(utc("2026-03-27T01:00:00Z"))
        );
        // Entirely inside the gap: that Friday has no window; the next Friday's opens at 02:15
        // IDT.
        let lost = w("fri 02:15-02:45");
        assert_eq!(
            lost.next_open(utc("2026-03-26T12:00:00Z")),
            utc("2026-04-02T23:15:00Z")
        );
    }

    #[test]
    fn fall_back_sunday_2026_10_25() {
        // Israel moves from UTC+3 to UTC+2 at 02:00 on Sunday 2026-10-25.
        let d = SendWindow::default();
        assert_eq!(
            d.next_open(utc("2026-10-23T10:00:00Z")),
            utc("2026-10-25T07:00:00Z")
        );
        assert_eq!(
            d.closes_at(utc("2026-10-25T07:00:00Z")),
            Some(utc("2026-10-25T18:00:00Z"))
        );
        // The week before, in summer time, the same wall times are an hour earlier in UTC.
        assert_eq!(
            d.closes_at(utc("2026-10-22T06:00:00Z")),
            Some(utc("2026-10-22T17:00:00Z"))
        );
        // Ambiguous wall times use the first occurrence: 00:30-01:30 closes at the first 01:30
        // (22:30Z) and stays closed during the repeated hour.
        let night = w("sun 00:30-01:30");
        assert!(night.is_open(utc("2026-10-24T22:00:00Z")));
        assert_eq!(
            night.closes_at(utc("2026-10-24T22:00:00Z")),
            Some(utc("2026-10-24T22:30:00Z"))
        );
        assert!(!night.is_open(utc("2026-10-24T23:15:00Z"))); // 01:15 again, second time
        assert_eq!(
            night.next_open(utc("2026-10-24T23:15:00Z")),
            utc("2026-10-31T22:30:00Z")
        );
    }

    // --- properties ---------------------------------------------------------------------------

    /// Seconds of 2026-01-01T00:00:00Z and 2029-01-01T00:00:00Z.
    const FROM: i64 = 1_767_225_600;
    const UNTIL: i64 = 1_861_920_000;

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        (FROM..UNTIL).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
    }

    fn window() -> impl Strategy<Value = SendWindow> {
        let fixed = prop::sample::select(vec![
            SendWindow::default(),
            w("sun-thu,fri 09:00-14:00"),
            w("mon,wed 00:00-23:59"),
            w("fri 02:30-04:00"),
            w("sun 00:30-01:30"),
            w("tue 01:59-02:01"),
        ]);
        let random = (1u8..64, 0u32..1439, 1u32..1440).prop_filter_map(
            "valid window",
            |(days, start, len)| {
                let end = start + len;
                let chosen = (0..6).filter(|i| days & (1 << i) != 0).map(weekday_of);
                let t = |m: u32| NaiveTime::from_hms_opt(m / 60, m % 60, 0);
                SendWindow::new(chosen, t(start)?, t(end)?).ok()
            },
        );
        prop_oneof![fixed, random]
    }

    proptest! {
        #[test]
        fn prop_next_open_is_the_first_open_instant(win in window(), t in instant()) {
            let next = win.next_open(t);
            prop_assert!(next >= t);
            prop_assert!(win.is_open(next), "{win} {t} -> {next}");
            prop_assert_eq!(win.is_open(t), next == t);
            // No open sample strictly between t and next_open(t).
            let mut s = t + TimeDelta::minutes(15);
            while s < next {
                prop_assert!(!win.is_open(s), "{} open at {} before {}", win, s, next);
                s += TimeDelta::minutes(15);
            }
        }

        #[test]
        fn prop_closes_at_ends_the_open_interval(win in window(), t in instant()) {
            match win.closes_at(t) {
                Some(close) => {
                    prop_assert!(win.is_open(t));
                    prop_assert!(close > t);
                    prop_assert!(win.is_open(close - TimeDelta::seconds(1)));
                    let mut s = t;
                    while s < close {
                        prop_assert!(win.is_open(s));
                        s += TimeDelta::minutes(15);
                    }
                    prop_assert!(close - t <= TimeDelta::hours(25));
                }
                None => prop_assert!(!win.is_open(t)),
            }
        }

        #[test]
        fn prop_display_parses_back(win in window()) {
            let spec = win.to_string();
            prop_assert_eq!(SendWindow::parse(&spec).unwrap(), win);
            let json = serde_json::to_string(&win).unwrap();
            prop_assert_eq!(serde_json::from_str::<SendWindow>(&json).unwrap(), win);
        }

        #[test]
        fn prop_never_open_on_saturday_or_friday_evening(win in window(), t in instant()) {
            let wall = t.with_timezone(&JERUSALEM);
            if win.is_open(t) {
                prop_assert_ne!(wall.weekday(), Weekday::Sat);
                if wall.weekday() == Weekday::Fri {
                    prop_assert!(wall.time() < FRIDAY_LATEST_END);
                }
            }
        }
    }
}
