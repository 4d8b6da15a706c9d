#![cfg_attr(fuzzing, no_main)]
//! The session engine (`triproxy_policy::session::Session`: SOCKS or HTTP proxy server
//! machine or the port mapper's, auth chain, users and ACL together) fed an arbitrary client
//! stream, once whole and once in chunks, with a driver whose answers to each intent come
//! from the input.
//!
//! Input: `policy, decisions, flags, split, stream...`. `policy` picks `-u` or the HTTP
//! proxy front (its two low bits; 3 is HTTP), the auth chain
//! and one of a few ACLs (users `alice:CL:secret` and `bob:pw` always exist); `decisions`
//! fixes the answers to Resolve, Connect and the relay's end; `flags` the client address,
//! whether the handshake deadline fires, and whether the service is a port mapper instead
//! (bit 3; bit 4 picks its target, an address or a name); `split` the chunking. The
//! driver drains the session once before any input, as every driver must (a port
//! mapper decides at once).
//!
//! Oracles: no panic; the transcript (bytes to the client, every intent, bytes handed back
//! at the relay) is the same for the whole stream and the chunked one; every session ends
//! with exactly one Log intent followed by Close and emits nothing after; a Connect lists
//! 1..=MAX_CONNECT_ADDRS addresses; code 0 is logged only after a clean relay.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use triproxy_fuzz::policy::acl::{Ace, Action, CivilTime};
use triproxy_fuzz::policy::auth::AuthChain;
use triproxy_fuzz::policy::service::{FrontProtocol, NeedUser, ServicePolicy};
use triproxy_fuzz::policy::session::{
    ConnectError, Intent, RelayEnd, RelayReport, ResolveError, Session, MAX_CONNECT_ADDRS,
};
use triproxy_fuzz::policy::users::Users;
use triproxy_fuzz::wire::{DomainName, LogCode, TargetAddr};
use triproxy_fuzz::{chunks, start, Input};

const CHAINS: [&[&str]; 8] = [
    &["iponly"],
    &["strong"],
    &["none"],
    &["useronly"],
    &["iponly", "strong"],
    &["strong", "none"],
    &["useronly", "strong"],
    &["none", "strong"],
];

const ACLS: [&[(Action, &[&str])]; 8] = [
    &[],
    &[(Action::Allow, &["*", "127.0.0.0/8"]), (Action::Deny, &[])],
    &[
        (Action::Allow, &["alice", "*", "*", "80,443"]),
        (Action::Deny, &["*", "*", "10.0.0.0/8"]),
    ],
    &[
        (Action::Deny, &["*", "*", "example.org"]),
        (Action::Allow, &[]),
    ],
    &[(Action::Allow, &["*", "*", "*", "1-1024", "CONNECT"])],
    &[
        (Action::Allow, &["bob"]),
        (Action::Allow, &["*", "192.168.0.0/16"]),
    ],
    &[(Action::Deny, &[])],
    &[(
        Action::Allow,
        &[
            "*",
            "*",
            "*.example.org,192.0.2.0/24",
            "80",
            "*",
            "1-5",
            "00:00:00-23:59:59",
        ],
    )],
];

fn policy(b: u8) -> Option<ServicePolicy> {
    let mut p = ServicePolicy::new(1080);
    (p.needuser, p.protocol) = [
        (NeedUser::Never, FrontProtocol::Socks),
        (NeedUser::IfOffered, FrontProtocol::Socks),
        (NeedUser::Required, FrontProtocol::Socks),
        (NeedUser::IfOffered, FrontProtocol::Http),
    ][usize::from(b & 3)]
    .clone();
    p.auth = AuthChain::parse(CHAINS.get(usize::from((b >> 2) & 7))?).ok()?;
    let mut acl = Vec::new();
    for (action, fields) in *ACLS.get(usize::from(b >> 5))? {
        acl.push(Ace::parse(*action, fields).ok()?);
    }
    p.acl = Arc::from(acl);
    let mut users = Users::new();
    users.add_spec("alice:CL:secret").ok()?;
    users.add_spec("bob:pw").ok()?;
    p.users = Arc::new(users);
    Some(p)
}

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    sent: Vec<u8>,
    log: String,
    handed_back: Option<Vec<u8>>,
}

