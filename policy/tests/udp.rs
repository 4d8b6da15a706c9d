//! The UDP association machine (`triproxy_policy::udp::Association`) in virtual time,
//! started the real way: a session granted UDP ASSOCIATE hands over its plan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod common;

use common::{drain, policy_for, session_of};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use triproxy_policy::acl::Action;
use triproxy_policy::relay::RelayEnd;
use triproxy_policy::service::FrontProtocol;
use triproxy_policy::session::Intent;
use triproxy_policy::udp::{
    Association, Dropped, Outbound, MAX_PEERS, STRANGER_CODE, STRANGER_NOTICE_EVERY,
};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// An association for a client at 127.0.0.1 whose request named `port` (0: unknown),
/// under `acl`.
fn association(t0: Instant, port: u16, acl: &[(Action, &[&str])]) -> Association {
    let policy = policy_for(FrontProtocol::Socks, 1080, &["iponly"], acl, &[]);
    let mut s = session_of(policy, t0);
    let mut request = vec![5, 1, 0, 5, 3, 0, 1, 0, 0, 0, 0];
    request.extend_from_slice(&port.to_be_bytes());
    s.handle_input(t0, &request);
    drain(&mut s);
    s.handle_associated(t0, sa("127.0.0.1:40000"));
    let (_, intents) = drain(&mut s);
    let Some(Intent::RelayDatagrams(plan)) = intents.into_iter().next() else {
        panic!("no association")
    };
    Association::new(t0, *plan)
}

fn to(addr: &str, payload: &[u8]) -> Vec<u8> {
    let SocketAddr::V4(a) = sa(addr) else {
        panic!()
    };
    let mut d = vec![0, 0, 0, 1];
    d.extend_from_slice(&a.ip().octets());
    d.extend_from_slice(&a.port().to_be_bytes());
    d.extend_from_slice(payload);
    d
}

#[test]
fn the_first_datagram_fixes_the_client_port_and_strangers_are_noticed_once_a_minute() {
    let t0 = Instant::now();
    let mut a = association(t0, 0, &[]);
    assert_eq!(a.client(), None);
    let d = to("127.0.0.1:7", b"hi");
    assert_eq!(
        a.from_client(t0, sa("127.0.0.1:5000"), &d),
        Outbound::Send {
            to: sa("127.0.0.1:7"),
            payload: b"hi"
        }
    );
    assert_eq!(a.client(), Some(sa("127.0.0.1:5000")));
    let Outbound::Drop(first) = a.from_client(t0, sa("127.0.0.1:5001"), &d) else {
        panic!()
    };
    assert_eq!(
        first,
        Dropped::Stranger {
            from: sa("127.0.0.1:5001"),
            notice: true
        }
    );
    let record = a.stranger_record(t0, &first).unwrap();
    assert_eq!(record.code, STRANGER_CODE);
    assert_eq!(record.remote, Some(sa("127.0.0.1:5001")));
    let later = t0 + Duration::from_secs(30);
    let Outbound::Drop(second) = a.from_client(later, sa("10.0.0.1:5000"), &d) else {
        panic!()
    };
    assert!(matches!(second, Dropped::Stranger { notice: false, .. }));
    assert!(
        a.stranger_record(later, &second).is_none(),
        "at most once a minute"
    );
    let Outbound::Drop(third) = a.from_client(t0 + STRANGER_NOTICE_EVERY, sa("10.0.0.1:1"), &d)
    else {
        panic!()
    };
    assert!(matches!(third, Dropped::Stranger { notice: true, .. }));
}

#[test]
fn a_port_named_in_the_request_is_the_only_one_accepted() {
    let t0 = Instant::now();
    let mut a = association(t0, 6000, &[]);
    assert_eq!(a.client(), Some(sa("127.0.0.1:6000")));
    let d = to("127.0.0.1:7", b"x");
    assert!(matches!(
        a.from_client(t0, sa("127.0.0.1:6001"), &d),
        Outbound::Drop(Dropped::Stranger { .. })
    ));
    assert!(matches!(
        a.from_client(t0, sa("127.0.0.1:6000"), &d),
        Outbound::Send { .. }
    ));
}

