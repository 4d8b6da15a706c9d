//! Tests of the 3proxy log format: every macro, the replacement prefix, limits.

use super::*;
use chrono::TimeZone as _;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u64) -> SystemTime {
    let dt = Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
    UNIX_EPOCH + Duration::from_secs(dt.timestamp() as u64) + Duration::from_millis(ms)
}

fn sample<'a>() -> LogFields<'a> {
    LogFields {
        time: at(2026, 11, 21, 10, 29, 43, 351),
        duration: Duration::from_millis(2000),
        service: "SOCK5",
        listen_port: 23228,
        code: LogCode::SUCCESS,
        user: Some("alice"),
        client: "127.0.0.1:33054".parse().unwrap(),
        remote: Some("127.0.0.1:28081".parse().unwrap()),
        internal: Some("127.0.0.2".parse().unwrap()),
        external: Some("10.1.1.1".parse().unwrap()),
        requested_host: Some("example.org"),
        requested: Some("192.0.2.7:8080".parse().unwrap()),
        requested_port: None,
        bytes_in: 286,
        bytes_out: 148,
        hops: 0,
        text: "GET http://127.0.0.1:28081/x HTTP/1.1",
        reason: None,
    }
}

fn render(fmt: &str, rec: &LogFields<'_>) -> String {
    let f = LogFormat::parse(fmt).unwrap();
    let mut s = String::new();
    f.render(rec, &mut s);
    s
}

#[test]
fn golden_default_format() {
    let mut s = String::new();
    LogFormat::default_3proxy().render(&sample(), &mut s);
    assert_eq!(
        s,
        "261121102943.351 23228 00000 alice 127.0.0.1:33054 127.0.0.1:28081 148 286 0 GET http://127.0.0.1:28081/x HTTP/1.1"
    );
    assert_eq!(
        LogFormat::default_3proxy(),
        LogFormat::parse(DEFAULT_3PROXY).unwrap()
    );
    assert_eq!(LogFormat::default().as_str(), DEFAULT_3PROXY);
}

#[test]
fn every_time_macro() {
    let r = sample();
    assert_eq!(render("G%y|%Y|%m|%o|%d", &r), "26|2026|11|Nov|21");
    assert_eq!(render("G%H|%M|%S|%.", &r), "10|29|43|351");
    assert_eq!(render("G%t", &r), "1795256983");
    assert_eq!(render("G%z", &r), "+0000");
    let early = LogFields {
        time: at(2001, 1, 2, 3, 4, 5, 6),
        ..sample()
    };
    assert_eq!(
        render("g%y%m%d %H:%M:%S.%. %o %t", &early),
        "010102 03:04:05.006 Jan 0978404645"
    );
}

#[test]
fn local_time_matches_chrono_local() {
    let r = sample();
    let local = DateTime::<Utc>::from_timestamp(1_795_256_983, 0)
        .unwrap()
        .with_timezone(&Local);
    let off = local.offset().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let expect = format!(
        "{} {sign}{:02}{:02}",
        local.format("%Y%m%d%H%M%S"),
        off.unsigned_abs() / 3600,
        off.unsigned_abs() / 60 % 60
    );
    assert_eq!(render("L%Y%m%d%H%M%S %z", &r), expect);
    // %t is zone-independent.
    assert_eq!(render("L%t", &r), "1795256983");
}

#[test]
fn every_connection_macro() {
    let r = sample();
    assert_eq!(render("G%U %N %p %E", &r), "alice SOCK5 23228 00000");
    assert_eq!(
        render("G%C:%c %R:%r", &r),
        "127.0.0.1:33054 127.0.0.1:28081"
    );
    assert_eq!(
        render("G%i %e %Q:%q", &r),
        "127.0.0.2 10.1.1.1 192.0.2.7:8080"
    );
    assert_eq!(render("G%I %O %h %L", &r), "286 148 0 0");
    assert_eq!(render("G%E %X", &r), "00000 ok");
    assert_eq!(render("G%D %b %B", &r), "2000 74 143");
    assert_eq!(render("G%n", &r), "example.org");
    assert_eq!(render("G%T", &r), "GET http://127.0.0.1:28081/x HTTP/1.1");
    let r2 = LogFields {
        code: LogCode::BAD_CL_PASSWORD,
        hops: 3,
        requested_port: Some(443),
        ..sample()
    };
    assert_eq!(render("G%E %h %q", &r2), "00006 3 443");
}

