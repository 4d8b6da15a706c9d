//! End-to-end: the `triproxy` binary on loopback, driven by curl and raw sockets, on both
//! runtimes. Each scenario runs once per runtime (`<scenario>::std`, `<scenario>::smol`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

const OPEN: &str = "log\nauth iponly\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n";
const STRONG: &str =
    "log\nusers alice:CL:wonderland bob:builder\nauth strong\nallow alice,bob\nsocks -p0 -i127.0.0.1\n";

both_runtimes!(
    curl_every_socks_flavour,
    curl_proxy_user_against_auth_strong,
    wrong_password_gets_rfc1929_failure,
    denied_client_gets_refusal_and_code,
    no_acl_match_is_code_3,
    integrity_64_mib_each_way,
    half_close_keeps_the_answer_flowing,
    bad_input_gets_the_right_reply,
    pipelined_handshake_and_data,
    external_source_address_and_backlog,
    bind_two_replies_and_relay,
    maxconn_holds_further_clients_in_the_backlog,
    out_of_descriptors_is_rep_1_code_11_and_recovers,
);

/// A daemon under a small open-file limit, filled with idle tunnels. A client accepted with
/// the last descriptor, for which no outgoing socket can be made, gets REP 1 and the log
/// says 11 (3proxy's socket() failure), not 13; clients beyond it wait in the backlog. Once
/// tunnels close, the daemon serves again. Which of the two happens first depends on how
/// many descriptors the runtime holds, so the two limits of both parities are tried.
fn out_of_descriptors_is_rep_1_code_11_and_recovers(runtime: &str) {
    let echo = echo_target();
    let mut saw_rep_1 = false;
    for limit in [40, 41] {
        let cfg = triproxy_test_support::scratch_dir().join("triproxy.cfg");
        std::fs::write(&cfg, OPEN).unwrap();
        let d = Daemon::spawn_binary(
            std::path::Path::new("/bin/sh"),
            &[
                "-c",
                &format!("ulimit -n {limit} && exec \"$0\" \"$@\""),
                env!("CARGO_BIN_EXE_triproxy"),
                "--runtime",
                runtime,
                cfg.to_str().unwrap(),
            ],
        );
        let mut held = Vec::new();
        let mut ended_with = None;
        for _ in 0..limit {
            match socks5_reply(d.addr, echo, Duration::from_millis(1500)) {
                Some((reply, s)) if reply[1] == 0 => held.push(s),
                other => {
                    ended_with = Some(other.map(|(reply, _)| reply[1]));
                    break;
                }
            }
        }
        let ended_with = ended_with.expect("the descriptor limit was never reached");
        assert!(
            held.len() >= 5,
            "limit {limit}: only {} tunnels before the limit",
            held.len()
        );
        // None: accepted by the kernel, not by the daemon; the client waits in the backlog.
        if let Some(rep) = ended_with {
            assert_eq!(rep, 1, "limit {limit}: general failure");
            d.wait_code(11, "");
            saw_rep_1 = true;
        }
        // Every held tunnel still works, and freeing some lets the daemon serve again.
        let mut first = held.remove(0);
        first.write_all(b"ping").unwrap();
        assert_eq!(read_n(&mut first, 4), b"ping");
        drop(first);
        held.truncate(held.len().saturating_sub(4));
        // The daemon closes the freed tunnels' sockets when it sees their ends: until then
        // a new client may still get REP 1.
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        let mut again = loop {
            let (reply, s) = socks5_reply(d.addr, echo, IO_TIMEOUT).expect("an answer");
            let rep = reply[1];
            if rep == 0 {
                break s;
            }
            assert_eq!(rep, 1, "limit {limit}");
            assert!(
                std::time::Instant::now() < deadline,
                "limit {limit}: still REP 1 after tunnels were closed"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        again.write_all(b"pong").unwrap();
        assert_eq!(read_n(&mut again, 4), b"pong");
    }
    assert!(saw_rep_1, "one of the two limits must end on REP 1");
}

/// `maxconn 2`: two tunnels are served; a third client is accepted by the kernel but gets
/// no answer (3proxy stops accepting) until one of the two ends, then it is served.
fn maxconn_holds_further_clients_in_the_backlog(runtime: &str) {
    let d = Daemon::start(
        "log\nauth iponly\nallow * 127.0.0.1\nmaxconn 2\nsocks -p0 -i127.0.0.1\n",
        runtime,
    );
    let echo = echo_target();
    let first = socks5_connect(d.addr, echo);
    let _second = socks5_connect(d.addr, echo);
    let mut third = connect(d.addr);
    third.write_all(&[5, 1, 0]).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = std::io::Read::read(&mut third, &mut byte);
    assert!(
        waited.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "the third client must wait while two are served: {waited:?}"
    );
    drop(first);
    third.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(read_n(&mut third, 2), [5, 0], "served once a slot is free");
}

/// SOCKS5 BIND: the first reply says where to connect, a peer connects there, the second
/// reply names the peer, then bytes flow both ways; a peer from another address is refused.
fn bind_two_replies_and_relay(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 0])
        .unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    let first = read_n(&mut s, 10);
    assert_eq!(first[..4], [5, 0, 0, 1]);
    let bnd = SocketAddr::from((
        [first[4], first[5], first[6], first[7]],
        u16::from_be_bytes([first[8], first[9]]),
    ));
    assert_eq!(bnd.ip().to_string(), "127.0.0.1");
    let mut peer = std::net::TcpStream::connect(bnd).unwrap();
    let second = read_n(&mut s, 10);
    assert_eq!(second[..4], [5, 0, 0, 1]);
    let announced = u16::from_be_bytes([second[8], second[9]]);
    assert_eq!(
        announced,
        peer.local_addr().unwrap().port(),
        "second reply names the peer"
    );
    peer.write_all(b"from peer").unwrap();
    assert_eq!(read_n(&mut s, 9), b"from peer");
    s.write_all(b"from client").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    peer.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(read_to_end(&mut peer), b"from client");
    drop(peer);
    assert!(read_to_end(&mut s).is_empty());
    d.wait_code(0, "BIND 127.0.0.1:0");

    // The request names 127.0.0.2 as the peer; the connection comes from 127.0.0.1 (no
    // packet is sent to 127.0.0.2: it is only compared).
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 2, 0, 0])
        .unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    let first = read_n(&mut s, 10);
    let bnd = SocketAddr::from((
        [first[4], first[5], first[6], first[7]],
        u16::from_be_bytes([first[8], first[9]]),
    ));
    let _peer = std::net::TcpStream::connect(bnd).unwrap();
    assert_eq!(
        read_n(&mut s, 2),
        [5, 2],
        "second reply refuses the wrong peer"
    );
    d.wait_code(470, "BIND 127.0.0.2:0");
}

