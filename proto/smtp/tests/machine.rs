//! Transcripts of whole sessions, splits, limits, refusals and deadlines.

mod common;

use common::{b64, client_ip, run, whole, Decision, Run};
use std::time::Duration;
use triproxy_smtp::{
    Config, CredentialsError, Error, Event, Mechanism, Proxy, Request, State, Step,
};
use triproxy_wire::LogCode;

const SERVER_PLAIN: &[u8] = b"220 mail.example ESMTP\r\n\
250-mail.example\r\n250-SIZE 1000\r\n250-AUTH LOGIN PLAIN\r\n250 8BITMIME\r\n\
334 \r\n\
235 2.7.0 Authentication successful\r\n";

const SERVER_LOGIN: &[u8] = b"220-mail.example ESMTP\r\n220 welcome\r\n\
250-mail.example\r\n250-AUTH=LOGIN\r\n250 DSN\r\n\
334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n\
235 ok\r\n";

fn plain_ir() -> Vec<u8> {
    format!(
        "EHLO me\r\nAUTH PLAIN {}\r\nMAIL FROM:<a@b>\r\n",
        b64(b"\0bob@mail.example:2525\0s3cret")
    )
    .into_bytes()
}

fn plain_no_ir() -> Vec<u8> {
    format!(
        "HELO me\r\nauth plain\r\n{}\r\n",
        b64(b"\0bob@mail.example\0s3cret")
    )
    .into_bytes()
}

fn login() -> Vec<u8> {
    format!(
        "EHLO me\r\nAUTH LOGIN\r\n{}\r\n{}\r\n",
        b64(b"bob@10.1.2.3"),
        b64(b"s3cret")
    )
    .into_bytes()
}

fn upstream_plain_bytes() -> Vec<u8> {
    format!(
        "EHLO [192.0.2.7]\r\nAUTH PLAIN\r\n{}\r\n",
        b64(b"\0bob\0s3cret")
    )
    .into_bytes()
}

fn upstream_login_bytes() -> Vec<u8> {
    format!(
        "EHLO [192.0.2.7]\r\nAUTH LOGIN\r\n{}\r\n{}\r\n",
        b64(b"bob"),
        b64(b"s3cret")
    )
    .into_bytes()
}

const EHLO_ANSWER: &str =
    "250-Proxy\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 DSN\r\n";

fn connect_event(run: &Run) -> &Request {
    match run.events.first() {
        Some(Event::Connect(r)) => r,
        other => panic!("no Connect: {other:?}"),
    }
}

#[test]
fn plain_with_initial_response_and_upstream_plain() {
    let r = whole(
        Config::default(),
        &plain_ir(),
        Decision::Connect,
        SERVER_PLAIN,
    );
    assert_eq!(r.error, None);
    assert_eq!(r.state, State::Established);
    assert_eq!(
        String::from_utf8_lossy(&r.to_client),
        format!("220 Proxy\r\n{EHLO_ANSWER}235 2.7.0 Authentication successful\r\n")
    );
    assert_eq!(r.to_server, upstream_plain_bytes());
    assert_eq!(r.client_left, b"MAIL FROM:<a@b>\r\n");
    assert!(r.server_left.is_empty());
    let req = connect_event(&r);
    assert_eq!(req.target.to_string(), "mail.example:2525");
    assert_eq!(req.log_text.as_deref(), Some("bob@mail.example:2525"));
    let c = req.credentials.as_ref().unwrap();
    assert_eq!(
        (c.user.as_slice(), c.password.as_slice()),
        (&b"bob"[..], &b"s3cret"[..])
    );
    assert_eq!(c.mechanism, Mechanism::Plain);
    assert_eq!(r.events.len(), 1);
}

