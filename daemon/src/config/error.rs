//! What makes a configuration unusable: [`ConfigError`] (the file and line to fix, and the
//! `include` lines that led there) and [`ConfigErrorKind`] (the problem), with the message
//! printed for each.
//!
//! The reader builds these; this module only describes and prints them. Accepted lines
//! that deserve a look are warnings (the `warning` module), not errors.

use super::logging::MAX_SYSLOG_IDENT_LEN;
use super::{ServiceKind, SyntaxError};
use crate::logformat::LogFormatError;
use core::fmt;
use std::path::PathBuf;
use triproxy_policy::acl::AclError;
use triproxy_policy::auth::AuthError;
use triproxy_policy::authcache::AuthCacheError;
use triproxy_policy::parent::ParentError;
use triproxy_policy::quota::QuotaRuleError;
use triproxy_policy::users::UsersError;

// Named only in doc links.
#[cfg(doc)]
use super::{
    parse_str, MAX_ACL_ENTRIES, MAX_BANDLIM_RULES, MAX_CONFIG_FILE_LEN, MAX_FILES_READ,
    MAX_INCLUDE_DEPTH, MAX_INLINE_FILE_LEN, MAX_LINE_LEN, MAX_SERVICES,
};

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
