//! The web admin (3proxy `admin`) end to end, on both runtimes, driven by curl: Basic
//! credentials against `auth strong` (401 without or with wrong ones), the ADMIN ACL
//! refusing another user (403), the counters page and `/CD<n>` / `/CS<n>`, a read-only
//! `admin -s` refusing them, the services page, and `/metrics` read by prometheus_client's
//! own text parser, whose values move after a connection through a SOCKS service; and
//! `maxconn` capping clients (code 10) while a silent one waits (code 701 when it leaves).
//!
//! Every service listens on 127.0.0.1 with `-p0`; the test finds the other services' ports
//! on the admin's own pages. `/R` is not requested here: it signals the daemon to reload,
//! which the unit tests cover with a counting callback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

both_runtimes!(
    pages_need_credentials_and_the_admin_acl,
    counters_are_switched_and_read_only_refuses,
    metrics_parse_and_move_after_a_proxied_connection,
    maxconn_caps_clients_and_a_silent_one_is_logged_701,
);

/// Two counters, a full admin for alice, a read-only one, and an open SOCKS service.
const CONFIG: &str = "log
users alice:CL:secret bob:CL:other
countin \"1/downloads\" D 100 *
countall \"2/everything\" M 1000 *
auth strong
allow alice
admin -p0 -i127.0.0.1
admin -s -p0 -i127.0.0.1
flush
auth iponly
allow * 127.0.0.1
socks -p0 -i127.0.0.1
";

const ALICE: &str = "alice:secret";

/// `curl -i` of `path` on `admin` with `user:password` (or none): (status, whole answer).
fn get(admin: SocketAddr, path: &str, credentials: Option<&str>) -> (u16, String) {
    let url = format!("http://{admin}{path}");
    let mut args = vec!["-i", url.as_str()];
    if let Some(c) = credentials {
        args.extend(["-u", c]);
    }
    let (ok, out, err) = curl(&args);
    assert!(ok, "curl {url}: {err}");
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {out:?}"));
    (status, out)
}

/// The other services, from the admin's services page: (service, address) in order.
fn services(admin: SocketAddr) -> Vec<(String, SocketAddr)> {
    let (status, page) = get(admin, "/S", Some(ALICE));
    assert_eq!(status, 200, "{page}");
    page.lines()
        .filter_map(|l| l.strip_prefix("<tr><td>"))
        .filter(|l| !l.starts_with("Service"))
        .map(|row| {
            let cells: Vec<&str> = row
                .trim_end_matches("</td></tr>")
                .split("</td><td>")
                .collect();
            (
                cells[0].to_owned(),
                format!("{}:{}", cells[1], cells[2]).parse().unwrap(),
            )
        })
        .collect()
}

fn pages_need_credentials_and_the_admin_acl(runtime: &str) {
    let d = Daemon::start(CONFIG, runtime);
    let (status, answer) = get(d.addr, "/C", None);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer.contains("WWW-Authenticate: Basic realm=\"triproxy\""),
        "{answer}"
    );
    d.wait_code(4, "GET /C");
    for path in ["/S", "/metrics"] {
        assert_eq!(get(d.addr, path, None).0, 401, "{path}");
    }
    assert_eq!(get(d.addr, "/C", Some("alice:wrong")).0, 401);
    d.wait_code(6, "GET /C");
    let (status, page) = get(d.addr, "/C", Some(ALICE));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<td>0</td><td>1/downloads</td><td>countin</td>"),
        "{page}"
    );
    assert!(
        page.contains("<td>1</td><td>2/everything</td><td>countall</td>"),
        "{page}"
    );
    let line = d.wait_code(0, "GET /C");
    assert_eq!(line.split_whitespace().nth(3), Some("alice"), "%U: {line}");
    // bob has a password but the ACL in force at the admin line only allows alice.
    let (status, page) = get(d.addr, "/metrics", Some("bob:other"));
    assert_eq!(status, 403, "{page}");
    d.wait_code(3, "GET /metrics");
    // Every path needs them, the banner too.
    assert_eq!(get(d.addr, "/", None).0, 401);
    let (status, banner) = get(d.addr, "/", Some(ALICE));
    assert_eq!(status, 200);
    assert!(banner.contains("<a href=\"/metrics\">"), "{banner}");
    // A POST with a body the admin does not read still gets its whole answer.
    let body = "x".repeat(100_000);
    let url = format!("http://{}/C", d.addr);
    let (ok, page, err) = curl(&["-u", ALICE, "--data-binary", &body, &url]);
    assert!(ok, "{err}");
    assert!(
        page.contains("1/downloads") && page.ends_with("</html>\n"),
        "{page}"
    );
    d.wait_code(0, "POST /C");
    assert_eq!(get(d.addr, "/F", Some(ALICE)).0, 501);
    d.wait_code(999, "GET /F");
    // The services page lists the three services in configuration order.
    let listed = services(d.addr);
    let kinds: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["admin", "admin", "socks"]);
    assert_eq!(listed[0].1, d.addr);
}

