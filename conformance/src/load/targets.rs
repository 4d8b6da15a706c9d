//! The loopback servers the load tool measures against, started by the tool itself on
//! 127.0.0.1 with ports the kernel picks ([`bind_loopback`]):
//!
//! - [`BulkTarget`]: a sink (reads and counts everything, for upload) and a source (writes
//!   without end, for download), on blocking sockets with one thread per connection;
//! - [`spawn_echo`]: reads [`ECHO_LEN`] bytes, writes them back, then waits for the client
//!   to close first (so TIME_WAIT lands on the client's side of each hop);
//! - [`spawn_hold`]: writes one byte to each connection and keeps it open, idle.
//!
//! They are for measuring, not for serving: every loop stops at a deadline or a stop flag,
//! every read and write has a timeout, and each server accepts a bounded number of
//! connections.

use super::conn::{drain_to_eof, with_timeout, write_all_async, OpError};
use super::runner::Runner;
use smol::io::AsyncReadExt;
use smol::Async;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Bytes per read or write on bulk streams.
pub const BULK_CHUNK: usize = 128 * 1024;
/// Bytes of the connection-rate echo.
pub const ECHO_LEN: usize = 64;
/// Per-call timeout of target sockets: a stuck peer is noticed within this.
pub const TARGET_IO_TIMEOUT: Duration = Duration::from_millis(500);
/// Stack of bulk target threads (they hold no large buffers on the stack).
const THREAD_STACK: usize = 256 * 1024;

/// Ports tried when the kernel cannot pick one: below the usual ephemeral range
/// (32768-60999), so TIME_WAIT sockets of earlier runs do not hold them.
pub const FALLBACK_PORTS: core::ops::Range<u16> = 20_000..32_000;
/// Ports of [`FALLBACK_PORTS`] tried before giving up.
const FALLBACK_TRIES: u64 = 256;

