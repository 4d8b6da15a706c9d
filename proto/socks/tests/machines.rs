//! Server and client machines: against each other in memory, against hand-written bytes,
//! and under virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::*;
use std::time::Duration;
use triproxy_socks::client::{Client, ClientEvent, ClientState, ClientVersion, Refusal};
use triproxy_socks::server::{
    AuthVerdict, Command, MethodPolicy, Request, Server, ServerConfig, ServerEvent, State, Version,
};
use triproxy_socks::v4;
use triproxy_socks::v5::ReplyCode;
use triproxy_socks::{ClientError, ClientPhase, Credentials, Error};
use triproxy_wire::{DomainName, LogCode, TargetAddr};

fn ip(s: &str) -> TargetAddr {
    TargetAddr::Ip(sa(s))
}

fn name(n: &str, port: u16) -> TargetAddr {
    TargetAddr::Domain(DomainName::new(n.as_bytes()).unwrap(), port)
}

fn creds(u: &str, p: &str) -> Credentials {
    Credentials::new(u.as_bytes(), p.as_bytes()).unwrap()
}

fn request(r: &ServerTranscript) -> &Request {
    match r.events.last() {
        Some(ServerEvent::Request(req)) => req,
        other => panic!("no request event: {other:?}"),
    }
}

// ------------------------------------------------------------- client against server

#[test]
fn pair_v4_connect() {
    let out = run_pair(
        client_config(
            ClientVersion::V4,
            Command::Connect,
            ip("192.0.2.1:80"),
            Some(creds("alice", "ignored")),
        ),
        server_config(MethodPolicy::NoAuth),
        &Decider::default(),
        b"hello",
        b"world",
    );
    assert_eq!(out.client_error, None);
    assert_eq!(
        out.client_events,
        [ClientEvent::Granted {
            bound: ip("10.0.0.1:1000")
        }]
    );
    assert_eq!(out.client_state, ClientState::Established);
    let req = request(&out.server);
    assert_eq!(req.version, Version::V4);
    assert_eq!(req.target, ip("192.0.2.1:80"));
    assert_eq!(req.user_id.as_deref(), Some(&b"alice"[..]));
    assert_eq!(out.server.state, Some(State::Established));
    // Data after the handshake stays with each driver.
    assert_eq!(out.server.leftover, b"hello");
    assert_eq!(out.client_leftover, b"world");
}

#[test]
fn pair_v4a_domain() {
    let out = run_pair(
        client_config(
            ClientVersion::V4a,
            Command::Connect,
            name("example.org", 443),
            None,
        ),
        server_config(MethodPolicy::NoAuth),
        &Decider::default(),
        b"",
        b"",
    );
    assert_eq!(out.client_error, None);
    let req = request(&out.server);
    assert_eq!(
        (req.version, &req.target, &req.user_id),
        (Version::V4a, &name("example.org", 443), &None)
    );
    assert_eq!(out.client_state, ClientState::Established);
}

#[test]
fn pair_v4a_ip_target_is_plain_v4() {
    let out = run_pair(
        client_config(ClientVersion::V4a, Command::Connect, ip("1.2.3.4:5"), None),
        server_config(MethodPolicy::NoAuth),
        &Decider::default(),
        b"",
        b"",
    );
    assert_eq!(request(&out.server).version, Version::V4);
}

#[test]
fn pair_v5_no_auth_every_target_kind() {
    for target in [
        ip("192.0.2.1:80"),
        ip("[2001:db8::7]:8443"),
        name("example.com", 80),
    ] {
        let out = run_pair(
            client_config(ClientVersion::V5, Command::Connect, target.clone(), None),
            server_config(MethodPolicy::NoAuthOrPassword),
            &Decider::default(),
            b"GET /",
            b"HTTP/1.1 200",
        );
        assert_eq!(out.client_error, None);
        assert_eq!(
            out.client_events,
            [ClientEvent::Granted {
                bound: ip("10.0.0.1:1000")
            }]
        );
        let req = request(&out.server);
        assert_eq!(
            (req.version, req.command, &req.target, &req.user_id),
            (Version::V5, Command::Connect, &target, &None)
        );
        assert_eq!(out.server.leftover, b"GET /");
        assert_eq!(out.client_leftover, b"HTTP/1.1 200");
    }
}

