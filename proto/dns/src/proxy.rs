//! The DNS proxy (3proxy's `dnspr` service) as pure functions: a client's datagram in, a
//! decision out ([`plan`]), and the bytes of the reply once the decision is carried out
//! ([`answer`], [`error_reply`], [`forward_ok`]).
//!
//! What 3proxy's `dnspr` does, and this module decides:
//!
//! - UDP only. A query is at most [`MAX_QUERY`] bytes and asks exactly one question
//!   ([`parse_query`]); anything else is logged (814, 816, 817) and dropped, or answered
//!   FORMERR / NOTIMP by [`error_reply`] when its header can be read.
//! - A and AAAA questions of class IN are answered from the 3proxy resolver and its cache
//!   ([`Plan::Resolve`], then [`answer`] with the resolver's result and TTLs); a name that
//!   does not resolve is answered NXDOMAIN and logged 888.
//! - `-F IP` answers every A question with an IPv4 `IP`, every AAAA one with an IPv6 `IP`,
//!   at once, with a TTL of [`FAKE_TTL`] ([`Plan::Answer`]).
//! - Every other question (MX, TXT, PTR, ANY, class CH, ...) is relayed unchanged to the
//!   first `nserver` only, and its answer back to the client ([`Plan::Forward`], checked
//!   with [`forward_ok`]). `-s` ("simple") relays everything, A and AAAA included.
//!
//! What it is not: it does no I/O and keeps no state (the resolver's cache is the
//! [`Resolver`](crate::Resolver)'s), it reads no clock, and it does not serve DNS over TCP
//! (neither does 3proxy). The driver owns the sockets and logs the codes it meets itself:
//! 813 (receive from the client failed), 818-822 (socket, bind, send or receive towards
//! the server or back to the client failed), 830-833 (DNS over TCP to a `/tcp` server: the
//! connect failed, or the answer's length prefix is wrong or too large).
//!
//! # Limits
//!
//! - Queries: at least [`HEADER_LEN`] and at most [`MAX_QUERY`] bytes (3proxy's bound);
//!   names of at most [`MAX_NAME`](crate::MAX_NAME) bytes in wire form (RFC 1035 section
//!   2.3.4). Sections after the question (EDNS OPT records, for instance) are not read.
//! - Our own answers: at most [`MAX_ANSWER`] bytes (RFC 1035 section 4.2.1); answers of
//!   the proxy carry no EDNS OPT record (RFC 6891 section 7 allows a responder without
//!   EDNS).
//! - Relayed answers: at most [`MAX_FORWARDED`] bytes, the most a DNS message can be.
//!
//! # Differences from 3proxy
//!
//! - A PTR question for the proxy's own IPv4 address is relayed like any PTR (3proxy
//!   answers it with the name `3proxy` itself).
//! - An A/AAAA name the resolver cannot resolve is answered NXDOMAIN at once; 3proxy then
//!   relays the query to the first `nserver` and answers NXDOMAIN only if that answer has
//!   no records. A relayed answer is relayed as it is, even with no records (3proxy turns
//!   it into NXDOMAIN).
//! - Our answers say RA (recursion available) and copy RD from the query; 3proxy sets AA
//!   and RD whatever the query said. We are not authoritative for anything.
//!
//! # Example
//!
//! ```
//! use triproxy_dns::proxy::{answer, parse_query, plan, Plan, ProxyConfig};
//! use triproxy_dns::{Answer, Family};
//!
//! // A query for "Example.org" A, ID 0x1234, RD set, as a stub resolver sends it.
//! let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
//! query.extend_from_slice(b"\x07Example\x03org\x00\x00\x01\x00\x01");
//!
//! let q = parse_query(&query).unwrap();
//! assert_eq!((q.id(), q.name(), q.qtype()), (0x1234, "example.org", 1));
//! let Plan::Resolve { name, family } = plan(&q, &ProxyConfig::default()) else { panic!() };
//! assert_eq!((name.as_str(), family), ("example.org", Family::V4));
//!
//! // The driver resolved the name (Resolver::resolve, Family::V4): 300 s left in the cache.
//! let found = Ok(vec![Answer { addr: "93.184.215.14".parse().unwrap(), ttl: 300 }]);
//! let (reply, code) = answer(&q, &found);
//! assert_eq!(code, 0);
//! assert_eq!(&reply[..4], &[0x12, 0x34, 0x81, 0x80]); // same ID; QR, RD; RA, NOERROR
//! assert_eq!(&reply[6..8], &[0, 1]); // one answer
//! assert_eq!(&reply[reply.len() - 4..], &[93, 184, 215, 14]);
//! ```

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Header, Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, RData, Record};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use crate::config::Family;
use crate::resolver::{Answer, ResolveError};

