//! The client side of one HTTP/1.1 exchange for the forward-proxy measurements: the
//! request head ([`request_head`]: absolute form through a proxy, origin form for
//! `direct`) and [`ResponseReader`], which reads the response as it arrives and answers
//! its status, its decoded body length and whether the connection may be reused.
//!
//! The reader is sans-IO: the driver feeds it the bytes it has read, it says how many it
//! used, and the driver keeps the rest (a head or a chunk-size line cut by a read) and
//! feeds them again with more. Heads are parsed by httparse; how the body is delimited is
//! decided by the proxy's own rules, `triproxy_http::body::response_framing` (RFC 9112
//! section 6.3: `Transfer-Encoding` over `Content-Length`, no body for 1xx, 204, 304);
//! chunk-size lines and trailers are parsed by httparse too. The reader decodes chunked
//! bodies to count their bytes (a proxy such as squid may re-frame a `Content-Length` body
//! as chunked) but keeps none of them: a 256 MiB body passes through a fixed buffer.
//!
//! Limits, each a [`ResponseError`]: a head of at most [`MAX_HEAD`] bytes and
//! [`MAX_HEADERS`] fields, at most [`MAX_INTERIM`] interim (1xx) responses, a chunk-size
//! line of at most [`MAX_CHUNK_LINE`] bytes, a trailer section of at most [`MAX_TRAILER`]
//! bytes. It is a benchmark's client, not a general one: no HEAD, no `101`, no
//! credentials.

use core::fmt;
use httparse::Status;
use std::net::SocketAddr;
use triproxy_http::body::{response_framing, Framing, FramingError};

/// Longest response head accepted (status line and fields).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most fields in a response head or its trailer section.
pub const MAX_HEADERS: usize = 64;
/// Most interim (1xx) responses before the final one.
pub const MAX_INTERIM: u8 = 4;
/// Longest chunk-size line accepted, extensions and CRLF included.
pub const MAX_CHUNK_LINE: usize = 1024;
/// Longest trailer section accepted.
pub const MAX_TRAILER: usize = 8 * 1024;

/// How a request reaches the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestForm {
    /// `GET http://origin/path` to a forward proxy (RFC 9112 section 3.2.2).
    Absolute,
    /// `GET /path` to the origin itself (`direct`).
    Origin,
}

/// The head of `GET path` for the origin at `origin`, in `form`; `path` starts with `/`.
///
/// ```
/// use triproxy_conformance::load::http_response::{request_head, RequestForm};
/// let origin = "127.0.0.1:8080".parse().unwrap();
/// assert_eq!(
///     request_head(RequestForm::Absolute, origin, "/small"),
///     b"GET http://127.0.0.1:8080/small HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
/// );
/// ```
pub fn request_head(form: RequestForm, origin: SocketAddr, path: &str) -> Vec<u8> {
    match form {
        RequestForm::Absolute => {
            format!("GET http://{origin}{path} HTTP/1.1\r\nHost: {origin}\r\n\r\n").into_bytes()
        }
        RequestForm::Origin => {
            format!("GET {path} HTTP/1.1\r\nHost: {origin}\r\n\r\n").into_bytes()
        }
    }
}

/// Why a response could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// httparse refused the status line or a field.
    Head(httparse::Error),
    /// A head longer than [`MAX_HEAD`].
    HeadTooLong,
    /// More than [`MAX_INTERIM`] interim responses.
    TooManyInterim,
    /// Framing fields that cannot be used (an invalid `Content-Length`, for example).
    Framing(FramingError),
    /// A chunk-size line that is not a hex size with optional extensions.
    BadChunkSize,
    /// A chunk-size line longer than [`MAX_CHUNK_LINE`].
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    BadChunkEnd,
    /// httparse refused a trailer field.
    Trailer(httparse::Error),
    /// A trailer section longer than [`MAX_TRAILER`].
    TrailerTooLong,
    /// The connection ended before the response did.
    Truncated,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Head(e) => write!(f, "bad response head: {e}"),
            ResponseError::HeadTooLong => write!(f, "response head over {MAX_HEAD} bytes"),
            ResponseError::TooManyInterim => write!(f, "over {MAX_INTERIM} 1xx responses"),
            ResponseError::Framing(e) => write!(f, "response framing: {e}"),
            ResponseError::BadChunkSize => f.write_str("bad chunk size line"),
            ResponseError::ChunkLineTooLong => {
                write!(f, "chunk size line over {MAX_CHUNK_LINE} bytes")
            }
            ResponseError::BadChunkEnd => f.write_str("chunk data not followed by CRLF"),
            ResponseError::Trailer(e) => write!(f, "bad trailer field: {e}"),
            ResponseError::TrailerTooLong => write!(f, "trailer over {MAX_TRAILER} bytes"),
            ResponseError::Truncated => f.write_str("connection closed inside the response"),
        }
    }
}

