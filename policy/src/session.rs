//! The per-connection session engine: one SOCKS, HTTP proxy or port mapper client, from the
//! first byte to the log line.
//!
//! A [`Session`] owns the service's protocol machine ([`triproxy_socks::server::Server`],
//! [`triproxy_http::ProxyServer`] or none for the port mapper, chosen by
//! [`ServicePolicy::protocol`]), consults the service's [`ServicePolicy`] (auth chain,
//! users, ACL) and tells its driver what to do next as
//! [`Intent`]s: resolve this name, connect to these addresses, relay, write this log record,
//! close. The driver (a runtime) carries out each intent and reports back through the typed
//! `handle_*` methods. Because all protocol and policy logic is here, both runtimes run the
//! very same session and contain no SOCKS, HTTP or ACL code.
//!
//! It is not a relay: once [`Intent::Relay`] is emitted the [`crate::relay`] machine runs
//! the tunnel, and its totals and ending come back through [`Session::handle_relay_end`].
//!
//! # Driving a session
//!
//! Right after [`Session::new`] and after every input (`handle_input`, `handle_timeout`,
//! `handle_*` decisions) the driver (in triproxy, the one executor [`crate::exec`]; the
//! example below drives one by hand) drains [`Session::poll_transmit`] (bytes for the
//! client) and then [`Session::poll_intent`] until both are empty, carrying out each intent
//! in order (a port mapper's session asks to resolve or connect before any input: it must
//! not wait for the client to speak first). Bytes that `handle_input` did not consume stay
//! with the driver: once [`Intent::Relay`] arrives they are the client's first data for the
//! target (pipelined after the request) and must be sent there first.
//!
//! ```
//! use std::{sync::Arc, time::{Duration, Instant}};
//! use triproxy_policy::{acl::CivilTime, service::ServicePolicy, session::{Intent, Session}};
//!
//! let now = Instant::now();
//! let policy = Arc::new(ServicePolicy::new(1080));
//! let client = "127.0.0.1:50000".parse().unwrap();
//! let local = "127.0.0.1:1080".parse().unwrap();
//! let time = CivilTime { weekday: 1, seconds_of_day: 3600 };
//! let mut s = Session::new(now, policy, client, local, time);
//!
//! // Greeting (no auth) and CONNECT 127.0.0.1:80 in one write, followed by data.
//! let input = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80, b'G', b'E', b'T'];
//! let used = s.handle_input(now, &input);
//! assert_eq!(&input[used..], b"GET"); // pipelined data is handed back
//! assert_eq!(s.poll_transmit().unwrap().as_bytes(), &[5, 0]); // method selection
//! let Some(Intent::Connect { addrs, .. }) = s.poll_intent() else { panic!() };
//! assert_eq!(addrs[0], "127.0.0.1:80".parse().unwrap());
//! s.handle_connected(now, "127.0.0.1:40000".parse().unwrap(), addrs[0]);
//! assert_eq!(s.poll_transmit().unwrap()[..2], [5, 0]); // reply: succeeded
//! assert!(matches!(s.poll_intent(), Some(Intent::Relay(_))));
//! ```

use crate::acl::{AclRequest, CivilTime, Logging, Operation};
use crate::auth::{AuthDecision, AuthMethod, AuthOutcome};
use crate::bandlim::{Direction, Pacer};
use crate::chain::{Chain, ChainStep};
use crate::connlim::ConnPermit;
use crate::front::{
    service_name, Front, FrontEvent, FrontFailure, FrontRequest, RequestKind, UpstreamStep,
};
use crate::parent::{ParentHop, ParentKind};
use crate::quota::Quota;
use crate::reason::Reason;
use crate::udp::{AssociationPlan, STRANGER_CODE};

mod forward;
pub use crate::relay::{RelayEnd, RelayPlan, RelayReport};
use crate::service::{RelayMode, ServicePolicy, SourceAddrs};
use arrayvec::ArrayVec;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use triproxy_socks::server::{AuthVerdict, Credentials, Version};
use triproxy_wire::{DomainName, LogCode, TargetAddr, Transmit};

/// At most this many resolved addresses are tried for one request.
pub const MAX_CONNECT_ADDRS: usize = 8;

/// What the session asks its runtime to do next. (Large variants are inline on purpose: an
/// intent lives for one step of the driver loop and is never stored in bulk.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Resolve `host`; answer with [`Session::handle_resolved`].
    Resolve {
        /// The name as the client sent it.
        host: DomainName,
        /// The port to attach to each address.
        port: u16,
    },
    /// Connect to the first of `addrs` that accepts, each attempt bounded by `timeout`;
    /// answer with [`Session::handle_connected`] or [`Session::handle_connect_failed`].
    Connect {
        /// Candidate addresses in order of preference (1..=[`MAX_CONNECT_ADDRS`]).
        addrs: ArrayVec<SocketAddr, MAX_CONNECT_ADDRS>,
        /// Limit for each attempt.
        timeout: Duration,
        /// Bind the outgoing socket to this source address of the target's family, if
        /// configured (3proxy `external`); otherwise do not bind at all.
        source: SourceAddrs,
    },
    /// Listen for the one incoming connection of a SOCKS BIND on `ip` (port chosen by the
    /// system); answer with [`Session::handle_bind_listening`] or
    /// [`Session::handle_bind_failed`].
    Bind {
        /// The proxy address to listen on: the `external` address of the expected peer's
        /// family if configured, else the address the client connected to.
        ip: IpAddr,
    },
    /// Wait until `deadline` for a connection on the BIND listener, keeping an eye on the
    /// client (its end of stream ends the wait); answer with
    /// [`Session::handle_bind_accepted`] or [`Session::handle_bind_failed`]. The accepted
    /// socket is then the target of the relay.
    AcceptPeer {
        /// When to give up.
        deadline: Instant,
    },
    /// Open the relay socket of a SOCKS5 UDP association on `ip` (port chosen by the
    /// system); answer with [`Session::handle_associated`] or
    /// [`Session::handle_associate_failed`].
    Associate {
        /// The address the client reached: the one its datagrams can reach.
        ip: IpAddr,
    },
    /// Relay the association's datagrams (the [`crate::udp::Association`] machine decides
    /// about each) until the control connection closes or the association idles out;
    /// answer with [`Session::handle_relay_end`].
    RelayDatagrams(Box<AssociationPlan>),
    /// Relay bytes between client and target in both directions until both are done, as
    /// the plan says; bytes the driver holds unconsumed go to the target first. Answer
    /// with [`Session::handle_relay_end`].
    Relay(RelayPlan),
    /// Parent chain negotiation: write these bytes to the outgoing connection (the one
    /// [`Intent::Connect`] opened); a write failure is reported with
    /// [`Session::handle_target_closed`].
    SendToTarget {
        /// The bytes, in full.
        bytes: Vec<u8>,
    },
    /// Parent chain negotiation: read from the outgoing connection until `deadline` and
    /// feed what arrives to [`Session::handle_target_input`] (bytes it does not consume
    /// stay with the driver: after the last hop's reply they are the target's first data
    /// and go to the client before the relay starts); end of stream or an error:
    /// [`Session::handle_target_closed`]; the deadline: [`Session::handle_timeout`].
    ReadTarget {
        /// When the hop's answer is overdue.
        deadline: Instant,
    },
    /// Plain HTTP forwarding takes the connection over (HTTP proxy, a request other than
    /// CONNECT): from now on the driver moves bytes between the client, the current
    /// outgoing connection and the session's forwarding buffers
    /// ([`Session::forward_client_space`] and the other `forward_*` methods), and carries
    /// out the intents that follow, until [`Intent::Close`]. (The bytes that came with
    /// the first head were consumed by [`Session::handle_input`]: the session has them.)
    Forward,
    /// Moves an outgoing connection between the driver's current slot and its pool of
    /// idle origin connections (HTTP keep-alive to origins; see [`OriginMove`]).
    Origin(OriginMove),
    /// Write this record to the service's log.
    Log(LogRecord),
    /// Flush pending transmits, close both sockets and drop the session.
    Close,
}

