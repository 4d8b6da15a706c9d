//! Matching received bytes against a trace's alternatives, and showing the difference when
//! nothing matches: expected pattern and received bytes as hex, the first differing offset
//! marked.
//!
//! Pure functions over byte slices; waiting for bytes is [`crate::replay`]'s job.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use triproxy_wire::{DomainName, TargetAddr};

/// A pattern item with harness values already substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// This byte.
    Byte(u8),
    /// Any byte.
    Any,
    /// Any byte but this one.
    Not(u8),
    /// A SOCKS5 address (ATYP 01, 03 or 04, address, port), captured under a name if given.
    Addr(Option<String>),
    /// SOCKS4 DSTPORT DSTIP, captured under a name if given.
    PortIp4(Option<String>),
    /// Everything until the stream ends or goes quiet.
    Rest,
    /// Everything up to and including the first CRLF CRLF (at most [`MAX_HEAD`] bytes).
    Head,
}

/// Longest `<head>` matched.
pub const MAX_HEAD: usize = 16 * 1024;

/// What [`eval`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Eval {
    /// The pattern matched the first `consumed` bytes.
    Matched {
        /// Bytes used.
        consumed: usize,
        /// Addresses captured, by name.
        captures: BTreeMap<String, TargetAddr>,
    },
    /// The bytes so far are a prefix of a match.
    NeedMore,
    /// The bytes cannot match.
    Mismatch {
        /// First offset that differs (may be the end of the received bytes).
        offset: usize,
        /// Why, in words.
        why: String,
    },
}

/// Matches `items` against the front of `buf`. `more` says whether more bytes may still
/// come: if not, a pattern longer than `buf` is a mismatch and [`Resolved::Rest`] takes
/// everything.
pub fn eval(items: &[Resolved], buf: &[u8], more: bool) -> Eval {
    let mut pos = 0usize;
    let mut captures = BTreeMap::new();
    let short = |pos: usize, what: String| {
        if more {
            Eval::NeedMore
        } else {
            Eval::Mismatch {
                offset: pos,
                why: format!("expected {what}, but nothing more was received"),
            }
        }
    };
    for item in items {
        match item {
            Resolved::Byte(b) => match buf.get(pos) {
                None => return short(pos, format!("{b:02x}")),
                Some(x) if x == b => pos += 1,
                Some(x) => {
                    return Eval::Mismatch {
                        offset: pos,
                        why: format!("expected {b:02x}, received {x:02x}"),
                    }
                }
            },
            Resolved::Any => {
                if buf.get(pos).is_none() {
                    return short(pos, "a byte".into());
                }
                pos += 1;
            }
            Resolved::Not(b) => match buf.get(pos) {
                None => return short(pos, format!("a byte other than {b:02x}")),
                Some(x) if x == b => {
                    return Eval::Mismatch {
                        offset: pos,
                        why: format!("expected any byte but {b:02x}, received {x:02x}"),
                    }
                }
                Some(_) => pos += 1,
            },
            Resolved::Addr(name) => {
                let rest = buf.get(pos..).unwrap_or_default();
                match socks5_addr(rest) {
                    AddrParse::Short => return short(pos, "a SOCKS5 address".into()),
                    AddrParse::Bad { offset, why } => {
                        return Eval::Mismatch {
                            offset: pos + offset,
                            why,
                        }
                    }
                    AddrParse::Ok(addr, len) => {
                        if let Some(n) = name {
                            captures.insert(n.clone(), *addr);
                        }
                        pos += len;
                    }
                }
            }
            Resolved::PortIp4(name) => {
                let Some(b) = buf.get(pos..pos + 6) else {
                    return short(buf.len(), "SOCKS4 DSTPORT and DSTIP (6 bytes)".into());
                };
                if let Some(n) = name {
                    captures.insert(n.clone(), port_ip4(b));
                }
                pos += 6;
            }
            Resolved::Head => {
                let rest = buf.get(pos..).unwrap_or_default();
                match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(i) if i + 4 <= MAX_HEAD => pos += i + 4,
                    Some(_) => {
                        return Eval::Mismatch {
                            offset: pos + MAX_HEAD,
                            why: format!("no end of head (CRLF CRLF) within {MAX_HEAD} bytes"),
                        }
                    }
                    None if rest.len() >= MAX_HEAD => {
                        return Eval::Mismatch {
                            offset: pos + MAX_HEAD,
                            why: format!("no end of head (CRLF CRLF) within {MAX_HEAD} bytes"),
                        }
                    }
                    None => return short(buf.len(), "the end of the head (CRLF CRLF)".into()),
                }
            }
            Resolved::Rest => {
                if more {
                    return Eval::NeedMore;
                }
                pos = pos.max(buf.len());
            }
        }
    }
    Eval::Matched {
        consumed: pos,
        captures,
    }
}

