//! Replays the committed fuzz inputs through the fuzz targets' functions, on
//! stable and without libFuzzer: `cargo test -p msrp-core --features fuzzing`.
//!
//! `fuzz/seeds/<target>/` holds the named seed corpus, `fuzz/regressions/<target>/`
//! every input that once crashed a target (see `fuzz/README.md`).

#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::fs;
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `fuzz/<folder>/<target>`, sorted, dot-files (`.gitkeep`) left out.
fn inputs(folder: &str, target: &str) -> Vec<PathBuf> {
    let Ok(dir) = fs::read_dir(fuzz_dir().join(folder).join(target)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Runs `run` over every seed and regression of `target`; returns how many
/// seeds and regressions were replayed.
fn replay(target: &str, run: fn(&[u8])) -> (usize, usize) {
    let mut counts = [0; 2];
    for (count, folder) in counts.iter_mut().zip(["seeds", "regressions"]) {
        for path in inputs(folder, target) {
            let data = fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panic!("{target} panicked on {} ({} bytes)", path.display(), data.len());
            }
            *count += 1;
        }
    }
    (counts[0], counts[1])
}

#[test]
fn msrp_frame_seeds_and_regressions() {
    let (seeds, _) = replay("msrp_frame", msrp_core::fuzzing::msrp_frame);
    assert!(seeds >= 1, "no seed replayed from {}", fuzz_dir().join("seeds/msrp_frame").display());
}

#[test]
fn msrp_session_seeds_and_regressions() {
    let (seeds, _) = replay("msrp_session", msrp_core::fuzzing::msrp_session);
    assert!(seeds > 0, "no msrp_session seed");
}

#[test]
fn rfc4976_relay_seeds_and_regressions() {
    let (seeds, _) = replay("rfc4976_relay", msrp_core::fuzzing::rfc4976_relay);
    assert!(seeds > 0, "no rfc4976_relay seed");
}

#[test]
fn msrp_relay_seeds_and_regressions() {
    let (seeds, _) = replay("msrp_relay", msrp_core::fuzzing::msrp_relay);
    assert!(seeds > 0, "no msrp_relay seed");
}

#[test]
fn msrp_uri_seeds_and_regressions() {
    let (seeds, _) = replay("msrp_uri", msrp_core::fuzzing::msrp_uri);
    assert!(seeds >= 1, "no seed replayed from {}", fuzz_dir().join("seeds/msrp_uri").display());
}

/// The URI seeds are named for what they are: `y_` parses, `n_` does not.
#[test]
fn msrp_uri_seed_names_match_their_validity() {
    for path in inputs("seeds", "msrp_uri") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let valid = msrp_core::uri::validate(&fs::read(&path).unwrap()).is_ok();
        assert_eq!(valid, name.starts_with("y_"), "{name}");
        assert!(name.starts_with("y_") || name.starts_with("n_"), "{name}");
    }
}

/// The frame seeds are the conformance vectors, kept in step with them.
#[test]
fn msrp_frame_seeds_are_the_conformance_vectors() {
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/msrp");
    for entry in fs::read_dir(&vectors).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "msrp") {
            let seed = fuzz_dir().join("seeds/msrp_frame").join(path.file_name().unwrap());
            assert_eq!(fs::read(&seed).ok(), Some(fs::read(&path).unwrap()), "{} is not a seed", path.display());
        }
    }
}
