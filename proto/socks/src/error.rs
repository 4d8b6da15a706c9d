//! Why a SOCKS exchange failed: [`Error`] for what a client sent to us (server side and the
//! codecs), [`ClientError`] for what a SOCKS proxy answered us (client side).
//!
//! Each variant carries the offending value where there is one, maps to the 3proxy log code
//! administrators grep for ([`Error::log_code`], [`ClientError::log_code`]) and prints a
//! readable reason through `Display`. The wire reply a failure deserves (SOCKS5 REP, SOCKS4
//! CD) is chosen by the server machine, not here.
//!
//! This module is not a general error type: I/O failures belong to the runtimes.

use crate::client::ClientVersion;
use crate::{v4, v5};
use core::fmt;
use triproxy_wire::{DomainError, LogCode};

/// A variable-length field that has a hard cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// SOCKS4 USERID (at most 255 bytes before its NUL).
    UserId,
    /// SOCKS4a host name (at most 255 bytes before its NUL).
    Hostname,
    /// RFC 1929 UNAME (at most 255 bytes).
    Username,
    /// RFC 1929 PASSWD (at most 255 bytes).
    Password,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::UserId => "SOCKS4 user id",
            Field::Hostname => "SOCKS4a host name",
            Field::Username => "user name",
            Field::Password => "password",
        })
    }
}

/// A malformed or refused SOCKS message from a client, or a handshake that ran out of time.
///
/// Returned by every `parse` in [`crate::v4`] and [`crate::v5`] and by the
/// [`crate::server::Server`] machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The first byte (or a reply's version byte) is not a SOCKS version this message allows.
    BadVersion {
        /// The byte received.
        version: u8,
    },
    /// A known SOCKS version that this server is configured not to speak.
    VersionDisabled {
        /// 4 or 5.
        version: u8,
    },
    /// A SOCKS5 greeting with NMETHODS = 0 (RFC 1928 section 3 requires at least one).
    NoMethods,
    /// The client offered no authentication method the server accepts (RFC 1928 section 3,
    /// answered with METHOD X'FF').
    NoAcceptableMethod,
    /// An RFC 1929 request whose VER is not 1.
    BadAuthVersion {
        /// The byte received.
        version: u8,
    },
    /// An RFC 1929 request with ULEN = 0.
    EmptyUsername,
    /// A SOCKS5 request whose VER is not 5 (RFC 1928 section 4).
    BadRequestVersion {
        /// The byte received.
        version: u8,
    },
    /// A command other than CONNECT, BIND or UDP ASSOCIATE (SOCKS4: other than 1 or 2).
    UnknownCommand {
        /// The CMD / CD byte received.
        command: u8,
    },
    /// An ATYP other than 1 (IPv4), 3 (domain) or 4 (IPv6) (RFC 1928 section 5).
    BadAddressType {
        /// The ATYP byte received.
        atyp: u8,
    },
    /// A domain address of length 0 (SOCKS5 ATYP 3, or an empty SOCKS4a host name).
    EmptyDomain,
    /// A domain address that is not a valid [`triproxy_wire::DomainName`] for another reason
    /// (a NUL byte inside it).
    InvalidDomain {
        /// Why the name was refused.
        reason: DomainError,
    },
    /// A NUL-terminated or length-prefixed field longer than its cap (255 bytes).
    FieldTooLong {
        /// Which field.
        field: Field,
    },
    /// A UDP request header whose RSV field is not zero (RFC 1928 section 7).
    BadReserved {
        /// The two RSV bytes, big-endian.
        value: u16,
    },
    /// A message that ended before it was complete: a UDP datagram too short for its header,
    /// or (reported by a driver) a client that closed the connection mid-handshake.
    Truncated,
    /// The handshake did not finish before its deadline.
    Timeout,
}