#[test]
fn missing_fields_print_placeholders() {
    let r = LogFields::new("SOCKS", "[::1]:5000".parse().unwrap());
    assert_eq!(
        render("G%U %R:%r %i %e %Q:%q %n %D %b %B [%T]", &r),
        "- 0.0.0.0:0 0.0.0.0 0.0.0.0 0.0.0.0:0 [0.0.0.0] 0 0 0 []"
    );
    assert_eq!(render("G%C:%c", &r), "::1:5000");
    let empty_user = LogFields {
        user: Some(""),
        ..r.clone()
    };
    assert_eq!(render("G%U", &empty_user), "-");
    // A host name containing ':' (an IPv6 literal) prints the requested IP instead.
    let v6 = LogFields {
        requested_host: Some("::1"),
        requested: Some("[2001:db8::1]:80".parse().unwrap()),
        ..r
    };
    assert_eq!(render("G%n", &v6), "[2001:db8::1]");
}

#[test]
fn percent_literals_and_unknown_macros() {
    let r = sample();
    assert_eq!(render("G100%%", &r), "100%");
    assert_eq!(render("Gx%", &r), "x%");
    assert_eq!(render("G%x%w%0%é", &r), "xw0é");
    assert_eq!(render("Gplain text", &r), "plain text");
    assert_eq!(render("G", &r), "");
}

#[test]
fn word_ranges_of_text() {
    let r = sample();
    assert_eq!(render("G%1-1T", &r), "GET");
    assert_eq!(render("G%2-2T", &r), "http://127.0.0.1:28081/x");
    assert_eq!(render("G%2-3T", &r), "http://127.0.0.1:28081/x HTTP/1.1");
    assert_eq!(render("G%1-99T", &r), r.text);
    assert_eq!(render("G[%4-9T]", &r), "[]");
    assert_eq!(render("G[%3-2T]", &r), "[]");
    // Not a full `N1-N2T`: the digit prints as an unknown macro.
    assert_eq!(render("G%1T", &r), "1T");
    assert_eq!(render("G%1-T", &r), "1-T");
    let tabs = LogFields {
        text: "a \t b\tc",
        ..sample()
    };
    assert_eq!(render("G%2-3T", &tabs), "b\tc");
    // The separator printed is the last whitespace character of the run.
    assert_eq!(render("G%1-2T", &tabs), "a b");
}

#[test]
fn replacement_prefix() {
    let r = LogFields {
        user: Some("bob smith\x01"),
        requested_host: Some("a b"),
        text: "GET /x y\nz",
        ..sample()
    };
    assert_eq!(
        render("- +_G%U|%n|%T|%1-2T|%N a b", &r),
        "bob_smith_|a_b|GET_/x_y_z|GET_/x|SOCK5 a b"
    );
    // Several characters; the replacement may be any character.
    assert_eq!(render("-/:+#G%T", &r), "GET #x y#z");
    assert_eq!(
        render(
            "-\"+_G%T",
            &LogFields {
                text: "say \"hi\"",
                ..sample()
            }
        ),
        "say _hi_"
    );
    // Empty set: only control characters are replaced.
    assert_eq!(render("-+.G%T", &r), "GET /x y.z");
    // Without a prefix nothing is replaced.
    assert_eq!(render("G%T", &r), "GET /x y\nz");
    let f = LogFormat::parse("- +_L%T").unwrap();
    assert_eq!(f.time_zone(), TimeZone::Local);
    assert_eq!(f.to_string(), "- +_L%T");
}

