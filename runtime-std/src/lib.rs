//! triproxy-runtime-std: runs triproxy sessions on blocking std sockets, one thread per
//! connection (3proxy's own model: simple to debug, good for few long connections).
//!
//! This crate provides I/O primitives and nothing else: the session's intents and the
//! relay are carried out by the one executor in [`triproxy_policy::exec`], which calls
//! this crate's blocking [`Io`](triproxy_policy::exec::Io) implementation. It also owns
//! the socket code shared with `triproxy-runtime-smol`: listening sockets, outgoing
//! connects, name resolution and the mapping of OS errors to session answers ([`net`]),
//! and the pooled pipes and buffers a relay direction holds bytes in ([`store`]).

#![warn(missing_docs)]

mod hooks;
mod io;
pub mod live;
pub mod net;
mod pool;
mod service;
mod slot;
pub mod store;
mod sys;

pub use hooks::{ActiveConnection, Activity, Hooks};
pub use io::serve_connection;
pub use service::{max_workers, spawn_datagram_service, spawn_service, ServiceHandle};
pub use slot::{ServiceSlot, Settings};
