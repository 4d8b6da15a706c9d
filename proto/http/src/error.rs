//! Why a CONNECT exchange with an HTTP parent proxy failed: [`ConnectError`], with the
//! 3proxy parent codes 31-34 and a readable reason.
//!
//! Each variant carries the offending value where there is one, maps to the 3proxy log code
//! administrators grep for ([`ConnectError::log_code`]) and prints a readable reason through
//! `Display`. [`HeadError`] says what was wrong with a response head that could not be
//! parsed; it is this crate's own type, so that the parser behind it (httparse) stays out
//! of the public API.
//!
//! This module is not a general error type: I/O failures belong to the runtimes.

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

/// What was wrong with a parent's response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeadError {
    /// The status line does not start with `HTTP/1.0` or `HTTP/1.1`.
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
    /// A byte that is not allowed where a token is required.
    Token,
    /// More header fields than the machine parses
    /// ([`crate::connect_client::MAX_RESPONSE_HEADERS`]).
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
            HeadError::Version => write!(f, "not an HTTP/1.x status line"),
            HeadError::Status => write!(f, "invalid status line"),
            HeadError::HeaderName => write!(f, "invalid header name"),
            HeadError::HeaderValue => write!(f, "invalid header value"),
            HeadError::NewLine => write!(f, "invalid line ending"),
            HeadError::Token => write!(f, "invalid token"),
            HeadError::TooManyHeaders => write!(
                f,
                "more than {} header fields",
                crate::connect_client::MAX_RESPONSE_HEADERS
            ),
            HeadError::TooLarge => write!(
                f,
                "no end of head within {} bytes",
                crate::connect_client::MAX_RESPONSE_HEAD
            ),
        }
    }
}

/// Why talking to a parent HTTP proxy with CONNECT failed (client side), with 3proxy's
/// codes for CONNECT parents (30-39).
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
    /// The parent's response head could not be parsed. Code 32.
    Malformed {
        /// What was wrong with it.
        reason: HeadError,
    },
    /// The parent answered with a final status other than 2xx. Also delivered as
    /// [`crate::ConnectEvent::Refused`]; this variant exists for its log code. Code 33.
    Refused {
        /// The status code.
        status: u16,
    },
    /// No complete final response head before the deadline. Code 32.
    Timeout,
    /// The parent closed the connection before a complete final response head. Code 34.
    Closed,
}

impl ConnectError {
    /// The 3proxy log code for this failure.
    ///
    /// | variant | code |
    /// |---|---|
    /// | `InvalidCredentials`, `InvalidHost` (request could not be built or sent) | 31 |
    /// | `Malformed`, `Timeout` (timeout or bad reply) | 32 |
    /// | `Refused` (parent answered non-2xx) | 33 |
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
                    "{field} for the HTTP parent contains {what} ({byte:#04x}), which Basic \
                     authentication cannot carry"
                )
            }
            ConnectError::InvalidHost { byte } => write!(
                f,
                "target host name contains byte {byte:#04x}, which a CONNECT request cannot carry"
            ),
            ConnectError::Malformed { reason } => {
                write!(f, "bad CONNECT reply from HTTP parent: {reason}")
            }
            ConnectError::Refused { status } => {
                write!(f, "HTTP parent refused CONNECT (status {status})")
            }
            ConnectError::Timeout => write!(f, "HTTP parent timed out before its CONNECT reply"),
            ConnectError::Closed => {
                write!(
                    f,
                    "HTTP parent closed the connection before its CONNECT reply"
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {}

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
            "password for the HTTP parent contains a control character (0x0d), which Basic \
             authentication cannot carry"
        );
        assert_eq!(
            ConnectError::Refused { status: 407 }.to_string(),
            "HTTP parent refused CONNECT (status 407)"
        );
        assert_eq!(
            ConnectError::Malformed {
                reason: HeadError::TooLarge
            }
            .to_string(),
            "bad CONNECT reply from HTTP parent: no end of head within 8192 bytes"
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
}
