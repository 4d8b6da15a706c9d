//! The sans-IO machine for the client side of a SOCKS connection: an application connecting
//! through a SOCKS proxy, triproxy chaining through a parent proxy, and the conformance tool
//! testing other servers.
//!
//! [`Client::new`] queues the first message (a SOCKS4/4a request or a SOCKS5 greeting);
//! the machine then answers the proxy's messages by itself (RFC 1929 credentials when the
//! proxy selects X'02', the request after authentication) and reports the outcome as
//! [`ClientEvent`]s: a refusal is typed ([`Refusal`]: the SOCKS5 REP or the SOCKS4 CD). Like the server it does not buffer: [`Client::handle_input`] returns
//! how many bytes it consumed, the driver keeps the rest, and bytes after the final reply
//! (the target's first data) are never consumed.
//!
//! It is not a chain planner: one machine speaks to one proxy. Chains are built by the
//! session engine, one client machine per hop. It does no I/O: the crate's `blocking` and
//! `futures` features add small drivers over sockets.

use crate::error::{ClientError, ClientPhase};
use crate::outbox::Outbox;
use crate::{v4, v5};
use arrayvec::ArrayVec;
use core::time::Duration;
use std::net::SocketAddr;
use std::time::Instant;
use triproxy_wire::{TargetAddr, Transmit};

pub use crate::v5::{Command, Credentials};

/// The protocol spoken to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientVersion {
    /// SOCKS4: IPv4 targets only.
    V4,
    /// SOCKS4a: IPv4 targets, or names sent as 0.0.0.1 plus the host name.
    V4a,
    /// SOCKS5.
    V5,
}

/// What to ask the proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Protocol to speak.
    pub version: ClientVersion,
    /// SOCKS5: offered as method X'02' (besides X'00') and sent if the proxy selects it.
    /// SOCKS4/4a: the user name is sent as USERID, the password is not used.
    pub credentials: Option<Credentials>,
    /// CONNECT, BIND or (SOCKS5 only) UDP ASSOCIATE.
    pub command: Command,
    /// The destination (for UDP ASSOCIATE: the address the datagrams will come from).
    pub target: TargetAddr,
    /// Time allowed from [`Client::new`] to the (first) reply, and again from the first
    /// BIND reply to the second.
    pub timeout: Duration,
}

/// What the proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// First (or only) success reply: the address the proxy bound (for BIND, where the
    /// peer must connect; for UDP ASSOCIATE, where to send datagrams).
    Granted {
        /// BND.ADDR / BND.PORT (SOCKS4: DSTIP / DSTPORT).
        bound: TargetAddr,
    },
    /// BIND second reply: the peer that connected. The tunnel is open.
    BindPeer {
        /// Its address.
        peer: TargetAddr,
    },
    /// The proxy refused: SOCKS5 REP or SOCKS4 CD. The machine is closed. As an error (for
    /// its log code or to return it), `ClientError::from(reply)`.
    Refused {
        /// The REP / CD code.
        reply: Refusal,
    },
}

/// A refusal as the proxy sent it: the SOCKS5 REP (RFC 1928 section 6) or the SOCKS4 CD,
/// typed, with any unassigned byte kept in `Other`.
///
/// ```
/// use triproxy_socks::client::Refusal;
/// use triproxy_socks::{v5, ClientError};
/// let r = Refusal::V5(v5::ReplyCode::ConnectionRefused);
/// assert_eq!(r.to_u8(), 5);
/// assert_eq!(ClientError::from(r).log_code().get(), 65);
/// assert_eq!(r.to_string(), "connection refused (SOCKS5 REP 5)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// A SOCKS4 or SOCKS4a CD other than 90 (granted).
    V4(v4::ReplyCode),
    /// A SOCKS5 REP other than X'00' (succeeded).
    V5(v5::ReplyCode),
}

impl Refusal {
    /// The byte on the wire (REP or CD).
    pub fn to_u8(self) -> u8 {
        match self {
            Refusal::V4(code) => code.to_u8(),
            Refusal::V5(reply) => reply.to_u8(),
        }
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Refusal::V4(code) => write!(f, "{code} (SOCKS4 CD {})", code.to_u8()),
            Refusal::V5(reply) => write!(f, "{reply} (SOCKS5 REP {})", reply.to_u8()),
        }
    }
}

impl From<Refusal> for ClientError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::V4(code) => ClientError::V4Rejected { code },
            Refusal::V5(reply) => ClientError::V5Refused { reply },
        }
    }
}

/// Where the client machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// SOCKS5 greeting sent; waiting for the method selection.
    AwaitingMethod,
    /// RFC 1929 request sent; waiting for its status.
    AwaitingAuthReply,
    /// Request sent; waiting for the (first) reply.
    AwaitingReply,
    /// First BIND reply received; waiting for the second.
    AwaitingBindPeer,
    /// Done: the driver relays; further bytes are the target's.
    Established,
    /// Failed or refused.
    Closed,
}

