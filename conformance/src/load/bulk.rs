//! Bulk throughput: N streams through the proxy (or direct) to the tool's own sink or
//! source, counted at the receiving end over a fixed window after a warm-up, with the
//! proxy's and the tool's CPU time over the same window.
//!
//! Streams run on blocking sockets, one thread each, writing and reading
//! [`BULK_CHUNK`]-byte buffers. It measures sustained transfer, not connection set-up
//! (see [`super::rate`]).

use super::conn::{open_blocking, ErrorCounts, OpError};
use super::procfs;
use super::targets::{BulkTarget, Direction, BULK_CHUNK};
use super::url::ProxyUrl;
use super::LoadError;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Most streams in one measurement.
pub const MAX_STREAMS: usize = 64;
/// Longest measurement window.
pub const MAX_SECONDS: f64 = 3600.0;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BulkConfig {
    /// Proxy to go through (or direct).
    pub proxy: ProxyUrl,
    /// Parallel streams, 1..=[`MAX_STREAMS`].
    pub streams: usize,
    /// Which way the data flows.
    pub direction: Direction,
    /// Measurement window.
    pub duration: Duration,
    /// Unmeasured time before the window (TCP windows open, caches warm).
    pub warmup: Duration,
    /// The proxy's process, for CPU time.
    pub pid: Option<u32>,
    /// Time allowed to open each stream.
    pub connect_timeout: Duration,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkResult {
    /// Bytes received in the window.
    pub bytes: u64,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// CPU seconds the proxy (and its descendants) used in the window.
    pub proxy_cpu: Option<f64>,
    /// CPU seconds the tool used in the window (its clients and targets).
    pub tool_cpu: f64,
    /// Busy CPU seconds of the whole machine in the window (all CPUs), to tell how much
    /// else was running: `machine_cpu - tool_cpu - proxy_cpu`.
    pub machine_cpu: f64,
    /// Streams that failed to open or broke before the end.
    pub errors: ErrorCounts,
}

impl BulkResult {
    /// Throughput in bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        super::per_second(self.bytes as f64, self.seconds)
    }

    /// Proxy CPU seconds per GiB moved.
    pub fn proxy_cpu_per_gib(&self) -> Option<f64> {
        let gib = self.bytes as f64 / (1u64 << 30) as f64;
        self.proxy_cpu.filter(|_| gib > 0.0).map(|c| c / gib)
    }

    /// CPU seconds used by other processes in the window (machine - tool - proxy).
    pub fn others_cpu(&self) -> f64 {
        (self.machine_cpu - self.tool_cpu - self.proxy_cpu.unwrap_or(0.0)).max(0.0)
    }

    /// Tool CPU seconds per GiB moved.
    pub fn tool_cpu_per_gib(&self) -> Option<f64> {
        let gib = self.bytes as f64 / (1u64 << 30) as f64;
        (gib > 0.0).then(|| self.tool_cpu / gib)
    }
}

/// Runs one bulk measurement. Fails only if the targets cannot start or the proxy's
/// `/proc` entry cannot be read; stream failures are counted in the result.
pub fn run(config: &BulkConfig) -> Result<BulkResult, LoadError> {
    let streams = config.streams.clamp(1, MAX_STREAMS);
    let window = config
        .duration
        .min(Duration::from_secs_f64(MAX_SECONDS))
        .max(Duration::from_millis(10));
    let setup_limit = config.connect_timeout + Duration::from_secs(1);
    // Everything stops by this deadline even if a stop signal is lost.
    let hard_deadline = Instant::now() + setup_limit + config.warmup + window + setup_limit;
    let target = BulkTarget::start(streams, hard_deadline).map_err(LoadError::Setup)?;
    let target_addr = match config.direction {
        Direction::Up => target.sink,
        Direction::Down => target.source,
    };
    let delivered = match config.direction {
        Direction::Up => Arc::clone(&target.received),
        Direction::Down => Arc::new(AtomicU64::new(0)),
    };
    let stop = Arc::new(AtomicBool::new(false));
    // Each stream reports its opening, with a handle to shut it down at the end.
    let (opened_tx, opened_rx) = mpsc::channel::<Result<Option<TcpStream>, OpError>>();
    let mut handles = Vec::with_capacity(streams);
    for _ in 0..streams {
        let proxy = config.proxy.clone();
        let stream_stop = Arc::clone(&stop);
        let delivered = Arc::clone(&delivered);
        let opened = opened_tx.clone();
        let direction = config.direction;
        let connect_timeout = config.connect_timeout;
        let h = thread::Builder::new()
            .name("load-bulk-client".to_owned())
            .stack_size(256 * 1024)
            .spawn(move || {
                let (stream, ahead) = match open_blocking(&proxy, target_addr, connect_timeout) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return None;
                    }
                };
                let _ = opened.send(Ok(stream.try_clone().ok()));
                delivered.fetch_add(ahead.len() as u64, Ordering::Relaxed);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
                match direction {
                    Direction::Up => upload(stream, &stream_stop, hard_deadline),
                    Direction::Down => download(stream, &delivered, &stream_stop, hard_deadline),
                }
            });
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                stop.store(true, Ordering::SeqCst);
                return Err(LoadError::Setup(e));
            }
        }
    }
    drop(opened_tx);

    let mut errors = ErrorCounts::default();
    let mut shutters = Vec::with_capacity(streams);
    for _ in 0..streams {
        match opened_rx.recv_timeout(setup_limit) {
            Ok(Ok(handle)) => shutters.extend(handle),
            Ok(Err(e)) => errors.add(e),
            Err(_) => {
                errors.add(OpError::Timeout);
                break;
            }
        }
    }

    thread::sleep(config.warmup);
    let cpu = procfs::CpuWindow::start(config.pid)?;
    let bytes_before = delivered.load(Ordering::Relaxed);
    let t0 = Instant::now();
    thread::sleep(window);
    let bytes_after = delivered.load(Ordering::Relaxed);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu.finish()?;

    stop.store(true, Ordering::SeqCst);
    // Unblocks a stream waiting in read or write at once.
    for s in &shutters {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    for h in handles {
        if let Ok(Some(e)) = h.join() {
            errors.add(e);
        }
    }
    target.stop();

    Ok(BulkResult {
        bytes: bytes_after.saturating_sub(bytes_before),
        seconds,
        proxy_cpu: cpu.proxy,
        tool_cpu: cpu.tool,
        machine_cpu: cpu.machine,
        errors,
    })
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Writes until stopped; answers the error that ended it early, if any.
fn upload(mut stream: TcpStream, stop: &AtomicBool, deadline: Instant) -> Option<OpError> {
    let buf = vec![0xa5u8; BULK_CHUNK];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match stream.write(&buf) {
            Ok(0) => return early(stop, OpError::Closed),
            Ok(_) => {}
            Err(e) if retryable(&e) => {}
            Err(e) => return early(stop, OpError::Io(e.kind())),
        }
    }
    None
}

/// Reads and counts until stopped; answers the error that ended it early, if any.
fn download(
    mut stream: TcpStream,
    delivered: &AtomicU64,
    stop: &AtomicBool,
    deadline: Instant,
) -> Option<OpError> {
    let mut buf = vec![0u8; BULK_CHUNK];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return early(stop, OpError::Closed),
            Ok(n) => {
                delivered.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if retryable(&e) => {}
            Err(e) => return early(stop, OpError::Io(e.kind())),
        }
    }
    None
}

/// An error counts only if it happened before the stop signal.
fn early(stop: &AtomicBool, e: OpError) -> Option<OpError> {
    (!stop.load(Ordering::SeqCst)).then_some(e)
}
