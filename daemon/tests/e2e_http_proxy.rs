//! The HTTP proxy service (3proxy `proxy`) end to end, on both runtimes: CONNECT tunnels
//! driven by curl (`--proxytunnel`) and by raw sockets, `Proxy-Authorization: Basic`
//! against `auth strong`, ACL refusals, unreachable targets, malformed and oversized
//! request heads, pipelined tunnel bytes, 64 MiB each way, parent chains (a triproxy
//! `socks` and a triproxy `proxy` as the parent), the standalone form and IPv6 loopback.
//! Methods other than CONNECT are forwarded (`e2e_http_forward.rs` tests that in depth).
//!
//! Records are written with `%N` before `%T` (see [`FORMAT`]) so the service name is
//! checked too. Everything listens on 127.0.0.1 or ::1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The default 3proxy format with `%N` inserted before `%T`: fields are `0` time, `1` %p,
/// `2` %E, `3` %U, `4` %C:%c, `5` %R:%r, `6` %O, `7` %I, `8` %h, `9` %N, `10..` %T.
const FORMAT: &str = "logformat \"G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %N %T\"\n";

/// Any client on 127.0.0.1, any target.
const OPEN: &str = "auth iponly\nallow * 127.0.0.1\n";

both_runtimes!(
    curl_tunnel_reaches_the_origin,
    proxy_authorization_against_auth_strong,
    acl_deny_is_403_and_no_match_is_407,
    acl_operation_of_connect_is_https,
    unreachable_target_is_502_code_13,
    other_methods_are_forwarded,
    malformed_heads_get_400_and_close,
    socks_clients_on_the_http_port_fail_at_once,
    oversized_head_is_400_code_516,
    large_head_in_small_pieces_still_connects,
    pipelined_tunnel_bytes_reach_the_target,
    concurrent_tunnels,
    integrity_64_mib_each_way,
    through_a_socks5_parent,
    through_an_http_connect_parent,
    through_an_http_parent,
    standalone_form,
    ipv6_loopback,
);

/// The daemon under test: `rules` (auth, users, ACL, parents) then one `proxy` service on
/// 127.0.0.1, logging to stdout in [`FORMAT`].
fn start(runtime: &str, rules: &str) -> Daemon {
    Daemon::start(
        &format!("log\n{FORMAT}{rules}proxy -p0 -i127.0.0.1\n"),
        runtime,
    )
}

/// Waits for a record with code `code` whose `%T` is `text` (or `text` followed by more
/// words, as 3proxy logs the whole request line); returns its fields. Checks `%N`.
fn record(d: &Daemon, code: u16, text: &str) -> Vec<String> {
    let code = format!("{code:05}");
    let line = d.wait_log(&format!("with code {code} and %T {text:?}"), |l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 || f[2] != code {
            return false;
        }
        let t = f[10..].join(" ");
        t == text || t.starts_with(&format!("{text} "))
    });
    let f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    assert_eq!(f[9], "PROXY", "%N: {line}");
    f
}

/// How many records carry code `code`.
fn count_code(d: &Daemon, code: u16) -> usize {
    let code = format!("{code:05}");
    d.log_lines()
        .iter()
        .filter(|l| l.split_whitespace().nth(2) == Some(code.as_str()))
        .count()
}

/// Waits until `n` records carry a code in `codes`; returns the last of them.
fn wait_nth_in(d: &Daemon, codes: std::ops::RangeInclusive<u16>, n: usize) -> String {
    let is = |l: &str| {
        l.split_whitespace()
            .nth(2)
            .and_then(|c| c.parse::<u16>().ok())
            .is_some_and(|c| codes.contains(&c))
    };
    d.wait_log(&format!("#{n} with a code in {codes:?}"), |_| {
        d.log_lines().iter().filter(|l| is(l)).count() >= n
    });
    d.log_lines()
        .into_iter()
        .filter(|l| is(l))
        .nth(n - 1)
        .unwrap()
}

