//! SOCKS5 wire format: every message of RFC 1928 (greeting, method selection, request,
//! reply, UDP request header) and of RFC 1929 (username/password request and status).
//!
//! Each message parses from the front of a byte slice into a `Status` (a strict prefix of a
//! valid message is `Partial`, never an error) and encodes into a caller's `BufMut`. Parsed
//! values own their few variable bytes in fixed-capacity `ArrayVec`s / [`DomainName`]s, so
//! nothing here allocates. Every length on this wire is one byte, so 255 is the cap of every
//! field.
//!
//! This module is not a state machine: [`crate::server`] and [`crate::client`] decide which
//! message comes next.

use crate::error::{Error, Field};
use arrayvec::ArrayVec;
use bytes::BufMut;
use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use triproxy_wire::{DomainName, LogCode, Status, TargetAddr};

/// SOCKS protocol version 5 (the VER byte).
pub const VERSION: u8 = 5;
/// RFC 1929 sub-negotiation version (the VER byte of its request and reply).
pub const AUTH_VERSION: u8 = 1;

const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;
/// Shortest valid address field: ATYP, a one-byte domain (length + 1 byte) and the port.
const MIN_ADDR_LEN: usize = 5;

/// Longest SOCKS5 request or reply: 4 header bytes, 1 + 255 bytes of domain, 2 of port.
pub const MAX_REQUEST_LEN: usize = 262;
/// Longest RFC 1929 request: VER, ULEN, 255, PLEN, 255.
pub const MAX_AUTH_REQUEST_LEN: usize = 513;
/// Longest greeting: VER, NMETHODS, 255 methods.
pub const MAX_GREETING_LEN: usize = 257;

/// An authentication method number (RFC 1928 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Method(pub u8);

impl Method {
    /// X'00' NO AUTHENTICATION REQUIRED.
    pub const NO_AUTH: Method = Method(0x00);
    /// X'01' GSSAPI (not implemented by triproxy; recognised only to be refused).
    pub const GSSAPI: Method = Method(0x01);
    /// X'02' USERNAME/PASSWORD (RFC 1929).
    pub const PASSWORD: Method = Method(0x02);
    /// X'FF' NO ACCEPTABLE METHODS.
    pub const NO_ACCEPTABLE: Method = Method(0xFF);
}

/// The client's first message: the methods it supports (RFC 1928 section 3).
///
/// `+----+----------+----------+`
/// `|VER | NMETHODS | METHODS  |`  with NMETHODS 1..=255.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The offered methods in the client's order (1..=255 of them on the wire).
    pub methods: ArrayVec<Method, 255>,
}

impl Greeting {
    /// A greeting offering `methods` (at most 255 are kept).
    pub fn new(methods: &[Method]) -> Self {
        Greeting {
            methods: methods.iter().copied().take(255).collect(),
        }
    }

    /// Whether the client offers `method`.
    pub fn offers(&self, method: Method) -> bool {
        self.methods.contains(&method)
    }

    /// Parses a greeting. NMETHODS = 0 is [`Error::NoMethods`].
    ///
    /// ```
    /// use triproxy_socks::v5::{Greeting, Method};
    /// let (g, used) = Greeting::parse(&[5, 2, 0, 2]).unwrap().complete().unwrap();
    /// assert_eq!((g.methods.as_slice(), used), (&[Method::NO_AUTH, Method::PASSWORD][..], 4));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Status<Greeting>, Error> {
        let Some(&ver) = buf.first() else {
            return Ok(Status::need(3));
        };
        if ver != VERSION {
            return Err(Error::BadVersion { version: ver });
        }
        let Some(&n) = buf.get(1) else {
            return Ok(Status::need(2));
        };
        if n == 0 {
            return Err(Error::NoMethods);
        }
        let total = 2 + usize::from(n);
        let Some(methods) = buf.get(2..total) else {
            return Ok(Status::need(total - buf.len()));
        };
        Ok(Status::Complete {
            value: Greeting {
                methods: methods.iter().copied().map(Method).collect(),
            },
            consumed: total,
        })
    }

    /// Bytes [`Greeting::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        2 + self.methods.len()
    }

    /// Writes the greeting. `out` must have room for [`Greeting::encoded_len`] bytes.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(VERSION);
        out.put_u8(len_u8(self.methods.len()));
        for m in &self.methods {
            out.put_u8(m.0);
        }
    }
}

