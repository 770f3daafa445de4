//! One SIP message or stream: whole and split parses agree, accepted messages round-trip: see `sip_lite::fuzzing::sip_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip_lite::fuzzing::sip_message(data));
