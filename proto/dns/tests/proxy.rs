//! The `dnspr` proxy decisions against real wire bytes: queries built with hickory-proto
//! (and a few written by hand), replies parsed back with it.

// Tests may unwrap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::rdata::{A, MX};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use proptest::prelude::*;
use triproxy_dns::proxy::{
    answer, error_reply, forward_ok, parse_query, plan, Plan, Query, QueryError, FAKE_TTL,
    MAX_ANSWER, MAX_QUERY, NOT_RESOLVED,
};
use triproxy_dns::{Answer, Family, ProxyConfig, ResolveError};

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A query as a stub resolver sends it: RD set, one question of class IN.
fn query_bytes(id: u16, qname: &str, rtype: RecordType) -> Vec<u8> {
    query_with(id, qname, rtype, DNSClass::IN, |_| {})
}

fn query_with(
    id: u16,
    qname: &str,
    rtype: RecordType,
    class: DNSClass,
    edit: impl FnOnce(&mut Message),
) -> Vec<u8> {
    let mut q = Question::query(name(qname), rtype);
    q.set_query_class(class);
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(q);
    edit(&mut m);
    m.to_vec().unwrap()
}

fn parsed(id: u16, qname: &str, rtype: RecordType) -> Query {
    parse_query(&query_bytes(id, qname, rtype)).unwrap()
}

fn ans(addr: &str, ttl: u32) -> Answer {
    Answer {
        addr: addr.parse().unwrap(),
        ttl,
    }
}

/// The addresses and TTLs of a reply's answer section, with its name (as sent).
fn records(m: &Message) -> Vec<(String, IpAddr, u32)> {
    m.answers()
        .iter()
        .map(|r| {
            let addr = match r.data() {
                RData::A(a) => IpAddr::V4(a.0),
                RData::AAAA(a) => IpAddr::V6(a.0),
                other => panic!("unexpected record {other:?}"),
            };
            assert_eq!(r.dns_class(), DNSClass::IN);
            (r.name().to_ascii(), addr, r.ttl())
        })
        .collect()
}

/// Checks what every reply of the proxy to `q` has: same ID and question, QR, RA, RD
/// copied, opcode QUERY, not truncated, within 512 bytes.
fn check_reply(q: &Query, bytes: &[u8], asked: &[u8]) -> Message {
    assert!(bytes.len() <= MAX_ANSWER, "{} bytes", bytes.len());
    let m = Message::from_vec(bytes).unwrap();
    let original = Message::from_vec(asked).unwrap();
    assert_eq!(m.id(), q.id());
    assert_eq!(m.message_type(), MessageType::Response);
    assert_eq!(m.op_code(), OpCode::Query);
    assert!(m.recursion_available());
    assert_eq!(m.recursion_desired(), original.recursion_desired());
    assert!(!m.truncated());
    assert_eq!(m.queries(), original.queries());
    // The name repeated exactly, case included.
    assert_eq!(
        m.queries()[0].name().to_ascii(),
        original.queries()[0].name().to_ascii()
    );
    m
}

#[test]
fn a_answered_with_the_cache_ttls() {
    let bytes = query_bytes(0x1234, "WWW.Example.org.", RecordType::A);
    let q = parse_query(&bytes).unwrap();
    assert_eq!(q.name(), "www.example.org");
    assert_eq!((q.qtype(), q.qclass(), q.id()), (1, 1, 0x1234));
    assert!(q.recursion_desired());
    assert_eq!(
        plan(&q, &ProxyConfig::default()),
        Plan::Resolve {
            name: "www.example.org".into(),
            family: Family::V4
        }
    );
    // An IPv6 address in the result (a resolver asked for both) is left out.
    let result = Ok(vec![
        ans("192.0.2.1", 300),
        ans("2001:db8::1", 300),
        ans("192.0.2.2", 120),
    ]);
    let (reply, code) = answer(&q, &result);
    assert_eq!(code, 0);
    let m = check_reply(&q, &reply, &bytes);
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert_eq!(
        records(&m),
        vec![
            ("WWW.Example.org.".into(), "192.0.2.1".parse().unwrap(), 300),
            ("WWW.Example.org.".into(), "192.0.2.2".parse().unwrap(), 120),
        ]
    );
    assert_eq!(
        q.log_text(Some(records(&m)[0].1)),
        "0001/www.example.org/192.0.2.1"
    );
}

