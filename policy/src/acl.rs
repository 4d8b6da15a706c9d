//! Access control lists: 3proxy's `allow` / `deny` entries and their first-match evaluation.
//!
//! This module parses the words that follow `allow` or `deny` in a 3proxy configuration into
//! an [`Ace`], and answers, for one request described by an [`AclRequest`], whether an ACL
//! (a slice of entries, in configuration order) allows it, denies it, or has no matching
//! entry ([`check`]). The semantics follow 3proxy 1.0 (`src/conf.c make_ace()`,
//! `src/acl.c ACLmatches()/checkACL()`); every place where triproxy differs is stated on the
//! item concerned.
//!
//! It is not the `auth` chain (see [`crate::auth`], which decides *which* user name an ACL
//! sees), and it does not resolve names, read clocks or know about parents, bandwidth limits
//! or traffic counters: the caller passes the resolved address and the civil time, and the
//! other 3proxy commands that reuse the ACL tail (`bandlimin`, `connlim`, `countin`, ...) can
//! reuse [`Ace::parse`] and [`Ace::matches`].

use crate::parent::{ParentError, ParentHop, Parents};
use arrayvec::ArrayString;
use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use triproxy_wire::{DomainName, LogCode};

/// Most items one comma-separated ACL field may list (users, addresses, ports, periods...).
/// 3proxy has no limit; triproxy refuses longer lists with [`AclError::TooManyItems`].
pub const MAX_LIST_ITEMS: usize = 4096;

/// Most fields after `allow`/`deny`: users, sources, targets, ports, operations, weekdays,
/// time periods, weight.
pub const MAX_ACE_FIELDS: usize = 8;

/// Longest user name or host-name pattern an ACL item may hold, in bytes (the longest name
/// RFC 1929 and a SOCKS5 domain name can carry).
pub const MAX_ACL_NAME_LEN: usize = 255;

/// Longest excerpt of a configuration token kept in an error ([`ConfigToken`]), in bytes.
pub const TOKEN_EXCERPT_LEN: usize = 64;

/// Seconds in a day: the largest end of a [`TimePeriod`] (`24:00:00`).
pub const SECONDS_PER_DAY: u32 = 86_400;

// ---------------------------------------------------------------------------------------
// Error vocabulary shared with `users` and `auth`.

/// A bounded copy of the configuration text an error is about, so that errors own no
/// `String` and stay small. Texts longer than [`TOKEN_EXCERPT_LEN`] bytes are cut at a
/// character boundary and printed with a trailing `...`; control characters are escaped
/// when printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConfigToken {
    text: ArrayString<TOKEN_EXCERPT_LEN>,
    truncated: bool,
}

impl ConfigToken {
    /// Copies (at most [`TOKEN_EXCERPT_LEN`] bytes of) `text`.
    ///
    /// ```
    /// use triproxy_policy::acl::ConfigToken;
    /// assert_eq!(ConfigToken::new("10.0.0.0/33").to_string(), "10.0.0.0/33");
    /// let long = "x".repeat(100);
    /// assert!(ConfigToken::new(&long).is_truncated());
    /// ```
    pub fn new(text: &str) -> Self {
        let mut out = ArrayString::new();
        let mut truncated = false;
        for c in text.chars() {
            if out.try_push(c).is_err() {
                truncated = true;
                break;
            }
        }
        Self {
            text: out,
            truncated,
        }
    }

    /// The kept text (possibly cut short).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the original text was longer than what is kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for ConfigToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.text.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if self.truncated {
            write!(f, "...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConfigToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Which field of an ACL entry a parse error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclField {
    /// Field 1: user names.
    Users,
    /// Field 2: client (source) addresses.
    Sources,
    /// Field 3: target addresses and host-name patterns.
    Targets,
    /// Field 4: target ports.
    Ports,
    /// Field 5: operations (`CONNECT`, `HTTP_GET`, ...).
    Operations,
    /// Field 6: weekdays.
    Weekdays,
    /// Field 7: time periods.
    TimePeriods,
    /// Field 8: weight.
    Weight,
}

impl AclField {
    const ORDER: [AclField; MAX_ACE_FIELDS] = [
        AclField::Users,
        AclField::Sources,
        AclField::Targets,
        AclField::Ports,
        AclField::Operations,
        AclField::Weekdays,
        AclField::TimePeriods,
        AclField::Weight,
    ];

    /// The field's name as printed in errors.
    pub fn name(self) -> &'static str {
        match self {
            AclField::Users => "users",
            AclField::Sources => "source addresses",
            AclField::Targets => "targets",
            AclField::Ports => "ports",
            AclField::Operations => "operations",
            AclField::Weekdays => "weekdays",
            AclField::TimePeriods => "time periods",
            AclField::Weight => "weight",
        }
    }
}

impl fmt::Display for AclField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with one token of an ACL field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenProblem {
    /// An empty item (an empty field, or `a,,b`).
    EmptyItem,
    /// `*` inside a list: `*` means "any" only as the whole field.
    StarInList,
    /// An item longer than allowed.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// Not an IPv4/IPv6 address, `ADDR/LEN` or `ADDR-ADDR` (the source field takes no host
    /// names; a target that looks numeric must be a valid address).
    NotAnAddress,
    /// A CIDR prefix length that is not a number or too large for the family.
    BadPrefixLength {
        /// The largest valid prefix length for the family (32 or 128).
        max: u8,
    },
    /// A range whose end is below its start (`A-B` with `B < A`).
    DescendingRange,
    /// An address range mixing IPv4 and IPv6.
    MixedFamilies,
    /// A host-name pattern with `*` in the middle, nothing but `*`/dots, or forbidden
    /// characters (control characters, spaces, `/`, `:`).
    BadHostPattern,
    /// Not a port number (0..=65535) or port range.
    NotAPort,
    /// Not one of 3proxy's operation names.
    UnknownOperation,
    /// Not a weekday digit (0..=7) or an ascending `a-b` range of them.
    BadWeekday,
    /// Not of the form `HH:MM:SS-HH:MM:SS`.
    BadTimePeriod,
    /// A time period whose end is not after its start (3proxy has no midnight wrap; write
    /// two periods).
    EmptyTimePeriod,
    /// Not a decimal number that fits in 32 bits.
    NotANumber,
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenProblem::EmptyItem => write!(f, "empty item"),
            TokenProblem::StarInList => write!(f, "`*` must stand alone as the whole field"),
            TokenProblem::TooLong { max } => write!(f, "longer than {max} bytes"),
            TokenProblem::NotAnAddress => {
                write!(f, "not an IP address, ADDR/LEN network or ADDR-ADDR range")
            }
            TokenProblem::BadPrefixLength { max } => {
                write!(f, "prefix length must be a number from 0 to {max}")
            }
            TokenProblem::DescendingRange => write!(f, "range end is below its start"),
            TokenProblem::MixedFamilies => write!(f, "range mixes IPv4 and IPv6"),
            TokenProblem::BadHostPattern => write!(
                f,
                "bad host-name pattern (use name, *suffix, prefix* or *middle*)"
            ),
            TokenProblem::NotAPort => write!(f, "not a port (0-65535) or ascending port range"),
            TokenProblem::UnknownOperation => write!(f, "unknown operation"),
            TokenProblem::BadWeekday => {
                write!(
                    f,
                    "weekdays are digits 0-7 (0 and 7 = Sunday) or ranges like 1-5"
                )
            }
            TokenProblem::BadTimePeriod => write!(f, "time periods are HH:MM:SS-HH:MM:SS"),
            TokenProblem::EmptyTimePeriod => write!(
                f,
                "time period ends before or when it starts (no wrap past midnight: use two periods)"
            ),
            TokenProblem::NotANumber => write!(f, "not a number"),
        }
    }
}

