//! The policy snapshot a service runs with: what its configuration line had in force.
//!
//! 3proxy snapshots the auth chain, ACL and timeouts at the line that starts a service;
//! [`ServicePolicy`] is that snapshot, shared (behind an `Arc`) by every session of the
//! service. It holds plain data only; the decisions live in [`crate::auth`] and
//! [`crate::acl`], and the [`crate::session`] engine applies them.

use crate::acl::Ace;
use crate::auth::AuthChain;
use crate::users::Users;
use core::time::Duration;
use std::sync::Arc;

/// 3proxy's `-u` option: whether a service asks clients for a user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NeedUser {
    /// `-u`: never ask (SOCKS5 never selects method 0x02).
    Never,
    /// Default: use credentials when the client offers them.
    #[default]
    IfOffered,
    /// `-u2`: require a user name (SOCKS5 answers 0xFF unless 0x02 is offered).
    Required,
}

/// How a runtime moves the bytes of an established tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// Kernel-side copy (Linux `splice(2)` through a pipe), used whenever nothing needs to
    /// see or pace the bytes. The default.
    #[default]
    ZeroCopy,
    /// `read`/`write` through a pooled user-space buffer (3proxy `-s0`; also what a runtime
    /// falls back to where zero-copy is unavailable).
    Buffered,
}

/// Time limits of a service. Defaults follow 3proxy's `timeouts` defaults where one applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Whole SOCKS handshake, from accept to the request (3proxy: STRING_S, 30 s).
    pub handshake: Duration,
    /// Outgoing connect to one address (3proxy: CONNECT, 15 s).
    pub connect: Duration,
    /// An established tunnel with no traffic in either direction is closed after this
    /// (3proxy: CONNECTION_L, 1800 s).
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(30),
            connect: Duration::from_secs(15),
            idle: Duration::from_secs(1800),
        }
    }
}

/// Everything a session of one service needs to decide, fixed when the service starts.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    /// The port the service listens on (logged as `%p`).
    pub listen_port: u16,
    /// The `auth` chain in force at the service line.
    pub auth: AuthChain,
    /// The `allow`/`deny` entries in force at the service line, first match wins.
    pub acl: Arc<[Ace]>,
    /// The global `users` table.
    pub users: Arc<Users>,
    /// The `-u` option.
    pub needuser: NeedUser,
    /// Time limits.
    pub timeouts: Timeouts,
    /// How established tunnels relay.
    pub relay: RelayMode,
}

impl ServicePolicy {
    /// A policy with 3proxy's defaults (`auth iponly`, empty ACL, no users) for `listen_port`.
    pub fn new(listen_port: u16) -> Self {
        ServicePolicy {
            listen_port,
            auth: AuthChain::default_chain(),
            acl: Arc::from(Vec::new()),
            users: Arc::new(Users::new()),
            needuser: NeedUser::default(),
            timeouts: Timeouts::default(),
            relay: RelayMode::default(),
        }
    }
}
