//! The HTTP proxy server machine driven as a runtime drives it: golden transcripts per
//! scenario, every way of cutting the client's bytes into reads gives the transcript of one
//! read (STYLE.md §13, §14), the head bound, every error's answer and code, the answers to
//! decisions, and virtual time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

mod common;

use common::server::*;
use common::t0;
use std::time::Duration;
use triproxy_http::{
    HeadError, ProxyEvent, ProxyRequest, ProxyState, Refusal, RequestError, MAX_METHOD_LEN,
    MAX_REQUEST_HEAD, MAX_REQUEST_HEADERS,
};
use triproxy_wire::{DomainName, LogCode, TargetAddr, MAX_TRANSMIT};

const GRANTED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// Checks that `stream` gives `whole`'s transcript when cut at every single point and when
/// delivered byte by byte.
fn same_for_every_split(decision: Decision, stream: &[u8]) -> Served {
    let whole = serve(decision, &[stream]);
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(serve(decision, &bytes), whole, "byte by byte");
    for cut in 1..stream.len() {
        let (a, b) = stream.split_at(cut);
        assert_eq!(serve(decision, &[a, b]), whole, "cut at {cut}");
    }
    whole
}

/// The request of a head fed whole to a fresh machine.
fn request(head: &[u8]) -> ProxyRequest {
    let mut s = server();
    assert_eq!(s.handle_input(t0(), head), Ok(head.len()), "{head:?}");
    match s.poll_event() {
        Some(ProxyEvent::Request(r)) => r,
        None => panic!("no event for {head:?}"),
    }
}

/// The error of a head fed whole to a fresh machine, after checking the machine is closed
/// and what it queued.
fn error(head: &[u8]) -> RequestError {
    let mut s = server();
    let e = s.handle_input(t0(), head).unwrap_err();
    assert_eq!(s.state(), ProxyState::Closed, "{e:?}");
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.poll_timeout(), None);
    let sent = s.poll_transmit();
    match e.refusal() {
        Some(r) => {
            let sent = sent.unwrap();
            let status = format!("HTTP/1.1 {} ", r.status());
            assert!(sent.starts_with(status.as_bytes()), "{sent:?}");
        }
        None => assert_eq!(sent, None),
    }
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.handle_input(t0(), head), Ok(0), "input after an error");
    e
}

fn name(n: &str, port: u16) -> TargetAddr {
    TargetAddr::Domain(DomainName::new(n.as_bytes()).unwrap(), port)
}

fn ip(s: &str) -> TargetAddr {
    TargetAddr::Ip(s.parse().unwrap())
}

/// The status, headers (lower-cased names) and body of a response.
fn parse_response(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(len) = resp.parse(bytes).unwrap() else {
        panic!("incomplete response {bytes:?}");
    };
    assert_eq!(resp.version, Some(1));
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    (resp.code.unwrap(), headers, bytes[len..].to_vec())
}

// ------------------------------------------------------------- transcripts

#[test]
fn connect_without_credentials() {
    let head =
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\nUser-Agent: t\r\n\r\n";
    let mut stream = head.to_vec();
    stream.extend_from_slice(b"\x16\x03\x01\x02\x00 client hello");
    let t = same_for_every_split(Decision::Grant, &stream);
    assert_eq!(
        t.log,
        "request CONNECT example.org:443 connect=true HTTP/1.1\nGrant\neof None\n"
    );
    assert_eq!(t.sent, GRANTED);
    assert_eq!(t.state, ProxyState::Established);
    assert_eq!(t.consumed, head.len());
    assert_eq!(t.left, b"\x16\x03\x01\x02\x00 client hello");
}

