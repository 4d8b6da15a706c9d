//! The words of the limit and accounting commands (3proxy.md sections 5.2 and 5.7):
//! `bandlim*`, `timeouts`, `connlim` / `noconnlim`, `counter`, `countin` / `countout` / `countall` and
//! their `nocount*` exceptions, turned into policy values. The parser (`parse.rs`) keeps
//! them and reports errors with the file and line.

use super::commands::Supported;
use super::parse::resolve;
use super::{ConfigErrorKind, CounterConfig, CounterReport};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::bandlim::{
    self, Bucket, Direction, Rule as BandRule, RuleKind as BandRuleKind,
};
use triproxy_policy::connlim::{self, ConnRule};
use triproxy_policy::counterfile::MAX_COUNTER_NUMBER;
use triproxy_policy::period::Period;
use triproxy_policy::quota::{CountDirection, Rule, MAX_LIMIT_MIB};
use triproxy_policy::service::{TIMEOUT_COUNT, TIMEOUT_RANGE};

/// The names of 3proxy's timeouts, in the order of a `timeouts` line (for messages).
const TIMEOUT_NAMES: [&str; TIMEOUT_COUNT] = [
    "BYTE_SHORT timeout (seconds)",
    "BYTE_LONG timeout (seconds)",
    "STRING_SHORT timeout (seconds)",
    "STRING_LONG timeout (seconds)",
    "CONNECTION_SHORT timeout (seconds)",
    "CONNECTION_LONG timeout (seconds)",
    "DNS timeout (seconds)",
    "CHAIN timeout (seconds)",
    "CONNECT timeout (seconds)",
    "CONNECTBACK timeout (seconds)",
    "LINGER timeout (seconds)",
];

/// Plain decimal digits only (no sign, no spaces), at most 19 of them.
fn decimal(value: &str) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn number_in(
    value: &str,
    what: &'static str,
    range: core::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigErrorKind> {
    decimal(value)
        .filter(|n| range.contains(n))
        .ok_or_else(|| ConfigErrorKind::InvalidNumber {
            what,
            value: value.to_owned(),
            min: *range.start(),
            max: *range.end(),
        })
}

/// `timeouts V1 [V2 ...]` applied to `current` (values not given keep theirs, as in
/// 3proxy); returns how many values beyond the eleventh were ignored.
pub(super) fn apply_timeouts(
    current: &mut [u32; TIMEOUT_COUNT],
    args: &[&str],
) -> Result<usize, ConfigErrorKind> {
    let range = u64::from(*TIMEOUT_RANGE.start())..=u64::from(*TIMEOUT_RANGE.end());
    let mut next = *current;
    for ((slot, value), what) in next.iter_mut().zip(args).zip(TIMEOUT_NAMES) {
        let n = number_in(value, what, range.clone())?;
        *slot = u32::try_from(n).unwrap_or(*TIMEOUT_RANGE.end());
    }
    *current = next;
    Ok(args.len().saturating_sub(TIMEOUT_COUNT))
}

fn rule_acl(command: &str, fields: &[&str]) -> Result<Ace, ConfigErrorKind> {
    Ace::parse(Action::Allow, fields).map_err(|e| ConfigErrorKind::RuleAcl {
        command: command.to_owned(),
        error: Box::new(e),
    })
}

/// `connlim RATE PERIOD acl...` / `noconnlim acl...`.
pub(super) fn parse_connlim(
    cmd: Supported,
    command: &str,
    args: &[&str],
) -> Result<ConnRule, ConfigErrorKind> {
    match (cmd, args) {
        (Supported::ConnLim, [rate, period, fields @ ..]) => {
            let rate = number_in(
                rate,
                "connection limit (connections)",
                1..=u64::from(connlim::MAX_RATE),
            )?;
            let period = number_in(
                period,
                "connection limit period (seconds, 0 = parallel)",
                0..=connlim::MAX_PERIOD_SECS,
            )?;
            let matches = rule_acl(command, fields)?;
            Ok(ConnRule::limit(
                u32::try_from(rate).unwrap_or(connlim::MAX_RATE),
                Duration::from_secs(period),
                matches,
            ))
        }
        _ => Ok(ConnRule::exempt(rule_acl(command, args)?)),
    }
}

/// A `bandlimin RATE acl...` / `bandlimout ...` / `nobandlimin acl...` /
/// `nobandlimout ...` line as a rule with its own bucket.
pub(super) fn parse_bandlim(
    cmd: Supported,
    command: &str,
    args: &[&str],
) -> Result<BandRule, ConfigErrorKind> {
    let direction = match cmd {
        Supported::BandLimIn | Supported::NoBandLimIn => Direction::ToClient,
        _ => Direction::ToTarget,
    };
    let (kind, fields) = match (cmd, args.split_first()) {
        (Supported::BandLimIn | Supported::BandLimOut, Some((rate, fields))) => {
            let bits = bandlim::parse_rate(rate).map_err(|_| ConfigErrorKind::InvalidNumber {
                what: "bandwidth limit (bits per second)",
                value: (*rate).to_owned(),
                min: bandlim::MIN_RATE_BITS,
                max: bandlim::MAX_RATE_BITS,
            })?;
            (BandRuleKind::Limit(Arc::new(Bucket::new(bits))), fields)
        }
        _ => (BandRuleKind::Exempt, args),
    };
    let matches = Ace::parse(Action::Allow, fields).map_err(|e| ConfigErrorKind::RuleAcl {
        command: command.to_owned(),
        error: Box::new(e),
    })?;
    Ok(BandRule {
        direction,
        kind,
        matches,
    })
}

/// What a `count*` / `nocount*` command counts.
fn count_direction(cmd: Supported) -> CountDirection {
    match cmd {
        Supported::CountIn | Supported::NoCountIn => CountDirection::In,
        Supported::CountOut | Supported::NoCountOut => CountDirection::Out,
        _ => CountDirection::All,
    }
}

/// `"NUM[/comment]"`: the counter number and the comment of the report lines.
fn counter_number(word: &str) -> Result<(u32, &str), ConfigErrorKind> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let (num, rest) = word.split_at(digits);
    let comment = match rest.strip_prefix('/') {
        Some(c) => c,
        None if rest.is_empty() => "",
        None => "\u{0}",
    };
    decimal(num)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= MAX_COUNTER_NUMBER && comment != "\u{0}")
        .map(|n| (n, comment))
        .ok_or_else(|| ConfigErrorKind::CounterNumber {
            value: word.to_owned(),
        })
}