#[test]
fn plain_without_initial_response() {
    let r = whole(
        Config::default(),
        &plain_no_ir(),
        Decision::Connect,
        SERVER_PLAIN,
    );
    assert_eq!(r.error, None);
    assert_eq!(
        String::from_utf8_lossy(&r.to_client),
        "220 Proxy\r\n250 Proxy\r\n334 \r\n235 2.7.0 Authentication successful\r\n"
    );
    let req = connect_event(&r);
    assert_eq!(req.target.to_string(), "mail.example:587");
    assert_eq!(req.log_text.as_deref(), Some("bob@mail.example"));
}

#[test]
fn login_and_upstream_login() {
    let r = whole(Config::default(), &login(), Decision::Connect, SERVER_LOGIN);
    assert_eq!(r.error, None);
    assert_eq!(r.state, State::Established);
    assert_eq!(
        String::from_utf8_lossy(&r.to_client),
        format!("220 Proxy\r\n{EHLO_ANSWER}334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n")
    );
    assert_eq!(r.to_server, upstream_login_bytes());
    let req = connect_event(&r);
    assert_eq!(req.target.to_string(), "10.1.2.3:587");
    assert_eq!(
        req.credentials.as_ref().unwrap().mechanism,
        Mechanism::Login
    );
}

#[test]
fn login_with_initial_user() {
    let client = format!(
        "AUTH LOGIN {}\r\n{}\r\n",
        b64(b"bob@10.1.2.3"),
        b64(b"s3cret")
    );
    let r = whole(
        Config::default(),
        client.as_bytes(),
        Decision::Connect,
        SERVER_PLAIN,
    );
    assert_eq!(r.error, None);
    assert_eq!(r.to_server, upstream_plain_bytes());
    assert!(String::from_utf8_lossy(&r.to_client).starts_with("220 Proxy\r\n334 UGFzc3dvcmQ6\r\n"));
}

#[test]
fn server_bytes_after_the_verdict_are_left() {
    let mut server = SERVER_PLAIN.to_vec();
    server.extend_from_slice(b"250 early\r\n");
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, &server);
    assert_eq!(r.state, State::Established);
    assert_eq!(r.server_left, b"250 early\r\n");
}

/// Every cut of the client and server streams into two, and byte-by-byte feeding, give
/// the same session as whole streams.
#[test]
fn every_split_gives_the_same_session() {
    for (client, server) in [
        (plain_ir(), SERVER_PLAIN.to_vec()),
        (plain_no_ir(), SERVER_PLAIN.to_vec()),
        (login(), SERVER_LOGIN.to_vec()),
    ] {
        let expected = whole(Config::default(), &client, Decision::Connect, &server);
        for cut in 0..=client.len() {
            let (a, b) = client.split_at(cut);
            let r = run(Config::default(), &[a, b], Decision::Connect, &[&server]);
            assert_eq!(r, expected, "client cut at {cut}");
        }
        for cut in 0..=server.len() {
            let (a, b) = server.split_at(cut);
            let r = run(Config::default(), &[&client], Decision::Connect, &[a, b]);
            assert_eq!(r, expected, "server cut at {cut}");
        }
        let bytes: Vec<&[u8]> = client.chunks(1).collect();
        let sbytes: Vec<&[u8]> = server.chunks(1).collect();
        assert_eq!(
            run(Config::default(), &bytes, Decision::Connect, &sbytes),
            expected
        );
    }
}

/// A strict prefix of any line is consumed by nothing and changes nothing.
#[test]
fn every_prefix_is_partial() {
    let now = common::t0();
    let line = format!("AUTH PLAIN {}\r\n", b64(b"\0bob@mail.example\0s3cret"));
    for end in 0..line.len() {
        let mut p = Proxy::new(now, Config::default(), client_ip());
        p.poll_transmit();
        assert_eq!(p.handle_input(now, &line.as_bytes()[..end]), Ok(0));
        assert_eq!((p.poll_transmit(), p.poll_event()), (None, None));
        assert_eq!(p.state(), State::Command);
    }
    let reply = b"250-mail.example\r\n250 AUTH PLAIN\r\n";
    for end in 0..reply.len() {
        let mut p = Proxy::new(now, Config::default(), client_ip());
        p.handle_input(now, line.as_bytes()).unwrap();
        p.handle_connected(now);
        p.handle_upstream_input(now, b"220 hi\r\n").unwrap();
        while p.poll_upstream_transmit().is_some() {}
        let used = p.handle_upstream_input(now, &reply[..end]).unwrap();
        assert!(used == 0 || used == 18, "prefix {end} used {used}");
        assert_eq!(p.poll_upstream_transmit(), None);
        assert_eq!(p.state(), State::Ehlo);
    }
}