struct Driver {
    session: Session,
    decisions: u8,
    max_duration: Duration,
    sent: Vec<u8>,
    log: String,
    relaying: bool,
    relayed: bool,
    logged: Option<LogCode>,
    closed: bool,
}

impl Driver {
    /// Drains transmits and intents, answering each; true if any decision was made.
    fn step(&mut self) -> bool {
        let now = start();
        let mut decided = false;
        loop {
            while let Some(t) = self.session.poll_transmit() {
                assert!(!t.is_empty(), "empty transmit");
                self.sent.extend_from_slice(&t);
            }
            let Some(intent) = self.session.poll_intent() else {
                return decided;
            };
            assert!(!self.closed, "intent after Close: {intent:?}");
            let _ = writeln!(self.log, "{intent:?}");
            match intent {
                Intent::Resolve { port, .. } => {
                    decided = true;
                    let many: Vec<SocketAddr> = (1..=9u8)
                        .map(|i| SocketAddr::from(([192, 0, 2, i], port)))
                        .collect();
                    let result: Result<Vec<SocketAddr>, ResolveError> = match self.decisions & 7 {
                        0 => Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]),
                        1 => Ok(vec![
                            SocketAddr::from(([10, 0, 0, 1], port)),
                            SocketAddr::from(([192, 0, 2, 5], port)),
                        ]),
                        2 => Ok(Vec::new()),
                        3 => Err(ResolveError::NotFound),
                        4 => Err(ResolveError::InvalidName),
                        5 => Err(ResolveError::Failed),
                        6 => Ok(many),
                        _ => Ok(vec![SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], port))]),
                    };
                    match &result {
                        Ok(addrs) => self.session.handle_resolved(now, Ok(addrs)),
                        Err(e) => self.session.handle_resolved(now, Err(*e)),
                    }
                }
                Intent::Connect { addrs, .. } => {
                    decided = true;
                    assert!(
                        !addrs.is_empty() && addrs.len() <= MAX_CONNECT_ADDRS,
                        "{} addresses",
                        addrs.len()
                    );
                    let local = SocketAddr::from(([198, 51, 100, 1], 40000));
                    match (self.decisions >> 3) & 3 {
                        0 => match addrs.first() {
                            Some(a) => self.session.handle_connected(now, local, *a),
                            None => self.session.handle_connect_failed(now, ConnectError::Other),
                        },
                        1 => self
                            .session
                            .handle_connect_failed(now, ConnectError::Refused),
                        2 => self
                            .session
                            .handle_connect_failed(now, ConnectError::TimedOut),
                        _ => match addrs.last() {
                            Some(a) => self.session.handle_connected(now, local, *a),
                            None => self.session.handle_connect_failed(now, ConnectError::Other),
                        },
                    }
                }
                Intent::Relay(_) => {
                    assert!(!self.relaying, "second Relay");
                    self.relaying = true;
                }
                Intent::Log(record) => {
                    assert!(self.logged.is_none(), "second Log");
                    // Time only moves when the handshake deadline fires.
                    assert!(
                        record.duration <= self.max_duration,
                        "{:?}",
                        record.duration
                    );
                    if record.code == LogCode::SUCCESS {
                        assert!(self.relayed, "code 0 without a clean relay");
                    } else {
                        assert!(record.reason.is_some(), "failure without a reason");
                    }
                    self.logged = Some(record.code);
                }
                Intent::Close => {
                    assert!(self.logged.is_some(), "Close before Log");
                    self.closed = true;
                    assert!(self.session.is_done());
                }
                // An intent this driver does not know yet (the enum is non_exhaustive): it is
                // in the transcript; the session still has to end at EOF.
                _ => {}
            }
        }
    }
}

