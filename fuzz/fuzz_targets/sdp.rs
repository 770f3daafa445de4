//! One SDP body: parse, serialize, parse again: see `sip_lite::fuzzing::sdp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip_lite::fuzzing::sdp(data));
