//! The sans-IO machine for the client side of HTTP CONNECT (RFC 9110 section 9.3.6):
//! opening a tunnel through an HTTP proxy, for an application or as 3proxy's
//! `parent ... connect` and `connect+` hops do. The crate's `blocking` and `futures`
//! features add small drivers over sockets.
//!
//! [`ConnectClient::new`] builds and queues the request at once:
//!
//! ```text
//! CONNECT host:port HTTP/1.1\r\n
//! Host: host:port\r\n
//! Proxy-Authorization: Basic base64(user:pass)\r\n      (only with credentials)
//! \r\n
//! ```
//!
//! The machine then reads the proxy's response head and reports the outcome as a
//! [`ConnectEvent`]. Like the SOCKS machines it does not buffer: [`ConnectClient::handle_input`]
//! returns how many bytes it consumed (0 while the head is incomplete: the driver keeps the
//! bytes and presents them again with more), and the bytes after the head (the target's
//! first data) are never consumed.
//!
//! Limits: a response head must be complete within [`MAX_RESPONSE_HEAD`] bytes and carry at
//! most [`MAX_RESPONSE_HEADERS`] header fields. Interim 1xx responses (RFC 9110 section
//! 15.2) are read and skipped, each under the same limits; the header fields of the final
//! response are not interpreted (a client ignores `Content-Length` and `Transfer-Encoding`
//! in a 2xx answer to CONNECT, RFC 9110 section 9.3.6).
//!
//! It is not a chain planner (one machine speaks to one proxy; the session engine builds
//! chains hop by hop), does not resolve names, and does not read or relay a refusal's body.

use crate::error::{ConnectError, CredentialField, HeadError};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use core::fmt::{self, Write as _};
use core::time::Duration;
use std::net::{Ipv6Addr, SocketAddr};
use std::time::Instant;
use triproxy_wire::TargetAddr;

/// Longest response head the machine accepts, in bytes, counted from the first byte of the
/// status line (or of the blank lines before it) to the end of the empty line that closes
/// the head. An incomplete head of this size or more is
/// [`HeadError::TooLarge`] (code 32), so a proxy cannot make the driver hold an unbounded
/// amount of input. A CONNECT reply is normally a status line and a few fields, well under
/// 1 KiB; 8 KiB is the common limit of HTTP implementations for a head.
pub const MAX_RESPONSE_HEAD: usize = 8192;

/// Most header fields a response head may carry ([`HeadError::TooManyHeaders`] beyond).
/// httparse needs a slot for each; 100 slots are 3.2 KiB of stack while a head is parsed.
pub const MAX_RESPONSE_HEADERS: usize = 100;

/// A user name and password for `Proxy-Authorization: Basic` (RFC 7617).
///
/// Checked by [`ConnectClient::new`]: the user name may not contain a colon, neither may
/// contain a control character (0x00-0x1F, 0x7F). Both are sent as they are (no charset
/// conversion) and may be empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user-id.
    pub username: Vec<u8>,
    /// The password.
    pub password: Vec<u8>,
}

impl Credentials {
    /// The `Proxy-Authorization: Basic` field line (RFC 7617) for these credentials, CRLF
    /// included, as a forwarded request to an HTTP parent proxy carries it; None for
    /// credentials [`ConnectClient::new`] would refuse (a colon in the user name, a control
    /// character).
    ///
    /// ```
    /// use triproxy_http::Credentials;
    /// let c = Credentials::new("Aladdin", "open sesame");
    /// assert_eq!(
    ///     c.proxy_authorization().unwrap(),
    ///     b"Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"
    /// );
    /// assert!(Credentials::new("a:b", "c").proxy_authorization().is_none());
    /// ```
    pub fn proxy_authorization(&self) -> Option<Vec<u8>> {
        self.check().ok()?;
        let mut userpass = Vec::with_capacity(self.username.len() + 1 + self.password.len());
        userpass.extend_from_slice(&self.username);
        userpass.push(b':');
        userpass.extend_from_slice(&self.password);
        let mut field = String::from("Proxy-Authorization: Basic ");
        BASE64.encode_string(&userpass, &mut field);
        field.push_str("\r\n");
        Some(field.into_bytes())
    }