impl Error {
    /// The 3proxy log code for this failure (`%E`).
    ///
    /// | variant | code |
    /// |---|---|
    /// | `BadVersion`, `VersionDisabled` | 401 |
    /// | `UnknownCommand` | 407 |
    /// | `BadAuthVersion` | 412 |
    /// | `BadRequestVersion` | 421 |
    /// | `NoMethods`, `Truncated`, `FieldTooLong { UserId / Username / Password }` | 441 |
    /// | `EmptyDomain`, `InvalidDomain`, `FieldTooLong { Hostname }` | 451 |
    /// | `BadReserved` | 483 |
    /// | `BadAddressType` | 997 |
    /// | `NoAcceptableMethod`, `EmptyUsername` | 4 (no user name given) |
    /// | `Timeout` | 92 |
    ///
    /// ```
    /// use triproxy_socks::Error;
    /// assert_eq!(Error::UnknownCommand { command: 9 }.log_code().get(), 407);
    /// ```
    pub fn log_code(&self) -> LogCode {
        match self {
            Error::BadVersion { .. } | Error::VersionDisabled { .. } => LogCode(401),
            Error::UnknownCommand { .. } => LogCode(407),
            Error::BadAuthVersion { .. } => LogCode(412),
            Error::BadRequestVersion { .. } => LogCode(421),
            Error::NoMethods | Error::Truncated => LogCode(441),
            Error::FieldTooLong {
                field: Field::Hostname,
            } => LogCode(451),
            Error::FieldTooLong { .. } => LogCode(441),
            Error::EmptyDomain | Error::InvalidDomain { .. } => LogCode(451),
            Error::BadReserved { .. } => LogCode(483),
            Error::BadAddressType { .. } => LogCode(997),
            Error::NoAcceptableMethod | Error::EmptyUsername => LogCode::NO_USERNAME,
            Error::Timeout => LogCode::RELAY_IDLE_TIMEOUT,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadVersion { version } => write!(
                f,
                "not a SOCKS4 or SOCKS5 message (version byte {version:#04x})"
            ),
            Error::VersionDisabled { version } => {
                write!(f, "SOCKS{version} is disabled on this service")
            }
            Error::NoMethods => write!(f, "SOCKS5 greeting offers no authentication method"),
            Error::NoAcceptableMethod => {
                write!(f, "client offers no acceptable authentication method")
            }
            Error::BadAuthVersion { version } => write!(
                f,
                "bad username/password negotiation version {version:#04x}"
            ),
            Error::EmptyUsername => write!(f, "empty user name in username/password negotiation"),
            Error::BadRequestVersion { version } => {
                write!(f, "bad SOCKS5 request version {version:#04x}")
            }
            Error::UnknownCommand { command } => write!(f, "unknown SOCKS command {command}"),
            Error::BadAddressType { atyp } => write!(f, "unsupported address type {atyp}"),
            Error::EmptyDomain => write!(f, "empty host name"),
            Error::InvalidDomain { reason } => write!(f, "invalid host name: {reason}"),
            Error::FieldTooLong { field } => write!(f, "{field} longer than 255 bytes"),
            Error::BadReserved { value } => {
                write!(f, "UDP header reserved field is {value:#06x}, not zero")
            }
            Error::Truncated => write!(f, "message truncated"),
            Error::Timeout => write!(f, "handshake timed out"),
        }
    }
}

impl std::error::Error for Error {}

impl From<DomainError> for Error {
    fn from(reason: DomainError) -> Self {
        match reason {
            DomainError::Empty => Error::EmptyDomain,
            DomainError::TooLong { .. } => Error::FieldTooLong {
                field: Field::Hostname,
            },
            other => Error::InvalidDomain { reason: other },
        }
    }
}

/// Which answer of the proxy the [`crate::client::Client`] was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientPhase {
    /// The SOCKS4/4a reply (VN, CD, DSTPORT, DSTIP).
    V4Reply,
    /// The second SOCKS4 BIND reply.
    V4BindPeer,
    /// The SOCKS5 method selection.
    V5Method,
    /// The RFC 1929 status.
    V5Auth,
    /// The SOCKS5 reply to the request.
    V5Reply,
    /// The second SOCKS5 BIND reply.
    V5BindPeer,
}

impl ClientPhase {
    /// 3proxy's code for a proxy that went silent or short in this phase.
    fn short_code(self) -> LogCode {
        match self {
            ClientPhase::V4Reply | ClientPhase::V4BindPeer => LogCode(42),
            ClientPhase::V5Method => LogCode(52),
            ClientPhase::V5Auth => LogCode(55),
            ClientPhase::V5Reply | ClientPhase::V5BindPeer => LogCode(57),
        }
    }
}

