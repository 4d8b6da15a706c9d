//! Runs an established tunnel: the [`Relay`] machine decides, the runtime's [`Io`] moves
//! the bytes and waits, and the session logs how it ended.

use super::{Interest, Io, Tunnel};
use crate::relay::{Relay, RelayEnd, RelayReport, Step, Way};
use crate::session::Intent;
use std::net::Shutdown;

/// Relays `tunnel` to its end, then writes its log line.
pub(super) async fn run<R: Io>(io: &R, client: &R::Stream, tunnel: &mut Tunnel<R::Stream>) {
    if tunnel.session.force() {
        io.established(&tunnel.session);
    }
    let mut report = relay(io, client, tunnel).await;
    if let Some(code) = io.revoked() {
        report.end = RelayEnd::Revoked(code);
    }
    let session = &mut tunnel.session;
    session.handle_relay_end(io.now(), report);
    while let Some(intent) = session.poll_intent() {
        match intent {
            Intent::Log(record) => io.log(&record),
            Intent::Close => break,
            // After its relay a session only logs and closes; the connection is over, so
            // any other intent has nothing left to act on. Listed by name so that a new
            // intent must be considered here too.
            Intent::Resolve { .. }
            | Intent::Connect { .. }
            | Intent::Bind { .. }
            | Intent::AcceptPeer { .. }
            | Intent::Relay(_)
            | Intent::Associate { .. }
            | Intent::RelayDatagrams(_)
            | Intent::SendToTarget { .. }
            | Intent::ReadTarget { .. }
            | Intent::Forward
            | Intent::Origin(_) => {}
        }
    }
}

/// Moves bytes between `client` and `target` until the relay machine says the tunnel is
/// over. Both directions run on this one task: each in turn until it must wait, then one
/// wait for everything either needs (and the idle deadline or a pacing moment).
async fn relay<R: Io>(io: &R, client: &R::Stream, tunnel: &mut Tunnel<R::Stream>) -> RelayReport {
    let target = &tunnel.target;
    let (to_target, to_client) = (
        std::mem::take(&mut tunnel.to_target),
        std::mem::take(&mut tunnel.to_client),
    );
    let Some(plan) = tunnel.plan.take() else {
        return RelayReport {
            bytes_in: 0,
            bytes_out: 0,
            end: RelayEnd::SystemError,
        };
    };
    if io.start_relay(client, target).is_err() {
        shutdown_both(io, client, target);
        return RelayReport {
            bytes_in: 0,
            bytes_out: 0,
            end: RelayEnd::SystemError,
        };
    }
    // The early bytes are copied into the stores: not kept for the life of the tunnel.
    let mut stores = [
        io.store(plan.mode, &to_target),
        io.store(plan.mode, &to_client),
    ];
    let mut relay = Relay::new(*plan, io.now(), [to_target.len(), to_client.len()]);
    drop((to_target, to_client));
    // What each direction waits for (socket index 0 client, 1 target; read or write): a
    // waiting direction is not run again until that readiness is seen, so a wake-up for
    // one direction costs the other no syscall.
    let mut parked: [Option<(u8, bool)>; 2] = [None; 2];
    loop {
        let now = io.now();
        relay.on_time(now);
        let mut interests = [Interest::default(); 2]; // client, target
        let mut deadline = relay.deadline();
        let mut yielded = false;
        for ((way, store), park) in Way::BOTH
            .into_iter()
            .zip(stores.iter_mut())
            .zip(&mut parked)
        {
            let (src, dst, src_i, dst_i) = match way {
                Way::Up => (client, target, 0, 1),
                Way::Down => (target, client, 1, 0),
            };
            if let Some((i, read)) = *park {
                if !relay.is_over() {
                    let interest = &mut interests[usize::from(i)];
                    if read {
                        interest.read = true;
                    } else {
                        interest.write = true;
                    }
                    continue;
                }
            }
            *park = None;
            let mut step = relay.next(way, now);
            loop {
                step = match step {
                    Step::Read { max } => relay.on_read(way, now, io.fill(store, src, max)),
                    Step::Write => relay.on_write(way, now, io.flush(store, dst)),
                    Step::ShutdownWrite => {
                        io.shutdown(dst, Shutdown::Write);
                        relay.on_shutdown(way)
                    }
                    Step::WaitReadable => {
                        interests[src_i].read = true;
                        *park = Some((src_i as u8, true));
                        break;
                    }
                    Step::WaitWritable => {
                        interests[dst_i].write = true;
                        *park = Some((dst_i as u8, false));
                        break;
                    }
                    Step::Sleep(t) => {
                        deadline = deadline.min(t);
                        break;
                    }
                    Step::Yield => {
                        yielded = true;
                        break;
                    }
                    Step::Done => break,
                };
            }
        }
        // `logdump`: decided by the session from the counts so far.
        if let Some(record) = tunnel.session.interim_record(now, &relay.report()) {
            io.log(&record);
        }
        if let Some(end) = relay.end() {
            if end != RelayEnd::Clean {
                // Each peer sees the end at once; what the stores hold is dropped.
                shutdown_both(io, client, target);
            }
            return relay.report();
        }
        if yielded {
            continue;
        }
        let [ci, ti] = interests;
        match io.wait((client, ci), (target, ti), deadline).await {
            Ok(ready) => {
                for park in &mut parked {
                    if let Some((i, read)) = *park {
                        let seen = ready[usize::from(i)];
                        if (read && seen.read) || (!read && seen.write) {
                            *park = None;
                        }
                    }
                }
            }
            Err(_) => relay.on_wait_failed(),
        }
    }
}

fn shutdown_both<R: Io>(io: &R, a: &R::Stream, b: &R::Stream) {
    io.shutdown(a, Shutdown::Both);
    io.shutdown(b, Shutdown::Both);
}
