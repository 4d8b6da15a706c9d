//! Reading 3proxy configuration files into plain data: which services to start, each with the
//! authentication, ACL, logging and limits in force at the line that starts it.
//!
//! Syntax (3proxy.md section 4): one command per line; a line whose first character is
//! whitespace or `#` is a comment; words are separated by spaces, tabs and carriage returns;
//! `"..."` quotes (`""` inside quotes is a literal `"`); an unquoted word `$FILE` is replaced
//! by the whitespace-separated words of FILE (not recursively, at most
//! [`MAX_INLINE_FILE_LEN`] bytes); `include FILE` reads another configuration file in place
//! (at most [`MAX_INCLUDE_DEPTH`] levels, cycles rejected); `end` stops reading the current
//! file. Relative file names are relative to the directory of the file that names them.
//! A UTF-8 byte order mark at the start of a file is skipped.
//!
//! Commands run in order, as in 3proxy: a service line (`socks`, `proxy`, `tcppm`, `udppm`,
//! `dnspr`, `pop3p`, `smtpp`, `imapp`, `tlspr`, `auto`, `admin`) takes a
//! snapshot of the `auth` chain, the `allow`/`deny` list, the `log` target, the `logformat`,
//! `logdump`, `maxconn`, the `authcache` settings and the `internal` address in force at that line;
//! `flush` empties the ACL for
//! later services; `users`, the `bandlim*`, `count*` and `connlim` rules, `counter`,
//! `timeouts`, `rotate`, `archiver`, `delimchar` and the DNS commands are global and apply to every service
//! wherever they appear.
//!
//! Supported commands: see the README's compatibility table; the `commands` module classifies every
//! 3proxy word. A 3proxy command triproxy does not run is an error that says so
//! ([`ConfigErrorKind::UnsupportedCommand`]), and any other word is an unknown command:
//! nothing is ignored silently. Reading goes on after an error, so that one reading
//! reports every problem of the file (at most [`MAX_REPORTED_ERRORS`]); a configuration
//! with an error is never used.
//!
//! The process-control commands (`daemon`, `pidfile`, `chroot`, `setuid`, ...) are
//! recorded in [`ProcessConfig`], not applied: reading has no side effect but reading files.
//!
//! `radius` and `authnserver` are refused with the reason
//! ([`ConfigErrorKind::CommandRefused`]).
//!
//! This module does not open sockets, start services or open log files; the daemon does that
//! with the [`Config`] returned here.

mod auth;
mod commands;
mod error;
mod help;
mod lexer;
mod limits;
mod logging;
mod names;
mod parse;
mod process;
mod service;
mod warning;

pub use error::{ConfigError, ConfigErrorKind};
pub use service::{LogTarget, RotatingLog, ServiceConfig, ServiceKind};
pub use warning::{ConfigWarning, ConfigWarningKind};

pub use help::service_help;
pub use logging::{Archiver, ArchiverArg, LogRetention, MAX_ARCHIVER_WORDS, MAX_SYSLOG_IDENT_LEN};
pub use names::{NamesConfig, MAX_NSCACHE, MAX_NSRECORDS, MIN_NSCACHE};
pub use process::{
    chrooted, in_root, mark_chrooted, Account, ProcessConfig, MAX_MONITORED_FILES,
    MAX_SYSTEM_COMMANDS, MAX_SYSTEM_COMMAND_LEN,
};

pub use lexer::SyntaxError;
/// 3proxy's `needuser` service option (`-u` = `Never`, `-u1` = `IfOffered`, `-u2` =
/// `Required`), shared with the policy crate.
pub use triproxy_policy::service::{MailOptions, NeedUser, SourceAddrs, TlsOptions};

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triproxy_policy::authcache::AuthCache;
use triproxy_policy::bandlim::BandLimits;
use triproxy_policy::connlim::ConnLimits;
use triproxy_policy::period::Period;
use triproxy_policy::quota::Quotas;
use triproxy_policy::service::Timeouts;
use triproxy_policy::users::Users;

