//! The sans-IO machine a proxy runs for one HTTP client (the front of 3proxy's `proxy`
//! service): it reads the request head, reports the request as a [`ProxyEvent`], and answers
//! with `200 Connection established` (RFC 9110 section 9.3.6) or an error response.
//!
//! One request per connection is read. The driver calls [`ProxyServer::handle_input`] with
//! what it read, then drains [`ProxyServer::poll_transmit`] and [`ProxyServer::poll_event`]
//! and arms a timer for [`ProxyServer::poll_timeout`]. A [`ProxyEvent::Request`] is
//! answered with [`ProxyServer::handle_granted`] (the tunnel is open: the driver relays) or
//! [`ProxyServer::handle_refused`] (an error response, then close). A request head the
//! machine cannot accept is answered by the machine itself (400, see [`RequestError`]).
//!
//! Unlike the SOCKS and CONNECT client machines, this one buffers: a request head can be
//! up to [`MAX_REQUEST_HEAD`] bytes and a driver's read buffer is smaller, so
//! `handle_input` copies everything it is given into its own buffer until the head is
//! complete, and then consumes exactly up to the empty line that ends it. Bytes after the
//! head (a client that sends its first tunnel data with the request) are not consumed and
//! stay with the driver. The buffer grows as bytes arrive, never beyond
//! [`MAX_REQUEST_HEAD`], and is freed once the head is parsed.
//!
//! What is understood (RFC 9112 section 3):
//!
//! - `CONNECT host:port` (authority-form). A missing port is 80, as in 3proxy.
//! - `METHOD http://host[:port]/path` (absolute-form) for any other method: reported with
//!   `connect: false`; the driver forwards it (see [`crate::exchange`], which takes over the
//!   connection with the head from [`ProxyServer::take_head`]). The port defaults to 80.
//! - `METHOD /path` (origin-form) with one `Host` field: a transparent request, reported
//!   like the absolute form with the destination from `Host`.
//! - Hosts: a bracketed IPv6 literal or a dotted IPv4 address become
//!   [`TargetAddr::Ip`], anything else of RFC 3986 `reg-name` bytes (at most 255; no
//!   percent-encoding) a [`TargetAddr::Domain`].
//! - `Proxy-Authorization: Basic` (RFC 7617): the first field with the Basic scheme gives
//!   [`ProxyRequest::credentials`]; fields with other schemes are ignored. Header names are
//!   compared without regard to case; no other field is interpreted.
//!
//! Limits: [`MAX_REQUEST_HEAD`] bytes for the whole head (empty lines before the request
//! line included), [`MAX_REQUEST_HEADERS`] fields, [`MAX_METHOD_LEN`] bytes of method. The
//! head must be complete within [`ProxyServerConfig::head_timeout`] of [`ProxyServer::new`].
//!
//! It is not a policy (it does not check credentials or decide who may go where), does not
//! resolve names, does not forward plain HTTP requests (no framing of bodies, no keep-alive)
//! and does not relay.

use crate::connect_client::{is_ctl, is_reg_name, Credentials};
use crate::error::{HeadError, RequestError};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use core::fmt::{self, Write as _};
use core::time::Duration;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;
use triproxy_wire::{DomainName, TargetAddr, Transmit};

/// Longest request head the machine accepts, in bytes: any empty lines before the request
/// line, the request line, the header fields and the empty line that ends the head. An
/// incomplete head of this size is [`RequestError::TooLarge`] (400, code 516). Browsers
/// send heads of a few hundred bytes to a few KiB (cookies go to the origin, not in a
/// CONNECT); 16 KiB is the bound the machine holds per connection while it reads.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// Most header fields a request head may carry (more is
/// [`RequestError::Malformed`] with [`HeadError::TooManyHeaders`], code 516). httparse
/// needs a slot for each; the slots (3.2 KiB) are allocated on the heap while a head is
/// parsed, not on the stack: connections run on small thread stacks whose deepest page
/// stays resident for the life of a tunnel.
pub const MAX_REQUEST_HEADERS: usize = 100;

