//! Property tests.
//!
//! CONNECT client: arbitrary parent bytes never panic it and it never consumes more than
//! it was given; any chunking of a stream gives the transcript of the whole; a valid reply
//! with arbitrary fields and trailing data is consumed up to exactly its head; requests
//! never carry a bare CR or LF outside their line ends.
//!
//! Proxy server: any chunking of a valid request head (random method, target, credentials,
//! fields, trailing data) gives the same request and consumes exactly the head; arbitrary
//! bytes never panic it, never make it consume more than `MAX_REQUEST_HEAD`, and give the
//! same transcript whole and chunked; every request the CONNECT client builds is read back
//! by the server as the same target and credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::server::{serve, server, Decision};
use common::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use triproxy_http::{
    ConnectClient, ConnectConfig, ConnectEvent, ConnectState, Credentials, ProxyEvent, ProxyState,
    RequestError, MAX_REQUEST_HEAD,
};
use triproxy_wire::{DomainName, TargetAddr};

fn target() -> impl Strategy<Value = TargetAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }),
        (any::<u128>(), any::<u16>()).prop_map(|(ip, port)| {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }),
        (prop::collection::vec(1u8..=255, 1..=255), any::<u16>())
            .prop_map(|(d, port)| TargetAddr::Domain(DomainName::new(&d).unwrap(), port)),
    ]
}

fn cfg() -> impl Strategy<Value = ConnectConfig> {
    (
        target(),
        prop::option::of((
            prop::collection::vec(any::<u8>(), 0..64),
            prop::collection::vec(any::<u8>(), 0..64),
        )),
    )
        .prop_map(|(target, creds)| ConnectConfig {
            target,
            credentials: creds.map(|(u, p)| Credentials::new(u, p)),
            timeout: TIMEOUT,
        })
}

/// Cuts `stream` at the given points (sorted, deduplicated, in range).
fn cut<'a>(stream: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut pts: Vec<usize> = points.iter().map(|p| p % (stream.len() + 1)).collect();
    pts.sort_unstable();
    pts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for p in pts.into_iter().chain([stream.len()]) {
        if p > start {
            out.push(&stream[start..p]);
            start = p;
        }
    }
    out
}

fn fixed() -> ConnectConfig {
    config(ip("192.0.2.7:80"), Some(("alice", "secret")))
}

