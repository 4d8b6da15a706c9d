#![cfg_attr(fuzzing, no_main)]
//! The relay machine (`triproxy_policy::relay::Relay`) driven like a runtime drives it,
//! with every I/O outcome and every passage of time taken from the input.
//!
//! Input: a flags byte (bandwidth pipe on uploads, a 1 MiB `countin` quota on downloads,
//! early bytes in each direction), then records of 3 bytes `op, n_lo, n_hi`: `op` bit 0
//! picks the direction, bits 1-3 the outcome the "runtime" reports for the step the
//! machine asks for (bytes, would block, end of stream, an error, an interrupted call, a
//! zero-byte write), `n` the byte count or the milliseconds that pass while it waits.
//!
//! Oracles: no panic; a read is never asked for 0 bytes; what a direction holds is exactly
//! what it read minus what it wrote, and what it delivered is what it wrote; a sleep is
//! never in the past; once the tunnel ends its ending never changes and every direction
//! is `Done`; a clean end means both directions passed their end of stream on; the
//! downloads the quota counted stay within the quota plus one chunk, and a download past it
//! ends the tunnel with code 10.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;
use triproxy_fuzz::policy::acl::{Ace, AclRequest, Action, CivilTime, Operation};
use triproxy_fuzz::policy::bandlim::{Bucket, Pacer};
use triproxy_fuzz::policy::period::Period;
use triproxy_fuzz::policy::quota::{CountDirection, Quota, Quotas, Rule};
use triproxy_fuzz::policy::relay::{Outcome, Relay, RelayEnd, RelayPlan, Step, Way};
use triproxy_fuzz::policy::service::RelayMode;

const QUOTA: u64 = 1 << 20;

fn quota() -> (Quotas, Quota) {
    let mut quotas = Quotas::new();
    let quota = Ace::parse(Action::Allow, &[])
        .ok()
        .and_then(|any| {
            quotas
                .push(Rule::count(
                    CountDirection::In,
                    1,
                    "",
                    Period::Never,
                    1,
                    any,
                ))
                .ok()?;
            let request = AclRequest {
                user: None,
                client: "127.0.0.1".parse().ok()?,
                target_host: None,
                target_ip: None,
                port: None,
                operation: Operation::Connect,
                time: CivilTime {
                    weekday: 0,
                    seconds_of_day: 0,
                },
            };
            quotas.select(&request).ok()
        })
        .unwrap_or_default();
    (quotas, quota)
}

triproxy_fuzz::target!(|data| {
    let Some((&flags, records)) = data.split_first() else {
        return;
    };
    let t0 = triproxy_fuzz::start();
    let (_quotas, quota) = quota();
    let counted = flags & 2 != 0;
    let plan = RelayPlan {
        mode: RelayMode::ZeroCopy,
        idle_timeout: Duration::from_secs(60),
        to_client: Pacer::default(),
        to_target: if flags & 1 != 0 {
            Pacer::from_buckets([Arc::new(Bucket::new(80_000))])
        } else {
            Pacer::default()
        },
        quota: if counted { quota } else { Quota::default() },
    };
    let early = [
        usize::from(flags >> 4) * 100,
        usize::from(flags >> 2 & 3) * 1000,
    ];
    let mut relay = Relay::new(plan, t0, early);
    let mut read = [early[0] as u64, early[1] as u64];
    let mut written = [0u64; 2];
    let mut now = t0;
    let mut ended: Option<RelayEnd> = relay.end();
    for record in records.chunks_exact(3) {
        let way = if record[0] & 1 == 0 {
            Way::Up
        } else {
            Way::Down
        };
        let i = usize::from(record[0] & 1);
        let kind = record[0] >> 1 & 7;
        let n = usize::from(u16::from_le_bytes([record[1], record[2]]));
        let step = relay.next(way, now);
        match step {
            Step::Read { max } => {
                assert!(max > 0, "a read of 0 bytes was asked for");
                let outcome = match kind {
                    0..=2 => Outcome::Moved(n.clamp(1, max)),
                    3 => Outcome::WouldBlock,
                    4 => Outcome::Eof,
                    5 => Outcome::Failed(ErrorKind::Interrupted),
                    _ => Outcome::Failed(ErrorKind::ConnectionReset),
                };
                if let Outcome::Moved(m) = outcome {
                    read[i] += m as u64;
                }
                relay.on_read(way, now, outcome);
            }
            Step::Write => {
                let held = relay.held(way);
                assert!(held > 0, "a write with nothing held");
                let outcome = match kind {
                    0..=2 => Outcome::Moved(n.clamp(1, held)),
                    3 => Outcome::WouldBlock,
                    4 => Outcome::Eof, // a write of 0 bytes
                    5 => Outcome::Failed(ErrorKind::Interrupted),
                    _ => Outcome::Failed(ErrorKind::BrokenPipe),
                };
                if let Outcome::Moved(m) = outcome {
                    written[i] += m as u64;
                }
                relay.on_write(way, now, outcome);
            }
            Step::ShutdownWrite => {
                relay.on_shutdown(way);
            }
            Step::Sleep(t) => {
                assert!(t > now, "a sleep in the past");
                now = t;
            }
            Step::WaitReadable | Step::WaitWritable | Step::Yield | Step::Done => {
                now += Duration::from_millis(n as u64 * 4);
                relay.on_time(now);
            }
        }
        for (w, j) in [(Way::Up, 0), (Way::Down, 1)] {
            assert_eq!(relay.moved(w), written[j], "delivered = written");
            assert_eq!(
                relay.held(w) as u64,
                read[j] - written[j],
                "held = read - written"
            );
        }
        if let Some(end) = ended {
            assert_eq!(relay.end(), Some(end), "an ending never changes");
            assert_eq!(relay.next(Way::Up, now), Step::Done);
            assert_eq!(relay.next(Way::Down, now), Step::Done);
        }
        ended = relay.end();
        if counted && read[1] > QUOTA + 65_535 + early[1] as u64 {
            assert!(
                matches!(relay.end(), Some(RelayEnd::Quota(_))),
                "downloads past the quota end the tunnel with code 10"
            );
        }
        if relay.end() == Some(RelayEnd::Clean) {
            assert!(written == read, "a clean end delivered everything");
        }
    }
    if let Some(end) = relay.end() {
        assert!(matches!(end.log_code().0, 0 | 10 | 90..=97));
    }
});
