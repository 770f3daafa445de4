//! An RFC 4976 relay under a script of connections, hostile bytes, AUTHs,
//! SENDs, responses, acknowledgements, losses and time: see
//! `msrp_core::fuzzing::rfc4976_relay`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_core::fuzzing::rfc4976_relay(data));