/// What to do with an outgoing connection of a forwarding session. The driver keeps up to
/// [`ORIGIN_POOL`] idle ones in numbered slots besides the current one; the session decides
/// every move and knows what each slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginMove {
    /// Put the current connection into this slot (closing what the slot held).
    Park(u8),
    /// Make this slot's connection the current one (closing the current one, if any), then
    /// check that it is still open and silent (a read that would block) and answer with
    /// [`Session::handle_origin_reused`].
    Reuse(u8),
    /// Close this slot's connection.
    Drop(u8),
    /// Close the current connection.
    DropCurrent,
}

/// Idle origin connections a forwarding session keeps.
pub const ORIGIN_POOL: usize = 4;

/// Why an outgoing connection failed, as far as the runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The target refused (RST).
    Refused,
    /// No route to the network.
    NetworkUnreachable,
    /// No route to the host.
    HostUnreachable,
    /// No answer within the connect timeout.
    TimedOut,
    /// No outgoing socket could be made: the process or system is out of descriptors
    /// (`EMFILE`, `ENFILE`) or buffer memory (`ENOBUFS`, `ENOMEM`). Logged as 11, 3proxy's
    /// code for a failed `socket()`, so that an admin tells an overloaded proxy from an
    /// unreachable target (13).
    NoSocket,
    /// Any other failure.
    Other,
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConnectError::Refused => "connection refused",
            ConnectError::NetworkUnreachable => "network unreachable",
            ConnectError::HostUnreachable => "no route to host",
            ConnectError::TimedOut => "timed out",
            ConnectError::NoSocket => "out of sockets or buffer memory",
            ConnectError::Other => "failed",
        })
    }
}

impl ConnectError {
    fn log_code(self) -> LogCode {
        match self {
            ConnectError::NoSocket => LogCode::SOCKET_FAILED,
            _ => LogCode::CONNECT_FAILED,
        }
    }
}

/// Why a SOCKS BIND did not get its incoming connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// No listening socket could be opened (3proxy code 12).
    Listen,
    /// No connection came before the deadline (460).
    Timeout,
    /// The client closed its connection while waiting (460).
    ClientClosed,
    /// `accept()` failed (462).
    Accept,
}

impl core::fmt::Display for BindError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BindError::Listen => "BIND: cannot listen",
            BindError::Timeout => "BIND: no incoming connection in time",
            BindError::ClientClosed => "BIND: client closed while waiting",
            BindError::Accept => "BIND: accept failed",
        })
    }
}

/// Why name resolution gave no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist or has no address of a usable family.
    NotFound,
    /// The name is not valid text for the resolver.
    InvalidName,
    /// The resolver failed or timed out.
    Failed,
}

/// One log record: the facts of a finished connection, rendered by the daemon's
/// `logformat`. Every failure carries a 3proxy [`LogCode`] and a readable `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// 3proxy service name: `SOCK5`, `SOCK4`, `SOC45`, or `SOCKS` before the version is
    /// known; `PROXY` for the HTTP proxy; `TCPPM` for the port mapper.
    pub service: &'static str,
    /// Listening port of the service (`%p`).
    pub listen_port: u16,
    /// 3proxy error code (`%E`).
    pub code: LogCode,
    /// The typed cause of a failure; `None` on success.
    pub reason: Option<Reason>,
    /// The user name, when the client gave one (`%U`).
    pub user: Option<String>,
    /// The client's address (`%C:%c`).
    pub client: SocketAddr,
    /// The proxy address the client connected to (`%i`).
    pub internal: SocketAddr,
    /// The address actually connected to (`%R:%r`), if any.
    pub remote: Option<SocketAddr>,
    /// The proxy's own address of the outgoing connection (`%e`), if any.
    pub external: Option<SocketAddr>,
    /// The destination as requested (`%n`, `%Q:%q`), if a request was read.
    pub requested: Option<TargetAddr>,
    /// Bytes from the target to the client (`%I`).
    pub bytes_in: u64,
    /// Bytes from the client to the target (`%O`).
    pub bytes_out: u64,
    /// Parent proxy hops used (`%h`).
    pub hops: u32,
    /// Service text (`%T`): `CONNECT host:port`, `BIND host:port`, `UDPMAP host:port`
    /// (3proxy's words); for an HTTP method the proxy does not serve, `METHOD host:port`;
    /// for the port mapper, its target host as configured (3proxy's tcppm logs the host
    /// name only).
    pub text: String,
    /// From accept to this record (`%D`).
    pub duration: Duration,
    /// [`Logging::Unlogged`] when the ACL entry that allowed the request was marked
    /// `nolog`: the daemon does not write the record. The engine still produces it, so
    /// that every connection ends the same way and only the writer decides what is kept.
    pub logging: Logging,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshake,
    Resolving,
    Connecting,
    /// Connected to the first parent; negotiating the chain.
    Chaining,
    /// Connected; the front negotiates with the target before the relay (a mail proxy's
    /// upstream login, a TLS check).
    Upstream,
    Binding,
    AwaitingPeer,
    /// UDP ASSOCIATE: the relay socket is being opened.
    Associating,
    Relaying,
    /// HTTP forwarding: the exchange machine has the connection (between requests, or
    /// while one is exchanged); a request's decision goes through the phases above.
    Forwarding,
    /// HTTP forwarding: a pooled origin connection is being checked for reuse.
    Reusing,
    Done,
}

