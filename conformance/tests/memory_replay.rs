//! Every trace replays PASS against our machines in memory, and machines that get the
//! protocol wrong make the replay FAIL with a difference that names the offset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Instant;
use triproxy_conformance::memory::{self, SocksServer};
use triproxy_conformance::replay::Outcome;
use triproxy_conformance::trace::{self, Mode, Protocol, Side, Trace};
use triproxy_socks::server::{AuthVerdict, Server, ServerConfig, ServerEvent, State};
use triproxy_socks::v5::ReplyCode;
use triproxy_socks::Error;
use triproxy_wire::Transmit;

fn suite(p: Protocol) -> Vec<Trace> {
    trace::load_suite(&trace::default_trace_dir(), p).unwrap()
}

fn all() -> Vec<Trace> {
    let mut v = suite(Protocol::Socks4);
    v.extend(suite(Protocol::Socks5));
    v
}

fn find(name: &str) -> Trace {
    all().into_iter().find(|t| t.name == name).unwrap()
}

#[test]
fn every_trace_passes_in_memory_in_every_mode() {
    let traces = all();
    assert!(traces.len() >= 60, "{} traces", traces.len());
    let report = triproxy_conformance::run_memory("memory", &traces);
    let s = report.summary();
    assert_eq!((s.fail, s.skip), (0, 0), "{}", report.render_text());
    let runs: usize = traces.iter().map(|t| t.modes.len()).sum();
    assert_eq!(s.pass, runs);
    // Server traces run in pipelined mode unless they say otherwise.
    assert!(report
        .results
        .iter()
        .any(|r| r.mode == Mode::Pipelined && r.outcome == Outcome::Pass));
}

#[test]
fn every_trace_names_its_source_and_both_sides_are_covered() {
    let traces = all();
    for t in &traces {
        assert!(
            t.title.starts_with("RFC 1928")
                || t.title.starts_with("RFC 1929")
                || t.title.starts_with("SOCKS4"),
            "{}: title should cite the RFC or the SOCKS4 text: {}",
            t.name,
            t.title
        );
    }
    for side in [Side::Server, Side::Client] {
        for p in [Protocol::Socks4, Protocol::Socks5] {
            assert!(
                traces.iter().any(|t| t.side == side && t.protocol == p),
                "no {side:?} trace for {p:?}"
            );
        }
    }
}

/// Answers every SOCKS5 success reply with REP=X'01' instead of X'00'.
#[derive(Debug)]
struct WrongReplyCode(Server);

impl SocksServer for WrongReplyCode {
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        self.0.handle_input(now, input)
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.0.poll_transmit()?;
        let mut bytes = t.as_bytes().to_vec();
        // A reply is at least 10 bytes: VER REP RSV ATYP ... ; the method selection is 2.
        if bytes.len() >= 10 && bytes[0] == 5 && bytes[1] == 0 {
            bytes[1] = 1;
        }
        Some(Transmit::from_slice(&bytes).unwrap())
    }
    fn poll_event(&mut self) -> Option<ServerEvent> {
        self.0.poll_event()
    }
    fn handle_auth(&mut self, verdict: AuthVerdict) {
        self.0.handle_auth(verdict)
    }
    fn handle_granted(&mut self, bound: SocketAddr) {
        self.0.handle_granted(bound)
    }
    fn handle_bind_peer(&mut self, peer: SocketAddr) {
        self.0.handle_bind_peer(peer)
    }
    fn handle_refused(&mut self, reply: ReplyCode) {
        self.0.handle_refused(reply)
    }
    fn handle_eof(&mut self) -> Option<Error> {
        self.0.handle_eof()
    }
    fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        self.0.handle_timeout(now)
    }
    fn state(&self) -> State {
        self.0.state()
    }
}