/// Why the words after `allow`/`deny` are not a valid ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclError {
    /// More than [`MAX_ACE_FIELDS`] fields.
    TooManyFields {
        /// How many fields were given.
        count: usize,
    },
    /// A list field with more than [`MAX_LIST_ITEMS`] items.
    TooManyItems {
        /// The field.
        field: AclField,
        /// The limit.
        max: usize,
    },
    /// One token of a field is invalid.
    BadToken {
        /// The field.
        field: AclField,
        /// The offending token (for an empty item, the whole field).
        token: ConfigToken,
        /// What is wrong with it.
        problem: TokenProblem,
    },
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclError::TooManyFields { count } => write!(
                f,
                "ACL entry has {count} fields; at most {MAX_ACE_FIELDS} \
                 (users sources targets ports operations weekdays times weight)"
            ),
            AclError::TooManyItems { field, max } => {
                write!(f, "ACL field {field}: more than {max} items")
            }
            AclError::BadToken {
                field,
                token,
                problem,
            } => write!(f, "ACL field {field}: bad token `{token}`: {problem}"),
        }
    }
}

impl std::error::Error for AclError {}

// ---------------------------------------------------------------------------------------
// Request side.

/// What an ACL entry allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// `allow`: a matching request is allowed (log code 0).
    Allow,
    /// `deny`: a matching request is refused (log code 1).
    Deny,
}

/// What a request does, for the operations field (3proxy's `param->operation`).
///
/// SOCKS `CONNECT`, `tcppm`, `pop3p` and `smtpp` requests are [`Operation::Connect`]. HTTP
/// methods map as 3proxy does: `CONNECT` → [`Operation::HttpConnect`], `GET`, `PUT`, `POST`
/// (and `BITS_POST`), `HEAD` to their own operation, any other method to
/// [`Operation::HttpOther`]; `ftp://` URLs fetched through the HTTP proxy use the `Ftp*`
/// operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// TCP connect (SOCKS CONNECT, port mappers, mail proxies). `CONNECT`.
    Connect,
    /// SOCKS BIND. `BIND`.
    Bind,
    /// SOCKS5 UDP ASSOCIATE. `UDPASSOC`.
    UdpAssoc,
    /// ICMP association. `ICMPASSOC`.
    IcmpAssoc,
    /// HTTP GET. `HTTP_GET`.
    HttpGet,
    /// HTTP PUT. `HTTP_PUT`.
    HttpPut,
    /// HTTP POST. `HTTP_POST`.
    HttpPost,
    /// HTTP HEAD. `HTTP_HEAD`.
    HttpHead,
    /// HTTP CONNECT. `HTTP_CONNECT` or `HTTPS`.
    HttpConnect,
    /// Any other HTTP method. `HTTP_OTHER`.
    HttpOther,
    /// FTP download. `FTP_GET`.
    FtpGet,
    /// FTP upload. `FTP_PUT`.
    FtpPut,
    /// FTP directory listing. `FTP_LIST`.
    FtpList,
    /// FTP data connection. `FTP_DATA`.
    FtpData,
    /// Web administration. `ADMIN`.
    Admin,
    /// DNS proxy resolution. `DNSRESOLVE`.
    DnsResolve,
}

impl Operation {
    /// Every operation, in 3proxy's bit order.
    pub const ALL: [Operation; 16] = [
        Operation::Connect,
        Operation::Bind,
        Operation::UdpAssoc,
        Operation::IcmpAssoc,
        Operation::HttpGet,
        Operation::HttpPut,
        Operation::HttpPost,
        Operation::HttpHead,
        Operation::HttpConnect,
        Operation::HttpOther,
        Operation::FtpGet,
        Operation::FtpPut,
        Operation::FtpList,
        Operation::FtpData,
        Operation::Admin,
        Operation::DnsResolve,
    ];

    fn bit(self) -> u32 {
        let index = match self {
            Operation::Connect => 0,
            Operation::Bind => 1,
            Operation::UdpAssoc => 2,
            Operation::IcmpAssoc => 3,
            Operation::HttpGet => 4,
            Operation::HttpPut => 5,
            Operation::HttpPost => 6,
            Operation::HttpHead => 7,
            Operation::HttpConnect => 8,
            Operation::HttpOther => 9,
            Operation::FtpGet => 10,
            Operation::FtpPut => 11,
            Operation::FtpList => 12,
            Operation::FtpData => 13,
            Operation::Admin => 14,
            Operation::DnsResolve => 15,
        };
        1 << index
    }

    /// The configuration token naming exactly this operation (`CONNECT`, `HTTP_GET`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Connect => "CONNECT",
            Operation::Bind => "BIND",
            Operation::UdpAssoc => "UDPASSOC",
            Operation::IcmpAssoc => "ICMPASSOC",
            Operation::HttpGet => "HTTP_GET",
            Operation::HttpPut => "HTTP_PUT",
            Operation::HttpPost => "HTTP_POST",
            Operation::HttpHead => "HTTP_HEAD",
            Operation::HttpConnect => "HTTP_CONNECT",
            Operation::HttpOther => "HTTP_OTHER",
            Operation::FtpGet => "FTP_GET",
            Operation::FtpPut => "FTP_PUT",
            Operation::FtpList => "FTP_LIST",
            Operation::FtpData => "FTP_DATA",
            Operation::Admin => "ADMIN",
            Operation::DnsResolve => "DNSRESOLVE",
        }
    }
}