enum AddrParse {
    Short,
    Bad { offset: usize, why: String },
    Ok(Box<TargetAddr>, usize),
}

fn socks5_addr(b: &[u8]) -> AddrParse {
    let Some(&atyp) = b.first() else {
        return AddrParse::Short;
    };
    let (start, len) = match atyp {
        1 => (1, 4),
        4 => (1, 16),
        3 => match b.get(1) {
            None => return AddrParse::Short,
            Some(0) => {
                return AddrParse::Bad {
                    offset: 1,
                    why: "a domain BND.ADDR of length 0".into(),
                }
            }
            Some(&n) => (2, usize::from(n)),
        },
        other => {
            return AddrParse::Bad {
                offset: 0,
                why: format!("expected ATYP 01, 03 or 04, received {other:02x}"),
            }
        }
    };
    let total = start + len + 2;
    let (Some(addr), Some(port)) = (b.get(start..start + len), b.get(start + len..total)) else {
        return AddrParse::Short;
    };
    let port = u16::from_be_bytes([
        port.first().copied().unwrap_or(0),
        port.get(1).copied().unwrap_or(0),
    ]);
    let target = if let Ok(o) = <[u8; 4]>::try_from(addr).map(Ipv4Addr::from) {
        if atyp == 1 {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V4(o), port))
        } else {
            domain(addr, port)
        }
    } else if let Ok(o) = <[u8; 16]>::try_from(addr).map(Ipv6Addr::from) {
        if atyp == 4 {
            TargetAddr::Ip(SocketAddr::new(IpAddr::V6(o), port))
        } else {
            domain(addr, port)
        }
    } else {
        domain(addr, port)
    };
    AddrParse::Ok(Box::new(target), total)
}

fn domain(name: &[u8], port: u16) -> TargetAddr {
    match DomainName::new(name) {
        Ok(d) => TargetAddr::Domain(d, port),
        // A name with a NUL cannot be a DomainName; keep the port so a peer can still try.
        Err(_) => TargetAddr::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)),
    }
}

fn port_ip4(b: &[u8]) -> TargetAddr {
    let port = u16::from_be_bytes([
        b.first().copied().unwrap_or(0),
        b.get(1).copied().unwrap_or(0),
    ]);
    let ip = b
        .get(2..6)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from);
    TargetAddr::Ip(SocketAddr::new(IpAddr::V4(ip), port))
}

/// The pattern as text, values shown as the bytes they resolved to.
pub fn render_items(items: &[Resolved]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = match item {
            Resolved::Byte(b) => write!(out, "{b:02x}"),
            Resolved::Any => write!(out, "??"),
            Resolved::Not(b) => write!(out, "!{b:02x}"),
            Resolved::Addr(None) => write!(out, "<addr>"),
            Resolved::Addr(Some(n)) => write!(out, "<addr:{n}>"),
            Resolved::PortIp4(None) => write!(out, "<port-ip4>"),
            Resolved::PortIp4(Some(n)) => write!(out, "<port-ip4:{n}>"),
            Resolved::Rest => write!(out, "..."),
            Resolved::Head => write!(out, "<head>"),
        };
    }
    out
}

/// Bytes as hex, 16 a row with the row's offset, the byte at `mark` in brackets; printable
/// ASCII is shown beside each row.
pub fn hex_dump(bytes: &[u8], mark: Option<usize>) -> String {
    if bytes.is_empty() {
        return match mark {
            Some(_) => "(nothing) [^ offset 0]".into(),
            None => "(nothing)".into(),
        };
    }
    let mut out = String::new();
    for (row, chunk) in bytes.chunks(16).enumerate() {
        if row > 0 {
            out.push('\n');
        }
        let base = row * 16;
        let _ = write!(out, "{base:04x}:");
        for (i, b) in chunk.iter().enumerate() {
            if Some(base + i) == mark {
                let _ = write!(out, " [{b:02x}]");
            } else {
                let _ = write!(out, " {b:02x}");
            }
        }
        out.push_str("  |");
        for b in chunk {
            out.push(if b.is_ascii_graphic() || *b == b' ' {
                char::from(*b)
            } else {
                '.'
            });
        }
        out.push('|');
    }
    if let Some(m) = mark {
        if m >= bytes.len() {
            let _ = write!(out, " [^ offset {m}: end of received bytes]");
        }
    }
    out
}

/// Why a step's expectation failed: what each alternative wanted and what came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    /// Each alternative as text (values resolved).
    pub expected: Vec<String>,
    /// The bytes received (that the step looked at).
    #[serde(serialize_with = "hex_string")]
    pub received: Vec<u8>,
    /// First differing offset of the closest alternative.
    pub offset: usize,
    /// The closest alternative's reason, in words.
    pub detail: String,
}

