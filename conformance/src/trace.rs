//! The trace format: one text file per scenario, written from the RFC (or the SOCKS4 protocol
//! text) so that a reviewer can read it next to the specification, and its parser.
//!
//! This module only reads and checks traces; running them is [`crate::replay`]'s job.
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

use core::fmt;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use triproxy_wire::{DomainName, TargetAddr};

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

/// A trace directory that could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the directory or a file failed.
    Io {
        /// Which path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A trace does not parse.
    Parse(ParseError),
    /// More than [`MAX_TRACES`] traces.
    TooMany,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            LoadError::Parse(e) => write!(f, "{e}"),
            LoadError::TooMany => write!(f, "more than {MAX_TRACES} traces"),
        }
    }
}

impl std::error::Error for LoadError {}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/traces.rs"));
}

/// The shipped traces of `protocol`, built into the binary (so an installed tool runs from
/// any directory), in file-name order.
pub fn embedded_suite(protocol: Protocol) -> Result<Vec<Trace>, ParseError> {
    embedded::EMBEDDED
        .iter()
        .filter(|(suite, _, _)| *suite == protocol.name())
        .map(|(_, stem, text)| parse(&format!("{}/{stem}", protocol.name()), protocol, text))
        .collect()
}

/// The trace directory of this source tree (`conformance/traces`), for tests and for
/// editing traces without rebuilding (`--traces`).
pub fn default_trace_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/traces"))
}