#[test]
fn parse_errors() {
    assert_eq!(LogFormat::parse(""), Err(LogFormatError::Empty));
    assert_eq!(LogFormat::parse("- +_"), Err(LogFormatError::Empty));
    // As in 3proxy, the first character is consumed whatever it is (local time).
    let consumed = LogFormat::parse("%d-%m-%Y").unwrap();
    assert_eq!(consumed.time_zone(), TimeZone::Local);
    assert_eq!(render("%d-%m-%Y", &sample()).len(), "d-11-2026".len());
    assert_eq!(render("x%E", &sample()), "00000");
    assert_eq!(
        LogFormat::parse("-abc"),
        Err(LogFormatError::BadReplacementPrefix)
    );
    assert_eq!(
        LogFormat::parse("-abc+"),
        Err(LogFormatError::BadReplacementPrefix)
    );
    let long = format!("G{}", "x".repeat(MAX_FORMAT_LEN));
    assert_eq!(
        LogFormat::parse(&long),
        Err(LogFormatError::TooLong {
            len: MAX_FORMAT_LEN + 1
        })
    );
    assert!(LogFormat::parse(&long[..MAX_FORMAT_LEN]).is_ok());
    assert_eq!(
        LogFormatError::BadReplacementPrefix.to_string(),
        "log format starts with `-` but has no `+R` ending the replacement prefix `-CHARS+R`"
    );
}

#[test]
fn output_is_capped_and_appended() {
    let big = "é".repeat(MAX_RECORD_LEN);
    let r = LogFields {
        text: &big,
        ..sample()
    };
    let mut s = String::from("prefix:");
    LogFormat::parse("G%T%T tail").unwrap().render(&r, &mut s);
    assert!(s.starts_with("prefix:é"));
    assert!(s.len() <= "prefix:".len() + MAX_RECORD_LEN);
    assert!(s.len() > MAX_RECORD_LEN - 2);
    assert!(!s.ends_with("tail"));
}

#[test]
fn extreme_times_do_not_panic() {
    let mut s = String::new();
    let f = LogFormat::parse("L%Y %t %z").unwrap();
    let far = LogFields {
        time: UNIX_EPOCH + Duration::from_secs(u64::MAX / 4),
        ..sample()
    };
    f.render(&far, &mut s);
    assert!(s.contains(" 253402300799 "), "{s}");
    s.clear();
    let before = LogFields {
        time: UNIX_EPOCH - Duration::from_secs(1000),
        ..sample()
    };
    LogFormat::parse("G%Y%m%d %t")
        .unwrap()
        .render(&before, &mut s);
    assert_eq!(s, "19700101 0000000000");
}

proptest::proptest! {
    #[test]
    fn arbitrary_formats_never_panic(fmt in "\\PC{0,64}", text in "\\PC{0,40}", user in proptest::option::of("\\PC{0,8}")) {
        if let Ok(f) = LogFormat::parse(&fmt) {
            let r = LogFields { text: &text, user: user.as_deref(), ..sample() };
            let mut s = String::new();
            f.render(&r, &mut s);
            proptest::prop_assert!(s.len() <= MAX_RECORD_LEN);
        }
    }

    #[test]
    fn arbitrary_macro_soup_never_panics(body in "[%0-9TLGyYmodHMStzDbBUnNpECcRriQqeIOh.\\- +_é]{0,48}") {
        for prefix in ["G", "L", "- +_G"] {
            let f = LogFormat::parse(&format!("{prefix}{body}")).unwrap();
            let mut s = String::new();
            f.render(&sample(), &mut s);
            proptest::prop_assert!(s.len() <= MAX_RECORD_LEN);
        }
    }
}

#[test]
fn reason_macro_renders_the_typed_reason_or_the_code() {
    let r = sample();
    assert_eq!(render("G%E %X", &r), "00000 ok");
    let denied = triproxy_policy::reason::Reason::AclDenied;
    let with_reason = LogFields {
        code: LogCode::ACL_DENIED,
        reason: Some(&denied),
        ..sample()
    };
    assert_eq!(render("G%E %X", &with_reason), "00001 denied by ACL");
    // The replacement prefix applies, so a space-separated format stays parseable.
    assert_eq!(render("- +_G%X", &with_reason), "denied_by_ACL");
    let no_reason = |code: u16| LogFields {
        code: LogCode(code),
        ..sample()
    };
    assert_eq!(
        render("G%X", &no_reason(13)),
        "connection to the target failed"
    );
    assert_eq!(render("G%X", &no_reason(100)), "host not found");
    assert_eq!(render("G%X", &no_reason(999)), "not implemented");
    assert_eq!(render("G%X", &no_reason(12345)), "failed");
}
