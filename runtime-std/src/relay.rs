//! The blocking relay: bytes in both directions between client and target until both
//! directions are done, with exact half-close.
//!
//! Each direction is a loop of `read` then `write_all`; when one side reaches end of stream
//! the other side's write half is shut down (its FIN travels on) while the opposite
//! direction keeps flowing. A failure on either socket shuts both sockets down so that the
//! other direction wakes up and the tunnel ends. The client-to-target direction runs on
//! the connection's own thread, the other on a scoped thread with a small stack.
//!
//! Not here: what the bytes mean, pacing (a later issue adds bandwidth pipes) and
//! zero-copy `splice` (the performance issue).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use triproxy_policy::session::{RelayEnd, RelayReport};

/// Bytes read per `read()` call and direction.
pub const RELAY_CHUNK: usize = 32 * 1024;

/// Stack of the thread that runs the target-to-client direction.
const PUMP_STACK: usize = 64 * 1024;

/// How one direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpEnd {
    /// The source reached end of stream and the FIN was passed on.
    Eof,
    /// The source socket failed.
    SourceError,
    /// The destination socket failed.
    DestinationError,
    /// No traffic in either direction for the idle timeout.
    Idle,
}

/// Combines the endings of the client-to-target and target-to-client directions into the
/// session's [`RelayEnd`]. Shared with the smol runtime.
pub fn classify(upstream: PumpEnd, downstream: PumpEnd) -> RelayEnd {
    // upstream: client -> target (source = client); downstream: target -> client.
    let client_failed = upstream == PumpEnd::SourceError || downstream == PumpEnd::DestinationError;
    let server_failed = upstream == PumpEnd::DestinationError || downstream == PumpEnd::SourceError;
    match (client_failed, server_failed) {
        (true, true) => RelayEnd::BothError,
        (true, false) => RelayEnd::ClientError,
        (false, true) => RelayEnd::ServerError,
        (false, false) if upstream == PumpEnd::Idle || downstream == PumpEnd::Idle => {
            RelayEnd::IdleTimeout
        }
        (false, false) => RelayEnd::Clean,
    }
}

/// Last moment any byte moved in a tunnel, shared by its two directions (and, in the smol
/// runtime, by its idle watchdog).
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

impl Activity {
    /// Activity starting now.
    pub fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records that bytes moved now.
    pub fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since bytes last moved.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Relays between `client` and `target` until both directions are done. `pending` holds
/// client bytes that arrived with the handshake; they are written to the target first.
pub fn relay(
    client: &TcpStream,
    target: &TcpStream,
    pending: &[u8],
    idle_timeout: Duration,
) -> RelayReport {
    let mut bytes_out = 0u64;
    if !pending.is_empty() {
        if (&*target).write_all(pending).is_err() {
            shutdown_both(client, target);
            return RelayReport {
                bytes_in: 0,
                bytes_out: 0,
                end: RelayEnd::ServerError,
            };
        }
        bytes_out = pending.len() as u64;
    }
    let activity = Activity::new();
    let _ = client.set_read_timeout(Some(idle_timeout));
    let _ = target.set_read_timeout(Some(idle_timeout));
    let _ = client.set_write_timeout(Some(idle_timeout));
    let _ = target.set_write_timeout(Some(idle_timeout));

    let (up, down) = thread::scope(|scope| {
        let downstream = thread::Builder::new()
            .stack_size(PUMP_STACK)
            .spawn_scoped(scope, || pump(target, client, &activity, idle_timeout));
        let up = pump(client, target, &activity, idle_timeout);
        let down = match downstream {
            Ok(handle) => handle.join().unwrap_or((0, PumpEnd::SourceError)),
            // No thread for the second direction: end the tunnel rather than half-serve it.
            Err(_) => {
                shutdown_both(client, target);
                (0, PumpEnd::SourceError)
            }
        };
        (up, down)
    });
    RelayReport {
        bytes_in: down.0,
        bytes_out: bytes_out + up.0,
        end: classify(up.1, down.1),
    }
}

fn shutdown_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Copies `src` to `dst` until end of stream or failure; returns bytes delivered.
fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    activity: &Activity,
    idle_timeout: Duration,
) -> (u64, PumpEnd) {
    let mut buf = vec![0u8; RELAY_CHUNK];
    let mut moved = 0u64;
    loop {
        let n = match (&*src).read(&mut buf) {
            Ok(0) => {
                // Pass the FIN on; the other direction keeps flowing.
                let _ = dst.shutdown(Shutdown::Write);
                return (moved, PumpEnd::Eof);
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if is_timeout(&e) => {
                if activity.idle_for() >= idle_timeout {
                    shutdown_both(src, dst);
                    return (moved, PumpEnd::Idle);
                }
                continue;
            }
            Err(_) => {
                shutdown_both(src, dst);
                return (moved, PumpEnd::SourceError);
            }
        };
        activity.touch();
        let Some(chunk) = buf.get(..n) else {
            return (moved, PumpEnd::SourceError);
        };
        match (&*dst).write_all(chunk) {
            Ok(()) => {
                moved += n as u64;
                activity.touch();
            }
            Err(e) => {
                shutdown_both(src, dst);
                let end = if is_timeout(&e) {
                    PumpEnd::Idle
                } else {
                    PumpEnd::DestinationError
                };
                return (moved, end);
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_covers_every_side() {
        use PumpEnd::*;
        assert_eq!(classify(Eof, Eof), RelayEnd::Clean);
        assert_eq!(classify(SourceError, Eof), RelayEnd::ClientError);
        assert_eq!(classify(Eof, DestinationError), RelayEnd::ClientError);
        assert_eq!(classify(DestinationError, Eof), RelayEnd::ServerError);
        assert_eq!(classify(Eof, SourceError), RelayEnd::ServerError);
        assert_eq!(classify(SourceError, SourceError), RelayEnd::BothError);
        assert_eq!(classify(Idle, Eof), RelayEnd::IdleTimeout);
    }
}
