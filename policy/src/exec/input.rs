//! The handshake input buffers of one connection and what a read means for the session.

use crate::session::Session;
use std::io;
use std::time::Instant;

/// Bytes of handshake input held per connection. The longest SOCKS message (a SOCKS4a
/// request with a 255-byte user id and a 255-byte name) is 520 bytes, so one whole message
/// always fits; anything the machine leaves unconsumed after the request is pipelined
/// client data for the target.
pub const HANDSHAKE_BUFFER: usize = 1024;

/// Client bytes read during the handshake and not yet consumed by the session: an
/// inline buffer of [`HANDSHAKE_BUFFER`] bytes, moved to the heap and grown only for a
/// front that must see more at once (a TLS ClientHello is peeked whole:
/// [`Session::max_input`]).
#[derive(Debug)]
pub struct HandshakeInput {
    buf: [u8; HANDSHAKE_BUFFER],
    /// Used instead of `buf` once a front needed more than it holds.
    big: Vec<u8>,
    len: usize,
}

impl Default for HandshakeInput {
    fn default() -> Self {
        HandshakeInput {
            buf: [0; HANDSHAKE_BUFFER],
            big: Vec::new(),
            len: 0,
        }
    }
}

impl HandshakeInput {
    /// Room for the next read, or `None` when the buffer is full (which a correct machine
    /// never lets happen: [`Self::on_read`] then ends the session instead of spinning).
    /// `limit` is how much the session's front may need to hold at once; beyond
    /// [`HANDSHAKE_BUFFER`] the bytes move to a heap buffer that doubles up to it.
    pub fn space(&mut self, limit: usize) -> Option<&mut [u8]> {
        if self.big.is_empty() && self.len == HANDSHAKE_BUFFER && limit > HANDSHAKE_BUFFER {
            self.big = self.buf.to_vec();
        }
        if !self.big.is_empty() && self.len == self.big.len() && self.big.len() < limit {
            let grown = (self.big.len() * 2).min(limit);
            self.big.resize(grown, 0);
        }
        let buf: &mut [u8] = if self.big.is_empty() {
            &mut self.buf
        } else {
            &mut self.big
        };
        buf.get_mut(self.len..).filter(|s| !s.is_empty())
    }

    /// Tells `session` what a read into [`Self::space`] gave: bytes (fed to the machine;
    /// what it does not consume stays here), end of stream, a timeout, or an error.
    pub fn on_read(&mut self, session: &mut Session, now: Instant, result: io::Result<usize>) {
        let buf: &mut [u8] = if self.big.is_empty() {
            &mut self.buf
        } else {
            &mut self.big
        };
        deliver_read(Side::Client, buf, &mut self.len, session, now, result);
    }

    /// Ends a session whose buffer is full (see [`Self::space`]).
    pub fn on_full(&mut self, session: &mut Session, now: Instant) {
        Side::Client.gone(session, now);
    }

    /// Forgets every byte held (for reuse by another connection).
    pub fn clear(&mut self) {
        self.len = 0;
        self.big = Vec::new();
    }

    /// Bytes the client sent after its request (pipelined data for the target).
    pub fn pending(&self) -> &[u8] {
        let buf: &[u8] = if self.big.is_empty() {
            &self.buf
        } else {
            &self.big
        };
        buf.get(..self.len).unwrap_or_default()
    }
}

/// The most bytes held from the outgoing connection while a parent chain is negotiated:
/// above the longest answer a hop may give (an HTTP CONNECT response head is limited to
/// `triproxy_http::MAX_RESPONSE_HEAD`, a SOCKS reply to 262 bytes).
pub const MAX_TARGET_INPUT: usize = 12 * 1024;

/// Bytes read from the outgoing connection during parent chain negotiation and not yet
/// consumed by the session. Empty (no allocation) for connections without a chain; after
/// the last hop's reply, what is left is the target's first data for the client.
#[derive(Debug, Default)]
pub struct TargetInput {
    buf: Vec<u8>,
    len: usize,
}

impl TargetInput {
    /// Room for the next read (grown on first use, up to [`MAX_TARGET_INPUT`]), or `None`
    /// when the buffer is full.
    pub fn space(&mut self) -> Option<&mut [u8]> {
        if self.len == self.buf.len() && self.buf.len() < MAX_TARGET_INPUT {
            let grown = (self.buf.len() * 2).clamp(1024, MAX_TARGET_INPUT);
            self.buf.resize(grown, 0);
        }
        self.buf.get_mut(self.len..).filter(|s| !s.is_empty())
    }

    /// Tells `session` what a read into [`Self::space`] gave: bytes (what it does not
    /// consume stays here), end of stream or an error, or the deadline (a timeout).
    pub fn on_read(&mut self, session: &mut Session, now: Instant, result: io::Result<usize>) {
        deliver_read(
            Side::Target,
            &mut self.buf,
            &mut self.len,
            session,
            now,
            result,
        );
    }

    /// Ends a chain whose hop sent more than [`MAX_TARGET_INPUT`] without a complete answer
    /// (a correct hop machine fails before that).
    pub fn on_full(&mut self, session: &mut Session, now: Instant) {
        Side::Target.gone(session, now);
    }

    /// What is left: the target's first bytes for the client.
    pub fn into_pending(mut self) -> Vec<u8> {
        self.buf.truncate(self.len);
        self.buf
    }
}

/// Which connection a handshake-time read came from.
#[derive(Debug, Clone, Copy)]
enum Side {
    /// The client (SOCKS handshake).
    Client,
    /// The outgoing connection (parent chain negotiation).
    Target,
}

impl Side {
    /// This side reached end of stream or failed.
    fn gone(self, session: &mut Session, now: Instant) {
        match self {
            Side::Client => session.handle_client_eof(now),
            Side::Target => session.handle_target_closed(now),
        }
    }
}

/// What a read into `buf[*len..]` means for `session`, for both input buffers: bytes are
/// fed to the session (what it does not consume moves to the front and stays), end of
/// stream or an error means the side is gone, a timeout lets the session's deadline fire.
fn deliver_read(
    side: Side,
    buf: &mut [u8],
    len: &mut usize,
    session: &mut Session,
    now: Instant,
    result: io::Result<usize>,
) {
    match result {
        Ok(0) => side.gone(session, now),
        Ok(n) => {
            *len = (*len + n).min(buf.len());
            let held = buf.get(..*len).unwrap_or_default();
            let used = match side {
                Side::Client => session.handle_input(now, held),
                Side::Target => session.handle_target_input(now, held),
            }
            .min(*len);
            buf.copy_within(used..*len, 0);
            *len -= used;
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            session.handle_timeout(now)
        }
        Err(_) => side.gone(session, now),
    }
}
