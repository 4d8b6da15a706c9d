//! Property tests: `acl::check` against a tiny straight-line model of 3proxy's first-match
//! rules, over a small universe of users, addresses, names, ports, operations and times.
//!
//! Every item token the generator may use comes with its meaning written out by hand as
//! the set of universe members it matches, so the model never calls the code under test.

// Helpers outside `#[test]` functions parse the fixed universe above; a failure is a test bug.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use std::net::IpAddr;
use triproxy_policy::acl::{
    check, first_match, Ace, AclRequest, AclVerdict, Action, CivilTime, Operation,
};
use triproxy_policy::auth::{AuthChain, AuthDecision};
use triproxy_policy::users::Users;
use triproxy_wire::{DomainName, LogCode};

// ----- The universe of requests ---------------------------------------------------------

const REQ_USERS: [Option<&str>; 5] = [None, Some("alice"), Some("bob"), Some("carol"), Some("")];

const CLIENTS: [&str; 7] = [
    "10.0.0.1",        // 0
    "10.0.0.2",        // 1
    "10.0.1.5",        // 2
    "192.168.1.1",     // 3
    "::1",             // 4
    "2001:db8::5",     // 5
    "::ffff:10.0.0.1", // 6: IPv4-mapped, the model treats it as 10.0.0.1
];

const TARGET_IPS: [Option<&str>; 7] = [
    None,                     // 0
    Some("0.0.0.0"),          // 1: unspecified, unknown unless BIND
    Some("192.0.2.1"),        // 2
    Some("192.0.2.200"),      // 3
    Some("198.51.100.7"),     // 4
    Some("2001:db8::1"),      // 5
    Some("::ffff:192.0.2.1"), // 6: mapped 192.0.2.1
];

const TARGET_HOSTS: [Option<&str>; 6] = [
    None,                    // 0
    Some("www.example.com"), // 1
    Some("example.com"),     // 2
    Some("EXAMPLE.com."),    // 3
    Some("cdn.other.org"),   // 4
    Some("tracker.net"),     // 5
];

const PORTS: [Option<u16>; 6] = [None, Some(0), Some(25), Some(80), Some(443), Some(8080)];

const OPS: [Operation; 6] = [
    Operation::Connect,
    Operation::Bind,
    Operation::UdpAssoc,
    Operation::HttpGet,
    Operation::HttpConnect,
    Operation::FtpGet,
];

const SECONDS: [u32; 6] = [0, 28_799, 28_800, 43_200, 43_201, 86_399];

// ----- Item tokens and, by hand, what they match ---------------------------------------

/// User items: token and the ACL name it equals (a request without a user is `-`).
const USER_ITEMS: [&str; 3] = ["alice", "bob", "-"];

/// Source items: token and the client indices it contains.
const SOURCE_ITEMS: [(&str, &[usize]); 10] = [
    ("10.0.0.1", &[0, 6]),
    ("10.0.0.0/24", &[0, 1, 6]),
    ("10.0.0.0/16", &[0, 1, 2, 6]),
    ("10.0.0.2-10.0.1.255", &[1, 2]),
    ("192.168.0.0/16", &[3]),
    ("::1", &[4]),
    ("2001:db8::/32", &[5]),
    ("::-::ffff", &[4]),
    ("0.0.0.0/0", &[0, 1, 2, 3, 6]),
    ("::/0", &[4, 5]),
];

/// Target address items: token and the target-IP indices it contains.
const TARGET_IP_ITEMS: [(&str, &[usize]); 5] = [
    ("192.0.2.0/24", &[2, 3, 6]),
    ("192.0.2.1", &[2, 6]),
    ("198.51.100.0-198.51.100.10", &[4]),
    ("2001:db8::/64", &[5]),
    ("0.0.0.0", &[1]),
];

/// Target host-name items: token and the host indices it matches.
const TARGET_HOST_ITEMS: [(&str, &[usize]); 6] = [
    ("example.com", &[2, 3]),
    ("*.example.com", &[1]),
    ("*example.com", &[1]),
    ("cdn.*", &[4]),
    ("*track*", &[5]),
    ("*.org", &[4]),
];

const PORT_ITEMS: [(&str, &[u16]); 5] = [
    ("80", &[80]),
    ("25", &[25]),
    ("80-443", &[80, 443]),
    ("8000-8999", &[8080]),
    ("0-100", &[0, 25, 80]),
];

