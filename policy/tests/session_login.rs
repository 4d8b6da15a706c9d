//! Session transcripts of the fronts that log in upstream (the mail proxies): the client's
//! request, the connect, the upstream phase through `SendToTarget`/`ReadTarget`, and the
//! relay with what is left on either side. Virtual time, no sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{drain, policy_for, session_of};
use std::time::{Duration, Instant};
use triproxy_policy::acl::Action;
use triproxy_policy::service::{FrontProtocol, MailOptions};
use triproxy_policy::session::Intent;
use triproxy_wire::LogCode;

fn pop3() -> FrontProtocol {
    FrontProtocol::Pop3(MailOptions::default())
}

#[test]
fn a_pop3_login_goes_through_the_upstream_phase_then_relays() {
    let t0 = Instant::now();
    let mut s = session_of(policy_for(pop3(), 110, &["iponly"], &[], &[]), t0);
    let (greeting, _) = drain(&mut s);
    assert!(greeting.starts_with(b"+OK"), "greeting first");
    let used = s.handle_input(t0, b"USER joe@127.0.0.1:1110\r\nPASS x\r\n");
    assert_eq!(used, 25, "USER consumed; PASS stays for the server");
    let (_, intents) = drain(&mut s);
    let Some(Intent::Connect { addrs, .. }) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!(addrs[0], "127.0.0.1:1110".parse().unwrap());
    s.handle_connected(t0, "127.0.0.1:40000".parse().unwrap(), addrs[0]);
    let (out, intents) = drain(&mut s);
    assert!(out.is_empty());
    let Some(Intent::ReadTarget { deadline }) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!(
        *deadline,
        t0 + Duration::from_secs(60),
        "STRING_LONG for the server"
    );
    let greeting = b"+OK real server\r\n+OK send PASS\r\n";
    let used = s.handle_target_input(t0, greeting);
    assert_eq!(
        used, 17,
        "the greeting is consumed, the answer to USER is not"
    );
    let (_, intents) = drain(&mut s);
    assert_eq!(
        intents.first(),
        Some(&Intent::SendToTarget {
            bytes: b"USER joe\r\n".to_vec()
        })
    );
    assert!(
        matches!(intents.get(1), Some(Intent::Relay(_))),
        "then the relay: {intents:?}"
    );
}

#[test]
fn a_refused_pop3_request_gets_err_and_the_code() {
    let t0 = Instant::now();
    let acl: &[(Action, &[&str])] = &[(Action::Deny, &["*"])];
    let mut s = session_of(policy_for(pop3(), 110, &["iponly"], acl, &[]), t0);
    drain(&mut s);
    s.handle_input(t0, b"USER joe@192.0.2.1\r\n");
    let (out, intents) = drain(&mut s);
    assert!(
        out.starts_with(b"-ERR"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let code = intents.iter().find_map(|i| match i {
        Intent::Log(r) => Some((r.code, r.service)),
        _ => None,
    });
    assert_eq!(code, Some((LogCode::ACL_DENIED, "POP3P")));
    assert!(matches!(intents.last(), Some(Intent::Close)));
}

#[test]
fn a_silent_server_ends_the_login_at_its_deadline() {
    let t0 = Instant::now();
    let mut s = session_of(policy_for(pop3(), 110, &["iponly"], &[], &[]), t0);
    drain(&mut s);
    s.handle_input(t0, b"USER joe@127.0.0.1:1110\r\n");
    drain(&mut s);
    s.handle_connected(
        t0,
        "127.0.0.1:40000".parse().unwrap(),
        "127.0.0.1:1110".parse().unwrap(),
    );
    drain(&mut s);
    let deadline = s.poll_timeout().unwrap();
    s.handle_timeout(deadline);
    let (out, intents) = drain(&mut s);
    assert!(
        out.starts_with(b"-ERR"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let code = intents.iter().find_map(|i| match i {
        Intent::Log(r) => Some(r.code),
        _ => None,
    });
    assert_eq!(code, Some(LogCode(621)));
    assert_eq!(s.poll_timeout(), None, "no busy loop after the end");
}

/// STLS before USER: the client's next bytes are a TLS ClientHello; its server name is
/// the target (on POP3's port), the hello is not consumed (it goes to the server as it
/// is), and the machine runs STLS with the server before the relay.
#[test]
fn stls_routes_by_the_client_hello_server_name() {
    let t0 = Instant::now();
    let hello = include_bytes!("../../proto/tls/tests/data/curl.bin");
    let mut s = session_of(policy_for(pop3(), 110, &["iponly"], &[], &[]), t0);
    drain(&mut s);
    let used = s.handle_input(t0, b"STLS\r\n");
    assert_eq!(used, 6);
    let (out, intents) = drain(&mut s);
    assert!(out.starts_with(b"+OK"), "{}", String::from_utf8_lossy(&out));
    assert!(intents.is_empty(), "waiting for the hello: {intents:?}");
    assert!(
        s.max_input() >= hello.len(),
        "the buffer may hold a whole hello"
    );
    // Half a hello: nothing yet, nothing consumed.
    assert_eq!(s.handle_input(t0, &hello[..hello.len() / 2]), 0);
    assert!(drain(&mut s).1.is_empty());
    assert_eq!(
        s.handle_input(t0, hello),
        0,
        "the hello stays for the server"
    );
    let (_, intents) = drain(&mut s);
    let Some(Intent::Resolve { host, port }) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!((host.as_str(), *port), (Some("example.test"), 110));
}
