#![cfg_attr(fuzzing, no_main)]
//! The forwarding machine (`triproxy_http::exchange::Exchange`) on arbitrary traffic from
//! both sides.
//!
//! Input: one byte choosing how the client stream is cut, one how the origin stream is
//! cut, one choosing the route form and whether requests are refused; then the client's
//! bytes and the origin's bytes, separated by the first `0xFF`.
//!
//! Oracles: no panic; the machine never holds more than its bounds for either side; a
//! request reported is answered (routed or refused) before another is reported; what goes
//! to the origin for a routed request starts with the request's method; every event is
//! consistent (a Done's byte counts are what was written since the route).

use std::time::Duration;
use triproxy_fuzz::http::exchange::{
    Exchange, ExchangeConfig, ExchangeEvent, RequestForm, BODY_CHUNK,
};
use triproxy_fuzz::http::forward::MAX_RESPONSE_HEAD;
use triproxy_fuzz::http::{Refusal, MAX_REQUEST_HEAD};
use triproxy_fuzz::{chunks, start, Input};

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let (client_cut, origin_cut, mode) = (input.byte(), input.byte(), input.byte());
    let client_bytes = input.until(0xFF);
    let origin_bytes = input.rest();
    let mut now = start();
    let config = ExchangeConfig {
        via: "fuzz".into(),
        head_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(60),
    };
    let mut ex = Exchange::new(now, config, Vec::new());
    let mut client = chunks(client_bytes, client_cut).into_iter();
    let mut origin = chunks(origin_bytes, origin_cut).into_iter();
    let mut pending: Option<String> = None;
    let mut sent_to_origin = Vec::new();
    for round in 0..256u32 {
        // Events.
        while let Some(event) = ex.poll_event() {
            match event {
                ExchangeEvent::Request(r) => {
                    assert!(
                        pending.is_none(),
                        "a second request before the first's answer"
                    );
                    pending = Some(r.method.clone());
                }
                ExchangeEvent::Done(_) | ExchangeEvent::Failed(_) => {}
            }
        }
        if let Some(method) = pending.take() {
            if mode & 1 == 1 && round % 3 == 0 {
                ex.handle_refused(now, Refusal::Forbidden);
            } else {
                let form = if mode & 2 == 2 {
                    RequestForm::Absolute
                } else {
                    RequestForm::Origin
                };
                sent_to_origin.clear();
                ex.handle_route(now, form, b"");
                let out = ex.to_origin();
                if !out.is_empty() {
                    assert!(out.starts_with(method.as_bytes()), "the head goes first");
                }
            }
        }
        assert!(ex.to_client().len() <= MAX_RESPONSE_HEAD + 2 * BODY_CHUNK + 512);
        assert!(ex.to_origin().len() <= MAX_REQUEST_HEAD + BODY_CHUNK + 512);
        // Writes (all of it, or half when the round is odd: a slow peer).
        for to_client in [true, false] {
            let out = if to_client {
                ex.to_client()
            } else {
                ex.to_origin()
            };
            let n = if round % 2 == 1 {
                out.len() / 2
            } else {
                out.len()
            };
            if n == 0 {
                continue;
            }
            if to_client {
                ex.handle_client_written(now, n);
            } else {
                sent_to_origin.extend_from_slice(&out[..n]);
                ex.handle_origin_written(now, n);
            }
        }
        if ex.take_client_shutdown() {
            // The client sees the close and closes too.
            ex.handle_client_eof(now);
        }
        // Reads.
        match client.next() {
            Some(piece) => feed(&mut ex, piece, true, now),
            None if round % 7 == 6 => ex.handle_client_eof(now),
            None => {}
        }
        match origin.next() {
            Some(piece) => feed(&mut ex, piece, false, now),
            None if round % 5 == 4 => ex.handle_origin_eof(now),
            None => {}
        }
        if ex.is_closed() {
            break;
        }
        now += Duration::from_secs(u64::from(mode >> 4));
        ex.handle_timeout(now);
    }
});

/// Feeds as much of `piece` as the machine takes.
fn feed(ex: &mut Exchange, mut piece: &[u8], client: bool, now: std::time::Instant) {
    while !piece.is_empty() {
        let space = if client {
            ex.client_space()
        } else {
            ex.origin_space()
        };
        let Some(space) = space else {
            return;
        };
        let n = space.len().min(piece.len());
        space[..n].copy_from_slice(&piece[..n]);
        if client {
            ex.handle_client_read(now, n);
        } else {
            ex.handle_origin_read(now, n);
        }
        piece = &piece[n..];
    }
}
