//! One-line summaries of the single measurements: a sentence for people (`*_line`) and,
//! for the scripts that collect them, `key=value` words (`*_kv`).
//!
//! A value that was not measured is shown as `n/a`. The suite's Markdown tables are
//! [`report`](super)'s.

use super::super::bulk::BulkResult;
use super::super::datagram::FlowCounts;
use super::super::dns::DnsResult;
use super::super::http_download::DownloadResult;
use super::super::http_rate::HttpRateResult;
use super::super::idle::IdleResult;
use super::super::rate::RateResult;
use super::super::udp::UdpResult;
use super::{fmt_opt, others_cpus, MIB};

/// One line for a bulk measurement.
pub fn bulk_line(r: &BulkResult) -> String {
    format!(
        "{:.1} MiB/s ({} bytes in {:.2} s); proxy CPU {} s/GiB; tool CPU {} s/GiB; \
         other processes {:.2} CPUs; errors {}",
        r.bytes_per_sec() / MIB,
        r.bytes,
        r.seconds,
        fmt_opt(r.proxy_cpu_per_gib(), 3),
        fmt_opt(r.tool_cpu_per_gib(), 3),
        others_cpus(r.others_cpu(), r.seconds),
        r.errors.summary()
    )
}

/// One line for a connection-rate measurement.
pub fn rate_line(r: &RateResult) -> String {
    format!(
        "{:.0} conn/s ({} in {:.2} s); latency p50 {} us, p99 {} us, p999 {} us, max {} us; \
         proxy CPU {} us/conn; tool CPU {} us/conn; other processes {:.2} CPUs; errors {}",
        r.per_sec(),
        r.connections,
        r.seconds,
        fmt_opt(r.latency_us(0.5), 0),
        fmt_opt(r.latency_us(0.99), 0),
        fmt_opt(r.latency_us(0.999), 0),
        fmt_opt(r.latency.max().map(|ns| ns as f64 / 1000.0), 0),
        fmt_opt(r.proxy_cpu_per_conn_us(), 1),
        fmt_opt(r.tool_cpu_per_conn_us(), 1),
        others_cpus(r.others_cpu(), r.seconds),
        r.errors.summary()
    )
}

/// One line for an idle measurement.
pub fn idle_line(r: &IdleResult) -> String {
    format!(
        "{}/{} tunnels open (in {:.1} s); proxy RSS {} -> {} KiB, PSS {} -> {} KiB; \
         per tunnel RSS {} B, PSS {} B; threads {} -> {}; errors {}",
        r.opened,
        r.requested,
        r.open_seconds,
        r.before.rss_kib,
        r.after.rss_kib,
        r.before.pss_kib,
        r.after.pss_kib,
        fmt_opt(r.rss_per_tunnel(), 0),
        fmt_opt(r.pss_per_tunnel(), 0),
        r.threads.0,
        r.threads.1,
        r.errors.summary()
    )
}

/// One line for an HTTP forwarding request-rate measurement.
pub fn http_line(r: &HttpRateResult) -> String {
    format!(
        "{:.0} req/s ({} in {:.2} s); latency p50 {} us, p99 {} us, max {} us; \
         proxy CPU {} s/1k req; tool CPU {} s/1k req; other processes {:.2} CPUs; \
         connections opened in the window {}, closed by the proxy while idle {}; \
         origin saw {} connections, {} responses; errors {}",
        r.per_sec(),
        r.requests,
        r.seconds,
        fmt_opt(r.latency_us(0.5), 0),
        fmt_opt(r.latency_us(0.99), 0),
        fmt_opt(r.latency.max().map(|ns| ns as f64 / 1000.0), 0),
        fmt_opt(r.proxy_cpu_per_1k(), 4),
        fmt_opt(r.tool_cpu_per_1k(), 4),
        others_cpus(r.others_cpu(), r.seconds),
        r.window_connects,
        r.idle_closes,
        r.origin_connections,
        r.origin_responses,
        r.errors.summary()
    )
}