impl std::error::Error for ResponseError {}

/// Whether the connection may carry another request after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with `keep-alive`.
    KeepAlive,
    /// The server closes after this response (or its body runs until the close).
    Close,
}

/// A complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The final status code.
    pub status: u16,
    /// Body bytes after removing any chunked framing.
    pub body_len: u64,
    /// Whether the connection may be reused.
    pub persistence: Persistence,
}

/// What one call of [`ResponseReader::handle_input`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes of the input used; the driver keeps the rest and feeds it again with more.
    pub used: usize,
    /// The response, once it is complete; bytes after `used` then belong to the next one.
    pub done: Option<Response>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailer,
    UntilClose,
    Done,
}

/// Reads one response. See the [module documentation](self).
///
/// ```
/// use triproxy_conformance::load::http_response::{Persistence, ResponseReader};
/// let mut reader = ResponseReader::new();
/// // A read that ends inside a chunk-size line: the driver keeps the unused `3`
/// // and feeds it again, followed by its next read.
/// let first = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3";
/// let p = reader.handle_input(first).unwrap();
/// assert_eq!((p.used, p.done), (first.len() - 1, None));
/// let p = reader.handle_input(b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1 ...").unwrap();
/// let response = p.done.unwrap();
/// assert_eq!((response.status, response.body_len), (200, 5 + 3));
/// assert_eq!(response.persistence, Persistence::KeepAlive);
/// assert_eq!(p.used, 13); // the next response starts after it
/// ```
#[derive(Debug, Clone)]
pub struct ResponseReader {
    state: State,
    status: u16,
    body_len: u64,
    persistence: Persistence,
    interim: u8,
}

impl Default for ResponseReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseReader {
    /// A reader waiting for the status line.
    pub fn new() -> Self {
        ResponseReader {
            state: State::Head,
            status: 0,
            body_len: 0,
            persistence: Persistence::Close,
            interim: 0,
        }
    }

    /// Body bytes counted so far (decoded).
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Reads `input`, the bytes the driver holds: uses what it can and says whether the
    /// response is complete. Once it is, every call answers it again and uses nothing.
    pub fn handle_input(&mut self, input: &[u8]) -> Result<Progress, ResponseError> {
        let mut used = 0;
        // Each turn uses bytes or changes the state towards Done, or leaves the loop.
        loop {
            let rest = input.get(used..).unwrap_or_default();
            let step = match self.state {
                State::Done => {
                    return Ok(Progress {
                        used,
                        done: Some(self.response()),
                    })
                }
                State::Head => self.head(rest)?,
                State::Length(left) => {
                    let n = self.count(rest, left);
                    self.state = if n as u64 == left {
                        State::Done
                    } else {
                        State::Length(left - n as u64)
                    };
                    Some(n)
                }
                State::ChunkData(left) => {
                    let n = self.count(rest, left);
                    self.state = if n as u64 == left {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left - n as u64)
                    };
                    Some(n)
                }
                State::ChunkSize => self.chunk_size(rest)?,
                State::ChunkEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        self.state = State::ChunkSize;
                        Some(2)
                    }
                    [] | [b'\r'] => None,
                    _ => return Err(ResponseError::BadChunkEnd),
                },
                State::Trailer => self.trailer(rest)?,
                State::UntilClose => {
                    self.body_len += rest.len() as u64;
                    Some(rest.len())
                }
            };
            match step {
                // Need more input (a body step uses 0 bytes only when there are none).
                None | Some(0) => break,
                Some(n) => used += n,
            }
        }
        Ok(Progress { used, done: None })
    }

    /// The connection ended: completes a body delimited by the close, fails otherwise.
    pub fn handle_eof(&mut self) -> Result<Response, ResponseError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(self.response())
            }
            _ => Err(ResponseError::Truncated),
        }
    }

    fn response(&self) -> Response {
        Response {
            status: self.status,
            body_len: self.body_len,
            persistence: self.persistence,
        }
    }

    /// Counts up to `left` body bytes of `rest`.
    fn count(&mut self, rest: &[u8], left: u64) -> usize {
        let n = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        self.body_len += n as u64;
        n
    }

    fn head(&mut self, rest: &[u8]) -> Result<Option<usize>, ResponseError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut fields);
        let n = match head.parse(rest).map_err(ResponseError::Head)? {
            Status::Partial if rest.len() >= MAX_HEAD => return Err(ResponseError::HeadTooLong),
            Status::Partial => return Ok(None),
            Status::Complete(n) if n > MAX_HEAD => return Err(ResponseError::HeadTooLong),
            Status::Complete(n) => n,
        };
        let status = head.code.unwrap_or(0);
        if (100..200).contains(&status) && status != 101 {
            // An interim response: the final one follows.
            self.interim += 1;
            if self.interim > MAX_INTERIM {
                return Err(ResponseError::TooManyInterim);
            }
            return Ok(Some(n));
        }
        let framing = response_framing(
            status,
            false,
            head.headers.iter().map(|h| (h.name, h.value)),
        )
        .map_err(ResponseError::Framing)?;
        self.status = status;
        self.persistence = match framing {
            Framing::UntilClose => Persistence::Close,
            _ => persistence(head.version.unwrap_or(0), head.headers),
        };
        self.state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(len) => State::Length(len),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Ok(Some(n))
    }

    fn chunk_size(&mut self, rest: &[u8]) -> Result<Option<usize>, ResponseError> {
        match rest.first() {
            None => return Ok(None),
            // httparse takes an empty size for 0; a size has at least one digit.
            Some(b) if !b.is_ascii_hexdigit() => return Err(ResponseError::BadChunkSize),
            Some(_) => {}
        }
        match httparse::parse_chunk_size(rest) {
            Ok(Status::Complete((n, _))) if n > MAX_CHUNK_LINE => {
                Err(ResponseError::ChunkLineTooLong)
            }
            Ok(Status::Complete((n, size))) => {
                self.state = if size == 0 {
                    State::Trailer
                } else {
                    State::ChunkData(size)
                };
                Ok(Some(n))
            }
            Ok(Status::Partial) if rest.len() >= MAX_CHUNK_LINE => {
                Err(ResponseError::ChunkLineTooLong)
            }
            Ok(Status::Partial) => Ok(None),
            Err(httparse::InvalidChunkSize) => Err(ResponseError::BadChunkSize),
        }
    }

    fn trailer(&mut self, rest: &[u8]) -> Result<Option<usize>, ResponseError> {
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(rest, &mut fields).map_err(ResponseError::Trailer)? {
            Status::Complete((n, _)) if n > MAX_TRAILER => Err(ResponseError::TrailerTooLong),
            Status::Complete((n, _)) => {
                self.state = State::Done;
                Ok(Some(n))
            }
            Status::Partial if rest.len() >= MAX_TRAILER => Err(ResponseError::TrailerTooLong),
            Status::Partial => Ok(None),
        }
    }
}

