//! The logging commands as the configuration reader sees them: `log` with rotation,
//! templates and syslog, `rotate`, `archiver`, `logjson`, `nolog`, and the warning about a
//! `logformat` whose first character is not `L` or `G`. Every refusal is checked by its
//! exact message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{ok, parse, parse_in, TempDir};
use triproxy::config::{Archiver, ArchiverArg, LogTarget};
use triproxy::logformat::Style;
use triproxy_policy::acl::Logging;
use triproxy_policy::period::Period;

/// The full message of the error `text` gives.
fn message(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn rotated_and_templated_logs() {
    let dir = TempDir::new("logrot");
    let cfg = parse_in(
        &dir,
        "log p.log D\nsocks -p1\nlog /l/p-%Y%m%d.log\nsocks -p2\nlog /l/q.log weekly\nsocks -p3\nlog @3proxy\nsocks -p4\nlog /l/x.log never\nsocks -p5\n",
    )
    .unwrap();
    let LogTarget::Rotating(r) = &cfg.services[0].log else {
        panic!("{:?}", cfg.services[0].log);
    };
    assert_eq!(r.rotation, Period::Daily);
    assert!(!r.name.is_template());
    let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    assert_eq!(
        r.name.path_for(r.rotation, t),
        dir.path().join("p.log.2026.12.02")
    );
    let LogTarget::Rotating(r) = &cfg.services[1].log else {
        panic!("{:?}", cfg.services[1].log);
    };
    assert_eq!(r.rotation, Period::Never);
    assert!(r.name.is_template());
    let LogTarget::Rotating(r) = &cfg.services[2].log else {
        panic!("{:?}", cfg.services[2].log);
    };
    assert_eq!(r.rotation, Period::Weekly);
    assert_eq!(cfg.services[3].log, LogTarget::Syslog("3proxy".to_owned()));
    // Not a rotation letter: not rotated, as in 3proxy, with a warning.
    assert_eq!(cfg.services[4].log, LogTarget::File("/l/x.log".into()));
    let warnings: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        ["test.cfg:9: warning: `never` is not a log rotation (3proxy letters: C, H, D, W, M, Y); this log is not rotated"]
    );
}

#[test]
fn log_errors_have_exact_messages() {
    assert_eq!(
        message("log /l/%N.log D\n"),
        "test.cfg:1: `%N` in a log file name: only the date macros %y %Y %m %o %d %H %M %S and %% may be used"
    );
    assert_eq!(
        message("log \"@a b\"\n"),
        "test.cfg:1: `a b` is not a usable syslog ident (at most 64 bytes, no space, `:`, `[` or control character)"
    );
    assert_eq!(
        message("socks -l@a:b\n"),
        "test.cfg:1: `a:b` is not a usable syslog ident (at most 64 bytes, no space, `:`, `[` or control character)"
    );
    assert_eq!(
        message(&format!("log /{}\n", "a".repeat(4095))),
        "test.cfg:1: log file name of 4096 bytes (at most 4095)"
    );
    assert_eq!(
        message("log &dsn,user,pw\n"),
        "test.cfg:1: ODBC logging (`log &dsn,user,pw`) is not supported by triproxy yet"
    );
}

#[test]
fn rotate_and_archiver_are_global_and_the_last_wins() {
    let cfg = ok("log /l/p.log D\nrotate 3\nsocks -p1\nrotate 30\narchiver gz gzip -9 %F\n");
    assert_eq!(cfg.log_retention.keep, 30);
    assert_eq!(
        cfg.log_retention.archiver,
        Some(Archiver {
            ext: "gz".to_owned(),
            program: "gzip".to_owned(),
            args: vec![ArchiverArg::Text("-9".to_owned()), ArchiverArg::Closed],
        })
    );
    assert_eq!(
        message("rotate x\n"),
        "test.cfg:1: `x` is not a valid rotate (a whole number from 0 to 36500)"
    );
    assert_eq!(
        message("rotate 36501\n"),
        "test.cfg:1: `36501` is not a valid rotate (a whole number from 0 to 36500)"
    );
    assert_eq!(
        message("archiver gz\n"),
        "test.cfg:1: `archiver` takes at least 2 arguments, 1 given"
    );
    assert_eq!(
        message("archiver a/b gzip\n"),
        "test.cfg:1: unusable `archiver`: the extension must be a non-empty word without `/`"
    );
}

