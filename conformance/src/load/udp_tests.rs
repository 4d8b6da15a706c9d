//! Short runs of the datagram measurements on real loopback sockets: `udp` direct, through
//! a tiny in-test SOCKS5 UDP relay and through a tiny in-test port mapper, and `dns`
//! against a tiny in-test responder; plus the exchanges' checks on their own.

use super::datagram::{Answer, Exchange};
use super::dns::{self, query_template, DnsConfig, DnsExchange};
use super::udp::{self, EchoExchange, UdpConfig, UdpVia};
use super::url::ProxyUrl;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

/// Every helper server stops after this.
const SERVE_FOR: Duration = Duration::from_secs(10);

fn udp_config(via: UdpVia) -> UdpConfig {
    UdpConfig {
        via,
        flows: 2,
        window: 4,
        size: 64,
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        loss_timeout: Duration::from_millis(200),
        echo_port: None,
        pid: Some(std::process::id()),
        op_timeout: Duration::from_secs(2),
    }
}

#[test]
fn udp_direct_answers_everything() {
    let r = udp::run(&udp_config(UdpVia::Direct)).unwrap();
    assert!(r.counts.answered > 10, "{r:?}");
    assert_eq!(
        (r.counts.lost, r.counts.garbage, r.counts.errors.total()),
        (0, 0, 0),
        "{r:?}"
    );
    assert!(r.echoed >= r.counts.answered);
    assert!(r.latency_us(0.99).is_some());
    assert!(r.proxy_cpu.is_some());
}

/// A SOCKS5 server for UDP ASSOCIATE only (no authentication): one relay socket per
/// association, datagrams from the client unwrapped to their DST, datagrams from anyone
/// else wrapped with their source and sent to the client. Serves for [`SERVE_FOR`].
fn tiny_socks_udp() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + SERVE_FOR;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => {
                    thread::spawn(move || associate(s, deadline));
                }
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    addr
}

fn associate(mut control: TcpStream, deadline: Instant) {
    control.set_nonblocking(false).unwrap();
    let mut greeting = [0u8; 3];
    control.read_exact(&mut greeting).unwrap();
    assert_eq!(greeting, [5, 1, 0]);
    control.write_all(&[5, 0]).unwrap();
    let mut request = [0u8; 10];
    control.read_exact(&mut request).unwrap();
    assert_eq!(request, [5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    let relay = UdpSocket::bind("127.0.0.1:0").unwrap();
    relay
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let port = relay.local_addr().unwrap().port().to_be_bytes();
    // BND.ADDR 0.0.0.0: "the proxy's own address", which the tool must understand.
    control
        .write_all(&[5, 0, 0, 1, 0, 0, 0, 0, port[0], port[1]])
        .unwrap();
    let mut client: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, from)) = relay.recv_from(&mut buf) else {
            continue;
        };
        let dgram = &buf[..n];
        if client.is_none_or(|c| c == from) && dgram.len() >= 10 && dgram[..4] == [0, 0, 0, 1] {
            client = Some(from);
            let dst = SocketAddr::from((
                Ipv4Addr::new(dgram[4], dgram[5], dgram[6], dgram[7]),
                u16::from_be_bytes([dgram[8], dgram[9]]),
            ));
            let _ = relay.send_to(&dgram[10..], dst);
        } else if let (Some(c), SocketAddr::V4(src)) = (client, from) {
            let mut out = vec![0, 0, 0, 1];
            out.extend_from_slice(&src.ip().octets());
            out.extend_from_slice(&src.port().to_be_bytes());
            out.extend_from_slice(dgram);
            let _ = relay.send_to(&out, c);
        }
    }
}

#[test]
fn udp_through_a_socks5_association() {
    let proxy = ProxyUrl::parse(&format!("socks5://{}", tiny_socks_udp())).unwrap();
    let r = udp::run(&udp_config(UdpVia::Socks5(Box::new(proxy)))).unwrap();
    assert!(r.counts.answered > 10, "{r:?}");
    assert_eq!(
        (r.counts.lost, r.counts.garbage, r.counts.errors.total()),
        (0, 0, 0),
        "{r:?}"
    );
}

#[test]
fn udp_association_refused_is_counted() {
    // Nothing listens there: every flow fails to connect, nothing is answered.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = ProxyUrl::parse(&format!("socks5://{closed}")).unwrap();
    let r = udp::run(&udp_config(UdpVia::Socks5(Box::new(proxy)))).unwrap();
    assert_eq!(r.counts.answered, 0);
    assert_eq!(r.counts.errors.total(), 2, "{r:?}");
}

/// A port mapper for one client: datagrams from `target` go to the last client seen,
/// everything else goes to `target`.
fn tiny_mapper(target: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + SERVE_FOR;
        let mut client = None;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let to = if from == target {
                client
            } else {
                client = Some(from);
                Some(target)
            };
            if let Some(to) = to {
                let _ = socket.send_to(&buf[..n], to);
            }
        }
    });
    addr
}

#[test]
fn udp_through_a_port_mapper_to_a_fixed_echo_port() {
    // A port that was free a moment ago, for the echo the mapper forwards to.
    let echo_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mapper = tiny_mapper(SocketAddr::from((Ipv4Addr::LOCALHOST, echo_port)));
    let mut config = udp_config(UdpVia::Mapper(mapper));
    config.flows = 1;
    config.echo_port = Some(echo_port);
    let r = udp::run(&config).unwrap();
    assert_eq!(r.echo.port(), echo_port);
    assert!(r.counts.answered > 10, "{r:?}");
    assert_eq!((r.counts.lost, r.counts.garbage), (0, 0), "{r:?}");
}

