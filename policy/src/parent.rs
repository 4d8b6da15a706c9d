//! Parent proxies (3proxy `parent`): chains of hops attached to an `allow` entry.
//!
//! A `parent WEIGHT TYPE ADDR PORT [USER [PASS]]` line adds a hop to the last ACL entry.
//! Consecutive hops form groups whose weights add up to 1000; for each connection one hop
//! is drawn from every group (with probability weight/1000), and the drawn hops, in order,
//! are the chain: the proxy connects to the first hop, asks it to connect to the second,
//! and so on, and asks the last one for the real destination. `parent 500 A` +
//! `parent 500 B` is "A or B"; `parent 1000 A` + `parent 1000 B` is "A, then B". A group
//! whose weights stay below 1000 leaves (1000 - sum) / 1000 for "no hop from this group".
//!
//! Draws come from [`ParentRandom`], a seeded counter-based generator the daemon seeds
//! once; the same seed gives the same chains.
//!
//! Supported hop types: `tcp` and `http` (the SOCKS service relays to the hop as a plain
//! TCP connection; it must be the last hop), `connect`/`connect+` (HTTP CONNECT),
//! `socks4`/`socks4+` (SOCKS4, SOCKS4a) and `socks5`/`socks5+`. The `+` types send the
//! host name the client asked for instead of its address. Other 3proxy types (TLS `s`
//! suffixes, the `b` variants for broken servers, local redirections, `ha`, `extip`) are
//! refused with their name. Limits: [`MAX_PARENTS_PER_ACE`] lines per entry, at most
//! [`MAX_CHAIN_HOPS`] groups (hops in one chain).

use arrayvec::ArrayVec;
use core::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

/// At most this many hops in one chain (groups of `parent` lines on one ACL entry).
pub const MAX_CHAIN_HOPS: usize = 8;
/// At most this many `parent` lines on one ACL entry.
pub const MAX_PARENTS_PER_ACE: usize = 64;
/// Weights of one group add up to this (3proxy's scale).
pub const FULL_WEIGHT: u16 = 1000;
/// The longest USER or PASS of a `parent` line, in bytes (RFC 1929's field size).
pub const MAX_PARENT_CREDENTIAL_LEN: usize = 255;

/// How the proxy talks to one hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParentKind {
    /// `tcp`: no negotiation; the hop is the destination. Last hop only.
    Tcp,
    /// `http`: an HTTP proxy in HTTP mode; for a SOCKS service it behaves as `tcp`
    /// (as in 3proxy). Last hop only.
    Http,
    /// `connect` / `connect+`: HTTP CONNECT.
    Connect {
        /// `+`: ask for the host name the client gave rather than its address.
        names: bool,
    },
    /// `socks4` (IPv4 destinations only) / `socks4+` (SOCKS4a, host names too).
    Socks4 {
        /// `+`: SOCKS4a with the host name.
        names: bool,
    },
    /// `socks5` / `socks5+`.
    Socks5 {
        /// `+`: ATYP domain with the host name.
        names: bool,
    },
}

impl ParentKind {
    /// Parses a 3proxy parent type.
    ///
    /// ```
    /// use triproxy_policy::parent::ParentKind;
    /// assert_eq!(ParentKind::parse("socks5+"), Ok(ParentKind::Socks5 { names: true }));
    /// assert!(ParentKind::parse("socks5s").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<ParentKind, ParentError> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "tcp" => ParentKind::Tcp,
            "http" => ParentKind::Http,
            "connect" => ParentKind::Connect { names: false },
            "connect+" => ParentKind::Connect { names: true },
            "socks4" => ParentKind::Socks4 { names: false },
            "socks4+" => ParentKind::Socks4 { names: true },
            "socks5" => ParentKind::Socks5 { names: false },
            "socks5+" => ParentKind::Socks5 { names: true },
            "https" | "tcps" | "connects" | "connect+s" | "socks4s" | "socks4+s" | "socks5s"
            | "socks5+s" | "socks4b" | "socks5b" | "pop3" | "smtp" | "ftp" | "imap" | "admin"
            | "tls" | "dns" | "ha" | "extip" => {
                return Err(ParentError::UnsupportedType { text: text.into() })
            }
            _ => return Err(ParentError::UnknownType { text: text.into() }),
        })
    }

    /// Whether the hop ends a chain (no negotiation: it is the destination).
    pub fn is_terminal(self) -> bool {
        matches!(self, ParentKind::Tcp | ParentKind::Http)
    }

    /// Whether the hop is asked for host names rather than addresses (the `+` types).
    pub fn sends_names(self) -> bool {
        match self {
            ParentKind::Connect { names }
            | ParentKind::Socks4 { names }
            | ParentKind::Socks5 { names } => names,
            ParentKind::Tcp | ParentKind::Http => false,
        }
    }
}

