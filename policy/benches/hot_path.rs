//! What policy costs on the relay's hot path, per chunk: the relay machine's bookkeeping
//! for one read and one write (`next`, `on_read`, `on_write`), which includes the
//! bandwidth-pipe decision and charge and the traffic-quota charge. Run with
//! `cargo bench -p triproxy-policy --bench hot_path`; the figures go to BENCHMARKS.md next
//! to the relay's CPU per chunk.
//!
//! Not a test: it prints nanoseconds per chunk and asserts nothing.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)] // a benchmark reads the clock

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::acl::{Ace, AclRequest, Action, CivilTime, Operation};
use triproxy_policy::bandlim::{Bucket, Pacer};
use triproxy_policy::period::Period;
use triproxy_policy::quota::{CountDirection, Quota, Quotas, Rule};
use triproxy_policy::relay::{Outcome, Relay, RelayPlan, Step, Way};
use triproxy_policy::service::RelayMode;

const CHUNKS: u32 = 5_000_000;
const CHUNK: usize = 64 * 1024;

/// Nanoseconds per chunk through a relay machine with `pacer` on downloads and `quota`,
/// on virtual time that advances 1 µs per chunk: read a chunk, write it, repeat.
fn per_chunk(pacer: &Pacer, quota: &Quota) -> f64 {
    let t0 = Instant::now();
    let plan = RelayPlan {
        mode: RelayMode::ZeroCopy,
        idle_timeout: Duration::from_secs(1800),
        to_client: pacer.clone(),
        to_target: Pacer::default(),
        quota: quota.clone(),
    };
    let mut relay = Relay::new(plan, t0, [0, 0]);
    let start = Instant::now();
    let mut now = t0;
    let mut moved = 0u64;
    for _ in 0..CHUNKS {
        now += Duration::from_micros(1);
        match relay.next(Way::Down, black_box(now)) {
            Step::Read { max } => {
                let n = max.min(CHUNK);
                if relay.on_read(Way::Down, now, Outcome::Moved(n)) == Step::Write {
                    relay.on_write(Way::Down, now, Outcome::Moved(n));
                    moved += n as u64;
                }
            }
            Step::Sleep(t) => now = t,
            _ => {}
        }
    }
    black_box(moved);
    start.elapsed().as_nanos() as f64 / f64::from(CHUNKS)
}

/// A `countall` quota no benchmark reaches (1 PiB), matching everything.
fn quota() -> (Quotas, Quota) {
    let mut quotas = Quotas::new();
    let any = Ace::parse(Action::Allow, &[]).unwrap();
    quotas
        .push(Rule::count(
            CountDirection::All,
            1,
            "",
            Period::Never,
            1 << 30,
            any,
        ))
        .unwrap();
    let request = AclRequest {
        user: None,
        client: "127.0.0.1".parse().unwrap(),
        target_host: None,
        target_ip: None,
        port: None,
        operation: Operation::Connect,
        time: CivilTime {
            weekday: 0,
            seconds_of_day: 0,
        },
    };
    let quota = quotas.select(&request).unwrap();
    (quotas, quota)
}

fn main() {
    // Rates so high that no chunk ever waits: the cost of the bookkeeping alone.
    let fast = || Arc::new(Bucket::new(1 << 40));
    let unpaced = Pacer::default();
    let one = Pacer::from_buckets([fast()]);
    let ten = Pacer::from_buckets((0..10).map(|_| fast()));
    let none = Quota::default();
    let (_quotas, counted) = quota();
    for round in 1..=3 {
        println!(
            "round {round}: unpaced {:.1} ns/chunk, 1 pipe {:.1}, 10 pipes {:.1}, \
             quota {:.1}, 1 pipe + quota {:.1}",
            per_chunk(&unpaced, &none),
            per_chunk(&one, &none),
            per_chunk(&ten, &none),
            per_chunk(&unpaced, &counted),
            per_chunk(&one, &counted),
        );
    }
}
