//! The sans-IO machine a proxy runs for one client connection: SOCKS4, SOCKS4a and SOCKS5 on
//! one port (the first byte decides), from the first byte to the final reply.
//!
//! The machine parses what the client sends, answers what the protocol answers by itself
//! (method selection, malformed-input failures), and reports everything that needs a
//! decision as a [`ServerEvent`]: credentials to check, then a request to carry out. The
//! driver answers through [`Server::handle_auth`], [`Server::handle_granted`],
//! [`Server::handle_bind_peer`] and [`Server::handle_refused`], which queue the replies.
//! After every call the driver drains [`Server::poll_transmit`] and [`Server::poll_event`]
//! until both are empty, and arms a timer for [`Server::poll_timeout`].
//!
//! The machine does not buffer: [`Server::handle_input`] returns how many bytes it consumed
//! and the driver keeps the rest, presenting it again with any new bytes in front of the
//! next read. A buffer of [`MAX_MESSAGE_LEN`] bytes holds any single handshake message.
//! Once the request is decided the machine consumes nothing more, so bytes a client sent
//! after its request (pipelined data) stay with the driver for the relay.
//!
//! It is not a policy (it never decides who may connect where) and not a relay.

use crate::error::Error;
use crate::outbox::Outbox;
use crate::{v4, v5};
use arrayvec::ArrayVec;
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use triproxy_wire::{TargetAddr, Transmit};

pub use crate::v5::{Command, Credentials};

/// The longest single message a client can send during the handshake (a SOCKS4a request
/// with a 255-byte user id and a 255-byte host name); a driver's read buffer of this size
/// never stalls the machine.
pub const MAX_MESSAGE_LEN: usize = v4::MAX_REQUEST_LEN;

/// The protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// SOCKS4 (IPv4 address).
    V4,
    /// SOCKS4a (host name after the user id).
    V4a,
    /// SOCKS5 (RFC 1928).
    V5,
}

/// What the client asked for, reported once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which protocol carried it.
    pub version: Version,
    /// CONNECT, BIND or (SOCKS5 only) UDP ASSOCIATE.
    pub command: Command,
    /// The destination as sent (for UDP ASSOCIATE: where the client will send from, often
    /// 0.0.0.0:0).
    pub target: TargetAddr,
    /// SOCKS4/4a USERID when non-empty; None for SOCKS5 (its user comes from Credentials).
    pub user_id: Option<ArrayVec<u8, 255>>,
}

/// Which SOCKS5 authentication methods the server accepts (RFC 1928 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MethodPolicy {
    /// Select X'00' if offered, else X'FF'.
    NoAuth,
    /// Select X'02' (RFC 1929) if offered, else X'FF' ([`Error::NoAcceptableMethod`], log
    /// code 4).
    Password,
    /// Select X'00' if offered, else X'02' if offered, else X'FF'.
    NoAuthOrPassword,
}

impl MethodPolicy {
    fn select(self, greeting: &v5::Greeting) -> Option<v5::Method> {
        let no_auth = greeting.offers(v5::Method::NO_AUTH);
        let password = greeting.offers(v5::Method::PASSWORD);
        match self {
            MethodPolicy::NoAuth if no_auth => Some(v5::Method::NO_AUTH),
            MethodPolicy::Password if password => Some(v5::Method::PASSWORD),
            MethodPolicy::NoAuthOrPassword if no_auth => Some(v5::Method::NO_AUTH),
            MethodPolicy::NoAuthOrPassword if password => Some(v5::Method::PASSWORD),
            _ => None,
        }
    }
}

/// How a [`Server`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// SOCKS5 authentication methods accepted.
    pub methods: MethodPolicy,
    /// Whether SOCKS4 and SOCKS4a are spoken (else a first byte 4 is refused, no reply).
    pub allow_v4: bool,
    /// Whether SOCKS5 is spoken (else a first byte 5 is refused, no reply).
    pub allow_v5: bool,
    /// Time from [`Server::new`] until the request must have arrived. The clock is not
    /// stopped while a decision is pending, but no deadline is reported then.
    pub handshake_timeout: Duration,
}

