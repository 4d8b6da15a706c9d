//! Message body framing for HTTP/1.1 forwarding (RFC 9112 section 6), sans-IO.
//!
//! A forwarding proxy must know where each message's body ends: to find the next
//! pipelined request, to reuse a connection, and to never let one side smuggle a second
//! message past the other. Two pieces do that:
//!
//! - [`request_framing`] and [`response_framing`] decide, from the head's fields, how the
//!   body is delimited: not at all, by `Content-Length`, by `chunked` coding, or by the
//!   end of the connection. They refuse what RFC 9112 section 6.3 says a proxy must not
//!   guess at: `Content-Length` and `Transfer-Encoding` together in a request, an invalid
//!   or conflicting `Content-Length`, a request coding that is not exactly `chunked` last.
//!   (3proxy keeps a connection open after a request with both fields; triproxy refuses
//!   it with 400, the safe choice the RFC allows.)
//! - [`BodyScanner`] finds the end of a body in the bytes as they arrive, in any split,
//!   validating the chunked syntax on the way (sizes, line ends, trailer section). It
//!   never copies: the proxy forwards the scanned bytes unchanged, chunk framing and
//!   trailers included (RFC 9112 section 7.1.2 lets a proxy forward trailers).
//!
//! Limits, each a [`BodyError`]: a chunk size of at most 16 hex digits (and below 2^63),
//! chunk extensions up to [`MAX_CHUNK_EXT`] bytes per chunk line, a trailer section up to
//! [`MAX_TRAILER`] bytes.

use core::fmt;

/// Longest chunk extension (after the size, before the line end) accepted per chunk.
pub const MAX_CHUNK_EXT: usize = 1024;
/// Longest trailer section accepted (all trailer lines together).
pub const MAX_TRAILER: usize = 8 * 1024;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: chunks up to a zero-size chunk and a trailer section.
    Chunked,
    /// Everything until the sender closes (responses only).
    UntilClose,
}

/// Why a head's framing fields cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// A request with both `Content-Length` and `Transfer-Encoding` (a smuggling vector).
    LengthAndTransferEncoding,
    /// A `Content-Length` that is not a decimal number below 2^63.
    InvalidContentLength,
    /// Several `Content-Length` values that differ.
    ConflictingContentLength,
    /// A request `Transfer-Encoding` other than exactly `chunked` as the last coding, or
    /// a coding name obscured by odd characters.
    UnsupportedTransferEncoding,
}

impl fmt::Display for FramingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramingError::LengthAndTransferEncoding => {
                "both Content-Length and Transfer-Encoding in a request"
            }
            FramingError::InvalidContentLength => "invalid Content-Length",
            FramingError::ConflictingContentLength => "conflicting Content-Length values",
            FramingError::UnsupportedTransferEncoding => "unsupported Transfer-Encoding",
        })
    }
}

/// What the framing fields of a head say, before deciding.
#[derive(Debug, Default)]
struct Fields {
    length: Option<u64>,
    /// The last coding named over every `Transfer-Encoding` field, and how many.
    last_coding_is_chunked: bool,
    codings: usize,
    transfer_encoding: bool,
}

/// `bytes` without the optional whitespace (SP, HTAB: RFC 9110 section 5.6.3) around it;
/// other whitespace, such as a form feed, stays and makes the value invalid.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !ows(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !ows(b)).map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads the `Content-Length` and `Transfer-Encoding` fields of `headers` (name, value).
fn fields<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Fields, FramingError> {
    let mut out = Fields::default();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length") {
            // A list of equal values is one value (RFC 9112 section 6.3, item 5).
            for part in value.split(|&b| b == b',') {
                let digits = trim_ows(part);
                if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit)
                {
                    return Err(FramingError::InvalidContentLength);
                }
                let n = digits
                    .iter()
                    .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
                match out.length {
                    Some(m) if m != n => return Err(FramingError::ConflictingContentLength),
                    _ => out.length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            out.transfer_encoding = true;
            for coding in value.split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue; // empty list elements are allowed and ignored
                }
                // A coding is a token, optionally with parameters; anything else (control
                // characters, spaces inside the name) is an obscured name.
                let name_end = coding
                    .iter()
                    .position(|&b| b == b';')
                    .unwrap_or(coding.len());
                let coding_name = trim_ows(coding.get(..name_end).unwrap_or_default());
                if coding_name.is_empty() || !coding_name.iter().all(|&b| is_token_char(b)) {
                    return Err(FramingError::UnsupportedTransferEncoding);
                }
                out.codings += 1;
                out.last_coding_is_chunked =
                    coding_name.eq_ignore_ascii_case(b"chunked") && name_end == coding.len();
            }
        }
    }
    Ok(out)
}

/// How a request's body is delimited (RFC 9112 section 6.3). A request without either
/// field has no body.
pub fn request_framing<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Framing, FramingError> {
    let f = fields(headers)?;
    if f.transfer_encoding {
        if f.length.is_some() {
            return Err(FramingError::LengthAndTransferEncoding);
        }
        // Only `chunked`, once, last: anything else cannot be delimited in a request.
        if f.codings != 1 || !f.last_coding_is_chunked {
            return Err(FramingError::UnsupportedTransferEncoding);
        }
        return Ok(Framing::Chunked);
    }
    Ok(f.length.map_or(Framing::Empty, Framing::Length))
}