#[test]
fn connect_with_credentials() {
    // "alice:secret"
    let stream = b"CONNECT 192.0.2.7:22 HTTP/1.0\r\nProxy-Authorization: Basic YWxpY2U6c2VjcmV0\r\n\r\nSSH-2.0-x\r\n";
    let t = same_for_every_split(Decision::Grant, stream);
    assert_eq!(
        t.log,
        "request CONNECT 192.0.2.7:22 connect=true HTTP/1.0 user \"alice\" password \"secret\"\n\
         Grant\neof None\n"
    );
    assert_eq!(t.left, b"SSH-2.0-x\r\n");
    let r = request(&stream[..stream.len() - 11]);
    let c = r.credentials.unwrap();
    assert_eq!(
        (c.username, c.password),
        (b"alice".to_vec(), b"secret".to_vec())
    );
    assert_eq!(r.minor_version, 0);
}

#[test]
fn connect_refused_with_407() {
    let stream = b"CONNECT example.org:443 HTTP/1.1\r\n\r\n";
    let t = same_for_every_split(Decision::Refuse(Refusal::AuthRequired), stream);
    assert_eq!(
        t.log,
        "request CONNECT example.org:443 connect=true HTTP/1.1\nRefuse(AuthRequired)\neof None\n"
    );
    assert_eq!(t.state, ProxyState::Closed);
    assert_eq!(
        t.sent,
        b"HTTP/1.1 407 Proxy Authentication Required\r\nConnection: close\r\n\
          Content-Type: text/plain\r\nContent-Length: 40\r\n\
          Proxy-Authenticate: Basic realm=\"proxy\"\r\n\r\n\
          triproxy: proxy authentication required\n"
    );
}

