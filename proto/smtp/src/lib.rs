//! 3proxy's SMTP proxy (`smtpp`) as a sans-IO machine.
//!
//! The client logs in to the proxy with `AUTH LOGIN` or `AUTH PLAIN` (RFC 4954) as
//! `user@server[:port]`; the proxy connects to `server`, checks that it is not talking to
//! itself (a `220 Proxy` greeting), introduces itself with `EHLO [client-ip]`, logs in as
//! `user` with the mechanism the server offers (PLAIN, else LOGIN) and, once the server
//! says `235`, passes that answer to the client and leaves the rest to a relay.
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, bytes for either
//! side, events and deadlines come out. [`Proxy`] is the machine, [`mod@line`] the line
//! parsers it uses, [`Error`] the failures with 3proxy's log codes (617, 662-683).
//!
//! # A session driven by hand
//!
//! ```
//! use std::time::Instant;
//! use triproxy_smtp::{Config, Event, Proxy};
//!
//! let now = Instant::now();
//! let mut proxy = Proxy::new(now, Config::default(), "192.0.2.7".parse().unwrap());
//! assert_eq!(proxy.poll_transmit().unwrap(), b"220 Proxy\r\n");
//!
//! // AUTH PLAIN with an initial response: "\0bob@mail.example\0secret", then a pipelined
//! // MAIL FROM that the machine leaves to the relay.
//! let input = b"AUTH PLAIN AGJvYkBtYWlsLmV4YW1wbGUAc2VjcmV0\r\nMAIL FROM:<b@x>\r\n";
//! let used = proxy.handle_input(now, input).unwrap();
//! let pipelined = &input[used..];
//! assert_eq!(pipelined, b"MAIL FROM:<b@x>\r\n");
//! let Some(Event::Connect(request)) = proxy.poll_event() else { panic!() };
//! assert_eq!(request.target.to_string(), "mail.example:587");
//! assert_eq!(request.log_text.as_deref(), Some("bob@mail.example"));
//!
//! // The driver connected to mail.example:587.
//! proxy.handle_connected(now);
//! proxy.handle_upstream_input(now, b"220 mail.example ESMTP\r\n").unwrap();
//! assert_eq!(proxy.poll_upstream_transmit().unwrap(), b"EHLO [192.0.2.7]\r\n");
//! proxy.handle_upstream_input(now, b"250-mail.example\r\n250 AUTH LOGIN PLAIN\r\n").unwrap();
//! assert_eq!(proxy.poll_upstream_transmit().unwrap(), b"AUTH PLAIN\r\n");
//! proxy.handle_upstream_input(now, b"334 \r\n").unwrap();
//! assert_eq!(proxy.poll_upstream_transmit().unwrap(), b"AGJvYgBzZWNyZXQ=\r\n");
//! proxy.handle_upstream_input(now, b"235 2.7.0 ok\r\n").unwrap();
//! assert_eq!(proxy.poll_transmit().unwrap(), b"235 2.7.0 ok\r\n");
//! assert!(proxy.is_established());
//! // Now relay, starting with `pipelined` towards the server.
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod line;
mod proxy;

pub use error::{CredentialsError, Error, Mechanism, Step};
pub use proxy::{
    refusal_reply, Config, Credentials, Event, Proxy, Request, State, GREETING, MAX_COMMANDS,
    MAX_CREDENTIAL, MAX_REPLY_LINES,
};