/// How a response's body is delimited (RFC 9112 section 6.3): none for a response to
/// HEAD, for 1xx, 204 and 304; `chunked` when it is the last coding; otherwise by
/// `Content-Length`, or until the origin closes.
pub fn response_framing<'a>(
    status: u16,
    request_was_head: bool,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Framing, FramingError> {
    if request_was_head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    let f = fields(headers)?;
    if f.transfer_encoding {
        // Transfer-Encoding overrides Content-Length in a response (item 3).
        return Ok(if f.last_coding_is_chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    Ok(f.length.map_or(Framing::UntilClose, Framing::Length))
}

/// A malformed or over-long body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// A chunk size line that is not hex digits, or too large.
    BadChunkSize,
    /// A chunk extension over [`MAX_CHUNK_EXT`] bytes.
    ChunkExtensionTooLong,
    /// A CR not followed by LF, or chunk data not followed by CRLF.
    BadLineEnd,
    /// A trailer section over [`MAX_TRAILER`] bytes.
    TrailerTooLong,
    /// The connection ended before the body did.
    Truncated,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::BadChunkSize => "bad chunk size",
            BodyError::ChunkExtensionTooLong => "chunk extension too long",
            BodyError::BadLineEnd => "bad line end in a chunked body",
            BodyError::TrailerTooLong => "trailer section too long",
            BodyError::Truncated => "the body ended early",
        })
    }
}

/// What one call of [`BodyScanner::scan`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes of the input that belong to this body (forward them as they are).
    pub used: usize,
    /// The body ended within them: what follows is the next message.
    pub complete: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes of a `Content-Length` body left.
    Length(u64),
    /// Reading a chunk size: its value and digits so far.
    Size { value: u64, digits: u8 },
    /// After the size: the size, and extension bytes so far (up to the line end).
    Extension { value: u64, len: usize },
    /// The CR of a chunk size line was seen.
    SizeCr { value: u64 },
    /// Bytes of chunk data left.
    Data(u64),
    /// Chunk data ended: expecting CR.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// In the trailer section: total bytes so far, and bytes on the current line.
    Trailer { total: usize, line: usize },
    /// The CR of a trailer line (or of the final empty line) was seen.
    TrailerCr { total: usize, line: usize },
    /// Until the connection closes.
    UntilClose,
    /// The body is over.
    Done,
}

/// Finds where a body ends, in the bytes as they arrive. See the module documentation.
#[derive(Debug, Clone)]
pub struct BodyScanner {
    state: State,
}

impl BodyScanner {
    /// A scanner for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size {
                value: 0,
                digits: 0,
            },
            Framing::UntilClose => State::UntilClose,
        };
        BodyScanner { state }
    }

    /// Whether the body is over.
    pub fn is_complete(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `input`, the next bytes of the stream: how many belong to this body and
    /// whether it ended. Once complete, nothing more is used.
    pub fn scan(&mut self, input: &[u8]) -> Result<Scanned, BodyError> {
        let mut used = 0;
        while used < input.len() && self.state != State::Done {
            let rest = input.get(used..).unwrap_or_default();
            used += self.step(rest)?;
        }
        Ok(Scanned {
            used,
            complete: self.state == State::Done,
        })
    }

    /// The connection ended: fine for a body delimited by the close, an error otherwise.
    pub fn finish(&mut self) -> Result<(), BodyError> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(BodyError::Truncated),
        }
    }

    /// Consumes at least one byte of `input` (not empty) in the current state.
    fn step(&mut self, input: &[u8]) -> Result<usize, BodyError> {
        let Some(&b) = input.first() else {
            return Ok(0);
        };
        match self.state {
            State::Length(left) => {
                let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::Done
                } else {
                    State::Length(left)
                };
                return Ok(n);
            }
            State::Data(left) => {
                let n = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - n as u64;
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data(left)
                };
                return Ok(n);
            }
            State::UntilClose => return Ok(input.len()),
            State::Done => return Ok(0),
            State::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let d = u64::from(char::from(b).to_digit(16).unwrap_or(0));
                    if digits >= 16 || value > (i64::MAX as u64) >> 4 {
                        return Err(BodyError::BadChunkSize);
                    }
                    self.state = State::Size {
                        value: value << 4 | d,
                        digits: digits + 1,
                    };
                }
                _ if digits == 0 => return Err(BodyError::BadChunkSize),
                b';' | b' ' | b'\t' => self.state = State::Extension { value, len: 1 },
                b'\r' => self.state = State::SizeCr { value },
                _ => return Err(BodyError::BadChunkSize),
            },
            State::Extension { value, len } => match b {
                b'\r' => self.state = State::SizeCr { value },
                b'\n' => return Err(BodyError::BadLineEnd),
                _ if len >= MAX_CHUNK_EXT => return Err(BodyError::ChunkExtensionTooLong),
                _ => {
                    self.state = State::Extension {
                        value,
                        len: len + 1,
                    }
                }
            },
            State::SizeCr { value } => {
                if b != b'\n' {
                    return Err(BodyError::BadLineEnd);
                }
                self.state = if value == 0 {
                    State::Trailer { total: 0, line: 0 }
                } else {
                    State::Data(value)
                };
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(BodyError::BadLineEnd);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(BodyError::BadLineEnd);
                }
                self.state = State::Size {
                    value: 0,
                    digits: 0,
                };
            }
            State::Trailer { total, line } => {
                if total >= MAX_TRAILER {
                    return Err(BodyError::TrailerTooLong);
                }
                self.state = match b {
                    b'\r' => State::TrailerCr {
                        total: total + 1,
                        line,
                    },
                    b'\n' => return Err(BodyError::BadLineEnd),
                    _ => State::Trailer {
                        total: total + 1,
                        line: line + 1,
                    },
                };
            }
            State::TrailerCr { total, line } => {
                if b != b'\n' {
                    return Err(BodyError::BadLineEnd);
                }
                // An empty line ends the trailer section, and the body.
                self.state = if line == 0 {
                    State::Done
                } else {
                    State::Trailer {
                        total: total + 1,
                        line: 0,
                    }
                };
            }
        }
        Ok(1)
    }
}
