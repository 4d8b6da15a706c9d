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
//! reader, streaming, request smuggling refusals, per-request ACL checks, Basic
//! authentication, origin failures, malformed requests, and `http` and `socks5` parents.
//! One more test checks the harness alone (origin and response reader, no proxy), so a
//! failure elsewhere points at the proxy.
//!
//! Records are written with `%N` before `%T` (see [`FORMAT`]); a record's `%T` is the
//! request line without its version, or with it (3proxy logs the whole line): [`record`]
//! accepts both. Everything listens on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::origin::{self, Origin};
use common::response::{read_response, try_read_head, Framing, Response};
use common::*;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

/// The default 3proxy format with `%N` inserted before `%T`: fields are `0` time, `1` %p,
/// `2` %E, `3` %U, `4` %C:%c, `5` %R:%r, `6` %O, `7` %I, `8` %h, `9` %N, `10..` %T.
const FORMAT: &str = "logformat \"G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %N %T\"\n";

/// Any client on 127.0.0.1, any target.
const OPEN: &str = "auth iponly\nallow * 127.0.0.1\n";

/// 64 MiB, the size of the large transfers.
const BIG: usize = 64 * 1024 * 1024;

/// Fields that are hop-by-hop (RFC 9110 section 7.6.1): an origin must never see them
/// from a client through the proxy.
const HOP_BY_HOP: [&str; 6] = [
    "Proxy-Authorization",
    "Proxy-Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
];

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

/// The daemon under test: `rules` (auth, users, ACL, parents) then one `proxy` service on
/// 127.0.0.1, logging to stdout in [`FORMAT`].
fn start(runtime: &str, rules: &str) -> Daemon {
    Daemon::start(
        &format!("log\n{FORMAT}{rules}proxy -p0 -i127.0.0.1\n"),
        runtime,
    )
}

/// Whether the fields of a record (split on whitespace) have code `code` and a `%T` that
/// is `text` or `text` followed by more words.
fn is_record(f: &[&str], code: &str, text: &str) -> bool {
    if f.len() < 11 || f[2] != code {
        return false;
    }
    let t = f[10..].join(" ");
    t == text || t.starts_with(&format!("{text} "))
}

/// Waits for a record with code `code` whose `%T` is `text` (see [`is_record`]); returns
/// its fields. Checks `%N`.
fn record(d: &Daemon, code: u16, text: &str) -> Vec<String> {
    let code = format!("{code:05}");
    let line = d.wait_log(&format!("with code {code} and %T {text:?}"), |l| {
        is_record(&l.split_whitespace().collect::<Vec<_>>(), &code, text)
    });
    let f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    assert_eq!(f[9], "PROXY", "%N: {line}");
    f
}

/// How many records have code `code` and a `%T` starting with `prefix`.
fn count_records(d: &Daemon, code: u16, prefix: &str) -> usize {
    let code = format!("{code:05}");
    d.log_lines()
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 10 && f[2] == code && f[10..].join(" ").starts_with(prefix)
        })
        .count()
}

/// Waits until exactly `n` records have code `code` and a `%T` starting with `prefix`,
/// and stay `n` for 200 ms (so an extra record would be seen).
fn expect_records(d: &Daemon, code: u16, prefix: &str, n: usize) {
    d.wait_log(
        &format!("#{n} with code {code} and %T {prefix:?}..."),
        |_| count_records(d, code, prefix) >= n,
    );
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        count_records(d, code, prefix),
        n,
        "records of {prefix:?}: {:#?}",
        d.log_lines()
    );
}

/// Waits until `n` records have a code satisfying `pred` (and `%N` PROXY); returns the
/// last of them.
fn wait_nth_code(d: &Daemon, what: &str, pred: impl Fn(u16) -> bool, n: usize) -> String {
    let matching = || -> Vec<String> {
        d.log_lines()
            .into_iter()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 9 && f[9] == "PROXY" && f[2].parse::<u16>().is_ok_and(&pred)
            })
            .collect()
    };
    d.wait_log(&format!("#{n} with {what}"), |_| matching().len() >= n);
    matching().swap_remove(n - 1)
}