/// `external` binds outgoing sockets to a source address (without reserving a port at
/// bind time); the target sees that address.
fn external_source_address_and_backlog(runtime: &str) {
    let d = Daemon::start(
        "log\nexternal 127.0.0.1\nbacklog 64\nauth iponly\nsocks -p0 -i127.0.0.1 -e127.0.0.1\n",
        runtime,
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.write_all(b"seen").unwrap();
        peer
    });
    let mut s = socks5_connect(d.addr, target);
    assert_eq!(read_to_end(&mut s), b"seen");
    assert_eq!(peer.join().unwrap().ip().to_string(), "127.0.0.1");
    drop(s); // the target already closed; the tunnel ends when the client does too
    d.wait_code(0, &format!("CONNECT {target}"));
}

fn proxy_url(scheme: &str, d: &Daemon) -> String {
    format!("{scheme}://{}", d.addr)
}

fn curl_every_socks_flavour(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    let web = http_server("hello through triproxy");
    for (i, (flag, host)) in [
        ("--socks4", "127.0.0.1"),
        ("--socks4a", "localhost"),
        ("--socks5", "127.0.0.1"),
        ("--socks5-hostname", "localhost"),
    ]
    .into_iter()
    .enumerate()
    {
        let url = format!("http://{host}:{}/x", web.port());
        let (ok, body, err) = curl(&[flag, &d.addr.to_string(), &url]);
        assert!(ok, "{flag}: curl failed: {err}");
        assert_eq!(body, "hello through triproxy", "{flag}");
        // One success record per connection, each naming what was requested.
        let want = format!("CONNECT {host}:{}", web.port());
        d.wait_log(&format!("#{} for {flag}", i + 1), |_| {
            d.log_lines()
                .iter()
                .filter(|l| l.split_whitespace().nth(2) == Some("00000"))
                .count()
                > i
        });
        assert!(d.log_lines().iter().any(|l| l.ends_with(&want)), "{want}");
    }
    // Default logformat: `%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %T`.
    let line = d.wait_code(0, "CONNECT 127.0.0.1");
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        f[1],
        d.addr.port().to_string(),
        "%p is the listen port: {line}"
    );
    assert_eq!(f[3], "-", "no user: {line}");
    assert!(f[4].starts_with("127.0.0.1:"), "%C:%c: {line}");
    assert_eq!(f[5], format!("127.0.0.1:{}", web.port()), "%R:%r: {line}");
    assert!(
        f[7].parse::<u64>().unwrap() > 0,
        "%I counts the response: {line}"
    );
}

