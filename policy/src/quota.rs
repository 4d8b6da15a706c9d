//! Traffic quotas: 3proxy's `countin` / `countout` / `countall` rules and their `nocount*`
//! exceptions, as counters shared by every connection they match.
//!
//! A rule `countin "NUM/comment" TYPE LIMIT_MB <acl fields>` counts the bytes going *to
//! the client* (downloads, 3proxy "in") of every connection it matches, in one counter that
//! starts again from zero every period TYPE ([`Period`]); once the counter reaches
//! LIMIT_MB MiB, new matching connections are refused with code 10 and running ones are
//! told to stop ([`Quota::charge`]). `countout` counts the bytes going *to the target*,
//! `countall` both (into the same counter). NUM is the counter's slot in the counter file
//! ([`crate::counterfile`]); 0 means "not persisted".
//!
//! Selection follows 3proxy 1.0 (`alwaysauth()` and `trafcountfunc()`), per direction:
//! scanning the rules in order, every matching counting rule of that direction applies,
//! until a matching exception of that direction stops the scan (`nocountin` stops "in",
//! `nocountout` stops "out", `nocountall` both). Rules of the other direction are skipped.
//! Rules are global, whatever their position relative to the services.
//!
//! Where triproxy differs from 3proxy: 3proxy adds a connection's bytes to the counters
//! only when the connection is logged (at its end), and lets it run until it has moved
//! what was left of the quota *at its start*; two downloads started together may each
//! use the whole remainder, and a connection's bytes are invisible to the others until it
//! ends. Here every relayed chunk is added at once to counters shared (atomically) by all
//! connections, so concurrent tunnels draw on one quota and all stop as soon as it is
//! spent.
//!
//! Nothing here reads a clock or a file: the daemon calls [`Quotas::tick`] every minute
//! with the local time, writes the reports it returns and saves [`Quotas::store`] into the
//! counter file.
//!
//! ```
//! use triproxy_policy::acl::{Ace, Action};
//! use triproxy_policy::bandlim::Direction;
//! use triproxy_policy::period::Period;
//! use triproxy_policy::quota::{CountDirection, Quotas, Rule};
//! # use triproxy_policy::acl::{AclRequest, CivilTime, Operation};
//! # let request = AclRequest { user: None, client: "10.0.0.1".parse().unwrap(),
//! #     target_host: None, target_ip: Some("192.0.2.1".parse().unwrap()), port: Some(80),
//! #     operation: Operation::Connect, time: CivilTime { weekday: 1, seconds_of_day: 0 } };
//!
//! let mut quotas = Quotas::new();
//! let any = Ace::parse(Action::Allow, &[]).unwrap();
//! quotas.push(Rule::count(CountDirection::In, 1, "all", Period::Daily, 1, any)).unwrap();
//! let quota = quotas.select(&request).unwrap();
//! assert!(quota.charge(Direction::ToClient, 1_000_000).is_ok());
//! assert!(quota.charge(Direction::ToTarget, 1 << 30).is_ok()); // uploads are not counted
//! let over = quota.charge(Direction::ToClient, 48_576).unwrap_err(); // 1 MiB reached
//! assert_eq!(over.to_string(), "traffic quota 1 (countin, 1 MiB per day) reached");
//! assert!(quotas.select(&request).is_err()); // new connections are refused (code 10)
//! ```

use crate::acl::{Ace, AclRequest};
use crate::bandlim::Direction;
use crate::counterfile::{CounterFile, Record, MAX_COUNTER_NUMBER};
pub use crate::period::{LocalStamp, Period};
use core::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One MiB: quota limits are given in MiB (3proxy multiplies by 1024 * 1024).
pub const MIB: u64 = 1 << 20;
/// Largest limit in MiB (keeps the limit in bytes within a `u64` with room to spare).
pub const MAX_LIMIT_MIB: u64 = 1 << 40;

/// Which traffic a rule counts (or exempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountDirection {
    /// `countin` / `nocountin`: bytes to the client.
    In,
    /// `countout` / `nocountout`: bytes to the target.
    Out,
    /// `countall` / `nocountall`: both.
    All,
}

