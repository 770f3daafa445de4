//! An SDP body with MSRP media: parse, build, parse again: see `cpm_negotiation::fuzzing::msrp_sdp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cpm_negotiation::fuzzing::msrp_sdp(data));
