//! Tests of the `auth` chain.
//!
//! A test module only: `auth.rs` includes it under `#[cfg(test)]`, so its `unwrap()`s
//! never see network or configuration input.
use super::*;
use crate::acl::{CivilTime, Operation};

fn users() -> Users {
    let mut u = Users::new();
    u.add_spec("alice:CL:pw").unwrap();
    u.add_spec("bob:CL:bobpw").unwrap();
    u
}

fn chain(words: &[&str]) -> AuthChain {
    AuthChain::parse(words).unwrap()
}

fn req<'a>(client: &str) -> AclRequest<'a> {
    AclRequest {
        user: Some("ignored"),
        client: client.parse().unwrap(),
        target_host: None,
        target_ip: Some("192.0.2.1".parse().unwrap()),
        port: Some(80),
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 3,
            seconds_of_day: 0,
        },
    }
}

fn allow(fields: &[&str]) -> Ace {
    Ace::parse(Action::Allow, fields).unwrap()
}

fn deny(fields: &[&str]) -> Ace {
    Ace::parse(Action::Deny, fields).unwrap()
}

#[test]
fn parse_methods_and_errors() {
    assert_eq!(
        chain(&["none", "iponly", "useronly", "strong"]).methods(),
        &[
            AuthMethod::None,
            AuthMethod::IpOnly,
            AuthMethod::UserOnly,
            AuthMethod::Strong
        ]
    );
    for m in [
        AuthMethod::None,
        AuthMethod::IpOnly,
        AuthMethod::UserOnly,
        AuthMethod::Strong,
    ] {
        assert_eq!(AuthMethod::parse(m.name()), Ok(m));
    }
    assert_eq!(AuthMethod::parse("cache"), Ok(AuthMethod::Cache));
    assert_eq!(AuthMethod::parse("cacheacl"), Ok(AuthMethod::CacheAcl));
    assert_eq!(AuthMethod::CacheAcl.to_string(), "cacheacl");
    assert_eq!(
        AuthMethod::parse("dnsname").unwrap_err().to_string(),
        "auth method `dnsname` is not supported: it trusts a PTR record an attacker can \
         control"
    );
    assert_eq!(
        AuthMethod::parse("radius").unwrap_err().to_string(),
        "auth method `radius` is not supported yet (triproxy has no RADIUS client)"
    );
    assert_eq!(AuthMethod::parse("nbname"), Err(AuthError::Removed));
    let e = AuthChain::parse(&["iponly", "Strong"]).unwrap_err();
    assert_eq!(
        e,
        AuthError::Unknown {
            name: ConfigToken::new("Strong")
        }
    );
    assert!(e.to_string().contains("`Strong`"));
    assert_eq!(AuthChain::parse(&[]), Err(AuthError::Empty));
    assert!(AuthChain::parse(&["iponly"; MAX_AUTH_METHODS]).is_ok());
    assert_eq!(
        AuthChain::parse(&["iponly"; MAX_AUTH_METHODS + 1]),
        Err(AuthError::TooMany {
            max: MAX_AUTH_METHODS
        })
    );
}

#[test]
fn chain_properties() {
    let d = AuthChain::default_chain();
    assert_eq!(d.methods(), &[AuthMethod::IpOnly]);
    assert_eq!(AuthChain::default(), d);
    assert!(!d.needs_password() && !d.is_none());
    assert!(chain(&["iponly", "strong"]).needs_password());
    assert!(!chain(&["useronly"]).needs_password());
    assert!(chain(&["none"]).is_none());
    assert!(chain(&["none", "strong"]).is_none());
    assert!(!chain(&["strong", "none"]).is_none());
}

