//! Entry points of the fuzz targets.
//!
//! Each `fuzz/fuzz_targets/<target>.rs` is a one-line call into a function
//! here, so the same checks run three ways, all on stable:
//!
//! * under libFuzzer: `cargo fuzz run -s none <target>` (see `fuzz/README.md`);
//! * over the committed seeds and regressions: `cargo test -p msrp-core
//!   --features fuzzing --test fuzz_corpus`;
//! * over a few thousand seeded mutations of the conformance vectors: the
//!   `#[cfg(test)]` block of this module, run by a plain `cargo test`.
//!
//! The functions panic (through `assert!`) when an invariant breaks; they
//! never panic on input that is merely invalid MSRP.
//!
//! `msrp_session` and `msrp_relay` also come as `*_with_heap`, which measure
//! the receiving machine's real heap through a [`HeapMeter`] (a counting
//! global allocator, in the fuzz binaries and `tests/fuzz_heap.rs`) and
//! assert it stays under a stated bound.

mod rfc4976;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use bytes::Bytes;

use crate::uri::{self, MsrpUri};
use crate::wire::{Flag, FrameHead, Framer, FramerEvent, Limits};
use crate::ParseError;

pub use rfc4976::rfc4976_relay;

/// One normalised framer event: what must be the same for every split of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Item {
    /// A head, compared in full (bytes, offset and parsed fields).
    Head(FrameHead),
    /// The body of the current frame, all its pieces concatenated.
    Body(Vec<u8>),
    /// The end-line's flag.
    End(Flag),
    /// A frame the framer skipped.
    Rejected { transaction_id: String, is_request: bool, error: ParseError },
    /// A fatal error: nothing follows it.
    Fatal(ParseError),
}

/// Everything the framer said about one stream.
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    items: Vec<Item>,
    finish: Result<(), ParseError>,
}

/// Where the transcript builder stands, to check the order of events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Between frames.
    Outside,
    /// After a head, before its end.
    Inside { has_body: bool, non_send: bool },
}

/// Builds a [`Transcript`] from events as they come, checking their order.
struct Recorder {
    items: Vec<Item>,
    frame: Frame,
    /// Body bytes delivered for the current frame.
    body_len: usize,
    limits: Limits,
    /// Length of the whole stream: no offset goes past it.
    len: u64,
    /// Offset of the end of the last head, where the next one may start.
    next_head: u64,
}

impl Recorder {
    fn new(limits: Limits, len: usize) -> Self {
        Self { items: Vec::new(), frame: Frame::Outside, body_len: 0, limits, len: len as u64, next_head: 0 }
    }

    /// Drains the framer; returns `false` once it reported a fatal error.
    fn drain(&mut self, framer: &mut Framer) -> bool {
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(event) => self.event(event),
                Err(error) => {
                    assert!(!error.is_recoverable(), "fatal error {error:?} claims to be recoverable");
                    assert!(error.offset() <= self.len, "{error:?} past the end of the {}-byte stream", self.len);
                    self.items.push(Item::Fatal(error));
                    assert!(framer.poll_event().is_none(), "an event after the fatal {error:?}");
                    return false;
                }
            }
        }
        true
    }

    fn event(&mut self, event: FramerEvent) {
        match event {
            FramerEvent::Head(head) => {
                assert_eq!(self.frame, Frame::Outside, "head inside a frame: {head:?}");
                check_head(&head);
                let end = head.offset() + head.as_bytes().len() as u64;
                assert!(head.offset() >= self.next_head, "head at {} overlaps the previous one", head.offset());
                assert!(end <= self.len, "head {head:?} past the end of the {}-byte stream", self.len);
                self.next_head = end;
                let non_send = head.method().is_some_and(|m| m != crate::Method::Send);
                self.frame = Frame::Inside { has_body: head.has_body(), non_send };
                self.body_len = 0;
                self.items.push(Item::Head(head));
            }
            FramerEvent::Body(piece) => {
                assert!(
                    matches!(self.frame, Frame::Inside { has_body: true, .. }),
                    "body piece outside a frame with a body ({:?})",
                    self.frame
                );
                assert!(!piece.is_empty(), "empty body piece");
                self.body_len += piece.len();
                if let Some(Item::Body(body)) = self.items.last_mut() {
                    body.extend_from_slice(&piece);
                } else {
                    self.items.push(Item::Body(piece.to_vec()));
                }
            }
            FramerEvent::End(flag) => {
                assert!(matches!(self.frame, Frame::Inside { .. }), "end {flag:?} outside a frame");
                self.frame = Frame::Outside;
                self.items.push(Item::End(flag));
            }
            FramerEvent::Rejected { transaction_id, is_request, error, .. } => {
                assert!(error.is_recoverable(), "rejection with a fatal error {error:?}");
                assert!(error.offset() <= self.len, "{error:?} past the end of the {}-byte stream", self.len);
                if let Frame::Inside { has_body, non_send } = self.frame {
                    // Only a body can be rejected after its head was delivered: a
                    // request other than SEND whose body passed the limit.
                    assert!(has_body && non_send && is_request, "rejection {error:?} inside {:?}", self.frame);
                    let limit = self.limits.max_non_send_body();
                    assert!(
                        matches!(error, ParseError::BodyTooLarge { limit: l, .. } if l == limit),
                        "rejection inside a frame: {error:?}"
                    );
                    assert!(self.body_len <= limit, "{} body bytes delivered past the limit {limit}", self.body_len);
                    // How much of the body was delivered before the limit was
                    // seen depends on the segment sizes: drop it.
                    if let Some(Item::Body(_)) = self.items.last() {
                        self.items.pop();
                    }
                }
                self.frame = Frame::Outside;
                self.items.push(Item::Rejected {
                    transaction_id: transaction_id.as_str().to_owned(),
                    is_request,
                    error,
                });
            }
        }
    }
}

/// Checks that every accessor of a head answers, and that they agree.
fn check_head(head: &FrameHead) {
    let raw = head.as_bytes();
    assert!(raw.starts_with(b"MSRP "), "head does not start with MSRP: {head:?}");
    assert!(raw.ends_with(b"\r\n"), "head does not end with CRLF: {head:?}");
    assert_eq!(head.txid(), head.transaction_id().as_str());
    assert!((4..=32).contains(&head.txid().len()), "txid length: {head:?}");

    assert_eq!(head.is_request(), head.method().is_some());
    assert_eq!(head.is_request(), head.method_name().is_some());
    assert_eq!(head.is_request(), head.status_code().is_none());
    if head.is_request() {
        assert!(head.comment().is_none());
    }

    let mut count = 0;
    for header in head.headers() {
        count += 1;
        assert!(!header.name.is_empty(), "empty header name in {head:?}");
        assert!(head.header(header.name).is_some(), "header {:?} not found by name", header.name);
    }
    assert_eq!(count, head.header_count(), "header count of {head:?}");

    let to: Vec<&str> = head.to_path().collect();
    let to_uris: Vec<MsrpUri> = head.to_path_uris().collect();
    assert_eq!(to.len(), to_uris.len(), "To-Path URIs of {head:?}");
    for (text, uri) in to.iter().zip(&to_uris) {
        assert_eq!(*text, uri.as_str());
    }
    let from: Vec<&str> = head.from_path().collect();
    let from_uris: Vec<MsrpUri> = head.from_path_uris().collect();
    assert_eq!(from.len(), from_uris.len(), "From-Path URIs of {head:?}");
    for (text, uri) in from.iter().zip(&from_uris) {
        assert_eq!(*text, uri.as_str());
    }
    assert!(!head.to_path_str().is_empty(), "empty To-Path in {head:?}");
    if head.is_request() {
        assert!(!head.from_path_str().is_empty(), "empty From-Path in {head:?}");
    }

    assert_eq!(head.message_id().as_ref().map(|m| m.as_str()), head.message_id_str());
    if let Some(range) = head.byte_range() {
        assert!(range.is_coherent(), "incoherent {range:?}");
        assert_eq!(crate::ByteRange::parse(range.to_string().as_bytes()), Ok(range));
    }
    let _ = (head.success_report(), head.failure_report().map(|f| f.as_str()), head.offset());
    let _ = (head.status(), head.status_comment());
    if let Some(content_type) = head.content_type() {
        let media = head.media_type().unwrap_or_default();
        assert!(content_type.starts_with(media), "media type {media:?} of {content_type:?}");
        let _ = head.content_type_params().count();
    } else {
        assert!(head.media_type().is_none());
    }
    let _ = head.use_path().count();
    let _ = (head.expires(), head.min_expires(), head.max_expires());
    let _ = (head.www_authenticate(), head.authorization(), head.authentication_info());
    let _ = format!("{head:?}");
}

