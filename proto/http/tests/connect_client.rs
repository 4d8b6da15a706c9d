//! The CONNECT client machine driven as a runtime drives it: golden transcripts per
//! scenario, and every way of cutting the parent's answer into reads gives the same
//! transcript as one read (STYLE.md §13, §14).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::*;
use std::time::Duration;
use triproxy_http::{
    ConnectClient, ConnectError, ConnectEvent, ConnectState, CredentialField, HeadError,
    MAX_RESPONSE_HEAD,
};
use triproxy_wire::{DomainName, LogCode, TargetAddr};

const OK: &[u8] = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: p\r\n\r\n";

/// Checks that `stream` gives `whole`'s transcript when cut at every single point and when
/// delivered byte by byte.
fn same_for_every_split(cfg: &triproxy_http::ConnectConfig, stream: &[u8]) -> Transcript {
    let whole = drive(cfg, &[stream]);
    assert_eq!(drive(cfg, &bytewise(stream)), whole, "byte by byte");
    for cut in 1..stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(drive(cfg, &[a, b]), whole, "cut at {cut}");
    }
    whole
}

// ------------------------------------------------------------- request bytes

fn request(cfg: triproxy_http::ConnectConfig) -> Vec<u8> {
    let mut c = ConnectClient::new(t0(), cfg).unwrap();
    let req = c.poll_transmit().unwrap();
    assert_eq!(c.poll_transmit(), None);
    req
}

#[test]
fn request_ipv4() {
    assert_eq!(
        request(config(ip("198.51.100.9:8080"), None)),
        b"CONNECT 198.51.100.9:8080 HTTP/1.1\r\nHost: 198.51.100.9:8080\r\n\r\n"
    );
}

#[test]
fn request_ipv6_is_bracketed() {
    assert_eq!(
        request(config(ip("[2001:db8::1]:443"), None)),
        b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"
    );
}

#[test]
fn request_domain() {
    assert_eq!(
        request(config(name("www.example.com", 443), None)),
        b"CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n"
    );
}

#[test]
fn request_with_credentials() {
    // printf 'user:p@ss w0rd' | base64  ->  dXNlcjpwQHNzIHcwcmQ=
    assert_eq!(
        request(config(ip("192.0.2.1:25"), Some(("user", "p@ss w0rd")))),
        b"CONNECT 192.0.2.1:25 HTTP/1.1\r\nHost: 192.0.2.1:25\r\n\
          Proxy-Authorization: Basic dXNlcjpwQHNzIHcwcmQ=\r\n\r\n"
    );
    // Empty password: "u:" -> dTo=
    assert_eq!(
        request(config(ip("192.0.2.1:25"), Some(("u", "")))),
        b"CONNECT 192.0.2.1:25 HTTP/1.1\r\nHost: 192.0.2.1:25\r\n\
          Proxy-Authorization: Basic dTo=\r\n\r\n"
    );
}

#[test]
fn long_request_is_one_transmit() {
    // Longer than triproxy_wire::MAX_TRANSMIT (528): still one buffer, whole.
    let host = "h".repeat(255);
    let user = "u".repeat(300);
    let req = request(config(name(&host, 1), Some((&user, "p"))));
    assert!(req.len() > 528 + 400);
    assert!(req.starts_with(format!("CONNECT {host}:1 HTTP/1.1\r\nHost: {host}:1\r\n").as_bytes()));
    assert!(req.ends_with(b"\r\n\r\n"));
}

#[test]
fn injection_is_refused_before_anything_is_sent() {
    let cases = [
        (
            ("alice\r\nX-Evil: 1", "pw"),
            CredentialField::Username,
            b'\r',
        ),
        (
            ("alice", "pw\r\nX-Evil: 1"),
            CredentialField::Password,
            b'\r',
        ),
        (("alice", "pw\n"), CredentialField::Password, b'\n'),
        (("al\0ice", "pw"), CredentialField::Username, 0),
        (("al:ice", "pw"), CredentialField::Username, b':'),
    ];
    for ((user, pass), field, byte) in cases {
        let e =
            ConnectClient::new(t0(), config(ip("192.0.2.1:80"), Some((user, pass)))).unwrap_err();
        assert_eq!(e, ConnectError::InvalidCredentials { field, byte });
        assert_eq!(e.log_code(), LogCode(31));
        assert!(!e.to_string().is_empty());
    }
    let evil = TargetAddr::Domain(DomainName::new(b"a.org:80 HTTP/1.1\r\nX: y").unwrap(), 80);
    let e = ConnectClient::new(t0(), config(evil, None)).unwrap_err();
    assert_eq!(e, ConnectError::InvalidHost { byte: b':' });
    assert_eq!(e.log_code(), LogCode(31));
}

// ------------------------------------------------------------- transcripts

#[test]
fn established_hands_back_the_target_data() {
    let cfg = config(name("example.org", 443), None);
    let mut stream = OK.to_vec();
    stream.extend_from_slice(b"\x16\x03\x01 TLS from the target");
    let t = same_for_every_split(&cfg, &stream);
    assert_eq!(
        t.sent,
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
    );
    assert_eq!(t.log, "event Established\neof None\n");
    assert_eq!(t.state, ConnectState::Established);
    assert_eq!(t.left, b"\x16\x03\x01 TLS from the target");
}

#[test]
fn http10_reply() {
    let cfg = config(ip("192.0.2.7:80"), None);
    let t = same_for_every_split(&cfg, b"HTTP/1.0 200 OK\r\n\r\nx");
    assert_eq!(t.log, "event Established\neof None\n");
    assert_eq!(t.left, b"x");
}