impl fmt::Display for ParentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (base, names) = match *self {
            ParentKind::Tcp => ("tcp", false),
            ParentKind::Http => ("http", false),
            ParentKind::Connect { names } => ("connect", names),
            ParentKind::Socks4 { names } => ("socks4", names),
            ParentKind::Socks5 { names } => ("socks5", names),
        };
        write!(f, "{base}{}", if names { "+" } else { "" })
    }
}

/// What a hop is told about who we are.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum ParentCredentials {
    /// No USER on the line.
    #[default]
    None,
    /// USER and PASS from the line (PASS may be empty).
    Fixed {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// USER `*`: the client's own user name and password (3proxy code 4 if it gave none).
    Client,
}

impl fmt::Debug for ParentCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParentCredentials::None => f.write_str("None"),
            ParentCredentials::Fixed { user, .. } => write!(f, "Fixed({user}, <password>)"),
            ParentCredentials::Client => f.write_str("Client"),
        }
    }
}

/// One `parent` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentHop {
    /// 1..=1000.
    pub weight: u16,
    /// How to talk to it.
    pub kind: ParentKind,
    /// Where it listens.
    pub addr: SocketAddr,
    /// What to tell it.
    pub credentials: ParentCredentials,
}

impl ParentHop {
    /// Parses the words after `parent`: `WEIGHT TYPE ADDR PORT [USER [PASS]]`. ADDR must be
    /// an IP address (names are not resolved at start-up); PORT 1..=65535.
    ///
    /// ```
    /// use triproxy_policy::parent::{ParentHop, ParentKind};
    /// let hop = ParentHop::parse(&["1000", "socks5", "127.0.0.1", "1081", "u", "p"]).unwrap();
    /// assert_eq!(hop.kind, ParentKind::Socks5 { names: false });
    /// assert_eq!(hop.addr.port(), 1081);
    /// assert!(ParentHop::parse(&["0", "socks5", "127.0.0.1", "1081"]).is_err());
    /// ```
    pub fn parse(words: &[&str]) -> Result<ParentHop, ParentError> {
        let [weight, kind, addr, port, rest @ ..] = words else {
            return Err(ParentError::Fields { count: words.len() });
        };
        if rest.len() > 2 {
            return Err(ParentError::Fields { count: words.len() });
        }
        let weight = weight
            .parse::<u16>()
            .ok()
            .filter(|w| (1..=FULL_WEIGHT).contains(w))
            .ok_or_else(|| ParentError::Weight {
                text: (*weight).into(),
            })?;
        let kind = ParentKind::parse(kind)?;
        let ip: IpAddr = addr.parse().map_err(|_| ParentError::Address {
            text: (*addr).into(),
        })?;
        if ip.is_unspecified() {
            return Err(ParentError::LocalRedirection);
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                if *port == "0" {
                    ParentError::LocalRedirection
                } else {
                    ParentError::Port {
                        text: (*port).into(),
                    }
                }
            })?;
        let credentials = match rest {
            [] => ParentCredentials::None,
            ["*", ..] => ParentCredentials::Client,
            [user, more @ ..] => {
                let password = more.first().copied().unwrap_or_default();
                for (field, value) in [("user", *user), ("password", password)] {
                    if value.len() > MAX_PARENT_CREDENTIAL_LEN {
                        return Err(ParentError::CredentialTooLong { field });
                    }
                    if value.bytes().any(|b| b.is_ascii_control()) {
                        return Err(ParentError::CredentialControl { field });
                    }
                }
                if user.is_empty() {
                    ParentCredentials::None
                } else {
                    ParentCredentials::Fixed {
                        user: (*user).into(),
                        password: password.into(),
                    }
                }
            }
        };
        Ok(ParentHop {
            weight,
            kind,
            addr: SocketAddr::new(ip, port),
            credentials,
        })
    }
}