/// Feeds `segments` to a fresh framer and records what it says.
///
/// With `drain_every` > 1 the framer is drained only after every
/// `drain_every`-th segment (the framer then appends segments to each other).
fn transcript<'a>(segments: impl IntoIterator<Item = &'a [u8]>, drain_every: usize, len: usize) -> Transcript {
    let limits = Limits::default();
    let mut framer = Framer::new(limits.clone());
    let mut recorder = Recorder::new(limits, len);
    let mut alive = true;
    for (i, segment) in segments.into_iter().enumerate() {
        framer.handle_segment(Bytes::copy_from_slice(segment));
        if (i + 1) % drain_every == 0 {
            alive = recorder.drain(&mut framer);
            if !alive {
                break;
            }
        }
    }
    if alive {
        recorder.drain(&mut framer);
    }
    let finish = framer.finish();
    assert!(framer.poll_event().is_none(), "an event after finish");
    if matches!(recorder.items.last(), Some(Item::Fatal(_))) {
        assert_eq!(finish, Ok(()), "finish after a fatal error");
    } else if let Err(error) = finish {
        // Every byte was handed over and drained: the stream ends at its length.
        assert_eq!(error, ParseError::Incomplete { at: len as u64 }, "finish");
    }
    Transcript { items: recorder.items, finish }
}

/// A small, fast, deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // The state must not be zero.
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A value in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// FNV-1a, to derive split patterns from the input itself.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// Cuts `data` into segments of pseudo-random sizes in `1..=max`.
fn random_split<'a>(data: &'a [u8], rng: &mut XorShift, max: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = (1 + rng.below(max)).min(rest.len());
        let (segment, tail) = rest.split_at(n);
        out.push(segment);
        rest = tail;
    }
    out
}

/// Fuzz target `msrp_frame`: the whole input is one MSRP byte stream.
///
/// The stream is fed to a [`Framer`] whole, then cut into segments in two
/// other ways: one byte at a time, and at pseudo-random sizes derived from a
/// hash of the input (so every seed is also a plain `.msrp` file), sometimes
/// without draining the events between segments. The normalised transcripts
/// (each head, each frame's body concatenated, end flags, rejections, the
/// fatal error and the result of [`Framer::finish`]) must be equal.
///
/// Normalisation: a body rejected with [`ParseError::BodyTooLarge`] after its
/// head was delivered is dropped from the transcript, since how much of it
/// was delivered first depends on the segment sizes (never more than the limit).
///
/// Every head's accessors are called and checked against each other (header
/// count, To-Path/From-Path URIs parse, Message-ID, Byte-Range round trip ...).
///
/// # Panics
/// When the framer's output depends on the split, breaks the event order, or
/// a head accessor disagrees with another.
pub fn msrp_frame(data: &[u8]) {
    let whole = transcript([data], 1, data.len());

    let bytes = transcript(data.chunks(1), 1, data.len());
    assert_eq!(whole, bytes, "whole input vs one byte per segment");

    let seed = fnv1a(data);
    let mut rng = XorShift::new(seed);
    // Segment sizes up to 4, 16, 64 or 512 bytes, so that end-lines (up to 44
    // bytes) and heads straddle segments in every way.
    let max = [4, 16, 64, 512][(seed >> 60) as usize & 3];
    let segments = random_split(data, &mut rng, max);
    let drain_every = if seed & 0x100 == 0 { 1 } else { 1 + rng.below(3) };
    let split = transcript(segments.iter().copied(), drain_every, data.len());
    assert_eq!(whole, split, "whole input vs segments of at most {max} bytes, drained every {drain_every}");
}

fn hash_of(uri: &MsrpUri) -> u64 {
    let mut hasher = DefaultHasher::new();
    uri.hash(&mut hasher);
    hasher.finish()
}

/// Byte offset of `part` (a slice of `whole`) in `whole`.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize)
}

/// Checks one parsed URI on its own.
fn check_uri(uri: &MsrpUri) {
    let text = uri.as_str();
    // Display writes the text exactly as parsed; parsing it again gives the same URI.
    let shown = uri.to_string();
    assert_eq!(shown, text);
    let again = match MsrpUri::parse_str(&shown) {
        Ok(again) => again,
        Err(error) => panic!("{shown:?} does not parse again: {error}"),
    };
    assert_eq!(&again, uri);
    assert_eq!(again.as_str(), text);
    assert_eq!(hash_of(&again), hash_of(uri));
    #[expect(clippy::eq_op, reason = "checks that equality is reflexive")]
    let reflexive = uri == uri;
    assert!(reflexive, "{uri:?} != itself");
    assert!(uri.as_bytes_shared().as_ref() == text.as_bytes());

    // Accessors are slices of the text.
    for part in [Some(uri.host()), uri.userinfo(), uri.session_id(), Some(uri.transport())].into_iter().flatten() {
        assert!(offset_in(text, part) + part.len() <= text.len(), "{part:?} is not a slice of {text:?}");
    }
    let _ = (uri.scheme(), uri.host_kind(), uri.port(), uri.params().count());

    // A URI without userinfo and parameters is rebuilt from its parts to an equal URI.
    if uri.userinfo().is_none() && uri.params().next().is_none() {
        match MsrpUri::new(uri.scheme(), uri.host(), uri.port(), uri.session_id(), uri.transport()) {
            Ok(built) => {
                assert_eq!(&built, uri, "rebuilt from parts");
                assert_eq!(hash_of(&built), hash_of(uri), "hash of the URI rebuilt from parts");
            }
            Err(error) => panic!("{text:?} cannot be rebuilt from its parts: {error}"),
        }
    }

    // RFC 4975 s.6.1: changing the case of everything but the session-id
    // (case-sensitive) gives an equal URI.
    let (lo, hi) = uri.session_id().map_or((text.len(), text.len()), |s| {
        let at = offset_in(text, s);
        (at, at + s.len())
    });
    for upper in [false, true] {
        let mut recased = String::with_capacity(text.len());
        for (i, c) in text.char_indices() {
            let c = if (lo..hi).contains(&i) {
                c
            } else if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            recased.push(c);
        }
        match MsrpUri::parse_str(&recased) {
            Ok(other) => {
                assert_eq!(&other, uri, "{recased:?} vs {text:?}");
                assert_eq!(hash_of(&other), hash_of(uri), "hash of {recased:?} vs {text:?}");
            }
            Err(error) => panic!("{recased:?} (case changed from {text:?}) does not parse: {error}"),
        }
    }
}