/// Loads every `*.trace` of `root/<protocol>` in file-name order.
pub fn load_suite(root: &Path, protocol: Protocol) -> Result<Vec<Trace>, LoadError> {
    let dir = root.join(protocol.name());
    let entries = std::fs::read_dir(&dir).map_err(|error| LoadError::Io {
        path: dir.clone(),
        error,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| LoadError::Io {
            path: dir.clone(),
            error,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "trace") {
            if paths.len() >= MAX_TRACES {
                return Err(LoadError::TooMany);
            }
            paths.push(path);
        }
    }
    paths.sort();
    let mut traces = Vec::with_capacity(paths.len());
    for path in paths {
        traces.push(load_file(&path, protocol)?);
    }
    Ok(traces)
}

/// Loads one trace file (at most [`MAX_TRACE_LEN`] bytes).
pub fn load_file(path: &Path, protocol: Protocol) -> Result<Trace, LoadError> {
    let io = |error| LoadError::Io {
        path: path.to_path_buf(),
        error,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{}/{stem}", protocol.name());
    if len > MAX_TRACE_LEN as u64 {
        return Err(LoadError::Parse(ParseError {
            trace: name,
            line: 0,
            kind: ParseErrorKind::FileTooLarge,
        }));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut trace = parse(&name, protocol, &text).map_err(LoadError::Parse)?;
    trace.path = Some(path.to_path_buf());
    Ok(trace)
}

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

type Fail = (usize, ParseErrorKind);

struct Parser {
    trace: Trace,
    seen_header: BTreeSet<&'static str>,
    modes_given: bool,
    captures: BTreeSet<String>,
    peer_connected: bool,
    in_description: bool,
}

impl Parser {
    fn new(name: &str, protocol: Protocol) -> Self {
        Parser {
            trace: Trace {
                name: name.to_string(),
                path: None,
                protocol,
                title: String::new(),
                description: Vec::new(),
                side: Side::Server,
                level: Level::Must,
                rfc: None,
                cause: None,
                requires: BTreeSet::new(),
                modes: Vec::new(),
                client: None,
                steps: Vec::new(),
            },
            seen_header: BTreeSet::new(),
            modes_given: false,
            captures: BTreeSet::new(),
            peer_connected: false,
            in_description: true,
        }
    }

    fn run(mut self, text: &str) -> Result<Trace, Fail> {
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                if self.in_description {
                    self.trace.description.push(comment.trim().to_string());
                }
                continue;
            }
            self.in_description = false;
            self.line(line, raw).map_err(|k| (line, k))?;
        }
        if self.trace.steps.is_empty() {
            return Err((0, ParseErrorKind::NoSteps));
        }
        self.trace.title = self
            .trace
            .description
            .iter()
            .find(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| self.trace.name.clone());
        if !self.modes_given {
            self.trace.modes = match self.trace.side {
                Side::Server => Mode::ALL.to_vec(),
                Side::Client => vec![Mode::Whole, Mode::Split1],
            };
        }
        if self.trace.side == Side::Client && self.trace.modes.contains(&Mode::Pipelined) {
            return Err((
                0,
                ParseErrorKind::BadHeaderValue("pipelined (client traces)".into()),
            ));
        }
        if self.trace.side == Side::Client && self.trace.client.is_none() {
            return Err((0, ParseErrorKind::BadConfig("missing `config:`".into())));
        }
        Ok(self.trace)
    }

    fn line(&mut self, line: usize, raw: &str) -> Result<(), ParseErrorKind> {
        let (word, body) = raw.split_once(':').ok_or(ParseErrorKind::MissingColon)?;
        let word = word.trim();
        if word == "rfc" || word == "level" || word == "cause" {
            return self.raw_header(word, body.trim());
        }
        let tokens = tokenize(body)?;
        match word {
            "requires" | "modes" | "side" | "config" => self.header(word, &tokens),
            _ => {
                if self.trace.steps.len() >= MAX_STEPS {
                    return Err(ParseErrorKind::TooManySteps);
                }
                let action = self.step(word, &tokens)?;
                self.trace.steps.push(Step {
                    line,
                    text: raw.trim().to_string(),
                    action,
                });
                Ok(())
            }
        }
    }

    /// `level:` and `rfc:`, read verbatim (an RFC sentence may hold any character).
    fn raw_header(&mut self, word: &str, body: &str) -> Result<(), ParseErrorKind> {
        if !self.trace.steps.is_empty() {
            return Err(ParseErrorKind::HeaderAfterSteps(word.to_string()));
        }
        let key: &'static str = match word {
            "rfc" => "rfc",
            "cause" => "cause",
            _ => "level",
        };
        if !self.seen_header.insert(key) {
            return Err(ParseErrorKind::DuplicateHeader(word.to_string()));
        }
        if body.is_empty() {
            return Err(ParseErrorKind::Empty);
        }
        if key == "rfc" {
            self.trace.rfc = Some(body.to_string());
        } else if key == "cause" {
            self.trace.cause = Some(match body {
                "split" => Cause::Split,
                "pipelined" => Cause::Pipelined,
                _ => return Err(ParseErrorKind::BadHeaderValue(body.to_string())),
            });
        } else {
            self.trace.level =
                Level::from_name(body).ok_or(ParseErrorKind::BadHeaderValue(body.to_string()))?;
        }
        Ok(())
    }

    fn header(&mut self, word: &str, tokens: &[Tok]) -> Result<(), ParseErrorKind> {
        if !self.trace.steps.is_empty() {
            return Err(ParseErrorKind::HeaderAfterSteps(word.to_string()));
        }
        let key: &'static str = match word {
            "requires" => "requires",
            "modes" => "modes",
            "side" => "side",
            _ => "config",
        };
        if !self.seen_header.insert(key) {
            return Err(ParseErrorKind::DuplicateHeader(word.to_string()));
        }
        let words = words(tokens)?;
        match key {
            "requires" => {
                for w in words {
                    let r = Requirement::from_name(&w)
                        .ok_or(ParseErrorKind::BadHeaderValue(w.clone()))?;
                    self.trace.requires.insert(r);
                }
            }
            "modes" => {
                self.modes_given = true;
                for w in words {
                    let m = Mode::from_name(&w).ok_or(ParseErrorKind::BadHeaderValue(w))?;
                    if !self.trace.modes.contains(&m) {
                        self.trace.modes.push(m);
                    }
                }
                if self.trace.modes.is_empty() {
                    return Err(ParseErrorKind::Empty);
                }
            }
            "side" => {
                self.trace.side = match words.as_slice() {
                    [w] if w == "server" => Side::Server,
                    [w] if w == "client" => Side::Client,
                    _ => return Err(ParseErrorKind::BadHeaderValue(words.join(" "))),
                };
            }
            _ => self.trace.client = Some(client_setup(&words)?),
        }
        Ok(())
    }

    fn step(&mut self, word: &str, tokens: &[Tok]) -> Result<Action, ParseErrorKind> {
        let side = self.trace.side;
        let wrong = || ParseErrorKind::WrongSide(word.to_string());
        match (word, side) {
            ("client", Side::Server) => match single_word(tokens).as_deref() {
                Some("close") => Ok(Action::Close),
                _ => match tokens.first() {
                    Some(Tok::Word(w)) if w == "wait" => wait(tokens),
                    _ => Ok(Action::Send(self.data(tokens)?)),
                },
            },
            ("server", Side::Server) => Ok(Action::Expect(self.expect(tokens, Stream::Tcp)?)),
            ("client", Side::Client) => Ok(Action::Expect(self.expect(tokens, Stream::Tcp)?)),
            ("server", Side::Client) => match single_word(tokens).as_deref() {
                Some("close") => Ok(Action::Close),
                _ => Ok(Action::Send(self.data(tokens)?)),
            },
            ("peer", Side::Server) => match tokens {
                [Tok::Word(w), Tok::Value(name)] if w == "connect" => {
                    if !self.captures.contains(name) {
                        return Err(ParseErrorKind::UnknownCapture(name.clone()));
                    }
                    self.peer_connected = true;
                    Ok(Action::PeerConnect(name.clone()))
                }
                _ => {
                    if !self.peer_connected {
                        return Err(ParseErrorKind::PeerNotConnected);
                    }
                    match single_word(tokens).as_deref() {
                        Some("close") => Ok(Action::PeerClose),
                        _ => Ok(Action::PeerSend(self.data(tokens)?)),
                    }
                }
            },
            ("peer-expect", Side::Server) => {
                if !self.peer_connected {
                    return Err(ParseErrorKind::PeerNotConnected);
                }
                Ok(Action::PeerExpect(self.expect(tokens, Stream::Tcp)?))
            }
            ("udp-send", Side::Server) => {
                if !self.captures.contains("relay") {
                    return Err(ParseErrorKind::UnknownCapture("relay".into()));
                }
                Ok(Action::UdpSend(self.data(tokens)?))
            }
            ("udp-expect", Side::Server) => {
                Ok(Action::UdpExpect(self.expect(tokens, Stream::Datagram)?))
            }
            ("event", Side::Client) => Ok(Action::Event(Box::new(event(tokens)?))),
            ("leftover", Side::Client) => Ok(Action::Leftover(self.data(tokens)?)),
            ("peer" | "peer-expect" | "udp-send" | "udp-expect" | "event" | "leftover", _) => {
                Err(wrong())
            }
            _ => Err(ParseErrorKind::UnknownStep(word.to_string())),
        }
    }

    fn value(&mut self, name: &str, in_expect: bool) -> Result<(), ParseErrorKind> {
        let known = HARNESS_VALUES.contains(&name)
            || (in_expect && self.peer_connected && PEER_VALUES.contains(&name));
        if !known {
            return Err(ParseErrorKind::UnknownValue(name.to_string()));
        }
        let implied = if name.starts_with("echo6.") {
            Some(Requirement::Ipv6)
        } else if name.starts_with("nxdomain") {
            Some(Requirement::Nxdomain)
        } else if name.starts_with("denied.") {
            Some(Requirement::Deny)
        } else {
            None
        };
        if let Some(r) = implied {
            self.trace.requires.insert(r);
        }
        Ok(())
    }

    fn data(&mut self, tokens: &[Tok]) -> Result<Vec<Piece>, ParseErrorKind> {
        if tokens.is_empty() {
            return Err(ParseErrorKind::Empty);
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut total = 0usize;
        for t in tokens {
            let piece = match t {
                Tok::Bytes(b) => Piece::Bytes(b.clone()),
                Tok::Value(v) => {
                    self.value(v, false)?;
                    total += 2;
                    Piece::Value(v.clone())
                }
                other => return Err(ParseErrorKind::BadToken(other.to_string())),
            };
            if let Piece::Bytes(b) = &piece {
                total += b.len();
            }
            if total > MAX_STEP_BYTES {
                return Err(ParseErrorKind::StepTooLong);
            }
            match (pieces.last_mut(), piece) {
                (Some(Piece::Bytes(prev)), Piece::Bytes(b)) => prev.extend_from_slice(&b),
                (_, p) => pieces.push(p),
            }
        }
        Ok(pieces)
    }

    fn expect(&mut self, tokens: &[Tok], stream: Stream) -> Result<Expect, ParseErrorKind> {
        let mut alternatives = Vec::new();
        for alt in tokens.split(|t| *t == Tok::Pipe) {
            if alternatives.len() >= MAX_ALTERNATIVES {
                return Err(ParseErrorKind::TooManyAlternatives);
            }
            alternatives.push(self.alternative(alt, stream)?);
        }
        Ok(Expect { alternatives })
    }

    fn alternative(
        &mut self,
        tokens: &[Tok],
        stream: Stream,
    ) -> Result<Alternative, ParseErrorKind> {
        let (body, skip) = match tokens.iter().position(|t| *t == Tok::Arrow) {
            None => (tokens, None),
            Some(i) => {
                let (body, tail) = tokens.split_at(i);
                match tail {
                    [Tok::Arrow, Tok::Word(w), Tok::Bytes(reason)] if w == "skip" => {
                        (body, Some(String::from_utf8_lossy(reason).into_owned()))
                    }
                    _ => return Err(ParseErrorKind::Misplaced("=>".into())),
                }
            }
        };
        if body.is_empty() {
            return Err(ParseErrorKind::Empty);
        }
        if let Some(w) = single_word(body) {
            let pattern = match w.as_str() {
                "close" if stream == Stream::Tcp => Some(Pattern::Close),
                "eof" if stream == Stream::Tcp => Some(Pattern::Eof),
                "timeout" => Some(Pattern::Timeout),
                "close" | "eof" => return Err(ParseErrorKind::Misplaced(w)),
                _ => None,
            };
            if let Some(pattern) = pattern {
                return Ok(Alternative { pattern, skip });
            }
        }
        let mut items: Vec<Item> = Vec::new();
        let mut total = 0usize;
        for (i, t) in body.iter().enumerate() {
            let item = match t {
                Tok::Bytes(b) => Item::Bytes(b.clone()),
                Tok::Value(v) => {
                    self.value(v, true)?;
                    Item::Value(v.clone())
                }
                Tok::Any(n) => Item::Any(*n),
                Tok::Not(b) => Item::Not(*b),
                Tok::Head => Item::Head,
                Tok::Rest => {
                    if i + 1 != body.len() {
                        return Err(ParseErrorKind::Misplaced("...".into()));
                    }
                    Item::Rest
                }
                Tok::Capture(kind, name) => {
                    if let Some(n) = name {
                        if !self.captures.insert(n.clone()) {
                            return Err(ParseErrorKind::DuplicateCapture(n.clone()));
                        }
                    }
                    match kind {
                        CaptureKind::Addr => Item::Addr(name.clone()),
                        CaptureKind::PortIp4 => Item::PortIp4(name.clone()),
                    }
                }
                Tok::Word(w) => return Err(ParseErrorKind::Misplaced(w.clone())),
                other => return Err(ParseErrorKind::BadToken(other.to_string())),
            };
            total += match &item {
                Item::Bytes(b) => b.len(),
                Item::Any(n) => *n,
                _ => 1,
            };
            if total > MAX_STEP_BYTES {
                return Err(ParseErrorKind::StepTooLong);
            }
            match (items.last_mut(), item) {
                (Some(Item::Bytes(prev)), Item::Bytes(b)) => prev.extend_from_slice(&b),
                (Some(Item::Any(prev)), Item::Any(n)) => *prev += n,
                (_, it) => items.push(it),
            }
        }
        Ok(Alternative {
            pattern: Pattern::Bytes(items),
            skip,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Tcp,
    Datagram,
}

fn single_word(tokens: &[Tok]) -> Option<String> {
    match tokens {
        [Tok::Word(w)] => Some(w.clone()),
        _ => None,
    }
}

fn words(tokens: &[Tok]) -> Result<Vec<String>, ParseErrorKind> {
    tokens
        .iter()
        .map(|t| match t {
            Tok::Word(w) => Ok(w.clone()),
            // A header word that happens to look like hex (`00`) is still a word.
            other => Err(ParseErrorKind::BadToken(other.to_string())),
        })
        .collect()
}

fn wait(tokens: &[Tok]) -> Result<Action, ParseErrorKind> {
    let [_, Tok::Word(w)] = tokens else {
        return Err(ParseErrorKind::BadWait(
            tokens
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
        ));
    };
    let bad = || ParseErrorKind::BadWait(w.clone());
    let d = if let Some(ms) = w.strip_suffix("ms") {
        Duration::from_millis(ms.parse().map_err(|_| bad())?)
    } else if let Some(s) = w.strip_suffix('s') {
        Duration::from_secs(s.parse().map_err(|_| bad())?)
    } else {
        return Err(bad());
    };
    if d > MAX_WAIT {
        return Err(bad());
    }
    Ok(Action::Wait(d))
}

fn event(tokens: &[Tok]) -> Result<EventExpect, ParseErrorKind> {
    let text = tokens
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let bad = || ParseErrorKind::BadEvent(text.clone());
    match tokens {
        [Tok::Word(w)] if w == "error" => Ok(EventExpect::Error),
        [Tok::Word(w), Tok::Word(addr)] if w == "granted" => {
            Ok(EventExpect::Granted(target_addr(addr).ok_or_else(bad)?))
        }
        [Tok::Word(w), Tok::Word(addr)] if w == "bind-peer" => {
            Ok(EventExpect::BindPeer(target_addr(addr).ok_or_else(bad)?))
        }
        [Tok::Word(w), Tok::Bytes(b)] if w == "refused" => match b.as_slice() {
            [code] => Ok(EventExpect::Refused(*code)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// `1.2.3.4:80`, `[::1]:80` or `name:80`.
pub fn target_addr(s: &str) -> Option<TargetAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(TargetAddr::Ip(sa));
    }
    let (host, port) = s.rsplit_once(':')?;
    let port = port.parse().ok()?;
    Some(TargetAddr::Domain(
        DomainName::new(host.as_bytes()).ok()?,
        port,
    ))
}

fn client_setup(words: &[String]) -> Result<ClientSetup, ParseErrorKind> {
    let bad = |why: &str| ParseErrorKind::BadConfig(why.to_string());
    let [version, command, target, rest @ ..] = words else {
        return Err(bad("expected `VERSION COMMAND TARGET [user=U] [pass=P]`"));
    };
    if !matches!(version.as_str(), "socks4" | "socks4a" | "socks5") {
        return Err(bad("version must be socks4, socks4a or socks5"));
    }
    let command = match command.as_str() {
        "connect" => ClientCommand::Connect,
        "bind" => ClientCommand::Bind,
        "udp-associate" => ClientCommand::UdpAssociate,
        _ => return Err(bad("command must be connect, bind or udp-associate")),
    };
    let target = target_addr(target).ok_or_else(|| bad("target must be IP:PORT or NAME:PORT"))?;
    let mut setup = ClientSetup {
        version: version.clone(),
        command,
        target,
        user: None,
        pass: None,
    };
    for w in rest {
        match w.split_once('=') {
            Some(("user", u)) => setup.user = Some(u.as_bytes().to_vec()),
            Some(("pass", p)) => setup.pass = Some(p.as_bytes().to_vec()),
            _ => return Err(bad("options are user=U and pass=P")),
        }
    }
    Ok(setup)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaptureKind {
    Addr,
    PortIp4,
}

/// A token of a step body.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Literal bytes (hex or string, repeats applied).
    Bytes(Vec<u8>),
    /// `{name}`.
    Value(String),
    /// `??` (count).
    Any(usize),
    /// `!XX`.
    Not(u8),
    /// `...`.
    Rest,
    /// `<head>`.
    Head,
    /// `<addr>`, `<addr:name>`, `<port-ip4>`, `<port-ip4:name>`.
    Capture(CaptureKind, Option<String>),
    /// `|`.
    Pipe,
    /// `=>`.
    Arrow,
    /// Any other bare word (`close`, `connect`, `skip`, header values).
    Word(String),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Bytes(b) => {
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Tok::Value(v) => write!(f, "{{{v}}}"),
            Tok::Any(n) => write!(f, "??*{n}"),
            Tok::Not(b) => write!(f, "!{b:02x}"),
            Tok::Rest => f.write_str("..."),
            Tok::Head => f.write_str("<head>"),
            Tok::Capture(k, n) => {
                let k = match k {
                    CaptureKind::Addr => "addr",
                    CaptureKind::PortIp4 => "port-ip4",
                };
                match n {
                    Some(n) => write!(f, "<{k}:{n}>"),
                    None => write!(f, "<{k}>"),
                }
            }
            Tok::Pipe => f.write_str("|"),
            Tok::Arrow => f.write_str("=>"),
            Tok::Word(w) => f.write_str(w),
        }
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_')
}

/// Splits a step body into tokens; stops at a `#` outside quotes.
fn tokenize(body: &str) -> Result<Vec<Tok>, ParseErrorKind> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else {
            return Ok(out);
        };
        match c {
            '#' => return Ok(out),
            '|' => {
                out.push(Tok::Pipe);
                rest = rest.get(1..).unwrap_or_default();
            }
            '"' => {
                let (bytes, after) = string(rest.get(1..).unwrap_or_default())?;
                let (n, after) = repeat(after)?;
                if bytes.len().saturating_mul(n) > MAX_STEP_BYTES {
                    return Err(ParseErrorKind::StepTooLong);
                }
                out.push(Tok::Bytes(bytes.repeat(n)));
                rest = after;
            }
            '{' => {
                let end = rest
                    .find('}')
                    .ok_or(ParseErrorKind::BadToken(rest.to_string()))?;
                let name = rest.get(1..end).unwrap_or_default();
                if !is_name(name) {
                    return Err(ParseErrorKind::BadToken(format!("{{{name}}}")));
                }
                out.push(Tok::Value(name.to_string()));
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or(ParseErrorKind::BadToken(rest.to_string()))?;
                let inner = rest.get(1..end).unwrap_or_default();
                if inner == "head" {
                    out.push(Tok::Head);
                    rest = rest.get(end + 1..).unwrap_or_default();
                    continue;
                }
                let (kind, name) = match inner.split_once(':') {
                    Some((k, n)) if is_name(n) => (k, Some(n.to_string())),
                    Some(_) => return Err(ParseErrorKind::BadToken(format!("<{inner}>"))),
                    None => (inner, None),
                };
                let kind = match kind {
                    "addr" => CaptureKind::Addr,
                    "port-ip4" => CaptureKind::PortIp4,
                    _ => return Err(ParseErrorKind::BadToken(format!("<{inner}>"))),
                };
                out.push(Tok::Capture(kind, name));
                rest = rest.get(end + 1..).unwrap_or_default();
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || matches!(c, '"' | '#' | '|' | '{' | '<'))
                    .unwrap_or(rest.len());
                let word = rest.get(..end).unwrap_or_default();
                rest = rest.get(end..).unwrap_or_default();
                out.push(word_token(word)?);
            }
        }
    }
}

fn word_token(word: &str) -> Result<Tok, ParseErrorKind> {
    if word == "=>" {
        return Ok(Tok::Arrow);
    }
    if word == "..." {
        return Ok(Tok::Rest);
    }
    let (base, count) = match word.split_once('*') {
        Some((b, n)) => {
            let n: usize = n
                .parse()
                .ok()
                .filter(|n| (1..=MAX_STEP_BYTES).contains(n))
                .ok_or_else(|| ParseErrorKind::BadRepeat(word.to_string()))?;
            (b, Some(n))
        }
        None => (word, None),
    };
    if base == "??" {
        return Ok(Tok::Any(count.unwrap_or(1)));
    }
    if let Some(hex) = base.strip_prefix('!') {
        if count.is_some() {
            return Err(ParseErrorKind::BadRepeat(word.to_string()));
        }
        return hex_byte(hex)
            .map(Tok::Not)
            .ok_or_else(|| ParseErrorKind::BadToken(word.to_string()));
    }
    if let Some(b) = hex_byte(base) {
        return Ok(Tok::Bytes(vec![b; count.unwrap_or(1)]));
    }
    if count.is_some() || base.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ParseErrorKind::BadToken(word.to_string()));
    }
    if base.chars().all(|c| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=' | ':' | '[' | ']' | '/')
    }) {
        return Ok(Tok::Word(base.to_string()));
    }
    Err(ParseErrorKind::BadToken(word.to_string()))
}