#[test]
fn answers_before_auth() {
    let r = whole(
        Config::default(),
        b"helo x\r\nNOOP\r\nrset\r\nMAIL FROM:<a@b>\r\nAUTH CRAM-MD5\r\n\r\nQUIT\r\nNOOP\r\n",
        Decision::Connect,
        b"",
    );
    assert_eq!(
        String::from_utf8_lossy(&r.to_client),
        "220 Proxy\r\n250 Proxy\r\n250 Proxy\r\n250 Proxy\r\n571 need AUTH first\r\n\
         504 5.5.4 proxy: use AUTH PLAIN or AUTH LOGIN\r\n500 5.5.2 proxy: syntax error\r\n\
         221 Proxy\r\n"
    );
    assert_eq!((r.state, r.error), (State::Done, None));
    assert_eq!(r.client_left, b"NOOP\r\n");
}

#[test]
fn ehlo_without_starttls_under_x() {
    let config = Config {
        starttls: false,
        ..Config::default()
    };
    let r = whole(config, b"EHLO x\r\nSTARTTLS\r\n", Decision::Connect, b"");
    assert_eq!(
        String::from_utf8_lossy(&r.to_client),
        "220 Proxy\r\n250-Proxy\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 DSN\r\n\
         571 need AUTH first\r\n"
    );
}

#[test]
fn starttls_hands_over_to_tls() {
    let r = whole(
        Config::default(),
        b"STARTTLS\r\n\x16\x03\x01",
        Decision::Connect,
        b"",
    );
    assert_eq!(r.events, vec![Event::StartTls { port: 587 }]);
    assert_eq!(r.state, State::StartTls);
    assert_eq!(r.client_left, b"\x16\x03\x01");
    assert!(r.to_client.ends_with(b"220 2.0.0 Ready to start TLS\r\n"));
}

