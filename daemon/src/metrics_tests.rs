//! Tests of [`super`]: counting through instrumented hooks, keys that survive a reload,
//! and the exact text format.

use super::*;
use std::time::Duration;
use triproxy_policy::acl::CivilTime;
use triproxy_wire::LogCode;

fn record(code: u16, bytes_in: u64, bytes_out: u64) -> LogRecord {
    LogRecord {
        logging: triproxy_policy::acl::Logging::Logged,
        service: "SOCK5",
        listen_port: 1080,
        code: LogCode(code),
        reason: None,
        user: None,
        client: "127.0.0.1:40000".parse().unwrap(),
        internal: "127.0.0.1:1080".parse().unwrap(),
        remote: None,
        external: None,
        requested: None,
        bytes_in,
        bytes_out,
        hops: 0,
        text: String::new(),
        duration: Duration::ZERO,
    }
}

fn plain_hooks(logged: Arc<AtomicU64>) -> Hooks {
    Hooks {
        log: Arc::new(move |_| {
            logged.fetch_add(1, Ordering::Relaxed);
        }),
        civil_time: Arc::new(|| CivilTime {
            weekday: 0,
            seconds_of_day: 0,
        }),
        notice: Arc::new(|_| {}),
        activity: Arc::new(|_| {}),
    }
}

fn key(service: &'static str, listen: &str) -> ServiceKey {
    ServiceKey {
        service,
        listen: listen.parse().unwrap(),
    }
}

#[test]
fn instrumented_hooks_count_and_still_log() {
    let metrics = Metrics::new();
    let logged = Arc::new(AtomicU64::new(0));
    let socks = key("socks", "127.0.0.1:1080");
    let hooks = metrics.instrument(plain_hooks(Arc::clone(&logged)), socks);
    let first = hooks.track_connection();
    let second = hooks.track_connection();
    (hooks.log)(&record(0, 100, 10));
    drop(first);
    (hooks.log)(&record(0, 5, 1));
    (hooks.log)(&record(3, 0, 0));
    assert_eq!(logged.load(Ordering::Relaxed), 3);
    let snap = metrics.snapshot();
    assert_eq!(
        snap,
        vec![(
            socks,
            ServiceSnapshot {
                connections: 2,
                active: 1,
                bytes_in: 105,
                bytes_out: 11,
                codes: vec![("0".to_owned(), 2), ("3".to_owned(), 1)],
            }
        )]
    );
    drop(second);
    assert_eq!(metrics.snapshot()[0].1.active, 0);
}

#[test]
fn a_service_started_again_at_the_same_address_keeps_its_counts() {
    let metrics = Metrics::new();
    let logged = Arc::new(AtomicU64::new(0));
    let socks = key("socks", "127.0.0.1:1080");
    let old = metrics.instrument(plain_hooks(Arc::clone(&logged)), socks);
    let running = old.track_connection();
    // A reload: the service is built again with new hooks and the same registry.
    let new = metrics.instrument(plain_hooks(Arc::clone(&logged)), socks);
    let _fresh = new.track_connection();
    drop(running); // the connection from before the reload ends
    let snap = metrics.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].1.connections, 2);
    assert_eq!(snap[0].1.active, 1);
}

#[test]
fn codes_beyond_the_cap_are_counted_as_other() {
    let stats = ServiceStats::default();
    for code in 0..u16::try_from(MAX_CODES_PER_SERVICE).unwrap() + 2 {
        stats.record(&record(code, 0, 0));
    }
    stats.record(&record(0, 0, 0));
    let snap = stats.snapshot();
    assert_eq!(snap.codes.len(), MAX_CODES_PER_SERVICE + 1);
    assert_eq!(snap.codes[0], ("0".to_owned(), 2));
    assert_eq!(snap.codes.last().unwrap(), &(OTHER_CODE.to_owned(), 2));
}

#[test]
fn label_values_are_escaped() {
    let mut out = String::new();
    escape_label("a\\b\"c\nd", &mut out);
    assert_eq!(out, "a\\\\b\\\"c\\nd");
}

#[test]
fn rendering_is_exact() {
    let snapshot = Snapshot {
        services: vec![(
            key("socks", "127.0.0.1:1080"),
            ServiceSnapshot {
                connections: 3,
                active: 1,
                bytes_in: 200,
                bytes_out: 20,
                codes: vec![("0".to_owned(), 2), ("5".to_owned(), 1)],
            },
        )],
        counters: vec![CounterRow {
            rule: 0,
            number: 1,
            comment: "say \"hi\"".to_owned(),
            direction: CountDirection::In,
            period: Period::Daily,
            limit_bytes: 1 << 20,
            bytes: 300,
            disabled: true,
            reset: Some(LocalStamp {
                unix: 1_764_547_200,
                year: 2025,
                month: 12,
                day: 1,
                hour: 0,
                minute: 0,
            }),
            updated: None,
        }],
    };
    let text = render(&snapshot);
    let expected = "\
# HELP triproxy_connections_total Client connections accepted.
# TYPE triproxy_connections_total counter
triproxy_connections_total{service=\"socks\",listen=\"127.0.0.1:1080\"} 3
# HELP triproxy_active_connections Client connections being served now.
# TYPE triproxy_active_connections gauge
triproxy_active_connections{service=\"socks\",listen=\"127.0.0.1:1080\"} 1
# HELP triproxy_bytes_in_total Bytes relayed to clients (3proxy in), counted when a record is logged.
# TYPE triproxy_bytes_in_total counter
triproxy_bytes_in_total{service=\"socks\",listen=\"127.0.0.1:1080\"} 200
# HELP triproxy_bytes_out_total Bytes relayed to targets (3proxy out), counted when a record is logged.
# TYPE triproxy_bytes_out_total counter
triproxy_bytes_out_total{service=\"socks\",listen=\"127.0.0.1:1080\"} 20
# HELP triproxy_log_records_total Log records written, by 3proxy error code.
# TYPE triproxy_log_records_total counter
triproxy_log_records_total{service=\"socks\",listen=\"127.0.0.1:1080\",code=\"0\"} 2
triproxy_log_records_total{service=\"socks\",listen=\"127.0.0.1:1080\",code=\"5\"} 1
# HELP triproxy_quota_used_bytes Bytes counted by a traffic counter rule in its current period.
# TYPE triproxy_quota_used_bytes gauge
triproxy_quota_used_bytes{rule=\"0\",number=\"1\",comment=\"say \\\"hi\\\"\",type=\"countin\",period=\"D\"} 300
# HELP triproxy_quota_limit_bytes Limit of a traffic counter rule.
# TYPE triproxy_quota_limit_bytes gauge
triproxy_quota_limit_bytes{rule=\"0\",number=\"1\",comment=\"say \\\"hi\\\"\",type=\"countin\",period=\"D\"} 1048576
# HELP triproxy_quota_disabled 1 if the counter rule is switched off from the web admin.
# TYPE triproxy_quota_disabled gauge
triproxy_quota_disabled{rule=\"0\",number=\"1\",comment=\"say \\\"hi\\\"\",type=\"countin\",period=\"D\"} 1
# HELP triproxy_quota_reset_timestamp_seconds Unix time of the counter rule's last reset (absent until known).
# TYPE triproxy_quota_reset_timestamp_seconds gauge
triproxy_quota_reset_timestamp_seconds{rule=\"0\",number=\"1\",comment=\"say \\\"hi\\\"\",type=\"countin\",period=\"D\"} 1764547200
";
    assert_eq!(text, expected);
}