/// Checks that equality between two URIs is symmetric and agrees with the hash.
fn check_pair(a: &MsrpUri, b: &MsrpUri) {
    let forward = a == b;
    let backward = b == a;
    assert_eq!(forward, backward, "asymmetric equality: {a:?} vs {b:?}");
    if forward {
        assert_eq!(hash_of(a), hash_of(b), "equal URIs hash differently: {a:?} vs {b:?}");
    }
}

/// Fuzz target `msrp_uri`: the whole input is the text of one MSRP URI.
///
/// [`uri::validate`], [`MsrpUri::parse`] and (for UTF-8 input)
/// [`MsrpUri::parse_str`] must agree, error included. A URI that parses must
/// display as its text and parse again to an equal URI with an equal hash,
/// equal itself, be rebuilt by [`MsrpUri::new`] from its parts (when it has
/// no userinfo and parameters), and stay equal when the case of everything
/// but its session-id changes (RFC 4975 s.6.1). Against a second URI parsed
/// from a copy with one byte changed, equality must be symmetric and imply
/// equal hashes.
///
/// # Panics
/// When one of these properties breaks.
pub fn msrp_uri(data: &[u8]) {
    let validated = uri::validate(data);
    let parsed = MsrpUri::parse(Bytes::copy_from_slice(data));
    assert_eq!(validated, parsed.as_ref().map(|_| ()).map_err(|e| *e), "validate vs parse of {data:?}");
    if let Ok(text) = std::str::from_utf8(data) {
        let from_str = MsrpUri::parse_str(text);
        assert_eq!(
            from_str.as_ref().map(MsrpUri::as_str),
            parsed.as_ref().map(MsrpUri::as_str),
            "parse_str vs parse of {text:?}"
        );
    }
    let Ok(first) = parsed else { return };
    assert!(std::str::from_utf8(data).is_ok(), "a URI that is not UTF-8 parsed: {data:?}");
    check_uri(&first);

    // A second URI from a mutated copy: one byte replaced, chosen by a hash of the input.
    let mut rng = XorShift::new(fnv1a(data));
    for _ in 0..4 {
        let mut copy = data.to_vec();
        let at = rng.below(copy.len());
        let pool = b"aAzZ09.-_~%:;@/[]=+!*'()";
        copy[at] = if rng.below(4) == 0 { rng.next() as u8 } else { pool[rng.below(pool.len())] };
        if let Ok(second) = MsrpUri::parse(Bytes::from(copy)) {
            check_pair(&first, &second);
        }
    }
}

/// What the `*_with_heap` targets ask of a counting global allocator.
///
/// A `GlobalAlloc` needs `unsafe`, which this crate forbids, so the allocator
/// lives with its callers: the fuzz binaries and the heap tests include
/// `msrp-core/tests/support/charged_heap.rs`. A block is *charged* to the
/// machine under test when it is allocated while charging is on, and counts
/// until it is freed, whoever frees it. The machine and its script MUST stay
/// on one thread.
pub trait HeapMeter {
    /// Turns charging on or off for the blocks allocated from now on;
    /// returns the previous setting.
    fn charge(&self, on: bool) -> bool;
    /// Bytes of charged blocks not freed yet; `None` when nothing is measured.
    fn charged(&self) -> Option<usize>;
}

/// No allocator behind it: the heap is not measured (the plain entry points).
#[derive(Clone, Copy, Debug, Default)]
pub struct Unmeasured;

impl HeapMeter for Unmeasured {
    fn charge(&self, _on: bool) -> bool {
        false
    }
    fn charged(&self) -> Option<usize> {
        None
    }
}

/// Runs `f` with what it allocates charged to the machine under test.
fn charged<T>(meter: &dyn HeapMeter, f: impl FnOnce() -> T) -> T {
    let was = meter.charge(true);
    let out = f();
    meter.charge(was);
    out
}

/// Runs `f`, charging what it allocates when `charge` is set.
fn charged_if<T>(meter: &dyn HeapMeter, charge: bool, f: impl FnOnce() -> T) -> T {
    if charge {
        charged(meter, f)
    } else {
        f()
    }
}

/// The runtime's read size in the scripted runs. A delivery of more bytes
/// arrives as several reads.
const READ: usize = 16 * 1024;

/// One read as a runtime hands it over: sliced from a `READ`-byte buffer of
/// its own (a runtime splits its reads off a read buffer), so whatever keeps
/// any piece of it keeps the whole buffer.
fn read_buffer(read: &[u8]) -> Bytes {
    let mut buffer = Vec::with_capacity(READ.max(read.len()));
    buffer.extend_from_slice(read);
    Bytes::from(buffer)
}

/// Heap bound: a fixed overhead per entry of a machine's queues, maps and
/// timers (its slot, node or bucket with the doubling of its collection, and
/// the short ids, paths and types the scripts use).
const PER_ENTRY: usize = 1024;
/// Heap bound: reads a link's receiver keeps by design, each up to [`READ`]:
/// the unread rest of a paused link, the start of a possible end-line, the
/// head of the chunk being received, a queued rejection.
const PINNED_READS_PER_LINK: usize = 4;
/// Heap bound: hostile bytes may be copied whole into what a receiver keeps
/// (a From-Path into the To-Path of a queued response, a Content-Type, a
/// Message-ID, a transaction id): at most this many copies of each.
const HOSTILE_COPIES: usize = 4;
/// Heap bound: a machine's own structs, framers, encoders, and the capacity
/// of collections whose length is bounded by a small constant.
const HEAP_SLACK: usize = 64 * 1024;

/// Heap bound: what a streaming reassembler keeps per message in progress
/// besides held data: the 64 KiB overlap window and one 8-byte fingerprint
/// per KiB delivered, in collections whose capacity at most doubles.
fn per_message_in_progress(config: &crate::reassembly::ReassemblyConfig) -> usize {
    let fingerprints = usize::try_from(config.max_message_size / 1024).unwrap_or(usize::MAX).saturating_mul(8);
    2 * 64 * 1024 + 2 * fingerprints
}

/// Heap bound: queue capacity a machine keeps after its busiest step
/// (`VecDeque` and `Vec` never shrink): at most twice the outputs one
/// `handle` produced, each counted as an output, a queued transmit and a
/// reassembler delivery.
fn queue_capacity(peak_outputs: usize) -> usize {
    let each =
        size_of::<crate::session::Output>() + size_of::<crate::Transmit>() + size_of::<crate::reassembly::Delivery>();
    2 * peak_outputs * each
}

/// Asserts that the receiving side's heap (charged since `base`) stays
/// within `bound`; a no-op when the heap is not measured.
fn check_heap(meter: &dyn HeapMeter, base: usize, bound: usize, what: &str) {
    if let Some(charged) = meter.charged() {
        let grown = charged.saturating_sub(base);
        assert!(grown <= bound, "{what}: {grown} live heap bytes, over the bound of {bound}");
    }
}