fn curl_proxy_user_against_auth_strong(runtime: &str) {
    let d = Daemon::start(STRONG, runtime);
    let web = http_server("authenticated");
    let url = format!("http://127.0.0.1:{}/", web.port());
    let (ok, body, err) = curl(&[
        "--proxy",
        &proxy_url("socks5", &d),
        "--proxy-user",
        "alice:wonderland",
        &url,
    ]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "authenticated");
    let line = d.wait_code(0, "CONNECT 127.0.0.1");
    assert_eq!(line.split_whitespace().nth(3), Some("alice"), "{line}");
    // Hostname form with the second user.
    let url = format!("http://localhost:{}/", web.port());
    let (ok, _, err) = curl(&[
        "--proxy",
        &proxy_url("socks5h", &d),
        "--proxy-user",
        "bob:builder",
        &url,
    ]);
    assert!(ok, "curl socks5h failed: {err}");
    d.wait_code(0, "CONNECT localhost");
    // Without credentials the server cannot pick a method: curl fails, code 4.
    let (ok, _, _) = curl(&["--socks5", &d.addr.to_string(), &url]);
    assert!(!ok, "no credentials must not pass auth strong");
    d.wait_code(4, "");
}

fn wrong_password_gets_rfc1929_failure(runtime: &str) {
    let d = Daemon::start(STRONG, runtime);
    let web = http_server("never");
    let url = format!("http://127.0.0.1:{}/", web.port());
    let (ok, _, _) = curl(&[
        "--proxy",
        &proxy_url("socks5", &d),
        "--proxy-user",
        "alice:guess",
        &url,
    ]);
    assert!(!ok, "a wrong password must fail");
    d.wait_code(6, "");

    // On the wire: method 2 selected, then RFC 1929 status != 0, then the server closes.
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 2]).unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 2]);
    let mut auth = vec![1, 5];
    auth.extend_from_slice(b"alice");
    auth.push(5);
    auth.extend_from_slice(b"guess");
    s.write_all(&auth).unwrap();
    let reply = read_n(&mut s, 2);
    assert_eq!(reply[0], 1, "RFC 1929 version");
    assert_ne!(reply[1], 0, "RFC 1929 failure status");
    assert!(
        read_to_end(&mut s).is_empty(),
        "server closes after failure"
    );
    // Unknown user: code 5.
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 2, 1, 3, b'e', b'v', b'e', 1, b'x'])
        .unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 2]);
    assert_eq!(read_n(&mut s, 2), [1, 1]);
    d.wait_code(5, "");
}

