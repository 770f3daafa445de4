//! Receiver-side reassembly (RFC 4975 s.5.1, s.7.1.1, s.7.3.1, s.10.5).
#![allow(clippy::unwrap_used, reason = "test code")]

use bytes::Bytes;
use msrp_core::reassembly::{Delivery, DeliveryMode, Reassembler, ReassemblyConfig, ReassemblyError};
use msrp_core::{ByteRange, Flag, MessageId};

const MODES: [DeliveryMode; 2] = [DeliveryMode::Buffered, DeliveryMode::Streaming];

fn id(text: &str) -> MessageId {
    MessageId::from_text(text).unwrap()
}

fn range(start: u64, end: Option<u64>, total: Option<u64>) -> Option<ByteRange> {
    Some(ByteRange { start, end, total })
}

fn config(mode: DeliveryMode) -> ReassemblyConfig {
    ReassemblyConfig { mode, ..ReassemblyConfig::default() }
}

struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// One SEND: its Byte-Range, its body in pieces, its end-line flag.
#[derive(Clone, Debug)]
struct Send {
    range: Option<ByteRange>,
    pieces: Vec<Bytes>,
    flag: Flag,
}

impl Send {
    fn new(range: Option<ByteRange>, body: &[u8], flag: Flag) -> Self {
        Self { range, pieces: vec![Bytes::copy_from_slice(body)], flag }
    }
}

/// Feeds one SEND; returns what it delivered, or the first error.
fn feed(r: &mut Reassembler, message: &MessageId, send: &Send) -> Result<Vec<Delivery>, ReassemblyError> {
    let mut out = Vec::new();
    let chunk = r.begin_chunk(message, send.range, Some("text/plain"))?;
    for piece in &send.pieces {
        r.chunk_data(chunk, piece.clone(), &mut out)?;
    }
    r.end_chunk(chunk, send.flag, &mut out)?;
    Ok(out)
}

/// Feeds SENDs in order; returns all deliveries.
fn feed_all(r: &mut Reassembler, message: &MessageId, sends: &[Send]) -> Vec<Delivery> {
    sends.iter().flat_map(|send| feed(r, message, send).unwrap()).collect()
}

/// The body a run produced: buffered from `Complete`, streaming from the `Data` in order.
fn body_of(deliveries: &[Delivery]) -> Option<Vec<u8>> {
    let mut streamed = Vec::new();
    for delivery in deliveries {
        match delivery {
            Delivery::Data { offset, data, .. } => {
                assert_eq!(*offset, streamed.len() as u64, "in order, never twice");
                streamed.extend_from_slice(data);
            }
            Delivery::Complete { body, total, .. } => {
                if body.is_empty() {
                    assert_eq!(*total, streamed.len() as u64);
                    return Some(streamed);
                }
                assert!(streamed.is_empty());
                assert_eq!(*total, body.len() as u64);
                return Some(body.to_vec());
            }
            _ => {}
        }
    }
    None
}

fn conflicts(deliveries: &[Delivery]) -> Vec<(u64, u64)> {
    deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Conflict { offset, len, .. } => Some((*offset, *len)),
            _ => None,
        })
        .collect()
}

#[test]
fn single_chunk_without_and_with_byte_range() {
    // RFC 4975 s.7.3.1: no Byte-Range, or range-start 1, with "$": the entire message.
    let cases = [None, range(1, Some(6), Some(6)), range(1, None, None), range(1, Some(6), None)];
    for mode in MODES {
        for case in cases {
            let mut r = Reassembler::new(config(mode));
            let out = feed_all(&mut r, &id("whole1"), &[Send::new(case, b"Hi Bob", Flag::End)]);
            assert_eq!(body_of(&out).unwrap(), b"Hi Bob", "{mode:?} {case:?}");
            let Some(Delivery::Complete { content_type, total, .. }) = out.last() else { panic!("{out:?}") };
            assert_eq!((content_type.as_deref(), *total), (Some("text/plain"), 6));
            assert_eq!((r.incomplete(), r.held_bytes()), (0, 0));
        }
    }
}

