//! The command line, shared by the binary and the manual page (`triproxy --man`).

use crate::run::RuntimeKind;
use std::path::PathBuf;

/// The version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TRIPROXY_COMMIT"),
    ")"
);

/// triproxy: a proxy server suite that runs 3proxy configuration files.
///
/// Signals: SIGUSR1 or SIGHUP reload the configuration (established connections go on;
/// listeners that did not change are kept); SIGTERM or SIGINT stop in order (no new
/// clients, established connections get a few seconds, every log record and the counters
/// are written).
///
/// Exit status: 0 after an orderly stop or a successful --check; 2 when the configuration
/// is refused or a service cannot start (the message names the file and line).
#[derive(Debug, clap::Parser)]
#[command(version = VERSION, about, long_about)]
pub struct Cli {
    /// Read and check CONFIG (includes and $files followed, every line validated), print
    /// the services it would start, and exit: 0 if it is usable, 2 with every error
    /// otherwise. Nothing is bound, written, run or resolved.
    #[arg(long, value_name = "CONFIG")]
    pub check: Option<PathBuf>,
    /// Runtime that drives connections.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Std)]
    pub runtime: RuntimeKind,
    /// Executor threads for the smol runtime (default: number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A 3proxy configuration file, or a service name followed by its options (3proxy's
    /// standalone form: `triproxy socks -p1080 -i127.0.0.1`; `triproxy SERVICE --help`
    /// lists a service's options). Services: socks, proxy, tcppm, udppm, dnspr, pop3p,
    /// smtpp, imapp, tlspr, auto.
    /// None: the embedded default (SOCKS on 127.0.0.1:1080, loopback only).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Print this manual page (roff) and exit.
    #[arg(long, hide = true)]
    pub man: bool,
}

/// The manual page, in roff, rendered from [`Cli`] (`deploy/triproxy.1` is this text).
pub fn man_page() -> std::io::Result<String> {
    use clap::CommandFactory as _;
    let mut out = Vec::new();
    // The plain version: the page must not change with every commit.
    let command = Cli::command().version(env!("CARGO_PKG_VERSION"));
    clap_mangen::Man::new(command).render(&mut out)?;
    String::from_utf8(out).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    /// `deploy/triproxy.1` is what `triproxy --man` prints; regenerate it with
    /// `cargo run -p triproxy -- --man > deploy/triproxy.1` after changing the CLI.
    #[test]
    fn the_committed_man_page_is_current() {
        let page = super::man_page().unwrap();
        let committed =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/triproxy.1"))
                .unwrap();
        assert!(
            page.contains(".SH SYNOPSIS") && page.contains("\\-\\-check"),
            "{page}"
        );
        assert_eq!(
            committed, page,
            "deploy/triproxy.1 is stale: cargo run -p triproxy -- --man > deploy/triproxy.1"
        );
    }
}
