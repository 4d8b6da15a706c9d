//! One direction of a tunnel as a non-blocking state machine, shared by both runtimes.
//!
//! [`Pump::run`] moves bytes from `src` to `dst` until one of them would block or the
//! direction ends, and says what it waits for. The std runtime waits with `poll(2)`, the
//! smol runtime with `readable()`/`writable()`; the copying itself is this one code path.
//!
//! Zero-copy mode splices `src -> pipe -> dst` in the kernel; buffered mode reads into a
//! user-space buffer and writes it out. Either way the pipe or buffer is taken from
//! [`crate::pool`] only while bytes are in flight and returned when empty. End of stream
//! on `src` is passed on as `shutdown(dst, Write)` once everything read was delivered, so
//! the other direction keeps flowing (half-close).

use crate::pool;
use crate::relay::PumpEnd;
use crate::sys::{self, Pipe};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;
use triproxy_policy::bandlim::{Allowance, Pacer};
use triproxy_policy::service::RelayMode;

/// Fill/flush rounds per call before yielding to the other direction.
const ROUNDS: usize = 16;

/// What a pump waits for before it can make progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// `src` must become readable.
    WantRead,
    /// `dst` must become writable.
    WantWrite,
    /// The bandwidth pipes are spent: run again at this moment.
    WaitUntil(Instant),
    /// The direction is over.
    Done(PumpEnd),
}

#[derive(Debug)]
enum Held {
    Nothing,
    /// A pipe with its capacity, holding `len` bytes.
    Pipe {
        pipe: (Pipe, usize),
        len: usize,
    },
    Buffer {
        buf: Box<[u8]>,
        start: usize,
        end: usize,
    },
}

/// One direction of a tunnel. See the module documentation.
#[derive(Debug)]
pub struct Pump {
    mode: RelayMode,
    pacer: Pacer,
    held: Held,
    eof: bool,
    moved: u64,
}

impl Pump {
    /// A pump that relays in `mode` (zero-copy falls back to buffered where `splice` is
    /// refused, for example on a non-socket).
    pub fn new(mode: RelayMode) -> Self {
        Pump {
            mode,
            pacer: Pacer::default(),
            held: Held::Nothing,
            eof: false,
            moved: 0,
        }
    }

    /// A pump whose first bytes to deliver are `bytes` (client data that arrived with the
    /// handshake), before anything read from `src`. At most one pool buffer (64 KiB).
    pub fn with_pending(mode: RelayMode, bytes: &[u8]) -> Self {
        let mut pump = Pump::new(mode);
        if !bytes.is_empty() {
            let mut buf = pool::take_buffer();
            let n = bytes.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
            pump.held = Held::Buffer {
                buf,
                start: 0,
                end: n,
            };
        }
        pump
    }

    /// Paces this pump's reads through `pacer` (bytes already held, such as pending
    /// handshake bytes, are charged now).
    pub fn paced(mut self, pacer: Pacer) -> Self {
        let held = match &self.held {
            Held::Buffer { start, end, .. } => end.saturating_sub(*start),
            Held::Pipe { len, .. } => *len,
            Held::Nothing => 0,
        };
        if held > 0 {
            pacer.charge(Instant::now(), held);
        }
        self.pacer = pacer;
        self
    }

    /// Bytes delivered to `dst` so far.
    pub fn moved(&self) -> u64 {
        self.moved
    }

    /// Whether this pump holds a pipe or buffer (bytes in flight).
    pub fn is_holding(&self) -> bool {
        !matches!(self.held, Held::Nothing)
    }

