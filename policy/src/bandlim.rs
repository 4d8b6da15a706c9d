//! Bandwidth pipes: 3proxy's `bandlimin` / `bandlimout` rules as shared token buckets.
//!
//! A rule `bandlimin RATE <acl fields>` limits the bytes going *to the client* (downloads)
//! of every connection it matches to RATE bits per second; `bandlimout` limits the bytes
//! going *to the target*. As in 3proxy, one rule is one bucket shared by everything it
//! matches (a CIDR rule is shared by all hosts in it), a connection is paced by up to
//! [`MAX_PIPES_PER_DIRECTION`] matching rules at once (so the slowest wins), and a matching
//! `nobandlimin` / `nobandlimout` rule stops the scan: later rules of that direction do not
//! apply. Rules are global, whatever their position relative to the services.
//!
//! Nothing here reads a clock: every call takes `now`. The runtime asks a [`Pacer`] how many
//! bytes it may read ([`Pacer::allowance`]), reads at most that many and reports them
//! ([`Pacer::charge`]). Reads are limited *before* they happen, so the limit bites from the
//! first byte instead of after kernel buffers have absorbed a burst (3proxy sleeps after
//! reads, 3proxy issue #1042).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use triproxy_policy::bandlim::{Allowance, Bucket, Pacer};
//! use std::sync::Arc;
//!
//! let t0 = Instant::now();
//! let bucket = Arc::new(Bucket::new(80_000)); // 80 kbit/s = 10,000 bytes/s
//! let pacer = Pacer::from_buckets([bucket]);
//! // A fresh bucket holds one burst (100 ms of traffic).
//! assert_eq!(pacer.allowance(t0, 65_536), Allowance::Bytes(1_000));
//! pacer.charge(t0, 1_000);
//! // Spent: the next read waits until half a burst has been earned back (50 ms).
//! assert_eq!(pacer.allowance(t0, 65_536), Allowance::WaitUntil(t0 + Duration::from_millis(50)));
//! ```

use crate::acl::{Ace, AclRequest};
use core::fmt;
use core::time::Duration;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Lowest rate a rule may set, in bits per second (3proxy refuses less).
pub const MIN_RATE_BITS: u64 = 300;
/// Highest rate a rule may set, in bits per second (1 Tbit/s; keeps the arithmetic exact).
pub const MAX_RATE_BITS: u64 = 1 << 40;
/// Most rules that pace one direction of one connection (3proxy `MAXBANDLIMS`).
pub const MAX_PIPES_PER_DIRECTION: usize = 10;
/// A bucket holds at most this much time's worth of traffic: the largest burst.
pub const BURST: Duration = Duration::from_millis(100);

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Towards the client (3proxy `bandlimin`: downloads).
    ToClient,
    /// Towards the target (3proxy `bandlimout`: uploads).
    ToTarget,
}

/// What a paced reader may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowance {
    /// Read at most this many bytes (never 0).
    Bytes(usize),
    /// Read nothing before this moment.
    WaitUntil(Instant),
}

#[derive(Debug)]
struct BucketState {
    /// Bytes that may be sent; negative after several readers shared the last burst.
    tokens: i64,
    /// When `tokens` was last brought up to date; `None` until first used (starts full).
    updated: Option<Instant>,
}

/// One rule's token bucket, shared by every connection the rule matches.
///
/// It refills at the rule's rate up to [`BURST`] worth of bytes. A reader may take all the
/// tokens there are; several readers at once may overdraw it, and then all of them wait
/// until the debt is paid, so the long-run rate holds. A waiting reader is woken when half
/// a burst is available, so a paced tunnel reads in chunks of about 50 ms of traffic rather
/// than byte by byte.
#[derive(Debug)]
pub struct Bucket {
    bits_per_sec: u64,
    bytes_per_sec: u64,
    burst: i64,
    state: Mutex<BucketState>,
}