fn drive(policy: &Arc<ServicePolicy>, decisions: u8, flags: u8, parts: &[&[u8]]) -> Transcript {
    let now = start();
    let client = match flags & 3 {
        0 => SocketAddr::from(([127, 0, 0, 1], 50000)),
        1 => SocketAddr::from(([192, 168, 1, 5], 40000)),
        _ => SocketAddr::from(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 9], 40000)),
    };
    let local = SocketAddr::from(([127, 0, 0, 1], 1080));
    let time = CivilTime {
        weekday: 1 + (flags >> 5) % 7,
        seconds_of_day: 3600,
    };
    let mut d = Driver {
        session: Session::new(now, Arc::clone(policy), client, local, time),
        decisions,
        max_duration: policy.timeouts.handshake,
        sent: Vec::new(),
        log: String::new(),
        relaying: false,
        relayed: false,
        logged: None,
        closed: false,
    };
    d.step();
    let mut pending: Vec<u8> = Vec::new();
    for part in parts {
        pending.extend_from_slice(part);
        loop {
            let n = d.session.handle_input(now, &pending);
            assert!(n <= pending.len(), "consumed {n} of {}", pending.len());
            assert!(!(d.relaying && n > 0), "consumed relay data");
            pending.drain(..n);
            if !d.step() {
                break;
            }
        }
    }
    // Bytes the session left unconsumed once it relays are the client's first data.
    let handed_back = d.relaying.then(|| pending.clone());
    if d.relaying && !d.closed {
        let end = [
            RelayEnd::Clean,
            RelayEnd::IdleTimeout,
            RelayEnd::ClientError,
            RelayEnd::ServerError,
            RelayEnd::SystemError,
            RelayEnd::UnsentData,
        ][usize::from(decisions >> 5) % 6];
        d.relayed = end == RelayEnd::Clean;
        let report = RelayReport {
            bytes_in: 7,
            bytes_out: u64::try_from(pending.len()).unwrap_or(u64::MAX),
            end,
        };
        d.session.handle_relay_end(now, report);
        d.step();
    }
    if flags & 4 != 0 {
        let handshake = policy.timeouts.handshake;
        d.session
            .handle_timeout(now + handshake - Duration::from_nanos(1));
        d.step();
        d.session.handle_timeout(now + handshake);
        d.step();
        assert_eq!(
            d.session.poll_timeout(),
            None,
            "deadline armed after it fired"
        );
    }
    d.session.handle_client_eof(now);
    d.step();
    assert!(
        d.closed && d.session.is_done(),
        "session not finished after EOF"
    );
    Transcript {
        sent: d.sent,
        log: d.log,
        handed_back,
    }
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let Some(mut policy) = policy(input.byte()) else {
        panic!("a fixed policy failed to parse");
    };
    let decisions = input.byte();
    let flags = input.byte();
    if flags & 8 != 0 {
        policy.protocol = FrontProtocol::PortMap(if flags & 16 == 0 {
            TargetAddr::Ip(SocketAddr::from(([10, 0, 0, 1], 25)))
        } else {
            match DomainName::new(b"example.org") {
                Ok(name) => TargetAddr::Domain(name, 80),
                Err(e) => panic!("a fixed name failed: {e}"),
            }
        });
    }
    let policy = Arc::new(policy);
    let split = input.byte();
    let stream = input.rest();
    let whole = drive(&policy, decisions, flags, &[stream]);
    if let Some(back) = &whole.handed_back {
        assert!(
            stream.ends_with(back),
            "handed-back bytes are not the end of the stream"
        );
    }
    let split = drive(&policy, decisions, flags, &chunks(stream, split));
    assert_eq!(whole, split, "chunking changed the transcript");
});
