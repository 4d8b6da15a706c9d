//! The sans-IO machine of 3proxy's `tlspr` service (and of `auto` once it saw byte 22):
//! route a TLS connection by the host name in its ClientHello, without decrypting it.
//!
//! # What the driver does
//!
//! The machine never consumes the hello: the driver forwards it unchanged to the server as
//! the first bytes of the relay. So [`TlsProxy::handle_input`] always returns `Ok(0)`; the
//! driver keeps every byte it read and offers the whole buffer again, with the new bytes
//! appended, after each read. A buffer of [`TlsProxy::max_peek`] bytes (16 464) always
//! suffices: the machine decides or fails before it needs more.
//!
//! 1. [`TlsProxy::new`]; then, after each read from the client, `handle_input(now, &buf)`
//!    and drain [`TlsProxy::poll_event`] and [`TlsProxy::poll_transmit`]. Arm a timer for
//!    [`TlsProxy::poll_timeout`] and call [`TlsProxy::handle_timeout`] when it fires;
//!    call [`TlsProxy::handle_eof`] if the client closes.
//! 2. [`Event::Request`] names the target, the SNI host (for the ACL) and 3proxy's `%T`
//!    text. Apply policy and connect, then call [`TlsProxy::handle_connected`], or
//!    [`TlsProxy::handle_refused`] with the log code (then drain `poll_transmit`: a TLS
//!    alert, and close).
//! 3. Check level 0 and 1: the machine is established. Write the whole buffer to the
//!    server and relay. Level 2: write the buffer to the server, then feed what the server
//!    sends to [`TlsProxy::handle_upstream_input`] the same way (nothing consumed, keep and
//!    re-offer). When [`TlsProxy::is_established`], relay, starting with the buffered
//!    server bytes; on an error, close both. [`TlsProxy::poll_upstream_transmit`] is always
//!    empty: the driver sends the client's bytes itself.
//!
//! # 3proxy's behaviour kept
//!
//! - The target is the SNI host and port `-P` (default 443). With `-h`
//!   ([`ProxyConfig::default_target`]) the target is always the `-h` host: the SNI still
//!   names the host for the ACL and the log. Without SNI (or, at check level 0, without
//!   TLS) the `-h` host is used; without `-h` the request fails with code 100.
//! - Check level (`-c`): 0 lets anything through (a client that is not TLS, sends a broken
//!   hello, times out or closes is sent to the `-h` host); 1 requires a ClientHello; 2
//!   also requires a ServerHello as the server's first message. Levels 3 and 4 (certificate
//!   checks, codes 370-375) are refused by [`CheckLevel::from_number`].
//! - `%T` is `TLSv1.3 example.org h2`: the version (`NONEv0.0` without TLS, `SSLv3.0`),
//!   the SNI host (or the `-h` host, or `-`) and the first ALPN protocol (or `-`). The
//!   version is the client's preferred one (first non-GREASE `supported_versions` entry;
//!   3proxy takes the first entry even if GREASE), and at level 2 the server's choice.
//!
//! # Chosen where 3proxy does nothing
//!
//! 3proxy closes a refused connection without a word. This machine sends a fatal TLS alert
//! to a client that sent a valid ClientHello: `unrecognized_name` (112) for code 100 (the
//! host does not resolve), `access_denied` (49) for codes 1-10 (ACL, auth, limits),
//! `internal_error` (80) otherwise. A malformed hello, a client that is not TLS and a failed
//! ServerHello check get nothing, as in 3proxy. Unlike 3proxy, a hello may span several
//! records, and a ServerHello may share its record with the next messages.
//!
//! Not implemented: the `-X` STARTTLS front modes (codes 361-364), `-s` hello splitting
//! (the driver can do it with [`ClientHello::sni_offset`]; code 310 is
//! [`HELLO_FORWARD_FAILED`]), and certificate checks.

use crate::hello::{
    parse_client_hello, parse_server_hello, ClientHello, Field, ServerHello, SniError, TlsError,
    MAX_HELLO_LEN,
};
use core::fmt;
use core::time::Duration;
use std::time::Instant;
use triproxy_wire::{DomainName, LogCode, TargetAddr, Transmit};

