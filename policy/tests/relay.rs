//! The relay machine in virtual time: simulated sockets, no clock, no I/O.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use proptest::prelude::*;
use std::io::ErrorKind;
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::bandlim::{Bucket, Pacer};
use triproxy_policy::period::Period;
use triproxy_policy::quota::{CountDirection, Quota, Quotas, Rule};
use triproxy_policy::relay::{Outcome, Relay, RelayEnd, RelayPlan, Step, Way, ROUNDS};
use triproxy_policy::service::RelayMode;

const IDLE: Duration = Duration::from_secs(60);

fn plan() -> RelayPlan {
    RelayPlan {
        mode: RelayMode::ZeroCopy,
        idle_timeout: IDLE,
        to_client: Pacer::default(),
        to_target: Pacer::default(),
        quota: Quota::default(),
    }
}

/// One simulated socket end as a direction sees it: bytes waiting at its source, whether
/// the source ended or fails, and how much its destination takes per write.
#[derive(Debug, Default, Clone)]
struct End {
    /// Bytes the source can give now.
    available: usize,
    /// After `available`, the source reports end of stream.
    eof: bool,
    /// The source fails on the next read.
    read_error: bool,
    /// The destination takes at most this per write (0: would block).
    room: usize,
    /// The destination fails on the next write.
    write_error: bool,
    /// Bytes the destination received.
    received: u64,
    /// The destination was shut down for writing.
    shut: bool,
    /// The store (what the runtime holds for this direction).
    store: usize,
}

/// The simulated tunnel: one [`End`] per direction.
struct Sim {
    ends: [End; 2],
    /// The most one read moves (a pipe's size).
    chunk: usize,
}

impl Sim {
    fn new() -> Sim {
        Sim {
            ends: [End::default(), End::default()],
            chunk: 1000,
        }
        .with_room(usize::MAX)
    }

    fn with_room(mut self, room: usize) -> Sim {
        for e in &mut self.ends {
            e.room = room;
        }
        self
    }

    fn end(&mut self, way: Way) -> &mut End {
        match way {
            Way::Up => &mut self.ends[0],
            Way::Down => &mut self.ends[1],
        }
    }

    /// Runs `way` until it waits, sleeps, yields or is done, as an executor would.
    fn run(&mut self, relay: &mut Relay, way: Way, now: Instant) -> Step {
        let chunk = self.chunk;
        let mut step = relay.next(way, now);
        for _ in 0..10_000 {
            let e = self.end(way);
            step = match step {
                Step::Read { max } => {
                    let outcome = if e.read_error {
                        Outcome::Failed(ErrorKind::ConnectionReset)
                    } else if e.available > 0 {
                        let n = e.available.min(max).min(chunk);
                        e.available -= n;
                        e.store += n;
                        Outcome::Moved(n)
                    } else if e.eof {
                        Outcome::Eof
                    } else {
                        Outcome::WouldBlock
                    };
                    relay.on_read(way, now, outcome)
                }
                Step::Write => {
                    let outcome = if e.write_error {
                        Outcome::Failed(ErrorKind::BrokenPipe)
                    } else if e.room == 0 {
                        Outcome::WouldBlock
                    } else {
                        let n = e.store.min(e.room);
                        e.store -= n;
                        e.received += n as u64;
                        Outcome::Moved(n)
                    };
                    relay.on_write(way, now, outcome)
                }
                Step::ShutdownWrite => {
                    e.shut = true;
                    relay.on_shutdown(way)
                }
                other => return other,
            };
        }
        panic!("a direction never stopped");
    }

    /// Runs both directions until neither can move without waiting.
    fn settle(&mut self, relay: &mut Relay, now: Instant) -> [Step; 2] {
        loop {
            let up = self.run(relay, Way::Up, now);
            let down = self.run(relay, Way::Down, now);
            if up != Step::Yield && down != Step::Yield {
                return [up, down];
            }
        }
    }
}

#[test]
fn half_close_from_the_client_keeps_the_other_direction_flowing() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new();
    sim.end(Way::Up).available = 10;
    sim.end(Way::Up).eof = true;
    let steps = sim.settle(&mut relay, t0);
    assert_eq!(steps, [Step::Done, Step::WaitReadable]);
    assert!(sim.end(Way::Up).shut, "the FIN was passed on to the target");
    assert_eq!(sim.end(Way::Up).received, 10);
    assert!(!relay.is_over(), "the target may still answer");
    sim.end(Way::Down).available = 2500;
    sim.end(Way::Down).eof = true;
    let steps = sim.settle(&mut relay, t0 + Duration::from_secs(1));
    assert_eq!(steps, [Step::Done, Step::Done]);
    let report = relay.report();
    assert_eq!(report.end, RelayEnd::Clean);
    assert_eq!((report.bytes_out, report.bytes_in), (10, 2500));
    assert!(sim.end(Way::Down).shut);
}

