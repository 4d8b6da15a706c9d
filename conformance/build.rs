//! Embeds the shipped traces: writes `$OUT_DIR/traces.rs`, a table of
//! `(suite, file stem, include_str!(file))` for every `traces/<suite>/*.trace`, sorted, so
//! that an installed binary carries its suite and runs from any directory.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("traces");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut rows = Vec::new();
    let mut suites: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    suites.sort();
    for dir in suites.into_iter().filter(|p| p.is_dir()) {
        println!("cargo:rerun-if-changed={}", dir.display());
        let suite = dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for f in files {
            if f.extension().is_some_and(|e| e == "trace") {
                println!("cargo:rerun-if-changed={}", f.display());
                let stem = f
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                rows.push((suite.clone(), stem, f));
            }
        }
    }
    let mut out = String::from(
        "/// The shipped traces: (suite directory, file stem, text), sorted by suite and name.\n\
         pub static EMBEDDED: &[(&str, &str, &str)] = &[\n",
    );
    for (suite, stem, path) in rows {
        let _ = writeln!(
            out,
            "    ({suite:?}, {stem:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("traces.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
