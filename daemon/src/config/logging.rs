//! The logging commands: `log`, `rotate`, `archiver`, `logjson` and the `-l` service
//! option's syslog form, turned into typed settings (3proxy.md sections 5.3 and 9).
//!
//! This module only reads words; opening files, rotating them and talking to syslog are
//! the daemon's (`logsink`), and the pure rotation rules are in `logrotate`.

use super::{
    ConfigErrorKind, ConfigWarning, ConfigWarningKind, LogTarget, RotatingLog, ServiceConfig,
    ServiceKind,
};
use crate::logrotate::{LogName, MAX_ROTATE_KEEP};
use std::path::Path;
use triproxy_policy::acl::{Ace, Action, Logging};
use triproxy_policy::period::Period;
use triproxy_policy::relay::LogDump;

/// Longest syslog ident accepted, in bytes (glibc keeps the pointer; 3proxy's is a config
/// word, and a record's header should stay short).
pub const MAX_SYSLOG_IDENT_LEN: usize = 64;

/// Most words after `archiver EXT` (the command and its arguments).
pub const MAX_ARCHIVER_WORDS: usize = 64;

/// The global settings of rotated logs: like 3proxy's `rotate` and `archiver`, the last
/// line of each wins, wherever it is, and applies to every rotated log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRetention {
    /// `rotate N`: how many old files (or archives) to keep; `0` (the default) keeps all.
    pub keep: u32,
    /// `archiver EXT CMD ARGS...`: what to run on each closed file.
    pub archiver: Option<Archiver>,
}

/// `archiver EXT CMD ARGS...`: after a rotation, `CMD ARGS` runs on the closed file, with
/// `%A` replaced by the archive name (the closed file's name + `.EXT`) and `%F` by the
/// closed file's name. Run directly, not through a shell, so names need no quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archiver {
    /// The archive's extension, without the dot (`gz`).
    pub ext: String,
    /// The program (looked up in `PATH`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<ArchiverArg>,
}

/// One argument of an [`Archiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiverArg {
    /// `%A`: the archive's name.
    Archive,
    /// `%F`: the closed log file's name.
    Closed,
    /// Any other word, as written (3proxy replaces only whole-word `%A` and `%F`).
    Text(String),
}

/// `log [TARGET [ROTATION]]`, with a warning when ROTATION is not a rotation letter (3proxy
/// then does not rotate).
pub(super) fn parse_log(
    args: &[&str],
    base_dir: &Path,
) -> Result<(LogTarget, Option<ConfigWarningKind>), ConfigErrorKind> {
    let Some((&target, rest)) = args.split_first() else {
        return Ok((LogTarget::Stdout, None));
    };
    if let Some(&extra) = rest.get(1) {
        return Err(ConfigErrorKind::UnexpectedArgument {
            command: "log".to_owned(),
            argument: extra.to_owned(),
        });
    }
    let not_yet = |feature: String| Err(ConfigErrorKind::NotSupportedYet { feature });
    if target.is_empty() {
        return Err(ConfigErrorKind::EmptyFileName { what: "log" });
    } else if target == "/dev/null" {
        return Ok((LogTarget::Off, None));
    } else if let Some(ident) = target.strip_prefix('@') {
        return Ok((syslog(ident)?, None));
    } else if target.starts_with('&') {
        return not_yet(format!("ODBC logging (`log {target}`)"));
    } else if target == "radius" {
        return not_yet("RADIUS accounting (`log radius`)".to_owned());
    }
    let (rotation, warning) = match rest.first() {
        None => (Period::Never, None),
        Some(&arg) => match Period::from_letter(arg) {
            Some(r) => (r, None),
            None => (
                Period::Never,
                Some(ConfigWarningKind::NotARotation {
                    value: arg.to_owned(),
                }),
            ),
        },
    };
    // The name with the `chroot` mapping applied (and relative names under `base_dir`).
    let path = super::parse::resolve(base_dir, target);
    let name =
        LogName::parse(&path.to_string_lossy(), base_dir).map_err(ConfigErrorKind::LogName)?;
    let target = if rotation == Period::Never && !name.is_template() {
        LogTarget::File(path)
    } else {
        LogTarget::Rotating(RotatingLog { name, rotation })
    };
    Ok((target, warning))
}

/// `@IDENT` of `log` and `-l`: syslog with that ident.
pub(super) fn syslog(ident: &str) -> Result<LogTarget, ConfigErrorKind> {
    if ident.len() > MAX_SYSLOG_IDENT_LEN {
        return Err(ConfigErrorKind::BadSyslogIdent {
            ident: ident.to_owned(),
        });
    }
    // The ident goes into the record's header: it must not carry the separators.
    if ident
        .chars()
        .any(|c| c.is_control() || c == ':' || c == '[' || c == ' ')
    {
        return Err(ConfigErrorKind::BadSyslogIdent {
            ident: ident.to_owned(),
        });
    }
    Ok(LogTarget::Syslog(ident.to_owned()))
}

