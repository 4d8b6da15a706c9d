//! The relay of an established tunnel as a sans-IO machine: what each direction does next,
//! and how the tunnel ends.
//!
//! A tunnel has two directions, [`Way::Up`] (client to target, 3proxy's "out") and
//! [`Way::Down`] (target to client, "in"). For each, the runtime asks [`Relay::next`] and
//! carries out the [`Step`]: read (or splice) at most N bytes from the source into the
//! direction's store, write what the store holds to the destination, pass an end of stream
//! on with a write shutdown, wait for readiness or a moment, or stop. It answers with the
//! [`Outcome`] of the syscall, and the machine returns the next step. The runtime holds the
//! bytes (a pooled pipe or buffer: that is a syscall detail); the machine holds the counts
//! and every decision:
//!
//! * **pacing** by the bandwidth pipes of the plan (a read is capped, or the direction
//!   sleeps until its pipes refill);
//! * the **idle timeout** ([`Relay::deadline`], [`Relay::on_time`]);
//! * **byte counting** (bytes delivered, for `%I`/`%O`);
//! * **traffic quotas**: every chunk read is charged to the plan's [`Quota`]; the chunk that
//!   reaches a limit ends the tunnel before it is delivered, with code 10;
//! * **which failure ends the tunnel**: the first failure decides (95 client, 96 server); a
//!   failure seen after it is its consequence (the tunnel is being torn down), never a
//!   second cause. An idle timeout with bytes stuck undelivered is 94, a failed wait 90.
//!
//! Nothing here reads a clock: every call takes `now`. The tests drive whole tunnels in
//! virtual time.
//!
//! ## Opaque tunnels only
//!
//! This machine relays bytes it never looks at. A connection whose bytes must be seen
//! (plain HTTP forwarding; an FTP control channel or a filter next) takes the inspected
//! path instead: the session hands it to the protocol's own machine, which passes,
//! rewrites or holds each byte and asks for connections, and the executor's
//! forwarding loop (`exec/forward.rs`) moves the bytes. Both paths charge the same
//! bandwidth pipes and quotas.

use crate::bandlim::{Allowance, Direction, Pacer};
use crate::quota::{Quota, QuotaExceeded};
use crate::service::RelayMode;
use core::time::Duration;
use std::io;
use std::time::Instant;
use triproxy_wire::LogCode;

/// Reads a direction makes in a row before it yields to the other (fairness: one fast
/// direction must not starve the other on a single-threaded executor).
pub const ROUNDS: u8 = 16;

/// How an established tunnel is relayed: everything a runtime needs besides the sockets.
/// The session decides all of it, so runtimes never choose a mode or a pipe themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayPlan {
    /// Zero-copy or buffered. A bandwidth pipe (and, later, an inspecting front) forces
    /// `Buffered`.
    pub mode: RelayMode,
    /// A tunnel with no traffic in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Bandwidth pipes for the bytes going to the client (`bandlimin`); empty: unpaced.
    pub to_client: Pacer,
    /// Bandwidth pipes for the bytes going to the target (`bandlimout`).
    pub to_target: Pacer,
    /// The traffic quotas (`countin`/`countout`/`countall`) this tunnel is charged to.
    pub quota: Quota,
}

/// 3proxy's `logdump IN_BYTES [OUT_BYTES]`: a tunnel that has moved more than these many
/// bytes in a direction since its last log record writes an interim record (code 0, the
/// bytes and time since the previous record), so long downloads show up in the log while
/// they run. `0` turns a direction off; both `0` (the default) is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogDump {
    /// Bytes from the target to the client (3proxy's `%I`, first argument).
    pub bytes_in: u64,
    /// Bytes from the client to the target (`%O`, second argument).
    pub bytes_out: u64,
}

impl LogDump {
    /// Whether no interim records are written.
    pub fn is_off(self) -> bool {
        self.bytes_in == 0 && self.bytes_out == 0
    }

