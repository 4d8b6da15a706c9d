#![cfg_attr(fuzzing, no_main)]
//! The SOCKS5 UDP association machine (`triproxy_policy::udp::Association`), started the
//! real way (a session granted UDP ASSOCIATE hands over its plan), then fed datagrams
//! from either side, from sources and at moments taken from the input.
//!
//! Input: records of `op, src, ms, len` then `len` bytes: `op` bit 0 picks the side
//! (client's relay socket or an outgoing socket), bit 1 ends the control connection,
//! `src` picks the sender among a few addresses (the client, another port of it, a
//! stranger, peers the client may have sent to), `ms` the time that passes first.
//!
//! Oracles: no panic; a datagram sent out goes to the header's address, with the bytes
//! after the header; an answer for the client is the header naming its source, then the
//! payload, and goes to the client's address; the client's port never changes once
//! fixed; the counted bytes are the sum of the payloads passed; once ended, nothing more
//! passes and the ending never changes; the deadline never moves backwards while
//! datagrams pass.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use triproxy_fuzz::policy::acl::CivilTime;
use triproxy_fuzz::policy::service::ServicePolicy;
use triproxy_fuzz::policy::session::{Intent, Session};
use triproxy_fuzz::policy::udp::{Association, Outbound};
use triproxy_fuzz::Input;

const SOURCES: [&str; 6] = [
    "127.0.0.1:5000",
    "127.0.0.1:5001",
    "192.0.2.9:5000",
    "127.0.0.1:7",
    "[::1]:7",
    "198.51.100.1:53",
];

fn association(now: std::time::Instant) -> Option<Association> {
    let client: SocketAddr = "127.0.0.1:5000".parse().ok()?;
    let local: SocketAddr = "127.0.0.1:1080".parse().ok()?;
    let time = CivilTime {
        weekday: 1,
        seconds_of_day: 0,
    };
    let mut s = Session::new(now, Arc::new(ServicePolicy::new(1080)), client, local, time);
    s.handle_input(now, &[5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]);
    while s.poll_transmit().is_some() {}
    while s.poll_intent().is_some() {}
    s.handle_associated(now, "127.0.0.1:40000".parse().ok()?);
    while s.poll_transmit().is_some() {}
    match s.poll_intent()? {
        Intent::RelayDatagrams(plan) => Some(Association::new(now, *plan)),
        _ => None,
    }
}

triproxy_fuzz::target!(|data| {
    let start = triproxy_fuzz::start();
    let Some(mut a) = association(start) else {
        panic!("a granted UDP ASSOCIATE must hand over its plan");
    };
    let mut input = Input::new(data);
    let mut now = start;
    let mut out = Vec::new();
    let (mut sent_out, mut sent_in) = (0u64, 0u64);
    let mut fixed_port = None;
    while !input.is_empty() {
        let op = input.byte();
        let src = input
            .choose(&SOURCES)
            .and_then(|s| s.parse::<SocketAddr>().ok());
        now += Duration::from_millis(u64::from(input.byte()) * 40);
        let len = usize::from(input.byte());
        let bytes = input.bytes(len);
        let Some(from) = src else { break };
        let ended_before = a.report();
        a.handle_timeout(now);
        if op & 2 != 0 {
            a.handle_control_closed();
        }
        let deadline_before = a.poll_timeout();
        if op & 1 == 0 {
            if let Outbound::Send { to, payload } = a.from_client(now, from, bytes) {
                assert!(a.report().is_none(), "nothing passes once ended");
                let header = bytes.len() - payload.len();
                assert_eq!(&bytes[header..], payload);
                let Ok((h, rest)) = triproxy_fuzz::socks::v5::parse_udp(bytes) else {
                    panic!("a datagram sent out must have parsed");
                };
                assert_eq!(rest, payload);
                assert_eq!(h.frag, 0);
                assert_eq!(h.target, triproxy_fuzz::wire::TargetAddr::Ip(to));
                sent_out += payload.len() as u64;
                assert!(a.poll_timeout() >= deadline_before);
            }
        } else if let Ok(client) = a.from_remote(now, from, bytes, &mut out) {
            assert!(a.report().is_none());
            assert!(out.ends_with(bytes));
            let Ok((h, rest)) = triproxy_fuzz::socks::v5::parse_udp(&out) else {
                panic!("an answer for the client must parse");
            };
            assert_eq!(rest, bytes);
            assert_eq!(h.target, triproxy_fuzz::wire::TargetAddr::Ip(from));
            assert_eq!(Some(client), a.client());
            sent_in += bytes.len() as u64;
        }
        if let Some(client) = a.client() {
            assert_eq!(*fixed_port.get_or_insert(client.port()), client.port());
        }
        if let (Some(before), Some(after)) = (ended_before, a.report()) {
            assert_eq!(before.end, after.end, "an ending never changes");
        }
    }
    a.handle_control_closed();
    let Some(report) = a.report() else {
        panic!("the control connection's end ends the association");
    };
    assert_eq!((report.bytes_out, report.bytes_in), (sent_out, sent_in));
});
