//! Log file rotation as pure functions of a local civil time: which period a moment falls
//! in, the file name of a period, and which old files `rotate N` deletes.
//!
//! This follows 3proxy (`src/conf.c dologname`, `src/3proxy.c timechanged`): a rotated log
//! is never renamed. The file being written always carries its period in its name, either
//! through a `%` template (`log /var/log/3proxy-%Y%m%d.log D`) or, without one, through a
//! date suffix 3proxy style (`log /var/log/3proxy.log D` writes
//! `/var/log/3proxy.log.2026.12.02`). When the period changes the writer opens the next
//! name; nothing is moved, so `tail -F` and archivers see closed files only.
//!
//! The calendar is policy's [`Period`], the one traffic counters use: the rotation
//! letters, where a period starts, stepping back over periods and 3proxy's date suffix.
//! This module adds what is particular to log files: local time as chrono values, file
//! name templates and which old files `rotate` deletes.
//!
//! Nothing here reads a clock or touches a file: the writer (`logsink`) passes the local
//! time of each record and carries out the answers, which keeps every rule unit-tested
//! without waiting for a day to pass.

use crate::logformat::DateField;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use std::path::{Path, PathBuf};
use triproxy_policy::period::{CivilMinute, Period};

/// Most old periods one rotation looks back over to delete expired files. After a long
/// stop (the daemon was down for months), files older than this many periods beyond the
/// `rotate` count are left alone rather than probing thousands of names.
pub const MAX_EXPIRED_PER_ROTATION: u32 = 64;

/// Largest `rotate` count accepted (100 years of daily files).
pub const MAX_ROTATE_KEEP: u32 = 36_500;

/// Longest log file name (template or plain) accepted, in bytes (3proxy refuses 4096 and
/// more).
pub const MAX_LOG_NAME_LEN: usize = 4095;

/// The first moment of the period `t` is in, in local civil time ([`Period::start`]). For
/// [`Period::Never`] this is `t` itself, seconds included: the caller keeps the moment it
/// opened with (a template's `%S` shows it).
pub fn period_start(period: Period, t: NaiveDateTime) -> NaiveDateTime {
    if period == Period::Never {
        return t;
    }
    naive(period.start(civil(t))).unwrap_or(t)
}

/// Whether a record at `now` belongs to another file than the one opened for the period
/// starting at `current` (never for [`Period::Never`]). A clock set back also changes the
/// period, as in 3proxy.
pub fn changed(period: Period, current: NaiveDateTime, now: NaiveDateTime) -> bool {
    period.changed(civil(current), civil(now))
}

/// The start of the period `n` periods before the one starting at `start`, on the
/// calendar ([`Period::back`]: a month back is a calendar month, not 3proxy's 28 days).
/// `None` for [`Period::Never`] or before the representable range.
fn periods_back(period: Period, start: NaiveDateTime, n: u32) -> Option<NaiveDateTime> {
    // Minutes and hours across a DST change stay aligned: local civil time has no gaps
    // here, it is a plain calendar.
    naive(period.back(civil(start), n)?)
}

/// The calendar minute of a local date and time (seconds dropped).
fn civil(t: NaiveDateTime) -> CivilMinute {
    let field = |v: u32| u8::try_from(v).unwrap_or(0);
    CivilMinute {
        year: t.year(),
        month: field(t.month()),
        day: field(t.day()),
        hour: field(t.hour()),
        minute: field(t.minute()),
    }
}

/// The local date and time of a calendar minute, if chrono can represent it.
fn naive(c: CivilMinute) -> Option<NaiveDateTime> {
    NaiveDate::from_ymd_opt(c.year, c.month.into(), c.day.into())?.and_hms_opt(
        c.hour.into(),
        c.minute.into(),
        0,
    )
}

/// Why a log file name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogNameError {
    /// Longer than [`MAX_LOG_NAME_LEN`] bytes.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A `%` macro other than the date and time ones in a file name template.
    NotADateMacro {
        /// The character after `%`.
        found: char,
    },
}

impl core::fmt::Display for LogNameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LogNameError::TooLong { len } => write!(
                f,
                "log file name of {len} bytes (at most {MAX_LOG_NAME_LEN})"
            ),
            LogNameError::NotADateMacro { found } => write!(
                f,
                "`%{}` in a log file name: only the date macros %y %Y %m %o %d %H %M %S and %% may be used",
                found.escape_default()
            ),
        }
    }
}

impl std::error::Error for LogNameError {}

/// One piece of a file name template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Piece {
    Literal(String),
    /// A date macro, rendered as in log records.
    Date(DateField),
}

