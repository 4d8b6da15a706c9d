//! What a session and its driver say to each other besides bytes: the [`Intent`]s the
//! session emits, and the failures the driver reports back ([`ConnectError`],
//! [`BindError`], [`ResolveError`]).
//!
//! Plain data; the session decides what to emit (`session.rs`, `decide`, `forward`) and the
//! executor carries it out.

use super::LogRecord;
use crate::relay::RelayPlan;
use crate::service::SourceAddrs;
use crate::udp::AssociationPlan;
use arrayvec::ArrayVec;
use core::time::Duration;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use triproxy_wire::{DomainName, LogCode};

// Named only in doc links.
#[cfg(doc)]
use super::Session;

/// At most this many resolved addresses are tried for one request.
pub const MAX_CONNECT_ADDRS: usize = 8;

/// What the session asks its runtime to do next. (Large variants are inline on purpose: an
/// intent lives for one step of the driver loop and is never stored in bulk.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Resolve `host`; answer with [`Session::handle_resolved`].
    Resolve {
        /// The name as the client sent it.
        host: DomainName,
        /// The port to attach to each address.
        port: u16,
    },
    /// Connect to the first of `addrs` that accepts, each attempt bounded by `timeout`;
    /// answer with [`Session::handle_connected`] or [`Session::handle_connect_failed`].
    Connect {
        /// Candidate addresses in order of preference (1..=[`MAX_CONNECT_ADDRS`]).
        addrs: ArrayVec<SocketAddr, MAX_CONNECT_ADDRS>,
        /// Limit for each attempt.
        timeout: Duration,
        /// Bind the outgoing socket to this source address of the target's family, if
        /// configured (3proxy `external`); otherwise do not bind at all.
        source: SourceAddrs,
    },
    /// Listen for the one incoming connection of a SOCKS BIND on `ip` (port chosen by the
    /// system); answer with [`Session::handle_bind_listening`] or
    /// [`Session::handle_bind_failed`].
    Bind {
        /// The proxy address to listen on: the `external` address of the expected peer's
        /// family if configured, else the address the client connected to.
        ip: IpAddr,
    },
    /// Wait until `deadline` for a connection on the BIND listener, keeping an eye on the
    /// client (its end of stream ends the wait); answer with
    /// [`Session::handle_bind_accepted`] or [`Session::handle_bind_failed`]. The accepted
    /// socket is then the target of the relay.
    AcceptPeer {
        /// When to give up.
        deadline: Instant,
    },
    /// Open the relay socket of a SOCKS5 UDP association on `ip` (port chosen by the
    /// system); answer with [`Session::handle_associated`] or
    /// [`Session::handle_associate_failed`].
    Associate {
        /// The address the client reached: the one its datagrams can reach.
        ip: IpAddr,
    },
    /// Relay the association's datagrams (the [`crate::udp::Association`] machine decides
    /// about each) until the control connection closes or the association idles out;
    /// answer with [`Session::handle_relay_end`].
    RelayDatagrams(Box<AssociationPlan>),
    /// Relay bytes between client and target in both directions until both are done, as
    /// the plan says; bytes the driver holds unconsumed go to the target first. Answer
    /// with [`Session::handle_relay_end`].
    Relay(RelayPlan),
    /// Parent chain negotiation: write these bytes to the outgoing connection (the one
    /// [`Intent::Connect`] opened); a write failure is reported with
    /// [`Session::handle_target_closed`].
    SendToTarget {
        /// The bytes, in full.
        bytes: Vec<u8>,
    },
    /// Parent chain negotiation: read from the outgoing connection until `deadline` and
    /// feed what arrives to [`Session::handle_target_input`] (bytes it does not consume
    /// stay with the driver: after the last hop's reply they are the target's first data
    /// and go to the client before the relay starts); end of stream or an error:
    /// [`Session::handle_target_closed`]; the deadline: [`Session::handle_timeout`].
    ReadTarget {
        /// When the hop's answer is overdue.
        deadline: Instant,
    },
    /// Plain HTTP forwarding takes the connection over (HTTP proxy, a request other than
    /// CONNECT): from now on the driver moves bytes between the client, the current
    /// outgoing connection and the session's forwarding buffers
    /// ([`Session::forward_client_space`] and the other `forward_*` methods), and carries
    /// out the intents that follow, until [`Intent::Close`]. (The bytes that came with
    /// the first head were consumed by [`Session::handle_input`]: the session has them.)
    Forward,
    /// Moves an outgoing connection between the driver's current slot and its pool of
    /// idle origin connections (HTTP keep-alive to origins; see [`OriginMove`]).
    Origin(OriginMove),
    /// Write this record to the service's log.
    Log(LogRecord),
    /// Flush pending transmits, close both sockets and drop the session.
    Close,
}

/// What to do with an outgoing connection of a forwarding session. The driver keeps up to
/// [`ORIGIN_POOL`] idle ones in numbered slots besides the current one; the session decides
/// every move and knows what each slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginMove {
    /// Put the current connection into this slot (closing what the slot held).
    Park(u8),
    /// Make this slot's connection the current one (closing the current one, if any), then
    /// check that it is still open and silent (a read that would block) and answer with
    /// [`Session::handle_origin_reused`].
    Reuse(u8),
    /// Close this slot's connection.
    Drop(u8),
    /// Close the current connection.
    DropCurrent,
}

/// Idle origin connections a forwarding session keeps.
pub const ORIGIN_POOL: usize = 4;

/// Why an outgoing connection failed, as far as the runtime can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// The target refused (RST).
    Refused,
    /// No route to the network.
    NetworkUnreachable,
    /// No route to the host.
    HostUnreachable,
    /// No answer within the connect timeout.
    TimedOut,
    /// No outgoing socket could be made: the process or system is out of descriptors
    /// (`EMFILE`, `ENFILE`) or buffer memory (`ENOBUFS`, `ENOMEM`). Logged as 11, 3proxy's
    /// code for a failed `socket()`, so that an admin tells an overloaded proxy from an
    /// unreachable target (13).
    NoSocket,
    /// Any other failure.
    Other,
}

impl core::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConnectError::Refused => "connection refused",
            ConnectError::NetworkUnreachable => "network unreachable",
            ConnectError::HostUnreachable => "no route to host",
            ConnectError::TimedOut => "timed out",
            ConnectError::NoSocket => "out of sockets or buffer memory",
            ConnectError::Other => "failed",
        })
    }
}

impl ConnectError {
    pub(super) fn log_code(self) -> LogCode {
        match self {
            ConnectError::NoSocket => LogCode::SOCKET_FAILED,
            _ => LogCode::CONNECT_FAILED,
        }
    }
}

/// Why a SOCKS BIND did not get its incoming connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindError {
    /// No listening socket could be opened (3proxy code 12).
    Listen,
    /// No connection came before the deadline (460).
    Timeout,
    /// The client closed its connection while waiting (460).
    ClientClosed,
    /// `accept()` failed (462).
    Accept,
}

impl core::fmt::Display for BindError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            BindError::Listen => "BIND: cannot listen",
            BindError::Timeout => "BIND: no incoming connection in time",
            BindError::ClientClosed => "BIND: client closed while waiting",
            BindError::Accept => "BIND: accept failed",
        })
    }
}

/// Why name resolution gave no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist or has no address of a usable family.
    NotFound,
    /// The name is not valid text for the resolver.
    InvalidName,
    /// The resolver failed or timed out.
    Failed,
}