/// The server's choice of method (RFC 1928 section 3): `VER, METHOD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSelection {
    /// The chosen method; [`Method::NO_ACCEPTABLE`] means the client must close.
    pub method: Method,
}

impl MethodSelection {
    /// Parses a method selection (exactly 2 bytes).
    pub fn parse(buf: &[u8]) -> Result<Status<MethodSelection>, Error> {
        let Some(&ver) = buf.first() else {
            return Ok(Status::need(2));
        };
        if ver != VERSION {
            return Err(Error::BadVersion { version: ver });
        }
        let Some(&method) = buf.get(1) else {
            return Ok(Status::need(1));
        };
        Ok(Status::Complete {
            value: MethodSelection {
                method: Method(method),
            },
            consumed: 2,
        })
    }

    /// Always 2.
    pub fn encoded_len(&self) -> usize {
        2
    }

    /// Writes `05 METHOD`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(VERSION);
        out.put_u8(self.method.0);
    }
}

/// A user name and password: the RFC 1929 request message and the credentials a server
/// machine reports.
///
/// `+----+------+----------+------+----------+`
/// `|VER | ULEN |  UNAME   | PLEN |  PASSWD  |`  with ULEN 1..=255, PLEN 0..=255.
///
/// RFC 1929 says PLEN is 1..=255, but real clients send PLEN = 0 for an empty password, so
/// 0 is accepted; ULEN = 0 is [`Error::EmptyUsername`]. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// UNAME, 1..=255 bytes on the wire.
    pub username: ArrayVec<u8, 255>,
    /// PASSWD, 0..=255 bytes.
    pub password: ArrayVec<u8, 255>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &format_args!("<{} bytes>", self.password.len()))
            .finish()
    }
}

impl Credentials {
    /// Copies a user name (1..=255 bytes) and password (0..=255 bytes).
    ///
    /// ```
    /// use triproxy_socks::v5::Credentials;
    /// let c = Credentials::new(b"alice", b"secret").unwrap();
    /// assert_eq!(c.username.as_slice(), b"alice");
    /// assert!(Credentials::new(b"", b"x").is_err());
    /// ```
    pub fn new(username: &[u8], password: &[u8]) -> Result<Self, Error> {
        if username.is_empty() {
            return Err(Error::EmptyUsername);
        }
        let username = ArrayVec::try_from(username).map_err(|_| Error::FieldTooLong {
            field: Field::Username,
        })?;
        let password = ArrayVec::try_from(password).map_err(|_| Error::FieldTooLong {
            field: Field::Password,
        })?;
        Ok(Credentials { username, password })
    }

    /// Parses an RFC 1929 request.
    pub fn parse(buf: &[u8]) -> Result<Status<Credentials>, Error> {
        let Some(&ver) = buf.first() else {
            return Ok(Status::need(4));
        };
        if ver != AUTH_VERSION {
            return Err(Error::BadAuthVersion { version: ver });
        }
        let Some(&ulen) = buf.get(1) else {
            return Ok(Status::need(3));
        };
        if ulen == 0 {
            return Err(Error::EmptyUsername);
        }
        let uend = 2 + usize::from(ulen);
        let (Some(username), Some(&plen)) = (buf.get(2..uend), buf.get(uend)) else {
            return Ok(Status::need(uend + 1 - buf.len()));
        };
        let total = uend + 1 + usize::from(plen);
        let Some(password) = buf.get(uend + 1..total) else {
            return Ok(Status::need(total - buf.len()));
        };
        Ok(Status::Complete {
            value: Credentials {
                username: username.iter().copied().collect(),
                password: password.iter().copied().collect(),
            },
            consumed: total,
        })
    }

