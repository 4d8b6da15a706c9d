//! Tests of [`super::respond`] and [`super::refuse`]: auth, ACL, read-only mode and every
//! page, without sockets.

use super::*;
use request::Credentials;
use std::sync::atomic::AtomicU64;
use triproxy_policy::acl::Action;
use triproxy_policy::quota::{CountDirection, Period, Rule};

const TIME: CivilTime = CivilTime {
    weekday: 1,
    seconds_of_day: 3600,
};

fn state(read_only: bool, reloads: Option<Arc<AtomicU64>>) -> AdminState {
    let mut users = Users::new();
    users.add_spec("alice:CL:pw").unwrap();
    users.add_spec("bob:CL:pw2").unwrap();
    let any = || Ace::parse(Action::Allow, &[]).unwrap();
    let mut quotas = Quotas::new();
    quotas
        .push(Rule::count(
            CountDirection::In,
            1,
            "first",
            Period::Daily,
            10,
            any(),
        ))
        .unwrap();
    quotas
        .push(Rule::exempt(CountDirection::Out, any()))
        .unwrap();
    quotas
        .push(Rule::count(
            CountDirection::All,
            2,
            "second",
            Period::Monthly,
            20,
            any(),
        ))
        .unwrap();
    let metrics = Metrics::new();
    let key = ServiceKey {
        service: "socks",
        listen: "127.0.0.1:1080".parse().unwrap(),
    };
    metrics.service(key);
    AdminState {
        services: vec![key],
        quotas: Arc::new(quotas),
        users: Arc::new(users),
        auth: AuthChain::parse(&["strong"]).unwrap(),
        acl: Arc::from(vec![Ace::parse(Action::Allow, &["alice"]).unwrap()]),
        read_only,
        metrics,
        reload: reloads.map(|n| -> Reload {
            Arc::new(move || {
                n.fetch_add(1, Ordering::Relaxed);
            })
        }),
    }
}

fn get(path: &str, credentials: Option<(&str, &str)>) -> Request {
    Request {
        method: request::Method::Get,
        path: path.to_owned(),
        credentials: credentials.map(|(u, p)| Credentials {
            user: u.as_bytes().to_vec(),
            password: p.as_bytes().to_vec(),
        }),
        head_len: 0,
    }
}

const ALICE: Option<(&str, &str)> = Some(("alice", "pw"));

fn ask(state: &AdminState, path: &str, credentials: Option<(&str, &str)>) -> Handled {
    respond(
        state,
        &get(path, credentials),
        "127.0.0.1".parse().unwrap(),
        TIME,
    )
}

fn status_and_code(h: &Handled) -> (Status, u16) {
    (h.answer.as_ref().unwrap().status, h.code.get())
}

