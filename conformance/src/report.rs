//! Reports of a replay run: per trace and mode PASS / FAIL / SKIP, findings grouped by
//! root cause, as text for people, JSON and JUnit XML (via `quick-junit`) for machines.
//!
//! Only formatting; running is [`crate::replay`], [`crate::memory`] and [`crate::live`].

use crate::replay::{Failure, Outcome};
use crate::trace::{Cause, Level, Mode, Trace};
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// One trace run in one mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceResult {
    /// `socks5/connect-ipv4`.
    pub trace: String,
    /// The trace's title (first description line).
    pub title: String,
    /// The input mode.
    pub mode: Mode,
    /// How binding a failure is: the trace's level, at most SHOULD in `pipelined` mode
    /// (see [`effective_level`]).
    pub level: Level,
    /// The specification sentence the trace quotes.
    pub rfc: Option<String>,
    /// The root cause the trace is written to provoke, if any.
    pub cause: Option<Cause>,
    /// What happened.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

impl TraceResult {
    /// A result for `trace`.
    pub fn new(trace: &Trace, mode: Mode, outcome: Outcome, duration: Duration) -> Self {
        TraceResult {
            trace: trace.name.clone(),
            title: trace.title.clone(),
            mode,
            level: effective_level(trace.level, mode),
            rfc: trace.rfc.clone(),
            cause: trace.cause,
            outcome,
            duration,
        }
    }

    /// `socks5/connect-ipv4 [split1]`.
    pub fn id(&self) -> String {
        format!("{} [{}]", self.trace, self.mode)
    }
}

/// The level a failure in `mode` has. RFC 1928 and the SOCKS4 text have the client wait
/// for each reply before it sends on, so a server that mishandles bytes sent ahead of a
/// reply (`pipelined`) breaks a SHOULD at most; a message split across segments (`split1`)
/// is ordinary TCP, so it keeps the trace's level.
pub fn effective_level(level: Level, mode: Mode) -> Level {
    match mode {
        Mode::Pipelined => level.max(Level::Should),
        Mode::Whole | Mode::Split1 => level,
    }
}

/// All results of one run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// What was tested: `socks5`, `socks4` or `memory`.
    pub suite: String,
    /// Against what: a server address or `in-memory machines`.
    pub target: String,
    /// In run order.
    pub results: Vec<TraceResult>,
}

/// Counts of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    suite: &'a str,
    target: &'a str,
    summary: Summary,
    failed_must: usize,
    failed_should: usize,
    failed_choice: usize,
    results: Vec<JsonResult<'a>>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    trace: &'a str,
    mode: Mode,
    title: &'a str,
    level: Level,
    rfc: Option<&'a str>,
    outcome: &'static str,
    reason: Option<&'a str>,
    failure: Option<&'a Failure>,
    duration_ms: u128,
}

