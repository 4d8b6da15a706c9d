//! 3proxy's own sample configurations (verbatim copies in the shared reference folder):
//! each one must be refused with a clear error naming its first blocking line, never a
//! panic. When triproxy learns more commands, the expected blockers below move down.
//!
//! The folder is `shared/reference/3proxy-configs` beside the repository unless `TRIPROXY_3PROXY_CONFIGS`
//! names another one. Loading stops at the first error, so no file the samples mention
//! (`include /conf/...`, `$/conf/passwd`) is ever opened.
//!
//! The samples are not part of this repository: on a fresh clone without the folder these
//! tests print `skipped` and pass, unless `CI` is set, where a missing folder fails them.
//! `.ci/run` names the folder in `TRIPROXY_3PROXY_CONFIGS`; `scripts/fresh-clone.sh` checks
//! the skip on a copy of the repository.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use triproxy::config::{self, ConfigErrorKind};

/// The sample folder, or `None` after printing why the test is skipped. A folder named in
/// `TRIPROXY_3PROXY_CONFIGS`, or any folder under `CI`, must exist.
fn sample_dir() -> Option<PathBuf> {
    let named = std::env::var_os("TRIPROXY_3PROXY_CONFIGS").map(PathBuf::from);
    let dir = named.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/3proxy-configs")
    });
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        named.is_none() && std::env::var_os("CI").is_none(),
        "3proxy sample folder {} is missing (CI must provide it: set TRIPROXY_3PROXY_CONFIGS)",
        dir.display()
    );
    eprintln!(
        "3proxy sample folder {} is not beside this clone: skipped \
         (set TRIPROXY_3PROXY_CONFIGS to run it)",
        dir.display()
    );
    None
}

#[derive(Debug)]
enum Blocker {
    Unsupported(&'static str),
    Unknown(&'static str),
    NotYet(&'static str),
    /// Another refusal, told by this part of its message.
    Message(&'static str),
}

/// (file, line of the first blocking command, what blocks it)
const SAMPLES: &[(&str, usize, Blocker)] = &[
    (
        "cfg_3proxy.cfg.sample",
        26,
        Blocker::Message("password type `CR` is not supported yet"),
    ),
    ("cfg_counters.sample", 51, Blocker::Unsupported("admin")),
    (
        "cfg_sql_3proxy.cfg.sample",
        16,
        Blocker::NotYet("ODBC logging"),
    ),
    (
        "scripts_3proxy.cfg.chroot",
        3,
        Blocker::Unsupported("chroot"),
    ),
    (
        "scripts_3proxy.cfg.inchroot",
        5,
        Blocker::Unsupported("config"),
    ),
    ("scripts_3proxy.cfg.in", 5, Blocker::Unsupported("pidfile")),
    // Not configurations at all: prose, SQL and Markdown.
    ("cfg_0.scenario.txt", 1, Blocker::Unknown("Please")),
    ("cfg_sql_create.sql", 9, Blocker::Unknown("CREATE")),
    ("doc_ru_example1.txt", 1, Blocker::Unknown("KOI8-R")),
    ("README.md", 3, Blocker::Unknown("Copied")),
];

#[test]
fn every_sample_is_refused_at_its_first_blocking_line() {
    let Some(dir) = sample_dir() else { return };
    for (name, line, blocker) in SAMPLES {
        let path = dir.join(name);
        let e = match config::load(&path) {
            Ok(cfg) => panic!("{name}: accepted with {} services", cfg.services.len()),
            Err(e) => e,
        };
        assert_eq!(
            (e.file.as_str(), e.line),
            (path.display().to_string().as_str(), *line),
            "{name}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}:{line}: ", path.display())),
            "{msg}"
        );
        match blocker {
            Blocker::Unsupported(cmd) => assert_eq!(
                e.kind,
                ConfigErrorKind::UnsupportedCommand {
                    command: (*cmd).to_owned()
                },
                "{msg}"
            ),
            Blocker::Unknown(cmd) => assert_eq!(
                e.kind,
                ConfigErrorKind::UnknownCommand {
                    command: (*cmd).to_owned()
                },
                "{msg}"
            ),
            Blocker::NotYet(feature) => {
                assert!(
                    matches!(e.kind, ConfigErrorKind::NotSupportedYet { .. }),
                    "{msg}"
                );
                assert!(msg.contains(feature), "{msg}");
            }
            Blocker::Message(part) => assert!(msg.contains(part), "{msg}"),
        }
    }
}

/// Every line of every sample, fed one at a time, gives a result or an error on line 1,
/// never a panic. Lines that would open a file (`include`, `$FILE`) are skipped, so nothing
/// outside the sample folder is read.
#[test]
fn every_sample_line_alone_is_handled() {
    let Some(dir) = sample_dir() else { return };
    let mut lines = 0;
    for (name, _, _) in SAMPLES {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for l in text.lines() {
            if l.starts_with("include") || l.contains('$') {
                continue;
            }
            lines += 1;
            if let Err(e) = config::parse_str(l, name, &dir) {
                assert_eq!(e.line, 1, "{e}");
            }
        }
    }
    assert!(lines > 300, "{lines}");
}

/// `cfg_counters.sample` stops at `nserver` (line 14) before its accounting lines; those
/// lines on their own (with the service they feed) are understood: the counter file with
/// daily reports, the `nocountin` exception and every `countin` rule.
#[test]
fn counters_sample_accounting_lines_parse() {
    let Some(dir) = sample_dir() else { return };
    let bytes = std::fs::read(dir.join("cfg_counters.sample")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let wanted = ["counter", "nocountin", "countin", "users", "auth", "proxy"];
    let kept: String = text
        .lines()
        .filter(|l| wanted.contains(&l.split(' ').next().unwrap_or_default()))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = config::parse_str(&kept, "cfg_counters.sample", &dir).unwrap();
    let counter = cfg.counter.unwrap();
    assert_eq!(
        counter.report.map(|r| r.period),
        Some(triproxy_policy::period::Period::Daily)
    );
    let numbers: Vec<u32> = cfg.quotas.counters().map(|c| c.number()).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 202]);
    assert_eq!(cfg.quotas.len(), 6, "and the nocountin exception");
    assert_eq!(cfg.services.len(), 1);
}
