//! The POP3 proxy machine driven like a runtime would: whole transcripts, every prefix and
//! every split of the input, caps, refusals and deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // tests unwrap and need a start instant

use proptest::prelude::*;
use std::time::{Duration, Instant};
use triproxy_pop3::server::{GREETING, MAX_LINE_LEN, MAX_SERVER_LINE_LEN, TLS_HANDSHAKE_FAILURE};
use triproxy_pop3::{BadLogin, Config, Error, Event, LogCode, Server, State};

/// Everything a session produced, for comparing runs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Transcript {
    to_client: Vec<u8>,
    to_server: Vec<u8>,
    events: Vec<Event>,
    errors: Vec<u16>,
    client_left: Vec<u8>,
    server_left: Vec<u8>,
    state: Option<State>,
}

/// Feeds `client` then (after connecting on an event) `server`, each cut into chunks
/// pieces by `cut`, keeping unconsumed bytes as a runtime does (and dropping them once the
/// machine has failed).
fn run(
    config: Config,
    client: &[u8],
    server: &[u8],
    cut: &dyn Fn(&[u8]) -> Vec<Vec<u8>>,
) -> Transcript {
    let now = Instant::now();
    let mut m = Server::new(now, config);
    let mut t = Transcript::default();
    drain(&mut m, &mut t);
    let mut held = Vec::new();
    for piece in cut(client) {
        held.extend_from_slice(&piece);
        match m.handle_input(now, &held) {
            Ok(n) => {
                held.drain(..n);
            }
            Err(e) => {
                // The session is over: what the driver still holds is dropped.
                t.errors.push(e.log_code());
                held.clear();
                drain(&mut m, &mut t);
                break;
            }
        }
        drain(&mut m, &mut t);
    }
    t.client_left = held;
    if t.events
        .iter()
        .any(|e| matches!(e, Event::Request(_) | Event::StartTls { .. }))
    {
        m.handle_connected(now);
        let mut held = Vec::new();
        for piece in cut(server) {
            held.extend_from_slice(&piece);
            match m.handle_upstream_input(now, &held) {
                Ok(n) => {
                    held.drain(..n);
                }
                Err(e) => {
                    t.errors.push(e.log_code());
                    held.clear();
                    drain(&mut m, &mut t);
                    break;
                }
            }
            drain(&mut m, &mut t);
        }
        t.server_left = held;
    }
    t.state = Some(m.state());
    t
}

fn drain(m: &mut Server, t: &mut Transcript) {
    while let Some(b) = m.poll_transmit() {
        t.to_client.extend_from_slice(&b);
    }
    while let Some(b) = m.poll_upstream_transmit() {
        t.to_server.extend_from_slice(&b);
    }
    while let Some(e) = m.poll_event() {
        t.events.push(e);
    }
}

fn whole(b: &[u8]) -> Vec<Vec<u8>> {
    vec![b.to_vec()]
}

const CLIENT: &[u8] = b"CAPA\r\nNOOP\r\nUSER alice@pop.example.org:1110\r\nPASS secret\r\nSTAT\r\n";
const SERVER: &[u8] = b"+OK Dovecot ready.\r\n+OK send PASS\r\n+OK logged in\r\n";

