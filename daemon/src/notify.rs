//! Telling a service manager (systemd, `Type=notify`) where the daemon is in its life:
//! ready once every listener is open, reloading while a configuration is read again (and
//! ready when it is in force again, whether the new one was taken or refused), stopping at
//! the orderly stop. Each message also carries a one-line status for `systemctl status`.
//!
//! The `sd-notify` crate sends the datagram: a small, dependency-free crate that is a
//! no-op when `NOTIFY_SOCKET` is not set, so a daemon started by hand or by another
//! manager pays nothing. It does not reach abstract-namespace sockets (`@name`); systemd's
//! own socket is a path (`/run/systemd/notify`). A failure to send is printed once and
//! never stops the daemon: the proxy serving matters more than the manager's view of it.

use sd_notify::NotifyState;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether a failure to notify was already printed.
static REPORTED: AtomicBool = AtomicBool::new(false);

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        if !REPORTED.swap(true, Ordering::Relaxed) {
            eprintln!("triproxy: cannot notify the service manager (NOTIFY_SOCKET): {e}");
        }
    }
}

/// Every service listens. The process id goes along, so that a manager still accepts the
/// message after `daemon` forked (`NotifyAccess=main` would otherwise drop it).
pub fn ready(services: usize) {
    let status = format!("{services} service(s) listening");
    send(&[
        NotifyState::Ready,
        NotifyState::Status(&status),
        NotifyState::MainPid(std::process::id()),
    ]);
}

/// A reload begins (systemd wants the monotonic time with it, to match it with the
/// `systemctl reload` that asked).
pub fn reloading() {
    let mut states = vec![NotifyState::Reloading, NotifyState::Status("reloading")];
    if let Ok(now) = NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// A reload ended; `outcome` says how, in a few words.
pub fn reloaded(outcome: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(outcome)]);
}

/// The orderly stop begins.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
