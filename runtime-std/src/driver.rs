//! Drives one session on a blocking client socket: reads the handshake, carries out each
//! intent in order (resolve, connect, relay, log, close) and feeds the answers back.

use crate::hooks::Hooks;
use crate::input::{HandshakeInput, TargetInput};
use crate::{net, pool, relay, sys};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;
use triproxy_policy::service::ServicePolicy;
use triproxy_policy::session::{BindError, Intent, RelayEnd, RelayReport, Session};

/// Serves one client (accepted from `peer` by a listener on `listen`) until its session
/// ends; both sockets are closed on return.
///
/// The handshake runs in its own function whose state (the 1 KiB input buffer among it) is
/// gone before the relay starts, as in the smol runtime: a thread keeps every stack page it
/// ever touched, so what an idle tunnel costs is the deepest frame chain of its thread.
pub fn serve_connection(
    client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: &Hooks,
) {
    // Both phases are out of line, so this frame, which sits under both, stays small.
    if let Some(tunnel) = handshake(&client, peer, listen, policy, hooks) {
        run_tunnel(&client, tunnel, hooks);
    }
}

/// Relays an established tunnel, then logs how it ended.
#[inline(never)]
fn run_tunnel(client: &TcpStream, tunnel: Tunnel, hooks: &Hooks) {
    let Tunnel {
        mut session,
        target,
        early,
        plan,
    } = tunnel;
    // (The relay makes both sockets non-blocking: read timeouts no longer apply.)
    let report = relay::relay(client, &target, &early, &plan);
    drop((target, early, plan));
    session.handle_relay_end(Instant::now(), report);
    while let Some(intent) = session.poll_intent() {
        if let Intent::Log(record) = intent {
            (hooks.log)(&record);
        }
    }
}

/// What the handshake hands to the relay.
struct Tunnel {
    session: Session,
    target: TcpStream,
    /// Bytes read during the handshake for the relay to deliver first (no allocation when
    /// there are none).
    early: relay::Early,
    plan: relay::RelayPlan,
}

/// Runs the session until it asks for a relay (returns the tunnel) or ends (returns None),
/// with a handshake input buffer from the pool: on the heap, so its 1 KiB is not in the
/// frame under the deepest handshake calls, and given back as soon as the handshake ends.
fn handshake(
    client: &TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: &Hooks,
) -> Option<Tunnel> {
    let mut input = pool::take_input();
    let tunnel = run_handshake(client, peer, listen, policy, hooks, &mut input);
    pool::give_input(input);
    tunnel
}

#[inline(never)]
fn run_handshake(
    client: &TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: &Hooks,
    input: &mut HandshakeInput,
) -> Option<Tunnel> {
    let Ok(local) = net::accepted_local(listen, client) else {
        // The client is already gone; there is no one to answer and nothing to log.
        return None;
    };
    let mut session = Session::new(Instant::now(), policy, peer, local, (hooks.civil_time)());
    let mut target: Option<TcpStream> = None;
    let mut bind_listener: Option<TcpListener> = None;
    let mut target_input = TargetInput::default();
    loop {
        while let Some(t) = session.poll_transmit() {
            if (&*client).write_all(&t).is_err() {
                session.handle_client_eof(Instant::now());
            }
        }
        if let Some(intent) = session.poll_intent() {
            let mut conn = Connection {
                client,
                session: &mut session,
                input,
                target: &mut target,
                target_input: &mut target_input,
                bind_listener: &mut bind_listener,
                hooks,
            };
            match conn.carry_out(intent) {
                ControlFlow::Continue(()) => continue,
                ControlFlow::Break(None) => return None,
                ControlFlow::Break(Some(plan)) => {
                    let Some(target) = target.take() else {
                        // A relay without a target cannot happen; end the session cleanly.
                        let report = RelayReport {
                            bytes_in: 0,
                            bytes_out: 0,
                            end: RelayEnd::ServerError,
                        };
                        session.handle_relay_end(Instant::now(), report);
                        continue;
                    };
                    return Some(Tunnel {
                        session,
                        target,
                        early: relay::Early {
                            to_target: input.pending().to_vec(),
                            to_client: std::mem::take(&mut target_input).into_pending(),
                        },
                        plan,
                    });
                }
            }
        }
        if session.is_done() {
            return None;
        }
        let now = Instant::now();
        match session.poll_timeout() {
            Some(deadline) if deadline <= now => {
                session.handle_timeout(now);
                continue;
            }
            Some(deadline) => {
                let _ = client.set_read_timeout(Some(deadline - now));
            }
            None => {
                let _ = client.set_read_timeout(None);
            }
        }
        let Some(space) = input.space() else {
            input.on_full(&mut session);
            continue;
        };
        let result = (&*client).read(space);
        input.on_read(&mut session, result);
    }
}

