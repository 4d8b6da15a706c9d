//! The blocking relay: both directions of a tunnel on the connection's own thread, waiting
//! with `poll(2)`, until both directions are done, with exact half-close.
//!
//! The bytes are moved by [`crate::pump::Pump`] (zero-copy `splice` or pooled buffers, as
//! the session decided); this module only waits for the sockets and keeps the idle clock.
//! A failure on either socket shuts both sockets down so the other direction ends too.
//!
//! Bandwidth pipes pace a direction through its pump; while a pump waits for its pipes the
//! poll timeout is the earlier of that moment and the idle deadline.

use crate::pump::{Progress, Pump};
use crate::sys::{self, POLLIN, POLLOUT};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use triproxy_policy::session::{RelayEnd, RelayReport};

pub use triproxy_policy::session::RelayPlan;

/// The two pumps of `plan`: client-to-target and target-to-client, each delivering its
/// `early` bytes first.
pub fn pumps(plan: &RelayPlan, early: &Early) -> (Pump, Pump) {
    (
        Pump::with_pending(plan.mode, &early.to_target).paced(plan.to_target.clone()),
        Pump::with_pending(plan.mode, &early.to_client).paced(plan.to_client.clone()),
    )
}

/// Bytes read before the relay started that it must deliver first (and count): client
/// data pipelined after the request, and target data that came with a parent's last reply.
/// Empty vectors do not allocate.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Early {
    /// From the client, for the target.
    pub to_target: Vec<u8>,
    /// From the target, for the client.
    pub to_client: Vec<u8>,
}

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

/// Remembers whether a direction of a tunnel already failed. A failure shuts both sockets
/// down, so the other direction then fails too; that second failure is a consequence of the
/// first, not a second cause, and must not turn a client's abort (code 95) into "both
/// sides failed" (97). Shared by the two directions (atomic: the smol runtime drives them
/// as two futures of one `Send` task).
#[derive(Debug, Default)]
pub struct FirstFailure(AtomicBool);

impl FirstFailure {
    /// The ending to report for a direction of the tunnel between `a` and `b` that ended
    /// with `end`: itself, except that a failure after an earlier one counts as a plain end
    /// of stream. The first failure shuts both sockets down, so that the other direction
    /// ends too.
    pub fn settle(&self, end: PumpEnd, a: &TcpStream, b: &TcpStream) -> PumpEnd {
        let end = self.classify(end);
        if end != PumpEnd::Eof && end != PumpEnd::Idle {
            shutdown_both(a, b);
        }
        end
    }

    /// Whether a direction has failed (both sockets are then shut down).
    pub fn failed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn classify(&self, end: PumpEnd) -> PumpEnd {
        match end {
            PumpEnd::Eof | PumpEnd::Idle => end,
            _ if self.0.swap(true, Ordering::Relaxed) => PumpEnd::Eof,
            _ => end,
        }
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

/// Relays between `client` and `target` until both directions are done. `early` holds
/// bytes read during the handshake; each pump delivers its share first.
/// Both sockets are left non-blocking.
pub fn relay(
    client: &TcpStream,
    target: &TcpStream,
    early: &Early,
    plan: &RelayPlan,
) -> RelayReport {
    let idle_timeout = plan.idle_timeout;
    if client.set_nonblocking(true).is_err() || target.set_nonblocking(true).is_err() {
        shutdown_both(client, target);
        return RelayReport {
            bytes_in: 0,
            bytes_out: 0,
            end: RelayEnd::ClientError,
        };
    }
    let (mut up, mut down) = pumps(plan, early); // client -> target, target -> client
    let mut up_end: Option<PumpEnd> = None;
    let mut down_end: Option<PumpEnd> = None;
    let mut last_activity = Instant::now();
    let first_failure = FirstFailure::default();
    loop {
        let mut client_events = 0i16;
        let mut target_events = 0i16;
        let mut wake: Option<Instant> = None;
        if up_end.is_none() {
            let (progress, active) = up.run(client, target);
            if active {
                last_activity = Instant::now();
            }
            match progress {
                Progress::WantRead => client_events |= POLLIN,
                Progress::WantWrite => target_events |= POLLOUT,
                Progress::WaitUntil(t) => wake = Some(t),
                Progress::Done(end) => up_end = Some(first_failure.settle(end, client, target)),
            }
        }
        if down_end.is_none() {
            let (progress, active) = down.run(target, client);
            if active {
                last_activity = Instant::now();
            }
            match progress {
                Progress::WantRead => target_events |= POLLIN,
                Progress::WantWrite => client_events |= POLLOUT,
                Progress::WaitUntil(t) => wake = Some(wake.map_or(t, |w| w.min(t))),
                Progress::Done(end) => down_end = Some(first_failure.settle(end, client, target)),
            }
        }
        if let (Some(u), Some(d)) = (up_end, down_end) {
            return RelayReport {
                bytes_in: down.moved(),
                bytes_out: up.moved(),
                end: classify(u, d),
            };
        }
        if (up_end.is_some() || down_end.is_some()) && first_failure.failed() {
            // Both sockets are shut down: the other direction ends on its next run.
            continue;
        }
        let left = idle_timeout.saturating_sub(last_activity.elapsed());
        if left.is_zero() {
            shutdown_both(client, target);
            return RelayReport {
                bytes_in: down.moved(),
                bytes_out: up.moved(),
                end: RelayEnd::IdleTimeout,
            };
        }
        let mut fds = [
            sys::poll_fd(client, client_events),
            sys::poll_fd(target, target_events),
        ];
        let left = match wake {
            // Round up: waking a millisecond early would only find the pipes still spent.
            Some(t) => {
                left.min(t.saturating_duration_since(Instant::now()) + Duration::from_micros(999))
            }
            None => left,
        };
        let timeout_ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        if let Err(e) = sys::poll(&mut fds, timeout_ms) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                shutdown_both(client, target);
                return RelayReport {
                    bytes_in: down.moved(),
                    bytes_out: up.moved(),
                    end: RelayEnd::ClientError,
                };
            }
        }
    }
}

/// Shuts both sockets of a tunnel down in both directions (each pump then ends).
pub fn shutdown_both(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
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

    #[test]
    fn only_the_first_failure_counts() {
        let f = FirstFailure::default();
        assert_eq!(f.classify(PumpEnd::Eof), PumpEnd::Eof);
        assert_eq!(f.classify(PumpEnd::SourceError), PumpEnd::SourceError);
        assert!(f.failed());
        // The other direction fails because the first failure shut both sockets down.
        assert_eq!(f.classify(PumpEnd::SourceError), PumpEnd::Eof);
        assert_eq!(f.classify(PumpEnd::DestinationError), PumpEnd::Eof);
        assert_eq!(
            classify(PumpEnd::SourceError, f.classify(PumpEnd::DestinationError)),
            RelayEnd::ClientError
        );
    }

    #[test]
    fn the_first_failure_shuts_both_sockets_down() {
        use std::io::Read;
        use std::net::TcpListener;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut a_peer, _) = l.accept().unwrap();
        let b = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut b_peer, _) = l.accept().unwrap();
        let f = FirstFailure::default();
        assert_eq!(f.settle(PumpEnd::Eof, &a, &b), PumpEnd::Eof);
        assert!(!f.failed(), "an end of stream is no failure");
        assert_eq!(
            f.settle(PumpEnd::DestinationError, &a, &b),
            PumpEnd::DestinationError
        );
        for peer in [&mut a_peer, &mut b_peer] {
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            assert_eq!(
                peer.read(&mut [0u8; 1]).unwrap(),
                0,
                "the FIN of the shutdown"
            );
        }
    }
}