#[test]
fn fragments_and_bad_headers_drop_one_datagram_only() {
    let t0 = Instant::now();
    let mut a = association(t0, 0, &[]);
    let client = sa("127.0.0.1:5000");
    let mut frag = to("127.0.0.1:7", b"part");
    frag[2] = 1;
    assert_eq!(
        a.from_client(t0, client, &frag),
        Outbound::Drop(Dropped::Fragment)
    );
    assert!(matches!(
        a.from_client(t0, client, &[0, 1, 0, 1, 1]),
        Outbound::Drop(Dropped::Malformed(_))
    ));
    assert!(matches!(
        a.from_client(t0, client, &to("127.0.0.1:7", b"ok")),
        Outbound::Send { .. }
    ));
    assert!(a.report().is_none(), "still alive");
}

#[test]
fn the_acl_is_checked_per_datagram() {
    let t0 = Instant::now();
    // The request names 0.0.0.0:0, no destination: a deny entry for one port does not
    // refuse the association; each datagram is judged by its real destination.
    let acl: &[(Action, &[&str])] = &[
        (Action::Deny, &["*", "*", "*", "53"]),
        (Action::Allow, &["*", "*", "127.0.0.1", "54"]),
    ];
    let mut a = association(t0, 0, acl);
    let client = sa("127.0.0.1:5000");
    assert!(matches!(
        a.from_client(t0, client, &to("127.0.0.1:53", b"q")),
        Outbound::Drop(Dropped::Denied(triproxy_wire::LogCode::ACL_DENIED))
    ));
    assert!(matches!(
        a.from_client(t0, client, &to("127.0.0.1:54", b"q")),
        Outbound::Send { .. }
    ));
}

#[test]
fn answers_come_back_only_from_peers_the_client_sent_to() {
    let t0 = Instant::now();
    let mut a = association(t0, 0, &[]);
    let client = sa("127.0.0.1:5000");
    let mut out = Vec::new();
    // Nothing sent yet: even the client's own address is a stranger on this side.
    assert!(matches!(
        a.from_remote(t0, sa("127.0.0.1:7"), b"early", &mut out),
        Err(Dropped::Stranger { .. })
    ));
    a.from_client(t0, client, &to("127.0.0.1:7", b"q"));
    assert_eq!(
        a.from_remote(t0, sa("127.0.0.1:7"), b"a", &mut out),
        Ok(client)
    );
    assert_eq!(out, to("127.0.0.1:7", b"a"), "the header names the source");
    // The list of peers is bounded: the oldest is forgotten.
    for port in 0..MAX_PEERS as u16 {
        a.from_client(t0, client, &to(&format!("127.0.0.2:{}", 1000 + port), b"q"));
    }
    assert!(a
        .from_remote(t0, sa("127.0.0.1:7"), b"a", &mut out)
        .is_err());
    assert!(a
        .from_remote(t0, sa("127.0.0.2:1063"), b"a", &mut out)
        .is_ok());
}

#[test]
fn it_ends_idle_or_with_its_control_connection() {
    let t0 = Instant::now();
    let mut a = association(t0, 0, &[]);
    let idle = a.poll_timeout() - t0;
    assert_eq!(
        idle,
        Duration::from_secs(1800),
        "CONNECTION_LONG, as 3proxy"
    );
    a.handle_timeout(t0 + idle - Duration::from_secs(1));
    assert!(a.report().is_none());
    a.handle_timeout(t0 + idle);
    assert_eq!(a.report().unwrap().end, RelayEnd::IdleTimeout);

    let mut b = association(t0, 0, &[]);
    b.from_client(t0, sa("127.0.0.1:5000"), &to("127.0.0.1:7", b"four"));
    b.handle_control_closed();
    let report = b.report().unwrap();
    assert_eq!((report.end, report.bytes_out), (RelayEnd::Clean, 4));
    assert!(matches!(
        b.from_client(t0, sa("127.0.0.1:5000"), &to("127.0.0.1:7", b"x")),
        Outbound::Drop(Dropped::Ended)
    ));
}
