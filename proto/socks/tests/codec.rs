//! Known-bytes vectors, malformed input and all-prefix checks for every SOCKS message.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::net::Ipv4Addr;
use triproxy_socks::error::{Error, Field};
use triproxy_socks::v4;
use triproxy_socks::v5::{
    self, encode_udp, parse_udp, AuthReply, Command, Credentials, Greeting, Method,
    MethodSelection, Reply, ReplyCode, Request, UdpHeader,
};
use triproxy_wire::{DomainName, Status, TargetAddr};

fn ip(s: &str) -> TargetAddr {
    TargetAddr::Ip(s.parse().unwrap())
}

fn domain(name: &[u8], port: u16) -> TargetAddr {
    TargetAddr::Domain(DomainName::new(name).unwrap(), port)
}

fn encoded(len: usize, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    assert_eq!(v.len(), len, "encoded_len disagrees with encode");
    v
}

fn complete<T>(r: Result<Status<T>, Error>) -> (T, usize) {
    r.unwrap().complete().expect("complete message")
}

const V6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

// ---------------------------------------------------------------- SOCKS4 / 4a

#[test]
fn v4_request_connect_vector() {
    let bytes = [4, 1, 0x1f, 0x90, 192, 0, 2, 7, b'b', b'o', b'b', 0];
    let (r, used) = complete(v4::Request::parse(&bytes));
    assert_eq!(used, 12);
    assert_eq!(r.command, v4::Command::Connect);
    assert_eq!(r.target(), ip("192.0.2.7:8080"));
    assert_eq!(r.user_id.as_slice(), b"bob");
    assert!(!r.is_v4a());
    assert_eq!(encoded(r.encoded_len(), |o| r.encode(o)), bytes);
}

#[test]
fn v4_request_bind_empty_user() {
    let bytes = [4, 2, 0, 21, 10, 0, 0, 1, 0];
    let (r, used) = complete(v4::Request::parse(&bytes));
    assert_eq!((r.command, used), (v4::Command::Bind, 9));
    assert!(r.user_id.is_empty());
    assert_eq!(encoded(r.encoded_len(), |o| r.encode(o)), bytes);
}

#[test]
fn v4a_request_vector() {
    let mut bytes = vec![4, 1, 0x01, 0xbb, 0, 0, 0, 42, b'u', 0];
    bytes.extend_from_slice(b"example.org\0");
    let (r, used) = complete(v4::Request::parse(&bytes));
    assert_eq!(used, bytes.len());
    assert!(r.is_v4a());
    assert_eq!(r.target(), domain(b"example.org", 443));
    // Encoding always uses the marker 0.0.0.1.
    let mut want = bytes.clone();
    want[7] = 1;
    assert_eq!(encoded(r.encoded_len(), |o| r.encode(o)), want);
    // 0.0.0.0 is plain SOCKS4 with a null address, not 4a.
    let (r0, _) = complete(v4::Request::parse(&[4, 1, 0, 80, 0, 0, 0, 0, 0]));
    assert_eq!(r0.destination, v4::Destination::Ip(Ipv4Addr::UNSPECIFIED));
}

#[test]
fn v4_reply_vectors() {
    let granted = [0, 90, 0x04, 0x38, 127, 0, 0, 1];
    let (r, used) = complete(v4::Reply::parse(&granted));
    assert_eq!(used, 8);
    assert_eq!(r.code, v4::ReplyCode::Granted);
    assert_eq!(r.addr(), ip("127.0.0.1:1080"));
    assert_eq!(encoded(8, |o| r.encode(o)), granted);
    let rej = v4::Reply::rejected();
    assert_eq!(encoded(8, |o| rej.encode(o)), [0, 91, 0, 0, 0, 0, 0, 0]);
    for cd in [91u8, 92, 93, 17] {
        let (r, _) = complete(v4::Reply::parse(&[0, cd, 0, 0, 0, 0, 0, 0]));
        assert_eq!(r.code.to_u8(), cd);
        assert_eq!(v4::ReplyCode::from_u8(cd), r.code);
    }
    // Some servers answer VN=4; accepted, re-encoded as 0.
    let (r4, _) = complete(v4::Reply::parse(&[4, 90, 0, 0, 0, 0, 0, 0]));
    assert_eq!(r4.code, v4::ReplyCode::Granted);
}

