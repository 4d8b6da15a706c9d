//! Why an HTTP exchange failed, one enum per side: [`ConnectError`] for a CONNECT exchange
//! with an HTTP parent proxy (client side, 3proxy parent codes 31-34) and [`RequestError`]
//! for a client's request head read by the proxy service (server side, 3proxy `proxy` codes
//! 507-516).
//!
//! Each variant carries the offending value where there is one, maps to the 3proxy log code
//! administrators grep for ([`ConnectError::log_code`], [`RequestError::log_code`]) and
//! prints a readable reason through `Display`; a [`RequestError`] also says which answer the
//! client gets ([`RequestError::refusal`]). [`HeadError`] says what was wrong with a head
//! that could not be parsed; it is this crate's own type, so that the parser behind it
//! (httparse) stays out of the public API.
//!
//! This module is not a general error type: I/O failures belong to the runtimes.

use crate::proxy_server::{Refusal, MAX_METHOD_LEN, MAX_REQUEST_HEAD};
use core::fmt;
use triproxy_wire::LogCode;

/// Which half of the Basic credentials was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialField {
    /// The user-id (RFC 7617 section 2: no colon, no control character).
    Username,
    /// The password (RFC 7617 section 2: no control character).
    Password,
}

impl fmt::Display for CredentialField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialField::Username => "user name",
            CredentialField::Password => "password",
        })
    }
}

/// What was wrong with a head: a parent's response head (client side) or a client's
/// request head (server side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeadError {
    /// The status line does not start with `HTTP/1.0` or `HTTP/1.1`, or the request line
    /// does not end with one of them.
    Version,
    /// The status code is not three digits, is outside 100-599 (RFC 9110 section 15), or
    /// the status line is otherwise malformed.
    Status,
    /// A byte that is not allowed in a header name.
    HeaderName,
    /// A byte that is not allowed in a header value (this includes obsolete line folding).
    HeaderValue,
    /// A bare CR, or CR not followed by LF.
    NewLine,
    /// A byte that is not allowed where a token is required: in a request line, a method
    /// that is not a token (RFC 9110 section 9.1), or a request target that is empty, not
    /// UTF-8 or has a control character, space or DEL in it.
    Token,
    /// More header fields than the machine parses
    /// ([`crate::connect_client::MAX_RESPONSE_HEADERS`] in a response,
    /// [`crate::proxy_server::MAX_REQUEST_HEADERS`] in a request; both are 100).
    TooManyHeaders,
    /// No complete head within [`crate::connect_client::MAX_RESPONSE_HEAD`] bytes.
    TooLarge,
}

impl HeadError {
    pub(crate) fn from_httparse(e: httparse::Error) -> Self {
        match e {
            httparse::Error::HeaderName => HeadError::HeaderName,
            httparse::Error::HeaderValue => HeadError::HeaderValue,
            httparse::Error::NewLine => HeadError::NewLine,
            httparse::Error::Status => HeadError::Status,
            httparse::Error::Token => HeadError::Token,
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
            httparse::Error::Version => HeadError::Version,
        }
    }
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::Version => write!(f, "not HTTP/1.0 or HTTP/1.1"),
            HeadError::Status => write!(f, "invalid status line"),
            HeadError::HeaderName => write!(f, "invalid header name"),
            HeadError::HeaderValue => write!(f, "invalid header value"),
            HeadError::NewLine => write!(f, "invalid line ending"),
            HeadError::Token => write!(f, "invalid token"),
            HeadError::TooManyHeaders => write!(f, "too many header fields"),
            HeadError::TooLarge => write!(
                f,
                "no end of head within {} bytes",
                crate::connect_client::MAX_RESPONSE_HEAD
            ),
        }
    }
}

