//! Short end-to-end runs of the HTTP forwarding measurements on real loopback sockets:
//! against `direct`, and through a tiny in-test forward proxy that behaves like the
//! awkward peers do (it re-frames every body as chunked, like squid may; it closes after
//! each response, with `Connection: close` or, like tinyproxy 1.11, without), and one
//! that refuses with 501 (like a proxy without forwarding).

use super::http_download::{self, DownloadConfig};
use super::http_rate::{self, HttpRateConfig};
use super::url::ProxyUrl;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What the tiny proxy does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forwards it, answers chunked, keeps the client connection.
    ChunkedKeepAlive,
    /// Forwards it, answers chunked with `Connection: close`, and closes.
    ChunkedClose,
    /// Forwards it, answers chunked, and closes without saying so (tinyproxy 1.11).
    ChunkedSilentClose,
    /// Answers 501 Not Implemented (what triproxy does before forwarding lands).
    Refuse,
}

/// Starts the tiny proxy; it serves for 30 s.
fn tiny_forward_proxy(mode: Mode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((s, _)) => {
                    thread::spawn(move || {
                        let _ = serve(s, mode);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    addr
}

/// Reads up to and including the blank line of a head, byte by byte.
fn read_head(s: &mut TcpStream) -> io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if s.read(&mut b)? == 0 {
            return Ok(None);
        }
        head.push(b[0]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

fn serve(mut client: TcpStream, mode: Mode) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_nodelay(true)?;
    for _ in 0..1_000_000 {
        let Some(head) = read_head(&mut client)? else {
            return Ok(());
        };
        if mode == Mode::Refuse {
            client.write_all(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        }
        // GET http://HOST:PORT/PATH HTTP/1.1: one connection to the origin per request,
        // which it closes after the response, so its body runs to the close.
        let url = head.split(' ').nth(1).unwrap_or_default();
        let rest = url.strip_prefix("http://").unwrap_or_default();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let addr: SocketAddr = authority.parse().map_err(|_| io::ErrorKind::InvalidData)?;
        let mut origin = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        origin.set_read_timeout(Some(IO_TIMEOUT))?;
        write!(
            origin,
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )?;
        let _ = read_head(&mut origin)?;
        let close = matches!(mode, Mode::ChunkedClose | Mode::ChunkedSilentClose);
        let connection = if mode == Mode::ChunkedClose {
            "Connection: close\r\n"
        } else {
            ""
        };
        write!(
            client,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n{connection}\r\n"
        )?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = origin.read(&mut buf)?;
            if n == 0 {
                break;
            }
            // Chunk boundaries where the reads fell, with an extension now and then.
            write!(client, "{n:x};r=1\r\n")?;
            client.write_all(&buf[..n])?;
            client.write_all(b"\r\n")?;
        }
        client.write_all(b"0\r\nX-Trailer: 1\r\n\r\n")?;
        if close {
            return Ok(());
        }
    }
    Ok(())
}

fn rate_config(proxy: ProxyUrl) -> HttpRateConfig {
    HttpRateConfig {
        proxy,
        concurrency: 4,
        duration: Duration::from_millis(200),
        warmup: Duration::from_millis(50),
        pid: Some(std::process::id()),
        op_timeout: IO_TIMEOUT,
        threads: 2,
    }
}

#[test]
fn requests_direct_keep_one_connection_per_client() {
    let r = http_rate::run(&rate_config(ProxyUrl::DIRECT)).unwrap();
    assert_eq!(r.errors.total(), 0, "{}", r.errors.summary());
    assert!(r.requests >= 20, "{} requests", r.requests);
    assert_eq!(r.latency.count(), r.requests);
    let (p50, p99) = (r.latency_us(0.5).unwrap(), r.latency_us(0.99).unwrap());
    assert!(0.0 < p50 && p50 <= p99, "{p50} {p99}");
    assert_eq!((r.window_connects, r.origin_connections), (0, 4));
    assert!(r.origin_responses >= r.requests);
    assert!(r.proxy_cpu_per_1k().is_some());
}

#[test]
fn requests_through_a_reframing_proxy() {
    for (mode, reconnects) in [
        (Mode::ChunkedKeepAlive, false),
        (Mode::ChunkedClose, true),
        (Mode::ChunkedSilentClose, true),
    ] {
        let proxy = tiny_forward_proxy(mode);
        let url = ProxyUrl::parse(&format!("http://{proxy}")).unwrap();
        let r = http_rate::run(&rate_config(url)).unwrap();
        assert_eq!(r.errors.total(), 0, "{mode:?}: {}", r.errors.summary());
        assert!(r.requests >= 5, "{mode:?}: {} requests", r.requests);
        // One origin connection per request: the tiny proxy does not pool.
        assert!(r.origin_connections >= r.requests, "{mode:?}");
        assert_eq!(r.window_connects > 0, reconnects, "{mode:?}");
        if reconnects {
            assert!(r.window_connects + 4 >= r.requests, "{mode:?}");
        }
        // Unannounced closes are retried, not errors.
        assert_eq!(
            r.idle_closes > 0,
            mode == Mode::ChunkedSilentClose,
            "{mode:?}: {}",
            r.idle_closes
        );
    }
}

#[test]
fn a_refusing_proxy_is_counted_not_fatal() {
    let proxy = tiny_forward_proxy(Mode::Refuse);
    let mut config = rate_config(ProxyUrl::parse(&format!("http://{proxy}")).unwrap());
    config.concurrency = 2;
    let r = http_rate::run(&config).unwrap();
    assert_eq!(r.requests, 0);
    assert!(r.errors.total() > 0);
    assert!(
        r.errors.summary().contains("status 501"),
        "{}",
        r.errors.summary()
    );
    let d = http_download::run(&download_config(
        ProxyUrl::parse(&format!("http://{proxy}")).unwrap(),
        1 << 20,
    ))
    .unwrap();
    assert_eq!(d.error, Some(super::conn::OpError::Status(501)));
}

fn download_config(proxy: ProxyUrl, bytes: u64) -> DownloadConfig {
    DownloadConfig {
        proxy,
        bytes,
        pid: Some(std::process::id()),
        op_timeout: IO_TIMEOUT,
        time_limit: Duration::from_secs(20),
        threads: 1,
    }
}

#[test]
fn downloads_direct_and_reframed() {
    let closing = tiny_forward_proxy(Mode::ChunkedClose);
    let silent = tiny_forward_proxy(Mode::ChunkedSilentClose);
    for url in [
        ProxyUrl::DIRECT,
        ProxyUrl::parse(&format!("http://{closing}")).unwrap(),
        ProxyUrl::parse(&format!("http://{silent}")).unwrap(),
    ] {
        let bytes = 24 << 20;
        let r = http_download::run(&download_config(url.clone(), bytes)).unwrap();
        assert_eq!(r.error, None, "{url}");
        assert_eq!((r.bytes, r.requested), (bytes, bytes), "{url}");
        assert!(r.seconds > 0.0 && r.bytes_per_sec() > 0.0, "{url}");
        assert!(r.proxy_cpu_per_gib().is_some() && r.tool_cpu_per_gib().is_some());
    }
    // Nothing listens there.
    let gone = ProxyUrl::parse("http://127.0.0.1:1").unwrap();
    let r = http_download::run(&download_config(gone, 1 << 20)).unwrap();
    assert!(
        matches!(r.error, Some(super::conn::OpError::Connect(_))),
        "{r:?}"
    );
}