    /// Copies a user name and password.
    ///
    /// ```
    /// use triproxy_http::Credentials;
    /// let c = Credentials::new("alice", "secret");
    /// assert_eq!(c.username, b"alice");
    /// ```
    pub fn new(username: impl Into<Vec<u8>>, password: impl Into<Vec<u8>>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The first byte that Basic authentication cannot carry, and where it is.
    fn check(&self) -> Result<(), ConnectError> {
        let bad_user = self
            .username
            .iter()
            .find(|&&b| b == b':' || is_ctl(b))
            .map(|&byte| (CredentialField::Username, byte));
        let bad_pass = self
            .password
            .iter()
            .find(|&&b| is_ctl(b))
            .map(|&byte| (CredentialField::Password, byte));
        match bad_user.or(bad_pass) {
            Some((field, byte)) => Err(ConnectError::InvalidCredentials { field, byte }),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .finish()
    }
}

/// What to ask the proxy for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectConfig {
    /// The destination: an IP address (3proxy `connect`) or a name (`connect+`). IPv6
    /// addresses are sent bracketed (`[2001:db8::1]:443`), without a zone index; a name
    /// that is an IPv6 literal is bracketed too.
    pub target: TargetAddr,
    /// Sent as `Proxy-Authorization: Basic` when present.
    pub credentials: Option<Credentials>,
    /// Time allowed from [`ConnectClient::new`] to the final response head (3proxy's CHAIN
    /// timeout, 60 s by default).
    pub timeout: Duration,
}

/// What the proxy answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectEvent {
    /// A 2xx response: the tunnel is open, further bytes are the target's.
    Established,
    /// A final response other than 2xx (407 when the proxy wants credentials, 403, 502,
    /// ...). The machine is closed. For a log code use [`ConnectError::Refused`] with this
    /// status (code 33).
    Refused {
        /// The status code.
        status: u16,
    },
}

/// Where the machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectState {
    /// Request queued or sent; waiting for the final response head.
    AwaitingReply,
    /// Done: the driver relays; further bytes are the target's.
    Established,
    /// Failed or refused.
    Closed,
}

/// The client side of one HTTP CONNECT exchange. See the [module documentation](self).
#[derive(Debug)]
pub struct ConnectClient {
    target: TargetAddr,
    state: ConnectState,
    deadline: Option<Instant>,
    request: Option<Vec<u8>>,
    event: Option<ConnectEvent>,
}

impl ConnectClient {
    /// A machine that starts talking at `now`; the request is queued at once.
    ///
    /// Fails, without queueing anything, with [`ConnectError::InvalidCredentials`] for a
    /// user name with a colon or credentials with a control character, and with
    /// [`ConnectError::InvalidHost`] for a target name that cannot appear in a request
    /// target (see there). Both are code 31.
    pub fn new(now: Instant, config: ConnectConfig) -> Result<Self, ConnectError> {
        let request = build_request(&config)?;
        Ok(ConnectClient {
            deadline: now.checked_add(config.timeout),
            target: config.target,
            state: ConnectState::AwaitingReply,
            request: Some(request),
            event: None,
        })
    }

