//! The resolver machine in virtual time, against answers built with hickory-proto.

// Tests may unwrap, and need one real instant to offset virtual time from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;
use triproxy_dns::{
    Answer, Event, Family, QueryId, ResolveError, Resolved, Resolver, ResolverConfig, Transmit,
    Transport, FAKE_V4, FAKE_V6,
};

fn config(servers: &[&str]) -> ResolverConfig {
    ResolverConfig {
        servers: servers.iter().map(|s| s.parse().unwrap()).collect(),
        ..ResolverConfig::default()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The query inside a transmit (the TCP length prefix removed).
fn query_of(t: &Transmit) -> Message {
    let body = match t.transport {
        Transport::Udp => &t.payload[..],
        Transport::Tcp => {
            let len = usize::from(u16::from_be_bytes([t.payload[0], t.payload[1]]));
            assert_eq!(t.payload.len(), len + 2, "TCP framing");
            &t.payload[2..]
        }
    };
    Message::from_vec(body).unwrap()
}

/// An answer to `t`'s query with `records` (and `rcode`), edited by `edit`.
fn reply(
    t: &Transmit,
    rcode: ResponseCode,
    records: Vec<Record>,
    edit: impl FnOnce(&mut Message),
) -> Vec<u8> {
    let q = query_of(t);
    let mut m = Message::new();
    m.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .set_response_code(rcode)
        .add_queries(q.queries().to_vec())
        .add_answers(records);
    edit(&mut m);
    m.to_vec().unwrap()
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn a(n: &str, ttl: u32, addr: &str) -> Record {
    Record::from_rdata(name(n), ttl, RData::A(A(addr.parse().unwrap())))
}

fn aaaa(n: &str, ttl: u32, addr: &str) -> Record {
    Record::from_rdata(name(n), ttl, RData::AAAA(AAAA(addr.parse().unwrap())))
}

fn cname(n: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(n), ttl, RData::CNAME(CNAME(name(target))))
}

fn soa(zone: &str, ttl: u32, minimum: u32) -> Record {
    let rdata = SOA::new(
        name("ns.example."),
        name("admin.example."),
        1,
        3600,
        600,
        86400,
        minimum,
    );
    Record::from_rdata(name(zone), ttl, RData::SOA(rdata))
}

fn drain_events(r: &mut Resolver) -> Vec<Event> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

fn resolved(r: &mut Resolver) -> Vec<Resolved> {
    drain_events(r)
        .into_iter()
        .filter_map(|e| match e {
            Event::Resolved(x) => Some(x),
            Event::CloseTcp(_) => None,
        })
        .collect()
}

fn ok(id: QueryId, list: &[(&str, u32)]) -> Resolved {
    Resolved {
        id,
        result: Ok(list
            .iter()
            .map(|&(s, ttl)| Answer { addr: ip(s), ttl })
            .collect()),
    }
}

fn err(id: QueryId, e: ResolveError) -> Resolved {
    Resolved { id, result: Err(e) }
}

#[test]
fn success_then_cached_until_the_ttl_runs_out() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.53"]), 1);
    let id = r.resolve(t0, "WWW.Example.ORG.", Family::V4);
    let t = r.poll_transmit().unwrap();
    assert!(r.poll_transmit().is_none());
    assert_eq!(
        (t.server, t.transport, t.tcp),
        (sa("192.0.2.53:53"), Transport::Udp, None)
    );
    let q = query_of(&t);
    assert_eq!(q.queries()[0].query_type(), RecordType::A);
    assert!(q.recursion_desired());
    let bytes = reply(
        &t,
        ResponseCode::NoError,
        vec![
            a("www.example.org.", 300, "198.51.100.1"),
            a("www.example.org.", 60, "198.51.100.2"),
        ],
        |_| {},
    );
    r.handle_datagram(t0, sa("192.0.2.53:53"), &bytes);
    assert_eq!(
        resolved(&mut r),
        vec![ok(id, &[("198.51.100.1", 60), ("198.51.100.2", 60)])]
    );
    assert_eq!(r.poll_timeout(), None);
    // From the cache, with the remaining TTL (the smallest of the records).
    let id = r.resolve(t0 + Duration::from_secs(20), "www.example.org", Family::V4);
    assert!(r.poll_transmit().is_none());
    assert_eq!(
        resolved(&mut r),
        vec![ok(id, &[("198.51.100.1", 40), ("198.51.100.2", 40)])]
    );
    // Expired at t0 + 60: the server is asked again.
    r.resolve(t0 + Duration::from_secs(60), "www.example.org", Family::V4);
    assert!(r.poll_transmit().is_some());
    assert!(resolved(&mut r).is_empty());
}

#[test]
fn cname_chain_is_followed_within_the_answer_and_bounded() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.53"]), 2);
    let id = r.resolve(t0, "alias.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    let records = vec![
        cname("alias.example.", 100, "mid.example."),
        cname("MID.example.", 50, "real.example."),
        a("real.example.", 200, "198.51.100.7"),
        a("other.example.", 200, "203.0.113.66"), // not on the chain: ignored
    ];
    r.handle_datagram(
        t0,
        t.server,
        &reply(&t, ResponseCode::NoError, records, |_| {}),
    );
    assert_eq!(resolved(&mut r), vec![ok(id, &[("198.51.100.7", 50)])]);

    // A loop of CNAMEs ends as "not found", not as a hang.
    let id = r.resolve(t0, "loop.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    let records = vec![
        cname("loop.example.", 100, "pool.example."),
        cname("pool.example.", 100, "loop.example."),
    ];
    r.handle_datagram(
        t0,
        t.server,
        &reply(&t, ResponseCode::NoError, records, |_| {}),
    );
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::NotFound)]);
}

