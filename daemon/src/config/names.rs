//! The DNS commands: `nserver`, `nscache`, `nscache6`, `nsrecord`, `fakeresolve`
//! (3proxy.md section 5.6). They are global, wherever they appear, as in 3proxy: every
//! service resolves through the one resolver they describe.
//!
//! Any of `nserver`, `nsrecord` or `fakeresolve` turns triproxy's own resolver on
//! ([`NamesConfig::own`]); `nscache`/`nscache6` alone only size its caches.

use super::ConfigErrorKind;
use std::net::IpAddr;
use triproxy_dns::{NameServer, ResolverConfig, MAX_SERVERS};

/// Smallest `nscache`/`nscache6` size 3proxy accepts.
pub const MIN_NSCACHE: usize = 256;
/// Largest `nscache`/`nscache6` size triproxy accepts (entries; each is a name and its
/// addresses, so about 100 bytes or more).
pub const MAX_NSCACHE: usize = 4 << 20;
/// Most `nsrecord` lines.
pub const MAX_NSRECORDS: usize = 65_536;

/// What the DNS commands of a configuration asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamesConfig {
    /// `nserver` lines, in order (all of them; the resolver uses the first
    /// [`MAX_SERVERS`]).
    pub servers: Vec<NameServer>,
    /// `nscache SIZE`, if given.
    pub cache_v4: Option<usize>,
    /// `nscache6 SIZE`, if given.
    pub cache_v6: Option<usize>,
    /// `nsrecord NAME ADDR` entries.
    pub records: Vec<(String, IpAddr)>,
    /// `fakeresolve`.
    pub fake: bool,
}

impl NamesConfig {
    /// Whether the configuration asks for triproxy's own resolver (else names go to the
    /// system resolver).
    pub fn own(&self) -> bool {
        !self.servers.is_empty() || !self.records.is_empty() || self.fake
    }

    /// The resolver's configuration; each try waits `dns_timeout` (3proxy's `timeouts`
    /// DNS value) split over two rounds, so one server costs at most `dns_timeout`, as in
    /// 3proxy.
    pub fn resolver(&self, dns_timeout: core::time::Duration) -> ResolverConfig {
        let defaults = ResolverConfig::default();
        ResolverConfig {
            servers: self.servers.iter().take(MAX_SERVERS).cloned().collect(),
            try_timeout: (dns_timeout / 2).max(core::time::Duration::from_millis(500)),
            attempts: 2,
            cache_v4: self.cache_v4.unwrap_or(defaults.cache_v4),
            cache_v6: self.cache_v6.unwrap_or(defaults.cache_v6),
            static_records: self.records.clone(),
            fake_resolve: self.fake,
            ..defaults
        }
    }

    /// `nserver ADDR[:PORT][/tcp]`.
    pub(super) fn nserver(&mut self, arg: &str) -> Result<(), ConfigErrorKind> {
        let server = arg
            .parse::<NameServer>()
            .map_err(|e| ConfigErrorKind::BadNameServer {
                value: arg.to_owned(),
                reason: e.to_string(),
            })?;
        self.servers.push(server);
        Ok(())
    }

    /// `nscache SIZE` / `nscache6 SIZE`.
    pub(super) fn nscache(&mut self, v6: bool, arg: &str) -> Result<(), ConfigErrorKind> {
        let size = arg
            .parse::<usize>()
            .ok()
            .filter(|n| (MIN_NSCACHE..=MAX_NSCACHE).contains(n))
            .ok_or_else(|| ConfigErrorKind::InvalidNumber {
                what: if v6 { "nscache6 size" } else { "nscache size" },
                value: arg.to_owned(),
                min: MIN_NSCACHE as u64,
                max: MAX_NSCACHE as u64,
            })?;
        if v6 {
            self.cache_v6 = Some(size);
        } else {
            self.cache_v4 = Some(size);
        }
        Ok(())
    }

    /// `nsrecord NAME ADDR`.
    pub(super) fn nsrecord(&mut self, name: &str, addr: &str) -> Result<(), ConfigErrorKind> {
        let ip = addr
            .parse::<IpAddr>()
            .map_err(|_| ConfigErrorKind::InvalidAddress {
                value: addr.to_owned(),
            })?;
        let valid = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !valid {
            return Err(ConfigErrorKind::BadHostName {
                value: name.to_owned(),
            });
        }
        if self.records.len() >= MAX_NSRECORDS {
            return Err(ConfigErrorKind::TooManyRules {
                what: "nsrecord",
                limit: MAX_NSRECORDS,
            });
        }
        self.records.push((name.to_owned(), ip));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn own_resolver_only_when_asked() {
        let mut n = NamesConfig::default();
        n.nscache(false, "1024").unwrap();
        assert!(!n.own(), "nscache alone only sizes the cache");
        n.nsrecord("pinned.test", "127.0.0.5").unwrap();
        assert!(n.own());
        let c = n.resolver(core::time::Duration::from_secs(15));
        assert_eq!(c.cache_v4, 1024);
        assert_eq!(c.try_timeout, core::time::Duration::from_millis(7500));
        assert!(n.nscache(true, "255").is_err(), "3proxy's minimum is 256");
        assert!(n.nsrecord("bad name", "127.0.0.1").is_err());
        assert!(n.nsrecord("ok.test", "not-an-ip").is_err());
        assert!(n.nserver("127.0.0.1:99999").is_err());
    }

    #[test]
    fn only_five_servers_are_used() {
        let mut n = NamesConfig::default();
        for i in 1..=7 {
            n.nserver(&format!("127.0.0.{i}")).unwrap();
        }
        assert_eq!(
            n.resolver(core::time::Duration::from_secs(2)).servers.len(),
            MAX_SERVERS
        );
    }
}
