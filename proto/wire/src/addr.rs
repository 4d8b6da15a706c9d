//! What a client asks to reach: an IP socket address or a bounded domain name and port.
//!
//! A [`TargetAddr`] is built from a `(host, port)` pair with `TryFrom`, from an IP pair or
//! `SocketAddr` with `From`, or parsed from `host:port`, `[v6]:port` or `a.b.c.d:port`
//! with `str::parse`; `Display` prints the same forms back.

use arrayvec::ArrayVec;
use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Longest domain name any supported protocol can carry (SOCKS5 ATYP 3 has a one-byte
/// length; RFC 1928 section 5).
pub const MAX_DOMAIN_LEN: usize = 255;

/// A domain name as it came off the wire: 1..=255 bytes, not necessarily UTF-8 and not
/// validated further (resolution decides whether it names anything).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName {
    bytes: ArrayVec<u8, MAX_DOMAIN_LEN>,
}

/// Why bytes cannot be a [`DomainName`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainError {
    /// A name of zero bytes.
    Empty,
    /// A name longer than [`MAX_DOMAIN_LEN`] bytes.
    TooLong {
        /// Its length.
        len: usize,
    },
    /// A NUL byte inside the name (it would truncate the name for C resolvers and SOCKS4a).
    ContainsNul,
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainError::Empty => write!(f, "empty domain name"),
            DomainError::TooLong { len } => {
                write!(f, "domain name of {len} bytes (at most {MAX_DOMAIN_LEN})")
            }
            DomainError::ContainsNul => write!(f, "domain name contains a NUL byte"),
        }
    }
}

impl std::error::Error for DomainError {}

impl DomainName {
    /// Checks and copies a name of 1..=255 bytes without NUL.
    ///
    /// ```
    /// use triproxy_wire::DomainName;
    /// assert_eq!(DomainName::new(b"example.org").unwrap().as_str(), Some("example.org"));
    /// assert!(DomainName::new(b"").is_err());
    /// assert!(DomainName::new(&[b'a'; 256]).is_err());
    /// ```
    pub fn new(bytes: &[u8]) -> Result<Self, DomainError> {
        if bytes.is_empty() {
            return Err(DomainError::Empty);
        }
        if bytes.contains(&0) {
            return Err(DomainError::ContainsNul);
        }
        let mut v = ArrayVec::new();
        v.try_extend_from_slice(bytes)
            .map_err(|_| DomainError::TooLong { len: bytes.len() })?;
        Ok(Self { bytes: v })
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The name as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.bytes).ok()
    }

    /// Length in bytes (1..=255).
    #[allow(clippy::len_without_is_empty)] // never empty by construction
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
}

impl fmt::Display for DomainName {
    /// Prints UTF-8 names as they are and escapes any other byte as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.bytes.utf8_chunks() {
            for c in chunk.valid().chars() {
                if c.is_control() {
                    write!(f, "\\x{:02x}", c as u32)?;
                } else {
                    write!(f, "{c}")?;
                }
            }
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName(\"{self}\")")
    }
}

/// A destination as requested by a client.
///
/// The domain variant is ~258 bytes inline: deliberately, so that parsing a request never
/// allocates.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A name still to be resolved, and a port.
    Domain(DomainName, u16),
}

impl TargetAddr {
    /// The requested port.
    pub fn port(&self) -> u16 {
        match self {
            TargetAddr::Ip(sa) => sa.port(),
            TargetAddr::Domain(_, p) => *p,
        }
    }

    /// The IP address, if the request carried one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            TargetAddr::Ip(sa) => Some(sa.ip()),
            TargetAddr::Domain(..) => None,
        }
    }

    /// The domain name, if the request carried one.
    pub fn domain(&self) -> Option<&DomainName> {
        match self {
            TargetAddr::Ip(_) => None,
            TargetAddr::Domain(d, _) => Some(d),
        }
    }
}

impl fmt::Display for TargetAddr {
    /// `1.2.3.4:80`, `[::1]:80` or `example.org:80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetAddr::Ip(sa) => write!(f, "{sa}"),
            TargetAddr::Domain(d, p) => write!(f, "{d}:{p}"),
        }
    }
}

impl From<SocketAddr> for TargetAddr {
    fn from(sa: SocketAddr) -> Self {
        TargetAddr::Ip(sa)
    }
}