/// 3proxy's code when sending the first part of a split (`-s`) hello to the server fails.
pub const HELLO_FORWARD_FAILED: LogCode = LogCode(310);

/// How much `tlspr` checks (3proxy's `-c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum CheckLevel {
    /// `-c0` (the default): anything is relayed; a client that is not TLS goes to the
    /// default target.
    #[default]
    AllowNonTls,
    /// `-c1` (and `-c` alone): the client must send a valid ClientHello.
    RequireClientHello,
    /// `-c2`: also, the server's first message must be a ServerHello.
    RequireServerHello,
}

impl CheckLevel {
    /// The level of `-cN`. 3proxy reads `-c` without a digit as 1 (the caller passes 1).
    ///
    /// ```
    /// use triproxy_tls::proxy::{CheckLevel, ConfigError};
    /// assert_eq!(CheckLevel::from_number(2), Ok(CheckLevel::RequireServerHello));
    /// assert_eq!(CheckLevel::from_number(3), Err(ConfigError::CertificateChecks { level: 3 }));
    /// ```
    pub fn from_number(level: u32) -> Result<Self, ConfigError> {
        match level {
            0 => Ok(CheckLevel::AllowNonTls),
            1 => Ok(CheckLevel::RequireClientHello),
            2 => Ok(CheckLevel::RequireServerHello),
            level => Err(ConfigError::CertificateChecks { level }),
        }
    }

    /// The number 3proxy uses.
    pub fn number(self) -> u32 {
        match self {
            CheckLevel::AllowNonTls => 0,
            CheckLevel::RequireClientHello => 1,
            CheckLevel::RequireServerHello => 2,
        }
    }
}

/// A `tlspr` option this crate cannot honour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// `-c3` and up: 3proxy then checks that the server sent a certificate (3) and that the
    /// client did too (4), by reading the TLS 1.2 handshake in the clear (codes 370-375).
    /// Not supported: it cannot work with TLS 1.3, where certificates are encrypted.
    CertificateChecks {
        /// The level asked for.
        level: u32,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::CertificateChecks { level } => write!(
                f,
                "tlspr -c{level}: certificate checks are not supported (levels 0, 1 and 2 are)"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// How a [`TlsProxy`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Port of the target named by the SNI (`-P`, default 443).
    pub port: u16,
    /// What to check (`-c`).
    pub check: CheckLevel,
    /// `-h`: the target of every connection when set (the SNI then only names the host for
    /// the ACL and log), and of connections without SNI. 3proxy's port for a `-h` host
    /// without one is the service's own default port (1443); the config reader decides.
    pub default_target: Option<TargetAddr>,
    /// How long the client may take between two reads before its hello is complete, and
    /// the server before its ServerHello is (3proxy's `STRING_S` timeout, 30 s by default).
    pub hello_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            port: 443,
            check: CheckLevel::AllowNonTls,
            default_target: None,
            hello_timeout: Duration::from_secs(30),
        }
    }
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where to connect.
    pub target: TargetAddr,
    /// The SNI host name: the destination host the ACL checks, even when
    /// [`ProxyConfig::default_target`] fixes the target.
    pub sni: Option<DomainName>,
    /// The client's hello, if it sent a valid one (at check level 0 it may not have).
    pub hello: Option<ClientHello>,
    /// 3proxy's `%T` text as known now (see [`TlsProxy::log_text`] for the final one).
    pub log_text: String,
}

/// Something the driver must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Connect, then answer with [`TlsProxy::handle_connected`] or
    /// [`TlsProxy::handle_refused`].
    Request(Request),
}

