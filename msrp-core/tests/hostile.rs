//! A hostile peer against the session, the reassembler and the link
//! endpoint: every input below once grew memory without bound or pinned
//! state forever. The heap is measured by a counting global allocator that
//! keeps one live-bytes figure per thread, so tests running side by side do
//! not disturb each other's figures.
#![allow(clippy::unwrap_used, reason = "test code: a failure is a panic")]
#![allow(unsafe_code, reason = "a counting GlobalAlloc is unsafe to implement; it only forwards to System")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use msrp_core::link::{self, Endpoint, EndpointConfig, LinkTimeout, SessionKey};
use msrp_core::reassembly::{DeliveryMode, Reassembler, ReassemblyConfig};
use msrp_core::relay::{self, Relay, RelayConfig};
use msrp_core::router::ConnId;
use msrp_core::session::{Command, Event, Input, LinkRole, MessageHandle, Output, Session, SessionConfig};
use msrp_core::{ByteRange, FailureReport, Flag, MessageId};

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread's slot is gone while the thread shuts down.
    let _ = LIVE.try_with(|live| live.set(live.get() + delta));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes this thread has allocated and not freed.
fn live() -> isize {
    LIVE.with(Cell::get)
}

#[path = "support/peers.rs"]
mod peers;
use peers::{epoch, uri, Counter, ME, PEER};

/// A bodiless SEND to `to` (a keep-alive: RFC 4975 s.7.1.1 lets it carry no Message-ID).
fn bodiless_send(n: u64, to: &str) -> String {
    format!("MSRP t{n:08} SEND\r\nTo-Path: {to}\r\nFrom-Path: {PEER}\r\n-------t{n:08}$\r\n")
}

/// Feeds `frames` requests as a runtime that honours `PauseReading` and
/// never acknowledges a write would, `per_read` requests a read, each read
/// split off a read buffer of at least 16 KiB: returns how many it fed
/// before the endpoint stopped reading.
fn flood(endpoint: &mut Endpoint, now: Instant, conn: ConnId, to: &str, frames: u64, per_read: u64) -> u64 {
    let mut paused = false;
    let mut fed = 0;
    while fed < frames && !paused {
        let segment: String = (fed..fed + per_read).map(|n| bodiless_send(n, to)).collect();
        fed += per_read;
        let data = pinned(segment.as_bytes(), segment.len().max(16 * 1024));
        endpoint.handle(now, link::Input::Received { conn, data }).unwrap();
        while let Some(output) = endpoint.poll_output() {
            paused |= matches!(output, link::Output::PauseReading { conn: c } if c == conn);
        }
    }
    fed
}

/// Opens session 1, passive, at `ME`.
fn open_passive(endpoint: &mut Endpoint, now: Instant) {
    let session = SessionConfig::new(uri(ME), vec![uri(PEER)], LinkRole::Passive);
    let session = Box::new(Session::new(session, now, Box::new(Counter(1))));
    let open = link::Command::Open { key: SessionKey::new(1), session, conn: ConnId::new(0) };
    endpoint.handle(now, link::Input::Command(open)).unwrap();
}

fn outputs(endpoint: &mut Endpoint) -> Vec<link::Output> {
    std::iter::from_fn(|| endpoint.poll_output()).collect()
}

