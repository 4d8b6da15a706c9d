//! The daemon's side of the traffic counters: the counter file read at start (missing:
//! new; damaged: refused, naming the file), restored tallies, the file written every
//! minute and the daily report at the change of day. Time is passed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{parse_in, TempDir};
use triproxy::counters::{local_of_unix, Accounting};
use triproxy_policy::acl::{AclRequest, CivilTime, Operation};
use triproxy_policy::bandlim::Direction;
use triproxy_policy::counterfile;
use triproxy_policy::period::LocalStamp;

const CONFIG: &str = "counter traffic.3cf D traf\ncountin \"1/all\" D 100\n\
                      countout \"2/uploads\" M 100\nsocks\n";

fn at(day: u8, hour: u8, minute: u8) -> LocalStamp {
    LocalStamp {
        unix: 1_764_547_200
            + i64::from(day) * 86_400
            + i64::from(hour) * 3_600
            + i64::from(minute) * 60,
        year: 2025,
        month: 12,
        day,
        hour,
        minute,
    }
}

fn request() -> AclRequest<'static> {
    AclRequest {
        user: None,
        client: "10.0.0.1".parse().unwrap(),
        target_host: None,
        target_ip: Some("192.0.2.1".parse().unwrap()),
        port: Some(80),
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 1,
            seconds_of_day: 0,
        },
    }
}

#[test]
fn missing_file_starts_empty_and_minutes_write_it() {
    let dir = TempDir::new("counters-new");
    let cfg = parse_in(&dir, CONFIG).unwrap();
    let mut acc = Accounting::open(&cfg).unwrap();
    assert!(!acc.is_idle());
    acc.minute(&at(1, 12, 0)).unwrap();
    let q = cfg.quotas.select(&request()).unwrap();
    q.charge(Direction::ToClient, 5000).unwrap();
    q.charge(Direction::ToTarget, 70).unwrap();
    acc.minute(&at(1, 12, 1)).unwrap();
    let bytes = std::fs::read(dir.path().join("traffic.3cf")).unwrap();
    let file = counterfile::read(&bytes).unwrap();
    assert_eq!(file.updated, at(1, 12, 1).unix);
    assert_eq!(file.get(1).map(|r| r.bytes), Some(5000));
    assert_eq!(file.get(2).map(|r| r.bytes), Some(70));
    assert_eq!(file.get(1).map(|r| r.cleared), Some(at(1, 12, 0).unix));
    assert!(
        !dir.path().join("traf.2025.12.01").exists(),
        "no report yet"
    );

    // The next day: the daily report of the day before, the daily counter reset.
    acc.minute(&at(2, 0, 0)).unwrap();
    let report = std::fs::read_to_string(dir.path().join("traf.2025.12.01")).unwrap();
    assert_eq!(
        report,
        "00001 00000000000000005000 #all\n00002 00000000000000000070 #uploads\n"
    );
    let file = counterfile::read(&std::fs::read(dir.path().join("traffic.3cf")).unwrap()).unwrap();
    assert_eq!(file.get(1).map(|r| r.bytes), Some(0));
    assert_eq!(file.get(2).map(|r| r.bytes), Some(70), "monthly");
}

#[test]
fn tallies_survive_a_restart() {
    let dir = TempDir::new("counters-restart");
    let cfg = parse_in(&dir, CONFIG).unwrap();
    let mut acc = Accounting::open(&cfg).unwrap();
    let now = triproxy::counters::local_now();
    acc.minute(&now).unwrap();
    let q = cfg.quotas.select(&request()).unwrap();
    q.charge(Direction::ToTarget, 1234).unwrap();
    acc.minute(&now).unwrap();

    let cfg = parse_in(&dir, CONFIG).unwrap();
    let _acc = Accounting::open(&cfg).unwrap();
    let bytes: Vec<u64> = cfg.quotas.counters().map(|c| c.bytes()).collect();
    assert_eq!(bytes, [0, 1234]);
    assert!(local_of_unix(now.unix).is_some());
}

#[test]
fn a_damaged_file_stops_the_start_and_names_the_file() {
    let dir = TempDir::new("counters-bad");
    let path = dir.write("traffic.3cf", b"3CF\0\0\0\0\0\0\0\0\0\0\0\0\0\x01\x02");
    let cfg = parse_in(&dir, CONFIG).unwrap();
    let e = Accounting::open(&cfg).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "counter file `{}` is unusable (truncated",
            path.display()
        )),
        "{e}"
    );
    dir.write("traffic.3cf", b"not a counter file at all");
    let cfg = parse_in(&dir, CONFIG).unwrap();
    let e = Accounting::open(&cfg).unwrap_err().to_string();
    assert!(e.contains("not a 3proxy counter file"), "{e}");
}

#[test]
fn without_a_counter_line_counters_still_reset() {
    let dir = TempDir::new("counters-none");
    let cfg = parse_in(&dir, "countall 1 H 10\nsocks\n").unwrap();
    let mut acc = Accounting::open(&cfg).unwrap();
    acc.minute(&at(1, 10, 0)).unwrap();
    let q = cfg.quotas.select(&request()).unwrap();
    q.charge(Direction::ToClient, 10).unwrap();
    acc.minute(&at(1, 11, 0)).unwrap();
    assert_eq!(cfg.quotas.counters().next().map(|c| c.bytes()), Some(0));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file");
    let idle = Accounting::open(&parse_in(&dir, "socks\n").unwrap()).unwrap();
    assert!(idle.is_idle());
}