impl fmt::Display for ClientPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientPhase::V4Reply => "SOCKS4 reply",
            ClientPhase::V4BindPeer => "SOCKS4 second BIND reply",
            ClientPhase::V5Method => "SOCKS5 method selection",
            ClientPhase::V5Auth => "username/password status",
            ClientPhase::V5Reply => "SOCKS5 reply",
            ClientPhase::V5BindPeer => "SOCKS5 second BIND reply",
        })
    }
}

/// Why talking to a SOCKS proxy failed (client side), with the 3proxy log codes it has when
/// the proxy is a parent of a chain (40-49 SOCKS4, 50-69 SOCKS5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The configured version cannot carry the target: SOCKS4 needs IPv4, SOCKS4a IPv4 or a
    /// name; never IPv6. Reported by [`crate::client::Client::new`]. Code 44.
    TargetNotSupported {
        /// The configured version.
        version: ClientVersion,
    },
    /// UDP ASSOCIATE over SOCKS4/4a, which has no such command. Code 70.
    UdpNotSupported,
    /// A SOCKS4 user name with a NUL byte, which would end USERID early and send another
    /// name. Reported by [`crate::client::Client::new`]. Code 41 (request not sent).
    UserIdContainsNul,
    /// The proxy's answer could not be parsed. Code 42 (SOCKS4), 53 (method selection),
    /// 55 (RFC 1929 status), 58 (bad ATYP in a reply), 59 (bad address in a reply), 57
    /// (other bad reply).
    Malformed {
        /// What we were waiting for.
        phase: ClientPhase,
        /// What was wrong with it.
        error: Error,
    },
    /// The proxy chose METHOD X'FF' or a method we did not offer. Code 54.
    NoAcceptableMethod {
        /// The METHOD byte it chose.
        method: u8,
    },
    /// The proxy rejected our user name and password (RFC 1929 STATUS != 0). Code 56.
    AuthRejected {
        /// The STATUS byte.
        status: u8,
    },
    /// A SOCKS4 proxy answered CD != 90. Code 43. Also delivered as
    /// [`crate::client::ClientEvent::Refused`] ([`crate::client::Refusal::V4`]).
    V4Rejected {
        /// The CD code.
        code: v4::ReplyCode,
    },
    /// A SOCKS5 proxy answered REP != 0. Code 60 + REP (69 for REP >= 9). Also delivered as
    /// [`crate::client::ClientEvent::Refused`] ([`crate::client::Refusal::V5`]).
    V5Refused {
        /// The REP code.
        reply: v5::ReplyCode,
    },
    /// No complete answer before the deadline. Code 42 / 52 / 55 / 57 by phase.
    Timeout {
        /// What we were waiting for.
        phase: ClientPhase,
    },
    /// The proxy closed the connection before a complete answer. Code 42 / 52 / 55 / 57.
    Closed {
        /// What we were waiting for.
        phase: ClientPhase,
    },
}

