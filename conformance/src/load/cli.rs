//! The `triproxy-load` command line: `bulk`, `rate`, `idle`, `suite`, `http`,
//! `http-download`, `udp` and `dns`. The binary only calls [`main`]; everything it does is in the library
//! so it can be tested.

use super::bulk::{self, BulkConfig};
use super::dns::{self, DnsConfig};
use super::http_download::{self, DownloadConfig};
use super::http_rate::{self, HttpRateConfig};
use super::idle::{self, IdleConfig};
use super::origin::MAX_BIG;
use super::rate::{self, RateConfig};
use super::report;
use super::suite::{self, SuiteConfig};
use super::targets::Direction;
use super::udp::{self, UdpConfig, UdpVia};
use super::url::{ProxySpec, ProxyUrl, Scheme};
use super::LoadError;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Measures SOCKS and HTTP CONNECT proxies on loopback against direct connections.
#[derive(Debug, Parser)]
#[command(name = "triproxy-load", version, about)]
pub struct Cli {
    /// Executor threads of the tool (rate, idle, suite); default: number of CPUs.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Limit for one connection or tunnel opening, in seconds.
    #[arg(long, global = true, default_value_t = 10.0, value_parser = parse_seconds)]
    op_timeout: f64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DirectionArg {
    Up,
    Down,
}

/// How the `http` subcommands print their result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// One sentence.
    Text,
    /// `key=value` words for scripts (the free-text field last).
    Kv,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bulk throughput of N streams through the proxy.
    Bulk {
        /// `direct`, socks5://[user:pass@]host:port, socks4://host:port or http://host:port.
        #[arg(long, value_parser = parse_url)]
        proxy: ProxyUrl,
        /// Parallel streams (1..=64).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        streams: u16,
        /// Upload (client to target) or download.
        #[arg(long, value_enum, default_value_t = DirectionArg::Up)]
        direction: DirectionArg,
        /// Measurement window in seconds.
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Warm-up before the window, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = parse_warmup)]
        warmup: f64,
        /// The proxy's pid, for its CPU time.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Connection rate and latency of C concurrent clients (64-byte echo each).
    Rate {
        /// `direct` or a proxy URL.
        #[arg(long, value_parser = parse_url)]
        proxy: ProxyUrl,
        /// Concurrent clients (1..=4096).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
        concurrency: u16,
        /// Measurement window in seconds.
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Warm-up before the window, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = parse_warmup)]
        warmup: f64,
        /// The proxy's pid, for its CPU time.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Memory per idle tunnel with N tunnels open.
    Idle {
        /// A proxy URL.
        #[arg(long, value_parser = parse_url)]
        proxy: ProxyUrl,
        /// Tunnels to open and hold (1..=100000).
        #[arg(long, default_value_t = 9000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        tunnels: u64,
        /// The proxy's pid (required: its memory is what is measured).
        #[arg(long)]
        pid: u32,
    },
    /// Requests per second of C keep-alive clients, each sending `GET http://ORIGIN/small`
    /// through an HTTP forward proxy over one persistent connection.
    Http {
        /// `direct` (origin-form requests to the tool's origin) or http://host:port.
        #[arg(long, value_parser = parse_url)]
        proxy: ProxyUrl,
        /// Concurrent clients (1..=4096).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
        concurrency: u16,
        /// Measurement window in seconds.
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Warm-up before the window, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = parse_warmup)]
        warmup: f64,
        /// The proxy's pid, for its CPU time.
        #[arg(long)]
        pid: Option<u32>,
        /// Output: a sentence, or key=value words.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// One large body fetched through an HTTP forward proxy: MiB/s and proxy CPU per GiB.
    HttpDownload {
        /// `direct` or http://host:port.
        #[arg(long, value_parser = parse_url)]
        proxy: ProxyUrl,
        /// Body length in bytes; a K, M or G suffix is binary (256M is 256 MiB).
        #[arg(long, default_value = "256M", value_parser = parse_bytes)]
        bytes: u64,
        /// Limit for the measured fetch, in seconds.
        #[arg(long, default_value_t = 60.0, value_parser = parse_seconds)]
        time_limit: f64,
        /// The proxy's pid, for its CPU time.
        #[arg(long)]
        pid: Option<u32>,
        /// Output: a sentence, or key=value words.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// UDP datagrams per second of N ping-pong flows (W datagrams in flight each) to the
    /// tool's UDP echo: direct, through a SOCKS5 UDP association, or through a UDP port
    /// mapper.
    Udp {
        /// `direct` or socks5://[user:pass@]host:port (UDP ASSOCIATE).
        #[arg(long, value_parser = parse_url, default_value = "direct", conflicts_with = "udppm")]
        proxy: ProxyUrl,
        /// A UDP port mapper at this loopback address, forwarding to the echo (see
        /// --echo-port), instead of --proxy.
        #[arg(long, value_parser = parse_loopback)]
        udppm: Option<SocketAddr>,
        /// Port of the tool's UDP echo on 127.0.0.1 (default: the kernel picks; a mapper
        /// needs a fixed one).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        echo_port: Option<u16>,
        /// Concurrent flows, each with its own socket (and association) (1..=256).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        flows: u16,
        /// Datagrams in flight per flow (1..=256).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        window: u16,
        /// Payload bytes per datagram (16..=8192).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(16..=8192))]
        size: u16,
        /// A datagram unanswered this many milliseconds is lost (1..=10000).
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=10_000))]
        loss_timeout_ms: u16,
        /// Measurement window in seconds.
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Warm-up before the window, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = parse_warmup)]
        warmup: f64,
        /// The proxy's pid, for its CPU time.
        #[arg(long)]
        pid: Option<u32>,
        /// Output: a sentence, or key=value words.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// DNS queries per second of N clients (own UDP socket each) asking a DNS server for
    /// the A records of one name; the warm-up asks the same name, so caches are warm.
    Dns {
        /// The DNS server, host:port on loopback.
        #[arg(long, value_parser = parse_loopback)]
        server: SocketAddr,
        /// The name asked for.
        #[arg(long, default_value = "bench.test")]
        name: String,
        /// Concurrent clients (1..=1024).
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
        clients: u16,
        /// Queries in flight per client (1..=256).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
        window: u16,
        /// A query unanswered this many milliseconds is lost (1..=10000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=10_000))]
        loss_timeout_ms: u16,
        /// Measurement window in seconds.
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        seconds: f64,
        /// Warm-up before the window, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = parse_warmup)]
        warmup: f64,
        /// The server's pid, for its CPU time.
        #[arg(long)]
        pid: Option<u32>,
        /// Output: a sentence, or key=value words.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Everything, for several proxies, repeated; prints Markdown tables. An option given
    /// twice takes the last value (so scripts can append overrides).
    #[command(args_override_self = true)]
    Suite {
        /// `direct` or NAME=URL[,pid=P]; repeat, and repeat a NAME for each endpoint.
        #[arg(long = "proxy", required = true, value_parser = parse_spec)]
        proxies: Vec<ProxySpec>,
        /// Repetitions (1..=15); the tables show medians.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=15))]
        reps: u8,
        /// Bulk window per case, in seconds.
        #[arg(long, default_value_t = 3.0, value_parser = parse_seconds)]
        bulk_seconds: f64,
        /// Connection-rate window per endpoint, in seconds.
        #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
        rate_seconds: f64,
        /// Warm-up before each window, in seconds.
        #[arg(long, default_value_t = 1.0, value_parser = parse_warmup)]
        warmup: f64,
        /// Concurrent clients in the rate test.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
        concurrency: u16,
        /// Idle tunnels per system with a pid (0: skip).
        #[arg(long, default_value_t = 9000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        tunnels: u64,
        /// Close-first soak per system, in seconds (0: skip).
        #[arg(long, default_value_t = 30.0, value_parser = parse_warmup)]
        soak_seconds: f64,
        /// Also write the Markdown to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_url(s: &str) -> Result<ProxyUrl, String> {
    ProxyUrl::parse(s).map_err(|e| e.to_string())
}

fn parse_spec(s: &str) -> Result<ProxySpec, String> {
    ProxySpec::parse(s).map_err(|e| e.to_string())
}

/// `host:port` on loopback (127.0.0.0/8, ::1, `localhost`), through the proxy URL
/// parser so the rules are the same.
fn parse_loopback(s: &str) -> Result<SocketAddr, String> {
    ProxyUrl::parse(&format!("socks5://{s}"))
        .map_err(|e| e.to_string())?
        .addr
        .ok_or_else(|| "expected host:port".to_owned())
}

fn parse_number(s: &str, min: f64, max: f64) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!("expected seconds between {min} and {max}")),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    parse_number(s, 0.05, 3600.0)
}

