//! Configuration commands: what each one does, its argument counts and errors, the order in
//! which they take effect, service options and the standalone form.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{err_at, ok, parse_in, TempDir};
use std::net::SocketAddr;
use triproxy::config::{self, ConfigErrorKind, LogTarget, NeedUser, ServiceKind, SourceAddrs};
use triproxy::logformat::{LogFormat, LogFormatError};
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::auth::{AuthChain, AuthError};
use triproxy_policy::service::Anonymity;
use triproxy_policy::users::UsersError;
use triproxy_wire::{DomainName, TargetAddr};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ace(action: Action, fields: &[&str]) -> Ace {
    Ace::parse(action, fields).unwrap()
}

fn arg_count(text: &str) -> (String, usize, Option<usize>, usize) {
    match err_at(text, 1) {
        ConfigErrorKind::ArgumentCount {
            command,
            min,
            max,
            given,
        } => (command, min, max, given),
        other => panic!("{other:?}"),
    }
}

#[test]
fn socks_defaults() {
    let cfg = ok("socks\n");
    let s = &cfg.services[0];
    assert_eq!(s.kind, ServiceKind::Socks);
    assert_eq!(s.kind.command(), "socks");
    assert_eq!(s.listen, addr("0.0.0.0:1080"));
    assert_eq!(s.auth, AuthChain::default_chain());
    assert!(s.acl.is_empty());
    assert_eq!(s.needuser, NeedUser::IfOffered);
    assert_eq!(s.maxconn, 500);
    assert!(s.splice, "zero-copy relay is the default");
    assert_eq!(s.log, LogTarget::Off);
    assert_eq!(s.logformat, LogFormat::default_3proxy());
    assert_eq!(s.origin, ("test.cfg".to_owned(), 1));
    assert!(cfg.users.is_empty());
}

#[test]
fn socks_options() {
    let s = &ok("socks -p0 -i::1 -u2 -s -l -f\"G%t %T\" -n\n").services[0];
    assert_eq!(s.listen, addr("[::1]:0"));
    assert_eq!(s.needuser, NeedUser::Required);
    assert!(s.splice);
    assert_eq!(s.log, LogTarget::Stdout);
    assert_eq!(s.logformat.as_str(), "G%t %T");

    let s = &ok("socks -p65535 -i[::1] -u -s0 -l/dev/null\n").services[0];
    assert_eq!(s.listen, addr("[::1]:65535"));
    assert_eq!(s.needuser, NeedUser::Never);
    assert!(!s.splice);
    assert_eq!(s.log, LogTarget::Off);

    let n = |o: &str| ok(&format!("socks {o}\n")).services[0].needuser;
    assert_eq!(n("-u0"), NeedUser::Never);
    assert_eq!(n("-u1"), NeedUser::IfOffered);
    // Later options win.
    assert_eq!(n("-u2 -u1"), NeedUser::IfOffered);
    assert!(ok("socks -s0 -s1\n").services[0].splice);
    assert_eq!(
        ok("socks -p1 -p2 -i127.0.0.1 -i10.0.0.1\n").services[0].listen,
        addr("10.0.0.1:2")
    );
}

#[test]
fn socks_log_file_option_is_relative_to_the_config() {
    let dir = TempDir::new("socks-l");
    let cfg = parse_in(&dir, "socks -lsocks.log\nsocks -l/var/log/abs.log\n").unwrap();
    assert_eq!(
        cfg.services[0].log,
        LogTarget::File(dir.path().join("socks.log"))
    );
    assert_eq!(
        cfg.services[1].log,
        LogTarget::File("/var/log/abs.log".into())
    );
}

