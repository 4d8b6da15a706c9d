//! Opening tunnels over real sockets: the [`Handshake`] machine driven on a blocking
//! `TcpStream` (bulk streams) or on a smol `Async<TcpStream>` (connection rate, idle
//! tunnels), the errors an operation can end with, and their counts.
//!
//! Every call is bounded: blocking sockets get read and write timeouts, async operations
//! are raced against a timer ([`with_timeout`]). Besides CONNECT it opens SOCKS5 UDP
//! associations ([`open_udp_associate`]), for the datagram measurements. It is not for
//! names, IPv6 SOCKS4 targets or BIND.

use super::handshake::{Handshake, HandshakeError};
use super::http_response::ResponseError;
use super::url::ProxyUrl;
use arrayvec::ArrayVec;
use core::fmt;
use core::future::Future;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::Async;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use triproxy_wire::TargetAddr;

/// Read size during a handshake; bytes after the handshake (at most this many) are handed
/// back as read-ahead.
pub const HANDSHAKE_READ: usize = 1024;

/// Bytes read past the end of the handshake: the target's first data.
pub type ReadAhead = ArrayVec<u8, HANDSHAKE_READ>;

/// How one operation (open a tunnel, echo, hold) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpError {
    /// TCP connect to the proxy (or, for `direct`, the target) failed.
    Connect(io::ErrorKind),
    /// The proxy did not open the tunnel.
    Handshake(HandshakeError),
    /// A read or write failed after connecting.
    Io(io::ErrorKind),
    /// The operation took longer than its timeout.
    Timeout,
    /// The peer closed the connection before the data was complete.
    Closed,
    /// The echo came back different from what was sent.
    EchoMismatch,
    /// An HTTP response could not be read.
    Response(ResponseError),
    /// An HTTP response with another status than 200.
    Status(u16),
    /// An HTTP response body of the wrong length.
    BodyLength {
        /// Bytes the origin sent.
        expected: u64,
        /// Bytes that arrived.
        got: u64,
    },
    /// A SOCKS5 UDP relay address the tool cannot use (a name, port 0, or not loopback).
    Relay,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Connect(k) => write!(f, "connect: {k}"),
            OpError::Handshake(e) => write!(f, "handshake: {e}"),
            OpError::Io(k) => write!(f, "i/o: {k}"),
            OpError::Timeout => f.write_str("timed out"),
            OpError::Closed => f.write_str("closed early"),
            OpError::EchoMismatch => f.write_str("echo differs from what was sent"),
            OpError::Response(e) => write!(f, "response: {e}"),
            OpError::Status(s) => write!(f, "status {s}"),
            OpError::BodyLength { expected, got } => {
                write!(f, "body of {got} bytes, {expected} expected")
            }
            OpError::Relay => f.write_str("unusable UDP relay address (BND)"),
        }
    }
}

impl std::error::Error for OpError {}

impl OpError {
    /// Kinds of error, each counted apart.
    const SLOTS: usize = 10;

    fn slot(&self) -> usize {
        match self {
            OpError::Connect(_) => 0,
            OpError::Handshake(_) => 1,
            OpError::Io(_) => 2,
            OpError::Timeout => 3,
            OpError::Closed => 4,
            OpError::EchoMismatch => 5,
            OpError::Response(_) => 6,
            OpError::Status(_) => 7,
            OpError::BodyLength { .. } => 8,
            OpError::Relay => 9,
        }
    }
}

/// The error an I/O failure stands for (a read or write timeout is [`OpError::Timeout`]).
pub(crate) fn io_error(e: &io::Error) -> OpError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => OpError::Timeout,
        io::ErrorKind::UnexpectedEof => OpError::Closed,
        k => OpError::Io(k),
    }
}

/// Errors by kind, with the first one of each kind kept as an example.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts {
    counts: [u64; OpError::SLOTS],
    first: [Option<OpError>; OpError::SLOTS],
}

impl ErrorCounts {
    /// Counts one error.
    pub fn add(&mut self, e: OpError) {
        let slot = e.slot();
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        if let Some(f) = self.first.get_mut(slot) {
            f.get_or_insert(e);
        }
    }

    /// Adds all of `other`.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (slot, (&n, first)) in other.counts.iter().zip(other.first.iter()).enumerate() {
            if let Some(c) = self.counts.get_mut(slot) {
                *c += n;
            }
            if let (Some(mine), Some(e)) = (self.first.get_mut(slot), first) {
                mine.get_or_insert(*e);
            }
        }
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// `3 (2 timed out, 1 connect: connection refused)`-style summary; `0` when none.
    pub fn summary(&self) -> String {
        let total = self.total();
        if total == 0 {
            return "0".to_owned();
        }
        let parts: Vec<String> = self
            .counts
            .iter()
            .zip(self.first.iter())
            .filter_map(|(&n, e)| e.filter(|_| n > 0).map(|e| format!("{n} {e}")))
            .collect();
        format!("{total} ({})", parts.join(", "))
    }
}

