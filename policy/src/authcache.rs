//! The authentication cache: 3proxy's `authcache TYPES [TIME [SIZE]]` and the `cache` and
//! `cacheacl` auth methods (3proxy.md sections 5.5 and 6, `src/auth.c cacheauth()`).
//!
//! After `strong` or `useronly` accepted a client (and the ACL allowed it), the service
//! remembers "this user name (with this password) (from this address) was accepted" for
//! TIME seconds. A later `cache` method accepts a client that matches such an entry without
//! asking `users` again, and then checks the ACL; `cacheacl` accepts it without the ACL
//! (and so without `parent` entries either).
//!
//! Keys supported: `ip` (the client's address), `user` and `pass`/`password`, any
//! combination with `user` or `ip`. 3proxy's other keys (`limit`, `acl`, `ext`,
//! `dstaddr`, `dstport`, `dsthost`, `dstoper`, `srvaddr`, `srvport`) are refused by name
//! ([`AuthCacheError::UnsupportedKey`]).
//!
//! Deterministic: time is an argument; the table holds at most its capacity (SIZE, default
//! [`DEFAULT_AUTHCACHE_SIZE`]) and, when full, drops the entry that expires first. A
//! cached password is compared with `subtle`. Differs from 3proxy: entries are only made
//! after `strong` or `useronly` (3proxy also caches after `iponly` when the client sent a
//! name, which would let a name the proxy never checked in through `cache`).

use crate::acl::ConfigToken;
use crate::auth::CacheUse;
use core::fmt;
use core::time::Duration;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use subtle::ConstantTimeEq;

/// How long an entry lives without a TIME argument (3proxy: 600 s).
pub const DEFAULT_AUTHCACHE_TTL: Duration = Duration::from_secs(600);

/// Most entries without a SIZE argument (3proxy: 65536 * 4).
pub const DEFAULT_AUTHCACHE_SIZE: usize = 65536 * 4;

/// Largest SIZE accepted: a bound on memory (each entry holds a name and a password of at
/// most 255 bytes each).
pub const MAX_AUTHCACHE_SIZE: usize = 1 << 22;

/// Longest TIME accepted, in seconds (one year; `Instant` arithmetic stays far from
/// overflow).
pub const MAX_AUTHCACHE_TTL_SECS: u64 = 365 * 24 * 3600;

/// A service's use of the cache: its settings and the process's table.
#[derive(Debug, Clone)]
pub struct ServiceAuthCache {
    /// The `authcache` line in force at the service line.
    pub settings: AuthCacheSettings,
    /// The process's one table.
    pub table: Arc<AuthCache>,
}

impl ServiceAuthCache {
    /// The cache as the auth chain reads it for a request at `now`.
    pub fn at(&self, now: Instant) -> CacheUse<'_> {
        CacheUse {
            cache: &self.table,
            settings: &self.settings,
            now,
        }
    }
}

/// What identifies a cached client: the `TYPES` of `authcache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKeys {
    /// `ip`: the client's address must be the one that authenticated.
    pub ip: bool,
    /// `user`: the presented user name must be the cached one (without it, the cached
    /// name is given to whoever matches the other keys).
    pub user: bool,
    /// `pass` / `password`: the presented password must be the cached one.
    pub password: bool,
}

/// One service's cache settings (`authcache` in force at its line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCacheSettings {
    /// What a hit must match.
    pub keys: CacheKeys,
    /// How long an entry lives (TIME).
    pub ttl: Duration,
}

/// An `authcache` line: the settings for later services and the size of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCacheLine {
    /// For services started after the line.
    pub settings: AuthCacheSettings,
    /// SIZE: the capacity of the process's one table (the last line's wins, as in 3proxy,
    /// where the table is global).
    pub size: usize,
}

