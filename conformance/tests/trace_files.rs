//! Loading trace directories: errors name the file and the line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use triproxy_conformance::trace::{self, LoadError, ParseErrorKind, Protocol};

#[test]
fn a_bad_file_is_reported_with_its_name_and_line() {
    let root =
        std::env::temp_dir().join(format!("triproxy-conformance-load-{}", std::process::id()));
    let dir = root.join("socks5");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a-good.trace"),
        "# RFC 1928 §3: good\nclient: 05 01 00\nserver: 05 00\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b-bad.trace"),
        "# RFC 1928 §3: bad\nclient: 05 01 00\nserver: 05 0\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a trace").unwrap();
    let err = trace::load_suite(&root, Protocol::Socks5).unwrap_err();
    let LoadError::Parse(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.trace, "socks5/b-bad");
    assert_eq!(e.line, 3);
    assert_eq!(e.kind, ParseErrorKind::BadToken("0".into()));
    assert_eq!(err.to_string(), "socks5/b-bad:3: unexpected token `0`");

    std::fs::remove_file(dir.join("b-bad.trace")).unwrap();
    let traces = trace::load_suite(&root, Protocol::Socks5).unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].title, "RFC 1928 §3: good");
    assert!(traces[0].path.as_ref().unwrap().ends_with("a-good.trace"));

    let missing = trace::load_suite(&root, Protocol::Socks4).unwrap_err();
    assert!(matches!(missing, LoadError::Io { .. }), "{missing}");
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_shipped_traces_all_parse() {
    for p in [Protocol::Socks4, Protocol::Socks5] {
        let traces = trace::load_suite(&trace::default_trace_dir(), p).unwrap();
        assert!(traces.len() >= 15, "{p:?}: {}", traces.len());
        for t in traces {
            assert_eq!(t.protocol, p);
            assert!(!t.steps.is_empty());
        }
    }
}

#[test]
fn the_embedded_traces_are_the_shipped_files() {
    for p in [Protocol::Socks4, Protocol::Socks5, Protocol::Http] {
        let mut from_dir = trace::load_suite(&trace::default_trace_dir(), p).unwrap();
        for t in &mut from_dir {
            t.path = None;
        }
        let embedded = trace::embedded_suite(p).unwrap();
        assert_eq!(embedded, from_dir, "{p:?}: rebuild after editing traces");
    }
}

#[test]
fn every_shipped_trace_has_a_level_and_quotes_its_rfc() {
    for p in [Protocol::Socks4, Protocol::Socks5, Protocol::Http] {
        for t in trace::embedded_suite(p).unwrap() {
            let rfc = t.rfc.as_deref().unwrap_or_default();
            assert!(
                (rfc.starts_with("RFC ") || rfc.starts_with("SOCKS4")) && rfc.contains('"'),
                "{}: `rfc:` should name the document and quote it: {rfc:?}",
                t.name
            );
            let text = std::fs::read_to_string(
                trace::default_trace_dir().join(format!("{}.trace", t.name)),
            )
            .unwrap();
            assert!(
                text.lines().any(|l| l.starts_with("level:")),
                "{}: no `level:`",
                t.name
            );
        }
    }
}
