//! Configuration commands other than the service lines: what each one does, its argument
//! counts and errors, and the order in which they take effect (service lines, their
//! options and the standalone form are in `config_services.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{ace, addr, arg_count, err_at, ok, parse_in, TempDir};
use std::net::SocketAddr;
use triproxy::config::{self, ConfigErrorKind, LogTarget, SourceAddrs};
use triproxy::logformat::{LogFormat, LogFormatError};
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::auth::{AuthChain, AuthError};
use triproxy_policy::users::UsersError;

#[test]
fn internal_sets_the_listen_address_of_later_services() {
    let cfg =
        ok("socks -p1\ninternal 127.0.0.1\nsocks -p2\nsocks -p3 -i10.1.1.1\ninternal ::1\nsocks\n");
    let listens: Vec<SocketAddr> = cfg.services.iter().map(|s| s.listen).collect();
    assert_eq!(
        listens,
        [
            addr("0.0.0.0:1"),
            addr("127.0.0.1:2"),
            addr("10.1.1.1:3"),
            addr("[::1]:1080")
        ]
    );
    assert!(matches!(
        err_at("internal localhost\n", 1),
        ConfigErrorKind::HostNameNotSupported { .. }
    ));
    assert_eq!(arg_count("internal\n"), ("internal".into(), 1, Some(1), 0));
    assert_eq!(
        arg_count("internal 1.1.1.1 2.2.2.2\n"),
        ("internal".into(), 1, Some(1), 2)
    );
}

#[test]
fn users_are_global_whatever_their_position() {
    let cfg = ok("socks -p1\nusers alice:CL:a bob:b\nsocks -p2\nusers carol::c\nusers\n");
    assert_eq!(cfg.users.len(), 3);
    assert_eq!(cfg.users.verify(b"alice", b"a"), Ok(()));
    assert_eq!(cfg.users.verify(b"bob", b"b"), Ok(()));
    assert_eq!(cfg.users.verify(b"carol", b"c"), Ok(()));
    assert_eq!(cfg.services.len(), 2);
}

#[test]
fn users_errors_do_not_print_passwords() {
    let kind = err_at(
        "users ok:CL:x\nusers \"test:CR:$1$qwer$CHFTUFGqkjue9HyhcMHE\"\n",
        2,
    );
    assert!(
        matches!(&kind, ConfigErrorKind::Users(e) if matches!(**e, UsersError::BadHash { .. })),
        "{kind:?}"
    );
    let msg = kind.to_string();
    assert!(msg.contains("test"), "{msg}");
    assert!(!msg.contains("CHFTUFG"), "{msg}");
    assert!(matches!(
        err_at("users nocolon\n", 1),
        ConfigErrorKind::Users(e) if matches!(*e, UsersError::MissingColon { .. })
    ));
}

#[test]
fn auth_is_snapshotted_by_each_service() {
    let cfg = ok("socks -p1\nauth strong\nsocks -p2\nauth none iponly\nsocks -p3\n");
    let auths: Vec<&AuthChain> = cfg.services.iter().map(|s| &s.auth).collect();
    assert_eq!(
        auths,
        [
            &AuthChain::default_chain(),
            &AuthChain::parse(&["strong"]).unwrap(),
            &AuthChain::parse(&["none", "iponly"]).unwrap()
        ]
    );
    assert_eq!(
        err_at("auth nbname\n", 1),
        ConfigErrorKind::Auth(Box::new(AuthError::Removed))
    );
    assert!(matches!(
        err_at("socks\nauth bogus\n", 2),
        ConfigErrorKind::Auth(e) if matches!(*e, AuthError::Unknown { .. })
    ));
    assert_eq!(arg_count("auth\n"), ("auth".into(), 1, None, 0));
}

