//! Property tests: encode → parse round trips for every message, arbitrary bytes never
//! panic (parsers and both machines, arbitrarily chunked), and a valid handshake split at
//! arbitrary points gives the same transcript as whole input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use triproxy_socks::client::{Client, ClientConfig, ClientState, ClientVersion};
use triproxy_socks::server::{Command, MethodPolicy, ServerConfig, State};
use triproxy_socks::v4;
use triproxy_socks::v5::{
    encode_udp, parse_udp, AuthReply, Credentials, Greeting, Method, MethodSelection, Reply,
    ReplyCode, Request, UdpHeader,
};
use triproxy_socks::Error;
use triproxy_wire::{DomainName, Status, TargetAddr};

// ------------------------------------------------------------- strategies

fn domain() -> impl Strategy<Value = DomainName> {
    prop::collection::vec(1u8..=255, 1..=255).prop_map(|v| DomainName::new(&v).unwrap())
}

fn target() -> impl Strategy<Value = TargetAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(ip, port)| {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }),
        (any::<u128>(), any::<u16>()).prop_map(|(ip, port)| {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }),
        (domain(), any::<u16>()).prop_map(|(d, port)| TargetAddr::Domain(d, port)),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Connect),
        Just(Command::Bind),
        Just(Command::UdpAssociate)
    ]
}

fn credentials() -> impl Strategy<Value = Credentials> {
    (
        prop::collection::vec(any::<u8>(), 1..=255),
        prop::collection::vec(any::<u8>(), 0..=255),
    )
        .prop_map(|(u, p)| Credentials::new(&u, &p).unwrap())
}

fn v4_request() -> impl Strategy<Value = v4::Request> {
    let destination = prop_oneof![
        any::<u32>()
            .prop_map(Ipv4Addr::from)
            .prop_filter("not a 4a marker", |ip| !v4::is_v4a_marker(*ip))
            .prop_map(v4::Destination::Ip),
        domain().prop_map(v4::Destination::Domain),
    ];
    (
        prop_oneof![Just(v4::Command::Connect), Just(v4::Command::Bind)],
        any::<u16>(),
        destination,
        prop::collection::vec(1u8..=255, 0..=255),
    )
        .prop_map(|(command, port, destination, user)| v4::Request {
            command,
            port,
            destination,
            user_id: user.into_iter().collect(),
        })
}

/// Bytes that often look like SOCKS (small values) and sometimes do not.
fn socksish_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![3 => 0u8..=6, 1 => any::<u8>()], 0..max)
}

/// Cut points for `len` bytes (sorted, deduplicated, within bounds).
fn chunk<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&bytes[start..c]);
        start = c;
    }
    out.push(&bytes[start..]);
    out
}

// ------------------------------------------------------------- round trips

proptest! {
    #[test]
    fn v5_request_round_trip(command in command(), target in target()) {
        let r = Request { command, target };
        check(&r, r.encoded_len(), |o| r.encode(o), Request::parse)?;
    }

    #[test]
    fn v5_reply_round_trip(rep in any::<u8>(), bound in target()) {
        let r = Reply { reply: ReplyCode::from_u8(rep), bound };
        check(&r, r.encoded_len(), |o| r.encode(o), Reply::parse)?;
    }

    #[test]
    fn greeting_round_trip(methods in prop::collection::vec(any::<u8>(), 1..=255)) {
        let methods: Vec<Method> = methods.into_iter().map(Method).collect();
        let g = Greeting::new(&methods);
        check(&g, g.encoded_len(), |o| g.encode(o), Greeting::parse)?;
    }

    #[test]
    fn small_messages_round_trip(m in any::<u8>(), s in any::<u8>()) {
        let sel = MethodSelection { method: Method(m) };
        check(&sel, 2, |o| sel.encode(o), MethodSelection::parse)?;
        let rep = AuthReply { status: s };
        check(&rep, 2, |o| rep.encode(o), AuthReply::parse)?;
    }

    #[test]
    fn credentials_round_trip(c in credentials()) {
        check(&c, c.encoded_len(), |o| c.encode(o), Credentials::parse)?;
    }

    #[test]
    fn v4_request_round_trip(r in v4_request()) {
        check(&r, r.encoded_len(), |o| r.encode(o), v4::Request::parse)?;
    }

    #[test]
    fn v4_reply_round_trip(cd in any::<u8>(), port in any::<u16>(), ip in any::<u32>()) {
        let r = v4::Reply { code: v4::ReplyCode::from_u8(cd), port, ip: Ipv4Addr::from(ip) };
        check(&r, 8, |o| r.encode(o), v4::Reply::parse)?;
    }

    #[test]
    fn udp_round_trip(frag in any::<u8>(), target in target(), data in prop::collection::vec(any::<u8>(), 0..64)) {
        let h = UdpHeader { frag, target };
        let mut bytes = Vec::new();
        encode_udp(&h, &mut bytes);
        prop_assert_eq!(bytes.len(), h.encoded_len());
        bytes.extend_from_slice(&data);
        let (back, payload) = parse_udp(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, h);
        prop_assert_eq!(payload, &data[..]);
    }
}

