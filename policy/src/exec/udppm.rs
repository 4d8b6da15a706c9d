//! Runs a UDP port mapper (3proxy `udppm`): one loop over the service socket and every
//! client's own socket; the [`Mapping`] machine decides about each datagram.
//!
//! Limits: at most `maxconn` clients at once (the service's [`Associations`] table; a
//! newcomer beyond it is dropped until one expires); each client holds one socket, closed
//! when its mapping ends; at most [`BATCH`] datagrams are read from one socket per round.

use super::udp::BATCH;
use super::{resolve, Io};
use crate::datagram::Associations;
use crate::session::ResolveError;
use crate::udp::MAX_DATAGRAM;
use crate::udppm::Mapping;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use triproxy_wire::TargetAddr;

/// What the loop serves.
pub(super) struct Service<'a, R: Io> {
    pub socket: &'a R::Datagram,
    pub local: SocketAddr,
    pub policy: super::PolicySource<'a>,
    pub target: &'a TargetAddr,
    pub single: bool,
    /// Set when the service must end (see `exec::serve_datagrams`).
    pub stop: &'a core::sync::atomic::AtomicBool,
}

/// One client: its mapping and its socket toward the target.
struct Client<R: Io> {
    mapping: Mapping,
    socket: R::Datagram,
}

/// Serves the mapping until the service is stopped.
pub(super) async fn run<R: Io>(io: &R, service: &Service<'_, R>, max_clients: usize) {
    let idle = (service.policy)().timeouts.string_long;
    let mut table: Associations<Client<R>> = Associations::new(idle, max_clients.max(1));
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let now = io.now();
        for (_, client) in table.expire(now) {
            io.log(&client.mapping.finish(now, true));
        }
        if service.stop.load(core::sync::atomic::Ordering::Acquire) {
            // Every open mapping ends now, each with its record.
            let open: Vec<SocketAddr> = table.iter().map(|(a, _)| *a).collect();
            for addr in open {
                if let Some(client) = table.remove(&addr) {
                    io.log(&client.mapping.finish(now, false));
                }
            }
            return;
        }
        // The service socket first, then each client's, in the table's order.
        let order: Vec<SocketAddr> = table.iter().map(|(a, _)| *a).collect();
        let ready = {
            let mut sockets: Vec<&R::Datagram> = Vec::with_capacity(order.len() + 1);
            sockets.push(service.socket);
            sockets.extend(table.iter().map(|(_, c)| &c.socket));
            match io.wait_readable(None, &sockets, table.poll_timeout()).await {
                Ok((_, ready)) => ready,
                // poll(2) itself failed (EINTR, ENOMEM): look again.
                Err(_) => Vec::new(),
            }
        };
        for index in ready {
            if index == 0 {
                from_clients(io, service, &mut table, &mut buf).await;
            } else if let Some(addr) = order.get(index - 1) {
                from_target(io, service, *addr, &mut table, &mut buf).await;
            }
        }
    }
}

/// Drains the service socket: a known client's datagram goes out on its socket; a new
/// client's first one opens its mapping (or is refused, and logged).
async fn from_clients<R: Io>(
    io: &R,
    service: &Service<'_, R>,
    table: &mut Associations<Client<R>>,
    buf: &mut [u8],
) {
    for _ in 0..BATCH {
        let Ok((n, from)) = io.try_recv_from(service.socket, buf) else {
            return;
        };
        let now = io.now();
        if !table.refresh(now, &from) {
            if table.is_full() {
                // `maxconn` clients: dropped until one expires.
                continue;
            }
            let Some(client) = open(io, service, from).await else {
                continue;
            };
            if table.touch(now, from, move || client).is_err() {
                continue;
            }
        }
        if let Some(client) = table.get_mut(&from) {
            if client.mapping.from_client(io.now(), n) {
                let to = client.mapping.target();
                let payload = buf.get(..n).unwrap_or_default();
                let _ = io.send_to(&client.socket, payload, to).await;
            }
            if client.mapping.is_done() {
                finish(io, table, &from);
            }
        }
    }
}

/// Drains a client's socket: the target's answers go back to the client from the service
/// socket.
async fn from_target<R: Io>(
    io: &R,
    service: &Service<'_, R>,
    addr: SocketAddr,
    table: &mut Associations<Client<R>>,
    buf: &mut [u8],
) {
    for _ in 0..BATCH {
        let Some(client) = table.get_mut(&addr) else {
            return;
        };
        let Ok((n, from)) = io.try_recv_from(&client.socket, buf) else {
            return;
        };
        let now = io.now();
        if client.mapping.from_remote(now, from, n) {
            let payload = buf.get(..n).unwrap_or_default();
            let _ = io.send_to(service.socket, payload, addr).await;
            table.refresh(now, &addr);
        }
        let done = table.get_mut(&addr).is_some_and(|c| c.mapping.is_done());
        if done {
            finish(io, table, &addr);
            return;
        }
    }
}

/// A new client: the target resolved, the mapping decided, its socket opened. `None` when
/// refused (logged) or when no socket could be had.
async fn open<R: Io>(io: &R, service: &Service<'_, R>, from: SocketAddr) -> Option<Client<R>> {
    let current = (service.policy)();
    let policy = &current;
    let now = io.now();
    let target = match service.target {
        TargetAddr::Ip(addr) => *addr,
        TargetAddr::Domain(host, port) => {
            let found = resolve::resolve(io, policy, host.clone(), *port).await;
            match found.as_deref().map(<[SocketAddr]>::first) {
                Ok(Some(addr)) => *addr,
                Ok(None) | Err(_) => {
                    let error = found.err().unwrap_or(ResolveError::NotFound);
                    let local = service.local;
                    io.log(&Mapping::unresolved(
                        now,
                        policy,
                        from,
                        local,
                        service.target,
                        error,
                    ));
                    return None;
                }
            }
        }
    };
    let mapping = match Mapping::open(
        now,
        policy,
        from,
        service.local,
        io.civil_time(),
        service.target,
        target,
        service.single,
    ) {
        Ok(m) => m,
        Err(refusal) => {
            io.log(&refusal);
            return None;
        }
    };
    let source = policy.external;
    let ip = if target.is_ipv6() {
        IpAddr::V6(source.v6.unwrap_or(Ipv6Addr::UNSPECIFIED))
    } else {
        IpAddr::V4(source.v4.unwrap_or(Ipv4Addr::UNSPECIFIED))
    };
    let (socket, _) = io.udp_bind(SocketAddr::new(ip, 0)).ok()?;
    Some(Client { mapping, socket })
}

/// Ends `addr`'s mapping now and logs it.
fn finish<R: Io>(io: &R, table: &mut Associations<Client<R>>, addr: &SocketAddr) {
    if let Some(client) = table.remove(addr) {
        io.log(&client.mapping.finish(io.now(), false));
    }
}
