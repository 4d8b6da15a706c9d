//! The `tlspr` machine: routing by SNI, check levels, `-h`, deadlines, refusals, and the
//! level 2 ServerHello check, driven by hand like a runtime would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::*;
use std::time::{Duration, Instant};
use triproxy_tls::hello::{TlsError, MAX_HELLO_LEN};
use triproxy_tls::proxy::{
    CheckLevel, ConfigError, Error, Event, ProxyConfig, Request, State, TlsProxy,
};
use triproxy_wire::{LogCode, TargetAddr};

const HTTP: &[u8] = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";

fn config(check: CheckLevel, default: Option<&str>) -> ProxyConfig {
    ProxyConfig {
        check,
        default_target: default.map(|t| t.parse().unwrap()),
        ..ProxyConfig::default()
    }
}

fn request(m: &mut TlsProxy) -> Request {
    match m.poll_event() {
        Some(Event::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

/// Offers `bytes` in chunks of `k`, re-offering the growing buffer like a driver.
fn feed(m: &mut TlsProxy, now: Instant, bytes: &[u8], k: usize) -> Result<(), Error> {
    let mut buf = Vec::new();
    for chunk in bytes.chunks(k) {
        buf.extend_from_slice(chunk);
        assert_eq!(m.handle_input(now, &buf)?, 0, "the hello is never consumed");
        if m.state() != State::ReadingHello {
            break;
        }
    }
    Ok(())
}

#[test]
fn routes_by_sni_to_port_p() {
    let now = t0();
    for &(name, bytes, sni) in REAL {
        let Some(sni) = sni else { continue };
        let mut m = TlsProxy::new(
            now,
            ProxyConfig {
                port: 8443,
                ..config(CheckLevel::RequireClientHello, None)
            },
        );
        feed(&mut m, now, bytes, bytes.len()).unwrap();
        let r = request(&mut m);
        assert_eq!(
            r.target,
            TargetAddr::try_from((sni, 8443)).unwrap(),
            "{name}"
        );
        assert_eq!(r.sni.unwrap().as_str(), Some(sni));
        assert!(r.hello.is_some());
        assert_eq!(m.state(), State::AwaitingDecision);
        assert_eq!(m.poll_timeout(), None, "no deadline while deciding");
        m.handle_connected(now);
        assert!(m.is_established());
        assert!(m.poll_transmit().is_none());
        assert!(m.poll_upstream_transmit().is_none());
    }
}

#[test]
fn log_texts_as_3proxy_writes_them() {
    let now = t0();
    let text = |bytes: &[u8], default: Option<&str>| {
        let mut m = TlsProxy::new(now, config(CheckLevel::AllowNonTls, default));
        feed(&mut m, now, bytes, bytes.len()).unwrap();
        let r = request(&mut m);
        assert_eq!(r.log_text, m.log_text());
        r.log_text
    };
    assert_eq!(text(CURL, None), "TLSv1.3 example.test h2");
    assert_eq!(text(OPENSSL, None), "TLSv1.3 example.test -");
    assert_eq!(text(OPENSSL_TLS12, None), "TLSv1.2 example.test h2");
    assert_eq!(
        text(OPENSSL_NOSNI, Some("backend.test:443")),
        "TLSv1.3 backend.test -"
    );
    assert_eq!(
        text(OPENSSL_NOSNI, Some("192.0.2.1:443")),
        "TLSv1.3 192.0.2.1 -"
    );
    assert_eq!(
        text(HTTP, Some("backend.test:80")),
        "NONEv0.0 backend.test -"
    );
}

#[test]
fn every_split_gives_the_same_request() {
    let now = t0();
    let mut whole = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    feed(&mut whole, now, CURL, CURL.len()).unwrap();
    let want = request(&mut whole);
    for k in 1..CURL.len() {
        let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
        feed(&mut m, now, CURL, k).unwrap();
        assert_eq!(request(&mut m), want, "k = {k}");
    }
    // Split into records too.
    let raw = records(message_of(CURL), 100);
    let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    feed(&mut m, now, &raw, 7).unwrap();
    assert_eq!(request(&mut m).target, want.target);
}

#[test]
fn default_target_fixes_the_destination_and_sni_stays_for_the_acl() {
    let now = t0();
    let mut m = TlsProxy::new(
        now,
        config(CheckLevel::RequireClientHello, Some("backend.test:4433")),
    );
    feed(&mut m, now, CURL, CURL.len()).unwrap();
    let r = request(&mut m);
    assert_eq!(r.target.to_string(), "backend.test:4433");
    assert_eq!(r.sni.unwrap().as_str(), Some("example.test"));
    assert_eq!(r.log_text, "TLSv1.3 example.test h2");
}

#[test]
fn no_sni() {
    let now = t0();
    let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    let e = feed(&mut m, now, OPENSSL_NOSNI, OPENSSL_NOSNI.len()).unwrap_err();
    assert_eq!(e, Error::NoTarget { hello_error: None });
    assert_eq!(e.log_code(), LogCode(100));
    assert_eq!(m.state(), State::Closed);
    assert_eq!(m.log_text(), "TLSv1.3 - -");

    let mut m = TlsProxy::new(
        now,
        config(CheckLevel::RequireClientHello, Some("backend.test:443")),
    );
    feed(&mut m, now, OPENSSL_NOSNI, 50).unwrap();
    let r = request(&mut m);
    assert_eq!(
        (r.target.to_string(), r.sni),
        ("backend.test:443".into(), None)
    );
}

#[test]
fn not_tls_by_check_level() {
    let now = t0();
    // Level 0: to the -h host, decided at the first byte.
    let mut m = TlsProxy::new(
        now,
        config(CheckLevel::AllowNonTls, Some("backend.test:80")),
    );
    m.handle_input(now, &HTTP[..1]).unwrap();
    let r = request(&mut m);
    assert_eq!(
        (r.target.to_string(), r.hello),
        ("backend.test:80".into(), None)
    );
    m.handle_refused(LogCode::ACL_DENIED);
    assert!(
        m.poll_transmit().is_none(),
        "no alert to a client that is not TLS"
    );

    // Level 0 without -h: nowhere to go.
    let mut m = TlsProxy::new(now, config(CheckLevel::AllowNonTls, None));
    let e = m.handle_input(now, HTTP).unwrap_err();
    assert!(matches!(
        e,
        Error::NoTarget {
            hello_error: Some(TlsError::NotTls { .. })
        }
    ));
    assert_eq!(e.log_code(), LogCode(100));

    // Level 1: refused with 303.
    let mut m = TlsProxy::new(
        now,
        config(CheckLevel::RequireClientHello, Some("backend.test:80")),
    );
    let e = m.handle_input(now, HTTP).unwrap_err();
    assert_eq!(e.log_code(), LogCode(303));
    assert_eq!(e.reason(), "client does not speak TLS");
    assert!(m.poll_transmit().is_none() && m.poll_event().is_none());
    assert_eq!(m.log_text(), "NONEv0.0 backend.test -");

    // A malformed hello at level 0 goes to -h too, at level 1 fails with its code.
    let mut bad = CURL.to_vec();
    bad[5] = 2;
    let mut m = TlsProxy::new(
        now,
        config(CheckLevel::AllowNonTls, Some("backend.test:443")),
    );
    m.handle_input(now, &bad).unwrap();
    assert_eq!(request(&mut m).log_text, "TLSv1.0 backend.test -");
    let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    assert_eq!(
        m.handle_input(now, &bad).unwrap_err().log_code(),
        LogCode(312)
    );
}

#[test]
fn error_codes() {
    use triproxy_tls::hello::{Field, SniError};
    let c = |e: TlsError| Error::ClientHello(e).log_code().get();
    let s = |e: TlsError| Error::ServerHello(e).log_code().get();
    assert_eq!(c(TlsError::NotTls { content_type: 71 }), 303);
    assert_eq!(c(TlsError::BadRecordVersion { major: 2 }), 303);
    assert_eq!(c(TlsError::TooLarge { len: 20000 }), 304);
    assert_eq!(c(TlsError::UnexpectedMessage { msg_type: 2 }), 312);
    assert_eq!(c(TlsError::TrailingData { len: 1 }), 314);
    assert_eq!(
        c(TlsError::Malformed {
            field: Field::Extensions
        }),
        320
    );
    assert_eq!(
        c(TlsError::Malformed {
            field: Field::ServerName
        }),
        322
    );
    assert_eq!(c(TlsError::BadSni(SniError::BadLabel)), 324);
    assert_eq!(c(TlsError::BadSni(SniError::TooLong { len: 300 })), 325);
    assert_eq!(s(TlsError::NotTls { content_type: 21 }), 343);
    assert_eq!(s(TlsError::UnexpectedMessage { msg_type: 1 }), 352);
    assert_eq!(Error::ClientClosed { received: 4 }.log_code().get(), 302);
    assert_eq!(Error::ClientTimeout { received: 5 }.log_code().get(), 305);
    assert_eq!(Error::ServerClosed { received: 0 }.log_code().get(), 342);
    assert_eq!(Error::ServerTimeout { received: 9 }.log_code().get(), 345);
    for e in [
        Error::ClientClosed { received: 1 },
        Error::NoTarget { hello_error: None },
    ] {
        assert!(!e.reason().is_empty() && !e.to_string().is_empty());
    }
}

#[test]
fn check_levels_3_and_4_are_refused_for_the_config_reader() {
    assert_eq!(CheckLevel::from_number(0), Ok(CheckLevel::AllowNonTls));
    assert_eq!(
        CheckLevel::from_number(1),
        Ok(CheckLevel::RequireClientHello)
    );
    for level in [3, 4, 9] {
        let e = CheckLevel::from_number(level).unwrap_err();
        assert_eq!(e, ConfigError::CertificateChecks { level });
        assert!(e.to_string().contains("not supported"));
    }
    assert_eq!(CheckLevel::RequireServerHello.number(), 2);
    let d = ProxyConfig::default();
    assert_eq!(
        (d.port, d.check, d.default_target),
        (443, CheckLevel::AllowNonTls, None)
    );
}

#[test]
fn refusals_send_an_alert_to_tls_clients() {
    let now = t0();
    for (code, alert) in [(1, 49), (10, 49), (100, 112), (13, 80), (0, 80)] {
        let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
        m.handle_input(now, CURL).unwrap();
        request(&mut m);
        m.handle_refused(LogCode(code));
        assert_eq!(m.state(), State::Closed);
        let t = m.poll_transmit().unwrap();
        assert_eq!(t.as_bytes(), [21, 3, 3, 0, 2, 2, alert], "code {code}");
        assert!(m.poll_transmit().is_none());
        // Nothing more happens.
        m.handle_connected(now);
        assert_eq!(m.state(), State::Closed);
    }
}

#[test]
fn hello_deadline_moves_with_progress_and_fires() {
    let t0 = t0();
    let secs = Duration::from_secs;
    let mut m = TlsProxy::new(t0, config(CheckLevel::RequireClientHello, None));
    assert_eq!(m.poll_timeout(), Some(t0 + secs(30)));
    assert_eq!(m.handle_timeout(t0 + secs(29)), None);
    m.handle_input(t0 + secs(10), &CURL[..3]).unwrap();
    assert_eq!(m.poll_timeout(), Some(t0 + secs(40)));
    // The same bytes again do not move it.
    m.handle_input(t0 + secs(20), &CURL[..3]).unwrap();
    assert_eq!(m.poll_timeout(), Some(t0 + secs(40)));
    assert_eq!(m.handle_timeout(t0 + secs(39)), None);
    let e = m.handle_timeout(t0 + secs(40)).unwrap();
    assert_eq!(e, Error::ClientTimeout { received: 3 });
    assert_eq!(e.log_code(), LogCode(302));
    assert_eq!(m.poll_timeout(), None, "no stuck deadline after it fired");

    // Level 0 with -h: a silent client goes to the -h host.
    let mut m = TlsProxy::new(
        t0,
        config(CheckLevel::AllowNonTls, Some("backend.test:443")),
    );
    assert_eq!(m.handle_timeout(t0 + secs(30)), None);
    assert_eq!(request(&mut m).target.to_string(), "backend.test:443");
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn client_eof() {
    let now = t0();
    let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    m.handle_input(now, &CURL[..200]).unwrap();
    let e = m.handle_eof().unwrap();
    assert_eq!(
        (e, e.log_code()),
        (Error::ClientClosed { received: 200 }, LogCode(305))
    );
    assert_eq!(m.handle_eof(), None);

    let mut m = TlsProxy::new(now, config(CheckLevel::AllowNonTls, None));
    assert_eq!(m.handle_eof(), Some(Error::NoTarget { hello_error: None }));

    let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    m.handle_input(now, CURL).unwrap();
    assert_eq!(
        m.handle_eof(),
        None,
        "while deciding, the driver logs its own reason"
    );
    assert_eq!(m.state(), State::Closed);
}

#[test]
fn level_2_checks_the_server_hello() {
    let t0 = t0();
    let secs = Duration::from_secs;
    let cfg = config(CheckLevel::RequireServerHello, None);
    let start = |t: Instant| {
        let mut m = TlsProxy::new(t, cfg.clone());
        m.handle_input(t, CURL).unwrap();
        request(&mut m);
        m.handle_connected(t + secs(1));
        assert_eq!(m.state(), State::AwaitingServerHello);
        assert_eq!(m.poll_timeout(), Some(t + secs(31)));
        m
    };

    // The real server flight, offered in growing pieces, never consumed.
    let mut m = start(t0);
    let mut buf = Vec::new();
    for chunk in SERVER_FLIGHT.chunks(13) {
        buf.extend_from_slice(chunk);
        assert_eq!(m.handle_upstream_input(t0 + secs(2), &buf).unwrap(), 0);
        if m.is_established() {
            break;
        }
    }
    assert!(m.is_established());
    assert!(
        buf.len() < SERVER_FLIGHT.len(),
        "established at the end of the ServerHello"
    );
    assert_eq!(m.log_text(), "TLSv1.3 example.test h2");
    assert_eq!(
        m.server_hello().unwrap().len,
        buf.len().min(m.server_hello().unwrap().len)
    );
    assert!(m.poll_upstream_transmit().is_none());
    assert_eq!(m.poll_timeout(), None);

    // A server that answers with an alert.
    let mut m = start(t0);
    let e = m
        .handle_upstream_input(t0, &[21, 3, 3, 0, 2, 2, 112])
        .unwrap_err();
    assert_eq!(e.log_code(), LogCode(343));
    assert_eq!(m.state(), State::Closed);
    assert!(m.poll_transmit().is_none());

    // A server that answers with HTTP.
    let mut m = start(t0);
    assert!(matches!(
        m.handle_upstream_input(t0, b"HTTP/1.1 400 Bad Request\r\n"),
        Err(Error::ServerHello(TlsError::NotTls { .. }))
    ));

    // A server that closes or stays silent.
    let mut m = start(t0);
    m.handle_upstream_input(t0 + secs(2), &SERVER_FLIGHT[..20])
        .unwrap();
    assert_eq!(
        m.handle_upstream_eof(),
        Some(Error::ServerClosed { received: 20 })
    );
    let mut m = start(t0);
    assert_eq!(m.handle_timeout(t0 + secs(30)), None);
    let e = m.handle_timeout(t0 + secs(31)).unwrap();
    assert_eq!(
        (e, e.log_code()),
        (Error::ServerTimeout { received: 0 }, LogCode(342))
    );

    // Connecting failed: an alert to the client.
    let mut m = start(t0);
    m.handle_refused(LogCode::CONNECT_FAILED);
    assert_eq!(m.poll_transmit().unwrap().as_bytes()[6], 80);
}

#[test]
fn level_1_does_not_look_at_the_server() {
    let now = t0();
    let mut m = TlsProxy::new(now, config(CheckLevel::RequireClientHello, None));
    m.handle_input(now, CURL).unwrap();
    request(&mut m);
    m.handle_connected(now);
    assert!(m.is_established());
    assert_eq!(m.handle_upstream_input(now, b"garbage").unwrap(), 0);
    assert_eq!(m.handle_upstream_eof(), None);
    assert!(m.is_established());
}

#[test]
fn max_peek_holds_any_hello() {
    let m = TlsProxy::new(t0(), ProxyConfig::default());
    assert_eq!(m.max_peek(), MAX_HELLO_LEN);
    // A hello of the largest size, in one read.
    let msg = client_hello_msg(Some("a.test"), &[(21, vec![0; 16000])]);
    let raw = records(&msg, 16384);
    assert!(raw.len() <= m.max_peek());
    let mut m = TlsProxy::new(t0(), config(CheckLevel::RequireClientHello, None));
    m.handle_input(t0(), &raw).unwrap();
    assert_eq!(request(&mut m).target.to_string(), "a.test:443");
}

/// What a driver observes: the request, the error, the final state and the log text.
fn outcome(cfg: &ProxyConfig, chunks: &[&[u8]]) -> (Option<Request>, Option<Error>, State, String) {
    let now = t0();
    let mut m = TlsProxy::new(now, cfg.clone());
    let mut buf = Vec::new();
    let mut error = None;
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        match m.handle_input(now, &buf) {
            Ok(n) => assert_eq!(n, 0),
            Err(e) => error = Some(e),
        }
        if m.state() != State::ReadingHello {
            break;
        }
    }
    let req = match m.poll_event() {
        Some(Event::Request(r)) => Some(r),
        _ => None,
    };
    (req, error, m.state(), m.log_text())
}

proptest::proptest! {
    /// Mutated real hellos, cut anywhere: the same outcome as in one read, at every check
    /// level, with and without `-h`.
    #[test]
    fn chunking_never_changes_the_outcome(
        which in 0..REAL.len(),
        edits in proptest::collection::vec((proptest::prelude::any::<u16>(), proptest::prelude::any::<u8>()), 0..4),
        cuts in proptest::collection::vec(1usize..64, 1..40),
        level in 0u32..3,
        default in proptest::prelude::any::<bool>(),
    ) {
        let mut bytes = REAL[which].1.to_vec();
        for (at, b) in edits {
            let i = usize::from(at) % bytes.len();
            bytes[i] = b;
        }
        let cfg = ProxyConfig {
            check: CheckLevel::from_number(level).unwrap(),
            default_target: default.then(|| "backend.test:443".parse().unwrap()),
            ..ProxyConfig::default()
        };
        let mut pieces = Vec::new();
        let mut rest = &bytes[..];
        for c in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (a, b) = rest.split_at((*c).min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        proptest::prop_assert_eq!(outcome(&cfg, &[&bytes]), outcome(&cfg, &pieces));
    }
}
