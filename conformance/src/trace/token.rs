//! Splitting a step body into tokens: hex bytes, strings, repeats (`*n`), harness values
//! (`{name}`), wildcards (`??`, `!xx`), captures (`<addr:name>`), `|`, `=>` and words.
//!
//! Only the lexical level is here; what a token sequence means is the parser's.

use super::{ParseErrorKind, MAX_STEP_BYTES};
use core::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CaptureKind {
    Addr,
    PortIp4,
}

/// A token of a step body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok {
    /// Literal bytes (hex or string, repeats applied).
    Bytes(Vec<u8>),
    /// `{name}`.
    Value(String),
    /// `??` (count).
    Any(usize),
    /// `!XX`.
    Not(u8),
    /// `...`.
    Rest,
    /// `<head>`.
    Head,
    /// `<addr>`, `<addr:name>`, `<port-ip4>`, `<port-ip4:name>`.
    Capture(CaptureKind, Option<String>),
    /// `|`.
    Pipe,
    /// `=>`.
    Arrow,
    /// Any other bare word (`close`, `connect`, `skip`, header values).
    Word(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Bytes(b) => {
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Tok::Value(v) => write!(f, "{{{v}}}"),
            Tok::Any(n) => write!(f, "??*{n}"),
            Tok::Not(b) => write!(f, "!{b:02x}"),
            Tok::Rest => f.write_str("..."),
            Tok::Head => f.write_str("<head>"),
            Tok::Capture(k, n) => {
                let k = match k {
                    CaptureKind::Addr => "addr",
                    CaptureKind::PortIp4 => "port-ip4",
                };
                match n {
                    Some(n) => write!(f, "<{k}:{n}>"),
                    None => write!(f, "<{k}>"),
                }
            }
            Tok::Pipe => f.write_str("|"),
            Tok::Arrow => f.write_str("=>"),
            Tok::Word(w) => f.write_str(w),
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
}

/// Splits a step body into tokens; stops at a `#` outside quotes.
pub(super) fn tokenize(body: &str) -> Result<Vec<Tok>, ParseErrorKind> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else {
            return Ok(out);
        };
        match c {
            '#' => return Ok(out),
            '|' => {
                out.push(Tok::Pipe);
                rest = rest.get(1..).unwrap_or_default();
            }
            '"' => {
                let (bytes, after) = string(rest.get(1..).unwrap_or_default())?;
                let (n, after) = repeat(after)?;
                if bytes.len().saturating_mul(n) > MAX_STEP_BYTES {
                    return Err(ParseErrorKind::StepTooLong);
                }
                out.push(Tok::Bytes(bytes.repeat(n)));
                rest = after;
            }
            '{' => {
                let end = rest
                    .find('}')
                    .ok_or(ParseErrorKind::BadToken(rest.to_string()))?;
                let name = rest.get(1..end).unwrap_or_default();
                if !is_name(name) {
                    return Err(ParseErrorKind::BadToken(format!("{{{name}}}")));
                }
                out.push(Tok::Value(name.to_string()));
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or(ParseErrorKind::BadToken(rest.to_string()))?;
                let inner = rest.get(1..end).unwrap_or_default();
                if inner == "head" {
                    out.push(Tok::Head);
                    rest = rest.get(end + 1..).unwrap_or_default();
                    continue;
                }
                let (kind, name) = match inner.split_once(':') {
                    Some((k, n)) if is_name(n) => (k, Some(n.to_string())),
                    Some(_) => return Err(ParseErrorKind::BadToken(format!("<{inner}>"))),
                    None => (inner, None),
                };
                let kind = match kind {
                    "addr" => CaptureKind::Addr,
                    "port-ip4" => CaptureKind::PortIp4,
                    _ => return Err(ParseErrorKind::BadToken(format!("<{inner}>"))),
                };
                out.push(Tok::Capture(kind, name));
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '"' | '#' | '|' | '{' | '<'))
                    .unwrap_or(rest.len());
                let word = rest.get(..end).unwrap_or_default();
                rest = rest.get(end..).unwrap_or_default();
                out.push(word_token(word)?);
            }
        }
    }
}

