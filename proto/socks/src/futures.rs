//! A runtime-agnostic async SOCKS client over `futures-io` (feature `futures`): the I/O
//! loop around [`crate::client::Client`] for any `AsyncRead + AsyncWrite` stream.
//!
//! With smol (`smol::net::TcpStream` implements the `futures-io` traits):
//!
//! ```ignore
//! let tcp = smol::net::TcpStream::connect("127.0.0.1:1080").await?;
//! let stream = triproxy_socks::futures::connect(tcp, "example.org:443".parse()?, None).await?;
//! ```
//!
//! With tokio, through `tokio-util`'s compat layer:
//!
//! ```ignore
//! use tokio_util::compat::TokioAsyncReadCompatExt;
//! let tcp = tokio::net::TcpStream::connect("127.0.0.1:1080").await?;
//! let stream = triproxy_socks::futures::connect(tcp.compat(), target, None).await?.into_inner();
//! ```
//!
//! The proxy's answers are read one byte at a time, so that no byte the target sends after
//! the final reply is taken from the stream: the stream is returned ready for the tunnel.
//! There is no timer here (a timer belongs to a runtime): the machine's deadline is checked
//! whenever a byte arrives, and a proxy that goes silent is cut off only by the caller's
//! timeout (`smol::future::or` with a `smol::Timer`, `tokio::time::timeout`). Failures
//! are `io::Error`s whose inner error is the typed [`ClientError`](crate::ClientError)
//! (see [`client_error`]).
#![allow(clippy::disallowed_methods)] // a driver: it reads the clock

use crate::client::ClientConfig;
use crate::driver::{connect_config, Driver};
use crate::Credentials;
use futures_io::{AsyncRead, AsyncWrite};
use std::io;
use std::time::Instant;
use triproxy_wire::TargetAddr;

pub use crate::driver::client_error;

/// Asks the SOCKS5 proxy at the other end of `stream` to CONNECT to `target`, offering
/// username/password authentication (RFC 1929) when `credentials` are given. Returns the
/// stream, ready for the tunnel. For another protocol version or command use
/// [`handshake`].
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

/// Runs the handshake `config` describes on a connected stream. Returns the address the
/// proxy reported, as [`crate::blocking::handshake`] does.
pub async fn handshake<S>(stream: &mut S, config: ClientConfig) -> io::Result<TargetAddr>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let driver = Driver::new(Instant::now(), config)?;
    triproxy_wire::handshake::futures::run(stream, driver).await
}
