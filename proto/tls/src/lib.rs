//! TLS for triproxy without TLS: peek at a ClientHello for its SNI host name, ALPN and
//! versions ([`hello`]), route a connection by it as 3proxy's `tlspr` service does
//! ([`proxy`]), and pick a service from a first byte as 3proxy's `auto` does ([`mod@sniff`]).
//!
//! Nothing is decrypted, nothing is consumed: the hello is forwarded unchanged. The crate
//! does no I/O, reads no clock (`now` is an argument) and never panics on any input.
//!
//! # A `tlspr` connection driven by hand
//!
//! ```
//! use std::time::Instant;
//! use triproxy_tls::proxy::{CheckLevel, Event, ProxyConfig, TlsProxy};
//!
//! // A ClientHello captured from curl, for https://example.test/.
//! let hello = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/curl.bin"));
//! let now = Instant::now();
//! let config = ProxyConfig { check: CheckLevel::RequireClientHello, ..ProxyConfig::default() };
//! let mut tls = TlsProxy::new(now, config);
//!
//! // The driver reads into a buffer of `max_peek()` bytes and offers all it has so far.
//! let mut buf = Vec::with_capacity(tls.max_peek());
//! buf.extend_from_slice(&hello[..100]);
//! assert_eq!(tls.handle_input(now, &buf).unwrap(), 0); // never consumes
//! assert!(tls.poll_event().is_none()); // not complete yet
//! buf.extend_from_slice(&hello[100..]);
//! assert_eq!(tls.handle_input(now, &buf).unwrap(), 0);
//!
//! let Some(Event::Request(req)) = tls.poll_event() else { panic!("no request") };
//! assert_eq!(req.target.to_string(), "example.test:443");
//! assert_eq!(req.sni.unwrap().as_str(), Some("example.test"));
//! assert_eq!(req.log_text, "TLSv1.3 example.test h2");
//!
//! // The policy allows it and the connection is up: relay, starting with `buf`.
//! tls.handle_connected(now);
//! assert!(tls.is_established());
//! assert!(tls.poll_transmit().is_none());
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod hello;
pub mod proxy;
pub mod sniff;

pub use hello::{parse_client_hello, parse_server_hello, ClientHello, ServerHello, TlsError};
pub use proxy::{CheckLevel, Error, Event, ProxyConfig, Request, TlsProxy};
pub use sniff::{sniff, Sniffed};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
