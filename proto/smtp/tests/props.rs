//! Arbitrary bytes on both sides never panic, never consume more than given, and the
//! machine's queues stay bounded.

mod common;

use common::{run, Decision};
use proptest::prelude::*;
use std::time::Duration;
use triproxy_smtp::{Config, Proxy, State};
use triproxy_wire::LogCode;

fn line_soup() -> impl Strategy<Value = Vec<u8>> {
    let words = prop::sample::select(vec![
        &b"EHLO x\r\n"[..],
        b"HELO x\r\n",
        b"NOOP\r\n",
        b"RSET\r\n",
        b"QUIT\r\n",
        b"STARTTLS\r\n",
        b"AUTH PLAIN\r\n",
        b"AUTH LOGIN\r\n",
        b"AUTH PLAIN AGJvYkBoAHB3\r\n",
        b"Ym9iQGg=\r\n",
        b"cHc=\r\n",
        b"MAIL FROM:<a@b>\r\n",
        b"220 hi\r\n",
        b"220 Proxy\r\n",
        b"250-x\r\n",
        b"250 AUTH LOGIN PLAIN\r\n",
        b"334 \r\n",
        b"235 ok\r\n",
        b"535 no\r\n",
        b"\r\n",
    ]);
    prop::collection::vec(
        prop_oneof![
            words.prop_map(|w| w.to_vec()),
            prop::collection::vec(any::<u8>(), 0..40)
        ],
        0..12,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        client in line_soup(),
        server in line_soup(),
        cut_c in any::<prop::sample::Index>(),
        cut_s in any::<prop::sample::Index>(),
        refuse in any::<bool>(),
        starttls in any::<bool>(),
        with_default in any::<bool>(),
    ) {
        let config = Config {
            starttls,
            default_target: with_default.then(|| "10.0.0.1:25".parse().unwrap()),
            ..Config::default()
        };
        let decision = if refuse { Decision::Refuse(LogCode(13)) } else { Decision::Connect };
        let whole = run(config.clone(), &[&client], decision, &[&server]);
        let (a, b) = client.split_at(cut_c.index(client.len() + 1));
        let (c, d) = server.split_at(cut_s.index(server.len() + 1));
        let split = run(config, &[a, b], decision, &[c, d]);
        prop_assert_eq!(&whole, &split);
        prop_assert!(whole.events.len() <= 1);
        if whole.state == State::Established {
            prop_assert!(whole.error.is_none());
        }
    }

    #[test]
    fn raw_bytes_and_timeouts_never_panic(
        ops in prop::collection::vec((0u8..6, prop::collection::vec(any::<u8>(), 0..64), 0u64..100), 0..40)
    ) {
        let t0 = common::t0();
        let mut now = t0;
        let mut p = Proxy::new(t0, Config::default(), "::1".parse().unwrap());
        let mut cbuf = Vec::new();
        let mut sbuf = Vec::new();
        for (op, bytes, secs) in ops {
            now += Duration::from_secs(secs);
            match op {
                0 => {
                    cbuf.extend_from_slice(&bytes);
                    if let Ok(n) = p.handle_input(now, &cbuf) {
                        prop_assert!(n <= cbuf.len());
                        cbuf.drain(..n);
                    }
                    cbuf.truncate(4096);
                }
                1 => {
                    sbuf.extend_from_slice(&bytes);
                    if let Ok(n) = p.handle_upstream_input(now, &sbuf) {
                        prop_assert!(n <= sbuf.len());
                        sbuf.drain(..n);
                    }
                    sbuf.truncate(4096);
                }
                2 => p.handle_connected(now),
                3 => p.handle_refused(LogCode(u16::from(bytes.first().copied().unwrap_or(0)))),
                4 => {
                    let before = p.poll_timeout();
                    if p.handle_timeout(now).is_some() {
                        prop_assert!(p.poll_timeout().is_none());
                    } else if let Some(d) = before {
                        prop_assert!(now < d);
                    }
                }
                _ => {
                    let _ = if bytes.first().is_some_and(|b| b & 1 == 0) {
                        p.handle_eof()
                    } else {
                        p.handle_upstream_eof()
                    };
                }
            }
            while p.poll_transmit().is_some() {}
            while p.poll_upstream_transmit().is_some() {}
            while p.poll_event().is_some() {}
        }
    }
}