    /// Bytes [`Credentials::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        3 + self.username.len() + self.password.len()
    }

    /// Writes the RFC 1929 request.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(AUTH_VERSION);
        out.put_u8(len_u8(self.username.len()));
        out.put_slice(&self.username);
        out.put_u8(len_u8(self.password.len()));
        out.put_slice(&self.password);
    }
}

/// The RFC 1929 answer: `VER=1, STATUS` (0 = success; anything else = failure, and the
/// server closes the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthReply {
    /// The STATUS byte.
    pub status: u8,
}

impl AuthReply {
    /// STATUS for success.
    pub const SUCCESS: AuthReply = AuthReply { status: 0 };
    /// STATUS triproxy sends for failure.
    pub const FAILURE: AuthReply = AuthReply { status: 1 };

    /// Whether STATUS is 0.
    pub fn is_success(&self) -> bool {
        self.status == 0
    }

    /// Parses the 2-byte status.
    pub fn parse(buf: &[u8]) -> Result<Status<AuthReply>, Error> {
        let Some(&ver) = buf.first() else {
            return Ok(Status::need(2));
        };
        if ver != AUTH_VERSION {
            return Err(Error::BadAuthVersion { version: ver });
        }
        let Some(&status) = buf.get(1) else {
            return Ok(Status::need(1));
        };
        Ok(Status::Complete {
            value: AuthReply { status },
            consumed: 2,
        })
    }

    /// Always 2.
    pub fn encoded_len(&self) -> usize {
        2
    }

    /// Writes `01 STATUS`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(AUTH_VERSION);
        out.put_u8(self.status);
    }
}

/// What a client asks the proxy to do (RFC 1928 section 4; SOCKS4 knows the first two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// CMD 1: open a TCP connection to the target.
    Connect,
    /// CMD 2: accept one inbound TCP connection from the target.
    Bind,
    /// CMD 3: relay UDP datagrams (section 7).
    UdpAssociate,
}

impl Command {
    /// The CMD byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Command::Connect => 1,
            Command::Bind => 2,
            Command::UdpAssociate => 3,
        }
    }

    /// The command for a CMD byte, if it is one of the three.
    pub fn from_u8(cmd: u8) -> Option<Self> {
        match cmd {
            1 => Some(Command::Connect),
            2 => Some(Command::Bind),
            3 => Some(Command::UdpAssociate),
            _ => None,
        }
    }
}

/// A SOCKS5 request (RFC 1928 section 4).
///
/// `+----+-----+-------+------+----------+----------+`
/// `|VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |`
///
/// RSV is written as 0 and not checked when parsing (clients that set it are harmless).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// CMD.
    pub command: Command,
    /// DST.ADDR and DST.PORT (ATYP 1, 3 or 4).
    pub target: TargetAddr,
}

impl Request {
    /// Parses a request. The checks run in wire order and fail as soon as a byte is wrong:
    /// VER ([`Error::BadRequestVersion`]), CMD ([`Error::UnknownCommand`]), ATYP
    /// ([`Error::BadAddressType`]), domain length ([`Error::EmptyDomain`]).
    ///
    /// ```
    /// use triproxy_socks::v5::{Command, Request};
    /// let bytes = [5, 1, 0, 3, 11, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'o', b'r', b'g', 0, 80];
    /// let (r, used) = Request::parse(&bytes).unwrap().complete().unwrap();
    /// assert_eq!((r.command, r.target.to_string(), used), (Command::Connect, "example.org:80".into(), 18));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Status<Request>, Error> {
        let Some(&ver) = buf.first() else {
            return Ok(Status::need(3 + MIN_ADDR_LEN));
        };
        if ver != VERSION {
            return Err(Error::BadRequestVersion { version: ver });
        }
        let Some(&cmd) = buf.get(1) else {
            return Ok(Status::need(2 + MIN_ADDR_LEN));
        };
        let command = Command::from_u8(cmd).ok_or(Error::UnknownCommand { command: cmd })?;
        let Some(addr) = buf.get(3..) else {
            return Ok(Status::need(3 + MIN_ADDR_LEN - buf.len()));
        };
        Ok(parse_addr(addr)?.map_consumed(|target| Request { command, target }, 3))
    }

    /// Bytes [`Request::encode`] writes (10 for IPv4, 22 for IPv6, 7 + name length for a
    /// domain).
    pub fn encoded_len(&self) -> usize {
        3 + addr_len(&self.target)
    }

    /// Writes the request with RSV = 0.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(VERSION);
        out.put_u8(self.command.to_u8());
        out.put_u8(0);
        encode_addr(&self.target, out);
    }
}

