#![cfg_attr(fuzzing, no_main)]
//! The TLS hello parsers (`triproxy_tls::hello`): `parse_client_hello` and
//! `parse_server_hello` over raw record bytes.
//!
//! Input: `selector, bytes...`. `selector & 1` also runs the bytes through the ServerHello
//! parser; `selector & 2` re-splits a complete ClientHello's message into records of
//! `1 + selector / 4` bytes and parses that too.
//!
//! Oracles: no panic; a complete parse consumed at most the input, exactly the hello's
//! `len`, at most `MAX_HELLO_LEN`; strict prefixes of the consumed bytes are `Partial`
//! (sampled); `needed` is a true lower bound (the input padded with `needed - 1` zero bytes
//! is not complete) and never points past `MAX_HELLO_LEN`; an SNI passes
//! `check_host_name` and `sni_offset` points at its first byte; the same message in other
//! records gives the same hello (but its record version, length and SNI offset).

use triproxy_fuzz::tls::hello::{
    check_host_name, parse_client_hello, parse_server_hello, ClientHello, MAX_HELLO_LEN,
};
use triproxy_fuzz::wire::Status;
use triproxy_fuzz::Input;

fn check_partial<T>(bytes: &[u8], status: &Status<T>, parse: fn(&[u8]) -> bool) {
    if let Status::Partial { needed } = status {
        let needed = needed.map_or(1, |n| n.get());
        assert!(bytes.len() + needed <= MAX_HELLO_LEN, "needs past the cap");
        if needed > 1 {
            let mut padded = bytes.to_vec();
            padded.resize(bytes.len() + needed - 1, 0);
            assert!(!parse(&padded), "needed {needed} is not a lower bound");
        }
    }
}

fn client_complete(bytes: &[u8]) -> bool {
    matches!(parse_client_hello(bytes), Ok(Status::Complete { .. }))
}

fn server_complete(bytes: &[u8]) -> bool {
    matches!(parse_server_hello(bytes), Ok(Status::Complete { .. }))
}

/// The handshake message carried by the records of `raw[..end]`.
fn message(raw: &[u8], end: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 5 <= end {
        let len = usize::from(u16::from_be_bytes([raw[pos + 3], raw[pos + 4]]));
        out.extend_from_slice(&raw[pos + 5..pos + 5 + len]);
        pos += 5 + len;
    }
    out
}

fn check_client(bytes: &[u8]) -> Option<ClientHello> {
    let status = parse_client_hello(bytes).ok()?;
    check_partial(bytes, &status, client_complete);
    let (hello, used) = status.complete()?;
    assert!(used <= bytes.len() && used <= MAX_HELLO_LEN);
    assert_eq!(used, hello.len);
    let step = (used / 64).max(1);
    for n in (0..used).step_by(step).chain(used.saturating_sub(6)..used) {
        assert!(
            matches!(parse_client_hello(&bytes[..n]), Ok(Status::Partial { .. })),
            "prefix {n} of {used} is not partial"
        );
    }
    if let Some(name) = &hello.sni {
        assert_eq!(check_host_name(name.as_bytes()).as_ref(), Ok(name));
        let at = hello.sni_offset.unwrap_or(usize::MAX);
        // The name starts there (it may go on in the next record).
        assert_eq!(bytes.get(at), name.as_bytes().first());
    } else {
        assert_eq!(hello.sni_offset, None);
    }
    Some(hello)
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let selector = input.byte();
    let bytes = input.rest();

    if let Some(hello) = check_client(bytes) {
        if selector & 2 != 0 {
            let msg = message(bytes, hello.len);
            let size = 1 + usize::from(selector / 4);
            let mut raw = Vec::new();
            for chunk in msg.chunks(size) {
                raw.extend_from_slice(&[22, 3, 1]);
                raw.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
                raw.extend_from_slice(chunk);
            }
            if msg.len().div_ceil(size) <= 16 {
                let again = check_client(&raw).unwrap_or_else(|| panic!("re-split hello refused"));
                assert_eq!(
                    ClientHello {
                        record_version: hello.record_version,
                        len: hello.len,
                        sni_offset: hello.sni_offset,
                        ..again
                    },
                    hello
                );
            }
        }
    }

    if selector & 1 != 0 {
        if let Ok(status) = parse_server_hello(bytes) {
            check_partial(bytes, &status, server_complete);
            if let Some((hello, used)) = status.complete() {
                assert!(used <= bytes.len() && used <= MAX_HELLO_LEN);
                assert_eq!(used, hello.len);
                assert!(hello.alpn.offered() <= 1);
            }
        }
    }
});