#[test]
fn aaaa_answered_with_the_cache_ttls() {
    let bytes = query_bytes(7, "v6.example.", RecordType::AAAA);
    let q = parse_query(&bytes).unwrap();
    assert_eq!(
        plan(&q, &ProxyConfig::default()),
        Plan::Resolve {
            name: "v6.example".into(),
            family: Family::V6
        }
    );
    let result = Ok(vec![ans("2001:db8::5", 59), ans("192.0.2.9", 59)]);
    let (reply, code) = answer(&q, &result);
    assert_eq!(code, 0);
    let m = check_reply(&q, &reply, &bytes);
    assert_eq!(
        records(&m),
        vec![("v6.example.".into(), "2001:db8::5".parse().unwrap(), 59)]
    );
    assert_eq!(q.log_text(None), "001c/v6.example/");
}

#[test]
fn hand_written_query_and_reply_bytes() {
    // ID 0xbeef, RD, "a.b" AAAA IN, with an EDNS OPT record in the additional section
    // (which is not read and not answered).
    let query: &[u8] = &[
        0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, //
        1, b'a', 1, b'B', 0, 0, 28, 0, 1, //
        0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0,
    ];
    let q = parse_query(query).unwrap();
    assert_eq!((q.name(), q.qtype()), ("a.b", 28));
    let (reply, code) = answer(&q, &Ok(vec![ans("2001:db8::2", 0x0102_0304)]));
    assert_eq!(code, 0);
    let expected: &[u8] = &[
        0xbe, 0xef, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, //
        1, b'a', 1, b'B', 0, 0, 28, 0, 1, //
        0xc0, 12, 0, 28, 0, 1, 1, 2, 3, 4, 0, 16, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    ];
    assert_eq!(reply, expected);
    let (nx, code) = answer(&q, &Err(ResolveError::NotFound));
    assert_eq!(code, NOT_RESOLVED);
    assert_eq!(
        nx,
        [0xbe, 0xef, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 1, b'B', 0, 0, 28, 0, 1]
    );
}

#[test]
fn not_found_is_nxdomain_and_888() {
    let bytes = query_bytes(99, "nowhere.test.", RecordType::A);
    let q = parse_query(&bytes).unwrap();
    for result in [
        Err(ResolveError::NotFound),
        Ok(vec![]),
        Ok(vec![ans("::1", 5)]),
    ] {
        let (reply, code) = answer(&q, &result);
        assert_eq!(code, NOT_RESOLVED);
        let m = check_reply(&q, &reply, &bytes);
        assert_eq!(m.response_code(), ResponseCode::NXDomain);
        assert!(m.answers().is_empty());
    }
}

#[test]
fn other_failures_are_servfail_and_888() {
    let bytes = query_bytes(100, "flaky.test.", RecordType::AAAA);
    let q = parse_query(&bytes).unwrap();
    for e in [
        ResolveError::Timeout,
        ResolveError::ServerFailure,
        ResolveError::TooManyPending,
        ResolveError::NoServers,
        ResolveError::InvalidName,
    ] {
        let (reply, code) = answer(&q, &Err(e));
        assert_eq!(code, NOT_RESOLVED);
        let m = check_reply(&q, &reply, &bytes);
        assert_eq!(m.response_code(), ResponseCode::ServFail, "{e:?}");
        assert!(m.answers().is_empty());
    }
}

#[test]
fn rd_is_copied() {
    let bytes = query_with(5, "x.test.", RecordType::A, DNSClass::IN, |m| {
        m.set_recursion_desired(false);
    });
    let q = parse_query(&bytes).unwrap();
    assert!(!q.recursion_desired());
    let (reply, _) = answer(&q, &Ok(vec![ans("192.0.2.1", 1)]));
    let m = check_reply(&q, &reply, &bytes);
    assert!(!m.recursion_desired());
}

