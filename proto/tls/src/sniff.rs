//! 3proxy's `auto` service: which protocol a client speaks, from its first byte.
//!
//! `auto` reads one byte (waiting up to its `CONNECTION_S` timeout) and hands the
//! connection to the SOCKS server for 4 or 5, to `tlspr` for 22 (a TLS handshake record),
//! and to the HTTP proxy for anything else. The byte is not consumed: the chosen service
//! reads it again. A client that sends nothing is logged with code 801
//! ([`AUTO_NO_FIRST_BYTE`]).
//!
//! This is not a parser: one byte decides, as in 3proxy.

use triproxy_wire::LogCode;

/// The log code of an `auto` connection whose client sent no byte (closed or timed out).
pub const AUTO_NO_FIRST_BYTE: LogCode = LogCode(801);

/// The service an `auto` connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sniffed {
    /// SOCKS4, SOCKS4a or SOCKS5 (first byte 4 or 5).
    Socks,
    /// A TLS handshake record (first byte 22): the `tlspr` SNI proxy.
    Tls,
    /// Anything else: the HTTP proxy.
    Http,
}

/// The service for a connection whose first byte is `first_byte`.
///
/// ```
/// use triproxy_tls::sniff::{sniff, Sniffed};
/// assert_eq!(sniff(5), Sniffed::Socks);
/// assert_eq!(sniff(0x16), Sniffed::Tls);
/// assert_eq!(sniff(b'C'), Sniffed::Http);
/// ```
pub fn sniff(first_byte: u8) -> Sniffed {
    match first_byte {
        4 | 5 => Sniffed::Socks,
        22 => Sniffed::Tls,
        _ => Sniffed::Http,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte() {
        for b in 0..=255u8 {
            let want = match b {
                4 | 5 => Sniffed::Socks,
                0x16 => Sniffed::Tls,
                _ => Sniffed::Http,
            };
            assert_eq!(sniff(b), want, "byte {b}");
        }
    }
}