/// One client's state while its session runs, for [`Connection::carry_out`].
struct Connection<'a> {
    client: &'a TcpStream,
    session: &'a mut Session,
    input: &'a mut HandshakeInput,
    target: &'a mut Option<TcpStream>,
    /// Bytes from the target while a parent chain is negotiated.
    target_input: &'a mut TargetInput,
    bind_listener: &'a mut Option<TcpListener>,
    hooks: &'a Hooks,
}

impl Connection<'_> {
    /// Carries out one intent; `Break(None)` when the session asked to close,
    /// `Break(Some(plan))` when it asked for the relay.
    ///
    /// Kept out of line: the intents' temporaries would otherwise sit in the handshake's
    /// frame, under its deepest calls (parsing).
    #[inline(never)]
    fn carry_out(&mut self, intent: Intent) -> ControlFlow<Option<relay::RelayPlan>> {
        match intent {
            Intent::Resolve { host, port } => {
                let result = net::resolve(&host, port);
                self.session
                    .handle_resolved(Instant::now(), result.as_deref().map_err(|e| *e));
            }
            Intent::Connect {
                addrs,
                timeout,
                source,
            } => match net::connect(&addrs, timeout, source) {
                Ok((stream, local, peer)) => {
                    self.session.handle_connected(Instant::now(), local, peer);
                    *self.target = Some(stream);
                }
                Err(e) => self.session.handle_connect_failed(Instant::now(), e),
            },
            Intent::Bind { ip } => match net::listen(SocketAddr::new(ip, 0), 1) {
                Ok(l) => match l.local_addr() {
                    Ok(addr) => {
                        self.session.handle_bind_listening(Instant::now(), addr);
                        *self.bind_listener = Some(l);
                    }
                    Err(_) => self
                        .session
                        .handle_bind_failed(Instant::now(), BindError::Listen),
                },
                Err(_) => self
                    .session
                    .handle_bind_failed(Instant::now(), BindError::Listen),
            },
            Intent::AcceptPeer { deadline } => {
                let result = match self.bind_listener.take() {
                    Some(l) => accept_peer(&l, self.client, self.input, self.session, deadline),
                    None => Err(BindError::Listen),
                };
                match result {
                    Ok((stream, local, peer)) => {
                        self.session
                            .handle_bind_accepted(Instant::now(), local, peer);
                        *self.target = Some(stream);
                    }
                    Err(e) => self.session.handle_bind_failed(Instant::now(), e),
                }
            }
            Intent::Relay(plan) => return ControlFlow::Break(Some(plan)),
            Intent::SendToTarget { bytes } => self.send_target(&bytes),
            Intent::ReadTarget { deadline } => self.read_target(deadline),
            Intent::Log(record) => (self.hooks.log)(&record),
            Intent::Close => return ControlFlow::Break(None),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Parent chain negotiation, out of line so that `carry_out`'s frame (under the connect
/// path of every connection) does not grow with it.
impl Connection<'_> {
    /// Writes a hop's message to the target.
    #[inline(never)]
    fn send_target(&mut self, bytes: &[u8]) {
        let sent = self.target.as_ref().map(|t| (&*t).write_all(bytes));
        if !matches!(sent, Some(Ok(()))) {
            self.session.handle_target_closed(Instant::now());
        }
    }

    /// One read from the target during parent chain negotiation, bounded by `deadline`.
    #[inline(never)]
    fn read_target(&mut self, deadline: Instant) {
        let now = Instant::now();
        let Some(target) = self.target.as_ref() else {
            self.session.handle_target_closed(now);
            return;
        };
        if deadline <= now {
            self.session.handle_timeout(now);
            return;
        }
        let Some(space) = self.target_input.space() else {
            self.target_input.on_full(self.session);
            return;
        };
        let result = target
            .set_read_timeout(Some(deadline - now))
            .and_then(|()| (&*target).read(space));
        self.target_input.on_read(self.session, result);
    }
}

/// Waits for the BIND peer on `listener` until `deadline`, also watching the client: its
/// end of stream ends the wait, and bytes it sends meanwhile are kept for the relay.
fn accept_peer(
    listener: &TcpListener,
    client: &TcpStream,
    input: &mut HandshakeInput,
    session: &mut Session,
    deadline: Instant,
) -> Result<(TcpStream, SocketAddr, SocketAddr), BindError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(BindError::Timeout);
        }
        let client_events = if input.space().is_some() {
            sys::POLLIN
        } else {
            0
        };
        let mut fds = [
            sys::poll_fd(listener, sys::POLLIN),
            sys::poll_fd(client, client_events),
        ];
        let timeout_ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        match sys::poll(&mut fds, timeout_ms) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(BindError::Accept),
        }
        if fds[0].revents != 0 {
            let (stream, peer) = listener.accept().map_err(|_| BindError::Accept)?;
            let local = stream.local_addr().map_err(|_| BindError::Accept)?;
            return Ok((stream, local, peer));
        }
        if fds[1].revents != 0 {
            let Some(space) = input.space() else { continue };
            match (&*client).read(space) {
                Ok(0) | Err(_) => return Err(BindError::ClientClosed),
                Ok(n) => input.on_read(session, Ok(n)),
            }
        }
    }
}