#[test]
fn nxdomain_is_cached_for_the_soa_minimum() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.53"]), 3);
    let id = r.resolve(t0, "nope.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    let bytes = reply(&t, ResponseCode::NXDomain, vec![], |m| {
        m.add_name_server(soa("example.", 3600, 30));
    });
    r.handle_datagram(t0, t.server, &bytes);
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::NotFound)]);
    let id = r.resolve(t0 + Duration::from_secs(29), "nope.example", Family::V4);
    assert!(
        r.poll_transmit().is_none(),
        "answered from the negative cache"
    );
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::NotFound)]);
    r.resolve(t0 + Duration::from_secs(30), "nope.example", Family::V4);
    assert!(r.poll_transmit().is_some(), "expired after the SOA minimum");
}

#[test]
fn nodata_without_soa_is_cached_for_the_configured_negative_ttl() {
    let t0 = Instant::now();
    let cfg = ResolverConfig {
        negative_ttl: Duration::from_secs(10),
        ..config(&["192.0.2.53"])
    };
    let mut r = Resolver::new(cfg, 4);
    let id = r.resolve(t0, "v4only.example", Family::V6);
    let t = r.poll_transmit().unwrap();
    assert_eq!(query_of(&t).queries()[0].query_type(), RecordType::AAAA);
    r.handle_datagram(
        t0,
        t.server,
        &reply(&t, ResponseCode::NoError, vec![], |_| {}),
    );
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::NotFound)]);
    assert_eq!(r.cache_entries(), (0, 1));
    r.resolve(t0 + Duration::from_secs(9), "v4only.example", Family::V6);
    assert!(r.poll_transmit().is_none());
    r.resolve(t0 + Duration::from_secs(10), "v4only.example", Family::V6);
    assert!(r.poll_transmit().is_some());
}

#[test]
fn timeout_fails_over_to_the_next_server_then_gives_up() {
    let t0 = Instant::now();
    let cfg = ResolverConfig {
        try_timeout: Duration::from_secs(2),
        attempts: 2,
        ..config(&["192.0.2.1", "192.0.2.2:5353"])
    };
    let mut r = Resolver::new(cfg, 5);
    let id = r.resolve(t0, "slow.example", Family::V4);
    let mut now = t0;
    let mut servers = Vec::new();
    let mut ids = Vec::new();
    loop {
        while let Some(t) = r.poll_transmit() {
            servers.push(t.server);
            ids.push(query_of(&t).id());
        }
        let Some(deadline) = r.poll_timeout() else {
            break;
        };
        assert!(deadline > now, "the deadline moves forward");
        now = deadline;
        r.handle_timeout(now);
    }
    assert_eq!(
        servers,
        [
            sa("192.0.2.1:53"),
            sa("192.0.2.2:5353"),
            sa("192.0.2.1:53"),
            sa("192.0.2.2:5353")
        ]
    );
    assert_eq!(now, t0 + Duration::from_secs(8));
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::Timeout)]);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4, "every try has a fresh ID");
}