/// The `parent` lines of one ACL entry, grouped as they are added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parents {
    hops: Vec<ParentHop>,
    /// Index of the first hop of each group.
    groups: ArrayVec<usize, MAX_CHAIN_HOPS>,
    /// Weight sum of the last group.
    open_weight: u16,
}

impl Parents {
    /// No parents: connect directly.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether there are no hops.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }

    /// The hops in the order of their lines.
    pub fn hops(&self) -> &[ParentHop] {
        &self.hops
    }

    /// Adds the next `parent` line: it joins the open group, or starts a new one when the
    /// open group's weights reached 1000.
    ///
    /// ```
    /// use triproxy_policy::parent::{ParentHop, Parents};
    /// let mut p = Parents::new();
    /// p.push(ParentHop::parse(&["1000", "socks5", "127.0.0.1", "1081"]).unwrap()).unwrap();
    /// p.push(ParentHop::parse(&["1000", "tcp", "127.0.0.1", "8080"]).unwrap()).unwrap();
    /// // A tcp hop must be the last one.
    /// assert!(p.push(ParentHop::parse(&["1000", "socks4", "127.0.0.1", "1082"]).unwrap()).is_err());
    /// ```
    pub fn push(&mut self, hop: ParentHop) -> Result<(), ParentError> {
        if self.hops.len() >= MAX_PARENTS_PER_ACE {
            return Err(ParentError::TooManyParents {
                limit: MAX_PARENTS_PER_ACE,
            });
        }
        let starts_group = self.groups.is_empty() || self.open_weight >= FULL_WEIGHT;
        if starts_group {
            let last_group_terminal = self
                .groups
                .last()
                .and_then(|&start| self.hops.get(start..))
                .is_some_and(|g| g.iter().any(|h| h.kind.is_terminal()));
            if last_group_terminal {
                return Err(ParentError::AfterTerminal);
            }
            self.groups
                .try_push(self.hops.len())
                .map_err(|_| ParentError::ChainTooLong {
                    limit: MAX_CHAIN_HOPS,
                })?;
            self.open_weight = 0;
        }
        self.open_weight = self.open_weight.saturating_add(hop.weight);
        self.hops.push(hop);
        Ok(())
    }

    /// Draws one chain with `random` (one value per connection, from [`ParentRandom`]):
    /// one hop or none from each group. Empty: connect directly.
    pub fn choose(&self, random: u64) -> ArrayVec<&ParentHop, MAX_CHAIN_HOPS> {
        let mut chain = ArrayVec::new();
        for (i, &start) in self.groups.iter().enumerate() {
            let end = self.groups.get(i + 1).copied().unwrap_or(self.hops.len());
            let group = self.hops.get(start..end).unwrap_or_default();
            let draw = if group.len() == 1 && group.iter().all(|h| h.weight >= FULL_WEIGHT) {
                0
            } else {
                (splitmix64(random.wrapping_add(i as u64)) % u64::from(FULL_WEIGHT)) as u16
            };
            let mut sum = 0u16;
            for hop in group {
                sum = sum.saturating_add(hop.weight);
                if draw < sum {
                    chain.push(hop);
                    break;
                }
            }
        }
        chain
    }
}

/// A seeded source of per-connection draws for [`Parents::choose`] (SplitMix64 over a
/// counter): deterministic for a seed, shared by every session of a process.
#[derive(Debug, Default)]
pub struct ParentRandom {
    counter: AtomicU64,
}

