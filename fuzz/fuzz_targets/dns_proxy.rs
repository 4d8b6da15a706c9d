#![cfg_attr(fuzzing, no_main)]
//! The `dnspr` decisions (`triproxy_dns::proxy`): a client datagram through `parse_query`,
//! `plan`, `answer` with a result chosen by the input, `error_reply` for refused ones, and
//! the same bytes as an upstream answer through `forward_ok`.
//!
//! Input: one byte of configuration (simple mode, `-F` IPv4, `-F` IPv6), one byte choosing
//! the resolver's result (addresses of both families, or an error), then the datagram.
//!
//! Oracles: no panic; an accepted query is at most 1000 bytes and carries its ID; every
//! reply the proxy builds (fake or resolved) is at most 512 bytes, parses, carries the
//! query's ID and is itself accepted by `forward_ok` for the query (it answers the same
//! question); `Resolve` asks for the query's name, IPv4 for A and IPv6 for AAAA; log code 0
//! exactly when addresses of the asked family were given; a refused datagram has code 814,
//! 816 or 817 and its reply, if any, is a 12-byte response with its ID; a query is never
//! accepted as its own answer; an accepted upstream answer has the ID and QR set.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use triproxy_fuzz::dns::proxy::{
    answer, error_reply, forward_ok, parse_query, plan, Plan, ProxyConfig, MAX_ANSWER, MAX_QUERY,
};
use triproxy_fuzz::dns::{Answer, Family, ResolveError};
use triproxy_fuzz::Input;

/// The reply parses as a response to `q` (same ID, same question) within 512 bytes.
fn check_reply(q: &triproxy_fuzz::dns::proxy::Query, reply: &[u8]) {
    assert!(reply.len() <= MAX_ANSWER, "reply of {} bytes", reply.len());
    assert_eq!(reply.get(..2), Some(&q.id().to_be_bytes()[..]));
    assert!(forward_ok(q, reply), "our reply does not answer the query");
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let conf = input.byte();
    let config = ProxyConfig {
        simple: conf & 1 != 0,
        fake_v4: (conf & 2 != 0).then_some(Ipv4Addr::new(192, 0, 2, 200)),
        fake_v6: (conf & 4 != 0).then(|| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x200)),
    };
    let pick = input.byte();
    let datagram = input.rest();

    // The resolver's result: up to 31 addresses, both families mixed, or an error.
    let result = match pick & 7 {
        0 => Err(ResolveError::NotFound),
        1 => Err(ResolveError::Timeout),
        2 => Err(ResolveError::ServerFailure),
        _ => Ok((0..pick >> 3)
            .map(|i| Answer {
                addr: if i % 3 == 0 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i)))
                } else {
                    IpAddr::V4(Ipv4Addr::new(198, 51, 100, i))
                },
                ttl: u32::from(i) * 1000,
            })
            .collect::<Vec<_>>()),
    };

    match parse_query(datagram) {
        Ok(q) => {
            assert!((12..=MAX_QUERY).contains(&datagram.len()));
            assert_eq!(datagram.get(..2), Some(&q.id().to_be_bytes()[..]));
            assert!(!forward_ok(&q, datagram), "a query taken as its own answer");
            match plan(&q, &config) {
                Plan::Answer(reply) => {
                    assert!(matches!(q.qtype(), 1 | 28) && q.qclass() == 1);
                    check_reply(&q, &reply);
                }
                Plan::Resolve { name, family } => {
                    assert!(!config.simple);
                    assert_eq!(name, q.name());
                    let expected = if q.qtype() == 1 {
                        Family::V4
                    } else {
                        Family::V6
                    };
                    assert_eq!(family, expected);
                }
                Plan::Forward => {}
            }
            let (reply, code) = answer(&q, &result);
            check_reply(&q, &reply);
            let asked_v6 = q.qtype() == 28;
            let has = result.as_ref().is_ok_and(|l| {
                q.qclass() == 1
                    && matches!(q.qtype(), 1 | 28)
                    && l.iter().any(|a| a.addr.is_ipv6() == asked_v6)
            });
            assert_eq!(code == 0, has, "log code {code}");
            assert!(code == 0 || code == 888);
        }
        Err(e) => {
            assert!([814, 816, 817].contains(&e.log_code()));
            assert!(!e.reason().is_empty());
            if let Some(reply) = error_reply(datagram, &e) {
                assert_eq!(reply.len(), 12);
                assert_eq!(reply.get(..2), datagram.get(..2));
                assert!(reply[2] & 0x80 != 0, "the reply is a response");
            }
        }
    }

    // The same bytes as the first nserver's answer to a fixed MX query.
    let mut asked = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    asked.extend_from_slice(b"\x07example\x03org\x00\x00\x0f\x00\x01");
    if let Ok(q) = parse_query(&asked) {
        if forward_ok(&q, datagram) {
            assert_eq!(datagram.get(..2), Some(&[0xab, 0xcd][..]));
            assert!(datagram.get(2).is_some_and(|b| b & 0x80 != 0));
            assert!(datagram.len() <= 65535);
        }
    }
});