#[test]
fn answer_after_failover_comes_from_the_second_server() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.1", "192.0.2.2"]), 6);
    let id = r.resolve(t0, "x.example", Family::V4);
    let first = r.poll_transmit().unwrap();
    let t1 = r.poll_timeout().unwrap();
    r.handle_timeout(t1);
    let second = r.poll_transmit().unwrap();
    assert_eq!(second.server, sa("192.0.2.2:53"));
    // The first server's late answer to the old ID is dropped.
    r.handle_datagram(
        t1,
        first.server,
        &reply(
            &first,
            ResponseCode::NoError,
            vec![a("x.example.", 5, "203.0.113.9")],
            |_| {},
        ),
    );
    assert_eq!(r.dropped(), 1);
    assert!(resolved(&mut r).is_empty());
    r.handle_datagram(
        t1,
        second.server,
        &reply(
            &second,
            ResponseCode::NoError,
            vec![a("x.example.", 5, "198.51.100.9")],
            |_| {},
        ),
    );
    assert_eq!(resolved(&mut r), vec![ok(id, &[("198.51.100.9", 5)])]);
}

#[test]
fn servfail_moves_on_at_once() {
    let t0 = Instant::now();
    let cfg = ResolverConfig {
        attempts: 1,
        ..config(&["192.0.2.1", "192.0.2.2"])
    };
    let mut r = Resolver::new(cfg, 7);
    let id = r.resolve(t0, "x.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    r.handle_datagram(
        t0,
        t.server,
        &reply(&t, ResponseCode::ServFail, vec![], |_| {}),
    );
    let t = r.poll_transmit().unwrap();
    assert_eq!(t.server, sa("192.0.2.2:53"));
    r.handle_datagram(
        t0,
        t.server,
        &reply(&t, ResponseCode::Refused, vec![], |_| {}),
    );
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::ServerFailure)]);
    assert_eq!(
        (
            ResolveError::ServerFailure.log_code(),
            ResolveError::ServerFailure.to_string()
        ),
        (100, "name servers failed".into())
    );
    assert_eq!(r.cache_entries(), (0, 0), "failures are not cached");
}

#[test]
fn truncated_answer_is_asked_again_over_tcp() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.53"]), 8);
    let id = r.resolve(t0, "big.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    r.handle_datagram(
        t0,
        t.server,
        &reply(&t, ResponseCode::NoError, vec![], |m| {
            m.set_truncated(true);
        }),
    );
    assert!(resolved(&mut r).is_empty());
    let tcp = r.poll_transmit().unwrap();
    assert_eq!((tcp.server, tcp.transport), (t.server, Transport::Tcp));
    let token = tcp.tcp.unwrap();
    let body = reply(
        &tcp,
        ResponseCode::NoError,
        vec![
            a("big.example.", 30, "198.51.100.1"),
            a("big.example.", 30, "198.51.100.2"),
        ],
        |_| {},
    );
    let mut stream = (body.len() as u16).to_be_bytes().to_vec();
    stream.extend_from_slice(&body);
    stream.extend_from_slice(b"extra");
    // Fed one byte at a time, as TCP may deliver it.
    let mut used = 0;
    for b in stream.chunks(1) {
        used += r.handle_tcp_data(t0, token, b);
    }
    assert_eq!(
        used,
        stream.len() - 5,
        "bytes past the answer are not taken"
    );
    assert_eq!(
        drain_events(&mut r),
        vec![
            Event::CloseTcp(token),
            Event::Resolved(ok(id, &[("198.51.100.1", 30), ("198.51.100.2", 30)]))
        ]
    );
}

#[test]
fn tcp_server_and_a_closed_connection_fail_over() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.1/tcp", "192.0.2.2"]), 9);
    let id = r.resolve(t0, "x.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    assert_eq!(t.transport, Transport::Tcp);
    let token = t.tcp.unwrap();
    r.handle_tcp_closed(t0, token);
    assert_eq!(drain_events(&mut r), vec![Event::CloseTcp(token)]);
    let t = r.poll_transmit().unwrap();
    assert_eq!(
        (t.server, t.transport),
        (sa("192.0.2.2:53"), Transport::Udp)
    );
    r.handle_datagram(
        t0,
        t.server,
        &reply(
            &t,
            ResponseCode::NoError,
            vec![a("x.example.", 9, "198.51.100.3")],
            |_| {},
        ),
    );
    assert_eq!(resolved(&mut r), vec![ok(id, &[("198.51.100.3", 9)])]);
}