#[test]
fn v4_malformed() {
    assert_eq!(
        v4::Request::parse(&[5, 1, 0, 80, 1, 2, 3, 4, 0]),
        Err(Error::BadVersion { version: 5 })
    );
    for cd in [0u8, 3, 90, 255] {
        assert_eq!(
            v4::Request::parse(&[4, cd, 0, 80, 1, 2, 3, 4, 0]),
            Err(Error::UnknownCommand { command: cd })
        );
    }
    assert_eq!(
        v4::Reply::parse(&[5, 90]),
        Err(Error::BadVersion { version: 5 })
    );
}

#[test]
fn v4_user_id_cap() {
    let mut head = vec![4, 1, 0, 80, 1, 2, 3, 4];
    // 255 bytes without NUL yet: partial.
    head.extend_from_slice(&[b'x'; 255]);
    assert!(v4::Request::parse(&head).unwrap().is_partial());
    // ... and with its NUL: complete.
    let mut ok = head.clone();
    ok.push(0);
    let (r, used) = complete(v4::Request::parse(&ok));
    assert_eq!((r.user_id.len(), used), (255, 8 + 256));
    // 256 bytes without NUL: an error, not partial.
    head.push(b'x');
    assert_eq!(
        v4::Request::parse(&head),
        Err(Error::FieldTooLong {
            field: Field::UserId
        })
    );
}

#[test]
fn v4a_hostname_cap() {
    let head = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
    let mut name = head.clone();
    name.extend_from_slice(&[b'h'; 255]);
    assert!(v4::Request::parse(&name).unwrap().is_partial());
    let mut ok = name.clone();
    ok.push(0);
    let (r, used) = complete(v4::Request::parse(&ok));
    assert_eq!((r.target().domain().unwrap().len(), used), (255, 9 + 256));
    name.push(b'h');
    assert_eq!(
        v4::Request::parse(&name),
        Err(Error::FieldTooLong {
            field: Field::Hostname
        })
    );
    let mut empty = head;
    empty.push(0);
    assert_eq!(v4::Request::parse(&empty), Err(Error::EmptyDomain));
}

// ---------------------------------------------------------------- SOCKS5

#[test]
fn greeting_vectors() {
    let (g, used) = complete(Greeting::parse(&[5, 1, 0]));
    assert_eq!((g.methods.as_slice(), used), (&[Method::NO_AUTH][..], 3));
    let bytes = [5, 3, 0, 1, 2];
    let (g, _) = complete(Greeting::parse(&bytes));
    assert!(g.offers(Method::GSSAPI) && g.offers(Method::PASSWORD));
    assert_eq!(encoded(5, |o| g.encode(o)), bytes);
    let mut all = vec![5, 255];
    all.extend(0..=254u8);
    let (g, used) = complete(Greeting::parse(&all));
    assert_eq!((g.methods.len(), used), (255, 257));
    assert_eq!(encoded(257, |o| g.encode(o)), all);
}

#[test]
fn greeting_malformed() {
    assert_eq!(Greeting::parse(&[5, 0]), Err(Error::NoMethods));
    assert_eq!(Greeting::parse(&[5, 0, 0]), Err(Error::NoMethods));
    assert_eq!(
        Greeting::parse(&[4, 1, 0]),
        Err(Error::BadVersion { version: 4 })
    );
}

#[test]
fn method_selection_vectors() {
    for m in [0u8, 1, 2, 0x80, 0xff] {
        let (s, used) = complete(MethodSelection::parse(&[5, m]));
        assert_eq!((s.method, used), (Method(m), 2));
        assert_eq!(encoded(2, |o| s.encode(o)), [5, m]);
    }
    assert_eq!(
        MethodSelection::parse(&[1, 0]),
        Err(Error::BadVersion { version: 1 })
    );
}

