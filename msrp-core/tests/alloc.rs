//! Parsing allocates nothing once the input segments exist: a counting global
//! allocator watches the framer take frames (head, body pieces, end) apart.
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]
#![allow(unsafe_code, reason = "a counting GlobalAlloc is unsafe to implement; it only forwards to System")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use msrp_core::{Framer, FramerEvent, Limits};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
/// The counters are global: the tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn frame(txid: &str, body_len: usize) -> Vec<u8> {
    let body: String = (0..body_len).map(|i| if i % 70 == 69 { '\n' } else { 'a' }).collect();
    format!(
        "MSRP {txid} SEND\r\nTo-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
         From-Path: msrp://alice.example.com:7777/iau39soe2843z;tcp\r\nMessage-ID: m7Yq2Lk9\r\n\
         Byte-Range: 1-{body_len}/{body_len}\r\nContent-Type: text/plain\r\n\r\n{body}\r\n-------{txid}$\r\n"
    )
    .into_bytes()
}

/// Feeds the prepared segments and counts allocations while parsing.
fn allocations_while_parsing(segments: &[Bytes]) -> (usize, u64) {
    let mut framer = Framer::new(Limits::default());
    let mut body = 0u64;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for segment in segments {
        framer.handle_segment(segment.clone());
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(FramerEvent::Body(piece)) => body += piece.len() as u64,
                Ok(FramerEvent::Head(_) | FramerEvent::End(_)) => {}
                Ok(FramerEvent::Rejected { .. }) | Err(_) => panic!("unexpected error"),
            }
        }
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(framer.finish().is_ok());
    (after - before, body)
}

#[test]
fn parsing_allocates_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Three frames in one segment.
    let mut one = frame("tx000001", 200);
    one.extend(frame("tx000002", 0));
    one.extend(frame("tx000003", 5000));
    // `Bytes::from(Vec)` allocates its shared header at the first clone; a
    // runtime's segments (split off a read buffer) are shared already.
    let one = Bytes::from(one);
    let promoted = one.clone();
    let (count, body) = allocations_while_parsing(&[one]);
    drop(promoted);
    assert_eq!((count, body), (0, 5200));

    // A 1 MiB body in 1460-byte segments, the head in the first one; the
    // end-line is cut by segment boundaries too.
    let big = Bytes::from(frame("tx000004", 1 << 20));
    let segments: Vec<Bytes> = (0..big.len()).step_by(1460).map(|i| big.slice(i..(i + 1460).min(big.len()))).collect();
    let (count, body) = allocations_while_parsing(&segments);
    assert_eq!((count, body), (0, 1 << 20));
}

struct Counter(u64);

impl msrp_core::IdSource for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
            *b = (self.0 >> 33) as u8;
        }
    }
}

/// The heap an idle session holds (its URIs, id source and empty queues):
/// at most 2 KiB.
#[test]
#[expect(clippy::disallowed_methods, reason = "one real epoch for the session's clock")]
fn an_idle_session_holds_at_most_2_kib() {
    use msrp_core::session::{LinkRole, Session, SessionConfig};
    use msrp_core::MsrpUri;
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = std::time::Instant::now();
    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let config = SessionConfig::new(
        MsrpUri::parse_str("msrp://a.example.com:7777/aaaaaaaaaaaaaaaa;tcp").unwrap(),
        vec![MsrpUri::parse_str("msrp://b.example.com:8888/bbbbbbbbbbbbbbbb;tcp").unwrap()],
        LinkRole::Active,
    );
    let session = Session::new(config, now, Box::new(Counter(1)));
    // The test harness's own thread may free memory meanwhile: a drop below
    // `before` counts as nothing held.
    let heap = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!("idle session: {} bytes inline, {heap} bytes of heap", size_of_val(&session));
    assert!(heap <= 2048, "an idle session holds {heap} heap bytes");
    drop(session);
}