impl From<SocketAddrV4> for TargetAddr {
    fn from(sa: SocketAddrV4) -> Self {
        TargetAddr::Ip(sa.into())
    }
}

impl From<SocketAddrV6> for TargetAddr {
    fn from(sa: SocketAddrV6) -> Self {
        TargetAddr::Ip(sa.into())
    }
}

impl From<(IpAddr, u16)> for TargetAddr {
    fn from((ip, port): (IpAddr, u16)) -> Self {
        TargetAddr::Ip(SocketAddr::new(ip, port))
    }
}

impl From<(Ipv4Addr, u16)> for TargetAddr {
    fn from((ip, port): (Ipv4Addr, u16)) -> Self {
        TargetAddr::Ip(SocketAddr::new(ip.into(), port))
    }
}

impl From<(Ipv6Addr, u16)> for TargetAddr {
    fn from((ip, port): (Ipv6Addr, u16)) -> Self {
        TargetAddr::Ip(SocketAddr::new(ip.into(), port))
    }
}

impl From<(DomainName, u16)> for TargetAddr {
    fn from((name, port): (DomainName, u16)) -> Self {
        TargetAddr::Domain(name, port)
    }
}

/// Why a host and port, or a `host:port` string, is not a [`TargetAddr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseTargetError {
    /// The string has no `:port` at its end.
    MissingPort,
    /// The port is not a decimal number from 0 to 65535.
    InvalidPort,
    /// The brackets of `[...]` hold no IPv6 address.
    InvalidIpv6,
    /// An IPv6 address without brackets in a `host:port` string (`::1:80` is ambiguous;
    /// write `[::1]:80`).
    UnbracketedIpv6,
    /// The host is neither an IP address nor a valid [`DomainName`].
    Domain(DomainError),
}

