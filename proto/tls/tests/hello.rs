//! The hello parsers against real ClientHellos (curl, openssl, Python) and synthetic ones.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::*;
use proptest::prelude::*;
use triproxy_tls::hello::{
    check_host_name, parse_client_hello, parse_server_hello, ClientHello, Field, ProtocolVersion,
    SniError, TlsError, MAX_HANDSHAKE_LEN, MAX_HELLO_LEN,
};
use triproxy_wire::Status;

fn whole(bytes: &[u8]) -> ClientHello {
    let (hello, used) = parse_client_hello(bytes).unwrap().complete().unwrap();
    assert_eq!(used, hello.len);
    hello
}

fn sni(h: &ClientHello) -> Option<&str> {
    h.sni.as_ref().and_then(|d| d.as_str())
}

#[test]
fn real_hellos_parse_with_their_sni() {
    for &(name, bytes, want) in REAL {
        let h = whole(bytes);
        assert_eq!(sni(&h), want, "{name}");
        assert_eq!(h.len, bytes.len(), "{name}: one hello, nothing after it");
        assert_eq!(h.record_version, ProtocolVersion::TLS10, "{name}");
        assert_eq!(h.legacy_version, ProtocolVersion::TLS12, "{name}");
        if let (Some(at), Some(host)) = (h.sni_offset, want) {
            assert_eq!(&bytes[at..at + host.len()], host.as_bytes(), "{name}");
        }
    }
}

#[test]
fn real_hello_details() {
    let curl = whole(CURL);
    let alpn: Vec<&[u8]> = curl.alpn.iter().collect();
    assert_eq!(alpn, [&b"h2"[..], b"http/1.1"]);
    assert_eq!(curl.preferred_version(), ProtocolVersion::TLS13);
    assert!(curl
        .supported_versions
        .iter()
        .any(|v| v == ProtocolVersion::TLS12));

    let tls12 = whole(OPENSSL_TLS12);
    assert!(tls12.supported_versions.is_empty());
    assert_eq!(tls12.preferred_version(), ProtocolVersion::TLS12);
    assert_eq!(tls12.alpn.first(), Some(&b"h2"[..]));

    let plain = whole(OPENSSL);
    assert!(plain.alpn.is_empty());
    assert!(whole(OPENSSL_NOSNI).sni_offset.is_none());
}

#[test]
fn every_strict_prefix_is_partial_with_a_true_lower_bound() {
    for &(name, bytes, _) in REAL {
        for n in 0..bytes.len() {
            match parse_client_hello(&bytes[..n]) {
                Ok(Status::Partial { needed }) => {
                    let needed = needed.map_or(1, |n| n.get());
                    assert!(
                        n + needed <= bytes.len(),
                        "{name}: prefix {n} needs {needed}"
                    );
                }
                other => panic!("{name}: prefix {n}: {other:?}"),
            }
        }
    }
}

/// A driver that reads `k` bytes at a time and re-offers its whole buffer gets the same
/// hello, at the same read, whatever `k`.
#[test]
fn every_split_gives_the_same_hello() {
    for &(name, bytes, _) in REAL {
        let want = whole(bytes);
        for k in 1..=bytes.len() {
            let mut buf = Vec::new();
            let mut got = None;
            for chunk in bytes.chunks(k) {
                buf.extend_from_slice(chunk);
                if let Status::Complete { value, .. } = parse_client_hello(&buf).unwrap() {
                    got = Some(value);
                    break;
                }
            }
            assert_eq!(
                buf.len(),
                bytes.len(),
                "{name}: complete early with k = {k}"
            );
            assert_eq!(got.as_ref(), Some(&want), "{name}: k = {k}");
        }
    }
}