#[test]
fn auth_vectors() {
    let bytes = [1, 3, b'b', b'o', b'b', 4, b'p', b'a', b's', b's'];
    let (c, used) = complete(Credentials::parse(&bytes));
    assert_eq!(used, 10);
    assert_eq!(c, Credentials::new(b"bob", b"pass").unwrap());
    assert_eq!(encoded(10, |o| c.encode(o)), bytes);
    // PLEN = 0 is accepted (empty password).
    let (c, used) = complete(Credentials::parse(&[1, 1, b'a', 0]));
    assert_eq!(
        (c.username.as_slice(), c.password.len(), used),
        (&b"a"[..], 0, 4)
    );
    // 255 / 255.
    let big = Credentials::new(&[b'u'; 255], &[b'p'; 255]).unwrap();
    let bytes = encoded(513, |o| big.encode(o));
    assert_eq!(complete(Credentials::parse(&bytes)), (big, 513));

    let (r, _) = complete(AuthReply::parse(&[1, 0]));
    assert!(r.is_success());
    let (r, _) = complete(AuthReply::parse(&[1, 1]));
    assert!(!r.is_success());
    assert_eq!(encoded(2, |o| AuthReply::FAILURE.encode(o)), [1, 1]);
}

#[test]
fn auth_malformed() {
    assert_eq!(Credentials::parse(&[1, 0, 0]), Err(Error::EmptyUsername));
    assert_eq!(
        Credentials::parse(&[5, 1, b'a', 0]),
        Err(Error::BadAuthVersion { version: 5 })
    );
    assert_eq!(
        AuthReply::parse(&[5, 0]),
        Err(Error::BadAuthVersion { version: 5 })
    );
    assert_eq!(
        Credentials::new(&[b'u'; 256], b""),
        Err(Error::FieldTooLong {
            field: Field::Username
        })
    );
    assert_eq!(
        Credentials::new(b"u", &[b'p'; 256]),
        Err(Error::FieldTooLong {
            field: Field::Password
        })
    );
}

#[test]
fn request_vectors_each_atyp() {
    let cases: [(Vec<u8>, Command, TargetAddr); 3] = [
        (
            vec![5, 1, 0, 1, 192, 0, 2, 1, 0, 80],
            Command::Connect,
            ip("192.0.2.1:80"),
        ),
        (
            [&[5, 2, 0, 3, 7][..], b"foo.bar", &[0x01, 0xbb]].concat(),
            Command::Bind,
            domain(b"foo.bar", 443),
        ),
        (
            [&[5, 3, 0, 4][..], &V6, &[0, 53]].concat(),
            Command::UdpAssociate,
            ip("[2001:db8::1]:53"),
        ),
    ];
    for (bytes, command, target) in cases {
        let (r, used) = complete(Request::parse(&bytes));
        assert_eq!(used, bytes.len());
        assert_eq!(
            r,
            Request {
                command,
                target: target.clone()
            }
        );
        assert_eq!(encoded(r.encoded_len(), |o| r.encode(o)), bytes);
        // The reply carries the same address encoding.
        let reply = Reply {
            reply: ReplyCode::Succeeded,
            bound: target,
        };
        let mut rb = bytes.clone();
        rb[1] = 0;
        assert_eq!(encoded(reply.encoded_len(), |o| reply.encode(o)), rb);
        assert_eq!(complete(Reply::parse(&rb)), (reply, rb.len()));
    }
}

#[test]
fn request_domain_limits() {
    let mut d255 = vec![5, 1, 0, 3, 255];
    d255.extend_from_slice(&[b'a'; 255]);
    d255.extend_from_slice(&[0, 80]);
    let (r, used) = complete(Request::parse(&d255));
    assert_eq!((r.target.domain().unwrap().len(), used), (255, 262));
    assert_eq!(
        Request::parse(&[5, 1, 0, 3, 0, 0, 80]),
        Err(Error::EmptyDomain)
    );
    assert!(matches!(
        Request::parse(&[5, 1, 0, 3, 3, b'a', 0, b'b', 0, 80]),
        Err(Error::InvalidDomain { .. })
    ));
}

#[test]
fn request_malformed() {
    for atyp in [0u8, 2, 5, 0xff] {
        assert_eq!(
            Request::parse(&[5, 1, 0, atyp, 1, 2, 3, 4, 0, 80]),
            Err(Error::BadAddressType { atyp })
        );
        assert_eq!(
            Reply::parse(&[5, 0, 0, atyp]),
            Err(Error::BadAddressType { atyp })
        );
    }
    for cmd in [0u8, 4, 9, 0xff] {
        assert_eq!(
            Request::parse(&[5, cmd, 0, 1, 1, 2, 3, 4, 0, 80]),
            Err(Error::UnknownCommand { command: cmd })
        );
    }
    assert_eq!(
        Request::parse(&[4, 1, 0, 1, 1, 2, 3, 4, 0, 80]),
        Err(Error::BadRequestVersion { version: 4 })
    );
    assert_eq!(
        Reply::parse(&[4, 0, 0, 1, 1, 2, 3, 4, 0, 80]),
        Err(Error::BadVersion { version: 4 })
    );
    // RSV is not checked.
    assert!(Request::parse(&[5, 1, 7, 1, 1, 2, 3, 4, 0, 80])
        .unwrap()
        .complete()
        .is_some());
}

