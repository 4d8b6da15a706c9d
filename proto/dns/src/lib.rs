//! DNS for triproxy: a sans-IO stub resolver machine, in 3proxy's terms (`nserver`,
//! `nscache`, `nscache6`, `nsrecord`, `fakeresolve`, the services' `-4`/`-6`/`-46`/`-64`).
//!
//! - [`config`]: `nserver ADDR[:PORT][/tcp]` parsing ([`NameServer`]), the family
//!   preference ([`Family`]) and every bound of the resolver ([`ResolverConfig`]).
//! - [`resolver`]: the [`Resolver`] machine. [`Resolver::resolve`] starts a lookup; queries
//!   come out of [`Resolver::poll_transmit`] (UDP datagrams, or length-prefixed TCP
//!   streams after a truncated answer or for `/tcp` servers); answers go in through
//!   [`Resolver::handle_datagram`] and [`Resolver::handle_tcp_data`]; tries time out at
//!   [`Resolver::poll_timeout`] and fail over to the next server; results come out of
//!   [`Resolver::poll_event`] as [`Resolved`] events, addresses with their TTL or a
//!   [`ResolveError`].
//! - [`proxy`]: 3proxy's `dnspr` service as pure functions: [`proxy::parse_query`] reads a
//!   client's datagram, [`proxy::plan`] decides (a `-F` answer, a lookup with the
//!   [`Resolver`], or relaying to the first `nserver`), [`proxy::answer`] builds the reply
//!   from the lookup's result, [`proxy::forward_ok`] checks a relayed answer.
//! - A cache per record type (A, AAAA) bounded by `nscache`/`nscache6`, that keeps answers
//!   for their TTL and negative answers (NXDOMAIN, NODATA) for the SOA minimum (RFC 2308),
//!   both capped.
//!
//! Answers that come from another address than the server asked, carry another ID, or
//! ask another question are dropped, so the cache cannot be poisoned by a stranger who
//! cannot see the queries. IDs come from a generator seeded by the caller.
//!
//! The crate does no I/O and reads no clock or OS randomness. It is not a recursive
//! resolver, does not validate DNSSEC, and serves DNS only through [`proxy`]'s decisions
//! (UDP, one question per query, as 3proxy's `dnspr`). Messages are encoded and decoded with `hickory-proto`, default
//! features off (no tokio, no sockets).
//!
//! # Limits
//!
//! Names of at most [`MAX_NAME`] bytes in wire form; queries of at most
//! [`MAX_UDP_MESSAGE`] bytes; TCP answers of at most [`MAX_TCP_MESSAGE`] bytes (buffered per
//! connection, no more); CNAME chains of at most [`MAX_CNAME_CHAIN`] links inside one
//! answer; at most [`MAX_SERVERS`] servers; `max_pending` lookups in flight; cache sizes,
//! the per-try timeout, the number of rounds, the TTL cap and the negative TTL cap in
//! [`ResolverConfig`] (defaults: 5 s per try, 2 rounds over the servers, 65536 entries
//! each, 1 day, 5 minutes, 1024 lookups).
//!
//! # Stability
//!
//! No `hickory-proto` type appears in the public API: it may be replaced or upgraded in
//! any release. While the version is 0.x, a minor release may break the API and a patch
//! release does not.
//!
//! # A lookup driven by hand
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_dns::{Answer, Event, Family, Resolved, Resolver, ResolverConfig, Transport};
//!
//! let now = Instant::now();
//! let config = ResolverConfig {
//!     servers: vec!["192.0.2.53".parse().unwrap()],
//!     ..ResolverConfig::default()
//! };
//! let mut resolver = Resolver::new(config, 0x5eed); // seed: from the OS in a real driver
//! let id = resolver.resolve(now, "example.org", Family::V4);
//!
//! // One UDP query to the server, with a deadline for its answer.
//! let query = resolver.poll_transmit().unwrap();
//! assert_eq!((query.server.to_string(), query.transport), ("192.0.2.53:53".into(), Transport::Udp));
//! assert_eq!(resolver.poll_timeout(), Some(now + Duration::from_secs(5)));
//!
//! // The server's answer: the query with QR and RA set, one A record (name by pointer to
//! // offset 12, type A, class IN, TTL 300, 4 bytes: 93.184.215.14).
//! let mut answer = query.payload.clone();
//! answer[2] |= 0x80;
//! answer[3] = 0x80;
//! answer[7] = 1; // ANCOUNT
//! answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 93, 184, 215, 14]);
//!
//! // A stranger's copy of it is dropped; the server's is taken.
//! resolver.handle_datagram(now, "203.0.113.1:53".parse().unwrap(), &answer);
//! assert_eq!((resolver.dropped(), resolver.poll_event()), (1, None));
//! resolver.handle_datagram(now, query.server, &answer);
//! let addr = "93.184.215.14".parse().unwrap();
//! assert_eq!(
//!     resolver.poll_event(),
//!     Some(Event::Resolved(Resolved { id, result: Ok(vec![Answer { addr, ttl: 300 }]) }))
//! );
//! assert_eq!(resolver.poll_timeout(), None);
//!
//! // A minute later the cache answers at once, with the TTL left.
//! let later = now + Duration::from_secs(60);
//! let id = resolver.resolve(later, "EXAMPLE.org.", Family::V4);
//! assert!(resolver.poll_transmit().is_none());
//! assert_eq!(
//!     resolver.poll_event(),
//!     Some(Event::Resolved(Resolved { id, result: Ok(vec![Answer { addr, ttl: 240 }]) }))
//! );
//! ```

#![forbid(unsafe_code)]

mod cache;
pub mod config;
pub mod proxy;
pub mod resolver;

pub use config::{
    Family, NameServer, NameServerError, ResolverConfig, Transport, DEFAULT_PORT, MAX_SERVERS,
};
pub use proxy::ProxyConfig;
pub use resolver::{
    Answer, Event, QueryId, ResolveError, Resolved, Resolver, TcpToken, Transmit, FAKE_V4, FAKE_V6,
    MAX_CNAME_CHAIN, MAX_NAME, MAX_TCP_MESSAGE, MAX_UDP_MESSAGE,
};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
