//! Two MSRP sessions wired back to back in memory (RFC 4975 s.5, s.7): the
//! active one opens the link, messages of every interesting size cross it
//! with random read splits, and the reports, responses, timers and errors
//! behave as the RFC says.
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]

use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_core::reassembly::DeliveryMode;
use msrp_core::session::{Command, Event, Input, LinkRole, MessageHandle, Output, Session, SessionConfig};
use msrp_core::{FailureReport, Flag, Framer, FramerEvent, IdSource, Limits, MsrpUri};

#[derive(Clone)]
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl IdSource for Xorshift {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            *b = self.next() as u8;
        }
    }
}

const A_URI: &str = "msrp://a.example.com:7777/aaaaaaaaaaaaaaaa;tcp";
const B_URI: &str = "msrp://b.example.com:8888/bbbbbbbbbbbbbbbb;tcp";

fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse_str(s).unwrap()
}

#[expect(clippy::disallowed_methods, reason = "the test's virtual clock needs one real epoch")]
fn epoch() -> Instant {
    Instant::now()
}

/// Two sessions and a virtual clock; bytes cross in random splits.
struct Pair {
    a: Session,
    b: Session,
    now: Instant,
    rng: Xorshift,
    a_events: Vec<Event>,
    b_events: Vec<Event>,
    /// Everything each side wrote, for inspection.
    a_wire: Vec<u8>,
    b_wire: Vec<u8>,
    max_split: usize,
}

impl Pair {
    fn new(seed: u64, tune: impl Fn(&mut SessionConfig)) -> Self {
        let now = epoch();
        let mut a_config = SessionConfig::new(uri(A_URI), vec![uri(B_URI)], LinkRole::Active);
        let mut b_config = SessionConfig::new(uri(B_URI), vec![uri(A_URI)], LinkRole::Passive);
        tune(&mut a_config);
        tune(&mut b_config);
        let mut pair = Self {
            a: Session::new(a_config, now, Box::new(Xorshift(seed | 1))),
            b: Session::new(b_config, now, Box::new(Xorshift((seed << 1) | 1))),
            now,
            rng: Xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_wire: Vec::new(),
            b_wire: Vec::new(),
            max_split: 3000,
        };
        pair.a.handle(now, Input::LinkUp).unwrap();
        pair.b.handle(now, Input::LinkUp).unwrap();
        pair
    }

    /// Drains one side's outputs: events kept, transmits concatenated.
    fn drain(session: &mut Session, events: &mut Vec<Event>, wire: &mut Vec<u8>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(output) = session.poll_output() {
            match output {
                Output::Transmit(t) => {
                    out.extend_from_slice(&t.head);
                    out.extend_from_slice(&t.body);
                    out.extend_from_slice(&t.end_line);
                }
                Output::Event(e) => events.push(e),
            }
        }
        wire.extend_from_slice(&out);
        out
    }

    fn feed(&mut self, to_b: bool, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = (self.rng.next() as usize % self.max_split + 1).min(rest.len());
            let segment = Bytes::copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            let target = if to_b { &mut self.b } else { &mut self.a };
            target.handle(self.now, Input::Received(segment)).unwrap();
        }
    }

    /// Moves bytes both ways until both sides are quiet.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let from_a = Self::drain(&mut self.a, &mut self.a_events, &mut self.a_wire);
            let from_b = Self::drain(&mut self.b, &mut self.b_events, &mut self.b_wire);
            if from_a.is_empty() && from_b.is_empty() {
                return;
            }
            self.feed(true, &from_a);
            self.feed(false, &from_b);
        }
        panic!("the sessions never went quiet");
    }

    fn send(&mut self, handle: u64, body: Bytes, success: bool, failure: FailureReport) {
        let command = Command::Send {
            handle: MessageHandle::new(handle),
            content_type: "text/plain".into(),
            body,
            success_report: success,
            failure_report: failure,
        };
        self.a.handle(self.now, Input::Command(command)).unwrap();
    }
}