    /// Feeds bytes from the proxy; returns how many were consumed: 0 while the response
    /// head is incomplete, otherwise exactly the length of the head (plus any interim 1xx
    /// heads before it). Stops consuming after the final head: the remaining bytes belong
    /// to the tunnel (after a 2xx) or to a refusal's body (which nobody reads). On `Err`
    /// the state is Closed.
    ///
    /// `now` is not used today; it keeps the shape of every machine's input.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, ConnectError> {
        let _ = now;
        let mut used = 0;
        while self.state == ConnectState::AwaitingReply {
            let rest = input.get(used..).unwrap_or_default();
            match self.on_head(rest) {
                Ok(0) => break,
                Ok(n) => used += n,
                Err(e) => {
                    self.state = ConnectState::Closed;
                    return Err(e);
                }
            }
        }
        Ok(used)
    }

    /// The request, once. It is one `Vec` rather than a `triproxy_wire::Transmit`: a name
    /// target appears twice (request line and `Host`) and Basic credentials have no cap,
    /// so the request can exceed `Transmit`'s 528 bytes; it is built once per connection,
    /// at its exact size, and handed over without a copy.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.request.take()
    }

    /// The outcome to act on, once.
    pub fn poll_event(&mut self) -> Option<ConnectEvent> {
        self.event.take()
    }

    /// The deadline for the final response head, while it is awaited; None once
    /// Established or Closed (or if `now + timeout` does not fit in an `Instant`).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnectState::AwaitingReply => self.deadline,
            ConnectState::Established | ConnectState::Closed => None,
        }
    }

    /// If the head is awaited and `now` is at or past the deadline: Closed, and the error
    /// to log ([`ConnectError::Timeout`], code 32). Otherwise None.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<ConnectError> {
        if now < self.poll_timeout()? {
            return None;
        }
        self.state = ConnectState::Closed;
        Some(ConnectError::Timeout)
    }

    /// The proxy closed the connection. If the head was still awaited: Closed, and the
    /// error to log ([`ConnectError::Closed`], code 34). Otherwise None.
    pub fn handle_eof(&mut self) -> Option<ConnectError> {
        if self.state != ConnectState::AwaitingReply {
            return None;
        }
        self.state = ConnectState::Closed;
        Some(ConnectError::Closed)
    }

    /// Where the machine is.
    pub fn state(&self) -> ConnectState {
        self.state
    }

    /// The destination asked for.
    pub fn target(&self) -> &TargetAddr {
        &self.target
    }

    /// Reads one response head from the front of `buf`: 0 if it is incomplete.
    fn on_head(&mut self, buf: &[u8]) -> Result<usize, ConnectError> {
        let malformed = |reason| ConnectError::Malformed { reason };
        let window = buf.get(..MAX_RESPONSE_HEAD).unwrap_or(buf);
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response
            .parse(window)
            .map_err(|e| malformed(HeadError::from_httparse(e)))?;
        let httparse::Status::Complete(len) = parsed else {
            if window.len() >= MAX_RESPONSE_HEAD {
                return Err(malformed(HeadError::TooLarge));
            }
            return Ok(0);
        };
        match response.code {
            // Interim (100 Continue, 102, 103 Early Hints): skip it, wait for the final one.
            Some(status @ 100..=199) if status != 101 => {}
            Some(200..=299) => {
                self.state = ConnectState::Established;
                self.event = Some(ConnectEvent::Established);
            }
            // 101 Switching Protocols is no tunnel for CONNECT.
            Some(status @ 101..=599) => {
                self.state = ConnectState::Closed;
                self.event = Some(ConnectEvent::Refused { status });
            }
            _ => return Err(malformed(HeadError::Status)),
        }
        Ok(len)
    }
}

/// RFC 5234 CTL: 0x00-0x1F and 0x7F.
pub(crate) fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// RFC 3986 section 3.2.2 `reg-name` bytes: unreserved, sub-delims and `%`.
pub(crate) fn is_reg_name(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'%'
        )
}

/// `host:port` for the request line and `Host`.
fn authority(target: &TargetAddr) -> Result<String, ConnectError> {
    // A 255-byte name, ":65535"; an IPv6 address is at most 45 characters plus brackets.
    let mut out = String::with_capacity(triproxy_wire::MAX_DOMAIN_LEN + 8);
    // Writing to a String cannot fail.
    let _ = match target {
        TargetAddr::Ip(SocketAddr::V4(sa)) => write!(out, "{}:{}", sa.ip(), sa.port()),
        // The zone index is local to this host, meaningless to the parent: left out.
        TargetAddr::Ip(SocketAddr::V6(sa)) => write!(out, "[{}]:{}", sa.ip(), sa.port()),
        TargetAddr::Domain(name, port) => {
            let bytes = name.as_bytes();
            let text = name.as_str().unwrap_or_default();
            if text.parse::<Ipv6Addr>().is_ok() {
                out.push('[');
                out.push_str(text);
                out.push(']');
            } else if let Some(&byte) = bytes.iter().find(|&&b| !is_reg_name(b)) {
                return Err(ConnectError::InvalidHost { byte });
            } else {
                out.extend(bytes.iter().map(|&b| char::from(b)));
            }
            write!(out, ":{port}")
        }
    };
    Ok(out)
}