/// The first bytes of a head that are parsed on every input while fewer have arrived (see
/// [`ProxyServer::handle_input`]): enough for the method and the start of the target, so
/// that input which is not HTTP at all gets its 400 at once. Costs at most this many
/// parses of at most this many bytes per connection.
const EARLY_PARSE_LEN: usize = 64;

/// Longest method token, in bytes ([`RequestError::MethodTooLong`] beyond, code 511).
/// The longest registered method (`BASELINE-CONTROL`, `VERSION-CONTROL`, RFC 3253) has 16.
pub const MAX_METHOD_LEN: usize = 32;

/// Size the head buffer starts with, on the first bytes: a CONNECT head with a host name
/// and Basic credentials fits.
const INITIAL_BUFFER: usize = 512;

/// What the machine answers when the request is granted (the status line 3proxy sends,
/// as HTTP/1.1; RFC 9110 section 9.3.6 gives 2xx to CONNECT no content).
const GRANTED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// How a [`ProxyServer`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyServerConfig {
    /// Time from [`ProxyServer::new`] (the accept) until the request head must be complete
    /// ([`RequestError::Timeout`], code 507, no answer). No deadline is reported once the
    /// head is read.
    pub head_timeout: Duration,
}

/// The request a client made, reported once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyRequest {
    /// True for CONNECT (an authority-form target: a tunnel is asked for). False for any
    /// other method with an absolute `http://` target (a plain HTTP request, which this
    /// machine only reports).
    pub connect: bool,
    /// The method token as sent (`"CONNECT"`, `"GET"`, ...), 1 to [`MAX_METHOD_LEN`]
    /// bytes of RFC 9110 `tchar`. Methods are case-sensitive: `connect` is not CONNECT.
    pub method: String,
    /// The destination. CONNECT: the `host[:port]` of the authority form, port 80 when
    /// missing (as 3proxy does). Otherwise the host and port of the `http://` URI (port 80
    /// by default). A bracketed IPv6 literal or a dotted-decimal IPv4 address is
    /// [`TargetAddr::Ip`]; anything else is a [`TargetAddr::Domain`] of 1 to 255 RFC 3986
    /// `reg-name` bytes other than `%` (percent-encoded hosts are refused), as sent (no
    /// case folding).
    pub target: TargetAddr,
    /// From the first `Proxy-Authorization: Basic` field (RFC 7617): the user before the
    /// first `:` of the decoded credentials, the password after it (which may contain `:`).
    /// None if there is no such field; fields with another scheme are ignored. Neither half
    /// contains a control character; the bytes are not required to be UTF-8.
    pub credentials: Option<Credentials>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
}

/// Something the driver must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyEvent {
    /// The client's request; answer with [`ProxyServer::handle_granted`] or
    /// [`ProxyServer::handle_refused`].
    Request(ProxyRequest),
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyState {
    /// Reading the request head; bytes are consumed as they arrive.
    ReadingHead,
    /// [`ProxyEvent::Request`] reported; waiting for granted or refused. Consumes nothing.
    AwaitingDecision,
    /// `200 Connection established` queued: the driver relays. Consumes nothing.
    Established,
    /// Failed or refused: the driver sends what is queued, then closes.
    Closed,
}

/// What the proxy answers instead of a tunnel. Each is one response with `Connection:
/// close` and a one-line `text/plain` body; the statuses are 3proxy's for the same causes
/// (see `triproxy_policy`'s mapping from log codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// 400 Bad Request.
    BadRequest,
    /// 403 Forbidden (denied by ACL).
    Forbidden,
    /// 407 Proxy Authentication Required, with `Proxy-Authenticate: Basic realm="proxy"`
    /// (RFC 9110 section 15.5.8).
    AuthRequired,
    /// 500 Internal Server Error.
    Internal,
    /// 501 Not Implemented (a method this proxy does not serve).
    NotImplemented,
    /// 502 Bad Gateway (target or parent unreachable, name not found, connect refused).
    BadGateway,
    /// 503 Service Unavailable (limits).
    Unavailable,
    /// 504 Gateway Timeout (connect timed out).
    GatewayTimeout,
}

