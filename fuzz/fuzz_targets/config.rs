#![cfg_attr(fuzzing, no_main)]
//! The daemon's 3proxy configuration reader (`triproxy::config::parse_str`) on arbitrary
//! text.
//!
//! Input: the configuration text (invalid UTF-8 is replaced, as the reader takes `&str`).
//! The reader may open files named by `include FILE` and `$FILE`; so that a fuzzer never
//! reads the machine's files, `/` and `\` become `_` on lines that mention `include` or
//! `$`, and relative names resolve under a directory that does not exist.
//!
//! Oracles: no panic, and nothing unbounded; the same text gives the same result twice;
//! an error points at a line that exists (or 0) and renders as text; every service of an
//! accepted configuration carries a log format that re-parses from its own text.

use std::path::Path;
use triproxy_fuzz::daemon::config::parse_str;
use triproxy_fuzz::daemon::logformat::LogFormat;

const NOWHERE: &str = "/nonexistent/triproxy-fuzz";

fn confine(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.to_ascii_lowercase().contains("include") || line.contains('$') {
            out.extend(
                line.chars()
                    .map(|c| if c == '/' || c == '\\' { '_' } else { c }),
            );
        } else {
            out.push_str(line);
        }
    }
    out
}

triproxy_fuzz::target!(|data| {
    let text = confine(&String::from_utf8_lossy(data));
    let first = parse_str(&text, "fuzz", Path::new(NOWHERE));
    let again = parse_str(&text, "fuzz", Path::new(NOWHERE));
    assert_eq!(
        format!("{first:?}"),
        format!("{again:?}"),
        "same text, different result"
    );
    match first {
        Ok(cfg) => {
            for service in &cfg.services {
                let format = &service.logformat;
                assert_eq!(LogFormat::parse(format.as_str()).as_ref(), Ok(format));
                assert!(service.origin.1 >= 1, "service without a line");
            }
        }
        Err(e) => {
            let lines = text.split('\n').count();
            if e.included_from.is_empty() {
                assert!(e.line <= lines, "error on line {} of {lines}", e.line);
            }
            assert!(!e.to_string().is_empty());
        }
    }
});