#[test]
fn full_login_transcript() {
    let t = run(Config::default(), CLIENT, SERVER, &whole);
    let mut expected = GREETING.to_vec();
    expected.extend_from_slice(b"+OK Capability list follows\r\nUSER\r\nSTLS\r\n.\r\n");
    expected.extend_from_slice(b"-ERR need USER first\r\n");
    assert_eq!(
        String::from_utf8_lossy(&t.to_client),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(t.to_server, b"USER alice\r\n");
    let [Event::Request(r)] = t.events.as_slice() else {
        panic!("{:?}", t.events)
    };
    assert_eq!(r.target.to_string(), "pop.example.org:1110");
    assert_eq!(r.user, b"alice");
    assert_eq!(r.proxy, None);
    assert_eq!(r.log_text, "alice@pop.example.org:1110");
    assert_eq!(t.client_left, b"PASS secret\r\nSTAT\r\n");
    assert_eq!(t.server_left, b"+OK send PASS\r\n+OK logged in\r\n");
    assert_eq!(t.state, Some(State::Established));
    assert!(t.errors.is_empty());
}

#[test]
fn proxy_credentials_and_delimiter() {
    let config = Config {
        delimiter: b'#',
        ..Config::default()
    };
    let t = run(
        config,
        b"USER pu:pp:bob@corp#10.0.0.5\r\n",
        b"+OK\r\n",
        &whole,
    );
    let [Event::Request(r)] = t.events.as_slice() else {
        panic!()
    };
    assert_eq!(r.user, b"bob@corp");
    let p = r.proxy.as_ref().unwrap();
    assert_eq!(
        (p.user.as_slice(), p.password.as_slice()),
        (&b"pu"[..], &b"pp"[..])
    );
    assert_eq!(r.log_text, "bob@corp@10.0.0.5");
    assert_eq!(t.to_server, b"USER bob@corp\r\n");
}

#[test]
fn default_target() {
    let d: triproxy_pop3::TargetAddr = "mail.example.net:2110".parse().unwrap();
    let config = Config {
        default_target: Some(d.clone()),
        ..Config::default()
    };
    let t = run(config, b"user carol\r\n", b"+OK\r\n", &whole);
    let [Event::Request(r)] = t.events.as_slice() else {
        panic!()
    };
    assert_eq!(r.target, d);
    assert_eq!(r.log_text, "carol@mail.example.net:2110");
}

#[test]
fn every_prefix_is_partial() {
    let input = b"CAPA\r\nUSER alice@pop.example.org\r\n";
    let full = run(Config::default(), input, b"", &whole);
    for end in 0..input.len() {
        let t = run(Config::default(), &input[..end], b"", &whole);
        assert!(t.errors.is_empty(), "prefix {end}");
        assert!(t.events.is_empty(), "prefix {end}");
        assert_eq!(t.state, Some(State::Command));
        assert!(full.to_client.starts_with(&t.to_client));
    }
    for end in 0..SERVER.len() {
        let t = run(Config::default(), input, &SERVER[..end], &whole);
        assert!(t.errors.is_empty());
        if end < SERVER.iter().position(|&b| b == b'\n').unwrap() + 1 {
            assert_eq!(t.state, Some(State::ServerGreeting), "prefix {end}");
            assert!(t.to_server.is_empty());
        }
    }
}

#[test]
fn every_split_gives_the_same_result() {
    let cases: [(&[u8], &[u8]); 5] = [
        (CLIENT, SERVER),
        (b"QUIT\r\n", b""),
        (b"USER x\r\n", b""),
        (
            b"STLS\r\n\x16\x03\x01",
            b"+OK hi\r\n+OK\r\nSTLS\r\nUSER\r\n.\r\n+OK go\r\n\x16\x03\x03",
        ),
        (b"USER a@b\r\n", b"+OK Proxy here\r\n"),
    ];
    for (client, server) in cases {
        let full = run(Config::default(), client, server, &whole);
        for at in 0..=client.len().max(server.len()) {
            let cut = |b: &[u8]| {
                let at = at.min(b.len());
                vec![b[..at].to_vec(), b[at..].to_vec()]
            };
            assert_eq!(
                run(Config::default(), client, server, &cut),
                full,
                "split at {at}"
            );
        }
        let bytes = |b: &[u8]| b.iter().map(|&x| vec![x]).collect();
        assert_eq!(
            run(Config::default(), client, server, &bytes),
            full,
            "bytewise"
        );
    }
}

#[test]
fn over_long_lines() {
    let mut long = vec![b'N'; MAX_LINE_LEN];
    let t = run(Config::default(), &long, b"", &whole);
    assert_eq!(t.errors, [612]);
    assert!(t.to_client.ends_with(b"-ERR proxy error\r\n"));
    assert_eq!(t.state, Some(State::Closed));
    // One byte short of the cap is still a partial line.
    long.pop();
    let t = run(Config::default(), &long, b"", &whole);
    assert!(t.errors.is_empty());
    // A smaller configured cap.
    let config = Config {
        max_line: 32,
        ..Config::default()
    };
    let t = run(
        config,
        b"USER someone@a.very.long.host.example.org\r\n",
        b"",
        &whole,
    );
    assert_eq!(t.errors, [612]);
    // A server greeting without end.
    let t = run(
        Config::default(),
        b"USER a@b\r\n",
        &vec![b'+'; MAX_SERVER_LINE_LEN],
        &whole,
    );
    assert_eq!(t.errors, [621]);
    assert!(t.to_server.is_empty());
}

#[test]
fn bad_user_forms() {
    let code = |line: &[u8]| {
        let mut m = Server::new(Instant::now(), Config::default());
        m.handle_input(Instant::now(), line).unwrap_err()
    };
    assert_eq!(code(b"USER\r\n").log_code(), 614);
    assert_eq!(code(b"USER \r\n").log_code(), 614);
    assert_eq!(code(b"USERalice@h\r\n").log_code(), 614);
    assert_eq!(code(b"USER alice\r\n"), Error::BadUser(BadLogin::NoHost));
    assert_eq!(code(b"USER @h\r\n"), Error::BadUser(BadLogin::EmptyUser));
    assert_eq!(
        code(b"USER a@h:99999\r\n"),
        Error::BadUser(BadLogin::BadPort)
    );
    assert_eq!(
        code(b"USER a@h\x00x\r\n"),
        Error::BadUser(BadLogin::ControlCharacter)
    );
    assert_eq!(code(b"USER a@h\rx\r\n").log_code(), 615);
    assert_eq!(code(b"\r\n"), Error::EmptyCommand);
    assert_eq!(code(b"ab\n").log_code(), 612);
}

#[test]
fn greeting_loop_and_garbage_are_refused() {
    for (greeting, code) in [
        (b"+OK Proxy\r\n".as_slice(), 622),
        (b"+ok proxy ready\r\n".as_slice(), 622),
        (GREETING, 622),
        (b"-ERR go away\r\n".as_slice(), 622),
        (b"\x00\x01garbage\n".as_slice(), 622),
        (b"\r\n".as_slice(), 622),
    ] {
        let t = run(
            Config::default(),
            b"USER a@b\r\nPASS x\r\n",
            greeting,
            &whole,
        );
        assert_eq!(t.errors, [code], "{greeting:?}");
        assert!(t.to_server.is_empty());
        assert!(t.to_client.ends_with(b"-ERR proxy error\r\n"));
        assert_eq!(t.state, Some(State::Closed));
    }
    // A real greeting that mentions a proxy later on is fine.
    let t = run(
        Config::default(),
        b"USER a@b\r\n",
        b"+OK POP3 (no Proxy here)\r\n",
        &whole,
    );
    assert!(t.errors.is_empty());
}

#[test]
fn quit_and_no_starttls() {
    let t = run(Config::default(), b"QUIT\r\nUSER a@b\r\n", b"", &whole);
    assert!(t.to_client.ends_with(b"+OK\r\n"));
    assert_eq!(t.state, Some(State::Closed));
    assert_eq!(t.client_left, b"USER a@b\r\n");
    let config = Config {
        starttls: false,
        ..Config::default()
    };
    let t = run(config, b"CAPA\r\nSTLS\r\n", b"", &whole);
    let text = String::from_utf8_lossy(&t.to_client);
    assert!(!text.contains("STLS"), "{text}");
    assert!(text.ends_with("-ERR need USER first\r\n"));
    assert!(t.events.is_empty());
}

#[test]
fn starttls_to_the_server() {
    let hello = b"\x16\x03\x01\x00\x05hello";
    let mut client = b"STLS\r\n".to_vec();
    client.extend_from_slice(hello);
    let server = b"+OK ready\r\n+OK\r\nTOP\r\nSTLS\r\n.\r\n+OK begin\r\n\x16\x03\x03";
    let t = run(Config::default(), &client, server, &whole);
    assert!(t.to_client.ends_with(b"+OK Begin TLS negotiation\r\n"));
    assert_eq!(
        t.events,
        [Event::StartTls {
            port: 110,
            default_target: None
        }]
    );
    assert_eq!(t.client_left, hello);
    assert_eq!(t.to_server, b"CAPA\r\nSTLS\r\n");
    assert_eq!(t.server_left, b"\x16\x03\x03");
    assert_eq!(t.state, Some(State::Established));

    // No STLS in CAPA: a TLS alert to the client (it already speaks TLS), code 363.
    let t = run(
        Config::default(),
        &client,
        b"+OK\r\n+OK\r\nUSER\r\n.\r\n",
        &whole,
    );
    assert_eq!(t.errors, [363]);
    assert!(t.to_client.ends_with(TLS_HANDSHAKE_FAILURE));
    let t = run(Config::default(), &client, b"+OK\r\n-ERR no\r\n", &whole);
    assert_eq!(t.errors, [362]);
    let t = run(Config::default(), &client, b"* OK imap\r\n", &whole);
    assert_eq!(t.errors, [361]);
}

#[test]
fn refusal_answers_and_closes() {
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    m.poll_transmit();
    m.handle_input(now, b"USER a@b\r\n").unwrap();
    assert!(matches!(m.poll_event(), Some(Event::Request(_))));
    assert_eq!(
        m.poll_timeout(),
        None,
        "no deadline while the driver decides"
    );
    m.handle_refused(LogCode::CONNECT_FAILED);
    assert_eq!(m.poll_transmit().unwrap(), b"-ERR proxy error\r\n");
    assert!(m.is_closed());
    assert_eq!(m.handle_input(now, b"USER c@d\r\n"), Ok(0));
    m.handle_connected(now);
    assert_eq!(m.state(), State::Closed);
}

#[test]
fn timeouts() {
    let t0 = Instant::now();
    let config = Config::default();
    let mut m = Server::new(t0, config.clone());
    assert_eq!(m.poll_timeout(), Some(t0 + config.client_timeout));
    assert_eq!(m.handle_timeout(t0 + Duration::from_secs(29)), None);
    // A command line moves the deadline forward.
    let t1 = t0 + Duration::from_secs(20);
    m.handle_input(t1, b"CAPA\r\n").unwrap();
    assert_eq!(m.poll_timeout(), Some(t1 + config.client_timeout));
    // A partial line does not.
    m.handle_input(t1 + Duration::from_secs(5), b"USER")
        .unwrap();
    assert_eq!(m.poll_timeout(), Some(t1 + config.client_timeout));
    let e = m.handle_timeout(t1 + config.client_timeout).unwrap();
    assert_eq!((e, e.log_code()), (Error::ClientTimeout, 612));
    assert_eq!(m.poll_timeout(), None, "a fired deadline is gone");
    assert_eq!(m.handle_timeout(t1 + Duration::from_secs(999)), None);

    // The server's greeting.
    let mut m = Server::new(t0, config.clone());
    m.handle_input(t0, b"USER a@b\r\n").unwrap();
    m.handle_connected(t1);
    assert_eq!(m.poll_timeout(), Some(t1 + config.server_timeout));
    let e = m.handle_timeout(t1 + config.server_timeout).unwrap();
    assert_eq!(e.log_code(), 621);
    assert_eq!(m.poll_timeout(), None);
    // Established: no deadline, the relay has its own.
    let mut m = Server::new(t0, config);
    m.handle_input(t0, b"USER a@b\r\n").unwrap();
    m.handle_connected(t0);
    m.handle_upstream_input(t0, b"+OK\r\n").unwrap();
    assert_eq!(m.poll_timeout(), None);
}

#[test]
fn end_of_stream() {
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    assert_eq!(m.handle_eof(), Some(Error::ClientClosed));
    let mut m = Server::new(now, Config::default());
    m.handle_input(now, b"USER a@b\r\n").unwrap();
    m.handle_connected(now);
    assert_eq!(m.handle_upstream_eof().log_code(), 621);
    assert!(m.is_closed());
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_queue() {
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    let flood = b"NOOP\r\n".repeat(10_000);
    let used = m.handle_input(now, &flood).unwrap();
    assert!(used < flood.len());
    let mut queued = 0;
    while let Some(b) = m.poll_transmit() {
        queued += b.len();
    }
    assert!(queued < 2 * triproxy_pop3::server::MAX_PENDING_OUTPUT);
    // After draining, the rest is read.
    assert!(m.handle_input(now, &flood[used..]).unwrap() > 0);
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        config_bits in any::<u8>(),
        client in proptest::collection::vec(prop_oneof![
            Just(b"USER a@b\r\n".to_vec()),
            Just(b"STLS\r\n".to_vec()),
            Just(b"CAPA\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ], 0..6),
        server in proptest::collection::vec(any::<u8>(), 0..300),
        split in 1usize..40,
    ) {
        let config = Config {
            starttls: config_bits & 1 == 0,
            max_line: usize::from(config_bits),
            delimiter: if config_bits & 2 == 0 { b'@' } else { b':' },
            ..Config::default()
        };
        let client = client.concat();
        let cut = |b: &[u8]| b.chunks(split).map(<[u8]>::to_vec).collect();
        let t = run(config.clone(), &client, &server, &cut);
        prop_assert_eq!(t, run(config, &client, &server, &whole));
    }
}
