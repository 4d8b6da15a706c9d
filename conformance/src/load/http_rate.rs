//! Request rate of HTTP forwarding: C concurrent clients, each sending
//! `GET http://ORIGIN/small` through the proxy (origin form to the origin itself for
//! `direct`) over one persistent connection, the next request as soon as a response is
//! complete. Reports requests per second over a window after a warm-up, their latency
//! (request written to last body byte), errors, connections opened in the window, and
//! the proxy's and the tool's CPU time over the window.
//!
//! A client opens a new connection only when the proxy closes (it answered
//! `Connection: close`, or HTTP/1.0, or closed a kept connection while idle, when the
//! request is sent again) or a request failed: a proxy without client keep-alive shows up
//! as connections opened in the window, and pays for them in its rate and latency. Clients and the [`origin`](super::origin) run on one smol executor
//! ([`Runner`]); with `direct` the numbers are the tool's own ceiling. It does not
//! pipeline requests.

use super::conn::{with_timeout, ErrorCounts};
use super::histogram::Histogram;
use super::http_client::{check, first_hop, HttpConn, SMALL_BUFFER};
use super::http_response::{request_head, Persistence, ResponseReader};
use super::origin::{spawn_origin, OriginConfig, SMALL_BODY_LEN, SMALL_PATH};
use super::procfs;
use super::runner::Runner;
use super::url::ProxyUrl;
use super::LoadError;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most concurrent clients.
pub const MAX_CONCURRENCY: usize = 4096;
/// Most requests one client sends in one run (the time limit normally ends it first).
pub const MAX_REQUESTS_PER_CLIENT: u64 = 100_000_000;
/// Longest measurement window.
pub const MAX_SECONDS: f64 = 3600.0;
/// Pause of a client after a failure, so a proxy that refuses at once is not spun on.
const ERROR_PAUSE: Duration = Duration::from_millis(1);

/// What to measure.
#[derive(Debug, Clone)]
pub struct HttpRateConfig {
    /// `direct` or `http://host:port`.
    pub proxy: ProxyUrl,
    /// Concurrent clients, 1..=[`MAX_CONCURRENCY`].
    pub concurrency: usize,
    /// Measurement window.
    pub duration: Duration,
    /// Unmeasured time before the window (connections open, caches warm).
    pub warmup: Duration,
    /// The proxy's process, for CPU time.
    pub pid: Option<u32>,
    /// Limit for one connect and for one exchange.
    pub op_timeout: Duration,
    /// Executor threads for clients and origin.
    pub threads: usize,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct HttpRateResult {
    /// Requests completed inside the window.
    pub requests: u64,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// Latency of the requests completed inside the window, in nanoseconds.
    pub latency: Histogram,
    /// CPU seconds of the proxy (and descendants) in the window.
    pub proxy_cpu: Option<f64>,
    /// CPU seconds of the tool in the window.
    pub tool_cpu: f64,
    /// Busy CPU seconds of the whole machine in the window (all CPUs).
    pub machine_cpu: f64,
    /// Failed requests and connects during the whole run, warm-up included.
    pub errors: ErrorCounts,
    /// Connections the clients opened inside the window (0 with keep-alive throughout).
    pub window_connects: u64,
    /// Requests sent again inside the window on a new connection because the proxy had
    /// closed the previous one while idle (see [`HttpConn::closed_while_idle`]); not
    /// errors, but their time counts in the request's latency.
    pub idle_closes: u64,
    /// Connections the origin accepted during the whole run.
    pub origin_connections: u64,
    /// Responses the origin wrote during the whole run.
    pub origin_responses: u64,
}

impl HttpRateResult {
    /// Requests per second.
    pub fn per_sec(&self) -> f64 {
        super::per_second(self.requests as f64, self.seconds)
    }

    /// Latency at quantile `q`, in microseconds.
    pub fn latency_us(&self, q: f64) -> Option<f64> {
        self.latency
            .value_at_quantile(q)
            .map(|ns| ns as f64 / 1000.0)
    }

    /// Proxy CPU seconds per 1,000 requests.
    pub fn proxy_cpu_per_1k(&self) -> Option<f64> {
        self.proxy_cpu
            .filter(|_| self.requests > 0)
            .map(|c| c * 1000.0 / self.requests as f64)
    }

    /// Tool CPU seconds per 1,000 requests.
    pub fn tool_cpu_per_1k(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.tool_cpu * 1000.0 / self.requests as f64)
    }

    /// CPU seconds used by other processes in the window (machine - tool - proxy).
    pub fn others_cpu(&self) -> f64 {
        (self.machine_cpu - self.tool_cpu - self.proxy_cpu.unwrap_or(0.0)).max(0.0)
    }
}

