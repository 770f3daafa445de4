//! Criterion group `msrp_parse`: the streaming MSRP framer of `msrp-core` on
//! whole and segmented SEND frames, beside two reference rows of the same
//! shapes (a bare `memchr::memmem` scan for the end-line, and `httparse` on an
//! HTTP/1.1 request as long as the small frame).
//!
//! Benchmark ids (keep them stable so baselines stay comparable):
//! `framer/small`, `framer/64KiB`, `framer/1MiB_segmented`, `memmem_scan/64KiB`,
//! `memmem_scan/1MiB_segmented`, `httparse/small`.
//!
//! Extra rows, for a like-for-like reading of the segmented ones:
//! `memmem_scan/1MiB_segmented_owned` takes each segment as an owned `Bytes`
//! and drops it after the scan, the hand-over every runtime pays per read
//! whatever scans the bytes (the framer rows pay it too: `feed` clones each
//! segment in, and the body pieces that come out are dropped);
//! `framer/1MiB_16KiB` and `memmem_scan/1MiB_16KiB` hand the 1 MiB frame over
//! in 16 KiB segments, the size of a typical socket read.
//!
//! Every framer row reuses one `Framer` across iterations, as on a connection
//! carrying frame after frame; a fresh `Framer` per iteration would also time
//! `Framer::new` (it builds a `memmem::Finder`). Setup checks, outside the
//! timed loops, that each input yields one SEND head, the whole body and an
//! `End($)`, so no row can silently time an error path.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use memchr::memmem;
use msrp_core::{Flag, Framer, FramerEvent, Limits, Method};

/// Transaction id of every frame.
const TXID: &str = "a786hjs2dke93kd0";
/// Body of the small frame (200 bytes of text).
const SMALL_BODY_LEN: usize = 200;
/// Body of the 64 KiB frame.
const BODY_64K: usize = 64 * 1024;
/// Body of the segmented frame.
const BODY_1M: usize = 1024 * 1024;
/// A TCP segment's payload on a 1500-byte MTU link.
const SEGMENT: usize = 1460;
/// A typical socket read.
const READ: usize = 16 * 1024;

/// A SEND frame with realistic headers around `body`.
fn send_frame(body: &[u8], content_type: &str) -> Bytes {
    let len = body.len();
    let head = format!(
        "MSRP {TXID} SEND\r\n\
         To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
         From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
         Message-ID: 87652491dke93kd0\r\n\
         Byte-Range: 1-{len}/{len}\r\n\
         Content-Type: {content_type}\r\n\
         \r\n"
    );
    let mut frame = Vec::with_capacity(head.len() + len + 32);
    frame.extend_from_slice(head.as_bytes());
    frame.extend_from_slice(body);
    frame.extend_from_slice(format!("\r\n-------{TXID}$\r\n").as_bytes());
    Bytes::from(frame)
}

/// A text body of `len` bytes (no line breaks).
fn text_body(len: usize) -> Vec<u8> {
    let text = b"Hello Bob, here is the next paragraph of a long chat message. ";
    text.iter().copied().cycle().take(len).collect()
}

/// `len` pseudo-random bytes (xorshift64), CR replaced so no line break occurs.
fn random_body(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state.to_le_bytes()[3] {
                b'\r' => b'.',
                b => b,
            }
        })
        .collect()
}

/// `frame` cut into `size`-byte slices sharing its buffer.
fn segments(frame: &Bytes, size: usize) -> Vec<Bytes> {
    (0..frame.len()).step_by(size).map(|at| frame.slice(at..frame.len().min(at + size))).collect()
}

/// What the framer produced for one batch of input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    heads: usize,
    body: usize,
    ends: usize,
}

/// Hands `input` to `framer` segment by segment, draining every event.
fn feed(framer: &mut Framer, input: &[Bytes]) -> Tally {
    let mut tally = Tally::default();
    for segment in input {
        framer.handle_segment(segment.clone());
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(FramerEvent::Head(head)) => {
                    black_box(&head);
                    tally.heads += 1;
                }
                Ok(FramerEvent::Body(piece)) => tally.body += black_box(piece).len(),
                Ok(FramerEvent::End(flag)) => {
                    black_box(flag);
                    tally.ends += 1;
                }
                Ok(other) => panic!("framer rejected a bench frame: {other:?}"),
                Err(error) => panic!("framer failed on a bench frame: {error:?}"),
            }
        }
    }
    tally
}

