//! The async runtime's I/O primitives for the shared executor
//! ([`triproxy_policy::exec`]): the socket calls of runtime-std on non-blocking sockets,
//! waiting with async-io's `readable()`/`writable()` and timers instead of blocking.

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt, FutureExt};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use triproxy_policy::acl::CivilTime;
use triproxy_policy::exec::{self, Accepted, Interest, Io};
use triproxy_policy::relay::Outcome;
use triproxy_policy::service::{DatagramService, RelayMode, ServicePolicy, SourceAddrs};
use triproxy_policy::session::{BindError, ConnectError, LogRecord, ResolveError};
use triproxy_runtime_std::net;
use triproxy_runtime_std::store::Store;
use triproxy_runtime_std::Hooks;
use triproxy_wire::DomainName;

/// The task that serves one client (accepted from `peer` by a listener on `listen`)
/// until its session ends, holding `slot` (its place under `maxconn`) meanwhile; `None`
/// when the client is already gone.
///
/// Everything the task needs is prepared here and captured once by the returned future,
/// which lends it to the executor: moving it into an async fn would store it twice in
/// every idle tunnel's task.
pub(crate) fn serve_connection<T: Send + 'static>(
    client: Async<TcpStream>,
    peer: SocketAddr,
    listen: SocketAddr,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
    slot: T,
    service: &Arc<triproxy_runtime_std::ServiceSlot>,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    let local = net::accepted_local(listen, client.get_ref()).ok()?;
    let origin = exec::Origin {
        peer,
        local,
        time: (hooks.civil_time)(),
    };
    let live = triproxy_runtime_std::live::register(
        std::os::fd::AsFd::as_fd(client.get_ref()),
        service,
        &hooks,
    );
    let conn = Connection {
        io: SmolIo {
            hooks,
            timer: Mutex::new(None),
            live: Some(live),
        },
        client,
    };
    Some(async move {
        let _slot = &slot; // released when the task ends
        exec::serve(&conn.io, &conn.client, &origin, &policy).await;
    })
}

/// A connection's socket and primitives, captured once by its task. The field order is
/// the drop order: `io` (and its registration, which reports the end) goes before
/// `client` is closed, whether the task ends or is cancelled (see
/// `live::Registration`). One captured value rather than locals moved inside the task's
/// body, which the task would store a second time.
struct Connection {
    io: SmolIo,
    client: Async<TcpStream>,
}

/// The task that serves the datagram service `service` on `socket` (bound to `local`),
/// with the settings in `slot` as they are at each new client or query (at most the
/// `maxconn` of its start at once), until the service is stopped.
pub(crate) fn serve_datagrams(
    socket: Async<UdpSocket>,
    local: SocketAddr,
    service: DatagramService,
    slot: Arc<triproxy_runtime_std::ServiceSlot>,
) -> impl Future<Output = ()> + Send + 'static {
    let io = SmolIo {
        hooks: slot.following_hooks(),
        timer: Mutex::new(None),
        live: None,
    };
    async move {
        let policy = || slot.policy();
        let max_clients = slot.load().maxconn;
        let stop = slot.stop_flag();
        exec::serve_datagrams(&io, &socket, local, &policy, &service, max_clients, stop).await;
    }
}

/// The async primitives of one connection.
struct SmolIo {
    hooks: Hooks,
    /// The relay's deadline timer and the moment it is armed for, kept across waits: a
    /// tunnel re-arms it only when it fired or a deadline comes earlier, not on every
    /// wait (each arming is a reactor round trip).
    timer: Mutex<Option<(Instant, Timer)>>,
    /// The connection's place among the live ones (none for a datagram loop).
    live: Option<triproxy_runtime_std::live::Registration>,
}

/// Polls `stream` for `interest`: the readiness seen (an error counts as both).
fn poll_ready(
    stream: &Async<TcpStream>,
    interest: Interest,
    cx: &mut Context<'_>,
) -> Option<Interest> {
    let mut seen = Interest::default();
    if interest.read {
        match stream.poll_readable(cx) {
            Poll::Ready(Ok(())) => seen.read = true,
            Poll::Ready(Err(_)) => {
                return Some(Interest {
                    read: true,
                    write: true,
                })
            }
            Poll::Pending => {}
        }
    }
    if interest.write {
        match stream.poll_writable(cx) {
            Poll::Ready(Ok(())) => seen.write = true,
            Poll::Ready(Err(_)) => {
                return Some(Interest {
                    read: true,
                    write: true,
                })
            }
            Poll::Pending => {}
        }
    }
    (!seen.is_empty()).then_some(seen)
}

