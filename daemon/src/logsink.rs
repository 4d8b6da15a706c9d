//! Where log records go: standard output or an append-only file, one whole line per
//! `write` so that concurrent connections never interleave inside a record.
//!
//! Services that name the same file share one handle. Rotation, syslog and ODBC come with
//! the full configuration grammar.

use crate::config::LogTarget;
use crate::logformat::{LogFields, LogFormat};
use chrono::{Datelike, Local, Timelike};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use triproxy_policy::acl::CivilTime;
use triproxy_policy::session::LogRecord;
use triproxy_runtime_std::Hooks;

#[derive(Debug)]
enum Writer {
    Off,
    Stdout,
    File(Mutex<File>),
}

impl Writer {
    fn write_line(&self, line: &[u8]) {
        // A log that cannot be written must not stop the proxy; the record is lost.
        match self {
            Writer::Off => {}
            Writer::Stdout => {
                let _ = io::stdout().lock().write_all(line);
            }
            Writer::File(f) => {
                let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
                let _ = f.write_all(line);
            }
        }
    }
}

/// Opens each log destination once and hands out [`Hooks`] that write to it.
#[derive(Debug, Default)]
pub struct LogSinks {
    files: Mutex<BTreeMap<PathBuf, Arc<Writer>>>,
}

impl LogSinks {
    fn writer(&self, target: &LogTarget) -> io::Result<Arc<Writer>> {
        Ok(match target {
            LogTarget::Off => Arc::new(Writer::Off),
            LogTarget::Stdout => Arc::new(Writer::Stdout),
            LogTarget::File(path) => {
                let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(w) = files.get(path) {
                    Arc::clone(w)
                } else {
                    let f = OpenOptions::new().create(true).append(true).open(path)?;
                    let w = Arc::new(Writer::File(Mutex::new(f)));
                    files.insert(path.clone(), Arc::clone(&w));
                    w
                }
            }
        })
    }

    /// Reopens every log file (a reload does this, so that logrotate can move the files
    /// away without `copytruncate`). A file that cannot be opened again keeps its old
    /// handle, and the reason is printed.
    pub fn reopen(&self) {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        for (path, writer) in files.iter() {
            if let Writer::File(handle) = &**writer {
                match OpenOptions::new().create(true).append(true).open(path) {
                    Ok(f) => *handle.lock().unwrap_or_else(|p| p.into_inner()) = f,
                    Err(e) => eprintln!(
                        "triproxy: cannot reopen the log file {}: {e}; still writing to the old one",
                        path.display()
                    ),
                }
            }
        }
    }

    /// Hooks for a service that logs to `target` in `format`, with local civil time for
    /// ACL time fields.
    pub fn hooks(&self, target: &LogTarget, format: &LogFormat) -> io::Result<Hooks> {
        let writer = self.writer(target)?;
        let format = format.clone();
        Ok(Hooks {
            log: Arc::new(move |record: &LogRecord| {
                if matches!(*writer, Writer::Off) {
                    return;
                }
                let mut line = render(&format, record, SystemTime::now());
                line.push('\n');
                writer.write_line(line.as_bytes());
            }),
            civil_time: Arc::new(civil_now),
            // Notices are about the daemon, not a connection: stderr, like start-up errors.
            notice: Arc::new(|text: &str| eprintln!("triproxy: {text}")),
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
    };
    let mut out = String::with_capacity(160);
    format.render(&fields, &mut out);
    out
}
