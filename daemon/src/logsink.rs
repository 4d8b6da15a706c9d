//! Where log records go: standard output, an append-only file, a rotated file, or the local
//! syslog socket; one whole line per `write` so that concurrent connections never
//! interleave inside a record.
//!
//! Services that name the same destination share one writer. Rotation follows 3proxy: the
//! writer checks on each record whether the period changed (the rules are the pure
//! functions of [`crate::logrotate`]), opens the next file, deletes what `rotate N` no
//! longer keeps and starts the `archiver` on the closed file on its own thread, so the
//! logging path never waits for it. [`LogSinks::reopen`] reopens every file (for a reload
//! after an external logrotate that moved the files). ODBC and RADIUS are not implemented.

use crate::config::{ArchiverArg, LogRetention, LogTarget, RotatingLog};
use crate::logformat::{LogFields, LogFormat};
use crate::logrotate;
use crate::syslog::Syslog;
use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use triproxy_policy::acl::{CivilTime, Logging};
use triproxy_policy::session::LogRecord;
use triproxy_runtime_std::Hooks;

/// Prints a notice about the daemon (not a connection): stderr, like start-up errors.
fn notice(text: &str) {
    eprintln!("triproxy: {text}");
}

/// The local civil time of `t`.
fn local(t: SystemTime) -> NaiveDateTime {
    DateTime::<Local>::from(t).naive_local()
}

/// Opens a log file by its configured name (inside the `chroot` root once the process is
/// there: [`crate::config::in_root`]).
fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(crate::config::in_root(path))
}

/// A file whose name follows the period (see [`crate::logrotate`]).
#[derive(Debug)]
struct RotatingFile {
    spec: RotatingLog,
    retention: LogRetention,
    state: Mutex<Current>,
}

/// The file a [`RotatingFile`] writes now.
#[derive(Debug)]
struct Current {
    file: File,
    path: PathBuf,
    /// Start of the period `file` is for.
    period: NaiveDateTime,
}

/// What a period change did, for the caller to finish outside the lock.
#[derive(Debug, PartialEq, Eq)]
struct Rotated {
    /// The file just closed.
    closed: PathBuf,
    /// Files deleted (or tried) by `rotate`.
    deleted: Vec<PathBuf>,
}

impl RotatingFile {
    fn open(spec: &RotatingLog, retention: &LogRetention, now: NaiveDateTime) -> io::Result<Self> {
        let period = logrotate::period_start(spec.rotation, now);
        let path = spec.name.path_for(spec.rotation, period);
        let file = open_append(&path)?;
        Ok(RotatingFile {
            spec: spec.clone(),
            retention: retention.clone(),
            state: Mutex::new(Current { file, path, period }),
        })
    }

    /// Writes `line` as of local time `now`, first moving to the next file if the period
    /// changed. Returns what a rotation did (the archiver is the caller's to start).
    fn write_at(&self, line: &[u8], now: NaiveDateTime) -> Option<Rotated> {
        let mut cur = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let rotation = self.spec.rotation;
        let mut rotated = None;
        if logrotate::changed(rotation, cur.period, now) {
            let period = logrotate::period_start(rotation, now);
            let path = self.spec.name.path_for(rotation, period);
            match open_append(&path) {
                Ok(file) => {
                    let previous = cur.period;
                    let closed = std::mem::replace(&mut cur.path, path);
                    cur.file = file;
                    cur.period = period;
                    let ext = self.retention.archiver.as_ref().map(|a| a.ext.as_str());
                    let deleted: Vec<PathBuf> = self
                        .spec
                        .name
                        .expired(rotation, self.retention.keep, previous, period, ext)
                        .into_iter()
                        // A template without the changing fields names the same file
                        // for several periods: never delete what is open or just closed.
                        .filter(|p| *p != cur.path && *p != closed)
                        .collect();
                    for p in &deleted {
                        if let Err(e) = std::fs::remove_file(crate::config::in_root(p)) {
                            if e.kind() != io::ErrorKind::NotFound {
                                notice(&format!("rotate: cannot delete {}: {e}", p.display()));
                            }
                        }
                    }
                    if closed != cur.path {
                        rotated = Some(Rotated { closed, deleted });
                    }
                }
                Err(e) => {
                    // Keep writing to the old file; try again next period.
                    cur.period = period;
                    notice(&format!(
                        "cannot open the next log file {}: {e}; still writing {}",
                        path.display(),
                        cur.path.display()
                    ));
                }
            }
        }
        let _ = cur.file.write_all(line);
        rotated
    }

