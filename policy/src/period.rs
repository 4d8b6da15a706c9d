//! Calendar periods of 3proxy's traffic counters and reports (`countin ... D ...`,
//! `counter FILE D REPORT`), and the local civil time they are measured in.
//!
//! A counter of period "day" starts again from zero when the local date changes; a daily
//! report is written when the first dump of a new day finds the previous dump on another
//! day. Both need local calendar time (a day starts at local midnight, not at UTC
//! midnight), which only the daemon can read: it builds a [`LocalStamp`] from its clock and
//! time zone and passes it in. Nothing here reads a clock or knows a time zone.
//!
//! It is not the ACL's time-of-day matching (that is [`crate::acl::CivilTime`]).

use core::fmt;

/// One moment in local civil time, as the daemon's clock and time zone see it.
///
/// `unix` is the same moment as seconds since 1970-01-01 UTC: the counter file stores
/// that. The calendar fields are local time (the date and hour on the wall clock).
///
/// ```
/// use triproxy_policy::period::LocalStamp;
/// // Wednesday 2 December 2026, 09:15 local time (UTC+1 here).
/// let t = LocalStamp { unix: 1_796_199_300, year: 2026, month: 12, day: 2, hour: 9, minute: 15 };
/// assert_eq!(t.weekday(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStamp {
    /// Seconds since 1970-01-01 00:00 UTC.
    pub unix: i64,
    /// Year (e.g. 2026).
    pub year: i32,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31.
    pub day: u8,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
}

impl LocalStamp {
    /// Days since 1970-01-01 of this local date (negative before it).
    pub fn days(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
    }

    /// Day of the week, 0 = Sunday ... 6 = Saturday (as `struct tm`'s `tm_wday`).
    pub fn weekday(&self) -> u8 {
        // 1970-01-01 was a Thursday (4).
        u8::try_from((self.days() + 4).rem_euclid(7)).unwrap_or(0)
    }
}

/// Days from 1970-01-01 to `year-month-day` of the proleptic Gregorian calendar.
///
/// Pure arithmetic over eras of 400 years (146,097 days): years start in March so that the
/// leap day is the last day of a year.
fn days_from_civil(year: i64, month: u8, day: u8) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let day = i64::from(day.clamp(1, 31));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        u8::try_from(month).unwrap_or(1),
        u8::try_from(day).unwrap_or(1),
    )
}

/// How often a counter starts again from zero, or a report file is written: 3proxy's
/// rotation letters. Ordered from the shortest period to [`Period::Never`], as 3proxy
/// orders them (a report of period P lists the counters whose period is P or longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// `C`: every minute.
    Minutely,
    /// `H`: every hour.
    Hourly,
    /// `D`: every day, at local midnight.
    Daily,
    /// `W`: every week, starting on Sunday (as 3proxy).
    Weekly,
    /// `M`: every month.
    Monthly,
    /// `Y`: every year.
    Annually,
    /// Any other letter (3proxy's documentation uses `N`): never reset.
    Never,
}

impl Period {
    /// The period of a 3proxy TYPE word: its first letter, in either case; any other
    /// letter (or none) is [`Period::Never`], as in 3proxy.
    ///
    /// ```
    /// use triproxy_policy::period::Period;
    /// assert_eq!(Period::from_word("D"), Period::Daily);
    /// assert_eq!(Period::from_word("monthly"), Period::Monthly);
    /// assert_eq!(Period::from_word("N"), Period::Never);
    /// ```
    pub fn from_word(word: &str) -> Period {
        match word.chars().next() {
            Some('c' | 'C') => Period::Minutely,
            Some('h' | 'H') => Period::Hourly,
            Some('d' | 'D') => Period::Daily,
            Some('w' | 'W') => Period::Weekly,
            Some('m' | 'M') => Period::Monthly,
            Some('y' | 'Y') => Period::Annually,
            _ => Period::Never,
        }
    }

    /// The 3proxy letter (`N` for never).
    pub fn letter(self) -> char {
        match self {
            Period::Minutely => 'C',
            Period::Hourly => 'H',
            Period::Daily => 'D',
            Period::Weekly => 'W',
            Period::Monthly => 'M',
            Period::Annually => 'Y',
            Period::Never => 'N',
        }
    }

    /// Whether `to` lies in another period than `from` (in either direction: a clock set
    /// back across midnight also starts a new day).
    ///
    /// 3proxy compares a single field of `struct tm` (only the minute for `C`, only the
    /// day of the year for `D`), so a counter last cleared exactly one year earlier on
    /// the same day is not reset; here the whole date up to the period is compared.
    pub fn changed(self, from: &LocalStamp, to: &LocalStamp) -> bool {
        let date = |t: &LocalStamp| (t.year, t.month, t.day);
        match self {
            Period::Minutely => {
                (date(from), from.hour, from.minute) != (date(to), to.hour, to.minute)
            }
            Period::Hourly => (date(from), from.hour) != (date(to), to.hour),
            Period::Daily => date(from) != date(to),
            Period::Weekly => week_start(from) != week_start(to),
            Period::Monthly => (from.year, from.month) != (to.year, to.month),
            Period::Annually => from.year != to.year,
            Period::Never => false,
        }
    }

