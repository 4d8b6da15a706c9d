//! What the load tool is told to measure: proxy URLs (`socks5://[user:pass@]host:port`,
//! `socks4://[user@]host:port`, `http://[user:pass@]host:port`, or `direct`) and the suite's
//! `NAME=URL[,pid=P]` specs.
//!
//! Only loopback addresses are accepted (127.0.0.0/8, `::1`, `localhost`): the tool sends
//! load, and load goes to this machine only. Host names other than `localhost` are not
//! resolved. This module does no I/O.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use triproxy_socks::v5::Credentials;

/// Longest URL or spec accepted, in bytes.
pub const MAX_URL_LEN: usize = 1024;
/// Longest system name in a spec (`NAME=...`).
pub const MAX_NAME_LEN: usize = 32;
/// Longest user name or password, in bytes after percent-decoding (RFC 1929 section 2).
pub const MAX_CREDENTIAL_LEN: usize = 255;

/// How the tool reaches the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// No proxy: the client connects to the target itself (the reference for ratios).
    Direct,
    /// SOCKS5 CONNECT (RFC 1928), with RFC 1929 username/password when credentials are given.
    Socks5,
    /// SOCKS4 CONNECT; a user name, if given, is sent as USERID.
    Socks4,
    /// HTTP CONNECT (RFC 9110 section 9.3.6), with `Proxy-Authorization: Basic` when
    /// credentials are given.
    Http,
}

/// A parsed proxy URL (or `direct`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The protocol spoken to the proxy.
    pub scheme: Scheme,
    /// The proxy's address (None for [`Scheme::Direct`]).
    pub addr: Option<SocketAddr>,
    /// User name and password from the URL, percent-decoded.
    pub credentials: Option<Credentials>,
}

/// The protocol column of the result tables: the scheme, and whether it authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// No proxy.
    Direct,
    /// SOCKS5 without authentication.
    Socks5,
    /// SOCKS5 with username/password.
    Socks5Auth,
    /// SOCKS4.
    Socks4,
    /// HTTP CONNECT.
    HttpConnect,
}

impl Protocol {
    /// Every protocol, in table order.
    pub const ALL: [Protocol; 5] = [
        Protocol::Direct,
        Protocol::Socks5,
        Protocol::Socks5Auth,
        Protocol::Socks4,
        Protocol::HttpConnect,
    ];

    /// The label used in tables.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Direct => "tcp (direct)",
            Protocol::Socks5 => "SOCKS5",
            Protocol::Socks5Auth => "SOCKS5 + auth",
            Protocol::Socks4 => "SOCKS4",
            Protocol::HttpConnect => "HTTP CONNECT",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl ProxyUrl {
    /// The reference: no proxy.
    pub const DIRECT: ProxyUrl = ProxyUrl {
        scheme: Scheme::Direct,
        addr: None,
        credentials: None,
    };

    /// Parses `direct`, `socks5://[user:pass@]host[:port]`, `socks4://[user@]host[:port]` or
    /// `http://[user:pass@]host[:port]`. Default ports: 1080 for SOCKS, 3128 for HTTP
    /// (3proxy's). `user` and `pass` may be percent-encoded; each is at most
    /// [`MAX_CREDENTIAL_LEN`] bytes. A trailing `/` is allowed, any other path is not.
    ///
    /// ```
    /// use triproxy_conformance::load::url::{ProxyUrl, Scheme};
    /// let u = ProxyUrl::parse("socks5://bench:b%40nch@127.0.0.1:1081").unwrap();
    /// assert_eq!(u.scheme, Scheme::Socks5);
    /// assert_eq!(u.credentials.unwrap().password.as_slice(), b"b@nch");
    /// assert!(ProxyUrl::parse("socks5://10.0.0.1:1080").is_err()); // not loopback
    /// ```
    pub fn parse(text: &str) -> Result<ProxyUrl, UrlError> {
        if text.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong { len: text.len() });
        }
        if text == "direct" {
            return Ok(ProxyUrl::DIRECT);
        }
        let (scheme_text, rest) = text.split_once("://").ok_or(UrlError::MissingScheme)?;
        let (scheme, default_port) = match scheme_text.to_ascii_lowercase().as_str() {
            "socks5" => (Scheme::Socks5, 1080),
            "socks4" => (Scheme::Socks4, 1080),
            "http" => (Scheme::Http, 3128),
            _ => return Err(UrlError::UnknownScheme),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(UrlError::HasPath);
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => Some(parse_userinfo(u, scheme)?),
        };
        let addr = parse_hostport(hostport, default_port)?;
        Ok(ProxyUrl {
            scheme,
            addr: Some(addr),
            credentials,
        })
    }

    /// The protocol column this URL measures.
    pub fn protocol(&self) -> Protocol {
        match (self.scheme, self.credentials.is_some()) {
            (Scheme::Direct, _) => Protocol::Direct,
            (Scheme::Socks5, false) => Protocol::Socks5,
            (Scheme::Socks5, true) => Protocol::Socks5Auth,
            (Scheme::Socks4, _) => Protocol::Socks4,
            (Scheme::Http, _) => Protocol::HttpConnect,
        }
    }
}