#[test]
fn a_peer_that_never_reads_cannot_queue_answers_without_bound() {
    // Both kinds of owed answers: the endpoint's refusals (481, no such
    // session) and a session's responses (200 to each SEND).
    for to in ["msrp://me.example.com:7000/nobody;tcp", ME] {
        let now = epoch();
        let before = live();
        let mut endpoint = Endpoint::new(EndpointConfig::default(), now);
        open_passive(&mut endpoint, now);
        let conn = ConnId::new(5);
        endpoint.handle(now, link::Input::Accepted { conn }).unwrap();
        // 100 requests a read, as a socket would hand them over.
        let fed = flood(&mut endpoint, now, conn, to, 200_000, 100);
        assert!(fed < 200_000, "{to}: reading was never stopped");
        assert!(endpoint.is_paused(conn));
        let held = live() - before;
        eprintln!("owed answers ({to}): {held} bytes live after {fed} requests");
        // 1024 answers of about 150 bytes, the 64 KiB written and not
        // acknowledged, one unread segment: far below a megabyte.
        assert!(held < 1 << 20, "{to}: {held} bytes live after {fed} requests");
        // The peer never reads: the link goes at the deadline.
        let later = now + EndpointConfig::default().owed_timeout;
        assert_eq!(endpoint.poll_timeout(), Some(later));
        endpoint.handle(later, link::Input::Timeout).unwrap();
        let out = outputs(&mut endpoint);
        assert!(out.contains(&link::Output::LinkTimedOut { conn, timeout: LinkTimeout::PeerNotReading }), "{out:?}");
        assert!(out.contains(&link::Output::Close { conn }));
        assert_eq!(endpoint.link_count(), 0);
        drop(endpoint);
        assert!(live() - before < 4096, "{to}: {} bytes left after the endpoint went", live() - before);
    }
}

#[test]
fn owed_answers_do_not_keep_the_reads_their_requests_came_in() {
    // One request per 16 KiB read. An owed answer that kept a slice of its
    // request (its transaction id) would keep the request's whole read: 16
    // MiB behind 1024 answers.
    for to in ["msrp://me.example.com:7000/nobody;tcp", ME] {
        let now = epoch();
        let before = live();
        let mut endpoint = Endpoint::new(EndpointConfig::default(), now);
        open_passive(&mut endpoint, now);
        let conn = ConnId::new(5);
        endpoint.handle(now, link::Input::Accepted { conn }).unwrap();
        let fed = flood(&mut endpoint, now, conn, to, 200_000, 1);
        assert!(endpoint.is_paused(conn), "{to}: reading was never stopped");
        let held = live() - before;
        eprintln!("owed answers ({to}), one request a read: {held} bytes live after {fed} requests");
        assert!(held < 1 << 20, "{to}: {held} bytes live after {fed} requests");
    }
}

#[test]
fn reading_resumes_once_the_peer_reads_the_answers() {
    let now = epoch();
    let mut endpoint = Endpoint::new(EndpointConfig::default(), now);
    let conn = ConnId::new(5);
    endpoint.handle(now, link::Input::Accepted { conn }).unwrap();
    flood(&mut endpoint, now, conn, "msrp://me.example.com:7000/nobody;tcp", 200_000, 100);
    assert!(endpoint.is_paused(conn));
    // The peer reads everything: every written byte is acknowledged until
    // the endpoint has nothing more to say.
    let mut answers = 0;
    let mut resumed = false;
    loop {
        let written = endpoint.in_flight(conn);
        if written == 0 {
            break;
        }
        endpoint.handle(now, link::Input::Written { conn, bytes: written }).unwrap();
        for output in outputs(&mut endpoint) {
            resumed |= output == link::Output::ResumeReading { conn };
            answers += usize::from(matches!(output, link::Output::Transmit { .. }));
        }
    }
    assert!(resumed, "reading resumed");
    assert!(!endpoint.is_paused(conn));
    assert!(answers > 1024, "the held requests were read and answered too: {answers}");
}

