//! Applying the process-control commands (`daemon`, `pidfile`, `chroot`, `setgid`,
//! `setuid`, `system`) in one fixed order, after every listener is bound:
//!
//! 1. `daemon`: detach (fork, new session, standard streams to `/dev/null`). It must come
//!    before any thread starts, and after binding so that a port in use is still reported
//!    on the terminal.
//! 2. `pidfile`: the pid after detaching.
//! 3. `system` commands, still with the start-up privileges and file system (3proxy runs
//!    them at parse time).
//! 4. log files are opened (by the caller), then `chroot`, `setgid` (and the supplementary
//!    groups dropped), `setuid`: after this the process cannot get its privileges back, and
//!    sees only the chroot. Threads start after this step.
//!
//! A reload does not repeat 1, 2 and 4 (3proxy ignores `chroot` on reloads too); it runs
//! the `system` commands again.

#![allow(unsafe_code)]

use crate::config::{Account, ProcessConfig};
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a process-control step failed (the daemon then exits with status 2).
#[derive(Debug)]
pub enum ProcessError {
    /// `daemon`: fork or setsid failed.
    Detach(io::Error),
    /// The pid file could not be written.
    PidFile {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// A user or group name is not in the system's databases.
    NoSuchAccount {
        /// `user` or `group`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// `chroot`, `setgid` or `setuid` failed.
    Privileges {
        /// Which step.
        step: &'static str,
        /// What the system said.
        error: io::Error,
    },
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Detach(e) => write!(f, "cannot run as a daemon: {e}"),
            ProcessError::PidFile { path, error } => {
                write!(f, "cannot write the pid file `{}`: {error}", path.display())
            }
            ProcessError::NoSuchAccount { what, name } => {
                write!(f, "there is no {what} named `{name}` on this system")
            }
            ProcessError::Privileges { step, error } => write!(f, "{step} failed: {error}"),
        }
    }
}

impl std::error::Error for ProcessError {}

/// Step 1: detaches from the terminal when `daemon` was given. Must run while the process
/// has a single thread.
pub fn detach(process: &ProcessConfig) -> Result<(), ProcessError> {
    if !process.daemon {
        return Ok(());
    }
    // SAFETY: daemon(3) forks; the parent exits at once inside it, and the child continues
    // single-threaded (the caller guarantees no thread has been started yet).
    let rc = unsafe { libc::daemon(1, 0) };
    if rc != 0 {
        return Err(ProcessError::Detach(io::Error::last_os_error()));
    }
    Ok(())
}

/// Step 2: writes the pid file (the pid and a newline).
pub fn write_pidfile(process: &ProcessConfig) -> Result<(), ProcessError> {
    let Some(path) = &process.pidfile else {
        return Ok(());
    };
    let pid = format!("{}\n", std::process::id());
    std::fs::write(crate::config::in_root(path), pid).map_err(|error| ProcessError::PidFile {
        path: path.clone(),
        error,
    })
}

/// Removes the pid file at an orderly exit (a file that is gone, or not writable after a
/// `chroot`, is left alone).
pub fn remove_pidfile(process: &ProcessConfig) {
    if let Some(path) = &process.pidfile {
        let _ = std::fs::remove_file(crate::config::in_root(path));
    }
}

/// Step 3: runs the `system` commands with `/bin/sh -c`, one after the other, waiting for
/// each (as 3proxy's system(3)). A command that cannot start or fails is reported on
/// standard error; it does not stop the daemon.
pub fn run_system(process: &ProcessConfig) {
    for command in &process.system {
        match std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("triproxy: `system {command}` ended with {status}"),
            Err(e) => eprintln!("triproxy: `system {command}` could not run: {e}"),
        }
    }
}

/// Step 4: `chroot`, then `setgid` (supplementary groups cleared), then `setuid`.
/// Names are looked up before the chroot, where the system's databases are.
pub fn drop_privileges(process: &ProcessConfig) -> Result<(), ProcessError> {
    let uid = process
        .user
        .as_ref()
        .map(|a| account_id(a, Database::Users))
        .transpose()?;
    let gid = process
        .group
        .as_ref()
        .map(|a| account_id(a, Database::Groups))
        .transpose()?;
    if let Some(dir) = &process.chroot {
        if !crate::config::chrooted() {
            chroot(dir)?;
            crate::config::mark_chrooted(dir);
        }
    }
    if let Some(gid) = gid {
        // SAFETY: setgroups/setgid take plain values; a null list with length 0 clears the
        // supplementary groups.
        let rc = unsafe { libc::setgroups(0, std::ptr::null()) };
        if rc != 0 {
            return Err(privileges("setgroups"));
        }
        // SAFETY: as above.
        if unsafe { libc::setgid(gid) } != 0 {
            return Err(privileges("setgid"));
        }
    }
    if let Some(uid) = uid {
        // SAFETY: setuid takes a plain value (glibc applies it to every thread).
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(privileges("setuid"));
        }
    }
    Ok(())
}