#[test]
fn socks_option_errors() {
    let bad_number = |o: &str| {
        matches!(
            err_at(&format!("socks {o}\n"), 1),
            ConfigErrorKind::InvalidNumber {
                what: "port (-p)",
                ..
            }
        )
    };
    for o in ["-p", "-p65536", "-p-1", "-pabc", "-p80x"] {
        assert!(bad_number(o), "{o}");
    }
    assert!(matches!(
        err_at("socks -iproxy.example.org\n", 1),
        ConfigErrorKind::HostNameNotSupported { .. }
    ));
    assert!(matches!(
        err_at("socks -i1.2.3.4.5/x\n", 1),
        ConfigErrorKind::InvalidAddress { .. }
    ));
    assert!(matches!(
        err_at("socks -iunix:/run/s.sock\n", 1),
        ConfigErrorKind::NotSupportedYet { .. }
    ));
    for o in ["-u3", "-ux", "-s2", "-sx"] {
        assert_eq!(
            err_at(&format!("socks {o}\n"), 1),
            ConfigErrorKind::InvalidOptionValue {
                option: o.to_owned()
            }
        );
    }
    assert_eq!(
        ok("socks -l@3proxy\n").services[0].log,
        LogTarget::Syslog("3proxy".to_owned())
    );
    for o in ["-47", "-66", "-4x"] {
        assert_eq!(
            err_at(&format!("socks {o}\n"), 1),
            ConfigErrorKind::InvalidOptionValue {
                option: o.to_owned()
            }
        );
    }
    for o in [
        "-d",
        "-t",
        "-T",
        "-oc1",
        "-Deth0",
        "-Ne1.2.3.4",
        "-H",
        "-C",
        "-U3",
    ] {
        assert_eq!(
            err_at(&format!("socks {o}\n"), 1),
            ConfigErrorKind::UnsupportedOption {
                option: o.to_owned()
            },
            "{o}"
        );
    }
    for o in ["-z", "-", "-5", "-nx", "--p1"] {
        assert_eq!(
            err_at(&format!("socks {o}\n"), 1),
            ConfigErrorKind::UnknownOption {
                option: o.to_owned()
            },
            "{o}"
        );
    }
    let e = config_util::parse("socks -p1 1080\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:1: `socks` does not take the argument `1080`"
    );
    let e = config_util::parse("socks -d\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:1: 3proxy service option `-d` is not supported by triproxy yet"
    );
}

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

