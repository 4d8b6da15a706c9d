//! Finding and reading trace files: the suite built into the binary, a suite directory
//! (`<root>/<protocol>/*.trace`), one file, and [`LoadError`] for what can go wrong.
//!
//! Only files are handled here; their text is read by [`parse`].

use super::{parse, ParseError, ParseErrorKind, Protocol, Trace, MAX_TRACES, MAX_TRACE_LEN};
use core::fmt;
use std::path::{Path, PathBuf};

/// A trace directory that could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the directory or a file failed.
    Io {
        /// Which path.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A trace does not parse.
    Parse(ParseError),
    /// More than [`MAX_TRACES`] traces.
    TooMany,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            LoadError::Parse(e) => write!(f, "{e}"),
            LoadError::TooMany => write!(f, "more than {MAX_TRACES} traces"),
        }
    }
}

impl std::error::Error for LoadError {}

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/traces.rs"));
}

/// The shipped traces of `protocol`, built into the binary (so an installed tool runs from
/// any directory), in file-name order.
pub fn embedded_suite(protocol: Protocol) -> Result<Vec<Trace>, ParseError> {
    embedded::EMBEDDED
        .iter()
        .filter(|(suite, _, _)| *suite == protocol.name())
        .map(|(_, stem, text)| parse(&format!("{}/{stem}", protocol.name()), protocol, text))
        .collect()
}

/// The trace directory of this source tree (`conformance/traces`), for tests and for
/// editing traces without rebuilding (`--traces`).
pub fn default_trace_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/traces"))
}

/// Loads every `*.trace` of `root/<protocol>` in file-name order.
pub fn load_suite(root: &Path, protocol: Protocol) -> Result<Vec<Trace>, LoadError> {
    let dir = root.join(protocol.name());
    let entries = std::fs::read_dir(&dir).map_err(|error| LoadError::Io {
        path: dir.clone(),
        error,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| LoadError::Io {
            path: dir.clone(),
            error,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "trace") {
            if paths.len() >= MAX_TRACES {
                return Err(LoadError::TooMany);
            }
            paths.push(path);
        }
    }
    paths.sort();
    let mut traces = Vec::with_capacity(paths.len());
    for path in paths {
        traces.push(load_file(&path, protocol)?);
    }
    Ok(traces)
}

/// Loads one trace file (at most [`MAX_TRACE_LEN`] bytes).
pub fn load_file(path: &Path, protocol: Protocol) -> Result<Trace, LoadError> {
    let io = |error| LoadError::Io {
        path: path.to_path_buf(),
        error,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{}/{stem}", protocol.name());
    if len > MAX_TRACE_LEN as u64 {
        return Err(LoadError::Parse(ParseError {
            trace: name,
            line: 0,
            kind: ParseErrorKind::FileTooLarge,
        }));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut trace = parse(&name, protocol, &text).map_err(LoadError::Parse)?;
    trace.path = Some(path.to_path_buf());
    Ok(trace)
}
