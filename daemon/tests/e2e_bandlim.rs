//! Bandwidth pipes end to end on both runtimes: `bandlimin` paces what curl downloads,
//! `nobandlimin` exempts a user, and one `bandlimout` rule is one bucket shared by every
//! tunnel it matches. Rates are chosen so each check takes about a second; the lower
//! bounds prove the pacing (unpaced, the same transfer takes milliseconds), the upper
//! bounds only catch a pipe that stalls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::net::{Shutdown, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// 4 Mbit/s: 500,000 bytes per second, a burst of 50,000 bytes.
const RATE_BITS: u64 = 4_000_000;
const RATE_BYTES: f64 = 500_000.0;
const BURST: f64 = 50_000.0;
const BODY_LEN: usize = 600_000;

/// Least time `bytes` can take through one full bucket (every byte after the first burst
/// at the rate).
fn least_time(bytes: usize) -> f64 {
    (bytes as f64 - BURST) / RATE_BYTES
}

/// curl's `time_total` and `size_download` for a download through the daemon.
fn download(d: &Daemon, user: &str, origin: std::net::SocketAddr) -> (f64, usize) {
    let (ok, out, err) = curl(&[
        "--socks5",
        &d.addr.to_string(),
        "--proxy-user",
        user,
        "-o",
        "/dev/null",
        "-w",
        "%{time_total} %{size_download}",
        &format!("http://{origin}/"),
    ]);
    assert!(ok, "curl failed: {err}");
    let mut f = out.split_whitespace();
    let time: f64 = f.next().unwrap().parse().unwrap();
    let size: usize = f.next().unwrap().parse().unwrap();
    (time, size)
}

fn download_is_paced_and_an_exempt_user_is_not(runtime: &str) {
    let config = format!(
        "log\nusers alice:CL:a boss:CL:b\nauth strong\nallow alice,boss 127.0.0.1\n\
         nobandlimin boss\nbandlimin {RATE_BITS} * 127.0.0.1\nsocks -p0 -i127.0.0.1\n"
    );
    let d = Daemon::start(&config, runtime);
    let body: &'static str = Box::leak("x".repeat(BODY_LEN).into_boxed_str());
    let origin = http_server(body);

    let (time, size) = download(&d, "alice:a", origin);
    eprintln!(
        "alice: {size} bytes in {time:.3} s (least {:.3} s)",
        least_time(BODY_LEN)
    );
    assert!(size == BODY_LEN, "alice got {size} bytes");
    assert!(
        time >= least_time(BODY_LEN) * 0.95 && time < 6.0,
        "alice: {BODY_LEN} bytes in {time:.3} s at {RATE_BITS} bit/s"
    );
    let line = d.wait_log("alice's record", |l| l.contains(" alice "));
    assert!(line.split_whitespace().nth(2) == Some("00000"), "{line}");

    let (time, size) = download(&d, "boss:b", origin);
    eprintln!("boss: {size} bytes in {time:.3} s");
    assert!(size == BODY_LEN, "boss got {size} bytes");
    assert!(
        time < least_time(BODY_LEN) / 2.0,
        "boss is exempt, yet took {time:.3} s"
    );
}

/// Two tunnels upload at once through one `bandlimout` rule: together they get the rule's
/// rate, not twice it, and every byte arrives intact.
fn one_rule_is_one_bucket_for_all_its_tunnels(runtime: &str) {
    const EACH: usize = BODY_LEN / 2;
    let config = format!(
        "log\nauth iponly\nallow * 127.0.0.1\nbandlimout {RATE_BITS}\nsocks -p0 -i127.0.0.1\n"
    );
    let d = Daemon::start(&config, runtime);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut s = stream.unwrap();
            let tx = tx.clone();
            thread::spawn(move || {
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let got = receive_hashed(&mut s);
                tx.send((got, Instant::now())).unwrap();
            });
        }
    });
    let start = Instant::now();
    let senders: Vec<_> = (0..2u64)
        .map(|seed| {
            let mut s = socks5_connect(d.addr, target);
            thread::spawn(move || {
                let hash = send_generated(&mut s, seed + 1, EACH);
                s.shutdown(Shutdown::Write).unwrap();
                // Returned (not dropped) so the socket stays open until the target has
                // everything.
                (hash, s)
            })
        })
        .collect();
    let mut sent: Vec<u64> = senders.into_iter().map(|h| h.join().unwrap().0).collect();
    let mut got = Vec::new();
    let mut last = start;
    for _ in 0..2 {
        let ((n, hash), at) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(n, EACH);
        got.push(hash);
        last = last.max(at);
    }
    sent.sort_unstable();
    got.sort_unstable();
    assert_eq!(sent, got, "both uploads intact");
    let took = last.duration_since(start).as_secs_f64();
    eprintln!(
        "two uploads: {} bytes in {took:.3} s (least {:.3} s)",
        2 * EACH,
        least_time(2 * EACH)
    );
    assert!(
        took >= least_time(2 * EACH) * 0.95 && took < 6.0,
        "{} bytes in two tunnels took {took:.3} s through one {RATE_BITS} bit/s rule",
        2 * EACH
    );
}

#[test]
fn std_download_is_paced_and_an_exempt_user_is_not() {
    download_is_paced_and_an_exempt_user_is_not("std");
}

#[test]
fn smol_download_is_paced_and_an_exempt_user_is_not() {
    download_is_paced_and_an_exempt_user_is_not("smol");
}

#[test]
fn std_one_rule_is_one_bucket_for_all_its_tunnels() {
    one_rule_is_one_bucket_for_all_its_tunnels("std");
}

#[test]
fn smol_one_rule_is_one_bucket_for_all_its_tunnels() {
    one_rule_is_one_bucket_for_all_its_tunnels("smol");
}
