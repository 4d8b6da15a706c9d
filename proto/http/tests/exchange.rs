//! The forwarding machine (`triproxy_http::exchange::Exchange`) driven by hand: whole
//! exchanges in every split, keep-alive and pipelining, bodies of each framing, 1xx,
//! HEAD, close-delimited responses, smuggling attempts, refusals, deadlines, bounded
//! buffers, and arbitrary input (proptest).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use proptest::prelude::*;
use std::time::{Duration, Instant};
use triproxy_http::exchange::{
    Exchange, ExchangeConfig, ExchangeError, ExchangeEvent, Exchanged, RequestForm, BODY_CHUNK,
};
use triproxy_http::forward::MAX_RESPONSE_HEAD;
use triproxy_http::{Refusal, MAX_REQUEST_HEAD};

const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const IDLE: Duration = Duration::from_secs(60);

/// A machine and everything it has said, driven at a virtual time.
struct Drive {
    ex: Exchange,
    now: Instant,
    to_client: Vec<u8>,
    to_origin: Vec<u8>,
    events: Vec<ExchangeEvent>,
}

impl Drive {
    fn new(first: &[u8]) -> Drive {
        let now = Instant::now();
        let config = ExchangeConfig {
            via: "tp".into(),
            head_timeout: HEAD_TIMEOUT,
            idle_timeout: IDLE,
        };
        let mut d = Drive {
            ex: Exchange::new(now, config, first.to_vec()),
            now,
            to_client: Vec::new(),
            to_origin: Vec::new(),
            events: Vec::new(),
        };
        d.drain();
        d
    }

    /// Writes everything the machine has for both sides, collects its events.
    fn drain(&mut self) {
        loop {
            let mut moved = false;
            let c = self.ex.to_client().to_vec();
            if !c.is_empty() {
                self.to_client.extend_from_slice(&c);
                self.ex.handle_client_written(self.now, c.len());
                moved = true;
            }
            let o = self.ex.to_origin().to_vec();
            if !o.is_empty() {
                self.to_origin.extend_from_slice(&o);
                self.ex.handle_origin_written(self.now, o.len());
                moved = true;
            }
            while let Some(e) = self.ex.poll_event() {
                self.events.push(e);
                moved = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Feeds client bytes (as much as the machine takes); returns how many it took.
    fn client(&mut self, mut bytes: &[u8]) -> usize {
        let mut taken = 0;
        while !bytes.is_empty() {
            let Some(space) = self.ex.client_space() else {
                break;
            };
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            self.ex.handle_client_read(self.now, n);
            bytes = &bytes[n..];
            taken += n;
            self.drain();
        }
        taken
    }

    fn origin(&mut self, mut bytes: &[u8]) -> usize {
        let mut taken = 0;
        while !bytes.is_empty() {
            let Some(space) = self.ex.origin_space() else {
                break;
            };
            let n = space.len().min(bytes.len());
            space[..n].copy_from_slice(&bytes[..n]);
            self.ex.handle_origin_read(self.now, n);
            bytes = &bytes[n..];
            taken += n;
            self.drain();
        }
        taken
    }

    fn route(&mut self) {
        self.ex.handle_route(self.now, RequestForm::Origin, b"");
        self.drain();
    }

    fn requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ExchangeEvent::Request(r) => Some(r.text.clone()),
                _ => None,
            })
            .collect()
    }

    fn done(&self) -> Vec<Exchanged> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ExchangeEvent::Done(d) => Some(*d),
                _ => None,
            })
            .collect()
    }

    fn failure(&self) -> Option<ExchangeError> {
        self.events.iter().find_map(|e| match e {
            ExchangeEvent::Failed(f) => Some(f.error),
            _ => None,
        })
    }

    fn client_text(&self) -> String {
        String::from_utf8_lossy(&self.to_client).into_owned()
    }

    fn origin_text(&self) -> String {
        String::from_utf8_lossy(&self.to_origin).into_owned()
    }
}

const GET: &[u8] = b"GET http://o.example/a HTTP/1.1\r\nHost: o.example\r\nAccept: */*\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