fn parse_warmup(s: &str) -> Result<f64, String> {
    parse_number(s, 0.0, 3600.0)
}

/// Bytes: digits with an optional binary K, M or G suffix, 1..=[`MAX_BIG`].
fn parse_bytes(s: &str) -> Result<u64, String> {
    let (digits, shift) = match s.as_bytes().last().map(u8::to_ascii_uppercase) {
        Some(b'K') => (s.get(..s.len() - 1), 10),
        Some(b'M') => (s.get(..s.len() - 1), 20),
        Some(b'G') => (s.get(..s.len() - 1), 30),
        _ => (Some(s), 0),
    };
    digits
        .filter(|d| !d.is_empty() && d.len() <= 13 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u64>().ok())
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|n| (1..=MAX_BIG).contains(n))
        .ok_or_else(|| format!("expected 1 to {MAX_BIG} bytes, with an optional K, M or G"))
}

/// Parses the arguments, runs the command, prints results on stdout (progress on stderr).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("triproxy-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), LoadError> {
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let op_timeout = Duration::from_secs_f64(cli.op_timeout);
    match cli.command {
        Command::Bulk {
            proxy,
            streams,
            direction,
            seconds,
            warmup,
            pid,
        } => {
            let r = bulk::run(&BulkConfig {
                proxy,
                streams: usize::from(streams),
                direction: match direction {
                    DirectionArg::Up => Direction::Up,
                    DirectionArg::Down => Direction::Down,
                },
                duration: Duration::from_secs_f64(seconds),
                warmup: Duration::from_secs_f64(warmup),
                pid,
                connect_timeout: op_timeout,
            })?;
            println!("{}", report::bulk_line(&r));
        }
        Command::Rate {
            proxy,
            concurrency,
            seconds,
            warmup,
            pid,
        } => {
            let r = rate::run(&RateConfig {
                proxy,
                concurrency: usize::from(concurrency),
                duration: Duration::from_secs_f64(seconds),
                warmup: Duration::from_secs_f64(warmup),
                pid,
                op_timeout,
                threads,
            })?;
            println!("{}", report::rate_line(&r));
        }
        Command::Idle {
            proxy,
            tunnels,
            pid,
        } => {
            if proxy.addr.is_none() {
                return Err(LoadError::Usage(
                    "idle measures a proxy's memory: give a proxy URL, not direct".into(),
                ));
            }
            let r = idle::run(&IdleConfig {
                proxy,
                tunnels,
                pid,
                op_timeout,
                open_limit: Duration::from_secs(120),
                settle: Duration::from_secs(1),
                threads,
            })?;
            println!("{}", report::idle_line(&r));
        }
        Command::Http {
            proxy,
            concurrency,
            seconds,
            warmup,
            pid,
            format,
        } => {
            let r = http_rate::run(&HttpRateConfig {
                proxy,
                concurrency: usize::from(concurrency),
                duration: Duration::from_secs_f64(seconds),
                warmup: Duration::from_secs_f64(warmup),
                pid,
                op_timeout,
                threads,
            })?;
            match format {
                OutputFormat::Text => println!("{}", report::http_line(&r)),
                OutputFormat::Kv => println!("{}", report::http_kv(&r)),
            }
        }
        Command::HttpDownload {
            proxy,
            bytes,
            time_limit,
            pid,
            format,
        } => {
            let r = http_download::run(&DownloadConfig {
                proxy,
                bytes,
                pid,
                op_timeout,
                time_limit: Duration::from_secs_f64(time_limit),
                threads,
            })?;
            match format {
                OutputFormat::Text => println!("{}", report::download_line(&r)),
                OutputFormat::Kv => println!("{}", report::download_kv(&r)),
            }
        }
        Command::Udp {
            proxy,
            udppm,
            echo_port,
            flows,
            window,
            size,
            loss_timeout_ms,
            seconds,
            warmup,
            pid,
            format,
        } => {
            let via = match (udppm, proxy.scheme) {
                (Some(addr), _) => UdpVia::Mapper(addr),
                (None, Scheme::Direct) => UdpVia::Direct,
                (None, Scheme::Socks5) => UdpVia::Socks5(Box::new(proxy)),
                (None, _) => {
                    return Err(LoadError::Usage(
                        "udp goes through socks5:// (UDP ASSOCIATE), --udppm or direct".into(),
                    ))
                }
            };
            let r = udp::run(&UdpConfig {
                via,
                flows: usize::from(flows),
                window: usize::from(window),
                size: usize::from(size),
                duration: Duration::from_secs_f64(seconds),
                warmup: Duration::from_secs_f64(warmup),
                loss_timeout: Duration::from_millis(u64::from(loss_timeout_ms)),
                echo_port,
                pid,
                op_timeout,
            })?;
            match format {
                OutputFormat::Text => println!("{}", report::udp_line(&r)),
                OutputFormat::Kv => println!("{}", report::udp_kv(&r)),
            }
        }
        Command::Dns {
            server,
            name,
            clients,
            window,
            loss_timeout_ms,
            seconds,
            warmup,
            pid,
            format,
        } => {
            let r = dns::run(&DnsConfig {
                server,
                name,
                clients: usize::from(clients),
                window: usize::from(window),
                duration: Duration::from_secs_f64(seconds),
                warmup: Duration::from_secs_f64(warmup),
                loss_timeout: Duration::from_millis(u64::from(loss_timeout_ms)),
                pid,
            })?;
            match format {
                OutputFormat::Text => println!("{}", report::dns_line(&r)),
                OutputFormat::Kv => println!("{}", report::dns_kv(&r)),
            }
        }
        Command::Suite {
            proxies,
            reps,
            bulk_seconds,
            rate_seconds,
            warmup,
            concurrency,
            tunnels,
            soak_seconds,
            out,
        } => {
            let systems = suite::group(&proxies)?;
            if !systems.iter().any(suite::System::is_direct) {
                eprintln!("triproxy-load: no `direct` system: ratios will be n/a");
            }
            let config = SuiteConfig {
                systems,
                reps: usize::from(reps),
                bulk_streams: vec![1, 8],
                bulk_duration: Duration::from_secs_f64(bulk_seconds),
                rate_duration: Duration::from_secs_f64(rate_seconds),
                warmup: Duration::from_secs_f64(warmup),
                concurrency: usize::from(concurrency),
                tunnels,
                soak_duration: Duration::from_secs_f64(soak_seconds),
                threads,
                op_timeout,
            };
            let results = suite::run(config, &mut |line| eprintln!("triproxy-load: {line}"));
            let md = report::markdown(&results);
            print!("{md}");
            if let Some(path) = out {
                std::fs::write(&path, &md).map_err(LoadError::Setup)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_byte_counts() {
        assert_eq!(parse_bytes("256M"), Ok(256 << 20));
        assert_eq!(parse_bytes("1k"), Ok(1024));
        assert_eq!(parse_bytes("3G"), Ok(3 << 30));
        assert_eq!(parse_bytes("12345"), Ok(12345));
        assert_eq!(parse_bytes("1024G"), Ok(MAX_BIG));
        for bad in [
            "",
            "M",
            "0",
            "-1",
            "1.5M",
            "1025G",
            "99999999999999",
            "1 M",
            "1MB",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_http_subcommands() {
        let cli = Cli::try_parse_from([
            "triproxy-load",
            "http",
            "--proxy",
            "http://127.0.0.1:3128",
            "--pid",
            "9",
            "--format",
            "kv",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Http {
                concurrency: 64,
                pid: Some(9),
                format: OutputFormat::Kv,
                ..
            }
        ));
        let cli =
            Cli::try_parse_from(["triproxy-load", "http-download", "--proxy", "direct"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::HttpDownload {
                bytes: 268_435_456,
                format: OutputFormat::Text,
                ..
            }
        ));
    }

    #[test]
    fn parses_datagram_subcommands() {
        let cli = Cli::try_parse_from([
            "triproxy-load",
            "udp",
            "--proxy",
            "socks5://127.0.0.1:1080",
            "--pid",
            "4",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Udp {
                flows: 8,
                window: 16,
                size: 64,
                udppm: None,
                pid: Some(4),
                ..
            }
        ));
        let cli = Cli::try_parse_from([
            "triproxy-load",
            "udp",
            "--udppm",
            "127.0.0.1:5353",
            "--echo-port",
            "23999",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Udp {
                udppm: Some(_),
                echo_port: Some(23999),
                ..
            }
        ));
        let cli =
            Cli::try_parse_from(["triproxy-load", "dns", "--server", "127.0.0.1:53"]).unwrap();
        assert!(
            matches!(cli.command, Command::Dns { ref name, clients: 16, .. } if name == "bench.test")
        );
        for bad in [
            &["triproxy-load", "udp", "--udppm", "10.0.0.1:53"][..],
            &[
                "triproxy-load",
                "udp",
                "--udppm",
                "127.0.0.1:53",
                "--proxy",
                "socks5://127.0.0.1:1",
            ],
            &["triproxy-load", "udp", "--size", "8"],
            &["triproxy-load", "udp", "--flows", "0"],
            &["triproxy-load", "dns"],
            &["triproxy-load", "dns", "--server", "8.8.8.8:53"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parses_subcommands() {
        let cli = Cli::try_parse_from([
            "triproxy-load",
            "bulk",
            "--proxy",
            "socks5://127.0.0.1:1080",
            "--streams",
            "8",
            "--direction",
            "down",
            "--seconds",
            "2",
            "--pid",
            "7",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Bulk {
                streams: 8,
                direction: DirectionArg::Down,
                pid: Some(7),
                ..
            }
        ));
        let cli = Cli::try_parse_from([
            "triproxy-load",
            "suite",
            "--proxy",
            "direct",
            "--proxy",
            "t=socks5://127.0.0.1:1,pid=3",
            "--reps",
            "3",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::Suite { ref proxies, reps: 3, .. } if proxies.len() == 2)
        );
        let cli = Cli::try_parse_from([
            "triproxy-load",
            "suite",
            "--proxy",
            "direct",
            "--reps",
            "3",
            "--reps",
            "1",
        ])
        .unwrap();
        assert!(
            matches!(cli.command, Command::Suite { ref proxies, reps: 1, .. } if proxies.len() == 1)
        );
        for bad in [
            &["triproxy-load", "bulk", "--proxy", "socks5://8.8.8.8:1080"][..],
            &[
                "triproxy-load",
                "bulk",
                "--proxy",
                "direct",
                "--streams",
                "0",
            ],
            &[
                "triproxy-load",
                "rate",
                "--proxy",
                "direct",
                "--seconds",
                "-1",
            ],
            &["triproxy-load", "idle", "--proxy", "socks5://127.0.0.1:1"],
            &["triproxy-load", "suite"],
            &[
                "triproxy-load",
                "http",
                "--proxy",
                "direct",
                "--format",
                "json",
            ],
            &[
                "triproxy-load",
                "http-download",
                "--proxy",
                "direct",
                "--bytes",
                "0",
            ],
            &[
                "triproxy-load",
                "http-download",
                "--proxy",
                "direct",
                "--bytes",
                "2T",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
