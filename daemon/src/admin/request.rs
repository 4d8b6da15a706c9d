//! Reading one web admin request: its method, path and HTTP Basic credentials, from the
//! bytes received so far. Pure: bytes in, a value out; it never reads a socket.
//!
//! Only the head is read; a body (3proxy's `/U` config upload) is never needed, since the
//! connection is closed after one answer. Sizes are capped ([`MAX_REQUEST_HEAD`],
//! [`MAX_HEADERS`], [`MAX_CREDENTIAL_LEN`]).

use base64::Engine as _;
use triproxy_wire::LogCode;

/// Largest request head accepted, in bytes (request line and header fields up to the
/// empty line). Admin requests are a few hundred bytes; 3proxy reads lines of up to 64 KiB.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Most header fields in a request head.
pub const MAX_HEADERS: usize = 32;
/// Longest user name and longest password taken from `Authorization: Basic` (the limit
/// triproxy keeps for every name and password).
pub const MAX_CREDENTIAL_LEN: usize = 255;
/// Longest request path kept (longer paths are refused as malformed).
pub const MAX_PATH_LEN: usize = 1024;

/// The two methods the admin serves (as 3proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST` (3proxy's forms; the body is not read).
    Post,
}

impl Method {
    /// The method token.
    pub fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A user name and password from `Authorization: Basic`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The name (before the first `:`).
    pub user: Vec<u8>,
    /// The password (after it).
    pub password: Vec<u8>,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never a password in a debug print.
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: Method,
    /// The path, query string removed (`/C`, `/CD1`, `/metrics`).
    pub path: String,
    /// The first `Authorization: Basic` field that decodes, if any (3proxy also skips
    /// fields it cannot decode).
    pub credentials: Option<Credentials>,
    /// Bytes of the head, empty line included; what follows is a body, never read.
    pub head_len: usize,
}

/// Progress of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The head is complete.
    Complete(Request),
    /// More bytes are needed.
    Partial,
}

/// Why a request is refused before any page is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// A method other than `GET` or `POST`: 405, code 701 (3proxy's "not GET/POST").
    Method,
    /// A head httparse rejects, a path that is not `/...`, or one longer than
    /// [`MAX_PATH_LEN`]: 400, code 702 (3proxy's "bad request line").
    Malformed,
    /// No complete head within [`MAX_REQUEST_HEAD`] bytes, or more than [`MAX_HEADERS`]
    /// fields: 431, code 702.
    TooLarge,
    /// The client sent nothing complete before the read timeout or closed: no answer,
    /// code 701 (3proxy's failed first-line read).
    Incomplete,
}

impl RequestError {
    /// The 3proxy log code.
    pub fn log_code(self) -> LogCode {
        match self {
            RequestError::Method | RequestError::Incomplete => LogCode(701),
            RequestError::Malformed | RequestError::TooLarge => LogCode(702),
        }
    }
}

/// Parses the head at the start of `input`.
///
/// ```
/// use triproxy::admin::request::{parse, Method, Parsed};
/// let Ok(Parsed::Complete(r)) = parse(b"GET /C?x=1 HTTP/1.1\r\nAuthorization: Basic YTpi\r\n\r\n")
/// else { panic!() };
/// assert_eq!((r.method, r.path.as_str()), (Method::Get, "/C"));
/// assert_eq!(r.credentials.unwrap().user, b"a");
/// ```
pub fn parse(input: &[u8]) -> Result<Parsed, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(input) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooLarge),
        Err(httparse::Error::Token) if method_token_bad(input) => return Err(RequestError::Method),
        Err(_) => return Err(RequestError::Malformed),
    };
    if status.is_partial() {
        return if input.len() >= MAX_REQUEST_HEAD {
            Err(RequestError::TooLarge)
        } else {
            Ok(Parsed::Partial)
        };
    }
    let head_len = match status {
        httparse::Status::Complete(len) if len <= MAX_REQUEST_HEAD => len,
        _ => return Err(RequestError::TooLarge),
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        _ => return Err(RequestError::Method),
    };
    let target = req.path.unwrap_or_default();
    let path = target.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
        return Err(RequestError::Malformed);
    }
    let credentials = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("authorization"))
        .find_map(|h| basic(h.value));
    Ok(Parsed::Complete(Request {
        method,
        path: path.to_owned(),
        credentials,
        head_len,
    }))
}

