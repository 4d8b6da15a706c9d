//! The POP3 proxy of triproxy (3proxy's `pop3p`), as a sans-IO machine.
//!
//! A client connects to the proxy, which greets it; the client logs in with
//! `USER user@host[:port]` (or `USER proxyuser:proxypass:user@host`); the proxy connects to
//! `host`, checks its `+OK` greeting, sends `USER user`, and from then on relays both ways,
//! the server's answer to USER included. Before USER the proxy answers CAPA, QUIT and STLS
//! itself and `-ERR need USER first` to anything else.
//!
//! - [`server::Server`] is the machine, one per client connection.
//! - [`Error`] maps every failure to a readable reason and a 3proxy log code (611-623).
//!
//! The crate does no I/O and reads no clock: bytes and `now` go in, bytes for each side,
//! events and deadlines come out. It does not decide who may connect where (that is policy)
//! and does not relay.
//!
//! # A session driven by hand
//!
//! ```
//! use std::time::Instant;
//! use triproxy_pop3::server::{Config, Event, Server};
//!
//! let now = Instant::now();
//! let mut pop = Server::new(now, Config::default());
//! assert!(pop.poll_transmit().unwrap().starts_with(b"+OK Proxy"));
//!
//! // The client asks for its capabilities, then logs in and pipelines its password.
//! let client = b"CAPA\r\nUSER alice@pop.example.org\r\nPASS secret\r\n";
//! let used = pop.handle_input(now, client).unwrap();
//! assert!(pop.poll_transmit().unwrap().ends_with(b"STLS\r\n.\r\n"));
//! let Some(Event::Request(request)) = pop.poll_event() else { panic!() };
//! assert_eq!(request.target.to_string(), "pop.example.org:110");
//! assert_eq!(request.user, b"alice");
//! assert_eq!(request.log_text, "alice@pop.example.org");
//!
//! // The driver connects (after its auth and ACL checks) and feeds the server's bytes.
//! pop.handle_connected(now);
//! let server = b"+OK Dovecot ready.\r\n+OK\r\n";
//! let taken = pop.handle_upstream_input(now, server).unwrap();
//! assert_eq!(pop.poll_upstream_transmit().unwrap(), b"USER alice\r\n");
//! assert!(pop.is_established());
//!
//! // What the machine did not consume is relay data, delivered as it is.
//! assert_eq!(&client[used..], b"PASS secret\r\n");
//! assert_eq!(&server[taken..], b"+OK\r\n");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod server;

pub use error::Error;
pub use server::{Config, Event, Request, Server, State};
pub use triproxy_wire::login::{BadLogin, ProxyCredentials, MAX_HOST_LEN};
pub use triproxy_wire::{LogCode, TargetAddr};
