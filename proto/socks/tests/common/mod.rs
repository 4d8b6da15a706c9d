//! In-memory drivers shared by the machine tests: they keep unconsumed bytes as a real
//! driver does, drain every `poll_*` after each call, and record what came out.

#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use triproxy_socks::client::{Client, ClientConfig, ClientEvent, ClientState, ClientVersion};
use triproxy_socks::server::{
    AuthVerdict, Command, MethodPolicy, Server, ServerConfig, ServerEvent, State,
};
use triproxy_socks::v5::ReplyCode;
use triproxy_socks::{ClientError, Credentials, Error};
use triproxy_wire::TargetAddr;

/// The one place tests read the clock; everything after is virtual time.
#[allow(clippy::disallowed_methods)]
pub fn t0() -> Instant {
    Instant::now()
}

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn server_config(methods: MethodPolicy) -> ServerConfig {
    ServerConfig {
        methods,
        allow_v4: true,
        allow_v5: true,
        handshake_timeout: TIMEOUT,
    }
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// How the test's "policy" answers the server's events.
#[derive(Debug, Clone)]
pub struct Decider {
    /// Password that is accepted (any user); None accepts everything.
    pub password: Option<Vec<u8>>,
    /// Refuse every request with this code instead of granting it.
    pub refuse: Option<ReplyCode>,
    /// Address reported in the first success reply.
    pub bound: SocketAddr,
    /// Address reported in the second BIND reply.
    pub peer: SocketAddr,
}

impl Default for Decider {
    fn default() -> Self {
        Decider {
            password: None,
            refuse: None,
            bound: sa("10.0.0.1:1000"),
            peer: sa("203.0.113.9:2000"),
        }
    }
}

impl Decider {
    pub fn decide(&self, server: &mut Server, event: &ServerEvent) {
        match event {
            ServerEvent::Credentials(c) => {
                let ok = self
                    .password
                    .as_ref()
                    .is_none_or(|p| c.password.as_slice() == p.as_slice());
                server.handle_auth(if ok {
                    AuthVerdict::Accepted
                } else {
                    AuthVerdict::Rejected
                });
            }
            ServerEvent::Request(r) => match self.refuse {
                Some(code) => server.handle_refused(code),
                None => {
                    server.handle_granted(self.bound);
                    if r.command == Command::Bind {
                        server.handle_bind_peer(self.peer);
                    }
                }
            },
        }
    }
}

/// Everything a server machine said while a driver fed it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTranscript {
    pub sent: Vec<u8>,
    pub events: Vec<ServerEvent>,
    pub error: Option<Error>,
    /// Bytes the machine did not consume (handed back).
    pub leftover: Vec<u8>,
    pub state: Option<State>,
}

/// Feeds `chunks` one after another to a fresh server, as a driver with a read buffer would.
pub fn drive_server(config: ServerConfig, chunks: &[&[u8]], decider: &Decider) -> ServerTranscript {
    let now = t0();
    let mut server = Server::new(now, config);
    let mut t = ServerTranscript::default();
    let mut buf = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        if t.error.is_none() {
            pump_server(&mut server, now, &mut buf, decider, &mut t);
        }
    }
    // After an error the driver closes: what it still held is discarded, not handed back.
    t.leftover = if t.error.is_some() { Vec::new() } else { buf };
    t.state = Some(server.state());
    t
}

/// Runs the server on `buf` until it makes no more progress.
pub fn pump_server(
    server: &mut Server,
    now: Instant,
    buf: &mut Vec<u8>,
    decider: &Decider,
    t: &mut ServerTranscript,
) {
    loop {
        let result = server.handle_input(now, buf);
        let mut progress = false;
        match result {
            Ok(n) => {
                assert!(n <= buf.len());
                buf.drain(..n);
                progress |= n > 0;
            }
            Err(e) => {
                assert_eq!(
                    server.state(),
                    State::Closed,
                    "error leaves the machine closed"
                );
                assert_eq!(server.poll_event(), None, "no event after an error");
                t.error = Some(e);
            }
        }
        while let Some(tx) = server.poll_transmit() {
            t.sent.extend_from_slice(&tx);
        }
        while let Some(ev) = server.poll_event() {
            decider.decide(server, &ev);
            t.events.push(ev);
            progress = true;
        }
        while let Some(tx) = server.poll_transmit() {
            t.sent.extend_from_slice(&tx);
        }
        if !progress || t.error.is_some() {
            return;
        }
    }
}

/// What happened when a client machine talked to a server machine.
#[derive(Debug)]
pub struct PairOutcome {
    pub client_events: Vec<ClientEvent>,
    pub client_error: Option<ClientError>,
    pub client_state: ClientState,
    /// Bytes the client machine did not consume (handed back).
    pub client_leftover: Vec<u8>,
    pub server: ServerTranscript,
}

pub fn client_config(
    version: ClientVersion,
    command: Command,
    target: TargetAddr,
    credentials: Option<Credentials>,
) -> ClientConfig {
    ClientConfig {
        version,
        credentials,
        command,
        target,
        timeout: TIMEOUT,
    }
}

/// Connects a client machine to a server machine in memory. `server_extra` is appended to
/// what the server sends once it is done (data from the target), `client_extra` to what the
/// client sends after its handshake bytes (its first data).
pub fn run_pair(
    client: ClientConfig,
    server: ServerConfig,
    decider: &Decider,
    client_extra: &[u8],
    server_extra: &[u8],
) -> PairOutcome {
    let now = t0();
    let mut c = Client::new(now, client).expect("valid client config");
    let mut s = Server::new(now, server);
    let mut to_server = Vec::new();
    let mut to_client = Vec::new();
    let mut st = ServerTranscript::default();
    let mut client_events = Vec::new();
    let mut client_error = None;
    let mut extra_sent = (false, false);
    for _round in 0..16 {
        let mut progress = false;
        while let Some(tx) = c.poll_transmit() {
            to_server.extend_from_slice(&tx);
            progress = true;
        }
        if !extra_sent.0 && c.state() == ClientState::Established {
            to_server.extend_from_slice(client_extra);
            extra_sent.0 = true;
        }
        if st.error.is_none() {
            let before = st.sent.len();
            pump_server(&mut s, now, &mut to_server, decider, &mut st);
            let fresh = &st.sent[before..];
            progress |= !fresh.is_empty();
            to_client.extend_from_slice(fresh);
        }
        if !extra_sent.1 && s.state() == State::Established {
            to_client.extend_from_slice(server_extra);
            extra_sent.1 = true;
        }
        if client_error.is_none() {
            match c.handle_input(now, &to_client) {
                Ok(n) => {
                    to_client.drain(..n);
                    progress |= n > 0;
                }
                Err(e) => client_error = Some(e),
            }
            while let Some(ev) = c.poll_event() {
                client_events.push(ev);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    st.leftover = to_server;
    st.state = Some(s.state());
    PairOutcome {
        client_events,
        client_error,
        client_state: c.state(),
        client_leftover: to_client,
        server: st,
    }
}