#[test]
fn interim_then_established() {
    let cfg = config(ip("192.0.2.7:80"), None);
    let t = same_for_every_split(
        &cfg,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nyz",
    );
    assert_eq!(t.log, "event Established\neof None\n");
    assert_eq!(t.left, b"yz");
}

#[test]
fn proxy_auth_required_is_refused_33() {
    let cfg = config(name("example.org", 443), Some(("alice", "wrong")));
    let head = b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                 Proxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 9\r\n\r\n";
    let mut stream = head.to_vec();
    stream.extend_from_slice(b"go away\r\n");
    let t = same_for_every_split(&cfg, &stream);
    assert_eq!(t.log, "event Refused { status: 407 }\neof None\n");
    assert_eq!(t.state, ConnectState::Closed);
    assert!(t.left.is_empty());
    assert_eq!(
        ConnectError::Refused { status: 407 }.log_code(),
        LogCode(33)
    );
    // The machine consumed the head only; the body stays with the driver.
    let mut c = ConnectClient::new(t0(), cfg).unwrap();
    assert_eq!(c.handle_input(t0(), &stream), Ok(head.len()));
    assert_eq!(c.handle_input(t0(), &stream[head.len()..]), Ok(0));
}

#[test]
fn garbage_is_32() {
    let cfg = config(ip("192.0.2.7:80"), None);
    let t = same_for_every_split(&cfg, b"\x05\x00\x00\x01\xc0\x00\x02\x07\x00\x50");
    assert_eq!(
        t.log,
        "error Malformed { reason: Version } code 00032\neof None\n"
    );
    assert_eq!(t.state, ConnectState::Closed);
    let t = same_for_every_split(&cfg, b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n");
    assert_eq!(
        t.log,
        "error Malformed { reason: HeaderName } code 00032\neof None\n"
    );
}

#[test]
fn head_over_the_cap_is_32() {
    let cfg = config(ip("192.0.2.7:80"), None);
    let mut stream = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    stream.resize(MAX_RESPONSE_HEAD + 100, b'a');
    stream.extend_from_slice(b"\r\n\r\n");
    let whole = drive(&cfg, &[&stream]);
    assert_eq!(
        whole.log,
        "error Malformed { reason: TooLarge } code 00032\neof None\n"
    );
    // Byte by byte, the driver never holds more than the cap before the error.
    assert_eq!(drive(&cfg, &bytewise(&stream)), whole);
    let mut c = ConnectClient::new(t0(), cfg).unwrap();
    assert_eq!(
        c.handle_input(t0(), &stream[..MAX_RESPONSE_HEAD - 1]),
        Ok(0)
    );
    assert_eq!(
        c.handle_input(t0(), &stream[..MAX_RESPONSE_HEAD]),
        Err(ConnectError::Malformed {
            reason: HeadError::TooLarge
        })
    );
}

#[test]
fn eof_before_the_head_is_34() {
    let cfg = config(ip("192.0.2.7:80"), None);
    let t = same_for_every_split(&cfg, b"HTTP/1.1 200 OK\r\nProxy-Agent: p\r\n");
    assert_eq!(t.log, "eof Some(Closed)\n");
    assert_eq!(t.state, ConnectState::AwaitingReply);
    assert_eq!(ConnectError::Closed.log_code(), LogCode(34));
    let t = drive(&cfg, &[]);
    assert_eq!(t.log, "eof Some(Closed)\n");
}

#[test]
fn every_strict_prefix_consumes_nothing() {
    let mut c = ConnectClient::new(t0(), config(ip("192.0.2.7:80"), None)).unwrap();
    for end in 0..OK.len() {
        assert_eq!(c.handle_input(t0(), &OK[..end]), Ok(0), "prefix {end}");
        assert_eq!(c.state(), ConnectState::AwaitingReply);
        assert_eq!(c.poll_event(), None);
    }
    assert_eq!(c.handle_input(t0(), OK), Ok(OK.len()));
    assert_eq!(c.poll_event(), Some(ConnectEvent::Established));
}

// ------------------------------------------------------------- virtual time

#[test]
fn timeout_is_32_and_the_deadline_moves_on() {
    let now = t0();
    let mut c = ConnectClient::new(now, config(ip("192.0.2.7:80"), None)).unwrap();
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, now + TIMEOUT);
    // Bytes arriving do not move the deadline: it covers the whole exchange.
    assert_eq!(
        c.handle_input(
            now + Duration::from_secs(30),
            b"HTTP/1.1 100 Continue\r\n\r\n"
        ),
        Ok(25)
    );
    assert_eq!(c.poll_timeout(), Some(deadline));
    assert_eq!(c.handle_timeout(now + Duration::from_secs(59)), None);
    let e = c.handle_timeout(deadline).unwrap();
    assert_eq!(e, ConnectError::Timeout);
    assert_eq!(e.log_code(), LogCode(32));
    assert_eq!(c.state(), ConnectState::Closed);
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.handle_eof(), None);
    assert_eq!(c.handle_input(deadline, OK), Ok(0));
    assert_eq!(c.poll_event(), None);
}

#[test]
fn no_deadline_after_success() {
    let mut c = ConnectClient::new(t0(), config(ip("192.0.2.7:80"), None)).unwrap();
    assert_eq!(c.handle_input(t0(), OK), Ok(OK.len()));
    assert_eq!(c.poll_timeout(), None);
    assert_eq!(c.handle_timeout(t0() + TIMEOUT * 2), None);
    assert_eq!(c.state(), ConnectState::Established);
}
