//! The IMAP proxy machine driven like a runtime would: whole transcripts, every prefix and
//! every split of the input, caps, refusals and deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // tests unwrap and need a start instant

use proptest::prelude::*;
use std::time::{Duration, Instant};
use triproxy_imap::server::{MAX_LINE_LEN, MAX_SERVER_LINE_LEN, TLS_HANDSHAKE_FAILURE};
use triproxy_imap::{
    BadCredentials, BadLogin, Config, Error, Event, LogCode, Method, Server, State,
};

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

type Cut<'a> = &'a dyn Fn(&[u8]) -> Vec<Vec<u8>>;

/// Feeds `client` then (after connecting on an event) `server`, each cut into chunks by
/// `cut`, keeping unconsumed bytes as a runtime does (and dropping them once the machine
/// has failed).
fn run(config: Config, client: &[u8], server: &[u8], cut: Cut<'_>) -> Transcript {
    let now = Instant::now();
    let mut m = Server::new(now, config);
    let mut t = Transcript::default();
    drain(&mut m, &mut t);
    t.client_left = feed(&mut m, &mut t, client, cut, |m, b| m.handle_input(now, b));
    if !t.events.is_empty() && t.errors.is_empty() {
        m.handle_connected(now);
        t.server_left = feed(&mut m, &mut t, server, cut, |m, b| {
            m.handle_upstream_input(now, b)
        });
    }
    t.state = Some(m.state());
    t
}

fn feed(
    m: &mut Server,
    t: &mut Transcript,
    bytes: &[u8],
    cut: Cut<'_>,
    input: impl Fn(&mut Server, &[u8]) -> Result<usize, Error>,
) -> Vec<u8> {
    let mut held = Vec::new();
    for piece in cut(bytes) {
        held.extend_from_slice(&piece);
        match input(m, &held) {
            Ok(n) => {
                held.drain(..n);
            }
            Err(e) => {
                t.errors.push(e.log_code());
                drain(m, t);
                return Vec::new();
            }
        }
        drain(m, t);
    }
    held
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

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn request(t: &Transcript) -> &triproxy_imap::Request {
    match t.events.as_slice() {
        [Event::Request(r)] => r,
        other => panic!("{other:?}"),
    }
}

const GREETING: &str =
    "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=LOGIN] IMAP4rev1 Proxy Ready\r\n";
const CLIENT: &[u8] = b"c1 CAPABILITY\r\nc2 NOOP\r\nc3 SELECT INBOX\r\nc4 LOGIN alice@imap.example.org:1143 \"pass word\"\r\nc5 SELECT INBOX\r\n";
const SERVER: &[u8] =
    b"* OK Dovecot ready.\r\n* CAPABILITY IMAP4rev1 LITERAL+\r\nzz OK done\r\nc4 OK logged in\r\n";

#[test]
fn full_login_transcript() {
    let t = run(Config::default(), CLIENT, SERVER, &whole);
    let expected = [
        GREETING,
        "* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=LOGIN\r\n",
        "c1 OK CAPABILITY completed\r\n",
        "c2 OK NOOP completed\r\n",
        "c3 BAD need LOGIN first\r\n",
    ]
    .concat();
    assert_eq!(text(&t.to_client), expected);
    let r = request(&t);
    assert_eq!(r.target.to_string(), "imap.example.org:1143");
    assert_eq!(r.user, b"alice");
    assert_eq!(r.password, b"pass word");
    assert_eq!(r.tag, b"c4");
    assert_eq!(r.method, Method::Login);
    assert_eq!(r.log_text, "alice@imap.example.org:1143");
    assert!(
        !format!("{r:?}").contains("pass word"),
        "the password is not in Debug"
    );
    assert_eq!(
        text(&t.to_server),
        "zz CAPABILITY\r\nc4 LOGIN alice \"pass word\"\r\n"
    );
    assert_eq!(t.client_left, b"c5 SELECT INBOX\r\n");
    assert_eq!(t.server_left, b"c4 OK logged in\r\n");
    assert_eq!(t.state, Some(State::Established));
    assert!(t.errors.is_empty());
}

#[test]
fn authenticate_plain_and_method_choice() {
    // \0bob@mail.example.net\0pw, in the initial response and after a continuation.
    let b64 = "AGJvYkBtYWlsLmV4YW1wbGUubmV0AHB3";
    for client in [
        format!("p AUTHENTICATE PLAIN {b64}\r\n"),
        format!("p authenticate plain\r\n{b64}\r\n"),
    ] {
        // The server offers AUTH=PLAIN in its greeting: no CAPABILITY round trip.
        let server = b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n";
        let t = run(Config::default(), client.as_bytes(), server, &whole);
        let r = request(&t);
        assert_eq!(
            (r.user.as_slice(), r.password.as_slice()),
            (&b"bob"[..], &b"pw"[..])
        );
        assert_eq!(r.method, Method::Plain);
        // \0bob\0pw
        assert_eq!(text(&t.to_server), "p AUTHENTICATE PLAIN AGJvYgBwdw==\r\n");
        assert_eq!(t.state, Some(State::Established));
    }
    // LOGIN from the client, the server offers AUTH=PLAIN: 3proxy logs in with PLAIN.
    let t = run(
        Config::default(),
        b"a LOGIN bob@h pw\r\n",
        b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] hi\r\n",
        &whole,
    );
    assert_eq!(text(&t.to_server), "a AUTHENTICATE PLAIN AGJvYgBwdw==\r\n");
    // Only AUTH=LOGIN: two continuations towards the server.
    let t = run(
        Config::default(),
        b"a LOGIN bob@h pw\r\n",
        b"* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] hi\r\n+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\na OK\r\n",
        &whole,
    );
    assert_eq!(
        text(&t.to_server),
        "a AUTHENTICATE LOGIN\r\nYm9i\r\ncHc=\r\n"
    );
    assert_eq!(t.server_left, b"a OK\r\n");
    assert_eq!(t.state, Some(State::Established));
    // The server refuses AUTHENTICATE LOGIN: 699.
    let t = run(
        Config::default(),
        b"a LOGIN bob@h pw\r\n",
        b"* OK [CAPABILITY IMAP4rev1 AUTH=LOGIN] hi\r\na NO go away\r\n",
        &whole,
    );
    assert_eq!(t.errors, [699]);
    assert!(t.to_client.ends_with(b"a NO proxy error\r\n"));
}