/// Longest configuration line in bytes, newline excluded (3proxy reads lines into a 64 KiB
/// buffer).
pub const MAX_LINE_LEN: usize = 65_536;
/// Most words on one line, including words inlined from `$FILE`s (3proxy: 4096).
pub const MAX_WORDS_PER_LINE: usize = 4096;
/// Largest file a `$FILE` word may inline (3proxy: 64 KiB).
pub const MAX_INLINE_FILE_LEN: usize = 65_536;
/// Largest configuration file (top level or `include`d).
pub const MAX_CONFIG_FILE_LEN: usize = 16 << 20;
/// Deepest chain of `include`s (the top-level file is depth 0).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most files (includes and `$FILE`s) read while loading one configuration.
pub const MAX_FILES_READ: usize = 4096;
/// Most errors one reading of a configuration reports; reading stops after them.
pub const MAX_REPORTED_ERRORS: usize = 100;
/// Most services in one configuration.
pub const MAX_SERVICES: usize = 4096;
/// Most `allow`/`deny` entries in force at one time.
pub const MAX_ACL_ENTRIES: usize = 65_536;
/// Most `bandlimin`/`bandlimout`/`nobandlim*` rules in one configuration.
pub const MAX_BANDLIM_RULES: usize = 65_536;
/// Most `count*`/`nocount*` rules in one configuration.
pub const MAX_QUOTA_RULES: usize = 65_536;
/// Most `connlim`/`noconnlim` rules in one configuration.
pub const MAX_CONNLIM_RULES: usize = 65_536;
/// `maxconn` bounds; 3proxy's default is 500 per service.
pub const MAXCONN_RANGE: core::ops::RangeInclusive<u32> = 1..=1_000_000;
/// Connections per service when no `maxconn` was given (3proxy `DEFAULT_MAXCHILD`).
pub const DEFAULT_MAXCONN: u32 = 500;
/// Port of a `socks` service without `-p`.
pub const DEFAULT_SOCKS_PORT: u16 = 1080;
/// Port of a `dnspr` service without `-p` (UDP).
pub const DEFAULT_DNSPR_PORT: u16 = 53;
/// Port of a `proxy` service without `-p`.
pub const DEFAULT_PROXY_PORT: u16 = 3128;
/// Port of an `admin` service without `-p` (3proxy: 80).
pub const DEFAULT_ADMIN_PORT: u16 = 80;

/// Everything a configuration asks for.
#[derive(Debug, Clone)]
pub struct Config {
    /// Services in the order their lines appear.
    pub services: Vec<ServiceConfig>,
    /// The global password table: every `users` line of the whole configuration, whatever
    /// its position relative to the services.
    pub users: Arc<Users>,
    /// The process's one authentication cache, of the last `authcache` line's SIZE (as in
    /// 3proxy, whose table is global); services use it with their own settings.
    pub authcache: Arc<AuthCache>,
    /// Every `bandlimin`/`bandlimout`/`nobandlim*` rule of the whole configuration, in
    /// order; global like `users`.
    pub bandlimits: Arc<BandLimits>,
    /// Every `countin`/`countout`/`countall`/`nocount*` rule, in order; global.
    pub quotas: Arc<Quotas>,
    /// Every `connlim`/`noconnlim` rule, in order; global.
    pub connlimits: Arc<ConnLimits>,
    /// The `timeouts` of every service. As in 3proxy, where services read the one global
    /// table when they need a value, the last `timeouts` line applies to all services,
    /// wherever it is (each line changes the values it gives and keeps the others).
    pub timeouts: Timeouts,
    /// The `counter` line: where the traffic counters are kept, and their reports.
    pub counter: Option<CounterConfig>,
    /// The DNS commands (`nserver`, `nscache`, `nscache6`, `nsrecord`, `fakeresolve`);
    /// global.
    pub names: NamesConfig,
    /// The process-control commands (`daemon`, `pidfile`, `setuid`, `chroot`, ...).
    pub process: ProcessConfig,
    /// Things that were accepted but deserve a look (printed at start).
    pub warnings: Vec<ConfigWarning>,
    /// `rotate` and `archiver`: global, the last line of each wins (as in 3proxy).
    pub log_retention: LogRetention,
}

