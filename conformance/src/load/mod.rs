//! `triproxy-load`: measures a SOCKS, HTTP CONNECT or HTTP forward proxy on this machine
//! against direct loopback, the tool behind `BENCHMARKS.md`.
//!
//! Eight measurements, each against loopback targets the tool starts itself:
//! - [`bulk`]: throughput of 1..N streams, upload or download, and the proxy's CPU seconds
//!   per GiB;
//! - [`rate`]: connections per second of C concurrent clients (handshake, CONNECT, 64-byte
//!   echo, client closes first), latency percentiles from [`histogram`], and the proxy's CPU
//!   microseconds per connection;
//! - [`idle`]: RSS and PSS per idle tunnel with N tunnels open;
//! - [`suite`]: all of the above for several proxies, repeated, as Markdown tables of
//!   medians with ratios to `direct`;
//! - [`http_rate`] and [`http_download`]: plain HTTP forwarding (`GET http://...`) through
//!   an HTTP proxy with keep-alive: requests per second of C clients with latency and
//!   proxy CPU per 1,000 requests, and one large download with proxy CPU per GiB, against
//!   the tool's own [`origin`] server. Responses are read by [`http_response`] and
//!   checked (status, body length) by [`http_client`].
//!
//! - [`udp`] and [`dns`]: datagrams. UDP datagrams per second of N flows with a window in
//!   flight each, through a SOCKS5 UDP association, a UDP port mapper or direct to the
//!   tool's UDP echo, with loss, round-trip latency and the proxy's CPU per datagram; and
//!   DNS queries per second of N clients against a DNS server (a warm cache), with latency
//!   and the server's CPU per query. Both run on [`datagram`]'s flows.
//!
//! Proxies are named by URL ([`url`]); tunnels are opened by the sans-IO [`handshake`]
//! machine (SOCKS through `triproxy_socks::client`) driven on real sockets by [`conn`].
//! CPU and memory come from `/proc` ([`procfs`]), so the tool is Linux-only. Every loop is
//! bounded in time and in count, and only loopback addresses are accepted.
//!
//! It is a benchmark, not a conformance test: it checks that tunnels carry the right
//! bytes, not that the proxy follows the RFCs.

pub mod bulk;
pub mod cli;
pub mod conn;
pub mod datagram;
pub mod dns;
pub mod handshake;
pub mod histogram;
pub mod http_client;
pub mod http_download;
pub mod http_rate;
pub mod http_response;
pub mod idle;
pub mod origin;
pub mod procfs;
pub mod rate;
pub mod report;
pub mod runner;
pub mod suite;
pub mod targets;
pub mod udp;
pub mod url;

#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod smoke_tests;
#[cfg(test)]
mod udp_tests;

use core::fmt;
use std::io;

/// Why a measurement could not run at all. Failures of single connections are not errors
/// of the measurement: they are counted in its result ([`conn::ErrorCounts`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// A target, thread or executor could not be started.
    Setup(io::Error),
    /// `/proc` could not be read (the proxy's pid may be wrong or gone).
    Proc(procfs::ProcError),
    /// Not enough file descriptors for the idle tunnels, even after raising the limit.
    FdLimit {
        /// Descriptors needed (two per tunnel plus slack).
        needed: u64,
        /// Descriptors this process may still open.
        available: u64,
    },
    /// Arguments that cannot be measured (for example an idle test without a pid).
    Usage(String),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Setup(e) => write!(f, "starting the measurement: {e}"),
            LoadError::Proc(e) => write!(f, "{e}"),
            LoadError::FdLimit { needed, available } => write!(
                f,
                "need {needed} file descriptors but only {available} are available \
                 (raise the hard limit: ulimit -Hn)"
            ),
            LoadError::Usage(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<procfs::ProcError> for LoadError {
    fn from(e: procfs::ProcError) -> Self {
        LoadError::Proc(e)
    }
}

/// `count / seconds`, or 0 for an empty window.
pub(crate) fn per_second(count: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count / seconds
    } else {
        0.0
    }
}