/// A log file's name: plain (a date suffix is added when rotating) or a `%` template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogName {
    /// The directory relative names are under (the configuration file's).
    base_dir: PathBuf,
    /// The name as written.
    source: String,
    /// How `source` becomes a file name.
    kind: NameKind,
}

/// How a [`LogName`] is turned into a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum NameKind {
    /// A plain name: 3proxy's date suffix is added when rotating.
    Plain,
    /// A `%` template, rendered at the period's start.
    Template(Vec<Piece>),
}

impl LogName {
    /// A name as written after `log`: with a `%` it is a template of date macros (`%y %Y
    /// %m %o %d %H %M %S`, `%%` for a `%`), rendered in local time. Relative names are
    /// under `base_dir`.
    ///
    /// ```
    /// use triproxy::logrotate::LogName;
    /// use triproxy_policy::period::Period;
    /// let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap().and_hms_opt(18, 5, 0).unwrap();
    /// let n = LogName::parse("/var/log/p-%Y%m%d.log", "/etc".as_ref()).unwrap();
    /// assert_eq!(n.path_for(Period::Daily, t), std::path::Path::new("/var/log/p-20261202.log"));
    /// let plain = LogName::parse("p.log", "/etc".as_ref()).unwrap();
    /// assert_eq!(plain.path_for(Period::Hourly, t), std::path::Path::new("/etc/p.log.2026.12.02-18"));
    /// ```
    pub fn parse(name: &str, base_dir: &Path) -> Result<LogName, LogNameError> {
        if name.len() > MAX_LOG_NAME_LEN {
            return Err(LogNameError::TooLong { len: name.len() });
        }
        let kind = if name.contains('%') {
            NameKind::Template(parse_template(name)?)
        } else {
            NameKind::Plain
        };
        Ok(LogName {
            base_dir: base_dir.to_path_buf(),
            source: name.to_owned(),
            kind,
        })
    }

    /// Whether the name is a `%` template.
    pub fn is_template(&self) -> bool {
        matches!(self.kind, NameKind::Template(_))
    }

    /// The file name for the period starting at `period` (as given by [`period_start`]):
    /// the template rendered at that moment, or the plain name with 3proxy's suffix for
    /// `rotation` ([`Period::file_suffix`]: none, `.YYYY`, `.YYYY.MM`, `.YYYY.MM.DD` for
    /// days and weeks, `.YYYY.MM.DD-HH`, `.YYYY.MM.DD-HH.MM`).
    pub fn path_for(&self, rotation: Period, period: NaiveDateTime) -> PathBuf {
        let rendered = match &self.kind {
            NameKind::Template(pieces) => render_template(pieces, period),
            NameKind::Plain => {
                format!("{}{}", self.source, rotation.file_suffix(civil(period)))
            }
        };
        let p = Path::new(&rendered);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The files `rotate keep` deletes when the period starting at `current` begins, the
    /// previous file having been opened for the period starting at `previous`: the files of
    /// the periods that are now more than `keep` periods old and were not already past that
    /// age at the previous rotation (at most [`MAX_EXPIRED_PER_ROTATION`]). With an
    /// archiver, the archives (`name.EXT`) are what is kept, so those are deleted.
    ///
    /// 3proxy deletes exactly the file `keep` periods back, keeping `keep - 1` old files;
    /// triproxy keeps `keep` old files, as 3proxy's manual describes the command.
    pub fn expired(
        &self,
        rotation: Period,
        keep: u32,
        previous: NaiveDateTime,
        current: NaiveDateTime,
        archive_ext: Option<&str>,
    ) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if rotation == Period::Never || keep == 0 {
            return out;
        }
        // The newest period to delete: `keep + 1` back from the current one.
        let Some(mut period) = periods_back(rotation, current, keep.saturating_add(1)) else {
            return out;
        };
        // The newest period the previous rotation already deleted.
        let done = periods_back(rotation, previous, keep.saturating_add(1));
        for _ in 0..MAX_EXPIRED_PER_ROTATION {
            if done.is_some_and(|d| period <= d) {
                break;
            }
            let mut path = self.path_for(rotation, period).into_os_string();
            if let Some(ext) = archive_ext {
                path.push(".");
                path.push(ext);
            }
            out.push(PathBuf::from(path));
            match periods_back(rotation, period, 1) {
                Some(p) => period = period_start(rotation, p),
                None => break,
            }
        }
        out
    }
}

