//! In-memory replay: server traces against our `triproxy_socks::server::Server` (or any
//! [`SocksServer`], such as a deliberately broken test double), client traces against our
//! `triproxy_socks::client::Client`. Part of `cargo test`; no socket, no thread.
//!
//! A small stand-in plays the rest of a proxy around the server machine: it checks
//! credentials against the harness's, answers CONNECT (the echo and sink targets exist, the
//! `closed` port refuses, the `denied` target is not allowed, only `localhost` resolves),
//! answers BIND with a listening address and a peer that connects when the trace says so,
//! and answers UDP ASSOCIATE with a relay that echoes datagrams addressed to the UDP echo
//! target (RFC 1928 section 7 header; FRAG != 0 is dropped). The stand-in's addresses are
//! invented (see [`world`]); nothing leaves the process.
//!
//! It is not a session engine: no policy, no logging, no relay pacing.

use crate::matcher::{self, Diff, Eval, Resolved};
use crate::replay::{self, Addresses, Backend, Channel, Chunking, Env, Failure, Outcome, Recv};
use crate::trace::{
    Action, ClientCommand, EventExpect, Expect, Item, Mode, Pattern, Piece, Requirement, Side,
    Step, Trace,
};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use triproxy_socks::client::{Client, ClientConfig, ClientEvent, ClientVersion};
use triproxy_socks::server::{
    AuthVerdict, Command, MethodPolicy, Server, ServerConfig, ServerEvent, State,
};
use triproxy_socks::v5::{self, ReplyCode};
use triproxy_socks::{Credentials, Error};
use triproxy_wire::{TargetAddr, Transmit};

/// The user name the in-memory stand-in accepts.
pub const USER: &[u8] = b"tester";
/// The password the in-memory stand-in accepts.
pub const PASS: &[u8] = b"secret-pass";

/// The server machine as the in-memory replay drives it: the methods of
/// [`triproxy_socks::server::Server`], so that a test double can wrap it.
pub trait SocksServer {
    /// See [`Server::handle_input`].
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error>;
    /// See [`Server::poll_transmit`].
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// See [`Server::poll_event`].
    fn poll_event(&mut self) -> Option<ServerEvent>;
    /// See [`Server::handle_auth`].
    fn handle_auth(&mut self, verdict: AuthVerdict);
    /// See [`Server::handle_granted`].
    fn handle_granted(&mut self, bound: SocketAddr);
    /// See [`Server::handle_bind_peer`].
    fn handle_bind_peer(&mut self, peer: SocketAddr);
    /// See [`Server::handle_refused`].
    fn handle_refused(&mut self, reply: ReplyCode);
    /// See [`Server::handle_eof`].
    fn handle_eof(&mut self) -> Option<Error>;
    /// See [`Server::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant) -> Option<Error>;
    /// See [`Server::state`].
    fn state(&self) -> State;
}

impl SocksServer for Server {
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        Server::handle_input(self, now, input)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        Server::poll_transmit(self)
    }
    fn poll_event(&mut self) -> Option<ServerEvent> {
        Server::poll_event(self)
    }
    fn handle_auth(&mut self, verdict: AuthVerdict) {
        Server::handle_auth(self, verdict)
    }
    fn handle_granted(&mut self, bound: SocketAddr) {
        Server::handle_granted(self, bound)
    }
    fn handle_bind_peer(&mut self, peer: SocketAddr) {
        Server::handle_bind_peer(self, peer)
    }
    fn handle_refused(&mut self, reply: ReplyCode) {
        Server::handle_refused(self, reply)
    }
    fn handle_eof(&mut self) -> Option<Error> {
        Server::handle_eof(self)
    }
    fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        Server::handle_timeout(self, now)
    }
    fn state(&self) -> State {
        Server::state(self)
    }
}

const LOOP4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The stand-in's outgoing socket address (BND of a CONNECT reply).
const OUTGOING: SocketAddr = SocketAddr::new(LOOP4, 50000);
const OUTGOING6: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 50000);
/// Where the stand-in's BIND listens.
const BIND_LISTEN: SocketAddr = SocketAddr::new(LOOP4, 50001);
/// The address the BIND peer connects from.
const PEER: SocketAddr = SocketAddr::new(LOOP4, 50002);
/// The stand-in's UDP relay.
const RELAY: SocketAddr = SocketAddr::new(LOOP4, 50003);