#[test]
fn default_target_without_auth_relays_the_command() {
    let config = Config {
        default_target: Some("10.0.0.1:25".parse().unwrap()),
        ..Config::default()
    };
    let r = whole(
        config,
        b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
        Decision::Connect,
        b"220 hi\r\n250-hi\r\n250 AUTH PLAIN\r\n",
    );
    assert_eq!(r.error, None);
    assert_eq!(r.state, State::Established);
    assert_eq!(r.client_left, b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
    assert_eq!(r.to_server, b"EHLO [192.0.2.7]\r\n");
    let req = connect_event(&r);
    assert_eq!(
        (req.target.to_string(), &req.credentials),
        ("10.0.0.1:25".into(), &None)
    );
}

#[test]
fn server_without_auth_gets_a_235() {
    let r = whole(
        Config::default(),
        &plain_ir(),
        Decision::Connect,
        b"220 hi\r\n250-hi\r\n250 SIZE\r\n",
    );
    assert_eq!(r.state, State::Established);
    assert_eq!(r.to_server, b"EHLO [192.0.2.7]\r\n");
    assert!(r
        .to_client
        .ends_with(b"235 2.7.0 proxy: server asks for no authentication\r\n"));
}

#[test]
fn ipv6_client_in_ehlo() {
    let now = common::t0();
    let mut p = Proxy::new(now, Config::default(), "2001:db8::1".parse().unwrap());
    p.handle_input(now, &plain_ir()).unwrap();
    p.handle_connected(now);
    p.handle_upstream_input(now, b"220 hi\r\n").unwrap();
    assert_eq!(
        p.poll_upstream_transmit().unwrap(),
        b"EHLO [IPv6:2001:db8::1]\r\n"
    );
}

fn code(r: &Run) -> u16 {
    r.error.as_ref().map_or(0, Error::log_code)
}

#[test]
fn greeting_loop_is_refused() {
    for greeting in [&b"220 Proxy\r\n"[..], b"220 PROXY ready\r\n"] {
        let r = whole(Config::default(), &plain_ir(), Decision::Connect, greeting);
        assert_eq!(r.error, Some(Error::Loop));
        assert_eq!(code(&r), 672);
        assert_eq!(r.state, State::Done);
        assert!(r.to_server.is_empty());
        assert!(r
            .to_client
            .ends_with(b"554 5.4.6 proxy: the server is a proxy (loop)\r\n"));
    }
}

#[test]
fn upstream_refusal_passes_the_servers_answer() {
    let server = b"220 hi\r\n250 AUTH PLAIN\r\n334 \r\n535-5.7.8 bad\r\n535 5.7.8 credentials\r\n";
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, server);
    assert_eq!(
        r.error,
        Some(Error::Rejected {
            mechanism: Mechanism::Plain,
            code: 535
        })
    );
    assert_eq!(code(&r), 682);
    assert_eq!(r.state, State::Done);
    assert!(r
        .to_client
        .ends_with(b"535-5.7.8 bad\r\n535 5.7.8 credentials\r\n"));

    let server =
        b"220 hi\r\n250 AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n454 4.7.0 later\r\n";
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, server);
    assert_eq!(code(&r), 681);
    assert!(r.to_client.ends_with(b"454 4.7.0 later\r\n"));

    // A 5xx instead of 334 also goes to the client.
    let server = b"220 hi\r\n250 AUTH LOGIN\r\n504 no\r\n";
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, server);
    assert_eq!(
        r.error,
        Some(Error::Unexpected {
            step: Step::UpstreamLogin,
            code: 504
        })
    );
    assert_eq!(code(&r), 680);
    assert!(r.to_client.ends_with(b"504 no\r\n"));
}

#[test]
fn upstream_greeting_and_ehlo_failures() {
    let r = whole(
        Config::default(),
        &plain_ir(),
        Decision::Connect,
        b"554 go away\r\n",
    );
    assert_eq!(code(&r), 672);
    assert!(r.to_client.ends_with(b"554 go away\r\n"));
    let r = whole(
        Config::default(),
        &plain_ir(),
        Decision::Connect,
        b"hello\r\n",
    );
    assert_eq!(code(&r), 672);
    assert!(r
        .to_client
        .ends_with(b"451 4.3.0 proxy: bad reply from server\r\n"));
    let r = whole(
        Config::default(),
        &plain_ir(),
        Decision::Connect,
        b"220 hi\r\n502 no EHLO\r\n",
    );
    assert_eq!(code(&r), 672);
}

#[test]
fn multi_line_ehlo_is_parsed() {
    // PLAIN is preferred wherever it appears; mechanisms on several AUTH lines add up.
    let server = b"220 hi\r\n250-hi\r\n250-AUTH=LOGIN\r\n250-SIZE 1\r\n250-auth cram-md5 plain\r\n250 OK\r\n";
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, server);
    assert_eq!(r.state, State::UpstreamPlain);
    assert!(r.to_server.ends_with(b"AUTH PLAIN\r\n"));
    let server = b"220 hi\r\n250-hi\r\n250-XAUTH PLAIN\r\n250 AUTH LOGIN\r\n";
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, server);
    assert_eq!(r.state, State::UpstreamLogin);
    // Too many lines in one reply.
    let long = "250-x\r\n".repeat(70);
    let server = format!("220 hi\r\n{long}250 end\r\n");
    let r = whole(
        Config::default(),
        &plain_ir(),
        Decision::Connect,
        server.as_bytes(),
    );
    assert_eq!(r.error, Some(Error::BadReply { step: Step::Ehlo }));
}