/// Local civil time at the start of the connection, for the weekday and time-period fields.
/// The caller computes it (policy reads no clock).
///
/// `weekday` counts from 0 = Sunday to 6 = Saturday; larger values are taken modulo 7.
/// `seconds_of_day` counts from local midnight (0..86400); a value of 86400 or more is in no
/// time period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CivilTime {
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u8,
    /// Seconds since local midnight.
    pub seconds_of_day: u32,
}

/// One request as the ACL sees it.
///
/// * `user`: the name the auth chain exposes to ACLs ([`crate::auth`]); `None` (and the
///   empty name) match the user-list entry `-`.
/// * `client`: the client's address. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is
///   treated as the IPv4 address `a.b.c.d`, and so is `target_ip`. 3proxy does not do this
///   (a mapped client matches only IPv6 entries); triproxy normalises so that a dual-stack
///   listener cannot be used to slip past IPv4 rules.
/// * `target_host`: the host name the client asked for, if it asked by name.
/// * `target_ip`: the requested or resolved target address, if known. The unspecified
///   address (`0.0.0.0`, `::`) counts as unknown except for [`Operation::Bind`], as in 3proxy.
/// * `port`: the target port, if known; port 0 counts as unknown except for
///   [`Operation::Bind`], as in 3proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclRequest<'a> {
    /// User name seen by the ACL (`None` = `-`).
    pub user: Option<&'a str>,
    /// Client address.
    pub client: IpAddr,
    /// Requested host name, if the request carried one.
    pub target_host: Option<&'a DomainName>,
    /// Requested or resolved target address, if known.
    pub target_ip: Option<IpAddr>,
    /// Target port, if known.
    pub port: Option<u16>,
    /// What the request does.
    pub operation: Operation,
    /// Civil time at connection start.
    pub time: CivilTime,
}

impl AclRequest<'_> {
    fn acl_user(&self) -> &str {
        match self.user {
            Some(u) if !u.is_empty() => u,
            _ => "-",
        }
    }

    fn effective_target_ip(&self) -> Option<IpAddr> {
        let ip = self.target_ip?.to_canonical();
        if ip.is_unspecified() && self.operation != Operation::Bind {
            None
        } else {
            Some(ip)
        }
    }

    fn effective_port(&self) -> Option<u16> {
        match self.port {
            Some(0) if self.operation != Operation::Bind => None,
            other => other,
        }
    }
}

/// The answer of an ACL for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclVerdict {
    /// The first matching entry is `allow`, or the ACL is empty.
    Allow,
    /// The first matching entry is `deny`.
    Deny,
    /// The ACL is not empty and no entry matches (refused by default).
    NoMatch,
}

impl AclVerdict {
    /// The 3proxy log code of a refusal: `deny` → 1, no match → 3; `None` when allowed.
    ///
    /// ```
    /// use triproxy_policy::acl::AclVerdict;
    /// assert_eq!(AclVerdict::NoMatch.log_code().map(|c| c.get()), Some(3));
    /// assert_eq!(AclVerdict::Allow.log_code(), None);
    /// ```
    pub fn log_code(self) -> Option<LogCode> {
        match self {
            AclVerdict::Allow => None,
            AclVerdict::Deny => Some(LogCode::ACL_DENIED),
            AclVerdict::NoMatch => Some(LogCode::ACL_NO_MATCH),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Items of the fields.

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
    ips: Vec<IpRange>,
    hosts: Vec<HostPattern>,
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

    fn matches(&self, req: &AclRequest<'_>) -> bool {
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
pub struct OperationSet(u32);

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
pub struct Weekdays(u8);

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

fn parse_weight(text: &str) -> Result<u32, TokenProblem> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenProblem::NotANumber);
    }
    text.parse().map_err(|_| TokenProblem::NotANumber)
}

fn parse_user(token: &str) -> Result<String, TokenProblem> {
    if token.len() > MAX_ACL_NAME_LEN {
        return Err(TokenProblem::TooLong {
            max: MAX_ACL_NAME_LEN,
        });
    }
    Ok(token.to_owned())
}

/// Whether a target token that failed to parse as an address should be reported as a bad
/// address rather than read as a host-name pattern: it has `:` or `/`, or it is made only
/// of digits, dots and dashes and ends in a digit (like `1.2.3.256` or `10.0.0.9-10.0.0.1`).
fn looks_numeric(token: &str) -> bool {
    token.contains([':', '/'])
        || (token
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            && token.bytes().last().is_some_and(|b| b.is_ascii_digit()))
}

enum TargetItem {
    Ip(IpRange),
    Host(HostPattern),
}

fn parse_target(token: &str) -> Result<TargetItem, TokenProblem> {
    match IpRange::parse(token) {
        Ok(range) => Ok(TargetItem::Ip(range)),
        Err(problem) if looks_numeric(token) => Err(problem),
        Err(_) => HostPattern::parse(token).map(TargetItem::Host),
    }
}

/// Splits a list field on commas and parses each item; `*` alone means "any" (`None`).
fn parse_list<T>(
    field: AclField,
    text: &str,
    mut item: impl FnMut(&str) -> Result<T, TokenProblem>,
) -> Result<Option<Vec<T>>, AclError> {
    if text == "*" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for token in text.split(',') {
        if out.len() >= MAX_LIST_ITEMS {
            return Err(AclError::TooManyItems {
                field,
                max: MAX_LIST_ITEMS,
            });
        }
        let bad = |token: &str, problem| AclError::BadToken {
            field,
            token: ConfigToken::new(token),
            problem,
        };
        if token.is_empty() {
            return Err(bad(text, TokenProblem::EmptyItem));
        }
        if token == "*" {
            return Err(bad(token, TokenProblem::StarInList));
        }
        out.push(item(token).map_err(|problem| bad(token, problem))?);
    }
    Ok(Some(out))
}

// ---------------------------------------------------------------------------------------
// Entries.

/// One access control entry: the fields of an `allow` or `deny` line.
///
/// Each field is `None` when it was omitted or `*` (matches anything). The weight is parsed
/// and kept for callers, but matching does not use it: 3proxy's rule "an entry with weight
/// W matches only if W ≥ the weight of the entry matched before on this connection" needs
/// per-connection state that [`AclRequest`] does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// Allow or deny.
    pub action: Action,
    users: Option<Vec<String>>,
    sources: Option<Vec<IpRange>>,
    targets: Option<Targets>,
    ports: Option<Vec<PortRange>>,
    operations: Option<OperationSet>,
    weekdays: Option<Weekdays>,
    times: Option<Vec<TimePeriod>>,
    weight: Option<u32>,
    /// `parent` lines after an `allow` line (empty: connect directly).
    parents: Parents,
    /// `nolog` after the line: connections this entry decides leave no log record.
    logging: Logging,
}