/// Why a `tlspr` connection failed, with 3proxy's log code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The client's hello is malformed, or the client is not TLS (check level 1 and 2).
    ClientHello(TlsError),
    /// The client closed before its hello was complete.
    ClientClosed {
        /// Bytes it had sent.
        received: usize,
    },
    /// The client went quiet before its hello was complete.
    ClientTimeout {
        /// Bytes it had sent.
        received: usize,
    },
    /// No target: no SNI (or no TLS at level 0, with the hello's error) and no `-h` host.
    NoTarget {
        /// Why the hello gave no host, if it was not simply absent from a valid hello.
        hello_error: Option<TlsError>,
    },
    /// The server's first message is not a valid ServerHello (check level 2).
    ServerHello(TlsError),
    /// The server closed before its ServerHello was complete.
    ServerClosed {
        /// Bytes it had sent.
        received: usize,
    },
    /// The server went quiet before its ServerHello was complete.
    ServerTimeout {
        /// Bytes it had sent.
        received: usize,
    },
}

/// 3proxy's code offset for a hello error: `(record level?, n)`, as its `tlstobuf*`
/// (record) and `parsehello` (message) return them.
fn hello_offset(e: &TlsError) -> (bool, u16) {
    match e {
        TlsError::NotTls { .. }
        | TlsError::BadRecordVersion { .. }
        | TlsError::BadRecord { .. }
        | TlsError::BadRecordLength { .. } => (true, 3),
        TlsError::TooLarge { .. } => (true, 4),
        TlsError::UnexpectedMessage { .. } => (false, 2),
        TlsError::TrailingData { .. } => (false, 4),
        TlsError::BadVersion { .. } => (false, 5),
        TlsError::Malformed { field } => (
            false,
            match field {
                Field::Random => 1,
                Field::SessionId => 6,
                Field::CipherSuites => 7,
                Field::Compression => 8,
                Field::ServerName => 12,
                Field::Alpn => 16,
                _ => 10,
            },
        ),
        TlsError::DuplicateExtension { .. } => (false, 10),
        TlsError::BadSni(SniError::TooLong { .. }) => (false, 15),
        TlsError::BadSni(_) => (false, 14),
    }
}

impl Error {
    /// 3proxy's log code. Client side: 302 (closed or quiet before a record header), 303
    /// (not TLS), 304 (too large), 305 (closed or quiet inside the hello), 311-327 (a
    /// malformed ClientHello: 312 not a ClientHello, 314 extra data, 315 version, 316-318
    /// session id / cipher suites / compression, 320 extension list, 322 server_name, 324
    /// / 325 bad / long host name, 326 ALPN); 100 no target. Server side (level 2) the same
    /// shifted by 40: 342-346, 351-367.
    ///
    /// 3proxy computes these as a base minus its parsers' return values; for a first
    /// record of another content type (an HTTP request after `-c1`, an alert from a
    /// server) its code is the base minus the record's length, not a stable number: here
    /// it is 303 (343), as for a record version that is not 3.x.
    ///
    /// ```
    /// use triproxy_tls::proxy::Error;
    /// assert_eq!(Error::ClientClosed { received: 0 }.log_code().get(), 302);
    /// ```
    pub fn log_code(&self) -> LogCode {
        let shifted = |e: &TlsError, base: u16| {
            let (record, n) = hello_offset(e);
            LogCode(if record { base } else { base + 10 } + n)
        };
        let ended = |received: usize, base: u16| LogCode(base + if received < 5 { 2 } else { 5 });
        match self {
            Error::ClientHello(e) => shifted(e, 300),
            Error::ClientClosed { received } | Error::ClientTimeout { received } => {
                ended(*received, 300)
            }
            Error::NoTarget { .. } => LogCode::HOST_NOT_FOUND,
            Error::ServerHello(e) => shifted(e, 340),
            Error::ServerClosed { received } | Error::ServerTimeout { received } => {
                ended(*received, 340)
            }
        }
    }

