//! The stub resolver machine: names in, DNS queries out, answers in, addresses (or a typed
//! failure) out, with `now` passed in. It does no I/O: the driver sends what
//! [`Resolver::poll_transmit`] gives, feeds back datagrams and TCP bytes, and calls
//! [`Resolver::handle_timeout`] at [`Resolver::poll_timeout`]. It is not a recursive
//! resolver and does not validate DNSSEC; it asks the configured `nserver`s with RD set.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::cache::{Cache, Cached};
use crate::config::{Family, ResolverConfig, Transport, MAX_SERVERS};

/// Longest name accepted, in wire form (RFC 1035 section 2.3.4): 255 bytes.
pub const MAX_NAME: usize = 255;
/// Largest query or answer over UDP without EDNS (RFC 1035 section 4.2.1).
pub const MAX_UDP_MESSAGE: usize = 512;
/// Largest message over TCP: the 2-byte length prefix bounds it (RFC 1035 section 4.2.2).
pub const MAX_TCP_MESSAGE: usize = 65535;
/// Longest CNAME chain followed inside one answer.
pub const MAX_CNAME_CHAIN: usize = 8;
/// `fakeresolve`'s IPv4 answer (3proxy's).
pub const FAKE_V4: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// `fakeresolve`'s IPv6 answer (3proxy's).
pub const FAKE_V6: Ipv6Addr = Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2);

/// Names one [`Resolver::resolve`] call; its [`Resolved`] event carries it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueryId(pub u64);

/// Names one TCP connection the machine asked for (see [`Transmit::tcp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpToken(pub u64);

/// A query to send.
///
/// For [`Transport::Udp`], `payload` is one datagram to `server`. For [`Transport::Tcp`],
/// the driver opens a new TCP connection to `server` for `tcp`'s token, writes `payload`
/// (already length-prefixed), feeds what it reads to [`Resolver::handle_tcp_data`], reports
/// a failed connect or an early close with [`Resolver::handle_tcp_closed`], and closes the
/// connection on [`Event::CloseTcp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The lookup this query serves (for a driver that gives each lookup its own socket:
    /// [`Resolver::poll_transmit_of`]).
    pub lookup: QueryId,
    /// The name server.
    pub server: SocketAddr,
    /// How to send it.
    pub transport: Transport,
    /// The connection, for TCP.
    pub tcp: Option<TcpToken>,
    /// The bytes: at most [`MAX_UDP_MESSAGE`] for UDP, 2 + [`MAX_TCP_MESSAGE`] for TCP.
    pub payload: Vec<u8>,
}

/// One address of an answer, with the seconds it may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The address.
    pub addr: IpAddr,
    /// Remaining TTL in seconds (0 for `nsrecord`, `fakeresolve` and IP literals).
    pub ttl: u32,
}

/// Why a name did not resolve. 3proxy logs every one of them as code 100 (host not found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// NXDOMAIN, NODATA, or an `nsrecord NAME 0.0.0.0` blacklist entry.
    NotFound,
    /// No server answered within `attempts` rounds.
    Timeout,
    /// The last server asked answered SERVFAIL, REFUSED or another error code.
    ServerFailure,
    /// Not a valid host name (empty, longer than [`MAX_NAME`], not ASCII, bad labels).
    InvalidName,
    /// `max_pending` lookups were already in flight.
    TooManyPending,
    /// No `nserver` is configured and neither `nsrecord` nor the cache knew the name: the
    /// caller should use the system resolver.
    NoServers,
}

impl ResolveError {
    /// A readable reason, for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "name not found",
            Self::Timeout => "no name server answered",
            Self::ServerFailure => "name servers failed",
            Self::InvalidName => "invalid host name",
            Self::TooManyPending => "too many lookups in flight",
            Self::NoServers => "no nserver configured",
        }
    }

    /// 3proxy's log code: 100 (host not found) for every one.
    pub fn log_code(self) -> u16 {
        100
    }
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ResolveError {}

/// A finished lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The lookup's id from [`Resolver::resolve`].
    pub id: QueryId,
    /// Addresses in the family order asked for, or why there are none.
    pub result: Result<Vec<Answer>, ResolveError>,
}

/// What the machine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A lookup finished.
    Resolved(Resolved),
    /// The driver should close this TCP connection: its query is over.
    CloseTcp(TcpToken),
}

#[derive(Debug, Clone)]
enum Part {
    NotAsked,
    Pending,
    Done(Result<Vec<Answer>, ResolveError>),
}