const OP_ITEMS: [(&str, &[Operation]); 7] = [
    ("CONNECT", &[Operation::Connect]),
    ("BIND", &[Operation::Bind]),
    ("UDPASSOC", &[Operation::UdpAssoc]),
    ("HTTP", &[Operation::HttpGet]),
    ("HTTPS", &[Operation::HttpConnect]),
    ("FTP", &[Operation::FtpGet]),
    ("HTTP_GET", &[Operation::HttpGet]),
];

const WEEKDAY_ITEMS: [(&str, &[u8]); 6] = [
    ("0", &[0]),
    ("6", &[6]),
    ("1-5", &[1, 2, 3, 4, 5]),
    ("7", &[0]),
    ("06", &[0, 6]),
    ("0-7", &[0, 1, 2, 3, 4, 5, 6]),
];

const TIME_ITEMS: [(&str, u32, u32); 4] = [
    ("00:00:00-08:00:00", 0, 28_800),
    ("08:00:00-18:00:00", 28_800, 64_800),
    ("18:00:00-24:00:00", 64_800, 86_400),
    ("12:00:00-12:00:01", 43_200, 43_201),
];

// ----- Generated rules and requests -----------------------------------------------------

/// One rule: for each of the seven fields, `None` = `*`, else indices into the item tables
/// (targets index the IP items first, then the host items). `fields` says how many fields
/// are written; the rest are omitted (any).
#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    users: Option<Vec<usize>>,
    sources: Option<Vec<usize>>,
    targets: Option<Vec<usize>>,
    ports: Option<Vec<usize>>,
    ops: Option<Vec<usize>>,
    days: Option<Vec<usize>>,
    times: Option<Vec<usize>>,
    fields: usize,
    weight: bool,
}

#[derive(Debug, Clone, Copy)]
struct Req {
    user: usize,
    client: usize,
    ip: usize,
    host: usize,
    port: usize,
    op: usize,
    weekday: u8,
    second: usize,
}

fn list(n: usize) -> impl Strategy<Value = Option<Vec<usize>>> {
    prop::option::weighted(0.6, prop::collection::vec(0..n, 1..=3))
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        any::<bool>(),
        list(USER_ITEMS.len()),
        list(SOURCE_ITEMS.len()),
        list(TARGET_IP_ITEMS.len() + TARGET_HOST_ITEMS.len()),
        list(PORT_ITEMS.len()),
        list(OP_ITEMS.len()),
        list(WEEKDAY_ITEMS.len()),
        list(TIME_ITEMS.len()),
        0..=7usize,
        any::<bool>(),
    )
        .prop_map(
            |(allow, users, sources, targets, ports, ops, days, times, fields, weight)| Rule {
                allow,
                users,
                sources,
                targets,
                ports,
                ops,
                days,
                times,
                fields,
                weight,
            },
        )
}

fn req() -> impl Strategy<Value = Req> {
    (
        0..REQ_USERS.len(),
        0..CLIENTS.len(),
        0..TARGET_IPS.len(),
        0..TARGET_HOSTS.len(),
        0..PORTS.len(),
        0..OPS.len(),
        0..7u8,
        0..SECONDS.len(),
    )
        .prop_map(|(user, client, ip, host, port, op, weekday, second)| Req {
            user,
            client,
            ip,
            host,
            port,
            op,
            weekday,
            second,
        })
}

// ----- Rendering rules to configuration words -------------------------------------------

fn render(items: &Option<Vec<usize>>, token: impl Fn(usize) -> &'static str) -> String {
    match items {
        None => "*".to_string(),
        Some(ix) => ix.iter().map(|&i| token(i)).collect::<Vec<_>>().join(","),
    }
}

fn target_token(i: usize) -> &'static str {
    match TARGET_IP_ITEMS.get(i) {
        Some((t, _)) => t,
        None => TARGET_HOST_ITEMS[i - TARGET_IP_ITEMS.len()].0,
    }
}

fn words(r: &Rule) -> Vec<String> {
    let mut w = vec![
        render(&r.users, |i| USER_ITEMS[i]),
        render(&r.sources, |i| SOURCE_ITEMS[i].0),
        render(&r.targets, target_token),
        render(&r.ports, |i| PORT_ITEMS[i].0),
        render(&r.ops, |i| OP_ITEMS[i].0),
        render(&r.days, |i| WEEKDAY_ITEMS[i].0),
        render(&r.times, |i| TIME_ITEMS[i].0),
    ];
    w.truncate(r.fields);
    if r.weight && r.fields == 7 {
        w.push("100".to_string());
    }
    w
}

