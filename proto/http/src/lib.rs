//! HTTP for triproxy. For now one machine: [`connect_client`], the client side of HTTP
//! CONNECT (RFC 9110 section 9.3.6), used to chain through an HTTP parent proxy (3proxy
//! `parent WEIGHT connect|connect+ ADDR PORT [USER PASS]`) and by the conformance tool.
//!
//! - [`connect_client`] builds the request (with `Proxy-Authorization: Basic`, RFC 7617,
//!   when given credentials), reads the parent's response head with httparse and reports
//!   [`ConnectEvent::Established`] or [`ConnectEvent::Refused`].
//! - [`error`] maps every failure to a readable reason and a 3proxy log code (31-34).
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, events, bytes to send
//! and deadlines come out. It does not decide which parent to use (that is policy) and does
//! not relay. The HTTP proxy service (request heads, framing, the server side of CONNECT)
//! is not here yet.
//!
//! Dependencies: `triproxy-wire` (the shared vocabulary), `httparse` (the response head),
//! `base64` (Basic credentials).
//!
//! # A CONNECT exchange driven by hand
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

pub mod connect_client;
pub mod error;

pub use connect_client::{
    ConnectClient, ConnectConfig, ConnectEvent, ConnectState, Credentials, MAX_RESPONSE_HEAD,
    MAX_RESPONSE_HEADERS,
};
pub use error::{ConnectError, CredentialField, HeadError};
