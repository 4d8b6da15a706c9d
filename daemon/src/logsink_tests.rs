//! Tests of the log writers: rotation with explicit times, `rotate`, the archiver, reopen.

use super::*;
use crate::config::Archiver;
use crate::logrotate::LogName;
use chrono::NaiveDate;
use std::time::{Duration, Instant};
use triproxy_policy::period::Period;

fn at(d: u32, h: u32, mi: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 12, d)
        .unwrap()
        .and_hms_opt(h, mi, 0)
        .unwrap()
}

/// A fresh directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("triproxy-logsink-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn rotation_moves_to_the_next_file_and_keeps_n() {
    let dir = temp_dir("rotate");
    let spec = RotatingLog {
        name: LogName::parse("p.log", &dir).unwrap(),
        rotation: Period::Hourly,
    };
    let retention = LogRetention {
        keep: 1,
        archiver: None,
    };
    // An old file from before the daemon started, two hours before the first rotation.
    std::fs::write(dir.join("p.log.2026.12.02-08"), "old\n").unwrap();
    let f = RotatingFile::open(&spec, &retention, at(2, 10, 5)).unwrap();
    assert_eq!(f.write_at(b"a\n", at(2, 10, 59)), None);
    let r = f.write_at(b"b\n", at(2, 11, 0)).unwrap();
    assert_eq!(r.closed, dir.join("p.log.2026.12.02-10"));
    assert_eq!(r.deleted, vec![dir.join("p.log.2026.12.02-09")]);
    let r = f.write_at(b"c\n", at(2, 12, 30)).unwrap();
    assert_eq!(r.deleted, vec![dir.join("p.log.2026.12.02-10")]);
    assert!(!dir.join("p.log.2026.12.02-10").exists());
    assert_eq!(read(&dir.join("p.log.2026.12.02-11")), "b\n");
    assert_eq!(read(&dir.join("p.log.2026.12.02-12")), "c\n");
    // Only the one period past `keep` at the first rotation was looked at: 08 stays.
    assert_eq!(read(&dir.join("p.log.2026.12.02-08")), "old\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_template_without_the_changing_field_never_deletes_the_open_file() {
    let dir = temp_dir("template");
    let spec = RotatingLog {
        name: LogName::parse("y-%Y.log", &dir).unwrap(),
        rotation: Period::Daily,
    };
    let retention = LogRetention {
        keep: 1,
        archiver: None,
    };
    let f = RotatingFile::open(&spec, &retention, at(1, 0, 0)).unwrap();
    for d in 2..6 {
        assert_eq!(f.write_at(b"x\n", at(d, 0, 0)), None);
    }
    assert_eq!(read(&dir.join("y-2026.log")), "x\nx\nx\nx\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn archiver_runs_on_the_closed_file_and_reopen_follows_a_move() {
    let dir = temp_dir("archiver");
    let spec = RotatingLog {
        name: LogName::parse("a.log", &dir).unwrap(),
        rotation: Period::Minutely,
    };
    let retention = LogRetention {
        keep: 0,
        archiver: Some(Archiver {
            ext: "copy".to_owned(),
            program: "cp".to_owned(),
            args: vec![ArchiverArg::Closed, ArchiverArg::Archive],
        }),
    };
    let f = RotatingFile::open(&spec, &retention, at(2, 10, 5)).unwrap();
    f.write_at(b"first\n", at(2, 10, 5));
    let r = f.write_at(b"second\n", at(2, 10, 6)).unwrap();
    f.archive(&r.closed);
    let archive = dir.join("a.log.2026.12.02-10.05.copy");
    let deadline = Instant::now() + Duration::from_secs(10);
    while read(&archive) != "first\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read(&archive), "first\n");
    // logrotate moved the current file away: reopen creates it again.
    let current = dir.join("a.log.2026.12.02-10.06");
    std::fs::rename(&current, dir.join("moved")).unwrap();
    f.reopen().unwrap();
    f.write_at(b"third\n", at(2, 10, 6));
    assert_eq!(read(&current), "third\n");
    assert_eq!(read(&dir.join("moved")), "second\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sinks_share_writers_and_reopen_every_file() {
    let dir = temp_dir("sinks");
    let sinks = LogSinks::new(&LogRetention::default());
    let path = dir.join("plain.log");
    let target = LogTarget::File(path.clone());
    let a = sinks.writer(&target).unwrap();
    let b = sinks.writer(&target).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    a.write_record("one", SystemTime::now());
    std::fs::rename(&path, dir.join("plain.log.1")).unwrap();
    assert!(sinks.reopen().is_empty());
    b.write_record("two", SystemTime::now());
    assert_eq!(read(&path), "two\n");
    assert_eq!(read(&dir.join("plain.log.1")), "one\n");
    // A directory that disappeared is reported, not fatal.
    std::fs::remove_dir_all(&dir).unwrap();
    let failed = sinks.reopen();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, path);
}