/// Why an `authcache` line is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthCacheError {
    /// A 3proxy key triproxy does not implement.
    UnsupportedKey {
        /// The key.
        key: &'static str,
    },
    /// A word that is no 3proxy key.
    UnknownKey {
        /// The word.
        key: ConfigToken,
    },
    /// Neither `user` nor `ip`: nothing identifies the client.
    NoIdentity,
    /// TIME is not a number of seconds from 1 to [`MAX_AUTHCACHE_TTL_SECS`].
    BadTime {
        /// The argument.
        value: ConfigToken,
    },
    /// SIZE is not a number from 1 to [`MAX_AUTHCACHE_SIZE`].
    BadSize {
        /// The argument.
        value: ConfigToken,
    },
}

impl fmt::Display for AuthCacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthCacheError::UnsupportedKey { key } => write!(
                f,
                "authcache key `{key}` is not supported (only ip, user and pass)"
            ),
            AuthCacheError::UnknownKey { key } => write!(
                f,
                "unknown authcache key `{key}` (expected ip, user, pass or password, \
                 separated by commas)"
            ),
            AuthCacheError::NoIdentity => {
                write!(f, "authcache needs `user` or `ip` among its keys")
            }
            AuthCacheError::BadTime { value } => write!(
                f,
                "authcache time `{value}` is not a number of seconds from 1 to \
                 {MAX_AUTHCACHE_TTL_SECS}"
            ),
            AuthCacheError::BadSize { value } => write!(
                f,
                "authcache size `{value}` is not a number from 1 to {MAX_AUTHCACHE_SIZE}"
            ),
        }
    }
}

impl std::error::Error for AuthCacheError {}

/// 3proxy keys triproxy refuses by name.
const UNSUPPORTED_KEYS: [&str; 9] = [
    "limit", "acl", "ext", "dstaddr", "dstport", "dsthost", "dstoper", "srvaddr", "srvport",
];

impl AuthCacheLine {
    /// Parses the arguments of `authcache` (1 to 3 words): `TYPES` as comma-separated keys
    /// (`ip`, `user`, `pass` or `password`), then TIME in seconds (default
    /// [`DEFAULT_AUTHCACHE_TTL`]) and SIZE (default [`DEFAULT_AUTHCACHE_SIZE`]).
    ///
    /// Stricter than 3proxy, which finds keys by substring anywhere in the word (so
    /// `userpass` works there), ignores unknown words and reads numbers with `atoi`.
    ///
    /// ```
    /// use triproxy_policy::authcache::AuthCacheLine;
    /// let line = AuthCacheLine::parse(&["user,pass", "60"]).unwrap();
    /// assert!(line.settings.keys.user && line.settings.keys.password && !line.settings.keys.ip);
    /// assert_eq!(line.settings.ttl.as_secs(), 60);
    /// assert!(AuthCacheLine::parse(&["ip,limit"]).is_err());
    /// ```
    pub fn parse(args: &[&str]) -> Result<AuthCacheLine, AuthCacheError> {
        let mut keys = CacheKeys {
            ip: false,
            user: false,
            password: false,
        };
        for word in args.first().copied().unwrap_or_default().split(',') {
            match word {
                "ip" => keys.ip = true,
                "user" => keys.user = true,
                "pass" | "password" => keys.password = true,
                other => {
                    return Err(match UNSUPPORTED_KEYS.iter().find(|k| **k == other) {
                        Some(key) => AuthCacheError::UnsupportedKey { key },
                        None => AuthCacheError::UnknownKey {
                            key: ConfigToken::new(other),
                        },
                    })
                }
            }
        }
        if !keys.user && !keys.ip {
            return Err(AuthCacheError::NoIdentity);
        }
        let ttl = match args.get(1) {
            None => DEFAULT_AUTHCACHE_TTL,
            Some(value) => match value.parse::<u64>() {
                Ok(secs @ 1..=MAX_AUTHCACHE_TTL_SECS) => Duration::from_secs(secs),
                _ => {
                    return Err(AuthCacheError::BadTime {
                        value: ConfigToken::new(value),
                    })
                }
            },
        };
        let size = match args.get(2) {
            None => DEFAULT_AUTHCACHE_SIZE,
            Some(value) => match value.parse::<usize>() {
                Ok(size @ 1..=MAX_AUTHCACHE_SIZE) => size,
                _ => {
                    return Err(AuthCacheError::BadSize {
                        value: ConfigToken::new(value),
                    })
                }
            },
        };
        Ok(AuthCacheLine {
            settings: AuthCacheSettings { keys, ttl },
            size,
        })
    }
}

