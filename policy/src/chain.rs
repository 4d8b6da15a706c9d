//! Negotiating a parent chain on the outgoing connection, for the [`crate::session`]
//! engine.
//!
//! The session connects to the first hop; this machine then speaks to each hop in turn
//! over that one connection (one protocol client machine per hop: SOCKS4/4a/5 from
//! `triproxy-socks`, HTTP CONNECT from `triproxy-http`), asking hop *i* to connect to hop
//! *i + 1* and the last negotiating hop for the destination. A `tcp`/`http` hop at the end
//! is the destination itself. Bytes the last hop sends after its reply are the target's
//! first data: never consumed here.

use crate::parent::{ParentCredentials, ParentHop, ParentKind, MAX_CHAIN_HOPS};
use crate::reason::{ParentCause, ParentFailure};
use arrayvec::ArrayVec;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;
use triproxy_http::{
    ConnectClient, ConnectConfig, ConnectError as HttpError, ConnectEvent,
    Credentials as HttpCredentials,
};
use triproxy_socks::client::{Client, ClientConfig, ClientEvent, ClientVersion, Command};
use triproxy_socks::v5::Credentials;
use triproxy_socks::ClientError;
use triproxy_wire::{LogCode, TargetAddr};

/// Why a chain failed: the log code and the typed reason (which hop, what went wrong).
/// The client's front turns them into its own answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainFailure {
    pub code: LogCode,
    pub reason: ParentFailure,
}

/// What a hop's answer so far means.
enum HopOutcome {
    /// More bytes are needed.
    Waiting,
    /// The hop connected where it was asked to.
    Granted,
    /// The hop refused, or answered something unusable.
    Failed(LogCode, ParentCause),
}

/// The machine speaking to the current hop: one interface over the protocol crates'
/// client machines.
#[derive(Debug)]
enum HopMachine {
    Socks(Box<Client>),
    Http(Box<ConnectClient>),
}

impl HopMachine {
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        match self {
            HopMachine::Socks(c) => c.poll_transmit().map(|t| t.as_bytes().to_vec()),
            HopMachine::Http(c) => c.poll_transmit(),
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            HopMachine::Socks(c) => c.poll_timeout(),
            HopMachine::Http(c) => c.poll_timeout(),
        }
    }

    /// Feeds the hop's bytes; returns how many were consumed and what they meant.
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> (usize, HopOutcome) {
        match self {
            HopMachine::Socks(c) => match c.handle_input(now, input) {
                Ok(n) => (
                    n,
                    match c.poll_event() {
                        Some(ClientEvent::Granted { .. } | ClientEvent::BindPeer { .. }) => {
                            HopOutcome::Granted
                        }
                        Some(ClientEvent::Refused { reply }) => {
                            let e = ClientError::from(reply);
                            HopOutcome::Failed(e.log_code(), ParentCause::Socks(e))
                        }
                        None => HopOutcome::Waiting,
                    },
                ),
                Err(e) => (0, HopOutcome::Failed(e.log_code(), ParentCause::Socks(e))),
            },
            HopMachine::Http(c) => match c.handle_input(now, input) {
                Ok(n) => (
                    n,
                    match c.poll_event() {
                        Some(ConnectEvent::Established) => HopOutcome::Granted,
                        Some(ConnectEvent::Refused { status }) => {
                            let e = HttpError::Refused { status };
                            HopOutcome::Failed(e.log_code(), ParentCause::Http(e))
                        }
                        None => HopOutcome::Waiting,
                    },
                ),
                Err(e) => (0, HopOutcome::Failed(e.log_code(), ParentCause::Http(e))),
            },
        }
    }

    /// The hop's deadline passed: its failure, if an answer was still awaited.
    fn handle_timeout(&mut self, now: Instant) -> Option<(LogCode, ParentCause)> {
        match self {
            HopMachine::Socks(c) => c
                .handle_timeout(now)
                .map(|e| (e.log_code(), ParentCause::Socks(e))),
            HopMachine::Http(c) => c
                .handle_timeout(now)
                .map(|e| (e.log_code(), ParentCause::Http(e))),
        }
    }

    /// The connection closed: the failure, if an answer was still awaited.
    fn handle_eof(&mut self) -> Option<(LogCode, ParentCause)> {
        match self {
            HopMachine::Socks(c) => c
                .handle_eof()
                .map(|e| (e.log_code(), ParentCause::Socks(e))),
            HopMachine::Http(c) => c.handle_eof().map(|e| (e.log_code(), ParentCause::Http(e))),
        }
    }
}

