//! Shared harness of the session transcript tests: a policy from config-like words, a
//! session at a fixed civil time, and draining its output.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;
use triproxy_policy::acl::{Ace, Action, CivilTime};
use triproxy_policy::auth::AuthChain;
use triproxy_policy::service::{FrontProtocol, ServicePolicy};
use triproxy_policy::session::{Intent, Session};
use triproxy_policy::users::Users;

/// Wednesday noon: every session starts at this civil time.
pub const TIME: CivilTime = CivilTime {
    weekday: 3,
    seconds_of_day: 12 * 3600,
};

/// A service of `protocol` on `port` with this `auth` chain, ACL and `users` entries.
pub fn policy_for(
    protocol: FrontProtocol,
    port: u16,
    auth: &[&str],
    acl: &[(Action, &[&str])],
    users: &[&str],
) -> Arc<ServicePolicy> {
    let mut p = ServicePolicy::new(port);
    p.protocol = protocol;
    p.auth = AuthChain::parse(auth).unwrap();
    p.acl = acl
        .iter()
        .map(|(a, f)| Ace::parse(*a, f).unwrap())
        .collect::<Vec<_>>()
        .into();
    let mut u = Users::new();
    for spec in users {
        u.add_spec(spec).unwrap();
    }
    p.users = Arc::new(u);
    Arc::new(p)
}

/// A session of a client at 127.0.0.1:50000 that reached the service on 127.0.0.1.
pub fn session_of(p: Arc<ServicePolicy>, now: Instant) -> Session {
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], p.listen_port));
    Session::new(now, p, "127.0.0.1:50000".parse().unwrap(), local, TIME)
}

/// Drains transmits (concatenated) and intents.
pub fn drain(s: &mut Session) -> (Vec<u8>, Vec<Intent>) {
    let mut out = Vec::new();
    while let Some(t) = s.poll_transmit() {
        out.extend_from_slice(&t);
    }
    let mut intents = Vec::new();
    while let Some(i) = s.poll_intent() {
        intents.push(i);
    }
    (out, intents)
}