#[test]
fn acl_is_snapshotted_and_flush_empties_it() {
    let cfg = ok("\
allow admin
socks -p1
deny * * 127.0.0.1
allow * 10.0.0.0/8 * 80,443 CONNECT
socks -p2
flush
socks -p3
allow
deny
socks -p4
");
    let a1 = ace(Action::Allow, &["admin"]);
    let d = ace(Action::Deny, &["*", "*", "127.0.0.1"]);
    let a2 = ace(
        Action::Allow,
        &["*", "10.0.0.0/8", "*", "80,443", "CONNECT"],
    );
    assert_eq!(cfg.services[0].acl, std::slice::from_ref(&a1));
    assert_eq!(cfg.services[1].acl, [a1, d, a2]);
    assert!(cfg.services[2].acl.is_empty());
    assert_eq!(
        cfg.services[3].acl,
        [Ace::any(Action::Allow), Ace::any(Action::Deny)]
    );
    assert_eq!(arg_count("flush now\n"), ("flush".into(), 0, Some(0), 1));
}

#[test]
fn acl_errors() {
    assert!(matches!(
        err_at("allow * 10.0.0.0/99\n", 1),
        ConfigErrorKind::Acl(_)
    ));
    assert!(matches!(
        err_at("socks\ndeny * * * 80-70\n", 2),
        ConfigErrorKind::Acl(_)
    ));
    let e = config_util::parse("deny a b c d e f g h i\n").unwrap_err();
    assert!(matches!(e.kind, ConfigErrorKind::Acl(_)));
    assert!(
        e.to_string()
            .starts_with("test.cfg:1: bad `allow`/`deny` entry: "),
        "{e}"
    );
}

#[test]
fn log_targets_are_snapshotted() {
    let dir = TempDir::new("log");
    let cfg = parse_in(
        &dir,
        "socks -p1\nlog\nsocks -p2\nlog logs/proxy.log\nsocks -p3\nlog /dev/null\nsocks -p4\nlog /abs.log\nsocks -p5 -l\n",
    )
    .unwrap();
    let logs: Vec<&LogTarget> = cfg.services.iter().map(|s| &s.log).collect();
    assert_eq!(
        logs,
        [
            &LogTarget::Off,
            &LogTarget::Stdout,
            &LogTarget::File(dir.path().join("logs/proxy.log")),
            &LogTarget::Off,
            &LogTarget::Stdout,
        ]
    );
}

#[test]
fn log_features_not_yet_supported() {
    for (line, feature) in [("log &3proxylog,root", "ODBC"), ("log radius", "RADIUS")] {
        let e = config_util::parse(&format!("{line}\n")).unwrap_err();
        assert!(
            matches!(e.kind, ConfigErrorKind::NotSupportedYet { .. }),
            "{line}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(feature) && msg.ends_with("is not supported by triproxy yet"),
            "{msg}"
        );
    }
    assert!(matches!(
        err_at("log file.log D extra\n", 1),
        ConfigErrorKind::UnexpectedArgument { .. }
    ));
}

#[test]
fn logformat_is_snapshotted_and_validated() {
    let cfg = ok("socks -p1\nlogformat \"- +_L%t.%.  %N.%p %E %U %C:%c %R:%r %O %I %h %T\"\nsocks -p2\nsocks -p3 -fG%T\n");
    assert_eq!(cfg.services[0].logformat, LogFormat::default_3proxy());
    assert_eq!(
        cfg.services[1].logformat.as_str(),
        "- +_L%t.%.  %N.%p %E %U %C:%c %R:%r %O %I %h %T"
    );
    assert_eq!(cfg.services[2].logformat.as_str(), "G%T");
    assert_eq!(
        err_at("logformat -abc\n", 1),
        ConfigErrorKind::LogFormat(LogFormatError::BadReplacementPrefix)
    );
    assert_eq!(
        arg_count("logformat\n"),
        ("logformat".into(), 1, Some(1), 0)
    );
    assert_eq!(
        arg_count("logformat G%t G%T\n"),
        ("logformat".into(), 1, Some(1), 2)
    );
}

#[test]
fn maxconn_is_snapshotted_and_bounded() {
    let cfg = ok("socks -p1\nmaxconn 3\nsocks -p2\nmaxconn 1000000\nsocks -p3\n");
    let m: Vec<u32> = cfg.services.iter().map(|s| s.maxconn).collect();
    assert_eq!(m, [500, 3, 1_000_000]);
    for bad in ["0", "1000001", "-5", "ten", "5k", "99999999999999999999999"] {
        assert_eq!(
            err_at(&format!("maxconn {bad}\n"), 1),
            ConfigErrorKind::InvalidNumber {
                what: "maxconn",
                value: bad.to_owned(),
                min: 1,
                max: 1_000_000
            }
        );
    }
    assert_eq!(arg_count("maxconn\n"), ("maxconn".into(), 1, Some(1), 0));
    let e = config_util::parse("maxconn 0\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:1: `0` is not a valid maxconn (a whole number from 1 to 1000000)"
    );
}

#[test]
fn service_is_a_no_op() {
    assert_eq!(ok("service\nsocks\n").services.len(), 1);
    assert_eq!(arg_count("service x\n"), ("service".into(), 0, Some(0), 1));
    let e = config_util::parse("service x\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:1: `service` takes no arguments, 1 given"
    );
}

#[test]
fn argument_count_messages() {
    assert_eq!(
        config_util::parse("internal\n").unwrap_err().to_string(),
        "test.cfg:1: `internal` takes 1 argument, 0 given"
    );
    assert_eq!(
        config_util::parse("auth\n").unwrap_err().to_string(),
        "test.cfg:1: `auth` takes at least 1 argument, 0 given"
    );
}

#[test]
fn unsupported_3proxy_commands_are_told_apart_from_unknown_words() {
    for cmd in [
        "ftppr -n",
        "parentretries 3",
        "plugin lib.so func",
        "ssl_mitm",
        "pcre request deny x",
    ] {
        let word = cmd.split(' ').next().unwrap();
        let e = config_util::parse(&format!("# x\n{cmd}\n")).unwrap_err();
        assert_eq!(
            e.kind,
            ConfigErrorKind::UnsupportedCommand {
                command: word.to_owned()
            },
            "{cmd}"
        );
        assert_eq!(
            e.to_string(),
            format!("test.cfg:2: 3proxy command `{word}` is not supported by triproxy yet")
        );
    }
    for word in [
        "Socks",
        "SOCKS",
        "frobnicate",
        "KOI8-R",
        "CREATE",
        "allowed",
    ] {
        let e = config_util::parse(&format!("{word} x\n")).unwrap_err();
        assert_eq!(
            e.kind,
            ConfigErrorKind::UnknownCommand {
                command: word.to_owned()
            }
        );
        assert_eq!(
            e.to_string(),
            format!("test.cfg:1: unknown command `{word}`")
        );
    }
}

#[test]
fn bandwidth_rules_are_global_and_kept_in_order() {
    use triproxy_policy::bandlim::{Direction, RuleKind};
    let cfg = ok("socks\nbandlimin 2048000 * 10.0.0.0/8\nnobandlimin alice\n\
                  socks -p1081\nbandlimout 300 * * * 25\nnobandlimout\n");
    let rules = cfg.bandlimits.rules();
    let seen: Vec<(Direction, Option<u64>)> = rules
        .iter()
        .map(|r| {
            let rate = match &r.kind {
                RuleKind::Limit(b) => Some(b.rate_bits()),
                RuleKind::Exempt => None,
            };
            (r.direction, rate)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Direction::ToClient, Some(2_048_000)),
            (Direction::ToClient, None),
            (Direction::ToTarget, Some(300)),
            (Direction::ToTarget, None),
        ]
    );
    assert_eq!(rules[0].matches.sources().map(<[_]>::len), Some(1));
    assert_eq!(rules[1].matches.users(), Some(&["alice".to_owned()][..]));
    // Both services see every rule, wherever it is written (global, as in 3proxy).
    assert_eq!(cfg.services.len(), 2);
}