/// The client side of one SOCKS connection. See the [module documentation](self).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    state: ClientState,
    deadline: Option<Instant>,
    outbox: Outbox,
    events: ArrayVec<ClientEvent, 2>,
}

impl Client {
    /// A machine that starts talking at `now`; the first message is queued at once.
    ///
    /// Fails with [`ClientError::TargetNotSupported`] for SOCKS4 with a name or an IPv6
    /// target (SOCKS4a: IPv6) or an address 0.0.0.x (which means SOCKS4a),
    /// [`ClientError::UdpNotSupported`] for UDP ASSOCIATE over SOCKS4/4a, and
    /// [`ClientError::UserIdContainsNul`] for a SOCKS4 user name with a NUL byte.
    pub fn new(now: Instant, config: ClientConfig) -> Result<Self, ClientError> {
        let mut outbox = Outbox::default();
        let state = match config.version {
            ClientVersion::V4 | ClientVersion::V4a => {
                outbox.push(&v4_request(&config)?);
                ClientState::AwaitingReply
            }
            ClientVersion::V5 => {
                let methods: &[v5::Method] = if config.credentials.is_some() {
                    &[v5::Method::NO_AUTH, v5::Method::PASSWORD]
                } else {
                    &[v5::Method::NO_AUTH]
                };
                outbox.push(&v5::Greeting::new(methods));
                ClientState::AwaitingMethod
            }
        };
        Ok(Client {
            deadline: now.checked_add(config.timeout),
            config,
            state,
            outbox,
            events: ArrayVec::new(),
        })
    }

    /// Feeds bytes from the proxy; returns how many were consumed (0 for a strict prefix
    /// of a message). Stops consuming after the final reply or a refusal: the remaining
    /// bytes belong to the tunnel. On `Err` the state is Closed.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, ClientError> {
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            let step = match self.state {
                ClientState::AwaitingMethod => self.on_method(rest),
                ClientState::AwaitingAuthReply => self.on_auth(rest),
                ClientState::AwaitingReply => self.on_reply(now, rest, false),
                ClientState::AwaitingBindPeer => self.on_reply(now, rest, true),
                ClientState::Established | ClientState::Closed => return Ok(used),
            };
            match step {
                Ok(0) => return Ok(used),
                Ok(n) => used += n,
                Err(e) => {
                    self.state = ClientState::Closed;
                    return Err(e);
                }
            }
        }
    }

    /// The next bytes to write to the proxy.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }

    /// The next outcome to act on.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_at(0)
    }

    /// The deadline for the proxy's next answer, while one is awaited; None once
    /// Established or Closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.phase().and(self.deadline)
    }

    /// If an answer is awaited and `now` is past its deadline: Closed, and the error to log
    /// ([`ClientError::Timeout`]). Otherwise None.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ClientError> {
        let phase = self.phase()?;
        if now < self.deadline? {
            return None;
        }
        self.state = ClientState::Closed;
        Some(ClientError::Timeout { phase })
    }

    /// The proxy closed the connection. If an answer was still awaited: Closed, and the
    /// error to log ([`ClientError::Closed`]). Otherwise None.
    pub fn handle_eof(&mut self) -> Option<ClientError> {
        let phase = self.phase()?;
        self.state = ClientState::Closed;
        Some(ClientError::Closed { phase })
    }

    /// Where the machine is.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// The protocol spoken.
    pub fn version(&self) -> ClientVersion {
        self.config.version
    }

    /// What the machine waits for, if anything.
    pub fn phase(&self) -> Option<ClientPhase> {
        let v5 = self.config.version == ClientVersion::V5;
        match self.state {
            ClientState::AwaitingMethod => Some(ClientPhase::V5Method),
            ClientState::AwaitingAuthReply => Some(ClientPhase::V5Auth),
            ClientState::AwaitingReply if v5 => Some(ClientPhase::V5Reply),
            ClientState::AwaitingReply => Some(ClientPhase::V4Reply),
            ClientState::AwaitingBindPeer if v5 => Some(ClientPhase::V5BindPeer),
            ClientState::AwaitingBindPeer => Some(ClientPhase::V4BindPeer),
            ClientState::Established | ClientState::Closed => None,
        }
    }

    fn push_v5_request(&mut self) {
        self.outbox.push(&v5::Request {
            command: self.config.command,
            target: self.config.target.clone(),
        });
        self.state = ClientState::AwaitingReply;
    }

    fn on_method(&mut self, buf: &[u8]) -> Result<usize, ClientError> {
        let parsed = v5::MethodSelection::parse(buf).map_err(|error| ClientError::Malformed {
            phase: ClientPhase::V5Method,
            error,
        })?;
        let Some((sel, used)) = parsed.complete() else {
            return Ok(0);
        };
        match (sel.method, &self.config.credentials) {
            (v5::Method::NO_AUTH, _) => self.push_v5_request(),
            (v5::Method::PASSWORD, Some(credentials)) => {
                self.outbox.push(credentials);
                self.state = ClientState::AwaitingAuthReply;
            }
            (v5::Method(method), _) => return Err(ClientError::NoAcceptableMethod { method }),
        }
        Ok(used)
    }

    fn on_auth(&mut self, buf: &[u8]) -> Result<usize, ClientError> {
        let parsed = v5::AuthReply::parse(buf).map_err(|error| ClientError::Malformed {
            phase: ClientPhase::V5Auth,
            error,
        })?;
        let Some((reply, used)) = parsed.complete() else {
            return Ok(0);
        };
        if !reply.is_success() {
            return Err(ClientError::AuthRejected {
                status: reply.status,
            });
        }
        self.push_v5_request();
        Ok(used)
    }

    fn on_reply(&mut self, now: Instant, buf: &[u8], second: bool) -> Result<usize, ClientError> {
        let phase = self.phase().unwrap_or(ClientPhase::V5Reply);
        let malformed = |error| ClientError::Malformed { phase, error };
        let (refusal, addr, used) = if self.config.version == ClientVersion::V5 {
            let Some((r, used)) = v5::Reply::parse(buf).map_err(malformed)?.complete() else {
                return Ok(0);
            };
            let refusal = (r.reply != v5::ReplyCode::Succeeded).then_some(Refusal::V5(r.reply));
            (refusal, r.bound, used)
        } else {
            let Some((r, used)) = v4::Reply::parse(buf).map_err(malformed)?.complete() else {
                return Ok(0);
            };
            let refusal = (r.code != v4::ReplyCode::Granted).then_some(Refusal::V4(r.code));
            (refusal, r.addr(), used)
        };
        let event = if let Some(reply) = refusal {
            self.state = ClientState::Closed;
            ClientEvent::Refused { reply }
        } else if second {
            self.state = ClientState::Established;
            ClientEvent::BindPeer { peer: addr }
        } else if self.config.command == Command::Bind {
            self.state = ClientState::AwaitingBindPeer;
            self.deadline = now.checked_add(self.config.timeout);
            ClientEvent::Granted { bound: addr }
        } else {
            self.state = ClientState::Established;
            ClientEvent::Granted { bound: addr }
        };
        // At most two events per connection (Granted, BindPeer), so this cannot overflow.
        let _ = self.events.try_push(event);
        Ok(used)
    }
}

