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
mod help;
mod lexer;
mod limits;
mod logging;
mod names;
mod parse;
mod process;

pub use help::service_help;
pub use logging::{Archiver, ArchiverArg, LogRetention, MAX_ARCHIVER_WORDS, MAX_SYSLOG_IDENT_LEN};
pub use names::{NamesConfig, MAX_NSCACHE, MAX_NSRECORDS, MIN_NSCACHE};
pub use process::{
    chrooted, mark_chrooted, Account, ProcessConfig, MAX_MONITORED_FILES, MAX_SYSTEM_COMMANDS,
    MAX_SYSTEM_COMMAND_LEN,
};

pub use lexer::SyntaxError;
/// 3proxy's `needuser` service option (`-u` = `Never`, `-u1` = `IfOffered`, `-u2` =
/// `Required`), shared with the policy crate.
pub use triproxy_policy::service::{MailOptions, NeedUser, SourceAddrs, TlsOptions};

use crate::logformat::{LogFormat, LogFormatError};
use core::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triproxy_policy::acl::{Ace, AclError};
use triproxy_policy::auth::{AuthChain, AuthError};
use triproxy_policy::authcache::{AuthCache, AuthCacheError, AuthCacheSettings};
use triproxy_policy::bandlim::BandLimits;
use triproxy_policy::connlim::ConnLimits;
use triproxy_policy::parent::ParentError;
use triproxy_policy::period::Period;
use triproxy_policy::quota::{QuotaRuleError, Quotas};
use triproxy_policy::service::{Anonymity, Timeouts};
use triproxy_policy::users::{Users, UsersError};
use triproxy_wire::TargetAddr;

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

/// Something in the configuration that is accepted but probably not what was meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What.
    pub kind: ConfigWarningKind,
}

/// The problem in a [`ConfigWarning`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigWarningKind {
    /// More `nserver` lines than the resolver uses: the later ones are ignored (3proxy
    /// keeps 5 too).
    ExtraNameServers {
        /// How many are used.
        used: usize,
    },
    /// `timeouts` with more than 11 values: the rest are ignored (as 3proxy does).
    ExtraTimeouts {
        /// How many were ignored.
        ignored: usize,
    },
    /// `stacksize`: accepted, but triproxy sizes its connection threads itself.
    StackSize,
    /// `writable`: accepted, but there is no web configuration editor to write the file.
    Writable,
    /// A `monitor`ed file that does not exist (yet): it is watched anyway, as in 3proxy.
    MonitorMissing {
        /// The file.
        path: PathBuf,
    },
    /// The argument after `log FILE` is not a rotation letter: as in 3proxy, the file is
    /// not rotated.
    NotARotation {
        /// The text given.
        value: String,
    },
    /// A `logformat` or `-f` whose first character is not `L` or `G`: 3proxy takes the
    /// first character as the time-zone selector whatever it is (local time unless `G`)
    /// and does not print it, so the record silently loses it.
    LogFormatZone {
        /// The character consumed.
        consumed: char,
    },
    /// `rotate` or `archiver` with no service writing a rotated log (`log FILE D`): they
    /// have nothing to act on.
    NothingRotated,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: warning: ", self.file, self.line)?;
        match &self.kind {
            ConfigWarningKind::ExtraNameServers { used } => write!(
                f,
                "only the first {used} `nserver` lines are used; this one is ignored"
            ),
            ConfigWarningKind::ExtraTimeouts { ignored } => write!(
                f,
                "`timeouts` takes at most {} values; {ignored} more ignored",
                triproxy_policy::service::TIMEOUT_COUNT
            ),
            ConfigWarningKind::StackSize => f.write_str(
                "`stacksize` is accepted and not needed: triproxy gives each connection \
                 thread a fixed stack that its deepest path fits in (the std runtime) or \
                 uses no thread per connection (smol)",
            ),
            ConfigWarningKind::Writable => f.write_str(
                "`writable` is accepted and has no effect: triproxy has no web \
                 configuration editor (3proxy's admin /F and /U pages) that would write the file",
            ),
            ConfigWarningKind::MonitorMissing { path } => write!(
                f,
                "monitored file `{}` does not exist yet; it is watched anyway",
                path.display()
            ),
            ConfigWarningKind::NotARotation { value } => write!(
                f,
                "`{value}` is not a log rotation (3proxy letters: C, H, D, W, M, Y); this log is not rotated"
            ),
            ConfigWarningKind::LogFormatZone { consumed } => write!(
                f,
                "the log format's first character `{}` is taken as the time zone (local time) and not printed, as in 3proxy; start the format with `L` (local time) or `G` (GMT)",
                consumed.escape_default()
            ),
            ConfigWarningKind::NothingRotated => f.write_str(
                "`rotate` and `archiver` act on rotated logs only (`log FILE C|H|D|W|M|Y`), and no service writes one",
            ),
        }
    }
}

