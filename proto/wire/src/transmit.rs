//! Bounded output buffers that machines hand to their driver.

use arrayvec::ArrayVec;
use core::fmt;
use core::ops::Deref;

/// The largest single message any triproxy handshake machine emits (a SOCKS4a request with a
/// 255-byte user id and a 255-byte host name is 520 bytes; an RFC 1929 request is 513).
pub const MAX_TRANSMIT: usize = 528;

/// Bytes a machine wants written to its peer, in a fixed-size buffer so that emitting a
/// handshake reply never allocates.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Transmit {
    buf: ArrayVec<u8, MAX_TRANSMIT>,
}

/// A message did not fit into a [`Transmit`]; `required` is its full size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransmitFull {
    /// Bytes the message needed in total.
    pub required: usize,
}

impl Transmit {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes, or reports how much room the whole message would need.
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), TransmitFull> {
        self.buf
            .try_extend_from_slice(bytes)
            .map_err(|_| TransmitFull {
                required: self.buf.len() + bytes.len(),
            })
    }

    /// Appends one byte.
    pub fn push(&mut self, byte: u8) -> Result<(), TransmitFull> {
        self.buf.try_push(byte).map_err(|_| TransmitFull {
            required: self.buf.len() + 1,
        })
    }

    /// Appends `len` bytes that `fill` writes in place (it gets exactly `len` bytes of
    /// room, zeroed), or reports how much room they would need. Nothing message-sized is
    /// built on the caller's stack: machines queue their replies at the deepest point of a
    /// handshake, and every stack page touched there stays with an idle thread-per-
    /// connection tunnel.
    pub fn append_with(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), TransmitFull> {
        static ZEROS: [u8; MAX_TRANSMIT] = [0; MAX_TRANSMIT];
        let start = self.buf.len();
        let full = TransmitFull {
            required: start + len,
        };
        let zeros = ZEROS.get(..len).ok_or(full)?;
        self.buf.try_extend_from_slice(zeros).map_err(|_| full)?;
        if let Some(room) = self.buf.get_mut(start..) {
            fill(room);
        }
        Ok(())
    }

    /// Room left for more bytes.
    pub fn remaining(&self) -> usize {
        self.buf.remaining_capacity()
    }

    /// Builds a transmit from a slice.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, TransmitFull> {
        let mut t = Self::new();
        t.extend(bytes)?;
        Ok(t)
    }

    /// The bytes to send.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl Deref for Transmit {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transmit(")?;
        for b in self.buf.iter() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_with_fills_in_place_and_refuses_what_does_not_fit() {
        let mut t = Transmit::from_slice(b"ab").unwrap();
        t.append_with(3, |room| {
            assert_eq!(room, [0, 0, 0]);
            room.copy_from_slice(b"cde");
        })
        .unwrap();
        assert_eq!(t.as_bytes(), b"abcde");
        assert_eq!(t.remaining(), MAX_TRANSMIT - 5);
        let err = t
            .append_with(MAX_TRANSMIT - 4, |_| panic!("no room"))
            .unwrap_err();
        assert_eq!(err.required, MAX_TRANSMIT + 1);
        assert_eq!(t.as_bytes(), b"abcde", "unchanged");
        t.append_with(MAX_TRANSMIT - 5, |room| room.fill(7))
            .unwrap();
        assert_eq!(t.remaining(), 0);
    }
}