impl Refusal {
    /// The HTTP status code.
    ///
    /// ```
    /// use triproxy_http::Refusal;
    /// assert_eq!(Refusal::AuthRequired.status(), 407);
    /// ```
    pub fn status(self) -> u16 {
        match self {
            Refusal::BadRequest => 400,
            Refusal::Forbidden => 403,
            Refusal::AuthRequired => 407,
            Refusal::Internal => 500,
            Refusal::NotImplemented => 501,
            Refusal::BadGateway => 502,
            Refusal::Unavailable => 503,
            Refusal::GatewayTimeout => 504,
        }
    }

    /// The reason phrase (RFC 9110 section 15) and the body.
    fn texts(self) -> (&'static str, &'static str) {
        match self {
            Refusal::BadRequest => ("Bad Request", "triproxy: bad request\n"),
            Refusal::Forbidden => ("Forbidden", "triproxy: forbidden by access rules\n"),
            Refusal::AuthRequired => (
                "Proxy Authentication Required",
                "triproxy: proxy authentication required\n",
            ),
            Refusal::Internal => ("Internal Server Error", "triproxy: internal error\n"),
            Refusal::NotImplemented => (
                "Not Implemented",
                "triproxy: method not implemented by this proxy\n",
            ),
            Refusal::BadGateway => (
                "Bad Gateway",
                "triproxy: host not found or connection failed\n",
            ),
            Refusal::Unavailable => ("Service Unavailable", "triproxy: limits exceeded\n"),
            Refusal::GatewayTimeout => (
                "Gateway Timeout",
                "triproxy: connection to the destination timed out\n",
            ),
        }
    }

    /// The whole response, in one transmit (the longest, 407, is under 200 bytes).
    pub(crate) fn response(self) -> Transmit {
        let (reason, body) = self.texts();
        let mut out = TransmitWriter(Transmit::new());
        // Every response fits (tested for each variant); a failed write would only
        // shorten it.
        let _ = write!(
            out,
            "HTTP/1.1 {} {reason}\r\nConnection: close\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n",
            self.status(),
            body.len()
        );
        if self == Refusal::AuthRequired {
            let _ = out.write_str("Proxy-Authenticate: Basic realm=\"proxy\"\r\n");
        }
        let _ = out.write_str("\r\n");
        let _ = out.write_str(body);
        out.0
    }
}

/// `fmt::Write` into a [`Transmit`].
struct TransmitWriter(Transmit);

impl fmt::Write for TransmitWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// The server side of one HTTP proxy connection, up to the decision. See the
/// [module documentation](self).
pub struct ProxyServer {
    state: ProxyState,
    deadline: Option<Instant>,
    /// The head so far, while [`ProxyState::ReadingHead`]; empty (no allocation) after.
    head: Vec<u8>,
    /// Index in `head` of the first byte that is not CR or LF (httparse skips empty lines
    /// before the request line), once there is one.
    content_start: Option<usize>,
    /// Whether `head` holds an empty line after content: only then can the head be
    /// complete, so only then is httparse run (once per input from then on).
    end_seen: bool,
    outbox: Option<Transmit>,
    event: Option<ProxyEvent>,
}

impl fmt::Debug for ProxyServer {
    /// Leaves out the buffered bytes (they may hold credentials).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyServer")
            .field("state", &self.state)
            .field("deadline", &self.deadline)
            .field("buffered", &self.head.len())
            .field("outbox", &self.outbox)
            .field("event", &self.event)
            .finish()
    }
}

impl ProxyServer {
    /// A machine for a connection accepted at `now`; the head is due at
    /// `now + config.head_timeout`.
    pub fn new(now: Instant, config: ProxyServerConfig) -> Self {
        ProxyServer {
            state: ProxyState::ReadingHead,
            deadline: now.checked_add(config.head_timeout),
            head: Vec::new(),
            content_start: None,
            end_seen: false,
            outbox: None,
            event: None,
        }
    }

