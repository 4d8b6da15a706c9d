//! What policy costs on the relay's hot path: one bandwidth-pipe decision and charge per
//! chunk read. Run with `cargo bench -p triproxy-policy --bench hot_path`; the figures go
//! to BENCHMARKS.md next to the relay's CPU per chunk.
//!
//! Not a test: it prints nanoseconds per chunk and asserts nothing.
#![allow(clippy::disallowed_methods)] // a benchmark reads the clock

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use triproxy_policy::bandlim::{Allowance, Bucket, Pacer};

const CHUNKS: u32 = 5_000_000;
const CHUNK: usize = 64 * 1024;

/// Nanoseconds per `allowance` + `charge` pair through `pacer`, on virtual time that
/// advances 1 µs per chunk.
fn per_chunk(pacer: &Pacer) -> f64 {
    let t0 = Instant::now();
    let start = Instant::now();
    let mut now = t0;
    let mut moved = 0u64;
    for _ in 0..CHUNKS {
        now += Duration::from_micros(1);
        match pacer.allowance(black_box(now), CHUNK) {
            Allowance::Bytes(n) => {
                pacer.charge(now, n);
                moved += n as u64;
            }
            Allowance::WaitUntil(t) => now = t,
        }
    }
    black_box(moved);
    start.elapsed().as_nanos() as f64 / f64::from(CHUNKS)
}

fn main() {
    // Rates so high that no chunk ever waits: the cost of the bookkeeping alone.
    let fast = || Arc::new(Bucket::new(1 << 40));
    let unpaced = Pacer::default();
    let one = Pacer::from_buckets([fast()]);
    let ten = Pacer::from_buckets((0..10).map(|_| fast()));
    for round in 1..=3 {
        println!(
            "round {round}: unpaced {:.1} ns/chunk, 1 pipe {:.1} ns/chunk, 10 pipes {:.1} ns/chunk",
            per_chunk(&unpaced),
            per_chunk(&one),
            per_chunk(&ten)
        );
    }
}
