//! Fronts that log in to the target themselves before the relay: the mail proxies (3proxy
//! `pop3p`, `smtpp`, `imapp`). Each protocol's machine lives in its own `proto/` crate;
//! this file holds the one shape the session drives them through ([`LoginFront`]), one
//! small adapter per protocol, and [`Chunked`], which cuts the machines' answers into the
//! fixed-size transmits the session hands out.
//!
//! The session's side of it is the upstream phase (`Phase::Upstream`): after the connect
//! (and any parent chain), [`LoginFront::poll_upstream`] says what to write to the server
//! and when to read, the server's bytes go to [`LoginFront::handle_upstream_input`], and
//! once the login is done the relay starts with what is left on either side.

use super::socks_credentials;
use super::{tls_failure, FrontFailure, FrontRequest, RequestKind, UpstreamStep};
use crate::reason::Reason;
use core::time::Duration;
use std::time::Instant;
use triproxy_wire::{LogCode, Status, TargetAddr, Transmit};

/// What the session needs of a proxy that logs in upstream. See the module documentation.
pub(crate) trait LoginFront: core::fmt::Debug + Send {
    /// Client bytes: how many were consumed, or the failure that ends the session (its
    /// error answer queued). A session the machine ended by itself (`QUIT`) is a failure
    /// with code 0.
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure>;
    /// The next bytes for the client.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// The client's request, once it named its server (or asked for STARTTLS).
    fn poll_request(&mut self) -> Option<Asked>;
    /// Whether the machine still reads the client's commands.
    fn wants_input(&self) -> bool;
    /// When the current wait ends.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Lets time pass.
    fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure>;
    /// The client closed before the relay.
    fn handle_eof(&mut self) -> Option<FrontFailure>;
    /// The request is refused: the protocol's error answer is queued.
    fn handle_refused(&mut self, code: LogCode);
    /// Connected to the server: the login starts.
    fn handle_connected(&mut self, now: Instant);
    /// What the login needs next.
    fn poll_upstream(&mut self) -> UpstreamStep;
    /// Server bytes during the login.
    fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure>;
    /// The server closed during the login.
    fn handle_upstream_eof(&mut self) -> FrontFailure;
}

/// What a login front's client asked for. (Short-lived: the name inline is fine.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Asked {
    /// Connect to its server.
    Request(Box<FrontRequest>),
    /// It sent STARTTLS (STLS) and was told to begin: its next bytes are a TLS
    /// ClientHello, whose server name (on `port`) or else `default` is the target, as
    /// 3proxy hands such a client to its TLS proxy.
    StartTls {
        port: u16,
        default: Option<TargetAddr>,
    },
}

/// A login front, its STARTTLS routing, and the answer it is handing out in
/// transmit-sized pieces.
#[derive(Debug)]
pub(crate) struct Chunked {
    pub(crate) machine: Box<dyn LoginFront>,
    out: Vec<u8>,
    sent: usize,
    /// The request, taken from the machine as soon as it is made.
    asked: Option<Box<FrontRequest>>,
    /// After STARTTLS: where the ClientHello's name goes, until it has come (deadline).
    starttls: Option<(u16, Option<TargetAddr>, Option<Instant>)>,
    /// How long the client has for its ClientHello after STARTTLS.
    hello_timeout: Duration,
}

impl Chunked {
    pub(crate) fn new(machine: Box<dyn LoginFront>, hello_timeout: Duration) -> Self {
        Chunked {
            machine,
            out: Vec::new(),
            sent: 0,
            asked: None,
            starttls: None,
            hello_timeout,
        }
    }