impl fmt::Display for ProxyUrl {
    /// The URL with the password hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Direct => return f.write_str("direct"),
            Scheme::Socks5 => "socks5",
            Scheme::Socks4 => "socks4",
            Scheme::Http => "http",
        };
        write!(f, "{scheme}://")?;
        if let Some(c) = &self.credentials {
            write!(f, "{}", String::from_utf8_lossy(&c.username))?;
            if !c.password.is_empty() {
                f.write_str(":***")?;
            }
            f.write_str("@")?;
        }
        match self.addr {
            Some(a) => write!(f, "{a}"),
            None => Ok(()),
        }
    }
}

fn parse_userinfo(text: &str, scheme: Scheme) -> Result<Credentials, UrlError> {
    let (user, pass) = match text.split_once(':') {
        Some((u, p)) => (u, p),
        None => (text, ""),
    };
    let user = percent_decode(user)?;
    let pass = percent_decode(pass)?;
    if user.is_empty() {
        return Err(UrlError::EmptyUser);
    }
    if scheme == Scheme::Socks4 && (!pass.is_empty() || user.contains(&0)) {
        // SOCKS4 carries a NUL-terminated USERID and no password.
        return Err(UrlError::Socks4Password);
    }
    Credentials::new(&user, &pass).map_err(|_| UrlError::CredentialTooLong)
}

/// Decodes `%XX` escapes; at most [`MAX_CREDENTIAL_LEN`] bytes out.
fn percent_decode(text: &str) -> Result<Vec<u8>, UrlError> {
    let mut out = Vec::with_capacity(text.len().min(MAX_CREDENTIAL_LEN));
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        let byte = if b == b'%' {
            let hi = bytes.next().and_then(hex_value);
            let lo = bytes.next().and_then(hex_value);
            match (hi, lo) {
                (Some(h), Some(l)) => (h << 4) | l,
                _ => return Err(UrlError::BadPercentEscape),
            }
        } else {
            b
        };
        if out.len() >= MAX_CREDENTIAL_LEN {
            return Err(UrlError::CredentialTooLong);
        }
        out.push(byte);
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_hostport(text: &str, default_port: u16) -> Result<SocketAddr, UrlError> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::BadHost)?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::BadPort)?),
        };
        (host, port)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => parse_port(p)?,
    };
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().map_err(|_| UrlError::BadHost)?
    };
    if !ip.is_loopback() {
        return Err(UrlError::NotLoopback { ip });
    }
    Ok(SocketAddr::new(ip, port))
}

fn parse_port(text: &str) -> Result<u16, UrlError> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::BadPort);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::BadPort),
        Ok(p) => Ok(p),
    }
}

/// One `--proxy` of the suite: a named system, one of its endpoints, and the process whose
/// CPU and memory are charged to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// The row name in the tables (`direct` for the reference).
    pub name: String,
    /// The endpoint.
    pub url: ProxyUrl,
    /// The proxy's process id (its descendants are counted too).
    pub pid: Option<u32>,
}