/// `rotate N`.
pub(super) fn parse_rotate(value: &str) -> Result<u32, ConfigErrorKind> {
    let invalid = || ConfigErrorKind::InvalidNumber {
        what: "rotate",
        value: value.to_owned(),
        min: 0,
        max: u64::from(MAX_ROTATE_KEEP),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    value
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= MAX_ROTATE_KEEP)
        .ok_or_else(invalid)
}

/// `archiver EXT CMD [ARGS...]`.
pub(super) fn parse_archiver(args: &[&str]) -> Result<Archiver, ConfigErrorKind> {
    let (Some(&ext), Some(&program)) = (args.first(), args.get(1)) else {
        return Err(ConfigErrorKind::BadArchiver {
            problem: "it needs an extension and a command",
        });
    };
    if ext.is_empty() || ext.contains('/') {
        return Err(ConfigErrorKind::BadArchiver {
            problem: "the extension must be a non-empty word without `/`",
        });
    }
    if program.is_empty() {
        return Err(ConfigErrorKind::BadArchiver {
            problem: "the command is empty",
        });
    }
    if args.len() - 1 > MAX_ARCHIVER_WORDS {
        return Err(ConfigErrorKind::BadArchiver {
            problem: "more than 64 words of command and arguments",
        });
    }
    Ok(Archiver {
        ext: ext.to_owned(),
        program: program.to_owned(),
        args: args
            .iter()
            .skip(2)
            .map(|&a| match a {
                "%A" => ArchiverArg::Archive,
                "%F" => ArchiverArg::Closed,
                _ => ArchiverArg::Text(a.to_owned()),
            })
            .collect(),
    })
}

/// Largest `logdump` threshold, in bytes (3proxy keeps it in an `unsigned`).
pub const MAX_LOGDUMP_BYTES: u64 = u32::MAX as u64;

/// `logdump IN_BYTES [OUT_BYTES]`: interim records for the tunnels of services started
/// after it; `0` turns a direction off (3proxy `h_logdump`).
pub(super) fn parse_logdump(args: &[&str]) -> Result<LogDump, ConfigErrorKind> {
    let number = |value: &str| {
        let invalid = || ConfigErrorKind::InvalidNumber {
            what: "logdump",
            value: value.to_owned(),
            min: 0,
            max: MAX_LOGDUMP_BYTES,
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        value
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_LOGDUMP_BYTES)
            .ok_or_else(invalid)
    };
    Ok(LogDump {
        bytes_in: number(args.first().copied().unwrap_or_default())?,
        bytes_out: match args.get(1) {
            Some(v) => number(v)?,
            None => 0,
        },
    })
}

/// The warning for `rotate` or `archiver` (last one at `origin`) in a configuration where
/// no service writes a rotated log: they would have nothing to act on.
pub(super) fn retention_warning(
    services: &[ServiceConfig],
    origin: Option<(String, usize)>,
) -> Option<ConfigWarning> {
    let (file, line) = origin?;
    let rotated = services
        .iter()
        .any(|s| matches!(&s.log, LogTarget::Rotating(r) if r.rotation != Period::Never));
    (!rotated).then_some(ConfigWarning {
        file,
        line,
        kind: ConfigWarningKind::NothingRotated,
    })
}

/// `nolog`: marks the last `allow` entry, whose connections are then not logged (3proxy
/// `h_nolog`). After a `deny` entry it is refused: the engine reports which entry allowed
/// a connection, not which one denied it.
pub(super) fn apply_nolog(acl: &mut [Ace]) -> Result<(), ConfigErrorKind> {
    let Some(last) = acl.last_mut() else {
        return Err(ConfigErrorKind::NoLogWithoutAce);
    };
    if last.action == Action::Deny {
        return Err(ConfigErrorKind::NotSupportedYet {
            feature: "`nolog` after a `deny` entry (only `allow` entries can be unlogged)"
                .to_owned(),
        });
    }
    last.set_nolog();
    Ok(())
}

/// Refuses a `dnspr` service whose ACL has a `nolog` entry: its records do not say which
/// entry allowed the query, so the mark would be silently ignored.
pub(super) fn check_nolog(kind: &ServiceKind, acl: &[Ace]) -> Result<(), ConfigErrorKind> {
    if matches!(kind, ServiceKind::DnsPr(_)) && acl.iter().any(|a| a.logging() == Logging::Unlogged)
    {
        return Err(ConfigErrorKind::NotSupportedYet {
            feature: "`nolog` for a `dnspr` service".to_owned(),
        });
    }
    Ok(())
}

