//! Tests of [`super`]: selection against a straight-line model of 3proxy's two scans,
//! charging, periods, reports and the counter file.
//!
//! A test module only: `quota.rs` includes it under `#[cfg(test)]`, so its `unwrap()`s
//! never see network or configuration input.

use super::*;
use crate::acl::{Action, CivilTime, Operation};
use crate::counterfile;
use proptest::prelude::*;

fn request(client: &str, user: Option<&'static str>) -> AclRequest<'static> {
    AclRequest {
        user,
        client: client.parse().unwrap(),
        target_host: None,
        target_ip: Some("192.0.2.7".parse().unwrap()),
        port: Some(80),
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 1,
            seconds_of_day: 0,
        },
    }
}

fn ace(fields: &[&str]) -> Ace {
    Ace::parse(Action::Allow, fields).unwrap()
}

fn count(dir: CountDirection, n: u32, period: Period, mib: u64, fields: &[&str]) -> Rule {
    Rule::count(dir, n, &format!("rule {n}"), period, mib, ace(fields))
}

fn numbers(q: &Quota, direction: Direction) -> Vec<u32> {
    q.counters
        .as_ref()
        .map(|s| match direction {
            Direction::ToClient => s.to_client.iter().map(|c| c.number).collect(),
            Direction::ToTarget => s.to_target.iter().map(|c| c.number).collect(),
        })
        .unwrap_or_default()
}

fn at(day: u8, hour: u8, minute: u8) -> LocalStamp {
    LocalStamp {
        unix: 1_764_547_200
            + i64::from(day - 1) * 86_400
            + i64::from(hour) * 3600
            + i64::from(minute) * 60,
        year: 2025,
        month: 12,
        day,
        hour,
        minute,
    }
}

#[test]
fn exceptions_stop_their_direction_only() {
    use CountDirection::*;
    let mut q = Quotas::new();
    q.push(Rule::exempt(In, ace(&["*", "10.0.0.0/8"]))).unwrap();
    q.push(count(In, 1, Period::Daily, 100, &[])).unwrap();
    q.push(count(Out, 2, Period::Daily, 100, &[])).unwrap();
    q.push(count(All, 3, Period::Daily, 100, &["boss"]))
        .unwrap();
    q.push(Rule::exempt(All, ace(&["boss"]))).unwrap();
    q.push(count(In, 4, Period::Daily, 100, &[])).unwrap();

    let s = q.select(&request("192.168.1.1", None)).unwrap();
    assert_eq!(numbers(&s, Direction::ToClient), [1, 4]);
    assert_eq!(numbers(&s, Direction::ToTarget), [2]);
    let s = q.select(&request("10.1.1.1", None)).unwrap();
    assert_eq!(numbers(&s, Direction::ToClient), Vec::<u32>::new());
    assert_eq!(
        numbers(&s, Direction::ToTarget),
        [2],
        "nocountin leaves out alone"
    );
    let s = q.select(&request("192.168.1.1", Some("boss"))).unwrap();
    assert_eq!(numbers(&s, Direction::ToClient), [1, 3]);
    assert_eq!(numbers(&s, Direction::ToTarget), [2, 3]);
    assert!(Quotas::new()
        .select(&request("1.1.1.1", None))
        .unwrap()
        .is_empty());
}

#[test]
fn countall_counts_both_directions_into_one_counter() {
    let mut q = Quotas::new();
    q.push(count(CountDirection::All, 7, Period::Never, 1, &[]))
        .unwrap();
    let s = q.select(&request("1.1.1.1", None)).unwrap();
    assert!(s.charge(Direction::ToClient, MIB / 2).is_ok());
    let err = s.charge(Direction::ToTarget, MIB / 2).unwrap_err();
    assert_eq!(err.rule, 7);
    assert_eq!(err.direction, CountDirection::All);
    assert_eq!(err.limit_bytes, MIB);
    assert_eq!(
        err.to_string(),
        "traffic quota 7 (countall, 1 MiB in total) reached"
    );
    assert_eq!(q.select(&request("1.1.1.1", None)).unwrap_err(), err);
}

#[test]
fn concurrent_connections_share_one_quota() {
    let mut q = Quotas::new();
    q.push(count(CountDirection::In, 1, Period::Daily, 10, &[]))
        .unwrap();
    let a = q.select(&request("1.1.1.1", None)).unwrap();
    let b = q.select(&request("1.1.1.2", None)).unwrap();
    assert!(a.charge(Direction::ToClient, 6 * MIB).is_ok());
    assert!(b.charge(Direction::ToClient, 3 * MIB).is_ok());
    assert!(
        a.charge(Direction::ToClient, MIB).is_err(),
        "10 MiB together"
    );
    assert!(b.charge(Direction::ToClient, 0).is_err(), "b stops too");
    assert!(Quota::default()
        .charge(Direction::ToClient, u64::MAX)
        .is_ok());
}