impl Bucket {
    /// A full bucket for `bits_per_sec`, clamped to
    /// [`MIN_RATE_BITS`]..=[`MAX_RATE_BITS`] (the configuration reader refuses values
    /// outside that range before they get here).
    pub fn new(bits_per_sec: u64) -> Bucket {
        let bits_per_sec = bits_per_sec.clamp(MIN_RATE_BITS, MAX_RATE_BITS);
        let bytes_per_sec = bits_per_sec / 8;
        let burst = bytes_for(bytes_per_sec, BURST).max(1);
        Bucket {
            bits_per_sec,
            bytes_per_sec,
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                updated: None,
            }),
        }
    }

    /// The rate in bits per second.
    pub fn rate_bits(&self) -> u64 {
        self.bits_per_sec
    }

    /// The largest burst in bytes.
    pub fn burst(&self) -> usize {
        usize::try_from(self.burst).unwrap_or(usize::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BucketState> {
        // A panic elsewhere while holding the lock leaves plain numbers behind: still valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refill(&self, state: &mut BucketState, now: Instant) {
        match state.updated {
            None => state.updated = Some(now),
            Some(then) if now > then => {
                let earned = bytes_for(self.bytes_per_sec, now - then);
                if earned > 0 {
                    state.tokens = state.tokens.saturating_add(earned).min(self.burst);
                    // Advance by the time the whole bytes took, keeping the remainder.
                    state.updated = Some(then + time_for(self.bytes_per_sec, earned));
                }
                if state.tokens == self.burst {
                    state.updated = Some(now);
                }
            }
            Some(_) => {}
        }
    }

    /// How many bytes (at most `want`) may be read at `now`.
    pub fn allowance(&self, now: Instant, want: usize) -> Allowance {
        let mut state = self.lock();
        self.refill(&mut state, now);
        let threshold = (self.burst / 2).max(1);
        if state.tokens >= threshold {
            let tokens = usize::try_from(state.tokens).unwrap_or(usize::MAX);
            return Allowance::Bytes(tokens.min(want).max(1));
        }
        let missing = threshold.saturating_sub(state.tokens);
        let from = state.updated.unwrap_or(now);
        Allowance::WaitUntil(from + time_for(self.bytes_per_sec, missing))
    }

    /// Takes `bytes` that were just read at `now`.
    pub fn charge(&self, now: Instant, bytes: usize) {
        let mut state = self.lock();
        self.refill(&mut state, now);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        state.tokens = state.tokens.saturating_sub(bytes);
    }
}

/// Whole bytes earned at `bytes_per_sec` in `d`.
fn bytes_for(bytes_per_sec: u64, d: Duration) -> i64 {
    let bytes = u128::from(bytes_per_sec) * d.as_nanos() / 1_000_000_000;
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// Time to earn `bytes` (> 0) at `bytes_per_sec`, rounded up to the nanosecond.
fn time_for(bytes_per_sec: u64, bytes: i64) -> Duration {
    let bytes = u128::try_from(bytes.max(0)).unwrap_or(0);
    let rate = u128::from(bytes_per_sec.max(1));
    let nanos = (bytes * 1_000_000_000).div_ceil(rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The buckets pacing one direction of one connection (empty: not paced).
///
/// One pointer wide and allocation-free when empty: it sits in every relay's pumps and in
/// the session's relay intent, and a thread-per-connection runtime pays for every byte of
/// its frames in stack pages (each idle tunnel's thread keeps its deepest page resident).
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    buckets: Option<Arc<[Arc<Bucket>]>>,
}

impl PartialEq for Pacer {
    /// Same buckets (by identity) in the same order.
    fn eq(&self, other: &Pacer) -> bool {
        self.buckets().len() == other.buckets().len()
            && self
                .buckets()
                .iter()
                .zip(other.buckets().iter())
                .all(|(a, b)| Arc::ptr_eq(a, b))
    }
}

impl Eq for Pacer {}

impl Pacer {
    /// A pacer over the first [`MAX_PIPES_PER_DIRECTION`] of `buckets`.
    pub fn from_buckets(buckets: impl IntoIterator<Item = Arc<Bucket>>) -> Pacer {
        let buckets: Vec<Arc<Bucket>> = buckets.into_iter().take(MAX_PIPES_PER_DIRECTION).collect();
        Pacer {
            buckets: (!buckets.is_empty()).then(|| Arc::from(buckets)),
        }
    }

    fn buckets(&self) -> &[Arc<Bucket>] {
        self.buckets.as_deref().unwrap_or_default()
    }

    /// Whether no bucket applies.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_none()
    }

    /// The slowest rate that applies, in bits per second.
    pub fn slowest_rate_bits(&self) -> Option<u64> {
        self.buckets().iter().map(|b| b.rate_bits()).min()
    }

    /// How many bytes (at most `want`) may be read at `now`: the least any bucket allows,
    /// or the latest moment any bucket asks to wait for. Unpaced: `want` (at least 1).
    pub fn allowance(&self, now: Instant, want: usize) -> Allowance {
        let mut bytes = want.max(1);
        let mut wait: Option<Instant> = None;
        for bucket in self.buckets() {
            match bucket.allowance(now, want) {
                Allowance::Bytes(n) => bytes = bytes.min(n),
                Allowance::WaitUntil(t) => wait = Some(wait.map_or(t, |w| w.max(t))),
            }
        }
        match wait {
            Some(t) => Allowance::WaitUntil(t),
            None => Allowance::Bytes(bytes),
        }
    }

    /// Charges `bytes` read at `now` to every bucket.
    pub fn charge(&self, now: Instant, bytes: usize) {
        for bucket in self.buckets() {
            bucket.charge(now, bytes);
        }
    }

    /// Policing, for datagrams (which cannot be read in part or held back without
    /// holding up everything behind them): whether one of `len` bytes may pass at `now`,
    /// charged if so. A datagram beyond the allowance is to be dropped; the average rate
    /// stays the pipe's.
    pub fn admit_datagram(&self, now: Instant, len: usize) -> bool {
        if self.is_empty() {
            return true;
        }
        match self.allowance(now, len.max(1)) {
            Allowance::Bytes(_) => {
                self.charge(now, len);
                true
            }
            Allowance::WaitUntil(_) => false,
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone)]
pub enum RuleKind {
    /// Pace through this bucket (`bandlimin` / `bandlimout`).
    Limit(Arc<Bucket>),
    /// Stop scanning (`nobandlimin` / `nobandlimout`).
    Exempt,
}

/// One `bandlim*` line.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Which way it limits.
    pub direction: Direction,
    /// Limit or exemption.
    pub kind: RuleKind,
    /// Which connections it matches (the ACL fields after the rate; the action is unused).
    pub matches: Ace,
}

/// Why a rule's rate is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateError {
    /// Not a decimal number.
    NotANumber(String),
    /// Outside [`MIN_RATE_BITS`]..=[`MAX_RATE_BITS`].
    OutOfRange(u64),
}

impl fmt::Display for RateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RateError::NotANumber(t) => {
                write!(f, "rate `{t}` is not a number of bits per second")
            }
            RateError::OutOfRange(n) => write!(
                f,
                "rate {n} bit/s is outside {MIN_RATE_BITS}..={MAX_RATE_BITS}"
            ),
        }
    }
}

