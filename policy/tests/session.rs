//! Session engine transcripts: a client's bytes in, the exact replies, intents and log
//! codes out, with virtual time. Nothing here touches a socket or a clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{drain, policy_for, session_of as session};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::service::{FrontProtocol, ServicePolicy};
use triproxy_policy::session::{
    BindError, ConnectError, Intent, RelayEnd, RelayPlan, RelayReport, ResolveError, Session,
};
use triproxy_wire::LogCode;

fn policy(auth: &[&str], acl: &[(Action, &[&str])], users: &[&str]) -> Arc<ServicePolicy> {
    policy_for(FrontProtocol::Socks, 1080, auth, acl, users)
}

fn log_code(intents: &[Intent]) -> Option<LogCode> {
    intents.iter().find_map(|i| match i {
        Intent::Log(r) => Some(r.code),
        _ => None,
    })
}

fn connect_v4(ip: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = vec![5, 1, 0, 1];
    v.extend_from_slice(&ip);
    v.extend_from_slice(&port.to_be_bytes());
    v
}

#[test]
fn no_auth_connect_relay_and_log() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    let mut input = vec![5, 1, 0];
    input.extend(connect_v4([10, 0, 0, 1], 80));
    input.extend_from_slice(b"early data");
    let used = s.handle_input(t0, &input);
    assert_eq!(&input[used..], b"early data");
    let (out, intents) = drain(&mut s);
    assert_eq!(out, [5, 0]);
    let [Intent::Connect { addrs, timeout, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(addrs[..], ["10.0.0.1:80".parse().unwrap()]);
    assert_eq!(*timeout, Duration::from_secs(15));
    s.handle_connected(
        t0,
        "10.0.0.9:4321".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
    );
    let (out, intents) = drain(&mut s);
    // BND is the outgoing socket's address (RFC 1928 section 6).
    assert_eq!(out, [5, 0, 0, 1, 10, 0, 0, 9, 0x10, 0xE1]);
    assert!(matches!(intents[..], [Intent::Relay(_)]));
    assert_eq!(
        s.poll_timeout(),
        None,
        "no handshake deadline while relaying"
    );
    s.handle_relay_end(
        t0 + Duration::from_millis(1500),
        RelayReport {
            bytes_in: 300,
            bytes_out: 10,
            end: RelayEnd::Clean,
        },
    );
    let (_, intents) = drain(&mut s);
    let Some(Intent::Log(rec)) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!(rec.code, LogCode::SUCCESS);
    assert_eq!(rec.service, "SOCK5");
    assert_eq!(rec.text, "CONNECT 10.0.0.1:80");
    assert_eq!((rec.bytes_in, rec.bytes_out), (300, 10));
    assert_eq!(rec.remote, Some("10.0.0.1:80".parse().unwrap()));
    assert_eq!(rec.duration, Duration::from_millis(1500));
    assert!(matches!(intents[1], Intent::Close));
    assert!(s.is_done());
}

#[test]
fn strong_auth_rejects_at_rfc1929_with_codes_5_and_6() {
    let p = policy(&["strong"], &[], &["alice:CL:secret"]);
    for (user, pass, code) in [
        (&b"alice"[..], &b"wrong"[..], LogCode::BAD_CL_PASSWORD),
        (b"mallory", b"secret", LogCode::USER_NOT_FOUND),
    ] {
        let t0 = Instant::now();
        let mut s = session(Arc::clone(&p), t0);
        let mut input = vec![5, 2, 0, 2, 1, user.len() as u8];
        input.extend_from_slice(user);
        input.push(pass.len() as u8);
        input.extend_from_slice(pass);
        input.extend(connect_v4([10, 0, 0, 1], 80));
        s.handle_input(t0, &input);
        let (out, intents) = drain(&mut s);
        assert_eq!(out, [5, 2, 1, 1], "method 2, then RFC 1929 failure");
        assert_eq!(log_code(&intents), Some(code));
        assert!(matches!(intents.last(), Some(Intent::Close)));
    }
}

#[test]
fn strong_auth_without_password_method_is_refused_with_code_4() {
    let t0 = Instant::now();
    let mut s = session(policy(&["strong"], &[], &["alice:secret"]), t0);
    s.handle_input(t0, &[5, 1, 0]);
    let (out, intents) = drain(&mut s);
    assert_eq!(out, [5, 0xFF]);
    assert_eq!(log_code(&intents), Some(LogCode::NO_USERNAME));
}

#[test]
fn strong_auth_success_then_acl_by_user() {
    let p = policy(
        &["strong"],
        &[(Action::Allow, &["alice"]), (Action::Deny, &["*"])],
        &["alice:CL:secret", "bob:CL:pw"],
    );
    for (user, pass, reply, code) in [
        (&b"alice"[..], &b"secret"[..], None, None),
        (b"bob", b"pw", Some(2u8), Some(LogCode::ACL_DENIED)),
    ] {
        let t0 = Instant::now();
        let mut s = session(Arc::clone(&p), t0);
        let mut input = vec![5, 1, 2, 1, user.len() as u8];
        input.extend_from_slice(user);
        input.push(pass.len() as u8);
        input.extend_from_slice(pass);
        input.extend(connect_v4([10, 0, 0, 1], 80));
        s.handle_input(t0, &input);
        let (out, intents) = drain(&mut s);
        assert_eq!(
            out[..4],
            [5, 2, 1, 0],
            "RFC 1929 success for a right password"
        );
        match reply {
            None => assert!(matches!(intents[..], [Intent::Connect { .. }])),
            Some(rep) => {
                assert_eq!(out[4..6], [5, rep]);
                assert_eq!(log_code(&intents), code);
                let Some(Intent::Log(rec)) = intents.first() else {
                    panic!()
                };
                assert_eq!(rec.user.as_deref(), Some("bob"));
            }
        }
    }
}

#[test]
fn acl_no_match_is_code_3_and_socks4_gets_91() {
    let t0 = Instant::now();
    let mut s = session(
        policy(&["iponly"], &[(Action::Allow, &["*", "192.0.2.0/24"])], &[]),
        t0,
    );
    s.handle_input(t0, &[4, 1, 0, 80, 10, 0, 0, 1, b'u', 0]);
    let (out, intents) = drain(&mut s);
    assert_eq!(out, [0, 91, 0, 0, 0, 0, 0, 0]);
    assert_eq!(log_code(&intents), Some(LogCode::ACL_NO_MATCH));
    let Some(Intent::Log(rec)) = intents.first() else {
        panic!()
    };
    assert_eq!(rec.service, "SOCK4");
    assert_eq!(rec.user.as_deref(), Some("u"));
}

#[test]
fn auth_none_skips_the_acl() {
    let t0 = Instant::now();
    let mut s = session(policy(&["none"], &[(Action::Deny, &["*"])], &[]), t0);
    s.handle_input(t0, &[5, 1, 0]);
    s.handle_input(t0, &connect_v4([10, 0, 0, 1], 80));
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
}

#[test]
fn domain_is_resolved_then_each_address_checked() {
    let t0 = Instant::now();
    let mut s = session(
        policy(
            &["iponly"],
            &[
                (Action::Deny, &["*", "*", "10.0.0.2"]),
                (Action::Allow, &[]),
            ],
            &[],
        ),
        t0,
    );
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, 11];
    req.extend_from_slice(b"example.org");
    req.extend_from_slice(&443u16.to_be_bytes());
    s.handle_input(t0, &req);
    let (_, intents) = drain(&mut s);
    let [Intent::Resolve { host, port }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!((host.as_str(), *port), (Some("example.org"), 443));
    let addrs = [
        "10.0.0.2:443".parse().unwrap(),
        "10.0.0.3:443".parse().unwrap(),
    ];
    s.handle_resolved(t0, Ok(&addrs));
    let (_, intents) = drain(&mut s);
    let [Intent::Connect { addrs: allowed, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(allowed[..], addrs[1..], "the denied address is never tried");
    s.handle_connect_failed(t0, ConnectError::Refused);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 5], "REP 5 connection refused");
    assert_eq!(log_code(&intents), Some(LogCode::CONNECT_FAILED));
}

#[test]
fn no_outgoing_socket_is_rep_1_and_code_11() {
    // Out of descriptors: a general failure to the client, and 3proxy's socket() code in
    // the log rather than "connect failed" (13), so the admin sees the proxy's own limit.
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 2, 0, 80]);
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
    s.handle_connect_failed(t0, ConnectError::NoSocket);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 1], "REP 1 general failure");
    assert_eq!(log_code(&intents), Some(LogCode::SOCKET_FAILED));
}

