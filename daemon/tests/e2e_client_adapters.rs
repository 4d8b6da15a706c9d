//! The client adapters of the protocol crates against the real daemon, on both of its
//! runtimes: `triproxy_socks::{blocking, futures}::connect` and
//! `triproxy_http::{blocking, futures}::connect`, the async ones on smol. With and without
//! credentials, and with refusals, which must come back typed inside the `io::Error`.
//! Every address is 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::*;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;
use triproxy_socks::client::{ClientConfig, ClientVersion, Refusal};
use triproxy_socks::{v4, v5, ClientError, Command, Credentials, TargetAddr};

both_runtimes!(
    socks5_without_credentials,
    socks5_with_credentials,
    socks_refusals_are_typed,
    http_connect_without_credentials,
    http_connect_with_credentials,
    http_refusals_are_typed,
);

/// The banner a [`banner_target`] sends first.
const BANNER: &[u8] = b"hello from the target\r\n";

/// A target on 127.0.0.1 that speaks first (so its bytes can arrive with the proxy's
/// reply, and must not be lost by the adapter), then echoes.
fn banner_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            thread::spawn(move || {
                stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut s = stream;
                if s.write_all(BANNER).is_ok() {
                    let mut r = s.try_clone().unwrap();
                    let _ = io::copy(&mut r, &mut s);
                }
            });
        }
    });
    addr
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Reads the banner, then checks the tunnel echoes.
fn check_tunnel(s: &mut TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    assert_eq!(read_n(s, BANNER.len()), BANNER);
    s.write_all(b"ping").unwrap();
    assert_eq!(read_n(s, 4), b"ping");
}

/// The same over an async stream.
async fn check_tunnel_async<S: smol::io::AsyncRead + smol::io::AsyncWrite + Unpin>(s: &mut S) {
    let mut banner = vec![0u8; BANNER.len()];
    s.read_exact(&mut banner).await.unwrap();
    assert_eq!(banner, BANNER);
    s.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
}

/// Runs `f` on smol, failing after [`IO_TIMEOUT`] (the async adapters have no timer).
fn on_smol<T>(f: impl std::future::Future<Output = T>) -> T {
    smol::block_on(smol::future::or(async { Some(f.await) }, async {
        smol::Timer::after(IO_TIMEOUT).await;
        None
    }))
    .expect("timed out")
}

fn socks_err(e: &io::Error) -> ClientError {
    triproxy_socks::blocking::client_error(e).unwrap_or_else(|| panic!("not a SOCKS error: {e}"))
}

fn alice() -> Credentials {
    Credentials::new(b"alice", b"secret").unwrap()
}

const OPEN: &str = "log\nauth iponly\nallow *\n";
const STRONG: &str = "log\nusers alice:CL:secret\nauth strong\nallow alice\n";

fn socks5_without_credentials(runtime: &str) {
    let d = Daemon::start(&format!("{OPEN}socks -p0 -i127.0.0.1\n"), runtime);
    let target = banner_target();

    // Blocking, to an address and to a name.
    let mut s = triproxy_socks::blocking::connect(d.addr, target.into(), None).unwrap();
    check_tunnel(&mut s);
    let by_name = format!("localhost:{}", target.port()).parse().unwrap();
    let mut s = triproxy_socks::blocking::connect(d.addr, by_name, None).unwrap();
    check_tunnel(&mut s);
    drop(s); // the record is written when the tunnel ends
    d.wait_code(0, &format!("CONNECT localhost:{}", target.port()));

    // Async on smol.
    on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        let mut s = triproxy_socks::futures::connect(tcp, target.into(), None)
            .await
            .unwrap();
        check_tunnel_async(&mut s).await;
    });

    // SOCKS4 and SOCKS4a through `handshake`.
    for version in [ClientVersion::V4, ClientVersion::V4a] {
        let mut s = connect(d.addr);
        let bound = triproxy_socks::blocking::handshake(
            &mut s,
            ClientConfig {
                version,
                credentials: None,
                command: Command::Connect,
                target: target.into(),
                timeout: Duration::from_secs(10),
            },
        )
        .unwrap();
        assert!(bound.ip().is_some(), "{bound}");
        check_tunnel(&mut s);
    }
}