fn build(r: &Rule) -> Ace {
    let w = words(r);
    let refs: Vec<&str> = w.iter().map(String::as_str).collect();
    let action = if r.allow { Action::Allow } else { Action::Deny };
    Ace::parse(action, &refs).unwrap_or_else(|e| panic!("{refs:?}: {e}"))
}

// ----- The model ------------------------------------------------------------------------

/// A field that was omitted (beyond `fields`) or `*` matches anything.
fn written<'a>(r: &Rule, index: usize, f: &'a Option<Vec<usize>>) -> Option<&'a Vec<usize>> {
    if index < r.fields {
        f.as_ref()
    } else {
        None
    }
}

fn model_matches(r: &Rule, q: &Req) -> bool {
    let op = OPS[q.op];
    // Users: a missing or empty name is `-`.
    if let Some(items) = written(r, 0, &r.users) {
        let name = match REQ_USERS[q.user] {
            None | Some("") => "-",
            Some(n) => n,
        };
        if !items.iter().any(|&i| USER_ITEMS[i] == name) {
            return false;
        }
    }
    if let Some(items) = written(r, 1, &r.sources) {
        if !items.iter().any(|&i| SOURCE_ITEMS[i].1.contains(&q.client)) {
            return false;
        }
    }
    if let Some(items) = written(r, 2, &r.targets) {
        // The unspecified address is unknown except for BIND.
        let ip_known = q.ip != 0 && (q.ip != 1 || op == Operation::Bind);
        let host_known = q.host != 0;
        if ip_known || host_known {
            let hit = items.iter().any(|&i| match TARGET_IP_ITEMS.get(i) {
                Some((_, members)) => ip_known && members.contains(&q.ip),
                None => {
                    let (_, members) = TARGET_HOST_ITEMS[i - TARGET_IP_ITEMS.len()];
                    host_known && members.contains(&q.host)
                }
            });
            if !hit {
                return false;
            }
        }
    }
    if let Some(items) = written(r, 3, &r.ports) {
        // Port 0 is unknown except for BIND.
        let port = match PORTS[q.port] {
            Some(0) if op != Operation::Bind => None,
            p => p,
        };
        if let Some(p) = port {
            if !items.iter().any(|&i| PORT_ITEMS[i].1.contains(&p)) {
                return false;
            }
        }
    }
    if let Some(items) = written(r, 4, &r.ops) {
        if !items.iter().any(|&i| OP_ITEMS[i].1.contains(&op)) {
            return false;
        }
    }
    if let Some(items) = written(r, 5, &r.days) {
        if !items
            .iter()
            .any(|&i| WEEKDAY_ITEMS[i].1.contains(&q.weekday))
        {
            return false;
        }
    }
    if let Some(items) = written(r, 6, &r.times) {
        let t = SECONDS[q.second];
        if !items
            .iter()
            .any(|&i| TIME_ITEMS[i].1 <= t && t < TIME_ITEMS[i].2)
        {
            return false;
        }
    }
    true
}

/// 3proxy `checkACL`: first match wins, no match refuses, an empty list allows.
fn model_check(rules: &[Rule], q: &Req) -> (AclVerdict, Option<usize>) {
    if rules.is_empty() {
        return (AclVerdict::Allow, None);
    }
    // A UDP ASSOCIATE naming no destination is not refused by a `deny` that restricts the
    // destination: that entry refuses only some datagrams, which are checked one by one.
    let op = OPS[q.op];
    let no_destination = op == Operation::UdpAssoc
        && (q.ip == 0 || q.ip == 1)
        && q.host == 0
        && matches!(PORTS[q.port], None | Some(0));
    for (i, r) in rules.iter().enumerate() {
        let partial_deny =
            !r.allow && (written(r, 2, &r.targets).is_some() || written(r, 3, &r.ports).is_some());
        if no_destination && partial_deny {
            continue;
        }
        if model_matches(r, q) {
            let v = if r.allow {
                AclVerdict::Allow
            } else {
                AclVerdict::Deny
            };
            return (v, Some(i));
        }
    }
    (AclVerdict::NoMatch, None)
}