#[test]
fn half_close_from_the_target_keeps_the_client_sending() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new();
    sim.end(Way::Down).eof = true;
    assert_eq!(sim.settle(&mut relay, t0), [Step::WaitReadable, Step::Done]);
    assert!(sim.end(Way::Down).shut);
    sim.end(Way::Up).available = 7;
    assert_eq!(sim.settle(&mut relay, t0), [Step::WaitReadable, Step::Done]);
    assert_eq!(sim.end(Way::Up).received, 7);
    sim.end(Way::Up).eof = true;
    sim.settle(&mut relay, t0);
    assert_eq!(relay.end(), Some(RelayEnd::Clean));
}

#[test]
fn an_abort_by_either_side_ends_the_tunnel_with_that_sides_code() {
    // (direction, fail the read?) -> expected end
    let cases = [
        (Way::Up, true, RelayEnd::ClientError),
        (Way::Up, false, RelayEnd::ServerError),
        (Way::Down, true, RelayEnd::ServerError),
        (Way::Down, false, RelayEnd::ClientError),
    ];
    for (way, read, expected) in cases {
        let t0 = Instant::now();
        let mut relay = Relay::new(plan(), t0, [0, 0]);
        let mut sim = Sim::new();
        if read {
            sim.end(way).read_error = true;
        } else {
            sim.end(way).available = 5;
            sim.end(way).write_error = true;
        }
        sim.settle(&mut relay, t0);
        assert!(relay.is_over());
        assert_eq!(sim.settle(&mut relay, t0), [Step::Done, Step::Done]);
        assert_eq!(relay.end(), Some(expected), "{way:?} read={read}");
        assert_eq!(
            relay.end().map(|e| e.log_code().0),
            Some(expected.log_code().0)
        );
    }
    assert_eq!(RelayEnd::ClientError.log_code().0, 95);
    assert_eq!(RelayEnd::ServerError.log_code().0, 96);
}

#[test]
fn the_first_failure_decides_and_later_ones_are_its_consequence() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new();
    sim.end(Way::Up).read_error = true; // the client resets
    sim.end(Way::Down).read_error = true; // and the target fails after it
    sim.settle(&mut relay, t0);
    assert_eq!(relay.end(), Some(RelayEnd::ClientError));
    // Told of another failure afterwards (a runtime racing its teardown): no change.
    assert_eq!(
        relay.on_read(Way::Down, t0, Outcome::Failed(ErrorKind::ConnectionReset)),
        Step::Done
    );
    assert_eq!(relay.end(), Some(RelayEnd::ClientError));
    // An end of stream after a clean half-close is no failure at all.
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new();
    sim.end(Way::Up).eof = true;
    sim.settle(&mut relay, t0);
    assert!(!relay.is_over());
}

#[test]
fn interrupted_calls_are_retried_not_failures() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    assert_eq!(relay.next(Way::Up, t0), Step::Read { max: usize::MAX });
    let again = relay.on_read(Way::Up, t0, Outcome::Failed(ErrorKind::Interrupted));
    assert_eq!(again, Step::Read { max: usize::MAX });
    assert!(!relay.is_over());
}

#[test]
fn the_idle_timeout_ends_a_quiet_tunnel_and_traffic_postpones_it() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new();
    assert_eq!(relay.deadline(), t0 + IDLE);
    let t1 = t0 + Duration::from_secs(59);
    relay.on_time(t1);
    assert!(!relay.is_over());
    sim.end(Way::Down).available = 1;
    sim.settle(&mut relay, t1);
    assert_eq!(
        relay.deadline(),
        t1 + IDLE,
        "bytes moved: the clock restarts"
    );
    relay.on_time(t0 + IDLE + Duration::from_secs(1));
    assert!(!relay.is_over());
    relay.on_time(t1 + IDLE);
    assert_eq!(relay.end(), Some(RelayEnd::IdleTimeout));
    assert_eq!(relay.end().map(|e| e.log_code().0), Some(92));
    assert_eq!(sim.settle(&mut relay, t1 + IDLE), [Step::Done, Step::Done]);
}

#[test]
fn an_idle_timeout_with_bytes_stuck_is_unsent_data() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new().with_room(0); // destinations take nothing
    sim.end(Way::Up).available = 100;
    assert_eq!(
        sim.settle(&mut relay, t0),
        [Step::WaitWritable, Step::WaitReadable]
    );
    assert_eq!(relay.held(Way::Up), 100);
    relay.on_time(t0 + IDLE);
    assert_eq!(relay.end(), Some(RelayEnd::UnsentData));
    assert_eq!(relay.end().map(|e| e.log_code().0), Some(94));
}

