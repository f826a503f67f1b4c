//! Calendar dates and date-times as the national schema writes them (`yyyy-MM-dd`,
//! `yyyy-MM-dd HH:mm:ss`, Beijing time), without a time-zone database: China has used UTC+8
//! without daylight saving since 1991, and the schema fixes Beijing time.

use std::fmt;

/// Beijing time's offset from UTC, in seconds.
pub const BEIJING_OFFSET_SECS: i64 = 8 * 3600;
/// 0001-01-01 and 9999-12-31, in days since 1970-01-01: the years a date's text can hold.
const FIRST_DAY: i64 = -719_162;
const LAST_DAY: i64 = 2_932_896;

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day, 1..=31.
    pub day: u8,
}

/// A date and a time of day, Beijing time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// The date.
    pub date: Date,
    /// Seconds since midnight.
    pub secs: u32,
}

const fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in a month of a year; 0 for a month outside 1..=12.
pub const fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

impl Date {
    /// A date, if it exists in the calendar.
    pub fn new(year: i32, month: u8, day: u8) -> Option<Self> {
        (day >= 1 && day <= days_in_month(year, month)).then_some(Self { year, month, day })
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date of a day count since 1970-01-01.
    ///
    /// Days outside years 1 to 9999 are clamped to them.
    pub fn from_days(z: i64) -> Self {
        let z = z.clamp(FIRST_DAY, LAST_DAY) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Self { year, month, day }
    }

    /// The Beijing date at a Unix time.
    pub fn beijing_today(unix_secs: i64) -> Self {
        Self::from_days(
            unix_secs
                .saturating_add(BEIJING_OFFSET_SECS)
                .div_euclid(86_400),
        )
    }

    /// Parses `yyyy-MM-dd`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        Self::new(
            digits(&b[0..4])? as i32,
            digits(&b[5..7])? as u8,
            digits(&b[8..10])? as u8,
        )
    }

    /// Parses the compact `yyyyMMdd` of ID numbers.
    pub fn parse_compact(b: &[u8]) -> Option<Self> {
        if b.len() != 8 {
            return None;
        }
        Self::new(
            digits(&b[0..4])? as i32,
            digits(&b[4..6])? as u8,
            digits(&b[6..8])? as u8,
        )
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl DateTime {
    /// Parses `yyyy-MM-dd HH:mm:ss`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date = Date::parse(s.get(..10)?)?;
        let (h, m, sec) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        (h < 24 && m < 60 && sec < 60).then_some(Self {
            date,
            secs: h * 3600 + m * 60 + sec,
        })
    }

    /// The Unix time of this Beijing date-time.
    pub fn unix(self) -> i64 {
        self.date.days_since_epoch() * 86_400 + i64::from(self.secs) - BEIJING_OFFSET_SECS
    }

    /// The Beijing date-time at a Unix time.
    ///
    /// Times outside years 1 to 9999 are clamped to them: the text form has four digits of
    /// year, and an unverified code may carry any number.
    pub fn from_unix(unix_secs: i64) -> Self {
        let local = unix_secs
            .saturating_add(BEIJING_OFFSET_SECS)
            .clamp(FIRST_DAY * 86_400, LAST_DAY * 86_400 + 86_399);
        Self {
            date: Date::from_days(local.div_euclid(86_400)),
            secs: local.rem_euclid(86_400) as u32,
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.secs / 3600, self.secs / 60 % 60, self.secs % 60);
        write!(f, "{} {h:02}:{m:02}:{s:02}", self.date)
    }
}

/// The value of ASCII decimal digits; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn knows_leap_years_and_month_lengths() {
        assert!(Date::parse("2020-02-29").is_some());
        assert!(Date::parse("2019-02-29").is_none());
        assert!(Date::parse("1900-02-29").is_none());
        assert!(Date::parse("2000-02-29").is_some());
        assert!(Date::parse("2020-04-31").is_none());
        assert!(Date::parse("2020-13-01").is_none());
        assert!(Date::parse("2020-1-01").is_none());
        assert!(DateTime::parse("2020-04-29 24:00:00").is_none());
        assert!(DateTime::parse("2020-04-29T08:00:00").is_none());
    }

    #[test]
    fn converts_unix_time_to_beijing_time() {
        // 2020-04-29 00:00:00 Beijing = 2020-04-28 16:00:00 UTC = 1588089600.
        let dt = DateTime::parse("2020-04-29 00:00:00").unwrap();
        assert_eq!(dt.unix(), 1_588_089_600);
        assert_eq!(DateTime::from_unix(1_588_089_600), dt);
        assert_eq!(Date::beijing_today(1_588_089_599).to_string(), "2020-04-28");
    }

    #[test]
    fn far_out_times_are_clamped_to_the_years_a_date_can_hold() {
        assert_eq!(Date::from_days(FIRST_DAY).to_string(), "0001-01-01");
        assert_eq!(Date::from_days(LAST_DAY).to_string(), "9999-12-31");
        assert_eq!(
            DateTime::from_unix(i64::MAX).to_string(),
            "9999-12-31 23:59:59"
        );
        assert_eq!(
            DateTime::from_unix(i64::MIN).to_string(),
            "0001-01-01 00:00:00"
        );
        assert_eq!(Date::beijing_today(i64::MAX).to_string(), "9999-12-31");
        assert_eq!(Date::from_days(i64::MIN).to_string(), "0001-01-01");
    }

    proptest! {
        #[test]
        fn days_round_trip(z in FIRST_DAY..=LAST_DAY) {
            let d = Date::from_days(z);
            prop_assert_eq!(d.days_since_epoch(), z);
            prop_assert_eq!(Date::parse(&d.to_string()).filter(|_| d.year >= 1000 && d.year <= 9999).is_some(), d.year >= 1000 && d.year <= 9999);
        }
    }
}
