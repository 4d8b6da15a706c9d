//! Warnings: things a configuration may say that are accepted but probably not what was
//! meant ([`ConfigWarning`]), with the message printed for each at start.
//!
//! A warning never stops a configuration from being used; the problems that do are in the
//! `error` module.

use core::fmt;
use std::path::PathBuf;

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
