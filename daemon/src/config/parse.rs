//! Running configuration commands in order: reading files line by line, expanding `$FILE`
//! and `include`, and keeping the state (auth, ACL, log, limits) that service lines snapshot.
//!
//! This is the only part of the configuration reader that touches the file system, and only
//! to read: files are opened when the line naming them runs, so nothing after the first
//! error is ever read.
//!
//! What each command does is in `dispatch`; service lines and the standalone form are in
//! `service_line`.

mod dispatch;
mod service_line;

pub(super) use service_line::standalone;

use super::lexer::{self, Mode, SyntaxError};
use super::logging::{self, LogRetention};
use super::names::NamesConfig;
use super::process::{self, ProcessConfig};
use super::{
    Config, ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind, CounterConfig,
    LogTarget, ServiceConfig, ServiceKind, SourceAddrs, DEFAULT_INTERNAL, DEFAULT_MAXCONN,
    MAXCONN_RANGE, MAX_CONFIG_FILE_LEN, MAX_FILES_READ, MAX_INCLUDE_DEPTH, MAX_INLINE_FILE_LEN,
    MAX_LINE_LEN, MAX_REPORTED_ERRORS, MAX_WORDS_PER_LINE,
};
use crate::logformat::LogFormat;
use std::fs::File;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triproxy_policy::acl::Ace;
use triproxy_policy::auth::AuthChain;
use triproxy_policy::authcache::{AuthCache, AuthCacheSettings, DEFAULT_AUTHCACHE_SIZE};
use triproxy_policy::bandlim::BandLimits;
use triproxy_policy::connlim::ConnLimits;
use triproxy_policy::quota::Quotas;
use triproxy_policy::relay::LogDump;
use triproxy_policy::service::DEFAULT_DELIMITER;
use triproxy_policy::service::{Timeouts, DEFAULT_TIMEOUTS, TIMEOUT_COUNT};
use triproxy_policy::users::Users;

/// Whether to go on with the current file after a command.
enum Flow {
    Continue,
    /// `end`: stop reading the current file (an including file goes on, as in 3proxy).
    End,
}

/// Where the line being run is.
#[derive(Clone, Copy)]
struct Here<'a> {
    file: &'a str,
    line: usize,
    base_dir: &'a Path,
}

/// The reader's state: the settings in force and what has been collected so far.
pub(super) struct Parser {
    auth: AuthChain,
    acl: Vec<Ace>,
    log: LogTarget,
    logformat: LogFormat,
    maxconn: u32,
    internal: IpAddr,
    external: SourceAddrs,
    backlog: Option<u32>,
    users: Users,
    /// The `authcache` settings in force for later services.
    authcache: Option<AuthCacheSettings>,
    /// The last `authcache` line's SIZE: the capacity of the one table.
    authcache_size: usize,
    /// `delimchar`: global, the last line wins (3proxy reads it when a client logs in).
    delimiter: u8,
    bandlimits: BandLimits,
    quotas: Quotas,
    connlimits: ConnLimits,
    /// The global `timeouts` table, in 3proxy's order.
    timeouts: [u32; TIMEOUT_COUNT],
    counter: Option<CounterConfig>,
    names: NamesConfig,
    warnings: Vec<ConfigWarning>,
    log_retention: LogRetention,
    /// File and line of the last `rotate` or `archiver` (for the warning when no log is
    /// rotated).
    retention_origin: Option<(String, usize)>,
    logdump: LogDump,
    services: Vec<ServiceConfig>,
    /// Canonical paths of the files being read, outermost first (cycle detection).
    open_files: Vec<PathBuf>,
    /// The `include` lines leading to the current file.
    includers: Vec<(String, usize)>,
    files_read: usize,
    process: ProcessConfig,
    /// `force`/`noforce` in force (3proxy's default is `force`).
    force: bool,
    /// Every error so far, in file order; reading goes on after an error so that one run
    /// reports them all (at most [`MAX_REPORTED_ERRORS`]).
    errors: Vec<ConfigError>,
    /// Clears the `chroot` mapping of file names when reading ends.
    _root: RootGuard,
}

