#![cfg_attr(fuzzing, no_main)]
//! The SMTP proxy machine (`triproxy_smtp::Proxy`, 3proxy's `smtpp`) fed an arbitrary
//! client stream, a driver decision and an arbitrary server stream, once whole and once in
//! chunks.
//!
//! Input: `flags, decision, split, client stream… 0xFF server stream…`. `flags` picks
//! STARTTLS on or off (`-x`), a default server (`-h`), the delimiter (`@` or `#`), a short
//! line cap, and whether the deadline fires at the end; `decision` connects or refuses
//! with a code; `split` picks the chunking ([`triproxy_fuzz::chunks`]).
//!
//! Oracles: no panic; the transcript (bytes to each side, events, errors, final state,
//! bytes left to the relay) is the same whole and chunked; nothing is consumed beyond the
//! input, nor from the client after `Connect`, nor from either side once established; at
//! most one event; credentials within 255 bytes and `%T` without control characters;
//! every line sent upstream is one CRLF-terminated line (no injection from credentials);
//! every error has an smtpp code (662-683); a fired deadline is never re-armed.

use std::fmt::Write as _;
use std::time::Duration;
use triproxy_fuzz::smtp::{Config, Event, Proxy, State};
use triproxy_fuzz::wire::LogCode;
use triproxy_fuzz::{chunks, start, Input};

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    log: String,
    state: State,
    left: Option<(Vec<u8>, Vec<u8>)>,
}

fn config(flags: u8) -> Config {
    Config {
        starttls: flags & 1 == 0,
        default_target: (flags & 2 != 0)
            .then(|| "192.0.2.25:25".parse().ok())
            .flatten(),
        delimiter: if flags & 4 == 0 { b'@' } else { b'#' },
        max_line: if flags & 8 == 0 { 1024 } else { 40 },
        ..Config::default()
    }
}

fn drain(p: &mut Proxy, t: &mut Transcript) {
    while let Some(b) = p.poll_transmit() {
        assert!(b.ends_with(b"\r\n"), "client line {b:?}");
        t.to_client.extend_from_slice(&b);
    }
    while let Some(b) = p.poll_upstream_transmit() {
        let body = b.strip_suffix(b"\r\n").unwrap_or_else(|| panic!("{b:?}"));
        assert!(
            !body.contains(&b'\r') && !body.contains(&b'\n'),
            "upstream line {b:?}"
        );
        t.to_server.extend_from_slice(&b);
    }
    while let Some(e) = p.poll_event() {
        if let Event::Connect(r) = &e {
            if let Some(c) = &r.credentials {
                assert!(c.user.len() <= 255 && c.password.len() <= 255);
                assert!(!c.user.is_empty());
            }
            if let Some(text) = &r.log_text {
                assert!(!text.chars().any(char::is_control), "%T {text:?}");
            }
        }
        let _ = writeln!(t.log, "event {e:?}");
    }
}

fn check_code(code: u16) {
    assert!((662..=683).contains(&code), "code {code}");
}

fn drive(flags: u8, decision: u8, client: &[&[u8]], server: &[&[u8]]) -> Transcript {
    let cfg = config(flags);
    let limit = cfg.max_line;
    let now = start();
    let mut p = Proxy::new(now, cfg, [198, 51, 100, 4].into());
    let mut t = Transcript {
        to_client: Vec::new(),
        to_server: Vec::new(),
        log: String::new(),
        state: State::Command,
        left: None,
    };
    let mut failed = false;
    drain(&mut p, &mut t);
    let mut cbuf = Vec::new();
    for part in client {
        cbuf.extend_from_slice(part);
        if failed {
            continue;
        }
        let before = p.state();
        match p.handle_input(now, &cbuf) {
            Ok(n) => {
                assert!(n <= cbuf.len());
                if matches!(before, State::Connecting | State::Established | State::Done) {
                    assert_eq!(n, 0, "consumed in {before:?}");
                }
                cbuf.drain(..n);
                if p.state() == State::Command || p.state() == State::LoginUser {
                    assert!(cbuf.len() < limit, "kept a line over the cap");
                }
            }
            Err(e) => {
                check_code(e.log_code());
                assert_eq!(p.state(), State::Done);
                let _ = writeln!(t.log, "error {e}");
                failed = true;
            }
        }
        drain(&mut p, &mut t);
    }
    if p.state() == State::Connecting {
        if decision & 1 == 0 {
            p.handle_connected(now);
        } else {
            p.handle_refused(LogCode(u16::from(decision >> 1)));
            assert_eq!(p.state(), State::Done);
        }
        let _ = writeln!(t.log, "decided {}", decision & 1);
        drain(&mut p, &mut t);
    }
    let mut sbuf = Vec::new();
    for part in server {
        sbuf.extend_from_slice(part);
        if failed {
            continue;
        }
        let before = p.state();
        match p.handle_upstream_input(now, &sbuf) {
            Ok(n) => {
                assert!(n <= sbuf.len());
                if matches!(before, State::Established | State::Done | State::Command) {
                    assert_eq!(n, 0, "consumed in {before:?}");
                }
                sbuf.drain(..n);
            }
            Err(e) => {
                check_code(e.log_code());
                assert_eq!(p.state(), State::Done);
                let _ = writeln!(t.log, "error {e}");
                failed = true;
            }
        }
        drain(&mut p, &mut t);
    }
    if flags & 16 != 0 {
        if let Some(deadline) = p.poll_timeout() {
            assert!(deadline > now);
            assert_eq!(p.handle_timeout(deadline - Duration::from_nanos(1)), None);
            let fired = p.handle_timeout(deadline);
            let fired = fired.unwrap_or_else(|| panic!("deadline did not fire"));
            check_code(fired.log_code());
            assert_eq!(p.poll_timeout(), None, "deadline re-armed");
            let _ = writeln!(t.log, "timeout {fired}");
            failed = true;
        }
    }
    let established = p.is_established();
    let reading = matches!(
        p.state(),
        State::Greeting
            | State::Ehlo
            | State::UpstreamLogin
            | State::UpstreamLoginUser
            | State::UpstreamPlain
            | State::UpstreamVerdict
    );
    let eof = p.handle_upstream_eof();
    let _ = writeln!(t.log, "eof {eof}");
    if established {
        assert_eq!(eof.log_code(), 0);
    } else if !failed && reading {
        check_code(eof.log_code());
    }
    drain(&mut p, &mut t);
    t.state = p.state();
    if !failed {
        t.left = Some((cbuf, sbuf));
    }
    t
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let decision = input.byte();
    let split = input.byte();
    let client = input.until(0xFF);
    let server = input.rest();
    let whole = drive(flags, decision, &[client], &[server]);
    let cut = drive(
        flags,
        decision,
        &chunks(client, split),
        &chunks(server, split),
    );
    assert_eq!(whole, cut);
});
