//! The whole benchmark in one run: for each system (a name with one or more endpoints, each
//! with the pid of the process serving it), idle tunnels, bulk on 1 and 8 streams both ways, and the connection rate of
//! every endpoint, repeated R times with the systems interleaved (so slow drifts of the
//! machine hit every system alike), then one long close-first soak per system.
//!
//! Results are kept per repetition; [`super::report`] turns them into medians and ratios.
//! A measurement that cannot run (say the proxy died) is noted and the suite goes on.

use super::bulk::{self, BulkConfig, BulkResult};
use super::conn::{open_async, read_exact_after, with_timeout, write_all_async, OpError};
use super::idle::{self, IdleConfig, IdleResult};
use super::rate::{self, RateConfig, RateResult};
use super::runner::Runner;
use super::targets::{spawn_echo, Direction, ECHO_LEN};
use super::url::{Protocol, ProxySpec, ProxyUrl, Scheme};
use super::LoadError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most systems in one suite.
pub const MAX_SYSTEMS: usize = 32;
/// Most endpoints of one system.
pub const MAX_ENDPOINTS: usize = 8;
/// Most repetitions.
pub const MAX_REPS: usize = 15;

/// One proxy (or `direct`) with its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// Row name.
    pub name: String,
    /// Endpoints in the order given; the first is used for bulk, idle and the soak.
    pub endpoints: Vec<Endpoint>,
}

/// One way into a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where and how.
    pub url: ProxyUrl,
    /// The process serving it, charged with CPU and memory (a system may run one process
    /// per endpoint, as microsocks does for its authenticated port).
    pub pid: Option<u32>,
}

impl System {
    /// Whether this is the reference (its first endpoint is direct).
    pub fn is_direct(&self) -> bool {
        self.endpoints
            .first()
            .is_some_and(|e| e.url.scheme == Scheme::Direct)
    }

    /// Whether some endpoint speaks `protocol`.
    pub fn offers(&self, protocol: Protocol) -> bool {
        self.endpoints.iter().any(|e| e.url.protocol() == protocol)
    }
}

/// Groups specs by name, in order of first appearance. Fails on two endpoints of one
/// protocol under one name, on a `direct` mixed with proxies, and
/// on more than [`MAX_SYSTEMS`] systems or [`MAX_ENDPOINTS`] endpoints.
pub fn group(specs: &[ProxySpec]) -> Result<Vec<System>, LoadError> {
    let mut systems: Vec<System> = Vec::new();
    for spec in specs {
        let index = match systems.iter().position(|s| s.name == spec.name) {
            Some(i) => i,
            None => {
                if systems.len() >= MAX_SYSTEMS {
                    return Err(usage(format!("at most {MAX_SYSTEMS} systems")));
                }
                systems.push(System {
                    name: spec.name.clone(),
                    endpoints: Vec::new(),
                });
                systems.len() - 1
            }
        };
        let Some(system) = systems.get_mut(index) else {
            continue;
        };
        let protocol = spec.url.protocol();
        if system.offers(protocol) {
            return Err(usage(format!(
                "{}: two {protocol} endpoints (use another name)",
                spec.name
            )));
        }
        if !system.endpoints.is_empty() && (protocol == Protocol::Direct || system.is_direct()) {
            return Err(usage(format!(
                "{}: `direct` cannot share a name with proxies",
                spec.name
            )));
        }
        if system.endpoints.len() >= MAX_ENDPOINTS {
            return Err(usage(format!(
                "{}: at most {MAX_ENDPOINTS} endpoints",
                spec.name
            )));
        }
        system.endpoints.push(Endpoint {
            url: spec.url.clone(),
            pid: spec.pid,
        });
    }
    Ok(systems)
}

fn usage(message: String) -> LoadError {
    LoadError::Usage(message)
}

/// The suite's settings.
#[derive(Debug, Clone)]
pub struct SuiteConfig {
    /// Systems to measure.
    pub systems: Vec<System>,
    /// Repetitions, 1..=[`MAX_REPS`].
    pub reps: usize,
    /// Stream counts for bulk (1 and 8).
    pub bulk_streams: Vec<usize>,
    /// Bulk window per case.
    pub bulk_duration: Duration,
    /// Connection-rate window per endpoint.
    pub rate_duration: Duration,
    /// Warm-up before each window, and the settling time of the idle test.
    pub warmup: Duration,
    /// Concurrent clients in the rate test.
    pub concurrency: usize,
    /// Idle tunnels (0: skip the idle test).
    pub tunnels: u64,
    /// Close-first soak window (zero: skip).
    pub soak_duration: Duration,
    /// Executor threads of the tool.
    pub threads: usize,
    /// Limit of one connection or tunnel opening.
    pub op_timeout: Duration,
}