/// One step of a scripted exchange between two sessions (`msrp_session`).
#[derive(Debug, arbitrary::Arbitrary)]
enum SessionOp {
    /// A sends a message of `len * 37` bytes; `policy` picks its Failure-Report.
    Send { len: u16, success_report: bool, policy: u8 },
    /// A starts, feeds or closes a streamed message.
    Stream { len: u16, last: bool },
    /// A aborts message `handle`.
    Abort { handle: u8 },
    /// Up to `max * 13` pending bytes cross to B (or to A), in reads of at most [`READ`] bytes.
    Deliver { to_b: bool, max: u16 },
    /// Hostile bytes arrive at B (or A).
    Inject { to_b: bool, bytes: Vec<u8> },
    /// Virtual time moves on and timers fire.
    Advance { millis: u16 },
    /// A's link drops and comes back.
    Reconnect,
}

/// [`msrp_session_with_heap`] without a heap measurement.
pub fn msrp_session(data: &[u8]) {
    msrp_session_with_heap(data, &Unmeasured);
}

/// Drives two sessions (A active, B passive, B streaming with small limits)
/// through an arbitrary script of sends, aborts, partial deliveries, hostile
/// bytes, time steps and link drops. Never panics; B never delivers a byte
/// twice or out of order and holds no more than its limit; once time has
/// passed every timeout, no transaction and no timer is left.
///
/// With a [`HeapMeter`], B's real heap is measured: every block allocated
/// while B builds, handles an input or hands out an output, and every read
/// handed to it, is charged to B, and after every step B's charged heap
/// stays under a bound (stated at its computation); once B is dropped,
/// nothing charged to it is left.
///
/// # Panics
/// When one of these properties breaks.
pub fn msrp_session_with_heap(data: &[u8], meter: &dyn HeapMeter) {
    use crate::reassembly::DeliveryMode;
    use crate::session::{Command, Event, Input, LinkRole, MessageHandle, Output, Session, SessionConfig};
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    struct Counter(u64);
    impl crate::IdSource for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                *b = (self.0 >> 33) as u8;
            }
        }
    }

    let mut u = arbitrary::Unstructured::new(data);
    let Ok(ops) = <Vec<SessionOp> as arbitrary::Arbitrary>::arbitrary(&mut u) else { return };
    let parse = |s: &str| MsrpUri::parse_str(s).ok();
    let (Some(a_uri), Some(b_uri)) =
        (parse("msrp://a.example.com:7777/aaaaaaaaaaaa;tcp"), parse("msrp://b.example.com:8888/bbbbbbbbbbbb;tcp"))
    else {
        return;
    };
    #[expect(clippy::disallowed_methods, reason = "one real epoch for the sessions' virtual clock")]
    let mut now = Instant::now();
    let mut a_config = SessionConfig::new(a_uri.clone(), vec![b_uri.clone()], LinkRole::Active);
    a_config.write_quantum = 3000;
    let mut b_config = SessionConfig::new(b_uri, vec![a_uri], LinkRole::Passive);
    b_config.reassembly.mode = DeliveryMode::Streaming;
    b_config.reassembly.max_held_bytes = 64 * 1024;
    b_config.reassembly.max_message_size = 1 << 20;
    // What max_held_bytes bounds, plus the streaming overlap windows (64 KiB
    // per message in progress).
    let held_limit = b_config.reassembly.max_held_bytes + 64 * 1024 * b_config.reassembly.max_incomplete;
    let reassembly = b_config.reassembly.clone();
    let mut a = Session::new(a_config, now, Box::new(Counter(1)));
    // B's heap is what was charged since here: the script (the parsed ops,
    // A and its queued bodies, the bytes on the wire) is never charged.
    let base = meter.charged().unwrap_or(0);
    let mut b = charged(meter, || Session::new(b_config, now, Box::new(Counter(2))));
    let _ = a.handle(now, Input::LinkUp);
    let _ = charged(meter, || b.handle(now, Input::LinkUp));
    let mut to_b: Vec<u8> = Vec::new();
    let mut to_a: Vec<u8> = Vec::new();
    let mut next_handle = 0u64;
    let mut streaming: Option<MessageHandle> = None;
    // Keyed by the Message-ID's text: a copy the script owns, not B's bytes.
    let mut delivered: HashMap<String, u64> = HashMap::new();
    let mut hostile = 0usize;
    let peak_outputs = std::cell::Cell::new(0usize);

    // Drains a session; `meter` charges what B allocates to hand out its outputs.
    let drain = |session: &mut Session,
                 wire: &mut Vec<u8>,
                 delivered: &mut HashMap<String, u64>,
                 meter: &dyn HeapMeter|
     -> usize {
        let mut count = 0;
        while let Some(output) = charged(meter, || session.poll_output()) {
            count += 1;
            match output {
                Output::Transmit(t) => {
                    wire.extend_from_slice(&t.head);
                    wire.extend_from_slice(&t.body);
                    wire.extend_from_slice(&t.end_line);
                }
                Output::Event(Event::ChunkReceived { message_id, offset, data }) => {
                    let next = delivered.entry(message_id.as_str().to_owned()).or_insert(0);
                    assert_eq!(offset, *next, "streamed bytes out of order or twice");
                    *next += data.len() as u64;
                }
                Output::Event(_) => {}
            }
        }
        count
    };
    // B takes one input, then is drained, as the run loop of the crate docs
    // says; returns how many outputs it gave.
    let feed_b =
        |b: &mut Session, to_a: &mut Vec<u8>, delivered: &mut HashMap<String, u64>, now: Instant, input: Input| {
            let _ = charged(meter, || b.handle(now, input));
            let outputs = drain(b, to_a, delivered, meter);
            peak_outputs.set(peak_outputs.get().max(outputs));
        };

    for op in ops.into_iter().take(200) {
        match op {
            SessionOp::Send { len, success_report, policy } => {
                let failure_report = match policy % 3 {
                    0 => crate::FailureReport::Yes,
                    1 => crate::FailureReport::Partial,
                    _ => crate::FailureReport::No,
                };
                next_handle += 1;
                let body = Bytes::from((0..usize::from(len) * 37).map(|i| i as u8).collect::<Vec<u8>>());
                let handle = MessageHandle::new(next_handle);
                let send =
                    Command::Send { handle, content_type: "text/plain".into(), body, success_report, failure_report };
                let _ = a.handle(now, Input::Command(send));
            }
            SessionOp::Stream { len, last } => {
                let handle = *streaming.get_or_insert_with(|| {
                    next_handle += 1;
                    let handle = MessageHandle::new(next_handle);
                    let start = Command::SendStream {
                        handle,
                        content_type: "text/plain".into(),
                        success_report: true,
                        failure_report: crate::FailureReport::Yes,
                    };
                    let _ = a.handle(now, Input::Command(start));
                    handle
                });
                let data = Bytes::from(vec![b'-'; usize::from(len % 4096)]);
                let _ = a.handle(now, Input::Command(Command::StreamData { handle, data, last }));
                if last {
                    streaming = None;
                }
            }
            SessionOp::Abort { handle } => {
                let _ = a.handle(now, Input::Command(Command::Abort { handle: MessageHandle::new(u64::from(handle)) }));
            }
            SessionOp::Deliver { to_b: forward, max } => {
                let n = if forward { to_b.len() } else { to_a.len() }.min(usize::from(max) * 13 + 1);
                if forward {
                    for read in to_b[..n].chunks(READ) {
                        let segment = charged(meter, || read_buffer(read));
                        feed_b(&mut b, &mut to_a, &mut delivered, now, Input::Received(segment));
                    }
                    to_b.drain(..n);
                } else {
                    for read in to_a[..n].chunks(READ) {
                        let _ = a.handle(now, Input::Received(read_buffer(read)));
                    }
                    to_a.drain(..n);
                }
            }
            SessionOp::Inject { to_b: forward, bytes } => {
                if forward {
                    hostile += bytes.len();
                    for read in bytes.chunks(READ) {
                        let segment = charged(meter, || read_buffer(read));
                        feed_b(&mut b, &mut to_a, &mut delivered, now, Input::Received(segment));
                    }
                } else {
                    let _ = a.handle(now, Input::Received(Bytes::from(bytes)));
                }
            }
            SessionOp::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis) * 50);
                let _ = a.handle(now, Input::Timeout);
                feed_b(&mut b, &mut to_a, &mut delivered, now, Input::Timeout);
            }
            SessionOp::Reconnect => {
                let _ = a.handle(now, Input::LinkDown);
                feed_b(&mut b, &mut to_a, &mut delivered, now, Input::LinkDown);
                to_a.clear();
                to_b.clear();
                streaming = None;
                let _ = a.handle(now, Input::LinkUp);
                feed_b(&mut b, &mut to_a, &mut delivered, now, Input::LinkUp);
            }
        }
        drain(&mut a, &mut to_b, &mut HashMap::new(), &Unmeasured);
        drain(&mut b, &mut to_a, &mut delivered, meter);
        assert!(b.held_bytes() <= held_limit, "held {} > {held_limit}", b.held_bytes());
        // B's real heap. What B may keep, and why:
        //
        //   bound = max_held_bytes                       out-of-order data, owned copies (RFC 4975 s.7.3.1)
        //         + messages × per_message_in_progress  overlap window and fingerprints of each streamed message
        //         + 4 × READ                             reads its link's receiver keeps by design
        //         + PER_ENTRY × entries                  its queues, maps, timers, held pieces
        //         + HOSTILE_COPIES × hostile bytes       peer-chosen text copied into what it keeps
        //         + queue_capacity(peak outputs)         what its busiest step left its queues
        //         + HEAP_SLACK                           its own structs, framer and encoder
        //
        // Not in it: a piece B keeps that pins its whole read; that costs a
        // READ per piece, where the bound allows PER_ENTRY.
        let messages = b.reassembler().incomplete();
        let bound = reassembly.max_held_bytes
            + messages * per_message_in_progress(&reassembly)
            + PINNED_READS_PER_LINK * READ
            + PER_ENTRY * b.entries()
            + HOSTILE_COPIES * hostile
            + queue_capacity(peak_outputs.get())
            + HEAP_SLACK;
        check_heap(meter, base, bound, "msrp_session: B");
    }
    // Every transaction ends: with no more responses delivered, each one
    // times out, including those that chunks still queued open meanwhile.
    for _ in 0..1000 {
        drain(&mut a, &mut to_b, &mut HashMap::new(), &Unmeasured);
        drain(&mut b, &mut to_a, &mut delivered, meter);
        let Some(due) = a.poll_timeout() else { break };
        now = now.max(due);
        let _ = a.handle(now, Input::Timeout);
    }
    assert_eq!(a.open_transactions(), 0, "a transaction outlived its timeout");
    assert_eq!(a.poll_timeout(), None, "a timer outlived its transaction");
    drop(b);
    if let Some(left) = meter.charged() {
        assert_eq!(left.saturating_sub(base), 0, "msrp_session: B left heap behind once dropped");
    }
}