/// What an entry is found by: the service's keys and the values they select.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EntryKey {
    keys: CacheKeys,
    user: Option<Box<[u8]>>,
    ip: Option<IpAddr>,
}

struct Entry {
    /// The accepted name (what a hit authenticates as).
    name: String,
    /// The accepted password, when the keys include it.
    password: Option<Box<[u8]>>,
    expires: Instant,
    /// Insertion number: orders entries that expire at the same instant.
    seq: u64,
}

#[derive(Default)]
struct Table {
    entries: BTreeMap<EntryKey, Entry>,
    /// The same entries by expiry, for dropping expired and first-to-expire ones.
    by_expiry: BTreeMap<(Instant, u64), EntryKey>,
    next_seq: u64,
}

impl Table {
    fn remove(&mut self, key: &EntryKey) {
        if let Some(old) = self.entries.remove(key) {
            self.by_expiry.remove(&(old.expires, old.seq));
        }
    }

    fn drop_expired(&mut self, now: Instant) {
        while let Some(entry) = self.by_expiry.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            self.entries.remove(&key);
        }
    }
}

/// The process's one authentication cache (3proxy's `auth_table`), shared by every
/// service; at most `capacity` entries.
pub struct AuthCache {
    capacity: usize,
    table: Mutex<Table>,
}

impl fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache::new(DEFAULT_AUTHCACHE_SIZE)
    }
}

