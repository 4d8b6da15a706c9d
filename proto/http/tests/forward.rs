//! A client's absolute-form request head rewritten for the origin (RFC 9110 section 7.6,
//! RFC 9112 section 3.2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use triproxy_http::body::{Framing, FramingError};
use triproxy_http::forward::{forward_request, ForwardError};
use triproxy_http::RequestError;
use triproxy_wire::TargetAddr;

fn text(head: &[u8]) -> String {
    String::from_utf8(head.to_vec()).unwrap()
}

#[test]
fn an_absolute_request_becomes_origin_form_with_host_and_via() {
    let input = b"GET http://example.org:8080/a/b?q=1#frag HTTP/1.1\r\n\
        Host: wrong.example\r\n\
        User-Agent: curl/8\r\n\
        Proxy-Authorization: Basic YTpi\r\n\
        Proxy-Connection: Keep-Alive\r\n\
        Connection: X-Hop, keep-alive\r\n\
        X-Hop: secret\r\n\
        Keep-Alive: timeout=5\r\n\
        TE: trailers\r\n\
        Accept: */*\r\n\r\nBODY";
    let f = forward_request(input, "triproxy").unwrap().unwrap();
    assert_eq!(
        f.head_len,
        input.len() - 4,
        "the head ends before the next bytes"
    );
    assert_eq!(
        text(&f.head),
        "GET /a/b?q=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: curl/8\r\n\
         Accept: */*\r\nVia: 1.1 triproxy\r\n\r\n"
    );
    assert_eq!(f.method, "GET");
    assert_eq!(f.target.to_string(), "example.org:8080");
    assert!(matches!(f.target, TargetAddr::Domain(..)));
    assert_eq!(f.framing, Framing::Empty);
    assert!(f.keep_alive);
}

#[test]
fn paths_options_and_versions() {
    let f = forward_request(b"GET http://h HTTP/1.1\r\n\r\n", "p")
        .unwrap()
        .unwrap();
    assert!(text(&f.head).starts_with("GET / HTTP/1.1\r\nHost: h\r\n"));
    let f = forward_request(b"OPTIONS http://h:81 HTTP/1.1\r\n\r\n", "p")
        .unwrap()
        .unwrap();
    assert!(text(&f.head).starts_with("OPTIONS * HTTP/1.1\r\nHost: h:81\r\n"));
    let f = forward_request(b"GET http://h/?x HTTP/1.0\r\n\r\n", "p")
        .unwrap()
        .unwrap();
    assert!(
        text(&f.head).starts_with("GET /?x HTTP/1.0\r\n"),
        "an HTTP/1.0 request goes on as 1.0: the origin must not answer it chunked"
    );
    assert!(
        text(&f.head).contains("Via: 1.0 p\r\n"),
        "the received version in Via"
    );
    assert!(!f.keep_alive, "HTTP/1.0 closes");
    let f = forward_request(b"GET http://h/ HTTP/1.1\r\nConnection: close\r\n\r\n", "p")
        .unwrap()
        .unwrap();
    assert!(!f.keep_alive);
    let f = forward_request(b"GET http://h/ HTTP/1.1\r\nVia: 1.1 a\r\n\r\n", "p")
        .unwrap()
        .unwrap();
    assert!(
        text(&f.head).contains("Via: 1.1 a, 1.1 p\r\n"),
        "joins the first Via"
    );
    assert_eq!(text(&f.head).matches("Via").count(), 1);
}

#[test]
fn bodies_keep_their_framing() {
    let f = forward_request(
        b"POST http://h/up HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "p",
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.framing, Framing::Length(5));
    assert!(text(&f.head).contains("Content-Length: 5\r\n"));
    let f = forward_request(
        b"PUT http://h/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "p",
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.framing, Framing::Chunked);
    assert!(
        text(&f.head).contains("Transfer-Encoding: chunked\r\n"),
        "forwarded as it came"
    );
}

#[test]
fn transparent_requests_take_the_host_field() {
    let f = forward_request(
        b"GET /a?b HTTP/1.1\r\nUser-Agent: x\r\nHost: example.org:8080\r\n\r\n",
        "p",
    )
    .unwrap()
    .unwrap();
    assert_eq!(f.target.to_string(), "example.org:8080");
    assert_eq!(
        f.text, "GET http://example.org:8080/a?b",
        "logged as 3proxy rebuilds it"
    );
    assert!(text(&f.head).starts_with("GET /a?b HTTP/1.1\r\nHost: example.org:8080\r\n"));
    assert_eq!(text(&f.head).matches("Host:").count(), 1);
}

#[test]
fn absolute_form_for_a_parent_and_credentials() {
    let f = forward_request(
        b"GET http://h:81/x HTTP/1.1\r\nProxy-Authorization: Basic dTpw\r\n\r\n",
        "p",
    )
    .unwrap()
    .unwrap();
    assert!(text(&f.absolute_head()).starts_with("GET http://h:81/x HTTP/1.1\r\nHost: h:81\r\n"));
    let c = f.credentials.unwrap();
    assert_eq!((&c.username[..], &c.password[..]), (&b"u"[..], &b"p"[..]));
    assert!(!text(&f.head).contains("Proxy-Authorization"));
    let f = forward_request(b"OPTIONS http://h HTTP/1.1\r\n\r\n", "p")
        .unwrap()
        .unwrap();
    assert!(text(&f.absolute_head()).starts_with("OPTIONS http://h HTTP/1.1\r\n"));
}

