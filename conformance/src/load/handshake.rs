//! The client half of opening a tunnel, as a sans-IO machine: SOCKS5 (with RFC 1929
//! username/password), SOCKS4 and HTTP CONNECT, or nothing at all for `direct`.
//!
//! SOCKS is spoken by `triproxy_socks::client::Client`, the same machine triproxy uses
//! for parent proxies; this module adds HTTP CONNECT (RFC 9110 section 9.3.6, with
//! `Proxy-Authorization: Basic`, RFC 7617) and one interface for both. The driver writes
//! [`Handshake::pending`], reports what it wrote with [`Handshake::sent`], feeds what it
//! reads to [`Handshake::handle_input`] (which never consumes bytes after the handshake:
//! they are the target's) and stops when [`Handshake::is_done`]. Timeouts are the
//! driver's job.
//!
//! It is a load generator's client, not a general one: targets are socket addresses (no
//! names), the HTTP response head is at most [`MAX_HTTP_HEAD`] bytes and any 2xx status
//! opens the tunnel.

use super::url::{ProxyUrl, Scheme};
use arrayvec::ArrayVec;
use core::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use triproxy_socks::client::{Client, ClientConfig, ClientEvent, ClientVersion, Command};
use triproxy_socks::ClientError;
use triproxy_wire::TargetAddr;

/// Largest request the tool sends (an HTTP CONNECT with 255-byte credentials is ~800).
pub const MAX_REQUEST: usize = 1024;
/// Largest HTTP response head accepted, status line and headers with the blank line.
pub const MAX_HTTP_HEAD: usize = 4096;

/// The handshake of one tunnel. See the [module documentation](self).
#[derive(Debug)]
pub struct Handshake {
    out: ArrayVec<u8, MAX_REQUEST>,
    kind: Kind,
    /// BND.ADDR / BND.PORT of a SOCKS success reply.
    bound: Option<TargetAddr>,
}

#[derive(Debug)]
enum Kind {
    Direct,
    Socks {
        client: Box<Client>,
        done: bool,
    },
    Http {
        head: Box<ArrayVec<u8, MAX_HTTP_HEAD>>,
        done: bool,
    },
}