    /// Client bytes: the machine's commands, or after STARTTLS the ClientHello, peeked
    /// (never consumed: it goes to the server as it is once connected).
    #[inline(never)]
    pub(crate) fn handle_input(
        &mut self,
        now: Instant,
        input: &[u8],
    ) -> Result<usize, FrontFailure> {
        if let Some((port, default, deadline)) = self.starttls.as_mut() {
            if deadline.is_none() {
                *deadline = now.checked_add(self.hello_timeout);
            }
            if self.asked.is_some() {
                return Ok(0);
            }
            let hello = match triproxy_tls::parse_client_hello(input) {
                Ok(Status::Complete { value, .. }) => value,
                Ok(Status::Partial { .. }) => return Ok(0),
                Err(e) => return Err(tls_failure(triproxy_tls::Error::ClientHello(e))),
            };
            let target = match (hello.sni, default.clone()) {
                (Some(name), None) => TargetAddr::Domain(name, *port),
                (_, Some(d)) => d,
                (None, None) => {
                    let e = triproxy_tls::Error::NoTarget { hello_error: None };
                    return Err(tls_failure(e));
                }
            };
            let text = format!("STARTTLS {target}");
            self.asked = Some(login_request(target, text, None, None));
            *deadline = None;
            return Ok(0);
        }
        let used = self.machine.handle_input(now, input)?;
        match self.machine.poll_request() {
            Some(Asked::Request(r)) => self.asked = Some(r),
            Some(Asked::StartTls { port, default }) => {
                self.starttls = Some((port, default, now.checked_add(self.hello_timeout)));
            }
            None => {}
        }
        Ok(used)
    }

    /// The request, once there is one.
    pub(crate) fn poll_request(&mut self) -> Option<Box<FrontRequest>> {
        self.asked.take()
    }

    /// Whether client bytes may still bring the request.
    pub(crate) fn wants_input(&self) -> bool {
        match &self.starttls {
            Some((_, _, deadline)) => deadline.is_some(),
            None => self.machine.wants_input(),
        }
    }

    /// How much client input must be held at once: a whole ClientHello after STARTTLS.
    pub(crate) fn max_input(&self) -> usize {
        if self.starttls.is_some() {
            triproxy_tls::hello::MAX_HELLO_LEN
        } else {
            0
        }
    }

    /// When the current wait ends.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        match &self.starttls {
            Some((_, _, Some(deadline))) => Some(*deadline),
            _ => self.machine.poll_timeout(),
        }
    }

    /// Lets time pass.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure> {
        if let Some((_, _, Some(deadline))) = &self.starttls {
            if now >= *deadline {
                return Some(tls_failure(triproxy_tls::Error::ClientTimeout {
                    received: 0,
                }));
            }
            return None;
        }
        self.machine.handle_timeout(now)
    }

    /// The next piece of the machine's answers, at most one [`Transmit`] long.
    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        if self.sent >= self.out.len() {
            self.out = self.machine.poll_transmit()?;
            self.sent = 0;
        }
        let rest = self.out.get(self.sent..).unwrap_or_default();
        let n = rest.len().min(triproxy_wire::MAX_TRANSMIT);
        self.sent += n;
        Transmit::from_slice(rest.get(..n).unwrap_or_default()).ok()
    }
}

/// The login's next step from what its machine says: bytes for the server first, then
/// the relay once done, else a read until the machine's deadline; a machine with neither
/// (which should not happen) ends the login with `lost`'s failure rather than wait forever.
fn next_step(
    send: Option<Vec<u8>>,
    done: bool,
    deadline: Option<Instant>,
    lost: impl FnOnce() -> FrontFailure,
) -> UpstreamStep {
    match (send, done, deadline) {
        (Some(bytes), _, _) => UpstreamStep::Send(bytes),
        (None, true, _) => UpstreamStep::Established,
        (None, false, Some(deadline)) => UpstreamStep::Read(deadline),
        (None, false, None) => UpstreamStep::Failed(lost()),
    }
}

/// A CONNECT request to `target`, with proxy credentials if the client gave some.
fn login_request(
    target: TargetAddr,
    text: String,
    user: Option<Vec<u8>>,
    proxy: Option<(Vec<u8>, Vec<u8>)>,
) -> Box<FrontRequest> {
    Box::new(FrontRequest {
        kind: RequestKind::Connect,
        target,
        user_id: user,
        credentials: proxy.and_then(|(u, p)| socks_credentials(&u, &p)),
        method: None,
        text: Some(text),
    })
}