#[test]
fn empty_message() {
    // RFC 4975 s.7.1.1: "a Byte-Range header field referring to nonexistent or
    // zero-length content MUST still have a range-start value of 1. For example, "1-0/0"."
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let out = feed_all(&mut r, &id("empty1"), &[Send::new(range(1, Some(0), Some(0)), b"", Flag::End)]);
        assert!(matches!(&out[..], [Delivery::Complete { body, total: 0, .. }] if body.is_empty()), "{out:?}");
    }
}

#[test]
fn zero_copy_single_chunk() {
    let piece = Bytes::from(vec![7u8; 5000]);
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let send = Send { range: range(1, None, Some(5000)), pieces: vec![piece.clone()], flag: Flag::End };
        let out = feed_all(&mut r, &id("zerocopy"), &[send]);
        let data = match (&out[..], mode) {
            ([Delivery::Complete { body, .. }], DeliveryMode::Buffered) => body,
            ([Delivery::Data { data, .. }, Delivery::Complete { .. }], DeliveryMode::Streaming) => data,
            _ => panic!("{mode:?}: {out:?}"),
        };
        assert_eq!(data.as_ptr(), piece.as_ptr(), "{mode:?}: the framer's bytes, not a copy");
        assert_eq!(data.len(), 5000);
    }
}

#[test]
fn rfc_figure_3_chunks_in_both_orders() {
    // RFC 4975 s.5.1, Figure 3.
    let first = Send::new(range(1, None, Some(8)), b"abcd", Flag::Continue);
    let second = Send::new(range(5, Some(8), Some(8)), b"EFGH", Flag::End);
    for mode in MODES {
        for sends in [[first.clone(), second.clone()], [second.clone(), first.clone()]] {
            let mut r = Reassembler::new(config(mode));
            let out = feed_all(&mut r, &id("4564dpWd"), &sends);
            assert_eq!(body_of(&out).unwrap(), b"abcdEFGH");
            assert_eq!((r.incomplete(), r.held_bytes()), (0, 0));
        }
    }
}

#[test]
fn star_end_and_star_total_resolved_by_the_last_chunk() {
    let sends = [
        Send::new(range(1, None, None), b"abc", Flag::Continue),
        Send::new(range(4, None, None), b"def", Flag::Continue),
        Send::new(range(7, None, None), b"gh", Flag::End),
    ];
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let out = feed_all(&mut r, &id("starstar"), &sends);
        assert_eq!(body_of(&out).unwrap(), b"abcdefgh");
        assert!(matches!(out.last(), Some(Delivery::Complete { total: 8, .. })));
    }
}

#[test]
fn rfc_cpim_example_body_shorter_than_its_range() {
    // RFC 4975 s.11.4: the second chunk says 138-148/148 but carries 10 bytes.
    // s.7.3.1: "The receiver SHOULD determine the actual length of each chunk
    // by inspecting the payload itself" and "the chunk that has a termination
    // character of "$" defines the total length of the message."
    let first = b"To: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>\r\n\
DateTime: 2006-05-15T15:02:31-03:00\r\nContent-Type: text/plain\r\n\r\nABCD";
    assert_eq!(first.len(), 137);
    let sends = [
        Send::new(range(1, Some(137), Some(148)), first, Flag::Continue),
        Send::new(range(138, Some(148), Some(148)), b"1234567890", Flag::End),
    ];
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let out = feed_all(&mut r, &id("12339sdqwer"), &sends);
        let body = body_of(&out).unwrap();
        assert_eq!(body.len(), 147);
        assert!(body.ends_with(b"ABCD1234567890"));
    }
}

