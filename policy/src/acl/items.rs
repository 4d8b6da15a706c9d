//! The items of an ACL entry's fields, each with its parser and its test against a
//! request: address ranges ([`IpRange`]), host-name patterns ([`HostPattern`]), the target
//! field ([`Targets`]), port ranges ([`PortRange`]), operations ([`OperationSet`]),
//! weekdays ([`Weekdays`]) and time periods ([`TimePeriod`]).
//!
//! One token at a time: splitting a field into items and assembling an entry is
//! [`Ace::parse`](super::Ace::parse)'s.

use super::{AclRequest, Operation, TokenProblem, MAX_ACL_NAME_LEN};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An inclusive range of addresses of one family, from `A.B.C.D`, `A.B.C.D/LEN` or
/// `A-B` (IPv6 in the same three forms).
///
/// A CIDR keeps 3proxy's leniency: host bits in the address are ignored (`10.1.2.3/8` is
/// `10.0.0.0-10.255.255.255`). An entry whose both ends are IPv4-mapped IPv6 addresses is
/// stored as IPv4 (see [`AclRequest`] on normalisation). 3proxy also resolves host names
/// in the source field at configuration time; triproxy does no I/O here and refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRange {
    /// IPv4 addresses `first..=last`.
    V4 {
        /// Lowest address.
        first: Ipv4Addr,
        /// Highest address.
        last: Ipv4Addr,
    },
    /// IPv6 addresses `first..=last`.
    V6 {
        /// Lowest address.
        first: Ipv6Addr,
        /// Highest address.
        last: Ipv6Addr,
    },
}

impl IpRange {
    /// Parses one address item.
    ///
    /// ```
    /// use triproxy_policy::acl::IpRange;
    /// let r = IpRange::parse("192.168.0.0/16").unwrap();
    /// assert!(r.contains("192.168.7.9".parse().unwrap()));
    /// assert!(r.contains("::ffff:192.168.7.9".parse().unwrap()));
    /// assert!(IpRange::parse("10.0.0.9-10.0.0.1").is_err());
    /// ```
    pub fn parse(token: &str) -> Result<IpRange, TokenProblem> {
        let range = if let Some((a, b)) = token.split_once('-') {
            let first = parse_addr(a)?;
            let last = parse_addr(b)?;
            match (first, last) {
                (IpAddr::V4(first), IpAddr::V4(last)) => IpRange::V4 { first, last },
                (IpAddr::V6(first), IpAddr::V6(last)) => IpRange::V6 { first, last },
                _ => return Err(TokenProblem::MixedFamilies),
            }
        } else if let Some((a, len)) = token.split_once('/') {
            match parse_addr(a)? {
                IpAddr::V4(addr) => {
                    let len = parse_prefix_len(len, 32)?;
                    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
                    let bits = u32::from(addr);
                    IpRange::V4 {
                        first: Ipv4Addr::from(bits & mask),
                        last: Ipv4Addr::from(bits | !mask),
                    }
                }
                IpAddr::V6(addr) => {
                    let len = parse_prefix_len(len, 128)?;
                    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
                    let bits = u128::from(addr);
                    IpRange::V6 {
                        first: Ipv6Addr::from(bits & mask),
                        last: Ipv6Addr::from(bits | !mask),
                    }
                }
            }
        } else {
            match parse_addr(token)? {
                IpAddr::V4(a) => IpRange::V4 { first: a, last: a },
                IpAddr::V6(a) => IpRange::V6 { first: a, last: a },
            }
        };
        let ascending = match range {
            IpRange::V4 { first, last } => first <= last,
            IpRange::V6 { first, last } => first <= last,
        };
        if !ascending {
            return Err(TokenProblem::DescendingRange);
        }
        Ok(range.normalised())
    }

    /// Stores a range lying entirely in `::ffff:0:0/96` as the IPv4 range it maps.
    fn normalised(self) -> IpRange {
        if let IpRange::V6 { first, last } = self {
            if let (Some(first), Some(last)) = (first.to_ipv4_mapped(), last.to_ipv4_mapped()) {
                return IpRange::V4 { first, last };
            }
        }
        self
    }