#[test]
fn credentials_are_checked_by_the_auth_chain() {
    let s = state(false, None);
    let h = ask(&s, "/C", None);
    assert_eq!(status_and_code(&h), (Status::Unauthorized, 4));
    assert_eq!(h.reason, Some(Reason::Auth(LogCode::NO_USERNAME)));
    let bytes = String::from_utf8(h.answer.unwrap().bytes()).unwrap();
    assert!(bytes.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
    assert!(bytes.contains("\r\nWWW-Authenticate: Basic realm=\"triproxy\"\r\n"));
    let h = ask(&s, "/C", Some(("alice", "wrong")));
    assert_eq!(status_and_code(&h), (Status::Unauthorized, 6));
    assert_eq!(h.user.as_deref(), Some("alice"));
    let h = ask(&s, "/C", Some(("mallory", "x")));
    assert_eq!(status_and_code(&h), (Status::Unauthorized, 5));
    let h = ask(&s, "/C", ALICE);
    assert_eq!(status_and_code(&h), (Status::Ok, 0));
}

#[test]
fn the_acl_with_operation_admin_refuses_other_users() {
    let s = state(false, None);
    let h = ask(&s, "/C", Some(("bob", "pw2")));
    assert_eq!(status_and_code(&h), (Status::Forbidden, 3));
    assert_eq!(h.reason, Some(Reason::AclNoMatch));
    // An ACL for other operations does not let anyone in.
    let mut s = state(false, None);
    s.acl = Arc::from(vec![Ace::parse(
        Action::Allow,
        &["*", "*", "*", "*", "CONNECT"],
    )
    .unwrap()]);
    let h = ask(&s, "/C", ALICE);
    assert_eq!(status_and_code(&h), (Status::Forbidden, 3));
    s.acl = Arc::from(vec![Ace::parse(
        Action::Deny,
        &["*", "*", "*", "*", "ADMIN"],
    )
    .unwrap()]);
    let h = ask(&s, "/C", ALICE);
    assert_eq!(status_and_code(&h), (Status::Forbidden, 1));
    assert_eq!(h.reason, Some(Reason::AclDenied));
}

#[test]
fn counters_are_switched_by_position() {
    let s = state(false, None);
    let page = ask(&s, "/C", ALICE).answer.unwrap().body;
    assert!(page.contains("<td>0</td><td>1/first</td><td>countin</td><td><a href=\"/CD0\""));
    assert!(page.contains("<td>2</td><td>2/second</td><td>countall</td><td><a href=\"/CD2\""));
    let h = ask(&s, "/CD2", ALICE);
    assert_eq!(status_and_code(&h), (Status::Ok, 0));
    assert!(h
        .answer
        .unwrap()
        .body
        .contains("<a href=\"/CS2\" title=\"switch on\">NO</a>"));
    let rows = metrics::counter_rows(&s.quotas);
    assert_eq!(
        rows.iter().map(|r| r.disabled).collect::<Vec<_>>(),
        [false, true]
    );
    ask(&s, "/CS2", ALICE);
    assert!(!metrics::counter_rows(&s.quotas)[1].disabled);
    // Rule 1 is the exception; rule 3 does not exist.
    assert_eq!(
        status_and_code(&ask(&s, "/CD1", ALICE)),
        (Status::NotFound, 702)
    );
    assert_eq!(
        status_and_code(&ask(&s, "/CD3", ALICE)),
        (Status::NotFound, 702)
    );
    assert_eq!(
        status_and_code(&ask(&s, "/CDx", ALICE)),
        (Status::NotFound, 702)
    );
}

#[test]
fn read_only_serves_counters_and_metrics_only() {
    let reloads = Arc::new(AtomicU64::new(0));
    let s = state(true, Some(Arc::clone(&reloads)));
    let h = ask(&s, "/C", ALICE);
    assert_eq!(status_and_code(&h), (Status::Ok, 0));
    assert!(!h.answer.unwrap().body.contains("/CD0"));
    assert_eq!(
        status_and_code(&ask(&s, "/metrics", ALICE)),
        (Status::Ok, 0)
    );
    for path in ["/CD0", "/CS0", "/S", "/R"] {
        assert_eq!(
            status_and_code(&ask(&s, path, ALICE)),
            (Status::Forbidden, 1),
            "{path}"
        );
    }
    assert!(!metrics::counter_rows(&s.quotas)[0].disabled);
    assert_eq!(reloads.load(Ordering::Relaxed), 0);
}

#[test]
fn read_only_shows_each_user_the_counters_that_match_them() {
    let mut s = state(true, None);
    let mut quotas = Quotas::new();
    let rule = |n: u32, fields: &[&str]| {
        let ace = Ace::parse(Action::Allow, fields).unwrap();
        Rule::count(CountDirection::In, n, "c", Period::Daily, 10, ace)
    };
    quotas.push(rule(1, &["alice", "*", "*", "80"])).unwrap();
    quotas.push(rule(2, &["bob"])).unwrap();
    quotas.push(rule(3, &["*", "10.0.0.0/8"])).unwrap();
    quotas.push(rule(4, &[])).unwrap();
    s.quotas = Arc::new(quotas);
    s.acl = Arc::from(Vec::new());
    let page = ask(&s, "/C", ALICE).answer.unwrap().body;
    assert!(
        page.contains("<td>1/c</td>") && page.contains("<td>4/c</td>"),
        "{page}"
    );
    assert!(
        !page.contains("<td>2/c</td>") && !page.contains("<td>3/c</td>"),
        "{page}"
    );
    let metrics = ask(&s, "/metrics", Some(("bob", "pw2")))
        .answer
        .unwrap()
        .body;
    assert!(metrics.contains("number=\"2\"") && metrics.contains("number=\"4\""));
    assert!(!metrics.contains("number=\"1\""), "{metrics}");
    // The full admin shows every rule.
    s.read_only = false;
    let page = ask(&s, "/C", ALICE).answer.unwrap().body;
    assert!(
        page.contains("<td>2/c</td>") && page.contains("<td>3/c</td>"),
        "{page}"
    );
}

#[test]
fn reload_calls_the_callback_or_says_it_cannot() {
    let reloads = Arc::new(AtomicU64::new(0));
    let s = state(false, Some(Arc::clone(&reloads)));
    assert_eq!(status_and_code(&ask(&s, "/R", ALICE)), (Status::Ok, 0));
    assert_eq!(
        status_and_code(&ask(&s, "/R", None)),
        (Status::Unauthorized, 4)
    );
    assert_eq!(reloads.load(Ordering::Relaxed), 1);
    let s = state(false, None);
    assert_eq!(
        status_and_code(&ask(&s, "/R", ALICE)),
        (Status::Unavailable, 999)
    );
}

#[test]
fn status_metrics_editor_and_banner() {
    let s = state(false, None);
    let page = ask(&s, "/S", ALICE).answer.unwrap().body;
    assert!(
        page.contains("<tr><td>socks</td><td>127.0.0.1</td><td>1080</td><td>0</td><td>0</td></tr>")
    );
    let m = ask(&s, "/metrics", ALICE).answer.unwrap();
    assert_eq!(m.content_type, metrics::CONTENT_TYPE);
    assert!(m
        .body
        .contains("triproxy_connections_total{service=\"socks\",listen=\"127.0.0.1:1080\"} 0\n"));
    assert!(m.body.contains("triproxy_quota_limit_bytes{rule=\"2\",number=\"2\",comment=\"second\",type=\"countall\",period=\"M\"} 20971520\n"));
    assert_eq!(
        status_and_code(&ask(&s, "/F", ALICE)),
        (Status::NotImplemented, 999)
    );
    assert_eq!(
        status_and_code(&ask(&s, "/U", ALICE)),
        (Status::NotImplemented, 999)
    );
    let banner = ask(&s, "/", ALICE);
    assert_eq!(status_and_code(&banner), (Status::Ok, 0));
    assert!(banner
        .answer
        .unwrap()
        .body
        .contains("<a href=\"/metrics\">"));
}

#[test]
fn unreadable_requests() {
    let h = refuse(RequestError::Incomplete);
    assert_eq!((h.answer, h.code.get()), (None, 701));
    assert_eq!(
        status_and_code(&refuse(RequestError::Method)),
        (Status::MethodNotAllowed, 701)
    );
    assert_eq!(
        status_and_code(&refuse(RequestError::Malformed)),
        (Status::BadRequest, 702)
    );
    assert_eq!(
        status_and_code(&refuse(RequestError::TooLarge)),
        (Status::HeadTooLarge, 702)
    );
}
