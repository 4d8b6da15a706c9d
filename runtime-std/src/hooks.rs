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
    /// Told when a stream connection is accepted ([`Activity::Opened`]) and when its
    /// session has ended ([`Activity::Closed`]), for an "active connections" gauge.
    ///
    /// The log hook cannot give that: a connection may write several records (one per
    /// forwarded HTTP request) or none, and writes them only at the end. Both runtimes
    /// call it the same way, through the connection's [`crate::live::Registration`] (the
    /// admin, which is not in that registry, through [`Hooks::track_connection`]), whose
    /// guard reports the end even if the session unwinds. Datagram services do not call
    /// it (they have no accepted connections).
    pub activity: Arc<dyn Fn(Activity) + Send + Sync>,
}

/// What [`Hooks::activity`] is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// A client connection was accepted; its session starts.
    Opened,
    /// That connection's session ended (after its last log record).
    Closed,
}

/// Reports [`Activity::Closed`] when dropped; from [`Hooks::track_connection`].
pub struct ActiveConnection {
    activity: Arc<dyn Fn(Activity) + Send + Sync>,
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        (self.activity)(Activity::Closed);
    }
}

impl fmt::Debug for ActiveConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveConnection").finish_non_exhaustive()
    }
}

impl Hooks {
    /// Reports [`Activity::Opened`] now and [`Activity::Closed`] when the returned guard
    /// is dropped: the one way both runtimes mark a connection's lifetime.
    pub fn track_connection(&self) -> ActiveConnection {
        (self.activity)(Activity::Opened);
        ActiveConnection {
            activity: Arc::clone(&self.activity),
        }
    }
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}