fn payload(len: usize, seed: u64) -> Bytes {
    let mut rng = Xorshift(seed | 1);
    let mut v = vec![0u8; len];
    rng.fill(&mut v);
    // Sprinkle CRLFs and dashes so the framer's end-line search is exercised.
    for i in (0..len).step_by(97) {
        v[i] = b'\r';
        if i + 1 < len {
            v[i + 1] = b'\n';
        }
        if i + 9 < len {
            v[i + 2..i + 9].copy_from_slice(b"-------");
        }
    }
    Bytes::from(v)
}

fn received(events: &[Event]) -> Vec<Bytes> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::MessageReceived { body, .. } => Some(body.clone()),
            _ => None,
        })
        .collect()
}

/// Every frame a side wrote: (method or status, Byte-Range, flag, body length).
fn frames(wire: &[u8]) -> Vec<(String, Option<String>, Flag, usize)> {
    let mut framer = Framer::new(Limits::default());
    framer.handle_segment(Bytes::copy_from_slice(wire));
    let mut out = Vec::new();
    let mut current = None;
    let mut len = 0;
    while let Some(event) = framer.poll_event() {
        match event.unwrap() {
            FramerEvent::Head(h) => {
                let what = h.method_name().map(String::from).unwrap_or_else(|| h.status_code().unwrap().to_string());
                current = Some((what, h.byte_range().map(|r| r.to_string())));
                len = 0;
            }
            FramerEvent::Body(p) => len += p.len(),
            FramerEvent::End(flag) => {
                let (what, range) = current.take().unwrap();
                out.push((what, range, flag, len));
            }
            FramerEvent::Rejected { error, .. } => panic!("{error}"),
        }
    }
    out
}

#[test]
fn messages_of_every_size_cross_with_random_splits() {
    for (i, len) in [0usize, 1, 2047, 2048, 2049, 5000, 1 << 20].into_iter().enumerate() {
        let mut pair = Pair::new(100 + i as u64, |_| {});
        let body = payload(len, i as u64);
        pair.send(1, body.clone(), true, FailureReport::Yes);
        pair.run();
        assert_eq!(received(&pair.b_events), vec![body], "len {len}");
        assert!(pair.a_events.contains(&Event::MessageSent { handle: MessageHandle::new(1) }), "len {len}");
        let report = pair.a_events.iter().find(|e| matches!(e, Event::ReportReceived { .. })).unwrap();
        assert!(
            matches!(report, Event::ReportReceived { handle: Some(_), status: 200, byte_range: Some(r), .. }
            if r.start == 1 && r.end == Some(len as u64) && r.total == Some(len as u64)),
            "len {len}: {report:?}"
        );
        assert_eq!(pair.a.open_transactions(), 0);
        assert_eq!(pair.a.poll_timeout(), None, "no timer left");
        // RFC 4975 s.7.1.1: no chunk but the last is smaller than 2048
        // octets, and a chunk over 2048 octets has "*" as range-end.
        let sends: Vec<_> = frames(&pair.a_wire).into_iter().filter(|f| f.0 == "SEND").collect();
        for (n, (_, range, flag, body_len)) in sends.iter().enumerate() {
            let range = range.as_deref().unwrap();
            if *body_len > 2048 {
                assert!(range.contains("-*/"), "len {len}: {range}");
            }
            if n + 1 < sends.len() {
                assert!(*body_len >= 2048 && *flag == Flag::Continue, "len {len}");
            } else {
                assert_eq!(*flag, Flag::End);
            }
        }
    }
}

#[test]
fn active_side_binds_with_a_bodiless_send_and_passive_side_waits() {
    let mut pair = Pair::new(7, |_| {});
    // The passive side writes nothing before the first request.
    assert!(pair.b.poll_output().is_none());
    pair.run();
    let a = frames(&pair.a_wire);
    assert_eq!(a[0].0, "SEND");
    assert_eq!(a[0].1.as_deref(), Some("1-0/0"));
    assert!(pair.a.is_bound() && pair.b.is_bound());
    assert_eq!(frames(&pair.b_wire)[0].0, "200");
    assert_eq!(pair.a.stray_responses(), 0);
}

