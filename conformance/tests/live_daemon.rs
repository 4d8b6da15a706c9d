//! The live replay against our daemon (`triproxy`, both runtimes) over loopback: every
//! trace PASSes or is SKIPped with a reason; none FAILs. The daemon runs twice per runtime:
//! without authentication (with one denied target) and with RFC 1929 required.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;
use triproxy_conformance::live::{LiveConfig, Targets};
use triproxy_conformance::replay::Outcome;
use triproxy_conformance::report::Report;
use triproxy_conformance::trace::{self, Protocol, Trace};
use triproxy_test_support::Daemon;

const DENIED: &str = "127.0.0.1:9";
const OPEN: &str = "auth iponly\ndeny * * 127.0.0.1 9\nallow * 127.0.0.1\nsocks -p0 -i127.0.0.1\n";
const HTTP: &str = "auth iponly\ndeny * * 127.0.0.1 9\nallow * 127.0.0.1\nproxy -p0 -i127.0.0.1\n";
const STRONG: &str =
    "users tester:CL:secret-pass\nauth strong\nallow tester\nsocks -p0 -i127.0.0.1\n";

/// The newest modification time among the daemon's sources (and the crates it uses),
/// looking at most at 20 000 entries.
fn newest_source() -> SystemTime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut stack: Vec<PathBuf> = ["daemon", "runtime-std", "runtime-smol", "policy", "proto"]
        .iter()
        .map(|d| root.join(d))
        .chain([root.join("Cargo.toml"), root.join("Cargo.lock")])
        .collect();
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut seen = 0;
    while let Some(p) = stack.pop() {
        seen += 1;
        if seen > 20_000 {
            break;
        }
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if let Ok(m) = meta.modified() {
            newest = newest.max(m);
        }
    }
    newest
}

/// The `triproxy` binary of this build profile (`TRIPROXY_BIN` overrides). `cargo test
/// --workspace` has just built it; if it is missing or older than its sources (this crate
/// tested alone after an edit), it is built first.
fn daemon_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("TRIPROXY_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<this test> -> target/<profile>/triproxy
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let bin = profile_dir.join("triproxy");
    let fresh = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .is_ok_and(|built| built >= newest_source());
    if !fresh {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "-p", "triproxy", "--bin", "triproxy"]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo to build the daemon");
        assert!(status.success(), "building the triproxy daemon failed");
    }
    assert!(bin.exists(), "{} not found", bin.display());
    bin
}

fn suite(p: Protocol) -> Vec<Trace> {
    trace::load_suite(&trace::default_trace_dir(), p).unwrap()
}

fn check(report: &Report) {
    print!("{}", report.render_text());
    let s = report.summary();
    assert_eq!(s.fail, 0, "{}", report.render_failures());
    for r in &report.results {
        if let Outcome::Skip(why) = &r.outcome {
            assert!(
                !why.trim().is_empty(),
                "{} skipped without a reason",
                r.id()
            );
        }
    }
}

fn live_replay(runtime: &str) {
    let bin = daemon_binary();
    let targets = Targets::start().unwrap();

    let open = Daemon::start_binary(&bin, OPEN, runtime);
    let mut config = LiveConfig::new(open.addr);
    config.denied = Some(DENIED.parse().unwrap());
    let mut passed = 0;
    for p in [Protocol::Socks5, Protocol::Socks4] {
        let report = triproxy_conformance::run_live(
            p.name(),
            &suite(p),
            &config,
            &targets,
            triproxy_conformance::DEFAULT_JOBS,
            |_| {},
        );
        check(&report);
        passed += report.summary().pass;
    }
    assert!(
        passed >= 80,
        "only {passed} traces passed without authentication"
    );

    let http = Daemon::start_binary(&bin, HTTP, runtime);
    let mut config = LiveConfig::new(http.addr);
    config.denied = Some(DENIED.parse().unwrap());
    let report = triproxy_conformance::run_live(
        "http",
        &suite(Protocol::Http),
        &config,
        &targets,
        triproxy_conformance::DEFAULT_JOBS,
        |_| {},
    );
    check(&report);
    assert!(
        report.summary().pass >= 15,
        "only {} HTTP runs passed",
        report.summary().pass
    );

    let strong = Daemon::start_binary(&bin, STRONG, runtime);
    let mut config = LiveConfig::new(strong.addr);
    config.credentials = Some((b"tester".to_vec(), b"secret-pass".to_vec()));
    let report = triproxy_conformance::run_live(
        "socks5",
        &suite(Protocol::Socks5),
        &config,
        &targets,
        triproxy_conformance::DEFAULT_JOBS,
        |_| {},
    );
    check(&report);
    let auth_passed = report
        .results
        .iter()
        .filter(|r| r.trace.starts_with("socks5/auth-") && r.outcome == Outcome::Pass)
        .count();
    assert!(
        auth_passed >= 20,
        "only {auth_passed} authentication runs passed"
    );
}

#[test]
fn live_replay_against_the_daemon_std() {
    live_replay("std");
}

#[test]
fn live_replay_against_the_daemon_smol() {
    live_replay("smol");
}
