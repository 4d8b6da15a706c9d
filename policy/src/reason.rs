//! Why a connection failed, as a value.
//!
//! Every failure a session reports is a 3proxy `LogCode` (what
//! the log line and the admin's tools see) plus a [`Reason`]: the typed cause the code
//! does not spell out. Reasons are data, not text: each front maps one to its own answer
//! (a SOCKS5 REP, a SOCKS4 CD, an HTTP status; later a POP3 `-ERR` or an SMTP reply), and
//! [`core::fmt::Display`] renders it for people. No reason is ever built from Debug text.

use crate::connlim::ConnLimited;
use crate::parent::ParentKind;
use crate::quota::QuotaExceeded;
use crate::relay::RelayEnd;
use crate::session::{BindError, ConnectError, ResolveError};
use core::fmt;
use std::net::SocketAddr;
use triproxy_wire::LogCode;

/// The typed cause of a failure. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The SOCKS exchange with the client failed (malformed, deadline, end of stream).
    Socks(triproxy_socks::Error),
    /// The HTTP request of the client failed.
    Http(triproxy_http::RequestError),
    /// Authentication failed; the log code says how (4 no user name, 5 unknown user,
    /// 6-8 a bad password of each kind).
    Auth(LogCode),
    /// HTTP credentials longer than 255 bytes, the limit kept for every name and password.
    CredentialsTooLong,
    /// An ACL entry denied the request.
    AclDenied,
    /// No ACL entry allowed the request.
    AclNoMatch,
    /// A traffic quota is spent.
    Quota(QuotaExceeded),
    /// A `connlim` rule is at its limit.
    ConnLimit(ConnLimited),
    /// The target's name did not resolve.
    Resolve(ResolveError),
    /// The outgoing connection failed (to the target, or to the first parent).
    Connect {
        /// How it failed.
        error: ConnectError,
        /// The parent connected to, if it was one.
        parent: Option<SocketAddr>,
    },
    /// A SOCKS BIND failed.
    Bind(BindError),
    /// A SOCKS BIND's incoming connection came from another address than the request
    /// named.
    BindPeerMismatch {
        /// Where it came from.
        peer: SocketAddr,
    },
    /// A parent in the chain failed.
    Parent(ParentFailure),
    /// An established tunnel ended other than cleanly.
    Relay(RelayEnd),
    /// Forwarding a plain HTTP request failed (its head, its body, the origin's answer, a
    /// deadline).
    Exchange(triproxy_http::exchange::ExchangeError),
    /// The POP3 proxy's exchange failed (3proxy 611-623).
    Pop3(triproxy_pop3::Error),
    /// The SMTP proxy's exchange failed (3proxy 662-682).
    Smtp(triproxy_smtp::Error),
    /// The IMAP proxy's exchange failed (3proxy 692-699).
    Imap(triproxy_imap::Error),
    /// The TLS proxy's ClientHello or ServerHello check failed (3proxy 302-367, 100).
    Tls(triproxy_tls::Error),
    /// `auto`: the client sent nothing in time to choose a protocol by (801).
    NoFirstByte,
    /// A DNS proxy query failed or was not resolved: 3proxy's `dnspr` code (813-888; see
    /// [`triproxy_dns::proxy`]).
    Dns(LogCode),
    /// A datagram to a UDP association's port from someone other than its client or the
    /// peers the client sent to (dropped; a notice, at most once a minute).
    UdpStranger {
        /// The sender.
        from: SocketAddr,
    },
    /// The client closed its connection while its request was being decided (code 441).
    ClientClosed,
}

/// Which parent of a chain failed and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentFailure {
    /// The hop (1-based position, kind, address), or `None` for the chain as a whole.
    pub hop: Option<(usize, ParentKind, SocketAddr)>,
    /// What went wrong.
    pub cause: ParentCause,
}

