//! The trace format: one text file per scenario, written from the RFC (or the SOCKS4 protocol
//! text) so that a reviewer can read it next to the specification, and its parser.
//!
//! This module only reads and checks traces; running them is [`crate::replay`]'s job. The
//! trace types live here; reading files is in `load`, the parser in `parser` and `token`.
//!
//! # Format
//!
//! The format is documented in `conformance/TRACES.md` (header directives `level:`, `rfc:`,
//! `requires:`, `modes:`, `side:`, `config:`; steps; data and patterns; harness values).
//!
//! ```text
//! # RFC 1928 §3: a greeting without acceptable methods gets X'FF'
//! level: must
//! rfc: RFC 1928 §3: "If the selected METHOD is X'FF', none of the methods listed by the client are acceptable, and the client MUST close the connection."
//! client: 05 01 80
//! server: 05 ff
//! ```
//!
//! # Limits
//!
//! A trace file is at most [`MAX_TRACE_LEN`] bytes and [`MAX_STEPS`] steps; one step sends
//! or expects at most [`MAX_STEP_BYTES`] bytes; an EXPECT has at most [`MAX_ALTERNATIVES`]
//! alternatives.

mod load;
mod parser;
mod token;

use core::fmt;
pub use load::{default_trace_dir, embedded_suite, load_file, load_suite, LoadError};
pub use parser::target_addr;
use parser::Parser;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use triproxy_wire::TargetAddr;

/// Largest trace file accepted.
pub const MAX_TRACE_LEN: usize = 1 << 20;
/// Most steps in one trace.
pub const MAX_STEPS: usize = 512;
/// Most bytes one step may send or expect.
pub const MAX_STEP_BYTES: usize = 64 * 1024;
/// Most alternatives in one EXPECT.
pub const MAX_ALTERNATIVES: usize = 16;
/// Most trace files loaded from one directory.
pub const MAX_TRACES: usize = 1024;
/// Longest `client: wait`.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The harness values a trace may name in braces.
pub const HARNESS_VALUES: &[&str] = &[
    "echo.ip4",
    "echo.port",
    "echo.host",
    "echo.host.len",
    "echo.hostport",
    "echo6.ip6",
    "echo6.port",
    "sink.ip4",
    "sink.port",
    "closed.ip4",
    "closed.port",
    "closed.hostport",
    "origin.hostport",
    "denied.ip4",
    "denied.port",
    "denied.hostport",
    "udpecho.ip4",
    "udpecho.port",
    "udpclient.ip4",
    "udpclient.port",
    "user",
    "user.len",
    "pass",
    "pass.len",
    "nxdomain",
    "nxdomain.len",
];

/// Values that exist once the BIND peer has connected (EXPECT only).
pub const PEER_VALUES: &[&str] = &["peer.ip4", "peer.port"];

/// Which protocol suite a trace belongs to (its directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// SOCKS4 and SOCKS4a (`traces/socks4`).
    Socks4,
    /// SOCKS5, RFC 1928 and RFC 1929 (`traces/socks5`).
    Socks5,
    /// HTTP proxies, RFC 9110 and RFC 9112: CONNECT and forwarding (`traces/http`).
    Http,
}

impl Protocol {
    /// The directory and report name: `socks4` or `socks5`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Socks4 => "socks4",
            Protocol::Socks5 => "socks5",
            Protocol::Http => "http",
        }
    }
}

/// How binding the behaviour a trace checks is (header `level:`). Only a failed
/// [`Level::Must`] trace fails a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The specification requires it (MUST, or the only meaningful reading of the text).
    Must,
    /// The specification recommends it (SHOULD), or interoperability depends on it.
    Should,
    /// The specification leaves it open; the trace records one reasonable choice.
    Choice,
}

impl Level {
    /// `must`, `should` or `choice` (as written in traces).
    pub fn name(self) -> &'static str {
        match self {
            Level::Must => "must",
            Level::Should => "should",
            Level::Choice => "choice",
        }
    }

    /// `MUST`, `SHOULD` or `implementation choice` (as shown in reports).
    pub fn label(self) -> &'static str {
        match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::Choice => "implementation choice",
        }
    }

    fn from_name(s: &str) -> Option<Level> {
        [Level::Must, Level::Should, Level::Choice]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The root cause a trace's failure points to, whatever the mode (header `cause:`), for
/// traces written to provoke it: a greeting sent in pieces, data pipelined on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// `split`: the server expects one read to hold one whole message.
    Split,
    /// `pipelined`: the server loses bytes that follow a message in the same read.
    Pipelined,
}