#[test]
fn targets() {
    for (head, target) in [
        (&b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n"[..], ip("[::1]:443")),
        (
            b"CONNECT [2001:db8::7]:8443 HTTP/1.1\r\n\r\n",
            ip("[2001:db8::7]:8443"),
        ),
        (
            b"CONNECT www.example.com:443 HTTP/1.1\r\n\r\n",
            name("www.example.com", 443),
        ),
        (
            b"CONNECT Example.ORG.:443 HTTP/1.1\r\n\r\n",
            name("Example.ORG.", 443),
        ),
        (
            b"CONNECT 198.51.100.1:25 HTTP/1.1\r\n\r\n",
            ip("198.51.100.1:25"),
        ),
        // No port: 80, as 3proxy.
        (
            b"CONNECT example.org HTTP/1.1\r\n\r\n",
            name("example.org", 80),
        ),
        (b"CONNECT [::1] HTTP/1.1\r\n\r\n", ip("[::1]:80")),
    ] {
        let r = request(head);
        assert!(r.connect);
        assert_eq!(r.method, "CONNECT");
        assert_eq!(r.target, target, "{head:?}");
        assert_eq!(r.credentials, None);
        assert_eq!(r.minor_version, 1);
    }
}

#[test]
fn absolute_form_is_reported_not_served() {
    let stream = b"GET http://host.example:8080/x?y=1 HTTP/1.1\r\nHost: host.example:8080\r\n\r\n";
    let t = same_for_every_split(Decision::Refuse(Refusal::NotImplemented), stream);
    assert_eq!(
        t.log,
        "request GET host.example:8080 connect=false HTTP/1.1\nRefuse(NotImplemented)\neof None\n"
    );
    let (status, headers, body) = parse_response(&t.sent);
    assert_eq!(status, 501);
    assert!(headers.contains(&("connection".into(), "close".into())));
    assert_eq!(body, b"triproxy: method not implemented by this proxy\n");
    for (head, method, target) in [
        (
            &b"GET http://a.org/ HTTP/1.0\r\n\r\n"[..],
            "GET",
            name("a.org", 80),
        ),
        (
            b"POST HTTP://a.org HTTP/1.1\r\n\r\n",
            "POST",
            name("a.org", 80),
        ),
        (
            b"OPTIONS http://[::1]:81/ HTTP/1.1\r\n\r\n",
            "OPTIONS",
            ip("[::1]:81"),
        ),
        (
            b"DELETE http://10.0.0.1/a HTTP/1.1\r\n\r\n",
            "DELETE",
            ip("10.0.0.1:80"),
        ),
        // Transparent: origin form, the destination from Host.
        (
            b"GET /index.html HTTP/1.1\r\nHost: a.org:8080\r\n\r\n",
            "GET",
            name("a.org", 8080),
        ),
    ] {
        let r = request(head);
        assert!(!r.connect);
        assert_eq!(r.method, method);
        assert_eq!(r.target, target);
    }
}

#[test]
fn pipelined_bytes_after_the_head_are_not_consumed() {
    let head = b"CONNECT a.org:443 HTTP/1.1\r\n\r\n";
    let mut input = head.to_vec();
    input.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let mut s = server();
    assert_eq!(s.handle_input(t0(), &input), Ok(head.len()));
    // Decision pending: nothing more is read, not even a second request.
    assert_eq!(s.handle_input(t0(), &input[head.len()..]), Ok(0));
    assert!(s.poll_event().is_some());
    assert_eq!(s.poll_event(), None);
    s.handle_granted();
    assert_eq!(s.handle_input(t0(), &input[head.len()..]), Ok(0));
    // Split so that the first read ends inside the head and the second carries its end
    // and the tunnel data: the second read is consumed up to the end of the head only.
    let mut s = server();
    assert_eq!(s.handle_input(t0(), &input[..20]), Ok(20));
    assert_eq!(s.handle_input(t0(), &input[20..]), Ok(head.len() - 20));
}

#[test]
fn leading_empty_lines_and_bare_lf() {
    // RFC 9112 section 2.2: empty lines before the request line are ignored (and consumed).
    let stream = b"\r\n\nCONNECT a.org:1 HTTP/1.1\nHost: a.org:1\n\nx";
    let t = same_for_every_split(Decision::Grant, stream);
    assert_eq!(
        t.log,
        "request CONNECT a.org:1 connect=true HTTP/1.1\nGrant\neof None\n"
    );
    assert_eq!(t.consumed, stream.len() - 1);
    assert_eq!(t.left, b"x");
    // Empty lines only: still waiting.
    let t = same_for_every_split(Decision::Grant, b"\r\n\r\n\n\n");
    assert_eq!(t.log, "eof Some(Closed)\n");
    assert_eq!(t.consumed, 6);
}

#[test]
fn every_strict_prefix_consumes_everything_and_decides_nothing() {
    let head =
        b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n";
    for end in 0..head.len() {
        let mut s = server();
        assert_eq!(s.handle_input(t0(), &head[..end]), Ok(end), "prefix {end}");
        assert_eq!(s.state(), ProxyState::ReadingHead);
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.poll_transmit(), None);
        // The rest completes it, consumed exactly.
        assert_eq!(s.handle_input(t0(), &head[end..]), Ok(head.len() - end));
        assert_eq!(s.state(), ProxyState::AwaitingDecision);
    }
    // Fed piece by piece into one machine.
    let mut s = server();
    for b in &head[..head.len() - 1] {
        assert_eq!(s.handle_input(t0(), &[*b]), Ok(1));
        assert_eq!(s.poll_event(), None);
    }
    assert_eq!(s.handle_input(t0(), &head[head.len() - 1..]), Ok(1));
    let Some(ProxyEvent::Request(r)) = s.poll_event() else {
        panic!()
    };
    assert_eq!(r.credentials.unwrap().username, b"a");
    assert_eq!(s.handle_input(t0(), &[]), Ok(0));
    // The buffer is gone once the head is read.
    assert!(format!("{s:?}").contains("buffered: 0"), "{s:?}");
}

// ------------------------------------------------------------- limits

/// A head of exactly `len` bytes: a CONNECT line, one padding field, the empty line.
fn head_of(len: usize) -> Vec<u8> {
    let mut h = b"CONNECT a.org:443 HTTP/1.1\r\nX-Pad: ".to_vec();
    h.resize(len - 4, b'p');
    h.extend_from_slice(b"\r\n\r\n");
    h
}

