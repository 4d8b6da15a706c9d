//! UDP datagram rate: N flows, each a ping-pong with W datagrams in flight
//! ([`datagram`](super::datagram)), through a SOCKS5 UDP association, through a UDP port
//! mapper, or straight to the tool's own UDP echo target. Reports answered datagrams per
//! second over a window after a warm-up, losses, round-trip latency, and the proxy's and
//! the tool's CPU time over the window.
//!
//! - [`UdpVia::Socks5`]: each flow opens its own association (a TCP control connection,
//!   UDP ASSOCIATE with DST 0.0.0.0:0, RFC 1928 section 4) and sends its datagrams to the
//!   relay's BND address with the section 7 header naming the echo target; answers must
//!   come back with a header naming the echo target as their source.
//! - [`UdpVia::Mapper`]: plain datagrams to a port mapper (3proxy's `udppm`) that forwards
//!   them to the echo target; the mapper must be configured with the echo's address, so it
//!   can be bound to a fixed port ([`UdpConfig::echo_port`]).
//! - [`UdpVia::Direct`]: plain datagrams to the echo target (the tool's ceiling).
//!
//! Every request carries its flow number and sequence number, and the rest of the payload
//! is a fixed pattern; an answer must carry all of it back unchanged. "Per datagram"
//! means per answered request: one datagram each way through the proxy. Only loopback
//! addresses are used.

use super::conn::{open_udp_associate, OpError};
use super::datagram::{run_flow, Answer, Exchange, FlowConfig, FlowCounts, MAX_WINDOW};
use super::procfs;
use super::url::ProxyUrl;
use super::LoadError;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use triproxy_socks::v5::{encode_udp, parse_udp, UdpHeader};
use triproxy_wire::TargetAddr;

/// Most flows.
pub const MAX_FLOWS: usize = 256;
/// Smallest payload: the flow number (4 bytes) and sequence number (8 bytes), rounded up.
pub const MIN_SIZE: usize = 16;
/// Largest payload (a SOCKS header is added on top).
pub const MAX_SIZE: usize = 8192;
/// Longest measurement window.
pub const MAX_SECONDS: f64 = 3600.0;
/// Echo target threads (they share one socket).
const ECHO_THREADS: usize = 2;
/// Stack of flow and echo threads.
const THREAD_STACK: usize = 256 * 1024;