#[test]
fn authenticate_login_from_the_client() {
    // User "carol@h" and password "x y", each in its own continuation.
    let client = b"l AUTHENTICATE LOGIN\r\nY2Fyb2xAaA==\r\neCB5\r\n";
    let t = run(
        Config::default(),
        client,
        b"* OK [CAPABILITY IMAP4rev1] hi\r\n",
        &whole,
    );
    assert!(text(&t.to_client).ends_with("+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n"));
    let r = request(&t);
    assert_eq!(
        (r.user.as_slice(), r.password.as_slice()),
        (&b"carol"[..], &b"x y"[..])
    );
    assert_eq!(r.method, Method::AuthLogin);
    // No AUTH= at the server: LOGIN.
    assert_eq!(text(&t.to_server), "l LOGIN carol \"x y\"\r\n");
    // Cancelled with `*`.
    let t = run(
        Config::default(),
        b"l AUTHENTICATE LOGIN\r\n*\r\nl2 NOOP\r\n",
        b"",
        &whole,
    );
    assert!(
        text(&t.to_client).ends_with("l BAD AUTHENTICATE cancelled\r\nl2 OK NOOP completed\r\n")
    );
    assert!(t.events.is_empty());
}

#[test]
fn proxy_credentials_and_default_target() {
    let d: triproxy_imap::TargetAddr = "192.0.2.9:993".parse().unwrap();
    let config = Config {
        default_target: Some(d.clone()),
        ..Config::default()
    };
    let t = run(config, b"a LOGIN pu:pp:dave secret\r\n", b"", &whole);
    let r = request(&t);
    assert_eq!(r.target, d);
    assert_eq!(r.user, b"dave");
    let p = r.proxy.as_ref().unwrap();
    assert_eq!(
        (p.user.as_slice(), p.password.as_slice()),
        (&b"pu"[..], &b"pp"[..])
    );
    assert_eq!(r.log_text, "dave@192.0.2.9:993");
}