#[test]
fn head_of_exactly_the_cap_is_accepted() {
    let mut stream = head_of(MAX_REQUEST_HEAD);
    stream.extend_from_slice(b"tail");
    for parts in [
        vec![&stream[..]],
        stream.chunks(1024).collect(),
        stream.chunks(1).collect(),
    ] {
        let t = serve(Decision::Grant, &parts);
        assert_eq!(
            t.log,
            "request CONNECT a.org:443 connect=true HTTP/1.1\nGrant\neof None\n"
        );
        assert_eq!(t.consumed, MAX_REQUEST_HEAD);
        assert_eq!(t.left, b"tail");
    }
}

#[test]
fn one_byte_more_is_too_large() {
    let stream = head_of(MAX_REQUEST_HEAD + 1);
    for parts in [
        vec![&stream[..]],
        stream.chunks(1024).collect(),
        stream.chunks(1).collect(),
    ] {
        let t = serve(Decision::Grant, &parts);
        assert_eq!(t.log, "error TooLarge code 00516\neof None\n");
        assert_eq!(t.state, ProxyState::Closed);
        let (status, _, body) = parse_response(&t.sent);
        assert_eq!(status, 400);
        assert_eq!(body, b"triproxy: bad request\n");
    }
    // An endless head fails when the cap is reached, not before.
    let mut s = server();
    let junk = vec![b'a'; MAX_REQUEST_HEAD - 1];
    assert_eq!(s.handle_input(t0(), &junk), Ok(MAX_REQUEST_HEAD - 1));
    assert_eq!(s.handle_input(t0(), b"bb"), Err(RequestError::TooLarge));
    assert_eq!(RequestError::TooLarge.log_code(), LogCode(516));
    assert!(s
        .poll_transmit()
        .unwrap()
        .starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
}

#[test]
fn header_count_limit() {
    let mut head = b"CONNECT a.org:443 HTTP/1.1\r\n".to_vec();
    for _ in 0..MAX_REQUEST_HEADERS {
        head.extend_from_slice(b"A: b\r\n");
    }
    let mut ok = head.clone();
    ok.extend_from_slice(b"\r\n");
    assert_eq!(request(&ok).target, name("a.org", 443));
    head.extend_from_slice(b"A: b\r\n\r\n");
    let e = error(&head);
    assert_eq!(
        e,
        RequestError::Malformed {
            reason: HeadError::TooManyHeaders
        }
    );
    assert_eq!(e.log_code(), LogCode(516));
}

#[test]
fn method_length_limit() {
    let ok = format!(
        "{} http://a.org/ HTTP/1.1\r\n\r\n",
        "M".repeat(MAX_METHOD_LEN)
    );
    assert_eq!(request(ok.as_bytes()).method.len(), MAX_METHOD_LEN);
    let long = format!(
        "{} http://a.org/ HTTP/1.1\r\n\r\n",
        "M".repeat(MAX_METHOD_LEN + 1)
    );
    let e = error(long.as_bytes());
    assert_eq!(e, RequestError::MethodTooLong);
    assert_eq!(e.log_code(), LogCode(511));
}

// ------------------------------------------------------------- errors

#[test]
fn each_error_has_its_answer_and_code() {
    let malformed = |reason| RequestError::Malformed { reason };
    for (head, want, code) in [
        // Not HTTP at all: a SOCKS5 greeting, a TLS ClientHello.
        (
            &b"\x05\x01\x00\r\n\r\n"[..],
            malformed(HeadError::Token),
            512,
        ),
        (
            b"\x16\x03\x01\x00\xa5\n\n",
            malformed(HeadError::Token),
            512,
        ),
        (
            b"CONNECT a.org:443 HTTP/2.0\r\n\r\n",
            malformed(HeadError::Version),
            512,
        ),
        (
            b"CONNECT a.org:443\r\n\r\n",
            malformed(HeadError::Token),
            512,
        ),
        (
            b"CONNECT  a.org:443 HTTP/1.1\r\n\r\n",
            malformed(HeadError::Token),
            512,
        ),
        (
            b"CONNECT a.org:443 HTTP/1.1\r\nBad Name: x\r\n\r\n",
            malformed(HeadError::HeaderName),
            512,
        ),
        (
            b"CONNECT a.org:443 HTTP/1.1\r\nA: b\rc\r\n\r\n",
            malformed(HeadError::HeaderValue),
            512,
        ),
        (
            b"\rCONNECT a.org:443 HTTP/1.1\r\n\r\n",
            malformed(HeadError::NewLine),
            512,
        ),
        (
            b"GET https://a.org/ HTTP/1.1\r\n\r\n",
            RequestError::UnsupportedScheme,
            513,
        ),
        (
            b"GET ftp://a.org/f HTTP/1.1\r\n\r\n",
            RequestError::UnsupportedScheme,
            513,
        ),
        // A transparent request without its Host (or with two) has no destination.
        (
            b"GET /index.html HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"GET /index.html HTTP/1.1\r\nHost: a.org\r\nHost: b.org\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            RequestError::UnsupportedScheme,
            513,
        ),
        (
            b"GET a.org:80 HTTP/1.1\r\n\r\n",
            RequestError::UnsupportedScheme,
            513,
        ),
        // Methods are case-sensitive (RFC 9110 section 9.1): this is no CONNECT.
        (
            b"connect a.org:443 HTTP/1.1\r\n\r\n",
            RequestError::UnsupportedScheme,
            513,
        ),
        (
            b"CONNECT a.org:0 HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT a.org:65536 HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT a.org: HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT :443 HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT user@a.org:443 HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT http://a.org/ HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT [::1:443 HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT [a.org]:443 HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"GET http:///x HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"GET http://u:p@a.org/ HTTP/1.1\r\n\r\n",
            RequestError::BadTarget,
            514,
        ),
        (
            b"CONNECT a.org:443 HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n",
            RequestError::BadCredentials,
            512,
        ),
        (
            // "alice" (no colon)
            b"CONNECT a.org:443 HTTP/1.1\r\nProxy-Authorization: Basic YWxpY2U=\r\n\r\n",
            RequestError::BadCredentials,
            512,
        ),
    ] {
        let e = error(head);
        assert_eq!(e, want, "{head:?}");
        assert_eq!(e.log_code(), LogCode(code), "{head:?}");
        assert_eq!(e.refusal(), Some(Refusal::BadRequest));
        // The same through the driver, whatever the reads.
        let t = same_for_every_split(Decision::Grant, head);
        assert_eq!(
            t.log,
            format!("error {want:?} code {}\neof None\n", LogCode(code)),
            "{head:?}"
        );
        assert_eq!(parse_response(&t.sent).0, 400);
    }
    let host = "h".repeat(256);
    let e = error(format!("CONNECT {host}:443 HTTP/1.1\r\n\r\n").as_bytes());
    assert_eq!(e, RequestError::BadTarget);
    let host = "h".repeat(255);
    assert_eq!(
        request(format!("CONNECT {host}:443 HTTP/1.1\r\n\r\n").as_bytes()).target,
        name(&host, 443)
    );
}

#[test]
fn line_break_injection_never_reaches_the_target() {
    for head in [
        &b"CONNECT a.org\r\nX-Injected: 1:443 HTTP/1.1\r\n\r\n"[..],
        b"CONNECT a.org\nX: 1:443 HTTP/1.1\n\n",
        b"CONNECT a.org\r:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a.org%0d%0aX:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a.org%0D%0A:443 HTTP/1.1\r\n\r\n",
        b"CONNECT [::1%0d%0a]:443 HTTP/1.1\r\n\r\n",
        b"CONNECT a\x00b:443 HTTP/1.1\r\n\r\n",
        b"GET http://a.org\r\nX: y/ HTTP/1.1\r\n\r\n",
        b"GET http://a%0d%0a.org/ HTTP/1.1\r\n\r\n",
    ] {
        let e = error(head);
        assert!(
            e == RequestError::BadTarget || matches!(e, RequestError::Malformed { .. }),
            "{head:?} gave {e:?}"
        );
    }
}

#[test]
fn basic_credentials() {
    let with = |field: &str| {
        let head = format!("CONNECT a.org:443 HTTP/1.1\r\n{field}\r\n\r\n");
        request(head.as_bytes()).credentials
    };
    let creds = |u: &[u8], p: &[u8]| Some(triproxy_http::Credentials::new(u, p));
    // "alice:pä:ss" in UTF-8: the password keeps its colon and its non-ASCII bytes.
    assert_eq!(
        with("Proxy-Authorization: Basic YWxpY2U6cMOkOnNz"),
        creds(b"alice", "pä:ss".as_bytes())
    );
    // "Zoë:x" in UTF-8.
    assert_eq!(
        with("proxy-AUTHORIZATION: basic Wm/DqzpY"),
        creds("Zoë".as_bytes(), b"X")
    );
    // Padding optional; empty halves allowed.
    assert_eq!(with("Proxy-Authorization: Basic YTpi"), creds(b"a", b"b"));
    assert_eq!(with("Proxy-Authorization: Basic YTo"), creds(b"a", b""));
    assert_eq!(with("Proxy-Authorization: Basic OmI="), creds(b"", b"b"));
    // Other schemes are ignored; the first Basic field counts.
    assert_eq!(with("Proxy-Authorization: Bearer abc.def"), None);
    assert_eq!(with("Authorization: Basic YTpi"), None);
    assert_eq!(
        with(
            "Proxy-Authorization: Negotiate YTpi\r\nProxy-Authorization: Basic YTpi\r\n\
             Proxy-Authorization: Basic Yzpk"
        ),
        creds(b"a", b"b")
    );
    // A broken first Basic field is an error even if a good one follows.
    let head = b"CONNECT a.org:443 HTTP/1.1\r\nProxy-Authorization: Basic YWJj\r\n\
                 Proxy-Authorization: Basic YTpi\r\n\r\n";
    assert_eq!(error(head), RequestError::BadCredentials);
    // A control character in the decoded credentials ("a:b\r\nX: y").
    let head = b"CONNECT a.org:443 HTTP/1.1\r\nProxy-Authorization: Basic YTpiDQpYOiB5\r\n\r\n";
    assert_eq!(error(head), RequestError::BadCredentials);
}

// ------------------------------------------------------------- answers

#[test]
fn every_refusal_is_one_well_formed_transmit() {
    for (refusal, status) in [
        (Refusal::BadRequest, 400),
        (Refusal::Forbidden, 403),
        (Refusal::AuthRequired, 407),
        (Refusal::Internal, 500),
        (Refusal::NotImplemented, 501),
        (Refusal::BadGateway, 502),
        (Refusal::Unavailable, 503),
        (Refusal::GatewayTimeout, 504),
    ] {
        assert_eq!(refusal.status(), status);
        let mut s = server();
        assert!(s
            .handle_input(t0(), b"CONNECT a.org:443 HTTP/1.1\r\n\r\n")
            .is_ok());
        assert!(s.poll_event().is_some());
        s.handle_refused(refusal);
        assert_eq!(s.state(), ProxyState::Closed);
        let t = s.poll_transmit().unwrap();
        assert_eq!(s.poll_transmit(), None, "one transmit");
        assert!(t.len() <= MAX_TRANSMIT);
        assert!(t.is_ascii());
        let (code, headers, body) = parse_response(&t);
        assert_eq!(code, status);
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("connection"), Some("close"));
        assert_eq!(get("content-type"), Some("text/plain"));
        assert_eq!(get("content-length"), Some(body.len().to_string().as_str()));
        assert!(body.starts_with(b"triproxy: ") && body.ends_with(b"\n"));
        assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 1);
        let challenge = get("proxy-authenticate");
        if refusal == Refusal::AuthRequired {
            assert_eq!(challenge, Some("Basic realm=\"proxy\""));
        } else {
            assert_eq!(challenge, None);
        }
        // Nothing more happens after the answer.
        s.handle_granted();
        s.handle_refused(Refusal::Internal);
        assert_eq!(s.poll_transmit(), None);
        assert_eq!(s.state(), ProxyState::Closed);
        assert_eq!(s.handle_eof(), None);
    }
}