#[test]
fn an_accepted_link_that_binds_nothing_is_closed_and_an_idle_one_too() {
    let now = epoch();
    let config = EndpointConfig::default();
    let mut endpoint = Endpoint::new(config.clone(), now);
    let silent = ConnId::new(1);
    endpoint.handle(now, link::Input::Accepted { conn: silent }).unwrap();
    assert_eq!(endpoint.poll_timeout(), Some(now + config.bind_timeout));
    endpoint.handle(now + config.bind_timeout, link::Input::Timeout).unwrap();
    let out = outputs(&mut endpoint);
    assert!(out.contains(&link::Output::LinkTimedOut { conn: silent, timeout: LinkTimeout::NeverBound }));
    assert_eq!(endpoint.link_count(), 0);

    // A bound link that goes quiet lasts until the idle deadline.
    let now = now + config.bind_timeout;
    open_passive(&mut endpoint, now);
    let conn = ConnId::new(2);
    endpoint.handle(now, link::Input::Accepted { conn }).unwrap();
    endpoint.handle(now, link::Input::Received { conn, data: Bytes::from(bodiless_send(1, ME)) }).unwrap();
    let written = outputs(&mut endpoint).iter().filter(|o| matches!(o, link::Output::Transmit { .. })).count();
    assert_eq!(written, 1, "the SEND was answered");
    endpoint.handle(now, link::Input::Written { conn, bytes: endpoint.in_flight(conn) }).unwrap();
    let idle = config.idle_timeout.unwrap();
    assert_eq!(endpoint.poll_timeout(), Some(now + idle), "bound: only the idle deadline is left");
    endpoint.handle(now + idle, link::Input::Timeout).unwrap();
    let out = outputs(&mut endpoint);
    assert!(out.contains(&link::Output::LinkTimedOut { conn, timeout: LinkTimeout::Idle }), "{out:?}");
    assert!(out.contains(&link::Output::LinkDown { conn, sessions: vec![SessionKey::new(1)] }));
}

/// A frame's bytes inside a segment `size` bytes long (the rest is padding
/// the runtime read with it), sliced out as the framer would.
fn pinned(piece: &[u8], size: usize) -> Bytes {
    let mut segment = vec![0; size];
    segment[..piece.len()].copy_from_slice(piece);
    Bytes::from(segment).slice(..piece.len())
}

#[test]
fn small_held_pieces_do_not_keep_their_segments_alive() {
    let message = MessageId::from_text("pinpinpin1").unwrap();
    let mut deliveries = Vec::new();
    for mode in [DeliveryMode::Buffered, DeliveryMode::Streaming] {
        let before = live();
        let config = ReassemblyConfig { mode, ..ReassemblyConfig::default() };
        let mut reassembler = Reassembler::new(config);
        // 1000 one-byte chunks out of order (every other byte), each from
        // its own 16 KiB read: 16 MiB of segments behind 1000 held bytes.
        for i in 0..1000u64 {
            let at = 2 + 2 * i;
            let range = ByteRange { start: at, end: Some(at), total: Some(4000) };
            let chunk = reassembler.begin_chunk(&message, Some(range), Some("text/plain")).unwrap();
            reassembler.chunk_data(chunk, pinned(b"x", 16 * 1024), &mut deliveries).unwrap();
            reassembler.end_chunk(chunk, Flag::Continue, &mut deliveries).unwrap();
        }
        assert_eq!(reassembler.held_bytes(), 1000);
        let held = live() - before;
        eprintln!("out of order, {mode:?}: {held} bytes live for 1000 one-byte pieces in 16 KiB reads");
        assert!(held < 256 * 1024, "{mode:?}: {held} bytes live for 1000 held bytes");
        drop(reassembler);
    }

    // Streaming in order: 4096 chunks of 16 bytes, each from its own 16 KiB
    // read (64 MiB of segments); the deliveries are consumed as they come.
    let before = live();
    let config = ReassemblyConfig { mode: DeliveryMode::Streaming, ..ReassemblyConfig::default() };
    let mut reassembler = Reassembler::new(config);
    for i in 0..4096u64 {
        let range = ByteRange { start: 1 + 16 * i, end: Some(16 * (i + 1)), total: None };
        let chunk = reassembler.begin_chunk(&message, Some(range), Some("text/plain")).unwrap();
        reassembler.chunk_data(chunk, pinned(&[7; 16], 16 * 1024), &mut deliveries).unwrap();
        reassembler.end_chunk(chunk, Flag::Continue, &mut deliveries).unwrap();
        deliveries.clear();
    }
    assert_eq!(reassembler.window_bytes(), 64 * 1024);
    let held = live() - before;
    eprintln!("streaming window: {held} bytes live after 4096 16-byte pieces in 16 KiB reads");
    assert!(held < 256 * 1024, "{held} bytes live behind a 64 KiB overlap window");
}

