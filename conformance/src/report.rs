//! Reports of a replay run: per trace and mode PASS / FAIL / SKIP, as text for people,
//! JSON and JUnit XML for machines.
//!
//! Only formatting; running is [`crate::replay`], [`crate::memory`] and [`crate::live`].

use crate::replay::{Failure, Outcome};
use crate::trace::{Mode, Trace};
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
            outcome,
            duration,
        }
    }

    /// `socks5/connect-ipv4 [split1]`.
    pub fn id(&self) -> String {
        format!("{} [{}]", self.trace, self.mode)
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
    results: Vec<JsonResult<'a>>,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    trace: &'a str,
    mode: Mode,
    title: &'a str,
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

    /// One line per result (failures followed by their difference), then the counts.
    pub fn render_text(&self) -> String {
        self.render(true)
    }

    /// The failures with their difference, then the counts of the whole run.
    pub fn render_failures(&self) -> String {
        self.render(false)
    }

    fn render(&self, all: bool) -> String {
        let mut out = format!(
            "triproxy-conformance {} against {}\n",
            self.suite, self.target
        );
        for r in &self.results {
            let ms = r.duration.as_millis();
            match &r.outcome {
                Outcome::Pass | Outcome::Skip(_) if !all => {}
                Outcome::Pass => {
                    let _ = writeln!(out, "PASS {} ({ms} ms)", r.id());
                }
                Outcome::Skip(why) => {
                    let _ = writeln!(out, "SKIP {}: {why}", r.id());
                }
                Outcome::Fail(f) => {
                    let _ = writeln!(out, "FAIL {} ({ms} ms): {}", r.id(), r.title);
                    out.push_str(&f.render("    "));
                }
            }
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped",
            s.pass, s.fail, s.skip
        );
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        let report = JsonReport {
            suite: &self.suite,
            target: &self.target,
            summary: self.summary(),
            results: self
                .results
                .iter()
                .map(|r| JsonResult {
                    trace: &r.trace,
                    mode: r.mode,
                    title: &r.title,
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

    /// The report as JUnit XML (one testsuite, one testcase per trace and mode).
    pub fn to_junit(&self) -> String {
        let s = self.summary();
        let total: f64 = self.results.iter().map(|r| r.duration.as_secs_f64()).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"triproxy-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">",
            self.results.len(),
            s.fail,
            s.skip
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" hostname=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{total:.3}\">",
            xml(&self.suite),
            xml(&self.target),
            self.results.len(),
            s.fail,
            s.skip
        );
        for r in &self.results {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&self.suite),
                xml(&r.id()),
                r.duration.as_secs_f64()
            );
            match &r.outcome {
                Outcome::Pass => out.push_str("/>\n"),
                Outcome::Skip(why) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(why)
                    );
                }
                Outcome::Fail(f) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
                        xml(&format!("line {}: {}", f.line, f.message)),
                        xml(&f.render(""))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
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
    type Cell = BTreeMap<String, (String, Option<String>)>;
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
                .is_some_and(|(o, _)| rank(o) >= rank(&r.outcome));
            if !keep {
                cell.insert(r.mode.clone(), (r.outcome.clone(), r.reason.clone()));
            }
        }
    }
    let mut out = String::from("| implementation | pass | fail | skip |\n|---|---:|---:|---:|\n");
    for (c, (name, _)) in columns.iter().enumerate() {
        let (mut p, mut f, mut s) = (0, 0, 0);
        for cells in grid.values() {
            for (o, _) in cells
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
        let ran = cells.values().any(|m| m.values().any(|(o, _)| o != "skip"));
        if !ran {
            continue;
        }
        let _ = write!(out, "| {} |", md(trace));
        for c in 0..columns.len() {
            let modes = cells.get(&c);
            let failed: Vec<&str> = modes
                .map(|m| {
                    m.iter()
                        .filter(|(_, (o, _))| o == "fail")
                        .map(|(k, _)| k.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let passed = modes.is_some_and(|m| m.values().any(|(o, _)| o == "pass"));
            let reason = modes
                .and_then(|m| m.values().find_map(|(_, r)| r.clone()))
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

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
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
        assert!(t.contains("SKIP socks5/a [split1]: server does not support BIND"));
        assert!(t.contains("FAIL socks5/a [pipelined]"));
        assert!(t.contains("first difference at offset 1"));
        assert!(t.ends_with("1 passed, 1 failed, 1 skipped\n"));
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
        }];
        let t = markdown_table(&[("ours".into(), rows), ("theirs".into(), other)]);
        assert!(t.contains("| ours | 1 | 1 | 1 |"), "{t}");
        assert!(t.contains("| theirs | 0 | 0 | 1 |"), "{t}");
        assert!(
            t.contains("| socks5/a | FAIL (pipelined) | skip: needs auth |"),
            "{t}"
        );
        assert!(rows_from_json("{").is_err());
    }

    #[test]
    fn junit_is_escaped() {
        let x = sample().to_junit();
        assert!(x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""));
        assert!(x.contains("<skipped message=\"server does not support BIND\"/>"));
        assert!(x.contains("# &lt;ok&gt;"));
        assert!(!x.contains("<ok>"));
        assert_eq!(xml("a\u{1}b&"), "a?b&amp;");
    }
}