#[test]
fn early_bytes_are_delivered_first_and_counted() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [6, 3]);
    assert_eq!(relay.next(Way::Up, t0), Step::Write);
    let mut sim = Sim::new();
    sim.end(Way::Up).store = 6;
    sim.end(Way::Down).store = 3;
    sim.settle(&mut relay, t0);
    assert_eq!((relay.moved(Way::Up), relay.moved(Way::Down)), (6, 3));
}

#[test]
fn a_fast_direction_yields_after_its_rounds() {
    let t0 = Instant::now();
    let mut relay = Relay::new(plan(), t0, [0, 0]);
    let mut sim = Sim::new();
    sim.end(Way::Up).available = 1_000_000;
    assert_eq!(sim.run(&mut relay, Way::Up, t0), Step::Yield);
    assert_eq!(sim.end(Way::Up).received, u64::from(ROUNDS) * 1000);
    // Its next turn goes on where it stopped.
    assert_eq!(sim.run(&mut relay, Way::Up, t0), Step::Yield);
    assert_eq!(sim.end(Way::Up).received, 2 * u64::from(ROUNDS) * 1000);
}

#[test]
fn pacing_caps_reads_and_sleeps_until_the_pipes_refill() {
    let t0 = Instant::now();
    // 80,000 bit/s = 10,000 bytes/s; the bucket starts with a 100 ms burst (1,000 bytes).
    let bucket = Arc::new(Bucket::new(80_000));
    let mut p = plan();
    p.to_client = Pacer::from_buckets([bucket]);
    let mut relay = Relay::new(p, t0, [0, 0]);
    let mut sim = Sim::new();
    sim.chunk = 64 * 1024;
    sim.end(Way::Down).available = 1_000_000;
    let mut now = t0;
    let mut sleeps = 0;
    while now < t0 + Duration::from_secs(2) {
        match sim.run(&mut relay, Way::Down, now) {
            Step::Sleep(t) => {
                assert!(t > now, "a sleep is in the future");
                sleeps += 1;
                now = t;
            }
            Step::Yield => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let got = sim.end(Way::Down).received;
    // Two seconds at 10,000 bytes/s plus the initial burst, within one burst.
    assert!((20_000..=22_000).contains(&got), "delivered {got}");
    assert!(sleeps > 5, "the direction slept between chunks ({sleeps})");
    // The unpaced direction is not slowed.
    sim.end(Way::Up).available = 50_000;
    sim.settle(&mut relay, now);
    assert_eq!(sim.end(Way::Up).received, 50_000);
}

/// A `countin` quota of `mib` MiB matching everything, and the quota one tunnel charges.
fn quota_in(mib: u64) -> (Quotas, Quota) {
    use triproxy_policy::acl::{AclRequest, CivilTime, Operation};
    let mut quotas = Quotas::new();
    let any = Ace::parse(Action::Allow, &[]).unwrap();
    quotas
        .push(Rule::count(
            CountDirection::In,
            1,
            "all",
            Period::Daily,
            mib,
            any,
        ))
        .unwrap();
    let request = AclRequest {
        user: None,
        client: "127.0.0.1".parse().unwrap(),
        target_host: None,
        target_ip: Some("127.0.0.1".parse().unwrap()),
        port: Some(80),
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 1,
            seconds_of_day: 0,
        },
    };
    let quota = quotas.select(&request).unwrap();
    (quotas, quota)
}

#[test]
fn a_quota_reached_mid_transfer_ends_the_tunnel_within_one_chunk_with_code_10() {
    let t0 = Instant::now();
    let (_quotas, quota) = quota_in(1);
    let mut p = plan();
    p.quota = quota;
    let mut relay = Relay::new(p, t0, [0, 0]);
    let mut sim = Sim::new();
    sim.chunk = 64 * 1024;
    sim.end(Way::Down).available = 10 << 20;
    sim.end(Way::Up).available = 5 << 20; // uploads do not count against countin
    for _ in 0..1000 {
        if relay.is_over() {
            break;
        }
        sim.settle(&mut relay, t0);
    }
    let end = relay.end().unwrap();
    assert!(matches!(end, RelayEnd::Quota(_)), "{end:?}");
    assert_eq!(end.log_code().0, 10);
    assert_eq!(
        end.to_string(),
        "traffic quota 1 (countin, 1 MiB per day) reached"
    );
    // The chunk that reached the limit is not delivered: at most 1 MiB went through.
    let delivered = sim.end(Way::Down).received;
    assert!(delivered < 1 << 20, "delivered {delivered}");
    assert!(
        delivered >= (1 << 20) - 64 * 1024,
        "stopped within one chunk: {delivered}"
    );
}

#[test]
fn two_tunnels_share_one_quota() {
    let t0 = Instant::now();
    let (quotas, quota) = quota_in(1);
    let mut a = {
        let mut p = plan();
        p.quota = quota.clone();
        Relay::new(p, t0, [0, 0])
    };
    let mut b = {
        let mut p = plan();
        p.quota = quota;
        Relay::new(p, t0, [0, 0])
    };
    let (mut sa, mut sb) = (Sim::new(), Sim::new());
    for s in [&mut sa, &mut sb] {
        s.chunk = 16 * 1024;
        s.end(Way::Down).available = 10 << 20;
    }
    // Interleaved like two concurrent downloads.
    for _ in 0..1000 {
        if a.is_over() && b.is_over() {
            break;
        }
        sa.run(&mut a, Way::Down, t0);
        sb.run(&mut b, Way::Down, t0);
    }
    assert!(matches!(a.end(), Some(RelayEnd::Quota(_))));
    assert!(matches!(b.end(), Some(RelayEnd::Quota(_))));
    let total = sa.end(Way::Down).received + sb.end(Way::Down).received;
    assert!(
        total < 1 << 20,
        "together they stayed under the one quota: {total}"
    );
    assert!(total > (1 << 20) - 2 * 16 * 1024, "and used it: {total}");
    // And a third tunnel is refused at its start.
    use triproxy_policy::acl::{AclRequest, CivilTime, Operation};
    let request = AclRequest {
        user: None,
        client: "127.0.0.1".parse().unwrap(),
        target_host: None,
        target_ip: None,
        port: None,
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 1,
            seconds_of_day: 0,
        },
    };
    assert!(quotas.select(&request).is_err());
}