    /// Whether `ip` (IPv4-mapped IPv6 taken as IPv4) lies in the range. Families must match.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip.to_canonical()) {
            (IpRange::V4 { first, last }, IpAddr::V4(ip)) => (*first..=*last).contains(&ip),
            (IpRange::V6 { first, last }, IpAddr::V6(ip)) => (*first..=*last).contains(&ip),
            _ => false,
        }
    }
}

fn parse_addr(text: &str) -> Result<IpAddr, TokenProblem> {
    text.parse().map_err(|_| TokenProblem::NotAnAddress)
}

fn parse_prefix_len(text: &str, max: u8) -> Result<u32, TokenProblem> {
    let bad = TokenProblem::BadPrefixLength { max };
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let len: u32 = text.parse().map_err(|_| bad)?;
    if len > u32::from(max) {
        return Err(bad);
    }
    Ok(len)
}

/// How a [`HostPattern`] compares with a requested host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostMatch {
    /// `name`: the whole name.
    Exact,
    /// `prefix*`: the name starts with the pattern.
    Prefix,
    /// `*suffix`: the name ends with the pattern and is strictly longer than it.
    Suffix,
    /// `*middle*`: the name contains the pattern.
    Contains,
}

/// A host-name item of the target field: `name`, `*suffix`, `prefix*` or `*middle*`.
///
/// Matching is ASCII case-insensitive and byte-wise (names need not be UTF-8). Trailing dots
/// are stripped from the requested name and from `name` / `*suffix` patterns
/// (`example.com.` = `example.com`). Patterns match only requests that carried a host name:
/// unlike 3proxy's SOCKS service, which also compares patterns with the text of an IP-literal
/// target (so that `1.2.3.*` matches a request for `1.2.3.4`), triproxy matches addresses
/// only with address items.
///
/// Limits: at most [`MAX_ACL_NAME_LEN`] bytes; `*` only first and/or last; no spaces,
/// control characters, `/` or `:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    kind: HostMatch,
    text: String,
}

impl HostPattern {
    /// Parses one host-name item.
    ///
    /// ```
    /// use triproxy_policy::acl::{HostMatch, HostPattern};
    /// let p = HostPattern::parse("*.Example.COM").unwrap();
    /// assert_eq!(p.kind(), HostMatch::Suffix);
    /// assert!(p.matches(b"www.example.com."));
    /// assert!(!p.matches(b".example.com"));
    /// ```
    pub fn parse(token: &str) -> Result<HostPattern, TokenProblem> {
        if token.len() > MAX_ACL_NAME_LEN {
            return Err(TokenProblem::TooLong {
                max: MAX_ACL_NAME_LEN,
            });
        }
        let (starts, rest) = match token.strip_prefix('*') {
            Some(rest) => (true, rest),
            None => (false, token),
        };
        let (ends, core) = match rest.strip_suffix('*') {
            Some(core) => (true, core),
            None => (false, rest),
        };
        let kind = match (starts, ends) {
            (false, false) => HostMatch::Exact,
            (false, true) => HostMatch::Prefix,
            (true, false) => HostMatch::Suffix,
            (true, true) => HostMatch::Contains,
        };
        let core = match kind {
            HostMatch::Exact | HostMatch::Suffix => core.trim_end_matches('.'),
            HostMatch::Prefix | HostMatch::Contains => core,
        };
        let forbidden = |c: char| c.is_control() || c.is_whitespace() || "*/:,".contains(c);
        if core.is_empty() || core.chars().any(forbidden) {
            return Err(TokenProblem::BadHostPattern);
        }
        Ok(HostPattern {
            kind,
            text: core.to_ascii_lowercase(),
        })
    }

    /// How the pattern compares.
    pub fn kind(&self) -> HostMatch {
        self.kind
    }

    /// The pattern without its stars, ASCII-lowercased.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether a requested host name matches.
    pub fn matches(&self, host: &[u8]) -> bool {
        let mut host = host;
        while let Some((b'.', rest)) = host.split_last() {
            host = rest;
        }
        let pat = self.text.as_bytes();
        match self.kind {
            HostMatch::Exact => host.eq_ignore_ascii_case(pat),
            HostMatch::Prefix => host
                .get(..pat.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(pat)),
            HostMatch::Suffix => {
                host.len() > pat.len()
                    && host
                        .get(host.len() - pat.len()..)
                        .is_some_and(|tail| tail.eq_ignore_ascii_case(pat))
            }
            HostMatch::Contains => {
                pat.is_empty() || host.windows(pat.len()).any(|w| w.eq_ignore_ascii_case(pat))
            }
        }
    }
}

