#![cfg_attr(fuzzing, no_main)]
//! The SOCKS server machine (`triproxy_socks::server::Server`) fed an arbitrary client
//! stream, once whole and once in chunks.
//!
//! Input: `config, decisions, split, stream...`. `config` picks the method policy, the
//! enabled versions and whether the deadline fires at the end; `decisions` fixes the
//! driver's answers (auth verdict, grant or refusal, BIND peer); `split` picks the chunking
//! ([`triproxy_fuzz::chunks`]).
//!
//! Oracles: no panic; the transcript (bytes sent, events, errors, final state, bytes handed
//! back) is the same for the whole stream and the chunked one; consumed plus handed-back
//! bytes are the stream; nothing is consumed once Established; a deadline is reported
//! exactly while bytes are awaited, and firing it closes the machine for good.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use triproxy_fuzz::socks::server::{
    AuthVerdict, MethodPolicy, Server, ServerConfig, ServerEvent, State,
};
use triproxy_fuzz::socks::v5::ReplyCode;
use triproxy_fuzz::{chunks, start, Input};

const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    sent: Vec<u8>,
    log: String,
    state: State,
    handed_back: Option<Vec<u8>>,
}

fn config(b: u8) -> ServerConfig {
    let methods = match b & 3 {
        0 => MethodPolicy::NoAuth,
        1 => MethodPolicy::Password,
        _ => MethodPolicy::NoAuthOrPassword,
    };
    ServerConfig {
        methods,
        allow_v4: b & 4 == 0,
        allow_v5: b & 8 == 0,
        handshake_timeout: TIMEOUT,
    }
}

fn bound(decisions: u8) -> SocketAddr {
    if decisions & 0x10 == 0 {
        SocketAddr::from(([198, 51, 100, 1], 40000))
    } else {
        SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], 443))
    }
}

/// Answers whatever the machine waits for; false if it waits for bytes (or nothing).
fn decide(server: &mut Server, decisions: u8, log: &mut String) -> bool {
    match server.state() {
        State::AwaitingAuthVerdict => {
            let verdict = if decisions & 1 == 0 {
                AuthVerdict::Accepted
            } else {
                AuthVerdict::Rejected
            };
            let _ = writeln!(log, "auth {verdict:?}");
            server.handle_auth(verdict);
            true
        }
        State::AwaitingDecision => {
            if decisions & 2 == 0 {
                let _ = writeln!(log, "granted");
                server.handle_granted(bound(decisions));
            } else {
                let reply = ReplyCode::from_u8(decisions >> 5);
                let _ = writeln!(log, "refused {reply:?}");
                server.handle_refused(reply);
            }
            true
        }
        State::AwaitingBindPeer => {
            if decisions & 4 == 0 {
                let _ = writeln!(log, "bind peer");
                server.handle_bind_peer(SocketAddr::from(([203, 0, 113, 9], 5555)));
            } else {
                let _ = writeln!(log, "bind refused");
                server.handle_refused(ReplyCode::TtlExpired);
            }
            true
        }
        _ => false,
    }
}

fn drain(server: &mut Server, sent: &mut Vec<u8>, log: &mut String) {
    while let Some(t) = server.poll_transmit() {
        assert!(!t.is_empty(), "empty transmit");
        sent.extend_from_slice(&t);
    }
    while let Some(event) = server.poll_event() {
        match &event {
            ServerEvent::Credentials(c) => {
                assert!(
                    !c.username.is_empty(),
                    "RFC 1929 user names are 1..=255 bytes"
                );
            }
            ServerEvent::Request(r) => {
                if let Some(id) = &r.user_id {
                    assert!(!id.is_empty() && !id.contains(&0), "user id {id:?}");
                }
            }
        }
        let _ = writeln!(log, "event {event:?}");
    }
}

fn check_deadline(server: &Server) {
    let waiting = matches!(
        server.state(),
        State::Greeting | State::Authenticating | State::AwaitingRequest
    );
    let expected = waiting.then(|| start() + TIMEOUT);
    assert_eq!(server.poll_timeout(), expected, "in {:?}", server.state());
}

fn drive(cfg: ServerConfig, decisions: u8, fire_timeout: bool, parts: &[&[u8]]) -> Transcript {
    let now = start();
    let mut server = Server::new(now, cfg);
    let mut pending = Vec::new();
    let mut sent = Vec::new();
    let mut log = String::new();
    let mut failed = false;
    for part in parts {
        pending.extend_from_slice(part);
        loop {
            let was_established = server.state() == State::Established;
            match server.handle_input(now, &pending) {
                Ok(n) => {
                    assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
                    assert!(!(was_established && n > 0), "consumed relay data");
                    pending.drain(..n);
                }
                Err(e) => {
                    assert_eq!(server.state(), State::Closed, "error {e:?} left it open");
                    // Output of messages before the bad one comes first, whatever the chunking.
                    drain(&mut server, &mut sent, &mut log);
                    let _ = writeln!(log, "error {e:?} code {}", e.log_code());
                    failed = true;
                }
            }
            drain(&mut server, &mut sent, &mut log);
            check_deadline(&server);
            if !decide(&mut server, decisions, &mut log) {
                break;
            }
            drain(&mut server, &mut sent, &mut log);
        }
    }
    if fire_timeout {
        let before = server.state();
        let early = server.handle_timeout(now + TIMEOUT - Duration::from_nanos(1));
        assert_eq!(early, None, "deadline fired early");
        let fired = server.handle_timeout(now + TIMEOUT);
        let _ = writeln!(log, "timeout {fired:?}");
        if fired.is_some() {
            assert_eq!(server.state(), State::Closed);
            assert_eq!(
                server.poll_timeout(),
                None,
                "deadline still armed after firing"
            );
        } else {
            assert_eq!(server.state(), before);
        }
    }
    let eof = server.handle_eof();
    let _ = writeln!(log, "eof {eof:?}");
    drain(&mut server, &mut sent, &mut log);
    check_deadline(&server);
    assert_eq!(
        server.handle_input(now, b"\x05\x01\x00"),
        Ok(0),
        "input after the end"
    );
    let state = server.state();
    let handed_back = (state == State::Established && !failed).then_some(pending);
    Transcript {
        sent,
        log,
        state,
        handed_back,
    }
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let flags = input.byte();
    let decisions = input.byte();
    let split = input.byte();
    let stream = input.rest();
    let cfg = config(flags);
    let fire_timeout = flags & 0x10 != 0;
    let whole = drive(cfg, decisions, fire_timeout, &[stream]);
    if let Some(back) = &whole.handed_back {
        assert!(
            stream.ends_with(back),
            "handed-back bytes are not the end of the stream"
        );
    }
    let split = drive(cfg, decisions, fire_timeout, &chunks(stream, split));
    assert_eq!(whole, split, "chunking changed the transcript");
});