#[test]
fn periods_reset_counters_and_reports_list_the_old_totals() {
    let mut q = Quotas::new();
    q.push(count(CountDirection::In, 1, Period::Daily, 100, &[]))
        .unwrap();
    q.push(count(CountDirection::In, 2, Period::Hourly, 100, &[]))
        .unwrap();
    q.push(count(CountDirection::In, 3, Period::Monthly, 100, &[]))
        .unwrap();
    let s = q.select(&request("1.1.1.1", None)).unwrap();
    assert_eq!(
        q.tick(&at(1, 23, 58), Some(Period::Daily)),
        None,
        "first tick"
    );
    s.charge(Direction::ToClient, 1000).unwrap();
    assert_eq!(q.tick(&at(1, 23, 59), Some(Period::Daily)), None);
    let counters: Vec<_> = q.counters().cloned().collect();
    assert!(
        counters.iter().all(|c| c.bytes() == 1000),
        "nothing lost at the first tick"
    );
    let report = q.tick(&at(2, 0, 0), Some(Period::Daily)).unwrap();
    assert_eq!(report.suffix, ".2025.12.01");
    let lines: Vec<String> = report.lines.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "00001 00000000000000001000 #rule 1",
            "00003 00000000000000001000 #rule 3"
        ],
        "hourly counters are not in a daily report"
    );
    assert_eq!(counters[0].bytes(), 0, "daily reset");
    assert_eq!(counters[1].bytes(), 0, "hourly reset");
    assert_eq!(counters[2].bytes(), 1000, "monthly kept");
}

#[test]
fn store_and_restore_through_the_file() {
    let rules = || {
        let mut q = Quotas::new();
        q.push(count(CountDirection::In, 2, Period::Daily, 100, &[]))
            .unwrap();
        q.push(count(CountDirection::Out, 0, Period::Daily, 100, &[]))
            .unwrap();
        q
    };
    let q = rules();
    q.tick(&at(1, 10, 0), None);
    q.select(&request("1.1.1.1", None))
        .unwrap()
        .charge(Direction::ToClient, 4242)
        .unwrap();
    q.tick(&at(1, 10, 1), None);
    let mut file = CounterFile::default();
    file.set(
        5,
        Record {
            bytes: 9,
            cleared: 1,
            updated: 1,
        },
    );
    q.store(&mut file, at(1, 10, 1).unix);
    let bytes = counterfile::write(&file);
    let back = counterfile::read(&bytes).unwrap();
    assert_eq!(
        back.get(5).map(|r| r.bytes),
        Some(9),
        "unknown records are kept"
    );
    assert_eq!(back.get(2).map(|r| r.bytes), Some(4242));
    assert_eq!(back.get(2).map(|r| r.updated), Some(at(1, 10, 1).unix));

    // Restored the same day: the tally continues.
    let local = |unix: i64| {
        let minutes = (unix - at(1, 0, 0).unix) / 60;
        let day = u8::try_from(1 + minutes / 1440).ok()?;
        Some(at(
            day,
            u8::try_from(minutes / 60 % 24).ok()?,
            u8::try_from(minutes % 60).ok()?,
        ))
    };
    let q = rules();
    q.restore(&back, local);
    assert_eq!(q.counters().next().map(|c| c.bytes()), Some(4242));
    q.tick(&at(1, 23, 0), None);
    assert_eq!(q.counters().next().map(|c| c.bytes()), Some(4242));
    // Restored the next day: reset at the first tick.
    let q = rules();
    q.restore(&back, local);
    q.tick(&at(2, 0, 5), None);
    assert_eq!(q.counters().next().map(|c| c.bytes()), Some(0));
}