/// Something the driver must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// An RFC 1929 user name and password to check; answer with [`Server::handle_auth`].
    Credentials(Credentials),
    /// The client's request; answer with [`Server::handle_granted`] or
    /// [`Server::handle_refused`].
    Request(Request),
}

/// The answer to [`ServerEvent::Credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthVerdict {
    /// The user may go on.
    Accepted,
    /// Wrong user or password: status failure, then the connection closes (RFC 1929).
    Rejected,
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Waiting for the first message (SOCKS4 request or SOCKS5 greeting).
    Greeting,
    /// SOCKS5 method X'02' selected; waiting for the RFC 1929 request.
    Authenticating,
    /// [`ServerEvent::Credentials`] reported; waiting for [`Server::handle_auth`].
    AwaitingAuthVerdict,
    /// Waiting for the SOCKS5 request.
    AwaitingRequest,
    /// [`ServerEvent::Request`] reported; waiting for granted or refused.
    AwaitingDecision,
    /// First BIND reply sent; waiting for [`Server::handle_bind_peer`] (or refused).
    AwaitingBindPeer,
    /// Handshake done: the driver relays. The machine consumes no more input.
    Established,
    /// Failed or refused: the driver flushes transmits and closes.
    Closed,
}

/// The server side of one SOCKS connection. See the [module documentation](self).
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    state: State,
    version: Option<Version>,
    deadline: Option<Instant>,
    command: Option<Command>,
    outbox: Outbox,
    event: Option<ServerEvent>,
}

impl Server {
    /// A machine for a connection accepted at `now`; its handshake deadline is
    /// `now + config.handshake_timeout`.
    pub fn new(now: Instant, config: ServerConfig) -> Self {
        Server {
            config,
            state: State::Greeting,
            version: None,
            deadline: now.checked_add(config.handshake_timeout),
            command: None,
            outbox: Outbox::default(),
            event: None,
        }
    }

