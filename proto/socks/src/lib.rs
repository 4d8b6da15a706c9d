//! SOCKS4, SOCKS4a and SOCKS5 for triproxy: wire codecs and sans-IO server and client
//! machines.
//!
//! - [`v4`] and [`v5`] parse and encode every message (SOCKS4/4a request and reply; RFC 1928
//!   greeting, method selection, request, reply and UDP header; RFC 1929 request and
//!   status). Parsers answer `Status::Complete`, `Status::Partial` for any strict prefix, or
//!   a typed [`Error`]; every field has a hard cap.
//! - [`server`] is the machine a proxy runs for one client (v4, v4a and v5 on one port).
//! - [`client`] is its mirror: an application connecting through a SOCKS proxy, triproxy
//!   chaining through a parent, the conformance tool.
//! - [`error`] maps every failure to a readable reason and a 3proxy log code.
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, events, bytes to send
//! and deadlines come out. It does not decide who may connect where (that is policy) and
//! does not relay.
//!
//! Dependencies: `triproxy-wire` (the shared vocabulary), `arrayvec` (fixed caps without
//! allocation), `bytes` (`BufMut`, the encoders' output). The wire types this crate's API
//! uses ([`TargetAddr`], [`DomainName`], [`Transmit`], [`Status`], [`LogCode`], ...) are
//! re-exported here, so this crate is the only dependency a user needs.
//!
//! # Cargo features
//!
//! None is on by default; without them the crate does no I/O.
//!
//! - `blocking`: `blocking::connect(proxy, target, credentials)` drives the client machine
//!   over a `std::net::TcpStream`.
//! - `futures`: `futures::connect(stream, target, credentials)` drives it over any
//!   `futures-io` `AsyncRead + AsyncWrite` stream (smol, async-std, and tokio through
//!   `tokio-util`'s compat layer). It adds the `futures-io` crate (traits only) and
//!   nothing else.
//!
//! `CLIENT.md` beside this crate's manifest shows both in a few lines and compares them
//! with tokio-socks and fast-socks5.
//!
//! # Stability
//!
//! Two other crates appear in the public API on purpose, and a release that moves either
//! to a new major version is a breaking release of this one: `bytes` 1 (the encoders take
//! `&mut impl bytes::BufMut`, so callers own their buffers) and `arrayvec` 0.7 (the
//! fixed-capacity fields of parsed messages: `v5::Greeting::methods`, `v5::Credentials`,
//! the SOCKS4 user ids of `v4::Request` and `server::Request`). With the `futures`
//! feature on, `futures-io` 0.3 is part of the API too. While the version is 0.x, a minor
//! release may break the API and a patch release does not.
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
//!
//! # A client handshake driven by hand
//!
//! The [`Client`] machine against the [`server::Server`] machine in memory: SOCKS5 with a
//! user name and password to a name target, each message carried by hand. The last read
//! brings the reply together with the target's first bytes, which are handed back.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_socks::server::{AuthVerdict, MethodPolicy, Server, ServerConfig, ServerEvent};
//! use triproxy_socks::{Client, ClientConfig, ClientEvent, ClientState, ClientVersion};
//! use triproxy_socks::{Command, Credentials, TargetAddr};
//!
//! let now = Instant::now();
//! let mut client = Client::new(now, ClientConfig {
//!     version: ClientVersion::V5,
//!     credentials: Some(Credentials::new(b"alice", b"pw")?),
//!     command: Command::Connect,
//!     target: "example.org:443".parse()?, // or TargetAddr::try_from(("example.org", 443))?
//!     timeout: Duration::from_secs(30),
//! })?;
//! let mut server = Server::new(now, ServerConfig {
//!     methods: MethodPolicy::Password,
//!     allow_v4: false,
//!     allow_v5: true,
//!     handshake_timeout: Duration::from_secs(30),
//! });
//! assert_eq!(client.poll_timeout(), Some(now + Duration::from_secs(30)));
//!
//! // The greeting is queued at once: it offers no authentication and username/password.
//! let greeting = client.poll_transmit().unwrap();
//! assert_eq!(greeting.as_bytes(), &[5, 2, 0, 2]);
//! assert_eq!(server.handle_input(now, &greeting)?, greeting.len());
//!
//! // The server selects X'02'; the client answers with its credentials (RFC 1929).
//! let selection = server.poll_transmit().unwrap();
//! assert_eq!(client.handle_input(now, &selection)?, 2);
//! assert_eq!(client.state(), ClientState::AwaitingAuthReply);
//! let credentials = client.poll_transmit().unwrap();
//! assert_eq!(credentials.as_bytes(), &[1, 5, b'a', b'l', b'i', b'c', b'e', 2, b'p', b'w']);
//! server.handle_input(now, &credentials)?;
//! let Some(ServerEvent::Credentials(c)) = server.poll_event() else { panic!() };
//! assert_eq!(c.username.as_slice(), b"alice");
//! server.handle_auth(AuthVerdict::Accepted);
//!
//! // Status 0: the client sends its request; the server reads it.
//! client.handle_input(now, &server.poll_transmit().unwrap())?;
//! let request = client.poll_transmit().unwrap();
//! assert_eq!(&request[..5], &[5, 1, 0, 3, 11]); // CONNECT, ATYP 3, an 11-byte name
//! server.handle_input(now, &request)?;
//! let Some(ServerEvent::Request(req)) = server.poll_event() else { panic!() };
//! assert_eq!(req.target, TargetAddr::try_from(("example.org", 443))?);
//!
//! // The proxy connected from 198.51.100.1:40000. Its reply and the target's first bytes
//! // arrive in one read: the client consumes the reply only.
//! server.handle_granted("198.51.100.1:40000".parse()?);
//! let mut input = server.poll_transmit().unwrap().to_vec();
//! input.extend_from_slice(b"SSH-2.0-OpenSSH_9.6\r\n");
//! let used = client.handle_input(now, &input)?;
//! let bound = "198.51.100.1:40000".parse()?;
//! assert_eq!(client.poll_event(), Some(ClientEvent::Granted { bound }));
//! assert_eq!(client.state(), ClientState::Established);
//! assert_eq!(client.poll_timeout(), None);
//! assert_eq!(&input[used..], b"SSH-2.0-OpenSSH_9.6\r\n"); // for the relay
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A refusal is an event with the typed code; as an error it has a log code and a text:
//!
//! ```
//! # use std::time::{Duration, Instant};
//! # use triproxy_socks::{Client, ClientConfig, ClientVersion, Command};
//! use triproxy_socks::{v5::ReplyCode, ClientError, ClientEvent, Refusal};
//! # let now = Instant::now();
//! let mut client = Client::new(now, ClientConfig {
//!     version: ClientVersion::V5,
//!     credentials: None,
//!     command: Command::Connect,
//!     target: ("192.0.2.7".parse::<std::net::IpAddr>()?, 22).into(),
//!     timeout: Duration::from_secs(30),
//! })?;
//! client.poll_transmit(); // the greeting
//! let answer = [5, 0, /* reply: */ 5, 5, 0, 1, 0, 0, 0, 0, 0, 0]; // REP 5
//! assert_eq!(client.handle_input(now, &answer)?, answer.len());
//! let reply = Refusal::V5(ReplyCode::ConnectionRefused);
//! assert_eq!(client.poll_event(), Some(ClientEvent::Refused { reply }));
//! let error = ClientError::from(reply);
//! assert_eq!(error.log_code().get(), 65);
//! assert_eq!(
//!     error.to_string(),
//!     "the SOCKS5 proxy refused the request: connection refused (REP 5)"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "blocking")]
pub mod blocking;
pub mod client;
#[cfg(any(feature = "blocking", feature = "futures"))]
mod driver;
pub mod error;
#[cfg(feature = "futures")]
pub mod futures;
mod outbox;
pub mod server;
pub mod v4;
pub mod v5;

pub use client::{Client, ClientConfig, ClientEvent, ClientState, ClientVersion, Refusal};
pub use error::{ClientError, ClientPhase, Error, Field};
pub use v5::{Command, Credentials};

// The shared vocabulary this crate's API speaks in, so that one dependency is enough.
pub use triproxy_wire::{
    DomainError, DomainName, LogCode, ParseTargetError, Status, TargetAddr, Transmit, TransmitFull,
    MAX_DOMAIN_LEN, MAX_TRANSMIT,
};
