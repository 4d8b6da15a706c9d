//! The replay engine: runs a server trace's steps over a [`Backend`] (in memory or live)
//! and decides PASS, FAIL (with the byte difference) or SKIP.
//!
//! The engine owns the waiting and matching: it writes what `client:` lines say, reads
//! until one of a step's alternatives matches, none can, or the stream ends or goes quiet,
//! and keeps bytes a step did not use for the next one (a server may answer two messages in
//! one segment). It does not open sockets or drive machines; back ends do.

use crate::matcher::{self, Diff, Eval, Resolved};
use crate::trace::{
    Action, Alternative, Expect, Item, Mode, Pattern, Piece, Requirement, Step, Trace,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use triproxy_wire::TargetAddr;

/// Most bytes kept from one stream while a step waits; a server that sends more fails.
pub const MAX_RECEIVED: usize = 1 << 20;

/// Bounds on waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Longest wait for bytes a step needs (and for a connect).
    pub read_timeout: Duration,
    /// How long a stream must stay silent for `timeout` and `...` to match.
    pub quiet: Duration,
    /// Longest a whole trace may take.
    pub trace_budget: Duration,
    /// Pause between the single-byte writes of `split1` mode.
    pub split_delay: Duration,
}

impl Timing {
    /// For live servers on loopback: reads 3 s, trace 10 s, quiet 250 ms.
    pub const LIVE: Timing = Timing {
        read_timeout: Duration::from_secs(3),
        quiet: Duration::from_millis(250),
        trace_budget: Duration::from_secs(10),
        split_delay: Duration::from_millis(1),
    };
}

/// How a back end writes one `client:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// One write.
    Whole,
    /// One write per byte.
    OneByte,
}

/// Which stream to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// What the server sends to the client.
    Client,
    /// What the BIND peer receives.
    Peer,
}

/// The answer of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recv {
    /// Bytes (or one datagram).
    Data(Vec<u8>),
    /// The other side closed cleanly.
    Eof,
    /// The connection was reset.
    Reset,
    /// Nothing within the time given.
    Quiet,
}

/// What the engine needs from a server under test. Errors are readable messages.
pub trait Backend {
    /// The client writes `data`.
    fn send(&mut self, data: &[u8], chunking: Chunking) -> Result<(), String>;
    /// The client half-closes.
    fn close(&mut self) -> Result<(), String>;
    /// The client waits.
    fn wait(&mut self, d: Duration);
    /// Reads what arrived on `channel`, waiting at most `timeout`.
    fn recv(&mut self, channel: Channel, timeout: Duration) -> Recv;
    /// The BIND peer connects to `addr` (an unspecified IP means the server's); returns the
    /// peer's own address.
    fn peer_connect(&mut self, addr: &TargetAddr) -> Result<SocketAddr, String>;
    /// The BIND peer writes.
    fn peer_send(&mut self, data: &[u8]) -> Result<(), String>;
    /// The BIND peer closes.
    fn peer_close(&mut self) -> Result<(), String>;
    /// The client sends one datagram to the UDP relay at `relay`.
    fn udp_send(&mut self, relay: &TargetAddr, data: &[u8]) -> Result<(), String>;
    /// One datagram for the client, waiting at most `timeout`.
    fn udp_recv(&mut self, timeout: Duration) -> Recv;
}

/// Values a trace names in braces, and which requirements the set-up meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    values: BTreeMap<String, Vec<u8>>,
    /// Credentials of the server under test, if it requires them.
    pub credentials: Option<(Vec<u8>, Vec<u8>)>,
    /// An IPv6 echo target exists.
    pub ipv6: bool,
    /// Name-resolution failures may be provoked.
    pub nxdomain: bool,
    /// The server refuses the `denied` target.
    pub deny: bool,
}

/// Where the harness's targets are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses {
    /// TCP echo.
    pub echo: SocketAddr,
    /// A name that resolves to `echo`'s IP.
    pub echo_host: String,
    /// IPv6 TCP echo, if any.
    pub echo6: Option<SocketAddr>,
    /// Reads, never answers.
    pub sink: SocketAddr,
    /// Nothing listens.
    pub closed: SocketAddr,
    /// The server refuses it, if configured.
    pub denied: Option<SocketAddr>,
    /// UDP echo.
    pub udp_echo: SocketAddr,
    /// HTTP/1.1 origin: answers each request with 200 and the request head as the body.
    pub origin: SocketAddr,
    /// The client's UDP socket.
    pub udp_client: SocketAddr,
    /// A name that does not resolve.
    pub nxdomain: String,
}

