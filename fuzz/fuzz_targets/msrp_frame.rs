//! Whole vs split framing of one MSRP byte stream: see `msrp_core::fuzzing::msrp_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_core::fuzzing::msrp_frame(data));
