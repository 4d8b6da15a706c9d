//! The bounded byte queue an [`Exchange`](super::Exchange) holds each direction in, and
//! [`pass`], which moves bytes from one queue to the next without copying when it can.
//!
//! Only buffer bookkeeping lives here: how much each queue may hold is the machine's
//! decision.

/// A buffer's first allocation, grown by doubling up to the phase's cap.
pub(super) const FIRST_ALLOCATION: usize = 4096;

/// A bounded byte queue: data is `bytes[start..end]`.
#[derive(Default)]
pub(super) struct Buf {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    pub(super) fn from_vec(bytes: Vec<u8>) -> Buf {
        let end = bytes.len();
        Buf {
            bytes,
            start: 0,
            end,
        }
    }

    pub(super) fn data(&self) -> &[u8] {
        self.bytes.get(self.start..self.end).unwrap_or_default()
    }

    pub(super) fn len(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(super) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(super) fn extend(&mut self, data: &[u8]) {
        self.compact();
        self.bytes.truncate(self.end);
        self.bytes.extend_from_slice(data);
        self.end = self.bytes.len();
    }

    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Moves the data to the front of the allocation.
    pub(super) fn compact(&mut self) {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Room for a read while the buffer holds less than `cap` bytes; the allocation is at
    /// least `first` bytes (a body is read a whole chunk at a time from the start; a head
    /// grows from [`FIRST_ALLOCATION`]).
    pub(super) fn space(&mut self, cap: usize, first: usize) -> Option<&mut [u8]> {
        if self.len() >= cap {
            return None;
        }
        let first = first.min(cap);
        if self.bytes.len() < first {
            self.compact();
            self.bytes.resize(first, 0);
        }
        if self.end == self.bytes.len() {
            self.compact();
        }
        if self.end == self.bytes.len() {
            let grown = (self.bytes.len() * 2).clamp(FIRST_ALLOCATION, cap.max(1));
            if grown <= self.bytes.len() {
                return None;
            }
            self.bytes.resize(grown, 0);
        }
        let limit = (self.start + cap).min(self.bytes.len());
        self.bytes
            .get_mut(self.end..limit)
            .filter(|s| !s.is_empty())
    }

    pub(super) fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.bytes.len());
    }

    /// Gives the allocation back when empty (an idle keep-alive connection holds none).
    pub(super) fn release(&mut self) {
        if self.is_empty() {
            self.bytes = Vec::new();
        }
    }
}

/// Moves the first `n` bytes of `from` to the end of `to`: the buffers trade places when
/// `to` is empty and `from` holds exactly those bytes (no copy).
pub(super) fn pass(from: &mut Buf, to: &mut Buf, n: usize) {
    if n == 0 {
        return;
    }
    if to.is_empty() && n == from.len() {
        core::mem::swap(from, to);
        return;
    }
    let n = n.min(from.len());
    to.extend(from.data().get(..n).unwrap_or_default());
    from.consume(n);
}