fn ip4(sa: SocketAddr) -> Vec<u8> {
    match sa.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip
            .to_ipv4_mapped()
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
            .octets()
            .to_vec(),
    }
}

fn len_byte(s: &[u8]) -> Vec<u8> {
    vec![u8::try_from(s.len()).unwrap_or(u8::MAX)]
}

impl Env {
    /// The values for these targets; `credentials` as (user, password).
    pub fn new(a: &Addresses, credentials: Option<(Vec<u8>, Vec<u8>)>, nxdomain: bool) -> Env {
        let mut v: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut put = |k: &str, b: Vec<u8>| {
            v.insert(k.to_string(), b);
        };
        put("echo.ip4", ip4(a.echo));
        put("echo.port", a.echo.port().to_be_bytes().to_vec());
        put("echo.host", a.echo_host.as_bytes().to_vec());
        put("echo.host.len", len_byte(a.echo_host.as_bytes()));
        put("echo.hostport", a.echo.to_string().into_bytes());
        put("closed.hostport", a.closed.to_string().into_bytes());
        if let Some(e6) = a.echo6 {
            if let IpAddr::V6(ip) = e6.ip() {
                put("echo6.ip6", ip.octets().to_vec());
            }
            put("echo6.port", e6.port().to_be_bytes().to_vec());
        }
        put("sink.ip4", ip4(a.sink));
        put("sink.port", a.sink.port().to_be_bytes().to_vec());
        put("closed.ip4", ip4(a.closed));
        put("closed.port", a.closed.port().to_be_bytes().to_vec());
        if let Some(d) = a.denied {
            put("denied.ip4", ip4(d));
            put("denied.port", d.port().to_be_bytes().to_vec());
            put("denied.hostport", d.to_string().into_bytes());
        }
        put("origin.hostport", a.origin.to_string().into_bytes());
        put("udpecho.ip4", ip4(a.udp_echo));
        put("udpecho.port", a.udp_echo.port().to_be_bytes().to_vec());
        put("udpclient.ip4", ip4(a.udp_client));
        put("udpclient.port", a.udp_client.port().to_be_bytes().to_vec());
        let (user, pass) = credentials
            .clone()
            .unwrap_or_else(|| (b"tester".to_vec(), b"secret-pass".to_vec()));
        put("user.len", len_byte(&user));
        put("pass.len", len_byte(&pass));
        put("user", user);
        put("pass", pass);
        put("nxdomain", a.nxdomain.as_bytes().to_vec());
        put("nxdomain.len", len_byte(a.nxdomain.as_bytes()));
        Env {
            values: v,
            ipv6: a.echo6.is_some(),
            deny: a.denied.is_some(),
            nxdomain,
            credentials,
        }
    }

    /// A harness value by name.
    pub fn value(&self, name: &str) -> Option<&[u8]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// Why `trace` cannot run here, if it cannot.
    pub fn unmet(&self, trace: &Trace) -> Option<String> {
        for r in &trace.requires {
            let why = match r {
                Requirement::Auth if self.credentials.is_none() => {
                    "needs a server that requires username/password (--user/--pass)"
                }
                Requirement::NoAuth if self.credentials.is_some() => {
                    "needs a server without authentication (credentials were given)"
                }
                Requirement::Ipv6 if !self.ipv6 => "no IPv6 loopback echo target",
                Requirement::Nxdomain if !self.nxdomain => {
                    "name-resolution failures not enabled (--nxdomain)"
                }
                Requirement::Deny if !self.deny => "no denied target configured (--denied)",
                _ => continue,
            };
            return Some(why.to_string());
        }
        None
    }
}

/// The bytes of every `client:` / `server:` data line of `trace` that we send (server
/// traces: what the client sends; client traces: what the scripted server sends), with
/// harness values taken from `env`; `None` for a line naming a value `env` lacks. For
/// seeding fuzz corpora from the traces.
pub fn sent_messages(trace: &Trace, env: &Env) -> Vec<Option<Vec<u8>>> {
    trace
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Send(pieces) => Some(pieces),
            _ => None,
        })
        .map(|pieces| {
            let mut out = Vec::new();
            for p in pieces {
                match p {
                    Piece::Bytes(b) => out.extend_from_slice(b),
                    Piece::Value(v) => out.extend_from_slice(env.value(v)?),
                }
            }
            Some(out)
        })
        .collect()
}

