//! Plain HTTP forwarding by the `proxy` service end to end, on both runtimes: a client
//! sends `GET http://origin/path HTTP/1.1` (absolute form) and the proxy forwards it to
//! the origin in origin form (RFC 9112 section 3.2, RFC 9110 section 7.6), relays the
//! answer, and writes one log record per request. The clients are curl, Python's
//! `requests` and `urllib`, and raw sockets for what those never send (pipelining,
//! HTTP/1.0, smuggling attempts); the origin is [`common::origin::Origin`], which records
//! every request head and body so the tests check what the proxy forwarded.
//!
//! Covered: origin form and hop-by-hop fields, keep-alive on both sides, `Connection:
//! close` and HTTP/1.0, pipelining, request bodies (`Content-Length`, chunked, PUT,
//! `Expect: 100-continue`), responses without a body (HEAD, 204, 304), chunked responses
//! with a trailer, close-delimited responses, 64 MiB each way, back-pressure on a slow
//! reader and streaming. Refusals, policy and routing (smuggling, the ACL per request,
//! Basic authentication, origin failures, malformed requests, parents, anonymity,
//! transparent requests, bandwidth and quotas) are in `e2e_http_forward_policy.rs`; the
//! helpers both use in `common/forward.rs`. One more test checks the harness alone
//! (origin and response reader, no proxy), so a failure elsewhere points at the proxy.
//!
//! Records are written with `%N` before `%T` (see [`FORMAT`]); a record's `%T` is the
//! request line without its version, or with it (3proxy logs the whole line): [`record`]
//! accepts both. Everything listens on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::forward::*;
use common::origin::{self, Origin};
use common::response::{read_response, try_read_head, Framing, Response};
use common::*;
use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

both_runtimes!(
    curl_get_reaches_the_origin_in_origin_form,
    hop_by_hop_fields_stop_at_the_proxy,
    curl_two_urls_share_one_client_and_one_origin_connection,
    one_client_connection_reaches_two_origins,
    python_requests_session_reuses_connections,
    python_urllib_with_a_proxy_handler,
    http10_and_connection_close_end_the_connection,
    pipelined_requests_are_answered_in_order,
    request_bodies_arrive_exactly,
    expect_100_continue_completes,
    head_204_and_304_have_no_body_and_keep_the_connection,
    chunked_response_with_trailer_passes_through,
    close_delimited_response_arrives_whole_then_the_proxy_closes,
    download_64_mib,
    upload_64_mib,
    slow_reader_bounds_the_daemons_memory,
    bodies_stream_without_waiting_for_their_end,
);

/// The origin gets the request in origin form (`GET /path HTTP/1.1`) with `Host` first
/// and from the URI, the proxy's `Via`, curl's own end-to-end fields, and none of the
/// hop-by-hop fields curl sends to a proxy (`Proxy-Connection`); curl gets the body, and
/// one record (code 0, `%R` the origin) tells the request line.
fn curl_get_reaches_the_origin_in_origin_form(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("alpha");
    let (ok, body, err) = curl_via(&d, &[&url(o.addr, "/path")]);
    assert!(ok, "curl: {err}");
    assert_eq!(body, o.default_body("GET", "/path"));
    let seen = o.wait_seen(1);
    let req = &seen[0];
    assert_eq!(req.request_line(), "GET /path HTTP/1.1", "{}", req.head);
    let (name, value) = req.fields()[0];
    assert!(
        name.eq_ignore_ascii_case("Host") && value == o.addr.to_string(),
        "Host first: {}",
        req.head
    );
    assert_eq!(req.all("Host").len(), 1, "one Host: {}", req.head);
    assert!(
        req.all("Via").iter().any(|v| v.contains("triproxy")),
        "Via names triproxy: {}",
        req.head
    );
    assert!(
        req.field("User-Agent")
            .is_some_and(|v| v.starts_with("curl/")),
        "end-to-end fields pass: {}",
        req.head
    );
    for name in HOP_BY_HOP {
        assert_eq!(
            req.field(name),
            None,
            "{name} reached the origin: {}",
            req.head
        );
    }
    let f = record(&d, 0, &format!("GET {}", url(o.addr, "/path")));
    assert_eq!(f[3], "-", "no user: {f:?}");
    assert_eq!(f[5], o.addr.to_string(), "%R:%r is the origin: {f:?}");
    assert!(
        f[7].parse::<usize>().unwrap() >= body.len(),
        "%I counts the answer: {f:?}"
    );
    assert_eq!(f[8], "0", "%h: {f:?}");
}

