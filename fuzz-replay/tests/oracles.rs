//! The shared oracles of the fuzz targets catch what they claim to: each test feeds
//! `check_codec` a deliberately broken codec and expects the panic a fuzzer would report.

use triproxy_fuzz::wire::Status;
use triproxy_fuzz::{check_codec, chunks};

/// A toy length-prefixed message: `len, bytes[len]`.
fn parse(buf: &[u8]) -> Result<Status<Vec<u8>>, ()> {
    let Some(&len) = buf.first() else {
        return Ok(Status::need(1));
    };
    let total = 1 + usize::from(len);
    match buf.get(1..total) {
        Some(body) => Ok(Status::Complete {
            value: body.to_vec(),
            consumed: total,
        }),
        None => Ok(Status::need(total - buf.len())),
    }
}

#[allow(clippy::ptr_arg)] // check_codec hands encoders a &T, here &Vec<u8>
fn encode(v: &Vec<u8>) -> (Vec<u8>, usize) {
    let mut out = vec![u8::try_from(v.len()).unwrap_or(u8::MAX)];
    out.extend_from_slice(v);
    let len = out.len();
    (out, len)
}

#[test]
fn a_correct_codec_passes() {
    assert_eq!(check_codec(&[2, 7, 8, 9], parse, encode), Some(vec![7, 8]));
    assert_eq!(check_codec(&[5, 1], parse, encode), None);
}

#[test]
#[should_panic(expected = "decode(encode(v)) != v")]
fn a_lossy_encoder_is_caught() {
    check_codec(&[2, 7, 8], parse, |v: &Vec<u8>| {
        let (mut bytes, len) = encode(v);
        if let Some(last) = bytes.last_mut() {
            *last ^= 1;
        }
        (bytes, len)
    });
}

#[test]
#[should_panic(expected = "encoded_len disagrees")]
fn a_wrong_encoded_len_is_caught() {
    check_codec(&[1, 7], parse, |v: &Vec<u8>| (encode(v).0, 99));
}

#[test]
#[should_panic(expected = "strict prefix")]
fn a_prefix_that_errors_is_caught() {
    let strict = |buf: &[u8]| match buf {
        [_] => Err(()),
        other => parse(other),
    };
    check_codec(&[1, 7], strict, encode);
}

#[test]
#[should_panic(expected = "said it needs")]
fn an_overstated_need_is_caught() {
    let greedy = |buf: &[u8]| -> Result<Status<Vec<u8>>, ()> {
        match parse(buf)? {
            Status::Partial { .. } => Ok(Status::need(5)),
            done => Ok(done),
        }
    };
    check_codec(&[3], greedy, encode);
}

#[test]
fn chunks_reassemble() {
    let stream: Vec<u8> = (0..200).collect();
    for how in [0, 1, 2, 3, 200] {
        assert_eq!(chunks(&stream, how).concat(), stream);
    }
}
