//! A small HTTP/1.1 origin server on 127.0.0.1 for the forwarding tests: it answers by
//! path, keeps connections alive, and records every request head and body it receives,
//! so a test can check what the proxy forwarded. It is not a general server: one thread
//! per connection, at most [`MAX_CONNECTIONS`] connections, request bodies up to
//! [`MAX_BODY`], every read and write bounded by [`IO_TIMEOUT`].
//!
//! Routes, by path (any method; a `HEAD` gets the default answer's head and no body):
//!
//! | path | answer |
//! | --- | --- |
//! | `/echo` | 200, the request body (`Content-Length`) |
//! | `/sink` | 200, `"<body length> <FNV-1a hash, 16 hex digits>"` |
//! | `/big/N` | 200, [`generated`]`(N)` with `Content-Length` |
//! | `/slow/N` | as `/big/N`, in 64 KiB pieces 20 ms apart |
//! | `/hold` | 200, [`HOLD_FIRST`], then waits for [`Origin::release`], then [`HOLD_REST`] |
//! | `/chunked` | 200, [`chunked_body`] in chunks (one with an extension), then [`TRAILER`] |
//! | `/close/N` | HTTP/1.1 200 with `Connection: close` and no length: [`generated`]`(N)`, close |
//! | `/close10/N` | HTTP/1.0 200 with no length: [`generated`]`(N)`, close |
//! | `/status/204` | 204, no body |
//! | `/status/304` | 304 with `Content-Length: 17` (of the representation) and no body |
//! | `/hop` | 200 `hop`, with hop-by-hop fields (`Connection: X-Origin-Hop`, `X-Origin-Hop`, `Keep-Alive`) and `X-End-To-End: kept` |
//! | `/hangup` | nothing: the connection closes after the request |
//! | anything else | 200, [`Origin::default_body`] (`"<name> <method> <request-target>"`) |
//!
//! A request with `Expect: 100-continue` and a body gets `100 Continue` before its body
//! is read. A connection stays open for the next request unless the request is HTTP/1.0,
//! asks for `Connection: close`, or the answer is delimited by the close.

use super::{Fnv, Stream64, IO_TIMEOUT};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The origin stops accepting after this many connections.
pub const MAX_CONNECTIONS: usize = 512;
/// The largest request body it reads (a larger one gets 413 and a close).
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// How much of each request body [`Seen::body`] keeps (its length and hash cover all).
pub const KEPT_BODY: usize = 1024 * 1024;
/// The largest request head it reads.
const MAX_HEAD: usize = 64 * 1024;
/// The seed of [`generated`].
pub const SEED: u64 = 0x0816_1E57;
/// What `/hold` sends before waiting for [`Origin::release`].
pub const HOLD_FIRST: &[u8] = b"the first half, sent at once; ";
/// What `/hold` sends after [`Origin::release`].
pub const HOLD_REST: &[u8] = b"the rest, sent when released";
/// The trailer field of `/chunked`.
pub const TRAILER: &str = "X-Checksum: 5eed";

/// `len` deterministic pseudo-random bytes, as `/big/N`, `/slow/N` and `/close/N` send.
pub fn generated(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    Stream64::new(SEED).fill(&mut v);
    v
}

/// The FNV-1a hash of [`generated`]`(len)`, computed in pieces (no `len`-byte buffer).
pub fn generated_hash(len: usize) -> u64 {
    generate_in_pieces(SEED, len, |_| {})
}

/// Generates `len` bytes from `seed` in 64 KiB pieces, gives each to `each`, and returns
/// the FNV-1a hash of them all.
pub fn generate_in_pieces(seed: u64, len: usize, mut each: impl FnMut(&[u8])) -> u64 {
    let mut gen = Stream64::new(seed);
    let mut h = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        gen.fill(&mut buf[..n]);
        h.update(&buf[..n]);
        each(&buf[..n]);
        left -= n;
    }
    h.0
}

/// The FNV-1a hash of `bytes`.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(bytes);
    h.0
}

/// The pieces `/chunked` sends, one chunk each (the middle one larger than a read
/// buffer).
fn chunk_pieces() -> [Vec<u8>; 3] {
    [b"alpha, ".to_vec(), vec![b'b'; 70_000], b", omega".to_vec()]
}

