//! The `msrp_session` and `msrp_relay` fuzz targets with the receiving
//! side's real heap measured: a charging global allocator
//! (`support/charged_heap.rs`, the one the fuzz binaries use) counts what the
//! machine under test allocated and has not freed, and the targets assert it
//! stays under their bounds. Replays the committed seeds and regressions and
//! seeded scripts, on stable: `cargo test -p msrp-core --features fuzzing`.

#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]
#![allow(unsafe_code, reason = "a counting GlobalAlloc is unsafe to implement; it only forwards to System")]

#[path = "support/charged_heap.rs"]
mod charged_heap;

use std::fs;
use std::path::{Path, PathBuf};

use msrp_core::fuzzing::{msrp_relay_with_heap, msrp_session_with_heap, HeapMeter};

#[global_allocator]
static HEAP: charged_heap::ChargedHeap = charged_heap::ChargedHeap;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The committed seeds and regressions of `target`, dot-files left out.
fn committed(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for folder in ["seeds", "regressions"] {
        let Ok(dir) = fs::read_dir(fuzz_dir().join(folder).join(target)) else { continue };
        files.extend(
            dir.map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.')),
        );
    }
    files.sort();
    files
}

/// `count` scripts of `len` pseudo-random bytes (xorshift from `seed`).
fn scripts(mut state: u64, count: usize, len: usize) -> impl Iterator<Item = Vec<u8>> {
    (0..count).map(move |_| {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    })
}

#[test]
fn the_meter_counts_what_is_charged_and_frees_it_whoever_frees_it() {
    let base = HEAP.charged().unwrap();
    HEAP.charge(true);
    let kept = vec![0u8; 10_000];
    HEAP.charge(false);
    let other = vec![0u8; 5_000];
    assert_eq!(HEAP.charged().unwrap() - base, 10_000);
    // A block keeps its charge through a reallocation, and loses it only
    // when it is freed, charging or not.
    let mut kept = kept;
    kept.reserve_exact(30_000);
    assert_eq!(HEAP.charged().unwrap() - base, kept.capacity());
    HEAP.charge(true);
    drop(other);
    HEAP.charge(false);
    assert_eq!(HEAP.charged().unwrap() - base, kept.capacity());
    drop(kept);
    assert_eq!(HEAP.charged().unwrap(), base);
}

#[test]
fn msrp_session_heap_over_seeds_regressions_and_scripts() {
    for path in committed("msrp_session") {
        eprintln!("{}", path.display());
        msrp_session_with_heap(&fs::read(&path).unwrap(), &HEAP);
    }
    for data in scripts(0x2545_f491_4f6c_dd1d, 300, 2048) {
        msrp_session_with_heap(&data, &HEAP);
    }
}

#[test]
fn msrp_relay_heap_over_seeds_regressions_and_scripts() {
    for path in committed("msrp_relay") {
        eprintln!("{}", path.display());
        msrp_relay_with_heap(&fs::read(&path).unwrap(), &HEAP);
    }
    for data in scripts(0x9e37_79b9_7f4a_7c15, 48, 3000) {
        msrp_relay_with_heap(&data, &HEAP);
    }
}

/// Input bytes that `arbitrary` 1.x decodes as chosen values: the targets'
/// scripts written by hand.
#[derive(Default)]
struct Script(Vec<u8>);

impl Script {
    /// Checks that the committed seed `fuzz/seeds/<target>/<name>` is this
    /// script, so that the fuzz smoke starts from it too.
    fn is_seed(&self, target: &str, name: &str) -> &[u8] {
        let path = fuzz_dir().join("seeds").join(target).join(name);
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&self.0[..]), "{} is not this script", path.display());
        &self.0
    }

    /// Variant `index` of an enum with `count` variants (the derive picks
    /// `(u32 * count) >> 32`).
    fn variant(&mut self, index: u32, count: u32) -> &mut Self {
        let value = (u64::from(index) << 32).div_ceil(u64::from(count));
        self.0.extend_from_slice(&u32::try_from(value).unwrap().to_le_bytes());
        self
    }
    fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }
    fn u16(&mut self, value: u16) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }
    fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }
    /// A `Vec<u8>`: each byte after a "one more" flag, then the end flag.
    fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.bool(true).u8(b);
        }
        self.bool(false)
    }
}