/// One service to start, with the settings that were in force at its line.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Which protocol it serves.
    pub kind: ServiceKind,
    /// Listen address: `-i` or the last `internal` (default 0.0.0.0, as 3proxy), port `-p`
    /// or the service default (SOCKS 1080); a port mapper's SRCPORT argument wins over
    /// `-p`. Port 0 means "any free port".
    pub listen: SocketAddr,
    /// The `auth` chain in force (the default chain when no `auth` line came before).
    pub auth: AuthChain,
    /// The `authcache` settings in force (`None` before any `authcache` line: nothing is
    /// cached).
    pub authcache: Option<AuthCacheSettings>,
    /// The `allow`/`deny` entries in force, in order (empty = allow everything, as 3proxy).
    pub acl: Vec<Ace>,
    /// `-u` / `-u1` / `-u2`.
    pub needuser: NeedUser,
    /// Most simultaneous clients (`maxconn` in force; default [`DEFAULT_MAXCONN`]).
    pub maxconn: u32,
    /// Whether established tunnels relay with zero-copy `splice(2)` (true, the default;
    /// `-s`) or through user-space buffers (`-s0`). 3proxy only splices when built with it
    /// and asked with `-s`; triproxy splices unless told not to.
    pub splice: bool,
    /// Where its records go: `-l...`, else the `log` in force. Services before the first
    /// `log` line do not log, as in 3proxy.
    pub log: LogTarget,
    /// Record format: `-f...`, else the `logformat` in force, else 3proxy's default.
    pub logformat: LogFormat,
    /// `logdump` in force at the service line: when its tunnels write interim records.
    pub logdump: triproxy_policy::relay::LogDump,
    /// What a forwarded HTTP request says about its client: `-a`, `-a1`, `-a2` (the HTTP
    /// proxy only; other services ignore it, as 3proxy does).
    pub anonymity: Anonymity,
    /// Address families of resolved names, in order: `-4`, `-6`, `-46`, `-64`. Without
    /// one, triproxy uses `-46` (3proxy's default is `-4`: IPv4 only); the README says so.
    pub family: triproxy_dns::Family,
    /// Source addresses of outgoing connections: `-e` options, else the `external` lines in
    /// force (none: the kernel chooses and nothing is bound).
    pub external: SourceAddrs,
    /// Listen backlog: `backlog` in force, else `1 + maxconn/8` (3proxy), at least 128.
    pub backlog: Option<u32>,
    /// File and line of the service command (`("command line", 0)` for the standalone form).
    pub origin: (String, usize),
    /// `force` (the default) or `noforce` in force at the service line: whether a reload
    /// checks this service's established connections against the new configuration.
    pub force: bool,
}