impl AuthCache {
    /// An empty cache of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> AuthCache {
        AuthCache {
            capacity: capacity.max(1),
            table: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries held, expired ones included until the next insertion drops them.
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn key(settings: &AuthCacheSettings, client: IpAddr, user: Option<&[u8]>) -> EntryKey {
        EntryKey {
            keys: settings.keys,
            user: user
                .filter(|_| settings.keys.user)
                .map(|u| u.to_vec().into_boxed_slice()),
            ip: settings.keys.ip.then_some(client),
        }
    }

    /// Remembers that `name` (with `password`) was accepted from `client` at `now`, until
    /// `now + ttl`. Nothing is remembered when the keys include the password and there is
    /// none (3proxy likewise). When the table is full, expired entries go first, then the
    /// one that expires first.
    pub fn insert(
        &self,
        now: Instant,
        settings: &AuthCacheSettings,
        client: IpAddr,
        name: &str,
        password: Option<&[u8]>,
    ) {
        let password = match (settings.keys.password, password) {
            (false, _) => None,
            (true, Some(p)) => Some(p.to_vec().into_boxed_slice()),
            (true, None) => return,
        };
        let key = Self::key(settings, client, Some(name.as_bytes()));
        let mut table = self.table();
        table.remove(&key);
        table.drop_expired(now);
        while table.entries.len() >= self.capacity {
            let Some((_, oldest)) = table.by_expiry.pop_first() else {
                break;
            };
            table.entries.remove(&oldest);
        }
        let seq = table.next_seq;
        table.next_seq = seq.wrapping_add(1);
        let expires = now + settings.ttl;
        table.by_expiry.insert((expires, seq), key.clone());
        table.entries.insert(
            key,
            Entry {
                name: name.to_owned(),
                password,
                expires,
                seq,
            },
        );
    }

    /// The cached name for a client that presents `user` and `password` from `client` at
    /// `now`, or `None` (a miss: 3proxy code 4). A miss when a key's value is absent
    /// (`user` without a name, `pass` without a password), when nothing matches, when the
    /// entry has expired (at `expires` exactly too) or when the password differs.
    pub fn lookup(
        &self,
        now: Instant,
        settings: &AuthCacheSettings,
        client: IpAddr,
        user: Option<&[u8]>,
        password: Option<&[u8]>,
    ) -> Option<String> {
        if settings.keys.user && user.is_none() {
            return None;
        }
        let presented = match (settings.keys.password, password) {
            (true, None) => return None,
            (_, p) => p,
        };
        let key = Self::key(settings, client, user);
        let table = self.table();
        let entry = table.entries.get(&key)?;
        if entry.expires <= now {
            return None;
        }
        if let Some(stored) = &entry.password {
            let presented = presented.unwrap_or_default();
            let same_len = stored.len() == presented.len();
            if !(same_len && bool::from(stored.as_ref().ct_eq(presented))) {
                return None;
            }
        }
        Some(entry.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(types: &str, ttl: &str) -> AuthCacheSettings {
        AuthCacheLine::parse(&[types, ttl]).unwrap().settings
    }

    /// Some instant to start from (the code under test never reads the clock).
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_lines() {
        let d = AuthCacheLine::parse(&["user,password"]).unwrap();
        assert_eq!(
            d,
            AuthCacheLine {
                settings: AuthCacheSettings {
                    keys: CacheKeys {
                        ip: false,
                        user: true,
                        password: true
                    },
                    ttl: DEFAULT_AUTHCACHE_TTL
                },
                size: DEFAULT_AUTHCACHE_SIZE
            }
        );
        let l = AuthCacheLine::parse(&["ip", "30", "100"]).unwrap();
        assert!(l.settings.keys.ip && !l.settings.keys.user && !l.settings.keys.password);
        assert_eq!((l.settings.ttl, l.size), (Duration::from_secs(30), 100));
        for (args, error, text) in [
            (
                &["ip,limit"][..],
                AuthCacheError::UnsupportedKey { key: "limit" },
                "authcache key `limit` is not supported (only ip, user and pass)",
            ),
            (
                &["user,acl"],
                AuthCacheError::UnsupportedKey { key: "acl" },
                "authcache key `acl` is not supported (only ip, user and pass)",
            ),
            (
                &["userpass"],
                AuthCacheError::UnknownKey {
                    key: ConfigToken::new("userpass"),
                },
                "unknown authcache key `userpass` (expected ip, user, pass or password, \
                 separated by commas)",
            ),
            (
                &["pass"],
                AuthCacheError::NoIdentity,
                "authcache needs `user` or `ip` among its keys",
            ),
            (
                &["user", "0"],
                AuthCacheError::BadTime {
                    value: ConfigToken::new("0"),
                },
                "authcache time `0` is not a number of seconds from 1 to 31536000",
            ),
            (
                &["user", "60", "x"],
                AuthCacheError::BadSize {
                    value: ConfigToken::new("x"),
                },
                "authcache size `x` is not a number from 1 to 4194304",
            ),
        ] {
            let e = AuthCacheLine::parse(args).unwrap_err();
            assert_eq!(e, error, "{args:?}");
            assert_eq!(e.to_string(), text);
        }
        assert!(AuthCacheLine::parse(&["user", "31536001"]).is_err());
        assert!(AuthCacheLine::parse(&["user", "60", "4194305"]).is_err());
        assert!(AuthCacheLine::parse(&["user,,pass"]).is_err());
    }

    #[test]
    fn hit_miss_and_expiry_in_virtual_time() {
        let t0 = start();
        let s = settings("user,pass", "60");
        let cache = AuthCache::new(10);
        let a = ip("192.0.2.1");
        assert_eq!(cache.lookup(t0, &s, a, Some(b"alice"), Some(b"pw")), None);
        cache.insert(t0, &s, a, "alice", Some(b"pw"));
        assert_eq!(
            cache.lookup(t0, &s, a, Some(b"alice"), Some(b"pw")),
            Some("alice".into())
        );
        // Any address (no `ip` key), same name and password.
        let later = t0 + Duration::from_secs(59);
        assert_eq!(
            cache.lookup(later, &s, ip("::1"), Some(b"alice"), Some(b"pw")),
            Some("alice".into())
        );
        // Wrong password, other user, missing values: misses.
        assert_eq!(cache.lookup(t0, &s, a, Some(b"alice"), Some(b"PW")), None);
        assert_eq!(cache.lookup(t0, &s, a, Some(b"alice"), Some(b"p")), None);
        assert_eq!(cache.lookup(t0, &s, a, Some(b"bob"), Some(b"pw")), None);
        assert_eq!(cache.lookup(t0, &s, a, Some(b"alice"), None), None);
        assert_eq!(cache.lookup(t0, &s, a, None, Some(b"pw")), None);
        // Expired at TIME exactly.
        let end = t0 + Duration::from_secs(60);
        assert_eq!(cache.lookup(end, &s, a, Some(b"alice"), Some(b"pw")), None);
        // A service with other keys does not see the entry.
        let user_only = settings("user", "60");
        assert_eq!(cache.lookup(t0, &user_only, a, Some(b"alice"), None), None);
        // Without a password nothing is cached under a `pass` key.
        cache.insert(t0, &s, a, "bob", None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn ip_key_names_the_cached_user() {
        let t0 = start();
        let s = settings("ip", "10");
        let cache = AuthCache::new(10);
        cache.insert(t0, &s, ip("192.0.2.1"), "alice", Some(b"pw"));
        // The address alone is enough, and the cached name is the one used.
        assert_eq!(
            cache.lookup(t0, &s, ip("192.0.2.1"), None, None),
            Some("alice".into())
        );
        assert_eq!(
            cache.lookup(t0, &s, ip("192.0.2.1"), Some(b"mallory"), Some(b"x")),
            Some("alice".into())
        );
        assert_eq!(cache.lookup(t0, &s, ip("192.0.2.2"), None, None), None);
        let s2 = settings("ip,user,pass", "10");
        cache.insert(t0, &s2, ip("192.0.2.1"), "bob", Some(b"pw"));
        assert_eq!(
            cache.lookup(t0, &s2, ip("192.0.2.1"), Some(b"bob"), Some(b"pw")),
            Some("bob".into())
        );
        assert_eq!(
            cache.lookup(t0, &s2, ip("192.0.2.9"), Some(b"bob"), Some(b"pw")),
            None
        );
    }

    #[test]
    fn size_bound_drops_the_first_to_expire() {
        let t0 = start();
        let s = settings("user", "100");
        let cache = AuthCache::new(3);
        assert_eq!(cache.capacity(), 3);
        let a = ip("192.0.2.1");
        for (i, name) in ["u0", "u1", "u2", "u3", "u4"].iter().enumerate() {
            cache.insert(t0 + Duration::from_secs(i as u64), &s, a, name, None);
            assert!(cache.len() <= 3);
        }
        let now = t0 + Duration::from_secs(5);
        let hits: Vec<_> = ["u0", "u1", "u2", "u3", "u4"]
            .iter()
            .filter(|n| cache.lookup(now, &s, a, Some(n.as_bytes()), None).is_some())
            .collect();
        assert_eq!(hits, [&"u2", &"u3", &"u4"]);
        // Refreshing an entry moves its expiry, so u3 is now the first to go.
        cache.insert(now, &s, a, "u2", None);
        cache.insert(now, &s, a, "u5", None);
        assert!(cache.lookup(now, &s, a, Some(b"u3"), None).is_none());
        assert!(cache.lookup(now, &s, a, Some(b"u2"), None).is_some());
        // Expired entries go first, whatever their order.
        let late = t0 + Duration::from_secs(1000);
        cache.insert(late, &s, a, "fresh", None);
        assert_eq!(cache.len(), 1);
        assert!(!cache.is_empty());
        assert!(format!("{cache:?}").contains("capacity: 3"));
    }
}