/// The DNS header: 12 bytes (RFC 1035 section 4.1.1). A shorter datagram is dropped.
pub const HEADER_LEN: usize = 12;
/// Largest query accepted: 1000 bytes, 3proxy's bound (a longer one is logged 814).
pub const MAX_QUERY: usize = 1000;
/// Largest answer the proxy builds itself: 512 bytes, what any UDP client accepts without
/// EDNS (RFC 1035 section 4.2.1).
pub const MAX_ANSWER: usize = 512;
/// Largest relayed answer: 65535 bytes, the most a DNS message can be (the TCP length
/// prefix, RFC 1035 section 4.2.2; a UDP payload is smaller still).
pub const MAX_FORWARDED: usize = 65535;
/// TTL of `-F` answers, in seconds (3proxy's).
pub const FAKE_TTL: u32 = 3600;
/// 3proxy's log code for an A/AAAA question answered NXDOMAIN or SERVFAIL.
pub const NOT_RESOLVED: u16 = 888;

/// Record type numbers (RFC 1035 section 3.2.2, RFC 3596 section 2.1).
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
/// Class IN (RFC 1035 section 3.2.4).
const CLASS_IN: u16 = 1;

/// The `dnspr` service options that change what the proxy does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProxyConfig {
    /// `-s`: "simple" mode, no resolver and no cache: every question is relayed to the
    /// first `nserver` (except those `-F` answers, as in 3proxy).
    pub simple: bool,
    /// `-F` with an IPv4 address: every A question (class IN) is answered with it.
    pub fake_v4: Option<Ipv4Addr>,
    /// `-F` with an IPv6 address: every AAAA question (class IN) is answered with it.
    pub fake_v6: Option<Ipv6Addr>,
}

/// A client's query: its ID, flags and its one question.
///
/// The question is kept as it came (the name's case too, since some clients check that
/// the answer repeats it exactly); [`Query::name`] gives it in lower case for lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    id: u16,
    recursion_desired: bool,
    checking_disabled: bool,
    question: Question,
    name: String,
}

impl Query {
    /// The query's ID; every reply carries it back.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The question's name in lower case, without the final dot (`"."` for the root).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The question's record type number (1 A, 28 AAAA, 15 MX, 255 ANY, ...).
    pub fn qtype(&self) -> u16 {
        self.question.query_type().into()
    }

    /// The question's class number (1 IN, 3 CH, 255 ANY, ...).
    pub fn qclass(&self) -> u16 {
        self.question.query_class().into()
    }

    /// RD: the client asked for recursion. Replies copy it.
    pub fn recursion_desired(&self) -> bool {
        self.recursion_desired
    }

    /// 3proxy's `%T` text for a `dnspr` log line: the type in 4 hex digits, the name, and
    /// the address answered (for A and AAAA), as in `0001/example.org/192.0.2.1`.
    pub fn log_text(&self, answered: Option<IpAddr>) -> String {
        let mut text = format!("{:04x}/{}/", self.qtype(), self.name);
        if let Some(addr) = answered {
            text.push_str(&addr.to_string());
        }
        text
    }
}

/// Why a datagram is not a query the proxy handles. Each variant has 3proxy's log code
/// ([`QueryError::log_code`]); [`error_reply`] says which ones get a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueryError {
    /// Fewer than [`HEADER_LEN`] bytes (814).
    TooShort {
        /// The datagram's size.
        len: usize,
    },
    /// More than [`MAX_QUERY`] bytes (814).
    TooLong {
        /// The datagram's size.
        len: usize,
    },
    /// QR is set: a response, not a query (816).
    NotAQuery,
    /// The opcode is not QUERY (816).
    Opcode {
        /// The opcode (4 bits).
        opcode: u8,
    },
    /// QDCOUNT is not 1 (816).
    QuestionCount {
        /// The QDCOUNT field.
        count: u16,
    },
    /// The question is cut short, or its name does not decode (a label longer than 63
    /// bytes, a name longer than 255, a bad compression pointer) (817).
    BadName,
    /// The name decodes but a label holds a byte other than an ASCII letter, digit, `-`
    /// or `_` (817).
    NotHostName,
}