/// The REP field of a SOCKS5 reply (RFC 1928 section 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyCode {
    /// X'00' succeeded.
    Succeeded,
    /// X'01' general SOCKS server failure.
    GeneralFailure,
    /// X'02' connection not allowed by ruleset.
    NotAllowed,
    /// X'03' network unreachable.
    NetworkUnreachable,
    /// X'04' host unreachable.
    HostUnreachable,
    /// X'05' connection refused.
    ConnectionRefused,
    /// X'06' TTL expired.
    TtlExpired,
    /// X'07' command not supported.
    CommandNotSupported,
    /// X'08' address type not supported.
    AddressTypeNotSupported,
    /// X'09' to X'FF', unassigned. [`ReplyCode::from_u8`] never builds it for 0..=8.
    Other(u8),
}

impl ReplyCode {
    /// The code for a REP byte.
    pub fn from_u8(rep: u8) -> Self {
        match rep {
            0 => ReplyCode::Succeeded,
            1 => ReplyCode::GeneralFailure,
            2 => ReplyCode::NotAllowed,
            3 => ReplyCode::NetworkUnreachable,
            4 => ReplyCode::HostUnreachable,
            5 => ReplyCode::ConnectionRefused,
            6 => ReplyCode::TtlExpired,
            7 => ReplyCode::CommandNotSupported,
            8 => ReplyCode::AddressTypeNotSupported,
            other => ReplyCode::Other(other),
        }
    }

    /// The REP byte.
    pub fn to_u8(self) -> u8 {
        match self {
            ReplyCode::Succeeded => 0,
            ReplyCode::GeneralFailure => 1,
            ReplyCode::NotAllowed => 2,
            ReplyCode::NetworkUnreachable => 3,
            ReplyCode::HostUnreachable => 4,
            ReplyCode::ConnectionRefused => 5,
            ReplyCode::TtlExpired => 6,
            ReplyCode::CommandNotSupported => 7,
            ReplyCode::AddressTypeNotSupported => 8,
            ReplyCode::Other(b) => b,
        }
    }

    /// The REP 3proxy sends for a failure it logged with `code`: 0 → succeeded; 1-10 → not
    /// allowed; 11-19 → connection refused; 20-29 → general failure; 30-100 → host
    /// unreachable; 997 → address type not supported; any other code → `code % 10` (so 407
    /// unknown command → 7).
    ///
    /// ```
    /// use triproxy_socks::v5::ReplyCode;
    /// use triproxy_wire::LogCode;
    /// assert_eq!(ReplyCode::from_log_code(LogCode::BAD_CL_PASSWORD), ReplyCode::NotAllowed);
    /// assert_eq!(ReplyCode::from_log_code(LogCode(407)), ReplyCode::CommandNotSupported);
    /// ```
    pub fn from_log_code(code: LogCode) -> Self {
        match code.get() {
            0 => ReplyCode::Succeeded,
            1..=10 => ReplyCode::NotAllowed,
            11..=19 => ReplyCode::ConnectionRefused,
            20..=29 => ReplyCode::GeneralFailure,
            30..=100 => ReplyCode::HostUnreachable,
            997 => ReplyCode::AddressTypeNotSupported,
            other => ReplyCode::from_u8(u8::try_from(other % 10).unwrap_or(1)),
        }
    }
}