/// Bytes that look like the start of a response more often than pure noise would.
fn parent_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (
            prop::sample::select(vec![
                &b"HTTP/1.1 200 OK\r\n"[..],
                b"HTTP/1.0 407 No\r\n",
                b"HTTP/1.1 100 Continue\r\n\r\n",
                b"HTTP/1.1 ",
                b"\r\n",
            ]),
            prop::collection::vec(
                prop::sample::select(vec![
                    &b"A: b\r\n"[..],
                    b"\r\n",
                    b"\n",
                    b"\r",
                    b":",
                    b" ",
                    b"HTTP/1.1 200 OK\r\n",
                    b"x",
                    b"\x00",
                    b"\xff",
                ]),
                0..40
            )
        )
            .prop_map(|(start, parts)| {
                let mut v = start.to_vec();
                for p in parts {
                    v.extend_from_slice(p);
                }
                v
            }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(cfg in cfg(), input in parent_stream()) {
        let Ok(mut c) = ConnectClient::new(t0(), cfg) else { return Ok(()) };
        let _ = c.poll_transmit();
        match c.handle_input(t0(), &input) {
            Ok(n) => prop_assert!(n <= input.len()),
            Err(e) => {
                prop_assert_eq!(c.state(), ConnectState::Closed);
                prop_assert!([32u16, 33, 34].contains(&e.log_code().get()));
            }
        }
        let _ = c.poll_event();
        let _ = c.handle_timeout(t0() + TIMEOUT);
        let _ = c.handle_eof();
        prop_assert_ne!(c.state(), ConnectState::AwaitingReply);
    }

    #[test]
    fn chunking_does_not_matter(input in parent_stream(), points in prop::collection::vec(any::<usize>(), 0..8)) {
        let cfg = fixed();
        let whole = drive(&cfg, &[&input]);
        prop_assert_eq!(drive(&cfg, &cut(&input, &points)), whole);
    }

    #[test]
    fn valid_reply_consumes_exactly_its_head(
        status in 200u16..=299,
        version in 0u8..=1,
        fields in prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,40}"), 0..10),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        points in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut head = format!("HTTP/1.{version} {status} OK\r\n");
        for (n, v) in &fields {
            head.push_str(&format!("{n}: {}\r\n", v.trim()));
        }
        head.push_str("\r\n");
        let mut stream = head.clone().into_bytes();
        stream.extend_from_slice(&tail);

        let mut c = ConnectClient::new(t0(), fixed()).unwrap();
        prop_assert_eq!(c.handle_input(t0(), &stream), Ok(head.len()));
        prop_assert_eq!(c.poll_event(), Some(ConnectEvent::Established));
        let t = drive(&fixed(), &cut(&stream, &points));
        prop_assert_eq!(t.left, tail);
        prop_assert_eq!(t.log, "event Established\neof None\n");
    }

    #[test]
    fn requests_are_well_formed(cfg in cfg()) {
        let Ok(mut c) = ConnectClient::new(t0(), cfg.clone()) else { return Ok(()) };
        let req = c.poll_transmit().unwrap();
        prop_assert!(req.ends_with(b"\r\n\r\n"));
        let body = &req[..req.len() - 2];
        // Every line ends with CRLF, and no other CR or LF appears.
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        prop_assert_eq!(lines.last(), Some(&&b""[..]));
        let lines = &lines[..lines.len() - 1];
        let expected = if cfg.credentials.is_some() { 3 } else { 2 };
        prop_assert_eq!(lines.len(), expected);
        for line in lines {
            prop_assert_eq!(line.last(), Some(&b'\r'));
            prop_assert!(!line[..line.len() - 1].contains(&b'\r'));
        }
        // A server's parser reads it as one CONNECT request for the target.
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut parsed = httparse::Request::new(&mut headers);
        prop_assert_eq!(parsed.parse(&req), Ok(httparse::Status::Complete(req.len())));
        prop_assert_eq!(parsed.method, Some("CONNECT"));
        prop_assert_eq!(parsed.version, Some(1));
        let path = parsed.path.unwrap();
        prop_assert_eq!(parsed.headers.len(), expected - 1);
        prop_assert_eq!(parsed.headers[0].name, "Host");
        prop_assert_eq!(parsed.headers[0].value, path.as_bytes());
        let port = format!(":{}", cfg.target.port());
        prop_assert!(path.ends_with(&port), "{} does not end with {}", path, port);
        if let TargetAddr::Ip(sa) = cfg.target {
            let back: SocketAddr = path.parse().unwrap();
            prop_assert_eq!(back.ip(), sa.ip());
        }
    }
}

// ------------------------------------------------------------- proxy server

/// A target and how a client writes it: (text, the target the server must report).
fn server_target() -> impl Strategy<Value = (String, TargetAddr)> {
    let port = 1u16..=65535;
    prop_oneof![
        (any::<u32>(), port.clone()).prop_map(|(ip, port)| {
            let ip = Ipv4Addr::from(ip);
            (
                format!("{ip}:{port}"),
                TargetAddr::Ip(SocketAddr::from((ip, port))),
            )
        }),
        (any::<u128>(), port.clone()).prop_map(|(ip, port)| {
            let ip = Ipv6Addr::from(ip);
            (
                format!("[{ip}]:{port}"),
                TargetAddr::Ip(SocketAddr::from((ip, port))),
            )
        }),
        (
            "[a-zA-Z0-9._~!$&'()*+,;=-]{1,255}",
            port.clone(),
            any::<bool>()
        )
            .prop_filter("dotted quads are IPv4", |(n, _, _)| n
                .parse::<Ipv4Addr>()
                .is_err())
            .prop_map(|(n, port, explicit)| {
                let target = TargetAddr::Domain(DomainName::new(n.as_bytes()).unwrap(), port);
                match (explicit, port) {
                    (false, 80) => (n, target),
                    _ => (format!("{n}:{port}"), target),
                }
            }),
    ]
}

/// User (no colon) and password, no control characters, any other bytes.
fn basic_credentials() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let byte = prop_oneof![0x20u8..=0x7e, 0x80u8..=0xff];
    (
        prop::collection::vec(byte.clone().prop_filter("no colon", |&b| b != b':'), 0..40),
        prop::collection::vec(byte, 0..40),
    )
}

