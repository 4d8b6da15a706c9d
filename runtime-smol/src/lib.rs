//! triproxy-runtime-smol: runs triproxy sessions on smol (async-io reactor, async-executor),
//! many connections on a few threads.
//!
//! Like `triproxy-runtime-std` it only executes the session engine's intents; socket
//! set-up, name resolution and relay-end classification are reused from that crate so
//! both runtimes behave the same.

#![warn(missing_docs)]

mod driver;
mod relay;
mod service;

pub use service::{spawn_service, Runtime};