    fn reopen(&self) -> io::Result<()> {
        let mut cur = self.state.lock().unwrap_or_else(|p| p.into_inner());
        cur.file = open_append(&cur.path)?;
        Ok(())
    }

    /// Starts the archiver on the closed file, if one is configured, on its own thread.
    fn archive(&self, closed: &Path) {
        let Some(archiver) = &self.retention.archiver else {
            return;
        };
        let closed = crate::config::in_root(closed);
        let mut archive = OsString::from(closed.as_os_str());
        archive.push(".");
        archive.push(&archiver.ext);
        let mut cmd = Command::new(&archiver.program);
        for arg in &archiver.args {
            match arg {
                ArchiverArg::Archive => cmd.arg(&archive),
                ArchiverArg::Closed => cmd.arg(&*closed),
                ArchiverArg::Text(t) => cmd.arg(t),
            };
        }
        let program = archiver.program.clone();
        let spawned = std::thread::Builder::new()
            .name("triproxy-archiver".to_owned())
            .spawn(move || match cmd.status() {
                Ok(status) if status.success() => {}
                Ok(status) => notice(&format!("archiver `{program}` ended with {status}")),
                Err(e) => notice(&format!("cannot run archiver `{program}`: {e}")),
            });
        if let Err(e) = spawned {
            notice(&format!("cannot start the archiver thread: {e}"));
        }
    }
}

#[derive(Debug)]
enum Writer {
    Off,
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
    Rotating(RotatingFile),
    Syslog(Syslog),
}

impl Writer {
    /// Writes one record (`line` without its newline) as of `time`.
    fn write_record(&self, line: &str, time: SystemTime) {
        // A log that cannot be written must not stop the proxy; the record is lost.
        let with_newline = || {
            let mut l = String::with_capacity(line.len() + 1);
            l.push_str(line);
            l.push('\n');
            l
        };
        match self {
            Writer::Off => {}
            Writer::Stdout => {
                let _ = io::stdout().lock().write_all(with_newline().as_bytes());
            }
            Writer::File { file, .. } => {
                let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
                let _ = f.write_all(with_newline().as_bytes());
            }
            Writer::Rotating(r) => {
                if let Some(rotated) = r.write_at(with_newline().as_bytes(), local(time)) {
                    r.archive(&rotated.closed);
                }
            }
            Writer::Syslog(s) => s.send(local(time), line, &notice),
        }
    }

    fn reopen(&self) -> Result<(), (PathBuf, io::Error)> {
        match self {
            Writer::Off | Writer::Stdout => Ok(()),
            Writer::File { path, file } => {
                let new = open_append(path).map_err(|e| (path.clone(), e))?;
                *file.lock().unwrap_or_else(|p| p.into_inner()) = new;
                Ok(())
            }
            Writer::Rotating(r) => r.reopen().map_err(|e| {
                let cur = r.state.lock().unwrap_or_else(|p| p.into_inner());
                (cur.path.clone(), e)
            }),
            Writer::Syslog(s) => {
                s.reopen();
                Ok(())
            }
        }
    }
}

/// Which destination a writer serves, so that services naming the same one share it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    File(PathBuf),
    Rotating(RotatingLog),
    Syslog(String),
}

/// Opens each log destination once and hands out [`Hooks`] that write to it.
#[derive(Debug, Default)]
pub struct LogSinks {
    retention: LogRetention,
    writers: Mutex<BTreeMap<Key, Arc<Writer>>>,
}