impl QueryError {
    /// 3proxy's log code: 814 bad size, 816 not a one-question query, 817 bad name.
    pub fn log_code(self) -> u16 {
        match self {
            Self::TooShort { .. } | Self::TooLong { .. } => 814,
            Self::NotAQuery | Self::Opcode { .. } | Self::QuestionCount { .. } => 816,
            Self::BadName | Self::NotHostName => 817,
        }
    }

    /// A readable reason, for logs.
    pub fn reason(self) -> &'static str {
        match self {
            Self::TooShort { .. } => "datagram shorter than a DNS header",
            Self::TooLong { .. } => "query longer than 1000 bytes",
            Self::NotAQuery => "not a query (QR set)",
            Self::Opcode { .. } => "opcode is not QUERY",
            Self::QuestionCount { .. } => "not exactly one question",
            Self::BadName => "question cut short or name malformed",
            Self::NotHostName => "name is not a host name",
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len } | Self::TooLong { len } => {
                write!(f, "{} ({len} bytes)", self.reason())
            }
            Self::Opcode { opcode } => write!(f, "{} ({opcode})", self.reason()),
            Self::QuestionCount { count } => write!(f, "{} ({count})", self.reason()),
            Self::NotAQuery | Self::BadName | Self::NotHostName => f.write_str(self.reason()),
        }
    }
}

impl std::error::Error for QueryError {}

/// What to do with a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Send these bytes back to the client (a `-F` answer); log code 0.
    Answer(Vec<u8>),
    /// Resolve `name` for `family` with the [`Resolver`](crate::Resolver) (its cache
    /// included), then send [`answer`]`(query, result)` back. `family` is
    /// [`Family::V4`] for A and [`Family::V6`] for AAAA, never both.
    Resolve {
        /// The name, lower case, without the final dot.
        name: String,
        /// The family the question asks for.
        family: Family,
    },
    /// Relay the client's datagram unchanged to the first `nserver` (never another one),
    /// from a fresh socket, and relay the answer back if [`forward_ok`] accepts it. With
    /// no `nserver` configured, answer `answer(query, &Err(ResolveError::NotFound))`
    /// (NXDOMAIN, 888), as 3proxy does.
    Forward,
}

/// Reads a client's datagram (RFC 1035 section 4.1): the header, and the one question.
///
/// Checks, in order: the size (at least [`HEADER_LEN`], at most [`MAX_QUERY`] bytes:
/// 814), a query (QR clear, opcode QUERY) with QDCOUNT 1 (816), a question that decodes
/// whole with a host name: labels of ASCII letters, digits, `-` and `_`, at most 255
/// bytes in wire form (817). The root name is accepted (`. NS` is relayed). What follows
/// the question is not read.
pub fn parse_query(datagram: &[u8]) -> Result<Query, QueryError> {
    let len = datagram.len();
    if len < HEADER_LEN {
        return Err(QueryError::TooShort { len });
    }
    if len > MAX_QUERY {
        return Err(QueryError::TooLong { len });
    }
    let mut decoder = BinDecoder::new(datagram);
    let header = Header::read(&mut decoder).map_err(|_| QueryError::TooShort { len })?;
    if header.message_type() != MessageType::Query {
        return Err(QueryError::NotAQuery);
    }
    if header.op_code() != OpCode::Query {
        return Err(QueryError::Opcode {
            opcode: header.op_code().into(),
        });
    }
    if header.query_count() != 1 {
        return Err(QueryError::QuestionCount {
            count: header.query_count(),
        });
    }
    let question = Question::read(&mut decoder).map_err(|_| QueryError::BadName)?;
    let mut name = String::new();
    for label in question.name().iter() {
        if label.is_empty()
            || !label
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(QueryError::NotHostName);
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.extend(label.iter().map(|&b| char::from(b.to_ascii_lowercase())));
    }
    if name.is_empty() {
        name.push('.');
    }
    Ok(Query {
        id: header.id(),
        recursion_desired: header.recursion_desired(),
        checking_disabled: header.checking_disabled(),
        question,
        name,
    })
}

