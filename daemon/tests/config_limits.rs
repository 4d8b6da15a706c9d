//! The limit and accounting commands: `timeouts`, `connlim`/`noconnlim`, `counter`,
//! `countin`/`countout`/`countall` and their `nocount*` exceptions: what they set, that
//! they are global, and the errors (file:line and the problem) for bad arguments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{err_at, ok, parse_in, TempDir};
use std::time::Duration;
use triproxy::config::{ConfigErrorKind, ConfigWarningKind, CounterReport};
use triproxy_policy::connlim::ConnRuleKind;
use triproxy_policy::period::Period;
use triproxy_policy::quota::{CountDirection, QuotaRuleError, RuleKind};
use triproxy_policy::service::Timeouts;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn message(text: &str) -> String {
    config_util::parse(text).unwrap_err().to_string()
}

#[test]
fn timeouts_default_to_3proxy_and_apply_to_every_service() {
    let cfg = ok("socks\n");
    assert_eq!(cfg.timeouts, Timeouts::default());
    assert_eq!(cfg.timeouts.handshake, secs(30));
    assert_eq!(cfg.timeouts.bind_wait, secs(180));
    assert_eq!(cfg.timeouts.idle, secs(1800));

    let cfg = ok("socks\ntimeouts 2 6 31 61 181 1801 16 61 14 4 3\nproxy\n");
    let t = cfg.timeouts;
    assert_eq!(
        (t.byte_short, t.byte_long, t.handshake, t.string_long),
        (secs(2), secs(6), secs(31), secs(61))
    );
    assert_eq!(
        (t.connection_short, t.bind_wait, t.idle, t.dns, t.chain),
        (secs(181), secs(181), secs(1801), secs(16), secs(61))
    );
    assert_eq!(
        (t.connect, t.connectback, t.linger),
        (secs(14), secs(4), secs(3))
    );
    assert!(cfg.warnings.is_empty());

    // Fewer values: the rest keep what they had; a later line changes only what it gives.
    let t = ok("timeouts 1 5 30 60 180 1800 15 60 3\ntimeouts 9\n").timeouts;
    assert_eq!(
        (t.byte_short, t.connect, t.idle),
        (secs(9), secs(3), secs(1800))
    );
}

#[test]
fn extra_timeout_values_are_a_warning() {
    let cfg = ok("socks\ntimeouts 1 5 30 60 180 1800 15 60 15 5 5 7 8\n");
    assert_eq!(cfg.warnings.len(), 1);
    let w = &cfg.warnings[0];
    assert_eq!(w.kind, ConfigWarningKind::ExtraTimeouts { ignored: 2 });
    assert_eq!(
        w.to_string(),
        "test.cfg:2: warning: `timeouts` takes at most 11 values; 2 more ignored"
    );
    assert_eq!(cfg.timeouts, Timeouts::default());
}

#[test]
fn bad_timeouts_name_the_line_and_the_value() {
    assert_eq!(
        message("socks\ntimeouts 1 5 0\n"),
        "test.cfg:2: `0` is not a valid STRING_SHORT timeout (seconds) (a whole number from 1 to 2000000)"
    );
    assert_eq!(
        message("timeouts 2000001\n"),
        "test.cfg:1: `2000001` is not a valid BYTE_SHORT timeout (seconds) (a whole number from 1 to 2000000)"
    );
    assert!(message("timeouts 1 x\n").starts_with("test.cfg:1: `x` is not a valid BYTE_LONG"));
    assert!(matches!(
        err_at("timeouts\n", 1),
        ConfigErrorKind::ArgumentCount { .. }
    ));
}

#[test]
fn connlim_rules_are_global_and_in_order() {
    let cfg = ok("socks\nconnlim 10 0 * 10.0.0.0/8\nnoconnlim alice\nproxy\nconnlim 5 60\n");
    let rules = cfg.connlimits.rules();
    assert_eq!(rules.len(), 3);
    assert!(matches!(rules[0].kind, ConnRuleKind::Limit(_)));
    assert_eq!(rules[0].matches.sources().map(<[_]>::len), Some(1));
    assert!(matches!(rules[1].kind, ConnRuleKind::Exempt));
    assert_eq!(rules[1].matches.users(), Some(&["alice".to_owned()][..]));
    assert!(matches!(rules[2].kind, ConnRuleKind::Limit(_)));
}