/// Why a tunnel could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The SOCKS client machine failed (malformed reply, authentication rejected, ...).
    Socks(ClientError),
    /// The SOCKS proxy refused the request: SOCKS5 REP or SOCKS4 CD.
    SocksRefused {
        /// The reply byte.
        reply: u8,
    },
    /// The HTTP proxy answered with a non-2xx status.
    HttpStatus {
        /// The status code.
        code: u16,
    },
    /// The HTTP response head is not `HTTP/1.x NNN ...`.
    HttpMalformed,
    /// The HTTP response head is longer than [`MAX_HTTP_HEAD`].
    HttpHeadTooLong,
    /// The proxy closed the connection before the tunnel was open.
    Closed,
    /// The request does not fit in [`MAX_REQUEST`] bytes.
    RequestTooLong,
    /// A UDP association was asked of a proxy that is not SOCKS5.
    NotSocks5,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Socks(e) => write!(f, "SOCKS: {e}"),
            HandshakeError::SocksRefused { reply } => {
                write!(f, "SOCKS request refused with reply {reply}")
            }
            HandshakeError::HttpStatus { code } => write!(f, "HTTP CONNECT answered {code}"),
            HandshakeError::HttpMalformed => f.write_str("malformed HTTP response head"),
            HandshakeError::HttpHeadTooLong => {
                write!(f, "HTTP response head over {MAX_HTTP_HEAD} bytes")
            }
            HandshakeError::Closed => f.write_str("proxy closed before the tunnel opened"),
            HandshakeError::RequestTooLong => {
                write!(f, "request over {MAX_REQUEST} bytes")
            }
            HandshakeError::NotSocks5 => f.write_str("UDP ASSOCIATE needs a socks5:// proxy"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl Handshake {
    /// A handshake through `proxy` to `target`, started at `now`. `timeout` is passed to
    /// the SOCKS machine (the driver enforces its own as well).
    pub fn new(
        now: Instant,
        proxy: &ProxyUrl,
        target: SocketAddr,
        timeout: Duration,
    ) -> Result<Handshake, HandshakeError> {
        let mut out = ArrayVec::new();
        let kind = match proxy.scheme {
            Scheme::Direct => Kind::Direct,
            Scheme::Socks5 | Scheme::Socks4 => {
                let version = if proxy.scheme == Scheme::Socks5 {
                    ClientVersion::V5
                } else {
                    ClientVersion::V4
                };
                let client = Client::new(
                    now,
                    ClientConfig {
                        version,
                        credentials: proxy.credentials.clone(),
                        command: Command::Connect,
                        target: TargetAddr::Ip(target),
                        timeout,
                    },
                )
                .map_err(HandshakeError::Socks)?;
                let mut client = Box::new(client);
                drain_transmits(&mut client, &mut out)?;
                Kind::Socks {
                    client,
                    done: false,
                }
            }
            Scheme::Http => {
                write_connect_request(&mut out, proxy, target)?;
                Kind::Http {
                    head: Box::new(ArrayVec::new()),
                    done: false,
                }
            }
        };
        Ok(Handshake {
            out,
            kind,
            bound: None,
        })
    }

    /// A SOCKS5 UDP ASSOCIATE (RFC 1928 section 4, CMD X'03') through `proxy`, started at
    /// `now`, with DST 0.0.0.0:0: the client does not say where its datagrams will come
    /// from. When [`Handshake::is_done`], [`Handshake::bound`] is the relay's address.
    /// Only `socks5://` proxies can do this.
    pub fn udp_associate(
        now: Instant,
        proxy: &ProxyUrl,
        timeout: Duration,
    ) -> Result<Handshake, HandshakeError> {
        if proxy.scheme != Scheme::Socks5 {
            return Err(HandshakeError::NotSocks5);
        }
        let client = Client::new(
            now,
            ClientConfig {
                version: ClientVersion::V5,
                credentials: proxy.credentials.clone(),
                command: Command::UdpAssociate,
                target: TargetAddr::Ip(SocketAddr::from(([0, 0, 0, 0], 0))),
                timeout,
            },
        )
        .map_err(HandshakeError::Socks)?;
        let mut client = Box::new(client);
        let mut out = ArrayVec::new();
        drain_transmits(&mut client, &mut out)?;
        Ok(Handshake {
            out,
            kind: Kind::Socks {
                client,
                done: false,
            },
            bound: None,
        })
    }

    /// The address the SOCKS proxy bound (BND.ADDR / BND.PORT), once it granted the
    /// request; None for HTTP and direct.
    pub fn bound(&self) -> Option<&TargetAddr> {
        self.bound.as_ref()
    }

    /// Bytes to write to the proxy now (empty when there is nothing to send).
    pub fn pending(&self) -> &[u8] {
        &self.out
    }

    /// The first `n` bytes of [`Handshake::pending`] were written.
    pub fn sent(&mut self, n: usize) {
        let n = n.min(self.out.len());
        self.out.drain(..n);
    }

    /// Whether the tunnel is open (nothing more to read or write for the handshake).
    pub fn is_done(&self) -> bool {
        self.out.is_empty()
            && match &self.kind {
                Kind::Direct => true,
                Kind::Socks { done, .. } | Kind::Http { done, .. } => *done,
            }
    }

    /// Feeds bytes read from the proxy; answers how many were part of the handshake. The
    /// rest (after the handshake completed) belong to the target.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, HandshakeError> {
        match &mut self.kind {
            Kind::Direct => Ok(0),
            Kind::Socks { client, done } => {
                if *done {
                    return Ok(0);
                }
                let used = client
                    .handle_input(now, input)
                    .map_err(HandshakeError::Socks)?;
                drain_transmits(client, &mut self.out)?;
                while let Some(event) = client.poll_event() {
                    match event {
                        ClientEvent::Granted { bound: b } => {
                            self.bound = Some(b);
                            *done = true;
                        }
                        ClientEvent::BindPeer { .. } => {
                            *done = true;
                        }
                        ClientEvent::Refused { reply } => {
                            return Err(HandshakeError::SocksRefused {
                                reply: reply.to_u8(),
                            })
                        }
                    }
                }
                Ok(used)
            }
            Kind::Http { head, done } => {
                let mut used = 0;
                for &byte in input {
                    if *done {
                        break;
                    }
                    head.try_push(byte)
                        .map_err(|_| HandshakeError::HttpHeadTooLong)?;
                    used += 1;
                    if head.ends_with(b"\r\n\r\n") {
                        let code = parse_status_code(head)?;
                        if !(200..300).contains(&code) {
                            return Err(HandshakeError::HttpStatus { code });
                        }
                        *done = true;
                    }
                }
                Ok(used)
            }
        }
    }

    /// The proxy closed the connection: the error, unless the tunnel was already open.
    pub fn handle_eof(&mut self) -> Option<HandshakeError> {
        if self.is_done() {
            return None;
        }
        if let Kind::Socks { client, .. } = &mut self.kind {
            if let Some(e) = client.handle_eof() {
                return Some(HandshakeError::Socks(e));
            }
        }
        Some(HandshakeError::Closed)
    }
}

fn drain_transmits(
    client: &mut Client,
    out: &mut ArrayVec<u8, MAX_REQUEST>,
) -> Result<(), HandshakeError> {
    while let Some(t) = client.poll_transmit() {
        out.try_extend_from_slice(t.as_bytes())
            .map_err(|_| HandshakeError::RequestTooLong)?;
    }
    Ok(())
}

