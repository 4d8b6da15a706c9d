//! A runtime-agnostic async HTTP CONNECT client over `futures-io` (feature `futures`): the
//! I/O loop around [`crate::ConnectClient`] for any `AsyncRead + AsyncWrite` stream
//! (smol's `TcpStream`, or tokio's through `tokio-util`'s compat layer).
//!
//! ```ignore
//! let tcp = smol::net::TcpStream::connect("127.0.0.1:3128").await?;
//! let stream = triproxy_http::futures::connect(tcp, "example.org:443".parse()?, None).await?;
//! ```
//!
//! The response head is read one byte at a time, so that no byte the target sends after
//! it is taken from the stream. There is no timer here (a timer belongs to a runtime): the
//! machine's deadline is checked whenever a byte arrives, and a proxy that goes silent is
//! cut off only by the caller's timeout. Failures are `io::Error`s whose inner error is
//! the typed [`ConnectError`](crate::ConnectError) (see [`connect_error`]).
#![allow(clippy::disallowed_methods)] // a driver: it reads the clock

use crate::driver::{connect_config, Driver};
use crate::{ConnectConfig, Credentials};
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::Instant;
use triproxy_wire::TargetAddr;

pub use crate::driver::connect_error;

/// Asks the HTTP proxy at the other end of `stream` to CONNECT to `target`, with
/// `Proxy-Authorization: Basic` when `credentials` are given. Returns the stream, ready
/// for the tunnel.
pub async fn connect<S>(
    mut stream: S,
    target: TargetAddr,
    credentials: Option<Credentials>,
) -> io::Result<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake(&mut stream, connect_config(target, credentials)).await?;
    Ok(stream)
}

/// Runs the CONNECT exchange `config` describes on a connected stream.
pub async fn handshake<S>(stream: &mut S, config: ConnectConfig) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let driver = Driver::new(Instant::now(), config)?;
    triproxy_wire::handshake::futures::run(stream, driver).await
}