#[test]
fn bad_connlim_lines() {
    for (text, start) in [
        (
            "connlim 0 0\n",
            "test.cfg:1: `0` is not a valid connection limit (connections) (a whole number from 1 to 1000000)",
        ),
        (
            "connlim 10 -1\n",
            "test.cfg:1: `-1` is not a valid connection limit period (seconds, 0 = parallel)",
        ),
        (
            "connlim 10 0 * 10.0.0.0/99\n",
            "test.cfg:1: bad `connlim` rule: ACL field source addresses: bad token `10.0.0.0/99`",
        ),
        (
            "noconnlim * * * 80-70\n",
            "test.cfg:1: bad `noconnlim` rule: ACL field ports",
        ),
        (
            "connlim 10\n",
            "test.cfg:1: `connlim` takes at least 2 arguments, 1 given",
        ),
    ] {
        let m = message(text);
        assert!(m.starts_with(start), "{text:?}: {m}");
    }
}

#[test]
fn count_rules_read_number_comment_period_and_limit() {
    let cfg = ok("nocountin * * 192.168.0.0/16,10.0.0.0/8\n\
                  countin \"1/Test 1\" D 100 *\n\
                  countout 2 M 1024 vlad,test 127.0.0.1 * 80,81,8080-8088\n\
                  countall \"0/not kept\" N 5\n\
                  nocountout\nnocountall alice\nsocks\n");
    let seen: Vec<(CountDirection, Option<(u32, u64)>)> = cfg
        .quotas
        .rules()
        .iter()
        .map(|r| {
            let counter = match &r.kind {
                RuleKind::Count(c) => Some((c.number(), c.limit_bytes() >> 20)),
                RuleKind::Exempt => None,
            };
            (r.direction, counter)
        })
        .collect();
    assert_eq!(
        seen,
        [
            (CountDirection::In, None),
            (CountDirection::In, Some((1, 100))),
            (CountDirection::Out, Some((2, 1024))),
            (CountDirection::All, Some((0, 5))),
            (CountDirection::Out, None),
            (CountDirection::All, None),
        ]
    );
    assert_eq!(cfg.counter, None);
}

#[test]
fn bad_count_lines() {
    for (text, start) in [
        (
            "countin x D 100\n",
            "test.cfg:1: `x` is not a counter number and comment (NUM or NUM/comment, NUM from 0 to 1000000)",
        ),
        (
            "countin 1x D 100\n",
            "test.cfg:1: `1x` is not a counter number",
        ),
        (
            "countout 1 D 0\n",
            "test.cfg:1: `0` is not a valid traffic limit (MiB) (a whole number from 1 to",
        ),
        (
            "countall 1 D 10M\n",
            "test.cfg:1: `10M` is not a valid traffic limit (MiB)",
        ),
        (
            "countin 1 D 10 * 10.0.0.0/99\n",
            "test.cfg:1: bad `countin` rule: ACL field source addresses",
        ),
        (
            "countin 1 D\n",
            "test.cfg:1: `countin` takes at least 3 arguments, 2 given",
        ),
        (
            "countin \"3/a\" D 10\ncountout \"3/b\" D 10\n",
            "test.cfg:2: bad traffic counter: counter number 3 is already used by another rule",
        ),
    ] {
        let m = message(text);
        assert!(m.starts_with(start), "{text:?}: {m}");
    }
    assert_eq!(
        err_at("countin 3 D 1\ncountin 3 W 1\n", 2),
        ConfigErrorKind::QuotaRule(QuotaRuleError::DuplicateNumber(3))
    );
}

#[test]
fn counter_file_and_reports() {
    let dir = TempDir::new("counter");
    let cfg = parse_in(&dir, "counter traffic.3cf D \"reports/traf\"\n").unwrap();
    let c = cfg.counter.unwrap();
    assert_eq!(c.file, dir.path().join("traffic.3cf"));
    assert_eq!(
        c.report,
        Some(CounterReport {
            period: Period::Daily,
            path: dir.path().join("reports/traf")
        })
    );
    let cfg = parse_in(&dir, "counter /var/lib/c.3cf\n").unwrap();
    assert_eq!(cfg.counter.unwrap().report, None);
    assert!(
        !dir.path().join("traffic.3cf").exists(),
        "parsing opens nothing"
    );

    for (text, start) in [
        (
            "counter c.3cf D\n",
            "test.cfg:1: `counter FILE TYPE` needs the report path after the type",
        ),
        (
            "counter c.3cf N r\n",
            "test.cfg:1: `N` is not a report period (3proxy letters: C, H, D, W, M, Y)",
        ),
        (
            "counter c.3cf D /r/%y%m%d\n",
            "test.cfg:1: report file name templates (`/r/%y%m%d`) is not supported by triproxy yet",
        ),
        ("counter \"\"\n", "test.cfg:1: `counter` needs a file name"),
        (
            "counter a b c d\n",
            "test.cfg:1: `counter` takes 1 to 3 arguments, 4 given",
        ),
    ] {
        let m = message(text);
        assert!(m.starts_with(start), "{text:?}: {m}");
    }
}