/// curl through the proxy as a CONNECT tunnel, printing `\n` and the CONNECT status
/// after the body; returns (success, body, CONNECT status, stderr).
fn curl_tunnel(proxy: SocketAddr, url: &str, extra: &[&str]) -> (bool, String, String, String) {
    let proxy = format!("http://{proxy}");
    let mut args = vec![
        "--proxytunnel",
        "--proxy",
        &proxy,
        "--write-out",
        "\\n%{http_connect}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let (ok, out, err) = curl(&args);
    let (body, status) = out.rsplit_once('\n').unwrap_or(("", out.as_str()));
    (ok, body.to_owned(), status.to_owned(), err)
}

/// Sends `head` (and whatever follows it) in one write.
fn send(proxy: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = connect(proxy);
    s.write_all(bytes).unwrap();
    s
}

/// `CONNECT target HTTP/1.1` with a `Host` header and `extra` header lines.
fn connect_head(target: &str, extra: &str) -> String {
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n")
}

/// Reads a response head; returns its status code and the head as text. The status line
/// must be HTTP/1.0 or HTTP/1.1 (3proxy answers its own responses in HTTP/1.0).
fn response(s: &mut TcpStream) -> (u16, String) {
    let head = read_head(s).expect("a response head");
    let head = String::from_utf8(head).expect("an ASCII response head");
    let mut words = head.split(' ');
    let version = words.next().unwrap();
    assert!(
        version == "HTTP/1.1" || version == "HTTP/1.0",
        "status line: {head:?}"
    );
    let status = words.next().and_then(|c| c.parse().ok());
    (
        status.unwrap_or_else(|| panic!("status line: {head:?}")),
        head,
    )
}

/// The value of header `name` (case-insensitive) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Asserts the proxy closes the connection within 5 s (EOF or reset, not a stall);
/// returns what came before (a response body).
fn assert_closes(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                assert!(got.len() < 64 * 1024, "endless response");
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the proxy kept the connection open; got {got:?}")
            }
            Err(_) => return got,
        }
    }
}

