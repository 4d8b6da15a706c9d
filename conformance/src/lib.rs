//! triproxy's conformance suite: trace files written from RFC 1928, RFC 1929, the
//! SOCKS4/4a protocol text and RFC 9110/9112 (HTTP proxies), built into the binary, replayed
//! in memory against our sans-IO SOCKS machines (part of `cargo test`) and over TCP/UDP
//! against any live SOCKS or HTTP proxy, with PASS / FAIL / SKIP reports as text (failures
//! grouped by root cause, each marked MUST, SHOULD or implementation choice), JSON and
//! JUnit XML. The trace format is documented in `conformance/TRACES.md`.
//!
//! - [`trace`]: the trace format's parser, and the traces built into the binary.
//! - [`matcher`]: matching bytes against a trace's alternatives; the byte difference.
//! - [`replay`]: the engine that runs a trace over a back end.
//! - [`memory`]: the in-memory back end around `triproxy_socks::server::Server` (and the
//!   client-trace runner for `triproxy_socks::client::Client`).
//! - [`live`]: the TCP/UDP back end and the harness's targets (echo, sink, UDP echo, HTTP
//!   origin), on loopback or on the address a remote server reaches.
//! - [`report`]: findings, text, JSON and JUnit output.
//! - `load`: the load benchmark tool (a separate tool sharing this crate).
//!
//! The suite checks behaviour on the wire, not logs or policy.
//!
//! ```
//! use triproxy_conformance::{memory, trace::{parse, Mode, Protocol}, replay::Outcome};
//! let text = concat!(
//!     "# RFC 1928 §3: a greeting without acceptable methods gets X'FF'\n",
//!     "level: must\n",
//!     "client: 05 01 80      # one method, a private one\n",
//!     "server: 05 ff         # NO ACCEPTABLE METHODS\n",
//!     "client: close\n",
//!     "server: close\n",
//! );
//! let t = parse("socks5/example", Protocol::Socks5, text).unwrap();
//! assert_eq!(t.title, "RFC 1928 §3: a greeting without acceptable methods gets X'FF'");
//! assert_eq!(memory::replay(&t, Mode::Split1), Outcome::Pass);
//! ```

pub mod live;
pub mod load;
pub mod matcher;
pub mod memory;
pub mod replay;
pub mod report;
pub mod trace;

use report::{Report, TraceResult};
use std::time::Instant;
use trace::Trace;

/// Replays every trace in each of its modes against our machines in memory.
pub fn run_memory(suite: &str, traces: &[Trace]) -> Report {
    let mut report = Report::new(suite, "in-memory machines");
    for t in traces {
        for &mode in &t.modes {
            let start = Instant::now();
            let outcome = memory::replay(t, mode);
            report
                .results
                .push(TraceResult::new(t, mode, outcome, start.elapsed()));
        }
    }
    report
}

/// How many runs a live replay keeps in flight by default.
pub const DEFAULT_JOBS: usize = 8;

/// Replays every server trace in each of its modes against a live server, `jobs` runs at
/// a time (each on its own connection; a server that stays silent where bytes are expected
/// costs a read deadline, and running in parallel keeps such a server's run short).
/// Client traces are left out (they test our client machine, in memory only). Results
/// are in trace order; `progress` sees each as it completes.
pub fn run_live(
    suite: &str,
    traces: &[Trace],
    config: &live::LiveConfig,
    targets: &live::Targets,
    jobs: usize,
    mut progress: impl FnMut(&TraceResult),
) -> Report {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    let runs: Vec<(&Trace, trace::Mode)> = traces
        .iter()
        .filter(|t| t.side == trace::Side::Server)
        .flat_map(|t| t.modes.iter().map(move |&m| (t, m)))
        .collect();
    let next = AtomicUsize::new(0);
    let mut slots: Vec<Option<TraceResult>> = vec![None; runs.len()];
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..jobs.clamp(1, 64).min(runs.len().max(1)) {
            let tx = tx.clone();
            let (runs, next) = (&runs, &next);
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(t, mode)) = runs.get(i) else {
                    return;
                };
                let start = Instant::now();
                let outcome = live::replay(t, mode, config, targets);
                if tx
                    .send((i, TraceResult::new(t, mode, outcome, start.elapsed())))
                    .is_err()
                {
                    return;
                }
            });
        }
        drop(tx);
        for (i, r) in rx {
            progress(&r);
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(r);
            }
        }
    });
    let mut report = Report::new(suite, &config.server.to_string());
    report.results = slots.into_iter().flatten().collect();
    report
}