/// The body of `/chunked`, once decoded.
pub fn chunked_body() -> Vec<u8> {
    chunk_pieces().concat()
}

/// One request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Which accepted connection carried it, from 1.
    pub connection: usize,
    /// The head as received, with its CRLFs and the blank line.
    pub head: String,
    /// The body (decoded from chunks if it came chunked), its first [`KEPT_BODY`] bytes.
    pub body: Vec<u8>,
    /// The body's whole length.
    pub body_len: usize,
    /// The FNV-1a hash of the whole body.
    pub body_hash: u64,
    /// Whether the body came chunked.
    pub chunked: bool,
    /// The trailer section of a chunked body, lines joined with CRLF.
    pub trailers: String,
}

impl Seen {
    /// The request line (`GET /path HTTP/1.1`).
    pub fn request_line(&self) -> &str {
        self.head.split("\r\n").next().unwrap_or("")
    }

    /// The header fields in order, names as sent, values trimmed.
    pub fn fields(&self) -> Vec<(&str, &str)> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| {
                let (n, v) = line.split_once(':')?;
                Some((n, v.trim()))
            })
            .collect()
    }

    /// The first value of field `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every value of field `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }
}

/// What the connection threads share with the test.
#[derive(Debug, Default)]
struct Shared {
    accepted: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
    released: Mutex<bool>,
    gate: Condvar,
}

/// A running origin; its threads live until the test process ends (or
/// [`MAX_CONNECTIONS`] have been served).
#[derive(Debug, Clone)]
pub struct Origin {
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    name: &'static str,
    shared: Arc<Shared>,
}

