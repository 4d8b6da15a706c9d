//! HTTP for triproxy: both sides of HTTP CONNECT (RFC 9110 section 9.3.6), as two sans-IO
//! machines.
//!
//! - [`proxy_server`], the server side: the front of the HTTP proxy service (3proxy
//!   `proxy`). It reads a client's request head (`CONNECT host:port`, or an absolute
//!   `http://` request, which it only reports), with `Proxy-Authorization: Basic`
//!   credentials (RFC 7617), reports it as a [`ProxyEvent::Request`], and answers
//!   `200 Connection established` or an error response ([`Refusal`]).
//! - [`connect_client`], the client side: used to chain through an HTTP parent proxy
//!   (3proxy `parent WEIGHT connect|connect+ ADDR PORT [USER PASS]`) and by the
//!   conformance tool. It builds the request (with `Proxy-Authorization: Basic` when given
//!   credentials), reads the parent's response head with httparse and reports
//!   [`ConnectEvent::Established`] or [`ConnectEvent::Refused`].
//! - [`body`]: where a forwarded message's body ends (RFC 9112 section 6): the framing a
//!   head's fields decide, smuggling-safe, and an incremental scanner that validates a
//!   chunked body without copying it; and [`forward`]: a client's absolute-form request
//!   head rewritten for the origin (origin form, `Host`, no hop-by-hop fields, `Via`).
//!   The first pieces of plain HTTP forwarding.
//! - [`error`] maps every failure to a readable reason and a 3proxy log code: 31-34 for a
//!   parent ([`ConnectError`]), 507-516 for a client's request ([`RequestError`]).
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, events, bytes to send
//! and deadlines come out. It does not decide who may connect where, or which parent to
//! use (that is policy), and does not relay. Of plain HTTP forwarding, body framing
//! ([`body`]) and request-head rewriting ([`forward`]) are here; keep-alive, responses
//! and the wiring into the proxy service are to come.
//!
//! Dependencies: `triproxy-wire` (the shared vocabulary), `httparse` (request and response
//! heads), `base64` (Basic credentials).
//!
//! # Cargo features
//!
//! None is on by default; without them the crate does no I/O.
//!
//! - `blocking`: `blocking::connect(proxy, target, credentials)` opens a CONNECT tunnel
//!   over a `std::net::TcpStream`.
//! - `futures`: `futures::connect(stream, target, credentials)` does it over any
//!   `futures-io` `AsyncRead + AsyncWrite` stream (smol, and tokio through `tokio-util`'s
//!   compat layer). It adds the `futures-io` crate (traits only) and nothing else.
//!
//! # Stability
//!
//! Without features, no type or trait of a third-party crate appears in the public API: `httparse` and
//! `base64` are implementation details (httparse's errors become [`HeadError`]) and may be
//! replaced in any release. The `triproxy-wire` types the API uses ([`TargetAddr`],
//! [`DomainName`] and its [`DomainError`], [`LogCode`], [`Transmit`]) are re-exported here,
//! so depending on this crate alone is enough; they are the same types as
//! `triproxy_wire`'s. The `futures` feature's adapters take any `futures_io::AsyncRead +
//! AsyncWrite` stream: with that feature on, `futures-io` 0.3 is part of the API on
//! purpose. While the version is 0.x, a minor release may break the API and a
//! patch release does not.
//!
//! # A client's CONNECT served by hand
//!
//! A client whose request arrives in two reads, the second carrying the first bytes of
//! its TLS handshake:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_http::{ProxyEvent, ProxyServer, ProxyServerConfig, ProxyState};
//!
//! let now = Instant::now();
//! let mut server = ProxyServer::new(now, ProxyServerConfig {
//!     head_timeout: Duration::from_secs(60),
//! });
//! assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(60)));
//!
//! // First read: part of the head. The machine keeps it: everything is consumed.
//! let first = b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n";
//! assert_eq!(server.handle_input(now, first), Ok(first.len()));
//! assert_eq!(server.poll_event(), None);
//!
//! // Second read: the rest of the head ("alice:secret" in base64) and the client's first
//! // tunnel bytes, which are not consumed.
//! let second = b"Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n\x16\x03\x01";
//! let used = server.handle_input(now, second).unwrap();
//! assert_eq!(&second[used..], b"\x16\x03\x01"); // for the relay
//! let Some(ProxyEvent::Request(request)) = server.poll_event() else { panic!() };
//! assert!(request.connect);
//! assert_eq!(request.target.to_string(), "example.org:443");
//! let credentials = request.credentials.unwrap();
//! assert_eq!((&credentials.username[..], &credentials.password[..]), (&b"alice"[..], &b"secret"[..]));
//! assert_eq!(server.state(), ProxyState::AwaitingDecision);
//! assert_eq!(server.poll_timeout(), None);
//!
//! // Policy says yes and the target is connected: the tunnel is open.
//! server.handle_granted();
//! assert_eq!(
//!     server.poll_transmit().unwrap().as_bytes(),
//!     b"HTTP/1.1 200 Connection established\r\n\r\n"
//! );
//! assert_eq!(server.state(), ProxyState::Established);
//! assert_eq!(server.handle_input(now, b"\x16\x03\x01"), Ok(0)); // relay data
//! ```
//!
//! A refusal is one response, and a request the machine cannot read is answered by the
//! machine itself:
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use triproxy_http::{ProxyServer, ProxyServerConfig, ProxyState, Refusal, RequestError};
//! # let now = Instant::now();
//! # let config = ProxyServerConfig { head_timeout: Duration::from_secs(60) };
//! let mut server = ProxyServer::new(now, config);
//! let head = b"CONNECT 192.0.2.7:22 HTTP/1.0\r\n\r\n";
//! assert_eq!(server.handle_input(now, head), Ok(head.len()));
//! assert!(server.poll_event().is_some());
//! server.handle_refused(Refusal::AuthRequired); // no credentials, and policy wants some
//! let reply = server.poll_transmit().unwrap();
//! assert!(reply.starts_with(b"HTTP/1.1 407 Proxy Authentication Required\r\n"));
//! assert_eq!(server.state(), ProxyState::Closed);
//!
//! let mut server = ProxyServer::new(now, config);
//! let e = server.handle_input(now, b"GET https://example.org/ HTTP/1.1\r\n\r\n");
//! assert_eq!(e, Err(RequestError::UnsupportedScheme));
//! assert_eq!(e.unwrap_err().log_code().get(), 513);
//! assert!(server.poll_transmit().unwrap().starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
//! ```
//!
//! # A CONNECT exchange with a parent driven by hand
//!
//! A parent that wants credentials, answers in HTTP/1.0 and whose 200 arrives in two
//! reads, the second carrying the target's first bytes:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_http::{
//!     ConnectClient, ConnectConfig, ConnectEvent, ConnectState, Credentials,
//! };
//! use triproxy_wire::{DomainName, TargetAddr};
//!
//! let now = Instant::now();
//! let mut client = ConnectClient::new(now, ConnectConfig {
//!     target: TargetAddr::Domain(DomainName::new(b"example.org").unwrap(), 443),
//!     credentials: Some(Credentials::new("alice", "secret")),
//!     timeout: Duration::from_secs(60),
//! }).unwrap();
//!
//! // The request is queued at once; "alice:secret" in base64 is YWxpY2U6c2VjcmV0.
//! assert_eq!(
//!     client.poll_transmit().unwrap(),
//!     b"CONNECT example.org:443 HTTP/1.1\r\n\
//!       Host: example.org:443\r\n\
//!       Proxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\
//!       \r\n"
//! );
//! assert_eq!(client.poll_transmit(), None);
//! assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(60)));
//!
//! // First read: part of the head. Nothing is consumed; the driver keeps the bytes.
//! let mut pending = b"HTTP/1.0 200 Connection established\r\n".to_vec();
//! assert_eq!(client.handle_input(now, &pending), Ok(0));
//! assert_eq!(client.poll_event(), None);
//!
//! // Second read: the end of the head and the target's greeting.
//! pending.extend_from_slice(b"Proxy-Agent: p\r\n\r\nSSH-2.0-OpenSSH_9.6\r\n");
//! let used = client.handle_input(now, &pending).unwrap();
//! assert_eq!(client.poll_event(), Some(ConnectEvent::Established));
//! assert_eq!(client.state(), ConnectState::Established);
//! assert_eq!(client.poll_timeout(), None);
//! assert_eq!(&pending[used..], b"SSH-2.0-OpenSSH_9.6\r\n"); // for the relay
//! ```
//!
//! A refusal is an event, and [`ConnectError::Refused`] gives its log code:
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use triproxy_http::{ConnectClient, ConnectConfig, ConnectError, ConnectEvent};
//! # let now = Instant::now();
//! let mut client = ConnectClient::new(now, ConnectConfig {
//!     target: "192.0.2.7:22".parse::<std::net::SocketAddr>().unwrap().into(),
//!     credentials: None,
//!     timeout: Duration::from_secs(60),
//! }).unwrap();
//! let head = b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n";
//! assert_eq!(client.handle_input(now, head), Ok(head.len()));
//! let Some(ConnectEvent::Refused { status }) = client.poll_event() else { panic!() };
//! assert_eq!(ConnectError::Refused { status }.log_code().get(), 33);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "blocking")]
pub mod blocking;
pub mod body;
pub mod connect_client;
#[cfg(any(feature = "blocking", feature = "futures"))]
mod driver;
pub mod error;
pub mod exchange;
pub mod forward;
#[cfg(feature = "futures")]
pub mod futures;
pub mod proxy_server;

pub use connect_client::{
    ConnectClient, ConnectConfig, ConnectEvent, ConnectState, Credentials, MAX_RESPONSE_HEAD,
    MAX_RESPONSE_HEADERS,
};
pub use error::{ConnectError, CredentialField, HeadError, RequestError};
// The shared vocabulary this crate's API speaks in, so that one dependency is enough.
pub use proxy_server::{
    ProxyEvent, ProxyRequest, ProxyServer, ProxyServerConfig, ProxyState, Refusal, MAX_METHOD_LEN,
    MAX_REQUEST_HEAD, MAX_REQUEST_HEADERS,
};
pub use triproxy_wire::{DomainError, DomainName, LogCode, ParseTargetError, TargetAddr, Transmit};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