#[test]
fn unresolvable_name_is_rep_4_and_code_100() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    let mut req = vec![5, 1, 0, 5, 1, 0, 3, 3];
    req.extend_from_slice(b"x.y");
    req.extend_from_slice(&[0, 80]);
    s.handle_input(t0, &req);
    drain(&mut s);
    s.handle_resolved(t0, Err(ResolveError::NotFound));
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..4], [5, 4, 0, 1], "REP 4 host unreachable, BND zeros");
    assert_eq!(log_code(&intents), Some(LogCode::HOST_NOT_FOUND));
}

#[test]
fn bind_listens_replies_twice_and_relays() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 0]);
    let (_, intents) = drain(&mut s);
    let [Intent::Bind { ip }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(
        ip.to_string(),
        "127.0.0.1",
        "listens where the client reached us"
    );
    s.handle_bind_listening(t0, "127.0.0.1:40001".parse().unwrap());
    let (out, intents) = drain(&mut s);
    assert_eq!(
        out,
        [5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x41],
        "first reply: where to connect"
    );
    let [Intent::AcceptPeer { deadline }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(*deadline, t0 + Duration::from_secs(180)); // 3proxy CONNECTION_SHORT
    s.handle_bind_accepted(
        t0,
        "127.0.0.1:40001".parse().unwrap(),
        "127.0.0.1:50123".parse().unwrap(),
    );
    let (out, intents) = drain(&mut s);
    assert_eq!(
        out,
        [5, 0, 0, 1, 127, 0, 0, 1, 0xc3, 0xcb],
        "second reply: the peer"
    );
    assert!(matches!(intents[..], [Intent::Relay(_)]));
    s.handle_relay_end(
        t0,
        RelayReport {
            bytes_in: 1,
            bytes_out: 2,
            end: RelayEnd::Clean,
        },
    );
    let (_, intents) = drain(&mut s);
    let Some(Intent::Log(rec)) = intents.first() else {
        panic!()
    };
    assert_eq!(
        (rec.code, rec.text.as_str()),
        (LogCode::SUCCESS, "BIND 127.0.0.1:0")
    );
}

#[test]
fn bind_refuses_a_peer_from_another_address_and_times_out() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[4, 2, 0, 0, 10, 0, 0, 7, 0]);
    drain(&mut s);
    s.handle_bind_listening(t0, "127.0.0.1:40001".parse().unwrap());
    let (out, _) = drain(&mut s);
    assert_eq!(out[..2], [0, 90]);
    s.handle_bind_accepted(
        t0,
        "127.0.0.1:40001".parse().unwrap(),
        "10.0.0.8:1".parse().unwrap(),
    );
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [0, 91], "second reply refuses");
    assert_eq!(log_code(&intents), Some(LogCode(470)));

    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[5, 1, 0, 5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
    drain(&mut s);
    s.handle_bind_listening(t0, "127.0.0.1:40001".parse().unwrap());
    drain(&mut s);
    s.handle_bind_failed(t0, BindError::Timeout);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 6], "REP 6: timed out");
    assert_eq!(log_code(&intents), Some(LogCode(460)));
}