/// Races `fut` against a timer of `limit`.
pub async fn with_timeout<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, OpError>>,
) -> Result<T, OpError> {
    smol::future::or(fut, async {
        smol::Timer::after(limit).await;
        Err(OpError::Timeout)
    })
    .await
}

/// The address to dial: the proxy, or the target itself for `direct`.
fn first_hop(proxy: &ProxyUrl, target: SocketAddr) -> SocketAddr {
    proxy.addr.unwrap_or(target)
}

/// Connects (through `proxy`, or directly) to `target` on a blocking socket whose reads and
/// writes time out after `timeout`, and completes the handshake within about `timeout`
/// (the last read may add one more).
pub fn open_blocking(
    proxy: &ProxyUrl,
    target: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, ReadAhead), OpError> {
    let stream = connect_blocking(first_hop(proxy, target), timeout)?;
    let hs = Handshake::new(Instant::now(), proxy, target, timeout).map_err(OpError::Handshake)?;
    let (stream, _, ahead) = drive_blocking(stream, hs, timeout)?;
    Ok((stream, ahead))
}

/// Opens a SOCKS5 UDP association (RFC 1928 section 4, CMD X'03', DST 0.0.0.0:0) on a
/// blocking control connection and answers it with the relay's address: BND.ADDR /
/// BND.PORT, with an unspecified BND.ADDR (0.0.0.0 or ::) read as the proxy's own
/// address (section 6 lets a server answer so). The association lives as long as the
/// control connection: keep the stream open. A relay outside loopback, or given by name,
/// is refused ([`OpError::Relay`]): the tool sends load to this machine only.
pub fn open_udp_associate(
    proxy: &ProxyUrl,
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), OpError> {
    let Some(proxy_addr) = proxy.addr else {
        return Err(OpError::Handshake(HandshakeError::NotSocks5));
    };
    let stream = connect_blocking(proxy_addr, timeout)?;
    let hs =
        Handshake::udp_associate(Instant::now(), proxy, timeout).map_err(OpError::Handshake)?;
    let (stream, hs, _) = drive_blocking(stream, hs, timeout)?;
    let relay = match hs.bound() {
        Some(TargetAddr::Ip(sa)) if sa.ip().is_unspecified() => {
            SocketAddr::new(proxy_addr.ip(), sa.port())
        }
        Some(TargetAddr::Ip(sa)) if sa.ip().is_loopback() && sa.port() != 0 => *sa,
        _ => return Err(OpError::Relay),
    };
    Ok((stream, relay))
}

/// TCP connect with `timeout`, and the same limit on every later read and write.
fn connect_blocking(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, OpError> {
    let stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| OpError::Connect(e.kind()))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| OpError::Io(e.kind()))?;
    Ok(stream)
}

/// Drives `hs` on a blocking stream until it is done, within about `timeout`.
fn drive_blocking(
    mut stream: TcpStream,
    mut hs: Handshake,
    timeout: Duration,
) -> Result<(TcpStream, Handshake, ReadAhead), OpError> {
    let deadline = Instant::now() + timeout;
    let mut input = Input::new();
    loop {
        if Instant::now() > deadline {
            return Err(OpError::Timeout);
        }
        if !hs.pending().is_empty() {
            stream.write_all(hs.pending()).map_err(|e| io_error(&e))?;
            let n = hs.pending().len();
            hs.sent(n);
        }
        if hs.is_done() {
            break;
        }
        let n = stream.read(input.space()).map_err(|e| io_error(&e))?;
        input.feed(&mut hs, n)?;
    }
    Ok((stream, hs, input.into_ahead()))
}

/// Handshake bytes read but not yet consumed, and what a read means for the handshake;
/// shared by [`open_blocking`] and [`open_async`].
struct Input {
    buf: [u8; HANDSHAKE_READ],
    have: usize,
}

impl Input {
    fn new() -> Self {
        Input {
            buf: [0; HANDSHAKE_READ],
            have: 0,
        }
    }

    /// Room for the next read.
    fn space(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.have..).unwrap_or_default()
    }

    /// Feeds `n` freshly read bytes (0: end of stream) to the handshake.
    fn feed(&mut self, hs: &mut Handshake, n: usize) -> Result<(), OpError> {
        if n == 0 {
            return Err(OpError::Handshake(
                hs.handle_eof().unwrap_or(HandshakeError::Closed),
            ));
        }
        self.have = (self.have + n).min(HANDSHAKE_READ);
        let used = hs
            .handle_input(
                Instant::now(),
                self.buf.get(..self.have).unwrap_or_default(),
            )
            .map_err(OpError::Handshake)?
            .min(self.have);
        self.buf.copy_within(used..self.have, 0);
        self.have -= used;
        if self.have == self.buf.len() && !hs.is_done() {
            // A message longer than the buffer: the machines cap theirs below this.
            return Err(OpError::Handshake(HandshakeError::HttpHeadTooLong));
        }
        Ok(())
    }

    /// What the proxy sent after its final reply (the target's first bytes).
    fn into_ahead(self) -> ReadAhead {
        let mut ahead = ReadAhead::new();
        // Cannot fail: `have` is at most the buffer length, which is the capacity.
        let _ = ahead.try_extend_from_slice(self.buf.get(..self.have).unwrap_or_default());
        ahead
    }
}

