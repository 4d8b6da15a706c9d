//! Short end-to-end runs of the measurements against `direct` and against a tiny in-test
//! proxy (SOCKS5 with optional RFC 1929, SOCKS4, HTTP CONNECT; one thread per direction),
//! so the drivers, targets and counters are exercised on real loopback sockets.

use super::bulk::{self, BulkConfig};
use super::idle::{self, IdleConfig};
use super::rate::{self, RateConfig};
use super::suite::{self, SuiteConfig};
use super::targets::Direction;
use super::url::{Protocol, ProxySpec, ProxyUrl};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the tiny proxy; it serves for 30 s or 100,000 connections.
fn tiny_proxy() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut served = 0;
        while Instant::now() < deadline && served < 100_000 {
            match listener.accept() {
                Ok((s, _)) => {
                    served += 1;
                    thread::spawn(move || {
                        let _ = serve(s);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    addr
}

fn serve(mut client: TcpStream) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_nodelay(true)?;
    let mut first = [0u8; 1];
    client.read_exact(&mut first)?;
    let target = match first[0] {
        5 => socks5(&mut client)?,
        4 => socks4(&mut client)?,
        b'C' => http(&mut client)?,
        _ => return Ok(()),
    };
    let Some((upstream, reply)) = target else {
        return Ok(());
    };
    client.write_all(&reply)?;
    relay(client, upstream)
}

type Dialed = Option<(TcpStream, Vec<u8>)>;

fn dial(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn socks5(c: &mut TcpStream) -> io::Result<Dialed> {
    let mut n = [0u8; 1];
    c.read_exact(&mut n)?;
    let mut methods = vec![0u8; usize::from(n[0])];
    c.read_exact(&mut methods)?;
    // Like a server that requires authentication when the client can do it.
    if methods.contains(&2) {
        c.write_all(&[5, 2])?;
        let mut ver_ulen = [0u8; 2];
        c.read_exact(&mut ver_ulen)?;
        let mut user = vec![0u8; usize::from(ver_ulen[1])];
        c.read_exact(&mut user)?;
        let mut plen = [0u8; 1];
        c.read_exact(&mut plen)?;
        let mut pass = vec![0u8; usize::from(plen[0])];
        c.read_exact(&mut pass)?;
        let ok = user == b"u" && pass == b"p";
        c.write_all(&[1, if ok { 0 } else { 1 }])?;
        if !ok {
            return Ok(None);
        }
    } else if methods.contains(&0) {
        c.write_all(&[5, 0])?;
    } else {
        c.write_all(&[5, 0xff])?;
        return Ok(None);
    }
    let mut head = [0u8; 10]; // VER CMD RSV ATYP=1 ADDR(4) PORT(2)
    c.read_exact(&mut head)?;
    assert_eq!(&head[..4], &[5, 1, 0, 1], "tiny proxy: IPv4 CONNECT only");
    let ip = Ipv4Addr::new(head[4], head[5], head[6], head[7]);
    let port = u16::from_be_bytes([head[8], head[9]]);
    let up = dial(SocketAddr::V4(SocketAddrV4::new(ip, port)))?;
    Ok(Some((up, vec![5, 0, 0, 1, 127, 0, 0, 1, 0, 0])))
}

fn socks4(c: &mut TcpStream) -> io::Result<Dialed> {
    let mut head = [0u8; 7]; // CD PORT(2) IP(4)
    c.read_exact(&mut head)?;
    let mut b = [0u8; 1];
    for _ in 0..256 {
        c.read_exact(&mut b)?;
        if b[0] == 0 {
            break;
        }
    }
    let port = u16::from_be_bytes([head[1], head[2]]);
    let ip = Ipv4Addr::new(head[3], head[4], head[5], head[6]);
    let up = dial(SocketAddr::V4(SocketAddrV4::new(ip, port)))?;
    Ok(Some((up, vec![0, 90, 0, 0, 0, 0, 0, 0])))
}

fn http(c: &mut TcpStream) -> io::Result<Dialed> {
    let mut head = vec![b'C'];
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        c.read_exact(&mut b)?;
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let authority = text.split(' ').nth(1).unwrap_or_default();
    let addr: SocketAddr = authority.parse().map_err(|_| io::ErrorKind::InvalidData)?;
    let up = dial(addr)?;
    Ok(Some((
        up,
        b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
    )))
}

fn relay(client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    client.set_read_timeout(None)?;
    let (mut c_read, mut u_write) = (client.try_clone()?, upstream.try_clone()?);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut c_read, &mut u_write);
        let _ = u_write.shutdown(Shutdown::Write);
    });
    let (mut u_read, mut c_write) = (upstream, client);
    let _ = io::copy(&mut u_read, &mut c_write);
    let _ = c_write.shutdown(Shutdown::Write);
    let _ = up.join();
    Ok(())
}

fn bulk_config(proxy: ProxyUrl, streams: usize, direction: Direction) -> BulkConfig {
    BulkConfig {
        proxy,
        streams,
        direction,
        duration: Duration::from_millis(150),
        warmup: Duration::from_millis(30),
        pid: Some(std::process::id()),
        connect_timeout: IO_TIMEOUT,
    }
}

fn rate_config(proxy: ProxyUrl) -> RateConfig {
    RateConfig {
        proxy,
        concurrency: 4,
        duration: Duration::from_millis(150),
        warmup: Duration::from_millis(30),
        pid: Some(std::process::id()),
        op_timeout: IO_TIMEOUT,
        threads: 2,
    }
}

#[test]
fn bulk_direct_and_through_socks5_both_ways() {
    let proxy = tiny_proxy();
    let socks5 = ProxyUrl::parse(&format!("socks5://{proxy}")).unwrap();
    for (url, streams, direction) in [
        (ProxyUrl::DIRECT, 2, Direction::Down),
        (socks5.clone(), 1, Direction::Down),
        (socks5, 2, Direction::Up),
    ] {
        let r = bulk::run(&bulk_config(url.clone(), streams, direction)).unwrap();
        assert_eq!(
            r.errors.total(),
            0,
            "{url} {direction:?}: {}",
            r.errors.summary()
        );
        assert!(
            r.bytes > 1 << 20,
            "{url} {direction:?}: only {} bytes",
            r.bytes
        );
        assert!(r.seconds >= 0.14, "{}", r.seconds);
        assert!(r.proxy_cpu.is_some());
        assert!(r.bytes_per_sec() > 0.0);
    }
}

#[test]
fn rate_direct_and_through_each_protocol() {
    let proxy = tiny_proxy();
    for url in [
        "direct".to_owned(),
        format!("socks5://{proxy}"),
        format!("socks5://u:p@{proxy}"),
        format!("socks4://{proxy}"),
        format!("http://{proxy}"),
    ] {
        let r = rate::run(&rate_config(ProxyUrl::parse(&url).unwrap())).unwrap();
        assert_eq!(r.errors.total(), 0, "{url}: {}", r.errors.summary());
        assert!(r.connections >= 10, "{url}: {} connections", r.connections);
        assert_eq!(r.latency.count(), r.connections);
        let (p50, p99) = (r.latency_us(0.5).unwrap(), r.latency_us(0.99).unwrap());
        assert!(0.0 < p50 && p50 <= p99, "{url}: {p50} {p99}");
        assert_eq!(r.target_failures, 0, "{url}");
    }
}

#[test]
fn wrong_credentials_are_counted_not_fatal() {
    let proxy = tiny_proxy();
    let url = ProxyUrl::parse(&format!("socks5://u:wrong@{proxy}")).unwrap();
    let mut config = rate_config(url);
    config.concurrency = 1;
    config.duration = Duration::from_millis(100);
    let r = rate::run(&config).unwrap();
    assert_eq!(r.connections, 0);
    assert!(r.errors.total() > 0);
    assert!(
        r.errors.summary().contains("handshake"),
        "{}",
        r.errors.summary()
    );
}

#[test]
fn idle_tunnels_through_socks5() {
    let proxy = tiny_proxy();
    let r = idle::run(&IdleConfig {
        proxy: ProxyUrl::parse(&format!("socks5://{proxy}")).unwrap(),
        tunnels: 40,
        pid: std::process::id(),
        op_timeout: IO_TIMEOUT,
        open_limit: Duration::from_secs(10),
        settle: Duration::from_millis(50),
        threads: 2,
    })
    .unwrap();
    assert_eq!(r.opened, 40, "{}", r.errors.summary());
    assert_eq!(r.errors.total(), 0);
    assert!(r.after.rss_kib > 0 && r.rss_per_tunnel().is_some());
    // The tiny proxy runs two threads per tunnel in this very process.
    assert!(r.threads.1 >= r.threads.0 + 40, "{:?}", r.threads);
}

#[test]
fn suite_end_to_end_is_small_and_complete() {
    let proxy = tiny_proxy();
    let specs = [
        ProxySpec::parse("direct").unwrap(),
        ProxySpec::parse(&format!("tiny=socks5://{proxy},pid={}", std::process::id())).unwrap(),
        ProxySpec::parse(&format!("tiny=http://{proxy}")).unwrap(),
        // Nothing listens there: the probe fails and the endpoint is skipped.
        ProxySpec::parse("gone=socks5://127.0.0.1:1").unwrap(),
    ];
    let config = SuiteConfig {
        systems: suite::group(&specs).unwrap(),
        reps: 1,
        bulk_streams: vec![1],
        bulk_duration: Duration::from_millis(100),
        rate_duration: Duration::from_millis(100),
        warmup: Duration::from_millis(20),
        concurrency: 2,
        tunnels: 5,
        soak_duration: Duration::from_millis(100),
        threads: 2,
        op_timeout: Duration::from_secs(2),
    };
    let mut lines = Vec::new();
    let results = suite::run(config, &mut |l| lines.push(l.to_owned()));
    let tiny = &results.systems[1];
    assert_eq!(tiny.rate.len(), 2);
    assert!(tiny.rate.contains_key(&Protocol::HttpConnect));
    assert_eq!(tiny.idle.len(), 1);
    assert!(tiny.soak.is_some());
    assert!(results.systems[2].failures[0].contains("probe failed"));
    let md = super::report::markdown(&results);
    assert!(md.contains("| HTTP CONNECT | tiny |"), "{md}");
    assert!(md.contains("gone"), "{md}");
    assert!(lines.iter().any(|l| l.contains("skipped")));
}