#[test]
fn bind_is_checked_by_the_acl_as_bind() {
    let t0 = Instant::now();
    let mut s = session(
        policy(
            &["iponly"],
            &[(Action::Allow, &["*", "*", "*", "*", "CONNECT"])],
            &[],
        ),
        t0,
    );
    s.handle_input(t0, &[5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 0]);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[2..4], [5, 2]);
    assert_eq!(log_code(&intents), Some(LogCode::ACL_NO_MATCH));
}

#[test]
fn udp_associate_opens_a_relay_socket_and_names_it_in_the_reply() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    let (out, intents) = drain(&mut s);
    assert_eq!(out, [5, 0], "only the method selection so far");
    let Some(Intent::Associate { ip }) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!(
        *ip,
        "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
        "the address the client reached"
    );
    s.handle_associated(t0, "127.0.0.1:40000".parse().unwrap());
    let (out, intents) = drain(&mut s);
    assert_eq!(
        out,
        [5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40],
        "BND = the relay socket"
    );
    assert!(
        matches!(intents.first(), Some(Intent::RelayDatagrams(_))),
        "{intents:?}"
    );
}

#[test]
fn udp_associate_is_decided_by_the_acl_with_udpassoc() {
    let t0 = Instant::now();
    let acl: &[(Action, &[&str])] = &[(Action::Allow, &["*", "*", "*", "*", "CONNECT"])];
    let mut s = session(policy(&["iponly"], acl, &[]), t0);
    s.handle_input(t0, &[5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[2..4], [5, 2], "not allowed: REP 2");
    assert_eq!(log_code(&intents), Some(LogCode::ACL_NO_MATCH));
}

#[test]
fn handshake_deadline_fires_once_and_moves_on() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[5, 1]);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(30));
    s.handle_timeout(t0 + Duration::from_secs(29));
    assert_eq!(s.poll_timeout(), Some(deadline), "not yet");
    assert!(drain(&mut s).1.is_empty());
    s.handle_timeout(deadline);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    assert_eq!(log_code(&intents), Some(LogCode::RELAY_IDLE_TIMEOUT));
    assert_eq!(
        s.poll_timeout(),
        None,
        "a fired deadline is gone (no busy loop)"
    );
}