#[test]
fn over_long_lines() {
    let long = vec![b'A'; 2000];
    let r = whole(Config::default(), &long, Decision::Connect, b"");
    assert_eq!(
        r.error,
        Some(Error::LineTooLong {
            step: Step::Command,
            limit: 1024
        })
    );
    assert_eq!(code(&r), 662);
    assert!(r.to_client.ends_with(b"500 5.5.2 proxy: line too long\r\n"));
    // A 1024-byte line (CRLF included) passes, 1025 does not.
    let mut ok = vec![b'X'; 1022];
    ok.extend_from_slice(b"\r\n");
    assert_eq!(
        whole(Config::default(), &ok, Decision::Connect, b"").error,
        None
    );
    let mut bad = vec![b'X'; 1023];
    bad.extend_from_slice(b"\r\n");
    assert!(whole(Config::default(), &bad, Decision::Connect, b"")
        .error
        .is_some());
    // A configured lower cap; the step names the code.
    let config = Config {
        max_line: 64,
        ..Config::default()
    };
    let client = format!("AUTH LOGIN\r\n{}\r\n", "QUFB".repeat(20));
    let r = whole(config, client.as_bytes(), Decision::Connect, b"");
    assert_eq!(code(&r), 664);
    // Upstream.
    let mut server = b"220 ".to_vec();
    server.extend_from_slice(&long);
    let r = whole(Config::default(), &plain_ir(), Decision::Connect, &server);
    assert_eq!(
        r.error,
        Some(Error::LineTooLong {
            step: Step::Greeting,
            limit: 1024
        })
    );
}

#[test]
fn bad_auth_forms() {
    let cases: Vec<(String, Error)> = vec![
        (
            "AUTH PLAIN !!!notbase64\r\n".into(),
            Error::BadBase64 {
                step: Step::PlainResponse,
            },
        ),
        (
            format!("AUTH PLAIN {}\r\n", b64(b"\0bob\0pw")),
            Error::Credentials {
                step: Step::PlainResponse,
                why: CredentialsError::NoServer,
            },
        ),
        (
            format!("AUTH PLAIN {}\r\n", b64(b"\0bob@h")),
            Error::Credentials {
                step: Step::PlainResponse,
                why: CredentialsError::PlainFormat,
            },
        ),
        (
            format!("AUTH PLAIN {}\r\n", b64(b"eve\0bob@h\0pw")),
            Error::Credentials {
                step: Step::PlainResponse,
                why: CredentialsError::Authzid,
            },
        ),
        (
            "AUTH LOGIN\r\n%%%\r\n".into(),
            Error::BadBase64 {
                step: Step::LoginUser,
            },
        ),
        (
            "AUTH LOGIN\r\n*\r\n".into(),
            Error::BadBase64 {
                step: Step::LoginUser,
            },
        ),
        (
            format!("AUTH LOGIN\r\n{}\r\n", b64(b"bob")),
            Error::Credentials {
                step: Step::LoginUser,
                why: CredentialsError::NoServer,
            },
        ),
        (
            format!("AUTH LOGIN\r\n{}\r\n", b64(b"bob@h:99999")),
            Error::Credentials {
                step: Step::LoginUser,
                why: CredentialsError::BadPort,
            },
        ),
        (
            format!("AUTH LOGIN\r\n{}\r\n#\r\n", b64(b"bob@h")),
            Error::BadBase64 {
                step: Step::LoginPassword,
            },
        ),
    ];
    for (client, expected) in cases {
        let r = whole(Config::default(), client.as_bytes(), Decision::Connect, b"");
        assert_eq!(r.error, Some(expected), "{client}");
        assert_eq!(r.state, State::Done);
        assert!(r.events.is_empty());
        let last = r
            .to_client
            .rsplit(|&b| b == b'\n')
            .nth(1)
            .unwrap_or_default();
        assert!(
            last.starts_with(b"5"),
            "{client}: {:?}",
            String::from_utf8_lossy(last)
        );
    }
    assert_eq!(
        Error::BadBase64 {
            step: Step::LoginPassword
        }
        .log_code(),
        666
    );
    assert_eq!(
        Error::Credentials {
            step: Step::PlainResponse,
            why: CredentialsError::NoServer
        }
        .log_code(),
        668
    );
}