/// Binds a listener on 127.0.0.1. The kernel picks the port, unless the ephemeral range is
/// exhausted (thousands of TIME_WAIT sockets after a connection-rate run make `bind(0)`
/// fail with EADDRINUSE); then ports of [`FALLBACK_PORTS`] are tried.
pub fn bind_loopback() -> io::Result<TcpListener> {
    match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {}
        other => return other,
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let span = u64::from(FALLBACK_PORTS.end - FALLBACK_PORTS.start);
    let seed = u64::from(std::process::id()) * 7919;
    let mut last = io::Error::from(io::ErrorKind::AddrInUse);
    for _ in 0..FALLBACK_TRIES {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let offset = u16::try_from((seed + n * 613) % span).unwrap_or(0);
        match TcpListener::bind((Ipv4Addr::LOCALHOST, FALLBACK_PORTS.start + offset)) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Which way bulk data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Client to target (upload): the sink counts.
    Up,
    /// Target to client (download): the client counts.
    Down,
}

impl Direction {
    /// `up` or `down`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// A sink and a source for bulk streams. See the [module documentation](self).
#[derive(Debug)]
pub struct BulkTarget {
    /// Where upload streams connect.
    pub sink: SocketAddr,
    /// Where download streams connect.
    pub source: SocketAddr,
    /// Bytes the sink has received.
    pub received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl BulkTarget {
    /// Starts both servers; each accepts at most `max_conns` connections and stops by
    /// `deadline` at the latest.
    pub fn start(max_conns: usize, deadline: Instant) -> io::Result<BulkTarget> {
        let sink_listener = bind_loopback()?;
        let source_listener = bind_loopback()?;
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut target = BulkTarget {
            sink: sink_listener.local_addr()?,
            source: source_listener.local_addr()?,
            received: Arc::clone(&received),
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        let counter = Arc::clone(&received);
        target.threads.push(spawn_acceptor(
            sink_listener,
            max_conns,
            deadline,
            Arc::clone(&stop),
            move |s, stop| sink(s, &counter, &stop, deadline),
        )?);
        target.threads.push(spawn_acceptor(
            source_listener,
            max_conns,
            deadline,
            Arc::clone(&stop),
            move |s, stop| source(s, &stop, deadline),
        )?);
        Ok(target)
    }

    /// Stops accepting and serving, and waits for every thread (at most about
    /// [`TARGET_IO_TIMEOUT`] after the call).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for BulkTarget {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn spawn_acceptor<F>(
    listener: TcpListener,
    max_conns: usize,
    deadline: Instant,
    stop: Arc<AtomicBool>,
    serve: F,
) -> io::Result<JoinHandle<()>>
where
    F: Fn(TcpStream, Arc<AtomicBool>) + Send + Sync + Clone + 'static,
{
    listener.set_nonblocking(true)?;
    thread::Builder::new()
        .name("load-bulk-accept".to_owned())
        .stack_size(THREAD_STACK)
        .spawn(move || {
            let mut served = Vec::new();
            while served.len() < max_conns && !stop.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    break;
                }
                match listener.accept() {
                    Ok((stream, _)) => {
                        let ready = stream
                            .set_nonblocking(false)
                            .and_then(|()| stream.set_read_timeout(Some(TARGET_IO_TIMEOUT)))
                            .and_then(|()| stream.set_write_timeout(Some(TARGET_IO_TIMEOUT)));
                        if ready.is_err() {
                            continue;
                        }
                        let serve = serve.clone();
                        let stop = Arc::clone(&stop);
                        let spawned = thread::Builder::new()
                            .name("load-bulk-conn".to_owned())
                            .stack_size(THREAD_STACK)
                            .spawn(move || serve(stream, stop));
                        if let Ok(h) = spawned {
                            served.push(h);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for h in served {
                let _ = h.join();
            }
        })
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn sink(mut stream: TcpStream, received: &AtomicU64, stop: &AtomicBool, deadline: Instant) {
    let mut buf = vec![0u8; BULK_CHUNK];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if timed_out(&e) => {}
            Err(_) => break,
        }
    }
}

fn source(mut stream: TcpStream, stop: &AtomicBool, deadline: Instant) {
    let buf = vec![0x5au8; BULK_CHUNK];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match stream.write(&buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if timed_out(&e) => {}
            Err(_) => break,
        }
    }
}

/// Counters of the async targets.
#[derive(Debug, Default)]
pub struct TargetStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections that completed their part (echoed and saw the client close; or
    /// greeted and held).
    pub completed: AtomicU64,
    /// Connections that failed on the target side.
    pub failed: AtomicU64,
}

/// Starts the echo server on `runner`: it accepts at most `max_conns` connections, each
/// served for at most `conn_timeout`. Returns its address and counters; it runs until the
/// runner is dropped.
pub fn spawn_echo(
    runner: &Runner,
    max_conns: u64,
    conn_timeout: Duration,
) -> io::Result<(SocketAddr, Arc<TargetStats>)> {
    let listener = Async::new(bind_loopback()?)?;
    let addr = listener.get_ref().local_addr()?;
    let stats = Arc::new(TargetStats::default());
    let weak = runner.weak();
    let task_stats = Arc::clone(&stats);
    runner
        .spawn(async move {
            while task_stats.accepted.load(Ordering::Relaxed) < max_conns {
                let Ok((stream, _)) = listener.accept().await else {
                    // EMFILE and the like: let the clients' errors show it, retry shortly.
                    smol::Timer::after(Duration::from_millis(5)).await;
                    continue;
                };
                task_stats.accepted.fetch_add(1, Ordering::Relaxed);
                let Some(ex) = weak.upgrade() else { return };
                let stats = Arc::clone(&task_stats);
                ex.spawn(async move {
                    match with_timeout(conn_timeout, echo_once(stream)).await {
                        Ok(()) => stats.completed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => stats.failed.fetch_add(1, Ordering::Relaxed),
                    };
                })
                .detach();
            }
        })
        .detach();
    Ok((addr, stats))
}

async fn echo_once(mut stream: Async<TcpStream>) -> Result<(), OpError> {
    let _ = stream.get_ref().set_nodelay(true);
    let mut buf = [0u8; ECHO_LEN];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|_| OpError::Closed)?;
    write_all_async(&mut stream, &buf).await?;
    // The client closes first; anything more than a few bytes is a protocol error.
    drain_to_eof(&mut stream, ECHO_LEN as u64).await
}

/// Starts the hold server on `runner`: it writes one byte (`!`) to each of at most
/// `max_conns` connections and keeps them open until the runner is dropped.
pub fn spawn_hold(runner: &Runner, max_conns: u64) -> io::Result<(SocketAddr, Arc<TargetStats>)> {
    let listener = Async::new(bind_loopback()?)?;
    let addr = listener.get_ref().local_addr()?;
    let stats = Arc::new(TargetStats::default());
    let task_stats = Arc::clone(&stats);
    runner
        .spawn(async move {
            let mut held = Vec::new();
            while task_stats.accepted.load(Ordering::Relaxed) < max_conns {
                let Ok((mut stream, _)) = listener.accept().await else {
                    smol::Timer::after(Duration::from_millis(5)).await;
                    continue;
                };
                task_stats.accepted.fetch_add(1, Ordering::Relaxed);
                // One byte into an empty socket buffer does not block.
                let greeted =
                    with_timeout(TARGET_IO_TIMEOUT, write_all_async(&mut stream, b"!")).await;
                if greeted.is_ok() {
                    task_stats.completed.fetch_add(1, Ordering::Relaxed);
                    held.push(stream);
                } else {
                    task_stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Keep the connections open until the runner drops this task.
            std::future::pending::<()>().await;
            drop(held);
        })
        .detach();
    Ok((addr, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_are_on_loopback_and_distinct() {
        let a = bind_loopback().unwrap();
        let b = bind_loopback().unwrap();
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert!(a.ip().is_loopback() && b.ip().is_loopback());
        assert_ne!(a.port(), b.port());
    }
}