/// Whether the connections an ACL entry decides are logged (3proxy's `nolog` command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logging {
    /// The default: one record per connection (or HTTP request).
    #[default]
    Logged,
    /// `nolog`: the record is produced but not written (health checks, monitoring).
    Unlogged,
}

impl Ace {
    /// Parses the words after `allow` / `deny`:
    /// `[users [sources [targets [ports [operations [weekdays [times [weight]]]]]]]]`.
    ///
    /// Lists are comma-separated without spaces; an omitted trailing field or `*` means any.
    /// Limits: [`MAX_ACE_FIELDS`] fields, [`MAX_LIST_ITEMS`] items per list,
    /// [`MAX_ACL_NAME_LEN`] bytes per user name or host pattern. Errors name the field and
    /// the offending token. (3proxy 1.0 `make_ace()`, reference section 7.)
    ///
    /// ```
    /// use triproxy_policy::acl::{Ace, Action};
    /// let ace = Ace::parse(Action::Allow, &["*", "10.0.0.0/8", "*.example.com", "80,443"]).unwrap();
    /// assert_eq!(ace.ports().map(|p| p.len()), Some(2));
    /// let err = Ace::parse(Action::Deny, &["*", "*", "*", "80-70"]).unwrap_err();
    /// assert_eq!(err.to_string(), "ACL field ports: bad token `80-70`: range end is below its start");
    /// ```
    pub fn parse(action: Action, fields: &[&str]) -> Result<Ace, AclError> {
        if fields.len() > MAX_ACE_FIELDS {
            return Err(AclError::TooManyFields {
                count: fields.len(),
            });
        }
        let mut ace = Ace::any(action);
        for (field, text) in AclField::ORDER.iter().copied().zip(fields.iter().copied()) {
            match field {
                AclField::Users => ace.users = parse_list(field, text, parse_user)?,
                AclField::Sources => ace.sources = parse_list(field, text, IpRange::parse)?,
                AclField::Targets => {
                    ace.targets = parse_list(field, text, parse_target)?.map(|items| {
                        let mut t = Targets::default();
                        for item in items {
                            match item {
                                TargetItem::Ip(r) => t.ips.push(r),
                                TargetItem::Host(h) => t.hosts.push(h),
                            }
                        }
                        t
                    });
                }
                AclField::Ports => ace.ports = parse_list(field, text, PortRange::parse)?,
                AclField::Operations => {
                    ace.operations =
                        parse_list(field, text, OperationSet::parse_token)?.map(|sets| {
                            sets.into_iter()
                                .fold(OperationSet::EMPTY, |a, b| OperationSet(a.0 | b.0))
                        });
                }
                AclField::Weekdays => {
                    ace.weekdays = parse_list(field, text, Weekdays::parse_item)?
                        .map(|sets| sets.into_iter().fold(Weekdays(0), Weekdays::union));
                }
                AclField::TimePeriods => {
                    ace.times = parse_list(field, text, TimePeriod::parse)?;
                }
                AclField::Weight => {
                    ace.weight = if text == "*" {
                        None
                    } else {
                        Some(parse_weight(text).map_err(|problem| AclError::BadToken {
                            field,
                            token: ConfigToken::new(text),
                            problem,
                        })?)
                    };
                }
            }
        }
        Ok(ace)
    }

    /// An entry with every field "any" (`allow` or `deny` alone).
    pub fn any(action: Action) -> Ace {
        Ace {
            action,
            users: None,
            sources: None,
            targets: None,
            ports: None,
            operations: None,
            weekdays: None,
            times: None,
            weight: None,
            parents: Parents::new(),
            logging: Logging::Logged,
        }
    }

    /// `nolog`: the connections this entry decides are not logged.
    pub fn set_nolog(&mut self) {
        self.logging = Logging::Unlogged;
    }

    /// Whether the connections this entry decides are logged.
    pub fn logging(&self) -> Logging {
        self.logging
    }

    /// Whether every field of the entry matches the request (see [`AclRequest`] for how
    /// users, addresses and ports are compared and [`Targets`] for the target field).
    pub fn matches(&self, req: &AclRequest<'_>) -> bool {
        if let Some(users) = &self.users {
            let name = req.acl_user();
            if !users.iter().any(|u| u == name) {
                return false;
            }
        }
        if let Some(sources) = &self.sources {
            if !sources.iter().any(|r| r.contains(req.client)) {
                return false;
            }
        }
        if let Some(targets) = &self.targets {
            if !targets.matches(req) {
                return false;
            }
        }
        if let (Some(ports), Some(port)) = (&self.ports, req.effective_port()) {
            if !ports.iter().any(|r| r.contains(port)) {
                return false;
            }
        }
        if let Some(ops) = self.operations {
            if !ops.contains(req.operation) {
                return false;
            }
        }
        if let Some(days) = self.weekdays {
            if !days.contains(req.time.weekday) {
                return false;
            }
        }
        if let Some(times) = &self.times {
            if !times.iter().any(|p| p.contains(req.time.seconds_of_day)) {
                return false;
            }
        }
        true
    }

    /// The user names (`None` = any user; `-` stands for "no user").
    pub fn users(&self) -> Option<&[String]> {
        self.users.as_deref()
    }

    /// The client address ranges (`None` = any).
    pub fn sources(&self) -> Option<&[IpRange]> {
        self.sources.as_deref()
    }

    /// The target items (`None` = any).
    pub fn targets(&self) -> Option<&Targets> {
        self.targets.as_ref()
    }

    /// The port ranges (`None` = any).
    pub fn ports(&self) -> Option<&[PortRange]> {
        self.ports.as_deref()
    }

    /// The operations (`None` = any).
    pub fn operations(&self) -> Option<OperationSet> {
        self.operations
    }

    /// The weekdays (`None` = any).
    pub fn weekdays(&self) -> Option<Weekdays> {
        self.weekdays
    }

    /// The time periods (`None` = any time).
    pub fn time_periods(&self) -> Option<&[TimePeriod]> {
        self.times.as_deref()
    }

    /// The weight (field 8), if given and not `*`.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    /// The parent proxies of an `allow` entry (empty: connect directly).
    pub fn parents(&self) -> &Parents {
        &self.parents
    }

    /// Adds a `parent` line to this entry. Only `allow` entries take parents.
    pub fn push_parent(&mut self, hop: ParentHop) -> Result<(), ParentError> {
        if self.action != Action::Allow {
            return Err(ParentError::NotAfterAllow);
        }
        self.parents.push(hop)
    }
}