#[test]
fn granted_bytes_and_decisions_out_of_turn() {
    let mut s = server();
    // Before the request: decisions are ignored.
    s.handle_granted();
    s.handle_refused(Refusal::Forbidden);
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.state(), ProxyState::ReadingHead);
    assert!(s
        .handle_input(t0(), b"CONNECT a.org:443 HTTP/1.1\r\n\r\n")
        .is_ok());
    s.handle_granted();
    assert_eq!(s.poll_transmit().unwrap().as_bytes(), GRANTED);
    assert_eq!(s.state(), ProxyState::Established);
    // Once established: ignored too.
    s.handle_granted();
    s.handle_refused(Refusal::Forbidden);
    assert_eq!(s.poll_transmit(), None);
    assert_eq!(s.state(), ProxyState::Established);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_input(t0(), b"data"), Ok(0));
    assert_eq!(s.handle_eof(), None);
    assert_eq!(s.state(), ProxyState::Established);
}

// ------------------------------------------------------------- virtual time and eof

#[test]
fn timeout_is_507_and_the_deadline_moves_on() {
    let mut s = server();
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, t0() + HEAD_TIMEOUT);
    // Bytes arriving do not move the deadline: it covers the whole head.
    assert_eq!(
        s.handle_input(t0() + Duration::from_secs(29), b"CONNECT a"),
        Ok(9)
    );
    assert_eq!(s.poll_timeout(), Some(deadline));
    assert_eq!(s.handle_timeout(deadline - Duration::from_nanos(1)), None);
    assert_eq!(s.state(), ProxyState::ReadingHead);
    let e = s.handle_timeout(deadline).unwrap();
    assert_eq!(e, RequestError::Timeout);
    assert_eq!(e.log_code(), LogCode(507));
    assert_eq!(e.refusal(), None);
    assert_eq!(s.state(), ProxyState::Closed);
    assert_eq!(s.poll_transmit(), None, "a timeout is not answered");
    assert_eq!(s.poll_timeout(), None, "the deadline moved on");
    assert_eq!(s.handle_timeout(deadline + HEAD_TIMEOUT), None);
    assert_eq!(s.handle_input(deadline, b".org:1 HTTP/1.1\r\n\r\n"), Ok(0));
    assert_eq!(s.poll_event(), None);
    assert_eq!(s.handle_eof(), None);
}

