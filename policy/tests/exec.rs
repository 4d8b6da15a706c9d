//! The one executor (`triproxy_policy::exec::serve`) on a runtime made of memory: a fake
//! `Io` whose sockets are byte queues and whose clock is virtual. It shows that a runtime
//! is nothing but these primitives, and runs whole connections (handshake, relay, log
//! line) deterministically, idle timeouts included, in no real time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use triproxy_policy::acl::CivilTime;
use triproxy_policy::exec::{self, Accepted, Interest, Io, Origin};
use triproxy_policy::relay::{Outcome, RelayEnd};
use triproxy_policy::service::{RelayMode, ServicePolicy, SourceAddrs};
use triproxy_policy::session::{BindError, ConnectError, LogRecord, ResolveError};
use triproxy_wire::DomainName;

const CLIENT: usize = 0;
const TARGET: usize = 1;

/// One end of a fake connection, as the proxy sees it.
#[derive(Default)]
struct Pipe {
    /// Bytes the proxy can read.
    inbound: VecDeque<u8>,
    /// The peer will send nothing more.
    eof: bool,
    /// Bytes the proxy wrote.
    outbound: Vec<u8>,
    /// The proxy shut its writing side.
    shut: bool,
}

/// A runtime made of memory. The target echoes what it gets and closes when the proxy
/// passes the client's end of stream on.
struct FakeIo {
    now: Cell<Instant>,
    pipes: RefCell<[Pipe; 2]>,
    logs: RefCell<Vec<LogRecord>>,
    target_echoes: bool,
    /// Name servers in memory: a query to one of these addresses is answered by its
    /// function (None: silence).
    dns: Vec<(SocketAddr, DnsServer)>,
    /// Datagrams waiting to be received: (sender, bytes).
    datagrams: RefCell<VecDeque<(SocketAddr, Vec<u8>)>>,
    /// Queries sent, by server.
    queries: RefCell<Vec<SocketAddr>>,
    /// Calls of the system resolver.
    system_lookups: Cell<usize>,
}

type DnsServer = Box<dyn Fn(&[u8]) -> Option<Vec<u8>>>;

impl FakeIo {
    fn new(client_sends: &[u8], client_eof: bool, target_echoes: bool) -> FakeIo {
        let mut pipes: [Pipe; 2] = Default::default();
        pipes[CLIENT].inbound.extend(client_sends);
        pipes[CLIENT].eof = client_eof;
        FakeIo {
            now: Cell::new(Instant::now()),
            pipes: RefCell::new(pipes),
            logs: RefCell::new(Vec::new()),
            target_echoes,
            dns: Vec::new(),
            datagrams: RefCell::new(VecDeque::new()),
            queries: RefCell::new(Vec::new()),
            system_lookups: Cell::new(0),
        }
    }

    fn deliver(&self, to: usize, bytes: &[u8]) {
        let mut pipes = self.pipes.borrow_mut();
        pipes[to].outbound.extend_from_slice(bytes);
        if to == TARGET && self.target_echoes {
            pipes[TARGET].inbound.extend(bytes);
        }
    }

