//! The async relay: both directions on one task, an idle watchdog beside them, exact
//! half-close (a FIN read from one side shuts down the write half of the other).

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt, FutureExt};
use std::io;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use triproxy_policy::session::{RelayEnd, RelayReport};
use triproxy_runtime_std::relay::{classify, Activity, PumpEnd, RELAY_CHUNK};

/// Relays between `client` and `target` until both directions are done; `pending` client
/// bytes (pipelined with the handshake) go to the target first.
pub(crate) async fn relay(
    client: &Async<TcpStream>,
    target: &Async<TcpStream>,
    pending: &[u8],
    idle_timeout: Duration,
) -> RelayReport {
    let up_bytes = AtomicU64::new(0);
    let down_bytes = AtomicU64::new(0);
    if !pending.is_empty() {
        if { target }.write_all(pending).await.is_err() {
            shutdown_both(client, target);
            return RelayReport {
                bytes_in: 0,
                bytes_out: 0,
                end: RelayEnd::ServerError,
            };
        }
        up_bytes.store(pending.len() as u64, Ordering::Relaxed);
    }
    let last_activity = Activity::new();
    let pumps = future::zip(
        pump(client, target, &up_bytes, &last_activity),
        pump(target, client, &down_bytes, &last_activity),
    );
    let watchdog = async {
        loop {
            let idle = last_activity.idle_for();
            if idle >= idle_timeout {
                shutdown_both(client, target);
                return (PumpEnd::Idle, PumpEnd::Idle);
            }
            Timer::after(idle_timeout - idle).await;
        }
    };
    let (up, down) = pumps.or(watchdog).await;
    RelayReport {
        bytes_in: down_bytes.load(Ordering::Relaxed),
        bytes_out: up_bytes.load(Ordering::Relaxed),
        end: classify(up, down),
    }
}

fn shutdown_both(a: &Async<TcpStream>, b: &Async<TcpStream>) {
    let _ = a.get_ref().shutdown(Shutdown::Both);
    let _ = b.get_ref().shutdown(Shutdown::Both);
}

async fn pump(
    src: &Async<TcpStream>,
    dst: &Async<TcpStream>,
    moved: &AtomicU64,
    activity: &Activity,
) -> PumpEnd {
    let mut buf = vec![0u8; RELAY_CHUNK];
    loop {
        let n = match { src }.read(&mut buf).await {
            Ok(0) => {
                let _ = dst.get_ref().shutdown(Shutdown::Write);
                return PumpEnd::Eof;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                shutdown_both(src, dst);
                return PumpEnd::SourceError;
            }
        };
        activity.touch();
        let Some(chunk) = buf.get(..n) else {
            return PumpEnd::SourceError;
        };
        if { dst }.write_all(chunk).await.is_err() {
            shutdown_both(src, dst);
            return PumpEnd::DestinationError;
        }
        moved.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}