#[test]
fn logjson_switches_the_services_after_it() {
    let cfg = ok("socks -p1\nlogjson\nsocks -p2\nlogformat G%t\nsocks -p3\n");
    let styles: Vec<Style> = cfg.services.iter().map(|s| s.logformat.style()).collect();
    assert_eq!(styles, [Style::Text, Style::Json, Style::Text]);
    assert_eq!(
        message("logjson x\n"),
        "test.cfg:1: `logjson` takes no arguments, 1 given"
    );
}

#[test]
fn nolog_marks_the_last_allow_entry() {
    let cfg =
        ok("allow * 10.0.0.0/8\nallow *\nparent 1000 socks5 127.0.0.1 1081\nnolog\nsocks -p1\n");
    let logging: Vec<Logging> = cfg.services[0].acl.iter().map(|a| a.logging()).collect();
    assert_eq!(logging, [Logging::Logged, Logging::Unlogged]);
    assert_eq!(
        message("nolog\n"),
        "test.cfg:1: `nolog` must follow an `allow` or `deny` line"
    );
    assert_eq!(
        message("deny * * * 25\nnolog\n"),
        "test.cfg:2: `nolog` after a `deny` entry (only `allow` entries can be unlogged) is not supported by triproxy yet"
    );
    assert_eq!(
        message("allow *\nnolog\ndnspr -p5353\n"),
        "test.cfg:3: `nolog` for a `dnspr` service is not supported by triproxy yet"
    );
    assert_eq!(
        message("allow *\nnolog 5\n"),
        "test.cfg:2: `nolog` takes no arguments, 1 given"
    );
}

#[test]
fn a_logformat_without_a_zone_letter_warns() {
    let cfg = ok("logformat \"%d-%m-%Y %U\"\nsocks -p1 \"-f%t %T\"\nsocks -p2 -fL%t\n");
    let warnings: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    let text = |line: usize| {
        format!(
            "test.cfg:{line}: warning: the log format's first character `%` is taken as the time zone (local time) and not printed, as in 3proxy; start the format with `L` (local time) or `G` (GMT)"
        )
    };
    assert_eq!(warnings, [text(1), text(2)]);
    // Accepted as written: the first character is consumed when rendering.
    assert_eq!(cfg.services[0].logformat.as_str(), "%t %T");
}

#[test]
fn logdump_is_snapshotted_per_service() {
    let cfg = ok("socks -p1\nlogdump 1000\nsocks -p2\nlogdump 0 500\nsocks -p3\n");
    let dumps: Vec<(u64, u64)> = cfg
        .services
        .iter()
        .map(|s| (s.logdump.bytes_in, s.logdump.bytes_out))
        .collect();
    assert_eq!(dumps, [(0, 0), (1000, 0), (0, 500)]);
    assert_eq!(
        message("logdump x\n"),
        "test.cfg:1: `x` is not a valid logdump (a whole number from 0 to 4294967295)"
    );
    assert_eq!(
        message("logdump 1 4294967296\n"),
        "test.cfg:1: `4294967296` is not a valid logdump (a whole number from 0 to 4294967295)"
    );
    assert_eq!(
        message("logdump 1 2 3\n"),
        "test.cfg:1: `logdump` takes 1 to 2 arguments, 3 given"
    );
}

#[test]
fn rotate_without_a_rotated_log_warns() {
    let cfg = ok("log /l/p.log\nrotate 30\nsocks -p1\n");
    let warnings: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        ["test.cfg:2: warning: `rotate` and `archiver` act on rotated logs only (`log FILE C|H|D|W|M|Y`), and no service writes one"]
    );
    assert!(ok("log /l/p.log M\nrotate 30\nsocks -p1\n")
        .warnings
        .is_empty());
    assert!(ok("log /l/p.log\nsocks -p1\n").warnings.is_empty());
}
