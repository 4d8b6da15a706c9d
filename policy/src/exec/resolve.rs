//! Name resolution for [`Intent::Resolve`](crate::session::Intent::Resolve), for every
//! runtime: the system resolver, or one lookup of the process's own resolver driven on
//! its own sockets (see [`crate::names`]).
//!
//! A lookup gets its own UDP socket (a fresh random port from the system for each, on top
//! of the machine's random query IDs and its source and question checks), sends its
//! queries there and waits there until its own deadline. Every connection's lookups share
//! the one machine, and so its cache, through a lock held only while the machine is
//! called. A truncated answer is asked again over TCP: the connection is opened, written
//! and read here. A lookup that is abandoned (its connection's task dropped) is
//! forgotten by the machine, so nothing of it stays queued.
//!
//! Limits: one answer buffer of [`ANSWER_BUFFER`] bytes per lookup (a longer datagram is
//! cut, fails to parse and is dropped); one UDP socket per lookup, of the family of the
//! server being asked (failing over to a server of the other family opens a new one, and
//! an answer still due on the old one is then lost and retried); at most
//! [`MAX_IDLE_ROUNDS`] consecutive socket errors before the lookup fails.

use super::Io;
use crate::names::{self, lock};
use crate::service::{ServicePolicy, SourceAddrs};
use crate::session::{ResolveError, MAX_CONNECT_ADDRS};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use triproxy_dns::{Answer, Event, Family, QueryId, Resolver, TcpToken, Transmit, Transport};
use triproxy_wire::DomainName;

/// Bytes read for one answer (UDP answers without EDNS are at most 512 bytes; TCP answers
/// are read in pieces of this size).
pub(crate) const ANSWER_BUFFER: usize = 4096;

/// Socket errors in a row that end a lookup (instead of spinning on a broken socket).
pub(crate) const MAX_IDLE_ROUNDS: u32 = 16;

/// Resolves `host` as `policy` says: addresses with `port`, in the service's family order,
/// at most [`MAX_CONNECT_ADDRS`].
pub(crate) async fn resolve<R: Io>(
    io: &R,
    policy: &ServicePolicy,
    host: DomainName,
    port: u16,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let family = policy.family;
    if let Some(shared) = policy.names.resolver() {
        let name = host.as_str().ok_or(ResolveError::InvalidName)?;
        match lookup(io, shared, name, family).await {
            Ok(answers) => {
                return Ok(answers
                    .iter()
                    .take(MAX_CONNECT_ADDRS)
                    .map(|a| SocketAddr::new(a.addr, port))
                    .collect())
            }
            // No `nserver` and neither `nsrecord` nor `fakeresolve` knew it: the system
            // resolver, as 3proxy does without `nserver`.
            Err(triproxy_dns::ResolveError::NoServers) => {}
            Err(triproxy_dns::ResolveError::NotFound) => return Err(ResolveError::NotFound),
            Err(triproxy_dns::ResolveError::InvalidName) => return Err(ResolveError::InvalidName),
            Err(_) => return Err(ResolveError::Failed),
        }
    }
    let found = io.resolve(host, port).await?;
    let mut ordered = names::order(family, found);
    ordered.truncate(MAX_CONNECT_ADDRS);
    if ordered.is_empty() {
        return Err(ResolveError::NotFound);
    }
    Ok(ordered)
}

/// Forgets the lookup when its driver goes away before the end (a dropped task).
struct Guard<'a> {
    shared: &'a Mutex<Resolver>,
    id: QueryId,
    finished: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            lock(self.shared).forget(self.id);
        }
    }
}

/// One lookup's sockets.
struct Sockets<R: Io> {
    /// The UDP socket and whether it is IPv6.
    udp: Option<(R::Datagram, bool)>,
    /// The TCP connection of a truncated answer's retry.
    tcp: Option<(TcpToken, R::Stream)>,
}

