//! Any event sequence on one hop's link-establishment machine: see `cpm_negotiation::fuzzing::hop_establishment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cpm_negotiation::fuzzing::hop_establishment(data));