impl CountDirection {
    /// Whether bytes going `direction` belong to it.
    pub fn covers(self, direction: Direction) -> bool {
        matches!(
            (self, direction),
            (CountDirection::All, _)
                | (CountDirection::In, Direction::ToClient)
                | (CountDirection::Out, Direction::ToTarget)
        )
    }

    /// The counting command: `countin`, `countout`, `countall`.
    pub fn command(self) -> &'static str {
        match self {
            CountDirection::In => "countin",
            CountDirection::Out => "countout",
            CountDirection::All => "countall",
        }
    }
}

/// A quota that is used up: the reason a connection is refused or stopped (3proxy code
/// 10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The rule's counter number (NUM; 0 if not persisted).
    pub rule: u32,
    /// What the rule counts.
    pub direction: CountDirection,
    /// How often it starts again.
    pub period: Period,
    /// The limit in bytes.
    pub limit_bytes: u64,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "traffic quota {} ({}, {} MiB {}) reached",
            self.rule,
            self.direction.command(),
            self.limit_bytes / MIB,
            self.period.per()
        )
    }
}

impl std::error::Error for QuotaExceeded {}

/// When a counter was last reset and last counted, for the counter file and the reports.
#[derive(Debug, Clone, Copy, Default)]
struct Times {
    /// Local time of the last reset; `None` until the first tick (or a restored file) says.
    cleared: Option<LocalStamp>,
    /// Unix time traffic was last seen added (at tick granularity); 0 = never.
    updated: i64,
    /// The byte count at the last tick, to notice new traffic.
    seen: u64,
}

/// One counting rule's tally, shared by every connection the rule matches.
#[derive(Debug)]
pub struct Counter {
    number: u32,
    comment: String,
    direction: CountDirection,
    period: Period,
    limit: u64,
    bytes: AtomicU64,
    /// Switched off by the web admin (`/CD<n>`): a disabled counter neither counts nor
    /// refuses, and its rule is skipped when connections are matched (3proxy's
    /// `trafcount.disabled`). Atomic so the admin thread can flip it while connections
    /// run; new connections see it, running ones keep the selection they started with.
    disabled: AtomicBool,
    times: Mutex<Times>,
}

impl Counter {
    /// A counter at zero. `limit_mib` is clamped to 1..=[`MAX_LIMIT_MIB`] (the
    /// configuration reader refuses other values before they get here).
    pub fn new(
        number: u32,
        comment: &str,
        direction: CountDirection,
        period: Period,
        limit_mib: u64,
    ) -> Counter {
        Counter {
            number,
            comment: comment.to_owned(),
            direction,
            period,
            limit: limit_mib.clamp(1, MAX_LIMIT_MIB) * MIB,
            bytes: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
            times: Mutex::new(Times::default()),
        }
    }

    /// The counter number (NUM).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// Bytes counted in the current period.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The limit in bytes.
    pub fn limit_bytes(&self) -> u64 {
        self.limit
    }

    /// The rule's comment (the text after `NUM/`; may be empty).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// What the counter counts.
    pub fn direction(&self) -> CountDirection {
        self.direction
    }

    /// How often it starts again.
    pub fn period(&self) -> Period {
        self.period
    }

    /// Local time of its last reset (`None` until the first minutely tick, or a counter
    /// file, says).
    pub fn last_reset(&self) -> Option<LocalStamp> {
        self.times().cleared
    }

    /// Unix time at which new traffic was last seen by a minutely tick (0: never).
    pub fn last_updated(&self) -> i64 {
        self.times().updated
    }

    /// Whether the counter is switched off ([`Counter::set_disabled`]).
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    /// Switches the counter off (`true`) or on again (`false`), as 3proxy's web admin
    /// `/CD<n>` and `/CS<n>` do. A disabled counter's rule is skipped by
    /// [`Quotas::select`]: new connections are neither counted nor refused by it. Its
    /// tally is kept, so switching it on again continues where it stopped.
    pub fn set_disabled(&self, disabled: bool) {
        self.disabled.store(disabled, Ordering::Relaxed);
    }