/// Every hop-by-hop field a client sends stops at the proxy (RFC 9110 section 7.6.1):
/// `Connection` and the fields it names, `Proxy-Connection`, `Keep-Alive`,
/// `Proxy-Authorization`, `TE`, `Trailer`, `Upgrade`; a client's `Host` is replaced by
/// the URI's authority; `Via` gets this hop after the earlier ones (section 7.6.3); other
/// fields and the query string pass. The origin's hop-by-hop fields stop too on the way
/// back, its end-to-end ones pass.
fn hop_by_hop_fields_stop_at_the_proxy(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("fields");
    let (mut s, mut r) = open(d.addr);
    let request = format!(
        "GET http://{}/fields?x=1&y=2 HTTP/1.1\r\nHost: wrong.invalid\r\n\
         Proxy-Authorization: Basic dTpw\r\nProxy-Connection: keep-alive\r\n\
         Keep-Alive: timeout=5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\n\
         TE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\nX-Custom: kept\r\n\
         Via: 1.1 earlier-proxy\r\n\r\n",
        o.addr
    );
    let resp = exchange(&mut s, &mut r, &request);
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(resp.text(), o.default_body("GET", "/fields?x=1&y=2"));
    let seen = o.wait_seen(1);
    let req = &seen[0];
    assert_eq!(req.request_line(), "GET /fields?x=1&y=2 HTTP/1.1");
    let (name, value) = req.fields()[0];
    assert!(
        name.eq_ignore_ascii_case("Host") && value == o.addr.to_string(),
        "Host first, from the URI: {}",
        req.head
    );
    assert_eq!(req.all("Host").len(), 1, "{}", req.head);
    for name in HOP_BY_HOP.iter().chain(&["X-Hop"]) {
        assert_eq!(
            req.field(name),
            None,
            "{name} reached the origin: {}",
            req.head
        );
    }
    assert!(
        req.all("Connection")
            .iter()
            .all(|v| !v.to_ascii_lowercase().contains("x-hop")),
        "{}",
        req.head
    );
    assert_eq!(req.field("X-Custom"), Some("kept"), "{}", req.head);
    let via = req.all("Via").join(", ");
    let earlier = via.find("earlier-proxy");
    let ours = via.rfind("triproxy");
    assert!(
        earlier.is_some() && ours.is_some() && earlier < ours,
        "Via keeps the earlier hop and appends this one: {via:?}"
    );

    // The way back, on the same connection.
    let resp = exchange(&mut s, &mut r, &head("GET", o.addr, "/hop", ""));
    assert_eq!((resp.status, resp.text().as_str()), (200, "hop"));
    assert_eq!(resp.field("X-End-To-End"), Some("kept"), "{}", resp.head);
    assert_eq!(resp.field("X-Origin-Hop"), None, "{}", resp.head);
    assert_eq!(resp.field("Keep-Alive"), None, "{}", resp.head);
    assert!(
        !resp.head.to_ascii_lowercase().contains("x-origin-hop"),
        "{}",
        resp.head
    );
    expect_records(&d, 0, &format!("GET http://{}/", o.addr), 2);
}