#[derive(Debug)]
struct Lookup {
    family: Family,
    v4: Part,
    v6: Part,
}

#[derive(Debug)]
struct Outstanding {
    lookup: QueryId,
    key: String,
    name: Name,
    rtype: RecordType,
    dns_id: u16,
    server: usize,
    tries: u32,
    transport: Transport,
    tcp: Option<(TcpToken, Vec<u8>)>,
    deadline: Instant,
    last_error: ResolveError,
}

/// The resolver.
///
/// Limits: at most `max_pending` lookups in flight (each has at most two queries out, A and
/// AAAA); the transmit queue holds at most one entry per query; the event queue holds at
/// most one [`Resolved`] per lookup plus one [`Event::CloseTcp`] per TCP connection; a TCP
/// answer is buffered up to 2 + [`MAX_TCP_MESSAGE`] bytes. Drain `poll_transmit` and
/// `poll_event` after every call.
///
/// Anti-spoofing: an answer is used only if it comes from the address the query went to
/// (for UDP), carries the query's random ID (from the caller's seed), is a response to a
/// standard query, and repeats the question (name, case-insensitively; type; class IN).
/// Anything else is dropped and counted in [`Resolver::dropped`].
#[derive(Debug)]
pub struct Resolver {
    config: ResolverConfig,
    rng: u64,
    next_lookup: u64,
    next_tcp: u64,
    lookups: BTreeMap<QueryId, Lookup>,
    queries: Vec<Outstanding>,
    transmits: VecDeque<Transmit>,
    /// Each event with the lookup it belongs to (see [`Resolver::poll_event_of`]).
    events: VecDeque<(QueryId, Event)>,
    cache_v4: Cache,
    cache_v6: Cache,
    dropped: u64,
}

impl Resolver {
    /// A resolver with `config` (servers past [`MAX_SERVERS`] are ignored), drawing query
    /// IDs from a generator seeded with `seed` (pass a random seed from the OS in the
    /// daemon: predictable IDs make spoofing easy).
    pub fn new(mut config: ResolverConfig, seed: u64) -> Self {
        config.servers.truncate(MAX_SERVERS);
        config.attempts = config.attempts.max(1);
        // A zero timeout would make `poll_timeout` return `now` again and again.
        config.try_timeout = config.try_timeout.max(Duration::from_millis(1));
        let (v4, v6) = (config.cache_v4, config.cache_v6);
        Resolver {
            config,
            rng: seed,
            next_lookup: 0,
            next_tcp: 0,
            lookups: BTreeMap::new(),
            queries: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            cache_v4: Cache::new(v4),
            cache_v6: Cache::new(v6),
            dropped: 0,
        }
    }

    /// Answers that were dropped (wrong source, ID or question, or undecodable).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Entries in the A and AAAA caches (live or not yet evicted).
    pub fn cache_entries(&self) -> (usize, usize) {
        (self.cache_v4.len(), self.cache_v6.len())
    }

    /// The name servers in use, in order (at most [`MAX_SERVERS`]).
    pub fn servers(&self) -> &[crate::config::NameServer] {
        &self.config.servers
    }

    /// Lookups in flight.
    pub fn pending(&self) -> usize {
        self.lookups.len()
    }