#[test]
fn every_prefix_is_partial() {
    let full = run(Config::default(), CLIENT, b"", &whole);
    let login_end = CLIENT.len() - b"c5 SELECT INBOX\r\n".len();
    for end in 0..login_end {
        let t = run(Config::default(), &CLIENT[..end], b"", &whole);
        assert!(t.errors.is_empty(), "prefix {end}");
        assert!(t.events.is_empty(), "prefix {end}");
        assert!(full.to_client.starts_with(&t.to_client));
    }
    let greeting_end = SERVER.iter().position(|&b| b == b'\n').unwrap() + 1;
    for end in 0..greeting_end {
        let t = run(Config::default(), CLIENT, &SERVER[..end], &whole);
        assert!(t.errors.is_empty());
        assert_eq!(t.state, Some(State::ServerGreeting), "prefix {end}");
        assert!(t.to_server.is_empty());
    }
}

#[test]
fn every_split_gives_the_same_result() {
    let cases: [(&[u8], &[u8]); 6] = [
        (CLIENT, SERVER),
        (b"x LOGOUT\r\ny NOOP\r\n", b""),
        (
            b"p AUTHENTICATE PLAIN\r\nAGJvYkBoAHB3\r\n",
            b"* OK [CAPABILITY AUTH=LOGIN] x\r\n+ \r\n+ \r\np OK\r\n",
        ),
        (
            b"s STARTTLS\r\n\x16\x03\x01",
            b"* OK hi\r\n* CAPABILITY IMAP4rev1 STARTTLS\r\nzz OK\r\nzz OK go\r\n\x16\x03\x03",
        ),
        (
            b"a LOGIN a@b c\r\n",
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] IMAP4rev1 Proxy Ready\r\n",
        ),
        (b"a LOGIN {3}\r\n", b""),
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
    let mut long = b"a LOGIN ".to_vec();
    long.resize(MAX_LINE_LEN, b'x');
    let t = run(Config::default(), &long, b"", &whole);
    assert_eq!(t.errors, [692]);
    assert!(t.to_client.ends_with(b"* NO proxy error\r\n"));
    long.pop();
    assert!(run(Config::default(), &long, b"", &whole).errors.is_empty());
    let config = Config {
        max_line: 20,
        ..Config::default()
    };
    let t = run(config, b"a LOGIN alice@example.org pw\r\n", b"", &whole);
    assert_eq!(t.errors, [692]);
    let t = run(
        Config::default(),
        b"a LOGIN a@b c\r\n",
        &vec![b'*'; MAX_SERVER_LINE_LEN],
        &whole,
    );
    assert_eq!(t.errors, [695]);
    assert!(t.to_client.ends_with(b"a NO proxy error\r\n"));
}

#[test]
fn bad_login_forms() {
    let err = |line: &[u8]| {
        let now = Instant::now();
        let mut m = Server::new(now, Config::default());
        m.handle_input(now, line).unwrap_err()
    };
    assert_eq!(err(b"LOGIN\r\n"), Error::BadTag);
    assert_eq!(err(b"\r\n"), Error::BadTag);
    assert_eq!(err(b"+x NOOP\r\n"), Error::BadTag);
    assert_eq!(
        err(b"a LOGIN alice\r\n"),
        Error::BadCredentials(BadCredentials::Syntax)
    );
    assert_eq!(
        err(b"a LOGIN alice@h {5}\r\n"),
        Error::BadCredentials(BadCredentials::Literal)
    );
    assert_eq!(
        err(b"a LOGIN \"alice@h pw\r\n"),
        Error::BadCredentials(BadCredentials::Syntax)
    );
    assert_eq!(
        err(b"a LOGIN alice pw\r\n"),
        Error::BadUser(BadLogin::NoHost)
    );
    assert_eq!(
        err(b"a LOGIN \"@h\" pw\r\n"),
        Error::BadUser(BadLogin::EmptyUser)
    );
    assert_eq!(err(b"a LOGIN a@h:0 pw\r\n").log_code(), 694);
    assert_eq!(
        err(b"a AUTHENTICATE PLAIN ***\r\n"),
        Error::BadCredentials(BadCredentials::Base64)
    );
    // "bob" alone: no NUL.
    assert_eq!(
        err(b"a AUTHENTICATE PLAIN Ym9i\r\n"),
        Error::BadCredentials(BadCredentials::Plain)
    );
    // \0a@h\0p\rw: a CR in the password.
    assert_eq!(
        err(b"a AUTHENTICATE PLAIN AGFAaABwDXc=\r\n").log_code(),
        693
    );
    // The answer carries the tag of the failing command.
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    m.poll_transmit();
    assert!(m.handle_input(now, b"t7 LOGIN x\r\n").is_err());
    assert_eq!(m.poll_transmit().unwrap(), b"t7 NO proxy error\r\n");
    // An unknown mechanism is answered, not fatal.
    let t = run(
        Config::default(),
        b"a AUTHENTICATE CRAM-MD5\r\n",
        b"",
        &whole,
    );
    assert!(t
        .to_client
        .ends_with(b"a NO unsupported authentication mechanism\r\n"));
    assert_eq!(t.state, Some(State::Command));
}

