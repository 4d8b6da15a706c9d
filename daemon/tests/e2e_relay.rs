//! Relay paths end to end, on both runtimes: zero-copy (`splice`, the default), buffered
//! (`-s0`) and shaped (bandwidth pipes in both directions) each move 64 MiB intact both
//! ways and keep half-close; aborts by either side end with the right code; 1,000
//! connections that end in every way leave the daemon holding no extra file descriptors.
//! The pipes' rates themselves are checked in `e2e_bandlim.rs`.
//!
//! `chained` runs the same scenarios through a parent proxy (a second triproxy daemon on
//! the same runtime, `parent 1000 socks5`), and the descriptor count is taken from the
//! daemon that chains (3proxy leaks CLOSE_WAIT sockets there). A target's abort reaches
//! the chaining daemon as the parent's end of stream, so the code-96 scenario is checked
//! on the parent's own relay (the unchained modes), not through it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use socket2::SockRef;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

/// The daemon's configuration for a relay path: a `socks` option (`-s`, `-s0`), or
/// `shaped`: 4 Gbit/s pipes each way (about a quarter of what loopback moves here, so they
/// pace every tunnel without making the tests slow).
fn config(mode: &str) -> String {
    let (limits, option) = match mode {
        "shaped" => ("bandlimin 4000000000\nbandlimout 4000000000\n", ""),
        option => ("", option),
    };
    format!(
        "log\nauth iponly\nallow * 127.0.0.1\nmaxconn 2000\n{limits}socks -p0 -i127.0.0.1 {option}\n"
    )
}

/// The daemon under test for `mode`, and for `chained` the parent it chains through
/// (kept alive with it).
fn start(runtime: &str, mode: &str) -> (Daemon, Option<Daemon>) {
    if mode != "chained" {
        return (Daemon::start(&config(mode), runtime), None);
    }
    let parent = Daemon::start(&config("-s"), runtime);
    let front = Daemon::start(
        &format!(
            "log\nauth iponly\nallow * 127.0.0.1\nparent 1000 socks5 {}\nmaxconn 2000\n\
             socks -p0 -i127.0.0.1\n",
            parent.addr.to_string().replace(':', " ")
        ),
        runtime,
    );
    (front, Some(parent))
}

macro_rules! chained {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn std_chained() {
                super::super::$scenario("std", "chained")
            }
            #[test]
            fn smol_chained() {
                super::super::$scenario("smol", "chained")
            }
        }
    )*};
}

mod through_a_parent {
    chained!(
        moves_64_mib_each_way_intact,
        half_close_both_directions,
        client_abort_is_code_95,
        no_descriptor_left_after_1000_connections,
    );
}

macro_rules! every_path {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[test]
            fn std_splice() {
                super::$scenario("std", "-s")
            }
            #[test]
            fn std_buffered() {
                super::$scenario("std", "-s0")
            }
            #[test]
            fn smol_splice() {
                super::$scenario("smol", "-s")
            }
            #[test]
            fn smol_buffered() {
                super::$scenario("smol", "-s0")
            }
            #[test]
            fn std_shaped() {
                super::$scenario("std", "shaped")
            }
            #[test]
            fn smol_shaped() {
                super::$scenario("smol", "shaped")
            }
        }
    )*};
}

every_path!(
    moves_64_mib_each_way_intact,
    half_close_both_directions,
    client_abort_is_code_95,
    server_abort_is_code_96,
    no_descriptor_left_after_1000_connections,
);