fn counters_are_switched_and_read_only_refuses(runtime: &str) {
    let d = Daemon::start(CONFIG, runtime);
    let read_only = services(d.addr)[1].1;
    let (status, page) = get(d.addr, "/CD1", Some(ALICE));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<a href=\"/CS1\" title=\"switch on\">NO</a>"),
        "{page}"
    );
    let (_, page) = get(d.addr, "/C", Some(ALICE));
    assert!(
        page.contains("<a href=\"/CS1\" title=\"switch on\">NO</a>"),
        "{page}"
    );
    assert!(
        page.contains("<a href=\"/CD0\" title=\"switch off\">YES</a>"),
        "{page}"
    );
    // The read-only admin shows the same state without links, and refuses to switch.
    let (status, page) = get(read_only, "/C", Some(ALICE));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<td>countall</td><td>NO</td>"), "{page}");
    assert!(!page.contains("href=\"/CS1\""), "{page}");
    let (status, page) = get(read_only, "/CS1", Some(ALICE));
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("read-only"), "{page}");
    d.wait_code(1, "GET /CS1");
    assert_eq!(get(read_only, "/S", Some(ALICE)).0, 403);
    let (_, page) = get(d.addr, "/C", Some(ALICE));
    assert!(page.contains("href=\"/CS1\""), "still disabled: {page}");
    // Switched on again from the full admin.
    assert_eq!(get(d.addr, "/CS1", Some(ALICE)).0, 200);
    let (_, page) = get(read_only, "/C", Some(ALICE));
    assert!(page.contains("<td>countall</td><td>YES</td>"), "{page}");
    assert_eq!(get(d.addr, "/CD7", Some(ALICE)).0, 404);
}

/// `/metrics` as prometheus_client's parser reads it: "name{sorted labels}" → value.
fn metrics(admin: SocketAddr) -> BTreeMap<String, f64> {
    let (status, answer) = get(admin, "/metrics", Some(ALICE));
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.contains("Content-Type: text/plain; version=0.0.4"),
        "{answer}"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let parsed = python(
        "import sys\n\
         from prometheus_client.parser import text_string_to_metric_families\n\
         for family in text_string_to_metric_families(sys.argv[1]):\n\
         \x20   for s in family.samples:\n\
         \x20       labels = ','.join(k + '=' + v for k, v in sorted(s.labels.items()))\n\
         \x20       print(s.name + '{' + labels + '}', s.value)\n",
        &[body],
    );
    parsed
        .lines()
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn metrics_parse_and_move_after_a_proxied_connection(runtime: &str) {
    let d = Daemon::start(CONFIG, runtime);
    let socks = services(d.addr)[2].1;
    let at = |name: &str| format!("{name}{{listen={socks},service=socks}}");
    let quota =
        "triproxy_quota_used_bytes{comment=downloads,number=1,period=D,rule=0,type=countin}";
    let before = metrics(d.addr);
    assert_eq!(
        before[&at("triproxy_connections_total")],
        0.0,
        "{before:#?}"
    );
    assert_eq!(before[&at("triproxy_bytes_in_total")], 0.0);
    assert_eq!(before[quota], 0.0);
    assert_eq!(
        before["triproxy_quota_limit_bytes{comment=everything,number=2,period=M,rule=1,type=countall}"],
        1000.0 * 1048576.0
    );

    let web = http_server("counted through socks");
    let proxy = format!("socks5://{socks}");
    let (ok, body, err) = curl(&["--proxy", &proxy, &format!("http://{web}/")]);
    assert!(ok, "{err}");
    assert_eq!(body, "counted through socks");
    d.wait_code(0, &format!("CONNECT {web}"));
    let after = metrics(d.addr);
    assert_eq!(after[&at("triproxy_connections_total")], 1.0, "{after:#?}");
    assert!(after[&at("triproxy_bytes_in_total")] > 20.0, "{after:#?}");
    assert!(after[&at("triproxy_bytes_out_total")] > 0.0, "{after:#?}");
    let ok_records = format!("triproxy_log_records_total{{code=0,listen={socks},service=socks}}");
    assert_eq!(after[&ok_records], 1.0, "{after:#?}");
    assert!(after[quota] > 20.0, "{after:#?}");
    // The admin counts its own requests too (`/S` and the first `/metrics`; this one is
    // logged after its answer).
    let admin_ok = format!(
        "triproxy_log_records_total{{code=0,listen={},service=admin}}",
        d.addr
    );
    assert!(after[&admin_ok] >= 2.0, "{after:#?}");

    // The gauge follows a tunnel that stays open, and falls back when it closes.
    let target = echo_target();
    let tunnel = socks5_connect(socks, target);
    assert_eq!(metrics(d.addr)[&at("triproxy_active_connections")], 1.0);
    drop(tunnel);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(d.addr);
        if m[&at("triproxy_active_connections")] == 0.0 {
            assert_eq!(m[&at("triproxy_connections_total")], 2.0);
            break;
        }
        assert!(Instant::now() < deadline, "active stays at 1: {m:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn maxconn_caps_clients_and_a_silent_one_is_logged_701(runtime: &str) {
    let d = Daemon::start(
        "log\nlogformat \"G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %N %T\"\nmaxconn 1\nauth iponly\nallow * 127.0.0.1\nadmin -p0 -i127.0.0.1\n",
        runtime,
    );
    let silent = connect(d.addr);
    // Its thread is the one allowed; the next client is closed unanswered, code 10.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (ok, out, err) = curl(&[&format!("http://{}/C", d.addr)]);
        assert!(!ok, "answered beyond maxconn: {out}");
        if d.log_lines()
            .iter()
            .any(|l| l.split_whitespace().nth(2) == Some("00010"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no code 10: {err}");
    }
    drop(silent);
    d.wait_code(701, "");
    let (status, page) = get(d.addr, "/C", None);
    assert_eq!(status, 200, "{page}");
    // One record per request, service name ADMIN (`%N`), the request as `%T`.
    let line = d.wait_code(0, "GET /C");
    assert!(line.ends_with(" ADMIN GET /C"), "{line}");
}