    /// Whether a tunnel that moved `bytes_in`/`bytes_out` since its last record writes an
    /// interim one now (more than a threshold, as 3proxy compares).
    pub fn is_due(self, bytes_in: u64, bytes_out: u64) -> bool {
        (self.bytes_in != 0 && bytes_in > self.bytes_in)
            || (self.bytes_out != 0 && bytes_out > self.bytes_out)
    }
}

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both directions reached end of stream and everything was delivered.
    Clean,
    /// No traffic for the idle timeout.
    IdleTimeout,
    /// The client side failed (reset, write error).
    ClientError,
    /// The target side failed.
    ServerError,
    /// The idle timeout ended a tunnel holding bytes its destination never took.
    UnsentData,
    /// The runtime could not wait for the sockets (3proxy's "unexpected system error").
    SystemError,
    /// A traffic quota was reached.
    Quota(QuotaExceeded),
    /// Ended from outside: a reload under `force` whose auth chain or ACL no longer
    /// grants the tunnel (the refusal's code: 1, 3, 4, 5, 6...).
    Revoked(LogCode),
}

impl RelayEnd {
    /// The 3proxy log code of this ending (0, 92, 95, 96, 94, 90, 10). 3proxy's 97 (both
    /// sides failed) is never given: the first failure decides, the other is its consequence.
    pub fn log_code(self) -> LogCode {
        match self {
            RelayEnd::Clean => LogCode::SUCCESS,
            RelayEnd::IdleTimeout => LogCode::RELAY_IDLE_TIMEOUT,
            RelayEnd::ClientError => LogCode::RELAY_CLIENT_ABORT,
            RelayEnd::ServerError => LogCode::RELAY_SERVER_ABORT,
            RelayEnd::UnsentData => LogCode::RELAY_UNSENT_DATA,
            RelayEnd::SystemError => LogCode::RELAY_SYSTEM_ERROR,
            RelayEnd::Quota(_) => LogCode::LIMIT_EXCEEDED,
            RelayEnd::Revoked(code) => code,
        }
    }
}

impl core::fmt::Display for RelayEnd {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RelayEnd::Clean => f.write_str("both sides closed"),
            RelayEnd::IdleTimeout => f.write_str("idle timeout: no traffic either way"),
            RelayEnd::ClientError => f.write_str("client connection failed"),
            RelayEnd::ServerError => f.write_str("target connection failed"),
            RelayEnd::UnsentData => f.write_str("idle timeout with bytes undelivered"),
            RelayEnd::SystemError => f.write_str("waiting for the sockets failed"),
            RelayEnd::Quota(q) => q.fmt(f),
            RelayEnd::Revoked(code) => write!(
                f,
                "closed by a reload: the new configuration refuses it (code {})",
                code.get()
            ),
        }
    }
}

/// What a runtime reports when a relay is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayReport {
    /// Bytes delivered from the target to the client (3proxy `%I`).
    pub bytes_in: u64,
    /// Bytes delivered from the client to the target, pipelined bytes included (`%O`).
    pub bytes_out: u64,
    /// How it ended.
    pub end: RelayEnd,
}

/// One direction of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Way {
    /// Client to target: the source is the client, the destination the target.
    Up,
    /// Target to client.
    Down,
}

impl Way {
    /// Both directions, in the order an executor serves them.
    pub const BOTH: [Way; 2] = [Way::Up, Way::Down];

    fn index(self) -> usize {
        match self {
            Way::Up => 0,
            Way::Down => 1,
        }
    }

    /// The bandwidth/quota direction of these bytes.
    pub fn direction(self) -> Direction {
        match self {
            Way::Up => Direction::ToTarget,
            Way::Down => Direction::ToClient,
        }
    }
}

/// What the runtime does next for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read or splice at most this many bytes from the source into the direction's store
    /// (which is empty); answer with [`Relay::on_read`].
    Read {
        /// The most bytes the pipes allow (the store's size caps it further).
        max: usize,
    },
    /// Write the bytes the store holds to the destination; answer with
    /// [`Relay::on_write`].
    Write,
    /// The source ended and everything was delivered: shut the destination down for
    /// writing (half-close), then call [`Relay::on_shutdown`].
    ShutdownWrite,
    /// Wait until the source is readable, then ask [`Relay::next`] again.
    WaitReadable,
    /// Wait until the destination is writable, then ask [`Relay::next`] again.
    WaitWritable,
    /// The bandwidth pipes are spent: ask [`Relay::next`] again at this moment.
    Sleep(Instant),
    /// This direction had its turn ([`ROUNDS`] reads): serve the other, then ask again
    /// without waiting.
    Yield,
    /// This direction is over (the tunnel may still run the other one).
    Done,
}

