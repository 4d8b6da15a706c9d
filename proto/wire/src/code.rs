//! 3proxy's log error codes (`%E` in `logformat`): part of triproxy's interface, because
//! administrators grep their logs for them.

use core::fmt;

/// A 3proxy log error code. Printed as five zero-padded digits by `%E` (`00000`).
///
/// The constants name the codes triproxy emits; the numbers and meanings follow 3proxy 1.0
/// (see the error-code table in the reference documents). Codes 400-499 belong to the SOCKS
/// service, 500-599 to the HTTP proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogCode(pub u16);

impl LogCode {
    /// The connection did what was asked.
    pub const SUCCESS: LogCode = LogCode(0);
    /// Denied by an ACL `deny` entry.
    pub const ACL_DENIED: LogCode = LogCode(1);
    /// No ACL entry matched (a non-empty ACL denies by default).
    pub const ACL_NO_MATCH: LogCode = LogCode(3);
    /// Authentication required but no user name given.
    pub const NO_USERNAME: LogCode = LogCode(4);
    /// The user name is not in the `users` table.
    pub const USER_NOT_FOUND: LogCode = LogCode(5);
    /// Wrong cleartext (CL) password.
    pub const BAD_CL_PASSWORD: LogCode = LogCode(6);
    /// Wrong crypt (CR) password.
    pub const BAD_CR_PASSWORD: LogCode = LogCode(7);
    /// Wrong NT password.
    pub const BAD_NT_PASSWORD: LogCode = LogCode(8);
    /// A traffic quota or connection limit was exceeded.
    pub const LIMIT_EXCEEDED: LogCode = LogCode(10);
    /// socket() failed.
    pub const SOCKET_FAILED: LogCode = LogCode(11);
    /// bind() failed.
    pub const BIND_FAILED: LogCode = LogCode(12);
    /// connect() to the target failed or timed out.
    pub const CONNECT_FAILED: LogCode = LogCode(13);
    /// getpeername()/getsockname() failed.
    pub const GETPEERNAME_FAILED: LogCode = LogCode(14);
    /// An unexpected system error during relay.
    pub const RELAY_SYSTEM_ERROR: LogCode = LogCode(90);
    /// poll() error during relay.
    pub const RELAY_POLL_ERROR: LogCode = LogCode(91);
    /// The relay was idle for longer than its timeout.
    pub const RELAY_IDLE_TIMEOUT: LogCode = LogCode(92);
    /// Rate-limit wait exceeded its timeout.
    pub const RELAY_RATELIMIT_TIMEOUT: LogCode = LogCode(93);
    /// The relay ended with data that could not be delivered.
    pub const RELAY_UNSENT_DATA: LogCode = LogCode(94);
    /// The client ended the connection with an error (reset).
    pub const RELAY_CLIENT_ABORT: LogCode = LogCode(95);
    /// The server ended the connection with an error (reset).
    pub const RELAY_SERVER_ABORT: LogCode = LogCode(96);
    /// Both sides ended with an error.
    pub const RELAY_BOTH_ABORT: LogCode = LogCode(97);
    /// A host name could not be resolved.
    pub const HOST_NOT_FOUND: LogCode = LogCode(100);
    /// Not implemented.
    pub const NOT_IMPLEMENTED: LogCode = LogCode(999);

    /// The numeric code.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Whether this code means success.
    pub fn is_success(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for LogCode {
    /// Five zero-padded digits, as 3proxy's `%E`.
    ///
    /// ```
    /// use triproxy_wire::LogCode;
    /// assert_eq!(LogCode::BAD_CL_PASSWORD.to_string(), "00006");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05}", self.0)
    }
}
