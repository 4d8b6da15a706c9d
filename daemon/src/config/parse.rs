//! Running configuration commands in order: reading files line by line, expanding `$FILE`
//! and `include`, and keeping the state (auth, ACL, log, limits) that service lines snapshot.
//!
//! This is the only part of the configuration reader that touches the file system, and only
//! to read: files are opened when the line naming them runs, so nothing after the first
//! error is ever read.

use super::auth;
use super::commands::{self, Arity, Lookup, Supported};
use super::lexer::{self, Mode, SyntaxError};
use super::limits;
use super::logging::{self, LogRetention};
use super::names::NamesConfig;
use super::process::{self, ProcessConfig};
use super::{
    Config, ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind, CounterConfig,
    LogTarget, NeedUser, ServiceConfig, ServiceKind, SourceAddrs, DEFAULT_INTERNAL,
    DEFAULT_MAXCONN, MAXCONN_RANGE, MAX_ACL_ENTRIES, MAX_BANDLIM_RULES, MAX_CONFIG_FILE_LEN,
    MAX_CONNLIM_RULES, MAX_FILES_READ, MAX_INCLUDE_DEPTH, MAX_INLINE_FILE_LEN, MAX_LINE_LEN,
    MAX_QUOTA_RULES, MAX_REPORTED_ERRORS, MAX_SERVICES, MAX_WORDS_PER_LINE,
};
use crate::logformat::LogFormat;
use std::fs::File;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use triproxy_dns::proxy::ProxyConfig;
use triproxy_dns::Family;
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::auth::AuthChain;
use triproxy_policy::authcache::{AuthCache, AuthCacheSettings, DEFAULT_AUTHCACHE_SIZE};
use triproxy_policy::bandlim::BandLimits;
use triproxy_policy::connlim::ConnLimits;
use triproxy_policy::parent::{ParentError, ParentHop};
use triproxy_policy::quota::Quotas;
use triproxy_policy::relay::LogDump;
use triproxy_policy::service::{Anonymity, Timeouts, DEFAULT_TIMEOUTS, TIMEOUT_COUNT};
use triproxy_policy::service::{MailOptions, TlsOptions, DEFAULT_DELIMITER};
use triproxy_policy::users::Users;
use triproxy_wire::TargetAddr;

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
        ROOT.with(|root| *root.borrow_mut() = None);
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
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
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
        let file = File::open(path).map_err(|e| self.error(here, read_err(e)))?;
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

    fn run_command(&mut self, here: Here<'_>, words: &[String]) -> Result<Flow, ConfigError> {
        let Some((command, args)) = words.split_first() else {
            // A line of only separators after its first character cannot happen (that
            // character would make it a comment), but a `$FILE` that is empty can leave
            // nothing: 3proxy reports a parse error.
            return Err(self.error(
                here,
                ConfigErrorKind::UnknownCommand {
                    command: String::new(),
                },
            ));
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (cmd, arity) = match commands::lookup(command) {
            Lookup::Supported(cmd, arity) => (cmd, arity),
            Lookup::NotYet => {
                return Err(self.error(
                    here,
                    ConfigErrorKind::UnsupportedCommand {
                        command: command.clone(),
                    },
                ))
            }
            Lookup::Unknown => {
                return Err(self.error(
                    here,
                    ConfigErrorKind::UnknownCommand {
                        command: command.clone(),
                    },
                ))
            }
        };
        if !arity.accepts(args.len()) {
            return Err(self.error(here, arg_count(command, arity, args.len())));
        }
        match cmd {
            Supported::Users => {
                for spec in &args {
                    self.users
                        .add_spec(spec)
                        .map_err(|e| self.error(here, ConfigErrorKind::Users(Box::new(e))))?;
                }
            }
            Supported::AuthCache => {
                let line = auth::authcache(&args).map_err(|k| self.error(here, k))?;
                self.authcache = Some(line.settings);
                self.authcache_size = line.size;
            }
            Supported::DelimChar => {
                self.delimiter = auth::delimchar(&args).map_err(|k| self.error(here, k))?;
            }
            Supported::Radius => return Err(self.error(here, auth::radius())),
            Supported::AuthNServer => return Err(self.error(here, auth::authnserver())),
            Supported::Auth => {
                self.auth = AuthChain::parse(&args)
                    .map_err(|e| self.error(here, ConfigErrorKind::Auth(Box::new(e))))?;
            }
            Supported::Allow | Supported::Deny => {
                let action = if cmd == Supported::Allow {
                    Action::Allow
                } else {
                    Action::Deny
                };
                let ace = Ace::parse(action, &args)
                    .map_err(|e| self.error(here, ConfigErrorKind::Acl(Box::new(e))))?;
                if self.acl.len() >= MAX_ACL_ENTRIES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyAclEntries {
                            limit: MAX_ACL_ENTRIES,
                        },
                    ));
                }
                self.acl.push(ace);
            }
            Supported::BandLimIn
            | Supported::BandLimOut
            | Supported::NoBandLimIn
            | Supported::NoBandLimOut => {
                let rule =
                    limits::parse_bandlim(cmd, command, &args).map_err(|k| self.error(here, k))?;
                if self.bandlimits.len() >= MAX_BANDLIM_RULES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyBandLimits {
                            limit: MAX_BANDLIM_RULES,
                        },
                    ));
                }
                self.bandlimits.push(rule);
            }
            Supported::Timeouts => {
                let ignored = limits::apply_timeouts(&mut self.timeouts, &args)
                    .map_err(|k| self.error(here, k))?;
                if ignored > 0 {
                    self.warnings.push(ConfigWarning {
                        file: here.file.to_owned(),
                        line: here.line,
                        kind: ConfigWarningKind::ExtraTimeouts { ignored },
                    });
                }
            }
            Supported::ConnLim | Supported::NoConnLim => {
                let rule =
                    limits::parse_connlim(cmd, command, &args).map_err(|k| self.error(here, k))?;
                if self.connlimits.len() >= MAX_CONNLIM_RULES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyRules {
                            what: "connlim/noconnlim",
                            limit: MAX_CONNLIM_RULES,
                        },
                    ));
                }
                self.connlimits.push(rule);
            }
            Supported::CountIn
            | Supported::CountOut
            | Supported::CountAll
            | Supported::NoCountIn
            | Supported::NoCountOut
            | Supported::NoCountAll => {
                let rule =
                    limits::parse_count(cmd, command, &args).map_err(|k| self.error(here, k))?;
                if self.quotas.len() >= MAX_QUOTA_RULES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyRules {
                            what: "count*/nocount*",
                            limit: MAX_QUOTA_RULES,
                        },
                    ));
                }
                self.quotas
                    .push(rule)
                    .map_err(|e| self.error(here, ConfigErrorKind::QuotaRule(e)))?;
            }
            Supported::Counter => {
                let counter =
                    limits::parse_counter(&args, here.base_dir).map_err(|k| self.error(here, k))?;
                self.counter = Some(counter);
            }
            Supported::Parent => {
                let hop = ParentHop::parse(&args)
                    .map_err(|e| self.error(here, ConfigErrorKind::Parent(Box::new(e))))?;
                let pushed = match self.acl.last_mut() {
                    Some(ace) => ace.push_parent(hop),
                    None => Err(ParentError::NotAfterAllow),
                };
                pushed.map_err(|e| self.error(here, ConfigErrorKind::Parent(Box::new(e))))?;
            }
            Supported::Flush => self.acl.clear(),
            Supported::Internal => {
                self.internal = parse_listen_ip(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::Log => {
                let (log, warning) =
                    logging::parse_log(&args, here.base_dir).map_err(|k| self.error(here, k))?;
                self.log = log;
                self.warn(here, warning);
            }
            Supported::LogFormat => {
                let format = args.first().copied().unwrap_or_default();
                self.logformat = LogFormat::parse(format)
                    .map_err(|e| self.error(here, ConfigErrorKind::LogFormat(e)))?;
                self.warn(here, logging::logformat_zone_warning(format));
            }
            Supported::LogJson => self.logformat = LogFormat::json(),
            Supported::LogDump => {
                self.logdump = logging::parse_logdump(&args).map_err(|k| self.error(here, k))?;
            }
            Supported::NoLog => {
                logging::apply_nolog(&mut self.acl).map_err(|k| self.error(here, k))?;
            }
            Supported::Rotate => {
                self.log_retention.keep =
                    logging::parse_rotate(args.first().copied().unwrap_or_default())
                        .map_err(|k| self.error(here, k))?;
                self.retention_origin = Some((here.file.to_owned(), here.line));
            }
            Supported::Archiver => {
                self.log_retention.archiver =
                    Some(logging::parse_archiver(&args).map_err(|k| self.error(here, k))?);
                self.retention_origin = Some((here.file.to_owned(), here.line));
            }
            Supported::MaxConn => {
                self.maxconn = parse_maxconn(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::External => {
                let ip = parse_listen_ip(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
                self.external.set(ip);
            }
            Supported::Backlog => {
                let n = parse_backlog(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
                self.backlog = Some(n);
            }
            Supported::Socks
            | Supported::Proxy
            | Supported::TcpPm
            | Supported::UdpPm
            | Supported::DnsPr
            | Supported::Pop3p
            | Supported::Smtpp
            | Supported::Imapp
            | Supported::Tlspr
            | Supported::Auto
            | Supported::Admin => self.start_service(here, command, &args)?,
            Supported::Service => {}
            Supported::NServer => {
                self.names
                    .nserver(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
                if self.names.servers.len() > triproxy_dns::MAX_SERVERS {
                    self.warnings.push(ConfigWarning {
                        file: here.file.to_owned(),
                        line: here.line,
                        kind: ConfigWarningKind::ExtraNameServers {
                            used: triproxy_dns::MAX_SERVERS,
                        },
                    });
                }
            }
            Supported::NsCache | Supported::NsCache6 => {
                let v6 = cmd == Supported::NsCache6;
                self.names
                    .nscache(v6, args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::NsRecord => {
                let (name, addr) = (args.first().copied(), args.get(1).copied());
                self.names
                    .nsrecord(name.unwrap_or_default(), addr.unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::FakeResolve => self.names.fake = true,
            Supported::Include => {
                self.include(here, args.first().copied().unwrap_or_default())?;
            }
            Supported::End => return Ok(Flow::End),
            Supported::Daemon => self.process.daemon = true,
            Supported::PidFile => {
                let name = args.first().copied().unwrap_or_default();
                let path = process::parse_file("pidfile", name, here.base_dir)
                    .map_err(|k| self.error(here, k))?;
                self.process.pidfile = Some(path);
            }
            Supported::Config => {
                let name = args.first().copied().unwrap_or_default();
                let path = process::parse_file("config", name, here.base_dir)
                    .map_err(|k| self.error(here, k))?;
                self.process.config_file = Some(path);
            }
            Supported::Monitor => self.monitor(here, args.first().copied().unwrap_or_default())?,
            Supported::System => {
                let command = args.first().copied().unwrap_or_default();
                process::parse_system(&mut self.process, command)
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::Chroot => {
                process::parse_chroot(&mut self.process, &args, here.base_dir)
                    .map_err(|k| self.error(here, k))?;
                // A process that already chrooted (a reload) reads names as they are.
                if !process::chrooted() {
                    let root = self.process.chroot.clone();
                    ROOT.with(|r| *r.borrow_mut() = root);
                }
            }
            Supported::SetUid | Supported::SetGid => {
                let what = if cmd == Supported::SetUid {
                    "setuid"
                } else {
                    "setgid"
                };
                let account =
                    process::parse_account(what, args.first().copied().unwrap_or_default())
                        .map_err(|k| self.error(here, k))?;
                if cmd == Supported::SetUid {
                    self.process.user = Some(account);
                } else {
                    self.process.group = Some(account);
                }
            }
            Supported::Writable => self.warn_at(here, ConfigWarningKind::Writable),
            Supported::StackSize => {
                parse_decimal(args.first().copied().unwrap_or_default())
                    .filter(|&n| n <= u64::from(u32::MAX))
                    .ok_or_else(|| {
                        self.error(
                            here,
                            ConfigErrorKind::InvalidNumber {
                                what: "stacksize",
                                value: args.first().copied().unwrap_or_default().to_owned(),
                                min: 0,
                                max: u64::from(u32::MAX),
                            },
                        )
                    })?;
                self.warn_at(here, ConfigWarningKind::StackSize);
            }
            Supported::Force => self.force = true,
            Supported::NoForce => self.force = false,
        }
        Ok(Flow::Continue)
    }

    /// A service line (`socks`, `proxy`, `tcppm`): the service runs with the auth, ACL and
    /// limits in force at this line, changed by its options.
    fn start_service(
        &mut self,
        here: Here<'_>,
        command: &str,
        args: &[&str],
    ) -> Result<(), ConfigError> {
        if self.services.len() >= MAX_SERVICES {
            return Err(self.error(
                here,
                ConfigErrorKind::TooManyServices {
                    limit: MAX_SERVICES,
                },
            ));
        }
        if self.auth.uses_cache() && self.authcache.is_none() {
            return Err(self.error(here, ConfigErrorKind::CacheWithoutAuthcache));
        }
        let line = service_line(command, args).map_err(|k| self.error(here, k))?;
        logging::check_nolog(&line.kind, &self.acl).map_err(|k| self.error(here, k))?;
        let defaults = ServiceConfig {
            listen: SocketAddr::new(self.internal, line.default_port()),
            kind: line.kind,
            auth: self.auth.clone(),
            authcache: self.authcache,
            acl: self.acl.clone(),
            needuser: NeedUser::IfOffered,
            maxconn: self.maxconn,
            external: self.external,
            backlog: self.backlog,
            splice: true,
            anonymity: Anonymity::default(),
            family: Family::V4ThenV6,
            log: self.log.clone(),
            logformat: self.logformat.clone(),
            logdump: self.logdump,
            origin: (here.file.to_owned(), here.line),
            force: self.force,
        };
        let mut service = apply_options(defaults, command, line.options, here.base_dir)
            .map_err(|k| self.error(here, k))?;
        for warning in logging::option_warnings(line.options) {
            self.warn(here, Some(warning));
        }
        if let Some(port) = line.port {
            service.listen.set_port(port);
        }
        self.services.push(service);
        Ok(())
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
        let canonical = std::fs::canonicalize(&path).map_err(|e| {
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

/// The words of a service line after its command: which service it is (the port mapper
/// with its target), its options, and the port mapper's SRCPORT (which wins over `-p`, as
/// in 3proxy).
struct ServiceLine<'a> {
    kind: ServiceKind,
    options: &'a [&'a str],
    port: Option<u16>,
}

impl ServiceLine<'_> {
    /// The port before options: SRCPORT, else the service's default.
    fn default_port(&self) -> u16 {
        self.port.or(self.kind.default_port()).unwrap_or(0)
    }
}

/// Splits a service line (`command` one of [`ServiceKind::COMMANDS`]). Options come first;
/// `tcppm` then takes exactly SRCPORT DSTHOST DSTPORT (3proxy.md section 3), the other
/// services nothing (a stray word is reported by [`apply_options`]).
fn service_line<'a>(
    command: &str,
    args: &'a [&'a str],
) -> Result<ServiceLine<'a>, ConfigErrorKind> {
    let kind = match command {
        "socks" => ServiceKind::Socks,
        "proxy" => ServiceKind::Proxy,
        "dnspr" => ServiceKind::DnsPr(ProxyConfig::default()),
        "pop3p" => ServiceKind::Pop3p(MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }),
        "smtpp" => ServiceKind::Smtpp(MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }),
        "imapp" => ServiceKind::Imapp(MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }),
        "tlspr" => ServiceKind::Tlspr(TlsOptions::default()),
        "auto" => ServiceKind::Auto(TlsOptions::default()),
        "admin" => ServiceKind::Admin { read_only: false },
        "tcppm" | "udppm" => {
            let options = args.iter().take_while(|a| a.starts_with('-')).count();
            let (options, positional) = args.split_at(options);
            let &[src, host, dst] = positional else {
                return Err(ConfigErrorKind::PortMapArguments {
                    command: command.to_owned(),
                    given: positional.iter().map(|&a| a.to_owned()).collect(),
                });
            };
            let port = parse_numbered_port(src, "SRCPORT (listen port)", 0)?;
            let target = parse_map_target(host, parse_numbered_port(dst, "DSTPORT", 1)?)?;
            let kind = if command == "tcppm" {
                ServiceKind::TcpPm { target }
            } else {
                ServiceKind::UdpPm {
                    target,
                    single: false,
                }
            };
            return Ok(ServiceLine {
                kind,
                options,
                port: Some(port),
            });
        }
        _ => {
            return Err(ConfigErrorKind::UnknownService {
                name: command.to_owned(),
            })
        }
    };
    Ok(ServiceLine {
        kind,
        options: args,
        port: None,
    })
}

/// Whether `kind` is a mail or TLS proxy (they take `-hHOST[:PORT]`).
fn mail_or_tls(kind: &ServiceKind) -> bool {
    matches!(
        kind,
        ServiceKind::Pop3p(_)
            | ServiceKind::Smtpp(_)
            | ServiceKind::Imapp(_)
            | ServiceKind::Tlspr(_)
            | ServiceKind::Auto(_)
    )
}

/// `-hHOST[:PORT]`: an IP address or a host name, with `default_port` when none is given
/// (`[v6]:port` for an IPv6 address with a port).
fn parse_default_host(value: &str, default_port: u16) -> Option<TargetAddr> {
    if value.is_empty() {
        return None;
    }
    if let Ok(t) = value.parse::<TargetAddr>() {
        return Some(t);
    }
    let target = TargetAddr::try_from((value, default_port)).ok()?;
    let name_like = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    name_like.then_some(target)
}

/// A port argument from `min` to 65535. SRCPORT 0 asks for any free port, as `-p0` does
/// (3proxy refuses 0); DSTPORT 0 cannot be connected to.
fn parse_numbered_port(value: &str, what: &'static str, min: u16) -> Result<u16, ConfigErrorKind> {
    parse_decimal(value)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n >= min)
        .ok_or_else(|| ConfigErrorKind::InvalidNumber {
            what,
            value: value.to_owned(),
            min: u64::from(min),
            max: u64::from(u16::MAX),
        })
}

/// A port mapper's DSTHOST: an IP address (IPv6 with or without brackets) or a host name,
/// resolved for each connection. 3proxy's other forms are refused by name: `unix:` sockets
/// and a `host:port` inside DSTHOST.
fn parse_map_target(host: &str, port: u16) -> Result<TargetAddr, ConfigErrorKind> {
    let unusable = |reason: &str| ConfigErrorKind::PortMapHost {
        value: host.to_owned(),
        reason: reason.to_owned(),
    };
    if host.starts_with("unix:") {
        return Err(ConfigErrorKind::NotSupportedYet {
            feature: format!("port mapping to a unix socket (`{host}`)"),
        });
    }
    let target = TargetAddr::try_from((host, port)).map_err(|e| unusable(&e.to_string()))?;
    if let TargetAddr::Domain(..) = target {
        if host.contains(':') {
            return Err(unusable(
                "a port inside DSTHOST is not supported; give it as DSTPORT",
            ));
        }
        let name_like = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_like {
            return Err(unusable(
                "a host name has only letters, digits, `-`, `.` and `_`",
            ));
        }
    }
    Ok(target)
}

fn arg_count(command: &str, arity: Arity, given: usize) -> ConfigErrorKind {
    ConfigErrorKind::ArgumentCount {
        command: command.to_owned(),
        min: arity.min,
        max: arity.max,
        given,
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
    /// those names itself. A per-thread value rather than a parameter of every file-naming
    /// command; [`Parser`] clears it when it starts and when it is dropped.
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

/// 3proxy service options that triproxy does not implement yet (3proxy.md section 3).
const OPTIONS_NOT_YET: &[char] = &[
    'b', 'c', 'C', 'd', 'D', 'F', 'g', 'h', 'H', 'I', 'N', 'o', 'P', 'r', 'R', 'S', 't', 'T', 'U',
    'x', 'X',
];

/// Applies service options (`-p`, `-i`, `-e`, `-u`, `-s`, `-l`, `-f`, `-n`, `-a`) to `svc`,
/// in order.
fn apply_options(
    mut svc: ServiceConfig,
    command: &str,
    args: &[&str],
    base_dir: &Path,
) -> Result<ServiceConfig, ConfigErrorKind> {
    for &arg in args {
        let Some(opt) = arg.strip_prefix('-') else {
            return Err(ConfigErrorKind::UnexpectedArgument {
                command: command.to_owned(),
                argument: arg.to_owned(),
            });
        };
        let mut chars = opt.chars();
        let Some(letter) = chars.next() else {
            return Err(ConfigErrorKind::UnknownOption {
                option: arg.to_owned(),
            });
        };
        let value = chars.as_str();
        let invalid = || ConfigErrorKind::InvalidOptionValue {
            option: arg.to_owned(),
        };
        match letter {
            'p' => svc.listen.set_port(parse_port(value)?),
            'i' => svc.listen.set_ip(parse_listen_ip(value)?),
            'e' => svc.external.set(parse_listen_ip(value)?),
            'u' => {
                svc.needuser = match value {
                    "" | "0" => NeedUser::Never,
                    "1" => NeedUser::IfOffered,
                    "2" => NeedUser::Required,
                    _ => return Err(invalid()),
                }
            }
            // `-s` means what the service says (3proxy.md section 3): single packet for
            // udppm, simple mode for dnspr, splice for TCP services.
            's' => match &mut svc.kind {
                ServiceKind::UdpPm { single, .. } if value.is_empty() => *single = true,
                ServiceKind::DnsPr(c) if value.is_empty() => c.simple = true,
                ServiceKind::UdpPm { .. } | ServiceKind::DnsPr(_) => return Err(invalid()),
                // `admin -s`: read-only (counters and metrics, no switching, no reload).
                ServiceKind::Admin { read_only } if value.is_empty() => *read_only = true,
                ServiceKind::Admin { .. } => return Err(invalid()),
                _ => {
                    svc.splice = match value {
                        "" | "1" => true,
                        "0" => false,
                        _ => return Err(invalid()),
                    }
                }
            },
            // `-FIP`: dnspr answers every A (an IPv4 IP) or AAAA (an IPv6 IP) with it.
            'F' if matches!(svc.kind, ServiceKind::DnsPr(_)) => {
                let ip = value.parse::<IpAddr>().map_err(|_| invalid())?;
                if let ServiceKind::DnsPr(c) = &mut svc.kind {
                    match ip {
                        IpAddr::V4(a) => c.fake_v4 = Some(a),
                        IpAddr::V6(a) => c.fake_v6 = Some(a),
                    }
                }
            }
            'l' => {
                svc.log = if value.is_empty() {
                    LogTarget::Stdout
                } else if value == "/dev/null" {
                    LogTarget::Off
                } else if let Some(ident) = value.strip_prefix('@') {
                    logging::syslog(ident)?
                } else {
                    LogTarget::File(resolve(base_dir, value))
                }
            }
            'f' => svc.logformat = LogFormat::parse(value).map_err(ConfigErrorKind::LogFormat)?,
            // HTTP proxy anonymity (3proxy.md section 3); `Via` is always sent (RFC 9110).
            'a' => {
                svc.anonymity = match value {
                    "" => Anonymity::Hidden,
                    "1" => Anonymity::RandomForwardedFor,
                    "2" => Anonymity::ForwardedFor,
                    _ => return Err(invalid()),
                }
            }
            // Address families of resolved names (3proxy.md section 3).
            '4' | '6' => {
                svc.family = match (letter, value) {
                    ('4', "") => Family::V4,
                    ('6', "") => Family::V6,
                    ('4', "6") => Family::V4ThenV6,
                    ('6', "4") => Family::V6ThenV4,
                    _ => return Err(invalid()),
                }
            }
            // The mail and TLS proxies' own options (3proxy.md section 3).
            'h' if mail_or_tls(&svc.kind) => {
                let default_port = match &svc.kind {
                    ServiceKind::Pop3p(_) => 110,
                    ServiceKind::Smtpp(_) => 587,
                    ServiceKind::Imapp(_) => 143,
                    _ => 443,
                };
                let target = parse_default_host(value, default_port).ok_or_else(invalid)?;
                match &mut svc.kind {
                    ServiceKind::Pop3p(m) | ServiceKind::Smtpp(m) | ServiceKind::Imapp(m) => {
                        m.default_target = Some(target)
                    }
                    ServiceKind::Tlspr(t) | ServiceKind::Auto(t) => t.default_target = Some(target),
                    _ => {}
                }
            }
            'x' if value.is_empty()
                && matches!(
                    svc.kind,
                    ServiceKind::Pop3p(_) | ServiceKind::Smtpp(_) | ServiceKind::Imapp(_)
                ) =>
            {
                if let ServiceKind::Pop3p(m) | ServiceKind::Smtpp(m) | ServiceKind::Imapp(m) =
                    &mut svc.kind
                {
                    m.starttls = false;
                }
            }
            'P' if matches!(svc.kind, ServiceKind::Tlspr(_) | ServiceKind::Auto(_)) => {
                let port = parse_numbered_port(value, "-P (destination port)", 1)?;
                if let ServiceKind::Tlspr(t) | ServiceKind::Auto(t) = &mut svc.kind {
                    t.port = port;
                }
            }
            'c' if matches!(svc.kind, ServiceKind::Tlspr(_) | ServiceKind::Auto(_)) => {
                let level = match value {
                    "" => 1,
                    "0" | "1" | "2" => value.parse::<u8>().map_err(|_| invalid())?,
                    "3" | "4" => {
                        return Err(ConfigErrorKind::NotSupportedYet {
                            feature: format!("TLS certificate checks (`{arg}`)"),
                        })
                    }
                    _ => return Err(invalid()),
                };
                if let ServiceKind::Tlspr(t) | ServiceKind::Auto(t) = &mut svc.kind {
                    t.check = level;
                }
            }
            'X' if matches!(svc.kind, ServiceKind::Tlspr(_)) => {
                return Err(ConfigErrorKind::NotSupportedYet {
                    feature: format!("a plaintext protocol before STARTTLS (`{arg}`)"),
                })
            }
            // `-n` (no NTLM) is a no-op in 3proxy 1.0 and still in its sample configs.
            'n' if value.is_empty() => {}
            c if OPTIONS_NOT_YET.contains(&c) => {
                return Err(ConfigErrorKind::UnsupportedOption {
                    option: arg.to_owned(),
                })
            }
            _ => {
                return Err(ConfigErrorKind::UnknownOption {
                    option: arg.to_owned(),
                })
            }
        }
    }
    Ok(svc)
}

pub(super) fn standalone(service: &str, args: &[String]) -> Result<Config, ConfigError> {
    const ORIGIN: &str = "command line";
    let fail = |kind| ConfigError {
        file: ORIGIN.to_owned(),
        line: 0,
        kind,
        included_from: Vec::new(),
    };
    if !ServiceKind::is_command(service) {
        return Err(fail(if commands::is_3proxy_service(service) {
            ConfigErrorKind::UnsupportedCommand {
                command: service.to_owned(),
            }
        } else {
            ConfigErrorKind::UnknownService {
                name: service.to_owned(),
            }
        }));
    }
    if args.len() > MAX_WORDS_PER_LINE {
        return Err(fail(ConfigErrorKind::Syntax(SyntaxError::TooManyWords {
            limit: MAX_WORDS_PER_LINE,
        })));
    }
    if service == "admin" {
        return Err(fail(ConfigErrorKind::StandaloneAdmin));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = service_line(service, &args).map_err(fail)?;
    let defaults = ServiceConfig {
        listen: SocketAddr::new(DEFAULT_INTERNAL, line.default_port()),
        kind: line.kind,
        auth: AuthChain::default_chain(),
        authcache: None,
        acl: Vec::new(),
        needuser: NeedUser::Never,
        maxconn: DEFAULT_MAXCONN,
        external: SourceAddrs::default(),
        backlog: None,
        splice: true,
        anonymity: Anonymity::default(),
        family: Family::V4ThenV6,
        log: LogTarget::Stdout,
        logformat: LogFormat::default_3proxy(),
        logdump: LogDump::default(),
        origin: (ORIGIN.to_owned(), 0),
        force: true,
    };
    let mut svc = apply_options(defaults, service, line.options, Path::new("")).map_err(fail)?;
    let warnings = logging::option_warnings(line.options)
        .into_iter()
        .map(|kind| ConfigWarning {
            file: ORIGIN.to_owned(),
            line: 0,
            kind,
        })
        .collect();
    if let Some(port) = line.port {
        svc.listen.set_port(port);
    }
    Ok(Config {
        services: vec![svc],
        users: Arc::new(Users::new()),
        authcache: Arc::new(AuthCache::default()),
        bandlimits: Arc::new(BandLimits::new()),
        quotas: Arc::new(Quotas::new()),
        connlimits: Arc::new(ConnLimits::new()),
        timeouts: Timeouts::default(),
        counter: None,
        names: NamesConfig::default(),
        process: ProcessConfig::default(),
        warnings,
        log_retention: LogRetention::default(),
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