/// One step of a scripted relay scenario (`msrp_relay`).
#[derive(Debug, arbitrary::Arbitrary)]
enum RelayOp {
    /// A sends a message of `(len % 1024) * 97` bytes.
    Send { len: u16, success_report: bool },
    /// A starts, feeds or closes a streamed message.
    Stream { len: u16, last: bool },
    /// A aborts message `handle`.
    Abort { handle: u8 },
    /// Up to `max * 7 + 1` bytes cross one direction of one link, in reads
    /// of at most [`READ`] bytes; `ack` acknowledges them to the writer (else
    /// its window stays used).
    Deliver { pipe: u8, max: u16, ack: bool },
    /// Hostile bytes arrive on one of the relay's links.
    Inject { pipe: u8, bytes: Vec<u8> },
    /// Virtual time moves on and timers fire.
    Advance { millis: u16 },
    /// A link resets.
    Reset { pipe: u8 },
    /// Every active session without a link gets a new one.
    Reconnect,
}

/// [`msrp_relay_with_heap`] without a heap measurement.
pub fn msrp_relay(data: &[u8]) {
    msrp_relay_with_heap(data, &Unmeasured);
}

/// A relay (`R`) between a sender (`A`) and two members (`B1`, `B2`), the
/// links with windows, driven by an arbitrary interleaving of sends,
/// partial deliveries, acknowledgements, hostile bytes, resets and time
/// steps. Never panics; no member gets a byte out of order or twice; the
/// relay's own account of held bytes stays under its bound.
///
/// With a [`HeapMeter`], R's real heap is measured: every block allocated
/// while R builds, handles an input or hands out an output, and every read
/// handed to it, is charged to R, and after every step R's charged heap
/// stays under a bound (stated at its computation); once R is dropped,
/// nothing charged to it is left.
///
/// # Panics
/// When one of these properties breaks.
pub fn msrp_relay_with_heap(data: &[u8], meter: &dyn HeapMeter) {
    use crate::link::{self, SessionKey};
    use crate::reassembly::DeliveryMode;
    use crate::relay::{self, Relay, RelayConfig};
    use crate::router::ConnId;
    use crate::session::{Command, Event, LinkRole, MessageHandle, Session, SessionConfig};
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    struct Counter(u64);
    impl crate::IdSource for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                *b = (self.0 >> 33) as u8;
            }
        }
    }

    /// One direction of a link: the writer's node and conn, the bytes not yet read.
    struct Pipe {
        from: (usize, ConnId),
        to: (usize, ConnId),
        bytes: Vec<u8>,
        unacked: usize,
    }

    // Ops until the bytes run out (no continuation bytes), so that short
    // inputs script long runs.
    let mut u = arbitrary::Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < 300 {
        let Ok(op) = <RelayOp as arbitrary::Arbitrary>::arbitrary(&mut u) else { break };
        ops.push(op);
    }
    #[expect(clippy::disallowed_methods, reason = "one real epoch for the machines' virtual clock")]
    let mut now = Instant::now();
    let config = RelayConfig {
        endpoint: link::EndpointConfig { link_window: 8 * 1024, ..link::EndpointConfig::default() },
        window: 16 * 1024,
        max_backlog: 64 * 1024,
        slow_member_timeout: Duration::from_secs(2),
    };
    let inbound_held = 32 * 1024;
    // The overlap windows of the inbound session: 64 KiB per message in progress.
    let windows = 64 * 1024 * crate::reassembly::ReassemblyConfig::default().max_incomplete;
    let bound = config.max_backlog + inbound_held + windows + 4 * 64 * 1024;
    let names =
        [("a.example.com", 7000u16), ("r.example.com", 7001), ("b1.example.com", 7002), ("b2.example.com", 7003)];
    // R (node 1) is measured: its heap is what was charged since here. The
    // script (the parsed ops, A, B1, B2 and the bytes in the pipes) is never
    // charged.
    const R: usize = 1;
    let base = meter.charged().unwrap_or(0);
    let mut nodes: Vec<Relay> =
        (0..names.len()).map(|index| charged_if(meter, index == R, || Relay::new(config.clone(), now))).collect();
    let uri = |s: &str| MsrpUri::parse_str(s).ok();
    let Some(uris) = [
        "msrp://a.example.com:7000/fuzzA0001;tcp",
        "msrp://r.example.com:7001/fuzzRin01;tcp",
        "msrp://r.example.com:7001/fuzzRout1;tcp",
        "msrp://b1.example.com:7002/fuzzB0001;tcp",
        "msrp://r.example.com:7001/fuzzRout2;tcp",
        "msrp://b2.example.com:7003/fuzzB0002;tcp",
    ]
    .iter()
    .map(|s| uri(s))
    .collect::<Option<Vec<MsrpUri>>>() else {
        return;
    };
    // The first clone of a URI allocates its buffer's shared header: done
    // here, uncharged, since the script keeps the URIs after R is gone.
    drop(uris.clone());
    let reassembly = crate::reassembly::ReassemblyConfig {
        mode: DeliveryMode::Streaming,
        max_held_bytes: inbound_held,
        max_message_size: 1 << 22,
        ..crate::reassembly::ReassemblyConfig::default()
    };
    let session = |local: usize, remote: usize, role: LinkRole, relay_in: bool| -> Box<Session> {
        let mut config = SessionConfig::new(uris[local].clone(), vec![uris[remote].clone()], role);
        config.write_quantum = 3000;
        config.reassembly = reassembly.clone();
        config.success_reports = !relay_in;
        Box::new(Session::new(config, now, Box::new(Counter(local as u64 + 1))))
    };
    // (node, key, session, conn for an active one)
    let opens = [
        (0usize, 1u64, (0, 1, LinkRole::Active, false)),
        (R, 10, (1, 0, LinkRole::Passive, true)),
        (R, 20, (2, 3, LinkRole::Active, false)),
        (R, 21, (4, 5, LinkRole::Active, false)),
        (2, 1, (3, 2, LinkRole::Passive, false)),
        (3, 1, (5, 4, LinkRole::Passive, false)),
    ];
    for (node, key, (local, remote, role, relay_in)) in opens {
        charged_if(meter, node == R, || {
            let session = session(local, remote, role, relay_in);
            let open = link::Command::Open { key: SessionKey::new(key), session, conn: ConnId::new(key) };
            let _ = nodes[node].handle(now, relay::Input::Link(link::Input::Command(open)));
        });
    }
    let bridge = relay::Command::Bridge {
        inbound: SessionKey::new(10),
        outbound: vec![SessionKey::new(20), SessionKey::new(21)],
    };
    let bridged = charged(meter, || nodes[R].handle(now, relay::Input::Command(bridge)));
    assert!(bridged.is_ok(), "the bridge is valid");

    let mut pipes: Vec<Pipe> = Vec::new();
    let mut paused: Vec<(usize, ConnId)> = Vec::new();
    let mut next_conn = 1000u64;
    // What each member delivered: (node, message) -> next offset; the
    // Message-ID's text is a copy the script owns.
    let mut delivered: HashMap<(usize, String), u64> = HashMap::new();
    let mut next_handle = 0u64;
    let mut streaming: Option<MessageHandle> = None;
    let mut hostile = 0usize;
    // The most outputs R gave in one drain.
    let peak_outputs = Cell::new(0usize);

    // Drains every node until quiet: transmits go into pipes, connects are
    // answered at once, pauses are honoured, deliveries are checked.
    let settle = |nodes: &mut Vec<Relay>,
                  pipes: &mut Vec<Pipe>,
                  paused: &mut Vec<(usize, ConnId)>,
                  delivered: &mut HashMap<(usize, String), u64>,
                  next_conn: &mut u64,
                  now: Instant| {
        for _ in 0..64 {
            let mut inputs: Vec<(usize, link::Input)> = Vec::new();
            for (index, node) in nodes.iter_mut().enumerate() {
                let mut outputs = 0;
                while let Some(output) = charged_if(meter, index == R, || node.poll_output()) {
                    outputs += 1;
                    match output {
                        relay::Output::Link(link::Output::Transmit { conn, transmit }) => {
                            if let Some(pipe) = pipes.iter_mut().find(|p| p.from == (index, conn)) {
                                pipe.bytes.extend_from_slice(&transmit.head);
                                pipe.bytes.extend_from_slice(&transmit.body);
                                pipe.bytes.extend_from_slice(&transmit.end_line);
                                pipe.unacked += transmit.len();
                            }
                        }
                        relay::Output::Link(link::Output::Connect { conn, link }) => {
                            let Some(peer) = names.iter().position(|(h, p)| *h == link.host() && *p == link.port())
                            else {
                                inputs.push((index, link::Input::Closed { conn }));
                                continue;
                            };
                            *next_conn += 1;
                            let accepted = ConnId::new(*next_conn);
                            pipes.push(Pipe {
                                from: (index, conn),
                                to: (peer, accepted),
                                bytes: Vec::new(),
                                unacked: 0,
                            });
                            pipes.push(Pipe {
                                from: (peer, accepted),
                                to: (index, conn),
                                bytes: Vec::new(),
                                unacked: 0,
                            });
                            inputs.push((peer, link::Input::Accepted { conn: accepted }));
                            inputs.push((index, link::Input::Connected { conn }));
                        }
                        relay::Output::Link(link::Output::Close { conn }) => {
                            if let Some(pipe) = pipes.iter().find(|p| p.from == (index, conn)) {
                                inputs.push((pipe.to.0, link::Input::Closed { conn: pipe.to.1 }));
                            }
                            pipes.retain(|p| p.from != (index, conn) && p.to != (index, conn));
                        }
                        relay::Output::Link(link::Output::PauseReading { conn }) => paused.push((index, conn)),
                        relay::Output::Link(link::Output::ResumeReading { conn }) => {
                            paused.retain(|p| *p != (index, conn));
                        }
                        relay::Output::Link(link::Output::Event {
                            event: Event::ChunkReceived { message_id, offset, data },
                            ..
                        }) => {
                            let next = delivered.entry((index, message_id.as_str().to_owned())).or_insert(0);
                            assert_eq!(offset, *next, "node {index}: a byte out of order or twice");
                            *next += data.len() as u64;
                        }
                        _ => {}
                    }
                }
                if index == R {
                    peak_outputs.set(peak_outputs.get().max(outputs));
                }
            }
            if inputs.is_empty() {
                return;
            }
            for (index, input) in inputs {
                let _ = charged_if(meter, index == R, || nodes[index].handle(now, relay::Input::Link(input)));
            }
        }
    };
    settle(&mut nodes, &mut pipes, &mut paused, &mut delivered, &mut next_conn, now);

    for op in ops.into_iter().take(300) {
        match op {
            RelayOp::Send { len, success_report } => {
                next_handle += 1;
                let body = Bytes::from((0..usize::from(len % 1024) * 97).map(|i| i as u8).collect::<Vec<u8>>());
                let send = Command::Send {
                    handle: MessageHandle::new(next_handle),
                    content_type: "text/plain".into(),
                    body,
                    success_report,
                    failure_report: crate::FailureReport::Yes,
                };
                let input = link::Input::Command(link::Command::Session { key: SessionKey::new(1), command: send });
                let _ = nodes[0].handle(now, relay::Input::Link(input));
            }
            RelayOp::Stream { len, last } => {
                let handle = *streaming.get_or_insert_with(|| {
                    next_handle += 1;
                    let handle = MessageHandle::new(next_handle);
                    let start = Command::SendStream {
                        handle,
                        content_type: "text/plain".into(),
                        success_report: true,
                        failure_report: crate::FailureReport::Yes,
                    };
                    let input =
                        link::Input::Command(link::Command::Session { key: SessionKey::new(1), command: start });
                    let _ = nodes[0].handle(now, relay::Input::Link(input));
                    handle
                });
                let data = Bytes::from(vec![b'-'; usize::from(len % 8192)]);
                let command = Command::StreamData { handle, data, last };
                let input = link::Input::Command(link::Command::Session { key: SessionKey::new(1), command });
                let _ = nodes[0].handle(now, relay::Input::Link(input));
                if last {
                    streaming = None;
                }
            }
            RelayOp::Abort { handle } => {
                let command = Command::Abort { handle: MessageHandle::new(u64::from(handle)) };
                let input = link::Input::Command(link::Command::Session { key: SessionKey::new(1), command });
                let _ = nodes[0].handle(now, relay::Input::Link(input));
            }
            RelayOp::Deliver { pipe, max, ack } => {
                if pipes.is_empty() {
                    continue;
                }
                let index = usize::from(pipe) % pipes.len();
                let p = &mut pipes[index];
                if paused.contains(&p.to) || p.bytes.is_empty() {
                    continue;
                }
                let n = p.bytes.len().min(usize::from(max) * 7 + 1);
                let bytes: Vec<u8> = p.bytes.drain(..n).collect();
                let (to, from) = (p.to, p.from);
                let acked = if ack { std::mem::take(&mut p.unacked) } else { 0 };
                for read in bytes.chunks(READ) {
                    charged_if(meter, to.0 == R, || {
                        let input = link::Input::Received { conn: to.1, data: read_buffer(read) };
                        let _ = nodes[to.0].handle(now, relay::Input::Link(input));
                    });
                }
                if acked > 0 {
                    let written = link::Input::Written { conn: from.1, bytes: acked };
                    let _ = charged_if(meter, from.0 == R, || nodes[from.0].handle(now, relay::Input::Link(written)));
                }
            }
            RelayOp::Inject { pipe, bytes } => {
                let targets: Vec<(usize, ConnId)> = pipes.iter().filter(|p| p.to.0 == R).map(|p| p.to).collect();
                if let Some(&(node, conn)) = targets.get(usize::from(pipe) % targets.len().max(1)) {
                    if !paused.contains(&(node, conn)) {
                        hostile += bytes.len();
                        for read in bytes.chunks(READ) {
                            charged(meter, || {
                                let input = link::Input::Received { conn, data: read_buffer(read) };
                                let _ = nodes[node].handle(now, relay::Input::Link(input));
                            });
                        }
                    }
                }
            }
            RelayOp::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis) * 20);
                for (index, node) in nodes.iter_mut().enumerate() {
                    let _ =
                        charged_if(meter, index == R, || node.handle(now, relay::Input::Link(link::Input::Timeout)));
                }
            }
            RelayOp::Reset { pipe } => {
                if pipes.is_empty() {
                    continue;
                }
                let p = &pipes[usize::from(pipe) % pipes.len()];
                let (a, b) = (p.from, p.to);
                pipes.retain(|p| p.from != a && p.from != b);
                paused.retain(|p| *p != a && *p != b);
                for (node, conn) in [a, b] {
                    let closed = relay::Input::Link(link::Input::Closed { conn });
                    let _ = charged_if(meter, node == R, || nodes[node].handle(now, closed));
                }
                streaming = None;
            }
            RelayOp::Reconnect => {
                for (node, key) in [(0usize, 1u64), (R, 20), (R, 21)] {
                    next_conn += 1;
                    let reconnect = link::Command::Connect { key: SessionKey::new(key), conn: ConnId::new(next_conn) };
                    let input = relay::Input::Link(link::Input::Command(reconnect));
                    let _ = charged_if(meter, node == R, || nodes[node].handle(now, input));
                }
            }
        }
        settle(&mut nodes, &mut pipes, &mut paused, &mut delivered, &mut next_conn, now);
        let held = nodes[R].held_bytes();
        assert!(held <= bound, "the relay holds {held} bytes, over its bound {bound}");
        // R's real heap. What R may keep, and why:
        //
        //   bound = Σ sessions (max_held_bytes            out-of-order data, owned copies (RFC 4975 s.7.3.1)
        //           + messages × per_message_in_progress)  overlap window and fingerprints of each streamed message
        //         + links × 4 × READ                      reads each link's receiver keeps by design
        //         + Σ members ⌊queued / min_shared_piece⌋ × READ
        //                                                 a queued shared piece keeps its whole read, and
        //                                                 none shorter than min_shared_piece is shared
        //         + 2 × Σ members queued                  smaller pieces, copied into owned buffers
        //         + PER_ENTRY × entries                   queues, maps, timers, queued pieces
        //         + HOSTILE_COPIES × hostile bytes        peer-chosen text copied into what it keeps
        //         + queue_capacity(peak outputs)          what its busiest step left its queues
        //         + HEAP_SLACK                            its own structs, framers and encoders
        let relay = &nodes[R];
        let endpoint = relay.endpoint();
        let (mut reassemblers, mut queued) = (0, Vec::new());
        for key in endpoint.session_keys() {
            let Some(session) = endpoint.session(key) else { continue };
            reassemblers +=
                reassembly.max_held_bytes + session.reassembler().incomplete() * per_message_in_progress(&reassembly);
            if key != SessionKey::new(10) {
                queued.push((session.queued_bytes(), session.config().min_shared_piece));
            }
        }
        let shared: usize = queued.iter().map(|(bytes, min_shared)| bytes / min_shared.max(&1) * READ).sum();
        let heap_bound = reassemblers
            + endpoint.link_count() * PINNED_READS_PER_LINK * READ
            + shared
            + 2 * queued.iter().map(|(bytes, _)| bytes).sum::<usize>()
            + PER_ENTRY * relay.entries()
            + HOSTILE_COPIES * hostile
            + queue_capacity(peak_outputs.get())
            + HEAP_SLACK;
        check_heap(meter, base, heap_bound, "msrp_relay: R");
    }
    // Time heals: every slow member is dropped, every transaction times out.
    now += Duration::from_secs(31);
    for (index, node) in nodes.iter_mut().enumerate() {
        let _ = charged_if(meter, index == R, || node.handle(now, relay::Input::Link(link::Input::Timeout)));
    }
    settle(&mut nodes, &mut pipes, &mut paused, &mut delivered, &mut next_conn, now);
    for node in &nodes {
        for key in node.endpoint().session_keys() {
            let session = node.endpoint().session(key);
            assert_eq!(session.map_or(0, Session::open_transactions), 0, "a transaction outlived its timeout");
        }
    }
    drop(nodes);
    if let Some(left) = meter.charged() {
        assert_eq!(left.saturating_sub(base), 0, "msrp_relay: R left heap behind once dropped");
    }
}

