//! `triproxy-conformance`: replays the SOCKS traces against a live server (`socks5`,
//! `socks4`) or against our machines in memory (`memory`), prints a PASS line per trace and
//! mode, the failures grouped by root cause, the skips folded by reason, optionally writes
//! JSON and JUnit reports, and exits 1 if a MUST trace failed (2 on a usage, trace-loading
//! or set-up error). The traces are built into the binary; `--traces DIR` reads others.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use triproxy_conformance::live::{target_ip_for, LiveConfig, Targets};
use triproxy_conformance::report::{markdown_table, rows_from_json, JsonRow, Report};
use triproxy_conformance::trace::{self, Mode, Protocol, Trace};

#[derive(Parser, Debug)]
#[command(
    name = "triproxy-conformance",
    version,
    about = "SOCKS conformance traces: replay against a live server or our machines",
    long_about = "Replays conformance traces (built into this binary) against a live SOCKS \
server, or against triproxy's own machines in memory.\n\n\
WARNING: a live run starts TCP and UDP targets (echo, sink) on the machine it runs on and \
makes the server under test connect to them; it also connects to the BIND and UDP relay \
addresses the server announces. Run it only against servers you are allowed to test.",
    after_help = "Exit codes:\n  \
0  no MUST trace failed (SHOULD and implementation-choice failures are reported only)\n  \
1  at least one MUST trace failed (with --strict: or a SHOULD trace)\n  \
2  usage error, a trace that does not parse, or the targets could not start"
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
    /// Run the HTTP proxy traces (CONNECT, and forwarding of absolute-form requests)
    /// against a live HTTP proxy.
    Http(LiveArgs),
    /// Run every SOCKS trace against our own machines in memory (HTTP traces run live
    /// only).
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
    /// Read traces from this directory (holding socks4/ and socks5/) instead of the ones
    /// built into the binary.
    #[arg(long)]
    traces: Option<PathBuf>,
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
    /// Print only the findings and the counts.
    #[arg(long, conflicts_with = "verbose")]
    quiet: bool,
    /// List every skipped trace with its reason (else skips are counted by reason).
    #[arg(long, short)]
    verbose: bool,
    /// Fail the run (exit 1) on SHOULD failures too, not only MUST.
    #[arg(long)]
    strict: bool,
}

#[derive(Args, Debug)]
struct LiveArgs {
    /// The server under test, e.g. 127.0.0.1:1080 or 192.0.2.10:1080.
    #[arg(long)]
    server: SocketAddr,
    /// The IPv4 address of this machine the server can reach; the targets listen on it.
    /// Default: 127.0.0.1 for a loopback server, else this machine's address on the route
    /// to the server.
    #[arg(long)]
    target_ip: Option<std::net::IpAddr>,
    /// A name the server resolves to the target IP (for the domain-name traces). Default:
    /// `localhost` for a loopback server, else the target IP written as text.
    #[arg(long)]
    target_name: Option<String>,
    /// Runs kept in flight at once (each on its own connection).
    #[arg(long, default_value_t = triproxy_conformance::DEFAULT_JOBS)]
    jobs: usize,
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
        let traces = match &common.traces {
            Some(dir) => trace::load_suite(dir, p).map_err(|e| e.to_string())?,
            None => trace::embedded_suite(p).map_err(|e| e.to_string())?,
        };
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

fn print(report: &Report, common: &CommonArgs) {
    if common.quiet {
        print!("{}", report.render_failures());
    } else if common.verbose {
        print!("{}", report.render_verbose());
    } else {
        print!("{}", report.render_text());
    }
}

/// Whether the run passes: no MUST failure (with `--strict`, no SHOULD failure either).
fn verdict(report: &Report, common: &CommonArgs) -> bool {
    let (must, should, _) = report.failures_by_level();
    must == 0 && (!common.strict || should == 0)
}

fn run(cli: Cli) -> Result<bool, String> {
    match cli.command {
        Cmd::Memory(common) => {
            let traces = load(&common, &[Protocol::Socks4, Protocol::Socks5])?;
            let report = triproxy_conformance::run_memory("memory", &traces);
            print(&report, &common);
            write_reports(&report, &common)?;
            Ok(verdict(&report, &common))
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
        Cmd::Http(args) => live(args, Protocol::Http),
    }
}

fn live(args: LiveArgs, protocol: Protocol) -> Result<bool, String> {
    let traces = load(&args.common, &[protocol])?;
    let ip = match args.target_ip {
        Some(ip) => ip,
        None => target_ip_for(args.server).map_err(|e| {
            format!(
                "cannot find this machine's address towards {}: {e}",
                args.server
            )
        })?,
    };
    if !ip.is_ipv4() {
        return Err(format!(
            "--target-ip {ip}: the traces need an IPv4 target address"
        ));
    }
    let targets =
        Targets::start_on(ip).map_err(|e| format!("cannot start targets on {ip}: {e}"))?;
    if !args.server.ip().is_loopback() {
        eprintln!(
            "triproxy-conformance: targets listen on {ip} (echo {}, sink {}, UDP echo {}); \
             {} must be able to reach them (--target-ip)",
            targets.echo, targets.sink, targets.udp_echo, args.server
        );
    }
    let mut config = LiveConfig::new(args.server);
    config.echo_host = match args.target_name {
        Some(n) => n,
        None if ip.is_loopback() => "localhost".into(),
        None => ip.to_string(),
    };
    config.credentials = match (args.user, args.pass) {
        (Some(u), Some(p)) => Some((u.into_bytes(), p.into_bytes())),
        _ => None,
    };
    config.denied = args.denied;
    config.nxdomain = args.nxdomain;
    let report = triproxy_conformance::run_live(
        protocol.name(),
        &traces,
        &config,
        &targets,
        args.jobs,
        |_| {},
    );
    print(&report, &args.common);
    write_reports(&report, &args.common)?;
    Ok(verdict(&report, &args.common))
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
