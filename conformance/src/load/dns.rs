//! DNS query rate: N clients, each with its own UDP socket, sending A queries for one
//! fixed name to a DNS server (a resolver, or a DNS proxy such as 3proxy's `dnspr`) with
//! W queries in flight ([`datagram`](super::datagram)), over a window after a warm-up.
//! Reports answered queries per second, round-trip latency, and the server's and the
//! tool's CPU time over the window.
//!
//! The cache is warm: the warm-up asks for the same name, so a caching server answers the
//! window from its cache. Queries are built once with `hickory-proto` (RD set, one
//! question, IN A) and sent with a random ID not in flight on that socket. An answer is
//! read minimally, its header only: it must be a response with an ID in flight, and it
//! is good with RCODE NOERROR and at least one answer record, failed otherwise (the query
//! is over either way). The question section is not compared and the records are not
//! read. Only loopback servers are accepted.

use super::conn::OpError;
use super::datagram::{run_flow, Answer, Exchange, FlowConfig, FlowCounts, XorShift, MAX_WINDOW};
use super::procfs;
use super::LoadError;
use hickory_proto::op::{Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

/// Most clients.
pub const MAX_CLIENTS: usize = 1024;
/// Longest measurement window.
pub const MAX_SECONDS: f64 = 3600.0;
/// Stack of client threads.
const THREAD_STACK: usize = 256 * 1024;

/// What to measure.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// The DNS server, on loopback.
    pub server: SocketAddr,
    /// The name asked for (A records).
    pub name: String,
    /// Concurrent clients, 1..=[`MAX_CLIENTS`], each with its own socket.
    pub clients: usize,
    /// Queries in flight per client, 1..=[`MAX_WINDOW`].
    pub window: usize,
    /// Measurement window.
    pub duration: Duration,
    /// Unmeasured time before the window (it warms the server's cache).
    pub warmup: Duration,
    /// A query unanswered this long is lost.
    pub loss_timeout: Duration,
    /// The server's process, for CPU time.
    pub pid: Option<u32>,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct DnsResult {
    /// The clients' counts, merged: `answered` are good answers, `failed` are answers
    /// with another RCODE or no record.
    pub counts: FlowCounts,
    /// Length of the window in seconds.
    pub seconds: f64,
    /// CPU seconds of the server (and descendants) in the window.
    pub proxy_cpu: Option<f64>,
    /// CPU seconds of the tool in the window.
    pub tool_cpu: f64,
    /// Busy CPU seconds of the whole machine in the window.
    pub machine_cpu: f64,
}

impl DnsResult {
    /// Good answers per second.
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

    /// Server CPU microseconds per good answer.
    pub fn proxy_cpu_per_query_us(&self) -> Option<f64> {
        self.proxy_cpu
            .filter(|_| self.counts.answered > 0)
            .map(|c| c * 1e6 / self.counts.answered as f64)
    }

    /// Tool CPU microseconds per good answer.
    pub fn tool_cpu_per_query_us(&self) -> Option<f64> {
        (self.counts.answered > 0).then(|| self.tool_cpu * 1e6 / self.counts.answered as f64)
    }

    /// CPU seconds used by other processes in the window (machine - tool - server).
    pub fn others_cpu(&self) -> f64 {
        (self.machine_cpu - self.tool_cpu - self.proxy_cpu.unwrap_or(0.0)).max(0.0)
    }
}

/// The query for `name` (IN A, RD set) with ID 0, or why the name cannot be asked.
pub fn query_template(name: &str) -> Result<Vec<u8>, LoadError> {
    let bad = |why: &str| LoadError::Usage(format!("--name {name:?}: {why}"));
    let fqdn = Name::from_ascii(name)
        .map_err(|_| bad("not a DNS name"))?
        .append_domain(&Name::root())
        .map_err(|_| bad("too long"))?;
    let mut msg = Message::new();
    msg.set_id(0)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(fqdn, RecordType::A));
    msg.to_vec().map_err(|_| bad("cannot be encoded"))
}