#[test]
fn eof_during_handshake_is_logged_once() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, &[5, 2, 0]);
    s.handle_client_eof(t0);
    s.handle_client_eof(t0);
    let (_, intents) = drain(&mut s);
    assert_eq!(
        intents
            .iter()
            .filter(|i| matches!(i, Intent::Log(_)))
            .count(),
        1
    );
    assert_eq!(log_code(&intents), Some(LogCode(441)));
}

#[test]
fn one_byte_pieces_give_the_same_transcript() {
    let mut whole = vec![5, 1, 0];
    whole.extend(connect_v4([10, 0, 0, 1], 80));
    let t0 = Instant::now();
    let mut a = session(policy(&["iponly"], &[], &[]), t0);
    assert_eq!(a.handle_input(t0, &whole), whole.len());
    let expect = drain(&mut a);
    let mut b = session(policy(&["iponly"], &[], &[]), t0);
    let mut held = Vec::new();
    for byte in &whole {
        held.push(*byte);
        let used = b.handle_input(t0, &held);
        held.drain(..used);
    }
    assert!(held.is_empty());
    assert_eq!(drain(&mut b), expect);
}

/// Bandwidth pipes are chosen when the tunnel is established, by the user the ACL saw and
/// the address reached; a paced tunnel is relayed buffered, an unpaced one keeps the
/// service's mode.
#[test]
fn bandwidth_pipes_are_chosen_per_tunnel_and_force_buffered() {
    use triproxy_policy::bandlim::{BandLimits, Bucket, Direction, Rule, RuleKind};
    use triproxy_policy::service::RelayMode;
    let rule = |direction, rate: Option<u64>, fields: &[&str]| Rule {
        direction,
        kind: match rate {
            Some(r) => RuleKind::Limit(Arc::new(Bucket::new(r))),
            None => RuleKind::Exempt,
        },
        matches: Ace::parse(Action::Allow, fields).unwrap(),
    };
    let mut limits = BandLimits::new();
    limits.push(rule(Direction::ToClient, None, &["boss"]));
    limits.push(rule(
        Direction::ToClient,
        Some(1_000_000),
        &["*", "*", "10.0.0.0/8"],
    ));
    limits.push(rule(
        Direction::ToTarget,
        Some(64_000),
        &["*", "*", "*", "25"],
    ));
    let mut p = (*policy(&["strong"], &[], &["alice:CL:secret", "boss:CL:pw"])).clone();
    p.bandlimits = Arc::new(limits);
    let p = Arc::new(p);

    // (user, target, port) -> (to-client rate, to-target rate)
    for (user, ip, port, down, up) in [
        ("alice", [10, 0, 0, 1], 80, Some(1_000_000), None),
        ("alice", [192, 168, 1, 1], 80, None, None),
        ("alice", [10, 0, 0, 1], 25, Some(1_000_000), Some(64_000)),
        ("boss", [10, 0, 0, 1], 25, None, Some(64_000)),
    ] {
        let t0 = Instant::now();
        let mut s = session(Arc::clone(&p), t0);
        let pass: &[u8] = if user == "boss" { b"pw" } else { b"secret" };
        let mut input = vec![5, 1, 2, 1, user.len() as u8];
        input.extend_from_slice(user.as_bytes());
        input.push(pass.len() as u8);
        input.extend_from_slice(pass);
        input.extend(connect_v4(ip, port));
        s.handle_input(t0, &input);
        let (_, intents) = drain(&mut s);
        let [Intent::Connect { addrs, .. }] = &intents[..] else {
            panic!("{intents:?}")
        };
        s.handle_connected(t0, "127.0.0.1:40000".parse().unwrap(), addrs[0]);
        let (_, intents) = drain(&mut s);
        let [Intent::Relay(RelayPlan {
            mode,
            to_client,
            to_target,
            ..
        })] = &intents[..]
        else {
            panic!("{intents:?}")
        };
        let case = format!("{user} {ip:?}:{port}");
        assert_eq!(to_client.slowest_rate_bits(), down, "{case}");
        assert_eq!(to_target.slowest_rate_bits(), up, "{case}");
        let want = if down.is_none() && up.is_none() {
            RelayMode::ZeroCopy
        } else {
            RelayMode::Buffered
        };
        assert_eq!(*mode, want, "{case}");
    }
}