    /// Starts resolving `name` for `family`. The result comes as an [`Event::Resolved`]
    /// with the returned id, at once when `nsrecord`, `fakeresolve`, an IP literal or the
    /// cache answers.
    pub fn resolve(&mut self, now: Instant, name: &str, family: Family) -> QueryId {
        let id = QueryId(self.next_lookup);
        self.next_lookup = self.next_lookup.wrapping_add(1);
        let (want4, want6) = match family {
            Family::V4 => (true, false),
            Family::V6 => (false, true),
            Family::V4ThenV6 | Family::V6ThenV4 => (true, true),
        };
        let done = |result| Event::Resolved(Resolved { id, result });
        if let Ok(ip) = name.parse::<IpAddr>() {
            let ok = matches!(ip, IpAddr::V4(_)) && want4 || matches!(ip, IpAddr::V6(_)) && want6;
            let result = if ok {
                Ok(vec![Answer { addr: ip, ttl: 0 }])
            } else {
                Err(ResolveError::NotFound)
            };
            self.events.push_back((id, done(result)));
            return id;
        }
        let Some((key, qname)) = normalize(name) else {
            self.events
                .push_back((id, done(Err(ResolveError::InvalidName))));
            return id;
        };
        // `nsrecord`: the name's static addresses; `0.0.0.0` among them blacklists it.
        let statics: Vec<IpAddr> = self
            .config
            .static_records
            .iter()
            .filter(|(n, _)| n.strip_suffix('.').unwrap_or(n).eq_ignore_ascii_case(&key))
            .map(|&(_, a)| a)
            .collect();
        if statics.contains(&IpAddr::V4(Ipv4Addr::UNSPECIFIED)) {
            self.events
                .push_back((id, done(Err(ResolveError::NotFound))));
            return id;
        }
        let mut lookup = Lookup {
            family,
            v4: Part::NotAsked,
            v6: Part::NotAsked,
        };
        for (want, v6) in [(want4, false), (want6, true)] {
            if !want {
                continue;
            }
            let part = if self.config.fake_resolve {
                let addr = if v6 {
                    IpAddr::V6(FAKE_V6)
                } else {
                    IpAddr::V4(FAKE_V4)
                };
                Part::Done(Ok(vec![Answer { addr, ttl: 0 }]))
            } else if let Some(found) = Some(
                statics
                    .iter()
                    .filter(|a| a.is_ipv6() == v6)
                    .map(|&addr| Answer { addr, ttl: 0 })
                    .collect::<Vec<_>>(),
            )
            .filter(|v| !v.is_empty())
            {
                Part::Done(Ok(found))
            } else if let Some((cached, ttl)) = self.cache(v6).get(now, &key) {
                Part::Done(match cached {
                    Cached::Found(addrs) => {
                        Ok(addrs.into_iter().map(|addr| Answer { addr, ttl }).collect())
                    }
                    Cached::NotFound => Err(ResolveError::NotFound),
                })
            } else if self.config.servers.is_empty() {
                Part::Done(Err(ResolveError::NoServers))
            } else if self.lookups.len() >= self.config.max_pending {
                // Only lookups that ask a server count; the rest are answered at once.
                Part::Done(Err(ResolveError::TooManyPending))
            } else {
                let rtype = if v6 { RecordType::AAAA } else { RecordType::A };
                self.start_query(now, id, key.clone(), qname.clone(), rtype, 0, 0);
                Part::Pending
            };
            if v6 {
                lookup.v6 = part;
            } else {
                lookup.v4 = part;
            }
        }
        self.lookups.insert(id, lookup);
        self.try_finish(id);
        id
    }

    /// Abandons a lookup: no event will come for it, and its TCP connections are closed
    /// ([`Event::CloseTcp`]). A UDP query of it still in the transmit queue may be sent; its
    /// answer is then dropped like any unexpected datagram.
    pub fn cancel(&mut self, id: QueryId) {
        self.lookups.remove(&id);
        let mut i = 0;
        while i < self.queries.len() {
            if self.queries[i].lookup == id {
                let q = self.queries.remove(i);
                if let Some((t, _)) = q.tcp {
                    self.events.push_back((id, Event::CloseTcp(t)));
                }
                self.transmits
                    .retain(|t| t.tcp.is_none() || t.tcp != q.tcp.as_ref().map(|x| x.0));
            } else {
                i += 1;
            }
        }
    }