/// The POP3 proxy's adapter.
impl LoginFront for triproxy_pop3::Server {
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        let used = triproxy_pop3::Server::handle_input(self, now, input).map_err(pop3_failure)?;
        if self.is_closed() {
            // QUIT: over by the client's wish, logged as 0.
            return Err(FrontFailure {
                code: LogCode(self.outcome().unwrap_or(0)),
                reason: Reason::ClientClosed,
            });
        }
        Ok(used)
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        triproxy_pop3::Server::poll_transmit(self)
    }

    fn poll_request(&mut self) -> Option<Asked> {
        Some(match self.poll_event()? {
            triproxy_pop3::Event::Request(r) => Asked::Request(login_request(
                r.target,
                r.log_text,
                Some(r.user),
                r.proxy.map(|p| (p.user, p.password)),
            )),
            triproxy_pop3::Event::StartTls {
                port,
                default_target,
            } => Asked::StartTls {
                port,
                default: default_target,
            },
        })
    }

    fn wants_input(&self) -> bool {
        self.state() == triproxy_pop3::State::Command
    }

    fn poll_timeout(&self) -> Option<Instant> {
        triproxy_pop3::Server::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure> {
        triproxy_pop3::Server::handle_timeout(self, now).map(pop3_failure)
    }

    fn handle_eof(&mut self) -> Option<FrontFailure> {
        triproxy_pop3::Server::handle_eof(self).map(pop3_failure)
    }

    fn handle_refused(&mut self, code: LogCode) {
        triproxy_pop3::Server::handle_refused(self, code);
    }

    fn handle_connected(&mut self, now: Instant) {
        triproxy_pop3::Server::handle_connected(self, now);
    }

    fn poll_upstream(&mut self) -> UpstreamStep {
        let send = self.poll_upstream_transmit();
        let done = self.is_established();
        let deadline = triproxy_pop3::Server::poll_timeout(self);
        next_step(send, done, deadline, || {
            pop3_failure(triproxy_pop3::Error::ServerTimeout)
        })
    }

    fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        triproxy_pop3::Server::handle_upstream_input(self, now, input).map_err(pop3_failure)
    }

    fn handle_upstream_eof(&mut self) -> FrontFailure {
        pop3_failure(triproxy_pop3::Server::handle_upstream_eof(self))
    }
}

fn pop3_failure(e: triproxy_pop3::Error) -> FrontFailure {
    FrontFailure {
        code: LogCode(e.log_code()),
        reason: Reason::Pop3(e),
    }
}

/// The IMAP proxy's adapter.
impl LoginFront for triproxy_imap::Server {
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        let used = triproxy_imap::Server::handle_input(self, now, input).map_err(imap_failure)?;
        if self.is_closed() {
            // LOGOUT: over by the client's wish, logged as 0.
            return Err(FrontFailure {
                code: LogCode(self.outcome().unwrap_or(0)),
                reason: Reason::ClientClosed,
            });
        }
        Ok(used)
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        triproxy_imap::Server::poll_transmit(self)
    }

    fn poll_request(&mut self) -> Option<Asked> {
        Some(match self.poll_event()? {
            triproxy_imap::Event::Request(r) => {
                // As 3proxy: without proxy credentials of its own, the login password is
                // the proxy password too.
                let proxy = match r.proxy {
                    Some(p) => Some((p.user, p.password)),
                    None => Some((r.user.clone(), r.password.clone())),
                };
                Asked::Request(login_request(r.target, r.log_text, Some(r.user), proxy))
            }
            triproxy_imap::Event::StartTls {
                port,
                default_target,
            } => Asked::StartTls {
                port,
                default: default_target,
            },
        })
    }

    fn wants_input(&self) -> bool {
        matches!(
            self.state(),
            triproxy_imap::State::Command
                | triproxy_imap::State::PlainResponse
                | triproxy_imap::State::LoginUser
                | triproxy_imap::State::LoginPassword
        )
    }

    fn poll_timeout(&self) -> Option<Instant> {
        triproxy_imap::Server::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure> {
        triproxy_imap::Server::handle_timeout(self, now).map(imap_failure)
    }

    fn handle_eof(&mut self) -> Option<FrontFailure> {
        triproxy_imap::Server::handle_eof(self).map(imap_failure)
    }

    fn handle_refused(&mut self, code: LogCode) {
        triproxy_imap::Server::handle_refused(self, code);
    }

    fn handle_connected(&mut self, now: Instant) {
        triproxy_imap::Server::handle_connected(self, now);
    }

    fn poll_upstream(&mut self) -> UpstreamStep {
        let send = self.poll_upstream_transmit();
        let done = self.is_established();
        let deadline = triproxy_imap::Server::poll_timeout(self);
        next_step(send, done, deadline, || {
            imap_failure(triproxy_imap::Server::handle_upstream_eof(self))
        })
    }

    fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        triproxy_imap::Server::handle_upstream_input(self, now, input).map_err(imap_failure)
    }

    fn handle_upstream_eof(&mut self) -> FrontFailure {
        imap_failure(triproxy_imap::Server::handle_upstream_eof(self))
    }
}

