//! TLS for triproxy without TLS: peek at a ClientHello for its SNI host name, ALPN and
//! versions ([`hello`]), and pick a service from a first byte as 3proxy's `auto` does
//! ([`sniff`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod hello;
pub mod sniff;

pub use hello::{parse_client_hello, parse_server_hello, ClientHello, ServerHello, TlsError};
pub use sniff::{sniff, Sniffed};