fn socks5_with_credentials(runtime: &str) {
    let d = Daemon::start(&format!("{STRONG}socks -p0 -i127.0.0.1\n"), runtime);
    let target = banner_target();

    let mut s = triproxy_socks::blocking::connect(d.addr, target.into(), Some(alice())).unwrap();
    check_tunnel(&mut s);
    drop(s); // the record is written when the tunnel ends
    let line = d.wait_code(0, &format!("CONNECT {target}"));
    assert!(line.contains(" alice "), "{line}");
    on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        let mut s = triproxy_socks::futures::connect(tcp, target.into(), Some(alice()))
            .await
            .unwrap();
        check_tunnel_async(&mut s).await;
    });

    // No credentials: the proxy selects X'FF'.
    let e = triproxy_socks::blocking::connect(d.addr, target.into(), None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert_eq!(
        socks_err(&e),
        ClientError::NoAcceptableMethod { method: 0xff }
    );
    // A wrong password: RFC 1929 status 1 (the async adapter sees the same).
    let wrong = Credentials::new(b"alice", b"oops").unwrap();
    let e = on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        triproxy_socks::futures::connect(tcp, target.into(), Some(wrong))
            .await
            .unwrap_err()
    });
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
    assert!(matches!(
        socks_err(&e),
        ClientError::AuthRejected { status } if status != 0
    ));
    d.wait_code(6, "");
}

fn socks_refusals_are_typed(runtime: &str) {
    let denied = banner_target();
    let d = Daemon::start(
        &format!(
            "log\nauth iponly\ndeny * * 127.0.0.1 {}\nallow *\nsocks -p0 -i127.0.0.1\n",
            denied.port()
        ),
        runtime,
    );

    // Denied by the ACL: REP 2, on both adapters.
    let e = triproxy_socks::blocking::connect(d.addr, denied.into(), None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    let error = socks_err(&e);
    assert_eq!(
        error,
        ClientError::V5Refused {
            reply: v5::ReplyCode::NotAllowed
        }
    );
    assert_eq!(
        e.to_string(),
        "the SOCKS5 proxy refused the request: connection not allowed by ruleset (REP 2)"
    );
    d.wait_code(1, &format!("CONNECT {denied}"));
    let e = on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        triproxy_socks::futures::connect(tcp, denied.into(), None)
            .await
            .unwrap_err()
    });
    assert_eq!(
        triproxy_socks::futures::client_error(&e),
        Some(ClientError::from(Refusal::V5(v5::ReplyCode::NotAllowed)))
    );

    // Nothing listens at the target: REP 5, connection refused.
    let nobody: TargetAddr = closed_port().into();
    let e = triproxy_socks::blocking::connect(d.addr, nobody.clone(), None).unwrap_err();
    assert_eq!(
        socks_err(&e),
        ClientError::V5Refused {
            reply: v5::ReplyCode::ConnectionRefused
        }
    );

    // SOCKS4: CD 91.
    let mut s = connect(d.addr);
    let e = triproxy_socks::blocking::handshake(
        &mut s,
        ClientConfig {
            version: ClientVersion::V4,
            credentials: None,
            command: Command::Connect,
            target: denied.into(),
            timeout: Duration::from_secs(10),
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert_eq!(
        socks_err(&e),
        ClientError::V4Rejected {
            code: v4::ReplyCode::Rejected
        }
    );
}

fn http_err(e: &io::Error) -> triproxy_http::ConnectError {
    triproxy_http::blocking::connect_error(e).unwrap_or_else(|| panic!("not a CONNECT error: {e}"))
}

fn http_connect_without_credentials(runtime: &str) {
    let d = Daemon::start(&format!("{OPEN}proxy -p0 -i127.0.0.1\n"), runtime);
    let target = banner_target();

    let mut s = triproxy_http::blocking::connect(d.addr, target.into(), None).unwrap();
    check_tunnel(&mut s);
    let by_name = format!("localhost:{}", target.port()).parse().unwrap();
    let mut s = triproxy_http::blocking::connect(d.addr, by_name, None).unwrap();
    check_tunnel(&mut s);
    on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        let mut s = triproxy_http::futures::connect(tcp, target.into(), None)
            .await
            .unwrap();
        check_tunnel_async(&mut s).await;
    });
}

