//! The handshake input buffer of one connection and what a client read means for the
//! session, shared by both runtimes' drivers.

use std::io;
use std::time::Instant;
use triproxy_policy::session::Session;

/// Bytes of handshake input held per connection. The longest SOCKS message (a SOCKS4a
/// request with a 255-byte user id and a 255-byte name) is 520 bytes, so one whole message
/// always fits; anything the machine leaves unconsumed after the request is pipelined
/// client data for the target.
pub const HANDSHAKE_BUFFER: usize = 1024;

/// Client bytes read during the handshake and not yet consumed by the session.
#[derive(Debug)]
pub struct HandshakeInput {
    buf: [u8; HANDSHAKE_BUFFER],
    len: usize,
}

impl Default for HandshakeInput {
    fn default() -> Self {
        HandshakeInput {
            buf: [0; HANDSHAKE_BUFFER],
            len: 0,
        }
    }
}

impl HandshakeInput {
    /// Room for the next read, or `None` when the buffer is full (which a correct machine
    /// never lets happen: [`Self::on_read`] then ends the session instead of spinning).
    pub fn space(&mut self) -> Option<&mut [u8]> {
        self.buf.get_mut(self.len..).filter(|s| !s.is_empty())
    }

    /// Tells `session` what a read into [`Self::space`] gave: bytes (fed to the machine;
    /// what it does not consume stays here), end of stream, a timeout, or an error.
    pub fn on_read(&mut self, session: &mut Session, result: io::Result<usize>) {
        let now = Instant::now();
        match result {
            Ok(0) => session.handle_client_eof(now),
            Ok(n) => {
                self.len = (self.len + n).min(HANDSHAKE_BUFFER);
                let used = session
                    .handle_input(now, &self.buf[..self.len])
                    .min(self.len);
                self.buf.copy_within(used..self.len, 0);
                self.len -= used;
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
            Err(_) => session.handle_client_eof(now),
        }
    }

    /// Ends a session whose buffer is full (see [`Self::space`]).
    pub fn on_full(&mut self, session: &mut Session) {
        session.handle_client_eof(Instant::now());
    }

    /// Bytes the client sent after its request (pipelined data for the target).
    pub fn pending(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

/// Idle handshake buffers kept for reuse by [`PooledInput`].
pub const MAX_IDLE_INPUTS: usize = 64;

// Boxes on purpose: taking one out and handing it back moves a pointer, not 1 KiB.
#[allow(clippy::vec_box)]
static INPUTS: std::sync::Mutex<Vec<Box<HandshakeInput>>> = std::sync::Mutex::new(Vec::new());

/// A [`HandshakeInput`] on the heap, taken from a process-wide pool and given back (empty)
/// when dropped.
///
/// For the thread-per-connection runtime: as a local it would add 1 KiB to the frame under
/// the deepest handshake calls (and every idle tunnel's thread keeps its deepest stack page
/// resident); as a plain `Box` it would, once freed, stay in the freeing thread's allocator
/// cache, one per idle thread. The pool keeps the buffers shared instead.
#[derive(Debug)]
pub struct PooledInput(Option<Box<HandshakeInput>>);

impl PooledInput {
    /// An empty input buffer from the pool, or a new one.
    pub fn take() -> PooledInput {
        let reused = INPUTS.lock().unwrap_or_else(|p| p.into_inner()).pop();
        PooledInput(Some(reused.unwrap_or_default()))
    }
}

impl std::ops::Deref for PooledInput {
    type Target = HandshakeInput;
    fn deref(&self) -> &HandshakeInput {
        // Always `Some` until drop.
        self.0.as_deref().unwrap_or(&EMPTY_INPUT)
    }
}

impl std::ops::DerefMut for PooledInput {
    fn deref_mut(&mut self) -> &mut HandshakeInput {
        self.0.get_or_insert_with(Box::default)
    }
}

/// What a `PooledInput` reads as if its buffer were ever missing (it never is).
static EMPTY_INPUT: HandshakeInput = HandshakeInput {
    buf: [0; HANDSHAKE_BUFFER],
    len: 0,
};

impl Drop for PooledInput {
    fn drop(&mut self) {
        if let Some(mut input) = self.0.take() {
            input.len = 0;
            let mut pool = INPUTS.lock().unwrap_or_else(|p| p.into_inner());
            if pool.len() < MAX_IDLE_INPUTS {
                pool.push(input);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooled_input_comes_back_empty() {
        let mut a = PooledInput::take();
        if let Some(space) = a.space() {
            space[..3].copy_from_slice(b"abc");
        }
        a.len = 3;
        assert_eq!(a.pending(), b"abc");
        drop(a);
        let b = PooledInput::take();
        assert!(b.pending().is_empty(), "reused buffers start empty");
    }
}
