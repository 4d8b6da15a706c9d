//! Session engine transcripts for the HTTP proxy front (3proxy `proxy`): a client's request
//! head in, the exact responses, intents and log records out, with virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{drain, policy_for, session_of as session};
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::service::{FrontProtocol, ServicePolicy};
use triproxy_policy::session::{
    ConnectError, Intent, LogRecord, OriginMove, RelayEnd, RelayReport, ResolveError, Session,
};
use triproxy_wire::LogCode;

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

fn policy(auth: &[&str], acl: &[(Action, &[&str])], users: &[&str]) -> Arc<ServicePolicy> {
    policy_for(FrontProtocol::Http, 3128, auth, acl, users)
}

fn record(intents: &[Intent]) -> &LogRecord {
    intents
        .iter()
        .find_map(|i| match i {
            Intent::Log(r) => Some(r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no log record in {intents:?}"))
}

/// The status code of a response the proxy wrote.
fn status(out: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(out);
    let code = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .unwrap_or_else(|| panic!("not a response: {text:?}"));
    code.parse().unwrap()
}

/// A refused request: the answer's status, the log code, and the connection is closed.
fn refused(s: &mut Session) -> (u16, LogCode, String) {
    let (out, intents) = drain(s);
    assert!(matches!(intents.last(), Some(Intent::Close)), "{intents:?}");
    assert!(s.is_done());
    let text = String::from_utf8_lossy(&out).into_owned();
    assert!(text.contains("\r\nConnection: close\r\n"), "{text}");
    (status(&out), record(&intents).code, text)
}

#[test]
fn connect_relays_and_logs_as_proxy() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    let input = b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n\x16\x03\x01";
    let used = s.handle_input(t0, input);
    assert_eq!(
        &input[used..],
        b"\x16\x03\x01",
        "the first tunnel bytes are handed back"
    );
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty(), "no answer before the target is reached");
    let [Intent::Connect { addrs, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(addrs[..], ["10.0.0.1:443".parse().unwrap()]);
    s.handle_connected(
        t0,
        "10.0.0.9:4321".parse().unwrap(),
        "10.0.0.1:443".parse().unwrap(),
    );
    let (out, intents) = drain(&mut s);
    assert_eq!(out, ESTABLISHED);
    assert!(matches!(intents[..], [Intent::Relay(_)]));
    s.handle_relay_end(
        t0 + Duration::from_secs(2),
        RelayReport {
            bytes_in: 5000,
            bytes_out: 700,
            end: RelayEnd::Clean,
        },
    );
    let (_, intents) = drain(&mut s);
    let rec = record(&intents);
    assert_eq!(rec.service, "PROXY");
    assert_eq!(rec.code, LogCode::SUCCESS);
    assert_eq!(rec.listen_port, 3128);
    assert_eq!(rec.text, "CONNECT 10.0.0.1:443");
    assert_eq!((rec.bytes_in, rec.bytes_out), (5000, 700));
    assert!(s.is_done());
}

#[test]
fn basic_credentials_are_checked_with_3proxy_codes() {
    let p = policy(&["strong"], &[], &["alice:CL:secret"]);
    let t0 = Instant::now();
    // alice:secret, alice:wrong, bob:x in base64.
    for (auth, code) in [
        (None, LogCode::NO_USERNAME),
        (Some("YWxpY2U6d3Jvbmc="), LogCode::BAD_CL_PASSWORD),
        (Some("Ym9iOng="), LogCode::USER_NOT_FOUND),
    ] {
        let mut s = session(Arc::clone(&p), t0);
        let mut head = String::from("CONNECT 10.0.0.1:22 HTTP/1.1\r\n");
        if let Some(a) = auth {
            head.push_str(&format!("Proxy-Authorization: Basic {a}\r\n"));
        }
        head.push_str("\r\n");
        assert_eq!(s.handle_input(t0, head.as_bytes()), head.len());
        let (status, logged, text) = refused(&mut s);
        assert_eq!((status, logged), (407, code), "{auth:?}");
        assert!(
            text.contains("Proxy-Authenticate: Basic realm=\"proxy\"\r\n"),
            "{text}"
        );
    }
    let mut s = session(p, t0);
    let head =
        b"CONNECT 10.0.0.1:22 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n";
    s.handle_input(t0, head);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    assert!(
        matches!(intents[..], [Intent::Connect { .. }]),
        "{intents:?}"
    );
    s.handle_connected(
        t0,
        "10.0.0.9:4321".parse().unwrap(),
        "10.0.0.1:22".parse().unwrap(),
    );
    assert_eq!(drain(&mut s).0, ESTABLISHED);
    s.handle_relay_end(
        t0,
        RelayReport {
            bytes_in: 0,
            bytes_out: 0,
            end: RelayEnd::Clean,
        },
    );
    assert_eq!(record(&drain(&mut s).1).user.as_deref(), Some("alice"));
}

#[test]
fn credentials_longer_than_255_bytes_are_refused() {
    use base64::Engine as _;
    let p = policy(&["strong"], &[], &["alice:CL:secret"]);
    let t0 = Instant::now();
    let mut s = session(p, t0);
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:pw", "a".repeat(300)));
    let head =
        format!("CONNECT 10.0.0.1:22 HTTP/1.1\r\nProxy-Authorization: Basic {token}\r\n\r\n");
    s.handle_input(t0, head.as_bytes());
    let (status, code, _) = refused(&mut s);
    assert_eq!((status, code), (407, LogCode::USER_NOT_FOUND));
}

#[test]
fn acl_denial_is_403_and_no_match_asks_for_credentials() {
    let t0 = Instant::now();
    let p = policy(
        &["iponly"],
        &[
            (Action::Deny, &["*", "*", "10.0.0.1"]),
            (Action::Allow, &["*", "*", "10.0.0.2"]),
        ],
        &[],
    );
    let mut s = session(Arc::clone(&p), t0);
    s.handle_input(t0, b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n");
    let (status, code, _) = refused(&mut s);
    assert_eq!((status, code), (403, LogCode::ACL_DENIED));
    // No entry matches: 3proxy asks for credentials (an ACL may name users).
    let mut s = session(p, t0);
    s.handle_input(t0, b"CONNECT 10.0.0.3:443 HTTP/1.1\r\n\r\n");
    let (status, code, _) = refused(&mut s);
    assert_eq!((status, code), (407, LogCode::ACL_NO_MATCH));
}

#[test]
fn failures_reaching_the_target_are_502() {
    let t0 = Instant::now();
    let p = policy(&["iponly"], &[], &[]);
    let mut s = session(Arc::clone(&p), t0);
    s.handle_input(t0, b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n");
    drain(&mut s);
    s.handle_connect_failed(t0, ConnectError::Refused);
    let (status, code, _) = refused(&mut s);
    assert_eq!((status, code), (502, LogCode::CONNECT_FAILED));

    let mut s = session(p, t0);
    s.handle_input(t0, b"CONNECT nowhere.invalid:443 HTTP/1.1\r\n\r\n");
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(intents[..], [Intent::Resolve { .. }]),
        "{intents:?}"
    );
    s.handle_resolved(t0, Err(ResolveError::NotFound));
    let (status, code, _) = refused(&mut s);
    assert_eq!((status, code), (502, LogCode::HOST_NOT_FOUND));
}

/// Feeds origin bytes to a forwarding session, then writes what it has for the client.
fn origin_says(s: &mut Session, now: Instant, bytes: &[u8]) -> Vec<u8> {
    let space = s
        .forward_origin_space()
        .expect("the session reads the origin");
    space[..bytes.len()].copy_from_slice(bytes);
    s.forward_origin_read(now, bytes.len());
    let mut out = Vec::new();
    loop {
        let chunk = s.forward_to_client().to_vec();
        if chunk.is_empty() {
            return out;
        }
        s.forward_client_written(now, chunk.len());
        out.extend_from_slice(&chunk);
    }
}

/// Writes what a forwarding session has for the origin.
fn to_origin(s: &mut Session, now: Instant) -> String {
    let out = s.forward_to_origin().to_vec();
    s.forward_origin_written(now, out.len());
    String::from_utf8(out).unwrap()
}

#[test]
fn plain_requests_are_forwarded_request_by_request() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    let input = b"POST http://10.0.0.1:8080/x HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
    assert_eq!(
        s.handle_input(t0, input),
        input.len(),
        "the body is the session's"
    );
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    let [Intent::Forward, Intent::Connect { addrs, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(addrs[..], ["10.0.0.1:8080".parse().unwrap()]);
    s.handle_connected(t0, "10.0.0.9:4000".parse().unwrap(), addrs[0]);
    let sent = to_origin(&mut s, t0);
    assert!(
        sent.starts_with("POST /x HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n"),
        "{sent}"
    );
    assert!(
        sent.contains("Forwarded: for=\"127.0.0.1:50000\";by=\"127.0.0.1:3128\""),
        "{sent}"
    );
    assert_eq!(to_origin(&mut s, t0), "body");
    let out = origin_says(
        &mut s,
        t0,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    );
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n") && out.ends_with(b"ok"));
    let (_, intents) = drain(&mut s);
    let [Intent::Origin(OriginMove::Park(0)), Intent::Log(rec)] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(rec.code, LogCode::SUCCESS);
    assert_eq!(rec.text, "POST http://10.0.0.1:8080/x");
    assert_eq!(rec.bytes_in, out.len() as u64);
    assert!(!s.is_done(), "keep-alive");

    // The next request to the same origin reuses the pooled connection.
    let t1 = t0 + Duration::from_secs(1);
    let space = s.forward_client_space().unwrap();
    let next = b"GET http://10.0.0.1:8080/y HTTP/1.1\r\n\r\n";
    space[..next.len()].copy_from_slice(next);
    s.forward_client_read(t1, next.len());
    let (_, intents) = drain(&mut s);
    assert_eq!(intents, [Intent::Origin(OriginMove::Reuse(0))]);
    s.handle_origin_reused(t1, true);
    assert!(to_origin(&mut s, t1).starts_with("GET /y HTTP/1.1\r\n"));
    origin_says(&mut s, t1, b"HTTP/1.1 204 No Content\r\n\r\n");
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(
            intents[..],
            [Intent::Origin(OriginMove::Park(0)), Intent::Log(_)]
        ),
        "{intents:?}"
    );
}

#[test]
fn each_forwarded_request_meets_the_acl_with_its_operation() {
    let t0 = Instant::now();
    let acl: &[(Action, &[&str])] = &[
        (Action::Allow, &["*", "*", "*", "*", "HTTP_GET"]),
        (Action::Deny, &[]),
    ];
    let mut s = session(policy(&["iponly"], acl, &[]), t0);
    let get = b"GET http://10.0.0.1/ HTTP/1.1\r\n\r\n";
    s.handle_input(t0, get);
    let (_, intents) = drain(&mut s);
    assert!(
        matches!(intents[..], [Intent::Forward, Intent::Connect { .. }]),
        "{intents:?}"
    );
    s.handle_connected(
        t0,
        "10.0.0.9:4000".parse().unwrap(),
        "10.0.0.1:80".parse().unwrap(),
    );
    to_origin(&mut s, t0);
    origin_says(&mut s, t0, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    drain(&mut s);
    // A POST on the same connection is denied: 403, code 1, then the connection closes.
    let post = b"POST http://10.0.0.1/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    let space = s.forward_client_space().unwrap();
    space[..post.len()].copy_from_slice(post);
    s.forward_client_read(t0, post.len());
    let out = s.forward_to_client().to_vec();
    assert_eq!(status(&out), 403);
    s.forward_client_written(t0, out.len());
    let (_, intents) = drain(&mut s);
    assert_eq!(record(&intents).code, LogCode(1));
    assert_eq!(record(&intents).text, "POST http://10.0.0.1/");
    assert!(s.forward_take_client_shutdown());
    s.forward_client_read(t0, 0);
    let (_, intents) = drain(&mut s);
    assert!(matches!(intents.last(), Some(Intent::Close)), "{intents:?}");
    assert!(s.is_done());
}

#[test]
fn malformed_heads_are_400_and_logged_with_the_machine_code() {
    let t0 = Instant::now();
    for (head, code) in [
        (&b"CONNECT\r\n\r\n"[..], 512),
        (b"CONNECT 10.0.0.1:99999 HTTP/1.1\r\n\r\n", 514),
        (b"GET https://10.0.0.1/ HTTP/1.1\r\n\r\n", 513),
        // Not HTTP at all: refused on the first bytes, without waiting for an empty line.
        (b"\x05\x01\x00", 512),
        (b"\x16\x03\x01\x02\x00\x01", 512),
    ] {
        let mut s = session(policy(&["iponly"], &[], &[]), t0);
        assert_eq!(s.handle_input(t0, head), head.len());
        let (status, logged, _) = refused(&mut s);
        assert_eq!((status, logged), (400, LogCode(code)), "{head:?}");
    }
    // A head cut short is not answered; the client leaving is logged as 508 (3proxy's
    // "closed before the request").
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    s.handle_input(t0, b"CONNECT 10.0.0.1:80 HT");
    assert!(!s.is_done());
    s.handle_client_eof(t0);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    assert_eq!(record(&intents).code, LogCode(508));
    assert!(matches!(intents.last(), Some(Intent::Close)));
}

#[test]
fn an_incomplete_head_times_out_once() {
    let t0 = Instant::now();
    let mut s = session(policy(&["iponly"], &[], &[]), t0);
    assert_eq!(s.handle_input(t0, b"CONNECT 10.0.0.1:4"), 18);
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0 + Duration::from_secs(30));
    s.handle_timeout(deadline);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty(), "nobody is listening for an answer");
    assert_eq!(record(&intents).service, "PROXY");
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_head_in_one_byte_pieces_gives_the_same_transcript() {
    let head =
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\nUser-Agent: t\r\n\r\n";
    let t0 = Instant::now();
    let mut whole = session(policy(&["iponly"], &[], &[]), t0);
    assert_eq!(whole.handle_input(t0, head), head.len());
    let expect = drain(&mut whole);
    let mut pieces = session(policy(&["iponly"], &[], &[]), t0);
    let mut held = Vec::new();
    for byte in head {
        held.push(*byte);
        let used = pieces.handle_input(t0, &held);
        held.drain(..used);
    }
    assert!(held.is_empty());
    assert_eq!(drain(&mut pieces), expect);
    assert!(matches!(expect.1[..], [Intent::Resolve { .. }]));
}

#[test]
fn a_parent_chain_is_negotiated_before_the_200() {
    let t0 = Instant::now();
    let mut p = ServicePolicy::new(3128);
    p.protocol = FrontProtocol::Http;
    let mut ace = Ace::parse(Action::Allow, &["*"]).unwrap();
    ace.push_parent(
        triproxy_policy::parent::ParentHop::parse(&["1000", "socks5", "10.9.9.9", "1080"]).unwrap(),
    )
    .unwrap();
    p.acl = vec![ace].into();
    let mut s = session(Arc::new(p), t0);
    s.handle_input(t0, b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n");
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    let [Intent::Connect { addrs, .. }] = &intents[..] else {
        panic!("{intents:?}")
    };
    assert_eq!(addrs[..], ["10.9.9.9:1080".parse().unwrap()]);
    s.handle_connected(
        t0,
        "10.0.0.9:4321".parse().unwrap(),
        "10.9.9.9:1080".parse().unwrap(),
    );
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty(), "no 200 before the parent answered");
    assert!(
        matches!(
            intents[..],
            [Intent::SendToTarget { .. }, Intent::ReadTarget { .. }]
        ),
        "{intents:?}"
    );
    // Method selection, then the CONNECT reply, then the target's first bytes.
    let answer = [5, 0, 5, 0, 0, 1, 10, 0, 0, 1, 1, 187, b'h', b'i'];
    let used = s.handle_target_input(t0, &answer[..2]);
    assert_eq!(used, 2);
    drain(&mut s);
    let used = s.handle_target_input(t0, &answer[2..]);
    assert_eq!(&answer[2 + used..], b"hi");
    let (out, intents) = drain(&mut s);
    assert_eq!(out, ESTABLISHED);
    assert!(matches!(intents[..], [Intent::Relay(_)]), "{intents:?}");
}

#[test]
fn the_acl_sees_an_http_connect_as_https() {
    let t0 = Instant::now();
    let p = policy(
        &["iponly"],
        &[
            (Action::Deny, &["*", "*", "*", "443", "HTTPS"]),
            (Action::Deny, &["*", "*", "*", "22", "CONNECT"]),
            (Action::Allow, &["*"]),
        ],
        &[],
    );
    let mut s = session(Arc::clone(&p), t0);
    s.handle_input(t0, b"CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n");
    let (status, code, _) = refused(&mut s);
    assert_eq!((status, code), (403, LogCode::ACL_DENIED));
    // A rule for SOCKS `CONNECT` does not apply to the HTTP proxy.
    let mut s = session(p, t0);
    s.handle_input(t0, b"CONNECT 10.0.0.1:22 HTTP/1.1\r\n\r\n");
    assert!(matches!(drain(&mut s).1[..], [Intent::Connect { .. }]));
}