/// `proxy` starts the HTTP proxy with what is in force at its line, like `socks`.
#[test]
fn proxy_service_snapshots_its_line() {
    let cfg = ok("users alice:CL:pw\n\
         auth strong\n\
         allow alice\n\
         proxy -p8080 -i127.0.0.1 -n\n\
         flush\n\
         proxy\n");
    let [first, second] = &cfg.services[..] else {
        panic!("{:?}", cfg.services)
    };
    assert_eq!(first.kind, ServiceKind::Proxy);
    assert_eq!(
        first.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(first.acl.len(), 1);
    assert_eq!(second.listen.port(), 3128, "3proxy's default port");
    assert!(second.acl.is_empty(), "flushed before the second line");
    // Anonymity: -a hides the client, -a1 a random X-Forwarded-For, -a2 the real one.
    for (option, anonymity) in [
        ("", Anonymity::Forwarded),
        ("-a", Anonymity::Hidden),
        ("-a1", Anonymity::RandomForwardedFor),
        ("-a2", Anonymity::ForwardedFor),
    ] {
        let cfg = config_util::parse(&format!("proxy {option}\n")).unwrap();
        assert_eq!(cfg.services[0].anonymity, anonymity, "{option:?}");
    }
    assert_eq!(
        err_at("proxy -a3\n", 1),
        ConfigErrorKind::InvalidOptionValue {
            option: "-a3".into()
        }
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
fn standalone_form() {
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cfg = config::parse_standalone("socks", &args(&["-p1080", "-i127.0.0.1"])).unwrap();
    assert_eq!(cfg.services.len(), 1);
    let s = &cfg.services[0];
    assert_eq!(s.listen, addr("127.0.0.1:1080"));
    assert_eq!(s.log, LogTarget::Stdout);
    assert_eq!(s.logformat, LogFormat::default_3proxy());
    assert_eq!(s.auth, AuthChain::default_chain());
    assert!(s.acl.is_empty());
    assert_eq!(s.needuser, NeedUser::Never);
    assert_eq!(s.maxconn, 500);
    assert_eq!(s.origin, ("command line".to_owned(), 0));
    assert!(cfg.users.is_empty());

    let s = &config::parse_standalone("socks", &[]).unwrap().services[0];
    assert_eq!(s.listen, addr("0.0.0.0:1080"));
    let s = &config::parse_standalone("socks", &args(&["-u2", "-s", "-l/dev/null", "-p0"]))
        .unwrap()
        .services[0];
    assert_eq!(
        (s.needuser, s.splice, &s.log, s.listen.port()),
        (NeedUser::Required, true, &LogTarget::Off, 0)
    );

    let e = config::parse_standalone("socks", &args(&["-x1"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: 3proxy service option `-x1` is not supported by triproxy yet"
    );
    let e = config::parse_standalone("socks", &args(&["-q"])).unwrap_err();
    assert_eq!(e.to_string(), "command line: unknown service option `-q`");
    let e = config::parse_standalone("ftppr", &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: 3proxy command `ftppr` is not supported by triproxy yet"
    );
    // pop3p on port 110, with its own -h and -x.
    let cfg = config::parse_standalone("pop3p", &args(&["-h127.0.0.1:1110", "-x"])).unwrap();
    let ServiceKind::Pop3p(m) = &cfg.services[0].kind else {
        panic!("pop3p")
    };
    assert_eq!(cfg.services[0].listen.port(), 110);
    assert!(!m.starttls);
    assert_eq!(
        m.default_target,
        Some(TargetAddr::Ip("127.0.0.1:1110".parse().unwrap()))
    );
    assert!(config::parse_standalone("pop3p", &args(&["-h"])).is_err());
    assert!(
        config::parse_standalone("socks", &args(&["-hhost"])).is_err(),
        "-h is the mail proxies'"
    );
    // `proxy` runs on 3proxy's port 3128 unless told otherwise.
    let cfg = config::parse_standalone("proxy", &args(&["-i127.0.0.1"])).unwrap();
    let s = &cfg.services[0];
    assert_eq!(
        (&s.kind, s.listen),
        (&ServiceKind::Proxy, "127.0.0.1:3128".parse().unwrap())
    );
    let e = config::parse_standalone("sox", &[]).unwrap_err();
    assert_eq!(
        e.kind,
        ConfigErrorKind::UnknownService { name: "sox".into() }
    );
    assert!(
        e.to_string().ends_with(
            "unknown service `sox` (triproxy runs: socks, proxy, tcppm, udppm, dnspr, pop3p, smtpp, imapp, tlspr, auto, admin)"
        ),
        "{e}"
    );
    let e = config::parse_standalone("admin", &args(&["-p8080"])).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::StandaloneAdmin);
    assert_eq!(
        e.to_string(),
        "command line: `admin` has no standalone form: start it from a configuration file, after the `auth` and `allow` lines that guard it"
    );
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

fn tcppm_target(s: &config::ServiceConfig) -> &TargetAddr {
    match &s.kind {
        ServiceKind::TcpPm { target } => target,
        other => panic!("{other:?}"),
    }
}

#[test]
fn tcppm_maps_a_port_to_a_target() {
    let cfg =
        ok("auth iponly\nallow * 127.0.0.1\ninternal 127.0.0.1\ntcppm 2525 mail.example 25\n");
    let s = &cfg.services[0];
    assert_eq!(s.kind.command(), "tcppm");
    assert_eq!(s.listen, addr("127.0.0.1:2525"));
    let name = DomainName::new(b"mail.example").unwrap();
    assert_eq!(tcppm_target(s), &TargetAddr::Domain(name, 25));
    // The auth and ACL in force at the line, as for every service.
    assert_eq!(s.auth, AuthChain::parse(&["iponly"]).unwrap());
    assert_eq!(s.acl, [ace(Action::Allow, &["*", "127.0.0.1"])]);

    // Options first; SRCPORT wins over -p; IP targets, IPv6 with or without brackets.
    let cfg = ok(
        "tcppm -p9 -i::1 -e127.0.0.1 -s0 -l -f\"G%T\" 0 127.0.0.1 8080\n\
                  tcppm 8081 [::1] 80\ntcppm 8082 ::1 80\n",
    );
    let [a, b, c] = &cfg.services[..] else {
        panic!("three services expected")
    };
    assert_eq!(a.listen, addr("[::1]:0"));
    assert_eq!(tcppm_target(a), &TargetAddr::Ip(addr("127.0.0.1:8080")));
    assert_eq!(a.external.v4, Some("127.0.0.1".parse().unwrap()));
    assert!(!a.splice);
    assert_eq!(a.log, LogTarget::Stdout);
    assert_eq!(tcppm_target(b), &TargetAddr::Ip(addr("[::1]:80")));
    assert_eq!(tcppm_target(c), &TargetAddr::Ip(addr("[::1]:80")));
    assert_eq!(b.listen, addr("0.0.0.0:8081"));
}

#[test]
fn tcppm_argument_errors_name_the_line_and_the_problem() {
    // Too few words at all: the command's count (3proxy: at least 4 with the command).
    assert_eq!(
        arg_count("tcppm 25 mail\n"),
        ("tcppm".to_owned(), 3, None, 2)
    );
    for (line, given) in [
        ("tcppm -i127.0.0.1 25 mail\n", vec!["25", "mail"]),
        (
            "tcppm 25 mail 25 extra\n",
            vec!["25", "mail", "25", "extra"],
        ),
        // An option after the positional arguments is not an option any more.
        ("tcppm 25 mail 25 -s0\n", vec!["25", "mail", "25", "-s0"]),
    ] {
        let kind = err_at(line, 1);
        assert_eq!(
            kind,
            ConfigErrorKind::PortMapArguments {
                command: "tcppm".into(),
                given: given.iter().map(|s| s.to_string()).collect(),
            },
            "{line}"
        );
    }
    let e = config_util::parse("# x\ntcppm 25 mail 25 extra\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:2: `tcppm` takes SRCPORT DSTHOST DSTPORT after its options, 4 given \
         (`25 mail 25 extra`)"
    );
    for (line, what, value, min) in [
        ("tcppm 65536 mail 25\n", "SRCPORT (listen port)", "65536", 0),
        ("tcppm x mail 25\n", "SRCPORT (listen port)", "x", 0),
        ("tcppm 25 mail 0\n", "DSTPORT", "0", 1),
        ("tcppm 25 mail 99999\n", "DSTPORT", "99999", 1),
        ("tcppm 25 mail +25\n", "DSTPORT", "+25", 1),
    ] {
        assert_eq!(
            err_at(line, 1),
            ConfigErrorKind::InvalidNumber {
                what,
                value: value.into(),
                min,
                max: 65535
            },
            "{line}"
        );
    }
    let e = config_util::parse("tcppm 25 mail 0\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:1: `0` is not a valid DSTPORT (a whole number from 1 to 65535)"
    );
    for host in ["mail:26", "[nope]", "a b", "x@y"] {
        let line = format!("tcppm 25 \"{host}\" 25\n");
        assert!(
            matches!(err_at(&line, 1), ConfigErrorKind::PortMapHost { ref value, .. } if value == host),
            "{host}"
        );
    }
    let e = config_util::parse("tcppm 25 mail:26 25\n").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("test.cfg:1: `mail:26` is not a usable DSTHOST"),
        "{e}"
    );
    assert!(matches!(
        err_at("tcppm 25 unix:/run/x.sock 25\n", 1),
        ConfigErrorKind::NotSupportedYet { .. }
    ));
    // Options of other services are checked as for `socks`.
    assert_eq!(
        err_at("tcppm -q 25 mail 25\n", 1),
        ConfigErrorKind::UnknownOption {
            option: "-q".into()
        }
    );
}

#[test]
fn tcppm_standalone_form() {
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cfg = config::parse_standalone("tcppm", &args(&["-i127.0.0.1", "8025", "localhost", "25"]))
        .unwrap();
    let s = &cfg.services[0];
    assert_eq!(s.listen, addr("127.0.0.1:8025"));
    assert_eq!(s.log, LogTarget::Stdout);
    let name = DomainName::new(b"localhost").unwrap();
    assert_eq!(tcppm_target(s), &TargetAddr::Domain(name, 25));
    let e = config::parse_standalone("tcppm", &args(&["-i127.0.0.1", "8025"])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "command line: `tcppm` takes SRCPORT DSTHOST DSTPORT after its options, 1 given (`8025`)"
    );
    let e = config::parse_standalone("tcppm", &args(&["8025", "mail", "0"])).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.to_string().contains("DSTPORT"), "{e}");
}

#[test]
fn udppm_and_dnspr_take_their_own_meaning_of_s_and_f() {
    let cfg = config_util::parse(
        "udppm -s -i127.0.0.1 5353 127.0.0.1 53\nudppm 5354 ns.example 53\n\
         dnspr -s -F10.1.2.3 -F::5\ndnspr -p5300\n",
    )
    .unwrap();
    let [a, b, c, d] = &cfg.services[..] else {
        panic!("four services")
    };
    assert!(matches!(&a.kind, ServiceKind::UdpPm { single: true, .. }));
    assert_eq!(a.listen, "127.0.0.1:5353".parse().unwrap());
    assert!(matches!(
        &b.kind,
        ServiceKind::UdpPm {
            single: false,
            target: TargetAddr::Domain(..)
        }
    ));
    let ServiceKind::DnsPr(dns) = &c.kind else {
        panic!()
    };
    assert!(dns.simple);
    assert_eq!(dns.fake_v4, Some("10.1.2.3".parse().unwrap()));
    assert_eq!(dns.fake_v6, Some("::5".parse().unwrap()));
    assert_eq!(c.listen.port(), 53, "dnspr's default port");
    assert_eq!(d.listen.port(), 5300);
    for (line, option) in [
        ("udppm -s0 53 ns 53", "-s0"),
        ("dnspr -s1", "-s1"),
        ("dnspr -Fnot-an-ip", "-Fnot-an-ip"),
    ] {
        assert_eq!(
            config_util::parse(&format!("{line}\n")).unwrap_err().kind,
            ConfigErrorKind::InvalidOptionValue {
                option: option.into()
            },
            "{line}"
        );
    }
    // -F is dnspr's only.
    assert!(matches!(
        config_util::parse("socks -F1.2.3.4\n").unwrap_err().kind,
        ConfigErrorKind::UnsupportedOption { .. }
    ));
}

#[test]
fn mail_and_tls_proxies_take_their_options() {
    let cfg = config_util::parse(
        "smtpp -p2525 -x -hmail.example\nimapp -h127.0.0.1:1143\ntlspr -P8443 -c2 -hfallback.example\nauto\n",
    )
    .unwrap();
    let [smtp, imap, tls, auto] = &cfg.services[..] else {
        panic!("four services")
    };
    let ServiceKind::Smtpp(m) = &smtp.kind else {
        panic!()
    };
    assert!(!m.starttls);
    assert_eq!(
        m.default_target,
        Some(TargetAddr::Domain(
            DomainName::new(b"mail.example").unwrap(),
            587
        ))
    );
    assert_eq!(smtp.listen.port(), 2525);
    let ServiceKind::Imapp(m) = &imap.kind else {
        panic!()
    };
    assert_eq!(imap.listen.port(), 143);
    assert_eq!(
        m.default_target,
        Some(TargetAddr::Ip("127.0.0.1:1143".parse().unwrap()))
    );
    let ServiceKind::Tlspr(t) = &tls.kind else {
        panic!()
    };
    assert_eq!((t.port, t.check, tls.listen.port()), (8443, 2, 1443));
    assert_eq!(auto.listen.port(), 8080);
    for (line, want) in [
        ("tlspr -c3", "TLS certificate checks"),
        ("tlspr -Xpop3", "plaintext protocol before STARTTLS"),
        ("tlspr -c9", "invalid service option `-c9`"),
        ("tlspr -P0", "not a valid"),
        ("pop3p -x1", "`-x1`"),
    ] {
        let e = config_util::parse(&format!("{line}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{line}: {e}");
    }
}

#[test]
fn admin_service_line() {
    let cfg = ok("admin\nadmin -s -p8081 -i127.0.0.1 -l/dev/null\n");
    let (plain, read_only) = (&cfg.services[0], &cfg.services[1]);
    assert_eq!(plain.kind, ServiceKind::Admin { read_only: false });
    assert_eq!(plain.kind.command(), "admin");
    assert_eq!(plain.listen, addr("0.0.0.0:80"), "3proxy's default port");
    assert_eq!(read_only.kind, ServiceKind::Admin { read_only: true });
    assert_eq!(read_only.listen, addr("127.0.0.1:8081"));
    assert_eq!(read_only.log, LogTarget::Off);
    for bad in ["admin -s1", "admin -s0"] {
        assert_eq!(
            err_at(&format!("{bad}\n"), 1),
            ConfigErrorKind::InvalidOptionValue {
                option: bad[6..].to_owned()
            },
            "{bad}"
        );
    }
    let e = config_util::parse("admin -sx\n").unwrap_err();
    assert_eq!(e.to_string(), "test.cfg:1: invalid service option `-sx`");
    let e = config_util::parse("admin extra\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "test.cfg:1: `admin` does not take the argument `extra`"
    );
}

#[test]
fn admin_takes_the_auth_and_acl_in_force() {
    let cfg = ok("users a:CL:b\nauth strong\nallow a * * * ADMIN\nadmin -p0\nflush\nsocks -p0\n");
    let admin = &cfg.services[0];
    assert_eq!(admin.auth, AuthChain::parse(&["strong"]).unwrap());
    assert_eq!(
        admin.acl,
        [ace(Action::Allow, &["a", "*", "*", "*", "ADMIN"])]
    );
    assert!(cfg.services[1].acl.is_empty());
}
