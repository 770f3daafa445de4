//! A relay fanning messages out under arbitrary pieces, responses, link events and time steps, the
//! relay's real heap measured: see `msrp_core::fuzzing::msrp_relay_with_heap`.
#![no_main]

#[path = "../../msrp-core/tests/support/charged_heap.rs"]
mod charged_heap;

#[global_allocator]
static HEAP: charged_heap::ChargedHeap = charged_heap::ChargedHeap;

libfuzzer_sys::fuzz_target!(|data: &[u8]| msrp_core::fuzzing::msrp_relay_with_heap(data, &HEAP));
