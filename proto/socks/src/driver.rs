//! What the `blocking` and `futures` adapters share: the client machine as a
//! [`ClientHandshake`] for the I/O loops of `triproxy_wire::handshake` (the same loops
//! drive the HTTP CONNECT client), and the mapping of its errors to `io::Error`.
//!
//! Every decision is here or in the machine; the loops only write, read one byte and read
//! the clock. Not public: compiled only with one of the I/O features.

use crate::client::{Client, ClientConfig, ClientEvent, ClientState};
use crate::error::ClientError;
use std::io;
use std::time::Instant;
use triproxy_wire::handshake::{ClientHandshake, Step};
use triproxy_wire::TargetAddr;

/// The client machine and the bytes of the proxy's message read so far.
pub(crate) struct Driver {
    client: Client,
    pending: Vec<u8>,
    address: Option<TargetAddr>,
}

impl Driver {
    pub(crate) fn new(now: Instant, config: ClientConfig) -> io::Result<Self> {
        Ok(Driver {
            client: Client::new(now, config).map_err(io_error)?,
            pending: Vec::with_capacity(crate::v5::MAX_REQUEST_LEN),
            address: None,
        })
    }
}

/// The handshake is over with the proxy's bound address (CONNECT, UDP ASSOCIATE) or the
/// peer's (BIND).
impl ClientHandshake for Driver {
    type Output = TargetAddr;

    /// Drains the machine: bytes to write first, then events; a refusal is an error.
    fn step(&mut self, now: Instant) -> io::Result<Step<TargetAddr>> {
        if let Some(t) = self.client.poll_transmit() {
            return Ok(Step::Write(t.as_bytes().to_vec()));
        }
        while let Some(event) = self.client.poll_event() {
            match event {
                ClientEvent::Granted { bound } => self.address = Some(bound),
                ClientEvent::BindPeer { peer } => self.address = Some(peer),
                ClientEvent::Refused { reply } => return Err(io_error(reply.into())),
            }
        }
        if let Some(e) = self.client.handle_timeout(now) {
            return Err(io_error(e));
        }
        match (self.client.state(), self.address.take()) {
            (ClientState::Established, Some(address)) => Ok(Step::Done(address)),
            (state, address) => {
                self.address = address;
                debug_assert_ne!(state, ClientState::Closed, "closed without an error");
                Ok(Step::Read(self.client.poll_timeout()))
            }
        }
    }

    /// One byte from the proxy, or `None` for end of stream.
    fn input(&mut self, now: Instant, byte: Option<u8>) -> io::Result<()> {
        let Some(byte) = byte else {
            let e = self.client.handle_eof().unwrap_or(ClientError::Closed {
                phase: crate::error::ClientPhase::V5Reply,
            });
            return Err(io_error(e));
        };
        self.pending.push(byte);
        let used = self
            .client
            .handle_input(now, &self.pending)
            .map_err(io_error)?;
        self.pending.drain(..used.min(self.pending.len()));
        Ok(())
    }
}

/// A [`ClientError`] as an `io::Error` of the nearest kind; the typed error is its inner
/// error (`e.get_ref()` and `downcast_ref::<ClientError>()`, or [`client_error`]).
///
/// | error | kind |
/// |---|---|
/// | `V5Refused`, `V4Rejected` | `ConnectionRefused` |
/// | `AuthRejected`, `NoAcceptableMethod` | `PermissionDenied` |
/// | `Timeout` | `TimedOut` |
/// | `Closed` | `UnexpectedEof` |
/// | `Malformed` | `InvalidData` |
/// | `TargetNotSupported`, `UdpNotSupported`, `UserIdContainsNul` | `InvalidInput` |
pub(crate) fn io_error(e: ClientError) -> io::Error {
    let kind = match e {
        ClientError::V5Refused { .. } | ClientError::V4Rejected { .. } => {
            io::ErrorKind::ConnectionRefused
        }
        ClientError::AuthRejected { .. } | ClientError::NoAcceptableMethod { .. } => {
            io::ErrorKind::PermissionDenied
        }
        ClientError::Timeout { .. } => io::ErrorKind::TimedOut,
        ClientError::Closed { .. } => io::ErrorKind::UnexpectedEof,
        ClientError::Malformed { .. } => io::ErrorKind::InvalidData,
        ClientError::TargetNotSupported { .. }
        | ClientError::UdpNotSupported
        | ClientError::UserIdContainsNul => io::ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

/// The typed SOCKS error inside an `io::Error` returned by an adapter, if it is one (and
/// not a socket error).
///
/// ```
/// # #[cfg(feature = "blocking")] {
/// use triproxy_socks::{blocking::client_error, v5::ReplyCode, ClientError};
/// let e = std::io::Error::other(ClientError::V5Refused { reply: ReplyCode::NotAllowed });
/// assert!(matches!(client_error(&e), Some(ClientError::V5Refused { .. })));
/// # }
/// ```
pub fn client_error(e: &io::Error) -> Option<ClientError> {
    e.get_ref()?.downcast_ref::<ClientError>().copied()
}

/// The configuration [`crate::blocking::connect`] and [`crate::futures::connect`] use:
/// SOCKS5 CONNECT, with credentials if given, 30 seconds for the whole handshake.
pub(crate) fn connect_config(
    target: TargetAddr,
    credentials: Option<crate::Credentials>,
) -> ClientConfig {
    ClientConfig {
        version: crate::client::ClientVersion::V5,
        credentials,
        command: crate::Command::Connect,
        target,
        timeout: DEFAULT_TIMEOUT,
    }
}

/// The handshake timeout of the `connect` functions.
pub const DEFAULT_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(30);
