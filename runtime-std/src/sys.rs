//! The few Linux syscalls std does not wrap: `pipe2(2)`, `splice(2)` and `poll(2)`.
//!
//! This is the only module of the runtimes with `unsafe`; each block says why it is sound.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking pipe, both ends owned.
#[derive(Debug)]
pub struct Pipe {
    /// The end bytes are read from.
    pub read: OwnedFd,
    /// The end bytes are written to.
    pub write: OwnedFd,
}

/// Creates a non-blocking, close-on-exec pipe.
pub fn pipe() -> io::Result<Pipe> {
    let mut fds: [libc::c_int; 2] = [-1, -1];
    // SAFETY: `fds` is a valid, writable array of exactly the two ints pipe2 fills in; the
    // flags are valid constants.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open, new, and owned by nobody else;
    // each is wrapped exactly once.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(Pipe { read, write })
}

/// Asks for a pipe capacity of `bytes` (rounded up to pages by the kernel; capped by
/// `/proc/sys/fs/pipe-max-size`); returns the capacity in force afterwards.
pub fn set_pipe_size(pipe: &Pipe, bytes: usize) -> io::Result<usize> {
    let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int argument and touches no user memory; the
    // descriptor is borrowed from a live pipe.
    let rc = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// The pipe's capacity in bytes. Not always the 64 KiB default: an unprivileged user past
/// `/proc/sys/fs/pipe-user-pages-soft` gets pipes of one or two pages.
pub fn pipe_size(pipe: &Pipe) -> io::Result<usize> {
    // SAFETY: F_GETPIPE_SZ takes no argument and touches no user memory; the descriptor is
    // borrowed from a live pipe.
    let rc = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_GETPIPE_SZ) };
    usize::try_from(rc).map_err(|_| io::Error::last_os_error())
}

/// Moves up to `len` bytes from `from` to `to` inside the kernel without blocking on the
/// pipe (`SPLICE_F_NONBLOCK`); the socket side must be non-blocking itself. `Ok(0)` means
/// end of stream on `from`.
pub fn splice(from: &impl AsRawFd, to: &impl AsRawFd, len: usize) -> io::Result<usize> {
    let (from, to): (RawFd, RawFd) = (from.as_raw_fd(), to.as_raw_fd());
    // SAFETY: splice reads no user memory: it takes two descriptors the caller keeps open
    // for the duration of the call (they are borrowed), null offsets (both are streams),
    // a length and flags.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
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

/// Interest in one descriptor for [`poll`].
pub type PollFd = libc::pollfd;

/// Readable.
pub const POLLIN: i16 = libc::POLLIN;
/// Writable.
pub const POLLOUT: i16 = libc::POLLOUT;

/// A `pollfd` for `fd` with `events`; no interest (`events == 0`) gives an entry poll
/// ignores, so a half-closed socket's `POLLHUP` cannot wake the caller in a loop.
pub fn poll_fd(fd: &impl AsRawFd, events: i16) -> PollFd {
    PollFd {
        fd: if events == 0 { -1 } else { fd.as_raw_fd() },
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `timeout_ms` passes; returns how many are ready.
pub fn poll(fds: &mut [PollFd], timeout_ms: i32) -> io::Result<usize> {
    let len = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: the pointer and length describe a valid slice of pollfd that is exclusively
    // borrowed for the call; poll writes only the `revents` fields within it.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), len, timeout_ms) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
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
        let mut fds = [poll_fd(&b, POLLIN)];
        assert_eq!(poll(&mut fds, 5000).unwrap(), 1);
        b.set_nonblocking(true).unwrap();
        assert_eq!(splice(&b, &p.write, 1 << 16).unwrap(), 9);
        let mut out = [0u8; 16];
        let n = std::fs::File::from(p.read.try_clone().unwrap())
            .read(&mut out)
            .unwrap();
        assert_eq!(&out[..n], b"zero-copy");
        assert_eq!(set_pipe_size(&p, 128 * 1024).unwrap(), 128 * 1024);
        assert_eq!(pipe_size(&p).unwrap(), 128 * 1024);
        // Nothing more: the non-blocking splice says so instead of waiting.
        let e = splice(&b, &p.write, 1 << 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        // A negative fd (no interest) is ignored by poll.
        let mut none = [poll_fd(&b, 0)];
        assert_eq!(poll(&mut none, 0).unwrap(), 0);
    }
}
