//! Connection rate: C concurrent clients, each repeating "connect, handshake, CONNECT to
//! the echo target, send [`ECHO_LEN`] bytes, read them back, close" as fast as it can.
//! Reports completed connections per second over a window after a warm-up, the latency
//! distribution of those connections (connect to last echo byte), errors, and the proxy's
//! and the tool's CPU time over the window.
//!
//! The client closes first, so TIME_WAIT accumulates on the client's side of each hop (the
//! tool's sockets to the proxy, and the proxy's sockets to the target): a long run shows
//! whether the proxy survives port reuse. Clients and the echo target run on one smol
//! executor ([`Runner`]); with `direct` the numbers are the tool's own ceiling.

use super::conn::{open_async, read_exact_after, with_timeout, write_all_async, ErrorCounts};
use super::histogram::Histogram;
use super::procfs;
use super::runner::Runner;
use super::targets::{spawn_echo, ECHO_LEN};
use super::url::ProxyUrl;
use super::LoadError;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most concurrent clients.
pub const MAX_CONCURRENCY: usize = 4096;
/// Most connections one client makes in one run (the time limit normally ends it first).
pub const MAX_OPS_PER_CLIENT: u64 = 50_000_000;
/// Longest measurement window.
pub const MAX_SECONDS: f64 = 3600.0;

/// What to measure.
#[derive(Debug, Clone)]
pub struct RateConfig {
    /// Proxy to go through (or direct).
    pub proxy: ProxyUrl,
    /// Concurrent clients, 1..=[`MAX_CONCURRENCY`].
    pub concurrency: usize,
    /// Measurement window.
    pub duration: Duration,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The proxy's process, for CPU time.
    pub pid: Option<u32>,
    /// Limit for one whole connection (connect to close).
    pub op_timeout: Duration,
    /// Executor threads for clients and echo target.
    pub threads: usize,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct RateResult {
    /// Connections completed inside the window.
    pub connections: u64,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// Latency of the connections completed inside the window, in nanoseconds.
    pub latency: Histogram,
    /// CPU seconds of the proxy (and descendants) in the window.
    pub proxy_cpu: Option<f64>,
    /// CPU seconds of the tool in the window.
    pub tool_cpu: f64,
    /// Busy CPU seconds of the whole machine in the window (all CPUs), to tell how much
    /// else was running: `machine_cpu - tool_cpu - proxy_cpu`.
    pub machine_cpu: f64,
    /// Failed connections during the whole run, warm-up included.
    pub errors: ErrorCounts,
    /// Connections the echo target saw fail on its side.
    pub target_failures: u64,
}

impl RateResult {
    /// Connections per second.
    pub fn per_sec(&self) -> f64 {
        super::per_second(self.connections as f64, self.seconds)
    }

    /// Latency at quantile `q`, in microseconds.
    pub fn latency_us(&self, q: f64) -> Option<f64> {
        self.latency
            .value_at_quantile(q)
            .map(|ns| ns as f64 / 1000.0)
    }

    /// Proxy CPU microseconds per connection.
    pub fn proxy_cpu_per_conn_us(&self) -> Option<f64> {
        self.proxy_cpu
            .filter(|_| self.connections > 0)
            .map(|c| c * 1e6 / self.connections as f64)
    }

    /// CPU seconds used by other processes in the window (machine - tool - proxy).
    pub fn others_cpu(&self) -> f64 {
        (self.machine_cpu - self.tool_cpu - self.proxy_cpu.unwrap_or(0.0)).max(0.0)
    }