/// Why a trace failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The trace line of the failing step (0 if not tied to a step).
    pub line: usize,
    /// That line as written.
    pub step: String,
    /// What went wrong.
    pub message: String,
    /// Expected against received, when bytes were compared.
    pub diff: Option<Box<Diff>>,
}

impl Failure {
    fn at(step: &Step, message: impl Into<String>) -> Failure {
        Failure {
            line: step.line,
            step: step.text.clone(),
            message: message.into(),
            diff: None,
        }
    }

    /// Multi-line text with `indent`.
    pub fn render(&self, indent: &str) -> String {
        let mut out = format!("{indent}line {}: {}\n", self.line, self.message);
        if !self.step.is_empty() {
            out.push_str(&format!("{indent}  trace: {}\n", self.step));
        }
        if let Some(d) = &self.diff {
            out.push_str(&d.render(&format!("{indent}  ")));
            out.push('\n');
        }
        out
    }
}

/// The result of one trace in one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step matched.
    Pass,
    /// A step did not.
    Fail(Failure),
    /// Not run, or stopped at a `=> skip` alternative; the reason.
    Skip(String),
}

impl Outcome {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail(_) => "FAIL",
            Outcome::Skip(_) => "SKIP",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => write!(f, "PASS"),
            Outcome::Skip(r) => write!(f, "SKIP ({r})"),
            Outcome::Fail(x) => write!(f, "FAIL\n{}", x.render("    ")),
        }
    }
}

#[derive(Default)]
struct Inbound {
    buf: Vec<u8>,
    end: Option<Recv>,
}

/// Runs a server-side trace in `mode` over `backend`. The caller checks requirements
/// (see [`Env::unmet`]) first.
pub fn run<B: Backend>(
    trace: &Trace,
    mode: Mode,
    env: &Env,
    backend: &mut B,
    timing: &Timing,
) -> Outcome {
    let mut r = Runner {
        env,
        backend,
        timing,
        deadline: Instant::now() + timing.trace_budget,
        client: Inbound::default(),
        peer: Inbound::default(),
        captures: BTreeMap::new(),
        peer_values: BTreeMap::new(),
    };
    match r.steps(&trace.steps, mode) {
        Ok(None) => r.finish(trace),
        Ok(Some(reason)) => Outcome::Skip(reason),
        Err(f) => Outcome::Fail(f),
    }
}

struct Runner<'a, B> {
    env: &'a Env,
    backend: &'a mut B,
    timing: &'a Timing,
    deadline: Instant,
    client: Inbound,
    peer: Inbound,
    captures: BTreeMap<String, TargetAddr>,
    peer_values: BTreeMap<String, Vec<u8>>,
}

/// `Err` is a failure; `Ok(Some(reason))` a skip.
type StepResult = Result<Option<String>, Failure>;

