//! The async relay: both directions on one task, each a [`Pump`] from runtime-std waiting
//! with `readable()`/`writable()`, and an idle watchdog beside them.
//!
//! A direction whose bandwidth pipes are spent sleeps on a timer until its pacer allows
//! the next read.
//!
//! An idle tunnel holds no pipe and no buffer (the pumps take them only while bytes are in
//! flight), which is what keeps thousands of idle tunnels cheap.

use async_io::{Async, Timer};
use futures_lite::{future, FutureExt};
use std::net::TcpStream;
use triproxy_policy::session::RelayReport;
use triproxy_runtime_std::pump::{Progress, Pump};
use triproxy_runtime_std::relay::{
    classify, pumps, shutdown_both, Activity, Early, FirstFailure, PumpEnd, RelayPlan,
};

/// Relays between `client` and `target` until both directions are done; `early` bytes
/// (client data pipelined with the handshake, target data that came with a parent's last
/// reply) are delivered first (the pumps hold them).
pub(crate) async fn relay(
    client: &Async<TcpStream>,
    target: &Async<TcpStream>,
    early: Early,
    plan: &RelayPlan,
) -> RelayReport {
    let idle_timeout = plan.idle_timeout;
    let activity = Activity::new();
    let (mut up, mut down) = pumps(plan, &early);
    drop(early); // copied into the pumps: not kept for the life of the tunnel
    let first_failure = FirstFailure::default();
    let pumps = future::zip(
        drive(&mut up, client, target, &activity, &first_failure),
        drive(&mut down, target, client, &activity, &first_failure),
    );
    let watchdog = async {
        loop {
            let idle = activity.idle_for();
            if idle >= idle_timeout {
                shutdown_both(client.get_ref(), target.get_ref());
                return (PumpEnd::Idle, PumpEnd::Idle);
            }
            Timer::after(idle_timeout - idle).await;
        }
    };
    let (u, d) = pumps.or(watchdog).await;
    RelayReport {
        bytes_in: down.moved(),
        bytes_out: up.moved(),
        end: classify(u, d),
    }
}

async fn drive(
    pump: &mut Pump,
    src: &Async<TcpStream>,
    dst: &Async<TcpStream>,
    activity: &Activity,
    first_failure: &FirstFailure,
) -> PumpEnd {
    loop {
        let (progress, active) = pump.run(src.get_ref(), dst.get_ref());
        if active {
            activity.touch();
        }
        let ready = match progress {
            Progress::WantRead => src.readable().await,
            Progress::WantWrite => dst.writable().await,
            Progress::WaitUntil(t) => {
                Timer::at(t).await;
                continue;
            }
            Progress::Done(end) => return first_failure.settle(end, src.get_ref(), dst.get_ref()),
        };
        if ready.is_err() {
            let end = match progress {
                Progress::WantRead => PumpEnd::SourceError,
                _ => PumpEnd::DestinationError,
            };
            return first_failure.settle(end, src.get_ref(), dst.get_ref());
        }
    }
}