#[test]
fn a_zero_length_or_garbled_tcp_answer_fails_the_try() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.1/tcp", "192.0.2.2/tcp"]), 17);
    let id = r.resolve(t0, "x.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    assert_eq!(r.handle_tcp_data(t0, t.tcp.unwrap(), &[0, 0, 1, 2, 3]), 2);
    let t = r.poll_transmit().unwrap();
    assert_eq!(t.server, sa("192.0.2.2:53"));
    assert_eq!(
        r.handle_tcp_data(t0, t.tcp.unwrap(), &[0, 3, 1, 2, 3, 4]),
        5
    );
    assert_eq!(r.dropped(), 2);
    let t = r.poll_transmit().unwrap();
    assert_eq!(t.server, sa("192.0.2.1:53"), "second round");
    let body = reply(
        &t,
        ResponseCode::NoError,
        vec![a("x.example.", 1, "198.51.100.1")],
        |_| {},
    );
    let mut framed = (body.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&body);
    assert_eq!(r.handle_tcp_data(t0, t.tcp.unwrap(), &framed), framed.len());
    assert_eq!(resolved(&mut r), vec![ok(id, &[("198.51.100.1", 1)])]);
    assert_eq!(
        r.handle_tcp_data(t0, t.tcp.unwrap(), &framed),
        0,
        "unknown token"
    );
}

#[test]
fn spoofed_answers_are_dropped_and_do_not_poison_the_cache() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.53"]), 10);
    let id = r.resolve(t0, "bank.example", Family::V4);
    let t = r.poll_transmit().unwrap();
    let evil = vec![a("bank.example.", 86400, "203.0.113.66")];
    // Another source address, another source port.
    let good = reply(&t, ResponseCode::NoError, evil.clone(), |_| {});
    r.handle_datagram(t0, sa("192.0.2.54:53"), &good);
    r.handle_datagram(t0, sa("192.0.2.53:5353"), &good);
    // A wrong ID.
    let wrong_id = reply(&t, ResponseCode::NoError, evil.clone(), |m| {
        m.set_id(m.id().wrapping_add(1));
    });
    r.handle_datagram(t0, t.server, &wrong_id);
    // Another question: another name, another type.
    let other_name = reply(&t, ResponseCode::NoError, evil.clone(), |m| {
        m.queries_mut()[0].set_name(name("evil.example."));
    });
    r.handle_datagram(t0, t.server, &other_name);
    let other_type = reply(&t, ResponseCode::NoError, evil.clone(), |m| {
        m.queries_mut()[0].set_query_type(RecordType::AAAA);
    });
    r.handle_datagram(t0, t.server, &other_type);
    // A query, not a response; and garbage.
    let not_response = reply(&t, ResponseCode::NoError, evil, |m| {
        m.set_message_type(MessageType::Query);
    });
    r.handle_datagram(t0, t.server, &not_response);
    r.handle_datagram(t0, t.server, b"\x00\x01garbage");
    assert_eq!(r.dropped(), 7);
    assert!(resolved(&mut r).is_empty());
    assert_eq!(r.cache_entries(), (0, 0));
    // The real answer (question in another case, as 0x20 servers echo it) still works.
    let real = reply(
        &t,
        ResponseCode::NoError,
        vec![a("bank.example.", 60, "198.51.100.10")],
        |m| {
            m.queries_mut()[0].set_name(name("BANK.example."));
        },
    );
    r.handle_datagram(t0, t.server, &real);
    assert_eq!(resolved(&mut r), vec![ok(id, &[("198.51.100.10", 60)])]);
}