/// Who the trace tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// A SOCKS server (ours in memory, or a live one); the harness is the client.
    Server,
    /// Our client machine; the harness plays the server (in memory only).
    Client,
}

/// How client bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Each `client:` line in one write.
    Whole,
    /// Each `client:` line one byte per write.
    Split1,
    /// Consecutive `client:` data lines joined into one write.
    Pipelined,
}

impl Mode {
    /// All modes, in report order.
    pub const ALL: [Mode; 3] = [Mode::Whole, Mode::Split1, Mode::Pipelined];

    /// `whole`, `split1` or `pipelined`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Whole => "whole",
            Mode::Split1 => "split1",
            Mode::Pipelined => "pipelined",
        }
    }

    /// The mode named `s`.
    pub fn from_name(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == s)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the server under test must be set up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Requirement {
    /// The server accepts clients without authentication.
    NoAuth,
    /// The server requires RFC 1929 username/password (the harness has credentials).
    Auth,
    /// The harness has an IPv6 loopback echo target.
    Ipv6,
    /// Resolving a name that does not exist is allowed (it may send a DNS query).
    Nxdomain,
    /// The server is configured to refuse the `denied` target.
    Deny,
}

impl Requirement {
    /// The name used in `requires:`.
    pub fn name(self) -> &'static str {
        match self {
            Requirement::NoAuth => "noauth",
            Requirement::Auth => "auth",
            Requirement::Ipv6 => "ipv6",
            Requirement::Nxdomain => "nxdomain",
            Requirement::Deny => "deny",
        }
    }

    fn from_name(s: &str) -> Option<Requirement> {
        [
            Requirement::NoAuth,
            Requirement::Auth,
            Requirement::Ipv6,
            Requirement::Nxdomain,
            Requirement::Deny,
        ]
        .into_iter()
        .find(|r| r.name() == s)
    }
}

/// A piece of bytes to send: literal, or a harness value resolved when the step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal bytes.
    Bytes(Vec<u8>),
    /// A harness value by name (`echo.port`).
    Value(String),
}

/// One item of a byte pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// Exactly these bytes.
    Bytes(Vec<u8>),
    /// The bytes of a harness (or peer) value.
    Value(String),
    /// This many bytes of any value (`??`).
    Any(usize),
    /// One byte of any value except this one (`!00`).
    Not(u8),
    /// A SOCKS5 address (ATYP, address, port), optionally captured under a name.
    Addr(Option<String>),
    /// SOCKS4 DSTPORT and DSTIP (6 bytes), optionally captured under a name.
    PortIp4(Option<String>),
    /// Any further bytes, until the stream ends or goes quiet (`...`).
    Rest,
    /// Any bytes up to and including the first CRLF CRLF (`<head>`: the rest of an HTTP
    /// head).
    Head,
}

/// What one alternative expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// A byte pattern.
    Bytes(Vec<Item>),
    /// The connection ends (EOF or reset) with no further bytes.
    Close,
    /// A clean EOF with no further bytes.
    Eof,
    /// Nothing arrives within the quiet window and the connection stays open.
    Timeout,
}

/// One allowed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// What it matches.
    pub pattern: Pattern,
    /// If set, matching this alternative ends the trace as SKIP with this reason.
    pub skip: Option<String>,
}

/// The allowed answers at one point of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    /// In order of preference; the first that matches wins.
    pub alternatives: Vec<Alternative>,
}

/// An outcome of our client machine (client traces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventExpect {
    /// `ClientEvent::Granted` with this bound address.
    Granted(TargetAddr),
    /// `ClientEvent::BindPeer` with this peer address.
    BindPeer(TargetAddr),
    /// `ClientEvent::Refused` with this REP / CD byte.
    Refused(u8),
    /// The machine failed (an error from `handle_input`, `handle_eof` or `Client::new`).
    Error,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Server traces: the client sends; client traces: the scripted server sends.
    Send(Vec<Piece>),
    /// The sender half-closes (server traces: the client; client traces: the server).
    Close,
    /// The client waits (memory: virtual time advances).
    Wait(Duration),
    /// Server traces: what the client must receive; client traces: what our client
    /// machine must send.
    Expect(Expect),
    /// The BIND peer connects to a captured address.
    PeerConnect(String),
    /// The BIND peer sends.
    PeerSend(Vec<Piece>),
    /// The BIND peer closes.
    PeerClose,
    /// What the BIND peer must receive.
    PeerExpect(Expect),
    /// A datagram from the client to the captured `relay`.
    UdpSend(Vec<Piece>),
    /// One datagram the client must receive.
    UdpExpect(Expect),
    /// Client traces: the next outcome of the client machine.
    Event(Box<EventExpect>),
    /// Client traces: the bytes the client machine left unconsumed.
    Leftover(Vec<Piece>),
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line number in the file.
    pub line: usize,
    /// The line as written (for reports).
    pub text: String,
    /// What it does.
    pub action: Action,
}

