//! Criterion group `msrp_session`: the MSRP session of `msrp-core` chunking
//! and encoding a 1 MiB message (`send/1MiB`), and the receiver reassembling
//! 1 MiB from shuffled chunks (`reassembly/1MiB_shuffled`).
//!
//! The heap of an idle session is measured by `msrp-core/tests/alloc.rs`
//! (`an_idle_session_holds_at_most_2_kib`), which needs a counting allocator.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_main, BatchSize, Criterion, Throughput};
use msrp_core::reassembly::{Delivery, DeliveryMode, Reassembler, ReassemblyConfig};
use msrp_core::session::{Command, Input, LinkRole, MessageHandle, Output, Session, SessionConfig};
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

fn bench_msrp_session(c: &mut Criterion) {
    #[expect(clippy::disallowed_methods, reason = "one real epoch for the sessions' virtual clock")]
    let now = Instant::now();
    bench_send(c, now);
    bench_reassembly(c);
}

/// The criterion group; `criterion_group!` emits an undocumented `pub fn`.
mod group {
    #![allow(unreachable_pub, reason = "criterion_group! always emits a pub fn")]
    criterion::criterion_group!(msrp_session, super::bench_msrp_session);
}
criterion_main!(group::msrp_session);