fn hex_string<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{b:02x}");
    }
    s.serialize_str(&out)
}

impl Diff {
    /// Multi-line text, each line indented by `indent`.
    pub fn render(&self, indent: &str) -> String {
        let mut out = String::new();
        for (i, e) in self.expected.iter().enumerate() {
            let label = if i == 0 { "expected:" } else { "      or:" };
            let _ = writeln!(out, "{indent}{label} {e}");
        }
        for (i, line) in hex_dump(&self.received, Some(self.offset))
            .lines()
            .enumerate()
        {
            let label = if i == 0 { "received:" } else { "         " };
            let _ = writeln!(out, "{indent}{label} {line}");
        }
        let _ = write!(
            out,
            "{indent}first difference at offset {}: {}",
            self.offset, self.detail
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Resolved::*;

    #[test]
    fn bytes_and_wildcards() {
        let p = [Byte(5), Not(0), Any];
        assert_eq!(eval(&p, &[5], true), Eval::NeedMore);
        assert!(matches!(
            eval(&p, &[5, 1, 9, 7], true),
            Eval::Matched { consumed: 3, .. }
        ));
        assert_eq!(
            eval(&p, &[5, 0, 9], true),
            Eval::Mismatch {
                offset: 1,
                why: "expected any byte but 00, received 00".into()
            }
        );
        assert!(matches!(
            eval(&p, &[5], false),
            Eval::Mismatch { offset: 1, .. }
        ));
    }

    #[test]
    fn addresses_are_captured() {
        let p = [Byte(5), Addr(Some("b".into()))];
        let Eval::Matched { consumed, captures } =
            eval(&p, &[5, 1, 127, 0, 0, 1, 0x1f, 0x90, 0xaa], true)
        else {
            panic!()
        };
        assert_eq!(consumed, 8);
        assert_eq!(captures["b"].to_string(), "127.0.0.1:8080");
        let Eval::Matched { captures, .. } = eval(&p, &[5, 3, 1, b'x', 0, 80], true) else {
            panic!()
        };
        assert_eq!(captures["b"].to_string(), "x:80");
        assert_eq!(eval(&p, &[5, 4, 0, 0], true), Eval::NeedMore);
        assert!(matches!(
            eval(&p, &[5, 2], true),
            Eval::Mismatch { offset: 1, .. }
        ));
        let q = [PortIp4(Some("p".into()))];
        let Eval::Matched { captures, .. } = eval(&q, &[0, 80, 10, 0, 0, 1], false) else {
            panic!()
        };
        assert_eq!(captures["p"].to_string(), "10.0.0.1:80");
    }

    #[test]
    fn rest_waits_for_the_end() {
        let p = [Byte(5), Rest];
        assert_eq!(eval(&p, &[5, 1, 2], true), Eval::NeedMore);
        assert!(matches!(
            eval(&p, &[5, 1, 2], false),
            Eval::Matched { consumed: 3, .. }
        ));
    }

    proptest::proptest! {
        #[test]
        fn eval_stays_within_the_input(
            buf in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            kinds in proptest::collection::vec(0u8..6, 0..8),
            more in proptest::prelude::any::<bool>(),
        ) {
            let items: Vec<Resolved> = kinds
                .iter()
                .map(|k| match k {
                    0 => Byte(5),
                    1 => Any,
                    2 => Not(0),
                    3 => Addr(Some("a".into())),
                    4 => PortIp4(None),
                    _ => Rest,
                })
                .collect();
            match eval(&items, &buf, more) {
                Eval::Matched { consumed, .. } => proptest::prop_assert!(consumed <= buf.len()),
                Eval::Mismatch { offset, .. } => proptest::prop_assert!(offset <= buf.len()),
                Eval::NeedMore => proptest::prop_assert!(more),
            }
            let _ = hex_dump(&buf, Some(buf.len()));
        }
    }

    #[test]
    fn dump_marks_the_offset() {
        assert_eq!(hex_dump(&[5, 1, 0x41], Some(1)), "0000: 05 [01] 41  |..A|");
        assert!(hex_dump(&[5], Some(1)).ends_with("[^ offset 1: end of received bytes]"));
        let d = Diff {
            expected: vec!["05 00".into(), "close".into()],
            received: vec![5, 1],
            offset: 1,
            detail: "expected 00, received 01".into(),
        };
        let text = d.render("  ");
        assert!(text.contains("  expected: 05 00\n        or: close\n  received: 0000: 05 [01]"));
        assert!(text.ends_with("first difference at offset 1: expected 00, received 01"));
    }
}