impl Parser {
    pub(super) fn new() -> Parser {
        // Inside a chroot already (a reload), names are mapped from the start, so that
        // they come out as at start-up (see `process::in_root`).
        ROOT.with(|root| *root.borrow_mut() = process::current_root());
        Parser {
            auth: AuthChain::default_chain(),
            acl: Vec::new(),
            log: LogTarget::Off,
            logformat: LogFormat::default_3proxy(),
            maxconn: DEFAULT_MAXCONN,
            external: SourceAddrs::default(),
            backlog: None,
            internal: DEFAULT_INTERNAL,
            users: Users::new(),
            authcache: None,
            authcache_size: DEFAULT_AUTHCACHE_SIZE,
            delimiter: DEFAULT_DELIMITER,
            bandlimits: BandLimits::new(),
            quotas: Quotas::new(),
            connlimits: ConnLimits::new(),
            timeouts: DEFAULT_TIMEOUTS,
            counter: None,
            names: NamesConfig::default(),
            warnings: Vec::new(),
            log_retention: LogRetention::default(),
            retention_origin: None,
            logdump: LogDump::default(),
            services: Vec::new(),
            open_files: Vec::new(),
            includers: Vec::new(),
            files_read: 0,
            process: ProcessConfig::default(),
            force: true,
            errors: Vec::new(),
            _root: RootGuard,
        }
    }

    /// Notes an error; reading goes on unless [`MAX_REPORTED_ERRORS`] were noted.
    pub(super) fn record(&mut self, error: ConfigError) {
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
    }

    /// Whether so many errors were noted that reading stops.
    fn stopped(&self) -> bool {
        self.errors.len() >= MAX_REPORTED_ERRORS
    }

    /// The configuration, or every error noted while reading it.
    pub(super) fn finish_checked(self) -> Result<Config, Vec<ConfigError>> {
        if self.errors.is_empty() {
            Ok(self.finish())
        } else {
            Err(self.errors)
        }
    }

    pub(super) fn finish(mut self) -> Config {
        if let Some(w) = logging::retention_warning(&self.services, self.retention_origin) {
            self.warnings.push(w);
        }
        for service in &mut self.services {
            if let ServiceKind::Pop3p(m) | ServiceKind::Smtpp(m) | ServiceKind::Imapp(m) =
                &mut service.kind
            {
                m.delimiter = self.delimiter;
            }
        }
        Config {
            services: self.services,
            users: Arc::new(self.users),
            authcache: Arc::new(AuthCache::new(self.authcache_size)),
            bandlimits: Arc::new(self.bandlimits),
            quotas: Arc::new(self.quotas),
            connlimits: Arc::new(self.connlimits),
            timeouts: Timeouts::from_secs(self.timeouts),
            counter: self.counter,
            names: self.names,
            process: self.process,
            warnings: self.warnings,
            log_retention: self.log_retention,
        }
    }

    /// Records a warning about the line `here`, if there is one.
    fn warn(&mut self, here: Here<'_>, kind: Option<ConfigWarningKind>) {
        if let Some(kind) = kind {
            self.warnings.push(ConfigWarning {
                file: here.file.to_owned(),
                line: here.line,
                kind,
            });
        }
    }

    fn error(&self, here: Here<'_>, kind: ConfigErrorKind) -> ConfigError {
        ConfigError {
            file: here.file.to_owned(),
            line: here.line,
            kind,
            included_from: self.includers.clone(),
        }
    }

