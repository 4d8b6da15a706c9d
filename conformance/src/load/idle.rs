//! Memory per idle tunnel: open N tunnels through the proxy to the tool's hold target,
//! check each carries the target's one-byte greeting, keep them all open and idle, and
//! compare the proxy's RSS and PSS (`/proc/PID/smaps_rollup`, summed over the process and
//! its descendants) before and after: (after - before) / N.
//!
//! The tool needs two descriptors per tunnel (its client socket and the target's accepted
//! socket), so it raises its own RLIMIT_NOFILE to the hard limit and refuses to start if
//! the tunnels cannot fit. The proxy needs its own two per tunnel; that is the proxy's
//! limit, not the tool's. Memory the proxy kept from earlier load (allocator caches) makes
//! the per-tunnel figure smaller than on a fresh process.

use super::conn::{open_async, read_exact_after, with_timeout, ErrorCounts, OpError};
use super::procfs::{self, Memory};
use super::runner::Runner;
use super::targets::spawn_hold;
use super::url::ProxyUrl;
use super::LoadError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most tunnels in one measurement.
pub const MAX_TUNNELS: u64 = 100_000;
/// Descriptors kept free besides the two per tunnel.
pub const FD_SLACK: u64 = 256;
/// Tasks opening tunnels at once.
pub const OPENERS: u64 = 32;

/// What to measure.
#[derive(Debug, Clone)]
pub struct IdleConfig {
    /// Proxy to go through.
    pub proxy: ProxyUrl,
    /// Tunnels to hold open, 1..=[`MAX_TUNNELS`].
    pub tunnels: u64,
    /// The proxy's process.
    pub pid: u32,
    /// Limit for opening one tunnel.
    pub op_timeout: Duration,
    /// Limit for opening all of them.
    pub open_limit: Duration,
    /// Wait before the first memory reading and after the last tunnel opened.
    pub settle: Duration,
    /// Executor threads.
    pub threads: usize,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleResult {
    /// Tunnels asked for.
    pub requested: u64,
    /// Tunnels open (greeting received) at the time of the second reading.
    pub opened: u64,
    /// Tunnels that failed to open.
    pub errors: ErrorCounts,
    /// Proxy memory before opening.
    pub before: Memory,
    /// Proxy memory with `opened` tunnels open.
    pub after: Memory,
    /// Proxy threads before and after.
    pub threads: (u64, u64),
    /// Seconds it took to open them all.
    pub open_seconds: f64,
}

impl IdleResult {
    /// RSS growth per open tunnel, in bytes (negative growth counts as 0).
    pub fn rss_per_tunnel(&self) -> Option<f64> {
        per_tunnel(self.before.rss_kib, self.after.rss_kib, self.opened)
    }

    /// PSS growth per open tunnel, in bytes.
    pub fn pss_per_tunnel(&self) -> Option<f64> {
        per_tunnel(self.before.pss_kib, self.after.pss_kib, self.opened)
    }

    /// RSS and PSS growth per open tunnel in bytes, measured from `baseline` (say the
    /// reading of a fresh process) instead of this run's own first reading, which may
    /// already hold memory the allocator kept from earlier load.
    pub fn per_tunnel_from(&self, baseline: Memory) -> (Option<f64>, Option<f64>) {
        (
            per_tunnel(baseline.rss_kib, self.after.rss_kib, self.opened),
            per_tunnel(baseline.pss_kib, self.after.pss_kib, self.opened),
        )
    }
}

/// Waits (at most `limit`) until the proxy is back to about `threads` threads, so that a
/// thread-per-tunnel proxy has finished tearing down before the next measurement.
fn wait_for_threads(pid: u32, threads: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match procfs::read_stat(Some(pid)) {
            Ok(s) if s.threads > threads + 16 => std::thread::sleep(Duration::from_millis(50)),
            _ => return,
        }
    }
}