#[test]
fn long_answers_are_cut_to_512_bytes_without_tc() {
    // The longest name: 4 labels of 63 bytes minus one byte (255 in wire form).
    let label = "a".repeat(63);
    let long = format!("{label}.{label}.{label}.{}.", "b".repeat(61));
    for (rtype, addr, fits) in [
        (RecordType::A, "10.0.0.1", 15),
        (RecordType::AAAA, "2001:db8::1", 8),
    ] {
        let bytes = query_bytes(1, &long, rtype);
        let q = parse_query(&bytes).unwrap();
        let many: Vec<Answer> = (0..100).map(|_| ans(addr, 60)).collect();
        let (reply, code) = answer(&q, &Ok(many));
        assert_eq!(code, 0);
        let m = check_reply(&q, &reply, &bytes);
        assert_eq!(m.answers().len(), fits, "{rtype}");
    }
    // A short name: 100 A records do not fit either, 30 do.
    let bytes = query_bytes(1, "s.test.", RecordType::A);
    let q = parse_query(&bytes).unwrap();
    let many: Vec<Answer> = (0..100).map(|_| ans("10.0.0.1", 60)).collect();
    let (reply, _) = answer(&q, &Ok(many));
    let m = check_reply(&q, &reply, &bytes);
    assert_eq!(m.answers().len(), (512 - 12 - 12) / 16);
}

#[test]
fn fake_answers() {
    let config = ProxyConfig {
        fake_v4: Some(Ipv4Addr::new(192, 0, 2, 77)),
        fake_v6: Some("2001:db8::77".parse().unwrap()),
        ..ProxyConfig::default()
    };
    for (rtype, expected) in [
        (RecordType::A, "192.0.2.77"),
        (RecordType::AAAA, "2001:db8::77"),
    ] {
        let bytes = query_bytes(0x4242, "Anything.Example.", rtype);
        let q = parse_query(&bytes).unwrap();
        for config in [
            config,
            ProxyConfig {
                simple: true,
                ..config
            },
        ] {
            let Plan::Answer(reply) = plan(&q, &config) else {
                panic!("{rtype}: no fake answer");
            };
            let m = check_reply(&q, &reply, &bytes);
            assert_eq!(m.response_code(), ResponseCode::NoError);
            assert_eq!(
                records(&m),
                vec![(
                    "Anything.Example.".into(),
                    expected.parse().unwrap(),
                    FAKE_TTL
                )]
            );
        }
    }
    // Only -F with an IPv4 address: AAAA still goes to the resolver, MX is relayed.
    let only_v4 = ProxyConfig {
        fake_v4: Some(Ipv4Addr::LOCALHOST),
        ..ProxyConfig::default()
    };
    let q = parsed(1, "x.test.", RecordType::AAAA);
    assert!(matches!(
        plan(&q, &only_v4),
        Plan::Resolve {
            family: Family::V6,
            ..
        }
    ));
    let q = parsed(1, "x.test.", RecordType::MX);
    assert_eq!(plan(&q, &only_v4), Plan::Forward);
    // Only IPv6: A goes to the resolver.
    let only_v6 = ProxyConfig {
        fake_v6: Some(Ipv6Addr::LOCALHOST),
        ..ProxyConfig::default()
    };
    let q = parsed(1, "x.test.", RecordType::A);
    assert!(matches!(
        plan(&q, &only_v6),
        Plan::Resolve {
            family: Family::V4,
            ..
        }
    ));
}

#[test]
fn simple_mode_forwards_everything() {
    let simple = ProxyConfig {
        simple: true,
        ..ProxyConfig::default()
    };
    for rtype in [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::PTR,
        RecordType::ANY,
    ] {
        let q = parsed(3, "host.example.", rtype);
        assert_eq!(plan(&q, &simple), Plan::Forward, "{rtype}");
    }
}

#[test]
fn other_types_and_classes_are_forwarded() {
    let config = ProxyConfig::default();
    for (qname, rtype) in [
        ("example.org.", RecordType::MX),
        ("example.org.", RecordType::TXT),
        ("1.2.0.192.in-addr.arpa.", RecordType::PTR),
        ("example.org.", RecordType::ANY),
        ("_sip._udp.example.org.", RecordType::SRV),
        ("example.org.", RecordType::Unknown(65280)),
        // The root name is no host: even its A question is relayed.
        (".", RecordType::NS),
        (".", RecordType::A),
    ] {
        let q = parsed(3, qname, rtype);
        assert_eq!(plan(&q, &config), Plan::Forward, "{qname} {rtype}");
    }
    let root = parsed(3, ".", RecordType::NS);
    assert_eq!(root.name(), ".");
    // Class CH (version.bind TXT) and class ANY, even for A.
    for (rtype, class) in [
        (RecordType::TXT, DNSClass::CH),
        (RecordType::A, DNSClass::CH),
        (RecordType::A, DNSClass::ANY),
    ] {
        let q = parse_query(&query_with(4, "version.bind.", rtype, class, |_| {})).unwrap();
        assert_eq!(q.qclass(), u16::from(class));
        let fake = ProxyConfig {
            fake_v4: Some(Ipv4Addr::LOCALHOST),
            ..ProxyConfig::default()
        };
        assert_eq!(plan(&q, &config), Plan::Forward, "{rtype} {class}");
        assert_eq!(plan(&q, &fake), Plan::Forward, "{rtype} {class}");
    }
}

