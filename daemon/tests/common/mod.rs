//! Shared harness of the daemon's end-to-end tests: the real `triproxy` binary on
//! loopback, local target servers, curl, and log-line waiting. Everything is bounded in
//! time; every address is 127.0.0.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod dnsmasq;
pub mod forward;
pub mod mail;
pub mod origin;
pub mod response;
pub mod samples;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// One `std` and one `smol` test for each scenario function `fn name(runtime: &str)`.
#[allow(unused_macros)]
macro_rules! both_runtimes {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn std() {
                super::$scenario("std")
            }
            #[test]
            fn smol() {
                super::$scenario("smol")
            }
        }
    )*};
}

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub use triproxy_test_support::Daemon;

/// Starts this package's `triproxy` binary: `Daemon::start(config, runtime)` and
/// `Daemon::spawn(args)` (Cargo gives the binary's path only to this package's tests).
pub trait Start {
    /// Starts the binary with `config` (whose service line must use `-p0 -i127.0.0.1`).
    fn start(config: &str, runtime: &str) -> Daemon;
    /// Starts the binary with these arguments and waits for its first listening line.
    fn spawn(args: &[&str]) -> Daemon;
    /// [`Start::start`] with extra environment variables for the daemon.
    fn start_env(config: &str, runtime: &str, env: &[(&str, &Path)]) -> Daemon;
}

impl Start for Daemon {
    fn start(config: &str, runtime: &str) -> Daemon {
        Daemon::start_binary(Path::new(env!("CARGO_BIN_EXE_triproxy")), config, runtime)
    }

    fn spawn(args: &[&str]) -> Daemon {
        Daemon::spawn_binary(Path::new(env!("CARGO_BIN_EXE_triproxy")), args)
    }

    fn start_env(config: &str, runtime: &str, env: &[(&str, &Path)]) -> Daemon {
        Daemon::start_binary_env(
            Path::new(env!("CARGO_BIN_EXE_triproxy")),
            config,
            runtime,
            env,
        )
    }
}

/// A tiny HTTP/1.1 origin on 127.0.0.1 that answers every request with `body` and closes.
pub fn http_server(body: &'static str) -> SocketAddr {
    http_server_on("127.0.0.1:0", body)
}

/// A target on 127.0.0.1 that echoes what it reads, per connection, until the peer closes
/// (or is silent for [`IO_TIMEOUT`]).
pub fn echo_target() -> SocketAddr {
    serve_each("127.0.0.1:0", |mut s| {
        let mut r = s.try_clone().unwrap();
        let _ = std::io::copy(&mut r, &mut s);
    })
}

/// A UDP echo on 127.0.0.1: every datagram goes back to its sender.
pub fn udp_echo() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    addr
}

/// [`http_server`] listening on `bind` (a loopback address such as `[::1]:0`).
pub fn http_server_on(bind: &str, body: &'static str) -> SocketAddr {
    serve_each(bind, move |mut s| {
        if read_head(&mut s).is_none() {
            return;
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(reply.as_bytes());
    })
}

/// Listens on `bind` and runs `handle` on a thread of its own for every connection, whose
/// reads time out after [`IO_TIMEOUT`]. Returns the address.
pub fn serve_each(bind: &str, handle: impl Fn(TcpStream) + Clone + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind(bind).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let handle = handle.clone();
            thread::spawn(move || {
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                handle(stream);
            });
        }
    });
    addr
}

/// Reads an HTTP head up to and including its blank line, a byte at a time so nothing
/// after it is taken (at most 64 KiB); None if the peer stops first.
pub fn read_head(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= 64 * 1024 || s.read(&mut byte).ok()? != 1 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// Runs curl with a 15 s limit; returns (success, stdout, stderr).
pub fn curl(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "15",
            "--noproxy",
            "",
        ])
        .args(args)
        .output()
        .expect("curl must be installed (the CI script installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Connects to the proxy with I/O timeouts set.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Reads exactly `n` bytes.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).unwrap();
    v
}

/// Reads until EOF; returns what came (an error such as a reset ends it too).
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return v,
            Ok(n) => v.extend_from_slice(&buf[..n]),
        }
    }
}

