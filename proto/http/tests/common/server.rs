//! A driver for the HTTP proxy server machine, as a runtime would run it: it keeps the
//! bytes the machine did not consume, presents them again with the next read, drains every
//! `poll_*` after each input, answers the request with a fixed decision, and records a
//! transcript.

use super::t0;
use std::fmt::Write as _;
use std::time::Duration;
use triproxy_http::{
    ProxyEvent, ProxyRequest, ProxyServer, ProxyServerConfig, ProxyState, Refusal, MAX_REQUEST_HEAD,
};
use triproxy_wire::MAX_TRANSMIT;

pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

pub fn server() -> ProxyServer {
    ProxyServer::new(
        t0(),
        ProxyServerConfig {
            head_timeout: HEAD_TIMEOUT,
        },
    )
}

/// How the driver answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `handle_granted`.
    Grant,
    /// `handle_refused`.
    Refuse(Refusal),
    /// Nothing: the machine is left waiting (then sees eof).
    Wait,
}

/// Everything observable about one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// All bytes the machine asked to send.
    pub sent: Vec<u8>,
    /// Events, decisions, errors and the final eof, one per line.
    pub log: String,
    /// State at the end (before the final eof).
    pub state: ProxyState,
    /// Bytes consumed in total if no error happened (what was consumed before an error
    /// depends on the reads); 0 after an error.
    pub consumed: usize,
    /// Bytes the driver still holds at the end if no error happened (the client's tunnel
    /// data); empty after an error.
    pub left: Vec<u8>,
}

/// One line per request, readable in golden transcripts (the password shown in full).
pub fn describe(r: &ProxyRequest) -> String {
    let creds = match &r.credentials {
        Some(c) => format!(
            " user {:?} password {:?}",
            String::from_utf8_lossy(&c.username),
            String::from_utf8_lossy(&c.password)
        ),
        None => String::new(),
    };
    format!(
        "request {} {} connect={} HTTP/1.{}{creds}",
        r.method, r.target, r.connect, r.minor_version
    )
}

fn drain(server: &mut ProxyServer, decision: Decision, sent: &mut Vec<u8>, log: &mut String) {
    loop {
        while let Some(t) = server.poll_transmit() {
            assert!(!t.is_empty(), "empty transmit");
            assert!(t.len() <= MAX_TRANSMIT);
            sent.extend_from_slice(&t);
        }
        let Some(ProxyEvent::Request(r)) = server.poll_event() else {
            break;
        };
        assert_eq!(server.state(), ProxyState::AwaitingDecision);
        let _ = writeln!(log, "{}", describe(&r));
        match decision {
            Decision::Grant => server.handle_granted(),
            Decision::Refuse(refusal) => server.handle_refused(refusal),
            Decision::Wait => {}
        }
        if decision != Decision::Wait {
            let _ = writeln!(log, "{decision:?}");
        }
    }
    let expected = (server.state() == ProxyState::ReadingHead).then(|| t0() + HEAD_TIMEOUT);
    assert_eq!(server.poll_timeout(), expected, "in {:?}", server.state());
}

/// Runs the machine over `parts` (one read each), then reports eof.
pub fn serve(decision: Decision, parts: &[&[u8]]) -> Served {
    let mut server = server();
    let mut sent = Vec::new();
    let mut log = String::new();
    let mut pending = Vec::new();
    let mut consumed = 0;
    let mut failed = false;
    drain(&mut server, decision, &mut sent, &mut log);
    for part in parts {
        pending.extend_from_slice(part);
        let before = server.state();
        match server.handle_input(t0(), &pending) {
            Ok(n) => {
                assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
                if before != ProxyState::ReadingHead {
                    assert_eq!(n, 0, "consumed bytes after the head");
                } else if server.state() == ProxyState::ReadingHead {
                    assert_eq!(n, pending.len(), "a partial head is consumed whole");
                }
                consumed += n;
                assert!(consumed <= MAX_REQUEST_HEAD);
                pending.drain(..n);
            }
            Err(e) => {
                assert_eq!(server.state(), ProxyState::Closed, "{e:?} left it open");
                let _ = writeln!(log, "error {e:?} code {}", e.log_code());
                failed = true;
            }
        }
        drain(&mut server, decision, &mut sent, &mut log);
    }
    let state = server.state();
    let eof = server.handle_eof();
    let _ = writeln!(log, "eof {eof:?}");
    drain(&mut server, decision, &mut sent, &mut log);
    assert_ne!(server.state(), ProxyState::ReadingHead);
    assert_ne!(server.state(), ProxyState::AwaitingDecision);
    if failed {
        pending.clear();
        consumed = 0;
    }
    Served {
        sent,
        log,
        state,
        consumed,
        left: pending,
    }
}