/// The target field: address items and host-name items.
///
/// A request matches when its (normalised) target address is in one of the address items or
/// its host name matches one of the patterns. When the request has neither an address nor
/// a host name yet, the field is skipped (it matches), as in 3proxy. Differs from 3proxy in
/// one case: an entry with only address items does not match a request that carries only an
/// unresolved host name (3proxy skips the field then, so `allow * * 10.0.0.0/8` would allow
/// any unresolved name); triproxy requires a match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Targets {
    pub(super) ips: Vec<IpRange>,
    pub(super) hosts: Vec<HostPattern>,
}

impl Targets {
    /// The address items.
    pub fn ips(&self) -> &[IpRange] {
        &self.ips
    }

    /// The host-name items.
    pub fn hosts(&self) -> &[HostPattern] {
        &self.hosts
    }

    pub(super) fn matches(&self, req: &AclRequest<'_>) -> bool {
        let ip = req.effective_target_ip();
        let host = req.target_host;
        if ip.is_none() && host.is_none() {
            return true;
        }
        let ip_hit = ip.is_some_and(|ip| self.ips.iter().any(|r| r.contains(ip)));
        let host_hit = host.is_some_and(|h| self.hosts.iter().any(|p| p.matches(h.as_bytes())));
        ip_hit || host_hit
    }
}

/// An inclusive port range from `N` or `N-M` (ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// Lowest port.
    pub first: u16,
    /// Highest port.
    pub last: u16,
}

impl PortRange {
    /// Parses `N` or `N-M` (decimal, 0..=65535, `N <= M`).
    pub fn parse(token: &str) -> Result<PortRange, TokenProblem> {
        let (a, b) = token.split_once('-').unwrap_or((token, token));
        let first = parse_port(a)?;
        let last = parse_port(b)?;
        if first > last {
            return Err(TokenProblem::DescendingRange);
        }
        Ok(PortRange { first, last })
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

fn parse_port(text: &str) -> Result<u16, TokenProblem> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenProblem::NotAPort);
    }
    text.parse().map_err(|_| TokenProblem::NotAPort)
}

/// A set of operations from the operations field.
///
/// Tokens (case-sensitive, as in 3proxy): `CONNECT BIND UDPASSOC ICMPASSOC HTTP_GET HTTP_PUT
/// HTTP_POST HTTP_HEAD HTTP_CONNECT HTTP_OTHER FTP_GET FTP_PUT FTP_LIST FTP_DATA ADMIN
/// DNSRESOLVE`, plus the groups `HTTP` (every HTTP operation except CONNECT), `HTTPS`
/// (= `HTTP_CONNECT`) and `FTP` (all four FTP operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OperationSet(pub(super) u32);

impl OperationSet {
    /// The empty set.
    pub const EMPTY: OperationSet = OperationSet(0);

    /// Parses one token of the operations field.
    ///
    /// ```
    /// use triproxy_policy::acl::{Operation, OperationSet};
    /// let http = OperationSet::parse_token("HTTP").unwrap();
    /// assert!(http.contains(Operation::HttpPost));
    /// assert!(!http.contains(Operation::HttpConnect));
    /// ```
    pub fn parse_token(token: &str) -> Result<OperationSet, TokenProblem> {
        let ops: &[Operation] = match token {
            "HTTP" => &[
                Operation::HttpGet,
                Operation::HttpPut,
                Operation::HttpPost,
                Operation::HttpHead,
                Operation::HttpOther,
            ],
            "HTTPS" => &[Operation::HttpConnect],
            "FTP" => &[
                Operation::FtpGet,
                Operation::FtpPut,
                Operation::FtpList,
                Operation::FtpData,
            ],
            _ => {
                return Operation::ALL
                    .iter()
                    .find(|op| op.name() == token)
                    .map(|op| OperationSet::EMPTY.with(*op))
                    .ok_or(TokenProblem::UnknownOperation)
            }
        };
        Ok(ops
            .iter()
            .fold(OperationSet::EMPTY, |set, op| set.with(*op)))
    }

    /// This set with `op` added.
    pub fn with(self, op: Operation) -> OperationSet {
        OperationSet(self.0 | op.bit())
    }