fn http_connect_with_credentials(runtime: &str) {
    let d = Daemon::start(&format!("{STRONG}proxy -p0 -i127.0.0.1\n"), runtime);
    let target = banner_target();
    let alice = || Some(triproxy_http::Credentials::new("alice", "secret"));

    let mut s = triproxy_http::blocking::connect(d.addr, target.into(), alice()).unwrap();
    check_tunnel(&mut s);
    on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        let mut s = triproxy_http::futures::connect(tcp, target.into(), alice())
            .await
            .unwrap();
        check_tunnel_async(&mut s).await;
    });

    // No credentials: 407.
    let e = triproxy_http::blocking::connect(d.addr, target.into(), None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    assert_eq!(
        http_err(&e),
        triproxy_http::ConnectError::Refused { status: 407 }
    );
    let e = on_smol(async {
        let tcp = smol::net::TcpStream::connect(d.addr).await.unwrap();
        let wrong = Some(triproxy_http::Credentials::new("alice", "oops"));
        triproxy_http::futures::connect(tcp, target.into(), wrong)
            .await
            .unwrap_err()
    });
    assert_eq!(
        triproxy_http::futures::connect_error(&e),
        Some(triproxy_http::ConnectError::Refused { status: 407 })
    );
}

fn http_refusals_are_typed(runtime: &str) {
    let denied = banner_target();
    let d = Daemon::start(
        &format!(
            "log\nauth iponly\ndeny * * 127.0.0.1 {}\nallow *\nproxy -p0 -i127.0.0.1\n",
            denied.port()
        ),
        runtime,
    );
    let e = triproxy_http::blocking::connect(d.addr, denied.into(), None).unwrap_err();
    assert_eq!(
        http_err(&e),
        triproxy_http::ConnectError::Refused { status: 403 }
    );
    assert_eq!(e.to_string(), "the HTTP proxy refused CONNECT (status 403)");
    let e = triproxy_http::blocking::connect(d.addr, closed_port().into(), None).unwrap_err();
    assert_eq!(
        http_err(&e),
        triproxy_http::ConnectError::Refused { status: 502 }
    );
}

/// The blocking adapter enforces the machine's deadline: a proxy that never answers.
#[test]
fn blocking_socks_handshake_times_out() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = TcpStream::connect(silent.local_addr().unwrap()).unwrap();
    let e = triproxy_socks::blocking::handshake(
        &mut s,
        ClientConfig {
            version: ClientVersion::V5,
            credentials: None,
            command: Command::Connect,
            target: "example.org:80".parse().unwrap(),
            timeout: Duration::from_millis(200),
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
    assert!(matches!(socks_err(&e), ClientError::Timeout { .. }));
    // The stream's own read timeout is restored.
    assert_eq!(s.read_timeout().unwrap(), None);
    drop(silent);
}

/// The futures-io adapters on tokio, through `tokio-util`'s compat layer, against the
/// std daemon: SOCKS5 with credentials, and an HTTP CONNECT refusal.
#[test]
fn futures_adapters_on_tokio() {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    let socks = Daemon::start(&format!("{STRONG}socks -p0 -i127.0.0.1\n"), "std");
    let http = Daemon::start(&format!("{OPEN}proxy -p0 -i127.0.0.1\n"), "std");
    let target = banner_target();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(IO_TIMEOUT, async {
            let tcp = tokio::net::TcpStream::connect(socks.addr).await.unwrap();
            let mut s =
                triproxy_socks::futures::connect(tcp.compat(), target.into(), Some(alice()))
                    .await
                    .unwrap();
            check_tunnel_async(&mut s).await;
            let tcp: tokio::net::TcpStream = s.into_inner();
            drop(tcp);

            let tcp = tokio::net::TcpStream::connect(http.addr).await.unwrap();
            let mut s = triproxy_http::futures::connect(tcp.compat(), target.into(), None)
                .await
                .unwrap();
            check_tunnel_async(&mut s).await;

            let tcp = tokio::net::TcpStream::connect(http.addr).await.unwrap();
            let e = triproxy_http::futures::connect(tcp.compat(), closed_port().into(), None)
                .await
                .unwrap_err();
            assert_eq!(
                triproxy_http::futures::connect_error(&e),
                Some(triproxy_http::ConnectError::Refused { status: 502 })
            );
        })
        .await
        .expect("timed out");
    });
}