#[test]
fn refusals() {
    for (code, prefix) in [
        (LogCode(13), "451 "),
        (LogCode(100), "451 "),
        (LogCode(1), "554 "),
        (LogCode(5), "535 "),
    ] {
        let r = whole(
            Config::default(),
            &plain_ir(),
            Decision::Refuse(code),
            b"220 hi\r\n",
        );
        assert_eq!(r.state, State::Done);
        assert!(r.to_server.is_empty());
        let text = String::from_utf8_lossy(&r.to_client);
        assert!(
            text.lines().last().unwrap().starts_with(prefix),
            "{code}: {text}"
        );
        assert_eq!(r.server_left, b"220 hi\r\n");
    }
}

#[test]
fn eofs_have_the_steps_codes() {
    let now = common::t0();
    let mut p = Proxy::new(now, Config::default(), client_ip());
    assert_eq!(p.handle_eof().log_code(), 662);
    let mut p = Proxy::new(now, Config::default(), client_ip());
    p.handle_input(now, b"AUTH LOGIN\r\n").unwrap();
    assert_eq!(p.handle_eof().log_code(), 663);
    let mut p = Proxy::new(now, Config::default(), client_ip());
    p.handle_input(now, b"AUTH PLAIN\r\n").unwrap();
    assert_eq!(p.handle_eof().log_code(), 667);
    let mut p = Proxy::new(now, Config::default(), client_ip());
    p.handle_input(now, &plain_ir()).unwrap();
    p.handle_connected(now);
    assert_eq!(p.handle_upstream_eof().log_code(), 671);
    assert_eq!(p.state(), State::Done);
    let mut p = Proxy::new(now, Config::default(), client_ip());
    p.handle_input(now, &plain_ir()).unwrap();
    p.handle_connected(now);
    p.handle_upstream_input(now, SERVER_PLAIN).unwrap();
    assert!(p.is_established());
    assert_eq!(p.handle_upstream_eof().log_code(), 0);
}

#[test]
fn timeouts() {
    let t0 = common::t0();
    let s = Duration::from_secs(1);
    let mut p = Proxy::new(t0, Config::default(), client_ip());
    assert_eq!(p.poll_timeout(), Some(t0 + 30 * s));
    assert_eq!(p.handle_timeout(t0 + 29 * s), None);
    // A line moves the deadline forward.
    p.handle_input(t0 + 20 * s, b"NOOP\r\n").unwrap();
    assert_eq!(p.poll_timeout(), Some(t0 + 50 * s));
    // A partial line does not.
    p.handle_input(t0 + 25 * s, b"NO").unwrap();
    assert_eq!(p.poll_timeout(), Some(t0 + 50 * s));
    let e = p.handle_timeout(t0 + 50 * s).unwrap();
    assert_eq!(
        e,
        Error::Timeout {
            step: Step::Command
        }
    );
    assert_eq!(e.log_code(), 662);
    assert_eq!(p.poll_timeout(), None);
    assert_eq!(p.state(), State::Done);
    while let Some(t) = p.poll_transmit() {
        if t.starts_with(b"421") {
            break;
        }
        assert_ne!(p.state(), State::Command);
    }

    // No deadline while the driver decides; the server's lines have 60 s each.
    let mut p = Proxy::new(t0, Config::default(), client_ip());
    p.handle_input(t0, &plain_ir()).unwrap();
    assert_eq!(p.poll_timeout(), None);
    p.handle_connected(t0 + s);
    assert_eq!(p.poll_timeout(), Some(t0 + 61 * s));
    p.handle_upstream_input(t0 + 2 * s, b"220 hi\r\n").unwrap();
    assert_eq!(p.poll_timeout(), Some(t0 + 62 * s));
    let e = p.handle_timeout(t0 + 62 * s).unwrap();
    assert_eq!(e.log_code(), 672);
    assert_eq!(p.poll_timeout(), None);

    // Established: no deadline.
    let mut p = Proxy::new(t0, Config::default(), client_ip());
    p.handle_input(t0, &plain_ir()).unwrap();
    p.handle_connected(t0);
    p.handle_upstream_input(t0, SERVER_PLAIN).unwrap();
    assert_eq!(p.poll_timeout(), None);
    assert_eq!(p.handle_timeout(t0 + 1000 * s), None);
}