/// `counter FILE [REPORTTYPE REPORTPATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterConfig {
    /// The binary counter file (3proxy's format), read at start and written every minute
    /// and at exit.
    pub file: PathBuf,
    /// Report files, if asked for.
    pub report: Option<CounterReport>,
}

/// Where and how often traffic reports are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterReport {
    /// A calendar period (never [`Period::Never`]): at each change a file
    /// `path.<period>` lists the counters of the period that ended.
    pub period: Period,
    /// The file name before the period suffix.
    pub path: PathBuf,
}

/// Reads and runs the configuration file at `path` (relative names inside it are relative to
/// its directory).
///
/// A file that cannot be read is an error with line 0.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_all(path).map_err(first_error)
}

/// Like [`load`], but returns every error in the file (in file order, at most
/// [`MAX_REPORTED_ERRORS`]), not only the first: what `triproxy --check` prints. Reading
/// goes on after a bad line as if the line were not there.
pub fn load_all(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let mut parser = parse::Parser::new();
    if let Err(e) = parser.run_file(path) {
        parser.record(e);
    }
    parser.finish_checked()
}

/// The first of a non-empty list of errors.
fn first_error(mut errors: Vec<ConfigError>) -> ConfigError {
    // `finish_checked` only fails with at least one error.
    errors.truncate(1);
    errors.pop().unwrap_or_else(|| ConfigError {
        file: String::new(),
        line: 0,
        kind: ConfigErrorKind::UnknownCommand {
            command: String::new(),
        },
        included_from: Vec::new(),
    })
}

/// Runs configuration text. `origin` names it in errors and [`ServiceConfig::origin`];
/// `base_dir` is where relative `include`, `$FILE` and log file names are looked up.
///
/// ```
/// use std::path::Path;
/// let cfg = triproxy::config::parse_str("socks -p1081 -i127.0.0.1\n", "inline", Path::new("."))
///     .unwrap();
/// assert_eq!(cfg.services[0].listen, "127.0.0.1:1081".parse().unwrap());
/// let err = triproxy::config::parse_str("\nftppr\n", "inline", Path::new(".")).unwrap_err();
/// assert_eq!(err.to_string(), "inline:2: 3proxy command `ftppr` is not supported by triproxy yet");
/// ```
pub fn parse_str(text: &str, origin: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    parse_str_all(text, origin, base_dir).map_err(first_error)
}

/// Like [`parse_str`], with every error (see [`load_all`]).
pub fn parse_str_all(
    text: &str,
    origin: &str,
    base_dir: &Path,
) -> Result<Config, Vec<ConfigError>> {
    let mut parser = parse::Parser::new();
    parser.run_text(text.as_bytes(), origin, base_dir);
    parser.finish_checked()
}

/// The standalone form, `triproxy socks -p1080 -i127.0.0.1`, `triproxy proxy ...` or
/// `triproxy tcppm -i127.0.0.1 2525 mail.example 25`: one service with the options (and
/// arguments) of a service line, logging to standard output in 3proxy's default format,
/// the default `auth` chain, an empty ACL and no users. As in 3proxy's standalone binaries, `needuser` defaults
/// to [`NeedUser::Never`] (there is no `users` table to check names against) and the listen
/// address to 0.0.0.0.
///
/// Errors name the file `command line` and line 0.
pub fn parse_standalone(service: &str, args: &[String]) -> Result<Config, ConfigError> {
    parse::standalone(service, args)
}

/// The address a service listens on when neither `internal` nor `-i` says otherwise.
pub const DEFAULT_INTERNAL: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
