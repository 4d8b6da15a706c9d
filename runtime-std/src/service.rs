//! A listening service: an accept loop on its own thread and one worker thread per client
//! (reused for the next client when done), with `maxconn` enforced the way 3proxy does it
//! (stop accepting; clients wait in the backlog).

use crate::driver::serve_connection;
use crate::hooks::Hooks;
use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
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

/// Idle worker threads kept for the next client; more than this exit at once.
const MAX_IDLE_WORKERS: usize = 64;
/// An idle worker beyond need exits after this long without a client.
const WORKER_IDLE_EXIT: Duration = Duration::from_secs(60);

/// Accepted clients waiting for an idle worker, and how many workers are idle.
#[derive(Debug, Default)]
struct Queue {
    pending: VecDeque<(TcpStream, SocketAddr)>,
    idle: usize,
}

/// Everything a worker thread needs; shared by the accept loop and all workers.
#[derive(Debug)]
struct Shared {
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
    slots: Slots,
    queue: Mutex<Queue>,
    work: Condvar,
}

/// Starts serving `listener` with `policy`: an accept thread hands each client to a worker
/// thread, at most `maxconn` at once. A worker serves one client at a time (3proxy's thread
/// per connection); when its client is done it waits for the next one instead of exiting,
/// which saves creating and tearing down a thread per connection.
pub fn spawn_service(
    listener: TcpListener,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
    maxconn: usize,
) -> io::Result<ServiceHandle> {
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        listen: local_addr,
        policy,
        hooks,
        slots: Slots {
            max: maxconn.max(1),
            active: Mutex::new(0),
            freed: Condvar::new(),
        },
        queue: Mutex::new(Queue::default()),
        work: Condvar::new(),
    });
    let thread = thread::Builder::new()
        .name(format!("accept {local_addr}"))
        .spawn(move || accept_loop(listener, shared))?;
    Ok(ServiceHandle { local_addr, thread })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        shared.slots.acquire();
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(_) => {
                // EMFILE, ENOBUFS, a client that reset before accept: back off briefly
                // instead of spinning, then keep serving.
                shared.slots.release();
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let mut queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.idle > 0 {
            queue.idle -= 1;
            queue.pending.push_back((stream, peer));
            drop(queue);
            shared.work.notify_one();
            continue;
        }
        drop(queue);
        let worker_shared = Arc::clone(&shared);
        let spawned = thread::Builder::new()
            .stack_size(CONNECTION_STACK)
            .spawn(move || worker(worker_shared, stream, peer));
        if spawned.is_err() {
            // No thread could be created: the client was dropped (closed) with the closure.
            shared.slots.release();
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Serves `first`, then every client handed over while idle, until it has been idle for
/// [`WORKER_IDLE_EXIT`] or enough other workers are idle.
fn worker(shared: Arc<Shared>, first: TcpStream, peer: SocketAddr) {
    let mut job = Some((first, peer));
    while let Some((stream, peer)) = job.take() {
        serve_connection(
            stream,
            peer,
            shared.listen,
            Arc::clone(&shared.policy),
            &shared.hooks,
        );
        shared.slots.release();
        let mut queue = shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.idle >= MAX_IDLE_WORKERS {
            return;
        }
        queue.idle += 1;
        loop {
            if let Some(next) = queue.pending.pop_front() {
                // The accept loop already counted this worker as taken.
                job = Some(next);
                break;
            }
            let (guard, wait) = shared
                .work
                .wait_timeout(queue, WORKER_IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            queue = guard;
            if wait.timed_out() && queue.pending.is_empty() {
                queue.idle = queue.idle.saturating_sub(1);
                return;
            }
        }
    }
}