impl LogSinks {
    /// Sinks whose rotated files follow `retention` (`rotate`, `archiver`).
    pub fn new(retention: &LogRetention) -> LogSinks {
        LogSinks {
            retention: retention.clone(),
            writers: Mutex::default(),
        }
    }

    fn writer(&self, target: &LogTarget) -> io::Result<Arc<Writer>> {
        let key = match target {
            LogTarget::Off => return Ok(Arc::new(Writer::Off)),
            LogTarget::Stdout => return Ok(Arc::new(Writer::Stdout)),
            LogTarget::File(path) => Key::File(path.clone()),
            LogTarget::Rotating(r) => Key::Rotating(r.clone()),
            LogTarget::Syslog(ident) => Key::Syslog(ident.clone()),
        };
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writers.get(&key) {
            return Ok(Arc::clone(w));
        }
        let w = Arc::new(match &key {
            Key::File(path) => Writer::File {
                path: path.clone(),
                file: Mutex::new(open_append(path)?),
            },
            Key::Rotating(r) => Writer::Rotating(RotatingFile::open(
                r,
                &self.retention,
                local(SystemTime::now()),
            )?),
            Key::Syslog(ident) => Writer::Syslog(Syslog::new(ident)),
        });
        writers.insert(key, Arc::clone(&w));
        Ok(w)
    }

    /// Reopens every log file under its current name (and reconnects to syslog), so that
    /// after an external tool moved the files (logrotate without `copytruncate`) records
    /// go to new files. Returns the files that could not be reopened; their records keep
    /// going to the old handle.
    pub fn reopen(&self) -> Vec<(PathBuf, io::Error)> {
        let writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        writers.values().filter_map(|w| w.reopen().err()).collect()
    }

    /// Hooks for a service that logs to `target` in `format`, with local civil time for
    /// ACL time fields.
    pub fn hooks(&self, target: &LogTarget, format: &LogFormat) -> io::Result<Hooks> {
        let writer = self.writer(target)?;
        let format = format.clone();
        Ok(Hooks {
            log: Arc::new(move |record: &LogRecord| {
                // `nolog` is applied here, where every destination is chosen: the engine
                // ends every connection the same way and marks the record.
                if matches!(*writer, Writer::Off) || record.logging == Logging::Unlogged {
                    return;
                }
                let now = SystemTime::now();
                writer.write_record(&render(&format, record, now), now);
            }),
            civil_time: Arc::new(civil_now),
            notice: Arc::new(notice),
            // Counted by [`crate::metrics::Metrics::instrument`], which replaces it.
            activity: Arc::new(|_| {}),
        })
    }
}

/// Local weekday and seconds since local midnight, now.
pub fn civil_now() -> CivilTime {
    let now = Local::now();
    CivilTime {
        weekday: u8::try_from(now.weekday().num_days_from_sunday()).unwrap_or(0),
        seconds_of_day: now.num_seconds_from_midnight(),
    }
}

/// Renders one record with `format` as of wall-clock `time` (no trailing newline).
pub fn render(format: &LogFormat, record: &LogRecord, time: SystemTime) -> String {
    let host = record
        .requested
        .as_ref()
        .and_then(|t| t.domain())
        .map(|d| d.to_string());
    let requested_ip = record
        .requested
        .as_ref()
        .and_then(|t| t.ip().map(|ip| std::net::SocketAddr::new(ip, t.port())));
    let fields = LogFields {
        time,
        duration: record.duration,
        service: record.service,
        listen_port: record.listen_port,
        code: record.code,
        user: record.user.as_deref(),
        client: record.client,
        remote: record.remote,
        internal: Some(record.internal.ip()),
        external: record.external.map(|a| a.ip()),
        requested_host: host.as_deref(),
        requested: requested_ip,
        requested_port: record.requested.as_ref().map(|t| t.port()),
        bytes_in: record.bytes_in,
        bytes_out: record.bytes_out,
        hops: record.hops,
        text: &record.text,
        reason: record.reason.as_ref(),
    };
    let mut out = String::with_capacity(160);
    format.render(&fields, &mut out);
    out
}

#[cfg(test)]
#[path = "logsink_tests.rs"]
mod tests;
