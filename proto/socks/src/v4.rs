//! SOCKS4 and SOCKS4a wire format: the request (with its NUL-terminated USERID and, for 4a,
//! host name) and the 8-byte reply.
//!
//! SOCKS4 has no RFC; this follows the original NEC protocol description ("SOCKS: A protocol
//! for TCP proxy across firewalls") and its 4A extension: a DSTIP of 0.0.0.x with x != 0
//! means a host name follows the USERID.
//!
//! NUL-terminated fields are scanned at most 256 bytes deep: 256 bytes without a NUL are
//! [`Error::FieldTooLong`], never "need more". This module does not decide what to do with a
//! request: that is [`crate::server`].

use crate::error::{Error, Field};
use crate::v5::{be16, ipv4};
use arrayvec::ArrayVec;
use bytes::BufMut;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use triproxy_wire::{DomainName, Status, TargetAddr};

/// The VN byte of a request.
pub const VERSION: u8 = 4;
/// The VN byte of a reply.
pub const REPLY_VERSION: u8 = 0;
/// Longest USERID (bytes before its NUL).
pub const MAX_USER_ID_LEN: usize = 255;
/// Longest request: 8 fixed bytes, USERID + NUL, host name + NUL.
pub const MAX_REQUEST_LEN: usize = 8 + 256 + 256;
/// The DSTIP a SOCKS4a request carries when a host name follows.
pub const V4A_MARKER: Ipv4Addr = Ipv4Addr::new(0, 0, 0, 1);

/// The CD byte of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// CD 1.
    Connect,
    /// CD 2.
    Bind,
}

impl Command {
    /// The CD byte.
    pub fn to_u8(self) -> u8 {
        match self {
            Command::Connect => 1,
            Command::Bind => 2,
        }
    }
}

impl From<Command> for crate::v5::Command {
    fn from(c: Command) -> Self {
        match c {
            Command::Connect => crate::v5::Command::Connect,
            Command::Bind => crate::v5::Command::Bind,
        }
    }
}

/// Where a SOCKS4 request points.
// Sized for the longest name on purpose: no allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    /// SOCKS4: DSTIP (never 0.0.0.x with x != 0, which would mean SOCKS4a).
    Ip(Ipv4Addr),
    /// SOCKS4a: the host name after the USERID (1..=255 bytes).
    Domain(DomainName),
}

/// A SOCKS4 or SOCKS4a request.
///
/// `VN=4 | CD | DSTPORT(2) | DSTIP(4) | USERID | NUL [| HOSTNAME | NUL]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// CD.
    pub command: Command,
    /// DSTPORT.
    pub port: u16,
    /// DSTIP, or the SOCKS4a host name.
    pub destination: Destination,
    /// USERID (0..=255 bytes, may be empty). A NUL inside would end it early on the wire,
    /// so [`Request::encode`] callers must not put one there (parsed values never have one).
    pub user_id: ArrayVec<u8, MAX_USER_ID_LEN>,
}

impl Request {
    /// Whether this is a SOCKS4a request (a host name instead of an address).
    pub fn is_v4a(&self) -> bool {
        matches!(self.destination, Destination::Domain(_))
    }

    /// The destination as a [`TargetAddr`].
    pub fn target(&self) -> TargetAddr {
        match &self.destination {
            Destination::Ip(ip) => TargetAddr::Ip(SocketAddr::new(IpAddr::V4(*ip), self.port)),
            Destination::Domain(d) => TargetAddr::Domain(d.clone(), self.port),
        }
    }

