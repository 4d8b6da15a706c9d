//! A driver that behaves like the session engine: it keeps unconsumed bytes, drains every
//! queue after every call, and answers `Connect` with a scripted decision.

#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Instant;
use triproxy_smtp::{Config, Error, Event, Proxy, State};
use triproxy_wire::LogCode;

/// How the driver answers `Event::Connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Connect,
    Refuse(LogCode),
}

/// Everything observable about one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub to_client: Vec<u8>,
    pub to_server: Vec<u8>,
    pub events: Vec<Event>,
    pub error: Option<Error>,
    pub state: State,
    /// Client bytes the machine left to the relay.
    pub client_left: Vec<u8>,
    /// Server bytes the machine left to the relay.
    pub server_left: Vec<u8>,
}

/// The start instant of every test (tests may read the clock; the machine never does).
#[allow(clippy::disallowed_methods)]
pub fn t0() -> Instant {
    Instant::now()
}

pub fn client_ip() -> IpAddr {
    IpAddr::from([192, 0, 2, 7])
}

fn drain(p: &mut Proxy, run: &mut Run) {
    while let Some(t) = p.poll_transmit() {
        run.to_client.extend_from_slice(&t);
    }
    while let Some(t) = p.poll_upstream_transmit() {
        run.to_server.extend_from_slice(&t);
    }
    while let Some(e) = p.poll_event() {
        run.events.push(e);
    }
}

/// Feeds the client chunks, decides, then feeds the server chunks.
pub fn run(config: Config, client: &[&[u8]], decision: Decision, server: &[&[u8]]) -> Run {
    let now = t0();
    let mut p = Proxy::new(now, config, client_ip());
    let mut run = Run {
        to_client: Vec::new(),
        to_server: Vec::new(),
        events: Vec::new(),
        error: None,
        state: State::Command,
        client_left: Vec::new(),
        server_left: Vec::new(),
    };
    drain(&mut p, &mut run);
    let mut buf = Vec::new();
    for chunk in client {
        buf.extend_from_slice(chunk);
        if run.error.is_some() {
            continue;
        }
        match p.handle_input(now, &buf) {
            Ok(n) => {
                assert!(n <= buf.len());
                buf.drain(..n);
            }
            Err(e) => run.error = Some(e),
        }
        drain(&mut p, &mut run);
    }
    run.client_left = buf;
    if run.error.is_none() && p.state() == State::Connecting {
        match decision {
            Decision::Connect => p.handle_connected(now),
            Decision::Refuse(code) => p.handle_refused(code),
        }
        drain(&mut p, &mut run);
    }
    let mut buf = Vec::new();
    for chunk in server {
        buf.extend_from_slice(chunk);
        if run.error.is_some() {
            continue;
        }
        match p.handle_upstream_input(now, &buf) {
            Ok(n) => {
                assert!(n <= buf.len());
                buf.drain(..n);
            }
            Err(e) => run.error = Some(e),
        }
        drain(&mut p, &mut run);
    }
    run.server_left = buf;
    run.state = p.state();
    if run.error.is_some() {
        // After an error the connection closes; what was left unread does not matter
        // (and an error does not say how much of its input was used).
        run.client_left.clear();
        run.server_left.clear();
    }
    run
}

/// The same session with both streams whole.
pub fn whole(config: Config, client: &[u8], decision: Decision, server: &[u8]) -> Run {
    run(config, &[client], decision, &[server])
}

/// base64 of `bytes`, for building transcripts.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