#[test]
fn authenticate_each_method() {
    let u = users();
    let a = chain(&["none"]).authenticate(&u, Some(b"alice"), None);
    assert_eq!(
        a,
        AuthOutcome::Authenticated {
            acl_user: Some("alice".into()),
            check_acl: false
        }
    );
    assert_eq!(
        chain(&["none"]).authenticate(&u, None, None),
        AuthOutcome::Authenticated {
            acl_user: None,
            check_acl: false
        }
    );
    // iponly hides the user from the ACL.
    assert_eq!(
        chain(&["iponly"]).authenticate(&u, Some(b"alice"), Some(b"pw")),
        AuthOutcome::Authenticated {
            acl_user: None,
            check_acl: true
        }
    );
    let uo = chain(&["useronly"]);
    assert_eq!(
        uo.authenticate(&u, Some(b"anyone"), None),
        AuthOutcome::Authenticated {
            acl_user: Some("anyone".into()),
            check_acl: true
        }
    );
    assert_eq!(
        uo.authenticate(&u, None, None),
        AuthOutcome::Failed(LogCode::NO_USERNAME)
    );
    assert_eq!(
        uo.authenticate(&u, Some(b""), None),
        AuthOutcome::Failed(LogCode::NO_USERNAME)
    );
    assert_eq!(
        uo.authenticate(&u, Some(b"\xff"), None),
        AuthOutcome::Failed(LogCode::NO_USERNAME)
    );
    let st = chain(&["strong"]);
    assert_eq!(
        st.authenticate(&u, Some(b"alice"), Some(b"pw")),
        AuthOutcome::Authenticated {
            acl_user: Some("alice".into()),
            check_acl: true
        }
    );
    assert_eq!(
        st.authenticate(&u, None, Some(b"pw")),
        AuthOutcome::Failed(LogCode(4))
    );
    assert_eq!(
        st.authenticate(&u, Some(b"carol"), Some(b"pw")),
        AuthOutcome::Failed(LogCode(5))
    );
    assert_eq!(
        st.authenticate(&u, Some(b"alice"), Some(b"bobpw")),
        AuthOutcome::Failed(LogCode(6))
    );
    assert_eq!(
        st.authenticate(&u, Some(b"alice"), None),
        AuthOutcome::Failed(LogCode(6))
    );
}

#[test]
fn authenticate_chain_order() {
    let u = users();
    // First success wins.
    assert_eq!(
        chain(&["strong", "useronly"]).authenticate(&u, Some(b"carol"), None),
        AuthOutcome::Authenticated {
            acl_user: Some("carol".into()),
            check_acl: true
        }
    );
    assert_eq!(
        chain(&["strong", "none"]).authenticate(&u, Some(b"alice"), Some(b"x")),
        AuthOutcome::Authenticated {
            acl_user: Some("alice".into()),
            check_acl: false
        }
    );
    assert_eq!(
        chain(&["strong", "none"]).authenticate(&u, Some(b"alice"), Some(b"pw")),
        AuthOutcome::Authenticated {
            acl_user: Some("alice".into()),
            check_acl: true
        }
    );
    // All fail: the highest code.
    assert_eq!(
        chain(&["strong", "useronly"]).authenticate(&u, None, None),
        AuthOutcome::Failed(LogCode(4))
    );
    assert_eq!(
        chain(&["useronly", "strong"]).authenticate(&u, Some(b"alice"), Some(b"x")),
        AuthOutcome::Authenticated {
            acl_user: Some("alice".into()),
            check_acl: true
        }
    );
    let two_strong = chain(&["strong", "strong"]);
    assert_eq!(
        two_strong.authenticate(&u, Some(b"alice"), Some(b"x")),
        AuthOutcome::Failed(LogCode(6))
    );
}

#[test]
fn decide_none_skips_acl() {
    let u = users();
    let acl = [deny(&["*"])];
    assert_eq!(
        chain(&["none"]).decide(&u, Some(b"x"), None, &acl, &req("10.0.0.1")),
        AuthDecision::Granted {
            method: AuthMethod::None,
            acl_user: Some("x".into()),
            rule: None
        }
    );
}

#[test]
fn decide_iponly_hides_user_and_falls_through() {
    let u = users();
    // The user list `alice` cannot match under iponly: the ACL sees `-`.
    let acl = [allow(&["alice"]), allow(&["-", "10.0.0.0/8"])];
    let ip = chain(&["iponly"]);
    assert_eq!(
        ip.decide(&u, Some(b"alice"), Some(b"pw"), &acl, &req("192.0.2.7")),
        AuthDecision::Refused(LogCode::ACL_NO_MATCH)
    );
    assert_eq!(
        ip.decide(&u, Some(b"alice"), Some(b"pw"), &acl, &req("10.1.1.1")),
        AuthDecision::Granted {
            method: AuthMethod::IpOnly,
            acl_user: None,
            rule: Some(1)
        }
    );
    // iponly then strong: the password path is taken when iponly's ACL check fails.
    let both = chain(&["iponly", "strong"]);
    assert_eq!(
        both.decide(&u, Some(b"alice"), Some(b"pw"), &acl, &req("192.0.2.7")),
        AuthDecision::Granted {
            method: AuthMethod::Strong,
            acl_user: Some("alice".into()),
            rule: Some(0)
        }
    );
    // Codes: iponly 3 then strong 6 → 6; iponly deny (1) then strong 4 → 4.
    assert_eq!(
        both.decide(&u, Some(b"alice"), Some(b"bad"), &acl, &req("192.0.2.7")),
        AuthDecision::Refused(LogCode::BAD_CL_PASSWORD)
    );
    let deny_all = [deny(&["*"])];
    assert_eq!(
        both.decide(&u, None, None, &deny_all, &req("192.0.2.7")),
        AuthDecision::Refused(LogCode::NO_USERNAME)
    );
    assert_eq!(
        ip.decide(&u, None, None, &deny_all, &req("192.0.2.7")),
        AuthDecision::Refused(LogCode::ACL_DENIED)
    );
    // Empty ACL allows.
    assert_eq!(
        ip.decide(&u, None, None, &[], &req("192.0.2.7")),
        AuthDecision::Granted {
            method: AuthMethod::IpOnly,
            acl_user: None,
            rule: None
        }
    );
}