#[test]
fn duplicates_change_nothing() {
    // RFC 4975 s.7.3.1: "In certain cases of connection failure, it is possible for information to be duplicated."
    let a = Send::new(range(1, Some(4), Some(8)), b"abcd", Flag::Continue);
    let b = Send::new(range(5, Some(8), Some(8)), b"efgh", Flag::End);
    for mode in MODES {
        for sends in [vec![a.clone(), a.clone(), b.clone()], vec![b.clone(), b.clone(), a.clone(), a.clone()]] {
            let mut r = Reassembler::new(config(mode));
            let out = feed_all(&mut r, &id("dupdup1"), &sends);
            assert_eq!(body_of(&out).unwrap(), b"abcdefgh");
            assert!(conflicts(&out).is_empty());
            // A duplicate after completion is accepted and ignored.
            assert!(feed(&mut r, &id("dupdup1"), &a).unwrap().is_empty());
            assert!(feed(&mut r, &id("dupdup1"), &b).unwrap().is_empty());
            assert_eq!((r.incomplete(), r.held_bytes()), (0, 0));
        }
    }
}

#[test]
fn overlap_last_received_wins_in_buffered_mode() {
    // RFC 4975 s.7.3.1: "if bytes 1 to 100 were received and a chunk arrives
    // that contains bytes 50 to 150, this second chunk will overwrite bytes 50
    // to 100 of the data that had already been received."
    let a = Send::new(range(1, Some(100), Some(150)), &[b'a'; 100], Flag::Continue);
    let b = Send::new(range(50, Some(150), Some(150)), &[b'b'; 101], Flag::End);
    let cases: [(&[Send], usize); 2] = [
        (&[a.clone(), b.clone()], 49), // 49 'a' then 101 'b'
        (&[b, a], 100),                // the 'a' chunk came last: 100 'a' then 50 'b'
    ];
    for (sends, a_count) in cases {
        let mut r = Reassembler::new(config(DeliveryMode::Buffered));
        let out = feed_all(&mut r, &id("overlap1"), sends);
        let body = body_of(&out).unwrap();
        assert_eq!(body.len(), 150);
        assert!(body[..a_count].iter().all(|&c| c == b'a') && body[a_count..].iter().all(|&c| c == b'b'));
        assert!(conflicts(&out).is_empty());
    }
}

#[test]
fn streaming_overlap_raises_conflict_and_keeps_delivered_bytes() {
    let mut r = Reassembler::new(config(DeliveryMode::Streaming));
    let m = id("conflict1");
    let out = feed(&mut r, &m, &Send::new(range(1, Some(100), Some(150)), &[b'a'; 100], Flag::Continue)).unwrap();
    assert_eq!(body_of(&out), None);
    // Same bytes again: no conflict. Then the RFC's 50-150 rewrite.
    assert!(feed(&mut r, &m, &Send::new(range(40, Some(60), Some(150)), &[b'a'; 21], Flag::Continue))
        .unwrap()
        .is_empty());
    let mut rewrite = vec![b'a'; 101];
    rewrite[10] = b'b'; // byte 60 (offset 59)
    rewrite[40] = b'b'; // byte 90 (offset 89)
    let out = feed(&mut r, &m, &Send::new(range(50, Some(150), Some(150)), &rewrite, Flag::End)).unwrap();
    assert_eq!(conflicts(&out), [(59, 31)]);
    assert!(matches!(&out[1], Delivery::Data { offset: 100, data, .. } if data.len() == 50));
    assert!(matches!(out.last(), Some(Delivery::Complete { total: 150, .. })));
}