impl fmt::Display for ReplyCode {
    /// The meaning RFC 1928 section 6 gives the code, in lower case.
    ///
    /// ```
    /// use triproxy_socks::v5::ReplyCode;
    /// assert_eq!(ReplyCode::NotAllowed.to_string(), "connection not allowed by ruleset");
    /// assert_eq!(ReplyCode::Other(0x42).to_string(), "unassigned reply 0x42");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyCode::Succeeded => f.write_str("succeeded"),
            ReplyCode::GeneralFailure => f.write_str("general SOCKS server failure"),
            ReplyCode::NotAllowed => f.write_str("connection not allowed by ruleset"),
            ReplyCode::NetworkUnreachable => f.write_str("network unreachable"),
            ReplyCode::HostUnreachable => f.write_str("host unreachable"),
            ReplyCode::ConnectionRefused => f.write_str("connection refused"),
            ReplyCode::TtlExpired => f.write_str("TTL expired"),
            ReplyCode::CommandNotSupported => f.write_str("command not supported"),
            ReplyCode::AddressTypeNotSupported => f.write_str("address type not supported"),
            ReplyCode::Other(b) => write!(f, "unassigned reply {b:#04x}"),
        }
    }
}

impl From<u8> for ReplyCode {
    fn from(rep: u8) -> Self {
        ReplyCode::from_u8(rep)
    }
}

impl From<ReplyCode> for u8 {
    fn from(rep: ReplyCode) -> u8 {
        rep.to_u8()
    }
}

/// A SOCKS5 reply (RFC 1928 section 6).
///
/// `+----+-----+-------+------+----------+----------+`
/// `|VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// REP.
    pub reply: ReplyCode,
    /// BND.ADDR and BND.PORT.
    pub bound: TargetAddr,
}

impl Reply {
    /// A failure reply: `reply` with BND = 0.0.0.0:0 (ATYP 1).
    pub fn failure(reply: ReplyCode) -> Self {
        Reply {
            reply,
            bound: TargetAddr::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
        }
    }

    /// Parses a reply (VER must be 5: [`Error::BadVersion`]; RSV is not checked).
    pub fn parse(buf: &[u8]) -> Result<Status<Reply>, Error> {
        let Some(&ver) = buf.first() else {
            return Ok(Status::need(3 + MIN_ADDR_LEN));
        };
        if ver != VERSION {
            return Err(Error::BadVersion { version: ver });
        }
        let (Some(&rep), Some(addr)) = (buf.get(1), buf.get(3..)) else {
            return Ok(Status::need(3 + MIN_ADDR_LEN - buf.len()));
        };
        let reply = ReplyCode::from_u8(rep);
        Ok(parse_addr(addr)?.map_consumed(|bound| Reply { reply, bound }, 3))
    }

    /// Bytes [`Reply::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        3 + addr_len(&self.bound)
    }

    /// Writes the reply with RSV = 0.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(VERSION);
        out.put_u8(self.reply.to_u8());
        out.put_u8(0);
        encode_addr(&self.bound, out);
    }
}

/// The header in front of every datagram of a UDP association (RFC 1928 section 7).
///
/// `+----+------+------+----------+----------+----------+`
/// `|RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |`  (RSV is 2 bytes, must be 0)
///
/// FRAG is reported, not judged: a relay that does not reassemble drops `frag != 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpHeader {
    /// FRAG: 0 for a standalone datagram.
    pub frag: u8,
    /// DST.ADDR and DST.PORT (or, on the way back, the source of the datagram).
    pub target: TargetAddr,
}