    /// Reads a top-level configuration file.
    pub(super) fn run_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let name = path.display().to_string();
        let here = Here {
            file: &name,
            line: 0,
            base_dir: Path::new(""),
        };
        let bytes = self.read_file(here, path, MAX_CONFIG_FILE_LEN)?;
        let canonical =
            std::fs::canonicalize(process::in_root(path)).unwrap_or_else(|_| path.to_path_buf());
        self.open_files.push(canonical);
        let base = path.parent().unwrap_or(Path::new(""));
        self.run_text(&bytes, &name, base);
        self.open_files.pop();
        Ok(())
    }

    /// Runs the lines of `bytes`, named `file` in errors. An error in a line is noted and
    /// reading goes on with the next line (the line's command has no effect).
    pub(super) fn run_text(&mut self, bytes: &[u8], file: &str, base_dir: &Path) {
        // A UTF-8 byte order mark (Windows editors) is not part of the first command.
        let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            if self.stopped() {
                break;
            }
            let here = Here {
                file,
                line: index + 1,
                base_dir,
            };
            match self.run_line(here, raw) {
                Ok(Flow::Continue) => {}
                Ok(Flow::End) => break,
                Err(e) => self.record(e),
            }
        }
    }

    /// Runs one raw line (comments and blank lines do nothing).
    fn run_line(&mut self, here: Here<'_>, raw: &[u8]) -> Result<Flow, ConfigError> {
        if raw.len() > MAX_LINE_LEN {
            return Err(self.error(
                here,
                ConfigErrorKind::LineTooLong {
                    limit: MAX_LINE_LEN,
                },
            ));
        }
        match raw.first() {
            None => return Ok(Flow::Continue),
            Some(b) if b.is_ascii_whitespace() || *b == b'#' || *b == 0x0b => {
                return Ok(Flow::Continue)
            }
            Some(_) => {}
        }
        let line =
            std::str::from_utf8(raw).map_err(|_| self.error(here, ConfigErrorKind::NotUtf8))?;
        let words = self.words(here, line)?;
        self.run_command(here, &words)
    }

    /// Splits a line into words, replacing `$FILE` words by the file's words.
    fn words(&mut self, here: Here<'_>, line: &str) -> Result<Vec<String>, ConfigError> {
        let split = lexer::split(line, Mode::Line, MAX_WORDS_PER_LINE)
            .map_err(|e| self.error(here, ConfigErrorKind::Syntax(e)))?;
        let mut words: Vec<String> = Vec::with_capacity(split.len());
        let total = split.len();
        for (i, word) in split.into_iter().enumerate() {
            if !word.inline_file {
                words.push(word.text);
                continue;
            }
            let path = resolve(here.base_dir, &word.text);
            let bytes = self.read_file(here, &path, MAX_INLINE_FILE_LEN)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                self.error(
                    here,
                    ConfigErrorKind::InlineFileNotUtf8 { path: path.clone() },
                )
            })?;
            // Room left for this file's words: the limit minus the words already taken and
            // the ones still to come on the line.
            let room = MAX_WORDS_PER_LINE.saturating_sub(words.len() + (total - i - 1));
            let inlined = lexer::split(&text, Mode::Inline, room).map_err(|error| {
                let kind = match error {
                    SyntaxError::TooManyWords { .. } => {
                        ConfigErrorKind::Syntax(SyntaxError::TooManyWords {
                            limit: MAX_WORDS_PER_LINE,
                        })
                    }
                    error => ConfigErrorKind::InlineFileSyntax {
                        path: path.clone(),
                        error,
                    },
                };
                self.error(here, kind)
            })?;
            words.extend(inlined.into_iter().map(|w| w.text));
        }
        Ok(words)
    }

    /// Reads a whole file of at most `limit` bytes.
    fn read_file(
        &mut self,
        here: Here<'_>,
        path: &Path,
        limit: usize,
    ) -> Result<Vec<u8>, ConfigError> {
        if self.files_read >= MAX_FILES_READ {
            return Err(self.error(
                here,
                ConfigErrorKind::TooManyFiles {
                    limit: MAX_FILES_READ,
                },
            ));
        }
        self.files_read += 1;
        let read_err = |e: std::io::Error| ConfigErrorKind::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let file = File::open(process::in_root(path)).map_err(|e| self.error(here, read_err(e)))?;
        let mut bytes = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        file.take(cap)
            .read_to_end(&mut bytes)
            .map_err(|e| self.error(here, read_err(e)))?;
        if bytes.len() > limit {
            return Err(self.error(
                here,
                ConfigErrorKind::FileTooLarge {
                    path: path.to_path_buf(),
                    limit,
                },
            ));
        }
        Ok(bytes)
    }

    fn warn_at(&mut self, here: Here<'_>, kind: ConfigWarningKind) {
        self.warnings.push(ConfigWarning {
            file: here.file.to_owned(),
            line: here.line,
            kind,
        });
    }

    /// `monitor FILE`: watched for changes; a missing file is a warning (3proxy watches it
    /// anyway, and it may appear later).
    fn monitor(&mut self, here: Here<'_>, name: &str) -> Result<(), ConfigError> {
        let path =
            process::parse_file("monitor", name, here.base_dir).map_err(|k| self.error(here, k))?;
        if self.process.monitor.len() >= super::MAX_MONITORED_FILES {
            return Err(self.error(
                here,
                ConfigErrorKind::TooManyRules {
                    what: "monitor",
                    limit: super::MAX_MONITORED_FILES,
                },
            ));
        }
        if !path.exists() {
            self.warn_at(
                here,
                ConfigWarningKind::MonitorMissing { path: path.clone() },
            );
        }
        self.process.monitor.push(path);
        Ok(())
    }

    fn include(&mut self, here: Here<'_>, name: &str) -> Result<(), ConfigError> {
        if name.is_empty() {
            return Err(self.error(here, ConfigErrorKind::EmptyFileName { what: "include" }));
        }
        let path = resolve(here.base_dir, name);
        if self.includers.len() >= MAX_INCLUDE_DEPTH {
            return Err(self.error(
                here,
                ConfigErrorKind::IncludeTooDeep {
                    path,
                    limit: MAX_INCLUDE_DEPTH,
                },
            ));
        }
        let canonical = std::fs::canonicalize(process::in_root(&path)).map_err(|e| {
            self.error(
                here,
                ConfigErrorKind::Read {
                    path: path.clone(),
                    reason: e.to_string(),
                },
            )
        })?;
        if self.open_files.contains(&canonical) {
            return Err(self.error(here, ConfigErrorKind::IncludeCycle { path }));
        }
        let bytes = self.read_file(here, &path, MAX_CONFIG_FILE_LEN)?;
        let name = path.display().to_string();
        let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
        self.open_files.push(canonical);
        self.includers.push((here.file.to_owned(), here.line));
        self.run_text(&bytes, &name, &base);
        self.includers.pop();
        self.open_files.pop();
        Ok(())
    }
}