/// One client connection of a SOCKS, HTTP proxy or port mapper service. See the module
/// documentation.
#[derive(Debug)]
pub struct Session {
    policy: Arc<ServicePolicy>,
    /// The protocol machine (SOCKS or HTTP), on the heap and dropped once the tunnel is up
    /// (and its last reply sent), so that an established tunnel keeps only a few hundred
    /// bytes.
    front: Option<Front>,
    version: Option<Version>,
    phase: Phase,
    /// Accept, or the last interim record (`logdump`): where `%D` counts from.
    started: Instant,
    /// Relay bytes (in, out) already told by interim records (`logdump`).
    logged: (u64, u64),
    time: CivilTime,
    client: SocketAddr,
    internal: SocketAddr,
    /// The user name the client presented (for logs).
    user: Option<String>,
    /// RFC 1929 credentials that passed the sub-negotiation; the auth chain runs again with
    /// them (and the ACL) once the target is known.
    credentials: Option<Box<Credentials>>,
    /// The user name the ACL saw when the request was granted (bandwidth pipes match it).
    acl_user: Option<String>,
    /// Whether `strong` verified the user's password when the request was granted (for a
    /// reload's re-check; see [`crate::standing`]).
    verified: bool,
    request: Option<Box<FrontRequest>>,
    remote: Option<SocketAddr>,
    external: Option<SocketAddr>,
    /// The peer IP a BIND request named.
    expected_peer: Option<IpAddr>,
    /// The parent chain drawn for this connection, while it is negotiated.
    chain: Option<Box<Chain>>,
    /// Parent hops used (`%h`).
    hops: u32,
    /// The `connlim` slots this connection holds, given back when the session ends.
    permit: ConnPermit,
    /// The traffic counters this connection's bytes go to (`countin` ...).
    quota: Quota,
    /// The ACL entry that granted the request, if one did.
    rule: Option<usize>,
    /// Plain HTTP forwarding, once the connection is in it.
    forward: Option<Box<forward::Forwarding>>,
    /// 3proxy's service name of the front that made the request (for `auto`, the one its
    /// first byte chose).
    service: Option<&'static str>,
    intents: VecDeque<Intent>,
}

impl Session {
    /// A session for a client that connected from `client` to the proxy's `local` address.
    /// `time` is the local civil time at accept, for weekday and time-period ACL fields.
    pub fn new(
        now: Instant,
        policy: Arc<ServicePolicy>,
        client: SocketAddr,
        local: SocketAddr,
        time: CivilTime,
    ) -> Self {
        let front = Front::new(now, &policy, client);
        let mut session = Session {
            policy,
            front: Some(front),
            version: None,
            phase: Phase::Handshake,
            started: now,
            logged: (0, 0),
            time,
            client,
            internal: local,
            user: None,
            credentials: None,
            acl_user: None,
            verified: false,
            request: None,
            remote: None,
            external: None,
            expected_peer: None,
            chain: None,
            hops: 0,
            permit: ConnPermit::default(),
            quota: Quota::default(),
            rule: None,
            forward: None,
            service: None,
            intents: VecDeque::new(),
        };
        session.take_ready_events(now);
        session
    }

    /// Decides what a front knows before any input: the port mapper's request, ready from
    /// the start, so its connect never waits for the client to send a byte (a server-first
    /// protocol such as SMTP sends none). Other fronts have nothing yet.
    #[inline(never)]
    fn take_ready_events(&mut self, now: Instant) {
        while let Some(event) = self.front.as_mut().and_then(|f| f.poll_event()) {
            self.on_event(now, event);
        }
    }