/// `round_trip` for values compared by equality.
fn check<T: PartialEq + std::fmt::Debug>(
    value: &T,
    len: usize,
    encode: impl FnOnce(&mut Vec<u8>),
    parse: impl Fn(&[u8]) -> Result<Status<T>, Error>,
) -> Result<(), TestCaseError> {
    let mut bytes = Vec::new();
    encode(&mut bytes);
    prop_assert_eq!(bytes.len(), len, "encoded_len");
    match parse(&bytes) {
        Ok(Status::Complete {
            value: back,
            consumed,
        }) => {
            prop_assert_eq!(&back, value);
            prop_assert_eq!(consumed, len);
        }
        other => return Err(TestCaseError::fail(format!("{other:?}"))),
    }
    for n in 0..bytes.len() {
        let partial = parse(&bytes[..n]);
        prop_assert!(
            matches!(partial, Ok(Status::Partial { .. })),
            "prefix {} of {}: {:?}",
            n,
            len,
            partial
        );
    }
    Ok(())
}

// ------------------------------------------------------------- arbitrary bytes

/// Parses arbitrary bytes; a complete value must re-encode into something that parses to
/// the same value and never claim more bytes than given.
fn decode_encode_decode<T: PartialEq + std::fmt::Debug>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Result<Status<T>, Error>,
    encode: impl Fn(&T, &mut Vec<u8>),
) -> Result<(), TestCaseError> {
    if let Ok(Status::Complete { value, consumed }) = parse(bytes) {
        prop_assert!(consumed <= bytes.len());
        let mut again = Vec::new();
        encode(&value, &mut again);
        match parse(&again) {
            Ok(Status::Complete {
                value: v2,
                consumed: c2,
            }) => {
                prop_assert_eq!(v2, value);
                prop_assert_eq!(c2, again.len());
            }
            other => return Err(TestCaseError::fail(format!("re-parse: {other:?}"))),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in socksish_bytes(600)) {
        decode_encode_decode(&bytes, v4::Request::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, v4::Reply::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, Greeting::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, MethodSelection::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, Credentials::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, AuthReply::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, Request::parse, |v, o| v.encode(o))?;
        decode_encode_decode(&bytes, Reply::parse, |v, o| v.encode(o))?;
        if let Ok((h, data)) = parse_udp(&bytes) {
            prop_assert_eq!(h.encoded_len() + data.len(), bytes.len());
        }
    }

    #[test]
    fn parsers_never_panic_on_any_byte(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = v4::Request::parse(&bytes);
        let _ = v4::Reply::parse(&bytes);
        let _ = Greeting::parse(&bytes);
        let _ = Credentials::parse(&bytes);
        let _ = Request::parse(&bytes);
        let _ = Reply::parse(&bytes);
        let _ = parse_udp(&bytes);
    }

    #[test]
    fn server_survives_arbitrary_chunks(
        bytes in socksish_bytes(700),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        methods in prop_oneof![Just(MethodPolicy::NoAuth), Just(MethodPolicy::Password), Just(MethodPolicy::NoAuthOrPassword)],
        allow in (any::<bool>(), any::<bool>()),
        refuse in prop::option::of(any::<u8>().prop_map(ReplyCode::from_u8)),
        password in prop::option::of(prop::collection::vec(0u8..=3, 0..3)),
    ) {
        let config = ServerConfig { methods, allow_v4: allow.0, allow_v5: allow.1, handshake_timeout: TIMEOUT };
        let decider = Decider { password, refuse, ..Decider::default() };
        let chunks = chunk(&bytes, &cuts);
        let t = drive_server(config, &chunks, &decider);
        prop_assert!(t.leftover.len() <= bytes.len());
        if t.error.is_some() {
            prop_assert_eq!(t.state, Some(State::Closed));
        }
        prop_assert!(t.events.len() <= 2);
        // Whatever the chunking, the same events and replies come out.
        let once = drive_server(config, &[&bytes], &decider);
        prop_assert_eq!(t, once);
    }

    #[test]
    fn client_survives_arbitrary_chunks(
        bytes in socksish_bytes(600),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        version in prop_oneof![Just(ClientVersion::V4), Just(ClientVersion::V4a), Just(ClientVersion::V5)],
        command in prop_oneof![Just(Command::Connect), Just(Command::Bind)],
        creds in prop::option::of(credentials()),
    ) {
        let now = t0();
        let config = ClientConfig {
            version,
            credentials: creds,
            command,
            target: TargetAddr::Ip(sa("192.0.2.1:80")),
            timeout: TIMEOUT,
        };
        let mut c = match Client::new(now, config) {
            Ok(c) => c,
            Err(e) => {
                // Only a SOCKS4 user name with a NUL is refused for this IPv4 target.
                prop_assert_eq!(e, triproxy_socks::ClientError::UserIdContainsNul);
                prop_assert_ne!(version, ClientVersion::V5);
                return Ok(());
            }
        };
        let mut buf = Vec::new();
        for piece in chunk(&bytes, &cuts) {
            buf.extend_from_slice(piece);
            match c.handle_input(now, &buf) {
                Ok(n) => {
                    prop_assert!(n <= buf.len());
                    buf.drain(..n);
                }
                Err(_) => {
                    prop_assert_eq!(c.state(), ClientState::Closed);
                    break;
                }
            }
            while c.poll_transmit().is_some() {}
            while c.poll_event().is_some() {}
        }
        let _ = c.handle_timeout(now + TIMEOUT);
        prop_assert_eq!(c.poll_timeout(), None);
    }
}

// ------------------------------------------------------------- split handshakes

#[derive(Debug, Clone)]
enum Flavor {
    V4,
    V4a,
    V5NoAuth,
    V5Password,
}

fn handshake() -> impl Strategy<Value = (Flavor, Vec<u8>, Vec<u8>, ServerConfig)> {
    let flavor = prop_oneof![
        Just(Flavor::V4),
        Just(Flavor::V4a),
        Just(Flavor::V5NoAuth),
        Just(Flavor::V5Password)
    ];
    (
        flavor,
        target(),
        command(),
        credentials(),
        prop::collection::vec(1u8..=255, 0..=255),
        prop::collection::vec(any::<u8>(), 0..32),
    )
        .prop_map(|(flavor, target, command, creds, user, data)| {
            let mut bytes = Vec::new();
            let mut methods = MethodPolicy::NoAuth;
            match flavor {
                Flavor::V4 | Flavor::V4a => {
                    let destination = match (&flavor, target) {
                        (Flavor::V4a, TargetAddr::Domain(d, _)) => v4::Destination::Domain(d),
                        (Flavor::V4a, _) => {
                            v4::Destination::Domain(DomainName::new(b"fallback.test").unwrap())
                        }
                        (_, TargetAddr::Ip(SocketAddr::V4(sa))) if !v4::is_v4a_marker(*sa.ip()) => {
                            v4::Destination::Ip(*sa.ip())
                        }
                        _ => v4::Destination::Ip(Ipv4Addr::new(192, 0, 2, 1)),
                    };
                    let cmd = if command == Command::Bind {
                        v4::Command::Bind
                    } else {
                        v4::Command::Connect
                    };
                    v4::Request {
                        command: cmd,
                        port: 80,
                        destination,
                        user_id: user.into_iter().collect(),
                    }
                    .encode(&mut bytes);
                }
                Flavor::V5NoAuth => {
                    Greeting::new(&[Method::NO_AUTH]).encode(&mut bytes);
                    Request { command, target }.encode(&mut bytes);
                }
                Flavor::V5Password => {
                    methods = MethodPolicy::Password;
                    Greeting::new(&[Method(0x80), Method::PASSWORD]).encode(&mut bytes);
                    creds.encode(&mut bytes);
                    Request { command, target }.encode(&mut bytes);
                }
            }
            bytes.extend_from_slice(&data);
            (flavor, bytes, data, server_config(methods))
        })
}

proptest! {
    #[test]
    fn split_handshake_same_transcript(
        (flavor, bytes, data, config) in handshake(),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let decider = Decider::default();
        let once = drive_server(config, &[&bytes], &decider);
        prop_assert_eq!(once.error, None, "{:?}", flavor);
        prop_assert_eq!(once.state, Some(State::Established));
        prop_assert!(!once.events.is_empty());
        prop_assert_eq!(&once.leftover, &data, "pipelined data handed back");
        let split = drive_server(config, &chunk(&bytes, &cuts), &decider);
        prop_assert_eq!(split, once);
        // Byte by byte too.
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        prop_assert_eq!(drive_server(config, &pieces, &decider), drive_server(config, &[&bytes], &decider));
    }
}