#[test]
fn pair_v5_password_accepted() {
    let decider = Decider {
        password: Some(b"s3cret".to_vec()),
        ..Decider::default()
    };
    let out = run_pair(
        client_config(
            ClientVersion::V5,
            Command::Connect,
            ip("192.0.2.1:80"),
            Some(creds("alice", "s3cret")),
        ),
        server_config(MethodPolicy::Password),
        &decider,
        b"",
        b"",
    );
    assert_eq!(out.client_error, None);
    assert_eq!(out.client_state, ClientState::Established);
    assert_eq!(
        out.server.events[0],
        ServerEvent::Credentials(creds("alice", "s3cret"))
    );
    assert!(matches!(out.server.events[1], ServerEvent::Request(_)));
    assert_eq!(&out.server.sent[..4], &[5, 2, 1, 0]);
}

#[test]
fn pair_v5_password_rejected() {
    let decider = Decider {
        password: Some(b"right".to_vec()),
        ..Decider::default()
    };
    let out = run_pair(
        client_config(
            ClientVersion::V5,
            Command::Connect,
            ip("192.0.2.1:80"),
            Some(creds("alice", "wrong")),
        ),
        server_config(MethodPolicy::Password),
        &decider,
        b"",
        b"",
    );
    assert_eq!(
        out.client_error,
        Some(ClientError::AuthRejected { status: 1 })
    );
    assert_eq!(out.client_error.unwrap().log_code(), LogCode(56));
    assert_eq!(out.client_state, ClientState::Closed);
    assert_eq!(out.server.sent, [5, 2, 1, 1]);
    assert_eq!(out.server.state, Some(State::Closed));
    assert_eq!(out.server.events.len(), 1);
}

#[test]
fn pair_v5_server_prefers_no_auth() {
    let out = run_pair(
        client_config(
            ClientVersion::V5,
            Command::Connect,
            ip("192.0.2.1:80"),
            Some(creds("alice", "pw")),
        ),
        server_config(MethodPolicy::NoAuthOrPassword),
        &Decider::default(),
        b"",
        b"",
    );
    assert_eq!(out.client_state, ClientState::Established);
    assert_eq!(out.server.events.len(), 1, "no credentials exchanged");
}

#[test]
fn pair_v5_password_required_but_client_has_none() {
    let out = run_pair(
        client_config(
            ClientVersion::V5,
            Command::Connect,
            ip("192.0.2.1:80"),
            None,
        ),
        server_config(MethodPolicy::Password),
        &Decider::default(),
        b"",
        b"",
    );
    assert_eq!(out.server.error, Some(Error::NoAcceptableMethod));
    assert_eq!(out.server.error.unwrap().log_code(), LogCode::NO_USERNAME);
    assert_eq!(out.server.sent, [5, 0xff]);
    assert_eq!(
        out.client_error,
        Some(ClientError::NoAcceptableMethod { method: 0xff })
    );
    assert_eq!(out.client_error.unwrap().log_code(), LogCode(54));
}

#[test]
fn pair_bind_both_replies() {
    for version in [ClientVersion::V4, ClientVersion::V5] {
        let out = run_pair(
            client_config(version, Command::Bind, ip("203.0.113.9:0"), None),
            server_config(MethodPolicy::NoAuth),
            &Decider::default(),
            b"up",
            b"down",
        );
        assert_eq!(out.client_error, None, "{version:?}");
        assert_eq!(
            out.client_events,
            [
                ClientEvent::Granted {
                    bound: ip("10.0.0.1:1000")
                },
                ClientEvent::BindPeer {
                    peer: ip("203.0.113.9:2000")
                }
            ],
            "{version:?}"
        );
        assert_eq!(request(&out.server).command, Command::Bind);
        assert_eq!(out.client_state, ClientState::Established);
        assert_eq!(out.server.leftover, b"up");
        assert_eq!(out.client_leftover, b"down");
    }
}

#[test]
fn pair_udp_associate() {
    let out = run_pair(
        client_config(
            ClientVersion::V5,
            Command::UdpAssociate,
            ip("0.0.0.0:0"),
            None,
        ),
        server_config(MethodPolicy::NoAuth),
        &Decider {
            bound: sa("[2001:db8::53]:5353"),
            ..Decider::default()
        },
        b"",
        b"",
    );
    assert_eq!(
        out.client_events,
        [ClientEvent::Granted {
            bound: ip("[2001:db8::53]:5353")
        }]
    );
    assert_eq!(request(&out.server).command, Command::UdpAssociate);
    assert_eq!(out.server.state, Some(State::Established));
}