#[test]
fn early_bytes_alone_can_reach_the_quota() {
    let t0 = Instant::now();
    let (_quotas, quota) = quota_in(1);
    let mut p = plan();
    p.quota = quota;
    let relay = Relay::new(p, t0, [0, 2 << 20]);
    assert!(matches!(relay.end(), Some(RelayEnd::Quota(_))));
}

proptest! {
    /// Any sequence of outcomes and times: no panic, counts never exceed what was read,
    /// an ended tunnel only says `Done`, and the end never changes once decided.
    #[test]
    fn arbitrary_outcomes_keep_the_machine_consistent(
        ops in proptest::collection::vec((0u8..8, any::<bool>(), 0usize..5000, 0u64..5000), 1..200)
    ) {
        let t0 = Instant::now();
        let mut relay = Relay::new(plan(), t0, [0, 0]);
        let mut read = [0u64; 2];
        let mut decided: Option<RelayEnd> = None;
        let mut now = t0;
        for (op, up, n, ms) in ops {
            let way = if up { Way::Up } else { Way::Down };
            now += Duration::from_millis(ms);
            let i = usize::from(!up);
            match op {
                0 => { read[i] += n.max(1) as u64; relay.on_read(way, now, Outcome::Moved(n.max(1))); }
                1 => { relay.on_write(way, now, Outcome::Moved(n)); }
                2 => { relay.on_read(way, now, Outcome::Eof); }
                3 => { relay.on_read(way, now, Outcome::Failed(ErrorKind::ConnectionReset)); }
                4 => { relay.on_write(way, now, Outcome::Failed(ErrorKind::BrokenPipe)); }
                5 => { relay.on_shutdown(way); }
                6 => relay.on_time(now),
                _ => { relay.next(way, now); }
            }
            if let Some(d) = decided {
                prop_assert_eq!(relay.end(), Some(d));
                prop_assert_eq!(relay.next(way, now), Step::Done);
            }
            decided = relay.end();
            prop_assert!(relay.moved(Way::Up) <= read[0]);
            prop_assert!(relay.moved(Way::Down) <= read[1]);
        }
    }
}

/// `logdump`: due only past a threshold, each direction on its own, and never when off.
#[test]
fn logdump_thresholds() {
    use triproxy_policy::relay::LogDump;
    let off = LogDump::default();
    assert!(off.is_off());
    assert!(!off.is_due(u64::MAX, u64::MAX));
    let down = LogDump {
        bytes_in: 1000,
        bytes_out: 0,
    };
    assert!(!down.is_off());
    assert!(
        !down.is_due(1000, u64::MAX),
        "more than, as 3proxy compares"
    );
    assert!(down.is_due(1001, 0));
    let up = LogDump {
        bytes_in: 0,
        bytes_out: 10,
    };
    assert!(!up.is_due(u64::MAX, 10));
    assert!(up.is_due(0, 11));
}
