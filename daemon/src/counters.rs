//! Keeping the traffic counters: the daemon side of [`triproxy_policy::quota`].
//!
//! Policy holds the counters and decides when a period ends; this module gives it the local
//! time and does the file work, as 3proxy does in `dumpcounters()`:
//!
//! - at start, [`Accounting::open`] reads the `counter` file (a missing file is a new,
//!   empty one; a damaged file is an error naming it, and the daemon does not start rather
//!   than forget every tally) and restores the counters from it;
//! - every minute, [`Accounting::minute`] lets policy reset the counters whose period
//!   ended, writes the report of a period that ended (`counter FILE TYPE PATH`), then
//!   writes the counter file;
//! - at an orderly exit (SIGTERM, SIGINT), the daemon calls it once more.
//!
//! Counters reset at their period even without a `counter` line (3proxy only resets them
//! while it has a counter file, so without one a daily quota never starts again).
//!
//! The counter file is replaced whole (written beside it, then renamed), so a crash in the
//! middle of a write leaves the previous file, never a truncated one.

use crate::config::{Config, CounterConfig};
use chrono::{DateTime, Datelike, Local, TimeZone, Timelike};
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triproxy_policy::counterfile::{self, CounterFile, CounterFileError, MAX_FILE_LEN};
use triproxy_policy::period::LocalStamp;
use triproxy_policy::quota::{Quotas, Report};

/// The local civil time of `t`, for policy's calendar periods.
pub fn local_stamp(t: &DateTime<Local>) -> LocalStamp {
    LocalStamp {
        unix: t.timestamp(),
        year: t.year(),
        month: u8::try_from(t.month()).unwrap_or(1),
        day: u8::try_from(t.day()).unwrap_or(1),
        hour: u8::try_from(t.hour()).unwrap_or(0),
        minute: u8::try_from(t.minute()).unwrap_or(0),
    }
}

/// The local civil time now.
pub fn local_now() -> LocalStamp {
    local_stamp(&Local::now())
}

/// The local civil time of a Unix time read from the counter file.
pub fn local_of_unix(unix: i64) -> Option<LocalStamp> {
    Local
        .timestamp_opt(unix, 0)
        .earliest()
        .map(|t| local_stamp(&t))
}

/// Why the counters cannot be kept.
#[derive(Debug)]
pub enum AccountingError {
    /// The counter file exists but cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// The counter file is not a usable counter file.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        error: CounterFileError,
    },
    /// A file could not be written.
    Write {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
}

