//! Why an IMAP proxy session ended before the relay: each variant has a readable reason and
//! the 3proxy log code (`imapp.c`, 691-699; `tlspr.c`, 361-363 for STARTTLS towards the
//! server).
//!
//! Not here: failures the driver decides (ACL, authentication, connect), which it logs with
//! its own codes and answers through [`crate::Server::handle_refused`].

use core::fmt;
use triproxy_wire::login::BadLogin;

/// What is wrong with a LOGIN or AUTHENTICATE command (all log code 693).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadCredentials {
    /// LOGIN without a user name and a password, or with more after them.
    Syntax,
    /// A literal (`{n}`): not supported before login.
    Literal,
    /// Not valid base64.
    Base64,
    /// An AUTHENTICATE PLAIN message without its NUL separators.
    Plain,
    /// A NUL, CR or LF in a user name or password.
    ControlCharacter,
}

impl BadCredentials {
    fn reason(self) -> &'static str {
        match self {
            BadCredentials::Syntax => "LOGIN needs a user name and a password",
            BadCredentials::Literal => "literals are not supported before login",
            BadCredentials::Base64 => "bad base64 in AUTHENTICATE",
            BadCredentials::Plain => "bad AUTHENTICATE PLAIN message",
            BadCredentials::ControlCharacter => "NUL, CR or LF in a user name or password",
        }
    }
}

/// A failed IMAP proxy handshake: every variant has a 3proxy log code and a readable reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The client sent no login in time (3proxy 692: its line read timed out).
    ClientTimeout,
    /// The client closed before logging in (692).
    ClientClosed,
    /// A client line longer than the cap, CR LF included (692).
    LineTooLong {
        /// The cap in bytes.
        limit: usize,
    },
    /// A client line without a valid tag and a space (692).
    BadTag,
    /// The arguments of LOGIN or AUTHENTICATE (693).
    BadCredentials(BadCredentials),
    /// The user name is not a usable `user@host[:port]` (694).
    BadUser(BadLogin),
    /// The server sent no greeting: timeout, end of stream or over-long line (695).
    NoGreeting,
    /// The server's greeting is not `* OK` (696).
    BadGreeting,
    /// The server greets as a proxy (3proxy's and triproxy's own greeting, `... Proxy
    /// Ready`): the proxy would talk to itself (696).
    ProxyLoop,
    /// The server did not finish its answer to CAPABILITY (697).
    Capability,
    /// The client did not answer an AUTHENTICATE continuation (ended, timed out) (698).
    Continuation,
    /// AUTHENTICATE LOGIN towards the server failed: no `+` continuation, end of stream,
    /// timeout, over-long line (699).
    UpstreamLogin,
    /// STARTTLS towards the server: its greeting is not `* OK`, or it ended or went silent
    /// before it (3proxy tlspr 361).
    StartTlsGreeting,
    /// STARTTLS towards the server: the exchange broke off (end of stream, timeout,
    /// over-long line) (362).
    StartTlsExchange,
    /// STARTTLS towards the server: not offered, or refused (363).
    StartTlsRefused,
}

impl Error {
    /// The 3proxy log code.
    pub fn log_code(&self) -> u16 {
        match self {
            Error::ClientTimeout
            | Error::ClientClosed
            | Error::LineTooLong { .. }
            | Error::BadTag => 692,
            Error::BadCredentials(_) => 693,
            Error::BadUser(_) => 694,
            Error::NoGreeting => 695,
            Error::BadGreeting | Error::ProxyLoop => 696,
            Error::Capability => 697,
            Error::Continuation => 698,
            Error::UpstreamLogin => 699,
            Error::StartTlsGreeting => 361,
            Error::StartTlsExchange => 362,
            Error::StartTlsRefused => 363,
        }
    }

    /// A readable reason, for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ClientTimeout => "client sent no login in time",
            Error::ClientClosed => "client closed before login",
            Error::LineTooLong { .. } => "client line too long",
            Error::BadTag => "client line without a tag",
            Error::BadCredentials(b) => b.reason(),
            Error::BadUser(b) => b.reason(),
            Error::NoGreeting => "server sent no greeting",
            Error::BadGreeting => "server greeting is not * OK",
            Error::ProxyLoop => "server greets as a proxy (loop)",
            Error::Capability => "server did not answer CAPABILITY",
            Error::Continuation => "client did not answer AUTHENTICATE",
            Error::UpstreamLogin => "AUTHENTICATE LOGIN with the server failed",
            Error::StartTlsGreeting => "STARTTLS: bad or no server greeting",
            Error::StartTlsExchange => "STARTTLS: exchange with the server failed",
            Error::StartTlsRefused => "STARTTLS: server does not offer or refused it",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LineTooLong { limit } => write!(f, "{} (over {limit} bytes)", self.reason()),
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
        assert_eq!(Error::BadTag.log_code(), 692);
        assert_eq!(
            Error::BadCredentials(BadCredentials::Literal).log_code(),
            693
        );
        assert_eq!(Error::BadUser(BadLogin::NoHost).log_code(), 694);
        assert_eq!(Error::ProxyLoop.log_code(), 696);
        assert_eq!(
            Error::UpstreamLogin.to_string(),
            "AUTHENTICATE LOGIN with the server failed"
        );
    }
}
