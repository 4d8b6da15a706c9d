//! Property tests: arbitrary parent bytes never panic the CONNECT client and it never
//! consumes more than it was given; any chunking of a stream gives the transcript of the
//! whole; a valid reply with arbitrary fields and trailing data is consumed up to exactly
//! its head; requests never carry a bare CR or LF outside their line ends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use triproxy_http::{ConnectClient, ConnectConfig, ConnectEvent, ConnectState, Credentials};
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
