//! Plain HTTP forwarding on one client connection, sans-IO: the requests a client sends
//! through the proxy (`GET http://host/path`, any method but CONNECT), each forwarded to
//! its origin and answered with the origin's response, with persistent connections on
//! both sides (RFC 9112 section 9).
//!
//! [`Exchange`] holds the bytes in flight and decides what happens to each of them; the
//! driver only moves bytes between sockets and its buffers:
//!
//! - it reads the client into [`Exchange::client_space`] (then
//!   [`Exchange::handle_client_read`]) and the origin into [`Exchange::origin_space`];
//!   each returns `None` when the machine does not want those bytes now, which is how a
//!   slow reader back-pressures the other side: every buffer is bounded;
//! - it writes [`Exchange::to_origin`] and [`Exchange::to_client`] and reports what was
//!   written;
//! - it answers each [`ExchangeEvent::Request`] with [`Exchange::handle_route`] (an origin
//!   connection is ready: the machine queues the rewritten head) or
//!   [`Exchange::handle_refused`] (an error response, then close);
//! - it logs each [`ExchangeEvent::Done`] (one record per request) and keeps or drops the
//!   origin connection as the event says; an [`ExchangeEvent::Failed`] ends the
//!   connection once [`Exchange::to_client`] is written.
//!
//! What the machine does with the bytes: a request head is parsed and rewritten
//! ([`crate::forward::forward_request`]: origin form, `Host` first, hop-by-hop fields
//! dropped, `Via` added) and held until the driver routes it; a request body is scanned
//! ([`crate::body::BodyScanner`]) and passed on unchanged; the origin's response head is
//! rewritten ([`crate::forward::forward_response`]), 1xx responses are passed on and the
//! final response follows; its body is scanned and passed on. Requests are answered in
//! the order they came: the next pipelined head is parsed only once the previous exchange
//! is over.
//!
//! A client connection stays open after a response unless the client asked for the close
//! (`Connection: close`, HTTP/1.0), the response is delimited by the origin's close, or
//! the origin answered before the request body was complete; the response head then says
//! `Connection: close`. An origin connection may be kept (the driver pools it) when the
//! response says so, is framed, and both messages ended cleanly.
//!
//! Limits: request heads as [`crate::ProxyServer`] ([`MAX_REQUEST_HEAD`]), response heads
//! [`MAX_RESPONSE_HEAD`], bodies pass [`BODY_CHUNK`] bytes at a time: at most about two
//! chunks per direction are held. Deadlines: [`ExchangeConfig::head_timeout`] for each
//! request head (after the previous response, the keep-alive wait),
//! [`ExchangeConfig::idle_timeout`] while an exchange moves no byte, [`LINGER`] to drain a
//! client before closing on it.

mod buf;
mod failure;

use crate::body::{BodyScanner, Framing};
use crate::connect_client::Credentials;
use crate::forward::{forward_request, forward_response, Forward, ForwardError, MAX_RESPONSE_HEAD};
use crate::proxy_server::{Refusal, MAX_REQUEST_HEAD};
use crate::RequestError;
use buf::{pass, Buf, FIRST_ALLOCATION};
use core::fmt;
use core::time::Duration;
pub use failure::{ExchangeError, ExchangeFailure};
use std::collections::VecDeque;
use std::time::Instant;
use triproxy_wire::TargetAddr;

/// Body bytes taken from one side per read, and held per direction at most twice.
pub const BODY_CHUNK: usize = 32 * 1024;

/// How long a connection being closed after an error response is drained (its input read
/// and dropped) so that closing it does not reset the response away.
pub const LINGER: Duration = Duration::from_secs(2);

/// How an [`Exchange`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// This hop's name in `Via` (RFC 9110 section 7.6.3), for example `triproxy`.
    pub via: String,
    /// How long the client has for each request head, from the end of the previous
    /// exchange (3proxy's keep-alive wait).
    pub head_timeout: Duration,
    /// An exchange in which no byte moves for this long ends (504 if no response started).
    pub idle_timeout: Duration,
}

/// A request to route, reported with [`ExchangeEvent::Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExchangeRequest {
    /// The method as sent.
    pub method: String,
    /// The origin, from the URI (or `Host` for a transparent request).
    pub target: TargetAddr,
    /// `METHOD http://host/path` as 3proxy logs it (`%T`).
    pub text: String,
    /// The request's `Proxy-Authorization: Basic` credentials, if any.
    pub credentials: Option<Credentials>,
}