    /// Whether `op` is in the set.
    pub fn contains(self, op: Operation) -> bool {
        self.0 & op.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// A set of weekdays from the weekdays field: digits 0..=7 (0 and 7 = Sunday), ascending
/// ranges `a-b`, several per item (`06` = Saturday and Sunday) and comma-separated items.
/// 3proxy skips any other character silently; triproxy refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Weekdays(pub(super) u8);

impl Weekdays {
    /// Parses one comma-separated item of the weekdays field.
    ///
    /// ```
    /// use triproxy_policy::acl::Weekdays;
    /// let work = Weekdays::parse_item("1-5").unwrap();
    /// assert!(work.contains(3) && !work.contains(0) && !work.contains(6));
    /// assert!(Weekdays::parse_item("7").unwrap().contains(0));
    /// ```
    pub fn parse_item(token: &str) -> Result<Weekdays, TokenProblem> {
        let digit = |b: Option<&u8>| match b {
            Some(b @ b'0'..=b'7') => Ok(b - b'0'),
            _ => Err(TokenProblem::BadWeekday),
        };
        let bytes = token.as_bytes();
        let mut mask = 0u8;
        let mut i = 0;
        while i < bytes.len() {
            let from = digit(bytes.get(i))?;
            let mut to = from;
            i += 1;
            if bytes.get(i) == Some(&b'-') {
                to = digit(bytes.get(i + 1))?;
                if to < from {
                    return Err(TokenProblem::BadWeekday);
                }
                i += 2;
            }
            for day in from..=to {
                mask |= 1 << (day % 7);
            }
        }
        if mask == 0 {
            return Err(TokenProblem::BadWeekday);
        }
        Ok(Weekdays(mask))
    }

    /// The union of two sets.
    pub fn union(self, other: Weekdays) -> Weekdays {
        Weekdays(self.0 | other.0)
    }

    /// Whether the set holds `weekday` (0 = Sunday; taken modulo 7).
    pub fn contains(self, weekday: u8) -> bool {
        self.0 & (1 << (weekday % 7)) != 0
    }
}

/// A time period `HH:MM:SS-HH:MM:SS` in seconds since local midnight, matching
/// `start <= t < end`. Hours 00..=23 (the end may be `24:00:00`), minutes and seconds
/// 00..=59, and the end must be after the start (3proxy stops parsing the field at a
/// period whose end is before its start; triproxy refuses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimePeriod {
    /// First second of the period.
    pub start: u32,
    /// First second after the period.
    pub end: u32,
}

impl TimePeriod {
    /// Parses one period.
    ///
    /// ```
    /// use triproxy_policy::acl::TimePeriod;
    /// let p = TimePeriod::parse("09:00:00-18:00:00").unwrap();
    /// assert!(p.contains(9 * 3600) && !p.contains(18 * 3600));
    /// ```
    pub fn parse(token: &str) -> Result<TimePeriod, TokenProblem> {
        let (a, b) = token.split_once('-').ok_or(TokenProblem::BadTimePeriod)?;
        let start = parse_clock(a)?;
        let end = parse_clock(b)?;
        if end <= start {
            return Err(TokenProblem::EmptyTimePeriod);
        }
        Ok(TimePeriod { start, end })
    }

    /// Whether `seconds_of_day` is in the period.
    pub fn contains(&self, seconds_of_day: u32) -> bool {
        (self.start..self.end).contains(&seconds_of_day)
    }
}

fn parse_clock(text: &str) -> Result<u32, TokenProblem> {
    let bad = TokenProblem::BadTimePeriod;
    let b = text.as_bytes();
    let two = |i: usize| -> Result<u32, TokenProblem> {
        match (b.get(i), b.get(i + 1)) {
            (Some(h @ b'0'..=b'9'), Some(l @ b'0'..=b'9')) => {
                Ok(u32::from(h - b'0') * 10 + u32::from(l - b'0'))
            }
            _ => Err(bad),
        }
    };
    if b.len() != 8 || b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return Err(bad);
    }
    let (h, m, s) = (two(0)?, two(3)?, two(6)?);
    if m > 59 || s > 59 || h > 24 || (h == 24 && (m, s) != (0, 0)) {
        return Err(bad);
    }
    Ok(h * 3600 + m * 60 + s)
}