/// What one client does, shared by all.
#[derive(Debug)]
struct Plan {
    hop: SocketAddr,
    request: Vec<u8>,
    window_start: Instant,
    window_end: Instant,
    op_timeout: Duration,
}

/// Runs one request-rate measurement. Fails only if the origin or executor cannot start
/// or the proxy's `/proc` entry cannot be read; failed requests are counted in the result.
pub fn run(config: &HttpRateConfig) -> Result<HttpRateResult, LoadError> {
    let concurrency = config.concurrency.clamp(1, MAX_CONCURRENCY);
    let window = config
        .duration
        .min(Duration::from_secs_f64(MAX_SECONDS))
        .max(Duration::from_millis(10));
    let runner = Runner::new(config.threads).map_err(LoadError::Setup)?;
    let (origin, origin_stats) = spawn_origin(
        &runner,
        OriginConfig {
            max_conns: MAX_REQUESTS_PER_CLIENT.saturating_mul(concurrency as u64),
            idle_timeout: config.op_timeout * 2,
            io_timeout: config.op_timeout,
        },
    )
    .map_err(LoadError::Setup)?;
    let (hop, form) = first_hop(&config.proxy, origin)?;
    let window_start = Instant::now() + config.warmup;
    let plan = Arc::new(Plan {
        hop,
        request: request_head(form, origin, SMALL_PATH),
        window_start,
        window_end: window_start + window,
        op_timeout: config.op_timeout,
    });
    let clients: Vec<_> = (0..concurrency)
        .map(|_| runner.spawn(client_loop(Arc::clone(&plan))))
        .collect();

    sleep_until(plan.window_start);
    let cpu = procfs::CpuWindow::start(config.pid)?;
    let t0 = Instant::now();
    sleep_until(plan.window_end);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu.finish()?;

    let mut latency = Histogram::new();
    let mut requests = 0;
    let mut window_connects = 0;
    let mut idle_closes = 0;
    let mut errors = ErrorCounts::default();
    for task in clients {
        let outcome = runner.wait(task);
        latency.merge(&outcome.latency);
        requests += outcome.requests;
        window_connects += outcome.window_connects;
        idle_closes += outcome.idle_closes;
        errors.merge(&outcome.errors);
    }
    let origin_connections = origin_stats.accepted.load(Ordering::Relaxed);
    let origin_responses = origin_stats.responses.load(Ordering::Relaxed);
    drop(runner);

    Ok(HttpRateResult {
        requests,
        seconds,
        latency,
        proxy_cpu: cpu.proxy,
        tool_cpu: cpu.tool,
        machine_cpu: cpu.machine,
        errors,
        window_connects,
        idle_closes,
        origin_connections,
        origin_responses,
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
    requests: u64,
    window_connects: u64,
    idle_closes: u64,
    errors: ErrorCounts,
}

fn in_window(plan: &Plan, t: Instant) -> bool {
    t >= plan.window_start && t <= plan.window_end
}

async fn client_loop(plan: Arc<Plan>) -> ClientOutcome {
    let mut out = ClientOutcome {
        latency: Histogram::new(),
        requests: 0,
        window_connects: 0,
        idle_closes: 0,
        errors: ErrorCounts::default(),
    };
    let mut conn: Option<HttpConn> = None;
    let mut sent = 0u64;
    // When the last attempt met a connection closed while idle: when it started.
    let mut retry_from: Option<Instant> = None;
    while Instant::now() < plan.window_end && sent < MAX_REQUESTS_PER_CLIENT {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match HttpConn::connect(plan.hop, plan.op_timeout, SMALL_BUFFER).await {
                Ok(c) => {
                    if in_window(&plan, Instant::now()) {
                        out.window_connects += 1;
                    }
                    conn.insert(c)
                }
                Err(e) => {
                    out.errors.add(e);
                    smol::Timer::after(ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        sent += 1;
        let t0 = retry_from.take().unwrap_or_else(Instant::now);
        let mut reader = ResponseReader::new();
        let r = with_timeout(plan.op_timeout, c.exchange(&plan.request, &mut reader))
            .await
            .and_then(|response| check(&response, SMALL_BODY_LEN as u64));
        let t1 = Instant::now();
        match r {
            Err(e) if c.closed_while_idle(&e) => {
                // Send it again at once on a new connection, timed from the first try.
                if in_window(&plan, t1) {
                    out.idle_closes += 1;
                }
                conn = None;
                retry_from = Some(t0);
            }
            Ok(persistence) => {
                if in_window(&plan, t1) {
                    out.latency.record_duration(t1 - t0);
                    out.requests += 1;
                }
                if persistence == Persistence::Close {
                    conn = None;
                }
            }
            Err(e) => {
                out.errors.add(e);
                conn = None;
                smol::Timer::after(ERROR_PAUSE).await;
            }
        }
    }
    out
}
