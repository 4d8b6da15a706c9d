//! Resolver configuration in 3proxy's terms: `nserver ADDR[:PORT][/tcp]` (up to
//! [`MAX_SERVERS`]), `nscache`/`nscache6` sizes, `nsrecord NAME ADDR`, `fakeresolve`, and the
//! services' `-4`/`-6`/`-46`/`-64` family preference. Parsing of the config file itself is
//! the daemon's job; this module only parses the `nserver` argument.

use core::fmt;
use core::str::FromStr;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// 3proxy's `MAXNSERVERS`: at most this many `nserver` lines are used.
pub const MAX_SERVERS: usize = 5;
/// Default DNS port when `nserver` gives none.
pub const DEFAULT_PORT: u16 = 53;

/// How a query goes to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// One datagram per query (RFC 1035 section 4.2.1), at most 512 bytes.
    Udp,
    /// A TCP stream, each message prefixed by its 2-byte length (RFC 1035 section 4.2.2).
    Tcp,
}

/// One `nserver ADDR[:PORT][/tcp]`.
///
/// ```
/// use triproxy_dns::{NameServer, Transport};
/// let s: NameServer = "192.0.2.1".parse().unwrap();
/// assert_eq!((s.addr.to_string(), s.transport), ("192.0.2.1:53".into(), Transport::Udp));
/// let s: NameServer = "[2001:db8::1]:5353/tcp".parse().unwrap();
/// assert_eq!((s.addr.port(), s.transport), (5353, Transport::Tcp));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameServer {
    /// The server's address.
    pub addr: SocketAddr,
    /// UDP (with TCP retries for truncated answers) or TCP only (`/tcp`).
    pub transport: Transport,
}

/// An `nserver` argument that is not `ADDR[:PORT][/tcp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameServerError {
    /// The address is not an IPv4 or IPv6 literal (3proxy takes no names here).
    BadAddress,
    /// The port is not a number in 1..=65535.
    BadPort,
    /// The suffix after `/` is not `tcp`.
    BadSuffix,
}

impl fmt::Display for NameServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadAddress => "nserver: the address is not an IP literal",
            Self::BadPort => "nserver: the port is not in 1..65535",
            Self::BadSuffix => "nserver: only /tcp may follow the address",
        })
    }
}

impl std::error::Error for NameServerError {}

impl FromStr for NameServer {
    type Err = NameServerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (host, transport) = match s.split_once('/') {
            None => (s, Transport::Udp),
            Some((h, t)) if t.eq_ignore_ascii_case("tcp") => (h, Transport::Tcp),
            Some(_) => return Err(NameServerError::BadSuffix),
        };
        let parse_port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(NameServerError::BadPort),
            Ok(n) => Ok(n),
        };
        // A bare IPv6 literal ("2001:db8::1"), "[v6]:port", "[v6]", "v4" or "v4:port".
        let addr = if let Ok(ip) = host.parse::<IpAddr>() {
            SocketAddr::new(ip, DEFAULT_PORT)
        } else if let Some(rest) = host.strip_prefix('[') {
            let (ip, after) = rest.split_once(']').ok_or(NameServerError::BadAddress)?;
            let ip: IpAddr = ip.parse().map_err(|_| NameServerError::BadAddress)?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => parse_port(p.strip_prefix(':').ok_or(NameServerError::BadPort)?)?,
            };
            SocketAddr::new(ip, port)
        } else {
            let (ip, port) = host.rsplit_once(':').ok_or(NameServerError::BadAddress)?;
            let ip: IpAddr = ip.parse().map_err(|_| NameServerError::BadAddress)?;
            SocketAddr::new(ip, parse_port(port)?)
        };
        Ok(NameServer { addr, transport })
    }
}

/// Which address families a service asks for, and in which order results come
/// (3proxy's service options `-4`, `-6`, `-46`, `-64`; 3proxy's default is `-4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Family {
    /// `-4`: A records only.
    #[default]
    V4,
    /// `-6`: AAAA records only.
    V6,
    /// `-46`: both, IPv4 addresses first.
    V4ThenV6,
    /// `-64`: both, IPv6 addresses first.
    V6ThenV4,
}

/// The resolver's configuration. Every size is a hard bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// `nserver` lines in order; only the first [`MAX_SERVERS`] are used. Empty: the
    /// resolver answers only from `nsrecord`, `fakeresolve` and IP literals, and reports
    /// [`ResolveError::NoServers`](crate::ResolveError::NoServers) for the rest (the daemon
    /// then uses the system resolver, as 3proxy does without `nserver`).
    pub servers: Vec<NameServer>,
    /// How long one try waits for an answer before the next server is asked.
    pub try_timeout: Duration,
    /// Rounds over the server list: a name fails with `Timeout` after
    /// `attempts * servers.len()` unanswered tries (at least one try).
    pub attempts: u8,
    /// `nscache`: entries in the A cache (0 disables it).
    pub cache_v4: usize,
    /// `nscache6`: entries in the AAAA cache (0 disables it).
    pub cache_v6: usize,
    /// Upper bound on a positive entry's lifetime, whatever the TTL says.
    pub max_ttl: Duration,
    /// Lifetime of a negative entry (NXDOMAIN, NODATA): the SOA's minimum from the
    /// authority section (RFC 2308 section 5), capped at this; this value when there is no
    /// SOA.
    pub negative_ttl: Duration,
    /// `nsrecord NAME ADDR` entries, checked before the cache and the servers. An address of
    /// `0.0.0.0` makes the name never resolve (3proxy's blacklist form).
    pub static_records: Vec<(String, IpAddr)>,
    /// `fakeresolve`: every name resolves to 127.0.0.2 (and `::2` for AAAA), without
    /// asking anyone.
    pub fake_resolve: bool,
    /// Lookups in flight at once; more are answered `TooManyPending` at once.
    pub max_pending: usize,
}

impl Default for ResolverConfig {
    /// No servers, 5 s per try, 2 rounds, 3proxy's default cache sizes (65536 entries for A,
    /// 65536 for AAAA), TTL capped at one day, negative entries at most 5 minutes, 1024
    /// lookups in flight.
    fn default() -> Self {
        ResolverConfig {
            servers: Vec::new(),
            try_timeout: Duration::from_secs(5),
            attempts: 2,
            cache_v4: 65536,
            cache_v6: 65536,
            max_ttl: Duration::from_secs(86_400),
            negative_ttl: Duration::from_secs(300),
            static_records: Vec::new(),
            fake_resolve: false,
            max_pending: 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nserver_syntax() {
        let p = |s: &str| s.parse::<NameServer>();
        assert_eq!(p("10.0.0.1:5353").unwrap().addr.port(), 5353);
        assert_eq!(p("10.0.0.1/TCP").unwrap().transport, Transport::Tcp);
        assert_eq!(p("::1").unwrap().addr.port(), 53);
        assert_eq!(p("[::1]").unwrap().addr.port(), 53);
        assert_eq!(p("[::1]:54/tcp").unwrap().addr.port(), 54);
        assert_eq!(p("10.0.0.1:0"), Err(NameServerError::BadPort));
        assert_eq!(p("10.0.0.1:x"), Err(NameServerError::BadPort));
        assert_eq!(p("dns.example"), Err(NameServerError::BadAddress));
        assert_eq!(p("10.0.0.1/udp"), Err(NameServerError::BadSuffix));
        assert_eq!(p("[::1]x"), Err(NameServerError::BadPort));
        assert_eq!(p(""), Err(NameServerError::BadAddress));
    }
}