/// Checks outside any timing that `input` (fed twice to one framer, as in the
/// timed loop) is one SEND head, exactly `body`, and `End($)` each time.
fn check_framer(input: &[Bytes], body: &[u8]) {
    let mut framer = Framer::new(Limits::default());
    for _ in 0..2 {
        let mut heads = Vec::new();
        let mut got = Vec::with_capacity(body.len());
        let mut ends = Vec::new();
        for segment in input {
            framer.handle_segment(segment.clone());
            while let Some(event) = framer.poll_event() {
                match event {
                    Ok(FramerEvent::Head(head)) => heads.push(head),
                    Ok(FramerEvent::Body(piece)) => got.extend_from_slice(&piece),
                    Ok(FramerEvent::End(flag)) => ends.push(flag),
                    Ok(other) => panic!("framer rejected a bench frame: {other:?}"),
                    Err(error) => panic!("framer failed on a bench frame: {error:?}"),
                }
            }
        }
        assert_eq!(heads.len(), 1, "one head per frame");
        assert_eq!(heads[0].method(), Some(Method::Send));
        assert_eq!(heads[0].txid(), TXID);
        assert_eq!(heads[0].byte_range().and_then(|r| r.total), Some(body.len() as u64));
        assert_eq!(got.len(), body.len(), "whole body delivered");
        assert!(got == body, "body delivered unchanged");
        assert_eq!(ends, [Flag::End], "one End($) per frame");
    }
    assert!(framer.finish().is_ok(), "framer idle between frames");
}

/// Checks after a timed loop that the reused framer still frames correctly.
fn check_still_framing(framer: &mut Framer, input: &[Bytes], body_len: usize) {
    let tally = feed(framer, input);
    assert_eq!(tally, Tally { heads: 1, body: body_len, ends: 1 }, "framer state after timing");
    assert!(framer.finish().is_ok(), "framer idle after timing");
}

/// An HTTP/1.1 request of exactly `total` bytes with six headers, for `httparse`.
fn http_request(total: usize) -> Bytes {
    let head_for = |body_len: usize| {
        format!(
            "POST /chat/9di4eae923wzd HTTP/1.1\r\n\
             Host: bob.example.com:8888\r\n\
             From: alice@alicepc.example.com\r\n\
             X-Message-ID: 87652491dke93kd0\r\n\
             Content-Range: bytes 0-199/200\r\n\
             Content-Type: text/plain\r\n\
             Content-Length: {body_len:03}\r\n\
             \r\n"
        )
    };
    // The head's length does not depend on a 3-digit Content-Length.
    let head_len = head_for(0).len();
    assert!(total > head_len && total - head_len < 1000, "HTTP body length fits 3 digits");
    let body_len = total - head_len;
    let mut request = head_for(body_len).into_bytes();
    request.extend(text_body(body_len));
    assert_eq!(request.len(), total);
    Bytes::from(request)
}