#[test]
fn udp_losses_do_not_stall_a_flow() {
    // A mapper that forwards every other datagram: half are lost, the flow goes on.
    let echo = udp::UdpEcho::start(0, Instant::now() + SERVE_FOR).unwrap();
    let target = echo.addr;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mapper = socket.local_addr().unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + SERVE_FOR;
        let (mut client, mut n_in) = (None, 0u64);
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if from == target {
                if let Some(c) = client {
                    let _ = socket.send_to(&buf[..n], c);
                }
            } else {
                client = Some(from);
                n_in += 1;
                if n_in % 2 == 0 {
                    let _ = socket.send_to(&buf[..n], target);
                }
            }
        }
    });
    let mut config = udp_config(UdpVia::Mapper(mapper));
    config.flows = 1;
    config.loss_timeout = Duration::from_millis(10);
    config.duration = Duration::from_millis(400);
    let r = udp::run(&config).unwrap();
    echo.stop();
    assert!(r.counts.answered > 10, "{r:?}");
    assert!(r.counts.lost > 10, "{r:?}");
}

#[test]
fn echo_exchange_checks_header_and_payload() {
    let echo = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let mut ex = EchoExchange::new(3, 40, Some(echo));
    let mut out = Vec::new();
    let tag = ex.request(77, &[], &mut out);
    assert_eq!(tag, 77);
    assert_eq!(out.len(), 10 + 40);
    assert_eq!(&out[..10], &[0, 0, 0, 1, 127, 0, 0, 1, 0, 9]);
    // The relay answers with the same header (the echo is the source).
    assert_eq!(ex.answer(&out), Answer::Good(77));
    let mut bad = out.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert_eq!(ex.answer(&bad), Answer::Garbage);
    let mut other_source = out.clone();
    other_source[9] = 10;
    assert_eq!(ex.answer(&other_source), Answer::Garbage);
    let mut fragment = out.clone();
    fragment[2] = 1;
    assert_eq!(ex.answer(&fragment), Answer::Garbage);
    for cut in 0..out.len() {
        assert_eq!(ex.answer(&out[..cut]), Answer::Garbage, "{cut}");
    }
    // Without SOCKS: the payload alone, and another flow's datagram is not ours.
    let mut plain = EchoExchange::new(3, 16, None);
    out.clear();
    plain.request(5, &[], &mut out);
    assert_eq!(out.len(), 16);
    assert_eq!(plain.answer(&out), Answer::Good(5));
    let mut other = EchoExchange::new(4, 16, None);
    assert_eq!(other.answer(&out), Answer::Garbage);
}

/// Answers every A query for `bench.test.` with 127.0.0.1 and anything else with
/// NXDOMAIN, by hand: the query with QR, RA and RCODE set, plus one answer record.
fn tiny_dns() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let known = query_template("bench.test").unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + SERVE_FOR;
        let mut buf = vec![0u8; 512];
        while Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80;
            reply[3] |= 0x80;
            if n == known.len() && buf[2..n] == known[2..] {
                reply[7] = 1;
                reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 127, 0, 0, 1]);
            } else {
                reply[3] |= 3;
            }
            let _ = socket.send_to(&reply, from);
        }
    });
    addr
}

fn dns_config(server: SocketAddr, name: &str) -> DnsConfig {
    DnsConfig {
        server,
        name: name.to_owned(),
        clients: 2,
        window: 2,
        duration: Duration::from_millis(300),
        warmup: Duration::from_millis(100),
        loss_timeout: Duration::from_millis(200),
        pid: Some(std::process::id()),
    }
}

#[test]
fn dns_queries_are_answered() {
    let server = tiny_dns();
    let r = dns::run(&dns_config(server, "bench.test")).unwrap();
    assert!(r.counts.answered > 10, "{r:?}");
    assert_eq!(
        (r.counts.failed, r.counts.lost, r.counts.garbage),
        (0, 0, 0),
        "{r:?}"
    );
    assert!(r.latency_us(0.99).is_some() && r.proxy_cpu_per_query_us().is_some());
    // Another name is NXDOMAIN: failed answers, none good, and the clients go on.
    let r = dns::run(&dns_config(server, "other.test")).unwrap();
    assert_eq!(r.counts.answered, 0);
    assert!(r.counts.failed > 10, "{r:?}");
}

#[test]
fn dns_exchange_ids_and_answers() {
    let template = query_template("bench.test").unwrap();
    assert_eq!(
        template.len(),
        28,
        "12-byte header, 12-byte name, type and class"
    );
    let mut ex = DnsExchange::new(template.clone(), 1);
    let mut in_flight = Vec::new();
    let mut out = Vec::new();
    for seq in 0..200 {
        out.clear();
        let tag = ex.request(seq, &in_flight, &mut out);
        assert!(!in_flight.contains(&Some(tag)));
        assert_eq!(u64::from(u16::from_be_bytes([out[0], out[1]])), tag);
        assert_eq!(out[2..], template[2..]);
        in_flight.push(Some(tag));
    }
    // A query is not an answer; an answer without records is a failure.
    assert_eq!(ex.answer(&out), Answer::Garbage);
    let mut reply = out.clone();
    reply[2] |= 0x80;
    let tag = u64::from(u16::from_be_bytes([out[0], out[1]]));
    assert_eq!(ex.answer(&reply), Answer::Failed(tag));
    reply[7] = 1;
    assert_eq!(ex.answer(&reply), Answer::Good(tag));
    reply[3] |= 2;
    assert_eq!(ex.answer(&reply), Answer::Failed(tag));
    assert_eq!(ex.answer(&reply[..11]), Answer::Garbage);
    assert!(query_template("bad..name").is_err());
    assert!(query_template(&"a".repeat(300)).is_err());
}