/// [`open_blocking`] on smol: connects and completes the handshake, both within `timeout`.
pub async fn open_async(
    proxy: &ProxyUrl,
    target: SocketAddr,
    timeout: Duration,
) -> Result<(Async<TcpStream>, ReadAhead), OpError> {
    with_timeout(timeout, async {
        let mut stream = Async::<TcpStream>::connect(first_hop(proxy, target))
            .await
            .map_err(|e| OpError::Connect(e.kind()))?;
        stream
            .get_ref()
            .set_nodelay(true)
            .map_err(|e| OpError::Io(e.kind()))?;
        let mut hs =
            Handshake::new(Instant::now(), proxy, target, timeout).map_err(OpError::Handshake)?;
        let mut input = Input::new();
        loop {
            if !hs.pending().is_empty() {
                stream
                    .write_all(hs.pending())
                    .await
                    .map_err(|e| io_error(&e))?;
                let n = hs.pending().len();
                hs.sent(n);
            }
            if hs.is_done() {
                break;
            }
            let n = stream.read(input.space()).await.map_err(|e| io_error(&e))?;
            input.feed(&mut hs, n)?;
        }
        Ok((stream, input.into_ahead()))
    })
    .await
}

/// Reads exactly `out.len()` bytes, taking them from `ahead` first.
pub async fn read_exact_after(
    stream: &mut Async<TcpStream>,
    ahead: &[u8],
    out: &mut [u8],
) -> Result<(), OpError> {
    let from_ahead = ahead.len().min(out.len());
    let (first, rest) = out.split_at_mut(from_ahead);
    first.copy_from_slice(ahead.get(..from_ahead).unwrap_or_default());
    if rest.is_empty() {
        return Ok(());
    }
    stream.read_exact(rest).await.map_err(|e| io_error(&e))
}

/// Writes bytes on an async stream, mapping the error.
pub async fn write_all_async(stream: &mut Async<TcpStream>, bytes: &[u8]) -> Result<(), OpError> {
    stream.write_all(bytes).await.map_err(|e| io_error(&e))
}

/// Reads until end of stream (discarding), at most `limit` bytes.
pub async fn drain_to_eof(stream: &mut Async<TcpStream>, limit: u64) -> Result<(), OpError> {
    let mut buf = [0u8; 512];
    let mut seen = 0u64;
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| io_error(&e))?;
        if n == 0 {
            return Ok(());
        }
        seen += n as u64;
        if seen > limit {
            return Err(OpError::EchoMismatch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind_and_keeps_first_example() {
        let mut c = ErrorCounts::default();
        assert_eq!(c.summary(), "0");
        c.add(OpError::Timeout);
        c.add(OpError::Connect(io::ErrorKind::ConnectionRefused));
        c.add(OpError::Connect(io::ErrorKind::AddrNotAvailable));
        let mut d = ErrorCounts::default();
        d.add(OpError::EchoMismatch);
        d.add(OpError::Timeout);
        c.merge(&d);
        assert_eq!(c.total(), 5);
        let s = c.summary();
        assert!(s.starts_with("5 ("), "{s}");
        assert!(s.contains("2 connect: connection refused"), "{s}");
        assert!(s.contains("2 timed out"), "{s}");
        assert!(s.contains("1 echo differs"), "{s}");
    }

    #[test]
    fn io_errors_map_to_kinds() {
        assert_eq!(
            io_error(&io::Error::from(io::ErrorKind::WouldBlock)),
            OpError::Timeout
        );
        assert_eq!(
            io_error(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            OpError::Closed
        );
        assert_eq!(
            io_error(&io::Error::from(io::ErrorKind::ConnectionReset)),
            OpError::Io(io::ErrorKind::ConnectionReset)
        );
    }

    #[test]
    fn connect_refused_is_a_connect_error() {
        // Bind then drop: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let r = open_blocking(&ProxyUrl::DIRECT, port, Duration::from_secs(1));
        assert!(matches!(r, Err(OpError::Connect(_))), "{r:?}");
        let r = smol::block_on(open_async(&ProxyUrl::DIRECT, port, Duration::from_secs(1)));
        assert!(matches!(r, Err(OpError::Connect(_))), "{r:?}");
    }
}
