//! One client connection of the HTTP forwarding measurements, on smol: connect to the
//! proxy (or, for `direct`, the origin), then any number of exchanges, each a request head
//! written and a response read by the sans-IO [`ResponseReader`] and checked (status 200,
//! the body length the origin sends).
//!
//! The connection keeps the bytes read past a response for the next one. Every step is
//! bounded: the connect by a timeout, an exchange by the caller's timeout (see
//! [`with_timeout`]) and by [`MAX_READS`] reads. It does not retry itself; it tells the
//! caller when a failure is a server closing a connection it had kept open
//! ([`HttpConn::closed_while_idle`]), the one case a client retries on a new connection.

use super::conn::{io_error, with_timeout, write_all_async, OpError};
use super::http_response::{Persistence, RequestForm, Response, ResponseError, ResponseReader};
use super::url::{ProxyUrl, Scheme};
use super::LoadError;
use smol::io::AsyncReadExt;
use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Most reads for one response (a 256 MiB body takes about 1,000 with a 256 KiB buffer).
pub const MAX_READS: u64 = 1 << 32;
/// Read buffer of a connection for small responses (larger than every limit of the
/// reader, so a full buffer always makes it decide).
pub const SMALL_BUFFER: usize = 32 * 1024;
/// Read buffer of a connection for large bodies.
pub const LARGE_BUFFER: usize = 256 * 1024;

/// How to reach the origin through `proxy`: the address to dial and the request form.
/// Only `direct` and `http://host:port` (without credentials) are measured.
pub fn first_hop(
    proxy: &ProxyUrl,
    origin: SocketAddr,
) -> Result<(SocketAddr, RequestForm), LoadError> {
    match (proxy.scheme, proxy.addr, &proxy.credentials) {
        (Scheme::Direct, _, _) => Ok((origin, RequestForm::Origin)),
        (Scheme::Http, Some(addr), None) => Ok((addr, RequestForm::Absolute)),
        _ => Err(LoadError::Usage(format!(
            "HTTP forwarding goes through `direct` or http://host:port without credentials, \
             not {proxy}"
        ))),
    }
}

/// One connection. See the [module documentation](self).
#[derive(Debug)]
pub struct HttpConn {
    stream: Async<TcpStream>,
    buf: Vec<u8>,
    have: usize,
    /// Exchanges completed on this connection.
    completed: u64,
}

impl HttpConn {
    /// Connects to `addr` within `timeout`, with a read buffer of `buffer` bytes (at least
    /// [`SMALL_BUFFER`]).
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
        buffer: usize,
    ) -> Result<HttpConn, OpError> {
        let stream = with_timeout(timeout, async {
            Async::<TcpStream>::connect(addr)
                .await
                .map_err(|e| OpError::Connect(e.kind()))
        })
        .await?;
        stream
            .get_ref()
            .set_nodelay(true)
            .map_err(|e| OpError::Io(e.kind()))?;
        Ok(HttpConn {
            stream,
            buf: vec![0; buffer.max(SMALL_BUFFER)],
            have: 0,
            completed: 0,
        })
    }

    /// Writes `request` and reads its response into `reader` (a new one; its body count
    /// tells how far a failed exchange got). Bound it with [`with_timeout`].
    pub async fn exchange(
        &mut self,
        request: &[u8],
        reader: &mut ResponseReader,
    ) -> Result<Response, OpError> {
        write_all_async(&mut self.stream, request).await?;
        let mut received = self.have > 0;
        for _ in 0..MAX_READS {
            if self.have > 0 {
                let held = self.buf.get(..self.have).unwrap_or_default();
                let progress = reader.handle_input(held).map_err(OpError::Response)?;
                let used = progress.used.min(self.have);
                self.buf.copy_within(used..self.have, 0);
                self.have -= used;
                if let Some(response) = progress.done {
                    self.completed += 1;
                    return Ok(response);
                }
            }
            let space = self.buf.get_mut(self.have..).unwrap_or_default();
            if space.is_empty() {
                // Cannot happen: the buffer is larger than every limit of the reader.
                return Err(OpError::Response(ResponseError::HeadTooLong));
            }
            let n = self.stream.read(space).await.map_err(|e| io_error(&e))?;
            if n == 0 {
                let response = reader.handle_eof().map_err(|e| match e {
                    // Nothing of the response arrived: the connection was closed under it.
                    ResponseError::Truncated if !received => OpError::Closed,
                    e => OpError::Response(e),
                })?;
                self.completed += 1;
                return Ok(response);
            }
            received = true;
            self.have += n;
        }
        Err(OpError::Timeout)
    }
}

impl HttpConn {
    /// Whether `e`, from an exchange on this connection, is the server having closed the
    /// connection while it was idle between two requests: the connection had carried a
    /// response and nothing of the next one arrived. A client may send an idempotent
    /// request again on a new connection then (RFC 9112 section 9.3.1); a server that
    /// closes without `Connection: close` (tinyproxy 1.11) makes every second attempt one.
    pub fn closed_while_idle(&self, e: &OpError) -> bool {
        self.completed > 0
            && matches!(
                e,
                OpError::Closed
                    | OpError::Io(
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::ConnectionAborted
                    )
            )
    }
}

/// Whether `response` is a 200 with `expected` body bytes; answers whether the
/// connection may be reused.
pub fn check(response: &Response, expected: u64) -> Result<Persistence, OpError> {
    if response.status != 200 {
        return Err(OpError::Status(response.status));
    }
    if response.body_len != expected {
        return Err(OpError::BodyLength {
            expected,
            got: response.body_len,
        });
    }
    Ok(response.persistence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::http_response::Persistence;

    #[test]
    fn only_direct_and_plain_http_proxies() {
        let origin: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(
            first_hop(&ProxyUrl::DIRECT, origin).unwrap(),
            (origin, RequestForm::Origin)
        );
        let proxy = ProxyUrl::parse("http://127.0.0.1:3128").unwrap();
        assert_eq!(
            first_hop(&proxy, origin).unwrap(),
            ("127.0.0.1:3128".parse().unwrap(), RequestForm::Absolute)
        );
        for bad in ["socks5://127.0.0.1:1080", "http://u:p@127.0.0.1:3128"] {
            let proxy = ProxyUrl::parse(bad).unwrap();
            assert!(
                matches!(first_hop(&proxy, origin), Err(LoadError::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn checks_status_and_length() {
        let ok = Response {
            status: 200,
            body_len: 100,
            persistence: Persistence::Close,
        };
        assert_eq!(check(&ok, 100), Ok(Persistence::Close));
        assert_eq!(
            check(&ok, 99),
            Err(OpError::BodyLength {
                expected: 99,
                got: 100
            })
        );
        let refused = Response { status: 501, ..ok };
        assert_eq!(check(&refused, 100), Err(OpError::Status(501)));
    }
}