/// What one read or write did, as the runtime saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This many bytes moved (a read of 0 is [`Outcome::Eof`]).
    Moved(usize),
    /// The source reached end of stream.
    Eof,
    /// The socket would block.
    WouldBlock,
    /// The call failed with this error.
    Failed(io::ErrorKind),
}

impl Outcome {
    /// The outcome of a read or write syscall. A read of 0 bytes is end of stream; a
    /// write of 0 bytes is a failure ([`io::ErrorKind::WriteZero`]), which
    /// [`Relay::on_write`] treats as such.
    pub fn of(result: io::Result<usize>) -> Outcome {
        match result {
            Ok(0) => Outcome::Eof,
            Ok(n) => Outcome::Moved(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Outcome::WouldBlock,
            Err(e) => Outcome::Failed(e.kind()),
        }
    }
}

/// One direction's counts and state.
#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    /// Bytes read and not yet delivered.
    held: usize,
    /// The source reached end of stream.
    eof: bool,
    /// The end of stream was passed on: this direction is over.
    done: bool,
    /// Bytes delivered to the destination.
    moved: u64,
    /// Reads since this direction last yielded.
    rounds: u8,
}

/// The relay of one tunnel. See the module documentation.
#[derive(Debug)]
pub struct Relay {
    flows: [Flow; 2],
    pacers: [Pacer; 2],
    quota: Quota,
    idle_timeout: Duration,
    last_activity: Instant,
    end: Option<RelayEnd>,
}

impl Relay {
    /// The relay of `plan`, starting at `now`, whose stores already hold `early` bytes
    /// (client data pipelined with the request for `Up`, target data that came with a
    /// parent's last reply for `Down`). Early bytes are paced and counted like any chunk;
    /// if they alone reach a quota the tunnel ends before they are delivered.
    pub fn new(plan: RelayPlan, now: Instant, early: [usize; 2]) -> Relay {
        let RelayPlan {
            idle_timeout,
            to_client,
            to_target,
            quota,
            ..
        } = plan;
        let mut relay = Relay {
            flows: [Flow::default(); 2],
            pacers: [to_target, to_client],
            quota,
            idle_timeout,
            last_activity: now,
            end: None,
        };
        for way in Way::BOTH {
            let n = early[way.index()];
            if n > 0 {
                relay.flow(way).held = n;
                relay.charge(way, now, n);
            }
        }
        relay
    }

    fn flow(&mut self, way: Way) -> &mut Flow {
        &mut self.flows[way.index()]
    }

    /// What `way` does next at `now`.
    pub fn next(&mut self, way: Way, now: Instant) -> Step {
        if self.end.is_some() {
            return Step::Done;
        }
        let flow = self.flows[way.index()];
        if flow.done {
            return Step::Done;
        }
        if flow.held > 0 {
            return Step::Write;
        }
        if flow.eof {
            return Step::ShutdownWrite;
        }
        if flow.rounds >= ROUNDS {
            self.flow(way).rounds = 0;
            return Step::Yield;
        }
        let pacer = &self.pacers[way.index()];
        if pacer.is_empty() {
            return Step::Read { max: usize::MAX };
        }
        match pacer.allowance(now, usize::MAX) {
            Allowance::Bytes(max) => Step::Read { max },
            Allowance::WaitUntil(t) => Step::Sleep(t),
        }
    }

    /// What a [`Step::Read`] of `way` gave at `now`; returns the next step.
    pub fn on_read(&mut self, way: Way, now: Instant, outcome: Outcome) -> Step {
        match outcome {
            Outcome::Moved(n) => {
                self.last_activity = now;
                let flow = self.flow(way);
                flow.held = flow.held.saturating_add(n);
                flow.rounds = flow.rounds.saturating_add(1);
                self.charge(way, now, n);
                self.next(way, now)
            }
            Outcome::Eof => {
                self.flow(way).eof = true;
                self.next(way, now)
            }
            Outcome::WouldBlock => Step::WaitReadable,
            Outcome::Failed(io::ErrorKind::Interrupted) => self.next(way, now),
            Outcome::Failed(_) => {
                self.fail(way, Side::Source);
                Step::Done
            }
        }
    }