/// Decides what to do with `query` under `config`, in 3proxy's order: a `-F` address
/// answers A (IPv4) and AAAA (IPv6) questions of class IN at once, even in simple mode;
/// then simple mode relays everything; then A and AAAA questions of class IN are resolved
/// (except for the root name, which is no host: relayed); everything else is relayed.
pub fn plan(query: &Query, config: &ProxyConfig) -> Plan {
    if query.qclass() != CLASS_IN {
        return Plan::Forward;
    }
    let family = match (query.qtype(), config.fake_v4, config.fake_v6) {
        (TYPE_A, Some(ip), _) => {
            let fake = [Answer {
                addr: IpAddr::V4(ip),
                ttl: FAKE_TTL,
            }];
            return Plan::Answer(build_answer(query, &fake).0);
        }
        (TYPE_AAAA, _, Some(ip)) => {
            let fake = [Answer {
                addr: IpAddr::V6(ip),
                ttl: FAKE_TTL,
            }];
            return Plan::Answer(build_answer(query, &fake).0);
        }
        (TYPE_A, ..) => Family::V4,
        (TYPE_AAAA, ..) => Family::V6,
        _ => return Plan::Forward,
    };
    if config.simple || query.question.name().is_root() {
        return Plan::Forward;
    }
    Plan::Resolve {
        name: query.name.clone(),
        family,
    }
}

/// The reply to `query` once the resolver gave `result`, and the code to log.
///
/// - Addresses of the question's family (IPv4 for A, IPv6 for AAAA; others are left out)
///   become answer records with their TTLs, in the order given: NOERROR, code 0. The
///   reply repeats the ID and the question, sets QR and RA and copies RD (and CD).
/// - No address of that family, or [`ResolveError::NotFound`]: NXDOMAIN (RCODE 3), code
///   [`NOT_RESOLVED`], as 3proxy answers every unresolved name. (NODATA is not told apart:
///   the resolver reports both as `NotFound`.)
/// - Any other error (timeout, server failure, too many lookups, no `nserver`, ...):
///   SERVFAIL (RCODE 2), also code [`NOT_RESOLVED`]. 3proxy answers NXDOMAIN here too, but
///   a negative answer is cached by the client's own resolver (RFC 2308) and would hide
///   the name after a passing failure; SERVFAIL tells the client to try again. The log
///   code stays 888 so that 3proxy log parsers see the same failure.
///
/// The reply stays within [`MAX_ANSWER`] bytes: records that do not fit are left out (at
/// least 15 A or 8 AAAA records always fit). TC is not set: a subset of the addresses is a
/// usable answer, and the proxy serves no TCP the client could retry over.
pub fn answer(query: &Query, result: &Result<Vec<Answer>, ResolveError>) -> (Vec<u8>, u16) {
    let want_v6 = match query.qtype() {
        TYPE_A if query.qclass() == CLASS_IN => Some(false),
        TYPE_AAAA if query.qclass() == CLASS_IN => Some(true),
        _ => None,
    };
    match result {
        Ok(list) => {
            let kept: Vec<Answer> = list
                .iter()
                .filter(|a| Some(a.addr.is_ipv6()) == want_v6)
                .copied()
                .collect();
            if kept.is_empty() {
                (build_error(query, ResponseCode::NXDomain), NOT_RESOLVED)
            } else {
                build_answer(query, &kept)
            }
        }
        Err(ResolveError::NotFound) => (build_error(query, ResponseCode::NXDomain), NOT_RESOLVED),
        Err(_) => (build_error(query, ResponseCode::ServFail), NOT_RESOLVED),
    }
}

/// The reply to a datagram [`parse_query`] refused with `error`, if it gets one.
///
/// The rule: a datagram shorter than the header ([`QueryError::TooShort`]) has no ID to
/// answer to, and a response ([`QueryError::NotAQuery`]) is never answered (two proxies
/// would answer each other's errors forever): both are dropped (`None`). Every other one
/// gets a header-only reply (RFC 1035 section 4.1.1) with its ID, opcode and RD, QR and
/// RA set, no question and no records: NOTIMP (RCODE 4) for an opcode other than QUERY,
/// FORMERR (RCODE 1) otherwise. It is 12 bytes, smaller than the datagram, so the proxy
/// cannot be used to amplify traffic.
pub fn error_reply(datagram: &[u8], error: &QueryError) -> Option<Vec<u8>> {
    let rcode = match error {
        QueryError::TooShort { .. } | QueryError::NotAQuery => return None,
        QueryError::Opcode { .. } => ResponseCode::NotImp,
        _ => ResponseCode::FormErr,
    };
    let header = datagram.get(..HEADER_LEN)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    Some(header_only(
        u16::from_be_bytes([header[0], header[1]]),
        header[2] & 0x79,
        rcode,
    ))
}

