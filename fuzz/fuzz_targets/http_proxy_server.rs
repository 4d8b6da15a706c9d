#![cfg_attr(fuzzing, no_main)]
//! The HTTP proxy server machine (`triproxy_http::ProxyServer`, the front of the `proxy`
//! service) fed an arbitrary client stream, once whole and once in chunks.
//!
//! Input: `flags, decision, split, stream...`. `flags` says whether the deadline fires at
//! the end; `decision` fixes the driver's answer to a request (grant, one of the refusals,
//! or no answer); `split` picks the chunking ([`triproxy_fuzz::chunks`]).
//!
//! Oracles: no panic; the transcript (bytes sent, requests, decisions, errors, final
//! state, bytes consumed and handed back) is the same for the whole stream and the chunked
//! one; a partial head is consumed whole, never more than `MAX_REQUEST_HEAD` bytes in all,
//! and nothing once the head is read; the consumed bytes of a request end with the empty
//! line of a head; every answer is one HTTP/1.1 response whose `Content-Length` is its
//! body's (407 with a Basic challenge), or exactly the 200 line; errors are codes 507-516,
//! answered with 400 except timeout and eof; a reported request has a method of at most 32
//! bytes, a target name of reg-name bytes without `%`, credentials without control
//! characters and a user without `:`, and a CONNECT request re-built by the CONNECT client
//! reads back as the same target and credentials; a deadline is reported exactly while the
//! head is read and fires at (not before) it.

use std::fmt::Write as _;
use std::time::Duration;
use triproxy_fuzz::http::{
    ConnectClient, ConnectConfig, ProxyEvent, ProxyRequest, ProxyServer, ProxyServerConfig,
    ProxyState, Refusal, MAX_METHOD_LEN, MAX_REQUEST_HEAD,
};
use triproxy_fuzz::wire::TargetAddr;
use triproxy_fuzz::{chunks, start, Input};

const TIMEOUT: Duration = Duration::from_secs(30);
const GRANTED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    sent: Vec<u8>,
    log: String,
    state: ProxyState,
    /// Bytes consumed and bytes the driver still holds, unless an error happened (what
    /// was consumed before an error depends on the reads).
    consumed: Option<(usize, Vec<u8>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Grant,
    Refuse(Refusal),
    Wait,
}

fn decision(b: u8) -> Decision {
    match b % 10 {
        0 => Decision::Wait,
        1 => Decision::Refuse(Refusal::BadRequest),
        2 => Decision::Refuse(Refusal::Forbidden),
        3 => Decision::Refuse(Refusal::AuthRequired),
        4 => Decision::Refuse(Refusal::Internal),
        5 => Decision::Refuse(Refusal::NotImplemented),
        6 => Decision::Refuse(Refusal::BadGateway),
        7 => Decision::Refuse(Refusal::Unavailable),
        8 => Decision::Refuse(Refusal::GatewayTimeout),
        _ => Decision::Grant,
    }
}

fn new_server() -> ProxyServer {
    ProxyServer::new(
        start(),
        ProxyServerConfig {
            head_timeout: TIMEOUT,
        },
    )
}

/// RFC 3986 `reg-name` bytes without `%`.
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b)
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// What the machine promises about a request it reports.
fn check_request(r: &ProxyRequest) {
    assert!(
        !r.method.is_empty() && r.method.len() <= MAX_METHOD_LEN,
        "method {:?}",
        r.method
    );
    assert_ne!(r.target.port(), 0, "port 0 in {:?}", r.target);
    if let TargetAddr::Domain(name, _) = &r.target {
        assert!(
            name.as_bytes().iter().all(|&b| is_host_byte(b)),
            "target name {name:?}"
        );
    }
    if let Some(c) = &r.credentials {
        assert!(!c.username.contains(&b':'), "colon in user {c:?}");
        assert!(
            !c.username.iter().chain(&c.password).any(|&b| is_ctl(b)),
            "control character in {c:?}"
        );
    }
    if r.connect {
        // The client side re-builds the request; the server reads it back the same.
        let client = ConnectClient::new(
            start(),
            ConnectConfig {
                target: r.target.clone(),
                credentials: r.credentials.clone(),
                timeout: TIMEOUT,
            },
        );
        let Some(bytes) = client.ok().and_then(|mut c| c.poll_transmit()) else {
            panic!("the CONNECT client refused {r:?}");
        };
        let mut again = new_server();
        assert_eq!(again.handle_input(start(), &bytes), Ok(bytes.len()));
        let Some(ProxyEvent::Request(back)) = again.poll_event() else {
            panic!("{bytes:02x?} read back as no request");
        };
        assert_eq!(
            (&back.target, &back.credentials),
            (&r.target, &r.credentials),
            "round trip through the CONNECT client"
        );
    }
}

