//! The answer cache (3proxy's `nscache` for A and `nscache6` for AAAA): positive entries
//! live until `now + ttl` (capped), negative ones (NXDOMAIN, NODATA) until `now +` the SOA
//! minimum (capped). It is bounded: when full, an expired entry is dropped if there is one,
//! otherwise the one expiring first (a linear scan, so an insert into a full cache costs
//! O(size)). Keys are lower-case names without the final dot. It is not a DNS cache of
//! records: it holds only what the resolver reports (addresses or "not found").

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

/// What the cache remembers for a name and one record type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cached {
    /// Addresses, in the order the server gave them.
    Found(Vec<IpAddr>),
    /// NXDOMAIN or NODATA.
    NotFound,
}

#[derive(Debug, Clone)]
struct Entry {
    expires: Instant,
    value: Cached,
}

/// A bounded map from name to [`Cached`] with expiry.
#[derive(Debug, Clone)]
pub(crate) struct Cache {
    capacity: usize,
    map: BTreeMap<String, Entry>,
}

impl Cache {
    pub(crate) fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            map: BTreeMap::new(),
        }
    }

    /// The live entry for `name`, with its remaining lifetime in seconds.
    pub(crate) fn get(&mut self, now: Instant, name: &str) -> Option<(Cached, u32)> {
        let entry = self.map.get(name)?;
        if entry.expires <= now {
            self.map.remove(name);
            return None;
        }
        let left = entry.expires.saturating_duration_since(now).as_secs();
        Some((entry.value.clone(), u32::try_from(left).unwrap_or(u32::MAX)))
    }

    pub(crate) fn insert(&mut self, now: Instant, name: &str, value: Cached, expires: Instant) {
        if self.capacity == 0 || expires <= now {
            return;
        }
        if !self.map.contains_key(name) && self.map.len() >= self.capacity {
            let victim = self
                .map
                .iter()
                .find(|(_, e)| e.expires <= now)
                .or_else(|| self.map.iter().min_by_key(|(_, e)| e.expires))
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                self.map.remove(&k);
            }
        }
        self.map.insert(name.to_owned(), Entry { expires, value });
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    #[allow(clippy::disallowed_methods)] // one real instant to offset virtual time from
    fn bounded_and_expiring() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = Cache::new(2);
        c.insert(t0, "a", Cached::NotFound, t0 + s(10));
        c.insert(t0, "b", Cached::NotFound, t0 + s(5));
        c.insert(t0, "c", Cached::NotFound, t0 + s(20));
        assert_eq!(c.len(), 2);
        assert!(c.get(t0, "b").is_none(), "the earliest expiry was evicted");
        assert_eq!(c.get(t0 + s(1), "a"), Some((Cached::NotFound, 9)));
        assert!(c.get(t0 + s(10), "a").is_none(), "expired at now + ttl");
        assert_eq!(c.len(), 1);
        let mut off = Cache::new(0);
        off.insert(t0, "a", Cached::NotFound, t0 + s(1));
        assert_eq!(off.len(), 0);
    }
}