/// The codes 3proxy's HTTP proxy answers `502 Bad Gateway` (the table of
/// `policy::front::http_refusal`).
fn is_bad_gateway_code(c: u16) -> bool {
    matches!(c, 11..=19 | 30..=79 | 100)
}

/// `http://ORIGIN/path`.
fn url(o: SocketAddr, path: &str) -> String {
    format!("http://{o}{path}")
}

/// curl with the daemon as its HTTP proxy (`--proxy`, never `--proxytunnel`).
fn curl_via(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let proxy = format!("http://{}", d.addr);
    let mut all = vec!["--proxy", proxy.as_str()];
    all.extend_from_slice(args);
    curl(&all)
}

/// A request head in absolute form for `origin`: `METHOD http://origin/path HTTP/1.1`,
/// its `Host`, and `extra` field lines (each ending in CRLF).
fn head(method: &str, o: SocketAddr, path: &str, extra: &str) -> String {
    format!("{method} http://{o}{path} HTTP/1.1\r\nHost: {o}\r\n{extra}\r\n")
}

/// A connection to the proxy, and a reader on it kept across responses.
fn open(proxy: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = connect(proxy);
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Sends one request on `s` and reads its response from `r`.
fn exchange(s: &mut TcpStream, r: &mut BufReader<TcpStream>, request: &str) -> Response {
    s.write_all(request.as_bytes()).unwrap();
    let method = request.split(' ').next().unwrap();
    read_response(r, method)
}

/// Asserts the proxy closes the connection within 5 s, sending nothing more (an EOF or
/// a reset, not a stall).
fn assert_closes(r: &mut BufReader<TcpStream>) {
    r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 4096];
    match r.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "more bytes after the response: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the proxy kept the connection open")
        }
        Err(_) => {}
    }
}

/// Sets a 5 s read timeout, so a response that never comes (a proxy waiting for a body
/// that does not exist) fails fast.
fn fail_fast(r: &BufReader<TcpStream>) {
    r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
}

/// A 127.0.0.1 port nothing listens on.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A file in a fresh scratch directory.
fn scratch_file(name: &str) -> PathBuf {
    triproxy_test_support::scratch_dir().join(name)
}

/// Writes `len` bytes generated from `seed` to a scratch file; returns its path and
/// their hash.
fn generated_file(name: &str, seed: u64, len: usize) -> (PathBuf, u64) {
    let path = scratch_file(name);
    let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut gen = Stream64::new(seed);
    let mut h = Fnv::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        gen.fill(&mut buf[..n]);
        h.update(&buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
    (path, h.0)
}

/// The resident set size of process `pid`, in KiB (`VmRSS` in `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

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
    let code = |args: &[&str]| {
        let mut all = vec!["--write-out", "%{http_code}", "-o", "/dev/null"];
        all.extend_from_slice(args);
        let (ok, code, err) = curl_via(&d, &all);
        assert!(ok, "curl: {err}");
        code
    };
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
    let (ok, code, err) = curl_via(
        &d,
        &[
            "--write-out",
            "%{http_code}",
            "-o",
            "/dev/null",
            &url(o.addr, "/secret"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(code, "407");
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

    let (ok, code, err) = curl_via(
        &d,
        &[
            "--write-out",
            "%{http_code}",
            "-o",
            "/dev/null",
            &url(o.addr, "/hangup"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(code, "502");
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
    let (ok, code, err) = curl_via(
        &d,
        &[
            "--write-out",
            "%{http_code}",
            "-o",
            "/dev/null",
            &url(o.addr, "/again"),
        ],
    );
    assert!(ok, "curl: {err}");
    assert_eq!(code, "503");
    assert_eq!(
        o.accepted(),
        accepted,
        "the refused request reached the origin"
    );
}