    /// What a [`Step::Write`] of `way` gave at `now`; returns the next step.
    pub fn on_write(&mut self, way: Way, now: Instant, outcome: Outcome) -> Step {
        match outcome {
            Outcome::Moved(n) => {
                self.last_activity = now;
                let flow = self.flow(way);
                let n = n.min(flow.held);
                flow.held -= n;
                flow.moved = flow.moved.saturating_add(n as u64);
                self.next(way, now)
            }
            Outcome::WouldBlock => Step::WaitWritable,
            Outcome::Failed(io::ErrorKind::Interrupted) => self.next(way, now),
            // A write of 0 bytes (`Eof`) is a destination that takes nothing: a failure.
            Outcome::Eof | Outcome::Failed(_) => {
                self.fail(way, Side::Destination);
                Step::Done
            }
        }
    }

    /// The end of stream of `way` was passed on ([`Step::ShutdownWrite`] done).
    pub fn on_shutdown(&mut self, way: Way) -> Step {
        self.flow(way).done = true;
        if self.end.is_none() && self.flows.iter().all(|f| f.done) {
            self.end = Some(RelayEnd::Clean);
        }
        Step::Done
    }

    /// The runtime could not wait for the sockets: the tunnel ends with code 90.
    pub fn on_wait_failed(&mut self) {
        self.end.get_or_insert(RelayEnd::SystemError);
    }

    /// When the idle timeout fires if nothing moves before: the latest moment to call
    /// [`Relay::on_time`].
    pub fn deadline(&self) -> Instant {
        self.last_activity + self.idle_timeout
    }

    /// The time is `now`: ends an idle tunnel (92, or 94 if bytes are stuck undelivered).
    pub fn on_time(&mut self, now: Instant) {
        if self.end.is_none() && now >= self.deadline() {
            let stuck = self.flows.iter().any(|f| f.held > 0);
            self.end = Some(if stuck {
                RelayEnd::UnsentData
            } else {
                RelayEnd::IdleTimeout
            });
        }
    }

    /// Whether the tunnel is over. If it did not end cleanly the runtime shuts both
    /// sockets down (so each peer sees the end at once) and drops what the stores hold.
    pub fn is_over(&self) -> bool {
        self.end.is_some()
    }

    /// How the tunnel ended, once [`Relay::is_over`].
    pub fn end(&self) -> Option<RelayEnd> {
        self.end
    }

    /// Bytes `way` delivered so far.
    pub fn moved(&self, way: Way) -> u64 {
        self.flows[way.index()].moved
    }

    /// Bytes `way` holds undelivered.
    pub fn held(&self, way: Way) -> usize {
        self.flows[way.index()].held
    }

    /// The report for the session once the tunnel is over (until then, a clean end so far).
    pub fn report(&self) -> RelayReport {
        RelayReport {
            bytes_in: self.moved(Way::Down),
            bytes_out: self.moved(Way::Up),
            end: self.end.unwrap_or(RelayEnd::Clean),
        }
    }

    /// Charges `n` bytes read by `way` at `now` to its pipes and quotas.
    fn charge(&mut self, way: Way, now: Instant, n: usize) {
        let pacer = &self.pacers[way.index()];
        if !pacer.is_empty() {
            pacer.charge(now, n);
        }
        if !self.quota.is_empty() {
            if let Err(exceeded) = self.quota.charge(way.direction(), n as u64) {
                self.end.get_or_insert(RelayEnd::Quota(exceeded));
            }
        }
    }

    /// The first failure decides how the tunnel ends; the sockets are then shut down and
    /// anything after is its consequence.
    fn fail(&mut self, way: Way, side: Side) {
        let client = matches!(
            (way, side),
            (Way::Up, Side::Source) | (Way::Down, Side::Destination)
        );
        self.end.get_or_insert(if client {
            RelayEnd::ClientError
        } else {
            RelayEnd::ServerError
        });
    }
}

/// Which end of a direction failed.
#[derive(Debug, Clone, Copy)]
enum Side {
    Source,
    Destination,
}