#[test]
fn nsrecord_comes_before_cache_and_servers_and_blacklists() {
    let t0 = Instant::now();
    let cfg = ResolverConfig {
        static_records: vec![
            ("intranet.example".into(), ip("10.1.2.3")),
            ("Intranet.Example.".into(), ip("fd00::3")),
            ("ads.example".into(), ip("0.0.0.0")),
        ],
        ..config(&["192.0.2.53"])
    };
    let mut r = Resolver::new(cfg, 11);
    let a1 = r.resolve(t0, "intranet.example", Family::V6ThenV4);
    let a2 = r.resolve(t0, "ads.example", Family::V4);
    assert!(r.poll_transmit().is_none());
    assert_eq!(
        resolved(&mut r),
        vec![
            ok(a1, &[("fd00::3", 0), ("10.1.2.3", 0)]),
            err(a2, ResolveError::NotFound)
        ]
    );
    // Without nserver, other names are for the system resolver.
    let mut r = Resolver::new(ResolverConfig::default(), 0);
    let id = r.resolve(t0, "elsewhere.example", Family::V4);
    assert_eq!(resolved(&mut r), vec![err(id, ResolveError::NoServers)]);
}

#[test]
fn fakeresolve_answers_everything_without_asking() {
    let t0 = Instant::now();
    let cfg = ResolverConfig {
        fake_resolve: true,
        ..config(&["192.0.2.53"])
    };
    let mut r = Resolver::new(cfg, 12);
    let a = r.resolve(t0, "anything.example", Family::V4);
    let b = r.resolve(t0, "anything.example", Family::V6ThenV4);
    assert!(r.poll_transmit().is_none());
    assert_eq!(
        resolved(&mut r),
        vec![
            ok(a, &[(&FAKE_V4.to_string(), 0)]),
            ok(b, &[(&FAKE_V6.to_string(), 0), (&FAKE_V4.to_string(), 0)])
        ]
    );
}

#[test]
fn family_preference_asks_and_orders() {
    let t0 = Instant::now();
    for (family, want) in [
        (Family::V4, vec!["198.51.100.1"]),
        (Family::V6, vec!["2001:db8::1"]),
        (Family::V4ThenV6, vec!["198.51.100.1", "2001:db8::1"]),
        (Family::V6ThenV4, vec!["2001:db8::1", "198.51.100.1"]),
    ] {
        let mut r = Resolver::new(config(&["192.0.2.53"]), 13);
        let id = r.resolve(t0, "dual.example", family);
        let sent: Vec<Transmit> = std::iter::from_fn(|| r.poll_transmit()).collect();
        assert_eq!(sent.len(), want.len());
        // Answer in reverse order of sending: the result order is the family's anyway.
        for t in sent.iter().rev() {
            let rec = match query_of(t).queries()[0].query_type() {
                RecordType::A => a("dual.example.", 60, "198.51.100.1"),
                _ => aaaa("dual.example.", 60, "2001:db8::1"),
            };
            r.handle_datagram(
                t0,
                t.server,
                &reply(t, ResponseCode::NoError, vec![rec], |_| {}),
            );
        }
        let list: Vec<(&str, u32)> = want.iter().map(|s| (*s, 60)).collect();
        assert_eq!(resolved(&mut r), vec![ok(id, &list)], "{family:?}");
    }
    // One family missing still gives the other; IP literals follow the family.
    let mut r = Resolver::new(config(&["192.0.2.53"]), 14);
    let id = r.resolve(t0, "v4only.example", Family::V6ThenV4);
    for t in std::iter::from_fn(|| r.poll_transmit()).collect::<Vec<_>>() {
        let recs = match query_of(&t).queries()[0].query_type() {
            RecordType::A => vec![a("v4only.example.", 60, "198.51.100.1")],
            _ => vec![],
        };
        r.handle_datagram(
            t0,
            t.server,
            &reply(&t, ResponseCode::NoError, recs, |_| {}),
        );
    }
    assert_eq!(resolved(&mut r), vec![ok(id, &[("198.51.100.1", 60)])]);
    let lit4 = r.resolve(t0, "::1", Family::V4);
    let lit6 = r.resolve(t0, "::1", Family::V6ThenV4);
    assert_eq!(
        resolved(&mut r),
        vec![err(lit4, ResolveError::NotFound), ok(lit6, &[("::1", 0)])]
    );
}