impl UdpHeader {
    /// Bytes [`encode_udp`] writes before the payload (10 for IPv4, 22 for IPv6).
    pub fn encoded_len(&self) -> usize {
        3 + addr_len(&self.target)
    }
}

/// Splits a whole UDP datagram into its header and payload.
///
/// A datagram is complete by nature, so a short one is [`Error::Truncated`], not partial;
/// RSV != 0 is [`Error::BadReserved`].
///
/// ```
/// use triproxy_socks::v5::parse_udp;
/// let dgram = [0, 0, 0, 1, 10, 0, 0, 1, 0, 53, b'h', b'i'];
/// let (h, data) = parse_udp(&dgram).unwrap();
/// assert_eq!((h.frag, h.target.to_string(), data), (0, "10.0.0.1:53".into(), &b"hi"[..]));
/// ```
pub fn parse_udp(datagram: &[u8]) -> Result<(UdpHeader, &[u8]), Error> {
    let (Some(rsv), Some(&frag), Some(addr)) =
        (datagram.get(..2), datagram.get(2), datagram.get(3..))
    else {
        return Err(Error::Truncated);
    };
    let rsv = be16(rsv);
    if rsv != 0 {
        return Err(Error::BadReserved { value: rsv });
    }
    match parse_addr(addr)? {
        Status::Complete { value, consumed } => {
            let data = addr.get(consumed..).ok_or(Error::Truncated)?;
            Ok((
                UdpHeader {
                    frag,
                    target: value,
                },
                data,
            ))
        }
        Status::Partial { .. } => Err(Error::Truncated),
    }
}

/// Writes a UDP request header (RSV = 0); the caller appends the payload.
pub fn encode_udp(header: &UdpHeader, out: &mut impl BufMut) {
    out.put_u16(0);
    out.put_u8(header.frag);
    encode_addr(&header.target, out);
}

/// Parses `ATYP, ADDR, PORT` from the front of `buf`.
pub(crate) fn parse_addr(buf: &[u8]) -> Result<Status<TargetAddr>, Error> {
    let Some(&atyp) = buf.first() else {
        return Ok(Status::need(MIN_ADDR_LEN));
    };
    let (start, alen) = match atyp {
        ATYP_IPV4 => (1, 4),
        ATYP_IPV6 => (1, 16),
        ATYP_DOMAIN => match buf.get(1) {
            None => return Ok(Status::need(MIN_ADDR_LEN - 1)),
            Some(0) => return Err(Error::EmptyDomain),
            Some(&n) => (2, usize::from(n)),
        },
        other => return Err(Error::BadAddressType { atyp: other }),
    };
    let total = start + alen + 2;
    let (Some(addr), Some(port)) = (buf.get(start..start + alen), buf.get(start + alen..total))
    else {
        return Ok(Status::need(total.saturating_sub(buf.len())));
    };
    let port = be16(port);
    let target = match atyp {
        ATYP_IPV4 => {
            let octets: [u8; 4] = addr.try_into().map_err(|_| Error::Truncated)?;
            TargetAddr::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        ATYP_IPV6 => {
            let octets: [u8; 16] = addr.try_into().map_err(|_| Error::Truncated)?;
            TargetAddr::Ip(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        _ => TargetAddr::Domain(DomainName::new(addr)?, port),
    };
    Ok(Status::Complete {
        value: target,
        consumed: total,
    })
}

/// Bytes of `ATYP, ADDR, PORT` for `target`.
pub(crate) fn addr_len(target: &TargetAddr) -> usize {
    match target {
        TargetAddr::Ip(SocketAddr::V4(_)) => 1 + 4 + 2,
        TargetAddr::Ip(SocketAddr::V6(_)) => 1 + 16 + 2,
        TargetAddr::Domain(d, _) => 2 + d.len() + 2,
    }
}

/// Writes `ATYP, ADDR, PORT`.
pub(crate) fn encode_addr(target: &TargetAddr, out: &mut impl BufMut) {
    match target {
        TargetAddr::Ip(SocketAddr::V4(sa)) => {
            out.put_u8(ATYP_IPV4);
            out.put_slice(&sa.ip().octets());
            out.put_u16(sa.port());
        }
        TargetAddr::Ip(SocketAddr::V6(sa)) => {
            out.put_u8(ATYP_IPV6);
            out.put_slice(&sa.ip().octets());
            out.put_u16(sa.port());
        }
        TargetAddr::Domain(d, port) => {
            out.put_u8(ATYP_DOMAIN);
            out.put_u8(len_u8(d.len()));
            out.put_slice(d.as_bytes());
            out.put_u16(*port);
        }
    }
}

/// A big-endian u16 from the first two bytes (0 for missing bytes; callers pass two).
pub(crate) fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ])
}