/// The invented addresses of the in-memory world.
pub fn world() -> Addresses {
    Addresses {
        echo: SocketAddr::new(LOOP4, 7),
        echo_host: "localhost".into(),
        echo6: Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 7)),
        sink: SocketAddr::new(LOOP4, 9),
        closed: SocketAddr::new(LOOP4, 1),
        denied: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 80)),
        udp_echo: SocketAddr::new(LOOP4, 7),
        origin: SocketAddr::new(LOOP4, 80),
        udp_client: SocketAddr::new(LOOP4, 40000),
        nxdomain: "nonexistent.invalid".into(),
    }
}

/// The harness values in memory for `trace` (credentials only if it requires them).
pub fn env_for(trace: &Trace) -> Env {
    let creds = trace
        .requires
        .contains(&Requirement::Auth)
        .then(|| (USER.to_vec(), PASS.to_vec()));
    Env::new(&world(), creds, true)
}

/// The server machine's configuration for `trace`: RFC 1929 required if the trace
/// requires `auth`, else no authentication.
pub fn server_config(trace: &Trace) -> ServerConfig {
    ServerConfig {
        methods: if trace.requires.contains(&Requirement::Auth) {
            MethodPolicy::Password
        } else {
            MethodPolicy::NoAuth
        },
        allow_v4: true,
        allow_v5: true,
        handshake_timeout: Duration::from_secs(30),
    }
}

/// Timing for in-memory runs: nothing blocks, so only the trace budget matters.
pub const TIMING: replay::Timing = replay::Timing {
    read_timeout: Duration::ZERO,
    quiet: Duration::ZERO,
    trace_budget: Duration::from_secs(10),
    split_delay: Duration::ZERO,
};

/// Replays `trace` in `mode` against our machines (server or client, by the trace's side).
pub fn replay(trace: &Trace, mode: Mode) -> Outcome {
    match trace.side {
        Side::Server => replay_server(trace, mode, Server::new),
        Side::Client => replay_client(trace, mode),
    }
}