/// The bulk cases in table order.
pub fn bulk_cases(streams: &[usize]) -> Vec<(usize, Direction)> {
    streams
        .iter()
        .flat_map(|&n| [(n, Direction::Up), (n, Direction::Down)])
        .collect()
}

/// Everything measured for one system, per repetition.
#[derive(Debug, Clone, Default)]
pub struct SystemResults {
    /// Bulk results per (streams, direction).
    pub bulk: BTreeMap<(usize, Direction), Vec<BulkResult>>,
    /// Connection-rate results per protocol.
    pub rate: BTreeMap<Protocol, Vec<RateResult>>,
    /// Idle results.
    pub idle: Vec<IdleResult>,
    /// The soak, on the first endpoint.
    pub soak: Option<RateResult>,
    /// Measurements that could not run, with the reason.
    pub failures: Vec<String>,
}

/// The suite's outcome: the settings and the results of each system, in order.
#[derive(Debug, Clone)]
pub struct SuiteResults {
    /// What was run.
    pub config: SuiteConfig,
    /// One entry per system of `config.systems`.
    pub systems: Vec<SystemResults>,
}

/// Opens one tunnel through `proxy` to a fresh echo target and checks the echo: a quick
/// way to find a wrong URL before a long run.
pub fn probe(proxy: &ProxyUrl, timeout: Duration) -> Result<(), LoadError> {
    let runner = Runner::new(1).map_err(LoadError::Setup)?;
    let (echo, _) = spawn_echo(&runner, 1, timeout).map_err(LoadError::Setup)?;
    let proxy = proxy.clone();
    let outcome = runner.wait(runner.spawn(async move {
        with_timeout(timeout, async {
            let (mut s, ahead) = open_async(&proxy, echo, timeout).await?;
            let sent = [7u8; ECHO_LEN];
            write_all_async(&mut s, &sent).await?;
            let mut back = [0u8; ECHO_LEN];
            read_exact_after(&mut s, &ahead, &mut back).await?;
            if back != sent {
                return Err(OpError::EchoMismatch);
            }
            Ok(())
        })
        .await
    }));
    outcome.map_err(|e| LoadError::Usage(format!("probe failed: {e}")))
}

/// Runs the suite, printing progress lines through `progress`.
pub fn run(config: SuiteConfig, progress: &mut dyn FnMut(&str)) -> SuiteResults {
    let mut results = vec![SystemResults::default(); config.systems.len()];
    let reps = config.reps.clamp(1, MAX_REPS);
    let cases = bulk_cases(&config.bulk_streams);

    // Endpoints that fail a probe are left out of every measurement.
    let mut usable: Vec<Vec<Endpoint>> = Vec::with_capacity(config.systems.len());
    for (system, out) in config.systems.iter().zip(results.iter_mut()) {
        let mut ok = Vec::new();
        for endpoint in &system.endpoints {
            match probe(&endpoint.url, config.op_timeout) {
                Ok(()) => ok.push(endpoint.clone()),
                Err(e) => {
                    let line = format!("{} {}: {e}; skipped", system.name, endpoint.url);
                    progress(&line);
                    out.failures.push(line);
                }
            }
        }
        usable.push(ok);
    }

    for rep in 1..=reps {
        for ((system, endpoints), out) in config.systems.iter().zip(&usable).zip(&mut results) {
            let Some(first) = endpoints.first() else {
                continue;
            };
            let tag = format!("rep {rep}/{reps} {}", system.name);
            if let (Some(pid), true) = (first.pid, config.tunnels > 0) {
                progress(&format!("{tag}: idle {} tunnels", config.tunnels));
                let r = idle::run(&IdleConfig {
                    proxy: first.url.clone(),
                    tunnels: config.tunnels,
                    pid,
                    op_timeout: config.op_timeout,
                    open_limit: Duration::from_secs(120),
                    settle: config.warmup,
                    threads: config.threads,
                });
                record(&mut out.idle, r, &tag, "idle", &mut out.failures, progress);
            }
            for &(streams, direction) in &cases {
                progress(&format!("{tag}: bulk {streams} {}", direction.label()));
                let r = bulk::run(&BulkConfig {
                    proxy: first.url.clone(),
                    streams,
                    direction,
                    duration: config.bulk_duration,
                    warmup: config.warmup,
                    pid: first.pid,
                    connect_timeout: config.op_timeout,
                });
                let slot = out.bulk.entry((streams, direction)).or_default();
                record(slot, r, &tag, "bulk", &mut out.failures, progress);
            }
            for endpoint in endpoints {
                let protocol = endpoint.url.protocol();
                progress(&format!("{tag}: rate {protocol}"));
                let r = rate::run(&RateConfig {
                    proxy: endpoint.url.clone(),
                    concurrency: config.concurrency,
                    duration: config.rate_duration,
                    warmup: config.warmup,
                    pid: endpoint.pid,
                    op_timeout: config.op_timeout,
                    threads: config.threads,
                });
                let slot = out.rate.entry(protocol).or_default();
                record(slot, r, &tag, "rate", &mut out.failures, progress);
            }
        }
    }

    if !config.soak_duration.is_zero() {
        for ((system, endpoints), out) in config.systems.iter().zip(&usable).zip(&mut results) {
            let Some(first) = endpoints.first() else {
                continue;
            };
            progress(&format!(
                "{}: close-first soak {} s",
                system.name,
                config.soak_duration.as_secs()
            ));
            match rate::run(&RateConfig {
                proxy: first.url.clone(),
                concurrency: config.concurrency,
                duration: config.soak_duration,
                warmup: Duration::ZERO,
                pid: first.pid,
                op_timeout: config.op_timeout,
                threads: config.threads,
            }) {
                Ok(r) => out.soak = Some(r),
                Err(e) => out.failures.push(format!("{}: soak: {e}", system.name)),
            }
        }
    }

    SuiteResults {
        config,
        systems: results,
    }
}

