//! Socket set-up shared by both runtimes: listening sockets, outgoing connects, name
//! resolution, and the mapping of OS errors to the session's typed answers.
//!
//! Outgoing sockets are never bound before `connect()`: binding an ephemeral port first is
//! what makes 3proxy and Dante run out of ports when TIME_WAIT piles up.

use crate::sys;
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;
use triproxy_policy::service::SourceAddrs;
use triproxy_policy::session::{ConnectError, ResolveError, MAX_CONNECT_ADDRS};
use triproxy_wire::DomainName;

/// Opens a listening TCP socket on `addr` with `SO_REUSEADDR` and the given backlog.
/// IPv6 listeners are IPv6-only so that `::` and `0.0.0.0` can be served side by side.
/// `TCP_NODELAY` is set on the listener: Linux copies it to every accepted socket, which
/// saves a `setsockopt` per connection (handshake replies must not wait for Nagle).
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Accepts one client as a non-blocking socket (one `accept4`, no `fcntl`/`ioctl` after).
pub fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (socket, peer) =
        socket2::SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    Ok((socket.into(), peer))
}

/// Connects to the first address that accepts within `timeout` each, from `source`'s
/// address of the target's family if one is configured. Returns the stream, its local
/// address and the address it reached, or the last failure when all fail.
pub fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
    source: SourceAddrs,
) -> Result<(TcpStream, SocketAddr, SocketAddr), ConnectError> {
    let mut last = ConnectError::Other;
    for addr in addrs {
        let attempt = outgoing_socket(*addr, source)
            .and_then(|s| s.connect_timeout(&(*addr).into(), timeout).map(|()| s))
            .map(TcpStream::from)
            .and_then(|s| s.local_addr().map(|local| (s, local, *addr)));
        match attempt {
            Ok(connected) => return Ok(connected),
            Err(e) => last = classify_connect_error(&e),
        }
    }
    Err(last)
}

/// The proxy-side address of an accepted connection: the listening address when it names
/// one IP (no syscall needed), else what `getsockname` says.
pub fn accepted_local(listen: SocketAddr, stream: &TcpStream) -> io::Result<SocketAddr> {
    if listen.ip().is_unspecified() {
        stream.local_addr()
    } else {
        Ok(listen)
    }
}

/// The socket for an outgoing connection to `addr`: `TCP_NODELAY` (handshake replies and
/// interactive traffic should not wait for Nagle) and, only when a source address is
/// configured, bound to it with `IP_BIND_ADDRESS_NO_PORT` so the port is chosen at
/// `connect()`. Without a source address nothing is bound.
pub fn outgoing_socket(addr: SocketAddr, source: SourceAddrs) -> io::Result<Socket> {
    outgoing_socket_of(Type::STREAM, addr, source)
}

fn outgoing_socket_of(ty: Type, addr: SocketAddr, source: SourceAddrs) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(Protocol::TCP))?;
    socket.set_tcp_nodelay(true)?;
    if let Some(ip) = source.for_target(&addr) {
        // Best effort for IPv6 sockets (the option lives at the IP level); required for IPv4.
        let no_port = sys::set_bind_address_no_port(&socket);
        if addr.is_ipv4() {
            no_port?;
        }
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    Ok(socket)
}

/// Starts a non-blocking connect to `addr` on a socket created non-blocking (for the smol
/// runtime, which then checks whether it is connected, waiting for writability and
/// `SO_ERROR` only when it is not yet).
pub fn start_connect(addr: SocketAddr, source: SourceAddrs) -> io::Result<TcpStream> {
    let socket = outgoing_socket_of(Type::STREAM.nonblocking(), addr, source)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// Maps an OS error from making or connecting the outgoing socket to the session's answer.
pub fn classify_connect_error(e: &io::Error) -> ConnectError {
    if let Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) = e.raw_os_error() {
        return ConnectError::NoSocket;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ConnectError::TimedOut,
        io::ErrorKind::NetworkUnreachable => ConnectError::NetworkUnreachable,
        io::ErrorKind::HostUnreachable => ConnectError::HostUnreachable,
        _ => ConnectError::Other,
    }
}