#[test]
fn every_reply_code() {
    let named = [
        ReplyCode::Succeeded,
        ReplyCode::GeneralFailure,
        ReplyCode::NotAllowed,
        ReplyCode::NetworkUnreachable,
        ReplyCode::HostUnreachable,
        ReplyCode::ConnectionRefused,
        ReplyCode::TtlExpired,
        ReplyCode::CommandNotSupported,
        ReplyCode::AddressTypeNotSupported,
    ];
    for (i, code) in named.into_iter().enumerate() {
        assert_eq!(usize::from(code.to_u8()), i);
    }
    for rep in 0..=255u8 {
        let bytes = [5, rep, 0, 1, 0, 0, 0, 0, 0, 0];
        let (r, _) = complete(Reply::parse(&bytes));
        assert_eq!(r.reply.to_u8(), rep);
        if rep >= 9 {
            assert_eq!(r.reply, ReplyCode::Other(rep));
        }
        assert_eq!(r, Reply::failure(ReplyCode::from(rep)));
    }
}

#[test]
fn udp_vectors() {
    let v4 = [&[0, 0, 0, 1, 8, 8, 8, 8, 0, 53][..], b"query"].concat();
    let (h, data) = parse_udp(&v4).unwrap();
    assert_eq!(
        h,
        UdpHeader {
            frag: 0,
            target: ip("8.8.8.8:53")
        }
    );
    assert_eq!(data, b"query");
    let mut out = encoded(h.encoded_len(), |o| encode_udp(&h, o));
    out.extend_from_slice(data);
    assert_eq!(out, v4);

    let dom = [&[0, 0, 3, 3, 3][..], b"a.b", &[0, 7]].concat();
    let (h, data) = parse_udp(&dom).unwrap();
    assert_eq!((h.frag, h.target, data), (3, domain(b"a.b", 7), &[][..]));

    let v6 = [&[0, 0, 0, 4][..], &V6, &[1, 0], &[9, 9]].concat();
    let (h, data) = parse_udp(&v6).unwrap();
    assert_eq!((h.target, data), (ip("[2001:db8::1]:256"), &[9u8, 9][..]));
}

#[test]
fn udp_malformed() {
    let full = [0, 0, 0, 1, 8, 8, 8, 8, 0, 53];
    for n in 0..full.len() {
        assert_eq!(parse_udp(&full[..n]), Err(Error::Truncated), "{n} bytes");
    }
    assert_eq!(
        parse_udp(&[0, 1, 0, 1, 8, 8, 8, 8, 0, 53]),
        Err(Error::BadReserved { value: 1 })
    );
    assert_eq!(
        parse_udp(&[0, 0, 0, 2, 8, 8, 8, 8, 0, 53]),
        Err(Error::BadAddressType { atyp: 2 })
    );
    assert_eq!(parse_udp(&[0, 0, 0, 3, 0, 0, 53]), Err(Error::EmptyDomain));
}

// ---------------------------------------------------------------- all prefixes

type Parser = fn(&[u8]) -> Result<Option<usize>, Error>;

fn wrap<T>(r: Result<Status<T>, Error>) -> Result<Option<usize>, Error> {
    r.map(|s| s.complete().map(|(_, n)| n))
}

fn needed<T>(r: &Result<Status<T>, Error>) -> Option<usize> {
    match r {
        Ok(Status::Partial { needed }) => needed.map(|n| n.get()),
        _ => None,
    }
}

