//! Session transcripts of the port mapper (3proxy `tcppm`): no handshake, the configured
//! target decided (auth, ACL operation `CONNECT`, limits) and connected before the client
//! sends anything, silence towards the client on every refusal, and 3proxy's log fields
//! (`TCPPM`, `%T` = the target host as configured).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{drain, policy_for, session_of as session};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::Action;
use triproxy_policy::service::{FrontProtocol, ServicePolicy};
use triproxy_policy::session::{
    ConnectError, Intent, LogRecord, RelayEnd, RelayReport, ResolveError,
};
use triproxy_wire::{DomainName, LogCode, TargetAddr};

fn port_map(target: TargetAddr, auth: &[&str], acl: &[(Action, &[&str])]) -> Arc<ServicePolicy> {
    policy_for(FrontProtocol::PortMap(target), 2525, auth, acl, &[])
}

fn ip_target() -> TargetAddr {
    TargetAddr::Ip("10.0.0.1:25".parse().unwrap())
}

fn name_target() -> TargetAddr {
    TargetAddr::Domain(DomainName::new(b"mail.example").unwrap(), 25)
}

/// The log record among `intents`, checking that the session closes after it.
fn record(intents: &[Intent]) -> &LogRecord {
    assert!(matches!(intents.last(), Some(Intent::Close)), "{intents:?}");
    intents
        .iter()
        .find_map(|i| match i {
            Intent::Log(r) => Some(r),
            _ => None,
        })
        .expect("a log record")
}

#[test]
fn connects_at_once_relays_and_logs_tcppm() {
    let t0 = Instant::now();
    let mut s = session(port_map(ip_target(), &["iponly"], &[]), t0);
    // Before any input: the connect is asked for, and nothing is said to the client.
    assert_eq!(s.poll_timeout(), None, "no handshake deadline");
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    let [Intent::Connect { addrs, timeout, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(addrs[..], ["10.0.0.1:25".parse().unwrap()]);
    assert_eq!(*timeout, Duration::from_secs(15));
    s.handle_connected(
        t0,
        "10.0.0.9:4321".parse().unwrap(),
        "10.0.0.1:25".parse().unwrap(),
    );
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty(), "no reply of any kind: {out:?}");
    let [Intent::Relay(plan)] = &intents[..] else {
        panic!("{intents:?}")
    };
    // 3proxy relays tcppm with CONNECTION_LONG.
    assert_eq!(plan.idle_timeout, Duration::from_secs(1800));
    s.handle_relay_end(
        t0 + Duration::from_millis(20),
        RelayReport {
            bytes_in: 7,
            bytes_out: 5,
            end: RelayEnd::Clean,
        },
    );
    let (_, intents) = drain(&mut s);
    let rec = record(&intents);
    assert_eq!(rec.code, LogCode::SUCCESS);
    assert_eq!(rec.service, "TCPPM");
    assert_eq!(rec.listen_port, 2525);
    assert_eq!(rec.text, "10.0.0.1");
    assert_eq!(rec.requested, Some(ip_target()));
    assert_eq!(rec.remote, Some("10.0.0.1:25".parse().unwrap()));
    assert_eq!(rec.user, None);
    assert_eq!((rec.bytes_in, rec.bytes_out), (7, 5));
}

#[test]
fn client_bytes_are_never_taken_by_the_front() {
    let t0 = Instant::now();
    let mut s = session(port_map(ip_target(), &["iponly"], &[]), t0);
    let _ = drain(&mut s);
    // Whatever the client sends while the connect runs is its data for the target: the
    // session consumes none of it (the driver keeps it for the relay).
    assert_eq!(s.handle_input(t0, b"EHLO x\r\n"), 0);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty() && intents.is_empty(), "{out:?} {intents:?}");
}

#[test]
fn a_name_is_resolved_for_each_connection() {
    let t0 = Instant::now();
    let p = port_map(name_target(), &["iponly"], &[]);
    for _ in 0..2 {
        let mut s = session(Arc::clone(&p), t0);
        let (out, intents) = drain(&mut s);
        assert!(out.is_empty());
        let [Intent::Resolve { host, port }] = &intents[..] else {
            panic!("{intents:?}")
        };
        assert_eq!((host.as_str(), *port), (Some("mail.example"), 25));
        let addrs = ["192.0.2.5:25".parse().unwrap()];
        s.handle_resolved(t0, Ok(&addrs));
        let (_, intents) = drain(&mut s);
        assert!(
            matches!(&intents[..], [Intent::Connect { addrs: a, .. }] if a[..] == addrs),
            "{intents:?}"
        );
        s.handle_connect_failed(t0, ConnectError::Refused);
        let (out, intents) = drain(&mut s);
        assert!(out.is_empty());
        let rec = record(&intents);
        assert_eq!(rec.code, LogCode::CONNECT_FAILED);
        assert_eq!(rec.text, "mail.example");
        assert_eq!(rec.service, "TCPPM");
    }
}

#[test]
fn an_unknown_name_is_code_100_without_a_word_to_the_client() {
    let t0 = Instant::now();
    let mut s = session(port_map(name_target(), &["iponly"], &[]), t0);
    let _ = drain(&mut s);
    s.handle_resolved(t0, Err(ResolveError::NotFound));
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    assert_eq!(record(&intents).code, LogCode::HOST_NOT_FOUND);
    assert!(s.is_done());
}

#[test]
fn acl_by_client_ip_and_operation_connect() {
    let t0 = Instant::now();
    // Denied by an entry for the client's address: code 1, before any connect.
    let p = port_map(
        ip_target(),
        &["iponly"],
        &[(Action::Deny, &["*", "127.0.0.1"])],
    );
    let mut s = session(p, t0);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    assert!(!intents.iter().any(|i| matches!(i, Intent::Connect { .. })));
    let rec = record(&intents);
    assert_eq!(rec.code, LogCode::ACL_DENIED);
    assert_eq!(rec.service, "TCPPM");
    // A port mapper's request is a CONNECT: an entry for HTTPS (an HTTP proxy's CONNECT)
    // does not match it (code 3), one for CONNECT does.
    let https = port_map(
        ip_target(),
        &["iponly"],
        &[(Action::Allow, &["*", "*", "*", "*", "HTTPS"])],
    );
    let (_, intents) = drain(&mut session(https, t0));
    assert_eq!(record(&intents).code, LogCode::ACL_NO_MATCH);
    let connect = port_map(
        ip_target(),
        &["iponly"],
        &[(
            Action::Allow,
            &["*", "127.0.0.1", "10.0.0.1", "25", "CONNECT"],
        )],
    );
    let (_, intents) = drain(&mut session(connect, t0));
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
}

#[test]
fn auth_that_needs_a_user_refuses_with_code_4() {
    // The port mapper has no way to carry credentials.
    let t0 = Instant::now();
    let mut s = session(port_map(ip_target(), &["strong"], &[]), t0);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    assert_eq!(record(&intents).code, LogCode::NO_USERNAME);
}

#[test]
fn an_ipv6_target_is_logged_without_brackets() {
    let t0 = Instant::now();
    let target = TargetAddr::Ip("[::1]:8080".parse().unwrap());
    let mut s = session(port_map(target, &["iponly"], &[]), t0);
    let _ = drain(&mut s);
    s.handle_connect_failed(t0, ConnectError::TimedOut);
    let (_, intents) = drain(&mut s);
    let rec = record(&intents);
    assert_eq!(rec.code, LogCode::CONNECT_FAILED);
    assert_eq!(rec.text, "::1");
}
