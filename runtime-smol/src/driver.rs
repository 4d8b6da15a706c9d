//! Drives one session on an async client socket (the async mirror of runtime-std's driver).
//!
//! The handshake runs in its own heap-allocated future that is freed before the relay
//! starts, so an established tunnel's task keeps only the relay state and the (small)
//! session: the handshake buffer and SOCKS machine are not carried for the tunnel's life.

use crate::relay::relay;
use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt, FutureExt};
use std::io;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::service::{ServicePolicy, SourceAddrs};
use triproxy_policy::session::{BindError, ConnectError, Intent, Session, MAX_CONNECT_ADDRS};
use triproxy_runtime_std::relay::{Early, RelayPlan};
use triproxy_runtime_std::{net, HandshakeInput, Hooks, TargetInput};

/// What the handshake hands to the relay phase.
struct Tunnel {
    session: Session,
    target: Async<TcpStream>,
    /// Bytes read during the handshake for the relay to deliver first (no allocation when
    /// there are none).
    early: Early,
    plan: RelayPlan,
}

/// Serves one client (accepted from `peer` by a listener on `listen`) until its session
/// ends.
pub(crate) async fn serve_connection(
    client: Async<TcpStream>,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
) {
    let Some(mut tunnel) = Box::pin(handshake(&client, peer, listen, policy, &hooks)).await else {
        return;
    };
    let report = relay(
        &client,
        &tunnel.target,
        std::mem::take(&mut tunnel.early),
        &tunnel.plan,
    )
    .await;
    tunnel.session.handle_relay_end(Instant::now(), report);
    while let Some(intent) = tunnel.session.poll_intent() {
        if let Intent::Log(record) = intent {
            (hooks.log)(&record);
        }
    }
}