#[test]
fn every_query_error_and_its_code() {
    let good = query_bytes(0x0a0b, "ok.test.", RecordType::A);
    let with = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        edit(&mut b);
        b
    };
    let mut big = good.clone();
    big.resize(MAX_QUERY + 1, 0);
    let mut at_limit = good.clone();
    at_limit.resize(MAX_QUERY, 0); // trailing bytes after the question are not read
    assert!(parse_query(&at_limit).is_ok());
    let two = query_with(1, "a.test.", RecordType::A, DNSClass::IN, |m| {
        m.add_query(Question::query(name("b.test."), RecordType::A));
    });
    let mut bad_label = good[..12].to_vec();
    bad_label.extend_from_slice(&[3, b'a', b' ', b'b', 0, 0, 1, 0, 1]);
    let mut long_label = good[..12].to_vec();
    long_label.push(64);
    long_label.extend_from_slice(&[b'a'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut loop_pointer = good[..12].to_vec();
    loop_pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let cases: Vec<(Vec<u8>, QueryError, u16)> = vec![
        (good[..11].to_vec(), QueryError::TooShort { len: 11 }, 814),
        (vec![], QueryError::TooShort { len: 0 }, 814),
        (big, QueryError::TooLong { len: 1001 }, 814),
        (with(&|b| b[2] |= 0x80), QueryError::NotAQuery, 816),
        (
            with(&|b| b[2] |= 2 << 3),
            QueryError::Opcode { opcode: 2 },
            816,
        ),
        (two, QueryError::QuestionCount { count: 2 }, 816),
        // A header that promises a question it does not have.
        (good[..12].to_vec(), QueryError::BadName, 817),
        (
            with(&|b| b[5] = 0),
            QueryError::QuestionCount { count: 0 },
            816,
        ),
        (good[..good.len() - 1].to_vec(), QueryError::BadName, 817),
        (good[..16].to_vec(), QueryError::BadName, 817),
        (long_label, QueryError::BadName, 817),
        (loop_pointer, QueryError::BadName, 817),
        (bad_label, QueryError::NotHostName, 817),
    ];
    for (bytes, expected, code) in cases {
        assert_eq!(parse_query(&bytes), Err(expected), "{bytes:02x?}");
        assert_eq!(expected.log_code(), code, "{expected:?}");
        assert!(!expected.reason().is_empty());
        assert!(expected.to_string().starts_with(expected.reason()));
    }
    assert_eq!(
        QueryError::TooLong { len: 1001 }.to_string(),
        "query longer than 1000 bytes (1001 bytes)"
    );
}

#[test]
fn error_replies() {
    // A truncated header: dropped.
    let err = parse_query(&[0x12, 0x34, 1]).unwrap_err();
    assert_eq!(error_reply(&[0x12, 0x34, 1], &err), None);
    // Two questions: FORMERR with the same ID, no question.
    let two = query_with(0x5151, "a.test.", RecordType::A, DNSClass::IN, |m| {
        m.add_query(Question::query(name("b.test."), RecordType::AAAA));
    });
    let err = parse_query(&two).unwrap_err();
    let reply = error_reply(&two, &err).unwrap();
    assert_eq!(reply.len(), 12);
    let m = Message::from_vec(&reply).unwrap();
    assert_eq!(m.id(), 0x5151);
    assert_eq!(m.message_type(), MessageType::Response);
    assert_eq!(m.response_code(), ResponseCode::FormErr);
    assert!(m.recursion_desired());
    assert!(m.queries().is_empty() && m.answers().is_empty());
    // Oversized: FORMERR too, 12 bytes for 1001.
    let mut big = query_bytes(0x0102, "big.test.", RecordType::A);
    big.resize(MAX_QUERY + 1, 0);
    let err = parse_query(&big).unwrap_err();
    assert_eq!(err.log_code(), 814);
    let m = Message::from_vec(&error_reply(&big, &err).unwrap()).unwrap();
    assert_eq!((m.id(), m.response_code()), (0x0102, ResponseCode::FormErr));
    // A bad name: FORMERR.
    let mut bad = query_bytes(0x0203, "ok.test.", RecordType::A);
    bad.truncate(15);
    let err = parse_query(&bad).unwrap_err();
    let m = Message::from_vec(&error_reply(&bad, &err).unwrap()).unwrap();
    assert_eq!((m.id(), m.response_code()), (0x0203, ResponseCode::FormErr));
    // Another opcode (NOTIFY): NOTIMP, the opcode repeated.
    let notify = query_with(0x0304, "zone.test.", RecordType::SOA, DNSClass::IN, |m| {
        m.set_op_code(OpCode::Notify);
    });
    let err = parse_query(&notify).unwrap_err();
    assert_eq!(err, QueryError::Opcode { opcode: 4 });
    let m = Message::from_vec(&error_reply(&notify, &err).unwrap()).unwrap();
    assert_eq!(
        (m.id(), m.op_code(), m.response_code()),
        (0x0304, OpCode::Notify, ResponseCode::NotImp)
    );
    // A response is never answered.
    let mut resp = query_bytes(9, "r.test.", RecordType::A);
    resp[2] |= 0x80;
    let err = parse_query(&resp).unwrap_err();
    assert_eq!(error_reply(&resp, &err), None);
}

/// An upstream answer to `asked`, edited by `edit`.
fn upstream(asked: &[u8], edit: impl FnOnce(&mut Message)) -> Vec<u8> {
    let q = Message::from_vec(asked).unwrap();
    let mut m = Message::new();
    m.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true)
        .add_queries(q.queries().to_vec())
        .add_answer(Record::from_rdata(
            name("example.org."),
            300,
            RData::MX(MX::new(10, name("mail.example.org."))),
        ));
    edit(&mut m);
    m.to_vec().unwrap()
}

