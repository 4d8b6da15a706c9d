//! SMTP lines as the proxy reads them: framing a line out of a byte stream (with a hard
//! cap), a client command's verb and argument (RFC 5321 section 4.1.1), and one line of a
//! server reply (RFC 5321 section 4.2), including the `AUTH` keyword of an EHLO reply
//! (RFC 4954 section 3).
//!
//! It is not a full SMTP grammar: the proxy only needs to recognise the few verbs it
//! answers itself and the reply codes it waits for. Everything borrows the input.

use nom::bytes::complete::{tag, take_while1, take_while_m_n};
use nom::combinator::{opt, rest};
use nom::sequence::preceded;
use nom::{IResult, Parser};
use triproxy_wire::Status;

/// Hard cap on one line, CRLF included, from either side (RFC 5321 section 4.5.3.1 allows
/// 512 for commands and replies; an `AUTH PLAIN` initial response for a 255-byte user and a
/// 255-byte password needs 697).
pub const MAX_LINE: usize = 1024;

/// A line was longer than the limit before its LF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    /// The limit in force, CRLF included.
    pub limit: usize,
}

/// Frames one line from the front of `input`: the line without its LF (and without a CR
/// before it) and the bytes it occupied. A strict prefix of a line within `limit` is
/// `Partial`; more than `limit` bytes without an LF (or a line longer than `limit`) is
/// [`LineTooLong`].
pub fn next_line(input: &[u8], limit: usize) -> Result<Status<&[u8]>, LineTooLong> {
    let window = input.get(..limit).unwrap_or(input);
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let line = input.get(..lf).unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(Status::Complete {
                value: line,
                consumed: lf + 1,
            })
        }
        None if input.len() >= limit => Err(LineTooLong { limit }),
        None => Ok(Status::need(1)),
    }
}

/// A client command, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO domain`.
    Helo,
    /// `EHLO domain`.
    Ehlo,
    /// `QUIT`.
    Quit,
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 section 4).
    Auth {
        /// The mechanism name as sent.
        mechanism: &'a [u8],
        /// The initial response, when given (`=` stands for an empty one).
        initial: Option<&'a [u8]>,
    },
    /// An empty line or one without a verb.
    Empty,
    /// Any other verb.
    Other,
}

fn verb(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b.is_ascii_alphanumeric()).parse(i)
}

fn spaces(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b == b' ' || b == b'\t').parse(i)
}

fn word(i: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|b: u8| b != b' ' && b != b'\t').parse(i)
}

/// Parses a command line (without its CRLF). Verbs are case-insensitive.
pub fn parse_command(line: &[u8]) -> Command<'_> {
    let Ok((after, v)) = verb(line) else {
        return Command::Empty;
    };
    // The verb ends the line or is followed by white space.
    if !(after.is_empty() || after.first().is_some_and(|&b| b == b' ' || b == b'\t')) {
        return Command::Other;
    }
    let is = |name: &str| v.eq_ignore_ascii_case(name.as_bytes());
    if is("HELO") {
        Command::Helo
    } else if is("EHLO") {
        Command::Ehlo
    } else if is("QUIT") {
        Command::Quit
    } else if is("NOOP") {
        Command::Noop
    } else if is("RSET") {
        Command::Rset
    } else if is("STARTTLS") {
        Command::StartTls
    } else if is("AUTH") {
        let args = (
            opt(preceded(spaces, word)),
            opt(preceded(spaces, word)),
            opt(spaces),
        )
            .parse(after);
        match args {
            Ok((&[], (Some(mechanism), initial, _))) => Command::Auth { mechanism, initial },
            _ => Command::Auth {
                mechanism: b"",
                initial: None,
            },
        }
    } else {
        Command::Other
    }
}

/// One line of a server reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLine<'a> {
    /// The three-digit code (200..=599, first digit 2 to 5).
    pub code: u16,
    /// Whether this is the last line of the reply (`ddd ` or `ddd` alone, not `ddd-`).
    pub last: bool,
    /// The text after the code and its separator.
    pub text: &'a [u8],
}

/// Code digits, separator, text.
type ReplyParts<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);

fn reply_line(i: &[u8]) -> IResult<&[u8], ReplyParts<'_>> {
    (
        take_while_m_n(3, 3, |b: u8| b.is_ascii_digit()),
        opt(nom::branch::alt((tag(&b"-"[..]), tag(&b" "[..])))),
        rest,
    )
        .parse(i)
}

