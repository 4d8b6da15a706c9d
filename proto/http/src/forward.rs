//! The request head a forwarding proxy sends on (RFC 9110 section 7.6, RFC 9112 section
//! 3.2), sans-IO: from a client's absolute-form request head to the origin-form head for
//! the origin server.
//!
//! [`forward_request`] parses a complete head (or says it is not complete yet) and
//! returns what the proxy needs to forward it:
//!
//! - the request line in origin form (`GET /path?q HTTP/1.1`; `OPTIONS *` for an
//!   `OPTIONS` of a bare authority, RFC 9112 section 3.2.4), as HTTP/1.1, the proxy's own
//!   version, except for an HTTP/1.0 client's request, which goes on as HTTP/1.0 so that
//!   the origin does not answer with a chunked body the client cannot read (the proxy
//!   does not decode bodies); [`Forward::absolute_head`] gives the absolute form for an
//!   HTTP parent proxy;
//! - a transparent request (origin form, `GET /path` with a `Host` field, as a client
//!   redirected to the proxy by a firewall sends it) is served too: the destination comes
//!   from `Host`;
//! - the `Proxy-Authorization: Basic` credentials, for the proxy's own check;
//! - `Host` from the URI's authority, first, replacing any the client sent (RFC 9112
//!   section 3.2.2);
//! - no hop-by-hop fields (RFC 9110 section 7.6.1): `Connection` and every field it
//!   names, `Proxy-Connection`, `Keep-Alive`, `Proxy-Authorization`, `TE`, `Trailer`,
//!   `Upgrade`. `Transfer-Encoding: chunked` stays: the body is forwarded as it came,
//!   chunk framing included;
//! - `Via` with this hop appended (RFC 9110 section 7.6.3);
//! - how the body is framed ([`crate::body::request_framing`], smuggling-safe) and
//!   whether the client's connection stays open after the response (HTTP/1.1 unless
//!   `Connection: close`; HTTP/1.0 never, as triproxy does not do 1.0 keep-alive).
//!
//! [`forward_response`] does the same for the origin's answer: the status line as
//! HTTP/1.1, hop-by-hop fields dropped, `Via` added, the response body's framing (none
//! for HEAD, 1xx, 204, 304) and whether the origin connection can be reused.
//!
//! Limits: the request head's, as for [`crate::ProxyServer`] ([`MAX_REQUEST_HEAD`] bytes,
//! [`MAX_REQUEST_HEADERS`] fields); a `Connection` field naming more than
//! [`MAX_CONNECTION_OPTIONS`] fields is malformed; a response head up to
//! [`MAX_RESPONSE_HEAD`] bytes and [`MAX_RESPONSE_FIELDS`] fields.

use crate::body::{request_framing, response_framing, Framing, FramingError};
use crate::connect_client::Credentials;
use crate::error::{HeadError, RequestError};
use crate::proxy_server::{
    absolute_http, authority, basic, MAX_METHOD_LEN, MAX_REQUEST_HEAD, MAX_REQUEST_HEADERS,
};
use triproxy_wire::TargetAddr;

/// Most field names one `Connection` field may list.
pub const MAX_CONNECTION_OPTIONS: usize = 32;

/// The fields not forwarded as sent, besides those `Connection` names: the hop-by-hop
/// ones, and `Host` (written first, from the URI).
const DROPPED: [&str; 8] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
    "host",
];

/// A client's request, ready to send to the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Bytes of the input that were the head (the body, if any, follows).
    pub head_len: usize,
    /// The head to send to the origin.
    pub head: Vec<u8>,
    /// The method as sent.
    pub method: String,
    /// The origin's host and port, from the URI.
    pub target: TargetAddr,
    /// How the request body is delimited.
    pub framing: Framing,
    /// Whether the client's connection may carry another request after this one.
    pub keep_alive: bool,
    /// From the first `Proxy-Authorization: Basic` field, if any.
    pub credentials: Option<Credentials>,
    /// The request's method and URI as 3proxy logs them (`%T`): `GET http://host/path`,
    /// rebuilt from `Host` for a transparent request; at most [`MAX_LOG_TEXT`] bytes.
    pub text: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Where the origin-form target is in `head`, and the `http://authority` to put
    /// before it for the absolute form.
    target_at: (usize, usize),
    absolute_prefix: String,
}

/// Longest `%T` text kept per request: the method and URI, cut at a character boundary.
pub const MAX_LOG_TEXT: usize = 512;

impl Forward {
    /// The head in absolute form (`GET http://host:port/path HTTP/1.1`), as a request to
    /// an HTTP parent proxy is sent (RFC 9112 section 3.2.2).
    pub fn absolute_head(&self) -> Vec<u8> {
        let (start, end) = self.target_at;
        let (before, rest) = self.head.split_at(start.min(self.head.len()));
        let (target, after) = rest.split_at(end.saturating_sub(start).min(rest.len()));
        let mut out = Vec::with_capacity(self.head.len() + self.absolute_prefix.len());
        out.extend_from_slice(before);
        out.extend_from_slice(self.absolute_prefix.as_bytes());
        if target != b"*" {
            out.extend_from_slice(target);
        }
        out.extend_from_slice(after);
        out
    }
}

