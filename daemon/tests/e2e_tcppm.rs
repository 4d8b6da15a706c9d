//! End-to-end: the TCP port mapper (`tcppm`) on loopback, on both runtimes. curl fetches
//! from a local origin through the mapped port; raw sockets check what has no words on
//! the wire: refusals close silently and only the log tells why (3proxy's codes), the
//! target is reached before the client says anything, early client bytes arrive, and a
//! large transfer stays intact both ways.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::time::Duration;

/// 3proxy's default format with `%N` (the service name) before `%T`.
const FORMAT: &str = "logformat \"G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %N %T\"\n";

/// A daemon mapping a free port on 127.0.0.1 to `host port`, with `acl` lines before it.
fn mapper(runtime: &str, acl: &str, host: &str, port: u16) -> Daemon {
    Daemon::start(
        &format!("log\n{FORMAT}auth iponly\n{acl}tcppm -i127.0.0.1 0 {host} {port}\n"),
        runtime,
    )
}

both_runtimes!(
    curl_through_the_mapped_port,
    a_name_target_resolves_with_the_system_resolver,
    acl_refusals_close_silently_with_their_codes,
    a_refused_target_port_is_code_13,
    the_target_may_speak_first,
    bytes_sent_before_the_connect_are_delivered,
    integrity_16_mib_each_way,
    standalone_form,
    through_a_socks5_parent,
);

/// An `allow` entry with a parent routes the mapped connections through it, as it does
/// SOCKS CONNECTs: the name goes to the parent (`socks5+`), the log counts one hop.
fn through_a_socks5_parent(runtime: &str) {
    let origin = http_server("via parent");
    let parent = Daemon::start(
        &format!("log\n{FORMAT}auth iponly\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n"),
        runtime,
    );
    let acl = format!(
        "allow * 127.0.0.1\nparent 1000 socks5+ 127.0.0.1 {}\n",
        parent.addr.port()
    );
    let d = mapper(runtime, &acl, "localhost", origin.port());
    let (ok, body, err) = curl(&[&format!("http://{}/", d.addr)]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "via parent");
    let line = d.wait_code(0, " TCPPM localhost");
    assert!(line.contains(" 1 TCPPM localhost"), "one hop: {line}");
    parent.wait_code(0, &format!("CONNECT localhost:{}", origin.port()));
}

fn curl_through_the_mapped_port(runtime: &str) {
    let origin = http_server("mapped hello");
    let d = mapper(runtime, "allow * 127.0.0.1\n", "127.0.0.1", origin.port());
    for _ in 0..2 {
        let (ok, body, err) = curl(&[&format!("http://{}/x", d.addr)]);
        assert!(ok, "curl failed: {err}");
        assert_eq!(body, "mapped hello");
    }
    let line = d.wait_code(0, " TCPPM 127.0.0.1");
    assert!(line.ends_with(" TCPPM 127.0.0.1"), "{line}");
    assert!(
        line.contains(&format!(" 127.0.0.1:{} ", origin.port())),
        "{line}"
    );
    // The records carry the mapped port (`%p`) and no user.
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1], d.addr.port().to_string(), "{line}");
    assert_eq!(fields[3], "-", "{line}");
}

fn a_name_target_resolves_with_the_system_resolver(runtime: &str) {
    let origin = http_server("by name");
    let d = mapper(runtime, "allow * 127.0.0.1\n", "localhost", origin.port());
    let (ok, body, err) = curl(&[&format!("http://{}/", d.addr)]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "by name");
    let line = d.wait_code(0, " TCPPM localhost");
    assert!(
        line.contains(&format!("127.0.0.1:{}", origin.port())),
        "{line}"
    );
}

