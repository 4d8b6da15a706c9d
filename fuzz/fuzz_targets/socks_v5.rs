#![cfg_attr(fuzzing, no_main)]
//! Every SOCKS5 and RFC 1929 codec of `triproxy_socks::v5`: greeting, method selection,
//! username/password request and status, request, reply, and the UDP header.
//!
//! Input: `selector, message...`; `selector % 7` picks the message type.
//!
//! Oracles ([`triproxy_fuzz::check_codec`]): decode → encode → decode equality with
//! `encoded_len` exact, every strict prefix of a complete message `Partial`, `needed` a true
//! lower bound. For the UDP header, whose parser takes whole datagrams: header encoding
//! plus payload gives back the datagram byte for byte.

use triproxy_fuzz::socks::v5::{
    encode_udp, parse_udp, AuthReply, Greeting, MethodSelection, Reply, Request,
};
use triproxy_fuzz::socks::Credentials;
use triproxy_fuzz::{check_codec, encode_with, Input};

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let selector = input.byte();
    let msg = input.rest();
    match selector % 7 {
        0 => {
            if let Some(g) = check_codec(msg, Greeting::parse, |g| {
                encode_with(g.encoded_len(), |o| g.encode(o))
            }) {
                assert!(!g.methods.is_empty(), "greeting without methods");
            }
        }
        1 => {
            check_codec(msg, MethodSelection::parse, |m| {
                encode_with(m.encoded_len(), |o| m.encode(o))
            });
        }
        2 => {
            if let Some(c) = check_codec(msg, Credentials::parse, |c| {
                encode_with(c.encoded_len(), |o| c.encode(o))
            }) {
                let rebuilt = Credentials::new(&c.username, &c.password);
                assert_eq!(
                    rebuilt.as_ref().ok(),
                    Some(&c),
                    "Credentials::new refuses a parsed value"
                );
            }
        }
        3 => {
            check_codec(msg, AuthReply::parse, |r| {
                encode_with(r.encoded_len(), |o| r.encode(o))
            });
        }
        4 => {
            check_codec(msg, Request::parse, |r| {
                encode_with(r.encoded_len(), |o| r.encode(o))
            });
        }
        5 => {
            check_codec(msg, Reply::parse, |r| {
                encode_with(r.encoded_len(), |o| r.encode(o))
            });
        }
        _ => {
            if let Ok((header, payload)) = parse_udp(msg) {
                let mut again = Vec::new();
                encode_udp(&header, &mut again);
                assert_eq!(again.len(), header.encoded_len(), "UdpHeader::encoded_len");
                again.extend_from_slice(payload);
                assert_eq!(again, msg, "UDP header did not re-encode to the datagram");
            }
        }
    }
});