/// A service protocol.
#[allow(clippy::large_enum_variant)] // one per service, read once at start
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceKind {
    /// SOCKS 4, 4a and 5 on one port (3proxy `socks`).
    Socks,
    /// The HTTP proxy (3proxy `proxy`): CONNECT tunnels and plain forwarding.
    Proxy,
    /// The TCP port mapper (3proxy `tcppm SRCPORT DSTHOST DSTPORT`): every client is
    /// relayed to `target` (a name is resolved again for each connection).
    TcpPm {
        /// DSTHOST and DSTPORT.
        target: TargetAddr,
    },
    /// The UDP port mapper (3proxy `udppm SRCPORT DSTHOST DSTPORT`): each client's
    /// datagrams go to `target`, and its answers come back.
    UdpPm {
        /// DSTHOST and DSTPORT.
        target: TargetAddr,
        /// `-s`: one answer per client, then its mapping ends.
        single: bool,
    },
    /// The DNS proxy (3proxy `dnspr`, UDP port 53 by default): `-s` simple mode, `-FIP`
    /// fake answers.
    DnsPr(triproxy_dns::proxy::ProxyConfig),
    /// The POP3 proxy (3proxy `pop3p`, port 110): `-hHOST[:PORT]`, `-x`.
    Pop3p(MailOptions),
    /// The SMTP proxy (3proxy `smtpp`, port 587 as in 3proxy's code): `-h`, `-x`.
    Smtpp(MailOptions),
    /// The IMAP proxy (3proxy `imapp`, port 143): `-h`, `-x`.
    Imapp(MailOptions),
    /// The TLS SNI proxy (3proxy `tlspr`, port 1443): `-PPORT`, `-cN`, `-h`.
    Tlspr(TlsOptions),
    /// 3proxy `auto` (port 8080): SOCKS, HTTP proxy or `tlspr` by the first byte.
    Auto(TlsOptions),
    /// 3proxy `admin` (port 80): the web admin pages and Prometheus `/metrics`
    /// ([`crate::admin`]).
    Admin {
        /// `-s`: read-only, as in 3proxy (counters and metrics only, of the rules that
        /// match the requester; no counter switching, no reload, no status page).
        read_only: bool,
    },
}

impl ServiceKind {
    /// The commands of every service triproxy runs.
    pub const COMMANDS: [&'static str; 11] = [
        "socks", "proxy", "tcppm", "udppm", "dnspr", "pop3p", "smtpp", "imapp", "tlspr", "auto",
        "admin",
    ];

    /// The 3proxy command that starts it.
    pub fn command(&self) -> &'static str {
        match self {
            ServiceKind::Socks => "socks",
            ServiceKind::Proxy => "proxy",
            ServiceKind::TcpPm { .. } => "tcppm",
            ServiceKind::UdpPm { .. } => "udppm",
            ServiceKind::DnsPr(_) => "dnspr",
            ServiceKind::Pop3p(_) => "pop3p",
            ServiceKind::Smtpp(_) => "smtpp",
            ServiceKind::Imapp(_) => "imapp",
            ServiceKind::Tlspr(_) => "tlspr",
            ServiceKind::Auto(_) => "auto",
            ServiceKind::Admin { .. } => "admin",
        }
    }

    /// Whether `name` is the command of a service triproxy runs.
    pub fn is_command(name: &str) -> bool {
        Self::COMMANDS.contains(&name)
    }

    /// The port it listens on without `-p` (3proxy's defaults); none for the port mapper,
    /// whose SRCPORT argument is mandatory.
    pub fn default_port(&self) -> Option<u16> {
        match self {
            ServiceKind::Socks => Some(DEFAULT_SOCKS_PORT),
            ServiceKind::Proxy => Some(DEFAULT_PROXY_PORT),
            ServiceKind::TcpPm { .. } | ServiceKind::UdpPm { .. } => None,
            ServiceKind::DnsPr(_) => Some(DEFAULT_DNSPR_PORT),
            ServiceKind::Pop3p(_) => Some(110),
            ServiceKind::Smtpp(_) => Some(587),
            ServiceKind::Imapp(_) => Some(143),
            ServiceKind::Tlspr(_) => Some(1443),
            ServiceKind::Auto(_) => Some(8080),
            ServiceKind::Admin { .. } => Some(DEFAULT_ADMIN_PORT),
        }
    }

    /// The datagram service it is, for a UDP one.
    pub fn datagram(&self) -> Option<triproxy_policy::service::DatagramService> {
        use triproxy_policy::service::DatagramService;
        match self {
            ServiceKind::UdpPm { target, single } => Some(DatagramService::PortMap {
                target: target.clone(),
                single: *single,
            }),
            ServiceKind::DnsPr(c) => Some(DatagramService::DnsProxy(*c)),
            ServiceKind::Socks
            | ServiceKind::Proxy
            | ServiceKind::TcpPm { .. }
            | ServiceKind::Pop3p(_)
            | ServiceKind::Smtpp(_)
            | ServiceKind::Imapp(_)
            | ServiceKind::Tlspr(_)
            | ServiceKind::Auto(_)
            | ServiceKind::Admin { .. } => None,
        }
    }
}

