//! The datagram listener kind: one UDP socket shared by every client, with a per-client
//! association that expires when the client goes quiet.
//!
//! A stream service gets one socket per client, and a session's life is the socket's. A
//! datagram service (3proxy's `udppm`, `dnspr`, a SOCKS5 UDP ASSOCIATE relay) gets one
//! socket for everyone, so "which session does this datagram belong to" and "when is a
//! session over" are decisions: [`Associations`] makes them, sans-IO. The runtime reads a
//! datagram and its source address, asks [`Associations::touch`] for the client's
//! association (created on first sight, refused when the table is full), hands the
//! datagram to that association's front, and calls [`Associations::expire`] at
//! [`Associations::poll_timeout`]; each expired association is finished and logged like a
//! stream session.
//!
//! Limits: at most the `max` associations given at construction (further clients are
//! refused until one expires: the table never grows without bound); an association
//! expires `idle` after its last datagram (3proxy: STRING_LONG, 60 s by default).

use core::time::Duration;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// The per-client associations of one datagram service. See the module documentation.
#[derive(Debug)]
pub struct Associations<T> {
    idle: Duration,
    max: usize,
    by_client: HashMap<SocketAddr, Entry<T>>,
}

#[derive(Debug)]
struct Entry<T> {
    last: Instant,
    state: T,
}

/// The table is full: a new client is refused until an association expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableFull {
    /// The limit that was reached.
    pub max: usize,
}

impl core::fmt::Display for TableFull {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} UDP associations are open: no room for another client",
            self.max
        )
    }
}

impl<T> Associations<T> {
    /// An empty table: associations expire `idle` after their last datagram, at most
    /// `max` at once.
    pub fn new(idle: Duration, max: usize) -> Self {
        Associations {
            idle,
            max,
            by_client: HashMap::new(),
        }
    }

    /// Open associations.
    pub fn len(&self) -> usize {
        self.by_client.len()
    }

    /// Whether a new client would be refused now.
    pub fn is_full(&self) -> bool {
        self.by_client.len() >= self.max
    }

    /// Whether no association is open.
    pub fn is_empty(&self) -> bool {
        self.by_client.is_empty()
    }

    /// A datagram from `client` at `now`: its association, created with `new` on first
    /// sight; `Err` when that would exceed the limit. Any datagram postpones the expiry.
    pub fn touch(
        &mut self,
        now: Instant,
        client: SocketAddr,
        new: impl FnOnce() -> T,
    ) -> Result<&mut T, TableFull> {
        let full = self.by_client.len() >= self.max;
        match self.by_client.entry(client) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let entry = e.into_mut();
                entry.last = now;
                Ok(&mut entry.state)
            }
            std::collections::hash_map::Entry::Vacant(_) if full => {
                Err(TableFull { max: self.max })
            }
            std::collections::hash_map::Entry::Vacant(e) => Ok(&mut e
                .insert(Entry {
                    last: now,
                    state: new(),
                })
                .state),
        }
    }

    /// Postpones the expiry of `client`'s association, if open (an answer for it came);
    /// whether it is open.
    pub fn refresh(&mut self, now: Instant, client: &SocketAddr) -> bool {
        match self.by_client.get_mut(client) {
            Some(e) => {
                e.last = now;
                true
            }
            None => false,
        }
    }

    /// The association of `client`, if open (no expiry change).
    pub fn get_mut(&mut self, client: &SocketAddr) -> Option<&mut T> {
        self.by_client.get_mut(client).map(|e| &mut e.state)
    }

    /// When the next association expires, if any is open.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.by_client.values().map(|e| e.last + self.idle).min()
    }

    /// Every open association, with its client.
    pub fn iter(&self) -> impl Iterator<Item = (&SocketAddr, &T)> {
        self.by_client.iter().map(|(a, e)| (a, &e.state))
    }

    /// Removes and returns every association quiet for `idle` at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(SocketAddr, T)> {
        let idle = self.idle;
        let expired: Vec<SocketAddr> = self
            .by_client
            .iter()
            .filter(|(_, e)| now >= e.last + idle)
            .map(|(a, _)| *a)
            .collect();
        expired
            .into_iter()
            .filter_map(|a| self.by_client.remove(&a).map(|e| (a, e.state)))
            .collect()
    }

    /// Ends `client`'s association now (its front finished), returning its state.
    pub fn remove(&mut self, client: &SocketAddr) -> Option<T> {
        self.by_client.remove(client).map(|e| e.state)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::disallowed_methods)]
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn an_association_lives_while_its_client_sends_and_expires_after() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(60);
        let mut table: Associations<u32> = Associations::new(idle, 10);
        *table.touch(t0, addr(1), || 0).unwrap() += 1;
        assert_eq!(table.poll_timeout(), Some(t0 + idle));
        let t1 = t0 + Duration::from_secs(50);
        *table.touch(t1, addr(1), || 0).unwrap() += 1;
        assert!(
            table.expire(t0 + idle).is_empty(),
            "the second datagram postponed it"
        );
        assert_eq!(table.poll_timeout(), Some(t1 + idle));
        assert_eq!(table.expire(t1 + idle), vec![(addr(1), 2)]);
        assert!(table.is_empty());
        assert_eq!(table.poll_timeout(), None);
    }

    #[test]
    fn clients_are_separate_and_the_table_is_bounded() {
        let t0 = Instant::now();
        let mut table: Associations<&str> = Associations::new(Duration::from_secs(5), 2);
        table.touch(t0, addr(1), || "a").unwrap();
        table.touch(t0, addr(2), || "b").unwrap();
        assert_eq!(table.touch(t0, addr(3), || "c"), Err(TableFull { max: 2 }));
        assert_eq!(
            table.touch(t0, addr(1), || "x").map(|s| *s),
            Ok("a"),
            "known: kept"
        );
        assert_eq!(table.remove(&addr(2)), Some("b"));
        assert!(table.touch(t0, addr(3), || "c").is_ok(), "room again");
        assert_eq!(table.len(), 2);
    }
}