/// Resolves `host` with the system resolver (blocking) and orders the result IPv4 first,
/// then IPv6, each in resolver order, at most [`MAX_CONNECT_ADDRS`] addresses.
///
/// 3proxy resolves IPv4 only unless `-6`/`-46`/`-64` is given; triproxy tries both
/// families (IPv4 first) so that names like `localhost` work for IPv6-only targets too.
pub fn resolve(host: &DomainName, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
    let name = host.as_str().ok_or(ResolveError::InvalidName)?;
    let found = (name, port)
        .to_socket_addrs()
        .map_err(|_| ResolveError::NotFound)?;
    Ok(order_addrs(found))
}

/// IPv4 first, then IPv6; duplicates removed; capped at [`MAX_CONNECT_ADDRS`].
pub fn order_addrs(found: impl IntoIterator<Item = SocketAddr>) -> Vec<SocketAddr> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for a in found {
        let list = if a.is_ipv4() { &mut v4 } else { &mut v6 };
        if !list.contains(&a) {
            list.push(a);
        }
    }
    v4.extend(v6);
    v4.truncate(MAX_CONNECT_ADDRS);
    v4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_nodelay_from_the_listener() {
        let l = listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        assert!(a.nodelay().unwrap());
        assert_eq!(
            accepted_local(l.local_addr().unwrap(), &a).unwrap(),
            a.local_addr().unwrap()
        );
    }

    #[test]
    fn ipv4_first_and_capped() {
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(order_addrs([v6, v4, v4]), vec![v4, v6]);
        let many = (1..=20u8).map(|i| SocketAddr::from(([127, 0, 0, i], 80)));
        assert_eq!(order_addrs(many).len(), MAX_CONNECT_ADDRS);
    }

    #[test]
    fn resolves_numeric_and_rejects_non_text() {
        let host = DomainName::new(b"127.0.0.1").unwrap();
        assert_eq!(
            resolve(&host, 9).unwrap(),
            vec!["127.0.0.1:9".parse().unwrap()]
        );
        // (No lookup of an unknown name here: it would query the machine's DNS server,
        // and tests touch loopback only. The session tests cover NotFound.)
        let not_text = DomainName::new(b"\xff\xfe").unwrap();
        assert_eq!(resolve(&not_text, 9), Err(ResolveError::InvalidName));
    }

    #[test]
    fn refused_connect_is_classified() {
        let l = listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        assert_eq!(
            connect(&[addr], Duration::from_secs(2), SourceAddrs::default()).err(),
            Some(ConnectError::Refused)
        );
    }

    #[test]
    fn no_bind_without_source_and_no_port_reserved_with_one() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let plain = outgoing_socket(target, SourceAddrs::default()).unwrap();
        assert!(
            plain.local_addr().is_err()
                || plain.local_addr().unwrap().as_socket().unwrap().port() == 0,
            "an unbound socket has no local port"
        );
        let mut source = SourceAddrs::default();
        source.set("127.0.0.1".parse().unwrap());
        let bound = outgoing_socket(target, source).unwrap();
        let local = bound.local_addr().unwrap().as_socket().unwrap();
        // IP_BIND_ADDRESS_NO_PORT: the address is bound, the port is not taken yet.
        assert_eq!(local, "127.0.0.1:0".parse().unwrap());
        // And a real connection from it gets a port at connect time.
        let l = listen("127.0.0.1:0".parse().unwrap(), 8).unwrap();
        let (s, local, _) =
            connect(&[l.local_addr().unwrap()], Duration::from_secs(2), source).unwrap();
        assert_ne!(local.port(), 0);
        assert_eq!(s.local_addr().unwrap(), local);
        let (_, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    }
}
