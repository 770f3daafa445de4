//! The conformance corpus (`tests/vectors/msrp`, copied from the shared
//! vectors): every file fed whole and at every split size from 1 to 64.
//! `y_` files must print exactly their `.expect.json`; `n_` files must fail.

#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::path::{Path, PathBuf};

#[expect(dead_code, reason = "the tool's main is not called from the tests")]
#[path = "../examples/msrp_dump.rs"]
mod msrp_dump;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

struct Entry {
    file: String,
    expect: String,
}

fn manifest() -> Vec<Entry> {
    let text = std::fs::read_to_string(vectors_dir().join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            Entry { file: cols[0].to_string(), expect: cols[1].to_string() }
        })
        .collect()
}

fn run_all_splits(input: &[u8]) -> (Vec<String>, bool) {
    let whole = msrp_dump::dump(input, None);
    for split in 1..=64 {
        let got = msrp_dump::dump(input, Some(split));
        assert_eq!(got, whole, "split {split} differs from whole input");
    }
    whole
}

#[test]
fn manifest_covers_every_file() {
    let entries = manifest();
    let dir = vectors_dir().join("msrp");
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| !e.as_ref().unwrap().path().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(entries.len(), files);
    assert!(entries.len() >= 185, "the corpus was not copied");
}

#[test]
fn accepted_vectors_print_their_expectation() {
    for entry in manifest().iter().filter(|e| e.expect == "accept") {
        let path = vectors_dir().join(&entry.file);
        let input = std::fs::read(&path).unwrap();
        let (lines, ok) = run_all_splits(&input);
        assert!(ok, "{}: rejected: {lines:?}", entry.file);
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{}.expect.json", path.display())).unwrap()).unwrap();
        let got: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(serde_json::Value::Array(got), expect, "{}", entry.file);
    }
}

#[test]
fn rejected_vectors_fail_the_same_way_at_every_split() {
    for entry in manifest().iter().filter(|e| e.expect == "reject") {
        let input = std::fs::read(vectors_dir().join(&entry.file)).unwrap();
        let (lines, ok) = run_all_splits(&input);
        assert!(!ok, "{}: accepted: {lines:?}", entry.file);
        let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert!(last["error"].is_string() && last["offset"].as_u64().unwrap() <= input.len() as u64, "{}", entry.file);
    }
}

#[test]
fn implementation_defined_vectors_are_split_independent() {
    for entry in manifest().iter().filter(|e| e.expect == "impl") {
        let input = std::fs::read(vectors_dir().join(&entry.file)).unwrap();
        let (lines, ok) = run_all_splits(&input);
        eprintln!("{}: {} {}", entry.file, if ok { "accepted" } else { "rejected" }, lines.last().unwrap());
    }
}
