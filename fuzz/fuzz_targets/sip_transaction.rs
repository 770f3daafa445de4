//! An arbitrary script of SIP messages, time steps and commands against the transaction layer: see `sip_lite::fuzzing::sip_transaction`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip_lite::fuzzing::sip_transaction(data));