#[test]
fn a_wrong_reply_code_fails_with_a_diff_naming_the_offset() {
    let t = find("socks5/connect-ipv4");
    for mode in Mode::ALL {
        let outcome = memory::replay_server(&t, mode, |now, config: ServerConfig| {
            WrongReplyCode(Server::new(now, config))
        });
        let Outcome::Fail(f) = &outcome else {
            panic!("{mode}: expected FAIL, got {outcome}")
        };
        assert_eq!(f.line, 11, "the CONNECT reply line");
        assert!(f.step.starts_with("server: 05 00 00 <addr>"), "{}", f.step);
        let diff = f.diff.as_ref().unwrap();
        assert_eq!(diff.offset, 1);
        assert_eq!(&diff.received[..4], &[5, 1, 0, 1]);
        let text = outcome.to_string();
        assert!(text.contains("received: 0000: 05 [01] 00 01"), "{text}");
        assert!(
            text.contains("first difference at offset 1: expected 00, received 01"),
            "{text}"
        );
    }
    // Across the whole suite no trace that expects a success reply passes by accident
    // through a wildcard (a `=> skip` alternative for a failure reply may match).
    let passed = all()
        .iter()
        .filter(|t| t.side == Side::Server && t.protocol == Protocol::Socks5)
        .filter(|t| {
            memory::replay_server(t, Mode::Whole, |now, c| WrongReplyCode(Server::new(now, c)))
                == Outcome::Pass
        })
        .map(|t| t.name.clone())
        .collect::<Vec<_>>();
    assert!(
        !passed.is_empty(),
        "traces without a success reply still pass"
    );
    for name in &passed {
        // Only traces that never get a SOCKS5 success reply may still pass.
        let t = find(name);
        let text = t
            .steps
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            !text.contains("server: 05 00 00 <addr>"),
            "{name} passed against a machine with a wrong reply code"
        );
    }
}

/// Consumes the bytes that follow a request as if they were part of it (the bug of a
/// server that assumes one read is one message).
#[derive(Debug)]
struct SwallowsPipelinedData(Server);

impl SocksServer for SwallowsPipelinedData {
    fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, Error> {
        let n = self.0.handle_input(now, input)?;
        Ok(if self.0.state() == State::AwaitingDecision {
            input.len()
        } else {
            n
        })
    }
    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.0.poll_transmit()
    }
    fn poll_event(&mut self) -> Option<ServerEvent> {
        self.0.poll_event()
    }
    fn handle_auth(&mut self, verdict: AuthVerdict) {
        self.0.handle_auth(verdict)
    }
    fn handle_granted(&mut self, bound: SocketAddr) {
        self.0.handle_granted(bound)
    }
    fn handle_bind_peer(&mut self, peer: SocketAddr) {
        self.0.handle_bind_peer(peer)
    }
    fn handle_refused(&mut self, reply: ReplyCode) {
        self.0.handle_refused(reply)
    }
    fn handle_eof(&mut self) -> Option<Error> {
        self.0.handle_eof()
    }
    fn handle_timeout(&mut self, now: Instant) -> Option<Error> {
        self.0.handle_timeout(now)
    }
    fn state(&self) -> State {
        self.0.state()
    }
}

#[test]
fn losing_pipelined_data_fails() {
    for name in [
        "socks5/connect-pipelined-data",
        "socks4/connect-pipelined-data",
    ] {
        let t = find(name);
        let outcome = memory::replay_server(&t, Mode::Whole, |now, c| {
            SwallowsPipelinedData(Server::new(now, c))
        });
        let Outcome::Fail(f) = &outcome else {
            panic!("{name}: expected FAIL, got {outcome}")
        };
        assert!(f.message.contains("did not match"), "{name}: {outcome}");
        // In whole mode with separate writes the same machine passes: the trace needs
        // pipelining to catch it.
        let t = find("socks5/connect-ipv4");
        assert_eq!(
            memory::replay_server(&t, Mode::Whole, |now, c| SwallowsPipelinedData(
                Server::new(now, c)
            )),
            Outcome::Pass
        );
        let caught = memory::replay_server(&t, Mode::Pipelined, |now, c| {
            SwallowsPipelinedData(Server::new(now, c))
        });
        assert!(matches!(caught, Outcome::Fail(_)), "{caught}");
    }
}