fn hex_byte(s: &str) -> Option<u8> {
    if s.len() == 2 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        u8::from_str_radix(s, 16).ok()
    } else {
        None
    }
}

/// Parses a string body after the opening quote; returns its bytes and the text after the
/// closing quote.
fn string(s: &str) -> Result<(Vec<u8>, &str), ParseErrorKind> {
    let mut out = Vec::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, s.get(i + 1..).unwrap_or_default())),
            '\\' => {
                let Some((_, e)) = chars.next() else {
                    return Err(ParseErrorKind::UnterminatedString);
                };
                match e {
                    '\\' => out.push(b'\\'),
                    '"' => out.push(b'"'),
                    'n' => out.push(b'\n'),
                    'r' => out.push(b'\r'),
                    't' => out.push(b'\t'),
                    '0' => out.push(0),
                    'x' => {
                        let hi = chars.next().map(|(_, c)| c);
                        let lo = chars.next().map(|(_, c)| c);
                        let hex: String = [hi, lo].into_iter().flatten().collect();
                        let b = hex_byte(&hex)
                            .ok_or_else(|| ParseErrorKind::BadEscape(format!("\\x{hex}")))?;
                        out.push(b);
                    }
                    other => return Err(ParseErrorKind::BadEscape(format!("\\{other}"))),
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        if out.len() > MAX_STEP_BYTES {
            return Err(ParseErrorKind::StepTooLong);
        }
    }
    Err(ParseErrorKind::UnterminatedString)
}