#[test]
fn decide_acl_after_credentials_is_final() {
    let u = users();
    let acl = [deny(&["bob"]), allow(&["alice,bob"])];
    let c = chain(&["strong", "iponly"]);
    assert_eq!(
        c.decide(&u, Some(b"alice"), Some(b"pw"), &acl, &req("10.0.0.1")),
        AuthDecision::Granted {
            method: AuthMethod::Strong,
            acl_user: Some("alice".into()),
            rule: Some(1)
        }
    );
    // bob authenticates, then the ACL denies: no fall-through to iponly.
    assert_eq!(
        c.decide(&u, Some(b"bob"), Some(b"bobpw"), &acl, &req("10.0.0.1")),
        AuthDecision::Refused(LogCode::ACL_DENIED)
    );
    let only_alice = [allow(&["alice"])];
    assert_eq!(
        chain(&["useronly"]).decide(&u, Some(b"carol"), None, &only_alice, &req("10.0.0.1")),
        AuthDecision::Refused(LogCode::ACL_NO_MATCH)
    );
    assert_eq!(
        chain(&["strong"]).decide(
            &u,
            Some(b"carol"),
            Some(b"x"),
            &only_alice,
            &req("10.0.0.1")
        ),
        AuthDecision::Refused(LogCode::USER_NOT_FOUND)
    );
    assert_eq!(
        chain(&["strong"]).decide(&u, None, None, &only_alice, &req("10.0.0.1")),
        AuthDecision::Refused(LogCode::NO_USERNAME)
    );
    assert_eq!(
        chain(&["strong"]).decide(
            &u,
            Some(b"alice"),
            Some(b"no"),
            &only_alice,
            &req("10.0.0.1")
        ),
        AuthDecision::Refused(LogCode::BAD_CL_PASSWORD)
    );
}

mod cached {
    use super::*;
    use crate::authcache::{AuthCache, AuthCacheLine, AuthCacheSettings};
    use core::time::Duration;

    /// Some instant to start from (the code under test never reads the clock).
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn settings(types: &str) -> AuthCacheSettings {
        AuthCacheLine::parse(&[types, "60"]).unwrap().settings
    }

    fn at<'a>(cache: &'a AuthCache, s: &'a AuthCacheSettings, now: Instant) -> CacheUse<'a> {
        CacheUse {
            cache,
            settings: s,
            now,
        }
    }