#[test]
fn pair_refusal_every_reply_code() {
    let codes = (1..=8u8)
        .map(ReplyCode::from_u8)
        .chain([ReplyCode::Other(9), ReplyCode::Other(0xff)]);
    for code in codes {
        let out = run_pair(
            client_config(ClientVersion::V5, Command::Connect, name("x.test", 1), None),
            server_config(MethodPolicy::NoAuth),
            &Decider {
                refuse: Some(code),
                ..Decider::default()
            },
            b"",
            b"",
        );
        assert_eq!(
            out.client_events,
            [ClientEvent::Refused {
                reply: Refusal::V5(code)
            }]
        );
        assert_eq!(out.client_error, None);
        assert_eq!(out.client_state, ClientState::Closed);
        assert_eq!(out.server.state, Some(State::Closed));
        // Failure replies carry BND 0.0.0.0:0.
        assert_eq!(
            &out.server.sent[2..],
            &[5, code.to_u8(), 0, 1, 0, 0, 0, 0, 0, 0]
        );
        let logged = ClientError::from(Refusal::V5(code)).log_code();
        assert_eq!(logged.get(), 60 + u16::from(code.to_u8().min(9)));
    }
    // SOCKS4 turns every refusal into CD 91.
    for code in [ReplyCode::NotAllowed, ReplyCode::ConnectionRefused] {
        let out = run_pair(
            client_config(ClientVersion::V4, Command::Connect, ip("1.2.3.4:1"), None),
            server_config(MethodPolicy::NoAuth),
            &Decider {
                refuse: Some(code),
                ..Decider::default()
            },
            b"",
            b"",
        );
        assert_eq!(
            out.client_events,
            [ClientEvent::Refused {
                reply: Refusal::V4(v4::ReplyCode::Rejected)
            }]
        );
        assert_eq!(out.server.sent, [0, 91, 0, 0, 0, 0, 0, 0]);
    }
}

// ------------------------------------------------------------- server against bytes

fn whole(config: ServerConfig, input: &[u8]) -> ServerTranscript {
    drive_server(config, &[input], &Decider::default())
}

const V5_CONNECT: [u8; 10] = [5, 1, 0, 1, 192, 0, 2, 1, 0, 80];

#[test]
fn pipelined_everything_in_one_write() {
    let mut input = vec![5, 2, 0, 2];
    input.extend_from_slice(&[1, 1, b'u', 1, b'p']);
    input.extend_from_slice(&V5_CONNECT);
    input.extend_from_slice(b"payload");
    let t = whole(server_config(MethodPolicy::Password), &input);
    assert_eq!(t.error, None);
    assert_eq!(t.events.len(), 2);
    assert_eq!(t.leftover, b"payload");
    assert_eq!(t.sent, [5, 2, 1, 0, 5, 0, 0, 1, 10, 0, 0, 1, 0x03, 0xe8]);
    // SOCKS4 too.
    let mut v4 = vec![4, 1, 0, 80, 1, 2, 3, 4, b'u', 0];
    v4.extend_from_slice(b"data");
    let t = whole(server_config(MethodPolicy::NoAuth), &v4);
    assert_eq!(t.leftover, b"data");
    assert_eq!(t.sent, [0, 90, 0x03, 0xe8, 10, 0, 0, 1]);
}

#[test]
fn one_byte_pieces_behave_like_whole_input() {
    let mut inputs = vec![
        [&[5, 1, 2, 1, 1, b'u', 0][..], &V5_CONNECT, b"rest"].concat(),
        [
            &[4, 2, 0, 80, 0, 0, 0, 1, b'i', b'd', 0][..],
            b"host\0",
            b"more",
        ]
        .concat(),
        vec![5, 1, 0, 5, 1, 0, 3, 0, 0, 80],
        vec![4, 7, 0],
    ];
    inputs.push([&[5, 1, 2][..], &[1, 0]].concat());
    for input in inputs {
        for methods in [MethodPolicy::NoAuth, MethodPolicy::Password] {
            let config = server_config(methods);
            let once = whole(config, &input);
            let pieces: Vec<&[u8]> = input.chunks(1).collect();
            let split = drive_server(config, &pieces, &Decider::default());
            assert_eq!(split, once, "{input:?}");
        }
    }
}

