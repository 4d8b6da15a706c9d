//! Runs the DNS proxy (3proxy `dnspr`): one loop over the service socket and the sockets
//! of the queries in flight. [`triproxy_dns::proxy`] decides what each query gets,
//! [`crate::dnspr`] who may ask and what is logged, the process's resolver (its cache
//! shared with every service) resolves A and AAAA.
//!
//! Each query in flight has a socket of its own toward the name servers, opened on its
//! first send (a fresh random port per query: the client's ID is all the randomness a
//! relayed query has). A lookup's answers are fed to the shared resolver, which checks
//! their source, ID and question; a relayed answer is taken only from the first
//! `nserver`'s address and port, when [`forward_ok`] accepts it.
//!
//! Limits: at most `max_clients` queries in flight (`maxconn`; more are dropped
//! unanswered, as a full queue would); a relayed query waits at most the `timeouts` DNS
//! value; at most [`BATCH`] datagrams are read from one socket per round. Lookups speak
//! UDP to the name servers from here (a `/tcp` server is asked over UDP too; the
//! resolver's TCP retry of a truncated answer fails over to the next server instead).
//! Without `nserver` (no own resolver), A and AAAA go to the system resolver, on this
//! loop, and everything else is answered NXDOMAIN.

use super::udp::BATCH;
use super::Io;
use crate::dnspr;
use crate::names::lock;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;
use triproxy_dns::proxy::{
    answer, error_reply, forward_ok, parse_query, plan, Plan, ProxyConfig, Query, MAX_FORWARDED,
};
use triproxy_dns::{Answer, Event, Family, QueryId, ResolveError, Resolver, Transport};
use triproxy_wire::{DomainName, LogCode};

/// What the loop serves.
pub(super) struct Service<'a, R: Io> {
    pub socket: &'a R::Datagram,
    pub local: SocketAddr,
    pub policy: super::PolicySource<'a>,
    pub config: ProxyConfig,
    /// Set when the service must end (see `exec::serve_datagrams`); queries in flight are
    /// dropped (their clients ask again, as after any lost datagram).
    pub stop: &'a core::sync::atomic::AtomicBool,
}

/// One query in flight.
struct Pending<R: Io> {
    client: SocketAddr,
    query: Query,
    started: Instant,
    asked: usize,
    kind: Kind,
    socket: Option<R::Datagram>,
    /// The answer, once there is one: (bytes to send, log code, answered address).
    done: Option<(Vec<u8>, LogCode, Option<IpAddr>)>,
}

enum Kind {
    /// Resolved by the shared resolver.
    Lookup(QueryId),
    /// Relayed to the first `nserver`.
    Forward {
        server: SocketAddr,
        deadline: Instant,
    },
}

/// Serves DNS until the service is stopped.
pub(super) async fn run<R: Io>(io: &R, service: &Service<'_, R>, max_pending: usize) {
    // The name servers of the start: a reload that changes them restarts the service.
    let start = (service.policy)();
    let resolver = start.names.resolver();
    let mut pending: Vec<Pending<R>> = Vec::new();
    let mut buf = vec![0u8; MAX_FORWARDED];
    loop {
        if service.stop.load(core::sync::atomic::Ordering::Acquire) {
            return;
        }
        if let Some(shared) = resolver {
            drive_lookups(io, shared, &mut pending).await;
        }
        expire_forwards(io.now(), &mut pending);
        finish_done(io, service, &mut pending).await;
        let deadline = next_deadline(resolver, &pending);
        let ready = {
            let mut sockets: Vec<&R::Datagram> = vec![service.socket];
            let mut owners = Vec::new();
            for (i, p) in pending.iter().enumerate() {
                if let Some(s) = p.socket.as_ref() {
                    sockets.push(s);
                    owners.push(i);
                }
            }
            match io.wait_readable(None, &sockets, deadline).await {
                Ok((_, ready)) => ready
                    .into_iter()
                    .map(|i| {
                        if i == 0 {
                            None
                        } else {
                            owners.get(i - 1).copied()
                        }
                    })
                    .collect::<Vec<_>>(),
                Err(_) => Vec::new(),
            }
        };
        for which in ready {
            match which {
                None => {
                    from_clients(io, service, resolver, &mut pending, max_pending, &mut buf).await
                }
                Some(i) => from_server(io, resolver, &mut pending, i, &mut buf),
            }
        }
    }
}