/// What the chain needs next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChainStep {
    /// Write these bytes to the outgoing connection, then ask again.
    Send(Vec<u8>),
    /// Read from the outgoing connection (until the deadline) and feed
    /// [`Chain::handle_input`].
    Read(Instant),
    /// Every hop answered: the tunnel to the destination is open.
    Established,
    /// The chain failed; the session refuses the request.
    Failed(ChainFailure),
}

/// One connection's chain: the drawn hops and where negotiation is.
#[derive(Debug)]
pub(crate) struct Chain {
    hops: ArrayVec<ParentHop, MAX_CHAIN_HOPS>,
    /// Hops that are negotiated with (a final `tcp`/`http` hop is not).
    negotiated: usize,
    /// What the last negotiating hop is asked for.
    destination: TargetAddr,
    /// The client's credentials, kept only while a hop with USER `*` still needs them.
    client_credentials: Option<Box<Credentials>>,
    timeout: Duration,
    /// Index of the hop being negotiated.
    next: usize,
    machine: Option<HopMachine>,
    /// Messages of finished hops' machines not yet handed out (a hop that answered ahead
    /// of our requests still gets them, in order).
    unsent: VecDeque<Vec<u8>>,
    failure: Option<ChainFailure>,
}

impl Chain {
    /// A chain over `hops` (non-empty) for a request for `requested`, whose first allowed
    /// address is `resolved`.
    pub(crate) fn new(
        hops: &[&ParentHop],
        requested: Option<&TargetAddr>,
        resolved: SocketAddr,
        client_credentials: Option<Box<Credentials>>,
        timeout: Duration,
    ) -> Chain {
        let hops: ArrayVec<ParentHop, MAX_CHAIN_HOPS> = hops.iter().map(|h| (*h).clone()).collect();
        let (negotiated, destination) = match hops.last() {
            Some(last) if last.kind.is_terminal() => (hops.len() - 1, TargetAddr::Ip(last.addr)),
            Some(last) if last.kind.sends_names() => (
                hops.len(),
                match requested {
                    Some(t @ TargetAddr::Domain(..)) => t.clone(),
                    _ => TargetAddr::Ip(resolved),
                },
            ),
            _ => (hops.len(), TargetAddr::Ip(resolved)),
        };
        let needs_client = hops
            .iter()
            .take(negotiated)
            .any(|h| h.credentials == ParentCredentials::Client);
        Chain {
            hops,
            negotiated,
            destination,
            client_credentials: client_credentials.filter(|_| needs_client),
            timeout,
            next: 0,
            machine: None,
            unsent: VecDeque::new(),
            failure: None,
        }
    }

    /// Where the proxy connects: the first hop.
    pub(crate) fn first_addr(&self) -> Option<SocketAddr> {
        self.hops.first().map(|h| h.addr)
    }

    /// Hops in the chain (for the log's `%h`).
    pub(crate) fn len(&self) -> usize {
        self.hops.len()
    }

    /// The next thing to do.
    pub(crate) fn step(&mut self) -> ChainStep {
        if let Some(f) = self.failure.take() {
            self.machine = None;
            return ChainStep::Failed(f);
        }
        if let Some(bytes) = self.unsent.pop_front() {
            return ChainStep::Send(bytes);
        }
        let Some(machine) = self.machine.as_mut() else {
            return ChainStep::Established;
        };
        if let Some(bytes) = machine.poll_transmit() {
            return ChainStep::Send(bytes);
        }
        match machine.poll_timeout() {
            Some(deadline) => ChainStep::Read(deadline),
            // Neither waiting nor done cannot happen; treat it as a broken hop.
            None => ChainStep::Failed(self.fail(LogCode(30), ParentCause::Stalled)),
        }
    }

