//! Why an SMTP proxy session ended before the relay, with 3proxy's `smtpp` log codes.
//!
//! 3proxy numbers its failures by the step of `src/smtpp.c` that failed: 662 no `AUTH`
//! before the client stopped, 663/664 the `AUTH LOGIN` user name line missing or
//! undecodable, 665/666 the same for the password, 667/668 the `AUTH PLAIN` response, 671
//! no greeting from the server, 672 a greeting that is not `220` (or is 3proxy's own,
//! a loop) or a bad `EHLO` reply, 680/681 the server did not answer `334` to
//! `AUTH LOGIN` / to the user name, 682 the same for `AUTH PLAIN`. A step that times out
//! has the code of the same step with nothing read (3proxy's line reader treats both alike).

use core::fmt;

/// The step of the session a failure happened in; it decides the log code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Step {
    /// Before `AUTH`: greeting answered, commands read.
    Command,
    /// `AUTH LOGIN`: waiting for the base64 user name.
    LoginUser,
    /// `AUTH LOGIN`: waiting for the base64 password.
    LoginPassword,
    /// `AUTH PLAIN`: waiting for the base64 response.
    PlainResponse,
    /// Credentials reported; waiting for the driver's connection.
    Connecting,
    /// Waiting for the server's `220` greeting.
    Greeting,
    /// `EHLO` sent; reading its reply.
    Ehlo,
    /// `AUTH LOGIN` sent upstream; waiting for `334`.
    UpstreamLogin,
    /// User name sent upstream; waiting for `334`.
    UpstreamLoginUser,
    /// `AUTH PLAIN` sent upstream; waiting for `334`.
    UpstreamPlain,
    /// Password (LOGIN) or response (PLAIN) sent upstream; waiting for the verdict.
    UpstreamVerdict(Mechanism),
    /// Established: the relay owns the connection.
    Relay,
}

/// A SASL mechanism the proxy speaks (RFC 4954).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// `AUTH PLAIN` (RFC 4616).
    Plain,
    /// `AUTH LOGIN` (the pre-standard user name / password prompts).
    Login,
}

impl Step {
    /// Log code when the step's line never came (end of stream or timeout).
    pub fn missing_code(self) -> u16 {
        match self {
            Step::Command | Step::Connecting => 662,
            Step::LoginUser => 663,
            Step::LoginPassword => 665,
            Step::PlainResponse => 667,
            Step::Greeting => 671,
            Step::Ehlo => 672,
            Step::UpstreamLogin => 680,
            Step::UpstreamLoginUser | Step::UpstreamVerdict(Mechanism::Login) => 681,
            Step::UpstreamPlain | Step::UpstreamVerdict(Mechanism::Plain) => 682,
            Step::Relay => 0,
        }
    }

    /// Log code when the step's line came but was unusable.
    pub fn bad_code(self) -> u16 {
        match self {
            Step::LoginUser => 664,
            Step::LoginPassword => 666,
            Step::PlainResponse => 668,
            Step::Greeting => 672,
            other => other.missing_code(),
        }
    }
}

/// What was wrong with decoded credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialsError {
    /// No `delimiter` in the user name and no default server (`-h`).
    NoServer,
    /// Nothing before the delimiter.
    EmptyUser,
    /// The port after `server:` is not 1..=65535.
    BadPort,
    /// The server name is not a usable host (over 255 bytes, NUL, bad `[...]`).
    BadServer,
    /// The user name or password is longer than 255 bytes.
    TooLong,
    /// The PLAIN response is not `authzid NUL authcid NUL password`.
    PlainFormat,
    /// The PLAIN authorization identity is neither empty nor the user name.
    Authzid,
}

impl fmt::Display for CredentialsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialsError::NoServer => "no @server in the user name and no default server",
            CredentialsError::EmptyUser => "empty user name",
            CredentialsError::BadPort => "bad port after the server name",
            CredentialsError::BadServer => "bad server name",
            CredentialsError::TooLong => "user name or password over 255 bytes",
            CredentialsError::PlainFormat => "AUTH PLAIN response is not authzid\\0user\\0password",
            CredentialsError::Authzid => "AUTH PLAIN authorization identity differs from the user",
        })
    }
}

/// Why a session ended without reaching the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The peer closed its side while the step waited for a line.
    Eof {
        /// Where.
        step: Step,
    },
    /// The step's deadline passed.
    Timeout {
        /// Where.
        step: Step,
    },
    /// A line longer than the cap.
    LineTooLong {
        /// Where.
        step: Step,
        /// The cap, CRLF included.
        limit: usize,
    },
    /// More commands before `AUTH` than [`crate::MAX_COMMANDS`].
    TooManyCommands,
    /// An `AUTH` payload that is not base64, or the client cancelled with `*`.
    BadBase64 {
        /// Where.
        step: Step,
    },
    /// Decoded credentials that do not name a user and server.
    Credentials {
        /// Where.
        step: Step,
        /// What was wrong.
        why: CredentialsError,
    },
    /// The server greeted like 3proxy's SMTP proxy (`220 Proxy`): connecting would loop.
    Loop,
    /// A server line that is not an SMTP reply.
    BadReply {
        /// Where.
        step: Step,
    },
    /// A server reply with a code the step cannot go on with.
    Unexpected {
        /// Where.
        step: Step,
        /// The server's code.
        code: u16,
    },
    /// The server refused the user's login; its reply went to the client.
    Rejected {
        /// How the proxy logged in.
        mechanism: Mechanism,
        /// The server's code.
        code: u16,
    },
}

impl Error {
    /// The 3proxy log code (`%E`) for this failure.
    pub fn log_code(&self) -> u16 {
        match *self {
            Error::Eof { step } | Error::Timeout { step } => step.missing_code(),
            Error::LineTooLong { step, .. }
            | Error::BadBase64 { step }
            | Error::Credentials { step, .. }
            | Error::BadReply { step }
            | Error::Unexpected { step, .. } => step.bad_code(),
            Error::TooManyCommands => 662,
            Error::Loop => 672,
            Error::Rejected { mechanism, .. } => Step::UpstreamVerdict(mechanism).bad_code(),
        }
    }

    /// A short readable reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Eof { .. } => "connection closed",
            Error::Timeout { .. } => "timed out",
            Error::LineTooLong { .. } => "line too long",
            Error::TooManyCommands => "too many commands before AUTH",
            Error::BadBase64 { .. } => "AUTH data is not base64 or was cancelled",
            Error::Credentials { .. } => "bad user@server",
            Error::Loop => "server greets like a proxy (loop)",
            Error::BadReply { .. } => "server line is not an SMTP reply",
            Error::Unexpected { .. } => "unexpected server reply",
            Error::Rejected { .. } => "server refused the login",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "smtpp {:03}: {}", self.log_code(), self.reason())?;
        match self {
            Error::Eof { step } | Error::Timeout { step } | Error::BadReply { step } => {
                write!(f, " ({step:?})")
            }
            Error::LineTooLong { step, limit } => write!(f, " ({step:?}, over {limit} bytes)"),
            Error::BadBase64 { step } => write!(f, " ({step:?})"),
            Error::Credentials { step, why } => write!(f, " ({step:?}: {why})"),
            Error::Unexpected { step, code } => write!(f, " ({step:?}: {code})"),
            Error::Rejected { mechanism, code } => write!(f, " ({mechanism:?}: {code})"),
            Error::TooManyCommands | Error::Loop => Ok(()),
        }
    }
}

impl std::error::Error for Error {}
