//! Plain HTTP forwarding by the `proxy` service end to end, on both runtimes: refusals,
//! policy and routing. Request smuggling framings and malformed requests get 400 and a
//! close; the ACL is checked for each request (also on a kept connection); Basic
//! credentials against `auth strong`; origin failures are 502; `http` and `socks5`
//! parents; the anonymity options; transparent requests by their `Host` field;
//! `bandlimin` and `countin` on forwarded downloads. The helpers are in
//! `common/forward.rs`; the framing and transfer tests in `e2e_http_forward.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::forward::*;
use common::origin::Origin;
use common::*;
use std::thread;
use std::time::{Duration, Instant};

both_runtimes!(
    smuggling_framings_are_400_and_close,
    acl_checks_the_operation_of_each_request,
    acl_checks_each_request_on_a_keep_alive_connection,
    basic_auth_against_auth_strong,
    origin_failures_are_502,
    malformed_requests_are_400_and_close,
    through_an_http_parent,
    through_a_socks5_parent,
    anonymity_options,
    transparent_requests_use_the_host_field,
    bandlimin_paces_a_forwarded_download,
    countin_cuts_a_forwarded_download_then_refuses,
);

/// Requests whose body length is ambiguous are refused with 400 and the connection
/// closed, never forwarded (RFC 9112 section 6.3 items 3 to 5, the request smuggling
/// vectors): `Content-Length` with `Transfer-Encoding` (either order), two different
/// lengths (two fields or one list), and a `Transfer-Encoding` whose last coding is not
/// exactly `chunked`. Each has a record with an HTTP request error code (5xx).
fn smuggling_framings_are_400_and_close(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("never");
    let cases = [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
    ];
    for (i, fields) in cases.iter().enumerate() {
        let (mut s, mut r) = open(d.addr);
        let request = format!(
            "{}0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {}\r\n\r\n",
            head("POST", o.addr, "/form", fields),
            o.addr
        );
        let resp = exchange(&mut s, &mut r, &request);
        assert_eq!(resp.status, 400, "{fields:?}: {}", resp.head);
        assert_closes(&mut r);
        wait_nth_code(&d, "an HTTP request error code", |c| c >= 500, i + 1);
    }
    assert_eq!(o.accepted(), 0, "a smuggling attempt reached the origin");
}

/// The ACL is checked for each request with its own operation (3proxy `HTTP_GET`,
/// `HTTP_POST`, ...): with `allow * * * * HTTP_GET` then `deny *`, a GET passes and a
/// POST gets 403 (code 1, an explicit deny), through curl and on one keep-alive
/// connection after a GET that passed. The POST never reaches the origin.
fn acl_checks_the_operation_of_each_request(runtime: &str) {
    let d = start(runtime, "auth iponly\nallow * * * * HTTP_GET\ndeny *\n");
    let o = Origin::start("acl");
    let code = |args: &[&str]| status_via(&d, args);
    assert_eq!(code(&[&url(o.addr, "/get")]), "200");
    assert_eq!(code(&["--data", "x=1", &url(o.addr, "/post")]), "403");
    record(&d, 0, &format!("GET {}", url(o.addr, "/get")));
    record(&d, 1, &format!("POST {}", url(o.addr, "/post")));

    let (mut s, mut r) = open(d.addr);
    let resp = exchange(&mut s, &mut r, &head("GET", o.addr, "/first", ""));
    assert_eq!(resp.status, 200, "{}", resp.head);
    let resp = exchange(
        &mut s,
        &mut r,
        &format!(
            "{}hello",
            head("POST", o.addr, "/second", "Content-Length: 5\r\n")
        ),
    );
    assert_eq!(resp.status, 403, "{}", resp.head);
    record(&d, 1, &format!("POST {}", url(o.addr, "/second")));
    thread::sleep(Duration::from_millis(200));
    assert!(
        o.seen()
            .iter()
            .all(|r| r.request_line().starts_with("GET ")),
        "a denied POST reached the origin: {:#?}",
        o.seen()
    );
}

