//! Drives one session on an async client socket (the async mirror of runtime-std's driver).

use crate::relay::relay;
use async_io::{Async, Timer};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::service::ServicePolicy;
use triproxy_policy::session::{
    ConnectError, Intent, RelayEnd, RelayReport, Session, MAX_CONNECT_ADDRS,
};
use triproxy_runtime_std::{net, Hooks, HANDSHAKE_BUFFER};

/// Serves one accepted client until its session ends.
pub(crate) async fn serve_connection(
    client: Async<TcpStream>,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
) {
    let (Ok(peer), Ok(local)) = (client.get_ref().peer_addr(), client.get_ref().local_addr())
    else {
        return;
    };
    let _ = client.get_ref().set_nodelay(true);
    let mut session = Session::new(Instant::now(), policy, peer, local, (hooks.civil_time)());
    let mut buf = [0u8; HANDSHAKE_BUFFER];
    let mut len = 0usize;
    let mut target: Option<Async<TcpStream>> = None;
    loop {
        while let Some(t) = session.poll_transmit() {
            if (&client).write_all(&t).await.is_err() {
                session.handle_client_eof(Instant::now());
            }
        }
        if let Some(intent) = session.poll_intent() {
            match intent {
                Intent::Resolve { host, port } => {
                    let result = smol::unblock(move || net::resolve(&host, port)).await;
                    session.handle_resolved(Instant::now(), result.as_deref().map_err(|e| *e));
                }
                Intent::Connect { addrs, timeout } => match connect(&addrs, timeout).await {
                    Ok((stream, l, p)) => {
                        session.handle_connected(Instant::now(), l, p);
                        target = Some(stream);
                    }
                    Err(e) => session.handle_connect_failed(Instant::now(), e),
                },
                Intent::Relay { idle_timeout } => {
                    let report = match &target {
                        Some(t) => relay(&client, t, &buf[..len], idle_timeout).await,
                        None => RelayReport {
                            bytes_in: 0,
                            bytes_out: 0,
                            end: RelayEnd::ServerError,
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
        let deadline = session.poll_timeout();
        if let Some(d) = deadline {
            if d <= Instant::now() {
                session.handle_timeout(Instant::now());
                continue;
            }
        }
        let Some(space) = buf.get_mut(len..).filter(|s| !s.is_empty()) else {
            session.handle_client_eof(Instant::now());
            continue;
        };
        let read = async { (&client).read(space).await };
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
        match result {
            Ok(0) => session.handle_client_eof(Instant::now()),
            Ok(n) => {
                len += n;
                let used = session.handle_input(Instant::now(), &buf[..len]).min(len);
                buf.copy_within(used..len, 0);
                len -= used;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => session.handle_timeout(Instant::now()),
            Err(_) => session.handle_client_eof(Instant::now()),
        }
    }
}

/// Connects to the first address that accepts within `timeout` each.
async fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(Async<TcpStream>, SocketAddr, SocketAddr), ConnectError> {
    let mut last = ConnectError::Other;
    for addr in addrs.iter().take(MAX_CONNECT_ADDRS) {
        let attempt = async { Async::<TcpStream>::connect(*addr).await }.or(async {
            Timer::after(timeout).await;
            Err(io::ErrorKind::TimedOut.into())
        });
        match attempt.await {
            Ok(stream) => {
                let _ = stream.get_ref().set_nodelay(true);
                match (stream.get_ref().local_addr(), stream.get_ref().peer_addr()) {
                    (Ok(l), Ok(p)) => return Ok((stream, l, p)),
                    _ => last = ConnectError::Other,
                }
            }
            Err(e) => last = net::classify_connect_error(&e),
        }
    }
    Err(last)
}