    /// A readable reason without values, for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ClientHello(e) if e.is_not_tls() => "client does not speak TLS",
            Error::ClientHello(_) => "malformed ClientHello",
            Error::ClientClosed { .. } => "client closed before its ClientHello was complete",
            Error::ClientTimeout { .. } => "client timed out before its ClientHello was complete",
            Error::NoTarget { .. } => "no SNI and no default host (-h)",
            Error::ServerHello(_) => "server did not answer with a ServerHello",
            Error::ServerClosed { .. } => "server closed before its ServerHello was complete",
            Error::ServerTimeout { .. } => "server timed out before its ServerHello was complete",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ClientHello(e) | Error::ServerHello(e) => write!(f, "{}: {e}", self.reason()),
            Error::NoTarget {
                hello_error: Some(e),
            } => write!(f, "{} ({e})", self.reason()),
            Error::ClientClosed { received }
            | Error::ClientTimeout { received }
            | Error::ServerClosed { received }
            | Error::ServerTimeout { received } => {
                write!(f, "{} ({received} bytes received)", self.reason())
            }
            Error::NoTarget { hello_error: None } => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for Error {}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Peeking at the client's bytes for its ClientHello.
    ReadingHello,
    /// [`Event::Request`] reported; waiting for connected or refused.
    AwaitingDecision,
    /// Check level 2: connected; peeking at the server's bytes for its ServerHello.
    AwaitingServerHello,
    /// Done: the driver relays (client's buffered bytes first).
    Established,
    /// Failed or refused: the driver flushes transmits and closes.
    Closed,
}

/// TLS alert descriptions used on refusal (RFC 8446 section 6).
const ALERT_ACCESS_DENIED: u8 = 49;
const ALERT_INTERNAL_ERROR: u8 = 80;
const ALERT_UNRECOGNIZED_NAME: u8 = 112;

/// The `tlspr` machine for one client connection. See the [module documentation](self).
#[derive(Debug)]
pub struct TlsProxy {
    config: ProxyConfig,
    state: State,
    deadline: Option<Instant>,
    /// Client bytes offered last time.
    seen: usize,
    /// Server bytes offered last time.
    upstream_seen: usize,
    /// The first three client bytes (for the record version in the log when the hello
    /// does not parse).
    prefix: [u8; 3],
    hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    event: Option<Event>,
    transmit: Option<Transmit>,
}

impl TlsProxy {
    /// A machine for a connection accepted at `now`.
    pub fn new(now: Instant, config: ProxyConfig) -> Self {
        TlsProxy {
            deadline: now.checked_add(config.hello_timeout),
            config,
            state: State::ReadingHello,
            seen: 0,
            upstream_seen: 0,
            prefix: [0; 3],
            hello: None,
            server_hello: None,
            event: None,
            transmit: None,
        }
    }

    /// The buffer the driver needs per direction to hold a whole hello: [`MAX_HELLO_LEN`].
    pub const fn max_peek(&self) -> usize {
        MAX_HELLO_LEN
    }

