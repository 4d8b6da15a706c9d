//! Connection limits: 3proxy's `connlim RATE PERIOD <acl fields>` and `noconnlim <acl
//! fields>` rules.
//!
//! `connlim N 0` allows at most N *parallel* connections among all those the rule matches
//! (one counter per rule, shared like a bandwidth pipe); `connlim N P` (P > 0 seconds)
//! allows at most N *new* connections per P seconds. As in 3proxy (`startconnlims()`),
//! the rules are scanned in order and every matching rule applies until a matching
//! `noconnlim` stops the scan; a connection over any limit is refused with code 10. Rules
//! are global, whatever their position relative to the services.
//!
//! The rate is a leaky bucket (the "generic cell rate algorithm"): a rule's bucket holds up
//! to N connections and drains continuously at N per P seconds; a new connection must fit
//! in it. So N connections may come at once, and then one more every P/N seconds: at most
//! N in any window of P seconds plus what drained meanwhile. 3proxy keeps a "rating" that
//! decays linearly to nothing over P seconds after the *last* connection, and is scaled by
//! 2^20; a client that connects steadily just under the limit keeps it from ever draining
//! and is refused sooner than N per P, which this bucket does not do.
//!
//! Admission is all or nothing: a connection refused by a later rule takes no slot of an
//! earlier one (3proxy undoes the parallel counts but keeps the rate ratings it raised).
//! Parallel slots are released when the [`ConnPermit`] is dropped.
//!
//! Time is an argument (`now`); nothing here reads a clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_policy::acl::{Ace, Action};
//! use triproxy_policy::connlim::{ConnLimits, ConnRule};
//! # use triproxy_policy::acl::{AclRequest, CivilTime, Operation};
//! # let req = AclRequest { user: None, client: "10.0.0.1".parse().unwrap(),
//! #     target_host: None, target_ip: Some("192.0.2.1".parse().unwrap()), port: Some(80),
//! #     operation: Operation::Connect, time: CivilTime { weekday: 1, seconds_of_day: 0 } };
//!
//! let mut limits = ConnLimits::new();
//! limits.push(ConnRule::limit(1, Duration::ZERO, Ace::parse(Action::Allow, &[]).unwrap()));
//! let now = Instant::now();
//! let first = limits.admit(now, &req).unwrap();
//! assert!(limits.admit(now, &req).is_err()); // one at a time
//! drop(first);
//! assert!(limits.admit(now, &req).is_ok());
//! ```

use crate::acl::{Ace, AclRequest};
use core::fmt;
use core::time::Duration;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Highest RATE a rule may give.
pub const MAX_RATE: u32 = 1_000_000;
/// Longest PERIOD a rule may give, in seconds (a year).
pub const MAX_PERIOD_SECS: u64 = 31_536_000;

/// One `connlim` rule's state, shared by every connection the rule matches.
#[derive(Debug)]
pub struct Limiter {
    /// 1-based position among the `connlim` rules (for messages).
    index: u32,
    rate: u32,
    period: Duration,
    /// Parallel connections holding a slot (period 0).
    active: AtomicU32,
    /// Rate rules: the moment the bucket will be empty ("theoretical arrival time");
    /// `None` before the first connection.
    empty_at: Mutex<Option<Instant>>,
}

impl Limiter {
    fn interval(&self) -> Duration {
        self.period / self.rate.max(1)
    }

    fn empty_at(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.empty_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn limited(&self) -> ConnLimited {
        ConnLimited {
            rule: self.index,
            rate: self.rate,
            period: self.period,
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone)]
pub enum ConnRuleKind {
    /// Limit (`connlim`).
    Limit(Arc<Limiter>),
    /// Stop scanning (`noconnlim`).
    Exempt,
}

/// One `connlim` / `noconnlim` line.
#[derive(Debug, Clone)]
pub struct ConnRule {
    /// Limit or exemption.
    pub kind: ConnRuleKind,
    /// Which connections it matches (the ACL fields; the action is unused).
    pub matches: Ace,
}

impl ConnRule {
    /// `connlim RATE PERIOD`: `period` zero limits parallel connections, otherwise new
    /// connections per period. `rate` is clamped to 1..=[`MAX_RATE`] and `period` to
    /// [`MAX_PERIOD_SECS`] (the configuration reader refuses other values).
    pub fn limit(rate: u32, period: Duration, matches: Ace) -> ConnRule {
        ConnRule {
            kind: ConnRuleKind::Limit(Arc::new(Limiter {
                index: 0,
                rate: rate.clamp(1, MAX_RATE),
                period: period.min(Duration::from_secs(MAX_PERIOD_SECS)),
                active: AtomicU32::new(0),
                empty_at: Mutex::new(None),
            })),
            matches,
        }
    }

    /// `noconnlim`.
    pub fn exempt(matches: Ace) -> ConnRule {
        ConnRule {
            kind: ConnRuleKind::Exempt,
            matches,
        }
    }
}

/// A connection over a limit (3proxy code 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimited {
    /// 1-based position of the rule among the `connlim` rules.
    pub rule: u32,
    /// Its RATE.
    pub rate: u32,
    /// Its PERIOD (zero: parallel connections).
    pub period: Duration,
}

impl fmt::Display for ConnLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.period.is_zero() {
            write!(
                f,
                "connection limit {} reached (at most {} parallel connections)",
                self.rule, self.rate
            )
        } else {
            write!(
                f,
                "connection limit {} reached (at most {} new connections per {} s)",
                self.rule,
                self.rate,
                self.period.as_secs()
            )
        }
    }
}