#[test]
fn a_hello_spanning_records() {
    let msg = message_of(CURL);
    for size in [1, 2, 3, 4, 5, 100, msg.len() - 1] {
        let raw = records(msg, size);
        if raw.len() > MAX_HELLO_LEN || msg.len().div_ceil(size) > 16 {
            assert!(matches!(
                parse_client_hello(&raw),
                Err(TlsError::TooLarge { .. })
            ));
            continue;
        }
        let h = whole(&raw);
        assert_eq!(sni(&h), Some("example.test"), "records of {size}");
        assert_eq!(h.len, raw.len());
        let at = h.sni_offset.unwrap();
        assert_eq!(raw[at], b'e', "records of {size}");
        for n in 0..raw.len() {
            assert!(parse_client_hello(&raw[..n]).unwrap().is_partial());
        }
    }
    // Two records, the split inside the extensions.
    let raw = records(msg, msg.len() / 2 + 1);
    let h = whole(&raw);
    assert_eq!(
        h,
        ClientHello {
            len: h.len,
            sni_offset: h.sni_offset,
            ..whole(CURL)
        }
    );
}

#[test]
fn a_hello_larger_than_a_tcp_segment() {
    let msg = client_hello_msg(Some("big.example.test"), &[(21, vec![0; 3000])]);
    let raw = records(&msg, 16384);
    assert!(raw.len() > 3000);
    let h = whole(&raw);
    assert_eq!(sni(&h), Some("big.example.test"));
    let mut buf = Vec::new();
    for (i, seg) in raw.chunks(1460).enumerate() {
        buf.extend_from_slice(seg);
        let s = parse_client_hello(&buf).unwrap();
        assert_eq!(s.is_partial(), buf.len() < raw.len(), "segment {i}");
    }
}

#[test]
fn size_caps() {
    // Largest message accepted, then one byte more.
    let fill = |pad: usize| client_hello_msg(Some("a.test"), &[(21, vec![0; pad])]);
    let base = fill(0).len();
    let ok = fill(MAX_HANDSHAKE_LEN - base);
    assert_eq!(ok.len(), MAX_HANDSHAKE_LEN);
    assert!(whole(&records(&ok, 16384)).len <= MAX_HELLO_LEN);
    let big = fill(MAX_HANDSHAKE_LEN - base + 1);
    assert_eq!(
        parse_client_hello(&records(&big, 16384)[..9]),
        Err(TlsError::TooLarge {
            len: MAX_HANDSHAKE_LEN + 1
        })
    );
    // Seventeen records.
    let msg = client_hello_msg(Some("a.test"), &[]);
    assert!(matches!(
        parse_client_hello(&records(&msg, 4)),
        Err(TlsError::TooLarge { .. })
    ));
    // A record longer than 2^14, and an empty one.
    assert_eq!(
        parse_client_hello(&[22, 3, 1, 0x40, 1]),
        Err(TlsError::BadRecordLength { len: 16385 })
    );
    assert_eq!(
        parse_client_hello(&[22, 3, 1, 0, 0]),
        Err(TlsError::BadRecordLength { len: 0 })
    );
}

#[test]
fn a_truncated_extension_list_is_an_error() {
    let mut msg = client_hello_msg(Some("example.test"), &[(0xfe01, vec![1, 2, 3])]);
    // The last extension says 4 bytes, holds 3 (the list and message lengths still agree).
    let n = msg.len();
    msg[n - 4] = 4;
    assert_eq!(
        parse_client_hello(&records(&msg, 16384)),
        Err(TlsError::Malformed {
            field: Field::Extensions
        })
    );
    // The list says one byte more than the message holds.
    let mut msg = client_hello_msg(Some("example.test"), &[]);
    let ext_len_at = 4 + 2 + 32 + 1 + 4 + 2;
    msg[ext_len_at + 1] += 1;
    assert_eq!(
        parse_client_hello(&records(&msg, 16384)),
        Err(TlsError::Malformed {
            field: Field::Extensions
        })
    );
    // A real hello cut inside its extensions, with the lengths patched to match.
    let mut raw = CURL[..CURL.len() - 10].to_vec();
    let rec = raw.len() - 5;
    raw[3..5].copy_from_slice(&(rec as u16).to_be_bytes());
    raw[6..9].copy_from_slice(&((rec - 4) as u32).to_be_bytes()[1..]);
    assert!(matches!(
        parse_client_hello(&raw),
        Err(TlsError::Malformed { .. })
    ));
}

