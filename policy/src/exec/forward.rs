//! Runs a connection in plain HTTP forwarding (the inspected path): every byte goes
//! through the session's forwarding buffers, which the session's exchange machine
//! inspects (see `session::forward`). This loop only moves bytes and waits: it reads into
//! the room the session offers, writes what the session has for each side, carries out the
//! session's intents (resolve, connect, parent chain, the origin pool, log, close) with the
//! same [`Handshake::carry_out`] as every other connection, and waits for readiness or
//! the session's next deadline.

use super::{Handshake, Interest, Io, Next};
use crate::bandlim::Allowance;
use crate::relay::Way;
use core::time::Duration;
use std::io;
use std::net::Shutdown;
use std::time::Instant;

/// The longest wait when the session names no deadline (it always does while
/// forwarding; this only bounds a wait if that ever breaks).
const FALLBACK_WAIT: Duration = Duration::from_secs(60);

/// What one non-blocking read or write did.
enum Did {
    /// Bytes moved (or the call was interrupted): try again at once.
    Moved,
    /// The socket would block: wait for it.
    Blocked,
    /// Nothing to do.
    Nothing,
}

/// Runs the forwarding connection of `hs` until the session closes it.
pub(super) async fn run<R: Io>(hs: &mut Handshake<'_, R>) {
    let io = hs.io;
    let client = hs.client;
    if io.prepare_forwarding(client).is_err() {
        hs.session.forward_client_failed(io.now());
    }
    // The session took what the client sent after the first head (Session::handle_input).
    hs.input.clear();
    // What each socket (client, target) last said would block, until a wait sees it
    // ready: an operation known to block is not tried again (no wasted syscall), only
    // waited for.
    let mut blocked = [Interest::default(); 2];
    let mut target_seen = hs.target_gen;
    let force = hs.session.force();
    // From 0, so that a request granted before this loop started is kept too.
    let mut granted_seen = 0;
    let mut revoked = false;
    loop {
        // A reload under `force` shut the client socket down after marking the connection
        // (see `Io::revoked`), so this check comes before the read that sees the shutdown.
        if force && !revoked {
            if let Some(code) = io.revoked() {
                revoked = true;
                hs.session.forward_revoked(io.now(), code);
            }
        }
        while let Some(intent) = hs.session.poll_intent() {
            match hs.carry_out(intent).await {
                Next::Close => return,
                Next::Continue | Next::Relay(_) | Next::Forward => {}
            }
        }
        if force && hs.session.forward_granted() != granted_seen {
            granted_seen = hs.session.forward_granted();
            io.established(&hs.session);
        }
        if hs.session.is_done() {
            return;
        }
        let now = io.now();
        let active = hs.session.forward_origin_active() && hs.target.is_some();
        if active && !hs.target_nonblocking {
            let ok = hs
                .target
                .as_ref()
                .is_some_and(|t| io.prepare_forwarding(t).is_ok());
            if !ok {
                hs.session.forward_origin_failed(now);
                continue;
            }
            hs.target_nonblocking = true;
        }
        if target_seen != hs.target_gen {
            target_seen = hs.target_gen;
            blocked[1] = Interest::default();
        }
        let mut interests = [Interest::default(); 2];
        let mut deadline = hs.session.poll_timeout();
        let mut moved = false;

        // Writes first: they make room for the reads.
        match write_client(hs, now, blocked[0].write) {
            Did::Moved => moved = true,
            Did::Blocked => interests[0].write = true,
            Did::Nothing => {}
        }
        if hs.session.forward_take_client_shutdown() {
            io.shutdown(client, Shutdown::Write);
        }
        if active {
            match write_origin(hs, now, blocked[1].write) {
                Did::Moved => moved = true,
                Did::Blocked => interests[1].write = true,
                Did::Nothing => {}
            }
        }
        match read(hs, Way::Up, now, &mut deadline, blocked[0].read) {
            Did::Moved => moved = true,
            Did::Blocked => interests[0].read = true,
            Did::Nothing => {}
        }
        if active {
            match read(hs, Way::Down, now, &mut deadline, blocked[1].read) {
                Did::Moved => moved = true,
                Did::Blocked => interests[1].read = true,
                Did::Nothing => {}
            }
        }
        // Whatever would block now is what to wait for.
        blocked = interests;
        if moved || hs.session.is_done() {
            continue;
        }
        let now = io.now();
        // Every forwarding state has a deadline; this bound only guards against a wait
        // without one.
        let deadline = deadline.unwrap_or(now + FALLBACK_WAIT);
        if deadline <= now {
            hs.session.handle_timeout(now);
            continue;
        }
        let target = match hs.target.as_ref() {
            Some(t) if active => t,
            _ => {
                interests[1] = Interest::default();
                client
            }
        };
        match io
            .wait((client, interests[0]), (target, interests[1]), deadline)
            .await
        {
            Ok(ready) => {
                for (b, r) in blocked.iter_mut().zip(ready) {
                    b.read &= !r.read;
                    b.write &= !r.write;
                }
            }
            Err(_) => hs.session.forward_client_failed(io.now()),
        }
    }
}

