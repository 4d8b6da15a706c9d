#![cfg_attr(fuzzing, no_main)]
//! The SOCKS client machine (`triproxy_socks::client::Client`) fed an arbitrary parent
//! stream, once whole and once in chunks.
//!
//! Input: `version, command, credentials, target, flags, split, stream...`. The first four
//! bytes pick the client configuration (SOCKS4 / 4a / 5; CONNECT / BIND / UDP ASSOCIATE;
//! no credentials or a user and password; an IPv4, IPv6 or name target), `flags` whether
//! the deadline fires at the end, `split` the chunking ([`triproxy_fuzz::chunks`]).
//!
//! Oracles: no panic; the transcript (bytes sent, events, errors, final state, bytes handed
//! back) is the same for the whole stream and the chunked one; nothing is consumed once
//! Established or Closed; a deadline is reported exactly while an answer is awaited.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;
use triproxy_fuzz::socks::client::{Client, ClientConfig, ClientState, ClientVersion};
use triproxy_fuzz::socks::{Command, Credentials};
use triproxy_fuzz::wire::{DomainName, TargetAddr};
use triproxy_fuzz::{chunks, start, Input};

const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    sent: Vec<u8>,
    log: String,
    state: ClientState,
    handed_back: Option<Vec<u8>>,
}

fn config(input: &mut Input<'_>) -> Option<ClientConfig> {
    let version = input.choose(&[ClientVersion::V4, ClientVersion::V4a, ClientVersion::V5])?;
    let command = input.choose(&[Command::Connect, Command::Bind, Command::UdpAssociate])?;
    let credentials = match input.byte() % 4 {
        0 => None,
        1 => Credentials::new(b"alice", b"secret").ok(),
        2 => Credentials::new(&[b'u'; 255], &[b'p'; 255]).ok(),
        _ => Credentials::new(b"a\0b", b"").ok(),
    };
    let target = match input.byte() % 5 {
        0 => TargetAddr::Ip(SocketAddr::from(([192, 0, 2, 7], 80))),
        1 => TargetAddr::Ip(SocketAddr::from(([0, 0, 0, 9], 80))),
        2 => TargetAddr::Ip(SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7], 443))),
        3 => TargetAddr::Domain(DomainName::new(b"example.org").ok()?, 443),
        _ => TargetAddr::Domain(DomainName::new(&[b'x'; 255]).ok()?, 0),
    };
    Some(ClientConfig {
        version,
        credentials,
        command,
        target,
        timeout: TIMEOUT,
    })
}

fn drain(client: &mut Client, sent: &mut Vec<u8>, log: &mut String) {
    while let Some(t) = client.poll_transmit() {
        assert!(!t.is_empty(), "empty transmit");
        sent.extend_from_slice(&t);
    }
    while let Some(event) = client.poll_event() {
        let _ = writeln!(log, "event {event:?}");
    }
    let expected = client.phase().map(|_| start() + TIMEOUT);
    assert_eq!(client.poll_timeout(), expected, "in {:?}", client.state());
}

fn drive(cfg: &ClientConfig, fire_timeout: bool, parts: &[&[u8]]) -> Option<Transcript> {
    let now = start();
    let mut client = Client::new(now, cfg.clone()).ok()?;
    let mut pending = Vec::new();
    let mut sent = Vec::new();
    let mut log = String::new();
    let mut failed = false;
    drain(&mut client, &mut sent, &mut log);
    for part in parts {
        pending.extend_from_slice(part);
        let done = matches!(
            client.state(),
            ClientState::Established | ClientState::Closed
        );
        match client.handle_input(now, &pending) {
            Ok(n) => {
                assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
                assert!(!(done && n > 0), "consumed bytes after the handshake");
                pending.drain(..n);
            }
            Err(e) => {
                assert_eq!(
                    client.state(),
                    ClientState::Closed,
                    "error {e:?} left it open"
                );
                // Events of messages before the bad one come first, whatever the chunking.
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
        if fired.is_some() {
            assert_eq!(client.state(), ClientState::Closed);
        }
        drain(&mut client, &mut sent, &mut log);
    }
    let eof = client.handle_eof();
    let _ = writeln!(log, "eof {eof:?}");
    drain(&mut client, &mut sent, &mut log);
    let state = client.state();
    assert!(matches!(
        state,
        ClientState::Established | ClientState::Closed
    ));
    let handed_back = (state == ClientState::Established && !failed).then_some(pending);
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
