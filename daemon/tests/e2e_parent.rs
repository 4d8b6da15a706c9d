//! Parent proxies end to end, on both runtimes: `parent` lines chain the daemon through
//! other SOCKS4/4a/5 servers (a second triproxy, microsocks when installed) and HTTP
//! CONNECT proxies (a small one in this file that records what it was sent), driven by
//! curl and by raw SOCKS clients. Everything listens on 127.0.0.1; the test CONNECT proxy
//! refuses any other destination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

both_runtimes!(
    curl_through_a_socks5_plus_parent_sends_the_name,
    socks4_parent_carries_ipv4_and_refuses_ipv6_with_code_44,
    connect_parent_with_credentials_delivers_the_targets_first_bytes,
    two_hops_socks5_then_connect,
    star_passes_the_clients_credentials,
    parent_failures_have_their_codes,
    weights_spread_connections_over_parents,
    tcp_parent_replaces_the_destination,
    microsocks_as_a_parent,
);

/// "127.0.0.1 1234" for a `parent` line.
fn host_port(a: SocketAddr) -> String {
    format!("{} {}", a.ip(), a.port())
}

/// A plain SOCKS daemon to chain through (any client on 127.0.0.1, any target).
fn plain_parent(runtime: &str) -> Daemon {
    Daemon::start(
        "log\nauth iponly\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n",
        runtime,
    )
}

/// The daemon under test with `parents` lines after its `allow` line.
fn front(runtime: &str, parents: &str) -> Daemon {
    Daemon::start(
        &format!("log\nauth iponly\nallow *\n{parents}socks -p0 -i127.0.0.1\n"),
        runtime,
    )
}

/// `%R` (remote) and `%h` (hops) of a default-format record.
fn remote_and_hops(line: &str) -> (String, String) {
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[5].to_owned(), f[8].to_owned())
}

fn curl_through_a_socks5_plus_parent_sends_the_name(runtime: &str) {
    let parent = plain_parent(runtime);
    let d = front(
        runtime,
        &format!("parent 1000 socks5+ {}\n", host_port(parent.addr)),
    );
    let origin = http_server("through the chain");
    let url = format!("http://localhost:{}/", origin.port());
    let (ok, out, err) = curl(&["--socks5-hostname", &d.addr.to_string(), &url]);
    assert!(ok, "curl: {err}");
    assert_eq!(out, "through the chain");
    // The parent was asked for the name, not an address.
    parent.wait_code(0, &format!("CONNECT localhost:{}", origin.port()));
    let line = d.wait_code(0, &format!("CONNECT localhost:{}", origin.port()));
    assert_eq!(
        remote_and_hops(&line),
        (parent.addr.to_string(), "1".into()),
        "{line}"
    );
}

fn socks4_parent_carries_ipv4_and_refuses_ipv6_with_code_44(runtime: &str) {
    let parent = plain_parent(runtime);
    let d = front(
        runtime,
        &format!("parent 1000 socks4 {}\n", host_port(parent.addr)),
    );
    let origin = http_server("over socks4");
    let (ok, out, err) = curl(&[
        "--socks5",
        &d.addr.to_string(),
        &format!("http://{origin}/"),
    ]);
    assert!(ok, "curl: {err}");
    assert_eq!(out, "over socks4");
    parent.wait_code(0, &format!("CONNECT {origin}"));
    // SOCKS4 has no IPv6: the front refuses with REP 8 and code 44, without a request.
    let v6 = TcpListener::bind("[::1]:0").unwrap().local_addr().unwrap();
    let mut s = connect(d.addr);
    let mut req = vec![5, 1, 0, 5, 1, 0, 4];
    req.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    req.extend_from_slice(&v6.port().to_be_bytes());
    s.write_all(&req).unwrap();
    let r = read_to_end(&mut s);
    assert_eq!(r[..4], [5, 0, 5, 8], "{r:?}");
    d.wait_code(44, &format!("CONNECT {v6}"));
}

/// An HTTP CONNECT proxy for tests: sends each request head it receives on the channel,
/// answers 407 unless the head carries `auth` (when given), 403 for anything but
/// 127.0.0.1, else connects, waits up to 200 ms for the target to speak first and sends
/// the 200 head together with those bytes in one write, then relays both ways.
fn connect_proxy(auth: Option<&'static str>) -> (SocketAddr, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            thread::spawn(move || serve_connect(stream, auth, &tx));
        }
    });
    (addr, rx)
}