    /// Feeds bytes from the client; returns how many were consumed.
    ///
    /// While the head is incomplete every byte is consumed (copied into the machine's
    /// buffer). The input that completes the head is consumed up to the end of the head
    /// only: the rest is the client's first tunnel data and stays with the driver. After
    /// the head (any state but [`ProxyState::ReadingHead`]) nothing is consumed.
    ///
    /// On `Err` the state is Closed and the answer, if the error has one
    /// ([`RequestError::refusal`]: 400 for all but timeout and eof), is queued for
    /// [`ProxyServer::poll_transmit`]. An incomplete head of [`MAX_REQUEST_HEAD`] bytes is
    /// [`RequestError::TooLarge`], so the machine never buffers more.
    ///
    /// `now` is not used: the deadline fires only through [`ProxyServer::handle_timeout`].
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, RequestError> {
        let _ = now;
        if self.state != ProxyState::ReadingHead || input.is_empty() {
            return Ok(0);
        }
        let old = self.head.len();
        let room = MAX_REQUEST_HEAD.saturating_sub(old);
        let taken = input.get(..room).unwrap_or(input);
        self.grow(old + taken.len());
        self.head.extend_from_slice(taken);
        // A head is parsed in full once an empty line may end it, which keeps byte-by-byte
        // input linear. Before that, while the head is young, its first EARLY_PARSE_LEN
        // bytes are parsed on every input: httparse checks a partial request line as far
        // as it goes, so bytes that cannot start a request (a SOCKS greeting, a TLS
        // ClientHello) are refused at once instead of after the head timeout. Only that
        // prefix, so the outcome does not depend on how the input was cut (a full parse
        // finds any error of the prefix too).
        let parsed = if self.may_be_complete(old) {
            parse_head(&self.head)
        } else if old < EARLY_PARSE_LEN {
            parse_head(self.head.get(..EARLY_PARSE_LEN).unwrap_or(&self.head))
        } else {
            Ok(None)
        };
        match parsed {
            Ok(Some((request, len))) => {
                if request.connect {
                    self.head = Vec::new();
                } else {
                    // Kept for the forwarding machine ([`ProxyServer::take_head`]).
                    self.head.truncate(len);
                }
                self.event = Some(ProxyEvent::Request(request));
                self.state = ProxyState::AwaitingDecision;
                // The bytes before this input held no complete head, so `len > old`.
                Ok(len.saturating_sub(old))
            }
            Ok(None) if self.head.len() >= MAX_REQUEST_HEAD => {
                Err(self.fail(RequestError::TooLarge))
            }
            Ok(None) => Ok(taken.len()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// The next bytes to write to the client: the `200` line after
    /// [`ProxyServer::handle_granted`], or one error response (after
    /// [`ProxyServer::handle_refused`] or an input error).
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.take()
    }

    /// The request, once.
    pub fn poll_event(&mut self) -> Option<ProxyEvent> {
        self.event.take()
    }

    /// The head deadline while the head is read; None after (and if `now + head_timeout`
    /// does not fit in an `Instant`).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ProxyState::ReadingHead => self.deadline,
            ProxyState::AwaitingDecision | ProxyState::Established | ProxyState::Closed => None,
        }
    }