#[test]
fn a_wrong_expectation_in_a_client_trace_fails() {
    let text = "\
# RFC 1928 §3: wrong on purpose
side: client
config: socks5 connect 192.0.2.7:80
client: 05 02 00 02                           # we do not offer X'02' without credentials
";
    let t = trace::parse("socks5/wrong", Protocol::Socks5, text).unwrap();
    let Outcome::Fail(f) = memory::replay(&t, Mode::Whole) else {
        panic!()
    };
    let d = f.diff.unwrap();
    assert_eq!(
        (f.line, d.offset, d.received.clone()),
        (4, 1, vec![5, 1, 0])
    );
    let text = "\
# RFC 1928 §6: wrong event on purpose
side: client
config: socks5 connect 192.0.2.7:80
client: 05 01 00
server: 05 00
client: 05 01 00 01 c0 00 02 07 00 50
server: 05 04 00 01 00 00 00 00 00 00
event: refused 05
";
    let t = trace::parse("socks5/wrong", Protocol::Socks5, text).unwrap();
    let Outcome::Fail(f) = memory::replay(&t, Mode::Split1) else {
        panic!()
    };
    assert_eq!(f.line, 8);
    assert!(f.message.contains("refused 04"), "{}", f.message);
}

#[test]
fn skip_alternatives_and_requirements() {
    // A `=> skip` alternative that matches ends the trace as SKIP with its reason.
    let text = "\
# RFC 1928 §4: BIND treated as unsupported on purpose
requires: noauth
client: 05 01 00
server: 05 00
client: 05 02 00 01 7f 00 00 01 00 00
server: 05 07 00 <addr> | 05 00 00 <addr> => skip \"pretend BIND is missing\"
";
    let t = trace::parse("socks5/skip", Protocol::Socks5, text).unwrap();
    assert_eq!(
        memory::replay(&t, Mode::Whole),
        Outcome::Skip("pretend BIND is missing".into())
    );
    // Unmet requirements are skipped with a reason before anything is sent.
    let env = triproxy_conformance::replay::Env::new(&memory::world(), None, false);
    let t = find("socks5/auth-success");
    assert!(env.unmet(&t).unwrap().contains("--user"));
    let t = find("socks5/connect-nxdomain");
    assert!(env.unmet(&t).unwrap().contains("--nxdomain"));
    let t = find("socks5/connect-ipv4");
    assert_eq!(env.unmet(&t), None);
}

#[test]
fn sent_messages_resolve_values_for_fuzz_seeds() {
    let t = find("socks5/connect-ipv4");
    let env = memory::env_for(&t);
    let msgs = triproxy_conformance::replay::sent_messages(&t, &env);
    assert_eq!(msgs[0].as_deref(), Some(&[5u8, 1, 0][..]));
    assert_eq!(
        msgs[1].as_deref(),
        Some(&[5u8, 1, 0, 1, 127, 0, 0, 1, 0, 7][..])
    );
    assert_eq!(msgs[2].as_deref(), Some(&b"hello"[..]));
    assert_eq!(msgs.len(), 3);
}

#[test]
fn waiting_advances_virtual_time_only() {
    let text = "\
# RFC 1928 §3: a pause between greeting and request changes nothing
requires: noauth
client: 05 01 00
server: 05 00
client: wait 2s
server: timeout
client: 05 01 00 01 {echo.ip4} {echo.port}
server: 05 00 00 <addr>
";
    let t = trace::parse("socks5/wait", Protocol::Socks5, text).unwrap();
    let start = std::time::Instant::now();
    for mode in Mode::ALL {
        assert_eq!(memory::replay(&t, mode), Outcome::Pass, "{mode}");
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn live_targets_listen_where_the_server_can_reach_them() {
    use triproxy_conformance::live::{target_ip_for, LiveConfig, Targets};
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    assert_eq!(
        target_ip_for("127.0.0.1:1080".parse().unwrap()).unwrap(),
        lo
    );
    // A remote server gets the address of the route to it (when the machine has one).
    if let Ok(ip) = target_ip_for("192.0.2.1:1080".parse().unwrap()) {
        assert!(!ip.is_unspecified(), "{ip}");
    }
    let targets = Targets::start_on(lo).unwrap();
    assert_eq!(targets.echo.ip(), lo);
    // No server listens: the trace fails at once, naming the address.
    let closed = targets.closed;
    let t = find("socks5/connect-ipv4");
    let Outcome::Fail(f) =
        triproxy_conformance::live::replay(&t, Mode::Whole, &LiveConfig::new(closed), &targets)
    else {
        panic!()
    };
    assert!(f.message.contains("cannot connect"), "{}", f.message);
}
