//! The request side of an ACL: what an entry does ([`Action`]), what a request does
//! ([`Operation`]), when it happens ([`CivilTime`]), the request as the ACL sees it
//! ([`AclRequest`], with its normalisation of addresses, ports and user names) and the
//! answer ([`AclVerdict`]).
//!
//! It does not parse or match entries; the caller fills an [`AclRequest`] in.

use std::net::IpAddr;
use triproxy_wire::{DomainName, LogCode};

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

    pub(super) fn bit(self) -> u32 {
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
    pub(super) fn acl_user(&self) -> &str {
        match self.user {
            Some(u) if !u.is_empty() => u,
            _ => "-",
        }
    }

    pub(super) fn effective_target_ip(&self) -> Option<IpAddr> {
        let ip = self.target_ip?.to_canonical();
        if ip.is_unspecified() && self.operation != Operation::Bind {
            None
        } else {
            Some(ip)
        }
    }

    pub(super) fn effective_port(&self) -> Option<u16> {
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