impl ParentRandom {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        ParentRandom {
            counter: AtomicU64::new(seed),
        }
    }

    /// The next draw.
    pub fn next(&self) -> u64 {
        splitmix64(
            self.counter
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed),
        )
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `parent` line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParentError {
    /// Not `WEIGHT TYPE ADDR PORT [USER [PASS]]`.
    Fields {
        /// Words given.
        count: usize,
    },
    /// WEIGHT is not 1..=1000.
    Weight {
        /// The word.
        text: String,
    },
    /// Not a 3proxy parent type.
    UnknownType {
        /// The word.
        text: String,
    },
    /// A 3proxy parent type triproxy does not speak.
    UnsupportedType {
        /// The word.
        text: String,
    },
    /// ADDR is not an IP address.
    Address {
        /// The word.
        text: String,
    },
    /// PORT is not 1..=65535.
    Port {
        /// The word.
        text: String,
    },
    /// ADDR 0.0.0.0 or PORT 0 (3proxy's local redirection to another service).
    LocalRedirection,
    /// USER or PASS longer than [`MAX_PARENT_CREDENTIAL_LEN`].
    CredentialTooLong {
        /// `user` or `password`.
        field: &'static str,
    },
    /// USER or PASS with a control character (it would corrupt the hop's protocol).
    CredentialControl {
        /// `user` or `password`.
        field: &'static str,
    },
    /// A hop after a `tcp`/`http` hop, which ends the chain.
    AfterTerminal,
    /// `parent` with no `allow` line before it (3proxy: "last ACL entry was not allow").
    NotAfterAllow,
    /// More than [`MAX_CHAIN_HOPS`] groups.
    ChainTooLong {
        /// The limit.
        limit: usize,
    },
    /// More than [`MAX_PARENTS_PER_ACE`] lines on one entry.
    TooManyParents {
        /// The limit.
        limit: usize,
    },
}

impl fmt::Display for ParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParentError::Fields { count } => write!(
                f,
                "expected `WEIGHT TYPE ADDR PORT [USER [PASS]]`, got {count} words"
            ),
            ParentError::Weight { text } => write!(f, "weight `{text}` is not 1..1000"),
            ParentError::UnknownType { text } => write!(f, "unknown parent type `{text}`"),
            ParentError::UnsupportedType { text } => write!(
                f,
                "parent type `{text}` is not supported by triproxy (supported: tcp, http, \
                 connect, connect+, socks4, socks4+, socks5, socks5+)"
            ),
            ParentError::Address { text } => {
                write!(f, "parent address `{text}` is not an IP address")
            }
            ParentError::Port { text } => write!(f, "parent port `{text}` is not 1..65535"),
            ParentError::LocalRedirection => f.write_str(
                "address 0.0.0.0 or port 0 (local redirection to another service) is not \
                 supported by triproxy",
            ),
            ParentError::CredentialTooLong { field } => write!(
                f,
                "parent {field} is longer than {MAX_PARENT_CREDENTIAL_LEN} bytes"
            ),
            ParentError::CredentialControl { field } => {
                write!(f, "parent {field} contains a control character")
            }
            ParentError::AfterTerminal => {
                f.write_str("a `tcp` or `http` parent ends the chain; no hop can follow it")
            }
            ParentError::NotAfterAllow => {
                f.write_str("`parent` must follow an `allow` line (it adds a hop to that entry)")
            }
            ParentError::ChainTooLong { limit } => {
                write!(f, "a chain can have at most {limit} hops")
            }
            ParentError::TooManyParents { limit } => {
                write!(f, "at most {limit} parent lines per ACL entry")
            }
        }
    }
}

