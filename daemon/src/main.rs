//! `triproxy`: run with no arguments for the embedded loopback-only default, with a path to
//! read a 3proxy configuration file, or as `triproxy socks -p1080 -i127.0.0.1` (3proxy's
//! standalone form; every service command works this way).

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use triproxy::cli::Cli;
use triproxy::config::{self, Config, ConfigError, ServiceKind};
use triproxy::control::{self, Source};
use triproxy::counters::{self, Accounting};
use triproxy::run::{self, Services};

fn source_of(args: &[String]) -> Result<Source, String> {
    match args {
        [] => Ok(Source::Embedded),
        [service, options @ ..] if ServiceKind::is_command(service) => Ok(Source::Standalone {
            service: service.clone(),
            options: options.to_vec(),
        }),
        [path] => Ok(Source::File(PathBuf::from(path))),
        [first, ..] => Err(format!(
            "unexpected arguments after `{first}`: give one configuration file, or a service and its options"
        )),
    }
}

fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        eprintln!("triproxy: {e}");
    }
}

/// A warning for every service that anyone on the network may use: it listens on all
/// addresses, asks no password and has no ACL.
fn open_proxy_warnings(config: &Config) -> Vec<String> {
    config
        .services
        .iter()
        .filter(|s| {
            s.listen.ip().is_unspecified()
                && !s.auth.needs_password()
                && s.acl.is_empty()
                && !matches!(s.kind, ServiceKind::DnsPr(_))
        })
        .map(|s| {
            format!(
                "{}:{}: warning: `{}` listens on {} without authentication or ACL: this is an \
                 open proxy that anyone who can reach the port may use",
                s.origin.0,
                s.origin.1,
                s.kind.command(),
                s.listen
            )
        })
        .collect()
}

/// `--check`: the whole file, every error, and what would start.
fn check(path: &std::path::Path) -> ExitCode {
    match config::load_all(path) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("triproxy: {w}");
            }
            for w in open_proxy_warnings(&config) {
                eprintln!("triproxy: {w}");
            }
            for s in &config.services {
                let transport = if s.kind.datagram().is_some() {
                    "udp"
                } else {
                    "tcp"
                };
                println!(
                    "{} {} {} {transport} ({}:{})",
                    s.kind.command(),
                    s.listen.ip(),
                    s.listen.port(),
                    s.origin.0,
                    s.origin.1
                );
            }
            println!(
                "{}: configuration OK, {} service(s)",
                path.display(),
                config.services.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            print_errors(&errors);
            eprintln!("triproxy: {}: {} error(s)", path.display(), errors.len());
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.man {
        return match triproxy::cli::man_page() {
            Ok(page) => {
                print!("{page}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("triproxy: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(path) = &cli.check {
        return check(path);
    }
    if let [service, rest @ ..] = cli.args.as_slice() {
        if ServiceKind::is_command(service) && rest.iter().any(|a| a == "--help" || a == "-h") {
            print!("{}", config::service_help(service));
            return ExitCode::SUCCESS;
        }
    }
    let source = match source_of(&cli.args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("triproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let config = match source.load() {
        Ok(c) => c,
        Err(errors) => {
            print_errors(&errors);
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
    for w in open_proxy_warnings(&config) {
        eprintln!("triproxy: {w}");
    }
    // Before any service starts: a damaged counter file stops the daemon, rather than
    // letting every quota start again from zero.
    let accounting = match Accounting::open(&config) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("triproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let bound = match run::bind(&config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("triproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let process = config.process.clone();
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("triproxy: {e}");
        ExitCode::from(2)
    };
    if let Err(e) = triproxy::process::detach(&process) {
        return fail(&e);
    }
    // Caught after detaching (the signal machinery's reactor must live in the process
    // that reads it) and before any thread starts, so that no thread finds the default
    // action.
    let signals = match control::catch_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("triproxy: cannot catch signals: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = triproxy::process::write_pidfile(&process) {
        return fail(&e);
    }
    triproxy::process::run_system(&process);
    // One metrics registry for the life of the process; the admin's /R sends SIGUSR1, the
    // signal a reload comes on.
    let metrics = triproxy::metrics::Metrics::new();
    let reload = Some(triproxy::admin::reload_by_signal());
    let prepared = match Services::prepare(config, bound, metrics, reload) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    if let Err(e) = triproxy::process::drop_privileges(&process) {
        return fail(&e);
    }
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let mut services = match prepared.start(cli.runtime, threads) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let accounting: Arc<Mutex<Accounting>> = match counters::spawn_minutely(accounting) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("triproxy: cannot start the counter thread: {e}");
            return ExitCode::from(2);
        }
    };
    let (events, received) = control::channel();
    if let Err(e) = control::forward_signals(signals, events.clone()) {
        eprintln!("triproxy: cannot start the signal thread: {e}");
        return ExitCode::from(2);
    }
    let watched: control::Watched = Arc::new(Mutex::new(process.monitor.clone()));
    if let Err(e) = control::watch(Arc::clone(&watched), events) {
        eprintln!("triproxy: cannot start the monitor thread: {e}");
        return ExitCode::from(2);
    }
    for l in services.listening() {
        let transport = if l.udp { "udp, " } else { "" };
        eprintln!(
            "triproxy: {} listening on {} ({transport}runtime {})",
            l.service, l.addr, cli.runtime
        );
    }
    triproxy::notify::ready(services.listening().len());
    let why = control::run(&source, &mut services, &accounting, &watched, &received);
    eprintln!("triproxy: {why}: stopping");
    control::stop(&mut services, &accounting);
    eprintln!("triproxy: stopped");
    ExitCode::SUCCESS
}
