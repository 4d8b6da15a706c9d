//! Body framing (RFC 9112 section 6): the framing decisions, smuggling cases, and the
//! scanner on whole, split and arbitrary input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use triproxy_http::body::{
    request_framing, response_framing, BodyError, BodyScanner, Framing, FramingError,
    MAX_CHUNK_EXT, MAX_TRAILER,
};

fn req(fields: &[(&'static str, &'static str)]) -> Result<Framing, FramingError> {
    request_framing(fields.iter().map(|(n, v)| (*n, v.as_bytes())))
}

fn resp(
    status: u16,
    head: bool,
    fields: &[(&'static str, &'static str)],
) -> Result<Framing, FramingError> {
    response_framing(status, head, fields.iter().map(|(n, v)| (*n, v.as_bytes())))
}

#[test]
fn request_framing_follows_rfc_9112() {
    assert_eq!(req(&[]), Ok(Framing::Empty));
    assert_eq!(req(&[("Content-Length", "12")]), Ok(Framing::Length(12)));
    assert_eq!(req(&[("content-length", " 7 ")]), Ok(Framing::Length(7)));
    assert_eq!(
        req(&[("Content-Length", "5, 5")]),
        Ok(Framing::Length(5)),
        "equal list"
    );
    assert_eq!(
        req(&[("Content-Length", "5"), ("Content-Length", "5")]),
        Ok(Framing::Length(5))
    );
    assert_eq!(
        req(&[("Transfer-Encoding", "chunked")]),
        Ok(Framing::Chunked)
    );
    assert_eq!(
        req(&[("Transfer-Encoding", "Chunked")]),
        Ok(Framing::Chunked)
    );
}

#[test]
fn request_smuggling_vectors_are_refused() {
    use FramingError::*;
    assert_eq!(
        req(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]),
        Err(LengthAndTransferEncoding)
    );
    assert_eq!(
        req(&[("Content-Length", "5"), ("Content-Length", "6")]),
        Err(ConflictingContentLength)
    );
    assert_eq!(
        req(&[("Content-Length", "5, 6")]),
        Err(ConflictingContentLength)
    );
    for bad in ["", "-1", "+5", "0x10", "5 5", "1e3", "99999999999999999999"] {
        assert_eq!(
            req(&[("Content-Length", bad)]),
            Err(InvalidContentLength),
            "{bad:?}"
        );
    }
    for te in [
        "chunked, identity",
        "gzip",
        "chunked, chunked",
        "xchunked",
        "chunked;q=1",
        "chun ked",
        "chunked\u{b}",
        "\u{c}chunked",
        "identity",
    ] {
        assert_eq!(
            req(&[("Transfer-Encoding", te)]),
            Err(UnsupportedTransferEncoding),
            "{te:?}"
        );
    }
    assert_eq!(
        req(&[
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked")
        ]),
        Err(UnsupportedTransferEncoding),
        "chunked twice over two fields"
    );
}

#[test]
fn response_framing_follows_rfc_9112() {
    let cl = [("Content-Length", "10")];
    assert_eq!(
        resp(200, true, &cl),
        Ok(Framing::Empty),
        "a response to HEAD"
    );
    for status in [100, 101, 199, 204, 304] {
        assert_eq!(resp(status, false, &cl), Ok(Framing::Empty), "{status}");
    }
    assert_eq!(resp(200, false, &cl), Ok(Framing::Length(10)));
    assert_eq!(resp(200, false, &[]), Ok(Framing::UntilClose));
    assert_eq!(
        resp(
            200,
            false,
            &[
                ("Transfer-Encoding", "gzip, chunked"),
                ("Content-Length", "3")
            ]
        ),
        Ok(Framing::Chunked),
        "Transfer-Encoding overrides Content-Length"
    );
    assert_eq!(
        resp(200, false, &[("Transfer-Encoding", "gzip")]),
        Ok(Framing::UntilClose)
    );
    assert_eq!(
        resp(200, false, &[("Content-Length", "1, 2")]),
        Err(FramingError::ConflictingContentLength)
    );
}

/// Scans `input` whole: (used, complete).
fn scan_whole(framing: Framing, input: &[u8]) -> Result<(usize, bool), BodyError> {
    let mut s = BodyScanner::new(framing);
    let r = s.scan(input)?;
    Ok((r.used, r.complete))
}

/// Scans `input` in pieces cut at `cuts`: (used, complete), or the first error.
fn scan_split(framing: Framing, input: &[u8], cuts: &[usize]) -> Result<(usize, bool), BodyError> {
    let mut s = BodyScanner::new(framing);
    let mut at = 0;
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(input.len());
    for end in ends {
        if end < at {
            continue;
        }
        let r = s.scan(&input[at..end])?;
        at += r.used;
        if r.complete {
            return Ok((at, true));
        }
        if at < end {
            // Unused bytes only after completion.
            panic!("bytes left unused before the end");
        }
    }
    Ok((at, s.is_complete()))
}

const CHUNKED: &[u8] =
    b"5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nExpires: never\r\nX-A: b\r\n\r\nGET / HTTP/1.1";

