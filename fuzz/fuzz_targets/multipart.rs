//! A Content-Type line and a multipart body: split, build, split again: see `sip_lite::fuzzing::multipart`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip_lite::fuzzing::multipart(data));
