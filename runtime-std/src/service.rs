//! A listening service: an accept loop on its own thread and one thread per client, with
//! `maxconn` enforced the way 3proxy does it (stop accepting; clients wait in the backlog).

use crate::driver::serve_connection;
use crate::hooks::Hooks;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;
use triproxy_policy::service::ServicePolicy;

/// Stack of a connection thread. Name resolution (glibc `getaddrinfo`) is the deepest
/// user of it; the handshake buffer is 1 KiB and relay buffers live on the heap.
const CONNECTION_STACK: usize = 128 * 1024;

/// A running service.
#[derive(Debug)]
pub struct ServiceHandle {
    /// The address the service listens on (with the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// The accept loop's thread.
    pub thread: JoinHandle<()>,
}

/// Counts active connections and blocks the accept loop at `max`.
#[derive(Debug)]
struct Slots {
    max: usize,
    active: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut n = self.active.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= self.max {
            n = self.freed.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
    }

    fn release(&self) {
        let mut n = self.active.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_sub(1);
        self.freed.notify_one();
    }
}

/// Starts serving `listener` with `policy`: an accept thread that spawns one thread per
/// client, at most `maxconn` at once.
pub fn spawn_service(
    listener: TcpListener,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
    maxconn: usize,
) -> io::Result<ServiceHandle> {
    let local_addr = listener.local_addr()?;
    let slots = Arc::new(Slots {
        max: maxconn.max(1),
        active: Mutex::new(0),
        freed: Condvar::new(),
    });
    let thread = thread::Builder::new()
        .name(format!("accept {local_addr}"))
        .spawn(move || accept_loop(listener, policy, hooks, slots))?;
    Ok(ServiceHandle { local_addr, thread })
}

fn accept_loop(listener: TcpListener, policy: Arc<ServicePolicy>, hooks: Hooks, slots: Arc<Slots>) {
    loop {
        slots.acquire();
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // EMFILE, ENOBUFS, a client that reset before accept: back off briefly
                // instead of spinning, then keep serving.
                slots.release();
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let policy = Arc::clone(&policy);
        let hooks = hooks.clone();
        let thread_slots = Arc::clone(&slots);
        let spawned = thread::Builder::new()
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                serve_connection(stream, policy, &hooks);
                thread_slots.release();
            });
        if spawned.is_err() {
            // No thread could be created: the stream was dropped (closed) with the closure.
            slots.release();
            thread::sleep(Duration::from_millis(10));
        }
    }
}