#[test]
fn streaming_conflict_older_than_the_window_by_block() {
    let mut rng = Xorshift(99);
    let body = rng.bytes(200 * 1024);
    let m = id("conflict2");
    let mut r = Reassembler::new(config(DeliveryMode::Streaming));
    // Delivered in 1000-byte pieces: only the last 64 KiB stay in the exact window.
    let pieces = body.chunks(1000).map(Bytes::copy_from_slice).collect();
    feed(&mut r, &m, &Send { range: range(1, None, None), pieces, flag: Flag::Continue }).unwrap();
    // The same bytes, aligned or not: nothing to report.
    for (from, to) in [(1024, 4096), (1000, 4000)] {
        let same = Send::new(range(from + 1, Some(to), None), &body[from as usize..to as usize], Flag::Continue);
        assert!(feed(&mut r, &m, &same).unwrap().is_empty());
    }
    // Different bytes in whole aligned KiB blocks: reported by block.
    let mut changed = body[1024..4096].to_vec();
    changed[1500] ^= 1;
    let out = feed(&mut r, &m, &Send::new(range(1025, Some(4096), None), &changed, Flag::Continue)).unwrap();
    assert_eq!(conflicts(&out), [(2048, 1024)]);
    assert_eq!(r.held_bytes(), 0);
}

#[test]
fn gaps_keep_the_message_incomplete() {
    let a = Send::new(range(1, Some(4), Some(12)), b"abcd", Flag::Continue);
    let b = Send::new(range(5, Some(8), Some(12)), b"efgh", Flag::Continue);
    let c = Send::new(range(9, Some(12), Some(12)), b"ijkl", Flag::End);
    // The middle chunk cut short: "it is possible the body is shorter than the range-end field indicates".
    let short = Send::new(range(5, Some(8), Some(12)), b"ef", Flag::Continue);
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let m = id("gapgap1");
        let out = feed_all(&mut r, &m, &[a.clone(), c.clone(), short.clone()]);
        assert_eq!(body_of(&out), None, "{mode:?}: a $ chunk with holes before it does not complete");
        assert_eq!(r.incomplete(), 1);
        let in_order = if mode == DeliveryMode::Buffered { 6 } else { 0 };
        assert_eq!(r.held_bytes(), in_order + 4);
        let rest = feed(&mut r, &m, &b).unwrap();
        let all: Vec<Delivery> = out.into_iter().chain(rest).collect();
        assert_eq!(body_of(&all).unwrap(), b"abcdefghijkl");
        assert_eq!((r.incomplete(), r.held_bytes()), (0, 0));
    }
}

#[test]
fn abort_frees_everything() {
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let m = id("abort123");
        feed(&mut r, &m, &Send::new(range(9, Some(12), Some(12)), b"ijkl", Flag::Continue)).unwrap();
        feed(&mut r, &m, &Send::new(range(1, Some(4), Some(12)), b"abcd", Flag::Continue)).unwrap();
        let out = feed(&mut r, &m, &Send::new(range(5, None, Some(12)), b"ef", Flag::Abort)).unwrap();
        let Some(Delivery::Aborted { id: aborted, received: 10 }) = out.last() else { panic!("{out:?}") };
        assert_eq!(aborted, &m);
        assert_eq!((r.incomplete(), r.held_bytes()), (0, 0));
        // RFC 4975 s.7.1: the sender "intends to send no further chunks"; a late one is ignored.
        assert!(feed(&mut r, &m, &Send::new(range(5, None, Some(12)), b"efgh", Flag::End)).unwrap().is_empty());
        assert_eq!(r.incomplete(), 0);
    }
}