fn per_tunnel(before_kib: u64, after_kib: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| after_kib.saturating_sub(before_kib) as f64 * 1024.0 / n as f64)
}

/// Runs one idle-tunnel measurement.
pub fn run(config: &IdleConfig) -> Result<IdleResult, LoadError> {
    let tunnels = config.tunnels.clamp(1, MAX_TUNNELS);
    let available = procfs::raise_nofile()?;
    let needed = tunnels * 2 + FD_SLACK;
    if available < needed {
        return Err(LoadError::FdLimit { needed, available });
    }
    let runner = Runner::new(config.threads).map_err(LoadError::Setup)?;
    let (hold, hold_stats) = spawn_hold(&runner, tunnels).map_err(LoadError::Setup)?;
    // Let the proxy go quiet (earlier connections finish closing) before the first reading.
    std::thread::sleep(config.settle);
    let before = procfs::sample_tree(config.pid, true)?;

    let started = Instant::now();
    let deadline = started + config.open_limit;
    let next = Arc::new(AtomicU64::new(0));
    let openers: Vec<_> = (0..OPENERS.min(tunnels))
        .map(|_| {
            let next = Arc::clone(&next);
            let proxy = config.proxy.clone();
            let op_timeout = config.op_timeout;
            runner.spawn(async move {
                let mut held = Vec::new();
                let mut errors = ErrorCounts::default();
                while Instant::now() < deadline && next.fetch_add(1, Ordering::Relaxed) < tunnels {
                    let opened = with_timeout(op_timeout, async {
                        let (mut stream, ahead) = open_async(&proxy, hold, op_timeout).await?;
                        let mut greeting = [0u8; 1];
                        read_exact_after(&mut stream, &ahead, &mut greeting).await?;
                        if &greeting != b"!" {
                            return Err(OpError::EchoMismatch);
                        }
                        Ok(stream)
                    })
                    .await;
                    match opened {
                        Ok(s) => held.push(s),
                        Err(e) => errors.add(e),
                    }
                }
                (held, errors)
            })
        })
        .collect();

    let mut held = Vec::new();
    let mut errors = ErrorCounts::default();
    for task in openers {
        let (streams, e) = runner.wait(task);
        held.extend(streams);
        errors.merge(&e);
    }
    let open_seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(config.settle);
    let after = procfs::sample_tree(config.pid, true)?;
    let opened = held.len() as u64;
    // Tunnels the target no longer holds would be errors too; it keeps them all.
    let target_failed = hold_stats.failed.load(Ordering::Relaxed);
    for _ in 0..target_failed {
        errors.add(OpError::Closed);
    }
    drop(held);
    drop(runner);
    wait_for_threads(config.pid, before.threads, Duration::from_secs(10));

    Ok(IdleResult {
        requested: tunnels,
        opened,
        errors,
        before: before.memory.unwrap_or_default(),
        after: after.memory.unwrap_or_default(),
        threads: (before.threads, after.threads),
        open_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tunnel_arithmetic() {
        assert_eq!(per_tunnel(1000, 1100, 100), Some(1024.0));
        assert_eq!(per_tunnel(1000, 900, 100), Some(0.0));
        assert_eq!(per_tunnel(1000, 1100, 0), None);
    }

    #[test]
    fn per_tunnel_from_a_fresh_baseline() {
        let r = IdleResult {
            requested: 4,
            opened: 4,
            errors: ErrorCounts::default(),
            before: Memory {
                rss_kib: 2000,
                pss_kib: 1900,
            },
            after: Memory {
                rss_kib: 2004,
                pss_kib: 1904,
            },
            threads: (1, 1),
            open_seconds: 0.0,
        };
        let fresh = Memory {
            rss_kib: 1000,
            pss_kib: 900,
        };
        assert_eq!(r.rss_per_tunnel(), Some(1024.0));
        assert_eq!(
            r.per_tunnel_from(fresh),
            (Some(1004.0 * 256.0), Some(1004.0 * 256.0))
        );
    }
}
