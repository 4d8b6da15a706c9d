//! The machines' queue of bytes for the peer: encoded messages in fixed-size [`Transmit`]s,
//! consecutive messages packed into one transmit while they fit.
//!
//! Internal plumbing; not a codec (that is `v4` / `v5`) and not a protocol rule.

use crate::{v4, v5};
use arrayvec::ArrayVec;
use bytes::BufMut;
use triproxy_wire::{Transmit, MAX_TRANSMIT};

/// A message the machines can queue.
pub(crate) trait Message {
    /// Its exact encoded size.
    fn len(&self) -> usize;
    /// Writes it; `out` has at least `len()` bytes of room.
    fn write(&self, out: &mut impl BufMut);
}

macro_rules! message {
    ($($t:ty),* $(,)?) => {$(
        impl Message for $t {
            fn len(&self) -> usize {
                self.encoded_len()
            }
            fn write(&self, out: &mut impl BufMut) {
                self.encode(out)
            }
        }
    )*};
}

message!(
    v4::Request,
    v4::Reply,
    v5::Greeting,
    v5::MethodSelection,
    v5::Credentials,
    v5::AuthReply,
    v5::Request,
    v5::Reply,
);

/// Pending transmits, oldest first. Four slots hold a whole handshake of either side (a
/// server sends at most four messages, a client three), so a push only fails if a driver
/// never drains; the message is then dropped and `push` says so.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: ArrayVec<Transmit, 4>,
}

impl Outbox {
    /// Encodes `msg` at the end of the queue, in place (into the last transmit if it fits
    /// there, else into a new one); false if it could not be queued.
    pub(crate) fn push(&mut self, msg: &impl Message) -> bool {
        let len = msg.len();
        if len > MAX_TRANSMIT {
            return false;
        }
        let fits_last = self.queue.last().is_some_and(|t| t.remaining() >= len);
        if !fits_last && self.queue.try_push(Transmit::new()).is_err() {
            return false;
        }
        let Some(last) = self.queue.last_mut() else {
            return false;
        };
        last.append_with(len, |mut room| msg.write(&mut room))
            .is_ok()
    }

    /// The oldest transmit.
    pub(crate) fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop_at(0)
    }
}