    /// What 3proxy appends to a report file name for the period that contains `t`:
    /// `.YYYY`, `.YYYY.MM`, `.YYYY.MM.DD`, `.YYYY.MM.DD-HH`, `.YYYY.MM.DD-HH.MM`; a week is
    /// named by the date of its Sunday. Nothing for [`Period::Never`].
    ///
    /// ```
    /// use triproxy_policy::period::{LocalStamp, Period};
    /// let t = LocalStamp { unix: 0, year: 2026, month: 12, day: 2, hour: 9, minute: 5 };
    /// assert_eq!(Period::Daily.file_suffix(&t), ".2026.12.02");
    /// assert_eq!(Period::Weekly.file_suffix(&t), ".2026.11.29");
    /// assert_eq!(Period::Minutely.file_suffix(&t), ".2026.12.02-09.05");
    /// ```
    pub fn file_suffix(self, t: &LocalStamp) -> String {
        let (y, m, d) = (t.year, t.month, t.day);
        match self {
            Period::Annually => format!(".{y:04}"),
            Period::Monthly => format!(".{y:04}.{m:02}"),
            Period::Daily => format!(".{y:04}.{m:02}.{d:02}"),
            Period::Hourly => format!(".{y:04}.{m:02}.{d:02}-{:02}", t.hour),
            Period::Minutely => format!(".{y:04}.{m:02}.{d:02}-{:02}.{:02}", t.hour, t.minute),
            Period::Weekly => {
                let (y, m, d) = civil_from_days(week_start(t));
                format!(".{y:04}.{m:02}.{d:02}")
            }
            Period::Never => String::new(),
        }
    }

    /// Words for messages: "per day", "in total".
    pub fn per(self) -> &'static str {
        match self {
            Period::Minutely => "per minute",
            Period::Hourly => "per hour",
            Period::Daily => "per day",
            Period::Weekly => "per week",
            Period::Monthly => "per month",
            Period::Annually => "per year",
            Period::Never => "in total",
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// Days since 1970-01-01 of the Sunday that starts `t`'s week.
fn week_start(t: &LocalStamp) -> i64 {
    t.days() - i64::from(t.weekday())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> LocalStamp {
        LocalStamp {
            unix: 0,
            year,
            month,
            day,
            hour,
            minute,
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(1970, 1, 1, 0, 0).days(), 0);
        assert_eq!(at(1970, 1, 1, 0, 0).weekday(), 4);
        assert_eq!(at(2000, 2, 29, 0, 0).days(), 11_016);
        assert_eq!(at(2026, 12, 6, 0, 0).weekday(), 0, "a Sunday");
        assert_eq!(at(1969, 12, 31, 0, 0).days(), -1);
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn periods_change_at_their_boundaries() {
        let a = at(2026, 12, 5, 23, 59); // Saturday
        let b = at(2026, 12, 6, 0, 0); // Sunday
        assert!(Period::Minutely.changed(&a, &b));
        assert!(Period::Hourly.changed(&a, &b));
        assert!(Period::Daily.changed(&a, &b));
        assert!(Period::Weekly.changed(&a, &b), "weeks start on Sunday");
        assert!(!Period::Monthly.changed(&a, &b));
        assert!(!Period::Annually.changed(&a, &b));
        assert!(!Period::Never.changed(&a, &b));
        let c = at(2026, 12, 12, 23, 59); // the next Saturday
        assert!(!Period::Weekly.changed(&b, &c));
        // Same minute of another hour, same day of another year: changed.
        assert!(Period::Minutely.changed(&at(2026, 1, 1, 1, 5), &at(2026, 1, 1, 2, 5)));
        assert!(Period::Daily.changed(&at(2025, 3, 1, 0, 0), &at(2026, 3, 1, 0, 0)));
        assert!(Period::Annually.changed(&at(2026, 12, 31, 23, 59), &at(2027, 1, 1, 0, 0)));
    }

    #[test]
    fn letters() {
        for p in [
            Period::Minutely,
            Period::Hourly,
            Period::Daily,
            Period::Weekly,
            Period::Monthly,
            Period::Annually,
            Period::Never,
        ] {
            assert_eq!(Period::from_word(&p.letter().to_string()), p);
        }
        assert_eq!(Period::from_word(""), Period::Never);
        assert_eq!(Period::from_word("x"), Period::Never);
        assert!(Period::Hourly < Period::Daily && Period::Annually < Period::Never);
    }

    proptest! {
        #[test]
        fn civil_days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