/// Replays a server trace against the machine `make` builds (the real one is
/// `Server::new`).
pub fn replay_server<M: SocksServer>(
    trace: &Trace,
    mode: Mode,
    make: impl FnOnce(Instant, ServerConfig) -> M,
) -> Outcome {
    let env = env_for(trace);
    if let Some(why) = env.unmet(trace) {
        return Outcome::Skip(why);
    }
    let now = Instant::now();
    let machine = make(now, server_config(trace));
    let mut backend = Memory::new(machine, now, env.credentials.clone());
    replay::run(trace, mode, &env, &mut backend, &TIMING)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tunnel {
    None,
    Echo,
    Sink,
    BindPending,
    Peer,
    Udp,
}

/// The in-memory [`Backend`]: a server machine plus the stand-in around it.
#[derive(Debug)]
pub struct Memory<M> {
    machine: M,
    now: Instant,
    world: Addresses,
    credentials: Option<(Vec<u8>, Vec<u8>)>,
    input: Vec<u8>,
    to_client: Vec<u8>,
    server_closed: bool,
    tunnel: Tunnel,
    to_peer: Vec<u8>,
    peer_eof: bool,
    datagrams: VecDeque<Vec<u8>>,
}

/// Most rounds of input, decision and output per call (a handshake needs at most four).
const MAX_PUMP_ROUNDS: usize = 16;
/// Most datagrams queued for the client.
const MAX_DATAGRAMS: usize = 64;

impl<M: SocksServer> Memory<M> {
    /// A back end around `machine`, accepting `credentials` for RFC 1929.
    pub fn new(machine: M, now: Instant, credentials: Option<(Vec<u8>, Vec<u8>)>) -> Self {
        Memory {
            machine,
            now,
            world: world(),
            credentials,
            input: Vec::new(),
            to_client: Vec::new(),
            server_closed: false,
            tunnel: Tunnel::None,
            to_peer: Vec::new(),
            peer_eof: false,
            datagrams: VecDeque::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(t) = self.machine.poll_transmit() {
            if !self.server_closed {
                self.to_client.extend_from_slice(t.as_bytes());
            }
        }
    }

    fn close_server(&mut self) {
        self.server_closed = true;
        self.input.clear();
        if self.tunnel == Tunnel::Peer {
            self.peer_eof = true;
        }
    }

    fn pump(&mut self) {
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut progress = false;
            let reading = matches!(
                self.machine.state(),
                State::Greeting | State::Authenticating | State::AwaitingRequest
            );
            if reading && !self.input.is_empty() {
                // On Err the machine is Closed and its reply (if any) is queued.
                if let Ok(n) = self.machine.handle_input(self.now, &self.input) {
                    let n = n.min(self.input.len());
                    self.input.drain(..n);
                    progress |= n > 0;
                }
            }
            self.drain();
            while let Some(event) = self.machine.poll_event() {
                self.decide(event);
                self.drain();
                progress = true;
            }
            match self.machine.state() {
                State::Closed => {
                    if !self.server_closed {
                        self.close_server();
                    }
                    return;
                }
                State::Established => self.relay_input(),
                _ => {}
            }
            if !progress {
                return;
            }
        }
    }

    fn relay_input(&mut self) {
        let data = std::mem::take(&mut self.input);
        match self.tunnel {
            Tunnel::Echo => self.to_client.extend_from_slice(&data),
            Tunnel::Peer => self.to_peer.extend_from_slice(&data),
            Tunnel::Sink | Tunnel::Udp | Tunnel::None | Tunnel::BindPending => {}
        }
    }

    fn resolve(&self, target: &TargetAddr) -> Option<SocketAddr> {
        match target {
            TargetAddr::Ip(sa) => Some(*sa),
            TargetAddr::Domain(d, port) if d.as_bytes() == self.world.echo_host.as_bytes() => {
                Some(SocketAddr::new(self.world.echo.ip(), *port))
            }
            TargetAddr::Domain(..) => None,
        }
    }

    fn decide(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::Credentials(c) => {
                let ok = self.credentials.as_ref().is_some_and(|(u, p)| {
                    c.username.as_slice() == u.as_slice() && c.password.as_slice() == p.as_slice()
                });
                self.machine.handle_auth(if ok {
                    AuthVerdict::Accepted
                } else {
                    AuthVerdict::Rejected
                });
            }
            ServerEvent::Request(req) => match req.command {
                Command::Connect => match self.resolve(&req.target) {
                    None => self.machine.handle_refused(ReplyCode::HostUnreachable),
                    Some(sa) if self.world.denied.is_some_and(|d| d.ip() == sa.ip()) => {
                        self.machine.handle_refused(ReplyCode::NotAllowed)
                    }
                    Some(sa) if sa == self.world.echo || Some(sa) == self.world.echo6 => {
                        self.tunnel = Tunnel::Echo;
                        self.machine.handle_granted(if sa.is_ipv6() {
                            OUTGOING6
                        } else {
                            OUTGOING
                        });
                    }
                    Some(sa) if sa == self.world.sink => {
                        self.tunnel = Tunnel::Sink;
                        self.machine.handle_granted(OUTGOING);
                    }
                    Some(_) => self.machine.handle_refused(ReplyCode::ConnectionRefused),
                },
                Command::Bind => {
                    self.tunnel = Tunnel::BindPending;
                    self.machine.handle_granted(BIND_LISTEN);
                }
                Command::UdpAssociate => {
                    self.tunnel = Tunnel::Udp;
                    self.machine.handle_granted(RELAY);
                }
            },
        }
    }
}

/// Whether `addr` names `at` (an unspecified IP stands for the server's own, RFC 1928 §6).
fn names(addr: &TargetAddr, at: SocketAddr) -> bool {
    match addr {
        TargetAddr::Ip(sa) => {
            sa.port() == at.port() && (sa.ip() == at.ip() || sa.ip().is_unspecified())
        }
        TargetAddr::Domain(..) => false,
    }
}

