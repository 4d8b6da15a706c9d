//! Reading HTTP/1.1 responses the way a client does, for the forwarding tests: the head,
//! then the body framed as RFC 9112 section 6.3 says (none after a HEAD and for 1xx, 204
//! and 304; `Transfer-Encoding: chunked` with its trailer section; `Content-Length`;
//! otherwise until the connection closes). It reads from a `BufRead` kept across
//! responses, so pipelined answers on one connection are split where they should be.
//! Bounded: heads up to 64 KiB, bodies up to [`MAX_BODY`]; the socket's read timeout
//! bounds the waits. Not a second proxy client: it only parses what comes back.

use std::io::{BufRead, Read};

/// The largest body [`read_response`] accepts.
pub const MAX_BODY: usize = 80 * 1024 * 1024;
/// The largest head.
const MAX_HEAD: u64 = 64 * 1024;

/// How the body of a response was delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: the answer to a HEAD, or a 1xx, 204 or 304.
    Empty,
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closed.
    Close,
}

/// One response as read.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The head, status line to blank line, CRLFs included.
    pub head: String,
    /// The body, decoded from chunks if it came chunked.
    pub body: Vec<u8>,
    /// The trailer section of a chunked body, lines joined with CRLF.
    pub trailers: String,
    /// How the body was delimited.
    pub framing: Framing,
}

impl Response {
    /// The first value of field `name` (case-insensitive).
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.head, name)
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The first value of field `name` (case-insensitive) in `head`.
pub fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a head up to its blank line; None if the connection ends (or fails) before
/// any byte of it.
pub fn try_read_head(r: &mut impl BufRead) -> Option<String> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match r.by_ref().take(MAX_HEAD).read_until(b'\n', &mut head) {
            Ok(0) | Err(_) if before == 0 => return None,
            Ok(0) | Err(_) => panic!(
                "the connection ended inside a response head: {:?}",
                String::from_utf8_lossy(&head)
            ),
            Ok(_) => {}
        }
        assert!(head.len() as u64 <= MAX_HEAD, "endless response head");
        if head.ends_with(b"\r\n\r\n") {
            return Some(String::from_utf8(head).expect("an ASCII response head"));
        }
    }
}

/// Reads one response to a `method` request (its head must be HTTP/1.0 or HTTP/1.1);
/// panics if none comes or it is cut short. A 1xx comes back as it is, with no body:
/// the caller reads the final response next.
pub fn read_response(r: &mut impl BufRead, method: &str) -> Response {
    let head = try_read_head(r).expect("a response head");
    let mut words = head.split(' ');
    let version = words.next().unwrap_or("");
    assert!(
        version == "HTTP/1.1" || version == "HTTP/1.0",
        "status line: {head:?}"
    );
    let status: u16 = words
        .next()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head:?}"));
    let chunked = field(&head, "Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().ends_with("chunked"));
    let length = field(&head, "Content-Length").map(|n| {
        n.parse::<usize>()
            .unwrap_or_else(|_| panic!("Content-Length in {head:?}"))
    });
    let framing = if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if length.is_some() {
        Framing::Length
    } else {
        Framing::Close
    };
    let mut body = Vec::new();
    let mut trailers = String::new();
    match framing {
        Framing::Empty => {}
        Framing::Length => {
            let n = length.unwrap_or(0);
            assert!(n <= MAX_BODY, "a {n}-byte body");
            body = vec![0u8; n];
            r.read_exact(&mut body).unwrap_or_else(|e| {
                panic!("the body of {head:?} was cut short: {e}");
            });
        }
        Framing::Chunked => trailers = read_chunked(r, &mut body),
        Framing::Close => {
            r.by_ref()
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut body)
                .unwrap_or_else(|e| panic!("reading until the close: {e}"));
            assert!(body.len() <= MAX_BODY, "endless close-delimited body");
        }
    }
    Response {
        status,
        head,
        body,
        trailers,
        framing,
    }
}

/// Decodes a chunked body into `body`; returns its trailer section.
fn read_chunked(r: &mut impl BufRead, body: &mut Vec<u8>) -> String {
    loop {
        let line = read_line(r);
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).unwrap_or_else(|_| panic!("chunk size line {line:?}"));
        if size == 0 {
            let mut trailers = Vec::new();
            loop {
                let line = read_line(r);
                if line.is_empty() {
                    return trailers.join("\r\n");
                }
                trailers.push(line);
            }
        }
        assert!(body.len() + size <= MAX_BODY, "endless chunked body");
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .unwrap_or_else(|e| panic!("a chunk was cut short: {e}"));
        assert_eq!(read_line(r), "", "CRLF after a chunk");
    }
}

/// One CRLF-ended line (at most 4 KiB) without its CRLF.
fn read_line(r: &mut impl BufRead) -> String {
    let mut line = Vec::new();
    r.by_ref()
        .take(4096)
        .read_until(b'\n', &mut line)
        .unwrap_or_else(|e| panic!("reading a chunk line: {e}"));
    assert!(line.ends_with(b"\r\n"), "chunk line {line:?}");
    line.truncate(line.len() - 2);
    String::from_utf8(line).expect("an ASCII chunk line")
}
