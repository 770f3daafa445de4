//! A relay fanning messages out under arbitrary pieces, responses, link events and time steps: see `msrp_core::fuzzing::msrp_relay`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_core::fuzzing::msrp_relay(data));
