//! Calendar periods of 3proxy's traffic counters and reports (`countin ... D ...`,
//! `counter FILE D REPORT`) and of its log rotation (`log FILE D`), and the local civil
//! time they are measured in.
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
        self.civil().days()
    }

    /// Day of the week, 0 = Sunday ... 6 = Saturday (as `struct tm`'s `tm_wday`).
    pub fn weekday(&self) -> u8 {
        self.civil().weekday()
    }

    /// The calendar date and time of day, without the Unix time.
    pub fn civil(&self) -> CivilMinute {
        CivilMinute {
            year: self.year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
        }
    }
}

/// A local calendar date and time of day to the minute, with no time zone and no Unix
/// time: what period boundaries are made of. The derived order is chronological.
///
/// The start of a period is one of these (see [`Period::start`]); turning it back into a
/// moment needs the time zone, which is the daemon's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilMinute {
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

impl CivilMinute {
    /// Days since 1970-01-01 of this date (negative before it).
    pub fn days(&self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
    }

    /// Day of the week, 0 = Sunday ... 6 = Saturday (as `struct tm`'s `tm_wday`).
    pub fn weekday(&self) -> u8 {
        // 1970-01-01 was a Thursday (4).
        u8::try_from((self.days() + 4).rem_euclid(7)).unwrap_or(0)
    }

    /// Minutes since 1970-01-01 00:00 of the same calendar (negative before it).
    fn minutes(&self) -> i64 {
        self.days() * 1440 + i64::from(self.hour) * 60 + i64::from(self.minute)
    }

    /// The date `days` days after 1970-01-01 at `hour:minute`, if its year fits.
    fn at(days: i64, hour: u8, minute: u8) -> Option<CivilMinute> {
        let (year, month, day) = civil_from_days(days);
        Some(CivilMinute {
            year: i32::try_from(year).ok()?,
            month,
            day,
            hour,
            minute,
        })
    }

    /// The moment `minutes` minutes after 1970-01-01 00:00, if its year fits.
    fn from_minutes(minutes: i64) -> Option<CivilMinute> {
        let of_day = minutes.rem_euclid(1440);
        CivilMinute::at(
            minutes.div_euclid(1440),
            u8::try_from(of_day / 60).ok()?,
            u8::try_from(of_day % 60).ok()?,
        )
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

/// Days in `month` (1..=12) of `year`.
fn days_in_month(year: i64, month: u8) -> i64 {
    let (next_year, next_month) = if month >= 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    days_from_civil(next_year, next_month, 1) - days_from_civil(year, month, 1)
}

/// How often a counter starts again from zero, a report file is written or a log file
/// changes: 3proxy's rotation letters. Ordered from the shortest period to
/// [`Period::Never`], as 3proxy orders them (a report of period P lists the counters whose
/// period is P or longer).
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
        Period::from_letter(word).unwrap_or(Period::Never)
    }

