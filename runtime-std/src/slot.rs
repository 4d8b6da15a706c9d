//! What a running service serves with, replaceable while it runs: how a reload changes a
//! listener's policy, log and `maxconn` without closing it.
//!
//! A service reads its slot once per accepted connection; a connection keeps the policy it
//! was accepted with for its whole life (a reload never changes a session half-way through
//! its handshake). Both runtimes use this one type.

use crate::hooks::Hooks;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use triproxy_policy::service::ServicePolicy;

/// One generation of a service's settings.
#[derive(Debug)]
pub struct Settings {
    /// The policy new connections run with.
    pub policy: Arc<ServicePolicy>,
    /// Where their log records and notices go.
    pub hooks: Hooks,
    /// Most clients served at once (at least 1).
    pub maxconn: usize,
}

/// The current [`Settings`] of a service, and whether it was told to stop.
pub struct ServiceSlot {
    current: RwLock<Arc<Settings>>,
    stopped: AtomicBool,
}

impl fmt::Debug for ServiceSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSlot")
            .field("stopped", &self.is_stopped())
            .finish_non_exhaustive()
    }
}

impl ServiceSlot {
    /// A slot holding its first settings.
    pub fn new(policy: Arc<ServicePolicy>, hooks: Hooks, maxconn: usize) -> Arc<ServiceSlot> {
        Arc::new(ServiceSlot {
            current: RwLock::new(Arc::new(Settings {
                policy,
                hooks,
                maxconn: maxconn.max(1),
            })),
            stopped: AtomicBool::new(false),
        })
    }

    /// The settings in force now.
    pub fn load(&self) -> Arc<Settings> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the settings: connections accepted from now on use `settings`.
    pub fn replace(&self, policy: Arc<ServicePolicy>, hooks: Hooks, maxconn: usize) {
        let next = Arc::new(Settings {
            policy,
            hooks,
            maxconn: maxconn.max(1),
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// The policy in force now: what a datagram service's loop takes for each new client
    /// or query (`triproxy_policy::exec::PolicySource`).
    pub fn policy(&self) -> Arc<ServicePolicy> {
        Arc::clone(&self.load().policy)
    }

    /// Hooks that follow the slot: each record and notice goes where the settings in force
    /// at that moment send it. A datagram service's loop keeps running across reloads, so
    /// its hooks cannot be the ones of its start.
    pub fn following_hooks(self: &Arc<Self>) -> Hooks {
        let start = self.load();
        let log_slot = Arc::clone(self);
        let notice_slot = Arc::clone(self);
        Hooks {
            log: Arc::new(move |record| (log_slot.load().hooks.log)(record)),
            notice: Arc::new(move |text| (notice_slot.load().hooks.notice)(text)),
            civil_time: Arc::clone(&start.hooks.civil_time),
            activity: Arc::clone(&start.hooks.activity),
        }
    }

    /// Marks the service stopped: it accepts no more clients. Established connections are
    /// not affected. The runtime's stop function also wakes the acceptors.
    pub fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Whether the service was told to stop.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The flag datagram loops poll (see `triproxy_policy::exec::serve_datagrams`).
    pub fn stop_flag(&self) -> &AtomicBool {
        &self.stopped
    }
}
