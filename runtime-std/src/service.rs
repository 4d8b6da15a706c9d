//! A listening service: worker threads that each accept one client and serve it (reused
//! for the next client when done), with `maxconn` enforced the way 3proxy does it (stop
//! accepting; clients wait in the backlog).

use crate::io::serve_connection;
use crate::slot::ServiceSlot;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use triproxy_policy::service::DatagramService;

/// Stack of a connection thread. Name resolution (glibc `getaddrinfo`) is the deepest
/// user of it; the handshake buffer is 1 KiB and relay buffers live on the heap.
const CONNECTION_STACK: usize = 128 * 1024;

/// A running service.
#[derive(Debug)]
pub struct ServiceHandle {
    /// The address the service listens on (with the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// The first worker thread (it exits only when the service is stopped).
    pub thread: JoinHandle<()>,
    /// What [`ServiceHandle::stop`] wakes.
    socket: Socket,
    slot: Arc<ServiceSlot>,
}

/// The socket a stopped service's threads wait on.
#[derive(Debug)]
enum Socket {
    Tcp(Arc<Shared>),
    /// A duplicate of the datagram service's socket.
    Udp(UdpSocket),
}

impl ServiceHandle {
    /// Stops the service: it accepts no more clients (a TCP listener leaves the LISTEN
    /// state at once, so `ss -ltn` no longer shows it; clients waiting in its backlog are
    /// reset), and its idle threads exit. Established connections go on to their end.
    ///
    /// A datagram service's loop ends (its open mappings end with it); call
    /// [`ServiceHandle::wait`] before binding its address again.
    pub fn stop(&self) {
        self.slot.mark_stopped();
        // shutdown(2) wakes every thread blocked in accept(2) or poll(2) on the socket (on a
        // listener it also ends the LISTEN state). An error means there is nothing to wake.
        let _ = match &self.socket {
            Socket::Tcp(shared) => {
                socket2::SockRef::from(&shared.listener).shutdown(std::net::Shutdown::Read)
            }
            Socket::Udp(socket) => {
                socket2::SockRef::from(socket).shutdown(std::net::Shutdown::Read)
            }
        };
    }

    /// Whether it is a datagram service.
    pub fn is_datagram(&self) -> bool {
        matches!(self.socket, Socket::Udp(_))
    }

    /// Waits until the service's first thread ended (after [`ServiceHandle::stop`]): for a
    /// datagram service, its socket is then closed.
    pub fn wait(self) {
        drop(self.socket);
        let _ = self.thread.join();
    }
}

/// A worker that waited this long in `accept()` without a client exits (unless it is the
/// service's first worker): threads started for a burst of clients go away after it.
const WORKER_IDLE_EXIT: Duration = Duration::from_secs(60);

/// Memory mappings one worker thread costs: its stack and guard page, and the signal
/// stack and guard page std sets up for every thread (measured: 4.0 per thread).
const MAPS_PER_THREAD: usize = 4;

/// Mappings left for everything else (libraries, heap arenas).
const RESERVED_MAPS: usize = 4096;

/// `vm.max_map_count` when it cannot be read (the Linux default).
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

/// Worker threads alive in this process, over every service.
static LIVE_WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Least time between two notices that the worker cap keeps clients waiting.
const CAP_NOTICE_EVERY: Duration = Duration::from_secs(60);

/// When the last worker-cap notice was given (`None`: never).
static LAST_CAP_NOTICE: Mutex<Option<Instant>> = Mutex::new(None);

/// The most worker threads this process starts, over every service: what
/// `vm.max_map_count` allows. Past it, a new thread's signal stack cannot be mapped and
/// std aborts the whole process (it cannot report that failure to the spawner), so
/// instead clients wait in the listen backlog, as they do beyond `maxconn`. With the
/// default limit that is 15,358 threads.
pub fn max_workers() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX_MAP_COUNT);
        workers_for_maps(maps)
    })
}