    fn exceeded(&self) -> QuotaExceeded {
        QuotaExceeded {
            rule: self.number,
            direction: self.direction,
            period: self.period,
            limit_bytes: self.limit,
        }
    }

    fn check(&self) -> Result<(), QuotaExceeded> {
        if self.bytes() >= self.limit {
            Err(self.exceeded())
        } else {
            Ok(())
        }
    }

    fn times(&self) -> std::sync::MutexGuard<'_, Times> {
        // Plain numbers: still valid after a panic elsewhere.
        self.times.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Count into this counter (`countin` / `countout` / `countall`).
    Count(Arc<Counter>),
    /// Stop scanning (`nocountin` / `nocountout` / `nocountall`).
    Exempt,
}

/// One `count*` or `nocount*` line.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What it counts or exempts.
    pub direction: CountDirection,
    /// Count or exemption.
    pub kind: RuleKind,
    /// Which connections it matches (the ACL fields; the action is unused).
    pub matches: Ace,
}

impl Rule {
    /// A counting rule with a fresh counter.
    pub fn count(
        direction: CountDirection,
        number: u32,
        comment: &str,
        period: Period,
        limit_mib: u64,
        matches: Ace,
    ) -> Rule {
        Rule {
            direction,
            kind: RuleKind::Count(Arc::new(Counter::new(
                number, comment, direction, period, limit_mib,
            ))),
            matches,
        }
    }

    /// An exception.
    pub fn exempt(direction: CountDirection, matches: Ace) -> Rule {
        Rule {
            direction,
            kind: RuleKind::Exempt,
            matches,
        }
    }
}

/// Why a rule cannot be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaRuleError {
    /// Two counting rules with the same NUM would share one record of the counter file.
    DuplicateNumber(u32),
    /// NUM above [`MAX_COUNTER_NUMBER`].
    NumberTooLarge(u32),
}

impl fmt::Display for QuotaRuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaRuleError::DuplicateNumber(n) => write!(
                f,
                "counter number {n} is already used by another rule (each needs its own record)"
            ),
            QuotaRuleError::NumberTooLarge(n) => {
                write!(f, "counter number {n} is above {MAX_COUNTER_NUMBER}")
            }
        }
    }
}

impl std::error::Error for QuotaRuleError {}

/// The counters one connection adds its bytes to (empty: nothing counts it).
///
/// One pointer wide and allocation-free when empty; cloning it clones one `Arc`.
#[derive(Clone, Default, Debug)]
pub struct Quota {
    counters: Option<Arc<Selected>>,
}

impl PartialEq for Quota {
    /// The same selection (by identity), as [`crate::bandlim::Pacer`] compares its buckets:
    /// two sessions' quotas are equal when they charge the same counters.
    fn eq(&self, other: &Quota) -> bool {
        match (&self.counters, &other.counters) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Quota {}

#[derive(Debug)]
struct Selected {
    to_client: Box<[Arc<Counter>]>,
    to_target: Box<[Arc<Counter>]>,
}

impl Quota {
    /// Whether no counter applies.
    pub fn is_empty(&self) -> bool {
        self.counters.is_none()
    }

    /// Adds `n` bytes that went `direction` to every counter of this connection that
    /// counts that direction; `Err` if any of them is now at or over its limit (the
    /// connection must stop, code 10). The bytes are counted even then: they were sent.
    ///
    /// A few relaxed atomic additions, no lock, no allocation: it runs per relayed chunk.
    pub fn charge(&self, direction: Direction, n: u64) -> Result<(), QuotaExceeded> {
        let Some(selected) = &self.counters else {
            return Ok(());
        };
        let counters = match direction {
            Direction::ToClient => &selected.to_client,
            Direction::ToTarget => &selected.to_target,
        };
        let mut result = Ok(());
        for c in counters.iter() {
            let total = c.bytes.fetch_add(n, Ordering::Relaxed).saturating_add(n);
            if total >= c.limit && result.is_ok() {
                result = Err(c.exceeded());
            }
        }
        result
    }
}

/// One line of a report file: `NNNNN TTTTTTTTTTTTTTTTTTTT #comment` (counter number and
/// bytes of the period just ended, as 3proxy's `%05d %020llu #%s`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportLine {
    /// Counter number.
    pub number: u32,
    /// Bytes counted in the period.
    pub bytes: u64,
    /// The rule's comment (may be empty).
    pub comment: String,
}

impl fmt::Display for ReportLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:05} {:020} #{}", self.number, self.bytes, self.comment)
    }
}

