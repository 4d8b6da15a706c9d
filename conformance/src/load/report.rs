//! Turning results into text: the suite's Markdown tables (medians over repetitions, ratios
//! to `direct`, the targets of the performance issue, and every repetition's raw numbers so
//! the noise can be judged). The one-line summaries of single measurements are in
//! `summary`, re-exported here.
//!
//! Ratios are ratios of medians from the same run. A value that was not measured (no pid,
//! no such endpoint, a failed run) is shown as `n/a`; nothing is ever left blank.

mod summary;

use super::conn::ErrorCounts;
use super::idle::IdleResult;
use super::rate::RateResult;
use super::suite::{bulk_cases, SuiteResults, System, SystemResults};
use super::targets::Direction;
use super::url::Protocol;
use std::fmt::Write as _;
pub use summary::{
    bulk_line, dns_kv, dns_line, download_kv, download_line, http_kv, http_line, idle_line,
    rate_line, udp_kv, udp_line,
};

const MIB: f64 = 1024.0 * 1024.0;

/// Targets of the performance issue.
pub mod targets {
    /// Bulk throughput at least this fraction of direct.
    pub const BULK_RATIO: f64 = 0.8;
    /// SOCKS5 connection rate at least this fraction of direct.
    pub const RATE_RATIO: f64 = 0.5;
    /// SOCKS5 p99 latency at most this multiple of direct's.
    pub const P99_RATIO: f64 = 2.0;
    /// Proxy CPU seconds per GiB at most.
    pub const CPU_PER_GIB: f64 = 0.25;
    /// Proxy CPU microseconds per connection at most.
    pub const CPU_PER_CONN_US: f64 = 40.0;
    /// RSS per idle tunnel at most, in KiB, for a system whose name contains `smol`.
    pub const RSS_KIB_SMOL: f64 = 4.0;
    /// RSS per idle tunnel at most, in KiB, for any other system.
    pub const RSS_KIB_OTHER: f64 = 16.0;
}

/// The median of the numbers (NaNs ignored): the middle one, or the mean of the two middle
/// ones. None when there are none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return None;
    }
    let hi = v.get(n / 2).copied()?;
    if n % 2 == 1 {
        Some(hi)
    } else {
        let lo = v.get(n / 2 - 1).copied()?;
        Some((lo + hi) / 2.0)
    }
}

fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) => format!("{x:.decimals$}"),
        None => "n/a".to_owned(),
    }
}

fn ratio(v: Option<f64>, reference: Option<f64>) -> Option<f64> {
    match (v, reference) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn check(v: Option<f64>, ok: impl Fn(f64) -> bool, decimals: usize) -> String {
    match v {
        Some(x) => format!("{x:.decimals$} {}", if ok(x) { "✓" } else { "✗" }),
        None => "n/a".to_owned(),
    }
}

/// Average CPUs busy over a window.
fn others_cpus(cpu_seconds: f64, window: f64) -> f64 {
    if window > 0.0 {
        cpu_seconds / window
    } else {
        0.0
    }
}

/// Medians of one system, as the tables use them.
struct Medians<'a> {
    system: &'a System,
    results: &'a SystemResults,
}

impl Medians<'_> {
    fn bulk_rate(&self, case: (usize, Direction)) -> Option<f64> {
        median(
            self.results
                .bulk
                .get(&case)
                .into_iter()
                .flatten()
                .map(|r| r.bytes_per_sec()),
        )
    }

    fn bulk_cpu(&self, case: (usize, Direction), tool: bool) -> Option<f64> {
        median(
            self.results
                .bulk
                .get(&case)
                .into_iter()
                .flatten()
                .filter_map(|r| {
                    if tool {
                        r.tool_cpu_per_gib()
                    } else {
                        r.proxy_cpu_per_gib()
                    }
                }),
        )
    }

    fn rate_runs(&self, p: Protocol) -> impl Iterator<Item = &RateResult> {
        self.results.rate.get(&p).into_iter().flatten()
    }

    fn rate(&self, p: Protocol) -> Option<f64> {
        median(self.rate_runs(p).map(RateResult::per_sec))
    }

    fn latency(&self, p: Protocol, q: f64) -> Option<f64> {
        median(self.rate_runs(p).filter_map(|r| r.latency_us(q)))
    }

    fn rate_cpu(&self, p: Protocol, tool: bool) -> Option<f64> {
        median(self.rate_runs(p).filter_map(|r| {
            if tool {
                r.tool_cpu_per_conn_us()
            } else {
                r.proxy_cpu_per_conn_us()
            }
        }))
    }

    fn errors<'b>(runs: impl Iterator<Item = &'b ErrorCounts>) -> ErrorCounts {
        let mut total = ErrorCounts::default();
        for e in runs {
            total.merge(e);
        }
        total
    }

    fn first_protocol(&self) -> Option<Protocol> {
        self.system.endpoints.first().map(|e| e.url.protocol())
    }
}

