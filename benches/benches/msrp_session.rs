//! Criterion group `msrp_session`: the MSRP session of `msrp-core` chunking
//! and encoding a 1 MiB message (`send/1MiB`), the receiver reassembling
//! 1 MiB from shuffled chunks (`reassembly/1MiB_shuffled`), a 64 MiB message
//! crossing one cut-through relay hop end to end, sender to receiver
//! (`relay/64MiB`), and one 1 MiB SEND fanned out by a relay to 100 member
//! links (`fanout/1MiB_x100`, throughput counted on the inbound MiB).
//!
//! The heap of an idle session is measured by `msrp-core/tests/alloc.rs`
//! (`an_idle_session_holds_at_most_2_kib`), which needs a counting allocator.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use msrp_core::link::{self, SessionKey};
use msrp_core::reassembly::{Delivery, DeliveryMode, Reassembler, ReassemblyConfig};
use msrp_core::relay::{self, Relay, RelayConfig};
use msrp_core::router::ConnId;
use msrp_core::session::{Command, Event, Input, LinkRole, MessageHandle, Output, Session, SessionConfig};
use msrp_core::{ByteRange, FailureReport, Flag, IdSource, MessageId, MsrpUri};

const MESSAGE: usize = 1 << 20;

/// Deterministic ids (a benchmark needs no real entropy).
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

fn uri(s: &str) -> MsrpUri {
    MsrpUri::parse_str(s).expect("a valid URI")
}

/// A session on a link that is up and bound.
fn bound_session(now: Instant) -> Session {
    let config = SessionConfig::new(
        uri("msrp://a.example.com:7777/aaaaaaaaaaaaaaaa;tcp"),
        vec![uri("msrp://b.example.com:8888/bbbbbbbbbbbbbbbb;tcp")],
        LinkRole::Active,
    );
    let mut session = Session::new(config, now, Box::new(Xorshift(0x5eed)));
    session.handle(now, Input::LinkUp).expect("link up");
    while session.poll_output().is_some() {}
    assert!(session.is_bound());
    session
}