/// Parses a reply line (without its CRLF); `None` when it does not start with a valid
/// code followed by `-`, a space or the end of the line.
pub fn parse_reply_line(line: &[u8]) -> Option<ReplyLine<'_>> {
    let (_, (digits, sep, text)) = reply_line(line).ok()?;
    if sep.is_none() && !text.is_empty() {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(200..600).contains(&code) {
        return None;
    }
    Some(ReplyLine {
        code,
        last: sep != Some(&b"-"[..]),
        text,
    })
}

/// SASL mechanisms a server's EHLO reply offers that the proxy can use upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mechanisms {
    /// `PLAIN` offered.
    pub plain: bool,
    /// `LOGIN` offered.
    pub login: bool,
}

impl Mechanisms {
    /// Adds what one EHLO reply line's text offers: `AUTH mech mech ...` (RFC 4954) or
    /// the pre-standard `AUTH=mech mech ...`. Keywords are case-insensitive.
    pub fn add_ehlo_line(&mut self, text: &[u8]) {
        let keyword = text.get(..4).unwrap_or_default();
        if !keyword.eq_ignore_ascii_case(b"AUTH") {
            return;
        }
        let after = text.get(4..).unwrap_or_default();
        if !after.is_empty() && !matches!(after.first(), Some(b' ' | b'=' | b'\t')) {
            return;
        }
        for mech in after
            .get(1..)
            .unwrap_or_default()
            .split(|&b| b == b' ' || b == b'\t')
        {
            if mech.eq_ignore_ascii_case(b"PLAIN") {
                self.plain = true;
            } else if mech.eq_ignore_ascii_case(b"LOGIN") {
                self.login = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_lines() {
        assert_eq!(
            next_line(b"NOOP\r\nX", 64),
            Ok(Status::Complete {
                value: &b"NOOP"[..],
                consumed: 6
            })
        );
        assert_eq!(
            next_line(b"NOOP\nX", 64).map(|s| s.complete()),
            Ok(Some((&b"NOOP"[..], 5)))
        );
        assert!(next_line(b"NOOP\r", 64).is_ok_and(|s| s.is_partial()));
        assert_eq!(next_line(b"NOOP", 4), Err(LineTooLong { limit: 4 }));
        assert_eq!(next_line(b"NOOP\n", 4), Err(LineTooLong { limit: 4 }));
        assert!(next_line(b"NOO\n", 4).is_ok_and(|s| !s.is_partial()));
    }

    #[test]
    fn commands() {
        assert_eq!(parse_command(b"ehlo x"), Command::Ehlo);
        assert_eq!(parse_command(b"EHLO"), Command::Ehlo);
        assert_eq!(parse_command(b"QUITE"), Command::Other);
        assert_eq!(parse_command(b""), Command::Empty);
        assert_eq!(
            parse_command(b"auth plain AGEAYg== "),
            Command::Auth {
                mechanism: b"plain",
                initial: Some(b"AGEAYg==")
            }
        );
        assert_eq!(
            parse_command(b"AUTH LOGIN"),
            Command::Auth {
                mechanism: b"LOGIN",
                initial: None
            }
        );
        assert_eq!(
            parse_command(b"AUTH"),
            Command::Auth {
                mechanism: b"",
                initial: None
            }
        );
    }

    #[test]
    fn replies() {
        assert_eq!(
            parse_reply_line(b"250-AUTH PLAIN"),
            Some(ReplyLine {
                code: 250,
                last: false,
                text: b"AUTH PLAIN"
            })
        );
        assert_eq!(parse_reply_line(b"235").map(|r| r.last), Some(true));
        assert_eq!(parse_reply_line(b"2350"), None);
        assert_eq!(parse_reply_line(b"150 x"), None);
        assert_eq!(parse_reply_line(b"25"), None);
        let mut m = Mechanisms::default();
        m.add_ehlo_line(b"AUTHX PLAIN");
        m.add_ehlo_line(b"SIZE 100 LOGIN");
        assert_eq!(m, Mechanisms::default());
        m.add_ehlo_line(b"auth=login cram-md5");
        assert_eq!(
            m,
            Mechanisms {
                plain: false,
                login: true
            }
        );
        m.add_ehlo_line(b"AUTH DIGEST-MD5 PLAIN");
        assert!(m.plain);
    }
}
