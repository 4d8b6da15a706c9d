//! The `triproxy` daemon: reads a 3proxy configuration ([`config`]), starts its services on
//! the chosen runtime ([`run`]) and writes one log record per connection in 3proxy's
//! `logformat` ([`logformat`], [`logsink`]), and keeps the traffic counters ([`counters`]).

#![warn(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod control;
pub mod counters;
pub mod logformat;
pub mod logjson;
pub mod logrotate;
pub mod logsink;
pub mod metrics;
pub mod notify;
pub mod process;
pub mod run;
pub mod syslog;

/// The configuration used when `triproxy` runs with no arguments: SOCKS on
/// 127.0.0.1:1080 for clients on this machine only, logging to standard output.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.cfg");
