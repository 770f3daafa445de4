//! Arbitrary interleavings of the CPM entities in the simulator (options,
//! members, read splits, latency, jitter, SIP datagram faults, proxies, link
//! resets, an early end): never a panic, never wrong or duplicated bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cpm_roles::fuzzing::scenario(data));