/// A relay bridging an inbound session (key 10, link 1) to one member
/// (key 20, link 20) whose streamed pieces are shared from `min_shared_piece`
/// bytes on.
fn relay_with_one_member(min_shared_piece: usize) -> (Relay, Instant) {
    let now = epoch();
    let mut relay = Relay::new(RelayConfig::default(), now);
    let mut inbound = SessionConfig::new(uri(ME), vec![uri(PEER)], LinkRole::Passive);
    inbound.reassembly.mode = DeliveryMode::Streaming;
    inbound.success_reports = false;
    // The relay copies pieces shorter than its inbound session's setting once.
    inbound.min_shared_piece = min_shared_piece;
    let mut member = SessionConfig::new(
        uri("msrp://me.example.com:7000/memberOUT001;tcp"),
        vec![uri("msrp://member.example.com:9100/memberIN0001;tcp")],
        LinkRole::Active,
    );
    member.min_shared_piece = min_shared_piece;
    for (key, config) in [(10, inbound), (20, member)] {
        let session = Box::new(Session::new(config, now, Box::new(Counter(key))));
        let open = link::Command::Open { key: SessionKey::new(key), session, conn: ConnId::new(key) };
        relay.handle(now, relay::Input::Link(link::Input::Command(open))).unwrap();
    }
    relay.handle(now, relay::Input::Link(link::Input::Accepted { conn: ConnId::new(1) })).unwrap();
    relay.handle(now, relay::Input::Link(link::Input::Connected { conn: ConnId::new(20) })).unwrap();
    let bridge = relay::Command::Bridge { inbound: SessionKey::new(10), outbound: vec![SessionKey::new(20)] };
    relay.handle(now, relay::Input::Command(bridge)).unwrap();
    while relay.poll_output().is_some() {}
    (relay, now)
}

#[test]
fn a_member_that_never_reads_does_not_keep_the_reads_its_pieces_came_in() {
    // A message streams in, 100 bytes per 16 KiB read, to a member whose
    // peer reads nothing: its link window fills and the rest waits in its
    // session at the relay. Pieces kept shared (`min_shared_piece` 0, as
    // before the copies) keep their reads; copied (once, at the relay), only
    // their bytes.
    let mut figures = Vec::new();
    for min_shared_piece in [0, SessionConfig::new(uri(ME), Vec::new(), LinkRole::Active).min_shared_piece] {
        let before = live();
        let (mut relay, now) = relay_with_one_member(min_shared_piece);
        let head = format!(
            "MSRP pin00001 SEND\r\nTo-Path: {ME}\r\nFrom-Path: {PEER}\r\nMessage-ID: pinned0001\r\n\
             Byte-Range: 1-*/*\r\nContent-Type: text/plain\r\n\r\n"
        );
        let reads = std::iter::once(pinned(head.as_bytes(), 16 * 1024))
            .chain((0..2000).map(|_| pinned(&[b'a'; 100], 16 * 1024)));
        for data in reads {
            relay.handle(now, relay::Input::Link(link::Input::Received { conn: ConnId::new(1), data })).unwrap();
            // The transmits go to a socket whose peer never reads: never `Written`.
            while relay.poll_output().is_some() {}
        }
        let queued = relay.endpoint().session(SessionKey::new(20)).unwrap().queued_bytes();
        let held = usize::try_from(live() - before).unwrap();
        eprintln!("min_shared_piece {min_shared_piece}: {queued} bytes queued for the member, {held} bytes live");
        figures.push((queued, held));
        drop(relay);
    }
    let [(shared_queued, shared_held), (queued, held)] = figures[..] else { unreachable!() };
    assert_eq!(shared_queued, queued);
    assert!(queued > 100_000, "the member's window filled: {queued} bytes queued");
    // Shared: a 16 KiB read behind every 100 bytes queued.
    assert!(shared_held > 100 * queued, "{shared_held} bytes live for {queued} queued, shared");
    // Copied: the queued bytes (coalesced, at most twice their size), the
    // link window's worth in flight, the overlap window, the relay's state.
    assert!(held < 2 * queued + 512 * 1024, "{held} bytes live for {queued} queued");
}

