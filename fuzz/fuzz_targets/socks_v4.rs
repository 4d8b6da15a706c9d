#![cfg_attr(fuzzing, no_main)]
//! The SOCKS4 / SOCKS4a codecs of `triproxy_socks::v4`: request and reply.
//!
//! Input: `selector, message...`; an even selector picks the request, an odd one the reply.
//!
//! Oracles ([`triproxy_fuzz::check_codec`]): decode → encode → decode equality with
//! `encoded_len` exact, every strict prefix of a complete message `Partial`, `needed` a true
//! lower bound. Also: a parsed request never carries a NUL in its user id or host name,
//! respects the 255-byte caps, and is SOCKS4a exactly when DSTIP is 0.0.0.x, x != 0.

use triproxy_fuzz::socks::v4::{is_v4a_marker, Destination, Reply, Request};
use triproxy_fuzz::{check_codec, encode_with, Input};

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let selector = input.byte();
    let msg = input.rest();
    if selector & 1 == 0 {
        let parsed = check_codec(msg, Request::parse, |r| {
            encode_with(r.encoded_len(), |o| r.encode(o))
        });
        if let Some(r) = parsed {
            assert!(!r.user_id.contains(&0), "NUL inside the user id");
            let dstip = msg.get(4..8).and_then(|b| <[u8; 4]>::try_from(b).ok());
            let marker = dstip.is_some_and(|ip| is_v4a_marker(ip.into()));
            assert_eq!(
                r.is_v4a(),
                marker,
                "SOCKS4a decided by something else than DSTIP"
            );
            if let Destination::Domain(d) = &r.destination {
                assert!(!d.as_bytes().contains(&0) && d.len() <= 255);
            }
        }
    } else {
        check_codec(msg, Reply::parse, |r| {
            encode_with(r.encoded_len(), |o| r.encode(o))
        });
    }
});