/// SOCKS5 no-auth CONNECT to an IPv4 target; asserts success and returns the stream.
pub fn socks5_connect(proxy: SocketAddr, target: SocketAddr) -> TcpStream {
    let (reply, s) = socks5_reply(proxy, target, IO_TIMEOUT).expect("a CONNECT reply");
    assert_eq!(reply[..4], [5, 0, 0, 1], "CONNECT reply");
    s
}

/// The 10-byte reply the proxy gives a SOCKS5 CONNECT (no authentication) to the IPv4
/// `target`, with the stream; None if no reply came within `wait` (for example while the
/// client waits in the backlog) or the proxy closed first.
pub fn socks5_reply(
    proxy: SocketAddr,
    target: SocketAddr,
    wait: Duration,
) -> Option<([u8; 10], TcpStream)> {
    let mut s = connect(proxy);
    let SocketAddr::V4(t) = target else {
        panic!("IPv4 target expected")
    };
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).ok()?;
    assert_eq!(method, [5, 0], "method selection");
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).ok()?;
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    Some((reply, s))
}

/// Deterministic pseudo-random bytes (xorshift64*), so both ends can check what they got.
pub struct Stream64(u64);

impl Stream64 {
    pub fn new(seed: u64) -> Self {
        Stream64(seed | 1)
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// FNV-1a over a byte stream, fed in pieces.
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn update(&mut self, data: &[u8]) {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Sends `total` generated bytes on `s` in 64 KiB writes; returns their hash.
pub fn send_generated(s: &mut TcpStream, seed: u64, total: usize) -> u64 {
    let mut gen = Stream64::new(seed);
    let mut h = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(buf.len());
        gen.fill(&mut buf[..n]);
        h.update(&buf[..n]);
        s.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    h.0
}

/// Reads until EOF; returns (bytes, hash).
pub fn receive_hashed(s: &mut TcpStream) -> (usize, u64) {
    let mut h = Fnv::new();
    let mut n = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (n, h.0),
            Ok(k) => {
                h.update(&buf[..k]);
                n += k;
            }
            Err(e) => panic!("read failed after {n} bytes: {e}"),
        }
    }
}

/// A target that, per connection, receives until EOF (hashing) while sending `total`
/// generated bytes, then reports (received, hash) on the channel and closes.
pub fn duplex_target(seed: u64, total: usize) -> (SocketAddr, mpsc::Receiver<(usize, u64, u64)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let _ = tx.send(send_and_receive(stream, seed, total));
    });
    (addr, rx)
}

/// Sends `total` generated bytes (from `seed`) on `stream`, then a FIN, while reading
/// everything the peer sends until its FIN: (bytes received, their hash, hash of what was
/// sent).
pub fn send_and_receive(stream: TcpStream, seed: u64, total: usize) -> (usize, u64, u64) {
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let h = send_generated(&mut writer, seed, total);
        writer.shutdown(Shutdown::Write).unwrap();
        h
    });
    let mut reader = stream;
    let (got, got_hash) = receive_hashed(&mut reader);
    (got, got_hash, sender.join().unwrap())
}

/// Sends `total` generated bytes (from `seed`) through `tunnel`, then a FIN, while reading
/// everything the [`duplex_target`] behind it sends back; checks both directions intact
/// against what the target reports on `done`.
pub fn exchange_and_check(
    tunnel: TcpStream,
    done: &mpsc::Receiver<(usize, u64, u64)>,
    seed: u64,
    total: usize,
) {
    let (got, got_hash, sent_hash) = send_and_receive(tunnel, seed, total);
    let (target_got, target_hash, target_sent) =
        done.recv_timeout(Duration::from_secs(60)).unwrap();
    assert_eq!((got, got_hash), (total, target_sent), "target -> client");
    assert_eq!(
        (target_got, target_hash),
        (total, sent_hash),
        "client -> target"
    );
}

/// Runs a Python 3 script with `args` (at most 30 s) and no proxy settings from the
/// environment (urllib would bypass the proxy for hosts in `no_proxy`); returns its
/// standard output.
pub fn python(script: &str, args: &[&str]) -> String {
    let mut cmd = Command::new("timeout");
    for var in [
        "no_proxy",
        "NO_PROXY",
        "http_proxy",
        "HTTP_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["30", "python3", "-c", script])
        .args(args)
        .output()
        .expect("python3 must be installed (the CI script checks it)");
    assert!(
        out.status.success(),
        "python failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