/// A policy whose one `allow` entry chains through `parents` (lines after `parent`).
fn chained_policy(parents: &[&[&str]]) -> Arc<ServicePolicy> {
    use triproxy_policy::parent::ParentHop;
    let mut ace = Ace::parse(Action::Allow, &[]).unwrap();
    for words in parents {
        ace.push_parent(ParentHop::parse(words).unwrap()).unwrap();
    }
    let mut p = ServicePolicy::new(1080);
    p.acl = vec![ace].into();
    Arc::new(p)
}

#[test]
fn a_chain_negotiates_each_hop_and_keeps_the_targets_first_bytes() {
    let t0 = Instant::now();
    let policy = chained_policy(&[
        &["1000", "socks5", "127.0.0.2", "1081", "bob", "pw"],
        &["1000", "socks4", "127.0.0.3", "1082"],
    ]);
    let mut s = session(policy, t0);
    let mut input = vec![5, 1, 0];
    input.extend(connect_v4([10, 0, 0, 1], 80));
    s.handle_input(t0, &input);
    let (out, intents) = drain(&mut s);
    assert_eq!(out, [5, 0]);
    // Only the first hop is connected to.
    let [Intent::Connect { addrs, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(&addrs[..], &["127.0.0.2:1081".parse().unwrap()]);
    s.handle_connected(
        t0,
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.2:1081".parse().unwrap(),
    );
    // Hop 1 (SOCKS5 with credentials): greeting offering no-auth and password.
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty(), "no reply to the client yet");
    assert!(
        matches!(&intents[..], [Intent::SendToTarget { bytes }, Intent::ReadTarget { .. }]
        if bytes == &[5, 2, 0, 2]),
        "{intents:?}"
    );
    // It picks password: the RFC 1929 request goes out.
    assert_eq!(s.handle_target_input(t0, &[5, 2]), 2);
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(&intents[..], [Intent::SendToTarget { bytes }, Intent::ReadTarget { .. }]
        if bytes == b"\x01\x03bob\x02pw"),
        "{intents:?}"
    );
    assert_eq!(s.handle_target_input(t0, &[1, 0]), 2);
    // Hop 1 is asked for hop 2's address.
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(&intents[..], [Intent::SendToTarget { bytes }, Intent::ReadTarget { .. }]
        if bytes == &[5, 1, 0, 1, 127, 0, 0, 3, 0x04, 0x3A]),
        "{intents:?}"
    );
    // A partial reply is not consumed.
    assert_eq!(s.handle_target_input(t0, &[5, 0, 0]), 0);
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(intents[..], [Intent::ReadTarget { .. }]),
        "read more: {intents:?}"
    );
    assert_eq!(
        s.handle_target_input(t0, &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        10
    );
    // Hop 2 (SOCKS4) is asked for the destination.
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(&intents[..], [Intent::SendToTarget { bytes }, Intent::ReadTarget { .. }]
        if bytes == &[4, 1, 0, 80, 10, 0, 0, 1, 0]),
        "{intents:?}"
    );
    // Its reply and the target's banner in one read: the banner is left to the driver.
    let reply_and_banner = [0, 90, 0, 0, 0, 0, 0, 0, b'2', b'2', b'0'];
    assert_eq!(s.handle_target_input(t0, &reply_and_banner), 8);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 0], "success for the client");
    assert!(matches!(intents[..], [Intent::Relay(_)]), "{intents:?}");
    s.handle_relay_end(
        t0,
        RelayReport {
            bytes_in: 3,
            bytes_out: 0,
            end: RelayEnd::Clean,
        },
    );
    let (_, intents) = drain(&mut s);
    let Some(Intent::Log(record)) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!((record.code, record.hops), (LogCode::SUCCESS, 2));
    assert_eq!(record.remote, Some("127.0.0.2:1081".parse().unwrap()));
}

