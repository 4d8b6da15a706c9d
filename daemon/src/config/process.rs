//! Process-control commands (3proxy.md section 5.8): `daemon`, `pidfile`, `config`,
//! `monitor`, `system`, `chroot`, `setuid`, `setgid`, `writable` and `stacksize`.
//!
//! 3proxy acts on most of them the moment their line is parsed (it forks at `daemon`, writes
//! the pid file at `pidfile`, runs `system` commands). triproxy only records them here: the
//! reader stays free of side effects, so `triproxy --check` can read a configuration without
//! forking, writing, chrooting or running anything, and the daemon applies them in one
//! documented order after every listener is bound (`daemon/src/process.rs`).

use super::ConfigErrorKind;
use std::path::{Path, PathBuf};

/// Longest `system` command (bytes).
pub const MAX_SYSTEM_COMMAND_LEN: usize = 4096;
/// Most `system` lines in one configuration.
pub const MAX_SYSTEM_COMMANDS: usize = 64;
/// Most `monitor`ed files.
pub const MAX_MONITORED_FILES: usize = 256;

/// The `chroot` directory this process has confined itself to, once it has.
static CHROOTED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Notes that the process is now inside `root` (its `chroot` directory).
pub fn mark_chrooted(root: &Path) {
    let _ = CHROOTED.set(root.to_path_buf());
}

/// Whether [`mark_chrooted`] was called.
pub fn chrooted() -> bool {
    CHROOTED.get().is_some()
}

/// The `chroot` directory the process is in, if it is in one.
pub(super) fn current_root() -> Option<PathBuf> {
    CHROOTED.get().cloned()
}

/// The name by which this process reaches `path` now. After a `chroot DIR` line the reader
/// maps every absolute file name into DIR (3proxy chroots when it reads that line; triproxy
/// only after binding), so configured names always name the file from outside the root:
/// before the chroot they are used as they are, after it (a rotated log, the counter file,
/// a reload reading `config FILE`, the pid file's removal) the root is taken off again.
/// Every file the daemon opens by a configured name goes through here.
pub fn in_root(path: &Path) -> std::borrow::Cow<'_, Path> {
    let inside = CHROOTED
        .get()
        .filter(|root| *root != Path::new("/"))
        .and_then(|root| path.strip_prefix(root).ok());
    match inside {
        Some(inside) => std::borrow::Cow::Owned(Path::new("/").join(inside)),
        None => std::borrow::Cow::Borrowed(path),
    }
}

/// What the process-control commands asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessConfig {
    /// `daemon`: detach from the terminal once the listeners are bound.
    pub daemon: bool,
    /// `pidfile FILE`: the process id is written here after detaching, and the file is
    /// removed at an orderly exit.
    pub pidfile: Option<PathBuf>,
    /// `config FILE`: the file a reload reads (3proxy: needed when the configuration came
    /// from standard input or lives inside a `chroot`). Without it, a reload reads the file
    /// the daemon was started with.
    pub config_file: Option<PathBuf>,
    /// `monitor FILE` lines: a change of one of these files' modification time or size
    /// reloads the configuration.
    pub monitor: Vec<PathBuf>,
    /// `system CMD` lines, in order: run with `/bin/sh -c` at start and at every reload, as
    /// 3proxy runs them at parse time. Never run by `--check`.
    pub system: Vec<String>,
    /// `chroot DIR`: the directory the process confines itself to after binding.
    pub chroot: Option<PathBuf>,
    /// `setuid` (or `chroot DIR UID`): the user the process runs as after binding.
    pub user: Option<Account>,
    /// `setgid` (or `chroot DIR UID GID`): the group the process runs as after binding.
    pub group: Option<Account>,
}

/// A user or group, by number or by name (looked up when it is applied, not when the file
/// is read, so `--check` resolves nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// A numeric id (never 0).
    Id(u32),
    /// A name from the system's user or group database.
    Name(String),
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::Id(id) => write!(f, "{id}"),
            Account::Name(name) => f.write_str(name),
        }
    }
}

/// `setuid`/`setgid` and `chroot`'s UID/GID: a number other than 0 or a plain name.
///
/// 0 is refused as 3proxy refuses it: dropping privileges "to root" keeps them, which is
/// never what the line meant.
pub(super) fn parse_account(what: &'static str, value: &str) -> Result<Account, ConfigErrorKind> {
    if let Ok(id) = value.parse::<u32>() {
        return if id == 0 {
            Err(ConfigErrorKind::RootAccount { what })
        } else {
            Ok(Account::Id(id))
        };
    }
    let plain = !value.is_empty()
        && value.len() <= 64
        && !value.starts_with('-')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'));
    if !plain {
        return Err(ConfigErrorKind::BadAccount {
            what,
            value: value.to_owned(),
        });
    }
    if value == "root" {
        return Err(ConfigErrorKind::RootAccount { what });
    }
    Ok(Account::Name(value.to_owned()))
}

