//! triproxy-policy: deterministic decisions and the sans-IO engine that runs a connection
//! from its first byte to its log line.
//!
//! Given the configuration of a service, the request and `now`, policy answers:
//! authenticated or which failure ([`auth`], [`users`]), allowed or denied ([`acl`]),
//! paced by which bandwidth pipes ([`bandlim`]), within which traffic quotas ([`quota`],
//! persisted by [`counterfile`], calendar periods in [`period`]) and connection limits
//! ([`connlim`]). The [`session`] engine owns a protocol front (SOCKS or the HTTP proxy),
//! consults these decisions and emits I/O intents; the [`relay`] machine runs an
//! established tunnel (what each direction does next, pacing, idle timeout, counting,
//! quotas, which failure ends it). Failures are a 3proxy log code plus a typed
//! [`reason`]. The one executor, [`exec`], carries out the intents and drives the relay
//! through a runtime's [`exec::Io`] primitives. A service is a listener kind
//! ([`service::ListenerKind`]: streams, or datagrams with per-client [`datagram`]
//! associations) plus a front. Nothing here opens a socket or reads a clock.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod auth;
pub mod authcache;
pub mod bandlim;
mod chain;
pub mod connlim;
pub mod counterfile;
pub mod crypt;
pub mod datagram;
pub mod dnspr;
pub mod exec;
mod front;
pub mod names;
pub mod parent;
pub mod period;
pub mod quota;
pub mod reason;
pub mod relay;
pub mod service;
pub mod session;
pub mod standing;
pub mod udp;
pub mod udppm;
pub mod users;
