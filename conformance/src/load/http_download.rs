//! Download throughput of HTTP forwarding: one `GET http://ORIGIN/big?n=BYTES` through
//! the proxy (origin form for `direct`), timed from the request to the last body byte,
//! with the proxy's and the tool's CPU time over the same span.
//!
//! Before it, a [`WARMUP_BYTES`] body is fetched on the same connection (a new one if
//! the proxy closed it, or closes it unannounced before the measured request, which is
//! then sent again), so the measured request finds the connection, the proxy's
//! connection to the origin (if it keeps one) and the TCP windows already open. The body
//! is counted and dropped as it arrives ([`LARGE_BUFFER`] at a time); its length and the
//! status are checked. One stream only: for several, see [`super::bulk`] through CONNECT.

use super::conn::{with_timeout, OpError};
use super::http_client::{check, first_hop, HttpConn, LARGE_BUFFER};
use super::http_response::{request_head, Persistence, ResponseReader};
use super::origin::{spawn_origin, OriginConfig, BIG_PATH, MAX_BIG};
use super::procfs;
use super::runner::Runner;
use super::url::ProxyUrl;
use super::LoadError;
use std::time::{Duration, Instant};

/// Body fetched before the measured one.
pub const WARMUP_BYTES: u64 = 1 << 20;

/// What to measure.
#[derive(Debug, Clone)]
pub struct DownloadConfig {
    /// `direct` or `http://host:port`.
    pub proxy: ProxyUrl,
    /// Body length, 1..=[`MAX_BIG`].
    pub bytes: u64,
    /// The proxy's process, for CPU time.
    pub pid: Option<u32>,
    /// Limit for a connect and for the warm-up fetch.
    pub op_timeout: Duration,
    /// Limit for the measured fetch.
    pub time_limit: Duration,
    /// Executor threads of the origin (1 or 2).
    pub threads: usize,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadResult {
    /// Body bytes asked for.
    pub requested: u64,
    /// Body bytes received (all of them unless `error`).
    pub bytes: u64,
    /// Request written to last byte (or to the failure), in seconds.
    pub seconds: f64,
    /// CPU seconds the proxy (and its descendants) used meanwhile.
    pub proxy_cpu: Option<f64>,
    /// CPU seconds the tool used meanwhile (client and origin).
    pub tool_cpu: f64,
    /// Busy CPU seconds of the whole machine meanwhile (all CPUs).
    pub machine_cpu: f64,
    /// Why the download, or the warm-up before it, failed.
    pub error: Option<OpError>,
}

impl DownloadResult {
    /// Throughput in bytes per second.
    pub fn bytes_per_sec(&self) -> f64 {
        super::per_second(self.bytes as f64, self.seconds)
    }

    /// Proxy CPU seconds per GiB received.
    pub fn proxy_cpu_per_gib(&self) -> Option<f64> {
        let gib = self.bytes as f64 / (1u64 << 30) as f64;
        self.proxy_cpu.filter(|_| gib > 0.0).map(|c| c / gib)
    }

    /// Tool CPU seconds per GiB received.
    pub fn tool_cpu_per_gib(&self) -> Option<f64> {
        let gib = self.bytes as f64 / (1u64 << 30) as f64;
        (gib > 0.0).then(|| self.tool_cpu / gib)
    }

    /// CPU seconds used by other processes meanwhile (machine - tool - proxy).
    pub fn others_cpu(&self) -> f64 {
        (self.machine_cpu - self.tool_cpu - self.proxy_cpu.unwrap_or(0.0)).max(0.0)
    }

    fn failed(requested: u64, e: OpError) -> Self {
        DownloadResult {
            requested,
            bytes: 0,
            seconds: 0.0,
            proxy_cpu: None,
            tool_cpu: 0.0,
            machine_cpu: 0.0,
            error: Some(e),
        }
    }
}

/// Runs one download. Fails only if the origin cannot start or the proxy's `/proc` entry
/// cannot be read; a failed fetch is reported in the result's `error`.
pub fn run(config: &DownloadConfig) -> Result<DownloadResult, LoadError> {
    if !(1..=MAX_BIG).contains(&config.bytes) {
        return Err(LoadError::Usage(format!(
            "a download is 1 to {MAX_BIG} bytes, not {}",
            config.bytes
        )));
    }
    let runner = Runner::new(config.threads.clamp(1, 2)).map_err(LoadError::Setup)?;
    let (origin, _) = spawn_origin(
        &runner,
        OriginConfig {
            max_conns: 16,
            idle_timeout: config.op_timeout * 2,
            io_timeout: config.op_timeout,
        },
    )
    .map_err(LoadError::Setup)?;
    let (hop, form) = first_hop(&config.proxy, origin)?;
    let warmup = request_head(form, origin, &format!("{BIG_PATH}?n={WARMUP_BYTES}"));
    let measured = request_head(form, origin, &format!("{BIG_PATH}?n={}", config.bytes));
    let requested = config.bytes;
    let timeout = config.op_timeout;
    runner.wait(async {
        let mut conn = match HttpConn::connect(hop, timeout, LARGE_BUFFER).await {
            Ok(c) => c,
            Err(e) => return Ok(DownloadResult::failed(requested, e)),
        };
        let mut reader = ResponseReader::new();
        let warm = with_timeout(timeout, conn.exchange(&warmup, &mut reader))
            .await
            .and_then(|r| check(&r, WARMUP_BYTES));
        match warm {
            Ok(Persistence::KeepAlive) => {}
            Ok(Persistence::Close) => match HttpConn::connect(hop, timeout, LARGE_BUFFER).await {
                Ok(c) => conn = c,
                Err(e) => return Ok(DownloadResult::failed(requested, e)),
            },
            Err(e) => return Ok(DownloadResult::failed(requested, e)),
        }

        // A proxy that closed the connection after the warm-up (while idle) gets the
        // request again on a new one, and the clocks start again.
        let mut attempt = 0;
        let (reader, fetched, seconds, cpu) = loop {
            attempt += 1;
            let cpu = procfs::CpuWindow::start(config.pid)?;
            let t0 = Instant::now();
            let mut reader = ResponseReader::new();
            let fetched = with_timeout(config.time_limit, conn.exchange(&measured, &mut reader))
                .await
                .and_then(|r| check(&r, requested));
            let seconds = t0.elapsed().as_secs_f64();
            if let Err(e) = &fetched {
                if attempt == 1 && conn.closed_while_idle(e) {
                    match HttpConn::connect(hop, timeout, LARGE_BUFFER).await {
                        Ok(c) => conn = c,
                        Err(e) => return Ok(DownloadResult::failed(requested, e)),
                    }
                    continue;
                }
            }
            let cpu = cpu.finish()?;
            break (reader, fetched, seconds, cpu);
        };
        Ok(DownloadResult {
            requested,
            bytes: reader.body_len(),
            seconds,
            proxy_cpu: cpu.proxy,
            tool_cpu: cpu.tool,
            machine_cpu: cpu.machine,
            error: fetched.err(),
        })
    })
}
