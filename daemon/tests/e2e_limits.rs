//! Limits end to end, on both runtimes, with curl and raw sockets on 127.0.0.1:
//!
//! - a `countin` quota ends a running download (through SOCKS5 and through the HTTP
//!   proxy's CONNECT) within one relayed chunk of the limit, logs code 10, and refuses the
//!   next connection with code 10;
//! - the `counter` file keeps the tally across an orderly restart (SIGTERM), so the quota
//!   a first daemon nearly used up cuts the second daemon's first download; a damaged
//!   counter file stops the start with a message naming the file;
//! - `connlim N 0` refuses the connection beyond N parallel ones (SOCKS5 REP 2, code 10)
//!   until one ends; `connlim N P` counts closed connections too;
//! - `timeouts` sets the relay's idle limit (CONNECTION_LONG): a silent tunnel is closed
//!   after it with code 92, one with traffic is not.
//!
//! Quotas use period `N` (never reset) so that no calendar boundary can reset a counter in
//! the middle of a test. Every wait is bounded; lower time bounds are loose, upper bounds
//! leave room for a loaded two-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use triproxy_policy::counterfile;

const MIB: usize = 1 << 20;

/// The most one relayed chunk holds (a pooled pipe or buffer): a tunnel may pass its quota
/// by at most this much before it ends.
const CHUNK: usize = 256 * 1024;

/// Any client on 127.0.0.1, any target, logging in 3proxy's default format.
const OPEN: &str = "log\nauth iponly\nallow * 127.0.0.1\n";

both_runtimes!(
    countin_cuts_a_socks5_download_then_refuses,
    countin_cuts_a_connect_download_then_refuses,
    counter_file_keeps_the_tally_across_a_restart,
    damaged_counter_file_stops_the_start,
    connlim_parallel_refuses_the_third_until_one_ends,
    connlim_with_a_period_counts_closed_connections,
    timeouts_set_the_relay_idle_limit,
);

/// How curl reaches the origin through the daemon.
#[derive(Debug, Clone, Copy)]
enum Front {
    /// `socks` service, curl `--socks5`.
    Socks5,
    /// `proxy` service, curl `--proxytunnel --proxy http://...` (a CONNECT tunnel).
    HttpConnect,
}

impl Front {
    fn service(self) -> &'static str {
        match self {
            Front::Socks5 => "socks",
            Front::HttpConnect => "proxy",
        }
    }
}

/// A body of `len` bytes for [`http_server`] (leaked: it serves a `'static` str).
fn body(len: usize) -> &'static str {
    Box::leak("x".repeat(len).into_boxed_str())
}

/// What curl got downloading `http://origin/` through the daemon.
#[derive(Debug)]
struct Download {
    /// curl exited 0 (the whole body came).
    ok: bool,
    /// Body bytes received (`%{size_download}`).
    size: usize,
    /// The CONNECT response status (`%{http_connect}`; `000` through SOCKS).
    connect_status: String,
    /// curl's error message.
    err: String,
}

fn download(front: Front, proxy: SocketAddr, origin: SocketAddr) -> Download {
    let proxy = match front {
        Front::Socks5 => proxy.to_string(),
        Front::HttpConnect => format!("http://{proxy}"),
    };
    let mut args = match front {
        Front::Socks5 => vec!["--socks5", proxy.as_str()],
        Front::HttpConnect => vec!["--proxytunnel", "--proxy", proxy.as_str()],
    };
    let url = format!("http://{origin}/");
    args.extend([
        "--output",
        "/dev/null",
        "--write-out",
        "%{size_download} %{http_connect}",
        url.as_str(),
    ]);
    let (ok, out, err) = curl(&args);
    let mut f = out.split_whitespace();
    let size = f
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("curl --write-out: {out:?} ({err})"));
    let connect_status = f.next().unwrap_or_default().to_owned();
    Download {
        ok,
        size,
        connect_status,
        err,
    }
}