/// How the routed request is written to the connection the driver opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestForm {
    /// To the origin: `GET /path HTTP/1.1`.
    Origin,
    /// To an HTTP parent proxy: `GET http://host/path HTTP/1.1`.
    Absolute,
}

/// One request answered in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchanged {
    /// The final response's status.
    pub status: u16,
    /// Bytes passed to the origin (head and body).
    pub to_origin: u64,
    /// Bytes passed to the client (1xx and final heads, body).
    pub to_client: u64,
    /// Whether the origin connection may carry another request.
    pub origin_reusable: bool,
    /// Whether the client connection carries on (otherwise it closes once written).
    pub client_open: bool,
}

/// What the driver must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeEvent {
    /// Route it ([`Exchange::handle_route`]) or refuse it ([`Exchange::handle_refused`]).
    Request(Box<ExchangeRequest>),
    /// The exchange is over: log it, keep or drop the origin connection.
    Done(Exchanged),
    /// The exchange (or the wait for the next request) failed; the connection ends once
    /// [`Exchange::to_client`] is written. Bytes so far are in the failure.
    Failed(ExchangeFailure),
}

/// The response side of an exchange.
#[derive(Debug, Clone)]
enum Down {
    /// Waiting for a (1xx or final) response head.
    Head,
    /// Passing the final response's body.
    Body(BodyScanner),
    /// The response is complete.
    Done,
}

#[derive(Debug)]
enum Phase {
    /// Reading the next request head (deadline: its end).
    ReadingHead { deadline: Option<Instant> },
    /// A request was reported; waiting for the driver.
    Deciding(Box<Forward>),
    /// A routed request and its response are under way.
    Exchanging(Box<Flight>),
    /// Writing what is queued for the client (deadline: the idle timeout after the last
    /// write), then draining it until its end or the deadline ([`LINGER`] after the write
    /// shutdown).
    Closing {
        deadline: Option<Instant>,
        lingering: bool,
    },
    /// Over: the driver closes the connection.
    Closed,
}

/// The state of one routed exchange.
#[derive(Debug)]
struct Flight {
    /// The request body still being passed, or None once it is complete.
    up: Option<BodyScanner>,
    down: Down,
    request_was_head: bool,
    /// The origin sent its end of stream.
    origin_eof: bool,
    client_keep: bool,
    origin_reusable: bool,
    status: Option<u16>,
    to_origin: u64,
    to_client: u64,
    last_activity: Instant,
}

/// Plain HTTP forwarding on one client connection. See the [module documentation](self).
pub struct Exchange {
    config: ExchangeConfig,
    phase: Phase,
    client_in: Buf,
    to_origin: Buf,
    origin_in: Buf,
    to_client: Buf,
    /// The client sent its end of stream (it may still read the response).
    client_eof: bool,
    /// Whether [`Exchange::take_client_shutdown`] has a write shutdown to report.
    shutdown_due: bool,
    /// Where a partial request head was last searched for its end.
    head_scan: usize,
    events: VecDeque<ExchangeEvent>,
}

impl fmt::Debug for Exchange {
    /// Leaves out the bytes (they may hold credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("phase", &self.phase)
            .field("client_in", &self.client_in.len())
            .field("to_origin", &self.to_origin.len())
            .field("origin_in", &self.origin_in.len())
            .field("to_client", &self.to_client.len())
            .finish()
    }
}

impl Exchange {
    /// Takes over a client connection at `now` whose first bytes (a request head, as
    /// [`crate::ProxyServer::take_head`] gives it, and whatever followed it) are `input`.
    pub fn new(now: Instant, config: ExchangeConfig, input: Vec<u8>) -> Exchange {
        let deadline = now.checked_add(config.head_timeout);
        let mut exchange = Exchange {
            config,
            phase: Phase::ReadingHead { deadline },
            client_in: Buf::from_vec(input),
            to_origin: Buf::default(),
            origin_in: Buf::default(),
            to_client: Buf::default(),
            client_eof: false,
            shutdown_due: false,
            head_scan: 0,
            events: VecDeque::new(),
        };
        exchange.advance(now);
        exchange
    }