/// Index of the first entry that matches the request, if any. As in 3proxy, an entry with
/// parents is passed over for BIND and ICMP requests, which cannot go through a chain.
///
/// A UDP ASSOCIATE request without a destination (its DST is the client's own address,
/// usually `0.0.0.0:0`; every datagram is checked later with its real destination) is
/// not refused by a `deny` entry that restricts the destination (address or port): that
/// entry denies only some destinations, which the per-datagram check refuses. 3proxy
/// judges the request's DST like a destination instead, so that `deny * * * 25` refuses
/// every association naming `0.0.0.0:0`.
pub fn first_match(acl: &[Ace], req: &AclRequest<'_>) -> Option<usize> {
    let chainable = !matches!(req.operation, Operation::Bind | Operation::IcmpAssoc);
    let any_destination = req.operation == Operation::UdpAssoc
        && req.effective_target_ip().is_none()
        && req.target_host.is_none()
        && req.effective_port().is_none();
    acl.iter().position(|ace| {
        let partial_deny =
            ace.action == Action::Deny && (ace.targets.is_some() || ace.ports.is_some());
        (chainable || ace.parents.is_empty())
            && !(any_destination && partial_deny)
            && ace.matches(req)
    })
}

/// What the limit rules of 3proxy (`bandlim*`, `connlim`, `count*`) give a request: for
/// each rule whose ACL fields match `req`, in order, `limit(rule)`, up to the first
/// matching rule for which it is `None`, an exemption (`nobandlimin`, `noconnlim`,
/// `nocountin`, ...), which stops the scan. One place for the semantics all three share.
pub fn until_exempt<'r, R: 'r, T>(
    rules: impl IntoIterator<Item = &'r R>,
    req: &AclRequest<'_>,
    entry: impl Fn(&R) -> &Ace,
    limit: impl FnMut(&'r R) -> Option<T>,
) -> Vec<T> {
    rules
        .into_iter()
        .filter(|r| entry(r).matches(req))
        .map_while(limit)
        .collect()
}

/// Evaluates an ACL as 3proxy's `checkACL` does: entries in order, the first match decides;
/// no match refuses ([`AclVerdict::NoMatch`], code 3); **an empty list allows everything**.
///
/// ```
/// use triproxy_policy::acl::*;
/// let acl = [Ace::parse(Action::Deny, &["*", "*", "*", "25"]).unwrap(), Ace::any(Action::Allow)];
/// let req = AclRequest {
///     user: None, client: "10.0.0.1".parse().unwrap(), target_host: None,
///     target_ip: Some("192.0.2.1".parse().unwrap()), port: Some(25),
///     operation: Operation::Connect, time: CivilTime { weekday: 1, seconds_of_day: 0 },
/// };
/// assert_eq!(check(&acl, &req), AclVerdict::Deny);
/// assert_eq!(check(&[], &req), AclVerdict::Allow);
/// ```
pub fn check(acl: &[Ace], req: &AclRequest<'_>) -> AclVerdict {
    if acl.is_empty() {
        return AclVerdict::Allow;
    }
    match first_match(acl, req).and_then(|i| acl.get(i)) {
        Some(ace) => match ace.action {
            Action::Allow => AclVerdict::Allow,
            Action::Deny => AclVerdict::Deny,
        },
        None => AclVerdict::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_destination_is_refused_only_by_entries_that_refuse_every_destination() {
        let time = CivilTime {
            weekday: 1,
            seconds_of_day: 0,
        };
        let req = AclRequest {
            user: None,
            client: "127.0.0.1".parse().unwrap(),
            target_host: None,
            target_ip: Some("0.0.0.0".parse().unwrap()),
            port: Some(0),
            operation: Operation::UdpAssoc,
            time,
        };
        let deny_port = Ace::parse(Action::Deny, &["*", "*", "*", "25"]).unwrap();
        let allow = Ace::any(Action::Allow);
        let acl = [deny_port, allow.clone()];
        assert_eq!(check(&acl, &req), AclVerdict::Allow);
        let datagram = AclRequest {
            target_ip: Some("192.0.2.1".parse().unwrap()),
            port: Some(25),
            ..req
        };
        assert_eq!(
            check(&acl, &datagram),
            AclVerdict::Deny,
            "a real destination is judged"
        );
        let connect = AclRequest {
            operation: Operation::Connect,
            ..req
        };
        assert_eq!(
            check(&acl, &connect),
            AclVerdict::Deny,
            "only UDP ASSOCIATE"
        );
        let deny_client = Ace::parse(Action::Deny, &["*", "127.0.0.1"]).unwrap();
        assert_eq!(check(&[deny_client, allow], &req), AclVerdict::Deny);
        let allow_some = Ace::parse(Action::Allow, &["*", "*", "10.0.0.0/8"]).unwrap();
        assert_eq!(check(&[allow_some], &req), AclVerdict::Allow);
        let only_connect = Ace::parse(Action::Allow, &["*", "*", "*", "*", "CONNECT"]).unwrap();
        assert_eq!(check(&[only_connect], &req), AclVerdict::NoMatch);
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn req<'a>() -> AclRequest<'a> {
        AclRequest {
            user: None,
            client: ip("10.0.0.1"),
            target_host: None,
            target_ip: Some(ip("192.0.2.10")),
            port: Some(80),
            operation: Operation::Connect,
            time: CivilTime {
                weekday: 1,
                seconds_of_day: 12 * 3600,
            },
        }
    }

    fn ace(fields: &[&str]) -> Ace {
        Ace::parse(Action::Allow, fields).unwrap()
    }

    fn err(fields: &[&str]) -> AclError {
        Ace::parse(Action::Allow, fields).unwrap_err()
    }

    fn bad(fields: &[&str], field: AclField, token: &str, problem: TokenProblem) {
        let e = err(fields);
        assert_eq!(
            e,
            AclError::BadToken {
                field,
                token: ConfigToken::new(token),
                problem
            },
            "{fields:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(field.name()), "{msg}");
        assert!(
            msg.contains(&format!("`{}`", ConfigToken::new(token))),
            "{msg}"
        );
    }

    #[test]
    fn empty_and_star_fields_match_anything() {
        let cases: [&[&str]; 3] = [&[], &["*"], &["*", "*", "*", "*", "*", "*", "*", "*"]];
        for fields in cases {
            let a = ace(fields);
            assert_eq!(a, Ace::any(Action::Allow));
            assert!(a.matches(&req()));
        }
    }

    #[test]
    fn too_many_fields() {
        let e = err(&["*"; 9]);
        assert_eq!(e, AclError::TooManyFields { count: 9 });
        assert!(e.to_string().contains("9 fields"));
    }

    #[test]
    fn users_exact_case_sensitive_and_dash() {
        let a = ace(&["alice,-"]);
        let mut r = req();
        assert!(a.matches(&r), "no user matches -");
        r.user = Some("");
        assert!(a.matches(&r), "empty user counts as no user");
        r.user = Some("alice");
        assert!(a.matches(&r));
        r.user = Some("Alice");
        assert!(!a.matches(&r));
        r.user = Some("alice2");
        assert!(!a.matches(&r));
        let only = ace(&["bob"]);
        r.user = None;
        assert!(!only.matches(&r));
    }

    #[test]
    fn user_errors() {
        bad(&["a,,b"], AclField::Users, "a,,b", TokenProblem::EmptyItem);
        bad(&[""], AclField::Users, "", TokenProblem::EmptyItem);
        bad(&["a,*"], AclField::Users, "*", TokenProblem::StarInList);
        let long = "u".repeat(256);
        bad(
            &[long.as_str()],
            AclField::Users,
            &long,
            TokenProblem::TooLong { max: 255 },
        );
        assert!(ace(&[&"u".repeat(255)]).users().is_some());
    }

    #[test]
    fn list_cap() {
        let ok = vec!["u"; MAX_LIST_ITEMS].join(",");
        assert_eq!(ace(&[&ok]).users().map(|u| u.len()), Some(MAX_LIST_ITEMS));
        let over = vec!["u"; MAX_LIST_ITEMS + 1].join(",");
        assert_eq!(
            err(&[&over]),
            AclError::TooManyItems {
                field: AclField::Users,
                max: MAX_LIST_ITEMS
            }
        );
        let ports = vec!["80"; MAX_LIST_ITEMS + 1].join(",");
        assert!(err(&["*", "*", "*", &ports])
            .to_string()
            .contains("ports: more than 4096"));
    }

    #[test]
    fn ip_forms() {
        let single = IpRange::parse("192.0.2.1").unwrap();
        assert!(single.contains(ip("192.0.2.1")) && !single.contains(ip("192.0.2.2")));
        let cidr = IpRange::parse("10.1.2.3/8").unwrap();
        assert_eq!(
            cidr,
            IpRange::V4 {
                first: "10.0.0.0".parse().unwrap(),
                last: "10.255.255.255".parse().unwrap()
            }
        );
        let all4 = IpRange::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(ip("255.255.255.255")) && !all4.contains(ip("::1")));
        let host = IpRange::parse("10.0.0.1/32").unwrap();
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
        let range = IpRange::parse("10.0.0.5-10.0.0.9").unwrap();
        assert!(range.contains(ip("10.0.0.5")) && range.contains(ip("10.0.0.9")));
        assert!(!range.contains(ip("10.0.0.4")) && !range.contains(ip("10.0.0.10")));
        assert!(IpRange::parse("10.0.0.5-10.0.0.5").is_ok());
        // IPv6, all three forms.
        let v6 = IpRange::parse("2001:db8::1").unwrap();
        assert!(v6.contains(ip("2001:db8::1")) && !v6.contains(ip("2001:db8::2")));
        let v6net = IpRange::parse("2001:db8::/32").unwrap();
        assert!(v6net.contains(ip("2001:db8:ffff::1")) && !v6net.contains(ip("2001:db9::")));
        let all6 = IpRange::parse("::/0").unwrap();
        assert!(all6.contains(ip("::1")) && !all6.contains(ip("127.0.0.1")));
        let v6range = IpRange::parse("fe80::1-fe80::ff").unwrap();
        assert!(v6range.contains(ip("fe80::80")) && !v6range.contains(ip("fe80::100")));
        let v6host = IpRange::parse("::1/128").unwrap();
        assert!(v6host.contains(ip("::1")) && !v6host.contains(ip("::2")));
        // Family must match.
        assert!(!IpRange::parse("::1").unwrap().contains(ip("0.0.0.1")));
    }

    #[test]
    fn mapped_addresses_normalised() {
        let v4 = IpRange::parse("10.0.0.0/8").unwrap();
        assert!(v4.contains(ip("::ffff:10.1.1.1")));
        let mapped = IpRange::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(mapped, v4);
        assert!(mapped.contains(ip("10.9.9.9")));
        let single = IpRange::parse("::ffff:192.0.2.1").unwrap();
        assert!(matches!(single, IpRange::V4 { .. }));
        let a = ace(&["*", "10.0.0.0/8", "192.0.2.0/24"]);
        let mut r = req();
        r.client = ip("::ffff:10.0.0.1");
        r.target_ip = Some(ip("::ffff:192.0.2.10"));
        assert!(a.matches(&r));
        // Not compatible (::a.b.c.d) addresses: they stay IPv6.
        r.client = ip("::10.0.0.1");
        assert!(!a.matches(&r));
    }

    #[test]
    fn ip_errors() {
        let f = AclField::Sources;
        bad(
            &["*", "10.0.0.256"],
            f,
            "10.0.0.256",
            TokenProblem::NotAnAddress,
        );
        bad(
            &["*", "example.com"],
            f,
            "example.com",
            TokenProblem::NotAnAddress,
        );
        bad(
            &["*", "10.0.0.0/33"],
            f,
            "10.0.0.0/33",
            TokenProblem::BadPrefixLength { max: 32 },
        );
        bad(
            &["*", "10.0.0.0/x"],
            f,
            "10.0.0.0/x",
            TokenProblem::BadPrefixLength { max: 32 },
        );
        bad(
            &["*", "10.0.0.0/"],
            f,
            "10.0.0.0/",
            TokenProblem::BadPrefixLength { max: 32 },
        );
        bad(
            &["*", "10.0.0.0/+8"],
            f,
            "10.0.0.0/+8",
            TokenProblem::BadPrefixLength { max: 32 },
        );
        bad(
            &["*", "::/129"],
            f,
            "::/129",
            TokenProblem::BadPrefixLength { max: 128 },
        );
        bad(
            &["*", "10.0.0.9-10.0.0.1"],
            f,
            "10.0.0.9-10.0.0.1",
            TokenProblem::DescendingRange,
        );
        bad(
            &["*", "::2-::1"],
            f,
            "::2-::1",
            TokenProblem::DescendingRange,
        );
        bad(
            &["*", "10.0.0.1-::1"],
            f,
            "10.0.0.1-::1",
            TokenProblem::MixedFamilies,
        );
        bad(
            &["*", "10.0.0.1-"],
            f,
            "10.0.0.1-",
            TokenProblem::NotAnAddress,
        );
        bad(
            &["*", "10.0.0.0/8,,"],
            f,
            "10.0.0.0/8,,",
            TokenProblem::EmptyItem,
        );
        bad(&["*", "*,10.0.0.1"], f, "*", TokenProblem::StarInList);
    }

    #[test]
    fn source_match() {
        let a = ace(&["*", "192.168.0.0/16,10.0.0.1"]);
        let mut r = req();
        assert!(a.matches(&r));
        r.client = ip("10.0.0.2");
        assert!(!a.matches(&r));
        r.client = ip("192.168.200.1");
        assert!(a.matches(&r));
        r.client = ip("::1");
        assert!(!a.matches(&r));
    }

    #[test]
    fn host_pattern_forms() {
        let p = |s: &str| HostPattern::parse(s).unwrap();
        let exact = p("Example.COM.");
        assert_eq!(
            (exact.kind(), exact.text()),
            (HostMatch::Exact, "example.com")
        );
        assert!(exact.matches(b"EXAMPLE.com"));
        assert!(exact.matches(b"example.com..."));
        assert!(!exact.matches(b"www.example.com"));
        let suffix = p("*example.com");
        assert_eq!(suffix.kind(), HostMatch::Suffix);
        assert!(suffix.matches(b"www.example.com") && suffix.matches(b"badexample.com"));
        assert!(!suffix.matches(b"example.com"), "strictly longer");
        let dot_suffix = p("*.example.com");
        assert!(dot_suffix.matches(b"a.example.com") && !dot_suffix.matches(b"aexample.com"));
        let prefix = p("www.*");
        assert_eq!((prefix.kind(), prefix.text()), (HostMatch::Prefix, "www."));
        assert!(prefix.matches(b"WWW.example.org") && !prefix.matches(b"ww.example.org"));
        assert!(p("www*").matches(b"www"), "prefix may be the whole name");
        let middle = p("*tracker*");
        assert_eq!(middle.kind(), HostMatch::Contains);
        assert!(middle.matches(b"ads.TRACKER.net") && middle.matches(b"tracker"));
        assert!(!middle.matches(b"track.er"));
        // Non-UTF-8 bytes are compared as bytes.
        assert!(p("*.example").matches(b"\xff.example"));
        // Prefix pattern keeps its dot; request dots stripped.
        assert!(!p("example.*").matches(b"example."));
    }

    #[test]
    fn host_pattern_errors() {
        let f = AclField::Targets;
        for tok in ["**", "a*b", "*.", ".", "a b", "a\tb", "***a"] {
            let fields = ["*", "*", tok];
            let e = err(&fields);
            match e {
                AclError::BadToken { field, problem, .. } => {
                    assert_eq!(field, f, "{tok:?}");
                    assert!(
                        matches!(
                            problem,
                            TokenProblem::BadHostPattern | TokenProblem::StarInList
                        ),
                        "{tok:?}: {problem:?}"
                    );
                }
                other => panic!("{tok:?}: {other:?}"),
            }
        }
        bad(&["*", "*", "a*b"], f, "a*b", TokenProblem::BadHostPattern);
        let long = format!("{}.com", "a".repeat(252));
        bad(
            &["*", "*", &long],
            f,
            &long,
            TokenProblem::TooLong { max: 255 },
        );
    }

    #[test]
    fn target_token_classification() {
        let a = ace(&["*", "*", "10.0.0.0/8,host1,*.example.com,::1,fe80::"]);
        let t = a.targets().unwrap();
        assert_eq!(t.ips().len(), 3);
        assert_eq!(t.hosts().len(), 2);
        let f = AclField::Targets;
        bad(
            &["*", "*", "1.2.3.999"],
            f,
            "1.2.3.999",
            TokenProblem::NotAnAddress,
        );
        bad(&["*", "*", "1.2.3"], f, "1.2.3", TokenProblem::NotAnAddress);
        bad(
            &["*", "*", "10.0.0.0/40"],
            f,
            "10.0.0.0/40",
            TokenProblem::BadPrefixLength { max: 32 },
        );
        bad(
            &["*", "*", "fe80::zz"],
            f,
            "fe80::zz",
            TokenProblem::NotAnAddress,
        );
        bad(
            &["*", "*", "10.0.0.2-10.0.0.1"],
            f,
            "10.0.0.2-10.0.0.1",
            TokenProblem::DescendingRange,
        );
    }

    #[test]
    fn target_matching() {
        let host = DomainName::new(b"www.Example.com.").unwrap();
        let other = DomainName::new(b"other.org").unwrap();
        let by_name = ace(&["*", "*", "*.example.com"]);
        let by_ip = ace(&["*", "*", "192.0.2.0/24"]);
        let both = ace(&["*", "*", "192.0.2.0/24,*.example.com"]);
        let mut r = req();
        // IP-only request: patterns never match.
        assert!(!by_name.matches(&r));
        assert!(by_ip.matches(&r));
        // Name plus resolved IP: either may match.
        r.target_host = Some(&other);
        assert!(by_ip.matches(&r) && both.matches(&r) && !by_name.matches(&r));
        r.target_host = Some(&host);
        r.target_ip = Some(ip("198.51.100.1"));
        assert!(by_name.matches(&r) && both.matches(&r) && !by_ip.matches(&r));
        // Unresolved name: address entries cannot match it.
        r.target_ip = None;
        assert!(by_name.matches(&r) && !by_ip.matches(&r));
        // Neither name nor IP: the field is skipped.
        r.target_host = None;
        assert!(by_ip.matches(&r) && by_name.matches(&r));
        // Unspecified address counts as unknown, except for BIND.
        r.target_ip = Some(ip("0.0.0.0"));
        assert!(by_name.matches(&r) && by_ip.matches(&r));
        r.operation = Operation::Bind;
        assert!(!by_ip.matches(&r));
        assert!(ace(&["*", "*", "0.0.0.0"]).matches(&r));
    }

    #[test]
    fn ports() {
        let a = ace(&["*", "*", "*", "80,443,8000-8080"]);
        let mut r = req();
        for (p, ok) in [
            (80, true),
            (443, true),
            (8000, true),
            (8080, true),
            (81, false),
        ] {
            r.port = Some(p);
            assert_eq!(a.matches(&r), ok, "{p}");
        }
        r.port = Some(8081);
        assert!(!a.matches(&r));
        r.port = None;
        assert!(a.matches(&r), "no port yet: skipped");
        r.port = Some(0);
        assert!(a.matches(&r), "port 0 counts as unknown");
        r.operation = Operation::Bind;
        assert!(!a.matches(&r), "BIND checks port 0");
        assert!(ace(&["*", "*", "*", "0-10"]).matches(&r));
        assert_eq!(
            PortRange::parse("65535").unwrap(),
            PortRange {
                first: 65535,
                last: 65535
            }
        );
        let f = AclField::Ports;
        for tok in [
            "65536", "-1", "a", "80-", "-80", "1-2-3", "+80", "80 ", "123456",
        ] {
            bad(&["*", "*", "*", tok], f, tok, TokenProblem::NotAPort);
        }
        bad(
            &["*", "*", "*", "90-80"],
            f,
            "90-80",
            TokenProblem::DescendingRange,
        );
    }

    #[test]
    fn operations() {
        let a = ace(&["*", "*", "*", "*", "CONNECT,HTTPS,FTP"]);
        let mut r = req();
        for (op, ok) in [
            (Operation::Connect, true),
            (Operation::HttpConnect, true),
            (Operation::FtpList, true),
            (Operation::FtpData, true),
            (Operation::Bind, false),
            (Operation::HttpGet, false),
        ] {
            r.operation = op;
            assert_eq!(a.matches(&r), ok, "{op:?}");
        }
        for op in Operation::ALL {
            let set = OperationSet::parse_token(op.name()).unwrap();
            for other in Operation::ALL {
                assert_eq!(set.contains(other), op == other);
            }
        }
        let http = OperationSet::parse_token("HTTP").unwrap();
        for op in Operation::ALL {
            let is_http = matches!(
                op,
                Operation::HttpGet
                    | Operation::HttpPut
                    | Operation::HttpPost
                    | Operation::HttpHead
                    | Operation::HttpOther
            );
            assert_eq!(http.contains(op), is_http, "{op:?}");
        }
        let f = AclField::Operations;
        for tok in ["connect", "GET", "HTTP_", "UDP"] {
            bad(
                &["*", "*", "*", "*", tok],
                f,
                tok,
                TokenProblem::UnknownOperation,
            );
        }
    }

    #[test]
    fn weekdays() {
        let days = |s: &str| ace(&["*", "*", "*", "*", "*", s]).weekdays().unwrap();
        let work = days("1-5");
        assert!((1..=5).all(|d| work.contains(d)) && !work.contains(0) && !work.contains(6));
        let weekend = days("0,6");
        assert!(weekend.contains(0) && weekend.contains(6) && !weekend.contains(3));
        assert_eq!(days("06"), weekend);
        assert_eq!(days("7"), days("0"));
        assert_eq!(days("6-7"), weekend);
        assert!((0..7).all(|d| days("0-7").contains(d)));
        assert!(days("1").contains(8), "weekday taken modulo 7");
        let mut r = req();
        let a = ace(&["*", "*", "*", "*", "*", "1-5"]);
        r.time.weekday = 5;
        assert!(a.matches(&r));
        r.time.weekday = 6;
        assert!(!a.matches(&r));
        let f = AclField::Weekdays;
        for tok in ["8", "5-2", "1-", "-1", "Mon", "1-9", "1 "] {
            bad(
                &["*", "*", "*", "*", "*", tok],
                f,
                tok,
                TokenProblem::BadWeekday,
            );
        }
    }

    #[test]
    fn time_periods() {
        let a = ace(&[
            "*",
            "*",
            "*",
            "*",
            "*",
            "*",
            "00:00:00-08:00:00,20:00:00-24:00:00",
        ]);
        let p = a.time_periods().unwrap();
        assert_eq!(
            p,
            &[
                TimePeriod {
                    start: 0,
                    end: 8 * 3600
                },
                TimePeriod {
                    start: 20 * 3600,
                    end: SECONDS_PER_DAY
                }
            ]
        );
        let mut r = req();
        for (t, ok) in [
            (0, true),
            (8 * 3600 - 1, true),
            (8 * 3600, false),
            (20 * 3600, true),
            (SECONDS_PER_DAY - 1, true),
            (SECONDS_PER_DAY, false),
        ] {
            r.time.seconds_of_day = t;
            assert_eq!(a.matches(&r), ok, "{t}");
        }
        let f = AclField::TimePeriods;
        for tok in [
            "9:00:00-10:00:00",
            "09:00-10:00",
            "09:60:00-10:00:00",
            "09:00:60-10:00:00",
            "25:00:00-26:00:00",
            "24:00:01-24:00:02",
            "09:00:00",
            "09:00:00-10:00:00x",
            "0a:00:00-10:00:00",
        ] {
            bad(
                &["*", "*", "*", "*", "*", "*", tok],
                f,
                tok,
                TokenProblem::BadTimePeriod,
            );
        }
        for tok in ["10:00:00-09:00:00", "10:00:00-10:00:00"] {
            bad(
                &["*", "*", "*", "*", "*", "*", tok],
                f,
                tok,
                TokenProblem::EmptyTimePeriod,
            );
        }
    }

    #[test]
    fn weight() {
        assert_eq!(
            ace(&["*", "*", "*", "*", "*", "*", "*", "500"]).weight(),
            Some(500)
        );
        assert_eq!(
            ace(&["*", "*", "*", "*", "*", "*", "*", "*"]).weight(),
            None
        );
        assert_eq!(ace(&["*"]).weight(), None);
        let f = AclField::Weight;
        for tok in ["-1", "x", "", "4294967296"] {
            bad(
                &["*", "*", "*", "*", "*", "*", "*", tok],
                f,
                tok,
                TokenProblem::NotANumber,
            );
        }
    }

    #[test]
    fn first_match_wins_and_codes() {
        let acl = [
            Ace::parse(Action::Deny, &["*", "*", "*", "25"]).unwrap(),
            Ace::parse(Action::Allow, &["*", "10.0.0.0/8"]).unwrap(),
            Ace::parse(Action::Deny, &["*"]).unwrap(),
        ];
        let mut r = req();
        assert_eq!(check(&acl, &r), AclVerdict::Allow);
        assert_eq!(first_match(&acl, &r), Some(1));
        r.port = Some(25);
        assert_eq!(check(&acl, &r), AclVerdict::Deny);
        assert_eq!(first_match(&acl, &r), Some(0));
        r.port = Some(80);
        r.client = ip("172.16.0.1");
        assert_eq!(check(&acl, &r), AclVerdict::Deny);
        assert_eq!(check(acl.get(..2).unwrap(), &r), AclVerdict::NoMatch);
        assert_eq!(check(&[], &r), AclVerdict::Allow);
        assert_eq!(AclVerdict::Deny.log_code(), Some(LogCode::ACL_DENIED));
        assert_eq!(AclVerdict::NoMatch.log_code(), Some(LogCode::ACL_NO_MATCH));
        assert_eq!(AclVerdict::Allow.log_code(), None);
    }

    #[test]
    fn config_token_bounds() {
        let t = ConfigToken::new(&"é".repeat(40));
        assert!(t.is_truncated());
        assert!(t.as_str().len() <= TOKEN_EXCERPT_LEN);
        assert!(t.to_string().ends_with("..."));
        assert_eq!(ConfigToken::new("a\nb").to_string(), "a\\nb");
    }
}