/// On one keep-alive connection each request is checked against the ACL for its own
/// target: with `allow * * 127.0.0.1 PORT_A` then `deny *`, a request to origin A passes
/// and the next one, to origin B, gets 403 (code 1). With no `deny`, no entry matches B:
/// code 3, which 3proxy's HTTP proxy answers 407.
fn acl_checks_each_request_on_a_keep_alive_connection(runtime: &str) {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let d = start(
        runtime,
        &format!(
            "auth iponly\nallow * * 127.0.0.1 {}\ndeny *\n",
            a.addr.port()
        ),
    );
    let (mut s, mut r) = open(d.addr);
    let resp = exchange(&mut s, &mut r, &head("GET", a.addr, "/a", ""));
    assert_eq!(
        (resp.status, resp.text()),
        (200, a.default_body("GET", "/a"))
    );
    let resp = exchange(&mut s, &mut r, &head("GET", b.addr, "/b", ""));
    assert_eq!(resp.status, 403, "{}", resp.head);
    record(&d, 0, &format!("GET {}", url(a.addr, "/a")));
    record(&d, 1, &format!("GET {}", url(b.addr, "/b")));
    // curl: the same on one connection.
    let (ok, out, err) = curl_via(
        &d,
        &[
            "--write-out",
            "%{http_code} ",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            &url(a.addr, "/a2"),
            &url(b.addr, "/b2"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(out, "200 403 ");
    assert_eq!(b.accepted(), 0, "origin B was contacted");

    let d = start(
        runtime,
        &format!("auth iponly\nallow * * 127.0.0.1 {}\n", a.addr.port()),
    );
    let (mut s, mut r) = open(d.addr);
    let resp = exchange(&mut s, &mut r, &head("GET", a.addr, "/a3", ""));
    assert_eq!(resp.status, 200, "{}", resp.head);
    let resp = exchange(&mut s, &mut r, &head("GET", b.addr, "/b3", ""));
    assert_eq!(resp.status, 407, "{}", resp.head);
    record(&d, 3, &format!("GET {}", url(b.addr, "/b3")));
    assert_eq!(b.accepted(), 0, "origin B was contacted");
}

/// `auth strong` with `Proxy-Authorization: Basic` on forwarded requests: none gets 407
/// with a `Proxy-Authenticate` challenge (code 4); curl's `--proxy-user` gets through,
/// twice on one connection, with `%U` the user, and the origin never sees the
/// credentials.
fn basic_auth_against_auth_strong(runtime: &str) {
    let d = start(runtime, "users u:CL:p\nauth strong\nallow u\n");
    let o = Origin::start("private");
    let (mut s, mut r) = open(d.addr);
    let resp = exchange(&mut s, &mut r, &head("GET", o.addr, "/secret", ""));
    assert_eq!(resp.status, 407, "{}", resp.head);
    assert!(
        resp.field("Proxy-Authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{}",
        resp.head
    );
    record(&d, 4, &format!("GET {}", url(o.addr, "/secret")));
    assert_eq!(status_via(&d, &[&url(o.addr, "/secret")]), "407");
    assert_eq!(
        o.accepted(),
        0,
        "the origin was contacted without credentials"
    );

    let (ok, out, err) = curl_via(
        &d,
        &[
            "--proxy-user",
            "u:p",
            "--write-out",
            "|%{http_code}\\n",
            &url(o.addr, "/secret"),
            &url(o.addr, "/again"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(
        out,
        format!(
            "{}|200\n{}|200\n",
            o.default_body("GET", "/secret"),
            o.default_body("GET", "/again")
        )
    );
    let f = record(&d, 0, &format!("GET {}", url(o.addr, "/again")));
    assert_eq!(f[3], "u", "%U: {f:?}");
    for req in o.wait_seen(2) {
        assert_eq!(req.field("Proxy-Authorization"), None, "{}", req.head);
    }
}

/// An origin that cannot be reached (a closed port) and one that closes without
/// answering both make a `502 Bad Gateway`, the first with a record whose code 3proxy
/// answers 502, the second with 522 (3proxy's invalid server response); the daemon goes
/// on serving.
fn origin_failures_are_502(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("flaky");
    let gone = closed_port();
    let (mut s, mut r) = open(d.addr);
    let resp = exchange(&mut s, &mut r, &head("GET", gone, "/", ""));
    assert_eq!(resp.status, 502, "{}", resp.head);
    let line = wait_nth_code(&d, "a 502 code", is_bad_gateway_code, 1);
    assert!(line.contains(&format!("GET http://{gone}/")), "{line}");

    assert_eq!(status_via(&d, &[&url(o.addr, "/hangup")]), "502");
    // An origin that closes without an answer is 3proxy's "invalid server response".
    let line = wait_nth_code(&d, "code 522", |c| c == 522, 1);
    assert!(
        line.contains(&format!("GET {}", url(o.addr, "/hangup"))),
        "{line}"
    );

    let (ok, body, err) = curl_via(&d, &[&url(o.addr, "/fine")]);
    assert!(ok, "curl: {err}");
    assert_eq!(body, o.default_body("GET", "/fine"));
}

/// Malformed requests get 400 and a close, never reach the origin, and have a record
/// with a request error code (510 to 516): a field line without a colon, an HTTP version
/// that is not 1.x, and garbage after a good request on a keep-alive connection (the good
/// one is answered first).
fn malformed_requests_are_400_and_close(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("strict");
    let bad = [
        format!("GET http://{0}/ HTTP/1.1\r\nHost {0}\r\n\r\n", o.addr),
        format!("GET http://{0}/ HTTP/7.1\r\nHost: {0}\r\n\r\n", o.addr),
    ];
    for (i, request) in bad.iter().enumerate() {
        let (mut s, mut r) = open(d.addr);
        let resp = exchange(&mut s, &mut r, request);
        assert_eq!(resp.status, 400, "{request:?}: {}", resp.head);
        assert_closes(&mut r);
        wait_nth_code(
            &d,
            "a request error code",
            |c| (510..=516).contains(&c),
            i + 1,
        );
    }
    assert_eq!(o.accepted(), 0, "a malformed request reached the origin");

    let (mut s, mut r) = open(d.addr);
    let resp = exchange(&mut s, &mut r, &head("GET", o.addr, "/good", ""));
    assert_eq!(resp.text(), o.default_body("GET", "/good"));
    let resp = exchange(&mut s, &mut r, "\x01\x02 garbage\r\n\r\n");
    assert_eq!(resp.status, 400, "{}", resp.head);
    assert_closes(&mut r);
    wait_nth_code(&d, "a request error code", |c| (510..=516).contains(&c), 3);
    assert_eq!(o.wait_seen(1).len(), 1);
}

/// `parent 1000 http` with a second triproxy `proxy` as the parent: the request goes to
/// the parent in absolute form (the parent logs it as a forwarded GET with its own
/// origin `%R`), the parent forwards it to the origin in origin form, the answer comes
/// back; `Via` names both hops. Two URLs on one client connection both work.
fn through_an_http_parent(runtime: &str) {
    let parent = start(runtime, OPEN);
    let d = start(
        runtime,
        &format!(
            "auth iponly\nallow *\nparent 1000 http 127.0.0.1 {}\n",
            parent.addr.port()
        ),
    );
    let o = Origin::start("chained");
    let (ok, body, err) = curl_via(&d, &[&url(o.addr, "/via-parent")]);
    assert!(ok, "curl: {err}");
    assert_eq!(body, o.default_body("GET", "/via-parent"));
    let text = format!("GET {}", url(o.addr, "/via-parent"));
    let p = record(&parent, 0, &text);
    assert_eq!(
        p[5],
        o.addr.to_string(),
        "the parent reached the origin: {p:?}"
    );
    let f = record(&d, 0, &text);
    assert_eq!(f[5], parent.addr.to_string(), "%R:%r is the parent: {f:?}");
    assert_eq!(f[8], "1", "%h: {f:?}");
    let seen = o.wait_seen(1);
    assert_eq!(seen[0].request_line(), "GET /via-parent HTTP/1.1");
    let via = seen[0].all("Via").join(", ");
    assert!(
        via.matches("triproxy").count() >= 2,
        "Via names both hops: {via:?}"
    );

    let (ok, out, err) = curl_via(
        &d,
        &[
            "--write-out",
            "|%{http_code}\\n",
            &url(o.addr, "/p1"),
            &url(o.addr, "/p2"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(
        out,
        format!(
            "{}|200\n{}|200\n",
            o.default_body("GET", "/p1"),
            o.default_body("GET", "/p2")
        )
    );
    record(&parent, 0, &format!("GET {}", url(o.addr, "/p2")));
}

/// `parent 1000 socks5` with a triproxy `socks` as the parent: the GET is tunnelled
/// through a SOCKS5 CONNECT to the origin (the parent logs the CONNECT), and the answer
/// comes back; the record's `%R` is the parent and `%h` 1.
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
    let o = Origin::start("socksed");
    let (ok, body, err) = curl_via(&d, &[&url(o.addr, "/via-socks")]);
    assert!(ok, "curl: {err}");
    assert_eq!(body, o.default_body("GET", "/via-socks"));
    parent.wait_code(0, &format!("CONNECT {}", o.addr));
    let f = record(&d, 0, &format!("GET {}", url(o.addr, "/via-socks")));
    assert_eq!(f[5], parent.addr.to_string(), "%R:%r is the parent: {f:?}");
    assert_eq!(f[8], "1", "%h: {f:?}");
    let seen = o.wait_seen(1);
    assert_eq!(seen[0].request_line(), "GET /via-socks HTTP/1.1");
}

/// What a forwarded request says about its client: by default `Forwarded` (RFC 7239, as
/// 3proxy), nothing with `-a`, a random `X-Forwarded-For` with `-a1`, the client's own
/// address with `-a2`; `Via` always.
fn anonymity_options(runtime: &str) {
    for (option, expect) in [
        ("", "forwarded"),
        ("-a", "none"),
        ("-a1", "random"),
        ("-a2", "real"),
    ] {
        let d = Daemon::start(
            &format!("log\n{FORMAT}{OPEN}proxy -p0 -i127.0.0.1 {option}\n"),
            runtime,
        );
        let o = Origin::start("anon");
        let (ok, _, err) = curl_via(&d, &[&url(o.addr, "/who")]);
        assert!(ok, "curl: {err}");
        let seen = o.wait_seen(1);
        let req = &seen[0];
        assert!(
            req.field("Via").is_some_and(|v| v.contains("triproxy")),
            "{}",
            req.head
        );
        let forwarded = req.field("Forwarded");
        let xff = req.field("X-Forwarded-For");
        match expect {
            "forwarded" => {
                let f = forwarded.unwrap_or_default();
                assert!(f.starts_with("for=\"127.0.0.1:"), "{}", req.head);
                assert!(f.contains(&format!(";by=\"{}\"", d.addr)), "{}", req.head);
                assert_eq!(xff, None, "{}", req.head);
            }
            "none" => assert_eq!((forwarded, xff), (None, None), "{}", req.head),
            "random" => {
                assert_eq!(forwarded, None, "{}", req.head);
                assert!(
                    xff.is_some_and(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok()),
                    "{}",
                    req.head
                );
            }
            _ => assert_eq!(xff, Some("127.0.0.1"), "{}", req.head),
        }
    }
}

/// A transparent request (origin form with `Host`, as a client redirected to the proxy
/// sends it) is forwarded to the `Host`, and logged with the URL rebuilt as 3proxy does.
fn transparent_requests_use_the_host_field(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("transparent");
    let (mut s, mut r) = open(d.addr);
    let resp = exchange(
        &mut s,
        &mut r,
        &format!("GET /t HTTP/1.1\r\nHost: {}\r\n\r\n", o.addr),
    );
    assert_eq!(
        (resp.status, resp.text()),
        (200, o.default_body("GET", "/t"))
    );
    assert_eq!(o.wait_seen(1)[0].request_line(), "GET /t HTTP/1.1");
    record(&d, 0, &format!("GET {}", url(o.addr, "/t")));
}

/// `bandlimin` paces the bytes a forwarded response brings: 600,000 bytes at 4 Mbit/s
/// (500,000 bytes/s, a burst of 50,000) take at least 1.1 s; unpaced they take
/// milliseconds.
fn bandlimin_paces_a_forwarded_download(runtime: &str) {
    const LEN: usize = 600_000;
    let d = start(runtime, &format!("{OPEN}bandlimin 4000000 * 127.0.0.1\n"));
    let o = Origin::start("paced");
    let started = Instant::now();
    let big = url(o.addr, &format!("/big/{LEN}"));
    let (ok, size, err) = curl_via(&d, &["-o", "/dev/null", "-w", "%{size_download}", &big]);
    let took = started.elapsed().as_secs_f64();
    assert!(ok, "curl: {err}");
    assert_eq!(size, LEN.to_string());
    assert!(
        took >= (LEN as f64 - 50_000.0) / 500_000.0 * 0.95 && took < 8.0,
        "{LEN} bytes in {took:.3} s at 4 Mbit/s"
    );
    record(
        &d,
        0,
        &format!("GET {}", url(o.addr, &format!("/big/{LEN}"))),
    );
}

/// A `countin` quota of 1 MiB ends a forwarded 3 MiB download within a chunk of the
/// quota (code 10, the client connection cut), and the next request is refused with 503
/// before any connect.
fn countin_cuts_a_forwarded_download_then_refuses(runtime: &str) {
    const MIB: usize = 1024 * 1024;
    let d = start(runtime, &format!("{OPEN}countin \"4/fwd\" N 1\n"));
    let o = Origin::start("counted");
    let path = format!("/big/{}", 3 * MIB);
    let (ok, size, _) = curl_via(
        &d,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            &url(o.addr, &path),
        ],
    );
    let size: usize = size.parse().unwrap();
    assert!(
        !ok,
        "a 3 MiB download must not complete through a 1 MiB quota"
    );
    assert!(
        size <= MIB + 64 * 1024,
        "{size} bytes came through a 1 MiB quota"
    );
    record(&d, 10, &format!("GET {}", url(o.addr, &path)));
    let accepted = o.accepted();
    assert_eq!(status_via(&d, &[&url(o.addr, "/again")]), "503");
    assert_eq!(
        o.accepted(),
        accepted,
        "the refused request reached the origin"
    );
}
