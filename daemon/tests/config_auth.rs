//! The authentication commands: `users` with `CR` and `NT` passwords, `authcache` with the
//! `cache` and `cacheacl` methods, `delimchar`, and the refused `radius`, `authnserver`
//! and `auth dnsname` / `auth radius`, each error with its exact text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{err_at, ok, parse};
use core::time::Duration;
use triproxy::config::{ConfigErrorKind, ServiceKind};
use triproxy_policy::authcache::{AuthCacheSettings, CacheKeys, DEFAULT_AUTHCACHE_SIZE};
use triproxy_wire::LogCode;

/// The error message of `text`, which must fail.
fn message(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for {text:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn cr_and_nt_users_verify_with_their_codes() {
    // `openssl passwd -1 -salt abc secret`; the NT hash of `password`; the sample's `test`.
    let cfg = ok(concat!(
        "users \"carl:CR:$1$abc$iCQ2D3nhptRYi27fDYv2s1\" nina:NT:8846F7EAEE8FB117AD06BDD830B7586C\n",
        "users \"test:CR:$1$qwer$CHFTUFGqkjue9HyhcMHEe1\" nora:NT:8846f7eaee8fb117ad06bdd830b7586c\n",
    ));
    assert_eq!(cfg.users.len(), 4);
    assert_eq!(cfg.users.verify(b"carl", b"secret"), Ok(()));
    assert_eq!(cfg.users.verify(b"test", b"test"), Ok(()));
    assert_eq!(cfg.users.verify(b"nina", b"password"), Ok(()));
    assert_eq!(cfg.users.verify(b"nora", b"password"), Ok(()));
    assert_eq!(
        cfg.users.verify(b"carl", b"x"),
        Err(LogCode::BAD_CR_PASSWORD)
    );
    assert_eq!(
        cfg.users.verify(b"nina", b"x"),
        Err(LogCode::BAD_NT_PASSWORD)
    );
}

#[test]
fn bad_hashes_are_refused_with_file_line_and_user() {
    for (line, text) in [
        (
            "users \"bob:CR:$3$salt$hash\"\n",
            "test.cfg:1: bad `users` entry: user `bob`: bad `CR` password: `$3$` (3proxy's \
             BLAKE2 crypt) is not supported; use `$1$` (openssl passwd -1)",
        ),
        (
            "users \"bob:CR:$6$salt$hash\"\n",
            "test.cfg:1: bad `users` entry: user `bob`: bad `CR` password: only MD5-crypt \
             (`$1$salt$hash`, openssl passwd -1) is supported",
        ),
        (
            "users \"bob:CR:$1$toolongsalt$iCQ2D3nhptRYi27fDYv2s1\"\n",
            "test.cfg:1: bad `users` entry: user `bob`: bad `CR` password: the MD5-crypt \
             salt must be 1 to 8 characters of ./0-9A-Za-z",
        ),
        (
            "users bob:NT:8846F7EAEE8FB117AD06BDD830B7586\n",
            "test.cfg:1: bad `users` entry: user `bob`: bad `NT` password: an NT hash is 32 \
             hex digits",
        ),
        (
            "users bob:NT:8846F7EAEE8FB117AD06BDD830B7586X\n",
            "test.cfg:1: bad `users` entry: user `bob`: bad `NT` password: an NT hash is 32 \
             hex digits",
        ),
        (
            "users bob:LM:whatever\n",
            "test.cfg:1: bad `users` entry: user `bob`: password type `LM` is not supported \
             (only CL, CR and NT)",
        ),
    ] {
        assert_eq!(message(line), text, "{line}");
    }
}

#[test]
fn authcache_settings_are_snapshotted_and_the_size_is_global() {
    let cfg = ok(concat!(
        "socks -p1\n",
        "authcache user,pass 60 1000\n",
        "auth cache strong\n",
        "socks -p2\n",
        "authcache ip 30\n",
        "auth cacheacl strong\n",
        "proxy -p3\n",
    ));
    let settings: Vec<_> = cfg.services.iter().map(|s| s.authcache).collect();
    assert_eq!(
        settings,
        [
            None,
            Some(AuthCacheSettings {
                keys: CacheKeys {
                    ip: false,
                    user: true,
                    password: true
                },
                ttl: Duration::from_secs(60)
            }),
            Some(AuthCacheSettings {
                keys: CacheKeys {
                    ip: true,
                    user: false,
                    password: false
                },
                ttl: Duration::from_secs(30)
            }),
        ]
    );
    // The last line's SIZE (here the default) sizes the one table.
    assert_eq!(cfg.authcache.capacity(), DEFAULT_AUTHCACHE_SIZE);
    assert_eq!(ok("authcache user 60 5\n").authcache.capacity(), 5);
}

#[test]
fn authcache_errors() {
    for (text, line, expected) in [
        (
            "authcache ip,limit\n",
            1,
            "test.cfg:1: bad `authcache`: authcache key `limit` is not supported (only ip, \
             user and pass)",
        ),
        (
            "authcache user,dsthost 60\n",
            1,
            "test.cfg:1: bad `authcache`: authcache key `dsthost` is not supported (only ip, \
             user and pass)",
        ),
        (
            "authcache frob\n",
            1,
            "test.cfg:1: bad `authcache`: unknown authcache key `frob` (expected ip, user, \
             pass or password, separated by commas)",
        ),
        (
            "authcache pass\n",
            1,
            "test.cfg:1: bad `authcache`: authcache needs `user` or `ip` among its keys",
        ),
        (
            "authcache user -1\n",
            1,
            "test.cfg:1: bad `authcache`: authcache time `-1` is not a number of seconds from \
             1 to 31536000",
        ),
        (
            "authcache user 60 0\n",
            1,
            "test.cfg:1: bad `authcache`: authcache size `0` is not a number from 1 to \
             4194304",
        ),
        (
            "authcache\n",
            1,
            "test.cfg:1: `authcache` takes 1 to 3 arguments, 0 given",
        ),
        (
            "auth cache strong\nsocks\n",
            2,
            "test.cfg:2: `auth cache`/`cacheacl` needs an `authcache` line before the service",
        ),
        (
            "auth strong cacheacl\nproxy\n",
            2,
            "test.cfg:2: `auth cache`/`cacheacl` needs an `authcache` line before the service",
        ),
    ] {
        err_at(text, line);
        assert_eq!(message(text), expected, "{text}");
    }
    assert!(matches!(
        err_at("auth cache\nsocks\n", 2),
        ConfigErrorKind::CacheWithoutAuthcache
    ));
}

#[test]
fn delimchar_reaches_every_mail_service_and_the_last_wins() {
    let cfg = ok("pop3p -p1\ndelimchar #\nsmtpp -p2\nimapp -p3\nsocks -p4\n");
    let delims: Vec<u8> = cfg
        .services
        .iter()
        .filter_map(|s| match &s.kind {
            ServiceKind::Pop3p(m) | ServiceKind::Smtpp(m) | ServiceKind::Imapp(m) => {
                Some(m.delimiter)
            }
            _ => None,
        })
        .collect();
    assert_eq!(delims, [b'#', b'#', b'#']);
    let cfg = ok("pop3p -p1\ndelimchar #\ndelimchar %\n");
    assert!(matches!(&cfg.services[0].kind, ServiceKind::Pop3p(m) if m.delimiter == b'%'));
    let cfg = ok("pop3p -p1\n");
    assert!(matches!(&cfg.services[0].kind, ServiceKind::Pop3p(m) if m.delimiter == b'@'));
    for (text, expected) in [
        (
            "delimchar ##\n",
            "test.cfg:1: `delimchar` takes one printable ASCII character other than `:`, not `##`",
        ),
        (
            "delimchar :\n",
            "test.cfg:1: `delimchar` takes one printable ASCII character other than `:`, not `:`",
        ),
        (
            "delimchar\n",
            "test.cfg:1: `delimchar` takes 1 argument, 0 given",
        ),
    ] {
        assert_eq!(message(text), expected, "{text}");
    }
}

#[test]
fn radius_authnserver_and_dnsname_are_refused_with_the_reason() {
    for (text, expected) in [
        (
            "radius secret 127.0.0.1\n",
            "test.cfg:1: `radius` is not supported: triproxy has no RADIUS client yet",
        ),
        (
            "radius\n",
            "test.cfg:1: `radius` is not supported: triproxy has no RADIUS client yet",
        ),
        (
            "authnserver 127.0.0.1\n",
            "test.cfg:1: `authnserver` is not supported: it only serves `auth dnsname`, which \
             triproxy refuses (it trusts a PTR record an attacker can control)",
        ),
        (
            "auth iponly dnsname\n",
            "test.cfg:1: bad `auth`: auth method `dnsname` is not supported: it trusts a PTR \
             record an attacker can control",
        ),
        (
            "auth radius\n",
            "test.cfg:1: bad `auth`: auth method `radius` is not supported yet (triproxy has \
             no RADIUS client)",
        ),
    ] {
        assert_eq!(message(text), expected, "{text}");
    }
}