/// Keep-alive by default in HTTP/1.1, close by default in HTTP/1.0 (RFC 9112 section
/// 9.3); a `close` or `keep-alive` option of `Connection` (or of the older
/// `Proxy-Connection`, which some proxies still send) decides otherwise.
pub(crate) fn persistence(minor_version: u8, fields: &[httparse::Header<'_>]) -> Persistence {
    let mut close = false;
    let mut keep_alive = false;
    for field in fields {
        if !field.name.eq_ignore_ascii_case("connection")
            && !field.name.eq_ignore_ascii_case("proxy-connection")
        {
            continue;
        }
        for option in field.value.split(|&b| b == b',') {
            let option = option.trim_ascii();
            close |= option.eq_ignore_ascii_case(b"close");
            keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    if close || (minor_version == 0 && !keep_alive) {
        Persistence::Close
    } else {
        Persistence::KeepAlive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `split` bytes the way a driver does (keeping what was
    /// not used), then the end of the stream if `eof`; answers the response and the bytes
    /// left over after it.
    fn drive(input: &[u8], split: usize, eof: bool) -> Result<(Response, Vec<u8>), ResponseError> {
        let mut reader = ResponseReader::new();
        let mut held: Vec<u8> = Vec::new();
        let split = split.max(1);
        for (i, piece) in input.chunks(split).enumerate() {
            held.extend_from_slice(piece);
            let p = reader.handle_input(&held)?;
            held.drain(..p.used);
            if let Some(r) = p.done {
                // What was not fed yet follows what was not used.
                held.extend_from_slice(&input[((i + 1) * split).min(input.len())..]);
                return Ok((r, held));
            }
        }
        if eof {
            return reader.handle_eof().map(|r| (r, held));
        }
        Err(ResponseError::Truncated)
    }

    fn every_split(input: &[u8], eof: bool) -> (Response, Vec<u8>) {
        let whole = drive(input, input.len(), eof).unwrap();
        for split in 1..input.len() {
            assert_eq!(drive(input, split, eof).unwrap(), whole, "split {split}");
        }
        whole
    }

    const NEXT: &[u8] = b"HTTP/1.1 200 OK\r\n";

    #[test]
    fn content_length_in_every_split() {
        let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789".to_vec();
        input.extend_from_slice(NEXT);
        let (r, rest) = every_split(&input, false);
        assert_eq!(
            r,
            Response {
                status: 200,
                body_len: 10,
                persistence: Persistence::KeepAlive
            }
        );
        assert_eq!(rest, NEXT);
    }

    #[test]
    fn chunked_with_extensions_and_trailers_in_every_split() {
        let mut input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\
            Content-Length: 999\r\n\r\n\
            a;name=value\r\n0123456789\r\n1F \r\n0123456789012345678901234567890\r\n\
            0\r\nX-Checksum: 1\r\n\r\n"
            .to_vec();
        input.extend_from_slice(NEXT);
        let (r, rest) = every_split(&input, false);
        assert_eq!((r.status, r.body_len), (200, 10 + 31));
        assert_eq!(rest, NEXT);
    }

    #[test]
    fn until_close_and_connection_options() {
        let input = b"HTTP/1.0 200 OK\r\n\r\nabcdef";
        let (r, _) = every_split(input, true);
        assert_eq!((r.body_len, r.persistence), (6, Persistence::Close));
        let head = |fields: &str| format!("HTTP/1.{fields}\r\nContent-Length: 0\r\n\r\n");
        for (text, expected) in [
            ("1 200 OK", Persistence::KeepAlive),
            ("1 200 OK\r\nConnection: close", Persistence::Close),
            ("1 200 OK\r\nProxy-Connection: Close", Persistence::Close),
            ("1 200 OK\r\nConnection: te, CLOSE", Persistence::Close),
            ("0 200 OK", Persistence::Close),
            ("0 200 OK\r\nConnection: Keep-Alive", Persistence::KeepAlive),
        ] {
            let (r, _) = drive(head(text).as_bytes(), 1000, false).unwrap();
            assert_eq!(r.persistence, expected, "{text}");
        }
    }

    #[test]
    fn interim_responses_and_statuses_without_body() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n\
            HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";
        let (r, rest) = every_split(input, false);
        assert_eq!((r.status, r.body_len), (204, 0));
        assert!(rest.is_empty());
        let many = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(usize::from(MAX_INTERIM) + 1);
        assert_eq!(
            drive(&many, many.len(), false),
            Err(ResponseError::TooManyInterim)
        );
        let (r, _) = drive(b"HTTP/1.1 501 Not Implemented\r\n\r\n", 100, true).unwrap();
        assert_eq!((r.status, r.persistence), (501, Persistence::Close));
    }

    #[test]
    fn malformed_responses_are_typed_errors() {
        let cases: [(&[u8], ResponseError); 8] = [
            (
                b"HTTP/1.1 2x0 OK\r\n\r\n",
                ResponseError::Head(httparse::Error::Status),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                ResponseError::Framing(FramingError::ConflictingContentLength),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
                ResponseError::BadChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
                ResponseError::BadChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\n",
                ResponseError::BadChunkSize,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX",
                ResponseError::BadChunkEnd,
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad field\r\n\r\n",
                ResponseError::Trailer(httparse::Error::HeaderName),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                ResponseError::Truncated,
            ),
        ];
        for (input, expected) in cases {
            for split in [1, 7, input.len()] {
                assert_eq!(
                    drive(input, split, true),
                    Err(expected),
                    "{} split {split}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn limits_hold_however_the_bytes_arrive() {
        let mut long_head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long_head.resize(MAX_HEAD + 10, b'a');
        for split in [1000, long_head.len()] {
            assert_eq!(
                drive(&long_head, split, false),
                Err(ResponseError::HeadTooLong)
            );
        }
        let mut long_ext = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        long_ext.resize(long_ext.len() + MAX_CHUNK_LINE, b'e');
        assert_eq!(
            drive(&long_ext, 100, false),
            Err(ResponseError::ChunkLineTooLong)
        );
        let mut long_trailer =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ".to_vec();
        long_trailer.resize(long_trailer.len() + MAX_TRAILER, b't');
        assert_eq!(
            drive(&long_trailer, 500, false),
            Err(ResponseError::TrailerTooLong)
        );
    }

    #[test]
    fn a_large_body_needs_no_buffer() {
        let mut reader = ResponseReader::new();
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n";
        assert_eq!(reader.handle_input(head).unwrap().used, head.len());
        let block = vec![0u8; 1 << 20];
        for _ in 0..16 {
            let p = reader.handle_input(&block).unwrap();
            assert_eq!((p.used, p.done), (block.len(), None));
        }
        assert_eq!(reader.body_len(), 16 << 20);
        assert_eq!(reader.handle_eof(), Err(ResponseError::Truncated));
    }

    #[test]
    fn request_heads() {
        let origin: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(
            request_head(RequestForm::Origin, origin, "/big?n=5"),
            b"GET /big?n=5 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"
        );
    }
}
