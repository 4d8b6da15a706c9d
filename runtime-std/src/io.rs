//! The blocking runtime's I/O primitives for the shared executor
//! ([`triproxy_policy::exec`]), and the function that serves one connection with them.
//!
//! Every call blocks the connection's own thread, so every future here is ready the first
//! time it is polled; [`serve_connection`] polls the executor's future once, in place.

use crate::hooks::Hooks;
use crate::net;
use crate::store::Store;
use crate::sys;
use rustix::event::PollFd;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::CivilTime;
use triproxy_policy::exec::{self, Accepted, Interest, Io};
use triproxy_policy::relay::Outcome;
use triproxy_policy::service::{DatagramService, RelayMode, ServicePolicy, SourceAddrs};
use triproxy_policy::session::{BindError, ConnectError, LogRecord, ResolveError};
use triproxy_wire::DomainName;

/// Serves one client (accepted from `peer` by a listener on `listen`) until its session
/// ends; both sockets are closed on return.
pub fn serve_connection(
    client: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: &Hooks,
    slot: &Arc<crate::ServiceSlot>,
) {
    let Ok(local) = net::accepted_local(listen, &client) else {
        // The client is already gone; there is no one to answer and nothing to log.
        return;
    };
    // Dropped before `client` (arguments outlive locals): see `live::Registration`.
    let live = crate::live::register(std::os::fd::AsFd::as_fd(&client), slot, hooks);
    let io = StdIo {
        hooks,
        live: Some(&live),
    };
    let origin = exec::Origin {
        peer,
        local,
        time: (hooks.civil_time)(),
    };
    if let Some(mut tunnel) = handshake(&io, &client, &origin, &policy) {
        relay(&io, &client, &mut tunnel);
    }
}

/// Serves the datagram service `service` on `socket` (bound to `local`), with the settings
/// in `slot` as they are at each new client or query (at most the `maxconn` of its start
/// at once), on the calling thread until the service is stopped.
pub fn serve_datagrams(
    socket: &UdpSocket,
    local: SocketAddr,
    slot: &Arc<crate::ServiceSlot>,
    service: &DatagramService,
) {
    let hooks = slot.following_hooks();
    let io = StdIo {
        hooks: &hooks,
        live: None,
    };
    let policy = || slot.policy();
    run_to_end(std::pin::pin!(exec::serve_datagrams(
        &io,
        socket,
        local,
        &policy,
        service,
        slot.load().maxconn,
        slot.stop_flag(),
    )));
}

/// The handshake phase, in its own frame: gone from the stack before the relay starts.
#[inline(never)]
fn handshake(
    io: &StdIo<'_>,
    client: &TcpStream,
    origin: &exec::Origin,
    policy: &Arc<ServicePolicy>,
) -> Option<exec::Tunnel<TcpStream>> {
    run_to_end(std::pin::pin!(exec::handshake(io, client, origin, policy)))
}

/// The tunnel phase, in its own frame.
#[inline(never)]
fn relay(io: &StdIo<'_>, client: &TcpStream, tunnel: &mut exec::Tunnel<TcpStream>) {
    run_to_end(std::pin::pin!(exec::tunnel(io, client, tunnel)));
}

/// Polls a future of [`StdIo`] calls to its end. Those calls block instead of returning
/// `Pending`, so the first poll finishes; should a future ever pend, the loop yields the
/// thread between polls rather than park without a waker.
fn run_to_end<F: std::future::Future>(mut future: std::pin::Pin<&mut F>) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

/// The blocking primitives. See the module documentation.
struct StdIo<'a> {
    hooks: &'a Hooks,
    /// The connection's place among the live ones (none for a datagram loop).
    live: Option<&'a crate::live::Registration>,
}

/// Time left until `deadline` (at least 1 ms: a zero timeout means "none" to std).
fn left(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then(|| left.max(Duration::from_millis(1)))
}

