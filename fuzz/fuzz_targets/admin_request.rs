#![cfg_attr(fuzzing, no_main)]
//! The web admin (`triproxy::admin`): a request head as a client sends it, parsed, then
//! answered by a fixed admin (`auth strong`, user `a` with password `b`, two counter
//! rules, read-only when the first byte is odd).
//!
//! Input: `flags, request bytes…`.
//!
//! Oracles: no panic; a complete head's every strict prefix (sampled) is `Partial`, and
//! what follows it (a body) does not change it; a
//! request's path starts with `/`, is at most `MAX_PATH_LEN` bytes and has no `?`;
//! credentials are at most `MAX_CREDENTIAL_LEN` bytes each; every answer is one response
//! whose `Content-Length` is its body's length, with a Basic challenge exactly on 401;
//! a read-only admin never switches a counter.

use std::sync::Arc;
use triproxy_fuzz::daemon::admin::request::{self, Parsed, MAX_CREDENTIAL_LEN, MAX_PATH_LEN};
use triproxy_fuzz::daemon::admin::{self, AdminState};
use triproxy_fuzz::daemon::metrics::{counter_rows, Metrics};
use triproxy_fuzz::policy::acl::{Ace, Action, CivilTime};
use triproxy_fuzz::policy::auth::AuthChain;
use triproxy_fuzz::policy::quota::{CountDirection, Period, Quotas, Rule};
use triproxy_fuzz::policy::users::Users;
use triproxy_fuzz::Input;

fn state(read_only: bool) -> Option<AdminState> {
    let mut users = Users::new();
    users.add_spec("a:CL:b").ok()?;
    let any = Ace::parse(Action::Allow, &[]).ok()?;
    let mut quotas = Quotas::new();
    quotas
        .push(Rule::count(
            CountDirection::In,
            1,
            "x",
            Period::Daily,
            1,
            any.clone(),
        ))
        .ok()?;
    quotas.push(Rule::exempt(CountDirection::All, any)).ok()?;
    Some(AdminState {
        services: Vec::new(),
        quotas: Arc::new(quotas),
        users: Arc::new(users),
        auth: AuthChain::parse(&["strong"]).ok()?,
        acl: Arc::from(Vec::new()),
        read_only,
        metrics: Metrics::new(),
        reload: None,
    })
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let read_only = input.byte() & 1 == 1;
    let bytes = input.rest();
    let handled = match request::parse(bytes) {
        Ok(Parsed::Partial) => return,
        Err(e) => admin::refuse(e),
        Ok(Parsed::Complete(req)) => {
            assert!(req.head_len <= bytes.len());
            let head_only = request::parse(&bytes[..req.head_len]);
            assert_eq!(head_only, Ok(Parsed::Complete(req.clone())));
            let step = (req.head_len / 64).max(1);
            for n in (0..req.head_len).step_by(step) {
                let prefix = request::parse(&bytes[..n]);
                assert!(
                    matches!(prefix, Ok(Parsed::Partial)),
                    "prefix {n}: {prefix:?}"
                );
            }
            assert!(req.path.starts_with('/') && !req.path.contains('?'));
            assert!(req.path.len() <= MAX_PATH_LEN);
            if let Some(c) = &req.credentials {
                assert!(c.user.len() <= MAX_CREDENTIAL_LEN);
                assert!(c.password.len() <= MAX_CREDENTIAL_LEN);
            }
            let Some(state) = state(read_only) else {
                panic!("the fixed admin state is valid")
            };
            let time = CivilTime {
                weekday: 1,
                seconds_of_day: 0,
            };
            let client = std::net::IpAddr::from([127, 0, 0, 1]);
            let handled = admin::respond(&state, &req, client, time);
            if read_only {
                assert!(counter_rows(&state.quotas).iter().all(|r| !r.disabled));
            }
            handled
        }
    };
    let Some(answer) = handled.answer else {
        return;
    };
    let out = answer.bytes();
    let Some(split) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!("no end of head")
    };
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let body_len = out.len() - split - 4;
    assert!(head.starts_with("HTTP/1.1 "));
    assert!(
        head.contains(&format!("\r\nContent-Length: {body_len}\r\n")),
        "{head}"
    );
    assert_eq!(
        head.contains("\r\nWWW-Authenticate: Basic"),
        head.starts_with("HTTP/1.1 401 "),
        "{head}"
    );
});
