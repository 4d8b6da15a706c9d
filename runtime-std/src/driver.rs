//! Drives one session on a blocking client socket: reads the handshake, carries out each
//! intent in order (resolve, connect, relay, log, close) and feeds the answers back.

use crate::hooks::Hooks;
use crate::input::HandshakeInput;
use crate::{net, relay};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;
use triproxy_policy::service::ServicePolicy;
use triproxy_policy::session::{Intent, Session};

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
                Intent::Relay { idle_timeout, mode } => {
                    let _ = client.set_read_timeout(None);
                    let report = match &target {
                        Some(t) => relay::relay(&client, t, input.pending(), mode, idle_timeout),
                        None => triproxy_policy::session::RelayReport {
                            bytes_in: 0,
                            bytes_out: 0,
                            end: triproxy_policy::session::RelayEnd::ServerError,
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