/// Sends each lookup's queries and takes its result.
async fn drive_lookups<R: Io>(io: &R, shared: &Mutex<Resolver>, pending: &mut [Pending<R>]) {
    let now = io.now();
    let mut sends = Vec::new();
    {
        let mut r = lock(shared);
        if r.poll_timeout().is_some_and(|d| d <= now) {
            r.handle_timeout(now);
        }
        for (i, p) in pending.iter_mut().enumerate() {
            let Kind::Lookup(id) = p.kind else { continue };
            while let Some(t) = r.poll_transmit_of(id) {
                match (t.transport, t.tcp) {
                    (Transport::Tcp, Some(token)) => r.handle_tcp_closed(now, token),
                    _ => sends.push((i, t)),
                }
            }
            while let Some(event) = r.poll_event_of(id) {
                if let Event::Resolved(resolved) = event {
                    let first = resolved
                        .result
                        .as_ref()
                        .ok()
                        .and_then(|a| a.first())
                        .map(|a| a.addr);
                    let (bytes, code) = answer(&p.query, &resolved.result);
                    p.done = Some((bytes, LogCode(code), first));
                }
            }
        }
    }
    for (i, t) in sends {
        let Some(p) = pending.get_mut(i) else {
            continue;
        };
        if p.socket.is_none() {
            p.socket = open_socket(io, t.server.is_ipv6());
        }
        if let Some(s) = p.socket.as_ref() {
            let _ = io.send_to(s, &t.payload, t.server).await;
        }
    }
}

/// Relayed queries whose server did not answer in time: dropped, logged 822.
fn expire_forwards<R: Io>(now: Instant, pending: &mut [Pending<R>]) {
    for p in pending.iter_mut() {
        if let Kind::Forward { deadline, .. } = p.kind {
            if deadline <= now && p.done.is_none() {
                p.done = Some((Vec::new(), LogCode(822), None));
            }
        }
    }
}

/// Sends the answers that are ready, logs them and forgets their queries.
async fn finish_done<R: Io>(io: &R, service: &Service<'_, R>, pending: &mut Vec<Pending<R>>) {
    let mut i = 0;
    while i < pending.len() {
        if pending.get(i).is_some_and(|p| p.done.is_some()) {
            let p = pending.swap_remove(i);
            if let Some((bytes, code, first)) = p.done {
                let server = match p.kind {
                    Kind::Forward { server, .. } => Some(server),
                    Kind::Lookup(_) => None,
                };
                reply(io, service, p.client, &bytes).await;
                let text = p.query.log_text(first);
                log(
                    io,
                    service,
                    p.client,
                    server,
                    p.started,
                    code,
                    text,
                    (p.asked, bytes.len()),
                );
            }
        } else {
            i += 1;
        }
    }
}

