//! `triproxy`: run with no arguments for the embedded loopback-only default, with a path to
//! read a 3proxy configuration file, or as `triproxy socks -p1080 -i127.0.0.1` (3proxy's
//! standalone form; also `proxy`, and `tcppm [options] SRCPORT DSTHOST DSTPORT`).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use triproxy::admin;
use triproxy::config::{self, Config, ServiceKind};
use triproxy::counters::{self, Accounting};
use triproxy::metrics::Metrics;
use triproxy::run::{self, RuntimeKind};

/// triproxy: a SOCKS 4/4a/5 proxy server that reads 3proxy configuration files.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Runtime that drives connections.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Std)]
    runtime: RuntimeKind,
    /// Executor threads for the smol runtime (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
    /// A 3proxy configuration file, or a service name (`socks`, `proxy`, `tcppm`) followed
    /// by its options (and for `tcppm`, SRCPORT DSTHOST DSTPORT).
    /// None: the embedded default (SOCKS on 127.0.0.1:1080, loopback only).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn load(args: &[String]) -> Result<Config, String> {
    match args {
        [] => config::parse_str(
            triproxy::EMBEDDED_DEFAULT,
            "<embedded default>",
            std::path::Path::new("."),
        )
        .map_err(|e| e.to_string()),
        [service, options @ ..] if ServiceKind::is_command(service) => {
            config::parse_standalone(service, options).map_err(|e| e.to_string())
        }
        [path] => config::load(&PathBuf::from(path)).map_err(|e| e.to_string()),
        [first, ..] => Err(format!(
            "unexpected arguments after `{first}`: give one configuration file, or `socks`, `proxy` or `tcppm` and its options"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load(&cli.args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("triproxy: {e}");
            return ExitCode::from(2);
        }
    };
    if config.services.is_empty() {
        eprintln!("triproxy: the configuration starts no service");
        return ExitCode::from(2);
    }
    for w in &config.warnings {
        eprintln!("triproxy: {w}");
    }
    // Before any service starts: a damaged counter file stops the daemon, rather than
    // letting every quota start again from zero.
    let accounting = match Accounting::open(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("triproxy: {e}");
            return ExitCode::from(1);
        }
    };
    // Caught before any service starts, so that a stop at any moment saves the counters.
    let signals = if config.counter.is_some() && !accounting.is_idle() {
        match counters::exit_signals() {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!(
                    "triproxy: cannot catch SIGTERM/SIGINT ({e}): counters are saved every minute only"
                );
                None
            }
        }
    } else {
        None
    };
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    // One registry for the life of the process: a reload starts services anew with it.
    let metrics = Metrics::new();
    match run::start(
        &config,
        cli.runtime,
        threads,
        &metrics,
        Some(admin::reload_by_signal()),
    ) {
        Ok(listening) => {
            for l in &listening {
                let transport = if l.udp { "udp, " } else { "" };
                eprintln!(
                    "triproxy: {} listening on {} ({transport}runtime {})",
                    l.service, l.addr, cli.runtime
                );
            }
        }
        Err(e) => {
            eprintln!("triproxy: {e}");
            return ExitCode::from(1);
        }
    }
    if !accounting.is_idle() {
        match counters::spawn_minutely(accounting) {
            Ok(shared) => {
                if let Some(signals) = signals {
                    // SIGTERM or SIGINT: the counters are saved; stop.
                    counters::save_on_signal(signals, &shared);
                    return ExitCode::SUCCESS;
                }
            }
            Err(e) => {
                eprintln!("triproxy: cannot start the counter thread: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // The services run on their own threads until the process is stopped.
    loop {
        std::thread::park();
    }
}