// ----- Running a request through the code under test ------------------------------------

fn with_request<T>(
    q: &Req,
    user_override: Option<Option<&str>>,
    f: impl FnOnce(&AclRequest<'_>) -> T,
) -> T {
    let host = TARGET_HOSTS[q.host].map(|h| DomainName::new(h.as_bytes()).unwrap());
    let request = AclRequest {
        user: user_override.unwrap_or(REQ_USERS[q.user]),
        client: CLIENTS[q.client].parse().unwrap(),
        target_host: host.as_ref(),
        target_ip: TARGET_IPS[q.ip].map(|s| s.parse::<IpAddr>().unwrap()),
        port: PORTS[q.port],
        operation: OPS[q.op],
        time: CivilTime {
            weekday: q.weekday,
            seconds_of_day: SECONDS[q.second],
        },
    };
    f(&request)
}

proptest! {
    #[test]
    fn check_agrees_with_model(
        rules in prop::collection::vec(rule(), 0..6),
        reqs in prop::collection::vec(req(), 1..8),
    ) {
        let acl: Vec<Ace> = rules.iter().map(build).collect();
        for q in &reqs {
            let (want, want_index) = model_check(&rules, q);
            let (got, got_index) = with_request(q, None, |r| (check(&acl, r), first_match(&acl, r)));
            prop_assert_eq!(got, want, "request {:?}, rules {:?}", q, rules.iter().map(words).collect::<Vec<_>>());
            if !acl.is_empty() {
                prop_assert_eq!(got_index, want_index);
            }
            let code = match want {
                AclVerdict::Allow => None,
                AclVerdict::Deny => Some(LogCode(1)),
                AclVerdict::NoMatch => Some(LogCode(3)),
            };
            prop_assert_eq!(got.log_code(), code);
        }
    }

    /// `auth iponly strong` against the model: iponly runs the ACL with the user hidden;
    /// if that refuses, strong checks the password, then the ACL with the user is final;
    /// all failing, the larger code.
    #[test]
    fn iponly_strong_agrees_with_model(
        rules in prop::collection::vec(rule(), 0..5),
        q in req(),
        password_ok in any::<bool>(),
    ) {
        let mut users = Users::new();
        users.add_spec("alice:CL:pw").unwrap();
        users.add_spec("bob:CL:pw").unwrap();
        let chain = AuthChain::parse(&["iponly", "strong"]).unwrap();
        let acl: Vec<Ace> = rules.iter().map(build).collect();

        let anonymous = Req { user: 0, ..q };
        let presented = REQ_USERS[q.user].filter(|u| !u.is_empty());
        let want = match model_check(&rules, &anonymous) {
            (AclVerdict::Allow, rule) => Ok(rule),
            (first, _) => {
                let ip_code = if first == AclVerdict::Deny { 1 } else { 3 };
                let strong = match presented {
                    None => Err(4),
                    Some("alice") | Some("bob") if password_ok => Ok(()),
                    Some("alice") | Some("bob") => Err(6),
                    Some(_) => Err(5),
                };
                match strong {
                    Err(code) => Err(code.max(ip_code)),
                    Ok(()) => match model_check(&rules, &q) {
                        (AclVerdict::Allow, rule) => Ok(rule),
                        (AclVerdict::Deny, _) => Err(1),
                        (_, _) => Err(3),
                    },
                }
            }
        };
        let password: &[u8] = if password_ok { b"pw" } else { b"nope" };
        let got = with_request(&q, Some(Some("ignored")), |r| {
            chain.decide(&users, presented.map(str::as_bytes), Some(password), &acl, r)
        });
        match (want, got) {
            (Ok(rule), AuthDecision::Granted { rule: got_rule, .. }) => prop_assert_eq!(rule, got_rule),
            (Err(code), AuthDecision::Refused(got_code)) => prop_assert_eq!(LogCode(code), got_code),
            (want, got) => prop_assert!(false, "want {:?}, got {:?}", want, got),
        }
    }

    /// Arbitrary words never panic the parser; errors name a field or the field count.
    #[test]
    fn parse_never_panics(fields in prop::collection::vec("[-*,./:0-9a-zA-Z_ \\x00\u{e9}]{0,24}", 0..10)) {
        let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
        if let Err(e) = Ace::parse(Action::Deny, &refs) {
            prop_assert!(e.to_string().starts_with("ACL "));
        }
    }
}