/// The warnings about a service line's options: each `-f` whose first character is not a
/// time-zone selector.
pub(super) fn option_warnings(options: &[&str]) -> Vec<ConfigWarningKind> {
    options
        .iter()
        .filter_map(|o| o.strip_prefix("-f"))
        .filter_map(logformat_zone_warning)
        .collect()
}

/// The warning for a `logformat` or `-f` whose first character is not a time-zone
/// selector: 3proxy consumes it anyway (and uses local time), as triproxy now does.
pub(super) fn logformat_zone_warning(format: &str) -> Option<ConfigWarningKind> {
    let rest = match format.strip_prefix('-') {
        Some(after) => after.split_once('+').map(|(_, r)| r)?.get(1..)?,
        None => format,
    };
    let first = rest.chars().next()?;
    (!matches!(first, 'L' | 'l' | 'G' | 'g'))
        .then_some(ConfigWarningKind::LogFormatZone { consumed: first })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn log_targets() {
        let base = Path::new("/etc/triproxy");
        let log = |args: &[&str]| parse_log(args, base);
        assert_eq!(log(&[]), Ok((LogTarget::Stdout, None)));
        assert_eq!(log(&["/dev/null"]), Ok((LogTarget::Off, None)));
        assert_eq!(
            log(&["x.log"]),
            Ok((LogTarget::File(PathBuf::from("/etc/triproxy/x.log")), None))
        );
        assert_eq!(
            log(&["@3proxy"]),
            Ok((LogTarget::Syslog("3proxy".to_owned()), None))
        );
        let Ok((LogTarget::Rotating(r), None)) = log(&["/l/x.log", "daily"]) else {
            panic!("not rotating");
        };
        assert_eq!(r.rotation, Period::Daily);
        let Ok((LogTarget::Rotating(r), None)) = log(&["/l/x-%Y.log"]) else {
            panic!("not a template");
        };
        assert_eq!(r.rotation, Period::Never);
        assert_eq!(
            log(&["x.log", "Q"]),
            Ok((
                LogTarget::File(PathBuf::from("/etc/triproxy/x.log")),
                Some(ConfigWarningKind::NotARotation {
                    value: "Q".to_owned()
                })
            ))
        );
        for t in ["&dsn,user,pw", "radius"] {
            assert!(
                matches!(log(&[t]), Err(ConfigErrorKind::NotSupportedYet { .. })),
                "{t}"
            );
        }
        assert!(matches!(
            log(&["f", "D", "x"]),
            Err(ConfigErrorKind::UnexpectedArgument { .. })
        ));
        assert_eq!(
            log(&[""]),
            Err(ConfigErrorKind::EmptyFileName { what: "log" })
        );
        assert!(matches!(
            log(&["/l/%T.log", "D"]),
            Err(ConfigErrorKind::LogName(_))
        ));
        for bad in ["@a b", "@a:b", "@a[1]", "@a\u{1}"] {
            assert_eq!(
                log(&[bad]),
                Err(ConfigErrorKind::BadSyslogIdent {
                    ident: bad[1..].to_owned()
                })
            );
        }
    }

    #[test]
    fn rotate_and_archiver() {
        assert_eq!(parse_rotate("30"), Ok(30));
        assert_eq!(parse_rotate("0"), Ok(0));
        for bad in ["", "-1", "x", "36501", "99999999999999999999"] {
            assert!(parse_rotate(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_archiver(&["gz", "gzip", "-9", "%F"]),
            Ok(Archiver {
                ext: "gz".to_owned(),
                program: "gzip".to_owned(),
                args: vec![ArchiverArg::Text("-9".to_owned()), ArchiverArg::Closed],
            })
        );
        let rar = parse_archiver(&["rar", "rar", "a", "-df", "%A", "%F"]).unwrap();
        assert_eq!(
            rar.args,
            vec![
                ArchiverArg::Text("a".to_owned()),
                ArchiverArg::Text("-df".to_owned()),
                ArchiverArg::Archive,
                ArchiverArg::Closed
            ]
        );
        assert!(parse_archiver(&["gz"]).is_err());
        assert!(parse_archiver(&["a/b", "gzip"]).is_err());
    }

    #[test]
    fn logformat_zone_warnings() {
        assert_eq!(logformat_zone_warning("L%t"), None);
        assert_eq!(logformat_zone_warning("g%t"), None);
        assert_eq!(logformat_zone_warning("- +_L%t"), None);
        assert_eq!(
            logformat_zone_warning("%d-%m"),
            Some(ConfigWarningKind::LogFormatZone { consumed: '%' })
        );
        assert_eq!(
            logformat_zone_warning("- +_x%t"),
            Some(ConfigWarningKind::LogFormatZone { consumed: 'x' })
        );
        assert_eq!(logformat_zone_warning(""), None);
    }
}