fn acl_refusals_close_silently_with_their_codes(runtime: &str) {
    // The target counts connections: none may come for a refused client.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let port = target.local_addr().unwrap().port();
    for (acl, code) in [
        ("deny * 127.0.0.1\nallow *\n", 1),
        ("allow * 10.0.0.0/8\n", 3),
        // The port mapper's operation is CONNECT, not HTTPS.
        ("allow * * * * HTTPS\n", 3),
    ] {
        let d = mapper(runtime, acl, "127.0.0.1", port);
        let mut s = connect(d.addr);
        s.write_all(b"hello?").unwrap();
        assert!(
            read_to_end(&mut s).is_empty(),
            "{acl}: no byte to the client"
        );
        let line = d.wait_code(code, " TCPPM 127.0.0.1");
        assert!(line.contains(" - 127.0.0.1:"), "{acl}: {line}");
        assert!(
            matches!(target.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "{acl}: the target was connected"
        );
    }
}

fn a_refused_target_port_is_code_13(runtime: &str) {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = mapper(runtime, "", "127.0.0.1", closed);
    let mut s = connect(d.addr);
    assert!(read_to_end(&mut s).is_empty());
    d.wait_code(13, " TCPPM 127.0.0.1");
    // A name that does not resolve is 100.
    let d = mapper(runtime, "", "no-such-host.invalid", 80);
    let mut s = connect(d.addr);
    assert!(read_to_end(&mut s).is_empty());
    d.wait_code(100, " TCPPM no-such-host.invalid");
}

/// A server-first protocol (SMTP, SSH): the mapper connects as soon as the client is
/// accepted, without waiting for a byte from it.
fn the_target_may_speak_first(runtime: &str) {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = target.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = target.accept().unwrap();
        s.write_all(b"220 ready\r\n").unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    let d = mapper(runtime, "", "127.0.0.1", port);
    let mut s = connect(d.addr);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_n(&mut s, 11), b"220 ready\r\n");
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_end(&mut s).is_empty());
    d.wait_code(0, " TCPPM 127.0.0.1");
}

/// The client writes its request and its end of stream at once, before the mapper has
/// even resolved the target's name: the target gets every byte, then the end.
fn bytes_sent_before_the_connect_are_delivered(runtime: &str) {
    let echo = echo_target();
    let d = mapper(runtime, "", "localhost", echo.port());
    let request: Vec<u8> = (0..2000u32).flat_map(|i| i.to_be_bytes()).collect();
    for _ in 0..5 {
        let mut s = connect(d.addr);
        s.write_all(&request).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_end(&mut s), request);
    }
    let line = d.wait_code(0, " TCPPM localhost");
    // %O: bytes from the client to the target.
    assert!(line.contains(" 8000 8000 0 TCPPM"), "{line}");
}

fn integrity_16_mib_each_way(runtime: &str) {
    const TOTAL: usize = 16 << 20;
    let (target, done) = duplex_target(0x7c99, TOTAL);
    let d = mapper(runtime, "", "127.0.0.1", target.port());
    exchange_and_check(connect(d.addr), &done, 0x7c99 ^ 1, TOTAL);
    let line = d.wait_code(0, " TCPPM 127.0.0.1");
    assert!(
        line.contains(&format!(" {TOTAL} {TOTAL} 0 TCPPM")),
        "{line}"
    );
}

/// `triproxy tcppm [options] SRCPORT DSTHOST DSTPORT`, as 3proxy's standalone binary.
fn standalone_form(runtime: &str) {
    let origin = http_server("standalone");
    let port = origin.port().to_string();
    let d = Daemon::spawn(&[
        "--runtime",
        runtime,
        "tcppm",
        "-i127.0.0.1",
        "0",
        "127.0.0.1",
        &port,
    ]);
    let (ok, body, err) = curl(&[&format!("http://{}/", d.addr)]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "standalone");
    // The default format: `%T` (the host) last.
    d.wait_code(0, &format!("127.0.0.1:{port} "));
    let line = d.wait_log("ending with the host", |l| l.ends_with(" 127.0.0.1"));
    assert!(!line.contains("CONNECT"), "{line}");
}