#[test]
fn greeting_loop_and_garbage_are_refused() {
    let ours = run(Config::default(), b"", b"", &whole).to_client;
    for (greeting, code) in [
        (ours.as_slice(), 696),
        (
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN] IMAP4rev1 Proxy Ready\r\n"
                .as_slice(),
            696,
        ),
        (b"* BYE too busy\r\n".as_slice(), 696),
        (b"+OK pop3 here\r\n".as_slice(), 696),
        (b"\x00\xff\x13garbage\n".as_slice(), 696),
        (b"\r\n".as_slice(), 696),
    ] {
        let t = run(Config::default(), b"a LOGIN u@h p\r\n", greeting, &whole);
        assert_eq!(t.errors, [code], "{}", text(greeting));
        assert!(t.to_server.is_empty());
        assert!(t.to_client.ends_with(b"a NO proxy error\r\n"));
        assert_eq!(t.state, Some(State::Closed));
    }
    // A server that never finishes CAPABILITY.
    let t = run(
        Config::default(),
        b"a LOGIN u@h p\r\n",
        b"* OK hi\r\n* junk\r\n",
        &whole,
    );
    assert_eq!(t.state, Some(State::ServerCapability));
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    m.handle_input(now, b"a LOGIN u@h p\r\n").unwrap();
    m.handle_connected(now);
    m.handle_upstream_input(now, b"* OK hi\r\n").unwrap();
    assert_eq!(m.handle_upstream_eof().log_code(), 697);
}

#[test]
fn logout_and_no_starttls() {
    let t = run(
        Config::default(),
        b"x LOGOUT\r\ny LOGIN a@b c\r\n",
        b"",
        &whole,
    );
    assert!(text(&t.to_client).ends_with("* BYE logging out\r\nx OK LOGOUT completed\r\n"));
    assert_eq!(t.state, Some(State::Closed));
    assert!(t.events.is_empty());
    let config = Config {
        starttls: false,
        ..Config::default()
    };
    let t = run(config, b"a CAPABILITY\r\nb STARTTLS\r\n", b"", &whole);
    let s = text(&t.to_client);
    assert!(!s.contains("STARTTLS"), "{s}");
    assert!(s.ends_with("b BAD need LOGIN first\r\n"));
}

#[test]
fn starttls_to_the_server() {
    let hello = b"\x16\x03\x01\x00\x05hello";
    let mut client = b"s STARTTLS\r\n".to_vec();
    client.extend_from_slice(hello);
    let server = b"* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\nzz OK go\r\n\x16\x03\x03";
    let t = run(Config::default(), &client, server, &whole);
    assert!(t.to_client.ends_with(b"s OK Begin TLS negotiation\r\n"));
    assert_eq!(
        t.events,
        [Event::StartTls {
            port: 143,
            default_target: None
        }]
    );
    assert_eq!(t.client_left, hello);
    assert_eq!(t.to_server, b"zz STARTTLS\r\n");
    assert_eq!(t.server_left, b"\x16\x03\x03");
    assert_eq!(t.state, Some(State::Established));
    // Not offered: a TLS alert to the client, 363.
    let t = run(
        Config::default(),
        &client,
        b"* OK hi\r\n* CAPABILITY IMAP4rev1\r\nzz OK\r\n",
        &whole,
    );
    assert_eq!(t.errors, [363]);
    assert!(t.to_client.ends_with(TLS_HANDSHAKE_FAILURE));
    let t = run(
        Config::default(),
        &client,
        b"* OK [CAPABILITY STARTTLS] hi\r\nzz NO\r\n",
        &whole,
    );
    assert_eq!(t.errors, [363]);
    let t = run(Config::default(), &client, b"+OK pop\r\n", &whole);
    assert_eq!(t.errors, [361]);
}