/// `chroot DIR [UID [GID]]`.
pub(super) fn parse_chroot(
    process: &mut ProcessConfig,
    args: &[&str],
    base_dir: &Path,
) -> Result<(), ConfigErrorKind> {
    let dir = args.first().copied().unwrap_or_default();
    if dir.is_empty() {
        return Err(ConfigErrorKind::EmptyFileName { what: "chroot" });
    }
    let user = args
        .get(1)
        .map(|v| parse_account("chroot user", v))
        .transpose()?;
    let group = args
        .get(2)
        .map(|v| parse_account("chroot group", v))
        .transpose()?;
    process.chroot = Some(super::parse::resolve(base_dir, dir));
    if user.is_some() {
        process.user = user;
    }
    if group.is_some() {
        process.group = group;
    }
    Ok(())
}

/// `system CMD`.
pub(super) fn parse_system(
    process: &mut ProcessConfig,
    command: &str,
) -> Result<(), ConfigErrorKind> {
    if command.trim().is_empty() {
        return Err(ConfigErrorKind::EmptyFileName { what: "system" });
    }
    if command.len() > MAX_SYSTEM_COMMAND_LEN {
        return Err(ConfigErrorKind::TooLong {
            what: "`system` command",
            limit: MAX_SYSTEM_COMMAND_LEN,
        });
    }
    if process.system.len() >= MAX_SYSTEM_COMMANDS {
        return Err(ConfigErrorKind::TooManyRules {
            what: "system",
            limit: MAX_SYSTEM_COMMANDS,
        });
    }
    process.system.push(command.to_owned());
    Ok(())
}

/// `pidfile FILE`, `config FILE`, `monitor FILE`: a non-empty file name, relative to the
/// directory of the file that names it.
pub(super) fn parse_file(
    what: &'static str,
    name: &str,
    base_dir: &Path,
) -> Result<PathBuf, ConfigErrorKind> {
    if name.is_empty() {
        return Err(ConfigErrorKind::EmptyFileName { what });
    }
    Ok(super::parse::resolve(base_dir, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts() {
        assert_eq!(parse_account("setuid", "65534"), Ok(Account::Id(65534)));
        assert_eq!(
            parse_account("setuid", "nobody"),
            Ok(Account::Name("nobody".into()))
        );
        assert_eq!(
            parse_account("setuid", "0"),
            Err(ConfigErrorKind::RootAccount { what: "setuid" })
        );
        assert_eq!(
            parse_account("setgid", "root"),
            Err(ConfigErrorKind::RootAccount { what: "setgid" })
        );
        assert_eq!(
            parse_account("setuid", "a b"),
            Err(ConfigErrorKind::BadAccount {
                what: "setuid",
                value: "a b".into()
            })
        );
        assert!(parse_account("setuid", "-1").is_err());
        assert!(parse_account("setuid", "").is_err());
    }

    #[test]
    fn chroot_sets_the_accounts_it_names() {
        let mut p = ProcessConfig::default();
        parse_chroot(&mut p, &["/var/empty", "proxy", "proxy"], Path::new("/etc")).unwrap();
        assert_eq!(p.chroot, Some(PathBuf::from("/var/empty")));
        assert_eq!(p.user, Some(Account::Name("proxy".into())));
        assert_eq!(p.group, Some(Account::Name("proxy".into())));
        let mut p = ProcessConfig::default();
        parse_chroot(&mut p, &["jail"], Path::new("/etc")).unwrap();
        assert_eq!(p.chroot, Some(PathBuf::from("/etc/jail")));
        assert_eq!(p.user, None);
    }

    #[test]
    fn system_commands_are_bounded() {
        let mut p = ProcessConfig::default();
        assert!(parse_system(&mut p, "  ").is_err());
        let long = "x".repeat(MAX_SYSTEM_COMMAND_LEN + 1);
        assert!(parse_system(&mut p, &long).is_err());
        for _ in 0..MAX_SYSTEM_COMMANDS {
            parse_system(&mut p, "true").unwrap();
        }
        assert!(parse_system(&mut p, "true").is_err());
    }
}