fn bench_msrp_parse(c: &mut Criterion) {
    let small_body = text_body(SMALL_BODY_LEN);
    let small = send_frame(&small_body, "text/plain");
    let small_input = [small.clone()];
    check_framer(&small_input, &small_body);

    let body_64k = random_body(BODY_64K);
    let frame_64k = send_frame(&body_64k, "application/octet-stream");
    let input_64k = [frame_64k.clone()];
    check_framer(&input_64k, &body_64k);

    let body_1m = random_body(BODY_1M);
    let frame_1m = send_frame(&body_1m, "application/octet-stream");
    let input_1m = segments(&frame_1m, SEGMENT);
    assert!(input_1m.iter().all(|s| s.len() <= SEGMENT) && input_1m.len() == frame_1m.len().div_ceil(SEGMENT));
    check_framer(&input_1m, &body_1m);
    let reads_1m = segments(&frame_1m, READ);
    check_framer(&reads_1m, &body_1m);

    let end_line = format!("\r\n-------{TXID}");
    let finder = memmem::Finder::new(end_line.as_bytes());
    let end_64k = frame_64k.len() - (end_line.len() + 3);
    assert_eq!(finder.find(&frame_64k), Some(end_64k), "memmem finds only the end-line");
    let hits_1m = input_1m.iter().filter(|s| finder.find(s).is_some()).count();
    assert!(hits_1m <= 1, "memmem finds at most the end-line");
    let read_hits_1m = reads_1m.iter().filter(|s| finder.find(s).is_some()).count();
    assert!(read_hits_1m <= 1, "memmem finds at most the end-line");

    let http = http_request(small.len());
    {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(&http);
        assert!(matches!(parsed, Ok(httparse::Status::Complete(n)) if n < http.len()), "{parsed:?}");
        assert_eq!(request.headers.len(), 6);
    }

    let mut group = c.benchmark_group("msrp_parse");

    let mut framer = Framer::new(Limits::default());
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function(BenchmarkId::new("framer", "small"), |b| {
        b.iter(|| feed(&mut framer, black_box(&small_input)));
    });
    check_still_framing(&mut framer, &small_input, SMALL_BODY_LEN);

    group.bench_function(BenchmarkId::new("httparse", "small"), |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            let status = request.parse(black_box(&http));
            black_box(&request);
            matches!(status, Ok(httparse::Status::Complete(_)))
        });
    });

    let mut framer = Framer::new(Limits::default());
    group.throughput(Throughput::Bytes(frame_64k.len() as u64));
    group.bench_function(BenchmarkId::new("framer", "64KiB"), |b| {
        b.iter(|| feed(&mut framer, black_box(&input_64k)));
    });
    check_still_framing(&mut framer, &input_64k, BODY_64K);

    group.bench_function(BenchmarkId::new("memmem_scan", "64KiB"), |b| {
        b.iter(|| finder.find(black_box(&frame_64k)));
    });

    let mut framer = Framer::new(Limits::default());
    group.throughput(Throughput::Bytes(frame_1m.len() as u64));
    group.bench_function(BenchmarkId::new("framer", "1MiB_segmented"), |b| {
        b.iter(|| feed(&mut framer, black_box(&input_1m)));
    });
    check_still_framing(&mut framer, &input_1m, BODY_1M);

    group.bench_function(BenchmarkId::new("memmem_scan", "1MiB_segmented"), |b| {
        b.iter(|| {
            let mut found = 0;
            for segment in black_box(&input_1m) {
                found += usize::from(finder.find(black_box(segment)).is_some());
            }
            found
        });
    });

    group.bench_function(BenchmarkId::new("memmem_scan", "1MiB_segmented_owned"), |b| {
        b.iter(|| {
            let mut found = 0;
            for segment in black_box(&input_1m) {
                // The same hand-over as `feed`: an owned segment in, dropped after use.
                let segment = black_box(segment.clone());
                found += usize::from(finder.find(&segment).is_some());
            }
            found
        });
    });

    let mut framer = Framer::new(Limits::default());
    group.bench_function(BenchmarkId::new("framer", "1MiB_16KiB"), |b| {
        b.iter(|| feed(&mut framer, black_box(&reads_1m)));
    });
    check_still_framing(&mut framer, &reads_1m, BODY_1M);

    group.bench_function(BenchmarkId::new("memmem_scan", "1MiB_16KiB"), |b| {
        b.iter(|| {
            let mut found = 0;
            for segment in black_box(&reads_1m) {
                found += usize::from(finder.find(black_box(segment)).is_some());
            }
            found
        });
    });

    group.finish();
}

/// The criterion group; `criterion_group!` emits an undocumented `pub fn`.
mod group {
    #![allow(unreachable_pub, reason = "criterion_group! always emits a pub fn")]
    criterion::criterion_group!(msrp_parse, super::bench_msrp_parse);
}
criterion_main!(group::msrp_parse);
