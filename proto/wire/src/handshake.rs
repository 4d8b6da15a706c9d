//! The I/O loop of a client handshake, shared by the protocol crates' adapters.
//!
//! A client machine (SOCKS, HTTP CONNECT) wrapped as a [`ClientHandshake`] says what comes
//! next ([`Step`]): bytes to write, one byte to read (before a deadline), or the end. The
//! loops here do exactly that over a stream; every protocol decision stays in the
//! machine. The proxy's answers are read one byte at a time, so that no byte the target
//! sends after the final answer is taken from the stream: the stream is handed back
//! ready for the tunnel.
//!
//! - [`ClientHandshake`] and [`Step`] are always here (no I/O).
//! - `blocking::run` (feature `blocking`) drives a `std::net::TcpStream`, enforcing the
//!   deadline with the socket's read timeout, which it restores afterwards.
//! - `futures::run` (feature `futures`) drives any `futures-io` `AsyncRead + AsyncWrite`
//!   stream. There is no timer (a timer belongs to a runtime): the deadline is checked
//!   whenever a byte arrives, and a silent proxy is cut off by the caller's timeout.

use std::io;
use std::time::Instant;

/// What a client handshake needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<T> {
    /// Write these bytes, all of them, to the proxy.
    Write(Vec<u8>),
    /// Read one byte from the proxy before the deadline, if there is one.
    Read(Option<Instant>),
    /// The handshake is over, with this result.
    Done(T),
}

/// A client machine as the I/O loops see it.
pub trait ClientHandshake {
    /// What a finished handshake gives (the address a SOCKS proxy reported, nothing for
    /// HTTP CONNECT).
    type Output;
    /// What to do next at `now`; a refusal or a deadline passed is an `Err`.
    fn step(&mut self, now: Instant) -> io::Result<Step<Self::Output>>;
    /// One byte from the proxy, or `None` for its end of stream.
    fn input(&mut self, now: Instant, byte: Option<u8>) -> io::Result<()>;
}

/// The loop over a blocking `TcpStream`.
#[cfg(feature = "blocking")]
pub mod blocking {
    #![allow(clippy::disallowed_methods)] // a driver: it reads the clock

    use super::{ClientHandshake, Step};
    use std::io::{self, Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// Runs `handshake` on `stream` to its end; the stream's read timeout is restored
    /// afterwards, whatever the outcome.
    pub fn run<H: ClientHandshake>(stream: &mut TcpStream, handshake: H) -> io::Result<H::Output> {
        let before = stream.read_timeout()?;
        let result = drive(stream, handshake);
        stream.set_read_timeout(before)?;
        result
    }

    fn drive<H: ClientHandshake>(stream: &mut TcpStream, mut h: H) -> io::Result<H::Output> {
        loop {
            match h.step(Instant::now())? {
                Step::Write(bytes) => stream.write_all(&bytes)?,
                Step::Done(output) => return Ok(output),
                Step::Read(deadline) => {
                    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
                    // A zero timeout is refused by the socket; 1 ms lets the deadline fire.
                    stream.set_read_timeout(left.map(|d| d.max(Duration::from_millis(1))))?;
                    let mut byte = [0u8; 1];
                    match stream.read(&mut byte) {
                        Ok(0) => h.input(Instant::now(), None)?,
                        Ok(_) => h.input(Instant::now(), Some(byte[0]))?,
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock
                                    | io::ErrorKind::TimedOut
                                    | io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }
}

/// The loop over a `futures-io` stream.
#[cfg(feature = "futures")]
pub mod futures {
    #![allow(clippy::disallowed_methods)] // a driver: it reads the clock

    use super::{ClientHandshake, Step};
    use core::future::poll_fn;
    use core::pin::Pin;
    use futures_io::{AsyncRead, AsyncWrite};
    use std::io;
    use std::time::Instant;

    /// Runs `handshake` on `stream` to its end.
    pub async fn run<S, H>(stream: &mut S, mut handshake: H) -> io::Result<H::Output>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        H: ClientHandshake,
    {
        loop {
            match handshake.step(Instant::now())? {
                Step::Write(bytes) => write_all(stream, &bytes).await?,
                Step::Done(output) => return Ok(output),
                Step::Read(_) => {
                    let byte = read_byte(stream).await?;
                    handshake.input(Instant::now(), byte)?;
                }
            }
        }
    }

    /// Writes all of `buf` and flushes.
    async fn write_all<S: AsyncWrite + Unpin>(s: &mut S, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match poll_fn(|cx| Pin::new(&mut *s).poll_write(cx, buf)).await {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = buf.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        poll_fn(|cx| Pin::new(&mut *s).poll_flush(cx)).await
    }

    /// One byte, or `None` at end of stream.
    async fn read_byte<S: AsyncRead + Unpin>(s: &mut S) -> io::Result<Option<u8>> {
        let mut byte = [0u8; 1];
        loop {
            match poll_fn(|cx| Pin::new(&mut *s).poll_read(cx, &mut byte)).await {
                Ok(0) => return Ok(None),
                Ok(_) => return Ok(Some(byte[0])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}
