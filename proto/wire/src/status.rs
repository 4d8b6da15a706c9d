//! The answer of every incremental parser: a complete value, or "need more bytes".

use core::num::NonZeroUsize;

/// Result of parsing a message from the front of a byte slice.
///
/// A strict prefix of a valid message is never an error: it is [`Status::Partial`].
/// Errors are reported by the parser's own `Result` so that each protocol keeps a typed
/// error enum.
///
/// ```
/// use triproxy_wire::Status;
/// let s: Status<u8> = Status::Complete { value: 7, consumed: 1 };
/// assert_eq!(s.complete(), Some((7, 1)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole message was parsed from the first `consumed` bytes.
    Complete {
        /// The parsed message (it may borrow the input).
        value: T,
        /// How many input bytes the message occupied.
        consumed: usize,
    },
    /// The input is a strict prefix of a message. `needed` is the minimum number of further
    /// bytes required, when the parser can tell.
    Partial {
        /// At least this many more bytes are needed, if known.
        needed: Option<NonZeroUsize>,
    },
}

impl<T> Status<T> {
    /// A partial status that needs at least `n` more bytes (`n == 0` means "unknown").
    pub fn need(n: usize) -> Self {
        Status::Partial {
            needed: NonZeroUsize::new(n),
        }
    }

    /// The value and consumed count, if complete.
    pub fn complete(self) -> Option<(T, usize)> {
        match self {
            Status::Complete { value, consumed } => Some((value, consumed)),
            Status::Partial { .. } => None,
        }
    }

    /// Whether more input is needed.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial { .. })
    }

    /// Maps the value of a complete status.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Status<U> {
        match self {
            Status::Complete { value, consumed } => Status::Complete {
                value: f(value),
                consumed,
            },
            Status::Partial { needed } => Status::Partial { needed },
        }
    }
}
