//! The one executor: carries out a session's intents, from the first byte to the log
//! line, on any runtime.
//!
//! A runtime implements [`Io`]: the primitives only it can perform (read, write, connect,
//! resolve, listen, accept, splice, shut down, wait for readiness or a moment, tell the
//! time). [`serve`] does everything else: it feeds the session what arrives, carries out
//! each [`Intent`] in one exhaustive `match` (a new intent does not compile until it is
//! handled here, once, for every runtime), runs the [`crate::relay`] machine of an
//! established tunnel, and runs a plain HTTP forwarding connection (the inspected path,
//! `forward.rs`: bytes go through the session's forwarding machine, idle origin
//! connections wait in a pool the session manages). The blocking runtime's futures
//! complete at once (its calls block);
//! the async runtime's await readiness. Either way the decisions are taken here, in one
//! code path.
//!
//! Nothing here touches a socket or reads a clock itself: the runtime does, through
//! [`Io`], so the executor is as deterministic as the machines it drives.

mod dnspr;
mod forward;
mod input;
mod resolve;
mod tunnel;
mod udp;
mod udppm;

pub use input::{HandshakeInput, TargetInput, HANDSHAKE_BUFFER, MAX_TARGET_INPUT};

use crate::acl::CivilTime;
use crate::relay::{Outcome, RelayPlan};
use crate::service::{DatagramService, RelayMode, ServicePolicy, SourceAddrs};
use crate::session::{
    BindError, ConnectError, Intent, LogRecord, OriginMove, ResolveError, Session,
    MAX_CONNECT_ADDRS, ORIGIN_POOL,
};
use core::future::Future;
use core::time::Duration;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use triproxy_wire::DomainName;

/// Which readiness a relay waits for on one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interest {
    /// Wait until it is readable.
    pub read: bool,
    /// Wait until it is writable.
    pub write: bool,
}

impl Interest {
    /// Whether nothing is awaited on this socket.
    pub fn is_empty(self) -> bool {
        !self.read && !self.write
    }
}

/// What ended one wait of [`Io::accept`].
#[derive(Debug)]
pub enum Accepted<S> {
    /// The peer connected: its stream, the proxy's local address and the peer's address.
    Peer(S, SocketAddr, SocketAddr),
    /// The client became readable (bytes or its end of stream) before the peer came.
    ClientReadable,
    /// The deadline passed.
    Timeout,
    /// Accepting failed.
    Failed,
}

/// The I/O primitives a runtime provides. Every method does exactly one thing the
/// executor asks for; none decides anything.
///
/// Streams passed to the relay methods are non-blocking after [`Io::start_relay`].
pub trait Io {
    /// A connected TCP stream.
    type Stream;
    /// A listening socket (SOCKS BIND).
    type Listener;
    /// Where one relay direction holds bytes in flight (a pooled pipe or buffer, taken
    /// only while bytes are held).
    type Store;
    /// A UDP socket (name server queries, datagram services, UDP relays).
    type Datagram;

    /// The time now.
    fn now(&self) -> Instant;
    /// The local civil time now (ACL weekday and time-period fields of datagram services,
    /// whose clients are not accepted connections).
    fn civil_time(&self) -> CivilTime;
    /// Writes a finished connection's record to the service's log.
    fn log(&self, record: &LogRecord);

    /// The connection's tunnel is established and its relay starts, or a plain HTTP
    /// forwarding connection sent a newly granted request on its way: a runtime that lets
    /// a reload re-check connections (`force`) keeps [`Session::standing`] now, replacing
    /// what it kept before. Called only for services whose policy has `force`.
    fn established(&self, session: &crate::session::Session) {
        let _ = session;
    }

    /// Whether the connection was ended from outside, and with which code: a reload under
    /// `force` refused it. Asked once a tunnel's relay ended, and on every turn of a
    /// forwarding connection's loop (an atomic load in the runtimes). A runtime must mark
    /// the connection before it shuts the client socket down.
    fn revoked(&self) -> Option<triproxy_wire::LogCode> {
        None
    }