fn denied_client_gets_refusal_and_code(runtime: &str) {
    let d = Daemon::start(
        "log\nauth iponly\ndeny * 127.0.0.1\nallow *\nsocks -p0 -i127.0.0.1\n",
        runtime,
    );
    let web = http_server("never");
    let SocketAddr::V4(t) = web else { panic!() };
    // SOCKS5: REP 0x02 (connection not allowed by ruleset).
    let mut s = connect(d.addr);
    let mut req = vec![5, 1, 0, 5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    assert_eq!(read_n(&mut s, 2), [5, 2]);
    d.wait_code(1, "CONNECT 127.0.0.1");
    // SOCKS4: CD 91.
    let mut s = connect(d.addr);
    let mut req = vec![4, 1];
    req.extend_from_slice(&t.port().to_be_bytes());
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(b"carol\0");
    s.write_all(&req).unwrap();
    let reply = read_n(&mut s, 8);
    assert_eq!(reply[..2], [0, 91]);
    let line = d.wait_log("SOCK4 denial", |l| {
        l.split_whitespace().nth(2) == Some("00001") && l.contains(" carol ")
    });
    assert!(line.contains("CONNECT 127.0.0.1"), "{line}");
    // curl sees a failure.
    let (ok, _, _) = curl(&["--socks5", &d.addr.to_string(), &format!("http://{web}/")]);
    assert!(!ok);
}

fn no_acl_match_is_code_3(runtime: &str) {
    let d = Daemon::start(
        "log\nauth iponly\nallow * 192.0.2.0/24\nsocks -p0 -i127.0.0.1\n",
        runtime,
    );
    let web = http_server("never");
    let (ok, _, _) = curl(&["--socks5", &d.addr.to_string(), &format!("http://{web}/")]);
    assert!(!ok);
    d.wait_code(3, "CONNECT 127.0.0.1");
}

fn integrity_64_mib_each_way(runtime: &str) {
    const TOTAL: usize = 64 * 1024 * 1024;
    let d = Daemon::start(OPEN, runtime);
    let (target, done) = duplex_target(0xD0E5, TOTAL);
    let s = socks5_connect(d.addr, target);
    exchange_and_check(s, &done, 0xC11E, TOTAL);
    let line = d.wait_code(0, &format!("CONNECT {target}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[6], TOTAL.to_string(), "%O: {line}");
    assert_eq!(f[7], TOTAL.to_string(), "%I: {line}");
}

fn half_close_keeps_the_answer_flowing(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    // A target that reads until the client's FIN, then answers with the count and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let got = read_to_end(&mut s);
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(format!("got {} bytes", got.len()).as_bytes())
            .unwrap();
    });
    let mut s = socks5_connect(d.addr, target);
    s.write_all(&[7u8; 100_000]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let answer = read_to_end(&mut s);
    assert_eq!(String::from_utf8(answer).unwrap(), "got 100000 bytes");
    d.wait_code(0, &format!("CONNECT {target}"));
}

fn bad_input_gets_the_right_reply(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    let web = http_server("still serving");
    // Garbage: not SOCKS at all; closed without a reply.
    let mut s = connect(d.addr);
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_to_end(&mut s).is_empty(), "no reply to garbage");
    // Truncated greeting, then the client gives up.
    let mut s = connect(d.addr);
    s.write_all(&[5, 2, 0]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(
        read_to_end(&mut s).is_empty(),
        "no reply to a truncated greeting"
    );
    // NMETHODS = 0: no acceptable method.
    let mut s = connect(d.addr);
    s.write_all(&[5, 0]).unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0xFF]);
    assert!(read_to_end(&mut s).is_empty());
    // Unsupported ATYP 5: REP 0x08.
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 0, 5, 1, 0, 5, 1, 2, 3, 4, 0, 80])
        .unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    assert_eq!(read_n(&mut s, 2), [5, 8]);
    // Unsupported command 9: REP 0x07.
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 0, 5, 9, 0, 1, 127, 0, 0, 1, 0, 80])
        .unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    assert_eq!(read_n(&mut s, 2), [5, 7]);
    // A zero-length domain is malformed: failure reply or close, never success.
    let mut s = connect(d.addr);
    s.write_all(&[5, 1, 0, 5, 1, 0, 3, 0, 0, 80]).unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    let rest = read_to_end(&mut s);
    assert!(
        rest.is_empty() || (rest[0] == 5 && rest[1] != 0),
        "{rest:?}"
    );
    // A 255-byte domain is valid on the wire; this one cannot name a host (a byte that is
    // not UTF-8), so it fails before any resolver is asked (tests send no DNS query off
    // the machine): REP 0x04 and code 100.
    let mut s = connect(d.addr);
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, 255];
    let mut name = vec![b'a'; 254];
    name.push(0xff);
    assert_eq!(name.len(), 255);
    req.extend_from_slice(&name);
    req.extend_from_slice(&[0, 80]);
    s.write_all(&req).unwrap();
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    assert_eq!(read_n(&mut s, 2), [5, 4]);
    d.wait_code(100, "CONNECT aaaa");
    // The daemon keeps serving.
    let (ok, body, err) = curl(&["--socks5", &d.addr.to_string(), &format!("http://{web}/")]);
    assert!(ok, "{err}");
    assert_eq!(body, "still serving");
}

fn pipelined_handshake_and_data(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    let web = http_server("pipelined ok");
    let SocketAddr::V4(t) = web else { panic!() };
    // Greeting, request and the HTTP request in one write: nothing may be lost.
    let mut s = connect(d.addr);
    let mut all = vec![5, 1, 0, 5, 1, 0, 1];
    all.extend_from_slice(&t.ip().octets());
    all.extend_from_slice(&t.port().to_be_bytes());
    all.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(&all).unwrap();
    let got = read_to_end(&mut s);
    assert_eq!(got[..2], [5, 0]);
    assert_eq!(got[2..4], [5, 0]);
    let http = String::from_utf8_lossy(&got[12..]);
    assert!(http.ends_with("pipelined ok"), "{http}");
    // SOCKS4 with the data split into 1-byte writes.
    let mut s = connect(d.addr);
    s.set_nodelay(true).unwrap();
    let mut req = vec![4, 1];
    req.extend_from_slice(&t.port().to_be_bytes());
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(b"u\0GET / HTTP/1.0\r\n\r\n");
    for b in req {
        s.write_all(&[b]).unwrap();
    }
    let got = read_to_end(&mut s);
    assert_eq!(got[..2], [0, 90]);
    assert!(String::from_utf8_lossy(&got[8..]).ends_with("pipelined ok"));
}