#[test]
fn no_deadline_once_the_head_is_read() {
    let mut s = server();
    assert!(s
        .handle_input(t0(), b"CONNECT a.org:443 HTTP/1.1\r\n\r\n")
        .is_ok());
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.handle_timeout(t0() + HEAD_TIMEOUT * 2), None);
    assert_eq!(s.state(), ProxyState::AwaitingDecision);
}

#[test]
fn eof_codes() {
    // While reading: 508, nothing sent.
    let t = same_for_every_split(Decision::Grant, b"CONNECT a.org:443 HTTP/1.1\r\nHost: a");
    assert_eq!(t.log, "eof Some(Closed)\n");
    assert!(t.sent.is_empty());
    assert_eq!(RequestError::Closed.log_code(), LogCode(508));
    assert_eq!(RequestError::Closed.refusal(), None);
    let t = serve(Decision::Grant, &[]);
    assert_eq!(t.log, "eof Some(Closed)\n");
    // While a decision is pending: closed, no error (the session gives its reason).
    let t = serve(Decision::Wait, &[b"CONNECT a.org:443 HTTP/1.1\r\n\r\nxyz"]);
    assert_eq!(
        t.log,
        "request CONNECT a.org:443 connect=true HTTP/1.1\neof None\n"
    );
    assert_eq!(t.state, ProxyState::AwaitingDecision);
    assert_eq!(t.left, b"xyz");
    let mut s = server();
    assert!(s
        .handle_input(t0(), b"CONNECT a.org:443 HTTP/1.1\r\n\r\n")
        .is_ok());
    assert_eq!(s.handle_eof(), None);
    assert_eq!(s.state(), ProxyState::Closed);
    s.handle_granted();
    assert_eq!(s.poll_transmit(), None, "no answer after eof");
}
