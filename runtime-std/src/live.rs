//! Every client connection this process is serving, so that the daemon can end them all at
//! shutdown and still get each one's log record: ending a connection from outside means
//! shutting its client socket down, after which its session sees the end of the stream,
//! finishes as usual and logs.
//!
//! Both runtimes register each accepted client here for the life of its session. The cost
//! is one lock round per connection start and end and one slot (a file descriptor number)
//! per connection.

#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Mutex;

/// The registered sockets: slots reused through a free list.
#[derive(Debug, Default)]
struct Registry {
    slots: Vec<Option<RawFd>>,
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

/// A connection's place in the registry; dropping it takes the connection out. It must be
/// dropped before the socket is closed (declare it after the socket).
#[derive(Debug)]
pub struct Registration {
    index: usize,
}

/// Registers the client socket `fd` of a connection being served.
pub fn register(fd: BorrowedFd<'_>) -> Registration {
    let mut r = registry();
    let fd = Some(fd.as_raw_fd());
    let index = match r.free.pop() {
        Some(i) => {
            if let Some(slot) = r.slots.get_mut(i) {
                *slot = fd;
            }
            i
        }
        None => {
            r.slots.push(fd);
            r.slots.len() - 1
        }
    };
    r.count += 1;
    Registration { index }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut r = registry();
        if let Some(slot) = r.slots.get_mut(self.index) {
            *slot = None;
            r.free.push(self.index);
            r.count -= 1;
        }
    }
}

/// How many connections are being served.
pub fn count() -> usize {
    registry().count
}

/// Shuts down the client socket of every connection being served (both directions): each
/// session then ends as if its client had gone, and writes its log record. Returns how many
/// were told.
pub fn end_all() -> usize {
    let r = registry();
    let mut told = 0;
    for fd in r.slots.iter().flatten() {
        // SAFETY: a registered descriptor is open: its connection drops the
        // `Registration` (which needs this same lock) before it closes the socket, and we
        // hold the lock for the whole loop, so `fd` cannot be closed or reused meanwhile.
        let socket = unsafe { BorrowedFd::borrow_raw(*fd) };
        // An error (the peer already gone) leaves nothing to do.
        let _ = socket2::SockRef::from(&socket).shutdown(std::net::Shutdown::Both);
        told += 1;
    }
    told
}