/// The whole request for `config`, at its exact size.
fn build_request(config: &ConnectConfig) -> Result<Vec<u8>, ConnectError> {
    let authority = authority(&config.target)?;
    if let Some(c) = &config.credentials {
        c.check()?;
    }
    let mut userpass = Vec::new();
    if let Some(c) = &config.credentials {
        userpass.reserve_exact(c.username.len() + 1 + c.password.len());
        userpass.extend_from_slice(&c.username);
        userpass.push(b':');
        userpass.extend_from_slice(&c.password);
    }
    const LINE: &str = "CONNECT ";
    const VERSION: &str = " HTTP/1.1\r\nHost: ";
    const AUTH: &str = "Proxy-Authorization: Basic ";
    let auth_len = match config.credentials {
        Some(_) => AUTH.len() + userpass.len().div_ceil(3) * 4 + 2,
        None => 0,
    };
    let mut req =
        String::with_capacity(LINE.len() + VERSION.len() + 2 * authority.len() + 2 + auth_len + 2);
    req.push_str(LINE);
    req.push_str(&authority);
    req.push_str(VERSION);
    req.push_str(&authority);
    req.push_str("\r\n");
    if config.credentials.is_some() {
        req.push_str(AUTH);
        BASE64.encode_string(&userpass, &mut req);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    Ok(req.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use triproxy_wire::{DomainName, LogCode};

    #[allow(clippy::disallowed_methods)] // tests need some instant to start from
    fn t0() -> Instant {
        Instant::now()
    }

    fn config(target: TargetAddr, credentials: Option<Credentials>) -> ConnectConfig {
        ConnectConfig {
            target,
            credentials,
            timeout: Duration::from_secs(60),
        }
    }

    fn ip(s: &str) -> TargetAddr {
        TargetAddr::Ip(s.parse().unwrap())
    }

    fn name(n: &[u8], port: u16) -> TargetAddr {
        TargetAddr::Domain(DomainName::new(n).unwrap(), port)
    }

    fn request(target: TargetAddr, credentials: Option<Credentials>) -> Vec<u8> {
        let mut c = ConnectClient::new(t0(), config(target, credentials)).unwrap();
        let req = c.poll_transmit().unwrap();
        assert_eq!(c.poll_transmit(), None, "the request is sent once");
        req
    }

    #[test]
    fn request_bytes() {
        assert_eq!(
            request(ip("192.0.2.7:80"), None),
            b"CONNECT 192.0.2.7:80 HTTP/1.1\r\nHost: 192.0.2.7:80\r\n\r\n"
        );
        assert_eq!(
            request(ip("[::1]:80"), None),
            b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
        );
        assert_eq!(
            request(ip("[fe80::1%3]:443"), None),
            b"CONNECT [fe80::1]:443 HTTP/1.1\r\nHost: [fe80::1]:443\r\n\r\n"
        );
        assert_eq!(
            request(name(b"example.org", 443), None),
            b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
        );
        assert_eq!(
            request(name(b"2001:db8::7", 22), None),
            b"CONNECT [2001:db8::7]:22 HTTP/1.1\r\nHost: [2001:db8::7]:22\r\n\r\n"
        );
        // RFC 7617 section 2's example: "Aladdin:open sesame".
        assert_eq!(
            request(
                name(b"example.org", 443),
                Some(Credentials::new("Aladdin", "open sesame"))
            ),
            &b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\
               Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"[..]
        );
    }

    #[test]
    fn request_capacity_is_exact() {
        for (user, pass) in [("", ""), ("a", ""), ("ab", "c"), ("abc", "defg")] {
            let cfg = config(
                name(&[b'x'; 255], 65535),
                Some(Credentials::new(user, pass)),
            );
            let req = build_request(&cfg).unwrap();
            assert_eq!(req.len(), req.capacity(), "{user}:{pass}");
        }
    }

    #[test]
    fn bad_credentials_and_hosts_are_refused() {
        let target = name(b"example.org", 443);
        for (user, pass, field, byte) in [
            ("a:b", "x", CredentialField::Username, b':'),
            ("a\r\nX: y", "x", CredentialField::Username, b'\r'),
            ("a", "p\nq", CredentialField::Password, b'\n'),
            ("a\0", "", CredentialField::Username, 0),
            ("a", "\x7f", CredentialField::Password, 0x7f),
        ] {
            let e = ConnectClient::new(
                t0(),
                config(target.clone(), Some(Credentials::new(user, pass))),
            )
            .unwrap_err();
            assert_eq!(e, ConnectError::InvalidCredentials { field, byte });
            assert_eq!(e.log_code(), LogCode(31));
        }
        // A colon in the password is fine (the first colon separates).
        assert!(
            ConnectClient::new(t0(), config(target, Some(Credentials::new("a", "b:c")))).is_ok()
        );
        for (host, byte) in [
            (&b"a.org\r\nX-Injected: 1"[..], b'\r'),
            (b"a b", b' '),
            (b"a:1", b':'),
            (b"user@host", b'@'),
            (b"[::1]", b'['),
            (b"a/b", b'/'),
            (b"\xc3\xa9.fr", 0xc3),
        ] {
            let e = ConnectClient::new(t0(), config(name(host, 80), None)).unwrap_err();
            assert_eq!(e, ConnectError::InvalidHost { byte });
            assert_eq!(e.log_code(), LogCode(31));
        }
    }

    fn client() -> ConnectClient {
        let mut c = ConnectClient::new(t0(), config(ip("192.0.2.7:80"), None)).unwrap();
        assert!(c.poll_transmit().is_some());
        c
    }

    #[test]
    fn established_consumes_exactly_the_head() {
        let mut c = client();
        let head = b"HTTP/1.1 200 Connection established\r\nX-Via: p\r\n\r\n";
        let mut input = head.to_vec();
        input.extend_from_slice(b"SSH-2.0-target\r\n");
        assert_eq!(c.handle_input(t0(), &input), Ok(head.len()));
        assert_eq!(c.poll_event(), Some(ConnectEvent::Established));
        assert_eq!(c.poll_event(), None);
        assert_eq!(c.state(), ConnectState::Established);
        assert_eq!(c.poll_timeout(), None);
        assert_eq!(c.handle_input(t0(), &input[head.len()..]), Ok(0));
        assert_eq!(c.handle_eof(), None);
    }

    #[test]
    fn http10_and_no_reason_phrase() {
        for head in [
            &b"HTTP/1.0 200 Connection established\r\n\r\n"[..],
            b"HTTP/1.1 200\r\n\r\n",
            b"HTTP/1.0 204 No Content\n\n",
            b"\r\nHTTP/1.1 299 Whatever\r\nContent-Length: 5\r\n\r\n",
        ] {
            let mut c = client();
            assert_eq!(c.handle_input(t0(), head), Ok(head.len()), "{head:?}");
            assert_eq!(c.poll_event(), Some(ConnectEvent::Established));
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut c = client();
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n\
                      HTTP/1.1 200 OK\r\n\r\ndata";
        assert_eq!(c.handle_input(t0(), input), Ok(input.len() - 4));
        assert_eq!(c.poll_event(), Some(ConnectEvent::Established));
        // Split after the first interim head: consumed, still waiting.
        let mut c = client();
        assert_eq!(c.handle_input(t0(), &input[..30]), Ok(25));
        assert_eq!(c.state(), ConnectState::AwaitingReply);
        assert_eq!(c.poll_event(), None);
    }

    #[test]
    fn refused_and_bad_status() {
        for status in [101u16, 301, 403, 407, 502, 599] {
            let mut c = client();
            let head = format!("HTTP/1.1 {status} No\r\nProxy-Authenticate: Basic\r\n\r\n");
            let mut input = head.clone().into_bytes();
            input.extend_from_slice(b"<html>body</html>");
            assert_eq!(c.handle_input(t0(), &input), Ok(head.len()));
            assert_eq!(c.poll_event(), Some(ConnectEvent::Refused { status }));
            assert_eq!(c.state(), ConnectState::Closed);
            assert_eq!(c.poll_timeout(), None);
            assert_eq!(ConnectError::Refused { status }.log_code(), LogCode(33));
        }
        for head in [&b"HTTP/1.1 000 x\r\n\r\n"[..], b"HTTP/1.1 600 x\r\n\r\n"] {
            let mut c = client();
            assert_eq!(
                c.handle_input(t0(), head),
                Err(ConnectError::Malformed {
                    reason: HeadError::Status
                })
            );
            assert_eq!(c.state(), ConnectState::Closed);
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for (input, reason) in [
            (&b"SSH-2.0-OpenSSH\r\n"[..], HeadError::Version),
            (b"HTTP/2 200\r\n\r\n", HeadError::Version),
            (b"HTTP/1.1 2x0 OK\r\n\r\n", HeadError::Status),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                HeadError::HeaderName,
            ),
            (
                b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
                HeadError::HeaderValue,
            ),
        ] {
            let mut c = client();
            let e = c.handle_input(t0(), input).unwrap_err();
            assert_eq!(e, ConnectError::Malformed { reason }, "{input:?}");
            assert_eq!(e.log_code(), LogCode(32));
            assert_eq!(c.state(), ConnectState::Closed);
            assert_eq!(c.handle_input(t0(), input), Ok(0));
            assert_eq!(c.handle_eof(), None);
        }
    }

    #[test]
    fn head_bound() {
        let big = |len: usize| {
            let mut h = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            h.resize(len - 4, b'a');
            h.extend_from_slice(b"\r\n\r\n");
            h
        };
        // Exactly MAX_RESPONSE_HEAD bytes: accepted, even with more bytes behind it.
        let mut head = big(MAX_RESPONSE_HEAD);
        head.extend_from_slice(b"tail");
        let mut c = client();
        assert_eq!(c.handle_input(t0(), &head), Ok(MAX_RESPONSE_HEAD));
        // One more: refused whole, and at the cap when incomplete.
        let too_big = big(MAX_RESPONSE_HEAD + 1);
        let mut c = client();
        assert_eq!(
            c.handle_input(t0(), &too_big),
            Err(ConnectError::Malformed {
                reason: HeadError::TooLarge
            })
        );
        let mut c = client();
        assert_eq!(
            c.handle_input(t0(), &too_big[..MAX_RESPONSE_HEAD - 1]),
            Ok(0)
        );
        assert_eq!(
            c.handle_input(t0(), &too_big[..MAX_RESPONSE_HEAD]),
            Err(ConnectError::Malformed {
                reason: HeadError::TooLarge
            })
        );
    }

    #[test]
    fn too_many_headers() {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..=MAX_RESPONSE_HEADERS {
            head.extend_from_slice(b"A: b\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut c = client();
        assert_eq!(
            c.handle_input(t0(), &head),
            Err(ConnectError::Malformed {
                reason: HeadError::TooManyHeaders
            })
        );
    }

    #[test]
    fn timeout_and_eof() {
        let now = t0();
        let mut c = ConnectClient::new(now, config(ip("192.0.2.7:80"), None)).unwrap();
        let deadline = now + Duration::from_secs(60);
        assert_eq!(c.poll_timeout(), Some(deadline));
        assert_eq!(c.handle_input(now, b"HTTP/1.1 200"), Ok(0));
        assert_eq!(c.handle_timeout(deadline - Duration::from_nanos(1)), None);
        assert_eq!(c.poll_timeout(), Some(deadline));
        let e = c.handle_timeout(deadline).unwrap();
        assert_eq!(e, ConnectError::Timeout);
        assert_eq!(e.log_code(), LogCode(32));
        assert_eq!(c.state(), ConnectState::Closed);
        assert_eq!(c.poll_timeout(), None, "the deadline moved on");
        assert_eq!(c.handle_timeout(deadline), None);

        let mut c = client();
        assert_eq!(c.handle_input(now, b"HTTP/1.1 200 OK\r\n"), Ok(0));
        let e = c.handle_eof().unwrap();
        assert_eq!(e, ConnectError::Closed);
        assert_eq!(e.log_code(), LogCode(34));
        assert_eq!(c.state(), ConnectState::Closed);
        assert_eq!(c.handle_eof(), None);
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let c = Credentials::new("alice", "secret");
        assert_eq!(
            format!("{c:?}"),
            "Credentials { username: \"alice\", password: <6 bytes> }"
        );
    }
}