    /// Moves bytes until something would block or the direction ends. Both sockets must be
    /// non-blocking. Returns what to wait for and whether any byte moved (activity).
    pub fn run(&mut self, src: &TcpStream, dst: &TcpStream) -> (Progress, bool) {
        let mut active = false;
        for _ in 0..ROUNDS {
            match self.flush(dst) {
                Ok(0) => {}
                Ok(_) => {
                    active = true;
                    if self.is_holding() {
                        continue;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (Progress::WantWrite, active)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return (self.end(PumpEnd::DestinationError), active),
            }
            if self.eof {
                let _ = dst.shutdown(Shutdown::Write);
                return (self.end(PumpEnd::Eof), active);
            }
            match self.fill(src) {
                Ok(Fill::Data) => active = true,
                Ok(Fill::Eof) => self.eof = true,
                Ok(Fill::Wait(until)) => return (Progress::WaitUntil(until), active),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return (Progress::WantRead, active)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return (self.end(PumpEnd::SourceError), active),
            }
        }
        let next = if self.is_holding() {
            Progress::WantWrite
        } else {
            Progress::WantRead
        };
        (next, active)
    }

    fn end(&mut self, end: PumpEnd) -> Progress {
        // Undelivered bytes are dropped with their pipe or buffer; an empty one goes back.
        self.release_if_empty();
        self.held = Held::Nothing;
        Progress::Done(end)
    }

    /// Writes held bytes to `dst`; returns how many were written (0: nothing held).
    fn flush(&mut self, dst: &TcpStream) -> io::Result<usize> {
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
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        self.moved += written as u64;
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
            match std::mem::replace(&mut self.held, Held::Nothing) {
                Held::Pipe { pipe, .. } => pool::give_pipe(pipe),
                Held::Buffer { buf, .. } => pool::give_buffer(buf),
                Held::Nothing => {}
            }
        }
    }

    /// Reads from `src` into a fresh pipe or buffer, no more than the pacer allows.
    fn fill(&mut self, src: &TcpStream) -> io::Result<Fill> {
        let mut limit = usize::MAX;
        let mut paced_at = None;
        if !self.pacer.is_empty() {
            let now = Instant::now();
            match self.pacer.allowance(now, usize::MAX) {
                Allowance::Bytes(n) => limit = n,
                Allowance::WaitUntil(until) => return Ok(Fill::Wait(until)),
            }
            paced_at = Some(now);
        }
        let read = self.read_into_new(src, limit)?;
        if let (Some(now), Some(n)) = (paced_at, read) {
            self.pacer.charge(now, n);
        }
        Ok(if read.is_some() {
            Fill::Data
        } else {
            Fill::Eof
        })
    }

    /// Reads at most `limit` bytes from `src` into a fresh pipe or buffer; `None`: end of
    /// stream.
    fn read_into_new(&mut self, src: &TcpStream, limit: usize) -> io::Result<Option<usize>> {
        if self.mode == RelayMode::ZeroCopy {
            if let Some(pipe) = pool::take_pipe() {
                let room = pipe.1.min(limit);
                return match sys::splice(src, &pipe.0.write, room) {
                    Ok(0) => {
                        pool::give_pipe(pipe);
                        Ok(None)
                    }
                    Ok(len) => {
                        self.held = Held::Pipe { pipe, len };
                        Ok(Some(len))
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        // This pair cannot splice: relay it through buffers from now on.
                        pool::give_pipe(pipe);
                        self.mode = RelayMode::Buffered;
                        self.read_into_new(src, limit)
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
        let room = buf.len().min(limit);
        match (&*src).read(buf.get_mut(..room).unwrap_or_default()) {
            Ok(0) => {
                pool::give_buffer(buf);
                Ok(None)
            }
            Ok(n) => {
                self.held = Held::Buffer {
                    buf,
                    start: 0,
                    end: n,
                };
                Ok(Some(n))
            }
            Err(e) => {
                pool::give_buffer(buf);
                Err(e)
            }
        }
    }
}

/// What one read did.
enum Fill {
    /// Bytes are held for `dst`.
    Data,
    /// `src` reached end of stream.
    Eof,
    /// The bandwidth pipes allow no read before this moment.
    Wait(Instant),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A connected pair of loopback sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        (a, b)
    }

    #[test]
    fn delivers_preloaded_bytes_first_then_the_stream_then_the_fin() {
        for mode in [RelayMode::ZeroCopy, RelayMode::Buffered] {
            // writer -> src ... pump ... dst -> reader
            let (mut writer, src) = pair();
            let (dst, mut reader) = pair();
            src.set_nonblocking(true).unwrap();
            dst.set_nonblocking(true).unwrap();
            let mut pump = Pump::with_pending(mode, b"early:");
            writer.write_all(b"stream").unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
            let mut done = None;
            for _ in 0..1000 {
                match pump.run(&src, &dst).0 {
                    Progress::Done(end) => {
                        done = Some(end);
                        break;
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(1)),
                }
            }
            assert_eq!(done, Some(PumpEnd::Eof), "{mode:?}");
            assert_eq!(pump.moved(), 12);
            assert!(!pump.is_holding(), "nothing held after the end");
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            assert_eq!(got, b"early:stream", "{mode:?}: order kept, FIN passed on");
        }
    }
}