/// A standalone session on a link of its own, fed raw bytes.
fn session(role: LinkRole, tune: impl Fn(&mut SessionConfig)) -> (Session, Instant) {
    let now = epoch();
    let mut config = SessionConfig::new(uri(ME), vec![uri(PEER)], role);
    tune(&mut config);
    let mut session = Session::new(config, now, Box::new(Counter(7)));
    session.handle(now, Input::LinkUp).unwrap();
    (session, now)
}

fn drain(session: &mut Session) -> (Vec<Event>, Vec<String>) {
    let (mut events, mut wire) = (Vec::new(), Vec::new());
    while let Some(output) = session.poll_output() {
        match output {
            Output::Event(event) => events.push(event),
            Output::Transmit(t) => {
                wire.push(String::from_utf8_lossy(&[t.head, t.body, t.end_line].concat()).into_owned());
            }
        }
    }
    (events, wire)
}

fn report(n: u64, to: &str, message_id: &MessageId, status: u16, range: &str) -> Bytes {
    Bytes::from(format!(
        "MSRP r{n:08} REPORT\r\nTo-Path: {to}\r\nFrom-Path: {PEER}\r\nMessage-ID: {message_id}\r\n\
         Byte-Range: {range}\r\nStatus: 000 {status} x\r\n-------r{n:08}$\r\n"
    ))
}

/// Sends a 2000-byte message asking for a success REPORT and answers its
/// chunk with 200; returns the session and its Message-ID.
fn sent_message() -> (Session, Instant, MessageId) {
    let (mut session, now) = session(LinkRole::Active, |_| {});
    let send = Command::Send {
        handle: MessageHandle::new(1),
        content_type: "text/plain".into(),
        body: Bytes::from(vec![b'a'; 2000]),
        success_report: true,
        failure_report: FailureReport::Yes,
    };
    session.handle(now, Input::Command(send)).unwrap();
    let (_, wire) = drain(&mut session);
    let chunk = wire.iter().find(|w| w.contains(" SEND\r\n") && w.contains("Message-ID")).unwrap();
    let header = |name: &str| {
        let line = chunk.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].trim().to_owned()
    };
    let message_id = MessageId::from_text(&header("Message-ID:")).unwrap();
    let transaction = chunk.split(' ').nth(1).unwrap().to_owned();
    let ok = format!("MSRP {transaction} 200 OK\r\nTo-Path: {ME}\r\nFrom-Path: {PEER}\r\n-------{transaction}$\r\n");
    session.handle(now, Input::Received(Bytes::from(ok))).unwrap();
    let (events, _) = drain(&mut session);
    assert!(events.contains(&Event::MessageSent { handle: MessageHandle::new(1) }), "{events:?}");
    (session, now, message_id)
}

#[test]
fn a_partial_success_report_is_not_delivery() {
    let (mut session, now, message_id) = sent_message();
    session.handle(now, Input::Received(report(1, ME, &message_id, 200, "1-1000/2000"))).unwrap();
    let (events, wire) = drain(&mut session);
    assert!(!events.iter().any(|e| matches!(e, Event::MessageDelivered { .. })), "{events:?}");
    assert!(wire.is_empty(), "a REPORT is never answered: {wire:?}");
    // The rest of the range completes the delivery; once.
    session.handle(now, Input::Received(report(2, ME, &message_id, 200, "1001-2000/2000"))).unwrap();
    let (events, _) = drain(&mut session);
    assert!(events.contains(&Event::MessageDelivered { handle: MessageHandle::new(1) }), "{events:?}");
    assert_eq!(session.poll_timeout(), None, "nothing is waited for any more");
}