fn record<T>(
    slot: &mut Vec<T>,
    result: Result<T, LoadError>,
    tag: &str,
    what: &str,
    failures: &mut Vec<String>,
    progress: &mut dyn FnMut(&str),
) {
    match result {
        Ok(r) => slot.push(r),
        Err(e) => {
            let line = format!("{tag}: {what}: {e}");
            progress(&line);
            failures.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ProxySpec {
        ProxySpec::parse(s).unwrap()
    }

    #[test]
    fn groups_endpoints_by_name() {
        let systems = group(&[
            spec("direct"),
            spec("t=socks5://127.0.0.1:1,pid=5"),
            spec("t=socks5://a:b@127.0.0.1:2"),
            spec("m=socks5://127.0.0.1:3,pid=6"),
            spec("t=socks4://127.0.0.1:1,pid=5"),
        ])
        .unwrap();
        assert_eq!(systems.len(), 3);
        assert!(systems[0].is_direct());
        assert_eq!(systems[1].name, "t");
        let pids: Vec<_> = systems[1].endpoints.iter().map(|e| e.pid).collect();
        assert_eq!(pids, [Some(5), None, Some(5)]);
        let protocols: Vec<_> = systems[1]
            .endpoints
            .iter()
            .map(|e| e.url.protocol())
            .collect();
        assert_eq!(
            protocols,
            [Protocol::Socks5, Protocol::Socks5Auth, Protocol::Socks4]
        );
        assert_eq!(systems[2].endpoints[0].pid, Some(6));
        assert!(systems[1].offers(Protocol::Socks4));
        assert!(!systems[1].offers(Protocol::HttpConnect));
    }

    #[test]
    fn rejects_inconsistent_groups() {
        assert!(group(&[
            spec("t=socks5://127.0.0.1:1"),
            spec("t=socks5://127.0.0.1:2")
        ])
        .is_err());
        assert!(group(&[spec("direct"), spec("direct=socks5://127.0.0.1:2")]).is_err());
        assert!(group(&[spec("t=socks5://127.0.0.1:2"), spec("t=direct")]).is_err());
        let many: Vec<ProxySpec> = (0..=MAX_SYSTEMS)
            .map(|i| spec(&format!("s{i}=direct")))
            .collect();
        assert!(group(&many).is_err());
    }

    #[test]
    fn bulk_case_order() {
        assert_eq!(
            bulk_cases(&[1, 8]),
            [
                (1, Direction::Up),
                (1, Direction::Down),
                (8, Direction::Up),
                (8, Direction::Down)
            ]
        );
    }
}
