//! End-to-end: the datagram services on both runtimes. `dnspr` queried by `dig` (apt
//! dnsutils) with dnsmasq as its `nserver`; `udppm` driven from Python to a UDP echo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::dnsmasq::Dnsmasq;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::Duration;

both_runtimes!(
    dig_gets_a_answers_from_the_cache_and_the_rest_relayed,
    dig_gets_nxdomain_and_fake_answers,
    malformed_queries_get_formerr_or_nothing_and_harm_nothing,
    python_round_trips_through_udppm,
    udppm_single_packet_mode_ends_with_the_answer,
    udppm_acl_refuses_and_logs,
    ten_thousand_abandoned_mappings_expire_and_leave_no_fd_behind,
);

/// Runs dig against `server` with `args`; its standard output.
fn dig(server: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+time=3", "+tries=1"])
        .args(args)
        .output()
        .expect("dig must be installed (apt dnsutils; the CI script installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dig_gets_a_answers_from_the_cache_and_the_rest_relayed(runtime: &str) {
    let dns = Dnsmasq::start_with(
        &[("only.dnsmasq.test", "127.0.0.9")],
        &["--txt-record=only.dnsmasq.test,relayed-by-dnspr"],
    );
    let cfg = format!(
        "nserver {}\nlog\nauth iponly\nallow *\ndnspr -p0 -i127.0.0.1\n",
        dns.addr
    );
    let d = Daemon::start(&cfg, runtime);
    for _ in 0..3 {
        let a = dig(d.addr, &["only.dnsmasq.test", "A", "+short"]);
        assert_eq!(a.trim(), "127.0.0.9");
    }
    let asked = |kind: &str| {
        dns.queries()
            .iter()
            .filter(|q| q.contains(kind) && q.contains("only.dnsmasq.test"))
            .count()
    };
    assert_eq!(
        asked("query[A]"),
        1,
        "answered from the cache after the first"
    );
    d.wait_code(0, "0001/only.dnsmasq.test/127.0.0.9");
    // Other types are relayed to the first nserver, unchanged.
    let txt = dig(d.addr, &["only.dnsmasq.test", "TXT"]);
    assert!(txt.contains("status: NOERROR"), "{txt}");
    assert!(txt.contains("\"relayed-by-dnspr\""), "{txt}");
    assert_eq!(asked("query[TXT]"), 1);
    d.wait_code(0, "0010/only.dnsmasq.test/");
}

fn dig_gets_nxdomain_and_fake_answers(runtime: &str) {
    let dns = Dnsmasq::start(&[("gone.dnsmasq.test", "")]);
    let cfg = format!(
        "nserver {}\nlog\nauth iponly\nallow *\ndnspr -p0 -i127.0.0.1\n",
        dns.addr
    );
    let d = Daemon::start(&cfg, runtime);
    let out = dig(d.addr, &["gone.dnsmasq.test", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    d.wait_code(888, "0001/gone.dnsmasq.test/");
    drop(d);
    // -F answers every A without asking anyone.
    let d = Daemon::start("log\ndnspr -p0 -i127.0.0.1 -F10.1.2.3\n", runtime);
    let out = dig(d.addr, &["whatever.invalid", "A", "+short"]);
    assert_eq!(out.trim(), "10.1.2.3");
    d.wait_code(0, "0001/whatever.invalid/10.1.2.3");
}

fn malformed_queries_get_formerr_or_nothing_and_harm_nothing(runtime: &str) {
    let d = Daemon::start("log\ndnspr -p0 -i127.0.0.1 -F10.1.2.3\n", runtime);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let mut buf = [0u8; 600];
    // Too short for a header: dropped, logged 814.
    u.send_to(&[1, 2, 3], d.addr).unwrap();
    assert!(u.recv_from(&mut buf).is_err());
    d.wait_code(814, "");
    // Two questions: FORMERR with the same ID, logged 816.
    let two = [
        0xab, 0xcd, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1,
    ];
    u.send_to(&two, d.addr).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(n, 12);
    assert_eq!(&buf[..2], &[0xab, 0xcd]);
    assert_eq!(buf[3] & 0x0f, 1, "FORMERR");
    d.wait_code(816, "");
    // Still serving.
    let out = dig(d.addr, &["after.invalid", "A", "+short"]);
    assert_eq!(out.trim(), "10.1.2.3");
}

const PYTHON_UDPPM: &str = r#"
import socket, sys, os
port, count = int(sys.argv[1]), int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
for i in range(count):
    payload = os.urandom(1 + (i * 53) % 1400)
    u.sendto(payload, ("127.0.0.1", port))
    data, src = u.recvfrom(65535)
    assert src == ("127.0.0.1", port), src
    assert data == payload
print("ok", count)
"#;

fn python_round_trips_through_udppm(runtime: &str) {
    let echo = udp_echo();
    // STRING_LONG (the 4th timeout) is a mapping's idle time: 1 s here.
    let cfg = format!(
        "timeouts 1 5 30 1\nlog\nauth iponly\nallow *\nudppm -i127.0.0.1 0 127.0.0.1 {}\n",
        echo.port()
    );
    let d = Daemon::start(&cfg, runtime);
    let out = python(PYTHON_UDPPM, &[&d.addr.port().to_string(), "300"]);
    assert_eq!(out.trim(), "ok 300");
    // Quiet for the idle time: the mapping ends, code 92, every byte counted.
    let line = d.wait_code(92, "UDPMAP");
    assert!(line.contains("UDPMAP 127.0.0.1:"), "{line}");
}

fn udppm_single_packet_mode_ends_with_the_answer(runtime: &str) {
    let echo = udp_echo();
    let cfg = format!(
        "log\nauth iponly\nallow *\nudppm -s -i127.0.0.1 0 127.0.0.1 {}\n",
        echo.port()
    );
    let d = Daemon::start(&cfg, runtime);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    for round in 0..2u8 {
        u.send_to(&[round; 10], d.addr).unwrap();
        let (n, _) = u.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[round; 10]);
    }
    // One log line per request/answer, each ended at once with code 0.
    d.wait_log("two single-packet mappings", |_| {
        d.log_lines()
            .iter()
            .filter(|l| l.contains("UDPPM") || l.contains(" 00000 "))
            .count()
            >= 2
    });
    let lines = d.log_lines();
    assert_eq!(
        lines.iter().filter(|l| l.contains(" 00000 ")).count(),
        2,
        "{lines:#?}"
    );
}

fn udppm_acl_refuses_and_logs(runtime: &str) {
    let echo = udp_echo();
    let cfg = format!(
        "log\nauth iponly\ndeny * * 127.0.0.1 {port}\nallow *\nudppm -i127.0.0.1 0 127.0.0.1 {port}\n",
        port = echo.port()
    );
    let d = Daemon::start(&cfg, runtime);
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    u.send_to(b"denied", d.addr).unwrap();
    let mut buf = [0u8; 64];
    assert!(u.recv_from(&mut buf).is_err(), "nothing relayed");
    d.wait_code(1, "UDPMAP");
}

/// Open descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// 10,000 clients, each getting one answer on a socket of its own and going away: their
/// mappings (at most `maxconn` at once) all expire after the idle second, each is logged,
/// and no descriptor stays behind. (Clients wait for their answer, as real ones do: a
/// burst of thousands of datagrams at once would overflow the service socket's receive
/// buffer, and UDP drops what does not fit.)
fn ten_thousand_abandoned_mappings_expire_and_leave_no_fd_behind(runtime: &str) {
    const ROUNDS: usize = 4;
    const PER_ROUND: usize = 2_500;
    let echo = udp_echo();
    let cfg = format!(
        "timeouts 1 5 30 1\nmaxconn 3000\nlog\nauth iponly\nallow *\n\
         udppm -i127.0.0.1 0 127.0.0.1 {}\n",
        echo.port()
    );
    let d = Daemon::start(&cfg, runtime);
    let before = fd_count(d.pid());
    const THREADS: usize = 10;
    let proxy = d.addr;
    for round in 1..=ROUNDS {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                thread::spawn(move || {
                    let mut buf = [0u8; 8];
                    // Held until the round ends, so that no port is used twice in it (a
                    // port used again would be the same client, with the same mapping).
                    let mut clients = Vec::with_capacity(PER_ROUND / THREADS);
                    for _ in 0..PER_ROUND / THREADS {
                        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
                        u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let answered = (0..3).any(|_| {
                            u.send_to(b"x", proxy).unwrap();
                            u.recv_from(&mut buf).is_ok()
                        });
                        assert!(answered, "no answer in three tries");
                        clients.push(u);
                    }
                    clients
                })
            })
            .collect();
        let clients: Vec<Vec<UdpSocket>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        drop(clients);
        d.wait_log("every mapping of the round expired", |_| {
            d.log_lines()
                .iter()
                .filter(|l| l.contains(" 00092 "))
                .count()
                >= round * PER_ROUND
        });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = fd_count(d.pid());
        if now <= before + 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{now} descriptors open, {before} before"
        );
        thread::sleep(Duration::from_millis(50));
    }
}