#[test]
fn forwarded_answers_are_checked() {
    let asked = query_bytes(0x7777, "Example.ORG.", RecordType::MX);
    let q = parse_query(&asked).unwrap();
    assert_eq!(plan(&q, &ProxyConfig::default()), Plan::Forward);
    assert!(forward_ok(&q, &upstream(&asked, |_| {})));
    // The name in another case (a 0x20 resolver upstream) is the same question.
    assert!(forward_ok(
        &q,
        &upstream(&asked, |m| {
            m.take_queries();
            m.add_query(Question::query(name("EXAMPLE.org."), RecordType::MX));
        })
    ));
    // NXDOMAIN with no records is still an answer to relay.
    assert!(forward_ok(
        &q,
        &upstream(&asked, |m| {
            m.take_answers();
            m.set_response_code(ResponseCode::NXDomain);
        })
    ));
    // Another ID.
    assert!(!forward_ok(
        &q,
        &upstream(&asked, |m| {
            m.set_id(0x7778);
        })
    ));
    // Another question: name, type, class.
    for other in [
        Question::query(name("example.net."), RecordType::MX),
        Question::query(name("example.org."), RecordType::TXT),
        {
            let mut x = Question::query(name("example.org."), RecordType::MX);
            x.set_query_class(DNSClass::CH);
            x
        },
    ] {
        let bytes = upstream(&asked, |m| {
            m.take_queries();
            m.add_query(other.clone());
        });
        assert!(!forward_ok(&q, &bytes), "{other}");
    }
    // No question, or two.
    assert!(!forward_ok(
        &q,
        &upstream(&asked, |m| {
            m.take_queries();
        })
    ));
    assert!(!forward_ok(
        &q,
        &upstream(&asked, |m| {
            m.add_query(Question::query(name("x.test."), RecordType::A));
        })
    ));
    // The query itself bounced back (QR clear).
    assert!(!forward_ok(&q, &asked));
    assert!(!forward_ok(
        &q,
        &upstream(&asked, |m| {
            m.set_message_type(MessageType::Query);
        })
    ));
    // Cut short, or too big.
    let ok = upstream(&asked, |_| {});
    assert!(!forward_ok(&q, &ok[..11]));
    assert!(!forward_ok(&q, &ok[..20]));
    let mut huge = ok.clone();
    huge.resize(65536, 0);
    assert!(!forward_ok(&q, &huge));
    huge.truncate(65535);
    assert!(
        forward_ok(&q, &huge),
        "65535 bytes is the bound, trailing bytes unread"
    );
}