    /// Reads into `buf`, giving up at `deadline` with [`io::ErrorKind::TimedOut`].
    fn read(
        &self,
        stream: &Self::Stream,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> impl Future<Output = io::Result<usize>>;
    /// Reads what is there without waiting ([`io::ErrorKind::WouldBlock`] if nothing).
    fn try_read(&self, stream: &Self::Stream, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what the socket takes without waiting ([`io::ErrorKind::WouldBlock`] if
    /// nothing). Only on a stream made non-blocking ([`Io::prepare_forwarding`]).
    fn try_write(&self, stream: &Self::Stream, bytes: &[u8]) -> io::Result<usize>;
    /// Makes `stream` ready for HTTP forwarding: non-blocking (for [`Io::try_read`] and
    /// [`Io::try_write`]) and without Nagle's delay (heads and bodies are written as they
    /// come; a small write held back for an ACK the peer delays costs 40 ms a request).
    fn prepare_forwarding(&self, stream: &Self::Stream) -> io::Result<()>;
    /// Writes all of `bytes`.
    fn write_all(
        &self,
        stream: &Self::Stream,
        bytes: &[u8],
    ) -> impl Future<Output = io::Result<()>>;
    /// Opens a UDP socket bound to `local` (port 0: the system chooses): the socket and
    /// its address.
    fn udp_bind(&self, local: SocketAddr) -> io::Result<(Self::Datagram, SocketAddr)>;
    /// Sends one datagram to `to`.
    fn send_to(
        &self,
        socket: &Self::Datagram,
        bytes: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>>;
    /// Receives one datagram into `buf` (a longer one is cut to `buf`'s size), giving up at
    /// `deadline` with [`io::ErrorKind::TimedOut`]: its length and sender.
    fn recv_from(
        &self,
        socket: &Self::Datagram,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>>;
    /// Receives one datagram that is already there ([`io::ErrorKind::WouldBlock`] if
    /// none): its length and sender.
    fn try_recv_from(
        &self,
        socket: &Self::Datagram,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)>;
    /// Waits until `stream` (if given) or one of `sockets` is readable (an error or
    /// hang-up counts as readable), or until `deadline` (none: no limit). Returns whether
    /// the stream is, and the indices of the sockets that are; nothing at all: the
    /// deadline. Waking early is allowed: the executor tries and waits again.
    fn wait_readable(
        &self,
        stream: Option<&Self::Stream>,
        sockets: &[&Self::Datagram],
        deadline: Option<Instant>,
    ) -> impl Future<Output = io::Result<(bool, Vec<usize>)>>;
    /// Resolves `host` with the system resolver, attaching `port` to each address.
    fn resolve(
        &self,
        host: DomainName,
        port: u16,
    ) -> impl Future<Output = Result<Vec<SocketAddr>, ResolveError>>;
    /// Connects to the first of `addrs` that accepts within `timeout` each, from `source`
    /// if set: the stream, its local address and the address reached.
    fn connect(
        &self,
        addrs: &[SocketAddr],
        timeout: Duration,
        source: SourceAddrs,
    ) -> impl Future<Output = Result<(Self::Stream, SocketAddr, SocketAddr), ConnectError>>;
    /// Listens on `ip` with a port the system chooses: the listener and its address.
    fn listen(&self, ip: IpAddr) -> Result<(Self::Listener, SocketAddr), BindError>;
    /// Waits until `deadline` for a connection on `listener` and, if `watch_client`, for
    /// `client` to become readable.
    fn accept(
        &self,
        listener: &Self::Listener,
        client: &Self::Stream,
        watch_client: bool,
        deadline: Instant,
    ) -> impl Future<Output = Accepted<Self::Stream>>;

    /// Makes both streams of a tunnel non-blocking.
    fn start_relay(&self, client: &Self::Stream, target: &Self::Stream) -> io::Result<()>;
    /// A store for one direction, relaying in `mode`, holding `early` bytes first.
    fn store(&self, mode: RelayMode, early: &[u8]) -> Self::Store;
    /// Reads or splices at most `max` bytes from `src` into the (empty) `store`.
    fn fill(&self, store: &mut Self::Store, src: &Self::Stream, max: usize) -> Outcome;
    /// Writes what `store` holds to `dst` (what is written leaves the store).
    fn flush(&self, store: &mut Self::Store, dst: &Self::Stream) -> Outcome;
    /// Shuts `stream` down.
    fn shutdown(&self, stream: &Self::Stream, how: Shutdown);
    /// Waits until one of the interests is ready or `deadline` passes (whichever first;
    /// waking early is allowed, the executor checks again). Returns the readiness seen,
    /// client's then target's (an error or hang-up counts as both readable and writable;
    /// none at all: the deadline). Saying ready when it is not costs one wasted syscall;
    /// failing to say ready when it is would stall the direction until the deadline.
    fn wait(
        &self,
        client: (&Self::Stream, Interest),
        target: (&Self::Stream, Interest),
        deadline: Instant,
    ) -> impl Future<Output = io::Result<[Interest; 2]>>;
}

/// Serves one client, accepted by a service on `local`, from `peer`: the handshake, the
/// tunnel and the log line. `time` is the local civil time at accept (ACL periods).
///
/// The two phases are also public ([`handshake`], [`tunnel`]) for a runtime that polls
/// them in separate stack frames (the blocking one: a thread keeps every stack page it
/// ever touched, so the handshake's deep frames must not sit on top of the tunnel state).
///
/// Everything is borrowed: an async fn keeps its arguments, and whatever it moves them
/// into, as separate slots of its future for its whole life, and every byte of that future
/// is paid by each idle tunnel.
pub async fn serve<R: Io>(
    io: &R,
    client: &R::Stream,
    origin: &Origin,
    policy: &Arc<ServicePolicy>,
) {
    let Some(mut established) = handshake(io, client, origin, policy).await else {
        return;
    };
    tunnel(io, client, &mut established).await;
}

/// Where a datagram service's loop takes the policy for each new client (`udppm`) or
/// query (`dnspr`) from: the service's current settings, which a reload replaces while the
/// loop runs, so that a reload keeps the socket, the open mappings (on the policy they were
/// opened with) and the queries in flight.
pub type PolicySource<'a> = &'a (dyn Fn() -> Arc<ServicePolicy> + Send + Sync);

/// Serves a datagram service on `socket` (bound to `local`) until `stop` is set (a reload
/// replaced the service, or the daemon stops), with at most `max_clients` clients at once
/// (`maxconn`): the one loop of each kind, for every runtime.
///
/// `stop` is looked at each time the loop wakes; whoever sets it must also wake the loop
/// (the std runtime shuts the socket down, smol drops the task).
pub async fn serve_datagrams<R: Io>(
    io: &R,
    socket: &R::Datagram,
    local: SocketAddr,
    policy: PolicySource<'_>,
    service: &DatagramService,
    max_clients: usize,
    stop: &core::sync::atomic::AtomicBool,
) {
    match service {
        DatagramService::PortMap { target, single } => {
            let service = udppm::Service {
                socket,
                local,
                policy,
                target,
                single: *single,
                stop,
            };
            udppm::run(io, &service, max_clients).await;
        }
        DatagramService::DnsProxy(config) => {
            let service = dnspr::Service {
                socket,
                local,
                policy,
                config: *config,
                stop,
            };
            dnspr::run(io, &service, max_clients).await;
        }
    }
}

/// Where a client came from and when: what a session needs besides the socket.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    /// The client's address.
    pub peer: SocketAddr,
    /// The proxy's address the client reached.
    pub local: SocketAddr,
    /// Local civil time at accept (weekday and time-period ACL fields).
    pub time: CivilTime,
}

/// Runs an established tunnel to its end and writes its log line.
pub async fn tunnel<R: Io>(io: &R, client: &R::Stream, tunnel: &mut Tunnel<R::Stream>) {
    tunnel::run(io, client, tunnel).await;
}

/// What the handshake hands to the relay: the session, the connected target and the bytes
/// read with the handshake that the relay delivers first.
#[derive(Debug)]
pub struct Tunnel<S> {
    session: Session,
    target: S,
    /// Client bytes pipelined after the request.
    to_target: Vec<u8>,
    /// Target bytes that came with a parent's last reply.
    to_client: Vec<u8>,
    /// Taken by the relay when it starts (boxed: the tunnel keeps only the pointer's
    /// room, not the plan's, for its whole life).
    plan: Option<Box<RelayPlan>>,
}

/// One connection's state while its handshake runs.
struct Handshake<'a, R: Io> {
    io: &'a R,
    client: &'a R::Stream,
    session: Session,
    input: HandshakeInput,
    target: Option<R::Stream>,
    /// Bytes from the target while a parent chain is negotiated.
    target_input: TargetInput,
    bind_listener: Option<R::Listener>,
    /// HTTP forwarding: idle origin connections, by slot (the session decides the moves).
    pool: [Option<R::Stream>; ORIGIN_POOL],
    /// Whether `target` was made non-blocking (it stays blocking while a parent chain is
    /// negotiated with timed reads).
    target_nonblocking: bool,
    /// Counts changes of `target` (a forwarding loop forgets what it knew of the old one).
    target_gen: u32,
    /// The relay socket of a UDP association, once opened.
    udp_relay: Option<R::Datagram>,
}

/// What carrying out one intent leads to.
enum Next {
    Continue,
    Close,
    Relay(RelayPlan),
    Forward,
}

/// Runs the session until it asks for a relay (returns the tunnel) or ends.
///
/// Its state (the 1 KiB input buffer, the protocol machine) lives in a boxed future freed
/// when the handshake ends: an established tunnel keeps none of it.
pub async fn handshake<R: Io>(
    io: &R,
    client: &R::Stream,
    origin: &Origin,
    policy: &Arc<ServicePolicy>,
) -> Option<Tunnel<R::Stream>> {
    Box::pin(run_handshake(io, client, origin, policy)).await
}

async fn run_handshake<R: Io>(
    io: &R,
    client: &R::Stream,
    origin: &Origin,
    policy: &Arc<ServicePolicy>,
) -> Option<Tunnel<R::Stream>> {
    let Origin { peer, local, time } = *origin;
    let session = Session::new(io.now(), Arc::clone(policy), peer, local, time);
    let mut hs = Handshake {
        io,
        client,
        session,
        input: HandshakeInput::default(),
        target: None,
        target_input: TargetInput::default(),
        bind_listener: None,
        pool: core::array::from_fn(|_| None),
        target_nonblocking: false,
        target_gen: 0,
        udp_relay: None,
    };
    loop {
        hs.flush_transmits().await;
        if let Some(intent) = hs.session.poll_intent() {
            match hs.carry_out(intent).await {
                Next::Continue => continue,
                Next::Close => return None,
                Next::Forward => {
                    // Boxed: the forwarding loop's state and frames stay out of the
                    // handshake's, whose deepest stack page every idle std tunnel keeps.
                    Box::pin(forward::run(&mut hs)).await;
                    return None;
                }
                Next::Relay(plan) => match hs.target.take() {
                    Some(target) => {
                        hs.flush_transmits().await;
                        return Some(Tunnel {
                            session: hs.session,
                            target,
                            to_target: hs.input.pending().to_vec(),
                            to_client: hs.target_input.into_pending(),
                            plan: Some(Box::new(plan)),
                        });
                    }
                    None => {
                        // The session asks for a relay only once a target is connected;
                        // if that ever breaks, end the session as a server-side failure.
                        let report = crate::relay::RelayReport {
                            bytes_in: 0,
                            bytes_out: 0,
                            end: crate::relay::RelayEnd::ServerError,
                        };
                        hs.session.handle_relay_end(io.now(), report);
                        continue;
                    }
                },
            }
        }
        if hs.session.is_done() {
            return None;
        }
        let deadline = hs.session.poll_timeout();
        let now = io.now();
        if deadline.is_some_and(|d| d <= now) {
            hs.session.handle_timeout(now);
            continue;
        }
        let Some(space) = hs.input.space(hs.session.max_input()) else {
            hs.input.on_full(&mut hs.session, now);
            continue;
        };
        let result = io.read(client, space, deadline).await;
        hs.input.on_read(&mut hs.session, io.now(), result);
    }
}

impl<R: Io> Handshake<'_, R> {
    /// Sends the session's pending answers to the client; a failed write is the client
    /// gone.
    async fn flush_transmits(&mut self) {
        while let Some(t) = self.session.poll_transmit() {
            if self.io.write_all(self.client, &t).await.is_err() {
                self.session.handle_client_eof(self.io.now());
            }
        }
    }

    /// Carries out one intent. Exhaustive on purpose: see the module documentation.
    async fn carry_out(&mut self, intent: Intent) -> Next {
        let io = self.io;
        match intent {
            Intent::Resolve { host, port } => {
                // Boxed: a lookup's state stays out of the handshake's frames.
                let policy = self.session.policy();
                let result = Box::pin(resolve::resolve(io, &policy, host, port)).await;
                self.session
                    .handle_resolved(io.now(), result.as_deref().map_err(|e| *e));
            }
            Intent::Connect {
                addrs,
                timeout,
                source,
            } => {
                let addrs = addrs.get(..MAX_CONNECT_ADDRS).unwrap_or(&addrs);
                match io.connect(addrs, timeout, source).await {
                    Ok((stream, local, peer)) => {
                        self.target = Some(stream);
                        self.target_nonblocking = false;
                        self.target_gen = self.target_gen.wrapping_add(1);
                        self.session.handle_connected(io.now(), local, peer);
                    }
                    Err(e) => self.session.handle_connect_failed(io.now(), e),
                }
            }
            Intent::Bind { ip } => match io.listen(ip) {
                Ok((listener, addr)) => {
                    self.session.handle_bind_listening(io.now(), addr);
                    self.bind_listener = Some(listener);
                }
                Err(e) => self.session.handle_bind_failed(io.now(), e),
            },
            Intent::AcceptPeer { deadline } => match self.accept_peer(deadline).await {
                Ok((stream, local, peer)) => {
                    self.session.handle_bind_accepted(io.now(), local, peer);
                    self.target = Some(stream);
                }
                Err(e) => self.session.handle_bind_failed(io.now(), e),
            },
            Intent::Relay(plan) => return Next::Relay(plan),
            Intent::Associate { ip } => match io.udp_bind(SocketAddr::new(ip, 0)) {
                Ok((socket, addr)) => {
                    self.udp_relay = Some(socket);
                    self.session.handle_associated(io.now(), addr);
                }
                Err(_) => self.session.handle_associate_failed(io.now()),
            },
            Intent::RelayDatagrams(plan) => {
                // Under `force` the association stands on its UDP ASSOCIATE request: a
                // reload that refuses it shuts the control connection, which ends it.
                if self.session.force() {
                    io.established(&self.session);
                }
                // Boxed, as forwarding: its state stays out of the handshake's frames.
                let mut report = match self.udp_relay.take() {
                    Some(socket) => Box::pin(udp::run(io, self.client, &socket, *plan)).await,
                    None => crate::relay::RelayReport {
                        bytes_in: 0,
                        bytes_out: 0,
                        end: crate::relay::RelayEnd::SystemError,
                    },
                };
                if let Some(code) = io.revoked() {
                    report.end = crate::relay::RelayEnd::Revoked(code);
                }
                self.session.handle_relay_end(io.now(), report);
            }
            Intent::Forward => return Next::Forward,
            Intent::Origin(movement) => self.move_origin(movement),
            Intent::SendToTarget { bytes } => {
                let sent = match self.target.as_ref() {
                    Some(t) => io.write_all(t, &bytes).await.is_ok(),
                    None => false,
                };
                if !sent {
                    self.session.handle_target_closed(io.now());
                }
            }
            Intent::ReadTarget { deadline } => self.read_target(deadline).await,
            Intent::Log(record) => io.log(&record),
            Intent::Close => return Next::Close,
        }
        Next::Continue
    }

    /// Moves an origin connection as the session says (HTTP forwarding's pool). Out of
    /// line, for the same reason as the boxed forwarding loop.
    #[inline(never)]
    fn move_origin(&mut self, movement: OriginMove) {
        let slot = |i: u8| usize::from(i);
        match movement {
            OriginMove::Park(i) => {
                if let Some(entry) = self.pool.get_mut(slot(i)) {
                    *entry = self.target.take();
                }
            }
            OriginMove::Reuse(i) => {
                self.target = self.pool.get_mut(slot(i)).and_then(Option::take);
                // A pooled connection is non-blocking already (it carried a request).
                self.target_nonblocking = true;
                self.target_gen = self.target_gen.wrapping_add(1);
                // Open and silent: a read finds nothing to read. End of stream, bytes the
                // origin sent unasked, or an error: not reusable.
                let alive = self.target.as_ref().is_some_and(|t| {
                    matches!(self.io.try_read(t, &mut [0u8; 1]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock)
                });
                self.session.handle_origin_reused(self.io.now(), alive);
            }
            OriginMove::Drop(i) => {
                if let Some(entry) = self.pool.get_mut(slot(i)) {
                    *entry = None;
                }
            }
            OriginMove::DropCurrent => self.target = None,
        }
    }

    /// One read from the target during parent chain negotiation, bounded by `deadline`.
    async fn read_target(&mut self, deadline: Instant) {
        let io = self.io;
        let Some(target) = self.target.as_ref() else {
            self.session.handle_target_closed(io.now());
            return;
        };
        if deadline <= io.now() {
            self.session.handle_timeout(io.now());
            return;
        }
        let Some(space) = self.target_input.space() else {
            self.target_input.on_full(&mut self.session, io.now());
            return;
        };
        let result = io.read(target, space, Some(deadline)).await;
        self.target_input
            .on_read(&mut self.session, io.now(), result);
    }

    /// Waits for the BIND peer until `deadline`, also watching the client: its end of
    /// stream ends the wait, and bytes it sends meanwhile are kept for the relay.
    async fn accept_peer(
        &mut self,
        deadline: Instant,
    ) -> Result<(R::Stream, SocketAddr, SocketAddr), BindError> {
        let io = self.io;
        let Some(listener) = self.bind_listener.take() else {
            return Err(BindError::Listen);
        };
        loop {
            let limit = self.session.max_input();
            let watch_client = self.input.space(limit).is_some();
            match io
                .accept(&listener, self.client, watch_client, deadline)
                .await
            {
                Accepted::Peer(stream, local, peer) => return Ok((stream, local, peer)),
                Accepted::Timeout => return Err(BindError::Timeout),
                Accepted::Failed => return Err(BindError::Accept),
                Accepted::ClientReadable => {
                    let Some(space) = self.input.space(limit) else {
                        continue;
                    };
                    match io.try_read(self.client, space) {
                        Ok(0) => return Err(BindError::ClientClosed),
                        Ok(n) => self.input.on_read(&mut self.session, io.now(), Ok(n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Err(BindError::ClientClosed),
                    }
                }
            }
        }
    }
}