impl Origin {
    /// Listens on 127.0.0.1 and serves; `name` starts the default answer, so two origins'
    /// answers differ.
    pub fn start(name: &'static str) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let origin = Origin { addr, name, shared };
        let server = origin.clone();
        thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let n = server.shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
                let conn = server.clone();
                thread::spawn(move || {
                    let _ = conn.serve(stream, n);
                });
                if n >= MAX_CONNECTIONS {
                    return;
                }
            }
        });
        origin
    }

    /// The default answer's body for `method` and the request-target as received.
    pub fn default_body(&self, method: &str, target: &str) -> String {
        format!("{} {method} {target}", self.name)
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Every request received so far, in the order their bodies were complete.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Waits (at most [`IO_TIMEOUT`]) until `n` requests were received; returns them all.
    pub fn wait_seen(&self, n: usize) -> Vec<Seen> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let seen = self.seen();
            if seen.len() >= n {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "the origin received {} requests, not {n}: {seen:#?}",
                seen.len()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lets every `/hold` answer, now and later, send its rest.
    pub fn release(&self) {
        *self.shared.released.lock().unwrap() = true;
        self.shared.gate.notify_all();
    }

    /// Serves one connection until the client closes, a request or answer ends it, or
    /// something fails.
    fn serve(&self, stream: TcpStream, connection: usize) -> io::Result<()> {
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut w = stream.try_clone()?;
        let mut r = BufReader::with_capacity(64 * 1024, stream);
        while let Some(head) = read_head(&mut r)? {
            let req = Request::parse(&head)?;
            if let Framing::Length(n) = req.framing {
                if n > MAX_BODY as u64 {
                    w.write_all(b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")?;
                    return w.shutdown(Shutdown::Both);
                }
            }
            if req.expects_continue && req.framing != Framing::Length(0) {
                w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            }
            let keep = if req.path() == "/echo" {
                MAX_BODY
            } else {
                KEPT_BODY
            };
            let body = read_body(&mut r, req.framing, keep)?;
            self.shared.seen.lock().unwrap().push(Seen {
                connection,
                head: head.clone(),
                body: body.bytes[..body.len.min(KEPT_BODY)].to_vec(),
                body_len: body.len,
                body_hash: body.hash,
                chunked: req.framing == Framing::Chunked,
                trailers: body.trailers.clone(),
            });
            let after = self.answer(&mut w, &req, body)?;
            w.flush()?;
            if after == After::Close || req.close {
                let _ = w.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        Ok(())
    }

    /// Writes the answer to `req`, whose body was `body`.
    fn answer(&self, w: &mut TcpStream, req: &Request, body: Body) -> io::Result<After> {
        let path = req.path();
        let mut parts = path.split('/').skip(1);
        let (first, size) = (parts.next().unwrap_or(""), parts.next());
        let size = size
            .and_then(|s| s.parse::<usize>().ok())
            .map(|n| n.min(MAX_BODY));
        if req.method == "HEAD" {
            let len = self.default_body(&req.method, &req.target).len();
            write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
            return Ok(After::KeepOpen);
        }
        match (first, size) {
            ("echo", None) => {
                let len = body.bytes.len();
                write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n")?;
                w.write_all(&body.bytes)?;
            }
            ("sink", None) => {
                let text = format!("{} {:016x}", body.len, body.hash);
                let len = text.len();
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n{text}")?;
            }
            ("big", Some(n)) => {
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
                send_generated(w, n, Duration::ZERO)?;
            }
            ("slow", Some(n)) => {
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")?;
                send_generated(w, n, Duration::from_millis(20))?;
            }
            ("hold", None) => {
                let len = HOLD_FIRST.len() + HOLD_REST.len();
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n")?;
                w.write_all(HOLD_FIRST)?;
                w.flush()?;
                let released = self.shared.released.lock().unwrap();
                let (released, _) = self
                    .shared
                    .gate
                    .wait_timeout_while(released, IO_TIMEOUT, |r| !*r)
                    .unwrap();
                if !*released {
                    return Ok(After::Close);
                }
                drop(released);
                w.write_all(HOLD_REST)?;
            }
            ("chunked", None) => {
                w.write_all(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n",
                )?;
                for (i, piece) in chunk_pieces().iter().enumerate() {
                    let ext = if i == 0 { ";name=value" } else { "" };
                    write!(w, "{:x}{ext}\r\n", piece.len())?;
                    w.write_all(piece)?;
                    w.write_all(b"\r\n")?;
                }
                write!(w, "0\r\n{TRAILER}\r\n\r\n")?;
            }
            ("close", Some(n)) => {
                w.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
                send_generated(w, n, Duration::ZERO)?;
                return Ok(After::Close);
            }
            ("close10", Some(n)) => {
                w.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")?;
                send_generated(w, n, Duration::ZERO)?;
                return Ok(After::Close);
            }
            ("status", Some(204)) => {
                w.write_all(b"HTTP/1.1 204 No Content\r\nX-Status: 204\r\n\r\n")?;
            }
            ("status", Some(304)) => {
                w.write_all(
                    b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 17\r\n\r\n",
                )?;
            }
            ("hop", None) => {
                w.write_all(
                    b"HTTP/1.1 200 OK\r\nConnection: X-Origin-Hop\r\nX-Origin-Hop: secret\r\n\
                      Keep-Alive: timeout=5\r\nX-End-To-End: kept\r\nContent-Length: 3\r\n\r\nhop",
                )?;
            }
            ("hangup", None) => return Ok(After::Close),
            _ => {
                let text = self.default_body(&req.method, &req.target);
                write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )?;
            }
        }
        Ok(After::KeepOpen)
    }
}

/// Whether the connection stays open after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    KeepOpen,
    Close,
}

/// How a request body is delimited (RFC 9112 section 6.3, as this origin reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Content-Length` (0 when there is neither field).
    Length(u64),
    /// `Transfer-Encoding` ending in `chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    framing: Framing,
    expects_continue: bool,
    /// HTTP/1.0, or `Connection: close`.
    close: bool,
}

impl Request {
    fn parse(head: &str) -> io::Result<Request> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let mut lines = head.split("\r\n");
        let mut words = lines.next().unwrap_or("").split(' ');
        let (Some(method), Some(target), Some(version)) =
            (words.next(), words.next(), words.next())
        else {
            return Err(bad("request line"));
        };
        let mut framing = Framing::Length(0);
        let mut expects_continue = false;
        let mut close = version == "HTTP/1.0";
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let name = name.to_ascii_lowercase();
            match name.as_str() {
                "transfer-encoding" => {
                    framing = if value.to_ascii_lowercase().ends_with("chunked") {
                        Framing::Chunked
                    } else {
                        return Err(bad("transfer coding"));
                    }
                }
                "content-length" if framing != Framing::Chunked => {
                    framing = Framing::Length(value.parse().map_err(|_| bad("length"))?);
                }
                "expect" => expects_continue = value.eq_ignore_ascii_case("100-continue"),
                "connection" => {
                    close |= value
                        .split(',')
                        .any(|o| o.trim().eq_ignore_ascii_case("close"));
                }
                _ => {}
            }
        }
        Ok(Request {
            method: method.to_owned(),
            target: target.to_owned(),
            framing,
            expects_continue,
            close,
        })
    }

    /// The path of the request-target, whether in origin form or (never from a good
    /// proxy) absolute form; without the query.
    fn path(&self) -> &str {
        let t = self.target.as_str();
        let t = match t.strip_prefix("http://") {
            Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => t,
        };
        t.split('?').next().unwrap_or(t)
    }
}

