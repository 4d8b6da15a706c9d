//! triproxy-policy: deterministic decisions and the sans-IO per-connection session engine.
//!
//! Given the configuration of a service, the request and `now`, policy answers:
//! authenticated or which failure ([`auth`], [`users`]), allowed or denied ([`acl`]), paced by
//! which bandwidth pipes ([`bandlim`]), counted against which traffic quotas ([`quota`], kept
//! across restarts in a [`counterfile`]), held back by which connection limits ([`connlim`]).
//! The
//! [`session`] engine owns a protocol server machine (SOCKS or the HTTP proxy), consults these decisions and emits
//! I/O intents that a runtime carries out. Nothing here opens a socket or reads a clock.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod auth;
pub mod bandlim;
mod chain;
pub mod connlim;
pub mod counterfile;
pub mod exec;
mod front;
pub mod parent;
pub mod period;
pub mod quota;
pub mod reason;
pub mod relay;
pub mod service;
pub mod session;
pub mod users;
