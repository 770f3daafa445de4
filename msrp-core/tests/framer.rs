//! The framer and encoder: edge cases of RFC 4975 s.7.1 framing, recovery,
//! limits, bounded memory, and round trips.
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::path::Path;

use bytes::Bytes;
use msrp_core::{
    EncodeError, Encoder, Flag, Frame, FrameHead, Framer, FramerEvent, IdSource, Limits, MsrpUri, ParseError,
    TransactionId,
};

/// Deterministic ids for tests: xorshift64 from a seed.
struct Xorshift(u64);

impl IdSource for Xorshift {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = self.0 as u8;
        }
    }
}

/// What a stream parses to, independent of how it was split.
#[derive(Debug, PartialEq, Eq)]
enum Item {
    Frame { head: Bytes, body: Option<Vec<u8>>, flag: Flag },
    Rejected { txid: String, is_request: bool, error: ParseError },
    Fatal(ParseError),
}

fn parse_with(
    input: &[u8],
    sizes: &mut dyn Iterator<Item = usize>,
    limits: &Limits,
) -> (Vec<Item>, Result<(), ParseError>) {
    let mut framer = Framer::new(limits.clone());
    let mut items = Vec::new();
    let mut current: Option<(FrameHead, Option<Vec<u8>>)> = None;
    let mut rest = input;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        framer.handle_segment(Bytes::copy_from_slice(&rest[..n]));
        rest = &rest[n..];
        while let Some(event) = framer.poll_event() {
            match event {
                Ok(FramerEvent::Head(head)) => {
                    let body = head.has_body().then(Vec::new);
                    current = Some((head, body));
                }
                Ok(FramerEvent::Body(piece)) => current.as_mut().unwrap().1.as_mut().unwrap().extend_from_slice(&piece),
                Ok(FramerEvent::End(flag)) => {
                    let (head, body) = current.take().unwrap();
                    items.push(Item::Frame { head: head.as_bytes().clone(), body, flag });
                }
                Ok(FramerEvent::Rejected { transaction_id, is_request, error, .. }) => {
                    items.push(Item::Rejected { txid: transaction_id.to_string(), is_request, error });
                }
                Err(error) => items.push(Item::Fatal(error)),
            }
        }
    }
    (items, framer.finish())
}

fn parse_split(input: &[u8], split: usize) -> (Vec<Item>, Result<(), ParseError>) {
    parse_with(input, &mut std::iter::repeat(split), &Limits::default())
}

/// Parses whole, then at every split size, and checks all agree.
fn parse_all(input: &[u8]) -> (Vec<Item>, Result<(), ParseError>) {
    let whole = parse_split(input, input.len().max(1));
    for split in 1..=input.len().min(80) {
        assert_eq!(parse_split(input, split), whole, "split {split}");
    }
    whole
}

const TO: &str = "msrp://bob.example.com:8888/9di4eae923wzd;tcp";
const FROM: &str = "msrp://alice.example.com:7777/iau39soe2843z;tcp";

fn send(txid: &str, body: &str, flag: char) -> String {
    format!(
        "MSRP {txid} SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nMessage-ID: m7Yq2Lk9\r\n\
         Byte-Range: 1-{n}/{n}\r\nContent-Type: text/plain\r\n\r\n{body}\r\n-------{txid}{flag}\r\n",
        n = body.len()
    )
}

fn body_of(item: &Item) -> &[u8] {
    match item {
        Item::Frame { body: Some(b), .. } => b,
        other => panic!("not a frame with a body: {other:?}"),
    }
}

#[test]
fn several_frames_in_one_read_and_bodiless_frames() {
    let bodiless = format!("MSRP a786hjs2 SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\n-------a786hjs2$\r\n");
    let response = format!("MSRP a786hjs2 200 OK\r\nTo-Path: {FROM}\r\nFrom-Path: {TO}\r\n-------a786hjs2$\r\n");
    let input = format!("{bodiless}{}{response}{}", send("tx000001", "one", '+'), send("tx000002", "two", '$'));
    let (items, end) = parse_all(input.as_bytes());
    assert_eq!(end, Ok(()));
    assert_eq!(items.len(), 4);
    assert!(matches!(&items[0], Item::Frame { body: None, flag: Flag::End, .. }));
    assert_eq!(body_of(&items[1]), b"one");
    assert!(matches!(&items[1], Item::Frame { flag: Flag::Continue, .. }));
    assert!(matches!(&items[2], Item::Frame { body: None, .. }));
    assert_eq!(body_of(&items[3]), b"two");
}