/// The fields of a record in 3proxy's default format: `0` time, `1` %p, `2` %E, `3` %U,
/// `4` %C:%c, `5` %R:%r, `6` %O, `7` %I, `8` %h, `9..` %T.
fn fields(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

/// The records with code `code` that mention `target`.
fn records(d: &Daemon, code: u16, target: SocketAddr) -> Vec<Vec<String>> {
    let code = format!("{code:05}");
    let target = target.to_string();
    d.log_lines()
        .iter()
        .map(|l| fields(l))
        .filter(|f| f.len() > 9 && f[2] == code && f.iter().any(|w| w.contains(&target)))
        .collect()
}

/// Waits (at most the harness's 20 s) until there are `n` records with code `code` that
/// mention `target`; returns them in log order.
fn wait_records(d: &Daemon, code: u16, target: SocketAddr, n: usize) -> Vec<Vec<String>> {
    d.wait_log(&format!("#{n} with code {code} for {target}"), |_| {
        records(d, code, target).len() >= n
    });
    records(d, code, target)
}

/// `%I` (bytes delivered to the client) of a record.
fn bytes_in(f: &[String]) -> usize {
    f[7].parse().unwrap_or_else(|_| panic!("%I of {f:?}"))
}

/// A `countin` quota of 1 MiB; the origin serves 3 MiB. The download is cut within one
/// chunk of the quota (code 10, `%I` as small), and the next connection is refused before
/// any connect: code 10, SOCKS5 REP 2 or HTTP 503.
fn quota_cuts_then_refuses(runtime: &str, front: Front) {
    const BODY: usize = 3 * MIB;
    let d = Daemon::start(
        &format!(
            "{OPEN}countin \"3/e2e\" N 1\n{} -p0 -i127.0.0.1\n",
            front.service()
        ),
        runtime,
    );
    let origin = http_server(body(BODY));

    let got = download(front, d.addr, origin);
    eprintln!("{front:?}: {got:?}");
    assert!(
        !got.ok,
        "curl must not complete a {BODY}-byte download through a 1 MiB quota: {got:?}"
    );
    assert!(
        got.size <= MIB + CHUNK,
        "{} bytes came through a 1 MiB quota (one chunk is {CHUNK})",
        got.size
    );
    assert!(
        got.size >= MIB / 2,
        "cut far below the quota: only {} bytes",
        got.size
    );
    if let Front::HttpConnect = front {
        assert_eq!(got.connect_status, "200", "the tunnel itself was granted");
    }
    let cut = wait_records(&d, 10, origin, 1).remove(0);
    let delivered = bytes_in(&cut);
    assert!(
        delivered >= got.size && delivered <= MIB + CHUNK,
        "%I {delivered} of the cut tunnel (curl got {} body bytes): {cut:?}",
        got.size
    );

    let again = download(front, d.addr, origin);
    eprintln!("{front:?} after the quota: {again:?}");
    assert!(!again.ok, "a new connection must be refused: {again:?}");
    assert_eq!(again.size, 0, "{again:?}");
    match front {
        Front::Socks5 => assert!(again.err.contains("SOCKS5"), "{again:?}"),
        Front::HttpConnect => assert_eq!(again.connect_status, "503", "{again:?}"),
    }
    let refused = wait_records(&d, 10, origin, 2).remove(1);
    assert!(
        bytes_in(&refused) < 1024,
        "the refusal relays nothing: {refused:?}"
    );
}

fn countin_cuts_a_socks5_download_then_refuses(runtime: &str) {
    quota_cuts_then_refuses(runtime, Front::Socks5);
}

fn countin_cuts_a_connect_download_then_refuses(runtime: &str) {
    quota_cuts_then_refuses(runtime, Front::HttpConnect);
}

/// A `countin` quota of 1 MiB with a `counter` file: a first daemon downloads 700,000
/// bytes and is stopped with SIGTERM (exit 0, file written with the tally); a second
/// daemon on the same file cuts the next 700,000-byte download within the ~340 KiB left,
/// then refuses a new connection. Without the file the second download would be whole.
fn counter_file_keeps_the_tally_across_a_restart(runtime: &str) {
    const FIRST: usize = 700_000;
    let file = triproxy_test_support::scratch_dir().join("traffic.3cf");
    let config = format!(
        "{OPEN}counter \"{}\"\ncountin \"7/e2e\" N 1\nsocks -p0 -i127.0.0.1\n",
        file.display()
    );
    let origin = http_server(body(FIRST));

    let mut d = Daemon::start(&config, runtime);
    let got = download(Front::Socks5, d.addr, origin);
    assert!(got.ok && got.size == FIRST, "under the quota: {got:?}");
    // The tunnel is over (every chunk charged) once its record is written.
    wait_records(&d, 0, origin, 1);
    let status = d.terminate();
    assert!(
        status.success(),
        "with a counter file SIGTERM is an orderly stop: {status}"
    );
    let bytes = std::fs::read(&file).expect("the counter file is written at SIGTERM");
    let saved = counterfile::read(&bytes).expect("a counter file triproxy can read back");
    let counted = saved.get(7).map_or(0, |r| r.bytes);
    assert!(
        counted >= FIRST as u64 && counted < MIB as u64,
        "counter 7 saved {counted} bytes for a {FIRST}-byte body"
    );
    drop(d);

    let d = Daemon::start(&config, runtime);
    let left = MIB - usize::try_from(counted).unwrap();
    let got = download(Front::Socks5, d.addr, origin);
    eprintln!("after the restart ({left} bytes left): {got:?}");
    assert!(
        !got.ok && got.size <= left + CHUNK && got.size < FIRST,
        "the restarted daemon must remember {counted} bytes counted ({left} left): {got:?}"
    );
    wait_records(&d, 10, origin, 1);
    let again = download(Front::Socks5, d.addr, origin);
    assert!(!again.ok && again.size == 0, "refused: {again:?}");
    wait_records(&d, 10, origin, 2);
}

/// A counter file with the wrong magic: the daemon does not start (exit status 2, before
/// any "listening" line), names the file on stderr, and leaves the file as it was.
fn damaged_counter_file_stops_the_start(runtime: &str) {
    let dir = triproxy_test_support::scratch_dir();
    let file = dir.join("traffic.3cf");
    let mut damaged = b"3CX\0".to_vec();
    damaged.resize(counterfile::HEADER_LEN + counterfile::RECORD_LEN, 0);
    std::fs::write(&file, &damaged).unwrap();
    let config = dir.join("triproxy.cfg");
    std::fs::write(
        &config,
        format!(
            "{OPEN}counter \"{}\"\ncountin 1 D 10\nsocks -p0 -i127.0.0.1\n",
            file.display()
        ),
    )
    .unwrap();

    let (status, stderr) = run_to_exit(&["--runtime", runtime, config.to_str().unwrap()]);
    assert_eq!(status, Some(2), "exit status; stderr: {stderr}");
    assert!(
        stderr.contains(&format!("counter file `{}` is unusable", file.display())),
        "stderr must name the file: {stderr}"
    );
    assert!(stderr.contains("not a 3proxy counter file"), "{stderr}");
    assert!(!stderr.contains("listening on"), "no service ran: {stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), damaged, "the file is kept");
}

/// Runs the daemon with `args`, expecting it to exit by itself within 10 s (it is killed
/// otherwise and the test fails); returns its exit code and its standard error.
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(Path::new(env!("CARGO_BIN_EXE_triproxy")))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("triproxy still runs 10 s after start: it should have refused to");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// Sends `ping` through a tunnel to an [`echo_target`] and expects it back.
fn ping(s: &mut TcpStream) {
    s.write_all(b"ping").unwrap();
    assert_eq!(read_n(s, 4), b"ping");
}

/// `connlim 2 0 *`: two tunnels held open, the third gets SOCKS5 REP 2 and code 10 (the
/// two keep working); once one of the two ends, a new one is served.
fn connlim_parallel_refuses_the_third_until_one_ends(runtime: &str) {
    let d = Daemon::start(
        &format!("{OPEN}connlim 2 0 *\nsocks -p0 -i127.0.0.1\n"),
        runtime,
    );
    let echo = echo_target();
    let mut first = socks5_connect(d.addr, echo);
    let mut second = socks5_connect(d.addr, echo);

    let (reply, mut third) = socks5_reply(d.addr, echo, IO_TIMEOUT).expect("a reply");
    assert_eq!(reply[..2], [5, 2], "REP 2 (not allowed by ruleset)");
    assert!(read_to_end(&mut third).is_empty(), "closed after the reply");
    wait_records(&d, 10, echo, 1);
    ping(&mut first);
    ping(&mut second);

    drop(first);
    // The slot is free once the daemon has seen the client's end of the first tunnel:
    // until then a new client may still be refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut fourth = loop {
        let (reply, s) = socks5_reply(d.addr, echo, IO_TIMEOUT).expect("a reply");
        if reply[1] == 0 {
            break s;
        }
        assert_eq!(reply[1], 2, "refused, if anything, by the limit");
        assert!(
            Instant::now() < deadline,
            "a slot is still taken 10 s after a tunnel closed"
        );
        thread::sleep(Duration::from_millis(50));
    };
    ping(&mut fourth);
    ping(&mut second);
    wait_records(&d, 0, echo, 1);
}

/// `connlim 1 60 *`: one new connection a minute. A tunnel that opened and closed still
/// counts, so the next one is refused (REP 2, code 10): the period rule is a rate, not a
/// parallel limit.
fn connlim_with_a_period_counts_closed_connections(runtime: &str) {
    let d = Daemon::start(
        &format!("{OPEN}connlim 1 60 *\nsocks -p0 -i127.0.0.1\n"),
        runtime,
    );
    let echo = echo_target();
    let mut first = socks5_connect(d.addr, echo);
    ping(&mut first);
    drop(first);
    wait_records(&d, 0, echo, 1);
    let (reply, _second) = socks5_reply(d.addr, echo, IO_TIMEOUT).expect("a reply");
    assert_eq!(reply[..2], [5, 2], "REP 2: over the rate");
    wait_records(&d, 10, echo, 1);
}

/// `timeouts 1 5 30 60 180 2`: CONNECTION_LONG, the relay's idle limit, is 2 s. A tunnel
/// with a ping every half second lives past it; once silent it is closed about 2 s later
/// (well before 3proxy's default 1800 s), logged with code 92 and the bytes relayed.
fn timeouts_set_the_relay_idle_limit(runtime: &str) {
    const PINGS: usize = 6;
    let d = Daemon::start(
        &format!("{OPEN}timeouts 1 5 30 60 180 2\nsocks -p0 -i127.0.0.1\n"),
        runtime,
    );
    let echo = echo_target();
    let mut s = socks5_connect(d.addr, echo);
    let opened = Instant::now();
    for _ in 0..PINGS {
        thread::sleep(Duration::from_millis(500));
        ping(&mut s);
    }
    let active = opened.elapsed();
    assert!(active > Duration::from_secs(2), "pinged for {active:?}");

    let quiet = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut byte = [0u8; 1];
    let end = s.read(&mut byte);
    let silent = quiet.elapsed();
    eprintln!("closed after {silent:?} of silence ({end:?})");
    assert!(
        matches!(end, Ok(0))
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the proxy must close the silent tunnel: {end:?} after {silent:?}"
    );
    assert!(
        silent >= Duration::from_millis(1500) && silent < Duration::from_secs(8),
        "a 2 s idle limit closed the tunnel after {silent:?} of silence"
    );
    let record = wait_records(&d, 92, echo, 1).remove(0);
    let relayed = (4 * PINGS).to_string();
    assert_eq!(
        (&record[6], &record[7]),
        (&relayed, &relayed),
        "%O and %I: {record:?}"
    );
}