fn serve_connect(mut s: TcpStream, auth: Option<&str>, tx: &mpsc::Sender<String>) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let Some(head) = read_head(&mut s) else {
        return;
    };
    let head = String::from_utf8_lossy(&head).into_owned();
    let _ = tx.send(head.clone());
    if let Some(a) = auth {
        if !head.contains(&format!("\r\nProxy-Authorization: Basic {a}\r\n")) {
            let _ = s.write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
            return;
        }
    }
    let target = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
        .and_then(|t| t.parse::<SocketAddr>().ok());
    let Some(target) = target.filter(|t| t.ip().is_loopback()) else {
        let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let Ok(mut t) = TcpStream::connect(target) else {
        let _ = s.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    t.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut reply = b"HTTP/1.1 200 Connection established\r\nX-Test: 1\r\n\r\n".to_vec();
    let mut first = [0u8; 512];
    if let Ok(n) = t.read(&mut first) {
        reply.extend_from_slice(&first[..n]);
    }
    t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    if s.write_all(&reply).is_err() {
        return;
    }
    let (mut s2, mut t2) = (s.try_clone().unwrap(), t.try_clone().unwrap());
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut t2);
        let _ = t2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut t, &mut s);
    let _ = s.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// Greets each connection with `220 hello\r\n`, then echoes until end of stream.
fn banner_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                let mut s = s;
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                if s.write_all(b"220 hello\r\n").is_err() {
                    return;
                }
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn connect_parent_with_credentials_delivers_the_targets_first_bytes(runtime: &str) {
    // base64("bob:s3cret")
    let (proxy, heads) = connect_proxy(Some("Ym9iOnMzY3JldA=="));
    let d = front(
        runtime,
        &format!("parent 1000 connect {} bob s3cret\n", host_port(proxy)),
    );
    let target = banner_echo_server();
    let mut s = socks5_connect(d.addr, target);
    assert_eq!(
        heads.recv_timeout(IO_TIMEOUT).unwrap(),
        format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\
             Proxy-Authorization: Basic Ym9iOnMzY3JldA==\r\n\r\n"
        )
    );
    // The banner came in the same segment as the 200 head: it must not be lost.
    assert_eq!(read_n(&mut s, 11), b"220 hello\r\n");
    s.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut s, 4), b"ping");
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"");
    let line = d.wait_code(0, &format!("CONNECT {target}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    // %O 4 (ping), %I 15 (banner + echo), one hop.
    assert_eq!((f[6], f[7], f[8]), ("4", "15", "1"), "{line}");

    // Without the password the proxy answers 407: code 33 and REP 1 for our client.
    let d = front(
        runtime,
        &format!("parent 1000 connect {}\n", host_port(proxy)),
    );
    let mut s = connect(d.addr);
    let SocketAddr::V4(t) = target else { panic!() };
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).unwrap();
    assert_eq!(read_to_end(&mut s)[..4], [5, 0, 5, 1]);
    let line = d.wait_code(33, &format!("CONNECT {target}"));
    assert!(line.contains(&format!(" {proxy} ")), "{line}");
}

fn two_hops_socks5_then_connect(runtime: &str) {
    let first = plain_parent(runtime);
    let (second, heads) = connect_proxy(None);
    let d = front(
        runtime,
        &format!(
            "parent 1000 socks5 {}\nparent 1000 connect {}\n",
            host_port(first.addr),
            host_port(second)
        ),
    );
    let target = banner_echo_server();
    let mut s = socks5_connect(d.addr, target);
    assert_eq!(read_n(&mut s, 11), b"220 hello\r\n");
    s.write_all(b"two hops").unwrap();
    assert_eq!(read_n(&mut s, 8), b"two hops");
    drop(s);
    // Hop 1 was asked for hop 2, hop 2 for the target.
    first.wait_code(0, &format!("CONNECT {second}"));
    let head = heads.recv_timeout(IO_TIMEOUT).unwrap();
    assert!(
        head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
        "{head}"
    );
    let line = d.wait_code(0, &format!("CONNECT {target}"));
    assert_eq!(
        remote_and_hops(&line),
        (first.addr.to_string(), "2".into()),
        "{line}"
    );
}

fn star_passes_the_clients_credentials(runtime: &str) {
    let auth = "log\nusers alice:CL:pw1\nauth strong\nallow alice\n";
    let parent = Daemon::start(&format!("{auth}socks -p0 -i127.0.0.1\n"), runtime);
    let d = Daemon::start(
        &format!(
            "{auth}parent 1000 socks5 {} * *\nsocks -p0 -i127.0.0.1\n",
            host_port(parent.addr)
        ),
        runtime,
    );
    let origin = http_server("as alice");
    let (ok, out, err) = curl(&[
        "--socks5",
        &d.addr.to_string(),
        "--proxy-user",
        "alice:pw1",
        &format!("http://{origin}/"),
    ]);
    assert!(ok, "curl: {err}");
    assert_eq!(out, "as alice");
    let line = parent.wait_code(0, &format!("CONNECT {origin}"));
    assert_eq!(line.split_whitespace().nth(3), Some("alice"), "{line}");
}