/// A raw CONNECT that must succeed: the stream after the 200 head.
fn tunnel(proxy: SocketAddr, target: SocketAddr) -> TcpStream {
    let mut s = send(proxy, connect_head(&target.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    s
}

/// A 127.0.0.1 port nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn curl_tunnel_reaches_the_origin(runtime: &str) {
    let d = start(runtime, OPEN);
    let web = http_server("hello through the tunnel");
    let (ok, body, status, err) = curl_tunnel(d.addr, &format!("http://{web}/x"), &[]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "hello through the tunnel");
    assert_eq!(status, "200", "CONNECT status");
    let f = record(&d, 0, &format!("CONNECT {web}"));
    assert_eq!(f[1], d.addr.port().to_string(), "%p: {f:?}");
    assert_eq!(f[3], "-", "no user: {f:?}");
    assert!(f[4].starts_with("127.0.0.1:"), "%C:%c: {f:?}");
    assert_eq!(f[5], web.to_string(), "%R:%r: {f:?}");
    // curl's GET went out through the tunnel, the origin's answer came back.
    assert!(f[6].parse::<u64>().unwrap() > 0, "%O: {f:?}");
    assert!(
        f[7].parse::<u64>().unwrap() > "hello through the tunnel".len() as u64,
        "%I: {f:?}"
    );
    assert_eq!(f[8], "0", "%h: {f:?}");

    // A host name: curl sends `CONNECT localhost:PORT`, the proxy resolves it.
    let url = format!("http://localhost:{}/", web.port());
    let (ok, body, _, err) = curl_tunnel(d.addr, &url, &[]);
    assert!(ok, "curl localhost failed: {err}");
    assert_eq!(body, "hello through the tunnel");
    let f = record(&d, 0, &format!("CONNECT localhost:{}", web.port()));
    assert!(f[5].ends_with(&format!(":{}", web.port())), "%R:%r: {f:?}");
}

fn proxy_authorization_against_auth_strong(runtime: &str) {
    let d = start(
        runtime,
        "users alice:CL:secret bob:CL:other\nauth strong\nallow alice\n",
    );
    let web = http_server("for alice");
    let url = format!("http://{web}/");
    let text = format!("CONNECT {web}");
    let (ok, body, status, err) = curl_tunnel(d.addr, &url, &["--proxy-user", "alice:secret"]);
    assert!(ok, "curl failed: {err}");
    assert_eq!((body.as_str(), status.as_str()), ("for alice", "200"));
    let f = record(&d, 0, &text);
    assert_eq!(f[3], "alice", "%U: {f:?}");

    // No credentials: 407, code 4 (no user name).
    let (ok, _, status, _) = curl_tunnel(d.addr, &url, &[]);
    assert!(!ok, "no credentials must not pass auth strong");
    assert_eq!(status, "407");
    record(&d, 4, &text);
    // On the wire: the challenge, and the connection closes.
    let mut s = send(d.addr, connect_head(&web.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 407, "{head}");
    assert_eq!(
        header(&head, "Proxy-Authenticate"),
        Some("Basic realm=\"proxy\""),
        "{head}"
    );
    assert_closes(&mut s);
    d.wait_log("a second code-4 record", |_| count_code(&d, 4) >= 2);

    // A wrong password: 407, code 6 (wrong cleartext password).
    let (ok, _, status, _) = curl_tunnel(d.addr, &url, &["--proxy-user", "alice:guess"]);
    assert!(!ok, "a wrong password must fail");
    assert_eq!(status, "407");
    let f = record(&d, 6, &text);
    assert_eq!(f[3], "alice", "%U of a failed login: {f:?}");
    // An unknown user: 407, code 5.
    let (ok, _, status, _) = curl_tunnel(d.addr, &url, &["--proxy-user", "eve:secret"]);
    assert!(!ok);
    assert_eq!(status, "407");
    record(&d, 5, &text);
    // A known user that no ACL entry names: code 3 (no match), which 3proxy's HTTP proxy
    // answers 407 (only code 1, an explicit `deny`, is 403).
    let (ok, _, status, _) = curl_tunnel(d.addr, &url, &["--proxy-user", "bob:other"]);
    assert!(!ok);
    assert_eq!(status, "407");
    let f = record(&d, 3, &text);
    assert_eq!(f[3], "bob", "{f:?}");

    // Header names are case-insensitive (RFC 9110 section 5.1); base64("alice:secret").
    let mut s = send(
        d.addr,
        connect_head(
            &web.to_string(),
            "proxy-authorization: Basic YWxpY2U6c2VjcmV0\r\n",
        )
        .as_bytes(),
    );
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let reply = String::from_utf8(read_to_end(&mut s)).unwrap();
    assert!(reply.ends_with("for alice"), "{reply}");
    // Credentials that are not base64 make a malformed request: 400, code 512 (3proxy
    // ignores them, which then asks again with 407), never a tunnel.
    let mut s = send(
        d.addr,
        connect_head(&web.to_string(), "Proxy-Authorization: Basic !!!\r\n").as_bytes(),
    );
    let (status, head) = response(&mut s);
    assert_eq!(status, 400, "{head}");
    assert_closes(&mut s);
    d.wait_code(512, "");
}

fn acl_deny_is_403_and_no_match_is_407(runtime: &str) {
    let denied = http_server("never");
    let allowed = http_server("allowed");
    let d = start(
        runtime,
        &format!(
            "auth iponly\ndeny * * 127.0.0.1 {}\nallow *\n",
            denied.port()
        ),
    );
    let (ok, _, status, _) = curl_tunnel(d.addr, &format!("http://{denied}/"), &[]);
    assert!(!ok, "a denied CONNECT must fail");
    assert_eq!(status, "403");
    record(&d, 1, &format!("CONNECT {denied}"));
    let mut s = send(d.addr, connect_head(&denied.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 403, "{head}");
    assert_eq!(header(&head, "Proxy-Authenticate"), None, "{head}");
    assert_closes(&mut s);
    // Other ports pass.
    let (ok, body, _, err) = curl_tunnel(d.addr, &format!("http://{allowed}/"), &[]);
    assert!(ok, "{err}");
    assert_eq!(body, "allowed");

    // No entry matches: code 3, which 3proxy's HTTP proxy answers 407, not 403.
    let d = start(runtime, "auth iponly\nallow * * 192.0.2.1\n");
    let mut s = send(d.addr, connect_head(&allowed.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 407, "{head}");
    assert_closes(&mut s);
    record(&d, 3, &format!("CONNECT {allowed}"));
}

/// 3proxy checks an HTTP CONNECT as the operation `HTTP_CONNECT` (also spelled `HTTPS`),
/// not `CONNECT` (which SOCKS and the port mappers use): 3proxy.md section 7.
fn acl_operation_of_connect_is_https(runtime: &str) {
    let https_denied = http_server("never");
    let socks_op_denied = http_server("CONNECT is not HTTP_CONNECT");
    let d = start(
        runtime,
        &format!(
            "auth iponly\ndeny * * * {} HTTPS\ndeny * * * {} CONNECT\nallow *\n",
            https_denied.port(),
            socks_op_denied.port()
        ),
    );
    let mut s = send(
        d.addr,
        connect_head(&https_denied.to_string(), "").as_bytes(),
    );
    let (https_status, _) = response(&mut s);
    let mut s = send(
        d.addr,
        connect_head(&socks_op_denied.to_string(), "").as_bytes(),
    );
    let (connect_status, _) = response(&mut s);
    assert_eq!(
        (https_status, connect_status),
        (403, 200),
        "an HTTP CONNECT is the ACL operation HTTPS (HTTP_CONNECT), not CONNECT: \
         `deny ... HTTPS` must refuse it, `deny ... CONNECT` must not"
    );
    record(&d, 1, &format!("CONNECT {https_denied}"));
    let (ok, body, _, err) = curl_tunnel(d.addr, &format!("http://{socks_op_denied}/"), &[]);
    assert!(ok, "{err}");
    assert_eq!(body, "CONNECT is not HTTP_CONNECT");
}

fn unreachable_target_is_502_code_13(runtime: &str) {
    let d = start(runtime, OPEN);
    let gone = closed_port();
    let (ok, _, status, _) = curl_tunnel(d.addr, &format!("http://{gone}/"), &[]);
    assert!(!ok);
    assert_eq!(status, "502");
    record(&d, 13, &format!("CONNECT {gone}"));
    let mut s = send(d.addr, connect_head(&gone.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 502, "{head}");
    assert_closes(&mut s);
    d.wait_log("a second code-13 record", |_| count_code(&d, 13) >= 2);
}

/// A method other than CONNECT is forwarded to the origin (the forwarding itself is
/// tested in depth in `e2e_http_forward.rs`); here: the answer, one record per request
/// with the request line as `%T`, and curl as a plain proxy client.
fn other_methods_are_forwarded(runtime: &str) {
    let d = start(runtime, OPEN);
    let web = http_server("forwarded body");
    let mut s = send(
        d.addr,
        format!("GET http://{web}/page HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    let body = assert_closes(&mut s);
    assert!(String::from_utf8_lossy(&body).contains("forwarded body"));
    let f = record(&d, 0, &format!("GET http://{web}/page"));
    assert_eq!(f[5], web.to_string(), "the origin reached: {f:?}");
    let (ok, code, err) = curl(&[
        "--proxy",
        &format!("http://{}", d.addr),
        "--write-out",
        "%{http_code}",
        "--output",
        "/dev/null",
        &format!("http://{web}/"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(code, "200");
    record(&d, 0, &format!("GET http://{web}/"));
}

fn malformed_heads_get_400_and_close(runtime: &str) {
    let d = start(runtime, OPEN);
    let web = http_server("still serving");
    // The last two never send an empty line: they must be answered at once, well before
    // the 30 s head timeout (the test's reads give up after 20 s).
    let inputs: [(&str, &[u8]); 5] = [
        ("a word", b"HELLO\r\n\r\n"),
        (
            "binary garbage",
            b"\x00\x01\x02\xff\xfe garbage\x7f\r\n\r\n",
        ),
        ("an unclosed IPv6 bracket", b"CONNECT [::1 HTTP/1.1\r\n\r\n"),
        ("a SOCKS5 greeting", b"\x05\x01\x00"),
        (
            "the start of a TLS ClientHello",
            b"\x16\x03\x01\x00\xa5\x01",
        ),
    ];
    for (i, (what, input)) in inputs.iter().enumerate() {
        let mut s = send(d.addr, input);
        let (status, head) = response(&mut s);
        assert_eq!(status, 400, "{what}: {head}");
        assert_closes(&mut s);
        let line = wait_nth_in(&d, 510..=516, i + 1);
        assert_eq!(
            line.split_whitespace().nth(9),
            Some("PROXY"),
            "{what}: {line}"
        );
    }
    // `https://` in a request line is not a scheme an HTTP proxy forwards: 400, code 513.
    let mut s = send(
        d.addr,
        format!("GET https://{web}/ HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes(),
    );
    let (status, head) = response(&mut s);
    assert_eq!(status, 400, "https://: {head}");
    assert_closes(&mut s);
    d.wait_code(513, "");
    // A client that closes in the middle of its head gets no answer, and the proxy
    // closes too.
    let mut s = send(
        d.addr,
        format!("CONNECT {web} HTTP/1.1\r\nHost: ").as_bytes(),
    );
    s.shutdown(Shutdown::Write).unwrap();
    assert!(assert_closes(&mut s).is_empty(), "no answer to half a head");
    // The daemon keeps serving.
    let (ok, body, _, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &[]);
    assert!(ok, "{err}");
    assert_eq!(body, "still serving");
}

/// curl pointed at the HTTP port as if it were a SOCKS proxy: its greeting cannot start an
/// HTTP request, so the daemon answers 400 at once (code 512) and curl fails on the reply,
/// instead of both waiting for the 30 s head timeout (curl would give up at 15 s).
fn socks_clients_on_the_http_port_fail_at_once(runtime: &str) {
    let d = start(runtime, OPEN);
    let web = http_server("never reached");
    let proxy = d.addr.to_string();
    for (i, flag) in ["--socks5-hostname", "--socks4"].iter().enumerate() {
        let started = std::time::Instant::now();
        let (ok, body, err) = curl(&[flag, &proxy, &format!("http://{web}/")]);
        let took = started.elapsed();
        assert!(!ok && body.is_empty(), "{flag}: {body} {err}");
        assert!(
            took < Duration::from_secs(10) && !err.contains("timed out"),
            "{flag}: curl waited {took:?}: {err}"
        );
        wait_nth_in(&d, 512..=512, i + 1);
    }
}

fn oversized_head_is_400_code_516(runtime: &str) {
    let d = start(runtime, OPEN);
    let web = http_server("still serving");
    let filler = |count: usize, width: usize| {
        let mut head = format!("CONNECT {web} HTTP/1.1\r\nHost: {web}\r\n");
        for i in 0..count {
            head.push_str(&format!("X-Filler-{i:03}: {}\r\n", "f".repeat(width)));
        }
        head + "\r\n"
    };
    // More than 16 KiB in 20 fields; then 150 fields (more than the 100 parsed) in 4 KiB.
    for (i, head) in [filler(20, 1000), filler(150, 8)].into_iter().enumerate() {
        let len = head.len();
        let mut s = connect(d.addr);
        let mut writer = s.try_clone().unwrap();
        // The proxy may answer and close before it has read everything: write on the side.
        let w = thread::spawn(move || {
            let _ = writer.write_all(head.as_bytes());
        });
        let (status, reply) = response(&mut s);
        assert_eq!(status, 400, "a {len}-byte head: {reply}");
        assert_closes(&mut s);
        w.join().unwrap();
        let line = wait_nth_in(&d, 516..=516, i + 1);
        assert_eq!(line.split_whitespace().nth(9), Some("PROXY"), "{line}");
    }
    let (ok, body, _, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &[]);
    assert!(ok, "{err}");
    assert_eq!(body, "still serving");
}

/// A CONNECT head of `size` bytes: padding headers, one of them a single 3,000-byte line
/// (longer than the driver's 1 KiB handshake buffer).
fn big_connect_head(target: SocketAddr, size: usize) -> Vec<u8> {
    let mut extra = format!("X-Long: {}\r\n", "l".repeat(3000));
    let mut i = 0;
    while extra.len() + 100 < size {
        extra.push_str(&format!("X-Pad-{i:03}: {}\r\n", "p".repeat(40)));
        i += 1;
    }
    connect_head(&target.to_string(), &extra).into_bytes()
}

fn large_head_in_small_pieces_still_connects(runtime: &str) {
    let d = start(runtime, OPEN);
    let echo = echo_target();
    let head = big_connect_head(echo, 4096);
    assert!((4000..5000).contains(&head.len()), "{}", head.len());
    // In 97-byte writes, each its own segment.
    let mut s = connect(d.addr);
    s.set_nodelay(true).unwrap();
    for piece in head.chunks(97) {
        s.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
    let (status, reply) = response(&mut s);
    assert_eq!(status, 200, "{reply}");
    s.write_all(b"after a 4 KiB head").unwrap();
    assert_eq!(read_n(&mut s, 18), b"after a 4 KiB head");
    drop(s);
    record(&d, 0, &format!("CONNECT {echo}"));
    // In one write, with tunnel bytes behind it.
    let mut all = big_connect_head(echo, 4096);
    all.extend_from_slice(b"behind the head");
    let mut s = send(d.addr, &all);
    let (status, reply) = response(&mut s);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(read_n(&mut s, 15), b"behind the head");
}

fn pipelined_tunnel_bytes_reach_the_target(runtime: &str) {
    let d = start(runtime, OPEN);
    // A target that reports what it received before the client's FIN, then answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (mut t, _) = listener.accept().unwrap();
        t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let got = read_n(&mut t, 14);
        t.write_all(b"pong:").unwrap();
        t.write_all(&got).unwrap();
        let _ = tx.send(got);
        let rest = read_to_end(&mut t);
        let _ = tx.send(rest);
    });
    let mut all = connect_head(&target.to_string(), "").into_bytes();
    all.extend_from_slice(b"ping-pipelined");
    let mut s = send(d.addr, &all);
    assert_eq!(
        rx.recv_timeout(IO_TIMEOUT).unwrap(),
        b"ping-pipelined",
        "the target got the bytes written with the head"
    );
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(
        read_n(&mut s, 19),
        b"pong:ping-pipelined",
        "the target's answer follows the head"
    );
    s.shutdown(Shutdown::Write).unwrap();
    assert_eq!(rx.recv_timeout(IO_TIMEOUT).unwrap(), b"", "nothing more");
    assert!(read_to_end(&mut s).is_empty());
    let f = record(&d, 0, &format!("CONNECT {target}"));
    assert_eq!((f[6].as_str(), f[7].as_str()), ("14", "19"), "%O %I: {f:?}");

    // Two CONNECT heads in one write: the second is tunnel data for the target.
    let echo = echo_target();
    let first = connect_head(&echo.to_string(), "");
    let mut all = first.clone().into_bytes();
    all.extend_from_slice(first.as_bytes());
    let mut s = send(d.addr, &all);
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    assert_eq!(read_n(&mut s, first.len()), first.as_bytes(), "echoed");

    // The head and 256 KiB behind it in one write (far more than a read buffer), with a
    // leading empty line (RFC 9112 section 2.2); the data comes back intact.
    let mut data = vec![0u8; 256 * 1024];
    Stream64::new(0x5EED).fill(&mut data);
    let mut all = b"\r\n".to_vec();
    all.extend_from_slice(connect_head(&echo.to_string(), "").as_bytes());
    all.extend_from_slice(&data);
    let s = connect(d.addr);
    let mut writer = s.try_clone().unwrap();
    let w = thread::spawn(move || writer.write_all(&all).unwrap());
    let mut s = s;
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    assert!(read_n(&mut s, data.len()) == data, "256 KiB echoed intact");
    w.join().unwrap();

    // Tunnel bytes written separately right after the head, before the 200 can have
    // come back (while the proxy connects): not lost either.
    let mut s = send(d.addr, connect_head(&echo.to_string(), "").as_bytes());
    s.write_all(b"early bird").unwrap();
    let (status, head) = response(&mut s);
    assert_eq!(status, 200, "{head}");
    assert_eq!(read_n(&mut s, 10), b"early bird");
}

/// 64 tunnels at once, each with its own round trip.
fn concurrent_tunnels(runtime: &str) {
    let d = start(runtime, OPEN);
    let echo = echo_target();
    let addr = d.addr;
    let clients: Vec<_> = (0..64u32)
        .map(|i| {
            thread::spawn(move || {
                let mut s = tunnel(addr, echo);
                let msg = format!("client {i:02}");
                s.write_all(msg.as_bytes()).unwrap();
                assert_eq!(read_n(&mut s, msg.len()), msg.as_bytes());
                s.shutdown(Shutdown::Write).unwrap();
                assert!(read_to_end(&mut s).is_empty());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    d.wait_log("64 success records", |_| count_code(&d, 0) >= 64);
}

fn integrity_64_mib_each_way(runtime: &str) {
    const TOTAL: usize = 64 * 1024 * 1024;
    let d = start(runtime, OPEN);
    let (target, done) = duplex_target(0x4854_5450, TOTAL);
    let s = tunnel(d.addr, target);
    exchange_and_check(s, &done, 0xC0_11EC7, TOTAL);
    let f = record(&d, 0, &format!("CONNECT {target}"));
    assert_eq!(f[6], TOTAL.to_string(), "%O: {f:?}");
    assert_eq!(f[7], TOTAL.to_string(), "%I: {f:?}");
}

fn through_a_socks5_parent(runtime: &str) {
    let parent = Daemon::start(
        "log\nauth iponly\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n",
        runtime,
    );
    let d = start(
        runtime,
        &format!(
            "auth iponly\nallow *\nparent 1000 socks5 127.0.0.1 {}\n",
            parent.addr.port()
        ),
    );
    let web = http_server("via a socks parent");
    let (ok, body, status, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &[]);
    assert!(ok, "curl: {err}");
    assert_eq!(
        (body.as_str(), status.as_str()),
        ("via a socks parent", "200")
    );
    parent.wait_code(0, &format!("CONNECT {web}"));
    let f = record(&d, 0, &format!("CONNECT {web}"));
    assert_eq!(f[5], parent.addr.to_string(), "%R:%r is the parent: {f:?}");
    assert_eq!(f[8], "1", "%h: {f:?}");
    // The parent refuses an unreachable target: its REP 5 is code 65, answered 502.
    let gone = closed_port();
    let mut s = send(d.addr, connect_head(&gone.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 502, "{head}");
    record(&d, 65, &format!("CONNECT {gone}"));
}

fn through_an_http_connect_parent(runtime: &str) {
    // A second triproxy `proxy` is the parent, with credentials.
    let parent = start(runtime, "users carol:CL:hop\nauth strong\nallow carol\n");
    let d = start(
        runtime,
        &format!(
            "auth iponly\nallow *\nparent 1000 connect 127.0.0.1 {} carol hop\n",
            parent.addr.port()
        ),
    );
    let web = http_server("via an http parent");
    let (ok, body, status, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &[]);
    assert!(ok, "curl: {err}");
    assert_eq!(
        (body.as_str(), status.as_str()),
        ("via an http parent", "200")
    );
    let p = record(&parent, 0, &format!("CONNECT {web}"));
    assert_eq!(p[3], "carol", "the parent saw the credentials: {p:?}");
    let f = record(&d, 0, &format!("CONNECT {web}"));
    assert_eq!(f[5], parent.addr.to_string(), "%R:%r is the parent: {f:?}");
    assert_eq!(f[8], "1", "%h: {f:?}");

    // Without credentials the parent answers 407: code 33, and our client gets 502.
    let d = start(
        runtime,
        &format!(
            "auth iponly\nallow *\nparent 1000 connect 127.0.0.1 {}\n",
            parent.addr.port()
        ),
    );
    let mut s = send(d.addr, connect_head(&web.to_string(), "").as_bytes());
    let (status, head) = response(&mut s);
    assert_eq!(status, 502, "{head}");
    record(&d, 33, &format!("CONNECT {web}"));
}

/// `parent http`: a CONNECT is asked of it as CONNECT (it used to get the raw tunnel
/// bytes), and a plain request goes to it in absolute form with the parent's
/// credentials as `Proxy-Authorization`.
fn through_an_http_parent(runtime: &str) {
    let parent = start(runtime, "users carol:CL:hop\nauth strong\nallow carol\n");
    let d = start(
        runtime,
        &format!(
            "auth iponly\nallow *\nparent 1000 http 127.0.0.1 {} carol hop\n",
            parent.addr.port()
        ),
    );
    let web = http_server("via an http parent");
    let (ok, body, status, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &[]);
    assert!(ok, "curl: {err}");
    assert_eq!(
        (body.as_str(), status.as_str()),
        ("via an http parent", "200")
    );
    let p = record(&parent, 0, &format!("CONNECT {web}"));
    assert_eq!(p[3], "carol", "the parent saw the credentials: {p:?}");
    record(&d, 0, &format!("CONNECT {web}"));

    let (ok, code, err) = curl(&[
        "--proxy",
        &format!("http://{}", d.addr),
        "--write-out",
        "%{http_code}",
        "--output",
        "/dev/null",
        &format!("http://{web}/plain"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(code, "200");
    let p = record(&parent, 0, &format!("GET http://{web}/plain"));
    assert_eq!(p[3], "carol", "{p:?}");
    let f = record(&d, 0, &format!("GET http://{web}/plain"));
    assert_eq!(f[5], parent.addr.to_string(), "%R:%r is the parent: {f:?}");
    assert_eq!(f[8], "1", "%h: {f:?}");
}

fn standalone_form(runtime: &str) {
    let port = closed_port().port();
    let d = Daemon::spawn(&[
        "--runtime",
        runtime,
        "proxy",
        &format!("-p{port}"),
        "-i127.0.0.1",
    ]);
    assert_eq!(d.addr, SocketAddr::from(([127, 0, 0, 1], port)));
    let web = http_server("standalone");
    let (ok, body, status, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &[]);
    assert!(ok, "curl: {err}");
    assert_eq!((body.as_str(), status.as_str()), ("standalone", "200"));
    // The default format: `%T` is the last field.
    let line = d.wait_code(0, &format!("CONNECT {web}"));
    assert_eq!(
        line.split_whitespace().nth(5),
        Some(web.to_string().as_str()),
        "{line}"
    );
}

fn ipv6_loopback(runtime: &str) {
    if TcpListener::bind("[::1]:0").is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI machines have IPv6 loopback"
        );
        eprintln!("no IPv6 loopback: skipped");
        return;
    }
    let d = Daemon::start(
        &format!("log\n{FORMAT}auth iponly\nallow *\nproxy -p0 -i::1\n"),
        runtime,
    );
    assert_eq!(d.addr.ip().to_string(), "::1");
    let web = http_server_on("[::1]:0", "over ipv6");
    let (ok, body, status, err) = curl_tunnel(d.addr, &format!("http://{web}/"), &["--globoff"]);
    assert!(ok, "curl: {err}");
    assert_eq!((body.as_str(), status.as_str()), ("over ipv6", "200"));
    let f = record(&d, 0, &format!("CONNECT {web}"));
    // `%R:%r` is the address, a colon and the port, without brackets (as in 3proxy).
    assert_eq!(f[5], format!("{}:{}", web.ip(), web.port()), "%R:%r: {f:?}");
    // Raw, and a bracketed literal with an IPv4 target through the IPv6 listener.
    let v4 = http_server("v4 target");
    let mut s = tunnel(d.addr, v4);
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let reply = String::from_utf8(read_to_end(&mut s)).unwrap();
    assert!(reply.ends_with("v4 target"), "{reply}");
}