impl fmt::Display for ParseTargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseTargetError::MissingPort => write!(f, "no port (expected host:port)"),
            ParseTargetError::InvalidPort => write!(f, "port is not a number from 0 to 65535"),
            ParseTargetError::InvalidIpv6 => write!(f, "no IPv6 address between the brackets"),
            ParseTargetError::UnbracketedIpv6 => {
                write!(f, "an IPv6 address needs brackets: [addr]:port")
            }
            ParseTargetError::Domain(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseTargetError {}

impl From<DomainError> for ParseTargetError {
    fn from(e: DomainError) -> Self {
        ParseTargetError::Domain(e)
    }
}

impl TryFrom<(&str, u16)> for TargetAddr {
    type Error = ParseTargetError;

    /// An IP address (IPv6 with or without brackets) becomes [`TargetAddr::Ip`]; a host
    /// that starts with `[` or ends with `]` must be a bracketed IPv6 address; anything
    /// else must be a [`DomainName`] (1..=255 bytes, no NUL) and is sent as a name, for the
    /// proxy to resolve.
    ///
    /// ```
    /// use triproxy_wire::TargetAddr;
    /// let t = TargetAddr::try_from(("example.org", 443)).unwrap();
    /// assert_eq!(t.domain().and_then(|d| d.as_str()), Some("example.org"));
    /// assert!(TargetAddr::try_from(("192.0.2.7", 80)).unwrap().ip().is_some());
    /// assert!(TargetAddr::try_from(("[::1]", 80)).unwrap().ip().is_some());
    /// assert!(TargetAddr::try_from(("", 80)).is_err());
    /// ```
    fn try_from((host, port): (&str, u16)) -> Result<Self, Self::Error> {
        if host.starts_with('[') || host.ends_with(']') {
            let inner = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
            let ip: Ipv6Addr = inner
                .and_then(|h| h.parse().ok())
                .ok_or(ParseTargetError::InvalidIpv6)?;
            return Ok((ip, port).into());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok((ip, port).into());
        }
        Ok(TargetAddr::Domain(DomainName::new(host.as_bytes())?, port))
    }
}

impl FromStr for TargetAddr {
    type Err = ParseTargetError;

    /// Parses what `Display` prints: `host:port`, `[v6]:port` or `a.b.c.d:port`. The port
    /// is decimal digits only; an IPv6 address needs its brackets; a host that is not an
    /// IP address is a name (see [`TargetAddr::try_from`]).
    ///
    /// ```
    /// use triproxy_wire::{ParseTargetError, TargetAddr};
    /// let t: TargetAddr = "example.org:443".parse().unwrap();
    /// assert_eq!((t.to_string(), t.port()), ("example.org:443".to_string(), 443));
    /// assert!("[2001:db8::1]:80".parse::<TargetAddr>().unwrap().ip().is_some());
    /// assert_eq!("example.org".parse::<TargetAddr>(), Err(ParseTargetError::MissingPort));
    /// assert_eq!("::1:80".parse::<TargetAddr>(), Err(ParseTargetError::UnbracketedIpv6));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(TargetAddr::Ip(sa));
        }
        let (host, port) = s.rsplit_once(':').ok_or(ParseTargetError::MissingPort)?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseTargetError::InvalidPort);
        }
        let port = port.parse().map_err(|_| ParseTargetError::InvalidPort)?;
        if host.contains(':') && !host.starts_with('[') && !host.ends_with(']') {
            return Err(ParseTargetError::UnbracketedIpv6);
        }
        TargetAddr::try_from((host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_bounds() {
        assert_eq!(DomainName::new(b""), Err(DomainError::Empty));
        assert!(DomainName::new(&[b'a'; 255]).is_ok());
        assert_eq!(
            DomainName::new(&[b'a'; 256]),
            Err(DomainError::TooLong { len: 256 })
        );
        assert_eq!(DomainName::new(b"a\0b"), Err(DomainError::ContainsNul));
    }

    #[test]
    fn display_escapes_non_text() {
        let d = DomainName::new(b"a\xffb\n").unwrap();
        assert_eq!(d.to_string(), "a\\xffb\\x0a");
        let t = TargetAddr::Domain(DomainName::new(b"example.org").unwrap(), 443);
        assert_eq!(t.to_string(), "example.org:443");
        let t6 = TargetAddr::Ip("[::1]:80".parse().unwrap());
        assert_eq!(t6.to_string(), "[::1]:80");
        assert_eq!(t6.port(), 80);
    }

    #[test]
    fn parse_forms() {
        let p = |s: &str| s.parse::<TargetAddr>();
        assert_eq!(
            p("1.2.3.4:80"),
            Ok(TargetAddr::Ip("1.2.3.4:80".parse().unwrap()))
        );
        assert_eq!(p("[::1]:0"), Ok(TargetAddr::Ip("[::1]:0".parse().unwrap())));
        assert_eq!(
            p("localhost:65535"),
            Ok(TargetAddr::Domain(
                DomainName::new(b"localhost").unwrap(),
                65535
            ))
        );
        assert_eq!(p("localhost"), Err(ParseTargetError::MissingPort));
        assert_eq!(p("localhost:"), Err(ParseTargetError::InvalidPort));
        assert_eq!(p("localhost:+80"), Err(ParseTargetError::InvalidPort));
        assert_eq!(p("localhost:65536"), Err(ParseTargetError::InvalidPort));
        assert_eq!(p("[::1:80"), Err(ParseTargetError::InvalidIpv6));
        assert_eq!(p("[nope]:80"), Err(ParseTargetError::InvalidIpv6));
        assert_eq!(p("::1:80"), Err(ParseTargetError::UnbracketedIpv6));
        assert_eq!(p(":80"), Err(ParseTargetError::Domain(DomainError::Empty)));
        let long = format!("{}:1", "a".repeat(256));
        assert_eq!(
            p(&long),
            Err(ParseTargetError::Domain(DomainError::TooLong { len: 256 }))
        );
        // A bare IPv6 address is unambiguous in a pair.
        assert_eq!(
            TargetAddr::try_from(("::1", 80)),
            Ok(TargetAddr::Ip("[::1]:80".parse().unwrap()))
        );
    }

    proptest::proptest! {
        /// Display then parse gives the same target: IP targets, and names made of the
        /// letters, digits, dots and hyphens of DNS host names that do not read as an IP.
        #[test]
        fn display_parse_round_trip(
            ip in proptest::prelude::any::<IpAddr>(),
            name in "[a-z][a-z0-9.-]{0,62}",
            port in proptest::prelude::any::<u16>(),
        ) {
            let by_ip = TargetAddr::from((ip, port));
            proptest::prop_assert_eq!(by_ip.to_string().parse::<TargetAddr>(), Ok(by_ip.clone()));
            let by_name = TargetAddr::try_from((name.as_str(), port)).unwrap();
            proptest::prop_assert!(by_name.domain().is_some());
            proptest::prop_assert_eq!(by_name.to_string().parse::<TargetAddr>(), Ok(by_name.clone()));
        }
    }
}
