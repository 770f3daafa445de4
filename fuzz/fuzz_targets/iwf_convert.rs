//! Any content and identities convert to SMS, Email or MMS without panic, or give a typed error; the
//! same bytes read as SMPP / MMS acknowledgements: see `cpm_roles::fuzzing::iwf_convert`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cpm_roles::fuzzing::iwf_convert(data));
