//! Replays the committed seeds of the `cpm_roles` fuzz target
//! (`fuzz/seeds/cpm_roles/`) on stable, so that every seed, and every
//! crash saved there as a named regression, keeps passing.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

#[test]
fn cpm_roles_seeds_replay() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/cpm_roles");
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 8, "seeds missing in {dir}");
    for path in names {
        let data = std::fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        cpm_roles::fuzzing::scenario(&data);
    }
}

/// Arbitrary short inputs (a seeded byte generator) never panic.
#[test]
fn arbitrary_inputs_do_not_panic() {
    let mut ids = cpm_roles::SimulationIds::new(0xF022);
    for len in 0..24 {
        let data: Vec<u8> = (0..len).map(|_| (ids.next_u64() & 0xFF) as u8).collect();
        cpm_roles::fuzzing::scenario(&data);
    }
}
