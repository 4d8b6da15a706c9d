//! The sans-IO machine 3proxy's `smtpp` runs for one client: greet, take `AUTH LOGIN` or
//! `AUTH PLAIN` with `user@server[:port]`, then log in to that server as `user` and hand
//! the two connections to the relay.
//!
//! Client side: [`Proxy::handle_input`] consumes whole lines only and returns how many
//! bytes it used; the driver keeps the rest and presents it again in front of the next
//! read. Answers go out through [`Proxy::poll_transmit`]. Once the credentials are
//! complete the machine reports [`Event::Connect`] and consumes nothing more from the
//! client: whatever the client pipelined after its `AUTH` (a `MAIL FROM`, say) stays with
//! the driver and is relay data. The driver answers with [`Proxy::handle_connected`] or
//! [`Proxy::handle_refused`].
//!
//! Server side: [`Proxy::handle_upstream_input`] consumes the server's lines, and
//! [`Proxy::poll_upstream_transmit`] gives the `EHLO` and `AUTH` lines to send. When the
//! server accepts the login its verdict line goes to the client and
//! [`Proxy::is_established`] turns true; server bytes after the verdict are not consumed.
//!
//! After every call the driver drains `poll_transmit`, `poll_upstream_transmit` and
//! `poll_event` until empty and arms a timer for [`Proxy::poll_timeout`].
//!
//! It is not a policy (who may connect where is the driver's) and not a relay.

mod target;

use crate::error::{CredentialsError, Error, Mechanism, Step};
use crate::line::{self, Command, Mechanisms, MAX_LINE};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Instant;
use target::{log_text, split_user};
use triproxy_wire::{LogCode, Status, TargetAddr};

/// Longest user name and longest password, in bytes, after base64 decoding (3proxy's
/// buffers hold 255).
pub const MAX_CREDENTIAL: usize = 255;

/// Most commands a client may send before `AUTH` (`HELO`, `NOOP`...); one more ends the
/// session with [`Error::TooManyCommands`].
pub const MAX_COMMANDS: usize = 64;

/// Most lines in one server reply (a multi-line greeting or `EHLO` reply).
pub const MAX_REPLY_LINES: usize = 64;

/// The proxy's own greeting. A server that greets with `220 Proxy` is taken for a proxy
/// and refused ([`Error::Loop`]).
pub const GREETING: &[u8] = b"220 Proxy\r\n";

const NEED_AUTH: &[u8] = b"571 need AUTH first\r\n";

/// base64 as clients send it: padding optional.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// How a [`Proxy`] behaves; [`Config::default`] is 3proxy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// 3proxy `-hHOST[:PORT]`: the server for a user name without `@server`, and for a
    /// client that sends a mail command without `AUTH` (it is then connected without a
    /// login, as 3proxy does).
    pub default_target: Option<TargetAddr>,
    /// Whether `EHLO` advertises `STARTTLS` and `STARTTLS` is answered (3proxy `-x` turns
    /// it off).
    pub starttls: bool,
    /// 3proxy `delimchar`: splits user and server at its last occurrence.
    pub delimiter: u8,
    /// Port of a server named without one (and without `-h` port): 587 in 3proxy.
    pub default_port: u16,
    /// Longest line from either side, CRLF included; clamped to [`MAX_LINE`].
    pub max_line: usize,
    /// Time allowed for each client line (3proxy `STRING_S`, 30 s).
    pub command_timeout: Duration,
    /// Time allowed for each server line (3proxy `STRING_L`, 60 s).
    pub reply_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_target: None,
            starttls: true,
            delimiter: b'@',
            default_port: 587,
            max_line: MAX_LINE,
            command_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(60),
        }
    }
}

/// The real user's login, to be used on the server.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name without `@server` (at most [`MAX_CREDENTIAL`] bytes).
    pub user: Vec<u8>,
    /// The password (at most [`MAX_CREDENTIAL`] bytes, may be empty).
    pub password: Vec<u8>,
    /// How the client sent them.
    pub mechanism: Mechanism,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"<hidden>")
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The server to connect to.
    pub target: TargetAddr,
    /// The login for the server; `None` when the client sent a mail command without
    /// `AUTH` and [`Config::default_target`] applies.
    pub credentials: Option<Credentials>,
    /// What 3proxy logs as `%T`: `user@server`, with `:port` unless the port is
    /// [`Config::default_port`]; each part at most 128 characters, control characters
    /// shown as `?`. `None` without credentials.
    pub log_text: Option<String>,
}