impl<M: SocksServer> Backend for Memory<M> {
    fn send(&mut self, data: &[u8], chunking: Chunking) -> Result<(), String> {
        if self.server_closed {
            return Ok(());
        }
        match chunking {
            Chunking::Whole => {
                self.input.extend_from_slice(data);
                self.pump();
            }
            Chunking::OneByte => {
                for &b in data {
                    self.input.push(b);
                    self.pump();
                }
            }
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        self.pump();
        match self.machine.state() {
            State::Established => match self.tunnel {
                Tunnel::Peer => self.peer_eof = true,
                _ => self.close_server(),
            },
            State::Closed => {}
            _ => {
                let _ = self.machine.handle_eof();
                self.drain();
                self.close_server();
            }
        }
        Ok(())
    }

    fn wait(&mut self, d: Duration) {
        self.now += d;
        if self.machine.handle_timeout(self.now).is_some() {
            self.drain();
            self.close_server();
        }
    }

    fn recv(&mut self, channel: Channel, _timeout: Duration) -> Recv {
        let (buf, ended) = match channel {
            Channel::Client => (&mut self.to_client, self.server_closed),
            Channel::Peer => (&mut self.to_peer, self.peer_eof),
        };
        if !buf.is_empty() {
            Recv::Data(std::mem::take(buf))
        } else if ended {
            Recv::Eof
        } else {
            Recv::Quiet
        }
    }

    fn peer_connect(&mut self, addr: &TargetAddr) -> Result<SocketAddr, String> {
        if self.tunnel != Tunnel::BindPending || !names(addr, BIND_LISTEN) {
            return Err(format!("nothing listens at {addr}"));
        }
        self.machine.handle_bind_peer(PEER);
        self.tunnel = Tunnel::Peer;
        self.drain();
        self.pump();
        Ok(PEER)
    }

    fn peer_send(&mut self, data: &[u8]) -> Result<(), String> {
        if self.tunnel != Tunnel::Peer || self.server_closed {
            return Err("the peer's connection is closed".into());
        }
        self.to_client.extend_from_slice(data);
        Ok(())
    }

    fn peer_close(&mut self) -> Result<(), String> {
        if self.tunnel == Tunnel::Peer {
            self.server_closed = true;
        }
        Ok(())
    }

    fn udp_send(&mut self, relay: &TargetAddr, data: &[u8]) -> Result<(), String> {
        if self.tunnel != Tunnel::Udp || self.server_closed || !names(relay, RELAY) {
            return Err(format!("no UDP relay at {relay}"));
        }
        let Ok((header, payload)) = v5::parse_udp(data) else {
            return Ok(()); // a malformed datagram is dropped
        };
        if header.frag != 0 {
            return Ok(()); // RFC 1928 §7: no fragmentation support, drop
        }
        if self.resolve(&header.target) != Some(self.world.udp_echo) {
            return Ok(());
        }
        let reply = v5::UdpHeader {
            frag: 0,
            target: TargetAddr::Ip(self.world.udp_echo),
        };
        let mut out = Vec::with_capacity(reply.encoded_len() + payload.len());
        v5::encode_udp(&reply, &mut out);
        out.extend_from_slice(payload);
        if self.datagrams.len() < MAX_DATAGRAMS {
            self.datagrams.push_back(out);
        }
        Ok(())
    }

    fn udp_recv(&mut self, _timeout: Duration) -> Recv {
        self.datagrams.pop_front().map_or(Recv::Quiet, Recv::Data)
    }
}

/// What our client machine did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Observed {
    Granted(TargetAddr),
    BindPeer(TargetAddr),
    Refused(u8),
    Error(String),
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Observed::Granted(a) => write!(f, "granted {a}"),
            Observed::BindPeer(a) => write!(f, "bind-peer {a}"),
            Observed::Refused(c) => write!(f, "refused {c:02x}"),
            Observed::Error(e) => write!(f, "error ({e})"),
        }
    }
}

struct ClientRun {
    machine: Option<Client>,
    now: Instant,
    input: Vec<u8>,
    output: Vec<u8>,
    events: VecDeque<Observed>,
}

impl ClientRun {
    fn drain(&mut self) {
        let Some(m) = self.machine.as_mut() else {
            return;
        };
        while let Some(t) = m.poll_transmit() {
            self.output.extend_from_slice(t.as_bytes());
        }
        while let Some(e) = m.poll_event() {
            self.events.push_back(match e {
                ClientEvent::Granted { bound } => Observed::Granted(bound),
                ClientEvent::BindPeer { peer } => Observed::BindPeer(peer),
                ClientEvent::Refused { reply } => Observed::Refused(reply.to_u8()),
            });
        }
    }

