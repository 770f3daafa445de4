//! Replays the committed fuzz seeds and every saved crash through the fuzz
//! entry points, on stable, in every `cargo test --all-features`.
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for folder in ["seeds", "regressions"] {
        let Ok(dir) = std::fs::read_dir(fuzz.join(folder).join(target)) else { continue };
        files.extend(dir.map(|e| e.unwrap().path()).filter(|p| p.is_file() && !p.ends_with(".gitkeep")));
    }
    files.sort();
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no seed for {target}");
    for path in files {
        eprintln!("replaying {}", path.display());
        run(&std::fs::read(&path).unwrap());
    }
}

#[test]
fn msrp_sdp_seeds_and_regressions() {
    replay("msrp_sdp", cpm_negotiation::fuzzing::msrp_sdp);
}

#[test]
fn hop_establishment_seeds_and_regressions() {
    replay("hop_establishment", cpm_negotiation::fuzzing::hop_establishment);
}