#[test]
fn not_tls() {
    for bytes in [
        &b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"[..],
        b"CONNECT example.test:443 HTTP/1.1\r\n\r\n",
        &[5, 1, 0],
        &[4, 1, 0, 80, 127, 0, 0, 1, 0],
    ] {
        let e = parse_client_hello(bytes).unwrap_err();
        assert!(e.is_not_tls(), "{e:?}");
    }
    // A handshake record with version 2.x, an alert record.
    assert_eq!(
        parse_client_hello(&[22, 2]),
        Err(TlsError::BadRecordVersion { major: 2 })
    );
    assert!(parse_client_hello(&[22, 2]).unwrap_err().is_not_tls());
    // Decided by the first byte, whatever follows.
    assert_eq!(
        parse_client_hello(b"G"),
        Err(TlsError::NotTls { content_type: b'G' })
    );
    assert!(parse_client_hello(&[21, 3, 3, 0, 2, 2, 40])
        .unwrap_err()
        .is_not_tls());
    // A ServerHello where a ClientHello should be.
    assert_eq!(
        parse_client_hello(SERVER_FLIGHT),
        Err(TlsError::UnexpectedMessage { msg_type: 2 })
    );
}

#[test]
fn no_sni() {
    let h = whole(OPENSSL_NOSNI);
    assert_eq!(h.sni, None);
    let h = whole(&records(&client_hello_msg(None, &[]), 16384));
    assert_eq!(h.sni, None);
    assert_eq!(h.preferred_version(), ProtocolVersion::TLS13);
}

#[test]
fn bad_sni() {
    let parse =
        |name: &str| parse_client_hello(&records(&client_hello_msg(Some(name), &[]), 16384));
    assert_eq!(parse("a..b"), Err(TlsError::BadSni(SniError::BadLabel)));
    assert_eq!(
        parse("example.test."),
        Err(TlsError::BadSni(SniError::BadLabel))
    );
    assert_eq!(
        parse("a b"),
        Err(TlsError::BadSni(SniError::BadByte { byte: b' ' }))
    );
    assert_eq!(
        parse("h:80"),
        Err(TlsError::BadSni(SniError::BadByte { byte: b':' }))
    );
    assert_eq!(
        parse("192.0.2.1"),
        Err(TlsError::BadSni(SniError::IpLiteral))
    );
    assert_eq!(parse(""), Err(TlsError::BadSni(SniError::Empty)));
    let long = vec!["a".repeat(63); 4].join(".");
    assert_eq!(
        parse(&long),
        Err(TlsError::BadSni(SniError::TooLong { len: 255 }))
    );
    assert_eq!(check_host_name(b"_dmarc.Example-1.test").unwrap().len(), 21);
    // Two server_name extensions.
    let sni_ext = |n: &str| {
        let mut d = ((n.len() + 3) as u16).to_be_bytes().to_vec();
        d.push(0);
        d.extend_from_slice(&(n.len() as u16).to_be_bytes());
        d.extend_from_slice(n.as_bytes());
        d
    };
    let msg = client_hello_msg(Some("a.test"), &[(0, sni_ext("b.test"))]);
    assert_eq!(
        parse_client_hello(&records(&msg, 16384)),
        Err(TlsError::DuplicateExtension { ext_type: 0 })
    );
}

