//! A blocking SOCKS client over `std::net::TcpStream` (feature `blocking`): the I/O loop
//! around [`crate::client::Client`] for users who do not want to write it.
//!
//! ```no_run
//! use std::io::Write;
//! let mut stream = triproxy_socks::blocking::connect(
//!     "127.0.0.1:1080",
//!     "example.org:80".parse()?,
//!     None, // or Some(triproxy_socks::Credentials::new(b"alice", b"secret")?)
//! )?;
//! stream.write_all(b"GET / HTTP/1.0\r\nHost: example.org\r\n\r\n")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The proxy's answers are read one byte at a time (a handful of bytes, at most a few
//! hundred), so that no byte the target sends after the final reply is taken from the
//! stream: the stream is returned ready for the tunnel. The machine's deadline is enforced
//! with the socket's read timeout, which is restored afterwards. Failures are `io::Error`s
//! whose inner error is the typed [`ClientError`](crate::ClientError) (see
//! [`client_error`]); a refusal is `ConnectionRefused` with
//! [`ClientError::V5Refused`](crate::ClientError::V5Refused) or
//! [`ClientError::V4Rejected`](crate::ClientError::V4Rejected) inside.
//!
//! This module reads the clock and opens sockets, which the rest of the crate never does:
//! it is a driver, compiled only when the feature is asked for.
#![allow(clippy::disallowed_methods)] // a driver: it reads the clock and opens sockets

use crate::client::ClientConfig;
use crate::driver::{connect_config, Driver};
use crate::Credentials;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Instant;
use triproxy_wire::TargetAddr;

pub use crate::driver::{client_error, DEFAULT_TIMEOUT};

/// Connects to the SOCKS5 proxy at `proxy` and asks it to CONNECT to `target`, offering
/// username/password authentication (RFC 1929) when `credentials` are given. Returns the
/// stream, ready for the tunnel. The handshake must finish within [`DEFAULT_TIMEOUT`];
/// for another protocol version, timeout or command use [`handshake`].
pub fn connect(
    proxy: impl ToSocketAddrs,
    target: TargetAddr,
    credentials: Option<Credentials>,
) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(proxy)?;
    handshake(&mut stream, connect_config(target, credentials))?;
    Ok(stream)
}

/// Runs the handshake `config` describes on a connected stream. Returns the address the
/// proxy reported: where it connected from (CONNECT), where to send datagrams (UDP
/// ASSOCIATE), or the peer that connected (BIND, after the second reply; to learn the
/// first reply's address, drive [`crate::client::Client`] by hand).
pub fn handshake(stream: &mut TcpStream, config: ClientConfig) -> io::Result<TargetAddr> {
    let driver = Driver::new(Instant::now(), config)?;
    triproxy_wire::handshake::blocking::run(stream, driver)
}