impl ClientError {
    /// The 3proxy log code for this failure (40-49 for a SOCKS4 parent, 50-69 for SOCKS5).
    ///
    /// ```
    /// use triproxy_socks::{v4, v5, ClientError};
    /// let refused = ClientError::V5Refused { reply: v5::ReplyCode::ConnectionRefused };
    /// assert_eq!(refused.log_code().get(), 65);
    /// let rejected = ClientError::V4Rejected { code: v4::ReplyCode::Rejected };
    /// assert_eq!(rejected.log_code().get(), 43);
    /// ```
    pub fn log_code(&self) -> LogCode {
        match self {
            ClientError::TargetNotSupported { .. } => LogCode(44),
            ClientError::UdpNotSupported => LogCode(70),
            ClientError::UserIdContainsNul => LogCode(41),
            ClientError::Malformed { phase, error } => match (phase, error) {
                (ClientPhase::V4Reply | ClientPhase::V4BindPeer, _) => LogCode(42),
                (ClientPhase::V5Method, _) => LogCode(53),
                (ClientPhase::V5Auth, _) => LogCode(55),
                (_, Error::BadAddressType { .. }) => LogCode(58),
                (_, Error::EmptyDomain | Error::InvalidDomain { .. }) => LogCode(59),
                _ => LogCode(57),
            },
            ClientError::NoAcceptableMethod { .. } => LogCode(54),
            ClientError::AuthRejected { .. } => LogCode(56),
            ClientError::V4Rejected { .. } => LogCode(43),
            ClientError::V5Refused { reply } => LogCode(60 + u16::from(reply.to_u8().min(9))),
            ClientError::Timeout { phase } | ClientError::Closed { phase } => phase.short_code(),
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::TargetNotSupported { version } => {
                let (name, carries) = match version {
                    ClientVersion::V4 => ("SOCKS4", "IPv4 addresses only"),
                    ClientVersion::V4a => ("SOCKS4a", "IPv4 addresses and names only"),
                    ClientVersion::V5 => ("SOCKS5", "any address"),
                };
                write!(f, "{name} cannot carry this target address ({carries})")
            }
            ClientError::UdpNotSupported => write!(f, "UDP ASSOCIATE needs SOCKS5"),
            ClientError::UserIdContainsNul => write!(f, "SOCKS4 user id contains a NUL byte"),
            ClientError::Malformed { phase, error } => {
                write!(f, "bad {phase} from the proxy: {error}")
            }
            ClientError::NoAcceptableMethod { method } => {
                write!(
                    f,
                    "the proxy accepts none of the offered authentication methods \
                     (it chose {method:#04x})"
                )
            }
            ClientError::AuthRejected { status } => {
                write!(
                    f,
                    "the proxy rejected the user name and password (status {status})"
                )
            }
            ClientError::V4Rejected { code } => {
                write!(
                    f,
                    "the SOCKS4 proxy rejected the request: {code} (CD {})",
                    code.to_u8()
                )
            }
            ClientError::V5Refused { reply } => {
                write!(
                    f,
                    "the SOCKS5 proxy refused the request: {reply} (REP {})",
                    reply.to_u8()
                )
            }
            ClientError::Timeout { phase } => {
                write!(f, "no {phase} from the proxy before the deadline")
            }
            ClientError::Closed { phase } => {
                write!(f, "the proxy closed the connection before its {phase}")
            }
        }
    }
}

impl std::error::Error for ClientError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::BadVersion { version: 1 }.log_code(), LogCode(401));
        assert_eq!(
            Error::BadAuthVersion { version: 2 }.log_code(),
            LogCode(412)
        );
        assert_eq!(
            Error::BadRequestVersion { version: 4 }.log_code(),
            LogCode(421)
        );
        assert_eq!(Error::Truncated.log_code(), LogCode(441));
        assert_eq!(Error::EmptyDomain.log_code(), LogCode(451));
        assert_eq!(Error::BadAddressType { atyp: 2 }.log_code(), LogCode(997));
        assert_eq!(Error::NoAcceptableMethod.log_code(), LogCode(4));
        assert_eq!(Error::Timeout.log_code(), LogCode(92));
        assert_eq!(
            Error::FieldTooLong {
                field: Field::Hostname
            }
            .log_code(),
            LogCode(451)
        );
        assert_eq!(
            Error::FieldTooLong {
                field: Field::UserId
            }
            .log_code(),
            LogCode(441)
        );
        assert_eq!(
            ClientError::V5Refused {
                reply: v5::ReplyCode::Other(0x20)
            }
            .log_code(),
            LogCode(69)
        );
        assert_eq!(
            ClientError::AuthRejected { status: 1 }.log_code(),
            LogCode(56)
        );
        assert_eq!(
            ClientError::Timeout {
                phase: ClientPhase::V5Method
            }
            .log_code(),
            LogCode(52)
        );
        assert_eq!(
            ClientError::Malformed {
                phase: ClientPhase::V5Reply,
                error: Error::BadAddressType { atyp: 9 }
            }
            .log_code(),
            LogCode(58)
        );
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            Error::UnknownCommand { command: 9 }.to_string(),
            "unknown SOCKS command 9"
        );
        assert_eq!(
            Error::FieldTooLong {
                field: Field::UserId
            }
            .to_string(),
            "SOCKS4 user id longer than 255 bytes"
        );
        assert_eq!(
            Error::from(DomainError::ContainsNul).to_string(),
            "invalid host name: domain name contains a NUL byte"
        );
    }
}