    /// When the current hop's answer is due.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.machine.as_ref()?.poll_timeout()
    }

    /// Bytes from the outgoing connection; returns how many were consumed (the rest is
    /// the next hop's or, after the last one, the target's).
    pub(crate) fn handle_input(&mut self, now: Instant, input: &[u8]) -> usize {
        let mut used = 0;
        while self.failure.is_none() {
            let Some(machine) = self.machine.as_mut() else {
                break;
            };
            let (n, outcome) = machine.handle_input(now, input.get(used..).unwrap_or_default());
            used += n;
            match outcome {
                HopOutcome::Waiting => break,
                HopOutcome::Failed(code, cause) => self.failure = Some(self.fail(code, cause)),
                HopOutcome::Granted => {
                    // What this hop's machine still has to send goes out before the next
                    // hop's first message (a hop that answered ahead of our requests).
                    while let Some(bytes) = machine.poll_transmit() {
                        self.unsent.push_back(bytes);
                    }
                    self.next += 1;
                    self.start_hop(now);
                }
            }
        }
        used
    }

    /// Time passed; a hop past its deadline fails the chain.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some((code, cause)) = self.machine.as_mut().and_then(|m| m.handle_timeout(now)) {
            self.failure = Some(self.fail(code, cause));
        }
    }

    /// The outgoing connection closed (or failed) during negotiation.
    pub(crate) fn handle_closed(&mut self) {
        let (code, cause) = self
            .machine
            .as_mut()
            .and_then(HopMachine::handle_eof)
            .unwrap_or((LogCode(34), ParentCause::Closed));
        self.failure = Some(self.fail(code, cause));
    }

    /// A failure of the current hop.
    fn fail(&self, code: LogCode, cause: ParentCause) -> ChainFailure {
        let hop = self
            .hops
            .get(self.next)
            .map(|h| (self.next + 1, h.kind, h.addr));
        ChainFailure {
            code,
            reason: ParentFailure { hop, cause },
        }
    }

    /// Builds the machine for the first hop (once connected to it), or for the next one.
    /// After the last hop, ends negotiation.
    pub(crate) fn start_hop(&mut self, now: Instant) {
        self.machine = None;
        if self.next >= self.negotiated {
            self.client_credentials = None;
            return;
        }
        let Some(hop) = self.hops.get(self.next) else {
            return;
        };
        // Each hop is asked for the next one (a final tcp hop's address is the
        // destination itself); the last negotiating hop for the destination.
        let target = match self.hops.get(self.next + 1) {
            Some(next) => TargetAddr::Ip(next.addr),
            None => self.destination.clone(),
        };
        let credentials = match &hop.credentials {
            ParentCredentials::None => None,
            ParentCredentials::Fixed { user, password } => {
                match Credentials::new(user.as_bytes(), password.as_bytes()) {
                    Ok(c) => Some(c),
                    Err(_) => {
                        self.failure =
                            Some(self.fail(LogCode(30), ParentCause::UnusableCredentials));
                        return;
                    }
                }
            }
            ParentCredentials::Client => match &self.client_credentials {
                Some(c) => Some((**c).clone()),
                None => {
                    self.failure = Some(self.fail(LogCode(4), ParentCause::NoClientCredentials));
                    return;
                }
            },
        };
        let version = match hop.kind {
            ParentKind::Socks4 { names: false } => Some(ClientVersion::V4),
            ParentKind::Socks4 { names: true } => Some(ClientVersion::V4a),
            ParentKind::Socks5 { .. } => Some(ClientVersion::V5),
            ParentKind::Connect { .. } => None,
            ParentKind::Tcp | ParentKind::Http => {
                self.failure = Some(self.fail(LogCode(30), ParentCause::CannotRelayFurther));
                return;
            }
        };
        let machine = match version {
            Some(version) => Client::new(
                now,
                ClientConfig {
                    version,
                    credentials,
                    command: Command::Connect,
                    target,
                    timeout: self.timeout,
                },
            )
            .map(|c| HopMachine::Socks(Box::new(c)))
            .map_err(|e| (e.log_code(), ParentCause::Socks(e))),
            None => ConnectClient::new(
                now,
                ConnectConfig {
                    target,
                    credentials: credentials
                        .map(|c| HttpCredentials::new(c.username.to_vec(), c.password.to_vec())),
                    timeout: self.timeout,
                },
            )
            .map(|c| HopMachine::Http(Box::new(c)))
            .map_err(|e| (e.log_code(), ParentCause::Http(e))),
        };
        match machine {
            Ok(m) => self.machine = Some(m),
            Err((code, cause)) => self.failure = Some(self.fail(code, cause)),
        }
    }
}