    /// At most `max` bytes the proxy can read from `from` (empty: end of stream).
    fn take(&self, from: usize, max: usize) -> io::Result<Vec<u8>> {
        let mut pipes = self.pipes.borrow_mut();
        let pipe = &mut pipes[from];
        if pipe.inbound.is_empty() {
            return if pipe.eof {
                Ok(Vec::new())
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        let n = pipe.inbound.len().min(max);
        Ok(pipe.inbound.drain(..n).collect())
    }

    fn readable(&self, stream: usize) -> bool {
        let pipes = self.pipes.borrow();
        !pipes[stream].inbound.is_empty() || pipes[stream].eof
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Io for FakeIo {
    type Stream = usize;
    type Listener = ();
    type Store = Vec<u8>;
    type Datagram = ();

    fn now(&self) -> Instant {
        self.now.get()
    }

    fn civil_time(&self) -> CivilTime {
        CivilTime {
            weekday: 3,
            seconds_of_day: 0,
        }
    }

    fn log(&self, record: &LogRecord) {
        self.logs.borrow_mut().push(record.clone());
    }

    async fn read(
        &self,
        s: &usize,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        if !self.readable(*s) {
            // Nothing will come: the deadline passes.
            if let Some(d) = deadline {
                self.now.set(d);
            }
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.try_read(s, buf)
    }

    fn try_read(&self, s: &usize, buf: &mut [u8]) -> io::Result<usize> {
        let bytes = self.take(*s, buf.len())?;
        buf.get_mut(..bytes.len()).unwrap().copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    fn try_write(&self, s: &usize, bytes: &[u8]) -> io::Result<usize> {
        self.deliver(*s, bytes);
        Ok(bytes.len())
    }

    fn prepare_forwarding(&self, _: &usize) -> io::Result<()> {
        Ok(())
    }

    async fn write_all(&self, s: &usize, bytes: &[u8]) -> io::Result<()> {
        self.deliver(*s, bytes);
        Ok(())
    }

    fn udp_bind(&self, _local: SocketAddr) -> io::Result<((), SocketAddr)> {
        Ok(((), addr(5353)))
    }

    async fn send_to(&self, _socket: &(), bytes: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.queries.borrow_mut().push(to);
        let answer = self
            .dns
            .iter()
            .find(|(a, _)| *a == to)
            .and_then(|(_, server)| server(bytes));
        if let Some(answer) = answer {
            self.datagrams.borrow_mut().push_back((to, answer));
        }
        Ok(bytes.len())
    }

    async fn recv_from(
        &self,
        _socket: &(),
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> io::Result<(usize, SocketAddr)> {
        let Some((from, bytes)) = self.datagrams.borrow_mut().pop_front() else {
            // Nothing will come: the deadline passes.
            if let Some(d) = deadline {
                self.now.set(d);
            }
            return Err(io::ErrorKind::TimedOut.into());
        };
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok((n, from))
    }

    fn try_recv_from(&self, _socket: &(), buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let Some((from, bytes)) = self.datagrams.borrow_mut().pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok((n, from))
    }

    async fn wait_readable(
        &self,
        _stream: Option<&usize>,
        sockets: &[&()],
        deadline: Option<Instant>,
    ) -> io::Result<(bool, Vec<usize>)> {
        if !self.datagrams.borrow().is_empty() && !sockets.is_empty() {
            return Ok((false, vec![0]));
        }
        if let Some(d) = deadline {
            self.now.set(d.max(self.now.get()));
        }
        Ok((false, Vec::new()))
    }

    async fn resolve(&self, _host: DomainName, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        self.system_lookups.set(self.system_lookups.get() + 1);
        Ok(vec![addr(port)])
    }

    async fn connect(
        &self,
        addrs: &[SocketAddr],
        _timeout: Duration,
        _source: SourceAddrs,
    ) -> Result<(usize, SocketAddr, SocketAddr), ConnectError> {
        let peer = addrs.first().copied().ok_or(ConnectError::Other)?;
        Ok((TARGET, addr(40000), peer))
    }

    fn listen(&self, _ip: IpAddr) -> Result<((), SocketAddr), BindError> {
        Err(BindError::Listen)
    }

    async fn accept(&self, _l: &(), _c: &usize, _w: bool, deadline: Instant) -> Accepted<usize> {
        self.now.set(deadline);
        Accepted::Timeout
    }

    fn start_relay(&self, _client: &usize, _target: &usize) -> io::Result<()> {
        Ok(())
    }

    fn store(&self, _mode: RelayMode, early: &[u8]) -> Vec<u8> {
        early.to_vec()
    }

    fn fill(&self, store: &mut Vec<u8>, src: &usize, max: usize) -> Outcome {
        Outcome::of(self.take(*src, max.min(4096)).map(|bytes| {
            *store = bytes;
            store.len()
        }))
    }

    fn flush(&self, store: &mut Vec<u8>, dst: &usize) -> Outcome {
        let bytes = std::mem::take(store);
        self.deliver(*dst, &bytes);
        Outcome::of(Ok(bytes.len()))
    }

    fn shutdown(&self, s: &usize, how: Shutdown) {
        let mut pipes = self.pipes.borrow_mut();
        pipes[*s].shut = true;
        // The echoing target closes once the client's end of stream reaches it.
        if *s == TARGET && how == Shutdown::Write && self.target_echoes {
            pipes[TARGET].eof = true;
        }
    }

    async fn wait(
        &self,
        client: (&usize, Interest),
        target: (&usize, Interest),
        deadline: Instant,
    ) -> io::Result<[Interest; 2]> {
        // Writes never block here; reads are ready when bytes or an end of stream wait.
        let seen = [client, target].map(|(s, i)| Interest {
            read: i.read && self.readable(*s),
            write: i.write,
        });
        if seen.iter().all(|i| i.is_empty()) {
            // Nothing will happen before the deadline: virtual time jumps to it.
            self.now.set(deadline.max(self.now.get()));
        }
        Ok(seen)
    }
}

/// Polls a future of [`FakeIo`] calls to its end (they never pend).
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("a fake I/O future pended");
}

fn serve(io: &FakeIo, policy: ServicePolicy) {
    let origin = Origin {
        peer: addr(50000),
        local: addr(1080),
        time: CivilTime {
            weekday: 3,
            seconds_of_day: 0,
        },
    };
    run(exec::serve(io, &CLIENT, &origin, &Arc::new(policy)));
}

/// A SOCKS5 greeting (no auth) and a CONNECT to 127.0.0.1:80.
const SOCKS5_CONNECT: &[u8] = &[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80];

#[test]
fn a_socks5_connection_runs_from_its_first_byte_to_its_log_line() {
    let mut sent = SOCKS5_CONNECT.to_vec();
    sent.extend_from_slice(b"hello");
    let io = FakeIo::new(&sent, true, true);
    serve(&io, ServicePolicy::new(1080));
    let pipes = io.pipes.borrow();
    let to_client = &pipes[CLIENT].outbound;
    assert_eq!(&to_client[..2], &[5, 0], "method reply");
    assert_eq!(&to_client[2..4], &[5, 0], "request granted");
    assert_eq!(&to_client[12..], b"hello", "the target's echo, relayed");
    assert_eq!(
        pipes[TARGET].outbound, b"hello",
        "pipelined bytes reached the target"
    );
    assert!(
        pipes[TARGET].shut && pipes[CLIENT].shut,
        "both ends of stream passed on"
    );
    let logs = io.logs.borrow();
    assert_eq!(logs.len(), 1, "one log line");
    assert_eq!(logs[0].code.0, 0);
    assert_eq!((logs[0].bytes_out, logs[0].bytes_in), (5, 5));
    assert_eq!(logs[0].remote, Some(addr(80)));
}

#[test]
fn a_quiet_tunnel_ends_at_the_idle_timeout_in_virtual_time() {
    let io = FakeIo::new(SOCKS5_CONNECT, false, false);
    let start = io.now();
    let policy = ServicePolicy::new(1080);
    let idle = policy.timeouts.idle;
    serve(&io, policy);
    let logs = io.logs.borrow();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].code.0, 92);
    assert!(matches!(
        logs[0].reason,
        Some(triproxy_policy::reason::Reason::Relay(
            RelayEnd::IdleTimeout
        ))
    ));
    assert_eq!(io.now() - start, idle, "ended exactly at the idle timeout");
}

#[test]
fn a_handshake_that_never_completes_ends_at_its_deadline() {
    let io = FakeIo::new(&[5, 1], false, false); // half a greeting, then silence
    let start = io.now();
    let policy = ServicePolicy::new(1080);
    let handshake = policy.timeouts.handshake;
    serve(&io, policy);
    let logs = io.logs.borrow();
    assert_eq!(logs.len(), 1);
    assert_ne!(logs[0].code.0, 0);
    assert_eq!(io.now() - start, handshake);
    assert!(
        io.pipes.borrow()[TARGET].outbound.is_empty(),
        "no target was involved"
    );
}

/// A SOCKS5 greeting and a CONNECT to `name`:80.
fn socks5_connect_name(name: &str) -> Vec<u8> {
    let mut v = vec![5, 1, 0, 5, 1, 0, 3, name.len() as u8];
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&[0, 80]);
    v
}

/// A name server that answers every A question with `ip` (TTL 60), or NXDOMAIN when `ip`
/// is None.
fn dns_server(ip: Option<[u8; 4]>) -> DnsServer {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{rdata::A, RData, Record};
    Box::new(move |query: &[u8]| {
        let q = Message::from_vec(query).ok()?;
        let mut m = Message::new();
        m.set_id(q.id())
            .set_message_type(MessageType::Response)
            .set_recursion_available(true)
            .add_queries(q.queries().to_vec());
        match ip {
            Some(ip) => {
                let name = q.queries().first()?.name().clone();
                m.add_answer(Record::from_rdata(name, 60, RData::A(A(ip.into()))));
            }
            None => {
                m.set_response_code(ResponseCode::NXDomain);
            }
        }
        m.to_vec().ok()
    })
}

fn own_names(servers: &[&str]) -> Arc<triproxy_policy::names::Names> {
    let config = triproxy_dns::ResolverConfig {
        servers: servers.iter().map(|s| s.parse().unwrap()).collect(),
        try_timeout: Duration::from_secs(2),
        attempts: 1,
        ..Default::default()
    };
    Arc::new(triproxy_policy::names::Names::own(config, 7))
}

#[test]
fn with_nserver_a_name_is_resolved_by_the_own_resolver_and_cached() {
    let mut io = FakeIo::new(&socks5_connect_name("only.test"), true, true);
    io.dns = vec![(addr(53), dns_server(Some([127, 0, 0, 9])))];
    let mut policy = ServicePolicy::new(1080);
    policy.names = own_names(&["127.0.0.1:53"]);
    let policy = Arc::new(policy);
    let origin = Origin {
        peer: addr(50000),
        local: addr(1080),
        time: CivilTime {
            weekday: 3,
            seconds_of_day: 0,
        },
    };
    run(exec::serve(&io, &CLIENT, &origin, &policy));
    {
        let logs = io.logs.borrow();
        assert_eq!(logs[0].code.0, 0);
        assert_eq!(logs[0].remote, Some("127.0.0.9:80".parse().unwrap()));
    }
    assert_eq!(
        io.queries.borrow().len(),
        2,
        "A and AAAA (the default family order is -46)"
    );
    assert_eq!(
        io.system_lookups.get(),
        0,
        "no name reaches the system resolver"
    );

    // A second connection is answered from the cache: no query goes out.
    let io2 = FakeIo::new(&socks5_connect_name("ONLY.test"), true, true);
    run(exec::serve(&io2, &CLIENT, &origin, &policy));
    assert_eq!(io2.logs.borrow()[0].code.0, 0);
    assert!(
        io2.queries.borrow().is_empty(),
        "served from the shared cache"
    );
    assert_eq!(io2.system_lookups.get(), 0);
}

#[test]
fn a_silent_nserver_fails_over_and_an_unknown_name_is_code_100() {
    let mut io = FakeIo::new(&socks5_connect_name("gone.test"), true, true);
    // The first server never answers; the second says NXDOMAIN.
    io.dns = vec![(addr(54), dns_server(None))];
    let mut policy = ServicePolicy::new(1080);
    policy.names = own_names(&["127.0.0.1:53", "127.0.0.1:54"]);
    policy.family = triproxy_dns::Family::V4;
    let start = io.now();
    serve(&io, policy);
    let logs = io.logs.borrow();
    assert_eq!(logs[0].code.0, 100, "host not found");
    assert_eq!(
        *io.queries.borrow(),
        vec![addr(53), addr(54)],
        "the second server was asked after the first one's timeout"
    );
    assert_eq!(io.now() - start, Duration::from_secs(2), "one try timeout");
    assert_eq!(io.system_lookups.get(), 0, "never the system resolver");
    let replies = &io.pipes.borrow()[CLIENT].outbound;
    assert_eq!(replies[3], 4, "SOCKS5 REP 4: host unreachable");
}

#[test]
fn without_nserver_names_go_to_the_system_resolver_in_the_service_family_order() {
    let io = FakeIo::new(&socks5_connect_name("sys.test"), true, true);
    let mut policy = ServicePolicy::new(1080);
    // nsrecord only: the resolver knows one name and defers the rest to the system.
    let config = triproxy_dns::ResolverConfig {
        static_records: vec![("pinned.test".into(), "127.0.0.7".parse().unwrap())],
        ..Default::default()
    };
    policy.names = Arc::new(triproxy_policy::names::Names::own(config, 1));
    let policy = Arc::new(policy);
    let origin = Origin {
        peer: addr(50000),
        local: addr(1080),
        time: CivilTime {
            weekday: 3,
            seconds_of_day: 0,
        },
    };
    run(exec::serve(&io, &CLIENT, &origin, &policy));
    assert_eq!(io.system_lookups.get(), 1);
    assert_eq!(io.logs.borrow()[0].code.0, 0);
    let pinned = FakeIo::new(&socks5_connect_name("pinned.test"), true, true);
    run(exec::serve(&pinned, &CLIENT, &origin, &policy));
    assert_eq!(pinned.system_lookups.get(), 0, "nsrecord answered");
    assert_eq!(
        pinned.logs.borrow()[0].remote,
        Some("127.0.0.7:80".parse().unwrap())
    );
}