#[test]
fn the_wait_for_a_success_report_ends_at_its_deadline() {
    let (mut session, now, _) = sent_message();
    let deadline = now + Duration::from_secs(30);
    assert_eq!(session.poll_timeout(), Some(deadline));
    session.handle(deadline, Input::Timeout).unwrap();
    let (events, _) = drain(&mut session);
    assert_eq!(events, [Event::ReportTimedOut { handle: MessageHandle::new(1) }]);
    assert_eq!(session.poll_timeout(), None);
}

#[test]
fn reports_are_never_answered_and_a_refused_request_binds_nothing() {
    let (mut session, now) = session(LinkRole::Passive, |_| {});
    let other = "msrp://me.example.com:7000/someoneElse1;tcp";
    // A REPORT for another session: no 481 (RFC 4975 s.7.1.2).
    let message_id = MessageId::from_text("abcdef").unwrap();
    session.handle(now, Input::Received(report(1, other, &message_id, 200, "1-5/5"))).unwrap();
    let (_, wire) = drain(&mut session);
    assert!(wire.is_empty(), "{wire:?}");
    // A SEND for another session is refused, and the session stays unbound.
    session.handle(now, Input::Received(Bytes::from(bodiless_send(2, other)))).unwrap();
    let (events, wire) = drain(&mut session);
    assert!(matches!(wire.as_slice(), [w] if w.contains(" 481 ")), "{wire:?}");
    assert!(!session.is_bound() && !events.contains(&Event::Bound), "{events:?}");
    // A REPORT whose head breaks the grammar is not answered with 400 either.
    let broken = "MSRP r0000003 REPORT\r\nTo-Path: {ME}\r\nFrom-Path: {PEER}\r\nMessage-ID: abc\r\nByte-Range: x\r\n\
                  Status: 000 200 x\r\n-------r0000003$\r\n";
    session.handle(now, Input::Received(Bytes::from(broken.replace("{ME}", ME).replace("{PEER}", PEER)))).unwrap();
    let (events, wire) = drain(&mut session);
    assert!(events.iter().any(|e| matches!(e, Event::PeerError { .. })), "{events:?}");
    assert!(wire.is_empty(), "{wire:?}");
    // Its own request binds it.
    session.handle(now, Input::Received(Bytes::from(bodiless_send(4, ME)))).unwrap();
    let (events, _) = drain(&mut session);
    assert!(session.is_bound() && events.contains(&Event::Bound));
}

/// A configured wait too long to add to the clock (`Duration::MAX`, "no
/// limit") is about never, not a panic: a session's transaction and REPORT
/// waits, an endpoint's link deadlines.
#[test]
fn endless_configured_waits_do_not_panic() {
    let (mut session, now) = session(LinkRole::Active, |config| {
        config.transaction_timeout = Duration::MAX;
        config.report_timeout = Duration::MAX;
    });
    let send = Command::Send {
        handle: MessageHandle::new(1),
        content_type: "text/plain".into(),
        body: Bytes::from_static(b"hello"),
        success_report: true,
        failure_report: FailureReport::Yes,
    };
    session.handle(now, Input::Command(send)).unwrap();
    while session.poll_transmit(false).is_some() {}
    assert!(session.poll_timeout().is_some_and(|at| at > now + Duration::from_secs(86_400)));
    let config = EndpointConfig {
        bind_timeout: Duration::MAX,
        idle_timeout: Some(Duration::MAX),
        owed_timeout: Duration::MAX,
        ..EndpointConfig::default()
    };
    let mut endpoint = Endpoint::new(config, now);
    endpoint.handle(now, link::Input::Accepted { conn: ConnId::new(1) }).unwrap();
    assert!(endpoint.poll_timeout().is_some_and(|at| at > now + Duration::from_secs(86_400)));
}
