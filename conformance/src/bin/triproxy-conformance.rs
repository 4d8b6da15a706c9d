//! `triproxy-conformance`: replays the SOCKS traces against a live server on loopback
//! (`socks5`, `socks4`) or against our machines in memory (`memory`), prints a PASS / FAIL /
//! SKIP line per trace and mode, optionally writes JSON and JUnit reports, and exits 1 if
//! any trace failed (2 on a usage or trace-loading error).

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use triproxy_conformance::live::{LiveConfig, Targets};
use triproxy_conformance::report::{markdown_table, rows_from_json, JsonRow, Report};
use triproxy_conformance::trace::{self, Mode, Protocol, Trace};

#[derive(Parser, Debug)]
#[command(
    name = "triproxy-conformance",
    version,
    about = "SOCKS conformance traces: replay against a live server or our machines"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the SOCKS5 traces (RFC 1928, RFC 1929) against a live server.
    Socks5(LiveArgs),
    /// Run the SOCKS4/4a traces against a live server.
    Socks4(LiveArgs),
    /// Run every trace against our own machines in memory.
    Memory(CommonArgs),
    /// Print a Markdown comparison of JSON reports: `NAME=FILE` (repeat a NAME to merge
    /// several reports of one implementation).
    Table {
        /// `NAME=FILE` pairs, in column order.
        #[arg(required = true)]
        reports: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct CommonArgs {
    /// Trace directory (holding socks4/ and socks5/).
    #[arg(long, default_value_os_t = trace::default_trace_dir())]
    traces: PathBuf,
    /// Only traces whose name contains this text.
    #[arg(long)]
    only: Option<String>,
    /// Only these modes (comma-separated: whole, split1, pipelined).
    #[arg(long, value_delimiter = ',')]
    modes: Vec<String>,
    /// Write a JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Print only failures and the summary.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct LiveArgs {
    /// The SOCKS server, e.g. 127.0.0.1:1080 (loopback only).
    #[arg(long)]
    server: SocketAddr,
    /// RFC 1929 user name the server accepts (traces needing a no-auth server are skipped).
    #[arg(long, requires = "pass")]
    user: Option<String>,
    /// RFC 1929 password.
    #[arg(long, requires = "user")]
    pass: Option<String>,
    /// A target address the server is configured to refuse (enables the `deny` traces).
    #[arg(long)]
    denied: Option<SocketAddr>,
    /// Allow traces that make the server resolve a name that does not exist (a DNS query).
    #[arg(long)]
    nxdomain: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn load(common: &CommonArgs, protocols: &[Protocol]) -> Result<Vec<Trace>, String> {
    let mut modes = Vec::new();
    for m in &common.modes {
        modes.push(Mode::from_name(m).ok_or_else(|| format!("unknown mode `{m}`"))?);
    }
    let mut out = Vec::new();
    for &p in protocols {
        let traces = trace::load_suite(&common.traces, p).map_err(|e| e.to_string())?;
        for mut t in traces {
            if common.only.as_deref().is_some_and(|o| !t.name.contains(o)) {
                continue;
            }
            if !modes.is_empty() {
                t.modes.retain(|m| modes.contains(m));
            }
            out.push(t);
        }
    }
    Ok(out)
}

fn write_reports(report: &Report, common: &CommonArgs) -> Result<(), String> {
    if let Some(path) = &common.json {
        std::fs::write(path, report.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &common.junit {
        std::fs::write(path, report.to_junit()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn print(report: &Report, quiet: bool) {
    if quiet {
        print!("{}", report.render_failures());
    } else {
        print!("{}", report.render_text());
    }
}

fn run(cli: Cli) -> Result<bool, String> {
    match cli.command {
        Cmd::Memory(common) => {
            let traces = load(&common, &[Protocol::Socks4, Protocol::Socks5])?;
            let report = triproxy_conformance::run_memory("memory", &traces);
            print(&report, common.quiet);
            write_reports(&report, &common)?;
            Ok(!report.has_failures())
        }
        Cmd::Table { reports } => {
            let mut columns: Vec<(String, Vec<JsonRow>)> = Vec::new();
            for arg in reports {
                let (name, file) = arg
                    .split_once('=')
                    .ok_or_else(|| format!("`{arg}`: expected NAME=FILE"))?;
                let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
                let rows = rows_from_json(&text).map_err(|e| format!("{file}: {e}"))?;
                match columns.iter_mut().find(|(n, _)| n == name) {
                    Some((_, r)) => r.extend(rows),
                    None => columns.push((name.to_string(), rows)),
                }
            }
            print!("{}", markdown_table(&columns));
            Ok(true)
        }
        Cmd::Socks5(args) => live(args, Protocol::Socks5),
        Cmd::Socks4(args) => live(args, Protocol::Socks4),
    }
}

fn live(args: LiveArgs, protocol: Protocol) -> Result<bool, String> {
    for addr in [Some(args.server), args.denied].into_iter().flatten() {
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{addr} is not a loopback address: the conformance harness only tests local servers"
            ));
        }
    }
    let traces = load(&args.common, &[protocol])?;
    let targets = Targets::start().map_err(|e| format!("cannot start targets: {e}"))?;
    let mut config = LiveConfig::new(args.server);
    config.credentials = match (args.user, args.pass) {
        (Some(u), Some(p)) => Some((u.into_bytes(), p.into_bytes())),
        _ => None,
    };
    config.denied = args.denied;
    config.nxdomain = args.nxdomain;
    let report =
        triproxy_conformance::run_live(protocol.name(), &traces, &config, &targets, |_| {});
    print(&report, args.common.quiet);
    write_reports(&report, &args.common)?;
    Ok(!report.has_failures())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("triproxy-conformance: {e}");
            ExitCode::from(2)
        }
    }
}
