//! Shared by the plain HTTP forwarding tests (`e2e_http_forward*.rs`): the daemon with one
//! `proxy` service and a log format that names the service, record lookups, raw requests
//! over a kept connection, and scratch files.

use super::response::{read_response, Response};
use super::{connect, curl, Daemon, Start};
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

/// The default 3proxy format with `%N` inserted before `%T`: fields are `0` time, `1` %p,
/// `2` %E, `3` %U, `4` %C:%c, `5` %R:%r, `6` %O, `7` %I, `8` %h, `9` %N, `10..` %T.
pub const FORMAT: &str = "logformat \"G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %N %T\"\n";

/// Any client on 127.0.0.1, any target.
pub const OPEN: &str = "auth iponly\nallow * 127.0.0.1\n";

/// 64 MiB, the size of the large transfers.
pub const BIG: usize = 64 * 1024 * 1024;

/// Fields that are hop-by-hop (RFC 9110 section 7.6.1): an origin must never see them
/// from a client through the proxy.
pub const HOP_BY_HOP: [&str; 6] = [
    "Proxy-Authorization",
    "Proxy-Connection",
    "Keep-Alive",
    "TE",
    "Trailer",
    "Upgrade",
];

/// The daemon under test: `rules` (auth, users, ACL, parents) then one `proxy` service on
/// 127.0.0.1, logging to stdout in [`FORMAT`].
pub fn start(runtime: &str, rules: &str) -> Daemon {
    Daemon::start(
        &format!("log\n{FORMAT}{rules}proxy -p0 -i127.0.0.1\n"),
        runtime,
    )
}

/// Whether the fields of a record (split on whitespace) have code `code` and a `%T` that
/// is `text` or `text` followed by more words.
pub fn is_record(f: &[&str], code: &str, text: &str) -> bool {
    if f.len() < 11 || f[2] != code {
        return false;
    }
    let t = f[10..].join(" ");
    t == text || t.starts_with(&format!("{text} "))
}

/// Waits for a record with code `code` whose `%T` is `text` (see [`is_record`]); returns
/// its fields. Checks `%N`.
pub fn record(d: &Daemon, code: u16, text: &str) -> Vec<String> {
    let code = format!("{code:05}");
    let line = d.wait_log(&format!("with code {code} and %T {text:?}"), |l| {
        is_record(&l.split_whitespace().collect::<Vec<_>>(), &code, text)
    });
    let f: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    assert_eq!(f[9], "PROXY", "%N: {line}");
    f
}

/// How many records have code `code` and a `%T` starting with `prefix`.
pub fn count_records(d: &Daemon, code: u16, prefix: &str) -> usize {
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
pub fn expect_records(d: &Daemon, code: u16, prefix: &str, n: usize) {
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
pub fn wait_nth_code(d: &Daemon, what: &str, pred: impl Fn(u16) -> bool, n: usize) -> String {
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
pub fn is_bad_gateway_code(c: u16) -> bool {
    matches!(c, 11..=19 | 30..=79 | 100)
}

/// `http://ORIGIN/path`.
pub fn url(o: SocketAddr, path: &str) -> String {
    format!("http://{o}{path}")
}

/// curl with the daemon as its HTTP proxy (`--proxy`, never `--proxytunnel`).
pub fn curl_via(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let proxy = format!("http://{}", d.addr);
    let mut all = vec!["--proxy", proxy.as_str()];
    all.extend_from_slice(args);
    curl(&all)
}

/// The HTTP status curl got through the proxy of `d` with `args` (the body is dropped).
pub fn status_via(d: &Daemon, args: &[&str]) -> String {
    let mut all = vec!["--write-out", "%{http_code}", "-o", "/dev/null"];
    all.extend_from_slice(args);
    let (ok, code, err) = curl_via(d, &all);
    assert!(ok, "curl: {err}");
    code
}

/// A request head in absolute form for `origin`: `METHOD http://origin/path HTTP/1.1`,
/// its `Host`, and `extra` field lines (each ending in CRLF).
pub fn head(method: &str, o: SocketAddr, path: &str, extra: &str) -> String {
    format!("{method} http://{o}{path} HTTP/1.1\r\nHost: {o}\r\n{extra}\r\n")
}

/// A connection to the proxy, and a reader on it kept across responses.
pub fn open(proxy: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = connect(proxy);
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

/// Sends one request on `s` and reads its response from `r`.
pub fn exchange(s: &mut TcpStream, r: &mut BufReader<TcpStream>, request: &str) -> Response {
    s.write_all(request.as_bytes()).unwrap();
    let method = request.split(' ').next().unwrap();
    read_response(r, method)
}

/// Asserts the proxy closes the connection within 5 s, sending nothing more (an EOF or
/// a reset, not a stall).
pub fn assert_closes(r: &mut BufReader<TcpStream>) {
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
pub fn fail_fast(r: &BufReader<TcpStream>) {
    r.get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
}

/// A 127.0.0.1 port nothing listens on.
pub fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A file in a fresh scratch directory.
pub fn scratch_file(name: &str) -> PathBuf {
    triproxy_test_support::scratch_dir().join(name)
}

/// Writes `len` bytes generated from `seed` to a scratch file; returns its path and
/// their hash.
pub fn generated_file(name: &str, seed: u64, len: usize) -> (PathBuf, u64) {
    let path = scratch_file(name);
    let mut out = BufWriter::new(std::fs::File::create(&path).unwrap());
    let hash = super::origin::generate_in_pieces(seed, len, |piece| out.write_all(piece).unwrap());
    out.flush().unwrap();
    (path, hash)
}

/// The resident set size of process `pid`, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}
