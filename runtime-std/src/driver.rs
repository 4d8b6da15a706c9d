//! Drives one session on a blocking client socket: reads the handshake, carries out each
//! intent in order (resolve, connect, relay, log, close) and feeds the answers back.

use crate::hooks::Hooks;
use crate::{net, relay};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;
use triproxy_policy::service::ServicePolicy;
use triproxy_policy::session::{Intent, Session};

/// Bytes of handshake input held per connection. The longest SOCKS message (a SOCKS4a
/// request with a 255-byte user id and a 255-byte name) is 520 bytes, so one whole message
/// always fits; anything the machine leaves unconsumed after the request is pipelined
/// client data for the target.
pub const HANDSHAKE_BUFFER: usize = 1024;

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
    let mut buf = [0u8; HANDSHAKE_BUFFER];
    let mut len = 0usize;
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
                        Some(t) => relay::relay(&client, t, &buf[..len], mode, idle_timeout),
                        None => triproxy_policy::session::RelayReport {
                            bytes_in: 0,
                            bytes_out: 0,
                            end: triproxy_policy::session::RelayEnd::ServerError,
                        },
                    };
                    len = 0;
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
        let Some(space) = buf.get_mut(len..).filter(|s| !s.is_empty()) else {
            // Cannot happen with a correct machine (a whole message always fits); end the
            // connection rather than spin.
            session.handle_client_eof(Instant::now());
            continue;
        };
        match (&client).read(space) {
            Ok(0) => session.handle_client_eof(Instant::now()),
            Ok(n) => {
                len += n;
                let used = session.handle_input(Instant::now(), &buf[..len]).min(len);
                buf.copy_within(used..len, 0);
                len -= used;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                session.handle_timeout(Instant::now())
            }
            Err(_) => session.handle_client_eof(Instant::now()),
        }
    }
}