fn word_token(word: &str) -> Result<Tok, ParseErrorKind> {
    if word == "=>" {
        return Ok(Tok::Arrow);
    }
    if word == "..." {
        return Ok(Tok::Rest);
    }
    let (base, count) = match word.split_once('*') {
        Some((b, n)) => {
            let n: usize = n
                .parse()
                .ok()
                .filter(|n| (1..=MAX_STEP_BYTES).contains(n))
                .ok_or_else(|| ParseErrorKind::BadRepeat(word.to_string()))?;
            (b, Some(n))
        }
        None => (word, None),
    };
    if base == "??" {
        return Ok(Tok::Any(count.unwrap_or(1)));
    }
    if let Some(hex) = base.strip_prefix('!') {
        if count.is_some() {
            return Err(ParseErrorKind::BadRepeat(word.to_string()));
        }
        return hex_byte(hex)
            .map(Tok::Not)
            .ok_or_else(|| ParseErrorKind::BadToken(word.to_string()));
    }
    if let Some(b) = hex_byte(base) {
        return Ok(Tok::Bytes(vec![b; count.unwrap_or(1)]));
    }
    if count.is_some() || base.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ParseErrorKind::BadToken(word.to_string()));
    }
    if base.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=' | ':' | '[' | ']' | '/')
    }) {
        return Ok(Tok::Word(base.to_string()));
    }
    Err(ParseErrorKind::BadToken(word.to_string()))
}

fn hex_byte(s: &str) -> Option<u8> {
    if s.len() == 2 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        u8::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// Parses a string body after the opening quote; returns its bytes and the text after the
/// closing quote.
fn string(s: &str) -> Result<(Vec<u8>, &str), ParseErrorKind> {
    let mut out = Vec::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, s.get(i + 1..).unwrap_or_default())),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    return Err(ParseErrorKind::UnterminatedString);
                };
                match e {
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    '0' => out.push(0),
                    'x' => {
                        let hi = chars.next().map(|(_, c)| c);
                        let lo = chars.next().map(|(_, c)| c);
                        let hex: String = [hi, lo].into_iter().flatten().collect();
                        let b = hex_byte(&hex)
                            .ok_or_else(|| ParseErrorKind::BadEscape(format!("\\x{hex}")))?;
                        out.push(b);
                    }
                    other => return Err(ParseErrorKind::BadEscape(format!("\\{other}"))),
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        if out.len() > MAX_STEP_BYTES {
            return Err(ParseErrorKind::StepTooLong);
        }
    }
    Err(ParseErrorKind::UnterminatedString)
}

/// An optional `*N` right after a string.
fn repeat(s: &str) -> Result<(usize, &str), ParseErrorKind> {
    let Some(after) = s.strip_prefix('*') else {
        return Ok((1, s));
    };
    let end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let digits = after.get(..end).unwrap_or_default();
    let n: usize = digits
        .parse()
        .ok()
        .filter(|n| (1..=MAX_STEP_BYTES).contains(n))
        .ok_or_else(|| ParseErrorKind::BadRepeat(format!("*{digits}")))?;
    Ok((n, after.get(end..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(
            tokenize(r#" 05 "a\x01"*2 {echo.port} ??*3 !00 <addr:bind> | close => skip "x" # c"#)
                .unwrap(),
            vec![
                Tok::Bytes(vec![5]),
                Tok::Bytes(b"a\x01a\x01".to_vec()),
                Tok::Value("echo.port".into()),
                Tok::Any(3),
                Tok::Not(0),
                Tok::Capture(CaptureKind::Addr, Some("bind".into())),
                Tok::Pipe,
                Tok::Word("close".into()),
                Tok::Arrow,
                Tok::Word("skip".into()),
                Tok::Bytes(b"x".to_vec()),
            ]
        );
        assert_eq!(tokenize("61*3").unwrap(), vec![Tok::Bytes(b"aaa".to_vec())]);
        assert_eq!(
            tokenize("\"#|\"").unwrap(),
            vec![Tok::Bytes(b"#|".to_vec())]
        );
    }
}