/// `countin "NUM[/comment]" TYPE LIMIT_MB acl...` (and `countout`, `countall`), or
/// `nocountin acl...` (and `nocountout`, `nocountall`).
pub(super) fn parse_count(
    cmd: Supported,
    command: &str,
    args: &[&str],
) -> Result<Rule, ConfigErrorKind> {
    let direction = count_direction(cmd);
    match (cmd, args) {
        (
            Supported::CountIn | Supported::CountOut | Supported::CountAll,
            [num, period, limit, fields @ ..],
        ) => {
            let (number, comment) = counter_number(num)?;
            let limit = number_in(limit, "traffic limit (MiB)", 1..=MAX_LIMIT_MIB)?;
            let matches = rule_acl(command, fields)?;
            Ok(Rule::count(
                direction,
                number,
                comment,
                Period::from_word(period),
                limit,
                matches,
            ))
        }
        _ => Ok(Rule::exempt(direction, rule_acl(command, args)?)),
    }
}

/// `counter FILE [REPORTTYPE REPORTPATH]`.
pub(super) fn parse_counter(
    args: &[&str],
    base_dir: &Path,
) -> Result<CounterConfig, ConfigErrorKind> {
    let file = match args.first() {
        Some(f) if !f.is_empty() => resolve(base_dir, f),
        _ => return Err(ConfigErrorKind::EmptyFileName { what: "counter" }),
    };
    let report = match args {
        [_] => None,
        [_, _] => return Err(ConfigErrorKind::MissingReportPath),
        [_, period, path, ..] => {
            let letter = Period::from_word(period);
            if letter == Period::Never {
                return Err(ConfigErrorKind::ReportPeriod {
                    value: (*period).to_owned(),
                });
            }
            if path.is_empty() {
                return Err(ConfigErrorKind::EmptyFileName {
                    what: "counter report",
                });
            }
            if path.contains('%') {
                return Err(ConfigErrorKind::NotSupportedYet {
                    feature: format!("report file name templates (`{path}`)"),
                });
            }
            Some(CounterReport {
                period: letter,
                path: resolve(base_dir, path),
            })
        }
        [] => None,
    };
    Ok(CounterConfig { file, report })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_numbers() {
        assert_eq!(counter_number("1/Test 1"), Ok((1, "Test 1")));
        assert_eq!(counter_number("202"), Ok((202, "")));
        assert_eq!(counter_number("0/x/y"), Ok((0, "x/y")));
        for bad in ["", "/x", "x", "1x", "-1", "1000001", "99999999999999999999"] {
            assert!(counter_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timeouts_fill_from_the_current_values() {
        let mut t = [1, 5, 30, 60, 180, 1800, 15, 60, 15, 5, 5];
        assert_eq!(apply_timeouts(&mut t, &["2", "6"]), Ok(0));
        assert_eq!(t, [2, 6, 30, 60, 180, 1800, 15, 60, 15, 5, 5]);
        let many: Vec<&str> = std::iter::repeat_n("7", 13).collect();
        assert_eq!(apply_timeouts(&mut t, &many), Ok(2));
        assert_eq!(t, [7; TIMEOUT_COUNT]);
        let before = t;
        assert!(apply_timeouts(&mut t, &["3", "0"]).is_err());
        assert!(apply_timeouts(&mut t, &["2000001"]).is_err());
        assert_eq!(t, before, "a bad line changes nothing");
    }

    #[test]
    fn counter_lines() {
        let base = Path::new("/etc/3proxy");
        assert_eq!(
            parse_counter(&["c.3cf"], base),
            Ok(CounterConfig {
                file: "/etc/3proxy/c.3cf".into(),
                report: None
            })
        );
        let c = parse_counter(&["c.3cf", "D", "/var/traf"], base).unwrap();
        assert_eq!(
            c.report,
            Some(CounterReport {
                period: Period::Daily,
                path: "/var/traf".into()
            })
        );
        assert_eq!(
            parse_counter(&["c", "D"], base),
            Err(ConfigErrorKind::MissingReportPath)
        );
        assert!(matches!(
            parse_counter(&["c", "N", "r"], base),
            Err(ConfigErrorKind::ReportPeriod { .. })
        ));
        assert!(matches!(
            parse_counter(&["c", "D", "r%d"], base),
            Err(ConfigErrorKind::NotSupportedYet { .. })
        ));
        assert!(matches!(
            parse_counter(&[""], base),
            Err(ConfigErrorKind::EmptyFileName { .. })
        ));
    }
}