/// The command of a client trace's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCommand {
    /// CONNECT.
    Connect,
    /// BIND.
    Bind,
    /// UDP ASSOCIATE.
    UdpAssociate,
}

/// The client machine set-up of a client trace (`config:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSetup {
    /// `socks4`, `socks4a` or `socks5`.
    pub version: String,
    /// What to ask for.
    pub command: ClientCommand,
    /// Where to.
    pub target: TargetAddr,
    /// RFC 1929 (or SOCKS4 USERID) user name.
    pub user: Option<Vec<u8>>,
    /// RFC 1929 password.
    pub pass: Option<Vec<u8>>,
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// `socks5/connect-ipv4` (suite and file stem).
    pub name: String,
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// The suite.
    pub protocol: Protocol,
    /// First description line.
    pub title: String,
    /// All description lines.
    pub description: Vec<String>,
    /// Who is tested.
    pub side: Side,
    /// How binding the checked behaviour is (`level:`; [`Level::Must`] if not given).
    pub level: Level,
    /// The specification sentence the trace checks (`rfc:`), verbatim.
    pub rfc: Option<String>,
    /// The root cause its failures point to (`cause:`), if the trace is written for one.
    pub cause: Option<Cause>,
    /// Set-up the server must have.
    pub requires: BTreeSet<Requirement>,
    /// Input modes to run.
    pub modes: Vec<Mode>,
    /// Client traces: the machine's set-up.
    pub client: Option<ClientSetup>,
    /// The steps.
    pub steps: Vec<Step>,
}

/// Why a trace does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The file is larger than [`MAX_TRACE_LEN`].
    FileTooLarge,
    /// A line has no `word:` in front.
    MissingColon,
    /// An unknown directive or step word.
    UnknownStep(String),
    /// A header directive after the first step.
    HeaderAfterSteps(String),
    /// A directive given twice.
    DuplicateHeader(String),
    /// A token that is not valid here.
    BadToken(String),
    /// A string without its closing quote.
    UnterminatedString,
    /// An unknown escape in a string.
    BadEscape(String),
    /// A repeat count that is not a number in 1..=[`MAX_STEP_BYTES`].
    BadRepeat(String),
    /// A `{name}` that is not a harness value (or not available at that point).
    UnknownValue(String),
    /// `peer: connect {name}` or `udp-send` without an earlier capture of that name.
    UnknownCapture(String),
    /// The same capture name twice.
    DuplicateCapture(String),
    /// A `peer:` data line or `peer-expect:` before `peer: connect`.
    PeerNotConnected,
    /// An empty step or alternative.
    Empty,
    /// `close`, `eof` or `timeout` mixed with bytes, `...` not last, or similar.
    Misplaced(String),
    /// More than [`MAX_ALTERNATIVES`] alternatives.
    TooManyAlternatives,
    /// More than [`MAX_STEP_BYTES`] bytes in a step.
    StepTooLong,
    /// More than [`MAX_STEPS`] steps.
    TooManySteps,
    /// An unknown requirement, mode or side.
    BadHeaderValue(String),
    /// A `config:` line that does not parse (or is missing in a client trace).
    BadConfig(String),
    /// An `event:` line that does not parse.
    BadEvent(String),
    /// A step that does not exist on this side (e.g. `event:` in a server trace).
    WrongSide(String),
    /// A `wait` that is not `N ms` / `N s` up to [`MAX_WAIT`].
    BadWait(String),
    /// The trace has no steps.
    NoSteps,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ParseErrorKind as K;
        match self {
            K::FileTooLarge => write!(f, "trace larger than {MAX_TRACE_LEN} bytes"),
            K::MissingColon => write!(f, "expected `word: ...`"),
            K::UnknownStep(w) => write!(f, "unknown directive or step `{w}`"),
            K::HeaderAfterSteps(w) => write!(f, "`{w}:` must come before the first step"),
            K::DuplicateHeader(w) => write!(f, "`{w}:` given twice"),
            K::BadToken(t) => write!(f, "unexpected token `{t}`"),
            K::UnterminatedString => write!(f, "string without closing quote"),
            K::BadEscape(e) => write!(f, "unknown escape `{e}` in string"),
            K::BadRepeat(r) => write!(f, "bad repeat count `{r}`"),
            K::UnknownValue(v) => write!(f, "unknown value `{{{v}}}`"),
            K::UnknownCapture(c) => write!(f, "no earlier capture named `{c}`"),
            K::DuplicateCapture(c) => write!(f, "capture `{c}` defined twice"),
            K::PeerNotConnected => write!(f, "peer step before `peer: connect`"),
            K::Empty => write!(f, "empty step or alternative"),
            K::Misplaced(t) => write!(f, "`{t}` is not allowed here"),
            K::TooManyAlternatives => write!(f, "more than {MAX_ALTERNATIVES} alternatives"),
            K::StepTooLong => write!(f, "step longer than {MAX_STEP_BYTES} bytes"),
            K::TooManySteps => write!(f, "more than {MAX_STEPS} steps"),
            K::BadHeaderValue(v) => write!(f, "unknown header value `{v}`"),
            K::BadConfig(c) => write!(f, "bad client config: {c}"),
            K::BadEvent(e) => write!(f, "bad event `{e}`"),
            K::WrongSide(s) => write!(f, "`{s}` is not a step of this side"),
            K::BadWait(w) => write!(f, "bad wait `{w}` (e.g. `wait 100ms`, at most 5 s)"),
            K::NoSteps => write!(f, "trace has no steps"),
        }
    }
}