#[test]
fn only_this_transactions_exact_end_line_ends_the_body() {
    // RFC 4975 s.7.1: the end-line is CRLF "-------" transact-id flag CRLF.
    let tricky = [
        "\r\n-------otherid1$\r\n",  // another transaction's end-line
        "\r\n-------tx8Hd7Q2!\r\n",  // not a flag
        "\r\n-------tx8Hd7Q2$ \r\n", // flag without CRLF after it
        "\r\n-------tx8Hd7Q2+ x",    // flag followed by SP
        "x-------tx8Hd7Q2$\r\n",     // not preceded by CRLF
        "\r\n------tx8Hd7Q2$\r\n",   // six dashes
        "\r\n-------tx8Hd7Q$\r\n",   // a prefix of the id
        "\r\n-------tx8Hd7Q2",       // id, then end of body
        "\r\n\r\n\r",                // CRs
    ];
    for inner in tricky {
        let body = format!("a{inner}b");
        let (items, end) = parse_all(send("tx8Hd7Q2", &body, '$').as_bytes());
        assert_eq!(end, Ok(()), "{inner:?}");
        assert_eq!(items.len(), 1, "{inner:?}");
        assert_eq!(body_of(&items[0]), body.as_bytes(), "{inner:?}");
    }
}

#[test]
fn empty_body_and_body_of_crlf() {
    let (items, _) = parse_all(send("tx8Hd7Q2", "", '$').as_bytes());
    assert_eq!(body_of(&items[0]), b"");
    let (items, _) = parse_all(send("tx8Hd7Q2", "\r\n", '$').as_bytes());
    assert_eq!(body_of(&items[0]), b"\r\n");
}

#[test]
fn recoverable_error_skips_to_the_end_line_and_goes_on() {
    let bad = send("badid001", "x\r\n-------other$\r\n", '$').replace("Message-ID: m7Yq2Lk9", "Message-ID: m7@");
    let input = format!("{bad}{}", send("goodid01", "fine", '$'));
    let (items, end) = parse_all(input.as_bytes());
    assert_eq!(end, Ok(()));
    let at = bad.find("m7@").unwrap() as u64;
    assert_eq!(
        items[0],
        Item::Rejected { txid: "badid001".into(), is_request: true, error: ParseError::MessageId { at } }
    );
    assert!(items[0..1].iter().all(|i| matches!(i, Item::Rejected { error, .. } if error.is_recoverable())));
    assert_eq!(body_of(&items[1]), b"fine");
    assert_eq!(items.len(), 2);
}

#[test]
fn fatal_error_stops_the_framer() {
    let input = format!("MSRP tx8Hd7Q2 SEND\nTo-Path: {TO}\r\n");
    let (items, end) = parse_all(input.as_bytes());
    assert_eq!(items, vec![Item::Fatal(ParseError::LineEnding { at: 18 })]);
    assert!(!ParseError::LineEnding { at: 18 }.is_recoverable());
    assert_eq!(end, Ok(()), "a failed framer has nothing more to say");
}

#[test]
fn truncated_input_is_incomplete_at_its_length() {
    let full = send("tx8Hd7Q2", "hello", '$');
    for cut in 1..full.len() {
        let (_, end) = parse_split(&full.as_bytes()[..cut], 3);
        assert_eq!(end, Err(ParseError::Incomplete { at: cut as u64 }), "cut {cut}");
    }
}

#[test]
fn limits_are_typed_errors_and_bound_memory() {
    let mut limits = Limits::default();
    limits.set_max_line(100).set_max_head(300).set_max_headers(4).set_max_non_send_body(10);

    // A header line that never ends: refused once the line limit is passed.
    let long = format!("MSRP tx8Hd7Q2 SEND\r\nTo-Path: {TO}\r\nX: {}", "a".repeat(10_000));
    let (items, _) = parse_with(long.as_bytes(), &mut std::iter::repeat(1), &limits);
    let at = long.find("X: ").unwrap() as u64;
    assert_eq!(items, vec![Item::Fatal(ParseError::LineTooLong { at, limit: 100 })]);

    let many = format!("MSRP tx8Hd7Q2 SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nA: 1\r\nB: 2\r\nC: 3\r\n");
    let (items, _) = parse_with(many.as_bytes(), &mut std::iter::repeat(7), &limits);
    assert!(matches!(items[0], Item::Fatal(ParseError::TooManyHeaders { limit: 4, .. })), "{items:?}");

    let big_head = format!(
        "MSRP tx8Hd7Q2 SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nA: {}\r\nB: {}\r\n",
        "1".repeat(90),
        "2".repeat(90)
    );
    let (items, _) = parse_with(big_head.as_bytes(), &mut std::iter::repeat(5), &limits);
    assert_eq!(items, vec![Item::Fatal(ParseError::HeadTooLong { at: 300, limit: 300 })]);

    limits.set_max_headers(5);
    let report = send("tx8Hd7Q2", "0123456789AB", '$').replace(" SEND\r\n", " REPORT\r\n");
    let body_at = report.find("\r\n\r\n").unwrap() as u64 + 4;
    for split in [1, 5, 1000] {
        let (items, end) = parse_with(report.as_bytes(), &mut std::iter::repeat(split), &limits);
        assert_eq!(end, Ok(()));
        assert_eq!(
            items,
            vec![Item::Rejected {
                txid: "tx8Hd7Q2".into(),
                is_request: true,
                error: ParseError::BodyTooLarge { at: body_at + 10, limit: 10 }
            }]
        );
    }
}