#[test]
fn error_replies() {
    let np = server_config(MethodPolicy::NoAuth);
    let pw = server_config(MethodPolicy::Password);
    let cases: Vec<(ServerConfig, Vec<u8>, Error, Vec<u8>)> = vec![
        // First byte neither 4 nor 5: no reply.
        (
            np,
            vec![0x16, 3, 1],
            Error::BadVersion { version: 0x16 },
            vec![],
        ),
        (
            np,
            b"GET / HTTP/1.1".to_vec(),
            Error::BadVersion { version: b'G' },
            vec![],
        ),
        // NMETHODS = 0.
        (np, vec![5, 0], Error::NoMethods, vec![5, 0xff]),
        // No acceptable method.
        (np, vec![5, 1, 2], Error::NoAcceptableMethod, vec![5, 0xff]),
        (
            pw,
            vec![5, 2, 0, 1],
            Error::NoAcceptableMethod,
            vec![5, 0xff],
        ),
        // RFC 1929: ULEN = 0 gets a failure status, a bad version nothing more.
        (
            pw,
            vec![5, 1, 2, 1, 0],
            Error::EmptyUsername,
            vec![5, 2, 1, 1],
        ),
        (
            pw,
            vec![5, 1, 2, 5, 1],
            Error::BadAuthVersion { version: 5 },
            vec![5, 2],
        ),
        // Requests.
        (
            np,
            vec![5, 1, 0, 5, 9, 0],
            Error::UnknownCommand { command: 9 },
            vec![5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            np,
            vec![5, 1, 0, 5, 1, 0, 2],
            Error::BadAddressType { atyp: 2 },
            vec![5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            np,
            vec![5, 1, 0, 5, 1, 0, 0],
            Error::BadAddressType { atyp: 0 },
            vec![5, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            np,
            vec![5, 1, 0, 5, 1, 0, 3, 0],
            Error::EmptyDomain,
            vec![5, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            np,
            vec![5, 1, 0, 4, 1, 0, 1],
            Error::BadRequestVersion { version: 4 },
            vec![5, 0],
        ),
        // SOCKS4: CD 91 for anything malformed.
        (
            np,
            // CD is judged once the 8-byte header is in (split-independent).
            vec![4, 3, 0, 80, 127, 0, 0, 1],
            Error::UnknownCommand { command: 3 },
            vec![0, 91, 0, 0, 0, 0, 0, 0],
        ),
        (
            np,
            [&[4, 1, 0, 80, 1, 1, 1, 1][..], &[b'x'; 256]].concat(),
            Error::FieldTooLong {
                field: triproxy_socks::Field::UserId,
            },
            vec![0, 91, 0, 0, 0, 0, 0, 0],
        ),
        (
            np,
            vec![4, 1, 0, 80, 0, 0, 0, 1, 0, 0],
            Error::EmptyDomain,
            vec![0, 91, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for (config, input, error, sent) in cases {
        let t = whole(config, &input);
        assert_eq!(t.error, Some(error), "{input:?}");
        assert_eq!(t.sent, sent, "{input:?}");
        assert_eq!(t.state, Some(State::Closed));
        assert!(t.events.is_empty());
    }
}

#[test]
fn disabled_versions_get_no_reply() {
    let mut config = server_config(MethodPolicy::NoAuth);
    config.allow_v4 = false;
    let t = whole(config, &[4, 1, 0, 80, 1, 2, 3, 4, 0]);
    assert_eq!(
        (t.error, t.sent.len()),
        (Some(Error::VersionDisabled { version: 4 }), 0)
    );
    assert_eq!(t.error.unwrap().log_code(), LogCode(401));
    let mut config = server_config(MethodPolicy::NoAuth);
    config.allow_v5 = false;
    let t = whole(config, &[5, 1, 0]);
    assert_eq!(
        (t.error, t.sent.len()),
        (Some(Error::VersionDisabled { version: 5 }), 0)
    );
    // The other version still works.
    assert_eq!(whole(config, &[4, 1, 0, 80, 1, 2, 3, 4, 0]).error, None);
}

#[test]
fn method_policy_matrix() {
    let cases = [
        (MethodPolicy::NoAuth, &[0u8][..], Some(0u8)),
        (MethodPolicy::NoAuth, &[2, 0], Some(0)),
        (MethodPolicy::NoAuth, &[2], None),
        (MethodPolicy::Password, &[0, 2], Some(2)),
        (MethodPolicy::Password, &[0, 1], None),
        (MethodPolicy::NoAuthOrPassword, &[2, 0], Some(0)),
        (MethodPolicy::NoAuthOrPassword, &[1, 2], Some(2)),
        (MethodPolicy::NoAuthOrPassword, &[1, 0x80], None),
    ];
    for (policy, offered, chosen) in cases {
        let mut input = vec![5, offered.len() as u8];
        input.extend_from_slice(offered);
        let t = whole(server_config(policy), &input);
        assert_eq!(
            t.sent,
            [5, chosen.unwrap_or(0xff)],
            "{policy:?} {offered:?}"
        );
        assert_eq!(t.error.is_some(), chosen.is_none());
        let want_state = match chosen {
            Some(2) => State::Authenticating,
            Some(_) => State::AwaitingRequest,
            None => State::Closed,
        };
        assert_eq!(t.state, Some(want_state));
    }
}

#[test]
fn never_answers_auth_success_before_the_verdict() {
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::Password));
    let input = [5, 1, 2, 1, 1, b'u', 1, b'p'];
    assert_eq!(s.handle_input(now, &input), Ok(input.len()));
    assert_eq!(s.poll_transmit().unwrap().as_bytes(), &[5, 2]);
    assert_eq!(s.poll_transmit(), None);
    assert!(matches!(s.poll_event(), Some(ServerEvent::Credentials(_))));
    assert_eq!(s.state(), State::AwaitingAuthVerdict);
    // More input waits for the verdict.
    assert_eq!(s.handle_input(now, &V5_CONNECT), Ok(0));
    // Decisions that do not fit the state are ignored.
    s.handle_granted(sa("1.1.1.1:1"));
    s.handle_refused(ReplyCode::NotAllowed);
    s.handle_bind_peer(sa("1.1.1.1:1"));
    assert_eq!(
        (s.poll_transmit(), s.state()),
        (None, State::AwaitingAuthVerdict)
    );
    s.handle_auth(AuthVerdict::Accepted);
    assert_eq!(s.poll_transmit().unwrap().as_bytes(), &[1, 0]);
    s.handle_auth(AuthVerdict::Rejected); // late, ignored
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.state(), State::AwaitingRequest);
}

#[test]
fn granted_addresses_per_version() {
    let now = t0();
    // SOCKS4 with an IPv6 bound address: 0.0.0.0 and the port.
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[4, 1, 0, 80, 1, 2, 3, 4, 0]).unwrap();
    assert_eq!(s.version(), Some(Version::V4));
    s.handle_granted(sa("[2001:db8::1]:4660"));
    assert_eq!(
        s.poll_transmit().unwrap().as_bytes(),
        &[0, 90, 0x12, 0x34, 0, 0, 0, 0]
    );
    // SOCKS5 with IPv6: ATYP 4.
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[5, 1, 0]).unwrap();
    s.handle_input(now, &V5_CONNECT).unwrap();
    s.poll_transmit();
    s.handle_granted(sa("[::1]:1"));
    let tx = s.poll_transmit().unwrap();
    assert_eq!(&tx[..4], &[5, 0, 0, 4]);
    assert_eq!(tx.len(), 22);
    // A "refusal" with Succeeded goes out as general failure.
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[5, 1, 0]).unwrap();
    s.handle_input(now, &V5_CONNECT).unwrap();
    s.poll_transmit();
    s.handle_refused(ReplyCode::Succeeded);
    assert_eq!(s.poll_transmit().unwrap()[1], 1);
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn bind_peer_can_be_refused() {
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[5, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0])
        .unwrap();
    s.poll_transmit();
    s.handle_granted(sa("10.0.0.1:5000"));
    assert_eq!(s.state(), State::AwaitingBindPeer);
    s.poll_transmit();
    s.handle_refused(ReplyCode::TtlExpired);
    assert_eq!(s.poll_transmit().unwrap()[1], 6);
    assert_eq!(s.state(), State::Closed);
}

#[test]
fn version_is_known_early() {
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    assert_eq!(s.version(), None);
    assert_eq!(s.handle_input(now, &[5]), Ok(0));
    assert_eq!(s.version(), Some(Version::V5));
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    assert_eq!(s.handle_input(now, &[4, 1, 0, 80, 0, 0, 0, 3, b'u']), Ok(0));
    assert_eq!(s.version(), Some(Version::V4a));
    // An unknown command is reported once the 8-byte header is in, never earlier, so the
    // version (here 4a) is known with the error whatever the chunking.
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    assert_eq!(s.handle_input(now, &[4, 9]), Ok(0));
    assert!(s.handle_input(now, &[4, 9, 0, 80, 0, 0, 0, 3]).is_err());
    assert_eq!(s.version(), Some(Version::V4a));
}

// ------------------------------------------------------------- time and end of input

#[test]
fn server_deadline_fires_once_and_disappears() {
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, now + TIMEOUT);
    assert_eq!(s.handle_timeout(deadline - Duration::from_millis(1)), None);
    assert_eq!(s.poll_timeout(), Some(deadline));
    s.handle_input(now, &[5, 1, 0]).unwrap(); // progress does not move it
    assert_eq!(s.poll_timeout(), Some(deadline));
    assert_eq!(s.handle_timeout(deadline), Some(Error::Timeout));
    assert_eq!(Error::Timeout.log_code(), LogCode(92));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.poll_transmit().unwrap().as_bytes(), &[5, 0]); // only the earlier reply
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.handle_timeout(deadline + TIMEOUT), None);
    assert_eq!(s.handle_input(now, &V5_CONNECT), Ok(0));
}