/// Writes what the session has for the client.
fn write_client<R: Io>(hs: &mut Handshake<'_, R>, now: Instant, blocked: bool) -> Did {
    let bytes = hs.session.forward_to_client();
    if bytes.is_empty() {
        return Did::Nothing;
    }
    if blocked {
        return Did::Blocked;
    }
    match hs.io.try_write(hs.client, bytes) {
        Ok(n) if n > 0 => {
            hs.session.forward_client_written(now, n);
            Did::Moved
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Did::Blocked,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Did::Moved,
        _ => {
            hs.session.forward_client_failed(now);
            Did::Moved
        }
    }
}

/// Writes what the session has for the origin connection.
fn write_origin<R: Io>(hs: &mut Handshake<'_, R>, now: Instant, blocked: bool) -> Did {
    let Some(target) = hs.target.as_ref() else {
        return Did::Nothing;
    };
    let bytes = hs.session.forward_to_origin();
    if bytes.is_empty() {
        return Did::Nothing;
    }
    if blocked {
        return Did::Blocked;
    }
    match hs.io.try_write(target, bytes) {
        Ok(n) if n > 0 => {
            hs.session.forward_origin_written(now, n);
            Did::Moved
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Did::Blocked,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Did::Moved,
        _ => {
            hs.session.forward_origin_failed(now);
            Did::Moved
        }
    }
}

/// Reads from the client (`Up`) or the origin connection (`Down`) into the room the
/// session offers, as far as the request's bandwidth pipes allow (a spent pipe moves the
/// deadline to its refill).
fn read<R: Io>(
    hs: &mut Handshake<'_, R>,
    way: Way,
    now: Instant,
    deadline: &mut Option<Instant>,
    blocked: bool,
) -> Did {
    let max = match hs.session.forward_allowance(way, now) {
        Allowance::Bytes(max) => max,
        Allowance::WaitUntil(t) => {
            *deadline = Some(deadline.map_or(t, |d| d.min(t)));
            return Did::Nothing;
        }
    };
    let io = hs.io;
    let source = match way {
        Way::Up => Some(hs.client),
        Way::Down => hs.target.as_ref(),
    };
    let Some(source) = source else {
        return Did::Nothing;
    };
    let space = match way {
        Way::Up => hs.session.forward_client_space(),
        Way::Down => hs.session.forward_origin_space(),
    };
    let Some(space) = space else {
        return Did::Nothing;
    };
    if blocked {
        return Did::Blocked;
    }
    let len = space.len().min(max.max(1));
    let result = io.try_read(source, space.get_mut(..len).unwrap_or_default());
    match (result, way) {
        (Ok(n), Way::Up) => hs.session.forward_client_read(now, n),
        (Ok(n), Way::Down) => hs.session.forward_origin_read(now, n),
        (Err(e), _) if e.kind() == io::ErrorKind::WouldBlock => return Did::Blocked,
        (Err(e), _) if e.kind() == io::ErrorKind::Interrupted => {}
        (Err(_), Way::Up) => hs.session.forward_client_failed(now),
        (Err(_), Way::Down) => hs.session.forward_origin_failed(now),
    }
    Did::Moved
}