/// Something the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
// `Connect` carries the target inline (no allocation for the name), as in triproxy-wire.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// Check and connect; answer with [`Proxy::handle_connected`] or
    /// [`Proxy::handle_refused`].
    Connect(Request),
    /// The client asked for `STARTTLS` and was told `220`: the rest of the connection is
    /// TLS, which 3proxy hands to its TLS (SNI) proxy with this default port. The machine
    /// is done; client bytes after the command (the ClientHello) were not consumed.
    StartTls {
        /// The port 3proxy's TLS proxy would connect to (the `-h` port, else 587).
        port: u16,
    },
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Reading commands before `AUTH`.
    Command,
    /// `334` for the LOGIN user name sent.
    LoginUser,
    /// `334` for the LOGIN password sent.
    LoginPassword,
    /// `334` for the PLAIN response sent.
    PlainResponse,
    /// [`Event::Connect`] reported; waiting for the driver.
    Connecting,
    /// Connected; waiting for the server's greeting.
    Greeting,
    /// `EHLO` sent; reading the reply.
    Ehlo,
    /// `AUTH LOGIN` sent; waiting for `334`.
    UpstreamLogin,
    /// LOGIN user name sent; waiting for `334`.
    UpstreamLoginUser,
    /// `AUTH PLAIN` sent; waiting for `334`.
    UpstreamPlain,
    /// Credentials sent; waiting for the verdict.
    UpstreamVerdict,
    /// The relay may start (after the queued transmits are sent).
    Established,
    /// The client switched to TLS ([`Event::StartTls`]).
    StartTls,
    /// Ended (QUIT, refusal or error); flush the queued transmits and close.
    Done,
}

/// The SMTP proxy machine for one client connection.
#[derive(Debug)]
pub struct Proxy {
    config: Config,
    client_ip: IpAddr,
    state: State,
    deadline: Option<Instant>,
    commands: usize,
    to_client: VecDeque<Vec<u8>>,
    to_server: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    /// LOGIN: user and target decoded, waiting for the password.
    login_user: Option<(Vec<u8>, TargetAddr)>,
    credentials: Option<Credentials>,
    mechanism: Mechanism,
    offered: Mechanisms,
    /// Lines of the server reply being read, kept to pass it to the client whole.
    reply: Vec<Vec<u8>>,
}

impl Proxy {
    /// A machine for a client at `client_ip`, connected at `now`; the greeting is queued.
    pub fn new(now: Instant, mut config: Config, client_ip: IpAddr) -> Self {
        config.max_line = config.max_line.clamp(8, MAX_LINE);
        let deadline = now.checked_add(config.command_timeout);
        let mut to_client = VecDeque::new();
        to_client.push_back(GREETING.to_vec());
        Proxy {
            config,
            client_ip,
            state: State::Command,
            deadline,
            commands: 0,
            to_client,
            to_server: VecDeque::new(),
            events: VecDeque::new(),
            login_user: None,
            credentials: None,
            mechanism: Mechanism::Plain,
            offered: Mechanisms::default(),
            reply: Vec::new(),
        }
    }