impl ProxySpec {
    /// Parses `direct`, `NAME=URL` or `NAME=URL,pid=P`. NAME is 1..=[`MAX_NAME_LEN`] bytes of
    /// ASCII letters, digits, `.`, `_`, `-`. The same NAME may be given several times, once
    /// per endpoint (for example plain SOCKS5, SOCKS5 with auth and SOCKS4 of one daemon).
    ///
    /// ```
    /// use triproxy_conformance::load::url::ProxySpec;
    /// let s = ProxySpec::parse("triproxy-std=socks4://127.0.0.1:21080,pid=42").unwrap();
    /// assert_eq!((s.name.as_str(), s.pid), ("triproxy-std", Some(42)));
    /// ```
    pub fn parse(text: &str) -> Result<ProxySpec, UrlError> {
        if text.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong { len: text.len() });
        }
        let (name, rest) = match text.split_once('=') {
            Some((n, r)) => (n, r),
            None if text == "direct" => ("direct", "direct"),
            None => return Err(UrlError::MissingName),
        };
        if name.is_empty()
            || name.len() > MAX_NAME_LEN
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(UrlError::BadName);
        }
        let (url_text, pid) = match rest.rsplit_once(",pid=") {
            Some((u, p)) => {
                let pid = match p.parse::<u32>() {
                    Ok(0) | Err(_) => return Err(UrlError::BadPid),
                    Ok(pid) => pid,
                };
                (u, Some(pid))
            }
            None => (rest, None),
        };
        let url = ProxyUrl::parse(url_text)?;
        Ok(ProxySpec {
            name: name.to_owned(),
            url,
            pid,
        })
    }
}

/// Why a URL or spec was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UrlError {
    /// Longer than [`MAX_URL_LEN`].
    TooLong {
        /// Its length.
        len: usize,
    },
    /// No `scheme://`.
    MissingScheme,
    /// A scheme other than socks5, socks4, http.
    UnknownScheme,
    /// A path, query or fragment after the address.
    HasPath,
    /// `user:pass@` with an empty user.
    EmptyUser,
    /// A user name or password longer than [`MAX_CREDENTIAL_LEN`] bytes.
    CredentialTooLong,
    /// A `%` not followed by two hex digits.
    BadPercentEscape,
    /// SOCKS4 given a password, or a user name with a NUL byte.
    Socks4Password,
    /// The host is not an IP literal or `localhost`.
    BadHost,
    /// The port is not 1..=65535.
    BadPort,
    /// The address is not a loopback address.
    NotLoopback {
        /// The address given.
        ip: IpAddr,
    },
    /// A spec without `NAME=`.
    MissingName,
    /// A name that is empty, too long, or has characters other than `[A-Za-z0-9._-]`.
    BadName,
    /// `pid=` not followed by a positive number.
    BadPid,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::TooLong { len } => write!(f, "{len} bytes long (at most {MAX_URL_LEN})"),
            UrlError::MissingScheme => f.write_str("expected `direct` or SCHEME://HOST:PORT"),
            UrlError::UnknownScheme => f.write_str("scheme must be socks5, socks4 or http"),
            UrlError::HasPath => f.write_str("a proxy URL has no path, query or fragment"),
            UrlError::EmptyUser => f.write_str("empty user name"),
            UrlError::CredentialTooLong => {
                write!(f, "user name or password over {MAX_CREDENTIAL_LEN} bytes")
            }
            UrlError::BadPercentEscape => f.write_str("`%` must be followed by two hex digits"),
            UrlError::Socks4Password => {
                f.write_str("SOCKS4 takes a user name only (no password, no NUL)")
            }
            UrlError::BadHost => f.write_str("host must be an IP address or localhost"),
            UrlError::BadPort => f.write_str("port must be 1..=65535"),
            UrlError::NotLoopback { ip } => {
                write!(
                    f,
                    "{ip} is not a loopback address; the load tool only targets this machine"
                )
            }
            UrlError::MissingName => f.write_str("expected `direct` or NAME=URL[,pid=P]"),
            UrlError::BadName => write!(
                f,
                "name must be 1..={MAX_NAME_LEN} characters of A-Z a-z 0-9 . _ -"
            ),
            UrlError::BadPid => f.write_str("pid must be a positive number"),
        }
    }
}

