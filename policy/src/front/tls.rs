//! The TLS SNI proxy front (3proxy `tlspr`) and `auto`'s first-byte choice.
//!
//! The TLS front peeks at the client's ClientHello without consuming it (the
//! `triproxy_tls` machine), so the hello reaches the server as the relay's first bytes,
//! unchanged. With `-c2` the server must answer with a ServerHello before the relay
//! starts: the hello is then taken (consumed) when the request is made, written to the
//! server in the upstream phase, and the server's first bytes are peeked the same way.
//!
//! `auto` (3proxy `auto.c`) waits for the client's first byte and becomes the SOCKS front
//! (4 or 5), the TLS front (0x16) or the HTTP proxy front (anything else).

use super::{Front, FrontFailure, FrontRequest, RequestKind, UpstreamStep};
use crate::reason::Reason;
use std::time::Instant;
use triproxy_http::{ProxyServer, ProxyServerConfig};
use triproxy_socks::server::{Server, ServerConfig};
use triproxy_tls::{Event, ProxyConfig, Sniffed, TlsProxy};
use triproxy_wire::{LogCode, Transmit};

/// The `tlspr` front. See the module documentation.
#[derive(Debug)]
pub(crate) struct TlsFront {
    machine: TlsProxy,
    /// `-c2`: the server's ServerHello is checked before the relay.
    check_server: bool,
    request: Option<Box<FrontRequest>>,
    /// `-c2`: the client's bytes taken with the request, and whether they were sent.
    hello: Option<(Vec<u8>, bool)>,
}

impl TlsFront {
    pub(crate) fn new(now: Instant, config: ProxyConfig) -> Self {
        let check_server = config.check == triproxy_tls::CheckLevel::RequireServerHello;
        TlsFront {
            machine: TlsProxy::new(now, config),
            check_server,
            request: None,
            hello: None,
        }
    }

    #[inline(never)]
    pub(crate) fn handle_input(
        &mut self,
        now: Instant,
        input: &[u8],
    ) -> Result<usize, FrontFailure> {
        self.machine.handle_input(now, input).map_err(tls_failure)?;
        let Some(Event::Request(r)) = self.machine.poll_event() else {
            return Ok(0);
        };
        self.request = Some(Box::new(FrontRequest {
            kind: RequestKind::Connect,
            target: r.target,
            user_id: None,
            credentials: None,
            method: None,
            text: Some(r.log_text),
        }));
        if self.check_server {
            self.hello = Some((input.to_vec(), false));
            return Ok(input.len());
        }
        Ok(0)
    }

    pub(crate) fn poll_request(&mut self) -> Option<Box<FrontRequest>> {
        self.request.take()
    }

    pub(crate) fn wants_input(&self) -> bool {
        self.machine.state() == triproxy_tls::proxy::State::ReadingHello
    }

    pub(crate) fn max_input(&self) -> usize {
        self.machine.max_peek()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Transmit> {
        self.machine.poll_transmit()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.machine.poll_timeout()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure> {
        self.machine.handle_timeout(now).map(tls_failure)
    }

    pub(crate) fn handle_eof(&mut self) -> Option<FrontFailure> {
        self.machine.handle_eof().map(tls_failure)
    }

    pub(crate) fn handle_refused(&mut self, code: LogCode) {
        self.machine.handle_refused(code);
    }

    pub(crate) fn has_upstream(&self) -> bool {
        self.check_server
    }

    pub(crate) fn handle_connected(&mut self, now: Instant) {
        self.machine.handle_connected(now);
    }

    pub(crate) fn poll_upstream(&mut self) -> UpstreamStep {
        if let Some((hello, sent)) = self.hello.as_mut() {
            if !*sent {
                *sent = true;
                return UpstreamStep::Send(std::mem::take(hello));
            }
        }
        if self.machine.is_established() {
            return UpstreamStep::Established;
        }
        match self.machine.poll_timeout() {
            Some(deadline) => UpstreamStep::Read(deadline),
            None => UpstreamStep::Failed(self.handle_upstream_eof()),
        }
    }

    pub(crate) fn handle_upstream_input(
        &mut self,
        now: Instant,
        input: &[u8],
    ) -> Result<usize, FrontFailure> {
        self.machine
            .handle_upstream_input(now, input)
            .map_err(tls_failure)
    }

    pub(crate) fn handle_upstream_eof(&mut self) -> FrontFailure {
        let e = self
            .machine
            .handle_upstream_eof()
            .unwrap_or(triproxy_tls::Error::ServerClosed { received: 0 });
        tls_failure(e)
    }
}

pub(crate) fn tls_failure(e: triproxy_tls::Error) -> FrontFailure {
    FrontFailure {
        code: e.log_code(),
        reason: Reason::Tls(e),
    }
}

/// `auto` before the client's first byte: what each choice would start with.
#[derive(Debug)]
pub(crate) struct Auto {
    pub(crate) socks: ServerConfig,
    pub(crate) http: ProxyServerConfig,
    pub(crate) tls: ProxyConfig,
    /// When the first byte is overdue (3proxy logs 801).
    pub(crate) deadline: Option<Instant>,
}

impl Auto {
    /// The front the first byte chooses.
    pub(crate) fn choose(&self, now: Instant, first: u8) -> Front {
        match triproxy_tls::sniff(first) {
            Sniffed::Socks => Front::Socks(Box::new(Server::new(now, self.socks))),
            Sniffed::Tls => Front::Tls(Box::new(TlsFront::new(now, self.tls.clone()))),
            Sniffed::Http => Front::Http(Box::new(ProxyServer::new(now, self.http))),
        }
    }

    /// No first byte in time: code 801.
    pub(crate) fn timeout(&self, now: Instant) -> Option<FrontFailure> {
        self.deadline.filter(|d| now >= *d).map(|_| FrontFailure {
            code: triproxy_tls::sniff::AUTO_NO_FIRST_BYTE,
            reason: Reason::NoFirstByte,
        })
    }
}
