//! Two MSRP sessions driven by an arbitrary script: see `msrp_core::fuzzing::msrp_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_core::fuzzing::msrp_session(data));