/// A transmit is the 200 line or one complete error response.
fn check_transmit(bytes: &[u8], decision: Decision) {
    if bytes == GRANTED {
        return;
    }
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        panic!("not a response: {bytes:02x?}");
    };
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|s| s.parse::<u16>().ok());
    let Some(status) = status else {
        panic!("bad status line: {head:?}");
    };
    let fields: Vec<&str> = lines.collect();
    let length = format!("Content-Length: {}", body.len());
    assert!(fields.contains(&length.as_str()), "{text:?}");
    assert!(fields.contains(&"Connection: close"), "{text:?}");
    assert_eq!(
        fields.contains(&"Proxy-Authenticate: Basic realm=\"proxy\""),
        status == 407,
        "{text:?}"
    );
    if let Decision::Refuse(r) = decision {
        assert!(status == r.status() || status == 400, "{text:?}");
    } else {
        assert_eq!(status, 400, "{text:?}");
    }
}

fn drain(server: &mut ProxyServer, decision: Decision, sent: &mut Vec<u8>, log: &mut String) {
    loop {
        while let Some(t) = server.poll_transmit() {
            assert!(!t.is_empty(), "empty transmit");
            check_transmit(&t, decision);
            sent.extend_from_slice(&t);
        }
        let Some(ProxyEvent::Request(r)) = server.poll_event() else {
            break;
        };
        assert_eq!(server.state(), ProxyState::AwaitingDecision);
        check_request(&r);
        let _ = writeln!(
            log,
            "event {r:?} password {:02x?}",
            r.credentials.as_ref().map(|c| &c.password)
        );
        match decision {
            Decision::Grant => server.handle_granted(),
            Decision::Refuse(refusal) => server.handle_refused(refusal),
            Decision::Wait => {}
        }
        let _ = writeln!(log, "{decision:?}");
    }
    let expected = (server.state() == ProxyState::ReadingHead).then(|| start() + TIMEOUT);
    assert_eq!(server.poll_timeout(), expected, "in {:?}", server.state());
}

fn drive(decision: Decision, fire_timeout: bool, parts: &[&[u8]]) -> Transcript {
    let now = start();
    let mut server = new_server();
    let mut pending = Vec::new();
    let mut sent = Vec::new();
    let mut log = String::new();
    let mut consumed = Vec::new();
    let mut failed = false;
    for part in parts {
        pending.extend_from_slice(part);
        let before = server.state();
        match server.handle_input(now, &pending) {
            Ok(n) => {
                assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
                let after = server.state();
                if before != ProxyState::ReadingHead {
                    assert_eq!(n, 0, "consumed bytes after the head");
                } else if after == ProxyState::ReadingHead {
                    assert_eq!(n, pending.len(), "a partial head is consumed whole");
                }
                consumed.extend(pending.drain(..n));
                assert!(
                    consumed.len() <= MAX_REQUEST_HEAD,
                    "consumed {}",
                    consumed.len()
                );
                if before == ProxyState::ReadingHead && after == ProxyState::AwaitingDecision {
                    assert!(
                        consumed.ends_with(b"\n\n") || consumed.ends_with(b"\n\r\n"),
                        "consumed bytes do not end a head: {consumed:02x?}"
                    );
                }
            }
            Err(e) => {
                assert_eq!(
                    server.state(),
                    ProxyState::Closed,
                    "error {e:?} left it open"
                );
                let code = e.log_code().get();
                assert!((511..=516).contains(&code), "{e:?} code {code}");
                let _ = writeln!(log, "error {e:?} code {code}");
                failed = true;
            }
        }
        drain(&mut server, decision, &mut sent, &mut log);
    }
    if fire_timeout {
        let before = server.state();
        let early = server.handle_timeout(now + TIMEOUT - Duration::from_nanos(1));
        assert_eq!(early, None, "deadline fired early");
        let fired = server.handle_timeout(now + TIMEOUT);
        let _ = writeln!(log, "timeout {fired:?}");
        match fired {
            Some(e) => {
                assert_eq!(e.log_code().get(), 507);
                assert_eq!(server.state(), ProxyState::Closed);
                assert_eq!(server.poll_transmit(), None, "a timeout is answered");
                failed = true;
            }
            None => assert_eq!(server.state(), before),
        }
        drain(&mut server, decision, &mut sent, &mut log);
    }
    let state = server.state();
    let eof = server.handle_eof();
    if let Some(e) = eof {
        assert_eq!(e.log_code().get(), 508);
        assert_eq!(state, ProxyState::ReadingHead);
        failed = true;
    }
    let _ = writeln!(log, "eof {eof:?}");
    drain(&mut server, decision, &mut sent, &mut log);
    assert!(matches!(
        server.state(),
        ProxyState::Established | ProxyState::Closed
    ));
    assert_eq!(
        server.handle_input(now, b"CONNECT a:1 HTTP/1.1\r\n\r\n"),
        Ok(0),
        "input after the end"
    );
    Transcript {
        sent,
        log,
        state,
        consumed: (!failed).then_some((consumed.len(), pending)),
    }
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let fire_timeout = input.byte() & 1 != 0;
    let decision = decision(input.byte());
    let split = input.byte();
    let stream = input.rest();
    let whole = drive(decision, fire_timeout, &[stream]);
    if let Some((consumed, back)) = &whole.consumed {
        assert_eq!(
            consumed + back.len(),
            stream.len(),
            "consumed + handed back"
        );
        assert!(
            stream.ends_with(back),
            "handed-back bytes are not the end of the stream"
        );
    }
    let split = drive(decision, fire_timeout, &chunks(stream, split));
    assert_eq!(whole, split, "chunking changed the transcript");
});
