//! The trace parser: header directives, steps and their bodies turned into a [`Trace`],
//! line by line, with the checks that give each [`ParseErrorKind`].
//!
//! It reads tokens from [`token`](super::token); the public entry is [`parse`](super::parse).

use super::token::{tokenize, CaptureKind, Tok};
use super::{
    Action, Alternative, Cause, ClientCommand, ClientSetup, EventExpect, Expect, Item, Level, Mode,
    ParseErrorKind, Pattern, Piece, Protocol, Requirement, Side, Step, Trace, HARNESS_VALUES,
    MAX_ALTERNATIVES, MAX_STEPS, MAX_STEP_BYTES, MAX_WAIT, PEER_VALUES,
};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use triproxy_wire::{DomainName, TargetAddr};

type Fail = (usize, ParseErrorKind);

pub(super) struct Parser {
    trace: Trace,
    seen_header: BTreeSet<&'static str>,
    modes_given: bool,
    captures: BTreeSet<String>,
    peer_connected: bool,
    in_description: bool,
}

impl Parser {
    pub(super) fn new(name: &str, protocol: Protocol) -> Self {
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

    pub(super) fn run(mut self, text: &str) -> Result<Trace, Fail> {
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