/// A trace that does not parse, with the line where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The trace name or file.
    pub trace: String,
    /// 1-based line (0 for the whole file).
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.trace, self.line, self.kind)
    }
}

impl std::error::Error for ParseError {}

/// Parses a trace from text. `name` is used in reports and errors.
///
/// ```
/// use triproxy_conformance::trace::{parse, Protocol};
/// let t = parse("socks5/x", Protocol::Socks5, "# t\nclient: 05 01 00\nserver: 05 00 | 05 ff\n").unwrap();
/// assert_eq!(t.steps.len(), 2);
/// let e = parse("socks5/x", Protocol::Socks5, "# t\nclient: 05 zz\n").unwrap_err();
/// assert_eq!((e.line, e.to_string().contains("zz")), (2, true));
/// ```
pub fn parse(name: &str, protocol: Protocol, text: &str) -> Result<Trace, ParseError> {
    if text.len() > MAX_TRACE_LEN {
        return Err(ParseError {
            trace: name.to_string(),
            line: 0,
            kind: ParseErrorKind::FileTooLarge,
        });
    }
    Parser::new(name, protocol)
        .run(text)
        .map_err(|(line, kind)| ParseError {
            trace: name.to_string(),
            line,
            kind,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Trace, ParseError> {
        parse("socks5/t", Protocol::Socks5, text)
    }

    #[test]
    fn header_and_steps() {
        let t = p("# RFC 1928 §3: title\n# more\nrequires: auth\nmodes: whole\nclient: 05 01 02 # greet\nserver: 05 02 | 05 ff => skip \"no auth\"\n")
            .unwrap();
        assert_eq!(t.title, "RFC 1928 §3: title");
        assert_eq!(t.description.len(), 2);
        assert!(t.requires.contains(&Requirement::Auth));
        assert_eq!(t.modes, vec![Mode::Whole]);
        assert_eq!(t.steps[0].line, 5);
        assert_eq!(
            t.steps[0].action,
            Action::Send(vec![Piece::Bytes(vec![5, 1, 2])])
        );
        let Action::Expect(e) = &t.steps[1].action else {
            panic!()
        };
        assert_eq!(e.alternatives.len(), 2);
        assert_eq!(e.alternatives[1].skip.as_deref(), Some("no auth"));
    }

    #[test]
    fn implied_requirements() {
        let t = p("client: 05 01 00 04 {echo6.ip6} {echo6.port}\n").unwrap();
        assert!(t.requires.contains(&Requirement::Ipv6));
        assert_eq!(t.modes, Mode::ALL.to_vec());
    }

    #[test]
    fn errors_have_lines() {
        let cases: &[(&str, usize, ParseErrorKind)] = &[
            ("client: 05 zz\n", 1, ParseErrorKind::BadToken("zz".into())),
            (
                "\n\nclinet: 05\n",
                3,
                ParseErrorKind::UnknownStep("clinet".into()),
            ),
            ("client 05\n", 1, ParseErrorKind::MissingColon),
            ("client: \"abc\n", 1, ParseErrorKind::UnterminatedString),
            (
                "client: {nope}\n",
                1,
                ParseErrorKind::UnknownValue("nope".into()),
            ),
            (
                "client: 05\nrequires: auth\n",
                2,
                ParseErrorKind::HeaderAfterSteps("requires".into()),
            ),
            (
                "server: 05 ... 00\n",
                1,
                ParseErrorKind::Misplaced("...".into()),
            ),
            (
                "server: 05 close\n",
                1,
                ParseErrorKind::Misplaced("close".into()),
            ),
            (
                "peer: connect {bind}\n",
                1,
                ParseErrorKind::UnknownCapture("bind".into()),
            ),
            ("peer: \"x\"\n", 1, ParseErrorKind::PeerNotConnected),
            (
                "udp-send: 00\n",
                1,
                ParseErrorKind::UnknownCapture("relay".into()),
            ),
            (
                "udp-expect: close\n",
                1,
                ParseErrorKind::Misplaced("close".into()),
            ),
            (
                "event: error\n",
                1,
                ParseErrorKind::WrongSide("event".into()),
            ),
            (
                "client: 61*0\n",
                1,
                ParseErrorKind::BadRepeat("61*0".into()),
            ),
            (
                "client: \"\\q\"\n",
                1,
                ParseErrorKind::BadEscape("\\q".into()),
            ),
            ("server: 05 |\n", 1, ParseErrorKind::Empty),
            (
                "client: wait 10m\n",
                1,
                ParseErrorKind::BadWait("10m".into()),
            ),
            (
                "requires: magic\nclient: 05\n",
                1,
                ParseErrorKind::BadHeaderValue("magic".into()),
            ),
            (
                "server: <addr:a> <addr:a>\n",
                1,
                ParseErrorKind::DuplicateCapture("a".into()),
            ),
            ("# only a comment\n", 0, ParseErrorKind::NoSteps),
            (
                "side: client\nclient: 05\n",
                0,
                ParseErrorKind::BadConfig("missing `config:`".into()),
            ),
        ];
        for (text, line, kind) in cases {
            let e = p(text).unwrap_err();
            assert_eq!((&e.line, &e.kind), (line, kind), "{text:?} -> {e}");
        }
        let e = p("client: 05 zz\n").unwrap_err();
        assert_eq!(e.to_string(), "socks5/t:1: unexpected token `zz`");
    }

    #[test]
    fn client_side() {
        let t = p("side: client\nconfig: socks5 connect 192.0.2.7:80 user=alice pass=pw\nclient: 05 02 00 02\nserver: 05 02\nevent: refused 05\n")
            .unwrap();
        assert_eq!(t.side, Side::Client);
        assert_eq!(t.modes, vec![Mode::Whole, Mode::Split1]);
        let c = t.client.unwrap();
        assert_eq!(c.user.as_deref(), Some(&b"alice"[..]));
        assert_eq!(c.target.to_string(), "192.0.2.7:80");
        assert_eq!(
            t.steps[2].action,
            Action::Event(Box::new(EventExpect::Refused(5)))
        );
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in "\\PC{0,300}") {
            let _ = p(&text);
        }

        #[test]
        fn errors_point_at_a_real_line(lines in proptest::collection::vec(
            "(client|server|peer|peer-expect|udp-send|udp-expect|requires|modes|side|event): [0-9a-f?!<>{}.|\"=*# a-z:]{0,40}",
            0..8,
        )) {
            let text = lines.join("\n");
            match p(&text) {
                Ok(t) => proptest::prop_assert!(!t.steps.is_empty()),
                Err(e) => proptest::prop_assert!(e.line <= lines.len()),
            }
        }
    }

    #[test]
    fn too_long() {
        let text = format!("client: 61*{}\n", MAX_STEP_BYTES + 1);
        assert!(matches!(
            p(&text).unwrap_err().kind,
            ParseErrorKind::BadRepeat(_)
        ));
        let text = format!("client: 61*{MAX_STEP_BYTES} 00\n");
        assert_eq!(p(&text).unwrap_err().kind, ParseErrorKind::StepTooLong);
        let text = format!("client: \"{}\"*{MAX_STEP_BYTES}\n", "a".repeat(1000));
        assert_eq!(p(&text).unwrap_err().kind, ParseErrorKind::StepTooLong);
    }
}