/// curl with two URLs of one origin on its command line: the second request goes on the
/// same client connection (curl's `num_connects` is 0) and the proxy reuses its origin
/// connection (the origin accepts once); one record per request, no more.
fn curl_two_urls_share_one_client_and_one_origin_connection(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("kept");
    let (ok, out, err) = curl_via(
        &d,
        &[
            "--write-out",
            "|%{http_code} %{num_connects}\\n",
            &url(o.addr, "/one"),
            &url(o.addr, "/two"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(
        out,
        format!(
            "{}|200 1\n{}|200 0\n",
            o.default_body("GET", "/one"),
            o.default_body("GET", "/two")
        ),
        "bodies, statuses, and new connections per transfer"
    );
    let seen = o.wait_seen(2);
    assert_eq!(o.accepted(), 1, "one origin connection: {seen:#?}");
    assert_eq!(
        (seen[0].request_line(), seen[1].request_line()),
        ("GET /one HTTP/1.1", "GET /two HTTP/1.1")
    );
    record(&d, 0, &format!("GET {}", url(o.addr, "/one")));
    record(&d, 0, &format!("GET {}", url(o.addr, "/two")));
    expect_records(&d, 0, &format!("GET http://{}/", o.addr), 2);
}

/// One client connection carries requests for two origins, alternating: each answer
/// comes from the right origin, each request has its record with its own `%R`.
fn one_client_connection_reaches_two_origins(runtime: &str) {
    let d = start(runtime, OPEN);
    let a = Origin::start("a");
    let b = Origin::start("b");
    let (ok, out, err) = curl_via(
        &d,
        &[
            "--write-out",
            "|%{http_code} %{num_connects}\\n",
            &url(a.addr, "/1"),
            &url(b.addr, "/2"),
            &url(a.addr, "/3"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(
        out,
        format!(
            "{}|200 1\n{}|200 0\n{}|200 0\n",
            a.default_body("GET", "/1"),
            b.default_body("GET", "/2"),
            a.default_body("GET", "/3")
        )
    );
    assert_eq!(a.wait_seen(2).len(), 2);
    assert_eq!(b.wait_seen(1).len(), 1);
    for (o, path) in [(a.addr, "/1"), (b.addr, "/2"), (a.addr, "/3")] {
        let f = record(&d, 0, &format!("GET {}", url(o, path)));
        assert_eq!(f[5], o.to_string(), "%R:%r: {f:?}");
    }
}

/// Python `requests` with a `Session` and `proxies={'http': ...}` (absolute-form requests
/// over one pooled connection): 20 GETs all answered 200 with the right bodies, over at
/// most two origin connections, with 20 records.
fn python_requests_session_reuses_connections(runtime: &str) {
    const SCRIPT: &str = r#"
import sys, requests
proxy, base, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = requests.Session()
s.trust_env = False
for i in range(n):
    r = s.get(f"{base}/py/{i}", proxies={"http": proxy}, timeout=10)
    print(r.status_code, r.text)
"#;
    let d = start(runtime, OPEN);
    let o = Origin::start("py");
    let out = python(
        SCRIPT,
        &[&format!("http://{}", d.addr), &url(o.addr, ""), "20"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("200 {}", o.default_body("GET", &format!("/py/{i}"))),
            "request {i}"
        );
    }
    assert!(
        o.accepted() <= 2,
        "the proxy kept its origin connection: {} accepted",
        o.accepted()
    );
    expect_records(&d, 0, &format!("GET http://{}/py/", o.addr), 20);
}

/// Python's `urllib.request` with a `ProxyHandler`: a GET and a POST (with a
/// `Content-Length` body) through the proxy.
fn python_urllib_with_a_proxy_handler(runtime: &str) {
    const SCRIPT: &str = r#"
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": sys.argv[1]}))
with opener.open(sys.argv[2] + "/urllib", timeout=10) as r:
    print(r.status, r.read().decode())
with opener.open(sys.argv[2] + "/echo", data=b"posted by urllib", timeout=10) as r:
    print(r.status, r.read().decode())
"#;
    let d = start(runtime, OPEN);
    let o = Origin::start("urllib");
    let out = python(SCRIPT, &[&format!("http://{}", d.addr), &url(o.addr, "")]);
    assert_eq!(
        out,
        format!(
            "200 {}\n200 posted by urllib\n",
            o.default_body("GET", "/urllib")
        )
    );
    let seen = o.wait_seen(2);
    assert_eq!(seen[1].request_line(), "POST /echo HTTP/1.1");
    assert_eq!(seen[1].body, b"posted by urllib");
    record(&d, 0, &format!("GET {}", url(o.addr, "/urllib")));
    record(&d, 0, &format!("POST {}", url(o.addr, "/echo")));
}

/// An HTTP/1.0 client, and an HTTP/1.1 client asking `Connection: close`, get their
/// answer and then the proxy closes the connection (RFC 9112 section 9.3 and 9.6); a
/// request pipelined after the `close` one is not forwarded.
fn http10_and_connection_close_end_the_connection(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("closing");
    let (mut s, mut r) = open(d.addr);
    let resp = exchange(
        &mut s,
        &mut r,
        &format!(
            "GET http://{}/ten HTTP/1.0\r\nHost: {}\r\n\r\n",
            o.addr, o.addr
        ),
    );
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(resp.text(), o.default_body("GET", "/ten"));
    assert_closes(&mut r);

    let (mut s, mut r) = open(d.addr);
    let mut both = head("GET", o.addr, "/close-me", "Connection: close\r\n");
    both.push_str(&head("GET", o.addr, "/never", ""));
    let resp = exchange(&mut s, &mut r, &both);
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(resp.text(), o.default_body("GET", "/close-me"));
    assert_closes(&mut r);
    record(&d, 0, &format!("GET {}", url(o.addr, "/ten")));
    record(&d, 0, &format!("GET {}", url(o.addr, "/close-me")));
    let seen = o.wait_seen(2);
    thread::sleep(Duration::from_millis(200));
    assert!(
        o.seen()
            .iter()
            .all(|r| !r.request_line().contains("/never")),
        "the request after `Connection: close` was forwarded: {seen:#?}"
    );
}

/// Three requests in one write (two origins): three answers, in the order asked
/// (RFC 9112 section 9.3.2), and the connection still serves a fourth.
fn pipelined_requests_are_answered_in_order(runtime: &str) {
    let d = start(runtime, OPEN);
    let a = Origin::start("a");
    let b = Origin::start("b");
    let (mut s, mut r) = open(d.addr);
    let all = [
        head("GET", a.addr, "/p1", ""),
        head("GET", b.addr, "/p2", ""),
        head("GET", a.addr, "/p3", ""),
    ]
    .concat();
    s.write_all(all.as_bytes()).unwrap();
    for (o, path) in [(&a, "/p1"), (&b, "/p2"), (&a, "/p3")] {
        let resp = read_response(&mut r, "GET");
        assert_eq!(resp.status, 200, "{path}: {}", resp.head);
        assert_eq!(resp.text(), o.default_body("GET", path), "in order");
    }
    let resp = exchange(&mut s, &mut r, &head("GET", b.addr, "/p4", ""));
    assert_eq!(resp.text(), b.default_body("GET", "/p4"));
    for (o, path) in [(&a, "/p1"), (&b, "/p2"), (&a, "/p3"), (&b, "/p4")] {
        record(&d, 0, &format!("GET {}", url(o.addr, path)));
    }
}

/// Request bodies reach the origin byte for byte: a POST with `Content-Length` (curl
/// `--data-binary`), a POST with a chunked body (`Transfer-Encoding: chunked`), a PUT
/// (curl `-T`), and a chunked body written by hand with an extension and a trailer; the
/// origin echoes each, and the echo comes back intact.
fn request_bodies_arrive_exactly(runtime: &str) {
    const LEN: usize = 300 * 1024;
    let d = start(runtime, OPEN);
    let o = Origin::start("bodies");
    let (file, hash) = generated_file("body.bin", 0xB0D1, LEN);
    let data = std::fs::read(&file).unwrap();
    let file_arg = format!("@{}", file.display());
    let echo = url(o.addr, "/echo");
    let cases: [(&str, Vec<&str>); 3] = [
        ("POST", vec!["--data-binary", &file_arg]),
        (
            "POST",
            vec![
                "--data-binary",
                &file_arg,
                "-H",
                "Transfer-Encoding: chunked",
            ],
        ),
        ("PUT", vec!["-T", file.to_str().unwrap()]),
    ];
    for (i, (method, args)) in cases.iter().enumerate() {
        let out = scratch_file("echoed.bin");
        let mut all = vec!["-H", "Expect:", "-o", out.to_str().unwrap()];
        all.extend_from_slice(args);
        all.push(&echo);
        let (ok, _, err) = curl_via(&d, &all);
        assert!(ok, "case {i}: curl: {err}");
        assert!(std::fs::read(&out).unwrap() == data, "case {i}: the echo");
        let seen = o.wait_seen(i + 1);
        let req = &seen[i];
        assert!(
            req.request_line().starts_with(&format!("{method} /echo ")),
            "case {i}: {}",
            req.head
        );
        assert_eq!(
            (req.body_len, req.body_hash),
            (LEN, hash),
            "case {i}: the origin's body"
        );
    }
    expect_records(&d, 0, &format!("POST {echo}"), 2);
    record(&d, 0, &format!("PUT {echo}"));

    // By hand: chunks with an extension, and a trailer; then the connection goes on.
    let (mut s, mut r) = open(d.addr);
    let request = format!(
        "{}5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailing: yes\r\n\r\n",
        head("POST", o.addr, "/echo", "Transfer-Encoding: chunked\r\n")
    );
    let resp = exchange(&mut s, &mut r, &request);
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "hello, world"),
        "{}",
        resp.head
    );
    let resp = exchange(&mut s, &mut r, &head("GET", o.addr, "/after", ""));
    assert_eq!(resp.text(), o.default_body("GET", "/after"));
}

/// `Expect: 100-continue` (RFC 9110 section 10.1.1): curl, forced to send it, completes
/// with the body intact; a raw client that waits for `100 Continue` before sending its
/// body gets it (the origin's interim answer relayed, or the proxy's own), then the final
/// answer.
fn expect_100_continue_completes(runtime: &str) {
    const LEN: usize = 2 * 1024 * 1024;
    let d = start(runtime, OPEN);
    let o = Origin::start("expect");
    let (file, hash) = generated_file("expect.bin", 0xE4EC, LEN);
    let out = scratch_file("expect-echo.bin");
    let (ok, _, err) = curl_via(
        &d,
        &[
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            &format!("@{}", file.display()),
            "-o",
            out.to_str().unwrap(),
            &url(o.addr, "/echo"),
        ],
    );
    assert!(ok, "curl: {err}");
    let echoed = std::fs::read(&out).unwrap();
    assert_eq!(
        (echoed.len(), origin::hash(&echoed)),
        (LEN, hash),
        "the echo"
    );
    let seen = o.wait_seen(1);
    assert_eq!((seen[0].body_len, seen[0].body_hash), (LEN, hash));
    record(&d, 0, &format!("POST {}", url(o.addr, "/echo")));

    let (mut s, mut r) = open(d.addr);
    fail_fast(&r);
    let interim = exchange(
        &mut s,
        &mut r,
        &head(
            "POST",
            o.addr,
            "/echo",
            "Content-Length: 11\r\nExpect: 100-continue\r\n",
        ),
    );
    assert_eq!(interim.status, 100, "{}", interim.head);
    s.write_all(b"hello world").unwrap();
    let resp = read_response(&mut r, "POST");
    assert_eq!(
        (resp.status, resp.text().as_str()),
        (200, "hello world"),
        "{}",
        resp.head
    );
}

/// Answers without a body (RFC 9112 section 6.3): to a HEAD (whose `Content-Length`
/// describes the GET), a 204, and a 304 that carries a `Content-Length`. The proxy must
/// not wait for a body, and the next request on the connection works: asked one at a
/// time, then all pipelined in one write.
fn head_204_and_304_have_no_body_and_keep_the_connection(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("bodiless");
    let requests = [
        head("HEAD", o.addr, "/h", ""),
        head("GET", o.addr, "/status/204", ""),
        head("GET", o.addr, "/status/304", "If-None-Match: \"v1\"\r\n"),
        head("GET", o.addr, "/after", ""),
    ];
    let check = |i: usize, resp: &Response| {
        let want = [200, 204, 304, 200][i];
        assert_eq!(resp.status, want, "request {i}: {}", resp.head);
        if i < 3 {
            assert_eq!(resp.framing, Framing::Empty);
        } else {
            assert_eq!(resp.text(), o.default_body("GET", "/after"));
        }
    };
    let (mut s, mut r) = open(d.addr);
    fail_fast(&r);
    for (i, request) in requests.iter().enumerate() {
        let resp = exchange(&mut s, &mut r, request);
        check(i, &resp);
        if i == 0 {
            assert!(resp.field("Content-Length").is_some(), "{}", resp.head);
        }
    }
    let (mut s, mut r) = open(d.addr);
    fail_fast(&r);
    s.write_all(requests.concat().as_bytes()).unwrap();
    for (i, request) in requests.iter().enumerate() {
        let method = request.split(' ').next().unwrap();
        check(i, &read_response(&mut r, method));
    }
    expect_records(&d, 0, &format!("HEAD {}", url(o.addr, "/h")), 2);
    expect_records(&d, 0, &format!("GET {}", url(o.addr, "/status/")), 4);
}

/// A chunked answer with a chunk extension and a trailer field reaches the client with
/// its body and its trailer (RFC 9112 section 7.1.2), and the connection goes on; curl
/// decodes the same body.
fn chunked_response_with_trailer_passes_through(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("chunks");
    let (mut s, mut r) = open(d.addr);
    fail_fast(&r);
    let resp = exchange(
        &mut s,
        &mut r,
        &head("GET", o.addr, "/chunked", "TE: trailers\r\n"),
    );
    assert_eq!(resp.status, 200, "{}", resp.head);
    assert_eq!(resp.framing, Framing::Chunked, "{}", resp.head);
    assert!(resp.body == origin::chunked_body(), "the chunked body");
    assert!(
        resp.trailers
            .to_ascii_lowercase()
            .contains(&origin::TRAILER.to_ascii_lowercase()),
        "the trailer: {:?}",
        resp.trailers
    );
    let resp = exchange(&mut s, &mut r, &head("GET", o.addr, "/after", ""));
    assert_eq!(resp.text(), o.default_body("GET", "/after"));

    let (ok, body, err) = curl_via(&d, &[&url(o.addr, "/chunked")]);
    assert!(ok, "curl: {err}");
    assert!(body.as_bytes() == origin::chunked_body(), "curl's body");
    expect_records(&d, 0, &format!("GET {}", url(o.addr, "/chunked")), 2);
}

/// An answer delimited by the origin's close (HTTP/1.1 with `Connection: close`, and
/// HTTP/1.0, neither with a length) reaches a keep-alive client whole, and then the
/// proxy closes the client's connection (it cannot tell the client where the body ends
/// otherwise, unless it re-chunks it; either way it closes, as the origin did).
fn close_delimited_response_arrives_whole_then_the_proxy_closes(runtime: &str) {
    const LEN: usize = 200 * 1000;
    let d = start(runtime, OPEN);
    let o = Origin::start("closer");
    let want = origin::generated(LEN);
    for path in [format!("/close/{LEN}"), format!("/close10/{LEN}")] {
        let (mut s, mut r) = open(d.addr);
        let resp = exchange(&mut s, &mut r, &head("GET", o.addr, &path, ""));
        assert_eq!(resp.status, 200, "{path}: {}", resp.head);
        assert!(
            resp.body == want,
            "{path}: {} bytes, not the {LEN} sent",
            resp.body.len()
        );
        if resp.framing != Framing::Close {
            assert_closes(&mut r);
        }
        record(&d, 0, &format!("GET {}", url(o.addr, &path)));
    }
    let out = scratch_file("closed.bin");
    let (ok, _, err) = curl_via(
        &d,
        &[
            "-o",
            out.to_str().unwrap(),
            &url(o.addr, &format!("/close10/{LEN}")),
        ],
    );
    assert!(ok, "curl: {err}");
    assert!(std::fs::read(&out).unwrap() == want, "curl's body");
}

/// 64 MiB from the origin to curl, hash-checked; `%I` counts them all.
fn download_64_mib(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("big");
    let out = scratch_file("download.bin");
    let path = format!("/big/{BIG}");
    let (ok, _, err) = curl_via(&d, &["-o", out.to_str().unwrap(), &url(o.addr, &path)]);
    assert!(ok, "curl: {err}");
    let got = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(got.len(), BIG, "length");
    assert!(
        origin::hash(&got) == origin::generated_hash(BIG),
        "the 64 MiB arrived changed"
    );
    let f = record(&d, 0, &format!("GET {}", url(o.addr, &path)));
    assert!(f[7].parse::<usize>().unwrap() >= BIG, "%I: {f:?}");
}

/// 64 MiB from curl to the origin, hash-checked at the origin, once with
/// `Content-Length` and once chunked; `%O` counts them all.
fn upload_64_mib(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("sink");
    let (file, hash) = generated_file("upload.bin", 0x0B16_0B16, BIG);
    let file_arg = format!("@{}", file.display());
    let sink = url(o.addr, "/sink");
    let want = format!("{BIG} {hash:016x}");
    for (i, chunked) in [false, true].into_iter().enumerate() {
        let mut args = vec!["-H", "Expect:", "--data-binary", &file_arg];
        if chunked {
            args.extend_from_slice(&["-H", "Transfer-Encoding: chunked"]);
        }
        args.push(&sink);
        let (ok, body, err) = curl_via(&d, &args);
        assert!(ok, "chunked {chunked}: curl: {err}");
        assert_eq!(body, want, "chunked {chunked}: what the origin got");
        let seen = o.wait_seen(i + 1);
        assert_eq!((seen[i].body_len, seen[i].body_hash), (BIG, hash));
    }
    let _ = std::fs::remove_file(&file);
    expect_records(&d, 0, &format!("POST {sink}"), 2);
    let f = record(&d, 0, &format!("POST {sink}"));
    assert!(f[6].parse::<usize>().unwrap() >= BIG, "%O: {f:?}");
}

/// Back-pressure: a client that reads a 64 MiB answer slowly (16 KiB every 50 ms, for
/// 2 s) does not make the daemon buffer it: its resident memory stays within 32 MiB of
/// what it was before (an unbounded relay would hold most of the 64 MiB the origin can
/// send in that time). The daemon serves others afterwards.
fn slow_reader_bounds_the_daemons_memory(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("flood");
    let (ok, _, err) = curl_via(&d, &[&url(o.addr, "/warm-up")]);
    assert!(ok, "curl: {err}");
    let before = rss_kib(d.pid());
    let (mut s, mut r) = open(d.addr);
    s.write_all(head("GET", o.addr, &format!("/big/{BIG}"), "").as_bytes())
        .unwrap();
    let resp_head = try_read_head(&mut r).expect("a response head");
    assert!(resp_head.starts_with("HTTP/1.1 200 "), "{resp_head}");
    let mut peak = before;
    let mut got = 0;
    let mut buf = [0u8; 16 * 1024];
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "the answer stopped after {got} bytes");
        got += n;
        thread::sleep(Duration::from_millis(50));
        peak = peak.max(rss_kib(d.pid()));
    }
    assert!(
        peak <= before + 32 * 1024,
        "the daemon grew from {before} KiB to {peak} KiB while the client read {got} bytes"
    );
    drop((s, r));
    let (ok, body, err) = curl_via(&d, &[&url(o.addr, "/still")]);
    assert!(ok, "curl: {err}");
    assert_eq!(body, o.default_body("GET", "/still"));
}

/// The proxy relays an answer as it comes, not once it is whole: the first part of a
/// `/hold` answer reaches the client while the origin still holds the rest; a body the
/// origin sends in paced pieces arrives intact.
fn bodies_stream_without_waiting_for_their_end(runtime: &str) {
    let d = start(runtime, OPEN);
    let o = Origin::start("stream");
    let (mut s, mut r) = open(d.addr);
    fail_fast(&r);
    s.write_all(head("GET", o.addr, "/hold", "").as_bytes())
        .unwrap();
    let h = try_read_head(&mut r).expect("the head before the whole body");
    assert!(h.starts_with("HTTP/1.1 200 "), "{h}");
    let mut first = vec![0u8; origin::HOLD_FIRST.len()];
    r.read_exact(&mut first)
        .expect("the first part of the body while the origin holds the rest");
    assert_eq!(first, origin::HOLD_FIRST);
    o.release();
    let mut rest = vec![0u8; origin::HOLD_REST.len()];
    r.read_exact(&mut rest).unwrap();
    assert_eq!(rest, origin::HOLD_REST);

    const SLOW: usize = 1024 * 1024;
    let out = scratch_file("slow.bin");
    let (ok, _, err) = curl_via(
        &d,
        &[
            "-o",
            out.to_str().unwrap(),
            &url(o.addr, &format!("/slow/{SLOW}")),
        ],
    );
    assert!(ok, "curl: {err}");
    assert!(std::fs::read(&out).unwrap() == origin::generated(SLOW));
}

/// The harness itself, without a proxy: the origin's routes, keep-alive, pipelining,
/// `Expect: 100-continue` and recording, read back with the response reader, so a
/// failure above is the proxy's and not the test's.
#[test]
fn the_origin_and_the_reader_agree_without_a_proxy() {
    let o = Origin::start("direct");
    let (mut s, mut r) = open(o.addr);
    let h = o.addr;
    let pipelined = format!(
        "GET /a HTTP/1.1\r\nHost: {h}\r\n\r\nHEAD /h HTTP/1.1\r\n\r\n\
         GET /status/204 HTTP/1.1\r\n\r\nGET /status/304 HTTP/1.1\r\n\r\n\
         GET /chunked HTTP/1.1\r\n\r\n\
         POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
         POST /sink HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc\
         GET /big/100000 HTTP/1.1\r\n\r\n"
    );
    s.write_all(pipelined.as_bytes()).unwrap();
    assert_eq!(read_response(&mut r, "GET").text(), "direct GET /a");
    let resp = read_response(&mut r, "HEAD");
    assert_eq!(
        resp.field("Content-Length"),
        Some("direct HEAD /h".len().to_string().as_str())
    );
    assert_eq!(read_response(&mut r, "GET").status, 204);
    assert_eq!(read_response(&mut r, "GET").status, 304);
    let resp = read_response(&mut r, "GET");
    assert_eq!(resp.framing, Framing::Chunked);
    assert!(resp.body == origin::chunked_body());
    assert_eq!(resp.trailers, origin::TRAILER);
    assert_eq!(read_response(&mut r, "POST").text(), "hello");
    assert_eq!(
        read_response(&mut r, "POST").text(),
        format!("3 {:016x}", origin::hash(b"abc"))
    );
    let resp = read_response(&mut r, "GET");
    assert!(resp.body == origin::generated(100_000));
    assert_eq!(origin::hash(&resp.body), origin::generated_hash(100_000));

    let interim = exchange(
        &mut s,
        &mut r,
        "PUT /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(interim.status, 100);
    s.write_all(b"ok").unwrap();
    assert_eq!(read_response(&mut r, "PUT").text(), "ok");

    s.write_all(b"GET /hold HTTP/1.1\r\n\r\n").unwrap();
    try_read_head(&mut r).unwrap();
    let mut first = vec![0u8; origin::HOLD_FIRST.len()];
    r.read_exact(&mut first).unwrap();
    o.release();
    let mut rest = vec![0u8; origin::HOLD_REST.len()];
    r.read_exact(&mut rest).unwrap();
    assert_eq!(
        (first.as_slice(), rest.as_slice()),
        (origin::HOLD_FIRST, origin::HOLD_REST)
    );

    let resp = exchange(&mut s, &mut r, "GET /close10/70000 HTTP/1.1\r\n\r\n");
    assert_eq!(resp.framing, Framing::Close);
    assert!(resp.body == origin::generated(70_000));

    let seen = o.seen();
    assert_eq!(seen.len(), 11, "{seen:#?}");
    assert!(seen.iter().all(|s| s.connection == 1));
    assert_eq!(seen[0].field("host"), Some(h.to_string().as_str()));
    assert!(seen[5].chunked);
    assert_eq!(
        (seen[5].body.as_slice(), seen[5].trailers.as_str()),
        (&b"hello"[..], "X-T: 1")
    );
    assert_eq!(o.accepted(), 1);

    // curl straight to the origin: keep-alive, and a hang-up is an error.
    let (ok, out, err) = curl(&[
        "--write-out",
        "|%{num_connects}\\n",
        &url(h, "/1"),
        &url(h, "/2"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "direct GET /1|1\ndirect GET /2|0\n");
    let (ok, _, _) = curl(&[&url(h, "/hangup")]);
    assert!(!ok, "a hang-up is not an answer");
}