#[test]
fn too_many_commands() {
    let client = "NOOP\r\n".repeat(65);
    let r = whole(Config::default(), client.as_bytes(), Decision::Connect, b"");
    assert_eq!(r.error, Some(Error::TooManyCommands));
    assert_eq!(code(&r), 662);
}

#[test]
fn errors_display() {
    let e = Error::Rejected {
        mechanism: Mechanism::Login,
        code: 535,
    };
    assert_eq!(
        e.to_string(),
        "smtpp 681: server refused the login (Login: 535)"
    );
    assert_eq!(e.reason(), "server refused the login");
}

#[test]
fn nothing_is_consumed_after_connect() {
    let now = common::t0();
    let mut p = Proxy::new(now, Config::default(), client_ip());
    p.handle_input(now, &plain_ir()).unwrap();
    assert_eq!(p.handle_input(now, b"RCPT TO:<x>\r\n"), Ok(0));
    p.handle_connected(now);
    assert_eq!(p.handle_input(now, b"RCPT TO:<x>\r\n"), Ok(0));
    p.handle_upstream_input(now, SERVER_PLAIN).unwrap();
    assert_eq!(p.handle_input(now, b"RCPT TO:<x>\r\n"), Ok(0));
    assert_eq!(p.handle_upstream_input(now, b"250 x\r\n"), Ok(0));
}

#[test]
fn plain_forms_accepted() {
    // authzid equal to the user, and a delimiter inside the user name.
    let client = format!("AUTH PLAIN {}\r\n", b64(b"a@b@h\0a@b@h\0pw"));
    let r = whole(Config::default(), client.as_bytes(), Decision::Connect, b"");
    let req = connect_event(&r);
    assert_eq!(req.credentials.as_ref().unwrap().user, b"a@b");
    assert_eq!(req.target.to_string(), "h:587");
    // `=` is an empty initial response: not a valid PLAIN response.
    let r = whole(
        Config::default(),
        b"AUTH PLAIN =\r\n",
        Decision::Connect,
        b"",
    );
    assert_eq!(code(&r), 668);
    // Unpadded base64 is accepted.
    let text = b64(b"\0u@h\0p");
    let client = format!("AUTH PLAIN {}\r\n", text.trim_end_matches('='));
    let r = whole(Config::default(), client.as_bytes(), Decision::Connect, b"");
    assert_eq!(r.error, None);
    assert_eq!(r.state, State::Greeting);
}

#[test]
fn refusal_during_the_upstream_handshake() {
    let now = common::t0();
    let mut p = Proxy::new(now, Config::default(), client_ip());
    p.handle_input(now, &plain_ir()).unwrap();
    p.handle_connected(now);
    p.handle_upstream_input(now, b"220 hi\r\n").unwrap();
    p.handle_refused(LogCode(92));
    assert!(p.is_done());
    assert_eq!(p.poll_timeout(), None);
}