    /// Client bytes the driver read before the machine took the connection over (what
    /// followed the first head in the same read: a body, pipelined requests). Taken
    /// whatever the phase; a driver has at most one read buffer of them.
    pub fn push_client_input(&mut self, now: Instant, bytes: &[u8]) {
        if bytes.is_empty() || matches!(self.phase, Phase::Closing { .. } | Phase::Closed) {
            return;
        }
        self.client_in.extend(bytes);
        self.advance(now);
    }

    /// Room to read client bytes into, or None when the machine takes none now.
    pub fn client_space(&mut self) -> Option<&mut [u8]> {
        if self.client_eof {
            return None;
        }
        let (cap, first) = match &self.phase {
            Phase::ReadingHead { .. } => (MAX_REQUEST_HEAD, FIRST_ALLOCATION),
            Phase::Exchanging(f) if f.up.is_some() => (BODY_CHUNK, BODY_CHUNK),
            // Pipelined requests wait here, up to one head.
            Phase::Exchanging(_) => (MAX_REQUEST_HEAD, FIRST_ALLOCATION),
            // Drained and dropped.
            Phase::Closing { .. } => {
                self.client_in.clear();
                (BODY_CHUNK, FIRST_ALLOCATION)
            }
            Phase::Deciding(_) | Phase::Closed => return None,
        };
        self.client_in.space(cap, first)
    }

    /// `n` bytes were read into [`Exchange::client_space`] at `now`.
    pub fn handle_client_read(&mut self, now: Instant, n: usize) {
        if n == 0 {
            return self.handle_client_eof(now);
        }
        self.client_in.filled(n);
        self.touch(now);
        if matches!(self.phase, Phase::Closing { .. }) {
            self.client_in.clear();
            return;
        }
        self.advance(now);
    }

    /// The client sent its end of stream, or reading from it failed.
    pub fn handle_client_eof(&mut self, now: Instant) {
        self.client_eof = true;
        match &self.phase {
            Phase::ReadingHead { .. } if self.client_in.is_empty() => self.close_quietly(),
            Phase::ReadingHead { .. } => self.fail(now, ExchangeError::ClientClosedInHead, None),
            Phase::Deciding(_) => self.fail(now, ExchangeError::ClientClosed, None),
            Phase::Exchanging(f) if f.up.is_some() => {
                self.fail(now, ExchangeError::ClientClosed, None)
            }
            // The request is out: the response is still delivered, then the close.
            Phase::Exchanging(_) => self.advance(now),
            Phase::Closing { .. } => self.phase = Phase::Closed,
            Phase::Closed => {}
        }
    }

    /// Writing to the client failed: nothing more can reach it.
    pub fn handle_client_failed(&mut self, now: Instant) {
        self.to_client.clear();
        self.client_eof = true;
        if !matches!(self.phase, Phase::Closing { .. } | Phase::Closed) {
            self.fail(now, ExchangeError::ClientClosed, None);
        }
        self.phase = Phase::Closed;
    }

    /// Room to read origin bytes into, or None when the machine takes none now.
    pub fn origin_space(&mut self) -> Option<&mut [u8]> {
        let (cap, first) = match &self.phase {
            Phase::Exchanging(f) if f.origin_eof => return None,
            Phase::Exchanging(f) => match f.down {
                Down::Head => (MAX_RESPONSE_HEAD, FIRST_ALLOCATION),
                Down::Body(_) => (BODY_CHUNK, BODY_CHUNK),
                Down::Done => return None,
            },
            _ => return None,
        };
        self.origin_in.space(cap, first)
    }

    /// `n` bytes were read into [`Exchange::origin_space`] at `now`.
    pub fn handle_origin_read(&mut self, now: Instant, n: usize) {
        if n == 0 {
            return self.handle_origin_eof(now);
        }
        self.origin_in.filled(n);
        self.touch(now);
        self.advance(now);
    }

    /// The origin sent its end of stream, or reading from or writing to it failed.
    pub fn handle_origin_eof(&mut self, now: Instant) {
        let Phase::Exchanging(flight) = &mut self.phase else {
            return;
        };
        flight.origin_reusable = false;
        flight.origin_eof = true;
        match flight.down {
            Down::Head => self.fail(now, ExchangeError::OriginClosed, Some(Refusal::BadGateway)),
            // What the origin sent before its close still goes out first.
            Down::Body(_) => self.advance(now),
            Down::Done => {}
        }
    }

    /// The bytes to write to the origin now.
    pub fn to_origin(&self) -> &[u8] {
        self.to_origin.data()
    }

