//! SOCKS4, SOCKS4a and SOCKS5 for triproxy: wire codecs and sans-IO server and client
//! machines.
//!
//! - [`v4`] and [`v5`] parse and encode every message (SOCKS4/4a request and reply; RFC 1928
//!   greeting, method selection, request, reply and UDP header; RFC 1929 request and
//!   status). Parsers answer `Status::Complete`, `Status::Partial` for any strict prefix, or
//!   a typed [`Error`]; every field has a hard cap.
//! - [`server`] is the machine a proxy runs for one client (v4, v4a and v5 on one port).
//! - [`client`] is its mirror, for parent proxies and conformance tests.
//! - [`error`] maps every failure to a readable reason and a 3proxy log code.
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, events, bytes to send
//! and deadlines come out. It does not decide who may connect where (that is policy) and
//! does not relay.
//!
//! Dependencies: `triproxy-wire` (the shared vocabulary), `arrayvec` (fixed caps without
//! allocation), `bytes` (`BufMut`, the encoders' output).
//!
//! # A server handshake driven by hand
//!
//! A SOCKS5 client with username/password authentication that pipelines its greeting, its
//! credentials, its request and its first data into one write:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_socks::server::{
//!     AuthVerdict, Command, MethodPolicy, Server, ServerConfig, ServerEvent, State, Version,
//! };
//!
//! let now = Instant::now();
//! let mut server = Server::new(now, ServerConfig {
//!     methods: MethodPolicy::Password,
//!     allow_v4: true,
//!     allow_v5: true,
//!     handshake_timeout: Duration::from_secs(30),
//! });
//! assert_eq!(server.poll_timeout(), Some(now + Duration::from_secs(30)));
//!
//! let mut input = vec![5, 1, 2]; // greeting: one method, username/password
//! input.extend_from_slice(&[1, 5, b'a', b'l', b'i', b'c', b'e', 2, b'p', b'w']); // RFC 1929
//! input.extend_from_slice(&[5, 1, 0, 1, 192, 0, 2, 7, 0, 80]); // CONNECT 192.0.2.7:80
//! input.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n"); // first data, pipelined
//!
//! // The machine stops after the credentials: a decision is pending.
//! let mut used = server.handle_input(now, &input).unwrap();
//! assert_eq!(server.poll_transmit().unwrap().as_bytes(), &[5, 2]); // method X'02' selected
//! let Some(ServerEvent::Credentials(c)) = server.poll_event() else { panic!() };
//! assert_eq!((c.username.as_slice(), c.password.as_slice()), (&b"alice"[..], &b"pw"[..]));
//! assert_eq!(server.state(), State::AwaitingAuthVerdict);
//! assert_eq!(server.poll_timeout(), None); // no deadline while we decide
//!
//! server.handle_auth(AuthVerdict::Accepted);
//! assert_eq!(server.poll_transmit().unwrap().as_bytes(), &[1, 0]); // status: success
//!
//! // The driver presents the bytes it kept; the machine reads the request and stops.
//! used += server.handle_input(now, &input[used..]).unwrap();
//! let Some(ServerEvent::Request(req)) = server.poll_event() else { panic!() };
//! assert_eq!((req.version, req.command), (Version::V5, Command::Connect));
//! assert_eq!(req.target.to_string(), "192.0.2.7:80");
//! assert_eq!(&input[used..], b"GET / HTTP/1.0\r\n\r\n"); // handed back for the relay
//!
//! // The driver connected from 198.51.100.1:40000; the reply carries that address.
//! server.handle_granted("198.51.100.1:40000".parse().unwrap());
//! assert_eq!(
//!     server.poll_transmit().unwrap().as_bytes(),
//!     &[5, 0, 0, 1, 198, 51, 100, 1, 0x9c, 0x40]
//! );
//! assert_eq!(server.state(), State::Established);
//! assert_eq!(server.handle_input(now, &input[used..]), Ok(0)); // the rest is relay data
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod error;
mod outbox;
pub mod server;
pub mod v4;
pub mod v5;

pub use error::{ClientError, ClientPhase, Error, Field};
pub use v5::{Command, Credentials};