/// Runs the session until it asks for a relay (returns the tunnel) or ends (returns None).
async fn handshake(
    client: &Async<TcpStream>,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: &Hooks,
) -> Option<Tunnel> {
    let Ok(local) = net::accepted_local(listen, client.get_ref()) else {
        return None;
    };
    let mut session = Session::new(Instant::now(), policy, peer, local, (hooks.civil_time)());
    let mut input = HandshakeInput::default();
    let mut target: Option<Async<TcpStream>> = None;
    let mut bind_listener: Option<Async<TcpListener>> = None;
    let mut target_input = TargetInput::default();
    loop {
        while let Some(t) = session.poll_transmit() {
            if { client }.write_all(&t).await.is_err() {
                session.handle_client_eof(Instant::now());
            }
        }
        if let Some(intent) = session.poll_intent() {
            match intent {
                Intent::Resolve { host, port } => {
                    let result = smol::unblock(move || net::resolve(&host, port)).await;
                    session.handle_resolved(Instant::now(), result.as_deref().map_err(|e| *e));
                }
                Intent::Connect {
                    addrs,
                    timeout,
                    source,
                } => match connect(&addrs, timeout, source).await {
                    Ok((stream, l, p)) => {
                        session.handle_connected(Instant::now(), l, p);
                        target = Some(stream);
                    }
                    Err(e) => session.handle_connect_failed(Instant::now(), e),
                },
                Intent::Bind { ip } => match bind(ip) {
                    Ok((l, addr)) => {
                        session.handle_bind_listening(Instant::now(), addr);
                        bind_listener = Some(l);
                    }
                    Err(e) => session.handle_bind_failed(Instant::now(), e),
                },
                Intent::AcceptPeer { deadline } => {
                    let result = match bind_listener.take() {
                        Some(l) => {
                            accept_peer(&l, client, &mut input, &mut session, deadline).await
                        }
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
                Intent::Relay(plan) => {
                    // Flush the success reply before handing over.
                    while let Some(t) = session.poll_transmit() {
                        if { client }.write_all(&t).await.is_err() {
                            session.handle_client_eof(Instant::now());
                        }
                    }
                    match target.take() {
                        Some(target) => {
                            return Some(Tunnel {
                                session,
                                target,
                                early: Early {
                                    to_target: input.pending().to_vec(),
                                    to_client: std::mem::take(&mut target_input).into_pending(),
                                },
                                plan,
                            })
                        }
                        None => session.handle_client_eof(Instant::now()),
                    }
                }
                Intent::SendToTarget { bytes } => {
                    let sent = match target.as_ref() {
                        Some(t) => { t }.write_all(&bytes).await.is_ok(),
                        None => false,
                    };
                    if !sent {
                        session.handle_target_closed(Instant::now());
                    }
                }
                Intent::ReadTarget { deadline } => {
                    read_target(target.as_ref(), &mut target_input, &mut session, deadline).await
                }
                Intent::Log(record) => (hooks.log)(&record),
                Intent::Close => return None,
                _ => {}
            }
            continue;
        }
        if session.is_done() {
            return None;
        }
        let deadline = session.poll_timeout();
        if let Some(d) = deadline {
            if d <= Instant::now() {
                session.handle_timeout(Instant::now());
                continue;
            }
        }
        let Some(space) = input.space() else {
            input.on_full(&mut session);
            continue;
        };
        let read = async { { client }.read(space).await };
        let result = match deadline {
            Some(d) => {
                read.or(async {
                    Timer::at(d).await;
                    Err(io::ErrorKind::TimedOut.into())
                })
                .await
            }
            None => read.await,
        };
        input.on_read(&mut session, result);
    }
}

/// One read from the target during parent chain negotiation, bounded by `deadline`.
async fn read_target(
    target: Option<&Async<TcpStream>>,
    input: &mut TargetInput,
    session: &mut Session,
    deadline: Instant,
) {
    let Some(target) = target else {
        session.handle_target_closed(Instant::now());
        return;
    };
    let Some(space) = input.space() else {
        input.on_full(session);
        return;
    };
    let result = async { { target }.read(space).await }
        .or(async {
            Timer::at(deadline).await;
            Err(io::ErrorKind::TimedOut.into())
        })
        .await;
    input.on_read(session, result);
}

/// Connects to the first address that accepts within `timeout` each, with the socket
/// set-up of runtime-std (`TCP_NODELAY`, optional source address without a reserved port).
async fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
    source: SourceAddrs,
) -> Result<(Async<TcpStream>, SocketAddr, SocketAddr), ConnectError> {
    let mut last = ConnectError::Other;
    for addr in addrs.iter().take(MAX_CONNECT_ADDRS) {
        let attempt = connect_one(*addr, source).or(async {
            Timer::after(timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        });
        match attempt.await {
            Ok(stream) => match stream.get_ref().local_addr() {
                Ok(local) => return Ok((stream, local, *addr)),
                Err(_) => last = ConnectError::Other,
            },
            Err(e) => last = net::classify_connect_error(&e),
        }
    }
    Err(last)
}

async fn connect_one(addr: SocketAddr, source: SourceAddrs) -> io::Result<Async<TcpStream>> {
    let stream = Async::new_nonblocking(net::start_connect(addr, source)?)?;
    // Look before waiting: on loopback the handshake has usually completed by now, and a
    // wait costs an epoll re-arm and a wake-up.
    stream
        .write_with(|s| match s.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => match s.take_error()? {
                Some(e) => Err(e),
                None => Err(io::ErrorKind::WouldBlock.into()),
            },
            Err(e) => Err(e),
        })
        .await?;
    Ok(stream)
}

/// Opens the BIND listener on `ip` (port chosen by the system).
fn bind(ip: IpAddr) -> Result<(Async<TcpListener>, SocketAddr), BindError> {
    let listener = net::listen(SocketAddr::new(ip, 0), 1).map_err(|_| BindError::Listen)?;
    let addr = listener.local_addr().map_err(|_| BindError::Listen)?;
    Ok((Async::new(listener).map_err(|_| BindError::Listen)?, addr))
}

/// What ended one wait of [`accept_peer`].
enum Waited {
    Accepted(io::Result<(Async<TcpStream>, SocketAddr)>),
    ClientReadable,
    Deadline,
}

/// Waits for the BIND peer until `deadline`, also watching the client: its end of stream
/// ends the wait, and bytes it sends meanwhile are kept for the relay.
async fn accept_peer(
    listener: &Async<TcpListener>,
    client: &Async<TcpStream>,
    input: &mut HandshakeInput,
    session: &mut Session,
    deadline: Instant,
) -> Result<(Async<TcpStream>, SocketAddr, SocketAddr), BindError> {
    loop {
        let watch_client = input.space().is_some();
        let waited = async { Waited::Accepted(listener.accept().await) }
            .or(async {
                if watch_client {
                    let _ = client.readable().await;
                    Waited::ClientReadable
                } else {
                    future::pending().await
                }
            })
            .or(async {
                Timer::at(deadline).await;
                Waited::Deadline
            })
            .await;
        match waited {
            Waited::Accepted(Ok((stream, peer))) => {
                let local = stream
                    .get_ref()
                    .local_addr()
                    .map_err(|_| BindError::Accept)?;
                return Ok((stream, local, peer));
            }
            Waited::Accepted(Err(_)) => return Err(BindError::Accept),
            Waited::Deadline => return Err(BindError::Timeout),
            Waited::ClientReadable => {
                let Some(space) = input.space() else { continue };
                match client.get_ref().read(space) {
                    Ok(0) => return Err(BindError::ClientClosed),
                    Ok(n) => input.on_read(session, Ok(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Err(BindError::ClientClosed),
                }
            }
        }
    }
}