/// Where a service writes its log records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogTarget {
    /// No records (`log /dev/null`, `-l/dev/null`, or no `log` line before the service).
    Off,
    /// Standard output, one line per record (`log` or `-l` without a file).
    Stdout,
    /// Appended to this file (`log FILE` or `-lFILE`), without rotation.
    File(PathBuf),
    /// A file whose name changes with time (`log FILE ROTATION`, or a `%` template).
    Rotating(RotatingLog),
    /// The local syslog socket, with this ident (`log @IDENT`, `-l@IDENT`).
    Syslog(String),
}

/// A rotated log: `log NAME [C|H|D|W|M|Y]` where NAME has a `%` template or a rotation
/// letter follows. See [`crate::logrotate`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RotatingLog {
    /// The file name (plain, suffixed by period, or a template).
    pub name: crate::logrotate::LogName,
    /// How often the file changes.
    pub rotation: Period,
}

/// A configuration that cannot be used, with the file and line to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or origin name given to [`parse_str`]) where the problem is.
    pub file: String,
    /// 1-based line number; 0 when the problem is not on a line (a file that cannot be read
    /// at all, or the command line of the standalone form).
    pub line: usize,
    /// What is wrong.
    pub kind: ConfigErrorKind,
    /// The `include` lines that led to `file`, outermost first.
    pub included_from: Vec<(String, usize)>,
}