impl Io for StdIo<'_> {
    type Stream = TcpStream;
    type Listener = TcpListener;
    type Store = Store;
    type Datagram = UdpSocket;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn civil_time(&self) -> CivilTime {
        (self.hooks.civil_time)()
    }

    fn log(&self, record: &LogRecord) {
        (self.hooks.log)(record);
    }

    fn established(&self, session: &triproxy_policy::session::Session) {
        if let Some(live) = self.live {
            live.set_standing(session.standing());
        }
    }

    fn revoked(&self) -> Option<triproxy_wire::LogCode> {
        self.live.and_then(crate::live::Registration::revoked)
    }

    async fn read(
        &self,
        stream: &TcpStream,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        let timeout = match deadline {
            Some(d) => Some(left(d).ok_or(io::ErrorKind::TimedOut)?),
            None => None,
        };
        stream.set_read_timeout(timeout)?;
        (&*stream).read(buf)
    }

    fn try_read(&self, stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        // Only called after poll(2) said readable: this read does not block.
        (&*stream).read(buf)
    }

    fn try_write(&self, stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
        (&*stream).write(bytes)
    }

    fn prepare_forwarding(&self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)
    }

    async fn write_all(&self, stream: &TcpStream, bytes: &[u8]) -> io::Result<()> {
        (&*stream).write_all(bytes)
    }

    fn udp_bind(&self, local: SocketAddr) -> io::Result<(UdpSocket, SocketAddr)> {
        let socket = UdpSocket::bind(local)?;
        // Non-blocking: receiving waits in poll(2) (several sockets at once, with a
        // deadline), and a send that would block drops the datagram, as UDP may.
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        Ok((socket, addr))
    }

    fn try_recv_from(&self, socket: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        socket.recv_from(buf)
    }

    async fn wait_readable(
        &self,
        stream: Option<&TcpStream>,
        sockets: &[&UdpSocket],
        deadline: Option<Instant>,
    ) -> io::Result<(bool, Vec<usize>)> {
        let readable = sys::interest(true, false);
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(sockets.len() + 1);
        fds.extend(sockets.iter().map(|s| PollFd::new(*s, readable)));
        if let Some(s) = stream {
            fds.push(PollFd::new(s, readable));
        }
        let timeout = match deadline {
            Some(d) => match left(d) {
                Some(t) => t + Duration::from_micros(999),
                None => return Ok((false, Vec::new())),
            },
            None => Duration::MAX,
        };
        match sys::poll(&mut fds, timeout) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        let ready = |f: &PollFd<'_>| sys::readiness(f.revents()).read;
        let stream_ready = stream.is_some() && fds.last().is_some_and(ready);
        let ready_sockets = fds
            .iter()
            .take(sockets.len())
            .enumerate()
            .filter(|(_, f)| ready(f))
            .map(|(i, _)| i)
            .collect();
        Ok((stream_ready, ready_sockets))
    }

    async fn send_to(&self, socket: &UdpSocket, bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        socket.send_to(bytes, to)
    }

    async fn recv_from(
        &self,
        socket: &UdpSocket,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<(usize, SocketAddr)> {
        loop {
            match socket.recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            let wait = match deadline {
                Some(d) => left(d).ok_or(io::ErrorKind::TimedOut)?,
                None => Duration::MAX,
            };
            let mut fds = [PollFd::new(socket, sys::interest(true, false))];
            match sys::poll(&mut fds, wait) {
                Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
                _ => {}
            }
        }
    }

    async fn resolve(&self, host: DomainName, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        net::resolve(&host, port)
    }

    async fn connect(
        &self,
        addrs: &[SocketAddr],
        timeout: Duration,
        source: SourceAddrs,
    ) -> Result<(TcpStream, SocketAddr, SocketAddr), ConnectError> {
        net::connect(addrs, timeout, source)
    }

    fn listen(&self, ip: IpAddr) -> Result<(TcpListener, SocketAddr), BindError> {
        let listener = net::listen(SocketAddr::new(ip, 0), 1).map_err(|_| BindError::Listen)?;
        let addr = listener.local_addr().map_err(|_| BindError::Listen)?;
        Ok((listener, addr))
    }

    async fn accept(
        &self,
        listener: &TcpListener,
        client: &TcpStream,
        watch_client: bool,
        deadline: Instant,
    ) -> Accepted<TcpStream> {
        loop {
            let Some(timeout) = left(deadline) else {
                return Accepted::Timeout;
            };
            let mut fds = [
                PollFd::new(listener, sys::interest(true, false)),
                PollFd::new(client, sys::interest(true, false)),
            ];
            let watched = if watch_client { 2 } else { 1 };
            match sys::poll(fds.get_mut(..watched).unwrap_or_default(), timeout) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Accepted::Failed,
            }
            let [listener_ready, client_ready] = fds.map(|f| !f.revents().is_empty());
            if listener_ready {
                return match listener.accept() {
                    Ok((stream, peer)) => match stream.local_addr() {
                        Ok(local) => Accepted::Peer(stream, local, peer),
                        Err(_) => Accepted::Failed,
                    },
                    Err(_) => Accepted::Failed,
                };
            }
            if client_ready {
                return Accepted::ClientReadable;
            }
        }
    }

    fn start_relay(&self, client: &TcpStream, target: &TcpStream) -> io::Result<()> {
        client.set_nonblocking(true)?;
        target.set_nonblocking(true)
    }

    fn store(&self, mode: RelayMode, early: &[u8]) -> Store {
        Store::new(mode, early)
    }

    fn fill(&self, store: &mut Store, src: &TcpStream, max: usize) -> Outcome {
        Outcome::of(store.fill(src, max))
    }

    fn flush(&self, store: &mut Store, dst: &TcpStream) -> Outcome {
        Outcome::of(store.flush(dst))
    }

    fn shutdown(&self, stream: &TcpStream, how: Shutdown) {
        let _ = stream.shutdown(how);
    }

    async fn wait(
        &self,
        client: (&TcpStream, Interest),
        target: (&TcpStream, Interest),
        deadline: Instant,
    ) -> io::Result<[Interest; 2]> {
        // A socket awaited for nothing is left out: poll(2) would still report its
        // hang-up, again and again, to a relay that has nothing to do on it.
        let mut fds = [client, target].map(|(s, i)| PollFd::new(s, sys::interest(i.read, i.write)));
        let watched = match (client.1.is_empty(), target.1.is_empty()) {
            (false, false) => 2,
            (false, true) => 1,
            (true, false) => {
                fds.swap(0, 1);
                1
            }
            (true, true) => 0,
        };
        // Round up: waking a millisecond early would only find the pipes still spent.
        let timeout = left(deadline).map_or(Duration::ZERO, |t| t + Duration::from_micros(999));
        match sys::poll(fds.get_mut(..watched).unwrap_or_default(), timeout) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        let mut seen = fds.map(|f| sys::readiness(f.revents()));
        if client.1.is_empty() {
            seen.swap(0, 1);
        }
        Ok(seen)
    }
}
