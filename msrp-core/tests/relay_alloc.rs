//! Fan-out shares one body buffer: a counting global allocator watches a
//! relay pass a 1 MiB message to 100 member sessions. Heads are allocated;
//! the body is not copied, but for a piece shorter than `min_shared_piece`,
//! copied once for every member (its own test binary, because the
//! allocator is global).
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]
#![allow(unsafe_code, reason = "a counting GlobalAlloc is unsafe to implement; it only forwards to System")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use msrp_core::link::{self, SessionKey};
use msrp_core::reassembly::DeliveryMode;
use msrp_core::relay::{self, Outcome, Relay, RelayConfig};
use msrp_core::router::ConnId;
use msrp_core::session::{LinkRole, Session, SessionConfig};
use msrp_core::{IdSource, MsrpUri};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static ALLOCATED_BYTES: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Counter(u64);

impl IdSource for Counter {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            *b = (self.0 >> 33) as u8;
        }
    }
}

const MEMBERS: u64 = 100;
const BODY: usize = 1 << 20;
const CF_IN: &str = "msrp://cf.example.com:7001/cfInbound;tcp";
const A: &str = "msrp://a.example.com:7777/sessA1;tcp";

fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse_str(s).unwrap()
}

/// Drains the relay, acknowledging every transmit as written at once;
/// returns the body bytes written, and where those copied lie: bodies that
/// do not lie in `segments`, each shorter than `min_shared_piece`.
fn pump(relay: &mut Relay, now: Instant, segments: &[Bytes]) -> (usize, Vec<usize>, Vec<Outcome>) {
    let min_shared_piece = SessionConfig::new(uri(A), Vec::new(), LinkRole::Active).min_shared_piece;
    let mut body = 0;
    let mut copied = Vec::new();
    let mut outcomes = Vec::new();
    loop {
        let mut written = Vec::new();
        while let Some(output) = relay.poll_output() {
            match output {
                relay::Output::Link(link::Output::Transmit { conn, transmit }) => {
                    if !transmit.body.is_empty() {
                        let at = transmit.body.as_ptr() as usize;
                        let inside = segments.iter().any(|s| {
                            let start = s.as_ptr() as usize;
                            at >= start && at + transmit.body.len() <= start + s.len()
                        });
                        if !inside {
                            assert!(transmit.body.len() < min_shared_piece, "a long body was copied");
                            copied.push(transmit.body.as_ptr() as usize);
                        }
                        body += transmit.body.len();
                    }
                    written.push((conn, transmit.len()));
                }
                relay::Output::Outcome { outcome, .. } => outcomes.push(outcome),
                _ => {}
            }
        }
        if written.is_empty() {
            return (body, copied, outcomes);
        }
        for (conn, bytes) in written {
            relay.handle(now, relay::Input::Link(link::Input::Written { conn, bytes })).unwrap();
        }
    }
}

#[test]
#[expect(clippy::disallowed_methods, reason = "one real epoch for the relay's clock")]
fn fanout_to_100_members_allocates_heads_and_copies_a_short_piece_once() {
    let now = Instant::now();
    let mut relay = Relay::new(RelayConfig::default(), now);
    let open = |relay: &mut Relay, key: u64, config: SessionConfig| {
        let session = Box::new(Session::new(config, now, Box::new(Counter(key))));
        let open = link::Command::Open { key: SessionKey::new(key), session, conn: ConnId::new(key) };
        relay.handle(now, relay::Input::Link(link::Input::Command(open))).unwrap();
    };
    let mut inbound = SessionConfig::new(uri(CF_IN), vec![uri(A)], LinkRole::Passive);
    inbound.reassembly.mode = DeliveryMode::Streaming;
    inbound.success_reports = false;
    open(&mut relay, 10, inbound);
    relay.handle(now, relay::Input::Link(link::Input::Accepted { conn: ConnId::new(1) })).unwrap();
    let mut members = Vec::new();
    for m in 0..MEMBERS {
        let key = 100 + m;
        let local = format!("msrp://cf.example.com:7001/cfOut{m}x;tcp");
        let remote = format!("msrp://m{m}.example.com:9000/member{m}x;tcp");
        open(&mut relay, key, SessionConfig::new(uri(&local), vec![uri(&remote)], LinkRole::Active));
        relay.handle(now, relay::Input::Link(link::Input::Connected { conn: ConnId::new(key) })).unwrap();
        members.push(SessionKey::new(key));
    }
    let bridge = relay::Command::Bridge { inbound: SessionKey::new(10), outbound: members };
    relay.handle(now, relay::Input::Command(bridge)).unwrap();
    let _ = pump(&mut relay, now, &[]);

    // One SEND of 1 MiB, read in 64 KiB segments (shared already, as a
    // runtime's reads split off a buffer are).
    let body: Vec<u8> = (0..BODY).map(|i| if i % 80 == 79 { b'\n' } else { b'a' + (i % 26) as u8 }).collect();
    let mut frame = format!(
        "MSRP fanout0001 SEND\r\nTo-Path: {CF_IN}\r\nFrom-Path: {A}\r\nMessage-ID: m7Yq2Lk9fan\r\n\
         Byte-Range: 1-{BODY}/{BODY}\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    frame.extend_from_slice(&body);
    frame.extend_from_slice(b"\r\n-------fanout0001$\r\n");
    let frame = Bytes::from(frame);
    let segments: Vec<Bytes> =
        (0..frame.len()).step_by(64 * 1024).map(|i| frame.slice(i..(i + 64 * 1024).min(frame.len()))).collect();

    let (count, bytes) = (ALLOCATIONS.load(Ordering::Relaxed), ALLOCATED_BYTES.load(Ordering::Relaxed));
    LARGEST.store(0, Ordering::Relaxed);
    let (mut relayed, mut copied) = (0, Vec::new());
    let mut outcomes = Vec::new();
    for segment in &segments {
        let input = link::Input::Received { conn: ConnId::new(1), data: segment.clone() };
        relay.handle(now, relay::Input::Link(input)).unwrap();
        let (body, copies, more) = pump(&mut relay, now, &segments);
        relayed += body;
        copied.extend(copies);
        outcomes.extend(more);
    }
    let count = ALLOCATIONS.load(Ordering::Relaxed) - count;
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed) - bytes;
    let largest = LARGEST.load(Ordering::Relaxed);
    eprintln!(
        "fan-out of {BODY} bytes to {MEMBERS} members: {relayed} body bytes written ({} from a copy), \
         {count} allocations, {bytes} bytes allocated, largest {largest}",
        copied.len()
    );
    assert_eq!(relayed, BODY * MEMBERS as usize, "every member got the whole body");
    // The 64 KiB reads pass shared; only the message's last piece (the
    // last read's couple of hundred body bytes) is copied, once: every
    // member writes that one copy.
    copied.sort_unstable();
    copied.dedup();
    assert_eq!(copied.len(), 1, "one copy of the short piece, shared by the members");
    // Every chunk awaits its member's response (none comes here): no outcome yet.
    assert!(outcomes.is_empty(), "{outcomes:?}");
    // 100 MiB of body went out; less than one body's worth was allocated:
    // heads, queues and events only.
    assert!(bytes < BODY, "{bytes} bytes allocated for a {BODY}-byte body fanned out {MEMBERS} times");
    assert!(largest < 256 * 1024, "an allocation of {largest} bytes");
}
