//! Pools of per-connection resources: pipes for `splice` and buffers for `read`/`write`.
//!
//! A tunnel takes a pipe or a buffer only while bytes are in flight and gives it back as
//! soon as it is empty, so an idle tunnel holds neither: 9,000 idle tunnels cost no pipes
//! (file descriptors) and no buffer memory. Each pool keeps at most a fixed number of idle
//! items; the rest are freed.
//!
//! Why pools and not the allocator: a freed buffer stays in the freeing thread's malloc
//! cache, and with a thread per connection that is one stranded buffer per idle thread;
//! a pipe would be two system calls to make and two to close.

use crate::sys::{self, Pipe};
use std::sync::Mutex;

/// At most `max` idle items, shared by every thread.
struct Pool<T> {
    idle: Mutex<Vec<T>>,
    max: usize,
}

impl<T> Pool<T> {
    const fn new(max: usize) -> Pool<T> {
        Pool {
            idle: Mutex::new(Vec::new()),
            max,
        }
    }

    fn take(&self) -> Option<T> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn give(&self, item: T) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max {
            idle.push(item);
        }
    }
}

/// Bytes per relay buffer of the buffered path.
pub const BUFFER_SIZE: usize = 64 * 1024;
/// Idle pipes kept for reuse (each is two descriptors).
pub const MAX_IDLE_PIPES: usize = 64;
/// Idle buffers kept for reuse.
pub const MAX_IDLE_BUFFERS: usize = 64;

static PIPES: Pool<(Pipe, usize)> = Pool::new(MAX_IDLE_PIPES);
static BUFFERS: Pool<Box<[u8]>> = Pool::new(MAX_IDLE_BUFFERS);

/// Capacity asked for each new pipe. The pages are only used while bytes are in flight.
///
/// Measured with `triproxy-load bulk` (1 stream, 3 runs each, quiet machine): 64 KiB pipes
/// reached 0.56-0.67x of direct loopback, 256 KiB 0.75-0.86x, 1 MiB 0.61-0.70x and 4 MiB
/// 0.59-0.63x. Larger pipes drain the source's whole receive queue in one call and then
/// stall on the destination's send buffer, so the two hops alternate instead of
/// overlapping; smaller ones cost more calls per byte.
pub const PIPE_SIZE: usize = 256 * 1024;

/// A pipe from the pool, or a new one (`None` when the process is out of descriptors).
/// Returns the pipe and its capacity.
pub fn take_pipe() -> Option<(Pipe, usize)> {
    PIPES.take().or_else(|| {
        let pipe = sys::pipe().ok()?;
        // A refused size (EPERM past the user's pipe-page quota) leaves the pipe as it is:
        // ask its size rather than assume the default. The pump asks no more of one splice.
        let size = sys::set_pipe_size(&pipe, PIPE_SIZE)
            .or_else(|_| sys::pipe_size(&pipe))
            .unwrap_or(4096);
        Some((pipe, size))
    })
}

/// Returns an empty pipe (and its capacity) to the pool.
pub fn give_pipe(pipe: (Pipe, usize)) {
    PIPES.give(pipe);
}

/// A buffer of [`BUFFER_SIZE`] bytes from the pool, or a new one.
pub fn take_buffer() -> Box<[u8]> {
    BUFFERS
        .take()
        .unwrap_or_else(|| vec![0u8; BUFFER_SIZE].into_boxed_slice())
}

/// Returns a buffer to the pool.
pub fn give_buffer(buf: Box<[u8]>) {
    BUFFERS.give(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_keeps_at_most_its_bound() {
        let pool: Pool<u8> = Pool::new(2);
        for i in 0..5 {
            pool.give(i);
        }
        assert_eq!(
            (pool.take(), pool.take(), pool.take()),
            (Some(1), Some(0), None)
        );
    }
}
