//! The daemon's metrics registry, and its rendering in Prometheus text format 0.0.4.
//!
//! One [`Metrics`] is created in `main` and handed to [`crate::run::Services::prepare`];
//! every service gets [`Hooks`] wrapped by [`Metrics::instrument`], so the counts come
//! from the same two signals for every protocol and both runtimes: the log hook (one
//! [`LogRecord`] per finished request or connection: bytes and codes) and the activity
//! hook (accepted and ended connections: the total and the gauge). Per counter rule, the quota use is read
//! from the quota engine when rendering ([`CounterRow`]), not copied here.
//!
//! A service is keyed by its command and listen address ([`ServiceKey`]), not by its
//! position in a configuration: when the configuration is read again and the services are
//! started anew with the same `Metrics`, a service that still listens where it did keeps
//! its counts (Prometheus counters must not go back), and connections that were running
//! before are still subtracted from the gauge when they end.
//!
//! Datagram services (`udppm`, `dnspr`) have no accepted connections: their
//! `triproxy_connections_total` and `triproxy_active_connections` stay 0, and their
//! records (one per client mapping or query) are counted by code and bytes.
//!
//! This module does no I/O; [`render`] is a pure function of a [`Snapshot`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use triproxy_policy::quota::{CountDirection, LocalStamp, Period, Quotas, RuleKind};
use triproxy_policy::session::LogRecord;
use triproxy_runtime_std::{Activity, Hooks};

/// Most distinct log codes counted per service; records with further codes are counted
/// under [`OTHER_CODE`]. 3proxy's codes number a few hundred; this bounds the memory a
/// misbehaving front could make the registry use.
pub const MAX_CODES_PER_SERVICE: usize = 256;

/// The `code` label of records beyond [`MAX_CODES_PER_SERVICE`] distinct codes.
pub const OTHER_CODE: &str = "other";

/// Which service a series belongs to: its command (`socks`, `proxy`, `admin`, ...) and
/// the address it listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// The 3proxy command that starts it.
    pub service: &'static str,
    /// Its bound address (the real port when the configuration said 0).
    pub listen: SocketAddr,
}

/// One service's counts. Plain atomics: the hooks run on every connection's thread.
#[derive(Debug, Default)]
pub struct ServiceStats {
    connections: AtomicU64,
    closed: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    codes: Mutex<BTreeMap<u16, u64>>,
    other_codes: AtomicU64,
}