    /// Tool CPU microseconds per connection.
    pub fn tool_cpu_per_conn_us(&self) -> Option<f64> {
        (self.connections > 0).then(|| self.tool_cpu * 1e6 / self.connections as f64)
    }
}

/// Runs one connection-rate measurement.
pub fn run(config: &RateConfig) -> Result<RateResult, LoadError> {
    let concurrency = config.concurrency.clamp(1, MAX_CONCURRENCY);
    let window = config
        .duration
        .min(Duration::from_secs_f64(MAX_SECONDS))
        .max(Duration::from_millis(10));
    let runner = Runner::new(config.threads).map_err(LoadError::Setup)?;
    let max_conns = MAX_OPS_PER_CLIENT.saturating_mul(concurrency as u64);
    let (echo, echo_stats) =
        spawn_echo(&runner, max_conns, config.op_timeout * 2).map_err(LoadError::Setup)?;

    let window_start = Instant::now() + config.warmup;
    let window_end = window_start + window;
    let clients: Vec<_> = (0..concurrency)
        .map(|i| {
            let proxy = config.proxy.clone();
            let op_timeout = config.op_timeout;
            runner.spawn(client_loop(
                proxy,
                echo,
                i,
                window_start,
                window_end,
                op_timeout,
            ))
        })
        .collect();

    sleep_until(window_start);
    let cpu = procfs::CpuWindow::start(config.pid)?;
    let t0 = Instant::now();
    sleep_until(window_end);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu.finish()?;

    let mut latency = Histogram::new();
    let mut connections = 0;
    let mut errors = ErrorCounts::default();
    for task in clients {
        let outcome = runner.wait(task);
        latency.merge(&outcome.latency);
        connections += outcome.connections;
        errors.merge(&outcome.errors);
    }
    let target_failures = echo_stats.failed.load(Ordering::Relaxed);
    drop(runner);

    Ok(RateResult {
        connections,
        seconds,
        latency,
        proxy_cpu: cpu.proxy,
        tool_cpu: cpu.tool,
        machine_cpu: cpu.machine,
        errors,
        target_failures,
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

struct ClientOutcome {
    latency: Histogram,
    connections: u64,
    errors: ErrorCounts,
}

/// The payload of client `id`: different per client, so a proxy that crossed two tunnels
/// would be caught by the comparison.
fn payload(id: usize) -> [u8; ECHO_LEN] {
    let mut p = [0u8; ECHO_LEN];
    for (i, b) in p.iter_mut().enumerate() {
        *b = (id.wrapping_mul(31).wrapping_add(i) & 0xff) as u8;
    }
    p
}

async fn client_loop(
    proxy: ProxyUrl,
    target: SocketAddr,
    id: usize,
    window_start: Instant,
    window_end: Instant,
    op_timeout: Duration,
) -> ClientOutcome {
    let sent = payload(id);
    let mut out = ClientOutcome {
        latency: Histogram::new(),
        connections: 0,
        errors: ErrorCounts::default(),
    };
    let mut ops = 0u64;
    while Instant::now() < window_end && ops < MAX_OPS_PER_CLIENT {
        ops += 1;
        let t0 = Instant::now();
        let r = echo_once(&proxy, target, &sent, op_timeout).await;
        let t1 = Instant::now();
        match r {
            Ok(()) => {
                if t1 >= window_start && t1 <= window_end {
                    out.latency.record_duration(t1 - t0);
                    out.connections += 1;
                }
            }
            Err(e) => {
                out.errors.add(e);
                // Do not spin on a proxy that refuses at once.
                smol::Timer::after(Duration::from_millis(1)).await;
            }
        }
    }
    out
}

async fn echo_once(
    proxy: &ProxyUrl,
    target: SocketAddr,
    sent: &[u8; ECHO_LEN],
    op_timeout: Duration,
) -> Result<(), super::conn::OpError> {
    with_timeout(op_timeout, async {
        let (mut stream, ahead) = open_async(proxy, target, op_timeout).await?;
        write_all_async(&mut stream, sent).await?;
        let mut back = [0u8; ECHO_LEN];
        read_exact_after(&mut stream, &ahead, &mut back).await?;
        if &back != sent {
            return Err(super::conn::OpError::EchoMismatch);
        }
        // Dropping the stream closes it: the client closes first.
        Ok(())
    })
    .await
}
