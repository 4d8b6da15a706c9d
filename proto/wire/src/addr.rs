//! What a client asks to reach: an IP socket address or a bounded domain name and port.

use arrayvec::ArrayVec;
use core::fmt;
use std::net::{IpAddr, SocketAddr};

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
}