fn privileges(step: &'static str) -> ProcessError {
    ProcessError::Privileges {
        step,
        error: io::Error::last_os_error(),
    }
}

fn chroot(dir: &Path) -> Result<(), ProcessError> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|_| ProcessError::Privileges {
        step: "chroot",
        error: io::Error::from(io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::chroot(c.as_ptr()) } != 0 {
        return Err(privileges("chroot"));
    }
    std::env::set_current_dir("/").map_err(|error| ProcessError::Privileges {
        step: "chdir to the new root",
        error,
    })
}

/// Longest user or group database entry read (getpwnam_r/getgrnam_r buffers).
const MAX_ENTRY_LEN: usize = 64 * 1024;

/// Which account database a name is looked up in.
#[derive(Clone, Copy)]
enum Database {
    Users,
    Groups,
}

impl Database {
    fn what(self) -> &'static str {
        match self {
            Database::Users => "user",
            Database::Groups => "group",
        }
    }

    /// The id of `name` (`c`), or `None` when it is not in the database.
    fn lookup(self, c: &CString) -> Option<u32> {
        let mut buf = vec![0 as libc::c_char; MAX_ENTRY_LEN];
        match self {
            Database::Users => {
                // SAFETY: zeroed passwd is a valid out-parameter (integers and null pointers).
                let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
                let mut found: *mut libc::passwd = std::ptr::null_mut();
                // SAFETY: every pointer is valid for the call; `buf.len()` is its length.
                let rc = unsafe {
                    libc::getpwnam_r(
                        c.as_ptr(),
                        &mut entry,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut found,
                    )
                };
                (rc == 0 && !found.is_null()).then_some(entry.pw_uid)
            }
            Database::Groups => {
                // SAFETY: zeroed group is a valid out-parameter.
                let mut entry: libc::group = unsafe { std::mem::zeroed() };
                let mut found: *mut libc::group = std::ptr::null_mut();
                // SAFETY: every pointer is valid for the call; `buf.len()` is its length.
                let rc = unsafe {
                    libc::getgrnam_r(
                        c.as_ptr(),
                        &mut entry,
                        buf.as_mut_ptr(),
                        buf.len(),
                        &mut found,
                    )
                };
                (rc == 0 && !found.is_null()).then_some(entry.gr_gid)
            }
        }
    }
}

/// The numeric id of `account` in `database`; root (0) is refused.
fn account_id(account: &Account, database: Database) -> Result<u32, ProcessError> {
    let name = match account {
        Account::Id(id) => return Ok(*id),
        Account::Name(name) => name,
    };
    let missing = || ProcessError::NoSuchAccount {
        what: database.what(),
        name: name.clone(),
    };
    let c = CString::new(name.as_bytes()).map_err(|_| missing())?;
    match database.lookup(&c) {
        None => Err(missing()),
        Some(0) => Err(ProcessError::Privileges {
            step: match database {
                Database::Users => "setuid",
                Database::Groups => "setgid",
            },
            error: io::Error::other(format!("`{name}` is root's {}", database.what())),
        }),
        Some(id) => Ok(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_are_looked_up_and_root_is_refused() {
        assert_eq!(
            account_id(&Account::Id(65534), Database::Users).ok(),
            Some(65534)
        );
        let root = account_id(&Account::Name("root".into()), Database::Users);
        assert!(matches!(
            root,
            Err(ProcessError::Privileges { step: "setuid", .. })
        ));
        let root = account_id(&Account::Name("root".into()), Database::Groups);
        assert!(matches!(
            root,
            Err(ProcessError::Privileges { step: "setgid", .. })
        ));
        let missing = account_id(&Account::Name("no-such-user-x".into()), Database::Users);
        assert_eq!(
            missing.map_err(|e| e.to_string()),
            Err("there is no user named `no-such-user-x` on this system".to_owned())
        );
    }
}
