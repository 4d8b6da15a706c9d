//! triproxy-runtime-std: runs triproxy sessions on blocking std sockets, one thread per
//! connection (3proxy's own model: simple to debug, good for few long connections).
//!
//! This crate executes the [`triproxy_policy::session::Intent`]s of a session and nothing
//! else: it holds no SOCKS or policy logic. It also owns the socket set-up shared with
//! `triproxy-runtime-smol` ([`net`]): listening sockets, outgoing connects, name resolution
//! and the mapping of OS errors to session answers.

#![warn(missing_docs)]

mod driver;
mod hooks;
mod input;
pub mod net;
mod pool;
pub mod pump;
pub mod relay;
mod service;
mod sys;

pub use driver::serve_connection;
pub use hooks::Hooks;
pub use input::{HandshakeInput, TargetInput, HANDSHAKE_BUFFER, MAX_TARGET_INPUT};
pub use service::{max_workers, spawn_service, ServiceHandle};
