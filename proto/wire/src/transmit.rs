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