/// What went wrong with a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentCause {
    /// The SOCKS exchange with the parent failed or was refused.
    Socks(triproxy_socks::ClientError),
    /// The HTTP CONNECT exchange with the parent failed or was refused.
    Http(triproxy_http::ConnectError),
    /// The parent closed the connection without a failure its protocol names.
    Closed,
    /// The parent takes the client's user name and password, and the client gave none.
    NoClientCredentials,
    /// A `tcp` or `http` parent is the end of a chain: it cannot relay to another hop.
    CannotRelayFurther,
    /// The configured credentials for the parent cannot be sent (too long).
    UnusableCredentials,
    /// The hop's machine neither waited nor finished (a defect, reported as a hop failure).
    Stalled,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Socks(e) => e.fmt(f),
            Reason::Http(e) => e.fmt(f),
            Reason::Auth(code) => f.write_str(match code.get() {
                4 => "authentication required but no user name given",
                5 => "unknown user",
                6..=8 => "wrong password",
                _ => "authentication failed",
            }),
            Reason::CredentialsTooLong => {
                f.write_str("credentials longer than 255 bytes cannot be checked")
            }
            Reason::AclDenied => f.write_str("denied by ACL"),
            Reason::AclNoMatch => f.write_str("no ACL entry allows this request"),
            Reason::Quota(q) => q.fmt(f),
            Reason::ConnLimit(c) => c.fmt(f),
            Reason::Resolve(e) => match e {
                ResolveError::NotFound => f.write_str("host not found"),
                ResolveError::InvalidName => f.write_str("the name is not valid for the resolver"),
                ResolveError::Failed => f.write_str("the resolver failed"),
            },
            Reason::Connect { error, parent } => {
                match parent {
                    Some(p) => write!(f, "connect to parent {p} failed: ")?,
                    None => f.write_str("connect failed: ")?,
                }
                error.fmt(f)
            }
            Reason::Bind(e) => e.fmt(f),
            Reason::BindPeerMismatch { peer } => write!(
                f,
                "BIND: incoming connection from {peer}, not from the requested address"
            ),
            Reason::Parent(p) => p.fmt(f),
            Reason::Relay(end) => end.fmt(f),
            Reason::Exchange(e) => e.fmt(f),
            Reason::ClientClosed => {
                f.write_str("client closed the connection before the request was answered")
            }
            Reason::Pop3(e) => write!(f, "POP3: {e}"),
            Reason::Smtp(e) => write!(f, "SMTP: {e}"),
            Reason::Imap(e) => write!(f, "IMAP: {e}"),
            Reason::Tls(e) => write!(f, "TLS: {e}"),
            Reason::NoFirstByte => f.write_str("auto: no first byte in time"),
            Reason::Dns(code) => match code.0 {
                888 => f.write_str("DNS: name not resolved (NXDOMAIN or SERVFAIL answered)"),
                813 => f.write_str("DNS: receiving the query failed"),
                814 => f.write_str("DNS: query of a bad size"),
                816 => f.write_str("DNS: not a standard query with one question"),
                817 => f.write_str("DNS: bad name in the question"),
                818..=822 => f.write_str("DNS: socket, send or receive toward the server failed"),
                _ => write!(f, "DNS: failure {}", code.0),
            },
            Reason::UdpStranger { from } => {
                write!(f, "datagram from a stranger ({from}) dropped")
            }
        }
    }
}

impl fmt::Display for ParentFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hop {
            Some((n, kind, addr)) => write!(f, "parent {kind} {addr} (hop {n}): ")?,
            None => f.write_str("parent chain: ")?,
        }
        match &self.cause {
            ParentCause::Socks(e) => e.fmt(f),
            ParentCause::Http(e) => e.fmt(f),
            ParentCause::Closed => f.write_str("connection closed"),
            ParentCause::NoClientCredentials => f.write_str(
                "the parent takes the client's user name and password, and the client gave none",
            ),
            ParentCause::CannotRelayFurther => f.write_str("a tcp hop cannot relay further"),
            ParentCause::UnusableCredentials => f.write_str("unusable credentials"),
            ParentCause::Stalled => f.write_str("parent negotiation stalled"),
        }
    }
}
