#![cfg_attr(fuzzing, no_main)]
//! The HTTP CONNECT client machine (`triproxy_http::ConnectClient`) fed an arbitrary parent
//! stream, once whole and once in chunks.
//!
//! Input: `target, credentials, flags, split, stream...`. The first two bytes pick the
//! configuration (an IPv4, IPv6, name, 255-byte name, IPv6-literal name or header-injecting
//! name target; no credentials, short ones, long ones, or ones with a colon or CR LF),
//! `flags` whether the deadline fires at the end, `split` the chunking
//! ([`triproxy_fuzz::chunks`]).
//!
//! Oracles: no panic; a configuration is either refused with code 31 before anything is
//! queued, or its request is one ASCII message of CRLF-terminated lines with no other CR or
//! LF; the transcript (bytes sent, events, errors, final state, bytes handed back) is the
//! same for the whole stream and the chunked one; nothing is consumed once Established or
//! Closed; consumed bytes end with the empty line of a head; a deadline is reported exactly
//! while the head is awaited and fires at (not before) it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use triproxy_fuzz::http::{ConnectClient, ConnectConfig, ConnectState, Credentials};
use triproxy_fuzz::wire::{DomainName, TargetAddr};
use triproxy_fuzz::{chunks, start, Input};

const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    sent: Vec<u8>,
    log: String,
    state: ConnectState,
    handed_back: Option<Vec<u8>>,
}

fn config(input: &mut Input<'_>) -> Option<ConnectConfig> {
    let name = |n: &[u8], port| DomainName::new(n).ok().map(|d| TargetAddr::Domain(d, port));
    let target = match input.byte() % 6 {
        0 => TargetAddr::Ip(SocketAddr::from(([192, 0, 2, 7], 80))),
        1 => TargetAddr::Ip(SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7], 443))),
        2 => name(b"example.org", 443)?,
        3 => name(&[b'x'; 255], 65535)?,
        4 => name(b"2001:db8::1", 22)?,
        _ => name(b"a.org\r\nX-Injected: 1", 80)?,
    };
    let credentials = match input.byte() % 5 {
        0 => None,
        1 => Some(Credentials::new("alice", "secret")),
        2 => Some(Credentials::new(vec![b'u'; 300], vec![b'p'; 300])),
        3 => Some(Credentials::new("a:b", "")),
        _ => Some(Credentials::new("alice", "pw\r\nX-Injected: 1")),
    };
    Some(ConnectConfig {
        target,
        credentials,
        timeout: TIMEOUT,
    })
}

/// The request is CRLF-terminated lines (request line, Host, maybe Proxy-Authorization)
/// and an empty line, in ASCII, with no other CR or LF.
fn check_request(req: &[u8], with_credentials: bool) {
    assert!(req.is_ascii(), "request is not ASCII: {req:02x?}");
    assert!(req.starts_with(b"CONNECT "), "{req:02x?}");
    let Some(body) = req.strip_suffix(b"\r\n\r\n") else {
        panic!("request does not end with an empty line: {req:02x?}");
    };
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    assert_eq!(
        lines.len(),
        if with_credentials { 3 } else { 2 },
        "{req:02x?}"
    );
    for (i, line) in lines.iter().enumerate() {
        let text = if i + 1 == lines.len() {
            *line
        } else {
            line.strip_suffix(b"\r").unwrap_or_default()
        };
        assert!(
            !text.is_empty() && !text.contains(&b'\r'),
            "line {i}: {req:02x?}"
        );
    }
}

fn drain(client: &mut ConnectClient, sent: &mut Vec<u8>, log: &mut String) {
    while let Some(t) = client.poll_transmit() {
        assert!(!t.is_empty(), "empty transmit");
        sent.extend_from_slice(&t);
    }
    while let Some(event) = client.poll_event() {
        let _ = writeln!(log, "event {event:?}");
    }
    let expected = (client.state() == ConnectState::AwaitingReply).then(|| start() + TIMEOUT);
    assert_eq!(client.poll_timeout(), expected, "in {:?}", client.state());
}

fn drive(cfg: &ConnectConfig, fire_timeout: bool, parts: &[&[u8]]) -> Option<Transcript> {
    let now = start();
    let mut client = match ConnectClient::new(now, cfg.clone()) {
        Ok(c) => c,
        Err(e) => {
            assert_eq!(e.log_code().get(), 31, "{e:?}");
            return None;
        }
    };
    let mut pending = Vec::new();
    let mut sent = Vec::new();
    let mut log = String::new();
    let mut failed = false;
    drain(&mut client, &mut sent, &mut log);
    check_request(&sent, cfg.credentials.is_some());
    for part in parts {
        pending.extend_from_slice(part);
        let done = client.state() != ConnectState::AwaitingReply;
        match client.handle_input(now, &pending) {
            Ok(n) => {
                assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
                assert!(!(done && n > 0), "consumed bytes after the head");
                if n > 0 {
                    let used = pending.get(..n).unwrap_or_default();
                    assert!(
                        used.ends_with(b"\n\r\n") || used.ends_with(b"\n\n"),
                        "consumed bytes do not end a head: {used:02x?}"
                    );
                }
                pending.drain(..n);
            }
            Err(e) => {
                assert_eq!(
                    client.state(),
                    ConnectState::Closed,
                    "error {e:?} left it open"
                );
                assert_eq!(e.log_code().get(), 32, "{e:?}");
                drain(&mut client, &mut sent, &mut log);
                let _ = writeln!(log, "error {e:?} code {}", e.log_code());
                failed = true;
            }
        }
        drain(&mut client, &mut sent, &mut log);
    }
    if fire_timeout {
        let early = client.handle_timeout(now + TIMEOUT - Duration::from_nanos(1));
        assert_eq!(early, None, "deadline fired early");
        let fired = client.handle_timeout(now + TIMEOUT);
        let _ = writeln!(log, "timeout {fired:?}");
        if let Some(e) = fired {
            assert_eq!(e.log_code().get(), 32);
            assert_eq!(client.state(), ConnectState::Closed);
        }
        drain(&mut client, &mut sent, &mut log);
    }
    let eof = client.handle_eof();
    if let Some(e) = eof {
        assert_eq!(e.log_code().get(), 34);
    }
    let _ = writeln!(log, "eof {eof:?}");
    drain(&mut client, &mut sent, &mut log);
    let state = client.state();
    assert_ne!(state, ConnectState::AwaitingReply);
    let handed_back = (state == ConnectState::Established && !failed).then_some(pending);
    Some(Transcript {
        sent,
        log,
        state,
        handed_back,
    })
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let Some(cfg) = config(&mut input) else {
        return;
    };
    let fire_timeout = input.byte() & 1 != 0;
    let split = input.byte();
    let stream = input.rest();
    let whole = drive(&cfg, fire_timeout, &[stream]);
    if let Some(back) = whole.as_ref().and_then(|t| t.handed_back.as_ref()) {
        assert!(
            stream.ends_with(back),
            "handed-back bytes are not the end of the stream"
        );
    }
    let split = drive(&cfg, fire_timeout, &chunks(stream, split));
    assert_eq!(whole, split, "chunking changed the transcript");
});
