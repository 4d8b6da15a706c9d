//! Live replay: server traces against a real SOCKS or HTTP proxy over TCP and UDP, with
//! the harness's own targets (TCP echo, sink, UDP echo, and on loopback an IPv6 echo).
//!
//! The targets listen on the machine the tool runs on, on one IP ([`Targets::start`]): the
//! server under test must be able to reach that IP (127.0.0.1 for a server on the same
//! machine; for a remote server the tool's address on the way to it, see
//! [`target_ip_for`]). The harness connects only to the server, and to the BIND and UDP
//! relay addresses the server announces.
//!
//! Every wait is bounded ([`Timing::LIVE`]: each read at most 3 s, a trace at most 10 s),
//! and ends as soon as the expected bytes or the close arrived; targets stop when
//! [`Targets`] is dropped. It is for testing servers, not for load (that is the `load`
//! module).

use crate::replay::{self, Addresses, Backend, Channel, Chunking, Env, Outcome, Recv, Timing};
use crate::trace::{Mode, Side, Trace};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use triproxy_wire::TargetAddr;

/// How long a target's connection may stay idle before the target drops it.
const TARGET_IDLE: Duration = Duration::from_secs(15);
/// How often idle accept loops look at the stop flag.
const POLL: Duration = Duration::from_millis(20);
/// Largest single read.
const READ_CHUNK: usize = 64 * 1024;

/// The harness's loopback targets; they stop when this is dropped.
#[derive(Debug)]
pub struct Targets {
    /// TCP echo: echoes until EOF, then half-closes.
    pub echo: SocketAddr,
    /// TCP echo on ::1, if the machine has IPv6 loopback.
    pub echo6: Option<SocketAddr>,
    /// TCP sink: reads until EOF, never writes, then closes.
    pub sink: SocketAddr,
    /// UDP echo: sends every datagram back to its sender.
    pub udp_echo: SocketAddr,
    /// HTTP/1.1 origin: answers every request with 200 and, as the body, the request head
    /// it received (so a trace sees what a forwarding proxy sent).
    pub origin: SocketAddr,
    /// A port where nothing listens.
    pub closed: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// The IP the harness's targets listen on for `server`: 127.0.0.1 for a loopback server,
/// else the local address the system routes to `server` from (no packet is sent).
pub fn target_ip_for(server: SocketAddr) -> io::Result<IpAddr> {
    if server.ip().is_loopback() {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let any = match server {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let probe = UdpSocket::bind(SocketAddr::new(any, 0))?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

impl Targets {
    /// Starts the targets on 127.0.0.1 (and the IPv6 echo on ::1).
    pub fn start() -> io::Result<Targets> {
        Targets::start_on(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Starts the targets on `ip` (an IPv4 address: the traces carry targets as IPv4);
    /// the IPv6 echo only when `ip` is loopback (on ::1).
    pub fn start_on(ip: IpAddr) -> io::Result<Targets> {
        let stop = Arc::new(AtomicBool::new(false));
        let lo = ip;
        let echo = serve(SocketAddr::new(lo, 0), &stop, Role::Echo)?;
        let echo6 = if ip.is_loopback() {
            serve(
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
                &stop,
                Role::Echo,
            )
            .ok()
        } else {
            None
        };
        let sink = serve(SocketAddr::new(lo, 0), &stop, Role::Sink)?;
        let origin = serve(SocketAddr::new(lo, 0), &stop, Role::Origin)?;
        let udp = UdpSocket::bind(SocketAddr::new(lo, 0))?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        let udp_echo = udp.local_addr()?;
        let flag = Arc::clone(&stop);
        thread::spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            while !flag.load(Ordering::Relaxed) {
                if let Ok((n, from)) = udp.recv_from(&mut buf) {
                    let _ = udp.send_to(buf.get(..n).unwrap_or_default(), from);
                }
            }
        });
        let closed = {
            let l = TcpListener::bind(SocketAddr::new(lo, 0))?;
            l.local_addr()?
        };
        Ok(Targets {
            echo,
            echo6,
            sink,
            udp_echo,
            origin,
            closed,
            stop,
        })
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy)]
enum Role {
    Echo,
    Sink,
    Origin,
}

/// Longest request head the origin reads.
const MAX_ORIGIN_HEAD: usize = 16 * 1024;

/// The origin's side of one connection: per request head (bodies are not expected), a
/// 200 whose body is that head; closes on EOF, on a head over [`MAX_ORIGIN_HEAD`], or
/// after a request with `Connection: close`.
fn origin(mut s: TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head: Vec<u8> = buf.drain(..end + 4).collect();
            let close = String::from_utf8_lossy(&head)
                .to_ascii_lowercase()
                .contains("\r\nconnection: close");
            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
                head.len(),
                if close { "Connection: close\r\n" } else { "" }
            )
            .into_bytes();
            response.extend_from_slice(&head);
            if s.write_all(&response).is_err() || close {
                return;
            }
        }
        if buf.len() > MAX_ORIGIN_HEAD {
            return;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
}

fn serve(addr: SocketAddr, stop: &Arc<AtomicBool>, role: Role) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let stop = Arc::clone(stop);
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((s, _)) => {
                    thread::spawn(move || handle(s, role));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(POLL),
                Err(_) => thread::sleep(POLL),
            }
        }
    });
    Ok(local)
}

