#![cfg_attr(fuzzing, no_main)]
//! The IMAP proxy machine (`triproxy_imap::Server`) fed an arbitrary client stream and, once
//! it asks for a connection, an arbitrary server stream; once whole and once in chunks.
//!
//! Input: `config, decision, split, client stream, 0xFF, server stream`. `config` picks
//! STARTTLS on or off, the delimiter, a default target and a smaller line cap; `decision`
//! refuses the request or connects, and whether the deadline fires at the end; `split`
//! picks the chunking ([`triproxy_fuzz::chunks`]) of both streams.
//!
//! Oracles: no panic; the transcript (bytes for each side, events, errors, final state,
//! bytes handed back on each side) is the same whole and chunked; no call consumes more
//! than it was given, nothing is consumed once established or closed; every line the
//! machine sends to the server is one CRLF-terminated line (no injection from a user
//! name or password); a request's user name has no control character and its tag is
//! the client's; errors carry 3proxy's imapp or tlspr codes and close the machine; a deadline is reported exactly while a line is
//! awaited, and firing it closes the machine for good.

use std::fmt::Write as _;
use std::time::Duration;
use triproxy_fuzz::imap::{Config, Event, LogCode, Server, State, TargetAddr};
use triproxy_fuzz::{chunks, start, Input};

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    log: String,
    state: State,
    client_left: Vec<u8>,
    server_left: Vec<u8>,
}

fn config(b: u8) -> Config {
    Config {
        starttls: b & 1 == 0,
        delimiter: if b & 2 == 0 { b'@' } else { b'%' },
        default_target: (b & 4 != 0)
            .then(|| TargetAddr::from((std::net::Ipv4Addr::new(192, 0, 2, 1), 1143))),
        max_line: if b & 8 == 0 { 2048 } else { usize::from(b) },
        ..Config::default()
    }
}

fn drain(m: &mut Server, t: &mut Transcript) {
    while let Some(b) = m.poll_transmit() {
        assert!(!b.is_empty());
        t.to_client.extend_from_slice(&b);
    }
    while let Some(b) = m.poll_upstream_transmit() {
        assert!(b.ends_with(b"\r\n"), "{b:?}");
        let body = &b[..b.len() - 2];
        assert!(
            !body.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0),
            "{b:?}"
        );
        t.to_server.extend_from_slice(&b);
    }
    while let Some(e) = m.poll_event() {
        if let Event::Request(r) = &e {
            assert!(!r.user.is_empty());
            assert!(!r.user.iter().any(|&c| c < 0x20 || c == 0x7f));
            assert!(r.log_text.contains('@'));
            assert!(!r.tag.is_empty() && r.tag.len() <= triproxy_fuzz::imap::MAX_TAG_LEN);
        }
        let _ = writeln!(t.log, "event {e:?}");
    }
}

fn deadline_rule(m: &Server) {
    let awaiting = !matches!(
        m.state(),
        State::AwaitingDecision | State::Established | State::Closed
    );
    assert_eq!(m.poll_timeout().is_some(), awaiting, "{:?}", m.state());
}

fn session(conf: u8, decision: u8, client: &[u8], server: &[u8], split: u8) -> Transcript {
    let now = start();
    let mut m = Server::new(now, config(conf));
    let mut t = Transcript {
        to_client: Vec::new(),
        to_server: Vec::new(),
        log: String::new(),
        state: State::Command,
        client_left: Vec::new(),
        server_left: Vec::new(),
    };
    drain(&mut m, &mut t);
    let mut held = Vec::new();
    'client: for piece in chunks(client, split) {
        held.extend_from_slice(piece);
        // Like a driver: after draining the answers, offer what is left again until the
        // machine takes nothing more (it stops reading while answers pile up).
        loop {
            let before = m.state();
            match m.handle_input(now, &held) {
                Ok(n) => {
                    assert!(n <= held.len());
                    if matches!(
                        before,
                        State::Established | State::Closed | State::AwaitingDecision
                    ) {
                        assert_eq!(n, 0);
                    }
                    held.drain(..n);
                    drain(&mut m, &mut t);
                    deadline_rule(&m);
                    if n == 0 {
                        break;
                    }
                }
                Err(e) => {
                    assert!(
                        (692..=694).contains(&e.log_code()) || e.log_code() == 698,
                        "{e:?}"
                    );
                    assert!(!e.reason().is_empty());
                    assert_eq!(m.state(), State::Closed);
                    let _ = writeln!(t.log, "client error {}", e.log_code());
                    held.clear();
                    drain(&mut m, &mut t);
                    break 'client;
                }
            }
        }
    }
    t.client_left = held;
    if m.state() == State::AwaitingDecision {
        if decision & 1 == 0 {
            m.handle_refused(LogCode::CONNECT_FAILED);
            assert_eq!(m.state(), State::Closed);
        } else {
            m.handle_connected(now);
        }
        drain(&mut m, &mut t);
        let mut held = Vec::new();
        for piece in chunks(server, split) {
            held.extend_from_slice(piece);
            let before = m.state();
            match m.handle_upstream_input(now, &held) {
                Ok(n) => {
                    assert!(n <= held.len());
                    if matches!(before, State::Established | State::Closed) {
                        assert_eq!(n, 0);
                    }
                    held.drain(..n);
                }
                Err(e) => {
                    assert!(
                        [693, 695, 696, 697, 699, 361, 362, 363].contains(&e.log_code()),
                        "{e:?}"
                    );
                    assert_eq!(m.state(), State::Closed);
                    let _ = writeln!(t.log, "server error {}", e.log_code());
                    held.clear();
                    drain(&mut m, &mut t);
                    break;
                }
            }
            drain(&mut m, &mut t);
            deadline_rule(&m);
        }
        t.server_left = held;
    }
    if decision & 2 != 0 {
        if let Some(deadline) = m.poll_timeout() {
            assert!(m
                .handle_timeout(deadline - Duration::from_millis(1))
                .is_none());
            let e = m.handle_timeout(deadline);
            assert!(e.is_some());
            assert_eq!(m.state(), State::Closed);
            assert_eq!(m.poll_timeout(), None);
            let _ = writeln!(t.log, "timeout {:?}", e.map(|e| e.log_code()));
            drain(&mut m, &mut t);
        }
    }
    t.state = m.state();
    t
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let conf = input.byte();
    let decision = input.byte();
    let split = input.byte();
    let client = input.until(0xFF);
    let server = input.rest();
    let whole = session(conf, decision, client, server, 0);
    let chunked = session(conf, decision, client, server, split);
    assert_eq!(whole, chunked);
});
