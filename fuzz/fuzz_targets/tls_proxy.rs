#![cfg_attr(fuzzing, no_main)]
//! The `tlspr` machine (`triproxy_tls::proxy::TlsProxy`) driven like the session engine
//! drives it: the client's bytes re-offered as they grow, a decision, then (check level 2)
//! the server's bytes the same way; once whole and once in chunks.
//!
//! Input: `config, decisions, split, len_hi, len_lo, client bytes (len)..., server
//! bytes...`. `config & 3` is the check level (3 means 2), `config & 4` sets a `-h` target,
//! `config & 8` a `-P` of 8443. `decisions & 1` refuses (with a code from `decisions >>
//! 1`) instead of connecting; `decisions & 0x40` ends each stream with end of file,
//! `decisions & 0x80` lets the deadline fire instead.
//!
//! Oracles: no panic; never a byte consumed; the same transcript whole and chunked; at most
//! one request, with the `-P` port for an SNI target and exactly the `-h` target when one
//! is set; a deadline exactly while bytes are awaited, and after it fires none in the past;
//! bytes for the client only after a refusal of a valid hello, and then one 7-byte fatal
//! alert; errors have codes 100, 302-327 or 342-367; the log text is one line starting
//! with the version; established only after a decision (and at level 2 a ServerHello).

use std::fmt::Write as _;
use std::time::Duration;
use triproxy_fuzz::tls::proxy::{CheckLevel, Error, Event, ProxyConfig, State, TlsProxy};
use triproxy_fuzz::wire::{LogCode, TargetAddr};
use triproxy_fuzz::{chunks, start, Input};

fn check_error(e: &Error, log: &mut String) {
    let code = e.log_code().get();
    assert!(
        code == 100 || (302..=327).contains(&code) || (342..=367).contains(&code),
        "code {code} for {e:?}"
    );
    assert!(!e.reason().is_empty());
    let _ = writeln!(log, "error {code} {e}");
}

fn check_state(m: &TlsProxy, log: &mut String) {
    let waiting = matches!(m.state(), State::ReadingHello | State::AwaitingServerHello);
    assert_eq!(
        m.poll_timeout().is_some(),
        waiting,
        "deadline in {:?}",
        m.state()
    );
    let text = m.log_text();
    assert!(!text.contains('\n') && !text.contains('\r'));
    assert!(["TLSv1.", "SSLv3.0 ", "NONEv0.0 "]
        .iter()
        .any(|p| text.starts_with(p)));
    let _ = writeln!(log, "state {:?} {text}", m.state());
}

fn drain(m: &mut TlsProxy, config: &ProxyConfig, refused: bool, log: &mut String) {
    while let Some(Event::Request(r)) = m.poll_event() {
        assert_eq!(m.state(), State::AwaitingDecision);
        match (&config.default_target, &r.sni) {
            (Some(t), _) => assert_eq!(&r.target, t),
            (None, Some(sni)) => {
                assert_eq!(r.target, TargetAddr::Domain(sni.clone(), config.port))
            }
            (None, None) => panic!("a request without a target"),
        }
        assert_eq!(r.sni, r.hello.as_ref().and_then(|h| h.sni.clone()));
        let _ = writeln!(log, "request {} {:?} {}", r.target, r.sni, r.log_text);
    }
    while let Some(t) = m.poll_transmit() {
        assert!(refused, "bytes for the client without a refusal");
        assert!(
            m.client_hello().is_some(),
            "an alert to a client that is not TLS"
        );
        assert_eq!(t.as_bytes()[..6], [21, 3, 3, 0, 2, 2]);
        assert_eq!(t.len(), 7);
        let _ = writeln!(log, "alert {}", t.as_bytes()[6]);
    }
    assert!(m.poll_upstream_transmit().is_none());
}

fn run_once(config: &ProxyConfig, decisions: u8, client: &[&[u8]], server: &[&[u8]]) -> String {
    let mut log = String::new();
    let mut now = start();
    let mut m = TlsProxy::new(now, config.clone());
    let mut buf = Vec::new();
    let refuse = decisions & 1 != 0;
    let mut refused = false;
    for chunk in client {
        buf.extend_from_slice(chunk);
        now += Duration::from_millis(1);
        match m.handle_input(now, &buf) {
            Ok(n) => assert_eq!(n, 0, "the hello was consumed"),
            Err(e) => check_error(&e, &mut log),
        }
        drain(&mut m, config, refused, &mut log);
        if m.state() != State::ReadingHello {
            break;
        }
    }
    if m.state() == State::ReadingHello {
        if decisions & 0x80 != 0 {
            let due = m.poll_timeout().unwrap_or(now);
            assert_eq!(m.handle_timeout(due - Duration::from_millis(1)), None);
            if let Some(e) = m.handle_timeout(due) {
                check_error(&e, &mut log);
            }
            assert!(m.poll_timeout().is_none_or(|t| t > due));
        } else if decisions & 0x40 != 0 {
            if let Some(e) = m.handle_eof() {
                check_error(&e, &mut log);
            }
        }
        drain(&mut m, config, refused, &mut log);
    }
    check_state(&m, &mut log);
    if m.state() == State::AwaitingDecision {
        if refuse {
            refused = true;
            m.handle_refused(LogCode(u16::from(decisions >> 1)));
            assert_eq!(m.state(), State::Closed);
        } else {
            m.handle_connected(now);
        }
        drain(&mut m, config, refused, &mut log);
    }
    assert!(
        !m.is_established()
            || m.client_hello().is_some()
            || config.check == CheckLevel::AllowNonTls
    );
    let mut up = Vec::new();
    for chunk in server {
        up.extend_from_slice(chunk);
        now += Duration::from_millis(1);
        match m.handle_upstream_input(now, &up) {
            Ok(n) => assert_eq!(n, 0, "the server's bytes were consumed"),
            Err(e) => check_error(&e, &mut log),
        }
        drain(&mut m, config, refused, &mut log);
        if m.state() != State::AwaitingServerHello {
            break;
        }
    }
    if m.state() == State::AwaitingServerHello {
        if decisions & 0x80 != 0 {
            if let Some(due) = m.poll_timeout() {
                if let Some(e) = m.handle_timeout(due) {
                    check_error(&e, &mut log);
                }
            }
        } else if decisions & 0x40 != 0 {
            if let Some(e) = m.handle_upstream_eof() {
                check_error(&e, &mut log);
            }
        }
    }
    if m.is_established() && config.check == CheckLevel::RequireServerHello {
        assert!(m.server_hello().is_some());
    }
    check_state(&m, &mut log);
    log
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let conf = input.byte();
    let decisions = input.byte();
    let split = input.byte();
    let client_len = usize::from(input.u16());
    let client = input.bytes(client_len);
    let server = input.rest();
    let config = ProxyConfig {
        port: if conf & 8 != 0 { 8443 } else { 443 },
        check: match conf & 3 {
            0 => CheckLevel::AllowNonTls,
            1 => CheckLevel::RequireClientHello,
            _ => CheckLevel::RequireServerHello,
        },
        default_target: (conf & 4 != 0)
            .then(|| TargetAddr::from((std::net::Ipv4Addr::new(192, 0, 2, 7), 4433))),
        hello_timeout: Duration::from_secs(30),
    };
    let whole = run_once(&config, decisions, &[client], &[server]);
    let chunked = run_once(
        &config,
        decisions,
        &chunks(client, split),
        &chunks(server, split),
    );
    assert_eq!(whole, chunked);
});
