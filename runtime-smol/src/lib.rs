//! triproxy-runtime-smol: runs triproxy sessions on smol (async-io reactor, async-executor),
//! many connections on a few threads.
//!
//! Like `triproxy-runtime-std` it provides I/O primitives only: the one executor in
//! [`triproxy_policy::exec`] carries out every intent and runs the relay machine, awaiting
//! this crate's [`Io`](triproxy_policy::exec::Io) implementation. Socket set-up, name
//! resolution and the pooled relay stores are runtime-std's, so both runtimes behave the
//! same.

#![warn(missing_docs)]

mod io;
mod service;

pub use service::{spawn_datagram_service, spawn_service, Runtime, ServiceHandle};