/// An optional `*N` right after a string.
fn repeat(s: &str) -> Result<(usize, &str), ParseErrorKind> {
    let Some(after) = s.strip_prefix('*') else {
        return Ok((1, s));
    };
    let end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let digits = after.get(..end).unwrap_or_default();
    let n: usize = digits
        .parse()
        .ok()
        .filter(|n| (1..=MAX_STEP_BYTES).contains(n))
        .ok_or_else(|| ParseErrorKind::BadRepeat(format!("*{digits}")))?;
    Ok((n, after.get(end..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Trace, ParseError> {
        parse("socks5/t", Protocol::Socks5, text)
    }

    #[test]
    fn tokens() {
        assert_eq!(
            tokenize(r#" 05 "a\x01"*2 {echo.port} ??*3 !00 <addr:bind> | close => skip "x" # c"#)
                .unwrap(),
            vec![
                Tok::Bytes(vec![5]),
                Tok::Bytes(b"a\x01a\x01".to_vec()),
                Tok::Value("echo.port".into()),
                Tok::Any(3),
                Tok::Not(0),
                Tok::Capture(CaptureKind::Addr, Some("bind".into())),
                Tok::Pipe,
                Tok::Word("close".into()),
                Tok::Arrow,
                Tok::Word("skip".into()),
                Tok::Bytes(b"x".to_vec()),
            ]
        );
        assert_eq!(tokenize("61*3").unwrap(), vec![Tok::Bytes(b"aaa".to_vec())]);
        assert_eq!(
            tokenize("\"#|\"").unwrap(),
            vec![Tok::Bytes(b"#|".to_vec())]
        );
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