    /// Feeds bytes from the client; returns how many were consumed. Unconsumed bytes stay
    /// with the driver (see the module documentation). Malformed input ends the session:
    /// the failure reply comes out of `poll_transmit`, then `Log` and `Close` intents.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut used = 0;
        while self.phase == Phase::Handshake {
            let rest = input.get(used..).unwrap_or_default();
            let Some(front) = self.front.as_mut() else {
                break;
            };
            let consumed = match front.handle_input(now, rest) {
                Ok(n) => n,
                Err(f) => {
                    self.finish(now, f.code, Some(f.reason), 0, 0);
                    return input.len();
                }
            };
            used += consumed;
            let mut events = false;
            while let Some(event) = self.front.as_mut().and_then(|f| f.poll_event()) {
                events = true;
                self.on_event(now, event);
            }
            if self.forward.is_some() {
                // Forwarding took over: what followed the head is the exchange's.
                self.forward_push_input(now, input.get(used..).unwrap_or_default());
                return input.len();
            }
            let waiting_for_bytes = self.front.as_ref().is_some_and(|f| f.wants_input());
            if (consumed == 0 && !events) || !waiting_for_bytes || used >= input.len() {
                break;
            }
        }
        used
    }

    /// The client closed its side (or its socket failed) before the relay started.
    /// (A forwarding session takes it as the client gone: forwarding itself reports a
    /// half-close with [`Session::forward_client_read`] of 0 bytes.)
    pub fn handle_client_eof(&mut self, now: Instant) {
        if self.phase == Phase::Done {
            return;
        }
        if self.forward.is_some() {
            self.forward_client_failed(now);
            return;
        }
        match self.front.as_mut().and_then(|f| f.handle_eof()) {
            Some(f) => self.finish(now, f.code, Some(f.reason), 0, 0),
            None => self.finish(now, LogCode(441), Some(Reason::ClientClosed), 0, 0),
        }
    }

    /// The earliest time at which [`Session::handle_timeout`] must be called, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Handshake => self.front.as_ref().and_then(|f| f.poll_timeout()),
            Phase::Chaining => self.chain.as_ref().and_then(|c| c.poll_timeout()),
            Phase::Upstream => self.front.as_ref().and_then(|f| f.poll_timeout()),
            Phase::Forwarding => self.forward_timeout(),
            _ => None,
        }
    }

    /// Lets time pass; a handshake past its deadline ends the session.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Chaining {
            if let Some(chain) = self.chain.as_mut() {
                chain.handle_timeout(now);
            }
            self.advance_chain(now);
            return;
        }
        if self.phase == Phase::Forwarding {
            self.forward_time(now);
            return;
        }
        if self.phase == Phase::Upstream {
            if let Some(f) = self.front.as_mut().and_then(|f| f.handle_timeout(now)) {
                self.upstream_failed(now, f);
            }
            return;
        }
        if self.phase != Phase::Handshake {
            return;
        }
        if let Some(f) = self.front.as_mut().and_then(|f| f.handle_timeout(now)) {
            self.finish(now, f.code, Some(f.reason), 0, 0);
        }
    }

    /// The next bytes to write to the client.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.front.as_mut().and_then(|f| f.poll_transmit());
        if t.is_none() && matches!(self.phase, Phase::Relaying | Phase::Done) {
            // The last reply is out: the handshake machine is no longer needed.
            self.front = None;
        }
        t
    }

    /// The next thing the runtime must do.
    pub fn poll_intent(&mut self) -> Option<Intent> {
        let intent = self.intents.pop_front();
        if self.intents.is_empty() && self.intents.capacity() > 0 {
            // Give the queue's memory back: a tunnel may stay open for hours.
            self.intents = VecDeque::new();
        }
        intent
    }

    /// The traffic quota of this connection, chosen when its request was granted: the
    /// relay charges every chunk it moves to it and stops with code 10 when it is spent.
    /// Empty until then, and when no `count*` rule applies.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The most client bytes the handshake may need to hold at once (0: the executor's
    /// default buffer is enough). A TLS front peeks at a whole ClientHello.
    pub fn max_input(&self) -> usize {
        self.front.as_ref().map_or(0, |f| f.max_input())
    }

    /// The policy of the service this session belongs to.
    pub fn policy(&self) -> Arc<ServicePolicy> {
        Arc::clone(&self.policy)
    }

    /// Whether the session has ended (its `Close` intent was emitted).
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The answer to [`Intent::Resolve`].
    pub fn handle_resolved(&mut self, now: Instant, result: Result<&[SocketAddr], ResolveError>) {
        if self.phase != Phase::Resolving {
            return;
        }
        match result {
            Ok(addrs) if !addrs.is_empty() => self.authorize_and_connect(now, addrs),
            Ok(_) => self.refuse(
                now,
                LogCode::HOST_NOT_FOUND,
                Reason::Resolve(ResolveError::NotFound),
            ),
            Err(e) => self.refuse(now, LogCode::HOST_NOT_FOUND, Reason::Resolve(e)),
        }
    }

    /// The answer to [`Intent::Connect`]: connected from `local` to `peer`.
    pub fn handle_connected(&mut self, now: Instant, local: SocketAddr, peer: SocketAddr) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.remote = Some(peer);
        self.external = Some(local);
        if let Some(chain) = self.chain.as_mut() {
            self.phase = Phase::Chaining;
            chain.start_hop(now);
            self.advance_chain(now);
            return;
        }
        self.grant_tunnel(now, local);
    }

    /// The tunnel is open (directly or through the chain): the success reply and the relay
    /// (or, when forwarding, the request goes out on it; or first the front's own
    /// negotiation with the target).
    fn grant_tunnel(&mut self, now: Instant, local: SocketAddr) {
        if self.forward.is_some() {
            self.route_request(now);
            return;
        }
        if self.phase != Phase::Upstream && self.front.as_ref().is_some_and(|f| f.has_upstream()) {
            self.phase = Phase::Upstream;
            if let Some(f) = self.front.as_mut() {
                f.handle_connected(now);
            }
            self.advance_upstream(now, local);
            return;
        }
        // RFC 1928 section 6: BND is the address the server assigned to connect to the
        // target, i.e. the outgoing socket's local address (3proxy reports the
        // client-facing address instead).
        if let Some(f) = self.front.as_mut() {
            f.handle_granted(local);
        }
        self.phase = Phase::Relaying;
        let relay = self.relay_intent();
        self.intents.push_back(relay);
    }

    /// The answer to [`Intent::Bind`]: listening on `addr`. Sends the first BIND reply (with
    /// that address, for the client to pass to its peer) and asks to wait for the peer.
    pub fn handle_bind_listening(&mut self, now: Instant, addr: SocketAddr) {
        if self.phase != Phase::Binding {
            return;
        }
        if let Some(f) = self.front.as_mut() {
            f.handle_granted(addr);
        }
        self.phase = Phase::AwaitingPeer;
        self.intents.push_back(Intent::AcceptPeer {
            deadline: now + self.policy.timeouts.bind_wait,
        });
    }

    /// The answer to [`Intent::AcceptPeer`]: `peer` connected to our `local` address. A peer
    /// from another IP than the request named (unless it named `0.0.0.0`/`::`) is refused
    /// with code 470; otherwise the second reply goes out and the relay starts.
    pub fn handle_bind_accepted(&mut self, now: Instant, local: SocketAddr, peer: SocketAddr) {
        if self.phase != Phase::AwaitingPeer {
            return;
        }
        let expected = self.expected_peer.filter(|ip| !ip.is_unspecified());
        if expected.is_some_and(|ip| ip != peer.ip()) {
            self.refuse(now, LogCode(470), Reason::BindPeerMismatch { peer });
            return;
        }
        self.remote = Some(peer);
        self.external = Some(local);
        if let Some(f) = self.front.as_mut() {
            f.handle_bind_peer(peer);
        }
        self.phase = Phase::Relaying;
        let relay = self.relay_intent();
        self.intents.push_back(relay);
    }

    /// The answer to [`Intent::Bind`] or [`Intent::AcceptPeer`] when it failed.
    pub fn handle_bind_failed(&mut self, now: Instant, error: BindError) {
        if !matches!(self.phase, Phase::Binding | Phase::AwaitingPeer) {
            return;
        }
        let code = match error {
            BindError::Listen => LogCode::BIND_FAILED,
            BindError::Timeout | BindError::ClientClosed => LogCode(460),
            BindError::Accept => LogCode(462),
        };
        self.refuse(now, code, Reason::Bind(error));
    }

    /// The answer to [`Intent::Connect`]: every address failed; `error` is the last failure.
    pub fn handle_connect_failed(&mut self, now: Instant, error: ConnectError) {
        if self.phase != Phase::Connecting {
            return;
        }
        let parent = self.chain.as_ref().and_then(|c| c.first_addr());
        self.refuse(now, error.log_code(), Reason::Connect { error, parent });
    }

    /// Bytes read from the outgoing connection during [`Intent::ReadTarget`]; returns how
    /// many were consumed. The rest stays with the driver (see [`Intent::ReadTarget`]).
    pub fn handle_target_input(&mut self, now: Instant, input: &[u8]) -> usize {
        if self.phase == Phase::Upstream {
            let result = self
                .front
                .as_mut()
                .map(|f| f.handle_upstream_input(now, input));
            let used = match result {
                Some(Ok(n)) => n,
                Some(Err(f)) => {
                    self.upstream_failed(now, f);
                    return input.len();
                }
                None => 0,
            };
            let local = self.external.unwrap_or(self.internal);
            self.advance_upstream(now, local);
            return used;
        }
        if self.phase != Phase::Chaining {
            return 0;
        }
        let used = self
            .chain
            .as_mut()
            .map_or(0, |c| c.handle_input(now, input));
        self.advance_chain(now);
        used
    }

    /// The outgoing connection reached end of stream or failed during
    /// [`Intent::SendToTarget`] or [`Intent::ReadTarget`].
    pub fn handle_target_closed(&mut self, now: Instant) {
        if self.phase == Phase::Upstream {
            if let Some(f) = self.front.as_mut().map(|f| f.handle_upstream_eof()) {
                self.upstream_failed(now, f);
            }
            return;
        }
        if self.phase != Phase::Chaining {
            return;
        }
        if let Some(c) = self.chain.as_mut() {
            c.handle_closed();
        }
        self.advance_chain(now);
    }

    /// Turns the front's upstream negotiation into intents, until it is established (the
    /// relay starts) or fails.
    #[inline(never)]
    fn advance_upstream(&mut self, now: Instant, local: SocketAddr) {
        loop {
            let Some(front) = self.front.as_mut() else {
                return;
            };
            match front.poll_upstream() {
                UpstreamStep::Send(bytes) => self.intents.push_back(Intent::SendToTarget { bytes }),
                UpstreamStep::Read(deadline) => {
                    self.intents.push_back(Intent::ReadTarget { deadline });
                    return;
                }
                UpstreamStep::Established => {
                    self.grant_tunnel(now, local);
                    return;
                }
                UpstreamStep::Failed(f) => {
                    self.upstream_failed(now, f);
                    return;
                }
            }
        }
    }

    /// The front's upstream negotiation failed: its error answer (queued by the front)
    /// goes to the client, and the connection ends with the failure's code.
    fn upstream_failed(&mut self, now: Instant, failure: FrontFailure) {
        self.intents
            .retain(|i| !matches!(i, Intent::SendToTarget { .. }));
        self.finish(now, failure.code, Some(failure.reason), 0, 0);
    }

    /// Turns the chain's next step into intents.
    fn advance_chain(&mut self, now: Instant) {
        loop {
            let Some(chain) = self.chain.as_mut() else {
                return;
            };
            match chain.step() {
                ChainStep::Send(bytes) => self.intents.push_back(Intent::SendToTarget { bytes }),
                ChainStep::Read(deadline) => {
                    self.intents.push_back(Intent::ReadTarget { deadline });
                    return;
                }
                ChainStep::Established => {
                    self.chain = None;
                    let local = self.external.unwrap_or(self.internal);
                    self.grant_tunnel(now, local);
                    return;
                }
                ChainStep::Failed(f) => {
                    self.chain = None;
                    // Bytes queued for the parent are moot now.
                    self.intents
                        .retain(|i| !matches!(i, Intent::SendToTarget { .. }));
                    self.refuse(now, f.code, Reason::Parent(f.reason));
                    return;
                }
            }
        }
    }

    /// Whether its service re-checks established tunnels on a reload (`force`).
    pub fn force(&self) -> bool {
        self.policy.force
    }

    /// What the tunnel was granted on, for a reload's re-check under `force`.
    pub fn standing(&self) -> crate::standing::Standing {
        let requested = self.request.as_ref().map(|r| &r.target);
        let target_ip = match requested.and_then(|t| t.ip()) {
            Some(ip) => Some(ip),
            None if self.hops == 0 => self.remote.map(|a| a.ip()),
            None => None,
        };
        crate::standing::Standing {
            client: self.client.ip(),
            user: self.user.as_deref().map(Box::from),
            verified: self.verified,
            target_host: self
                .request
                .as_ref()
                .and_then(|r| r.target.domain())
                .map(|d| Box::new(d.clone())),
            target_ip,
            port: requested.map(|t| t.port()),
            operation: self.operation(),
            users: Arc::clone(&self.policy.users),
        }
    }

    /// The answer to [`Intent::Relay`].
    pub fn handle_relay_end(&mut self, now: Instant, report: RelayReport) {
        if self.phase != Phase::Relaying {
            return;
        }
        // Interim records (`logdump`) already told the bytes up to their moment.
        let report = RelayReport {
            bytes_in: report.bytes_in.saturating_sub(self.logged.0),
            bytes_out: report.bytes_out.saturating_sub(self.logged.1),
            ..report
        };
        let reason = match report.end {
            RelayEnd::Clean => None,
            other => Some(Reason::Relay(other)),
        };
        self.finish(
            now,
            report.end.log_code(),
            reason,
            report.bytes_in,
            report.bytes_out,
        );
    }

    /// `logdump`: the interim record of a tunnel whose `progress` (the relay's counts so
    /// far) passed a threshold since the last record, or `None`. As in 3proxy the record
    /// has code 0 and the bytes and time since the previous record; the next record (an
    /// interim one or the last) starts counting from here.
    pub fn interim_record(&mut self, now: Instant, progress: &RelayReport) -> Option<LogRecord> {
        let dump = self.policy.logdump;
        if dump.is_off() || self.phase != Phase::Relaying {
            return None;
        }
        let bytes_in = progress.bytes_in.saturating_sub(self.logged.0);
        let bytes_out = progress.bytes_out.saturating_sub(self.logged.1);
        if !dump.is_due(bytes_in, bytes_out) {
            return None;
        }
        let record = self.record(now, LogCode::SUCCESS, None, bytes_in, bytes_out);
        self.logged = (progress.bytes_in, progress.bytes_out);
        self.started = now;
        Some(record)
    }

    /// Out of line, as is [`Session::authorize_and_connect`]: `handle_input` calls the
    /// parser from its own frame, so every local of the decision code inlined there would
    /// push the parser's frames deeper, and the deepest stack page of a handshake is what
    /// an idle std tunnel keeps resident.
    #[inline(never)]
    fn on_event(&mut self, now: Instant, event: FrontEvent) {
        match event {
            FrontEvent::Credentials(c) => {
                self.user = Some(String::from_utf8_lossy(&c.username).into_owned());
                let outcome = self.policy.auth.authenticate_cached(
                    &self.policy.users,
                    self.policy.authcache.as_ref().map(|a| a.at(now)),
                    self.client.ip(),
                    Some(&c.username),
                    Some(&c.password),
                );
                match outcome {
                    AuthOutcome::Authenticated { .. } => {
                        self.credentials = Some(c);
                        if let Some(f) = self.front.as_mut() {
                            f.handle_auth(AuthVerdict::Accepted);
                        }
                    }
                    AuthOutcome::Failed(code) => {
                        // RFC 1929: a failure status, then the server closes the connection
                        // (3proxy answers success here and fails the request later).
                        if let Some(f) = self.front.as_mut() {
                            f.handle_auth(AuthVerdict::Rejected);
                        }
                        self.finish(now, code, Some(refusal_reason(code)), 0, 0);
                    }
                }
            }
            FrontEvent::Request(request) => self.on_request(now, request),
            FrontEvent::CredentialsTooLong(request) => {
                self.note_request(request);
                self.refuse(now, LogCode::USER_NOT_FOUND, Reason::CredentialsTooLong);
            }
        }
    }

    /// Keeps what the client asked for (for the decision and the log).
    fn note_request(&mut self, mut request: Box<FrontRequest>) {
        if let Some(id) = &request.user_id {
            self.user = Some(String::from_utf8_lossy(id).into_owned());
        }
        if let Some(c) = request.credentials.take() {
            self.user = Some(String::from_utf8_lossy(&c.username).into_owned());
            self.credentials = Some(c);
        }
        self.version = self.front.as_ref().and_then(|f| f.version());
        // (A forwarding connection's later requests come without the front: the name
        // stays the one its first request set.)
        if let Some(f) = self.front.as_ref() {
            self.service = Some(f.service_name(&self.policy.protocol));
        }
        self.request = Some(request);
    }

    /// Requests are boxed all the way from the front to `self.request`, and a name is
    /// resolved out of line: this frame sits under every ACL decision of a handshake.
    fn on_request(&mut self, now: Instant, request: Box<FrontRequest>) {
        let kind = request.kind;
        let ip = match request.target {
            TargetAddr::Ip(addr) => Some(addr),
            TargetAddr::Domain(..) => None,
        };
        self.note_request(request);
        if kind == RequestKind::Forward {
            self.start_forwarding(now);
            return;
        }
        if kind == RequestKind::UdpAssociate {
            self.authorize_association(now, ip);
            return;
        }
        match ip {
            Some(addr) => self.authorize_and_connect(now, &[addr]),
            None => self.resolve_target(),
        }
    }

    /// UDP ASSOCIATE: the auth chain and the ACL with what the request names (usually
    /// `0.0.0.0:0`, which no address field of an ACL entry refuses), then the relay socket.
    /// Each datagram is checked again with its real destination.
    #[inline(never)]
    fn authorize_association(&mut self, now: Instant, ip: Option<SocketAddr>) {
        let named = ip.unwrap_or(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
        if self.authorize(now, &[named]).is_none() {
            return;
        }
        self.phase = Phase::Associating;
        self.intents.push_back(Intent::Associate {
            ip: self.internal.ip(),
        });
    }

    /// The answer to [`Intent::Associate`]: the relay socket listens on `addr`. The reply
    /// names it (RFC 1928 section 7: where the client sends its datagrams), and the relay
    /// starts.
    pub fn handle_associated(&mut self, now: Instant, addr: SocketAddr) {
        if self.phase != Phase::Associating {
            return;
        }
        if let Some(f) = self.front.as_mut() {
            f.handle_granted(addr);
        }
        self.external = Some(addr);
        self.phase = Phase::Relaying;
        let (to_client, to_target) = self.pacers(None);
        let plan = AssociationPlan {
            policy: Arc::clone(&self.policy),
            client_ip: self.client.ip(),
            client_port: self.request.as_ref().and_then(|r| match r.target {
                TargetAddr::Ip(a) if !a.ip().is_unspecified() || a.port() != 0 => Some(a.port()),
                _ => None,
            }),
            acl_user: self.acl_user.clone(),
            check_acl: !self.policy.auth.is_none(),
            time: self.time,
            quota: self.quota.clone(),
            to_client,
            to_target,
            notice: self.record(now, STRANGER_CODE, None, 0, 0),
        };
        self.intents
            .push_back(Intent::RelayDatagrams(Box::new(plan)));
    }

    /// The relay socket of a UDP association could not be opened (code 12).
    pub fn handle_associate_failed(&mut self, now: Instant) {
        if self.phase != Phase::Associating {
            return;
        }
        self.refuse(now, LogCode::BIND_FAILED, Reason::Bind(BindError::Listen));
    }

    /// Asks for the requested name to be resolved.
    #[inline(never)]
    fn resolve_target(&mut self) {
        if let Some(TargetAddr::Domain(host, port)) = self.request.as_ref().map(|r| &r.target) {
            let intent = Intent::Resolve {
                host: host.clone(),
                port: *port,
            };
            self.phase = Phase::Resolving;
            self.intents.push_back(intent);
        }
    }

    /// Runs the auth chain and ACL for each candidate address and connects to the allowed
    /// ones. Checking every address (not just the first) means a name that resolves to both
    /// an allowed and a denied address cannot be used to reach the denied one.
    #[inline(never)]
    fn authorize_and_connect(&mut self, now: Instant, candidates: &[SocketAddr]) {
        let Some(addrs) = self.authorize(now, candidates) else {
            return;
        };
        self.connect_allowed(addrs);
    }

    /// The auth chain, the ACL and the limits for each candidate address: the allowed
    /// ones (the parent chain of the first one's ACL entry drawn), or None once the
    /// request is refused.
    fn authorize(
        &mut self,
        now: Instant,
        candidates: &[SocketAddr],
    ) -> Option<ArrayVec<SocketAddr, MAX_CONNECT_ADDRS>> {
        let (user, password) = match &self.credentials {
            Some(c) => (Some(&c.username[..]), Some(&c.password[..])),
            None => (self.user.as_deref().map(str::as_bytes), None),
        };
        let host = self.request.as_ref().and_then(|r| r.target.domain());
        let mut addrs = ArrayVec::<SocketAddr, MAX_CONNECT_ADDRS>::new();
        let mut first_refusal = None;
        let mut first_rule = None;
        let mut cached_user = None;
        for addr in candidates.iter().take(MAX_CONNECT_ADDRS) {
            let request = AclRequest {
                user: None,
                client: self.client.ip(),
                target_host: host,
                target_ip: Some(addr.ip()),
                port: Some(addr.port()),
                operation: self.operation(),
                time: self.time,
            };
            let decision = self.policy.auth.decide_cached(
                &self.policy.users,
                self.policy.authcache.as_ref().map(|a| a.at(now)),
                user,
                password,
                &self.policy.acl,
                &request,
            );
            match decision {
                AuthDecision::Granted {
                    acl_user,
                    rule,
                    method,
                } => {
                    if addrs.is_empty() {
                        if matches!(method, AuthMethod::Cache | AuthMethod::CacheAcl) {
                            // As 3proxy: a cache hit logs as the cached user (with an
                            // `ip` key, whatever name the client sent).
                            cached_user = Some(acl_user.clone());
                        }
                        self.acl_user = acl_user;
                        self.verified = method == crate::auth::AuthMethod::Strong;
                        first_rule = rule;
                    }
                    addrs.push(*addr);
                }
                AuthDecision::Refused(code) => {
                    first_refusal.get_or_insert(code);
                }
            }
        }
        self.rule = first_rule;
        if let Some(user) = cached_user {
            self.user = user;
        }
        if let Some(first) = addrs.first().copied() {
            self.note_allowed(first);
            self.plan_chain(first_rule, first);
        }
        // The decision is made: the password is not kept for the life of the tunnel (a
        // chain whose parent takes the client's credentials keeps them until it is built).
        self.credentials = None;
        if addrs.is_empty() {
            let code = first_refusal.unwrap_or(LogCode::ACL_NO_MATCH);
            self.refuse(now, code, refusal_reason(code));
            return None;
        }
        if let Some(first) = addrs.first().copied() {
            if let Err(reason) = self.admit_limits(now, first) {
                self.refuse(now, LogCode::LIMIT_EXCEEDED, reason);
                return None;
            }
        }
        Some(addrs)
    }

    /// Connects to the allowed addresses (or the chain's first hop), or listens for a
    /// BIND. Out of line: `authorize`'s frame (under every ACL decision) stays as small.
    #[inline(never)]
    fn connect_allowed(&mut self, mut addrs: ArrayVec<SocketAddr, MAX_CONNECT_ADDRS>) {
        if self.request.as_ref().map(|r| r.kind) == Some(RequestKind::Bind) {
            let expected = addrs.first().copied().unwrap_or(self.internal);
            self.expected_peer = Some(expected.ip());
            self.phase = Phase::Binding;
            self.intents.push_back(Intent::Bind {
                ip: self.bind_ip(expected.ip()),
            });
            return;
        }
        if let Some(parent) = self.chain.as_ref().and_then(|c| c.first_addr()) {
            // Through a chain: the first hop is the only address to connect to.
            addrs.clear();
            addrs.push(parent);
        }
        self.phase = Phase::Connecting;
        self.intents.push_back(Intent::Connect {
            addrs,
            timeout: self.policy.timeouts.connect,
            source: self.policy.external,
        });
    }

    /// The granted request against `connlim` and the traffic quotas (3proxy checks both
    /// between the ACL and the connect): takes the connection's limit slots and its quota,
    /// or says which limit refuses it (code 10).
    #[inline(never)]
    fn admit_limits(&mut self, now: Instant, target: SocketAddr) -> Result<(), Reason> {
        let policy = Arc::clone(&self.policy);
        if policy.connlimits.is_empty() && policy.quotas.is_empty() {
            return Ok(());
        }
        let request = AclRequest {
            user: self.acl_user.as_deref(),
            client: self.client.ip(),
            target_host: self.request.as_ref().and_then(|r| r.target.domain()),
            target_ip: Some(target.ip()),
            port: Some(target.port()),
            operation: self.operation(),
            time: self.time,
        };
        let permit = policy
            .connlimits
            .admit(now, &request)
            .map_err(Reason::ConnLimit)?;
        let quota = policy.quotas.select(&request).map_err(Reason::Quota)?;
        self.permit = permit;
        self.quota = quota;
        Ok(())
    }

    /// Draws the parent chain of the ACL entry that granted the request, if it has one.
    /// Only the first allowed address is asked for through a chain (the parent connects).
    ///
    /// Only checks whether there is a chain to draw: building one (out of line, about
    /// 2.7 KiB of stack with the chain under construction) must not sit in the frames of
    /// every handshake without parents, whose deepest page is what an idle std tunnel
    /// keeps resident.
    fn plan_chain(&mut self, rule: Option<usize>, first: SocketAddr) {
        let has_parents = rule
            .and_then(|i| self.policy.acl.get(i))
            .is_some_and(|ace| !ace.parents().is_empty());
        if has_parents {
            self.draw_chain(rule, first);
        }
    }

    /// Draws the chain of [`Session::plan_chain`].
    #[inline(never)]
    fn draw_chain(&mut self, rule: Option<usize>, first: SocketAddr) {
        let policy = Arc::clone(&self.policy);
        let Some(ace) = rule.and_then(|i| policy.acl.get(i)) else {
            return;
        };
        let operation = self.operation();
        let tunnel = matches!(operation, Operation::Connect | Operation::HttpConnect);
        let forwarding = self.forward.is_some();
        if ace.parents().is_empty() || !(tunnel || forwarding) {
            return;
        }
        let as_connect: ParentHop;
        let mut hops = ace.parents().choose(self.policy.parent_random.next());
        let Some(last) = hops.last().copied() else {
            return;
        };
        // An `http` parent at the end takes requests in absolute form: a forwarded request
        // is written to it so; a CONNECT is asked of it as CONNECT (3proxy's `http` parent
        // understands both, and the raw tunnel bytes would make no sense to it).
        if last.kind == ParentKind::Http {
            if forwarding {
                self.forward_through_http_parent(last);
            } else if operation == Operation::HttpConnect {
                as_connect = ParentHop {
                    kind: ParentKind::Connect { names: true },
                    ..last.clone()
                };
                if let Some(slot) = hops.last_mut() {
                    *slot = &as_connect;
                }
            }
        }
        let chain = Chain::new(
            &hops,
            self.request.as_ref().map(|r| &r.target),
            first,
            self.credentials.take(),
            self.policy.timeouts.chain,
        );
        self.hops = u32::try_from(chain.len()).unwrap_or(u32::MAX);
        self.chain = Some(Box::new(chain));
    }

    /// The relay of an established tunnel.
    fn relay_intent(&self) -> Intent {
        Intent::Relay(self.relay_plan())
    }

    /// How the bytes of an established tunnel (or of one forwarded request) move, with the
    /// bandwidth pipes that match it (chosen once, like 3proxy, with the user the ACL saw
    /// and the address actually reached) and the connection's quota.
    fn relay_plan(&self) -> RelayPlan {
        let (to_client, to_target) = self.pacers(self.remote);
        let mode = if to_client.is_empty() && to_target.is_empty() {
            self.policy.relay
        } else {
            RelayMode::Buffered
        };
        RelayPlan {
            idle_timeout: self.policy.timeouts.idle,
            mode,
            to_client,
            to_target,
            quota: self.quota.clone(),
        }
    }

    /// The bandwidth pipes of this connection (chosen once, like 3proxy, with the user the
    /// ACL saw and the address actually reached, if any): toward the client, toward the
    /// target.
    fn pacers(&self, remote: Option<SocketAddr>) -> (Pacer, Pacer) {
        if self.policy.bandlimits.is_empty() {
            return (Pacer::default(), Pacer::default());
        }
        let request = AclRequest {
            user: self.acl_user.as_deref(),
            client: self.client.ip(),
            target_host: self.request.as_ref().and_then(|r| r.target.domain()),
            target_ip: remote.map(|a| a.ip()),
            port: remote.map(|a| a.port()),
            operation: self.operation(),
            time: self.time,
        };
        (
            self.policy.bandlimits.select(Direction::ToClient, &request),
            self.policy.bandlimits.select(Direction::ToTarget, &request),
        )
    }

    /// The ACL operation of the request: an HTTP proxy's CONNECT is `HTTPS`
    /// (`HTTP_CONNECT`), a SOCKS one is `CONNECT`.
    fn operation(&self) -> Operation {
        match self.request.as_ref().map(|r| r.kind) {
            Some(RequestKind::Bind) => Operation::Bind,
            Some(RequestKind::UdpAssociate) => Operation::UdpAssoc,
            Some(RequestKind::Forward) => {
                match self.request.as_ref().and_then(|r| r.method.as_deref()) {
                    Some("GET") => Operation::HttpGet,
                    Some("POST") => Operation::HttpPost,
                    Some("PUT") => Operation::HttpPut,
                    Some("HEAD") => Operation::HttpHead,
                    _ => Operation::HttpOther,
                }
            }
            // An HTTP proxy's CONNECT, also when `auto` chose the HTTP front.
            _ if self.service == Some("PROXY") => Operation::HttpConnect,
            _ => Operation::Connect,
        }
    }

    /// Where a BIND listens: the configured external address of the expected peer's family,
    /// else the address the client reached us on, else any address of that family.
    fn bind_ip(&self, expected: IpAddr) -> IpAddr {
        let probe = SocketAddr::new(expected, 0);
        if let Some(ip) = self.policy.external.for_target(&probe) {
            return ip;
        }
        match (expected, self.internal.ip()) {
            (IpAddr::V4(_), ip @ IpAddr::V4(_)) | (IpAddr::V6(_), ip @ IpAddr::V6(_)) => ip,
            (IpAddr::V4(_), _) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            (IpAddr::V6(_), _) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }

    /// Refuses the request: the front (or the forwarding exchange) answers in its
    /// protocol's terms. Out of line, as are `finish` and `record`: a refusal's log record
    /// must not sit in the frames of every granted handshake (the deepest stack page of a
    /// handshake is what an idle std tunnel keeps resident).
    #[inline(never)]
    fn refuse(&mut self, now: Instant, code: LogCode, reason: Reason) {
        if let Some(f) = self.front.as_mut() {
            f.handle_refused(code, &reason);
        }
        if let Some(forward) = self.forward.as_mut() {
            forward.refuse(now, crate::front::http_refusal(code));
        }
        self.finish(now, code, Some(reason), 0, 0);
    }

    #[inline(never)]
    fn finish(
        &mut self,
        now: Instant,
        code: LogCode,
        reason: Option<Reason>,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        if self.phase == Phase::Done {
            return;
        }
        // The request is over: its parallel-connection slots are free now, even if the
        // runtime keeps the session a little longer.
        self.permit = ConnPermit::default();
        let record = self.record(now, code, reason, bytes_in, bytes_out);
        self.intents.push_back(Intent::Log(record));
        if self.forward.is_some() {
            // One request of a forwarding connection: the connection ends when the
            // exchange machine says so.
            self.end_request(now);
            return;
        }
        self.phase = Phase::Done;
        self.intents.push_back(Intent::Close);
    }

    /// The log record of the current request.
    #[inline(never)]
    fn record(
        &self,
        now: Instant,
        code: LogCode,
        reason: Option<Reason>,
        bytes_in: u64,
        bytes_out: u64,
    ) -> LogRecord {
        let (requested, text) = match &self.request {
            Some(r) => (
                Some(r.target.clone()),
                match &r.text {
                    Some(text) => text.clone(),
                    None => format!("{} {}", r.kind.log_text(), r.target),
                },
            ),
            None => (None, String::new()),
        };
        let version = self
            .version
            .or_else(|| self.front.as_ref().and_then(|f| f.version()));
        let service = self.service.unwrap_or_else(|| match self.front.as_ref() {
            Some(f) => f.service_name(&self.policy.protocol),
            None => service_name(&self.policy.protocol, version),
        });
        LogRecord {
            service,
            listen_port: self.policy.listen_port,
            code,
            reason,
            user: self.user.clone(),
            client: self.client,
            internal: self.internal,
            remote: self.remote,
            external: self.external,
            requested,
            bytes_in,
            bytes_out,
            hops: self.hops,
            text,
            duration: now.saturating_duration_since(self.started),
            logging: self
                .rule
                .and_then(|i| self.policy.acl.get(i))
                .map_or(Logging::Logged, |ace| ace.logging()),
        }
    }
}

/// The reason of a refusal by the auth chain or the ACL, from its log code.
fn refusal_reason(code: LogCode) -> Reason {
    match code {
        LogCode::ACL_DENIED => Reason::AclDenied,
        LogCode::ACL_NO_MATCH => Reason::AclNoMatch,
        other => Reason::Auth(other),
    }
}
