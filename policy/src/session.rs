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
//! This file holds the session and the methods its driver calls; the rest is split by
//! idea: `intent` (what the session and its driver say to each other), `decide` (the
//! decision on one request), `record` (how a request ends, and its log record) and
//! `forward` (plain HTTP forwarding).
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

use crate::acl::CivilTime;
use crate::chain::{Chain, ChainStep};
use crate::connlim::ConnPermit;
use crate::front::{Front, FrontFailure, FrontRequest, UpstreamStep};
use crate::quota::Quota;
use crate::reason::Reason;

mod decide;
mod forward;
mod intent;
mod record;

pub use crate::relay::{RelayEnd, RelayPlan, RelayReport};
use crate::service::ServicePolicy;
pub use intent::{
    BindError, ConnectError, Intent, OriginMove, ResolveError, MAX_CONNECT_ADDRS, ORIGIN_POOL,
};
pub use record::LogRecord;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use triproxy_socks::server::{Credentials, Version};
use triproxy_wire::{LogCode, Transmit};

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
}
