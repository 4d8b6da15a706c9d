//! Tests of ACL parsing and first-match evaluation.
//!
//! A test module only: `acl.rs` includes it under `#[cfg(test)]`, so its `unwrap()`s
//! never see network or configuration input.
use super::*;
use std::net::IpAddr;
use triproxy_wire::{DomainName, LogCode};

#[test]
fn any_destination_is_refused_only_by_entries_that_refuse_every_destination() {
    let time = CivilTime {
        weekday: 1,
        seconds_of_day: 0,
    };
    let req = AclRequest {
        user: None,
        client: "127.0.0.1".parse().unwrap(),
        target_host: None,
        target_ip: Some("0.0.0.0".parse().unwrap()),
        port: Some(0),
        operation: Operation::UdpAssoc,
        time,
    };
    let deny_port = Ace::parse(Action::Deny, &["*", "*", "*", "25"]).unwrap();
    let allow = Ace::any(Action::Allow);
    let acl = [deny_port, allow.clone()];
    assert_eq!(check(&acl, &req), AclVerdict::Allow);
    let datagram = AclRequest {
        target_ip: Some("192.0.2.1".parse().unwrap()),
        port: Some(25),
        ..req
    };
    assert_eq!(
        check(&acl, &datagram),
        AclVerdict::Deny,
        "a real destination is judged"
    );
    let connect = AclRequest {
        operation: Operation::Connect,
        ..req
    };
    assert_eq!(
        check(&acl, &connect),
        AclVerdict::Deny,
        "only UDP ASSOCIATE"
    );
    let deny_client = Ace::parse(Action::Deny, &["*", "127.0.0.1"]).unwrap();
    assert_eq!(check(&[deny_client, allow], &req), AclVerdict::Deny);
    let allow_some = Ace::parse(Action::Allow, &["*", "*", "10.0.0.0/8"]).unwrap();
    assert_eq!(check(&[allow_some], &req), AclVerdict::Allow);
    let only_connect = Ace::parse(Action::Allow, &["*", "*", "*", "*", "CONNECT"]).unwrap();
    assert_eq!(check(&[only_connect], &req), AclVerdict::NoMatch);
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn req<'a>() -> AclRequest<'a> {
    AclRequest {
        user: None,
        client: ip("10.0.0.1"),
        target_host: None,
        target_ip: Some(ip("192.0.2.10")),
        port: Some(80),
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 1,
            seconds_of_day: 12 * 3600,
        },
    }
}

fn ace(fields: &[&str]) -> Ace {
    Ace::parse(Action::Allow, fields).unwrap()
}

fn err(fields: &[&str]) -> AclError {
    Ace::parse(Action::Allow, fields).unwrap_err()
}