impl std::error::Error for RateError {}

/// Parses a rule's RATE word (bits per second, decimal).
///
/// ```
/// use triproxy_policy::bandlim::parse_rate;
/// assert_eq!(parse_rate("1048576"), Ok(1_048_576));
/// assert!(parse_rate("299").is_err());
/// assert!(parse_rate("1M").is_err());
/// ```
pub fn parse_rate(word: &str) -> Result<u64, RateError> {
    if word.is_empty() || word.len() > 20 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RateError::NotANumber(word.chars().take(40).collect()));
    }
    let n: u64 = word
        .parse()
        .map_err(|_| RateError::NotANumber(word.chars().take(40).collect()))?;
    if (MIN_RATE_BITS..=MAX_RATE_BITS).contains(&n) {
        Ok(n)
    } else {
        Err(RateError::OutOfRange(n))
    }
}

/// Every `bandlim*` rule of a configuration, in order.
#[derive(Debug, Clone, Default)]
pub struct BandLimits {
    rules: Vec<Rule>,
}

impl BandLimits {
    /// No rules: nothing is paced.
    pub fn new() -> BandLimits {
        BandLimits::default()
    }

    /// Appends a rule (later rules are scanned after earlier ones).
    pub fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Takes over the buckets of `old` (the configuration before a reload) for the rules
    /// that did not change: a rule with the same direction, rate and matching fields as a
    /// rule of `old` shares that rule's bucket, so a reload neither refills a drained
    /// bucket nor splits one limit into two. Each old bucket is taken over at most once;
    /// changed and new rules start full.
    pub fn adopt(&mut self, old: &BandLimits) {
        let mut taken = vec![false; old.rules.len()];
        for rule in &mut self.rules {
            let RuleKind::Limit(bucket) = &mut rule.kind else {
                continue;
            };
            let found = old.rules.iter().enumerate().find(|(i, o)| {
                !taken[*i]
                    && o.direction == rule.direction
                    && o.matches == rule.matches
                    && matches!(&o.kind, RuleKind::Limit(b) if b.bits_per_sec == bucket.bits_per_sec)
            });
            if let Some((i, RuleKind::Limit(old_bucket))) = found.map(|(i, o)| (i, &o.kind)) {
                taken[i] = true;
                *bucket = Arc::clone(old_bucket);
            }
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The pacer of `direction` for `request`: the buckets of the matching limit rules in
    /// order, up to the first matching exemption, at most [`MAX_PIPES_PER_DIRECTION`].
    pub fn select(&self, direction: Direction, request: &AclRequest<'_>) -> Pacer {
        let rules = self.rules.iter().filter(|r| r.direction == direction);
        let buckets = crate::acl::until_exempt(
            rules,
            request,
            |r| &r.matches,
            |r| match &r.kind {
                RuleKind::Exempt => None,
                RuleKind::Limit(bucket) => Some(Arc::clone(bucket)),
            },
        );
        // `from_buckets` keeps the first MAX_PIPES_PER_DIRECTION.
        Pacer::from_buckets(buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Action, CivilTime, Operation};
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Some instant to start from (the code under test never reads the clock).
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    #[test]
    fn full_bucket_then_waits_for_half_a_burst() {
        let t0 = start();
        let b = Bucket::new(8_000_000); // 1,000,000 bytes/s, burst 100,000
        assert_eq!(b.burst(), 100_000);
        assert_eq!(b.allowance(t0, 65_536), Allowance::Bytes(65_536));
        b.charge(t0, 65_536);
        // 34,464 left, below half a burst (50,000): wait for 15,536 bytes = 15.536 ms.
        assert_eq!(
            b.allowance(t0, 65_536),
            Allowance::WaitUntil(t0 + Duration::from_micros(15_536))
        );
        assert_eq!(b.allowance(t0 + ms(16), 65_536), Allowance::Bytes(50_464));
    }

    #[test]
    fn overdraft_by_two_readers_is_paid_back_before_anyone_reads() {
        let t0 = start();
        let b = Bucket::new(800_000); // 100,000 bytes/s, burst 10,000
        let Allowance::Bytes(a) = b.allowance(t0, 1 << 20) else {
            panic!("fresh bucket must allow")
        };
        let Allowance::Bytes(c) = b.allowance(t0, 1 << 20) else {
            panic!("nothing charged yet")
        };
        b.charge(t0, a);
        b.charge(t0, c); // tokens: -10,000
                         // Needs 15,000 bytes (debt + half a burst) = 150 ms.
        assert_eq!(b.allowance(t0, 1 << 20), Allowance::WaitUntil(t0 + ms(150)));
        assert!(matches!(
            b.allowance(t0 + ms(150), 1 << 20),
            Allowance::Bytes(5_000)
        ));
    }

    #[test]
    fn an_idle_bucket_refills_to_one_burst_only() {
        let t0 = start();
        let b = Bucket::new(8_000); // 1,000 bytes/s, burst 100
        b.charge(t0, 100);
        assert_eq!(
            b.allowance(t0 + Duration::from_secs(3600), 1 << 20),
            Allowance::Bytes(100)
        );
    }

    #[test]
    fn a_greedy_reader_gets_the_rate() {
        let t0 = start();
        let b = Bucket::new(8_000_000); // 1,000,000 bytes/s
        let mut now = t0;
        let mut read = 0usize;
        while now < t0 + Duration::from_secs(10) {
            match b.allowance(now, 1 << 20) {
                Allowance::Bytes(n) => {
                    b.charge(now, n);
                    read += n;
                }
                Allowance::WaitUntil(t) => now = t,
            }
        }
        // 10 s at the rate plus the first burst, give or take one wake-up's worth.
        assert!((10_050_000..=10_100_000).contains(&read), "{read}");
    }

    #[test]
    fn the_lowest_rate_still_moves_bytes() {
        let t0 = start();
        let b = Bucket::new(MIN_RATE_BITS); // 37 bytes/s, burst 3
        assert_eq!(b.allowance(t0, 10), Allowance::Bytes(3));
        b.charge(t0, 3);
        let Allowance::WaitUntil(t) = b.allowance(t0, 10) else {
            panic!("spent bucket must wait")
        };
        assert!(t > t0 && t - t0 < ms(100), "{:?}", t - t0);
        assert!(matches!(b.allowance(t, 10), Allowance::Bytes(n) if n >= 1));
    }

    #[test]
    fn the_slowest_bucket_of_a_pacer_wins() {
        let t0 = start();
        let fast = Arc::new(Bucket::new(80_000_000));
        let slow = Arc::new(Bucket::new(80_000)); // burst 1,000
        let pacer = Pacer::from_buckets([Arc::clone(&fast), Arc::clone(&slow)]);
        assert_eq!(pacer.slowest_rate_bits(), Some(80_000));
        assert_eq!(pacer.allowance(t0, 65_536), Allowance::Bytes(1_000));
        pacer.charge(t0, 1_000);
        assert!(matches!(
            pacer.allowance(t0, 65_536),
            Allowance::WaitUntil(_)
        ));
        // The fast bucket was charged too.
        assert!(
            matches!(fast.allowance(t0, usize::MAX), Allowance::Bytes(n) if n == 1_000_000 - 1_000)
        );
        assert_eq!(Pacer::default().allowance(t0, 7), Allowance::Bytes(7));
    }

    fn request(client: &str, user: Option<&'static str>) -> AclRequest<'static> {
        AclRequest {
            user,
            client: client.parse().unwrap(),
            target_host: None,
            target_ip: Some("127.0.0.1".parse().unwrap()),
            port: Some(80),
            operation: Operation::Connect,
            time: CivilTime {
                weekday: 1,
                seconds_of_day: 0,
            },
        }
    }

    fn limit(direction: Direction, rate: u64, fields: &[&str]) -> Rule {
        Rule {
            direction,
            kind: RuleKind::Limit(Arc::new(Bucket::new(rate))),
            matches: Ace::parse(Action::Allow, fields).unwrap(),
        }
    }

    #[test]
    fn rules_are_selected_in_order_until_an_exemption() {
        let mut rules = BandLimits::new();
        rules.push(limit(Direction::ToClient, 1_000_000, &["*", "10.0.0.0/8"]));
        rules.push(Rule {
            direction: Direction::ToClient,
            kind: RuleKind::Exempt,
            matches: Ace::parse(Action::Allow, &["boss"]).unwrap(),
        });
        rules.push(limit(Direction::ToClient, 500_000, &[]));
        rules.push(limit(Direction::ToTarget, 64_000, &[]));

        let p = rules.select(Direction::ToClient, &request("10.1.2.3", None));
        assert_eq!(p.slowest_rate_bits(), Some(500_000));
        let p = rules.select(Direction::ToClient, &request("192.168.0.1", None));
        assert_eq!(p.slowest_rate_bits(), Some(500_000));
        let p = rules.select(Direction::ToClient, &request("10.1.2.3", Some("boss")));
        assert_eq!(
            p.slowest_rate_bits(),
            Some(1_000_000),
            "exempt after the first"
        );
        let p = rules.select(Direction::ToClient, &request("192.168.0.1", Some("boss")));
        assert!(p.is_empty());
        let p = rules.select(Direction::ToTarget, &request("192.168.0.1", Some("boss")));
        assert_eq!(
            p.slowest_rate_bits(),
            Some(64_000),
            "exemptions are per direction"
        );
        // One rule is one bucket: two clients of the rule get the same bucket.
        assert_eq!(
            rules.select(Direction::ToClient, &request("10.1.2.3", None)),
            rules.select(Direction::ToClient, &request("10.9.9.9", None))
        );
    }

    #[test]
    fn at_most_ten_pipes_per_direction() {
        let mut rules = BandLimits::new();
        for i in 0..12u64 {
            rules.push(limit(Direction::ToTarget, 10_000 + i, &[]));
        }
        let p = rules.select(Direction::ToTarget, &request("127.0.0.1", None));
        assert_eq!(p.buckets().len(), MAX_PIPES_PER_DIRECTION);
        assert_eq!(p.slowest_rate_bits(), Some(10_000));
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("300"), Ok(300));
        assert_eq!(parse_rate("299"), Err(RateError::OutOfRange(299)));
        assert!(matches!(parse_rate("-5"), Err(RateError::NotANumber(_))));
        assert!(matches!(parse_rate(""), Err(RateError::NotANumber(_))));
        assert!(matches!(
            parse_rate("99999999999999999999999"),
            Err(RateError::NotANumber(_))
        ));
        assert_eq!(
            parse_rate("18446744073709551615"),
            Err(RateError::OutOfRange(u64::MAX))
        );
    }

    proptest! {
        /// Whatever the read sizes and pauses, a reader that follows the allowances never
        /// gets more than one burst ahead of the rate.
        #[test]
        fn a_reader_never_gets_ahead_of_the_rate(
            rate in MIN_RATE_BITS..=1_000_000_000u64,
            wants in proptest::collection::vec(1usize..=200_000, 1..50),
            sleeps in proptest::collection::vec(0u64..=20_000_000, 1..50),
        ) {
            let b = Bucket::new(rate);
            let t0 = start();
            let mut now = t0;
            let mut read: u128 = 0;
            for i in 0..400 {
                let want = wants[i % wants.len()];
                match b.allowance(now, want) {
                    Allowance::Bytes(n) => {
                        prop_assert!(n >= 1 && n <= want);
                        b.charge(now, n);
                        read += n as u128;
                    }
                    Allowance::WaitUntil(t) => {
                        prop_assert!(t > now);
                        now = t;
                    }
                }
                now += Duration::from_nanos(sleeps[i % sleeps.len()] % 1_000);
                let elapsed = (now - t0).as_nanos();
                let allowed = u128::from(rate / 8) * elapsed / 1_000_000_000
                    + b.burst() as u128;
                prop_assert!(read <= allowed, "read {read} > allowed {allowed}");
            }
        }
    }

    #[test]
    fn a_reload_keeps_the_buckets_of_unchanged_rules() {
        let mut old = BandLimits::new();
        old.push(limit(Direction::ToClient, 80_000, &["alice"]));
        old.push(limit(Direction::ToClient, 80_000, &["bob"]));
        let mut new = BandLimits::new();
        new.push(limit(Direction::ToClient, 80_000, &["bob"])); // unchanged, moved up
        new.push(limit(Direction::ToClient, 16_000, &["alice"])); // rate changed
        new.push(limit(Direction::ToTarget, 80_000, &["alice"])); // other direction
        new.adopt(&old);
        let bucket = |l: &BandLimits, i: usize| match &l.rules()[i].kind {
            RuleKind::Limit(b) => Arc::clone(b),
            RuleKind::Exempt => panic!("a limit"),
        };
        assert!(
            Arc::ptr_eq(&bucket(&new, 0), &bucket(&old, 1)),
            "bob's bucket carried over"
        );
        assert!(
            !Arc::ptr_eq(&bucket(&new, 1), &bucket(&old, 0)),
            "a changed rule starts full"
        );
        assert!(!Arc::ptr_eq(&bucket(&new, 2), &bucket(&old, 0)));
    }
}