#[test]
fn bandwidth_rule_errors_name_the_line() {
    for (text, message) in [
        (
            "bandlimin 299\n",
            "test.cfg:1: `299` is not a valid bandwidth limit (bits per second) (a whole number from 300 to 1099511627776)",
        ),
        (
            "bandlimout 10k *\n",
            "test.cfg:1: `10k` is not a valid bandwidth limit (bits per second) (a whole number from 300 to 1099511627776)",
        ),
        (
            "bandlimin 1000 * 10.0.0.0/99\n",
            "test.cfg:1: bad `bandlimin` rule: ACL field source addresses: bad token `10.0.0.0/99`: ",
        ),
        (
            "nobandlimout * * * 80-70\n",
            "test.cfg:1: bad `nobandlimout` rule: ACL field ports: bad token `80-70`: ",
        ),
        ("bandlimin\n", "test.cfg:1: "),
    ] {
        let e = config_util::parse(text).unwrap_err();
        assert!(e.to_string().starts_with(message), "{text:?}: {e}");
    }
    assert_eq!(arg_count("bandlimin\n"), ("bandlimin".into(), 1, None, 0));
}

#[test]
fn errors_stop_at_the_first_bad_line() {
    assert!(matches!(
        err_at("socks\nsocks\nbogus\nproxy\n", 3),
        ConfigErrorKind::UnknownCommand { .. }
    ));
}