/// An IPv4 address from the first four bytes (0.0.0.0 if fewer; callers pass four).
pub(crate) fn ipv4(b: &[u8]) -> Ipv4Addr {
    b.get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from)
}

/// A length that is at most 255 by construction, as a length byte.
pub(crate) fn len_u8(len: usize) -> u8 {
    u8::try_from(len).unwrap_or(u8::MAX)
}

/// Offsetting a nested parse result by the bytes in front of it.
pub(crate) trait MapConsumed<T> {
    fn map_consumed<U>(self, f: impl FnOnce(T) -> U, offset: usize) -> Status<U>;
}

impl<T> MapConsumed<T> for Status<T> {
    fn map_consumed<U>(self, f: impl FnOnce(T) -> U, offset: usize) -> Status<U> {
        match self {
            Status::Complete { value, consumed } => Status::Complete {
                value: f(value),
                consumed: consumed + offset,
            },
            Status::Partial { needed } => Status::Partial { needed },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut v = Vec::new();
        f(&mut v);
        v
    }

    #[test]
    fn addr_vectors() {
        let v4 = TargetAddr::Ip("1.2.3.4:258".parse().unwrap());
        assert_eq!(enc(|o| encode_addr(&v4, o)), [1, 1, 2, 3, 4, 1, 2]);
        let v6 = TargetAddr::Ip("[::1]:80".parse().unwrap());
        let mut want = vec![4];
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(&[1, 0, 80]);
        assert_eq!(enc(|o| encode_addr(&v6, o)), want);
        assert_eq!(addr_len(&v6), 19);
        assert_eq!(
            parse_addr(&want).unwrap(),
            Status::Complete {
                value: v6,
                consumed: 19
            }
        );
    }

    #[test]
    fn needed_counts() {
        assert_eq!(parse_addr(&[]).unwrap(), Status::need(5));
        assert_eq!(parse_addr(&[3]).unwrap(), Status::need(4));
        assert_eq!(parse_addr(&[3, 4, b'a']).unwrap(), Status::need(5));
        assert_eq!(parse_addr(&[1, 1, 2]).unwrap(), Status::need(4));
        assert_eq!(Request::parse(&[5, 1]).unwrap(), Status::need(6));
    }

    #[test]
    fn reply_code_mapping() {
        for b in 0..=255u8 {
            assert_eq!(ReplyCode::from_u8(b).to_u8(), b);
        }
        assert_eq!(
            ReplyCode::from_log_code(LogCode(997)),
            ReplyCode::AddressTypeNotSupported
        );
        assert_eq!(
            ReplyCode::from_log_code(LogCode::CONNECT_FAILED),
            ReplyCode::ConnectionRefused
        );
        assert_eq!(
            ReplyCode::from_log_code(LogCode::HOST_NOT_FOUND),
            ReplyCode::HostUnreachable
        );
        assert_eq!(
            ReplyCode::from_log_code(LogCode(21)),
            ReplyCode::GeneralFailure
        );
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials::new(b"bob", b"hunter2").unwrap();
        let s = format!("{c:?}");
        assert!(s.contains("bob") && !s.contains("hunter2"), "{s}");
    }
}