    /// Consumes at most one complete message per state step (may loop over several messages if each is
    /// complete and no decision is pending). Returns bytes consumed. While a decision is pending
    /// (AwaitingAuthVerdict / AwaitingDecision / AwaitingBindPeer) or Established/Closed it consumes 0:
    /// the driver keeps unconsumed bytes — that is how pipelined data after the request is handed back.
    /// On Err, the right failure reply (if the protocol has one) is already queued for poll_transmit and
    /// the state is Closed; the driver flushes transmits then closes.
    ///
    /// A strict prefix of a message consumes 0 and is not an error. Replies on error: SOCKS4
    /// CD 91 for any malformed request after VN=4; SOCKS5 `05 FF` for NMETHODS = 0 or no
    /// acceptable method, `01 01` for ULEN = 0, REP 07 for an unknown CMD, REP 08 for an
    /// unknown ATYP, REP 01 for another malformed request; nothing for a bad or disabled
    /// version byte. `now` is not needed: deadlines fire only through
    /// [`Server::handle_timeout`].
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let _ = now;
        let mut used = 0;
        loop {
            let rest = input.get(used..).unwrap_or_default();
            let step = match self.state {
                State::Greeting => self.on_first(rest),
                State::Authenticating => self.on_auth(rest),
                State::AwaitingRequest => self.on_v5_request(rest),
                _ => return Ok(used),
            };
            match step {
                Ok(0) => return Ok(used),
                Ok(n) => used += n,
                Err(e) => {
                    self.state = State::Closed;
                    return Err(e);
                }
            }
        }
    }

    /// The next bytes to write to the client.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }

    /// The next decision to make.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.event.take()
    }

    /// Handshake deadline (now at creation + handshake_timeout) until Established/Closed/awaiting a decision; None after.
    ///
    /// The deadline is fixed at creation: time spent waiting for a decision counts, so after
    /// a slow [`Server::handle_auth`] the deadline may already be due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Greeting | State::Authenticating | State::AwaitingRequest => self.deadline,
            _ => None,
        }
    }

    /// If now >= deadline: state Closed, returns Some(Error::Timeout) (no reply bytes); else None.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {
                self.state = State::Closed;
                Some(Error::Timeout)
            }
            _ => None,
        }
    }

    /// The client closed its side. During the handshake this ends the machine and returns
    /// [`Error::Truncated`] (log code 441); while a decision is pending the machine is closed
    /// and `None` is returned (the driver logs its own reason); Established and Closed are
    /// left as they are.
    pub fn handle_eof(&mut self) -> Option<Error> {
        match self.state {
            State::Greeting | State::Authenticating | State::AwaitingRequest => {
                self.state = State::Closed;
                Some(Error::Truncated)
            }
            State::AwaitingAuthVerdict | State::AwaitingDecision | State::AwaitingBindPeer => {
                self.state = State::Closed;
                None
            }
            State::Established | State::Closed => None,
        }
    }

    /// RFC 1929 answer: Accepted → queue 01 00, go on; Rejected → queue 01 01 (RFC: then close), state Closed.
    ///
    /// Does nothing outside [`State::AwaitingAuthVerdict`].
    pub fn handle_auth(&mut self, verdict: AuthVerdict) {
        if self.state != State::AwaitingAuthVerdict {
            return;
        }
        match verdict {
            AuthVerdict::Accepted => {
                self.outbox.push(&v5::AuthReply::SUCCESS);
                self.state = State::AwaitingRequest;
            }
            AuthVerdict::Rejected => {
                self.outbox.push(&v5::AuthReply::FAILURE);
                self.state = State::Closed;
            }
        }
    }

    /// Success reply with BND = bound: CONNECT → Established; BIND → first reply, AwaitingBindPeer;
    /// UDP ASSOCIATE → Established (the control connection then just stays open). SOCKS4 replies carry an
    /// IPv4 address; for an IPv6 `bound` use 0.0.0.0 and the port.
    ///
    /// Does nothing outside [`State::AwaitingDecision`].
    pub fn handle_granted(&mut self, bound: SocketAddr) {
        if self.state != State::AwaitingDecision {
            return;
        }
        self.push_success(bound);
        self.state = match self.command {
            Some(Command::Bind) => State::AwaitingBindPeer,
            _ => State::Established,
        };
    }

    /// BIND second reply (the address of the peer that connected) → Established.
    ///
    /// Does nothing outside [`State::AwaitingBindPeer`].
    pub fn handle_bind_peer(&mut self, peer: SocketAddr) {
        if self.state != State::AwaitingBindPeer {
            return;
        }
        self.push_success(peer);
        self.state = State::Established;
    }

    /// Failure reply (SOCKS5 REP = reply; SOCKS4 CD 91 for any failure) → Closed. BND in failure replies is
    /// all zeros with ATYP IPv4.
    ///
    /// Works in [`State::AwaitingDecision`] and [`State::AwaitingBindPeer`] (a BIND whose peer
    /// never came); does nothing elsewhere. A `reply` of [`v5::ReplyCode::Succeeded`] is sent
    /// as [`v5::ReplyCode::GeneralFailure`], since this is a refusal.
    pub fn handle_refused(&mut self, reply: v5::ReplyCode) {
        if !matches!(
            self.state,
            State::AwaitingDecision | State::AwaitingBindPeer
        ) {
            return;
        }
        let reply = match reply {
            v5::ReplyCode::Succeeded => v5::ReplyCode::GeneralFailure,
            other => other,
        };
        self.push_failure(reply);
        self.state = State::Closed;
    }

    /// Where the machine is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The client's protocol, once known (SOCKS5 from its first byte, SOCKS4 / 4a once
    /// DSTIP has arrived), even if the handshake later failed.
    pub fn version(&self) -> Option<Version> {
        self.version
    }

    fn push_success(&mut self, addr: SocketAddr) {
        if self.version == Some(Version::V5) {
            self.outbox.push(&v5::Reply {
                reply: v5::ReplyCode::Succeeded,
                bound: TargetAddr::Ip(addr),
            });
        } else {
            let ip = match addr.ip() {
                IpAddr::V4(ip) => ip,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            self.outbox.push(&v4::Reply {
                code: v4::ReplyCode::Granted,
                port: addr.port(),
                ip,
            });
        }
    }

    fn push_failure(&mut self, reply: v5::ReplyCode) {
        if self.version == Some(Version::V5) {
            self.outbox.push(&v5::Reply::failure(reply));
        } else {
            self.outbox.push(&v4::Reply::rejected());
        }
    }

    fn on_first(&mut self, buf: &[u8]) -> Result<usize, Error> {
        match buf.first() {
            None => Ok(0),
            Some(&v4::VERSION) if !self.config.allow_v4 => Err(Error::VersionDisabled {
                version: v4::VERSION,
            }),
            Some(&v5::VERSION) if !self.config.allow_v5 => Err(Error::VersionDisabled {
                version: v5::VERSION,
            }),
            Some(&v4::VERSION) => self.on_v4_request(buf),
            Some(&v5::VERSION) => {
                self.version = Some(Version::V5);
                self.on_greeting(buf)
            }
            Some(&other) => Err(Error::BadVersion { version: other }),
        }
    }

    fn on_v4_request(&mut self, buf: &[u8]) -> Result<usize, Error> {
        if let Some(ip) = buf.get(4..8) {
            self.version = Some(if v4::is_v4a_marker(v5::ipv4(ip)) {
                Version::V4a
            } else {
                Version::V4
            });
        }
        let parsed = match v4::Request::parse(buf) {
            Ok(p) => p,
            Err(e) => {
                self.version.get_or_insert(Version::V4);
                self.outbox.push(&v4::Reply::rejected());
                return Err(e);
            }
        };
        let Some((req, used)) = parsed.complete() else {
            return Ok(0);
        };
        let command = Command::from(req.command);
        let user_id = (!req.user_id.is_empty()).then(|| req.user_id.clone());
        self.command = Some(command);
        self.event = Some(ServerEvent::Request(Request {
            version: if req.is_v4a() {
                Version::V4a
            } else {
                Version::V4
            },
            command,
            target: req.target(),
            user_id,
        }));
        self.state = State::AwaitingDecision;
        Ok(used)
    }

    fn on_greeting(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let parsed = match v5::Greeting::parse(buf) {
            Ok(p) => p,
            Err(e) => {
                if e == Error::NoMethods {
                    self.outbox.push(&v5::MethodSelection {
                        method: v5::Method::NO_ACCEPTABLE,
                    });
                }
                return Err(e);
            }
        };
        let Some((greeting, used)) = parsed.complete() else {
            return Ok(0);
        };
        let Some(method) = self.config.methods.select(&greeting) else {
            self.outbox.push(&v5::MethodSelection {
                method: v5::Method::NO_ACCEPTABLE,
            });
            return Err(Error::NoAcceptableMethod);
        };
        self.outbox.push(&v5::MethodSelection { method });
        self.state = if method == v5::Method::PASSWORD {
            State::Authenticating
        } else {
            State::AwaitingRequest
        };
        Ok(used)
    }

    fn on_auth(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let parsed = match v5::Credentials::parse(buf) {
            Ok(p) => p,
            Err(e) => {
                if e == Error::EmptyUsername {
                    self.outbox.push(&v5::AuthReply::FAILURE);
                }
                return Err(e);
            }
        };
        let Some((credentials, used)) = parsed.complete() else {
            return Ok(0);
        };
        self.event = Some(ServerEvent::Credentials(credentials));
        self.state = State::AwaitingAuthVerdict;
        Ok(used)
    }

    fn on_v5_request(&mut self, buf: &[u8]) -> Result<usize, Error> {
        let parsed = match v5::Request::parse(buf) {
            Ok(p) => p,
            Err(e) => {
                let reply = match e {
                    Error::BadRequestVersion { .. } => None,
                    Error::UnknownCommand { .. } => Some(v5::ReplyCode::CommandNotSupported),
                    Error::BadAddressType { .. } => Some(v5::ReplyCode::AddressTypeNotSupported),
                    _ => Some(v5::ReplyCode::GeneralFailure),
                };
                if let Some(reply) = reply {
                    self.outbox.push(&v5::Reply::failure(reply));
                }
                return Err(e);
            }
        };
        let Some((req, used)) = parsed.complete() else {
            return Ok(0);
        };
        self.command = Some(req.command);
        self.event = Some(ServerEvent::Request(Request {
            version: Version::V5,
            command: req.command,
            target: req.target,
            user_id: None,
        }));
        self.state = State::AwaitingDecision;
        Ok(used)
    }
}
