//! Stable-Rust replay of triproxy's fuzz corpora.
//!
//! Every file `fuzz/fuzz_targets/NAME.rs` is compiled here as module `NAME` (the build
//! script lists the directory), and [`TARGETS`] pairs each name with its `run` function.
//! The tests in `tests/replay.rs` run every input of `fuzz/corpus/NAME/` and
//! `fuzz/artifacts-found/NAME/` through it, so `cargo test` exercises the corpora without a
//! nightly toolchain or libFuzzer.
//!
//! This crate is not where targets are written (that is `fuzz/fuzz_targets/`) and it does
//! not fuzz: it only replays what is on disk.

include!(concat!(env!("OUT_DIR"), "/targets.rs"));

use std::path::PathBuf;

/// The `fuzz/` directory of this repository.
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}