fn parse_template(name: &str) -> Result<Vec<Piece>, LogNameError> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let piece = match chars.next() {
            // A trailing `%` is itself, as in logformat.
            None | Some('%') => {
                lit.push('%');
                continue;
            }
            Some(c) => match DateField::from_char(c) {
                Some(field) => Piece::Date(field),
                None => return Err(LogNameError::NotADateMacro { found: c }),
            },
        };
        if !lit.is_empty() {
            pieces.push(Piece::Literal(core::mem::take(&mut lit)));
        }
        pieces.push(piece);
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

fn render_template(pieces: &[Piece], t: NaiveDateTime) -> String {
    let mut s = String::new();
    for p in pieces {
        match p {
            Piece::Literal(l) => s.push_str(l),
            // Writing to a `String` cannot fail.
            Piece::Date(field) => {
                let _ = field.write(&t, &mut s);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn period_starts_in_local_time() {
        // Wednesday 2 December 2026, 18:05:42.
        let t = at(2026, 12, 2, 18, 5, 42);
        assert_eq!(period_start(Period::Minutely, t), at(2026, 12, 2, 18, 5, 0));
        assert_eq!(period_start(Period::Hourly, t), at(2026, 12, 2, 18, 0, 0));
        // Weeks start on Sunday, as in 3proxy.
        assert_eq!(period_start(Period::Weekly, t), at(2026, 11, 29, 0, 0, 0));
        assert_eq!(period_start(Period::Annually, t), at(2026, 1, 1, 0, 0, 0));
        // Never keeps the moment, seconds included.
        assert_eq!(period_start(Period::Never, t), t);
    }

    #[test]
    fn period_changes() {
        let open = period_start(Period::Daily, at(2026, 12, 2, 10, 0, 0));
        assert!(!changed(Period::Daily, open, at(2026, 12, 2, 23, 59, 59)));
        assert!(changed(Period::Daily, open, at(2026, 12, 3, 0, 0, 0)));
        // A clock set back is a change too.
        assert!(changed(Period::Daily, open, at(2026, 12, 1, 23, 0, 0)));
        assert!(!changed(Period::Never, open, at(2030, 1, 1, 0, 0, 0)));
        let minute = period_start(Period::Minutely, at(2026, 12, 2, 10, 0, 30));
        assert!(!changed(
            Period::Minutely,
            minute,
            at(2026, 12, 2, 10, 0, 59)
        ));
        assert!(changed(Period::Minutely, minute, at(2026, 12, 2, 10, 1, 0)));
    }

    #[test]
    fn periods_back_on_the_calendar() {
        let t = at(2026, 3, 31, 0, 0, 0);
        assert_eq!(
            periods_back(Period::Daily, t, 31),
            Some(at(2026, 2, 28, 0, 0, 0))
        );
        assert_eq!(
            periods_back(Period::Monthly, at(2026, 3, 1, 0, 0, 0), 2),
            Some(at(2026, 1, 1, 0, 0, 0))
        );
        assert_eq!(periods_back(Period::Never, t, 1), None);
        assert_eq!(periods_back(Period::Annually, t, u32::MAX), None);
        // Beyond chrono's calendar (years past 262,143 BC).
        assert_eq!(periods_back(Period::Annually, t, 300_000), None);
    }

    #[test]
    fn plain_names_get_3proxy_suffixes() {
        let n = LogName::parse("/var/log/3proxy.log", Path::new("/etc")).unwrap();
        let t = at(2026, 12, 2, 18, 5, 0);
        let p = |r: Period| n.path_for(r, period_start(r, t)).display().to_string();
        assert_eq!(
            p(Period::Never),
            "/var/log/3proxy.log.".trim_end_matches('.')
        );
        assert_eq!(p(Period::Annually), "/var/log/3proxy.log.2026");
        assert_eq!(p(Period::Monthly), "/var/log/3proxy.log.2026.12");
        assert_eq!(p(Period::Daily), "/var/log/3proxy.log.2026.12.02");
        assert_eq!(p(Period::Weekly), "/var/log/3proxy.log.2026.11.29");
        assert_eq!(p(Period::Hourly), "/var/log/3proxy.log.2026.12.02-18");
        assert_eq!(p(Period::Minutely), "/var/log/3proxy.log.2026.12.02-18.05");
        let rel = LogName::parse("logs/p.log", Path::new("/etc/3proxy")).unwrap();
        assert_eq!(
            rel.path_for(Period::Never, t),
            Path::new("/etc/3proxy/logs/p.log")
        );
        assert!(!rel.is_template());
    }

    #[test]
    fn templates_render_date_macros() {
        let n = LogName::parse("/l/%y|%Y|%m|%o|%d|%H|%M|%S|%%|x%", Path::new("/")).unwrap();
        assert!(n.is_template());
        assert_eq!(
            n.path_for(Period::Never, at(2026, 2, 3, 4, 5, 6)),
            Path::new("/l/26|2026|02|Feb|03|04|05|06|%|x%")
        );
        let daily = LogName::parse("/l/3proxy-%y%m%d.log", Path::new("/")).unwrap();
        let t = at(2026, 12, 2, 18, 5, 0);
        assert_eq!(
            daily.path_for(Period::Daily, period_start(Period::Daily, t)),
            Path::new("/l/3proxy-261202.log")
        );
    }

    #[test]
    fn templates_and_records_render_dates_alike() {
        use crate::logformat::{LogFields, LogFormat};
        use std::time::{Duration, SystemTime};
        let macros = "%y|%Y|%m|%o|%d|%H|%M|%S";
        // 1999-12-31 23:58:07 UTC, rendered by a GMT record format and, as a plain
        // calendar time, by a file name template.
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(946_684_687);
        let rec = LogFields {
            time,
            ..LogFields::new("SOCK5", "127.0.0.1:4000".parse().unwrap())
        };
        let mut line = String::new();
        LogFormat::parse(&format!("G{macros}"))
            .unwrap()
            .render(&rec, &mut line);
        let name = LogName::parse(&format!("/{macros}"), Path::new("/")).unwrap();
        let path = name.path_for(Period::Never, at(1999, 12, 31, 23, 58, 7));
        assert_eq!(line, "99|1999|12|Dec|31|23|58|07");
        assert_eq!(path, Path::new("/").join(&line));
    }

    #[test]
    fn template_errors() {
        assert_eq!(
            LogName::parse("/l/%N.log", Path::new("/")),
            Err(LogNameError::NotADateMacro { found: 'N' })
        );
        assert_eq!(
            LogNameError::NotADateMacro { found: 'N' }.to_string(),
            "`%N` in a log file name: only the date macros %y %Y %m %o %d %H %M %S and %% may be used"
        );
        let long = "a".repeat(MAX_LOG_NAME_LEN + 1);
        assert_eq!(
            LogName::parse(&long, Path::new("/")),
            Err(LogNameError::TooLong {
                len: MAX_LOG_NAME_LEN + 1
            })
        );
    }

    #[test]
    fn rotate_keeps_n_old_files() {
        let n = LogName::parse("/l/p.log", Path::new("/")).unwrap();
        let prev = at(2026, 12, 1, 0, 0, 0);
        let cur = at(2026, 12, 2, 0, 0, 0);
        // Kept: 12.01 and 11.30 (2 old files); deleted: 11.29.
        assert_eq!(
            n.expired(Period::Daily, 2, prev, cur, None),
            vec![PathBuf::from("/l/p.log.2026.11.29")]
        );
        assert_eq!(
            n.expired(Period::Daily, 2, prev, cur, Some("gz")),
            vec![PathBuf::from("/l/p.log.2026.11.29.gz")]
        );
        assert!(n.expired(Period::Daily, 0, prev, cur, None).is_empty());
        assert!(n.expired(Period::Never, 2, prev, cur, None).is_empty());
    }

    #[test]
    fn rotate_after_a_gap_deletes_every_expired_period() {
        let n = LogName::parse("/l/h-%H.log", Path::new("/")).unwrap();
        // Stopped writing at 10:xx, next record at 14:xx, keep 1: 13 is kept, 12 to 9
        // expire now (8 expired at the previous rotation, into 10).
        let got = n.expired(
            Period::Hourly,
            1,
            at(2026, 1, 1, 10, 0, 0),
            at(2026, 1, 1, 14, 0, 0),
            None,
        );
        assert_eq!(
            got,
            vec![
                PathBuf::from("/l/h-12.log"),
                PathBuf::from("/l/h-11.log"),
                PathBuf::from("/l/h-10.log"),
                PathBuf::from("/l/h-09.log")
            ]
        );
        // A very long gap is bounded.
        let far = n.expired(
            Period::Minutely,
            1,
            at(2000, 1, 1, 0, 0, 0),
            at(2026, 1, 1, 0, 0, 0),
            None,
        );
        assert_eq!(far.len(), MAX_EXPIRED_PER_ROTATION as usize);
        // A clock set back deletes nothing new.
        assert!(n
            .expired(
                Period::Hourly,
                1,
                at(2026, 1, 1, 14, 0, 0),
                at(2026, 1, 1, 13, 0, 0),
                None
            )
            .is_empty());
    }
}
