//! Drivers for the machines: here the CONNECT client's, in [`server`] the proxy server's.
//! The CONNECT client driver, as a runtime would run it: it keeps the bytes
//! the machine did not consume, presents them again with the next read, drains every
//! `poll_*` after each input, and records a transcript.

#![allow(dead_code)] // each test file uses part of it

pub mod server;

use std::fmt::Write as _;
use std::time::{Duration, Instant};
use triproxy_http::{ConnectClient, ConnectConfig, ConnectState, Credentials};
use triproxy_wire::{DomainName, TargetAddr};

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// One instant for the whole test process.
pub fn t0() -> Instant {
    use std::sync::OnceLock;
    static T0: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // tests need some instant to start from
    *T0.get_or_init(Instant::now)
}

pub fn ip(s: &str) -> TargetAddr {
    TargetAddr::Ip(s.parse().unwrap())
}

pub fn name(n: &str, port: u16) -> TargetAddr {
    TargetAddr::Domain(DomainName::new(n.as_bytes()).unwrap(), port)
}

pub fn config(target: TargetAddr, credentials: Option<(&str, &str)>) -> ConnectConfig {
    ConnectConfig {
        target,
        credentials: credentials.map(|(u, p)| Credentials::new(u, p)),
        timeout: TIMEOUT,
    }
}

/// Everything observable about one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcript {
    /// All bytes the machine asked to send.
    pub sent: Vec<u8>,
    /// Events, errors and the final eof, one per line.
    pub log: String,
    /// State at the end (before the final eof).
    pub state: ConnectState,
    /// Bytes the driver still holds at the end, if the machine is Established (the
    /// target's data after a 2xx); after a refusal or an error they are nobody's and
    /// empty here (an error returns no count, so what they are depends on the reads).
    pub left: Vec<u8>,
}

fn drain(client: &mut ConnectClient, sent: &mut Vec<u8>, log: &mut String) {
    while let Some(t) = client.poll_transmit() {
        assert!(!t.is_empty(), "empty transmit");
        sent.extend_from_slice(&t);
    }
    while let Some(e) = client.poll_event() {
        let _ = writeln!(log, "event {e:?}");
    }
    let expected = (client.state() == ConnectState::AwaitingReply).then(|| t0() + TIMEOUT);
    assert_eq!(client.poll_timeout(), expected, "in {:?}", client.state());
}

/// Runs the machine over `parts` (one read each), then reports eof.
pub fn drive(cfg: &ConnectConfig, parts: &[&[u8]]) -> Transcript {
    let mut client = ConnectClient::new(t0(), cfg.clone()).unwrap();
    let mut sent = Vec::new();
    let mut log = String::new();
    let mut pending = Vec::new();
    drain(&mut client, &mut sent, &mut log);
    for part in parts {
        pending.extend_from_slice(part);
        let before = client.state();
        match client.handle_input(t0(), &pending) {
            Ok(n) => {
                assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
                if before != ConnectState::AwaitingReply {
                    assert_eq!(n, 0, "consumed bytes after the head");
                }
                pending.drain(..n);
            }
            Err(e) => {
                assert_eq!(client.state(), ConnectState::Closed, "{e:?} left it open");
                let _ = writeln!(log, "error {e:?} code {}", e.log_code());
            }
        }
        drain(&mut client, &mut sent, &mut log);
    }
    let state = client.state();
    let eof = client.handle_eof();
    let _ = writeln!(log, "eof {eof:?}");
    drain(&mut client, &mut sent, &mut log);
    assert_ne!(client.state(), ConnectState::AwaitingReply);
    if state != ConnectState::Established {
        pending.clear();
    }
    Transcript {
        sent,
        log,
        state,
        left: pending,
    }
}

/// `stream` delivered byte by byte.
pub fn bytewise(stream: &[u8]) -> Vec<&[u8]> {
    stream.chunks(1).collect()
}