#[test]
fn a_silent_parent_times_out_and_a_refusing_one_passes_its_reply_on() {
    let t0 = Instant::now();
    let start = |s: &mut Session| {
        let mut input = vec![5, 1, 0];
        input.extend(connect_v4([10, 0, 0, 1], 80));
        s.handle_input(t0, &input);
        drain(s);
        s.handle_connected(
            t0,
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.2:1081".parse().unwrap(),
        );
        drain(s);
    };
    let policy = chained_policy(&[&["1000", "socks5", "127.0.0.2", "1081"]]);
    let mut s = session(Arc::clone(&policy), t0);
    start(&mut s);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(
        deadline,
        t0 + Duration::from_secs(60),
        "3proxy's CHAIN timeout"
    );
    s.handle_timeout(deadline - Duration::from_millis(1));
    assert!(!s.is_done());
    s.handle_timeout(deadline);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 6], "TTL expired");
    assert_eq!(log_code(&intents), Some(LogCode(52)));

    let mut s = session(Arc::clone(&policy), t0);
    start(&mut s);
    assert_eq!(s.handle_target_input(t0, &[5, 0]), 2);
    drain(&mut s);
    s.handle_target_input(t0, &[5, 4, 0, 1, 0, 0, 0, 0, 0, 0]);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 4], "host unreachable, as the parent said");
    assert_eq!(log_code(&intents), Some(LogCode(64)));

    let mut s = session(policy, t0);
    start(&mut s);
    s.handle_target_closed(t0);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [5, 1]);
    assert_eq!(log_code(&intents), Some(LogCode(52)));
}

#[test]
fn bind_passes_over_an_entry_with_parents() {
    use triproxy_policy::parent::ParentHop;
    let t0 = Instant::now();
    let mut chained = Ace::parse(Action::Allow, &[]).unwrap();
    chained
        .push_parent(ParentHop::parse(&["1000", "socks5", "127.0.0.2", "1081"]).unwrap())
        .unwrap();
    let mut p = ServicePolicy::new(1080);
    p.acl = vec![chained, Ace::parse(Action::Deny, &[]).unwrap()].into();
    let mut s = session(Arc::new(p), t0);
    s.handle_input(t0, &[5, 1, 0, 5, 2, 0, 1, 10, 0, 0, 1, 0, 80]);
    let (out, intents) = drain(&mut s);
    // BIND skips the chained entry and meets the deny.
    assert_eq!(out[2..4], [5, 2]);
    assert_eq!(log_code(&intents), Some(LogCode::ACL_DENIED));
}