/// `msrp_session` ops (the order of `SessionOp`), each after the "one more
/// op" flag of the `Vec` it is in.
const SESSION_OPS: u32 = 7;
fn session_send(script: &mut Script, len: u16) {
    script.bool(true).variant(0, SESSION_OPS).u16(len).bool(false).u8(0);
}
fn session_deliver_to_b(script: &mut Script, max: u16) {
    script.bool(true).variant(3, SESSION_OPS).bool(true).u16(max);
}
fn session_inject_to_b(script: &mut Script, bytes: &[u8]) {
    script.bool(true).variant(4, SESSION_OPS).bool(true).bytes(bytes);
}

/// `msrp_relay` ops (the order of `RelayOp`), back to back.
const RELAY_OPS: u32 = 8;
fn relay_send(script: &mut Script, len: u16) {
    script.variant(0, RELAY_OPS).u16(len).bool(false);
}
fn relay_deliver(script: &mut Script, pipe: u8, max: u16) {
    script.variant(3, RELAY_OPS).u8(pipe).u16(max).bool(true);
}

/// A 740 000-byte message streamed to B in reads of 1002 bytes, each sliced
/// from a 16 KiB read buffer. B keeps a copy of the last 64 KiB it delivered
/// (the overlap window, RFC 4975 s.7.3.1); had it kept the delivered slices
/// instead, each would keep its whole read: 65 reads, over 1 MiB, where the
/// bound allows under 400 KiB. (The seed `stream-in-small-reads`.)
#[test]
fn a_message_streamed_in_small_reads_leaves_no_reads_behind() {
    let mut script = Script::default();
    session_send(&mut script, 20_000);
    for _ in 0..150 {
        session_deliver_to_b(&mut script, 77);
    }
    script.bool(false);
    msrp_session_with_heap(script.is_seed("msrp_session", "stream-in-small-reads"), &HEAP);
}

/// 60 out-of-order chunks of 5 bytes, each in a read of its own. B holds
/// them (RFC 4975 s.7.3.1) as owned copies; had it kept the slices, each
/// would keep its 16 KiB read: 960 KiB for 300 held bytes.
#[test]
fn out_of_order_chunks_in_reads_of_their_own_leave_no_reads_behind() {
    let mut script = Script::default();
    for i in 0..60u64 {
        let start = 1000 + 10 * i;
        let chunk = format!(
            "MSRP t{i:07} SEND\r\nTo-Path: msrp://b.example.com:8888/bbbbbbbbbbbb;tcp\r\n\
             From-Path: msrp://a.example.com:7777/aaaaaaaaaaaa;tcp\r\nMessage-ID: hostile01\r\n\
             Byte-Range: {start}-{}/*\r\nContent-Type: text/plain\r\n\r\nxxxxx\r\n-------t{i:07}+\r\n",
            start + 4
        );
        session_inject_to_b(&mut script, chunk.as_bytes());
    }
    script.bool(false);
    msrp_session_with_heap(&script.0, &HEAP);
}

/// A 99 231-byte message reaches R in reads of 99 bytes (16 KiB read
/// buffers); B1 reads what R writes to it, B2 never does, so B2's queue at R
/// grows to hundreds of small pieces. A queue keeping each piece as a slice
/// of its read keeps 16 KiB per 99 bytes queued; the bound allows a shared
/// slice per 2 KiB queued. (The seed `member-never-reads-small-reads`.)
#[test]
fn a_member_that_never_reads_keeps_no_reads_behind() {
    // Pipes, in the order their links come up: A->R, R->A, R->B1, B1->R, R->B2, B2->R.
    let (a_to_r, r_to_b1) = (0, 2);
    let mut script = Script::default();
    relay_send(&mut script, 1023);
    for i in 0..290 {
        if i % 40 == 39 {
            relay_deliver(&mut script, r_to_b1, u16::MAX);
        } else {
            relay_deliver(&mut script, a_to_r, 14);
        }
    }
    msrp_relay_with_heap(script.is_seed("msrp_relay", "member-never-reads-small-reads"), &HEAP);
}
