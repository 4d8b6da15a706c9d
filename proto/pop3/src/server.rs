//! The machine a POP3 proxy runs for one client (3proxy `pop3p`): greet, answer what the
//! proxy answers itself until `USER user@host`, report the request, then log in to the
//! server with `USER user` and stop.
//!
//! The machine does not buffer input. [`Server::handle_input`] and
//! [`Server::handle_upstream_input`] return how many bytes they consumed; the driver keeps
//! the rest and presents it again, with new bytes behind it, on the next call. Once the
//! machine [is established](Server::is_established) it consumes nothing more, so what the
//! driver still holds from either side (a pipelined `PASS`, the server's answer to `USER`)
//! is relay data, to be delivered as it is. The driver's read buffer for each side must be
//! able to hold one whole line: [`MAX_LINE_LEN`] bytes from the client,
//! [`MAX_SERVER_LINE_LEN`] from the server.
//!
//! It is not a policy (it decides no access) and not a relay.
//!
//! # Driver contract
//!
//! 1. [`Server::new`]`(now, config)`, then drain [`Server::poll_transmit`] (the greeting).
//! 2. Client bytes: [`Server::handle_input`]`(now, &held)`, drop the `n` consumed bytes
//!    from the front of `held`, drain [`Server::poll_transmit`] and [`Server::poll_event`].
//!    If something was consumed and bytes remain, call again (the machine pauses while
//!    [`MAX_PENDING_OUTPUT`] bytes of answers wait). End of stream: [`Server::handle_eof`].
//! 3. [`Event::Request`]: auth, ACL, connect; then [`Server::handle_refused`]`(code)` or
//!    [`Server::handle_connected`]`(now)`. [`Event::StartTls`]: read the server name from
//!    the held client bytes (a ClientHello; keep them), connect, `handle_connected(now)`.
//! 4. Server bytes: [`Server::handle_upstream_input`]`(now, &held)`, drop the consumed
//!    bytes, write [`Server::poll_upstream_transmit`] to the server, drain
//!    [`Server::poll_transmit`]. End of stream: [`Server::handle_upstream_eof`].
//! 5. After every call, arm a timer at [`Server::poll_timeout`]; when it is due,
//!    [`Server::handle_timeout`]`(now)`.
//! 6. Any `Err` (and `Some` error): flush [`Server::poll_transmit`], log
//!    [`Error::log_code`], close both sides. [`Server::is_closed`] after QUIT
//!    ([`Server::outcome`] is `Some(0)`) or a refusal: flush and close.
//! 7. [`Server::is_established`]: write what [`Server::poll_upstream_transmit`] still
//!    has, then relay: the held client bytes to the server, the held server bytes to the
//!    client, then everything else, both ways.

use crate::error::Error;
use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;
use triproxy_wire::line::{line, starts_with_ci, Line};
use triproxy_wire::login::{parse_login, ProxyCredentials};
use triproxy_wire::{LogCode, TargetAddr};

/// The hard cap on a client line, CR LF included. RFC 1939 allows 255 bytes for a command;
/// `USER proxyuser:proxypass:user@host:port` needs more, so the cap is 512 (3proxy reads
/// 310 bytes and cuts the rest into a next line).
pub const MAX_LINE_LEN: usize = 512;

/// The hard cap on a server line, CR LF included (RFC 2449 allows 512-byte responses).
pub const MAX_SERVER_LINE_LEN: usize = 1024;

/// While this many bytes of answers wait for [`Server::poll_transmit`], client commands are
/// not read (a client that never reads cannot grow the queue).
pub const MAX_PENDING_OUTPUT: usize = 4096;

/// The greeting the proxy sends. It starts with `+OK Proxy` like 3proxy's, so that either
/// proxy refuses to log in to the other or to itself (a loop).
pub const GREETING: &[u8] = b"+OK Proxy triproxy POP3 ready\r\n";

/// What the proxy answers to `STLS` before the TLS handshake.
pub const STLS_ANSWER: &[u8] = b"+OK Begin TLS negotiation\r\n";

/// A TLS alert (fatal, handshake failure) sent when STLS towards the server fails after the
/// client started TLS, as 3proxy's `tlspr` does.
pub const TLS_HANDSHAKE_FAILURE: &[u8] = b"\x15\x03\x01\x00\x02\x02\x28";

