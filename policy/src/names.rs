//! Which resolver a service's names go to, and in which address-family order.
//!
//! Without `nserver`, `nsrecord` or `fakeresolve`, names go to the system resolver (the
//! runtime's [`crate::exec::Io::resolve`], off the event loop), as 3proxy does. With any of
//! them, the process has one [`triproxy_dns::Resolver`] (one cache for every service,
//! like 3proxy's) behind [`Names`], and the executor drives each lookup on its own UDP
//! socket (`exec/resolve.rs`, written once for both runtimes). Such a resolver falls back
//! to the system resolver only when it has no `nserver` at all and neither `nsrecord` nor
//! `fakeresolve` knew the name: with `nserver` set, no name ever reaches the system
//! resolver (3proxy issue #363 was names leaking there).
//!
//! The lock is held only while the machine is called (never across I/O), so lookups of
//! every connection share it without waiting on each other's sockets.

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use triproxy_dns::{Family, Resolver, ResolverConfig};

/// The process's name resolution. See the module documentation.
#[derive(Debug, Default)]
pub struct Names {
    own: Option<Mutex<Resolver>>,
}

impl Names {
    /// Names go to the system resolver.
    pub fn system() -> Self {
        Names { own: None }
    }

    /// Names go to triproxy's own resolver with `config`; query IDs are drawn from a
    /// generator seeded with `seed` (random, from the daemon).
    pub fn own(config: ResolverConfig, seed: u64) -> Self {
        Names {
            own: Some(Mutex::new(Resolver::new(config, seed))),
        }
    }

    /// The shared resolver, if the configuration asked for one.
    pub fn resolver(&self) -> Option<&Mutex<Resolver>> {
        self.own.as_ref()
    }
}

/// Locks the shared resolver. A panic while it was held cannot leave it half-updated in a
/// way that matters more than losing one lookup, so a poisoned lock is taken over.
pub fn lock(resolver: &Mutex<Resolver>) -> MutexGuard<'_, Resolver> {
    resolver.lock().unwrap_or_else(|p| p.into_inner())
}

/// Orders (and filters) `addrs` as `family` asks: `-4` IPv4 only, `-6` IPv6 only, `-46`
/// IPv4 first, `-64` IPv6 first; each family keeps the resolver's order. For the system
/// resolver's answers (the own resolver orders its answers itself).
pub fn order(family: Family, addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let (v4, v6): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.into_iter().partition(SocketAddr::is_ipv4);
    match family {
        Family::V4 => v4,
        Family::V6 => v6,
        Family::V4ThenV6 => v4.into_iter().chain(v6).collect(),
        Family::V6ThenV4 => v6.into_iter().chain(v4).collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn family_order_filters_and_orders() {
        let addrs: Vec<SocketAddr> = ["[::1]:80", "127.0.0.1:80", "[::2]:80", "127.0.0.2:80"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let ports = |v: Vec<SocketAddr>| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ports(order(Family::V4, addrs.clone())),
            ["127.0.0.1:80", "127.0.0.2:80"]
        );
        assert_eq!(
            ports(order(Family::V6, addrs.clone())),
            ["[::1]:80", "[::2]:80"]
        );
        assert_eq!(
            ports(order(Family::V6ThenV4, addrs.clone())),
            ["[::1]:80", "[::2]:80", "127.0.0.1:80", "127.0.0.2:80"]
        );
        assert_eq!(
            ports(order(Family::V4ThenV6, addrs)),
            ["127.0.0.1:80", "127.0.0.2:80", "[::1]:80", "[::2]:80"]
        );
    }
}