fn moves_64_mib_each_way_intact(runtime: &str, mode: &str) {
    const TOTAL: usize = 64 * 1024 * 1024;
    let (d, parent) = start(runtime, mode);
    let (target, done) = duplex_target(7, TOTAL);
    let s = socks5_connect(d.addr, target);
    exchange_and_check(s, &done, 11, TOTAL);
    let line = d.wait_code(0, &format!("CONNECT {target}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (f[6], f[7]),
        (&*TOTAL.to_string(), &*TOTAL.to_string()),
        "{line}"
    );
    // %R and %h: the address connected to is the parent's, one hop.
    let (remote, hops) = match &parent {
        Some(p) => (p.addr, "1"),
        None => (target, "0"),
    };
    assert_eq!((f[5], f[8]), (&*remote.to_string(), hops), "{line}");
    if let Some(p) = parent {
        // The parent relayed the same bytes.
        let line = p.wait_code(0, &format!("CONNECT {target}"));
        assert!(line.contains(&format!(" {TOTAL} {TOTAL} 0 ")), "{line}");
    }
}

/// The client half-closes first and still gets the answer; then the target half-closes
/// first and the client's late data still reaches it.
fn half_close_both_directions(runtime: &str, mode: &str) {
    let (d, _parent) = start(runtime, mode);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    thread::spawn(move || {
        // 1: read to EOF, then answer.
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let got = read_to_end(&mut s);
        s.write_all(format!("got {}", got.len()).as_bytes())
            .unwrap();
        drop(s);
        // 2: say something and half-close first, then read what still comes.
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.write_all(b"early bird").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let got = read_to_end(&mut s);
        assert_eq!(got.len(), 300_000);
    });
    let mut s = socks5_connect(d.addr, target);
    s.write_all(&vec![1u8; 200_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"got 200000");
    let mut s = socks5_connect(d.addr, target);
    let mut early = [0u8; 10];
    s.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early bird");
    // The target's FIN arrived; this direction still flows.
    let mut probe = [0u8; 1];
    assert_eq!(s.read(&mut probe).unwrap(), 0, "FIN passed on");
    s.write_all(&vec![2u8; 300_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let line = d.wait_log("second tunnel", |l| {
        l.split_whitespace().nth(2) == Some("00000")
            && l.split_whitespace().nth(6) == Some("300000")
    });
    assert!(line.contains(&format!("CONNECT {target}")), "{line}");
}

/// A target that streams until the peer goes away.
fn streaming_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming().take(1) {
            let mut s = s.unwrap();
            s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            let chunk = vec![9u8; 64 * 1024];
            let deadline = Instant::now() + IO_TIMEOUT;
            while Instant::now() < deadline && s.write_all(&chunk).is_ok() {}
        }
    });
    addr
}

fn client_abort_is_code_95(runtime: &str, mode: &str) {
    let (d, _parent) = start(runtime, mode);
    let target = streaming_target();
    let mut s = socks5_connect(d.addr, target);
    let mut some = vec![0u8; 100_000];
    s.read_exact(&mut some).unwrap();
    SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s); // RST with unread data pending
    d.wait_code(95, &format!("CONNECT {target}"));
}

fn server_abort_is_code_96(runtime: &str, mode: &str) {
    let (d, _parent) = start(runtime, mode);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"partial answer").unwrap();
        thread::sleep(Duration::from_millis(50));
        SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
        drop(s); // RST
    });
    let mut s = socks5_connect(d.addr, target);
    let got = read_to_end(&mut s);
    assert!(got.starts_with(b"partial"), "{got:?}");
    d.wait_code(96, &format!("CONNECT {target}"));
}

/// Open descriptors of `pid`: (sockets, pipes, others).
fn open_fds(pid: u32) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let Ok(target) = std::fs::read_link(entry.unwrap().path()) else {
            continue; // closed while we looked
        };
        let t = target.to_string_lossy();
        if t.starts_with("socket:") {
            counts.0 += 1;
        } else if t.starts_with("pipe:") {
            counts.1 += 1;
        } else {
            counts.2 += 1;
        }
    }
    counts
}

