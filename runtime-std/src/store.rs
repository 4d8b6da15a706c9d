//! Where one relay direction holds its bytes in flight, and the syscalls that fill and
//! empty it. Shared by both runtimes (the smol one calls it on the sockets it wraps).
//!
//! Zero-copy mode splices `src -> pipe -> dst` in the kernel; buffered mode reads into a
//! user-space buffer and writes it out. Either way the pipe or buffer comes from
//! the pipe and buffer pool (`crate::pool`) only while bytes are held and goes back when empty: an idle tunnel
//! holds neither. What to move, when, and how much is the relay machine's decision
//! (`triproxy_policy::relay`); this module only performs it.

use crate::pool;
use crate::sys::{self, Pipe};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use triproxy_policy::service::RelayMode;

#[derive(Debug)]
enum Held {
    Nothing,
    /// A pipe with its capacity, holding `len` bytes.
    Pipe {
        pipe: (Pipe, usize),
        len: usize,
    },
    /// A buffer holding `buf[start..end]`.
    Buffer {
        buf: Box<[u8]>,
        start: usize,
        end: usize,
    },
}

/// One direction's bytes in flight. See the module documentation.
#[derive(Debug)]
pub struct Store {
    mode: RelayMode,
    held: Held,
}

impl Store {
    /// A store relaying in `mode` that holds `early` first (bytes read with the
    /// handshake).
    pub fn new(mode: RelayMode, early: &[u8]) -> Store {
        let held = if early.is_empty() {
            Held::Nothing
        } else {
            let mut buf = pool::take_buffer();
            if buf.len() < early.len() {
                buf = Box::from(early);
            } else if let Some(dst) = buf.get_mut(..early.len()) {
                dst.copy_from_slice(early);
            }
            Held::Buffer {
                buf,
                start: 0,
                end: early.len(),
            }
        };
        Store { mode, held }
    }

    /// Whether bytes are held (a pipe or buffer is taken).
    pub fn is_holding(&self) -> bool {
        !matches!(self.held, Held::Nothing)
    }

    /// Reads or splices at most `max` bytes from `src` into this (empty) store: the count,
    /// 0 at end of stream. Where the kernel refuses to splice this pair, the store relays
    /// through buffers from then on.
    pub fn fill(&mut self, src: &TcpStream, max: usize) -> io::Result<usize> {
        if self.mode == RelayMode::ZeroCopy {
            if let Some(pipe) = pool::take_pipe() {
                let room = pipe.1.min(max);
                return match sys::splice(src, &pipe.0.write, room) {
                    Ok(0) => {
                        pool::give_pipe(pipe);
                        Ok(0)
                    }
                    Ok(len) => {
                        self.held = Held::Pipe { pipe, len };
                        Ok(len)
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        pool::give_pipe(pipe);
                        self.mode = RelayMode::Buffered;
                        self.fill(src, max)
                    }
                    Err(e) => {
                        pool::give_pipe(pipe);
                        Err(e)
                    }
                };
            }
            // Out of descriptors for a pipe: copy this chunk instead.
        }
        let mut buf = pool::take_buffer();
        let room = buf.len().min(max);
        match (&*src).read(buf.get_mut(..room).unwrap_or_default()) {
            Ok(n) if n > 0 => {
                self.held = Held::Buffer {
                    buf,
                    start: 0,
                    end: n,
                };
                Ok(n)
            }
            other => {
                pool::give_buffer(buf);
                other
            }
        }
    }

    /// Writes what is held to `dst`: how many bytes left the store.
    pub fn flush(&mut self, dst: &TcpStream) -> io::Result<usize> {
        let written = match &mut self.held {
            Held::Nothing => return Ok(0),
            Held::Pipe { pipe, len } => {
                let n = sys::splice(&pipe.0.read, dst, *len)?;
                *len -= n.min(*len);
                n
            }
            Held::Buffer { buf, start, end } => {
                let chunk = buf.get(*start..*end).unwrap_or_default();
                let n = (&*dst).write(chunk)?;
                *start += n;
                n
            }
        };
        self.release_if_empty();
        Ok(written)
    }

    /// Gives an emptied pipe or buffer back to the pool.
    fn release_if_empty(&mut self) {
        let empty = match &self.held {
            Held::Nothing => false,
            Held::Pipe { len, .. } => *len == 0,
            Held::Buffer { start, end, .. } => start >= end,
        };
        if empty {
            self.release();
        }
    }

    fn release(&mut self) {
        match std::mem::replace(&mut self.held, Held::Nothing) {
            // A pipe that still holds bytes is closed, not reused.
            Held::Pipe { pipe, len: 0 } => pool::give_pipe(pipe),
            Held::Pipe { .. } | Held::Nothing => {}
            Held::Buffer { buf, .. } => pool::give_buffer(buf),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Shutdown, TcpListener};

    /// A connected pair of loopback sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn delivers_early_bytes_first_then_the_stream_in_either_mode() {
        for mode in [RelayMode::ZeroCopy, RelayMode::Buffered] {
            let (mut writer, src) = pair();
            let (dst, mut reader) = pair();
            let mut store = Store::new(mode, b"early:");
            assert_eq!(store.flush(&dst).unwrap(), 6);
            assert!(
                !store.is_holding(),
                "an emptied store gives its buffer back"
            );
            writer.write_all(b"stream").unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
            let mut n = 0;
            while n < 6 {
                n += store.fill(&src, usize::MAX).unwrap();
                assert!(store.is_holding());
                store.flush(&dst).unwrap();
            }
            assert_eq!(store.fill(&src, usize::MAX).unwrap(), 0, "end of stream");
            dst.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"early:stream", "{mode:?}");
        }
    }

    #[test]
    fn a_read_is_capped_at_max() {
        let (mut writer, src) = pair();
        writer.write_all(&[7u8; 100]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut store = Store::new(RelayMode::Buffered, b"");
        assert_eq!(store.fill(&src, 10).unwrap(), 10);
    }
}