    /// If the head is being read and `now` is at or past the deadline: Closed, nothing
    /// queued, and [`RequestError::Timeout`] (code 507) to log. Otherwise None.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<RequestError> {
        if now < self.poll_timeout()? {
            return None;
        }
        Some(self.fail(RequestError::Timeout))
    }

    /// The client closed its side. While the head is read: Closed, and
    /// [`RequestError::Closed`] (code 508) to log. While a decision is pending: Closed and
    /// None (the driver logs its own reason). Established and Closed stay as they are.
    pub fn handle_eof(&mut self) -> Option<RequestError> {
        match self.state {
            ProxyState::ReadingHead => Some(self.fail(RequestError::Closed)),
            ProxyState::AwaitingDecision => {
                self.state = ProxyState::Closed;
                None
            }
            ProxyState::Established | ProxyState::Closed => None,
        }
    }

    /// The tunnel is open: queues `HTTP/1.1 200 Connection established` and an empty line,
    /// and goes Established. Does nothing outside [`ProxyState::AwaitingDecision`].
    ///
    /// Meant for CONNECT requests. It does the same for a request with
    /// [`ProxyRequest::connect`] false, where it makes no sense: refuse those.
    pub fn handle_granted(&mut self) {
        if self.state != ProxyState::AwaitingDecision {
            return;
        }
        self.outbox = Transmit::from_slice(GRANTED).ok();
        self.state = ProxyState::Established;
    }

    /// Queues the error response for `refusal` and goes Closed. Does nothing outside
    /// [`ProxyState::AwaitingDecision`].
    pub fn handle_refused(&mut self, refusal: Refusal) {
        if self.state != ProxyState::AwaitingDecision {
            return;
        }
        self.outbox = Some(refusal.response());
        self.state = ProxyState::Closed;
    }

    /// The whole head of a request that is not CONNECT (empty otherwise, and after the
    /// first call): a driver that forwards plain HTTP hands it to the forwarding machine
    /// ([`crate::exchange::Exchange::new`]), which parses it again with the forwarding
    /// rules and takes the connection over.
    pub fn take_head(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.head)
    }

    /// Where the machine is.
    pub fn state(&self) -> ProxyState {
        self.state
    }

    /// Closes the machine for `e`, queueing its answer; returns `e`.
    fn fail(&mut self, e: RequestError) -> RequestError {
        self.head = Vec::new();
        self.state = ProxyState::Closed;
        self.outbox = e.refusal().map(Refusal::response);
        e
    }

    /// Makes room for `len` bytes in `head`: at least doubling, at most
    /// [`MAX_REQUEST_HEAD`] (`len` never exceeds it).
    fn grow(&mut self, len: usize) {
        let cap = self.head.capacity();
        if len <= cap {
            return;
        }
        let want = (cap * 2).max(INITIAL_BUFFER).max(len).min(MAX_REQUEST_HEAD);
        self.head
            .reserve_exact(want.saturating_sub(self.head.len()));
    }

    /// Whether `head` (of which the bytes from `old` on are new) holds an empty line after
    /// the first content byte, the necessary condition for a complete head. Looks at the
    /// new bytes and the two before them only, so byte-by-byte input costs linear time.
    fn may_be_complete(&mut self, old: usize) -> bool {
        if self.end_seen {
            return true;
        }
        let start = match self.content_start {
            Some(start) => start,
            None => {
                let new = self.head.get(old..).unwrap_or_default();
                let Some(at) = new.iter().position(|&b| b != b'\r' && b != b'\n') else {
                    return false;
                };
                self.content_start = Some(old + at);
                old + at
            }
        };
        let from = start.max(old.saturating_sub(2));
        let window = self.head.get(from..).unwrap_or_default();
        self.end_seen = window.iter().enumerate().any(|(i, &b)| {
            b == b'\n' && matches!(window.get(i + 1..), Some([b'\n', ..] | [b'\r', b'\n', ..]))
        });
        self.end_seen
    }
}

/// Parses a request head at the front of `buf`: the request and the head's length, or
/// None while it is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(ProxyRequest, usize)>, RequestError> {
    let malformed = |reason| RequestError::Malformed { reason };
    let mut slots = vec![httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(HeadError::from_httparse(e))),
    };
    // httparse sets all three on a complete parse.
    let (Some(method), Some(path), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(malformed(HeadError::Token));
    };
    if method.len() > MAX_METHOD_LEN {
        return Err(RequestError::MethodTooLong);
    }
    let connect = method == "CONNECT";
    let target = if connect {
        authority(path.as_bytes())?
    } else if path.starts_with('/') {
        // A transparent request: the destination is its one `Host` field.
        let mut hosts = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("host"));
        match (hosts.next(), hosts.next()) {
            (Some(host), None) => authority(host.value.trim_ascii())?,
            _ => return Err(RequestError::BadTarget),
        }
    } else {
        absolute_http(path)?
    };
    let mut credentials = None;
    for field in req.headers.iter() {
        if field.name.eq_ignore_ascii_case("proxy-authorization") {
            credentials = basic(field.value)?;
            if credentials.is_some() {
                break;
            }
        }
    }
    Ok(Some((
        ProxyRequest {
            connect,
            method: method.to_owned(),
            target,
            credentials,
            minor_version,
        },
        len,
    )))
}

