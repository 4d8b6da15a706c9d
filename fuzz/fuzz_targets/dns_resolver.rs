#![cfg_attr(fuzzing, no_main)]
//! The DNS resolver machine (`triproxy_dns::Resolver`) driven by a sequence of operations:
//! lookups, datagrams (noise, or the last query echoed back as an answer, possibly from
//! the wrong address or with extra bytes), TCP bytes, timeouts and cancellations.
//!
//! Input: one byte of configuration (family, `fakeresolve`, a `/tcp` server, tiny cache
//! and pending bounds), then operations: an operation byte and its operands.
//!
//! Oracles: no panic; every lookup is reported exactly once (unless cancelled); UDP
//! queries fit 512 bytes and TCP ones carry a correct length prefix; `poll_timeout` is
//! after `now` once `handle_timeout(now)` ran; the pending count stays within its bound.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use triproxy_fuzz::dns::{
    Event, Family, QueryId, Resolver, ResolverConfig, Transmit, Transport, MAX_UDP_MESSAGE,
};
use triproxy_fuzz::{start, Input};

const NAMES: [&str; 6] = [
    "a.example",
    "B.example.",
    "c.test",
    "::1",
    "10.0.0.1",
    "x..y",
];

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let conf = input.byte();
    let family =
        [Family::V4, Family::V6, Family::V4ThenV6, Family::V6ThenV4][usize::from(conf & 3)];
    let second = if conf & 4 != 0 {
        "192.0.2.2/tcp"
    } else {
        "192.0.2.2:5353"
    };
    let config = ResolverConfig {
        servers: ["192.0.2.1", second]
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect(),
        try_timeout: Duration::from_secs(2),
        attempts: 2,
        cache_v4: usize::from(conf >> 6),
        cache_v6: 2,
        fake_resolve: conf & 8 != 0,
        static_records: vec![
            ("c.test".into(), [10, 9, 9, 9].into()),
            ("d.test".into(), [0, 0, 0, 0].into()),
        ],
        max_pending: 3,
        ..ResolverConfig::default()
    };
    let mut r = Resolver::new(config, u64::from(input.u32()));
    let mut now = start();
    let mut open = BTreeSet::<QueryId>::new();
    let mut last: Option<Transmit> = None;
    for _ in 0..200 {
        match input.byte() % 7 {
            0 => {
                let name = input.choose(&NAMES).unwrap_or("a.example");
                open.insert(r.resolve(now, name, family));
            }
            1 => {
                let len = usize::from(input.byte());
                let noise = input.bytes(len);
                r.handle_datagram(
                    now,
                    "192.0.2.1:53"
                        .parse()
                        .unwrap_or(SocketAddr::from(([0; 4], 0))),
                    noise,
                );
            }
            2 | 3 => {
                // The last query answered: QR set, one A/AAAA record by pointer; sometimes
                // from the wrong port, with TC set, or cut short.
                let Some(t) = last.clone() else { continue };
                let how = input.byte();
                let mut answer = match t.transport {
                    Transport::Udp => t.payload.clone(),
                    Transport::Tcp => t.payload.get(2..).unwrap_or_default().to_vec(),
                };
                if answer.len() < 12 {
                    continue;
                }
                answer[2] |= 0x80 | if how & 1 != 0 { 0x02 } else { 0 };
                answer[7] = 1;
                let aaaa = answer.get(answer.len() - 3) == Some(&28);
                answer.extend_from_slice(&[
                    0xc0,
                    12,
                    0,
                    if aaaa { 28 } else { 1 },
                    0,
                    1,
                    0,
                    0,
                    0,
                    input.byte(),
                ]);
                if aaaa {
                    answer.extend_from_slice(&[
                        0, 16, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                    ]);
                } else {
                    answer.extend_from_slice(&[0, 4, 198, 51, 100, 1]);
                }
                if how & 2 != 0 {
                    answer.truncate(usize::from(input.byte()));
                }
                match (t.transport, t.tcp) {
                    (Transport::Tcp, Some(token)) => {
                        let mut framed = u16::try_from(answer.len())
                            .unwrap_or(0)
                            .to_be_bytes()
                            .to_vec();
                        framed.extend_from_slice(&answer);
                        let cut = usize::from(input.byte()) % (framed.len() + 1);
                        let (a, b) = framed.split_at(cut);
                        let used = r.handle_tcp_data(now, token, a);
                        assert!(used <= a.len());
                        r.handle_tcp_data(now, token, b);
                    }
                    _ => {
                        let mut from = t.server;
                        if how & 4 != 0 {
                            from.set_port(from.port().wrapping_add(1));
                        }
                        r.handle_datagram(now, from, &answer);
                    }
                }
            }
            4 => {
                if let Some(deadline) = r.poll_timeout() {
                    assert!(deadline >= now);
                    now = deadline;
                    r.handle_timeout(now);
                    if let Some(next) = r.poll_timeout() {
                        assert!(next > now, "the deadline must move forward");
                    }
                } else {
                    now += Duration::from_secs(u64::from(input.byte()));
                }
            }
            5 => {
                if let Some(&id) = open
                    .iter()
                    .nth(usize::from(input.byte()) % open.len().max(1))
                {
                    r.cancel(id);
                    open.remove(&id);
                }
            }
            _ => {
                if let Some(Transmit {
                    tcp: Some(token), ..
                }) = last
                {
                    r.handle_tcp_closed(now, token);
                }
            }
        }
        while let Some(t) = r.poll_transmit() {
            match t.transport {
                Transport::Udp => assert!(t.payload.len() <= MAX_UDP_MESSAGE && t.tcp.is_none()),
                Transport::Tcp => {
                    let len = t
                        .payload
                        .get(..2)
                        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
                    assert_eq!(len, Some(t.payload.len() - 2));
                    assert!(t.tcp.is_some());
                }
            }
            last = Some(t);
        }
        while let Some(e) = r.poll_event() {
            if let Event::Resolved(done) = e {
                assert!(
                    open.remove(&done.id),
                    "{:?} reported twice or never asked",
                    done.id
                );
                if let Ok(addrs) = &done.result {
                    assert!(!addrs.is_empty());
                }
            }
        }
        assert!(r.pending() <= 3);
        assert_eq!(r.pending(), open.len(), "every open lookup is pending");
    }
});