#[test]
fn limits_invalid_names_and_pending_bound() {
    let t0 = Instant::now();
    let cfg = ResolverConfig {
        max_pending: 1,
        static_records: vec![("static.example".into(), ip("10.0.0.7"))],
        ..config(&["192.0.2.53"])
    };
    let mut r = Resolver::new(cfg, 15);
    let long = format!("{}.example", "a".repeat(300));
    let bad = [
        r.resolve(t0, "", Family::V4),
        r.resolve(t0, &long, Family::V4),
        r.resolve(t0, "bad..name", Family::V4),
        r.resolve(t0, "caf\u{e9}.example", Family::V4),
    ];
    let first = r.resolve(t0, "one.example", Family::V4);
    let second = r.resolve(t0, "two.example", Family::V4);
    let mut want: Vec<Resolved> = bad
        .iter()
        .map(|&id| err(id, ResolveError::InvalidName))
        .collect();
    want.push(err(second, ResolveError::TooManyPending));
    assert_eq!(resolved(&mut r), want);
    assert_eq!(r.pending(), 1);
    // At the bound, what needs no server is still answered.
    let fixed = r.resolve(t0, "static.example", Family::V4);
    assert_eq!(resolved(&mut r), vec![ok(fixed, &[("10.0.0.7", 0)])]);
    r.cancel(first);
    assert_eq!(r.pending(), 0);
    assert_eq!(r.poll_timeout(), None);
}

proptest! {
    #[test]
    fn arbitrary_datagrams_and_tcp_bytes_never_panic(
        datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..8),
        tc in any::<bool>(),
    ) {
        let t0 = Instant::now();
        let mut r = Resolver::new(config(&["192.0.2.53", "192.0.2.54/tcp"]), 16);
        r.resolve(t0, "p.example", Family::V4ThenV6);
        let sent: Vec<Transmit> = std::iter::from_fn(|| r.poll_transmit()).collect();
        if tc {
            // Make the first query go over TCP, then feed the noise there too.
            let t = &sent[0];
            r.handle_datagram(t0, t.server, &reply(t, ResponseCode::NoError, vec![], |m| { m.set_truncated(true); }));
        }
        for d in &datagrams {
            // With the real ID in front, so that the question check is reached.
            let mut d = d.clone();
            if d.len() >= 2 {
                d[..2].copy_from_slice(&query_of(&sent[0]).id().to_be_bytes());
            }
            r.handle_datagram(t0, sa("192.0.2.53:53"), &d);
            while let Some(t) = r.poll_transmit() {
                if let Some(token) = t.tcp {
                    r.handle_tcp_data(t0, token, &d);
                }
            }
            let _ = drain_events(&mut r);
        }
        if let Some(d) = r.poll_timeout() {
            r.handle_timeout(d);
        }
    }
}

/// A driver per lookup (each with its own socket) drains only its own lookup, and one
/// that goes away leaves nothing queued behind.
#[test]
fn per_lookup_draining_and_forget() {
    let t0 = Instant::now();
    let mut r = Resolver::new(config(&["192.0.2.53"]), 9);
    let first = r.resolve(t0, "one.example", Family::V4);
    let second = r.resolve(t0, "two.example", Family::V4ThenV6);
    let t1 = r.poll_transmit_of(first).unwrap();
    assert_eq!(t1.lookup, first);
    assert!(r.poll_transmit_of(first).is_none(), "one query for -4");
    let mine: Vec<Transmit> = std::iter::from_fn(|| r.poll_transmit_of(second)).collect();
    assert_eq!(mine.len(), 2, "A and AAAA of the second lookup");
    assert!(mine.iter().all(|t| t.lookup == second));
    assert_eq!(r.poll_timeout_of(first), Some(t0 + Duration::from_secs(5)));

    // The first lookup's answer is only its own to take.
    let answer = reply(
        &t1,
        ResponseCode::NoError,
        vec![a("one.example.", 60, "198.51.100.1")],
        |_| {},
    );
    r.handle_datagram(t0, sa("192.0.2.53:53"), &answer);
    assert!(r.poll_event_of(second).is_none());
    assert_eq!(
        r.poll_event_of(first),
        Some(Event::Resolved(ok(first, &[("198.51.100.1", 60)])))
    );
    assert_eq!(r.poll_timeout_of(first), None);

    // The second lookup's driver is gone: nothing of it stays, even after its timeouts.
    r.forget(second);
    assert_eq!(r.pending(), 0);
    assert_eq!(r.poll_timeout(), None);
    r.handle_timeout(t0 + Duration::from_secs(60));
    assert!(r.poll_transmit().is_none());
    assert!(r.poll_event().is_none());
}