/// [`http_line`] as `key=value` words for scripts; `errors_detail` is last and runs to
/// the end of the line.
pub fn http_kv(r: &HttpRateResult) -> String {
    format!(
        "rps={:.1} requests={} seconds={:.3} p50_ms={} p99_ms={} proxy_cpu_s_per_1k={} \
         tool_cpu_s_per_1k={} others_cpus={:.2} window_connects={} idle_closes={} \
         origin_connections={} errors={} errors_detail={}",
        r.per_sec(),
        r.requests,
        r.seconds,
        fmt_opt(r.latency_us(0.5).map(|us| us / 1000.0), 3),
        fmt_opt(r.latency_us(0.99).map(|us| us / 1000.0), 3),
        fmt_opt(r.proxy_cpu_per_1k(), 4),
        fmt_opt(r.tool_cpu_per_1k(), 4),
        others_cpus(r.others_cpu(), r.seconds),
        r.window_connects,
        r.idle_closes,
        r.origin_connections,
        r.errors.total(),
        r.errors.summary()
    )
}

/// The datagram counts of a window, as words: `sent=.. answered=.. lost=.. failed_answers=..
/// late=.. garbage=..`.
fn flow_counts_kv(c: &FlowCounts) -> String {
    format!(
        "sent={} answered={} lost={} failed_answers={} late={} garbage={}",
        c.sent, c.answered, c.lost, c.failed, c.late, c.garbage
    )
}

/// One line for a UDP datagram-rate measurement.
pub fn udp_line(r: &UdpResult) -> String {
    format!(
        "{:.0} datagrams/s answered ({} in {:.2} s; sent {}, lost {} = {}%, late {}, \
         garbage {}); round trip p50 {} us, p99 {} us, max {} us; proxy CPU {} us/datagram; \
         tool CPU {} us/datagram; other processes {:.2} CPUs; echo at {} answered {}; errors {}",
        r.per_sec(),
        r.counts.answered,
        r.seconds,
        r.counts.sent,
        r.counts.lost,
        fmt_opt(r.loss_percent(), 2),
        r.counts.late,
        r.counts.garbage,
        fmt_opt(r.latency_us(0.5), 0),
        fmt_opt(r.latency_us(0.99), 0),
        fmt_opt(r.counts.latency.max().map(|ns| ns as f64 / 1000.0), 0),
        fmt_opt(r.proxy_cpu_per_dgram_us(), 2),
        fmt_opt(r.tool_cpu_per_dgram_us(), 2),
        others_cpus(r.others_cpu(), r.seconds),
        r.echo,
        r.echoed,
        r.counts.errors.summary()
    )
}

/// [`udp_line`] as `key=value` words for scripts; `errors_detail` is last and runs to the
/// end of the line.
pub fn udp_kv(r: &UdpResult) -> String {
    format!(
        "dps={:.1} {} loss_pct={} seconds={:.3} p50_us={} p99_us={} \
         proxy_cpu_us_per_dgram={} tool_cpu_us_per_dgram={} others_cpus={:.2} echo={} \
         echoed={} errors={} errors_detail={}",
        r.per_sec(),
        flow_counts_kv(&r.counts),
        fmt_opt(r.loss_percent(), 3),
        r.seconds,
        fmt_opt(r.latency_us(0.5), 1),
        fmt_opt(r.latency_us(0.99), 1),
        fmt_opt(r.proxy_cpu_per_dgram_us(), 3),
        fmt_opt(r.tool_cpu_per_dgram_us(), 3),
        others_cpus(r.others_cpu(), r.seconds),
        r.echo,
        r.echoed,
        r.counts.errors.total(),
        r.counts.errors.summary()
    )
}

/// One line for a DNS query-rate measurement.
pub fn dns_line(r: &DnsResult) -> String {
    format!(
        "{:.0} queries/s answered ({} in {:.2} s; sent {}, failed answers {}, lost {}, \
         late {}, garbage {}); latency p50 {} us, p99 {} us, max {} us; server CPU {} \
         us/query; tool CPU {} us/query; other processes {:.2} CPUs; errors {}",
        r.per_sec(),
        r.counts.answered,
        r.seconds,
        r.counts.sent,
        r.counts.failed,
        r.counts.lost,
        r.counts.late,
        r.counts.garbage,
        fmt_opt(r.latency_us(0.5), 0),
        fmt_opt(r.latency_us(0.99), 0),
        fmt_opt(r.counts.latency.max().map(|ns| ns as f64 / 1000.0), 0),
        fmt_opt(r.proxy_cpu_per_query_us(), 2),
        fmt_opt(r.tool_cpu_per_query_us(), 2),
        others_cpus(r.others_cpu(), r.seconds),
        r.counts.errors.summary()
    )
}

