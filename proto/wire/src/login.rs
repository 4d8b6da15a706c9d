//! The `[proxyuser:proxypass:]user[@host[:port]]` form a client logs in with, as 3proxy's
//! `parseconnusername` reads it.
//!
//! The **last** delimiter (`delimchar`, `@` by default) separates the user from the host, so
//! `alice@example.org@mail.example.net` logs in as `alice@example.org` on
//! `mail.example.net`. Before it, two colons mark proxy credentials:
//! `proxyuser:proxypass:user`. After it, the host is a name, an IPv4 address, a bracketed
//! IPv6 address with an optional port (`[2001:db8::1]:110`), or a bare IPv6 address without
//! a port. Without a host (no delimiter, or an empty host) the configured default target
//! (3proxy `-h`) is used, and the request is refused without one.
//!
//! Stricter than 3proxy: a port must be decimal 1-65535 (3proxy's `atoi` turns `x` into 0),
//! the user may not be empty and no byte of the field may be a control character.
//!
//! Shared by the POP3 and IMAP proxies (and the FTP and SMTP ones to come), so that every
//! mail proxy reads the field the same way.

use crate::TargetAddr;
use core::fmt;

/// The longest host name accepted, as 3proxy (`parsehostname`: 253).
pub const MAX_HOST_LEN: usize = 253;

/// Credentials for the proxy itself, given as `proxyuser:proxypass:user@host`.
///
/// Either part may be empty (3proxy then keeps what it had: no user name, or the password
/// the protocol gave another way).
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyCredentials {
    /// The proxy user name (bytes before the first colon).
    pub user: Vec<u8>,
    /// The proxy password (bytes between the first and the second colon).
    pub password: Vec<u8>,
}

impl fmt::Debug for ProxyCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyCredentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .field("password", &"<hidden>")
            .finish()
    }
}

/// A parsed login field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The server to log in to.
    pub target: TargetAddr,
    /// The user name on that server.
    pub user: Vec<u8>,
    /// Credentials for the proxy, from the `proxyuser:proxypass:user` form.
    pub proxy: Option<ProxyCredentials>,
    /// What 3proxy logs as `%T`: `user@host`, with `:port` when not the default.
    pub log_text: String,
}

/// Why a login field names no usable user and host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadLogin {
    /// The field is empty.
    Empty,
    /// A control character (CR, NUL, ...) in the field.
    ControlCharacter,
    /// The user name (after any proxy credentials) is empty.
    EmptyUser,
    /// No host given and no default target configured (3proxy `-h`).
    NoHost,
    /// The host is not a name or an IP address, or is longer than 253 bytes.
    BadHost,
    /// The port is not a decimal number from 1 to 65535.
    BadPort,
}

impl BadLogin {
    /// A readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            BadLogin::Empty => "empty user name",
            BadLogin::ControlCharacter => "control character in the user name",
            BadLogin::EmptyUser => "empty user name before the host",
            BadLogin::NoHost => "no host given and no default host configured",
            BadLogin::BadHost => "host is not a name or an IP address",
            BadLogin::BadPort => "port is not a number from 1 to 65535",
        }
    }
}

impl fmt::Display for BadLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Reads `field` (the argument of USER, or an IMAP login name).
pub fn parse_login(
    field: &[u8],
    delimiter: u8,
    default_target: Option<&TargetAddr>,
    default_port: u16,
) -> Result<Login, BadLogin> {
    if field.is_empty() {
        return Err(BadLogin::Empty);
    }
    if field.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(BadLogin::ControlCharacter);
    }
    let (user_part, host_part) = match field.iter().rposition(|&b| b == delimiter) {
        Some(i) => (
            field.get(..i).unwrap_or_default(),
            field.get(i + 1..).unwrap_or_default(),
        ),
        None => (field, &b""[..]),
    };
    let (proxy, user) = split_proxy(user_part);
    if user.is_empty() {
        return Err(BadLogin::EmptyUser);
    }
    let target = parse_host(host_part, default_target, default_port)?;
    let host_text = match &target {
        TargetAddr::Ip(sa) => sa.ip().to_string(),
        TargetAddr::Domain(name, _) => String::from_utf8_lossy(name.as_bytes()).into_owned(),
    };
    let mut log_text = format!("{}@{}", String::from_utf8_lossy(user), host_text);
    if target.port() != default_port {
        log_text.push_str(&format!(":{}", target.port()));
    }
    Ok(Login {
        target,
        user: user.to_vec(),
        proxy,
        log_text,
    })
}

/// `proxyuser:proxypass:user` into its parts; a field with fewer than two colons is all user.
fn split_proxy(part: &[u8]) -> (Option<ProxyCredentials>, &[u8]) {
    let Some(a) = part.iter().position(|&b| b == b':') else {
        return (None, part);
    };
    let after = part.get(a + 1..).unwrap_or_default();
    let Some(b) = after.iter().position(|&x| x == b':') else {
        return (None, part);
    };
    let creds = ProxyCredentials {
        user: part.get(..a).unwrap_or_default().to_vec(),
        password: after.get(..b).unwrap_or_default().to_vec(),
    };
    (Some(creds), after.get(b + 1..).unwrap_or_default())
}