impl Io for SmolIo {
    type Stream = Async<TcpStream>;
    type Listener = Async<TcpListener>;
    type Store = Store;
    type Datagram = Async<UdpSocket>;

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
        if let Some(live) = &self.live {
            live.set_standing(session.standing());
        }
    }

    fn revoked(&self) -> Option<triproxy_wire::LogCode> {
        self.live
            .as_ref()
            .and_then(triproxy_runtime_std::live::Registration::revoked)
    }

    async fn read(
        &self,
        stream: &Async<TcpStream>,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        let read = async { { stream }.read(buf).await };
        match deadline {
            Some(d) => {
                read.or(async {
                    Timer::at(d).await;
                    Err(io::ErrorKind::TimedOut.into())
                })
                .await
            }
            None => read.await,
        }
    }

    fn try_read(&self, stream: &Async<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
        stream.get_ref().read(buf)
    }

    fn try_write(&self, stream: &Async<TcpStream>, bytes: &[u8]) -> io::Result<usize> {
        stream.get_ref().write(bytes)
    }

    fn prepare_forwarding(&self, stream: &Async<TcpStream>) -> io::Result<()> {
        // async-io sockets are non-blocking from the start.
        stream.get_ref().set_nodelay(true)
    }

    async fn write_all(&self, stream: &Async<TcpStream>, bytes: &[u8]) -> io::Result<()> {
        { stream }.write_all(bytes).await
    }

    fn udp_bind(&self, local: SocketAddr) -> io::Result<(Async<UdpSocket>, SocketAddr)> {
        let socket = Async::<UdpSocket>::bind(local)?;
        let addr = socket.get_ref().local_addr()?;
        Ok((socket, addr))
    }

    async fn send_to(
        &self,
        socket: &Async<UdpSocket>,
        bytes: &[u8],
        to: SocketAddr,
    ) -> io::Result<usize> {
        socket.send_to(bytes, to).await
    }

    async fn recv_from(
        &self,
        socket: &Async<UdpSocket>,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<(usize, SocketAddr)> {
        let recv = socket.recv_from(buf);
        match deadline {
            Some(d) => {
                recv.or(async {
                    Timer::at(d).await;
                    Err(io::ErrorKind::TimedOut.into())
                })
                .await
            }
            None => recv.await,
        }
    }

    fn try_recv_from(
        &self,
        socket: &Async<UdpSocket>,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr)> {
        socket.get_ref().recv_from(buf)
    }

    async fn wait_readable(
        &self,
        stream: Option<&Async<TcpStream>>,
        sockets: &[&Async<UdpSocket>],
        deadline: Option<Instant>,
    ) -> io::Result<(bool, Vec<usize>)> {
        let mut timer = deadline.map(Timer::at);
        future::poll_fn(|cx| {
            let stream_ready = stream.is_some_and(|s| s.poll_readable(cx).is_ready());
            let ready: Vec<usize> = sockets
                .iter()
                .enumerate()
                .filter(|(_, s)| s.poll_readable(cx).is_ready())
                .map(|(i, _)| i)
                .collect();
            if stream_ready || !ready.is_empty() {
                return Poll::Ready(Ok((stream_ready, ready)));
            }
            match timer.as_mut().map(|t| Pin::new(t).poll(cx)) {
                Some(Poll::Ready(_)) => Poll::Ready(Ok((false, Vec::new()))),
                _ => Poll::Pending,
            }
        })
        .await
    }

    async fn resolve(&self, host: DomainName, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        smol::unblock(move || net::resolve(&host, port)).await
    }

    async fn connect(
        &self,
        addrs: &[SocketAddr],
        timeout: Duration,
        source: SourceAddrs,
    ) -> Result<(Async<TcpStream>, SocketAddr, SocketAddr), ConnectError> {
        let mut last = ConnectError::Other;
        for addr in addrs {
            let attempt = connect_one(*addr, source).or(async {
                Timer::after(timeout).await;
                Err(io::ErrorKind::TimedOut.into())
            });
            match attempt.await {
                Ok(stream) => match stream.get_ref().local_addr() {
                    Ok(local) => return Ok((stream, local, *addr)),
                    Err(_) => last = ConnectError::Other,
                },
                Err(e) => last = net::classify_connect_error(&e),
            }
        }
        Err(last)
    }

    fn listen(&self, ip: IpAddr) -> Result<(Async<TcpListener>, SocketAddr), BindError> {
        let listener = net::listen(SocketAddr::new(ip, 0), 1).map_err(|_| BindError::Listen)?;
        let addr = listener.local_addr().map_err(|_| BindError::Listen)?;
        Ok((Async::new(listener).map_err(|_| BindError::Listen)?, addr))
    }

    async fn accept(
        &self,
        listener: &Async<TcpListener>,
        client: &Async<TcpStream>,
        watch_client: bool,
        deadline: Instant,
    ) -> Accepted<Async<TcpStream>> {
        let accepted = async {
            match listener.accept().await {
                Ok((stream, peer)) => match stream.get_ref().local_addr() {
                    Ok(local) => Accepted::Peer(stream, local, peer),
                    Err(_) => Accepted::Failed,
                },
                Err(_) => Accepted::Failed,
            }
        };
        accepted
            .or(async {
                if watch_client {
                    let _ = client.readable().await;
                    Accepted::ClientReadable
                } else {
                    future::pending().await
                }
            })
            .or(async {
                Timer::at(deadline).await;
                Accepted::Timeout
            })
            .await
    }

    fn start_relay(
        &self,
        _client: &Async<TcpStream>,
        _target: &Async<TcpStream>,
    ) -> io::Result<()> {
        Ok(()) // async-io sockets are non-blocking from the start
    }

    fn store(&self, mode: RelayMode, early: &[u8]) -> Store {
        Store::new(mode, early)
    }

    fn fill(&self, store: &mut Store, src: &Async<TcpStream>, max: usize) -> Outcome {
        Outcome::of(store.fill(src.get_ref(), max))
    }

    fn flush(&self, store: &mut Store, dst: &Async<TcpStream>) -> Outcome {
        Outcome::of(store.flush(dst.get_ref()))
    }

    fn shutdown(&self, stream: &Async<TcpStream>, how: Shutdown) {
        let _ = stream.get_ref().shutdown(how);
    }

    async fn wait(
        &self,
        client: (&Async<TcpStream>, Interest),
        target: (&Async<TcpStream>, Interest),
        deadline: Instant,
    ) -> io::Result<[Interest; 2]> {
        let now = Instant::now();
        let taken = self.timer.lock().unwrap_or_else(|p| p.into_inner()).take();
        let (armed, mut timer) = match taken {
            // Armed no later than the deadline and not yet fired: keep it (it may wake
            // the relay early; the executor then checks and waits again).
            Some((armed, timer)) if armed <= deadline && armed > now => (armed, timer),
            Some((_, mut timer)) => {
                timer.set_at(deadline);
                (deadline, timer)
            }
            None => (deadline, Timer::at(deadline)),
        };
        // One hand-written poll instead of combined readiness futures: it keeps this
        // future (part of every idle tunnel's task) a few words long.
        let seen = future::poll_fn(|cx| {
            let c = poll_ready(client.0, client.1, cx);
            let t = poll_ready(target.0, target.1, cx);
            if c.is_some() || t.is_some() {
                return Poll::Ready([c.unwrap_or_default(), t.unwrap_or_default()]);
            }
            match Pin::new(&mut timer).poll(cx) {
                Poll::Ready(_) => Poll::Ready([Interest::default(); 2]),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        *self.timer.lock().unwrap_or_else(|p| p.into_inner()) = Some((armed, timer));
        Ok(seen)
    }
}

async fn connect_one(addr: SocketAddr, source: SourceAddrs) -> io::Result<Async<TcpStream>> {
    let stream = Async::new_nonblocking(net::start_connect(addr, source)?)?;
    // Look before waiting: on loopback the handshake has usually completed by now, and a
    // wait costs an epoll re-arm and a wake-up.
    stream
        .write_with(|s| match s.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => match s.take_error()? {
                Some(e) => Err(e),
                None => Err(io::ErrorKind::WouldBlock.into()),
            },
            Err(e) => Err(e),
        })
        .await?;
    Ok(stream)
}