#[test]
fn bad_heads_are_refused_with_their_codes() {
    let err = |input: &[u8]| forward_request(input, "p").unwrap_err();
    assert_eq!(
        err(b"POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ForwardError::Framing(FramingError::LengthAndTransferEncoding)
    );
    assert_eq!(
        err(b"POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        ForwardError::Framing(FramingError::ConflictingContentLength)
    );
    assert_eq!(
        err(b"GET https://h/ HTTP/1.1\r\n\r\n"),
        ForwardError::Request(RequestError::UnsupportedScheme)
    );
    assert_eq!(
        err(b"GET /origin-form HTTP/1.1\r\n\r\n"),
        ForwardError::Request(RequestError::BadTarget),
        "a transparent request needs its Host"
    );
    assert_eq!(
        err(b"GET /origin-form HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ForwardError::Request(RequestError::BadTarget),
        "and only one"
    );
    assert_eq!(
        err(b"GET http://user@h/ HTTP/1.1\r\n\r\n"),
        ForwardError::Request(RequestError::BadTarget)
    );
    let mut many = b"GET http://h/ HTTP/1.1\r\n".to_vec();
    for i in 0..10_000 {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert!(
        matches!(err(&many), ForwardError::Request(_)),
        "10,000 fields"
    );
    let mut long_line = b"GET http://h/".to_vec();
    long_line.extend(std::iter::repeat_n(b'a', 1 << 20));
    assert_eq!(
        err(&long_line),
        ForwardError::Request(RequestError::TooLarge),
        "a 1 MiB request line"
    );
}

proptest! {
    /// Every strict prefix of a head is incomplete, and arbitrary bytes never panic.
    #[test]
    fn prefixes_are_incomplete_and_arbitrary_bytes_never_panic(
        junk in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let head = b"PATCH http://example.org/x?y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
        for cut in 0..head.len() {
            prop_assert_eq!(forward_request(&head[..cut], "p"), Ok(None));
        }
        let _ = forward_request(&junk, "p");
    }
}

mod responses {
    use super::text;
    use triproxy_http::body::{Framing, FramingError};
    use triproxy_http::forward::{forward_response, ResponseError, MAX_RESPONSE_HEAD};

    #[test]
    fn a_response_loses_its_hop_by_hop_fields_and_gains_via() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: X-Sec\r\n\
            X-Sec: 1\r\nKeep-Alive: timeout=5\r\nServer: origin\r\n\r\nhello";
        let r = forward_response(input, false, "triproxy").unwrap().unwrap();
        assert_eq!(r.head_len, input.len() - 5);
        assert_eq!(
            text(&r.head),
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: origin\r\nVia: 1.1 triproxy\r\n\r\n"
        );
        assert_eq!(
            (r.status, r.framing, r.reusable),
            (200, Framing::Length(5), true)
        );
    }

    #[test]
    fn bodiless_responses_and_reuse() {
        let cl = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
        let r = forward_response(cl, true, "p").unwrap().unwrap();
        assert_eq!(r.framing, Framing::Empty, "a response to HEAD");
        for head in [
            &b"HTTP/1.1 100 Continue\r\n\r\n"[..],
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
        ] {
            let r = forward_response(head, false, "p").unwrap().unwrap();
            assert_eq!(r.framing, Framing::Empty, "{}", text(head));
        }
        let r = forward_response(b"HTTP/1.1 200 OK\r\n\r\n", false, "p")
            .unwrap()
            .unwrap();
        assert_eq!(r.framing, Framing::UntilClose);
        assert!(!r.reusable, "a body until close uses the connection up");
        let r = forward_response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, "p")
            .unwrap()
            .unwrap();
        assert!(!r.reusable, "HTTP/1.0");
        assert!(text(&r.head).starts_with("HTTP/1.1 200 OK\r\n"));
        let r = forward_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            false,
            "p",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.framing, Framing::Chunked);
        assert!(!r.reusable);
    }

    #[test]
    fn bad_responses_are_errors() {
        assert_eq!(
            forward_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                false,
                "p"
            ),
            Err(ResponseError::Framing(
                FramingError::ConflictingContentLength
            ))
        );
        assert!(matches!(
            forward_response(b"HTTP/1.1 2x0 OK\r\n\r\n", false, "p"),
            Err(ResponseError::Malformed(_))
        ));
        let big = vec![b'a'; MAX_RESPONSE_HEAD];
        let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        head.extend_from_slice(&big);
        assert_eq!(
            forward_response(&head, false, "p"),
            Err(ResponseError::TooLarge)
        );
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n";
        for cut in 0..partial.len() {
            assert_eq!(forward_response(&partial[..cut], false, "p"), Ok(None));
        }
    }
}
