//! What the `blocking` and `futures` adapters share: the loop over the CONNECT client
//! machine, fed one byte at a time, and the mapping of its errors to `io::Error`.
//!
//! Not public: compiled only with one of the I/O features.

use crate::connect_client::{ConnectClient, ConnectConfig, ConnectEvent, Credentials};
use crate::error::ConnectError;
use std::io;
use std::time::Instant;
use triproxy_wire::handshake::{ClientHandshake, Step};
use triproxy_wire::TargetAddr;

/// The machine and the bytes of the response head read so far.
pub(crate) struct Driver {
    client: ConnectClient,
    pending: Vec<u8>,
}

impl Driver {
    pub(crate) fn new(now: Instant, config: ConnectConfig) -> io::Result<Self> {
        Ok(Driver {
            client: ConnectClient::new(now, config).map_err(io_error)?,
            pending: Vec::new(),
        })
    }
}

/// The handshake is over when the tunnel is open.
impl ClientHandshake for Driver {
    type Output = ();

    /// Drains the machine: the request first, then the outcome; a refusal is an error.
    fn step(&mut self, now: Instant) -> io::Result<Step<()>> {
        if let Some(request) = self.client.poll_transmit() {
            return Ok(Step::Write(request));
        }
        match self.client.poll_event() {
            Some(ConnectEvent::Established) => return Ok(Step::Done(())),
            Some(ConnectEvent::Refused { status }) => {
                return Err(io_error(ConnectError::Refused { status }))
            }
            None => {}
        }
        if let Some(e) = self.client.handle_timeout(now) {
            return Err(io_error(e));
        }
        Ok(Step::Read(self.client.poll_timeout()))
    }

    /// One byte from the proxy, or `None` for end of stream. The machine sees the head
    /// only when a line ends: a head cannot end anywhere else.
    fn input(&mut self, now: Instant, byte: Option<u8>) -> io::Result<()> {
        let Some(byte) = byte else {
            return Err(io_error(
                self.client.handle_eof().unwrap_or(ConnectError::Closed),
            ));
        };
        self.pending.push(byte);
        if byte == b'\n' {
            let used = self
                .client
                .handle_input(now, &self.pending)
                .map_err(io_error)?;
            self.pending.drain(..used.min(self.pending.len()));
        }
        Ok(())
    }
}

/// A [`ConnectError`] as an `io::Error` of the nearest kind, with the typed error inside
/// (see [`connect_error`]).
///
/// | error | kind |
/// |---|---|
/// | `Refused` | `ConnectionRefused` |
/// | `Timeout` | `TimedOut` |
/// | `Closed` | `UnexpectedEof` |
/// | `Malformed` | `InvalidData` |
/// | `InvalidCredentials`, `InvalidHost` | `InvalidInput` |
pub(crate) fn io_error(e: ConnectError) -> io::Error {
    let kind = match e {
        ConnectError::Refused { .. } => io::ErrorKind::ConnectionRefused,
        ConnectError::Timeout => io::ErrorKind::TimedOut,
        ConnectError::Closed => io::ErrorKind::UnexpectedEof,
        ConnectError::Malformed { .. } => io::ErrorKind::InvalidData,
        ConnectError::InvalidCredentials { .. } | ConnectError::InvalidHost { .. } => {
            io::ErrorKind::InvalidInput
        }
    };
    io::Error::new(kind, e)
}

/// The typed CONNECT error inside an `io::Error` returned by an adapter, if it is one (and
/// not a socket error): for a refusal, `ConnectError::Refused { status }`.
pub fn connect_error(e: &io::Error) -> Option<ConnectError> {
    e.get_ref()?.downcast_ref::<ConnectError>().copied()
}

/// The configuration of the `connect` functions: [`DEFAULT_TIMEOUT`] for the whole
/// exchange.
pub(crate) fn connect_config(
    target: TargetAddr,
    credentials: Option<Credentials>,
) -> ConnectConfig {
    ConnectConfig {
        target,
        credentials,
        timeout: DEFAULT_TIMEOUT,
    }
}

/// The timeout of the `connect` functions, from the request to the final response head.
pub const DEFAULT_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(30);
