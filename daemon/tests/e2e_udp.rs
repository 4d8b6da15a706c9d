//! End-to-end: SOCKS5 UDP ASSOCIATE (RFC 1928 section 7) on both runtimes, driven by a
//! Python client on raw sockets and by hand-made datagrams: round trips to a UDP echo,
//! names, strangers, fragments, the ACL per datagram, the association's end, and a reload
//! under `force` that refuses it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

both_runtimes!(
    python_round_trips_datagrams_through_the_association,
    names_strangers_fragments_and_the_acl,
    the_association_ends_with_its_control_connection,
    ten_thousand_abandoned_associations_leave_no_fd_behind,
    force_ends_an_association_the_new_configuration_refuses,
);

const OPEN: &str = "log\nauth iponly\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n";

/// The client side of RFC 1928 section 7, in Python with only the standard library.
const PYTHON_CLIENT: &str = r#"
import socket, struct, sys, os
proxy_port, echo_port, count = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctl = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
ctl.sendall(b"\x05\x01\x00")
assert ctl.recv(2) == b"\x05\x00"
ctl.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("0.0.0.0") + struct.pack(">H", 0))
rep = b""
while len(rep) < 10:
    rep += ctl.recv(10 - len(rep))
assert rep[:2] == b"\x05\x00", rep
relay = (socket.inet_ntoa(rep[4:8]), struct.unpack(">H", rep[8:10])[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
u.settimeout(5)
head = b"\x00\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", echo_port)
for i in range(count):
    payload = os.urandom(1 + (i * 37) % 1400)
    u.sendto(head + payload, relay)
    data, src = u.recvfrom(65535)
    assert src == relay, (src, relay)
    assert data[:10] == head, data[:10]
    assert data[10:] == payload
print("ok", count, relay[0])
"#;

fn python_round_trips_datagrams_through_the_association(runtime: &str) {
    let echo = udp_echo();
    let d = Daemon::start(OPEN, runtime);
    let out = python(
        PYTHON_CLIENT,
        &[&d.addr.port().to_string(), &echo.port().to_string(), "200"],
    );
    assert_eq!(
        out.trim(),
        "ok 200 127.0.0.1",
        "BND is the address the client reached"
    );
    // The association ended with the control connection: one record, UDPMAP, counted.
    let line = d.wait_code(0, "UDPMAP");
    assert!(line.contains("UDPMAP 0.0.0.0:0"), "{line}");
}

/// Opens an association: the control connection and the relay address.
fn associate(proxy: SocketAddr, named: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut ctl = connect(proxy);
    let SocketAddr::V4(n) = named else { panic!() };
    let mut req = vec![5, 1, 0, 5, 3, 0, 1];
    req.extend_from_slice(&n.ip().octets());
    req.extend_from_slice(&n.port().to_be_bytes());
    ctl.write_all(&req).unwrap();
    let reply = read_n(&mut ctl, 12);
    assert_eq!(&reply[..4], &[5, 0, 5, 0], "granted: {reply:?}");
    let ip = std::net::Ipv4Addr::new(reply[6], reply[7], reply[8], reply[9]);
    let port = u16::from_be_bytes([reply[10], reply[11]]);
    (ctl, SocketAddr::from((ip, port)))
}

fn header_ipv4(to: SocketAddr, frag: u8) -> Vec<u8> {
    let SocketAddr::V4(t) = to else { panic!() };
    let mut h = vec![0, 0, frag, 1];
    h.extend_from_slice(&t.ip().octets());
    h.extend_from_slice(&t.port().to_be_bytes());
    h
}

fn header_name(name: &str, port: u16) -> Vec<u8> {
    let mut h = vec![0, 0, 0, 3, name.len() as u8];
    h.extend_from_slice(name.as_bytes());
    h.extend_from_slice(&port.to_be_bytes());
    h
}

fn recv(u: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 65536];
    u.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

fn names_strangers_fragments_and_the_acl(runtime: &str) {
    let echo = udp_echo();
    let denied = udp_echo();
    let cfg = format!(
        "log\nauth iponly\ndeny * * 127.0.0.1 {}\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n",
        denied.port()
    );
    let d = Daemon::start(&cfg, runtime);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    // The request names the client's port: only that port may use the relay.
    let (_ctl, relay) = associate(d.addr, client.local_addr().unwrap());

    // An address target.
    let mut dgram = header_ipv4(echo, 0);
    dgram.extend_from_slice(b"by address");
    client.send_to(&dgram, relay).unwrap();
    let back = recv(&client).expect("echo by address");
    assert_eq!(back, dgram, "the answer's header names the echo");

    // A name target (the system resolver knows localhost).
    let mut by_name = header_name("localhost", echo.port());
    by_name.extend_from_slice(b"by name");
    client.send_to(&by_name, relay).unwrap();
    let back = recv(&client).expect("echo by name");
    assert_eq!(
        &back[..10],
        &header_ipv4(echo, 0)[..],
        "answered from the address"
    );
    assert_eq!(&back[10..], b"by name");

    // FRAG != 0: that datagram is dropped, the association lives on.
    let mut frag = header_ipv4(echo, 1);
    frag.extend_from_slice(b"fragment");
    client.send_to(&frag, relay).unwrap();
    assert_eq!(recv(&client), None, "a fragment is dropped");

    // The ACL is checked per datagram: the denied port gets nothing.
    let mut no = header_ipv4(denied, 0);
    no.extend_from_slice(b"denied");
    client.send_to(&no, relay).unwrap();
    assert_eq!(recv(&client), None, "denied by the ACL");

    // A stranger (another port of the same host) is dropped, and noticed in the log.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    stranger.send_to(&dgram, relay).unwrap();
    assert_eq!(recv(&stranger), None, "a stranger gets nothing");
    d.wait_code(489, "UDPMAP");
    // Malformed (RSV != 0): dropped without harm.
    client.send_to(&[1, 0, 0, 1, 127, 0, 0, 1], relay).unwrap();

    // Still alive after all that.
    client.send_to(&dgram, relay).unwrap();
    assert_eq!(recv(&client).expect("still relaying"), dgram);
}

fn the_association_ends_with_its_control_connection(runtime: &str) {
    let echo = udp_echo();
    let d = Daemon::start(OPEN, runtime);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let (mut ctl, relay) = associate(d.addr, "0.0.0.0:0".parse().unwrap());
    let mut dgram = header_ipv4(echo, 0);
    dgram.extend_from_slice(&[7u8; 1000]);
    client.send_to(&dgram, relay).unwrap();
    assert_eq!(recv(&client).expect("echo"), dgram);
    ctl.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = ctl.read_to_end(&mut rest);
    let line = d.wait_code(0, "UDPMAP");
    // 1000 bytes each way (payloads only).
    assert!(line.contains(" 1000 1000 0 UDPMAP"), "{line}");
    // The relay socket is closed: nothing comes back any more.
    client.send_to(&dgram, relay).unwrap();
    assert_eq!(recv(&client), None);
}

/// Open descriptors of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// 10,000 associations, opened and abandoned (the control connection closed right after
/// the reply), from 16 threads: every one is logged and no descriptor stays behind.
fn ten_thousand_abandoned_associations_leave_no_fd_behind(runtime: &str) {
    const TOTAL: usize = 10_000;
    const THREADS: usize = 16;
    let d = Daemon::start(
        "log\nauth iponly\nallow *\nsocks -p0 -i127.0.0.1\n",
        runtime,
    );
    let before = fd_count(d.pid());
    let proxy = d.addr;
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..TOTAL / THREADS {
                    let (ctl, _relay) = associate(proxy, "0.0.0.0:0".parse().unwrap());
                    drop(ctl);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    d.wait_log("10,000 association records", |_| {
        d.log_lines()
            .iter()
            .filter(|l| l.contains("UDPMAP"))
            .count()
            >= TOTAL
    });
    // Every association's sockets are closed once its record is written.
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

/// Under `force`, a reload whose ACL refuses UDP ASSOCIATE ends the association: its
/// control connection is closed and its record carries the refusal's code.
fn force_ends_an_association_the_new_configuration_refuses(runtime: &str) {
    let echo = udp_echo();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = |acl: &str| format!("log\nauth iponly\n{acl}\nsocks -p{port} -i127.0.0.1\n");
    let d = Daemon::start(&config("allow * 127.0.0.1"), runtime);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_millis(2000)))
        .unwrap();
    let (mut ctl, relay) = associate(d.addr, "0.0.0.0:0".parse().unwrap());
    let mut dgram = header_ipv4(echo, 0);
    dgram.extend_from_slice(b"before the reload");
    client.send_to(&dgram, relay).unwrap();
    assert_eq!(recv(&client).expect("echo"), dgram);

    std::fs::write(d.config.as_ref().unwrap(), config("deny *")).unwrap();
    d.signal("USR1");
    let line = d.wait_stderr("reloaded", 0, |l| l.contains(": reloaded ("));
    assert!(
        line.contains("1 established connection(s) closed"),
        "{line}"
    );
    let mut rest = Vec::new();
    let _ = ctl.read_to_end(&mut rest);
    let record = d.wait_code(1, "UDPMAP");
    assert!(
        record.contains(" 17 17 "),
        "its bytes are counted: {record}"
    );
    client.send_to(&dgram, relay).unwrap();
    assert_eq!(recv(&client), None, "the relay socket is closed");
}