    #[test]
    fn strong_fills_and_cache_reads() {
        let u = users();
        let t0 = start();
        let cache = AuthCache::new(16);
        let s = settings("user,pass");
        let c = chain(&["cache", "strong"]);
        let acl = [allow(&["alice"])];
        let r = req("192.0.2.7");
        // First: a miss (4), then strong accepts and the entry is made.
        assert!(matches!(
            c.decide_cached(
                &u,
                Some(at(&cache, &s, t0)),
                Some(b"alice"),
                Some(b"pw"),
                &acl,
                &r
            ),
            AuthDecision::Granted {
                method: AuthMethod::Strong,
                ..
            }
        ));
        assert_eq!(cache.len(), 1);
        // Then the cache accepts, even with an empty users table, and the ACL still runs.
        let empty = Users::new();
        let later = t0 + Duration::from_secs(30);
        assert_eq!(
            c.decide_cached(
                &empty,
                Some(at(&cache, &s, later)),
                Some(b"alice"),
                Some(b"pw"),
                &acl,
                &r
            ),
            AuthDecision::Granted {
                method: AuthMethod::Cache,
                acl_user: Some("alice".into()),
                rule: Some(0)
            }
        );
        assert_eq!(
            c.authenticate_cached(
                &empty,
                Some(at(&cache, &s, later)),
                r.client,
                Some(b"alice"),
                Some(b"pw")
            ),
            AuthOutcome::Authenticated {
                acl_user: Some("alice".into()),
                check_acl: true
            }
        );
        // A wrong password misses the cache and strong refuses it (6).
        assert_eq!(
            c.decide_cached(
                &empty,
                Some(at(&cache, &s, later)),
                Some(b"alice"),
                Some(b"x"),
                &acl,
                &r
            ),
            AuthDecision::Refused(LogCode::USER_NOT_FOUND)
        );
        assert_eq!(
            c.decide_cached(
                &u,
                Some(at(&cache, &s, later)),
                Some(b"alice"),
                Some(b"x"),
                &acl,
                &r
            ),
            AuthDecision::Refused(LogCode::BAD_CL_PASSWORD)
        );
        // Expired: back to strong.
        let expired = t0 + Duration::from_secs(60);
        assert_eq!(
            c.decide_cached(
                &empty,
                Some(at(&cache, &s, expired)),
                Some(b"alice"),
                Some(b"pw"),
                &acl,
                &r
            ),
            AuthDecision::Refused(LogCode::USER_NOT_FOUND)
        );
        // A denied client is not remembered.
        let cache2 = AuthCache::new(16);
        let deny_bob = [deny(&["bob"]), allow(&["*"])];
        assert_eq!(
            c.decide_cached(
                &u,
                Some(at(&cache2, &s, t0)),
                Some(b"bob"),
                Some(b"bobpw"),
                &deny_bob,
                &r
            ),
            AuthDecision::Refused(LogCode::ACL_DENIED)
        );
        assert!(cache2.is_empty());
        // Without a cache, `cache` is a miss (4).
        assert_eq!(
            chain(&["cache"]).decide(&u, Some(b"alice"), Some(b"pw"), &acl, &r),
            AuthDecision::Refused(LogCode::NO_USERNAME)
        );
        assert_eq!(
            chain(&["cacheacl"]).authenticate(&u, Some(b"alice"), Some(b"pw")),
            AuthOutcome::Failed(LogCode::NO_USERNAME)
        );
    }

    #[test]
    fn cacheacl_skips_the_acl_and_cache_does_not() {
        let u = users();
        let t0 = start();
        let cache = AuthCache::new(16);
        let s = settings("ip");
        let r = req("192.0.2.7");
        let allow_all = [allow(&["*"])];
        assert!(matches!(
            chain(&["strong"]).decide_cached(
                &u,
                Some(at(&cache, &s, t0)),
                Some(b"alice"),
                Some(b"pw"),
                &allow_all,
                &r
            ),
            AuthDecision::Granted { .. }
        ));
        // Now an ACL that denies alice: `cache` applies it, `cacheacl` does not.
        let deny_alice = [deny(&["alice"]), allow(&["*"])];
        assert_eq!(
            chain(&["cache"]).decide_cached(
                &u,
                Some(at(&cache, &s, t0)),
                None,
                None,
                &deny_alice,
                &r
            ),
            AuthDecision::Refused(LogCode::ACL_DENIED)
        );
        assert_eq!(
            chain(&["cacheacl"]).decide_cached(
                &u,
                Some(at(&cache, &s, t0)),
                None,
                None,
                &deny_alice,
                &r
            ),
            AuthDecision::Granted {
                method: AuthMethod::CacheAcl,
                acl_user: Some("alice".into()),
                rule: None
            }
        );
        assert_eq!(
            chain(&["cacheacl"]).authenticate_cached(
                &u,
                Some(at(&cache, &s, t0)),
                r.client,
                None,
                None
            ),
            AuthOutcome::Authenticated {
                acl_user: Some("alice".into()),
                check_acl: false
            }
        );
        // Another address misses.
        assert_eq!(
            chain(&["cacheacl"]).decide_cached(
                &u,
                Some(at(&cache, &s, t0)),
                None,
                None,
                &deny_alice,
                &req("192.0.2.8")
            ),
            AuthDecision::Refused(LogCode::NO_USERNAME)
        );
        // iponly never fills the cache, even when a name was sent.
        let cache2 = AuthCache::new(16);
        assert!(matches!(
            chain(&["iponly"]).decide_cached(
                &u,
                Some(at(&cache2, &s, t0)),
                Some(b"alice"),
                Some(b"pw"),
                &allow_all,
                &r
            ),
            AuthDecision::Granted {
                method: AuthMethod::IpOnly,
                ..
            }
        ));
        assert!(cache2.is_empty());
        assert!(chain(&["cacheacl"]).uses_cache() && !chain(&["strong"]).uses_cache());
        assert!(chain(&["cache"]).needs_password());
    }
}