/// A valid head: (bytes, method, connect, target, credentials, minor version).
#[allow(clippy::type_complexity)]
fn valid_head() -> impl Strategy<
    Value = (
        Vec<u8>,
        String,
        bool,
        TargetAddr,
        Option<(Vec<u8>, Vec<u8>)>,
        u8,
    ),
> {
    (
        prop::sample::select(vec!["CONNECT", "GET", "POST", "X-CUSTOM_1"]),
        server_target(),
        prop::option::of(basic_credentials()),
        0u8..=1,
        prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,40}"), 0..8),
        any::<bool>(),
        0usize..8,
    )
        .prop_map(
            |(method, (text, target), creds, minor, fields, lf_only, auth_at)| {
                let eol = if lf_only { "\n" } else { "\r\n" };
                let connect = method == "CONNECT";
                let uri = if connect {
                    text
                } else {
                    format!("http://{text}/path?q=1")
                };
                let mut head = format!("{method} {uri} HTTP/1.{minor}{eol}").into_bytes();
                let auth = creds.as_ref().map(|(u, p)| {
                    let mut userpass = u.clone();
                    userpass.push(b':');
                    userpass.extend_from_slice(p);
                    format!(
                        "Proxy-Authorization: Basic {}{eol}",
                        BASE64.encode(userpass)
                    )
                });
                for (i, (n, v)) in fields.iter().enumerate() {
                    if i == auth_at {
                        head.extend(auth.iter().flat_map(|a| a.bytes()));
                    }
                    // A generated field must not pass for the one under test.
                    let n = if n.eq_ignore_ascii_case("proxy-authorization") {
                        "X"
                    } else {
                        n
                    };
                    head.extend_from_slice(format!("{n}: {}{eol}", v.trim()).as_bytes());
                }
                if auth_at >= fields.len() {
                    head.extend(auth.iter().flat_map(|a| a.bytes()));
                }
                head.extend_from_slice(eol.as_bytes());
                (head, method.to_string(), connect, target, creds, minor)
            },
        )
}

/// Bytes that look like the start of a request more often than pure noise would, and
/// sometimes more than the head bound.
fn client_stream() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (
            prop::sample::select(vec![
                &b"CONNECT "[..],
                b"GET http://",
                b"CONNECT a.org:443 HTTP/1.1\r\n",
                b"\r\n",
                b"",
            ]),
            prop::collection::vec(
                prop::sample::select(vec![
                    &b"a.org:443"[..],
                    b"[::1]:80",
                    b" HTTP/1.1\r\n",
                    b"Proxy-Authorization: Basic YTpi\r\n",
                    b"Proxy-Authorization: Basic !\r\n",
                    b"A: b\r\n",
                    b"\r\n",
                    b"\n",
                    b"\r",
                    b":",
                    b" ",
                    b"/",
                    b"%",
                    b"x",
                    b"\x00",
                    b"\xff",
                ]),
                0..40
            ),
            prop::option::weighted(0.1, MAX_REQUEST_HEAD - 64..MAX_REQUEST_HEAD + 64),
        )
            .prop_map(|(start, parts, pad)| {
                let mut v = start.to_vec();
                for p in parts {
                    v.extend_from_slice(p);
                }
                if let Some(len) = pad {
                    v.resize(len, b'p');
                    v.extend_from_slice(b"\r\n\r\n");
                }
                v
            }),
    ]
}

/// Configurations the CONNECT client accepts: reg-name targets (with `%`, and IP literals
/// written as names) and credentials without control characters.
fn sendable_cfg() -> impl Strategy<Value = ConnectConfig> {
    let name = prop_oneof![
        "[a-zA-Z0-9._~!$&'()*+,;=%-]{1,255}",
        any::<u32>().prop_map(|ip| Ipv4Addr::from(ip).to_string()),
        any::<u128>().prop_map(|ip| Ipv6Addr::from(ip).to_string()),
    ];
    let target = prop_oneof![
        target(),
        (name, any::<u16>()).prop_map(|(n, port)| {
            TargetAddr::Domain(DomainName::new(n.as_bytes()).unwrap(), port)
        }),
    ];
    (target, prop::option::of(basic_credentials())).prop_map(|(target, creds)| ConnectConfig {
        target,
        credentials: creds.map(|(u, p)| Credentials::new(u, p)),
        timeout: TIMEOUT,
    })
}