/// Worker threads that fit in `max_map_count` mappings (at least one).
fn workers_for_maps(max_map_count: usize) -> usize {
    (max_map_count.saturating_sub(RESERVED_MAPS) / MAPS_PER_THREAD).max(1)
}

/// Takes one place among the process's worker threads, if [`max_workers`] allows.
fn reserve_worker() -> bool {
    LIVE_WORKERS
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max_workers()).then_some(n + 1)
        })
        .is_ok()
}

fn release_worker() {
    LIVE_WORKERS.fetch_sub(1, Ordering::AcqRel);
}

/// How many worker threads exist and how many of them wait in `accept()`.
#[derive(Debug, Default)]
struct Threads {
    total: usize,
    accepting: usize,
}

/// Everything a worker thread needs; shared by all workers of a service.
#[derive(Debug)]
struct Shared {
    listener: TcpListener,
    listen: SocketAddr,
    slot: Arc<ServiceSlot>,
    threads: Mutex<Threads>,
}

impl Shared {
    fn threads(&self) -> std::sync::MutexGuard<'_, Threads> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Starts serving `listener` with `policy`, at most `maxconn` clients at once.
///
/// Each worker thread accepts a client itself and serves it (3proxy's thread per
/// connection), then goes back to `accept()`. There is no accept thread handing clients
/// over: that hand-off cost a wake-up and a context switch per connection. A worker that
/// accepts while no other worker waits in `accept()` starts one more, unless `maxconn`
/// workers exist; so at most `maxconn` clients are served and the others wait in the
/// listen backlog, as with 3proxy's `maxconn`. Workers are reused; one that waits
/// `WORKER_IDLE_EXIT` (60 s) for a client exits (the first worker never does). Exiting on idle
/// time rather than on a count of idle workers keeps a steady load from creating and
/// ending threads all the time.
///
/// Each connection runs with the [`ServiceSlot`]'s settings at the moment it was accepted.
pub fn spawn_service(listener: TcpListener, slot: Arc<ServiceSlot>) -> io::Result<ServiceHandle> {
    let local_addr = listener.local_addr()?;
    // SO_RCVTIMEO on a listening socket bounds each accept(): how idle workers notice that
    // they are idle.
    socket2::SockRef::from(&listener).set_read_timeout(Some(WORKER_IDLE_EXIT))?;
    let shared = Arc::new(Shared {
        listener,
        listen: local_addr,
        slot: Arc::clone(&slot),
        threads: Mutex::new(Threads {
            total: 1,
            accepting: 0,
        }),
    });
    // The first worker of a service always starts (it counts, but is not refused).
    LIVE_WORKERS.fetch_add(1, Ordering::AcqRel);
    let first = Arc::clone(&shared);
    let thread = thread::Builder::new()
        .name(format!("serve {local_addr}"))
        .stack_size(CONNECTION_STACK)
        .spawn(move || worker(first, true))
        .inspect_err(|_| release_worker())?;
    Ok(ServiceHandle {
        local_addr,
        thread,
        socket: Socket::Tcp(shared),
        slot,
    })
}

/// Starts a datagram service (`udppm`, `dnspr`) on `socket`: one thread runs its one
/// loop, at most `max_clients` clients at once.
///
/// The loop runs with the slot's settings at its start; a reload that changes them stops
/// the service and starts another.
pub fn spawn_datagram_service(
    socket: UdpSocket,
    slot: Arc<ServiceSlot>,
    service: DatagramService,
) -> io::Result<ServiceHandle> {
    socket.set_nonblocking(true)?;
    let local_addr = socket.local_addr()?;
    let waker = socket.try_clone()?;
    let loop_slot = Arc::clone(&slot);
    let thread = thread::Builder::new()
        .name(format!("serve udp {local_addr}"))
        .spawn(move || crate::io::serve_datagrams(&socket, local_addr, &loop_slot, &service))?;
    Ok(ServiceHandle {
        local_addr,
        thread,
        socket: Socket::Udp(waker),
        slot,
    })
}

/// Accepts and serves clients until it waited [`WORKER_IDLE_EXIT`] for one (never, if
/// `permanent`).
fn worker(shared: Arc<Shared>, permanent: bool) {
    loop {
        shared.threads().accepting += 1;
        let accepted = shared.listener.accept();
        let settings = shared.slot.load();
        let stopped = shared.slot.is_stopped();
        let (spawn_another, capped) = {
            let mut threads = shared.threads();
            threads.accepting -= 1;
            let needed = accepted.is_ok() && threads.accepting == 0 && !stopped;
            if needed && threads.total < settings.maxconn {
                let reserved = reserve_worker();
                if reserved {
                    threads.total += 1;
                }
                (reserved, !reserved)
            } else {
                (false, false)
            }
        };
        if capped {
            notice_cap(&shared);
        }
        if spawn_another {
            let next = Arc::clone(&shared);
            let spawned = thread::Builder::new()
                .name(format!("serve {}", shared.listen))
                .stack_size(CONNECTION_STACK)
                .spawn(move || worker(next, false));
            if spawned.is_err() {
                // No thread now: this worker accepts again once its client is done.
                shared.threads().total -= 1;
                release_worker();
            }
        }
        match accepted {
            Ok((stream, peer)) => serve_connection(
                stream,
                peer,
                shared.listen,
                Arc::clone(&settings.policy),
                &settings.hooks,
                &shared.slot,
            ),
            Err(_) if stopped => {}
            Err(e) if is_timeout(&e) => {
                if !permanent {
                    shared.threads().total -= 1;
                    release_worker();
                    return;
                }
            }
            Err(_) => {
                // EMFILE, ENOBUFS, a client that reset before accept: back off briefly
                // instead of spinning, then keep serving.
                thread::sleep(Duration::from_millis(10));
            }
        }
        if shared.slot.is_stopped() {
            // The service was stopped (a reload removed it): this worker is done, and so is
            // its client if it had one.
            shared.threads().total -= 1;
            release_worker();
            return;
        }
    }
}

/// Tells the operator, at most once per [`CAP_NOTICE_EVERY`], that this service wanted
/// another worker below its `maxconn` but the process-wide cap ([`max_workers`]) refused
/// it: new clients now wait in the backlog until a worker is free. Without the notice that
/// overload would be invisible (the clients are not refused, so nothing is logged).
fn notice_cap(shared: &Shared) {
    let now = Instant::now();
    let due = {
        let mut last = LAST_CAP_NOTICE.lock().unwrap_or_else(|p| p.into_inner());
        let due = cap_notice_due(*last, now);
        if due {
            *last = Some(now);
        }
        due
    };
    if due {
        (shared.slot.load().hooks.notice)(&format!(
            "{}: all {} worker threads the process may start (vm.max_map_count) are busy; \
             new clients wait in the listen backlog until one is free",
            shared.listen,
            max_workers()
        ));
    }
}

/// Whether a worker-cap notice is due at `now`, the last one having been at `last`.
fn cap_notice_due(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|at| now.saturating_duration_since(at) >= CAP_NOTICE_EVERY)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_limit_follows_max_map_count() {
        assert_eq!(workers_for_maps(65_530), 15_358);
        assert_eq!(workers_for_maps(262_144), 64_512);
        assert_eq!(workers_for_maps(100), 1, "never zero");
        assert!(max_workers() >= 1);
    }

    #[test]
    fn the_cap_notice_comes_at_most_once_a_minute() {
        let t0 = Instant::now();
        assert!(cap_notice_due(None, t0), "the first time");
        assert!(!cap_notice_due(Some(t0), t0 + Duration::from_secs(59)));
        assert!(cap_notice_due(Some(t0), t0 + CAP_NOTICE_EVERY));
    }
}