    /// `n` bytes of [`Exchange::to_origin`] were written at `now`.
    pub fn handle_origin_written(&mut self, now: Instant, n: usize) {
        self.to_origin.consume(n);
        self.touch(now);
        self.advance(now);
    }

    /// The bytes to write to the client now.
    pub fn to_client(&self) -> &[u8] {
        self.to_client.data()
    }

    /// `n` bytes of [`Exchange::to_client`] were written at `now`.
    pub fn handle_client_written(&mut self, now: Instant, n: usize) {
        self.to_client.consume(n);
        self.touch(now);
        self.advance(now);
    }

    /// True once, when the client connection must be shut down for writing: everything
    /// for it is written and the machine is closing (it still drains the client until
    /// its end of stream or the linger deadline).
    pub fn take_client_shutdown(&mut self) -> bool {
        core::mem::take(&mut self.shutdown_due)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ExchangeEvent> {
        self.events.pop_front()
    }

    /// Whether a routed exchange is under way (the driver's origin connection is in use).
    pub fn is_exchanging(&self) -> bool {
        matches!(self.phase, Phase::Exchanging(_))
    }

    /// Whether the connection is over: the driver closes it.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The reported request is routed: an origin (or, for [`RequestForm::Absolute`], an
    /// HTTP parent proxy) connection is ready. `extra_fields` (complete `Name: value\r\n`
    /// lines, such as `Forwarded` or a parent's `Proxy-Authorization`) are added to the
    /// head.
    pub fn handle_route(&mut self, now: Instant, form: RequestForm, extra_fields: &[u8]) {
        let Phase::Deciding(forward) = core::mem::replace(&mut self.phase, Phase::Closed) else {
            return;
        };
        let mut head = match form {
            RequestForm::Origin => forward.head.clone(),
            RequestForm::Absolute => forward.absolute_head(),
        };
        if !extra_fields.is_empty() {
            // The head ends with the empty line: the fields go before it.
            let at = head.len().saturating_sub(2);
            head.splice(at..at, extra_fields.iter().copied());
        }
        self.origin_in.clear();
        self.to_origin.extend(&head);
        let up = match forward.framing {
            Framing::Empty | Framing::Length(0) => None,
            other => Some(BodyScanner::new(other)),
        };
        self.phase = Phase::Exchanging(Box::new(Flight {
            up,
            down: Down::Head,
            request_was_head: forward.method == "HEAD",
            origin_eof: false,
            client_keep: forward.keep_alive,
            origin_reusable: false,
            status: None,
            to_origin: head.len() as u64,
            to_client: 0,
            last_activity: now,
        }));
        self.advance(now);
    }

    /// The reported request is refused: `refusal`'s response goes out and the connection
    /// closes (3proxy closes after a refusal too; a client sends credentials on a new
    /// connection).
    pub fn handle_refused(&mut self, now: Instant, refusal: Refusal) {
        if !matches!(self.phase, Phase::Deciding(_)) {
            return;
        }
        self.to_client.extend(refusal.response().as_bytes());
        self.start_closing(now);
    }

    /// Ends the connection at once, with no event and nothing more written (the driver
    /// stops it for a reason of its own, such as a spent traffic quota).
    pub fn abort(&mut self) {
        self.to_client.clear();
        self.to_origin.clear();
        self.phase = Phase::Closed;
    }

    /// The earliest moment [`Exchange::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::ReadingHead { deadline } | Phase::Closing { deadline, .. } => *deadline,
            Phase::Exchanging(f) => f.last_activity.checked_add(self.config.idle_timeout),
            Phase::Deciding(_) | Phase::Closed => None,
        }
    }

    /// Lets time pass.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_none_or(|t| now < t) {
            return;
        }
        match &self.phase {
            Phase::ReadingHead { .. } if self.client_in.is_empty() => {
                self.fail(now, ExchangeError::KeepAliveEnded, None)
            }
            Phase::ReadingHead { .. } => self.fail(now, ExchangeError::HeadTimeout, None),
            Phase::Exchanging(_) => {
                self.fail(now, ExchangeError::Idle, Some(Refusal::GatewayTimeout));
            }
            Phase::Closing { .. } => self.phase = Phase::Closed,
            Phase::Deciding(_) | Phase::Closed => {}
        }
    }

    /// Marks activity for the idle deadline.
    fn touch(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Exchanging(f) => f.last_activity = now,
            Phase::Closing {
                deadline,
                lingering: false,
            } => *deadline = now.checked_add(self.config.idle_timeout),
            _ => {}
        }
    }

    /// Does everything the buffered bytes allow.
    fn advance(&mut self, now: Instant) {
        loop {
            let progressed = match &self.phase {
                Phase::ReadingHead { .. } => self.read_head(now),
                Phase::Exchanging(_) => self.exchange(now),
                Phase::Closing { .. } => {
                    self.advance_closing(now);
                    false
                }
                Phase::Deciding(_) | Phase::Closed => false,
            };
            if !progressed {
                break;
            }
        }
    }

    /// Parses a complete request head, if one is buffered; true if the phase changed.
    fn read_head(&mut self, now: Instant) -> bool {
        let data = self.client_in.data();
        if data.is_empty() {
            return false;
        }
        // Parse only once an empty line may end the head (keeps byte-by-byte input
        // linear), or at the limit (for the error).
        let from = self.head_scan.saturating_sub(3);
        let window = data.get(from..).unwrap_or_default();
        let ended =
            window.windows(2).any(|w| w == b"\n\n") || window.windows(3).any(|w| w == b"\n\r\n");
        if !ended && data.len() < MAX_REQUEST_HEAD {
            self.head_scan = data.len();
            return false;
        }
        self.head_scan = 0;
        match forward_request(data, &self.config.via) {
            Ok(Some(forward)) => {
                self.client_in.consume(forward.head_len);
                self.events
                    .push_back(ExchangeEvent::Request(Box::new(ExchangeRequest {
                        method: forward.method.clone(),
                        target: forward.target.clone(),
                        text: forward.text.clone(),
                        credentials: forward.credentials.clone(),
                    })));
                self.phase = Phase::Deciding(Box::new(forward));
                true
            }
            Ok(None) if data.len() >= MAX_REQUEST_HEAD => {
                self.fail(
                    now,
                    ExchangeError::Request(ForwardError::Request(RequestError::TooLarge)),
                    Some(Refusal::BadRequest),
                );
                true
            }
            Ok(None) => {
                // Leading empty lines only: look past them next time.
                self.head_scan = self.client_in.len();
                false
            }
            Err(e) => {
                self.fail(now, ExchangeError::Request(e), Some(Refusal::BadRequest));
                true
            }
        }
    }

    /// One round of the routed exchange; true if the phase changed.
    fn exchange(&mut self, now: Instant) -> bool {
        let Phase::Exchanging(flight) = &mut self.phase else {
            return false;
        };
        // The request body, one chunk at a time into an empty output.
        if let Some(scanner) = flight.up.as_mut() {
            if self.to_origin.is_empty() && !self.client_in.is_empty() {
                match scanner.scan(self.client_in.data()) {
                    Ok(scanned) => {
                        flight.to_origin += scanned.used as u64;
                        pass(&mut self.client_in, &mut self.to_origin, scanned.used);
                        if scanned.complete {
                            flight.up = None;
                        }
                    }
                    Err(e) => {
                        self.fail(
                            now,
                            ExchangeError::RequestBody(e),
                            Some(Refusal::BadRequest),
                        );
                        return true;
                    }
                }
            }
        }
        // The response: heads as they complete, the body a chunk at a time.
        loop {
            match &mut flight.down {
                Down::Head => {
                    if self.origin_in.is_empty() {
                        break;
                    }
                    let parsed = forward_response(
                        self.origin_in.data(),
                        flight.request_was_head,
                        &self.config.via,
                    );
                    let response = match parsed {
                        Ok(Some(r)) => r,
                        Ok(None) => break,
                        Err(e) => {
                            self.fail(now, ExchangeError::Response(e), Some(Refusal::BadGateway));
                            return true;
                        }
                    };
                    self.origin_in.consume(response.head_len);
                    if response.status == 101 {
                        self.fail(
                            now,
                            ExchangeError::UnexpectedUpgrade,
                            Some(Refusal::BadGateway),
                        );
                        return true;
                    }
                    let mut head = response.head;
                    if (100..200).contains(&response.status) {
                        flight.to_client += head.len() as u64;
                        self.to_client.extend(&head);
                        continue;
                    }
                    flight.client_keep &= response.framing != Framing::UntilClose
                        && !self.client_eof
                        && flight.up.is_none();
                    flight.origin_reusable = response.reusable;
                    if !flight.client_keep {
                        let at = head.len().saturating_sub(2);
                        head.splice(at..at, b"Connection: close\r\n".iter().copied());
                    }
                    flight.status = Some(response.status);
                    flight.to_client += head.len() as u64;
                    self.to_client.extend(&head);
                    flight.down = match response.framing {
                        Framing::Empty | Framing::Length(0) => Down::Done,
                        other => Down::Body(BodyScanner::new(other)),
                    };
                }
                Down::Body(scanner) => {
                    if !self.to_client.is_empty() {
                        break;
                    }
                    if self.origin_in.is_empty() {
                        if !flight.origin_eof {
                            break;
                        }
                        match scanner.finish() {
                            Ok(()) => {
                                flight.down = Down::Done;
                                continue;
                            }
                            Err(e) => {
                                self.fail(now, ExchangeError::ResponseBody(e), None);
                                return true;
                            }
                        }
                    }
                    match scanner.scan(self.origin_in.data()) {
                        Ok(scanned) => {
                            flight.to_client += scanned.used as u64;
                            pass(&mut self.origin_in, &mut self.to_client, scanned.used);
                            if scanned.complete {
                                flight.down = Down::Done;
                            }
                        }
                        Err(e) => {
                            self.fail(now, ExchangeError::ResponseBody(e), None);
                            return true;
                        }
                    }
                }
                Down::Done => break,
            }
        }
        if !matches!(flight.down, Down::Done) {
            return false;
        }
        if flight.up.is_some() {
            // The origin answered before the whole request body came: the client's next
            // bytes cannot be told apart from this body's, so both connections end.
            flight.client_keep = false;
            flight.origin_reusable = false;
        }
        if !self.to_origin.is_empty() {
            return false;
        }
        let done = Exchanged {
            status: flight.status.unwrap_or(0),
            to_origin: flight.to_origin,
            to_client: flight.to_client,
            // Bytes after the response mean the origin is out of step: not reused.
            origin_reusable: flight.origin_reusable && self.origin_in.is_empty(),
            client_open: flight.client_keep && !self.client_eof,
        };
        self.events.push_back(ExchangeEvent::Done(done));
        self.origin_in.clear();
        self.origin_in.release();
        self.to_origin.release();
        if done.client_open {
            self.phase = Phase::ReadingHead {
                deadline: now.checked_add(self.config.head_timeout),
            };
            self.client_in.release();
        } else {
            self.start_closing(now);
        }
        true
    }

    /// Ends the connection for `error`, with `answer` if the response had not started.
    fn fail(&mut self, now: Instant, error: ExchangeError, answer: Option<Refusal>) {
        let (routed, status, to_origin, to_client) = match &self.phase {
            Phase::Exchanging(f) => (true, f.status, f.to_origin, f.to_client),
            _ => (false, None, 0, 0),
        };
        self.events
            .push_back(ExchangeEvent::Failed(ExchangeFailure {
                error,
                routed,
                status,
                to_origin,
                to_client,
            }));
        self.to_origin.clear();
        self.origin_in.clear();
        let answer = answer.filter(|_| status.is_none() && !self.client_eof);
        match answer {
            Some(refusal) => {
                self.to_client.extend(refusal.response().as_bytes());
                self.start_closing(now);
            }
            None => {
                self.to_client.clear();
                self.phase = Phase::Closed;
            }
        }
    }

    /// Goes to the closing phase at `now`: what is queued for the client goes out, then
    /// the linger.
    fn start_closing(&mut self, now: Instant) {
        self.phase = Phase::Closing {
            deadline: now.checked_add(self.config.idle_timeout),
            lingering: false,
        };
        self.advance_closing(now);
    }

    /// Once everything is written: the write shutdown and the linger (or the end, if the
    /// client has closed already).
    fn advance_closing(&mut self, now: Instant) {
        let Phase::Closing { lingering, .. } = self.phase else {
            return;
        };
        if lingering || !self.to_client.is_empty() {
            return;
        }
        if self.client_eof {
            self.phase = Phase::Closed;
        } else {
            self.shutdown_due = true;
            self.phase = Phase::Closing {
                deadline: now.checked_add(LINGER),
                lingering: true,
            };
        }
    }

    /// The client closed with nothing pending: the connection just ends.
    fn close_quietly(&mut self) {
        self.phase = Phase::Closed;
    }
}
