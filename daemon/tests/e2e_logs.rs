//! End-to-end: the log destinations and formats on both runtimes. A `log FILE D` writes to
//! the file named for today (3proxy's `.YYYY.MM.DD` suffix); `log @IDENT` sends RFC 3164
//! datagrams to the syslog socket named by `TRIPROXY_SYSLOG_SOCKET` (a socket this test
//! binds); `logjson` writes one JSON object per line that parses even when a user name is
//! hostile; `nolog` after an `allow` line keeps that entry's connections out of the log;
//! and `logdump` writes interim records that, with the last one, add up to the whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use triproxy_test_support::scratch_dir;

both_runtimes!(
    a_dated_log_file_appears,
    syslog_records_arrive_on_the_socket,
    json_lines_parse_with_hostile_user_names,
    nolog_drops_the_records_of_its_entry,
    logdump_writes_interim_records,
);

/// One connection through a port mapper or SOCKS stream: `hi` echoed, then closed.
fn exchange(mut s: std::net::TcpStream) {
    s.write_all(b"hi").unwrap();
    assert_eq!(read_n(&mut s, 2), b"hi");
}

/// The lines of `path` once one satisfies `pred` (at most 20 s).
fn wait_file_line(path: &Path, pred: impl Fn(&str) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.iter().any(|l| pred(l)) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "no such line in {}: {lines:#?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The files `log NAME D` may write today (two around local midnight).
fn todays_names(base: &Path) -> Vec<PathBuf> {
    let now = chrono::Local::now();
    [
        now - chrono::Duration::seconds(30),
        now,
        now + chrono::Duration::seconds(30),
    ]
    .iter()
    .map(|t| {
        let mut p = base.as_os_str().to_owned();
        p.push(t.format(".%Y.%m.%d").to_string());
        PathBuf::from(p)
    })
    .collect()
}

fn a_dated_log_file_appears(runtime: &str) {
    let dir = scratch_dir();
    let base = dir.join("mapper.log");
    let target = echo_target();
    let d = Daemon::start(
        &format!(
            "log {} D\nlogformat \"G%E %N %X %T\"\nauth iponly\nallow *\ntcppm -i127.0.0.1 0 127.0.0.1 {}\n",
            base.display(),
            target.port()
        ),
        runtime,
    );
    exchange(connect(d.addr));
    let deadline = Instant::now() + Duration::from_secs(20);
    let file = loop {
        if let Some(p) = todays_names(&base).into_iter().find(|p| p.exists()) {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no dated file beside {}",
            base.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = wait_file_line(&file, |l| l.starts_with("00000 TCPPM ok "));
    assert_eq!(lines, ["00000 TCPPM ok 127.0.0.1"], "{}", file.display());
    // The plain name itself is never written: rotation never renames.
    assert!(!base.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

fn syslog_records_arrive_on_the_socket(runtime: &str) {
    let dir = scratch_dir();
    let socket_path = dir.join("log.sock");
    let server = UnixDatagram::bind(&socket_path).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let target = echo_target();
    let d = Daemon::start_env(
        &format!(
            "log @tproxy\nlogformat \"G%E %N %T\"\nauth iponly\nallow *\ntcppm -i127.0.0.1 0 127.0.0.1 {}\n",
            target.port()
        ),
        runtime,
        &[("TRIPROXY_SYSLOG_SOCKET", &socket_path)],
    );
    exchange(connect(d.addr));
    let mut buf = [0u8; 2048];
    let n = server.recv(&mut buf).expect("a syslog datagram");
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    // `<30>Mmm dd hh:mm:ss tproxy[PID]: record`, as glibc's syslog() sends it.
    assert!(text.starts_with("<30>"), "{text}");
    let after_stamp = text.get(4 + 16..).unwrap();
    assert_eq!(
        after_stamp,
        format!("tproxy[{}]: 00000 TCPPM 127.0.0.1", d.pid()),
        "{text}"
    );
    assert!(!text.ends_with('\n'));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A `Proxy-Authorization: Basic` header for `user:password`.
fn basic(user_pass: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in user_pass.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn json_lines_parse_with_hostile_user_names(runtime: &str) {
    let dir = scratch_dir();
    let origin = http_server("json ok");
    let d = Daemon::start(
        &format!(
            "log {}/j-%Y.log\nlogjson\nauth strong\nusers alice:CL:pw\nallow *\nproxy -p0 -i127.0.0.1\n",
            dir.display()
        ),
        runtime,
    );
    let (ok, body, err) = curl(&[
        "-x",
        &format!("http://alice:pw@{}", d.addr),
        &format!("http://{origin}/x"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(body, "json ok");
    // HTTP Basic cannot carry control characters (RFC 7617); the unit tests of
    // `logjson` cover those.
    let hostile = "we\"ird\\name\",{\u{e9}} -";
    let mut s = connect(d.addr);
    write!(
        s,
        "GET http://{origin}/y HTTP/1.1\r\nHost: {origin}\r\nProxy-Authorization: Basic {}\r\n\r\n",
        basic(format!("{hostile}:nope").as_bytes())
    )
    .unwrap();
    let reply = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(reply.starts_with("HTTP/1.1 407"), "{reply}");
    let year = chrono::Local::now().format("%Y").to_string();
    let file = dir.join(format!("j-{year}.log"));
    let lines = wait_file_line(&file, |l| l.contains("\"code\":5"));
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let good = records
        .iter()
        .find(|r| r["user"] == "alice")
        .expect("alice's record");
    assert_eq!(good["code"], 0);
    assert_eq!(good["service"], "PROXY");
    assert_eq!(good["reason"], "ok");
    assert_eq!(good["target_port"], origin.port());
    assert_eq!(good["client"]["ip"], "127.0.0.1");
    let bad = records
        .iter()
        .find(|r| r["user"] == hostile)
        .unwrap_or_else(|| panic!("the hostile user's record: {lines:#?}"));
    assert_eq!(bad["code"], 5, "{bad}");
    assert_eq!(bad["reason"], "unknown user");
    let _ = std::fs::remove_dir_all(&dir);
}

fn nolog_drops_the_records_of_its_entry(runtime: &str) {
    let quiet = echo_target();
    let loud = echo_target();
    let d = Daemon::start(
        &format!(
            "log\nlogformat \"G%y %p %E %N %T\"\nauth iponly\nallow * 127.0.0.1 127.0.0.1 {}\nnolog\nallow *\nsocks -p0 -i127.0.0.1\n",
            quiet.port()
        ),
        runtime,
    );
    exchange(socks5_connect(d.addr, quiet));
    exchange(socks5_connect(d.addr, loud));
    d.wait_code(0, &format!("CONNECT 127.0.0.1:{}", loud.port()));
    // The quiet connection ended first; give a late record time to show up anyway.
    std::thread::sleep(Duration::from_millis(300));
    let quiet_text = format!(":{}", quiet.port());
    let lines = d.log_lines();
    assert!(!lines.iter().any(|l| l.contains(&quiet_text)), "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
}

fn logdump_writes_interim_records(runtime: &str) {
    let target = echo_target();
    let d = Daemon::start(
        &format!(
            "log\nlogformat \"G%y %p %E %I %O %T\"\nlogdump 1000\nauth iponly\nallow *\ntcppm -i127.0.0.1 0 127.0.0.1 {}\n",
            target.port()
        ),
        runtime,
    );
    let mut s = connect(d.addr);
    let chunk = [7u8; 800];
    for _ in 0..4 {
        s.write_all(&chunk).unwrap();
        assert_eq!(read_n(&mut s, chunk.len()), chunk);
    }
    // An interim record comes while the tunnel is still open.
    let interim = d.wait_code(0, " 127.0.0.1");
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(20);
    let totals = loop {
        let lines = d.log_lines();
        let sum = |field: usize| -> u64 {
            lines
                .iter()
                .map(|l| {
                    l.split_whitespace()
                        .nth(field)
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                })
                .sum()
        };
        if sum(3) == 3200 || Instant::now() > deadline {
            break (lines.len(), sum(3), sum(4));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        totals.0 >= 2,
        "interim and last records: {:#?}",
        d.log_lines()
    );
    assert_eq!((totals.1, totals.2), (3200, 3200), "{:#?}", d.log_lines());
    let bytes_in: u64 = interim.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(bytes_in > 1000, "{interim}");
}