impl std::error::Error for ConnLimited {}

/// The parallel-connection slots a connection holds; they are given back when it is
/// dropped. The default holds nothing (and allocates nothing).
#[derive(Debug, Default)]
pub struct ConnPermit {
    slots: Vec<Arc<Limiter>>,
}

impl ConnPermit {
    /// Whether it holds no slot.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        for l in &self.slots {
            // Only permits increment, so this never goes below zero.
            l.active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Every `connlim` / `noconnlim` rule of a configuration, in order.
#[derive(Debug, Default)]
pub struct ConnLimits {
    rules: Vec<ConnRule>,
    /// Admission checks every rule, then takes from every rule: one at a time, so two
    /// connections cannot both take the last slot.
    admit_lock: Mutex<()>,
}

impl ConnLimits {
    /// No rules: nothing is limited.
    pub fn new() -> ConnLimits {
        ConnLimits::default()
    }

    /// Appends a rule (later rules are scanned after earlier ones).
    pub fn push(&mut self, mut rule: ConnRule) {
        if let ConnRuleKind::Limit(l) = &mut rule.kind {
            let index = self
                .rules
                .iter()
                .filter(|r| matches!(r.kind, ConnRuleKind::Limit(_)))
                .count()
                + 1;
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            // A fresh rule's limiter is not shared yet; if it is, keep its number.
            if let Some(l) = Arc::get_mut(l) {
                l.index = index;
            }
        }
        self.rules.push(rule);
    }

