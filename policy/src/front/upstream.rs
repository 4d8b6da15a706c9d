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
use super::{FrontFailure, FrontRequest, RequestKind, UpstreamStep};
use crate::reason::Reason;
use std::time::Instant;
use triproxy_wire::{LogCode, Transmit};

/// What the session needs of a proxy that logs in upstream. See the module documentation.
pub(crate) trait LoginFront: core::fmt::Debug + Send {
    /// Client bytes: how many were consumed, or the failure that ends the session (its
    /// error answer queued). A session the machine ended by itself (`QUIT`) is a failure
    /// with code 0.
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure>;
    /// The next bytes for the client.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// The client's request, once it named its server.
    fn poll_request(&mut self) -> Option<Box<FrontRequest>>;
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

/// A login front and the answer it is handing out in transmit-sized pieces.
#[derive(Debug)]
pub(crate) struct Chunked {
    pub(crate) machine: Box<dyn LoginFront>,
    out: Vec<u8>,
    sent: usize,
}

impl Chunked {
    pub(crate) fn new(machine: Box<dyn LoginFront>) -> Self {
        Chunked {
            machine,
            out: Vec::new(),
            sent: 0,
        }
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

/// A CONNECT request to `target`, with proxy credentials if the client gave some.
fn login_request(
    target: triproxy_wire::TargetAddr,
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

    fn poll_request(&mut self) -> Option<Box<FrontRequest>> {
        match self.poll_event()? {
            triproxy_pop3::Event::Request(r) => Some(login_request(
                r.target,
                r.log_text,
                Some(r.user),
                r.proxy.map(|p| (p.user, p.password)),
            )),
            // STLS before USER: the target would come from the TLS ClientHello's name,
            // which this version does not route; the client is refused.
            triproxy_pop3::Event::StartTls { .. } => None,
        }
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
        if let Some(bytes) = self.poll_upstream_transmit() {
            return UpstreamStep::Send(bytes);
        }
        if self.is_established() {
            return UpstreamStep::Established;
        }
        match triproxy_pop3::Server::poll_timeout(self) {
            Some(deadline) => UpstreamStep::Read(deadline),
            None => UpstreamStep::Failed(pop3_failure(triproxy_pop3::Error::ServerTimeout)),
        }
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