#[test]
fn refusal_answers_and_closes() {
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    m.poll_transmit();
    m.handle_input(now, b"A01 LOGIN a@b c\r\n").unwrap();
    assert!(matches!(m.poll_event(), Some(Event::Request(_))));
    assert_eq!(
        m.poll_timeout(),
        None,
        "no deadline while the driver decides"
    );
    m.handle_refused(LogCode::CONNECT_FAILED);
    assert_eq!(m.poll_transmit().unwrap(), b"A01 NO proxy error\r\n");
    assert!(m.is_closed());
    assert_eq!(m.handle_input(now, b"A02 NOOP\r\n"), Ok(0));
}

#[test]
fn timeouts() {
    let t0 = Instant::now();
    let config = Config::default();
    let mut m = Server::new(t0, config.clone());
    assert_eq!(m.poll_timeout(), Some(t0 + config.client_timeout));
    let t1 = t0 + Duration::from_secs(20);
    m.handle_input(t1, b"a NOOP\r\n").unwrap();
    assert_eq!(m.poll_timeout(), Some(t1 + config.client_timeout));
    assert_eq!(m.handle_timeout(t1 + Duration::from_secs(29)), None);
    let e = m.handle_timeout(t1 + config.client_timeout).unwrap();
    assert_eq!((e, e.log_code()), (Error::ClientTimeout, 692));
    assert_eq!(m.poll_timeout(), None);

    // Inside AUTHENTICATE: 698.
    let mut m = Server::new(t0, config.clone());
    m.handle_input(t0, b"a AUTHENTICATE PLAIN\r\n").unwrap();
    assert_eq!(
        m.handle_timeout(t0 + config.client_timeout)
            .unwrap()
            .log_code(),
        698
    );

    // The server's greeting, then its CAPABILITY answer: the deadline moves with each line.
    let mut m = Server::new(t0, config.clone());
    m.handle_input(t0, b"a LOGIN u@h p\r\n").unwrap();
    m.handle_connected(t1);
    assert_eq!(m.poll_timeout(), Some(t1 + config.server_timeout));
    let t2 = t1 + Duration::from_secs(10);
    m.handle_upstream_input(t2, b"* OK hi\r\n").unwrap();
    assert_eq!(m.poll_timeout(), Some(t2 + config.server_timeout));
    assert_eq!(
        m.handle_timeout(t2 + config.server_timeout)
            .unwrap()
            .log_code(),
        697
    );
    assert_eq!(m.poll_timeout(), None);
    let mut m = Server::new(t0, config);
    m.handle_input(t0, b"a LOGIN u@h p\r\n").unwrap();
    m.handle_connected(t0);
    assert_eq!(
        m.handle_timeout(t0 + Duration::from_secs(60))
            .unwrap()
            .log_code(),
        695
    );
}

#[test]
fn a_client_that_never_reads_cannot_grow_the_queue() {
    let now = Instant::now();
    let mut m = Server::new(now, Config::default());
    let flood = b"a CAPABILITY\r\n".repeat(10_000);
    let used = m.handle_input(now, &flood).unwrap();
    assert!(used < flood.len());
    let mut queued = 0;
    while let Some(b) = m.poll_transmit() {
        queued += b.len();
    }
    assert!(queued < 2 * triproxy_imap::server::MAX_PENDING_OUTPUT);
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(
        config_bits in any::<u8>(),
        client in proptest::collection::vec(prop_oneof![
            Just(b"a LOGIN u@h p\r\n".to_vec()),
            Just(b"b AUTHENTICATE PLAIN\r\n".to_vec()),
            Just(b"c AUTHENTICATE LOGIN\r\n".to_vec()),
            Just(b"d STARTTLS\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ], 0..6),
        server in proptest::collection::vec(prop_oneof![
            Just(b"* OK hi\r\n".to_vec()),
            Just(b"* CAPABILITY STARTTLS AUTH=LOGIN\r\n".to_vec()),
            Just(b"zz OK\r\n".to_vec()),
            Just(b"+ \r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..64),
        ], 0..6),
        split in 1usize..40,
    ) {
        let config = Config {
            starttls: config_bits & 1 == 0,
            max_line: usize::from(config_bits),
            delimiter: if config_bits & 2 == 0 { b'@' } else { b'%' },
            ..Config::default()
        };
        let client = client.concat();
        let server = server.concat();
        let cut = |b: &[u8]| b.chunks(split).map(<[u8]>::to_vec).collect();
        let t = run(config.clone(), &client, &server, &cut);
        prop_assert_eq!(t, run(config, &client, &server, &whole));
    }
}