/// The suite's Markdown report.
pub fn markdown(results: &SuiteResults) -> String {
    let config = &results.config;
    let rows: Vec<Medians<'_>> = config
        .systems
        .iter()
        .zip(&results.systems)
        .map(|(system, results)| Medians { system, results })
        .collect();
    let direct = rows.iter().find(|m| m.system.is_direct());
    let cases = bulk_cases(&config.bulk_streams);
    let reps = config.reps;
    let mut out = String::new();

    let _ = writeln!(
        out,
        "Settings: {reps} repetitions (systems interleaved), bulk {} s and connection rate \
         {} s per case after {} s warm-up, {} concurrent clients, {} idle tunnels, \
         {} s close-first soak, {} tool threads. Values are medians of the repetitions; \
         (0.00x) is the ratio to `direct` from the same run.\n",
        config.bulk_duration.as_secs_f64(),
        config.rate_duration.as_secs_f64(),
        config.warmup.as_secs_f64(),
        config.concurrency,
        config.tunnels,
        config.soak_duration.as_secs_f64(),
        config.threads,
    );

    // Bulk throughput.
    let _ = writeln!(out, "### Bulk throughput (MiB/s at the receiver)\n");
    let mut header = String::from("| system |");
    let mut rule = String::from("|---|");
    for (n, d) in &cases {
        let _ = write!(
            header,
            " {n} stream{} {} |",
            if *n == 1 { "" } else { "s" },
            d.label()
        );
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header} errors |\n{rule}---|");
    for m in &rows {
        let _ = write!(out, "| {} |", m.system.name);
        for &case in &cases {
            let v = m.bulk_rate(case);
            let r = ratio(v, direct.and_then(|d| d.bulk_rate(case)));
            match (v, r) {
                (Some(v), Some(r)) if !m.system.is_direct() => {
                    let _ = write!(out, " {:.0} ({r:.2}x) |", v / MIB);
                }
                (v, _) => {
                    let _ = write!(out, " {} |", fmt_opt(v.map(|x| x / MIB), 0));
                }
            }
        }
        let errors = Medians::errors(m.results.bulk.values().flatten().map(|r| &r.errors));
        let _ = writeln!(out, " {} |", errors.summary());
    }

    // CPU per GiB.
    let _ = writeln!(
        out,
        "\n### CPU seconds per GiB moved (proxy / tool)\n\nProxy: utime + stime of the \
         proxy process and its children over the window; tool: the load tool itself (clients \
         and targets), so `direct` shows the tool's own cost.\n"
    );
    let _ = writeln!(out, "{header}\n{rule}");
    for m in &rows {
        let _ = write!(out, "| {} |", m.system.name);
        for &case in &cases {
            let _ = write!(
                out,
                " {} / {} |",
                fmt_opt(m.bulk_cpu(case, false), 3),
                fmt_opt(m.bulk_cpu(case, true), 3)
            );
        }
        out.push('\n');
    }

    // Connection rate.
    let _ = writeln!(
        out,
        "\n### Connection rate ({} concurrent clients; connect, handshake, CONNECT, 64-byte \
         echo, client closes)\n",
        config.concurrency
    );
    let _ = writeln!(
        out,
        "| protocol | system | conn/s | vs direct | p50 µs | p99 µs | p999 µs | p99 vs direct \
         | proxy CPU µs/conn | tool CPU µs/conn | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let direct_rate = direct.and_then(|d| d.rate(Protocol::Direct));
    let direct_p99 = direct.and_then(|d| d.latency(Protocol::Direct, 0.99));
    for protocol in Protocol::ALL {
        if !rows.iter().any(|m| m.system.offers(protocol)) {
            continue;
        }
        for m in &rows {
            if m.system.is_direct() != (protocol == Protocol::Direct) {
                continue;
            }
            if !m.system.offers(protocol) {
                let _ = writeln!(
                    out,
                    "| {protocol} | {} | n/a | | | | | | | | not offered |",
                    m.system.name
                );
                continue;
            }
            if m.rate_runs(protocol).next().is_none() {
                let _ = writeln!(
                    out,
                    "| {protocol} | {} | n/a | | | | | | | | not measured (see below) |",
                    m.system.name
                );
                continue;
            }
            let rate = m.rate(protocol);
            let p99 = m.latency(protocol, 0.99);
            let errors = Medians::errors(m.rate_runs(protocol).map(|r| &r.errors));
            let _ = writeln!(
                out,
                "| {protocol} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                m.system.name,
                fmt_opt(rate, 0),
                fmt_opt(ratio(rate, direct_rate), 2),
                fmt_opt(m.latency(protocol, 0.5), 0),
                fmt_opt(p99, 0),
                fmt_opt(m.latency(protocol, 0.999), 0),
                fmt_opt(ratio(p99, direct_p99), 2),
                fmt_opt(m.rate_cpu(protocol, false), 1),
                fmt_opt(m.rate_cpu(protocol, true), 1),
                errors.summary()
            );
        }
    }

    // Idle tunnels.
    if config.tunnels > 0 {
        let _ = writeln!(
            out,
            "\n### Idle tunnels ({} asked; memory of the proxy process tree from \
             /proc/PID/smaps_rollup)\n",
            config.tunnels
        );
        let _ = writeln!(
            out,
            "The first repetition's reading before opening is the fresh process (it has served \
             one probe connection only); later repetitions start from whatever the allocator \
             kept, so per-tunnel figures are given from the fresh reading and from the run's \
             own.\n"
        );
        let _ = writeln!(
            out,
            "| system | open (median) | RSS fresh MiB | RSS open MiB | RSS/tunnel KiB \
             | PSS/tunnel KiB | RSS/tunnel KiB, same run | threads open | seconds to open \
             | errors |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
        );
        for m in rows.iter().filter(|m| !m.system.is_direct()) {
            let runs = &m.results.idle;
            let Some(fresh) = runs.first().map(|r| r.before) else {
                let _ = writeln!(
                    out,
                    "| {} | n/a | | | | | | | | no pid or failed |",
                    m.system.name
                );
                continue;
            };
            let med = |f: &dyn Fn(&IdleResult) -> Option<f64>| median(runs.iter().filter_map(f));
            let errors = Medians::errors(runs.iter().map(|r| &r.errors));
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
                m.system.name,
                fmt_opt(med(&|r| Some(r.opened as f64)), 0),
                fresh.rss_kib as f64 / 1024.0,
                fmt_opt(med(&|r| Some(r.after.rss_kib as f64 / 1024.0)), 1),
                fmt_opt(med(&|r| r.per_tunnel_from(fresh).0.map(|b| b / 1024.0)), 2),
                fmt_opt(med(&|r| r.per_tunnel_from(fresh).1.map(|b| b / 1024.0)), 2),
                fmt_opt(med(&|r| r.rss_per_tunnel().map(|b| b / 1024.0)), 2),
                fmt_opt(med(&|r| Some(r.threads.1 as f64)), 0),
                fmt_opt(med(&|r| Some(r.open_seconds)), 1),
                errors.summary()
            );
        }
    }

    // Soak.
    if !config.soak_duration.is_zero() {
        let _ = writeln!(
            out,
            "\n### Clients close first, {} s (TIME_WAIT on the proxy's outgoing side)\n",
            config.soak_duration.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "| system | protocol | connections | conn/s | p99 µs | p999 µs | errors |\n\
             |---|---|---:|---:|---:|---:|---|"
        );
        for m in &rows {
            let Some(s) = &m.results.soak else {
                let _ = writeln!(out, "| {} | n/a | | | | | not run |", m.system.name);
                continue;
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} |",
                m.system.name,
                m.first_protocol().map_or("n/a", Protocol::label),
                s.connections,
                s.per_sec(),
                fmt_opt(s.latency_us(0.99), 0),
                fmt_opt(s.latency_us(0.999), 0),
                s.errors.summary()
            );
        }
    }

    // Targets.
    let _ = writeln!(
        out,
        "\n### Against the targets\n\nBulk: the worst of the bulk cases; rate, p99 and CPU per \
         connection: the system's first endpoint (SOCKS5 for triproxy); CPU per GiB: the worst \
         bulk case; RSS per tunnel from the fresh process: {} KiB for names containing `smol`, {} \
         KiB otherwise.\n",
        targets::RSS_KIB_SMOL,
        targets::RSS_KIB_OTHER
    );
    let _ = writeln!(
        out,
        "| system | bulk vs direct ≥ {} | rate vs direct ≥ {} | p99 vs direct ≤ {} | CPU s/GiB ≤ {} \
         | CPU µs/conn ≤ {} | RSS KiB/tunnel | all tunnels open | soak errors = 0 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|",
        targets::BULK_RATIO,
        targets::RATE_RATIO,
        targets::P99_RATIO,
        targets::CPU_PER_GIB,
        targets::CPU_PER_CONN_US
    );
    for m in rows.iter().filter(|m| !m.system.is_direct()) {
        let bulk_worst = cases
            .iter()
            .map(|&c| ratio(m.bulk_rate(c), direct.and_then(|d| d.bulk_rate(c))))
            .collect::<Option<Vec<f64>>>()
            .and_then(|v| v.into_iter().reduce(f64::min));
        let cpu_worst = cases
            .iter()
            .map(|&c| m.bulk_cpu(c, false))
            .collect::<Option<Vec<f64>>>()
            .and_then(|v| v.into_iter().reduce(f64::max));
        let first = m.first_protocol();
        let rate_ratio = first.and_then(|p| ratio(m.rate(p), direct_rate));
        let p99_ratio = first.and_then(|p| ratio(m.latency(p, 0.99), direct_p99));
        let cpu_conn = first.and_then(|p| m.rate_cpu(p, false));
        let rss_limit = if m.system.name.contains("smol") {
            targets::RSS_KIB_SMOL
        } else {
            targets::RSS_KIB_OTHER
        };
        let rss = m.results.idle.first().and_then(|first| {
            median(
                m.results
                    .idle
                    .iter()
                    .filter_map(|r| r.per_tunnel_from(first.before).0.map(|b| b / 1024.0)),
            )
        });
        let all_open = if m.results.idle.is_empty() {
            "n/a".to_owned()
        } else {
            let worst = m.results.idle.iter().map(|r| r.opened).min().unwrap_or(0);
            let errors: u64 = m.results.idle.iter().map(|r| r.errors.total()).sum();
            let ok = worst == config.tunnels && errors == 0;
            format!("{worst}/{} {}", config.tunnels, if ok { "✓" } else { "✗" })
        };
        let soak = match &m.results.soak {
            Some(s) => format!(
                "{} {}",
                s.errors.total(),
                if s.errors.total() == 0 { "✓" } else { "✗" }
            ),
            None => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.system.name,
            check(bulk_worst, |x| x >= targets::BULK_RATIO, 2),
            check(rate_ratio, |x| x >= targets::RATE_RATIO, 2),
            check(p99_ratio, |x| x <= targets::P99_RATIO, 2),
            check(cpu_worst, |x| x <= targets::CPU_PER_GIB, 3),
            check(cpu_conn, |x| x <= targets::CPU_PER_CONN_US, 1),
            check(rss, |x| x <= rss_limit, 2),
            all_open,
            soak
        );
    }

    // Raw repetitions.
    let _ = writeln!(
        out,
        "\n### Every repetition\n\n\"others\" is the average number of CPUs kept busy by \
         other processes during the window (machine busy time from /proc/stat minus the tool \
         and the proxy): a disturbed repetition shows there.\n"
    );
    for m in &rows {
        let _ = writeln!(out, "- **{}**", m.system.name);
        for (case, runs) in &m.results.bulk {
            let values: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "{:.0} (others {:.2})",
                        r.bytes_per_sec() / MIB,
                        others_cpus(r.others_cpu(), r.seconds)
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "  - bulk {} {}, MiB/s: {}",
                case.0,
                case.1.label(),
                values.join(", ")
            );
        }
        for (protocol, runs) in &m.results.rate {
            let values: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "{:.0}/s p99 {} µs (others {:.2})",
                        r.per_sec(),
                        fmt_opt(r.latency_us(0.99), 0),
                        others_cpus(r.others_cpu(), r.seconds)
                    )
                })
                .collect();
            let _ = writeln!(out, "  - rate {protocol}: {}", values.join("; "));
        }
        if !m.results.idle.is_empty() {
            let values: Vec<String> = m
                .results
                .idle
                .iter()
                .map(|r| {
                    format!(
                        "{} open, RSS {} B/tunnel",
                        r.opened,
                        fmt_opt(r.rss_per_tunnel(), 0)
                    )
                })
                .collect();
            let _ = writeln!(out, "  - idle: {}", values.join("; "));
        }
        for f in &m.results.failures {
            let _ = writeln!(out, "  - could not run: {f}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::bulk::BulkResult;
    use super::super::histogram::Histogram;
    use super::super::procfs::Memory;
    use super::super::suite::{Endpoint, SuiteConfig, System};
    use super::super::url::ProxyUrl;
    use super::*;
    use std::time::Duration;

    #[test]
    fn medians() {
        assert_eq!(median([]), None);
        assert_eq!(median([3.0]), Some(3.0));
        assert_eq!(median([5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN, 2.0]), Some(2.0));
    }

    fn bulk(bytes: u64, cpu: Option<f64>) -> BulkResult {
        BulkResult {
            bytes,
            seconds: 1.0,
            proxy_cpu: cpu,
            tool_cpu: 0.5,
            machine_cpu: 1.0,
            errors: ErrorCounts::default(),
        }
    }

    fn rate(conns: u64, latency_ns: u64, cpu: Option<f64>) -> RateResult {
        let mut latency = Histogram::new();
        for _ in 0..conns {
            latency.record(latency_ns);
        }
        RateResult {
            connections: conns,
            seconds: 1.0,
            latency,
            proxy_cpu: cpu,
            tool_cpu: 0.1,
            machine_cpu: 0.1,
            errors: ErrorCounts::default(),
            target_failures: 0,
        }
    }

    #[test]
    fn suite_report_has_ratios_and_targets() {
        let direct = System {
            name: "direct".into(),
            endpoints: vec![Endpoint {
                url: ProxyUrl::DIRECT,
                pid: None,
            }],
        };
        let proxy = System {
            name: "tp-smol".into(),
            endpoints: ["socks5://127.0.0.1:1", "socks4://127.0.0.1:1"]
                .map(|u| Endpoint {
                    url: ProxyUrl::parse(u).unwrap(),
                    pid: Some(1),
                })
                .to_vec(),
        };
        let mut d = SystemResults::default();
        let mut p = SystemResults::default();
        for case in bulk_cases(&[1]) {
            d.bulk.insert(case, vec![bulk(1 << 30, None)]);
            p.bulk.insert(case, vec![bulk(1 << 29, Some(0.1))]);
        }
        d.rate
            .insert(Protocol::Direct, vec![rate(1000, 100_000, None)]);
        p.rate
            .insert(Protocol::Socks5, vec![rate(600, 150_000, Some(0.03))]);
        p.idle.push(IdleResult {
            requested: 10,
            opened: 10,
            errors: ErrorCounts::default(),
            before: Memory {
                rss_kib: 1000,
                pss_kib: 900,
            },
            after: Memory {
                rss_kib: 1030,
                pss_kib: 930,
            },
            threads: (3, 3),
            open_seconds: 0.1,
        });
        let results = SuiteResults {
            config: SuiteConfig {
                systems: vec![direct, proxy],
                reps: 1,
                bulk_streams: vec![1],
                bulk_duration: Duration::from_secs(1),
                rate_duration: Duration::from_secs(1),
                warmup: Duration::ZERO,
                concurrency: 4,
                tunnels: 10,
                soak_duration: Duration::ZERO,
                threads: 1,
                op_timeout: Duration::from_secs(1),
            },
            systems: vec![d, p],
        };
        let md = markdown(&results);
        assert!(md.contains("| direct | 1024 | 1024 | 0 |"), "{md}");
        assert!(
            md.contains("| tp-smol | 512 (0.50x) | 512 (0.50x) | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| SOCKS5 | tp-smol | 600 | 0.60 | 150 |"),
            "{md}"
        );
        assert!(md.contains("| SOCKS4 | tp-smol | n/a |"), "{md}");
        assert!(md.contains("not measured"), "{md}");
        assert!(md.contains("| 1.50 |"), "{md}"); // p99 ratio
                                                  // 0.1 s per 0.5 GiB; 0.03 s per 600 connections = 50 µs; 30 KiB / 10 tunnels.
        assert!(
            md.contains("| tp-smol | 0.50 ✗ | 0.60 ✓ | 1.50 ✓ | 0.200 ✓ | 50.0 ✗ | 3.00 ✓ | 10/10 ✓ | n/a |"),
            "{md}"
        );
        assert!(!md.contains("HTTP CONNECT"), "{md}");
        assert_eq!(Direction::Up.label(), "up");
    }
}