    /// Where the machine is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the relay may start: drain both transmit queues first, then relay, starting
    /// with the client bytes this machine did not consume and the server bytes after the
    /// verdict that [`Proxy::handle_upstream_input`] did not consume.
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// Whether the session ended without a relay (QUIT, STARTTLS hand-off, refusal,
    /// error): drain the transmits and close.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done | State::StartTls)
    }

    /// Next bytes for the client.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.to_client.pop_front()
    }

    /// Next bytes for the server.
    pub fn poll_upstream_transmit(&mut self) -> Option<Vec<u8>> {
        self.to_server.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Proxy::handle_timeout`] must be called: while a line is awaited from either
    /// side, `None` while the driver decides or after the handshake.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Ends the session if its deadline has passed: the client is told `421` and the
    /// error is returned. Before the deadline, nothing happens.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        let deadline = self.deadline?;
        if now < deadline {
            return None;
        }
        let step = self.step();
        self.fail(b"421 4.4.2 proxy: timeout\r\n");
        Some(Error::Timeout { step })
    }

    fn step(&self) -> Step {
        match self.state {
            State::Command | State::StartTls | State::Done => Step::Command,
            State::LoginUser => Step::LoginUser,
            State::LoginPassword => Step::LoginPassword,
            State::PlainResponse => Step::PlainResponse,
            State::Connecting => Step::Connecting,
            State::Greeting => Step::Greeting,
            State::Ehlo => Step::Ehlo,
            State::UpstreamLogin => Step::UpstreamLogin,
            State::UpstreamLoginUser => Step::UpstreamLoginUser,
            State::UpstreamPlain => Step::UpstreamPlain,
            State::UpstreamVerdict => Step::UpstreamVerdict(self.mechanism),
            State::Established => Step::Relay,
        }
    }

    fn fail(&mut self, answer: &[u8]) {
        self.to_client.push_back(answer.to_vec());
        self.finish(State::Done);
    }

    fn finish(&mut self, state: State) {
        self.state = state;
        self.deadline = None;
        self.login_user = None;
        self.credentials = None;
        self.reply.clear();
    }

    fn client_reading(&self) -> bool {
        matches!(
            self.state,
            State::Command | State::LoginUser | State::LoginPassword | State::PlainResponse
        )
    }

    fn upstream_reading(&self) -> bool {
        matches!(
            self.state,
            State::Greeting
                | State::Ehlo
                | State::UpstreamLogin
                | State::UpstreamLoginUser
                | State::UpstreamPlain
                | State::UpstreamVerdict
        )
    }

    /// The client closed its side; returns why the session ends (3proxy's code for the
    /// step). After the handshake this is [`Step::Relay`], code 0.
    pub fn handle_eof(&mut self) -> Error {
        let step = if self.client_reading() || self.upstream_reading() {
            self.step()
        } else if self.state == State::Connecting {
            Step::Connecting
        } else {
            Step::Relay
        };
        if step != Step::Relay {
            self.finish(State::Done);
        }
        Error::Eof { step }
    }

    /// The server closed its side; returns why the session ends. The client is told `451`
    /// if the handshake was still going on.
    pub fn handle_upstream_eof(&mut self) -> Error {
        if self.upstream_reading() {
            let step = self.step();
            self.fail(b"451 4.4.2 proxy: server closed the connection\r\n");
            Error::Eof { step }
        } else {
            Error::Eof { step: Step::Relay }
        }
    }

    /// Client bytes: consumes whole lines while the client side of the handshake lasts,
    /// nothing after [`Event::Connect`] (or QUIT, STARTTLS, an error). A partial line is
    /// not consumed and not an error; more than [`Config::max_line`] bytes without a line
    /// end is [`Error::LineTooLong`]. On an error the client's answer is queued and the
    /// machine is done.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while self.client_reading() {
            let rest = input.get(used..).unwrap_or_default();
            let (line, consumed) = match line::next_line(rest, self.config.max_line) {
                Ok(Status::Complete { value, consumed }) => (value, consumed),
                Ok(Status::Partial { .. }) => break,
                Err(e) => {
                    let step = self.step();
                    self.fail(b"500 5.5.2 proxy: line too long\r\n");
                    return Err(Error::LineTooLong {
                        step,
                        limit: e.limit,
                    });
                }
            };
            used += consumed;
            self.deadline = now.checked_add(self.config.command_timeout);
            let leave = match self.state {
                State::Command => self.command(line)?,
                State::LoginUser => self.login_user(line, Step::LoginUser).map(|()| false)?,
                State::LoginPassword => self.login_password(line).map(|()| false)?,
                State::PlainResponse => self.plain(line).map(|()| false)?,
                _ => false,
            };
            if leave {
                // A mail command with -h: not consumed, it is the relay's first line.
                used -= consumed;
                break;
            }
        }
        Ok(used)
    }

    /// One command before AUTH. Returns true when the line must be left unconsumed.
    fn command(&mut self, line: &[u8]) -> Result<bool, Error> {
        self.commands += 1;
        if self.commands > MAX_COMMANDS {
            self.fail(b"421 4.7.0 proxy: too many commands\r\n");
            return Err(Error::TooManyCommands);
        }
        match line::parse_command(line) {
            Command::Quit => {
                self.to_client.push_back(b"221 Proxy\r\n".to_vec());
                self.finish(State::Done);
            }
            Command::Helo | Command::Noop | Command::Rset => {
                self.to_client.push_back(b"250 Proxy\r\n".to_vec());
            }
            Command::Ehlo => {
                let mut reply = b"250-Proxy\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n".to_vec();
                if self.config.starttls {
                    reply.extend_from_slice(b"250-STARTTLS\r\n");
                }
                reply.extend_from_slice(b"250 DSN\r\n");
                self.to_client.push_back(reply);
            }
            Command::StartTls if self.config.starttls => {
                self.to_client
                    .push_back(b"220 2.0.0 Ready to start TLS\r\n".to_vec());
                let port = self
                    .config
                    .default_target
                    .as_ref()
                    .map_or(self.config.default_port, TargetAddr::port);
                self.events.push_back(Event::StartTls { port });
                self.finish(State::StartTls);
            }
            Command::Auth { mechanism, initial } => {
                if mechanism.eq_ignore_ascii_case(b"LOGIN") {
                    self.mechanism = Mechanism::Login;
                    match initial {
                        Some(user) => self.login_user(user, Step::LoginUser)?,
                        None => {
                            self.to_client.push_back(b"334 VXNlcm5hbWU6\r\n".to_vec());
                            self.state = State::LoginUser;
                        }
                    }
                } else if mechanism.eq_ignore_ascii_case(b"PLAIN") {
                    self.mechanism = Mechanism::Plain;
                    match initial {
                        Some(response) => self.plain(response)?,
                        None => {
                            self.to_client.push_back(b"334 \r\n".to_vec());
                            self.state = State::PlainResponse;
                        }
                    }
                } else {
                    self.to_client
                        .push_back(b"504 5.5.4 proxy: use AUTH PLAIN or AUTH LOGIN\r\n".to_vec());
                }
            }
            Command::Empty => {
                self.to_client
                    .push_back(b"500 5.5.2 proxy: syntax error\r\n".to_vec());
            }
            Command::StartTls | Command::Other => match self.config.default_target.clone() {
                Some(target) => {
                    self.events.push_back(Event::Connect(Request {
                        target,
                        credentials: None,
                        log_text: None,
                    }));
                    self.state = State::Connecting;
                    self.deadline = None;
                    return Ok(true);
                }
                None => self.to_client.push_back(NEED_AUTH.to_vec()),
            },
        }
        Ok(false)
    }

    fn decode(&mut self, text: &[u8], step: Step) -> Result<Vec<u8>, Error> {
        let text = text.trim_ascii();
        let decoded = if text == b"=" {
            Some(Vec::new())
        } else if text == b"*" {
            None
        } else {
            LENIENT.decode(text).ok()
        };
        match decoded {
            Some(bytes) => Ok(bytes),
            None => {
                self.fail(b"501 5.5.2 proxy: cannot decode AUTH data\r\n");
                Err(Error::BadBase64 { step })
            }
        }
    }

    fn bad_credentials(&mut self, step: Step, why: CredentialsError) -> Error {
        self.fail(b"535 5.7.8 proxy: expected user@server[:port] and a password\r\n");
        Error::Credentials { step, why }
    }

    fn login_user(&mut self, text: &[u8], step: Step) -> Result<(), Error> {
        let decoded = self.decode(text, step)?;
        match split_user(&decoded, &self.config) {
            Ok((user, target)) => {
                self.login_user = Some((user, target));
                self.to_client.push_back(b"334 UGFzc3dvcmQ6\r\n".to_vec());
                self.state = State::LoginPassword;
                Ok(())
            }
            Err(why) => Err(self.bad_credentials(step, why)),
        }
    }

    fn login_password(&mut self, text: &[u8]) -> Result<(), Error> {
        let password = self.decode(text, Step::LoginPassword)?;
        if password.len() > MAX_CREDENTIAL {
            return Err(self.bad_credentials(Step::LoginPassword, CredentialsError::TooLong));
        }
        let Some((user, target)) = self.login_user.take() else {
            return Err(self.bad_credentials(Step::LoginPassword, CredentialsError::EmptyUser));
        };
        self.connect(user, password, target);
        Ok(())
    }

    fn plain(&mut self, text: &[u8]) -> Result<(), Error> {
        let step = Step::PlainResponse;
        let decoded = self.decode(text, step)?;
        let mut parts = decoded.splitn(3, |&b| b == 0);
        let (Some(authzid), Some(authcid), Some(password)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(self.bad_credentials(step, CredentialsError::PlainFormat));
        };
        if !authzid.is_empty() && authzid != authcid {
            return Err(self.bad_credentials(step, CredentialsError::Authzid));
        }
        if password.len() > MAX_CREDENTIAL {
            return Err(self.bad_credentials(step, CredentialsError::TooLong));
        }
        match split_user(authcid, &self.config) {
            Ok((user, target)) => {
                let password = password.to_vec();
                self.connect(user, password, target);
                Ok(())
            }
            Err(why) => Err(self.bad_credentials(step, why)),
        }
    }

    fn connect(&mut self, user: Vec<u8>, password: Vec<u8>, target: TargetAddr) {
        let log_text = log_text(&user, &target, self.config.default_port);
        let credentials = Credentials {
            user,
            password,
            mechanism: self.mechanism,
        };
        self.credentials = Some(credentials.clone());
        self.events.push_back(Event::Connect(Request {
            target,
            credentials: Some(credentials),
            log_text: Some(log_text),
        }));
        self.state = State::Connecting;
        self.deadline = None;
    }

    /// The driver refused the [`Event::Connect`] (or could not connect, or gives up during
    /// the upstream handshake) with this 3proxy code; the client gets the SMTP answer of
    /// [`refusal_reply`] and the machine is done. Ignored in any other state.
    pub fn handle_refused(&mut self, code: LogCode) {
        if self.state == State::Connecting || self.upstream_reading() {
            self.fail(refusal_reply(code));
        }
    }

    /// The connection to the server is open at `now`: wait for its greeting.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == State::Connecting {
            self.state = State::Greeting;
            self.deadline = now.checked_add(self.config.reply_timeout);
        }
    }

    /// Server bytes: consumes whole reply lines while the upstream handshake lasts,
    /// nothing once established or done. Partial lines are not consumed; an over-long one
    /// is [`Error::LineTooLong`].
    pub fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let mut used = 0;
        while self.upstream_reading() {
            let rest = input.get(used..).unwrap_or_default();
            let raw = match line::next_line(rest, self.config.max_line) {
                Ok(Status::Complete { value, consumed }) => {
                    let raw = rest.get(..consumed).unwrap_or_default();
                    used += consumed;
                    (value, raw)
                }
                Ok(Status::Partial { .. }) => break,
                Err(e) => {
                    let step = self.step();
                    self.fail(b"451 4.3.0 proxy: server line too long\r\n");
                    return Err(Error::LineTooLong {
                        step,
                        limit: e.limit,
                    });
                }
            };
            self.deadline = now.checked_add(self.config.reply_timeout);
            self.server_line(raw.0, raw.1)?;
        }
        Ok(used)
    }

    fn server_line(&mut self, line: &[u8], raw: &[u8]) -> Result<(), Error> {
        let step = self.step();
        let Some(reply) = line::parse_reply_line(line) else {
            self.fail(b"451 4.3.0 proxy: bad reply from server\r\n");
            return Err(Error::BadReply { step });
        };
        if self.reply.len() >= MAX_REPLY_LINES {
            self.fail(b"451 4.3.0 proxy: reply from server too long\r\n");
            return Err(Error::BadReply { step });
        }
        let mut kept = raw.to_vec();
        if !kept.ends_with(b"\r\n") {
            kept.pop();
            kept.extend_from_slice(b"\r\n");
        }
        self.reply.push(kept);
        if self.state == State::Ehlo {
            self.offered.add_ehlo_line(reply.text);
        }
        if !reply.last {
            return Ok(());
        }
        let first = self
            .reply
            .first()
            .and_then(|l| line::parse_reply_line(l.get(..3).unwrap_or_default()))
            .map_or(reply.code, |r| r.code);
        let lines = core::mem::take(&mut self.reply);
        match self.state {
            State::Greeting => {
                let proxy = lines.first().is_some_and(|l| {
                    l.get(4..9)
                        .is_some_and(|t| t.eq_ignore_ascii_case(b"PROXY"))
                });
                if first != 220 {
                    return Err(self.pass_failure(step, first, lines));
                }
                if proxy {
                    self.fail(b"554 5.4.6 proxy: the server is a proxy (loop)\r\n");
                    return Err(Error::Loop);
                }
                self.to_server.push_back(ehlo(self.client_ip));
                self.state = State::Ehlo;
            }
            State::Ehlo => {
                if first != 250 {
                    return Err(self.pass_failure(step, first, lines));
                }
                self.after_ehlo();
            }
            State::UpstreamLogin | State::UpstreamLoginUser | State::UpstreamPlain => {
                if first != 334 {
                    return Err(self.pass_failure(step, first, lines));
                }
                self.send_next_credential();
            }
            State::UpstreamVerdict => {
                let mechanism = self.mechanism;
                self.to_client.extend(lines);
                if (200..300).contains(&first) {
                    self.finish(State::Established);
                } else {
                    self.finish(State::Done);
                    return Err(Error::Rejected {
                        mechanism,
                        code: first,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The server's failure reply goes to the client when it is one (4xx, 5xx); anything
    /// else becomes a 451.
    fn pass_failure(&mut self, step: Step, code: u16, lines: Vec<Vec<u8>>) -> Error {
        if code >= 400 {
            self.to_client.extend(lines);
            self.finish(State::Done);
        } else {
            self.fail(b"451 4.3.0 proxy: unexpected reply from server\r\n");
        }
        Error::Unexpected { step, code }
    }

    fn after_ehlo(&mut self) {
        let Some(credentials) = self.credentials.as_ref() else {
            // -h without AUTH: the client's command is the relay's first line.
            self.finish(State::Established);
            return;
        };
        if credentials.user.is_empty() {
            self.finish(State::Established);
        } else if self.offered.plain {
            self.mechanism = Mechanism::Plain;
            self.to_server.push_back(b"AUTH PLAIN\r\n".to_vec());
            self.state = State::UpstreamPlain;
        } else if self.offered.login {
            self.mechanism = Mechanism::Login;
            self.to_server.push_back(b"AUTH LOGIN\r\n".to_vec());
            self.state = State::UpstreamLogin;
        } else {
            // 3proxy tells the client 235 and relays when the server offers no login.
            self.to_client
                .push_back(b"235 2.7.0 proxy: server asks for no authentication\r\n".to_vec());
            self.finish(State::Established);
        }
    }

    fn send_next_credential(&mut self) {
        let Some(c) = self.credentials.as_ref() else {
            return;
        };
        let (payload, next) = match self.state {
            State::UpstreamLogin => (STANDARD.encode(&c.user), State::UpstreamLoginUser),
            State::UpstreamLoginUser => (STANDARD.encode(&c.password), State::UpstreamVerdict),
            _ => {
                let mut plain = Vec::with_capacity(c.user.len() + c.password.len() + 2);
                plain.push(0);
                plain.extend_from_slice(&c.user);
                plain.push(0);
                plain.extend_from_slice(&c.password);
                (STANDARD.encode(plain), State::UpstreamVerdict)
            }
        };
        let mut line = payload.into_bytes();
        line.extend_from_slice(b"\r\n");
        self.to_server.push_back(line);
        self.state = next;
    }
}

/// `EHLO [client-ip]` as an RFC 5321 address literal (section 4.1.3): `[IPv6:...]` for
/// IPv6 (3proxy writes a bare `[...]`), IPv4-mapped addresses as IPv4.
fn ehlo(ip: IpAddr) -> Vec<u8> {
    let ip = ip.to_canonical();
    match ip {
        IpAddr::V4(v4) => format!("EHLO [{v4}]\r\n").into_bytes(),
        IpAddr::V6(v6) => format!("EHLO [IPv6:{v6}]\r\n").into_bytes(),
    }
}

/// The SMTP answer for a refusal with a 3proxy code: 1..=3 (ACL) and 10 (limits) `554`
/// 5.7.1 not allowed; 4..=9 (authentication) `535` 5.7.8; 11..=14 and 100 (socket,
/// connect, resolve) `451` 4.4.1 server unreachable; anything else `451` 4.3.0.
/// (3proxy answers `571` to all of them.)
pub fn refusal_reply(code: LogCode) -> &'static [u8] {
    match code.get() {
        1..=3 | 10 => b"554 5.7.1 proxy: not allowed\r\n",
        4..=9 => b"535 5.7.8 proxy: authentication failed\r\n",
        11..=14 | 100 => b"451 4.4.1 proxy: server unreachable\r\n",
        _ => b"451 4.3.0 proxy: cannot serve the request\r\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_smtp() {
        assert!(refusal_reply(LogCode(1)).starts_with(b"554 "));
        assert!(refusal_reply(LogCode(5)).starts_with(b"535 "));
        assert!(refusal_reply(LogCode(13)).starts_with(b"451 "));
        assert!(refusal_reply(LogCode(100)).starts_with(b"451 "));
    }
}
