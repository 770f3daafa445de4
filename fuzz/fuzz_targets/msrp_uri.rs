//! Parse, display, compare and hash one MSRP URI: see `msrp_core::fuzzing::msrp_uri`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_core::fuzzing::msrp_uri(data));