/// A report to write at a period change (`counter FILE TYPE PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// What 3proxy appends to PATH for the period reported: [`Period::file_suffix`] of its
    /// last dump, e.g. `.2026.12.01`.
    pub suffix: String,
    /// One line per counter whose period is the report's or longer, in rule order.
    pub lines: Vec<ReportLine>,
}

/// Every `count*` and `nocount*` rule of a configuration, in order.
#[derive(Debug, Default)]
pub struct Quotas {
    rules: Vec<Rule>,
    /// Local time of the last [`Quotas::tick`] (or of the counter file restored).
    last_tick: Mutex<Option<LocalStamp>>,
}

impl Quotas {
    /// No rules: nothing is counted.
    pub fn new() -> Quotas {
        Quotas::default()
    }

    /// Appends a rule (later rules are scanned after earlier ones).
    pub fn push(&mut self, rule: Rule) -> Result<(), QuotaRuleError> {
        if let RuleKind::Count(c) = &rule.kind {
            if c.number > MAX_COUNTER_NUMBER {
                return Err(QuotaRuleError::NumberTooLarge(c.number));
            }
            if c.number != 0 && self.counters().any(|o| o.number == c.number) {
                return Err(QuotaRuleError::DuplicateNumber(c.number));
            }
        }
        self.rules.push(rule);
        Ok(())
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
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
    /// Takes over the tallies of `old` (the configuration before a reload): a counter
    /// with the same non-zero number as one of `old` keeps counting where that one was.
    /// If its rule is unchanged (direction, period, limit, comment) it shares the old
    /// counter, so connections still running under the old configuration count into the
    /// same tally; otherwise the bytes and times are copied. Counters numbered 0 are not
    /// in the counter file and start again, as at a restart.
    pub fn adopt(&mut self, old: &Quotas) {
        for rule in &mut self.rules {
            let RuleKind::Count(counter) = &mut rule.kind else {
                continue;
            };
            if counter.number == 0 {
                continue;
            }
            let Some(previous) = old.counters().find(|o| o.number == counter.number) else {
                continue;
            };
            let same = previous.direction == counter.direction
                && previous.period == counter.period
                && previous.limit == counter.limit
                && previous.comment == counter.comment;
            if same {
                *counter = Arc::clone(previous);
            } else {
                counter
                    .bytes
                    .store(previous.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
                let times = *previous.times();
                *counter.times() = times;
            }
        }
        *self.lock_last() = *old.lock_last();
    }

    /// Every counter, in rule order.
    pub fn counters(&self) -> impl Iterator<Item = &Arc<Counter>> {
        self.rules.iter().filter_map(|r| match &r.kind {
            RuleKind::Count(c) => Some(c),
            RuleKind::Exempt => None,
        })
    }

    fn scan(&self, direction: Direction, req: &AclRequest<'_>) -> Vec<Arc<Counter>> {
        let rules = self.rules.iter().filter(|r| {
            r.direction.covers(direction)
                && match &r.kind {
                    RuleKind::Count(c) => !c.is_disabled(),
                    RuleKind::Exempt => true,
                }
        });
        crate::acl::until_exempt(
            rules,
            req,
            |r| &r.matches,
            |r| match &r.kind {
                RuleKind::Exempt => None,
                RuleKind::Count(c) => Some(Arc::clone(c)),
            },
        )
    }

    /// The counters that count a connection described by `req` (see the module
    /// documentation for the order and the exceptions), or the first of them that is
    /// already used up: the connection is then refused (code 10).
    pub fn select(&self, req: &AclRequest<'_>) -> Result<Quota, QuotaExceeded> {
        if self.rules.is_empty() {
            return Ok(Quota::default());
        }
        let to_client = self.scan(Direction::ToClient, req);
        let to_target = self.scan(Direction::ToTarget, req);
        for c in to_client.iter().chain(to_target.iter()) {
            c.check()?;
        }
        if to_client.is_empty() && to_target.is_empty() {
            return Ok(Quota::default());
        }
        Ok(Quota {
            counters: Some(Arc::new(Selected {
                to_client: to_client.into_boxed_slice(),
                to_target: to_target.into_boxed_slice(),
            })),
        })
    }

    /// Takes the tallies of `file` for the counters whose number it holds; `local`
    /// converts a Unix time of the file to local civil time (the daemon's time zone).
    /// Counters whose period has since ended are reset by the next [`Quotas::tick`].
    pub fn restore(&self, file: &CounterFile, local: impl Fn(i64) -> Option<LocalStamp>) {
        let from_unix = |t: i64| if t > 0 { local(t) } else { None };
        for c in self.counters().filter(|c| c.number != 0) {
            let Some(record) = file.get(c.number) else {
                continue;
            };
            c.bytes.store(record.bytes, Ordering::Relaxed);
            let mut times = c.times();
            times.cleared = from_unix(record.cleared);
            times.updated = record.updated;
            times.seen = record.bytes;
        }
        *self.lock_last() = from_unix(file.updated);
    }

    fn lock_last(&self) -> std::sync::MutexGuard<'_, Option<LocalStamp>> {
        self.last_tick.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The minutely step (3proxy `dumpcounters()`), at local time `now`: if `report` (the
    /// `counter` line's report period) changed since the last tick, the report of the
    /// period that ended, with the totals before any reset; then every counter whose own
    /// period changed since its last reset starts again from zero. A counter never reset
    /// before is marked reset now without losing what it counted (3proxy resets it and
    /// forgets its first minute).
    pub fn tick(&self, now: &LocalStamp, report: Option<Period>) -> Option<Report> {
        let previous = self.lock_last().replace(*now);
        let report = match (report, previous) {
            (Some(period), Some(prev)) if period.changed(prev.civil(), now.civil()) => {
                Some(Report {
                    suffix: period.file_suffix(prev.civil()),
                    lines: self
                        .counters()
                        .filter(|c| c.period >= period)
                        .map(|c| ReportLine {
                            number: c.number,
                            bytes: c.bytes(),
                            comment: c.comment.clone(),
                        })
                        .collect(),
                })
            }
            _ => None,
        };
        for c in self.counters() {
            let mut times = c.times();
            let bytes = c.bytes();
            if bytes != times.seen {
                times.updated = now.unix;
                times.seen = bytes;
            }
            match times.cleared {
                None => times.cleared = Some(*now),
                Some(cleared) if c.period.changed(cleared.civil(), now.civil()) => {
                    times.cleared = Some(*now);
                    // Bytes added since the load above belong to the new period.
                    c.bytes.fetch_sub(bytes, Ordering::Relaxed);
                    times.seen = 0;
                }
                Some(_) => {}
            }
        }
        report
    }

    /// Writes the state of every persisted counter (number > 0) into `file`, stamped
    /// `now_unix`. Records of numbers no rule uses are kept as they are.
    pub fn store(&self, file: &mut CounterFile, now_unix: i64) {
        file.updated = now_unix;
        for c in self.counters().filter(|c| c.number != 0) {
            let times = c.times();
            file.set(
                c.number,
                Record {
                    bytes: c.bytes(),
                    cleared: times.cleared.map_or(0, |t| t.unix),
                    updated: times.updated,
                },
            );
        }
    }
}

#[cfg(test)]
#[path = "quota_tests.rs"]
mod tests;