#[test]
fn one_request_and_its_response() {
    let mut d = Drive::new(GET);
    assert_eq!(d.requests(), ["GET http://o.example/a"]);
    assert!(d.to_origin.is_empty(), "nothing goes out before the route");
    d.route();
    assert!(d
        .origin_text()
        .starts_with("GET /a HTTP/1.1\r\nHost: o.example\r\nAccept: */*\r\nVia: 1.1 tp\r\n\r\n"));
    d.origin(OK);
    assert_eq!(
        d.client_text(),
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nVia: 1.1 tp\r\n\r\nhello"
    );
    let done = d.done();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].status, 200);
    assert!(done[0].origin_reusable && done[0].client_open);
    assert_eq!(done[0].to_client, d.to_client.len() as u64);
    assert_eq!(done[0].to_origin, d.to_origin.len() as u64);
    assert!(
        !d.ex.is_closed(),
        "keep-alive: waiting for the next request"
    );
}

#[test]
fn every_split_gives_the_same_bytes() {
    let request = b"POST http://o/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n";
    let response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    let whole = {
        let mut d = Drive::new(request);
        d.route();
        d.origin(response);
        (d.to_origin.clone(), d.to_client.clone())
    };
    for cut in 1..request.len() {
        let mut d = Drive::new(&request[..cut]);
        if d.requests().is_empty() {
            d.client(&request[cut..]);
            d.route();
        } else {
            d.route();
            d.client(&request[cut..]);
        }
        for rcut in [1, response.len() / 2, response.len() - 1] {
            let mut e = Drive::new(request);
            e.route();
            e.origin(&response[..rcut]);
            e.origin(&response[rcut..]);
            assert_eq!((e.to_origin.clone(), e.to_client.clone()), whole);
        }
        d.origin(response);
        assert_eq!(
            (d.to_origin.clone(), d.to_client.clone()),
            whole,
            "cut {cut}"
        );
        assert_eq!(d.done().len(), 1, "cut {cut}");
    }
    // Bodies and trailers pass unchanged.
    assert!(whole.0.ends_with(b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n"));
    assert!(whole.1.ends_with(b"5\r\nhello\r\n0\r\n\r\n"));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let two = [
        GET,
        b"GET http://other.example/b HTTP/1.1\r\n\r\n".as_slice(),
    ]
    .concat();
    let mut d = Drive::new(&two);
    assert_eq!(
        d.requests().len(),
        1,
        "the second waits for the first's answer"
    );
    d.route();
    d.origin(OK);
    assert_eq!(
        d.requests(),
        ["GET http://o.example/a", "GET http://other.example/b"]
    );
    d.route();
    assert!(d
        .origin_text()
        .contains("GET /b HTTP/1.1\r\nHost: other.example\r\n"));
    d.origin(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let done = d.done();
    assert_eq!(
        done.iter().map(|x| x.status).collect::<Vec<_>>(),
        [200, 404]
    );
    let text = d.client_text();
    assert!(text.find("200 OK").unwrap() < text.find("404").unwrap());
}

#[test]
fn interim_responses_pass_and_the_final_one_follows() {
    let req = b"PUT http://o/u HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let mut d = Drive::new(req);
    d.route();
    assert!(d.origin_text().contains("Expect: 100-continue"));
    d.origin(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert!(d.client_text().starts_with("HTTP/1.1 100 Continue\r\n"));
    assert!(d.done().is_empty());
    d.client(b"data");
    assert!(d.to_origin.ends_with(b"\r\n\r\ndata"));
    d.origin(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(d.done()[0].status, 201);
    assert!(d.done()[0].client_open);
}

#[test]
fn head_204_and_304_have_no_body() {
    let mut d = Drive::new(b"HEAD http://o/ HTTP/1.1\r\n\r\n");
    d.route();
    d.origin(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    assert_eq!(d.done().len(), 1, "complete without a body");
    for status in ["204 No Content", "304 Not Modified"] {
        let mut d = Drive::new(GET);
        d.route();
        d.origin(format!("HTTP/1.1 {status}\r\nContent-Length: 7\r\n\r\n").as_bytes());
        assert_eq!(d.done().len(), 1, "{status}");
        assert!(d.done()[0].origin_reusable, "{status}");
    }
}

#[test]
fn a_close_delimited_response_closes_the_client() {
    let mut d = Drive::new(GET);
    d.route();
    d.origin(b"HTTP/1.1 200 OK\r\n\r\npart one ");
    assert!(
        d.client_text().contains("Connection: close\r\n"),
        "{}",
        d.client_text()
    );
    d.origin(b"part two");
    assert!(d.done().is_empty());
    d.ex.handle_origin_eof(d.now);
    d.drain();
    assert!(d.client_text().ends_with("part one part two"));
    let done = d.done();
    assert_eq!(done.len(), 1);
    assert!(!done[0].client_open && !done[0].origin_reusable);
    assert!(d.ex.take_client_shutdown(), "write side shut once written");
    assert!(!d.ex.is_closed(), "lingers for the client's end");
    d.ex.handle_client_eof(d.now);
    assert!(d.ex.is_closed());
}

#[test]
fn http_1_0_and_connection_close_end_after_the_response() {
    for req in [
        &b"GET http://o/ HTTP/1.0\r\n\r\n"[..],
        b"GET http://o/ HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET http://o/ HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
    ] {
        let mut d = Drive::new(req);
        d.route();
        d.origin(OK);
        assert!(d.client_text().contains("Connection: close\r\n"));
        assert!(!d.done()[0].client_open);
        assert!(d.ex.take_client_shutdown());
    }
}

#[test]
fn smuggling_attempts_get_400_and_the_connection_closes() {
    for req in [
        &b"POST http://o/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"POST http://o/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        b"POST http://o/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
        b"POST http://o/ HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST http://o/ HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
    ] {
        let d = Drive::new(req);
        assert!(d.requests().is_empty(), "{}", String::from_utf8_lossy(req));
        assert!(matches!(d.failure(), Some(ExchangeError::Request(_))));
        assert_eq!(d.failure().unwrap().log_code().get(), 512);
        assert!(d.client_text().starts_with("HTTP/1.1 400 "));
        assert!(d.to_origin.is_empty());
    }
    // A bad chunk in a body already under way: the connection ends.
    let mut d = Drive::new(b"POST http://o/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    d.route();
    d.client(b"zz\r\n");
    assert!(matches!(d.failure(), Some(ExchangeError::RequestBody(_))));
}

#[test]
fn a_refusal_is_answered_and_closes() {
    let mut d = Drive::new(GET);
    d.ex.handle_refused(d.now, Refusal::AuthRequired);
    d.drain();
    assert!(d.client_text().starts_with("HTTP/1.1 407 "));
    assert!(d.client_text().contains("Proxy-Authenticate: Basic"));
    assert!(d.ex.take_client_shutdown());
    // The client's remaining bytes are read and dropped while it lingers.
    assert!(d.client(b"more body bytes") > 0);
    d.now += Duration::from_secs(3);
    d.ex.handle_timeout(d.now);
    assert!(d.ex.is_closed());
}

#[test]
fn origin_failures_are_502_or_a_cut() {
    let mut d = Drive::new(GET);
    d.route();
    d.ex.handle_origin_eof(d.now);
    d.drain();
    assert_eq!(d.failure(), Some(ExchangeError::OriginClosed));
    assert!(d.client_text().starts_with("HTTP/1.1 502 "));
    let mut d = Drive::new(GET);
    d.route();
    d.origin(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    d.ex.handle_origin_eof(d.now);
    d.drain();
    assert!(matches!(d.failure(), Some(ExchangeError::ResponseBody(_))));
    assert_eq!(d.failure().unwrap().log_code().get(), 96);
    assert!(d.ex.is_closed(), "a started response can only be cut");
    let mut d = Drive::new(GET);
    d.route();
    d.origin(b"NOT HTTP AT ALL\r\n\r\n");
    assert!(matches!(d.failure(), Some(ExchangeError::Response(_))));
    assert!(d.client_text().starts_with("HTTP/1.1 502 "));
}

#[test]
fn deadlines() {
    // The keep-alive wait ends quietly.
    let mut d = Drive::new(GET);
    d.route();
    d.origin(OK);
    let deadline = d.ex.poll_timeout().unwrap();
    assert_eq!(deadline, d.now + HEAD_TIMEOUT);
    d.now = deadline;
    d.ex.handle_timeout(d.now);
    d.drain();
    assert_eq!(d.failure(), Some(ExchangeError::KeepAliveEnded));
    assert!(!d.failure().unwrap().is_logged());
    assert!(d.ex.is_closed());
    // A partial head times out with 507 and no answer.
    let mut d = Drive::new(b"GET http://o/ HTTP/1.1\r\n");
    d.now += HEAD_TIMEOUT;
    d.ex.handle_timeout(d.now);
    d.drain();
    assert_eq!(d.failure().unwrap().log_code().get(), 507);
    assert!(d.to_client.is_empty());
    // An origin that never answers: 504 at the idle timeout.
    let mut d = Drive::new(GET);
    d.route();
    d.now += IDLE;
    d.ex.handle_timeout(d.now);
    d.drain();
    assert_eq!(d.failure(), Some(ExchangeError::Idle));
    assert!(d.client_text().starts_with("HTTP/1.1 504 "));
}

#[test]
fn a_slow_client_back_pressures_the_origin() {
    let mut d = Drive::new(GET);
    d.route();
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
    let n = {
        let space = d.ex.origin_space().unwrap();
        space[..head.len()].copy_from_slice(head);
        head.len()
    };
    d.ex.handle_origin_read(d.now, n);
    // The client takes nothing: the origin may fill the machine only so far.
    let mut held = 0;
    while let Some(space) = d.ex.origin_space() {
        let n = space.len();
        space.fill(b'x');
        d.ex.handle_origin_read(d.now, n);
        held += n;
        assert!(held <= 4 * BODY_CHUNK, "held {held}");
    }
    assert!(d.ex.to_client().len() <= MAX_RESPONSE_HEAD + BODY_CHUNK);
    // Once the client reads, the origin flows again.
    let c = d.ex.to_client().len();
    d.ex.handle_client_written(d.now, c);
    assert!(d.ex.origin_space().is_some());
}

#[test]
fn connect_after_forwarded_requests_is_400() {
    let mut d = Drive::new(GET);
    d.route();
    d.origin(OK);
    d.client(b"CONNECT o.example:443 HTTP/1.1\r\n\r\n");
    assert_eq!(d.requests().len(), 1, "not reported as a request");
    assert_eq!(d.failure().unwrap().log_code().get(), 513);
    assert!(d
        .client_text()
        .ends_with("text/plain\r\nContent-Length: 22\r\n\r\ntriproxy: bad request\n"));
}

#[test]
fn an_oversized_head_is_400() {
    let mut d = Drive::new(b"GET http://o/ HTTP/1.1\r\n");
    let filler = vec![b'a'; MAX_REQUEST_HEAD];
    d.client(b"X: ");
    d.client(&filler);
    assert!(matches!(d.failure(), Some(ExchangeError::Request(_))));
    assert_eq!(d.failure().unwrap().log_code().get(), 516);
}

#[test]
fn the_origin_answering_early_ends_both_connections() {
    let mut d = Drive::new(b"POST http://o/ HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
    d.route();
    d.client(b"partial");
    d.origin(b"HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n");
    let done = d.done();
    assert_eq!(done.len(), 1);
    assert!(!done[0].client_open && !done[0].origin_reusable);
    assert!(d.client_text().contains("Connection: close\r\n"));
}

#[test]
fn extra_fields_and_the_absolute_form() {
    let mut d = Drive::new(GET);
    d.ex.handle_route(
        d.now,
        RequestForm::Absolute,
        b"Proxy-Authorization: Basic dTpw\r\n",
    );
    d.drain();
    let sent = d.origin_text();
    assert!(
        sent.starts_with("GET http://o.example/a HTTP/1.1\r\n"),
        "{sent}"
    );
    assert!(
        sent.ends_with("Proxy-Authorization: Basic dTpw\r\n\r\n"),
        "{sent}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Whatever the client and the origin send, in whatever pieces, the machine neither
    /// panics nor holds more than its bounds.
    #[test]
    fn arbitrary_input_never_panics(
        client in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        origin in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
        seed_head in prop_oneof![Just(GET.to_vec()), proptest::collection::vec(any::<u8>(), 0..100)],
    ) {
        let mut d = Drive::new(&seed_head);
        for (i, piece) in client.iter().enumerate() {
            if d.requests().len() > d.done().len() && !d.ex.is_exchanging() && !d.ex.is_closed() {
                d.route();
            }
            d.client(piece);
            if let Some(o) = origin.get(i) {
                d.origin(o);
            }
            prop_assert!(d.ex.to_client().len() <= MAX_RESPONSE_HEAD + 2 * BODY_CHUNK + 512);
            prop_assert!(d.ex.to_origin().len() <= MAX_REQUEST_HEAD + BODY_CHUNK + 512);
        }
        d.ex.handle_origin_eof(d.now);
        d.ex.handle_client_eof(d.now);
        d.now += Duration::from_secs(120);
        d.ex.handle_timeout(d.now);
        d.drain();
    }
}
