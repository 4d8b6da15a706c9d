//! Helpers for the configuration tests: scratch directories under the system temp dir and
//! short ways to parse text and inspect errors.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use triproxy::config::{self, Config, ConfigError, ConfigErrorKind};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A directory under `std::env::temp_dir()` with a unique name, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "triproxy-config-test-{}-{tag}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `name` (relative to the directory) and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Parses `text` named `test.cfg`, relative names resolved in `dir`.
pub fn parse_in(dir: &TempDir, text: &str) -> Result<Config, ConfigError> {
    config::parse_str(text, "test.cfg", dir.path())
}

/// Parses text that must not name any file.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let dir = TempDir::new("parse");
    parse_in(&dir, text)
}

/// Parses `text` expecting success.
pub fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Parses `text` expecting an error on `line` of `test.cfg`; returns its kind and checks
/// that the message starts with `test.cfg:<line>: `.
pub fn err_at(text: &str, line: usize) -> ConfigErrorKind {
    let e = match parse(text) {
        Ok(c) => panic!(
            "expected an error on line {line}, got {} services",
            c.services.len()
        ),
        Err(e) => e,
    };
    assert_eq!((e.file.as_str(), e.line), ("test.cfg", line), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("test.cfg:{line}: ")), "{msg}");
    e.kind
}

/// A socket address literal.
pub fn addr(s: &str) -> std::net::SocketAddr {
    s.parse().unwrap()
}

/// An ACL entry from its fields.
pub fn ace(action: triproxy_policy::acl::Action, fields: &[&str]) -> triproxy_policy::acl::Ace {
    triproxy_policy::acl::Ace::parse(action, fields).unwrap()
}

/// The (command, min, max, given) of an argument-count error on line 1 of `text`.
pub fn arg_count(text: &str) -> (String, usize, Option<usize>, usize) {
    match err_at(text, 1) {
        ConfigErrorKind::ArgumentCount {
            command,
            min,
            max,
            given,
        } => (command, min, max, given),
        other => panic!("{other:?}"),
    }
}