impl std::error::Error for UrlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        let u = ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap();
        assert_eq!(u.scheme, Scheme::Socks5);
        assert_eq!(u.addr, Some("127.0.0.1:1080".parse().unwrap()));
        assert_eq!(u.credentials, None);
        assert_eq!(u.protocol(), Protocol::Socks5);

        let u = ProxyUrl::parse("SOCKS4://localhost:2000/").unwrap();
        assert_eq!(u.scheme, Scheme::Socks4);
        assert_eq!(u.addr, Some("127.0.0.1:2000".parse().unwrap()));

        let u = ProxyUrl::parse("http://[::1]:8888").unwrap();
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.addr, Some("[::1]:8888".parse().unwrap()));
        assert_eq!(u.protocol(), Protocol::HttpConnect);

        assert_eq!(ProxyUrl::parse("direct").unwrap(), ProxyUrl::DIRECT);
        assert_eq!(ProxyUrl::DIRECT.protocol(), Protocol::Direct);
    }

    #[test]
    fn default_ports() {
        let u = ProxyUrl::parse("socks5://127.0.0.1").unwrap();
        assert_eq!(u.addr.unwrap().port(), 1080);
        let u = ProxyUrl::parse("http://127.0.0.2").unwrap();
        assert_eq!(u.addr.unwrap().port(), 3128);
        let u = ProxyUrl::parse("socks4://[::1]").unwrap();
        assert_eq!(u.addr.unwrap().port(), 1080);
    }

    #[test]
    fn credentials_are_decoded() {
        let u = ProxyUrl::parse("socks5://be%3Anch:p%2fw:x@127.0.0.1:1").unwrap();
        let c = u.credentials.unwrap();
        assert_eq!(c.username.as_slice(), b"be:nch");
        assert_eq!(c.password.as_slice(), b"p/w:x");
        assert_eq!(
            ProxyUrl::parse("socks5://bench:bench@127.0.0.1:1")
                .unwrap()
                .protocol(),
            Protocol::Socks5Auth
        );
        // A password may be empty; the user may not.
        let u = ProxyUrl::parse("socks5://u@127.0.0.1:1").unwrap();
        assert_eq!(u.credentials.unwrap().password.as_slice(), b"");
        assert_eq!(
            ProxyUrl::parse("socks5://:pw@127.0.0.1:1"),
            Err(UrlError::EmptyUser)
        );
        // SOCKS4 carries a user id only.
        assert!(ProxyUrl::parse("socks4://id@127.0.0.1:1").is_ok());
        assert_eq!(
            ProxyUrl::parse("socks4://id:pw@127.0.0.1:1"),
            Err(UrlError::Socks4Password)
        );
        assert_eq!(
            ProxyUrl::parse("socks4://i%00d@127.0.0.1:1"),
            Err(UrlError::Socks4Password)
        );
    }

    #[test]
    fn display_hides_the_password() {
        let u = ProxyUrl::parse("socks5://bench:secret@127.0.0.1:1081").unwrap();
        let shown = u.to_string();
        assert_eq!(shown, "socks5://bench:***@127.0.0.1:1081");
        assert!(!format!("{u:?}").contains("secret"));
    }

    #[test]
    fn rejects_bad_urls() {
        let cases: &[(&str, UrlError)] = &[
            ("127.0.0.1:1080", UrlError::MissingScheme),
            ("ftp://127.0.0.1:21", UrlError::UnknownScheme),
            ("socks5://127.0.0.1:1080/x", UrlError::HasPath),
            ("socks5://127.0.0.1:1080?x", UrlError::HasPath),
            ("socks5://127.0.0.1:0", UrlError::BadPort),
            ("socks5://127.0.0.1:65536", UrlError::BadPort),
            ("socks5://127.0.0.1:", UrlError::BadPort),
            ("socks5://127.0.0.1:+80", UrlError::BadPort),
            ("socks5://[::1]x", UrlError::BadPort),
            ("socks5://[::1", UrlError::BadHost),
            ("socks5://example.org:1080", UrlError::BadHost),
            ("socks5://u:%zz@127.0.0.1:1", UrlError::BadPercentEscape),
            ("socks5://u:%4@127.0.0.1:1", UrlError::BadPercentEscape),
            (
                "socks5://192.168.1.1:1080",
                UrlError::NotLoopback {
                    ip: "192.168.1.1".parse().unwrap(),
                },
            ),
            (
                "http://[2001:db8::1]:80",
                UrlError::NotLoopback {
                    ip: "2001:db8::1".parse().unwrap(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(ProxyUrl::parse(text).as_ref(), Err(want), "{text}");
        }
        let long_user = format!("socks5://{}:p@127.0.0.1:1", "u".repeat(256));
        assert_eq!(
            ProxyUrl::parse(&long_user),
            Err(UrlError::CredentialTooLong)
        );
        let max_user = format!("socks5://{}:p@127.0.0.1:1", "u".repeat(255));
        assert!(ProxyUrl::parse(&max_user).is_ok());
        let huge = format!("socks5://127.0.0.1:1{}", "/".repeat(MAX_URL_LEN));
        assert!(matches!(
            ProxyUrl::parse(&huge),
            Err(UrlError::TooLong { .. })
        ));
    }

    #[test]
    fn specs() {
        let s = ProxySpec::parse("direct").unwrap();
        assert_eq!(
            (s.name.as_str(), &s.url, s.pid),
            ("direct", &ProxyUrl::DIRECT, None)
        );
        let s = ProxySpec::parse("ref=direct").unwrap();
        assert_eq!(s.url, ProxyUrl::DIRECT);
        let s = ProxySpec::parse("micro_socks.1=socks5://u:p@127.0.0.1:9,pid=77").unwrap();
        assert_eq!(s.name, "micro_socks.1");
        assert_eq!(s.pid, Some(77));
        assert_eq!(s.url.protocol(), Protocol::Socks5Auth);
        assert_eq!(
            ProxySpec::parse("socks5://127.0.0.1:1"),
            Err(UrlError::MissingName)
        );
        assert_eq!(ProxySpec::parse("=direct"), Err(UrlError::BadName));
        assert_eq!(ProxySpec::parse("a b=direct"), Err(UrlError::BadName));
        let long = format!("{}=direct", "n".repeat(MAX_NAME_LEN + 1));
        assert_eq!(ProxySpec::parse(&long), Err(UrlError::BadName));
        assert_eq!(
            ProxySpec::parse("x=socks5://127.0.0.1:1,pid=0"),
            Err(UrlError::BadPid)
        );
        assert_eq!(
            ProxySpec::parse("x=socks5://127.0.0.1:1,pid=-3"),
            Err(UrlError::BadPid)
        );
        assert_eq!(
            ProxySpec::parse("x=socks5://10.1.1.1:1,pid=3"),
            Err(UrlError::NotLoopback {
                ip: "10.1.1.1".parse().unwrap()
            })
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for text in [
            "",
            "://",
            "socks5://",
            "socks5://@",
            "socks5://@:",
            "socks5://[]:1",
            "socks5://%",
            "socks5://u:%@127.0.0.1",
            "=",
            ",pid=",
            "x=,pid=1",
            "x=direct,pid=1",
            "ü=direct",
            "socks5://ü@127.0.0.1:1",
            "socks5://[::1]:1:2",
        ] {
            let _ = ProxyUrl::parse(text);
            let _ = ProxySpec::parse(text);
        }
        assert!(ProxySpec::parse("x=direct,pid=1").is_ok());
    }
}