    /// A datagram arrived on the driver's query socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let Ok(msg) = Message::from_vec(bytes) else {
            self.dropped += 1;
            return;
        };
        let servers = &self.config.servers;
        let found = self.queries.iter().position(|q| {
            q.transport == Transport::Udp
                && q.dns_id == msg.id()
                && servers.get(q.server).is_some_and(|s| {
                    SocketAddr::new(s.addr.ip().to_canonical(), s.addr.port()) == from
                })
        });
        match found {
            Some(i) if matches_question(&self.queries[i], &msg) => self.handle_answer(now, i, &msg),
            _ => self.dropped += 1,
        }
    }

    /// Bytes read from the TCP connection `token`. Returns how many were used; bytes past
    /// the answer, or for a connection the machine no longer knows, are not.
    pub fn handle_tcp_data(&mut self, now: Instant, token: TcpToken, bytes: &[u8]) -> usize {
        let Some(i) = self
            .queries
            .iter()
            .position(|q| q.tcp.as_ref().is_some_and(|(t, _)| *t == token))
        else {
            return 0;
        };
        let Some((_, buf)) = self.queries[i].tcp.as_mut() else {
            return 0;
        };
        // Read the 2-byte length, then exactly that many bytes: never more than
        // 2 + MAX_TCP_MESSAGE are held.
        let mut used = 0;
        let complete = loop {
            let need = match buf.as_slice() {
                [a, b, ..] => 2 + usize::from(u16::from_be_bytes([*a, *b])),
                _ => 2,
            };
            if buf.len() >= 2 && buf.len() == need {
                break true;
            }
            let rest = bytes.get(used..).unwrap_or_default();
            let take = need.saturating_sub(buf.len()).min(rest.len());
            if take == 0 {
                break false;
            }
            buf.extend_from_slice(rest.get(..take).unwrap_or_default());
            used += take;
        };
        if complete {
            let body = buf.get(2..).unwrap_or_default();
            match Message::from_vec(body) {
                Ok(msg)
                    if msg.id() == self.queries[i].dns_id
                        && matches_question(&self.queries[i], &msg) =>
                {
                    self.handle_answer(now, i, &msg)
                }
                _ => {
                    // A bad answer on our own connection: this try failed.
                    self.dropped += 1;
                    self.retry(now, i, ResolveError::ServerFailure);
                }
            }
        }
        used
    }

    /// The TCP connection `token` could not be opened or closed before its answer: the try
    /// failed and the next server is asked.
    pub fn handle_tcp_closed(&mut self, now: Instant, token: TcpToken) {
        if let Some(i) = self
            .queries
            .iter()
            .position(|q| q.tcp.as_ref().is_some_and(|(t, _)| *t == token))
        {
            self.retry(now, i, ResolveError::ServerFailure);
        }
    }

    /// Tries whose deadline has passed go to the next server, or fail.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.queries.len() {
            if self.queries[i].deadline <= now && self.retry(now, i, ResolveError::Timeout) {
                continue; // removed: the next one moved to `i`
            }
            i += 1;
        }
    }

    /// The earliest deadline of a try in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queries.iter().map(|q| q.deadline).min()
    }

    /// The next query to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front().map(|(_, e)| e)
    }

    /// The next query of lookup `id` to send.
    ///
    /// The `_of` methods serve a driver that runs each lookup on its own socket, from its
    /// own task or thread, around one shared machine (one cache for the whole process): it
    /// drains only its lookup's transmits and events, and waits until its own deadline.
    /// Answers may still be fed by anyone ([`Resolver::handle_datagram`] checks the source),
    /// and [`Resolver::handle_timeout`] retries every overdue query, whoever calls it.
    pub fn poll_transmit_of(&mut self, id: QueryId) -> Option<Transmit> {
        let i = self.transmits.iter().position(|t| t.lookup == id)?;
        self.transmits.remove(i)
    }

    /// The next event of lookup `id` (its [`Event::Resolved`], or the closing of one of its
    /// TCP connections).
    pub fn poll_event_of(&mut self, id: QueryId) -> Option<Event> {
        let i = self.events.iter().position(|(l, _)| *l == id)?;
        self.events.remove(i).map(|(_, e)| e)
    }

    /// The earliest deadline of a try of lookup `id` in flight.
    pub fn poll_timeout_of(&self, id: QueryId) -> Option<Instant> {
        self.queries
            .iter()
            .filter(|q| q.lookup == id)
            .map(|q| q.deadline)
            .min()
    }

    /// Abandons lookup `id` and forgets everything queued for it: its queries, transmits
    /// and events (its driver is gone, so nobody would drain them). For the per-lookup
    /// driver; [`Resolver::cancel`] is the form for a driver that owns every socket.
    pub fn forget(&mut self, id: QueryId) {
        self.lookups.remove(&id);
        self.queries.retain(|q| q.lookup != id);
        self.transmits.retain(|t| t.lookup != id);
        self.events.retain(|(l, _)| *l != id);
    }

    fn cache(&mut self, v6: bool) -> &mut Cache {
        if v6 {
            &mut self.cache_v6
        } else {
            &mut self.cache_v4
        }
    }

    fn random_id(&mut self) -> u16 {
        for _ in 0..16 {
            // splitmix64
            self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            let id = (z ^ (z >> 31)) as u16;
            if !self.queries.iter().any(|q| q.dns_id == id) {
                return id;
            }
        }
        (self.rng >> 16) as u16
    }

    #[allow(clippy::too_many_arguments)]
    fn start_query(
        &mut self,
        now: Instant,
        lookup: QueryId,
        key: String,
        name: Name,
        rtype: RecordType,
        server: usize,
        tries: u32,
    ) {
        let transport = self
            .config
            .servers
            .get(server)
            .map_or(Transport::Udp, |s| s.transport);
        let mut q = Outstanding {
            lookup,
            key,
            name,
            rtype,
            dns_id: 0,
            server,
            tries,
            transport,
            tcp: None,
            deadline: now,
            last_error: ResolveError::Timeout,
        };
        if self.send(now, &mut q) {
            self.queries.push(q);
        } else {
            self.set_part(lookup, rtype, Err(ResolveError::InvalidName));
        }
    }

    /// Sends (or re-sends) `q` with a fresh ID over its transport; false if it cannot be
    /// encoded.
    fn send(&mut self, now: Instant, q: &mut Outstanding) -> bool {
        q.dns_id = self.random_id();
        q.deadline = now + self.config.try_timeout;
        let Some(server) = self.config.servers.get(q.server).map(|s| s.addr) else {
            return false;
        };
        let mut msg = Message::new();
        msg.set_id(q.dns_id)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(q.name.clone(), q.rtype));
        let Ok(bytes) = msg.to_vec() else {
            return false;
        };
        if bytes.len() > MAX_UDP_MESSAGE {
            return false;
        }
        let (payload, tcp) = match q.transport {
            Transport::Udp => (bytes, None),
            Transport::Tcp => {
                let token = TcpToken(self.next_tcp);
                self.next_tcp = self.next_tcp.wrapping_add(1);
                let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
                let mut framed = Vec::with_capacity(bytes.len() + 2);
                framed.extend_from_slice(&len);
                framed.extend_from_slice(&bytes);
                q.tcp = Some((token, Vec::new()));
                (framed, Some(token))
            }
        };
        self.transmits.push_back(Transmit {
            lookup: q.lookup,
            server,
            transport: q.transport,
            tcp,
            payload,
        });
        true
    }

    /// The try of query `i` failed with `error`: ask the next server, or give up. True if
    /// the query was removed.
    fn retry(&mut self, now: Instant, i: usize, error: ResolveError) -> bool {
        let mut q = self.queries.remove(i);
        if let Some((t, _)) = q.tcp.take() {
            self.events.push_back((q.lookup, Event::CloseTcp(t)));
        }
        let n = self.config.servers.len().max(1);
        q.tries += 1;
        q.last_error = error;
        let budget = u32::from(self.config.attempts) * u32::try_from(n).unwrap_or(1);
        if q.tries >= budget {
            self.set_part(q.lookup, q.rtype, Err(q.last_error));
            return true;
        }
        q.server = (q.server + 1) % n;
        q.transport = self
            .config
            .servers
            .get(q.server)
            .map_or(Transport::Udp, |s| s.transport);
        if self.send(now, &mut q) {
            self.queries.insert(i, q);
            false
        } else {
            self.set_part(q.lookup, q.rtype, Err(ResolveError::InvalidName));
            true
        }
    }

    fn handle_answer(&mut self, now: Instant, i: usize, msg: &Message) {
        if msg.truncated() && self.queries[i].transport == Transport::Udp {
            // RFC 1035 section 4.2.1 / RFC 7766: ask the same server again over TCP.
            let mut q = self.queries.remove(i);
            q.transport = Transport::Tcp;
            if self.send(now, &mut q) {
                self.queries.insert(i, q);
            } else {
                self.set_part(q.lookup, q.rtype, Err(ResolveError::InvalidName));
            }
            return;
        }
        let result = match msg.response_code() {
            ResponseCode::NoError => Ok(addresses(&self.queries[i], msg)),
            ResponseCode::NXDomain => Ok(None),
            _ => Err(ResolveError::ServerFailure),
        };
        let Ok((addrs, ttl)) = result.map(|a| a.unwrap_or_default()) else {
            self.retry(now, i, ResolveError::ServerFailure);
            return;
        };
        let q = self.queries.remove(i);
        if let Some((t, _)) = q.tcp {
            self.events.push_back((q.lookup, Event::CloseTcp(t)));
        }
        let v6 = q.rtype == RecordType::AAAA;
        let (value, life, outcome) = if addrs.is_empty() {
            let life = negative_ttl(msg, self.config.negative_ttl);
            (Cached::NotFound, life, Err(ResolveError::NotFound))
        } else {
            let life = Duration::from_secs(u64::from(ttl)).min(self.config.max_ttl);
            let secs = u32::try_from(life.as_secs()).unwrap_or(u32::MAX);
            let answers = addrs
                .iter()
                .map(|&addr| Answer { addr, ttl: secs })
                .collect();
            (Cached::Found(addrs), life, Ok(answers))
        };
        if let Some(expires) = now.checked_add(life) {
            self.cache(v6).insert(now, &q.key, value, expires);
        }
        self.set_part(q.lookup, q.rtype, outcome);
    }

    fn set_part(
        &mut self,
        id: QueryId,
        rtype: RecordType,
        result: Result<Vec<Answer>, ResolveError>,
    ) {
        if let Some(l) = self.lookups.get_mut(&id) {
            if rtype == RecordType::AAAA {
                l.v6 = Part::Done(result);
            } else {
                l.v4 = Part::Done(result);
            }
            self.try_finish(id);
        }
    }

    fn try_finish(&mut self, id: QueryId) {
        let Some(l) = self.lookups.get(&id) else {
            return;
        };
        if matches!(l.v4, Part::Pending) || matches!(l.v6, Part::Pending) {
            return;
        }
        let Some(l) = self.lookups.remove(&id) else {
            return;
        };
        let order = match l.family {
            Family::V6 | Family::V6ThenV4 => [l.v6, l.v4],
            Family::V4 | Family::V4ThenV6 => [l.v4, l.v6],
        };
        let mut addrs = Vec::new();
        let mut first_error = None;
        for part in order {
            match part {
                Part::Done(Ok(a)) => addrs.extend(a),
                Part::Done(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Part::NotAsked | Part::Pending => {}
            }
        }
        let result = match first_error {
            Some(e) if addrs.is_empty() => Err(e),
            _ if addrs.is_empty() => Err(ResolveError::NotFound),
            _ => Ok(addrs),
        };
        self.events
            .push_back((id, Event::Resolved(Resolved { id, result })));
    }
}