/// The host and port of an absolute-form `http://authority[/path][?query]` target (RFC
/// 9112 section 3.2.2; the scheme is case-insensitive, RFC 3986 section 3.1).
pub(crate) fn absolute_http(target: &str) -> Result<TargetAddr, RequestError> {
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(RequestError::UnsupportedScheme);
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(RequestError::UnsupportedScheme);
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_port = rest.get(..end).unwrap_or_default();
    if host_port.is_empty() || host_port.contains('@') {
        return Err(RequestError::BadTarget);
    }
    authority(host_port.as_bytes())
}

/// `host[:port]` (RFC 3986 section 3.2.2 and 3.2.3), port 80 when there is no colon.
pub(crate) fn authority(text: &[u8]) -> Result<TargetAddr, RequestError> {
    if let Some(bracketed) = text.strip_prefix(b"[") {
        let close = bracketed
            .iter()
            .position(|&b| b == b']')
            .ok_or(RequestError::BadTarget)?;
        let (literal, after) = bracketed.split_at(close);
        let ip = core::str::from_utf8(literal)
            .ok()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
            .ok_or(RequestError::BadTarget)?;
        let port = match after.get(1..).unwrap_or_default() {
            [] => 80,
            [b':', digits @ ..] => port(digits)?,
            _ => return Err(RequestError::BadTarget),
        };
        return Ok(TargetAddr::Ip(SocketAddr::from((ip, port))));
    }
    let (host, port) = match text.iter().position(|&b| b == b':') {
        Some(colon) => {
            let (host, digits) = text.split_at(colon);
            (host, port(digits.get(1..).unwrap_or_default())?)
        }
        None => (text, 80),
    };
    // `%` (percent-encoding) is a reg-name byte, but no DNS name has one, and a component
    // that decoded it could turn `%0D%0A` into a line break: refused.
    if host.is_empty() || !host.iter().all(|&b| is_reg_name(b) && b != b'%') {
        return Err(RequestError::BadTarget);
    }
    // All bytes are ASCII here.
    if let Some(ip) = core::str::from_utf8(host)
        .ok()
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
    {
        return Ok(TargetAddr::Ip(SocketAddr::from((ip, port))));
    }
    let name = DomainName::new(host).map_err(|_| RequestError::BadTarget)?;
    Ok(TargetAddr::Domain(name, port))
}

/// 1 to 5 ASCII digits with a value in 1..=65535.
fn port(digits: &[u8]) -> Result<u16, RequestError> {
    if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::BadTarget);
    }
    let value = digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(RequestError::BadTarget),
    }
}