/// Why talking to an HTTP proxy with CONNECT failed (client side), with the 3proxy codes it
/// has when the proxy is a CONNECT parent of a chain (30-39).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectError {
    /// A user name or password that Basic authentication cannot carry: a colon in the user
    /// name (it would split user and password differently), or a control character
    /// (0x00-0x1F, 0x7F: CR, LF, NUL and the rest) in either (RFC 7617 section 2).
    /// Reported by [`crate::ConnectClient::new`]; the request is not sent. Code 31.
    InvalidCredentials {
        /// Which half.
        field: CredentialField,
        /// The first offending byte.
        byte: u8,
    },
    /// A target name with a byte that may not appear in the host of an authority-form
    /// request target (RFC 9112 section 3.2.3; RFC 3986 section 3.2.2 `reg-name`): a space
    /// or control character, `:`, `/`, `@`, `[`, and so on, or a non-ASCII byte. Sending it
    /// could split the request line or inject a header. Reported by
    /// [`crate::ConnectClient::new`]; the request is not sent. Code 31.
    InvalidHost {
        /// The first offending byte.
        byte: u8,
    },
    /// The proxy's response head could not be parsed. Code 32.
    Malformed {
        /// What was wrong with it.
        reason: HeadError,
    },
    /// The proxy answered with a final status other than 2xx. Also delivered as
    /// [`crate::ConnectEvent::Refused`]; this variant exists for its log code. Code 33.
    Refused {
        /// The status code.
        status: u16,
    },
    /// No complete final response head before the deadline. Code 32.
    Timeout,
    /// The proxy closed the connection before a complete final response head. Code 34.
    Closed,
}