/// The earliest moment something is due: a lookup's retry or a relayed query's end.
fn next_deadline<R: Io>(
    resolver: Option<&Mutex<Resolver>>,
    pending: &[Pending<R>],
) -> Option<Instant> {
    let lookups = resolver.and_then(|r| lock(r).poll_timeout());
    let forwards = pending
        .iter()
        .filter_map(|p| match p.kind {
            Kind::Forward { deadline, .. } => Some(deadline),
            Kind::Lookup(_) => None,
        })
        .min();
    match (lookups, forwards) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Drains the service socket: each query is admitted, read and planned.
async fn from_clients<R: Io>(
    io: &R,
    service: &Service<'_, R>,
    resolver: Option<&Mutex<Resolver>>,
    pending: &mut Vec<Pending<R>>,
    max_pending: usize,
    buf: &mut [u8],
) {
    for _ in 0..BATCH {
        let Ok((n, client)) = io.try_recv_from(service.socket, buf) else {
            return;
        };
        let now = io.now();
        let datagram = buf.get(..n).unwrap_or_default();
        let policy = (service.policy)();
        if let Err(code) = dnspr::admit(&policy, client, io.civil_time()) {
            log(io, service, client, None, now, code, String::new(), (n, 0));
            continue;
        }
        let query = match parse_query(datagram) {
            Ok(q) => q,
            Err(e) => {
                let answer = error_reply(datagram, &e);
                if let Some(bytes) = answer.as_deref() {
                    reply(io, service, client, bytes).await;
                }
                let sent = answer.map_or(0, |a| a.len());
                log(
                    io,
                    service,
                    client,
                    None,
                    now,
                    LogCode(e.log_code()),
                    String::new(),
                    (n, sent),
                );
                continue;
            }
        };
        if pending.len() >= max_pending {
            // Too many in flight: dropped unanswered (the client retries).
            continue;
        }
        let kind = match plan(&query, &service.config) {
            Plan::Answer(bytes) => {
                reply(io, service, client, &bytes).await;
                let fake = match query.qtype() {
                    28 => service.config.fake_v6.map(IpAddr::V6),
                    _ => service.config.fake_v4.map(IpAddr::V4),
                };
                let text = query.log_text(fake);
                log(
                    io,
                    service,
                    client,
                    None,
                    now,
                    LogCode(0),
                    text,
                    (n, bytes.len()),
                );
                continue;
            }
            Plan::Resolve { name, family } => match resolver {
                Some(shared) => Kind::Lookup(lock(shared).resolve(now, &name, family)),
                None => {
                    let result = system_lookup(io, &name, family).await;
                    let first = result.as_ref().ok().and_then(|a| a.first()).map(|a| a.addr);
                    let (bytes, code) = answer(&query, &result);
                    reply(io, service, client, &bytes).await;
                    let text = query.log_text(first);
                    log(
                        io,
                        service,
                        client,
                        None,
                        now,
                        LogCode(code),
                        text,
                        (n, bytes.len()),
                    );
                    continue;
                }
            },
            Plan::Forward => {
                let server = resolver.and_then(|r| lock(r).servers().first().map(|s| s.addr));
                let Some(server) = server else {
                    let (bytes, code) = answer(&query, &Err(ResolveError::NotFound));
                    reply(io, service, client, &bytes).await;
                    let text = query.log_text(None);
                    log(
                        io,
                        service,
                        client,
                        None,
                        now,
                        LogCode(code),
                        text,
                        (n, bytes.len()),
                    );
                    continue;
                };
                let socket = open_socket(io, server.is_ipv6());
                let sent = match socket.as_ref() {
                    Some(s) => io.send_to(s, datagram, server).await.is_ok(),
                    None => false,
                };
                if !sent {
                    let code = if socket.is_none() { 818 } else { 820 };
                    log(
                        io,
                        service,
                        client,
                        Some(server),
                        now,
                        LogCode(code),
                        query.log_text(None),
                        (n, 0),
                    );
                    continue;
                }
                pending.push(Pending {
                    client,
                    query,
                    started: now,
                    asked: n,
                    kind: Kind::Forward {
                        server,
                        deadline: now + policy.timeouts.dns,
                    },
                    socket,
                    done: None,
                });
                continue;
            }
        };
        pending.push(Pending {
            client,
            query,
            started: now,
            asked: n,
            kind,
            socket: None,
            done: None,
        });
    }
}

/// Drains the socket of query `i`: a lookup's answers go to the resolver; a relayed
/// query's answer, if it is one, is ready to go back.
fn from_server<R: Io>(
    io: &R,
    resolver: Option<&Mutex<Resolver>>,
    pending: &mut [Pending<R>],
    i: usize,
    buf: &mut [u8],
) {
    let Some(p) = pending.get_mut(i) else { return };
    for _ in 0..BATCH {
        let Some(socket) = p.socket.as_ref() else {
            return;
        };
        let Ok((n, from)) = io.try_recv_from(socket, buf) else {
            return;
        };
        let bytes = buf.get(..n).unwrap_or_default();
        match p.kind {
            Kind::Lookup(_) => {
                if let Some(shared) = resolver {
                    lock(shared).handle_datagram(io.now(), from, bytes);
                }
            }
            Kind::Forward { server, .. } => {
                let from = SocketAddr::new(from.ip().to_canonical(), from.port());
                let server = SocketAddr::new(server.ip().to_canonical(), server.port());
                if from == server && p.done.is_none() && forward_ok(&p.query, bytes) {
                    p.done = Some((bytes.to_vec(), LogCode(0), None));
                    return;
                }
            }
        }
    }
}

/// A lookup with the system resolver (no `nserver`): addresses of `family` only.
async fn system_lookup<R: Io>(
    io: &R,
    name: &str,
    family: Family,
) -> Result<Vec<Answer>, ResolveError> {
    let host = DomainName::new(name.as_bytes()).map_err(|_| ResolveError::InvalidName)?;
    let found = io
        .resolve(host, 0)
        .await
        .map_err(|_| ResolveError::NotFound)?;
    let answers: Vec<Answer> = crate::names::order(family, found)
        .into_iter()
        .map(|a| Answer {
            addr: a.ip(),
            ttl: 0,
        })
        .collect();
    if answers.is_empty() {
        Err(ResolveError::NotFound)
    } else {
        Ok(answers)
    }
}

/// A socket toward the name servers, on any address of the family.
fn open_socket<R: Io>(io: &R, v6: bool) -> Option<R::Datagram> {
    let any = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    io.udp_bind(SocketAddr::new(any, 0)).ok().map(|(s, _)| s)
}

/// Sends `bytes` to `client` (nothing if empty).
async fn reply<R: Io>(io: &R, service: &Service<'_, R>, client: SocketAddr, bytes: &[u8]) {
    if !bytes.is_empty() {
        let _ = io.send_to(service.socket, bytes, client).await;
    }
}

#[allow(clippy::too_many_arguments)]
fn log<R: Io>(
    io: &R,
    service: &Service<'_, R>,
    client: SocketAddr,
    server: Option<SocketAddr>,
    started: Instant,
    code: LogCode,
    text: String,
    (asked, answered): (usize, usize),
) {
    let record = dnspr::record(
        &(service.policy)(),
        client,
        service.local,
        server,
        started,
        io.now(),
        code,
        text,
        (asked as u64, answered as u64),
    );
    io.log(&record);
}