#[test]
fn a_chunked_body_ends_after_its_trailers_and_leaves_the_next_message() {
    let end = CHUNKED.len() - b"GET / HTTP/1.1".len();
    assert_eq!(scan_whole(Framing::Chunked, CHUNKED), Ok((end, true)));
    // Every strict prefix of the body is incomplete and all of it is used.
    for cut in 0..end {
        assert_eq!(
            scan_whole(Framing::Chunked, &CHUNKED[..cut]),
            Ok((cut, false)),
            "prefix {cut}"
        );
    }
}

#[test]
fn a_length_body_ends_at_its_length() {
    assert_eq!(scan_whole(Framing::Length(4), b"abcdefg"), Ok((4, true)));
    assert_eq!(scan_whole(Framing::Length(4), b"ab"), Ok((2, false)));
    assert_eq!(scan_whole(Framing::Empty, b"next"), Ok((0, true)));
    assert_eq!(scan_whole(Framing::Length(0), b"next"), Ok((0, true)));
}

#[test]
fn a_body_until_close_takes_everything_and_ends_with_the_connection() {
    let mut s = BodyScanner::new(Framing::UntilClose);
    assert_eq!(s.scan(b"anything").unwrap().used, 8);
    assert!(!s.is_complete());
    assert_eq!(s.finish(), Ok(()));
    assert!(s.is_complete());
}

#[test]
fn a_truncated_body_is_an_error_at_the_close() {
    for (framing, input) in [
        (Framing::Length(10), &b"abc"[..]),
        (Framing::Chunked, &b"5\r\nhel"[..]),
        (Framing::Chunked, &b"0\r\n"[..]),
    ] {
        let mut s = BodyScanner::new(framing);
        s.scan(input).unwrap();
        assert_eq!(s.finish(), Err(BodyError::Truncated), "{framing:?}");
    }
}

#[test]
fn malformed_chunked_bodies_are_errors() {
    use BodyError::*;
    for (input, err) in [
        (&b"x\r\n"[..], BadChunkSize),
        (&b"\r\n"[..], BadChunkSize),
        (&b"-1\r\n"[..], BadChunkSize),
        (&b"5\n"[..], BadChunkSize),
        (&b"5\r\r"[..], BadLineEnd),
        (&b"3\r\nabcX"[..], BadLineEnd),
        (&b"3\r\nabc\rX"[..], BadLineEnd),
        (&b"11111111111111111\r\n"[..], BadChunkSize),
        (&b"8000000000000000\r\n"[..], BadChunkSize),
        (&b"0\r\nX: y\n"[..], BadLineEnd),
        (&b"1;a\nb"[..], BadLineEnd),
    ] {
        assert_eq!(scan_whole(Framing::Chunked, input), Err(err), "{input:?}");
    }
    let mut long_ext = b"1;".to_vec();
    long_ext.extend(std::iter::repeat_n(b'x', MAX_CHUNK_EXT + 1));
    assert_eq!(
        scan_whole(Framing::Chunked, &long_ext),
        Err(ChunkExtensionTooLong)
    );
    let mut long_trailer = b"0\r\n".to_vec();
    for _ in 0..(MAX_TRAILER / 10 + 1) {
        long_trailer.extend_from_slice(b"X-Pad: 1\r\n");
    }
    assert_eq!(
        scan_whole(Framing::Chunked, &long_trailer),
        Err(TrailerTooLong)
    );
}

/// `data` in chunks of the given sizes (the rest in one more), then the last chunk.
fn encode_chunked(data: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    for &size in sizes {
        let n = size.min(rest.len());
        if n == 0 {
            break;
        }
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    if !rest.is_empty() {
        out.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
        out.extend_from_slice(rest);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

proptest! {
    /// A chunked round trip: any data in any chunk sizes scans to exactly its encoding,
    /// whole and in arbitrary splits, leaving the next message untouched.
    #[test]
    fn chunked_round_trip_in_any_split(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        sizes in proptest::collection::vec(1usize..300, 0..10),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut wire = encode_chunked(&data, &sizes);
        let end = wire.len();
        wire.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        prop_assert_eq!(scan_whole(Framing::Chunked, &wire), Ok((end, true)));
        prop_assert_eq!(scan_split(Framing::Chunked, &wire, &cuts), Ok((end, true)));
    }

    /// Arbitrary bytes never panic, and any split gives the same answer as the whole.
    #[test]
    fn arbitrary_bytes_scan_the_same_in_any_split(
        input in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
        framing in prop_oneof![
            Just(Framing::Chunked),
            Just(Framing::UntilClose),
            (0u64..700).prop_map(Framing::Length),
        ],
    ) {
        let whole = scan_whole(framing, &input);
        let split = scan_split(framing, &input, &cuts);
        match (whole, split) {
            (Ok(w), Ok(s)) => prop_assert_eq!(w, s),
            (Err(w), Err(s)) => prop_assert_eq!(w, s),
            (w, s) => prop_assert!(false, "whole {:?} but split {:?}", w, s),
        }
    }

    /// Arbitrary header values never panic the framing decisions.
    #[test]
    fn arbitrary_fields_never_panic(cl in ".{0,30}", te in ".{0,30}", status in 0u16..700) {
        let fields = [("Content-Length", cl.as_bytes()), ("Transfer-Encoding", te.as_bytes())];
        let _ = request_framing(fields);
        let _ = response_framing(status, false, fields);
    }
}