impl ConnectError {
    /// The 3proxy log code for this failure.
    ///
    /// | variant | code |
    /// |---|---|
    /// | `InvalidCredentials`, `InvalidHost` (request could not be built or sent) | 31 |
    /// | `Malformed`, `Timeout` (timeout or bad reply) | 32 |
    /// | `Refused` (the proxy answered non-2xx) | 33 |
    /// | `Closed` (closed before the reply) | 34 |
    ///
    /// ```
    /// use triproxy_http::ConnectError;
    /// assert_eq!(ConnectError::Refused { status: 407 }.log_code().get(), 33);
    /// assert_eq!(ConnectError::Closed.log_code().get(), 34);
    /// ```
    pub fn log_code(&self) -> LogCode {
        match self {
            ConnectError::InvalidCredentials { .. } | ConnectError::InvalidHost { .. } => {
                LogCode(31)
            }
            ConnectError::Malformed { .. } | ConnectError::Timeout => LogCode(32),
            ConnectError::Refused { .. } => LogCode(33),
            ConnectError::Closed => LogCode(34),
        }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::InvalidCredentials { field, byte } => {
                let what = if *byte == b':' {
                    "a colon"
                } else {
                    "a control character"
                };
                write!(
                    f,
                    "{field} for the HTTP proxy contains {what} ({byte:#04x}), which Basic \
                     authentication cannot carry"
                )
            }
            ConnectError::InvalidHost { byte } => write!(
                f,
                "target host name contains byte {byte:#04x}, which a CONNECT request cannot carry"
            ),
            ConnectError::Malformed { reason } => {
                write!(f, "bad CONNECT reply from the HTTP proxy: {reason}")
            }
            ConnectError::Refused { status } => {
                write!(f, "the HTTP proxy refused CONNECT (status {status})")
            }
            ConnectError::Timeout => {
                write!(
                    f,
                    "no CONNECT reply from the HTTP proxy before the deadline"
                )
            }
            ConnectError::Closed => {
                write!(
                    f,
                    "the HTTP proxy closed the connection before its CONNECT reply"
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {}

/// Why the HTTP proxy service did not accept a client's request head (server side,
/// [`crate::ProxyServer`]), with 3proxy's codes for its `proxy` service (500-599, RFC 9112
/// section 3 for the request line). Every variant but [`RequestError::Timeout`] and
/// [`RequestError::Closed`] is answered with 400 Bad Request, which the machine queues
/// itself ([`RequestError::refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// httparse rejected the request head: a bad method token, request target or version,
    /// a bad header line, a bare CR, or more than
    /// [`crate::proxy_server::MAX_REQUEST_HEADERS`] header fields. 400; code 512 (3proxy's
    /// "request line without a space", its catch-all for a request line it cannot split),
    /// 516 for [`HeadError::TooManyHeaders`] (3proxy's "headers too large").
    Malformed {
        /// What was wrong with it.
        reason: HeadError,
    },
    /// No end of the head within [`MAX_REQUEST_HEAD`] bytes. 400; code 516.
    TooLarge,
    /// A request target that this proxy does not serve: an absolute URI with a scheme
    /// other than `http` (`https://`, `ftp://`, ...), asterisk-form (`*`), or an authority without a
    /// scheme on a method other than CONNECT. 400; code 513, as 3proxy.
    UnsupportedScheme,
    /// A target with no usable host and port (RFC 9112 section 3.2, RFC 3986 section
    /// 3.2): CONNECT not followed by `host[:port]`; an `http://` URI without a host or with
    /// user information (`user@host`, which RFC 9110 section 4.2.4 asks recipients to
    /// treat as an error); a host that is empty, longer than 255 bytes, has a byte outside
    /// the `reg-name` set (so no space, CR, LF, `@`, `/`, non-ASCII, ...) or a `%` (no
    /// percent-encoded hosts), or a bracketed
    /// literal that is not an IPv6 address; a port that is empty, not 1-5 digits, or
    /// outside 1-65535. 400; code 514 (3proxy's "bad CONNECT", used here for both forms).
    BadTarget,
    /// A `Proxy-Authorization: Basic` field (the first one with that scheme) whose
    /// credentials are not base64, have no `:` after decoding, or contain a control
    /// character (RFC 7617 section 2). 400; code 512, the code of a malformed request:
    /// 3proxy has none of its own for this (it ignores undecodable credentials), and the
    /// 2-9 authentication codes would send 407, inviting the client to repeat the same
    /// broken field.
    BadCredentials,
    /// A method token longer than [`MAX_METHOD_LEN`] bytes. 400; code 511 (3proxy's
    /// code for a request line it cannot use: shorter than 10 characters).
    MethodTooLong,
    /// No complete request head before the deadline (3proxy's `-t` handshake timeout).
    /// Nothing is sent; code 507 (3proxy's "read error before the request", which is what
    /// its timed-out read gives).
    Timeout,
    /// The client closed the connection before a complete request head. Nothing is sent;
    /// code 508 (3proxy does not log this case; the code is there for those who do).
    Closed,
}

impl RequestError {
    /// The 3proxy log code for this failure.
    ///
    /// | variant | code | answer |
    /// |---|---|---|
    /// | `Timeout` (read error or timeout before the request) | 507 | none |
    /// | `Closed` (client closed before the request) | 508 | none |
    /// | `MethodTooLong` (unusable request line) | 511 | 400 |
    /// | `Malformed` (except too many fields), `BadCredentials` (malformed request) | 512 | 400 |
    /// | `UnsupportedScheme` (unsupported scheme) | 513 | 400 |
    /// | `BadTarget` (bad CONNECT target or URI authority) | 514 | 400 |
    /// | `TooLarge`, `Malformed { reason: TooManyHeaders }` (headers too large) | 516 | 400 |
    ///
    /// ```
    /// use triproxy_http::{HeadError, RequestError};
    /// assert_eq!(RequestError::BadTarget.log_code().get(), 514);
    /// let e = RequestError::Malformed { reason: HeadError::TooManyHeaders };
    /// assert_eq!(e.log_code().get(), 516);
    /// ```
    pub fn log_code(&self) -> LogCode {
        match self {
            RequestError::Timeout => LogCode(507),
            RequestError::Closed => LogCode(508),
            RequestError::MethodTooLong => LogCode(511),
            RequestError::Malformed {
                reason: HeadError::TooManyHeaders | HeadError::TooLarge,
            }
            | RequestError::TooLarge => LogCode(516),
            RequestError::Malformed { .. } | RequestError::BadCredentials => LogCode(512),
            RequestError::UnsupportedScheme => LogCode(513),
            RequestError::BadTarget => LogCode(514),
        }
    }

    /// The answer the client gets: [`Refusal::BadRequest`] (400) for a request that was
    /// read and rejected, None for [`RequestError::Timeout`] and [`RequestError::Closed`]
    /// (nothing is sent; the connection is closed).
    ///
    /// ```
    /// use triproxy_http::{Refusal, RequestError};
    /// assert_eq!(RequestError::UnsupportedScheme.refusal(), Some(Refusal::BadRequest));
    /// assert_eq!(RequestError::Timeout.refusal(), None);
    /// ```
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            RequestError::Timeout | RequestError::Closed => None,
            RequestError::Malformed { .. }
            | RequestError::TooLarge
            | RequestError::UnsupportedScheme
            | RequestError::BadTarget
            | RequestError::BadCredentials
            | RequestError::MethodTooLong => Some(Refusal::BadRequest),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Malformed { reason } => {
                write!(f, "malformed HTTP request head: {reason}")
            }
            RequestError::TooLarge => write!(
                f,
                "HTTP request head not complete within {MAX_REQUEST_HEAD} bytes"
            ),
            RequestError::UnsupportedScheme => write!(
                f,
                "request target is neither an http:// URI nor a CONNECT authority \
                 (other schemes are not served)"
            ),
            RequestError::BadTarget => write!(
                f,
                "bad request target: no valid host, or no port in 1-65535"
            ),
            RequestError::BadCredentials => write!(
                f,
                "Proxy-Authorization Basic credentials are not base64 of user:password"
            ),
            RequestError::MethodTooLong => {
                write!(f, "request method longer than {MAX_METHOD_LEN} bytes")
            }
            RequestError::Timeout => {
                write!(
                    f,
                    "client sent no complete request head before the deadline"
                )
            }
            RequestError::Closed => write!(
                f,
                "client closed the connection before a complete request head"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            ConnectError::InvalidCredentials {
                field: CredentialField::Username,
                byte: b':'
            }
            .log_code(),
            LogCode(31)
        );
        assert_eq!(
            ConnectError::InvalidHost { byte: b'\n' }.log_code(),
            LogCode(31)
        );
        assert_eq!(
            ConnectError::Malformed {
                reason: HeadError::TooLarge
            }
            .log_code(),
            LogCode(32)
        );
        assert_eq!(ConnectError::Timeout.log_code(), LogCode(32));
        assert_eq!(
            ConnectError::Refused { status: 502 }.log_code(),
            LogCode(33)
        );
        assert_eq!(ConnectError::Closed.log_code(), LogCode(34));
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            ConnectError::InvalidCredentials {
                field: CredentialField::Password,
                byte: b'\r'
            }
            .to_string(),
            "password for the HTTP proxy contains a control character (0x0d), which Basic \
             authentication cannot carry"
        );
        assert_eq!(
            ConnectError::Refused { status: 407 }.to_string(),
            "the HTTP proxy refused CONNECT (status 407)"
        );
        assert_eq!(
            ConnectError::Malformed {
                reason: HeadError::TooLarge
            }
            .to_string(),
            "bad CONNECT reply from the HTTP proxy: no end of head within 8192 bytes"
        );
    }

    #[test]
    fn every_httparse_error_maps() {
        for (e, want) in [
            (httparse::Error::HeaderName, HeadError::HeaderName),
            (httparse::Error::HeaderValue, HeadError::HeaderValue),
            (httparse::Error::NewLine, HeadError::NewLine),
            (httparse::Error::Status, HeadError::Status),
            (httparse::Error::Token, HeadError::Token),
            (httparse::Error::TooManyHeaders, HeadError::TooManyHeaders),
            (httparse::Error::Version, HeadError::Version),
        ] {
            assert_eq!(HeadError::from_httparse(e), want);
        }
    }

    #[test]
    fn request_codes_and_answers() {
        let bad = Some(Refusal::BadRequest);
        for (e, code, answer) in [
            (RequestError::Timeout, 507, None),
            (RequestError::Closed, 508, None),
            (RequestError::MethodTooLong, 511, bad),
            (
                RequestError::Malformed {
                    reason: HeadError::Token,
                },
                512,
                bad,
            ),
            (
                RequestError::Malformed {
                    reason: HeadError::Version,
                },
                512,
                bad,
            ),
            (RequestError::BadCredentials, 512, bad),
            (RequestError::UnsupportedScheme, 513, bad),
            (RequestError::BadTarget, 514, bad),
            (RequestError::TooLarge, 516, bad),
            (
                RequestError::Malformed {
                    reason: HeadError::TooManyHeaders,
                },
                516,
                bad,
            ),
        ] {
            assert_eq!(e.log_code(), LogCode(code), "{e:?}");
            assert_eq!(e.refusal(), answer, "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn request_display_is_readable() {
        assert_eq!(
            RequestError::TooLarge.to_string(),
            "HTTP request head not complete within 16384 bytes"
        );
        assert_eq!(
            RequestError::Malformed {
                reason: HeadError::Version
            }
            .to_string(),
            "malformed HTTP request head: not HTTP/1.0 or HTTP/1.1"
        );
        assert_eq!(
            RequestError::MethodTooLong.to_string(),
            "request method longer than 32 bytes"
        );
    }
}