#[test]
fn server_has_no_deadline_while_deciding_or_established() {
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[4, 1, 0, 80, 1, 2, 3, 4, 0]).unwrap();
    assert_eq!(s.state(), State::AwaitingDecision);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_timeout(now + TIMEOUT * 2), None);
    s.handle_granted(sa("1.1.1.1:1"));
    assert_eq!((s.state(), s.poll_timeout()), (State::Established, None));
}

#[test]
fn virtual_clock_loop_terminates() {
    // A driver that sleeps until each poll_timeout and calls handle_timeout must not spin.
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    let mut clock = now;
    let mut fired = 0;
    for _ in 0..10 {
        let Some(t) = s.poll_timeout() else { break };
        assert!(t >= clock, "deadline went backwards");
        clock = t;
        if s.handle_timeout(clock).is_some() {
            fired += 1;
        }
    }
    assert_eq!((fired, s.poll_timeout()), (1, None));

    let mut c = Client::new(
        now,
        client_config(ClientVersion::V5, Command::Bind, ip("1.2.3.4:0"), None),
    )
    .unwrap();
    let first = c.poll_timeout().unwrap();
    c.handle_input(now + Duration::from_secs(1), &[5, 0])
        .unwrap();
    assert_eq!(
        c.poll_timeout(),
        Some(first),
        "same deadline until the first reply"
    );
    let later = now + Duration::from_secs(3);
    c.handle_input(later, &[5, 0, 0, 1, 1, 1, 1, 1, 0, 1])
        .unwrap();
    assert_eq!(
        c.poll_event(),
        Some(ClientEvent::Granted {
            bound: ip("1.1.1.1:1")
        })
    );
    let second = c.poll_timeout().unwrap();
    assert!(second > first, "the BIND peer gets a fresh deadline");
    assert_eq!(c.handle_timeout(second - Duration::from_millis(1)), None);
    assert_eq!(
        c.handle_timeout(second),
        Some(ClientError::Timeout {
            phase: ClientPhase::V5BindPeer
        })
    );
    assert_eq!((c.state(), c.poll_timeout()), (ClientState::Closed, None));
    assert_eq!(c.handle_timeout(second + TIMEOUT), None);
}