impl ServiceStats {
    /// Counts a record: its bytes and its code.
    pub fn record(&self, record: &LogRecord) {
        self.bytes_in.fetch_add(record.bytes_in, Ordering::Relaxed);
        self.bytes_out
            .fetch_add(record.bytes_out, Ordering::Relaxed);
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let code = record.code.get();
        if codes.len() < MAX_CODES_PER_SERVICE || codes.contains_key(&code) {
            *codes.entry(code).or_insert(0) += 1;
        } else {
            self.other_codes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts an accepted connection or the end of one.
    pub fn activity(&self, activity: Activity) {
        match activity {
            Activity::Opened => self.connections.fetch_add(1, Ordering::Relaxed),
            Activity::Closed => self.closed.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Connections accepted and not yet ended.
    pub fn active(&self) -> u64 {
        // `closed` is read first: a connection that ends between the two loads then
        // counts as still active, never as a negative.
        let closed = self.closed.load(Ordering::Relaxed);
        self.connections
            .load(Ordering::Relaxed)
            .saturating_sub(closed)
    }

    /// Its values now.
    pub fn snapshot(&self) -> ServiceSnapshot {
        let mut codes: Vec<(String, u64)> = self
            .codes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect();
        let other = self.other_codes.load(Ordering::Relaxed);
        if other > 0 {
            codes.push((OTHER_CODE.to_owned(), other));
        }
        ServiceSnapshot {
            connections: self.connections.load(Ordering::Relaxed),
            active: self.active(),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            codes,
        }
    }
}

/// The registry: every service's counts, by key. See the module documentation.
#[derive(Debug, Default)]
pub struct Metrics {
    services: Mutex<BTreeMap<ServiceKey, Arc<ServiceStats>>>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The counts of `key`, created at zero the first time and the same ones after a
    /// reload.
    pub fn service(&self, key: ServiceKey) -> Arc<ServiceStats> {
        let mut services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(services.entry(key).or_default())
    }

    /// `hooks` that also count into `key`'s stats: every log record, and every accepted
    /// and ended connection (the activity hook `hooks` had is replaced).
    pub fn instrument(&self, hooks: Hooks, key: ServiceKey) -> Hooks {
        let stats = self.service(key);
        let log_stats = Arc::clone(&stats);
        let log = hooks.log;
        Hooks {
            log: Arc::new(move |record: &LogRecord| {
                log_stats.record(record);
                log(record);
            }),
            activity: Arc::new(move |a| stats.activity(a)),
            civil_time: hooks.civil_time,
            notice: hooks.notice,
        }
    }

    /// The current values of every service, in key order.
    pub fn snapshot(&self) -> Vec<(ServiceKey, ServiceSnapshot)> {
        let services = self.services.lock().unwrap_or_else(|p| p.into_inner());
        services.iter().map(|(k, s)| (*k, s.snapshot())).collect()
    }
}

/// A service's values at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceSnapshot {
    /// Connections accepted since start.
    pub connections: u64,
    /// Connections running now.
    pub active: u64,
    /// Bytes to clients (3proxy "in").
    pub bytes_in: u64,
    /// Bytes to targets (3proxy "out").
    pub bytes_out: u64,
    /// Log records by code (the code as text, [`OTHER_CODE`] last), in code order.
    pub codes: Vec<(String, u64)>,
}

/// One counting rule (`countin`/`countout`/`countall`) as the admin pages and the metrics
/// show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    /// Position among the `count*`/`nocount*` rules, from 0: the `n` of `/CD<n>`.
    pub rule: usize,
    /// NUM of the rule (its record in the counter file; 0 = not persisted).
    pub number: u32,
    /// The comment after `NUM/`.
    pub comment: String,
    /// What it counts.
    pub direction: CountDirection,
    /// How often it starts again.
    pub period: Period,
    /// The limit in bytes.
    pub limit_bytes: u64,
    /// Bytes counted in the current period.
    pub bytes: u64,
    /// Switched off by `/CD<n>`.
    pub disabled: bool,
    /// Local time of its last reset, if known.
    pub reset: Option<LocalStamp>,
    /// Local time new traffic was last seen (minutely), if ever.
    pub updated: Option<LocalStamp>,
}

/// The counting rules of `quotas` as rows, in rule order (positions count the
/// `nocount*` rules too, as 3proxy's `/CD<n>` does).
pub fn counter_rows(quotas: &Quotas) -> Vec<CounterRow> {
    quotas
        .rules()
        .iter()
        .enumerate()
        .filter_map(|(rule, r)| match &r.kind {
            RuleKind::Count(c) => Some(CounterRow {
                rule,
                number: c.number(),
                comment: c.comment().to_owned(),
                direction: c.direction(),
                period: c.period(),
                limit_bytes: c.limit_bytes(),
                bytes: c.bytes(),
                disabled: c.is_disabled(),
                reset: c.last_reset(),
                updated: match c.last_updated() {
                    0 => None,
                    unix => crate::counters::local_of_unix(unix),
                },
            }),
            RuleKind::Exempt => None,
        })
        .collect()
}

/// Everything [`render`] shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every service's values, in key order.
    pub services: Vec<(ServiceKey, ServiceSnapshot)>,
    /// Every counting rule, in rule order.
    pub counters: Vec<CounterRow>,
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and line feed (format 0.0.4).
pub fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `{name="value",...}` with escaped values.
fn labels(pairs: &[(&str, &str)], out: &mut String) {
    out.push('{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        escape_label(value, out);
        out.push('"');
    }
    out.push('}');
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, pairs: &[(&str, &str)], value: u64) {
    out.push_str(name);
    labels(pairs, out);
    let _ = writeln!(out, " {value}");
}

/// The snapshot in Prometheus text format 0.0.4 ([`CONTENT_TYPE`]).
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(1024);
    type Field = fn(&ServiceSnapshot) -> u64;
    let per_service: [(&str, &str, &str, Field); 4] = [
        (
            "triproxy_connections_total",
            "counter",
            "Client connections accepted.",
            |s| s.connections,
        ),
        (
            "triproxy_active_connections",
            "gauge",
            "Client connections being served now.",
            |s| s.active,
        ),
        (
            "triproxy_bytes_in_total",
            "counter",
            "Bytes relayed to clients (3proxy in), counted when a record is logged.",
            |s| s.bytes_in,
        ),
        (
            "triproxy_bytes_out_total",
            "counter",
            "Bytes relayed to targets (3proxy out), counted when a record is logged.",
            |s| s.bytes_out,
        ),
    ];
    for (name, kind, help, field) in per_service {
        family(&mut out, name, kind, help);
        for (key, s) in &snapshot.services {
            let listen = key.listen.to_string();
            sample(
                &mut out,
                name,
                &[("service", key.service), ("listen", &listen)],
                field(s),
            );
        }
    }
    family(
        &mut out,
        "triproxy_log_records_total",
        "counter",
        "Log records written, by 3proxy error code.",
    );
    for (key, s) in &snapshot.services {
        let listen = key.listen.to_string();
        for (code, n) in &s.codes {
            sample(
                &mut out,
                "triproxy_log_records_total",
                &[
                    ("service", key.service),
                    ("listen", &listen),
                    ("code", code),
                ],
                *n,
            );
        }
    }
    type RowField = fn(&CounterRow) -> Option<u64>;
    let per_counter: [(&str, &str, RowField); 4] = [
        (
            "triproxy_quota_used_bytes",
            "Bytes counted by a traffic counter rule in its current period.",
            |c| Some(c.bytes),
        ),
        (
            "triproxy_quota_limit_bytes",
            "Limit of a traffic counter rule.",
            |c| Some(c.limit_bytes),
        ),
        (
            "triproxy_quota_disabled",
            "1 if the counter rule is switched off from the web admin.",
            |c| Some(u64::from(c.disabled)),
        ),
        (
            "triproxy_quota_reset_timestamp_seconds",
            "Unix time of the counter rule's last reset (absent until known).",
            |c| c.reset.and_then(|t| u64::try_from(t.unix).ok()),
        ),
    ];
    for (name, help, field) in per_counter {
        family(&mut out, name, "gauge", help);
        for c in &snapshot.counters {
            let Some(value) = field(c) else {
                continue;
            };
            let rule = c.rule.to_string();
            let number = c.number.to_string();
            let period = c.period.letter().to_string();
            sample(
                &mut out,
                name,
                &[
                    ("rule", &rule),
                    ("number", &number),
                    ("comment", &c.comment),
                    ("type", c.direction.command()),
                    ("period", &period),
                ],
                value,
            );
        }
    }
    out
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