    /// Parses a request. Errors: VN != 4 ([`Error::BadVersion`]), CD not 1 or 2
    /// ([`Error::UnknownCommand`]), USERID or host name of 256 bytes without NUL
    /// ([`Error::FieldTooLong`]), empty host name ([`Error::EmptyDomain`]).
    ///
    /// ```
    /// use triproxy_socks::v4::Request;
    /// // SOCKS4a CONNECT to example.org:80 as user "u".
    /// let mut bytes = vec![4, 1, 0, 80, 0, 0, 0, 1, b'u', 0];
    /// bytes.extend_from_slice(b"example.org\0");
    /// let (r, used) = Request::parse(&bytes).unwrap().complete().unwrap();
    /// assert_eq!((r.target().to_string(), r.user_id.as_slice(), used), ("example.org:80".into(), &b"u"[..], 22));
    /// ```
    pub fn parse(buf: &[u8]) -> Result<Status<Request>, Error> {
        let Some(&vn) = buf.first() else {
            return Ok(Status::need(9));
        };
        if vn != VERSION {
            return Err(Error::BadVersion { version: vn });
        }
        // CD is checked only once the fixed 8-byte header is in, so that an unknown command
        // is reported at the same point however the input was split, with DSTIP (and so
        // whether this is SOCKS4a) already known (found by the `session` fuzz target).
        let (Some(&cd), Some(port), Some(ip), Some(rest)) =
            (buf.get(1), buf.get(2..4), buf.get(4..8), buf.get(8..))
        else {
            return Ok(Status::need(9 - buf.len()));
        };
        let command = match cd {
            1 => Command::Connect,
            2 => Command::Bind,
            other => return Err(Error::UnknownCommand { command: other }),
        };
        let port = be16(port);
        let ip = ipv4(ip);
        let v4a = is_v4a_marker(ip);
        let Some(user_id) = scan_nul(rest, Field::UserId)? else {
            // The USERID's NUL, and for 4a a host name of at least one byte and its NUL.
            return Ok(Status::need(if v4a { 3 } else { 1 }));
        };
        let user_id: ArrayVec<u8, MAX_USER_ID_LEN> = user_id.iter().copied().collect();
        let after_user = 8 + user_id.len() + 1;
        if !v4a {
            return Ok(Status::Complete {
                value: Request {
                    command,
                    port,
                    destination: Destination::Ip(ip),
                    user_id,
                },
                consumed: after_user,
            });
        }
        let host_part = buf.get(after_user..).unwrap_or_default();
        let Some(host) = scan_nul(host_part, Field::Hostname)? else {
            return Ok(Status::need(if host_part.is_empty() { 2 } else { 1 }));
        };
        let consumed = after_user + host.len() + 1;
        let host = DomainName::new(host)?;
        Ok(Status::Complete {
            value: Request {
                command,
                port,
                destination: Destination::Domain(host),
                user_id,
            },
            consumed,
        })
    }

    /// Bytes [`Request::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let host = match &self.destination {
            Destination::Ip(_) => 0,
            Destination::Domain(d) => d.len() + 1,
        };
        8 + self.user_id.len() + 1 + host
    }

    /// Writes the request; a SOCKS4a destination is sent as DSTIP 0.0.0.1 plus the name.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(VERSION);
        out.put_u8(self.command.to_u8());
        out.put_u16(self.port);
        match &self.destination {
            Destination::Ip(ip) => out.put_slice(&ip.octets()),
            Destination::Domain(_) => out.put_slice(&V4A_MARKER.octets()),
        }
        out.put_slice(&self.user_id);
        out.put_u8(0);
        if let Destination::Domain(d) = &self.destination {
            out.put_slice(d.as_bytes());
            out.put_u8(0);
        }
    }
}

/// Whether a DSTIP is the SOCKS4a marker 0.0.0.x, x != 0.
pub fn is_v4a_marker(ip: Ipv4Addr) -> bool {
    let [a, b, c, d] = ip.octets();
    a == 0 && b == 0 && c == 0 && d != 0
}

/// The bytes before the first NUL, if one is among the first 256 bytes; `None` if `buf` is
/// shorter than that and holds no NUL yet.
fn scan_nul(buf: &[u8], field: Field) -> Result<Option<&[u8]>, Error> {
    let window = buf.get(..256).unwrap_or(buf);
    match window.iter().position(|&b| b == 0) {
        Some(i) => Ok(window.get(..i)),
        None if window.len() >= 256 => Err(Error::FieldTooLong { field }),
        None => Ok(None),
    }
}

/// The CD byte of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyCode {
    /// 90: request granted.
    Granted,
    /// 91: request rejected or failed (triproxy sends this for every failure).
    Rejected,
    /// 92: rejected because the server cannot reach the client's identd.
    IdentUnreachable,
    /// 93: rejected because identd reported a different user id.
    IdentMismatch,
    /// Any other CD byte.
    Other(u8),
}

