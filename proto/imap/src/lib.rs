//! The IMAP proxy of triproxy (3proxy's `imapp`), as a sans-IO machine.
//!
//! A client connects to the proxy, which greets it; the client logs in with a user name of
//! the form `user@host[:port]` (or `proxyuser:proxypass:user@host`), by LOGIN or
//! AUTHENTICATE PLAIN / LOGIN; the proxy connects to `host`, checks its `* OK` greeting,
//! logs in there as `user` under the client's tag, and from then on relays both ways, the
//! server's answer to the login included.
//!
//! - [`server::Server`] is the machine, one per client connection.
//! - [`Error`] maps every failure to a readable reason and a 3proxy log code (691-699).
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, bytes for each side,
//! events and deadlines come out. It does not decide who may connect where (that is policy)
//! and does not relay.
//!
//! # A session driven by hand
//!
//! ```
//! use std::time::Instant;
//! use triproxy_imap::server::{Config, Event, Method, Server};
//!
//! let now = Instant::now();
//! let mut imap = Server::new(now, Config::default());
//! assert!(imap.poll_transmit().unwrap().starts_with(b"* OK [CAPABILITY IMAP4rev1"));
//!
//! // The client logs in and pipelines its next command.
//! let client = b"a1 LOGIN alice@imap.example.org \"s3cret pw\"\r\na2 SELECT INBOX\r\n";
//! let used = imap.handle_input(now, client).unwrap();
//! let Some(Event::Request(request)) = imap.poll_event() else { panic!() };
//! assert_eq!(request.target.to_string(), "imap.example.org:143");
//! assert_eq!((request.user.as_slice(), request.password.as_slice()), (&b"alice"[..], &b"s3cret pw"[..]));
//! assert_eq!(request.method, Method::Login);
//!
//! // The driver connects (after its auth and ACL checks) and feeds the server's bytes.
//! imap.handle_connected(now);
//! let server = b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\na1 OK logged in\r\n";
//! let taken = imap.handle_upstream_input(now, server).unwrap();
//! assert_eq!(imap.poll_upstream_transmit().unwrap(), b"a1 LOGIN alice \"s3cret pw\"\r\n");
//! assert!(imap.is_established());
//!
//! // What the machine did not consume is relay data, delivered as it is.
//! assert_eq!(&client[used..], b"a2 SELECT INBOX\r\n");
//! assert_eq!(&server[taken..], b"a1 OK logged in\r\n");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod base64;
mod error;
pub mod server;
mod syntax;

pub use error::{BadCredentials, Error};
pub use server::{Config, Event, Method, Request, Server, State};
pub use syntax::MAX_TAG_LEN;
pub use triproxy_wire::login::{BadLogin, ProxyCredentials, MAX_HOST_LEN};
pub use triproxy_wire::{LogCode, TargetAddr};