/// Why a request cannot be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardError {
    /// The head itself (400, with the code of [`RequestError::log_code`]).
    Request(RequestError),
    /// Its body framing fields (400).
    Framing(FramingError),
}

impl From<RequestError> for ForwardError {
    fn from(e: RequestError) -> Self {
        ForwardError::Request(e)
    }
}

impl core::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ForwardError::Request(e) => e.fmt(f),
            ForwardError::Framing(e) => e.fmt(f),
        }
    }
}

/// The head of `input` rewritten for the origin, `Ok(None)` while it is incomplete.
/// `via` names this hop in the `Via` field (for example `triproxy`).
pub fn forward_request(input: &[u8], via: &str) -> Result<Option<Forward>, ForwardError> {
    let malformed = |reason| RequestError::Malformed { reason };
    let mut slots = vec![httparse::EMPTY_HEADER; MAX_REQUEST_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let head_len = match req.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() >= MAX_REQUEST_HEAD => {
            return Err(RequestError::TooLarge.into())
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(HeadError::from_httparse(e)).into()),
    };
    if head_len > MAX_REQUEST_HEAD {
        return Err(RequestError::TooLarge.into());
    }
    let (Some(method), Some(uri), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(malformed(HeadError::Token).into());
    };
    if method.len() > MAX_METHOD_LEN {
        return Err(RequestError::MethodTooLong.into());
    }
    let transparent = uri.starts_with('/');
    let (target, authority_text, origin_form) = if transparent {
        // Origin form: the destination is the `Host` field (exactly one, RFC 9112
        // section 3.2).
        let mut hosts = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("host"));
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return Err(RequestError::BadTarget.into());
        };
        let value = host.value.trim_ascii();
        let text = core::str::from_utf8(value).map_err(|_| RequestError::BadTarget)?;
        (
            authority(value)?,
            text,
            uri.split('#').next().unwrap_or_default(),
        )
    } else {
        let (authority_text, origin_form) = split_uri(uri);
        (absolute_http(uri)?, authority_text, origin_form)
    };
    let fields = req.headers.iter().map(|h| (h.name, h.value));
    let framing = request_framing(fields).map_err(ForwardError::Framing)?;
    let mut credentials = None;
    for field in req.headers.iter() {
        if field.name.eq_ignore_ascii_case("proxy-authorization") {
            credentials = basic(field.value)?;
            if credentials.is_some() {
                break;
            }
        }
    }

    // The fields `Connection` names are hop-by-hop too.
    let (named, close) = connection_options(req.headers, &["connection", "proxy-connection"])
        .ok_or(malformed(HeadError::Token))?;
    let close = close || minor == 0;

    let mut head = Vec::with_capacity(head_len + 32);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    let target_start = head.len();
    if origin_form.is_empty() {
        head.extend_from_slice(if method == "OPTIONS" { b"*" } else { b"/" });
    } else {
        head.extend_from_slice(origin_form.as_bytes());
    }
    let target_end = head.len();
    head.extend_from_slice(if minor == 0 {
        b" HTTP/1.0\r\nHost: "
    } else {
        b" HTTP/1.1\r\nHost: "
    });
    head.extend_from_slice(authority_text.as_bytes());
    head.extend_from_slice(b"\r\n");
    copy_fields(&mut head, req.headers, &DROPPED, &named, minor, via);
    let absolute_prefix = format!("http://{authority_text}");
    let shown = if transparent {
        format!("{method} {absolute_prefix}{origin_form}")
    } else {
        format!("{method} {uri}")
    };
    Ok(Some(Forward {
        head_len,
        head,
        method: method.to_owned(),
        target,
        framing,
        keep_alive: !close,
        credentials,
        text: cut(shown, MAX_LOG_TEXT),
        minor_version: minor,
        target_at: (target_start, target_end),
        absolute_prefix,
    }))
}

/// The options of `headers`' fields named in `fields` (`Connection`, and in requests the
/// non-standard `Proxy-Connection`): the field names they make hop-by-hop, and whether
/// one of them is `close`. `None` past [`MAX_CONNECTION_OPTIONS`] options.
fn connection_options<'h>(
    headers: &[httparse::Header<'h>],
    fields: &[&str],
) -> Option<(Vec<&'h [u8]>, bool)> {
    let mut named = Vec::new();
    let mut close = false;
    for h in headers {
        if !fields.iter().any(|f| h.name.eq_ignore_ascii_case(f)) {
            continue;
        }
        for option in h.value.split(|&b| b == b',') {
            let option = option.trim_ascii();
            if option.is_empty() {
                continue;
            }
            close |= option.eq_ignore_ascii_case(b"close");
            if named.len() >= MAX_CONNECTION_OPTIONS {
                return None;
            }
            named.push(option);
        }
    }
    Some((named, close))
}