#[test]
fn limit_and_range_errors() {
    type Case = (&'static str, ReassemblyConfig, Vec<Send>, ReassemblyError, u16);
    let small = ReassemblyConfig { max_message_size: 100, max_held_bytes: 10, ..ReassemblyConfig::default() };
    let bad = |reason| ReassemblyError::BadRange { reason };
    let cases: Vec<Case> = vec![
        (
            "declared total too large",
            small.clone(),
            vec![Send::new(range(1, Some(4), Some(101)), b"abcd", Flag::Continue)],
            ReassemblyError::TooLarge { size: 101, limit: 100 },
            413,
        ),
        (
            "range-end too large",
            small.clone(),
            vec![Send::new(range(1, Some(101), None), b"", Flag::Continue)],
            ReassemblyError::TooLarge { size: 101, limit: 100 },
            413,
        ),
        (
            "data past the size limit",
            ReassemblyConfig { max_held_bytes: 1000, ..small.clone() },
            vec![Send::new(range(1, None, None), &[0; 101], Flag::End)],
            ReassemblyError::TooLarge { size: 101, limit: 100 },
            413,
        ),
        (
            "buffered: body past the held limit",
            small.clone(),
            vec![Send::new(None, &[0; 11], Flag::End)],
            ReassemblyError::HeldBytesExceeded { limit: 10 },
            413,
        ),
        (
            "streaming: out-of-order data past the held limit",
            small,
            vec![
                Send::new(range(1, None, None), &[0; 50], Flag::Continue),
                Send::new(range(61, None, None), &[0; 11], Flag::Continue),
            ],
            ReassemblyError::HeldBytesExceeded { limit: 10 },
            413,
        ),
        (
            "body longer than its range",
            ReassemblyConfig::default(),
            vec![Send::new(range(1, Some(4), Some(8)), b"abcde", Flag::Continue)],
            bad("the body is longer than its range"),
            400,
        ),
        (
            "data past the total",
            ReassemblyConfig::default(),
            vec![Send::new(range(1, None, Some(8)), b"abcdefghi", Flag::End)],
            bad("data past the message's total"),
            400,
        ),
        (
            "total changed",
            ReassemblyConfig::default(),
            vec![
                Send::new(range(1, Some(4), Some(8)), b"abcd", Flag::Continue),
                Send::new(range(5, Some(8), Some(9)), b"efgh", Flag::End),
            ],
            bad("the total changed between chunks"),
            400,
        ),
        (
            "range-end past the total",
            ReassemblyConfig::default(),
            vec![Send::new(range(1, Some(10), Some(5)), b"", Flag::Continue)],
            bad("range-end is past the total"),
            400,
        ),
        (
            "range-end past the message's total",
            ReassemblyConfig::default(),
            vec![
                Send::new(range(1, Some(4), Some(8)), b"abcd", Flag::Continue),
                Send::new(range(5, Some(9), None), b"efgh", Flag::End),
            ],
            bad("range-end is past the total"),
            400,
        ),
        (
            "total below bytes written",
            ReassemblyConfig::default(),
            vec![
                Send::new(range(1, None, None), b"abcdefghij", Flag::Continue),
                Send::new(range(1, None, Some(5)), b"", Flag::End),
            ],
            bad("the total is smaller than the data received"),
            400,
        ),
        (
            "range-start 0",
            ReassemblyConfig::default(),
            vec![Send::new(range(0, Some(4), Some(8)), b"abcd", Flag::Continue)],
            bad("range-start is 0"),
            400,
        ),
        (
            "range-end before range-start",
            ReassemblyConfig::default(),
            vec![Send::new(range(5, Some(3), None), b"", Flag::Continue)],
            bad("range-end is before range-start"),
            400,
        ),
        (
            "$ before data already received",
            ReassemblyConfig::default(),
            vec![
                Send::new(range(5, None, None), b"efgh", Flag::Continue),
                Send::new(range(1, None, None), b"ab", Flag::End),
            ],
            bad("data was received past the end of the chunk flagged $"),
            400,
        ),
    ];
    for (name, config, sends, error, status) in cases {
        for mode in MODES {
            let only = [("buffered:", DeliveryMode::Buffered), ("streaming:", DeliveryMode::Streaming)];
            if only.iter().any(|(prefix, only)| name.starts_with(prefix) && *only != mode) {
                continue;
            }
            let config = ReassemblyConfig { mode, ..config.clone() };
            let mut r = Reassembler::new(config);
            let m = id("limits1");
            let results: Vec<_> = sends.iter().map(|send| feed(&mut r, &m, send)).collect();
            let got = results.iter().find_map(|r| r.as_ref().err()).copied();
            assert_eq!(got, Some(error), "{name} ({mode:?})");
            assert_eq!(error.status_code(), status);
            assert!(error.is_peer_fault());
            // The message is gone and refused from now on (RFC 4975 s.10.5).
            assert_eq!((r.incomplete(), r.held_bytes()), (0, 0), "{name}");
            let late = feed(&mut r, &m, &Send::new(range(1, None, None), b"x", Flag::End));
            assert_eq!(late.unwrap_err(), ReassemblyError::Discarded, "{name}");
            assert_eq!(ReassemblyError::Discarded.status_code(), 413);
        }
    }
}

#[test]
fn too_many_incomplete() {
    let config = ReassemblyConfig { max_incomplete: 2, ..ReassemblyConfig::default() };
    let mut r = Reassembler::new(config);
    let part = Send::new(range(1, Some(2), Some(4)), b"ab", Flag::Continue);
    let rest = Send::new(range(3, Some(4), Some(4)), b"cd", Flag::End);
    feed(&mut r, &id("first1"), &part).unwrap();
    feed(&mut r, &id("second2"), &part).unwrap();
    let error = feed(&mut r, &id("third3"), &part).unwrap_err();
    assert_eq!(error, ReassemblyError::TooManyIncomplete { limit: 2 });
    assert_eq!(error.status_code(), 413);
    assert_eq!(r.incomplete(), 2);
    // Chunks of messages in progress still go through, and free a slot.
    assert!(body_of(&feed(&mut r, &id("first1"), &rest).unwrap()).is_some());
    feed(&mut r, &id("fourth4"), &part).unwrap();
    assert_eq!(r.incomplete(), 2);
    // The refused message stays refused.
    assert_eq!(feed(&mut r, &id("third3"), &rest).unwrap_err(), ReassemblyError::Discarded);
}

#[test]
fn discard_frees_and_refuses() {
    for mode in MODES {
        let mut r = Reassembler::new(config(mode));
        let m = id("discard1");
        let mut out = Vec::new();
        let open = r.begin_chunk(&m, range(5, None, Some(8)), None).unwrap();
        r.chunk_data(open, Bytes::from_static(b"ef"), &mut out).unwrap();
        assert_eq!(r.held_bytes(), 2);
        r.discard(&m);
        assert_eq!((r.incomplete(), r.held_bytes()), (0, 0));
        // The open chunk's remaining pieces are ignored, its end too.
        r.chunk_data(open, Bytes::from_static(b"gh"), &mut out).unwrap();
        r.end_chunk(open, Flag::End, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(r.held_bytes(), 0);
        let late = feed(&mut r, &m, &Send::new(range(1, Some(4), Some(8)), b"abcd", Flag::Continue));
        assert_eq!(late.unwrap_err(), ReassemblyError::Discarded);
    }
}

#[test]
fn unknown_chunk_is_a_local_error() {
    let mut other = Reassembler::new(ReassemblyConfig::default());
    let mut foreign = None;
    for _ in 0..3 {
        foreign = Some(other.begin_chunk(&id("foreign1"), None, None).unwrap());
    }
    let foreign = foreign.unwrap();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    let mut out = Vec::new();
    let error = r.chunk_data(foreign, Bytes::from_static(b"x"), &mut out).unwrap_err();
    assert_eq!(error, ReassemblyError::UnknownChunk);
    assert!(!error.is_peer_fault());
    assert_eq!(r.end_chunk(foreign, Flag::End, &mut out).unwrap_err(), ReassemblyError::UnknownChunk);
}

/// Splits `body` into chunks (random sizes, `*` or explicit range-end and
/// total), each into random pieces, adds overlapping duplicates, and shuffles.
fn chunked(rng: &mut Xorshift, body: &[u8], max_chunk: usize, duplicates: usize) -> Vec<Send> {
    let total = body.len() as u64;
    let make = |rng: &mut Xorshift, from: usize, to: usize, flag: Flag| {
        let end = (rng.below(2) == 0).then_some(to as u64);
        let total = (rng.below(2) == 0).then_some(total);
        let mut pieces = Vec::new();
        let mut at = from;
        while at < to {
            let len = (1 + rng.below(max_chunk / 2 + 1)).min(to - at);
            pieces.push(Bytes::copy_from_slice(&body[at..at + len]));
            at += len;
        }
        Send { range: range(from as u64 + 1, end, total), pieces, flag }
    };
    let mut sends = Vec::new();
    let mut at = 0;
    loop {
        let len = (1 + rng.below(max_chunk)).min(body.len() - at);
        let flag = if at + len == body.len() { Flag::End } else { Flag::Continue };
        sends.push(make(rng, at, at + len, flag));
        at += len;
        if flag == Flag::End {
            break;
        }
    }
    for _ in 0..duplicates.min(body.len()) {
        let from = rng.below(body.len());
        let to = from + 1 + rng.below((body.len() - from).min(max_chunk));
        sends.push(make(rng, from, to, Flag::Continue));
    }
    rng.shuffle(&mut sends);
    sends
}

#[test]
fn shuffled_chunks_reassemble_exactly() {
    for size in [0usize, 1, 2047, 2048, 2049, 1 << 20] {
        for mode in MODES {
            for seed in 1..=3u64 {
                let mut rng = Xorshift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ size as u64);
                let body = rng.bytes(size);
                let max_chunk = if size > 100_000 { 40_000 } else { 700 };
                let duplicates = if seed == 1 { 0 } else { 5 };
                let sends = chunked(&mut rng, &body, max_chunk, duplicates);
                let context = format!("size {size}, {mode:?}, seed {seed}");
                check_run(mode, &body, &sends, &context);
            }
        }
    }
}

/// Feeds `sends`, checking held bytes and the completion point against a model.
fn check_run(mode: DeliveryMode, body: &[u8], sends: &[Send], context: &str) {
    let mut r = Reassembler::new(config(mode));
    let m = id("shuffled");
    let mut covered = vec![false; body.len()];
    let (mut distinct, mut prefix) = (0usize, 0usize);
    let mut ended_with_dollar = false;
    let mut done = false;
    let mut all = Vec::new();
    for send in sends {
        let mut out = Vec::new();
        let chunk = r.begin_chunk(&m, send.range, Some("application/octet-stream")).unwrap();
        let mut at = usize::try_from(send.range.unwrap().start - 1).unwrap();
        for piece in &send.pieces {
            r.chunk_data(chunk, piece.clone(), &mut out).unwrap();
            for seen in &mut covered[at..at + piece.len()] {
                distinct += usize::from(!*seen);
                *seen = true;
            }
            at += piece.len();
            while prefix < body.len() && covered[prefix] {
                prefix += 1;
            }
            let expected = match (done, mode) {
                (true, _) => 0,
                (false, DeliveryMode::Buffered) => distinct,
                (false, DeliveryMode::Streaming) => distinct - prefix,
            };
            assert_eq!(r.held_bytes(), expected, "{context}: held bytes");
        }
        r.end_chunk(chunk, send.flag, &mut out).unwrap();
        ended_with_dollar |= send.flag == Flag::End;
        let completes = out.iter().any(|d| matches!(d, Delivery::Complete { .. }));
        assert_eq!(completes, !done && ended_with_dollar && prefix == body.len(), "{context}: completion point");
        done |= completes;
        all.extend(out);
    }
    assert!(done, "{context}");
    assert!(conflicts(&all).is_empty(), "{context}");
    assert_eq!(body_of(&all).unwrap(), body, "{context}");
    let data_bytes: usize = all.iter().map(|d| if let Delivery::Data { data, .. } = d { data.len() } else { 0 }).sum();
    let expected = if mode == DeliveryMode::Streaming { body.len() } else { 0 };
    assert_eq!(data_bytes, expected, "{context}: no byte delivered twice");
    assert_eq!((r.incomplete(), r.held_bytes()), (0, 0), "{context}");
}

#[test]
fn streaming_holds_only_out_of_order_bytes() {
    let mut r = Reassembler::new(config(DeliveryMode::Streaming));
    let m = id("stream12");
    let mut out = Vec::new();
    let late = r.begin_chunk(&m, range(2049, None, Some(4096)), None).unwrap();
    r.chunk_data(late, Bytes::from(vec![2; 1000]), &mut out).unwrap();
    r.chunk_data(late, Bytes::from(vec![2; 1048]), &mut out).unwrap();
    r.end_chunk(late, Flag::End, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(r.held_bytes(), 2048);
    let early = r.begin_chunk(&m, range(1, None, Some(4096)), None).unwrap();
    r.chunk_data(early, Bytes::from(vec![1; 2000]), &mut out).unwrap();
    assert!(matches!(&out[..], [Delivery::Data { offset: 0, data, .. }] if data.len() == 2000));
    assert_eq!(r.held_bytes(), 2048);
    out.clear();
    r.chunk_data(early, Bytes::from(vec![1; 48]), &mut out).unwrap();
    // The gap closed: the held pieces go out as they were received.
    let offsets: Vec<(u64, usize)> = out
        .iter()
        .filter_map(|d| if let Delivery::Data { offset, data, .. } = d { Some((*offset, data.len())) } else { None })
        .collect();
    assert_eq!(offsets, [(2000, 48), (2048, 1000), (3048, 1048)]);
    assert_eq!(r.held_bytes(), 0);
    out.clear();
    r.end_chunk(early, Flag::Continue, &mut out).unwrap();
    assert!(matches!(&out[..], [Delivery::Complete { total: 4096, body, .. }] if body.is_empty()));
}

#[test]
fn arbitrary_operation_sequences_never_panic() {
    // Random, mostly nonsensical operations; the reassembler must hold its
    // accounting and never panic.
    for seed in 1..=200u64 {
        let mut rng = Xorshift(seed);
        let config = ReassemblyConfig {
            mode: MODES[rng.below(2)],
            max_message_size: 1 + rng.below(5000) as u64,
            max_incomplete: rng.below(4),
            max_held_bytes: rng.below(3000),
        };
        let mut r = Reassembler::new(config);
        let ids = [id("aaaa"), id("bbbb"), id("cccc")];
        let mut chunks = Vec::new();
        let mut out = Vec::new();
        for _ in 0..300 {
            match rng.below(5) {
                0 => {
                    let pick = |rng: &mut Xorshift| (rng.below(3) > 0).then(|| rng.below(6000) as u64);
                    let range = (rng.below(4) > 0).then(|| ByteRange {
                        start: rng.below(6000) as u64,
                        end: pick(&mut rng),
                        total: pick(&mut rng),
                    });
                    if let Ok(chunk) = r.begin_chunk(&ids[rng.below(3)], range, None) {
                        chunks.push(chunk);
                    }
                }
                1 | 2 if !chunks.is_empty() => {
                    let chunk = chunks[rng.below(chunks.len())];
                    let len = rng.below(1500);
                    let _ = r.chunk_data(chunk, Bytes::from(rng.bytes(len)), &mut out);
                }
                3 if !chunks.is_empty() => {
                    let chunk = chunks.swap_remove(rng.below(chunks.len()));
                    let flag = [Flag::End, Flag::Continue, Flag::Abort][rng.below(3)];
                    let _ = r.end_chunk(chunk, flag, &mut out);
                }
                _ => r.discard(&ids[rng.below(3)]),
            }
            assert!(r.held_bytes() <= r.config().max_held_bytes, "seed {seed}");
            if r.incomplete() == 0 {
                assert_eq!(r.held_bytes(), 0, "seed {seed}");
            }
        }
        for delivery in &out {
            if let Delivery::Complete { body, total, .. } = delivery {
                assert!(body.is_empty() || body.len() as u64 == *total);
            }
        }
    }
}