impl fmt::Display for ConfigError {
    /// `<file>:<line>: <problem>`, followed by ` (included from <file>:<line>, ...)` for a
    /// problem inside an included file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.kind)?;
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.kind)?;
        }
        for (i, (file, line)) in self.included_from.iter().rev().enumerate() {
            let lead = if i == 0 { " (included from " } else { ", " };
            write!(f, "{lead}{file}:{line}")?;
        }
        if !self.included_from.is_empty() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The problem in a [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// A configuration, `include` or `$FILE` file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A file is larger than its limit ([`MAX_CONFIG_FILE_LEN`] or [`MAX_INLINE_FILE_LEN`]).
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: usize,
    },
    /// More than [`MAX_FILES_READ`] files were read.
    TooManyFiles {
        /// The limit.
        limit: usize,
    },
    /// A line longer than [`MAX_LINE_LEN`] bytes.
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// A command line that is not UTF-8 (comments may be in any encoding).
    NotUtf8,
    /// Quoting, `$` or word-count problem on the line.
    Syntax(SyntaxError),
    /// A `$FILE` whose content is not UTF-8.
    InlineFileNotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// A quoting problem inside a `$FILE`.
    InlineFileSyntax {
        /// The file.
        path: PathBuf,
        /// The problem.
        error: SyntaxError,
    },
    /// `include` nested deeper than [`MAX_INCLUDE_DEPTH`].
    IncludeTooDeep {
        /// The file that would have been one level too deep.
        path: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// `include` of a file that is already being read.
    IncludeCycle {
        /// The file.
        path: PathBuf,
    },
    /// A word that is not a 3proxy command.
    UnknownCommand {
        /// The word.
        command: String,
    },
    /// A 3proxy command triproxy does not run yet.
    UnsupportedCommand {
        /// The command.
        command: String,
    },
    /// A command with too few or too many arguments.
    ArgumentCount {
        /// The command.
        command: String,
        /// Fewest arguments accepted.
        min: usize,
        /// Most arguments accepted (`None` = no limit).
        max: Option<usize>,
        /// Arguments given.
        given: usize,
    },
    /// A `users` entry the password table rejects (its message never shows a password).
    /// Boxed, as are the other policy errors, to keep [`ConfigError`] small.
    Users(Box<UsersError>),
    /// An `auth` line the authentication chain rejects.
    Auth(Box<AuthError>),
    /// An `authcache` line the cache rejects.
    AuthCache(Box<AuthCacheError>),
    /// A service whose `auth` chain has `cache` or `cacheacl` with no `authcache` line
    /// before it (3proxy would run it with a cache that never hits).
    CacheWithoutAuthcache,
    /// `delimchar` with something other than one printable ASCII character (or `:`).
    BadDelimChar {
        /// The argument.
        value: String,
    },
    /// A 3proxy command triproxy refuses for a stated reason.
    CommandRefused {
        /// The command.
        command: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// An `allow`/`deny` line the ACL parser rejects.
    Acl(Box<AclError>),
    /// A `parent` line that cannot be used (or one with no `allow` line before it).
    Parent(Box<ParentError>),
    /// The ACL fields of a `bandlim*` rule do not parse.
    RuleAcl {
        /// The command (`bandlimin`, ...).
        command: String,
        /// What is wrong.
        error: Box<AclError>,
    },
    /// A number out of range or not a number.
    InvalidNumber {
        /// What the number is for (`maxconn`, `-p`).
        what: &'static str,
        /// The text given.
        value: String,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// A listen address that is neither an IP address nor a form triproxy knows.
    InvalidAddress {
        /// The text given.
        value: String,
    },
    /// A listen address given as a host name (3proxy resolves it; triproxy does not yet).
    HostNameNotSupported {
        /// The text given.
        value: String,
    },
    /// A 3proxy feature triproxy does not implement yet (log rotation, syslog, ...).
    NotSupportedYet {
        /// The feature, as the user wrote it.
        feature: String,
    },
    /// A `logformat` or `-f` that does not parse.
    LogFormat(LogFormatError),
    /// An empty file name where one is required.
    EmptyFileName {
        /// The command or option.
        what: &'static str,
    },
    /// A `log` file name that cannot be used (too long, a non-date macro in a template).
    LogName(crate::logrotate::LogNameError),
    /// A syslog ident (`log @IDENT`) that is too long or holds a space, `:`, `[` or a
    /// control character (they would break the record's header).
    BadSyslogIdent {
        /// The ident given.
        ident: String,
    },
    /// `nolog` with no `allow`/`deny` line before it.
    NoLogWithoutAce,
    /// An `archiver` line that cannot be run.
    BadArchiver {
        /// What is wrong.
        problem: &'static str,
    },
    /// An argument that the command does not take.
    UnexpectedArgument {
        /// The command.
        command: String,
        /// The argument.
        argument: String,
    },
    /// A service option that no 3proxy service has.
    UnknownOption {
        /// The option as written.
        option: String,
    },
    /// A 3proxy service option triproxy does not implement yet.
    UnsupportedOption {
        /// The option as written.
        option: String,
    },
    /// A service option with a value it does not take (`-u7`, `-sx`).
    InvalidOptionValue {
        /// The option as written.
        option: String,
    },
    /// More than [`MAX_SERVICES`] services.
    TooManyServices {
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_BANDLIM_RULES`] `bandlim*` rules.
    TooManyBandLimits {
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_ACL_ENTRIES`] `allow`/`deny` entries in force.
    TooManyAclEntries {
        /// The limit.
        limit: usize,
    },
    /// More than the allowed number of `count*` or `connlim` rules.
    TooManyRules {
        /// The kind of rule (`countin/countout/countall`, `connlim`).
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A `count*` rule the quota table refuses (a counter number used twice).
    QuotaRule(QuotaRuleError),
    /// The first argument of `countin`/`countout`/`countall` is not `NUM[/comment]`.
    CounterNumber {
        /// The text given.
        value: String,
    },
    /// The report type of `counter` is not a calendar period letter.
    ReportPeriod {
        /// The text given.
        value: String,
    },
    /// `counter FILE TYPE` without the report path.
    MissingReportPath,
    /// An `nserver` argument that is not `ADDR[:PORT][/tcp]`.
    BadNameServer {
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `nsrecord` name that is not a host name.
    BadHostName {
        /// The text given.
        value: String,
    },
    /// The standalone form names `admin`: 3proxy has no standalone admin, and without a
    /// configuration there would be no `auth` or `allow` line to guard it.
    StandaloneAdmin,
    /// The standalone form names a service that 3proxy does not have.
    UnknownService {
        /// The name given.
        name: String,
    },
    /// A port mapper line (`tcppm`) without exactly SRCPORT DSTHOST DSTPORT after its
    /// options.
    PortMapArguments {
        /// The command.
        command: String,
        /// The arguments after the options.
        given: Vec<String>,
    },
    /// `setuid`/`setgid`/`chroot` naming root (0 or `root`).
    RootAccount {
        /// The command or argument.
        what: &'static str,
    },
    /// A user or group that is neither a number nor a plain name.
    BadAccount {
        /// The command or argument.
        what: &'static str,
        /// The text given.
        value: String,
    },
    /// An argument longer than its limit.
    TooLong {
        /// What it is.
        what: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// A port mapper's DSTHOST that is neither an IP address nor a host name.
    PortMapHost {
        /// The text given.
        value: String,
        /// Why it is not usable.
        reason: String,
    },
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConfigErrorKind as K;
        match self {
            K::Read { path, reason } => write!(f, "cannot read `{}`: {reason}", path.display()),
            K::FileTooLarge { path, limit } => {
                write!(f, "`{}` is larger than {limit} bytes", path.display())
            }
            K::TooManyFiles { limit } => {
                write!(f, "more than {limit} files included or inlined")
            }
            K::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            K::NotUtf8 => write!(f, "line is not valid UTF-8"),
            K::Syntax(e) => write!(f, "{e}"),
            K::InlineFileNotUtf8 { path } => {
                write!(f, "inlined file `{}` is not valid UTF-8", path.display())
            }
            K::InlineFileSyntax { path, error } => {
                write!(f, "in inlined file `{}`: {error}", path.display())
            }
            K::IncludeTooDeep { path, limit } => write!(
                f,
                "cannot include `{}`: includes nested deeper than {limit} levels",
                path.display()
            ),
            K::IncludeCycle { path } => write!(
                f,
                "cannot include `{}`: it is already being read (include cycle)",
                path.display()
            ),
            K::UnknownCommand { command } if command.is_empty() => write!(f, "empty command"),
            K::UnknownCommand { command } => write!(f, "unknown command `{command}`"),
            K::UnsupportedCommand { command } => write!(
                f,
                "3proxy command `{command}` is not supported by triproxy yet"
            ),
            K::ArgumentCount {
                command,
                min,
                max,
                given,
            } => {
                let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
                match max {
                    Some(0) => write!(f, "`{command}` takes no arguments")?,
                    Some(m) if m == min => write!(f, "`{command}` takes {m} {}", plural(*m))?,
                    Some(m) => write!(f, "`{command}` takes {min} to {m} arguments")?,
                    None => write!(f, "`{command}` takes at least {min} {}", plural(*min))?,
                }
                write!(f, ", {given} given")
            }
            K::Users(e) => write!(f, "bad `users` entry: {e}"),
            K::Auth(e) => write!(f, "bad `auth`: {e}"),
            K::AuthCache(e) => write!(f, "bad `authcache`: {e}"),
            K::CacheWithoutAuthcache => write!(
                f,
                "`auth cache`/`cacheacl` needs an `authcache` line before the service"
            ),
            K::BadDelimChar { value } => write!(
                f,
                "`delimchar` takes one printable ASCII character other than `:`, not `{value}`"
            ),
            K::CommandRefused { command, reason } => {
                write!(f, "`{command}` is not supported: {reason}")
            }
            K::Acl(e) => write!(f, "bad `allow`/`deny` entry: {e}"),
            K::Parent(e) => write!(f, "bad `parent`: {e}"),
            K::RuleAcl { command, error } => write!(f, "bad `{command}` rule: {error}"),
            K::InvalidNumber {
                what,
                value,
                min,
                max,
            } => write!(
                f,
                "`{value}` is not a valid {what} (a whole number from {min} to {max})"
            ),
            K::BadNameServer { value, reason } => write!(
                f,
                "`{value}` is not a name server (`IP[:PORT][/tcp]`): {reason}"
            ),
            K::BadHostName { value } => write!(f, "`{value}` is not a host name"),
            K::InvalidAddress { value } => {
                write!(f, "`{value}` is not an IPv4 or IPv6 address")
            }
            K::HostNameNotSupported { value } => write!(
                f,
                "`{value}` is not an IP address; host names as listen addresses are not supported yet"
            ),
            K::NotSupportedYet { feature } => {
                write!(f, "{feature} is not supported by triproxy yet")
            }
            K::LogFormat(e) => write!(f, "bad log format: {e}"),
            K::EmptyFileName { what } => write!(f, "`{what}` needs a file name"),
            K::LogName(e) => write!(f, "{e}"),
            K::BadSyslogIdent { ident } => write!(
                f,
                "`{}` is not a usable syslog ident (at most {MAX_SYSLOG_IDENT_LEN} bytes, no space, `:`, `[` or control character)",
                ident.escape_default()
            ),
            K::BadArchiver { problem } => write!(f, "unusable `archiver`: {problem}"),
            K::NoLogWithoutAce => write!(f, "`nolog` must follow an `allow` or `deny` line"),
            K::UnexpectedArgument { command, argument } => {
                write!(f, "`{command}` does not take the argument `{argument}`")
            }
            K::UnknownOption { option } => write!(f, "unknown service option `{option}`"),
            K::UnsupportedOption { option } => write!(
                f,
                "3proxy service option `{option}` is not supported by triproxy yet"
            ),
            K::InvalidOptionValue { option } => write!(f, "invalid service option `{option}`"),
            K::TooManyServices { limit } => write!(f, "more than {limit} services"),
            K::TooManyAclEntries { limit } => {
                write!(f, "more than {limit} allow/deny entries")
            }
            K::TooManyBandLimits { limit } => {
                write!(f, "more than {limit} bandlimin/bandlimout rules")
            }
            K::TooManyRules { what, limit } => write!(f, "more than {limit} {what} rules"),
            K::QuotaRule(e) => write!(f, "bad traffic counter: {e}"),
            K::CounterNumber { value } => write!(
                f,
                "`{value}` is not a counter number and comment (NUM or NUM/comment, NUM from 0 to {})",
                triproxy_policy::counterfile::MAX_COUNTER_NUMBER
            ),
            K::ReportPeriod { value } => write!(
                f,
                "`{value}` is not a report period (3proxy letters: C, H, D, W, M, Y)"
            ),
            K::MissingReportPath => {
                write!(f, "`counter FILE TYPE` needs the report path after the type")
            }
            K::PortMapArguments { command, given } => write!(
                f,
                "`{command}` takes SRCPORT DSTHOST DSTPORT after its options, {} given{}",
                given.len(),
                if given.is_empty() {
                    String::new()
                } else {
                    format!(" (`{}`)", given.join(" "))
                }
            ),
            K::RootAccount { what } => write!(
                f,
                "`{what}` must not name root: the point of dropping privileges is to run as \
                 another user"
            ),
            K::BadAccount { what, value } => write!(
                f,
                "`{value}` is not a {what} (a number other than 0, or a user or group name)"
            ),
            K::TooLong { what, limit } => write!(f, "{what} longer than {limit} bytes"),
            K::PortMapHost { value, reason } => {
                write!(f, "`{value}` is not a usable DSTHOST: {reason}")
            }
            K::StandaloneAdmin => write!(
                f,
                "`admin` has no standalone form: start it from a configuration file, after the `auth` and `allow` lines that guard it"
            ),
            K::UnknownService { name } => {
                let runs = ServiceKind::COMMANDS.join(", ");
                write!(f, "unknown service `{name}` (triproxy runs: {runs})")
            }
        }
    }
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