#[test]
fn service_origin_names_file_and_line() {
    let dir = TempDir::new("origin");
    let p = dir.write("o.cfg", "# c\n\nsocks -p1\n\n socks\nsocks -p2\n");
    let cfg = config::load(&p).unwrap();
    let origins: Vec<(String, usize)> = cfg.services.iter().map(|s| s.origin.clone()).collect();
    let f = p.display().to_string();
    assert_eq!(origins, [(f.clone(), 3), (f, 6)]);
}

#[test]
fn embedded_default_config_parses() {
    let cfg = config::parse_str(
        triproxy::EMBEDDED_DEFAULT,
        "embedded default",
        std::path::Path::new("."),
    )
    .unwrap();
    assert_eq!(cfg.services.len(), 1);
    assert!(cfg.services[0].listen.ip().is_loopback());
}

#[test]
fn external_and_backlog_are_snapshotted_per_service() {
    let cfg = ok("socks -p1\nexternal 127.0.0.1\nexternal ::1\nbacklog 300\nsocks -p2\nexternal 0.0.0.0\nsocks -p3 -e127.0.0.1\n");
    let [a, b, c] = &cfg.services[..] else {
        panic!("three services expected")
    };
    assert_eq!((a.external, a.backlog), (SourceAddrs::default(), None));
    assert_eq!(b.external.v4, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(b.external.v6, Some("::1".parse().unwrap()));
    assert_eq!(b.backlog, Some(300));
    // `external 0.0.0.0` clears the IPv4 source; `-e` sets it for one service.
    assert_eq!(c.external.v4, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(c.external.v6, Some("::1".parse().unwrap()));
    for bad in [
        "backlog 0\n",
        "backlog 70000\n",
        "backlog x\n",
        "external host.example\n",
    ] {
        assert!(
            triproxy::config::parse_str(bad, "t.cfg", std::path::Path::new(".")).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn parent_lines_attach_to_the_last_allow_entry() {
    use triproxy_policy::parent::{ParentCredentials, ParentKind};
    let cfg = ok(
        "allow * * 10.0.0.0/8\nparent 1000 socks5+ 127.0.0.1 1081 bob pw\n\
                  parent 500 connect ::1 3128\nparent 500 socks4 127.0.0.1 1082 *\n\
                  allow *\nsocks\n",
    );
    let acl = &cfg.services[0].acl;
    assert_eq!(acl.len(), 2);
    assert!(acl[1].parents().is_empty(), "the second entry has none");
    let hops = acl[0].parents().hops();
    assert_eq!(hops.len(), 3);
    assert_eq!(hops[0].kind, ParentKind::Socks5 { names: true });
    assert_eq!(hops[0].addr, addr("127.0.0.1:1081"));
    assert_eq!(
        hops[0].credentials,
        ParentCredentials::Fixed {
            user: "bob".into(),
            password: "pw".into()
        }
    );
    assert_eq!(hops[1].addr, addr("[::1]:3128"));
    assert_eq!(hops[2].credentials, ParentCredentials::Client);
    // First group (1000) then the 500/500 group: two hops per chain.
    assert_eq!(acl[0].parents().choose(1).len(), 2);
}

#[test]
fn parent_errors_name_the_line() {
    for (text, line, message) in [
        (
            "parent 1000 socks5 127.0.0.1 1080\n",
            1,
            "test.cfg:1: bad `parent`: `parent` must follow an `allow` line",
        ),
        (
            "deny *\nparent 1000 socks5 127.0.0.1 1080\n",
            2,
            "test.cfg:2: bad `parent`: `parent` must follow an `allow` line",
        ),
        (
            "allow *\nparent 0 socks5 127.0.0.1 1080\n",
            2,
            "test.cfg:2: bad `parent`: weight `0` is not 1..1000",
        ),
        (
            "allow *\nparent 1000 socks5s 127.0.0.1 1080\n",
            2,
            "test.cfg:2: bad `parent`: parent type `socks5s` is not supported by triproxy",
        ),
        (
            "allow *\nparent 1000 http 0.0.0.0 0\n",
            2,
            "test.cfg:2: bad `parent`: address 0.0.0.0 or port 0 (local redirection",
        ),
        (
            "allow *\nparent 1000 socks5 proxy.example 1080\n",
            2,
            "test.cfg:2: bad `parent`: parent address `proxy.example` is not an IP address",
        ),
        (
            "allow *\nparent 1000 tcp 127.0.0.1 80\nparent 1000 socks5 127.0.0.1 1080\n",
            3,
            "test.cfg:3: bad `parent`: a `tcp` or `http` parent ends the chain",
        ),
    ] {
        let e = config_util::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.to_string().starts_with(message), "{text:?}: {e}");
    }
    assert_eq!(
        arg_count("parent 1000 socks5 127.0.0.1\n"),
        ("parent".into(), 4, None, 3)
    );
    assert!(matches!(
        err_at("allow *\nparent 1000 socks5 127.0.0.1 1 u p extra\n", 2),
        ConfigErrorKind::Parent(_)
    ));
}

#[test]
fn dns_commands_configure_the_own_resolver() {
    let c = config_util::parse(
        "nserver 127.0.0.1:5353\nnserver [::1]/tcp\nnscache 1024\nnscache6 512\n\
         nsrecord pinned.test 127.0.0.5\nnsrecord v6.test ::5\nsocks -p0 -64\nproxy -p0 -4\n",
    )
    .unwrap();
    assert!(c.names.own());
    assert_eq!(c.names.servers.len(), 2);
    assert_eq!(
        (c.names.cache_v4, c.names.cache_v6),
        (Some(1024), Some(512))
    );
    assert_eq!(c.names.records.len(), 2);
    assert_eq!(c.services[0].family, triproxy_dns::Family::V6ThenV4);
    assert_eq!(c.services[1].family, triproxy_dns::Family::V4);
    let r = c.names.resolver(c.timeouts.dns);
    assert_eq!(r.servers[1].transport, triproxy_dns::Transport::Tcp);

    let only_cache = config_util::parse("nscache 65536\nsocks -p0\n").unwrap();
    assert!(
        !only_cache.names.own(),
        "nscache alone keeps the system resolver"
    );
    assert!(
        config_util::parse("fakeresolve\nsocks -p0\n")
            .unwrap()
            .names
            .fake
    );

    for (line, message) in [
        ("nserver 10.0.0.1:0", "`10.0.0.1:0` is not a name server"),
        ("nserver dns.example", "`dns.example` is not a name server"),
        (
            "nserver 10.0.0.1/udp",
            "`10.0.0.1/udp` is not a name server",
        ),
        ("nscache 100", "`100` is not a valid nscache size"),
        ("nscache6 x", "`x` is not a valid nscache6 size"),
        ("nsrecord bad/name 1.2.3.4", "`bad/name` is not a host name"),
        (
            "nsrecord ok.test 1.2.3",
            "`1.2.3` is not an IPv4 or IPv6 address",
        ),
        ("fakeresolve now", "`fakeresolve` takes no arguments"),
    ] {
        let e = config_util::parse(&format!("# dns\n{line}\n")).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("test.cfg:2: "), "{text}");
        assert!(text.contains(message), "{line}: {text}");
    }

    let six = (1..=6)
        .map(|i| format!("nserver 127.0.0.{i}\n"))
        .collect::<String>();
    let c = config_util::parse(&format!("{six}socks -p0\n")).unwrap();
    assert_eq!(
        c.warnings.len(),
        1,
        "the sixth nserver is ignored, with a warning"
    );
    assert!(c.warnings[0]
        .to_string()
        .contains("test.cfg:6: warning: only the first 5"));
}