    /// The rules in order.
    pub fn rules(&self) -> &[ConnRule] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Admits a new connection described by `req` at `now`, or names the first limit it
    /// is over. Keep the permit for the life of the connection.
    pub fn admit(&self, now: Instant, req: &AclRequest<'_>) -> Result<ConnPermit, ConnLimited> {
        if self.rules.is_empty() {
            return Ok(ConnPermit::default());
        }
        let matched: Vec<&Arc<Limiter>> = crate::acl::until_exempt(
            &self.rules,
            req,
            |r| &r.matches,
            |r| match &r.kind {
                ConnRuleKind::Exempt => None,
                ConnRuleKind::Limit(l) => Some(l),
            },
        );
        if matched.is_empty() {
            return Ok(ConnPermit::default());
        }
        let _one_at_a_time = self.admit_lock.lock().unwrap_or_else(|p| p.into_inner());
        for l in &matched {
            if l.period.is_zero() {
                if l.active.load(Ordering::Acquire) >= l.rate {
                    return Err(l.limited());
                }
            } else {
                let empty_at = l.empty_at().map_or(now, |t| t.max(now));
                // Room for one more: the bucket, with this connection in it, must not
                // hold more than `period` worth of intervals.
                if empty_at + l.interval() > now + l.period {
                    return Err(l.limited());
                }
            }
        }
        let mut slots = Vec::new();
        for l in matched {
            if l.period.is_zero() {
                l.active.fetch_add(1, Ordering::AcqRel);
                slots.push(Arc::clone(l));
            } else {
                let mut empty_at = l.empty_at();
                let from = empty_at.map_or(now, |t| t.max(now));
                *empty_at = Some(from + l.interval());
            }
        }
        Ok(ConnPermit { slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Action, CivilTime, Operation};

    fn req(client: &str) -> AclRequest<'static> {
        AclRequest {
            user: None,
            client: client.parse().unwrap(),
            target_host: None,
            target_ip: Some("192.0.2.1".parse().unwrap()),
            port: Some(80),
            operation: Operation::Connect,
            time: CivilTime {
                weekday: 1,
                seconds_of_day: 0,
            },
        }
    }

    fn ace(fields: &[&str]) -> Ace {
        Ace::parse(Action::Allow, fields).unwrap()
    }

    /// Some instant to start from (the code under test never reads the clock).
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn parallel_slots_are_shared_and_given_back() {
        let mut limits = ConnLimits::new();
        limits.push(ConnRule::limit(
            2,
            Duration::ZERO,
            ace(&["*", "10.0.0.0/8"]),
        ));
        let t = start();
        let a = limits.admit(t, &req("10.0.0.1")).unwrap();
        let b = limits.admit(t, &req("10.0.0.2")).unwrap();
        let err = limits.admit(t, &req("10.0.0.3")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection limit 1 reached (at most 2 parallel connections)"
        );
        assert!(limits.admit(t, &req("192.168.0.1")).unwrap().is_empty());
        drop(a);
        let c = limits.admit(t, &req("10.0.0.3")).unwrap();
        assert!(!c.is_empty());
        drop((b, c));
        assert!(limits.admit(t, &req("10.0.0.3")).is_ok());
    }

    #[test]
    fn an_exception_stops_the_scan() {
        let mut limits = ConnLimits::new();
        limits.push(ConnRule::exempt(ace(&["*", "10.0.0.1"])));
        limits.push(ConnRule::limit(1, Duration::ZERO, ace(&[])));
        let t = start();
        let _held = limits.admit(t, &req("10.0.0.2")).unwrap();
        assert!(limits.admit(t, &req("10.0.0.3")).is_err());
        for _ in 0..5 {
            assert!(limits.admit(t, &req("10.0.0.1")).unwrap().is_empty());
        }
    }

    #[test]
    fn refusal_by_a_later_rule_takes_nothing_from_an_earlier_one() {
        let mut limits = ConnLimits::new();
        limits.push(ConnRule::limit(5, Duration::ZERO, ace(&[])));
        limits.push(ConnRule::limit(1, Duration::ZERO, ace(&["*", "10.0.0.1"])));
        let t = start();
        let _a = limits.admit(t, &req("10.0.0.1")).unwrap();
        for _ in 0..10 {
            let e = limits.admit(t, &req("10.0.0.1")).unwrap_err();
            assert_eq!(e.rule, 2);
        }
        let others: Vec<_> = (0..4)
            .map(|_| limits.admit(t, &req("10.0.0.9")).unwrap())
            .collect();
        assert_eq!(others.len(), 4);
        assert_eq!(limits.admit(t, &req("10.0.0.9")).unwrap_err().rule, 1);
    }

    #[test]
    fn rate_allows_a_burst_then_one_per_interval() {
        let mut limits = ConnLimits::new();
        limits.push(ConnRule::limit(3, secs(60), ace(&[])));
        let t = start();
        let r = req("10.0.0.1");
        for _ in 0..3 {
            assert!(limits.admit(t, &r).unwrap().is_empty(), "no slot to hold");
        }
        let e = limits.admit(t, &r).unwrap_err();
        assert_eq!(
            e.to_string(),
            "connection limit 1 reached (at most 3 new connections per 60 s)"
        );
        assert!(limits.admit(t + secs(19), &r).is_err());
        assert!(
            limits.admit(t + secs(20), &r).is_ok(),
            "one interval drained"
        );
        assert!(limits.admit(t + secs(20), &r).is_err());
        // After a full quiet period the whole burst is back.
        let later = t + secs(200);
        for _ in 0..3 {
            assert!(limits.admit(later, &r).is_ok());
        }
        assert!(limits.admit(later, &r).is_err());
    }

    #[test]
    fn a_steady_client_under_the_rate_is_never_refused() {
        let mut limits = ConnLimits::new();
        limits.push(ConnRule::limit(10, secs(10), ace(&[])));
        let t = start();
        let r = req("10.0.0.1");
        // One per second for ten minutes: exactly the rate.
        for i in 0..600 {
            assert!(limits.admit(t + secs(i), &r).is_ok(), "second {i}");
        }
        // At no time more than 10 + (elapsed / 1 s) admitted.
        let mut admitted = 0u64;
        let t2 = t + secs(10_000);
        for ms in 0..20_000u64 {
            if limits.admit(t2 + Duration::from_millis(ms), &r).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10 + 19, "burst of 10, then one per second");
    }
}