    /// The period a word's first letter (in either case) names, `C`, `H`, `D`, `W`, `M` or
    /// `Y`; `None` for any other text, `N` included, so that a caller can tell a rotation
    /// from a word 3proxy silently takes as "never" (3proxy `getrotate`).
    ///
    /// ```
    /// use triproxy_policy::period::Period;
    /// assert_eq!(Period::from_letter("weekly"), Some(Period::Weekly));
    /// assert_eq!(Period::from_letter("N"), None);
    /// ```
    pub fn from_letter(word: &str) -> Option<Period> {
        Some(match word.chars().next()?.to_ascii_uppercase() {
            'C' => Period::Minutely,
            'H' => Period::Hourly,
            'D' => Period::Daily,
            'W' => Period::Weekly,
            'M' => Period::Monthly,
            'Y' => Period::Annually,
            _ => return None,
        })
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

    /// The first minute of the period `t` is in: the minute, the hour, local midnight, the
    /// Sunday (as 3proxy), the first of the month or of the year. [`Period::Never`] has no
    /// boundaries: `t` itself.
    ///
    /// ```
    /// use triproxy_policy::period::{CivilMinute, Period};
    /// // Wednesday 2 December 2026, 18:05.
    /// let t = CivilMinute { year: 2026, month: 12, day: 2, hour: 18, minute: 5 };
    /// let sunday = CivilMinute { year: 2026, month: 11, day: 29, hour: 0, minute: 0 };
    /// assert_eq!(Period::Weekly.start(t), sunday);
    /// assert_eq!(Period::Hourly.start(t), CivilMinute { minute: 0, ..t });
    /// ```
    pub fn start(self, t: CivilMinute) -> CivilMinute {
        let midnight = CivilMinute {
            hour: 0,
            minute: 0,
            ..t
        };
        match self {
            Period::Never | Period::Minutely => t,
            Period::Hourly => CivilMinute { minute: 0, ..t },
            Period::Daily => midnight,
            Period::Weekly => {
                CivilMinute::at(t.days() - i64::from(t.weekday()), 0, 0).unwrap_or(midnight)
            }
            Period::Monthly => CivilMinute { day: 1, ..midnight },
            Period::Annually => CivilMinute {
                month: 1,
                day: 1,
                ..midnight
            },
        }
    }

    /// The moment `n` periods before `start` on the calendar: a month back is a calendar
    /// month (the day kept, or the month's last day if it is shorter), a week is seven
    /// days. `None` for [`Period::Never`] or a year beyond `i32`.
    ///
    /// ```
    /// use triproxy_policy::period::{CivilMinute, Period};
    /// let t = CivilMinute { year: 2026, month: 3, day: 31, hour: 0, minute: 0 };
    /// let back = Period::Monthly.back(t, 1);
    /// assert_eq!(back, Some(CivilMinute { month: 2, day: 28, ..t }));
    /// ```
    pub fn back(self, start: CivilMinute, n: u32) -> Option<CivilMinute> {
        let n = i64::from(n);
        let (h, m) = (start.hour, start.minute);
        match self {
            Period::Never => None,
            Period::Minutely => CivilMinute::from_minutes(start.minutes() - n),
            Period::Hourly => CivilMinute::from_minutes(start.minutes() - n * 60),
            Period::Daily => CivilMinute::at(start.days() - n, h, m),
            Period::Weekly => CivilMinute::at(start.days() - n * 7, h, m),
            Period::Monthly | Period::Annually => {
                let months = if self == Period::Monthly { n } else { n * 12 };
                let index = i64::from(start.year) * 12 + i64::from(start.month) - 1 - months;
                let year = index.div_euclid(12);
                let month = u8::try_from(index.rem_euclid(12) + 1).ok()?;
                let last = u8::try_from(days_in_month(year, month)).ok()?;
                Some(CivilMinute {
                    year: i32::try_from(year).ok()?,
                    month,
                    day: start.day.min(last),
                    hour: h,
                    minute: m,
                })
            }
        }
    }

    /// Whether `to` lies in another period than `from` (in either direction: a clock set
    /// back across midnight also starts a new day); never for [`Period::Never`].
    ///
    /// 3proxy compares a single field of `struct tm` (only the minute for `C`, only the
    /// day of the year for `D`), so a counter last cleared exactly one year earlier on
    /// the same day is not reset; here the whole date up to the period is compared.
    pub fn changed(self, from: CivilMinute, to: CivilMinute) -> bool {
        self != Period::Never && self.start(from) != self.start(to)
    }

    /// What 3proxy appends to a report or log file name for the period that contains `t`
    /// (`src/conf.c dologname`): `.YYYY`, `.YYYY.MM`, `.YYYY.MM.DD`, `.YYYY.MM.DD-HH`,
    /// `.YYYY.MM.DD-HH.MM`; a week is named by the date of its Sunday. Nothing for
    /// [`Period::Never`].
    ///
    /// ```
    /// use triproxy_policy::period::{CivilMinute, Period};
    /// let t = CivilMinute { year: 2026, month: 12, day: 2, hour: 9, minute: 5 };
    /// assert_eq!(Period::Daily.file_suffix(t), ".2026.12.02");
    /// assert_eq!(Period::Weekly.file_suffix(t), ".2026.11.29");
    /// assert_eq!(Period::Minutely.file_suffix(t), ".2026.12.02-09.05");
    /// ```
    pub fn file_suffix(self, t: CivilMinute) -> String {
        let CivilMinute {
            year: y,
            month: m,
            day: d,
            hour,
            minute,
        } = self.start(t);
        match self {
            Period::Annually => format!(".{y:04}"),
            Period::Monthly => format!(".{y:04}.{m:02}"),
            Period::Daily | Period::Weekly => format!(".{y:04}.{m:02}.{d:02}"),
            Period::Hourly => format!(".{y:04}.{m:02}.{d:02}-{hour:02}"),
            Period::Minutely => format!(".{y:04}.{m:02}.{d:02}-{hour:02}.{minute:02}"),
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
        assert!(Period::Minutely.changed(a.civil(), b.civil()));
        assert!(Period::Hourly.changed(a.civil(), b.civil()));
        assert!(Period::Daily.changed(a.civil(), b.civil()));
        assert!(
            Period::Weekly.changed(a.civil(), b.civil()),
            "weeks start on Sunday"
        );
        assert!(!Period::Monthly.changed(a.civil(), b.civil()));
        assert!(!Period::Annually.changed(a.civil(), b.civil()));
        assert!(!Period::Never.changed(a.civil(), b.civil()));
        let c = at(2026, 12, 12, 23, 59); // the next Saturday
        assert!(!Period::Weekly.changed(b.civil(), c.civil()));
        // Same minute of another hour, same day of another year: changed.
        assert!(
            Period::Minutely.changed(at(2026, 1, 1, 1, 5).civil(), at(2026, 1, 1, 2, 5).civil())
        );
        assert!(Period::Daily.changed(at(2025, 3, 1, 0, 0).civil(), at(2026, 3, 1, 0, 0).civil()));
        assert!(Period::Annually.changed(
            at(2026, 12, 31, 23, 59).civil(),
            at(2027, 1, 1, 0, 0).civil()
        ));
    }

    fn civil(year: i32, month: u8, day: u8, hour: u8, minute: u8) -> CivilMinute {
        at(year, month, day, hour, minute).civil()
    }

    const ALL: [Period; 7] = [
        Period::Minutely,
        Period::Hourly,
        Period::Daily,
        Period::Weekly,
        Period::Monthly,
        Period::Annually,
        Period::Never,
    ];

    #[test]
    fn period_starts() {
        // Wednesday 2 December 2026, 18:05.
        let t = civil(2026, 12, 2, 18, 5);
        assert_eq!(Period::Minutely.start(t), t);
        assert_eq!(Period::Hourly.start(t), civil(2026, 12, 2, 18, 0));
        assert_eq!(Period::Daily.start(t), civil(2026, 12, 2, 0, 0));
        // Weeks start on Sunday, as in 3proxy, also across a month and a year.
        assert_eq!(Period::Weekly.start(t), civil(2026, 11, 29, 0, 0));
        let sunday = civil(2026, 11, 29, 0, 0);
        assert_eq!(Period::Weekly.start(sunday), sunday);
        assert_eq!(
            Period::Weekly.start(civil(2027, 1, 1, 12, 0)),
            civil(2026, 12, 27, 0, 0)
        );
        assert_eq!(Period::Monthly.start(t), civil(2026, 12, 1, 0, 0));
        assert_eq!(Period::Annually.start(t), civil(2026, 1, 1, 0, 0));
        assert_eq!(Period::Never.start(t), t);
    }

    #[test]
    fn periods_back_on_the_calendar() {
        // (period, from, how many back, expected), dates as (y, m, d, h, min); a shorter
        // month keeps its last day.
        #[rustfmt::skip]
        let cases = [
            (Period::Daily,    (2026, 3, 31, 0, 0),  31, (2026, 2, 28, 0, 0)),
            (Period::Monthly,  (2026, 3, 31, 0, 0),  1,  (2026, 2, 28, 0, 0)),
            (Period::Monthly,  (2026, 3, 31, 0, 0),  3,  (2025, 12, 31, 0, 0)),
            (Period::Monthly,  (2026, 3, 1, 0, 0),   2,  (2026, 1, 1, 0, 0)),
            (Period::Annually, (2024, 2, 29, 0, 0),  1,  (2023, 2, 28, 0, 0)),
            (Period::Annually, (2026, 1, 1, 0, 0),   3,  (2023, 1, 1, 0, 0)),
            (Period::Weekly,   (2026, 11, 29, 0, 0), 1,  (2026, 11, 22, 0, 0)),
            (Period::Hourly,   (2026, 1, 1, 1, 30),  2,  (2025, 12, 31, 23, 30)),
            (Period::Minutely, (2026, 1, 1, 0, 0),   1,  (2025, 12, 31, 23, 59)),
        ];
        let c = |(y, m, d, h, min)| civil(y, m, d, h, min);
        for (period, from, n, expected) in cases {
            assert_eq!(
                period.back(c(from), n),
                Some(c(expected)),
                "{period:?} {n} back"
            );
        }
        let t = civil(2026, 3, 31, 0, 0);
        assert_eq!(Period::Never.back(t, 1), None);
        assert_eq!(Period::Annually.back(t, u32::MAX), None, "beyond i32 years");
    }

    #[test]
    fn letters() {
        for p in ALL {
            assert_eq!(Period::from_word(&p.letter().to_string()), p);
        }
        assert_eq!(Period::from_word(""), Period::Never);
        assert_eq!(Period::from_word("x"), Period::Never);
        assert_eq!(Period::from_letter("hourly"), Some(Period::Hourly));
        assert_eq!(Period::from_letter("c"), Some(Period::Minutely));
        assert_eq!(Period::from_letter("N"), None, "never is not a rotation");
        assert_eq!(Period::from_letter(""), None);
        assert!(Period::Hourly < Period::Daily && Period::Annually < Period::Never);
    }

    proptest! {
        #[test]
        fn civil_days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        /// A period's start is in the period and is its own start; one period back from
        /// it is the previous period, which ends where this one starts.
        #[test]
        fn starts_and_steps_back(
            minutes in -10_000_000_000i64..10_000_000_000,
            which in 0usize..6,
        ) {
            let p = ALL[which];
            let t = CivilMinute::from_minutes(minutes).unwrap();
            let start = p.start(t);
            prop_assert!(start <= t);
            prop_assert!(!p.changed(start, t));
            prop_assert_eq!(p.start(start), start);
            let before = p.back(start, 1).unwrap();
            prop_assert_eq!(p.start(before), before, "a start stays aligned");
            prop_assert!(before < start && p.changed(before, start));
            let last = CivilMinute::from_minutes(start.minutes() - 1).unwrap();
            prop_assert_eq!(p.start(last), before);
        }
    }
}
