//! Service lines: each service command with its options and arguments, the settings it
//! takes from the lines before it, its errors (file, line, problem), and the standalone
//! form (`triproxy socks -p1080 ...`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{ace, addr, arg_count, err_at, ok, parse_in, TempDir};
use std::net::SocketAddr;
use triproxy::config::{self, ConfigErrorKind, LogTarget, NeedUser, ServiceKind};
use triproxy::logformat::LogFormat;
use triproxy_policy::acl::Action;
use triproxy_policy::auth::AuthChain;
use triproxy_policy::service::Anonymity;
use triproxy_wire::{DomainName, TargetAddr};

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
