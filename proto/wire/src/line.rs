//! One line at the front of a byte stream, found with a hard cap on its length.
//!
//! Lines end at LF; a CR before it is dropped from the text (RFC 1939 and RFC 3501 ask for
//! CRLF, 3proxy and many clients accept a bare LF). This module only cuts lines: what a line
//! means is the machine's business. Shared by the POP3 and IMAP proxies' machines.

use nom::bytes::streaming::{tag, take_till};
use nom::sequence::terminated;
use nom::{IResult, Parser};

/// What the front of the input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line: its text without CR LF, and how many bytes it took with them.
    Complete {
        /// The line without its CR LF.
        text: &'a [u8],
        /// Bytes it took, CR LF included.
        consumed: usize,
    },
    /// No LF yet, and fewer than `cap` bytes: more input may finish the line.
    Partial,
    /// `cap` bytes and still no LF.
    TooLong,
}

fn until_lf(input: &[u8]) -> IResult<&[u8], &[u8]> {
    terminated(take_till(|b| b == b'\n'), tag(&b"\n"[..])).parse(input)
}

/// The first line of `input`, if it ends (LF included) within `cap` bytes.
pub fn line(input: &[u8], cap: usize) -> Line<'_> {
    let window = input.get(..cap.min(input.len())).unwrap_or_default();
    match until_lf(window) {
        Ok((rest, text)) => Line::Complete {
            text: text.strip_suffix(b"\r").unwrap_or(text),
            consumed: window.len() - rest.len(),
        },
        Err(_) if input.len() >= cap => Line::TooLong,
        Err(_) => Line::Partial,
    }
}

/// Whether `text` starts with `prefix`, ignoring ASCII case.
pub fn starts_with_ci(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_lines() {
        assert_eq!(
            line(b"USER a\r\nPASS", 64),
            Line::Complete {
                text: b"USER a",
                consumed: 8
            }
        );
        assert_eq!(
            line(b"x\n", 2),
            Line::Complete {
                text: b"x",
                consumed: 2
            }
        );
        assert_eq!(line(b"USER", 64), Line::Partial);
        assert_eq!(line(b"xx", 2), Line::TooLong);
        assert_eq!(line(b"xxx\n", 3), Line::TooLong);
        assert_eq!(line(b"", 3), Line::Partial);
    }
}
