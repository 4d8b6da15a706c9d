//! Request/response flows over UDP, shared by the [`udp`](super::udp) and
//! [`dns`](super::dns) measurements: each flow is one thread with one connected UDP socket
//! that keeps a window of W requests in flight, sends a new one as soon as one is answered
//! or given up, and counts what happened inside the measurement window.
//!
//! What is sent and how an answer is recognised is the caller's [`Exchange`]: every
//! request carries a tag (a sequence number, a DNS ID) that its answer must repeat. A
//! request unanswered after the loss timeout is counted lost and its slot reused, so a
//! lost datagram never stalls a flow; an answer that arrives after that is counted late.
//! Losses are noticed at most a quarter of the timeout late (the slots are scanned that
//! often, not after every datagram).
//!
//! Counting, all inside the window: `sent` requests; `answered`, answers received (the
//! rate; their round trips are the latency histogram); `lost`, requests given up;
//! `failed`, answers that matched a request but said no (a DNS error code); `late`,
//! answers to requests already given up or never sent; `garbage`, datagrams that are not
//! answers at all. Requests still in flight when the window ends are in none of them. A
//! flow stops at the end of the window or after [`MAX_REQUESTS_PER_FLOW`] requests,
//! whichever comes first; every receive waits at most [`RECV_WAIT`].

use super::conn::{ErrorCounts, OpError};
use super::histogram::Histogram;
use std::io;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Most requests in flight per flow.
pub const MAX_WINDOW: usize = 256;
/// Most requests one flow sends in one run (the window normally ends it first).
pub const MAX_REQUESTS_PER_FLOW: u64 = 1_000_000_000;
/// Longest a flow waits in one receive call before checking the clock again.
pub const RECV_WAIT: Duration = Duration::from_millis(20);
/// Largest datagram received.
pub const MAX_DATAGRAM: usize = 65_536;

/// What a flow's datagrams are and how answers are told apart.
pub trait Exchange {
    /// Writes the request for sequence number `seq` into `out` (cleared by the caller) and
    /// answers its tag, which must differ from the tag of every request in `in_flight`.
    fn request(&mut self, seq: u64, in_flight: &[Option<u64>], out: &mut Vec<u8>) -> u64;
    /// Reads a received datagram.
    fn answer(&mut self, datagram: &[u8]) -> Answer;
}

/// What a received datagram is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A good answer to the request with this tag.
    Good(u64),
    /// An answer to the request with this tag that reports a failure (it ends the request
    /// all the same).
    Failed(u64),
    /// Not an answer to any request of this flow (malformed, or carrying other data).
    Garbage,
}

/// How one flow runs.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// Requests in flight, 1..=[`MAX_WINDOW`].
    pub window: usize,
    /// A request unanswered this long is lost.
    pub loss_timeout: Duration,
    /// Start of the measurement window.
    pub window_start: Instant,
    /// End of the measurement window; the flow stops there.
    pub window_end: Instant,
}

/// What one flow (or, merged, all of them) counted inside the window.
#[derive(Debug, Clone, Default)]
pub struct FlowCounts {
    /// Requests sent.
    pub sent: u64,
    /// Good answers received.
    pub answered: u64,
    /// Requests given up after the loss timeout.
    pub lost: u64,
    /// Answers reporting a failure.
    pub failed: u64,
    /// Answers to requests already given up (or duplicated).
    pub late: u64,
    /// Datagrams that are no answer.
    pub garbage: u64,
    /// Round trips of the good answers, in nanoseconds.
    pub latency: Histogram,
    /// Socket errors (whole run, warm-up included) and the flow's set-up failure.
    pub errors: ErrorCounts,
}

impl FlowCounts {
    /// Adds `other`.
    pub fn merge(&mut self, other: &FlowCounts) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.lost += other.lost;
        self.failed += other.failed;
        self.late += other.late;
        self.garbage += other.garbage;
        self.latency.merge(&other.latency);
        self.errors.merge(&other.errors);
    }
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    sent_at: Instant,
}