/// Whether the method token itself is what httparse refused (a method with bytes that are
/// not token characters is still "not GET/POST").
fn method_token_bad(input: &[u8]) -> bool {
    let method = input.split(|&b| b == b' ').next().unwrap_or_default();
    method != b"GET" && method != b"POST"
}

/// `Basic base64(user:password)` (RFC 7617), or `None` if the field is another scheme or
/// does not decode, has no `:`, or a part is longer than [`MAX_CREDENTIAL_LEN`].
fn basic(value: &[u8]) -> Option<Credentials> {
    let value = value.trim_ascii();
    let scheme_end = value.iter().position(|b| b.is_ascii_whitespace())?;
    let (scheme, rest) = value.split_at(scheme_end);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let rest = rest.trim_ascii();
    if rest.len() > 4 * (2 * MAX_CREDENTIAL_LEN + 1).div_ceil(3) {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    if user.len() > MAX_CREDENTIAL_LEN || password.len() > MAX_CREDENTIAL_LEN {
        return None;
    }
    Some(Credentials {
        user: user.to_vec(),
        password: password.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] =
        b"GET /CD12 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cGFzcw==\r\n\r\n";

    #[test]
    fn a_whole_request_with_credentials() {
        let Ok(Parsed::Complete(r)) = parse(GOOD) else {
            panic!("not complete")
        };
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.path, "/CD12");
        assert_eq!(r.head_len, GOOD.len());
        let c = r.credentials.unwrap();
        assert_eq!(
            (c.user.as_slice(), c.password.as_slice()),
            (&b"admin"[..], &b"pass"[..])
        );
    }

    #[test]
    fn every_strict_prefix_is_partial() {
        for n in 0..GOOD.len() {
            assert_eq!(parse(&GOOD[..n]), Ok(Parsed::Partial), "prefix {n}");
        }
    }

    #[test]
    fn refusals_and_their_codes() {
        let e = parse(b"PUT /C HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!((e, e.log_code().get()), (RequestError::Method, 701));
        let e = parse(b"GET C HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!((e, e.log_code().get()), (RequestError::Malformed, 702));
        assert_eq!(
            parse(b"GET /C HTTP/1.1\r\nBad Header\r\n\r\n"),
            Err(RequestError::Malformed)
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many), Err(RequestError::TooLarge));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_REQUEST_HEAD, b'a');
        assert_eq!(parse(&long), Err(RequestError::TooLarge));
        let long_path = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_PATH_LEN));
        assert_eq!(parse(long_path.as_bytes()), Err(RequestError::Malformed));
    }

    #[test]
    fn credentials_that_do_not_decode_are_absent() {
        for field in [
            "Bearer abc",
            "Basic !!!",
            "Basic YWRtaW4=", // "admin", no colon
            "Basic",
        ] {
            let head = format!("POST /C HTTP/1.1\r\nAuthorization: {field}\r\n\r\n");
            let Ok(Parsed::Complete(r)) = parse(head.as_bytes()) else {
                panic!("{field}")
            };
            assert_eq!(r.method, Method::Post);
            assert_eq!(r.credentials, None, "{field}");
        }
        // The first field that decodes is used.
        let head =
            b"GET /C HTTP/1.1\r\nAuthorization: Bearer x\r\nauthorization: basic  YTpi \r\n\r\n";
        let Ok(Parsed::Complete(r)) = parse(head) else {
            panic!()
        };
        assert_eq!(r.credentials.unwrap().password, b"b");
    }
}