/// The SOCKS4/4a request for `config`.
fn v4_request(config: &ClientConfig) -> Result<v4::Request, ClientError> {
    let command = match config.command {
        Command::Connect => v4::Command::Connect,
        Command::Bind => v4::Command::Bind,
        Command::UdpAssociate => return Err(ClientError::UdpNotSupported),
    };
    let unsupported = ClientError::TargetNotSupported {
        version: config.version,
    };
    let (destination, port) = match &config.target {
        TargetAddr::Ip(SocketAddr::V4(sa)) => (v4::Destination::Ip(*sa.ip()), sa.port()),
        TargetAddr::Domain(d, port) if config.version == ClientVersion::V4a => {
            (v4::Destination::Domain(d.clone()), *port)
        }
        _ => return Err(unsupported),
    };
    if let v4::Destination::Ip(ip) = destination {
        // 0.0.0.x would be read as a SOCKS4a marker by the proxy.
        if v4::is_v4a_marker(ip) {
            return Err(unsupported);
        }
    }
    let user_id = config
        .credentials
        .as_ref()
        .map(|c| c.username.clone())
        .unwrap_or_default();
    if user_id.contains(&0) {
        return Err(ClientError::UserIdContainsNul);
    }
    Ok(v4::Request {
        command,
        port,
        destination,
        user_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: ClientVersion, target: &str) -> ClientConfig {
        ClientConfig {
            version,
            credentials: None,
            command: Command::Connect,
            target: TargetAddr::Ip(target.parse().unwrap()),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // tests need some instant to start from
    fn v4_targets() {
        let now = Instant::now();
        assert!(Client::new(now, config(ClientVersion::V4, "1.2.3.4:80")).is_ok());
        assert_eq!(
            Client::new(now, config(ClientVersion::V4a, "[::1]:80")).unwrap_err(),
            ClientError::TargetNotSupported {
                version: ClientVersion::V4a
            }
        );
        assert!(Client::new(now, config(ClientVersion::V4, "0.0.0.7:80")).is_err());
        let mut nul = config(ClientVersion::V4, "1.2.3.4:80");
        nul.credentials = Some(Credentials::new(b"a\0b", b"").unwrap());
        assert_eq!(
            Client::new(now, nul).unwrap_err(),
            ClientError::UserIdContainsNul
        );
        let mut c = config(ClientVersion::V4, "1.2.3.4:80");
        c.command = Command::UdpAssociate;
        assert_eq!(
            Client::new(now, c).unwrap_err(),
            ClientError::UdpNotSupported
        );
    }
}