fn imap_failure(e: triproxy_imap::Error) -> FrontFailure {
    FrontFailure {
        code: LogCode(e.log_code()),
        reason: Reason::Imap(e),
    }
}

/// The SMTP proxy's adapter.
impl LoginFront for triproxy_smtp::Proxy {
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        let used = triproxy_smtp::Proxy::handle_input(self, now, input).map_err(smtp_failure)?;
        if self.is_done() && self.state() != triproxy_smtp::State::StartTls {
            // QUIT: over by the client's wish, logged as 0.
            return Err(FrontFailure {
                code: LogCode::SUCCESS,
                reason: Reason::ClientClosed,
            });
        }
        Ok(used)
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        triproxy_smtp::Proxy::poll_transmit(self)
    }

    fn poll_request(&mut self) -> Option<Asked> {
        Some(match self.poll_event()? {
            triproxy_smtp::Event::Connect(r) => {
                let (user, text) = match (&r.credentials, r.log_text) {
                    (Some(c), Some(text)) => (Some(c.user.clone()), text),
                    (_, text) => (None, text.unwrap_or_else(|| r.target.to_string())),
                };
                Asked::Request(login_request(r.target, text, user, None))
            }
            triproxy_smtp::Event::StartTls { port } => Asked::StartTls {
                port,
                default: None,
            },
        })
    }

    fn wants_input(&self) -> bool {
        matches!(
            self.state(),
            triproxy_smtp::State::Command
                | triproxy_smtp::State::LoginUser
                | triproxy_smtp::State::LoginPassword
                | triproxy_smtp::State::PlainResponse
        )
    }

    fn poll_timeout(&self) -> Option<Instant> {
        triproxy_smtp::Proxy::poll_timeout(self)
    }

    fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure> {
        triproxy_smtp::Proxy::handle_timeout(self, now).map(smtp_failure)
    }

    fn handle_eof(&mut self) -> Option<FrontFailure> {
        Some(smtp_failure(triproxy_smtp::Proxy::handle_eof(self)))
    }

    fn handle_refused(&mut self, code: LogCode) {
        triproxy_smtp::Proxy::handle_refused(self, code);
    }

    fn handle_connected(&mut self, now: Instant) {
        triproxy_smtp::Proxy::handle_connected(self, now);
    }

    fn poll_upstream(&mut self) -> UpstreamStep {
        let send = self.poll_upstream_transmit();
        // After STARTTLS the client speaks TLS to the server directly (3proxy's hand-off
        // to its TLS proxy): nothing to negotiate.
        let done = self.is_established() || self.state() == triproxy_smtp::State::StartTls;
        let deadline = triproxy_smtp::Proxy::poll_timeout(self);
        next_step(send, done, deadline, || {
            smtp_failure(triproxy_smtp::Proxy::handle_upstream_eof(self))
        })
    }

    fn handle_upstream_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        triproxy_smtp::Proxy::handle_upstream_input(self, now, input).map_err(smtp_failure)
    }

    fn handle_upstream_eof(&mut self) -> FrontFailure {
        smtp_failure(triproxy_smtp::Proxy::handle_upstream_eof(self))
    }
}

fn smtp_failure(e: triproxy_smtp::Error) -> FrontFailure {
    FrontFailure {
        code: LogCode(e.log_code()),
        reason: Reason::Smtp(e),
    }
}
