//! The machine an IMAP proxy runs for one client (3proxy `imapp`): greet, answer what the
//! proxy answers itself until LOGIN or AUTHENTICATE with `user@host`, report the request,
//! then log in to the server under the client's tag with the real user name and stop.
//!
//! Before login the proxy answers CAPABILITY, NOOP, LOGOUT and (unless 3proxy's `-x`)
//! STARTTLS, and `tag BAD need LOGIN first` to anything else. It reads `LOGIN user pass`,
//! `AUTHENTICATE PLAIN` (with or without an initial response) and `AUTHENTICATE LOGIN`.
//! Towards the server it does what 3proxy does: check the `* OK` greeting, learn the
//! server's AUTH= capabilities (from the greeting, else with `zz CAPABILITY`), then log in
//! with AUTHENTICATE PLAIN if offered, else AUTHENTICATE LOGIN if offered, else LOGIN, all
//! under the client's tag; the server's tagged answer is relayed to the client as it is.
//!
//! The machine does not buffer input: [`Server::handle_input`] and
//! [`Server::handle_upstream_input`] return how many bytes they consumed and the driver
//! keeps the rest. Once [established](Server::is_established) nothing more is consumed, so
//! whatever the driver holds from either side (commands the client pipelined after its
//! login, the server's answer to it) is relay data. The driver's buffers need room for one
//! line: [`MAX_LINE_LEN`] from the client, [`MAX_SERVER_LINE_LEN`] from the server.
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
//!    [`Error::log_code`], close both sides. [`Server::is_closed`] after LOGOUT
//!    ([`Server::outcome`] is `Some(0)`) or a refusal: flush and close.
//! 7. [`Server::is_established`]: write what [`Server::poll_upstream_transmit`] still
//!    has, then relay: the held client bytes to the server, the held server bytes to the
//!    client, then everything else, both ways.

use crate::base64;
use crate::error::{BadCredentials, Error};
use crate::syntax::{self, ArgError};
use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;
use std::time::Instant;
use triproxy_wire::line::{line, starts_with_ci, Line};
use triproxy_wire::login::{parse_login, ProxyCredentials};
use triproxy_wire::{LogCode, TargetAddr};

/// The hard cap on a client line, CR LF included (3proxy reads 2038 bytes).
pub const MAX_LINE_LEN: usize = 2048;

/// The hard cap on a server line, CR LF included (greetings and capability lists of large
/// servers run to about 1 KiB; 3proxy reads 1023 bytes).
pub const MAX_SERVER_LINE_LEN: usize = 4096;

/// While this many bytes of answers wait for [`Server::poll_transmit`], client commands are
/// not read (a client that never reads cannot grow the queue).
pub const MAX_PENDING_OUTPUT: usize = 4096;

/// The text at the end of the proxy's greeting, which is 3proxy's. A server greeting that
/// ends with it is a proxy (3proxy or triproxy): logging in there would loop.
pub const GREETING_TEXT: &[u8] = b"IMAP4rev1 Proxy Ready";

/// A TLS alert (fatal, handshake failure) sent when STARTTLS towards the server fails after
/// the client started TLS, as 3proxy's `tlspr` does.
pub const TLS_HANDSHAKE_FAILURE: &[u8] = b"\x15\x03\x01\x00\x02\x02\x28";

/// How a [`Server`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to log in when the user name names no host (3proxy `-hHOST[:PORT]`).
    pub default_target: Option<TargetAddr>,
    /// Whether STARTTLS is advertised and handled (3proxy `-x` turns it off).
    pub starttls: bool,
    /// Separator between user and host; the last one counts (3proxy `delimchar`, `@`).
    pub delimiter: u8,
    /// Port used when the host has none (143).
    pub default_port: u16,
    /// Cap on a client line, CR LF included; values above [`MAX_LINE_LEN`] (or under 16)
    /// are clamped.
    pub max_line: usize,
    /// Time the client has for each line before its login (3proxy `STRING_S`, 30 s).
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
            default_port: 143,
            max_line: MAX_LINE_LEN,
            client_timeout: Duration::from_secs(30),
            server_timeout: Duration::from_secs(60),
        }
    }
}