impl ReplyCode {
    /// The code for a CD byte.
    pub fn from_u8(cd: u8) -> Self {
        match cd {
            90 => ReplyCode::Granted,
            91 => ReplyCode::Rejected,
            92 => ReplyCode::IdentUnreachable,
            93 => ReplyCode::IdentMismatch,
            other => ReplyCode::Other(other),
        }
    }

    /// The CD byte.
    pub fn to_u8(self) -> u8 {
        match self {
            ReplyCode::Granted => 90,
            ReplyCode::Rejected => 91,
            ReplyCode::IdentUnreachable => 92,
            ReplyCode::IdentMismatch => 93,
            ReplyCode::Other(b) => b,
        }
    }
}

impl core::fmt::Display for ReplyCode {
    /// The meaning the SOCKS4 protocol gives the code.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ReplyCode::Granted => f.write_str("request granted"),
            ReplyCode::Rejected => f.write_str("request rejected or failed"),
            ReplyCode::IdentUnreachable => f.write_str("identd unreachable"),
            ReplyCode::IdentMismatch => f.write_str("identd reported another user id"),
            ReplyCode::Other(b) => write!(f, "unassigned reply {b}"),
        }
    }
}

/// A SOCKS4 reply: `VN=0 | CD | DSTPORT(2) | DSTIP(4)`.
///
/// Parsing accepts VN 0 and also 4, which some servers send; encoding always writes 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    /// CD.
    pub code: ReplyCode,
    /// DSTPORT (the bound port for BIND, else informational).
    pub port: u16,
    /// DSTIP.
    pub ip: Ipv4Addr,
}

impl Reply {
    /// The reply length.
    pub const LEN: usize = 8;

    /// A failure reply: CD 91 with port and address zero.
    pub fn rejected() -> Self {
        Reply {
            code: ReplyCode::Rejected,
            port: 0,
            ip: Ipv4Addr::UNSPECIFIED,
        }
    }

    /// The reply's address as a [`TargetAddr`].
    pub fn addr(&self) -> TargetAddr {
        TargetAddr::Ip(SocketAddr::new(IpAddr::V4(self.ip), self.port))
    }

    /// Parses an 8-byte reply.
    pub fn parse(buf: &[u8]) -> Result<Status<Reply>, Error> {
        if let Some(&vn) = buf.first() {
            if vn != REPLY_VERSION && vn != VERSION {
                return Err(Error::BadVersion { version: vn });
            }
        }
        let Some(b) = buf.get(..Self::LEN) else {
            return Ok(Status::need(Self::LEN - buf.len()));
        };
        let value = Reply {
            code: ReplyCode::from_u8(b.get(1).copied().unwrap_or(0)),
            port: be16(b.get(2..4).unwrap_or_default()),
            ip: ipv4(b.get(4..8).unwrap_or_default()),
        };
        Ok(Status::Complete {
            value,
            consumed: Self::LEN,
        })
    }

    /// Always 8.
    pub fn encoded_len(&self) -> usize {
        Self::LEN
    }

    /// Writes the reply with VN = 0.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u8(REPLY_VERSION);
        out.put_u8(self.code.to_u8());
        out.put_u16(self.port);
        out.put_slice(&self.ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_limits() {
        assert_eq!(scan_nul(b"ab\0c", Field::UserId).unwrap(), Some(&b"ab"[..]));
        assert_eq!(scan_nul(&[b'a'; 255], Field::UserId).unwrap(), None);
        let mut ok = vec![b'a'; 255];
        ok.push(0);
        assert_eq!(
            scan_nul(&ok, Field::UserId).unwrap().map(<[u8]>::len),
            Some(255)
        );
        assert_eq!(
            scan_nul(&[b'a'; 256], Field::Hostname),
            Err(Error::FieldTooLong {
                field: Field::Hostname
            })
        );
    }

    #[test]
    fn marker() {
        assert!(is_v4a_marker(Ipv4Addr::new(0, 0, 0, 1)));
        assert!(is_v4a_marker(Ipv4Addr::new(0, 0, 0, 255)));
        assert!(!is_v4a_marker(Ipv4Addr::new(0, 0, 0, 0)));
        assert!(!is_v4a_marker(Ipv4Addr::new(0, 0, 1, 1)));
    }
}