impl Report {
    /// An empty report.
    pub fn new(suite: &str, target: &str) -> Report {
        Report {
            suite: suite.to_string(),
            target: target.to_string(),
            results: Vec::new(),
        }
    }

    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.results {
            match r.outcome {
                Outcome::Pass => s.pass += 1,
                Outcome::Fail(_) => s.fail += 1,
                Outcome::Skip(_) => s.skip += 1,
            }
        }
        s
    }

    /// Whether any trace failed.
    pub fn has_failures(&self) -> bool {
        self.summary().fail > 0
    }

    /// The failed results.
    pub fn failures(&self) -> impl Iterator<Item = &TraceResult> {
        self.results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail(_)))
    }

    /// Whether a MUST failed: the run's verdict (exit code 1).
    pub fn fails_run(&self) -> bool {
        self.results
            .iter()
            .any(|r| r.level == Level::Must && matches!(r.outcome, Outcome::Fail(_)))
    }

    /// Failed results by level: (MUST, SHOULD, implementation choice).
    pub fn failures_by_level(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in self.failures() {
            match r.level {
                Level::Must => c.0 += 1,
                Level::Should => c.1 += 1,
                Level::Choice => c.2 += 1,
            }
        }
        c
    }

    /// The failures grouped by root cause (see [`Finding`]), MUST findings first.
    pub fn findings(&self) -> Vec<Finding> {
        findings(&self.results)
    }

    /// PASS lines, findings with each failure's difference, skips folded by reason, counts.
    pub fn render_text(&self) -> String {
        self.render(Detail::Normal)
    }

    /// As [`Report::render_text`], with a line per SKIP.
    pub fn render_verbose(&self) -> String {
        self.render(Detail::Verbose)
    }

    /// Findings and counts only.
    pub fn render_failures(&self) -> String {
        self.render(Detail::Quiet)
    }

    fn render(&self, detail: Detail) -> String {
        let mut out = format!(
            "triproxy-conformance {} against {}\n",
            self.suite, self.target
        );
        if detail != Detail::Quiet {
            for r in &self.results {
                let ms = r.duration.as_millis();
                match &r.outcome {
                    Outcome::Pass => {
                        let _ = writeln!(out, "PASS {} ({ms} ms)", r.id());
                    }
                    Outcome::Skip(why) if detail == Detail::Verbose => {
                        let _ = writeln!(out, "SKIP {}: {why}", r.id());
                    }
                    Outcome::Skip(_) => {}
                    Outcome::Fail(f) => {
                        let _ = writeln!(
                            out,
                            "FAIL {} ({ms} ms) [{}]: line {}: {}",
                            r.id(),
                            r.level,
                            f.line,
                            f.message
                        );
                    }
                }
            }
        }
        let findings = self.findings();
        if !findings.is_empty() {
            let _ = writeln!(
                out,
                "\nFindings ({}, grouped by root cause):",
                findings.len()
            );
            for (i, f) in findings.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "\n{}. [{}] {} ({} trace{}, {} run{})",
                    i + 1,
                    f.level,
                    f.cause,
                    f.traces.len(),
                    if f.traces.len() == 1 { "" } else { "s" },
                    f.runs.len(),
                    if f.runs.len() == 1 { "" } else { "s" },
                );
                if let Some(rfc) = &f.rfc {
                    let _ = writeln!(out, "   {rfc}");
                }
                for t in &f.traces {
                    let _ = writeln!(out, "   - {t}");
                }
                // The difference of the first run shows the cause; the rest are alike.
                if let Some(first) = f.runs.first().and_then(|i| self.results.get(*i)) {
                    if let Outcome::Fail(fail) = &first.outcome {
                        let _ = writeln!(out, "   e.g. {}: {}", first.id(), first.title);
                        out.push_str(&fail.render("      "));
                    }
                }
            }
        }
        let skips = self.skips_by_reason();
        if !skips.is_empty() && detail != Detail::Verbose {
            let total: usize = skips.iter().map(|(_, n)| n).sum();
            let _ = writeln!(out, "\nSkipped {total} (--verbose lists them):");
            for (why, n) in &skips {
                let _ = writeln!(out, "  {n:>3} {why}");
            }
        }
        let s = self.summary();
        let (m, sh, c) = self.failures_by_level();
        let _ = writeln!(
            out,
            "{} passed, {} failed ({m} MUST, {sh} SHOULD, {c} implementation choice), {} skipped",
            s.pass, s.fail, s.skip
        );
        out
    }

    /// Skip reasons with their counts, most frequent first (ties by reason).
    pub fn skips_by_reason(&self) -> Vec<(String, usize)> {
        let mut by: std::collections::BTreeMap<&str, usize> = Default::default();
        for r in &self.results {
            if let Outcome::Skip(why) = &r.outcome {
                *by.entry(why.as_str()).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> = by.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        let report = JsonReport {
            suite: &self.suite,
            target: &self.target,
            summary: self.summary(),
            failed_must: self.failures_by_level().0,
            failed_should: self.failures_by_level().1,
            failed_choice: self.failures_by_level().2,
            results: self
                .results
                .iter()
                .map(|r| JsonResult {
                    trace: &r.trace,
                    mode: r.mode,
                    title: &r.title,
                    level: r.level,
                    rfc: r.rfc.as_deref(),
                    outcome: match r.outcome {
                        Outcome::Pass => "pass",
                        Outcome::Fail(_) => "fail",
                        Outcome::Skip(_) => "skip",
                    },
                    reason: match &r.outcome {
                        Outcome::Skip(why) => Some(why),
                        _ => None,
                    },
                    failure: match &r.outcome {
                        Outcome::Fail(f) => Some(f),
                        _ => None,
                    },
                    duration_ms: r.duration.as_millis(),
                })
                .collect(),
        };
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as JUnit XML (one testsuite, one testcase per trace and mode; a failure
    /// carries its level in `type`), written by `quick-junit`.
    pub fn to_junit(&self) -> String {
        use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
        let mut suite = TestSuite::new(self.suite.as_str());
        suite.add_property(("target", self.target.as_str()));
        let mut total = Duration::ZERO;
        for r in &self.results {
            let status = match &r.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Skip(why) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(why.as_str());
                    s
                }
                Outcome::Fail(f) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(format!("line {}: {}", f.line, f.message))
                        .set_type(r.level.label())
                        .set_description(f.render(""));
                    s
                }
            };
            let mut case = TestCase::new(r.id(), status);
            case.set_classname(self.suite.as_str()).set_time(r.duration);
            suite.add_test_case(case);
            total += r.duration;
        }
        suite.set_time(total);
        let mut report = quick_junit::Report::new("triproxy-conformance");
        report.set_time(total).add_test_suite(suite);
        report
            .to_string()
            .unwrap_or_else(|e| format!("<!-- cannot write JUnit XML: {e} -->\n"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Quiet,
    Normal,
    Verbose,
}

/// Failures that share one root cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The highest level among the runs it covers.
    pub level: Level,
    /// The root cause, in words.
    pub cause: String,
    /// The specification sentence, when all its traces quote the same one.
    pub rfc: Option<String>,
    /// The traces affected, with their failed modes: `socks5/connect-ipv4 (split1, pipelined)`.
    pub traces: Vec<String>,
    /// Indexes of the failed results in the report.
    pub runs: Vec<usize>,
}

/// Groups failures by root cause:
///
/// - a trace that does not fail whole (passes, or skips an optional feature) but fails
///   `split1`, or any failure of a `cause: split` trace: "treats one recv() as one message";
/// - likewise for `pipelined` (and `cause: pipelined`): bytes after a message are lost;
/// - otherwise the failures with the same difference ("expected the connection to close,
///   it stayed open") form one finding, whatever the trace.
pub fn findings(results: &[TraceResult]) -> Vec<Finding> {
    use std::collections::BTreeMap;
    // key -> (cause, rfc, trace -> modes, runs, level)
    type Group = (
        String,
        std::collections::BTreeSet<Option<String>>,
        BTreeMap<String, (Vec<Mode>, Level)>,
        Vec<usize>,
        Level,
    );
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let any_whole_pass = results
        .iter()
        .any(|r| r.mode == Mode::Whole && r.outcome == Outcome::Pass);
    let passed_whole = |trace: &str| {
        let whole = |r: &&TraceResult| r.trace == trace && r.mode == Mode::Whole;
        results.iter().any(|r| whole(&r))
            && !results
                .iter()
                .any(|r| whole(&r) && matches!(r.outcome, Outcome::Fail(_)))
    };
    for (i, r) in results.iter().enumerate() {
        let Outcome::Fail(f) = &r.outcome else {
            continue;
        };
        let cause = match (r.cause, r.mode) {
            // A trace written for a cause points to it only if the server gets some
            // trace right; one that fails everything has a more basic problem.
            (Some(c), _) if any_whole_pass => Some(c),
            (None, Mode::Split1) if passed_whole(&r.trace) => Some(Cause::Split),
            (None, Mode::Pipelined) if passed_whole(&r.trace) => Some(Cause::Pipelined),
            _ => None,
        };
        let (key, cause) = match cause {
            Some(Cause::Split) => (
                "0-split".to_string(),
                "treats one recv() as one message: a message that arrives in several \
                 segments fails"
                    .to_string(),
            ),
            Some(Cause::Pipelined) => (
                "1-pipelined".to_string(),
                "loses or misreads bytes that arrive in the same segment as an earlier \
                 message (a pipelining client)"
                    .to_string(),
            ),
            _ => {
                let what = f
                    .diff
                    .as_ref()
                    .map(|d| d.detail.clone())
                    .filter(|d| !d.is_empty())
                    .unwrap_or_else(|| f.message.clone());
                (format!("2-{what}"), what)
            }
        };
        let g = groups.entry(key).or_insert_with(|| {
            (
                cause,
                Default::default(),
                BTreeMap::new(),
                Vec::new(),
                r.level,
            )
        });
        g.1.insert(r.rfc.clone());
        let t = g.2.entry(r.trace.clone()).or_insert((Vec::new(), r.level));
        t.0.push(r.mode);
        t.1 = t.1.min(r.level);
        g.3.push(i);
        g.4 = g.4.min(r.level);
    }
    let mut out: Vec<Finding> = groups
        .into_values()
        .map(|(cause, rfcs, traces, runs, level)| {
            let rfc = match rfcs.len() {
                1 => rfcs.into_iter().next().flatten(),
                _ => None,
            };
            Finding {
                level,
                cause,
                rfc,
                traces: traces
                    .into_iter()
                    .map(|(t, (modes, level))| {
                        let m: Vec<&str> = modes.iter().map(|m| m.name()).collect();
                        format!("{t} [{level}] ({})", m.join(", "))
                    })
                    .collect(),
                runs,
            }
        })
        .collect();
    // Stable: groups come in key order (split, pipelined, then by difference).
    out.sort_by_key(|f| f.level);
    out
}

/// One result read back from a JSON report: enough for a comparison table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct JsonRow {
    /// `socks5/connect-ipv4`.
    pub trace: String,
    /// `whole`, `split1` or `pipelined`.
    pub mode: String,
    /// `pass`, `fail` or `skip`.
    pub outcome: String,
    /// The skip reason, if skipped.
    #[serde(default)]
    pub reason: Option<String>,
    /// `must`, `should` or `choice` (absent in reports of older versions: `must`).
    #[serde(default)]
    pub level: Option<String>,
}

#[derive(serde::Deserialize)]
struct JsonIn {
    results: Vec<JsonRow>,
}

/// Reads the results of a report written by [`Report::to_json`].
pub fn rows_from_json(text: &str) -> Result<Vec<JsonRow>, String> {
    serde_json::from_str::<JsonIn>(text)
        .map(|r| r.results)
        .map_err(|e| e.to_string())
}

/// Most columns and rows of a comparison table.
pub const MAX_TABLE: usize = 4096;

/// A Markdown comparison of implementations: per implementation the pass / fail / skip
/// counts, then per trace a cell that is `pass` (every mode that ran passed), `FAIL
/// (modes)`, or `skip: reason`. Several reports of one implementation (SOCKS5 and SOCKS4,
/// with and without authentication) are merged: a mode counts as run if any report ran
/// it, and a failure anywhere wins. Traces that no implementation ran (client-side traces)
/// are left out of the per-trace table.
pub fn markdown_table(columns: &[(String, Vec<JsonRow>)]) -> String {
    use std::collections::BTreeMap;
    // trace -> column -> mode -> (outcome, reason)
    type Cell = BTreeMap<String, (String, Option<String>, Option<String>)>;
    let mut grid: BTreeMap<&str, BTreeMap<usize, Cell>> = BTreeMap::new();
    for (c, (_, rows)) in columns.iter().enumerate().take(MAX_TABLE) {
        for r in rows.iter().take(MAX_TABLE) {
            let cell = grid.entry(&r.trace).or_default().entry(c).or_default();
            let rank = |o: &str| match o {
                "fail" => 2,
                "pass" => 1,
                _ => 0,
            };
            let keep = cell
                .get(&r.mode)
                .is_some_and(|(o, _, _)| rank(o) >= rank(&r.outcome));
            if !keep {
                cell.insert(
                    r.mode.clone(),
                    (r.outcome.clone(), r.reason.clone(), r.level.clone()),
                );
            }
        }
    }
    let mut out = String::from("| implementation | pass | fail | skip |\n|---|---:|---:|---:|\n");
    for (c, (name, _)) in columns.iter().enumerate() {
        let (mut p, mut f, mut s) = (0, 0, 0);
        for cells in grid.values() {
            for (o, _, _) in cells
                .get(&c)
                .map(|m| m.values().collect::<Vec<_>>())
                .unwrap_or_default()
            {
                match o.as_str() {
                    "pass" => p += 1,
                    "fail" => f += 1,
                    _ => s += 1,
                }
            }
        }
        let _ = writeln!(out, "| {} | {p} | {f} | {s} |", md(name));
    }
    out.push_str("\n| trace |");
    for (name, _) in columns {
        let _ = write!(out, " {} |", md(name));
    }
    out.push_str("\n|---|");
    for _ in columns {
        out.push_str("---|");
    }
    out.push('\n');
    for (trace, cells) in &grid {
        let ran = cells
            .values()
            .any(|m| m.values().any(|(o, _, _)| o != "skip"));
        if !ran {
            continue;
        }
        let _ = write!(out, "| {} |", md(trace));
        for c in 0..columns.len() {
            let modes = cells.get(&c);
            let failed: Vec<String> = modes
                .map(|m| {
                    m.iter()
                        .filter(|(_, (o, _, _))| o == "fail")
                        .map(|(k, (_, _, l))| match l.as_deref() {
                            Some("should") => format!("{k} SHOULD"),
                            Some("choice") => format!("{k} choice"),
                            _ => format!("{k} MUST"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let passed = modes.is_some_and(|m| m.values().any(|(o, _, _)| o == "pass"));
            let reason = modes
                .and_then(|m| m.values().find_map(|(_, r, _)| r.clone()))
                .unwrap_or_else(|| "not run".into());
            let cell = if !failed.is_empty() {
                format!("FAIL ({})", failed.join(", "))
            } else if passed {
                "pass".to_string()
            } else {
                format!("skip: {reason}")
            };
            let _ = write!(out, " {} |", md(&cell));
        }
        out.push('\n');
    }
    out
}

fn md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::Diff;

    fn sample() -> Report {
        let mut r = Report::new("socks5", "127.0.0.1:1080");
        let base = TraceResult {
            trace: "socks5/a".into(),
            title: "A <&> \"quoted\"".into(),
            mode: Mode::Whole,
            level: Level::Must,
            rfc: None,
            cause: None,
            outcome: Outcome::Pass,
            duration: Duration::from_millis(3),
        };
        r.results.push(base.clone());
        r.results.push(TraceResult {
            mode: Mode::Split1,
            outcome: Outcome::Skip("server does not support BIND".into()),
            ..base.clone()
        });
        r.results.push(TraceResult {
            mode: Mode::Pipelined,
            outcome: Outcome::Fail(Failure {
                line: 7,
                step: "server: 05 00 # <ok>".into(),
                message: "mismatch".into(),
                diff: Some(Box::new(Diff {
                    expected: vec!["05 00".into()],
                    received: vec![5, 1],
                    offset: 1,
                    detail: "expected 00, received 01".into(),
                })),
            }),
            ..base
        });
        r
    }

    #[test]
    fn text_counts_and_diff() {
        let r = sample();
        assert_eq!(
            r.summary(),
            Summary {
                pass: 1,
                fail: 1,
                skip: 1
            }
        );
        let t = r.render_text();
        assert!(!t.contains("SKIP socks5/a"), "{t}");
        assert!(t.contains("    1 server does not support BIND"), "{t}");
        assert!(r
            .render_verbose()
            .contains("SKIP socks5/a [split1]: server does not support BIND"));
        assert!(t.contains("FAIL socks5/a [pipelined]"));
        assert!(t.contains("first difference at offset 1"));
        assert!(
            t.ends_with(
                "1 passed, 1 failed (1 MUST, 0 SHOULD, 0 implementation choice), 1 skipped\n"
            ),
            "{t}"
        );
        assert!(r.fails_run());
    }

    #[test]
    fn json_is_valid() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(v["summary"]["fail"], 1);
        assert_eq!(v["results"][1]["reason"], "server does not support BIND");
        assert_eq!(v["results"][2]["failure"]["diff"]["received"], "05 01");
        assert_eq!(v["results"][2]["mode"], "pipelined");
    }

    #[test]
    fn table_merges_reports() {
        let rows = rows_from_json(&sample().to_json()).unwrap();
        assert_eq!(rows.len(), 3);
        let other = vec![JsonRow {
            trace: "socks5/a".into(),
            mode: "whole".into(),
            outcome: "skip".into(),
            reason: Some("needs auth".into()),
            level: None,
        }];
        let t = markdown_table(&[("ours".into(), rows), ("theirs".into(), other)]);
        assert!(t.contains("| ours | 1 | 1 | 1 |"), "{t}");
        assert!(t.contains("| theirs | 0 | 0 | 1 |"), "{t}");
        assert!(
            t.contains("| socks5/a | FAIL (pipelined MUST) | skip: needs auth |"),
            "{t}"
        );
        assert!(rows_from_json("{").is_err());
    }

    fn run(trace: &str, mode: Mode, level: Level, fail: Option<&str>) -> TraceResult {
        TraceResult {
            trace: trace.into(),
            title: format!("RFC 1928: {trace}"),
            mode,
            level: effective_level(level, mode),
            rfc: Some("RFC 1928 §6: \"...\"".into()),
            cause: None,
            outcome: match fail {
                None => Outcome::Pass,
                Some(detail) => Outcome::Fail(Failure {
                    line: 3,
                    step: "server: 05 00".into(),
                    message: "what the server sent did not match".into(),
                    diff: Some(Box::new(Diff {
                        expected: vec!["05 00".into()],
                        received: vec![],
                        offset: 0,
                        detail: detail.into(),
                    })),
                }),
            },
            duration: Duration::ZERO,
        }
    }

    #[test]
    fn failures_are_grouped_by_root_cause() {
        use Level::{Choice, Must};
        use Mode::{Pipelined, Split1, Whole};
        let mut r = Report::new("socks5", "127.0.0.1:1");
        let nothing = Some("expected 05, but nothing more was received");
        r.results = vec![
            run("socks5/a", Whole, Must, None),
            run("socks5/a", Split1, Must, nothing),
            run("socks5/a", Pipelined, Must, nothing),
            run("socks5/b", Whole, Must, None),
            run("socks5/b", Split1, Must, nothing),
            run(
                "socks5/c",
                Whole,
                Choice,
                Some("expected close, received bytes"),
            ),
            run(
                "socks5/c",
                Split1,
                Choice,
                Some("expected close, received bytes"),
            ),
        ];
        let f = r.findings();
        assert_eq!(f.len(), 3, "{f:#?}");
        assert_eq!(f[0].level, Must);
        assert!(f[0].cause.starts_with("treats one recv() as one message"));
        assert_eq!(
            f[0].traces,
            ["socks5/a [MUST] (split1)", "socks5/b [MUST] (split1)"]
        );
        // Pipelined failures are SHOULD at most.
        assert_eq!(f[1].level, Level::Should);
        assert_eq!(f[1].traces, ["socks5/a [SHOULD] (pipelined)"]);
        assert_eq!(f[2].level, Choice);
        assert_eq!(f[2].cause, "expected close, received bytes");
        assert_eq!(f[2].runs.len(), 2);
        assert_eq!(
            f[2].traces,
            ["socks5/c [implementation choice] (whole, split1)"]
        );
        assert_eq!(r.failures_by_level(), (2, 1, 2));
        assert!(r.fails_run());
        r.results.retain(|x| x.trace == "socks5/c");
        assert!(!r.fails_run(), "implementation choices do not fail a run");
    }

    #[test]
    fn junit_is_escaped() {
        let x = sample().to_junit();
        assert!(x.contains("tests=\"3\""), "{x}");
        assert!(x.contains("failures=\"1\""), "{x}");
        assert!(x.contains("skipped=\"1\""), "{x}");
        assert!(
            x.contains("message=\"server does not support BIND\""),
            "{x}"
        );
        assert!(x.contains("type=\"MUST\""), "{x}");
        assert!(x.contains("# &lt;ok&gt;"), "{x}");
        assert!(!x.contains("<ok>"));
    }
}