impl std::error::Error for ParentError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn hop(weight: &str, kind: &str, port: &str) -> ParentHop {
        ParentHop::parse(&[weight, kind, "127.0.0.1", port]).unwrap()
    }

    fn ports(chain: &[&ParentHop]) -> Vec<u16> {
        chain.iter().map(|h| h.addr.port()).collect()
    }

    #[test]
    fn full_weights_make_a_chain_in_line_order() {
        let mut p = Parents::new();
        p.push(hop("1000", "socks5", "1")).unwrap();
        p.push(hop("1000", "connect", "2")).unwrap();
        p.push(hop("1000", "socks4", "3")).unwrap();
        for r in [0, 1, u64::MAX, 12345] {
            assert_eq!(ports(&p.choose(r)), [1, 2, 3]);
        }
    }

    #[test]
    fn a_group_picks_by_weight() {
        let mut p = Parents::new();
        p.push(hop("250", "socks5", "1")).unwrap();
        p.push(hop("750", "socks5", "2")).unwrap();
        p.push(hop("1000", "tcp", "3")).unwrap();
        let random = ParentRandom::new(7);
        let mut firsts = [0u32; 2];
        for _ in 0..10_000 {
            let chain = p.choose(random.next());
            assert_eq!(chain.len(), 2);
            assert_eq!(chain[1].addr.port(), 3);
            firsts[usize::from(chain[0].addr.port() - 1)] += 1;
        }
        // 25 % / 75 %, within a few percent.
        assert!((2_200..2_800).contains(&firsts[0]), "{firsts:?}");
    }

    #[test]
    fn an_underweight_group_can_pick_nothing() {
        let mut p = Parents::new();
        p.push(hop("300", "socks5", "1")).unwrap();
        let random = ParentRandom::new(1);
        let direct = (0..10_000)
            .filter(|_| p.choose(random.next()).is_empty())
            .count();
        assert!((6_600..7_400).contains(&direct), "{direct}");
    }

    #[test]
    fn same_seed_same_chains() {
        let mut p = Parents::new();
        p.push(hop("500", "socks5", "1")).unwrap();
        p.push(hop("500", "socks5", "2")).unwrap();
        let (a, b) = (ParentRandom::new(42), ParentRandom::new(42));
        for _ in 0..100 {
            assert_eq!(ports(&p.choose(a.next())), ports(&p.choose(b.next())));
        }
    }

    #[test]
    fn limits_and_bad_lines() {
        let mut p = Parents::new();
        for i in 0..MAX_CHAIN_HOPS {
            p.push(hop("1000", "socks5", &format!("{}", i + 1)))
                .unwrap();
        }
        assert_eq!(
            p.push(hop("1000", "socks5", "99")),
            Err(ParentError::ChainTooLong {
                limit: MAX_CHAIN_HOPS
            })
        );
        let bad = |w: &[&str]| ParentHop::parse(w).unwrap_err().to_string();
        assert_eq!(
            bad(&["1001", "socks5", "127.0.0.1", "1"]),
            "weight `1001` is not 1..1000"
        );
        assert!(bad(&["1000", "socks5s", "127.0.0.1", "1"]).contains("not supported"));
        assert!(bad(&["1000", "sox", "127.0.0.1", "1"]).contains("unknown parent type"));
        assert!(bad(&["1000", "socks5", "proxy.example", "1"]).contains("not an IP address"));
        assert!(bad(&["1000", "http", "0.0.0.0", "0"]).contains("local redirection"));
        assert!(bad(&["1000", "socks5", "127.0.0.1", "70000"]).contains("port"));
        assert!(bad(&["1000", "socks5", "127.0.0.1", "1", "a\r\nb"]).contains("control"));
        assert!(bad(&["1000", "socks5"]).contains("got 2 words"));
        let star = ParentHop::parse(&["1000", "socks5", "::1", "1", "*", "*"]).unwrap();
        assert_eq!(star.credentials, ParentCredentials::Client);
        // Debug output (logs, panics) never shows a parent's password.
        let fixed = ParentHop::parse(&["1000", "socks5", "::1", "1", "bob", "hunter2"]).unwrap();
        let shown = format!("{fixed:?}");
        assert!(
            shown.contains("bob") && !shown.contains("hunter2"),
            "{shown}"
        );
    }
}