    /// Peeks at everything the client sent so far (the driver keeps it all and offers it
    /// again with new bytes appended). Always consumes 0 bytes: the hello is forwarded
    /// unchanged. When the hello is complete, [`Event::Request`] is ready; at check level
    /// 0 a client that is not TLS or sends a broken hello is routed to the default target.
    /// Outside [`State::ReadingHello`] it does nothing.
    ///
    /// On `Err` the state is [`State::Closed`]; nothing is sent to the client.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        if self.state != State::ReadingHello {
            return Ok(0);
        }
        for (slot, &b) in self.prefix.iter_mut().zip(input) {
            *slot = b;
        }
        if input.len() > self.seen {
            self.seen = input.len();
            self.deadline = now.checked_add(self.config.hello_timeout);
        }
        match parse_client_hello(input) {
            Ok(status) => {
                if let Some((hello, _)) = status.complete() {
                    self.on_hello(hello)?;
                }
                Ok(0)
            }
            Err(e) if self.config.check == CheckLevel::AllowNonTls => {
                self.fallback(Some(e))?;
                Ok(0)
            }
            Err(e) => {
                self.state = State::Closed;
                Err(Error::ClientHello(e))
            }
        }
    }

    /// The next bytes for the client (a TLS alert after a refusal).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmit.take()
    }

    /// The next decision to make.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    /// Bytes for the server: always `None`, the driver sends the client's buffered bytes
    /// itself once connected.
    pub fn poll_upstream_transmit(&mut self) -> Option<Transmit> {
        None
    }

    /// When the client (while the hello is read) or the server (while the ServerHello is
    /// read) must have sent more; `None` in other states. Moves forward with each read
    /// that brings new bytes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::ReadingHello | State::AwaitingServerHello => self.deadline,
            _ => None,
        }
    }

    /// If the deadline has passed: while reading the hello, at check level 0 the client
    /// goes to the default target ([`Event::Request`], or `Some(Error::NoTarget)`), at
    /// higher levels `Some(ClientTimeout)`; while reading the ServerHello,
    /// `Some(ServerTimeout)`. Else nothing happens and `None` is returned.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline => {}
            _ => return None,
        }
        match self.state {
            State::ReadingHello => self.client_gone(Error::ClientTimeout {
                received: self.seen,
            }),
            State::AwaitingServerHello => {
                self.state = State::Closed;
                Some(Error::ServerTimeout {
                    received: self.upstream_seen,
                })
            }
            _ => None,
        }
    }

    /// The client closed its side. While reading the hello: as a timeout
    /// ([`TlsProxy::handle_timeout`]) but `ClientClosed`. While a decision or the
    /// ServerHello is pending the machine closes and returns `None`; afterwards nothing.
    pub fn handle_eof(&mut self) -> Option<Error> {
        match self.state {
            State::ReadingHello => self.client_gone(Error::ClientClosed {
                received: self.seen,
            }),
            State::AwaitingDecision | State::AwaitingServerHello => {
                self.state = State::Closed;
                None
            }
            State::Established | State::Closed => None,
        }
    }

    /// The connection to the target is up. Check levels 0 and 1: established. Level 2: the
    /// driver sends the client's bytes and feeds the server's to
    /// [`TlsProxy::handle_upstream_input`]; the deadline starts at `now`. Does nothing
    /// outside [`State::AwaitingDecision`].
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state != State::AwaitingDecision {
            return;
        }
        if self.config.check == CheckLevel::RequireServerHello {
            self.state = State::AwaitingServerHello;
            self.deadline = now.checked_add(self.config.hello_timeout);
        } else {
            self.state = State::Established;
        }
    }

    /// The request is refused, or connecting failed, with this 3proxy log code. A client
    /// that sent a valid ClientHello gets a fatal alert (see the module documentation);
    /// the state is [`State::Closed`]. Works in [`State::AwaitingDecision`] and
    /// [`State::AwaitingServerHello`], does nothing elsewhere.
    pub fn handle_refused(&mut self, code: LogCode) {
        if !matches!(
            self.state,
            State::AwaitingDecision | State::AwaitingServerHello
        ) {
            return;
        }
        self.state = State::Closed;
        if self.hello.is_some() {
            let description = match code.get() {
                100 => ALERT_UNRECOGNIZED_NAME,
                1..=10 => ALERT_ACCESS_DENIED,
                _ => ALERT_INTERNAL_ERROR,
            };
            self.transmit = Transmit::from_slice(&alert(description)).ok();
        }
    }

    /// Check level 2: peeks at everything the server sent so far (kept and re-offered by
    /// the driver like the client's bytes). Always consumes 0. Once a whole ServerHello is
    /// there the machine is established; on `Err` it is closed. Does nothing outside
    /// [`State::AwaitingServerHello`].
    pub fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        if self.state != State::AwaitingServerHello {
            return Ok(0);
        }
        if input.len() > self.upstream_seen {
            self.upstream_seen = input.len();
            self.deadline = now.checked_add(self.config.hello_timeout);
        }
        match parse_server_hello(input) {
            Ok(status) => {
                if let Some((hello, _)) = status.complete() {
                    self.server_hello = Some(hello);
                    self.state = State::Established;
                }
                Ok(0)
            }
            Err(e) => {
                self.state = State::Closed;
                Err(Error::ServerHello(e))
            }
        }
    }

    /// The server closed before its ServerHello was complete (level 2): closed, and the
    /// error; `None` in other states.
    pub fn handle_upstream_eof(&mut self) -> Option<Error> {
        if self.state != State::AwaitingServerHello {
            return None;
        }
        self.state = State::Closed;
        Some(Error::ServerClosed {
            received: self.upstream_seen,
        })
    }

    /// Whether the driver may relay.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Where the machine is.
    pub fn state(&self) -> State {
        self.state
    }

    /// The client's hello, once parsed.
    pub fn client_hello(&self) -> Option<&ClientHello> {
        self.hello.as_ref()
    }

    /// The server's hello, once parsed (level 2).
    pub fn server_hello(&self) -> Option<&ServerHello> {
        self.server_hello.as_ref()
    }

    /// 3proxy's `%T` text for the log line: `VERSION HOST ALPN`, as `TLSv1.3 example.org
    /// h2`, `TLSv1.2 - -` or `NONEv0.0 - -`. Valid in any state, failures included.
    pub fn log_text(&self) -> String {
        // 3proxy keeps the minor version byte: -1 none, 0 SSL 3.0, n TLS 1.(n-1).
        let minor = match (&self.server_hello, &self.hello) {
            (Some(s), _) => Some(s.version().0 as u8),
            (None, Some(c)) => Some(c.preferred_version().0 as u8),
            (None, None) => match self.prefix {
                [22, 3, minor] if self.seen >= 3 => Some(minor),
                _ => None,
            },
        };
        let version = match minor {
            None => "NONEv0.0".to_string(),
            Some(0) => "SSLv3.0".to_string(),
            Some(n) => format!("TLSv1.{}", n - 1),
        };
        let host = match (
            self.hello.as_ref().and_then(|h| h.sni.as_ref()),
            &self.config.default_target,
        ) {
            (Some(sni), _) => sni.to_string(),
            (None, Some(TargetAddr::Domain(name, _))) => name.to_string(),
            (None, Some(TargetAddr::Ip(sa))) => sa.ip().to_string(),
            (None, None) => "-".to_string(),
        };
        let alpn = self
            .server_hello
            .as_ref()
            .and_then(|s| s.alpn.first())
            .or_else(|| self.hello.as_ref().and_then(|h| h.alpn.first()));
        let proto = alpn.map_or_else(|| "-".to_string(), escape);
        format!("{version} {host} {proto}")
    }

    fn on_hello(&mut self, hello: ClientHello) -> Result<(), Error> {
        let sni = hello.sni.clone();
        let target = match (&self.config.default_target, &sni) {
            (Some(t), _) => t.clone(),
            (None, Some(name)) => TargetAddr::Domain(name.clone(), self.config.port),
            (None, None) => {
                self.hello = Some(hello);
                self.state = State::Closed;
                return Err(Error::NoTarget { hello_error: None });
            }
        };
        self.hello = Some(hello);
        self.request(target, sni);
        Ok(())
    }

    /// Level 0 without a usable hello: the default target, if any.
    fn fallback(&mut self, hello_error: Option<TlsError>) -> Result<(), Error> {
        match self.config.default_target.clone() {
            Some(target) => {
                self.request(target, None);
                Ok(())
            }
            None => {
                self.state = State::Closed;
                Err(Error::NoTarget { hello_error })
            }
        }
    }

    fn client_gone(&mut self, error: Error) -> Option<Error> {
        if self.config.check == CheckLevel::AllowNonTls {
            return self.fallback(None).err();
        }
        self.state = State::Closed;
        Some(error)
    }

    fn request(&mut self, target: TargetAddr, sni: Option<DomainName>) {
        self.state = State::AwaitingDecision;
        self.event = Some(Event::Request(Request {
            target,
            sni,
            hello: self.hello.clone(),
            log_text: self.log_text(),
        }));
    }
}

/// A fatal alert record (RFC 8446 sections 5.1 and 6).
fn alert(description: u8) -> [u8; 7] {
    [21, 3, 3, 0, 2, 2, description]
}

/// Printable ASCII as is, other bytes as `\xNN` (a log line must stay one line).
fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