fn write_connect_request(
    out: &mut ArrayVec<u8, MAX_REQUEST>,
    proxy: &ProxyUrl,
    target: SocketAddr,
) -> Result<(), HandshakeError> {
    let mut push = |bytes: &[u8]| {
        out.try_extend_from_slice(bytes)
            .map_err(|_| HandshakeError::RequestTooLong)
    };
    // SocketAddr's Display brackets IPv6 addresses, as the authority form requires.
    let authority = target.to_string();
    push(b"CONNECT ")?;
    push(authority.as_bytes())?;
    push(b" HTTP/1.1\r\nHost: ")?;
    push(authority.as_bytes())?;
    push(b"\r\n")?;
    if let Some(c) = &proxy.credentials {
        let mut userpass = Vec::with_capacity(c.username.len() + 1 + c.password.len());
        userpass.extend_from_slice(&c.username);
        userpass.push(b':');
        userpass.extend_from_slice(&c.password);
        push(b"Proxy-Authorization: Basic ")?;
        push(base64(&userpass).as_bytes())?;
        push(b"\r\n")?;
    }
    push(b"\r\n")
}

/// The status code of a complete response head: `HTTP/1.x SP DIGIT DIGIT DIGIT (SP | CRLF)`.
fn parse_status_code(head: &[u8]) -> Result<u16, HandshakeError> {
    let rest = head
        .strip_prefix(b"HTTP/1.")
        .ok_or(HandshakeError::HttpMalformed)?;
    match rest {
        [minor, b' ', a, b, c, end, ..]
            if minor.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (*end == b' ' || *end == b'\r') =>
        {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(HandshakeError::HttpMalformed),
    }
}

/// Standard base64 with padding (RFC 4648 section 4).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |v: u32| char::from(ALPHABET[(v & 63) as usize]);
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(sextet(n >> 18));
        out.push(sextet(n >> 12));
        out.push(if chunk.len() > 1 { sextet(n >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    fn start(url: &str) -> Handshake {
        Handshake::new(
            Instant::now(),
            &ProxyUrl::parse(url).unwrap(),
            target(),
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn direct_is_done_at_once() {
        let mut h = start("direct");
        assert!(h.is_done());
        assert!(h.pending().is_empty());
        assert_eq!(h.handle_input(Instant::now(), b"xyz"), Ok(0));
        assert_eq!(h.handle_eof(), None);
    }

    #[test]
    fn socks5_without_auth() {
        let now = Instant::now();
        let mut h = start("socks5://127.0.0.1:1080");
        assert_eq!(h.pending(), &[5, 1, 0]);
        h.sent(3);
        assert!(!h.is_done());
        assert_eq!(h.handle_input(now, &[5, 0]), Ok(2));
        assert_eq!(h.pending(), &[5, 1, 0, 1, 127, 0, 0, 1, 0x0f, 0xa0]);
        h.sent(4);
        h.sent(100);
        // Reply plus one byte of the target's data: the extra byte is not consumed.
        let reply = [5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34, b'!'];
        assert_eq!(h.handle_input(now, &reply), Ok(10));
        assert!(h.is_done());
        assert_eq!(h.handle_eof(), None);
    }

    #[test]
    fn socks5_udp_associate_reports_the_relay() {
        let now = Instant::now();
        let proxy = ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap();
        let mut h = Handshake::udp_associate(now, &proxy, Duration::from_secs(1)).unwrap();
        assert_eq!(h.pending(), &[5, 1, 0]);
        h.sent(3);
        assert_eq!(h.handle_input(now, &[5, 0]), Ok(2));
        // CMD 3, DST 0.0.0.0:0 (RFC 1928 section 4).
        assert_eq!(h.pending(), &[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
        h.sent(10);
        assert_eq!(h.bound(), None);
        let reply = [5, 0, 0, 1, 127, 0, 0, 1, 0x12, 0x34];
        assert_eq!(h.handle_input(now, &reply), Ok(10));
        assert!(h.is_done());
        assert_eq!(
            h.bound().map(ToString::to_string).as_deref(),
            Some("127.0.0.1:4660")
        );
        for other in ["http://127.0.0.1:3128", "socks4://127.0.0.1:1080", "direct"] {
            let proxy = ProxyUrl::parse(other).unwrap();
            assert!(matches!(
                Handshake::udp_associate(now, &proxy, Duration::from_secs(1)),
                Err(HandshakeError::NotSocks5)
            ));
        }
    }

    #[test]
    fn socks5_with_auth_byte_by_byte() {
        let now = Instant::now();
        let mut h = start("socks5://bench:pw@127.0.0.1:1080");
        assert_eq!(h.pending(), &[5, 2, 0, 2]);
        h.sent(4);
        assert_eq!(h.handle_input(now, &[5]), Ok(0));
        assert_eq!(h.handle_input(now, &[5, 2]), Ok(2));
        assert_eq!(h.pending(), b"\x01\x05bench\x02pw");
        h.sent(10);
        assert_eq!(h.handle_input(now, &[1, 0]), Ok(2));
        assert_eq!(h.pending().len(), 10);
        h.sent(10);
        let reply = [5, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let mut fed = 0;
        for i in 1..=reply.len() {
            fed += h.handle_input(now, &reply[fed..i]).unwrap();
        }
        assert_eq!(fed, reply.len());
        assert!(h.is_done());
    }

    #[test]
    fn socks5_refusal_and_eof() {
        let now = Instant::now();
        let mut h = start("socks5://127.0.0.1:1080");
        h.sent(3);
        h.handle_input(now, &[5, 0]).unwrap();
        h.sent(10);
        assert_eq!(
            h.handle_input(now, &[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]),
            Err(HandshakeError::SocksRefused { reply: 5 })
        );
        let mut h = start("socks5://127.0.0.1:1080");
        h.sent(3);
        assert!(matches!(h.handle_eof(), Some(HandshakeError::Socks(_))));
        let mut h = start("socks5://127.0.0.1:1080");
        h.sent(3);
        assert!(matches!(
            h.handle_input(now, &[4, 0]),
            Err(HandshakeError::Socks(_))
        ));
    }

    #[test]
    fn socks4_connect() {
        let now = Instant::now();
        let mut h = start("socks4://127.0.0.1:1080");
        assert_eq!(h.pending(), &[4, 1, 0x0f, 0xa0, 127, 0, 0, 1, 0]);
        h.sent(9);
        assert_eq!(h.handle_input(now, &[0, 90, 0, 0, 0, 0, 0, 0]), Ok(8));
        assert!(h.is_done());
        let mut h = start("socks4://127.0.0.1:1080");
        h.sent(9);
        assert_eq!(
            h.handle_input(now, &[0, 91, 0, 0, 0, 0, 0, 0]),
            Err(HandshakeError::SocksRefused { reply: 91 })
        );
    }

    #[test]
    fn http_connect() {
        let now = Instant::now();
        let mut h = start("http://127.0.0.1:3128");
        assert_eq!(
            h.pending(),
            b"CONNECT 127.0.0.1:4000 HTTP/1.1\r\nHost: 127.0.0.1:4000\r\n\r\n"
        );
        let n = h.pending().len();
        h.sent(n);
        let answer = b"HTTP/1.0 200 Connection established\r\nProxy-agent: x\r\n\r\nDATA";
        assert_eq!(h.handle_input(now, &answer[..10]), Ok(10));
        assert!(!h.is_done());
        assert_eq!(h.handle_input(now, &answer[10..]), Ok(answer.len() - 14));
        assert!(h.is_done());
        assert_eq!(h.handle_input(now, b"more"), Ok(0));
    }

    #[test]
    fn http_connect_with_basic_auth() {
        let h = start("http://bench:bench@127.0.0.1:3128");
        let text = String::from_utf8(h.pending().to_vec()).unwrap();
        assert!(text.contains("\r\nProxy-Authorization: Basic YmVuY2g6YmVuY2g=\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        // The longest credentials still fit.
        let long = format!(
            "http://{}:{}@127.0.0.1:3128",
            "u".repeat(255),
            "p".repeat(255)
        );
        let h = start(&long);
        assert!(h.pending().len() <= MAX_REQUEST);
    }

    #[test]
    fn http_errors() {
        let now = Instant::now();
        for (answer, want) in [
            (
                &b"HTTP/1.1 403 Forbidden\r\n\r\n"[..],
                HandshakeError::HttpStatus { code: 403 },
            ),
            (
                &b"HTTP/1.1 2000 OK\r\n\r\n"[..],
                HandshakeError::HttpMalformed,
            ),
            (
                &b"SOCKS/1.1 200 OK\r\n\r\n"[..],
                HandshakeError::HttpMalformed,
            ),
            (&b"HTTP/1.1 20\r\n\r\n"[..], HandshakeError::HttpMalformed),
        ] {
            let mut h = start("http://127.0.0.1:3128");
            assert_eq!(h.handle_input(now, answer), Err(want));
        }
        let mut h = start("http://127.0.0.1:3128");
        let endless = vec![b'a'; MAX_HTTP_HEAD + 1];
        assert_eq!(
            h.handle_input(now, &endless),
            Err(HandshakeError::HttpHeadTooLong)
        );
        let mut h = start("http://127.0.0.1:3128");
        h.handle_input(now, b"HTTP/1.1 200").unwrap();
        assert_eq!(h.handle_eof(), Some(HandshakeError::Closed));
        assert_eq!(parse_status_code(b"HTTP/1.1 204\r\n\r\n"), Ok(204));
    }
}