/// Lower-case key without the final dot, and the query name; None if not a valid name.
fn normalize(name: &str) -> Option<(String, Name)> {
    let key = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if key.is_empty() || !key.is_ascii() || key.len() > MAX_NAME - 2 {
        return None;
    }
    let mut qname = Name::from_ascii(&key).ok()?;
    qname.set_fqdn(true);
    (qname.len() <= MAX_NAME).then_some((key, qname))
}

/// The answer is a response to a standard query and asks our question.
fn matches_question(q: &Outstanding, msg: &Message) -> bool {
    msg.message_type() == MessageType::Response
        && msg.op_code() == OpCode::Query
        && msg.queries().len() == 1
        && msg.queries().first().is_some_and(|mq| {
            mq.query_type() == q.rtype
                && mq.query_class() == DNSClass::IN
                && mq.name().to_lowercase() == q.name.to_lowercase()
        })
}

/// Addresses of the question's type for its name, following CNAMEs inside the answer
/// section (at most [`MAX_CNAME_CHAIN`]), and the smallest TTL of the records used.
fn addresses(q: &Outstanding, msg: &Message) -> Option<(Vec<IpAddr>, u32)> {
    let mut current = q.name.to_lowercase();
    let mut ttl = u32::MAX;
    for _ in 0..=MAX_CNAME_CHAIN {
        let mut found = Vec::new();
        let mut next = None;
        for r in msg.answers() {
            if r.dns_class() != DNSClass::IN || r.name().to_lowercase() != current {
                continue;
            }
            match (r.data(), q.rtype) {
                (RData::A(a), RecordType::A) => {
                    found.push(IpAddr::V4(a.0));
                    ttl = ttl.min(r.ttl());
                }
                (RData::AAAA(a), RecordType::AAAA) => {
                    found.push(IpAddr::V6(a.0));
                    ttl = ttl.min(r.ttl());
                }
                (RData::CNAME(c), _) if next.is_none() => {
                    next = Some((c.0.to_lowercase(), r.ttl()));
                }
                _ => {}
            }
        }
        if !found.is_empty() {
            return Some((found, ttl));
        }
        let (target, t) = next?;
        ttl = ttl.min(t);
        current = target;
    }
    None
}

/// RFC 2308 section 5: a negative answer lives for min(SOA TTL, SOA MINIMUM), capped.
fn negative_ttl(msg: &Message, cap: Duration) -> Duration {
    msg.name_servers()
        .iter()
        .find_map(|r| match r.data() {
            RData::SOA(soa) => Some(Duration::from_secs(u64::from(soa.minimum().min(r.ttl())))),
            _ => None,
        })
        .map_or(cap, |d| d.min(cap))
}