#[test]
fn an_a_answer_forwarded_in_simple_mode() {
    let asked = query_bytes(0x0101, "host.test.", RecordType::A);
    let q = parse_query(&asked).unwrap();
    let simple = ProxyConfig {
        simple: true,
        ..ProxyConfig::default()
    };
    assert_eq!(plan(&q, &simple), Plan::Forward);
    let reply = upstream(&asked, |m| {
        m.take_answers();
        m.add_answer(Record::from_rdata(
            name("host.test."),
            30,
            RData::A(A::new(192, 0, 2, 30)),
        ));
    });
    assert!(forward_ok(&q, &reply));
}

fn arb_query() -> impl Strategy<Value = (Vec<u8>, bool)> {
    (
        any::<u16>(),
        proptest::collection::vec("[a-zA-Z0-9_-]{1,20}", 1..6),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(id, labels, v6, rd)| {
            let rtype = if v6 { RecordType::AAAA } else { RecordType::A };
            // Raw labels: hickory's text parser refuses some host names ("--x", IDNA rules).
            let qname = Name::from_labels(labels.iter().map(|l| l.as_bytes())).unwrap();
            let mut m = Message::new();
            m.set_id(id)
                .set_recursion_desired(rd)
                .add_query(Question::query(qname, rtype));
            let bytes = m.to_vec().unwrap();
            (bytes, v6)
        })
}

fn arb_result() -> impl Strategy<Value = Result<Vec<Answer>, ResolveError>> {
    let addr = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ];
    let list = proptest::collection::vec(
        (addr, any::<u32>()).prop_map(|(addr, ttl)| Answer { addr, ttl }),
        0..60,
    );
    prop_oneof![
        list.prop_map(Ok),
        Just(Err(ResolveError::NotFound)),
        Just(Err(ResolveError::Timeout)),
        Just(Err(ResolveError::ServerFailure)),
    ]
}

proptest! {
    #[test]
    fn parse_query_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        match parse_query(&bytes) {
            Ok(q) => {
                prop_assert!(bytes.len() >= 12 && bytes.len() <= MAX_QUERY);
                prop_assert_eq!(q.id(), u16::from_be_bytes([bytes[0], bytes[1]]));
                // Every decision is total too.
                let _ = plan(&q, &ProxyConfig::default());
                let (reply, _) = answer(&q, &Err(ResolveError::NotFound));
                prop_assert!(reply.len() <= MAX_ANSWER);
                prop_assert!(!forward_ok(&q, &bytes), "a query is not its own answer");
            }
            Err(e) => {
                prop_assert!([814, 816, 817].contains(&e.log_code()));
                if let Some(reply) = error_reply(&bytes, &e) {
                    prop_assert_eq!(reply.len(), 12);
                    prop_assert_eq!(&reply[..2], &bytes[..2]);
                }
            }
        }
    }

    #[test]
    fn answers_parse_back_with_the_query_id((bytes, v6) in arb_query(), result in arb_result()) {
        let q = parse_query(&bytes).unwrap();
        let (reply, code) = answer(&q, &result);
        prop_assert!(reply.len() <= MAX_ANSWER);
        let m = Message::from_vec(&reply).unwrap();
        prop_assert_eq!(m.id(), q.id());
        prop_assert_eq!(m.message_type(), MessageType::Response);
        let asked = Message::from_vec(&bytes).unwrap();
        prop_assert_eq!(m.queries(), asked.queries());
        let wanted: Vec<&Answer> = match &result {
            Ok(list) => list.iter().filter(|a| a.addr.is_ipv6() == v6).collect(),
            Err(_) => vec![],
        };
        prop_assert_eq!(code == 0, !wanted.is_empty());
        prop_assert!(m.answers().len() <= wanted.len());
        if !wanted.is_empty() {
            prop_assert!(!m.answers().is_empty());
        }
        // The records are the first ones given, in order.
        for (r, a) in m.answers().iter().zip(wanted) {
            let addr = match r.data() {
                RData::A(x) => IpAddr::V4(x.0),
                RData::AAAA(x) => IpAddr::V6(x.0),
                _ => unreachable!(),
            };
            prop_assert_eq!((addr, r.ttl()), (a.addr, a.ttl));
        }
    }
}