impl<B: Backend> Runner<'_, B> {
    fn steps(&mut self, steps: &[Step], mode: Mode) -> StepResult {
        let mut i = 0;
        while let Some(step) = steps.get(i) {
            if Instant::now() > self.deadline {
                return Err(Failure::at(
                    step,
                    format!(
                        "trace took longer than {} s",
                        self.timing.trace_budget.as_secs_f32()
                    ),
                ));
            }
            if mode == Mode::Pipelined {
                if let Action::Send(_) = step.action {
                    // Join every `client:` data line up to the next close, wait, peer or
                    // UDP step, and send them before reading the answers in between.
                    let mut joined = Vec::new();
                    let mut j = i;
                    while let Some(s) = steps.get(j) {
                        match &s.action {
                            Action::Send(pieces) => joined.extend(self.data(s, pieces)?),
                            Action::Expect(_) => {}
                            _ => break,
                        }
                        j += 1;
                    }
                    self.backend
                        .send(&joined, Chunking::Whole)
                        .map_err(|e| Failure::at(step, format!("write failed: {e}")))?;
                    for s in steps.get(i..j).unwrap_or_default() {
                        if let Action::Expect(e) = &s.action {
                            if let Some(skip) = self.expect_stream(s, e, Channel::Client)? {
                                return Ok(Some(skip));
                            }
                        }
                    }
                    i = j;
                    continue;
                }
            }
            if let Some(skip) = self.step(step, mode)? {
                return Ok(Some(skip));
            }
            i += 1;
        }
        Ok(None)
    }

    fn step(&mut self, step: &Step, mode: Mode) -> StepResult {
        let io = |what: &str, e: String| Failure::at(step, format!("{what} failed: {e}"));
        match &step.action {
            Action::Send(pieces) => {
                let data = self.data(step, pieces)?;
                let chunking = match mode {
                    Mode::Split1 => Chunking::OneByte,
                    _ => Chunking::Whole,
                };
                self.backend
                    .send(&data, chunking)
                    .map_err(|e| io("write", e))?;
            }
            Action::Close => self.backend.close().map_err(|e| io("close", e))?,
            Action::Wait(d) => self.backend.wait(*d),
            Action::Expect(e) => return self.expect_stream(step, e, Channel::Client),
            Action::PeerConnect(name) => {
                let addr = self.captures.get(name).cloned().ok_or_else(|| {
                    Failure::at(step, format!("no address was captured as `{name}`"))
                })?;
                let peer = self
                    .backend
                    .peer_connect(&addr)
                    .map_err(|e| io(&format!("peer connect to {addr}"), e))?;
                self.peer_values.insert("peer.ip4".into(), ip4(peer));
                self.peer_values
                    .insert("peer.port".into(), peer.port().to_be_bytes().to_vec());
            }
            Action::PeerSend(pieces) => {
                let data = self.data(step, pieces)?;
                self.backend
                    .peer_send(&data)
                    .map_err(|e| io("peer write", e))?;
            }
            Action::PeerClose => self.backend.peer_close().map_err(|e| io("peer close", e))?,
            Action::PeerExpect(e) => return self.expect_stream(step, e, Channel::Peer),
            Action::UdpSend(pieces) => {
                let data = self.data(step, pieces)?;
                let relay = self.captures.get("relay").cloned().ok_or_else(|| {
                    Failure::at(step, "no UDP relay address was captured as `relay`")
                })?;
                self.backend
                    .udp_send(&relay, &data)
                    .map_err(|e| io("UDP send", e))?;
            }
            Action::UdpExpect(e) => return self.expect_datagram(step, e),
            Action::Event(_) | Action::Leftover(_) => {
                return Err(Failure::at(step, "client-trace step in a server trace"))
            }
        }
        Ok(None)
    }

    fn finish(&mut self, trace: &Trace) -> Outcome {
        if self.client.buf.is_empty() {
            return Outcome::Pass;
        }
        let line = trace.steps.last().map_or(0, |s| s.line);
        Outcome::Fail(Failure {
            line,
            step: String::new(),
            message: format!(
                "the server sent {} bytes the trace does not expect",
                self.client.buf.len()
            ),
            diff: Some(Box::new(Diff {
                expected: vec!["(nothing more)".into()],
                received: self.client.buf.clone(),
                offset: 0,
                detail: "unexpected bytes".into(),
            })),
        })
    }

    fn data(&self, step: &Step, pieces: &[Piece]) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        for p in pieces {
            match p {
                Piece::Bytes(b) => out.extend_from_slice(b),
                Piece::Value(v) => out.extend_from_slice(self.lookup(step, v)?),
            }
        }
        Ok(out)
    }

    fn lookup(&self, step: &Step, name: &str) -> Result<&[u8], Failure> {
        self.env
            .value(name)
            .or_else(|| self.peer_values.get(name).map(Vec::as_slice))
            .ok_or_else(|| Failure::at(step, format!("value {{{name}}} is not available here")))
    }

    fn resolve(&self, step: &Step, alt: &Alternative) -> Result<Option<Vec<Resolved>>, Failure> {
        let Pattern::Bytes(items) = &alt.pattern else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Item::Bytes(b) => out.extend(b.iter().map(|&b| Resolved::Byte(b))),
                Item::Value(v) => {
                    out.extend(self.lookup(step, v)?.iter().map(|&b| Resolved::Byte(b)))
                }
                Item::Any(n) => out.extend(std::iter::repeat_n(Resolved::Any, *n)),
                Item::Not(b) => out.push(Resolved::Not(*b)),
                Item::Addr(n) => out.push(Resolved::Addr(n.clone())),
                Item::PortIp4(n) => out.push(Resolved::PortIp4(n.clone())),
                Item::Rest => out.push(Resolved::Rest),
                Item::Head => out.push(Resolved::Head),
            }
        }
        Ok(Some(out))
    }

    fn describe(alt: &Alternative, resolved: &Option<Vec<Resolved>>) -> String {
        let body = match (&alt.pattern, resolved) {
            (Pattern::Close, _) => "close".to_string(),
            (Pattern::Eof, _) => "eof".to_string(),
            (Pattern::Timeout, _) => "timeout (nothing, connection open)".to_string(),
            (Pattern::Bytes(_), Some(r)) => matcher::render_items(r),
            (Pattern::Bytes(_), None) => String::new(),
        };
        match &alt.skip {
            Some(s) => format!("{body} => skip \"{s}\""),
            None => body,
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    fn expect_stream(&mut self, step: &Step, expect: &Expect, channel: Channel) -> StepResult {
        let resolved: Vec<Option<Vec<Resolved>>> = expect
            .alternatives
            .iter()
            .map(|a| self.resolve(step, a))
            .collect::<Result<_, _>>()?;
        let mut quiet = false;
        loop {
            let inbound = match channel {
                Channel::Client => &self.client,
                Channel::Peer => &self.peer,
            };
            let ended = inbound.end.is_some();
            let more = !ended && !quiet;
            let mut evals = Vec::with_capacity(resolved.len());
            for (alt, r) in expect.alternatives.iter().zip(&resolved) {
                let e = match (&alt.pattern, r) {
                    (Pattern::Bytes(_), Some(items)) => matcher::eval(items, &inbound.buf, more),
                    (p, _) => eval_special(special(p), &inbound.buf, &inbound.end, quiet),
                };
                evals.push(e);
            }
            // The first alternative that matched, unless an earlier one may still match.
            let mut decided = None;
            for (i, e) in evals.iter().enumerate() {
                match e {
                    Eval::Mismatch { .. } => continue,
                    Eval::NeedMore => break,
                    Eval::Matched { .. } => {
                        decided = Some(i);
                        break;
                    }
                }
            }
            if let Some(i) = decided {
                if let (Some(Eval::Matched { consumed, captures }), Some(alt)) =
                    (evals.get(i), expect.alternatives.get(i))
                {
                    let inbound = match channel {
                        Channel::Client => &mut self.client,
                        Channel::Peer => &mut self.peer,
                    };
                    inbound.buf.drain(..(*consumed).min(inbound.buf.len()));
                    self.captures
                        .extend(captures.iter().map(|(k, v)| (k.clone(), v.clone())));
                    return Ok(alt.skip.clone());
                }
            }
            if evals.iter().all(|e| matches!(e, Eval::Mismatch { .. })) {
                return Err(self.mismatch(step, expect, &resolved, &evals, channel, quiet));
            }
            // Wait: long for bytes a pattern needs, short if only silence can decide.
            let needs_bytes = expect.alternatives.iter().zip(&evals).any(|(a, e)| {
                matches!(e, Eval::NeedMore)
                    && match &a.pattern {
                        Pattern::Bytes(items) => !matches!(items.last(), Some(Item::Rest)),
                        Pattern::Close | Pattern::Eof => true,
                        Pattern::Timeout => false,
                    }
            });
            let wait = if needs_bytes {
                self.timing.read_timeout
            } else {
                self.timing.quiet
            }
            .min(self.remaining());
            match self.backend.recv(channel, wait) {
                Recv::Data(d) => {
                    quiet = false;
                    let inbound = match channel {
                        Channel::Client => &mut self.client,
                        Channel::Peer => &mut self.peer,
                    };
                    if inbound.buf.len() + d.len() > MAX_RECEIVED {
                        return Err(Failure::at(
                            step,
                            format!("more than {MAX_RECEIVED} bytes received without a match"),
                        ));
                    }
                    inbound.buf.extend_from_slice(&d);
                }
                Recv::Quiet => quiet = true,
                end => {
                    let inbound = match channel {
                        Channel::Client => &mut self.client,
                        Channel::Peer => &mut self.peer,
                    };
                    inbound.end = Some(end);
                }
            }
        }
    }

    fn expect_datagram(&mut self, step: &Step, expect: &Expect) -> StepResult {
        let resolved: Vec<Option<Vec<Resolved>>> = expect
            .alternatives
            .iter()
            .map(|a| self.resolve(step, a))
            .collect::<Result<_, _>>()?;
        let only_silence = expect
            .alternatives
            .iter()
            .all(|a| a.pattern == Pattern::Timeout);
        let wait = if only_silence {
            self.timing.quiet
        } else {
            self.timing.read_timeout
        }
        .min(self.remaining());
        let got = self.backend.udp_recv(wait);
        let mut evals = Vec::new();
        for (alt, r) in expect.alternatives.iter().zip(&resolved) {
            let e = match (&alt.pattern, &got, r) {
                (Pattern::Timeout, Recv::Quiet, _) => Eval::Matched {
                    consumed: 0,
                    captures: BTreeMap::new(),
                },
                (Pattern::Bytes(_), Recv::Data(d), Some(items)) => {
                    match matcher::eval(items, d, false) {
                        Eval::Matched { consumed, .. } if consumed < d.len() => Eval::Mismatch {
                            offset: consumed,
                            why: format!(
                                "{} unexpected bytes at the end of the datagram",
                                d.len() - consumed
                            ),
                        },
                        other => other,
                    }
                }
                (_, Recv::Data(_), _) => Eval::Mismatch {
                    offset: 0,
                    why: "a datagram arrived".into(),
                },
                _ => Eval::Mismatch {
                    offset: 0,
                    why: "no datagram arrived".into(),
                },
            };
            if let Eval::Matched { .. } = e {
                return Ok(alt.skip.clone());
            }
            evals.push(e);
        }
        let received = match got {
            Recv::Data(d) => d,
            _ => Vec::new(),
        };
        let (offset, detail) = closest(&evals);
        Err(Failure {
            line: step.line,
            step: step.text.clone(),
            message: "the datagram did not match".into(),
            diff: Some(Box::new(Diff {
                expected: expect
                    .alternatives
                    .iter()
                    .zip(&resolved)
                    .map(|(a, r)| Self::describe(a, r))
                    .collect(),
                received,
                offset,
                detail,
            })),
        })
    }

    fn mismatch(
        &self,
        step: &Step,
        expect: &Expect,
        resolved: &[Option<Vec<Resolved>>],
        evals: &[Eval],
        channel: Channel,
        quiet: bool,
    ) -> Failure {
        let inbound = match channel {
            Channel::Client => &self.client,
            Channel::Peer => &self.peer,
        };
        let who = match channel {
            Channel::Client => "server",
            Channel::Peer => "peer",
        };
        let state = match (&inbound.end, quiet) {
            (Some(Recv::Reset), _) => " (connection reset)",
            (Some(_), _) => " (connection closed)",
            (None, true) => " (then nothing more)",
            (None, false) => "",
        };
        let (offset, detail) = closest(evals);
        Failure {
            line: step.line,
            step: step.text.clone(),
            message: format!("what the {who} sent did not match{state}"),
            diff: Some(Box::new(Diff {
                expected: expect
                    .alternatives
                    .iter()
                    .zip(resolved)
                    .map(|(a, r)| Self::describe(a, r))
                    .collect(),
                received: inbound.buf.clone(),
                offset,
                detail,
            })),
        }
    }
}

/// The mismatch that got furthest.
fn closest(evals: &[Eval]) -> (usize, String) {
    evals
        .iter()
        .filter_map(|e| match e {
            Eval::Mismatch { offset, why } => Some((*offset, why.clone())),
            _ => None,
        })
        .fold(None::<(usize, String)>, |best, cur| match best {
            Some(b) if b.0 >= cur.0 => Some(b),
            _ => Some(cur),
        })
        .unwrap_or((0, String::new()))
}

#[derive(Clone, Copy)]
enum Special {
    Close,
    Eof,
    Timeout,
}

fn special(p: &Pattern) -> Special {
    match p {
        Pattern::Eof => Special::Eof,
        Pattern::Timeout => Special::Timeout,
        _ => Special::Close,
    }
}

fn eval_special(kind: Special, buf: &[u8], end: &Option<Recv>, quiet: bool) -> Eval {
    let matched = Eval::Matched {
        consumed: 0,
        captures: BTreeMap::new(),
    };
    if !buf.is_empty() {
        let what = match kind {
            Special::Close => "the connection to close",
            Special::Eof => "a clean EOF",
            Special::Timeout => "silence",
        };
        return Eval::Mismatch {
            offset: 0,
            why: format!("expected {what}, received bytes"),
        };
    }
    match (kind, end) {
        (Special::Close, Some(_)) | (Special::Eof, Some(Recv::Eof)) => matched,
        (Special::Eof, Some(_)) => Eval::Mismatch {
            offset: 0,
            why: "expected a clean EOF, the connection was reset".into(),
        },
        (Special::Timeout, Some(_)) => Eval::Mismatch {
            offset: 0,
            why: "expected silence with the connection open, it was closed".into(),
        },
        (Special::Timeout, None) if quiet => matched,
        (Special::Close | Special::Eof, None) if quiet => Eval::Mismatch {
            offset: 0,
            why: "expected the connection to close, it stayed open".into(),
        },
        _ => Eval::NeedMore,
    }
}