/// Appends `headers` to `head` for the next hop: without the `dropped` fields and those
/// `Connection` `named`, with this hop (`1.minor via`) joined to the first `Via` field or
/// added as one (RFC 9110 section 7.6.3), then the empty line that ends the head.
fn copy_fields(
    head: &mut Vec<u8>,
    headers: &[httparse::Header<'_>],
    dropped: &[&str],
    named: &[&[u8]],
    minor: u8,
    via: &str,
) {
    let mut via_seen = false;
    for h in headers {
        let name = h.name;
        if dropped.iter().any(|n| name.eq_ignore_ascii_case(n))
            || named
                .iter()
                .any(|n| name.as_bytes().eq_ignore_ascii_case(n))
        {
            continue;
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(h.value);
        if name.eq_ignore_ascii_case("via") && !via_seen {
            via_seen = true;
            head.extend_from_slice(format!(", 1.{minor} {via}").as_bytes());
        }
        head.extend_from_slice(b"\r\n");
    }
    if !via_seen {
        head.extend_from_slice(format!("Via: 1.{minor} {via}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
}

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// The authority (`host[:port]`) and the origin form (`/path?query`, without a
/// fragment; empty when the URI has no path or query) of an absolute `http://` URI that
/// [`absolute_http`] accepted.
fn split_uri(uri: &str) -> (&str, &str) {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = tail.split('#').next().unwrap_or_default();
    (authority, tail)
}

/// Longest response head accepted from an origin (cookies make them larger than
/// requests).
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Most fields in a response head from an origin.
pub const MAX_RESPONSE_FIELDS: usize = 200;

/// The response fields not forwarded to the client, besides those `Connection` names.
const DROPPED_IN_RESPONSES: [&str; 6] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

/// An origin's response, ready to send to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardResponse {
    /// Bytes of the input that were the head (the body, if any, follows).
    pub head_len: usize,
    /// The head to send to the client.
    pub head: Vec<u8>,
    /// The status code.
    pub status: u16,
    /// How the response body is delimited. A 1xx response has none and another
    /// response follows it.
    pub framing: Framing,
    /// Whether the origin connection may carry another request after this response.
    pub reusable: bool,
}

/// Why an origin's response cannot be forwarded (the client gets 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// httparse rejected the head, or it has more than [`MAX_RESPONSE_FIELDS`] fields.
    Malformed(HeadError),
    /// No end of the head within [`MAX_RESPONSE_HEAD`] bytes.
    TooLarge,
    /// Its body framing fields.
    Framing(FramingError),
}

impl core::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ResponseError::Malformed(e) => write!(f, "malformed response head: {e}"),
            ResponseError::TooLarge => f.write_str("response head too large"),
            ResponseError::Framing(e) => e.fmt(f),
        }
    }
}

/// The head of an origin's response in `input` rewritten for the client, `Ok(None)`
/// while it is incomplete. `request_was_head`: the request was HEAD (no body follows
/// whatever the fields say). The status line goes out as HTTP/1.1, hop-by-hop fields are
/// dropped and this hop is added to `Via`.
pub fn forward_response(
    input: &[u8],
    request_was_head: bool,
    via: &str,
) -> Result<Option<ForwardResponse>, ResponseError> {
    let mut slots = vec![httparse::EMPTY_HEADER; MAX_RESPONSE_FIELDS];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if input.len() >= MAX_RESPONSE_HEAD => {
            return Err(ResponseError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ResponseError::Malformed(HeadError::from_httparse(e))),
    };
    if head_len > MAX_RESPONSE_HEAD {
        return Err(ResponseError::TooLarge);
    }
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(ResponseError::Malformed(HeadError::Token));
    };
    let fields = resp.headers.iter().map(|h| (h.name, h.value));
    let framing =
        response_framing(status, request_was_head, fields).map_err(ResponseError::Framing)?;
    let (named, close) = connection_options(resp.headers, &["connection"])
        .ok_or(ResponseError::Malformed(HeadError::Token))?;
    let close = close || minor == 0;
    let mut head = Vec::with_capacity(head_len + 32);
    head.extend_from_slice(format!("HTTP/1.1 {status} ").as_bytes());
    head.extend_from_slice(resp.reason.unwrap_or_default().as_bytes());
    head.extend_from_slice(b"\r\n");
    copy_fields(
        &mut head,
        resp.headers,
        &DROPPED_IN_RESPONSES,
        &named,
        minor,
        via,
    );
    Ok(Some(ForwardResponse {
        head_len,
        head,
        status,
        framing,
        reusable: !close && framing != Framing::UntilClose,
    }))
}
