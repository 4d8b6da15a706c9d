//! Replays every corpus and every saved finding through its fuzz target, and checks that
//! every target has a corpus.

use triproxy_fuzz::replay_path;
use triproxy_fuzz_replay::{fuzz_dir, TARGETS};

#[test]
fn every_corpus_replays() {
    assert!(!TARGETS.is_empty(), "no fuzz targets found");
    for (name, run) in TARGETS {
        let ran = replay_path(&fuzz_dir().join("corpus").join(name), *run);
        println!("{name}: {ran} corpus inputs");
        // Every target comes with seeds (fuzz/README.md, "Adding a target").
        assert!(ran > 0, "fuzz/corpus/{name}/ is empty or missing");
    }
}

#[test]
fn every_saved_finding_replays() {
    for (name, run) in TARGETS {
        let ran = replay_path(&fuzz_dir().join("artifacts-found").join(name), *run);
        println!("{name}: {ran} saved findings");
    }
}

#[test]
fn every_corpus_directory_has_a_target() {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join("corpus")) else {
        panic!("fuzz/corpus is missing");
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} has no fuzz/fuzz_targets/{name}.rs"
        );
    }
}