/// Runs one DNS measurement. Fails if the name is not a DNS name, the server is not on
/// loopback, a thread cannot start or the server's `/proc` cannot be read.
pub fn run(config: &DnsConfig) -> Result<DnsResult, LoadError> {
    if !config.server.ip().is_loopback() {
        return Err(LoadError::Usage(
            "the DNS server must be on loopback".into(),
        ));
    }
    let template = query_template(&config.name)?;
    let clients = config.clients.clamp(1, MAX_CLIENTS);
    let window = config
        .duration
        .min(Duration::from_secs_f64(MAX_SECONDS))
        .max(Duration::from_millis(10));
    let window_start = Instant::now() + config.warmup;
    let window_end = window_start + window;
    let flow_config = FlowConfig {
        window: config.window.clamp(1, MAX_WINDOW),
        loss_timeout: config.loss_timeout,
        window_start,
        window_end,
    };
    let mut handles = Vec::with_capacity(clients);
    for id in 0..clients {
        let template = template.clone();
        let server = config.server;
        let h = thread::Builder::new()
            .name("load-dns-client".to_owned())
            .stack_size(THREAD_STACK)
            .spawn(move || client(server, template, id as u64, &flow_config));
        handles.push(h.map_err(LoadError::Setup)?);
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
    let cpu = cpu?;
    Ok(DnsResult {
        counts,
        seconds,
        proxy_cpu: cpu.proxy,
        tool_cpu: cpu.tool,
        machine_cpu: cpu.machine,
    })
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        thread::sleep(t - now);
    }
}

fn client(server: SocketAddr, template: Vec<u8>, id: u64, config: &FlowConfig) -> FlowCounts {
    let mut failed = FlowCounts::default();
    let socket = match UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)) {
        Ok(s) => s,
        Err(e) => {
            failed.errors.add(OpError::Io(e.kind()));
            return failed;
        }
    };
    if let Err(e) = socket.connect(server) {
        failed.errors.add(OpError::Connect(e.kind()));
        return failed;
    }
    let mut exchange = DnsExchange::new(template, id);
    run_flow(&socket, &mut exchange, config)
}

/// Queries of one client: the template with a fresh random ID each.
#[derive(Debug)]
pub struct DnsExchange {
    template: Vec<u8>,
    rng: XorShift,
}

impl DnsExchange {
    /// Queries from `template` ([`query_template`]), IDs seeded with `salt`.
    pub fn new(template: Vec<u8>, salt: u64) -> DnsExchange {
        DnsExchange {
            template,
            rng: XorShift::new(salt),
        }
    }
}

impl Exchange for DnsExchange {
    fn request(&mut self, _seq: u64, in_flight: &[Option<u64>], out: &mut Vec<u8>) -> u64 {
        // At most MAX_WINDOW IDs are in flight, so a free one is found in a few draws;
        // the bound only keeps the loop finite.
        let mut id = self.rng.next_u64() as u16;
        for _ in 0..64 {
            if !in_flight.contains(&Some(u64::from(id))) {
                break;
            }
            id = self.rng.next_u64() as u16;
        }
        out.extend_from_slice(&self.template);
        if let Some(head) = out.get_mut(..2) {
            head.copy_from_slice(&id.to_be_bytes());
        }
        u64::from(id)
    }

    fn answer(&mut self, datagram: &[u8]) -> Answer {
        let mut decoder = BinDecoder::new(datagram);
        let Ok(header) = Header::read(&mut decoder) else {
            return Answer::Garbage;
        };
        if header.message_type() != MessageType::Response {
            return Answer::Garbage;
        }
        let tag = u64::from(header.id());
        if header.response_code() == ResponseCode::NoError && header.answer_count() >= 1 {
            Answer::Good(tag)
        } else {
            Answer::Failed(tag)
        }
    }
}