    fn feed(&mut self) {
        let Some(m) = self.machine.as_mut() else {
            return;
        };
        match m.handle_input(self.now, &self.input) {
            Ok(n) => {
                let n = n.min(self.input.len());
                self.input.drain(..n);
            }
            Err(e) => self.events.push_back(Observed::Error(e.to_string())),
        }
        self.drain();
    }
}

fn client_config(trace: &Trace) -> Option<ClientConfig> {
    let setup = trace.client.as_ref()?;
    let version = match setup.version.as_str() {
        "socks4" => ClientVersion::V4,
        "socks4a" => ClientVersion::V4a,
        _ => ClientVersion::V5,
    };
    let credentials = match &setup.user {
        Some(u) => Credentials::new(u, setup.pass.as_deref().unwrap_or_default()).ok(),
        None => None,
    };
    Some(ClientConfig {
        version,
        credentials,
        command: match setup.command {
            ClientCommand::Connect => Command::Connect,
            ClientCommand::Bind => Command::Bind,
            ClientCommand::UdpAssociate => Command::UdpAssociate,
        },
        target: setup.target.clone(),
        timeout: Duration::from_secs(30),
    })
}

/// Replays a client trace against `triproxy_socks::client::Client`: `client:` lines are what
/// the machine must send, `server:` lines are fed to it, `event:` lines check its outcomes
/// in order, `leftover:` checks what it left unconsumed.
pub fn replay_client(trace: &Trace, mode: Mode) -> Outcome {
    let env = env_for(trace);
    let Some(config) = client_config(trace) else {
        return Outcome::Fail(Failure {
            line: 0,
            step: String::new(),
            message: "client trace without a usable `config:`".into(),
            diff: None,
        });
    };
    let now = Instant::now();
    let mut run = ClientRun {
        machine: None,
        now,
        input: Vec::new(),
        output: Vec::new(),
        events: VecDeque::new(),
    };
    match Client::new(now, config) {
        Ok(m) => run.machine = Some(m),
        Err(e) => run.events.push_back(Observed::Error(e.to_string())),
    }
    run.drain();
    for step in &trace.steps {
        if let Err(f) = client_step(&mut run, step, mode, &env) {
            return Outcome::Fail(f);
        }
    }
    let line = trace.steps.last().map_or(0, |s| s.line);
    if !run.output.is_empty() {
        return Outcome::Fail(Failure {
            line,
            step: String::new(),
            message: format!(
                "the client machine sent {} bytes the trace does not expect",
                run.output.len()
            ),
            diff: Some(Box::new(Diff {
                expected: vec!["(nothing more)".into()],
                received: run.output,
                offset: 0,
                detail: "unexpected bytes".into(),
            })),
        });
    }
    if let Some(e) = run.events.front() {
        return Outcome::Fail(Failure {
            line,
            step: String::new(),
            message: format!("the client machine reported `{e}`, which the trace does not expect"),
            diff: None,
        });
    }
    Outcome::Pass
}

fn fail(step: &Step, message: String) -> Failure {
    Failure {
        line: step.line,
        step: step.text.clone(),
        message,
        diff: None,
    }
}

fn bytes(step: &Step, pieces: &[Piece], env: &Env) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    for p in pieces {
        match p {
            Piece::Bytes(b) => out.extend_from_slice(b),
            Piece::Value(v) => out.extend_from_slice(
                env.value(v)
                    .ok_or_else(|| fail(step, format!("value {{{v}}} is not available")))?,
            ),
        }
    }
    Ok(out)
}