/// How the client logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `tag LOGIN user password`.
    Login,
    /// `tag AUTHENTICATE PLAIN` (RFC 4616).
    Plain,
    /// `tag AUTHENTICATE LOGIN` (user name and password in two continuations).
    AuthLogin,
}

/// What the client asked for: its login with `[proxyuser:proxypass:]user[@host[:port]]` as
/// the user name.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The IMAP server to connect to.
    pub target: TargetAddr,
    /// The user name to log in with on the server.
    pub user: Vec<u8>,
    /// The password the client gave, passed on to the server. As 3proxy, a driver that
    /// authenticates proxy users takes it as the proxy password when
    /// [`Request::proxy`] gives none.
    pub password: Vec<u8>,
    /// Credentials for the proxy, from the `proxyuser:proxypass:user` form.
    pub proxy: Option<ProxyCredentials>,
    /// The client's tag of the login command (the server's answer carries it).
    pub tag: Vec<u8>,
    /// How the client logged in.
    pub method: Method,
    /// What 3proxy logs as `%T`: `user@host`, with `:port` when it is not the default.
    pub log_text: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("target", &self.target)
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"<hidden>")
            .field("proxy", &self.proxy)
            .field("tag", &String::from_utf8_lossy(&self.tag))
            .field("method", &self.method)
            .field("log_text", &self.log_text)
            .finish()
    }
}

/// Something the driver must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Connect to `request.target` (after auth and ACL) and answer with
    /// [`Server::handle_connected`] or [`Server::handle_refused`].
    Request(Request),
    /// The client sent STARTTLS and was told to begin TLS: the bytes it sends next (still
    /// with the driver, not consumed) are a TLS ClientHello. As 3proxy, the driver takes
    /// the target from its server name (SNI) and `port` (or uses `default_target`),
    /// connects, then calls [`Server::handle_connected`]: the machine then runs STARTTLS
    /// with the server, after which the ClientHello and the rest are relayed as they are.
    StartTls {
        /// Port for the name from the ClientHello: the default target's, else 143.
        port: u16,
        /// The configured default target, if any.
        default_target: Option<TargetAddr>,
    },
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Reading client commands until a login (or STARTTLS).
    Command,
    /// AUTHENTICATE PLAIN: waiting for the client's base64 message.
    PlainResponse,
    /// AUTHENTICATE LOGIN: waiting for the client's base64 user name.
    LoginUser,
    /// AUTHENTICATE LOGIN: waiting for the client's base64 password.
    LoginPassword,
    /// An [`Event`] was reported; waiting for connected or refused.
    AwaitingDecision,
    /// Connected; waiting for the server's greeting.
    ServerGreeting,
    /// Waiting for the server's answer to `zz CAPABILITY`.
    ServerCapability,
    /// AUTHENTICATE LOGIN towards the server: waiting for its first `+`.
    ServerLoginUser,
    /// AUTHENTICATE LOGIN towards the server: waiting for its second `+`.
    ServerLoginPassword,
    /// STARTTLS towards the server: waiting for its answer to STARTTLS.
    StartTlsReply,
    /// Done: the driver relays both ways. Nothing more is consumed.
    Established,
    /// Failed, refused or LOGOUT: the driver flushes [`Server::poll_transmit`] and closes.
    Closed,
}

/// One IMAP proxy session. See the [module documentation](self).
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
    tag: Vec<u8>,
    user: Vec<u8>,
    password: Vec<u8>,
    method: Method,
    caps_plain: bool,
    caps_login: bool,
    caps_starttls: bool,
    outcome: Option<u16>,
}