/// How a [`Server`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to log in when the USER argument names no host (3proxy `-hHOST[:PORT]`).
    pub default_target: Option<TargetAddr>,
    /// Whether STLS is advertised in CAPA and handled (3proxy `-x` turns it off).
    pub starttls: bool,
    /// Separator between user and host; the last one counts (3proxy `delimchar`, `@`).
    pub delimiter: u8,
    /// Port used when the host has none (110).
    pub default_port: u16,
    /// Cap on a client line, CR LF included; values above [`MAX_LINE_LEN`] (or under 16)
    /// are clamped.
    pub max_line: usize,
    /// Time the client has for each line before USER (3proxy `STRING_S`, 30 s).
    pub client_timeout: Duration,
    /// Time the server has for each line of its answers (3proxy `STRING_L`, 60 s).
    pub server_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_target: None,
            starttls: true,
            delimiter: b'@',
            default_port: 110,
            max_line: MAX_LINE_LEN,
            client_timeout: Duration::from_secs(30),
            server_timeout: Duration::from_secs(60),
        }
    }
}

/// What the client asked for with `USER [proxyuser:proxypass:]user[@host[:port]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The POP3 server to connect to.
    pub target: TargetAddr,
    /// The user name to log in with on the server (sent as `USER user`).
    pub user: Vec<u8>,
    /// Credentials for the proxy, from the `proxyuser:proxypass:user` form.
    pub proxy: Option<ProxyCredentials>,
    /// What 3proxy logs as `%T`: `user@host`, with `:port` when it is not the default.
    pub log_text: String,
}

/// Something the driver must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Connect to `request.target` (after auth and ACL) and answer with
    /// [`Server::handle_connected`] or [`Server::handle_refused`].
    Request(Request),
    /// The client sent STLS and was told to begin TLS: the bytes it sends next (still with
    /// the driver, not consumed) are a TLS ClientHello. As 3proxy, the driver takes the
    /// target from its server name (SNI) and `port` (or uses `default_target`), connects,
    /// then calls [`Server::handle_connected`]: the machine then runs STLS with the server,
    /// after which the ClientHello and the rest are relayed as they are.
    StartTls {
        /// Port for the name from the ClientHello: the default target's, else 110.
        port: u16,
        /// The configured default target, if any.
        default_target: Option<TargetAddr>,
    },
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Reading client commands until USER (or STLS).
    Command,
    /// An [`Event`] was reported; waiting for connected or refused.
    AwaitingDecision,
    /// Connected; waiting for the server's greeting.
    ServerGreeting,
    /// STLS towards the server: waiting for the end of its CAPA answer.
    StartTlsCapa,
    /// STLS towards the server: waiting for its answer to STLS.
    StartTlsReply,
    /// Done: the driver relays both ways. Nothing more is consumed.
    Established,
    /// Failed, refused or QUIT: the driver flushes [`Server::poll_transmit`] and closes.
    Closed,
}

/// One POP3 proxy session. See the [module documentation](self).
#[derive(Debug)]
pub struct Server {
    config: Config,
    state: State,
    tls: bool,
    deadline: Option<Instant>,
    to_client: VecDeque<Vec<u8>>,
    to_client_len: usize,
    to_server: VecDeque<Vec<u8>>,
    event: Option<Event>,
    user: Vec<u8>,
    stls_offered: bool,
    outcome: Option<u16>,
}

impl Server {
    /// A machine for a connection accepted at `now`; the greeting is queued.
    pub fn new(now: Instant, mut config: Config) -> Self {
        config.max_line = config.max_line.clamp(16, MAX_LINE_LEN);
        let mut s = Server {
            deadline: now.checked_add(config.client_timeout),
            config,
            state: State::Command,
            tls: false,
            to_client: VecDeque::new(),
            to_client_len: 0,
            to_server: VecDeque::new(),
            event: None,
            user: Vec::new(),
            stls_offered: false,
            outcome: None,
        };
        s.send(GREETING);
        s
    }

    /// Where the machine is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the relay may start: the driver writes [`Server::poll_upstream_transmit`],
    /// then relays what it holds from either side and everything after.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the session is over without a relay (error, refusal, QUIT).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The log code of a session the machine ended by itself without error: `Some(0)` after
    /// QUIT. `None` otherwise.
    pub fn outcome(&self) -> Option<u16> {
        self.outcome
    }