#[test]
fn failure_report_policies() {
    // "no": no response at all, not even for success; the message is done once sent.
    let mut pair = Pair::new(11, |_| {});
    pair.run();
    pair.send(1, payload(3000, 1), false, FailureReport::No);
    pair.run();
    assert!(
        !frames(&pair.b_wire).iter().any(|f| f.0 == "200" && pair.b_wire.len() > 200),
        "responses: {:?}",
        frames(&pair.b_wire)
    );
    assert!(pair.a_events.contains(&Event::MessageSent { handle: MessageHandle::new(1) }));
    assert_eq!(pair.a.poll_timeout(), None);

    // "partial": no 200, no timer.
    let mut pair = Pair::new(12, |_| {});
    pair.run();
    let before = frames(&pair.b_wire).len();
    pair.send(1, payload(10, 1), false, FailureReport::Partial);
    pair.run();
    assert_eq!(frames(&pair.b_wire).len(), before);
    assert!(pair.a_events.contains(&Event::MessageSent { handle: MessageHandle::new(1) }));
}

#[test]
fn no_response_within_30_seconds_is_a_408() {
    let mut pair = Pair::new(13, |_| {});
    pair.run();
    pair.send(1, payload(100, 1), false, FailureReport::Yes);
    // A's bytes go out but B's response never comes back.
    let _ = Pair::drain(&mut pair.a, &mut pair.a_events, &mut pair.a_wire);
    let due = pair.a.poll_timeout().unwrap();
    assert_eq!(due, pair.now + Duration::from_secs(30));
    pair.a.handle(due - Duration::from_millis(1), Input::Timeout).unwrap();
    let _ = Pair::drain(&mut pair.a, &mut pair.a_events, &mut pair.a_wire);
    assert!(!pair.a_events.iter().any(|e| matches!(e, Event::SendFailed { .. })));
    pair.a.handle(due, Input::Timeout).unwrap();
    let _ = Pair::drain(&mut pair.a, &mut pair.a_events, &mut pair.a_wire);
    assert!(pair.a_events.contains(&Event::SendFailed {
        handle: MessageHandle::new(1),
        status: 408,
        reason: "no response within the transaction timeout"
    }));
    assert_eq!(pair.a.poll_timeout(), None);
}

#[test]
fn a_request_for_another_session_gets_481_and_is_not_delivered() {
    let mut pair = Pair::new(14, |_| {});
    pair.run();
    let wrong = format!(
        "MSRP wrong0001 SEND\r\nTo-Path: msrp://b.example.com:8888/other;tcp\r\nFrom-Path: {A_URI}\r\n\
         Message-ID: m0000001\r\nByte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------wrong0001$\r\n"
    );
    pair.b.handle(pair.now, Input::Received(Bytes::from(wrong))).unwrap();
    let out = Pair::drain(&mut pair.b, &mut pair.b_events, &mut pair.b_wire);
    assert_eq!(frames(&out)[0].0, "481");
    assert!(received(&pair.b_events).is_empty());
}

#[test]
fn a_send_without_message_id_gets_400() {
    let mut pair = Pair::new(15, |_| {});
    pair.run();
    let bad = format!(
        "MSRP nomsgid01 SEND\r\nTo-Path: {B_URI}\r\nFrom-Path: {A_URI}\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------nomsgid01$\r\n"
    );
    pair.b.handle(pair.now, Input::Received(Bytes::from(bad))).unwrap();
    let out = Pair::drain(&mut pair.b, &mut pair.b_events, &mut pair.b_wire);
    assert_eq!(frames(&out)[0].0, "400");
}

