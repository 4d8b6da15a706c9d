#![cfg_attr(fuzzing, no_main)]
//! The policy crate's configuration parsers on arbitrary words: ACL entries
//! (`triproxy_policy::acl::Ace::parse` and the field parsers it uses), auth chains
//! (`AuthChain::parse`), user specs (`Users::add_spec`, cleartext, `CR` and `NT`),
//! `authcache` lines (`AuthCacheLine::parse`) and bandwidth rates
//! (`bandlim::parse_rate`, then a bucket at that rate), `parent` lines
//! (`parent::ParentHop::parse`, added to the last entry), then the decisions made with
//! whatever parsed and chains drawn from every entry's parents.
//!
//! Input: text, one command per line, words separated by whitespace: `allow ...` /
//! `deny ...` add an ACL entry, `parent ...` a hop to the last one, `auth ...` sets the
//! chain, `users ...` adds users, `authcache ...` sets the cache; on any
//! other line each word goes through every field parser.
//!
//! Oracles: no panic; a cleartext user spec that was accepted verifies with the password
//! it states, and a hashed one refuses the empty password with its type's code (7, 8) or
//! accepts it; the cache never holds more than its capacity;
//! `check` agrees with `first_match` (empty ACL: allow); a drawn chain has at most
//! `MAX_CHAIN_HOPS` hops, all from the entry, and a `tcp`/`http` hop only last; `decide` never grants through a
//! `deny` rule and names a rule that exists and allows.

use std::net::IpAddr;
use triproxy_fuzz::policy::acl::{
    check, first_match, Ace, AclRequest, AclVerdict, Action, CivilTime, HostPattern, IpRange,
    Operation, OperationSet, PortRange, TimePeriod, Weekdays,
};
use triproxy_fuzz::policy::auth::{AuthChain, AuthDecision, AuthMethod};
use triproxy_fuzz::policy::authcache::{AuthCache, AuthCacheLine, ServiceAuthCache};
use triproxy_fuzz::policy::bandlim::{parse_rate, Allowance, Bucket};
use triproxy_fuzz::policy::parent::{ParentHop, MAX_CHAIN_HOPS};
use triproxy_fuzz::policy::users::Users;
use triproxy_fuzz::wire::{DomainName, LogCode};

const MAX_LINES: usize = 64;
const MAX_WORDS: usize = 64;

/// What `add_spec` documents for an accepted `spec`: the name, and the cleartext password
/// or the log code of a wrong password of its hashed type.
fn stated_password(spec: &str) -> Option<(&str, Result<&str, LogCode>)> {
    let (name, rest) = spec.split_once(':')?;
    match rest.split_once(':') {
        None => Some((name, Ok(rest))),
        Some(("" | "CL", password)) => Some((name, Ok(password))),
        Some(("CR", _)) => Some((name, Err(LogCode::BAD_CR_PASSWORD))),
        Some(("NT", _)) => Some((name, Err(LogCode::BAD_NT_PASSWORD))),
        Some(_) => None,
    }
}

fn each_field_parser(word: &str) {
    if let Ok(range) = IpRange::parse(word) {
        let _ = range.contains(IpAddr::from([10, 0, 0, 1]));
        let _ = range.contains(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]));
    }
    if let Ok(pattern) = HostPattern::parse(word) {
        let _ = pattern.matches(b"www.example.org");
        let _ = pattern.matches(word.as_bytes());
    }
    if let Ok(ports) = PortRange::parse(word) {
        assert!(ports.first <= ports.last, "{word} parsed as {ports:?}");
        assert!(ports.contains(ports.first) && ports.contains(ports.last));
    }
    if let Ok(ops) = OperationSet::parse_token(word) {
        for op in Operation::ALL {
            let _ = ops.contains(op);
        }
    }
    if let Ok(days) = Weekdays::parse_item(word) {
        for day in 0..=7 {
            let _ = days.contains(day);
        }
    }
    if let Ok(period) = TimePeriod::parse(word) {
        for t in [0, period.start, period.end, 86_399, 86_400] {
            let _ = period.contains(t);
        }
    }
    let _ = AuthMethod::parse(word);
    if let Ok(bits) = parse_rate(word) {
        // A bucket at any accepted rate gives a usable answer at once and after a charge.
        let bucket = Bucket::new(bits);
        assert_eq!(bucket.rate_bits(), bits);
        let now = std::time::Instant::now();
        assert!(matches!(bucket.allowance(now, 1 << 16), Allowance::Bytes(n) if n >= 1));
        bucket.charge(now, usize::MAX);
        if let Allowance::WaitUntil(t) = bucket.allowance(now, 1) {
            assert!(t > now);
        }
    }
}

