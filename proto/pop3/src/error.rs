//! Why a POP3 proxy session ended before the relay: each variant has a readable reason and
//! the 3proxy log code (`pop3p.c`, 611-623; `tlspr.c`, 361-363 for STLS towards the server).
//!
//! Not here: failures the driver decides (ACL, authentication, connect), which it logs with
//! its own codes and answers through [`crate::Server::handle_refused`].

use core::fmt;
use triproxy_wire::login::BadLogin;

/// A failed POP3 proxy handshake: every variant has a 3proxy log code and a readable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The client sent no USER line in time (3proxy 612: its line read timed out).
    ClientTimeout,
    /// The client closed before USER (612).
    ClientClosed,
    /// A client line longer than the cap, counting CR LF (612; 3proxy cuts it instead).
    LineTooLong {
        /// The cap in bytes.
        limit: usize,
    },
    /// A client line shorter than 3 bytes, such as an empty line (612, as 3proxy).
    EmptyCommand,
    /// The line that ended the command loop starts with `USER` but is not `USER name`
    /// (614).
    NotUser,
    /// The argument of USER is not a usable `user@host[:port]` (615).
    BadUser(BadLogin),
    /// The server sent no greeting in time (621).
    ServerTimeout,
    /// The server closed before its greeting (621).
    ServerClosed,
    /// A server line longer than the cap (621).
    ServerLineTooLong {
        /// The cap in bytes.
        limit: usize,
    },
    /// The server's greeting is not `+OK` (622).
    BadGreeting,
    /// The server greets as a proxy (`+OK Proxy`, 3proxy's and triproxy's own greeting):
    /// the proxy would talk to itself (622).
    ProxyLoop,
    /// STLS towards the server: its greeting is not `+OK`, or it ended or went silent
    /// before it (3proxy tlspr 361).
    StartTlsGreeting,
    /// STLS towards the server: CAPA failed (`-ERR`, end of stream, timeout, over-long
    /// line) (362).
    StartTlsExchange,
    /// STLS towards the server: it does not offer STLS, or refused it (363).
    StartTlsRefused,
}

impl Error {
    /// The 3proxy log code.
    pub fn log_code(&self) -> u16 {
        match self {
            Error::ClientTimeout
            | Error::ClientClosed
            | Error::LineTooLong { .. }
            | Error::EmptyCommand => 612,
            Error::NotUser => 614,
            Error::BadUser(_) => 615,
            Error::ServerTimeout | Error::ServerClosed | Error::ServerLineTooLong { .. } => 621,
            Error::BadGreeting | Error::ProxyLoop => 622,
            Error::StartTlsGreeting => 361,
            Error::StartTlsExchange => 362,
            Error::StartTlsRefused => 363,
        }
    }

    /// A readable reason, for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ClientTimeout => "client sent no USER in time",
            Error::ClientClosed => "client closed before USER",
            Error::LineTooLong { .. } => "client line too long",
            Error::EmptyCommand => "empty command line",
            Error::NotUser => "expected USER name",
            Error::BadUser(b) => b.reason(),
            Error::ServerTimeout => "server sent no greeting in time",
            Error::ServerClosed => "server closed before its greeting",
            Error::ServerLineTooLong { .. } => "server line too long",
            Error::BadGreeting => "server greeting is not +OK",
            Error::ProxyLoop => "server greets as a proxy (loop)",
            Error::StartTlsGreeting => "STLS: bad or no server greeting",
            Error::StartTlsExchange => "STLS: CAPA exchange with the server failed",
            Error::StartTlsRefused => "STLS: server does not offer or refused STLS",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LineTooLong { limit } | Error::ServerLineTooLong { limit } => {
                write!(f, "{} (over {limit} bytes)", self.reason())
            }
            _ => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(Error::NotUser.log_code(), 614);
        assert_eq!(Error::BadUser(BadLogin::NoHost).log_code(), 615);
        assert_eq!(Error::ProxyLoop.log_code(), 622);
        assert_eq!(
            Error::LineTooLong { limit: 512 }.to_string(),
            "client line too long (over 512 bytes)"
        );
    }
}