#[test]
fn a_large_chunk_is_interrupted_for_a_response() {
    let mut pair = Pair::new(16, |c| c.write_quantum = 4096);
    pair.run();
    pair.send(1, payload(100_000, 3), false, FailureReport::Yes);
    // A writes the chunk head and a few pieces...
    let mut wire = Vec::new();
    for _ in 0..3 {
        match pair.a.poll_output().unwrap() {
            Output::Transmit(t) => {
                wire.extend_from_slice(&t.head);
                wire.extend_from_slice(&t.body);
                wire.extend_from_slice(&t.end_line);
            }
            Output::Event(_) => {}
        }
    }
    // ...when B's message arrives and needs a response.
    let from_b = format!(
        "MSRP fromb0001 SEND\r\nTo-Path: {A_URI}\r\nFrom-Path: {B_URI}\r\nMessage-ID: m0000002\r\nByte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------fromb0001$\r\n"
    );
    pair.a.handle(pair.now, Input::Received(Bytes::from(from_b))).unwrap();
    let rest = Pair::drain(&mut pair.a, &mut pair.a_events, &mut pair.a_wire);
    wire.extend_from_slice(&rest);
    let f = frames(&wire);
    // The chunk ends with "+", the 200 goes out, then the message resumes.
    assert_eq!((f[0].0.as_str(), f[0].2), ("SEND", Flag::Continue));
    assert!(f[0].3 >= 2048);
    assert_eq!(f[1].0, "200");
    assert_eq!(f[2].0, "SEND");
    let resumed_at = f[0].3 + 1;
    assert!(f[2].1.as_deref().unwrap().starts_with(&format!("{resumed_at}-*/100000")), "{:?}", f[2]);
    let total: usize = f.iter().filter(|x| x.0 == "SEND").map(|x| x.3).sum();
    assert_eq!(total, 100_000);
}

#[test]
fn streamed_messages_of_unknown_length_use_star_totals() {
    let mut pair = Pair::new(17, |c| c.reassembly.mode = DeliveryMode::Streaming);
    pair.run();
    let handle = MessageHandle::new(9);
    let start = Command::SendStream {
        handle,
        content_type: "application/octet-stream".into(),
        success_report: true,
        failure_report: FailureReport::Yes,
    };
    pair.a.handle(pair.now, Input::Command(start)).unwrap();
    let body = payload(300_000, 5);
    let mut expect = Vec::new();
    for (i, piece) in body.chunks(7000).enumerate() {
        let last = (i + 1) * 7000 >= body.len();
        expect.extend_from_slice(piece);
        let data = Command::StreamData { handle, data: Bytes::copy_from_slice(piece), last };
        pair.a.handle(pair.now, Input::Command(data)).unwrap();
        pair.run();
    }
    let mut got = Vec::new();
    for e in &pair.b_events {
        if let Event::ChunkReceived { offset, data, .. } = e {
            assert_eq!(*offset as usize, got.len(), "in order, never twice");
            got.extend_from_slice(data);
        }
    }
    assert_eq!(got, expect);
    assert!(pair.b_events.iter().any(|e| matches!(e, Event::MessageReceived { total: 300_000, .. })));
    let sends: Vec<_> = frames(&pair.a_wire).into_iter().filter(|f| f.0 == "SEND" && f.3 > 0).collect();
    assert!(sends[0].1.as_deref().unwrap().ends_with("/*"), "{:?}", sends[0]);
    assert!(pair.a_events.iter().any(|e| matches!(e, Event::ReportReceived { status: 200, .. })));
}

#[test]
fn abort_ends_the_chunk_with_hash() {
    let mut pair = Pair::new(18, |c| c.write_quantum = 4096);
    pair.run();
    pair.send(1, payload(50_000, 4), false, FailureReport::Yes);
    let Some(Output::Transmit(first)) = pair.a.poll_output() else { panic!("no chunk") };
    let first = [first.head.as_ref(), first.body.as_ref()].concat();
    pair.a_wire.extend_from_slice(&first);
    pair.feed(true, &first);
    pair.a.handle(pair.now, Input::Command(Command::Abort { handle: MessageHandle::new(1) })).unwrap();
    pair.run();
    let f = frames(&pair.a_wire);
    let last_send = f.iter().rev().find(|x| x.0 == "SEND").unwrap();
    assert_eq!(last_send.2, Flag::Abort);
    assert!(pair.b_events.iter().any(|e| matches!(e, Event::MessageAborted { .. })));
    assert!(received(&pair.b_events).is_empty());
}

#[test]
fn a_413_stops_the_message() {
    let mut pair = Pair::new(19, |c| c.reassembly.max_message_size = 10_000);
    pair.run();
    pair.send(1, payload(50_000, 4), false, FailureReport::Yes);
    pair.run();
    assert!(pair.a_events.iter().any(|e| matches!(e, Event::SendFailed { status: 413, .. })), "{:?}", pair.a_events);
    assert!(received(&pair.b_events).is_empty());
    assert_eq!(pair.a.outgoing_messages(), 0);
}