impl fmt::Display for AccountingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountingError::Read { path, error } => {
                write!(f, "cannot read counter file `{}`: {error}", path.display())
            }
            AccountingError::Corrupt { path, error } => write!(
                f,
                "counter file `{}` is unusable ({error}); move it away to start the counters from zero",
                path.display()
            ),
            AccountingError::Write { path, error } => {
                write!(f, "cannot write `{}`: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for AccountingError {}

/// The traffic counters of a running configuration and where they are kept.
#[derive(Debug)]
pub struct Accounting {
    quotas: Arc<Quotas>,
    counter: Option<CounterConfig>,
    /// The file as last read or written: records of counters no rule uses any more are
    /// kept (3proxy leaves them in place too).
    file: CounterFile,
}

impl Accounting {
    /// Reads the counter file, if the configuration has one, and restores the counters.
    pub fn open(config: &Config) -> Result<Accounting, AccountingError> {
        let mut file = CounterFile::default();
        if let Some(counter) = &config.counter {
            file = read_counter_file(&counter.file)?;
            config.quotas.restore(&file, local_of_unix);
        }
        Ok(Accounting {
            quotas: Arc::clone(&config.quotas),
            counter: config.counter.clone(),
            file,
        })
    }

    /// Moves to the configuration a reload put in force. Its counters already took over the
    /// tallies of the old ones ([`Quotas::adopt`]); the counter file is saved first, so
    /// that a `counter` line that now names another file loses nothing. A new file named
    /// by the reload is read, and counters it has that no old rule carried are restored
    /// from it.
    pub fn reload(&mut self, config: &Config, now: &LocalStamp) -> Result<(), AccountingError> {
        let saved = self.minute(now);
        let same_file =
            self.counter.as_ref().map(|c| &c.file) == config.counter.as_ref().map(|c| &c.file);
        if !same_file {
            self.file = match &config.counter {
                Some(counter) => read_counter_file(&counter.file)?,
                None => CounterFile::default(),
            };
        }
        self.quotas = Arc::clone(&config.quotas);
        self.counter = config.counter.clone();
        saved
    }

    /// Whether there is nothing to do (no counting rule).
    pub fn is_idle(&self) -> bool {
        self.quotas.counters().next().is_none()
    }

    /// The minutely step at local time `now`: resets, the report of a period that ended,
    /// the counter file. Every step is tried; the first failure is returned.
    pub fn minute(&mut self, now: &LocalStamp) -> Result<(), AccountingError> {
        let period = self
            .counter
            .as_ref()
            .and_then(|c| c.report.as_ref())
            .map(|r| r.period);
        let report = self.quotas.tick(now, period);
        let Some(counter) = &self.counter else {
            return Ok(());
        };
        let mut result = Ok(());
        if let (Some(report), Some(spec)) = (report, &counter.report) {
            result = write_report(&spec.path, &report);
        }
        self.quotas.store(&mut self.file, now.unix);
        let written = replace_file(&counter.file, &counterfile::write(&self.file));
        result.and(written)
    }
}

/// Reads and parses the counter file; a missing file is a new one.
fn read_counter_file(path: &Path) -> Result<CounterFile, AccountingError> {
    let bytes = match std::fs::read(crate::config::in_root(path)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            return Err(AccountingError::Read {
                path: path.to_path_buf(),
                error,
            })
        }
    };
    if bytes.len() > MAX_FILE_LEN {
        return Err(AccountingError::Corrupt {
            path: path.to_path_buf(),
            error: CounterFileError::TooLarge { len: bytes.len() },
        });
    }
    counterfile::read(&bytes).map_err(|error| AccountingError::Corrupt {
        path: path.to_path_buf(),
        error,
    })
}

/// `base.<period>`: 3proxy's report file, one line per counter.
fn write_report(base: &Path, report: &Report) -> Result<(), AccountingError> {
    let mut name = base.as_os_str().to_owned();
    name.push(&report.suffix);
    let path = PathBuf::from(name);
    let mut text = String::new();
    for line in &report.lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(crate::config::in_root(&path), text)
        .map_err(|error| AccountingError::Write { path, error })
}

/// Writes `bytes` beside `path` and renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), AccountingError> {
    let fail = |error| AccountingError::Write {
        path: path.to_path_buf(),
        error,
    };
    let reached = crate::config::in_root(path);
    let mut tmp_name = reached.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    drop(f);
    std::fs::rename(&tmp, &reached).map_err(fail)
}

/// Runs [`Accounting::minute`] at the start of every minute on a thread of its own,
/// printing failures to standard error (a full disk must not stop the proxy). Returns
/// the shared accounting, for the last save at exit.
pub fn spawn_minutely(accounting: Accounting) -> io::Result<Arc<std::sync::Mutex<Accounting>>> {
    let shared = Arc::new(std::sync::Mutex::new(accounting));
    let worker = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("counters".into())
        .spawn(move || loop {
            let now = Local::now();
            let into_minute =
                u64::from(now.second()) * 1000 + u64::from(now.timestamp_subsec_millis() % 1000);
            std::thread::sleep(std::time::Duration::from_millis(
                60_000u64.saturating_sub(into_minute).max(1),
            ));
            let stamp = local_now();
            let mut acc = worker.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = acc.minute(&stamp) {
                eprintln!("triproxy: {e}");
            }
        })?;
    Ok(shared)
}