/// How the datagrams reach the echo target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpVia {
    /// Straight to the echo target.
    Direct,
    /// Through a SOCKS5 UDP association (the URL must be `socks5://`).
    Socks5(Box<ProxyUrl>),
    /// Through a UDP port mapper listening at this loopback address.
    Mapper(SocketAddr),
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct UdpConfig {
    /// The path to the echo target.
    pub via: UdpVia,
    /// Concurrent flows, 1..=[`MAX_FLOWS`], each with its own socket.
    pub flows: usize,
    /// Datagrams in flight per flow, 1..=[`MAX_WINDOW`].
    pub window: usize,
    /// Payload bytes, [`MIN_SIZE`]..=[`MAX_SIZE`].
    pub size: usize,
    /// Measurement window.
    pub duration: Duration,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// A datagram unanswered this long is lost.
    pub loss_timeout: Duration,
    /// Port of the echo target on 127.0.0.1 (None: the kernel picks).
    pub echo_port: Option<u16>,
    /// The proxy's process, for CPU time.
    pub pid: Option<u32>,
    /// Limit for opening one association.
    pub op_timeout: Duration,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct UdpResult {
    /// The flows' counts, merged.
    pub counts: FlowCounts,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// CPU seconds of the proxy (and descendants) in the window.
    pub proxy_cpu: Option<f64>,
    /// CPU seconds of the tool in the window.
    pub tool_cpu: f64,
    /// Busy CPU seconds of the whole machine in the window.
    pub machine_cpu: f64,
    /// Where the echo target listened.
    pub echo: SocketAddr,
    /// Datagrams the echo target answered during the whole run.
    pub echoed: u64,
}

impl UdpResult {
    /// Answered datagrams per second.
    pub fn per_sec(&self) -> f64 {
        super::per_second(self.counts.answered as f64, self.seconds)
    }

    /// Latency at quantile `q`, in microseconds.
    pub fn latency_us(&self, q: f64) -> Option<f64> {
        self.counts
            .latency
            .value_at_quantile(q)
            .map(|ns| ns as f64 / 1000.0)
    }

    /// Lost datagrams as a percentage of those sent in the window.
    pub fn loss_percent(&self) -> Option<f64> {
        (self.counts.sent > 0).then(|| self.counts.lost as f64 * 100.0 / self.counts.sent as f64)
    }

    /// Proxy CPU microseconds per answered datagram.
    pub fn proxy_cpu_per_dgram_us(&self) -> Option<f64> {
        self.proxy_cpu
            .filter(|_| self.counts.answered > 0)
            .map(|c| c * 1e6 / self.counts.answered as f64)
    }

    /// Tool CPU microseconds per answered datagram.
    pub fn tool_cpu_per_dgram_us(&self) -> Option<f64> {
        (self.counts.answered > 0).then(|| self.tool_cpu * 1e6 / self.counts.answered as f64)
    }

    /// CPU seconds used by other processes in the window (machine - tool - proxy).
    pub fn others_cpu(&self) -> f64 {
        (self.machine_cpu - self.tool_cpu - self.proxy_cpu.unwrap_or(0.0)).max(0.0)
    }
}

/// Runs one UDP measurement. Fails if the echo target or a thread cannot start, or the
/// proxy's `/proc` cannot be read; failures of single flows are counted in the result.
pub fn run(config: &UdpConfig) -> Result<UdpResult, LoadError> {
    if let UdpVia::Socks5(url) = &config.via {
        if url.scheme != super::url::Scheme::Socks5 {
            return Err(LoadError::Usage(
                "a UDP association needs a socks5:// proxy".into(),
            ));
        }
    }
    let flows = config.flows.clamp(1, MAX_FLOWS);
    let window = config
        .duration
        .min(Duration::from_secs_f64(MAX_SECONDS))
        .max(Duration::from_millis(10));
    let window_start = Instant::now() + config.warmup;
    let window_end = window_start + window;
    let hard_deadline = window_end + config.op_timeout + Duration::from_secs(1);
    let echo =
        UdpEcho::start(config.echo_port.unwrap_or(0), hard_deadline).map_err(LoadError::Setup)?;
    let echo_addr = echo.addr;
    let flow_config = FlowConfig {
        window: config.window.clamp(1, MAX_WINDOW),
        loss_timeout: config.loss_timeout,
        window_start,
        window_end,
    };
    let size = config.size.clamp(MIN_SIZE, MAX_SIZE);
    let mut handles = Vec::with_capacity(flows);
    for id in 0..flows {
        let via = config.via.clone();
        let op_timeout = config.op_timeout;
        let h = thread::Builder::new()
            .name("load-udp-flow".to_owned())
            .stack_size(THREAD_STACK)
            .spawn(move || flow(&via, id as u32, size, echo_addr, op_timeout, &flow_config));
        match h {
            Ok(h) => handles.push(h),
            Err(e) => {
                echo.stop();
                return Err(LoadError::Setup(e));
            }
        }
    }

    sleep_until(window_start);
    let cpu = procfs::CpuWindow::start(config.pid);
    let t0 = Instant::now();
    sleep_until(window_end);
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = cpu.and_then(procfs::CpuWindow::finish);

    let mut counts = FlowCounts::default();
    for h in handles {
        match h.join() {
            Ok(c) => counts.merge(&c),
            Err(_) => counts.errors.add(OpError::Io(io::ErrorKind::Other)),
        }
    }
    let echoed = echo.stop();
    let cpu = cpu?;
    Ok(UdpResult {
        counts,
        seconds,
        proxy_cpu: cpu.proxy,
        tool_cpu: cpu.tool,
        machine_cpu: cpu.machine,
        echo: echo_addr,
        echoed,
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

/// One flow: its socket and path, then the ping-pong until the window ends.
fn flow(
    via: &UdpVia,
    id: u32,
    size: usize,
    echo: SocketAddr,
    op_timeout: Duration,
    config: &FlowConfig,
) -> FlowCounts {
    let mut failed = FlowCounts::default();
    let socket = match UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) {
        Ok(s) => s,
        Err(e) => {
            failed.errors.add(OpError::Io(e.kind()));
            return failed;
        }
    };
    // The control connection of an association: held open until the flow ends.
    let mut _control = None;
    let (peer, socks) = match via {
        UdpVia::Direct => (echo, false),
        UdpVia::Mapper(addr) => (*addr, false),
        UdpVia::Socks5(url) => match open_udp_associate(url, op_timeout) {
            Ok((stream, relay)) => {
                _control = Some(stream);
                (relay, true)
            }
            Err(e) => {
                failed.errors.add(e);
                return failed;
            }
        },
    };
    if let Err(e) = socket.connect(peer) {
        failed.errors.add(OpError::Connect(e.kind()));
        return failed;
    }
    let mut exchange = EchoExchange::new(id, size, socks.then_some(echo));
    run_flow(&socket, &mut exchange, config)
}

/// Requests of one flow: `[flow id: u32][seq: u64][pattern]`, behind a SOCKS header when
/// going through an association.
#[derive(Debug)]
pub struct EchoExchange {
    id: u32,
    /// The whole request with seq 0, header included.
    template: Vec<u8>,
    /// Bytes of SOCKS header at the front of `template`.
    header_len: usize,
    /// The echo target, when the datagrams carry a SOCKS header.
    socks_target: Option<SocketAddr>,
}

impl EchoExchange {
    /// Requests of `size` payload bytes for flow `id`; `socks_target` adds the RFC 1928
    /// section 7 header naming it (and requires it on answers).
    pub fn new(id: u32, size: usize, socks_target: Option<SocketAddr>) -> EchoExchange {
        let mut template = Vec::with_capacity(size + 32);
        if let Some(target) = socks_target {
            encode_udp(
                &UdpHeader {
                    frag: 0,
                    target: TargetAddr::Ip(target),
                },
                &mut template,
            );
        }
        let header_len = template.len();
        template.extend_from_slice(&id.to_be_bytes());
        template.extend_from_slice(&0u64.to_be_bytes());
        let size = size.max(MIN_SIZE);
        let mut i = 0u8;
        while template.len() < header_len + size {
            template.push(i.wrapping_mul(31).wrapping_add(id as u8));
            i = i.wrapping_add(1);
        }
        EchoExchange {
            id,
            template,
            header_len,
            socks_target,
        }
    }

    /// The payload part of an answer, after checking its SOCKS header if there is one.
    fn payload<'a>(&self, datagram: &'a [u8]) -> Option<&'a [u8]> {
        match self.socks_target {
            None => Some(datagram),
            Some(target) => match parse_udp(datagram) {
                Ok((h, data)) if h.frag == 0 && h.target == TargetAddr::Ip(target) => Some(data),
                _ => None,
            },
        }
    }
}

impl Exchange for EchoExchange {
    fn request(&mut self, seq: u64, _in_flight: &[Option<u64>], out: &mut Vec<u8>) -> u64 {
        out.extend_from_slice(&self.template);
        let at = self.header_len + 4;
        if let Some(s) = out.get_mut(at..at + 8) {
            s.copy_from_slice(&seq.to_be_bytes());
        }
        seq
    }

    fn answer(&mut self, datagram: &[u8]) -> Answer {
        let Some(payload) = self.payload(datagram) else {
            return Answer::Garbage;
        };
        let expected = self.template.get(self.header_len..).unwrap_or_default();
        if payload.len() != expected.len() {
            return Answer::Garbage;
        }
        let (Some(id), Some(seq), Some(rest), Some(want)) = (
            payload.get(..4),
            payload.get(4..12),
            payload.get(12..),
            expected.get(12..),
        ) else {
            return Answer::Garbage;
        };
        if id != self.id.to_be_bytes() || rest != want {
            return Answer::Garbage;
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(seq);
        Answer::Good(u64::from_be_bytes(n))
    }
}

/// The UDP echo target: answers every datagram to its sender, on `ECHO_THREADS` threads
/// sharing one socket, until stopped or its deadline.
#[derive(Debug)]
pub struct UdpEcho {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpEcho {
    /// Binds 127.0.0.1:`port` (0: the kernel picks) and starts answering.
    pub fn start(port: u16, deadline: Instant) -> io::Result<UdpEcho> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, port))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        let addr = socket.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let mut echo = UdpEcho {
            addr,
            stop: Arc::clone(&stop),
            echoed: Arc::clone(&echoed),
            threads: Vec::new(),
        };
        for _ in 0..ECHO_THREADS {
            let socket = socket.try_clone()?;
            let stop = Arc::clone(&stop);
            let echoed = Arc::clone(&echoed);
            let spawned = thread::Builder::new()
                .name("load-udp-echo".to_owned())
                .stack_size(THREAD_STACK)
                .spawn(move || echo_loop(&socket, &stop, &echoed, deadline));
            match spawned {
                Ok(h) => echo.threads.push(h),
                Err(e) => {
                    echo.stop();
                    return Err(e);
                }
            }
        }
        Ok(echo)
    }

    /// Stops the threads; answers how many datagrams were echoed.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.echoed.load(Ordering::Relaxed)
    }
}

fn echo_loop(socket: &UdpSocket, stop: &AtomicBool, echoed: &AtomicU64, deadline: Instant) {
    let mut buf = vec![0u8; super::datagram::MAX_DATAGRAM];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if from.ip().is_loopback()
                && socket
                    .send_to(buf.get(..n).unwrap_or_default(), from)
                    .is_ok()
            {
                echoed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