#[test]
fn link_loss_fails_pending_messages() {
    let mut pair = Pair::new(20, |_| {});
    pair.run();
    pair.send(1, payload(10, 4), false, FailureReport::Yes);
    let _ = Pair::drain(&mut pair.a, &mut pair.a_events, &mut pair.a_wire);
    pair.a.handle(pair.now, Input::LinkDown).unwrap();
    let _ = Pair::drain(&mut pair.a, &mut pair.a_events, &mut pair.a_wire);
    assert!(pair.a_events.iter().any(|e| matches!(e, Event::SendFailed { status: 0, .. })));
    assert_eq!(pair.a.poll_timeout(), None);
    assert_eq!(pair.a.open_transactions(), 0);
}

#[test]
#[ignore = "64 MiB: run in release (.ci/run does)"]
fn a_64_mib_message_streams_through() {
    let mut pair = Pair::new(21, |c| {
        c.reassembly.mode = DeliveryMode::Streaming;
        c.reassembly.max_message_size = 1 << 30;
    });
    pair.max_split = 65536;
    pair.run();
    let body = payload(64 << 20, 8);
    pair.send(1, body.clone(), true, FailureReport::Yes);
    pair.run();
    let total: usize = pair
        .b_events
        .iter()
        .map(|e| match e {
            Event::ChunkReceived { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(total, body.len());
    assert!(pair.a_events.iter().any(|e| matches!(e, Event::ReportReceived { status: 200, .. })));
}

#[test]
fn a_session_bound_to_one_connection_refuses_another_with_506() {
    use msrp_core::router::{ConnId, Route, Router};
    use msrp_core::session::refusal;
    // B's endpoint: one session, a router, and a framer per connection.
    let mut router = Router::new();
    router.add(uri(B_URI), 0usize);
    let request = |txid: &str, to: &str| {
        format!(
            "MSRP {txid} SEND\r\nTo-Path: {to}\r\nFrom-Path: {A_URI}\r\nMessage-ID: m0000003\r\n\
             Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------{txid}$\r\n"
        )
    };
    let mut route = |conn: u64, wire: String| {
        let mut framer = Framer::new(Limits::default());
        framer.handle_segment(Bytes::from(wire));
        let Some(Ok(FramerEvent::Head(head))) = framer.poll_event() else { panic!("no head") };
        let to_path: Vec<MsrpUri> = head.to_path_uris().collect();
        match router.route(ConnId::new(conn), to_path.iter()) {
            Route::Session(s) => Ok(s),
            Route::Reject(status) => Err(refusal(&head, status).map(|t| [t.head, t.end_line].concat())),
        }
    };
    assert_eq!(route(1, request("first0001", B_URI)), Ok(0));
    assert_eq!(route(1, request("again0001", B_URI)), Ok(0));
    let refused = route(2, request("other0001", B_URI)).unwrap_err().unwrap();
    assert!(refused.starts_with(b"MSRP other0001 506 "), "{}", String::from_utf8_lossy(&refused));
    let unknown = route(2, request("nosess001", "msrp://b.example.com:8888/nope;tcp")).unwrap_err().unwrap();
    let text = String::from_utf8_lossy(&unknown);
    assert!(text.starts_with("MSRP nosess001 481 ") && text.contains(&format!("To-Path: {A_URI}")), "{text}");
}

#[test]
fn a_multipart_message_arrives_with_its_parts() {
    let mut pair = Pair::new(31, |_| {});
    pair.run();
    let body = Bytes::from_static(
        b"--xyz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xyz\r\nContent-Type: text/html\r\n\r\n<b>hello</b>\r\n--xyz--\r\n",
    );
    let command = Command::Send {
        handle: MessageHandle::new(1),
        content_type: "multipart/alternative;boundary=xyz".into(),
        body,
        success_report: false,
        failure_report: FailureReport::Yes,
    };
    pair.a.handle(pair.now, Input::Command(command)).unwrap();
    pair.run();
    let parts = pair
        .b_events
        .iter()
        .find_map(|e| match e {
            Event::MessageReceived { parts, .. } => Some(parts.clone()),
            _ => None,
        })
        .unwrap();
    let got: Vec<(&str, &[u8])> = parts.iter().map(|p| (p.content_type(), p.body().as_ref())).collect();
    assert_eq!(got, vec![("text/plain", &b"hello"[..]), ("text/html", &b"<b>hello</b>"[..])]);
}

#[test]
fn a_chunk_limit_sends_a_5000_byte_message_in_three_chunks() {
    // RFC 4975 s.7.1.1: "the sender MAY simply send chunks in 2048-octet increments".
    let mut pair = Pair::new(32, |c| c.max_chunk_size = Some(2048));
    pair.run();
    let body = payload(5000, 9);
    pair.send(1, body.clone(), true, FailureReport::Yes);
    pair.run();
    let sends: Vec<_> = frames(&pair.a_wire).into_iter().filter(|f| f.0 == "SEND" && f.3 > 0).collect();
    let shape: Vec<(Option<&str>, Flag, usize)> = sends.iter().map(|f| (f.1.as_deref(), f.2, f.3)).collect();
    assert_eq!(
        shape,
        vec![
            (Some("1-2048/5000"), Flag::Continue, 2048),
            (Some("2049-4096/5000"), Flag::Continue, 2048),
            (Some("4097-5000/5000"), Flag::End, 904),
        ]
    );
    assert_eq!(received(&pair.b_events), vec![body]);
    assert!(pair.a_events.iter().any(|e| matches!(e, Event::ReportReceived { status: 200, .. })));
    assert_eq!(pair.a.poll_timeout(), None);
}

#[test]
fn streamed_pieces_shorter_than_min_shared_piece_are_copied_and_coalesced() {
    let mut pair = Pair::new(23, |c| c.reassembly.mode = DeliveryMode::Streaming);
    pair.run();
    let handle = MessageHandle::new(4);
    let start = Command::SendStream {
        handle,
        content_type: "application/octet-stream".into(),
        success_report: false,
        failure_report: FailureReport::Yes,
    };
    pair.a.handle(pair.now, Input::Command(start)).unwrap();
    // Each piece is the start of a 16 KiB read buffer of its own, queued
    // before anything is written.
    let min_shared = pair.a.config().min_shared_piece;
    let sizes = [1, 100, 5000, 3, 2047, min_shared, 10, 9000, 1];
    let mut reads = Vec::new();
    let mut expect = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let piece = payload(size, i as u64 + 1);
        let mut read = piece.to_vec();
        read.resize(16 * 1024, 0);
        let read = Bytes::from(read);
        expect.extend_from_slice(&piece);
        let data = read.slice(..size);
        let last = i + 1 == sizes.len();
        pair.a.handle(pair.now, Input::Command(Command::StreamData { handle, data, last })).unwrap();
        reads.push(read);
    }
    let mut bodies = Vec::new();
    let mut wire = Vec::new();
    while let Some(output) = pair.a.poll_output() {
        if let Output::Transmit(t) = output {
            if !t.body.is_empty() {
                bodies.push(t.body.clone());
            }
            wire.extend_from_slice(&[t.head, t.body, t.end_line].concat());
        }
    }
    // A long piece goes out as a slice of its read; short ones are copies,
    // coalesced up to the next long piece (or `min_shared_piece` bytes).
    let lens: Vec<usize> = bodies.iter().map(Bytes::len).collect();
    assert_eq!(lens, [101, 5000, 2050, min_shared, 10, 9000, 1]);
    let shared: Vec<bool> =
        bodies.iter().map(|body| reads.iter().any(|read| read.as_ptr_range().contains(&body.as_ptr()))).collect();
    assert_eq!(shared, [false, true, false, true, false, true, false]);
    assert_eq!(bodies.concat(), expect);
    // And the peer gets the bytes in order.
    pair.feed(true, &wire);
    pair.run();
    let mut got = Vec::new();
    for e in &pair.b_events {
        if let Event::ChunkReceived { offset, data, .. } = e {
            assert_eq!(*offset as usize, got.len(), "in order, never twice");
            got.extend_from_slice(data);
        }
    }
    assert_eq!(got, expect);
}