#[test]
fn client_timeout_codes_by_phase() {
    let now = t0();
    let cases = [
        (ClientVersion::V4, vec![], LogCode(42)),
        (ClientVersion::V5, vec![], LogCode(52)),
        (ClientVersion::V5, vec![5, 0], LogCode(57)),
    ];
    for (version, input, code) in cases {
        let mut c = Client::new(
            now,
            client_config(version, Command::Connect, ip("1.2.3.4:1"), None),
        )
        .unwrap();
        c.handle_input(now, &input).unwrap();
        let e = c.handle_timeout(now + TIMEOUT).unwrap();
        assert_eq!(e.log_code(), code, "{version:?} {input:?}");
    }
    let mut c = Client::new(
        now,
        client_config(
            ClientVersion::V5,
            Command::Connect,
            ip("1.2.3.4:1"),
            Some(creds("u", "p")),
        ),
    )
    .unwrap();
    c.handle_input(now, &[5, 2]).unwrap();
    assert_eq!(
        c.handle_eof(),
        Some(ClientError::Closed {
            phase: ClientPhase::V5Auth
        })
    );
    assert_eq!(c.handle_eof(), None);
}

#[test]
fn client_messages_on_the_wire() {
    let now = t0();
    let mut c = Client::new(
        now,
        client_config(
            ClientVersion::V5,
            Command::Connect,
            name("a.b", 80),
            Some(creds("u", "p")),
        ),
    )
    .unwrap();
    assert_eq!(c.poll_transmit().unwrap().as_bytes(), &[5, 2, 0, 2]);
    assert_eq!(c.handle_input(now, &[5, 2, 1]), Ok(2)); // the 3rd byte is a prefix
    assert_eq!(
        c.poll_transmit().unwrap().as_bytes(),
        &[1, 1, b'u', 1, b'p']
    );
    assert_eq!(c.handle_input(now, &[1, 0]), Ok(2));
    assert_eq!(
        c.poll_transmit().unwrap().as_bytes(),
        &[5, 1, 0, 3, 3, b'a', b'.', b'b', 0, 80]
    );
    let mut c4 = Client::new(
        now,
        client_config(ClientVersion::V4a, Command::Bind, name("h", 21), None),
    )
    .unwrap();
    assert_eq!(
        c4.poll_transmit().unwrap().as_bytes(),
        &[4, 2, 0, 21, 0, 0, 0, 1, 0, b'h', 0]
    );
}