fn parent_failures_have_their_codes(runtime: &str) {
    let target = banner_echo_server();
    let SocketAddr::V4(t) = target else { panic!() };
    let request = |d: &Daemon| {
        let mut s = connect(d.addr);
        let mut req = vec![5, 1, 0, 5, 1, 0, 1];
        req.extend_from_slice(&t.ip().octets());
        req.extend_from_slice(&t.port().to_be_bytes());
        s.write_all(&req).unwrap();
        read_to_end(&mut s)
    };
    // A parent that rejects our password (RFC 1929 status != 0): code 56, REP 1.
    let strict = Daemon::start(
        "log\nusers bob:CL:right\nauth strong\nallow bob\nsocks -p0 -i127.0.0.1\n",
        runtime,
    );
    let d = front(
        runtime,
        &format!("parent 1000 socks5 {} bob wrong\n", host_port(strict.addr)),
    );
    assert_eq!(request(&d)[..4], [5, 0, 5, 1]);
    d.wait_code(56, &format!("CONNECT {target}"));
    // A parent that is not listening: code 13 and the refusal passed on (REP 5).
    let gone = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let d = front(
        runtime,
        &format!("parent 1000 socks5 {}\n", host_port(gone)),
    );
    assert_eq!(request(&d)[..4], [5, 0, 5, 5]);
    let line = d.wait_code(13, &format!("CONNECT {target}"));
    assert_eq!(remote_and_hops(&line).1, "1", "{line}");
    // A parent that refuses the destination: its REP (5, refused) is ours, code 65.
    let parent = plain_parent(runtime);
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let d = front(
        runtime,
        &format!("parent 1000 socks5 {}\n", host_port(parent.addr)),
    );
    let mut s = connect(d.addr);
    let SocketAddr::V4(c) = closed else { panic!() };
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&c.ip().octets());
    req.extend_from_slice(&c.port().to_be_bytes());
    s.write_all(&req).unwrap();
    assert_eq!(read_to_end(&mut s)[..4], [5, 0, 5, 5]);
    d.wait_code(65, &format!("CONNECT {closed}"));
    // A "parent" that answers garbage: code 53 (bad method selection), REP 1.
    let junk = TcpListener::bind("127.0.0.1:0").unwrap();
    let junk_addr = junk.local_addr().unwrap();
    thread::spawn(move || {
        for s in junk.incoming().map_while(Result::ok) {
            let mut s = s;
            let _ = s.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n");
            thread::sleep(Duration::from_millis(100));
        }
    });
    let d = front(
        runtime,
        &format!("parent 1000 socks5 {}\n", host_port(junk_addr)),
    );
    assert_eq!(request(&d)[..4], [5, 0, 5, 1]);
    d.wait_code(53, &format!("CONNECT {target}"));
}

fn weights_spread_connections_over_parents(runtime: &str) {
    let a = plain_parent(runtime);
    let b = plain_parent(runtime);
    let d = front(
        runtime,
        &format!(
            "parent 500 socks5 {}\nparent 500 socks5 {}\n",
            host_port(a.addr),
            host_port(b.addr)
        ),
    );
    let target = banner_echo_server();
    for _ in 0..40 {
        let mut s = socks5_connect(d.addr, target);
        assert_eq!(read_n(&mut s, 11), b"220 hello\r\n");
    }
    d.wait_log("40 records", |_| d.log_lines().len() >= 40);
    // 500/500: each parent takes about half; all 40 on one side has odds of 2^-39.
    let used_a = d
        .log_lines()
        .iter()
        .filter(|l| remote_and_hops(l).0 == a.addr.to_string())
        .count();
    assert!((1..40).contains(&used_a), "parent A took {used_a} of 40");
    a.wait_code(0, &format!("CONNECT {target}"));
    b.wait_code(0, &format!("CONNECT {target}"));
}

fn tcp_parent_replaces_the_destination(runtime: &str) {
    let echo = banner_echo_server();
    let d = front(runtime, &format!("parent 1000 tcp {}\n", host_port(echo)));
    // Whatever the client asks for, the tunnel ends at the `tcp` parent.
    let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut s = socks5_connect(d.addr, nowhere);
    assert_eq!(read_n(&mut s, 11), b"220 hello\r\n");
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s), b"");
    let line = d.wait_log("a record", |l| l.contains("CONNECT 127.0.0.1:9"));
    assert_eq!(
        remote_and_hops(&line),
        (echo.to_string(), "1".into()),
        "{line}"
    );
}

/// microsocks, if installed (CI installs it), on a free port; killed on drop.
struct Microsocks(Child, SocketAddr);

impl Drop for Microsocks {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn microsocks() -> Option<Microsocks> {
    let port = TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("microsocks")
        .args(["-i", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            return Some(Microsocks(child, addr));
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

fn microsocks_as_a_parent(runtime: &str) {
    let Some(ms) = microsocks() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs microsocks before the tests"
        );
        eprintln!("microsocks is not installed: skipped");
        return;
    };
    let d = front(
        runtime,
        &format!("parent 1000 socks5+ {}\n", host_port(ms.1)),
    );
    let origin = http_server("via microsocks");
    let url = format!("http://localhost:{}/", origin.port());
    let (ok, out, err) = curl(&["--socks5-hostname", &d.addr.to_string(), &url]);
    assert!(ok, "curl: {err}");
    assert_eq!(out, "via microsocks");
    d.wait_code(0, &format!("CONNECT localhost:{}", origin.port()));
}