triproxy_fuzz::target!(|data| {
    let text = String::from_utf8_lossy(data);
    let mut acl: Vec<Ace> = Vec::new();
    let mut chain = AuthChain::default_chain();
    let mut users = Users::new();
    let mut cache: Option<ServiceAuthCache> = None;
    for line in text.lines().take(MAX_LINES) {
        let words: Vec<&str> = line.split_whitespace().take(MAX_WORDS).collect();
        match words.split_first() {
            Some((&"allow", fields)) => acl.extend(Ace::parse(Action::Allow, fields).ok()),
            Some((&"deny", fields)) => acl.extend(Ace::parse(Action::Deny, fields).ok()),
            Some((&"parent", words)) => {
                if let (Ok(hop), Some(ace)) = (ParentHop::parse(words), acl.last_mut()) {
                    let _ = ace.push_parent(hop);
                }
            }
            Some((&"auth", methods)) => {
                if let Ok(c) = AuthChain::parse(methods) {
                    assert_eq!(c.methods().len(), methods.len());
                    chain = c;
                }
            }
            Some((&"users", specs)) => {
                for spec in specs {
                    if users.add_spec(spec).is_ok() {
                        let Some((name, password)) = stated_password(spec) else {
                            panic!("{spec} accepted, but not as a CL, CR or NT password");
                        };
                        match password {
                            Ok(p) => {
                                assert_eq!(users.verify(name.as_bytes(), p.as_bytes()), Ok(()))
                            }
                            Err(code) => {
                                let v = users.verify(name.as_bytes(), b"");
                                assert!(v == Ok(()) || v == Err(code), "{spec}: {v:?}");
                            }
                        }
                    }
                }
            }
            Some((&"authcache", args)) => {
                if let Ok(line) = AuthCacheLine::parse(args) {
                    // A small table, so that the bound is reached.
                    cache = Some(ServiceAuthCache {
                        settings: line.settings,
                        table: std::sync::Arc::new(AuthCache::new(line.size.min(2))),
                    });
                }
            }
            _ => words.iter().for_each(|w| each_field_parser(w)),
        }
    }

    for ace in &acl {
        let parents = ace.parents();
        for random in [0, 1, u64::MAX, 0x5555_5555_5555_5555] {
            let chain = parents.choose(random);
            assert!(chain.len() <= MAX_CHAIN_HOPS);
            assert!(chain.iter().all(|h| parents.hops().contains(h)));
            if let Some((_, before_last)) = chain.split_last() {
                assert!(before_last.iter().all(|h| !h.kind.is_terminal()));
            }
        }
    }

    let start = std::time::Instant::now();
    let host = DomainName::new(b"www.example.org").ok();
    let alice: (Option<&[u8]>, Option<&[u8]>) = (Some(b"alice"), Some(b"secret"));
    let bob: (Option<&[u8]>, Option<&[u8]>) = (Some(b"bob"), Some(b"x"));
    let cases = [
        (Operation::Connect, (None, None)),
        (Operation::Bind, alice),
        (Operation::UdpAssoc, bob),
    ];
    for (i, (op, (user, password))) in cases.into_iter().enumerate() {
        let req = AclRequest {
            user: if i == 1 { Some("alice") } else { None },
            client: IpAddr::from([192, 168, 1, 5]),
            target_host: host.as_ref().filter(|_| i != 0),
            target_ip: Some(IpAddr::from([192, 0, 2, 7])),
            port: Some(if i == 2 { 0 } else { 443 }),
            operation: op,
            time: CivilTime {
                weekday: 1 + u8::try_from(i).unwrap_or(0),
                seconds_of_day: 43_200,
            },
        };
        let verdict = check(&acl, &req);
        let expected = match first_match(&acl, &req).and_then(|i| acl.get(i)) {
            _ if acl.is_empty() => AclVerdict::Allow,
            Some(ace) if ace.action == Action::Allow => AclVerdict::Allow,
            Some(_) => AclVerdict::Deny,
            None => AclVerdict::NoMatch,
        };
        assert_eq!(verdict, expected);
        let _ = chain.authenticate(&users, user, password);
        if let AuthDecision::Granted { rule: Some(r), .. } =
            chain.decide(&users, user, password, &acl, &req)
        {
            let action = acl.get(r).map(|a| a.action);
            assert_eq!(action, Some(Action::Allow), "granted through rule {r}");
        }
        if let Some(c) = &cache {
            // Twice: the second decision may hit what the first one cached.
            for _ in 0..2 {
                let now = c.at(start);
                let _ = chain.authenticate_cached(&users, Some(now), req.client, user, password);
                match chain.decide_cached(&users, Some(now), user, password, &acl, &req) {
                    AuthDecision::Granted {
                        method: AuthMethod::CacheAcl,
                        rule,
                        ..
                    } => assert_eq!(rule, None, "cacheacl evaluates no ACL"),
                    AuthDecision::Granted { rule: Some(r), .. } => {
                        assert_eq!(acl.get(r).map(|a| a.action), Some(Action::Allow));
                    }
                    _ => {}
                }
                assert!(c.table.len() <= c.table.capacity());
            }
        }
    }
});