fn parse_port(text: &[u8]) -> Result<u16, BadLogin> {
    if text.is_empty() || text.len() > 5 || !text.iter().all(u8::is_ascii_digit) {
        return Err(BadLogin::BadPort);
    }
    let port = text.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    match u16::try_from(port) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(BadLogin::BadPort),
    }
}

fn parse_host(
    part: &[u8],
    default_target: Option<&TargetAddr>,
    default_port: u16,
) -> Result<TargetAddr, BadLogin> {
    // Split host and port: `[v6]:port`, `host:port`, or a bare IPv6 address (several colons).
    let (host, port) = if part.first() == Some(&b'[') {
        let close = part
            .iter()
            .position(|&b| b == b']')
            .ok_or(BadLogin::BadHost)?;
        let host = part.get(..=close).unwrap_or_default();
        match part.get(close + 1..).unwrap_or_default() {
            [] => (host, None),
            [b':', port @ ..] => (host, Some(parse_port(port)?)),
            _ => return Err(BadLogin::BadHost),
        }
    } else if part.iter().filter(|&&b| b == b':').count() == 1 {
        let colon = part
            .iter()
            .position(|&b| b == b':')
            .ok_or(BadLogin::BadHost)?;
        (
            part.get(..colon).unwrap_or_default(),
            Some(parse_port(part.get(colon + 1..).unwrap_or_default())?),
        )
    } else {
        (part, None)
    };
    if host.is_empty() {
        let default = default_target.ok_or(BadLogin::NoHost)?;
        return Ok(match (default, port) {
            (TargetAddr::Ip(sa), Some(p)) => TargetAddr::Ip(std::net::SocketAddr::new(sa.ip(), p)),
            (TargetAddr::Domain(name, _), Some(p)) => TargetAddr::Domain(name.clone(), p),
            (t, None) => t.clone(),
        });
    }
    let bare = host
        .strip_prefix(b"[")
        .and_then(|h| h.strip_suffix(b"]"))
        .unwrap_or(host);
    if bare.len() > MAX_HOST_LEN {
        return Err(BadLogin::BadHost);
    }
    let text = core::str::from_utf8(host).map_err(|_| BadLogin::BadHost)?;
    if text.contains(' ') {
        return Err(BadLogin::BadHost);
    }
    TargetAddr::try_from((text, port.unwrap_or(default_port))).map_err(|_| BadLogin::BadHost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(field: &str) -> Login {
        parse_login(field.as_bytes(), b'@', None, 110).unwrap()
    }

    #[test]
    fn forms() {
        let l = ok("alice@mail.example.org");
        assert_eq!(l.user, b"alice");
        assert_eq!(l.target.to_string(), "mail.example.org:110");
        assert_eq!(l.log_text, "alice@mail.example.org");
        let l = ok("a@b@host:2110");
        assert_eq!(l.user, b"a@b");
        assert_eq!(l.log_text, "a@b@host:2110");
        let l = ok("pu:pp:bob@[2001:db8::1]:995");
        assert_eq!(l.user, b"bob");
        let p = l.proxy.unwrap();
        assert_eq!(
            (p.user.as_slice(), p.password.as_slice()),
            (&b"pu"[..], &b"pp"[..])
        );
        assert_eq!(l.target.to_string(), "[2001:db8::1]:995");
        assert_eq!(ok("c@2001:db8::2").target.port(), 110);
        assert_eq!(ok("c@192.0.2.1").log_text, "c@192.0.2.1");
        assert_eq!(ok("a:b@h").user, b"a:b");
    }

    #[test]
    fn defaults() {
        let d: TargetAddr = "pop.example.net:1110".parse().unwrap();
        let l = parse_login(b"carol", b'@', Some(&d), 110).unwrap();
        assert_eq!(l.target, d);
        assert_eq!(l.log_text, "carol@pop.example.net:1110");
        let l = parse_login(b"carol@:2000", b'@', Some(&d), 110).unwrap();
        assert_eq!(l.target.to_string(), "pop.example.net:2000");
        let l = parse_login(b"carol#h", b'#', None, 110).unwrap();
        assert_eq!(l.target.to_string(), "h:110");
    }

    #[test]
    fn refusals() {
        let bad = |f: &[u8]| parse_login(f, b'@', None, 110).unwrap_err();
        assert_eq!(bad(b""), BadLogin::Empty);
        assert_eq!(bad(b"alice"), BadLogin::NoHost);
        assert_eq!(bad(b"alice@"), BadLogin::NoHost);
        assert_eq!(bad(b"@host"), BadLogin::EmptyUser);
        assert_eq!(bad(b"a:b:@host"), BadLogin::EmptyUser);
        assert_eq!(bad(b"a@host:x"), BadLogin::BadPort);
        assert_eq!(bad(b"a@host:0"), BadLogin::BadPort);
        assert_eq!(bad(b"a@host:65536"), BadLogin::BadPort);
        assert_eq!(bad(b"a@[::1"), BadLogin::BadHost);
        assert_eq!(bad(b"a@[zz]:1"), BadLogin::BadHost);
        assert_eq!(bad(b"a@h\rx"), BadLogin::ControlCharacter);
        assert_eq!(bad(b"a@h x"), BadLogin::BadHost);
        let long = format!("a@{}", "x".repeat(254));
        assert_eq!(bad(long.as_bytes()), BadLogin::BadHost);
    }
}