#[test]
fn trailing_handshake_data_is_refused() {
    let mut msg = client_hello_msg(Some("a.test"), &[]);
    msg.extend_from_slice(&[20, 0, 0, 0]);
    assert_eq!(
        parse_client_hello(&records(&msg, 16384)),
        Err(TlsError::TrailingData { len: 4 })
    );
    // Records after the hello are not looked at.
    let mut raw = CURL.to_vec();
    raw.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
    assert_eq!(whole(&raw).len, CURL.len());
}

#[test]
fn server_hello() {
    let (sh, used) = parse_server_hello(SERVER_FLIGHT)
        .unwrap()
        .complete()
        .unwrap();
    assert_eq!(sh.version(), ProtocolVersion::TLS13);
    assert_eq!(sh.legacy_version, ProtocolVersion::TLS12);
    assert_eq!(
        used,
        5 + usize::from(u16::from_be_bytes([SERVER_FLIGHT[3], SERVER_FLIGHT[4]]))
    );
    for n in 0..used {
        assert!(
            parse_server_hello(&SERVER_FLIGHT[..n])
                .unwrap()
                .is_partial(),
            "{n}"
        );
    }
    assert_eq!(
        parse_server_hello(CURL),
        Err(TlsError::UnexpectedMessage { msg_type: 1 })
    );
    assert!(parse_server_hello(&[21, 3, 3, 0, 2, 2, 112])
        .unwrap_err()
        .is_not_tls());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_server_hello(&bytes);
        if let Ok(Status::Partial { needed }) = parse_client_hello(&bytes) {
            let needed = needed.map_or(1, |n| n.get());
            prop_assert!(bytes.len() + needed <= MAX_HELLO_LEN);
        }
    }

    #[test]
    fn mutated_real_hellos_never_panic(
        which in 0..REAL.len(),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        cut in any::<u16>(),
    ) {
        let mut bytes = REAL[which].1.to_vec();
        for (at, b) in edits {
            let i = usize::from(at) % bytes.len();
            bytes[i] = b;
        }
        let cut = usize::from(cut) % (bytes.len() + 1);
        if let Ok(Status::Complete { value, consumed }) = parse_client_hello(&bytes[..cut]) {
            prop_assert!(consumed <= cut);
            prop_assert_eq!(consumed, value.len);
        }
        let _ = parse_server_hello(&bytes[..cut]);
    }

    /// What a prefix says is final: an error on a prefix is the same error on the whole
    /// input, so a driver sees the same outcome however the bytes were cut.
    #[test]
    fn prefix_errors_are_final(
        which in 0..REAL.len(),
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..4),
        cut in any::<u16>(),
    ) {
        let mut bytes = REAL[which].1.to_vec();
        for (at, b) in edits {
            let i = usize::from(at) % bytes.len();
            bytes[i] = b;
        }
        let cut = usize::from(cut) % (bytes.len() + 1);
        if let Err(e) = parse_client_hello(&bytes[..cut]) {
            prop_assert_eq!(parse_client_hello(&bytes), Err(e));
        }
        if let Err(e) = parse_server_hello(&bytes[..cut]) {
            prop_assert_eq!(parse_server_hello(&bytes), Err(e));
        }
    }

    /// A synthetic hello split into records of any size parses to the same SNI.
    #[test]
    fn any_record_split(size in 1usize..200, name in "[a-z]{1,20}(\\.[a-z0-9]{1,10}){0,3}") {
        prop_assume!(name.parse::<std::net::Ipv4Addr>().is_err());
        let msg = client_hello_msg(Some(&name), &[]);
        prop_assume!(msg.len().div_ceil(size) <= 16);
        let raw = records(&msg, size);
        let (h, used) = parse_client_hello(&raw).unwrap().complete().unwrap();
        prop_assert_eq!(used, raw.len());
        let got = h.sni.unwrap();
        prop_assert_eq!(got.as_str(), Some(name.as_str()));
        let at = h.sni_offset.unwrap();
        prop_assert_eq!(raw[at], name.as_bytes()[0]);
    }
}
