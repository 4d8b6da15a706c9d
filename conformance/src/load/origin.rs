//! The origin server of the HTTP forwarding measurements: a small HTTP/1.1 server with
//! keep-alive that the tool starts on 127.0.0.1, so no outside server is needed.
//!
//! It serves two resources ([`route`]): `/small`, a [`SMALL_BODY_LEN`]-byte body, and
//! `/big?n=BYTES`, `BYTES` bytes (at most [`MAX_BIG`]), both with `Content-Length`; any
//! other path is a 404 with an empty body. Requests may be in origin form or absolute form
//! (RFC 9112 section 3.2.2), may be pipelined, and keep the connection open unless they
//! ask otherwise (`Connection: close`, or HTTP/1.0 without `keep-alive`). A request with a
//! body or a head it cannot read gets a 400 and the connection is closed.
//!
//! It is for measuring, not for serving: one connection carries at most
//! [`MAX_REQUESTS_PER_CONN`] requests, waits at most the configured idle time for the next
//! one, gives each write a timeout, and the server accepts a bounded number of
//! connections. It runs on the measurement's [`Runner`] and stops when that is dropped.

use super::conn::{io_error, with_timeout, write_all_async, OpError};
use super::http_response::{persistence, Persistence};
use super::runner::Runner;
use super::targets::bind_loopback;
use httparse::Status;
use smol::io::AsyncReadExt;
use smol::Async;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use triproxy_http::body::{request_framing, Framing};

/// Path of the small resource.
pub const SMALL_PATH: &str = "/small";
/// Bytes of the small resource's body.
pub const SMALL_BODY_LEN: usize = 100;
/// Path of the large resource (`/big?n=BYTES`).
pub const BIG_PATH: &str = "/big";
/// Largest `/big` body served: 1 TiB.
pub const MAX_BIG: u64 = 1 << 40;
/// Longest request head read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Most fields in a request head.
pub const MAX_REQUEST_FIELDS: usize = 64;
/// Most requests served on one connection.
pub const MAX_REQUESTS_PER_CONN: u64 = 100_000_000;
/// Bytes per write of a large body.
const WRITE_CHUNK: usize = 128 * 1024;
static FILL: [u8; WRITE_CHUNK] = [b'x'; WRITE_CHUNK];

/// What a request target asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/small`.
    Small,
    /// `/big?n=BYTES`.
    Big(u64),
    /// Anything else.
    NotFound,
}