/// [`dns_line`] as `key=value` words for scripts; `errors_detail` is last and runs to the
/// end of the line.
pub fn dns_kv(r: &DnsResult) -> String {
    format!(
        "qps={:.1} {} seconds={:.3} p50_us={} p99_us={} proxy_cpu_us_per_query={} \
         tool_cpu_us_per_query={} others_cpus={:.2} errors={} errors_detail={}",
        r.per_sec(),
        flow_counts_kv(&r.counts),
        r.seconds,
        fmt_opt(r.latency_us(0.5), 1),
        fmt_opt(r.latency_us(0.99), 1),
        fmt_opt(r.proxy_cpu_per_query_us(), 3),
        fmt_opt(r.tool_cpu_per_query_us(), 3),
        others_cpus(r.others_cpu(), r.seconds),
        r.counts.errors.total(),
        r.counts.errors.summary()
    )
}

/// One line for an HTTP forwarding download.
pub fn download_line(r: &DownloadResult) -> String {
    format!(
        "{:.1} MiB/s ({} of {} bytes in {:.2} s); proxy CPU {} s/GiB; tool CPU {} s/GiB; \
         other processes {:.2} CPUs; error {}",
        r.bytes_per_sec() / MIB,
        r.bytes,
        r.requested,
        r.seconds,
        fmt_opt(r.proxy_cpu_per_gib(), 3),
        fmt_opt(r.tool_cpu_per_gib(), 3),
        others_cpus(r.others_cpu(), r.seconds),
        r.error.map_or_else(|| "none".to_owned(), |e| e.to_string())
    )
}

/// [`download_line`] as `key=value` words for scripts; `error` is last and runs to the
/// end of the line.
pub fn download_kv(r: &DownloadResult) -> String {
    format!(
        "mib_per_s={:.1} bytes={} requested={} seconds={:.3} proxy_cpu_s_per_gib={} \
         tool_cpu_s_per_gib={} others_cpus={:.2} error={}",
        r.bytes_per_sec() / MIB,
        r.bytes,
        r.requested,
        r.seconds,
        fmt_opt(r.proxy_cpu_per_gib(), 3),
        fmt_opt(r.tool_cpu_per_gib(), 3),
        others_cpus(r.others_cpu(), r.seconds),
        r.error.map_or_else(|| "none".to_owned(), |e| e.to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scripts read `key=value` words up to `errors_detail`, and stop early at a key
    /// named `failed` or `error` (their own markers): no count may be called that.
    fn assert_script_words(line: &str, first: &str) {
        let keys: Vec<&str> = line
            .split(' ')
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .collect();
        assert_eq!(keys.first(), Some(&first), "{line}");
        assert_eq!(keys.last(), Some(&"errors_detail"), "{line}");
        assert!(
            !keys.contains(&"failed") && !keys.contains(&"error"),
            "{line}"
        );
    }

    #[test]
    fn datagram_kv_words() {
        let mut counts = FlowCounts {
            sent: 10,
            answered: 8,
            lost: 2,
            ..FlowCounts::default()
        };
        counts.latency.record(1_500);
        let udp = UdpResult {
            counts: counts.clone(),
            seconds: 2.0,
            proxy_cpu: Some(0.001),
            tool_cpu: 0.002,
            machine_cpu: 0.01,
            echo: "127.0.0.1:9".parse().unwrap(),
            echoed: 8,
        };
        let line = udp_kv(&udp);
        assert_script_words(&line, "dps");
        assert!(
            line.contains("dps=4.0 sent=10 answered=8 lost=2 "),
            "{line}"
        );
        assert!(line.contains("loss_pct=20.000 "), "{line}");
        assert!(line.contains("proxy_cpu_us_per_dgram=125.000 "), "{line}");
        assert!(udp_line(&udp).starts_with("4 datagrams/s answered"));
        let dns = DnsResult {
            counts,
            seconds: 2.0,
            proxy_cpu: None,
            tool_cpu: 0.0,
            machine_cpu: 0.0,
        };
        let line = dns_kv(&dns);
        assert_script_words(&line, "qps");
        assert!(line.contains("proxy_cpu_us_per_query=n/a "), "{line}");
        assert!(dns_line(&dns).starts_with("4 queries/s answered"));
    }
}
