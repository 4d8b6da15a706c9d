//! Drives one session on a blocking client socket: reads the handshake, carries out each
//! intent in order (resolve, connect, relay, log, close) and feeds the answers back.

use crate::hooks::Hooks;
use crate::input::HandshakeInput;
use crate::{net, relay, sys};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Instant;
use triproxy_policy::service::ServicePolicy;
use triproxy_policy::session::{BindError, Intent, RelayEnd, RelayReport, Session};

/// Serves one client (accepted from `peer` by a listener on `listen`) until its session
/// ends; both sockets are closed on return.
pub fn serve_connection(
    client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: &Hooks,
) {
    let Ok(local) = net::accepted_local(listen, &client) else {
        // The client is already gone; there is no one to answer and nothing to log.
        return;
    };
    let mut session = Session::new(Instant::now(), policy, peer, local, (hooks.civil_time)());
    let mut input = HandshakeInput::default();
    let mut target: Option<TcpStream> = None;
    let mut bind_listener: Option<TcpListener> = None;
    loop {
        while let Some(t) = session.poll_transmit() {
            if (&client).write_all(&t).is_err() {
                session.handle_client_eof(Instant::now());
            }
        }
        if let Some(intent) = session.poll_intent() {
            match intent {
                Intent::Resolve { host, port } => {
                    let result = net::resolve(&host, port);
                    session.handle_resolved(Instant::now(), result.as_deref().map_err(|e| *e));
                }
                Intent::Connect {
                    addrs,
                    timeout,
                    source,
                } => match net::connect(&addrs, timeout, source) {
                    Ok((stream, local, peer)) => {
                        session.handle_connected(Instant::now(), local, peer);
                        target = Some(stream);
                    }
                    Err(e) => session.handle_connect_failed(Instant::now(), e),
                },
                Intent::Bind { ip } => match net::listen(SocketAddr::new(ip, 0), 1) {
                    Ok(l) => match l.local_addr() {
                        Ok(addr) => {
                            session.handle_bind_listening(Instant::now(), addr);
                            bind_listener = Some(l);
                        }
                        Err(_) => session.handle_bind_failed(Instant::now(), BindError::Listen),
                    },
                    Err(_) => session.handle_bind_failed(Instant::now(), BindError::Listen),
                },
                Intent::AcceptPeer { deadline } => {
                    let result = match bind_listener.take() {
                        Some(l) => accept_peer(&l, &client, &mut input, &mut session, deadline),
                        None => Err(BindError::Listen),
                    };
                    match result {
                        Ok((stream, local, peer)) => {
                            session.handle_bind_accepted(Instant::now(), local, peer);
                            target = Some(stream);
                        }
                        Err(e) => session.handle_bind_failed(Instant::now(), e),
                    }
                }
                Intent::Relay {
                    idle_timeout,
                    mode,
                    to_client,
                    to_target,
                } => {
                    // (The relay makes both sockets non-blocking: read timeouts no longer apply.)
                    let plan = relay::RelayPlan {
                        mode,
                        idle_timeout,
                        to_client,
                        to_target,
                    };
                    let report = match &target {
                        Some(t) => relay::relay(&client, t, input.pending(), &plan),
                        None => RelayReport {
                            bytes_in: 0,
                            bytes_out: 0,
                            end: RelayEnd::ServerError,
                        },
                    };
                    session.handle_relay_end(Instant::now(), report);
                }
                Intent::Log(record) => (hooks.log)(&record),
                Intent::Close => return,
                _ => {}
            }
            continue;
        }
        if session.is_done() {
            return;
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
        let result = (&client).read(space);
        input.on_read(&mut session, result);
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
