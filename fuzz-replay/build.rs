//! Finds every fuzz target (`../fuzz/fuzz_targets/*.rs`) and generates a module for each,
//! plus the table `TARGETS` of `(name, run)`, so that a new target file is replayed without
//! any change here.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fuzzing)");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = manifest.join("../fuzz/fuzz_targets");
    println!("cargo::rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for name in &names {
        let path = dir.join(format!("{name}.rs"));
        let _ = writeln!(
            out,
            "#[path = {:?}]\n#[allow(unused_attributes)]\nmod {name};",
            path.display().to_string()
        );
    }
    out.push_str("/// A fuzz target's body.\npub type Run = fn(&[u8]);\n");
    out.push_str("/// Every fuzz target: its name (= its corpus directory) and its body.\n");
    out.push_str("pub const TARGETS: &[(&str, Run)] = &[\n");
    for name in &names {
        let _ = writeln!(out, "    ({name:?}, {name}::run),");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("targets.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}