    /// Client bytes. Consumes whole lines while reading commands (several if several are
    /// there, unless [`MAX_PENDING_OUTPUT`] bytes of answers wait: then call again after
    /// draining), and nothing in any other state. A strict prefix of a line consumes 0 and
    /// is not an error. On error the answer (`-ERR ...`) is queued and the machine is
    /// closed.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while self.state == State::Command && self.to_client_len < MAX_PENDING_OUTPUT {
            let rest = input.get(used..).unwrap_or_default();
            match line(rest, self.config.max_line) {
                Line::Partial => break,
                Line::TooLong => {
                    return Err(self.fail(Error::LineTooLong {
                        limit: self.config.max_line,
                    }))
                }
                Line::Complete { text, consumed } => {
                    used += consumed;
                    self.deadline = now.checked_add(self.config.client_timeout);
                    self.command(text)?;
                }
            }
        }
        Ok(used)
    }

    fn command(&mut self, text: &[u8]) -> Result<(), Error> {
        if starts_with_ci(text, b"USER") {
            let arg = match text.get(4..) {
                Some([b' ', arg @ ..]) if !arg.is_empty() => arg,
                _ => return Err(self.fail(Error::NotUser)),
            };
            let login = parse_login(
                arg,
                self.config.delimiter,
                self.config.default_target.as_ref(),
                self.config.default_port,
            )
            .map_err(|e| self.fail(Error::BadUser(e)))?;
            self.user = login.user.clone();
            self.state = State::AwaitingDecision;
            self.event = Some(Event::Request(Request {
                target: login.target,
                user: login.user,
                proxy: login.proxy,
                log_text: login.log_text,
            }));
            return Ok(());
        }
        if text.len() < 3 {
            return Err(self.fail(Error::EmptyCommand));
        }
        if starts_with_ci(text, b"QUIT") {
            self.send(b"+OK\r\n");
            self.state = State::Closed;
            self.outcome = Some(0);
        } else if starts_with_ci(text, b"CAPA") {
            if self.config.starttls {
                self.send(b"+OK Capability list follows\r\nUSER\r\nSTLS\r\n.\r\n");
            } else {
                self.send(b"+OK Capability list follows\r\nUSER\r\n.\r\n");
            }
        } else if starts_with_ci(text, b"STLS") && self.config.starttls {
            self.send(STLS_ANSWER);
            self.tls = true;
            self.state = State::AwaitingDecision;
            self.event = Some(Event::StartTls {
                port: self
                    .config
                    .default_target
                    .as_ref()
                    .map_or(self.config.default_port, TargetAddr::port),
                default_target: self.config.default_target.clone(),
            });
        } else {
            self.send(b"-ERR need USER first\r\n");
        }
        Ok(())
    }

    /// The client closed its side. Before the request this ends the machine with
    /// [`Error::ClientClosed`] (612); while a decision or the server is awaited the machine
    /// is closed and `None` is returned (the driver logs its own reason); Established and
    /// Closed are left as they are.
    pub fn handle_eof(&mut self) -> Option<Error> {
        match self.state {
            State::Command => {
                self.state = State::Closed;
                Some(Error::ClientClosed)
            }
            State::Established | State::Closed => None,
            _ => {
                self.state = State::Closed;
                None
            }
        }
    }

    /// The next bytes for the client.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let out = self.to_client.pop_front()?;
        self.to_client_len -= out.len();
        Some(out)
    }

    /// The next bytes for the server (after [`Server::handle_connected`]).
    pub fn poll_upstream_transmit(&mut self) -> Option<Vec<u8>> {
        self.to_server.pop_front()
    }

    /// The next decision to make.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.event.take()
    }

    /// The driver will not connect (auth, ACL, resolution or connection failure, logged
    /// with `code`): `-ERR proxy error` is queued (nothing after STLS, the client speaks
    /// TLS) and the machine is closed. Ignored once established or closed.
    pub fn handle_refused(&mut self, code: LogCode) {
        let _ = code;
        if matches!(self.state, State::Established | State::Closed) {
            return;
        }
        if !self.tls {
            self.send(b"-ERR proxy error\r\n");
        }
        self.state = State::Closed;
    }

    /// The connection to the server is up, at `now`: the machine waits for its greeting.
    /// Ignored unless a decision is awaited.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == State::AwaitingDecision {
            self.state = State::ServerGreeting;
            self.deadline = now.checked_add(self.config.server_timeout);
        }
    }

    /// Server bytes: consumes whole lines while the greeting (and, after STLS, the CAPA
    /// and STLS answers) are awaited, nothing in other states. After the greeting,
    /// `USER user` is queued for [`Server::poll_upstream_transmit`] and the machine is
    /// established; bytes after the greeting are the server's answer to USER, for the
    /// client. On error the client's answer is queued and the machine is closed.
    pub fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while matches!(
            self.state,
            State::ServerGreeting | State::StartTlsCapa | State::StartTlsReply
        ) {
            let rest = input.get(used..).unwrap_or_default();
            match line(rest, MAX_SERVER_LINE_LEN) {
                Line::Partial => break,
                Line::TooLong => {
                    let e = match self.state {
                        State::ServerGreeting if !self.tls => Error::ServerLineTooLong {
                            limit: MAX_SERVER_LINE_LEN,
                        },
                        State::ServerGreeting => Error::StartTlsGreeting,
                        _ => Error::StartTlsExchange,
                    };
                    return Err(self.fail(e));
                }
                Line::Complete { text, consumed } => {
                    used += consumed;
                    self.deadline = now.checked_add(self.config.server_timeout);
                    self.server_line(text)?;
                }
            }
        }
        Ok(used)
    }

    fn server_line(&mut self, text: &[u8]) -> Result<(), Error> {
        match self.state {
            State::ServerGreeting if self.tls => {
                if !starts_with_ci(text, b"+OK") {
                    return Err(self.fail(Error::StartTlsGreeting));
                }
                self.to_server.push_back(b"CAPA\r\n".to_vec());
                self.state = State::StartTlsCapa;
            }
            State::ServerGreeting => {
                if !starts_with_ci(text, b"+OK") {
                    return Err(self.fail(Error::BadGreeting));
                }
                if text.get(4..).is_some_and(|t| starts_with_ci(t, b"PROXY")) {
                    return Err(self.fail(Error::ProxyLoop));
                }
                let mut user = Vec::with_capacity(self.user.len() + 7);
                user.extend_from_slice(b"USER ");
                user.extend_from_slice(&self.user);
                user.extend_from_slice(b"\r\n");
                self.to_server.push_back(user);
                self.establish();
            }
            State::StartTlsCapa => {
                if text.first() == Some(&b'.') {
                    if !self.stls_offered {
                        return Err(self.fail(Error::StartTlsRefused));
                    }
                    self.to_server.push_back(b"STLS\r\n".to_vec());
                    self.state = State::StartTlsReply;
                } else if starts_with_ci(text, b"-ERR") {
                    return Err(self.fail(Error::StartTlsExchange));
                } else if text
                    .split(|&b| b == b' ')
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"STLS"))
                {
                    self.stls_offered = true;
                }
            }
            State::StartTlsReply => {
                if !starts_with_ci(text, b"+OK") {
                    return Err(self.fail(Error::StartTlsRefused));
                }
                self.establish();
            }
            _ => {}
        }
        Ok(())
    }

    /// The server closed before the machine was done with it: the error for its state
    /// (the client's answer is queued and the machine closed). Established and Closed
    /// machines are left as they are.
    pub fn handle_upstream_eof(&mut self) -> Error {
        let e = match self.state {
            State::ServerGreeting if self.tls => Error::StartTlsGreeting,
            State::StartTlsCapa | State::StartTlsReply => Error::StartTlsExchange,
            _ => Error::ServerClosed,
        };
        if matches!(self.state, State::Established | State::Closed) {
            return e;
        }
        self.fail(e)
    }

    /// The deadline of the line awaited from the client or the server; `None` while a
    /// decision is awaited and once established or closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Command | State::ServerGreeting | State::StartTlsCapa | State::StartTlsReply => {
                self.deadline
            }
            _ => None,
        }
    }

    /// If the deadline has passed: the error (612 for the client, 621 or 361/362 for the
    /// server), the client's answer queued, the machine closed, and no deadline after.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        let deadline = self.poll_timeout()?;
        if now < deadline {
            return None;
        }
        let e = match self.state {
            State::Command => Error::ClientTimeout,
            State::ServerGreeting if self.tls => Error::StartTlsGreeting,
            State::ServerGreeting => Error::ServerTimeout,
            _ => Error::StartTlsExchange,
        };
        Some(self.fail(e))
    }

    fn establish(&mut self) {
        self.state = State::Established;
        self.deadline = None;
    }

    fn send(&mut self, bytes: &[u8]) {
        self.to_client_len += bytes.len();
        self.to_client.push_back(bytes.to_vec());
    }

    /// Closes with `e`, queueing what the client is told: `-ERR ...` before STLS, a TLS
    /// alert after it when the STLS exchange with the server failed.
    fn fail(&mut self, e: Error) -> Error {
        if !matches!(e, Error::ClientClosed) {
            if !self.tls {
                self.send(b"-ERR proxy error\r\n");
            } else if matches!(
                e,
                Error::StartTlsGreeting | Error::StartTlsExchange | Error::StartTlsRefused
            ) {
                self.send(TLS_HANDSHAKE_FAILURE);
            }
        }
        self.state = State::Closed;
        self.deadline = None;
        e
    }
}
