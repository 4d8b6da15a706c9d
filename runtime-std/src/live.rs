//! Every client connection this process is serving, so that the daemon can end them from
//! outside and still get each one's log record: ending a connection means shutting its
//! client socket down, after which its session sees the end of the stream, finishes as
//! usual and logs.
//!
//! Two users: the orderly stop ends every connection ([`end_all`]); a reload under `force`
//! asks the new policy about each established tunnel of a service and ends those it
//! refuses, with the refusal's code ([`recheck`]).
//!
//! Both runtimes register each accepted client here for the life of its session, and only
//! here: the registration also reports the connection's start and end to
//! [`Hooks::activity`] (the metrics' connection counts), so one guard marks a connection's
//! lifetime. The cost is one lock round per connection start and end, one small allocation
//! per connection, and, for a tunnel of a `force` service, its [`Standing`].

#![allow(unsafe_code)]

use crate::hooks::{ActiveConnection, Hooks};
use crate::slot::ServiceSlot;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use triproxy_policy::standing::Standing;
use triproxy_wire::LogCode;

/// One registered connection.
#[derive(Debug)]
struct Entry {
    fd: RawFd,
    /// The service it was accepted by (compared by pointer).
    slot: Arc<ServiceSlot>,
    /// The code it was ended with from outside; 0 = not ended.
    revoked: AtomicU16,
    /// What its tunnel was granted on, once established (`force` services only).
    standing: Mutex<Option<Box<Standing>>>,
}

/// The registered connections: slots reused through a free list.
#[derive(Debug, Default)]
struct Registry {
    slots: Vec<Option<Arc<Entry>>>,
    free: Vec<usize>,
    count: usize,
}

static LIVE: Mutex<Registry> = Mutex::new(Registry {
    slots: Vec::new(),
    free: Vec::new(),
    count: 0,
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection's place in the registry; dropping it takes the connection out and then
/// reports its end to the activity hook. It must be dropped before the socket is closed
/// (declare it after the socket).
#[derive(Debug)]
pub struct Registration {
    index: usize,
    entry: Arc<Entry>,
    /// Dropped after [`Registration::drop`] has taken the entry out.
    _active: ActiveConnection,
}

/// Registers the client socket `fd` of a connection accepted by the service of `slot`,
/// and reports the start to `hooks`' activity hook (the end follows when the registration
/// is dropped).
pub fn register(fd: BorrowedFd<'_>, slot: &Arc<ServiceSlot>, hooks: &Hooks) -> Registration {
    let active = hooks.track_connection();
    let entry = Arc::new(Entry {
        fd: fd.as_raw_fd(),
        slot: Arc::clone(slot),
        revoked: AtomicU16::new(0),
        standing: Mutex::new(None),
    });
    let mut r = registry();
    let stored = Some(Arc::clone(&entry));
    let index = match r.free.pop() {
        Some(i) => {
            if let Some(place) = r.slots.get_mut(i) {
                *place = stored;
            }
            i
        }
        None => {
            r.slots.push(stored);
            r.slots.len() - 1
        }
    };
    r.count += 1;
    Registration {
        index,
        entry,
        _active: active,
    }
}

impl Registration {
    /// Keeps what the connection's tunnel was granted on, for [`recheck`].
    pub fn set_standing(&self, standing: Standing) {
        *self
            .entry
            .standing
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Box::new(standing));
    }

    /// The code the connection was ended with from outside, if it was.
    pub fn revoked(&self) -> Option<LogCode> {
        match self.entry.revoked.load(Ordering::Acquire) {
            0 => None,
            code => Some(LogCode(code)),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut r = registry();
        if let Some(place) = r.slots.get_mut(self.index) {
            *place = None;
            r.free.push(self.index);
            r.count -= 1;
        }
    }
}

/// How many connections are being served.
pub fn count() -> usize {
    registry().count
}

/// Shuts the client socket of `entry` down (both directions).
fn shut(entry: &Entry) {
    // SAFETY: a registered descriptor is open: its connection drops the `Registration`
    // (which needs the registry lock, held by every caller of this function) before it
    // closes the socket, so `fd` cannot be closed or reused meanwhile.
    let socket = unsafe { BorrowedFd::borrow_raw(entry.fd) };
    // An error (the peer already gone) leaves nothing to do.
    let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Both);
}

/// Shuts down the client socket of every connection being served: each session then ends
/// as if its client had gone, and writes its log record. Returns how many were told.
pub fn end_all() -> usize {
    let r = registry();
    let mut told = 0;
    for entry in r.slots.iter().flatten() {
        shut(entry);
        told += 1;
    }
    told
}

/// Asks `check` about every established tunnel of the service of `slot` that kept its
/// [`Standing`]; each one refused is ended, and its record carries the returned code.
/// Returns how many were ended.
pub fn recheck(slot: &Arc<ServiceSlot>, check: impl Fn(&Standing) -> Result<(), LogCode>) -> usize {
    let r = registry();
    let mut ended = 0;
    for entry in r.slots.iter().flatten() {
        if !Arc::ptr_eq(&entry.slot, slot) {
            continue;
        }
        let verdict = {
            let standing = entry.standing.lock().unwrap_or_else(|p| p.into_inner());
            match standing.as_deref() {
                Some(s) => check(s),
                None => Ok(()),
            }
        };
        if let Err(code) = verdict {
            entry.revoked.store(code.get().max(1), Ordering::Release);
            shut(entry);
            ended += 1;
        }
    }
    ended
}