/// Runs a chained session to the first hop's connection, then feeds `parts` as the
/// parent's bytes (driver-style: unconsumed bytes are kept and re-offered); returns the
/// whole transcript and the bytes left unconsumed at the end.
fn chain_transcript(t0: Instant, parts: &[&[u8]]) -> (Vec<u8>, String, Vec<u8>) {
    let policy = chained_policy(&[
        &["1000", "socks5", "127.0.0.2", "1081", "bob", "pw"],
        &["1000", "connect+", "127.0.0.3", "3128"],
    ]);
    let mut s = session(policy, t0);
    let mut input = vec![5, 1, 0, 5, 1, 0, 3, 11];
    input.extend_from_slice(b"example.org");
    input.extend_from_slice(&80u16.to_be_bytes());
    s.handle_input(t0, &input);
    drain(&mut s);
    s.handle_resolved(t0, Ok(&["192.0.2.1:80".parse().unwrap()]));
    drain(&mut s);
    s.handle_connected(
        t0,
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.2:1081".parse().unwrap(),
    );
    // What went to the parent (as one byte stream: how it is cut into writes may depend
    // on the split), what went to the client, and every other intent.
    let (mut to_parent, mut to_client, mut others) = (Vec::new(), Vec::new(), String::new());
    let mut record = |s: &mut Session| {
        let (out, intents) = drain(s);
        to_client.extend_from_slice(&out);
        for i in intents {
            match i {
                Intent::SendToTarget { bytes } => to_parent.extend_from_slice(&bytes),
                // Asking for more bytes depends on the split.
                Intent::ReadTarget { .. } => {}
                other => others.push_str(&format!("{other:?}\n")),
            }
        }
    };
    record(&mut s);
    let mut held: Vec<u8> = Vec::new();
    for part in parts {
        held.extend_from_slice(part);
        let used = s.handle_target_input(t0, &held);
        assert!(used <= held.len());
        held.drain(..used);
        record(&mut s);
    }
    let log = format!("to client {to_client:?}\n{others}");
    (to_parent, log, held)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Whatever the parents answer, and however it is split, the session never panics,
    /// never consumes what it was not given, and decides the same way.
    #[test]
    fn chain_answers_split_anywhere_decide_the_same(
        noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        good_prefix in 0usize..5,
        split in 0usize..120,
    ) {
        // A valid start (method, auth, reply, then the CONNECT head) cut at some point,
        // followed by arbitrary bytes.
        let valid: [&[u8]; 4] = [
            &[5, 2],
            &[1, 0],
            &[5, 0, 0, 1, 127, 0, 0, 3, 0x0c, 0x38],
            b"HTTP/1.1 200 OK\r\n\r\nbanner",
        ];
        let mut stream: Vec<u8> = valid.iter().take(good_prefix).flat_map(|p| p.iter().copied()).collect();
        stream.extend_from_slice(&noise);
        let cut = split.min(stream.len());
        let t0 = Instant::now();
        let (sent_whole, whole, held_whole) = chain_transcript(t0, &[&stream]);
        let (sent_parts, parts, held_parts) = chain_transcript(t0, &[&stream[..cut], &stream[cut..]]);
        proptest::prop_assert_eq!(&whole, &parts);
        if whole.contains("Relay") {
            // The target's first bytes are left to the driver, the same either way.
            proptest::prop_assert_eq!(held_whole, held_parts);
            proptest::prop_assert_eq!(sent_whole, sent_parts);
        } else {
            // A failed chain drops what it had not sent yet (and ignores later bytes):
            // one stream is a prefix of the other.
            let (short, long) = if sent_whole.len() <= sent_parts.len() {
                (&sent_whole, &sent_parts)
            } else {
                (&sent_parts, &sent_whole)
            };
            proptest::prop_assert!(long.starts_with(short));
        }
    }
}

#[test]
fn a_full_chain_answer_hands_the_banner_back() {
    let stream: Vec<u8> = [
        &[5u8, 2][..],
        &[1, 0],
        &[5, 0, 0, 1, 127, 0, 0, 3, 0x0c, 0x38],
        b"HTTP/1.1 200 OK\r\n\r\nbanner",
    ]
    .concat();
    let (sent, log, held) = chain_transcript(Instant::now(), &[&stream]);
    assert_eq!(held, b"banner");
    assert!(log.contains("Relay"), "{log}");
    let mut to_parent = vec![5, 2, 0, 2, 1, 3, b'b', b'o', b'b', 2, b'p', b'w'];
    to_parent.extend_from_slice(&[5, 1, 0, 1, 127, 0, 0, 3, 0x0c, 0x38]);
    // The connect+ hop is asked for the name.
    to_parent.extend_from_slice(b"CONNECT example.org:80 HTTP/1.1\r\nHost: example.org:80\r\n\r\n");
    assert_eq!(sent, to_parent);
}