/// `base/name` for a relative `name`, `name` itself otherwise.
pub(super) fn resolve(base_dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        ROOT.with(|root| match &*root.borrow() {
            Some(root) => root.join(p.strip_prefix("/").unwrap_or(p)),
            None => p.to_path_buf(),
        })
    } else {
        base_dir.join(p)
    }
}

thread_local! {
    /// The `chroot` directory of the configuration being read on this thread, once its
    /// `chroot` line ran: 3proxy chroots when it parses that line, so every absolute file
    /// name after it (`include`, `$FILE`, `log`, `counter`, `pidfile`, `config`, `monitor`)
    /// is inside the new root. triproxy chroots only after binding, so the reader maps
    /// those names itself, and on a reload inside the root it maps them from the first
    /// line: a configured name always names the file from outside the root, and
    /// `process::in_root` turns it into the name the process can reach. A per-thread value
    /// rather than a parameter of every file-naming command; [`Parser`] sets it when it
    /// starts and clears it when it is dropped.
    static ROOT: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Clears [`ROOT`] when the reader that set it is done.
struct RootGuard;

impl Drop for RootGuard {
    fn drop(&mut self) {
        ROOT.with(|root| *root.borrow_mut() = None);
    }
}

/// A listen address for `internal` or `-i`: an IPv4 or IPv6 literal (IPv6 also in brackets).
fn parse_listen_ip(value: &str) -> Result<IpAddr, ConfigErrorKind> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(ip);
    }
    if value.starts_with("unix:") {
        return Err(ConfigErrorKind::NotSupportedYet {
            feature: format!("listening on a unix socket (`{value}`)"),
        });
    }
    let looks_like_host = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if looks_like_host {
        Err(ConfigErrorKind::HostNameNotSupported {
            value: value.to_owned(),
        })
    } else {
        Err(ConfigErrorKind::InvalidAddress {
            value: value.to_owned(),
        })
    }
}

fn parse_maxconn(value: &str) -> Result<u32, ConfigErrorKind> {
    parse_decimal(value)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| MAXCONN_RANGE.contains(n))
        .ok_or_else(|| ConfigErrorKind::InvalidNumber {
            what: "maxconn",
            value: value.to_owned(),
            min: u64::from(*MAXCONN_RANGE.start()),
            max: u64::from(*MAXCONN_RANGE.end()),
        })
}

/// `backlog N`: 1..=65535 (the kernel caps it at `net.core.somaxconn` anyway).
fn parse_backlog(value: &str) -> Result<u32, ConfigErrorKind> {
    parse_decimal(value)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=65_535).contains(n))
        .ok_or_else(|| ConfigErrorKind::InvalidNumber {
            what: "backlog",
            value: value.to_owned(),
            min: 1,
            max: 65_535,
        })
}

fn parse_port(value: &str) -> Result<u16, ConfigErrorKind> {
    parse_decimal(value)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| ConfigErrorKind::InvalidNumber {
            what: "port (-p)",
            value: value.to_owned(),
            min: 0,
            max: u64::from(u16::MAX),
        })
}

/// Plain decimal digits only (no sign, no spaces), at most 19 of them.
fn parse_decimal(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