#[test]
fn a_large_body_streams_through_with_bounded_memory() {
    // 64 MiB in 64 KiB segments: the framer never holds more than an end-line's worth.
    let head = format!("MSRP big00001 SEND\r\nTo-Path: {TO}\r\nFrom-Path: {FROM}\r\nByte-Range: 1-*/*\r\nContent-Type: application/octet-stream\r\n\r\n");
    let mut block = vec![b'x'; 64 * 1024];
    for (i, b) in block.iter_mut().enumerate() {
        if i % 61 == 60 {
            *b = b'\r';
        } else if i % 61 == 0 {
            *b = b'\n';
        }
    }
    // End the block with the start of a dashed line, to make the framer hold bytes at every boundary.
    let tail = b"\r\n-------big0";
    let n = block.len();
    block[n - tail.len()..].copy_from_slice(tail);
    let block = Bytes::from(block);
    let mut framer = Framer::new(Limits::default());
    framer.handle_segment(Bytes::from(head));
    let mut total = 0u64;
    let mut events = 0;
    let mut drain = |framer: &mut Framer, total: &mut u64| {
        while let Some(event) = framer.poll_event() {
            match event.unwrap() {
                FramerEvent::Head(_) => events += 1,
                FramerEvent::Body(piece) => *total += piece.len() as u64,
                FramerEvent::End(flag) => {
                    assert_eq!(flag, Flag::End);
                    events += 1;
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(framer.buffered_len() <= 44, "holds {}", framer.buffered_len());
    };
    drain(&mut framer, &mut total);
    for _ in 0..1024 {
        framer.handle_segment(block.clone());
        drain(&mut framer, &mut total);
    }
    framer.handle_segment(Bytes::from_static(b"\r\n-------big00001$\r\n"));
    drain(&mut framer, &mut total);
    assert_eq!(total, 1024 * 64 * 1024);
    assert_eq!(events, 2);
    assert_eq!(framer.finish(), Ok(()));
}

#[test]
fn body_pieces_share_the_input_segments() {
    let frame = Bytes::from(send("tx8Hd7Q2", &"z".repeat(4000), '$'));
    let mut framer = Framer::new(Limits::default());
    framer.handle_segment(frame.clone());
    let range = frame.as_ptr_range();
    while let Some(event) = framer.poll_event() {
        match event.unwrap() {
            FramerEvent::Head(head) => assert!(range.contains(&head.as_bytes().as_ptr())),
            FramerEvent::Body(piece) => {
                assert!(range.contains(&piece.as_ptr()), "body piece was copied");
                assert_eq!(piece.len(), 4000);
            }
            FramerEvent::End(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse_str(s).unwrap()
}

#[test]
fn encoder_picks_a_transaction_id_whose_end_line_is_not_in_the_body() {
    // The first id this source yields, written into the body as an end-line.
    let first = TransactionId::generate(&mut Xorshift(7));
    let body = Bytes::from(format!("before\r\n-------{first}$\r\nafter"));
    let frame = Frame::send(vec![uri(TO)], vec![uri(FROM)], "text/plain", body.clone());
    let out = Encoder::new().encode(&frame, &mut Xorshift(7)).unwrap();
    assert_ne!(out.transaction_id, first);
    assert_eq!(out.body, body);
    assert_eq!(out.body.as_ptr(), body.as_ptr(), "the body is the caller's, not a copy");
    let wire = [out.head.as_ref(), out.body.as_ref(), out.end_line.as_ref()].concat();
    let (items, end) = parse_all(&wire);
    assert_eq!(end, Ok(()));
    assert_eq!(body_of(&items[0]), body.as_ref());

    let mut fixed = frame;
    fixed.transaction_id = Some(first.clone());
    assert_eq!(Encoder::new().encode(&fixed, &mut Xorshift(7)), Err(EncodeError::EndLineInBody));
    // A body that ends with the end-line minus its CRLF would end early too.
    fixed.body = Some(Bytes::from(format!("x\r\n-------{first}#")));
    assert_eq!(Encoder::new().encode(&fixed, &mut Xorshift(7)), Err(EncodeError::EndLineInBody));
    // The dashed id without the CRLF before it, or without a flag after it, is harmless.
    for harmless in [format!("-------{first}$\r\n"), format!("x\r\n-------{first}"), format!("\r\n-------{first}$x")] {
        fixed.body = Some(Bytes::from(harmless.clone()));
        let out = Encoder::new().encode(&fixed, &mut Xorshift(7)).unwrap();
        let wire = [out.head.as_ref(), out.body.as_ref(), out.end_line.as_ref()].concat();
        let (items, end) = parse_all(&wire);
        assert_eq!((body_of(&items[0]), end), (harmless.as_bytes(), Ok(())));
    }
}

#[test]
fn encoder_refuses_frames_that_break_the_rules() {
    let mut ids = Xorshift(1);
    let base = Frame::send(vec![uri(TO)], vec![uri(FROM)], "text/plain", Bytes::from_static(b"x"));
    let mut no_ct = base.clone();
    no_ct.content_type = None;
    assert_eq!(Encoder::new().encode(&no_ct, &mut ids), Err(EncodeError::BodyContentType));
    let bad_header = base.clone().with_header("X-Bad", "a\r\nInjected: 1");
    assert_eq!(Encoder::new().encode(&bad_header, &mut ids), Err(EncodeError::Header { index: 1 }));
    let mut no_path = base.clone();
    no_path.to_path.clear();
    assert_eq!(Encoder::new().encode(&no_path, &mut ids), Err(EncodeError::EmptyPath));
    let mime_without_body = Frame::bodiless("SEND", vec![uri(TO)], vec![uri(FROM)]).with_header("Content-ID", "<a@b>");
    assert_eq!(Encoder::new().encode(&mime_without_body, &mut ids), Err(EncodeError::BodyContentType));
    let mut lower = base;
    lower.start = msrp_core::StartLine::Request { method: "send".into() };
    assert_eq!(Encoder::new().encode(&lower, &mut ids), Err(EncodeError::StartLine));
}

fn parse_frames(wire: &[u8], split: usize) -> Vec<Frame> {
    let mut framer = Framer::new(Limits::default());
    let mut frames = Vec::new();
    let mut current: Option<(FrameHead, Vec<u8>)> = None;
    for segment in wire.chunks(split.max(1)) {
        framer.handle_segment(Bytes::copy_from_slice(segment));
        while let Some(event) = framer.poll_event() {
            match event.unwrap() {
                FramerEvent::Head(head) => current = Some((head, Vec::new())),
                FramerEvent::Body(piece) => current.as_mut().unwrap().1.extend_from_slice(&piece),
                FramerEvent::End(flag) => {
                    let (head, body) = current.take().unwrap();
                    frames.push(Frame::from_head(&head, Some(Bytes::from(body)), flag));
                }
                FramerEvent::Rejected { error, .. } => panic!("rejected: {error}"),
            }
        }
    }
    framer.finish().unwrap();
    frames
}

#[test]
fn encode_of_parse_reproduces_every_accepted_vector() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/msrp");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The encoder writes To-Path, From-Path and Content-Type in their canonical case.
        if !name.starts_with("y_") || !name.ends_with(".msrp") || name == "y_lowercase_header_names.msrp" {
            continue;
        }
        let wire = std::fs::read(&path).unwrap();
        let mut out = Vec::new();
        for frame in parse_frames(&wire, wire.len()) {
            let t = Encoder::new().encode(&frame, &mut Xorshift(1)).unwrap();
            out.extend_from_slice(&t.head);
            out.extend_from_slice(&t.body);
            out.extend_from_slice(&t.end_line);
        }
        assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(&wire), "{name}");
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
#[cfg(feature = "arbitrary")]
fn parse_of_encode_is_identity_for_generated_frames_at_random_splits() {
    use arbitrary::{Arbitrary, Unstructured};

    let mut rng = Xorshift(0x5eed_1234_abcd_0001);
    let mut encoder = Encoder::new();
    for case in 0..2000 {
        let mut raw = vec![0u8; 600];
        rng.fill(&mut raw);
        let Ok(mut frame) = Frame::arbitrary(&mut Unstructured::new(&raw)) else { continue };
        let out = encoder.encode(&frame, &mut rng).unwrap_or_else(|e| panic!("case {case}: {e}: {frame:?}"));
        frame.transaction_id = Some(out.transaction_id.clone());
        let wire = [out.head.as_ref(), out.body.as_ref(), out.end_line.as_ref()].concat();
        let mut split = [0u8; 1];
        rng.fill(&mut split);
        let parsed = parse_frames(&wire, usize::from(split[0]) + 1);
        assert_eq!(parsed, vec![frame], "case {case}");
    }
}
