//! The system calls the relay needs beyond std: pipes, `splice(2)` and `poll(2)` through
//! rustix's safe wrappers, and one socket option rustix does not wrap.

#![allow(unsafe_code)]

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::pipe::{PipeFlags, SpliceFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

/// Both ends of a pipe.
#[derive(Debug)]
pub struct Pipe {
    /// The read end.
    pub read: OwnedFd,
    /// The write end.
    pub write: OwnedFd,
}

/// A non-blocking, close-on-exec pipe.
pub fn pipe() -> io::Result<Pipe> {
    let (read, write) = rustix::pipe::pipe_with(PipeFlags::NONBLOCK | PipeFlags::CLOEXEC)?;
    Ok(Pipe { read, write })
}

/// Asks the kernel for a pipe of `bytes` capacity; returns the capacity it got.
pub fn set_pipe_size(pipe: &Pipe, bytes: usize) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_setpipe_size(&pipe.write, bytes)?)
}

/// A pipe's capacity.
pub fn pipe_size(pipe: &Pipe) -> io::Result<usize> {
    Ok(rustix::pipe::fcntl_getpipe_size(&pipe.write)?)
}

/// Moves at most `len` bytes from `from` to `to` in the kernel, one of them a pipe,
/// without blocking on the pipe.
pub fn splice(from: impl AsFd, to: impl AsFd, len: usize) -> io::Result<usize> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    Ok(rustix::pipe::splice(from, None, to, None, len, flags)?)
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on a socket that is about to be bound to a source
/// address with port 0: the kernel then picks the port at `connect()` time, per
/// destination, instead of reserving an ephemeral port at `bind()` time. Without it,
/// thousands of bound sockets in TIME_WAIT exhaust the port range.
pub fn set_bind_address_no_port(socket: &impl AsRawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: the value pointer and length describe a live c_int on our stack; the
    // descriptor is borrowed from an open socket for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Readiness asked of one descriptor: readable, writable, either or none.
pub fn interest(read: bool, write: bool) -> PollFlags {
    let mut flags = PollFlags::empty();
    if read {
        flags |= PollFlags::IN;
    }
    if write {
        flags |= PollFlags::OUT;
    }
    flags
}

/// What `revents` says about a descriptor: an error or hang-up makes it both readable
/// and writable (the next read or write reports it).
pub fn readiness(revents: PollFlags) -> triproxy_policy::exec::Interest {
    let failed = revents.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL);
    triproxy_policy::exec::Interest {
        read: failed || revents.contains(PollFlags::IN),
        write: failed || revents.contains(PollFlags::OUT),
    }
}

/// Waits until one of `fds` is ready or `timeout` passes; returns how many are ready.
/// A descriptor asked for nothing is still reported for errors and hang-ups, which is
/// what a relay wants to learn early.
pub fn poll(fds: &mut [PollFd<'_>], timeout: Duration) -> io::Result<usize> {
    let timeout = Timespec::try_from(timeout).unwrap_or(Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    Ok(rustix::event::poll(fds, Some(&timeout))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn splice_moves_bytes_through_a_pipe() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        a.write_all(b"zero-copy").unwrap();
        let p = pipe().unwrap();
        let mut fds = [PollFd::new(&b, interest(true, false))];
        assert_eq!(poll(&mut fds, Duration::from_secs(5)).unwrap(), 1);
        b.set_nonblocking(true).unwrap();
        assert_eq!(splice(&b, &p.write, 1 << 16).unwrap(), 9);
        let mut out = [0u8; 16];
        let n = std::fs::File::from(p.read.try_clone().unwrap())
            .read(&mut out)
            .unwrap();
        assert_eq!(&out[..n], b"zero-copy");
        assert_eq!(set_pipe_size(&p, 128 * 1024).unwrap(), 128 * 1024);
        assert_eq!(pipe_size(&p).unwrap(), 128 * 1024);
        let e = splice(&b, &p.write, 1 << 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        let mut none = [PollFd::new(&b, interest(false, false))];
        assert_eq!(poll(&mut none, Duration::ZERO).unwrap(), 0);
    }
}