/// Whether `answer`, from the first `nserver`, answers `query` and may be relayed to the
/// client: at least [`HEADER_LEN`] and at most [`MAX_FORWARDED`] bytes, a response (QR)
/// to a standard query with the query's ID, one question, and the same question (name
/// compared case-insensitively, type, class). The rest of the answer is not read: it is
/// relayed as it is.
///
/// This keeps a stranger who cannot see the query from answering it; the driver must also
/// check that the datagram comes from the address and port the query went to, and send
/// each relayed query from a fresh socket (a random source port), as the client's ID is
/// all the randomness the query has.
pub fn forward_ok(query: &Query, answer: &[u8]) -> bool {
    if answer.len() < HEADER_LEN || answer.len() > MAX_FORWARDED {
        return false;
    }
    let mut decoder = BinDecoder::new(answer);
    let Ok(header) = Header::read(&mut decoder) else {
        return false;
    };
    if header.message_type() != MessageType::Response
        || header.op_code() != OpCode::Query
        || header.id() != query.id
        || header.query_count() != 1
    {
        return false;
    }
    Question::read(&mut decoder).is_ok_and(|q| {
        q.query_type() == query.question.query_type()
            && q.query_class() == query.question.query_class()
            && q.name().to_lowercase() == query.question.name().to_lowercase()
    })
}

/// A response to `query` with the flags every reply of the proxy has.
fn response(query: &Query, rcode: ResponseCode) -> Message {
    let mut msg = Message::new();
    msg.set_id(query.id)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(query.recursion_desired)
        .set_recursion_available(true)
        .set_checking_disabled(query.checking_disabled)
        .set_response_code(rcode)
        .add_query(query.question.clone());
    msg
}

/// NOERROR with `answers` (as many as fit in [`MAX_ANSWER`] bytes); code 0.
fn build_answer(query: &Query, answers: &[Answer]) -> (Vec<u8>, u16) {
    let name = query.question.name().clone();
    let records: Vec<Record> = answers
        .iter()
        .map(|a| {
            let rdata = match a.addr {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            };
            let mut r = Record::from_rdata(name.clone(), a.ttl, rdata);
            r.set_dns_class(DNSClass::IN);
            r
        })
        .collect();
    // Each record costs 12 bytes (name by pointer, type, class, TTL, length) plus its
    // address; start from what fits after the header and question, then make sure.
    let base = 12 + query.question.name().len() + 1 + 4;
    let per = if query.qtype() == TYPE_AAAA { 28 } else { 16 };
    let mut n = records.len().min(MAX_ANSWER.saturating_sub(base) / per);
    loop {
        let mut msg = response(query, ResponseCode::NoError);
        msg.add_answers(records.iter().take(n).cloned());
        match msg.to_vec() {
            Ok(bytes) if bytes.len() <= MAX_ANSWER => return (bytes, 0),
            Ok(_) if n > 0 => n -= 1,
            _ => {
                return (
                    header_only(query.id, rd_bits(query), ResponseCode::ServFail),
                    NOT_RESOLVED,
                )
            }
        }
    }
}

/// An answer with no records and `rcode`, the question repeated.
fn build_error(query: &Query, rcode: ResponseCode) -> Vec<u8> {
    match response(query, rcode).to_vec() {
        Ok(bytes) if bytes.len() <= MAX_ANSWER => bytes,
        _ => header_only(query.id, rd_bits(query), rcode),
    }
}

fn rd_bits(query: &Query) -> u8 {
    u8::from(query.recursion_desired)
}

/// A 12-byte response: `id`, QR set, `flags` (opcode and RD bits of the third byte) kept,
/// RA set, `rcode`, every count 0.
fn header_only(id: u16, flags: u8, rcode: ResponseCode) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    let mut bytes = vec![0; HEADER_LEN];
    bytes[0] = hi;
    bytes[1] = lo;
    bytes[2] = 0x80 | (flags & 0x79);
    bytes[3] = 0x80 | rcode.low();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_only_layout() {
        let b = header_only(0xabcd, 0x29, ResponseCode::NotImp);
        assert_eq!(b, [0xab, 0xcd, 0xa9, 0x84, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