fn bad(fields: &[&str], field: AclField, token: &str, problem: TokenProblem) {
    let e = err(fields);
    assert_eq!(
        e,
        AclError::BadToken {
            field,
            token: ConfigToken::new(token),
            problem
        },
        "{fields:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains(field.name()), "{msg}");
    assert!(
        msg.contains(&format!("`{}`", ConfigToken::new(token))),
        "{msg}"
    );
}

#[test]
fn empty_and_star_fields_match_anything() {
    let cases: [&[&str]; 3] = [&[], &["*"], &["*", "*", "*", "*", "*", "*", "*", "*"]];
    for fields in cases {
        let a = ace(fields);
        assert_eq!(a, Ace::any(Action::Allow));
        assert!(a.matches(&req()));
    }
}

#[test]
fn too_many_fields() {
    let e = err(&["*"; 9]);
    assert_eq!(e, AclError::TooManyFields { count: 9 });
    assert!(e.to_string().contains("9 fields"));
}

#[test]
fn users_exact_case_sensitive_and_dash() {
    let a = ace(&["alice,-"]);
    let mut r = req();
    assert!(a.matches(&r), "no user matches -");
    r.user = Some("");
    assert!(a.matches(&r), "empty user counts as no user");
    r.user = Some("alice");
    assert!(a.matches(&r));
    r.user = Some("Alice");
    assert!(!a.matches(&r));
    r.user = Some("alice2");
    assert!(!a.matches(&r));
    let only = ace(&["bob"]);
    r.user = None;
    assert!(!only.matches(&r));
}

#[test]
fn user_errors() {
    bad(&["a,,b"], AclField::Users, "a,,b", TokenProblem::EmptyItem);
    bad(&[""], AclField::Users, "", TokenProblem::EmptyItem);
    bad(&["a,*"], AclField::Users, "*", TokenProblem::StarInList);
    let long = "u".repeat(256);
    bad(
        &[long.as_str()],
        AclField::Users,
        &long,
        TokenProblem::TooLong { max: 255 },
    );
    assert!(ace(&[&"u".repeat(255)]).users().is_some());
}

#[test]
fn list_cap() {
    let ok = vec!["u"; MAX_LIST_ITEMS].join(",");
    assert_eq!(ace(&[&ok]).users().map(|u| u.len()), Some(MAX_LIST_ITEMS));
    let over = vec!["u"; MAX_LIST_ITEMS + 1].join(",");
    assert_eq!(
        err(&[&over]),
        AclError::TooManyItems {
            field: AclField::Users,
            max: MAX_LIST_ITEMS
        }
    );
    let ports = vec!["80"; MAX_LIST_ITEMS + 1].join(",");
    assert!(err(&["*", "*", "*", &ports])
        .to_string()
        .contains("ports: more than 4096"));
}

#[test]
fn ip_forms() {
    let single = IpRange::parse("192.0.2.1").unwrap();
    assert!(single.contains(ip("192.0.2.1")) && !single.contains(ip("192.0.2.2")));
    let cidr = IpRange::parse("10.1.2.3/8").unwrap();
    assert_eq!(
        cidr,
        IpRange::V4 {
            first: "10.0.0.0".parse().unwrap(),
            last: "10.255.255.255".parse().unwrap()
        }
    );
    let all4 = IpRange::parse("0.0.0.0/0").unwrap();
    assert!(all4.contains(ip("255.255.255.255")) && !all4.contains(ip("::1")));
    let host = IpRange::parse("10.0.0.1/32").unwrap();
    assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
    let range = IpRange::parse("10.0.0.5-10.0.0.9").unwrap();
    assert!(range.contains(ip("10.0.0.5")) && range.contains(ip("10.0.0.9")));
    assert!(!range.contains(ip("10.0.0.4")) && !range.contains(ip("10.0.0.10")));
    assert!(IpRange::parse("10.0.0.5-10.0.0.5").is_ok());
    // IPv6, all three forms.
    let v6 = IpRange::parse("2001:db8::1").unwrap();
    assert!(v6.contains(ip("2001:db8::1")) && !v6.contains(ip("2001:db8::2")));
    let v6net = IpRange::parse("2001:db8::/32").unwrap();
    assert!(v6net.contains(ip("2001:db8:ffff::1")) && !v6net.contains(ip("2001:db9::")));
    let all6 = IpRange::parse("::/0").unwrap();
    assert!(all6.contains(ip("::1")) && !all6.contains(ip("127.0.0.1")));
    let v6range = IpRange::parse("fe80::1-fe80::ff").unwrap();
    assert!(v6range.contains(ip("fe80::80")) && !v6range.contains(ip("fe80::100")));
    let v6host = IpRange::parse("::1/128").unwrap();
    assert!(v6host.contains(ip("::1")) && !v6host.contains(ip("::2")));
    // Family must match.
    assert!(!IpRange::parse("::1").unwrap().contains(ip("0.0.0.1")));
}

#[test]
fn mapped_addresses_normalised() {
    let v4 = IpRange::parse("10.0.0.0/8").unwrap();
    assert!(v4.contains(ip("::ffff:10.1.1.1")));
    let mapped = IpRange::parse("::ffff:10.0.0.0/104").unwrap();
    assert_eq!(mapped, v4);
    assert!(mapped.contains(ip("10.9.9.9")));
    let single = IpRange::parse("::ffff:192.0.2.1").unwrap();
    assert!(matches!(single, IpRange::V4 { .. }));
    let a = ace(&["*", "10.0.0.0/8", "192.0.2.0/24"]);
    let mut r = req();
    r.client = ip("::ffff:10.0.0.1");
    r.target_ip = Some(ip("::ffff:192.0.2.10"));
    assert!(a.matches(&r));
    // Not compatible (::a.b.c.d) addresses: they stay IPv6.
    r.client = ip("::10.0.0.1");
    assert!(!a.matches(&r));
}

#[test]
fn ip_errors() {
    let f = AclField::Sources;
    bad(
        &["*", "10.0.0.256"],
        f,
        "10.0.0.256",
        TokenProblem::NotAnAddress,
    );
    bad(
        &["*", "example.com"],
        f,
        "example.com",
        TokenProblem::NotAnAddress,
    );
    bad(
        &["*", "10.0.0.0/33"],
        f,
        "10.0.0.0/33",
        TokenProblem::BadPrefixLength { max: 32 },
    );
    bad(
        &["*", "10.0.0.0/x"],
        f,
        "10.0.0.0/x",
        TokenProblem::BadPrefixLength { max: 32 },
    );
    bad(
        &["*", "10.0.0.0/"],
        f,
        "10.0.0.0/",
        TokenProblem::BadPrefixLength { max: 32 },
    );
    bad(
        &["*", "10.0.0.0/+8"],
        f,
        "10.0.0.0/+8",
        TokenProblem::BadPrefixLength { max: 32 },
    );
    bad(
        &["*", "::/129"],
        f,
        "::/129",
        TokenProblem::BadPrefixLength { max: 128 },
    );
    bad(
        &["*", "10.0.0.9-10.0.0.1"],
        f,
        "10.0.0.9-10.0.0.1",
        TokenProblem::DescendingRange,
    );
    bad(
        &["*", "::2-::1"],
        f,
        "::2-::1",
        TokenProblem::DescendingRange,
    );
    bad(
        &["*", "10.0.0.1-::1"],
        f,
        "10.0.0.1-::1",
        TokenProblem::MixedFamilies,
    );
    bad(
        &["*", "10.0.0.1-"],
        f,
        "10.0.0.1-",
        TokenProblem::NotAnAddress,
    );
    bad(
        &["*", "10.0.0.0/8,,"],
        f,
        "10.0.0.0/8,,",
        TokenProblem::EmptyItem,
    );
    bad(&["*", "*,10.0.0.1"], f, "*", TokenProblem::StarInList);
}

#[test]
fn source_match() {
    let a = ace(&["*", "192.168.0.0/16,10.0.0.1"]);
    let mut r = req();
    assert!(a.matches(&r));
    r.client = ip("10.0.0.2");
    assert!(!a.matches(&r));
    r.client = ip("192.168.200.1");
    assert!(a.matches(&r));
    r.client = ip("::1");
    assert!(!a.matches(&r));
}

#[test]
fn host_pattern_forms() {
    let p = |s: &str| HostPattern::parse(s).unwrap();
    let exact = p("Example.COM.");
    assert_eq!(
        (exact.kind(), exact.text()),
        (HostMatch::Exact, "example.com")
    );
    assert!(exact.matches(b"EXAMPLE.com"));
    assert!(exact.matches(b"example.com..."));
    assert!(!exact.matches(b"www.example.com"));
    let suffix = p("*example.com");
    assert_eq!(suffix.kind(), HostMatch::Suffix);
    assert!(suffix.matches(b"www.example.com") && suffix.matches(b"badexample.com"));
    assert!(!suffix.matches(b"example.com"), "strictly longer");
    let dot_suffix = p("*.example.com");
    assert!(dot_suffix.matches(b"a.example.com") && !dot_suffix.matches(b"aexample.com"));
    let prefix = p("www.*");
    assert_eq!((prefix.kind(), prefix.text()), (HostMatch::Prefix, "www."));
    assert!(prefix.matches(b"WWW.example.org") && !prefix.matches(b"ww.example.org"));
    assert!(p("www*").matches(b"www"), "prefix may be the whole name");
    let middle = p("*tracker*");
    assert_eq!(middle.kind(), HostMatch::Contains);
    assert!(middle.matches(b"ads.TRACKER.net") && middle.matches(b"tracker"));
    assert!(!middle.matches(b"track.er"));
    // Non-UTF-8 bytes are compared as bytes.
    assert!(p("*.example").matches(b"\xff.example"));
    // Prefix pattern keeps its dot; request dots stripped.
    assert!(!p("example.*").matches(b"example."));
}

#[test]
fn host_pattern_errors() {
    let f = AclField::Targets;
    for tok in ["**", "a*b", "*.", ".", "a b", "a\tb", "***a"] {
        let fields = ["*", "*", tok];
        let e = err(&fields);
        match e {
            AclError::BadToken { field, problem, .. } => {
                assert_eq!(field, f, "{tok:?}");
                assert!(
                    matches!(
                        problem,
                        TokenProblem::BadHostPattern | TokenProblem::StarInList
                    ),
                    "{tok:?}: {problem:?}"
                );
            }
            other => panic!("{tok:?}: {other:?}"),
        }
    }
    bad(&["*", "*", "a*b"], f, "a*b", TokenProblem::BadHostPattern);
    let long = format!("{}.com", "a".repeat(252));
    bad(
        &["*", "*", &long],
        f,
        &long,
        TokenProblem::TooLong { max: 255 },
    );
}

#[test]
fn target_token_classification() {
    let a = ace(&["*", "*", "10.0.0.0/8,host1,*.example.com,::1,fe80::"]);
    let t = a.targets().unwrap();
    assert_eq!(t.ips().len(), 3);
    assert_eq!(t.hosts().len(), 2);
    let f = AclField::Targets;
    bad(
        &["*", "*", "1.2.3.999"],
        f,
        "1.2.3.999",
        TokenProblem::NotAnAddress,
    );
    bad(&["*", "*", "1.2.3"], f, "1.2.3", TokenProblem::NotAnAddress);
    bad(
        &["*", "*", "10.0.0.0/40"],
        f,
        "10.0.0.0/40",
        TokenProblem::BadPrefixLength { max: 32 },
    );
    bad(
        &["*", "*", "fe80::zz"],
        f,
        "fe80::zz",
        TokenProblem::NotAnAddress,
    );
    bad(
        &["*", "*", "10.0.0.2-10.0.0.1"],
        f,
        "10.0.0.2-10.0.0.1",
        TokenProblem::DescendingRange,
    );
}

#[test]
fn target_matching() {
    let host = DomainName::new(b"www.Example.com.").unwrap();
    let other = DomainName::new(b"other.org").unwrap();
    let by_name = ace(&["*", "*", "*.example.com"]);
    let by_ip = ace(&["*", "*", "192.0.2.0/24"]);
    let both = ace(&["*", "*", "192.0.2.0/24,*.example.com"]);
    let mut r = req();
    // IP-only request: patterns never match.
    assert!(!by_name.matches(&r));
    assert!(by_ip.matches(&r));
    // Name plus resolved IP: either may match.
    r.target_host = Some(&other);
    assert!(by_ip.matches(&r) && both.matches(&r) && !by_name.matches(&r));
    r.target_host = Some(&host);
    r.target_ip = Some(ip("198.51.100.1"));
    assert!(by_name.matches(&r) && both.matches(&r) && !by_ip.matches(&r));
    // Unresolved name: address entries cannot match it.
    r.target_ip = None;
    assert!(by_name.matches(&r) && !by_ip.matches(&r));
    // Neither name nor IP: the field is skipped.
    r.target_host = None;
    assert!(by_ip.matches(&r) && by_name.matches(&r));
    // Unspecified address counts as unknown, except for BIND.
    r.target_ip = Some(ip("0.0.0.0"));
    assert!(by_name.matches(&r) && by_ip.matches(&r));
    r.operation = Operation::Bind;
    assert!(!by_ip.matches(&r));
    assert!(ace(&["*", "*", "0.0.0.0"]).matches(&r));
}

#[test]
fn ports() {
    let a = ace(&["*", "*", "*", "80,443,8000-8080"]);
    let mut r = req();
    for (p, ok) in [
        (80, true),
        (443, true),
        (8000, true),
        (8080, true),
        (81, false),
    ] {
        r.port = Some(p);
        assert_eq!(a.matches(&r), ok, "{p}");
    }
    r.port = Some(8081);
    assert!(!a.matches(&r));
    r.port = None;
    assert!(a.matches(&r), "no port yet: skipped");
    r.port = Some(0);
    assert!(a.matches(&r), "port 0 counts as unknown");
    r.operation = Operation::Bind;
    assert!(!a.matches(&r), "BIND checks port 0");
    assert!(ace(&["*", "*", "*", "0-10"]).matches(&r));
    assert_eq!(
        PortRange::parse("65535").unwrap(),
        PortRange {
            first: 65535,
            last: 65535
        }
    );
    let f = AclField::Ports;
    for tok in [
        "65536", "-1", "a", "80-", "-80", "1-2-3", "+80", "80 ", "123456",
    ] {
        bad(&["*", "*", "*", tok], f, tok, TokenProblem::NotAPort);
    }
    bad(
        &["*", "*", "*", "90-80"],
        f,
        "90-80",
        TokenProblem::DescendingRange,
    );
}

#[test]
fn operations() {
    let a = ace(&["*", "*", "*", "*", "CONNECT,HTTPS,FTP"]);
    let mut r = req();
    for (op, ok) in [
        (Operation::Connect, true),
        (Operation::HttpConnect, true),
        (Operation::FtpList, true),
        (Operation::FtpData, true),
        (Operation::Bind, false),
        (Operation::HttpGet, false),
    ] {
        r.operation = op;
        assert_eq!(a.matches(&r), ok, "{op:?}");
    }
    for op in Operation::ALL {
        let set = OperationSet::parse_token(op.name()).unwrap();
        for other in Operation::ALL {
            assert_eq!(set.contains(other), op == other);
        }
    }
    let http = OperationSet::parse_token("HTTP").unwrap();
    for op in Operation::ALL {
        let is_http = matches!(
            op,
            Operation::HttpGet
                | Operation::HttpPut
                | Operation::HttpPost
                | Operation::HttpHead
                | Operation::HttpOther
        );
        assert_eq!(http.contains(op), is_http, "{op:?}");
    }
    let f = AclField::Operations;
    for tok in ["connect", "GET", "HTTP_", "UDP"] {
        bad(
            &["*", "*", "*", "*", tok],
            f,
            tok,
            TokenProblem::UnknownOperation,
        );
    }
}

#[test]
fn weekdays() {
    let days = |s: &str| ace(&["*", "*", "*", "*", "*", s]).weekdays().unwrap();
    let work = days("1-5");
    assert!((1..=5).all(|d| work.contains(d)) && !work.contains(0) && !work.contains(6));
    let weekend = days("0,6");
    assert!(weekend.contains(0) && weekend.contains(6) && !weekend.contains(3));
    assert_eq!(days("06"), weekend);
    assert_eq!(days("7"), days("0"));
    assert_eq!(days("6-7"), weekend);
    assert!((0..7).all(|d| days("0-7").contains(d)));
    assert!(days("1").contains(8), "weekday taken modulo 7");
    let mut r = req();
    let a = ace(&["*", "*", "*", "*", "*", "1-5"]);
    r.time.weekday = 5;
    assert!(a.matches(&r));
    r.time.weekday = 6;
    assert!(!a.matches(&r));
    let f = AclField::Weekdays;
    for tok in ["8", "5-2", "1-", "-1", "Mon", "1-9", "1 "] {
        bad(
            &["*", "*", "*", "*", "*", tok],
            f,
            tok,
            TokenProblem::BadWeekday,
        );
    }
}

#[test]
fn time_periods() {
    let a = ace(&[
        "*",
        "*",
        "*",
        "*",
        "*",
        "*",
        "00:00:00-08:00:00,20:00:00-24:00:00",
    ]);
    let p = a.time_periods().unwrap();
    assert_eq!(
        p,
        &[
            TimePeriod {
                start: 0,
                end: 8 * 3600
            },
            TimePeriod {
                start: 20 * 3600,
                end: SECONDS_PER_DAY
            }
        ]
    );
    let mut r = req();
    for (t, ok) in [
        (0, true),
        (8 * 3600 - 1, true),
        (8 * 3600, false),
        (20 * 3600, true),
        (SECONDS_PER_DAY - 1, true),
        (SECONDS_PER_DAY, false),
    ] {
        r.time.seconds_of_day = t;
        assert_eq!(a.matches(&r), ok, "{t}");
    }
    let f = AclField::TimePeriods;
    for tok in [
        "9:00:00-10:00:00",
        "09:00-10:00",
        "09:60:00-10:00:00",
        "09:00:60-10:00:00",
        "25:00:00-26:00:00",
        "24:00:01-24:00:02",
        "09:00:00",
        "09:00:00-10:00:00x",
        "0a:00:00-10:00:00",
    ] {
        bad(
            &["*", "*", "*", "*", "*", "*", tok],
            f,
            tok,
            TokenProblem::BadTimePeriod,
        );
    }
    for tok in ["10:00:00-09:00:00", "10:00:00-10:00:00"] {
        bad(
            &["*", "*", "*", "*", "*", "*", tok],
            f,
            tok,
            TokenProblem::EmptyTimePeriod,
        );
    }
}

#[test]
fn weight() {
    assert_eq!(
        ace(&["*", "*", "*", "*", "*", "*", "*", "500"]).weight(),
        Some(500)
    );
    assert_eq!(
        ace(&["*", "*", "*", "*", "*", "*", "*", "*"]).weight(),
        None
    );
    assert_eq!(ace(&["*"]).weight(), None);
    let f = AclField::Weight;
    for tok in ["-1", "x", "", "4294967296"] {
        bad(
            &["*", "*", "*", "*", "*", "*", "*", tok],
            f,
            tok,
            TokenProblem::NotANumber,
        );
    }
}

#[test]
fn first_match_wins_and_codes() {
    let acl = [
        Ace::parse(Action::Deny, &["*", "*", "*", "25"]).unwrap(),
        Ace::parse(Action::Allow, &["*", "10.0.0.0/8"]).unwrap(),
        Ace::parse(Action::Deny, &["*"]).unwrap(),
    ];
    let mut r = req();
    assert_eq!(check(&acl, &r), AclVerdict::Allow);
    assert_eq!(first_match(&acl, &r), Some(1));
    r.port = Some(25);
    assert_eq!(check(&acl, &r), AclVerdict::Deny);
    assert_eq!(first_match(&acl, &r), Some(0));
    r.port = Some(80);
    r.client = ip("172.16.0.1");
    assert_eq!(check(&acl, &r), AclVerdict::Deny);
    assert_eq!(check(acl.get(..2).unwrap(), &r), AclVerdict::NoMatch);
    assert_eq!(check(&[], &r), AclVerdict::Allow);
    assert_eq!(AclVerdict::Deny.log_code(), Some(LogCode::ACL_DENIED));
    assert_eq!(AclVerdict::NoMatch.log_code(), Some(LogCode::ACL_NO_MATCH));
    assert_eq!(AclVerdict::Allow.log_code(), None);
}

#[test]
fn config_token_bounds() {
    let t = ConfigToken::new(&"é".repeat(40));
    assert!(t.is_truncated());
    assert!(t.as_str().len() <= TOKEN_EXCERPT_LEN);
    assert!(t.to_string().ends_with("..."));
    assert_eq!(ConfigToken::new("a\nb").to_string(), "a\\nb");
}