fn valid_messages() -> Vec<(&'static str, Vec<u8>, Parser)> {
    let req = |t: TargetAddr| {
        let r = Request {
            command: Command::Connect,
            target: t,
        };
        encoded(r.encoded_len(), |o| r.encode(o))
    };
    let mut v4a = vec![4, 1, 0, 80, 0, 0, 0, 1, b'u', b's', 0];
    v4a.extend_from_slice(b"host.example\0");
    vec![
        (
            "v4 request",
            vec![4, 1, 0, 80, 1, 2, 3, 4, b'i', b'd', 0],
            |b| wrap(v4::Request::parse(b)),
        ),
        (
            "v4 request no user",
            vec![4, 2, 0, 80, 1, 2, 3, 4, 0],
            |b| wrap(v4::Request::parse(b)),
        ),
        ("v4a request", v4a, |b| wrap(v4::Request::parse(b))),
        ("v4 reply", vec![0, 90, 0, 80, 1, 2, 3, 4], |b| {
            wrap(v4::Reply::parse(b))
        }),
        ("greeting", vec![5, 2, 0, 2], |b| wrap(Greeting::parse(b))),
        ("method", vec![5, 0xff], |b| wrap(MethodSelection::parse(b))),
        ("auth", vec![1, 2, b'a', b'b', 2, b'c', b'd'], |b| {
            wrap(Credentials::parse(b))
        }),
        ("auth empty password", vec![1, 1, b'a', 0], |b| {
            wrap(Credentials::parse(b))
        }),
        ("auth reply", vec![1, 0], |b| wrap(AuthReply::parse(b))),
        ("request v4", req(ip("1.2.3.4:80")), |b| {
            wrap(Request::parse(b))
        }),
        ("request v6", req(ip("[2001:db8::1]:80")), |b| {
            wrap(Request::parse(b))
        }),
        ("request domain", req(domain(b"x", 80)), |b| {
            wrap(Request::parse(b))
        }),
        (
            "reply v6",
            {
                let mut r = req(ip("[::1]:1"));
                r[1] = 0;
                r
            },
            |b| wrap(Reply::parse(b)),
        ),
        (
            "reply domain",
            {
                let mut r = req(domain(b"example.net", 1));
                r[1] = 5;
                r
            },
            |b| wrap(Reply::parse(b)),
        ),
    ]
}

#[test]
fn every_strict_prefix_is_partial() {
    for (name, bytes, parse) in valid_messages() {
        for n in 0..bytes.len() {
            assert_eq!(parse(&bytes[..n]), Ok(None), "{name}: prefix of {n} bytes");
        }
        assert_eq!(parse(&bytes), Ok(Some(bytes.len())), "{name}: whole");
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0xAA, 0x55, 0]);
        assert_eq!(
            parse(&longer),
            Ok(Some(bytes.len())),
            "{name}: trailing bytes"
        );
    }
}

type NeedFn = fn(&[u8]) -> Option<usize>;

#[test]
fn needed_never_overshoots() {
    // `needed` is a lower bound: feeding exactly that many more bytes never skips past the
    // end of the message.
    let checks: Vec<(Vec<u8>, NeedFn)> = vec![
        (
            [&[5, 1, 0, 3, 9][..], b"localhost", &[0, 80]].concat(),
            |b| needed(&Request::parse(b)),
        ),
        ([&[5, 0, 0, 4][..], &V6, &[0, 80]].concat(), |b| {
            needed(&Reply::parse(b))
        }),
        (vec![5, 3, 0, 1, 2], |b| needed(&Greeting::parse(b))),
        (vec![1, 3, b'a', b'b', b'c', 1, b'p'], |b| {
            needed(&Credentials::parse(b))
        }),
        (
            [&[4, 1, 0, 80, 0, 0, 0, 9, b'u', 0][..], b"h.example\0"].concat(),
            |b| needed(&v4::Request::parse(b)),
        ),
        (vec![0, 91, 0, 0, 0, 0, 0, 0], |b| {
            needed(&v4::Reply::parse(b))
        }),
    ];
    for (bytes, need) in checks {
        for n in 0..bytes.len() {
            let more = need(&bytes[..n]).expect("partial with a known need");
            assert!(
                more >= 1 && n + more <= bytes.len(),
                "{bytes:?} at {n}: {more}"
            );
        }
    }
}

#[test]
fn v5_constants_fit() {
    assert_eq!(v5::MAX_GREETING_LEN, 257);
    assert_eq!(v5::MAX_AUTH_REQUEST_LEN, 513);
    assert_eq!(v5::MAX_REQUEST_LEN, 262);
    assert_eq!(v4::MAX_REQUEST_LEN, 520);
    const { assert!(v4::MAX_REQUEST_LEN <= triproxy_wire::MAX_TRANSMIT) };
}