impl Server {
    /// A machine for a connection accepted at `now`; the greeting (with the proxy's
    /// capabilities) is queued.
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
            tag: Vec::new(),
            user: Vec::new(),
            password: Vec::new(),
            method: Method::Login,
            caps_plain: false,
            caps_login: false,
            caps_starttls: false,
            outcome: None,
        };
        let mut greeting = b"* OK [".to_vec();
        greeting.extend_from_slice(&s.capabilities());
        greeting.extend_from_slice(b"] ");
        greeting.extend_from_slice(GREETING_TEXT);
        greeting.extend_from_slice(b"\r\n");
        s.send(greeting);
        s
    }

    fn capabilities(&self) -> Vec<u8> {
        if self.config.starttls {
            b"CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=LOGIN".to_vec()
        } else {
            b"CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN".to_vec()
        }
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

    /// Whether the session is over without a relay (error, refusal, LOGOUT).
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The log code of a session the machine ended by itself without error: `Some(0)` after
    /// LOGOUT. `None` otherwise.
    pub fn outcome(&self) -> Option<u16> {
        self.outcome
    }

    /// Client bytes. Consumes whole lines until the login (several if several are there,
    /// unless [`MAX_PENDING_OUTPUT`] bytes of answers wait: then call again after draining),
    /// nothing in any other state. A strict prefix of a line consumes 0 and is not an
    /// error. On error `tag NO proxy error` is queued and the machine is closed.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while matches!(
            self.state,
            State::Command | State::PlainResponse | State::LoginUser | State::LoginPassword
        ) && self.to_client_len < MAX_PENDING_OUTPUT
        {
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
                    match self.state {
                        State::Command => self.command(text)?,
                        _ => self.continuation(text)?,
                    }
                }
            }
        }
        Ok(used)
    }

    fn command(&mut self, text: &[u8]) -> Result<(), Error> {
        self.tag.clear();
        let Some(space) = text.iter().position(|&b| b == b' ') else {
            return Err(self.fail(Error::BadTag));
        };
        let tag = text.get(..space).unwrap_or_default();
        if !syntax::is_tag(tag) {
            return Err(self.fail(Error::BadTag));
        }
        self.tag = tag.to_vec();
        let rest = text.get(space + 1..).unwrap_or_default();
        let (name, args) = match rest.iter().position(|&b| b == b' ') {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (rest, &b""[..]),
        };
        let is = |word: &[u8]| name.eq_ignore_ascii_case(word);
        if is(b"CAPABILITY") {
            let mut caps = b"* ".to_vec();
            caps.extend_from_slice(&self.capabilities());
            caps.extend_from_slice(b"\r\n");
            self.send(caps);
            self.tagged(b"OK CAPABILITY completed");
        } else if is(b"NOOP") {
            self.tagged(b"OK NOOP completed");
        } else if is(b"LOGOUT") {
            self.send(b"* BYE logging out\r\n".to_vec());
            self.tagged(b"OK LOGOUT completed");
            self.state = State::Closed;
            self.outcome = Some(0);
        } else if is(b"STARTTLS") && self.config.starttls {
            self.tagged(b"OK Begin TLS negotiation");
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
        } else if is(b"LOGIN") {
            let (user, password) = syntax::login_args(args).map_err(|e| {
                self.fail(Error::BadCredentials(match e {
                    ArgError::Literal => BadCredentials::Literal,
                    ArgError::Syntax => BadCredentials::Syntax,
                }))
            })?;
            self.method = Method::Login;
            self.password = password;
            self.request(&user)?;
        } else if is(b"AUTHENTICATE") {
            let (mechanism, initial) = match args.iter().position(|&b| b == b' ') {
                Some(i) => (
                    args.get(..i).unwrap_or_default(),
                    Some(args.get(i + 1..).unwrap_or_default()),
                ),
                None => (args, None),
            };
            if mechanism.eq_ignore_ascii_case(b"PLAIN") {
                self.method = Method::Plain;
                match initial {
                    // RFC 4959: `=` is an empty initial response.
                    Some(ir) if ir != b"=" => self.plain(ir)?,
                    _ => {
                        self.send(b"+ \r\n".to_vec());
                        self.state = State::PlainResponse;
                    }
                }
            } else if mechanism.eq_ignore_ascii_case(b"LOGIN") {
                self.method = Method::AuthLogin;
                match initial {
                    Some(ir) => {
                        self.user = self.decode(ir)?;
                        self.send(b"+ UGFzc3dvcmQ6\r\n".to_vec());
                        self.state = State::LoginPassword;
                    }
                    None => {
                        self.send(b"+ VXNlcm5hbWU6\r\n".to_vec());
                        self.state = State::LoginUser;
                    }
                }
            } else {
                self.tagged(b"NO unsupported authentication mechanism");
            }
        } else {
            self.tagged(b"BAD need LOGIN first");
        }
        Ok(())
    }

    /// A line answering a `+` continuation of AUTHENTICATE.
    fn continuation(&mut self, text: &[u8]) -> Result<(), Error> {
        if text == b"*" {
            // RFC 3501 section 6.2.2: the client cancels.
            self.tagged(b"BAD AUTHENTICATE cancelled");
            self.state = State::Command;
            return Ok(());
        }
        match self.state {
            State::PlainResponse => self.plain(text),
            State::LoginUser => {
                self.user = self.decode(text)?;
                self.send(b"+ UGFzc3dvcmQ6\r\n".to_vec());
                self.state = State::LoginPassword;
                Ok(())
            }
            _ => {
                self.password = self.decode(text)?;
                let user = core::mem::take(&mut self.user);
                self.request(&user)
            }
        }
    }

    fn decode(&mut self, text: &[u8]) -> Result<Vec<u8>, Error> {
        base64::decode(text).ok_or_else(|| self.fail(Error::BadCredentials(BadCredentials::Base64)))
    }

    /// An RFC 4616 message, `[authzid] NUL authcid NUL passwd`; as 3proxy, also
    /// `authcid NUL passwd`.
    fn plain(&mut self, text: &[u8]) -> Result<(), Error> {
        let message = self.decode(text)?;
        let parts: Vec<&[u8]> = message.split(|&b| b == 0).collect();
        let (user, password) = match parts.as_slice() {
            [_authzid, user, password] => (*user, *password),
            [user, password] => (*user, *password),
            _ => return Err(self.fail(Error::BadCredentials(BadCredentials::Plain))),
        };
        if password.is_empty() && parts.len() == 2 {
            return Err(self.fail(Error::BadCredentials(BadCredentials::Plain)));
        }
        self.password = password.to_vec();
        self.request(user)
    }

    fn request(&mut self, user: &[u8]) -> Result<(), Error> {
        if self
            .password
            .iter()
            .any(|&b| matches!(b, 0 | b'\r' | b'\n'))
        {
            return Err(self.fail(Error::BadCredentials(BadCredentials::ControlCharacter)));
        }
        let login = parse_login(
            user,
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
            password: self.password.clone(),
            proxy: login.proxy,
            tag: self.tag.clone(),
            method: self.method,
            log_text: login.log_text,
        }));
        Ok(())
    }

    /// The client closed its side. Before the login this ends the machine with
    /// [`Error::ClientClosed`] (692), inside AUTHENTICATE with [`Error::Continuation`]
    /// (698); while a decision or the server is awaited the machine is closed and `None` is
    /// returned (the driver logs its own reason); Established and Closed are left as they
    /// are.
    pub fn handle_eof(&mut self) -> Option<Error> {
        let e = match self.state {
            State::Command => Some(Error::ClientClosed),
            State::PlainResponse | State::LoginUser | State::LoginPassword => {
                Some(Error::Continuation)
            }
            State::Established | State::Closed => return None,
            _ => None,
        };
        self.state = State::Closed;
        self.deadline = None;
        e
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
    /// with `code`): `tag NO proxy error` is queued (nothing after STARTTLS, the client
    /// speaks TLS) and the machine is closed. Ignored once established or closed.
    pub fn handle_refused(&mut self, code: LogCode) {
        let _ = code;
        if matches!(self.state, State::Established | State::Closed) {
            return;
        }
        if !self.tls {
            self.tagged(b"NO proxy error");
        }
        self.state = State::Closed;
        self.deadline = None;
    }

    /// The connection to the server is up, at `now`: the machine waits for its greeting.
    /// Ignored unless a decision is awaited.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == State::AwaitingDecision {
            self.state = State::ServerGreeting;
            self.deadline = now.checked_add(self.config.server_timeout);
        }
    }

    /// Server bytes: consumes whole lines until the login is sent, nothing in other states.
    /// The server's answer to the login is not consumed: it is relay data for the client.
    /// On error the client's answer is queued and the machine is closed.
    pub fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while self.awaits_server() {
            let rest = input.get(used..).unwrap_or_default();
            match line(rest, MAX_SERVER_LINE_LEN) {
                Line::Partial => break,
                Line::TooLong => return Err(self.fail(self.server_broke_off())),
                Line::Complete { text, consumed } => {
                    used += consumed;
                    self.deadline = now.checked_add(self.config.server_timeout);
                    self.server_line(text)?;
                }
            }
        }
        Ok(used)
    }

    fn awaits_server(&self) -> bool {
        matches!(
            self.state,
            State::ServerGreeting
                | State::ServerCapability
                | State::ServerLoginUser
                | State::ServerLoginPassword
                | State::StartTlsReply
        )
    }

    /// The error for a server that ends, goes silent or sends an over-long line now.
    fn server_broke_off(&self) -> Error {
        match self.state {
            State::ServerGreeting if self.tls => Error::StartTlsGreeting,
            State::ServerGreeting => Error::NoGreeting,
            State::ServerCapability if self.tls => Error::StartTlsExchange,
            State::ServerCapability => Error::Capability,
            State::StartTlsReply => Error::StartTlsExchange,
            _ => Error::UpstreamLogin,
        }
    }

    fn server_line(&mut self, text: &[u8]) -> Result<(), Error> {
        match self.state {
            State::ServerGreeting => {
                if !starts_with_ci(text, b"* OK") {
                    return Err(self.fail(if self.tls {
                        Error::StartTlsGreeting
                    } else {
                        Error::BadGreeting
                    }));
                }
                if !self.tls && text.ends_with(GREETING_TEXT) {
                    return Err(self.fail(Error::ProxyLoop));
                }
                match syntax::greeting_capabilities(text) {
                    Some(caps) => {
                        self.learn(caps);
                        self.after_capabilities()?;
                    }
                    None if self.tls && syntax::has_capability(text, b"STARTTLS") => {
                        self.caps_starttls = true;
                        self.after_capabilities()?;
                    }
                    None => {
                        self.to_server.push_back(b"zz CAPABILITY\r\n".to_vec());
                        self.state = State::ServerCapability;
                    }
                }
            }
            State::ServerCapability => {
                if starts_with_ci(text, b"* CAPABILITY") {
                    self.learn(text);
                } else if starts_with_ci(text, b"zz ") {
                    self.after_capabilities()?;
                }
            }
            State::ServerLoginUser | State::ServerLoginPassword => {
                if text.first() != Some(&b'+') {
                    return Err(self.fail(Error::UpstreamLogin));
                }
                let value = if self.state == State::ServerLoginUser {
                    self.state = State::ServerLoginPassword;
                    base64::encode(&self.user)
                } else {
                    self.establish();
                    base64::encode(&self.password)
                };
                self.send_server(&[&value, b"\r\n"]);
            }
            State::StartTlsReply => {
                if !starts_with_ci(text, b"zz OK") {
                    return Err(self.fail(Error::StartTlsRefused));
                }
                self.establish();
            }
            _ => {}
        }
        Ok(())
    }

    fn learn(&mut self, caps: &[u8]) {
        self.caps_plain |= syntax::has_capability(caps, b"AUTH=PLAIN");
        self.caps_login |= syntax::has_capability(caps, b"AUTH=LOGIN");
        self.caps_starttls |= syntax::has_capability(caps, b"STARTTLS");
    }

    /// The capabilities are known: STARTTLS, or the login in the method 3proxy picks.
    fn after_capabilities(&mut self) -> Result<(), Error> {
        if self.tls {
            if !self.caps_starttls {
                return Err(self.fail(Error::StartTlsRefused));
            }
            self.to_server.push_back(b"zz STARTTLS\r\n".to_vec());
            self.state = State::StartTlsReply;
            return Ok(());
        }
        let (plain, login) = (self.caps_plain, self.caps_login);
        let method = match self.method {
            Method::Plain if !plain && login => Method::AuthLogin,
            Method::Plain if !plain => Method::Login,
            Method::AuthLogin if !login && plain => Method::Plain,
            Method::AuthLogin if !login => Method::Login,
            Method::Login if plain => Method::Plain,
            Method::Login if login => Method::AuthLogin,
            m => m,
        };
        let tag = self.tag.clone();
        match method {
            Method::Plain => {
                let mut message = vec![0];
                message.extend_from_slice(&self.user);
                message.push(0);
                message.extend_from_slice(&self.password);
                let coded = base64::encode(&message);
                self.send_server(&[&tag, b" AUTHENTICATE PLAIN ", &coded, b"\r\n"]);
                self.establish();
            }
            Method::AuthLogin => {
                self.send_server(&[&tag, b" AUTHENTICATE LOGIN\r\n"]);
                self.state = State::ServerLoginUser;
            }
            Method::Login => {
                let user = syntax::encode_astring(&self.user);
                let password = syntax::encode_astring(&self.password);
                let (Some(user), Some(password)) = (user, password) else {
                    return Err(self.fail(Error::BadCredentials(BadCredentials::ControlCharacter)));
                };
                self.send_server(&[&tag, b" LOGIN ", &user, b" ", &password, b"\r\n"]);
                self.establish();
            }
        }
        Ok(())
    }

    /// The server closed before the machine was done with it: the error for its state
    /// (the client's answer is queued and the machine closed). Established and Closed
    /// machines are left as they are.
    pub fn handle_upstream_eof(&mut self) -> Error {
        let e = self.server_broke_off();
        if !self.awaits_server() {
            return e;
        }
        self.fail(e)
    }

    /// The deadline of the line awaited from the client or the server; `None` while a
    /// decision is awaited and once established or closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingDecision | State::Established | State::Closed => None,
            _ => self.deadline,
        }
    }

    /// If the deadline has passed: the error (692 or 698 for the client, 695-699 or
    /// 361-362 for the server), the client's answer queued, the machine closed, and no
    /// deadline after.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        let deadline = self.poll_timeout()?;
        if now < deadline {
            return None;
        }
        let e = match self.state {
            State::Command => Error::ClientTimeout,
            State::PlainResponse | State::LoginUser | State::LoginPassword => Error::Continuation,
            _ => self.server_broke_off(),
        };
        Some(self.fail(e))
    }

    fn establish(&mut self) {
        self.state = State::Established;
        self.deadline = None;
    }

    fn send(&mut self, bytes: Vec<u8>) {
        self.to_client_len += bytes.len();
        self.to_client.push_back(bytes);
    }

    fn send_server(&mut self, parts: &[&[u8]]) {
        self.to_server.push_back(parts.concat());
    }

    /// `tag text CR LF` to the client, with `*` when no tag was read yet.
    fn tagged(&mut self, text: &[u8]) {
        let tag: &[u8] = if self.tag.is_empty() { b"*" } else { &self.tag };
        let answer = [tag, b" ", text, b"\r\n"].concat();
        self.send(answer);
    }

    /// Closes with `e`, queueing what the client is told: `tag NO proxy error` before
    /// STARTTLS, a TLS alert after it when the STARTTLS exchange with the server failed.
    fn fail(&mut self, e: Error) -> Error {
        if !matches!(e, Error::ClientClosed) {
            if !self.tls {
                self.tagged(b"NO proxy error");
            } else if matches!(
                e,
                Error::StartTlsGreeting | Error::StartTlsExchange | Error::StartTlsRefused
            ) {
                self.send(TLS_HANDSHAKE_FAILURE.to_vec());
            }
        }
        self.state = State::Closed;
        self.deadline = None;
        e
    }
}