/// A request body as read.
#[derive(Debug)]
struct Body {
    /// The first bytes of it (as many as the reader was asked to keep).
    bytes: Vec<u8>,
    len: usize,
    hash: u64,
    trailers: String,
}

/// Reads a head up to its blank line (at most [`MAX_HEAD`] bytes); None at a clean EOF
/// before the first byte.
fn read_head(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = r
            .by_ref()
            .take(MAX_HEAD as u64)
            .read_until(b'\n', &mut head)?;
        if n == 0 {
            return if before == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.len() > MAX_HEAD {
            return Err(io::ErrorKind::InvalidData.into());
        }
        if head.ends_with(b"\r\n\r\n") {
            return String::from_utf8(head)
                .map(Some)
                .map_err(|_| io::ErrorKind::InvalidData.into());
        }
    }
}

/// Reads a body framed as `framing`, keeping its first `keep` bytes.
fn read_body(r: &mut impl BufRead, framing: Framing, keep: usize) -> io::Result<Body> {
    let mut body = Body {
        bytes: Vec::new(),
        len: 0,
        hash: 0,
        trailers: String::new(),
    };
    let mut h = Fnv::new();
    let mut take = |r: &mut dyn BufRead, n: usize, body: &mut Body| -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = n;
        while left > 0 {
            let k = left.min(buf.len());
            r.read_exact(&mut buf[..k])?;
            h.update(&buf[..k]);
            let room = keep.saturating_sub(body.bytes.len()).min(k);
            body.bytes.extend_from_slice(&buf[..room]);
            left -= k;
        }
        body.len += n;
        if body.len > MAX_BODY {
            return Err(io::ErrorKind::InvalidData.into());
        }
        Ok(())
    };
    match framing {
        Framing::Length(n) => take(r, usize::try_from(n).unwrap_or(usize::MAX), &mut body)?,
        Framing::Chunked => loop {
            let line = read_line(r)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
            if size == 0 {
                let mut trailers = Vec::new();
                loop {
                    let line = read_line(r)?;
                    if line.is_empty() {
                        break;
                    }
                    trailers.push(line);
                }
                body.trailers = trailers.join("\r\n");
                break;
            }
            take(r, size, &mut body)?;
            if !read_line(r)?.is_empty() {
                return Err(io::ErrorKind::InvalidData.into());
            }
        },
    }
    body.hash = h.0;
    Ok(body)
}

/// One CRLF-ended line (at most 4 KiB), without its CRLF.
fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    r.by_ref().take(4096).read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(io::ErrorKind::InvalidData.into());
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| io::ErrorKind::InvalidData.into())
}

/// Sends [`generated`]`(n)` in 64 KiB pieces, `pause` apart.
fn send_generated(w: &mut TcpStream, n: usize, pause: Duration) -> io::Result<()> {
    let mut gen = Stream64::new(SEED);
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len());
        gen.fill(&mut buf[..k]);
        w.write_all(&buf[..k])?;
        left -= k;
        if !pause.is_zero() && left > 0 {
            w.flush()?;
            thread::sleep(pause);
        }
    }
    Ok(())
}