#[cfg(test)]
mod tests {
    //! Runs the fuzz targets over seeded mutations of the conformance vectors,
    //! on stable, in every `cargo test`.

    use super::*;

    fn vectors() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/msrp");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("y_") && name.ends_with(".msrp")
            })
            .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
            .collect();
        out.sort();
        assert!(out.len() >= 50, "the conformance vectors are missing: {}", out.len());
        out
    }

    /// Snippets that push the framer towards its edges.
    const SNIPPETS: &[&[u8]] = &[
        b"\r\n",
        b"\r",
        b"\n",
        b"\r\n-------",
        b"-------",
        b"$\r\n",
        b"+\r\n",
        b"#\r\n",
        b"\r\n\r\n",
        b": ",
        b"MSRP ",
        b" SEND\r\n",
        b" REPORT\r\n",
        b" 200 OK\r\n",
        b"Content-Type: text/plain\r\n",
        b"Byte-Range: 1-*/*\r\n",
        b"Byte-Range: 1-0/0\r\n",
        b"Message-ID: abcd\r\n",
        b"To-Path: msrp://a.example.com:1/x;tcp\r\n",
        b"From-Path: msrp://b.example.com:2/y;tcp\r\n",
        b"\xff\xfe",
        b"%41",
        b"[::1]",
    ];

    /// The transaction id of a frame, for planting end-lines.
    fn txid_of(frame: &[u8]) -> Option<&[u8]> {
        let line = frame.split(|&b| b == b'\r').next()?;
        line.split(|&b| b == b' ').nth(1)
    }

    fn mutate(rng: &mut XorShift, corpus: &[(String, Vec<u8>)], base: &[u8]) -> Vec<u8> {
        let mut data = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = if data.is_empty() { 0 } else { rng.below(data.len() + 1) };
            match rng.below(9) {
                0 if !data.is_empty() => {
                    let i = at.min(data.len() - 1);
                    data[i] = rng.next() as u8;
                }
                1 if !data.is_empty() => {
                    let i = at.min(data.len() - 1);
                    data[i] ^= 1 << rng.below(8);
                }
                2 => {
                    let end = (at + 1 + rng.below(16)).min(data.len());
                    data.drain(at..end);
                }
                3 => {
                    let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
                    data.splice(at..at, snippet.iter().copied());
                }
                4 => {
                    // Plant this frame's own end-line (any flag) somewhere.
                    if let Some(txid) = txid_of(base) {
                        let mut line = b"\r\n-------".to_vec();
                        line.extend_from_slice(txid);
                        line.push([b'$', b'+', b'#', b'x'][rng.below(4)]);
                        line.extend_from_slice(b"\r\n");
                        line.truncate(1 + rng.below(line.len()));
                        data.splice(at..at, line);
                    }
                }
                5 => data.truncate(at),
                6 => {
                    // Append or prepend another vector: pipelined frames.
                    let other = &corpus[rng.below(corpus.len())].1;
                    if rng.below(2) == 0 {
                        data.extend_from_slice(other);
                    } else {
                        data.splice(0..0, other.iter().copied());
                    }
                }
                7 if !data.is_empty() => {
                    // Duplicate a slice.
                    let start = at.min(data.len() - 1);
                    let end = (start + 1 + rng.below(64)).min(data.len());
                    let copy = data[start..end].to_vec();
                    data.splice(end..end, copy);
                }
                _ => {
                    // Grow a body past the non-SEND limit (rarely: it is slow in debug builds).
                    if rng.below(64) == 0 {
                        let fill = vec![b'a' + rng.below(26) as u8; 10_000 + rng.below(400)];
                        data.splice(at..at, fill);
                    }
                }
            }
        }
        data
    }

    #[test]
    fn conformance_vectors_pass_the_frame_target() {
        for (name, data) in vectors() {
            eprintln!("{name}");
            msrp_frame(&data);
        }
    }

    #[test]
    fn mutated_frames() {
        let corpus = vectors();
        let mut rng = XorShift::new(0x5eed_f4a3_0001);
        for i in 0..3000 {
            let base = &corpus[rng.below(corpus.len())];
            let data = mutate(&mut rng, &corpus, &base.1);
            let result = std::panic::catch_unwind(|| msrp_frame(&data));
            if let Err(panic) = result {
                panic!(
                    "case {i} (mutation of {}): {:?}\ninput: {:?}",
                    base.0,
                    panic.downcast_ref::<String>(),
                    String::from_utf8_lossy(&data)
                );
            }
        }
    }

    fn uris(corpus: &[(String, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (_, data) in corpus {
            let text = String::from_utf8_lossy(data);
            for line in text.split("\r\n") {
                let lower = line.to_ascii_lowercase();
                if lower.starts_with("to-path: ") || lower.starts_with("from-path: ") || lower.starts_with("use-path: ")
                {
                    let value = line.split_once(": ").map_or("", |(_, v)| v);
                    out.extend(value.split(' ').map(|u| u.as_bytes().to_vec()));
                }
            }
        }
        out.extend(
            [
                "msrp://[2001:db8::1]:2855/s;tcp",
                "MSRPS://user@H%41st.Example.com:1/Ab-._~!$&'()*+,=:@;TCP;a=b;c",
                "msrp://10.0.0.1:7/x;ws",
                "msrp://h%2fx.example.com;tcp",
            ]
            .iter()
            .map(|s| s.as_bytes().to_vec()),
        );
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn mutated_uris() {
        let corpus = vectors();
        let uris = uris(&corpus);
        assert!(uris.len() >= 20, "too few URIs in the vectors: {}", uris.len());
        let mut parsed = 0;
        for uri in &uris {
            msrp_uri(uri);
            parsed += usize::from(MsrpUri::parse(Bytes::copy_from_slice(uri)).is_ok());
        }
        assert!(parsed >= 20, "too few valid URIs in the vectors: {parsed}");
        let pool = b"aAzZ09.-_~%:;@/[]=+!*'() \xc3\xa9";
        let mut rng = XorShift::new(0x5eed_0021);
        for i in 0..4000 {
            let mut data = uris[rng.below(uris.len())].clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(data.len() + 1);
                match rng.below(5) {
                    0 if at < data.len() => data[at] = pool[rng.below(pool.len())],
                    1 if at < data.len() => data[at] = data[at].to_ascii_uppercase(),
                    2 => {
                        let end = (at + 1 + rng.below(4)).min(data.len());
                        data.drain(at..end);
                    }
                    3 => data.insert(at, pool[rng.below(pool.len())]),
                    _ => {
                        let other = &uris[rng.below(uris.len())];
                        let from = rng.below(other.len() + 1);
                        data.splice(at..at, other[from..].iter().copied());
                    }
                }
            }
            let result = std::panic::catch_unwind(|| msrp_uri(&data));
            if let Err(panic) = result {
                panic!("case {i}: {:?}\ninput: {:?}", panic.downcast_ref::<String>(), String::from_utf8_lossy(&data));
            }
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        for data in [&b""[..], b"M", b"MSRP", b"\r\n", b"msrp://", b"msrp://a;tcp", b"msrp://a:1/b;t"] {
            msrp_frame(data);
            msrp_uri(data);
        }
    }

    #[test]
    fn msrp_session_survives_seeded_scripts() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300 {
            let mut data = vec![0u8; 2048];
            for b in &mut data {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            msrp_session(&data);
        }
    }

    #[test]
    fn msrp_relay_survives_seeded_scripts() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..48 {
            let mut data = vec![0u8; 3000];
            for b in &mut data {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            msrp_relay(&data);
        }
    }

    #[test]
    fn rfc4976_relay_survives_seeded_scripts() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..400 {
            let mut data = vec![0u8; 600];
            for b in &mut data {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            rfc4976_relay(&data);
        }
    }
}
