//! Session transcripts for the limits checked when a request is granted: `connlim` and
//! the traffic quotas refuse with code 10 (SOCKS5 REP 2, SOCKS4 91, HTTP 503) before any
//! connect, and a granted session hands its quota to the relay.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{drain, policy_for, session_of as session};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::bandlim::Direction;
use triproxy_policy::connlim::{ConnLimits, ConnRule};
use triproxy_policy::period::Period;
use triproxy_policy::quota::{CountDirection, Quotas, Rule, MIB};
use triproxy_policy::service::{FrontProtocol, ServicePolicy};
use triproxy_policy::session::{Intent, Session};
use triproxy_wire::LogCode;

fn any() -> Ace {
    Ace::parse(Action::Allow, &[]).unwrap()
}

fn with_limits(
    protocol: FrontProtocol,
    connlimits: ConnLimits,
    quotas: Quotas,
) -> Arc<ServicePolicy> {
    let base = policy_for(protocol, 1080, &["iponly"], &[], &[]);
    let mut p = ServicePolicy::clone(&base);
    p.connlimits = Arc::new(connlimits);
    p.quotas = Arc::new(quotas);
    Arc::new(p)
}

const SOCKS5_CONNECT: [u8; 13] = [5, 1, 0, 5, 1, 0, 1, 10, 0, 0, 1, 0, 80];

/// A SOCKS5 CONNECT to 10.0.0.1:80 up to the decision: the reply bytes and intents.
fn socks5_request(p: &Arc<ServicePolicy>, t0: Instant) -> (Session, Vec<u8>, Vec<Intent>) {
    let mut s = session(Arc::clone(p), t0);
    s.handle_input(t0, &SOCKS5_CONNECT);
    let (out, intents) = drain(&mut s);
    (s, out, intents)
}

fn refusal(intents: &[Intent]) -> Option<(LogCode, String)> {
    intents.iter().find_map(|i| match i {
        Intent::Log(r) => Some((
            r.code,
            r.reason.as_ref().map(|r| r.to_string()).unwrap_or_default(),
        )),
        _ => None,
    })
}

#[test]
fn connlim_2_0_refuses_the_third_parallel_session_with_code_10() {
    let mut limits = ConnLimits::new();
    limits.push(ConnRule::limit(2, Duration::ZERO, any()));
    let p = with_limits(FrontProtocol::Socks, limits, Quotas::new());
    let t0 = Instant::now();
    let (first, _, intents) = socks5_request(&p, t0);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
    let (second, _, intents) = socks5_request(&p, t0);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );

    let (_third, out, intents) = socks5_request(&p, t0);
    assert_eq!(out[..2], [5, 0], "method selection");
    assert_eq!(out[2..4], [5, 2], "REP 2: not allowed by ruleset");
    assert!(!intents.iter().any(|i| matches!(i, Intent::Connect { .. })));
    let (code, reason) = refusal(&intents).unwrap();
    assert_eq!(code, LogCode::LIMIT_EXCEEDED);
    assert_eq!(
        reason,
        "connection limit 1 reached (at most 2 parallel connections)"
    );
    assert!(matches!(intents.last(), Some(Intent::Close)));

    // A session that ends gives its slot back.
    drop(first);
    let (_fourth, _, intents) = socks5_request(&p, t0);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
    drop(second);
}

#[test]
fn a_finished_session_frees_its_slot_even_before_it_is_dropped() {
    let mut limits = ConnLimits::new();
    limits.push(ConnRule::limit(1, Duration::ZERO, any()));
    let p = with_limits(FrontProtocol::Socks, limits, Quotas::new());
    let t0 = Instant::now();
    let (mut first, _, _) = socks5_request(&p, t0);
    first.handle_client_eof(t0);
    assert!(first.is_done());
    let (_second, _, intents) = socks5_request(&p, t0);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
}

#[test]
fn an_exhausted_quota_refuses_a_new_session_with_code_10() {
    let mut quotas = Quotas::new();
    quotas
        .push(Rule::count(
            CountDirection::In,
            3,
            "web",
            Period::Daily,
            1,
            any(),
        ))
        .unwrap();
    let p = with_limits(FrontProtocol::Socks, ConnLimits::new(), quotas);
    let t0 = Instant::now();

    // The first session gets the quota, and the relay spends it.
    let (s, _, intents) = socks5_request(&p, t0);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
    assert!(!s.quota().is_empty());
    assert!(s.quota().charge(Direction::ToClient, MIB - 1).is_ok());
    assert!(s.quota().charge(Direction::ToClient, 1).is_err());

    let (_s2, out, intents) = socks5_request(&p, t0);
    assert_eq!(out[2..4], [5, 2]);
    let (code, reason) = refusal(&intents).unwrap();
    assert_eq!(code, LogCode::LIMIT_EXCEEDED);
    assert_eq!(reason, "traffic quota 3 (countin, 1 MiB per day) reached");
}

#[test]
fn socks4_and_http_refusals_for_code_10() {
    let mut limits = ConnLimits::new();
    limits.push(ConnRule::limit(1, Duration::from_secs(60), any()));
    let p = with_limits(FrontProtocol::Socks, limits, Quotas::new());
    let t0 = Instant::now();
    let v4 = [4, 1, 0, 80, 10, 0, 0, 1, 0];
    let mut s = session(Arc::clone(&p), t0);
    s.handle_input(t0, &v4);
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
    let mut s = session(Arc::clone(&p), t0);
    s.handle_input(t0, &v4);
    let (out, intents) = drain(&mut s);
    assert_eq!(out[..2], [0, 91], "SOCKS4: request rejected");
    assert_eq!(refusal(&intents).unwrap().0, LogCode::LIMIT_EXCEEDED);

    let mut limits = ConnLimits::new();
    limits.push(ConnRule::limit(1, Duration::ZERO, any()));
    let p = with_limits(FrontProtocol::Http, limits, Quotas::new());
    let connect = b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n";
    let mut held = session(Arc::clone(&p), t0);
    held.handle_input(t0, connect);
    drain(&mut held);
    let mut s = session(Arc::clone(&p), t0);
    s.handle_input(t0, connect);
    let (out, intents) = drain(&mut s);
    assert!(
        out.starts_with(b"HTTP/1.1 503 "),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(refusal(&intents).unwrap().0, LogCode::LIMIT_EXCEEDED);
}

#[test]
fn without_rules_nothing_is_held() {
    let p = policy_for(FrontProtocol::Socks, 1080, &["iponly"], &[], &[]);
    let t0 = Instant::now();
    let (s, _, intents) = socks5_request(&p, t0);
    assert!(matches!(intents[..], [Intent::Connect { .. }]));
    assert!(s.quota().is_empty());
}