/// Runs one flow on `socket` (connected to the peer it talks to) until the window ends.
pub fn run_flow(
    socket: &UdpSocket,
    exchange: &mut impl Exchange,
    config: &FlowConfig,
) -> FlowCounts {
    let mut counts = FlowCounts::default();
    let window = config.window.clamp(1, MAX_WINDOW);
    let loss_timeout = config.loss_timeout.max(Duration::from_millis(1));
    let scan_every = (loss_timeout / 4).max(Duration::from_micros(250));
    let wait = RECV_WAIT.min(scan_every);
    if let Err(e) = socket.set_read_timeout(Some(wait)) {
        counts.errors.add(OpError::Io(e.kind()));
        return counts;
    }
    let mut tags: Vec<Option<u64>> = vec![None; window];
    let mut flights: Vec<InFlight> = vec![
        InFlight {
            sent_at: Instant::now()
        };
        window
    ];
    let mut out = Vec::with_capacity(1500);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut seq = 0u64;
    let mut next_scan = Instant::now() + scan_every;
    let in_window = |t: Instant| t >= config.window_start && t < config.window_end;
    loop {
        let now = Instant::now();
        if now >= config.window_end || seq >= MAX_REQUESTS_PER_FLOW {
            break;
        }
        // Fill every free slot.
        for slot in 0..window {
            if tags.get(slot).copied().flatten().is_some() {
                continue;
            }
            out.clear();
            let tag = exchange.request(seq, &tags, &mut out);
            seq += 1;
            let sent_at = Instant::now();
            match socket.send(&out) {
                Ok(_) => {
                    if let (Some(t), Some(f)) = (tags.get_mut(slot), flights.get_mut(slot)) {
                        *t = Some(tag);
                        f.sent_at = sent_at;
                    }
                    if in_window(sent_at) {
                        counts.sent += 1;
                    }
                }
                Err(e) => {
                    counts.errors.add(OpError::Io(e.kind()));
                    // An ICMP error from an earlier datagram, or a full buffer: do not spin.
                    std::thread::sleep(Duration::from_millis(1));
                    break;
                }
            }
        }
        match socket.recv(&mut buf) {
            Ok(n) => {
                let at = Instant::now();
                let answer = exchange.answer(buf.get(..n).unwrap_or_default());
                settle(answer, at, in_window(at), &mut tags, &flights, &mut counts);
            }
            Err(e) if retryable(&e) => {}
            Err(e) => {
                counts.errors.add(OpError::Io(e.kind()));
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let now = Instant::now();
        if now >= next_scan {
            next_scan = now + scan_every;
            for (t, f) in tags.iter_mut().zip(flights.iter()) {
                if t.is_some() && now.saturating_duration_since(f.sent_at) >= loss_timeout {
                    *t = None;
                    if in_window(now) {
                        counts.lost += 1;
                    }
                }
            }
        }
    }
    counts
}

/// Counts one received datagram and frees the slot of the request it answers.
fn settle(
    answer: Answer,
    at: Instant,
    counted: bool,
    tags: &mut [Option<u64>],
    flights: &[InFlight],
    counts: &mut FlowCounts,
) {
    let (tag, good) = match answer {
        Answer::Good(tag) => (tag, true),
        Answer::Failed(tag) => (tag, false),
        Answer::Garbage => {
            counts.garbage += u64::from(counted);
            return;
        }
    };
    let Some(slot) = tags.iter().position(|t| *t == Some(tag)) else {
        counts.late += u64::from(counted);
        return;
    };
    if let Some(t) = tags.get_mut(slot) {
        *t = None;
    }
    if !counted {
        return;
    }
    if good {
        counts.answered += 1;
        if let Some(f) = flights.get(slot) {
            counts
                .latency
                .record_duration(at.saturating_duration_since(f.sent_at));
        }
    } else {
        counts.failed += 1;
    }
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A small xorshift generator for DNS IDs and the like: not for anything that must be
/// unpredictable to an attacker (the load tool only talks to loopback servers it was
/// pointed at).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeded from the clock and `salt` (a flow number).
    pub fn new(salt: u64) -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        XorShift((u64::from(nanos) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}