proptest! {
    #[test]
    fn server_any_split_of_a_valid_head(
        (head, method, connect, target, creds, minor) in valid_head(),
        tail in prop::collection::vec(any::<u8>(), 0..32),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut stream = head.clone();
        stream.extend_from_slice(&tail);

        let mut s = server();
        prop_assert_eq!(s.handle_input(t0(), &stream), Ok(head.len()));
        let Some(ProxyEvent::Request(r)) = s.poll_event() else {
            return Err(TestCaseError::fail("no request"));
        };
        prop_assert_eq!(&r.method, &method);
        prop_assert_eq!(r.connect, connect);
        prop_assert_eq!(&r.target, &target);
        prop_assert_eq!(r.minor_version, minor);
        let got = r.credentials.map(|c| (c.username, c.password));
        prop_assert_eq!(got, creds);

        let whole = serve(Decision::Grant, &[&stream]);
        prop_assert_eq!(whole.consumed, head.len());
        prop_assert_eq!(&whole.left, &tail);
        prop_assert_eq!(whole.state, ProxyState::Established);
        prop_assert_eq!(serve(Decision::Grant, &cut(&stream, &points)), whole);
    }

    #[test]
    fn server_arbitrary_input(
        input in client_stream(),
        points in prop::collection::vec(any::<usize>(), 0..8),
        refuse in any::<bool>(),
    ) {
        let mut s = server();
        match s.handle_input(t0(), &input) {
            Ok(n) => {
                prop_assert!(n <= input.len().min(MAX_REQUEST_HEAD));
                if s.state() == ProxyState::ReadingHead {
                    prop_assert_eq!(n, input.len());
                } else {
                    prop_assert_eq!(s.state(), ProxyState::AwaitingDecision);
                    let used = &input[..n];
                    prop_assert!(used.ends_with(b"\n\n") || used.ends_with(b"\n\r\n"));
                }
            }
            Err(e) => {
                prop_assert_eq!(s.state(), ProxyState::Closed);
                prop_assert!((511..=516).contains(&e.log_code().get()), "{:?}", e);
                prop_assert!(s.poll_transmit().is_some());
            }
        }
        let _ = s.poll_event();
        let _ = s.handle_timeout(t0() + server::HEAD_TIMEOUT);
        let _ = s.handle_eof();
        prop_assert_ne!(s.state(), ProxyState::ReadingHead);

        let decision = if refuse {
            Decision::Refuse(triproxy_http::Refusal::Forbidden)
        } else {
            Decision::Grant
        };
        let whole = serve(decision, &[&input]);
        prop_assert_eq!(serve(decision, &cut(&input, &points)), whole);
    }

    #[test]
    fn server_reads_what_the_client_writes(cfg in prop_oneof![cfg(), sendable_cfg()]) {
        let Ok(mut c) = ConnectClient::new(t0(), cfg.clone()) else { return Ok(()) };
        let req = c.poll_transmit().unwrap();
        let mut s = server();
        let result = s.handle_input(t0(), &req);
        let name = cfg.target.domain().map(|d| d.as_bytes().to_vec());
        if cfg.target.port() == 0 || name.as_ref().is_some_and(|n| n.contains(&b'%')) {
            prop_assert_eq!(result, Err(RequestError::BadTarget));
            return Ok(());
        }
        prop_assert_eq!(result, Ok(req.len()));
        let Some(ProxyEvent::Request(r)) = s.poll_event() else {
            return Err(TestCaseError::fail("no request"));
        };
        prop_assert!(r.connect);
        prop_assert_eq!(r.minor_version, 1);
        // Names that are IP literals come back as addresses; IPv6 zones are not sent.
        let text = name.as_deref().and_then(|n| std::str::from_utf8(n).ok());
        let want = match (&cfg.target, text) {
            (TargetAddr::Ip(SocketAddr::V6(sa)), _) => {
                TargetAddr::Ip(SocketAddr::new(IpAddr::V6(*sa.ip()), sa.port()))
            }
            (TargetAddr::Domain(_, port), Some(t)) if t.parse::<IpAddr>().is_ok() => {
                TargetAddr::Ip(SocketAddr::new(t.parse().unwrap(), *port))
            }
            (other, _) => other.clone(),
        };
        prop_assert_eq!(r.target, want);
        prop_assert_eq!(r.credentials, cfg.credentials);
    }
}