fn handle(mut s: TcpStream, role: Role) {
    if s.set_nonblocking(false).is_err() || s.set_read_timeout(Some(TARGET_IDLE)).is_err() {
        return;
    }
    let _ = s.set_write_timeout(Some(TARGET_IDLE));
    if let Role::Origin = role {
        return origin(s);
    }
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        match s.read(&mut buf) {
            Ok(0) => {
                let _ = s.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if matches!(role, Role::Echo)
                    && s.write_all(buf.get(..n).unwrap_or_default()).is_err()
                {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// A live server and how it is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// The SOCKS server under test.
    pub server: SocketAddr,
    /// Its username and password, if it requires RFC 1929.
    pub credentials: Option<(Vec<u8>, Vec<u8>)>,
    /// A target the server is configured to refuse, if any.
    pub denied: Option<SocketAddr>,
    /// Whether traces may make the server resolve a name that does not exist.
    pub nxdomain: bool,
    /// The name the server resolves to reach the echo target (`{echo.host}`).
    pub echo_host: String,
    /// Waiting bounds.
    pub timing: Timing,
}

impl LiveConfig {
    /// A server without authentication, standard timing.
    pub fn new(server: SocketAddr) -> LiveConfig {
        LiveConfig {
            server,
            credentials: None,
            denied: None,
            nxdomain: false,
            echo_host: "localhost".into(),
            timing: Timing::LIVE,
        }
    }
}

/// Replays one server trace against the live server. Client traces are skipped. The
/// harness connects to the server, and to the BIND and UDP relay addresses it announces.
pub fn replay(trace: &Trace, mode: Mode, config: &LiveConfig, targets: &Targets) -> Outcome {
    if trace.side == Side::Client {
        return Outcome::Skip("client-side trace (in-memory only)".into());
    }
    let udp = match UdpSocket::bind(SocketAddr::new(targets.echo.ip(), 0)) {
        Ok(u) => u,
        Err(e) => return Outcome::Skip(format!("cannot open a UDP socket: {e}")),
    };
    let udp_client = match udp.local_addr() {
        Ok(a) => a,
        Err(e) => return Outcome::Skip(format!("cannot open a UDP socket: {e}")),
    };
    let addresses = Addresses {
        echo: targets.echo,
        echo_host: config.echo_host.clone(),
        echo6: targets.echo6,
        sink: targets.sink,
        closed: targets.closed,
        denied: config.denied,
        udp_echo: targets.udp_echo,
        origin: targets.origin,
        udp_client,
        nxdomain: "nonexistent.invalid".into(),
    };
    let env = Env::new(&addresses, config.credentials.clone(), config.nxdomain);
    if let Some(why) = env.unmet(trace) {
        return Outcome::Skip(why);
    }
    let stream = match TcpStream::connect_timeout(&config.server, config.timing.read_timeout) {
        Ok(s) => s,
        Err(e) => {
            return Outcome::Fail(replay::Failure {
                line: 0,
                step: String::new(),
                message: format!("cannot connect to {}: {e}", config.server),
                diff: None,
            })
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(config.timing.read_timeout));
    let mut backend = Live {
        server: config.server,
        stream,
        peer: None,
        udp,
        timing: config.timing,
    };
    replay::run(trace, mode, &env, &mut backend, &config.timing)
}

/// The live [`Backend`]: one TCP connection to the server, a BIND peer, a UDP socket.
#[derive(Debug)]
pub struct Live {
    server: SocketAddr,
    stream: TcpStream,
    peer: Option<TcpStream>,
    udp: UdpSocket,
    timing: Timing,
}

fn read_once(s: &mut TcpStream, timeout: Duration) -> Recv {
    if s.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .is_err()
    {
        return Recv::Reset;
    }
    let mut buf = vec![0u8; READ_CHUNK];
    match s.read(&mut buf) {
        Ok(0) => Recv::Eof,
        Ok(n) => {
            buf.truncate(n);
            Recv::Data(buf)
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Recv::Quiet,
        Err(e) if e.kind() == ErrorKind::Interrupted => Recv::Quiet,
        Err(_) => Recv::Reset,
    }
}

impl Live {
    /// An unspecified IP in a reply stands for the server's own address (RFC 1928 §6,
    /// SOCKS4 BIND).
    fn reachable(&self, addr: &TargetAddr) -> Result<SocketAddr, String> {
        match addr {
            TargetAddr::Ip(sa) if sa.ip().is_unspecified() => {
                Ok(SocketAddr::new(self.server.ip(), sa.port()))
            }
            TargetAddr::Ip(sa) => Ok(*sa),
            TargetAddr::Domain(..) => Err(format!("{addr} is a name; the harness needs an IP")),
        }
    }
}

/// A write the server cut short by closing: not a failure in itself (a server may reject
/// a message from its first bytes); what the server answered is checked by the next steps.
fn cut_by_server(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

impl Backend for Live {
    fn send(&mut self, data: &[u8], chunking: Chunking) -> Result<(), String> {
        let result = match chunking {
            Chunking::Whole => self.stream.write_all(data),
            Chunking::OneByte => data.iter().try_for_each(|b| {
                self.stream.write_all(std::slice::from_ref(b))?;
                thread::sleep(self.timing.split_delay);
                Ok(())
            }),
        };
        match result {
            Err(e) if !cut_by_server(&e) => Err(e.to_string()),
            _ => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), String> {
        match self.stream.shutdown(Shutdown::Write) {
            // The server may already have closed (and reset) the connection.
            Err(e) if e.kind() != ErrorKind::NotConnected => Err(e.to_string()),
            _ => Ok(()),
        }
    }

    fn wait(&mut self, d: Duration) {
        thread::sleep(d);
    }

    fn recv(&mut self, channel: Channel, timeout: Duration) -> Recv {
        match channel {
            Channel::Client => read_once(&mut self.stream, timeout),
            Channel::Peer => match self.peer.as_mut() {
                Some(p) => read_once(p, timeout),
                None => Recv::Reset,
            },
        }
    }

    fn peer_connect(&mut self, addr: &TargetAddr) -> Result<SocketAddr, String> {
        let to = self.reachable(addr)?;
        let s = TcpStream::connect_timeout(&to, self.timing.read_timeout)
            .map_err(|e| format!("{to}: {e}"))?;
        let _ = s.set_nodelay(true);
        let _ = s.set_write_timeout(Some(self.timing.read_timeout));
        let local = s.local_addr().map_err(|e| e.to_string())?;
        self.peer = Some(s);
        Ok(local)
    }

    fn peer_send(&mut self, data: &[u8]) -> Result<(), String> {
        let p = self.peer.as_mut().ok_or("the peer is not connected")?;
        p.write_all(data).map_err(|e| e.to_string())
    }

    fn peer_close(&mut self) -> Result<(), String> {
        if let Some(p) = self.peer.as_mut() {
            let _ = p.shutdown(Shutdown::Write);
        }
        Ok(())
    }

    fn udp_send(&mut self, relay: &TargetAddr, data: &[u8]) -> Result<(), String> {
        let to = self.reachable(relay)?;
        self.udp
            .send_to(data, to)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn udp_recv(&mut self, timeout: Duration) -> Recv {
        if self
            .udp
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .is_err()
        {
            return Recv::Reset;
        }
        let mut buf = vec![0u8; READ_CHUNK];
        match self.udp.recv_from(&mut buf) {
            Ok((n, _)) => {
                buf.truncate(n);
                Recv::Data(buf)
            }
            Err(_) => Recv::Quiet,
        }
    }
}
