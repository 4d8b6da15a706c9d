#![cfg_attr(fuzzing, no_main)]
//! HTTP body framing (`triproxy_http::body`): the framing decisions on arbitrary field
//! values, and the body scanner on arbitrary bytes, whole and split.
//!
//! Input: `mode, cut, bytes...`. `mode` picks the framing (chunked, until close, or a
//! length from the next byte); `cut` splits the bytes in two scans; the bytes are also
//! read as `Content-Length` and `Transfer-Encoding` values (split at the first NUL).
//!
//! Oracles: no panic; a scan never uses more than it was given, and leaves bytes unused
//! only once the body is complete; the split scan gives the same result as the whole one;
//! after completion nothing more is used; request framing refuses both fields together.

use triproxy_fuzz::http::body::{request_framing, response_framing, BodyScanner, Framing};

triproxy_fuzz::target!(|data| {
    let [mode, cut, rest @ ..] = data else {
        return;
    };
    let framing = match mode % 3 {
        0 => Framing::Chunked,
        1 => Framing::UntilClose,
        _ => Framing::Length(u64::from(*cut) * 3),
    };
    let whole = {
        let mut s = BodyScanner::new(framing);
        s.scan(rest).map(|r| {
            assert!(r.used <= rest.len());
            assert!(
                r.complete || r.used == rest.len(),
                "unused bytes before the end"
            );
            if r.complete {
                let again = s.scan(rest.get(r.used..).unwrap_or_default());
                assert_eq!(again.map(|a| a.used), Ok(0), "nothing after completion");
            }
            (r.used, r.complete)
        })
    };
    let at = usize::from(*cut).min(rest.len());
    let split = {
        let mut s = BodyScanner::new(framing);
        let (a, b) = rest.split_at(at);
        s.scan(a).and_then(|r1| {
            if r1.complete {
                Ok((r1.used, true))
            } else {
                s.scan(b).map(|r2| (r1.used + r2.used, r2.complete))
            }
        })
    };
    assert_eq!(whole, split, "split at {at}");

    let nul = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (cl, te) = rest.split_at(nul);
    let fields = [("Content-Length", cl), ("Transfer-Encoding", te)];
    let r = request_framing(fields);
    assert!(r.is_err(), "both fields in a request must be refused");
    let _ = response_framing(u16::from(*cut) * 3, mode & 1 == 0, fields);
    let _ = request_framing([("Transfer-Encoding", rest)]);
    let _ = request_framing([("Content-Length", rest)]);
});