#[test]
fn client_rejects_bad_answers() {
    let now = t0();
    let v5 = |creds: Option<Credentials>| {
        Client::new(
            now,
            client_config(ClientVersion::V5, Command::Connect, ip("1.2.3.4:1"), creds),
        )
        .unwrap()
    };
    let mut c = v5(None);
    let e = c.handle_input(now, &[4, 0]).unwrap_err();
    assert_eq!(e.log_code(), LogCode(53));
    // Method 2 chosen though we offered only 0.
    let e = v5(None).handle_input(now, &[5, 2]).unwrap_err();
    assert_eq!(e, ClientError::NoAcceptableMethod { method: 2 });
    let mut c = v5(None);
    let e = c.handle_input(now, &[5, 0, 5, 0, 0, 7]).unwrap_err();
    assert_eq!(e.log_code(), LogCode(58));
    assert_eq!(c.state(), ClientState::Closed);
    let e = v5(None)
        .handle_input(now, &[5, 0, 5, 0, 0, 3, 0])
        .unwrap_err();
    assert_eq!(e.log_code(), LogCode(59));
    let e = v5(Some(creds("u", "p")))
        .handle_input(now, &[5, 2, 7, 0])
        .unwrap_err();
    assert_eq!(e.log_code(), LogCode(55));
    let mut c4 = Client::new(
        now,
        client_config(ClientVersion::V4, Command::Connect, ip("1.2.3.4:1"), None),
    )
    .unwrap();
    let e = c4.handle_input(now, &[9, 90]).unwrap_err();
    assert_eq!(e.log_code(), LogCode(42));
    assert_eq!(
        ClientError::TargetNotSupported {
            version: ClientVersion::V4
        }
        .log_code(),
        LogCode(44)
    );
}

#[test]
fn server_eof() {
    let now = t0();
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[5, 1]).unwrap();
    assert_eq!(s.handle_eof(), Some(Error::Truncated));
    assert_eq!(s.state(), State::Closed);
    assert_eq!(Error::Truncated.log_code(), LogCode(441));
    let mut s = Server::new(now, server_config(MethodPolicy::NoAuth));
    s.handle_input(now, &[4, 1, 0, 80, 1, 2, 3, 4, 0]).unwrap();
    assert_eq!(s.handle_eof(), None);
    assert_eq!(s.state(), State::Closed);
}
