//! The bits of IMAP4rev1 syntax (RFC 3501 section 9) the proxy reads and writes before
//! login: tags, `astring` arguments (atom or quoted string), and capability lists.
//!
//! Literals (`{n}`) are recognised only to be refused: a login with a literal needs a
//! continuation round trip that 3proxy does not offer either.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while1, take_while_m_n};
use nom::multi::fold_many0;
use nom::sequence::{delimited, preceded};
use nom::{IResult, Parser};

/// The longest tag accepted (3proxy keeps 63 bytes).
pub const MAX_TAG_LEN: usize = 63;

/// ASTRING-CHAR of RFC 3501, plus 8-bit bytes (UTF-8 user names, as servers accept them).
fn is_astring_char(b: u8) -> bool {
    b > 0x20 && b != 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
}

/// Whether `t` is a valid tag: 1 to 63 ASTRING-CHARs other than `+`.
pub(crate) fn is_tag(t: &[u8]) -> bool {
    !t.is_empty() && t.len() <= MAX_TAG_LEN && t.iter().all(|&b| is_astring_char(b) && b != b'+')
}

fn quoted_char(i: &[u8]) -> IResult<&[u8], u8> {
    alt((
        preceded(
            tag(&b"\\"[..]),
            take_while_m_n(1, 1, |b| b == b'"' || b == b'\\'),
        ),
        take_while_m_n(1, 1, |b| !matches!(b, b'"' | b'\\' | b'\r' | b'\n' | 0)),
    ))
    .map(|s: &[u8]| s.first().copied().unwrap_or(0))
    .parse(i)
}

fn quoted(i: &[u8]) -> IResult<&[u8], Vec<u8>> {
    delimited(
        tag(&b"\""[..]),
        fold_many0(quoted_char, Vec::new, |mut v, b| {
            v.push(b);
            v
        }),
        tag(&b"\""[..]),
    )
    .parse(i)
}

fn atom(i: &[u8]) -> IResult<&[u8], Vec<u8>> {
    take_while1(is_astring_char).map(<[u8]>::to_vec).parse(i)
}

/// Why an argument could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgError {
    Syntax,
    Literal,
}

/// One `astring` at the front of `i`, and the rest.
pub(crate) fn astring(i: &[u8]) -> Result<(&[u8], Vec<u8>), ArgError> {
    if i.first() == Some(&b'{') {
        return Err(ArgError::Literal);
    }
    alt((quoted, atom)).parse(i).map_err(|_| ArgError::Syntax)
}

/// `user SP password` and nothing after (the arguments of LOGIN).
pub(crate) fn login_args(i: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ArgError> {
    let (rest, user) = astring(i)?;
    let rest = rest.strip_prefix(b" ").ok_or(ArgError::Syntax)?;
    let (rest, password) = astring(rest)?;
    if !rest.is_empty() {
        return Err(ArgError::Syntax);
    }
    Ok((user, password))
}

/// `value` as an IMAP string: an atom when it can be one, else a quoted string; `None` if
/// it holds NUL, CR or LF (only a literal could carry those).
pub(crate) fn encode_astring(value: &[u8]) -> Option<Vec<u8>> {
    if value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return None;
    }
    if !value.is_empty() && value.iter().all(|&b| is_astring_char(b) && b.is_ascii()) {
        return Some(value.to_vec());
    }
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    Some(out)
}

/// Whether a capability list (a `* CAPABILITY` line, or a greeting with a `[CAPABILITY
/// ...]` code) names `cap`, ignoring case.
pub(crate) fn has_capability(line: &[u8], cap: &[u8]) -> bool {
    line.split(|&b| matches!(b, b' ' | b'[' | b']'))
        .any(|word| word.eq_ignore_ascii_case(cap))
}

/// The capability code of a greeting, `[CAPABILITY ...]`, if it has one.
pub(crate) fn greeting_capabilities(line: &[u8]) -> Option<&[u8]> {
    const CODE: &[u8] = b"[CAPABILITY ";
    let start = line
        .windows(CODE.len())
        .position(|w| w.eq_ignore_ascii_case(CODE))?;
    let rest = line.get(start + CODE.len()..)?;
    let end = rest.iter().position(|&b| b == b']').unwrap_or(rest.len());
    rest.get(..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(
            login_args(b"alice@h secret"),
            Ok((b"alice@h".to_vec(), b"secret".to_vec()))
        );
        assert_eq!(
            login_args(br#""al ice@h" "p\"w\\d""#),
            Ok((b"al ice@h".to_vec(), br#"p"w\d"#.to_vec()))
        );
        assert_eq!(login_args(b"\"\" x"), Ok((Vec::new(), b"x".to_vec())));
        assert_eq!(login_args(b"alice"), Err(ArgError::Syntax));
        assert_eq!(login_args(b"a b c"), Err(ArgError::Syntax));
        assert_eq!(login_args(b"a {5}"), Err(ArgError::Literal));
        assert_eq!(login_args(b"\"a b"), Err(ArgError::Syntax));
    }

    #[test]
    fn encoding_round_trips() {
        for v in [
            &b"alice"[..],
            b"a b",
            b"p\"w\\",
            b"",
            b"\xc3\xa9t\xc3\xa9",
            b"x]y",
        ] {
            let e = encode_astring(v).unwrap();
            let (rest, back) = astring(&e).unwrap();
            assert!(rest.is_empty());
            assert_eq!(back, v);
        }
        assert_eq!(encode_astring(b"a\r\nb"), None);
    }

    #[test]
    fn tags_and_capabilities() {
        assert!(is_tag(b"a001"));
        assert!(!is_tag(b"+a"));
        assert!(!is_tag(b""));
        assert!(!is_tag(&[b'a'; 64]));
        let g = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN STARTTLS] Dovecot ready.";
        let caps = greeting_capabilities(g).unwrap();
        assert!(has_capability(caps, b"auth=plain"));
        assert!(has_capability(caps, b"STARTTLS"));
        assert!(!has_capability(caps, b"AUTH=LOGIN"));
        assert_eq!(greeting_capabilities(b"* OK ready"), None);
    }
}