/// Runs one lookup of the shared resolver to its end.
pub(crate) async fn lookup<R: Io>(
    io: &R,
    shared: &Mutex<Resolver>,
    name: &str,
    family: Family,
) -> Result<Vec<Answer>, triproxy_dns::ResolveError> {
    let id = lock(shared).resolve(io.now(), name, family);
    let mut guard = Guard {
        shared,
        id,
        finished: false,
    };
    let mut sockets: Sockets<R> = Sockets {
        udp: None,
        tcp: None,
    };
    let mut buf = vec![0u8; ANSWER_BUFFER];
    let mut errors = 0u32;
    loop {
        let (sends, result, deadline) = {
            let mut r = lock(shared);
            let sends: Vec<Transmit> = core::iter::from_fn(|| r.poll_transmit_of(id)).collect();
            let mut result = None;
            while let Some(event) = r.poll_event_of(id) {
                match event {
                    Event::Resolved(done) => result = Some(done.result),
                    Event::CloseTcp(token) => {
                        if sockets.tcp.as_ref().is_some_and(|(t, _)| *t == token) {
                            sockets.tcp = None;
                        }
                    }
                }
            }
            (sends, result, r.poll_timeout_of(id))
        };
        if let Some(result) = result {
            guard.finished = true;
            return result;
        }
        let sent_any = !sends.is_empty();
        for t in sends {
            send(io, shared, &mut sockets, t).await;
        }
        let Some(deadline) = deadline else {
            if sent_any {
                continue;
            }
            // Nothing in flight and no result: cannot happen with a sound machine; fail
            // rather than wait forever.
            return Err(triproxy_dns::ResolveError::ServerFailure);
        };
        let now = io.now();
        if deadline <= now {
            lock(shared).handle_timeout(now);
            continue;
        }
        let failed = if let Some((token, stream)) = sockets.tcp.as_ref() {
            let token = *token;
            match io.read(stream, &mut buf, Some(deadline)).await {
                Ok(n) if n > 0 => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    lock(shared).handle_tcp_data(io.now(), token, bytes);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    lock(shared).handle_timeout(io.now());
                    false
                }
                _ => {
                    sockets.tcp = None;
                    lock(shared).handle_tcp_closed(io.now(), token);
                    false
                }
            }
        } else if let Some((udp, _)) = sockets.udp.as_ref() {
            match io.recv_from(udp, &mut buf, Some(deadline)).await {
                Ok((n, from)) => {
                    let bytes = buf.get(..n).unwrap_or_default();
                    lock(shared).handle_datagram(io.now(), from, bytes);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    lock(shared).handle_timeout(io.now());
                    false
                }
                Err(_) => true,
            }
        } else {
            // Every send failed: the queries time out (and fail over) at their deadline.
            true
        };
        if failed {
            errors += 1;
            if errors >= MAX_IDLE_ROUNDS {
                return Err(triproxy_dns::ResolveError::ServerFailure);
            }
        } else {
            errors = 0;
        }
    }
}

/// Sends one query: a datagram on the lookup's socket (opened on first use), or a new TCP
/// connection written with the framed query. A failure to send is left to the query's
/// deadline (UDP) or reported as the connection closed (TCP).
async fn send<R: Io>(io: &R, shared: &Mutex<Resolver>, sockets: &mut Sockets<R>, t: Transmit) {
    match t.transport {
        Transport::Udp => {
            let v6 = t.server.is_ipv6();
            if sockets.udp.as_ref().is_none_or(|(_, is_v6)| *is_v6 != v6) {
                let any = if v6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                sockets.udp = io
                    .udp_bind(SocketAddr::new(any, 0))
                    .ok()
                    .map(|(s, _)| (s, v6));
            }
            if let Some((udp, _)) = sockets.udp.as_ref() {
                let _ = io.send_to(udp, &t.payload, t.server).await;
            }
        }
        Transport::Tcp => {
            let Some(token) = t.tcp else {
                return;
            };
            let timeout = lock(shared)
                .poll_timeout_of(t.lookup)
                .map(|d| d.saturating_duration_since(io.now()))
                .unwrap_or_default();
            let connected = io
                .connect(&[t.server], timeout, SourceAddrs::default())
                .await;
            let written = match connected {
                Ok((stream, _, _)) => match io.write_all(&stream, &t.payload).await {
                    Ok(()) => Some(stream),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            match written {
                Some(stream) => sockets.tcp = Some((token, stream)),
                None => lock(shared).handle_tcp_closed(io.now(), token),
            }
        }
    }
}