/// Sockets held once the count stops changing (or drops to `target`), waiting at most 10 s.
fn settled_sockets(pid: u32, target: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = open_fds(pid).0;
    loop {
        thread::sleep(Duration::from_millis(100));
        let now = open_fds(pid).0;
        if now <= target || (now == last && target == usize::MAX) || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// The daemon's relay keeps at most this many idle pipes (runtime-std `MAX_IDLE_PIPES`),
/// two descriptors each.
const MAX_IDLE_PIPE_FDS: usize = 2 * 64;

/// One connection that ends the `i`-th way (of seven).
fn one_connection(proxy: SocketAddr, echo: SocketAddr, closed: SocketAddr, i: usize) {
    match i % 7 {
        // Normal: data both ways, client closes first.
        0 => {
            let mut s = socks5_connect(proxy, echo);
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
        }
        // Half-close by the client, then read to the end.
        1 => {
            let mut s = socks5_connect(proxy, echo);
            s.write_all(b"bye").unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            assert_eq!(read_to_end(&mut s), b"bye");
        }
        // Client reset in the middle of a tunnel.
        2 => {
            let mut s = socks5_connect(proxy, echo);
            s.write_all(b"x").unwrap();
            SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
        }
        // Garbage instead of a handshake.
        3 => {
            let mut s = connect(proxy);
            s.write_all(b"\x16\x03\x01 not socks").unwrap();
            let _ = read_to_end(&mut s);
        }
        // Client gives up in the middle of the handshake.
        4 => {
            let mut s = connect(proxy);
            s.write_all(&[5, 1]).unwrap();
        }
        // Target refuses.
        5 => {
            let mut s = connect(proxy);
            let SocketAddr::V4(t) = closed else { panic!() };
            let mut req = vec![5, 1, 0, 5, 1, 0, 1];
            req.extend_from_slice(&t.ip().octets());
            req.extend_from_slice(&t.port().to_be_bytes());
            s.write_all(&req).unwrap();
            let r = read_to_end(&mut s);
            assert_eq!(r[..4], [5, 0, 5, 5], "REP 5 refused");
        }
        // Tunnel where the target closes first (echo server closes after one message).
        _ => {
            let mut s = socks5_connect(proxy, echo);
            s.write_all(b"quit").unwrap();
            assert_eq!(read_to_end(&mut s), b"quit");
        }
    }
}

/// Echoes everything; a message `quit` is echoed and the connection closed.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() || &buf[..n] == b"quit" {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn no_descriptor_left_after_1000_connections(runtime: &str, mode: &str) {
    let (mut d, _parent) = start(runtime, mode);
    let pid = d.pid();
    let echo = echo_server();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let records = |d: &Daemon| d.log_lines().len();
    let settle = |d: &Daemon, want: usize| {
        d.wait_log(&format!("#{want}"), |_| records(d) >= want);
    };
    // Warm-up: one round of every ending, then 8 tunnels at once, so the daemon's bounded
    // pipe and buffer pools reach the size the sequential run below can ever need.
    for i in 0..70 {
        one_connection(d.addr, echo, closed, i);
    }
    let burst: Vec<_> = (0..8)
        .map(|_| {
            let (target, done) = duplex_target(3, 1 << 20);
            let proxy = d.addr;
            thread::spawn(move || {
                let mut s = socks5_connect(proxy, target);
                let mut w = s.try_clone().unwrap();
                let sender = thread::spawn(move || {
                    send_generated(&mut w, 5, 1 << 20);
                    w.shutdown(Shutdown::Write).unwrap();
                });
                receive_hashed(&mut s);
                sender.join().unwrap();
                done.recv_timeout(Duration::from_secs(30)).unwrap();
            })
        })
        .collect();
    for t in burst {
        t.join().unwrap();
    }
    settle(&d, 78);
    let before = settled_sockets(pid, usize::MAX);
    let others_before = open_fds(pid).2;
    for i in 0..1000 {
        one_connection(d.addr, echo, closed, i);
    }
    settle(&d, 1078);
    // A record is written just before its sockets close: wait for the count to settle. A
    // leak (hundreds of sockets here) never comes back down.
    let after = settled_sockets(pid, before);
    let (_, pipes, others) = open_fds(pid);
    assert!(
        after <= before,
        "sockets grew from {before} to {after} over 1,000 connections"
    );
    assert!(
        pipes <= MAX_IDLE_PIPE_FDS,
        "{pipes} pipe descriptors: more than the pool's bound"
    );
    assert_eq!(others, others_before, "other descriptors changed");
    assert!(d.is_running());
}