fn bench_send(c: &mut Criterion, now: Instant) {
    let body = Bytes::from((0..MESSAGE).map(|i| (i % 251) as u8 | 0x20).collect::<Vec<u8>>());
    let mut group = c.benchmark_group("msrp_session");
    group.throughput(Throughput::Bytes(MESSAGE as u64));
    group.bench_function("send/1MiB", |b| {
        b.iter_batched_ref(
            || bound_session(now),
            |session| {
                let send = Command::Send {
                    handle: MessageHandle::new(1),
                    content_type: "application/octet-stream".into(),
                    body: body.clone(),
                    success_report: true,
                    failure_report: FailureReport::Yes,
                };
                session.handle(now, Input::Command(send)).expect("send");
                let mut written = 0;
                while let Some(output) = session.poll_output() {
                    if let Output::Transmit(t) = output {
                        written += t.len();
                        black_box(&t);
                    }
                }
                assert!(written > MESSAGE);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn bench_reassembly(c: &mut Criterion) {
    const CHUNK: usize = 2048;
    let body = Bytes::from((0..MESSAGE).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
    let mut order: Vec<usize> = (0..MESSAGE / CHUNK).collect();
    // A fixed shuffle (Fisher-Yates over xorshift).
    let mut rng = Xorshift(0xfeed);
    for i in (1..order.len()).rev() {
        let mut r = [0u8; 8];
        rng.fill(&mut r);
        order.swap(i, (u64::from_le_bytes(r) % (i as u64 + 1)) as usize);
    }
    let id = MessageId::from_text("m7Yq2Lk9reassembly").expect("a valid Message-ID");
    let config = ReassemblyConfig { mode: DeliveryMode::Buffered, ..ReassemblyConfig::default() };
    let mut group = c.benchmark_group("msrp_session");
    group.throughput(Throughput::Bytes(MESSAGE as u64));
    group.bench_function("reassembly/1MiB_shuffled", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            let mut reassembler = Reassembler::new(config.clone());
            let mut done = 0;
            for &n in &order {
                let start = (n * CHUNK) as u64 + 1;
                let range = ByteRange { start, end: Some(start + CHUNK as u64 - 1), total: Some(MESSAGE as u64) };
                let chunk = reassembler.begin_chunk(&id, Some(range), Some("text/plain")).expect("chunk");
                reassembler.chunk_data(chunk, body.slice(n * CHUNK..(n + 1) * CHUNK), &mut out).expect("data");
                let flag = if n + 1 == MESSAGE / CHUNK { Flag::End } else { Flag::Continue };
                reassembler.end_chunk(chunk, flag, &mut out).expect("end");
                for delivery in out.drain(..) {
                    if let Delivery::Complete { body, .. } = delivery {
                        done = black_box(body).len();
                    }
                }
            }
            assert_eq!(done, MESSAGE);
        });
    });
    group.finish();
}

/// A streaming session for the relay benches.
fn streaming_session(now: Instant, local: &str, remote: &str, role: LinkRole, relay_in: bool) -> Box<Session> {
    let mut config = SessionConfig::new(uri(local), vec![uri(remote)], role);
    config.reassembly.mode = DeliveryMode::Streaming;
    config.reassembly.max_message_size = 1 << 30;
    config.success_reports = !relay_in;
    Box::new(Session::new(config, now, Box::new(Xorshift(local.len() as u64 | 1))))
}

fn open(node: &mut Relay, now: Instant, key: u64, session: Box<Session>) {
    let open = link::Command::Open { key: SessionKey::new(key), session, conn: ConnId::new(key) };
    node.handle(now, relay::Input::Link(link::Input::Command(open))).expect("open");
}

/// A -> R -> B over in-memory links: transmits cross as they are (the
/// framer takes them as segments) and are acknowledged at once.
struct Hop {
    nodes: [Relay; 3],
    /// (node, conn) -> (peer node, peer conn)
    peers: Vec<((usize, ConnId), (usize, ConnId))>,
    received: u64,
}

impl Hop {
    fn new(now: Instant) -> Self {
        const A: &str = "msrp://a.example.com:7000/benchA001;tcp";
        const R_IN: &str = "msrp://r.example.com:7001/benchRin1;tcp";
        const R_OUT: &str = "msrp://r.example.com:7001/benchRout;tcp";
        const B: &str = "msrp://b.example.com:7002/benchB001;tcp";
        let mut nodes = [0, 1, 2].map(|_| Relay::new(RelayConfig::default(), now));
        open(&mut nodes[0], now, 1, streaming_session(now, A, R_IN, LinkRole::Active, false));
        open(&mut nodes[1], now, 10, streaming_session(now, R_IN, A, LinkRole::Passive, true));
        open(&mut nodes[1], now, 20, streaming_session(now, R_OUT, B, LinkRole::Active, false));
        open(&mut nodes[2], now, 1, streaming_session(now, B, R_OUT, LinkRole::Passive, false));
        let bridge = relay::Command::Bridge { inbound: SessionKey::new(10), outbound: vec![SessionKey::new(20)] };
        nodes[1].handle(now, relay::Input::Command(bridge)).expect("bridge");
        let mut hop = Self { nodes, peers: Vec::new(), received: 0 };
        hop.run(now);
        hop
    }

    fn run(&mut self, now: Instant) {
        loop {
            let mut inputs: Vec<(usize, link::Input)> = Vec::new();
            for index in 0..3 {
                while let Some(output) = self.nodes[index].poll_output() {
                    match output {
                        relay::Output::Link(link::Output::Transmit { conn, transmit }) => {
                            let &(_, (peer, peer_conn)) =
                                self.peers.iter().find(|(from, _)| *from == (index, conn)).expect("a link");
                            for data in [transmit.head, transmit.body, transmit.end_line] {
                                if !data.is_empty() {
                                    let bytes = data.len();
                                    inputs.push((peer, link::Input::Received { conn: peer_conn, data }));
                                    inputs.push((index, link::Input::Written { conn, bytes }));
                                }
                            }
                        }
                        relay::Output::Link(link::Output::Connect { conn, link }) => {
                            let peer = usize::from(link.port() - 7000);
                            let accepted = ConnId::new(100 + conn.get());
                            self.peers.push(((index, conn), (peer, accepted)));
                            self.peers.push(((peer, accepted), (index, conn)));
                            inputs.push((peer, link::Input::Accepted { conn: accepted }));
                            inputs.push((index, link::Input::Connected { conn }));
                        }
                        relay::Output::Link(link::Output::Event {
                            event: Event::ChunkReceived { data, .. }, ..
                        }) => self.received += black_box(data).len() as u64,
                        _ => {}
                    }
                }
            }
            if inputs.is_empty() {
                return;
            }
            for (index, input) in inputs {
                self.nodes[index].handle(now, relay::Input::Link(input)).expect("input");
            }
        }
    }
}

fn bench_relay(c: &mut Criterion, now: Instant) {
    const SIZE: usize = 64 << 20;
    let body = Bytes::from((0..SIZE).map(|i| (i % 251) as u8 | 0x20).collect::<Vec<u8>>());
    let mut group = c.benchmark_group("msrp_session");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("relay/64MiB", |b| {
        b.iter_batched_ref(
            || Hop::new(now),
            |hop| {
                let send = Command::Send {
                    handle: MessageHandle::new(1),
                    content_type: "application/octet-stream".into(),
                    body: body.clone(),
                    success_report: true,
                    failure_report: FailureReport::Yes,
                };
                let input = link::Input::Command(link::Command::Session { key: SessionKey::new(1), command: send });
                hop.nodes[0].handle(now, relay::Input::Link(input)).expect("send");
                hop.run(now);
                assert_eq!(hop.received, SIZE as u64);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

/// A relay with one inbound session and 100 member links that are up.
fn fanout_relay(now: Instant) -> Relay {
    const CF_IN: &str = "msrp://cf.example.com:7001/cfInbound;tcp";
    const A: &str = "msrp://a.example.com:7777/sessA1;tcp";
    let mut relay = Relay::new(RelayConfig::default(), now);
    open(&mut relay, now, 10, streaming_session(now, CF_IN, A, LinkRole::Passive, true));
    relay.handle(now, relay::Input::Link(link::Input::Accepted { conn: ConnId::new(1) })).expect("accept");
    let mut members = Vec::new();
    for m in 0..100u64 {
        let key = 100 + m;
        let local = format!("msrp://cf.example.com:7001/cfOut{m}x;tcp");
        let remote = format!("msrp://m{m}.example.com:9000/member{m}x;tcp");
        open(&mut relay, now, key, streaming_session(now, &local, &remote, LinkRole::Active, false));
        relay.handle(now, relay::Input::Link(link::Input::Connected { conn: ConnId::new(key) })).expect("up");
        members.push(SessionKey::new(key));
    }
    let bridge = relay::Command::Bridge { inbound: SessionKey::new(10), outbound: members };
    relay.handle(now, relay::Input::Command(bridge)).expect("bridge");
    drain_acknowledged(&mut relay, now);
    relay
}

/// Drains the relay, acknowledging what each link was given at once (one
/// `Written` per link and round, as a runtime's write loop would); returns
/// the body bytes written.
fn drain_acknowledged(relay: &mut Relay, now: Instant) -> usize {
    let mut body = 0;
    let mut written: Vec<(ConnId, usize)> = Vec::new();
    loop {
        while let Some(output) = relay.poll_output() {
            if let relay::Output::Link(link::Output::Transmit { conn, transmit }) = output {
                body += transmit.body.len();
                match written.iter_mut().find(|(c, _)| *c == conn) {
                    Some((_, bytes)) => *bytes += transmit.len(),
                    None => written.push((conn, transmit.len())),
                }
            }
        }
        if written.is_empty() {
            return body;
        }
        for (conn, bytes) in written.drain(..) {
            relay.handle(now, relay::Input::Link(link::Input::Written { conn, bytes })).expect("written");
        }
    }
}

fn bench_fanout(c: &mut Criterion, now: Instant) {
    let mut frame = format!(
        "MSRP fanout0001 SEND\r\nTo-Path: msrp://cf.example.com:7001/cfInbound;tcp\r\n\
         From-Path: msrp://a.example.com:7777/sessA1;tcp\r\nMessage-ID: m7Yq2Lk9fan\r\n\
         Byte-Range: 1-{MESSAGE}/{MESSAGE}\r\nContent-Type: text/plain\r\n\r\n"
    )
    .into_bytes();
    frame.extend((0..MESSAGE).map(|i| if i % 80 == 79 { b'\n' } else { b'a' + (i % 26) as u8 }));
    frame.extend_from_slice(b"\r\n-------fanout0001$\r\n");
    let frame = Bytes::from(frame);
    let segments: Vec<Bytes> =
        (0..frame.len()).step_by(64 * 1024).map(|i| frame.slice(i..(i + 64 * 1024).min(frame.len()))).collect();
    let mut group = c.benchmark_group("msrp_session");
    group.throughput(Throughput::Bytes(MESSAGE as u64));
    group.bench_function("fanout/1MiB_x100", |b| {
        b.iter_batched_ref(
            || fanout_relay(now),
            |relay| {
                let mut body = 0;
                for segment in &segments {
                    let input = link::Input::Received { conn: ConnId::new(1), data: segment.clone() };
                    relay.handle(now, relay::Input::Link(input)).expect("received");
                    body += drain_acknowledged(relay, now);
                }
                assert_eq!(body, MESSAGE * 100);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bench_msrp_session(c: &mut Criterion) {
    #[expect(clippy::disallowed_methods, reason = "one real epoch for the sessions' virtual clock")]
    let now = Instant::now();
    bench_send(c, now);
    bench_reassembly(c);
    bench_relay(c, now);
    bench_fanout(c, now);
}

/// The criterion group; `criterion_group!` emits an undocumented `pub fn`.
mod group {
    #![allow(unreachable_pub, reason = "criterion_group! always emits a pub fn")]
    criterion::criterion_group!(msrp_session, super::bench_msrp_session);
}
criterion_main!(group::msrp_session);
