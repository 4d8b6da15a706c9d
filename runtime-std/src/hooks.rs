//! What a runtime needs from the daemon: where log records and notices go and what time it
//! is locally.

use std::fmt;
use std::sync::Arc;
use triproxy_policy::acl::CivilTime;
use triproxy_policy::session::LogRecord;

/// Callbacks from a runtime to its embedder, shared by every connection of a service.
///
/// They are plain closures rather than a trait because the daemon is the one real
/// implementation; tests pass their own closures.
#[derive(Clone)]
pub struct Hooks {
    /// Receives one record per finished connection.
    pub log: Arc<dyn Fn(&LogRecord) + Send + Sync>,
    /// Local civil time now, for weekday and time-period ACL fields.
    pub civil_time: Arc<dyn Fn() -> CivilTime + Send + Sync>,
    /// Receives notices for the operator that concern no single connection, such as a
    /// resource limit that makes clients wait (one line, no trailing newline).
    pub notice: Arc<dyn Fn(&str) + Send + Sync>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}