fn client_step(run: &mut ClientRun, step: &Step, mode: Mode, env: &Env) -> Result<(), Failure> {
    match &step.action {
        Action::Send(pieces) => {
            let data = bytes(step, pieces, env)?;
            match mode {
                Mode::Split1 => {
                    for b in data {
                        run.input.push(b);
                        run.feed();
                    }
                }
                _ => {
                    run.input.extend_from_slice(&data);
                    run.feed();
                }
            }
        }
        Action::Close => {
            if let Some(e) = run.machine.as_mut().and_then(|m| m.handle_eof()) {
                run.events.push_back(Observed::Error(e.to_string()));
            }
        }
        Action::Wait(d) => {
            run.now += *d;
            if let Some(e) = run.machine.as_mut().and_then(|m| m.handle_timeout(run.now)) {
                run.events.push_back(Observed::Error(e.to_string()));
            }
        }
        Action::Expect(expect) => client_expect(run, step, expect, env)?,
        Action::Event(want) => {
            let Some(got) = run.events.pop_front() else {
                return Err(fail(step, "the client machine reported nothing".into()));
            };
            let ok = match (want.as_ref(), &got) {
                (EventExpect::Granted(a), Observed::Granted(b)) => a == b,
                (EventExpect::BindPeer(a), Observed::BindPeer(b)) => a == b,
                (EventExpect::Refused(a), Observed::Refused(b)) => a == b,
                (EventExpect::Error, Observed::Error(_)) => true,
                _ => false,
            };
            if !ok {
                return Err(fail(step, format!("the client machine reported `{got}`")));
            }
        }
        Action::Leftover(pieces) => {
            let want = bytes(step, pieces, env)?;
            if run.input != want {
                let offset = run
                    .input
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(run.input.len().min(want.len()));
                return Err(Failure {
                    line: step.line,
                    step: step.text.clone(),
                    message: "the bytes left for the tunnel differ".into(),
                    diff: Some(Box::new(Diff {
                        expected: vec![matcher::render_items(
                            &want.iter().map(|&b| Resolved::Byte(b)).collect::<Vec<_>>(),
                        )],
                        received: run.input.clone(),
                        offset,
                        detail: "leftover bytes differ".into(),
                    })),
                });
            }
        }
        _ => return Err(fail(step, "server-trace step in a client trace".into())),
    }
    Ok(())
}

fn client_expect(
    run: &mut ClientRun,
    step: &Step,
    expect: &Expect,
    env: &Env,
) -> Result<(), Failure> {
    let closed = run
        .machine
        .as_ref()
        .is_none_or(|m| m.state() == triproxy_socks::client::ClientState::Closed);
    let mut shown = Vec::new();
    let mut best: Option<(usize, String)> = None;
    for alt in &expect.alternatives {
        let (eval, text) = match &alt.pattern {
            Pattern::Bytes(items) => {
                let mut r = Vec::new();
                for item in items {
                    match item {
                        Item::Bytes(b) => r.extend(b.iter().map(|&b| Resolved::Byte(b))),
                        Item::Value(v) => {
                            let b = env.value(v).ok_or_else(|| {
                                fail(step, format!("value {{{v}}} is not available"))
                            })?;
                            r.extend(b.iter().map(|&b| Resolved::Byte(b)));
                        }
                        Item::Any(n) => r.extend(std::iter::repeat_n(Resolved::Any, *n)),
                        Item::Not(b) => r.push(Resolved::Not(*b)),
                        Item::Addr(n) => r.push(Resolved::Addr(n.clone())),
                        Item::PortIp4(n) => r.push(Resolved::PortIp4(n.clone())),
                        Item::Rest => r.push(Resolved::Rest),
                        Item::Head => r.push(Resolved::Head),
                    }
                }
                (
                    matcher::eval(&r, &run.output, false),
                    matcher::render_items(&r),
                )
            }
            // Our machine is synchronous: "timeout" means it has nothing more to send.
            Pattern::Timeout if run.output.is_empty() => (
                Eval::Matched {
                    consumed: 0,
                    captures: BTreeMap::new(),
                },
                "timeout".into(),
            ),
            Pattern::Close | Pattern::Eof if run.output.is_empty() && closed => (
                Eval::Matched {
                    consumed: 0,
                    captures: BTreeMap::new(),
                },
                "close".into(),
            ),
            p => (
                Eval::Mismatch {
                    offset: 0,
                    why: format!("expected {p:?}"),
                },
                format!("{p:?}").to_lowercase(),
            ),
        };
        match eval {
            Eval::Matched { consumed, .. } => {
                run.output.drain(..consumed.min(run.output.len()));
                return Ok(());
            }
            Eval::Mismatch { offset, why } => {
                if best.as_ref().is_none_or(|b| offset > b.0) {
                    best = Some((offset, why));
                }
            }
            Eval::NeedMore => {}
        }
        shown.push(text);
    }
    let (offset, detail) = best.unwrap_or_default();
    Err(Failure {
        line: step.line,
        step: step.text.clone(),
        message: "what the client machine sent did not match".into(),
        diff: Some(Box::new(Diff {
            expected: shown,
            received: run.output.clone(),
            offset,
            detail,
        })),
    })
}