/// Base64 as RFC 7617 uses it (RFC 4648 section 4 alphabet), with or without padding: some
/// clients leave it out.
const BASIC_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A `Proxy-Authorization` value: Some for the Basic scheme (case-insensitive, RFC 9110
/// section 11.1), None for another scheme.
pub(crate) fn basic(value: &[u8]) -> Result<Option<Credentials>, RequestError> {
    let value = value.trim_ascii();
    let (scheme, token) = match value.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => value.split_at(i),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Ok(None);
    }
    let decoded = BASIC_BASE64
        .decode(token.trim_ascii())
        .map_err(|_| RequestError::BadCredentials)?;
    if decoded.iter().any(|&b| is_ctl(b)) {
        return Err(RequestError::BadCredentials);
    }
    let colon = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(RequestError::BadCredentials)?;
    let (username, password) = decoded.split_at(colon);
    Ok(Some(Credentials::new(
        username,
        password.get(1..).unwrap_or_default(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_forms() {
        let ip = |s: &str| Ok(TargetAddr::Ip(s.parse().unwrap()));
        let name = |n: &str, p| {
            Ok(TargetAddr::Domain(
                DomainName::new(n.as_bytes()).unwrap(),
                p,
            ))
        };
        assert_eq!(authority(b"example.org:443"), name("example.org", 443));
        assert_eq!(authority(b"example.org"), name("example.org", 80));
        assert_eq!(authority(b"192.0.2.1:8080"), ip("192.0.2.1:8080"));
        assert_eq!(authority(b"[::1]:443"), ip("[::1]:443"));
        assert_eq!(authority(b"[2001:db8::7]"), ip("[2001:db8::7]:80"));
        assert_eq!(authority(b"a:00443"), name("a", 443));
        assert_eq!(authority(b"a:65535"), name("a", 65535));
        // Not dotted-quad: a name (the resolver decides what it means).
        assert_eq!(authority(b"127.1:80"), name("127.1", 80));
        for bad in [
            &b""[..],
            b":80",
            b"a:",
            b"a:0",
            b"a:65536",
            b"a:123456",
            b"a:8o",
            b"a:+80",
            b"a:80:81",
            b"a b:80",
            b"u@a:80",
            b"a/b:80",
            b"[::1",
            b"[::1]x",
            b"[::1]:",
            b"[1.2.3.4]:80",
            b"[fe80::1%25eth0]:80",
            b"[v1.x]:80",
            b"\xc3\xa9:80",
            b"a\r\nX: y:80",
            b"a%0d%0a.org:80",
        ] {
            assert_eq!(authority(bad), Err(RequestError::BadTarget), "{bad:?}");
        }
        let long = [b'a'; 256];
        assert_eq!(authority(&long), Err(RequestError::BadTarget));
        assert_eq!(authority(&long[..255]).map(|t| t.port()), Ok(80));
    }

    #[test]
    fn absolute_forms() {
        let name = |n: &str, p| {
            Ok(TargetAddr::Domain(
                DomainName::new(n.as_bytes()).unwrap(),
                p,
            ))
        };
        assert_eq!(absolute_http("http://a.org/x"), name("a.org", 80));
        assert_eq!(absolute_http("HTTP://a.org:8080"), name("a.org", 8080));
        assert_eq!(absolute_http("http://a.org?q=1"), name("a.org", 80));
        assert_eq!(
            absolute_http("http://[::1]:81/"),
            Ok(TargetAddr::Ip("[::1]:81".parse().unwrap()))
        );
        for other in [
            "https://a.org/",
            "ftp://a.org/",
            "/path",
            "*",
            "a.org:80",
            "http:/a",
        ] {
            assert_eq!(
                absolute_http(other),
                Err(RequestError::UnsupportedScheme),
                "{other}"
            );
        }
        for bad in [
            "http:///x",
            "http://",
            "http://u:p@a.org/",
            "http://a.org:0/",
        ] {
            assert_eq!(absolute_http(bad), Err(RequestError::BadTarget), "{bad}");
        }
    }

    #[test]
    fn basic_credentials() {
        let creds = |u: &str, p: &str| Ok(Some(Credentials::new(u, p)));
        // RFC 7617 section 2.
        assert_eq!(
            basic(b"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
            creds("Aladdin", "open sesame")
        );
        assert_eq!(
            basic(b"  bAsIc \t QWxhZGRpbjpvcGVuIHNlc2FtZQ  "),
            creds("Aladdin", "open sesame")
        );
        assert_eq!(basic(b"Basic Og=="), creds("", ""));
        assert_eq!(basic(b"Bearer abc"), Ok(None));
        assert_eq!(basic(b"Basically YTpi"), Ok(None));
        for bad in [
            &b"Basic"[..],
            b"Basic ",
            b"Basic YWJj",      // "abc": no colon
            b"Basic YT!i",      // not base64
            b"Basic YTpi YTpi", // two tokens
            b"Basic YToNCmI=",  // "a:\r\nb"
        ] {
            assert_eq!(basic(bad), Err(RequestError::BadCredentials), "{bad:?}");
        }
    }

    #[allow(clippy::disallowed_methods)] // tests need some instant to start from
    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn buffer_never_outgrows_the_cap() {
        let mut s = ProxyServer::new(
            t0(),
            ProxyServerConfig {
                head_timeout: Duration::from_secs(1),
            },
        );
        let mut line = b"CONNECT a:1 HTTP/1.1\r\n".to_vec();
        line.resize(3000, b'x');
        for _ in 0..5 {
            assert!(s.handle_input(t0(), &line).is_ok());
            assert!(s.head.capacity() <= MAX_REQUEST_HEAD);
        }
        assert_eq!(s.handle_input(t0(), &line), Err(RequestError::TooLarge));
        assert_eq!(s.head.capacity(), 0);
    }
}