#[test]
fn a_disabled_counter_neither_counts_nor_refuses_until_enabled_again() {
    use CountDirection::*;
    let mut q = Quotas::new();
    q.push(count(In, 1, Period::Daily, 1, &[])).unwrap();
    q.push(count(In, 2, Period::Daily, 100, &[])).unwrap();
    let req = request("10.0.0.1", None);
    let quota = q.select(&req).unwrap();
    assert!(quota.charge(Direction::ToClient, MIB).is_err()); // counter 1 is spent
    assert!(q.select(&req).is_err());
    let first = Arc::clone(q.counters().next().unwrap());
    first.set_disabled(true);
    assert!(first.is_disabled());
    // New connections skip the disabled rule: only counter 2 counts them.
    let quota = q.select(&req).unwrap();
    assert_eq!(numbers(&quota, Direction::ToClient), vec![2]);
    assert!(quota.charge(Direction::ToClient, 10).is_ok());
    assert_eq!(first.bytes(), MIB); // its tally is kept
    first.set_disabled(false);
    assert!(q.select(&req).is_err());
    assert_eq!((first.last_reset(), first.last_updated()), (None, 0));
    q.tick(&at(1, 0, 1), None);
    assert_eq!(first.last_reset(), Some(at(1, 0, 1)));
    assert_eq!(first.last_updated(), at(1, 0, 1).unix);
}

#[test]
fn bad_rules() {
    let mut q = Quotas::new();
    q.push(count(CountDirection::In, 1, Period::Daily, 1, &[]))
        .unwrap();
    q.push(count(CountDirection::In, 0, Period::Daily, 1, &[]))
        .unwrap();
    q.push(count(CountDirection::In, 0, Period::Daily, 1, &[]))
        .unwrap();
    assert_eq!(
        q.push(count(CountDirection::Out, 1, Period::Daily, 1, &[])),
        Err(QuotaRuleError::DuplicateNumber(1))
    );
    assert_eq!(
        q.push(count(
            CountDirection::Out,
            MAX_COUNTER_NUMBER + 1,
            Period::Daily,
            1,
            &[]
        )),
        Err(QuotaRuleError::NumberTooLarge(MAX_COUNTER_NUMBER + 1))
    );
}

/// The model: 3proxy's two scans written straight from `alwaysauth()`.
fn model(rules: &[(u8, bool)], direction: Direction) -> Vec<usize> {
    // rules: (0 = in, 1 = out, 2 = all; exempt?) all matching.
    let mut out = Vec::new();
    for (i, (dir, exempt)) in rules.iter().enumerate() {
        let covers = match direction {
            Direction::ToClient => *dir != 1,
            Direction::ToTarget => *dir != 0,
        };
        if !covers {
            continue;
        }
        if *exempt {
            break;
        }
        out.push(i + 1);
    }
    out
}

proptest! {
    #[test]
    fn selection_matches_the_model(rules in proptest::collection::vec((0u8..3, any::<bool>()), 0..12)) {
        let mut q = Quotas::new();
        for (i, (dir, exempt)) in rules.iter().enumerate() {
            let dir = [CountDirection::In, CountDirection::Out, CountDirection::All][usize::from(*dir)];
            let n = u32::try_from(i + 1).unwrap();
            q.push(if *exempt { Rule::exempt(dir, ace(&[])) } else { count(dir, n, Period::Daily, 1, &[]) }).unwrap();
        }
        let s = q.select(&request("1.1.1.1", None)).unwrap();
        for d in [Direction::ToClient, Direction::ToTarget] {
            let want: Vec<u32> = model(&rules, d).into_iter().map(|n| u32::try_from(n).unwrap()).collect();
            prop_assert_eq!(numbers(&s, d), want);
        }
    }
}

#[test]
fn a_reload_keeps_the_tallies_of_numbered_counters() {
    let mut old = Quotas::new();
    old.push(count(CountDirection::In, 1, Period::Daily, 100, &["*"]))
        .unwrap();
    old.push(count(CountDirection::In, 2, Period::Daily, 100, &["*"]))
        .unwrap();
    old.push(count(CountDirection::In, 0, Period::Daily, 100, &["*"]))
        .unwrap();
    let q = old.select(&request("10.0.0.1", None)).unwrap();
    q.charge(Direction::ToClient, 5000).unwrap();
    let mut new = Quotas::new();
    new.push(count(CountDirection::In, 1, Period::Daily, 100, &["*"]))
        .unwrap(); // same
    new.push(count(CountDirection::In, 2, Period::Daily, 200, &["*"]))
        .unwrap(); // limit changed
    new.push(count(CountDirection::In, 0, Period::Daily, 100, &["*"]))
        .unwrap(); // unnumbered
    new.adopt(&old);
    let tallies: Vec<(u32, u64)> = new.counters().map(|c| (c.number, c.bytes())).collect();
    assert_eq!(tallies, vec![(1, 5000), (2, 5000), (0, 0)]);
    // The unchanged counter is the same object: a tunnel still charging the old one counts
    // into the new configuration's tally.
    q.charge(Direction::ToClient, 1000).unwrap();
    let tallies: Vec<u64> = new.counters().map(|c| c.bytes()).collect();
    assert_eq!(tallies, vec![6000, 5000, 0]);
}