/// The resource named by a request target in origin form (`/small`) or absolute form
/// (`http://127.0.0.1:8080/small`).
///
/// ```
/// use triproxy_conformance::load::origin::{route, Route};
/// assert_eq!(route("http://127.0.0.1:1/big?n=42"), Route::Big(42));
/// assert_eq!(route("/small"), Route::Small);
/// assert_eq!(route("/big?n=-1"), Route::NotFound);
/// ```
pub fn route(target: &str) -> Route {
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/"),
        None => target,
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    match (path, query) {
        (SMALL_PATH, "") => Route::Small,
        (BIG_PATH, q) => match q.strip_prefix("n=") {
            Some(digits)
                if !digits.is_empty()
                    && digits.len() <= 13
                    && digits.bytes().all(|b| b.is_ascii_digit()) =>
            {
                match digits.parse::<u64>() {
                    Ok(n) if n <= MAX_BIG => Route::Big(n),
                    _ => Route::NotFound,
                }
            }
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// How the origin serves.
#[derive(Debug, Clone, Copy)]
pub struct OriginConfig {
    /// Connections accepted at most.
    pub max_conns: u64,
    /// How long a connection may wait for its next request (a proxy's idle pooled
    /// connection is closed after it).
    pub idle_timeout: Duration,
    /// Limit for one write (and for the rest of a request head once it started).
    pub io_timeout: Duration,
}

/// Counters of the origin.
#[derive(Debug, Default)]
pub struct OriginStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Responses written (every status).
    pub responses: AtomicU64,
    /// Connections that ended on an error (a bad request, a write that failed).
    pub failed: AtomicU64,
}

/// Starts the origin on `runner`. Returns its address and counters.
pub fn spawn_origin(
    runner: &Runner,
    config: OriginConfig,
) -> io::Result<(SocketAddr, Arc<OriginStats>)> {
    let listener = Async::new(bind_loopback()?)?;
    let addr = listener.get_ref().local_addr()?;
    let stats = Arc::new(OriginStats::default());
    let weak = runner.weak();
    let task_stats = Arc::clone(&stats);
    runner
        .spawn(async move {
            while task_stats.accepted.load(Ordering::Relaxed) < config.max_conns {
                let Ok((stream, _)) = listener.accept().await else {
                    // EMFILE and the like: the clients' errors show it; retry shortly.
                    smol::Timer::after(Duration::from_millis(5)).await;
                    continue;
                };
                task_stats.accepted.fetch_add(1, Ordering::Relaxed);
                let Some(ex) = weak.upgrade() else { return };
                let stats = Arc::clone(&task_stats);
                ex.spawn(async move {
                    if serve(stream, config, &stats).await.is_err() {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .detach();
            }
        })
        .detach();
    Ok((addr, stats))
}

/// One request head read from the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parsed {
    /// Not all of it yet.
    Partial,
    /// A request to answer; `used` bytes were its head.
    Request {
        route: Route,
        persistence: Persistence,
        used: usize,
    },
    /// A head that cannot be served (malformed, too long, or with a body).
    Bad,
}

fn parse_request(input: &[u8]) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; MAX_REQUEST_FIELDS];
    let mut request = httparse::Request::new(&mut fields);
    let used = match request.parse(input) {
        Ok(Status::Complete(n)) if n <= MAX_REQUEST_HEAD => n,
        Ok(Status::Partial) if input.len() < MAX_REQUEST_HEAD => return Parsed::Partial,
        _ => return Parsed::Bad,
    };
    let framing = request_framing(request.headers.iter().map(|h| (h.name, h.value)));
    if !matches!(framing, Ok(Framing::Empty | Framing::Length(0))) {
        return Parsed::Bad;
    }
    let route = match request.method {
        Some("GET") => route(request.path.unwrap_or_default()),
        _ => Route::NotFound,
    };
    Parsed::Request {
        route,
        persistence: persistence(request.version.unwrap_or(0), request.headers),
        used,
    }
}

fn head(status: &str, length: u64, persistence: Persistence) -> Vec<u8> {
    let connection = match persistence {
        Persistence::KeepAlive => "",
        Persistence::Close => "Connection: close\r\n",
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {length}\r\n{connection}\r\n"
    )
    .into_bytes()
}

async fn serve(
    mut stream: Async<TcpStream>,
    config: OriginConfig,
    stats: &OriginStats,
) -> Result<(), OpError> {
    let _ = stream.get_ref().set_nodelay(true);
    let small = |p| {
        let mut r = head("200 OK", SMALL_BODY_LEN as u64, p);
        r.extend_from_slice(FILL.get(..SMALL_BODY_LEN).unwrap_or_default());
        r
    };
    let (small_keep, small_close) = (small(Persistence::KeepAlive), small(Persistence::Close));
    let mut buf = vec![0u8; MAX_REQUEST_HEAD];
    let mut have = 0;
    for _ in 0..MAX_REQUESTS_PER_CONN {
        let (route, persistence, used) = match parse_request(buf.get(..have).unwrap_or_default()) {
            Parsed::Request {
                route,
                persistence,
                used,
            } => (route, persistence, used),
            Parsed::Bad => {
                let reply = head("400 Bad Request", 0, Persistence::Close);
                let _ = with_timeout(config.io_timeout, write_all_async(&mut stream, &reply)).await;
                return Err(OpError::Closed);
            }
            Parsed::Partial => {
                // Between requests the idle limit applies, inside one the I/O limit.
                let limit = if have == 0 {
                    config.idle_timeout
                } else {
                    config.io_timeout
                };
                let space = buf.get_mut(have..).unwrap_or_default();
                let n = match with_timeout(limit, async {
                    stream.read(space).await.map_err(|e| io_error(&e))
                })
                .await
                {
                    Ok(n) => n,
                    Err(OpError::Timeout) if have == 0 => return Ok(()),
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    return if have == 0 {
                        Ok(())
                    } else {
                        Err(OpError::Closed)
                    };
                }
                have += n;
                continue;
            }
        };
        buf.copy_within(used..have, 0);
        have -= used;
        match route {
            Route::Small => {
                let reply = match persistence {
                    Persistence::KeepAlive => &small_keep,
                    Persistence::Close => &small_close,
                };
                with_timeout(config.io_timeout, write_all_async(&mut stream, reply)).await?;
            }
            Route::Big(n) => {
                let reply = head("200 OK", n, persistence);
                with_timeout(config.io_timeout, write_all_async(&mut stream, &reply)).await?;
                let mut left = n;
                while left > 0 {
                    let len = usize::try_from(left)
                        .unwrap_or(WRITE_CHUNK)
                        .min(WRITE_CHUNK);
                    let chunk = FILL.get(..len).unwrap_or_default();
                    with_timeout(config.io_timeout, write_all_async(&mut stream, chunk)).await?;
                    left -= len as u64;
                }
            }
            Route::NotFound => {
                let reply = head("404 Not Found", 0, persistence);
                with_timeout(config.io_timeout, write_all_async(&mut stream, &reply)).await?;
            }
        }
        stats.responses.fetch_add(1, Ordering::Relaxed);
        if persistence == Persistence::Close {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        for (target, expected) in [
            ("/small", Route::Small),
            ("http://127.0.0.1:8080/small", Route::Small),
            ("http://127.0.0.1:8080", Route::NotFound),
            ("/small?x", Route::NotFound),
            ("/big?n=0", Route::Big(0)),
            ("/big?n=268435456", Route::Big(1 << 28)),
            ("/big?n=1099511627776", Route::Big(MAX_BIG)),
            ("/big?n=1099511627777", Route::NotFound),
            ("/big?n=99999999999999999999", Route::NotFound),
            ("/big?n=", Route::NotFound),
            ("/big?n=+5", Route::NotFound),
            ("/big", Route::NotFound),
            ("/", Route::NotFound),
        ] {
            assert_eq!(route(target), expected, "{target}");
        }
    }

    #[test]
    fn request_heads() {
        let get = b"GET http://127.0.0.1:1/small HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n";
        for split in 0..get.len() {
            assert_eq!(parse_request(&get[..split]), Parsed::Partial, "{split}");
        }
        assert_eq!(
            parse_request(get),
            Parsed::Request {
                route: Route::Small,
                persistence: Persistence::KeepAlive,
                used: get.len()
            }
        );
        let close = b"GET /big?n=3 HTTP/1.0\r\n\r\nGET /small";
        assert_eq!(
            parse_request(close),
            Parsed::Request {
                route: Route::Big(3),
                persistence: Persistence::Close,
                used: close.len() - 10
            }
        );
        let post = b"POST /small HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            parse_request(post),
            Parsed::Request {
                route: Route::NotFound,
                ..
            }
        ));
        assert_eq!(
            parse_request(b"POST /small HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Parsed::Bad
        );
        assert_eq!(
            parse_request(b"GET /small HTTP/1.1\r\nX\r\n\r\n"),
            Parsed::Bad
        );
        let mut long = b"GET /small HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_REQUEST_HEAD, b'a');
        assert_eq!(parse_request(&long), Parsed::Bad);
    }
}
