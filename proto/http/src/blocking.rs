//! A blocking HTTP CONNECT client over `std::net::TcpStream` (feature `blocking`): the I/O
//! loop around [`crate::ConnectClient`] for users who do not want to write it.
//!
//! ```no_run
//! use std::io::Write;
//! let mut stream = triproxy_http::blocking::connect(
//!     "127.0.0.1:3128",
//!     "example.org:80".parse()?,
//!     None, // or Some(triproxy_http::Credentials::new("alice", "secret"))
//! )?;
//! stream.write_all(b"GET / HTTP/1.0\r\nHost: example.org\r\n\r\n")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The response head is read one byte at a time (it is short), so that no byte the target
//! sends after it is taken from the stream: the stream is returned ready for the tunnel.
//! The machine's deadline is enforced with the socket's read timeout, which is restored
//! afterwards. Failures are `io::Error`s whose inner error is the typed
//! [`ConnectError`](crate::ConnectError) (see [`connect_error`]); a refusal is
//! `ConnectionRefused` with `ConnectError::Refused { status }` inside.
//!
//! This module reads the clock and opens sockets, which the rest of the crate never does:
//! it is a driver, compiled only when the feature is asked for.
#![allow(clippy::disallowed_methods)] // a driver: it reads the clock and opens sockets

use crate::driver::{connect_config, Driver};
use crate::{ConnectConfig, Credentials};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;
use triproxy_wire::TargetAddr;

pub use crate::driver::{connect_error, DEFAULT_TIMEOUT};

/// Connects to the HTTP proxy at `proxy` and asks it to CONNECT to `target`, with
/// `Proxy-Authorization: Basic` when `credentials` are given. Returns the stream, ready
/// for the tunnel. The exchange must finish within [`DEFAULT_TIMEOUT`]; for another
/// timeout use [`handshake`].
pub fn connect(
    proxy: impl ToSocketAddrs,
    target: TargetAddr,
    credentials: Option<Credentials>,
) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(proxy)?;
    handshake(&mut stream, connect_config(target, credentials))?;
    Ok(stream)
}

/// Runs the CONNECT exchange `config` describes on a connected stream.
pub fn handshake(stream: &mut TcpStream, config: ConnectConfig) -> io::Result<()> {
    let driver = Driver::new(Instant::now(), config)?;
    triproxy_wire::handshake::blocking::run(stream, driver)
}
