//! Criterion group `cpm_roles`: the whole CPM flow of seed 001 FIG1 in the
//! deterministic simulator (`cpm-roles::sim`), entities and all.
//!
//! - `group/1MiB_x10`: a 1 MiB message from A to a pre-defined group of ten
//!   CPM members (INVITEs, links, SEND relayed through PF(A), the CF's switch
//!   and each PF(B), REPORTs, IMDNs, BYEs); throughput counted on the bytes
//!   delivered (10 MiB per iteration); MSRP frames are not recorded in the
//!   trace. `group/1MiB_x10_traced`: the same with every frame recorded.
//! - `setup/x100`: a group session with 100 members set up and torn down
//!   (a one-byte message), throughput in member sessions.
//!
//! Run: `cargo bench -p benches --bench cpm_roles`.

use std::time::Instant;

use cpm_roles::sim::{Scenario, TraceEvent};
use criterion::measurement::WallTime;
use criterion::{criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};

fn scenario(members: usize, size: usize) -> Scenario {
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = members;
    scenario.size = size;
    scenario
}

/// One group delivery per iteration (`frames`: every MSRP frame recorded
/// in the trace too), checked by the bytes delivered.
fn bench_delivery(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    scenario: &Scenario,
    epoch: Instant,
    frames: bool,
) {
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || {
                let mut sim = scenario.build(epoch).expect("built");
                sim.set_frame_trace(frames);
                sim
            },
            |sim| {
                sim.run(10_000_000);
                let delivered: usize = sim
                    .trace()
                    .iter()
                    .map(|e| match e {
                        TraceEvent::Deliver { bytes, .. } => *bytes,
                        _ => 0,
                    })
                    .sum();
                assert_eq!(delivered, 10 << 20);
            },
            BatchSize::PerIteration,
        );
    });
}

fn bench_group(c: &mut Criterion, epoch: Instant) {
    let scenario = scenario(10, 1 << 20);
    let mut group = c.benchmark_group("cpm_roles");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(10 << 20));
    for (name, frames) in [("group/1MiB_x10", false), ("group/1MiB_x10_traced", true)] {
        bench_delivery(&mut group, name, &scenario, epoch, frames);
    }
    let setup = self::scenario(100, 1);
    group.throughput(Throughput::Elements(100));
    group.bench_function("setup/x100", |b| {
        b.iter_batched_ref(
            || setup.build(epoch).expect("built"),
            |sim| {
                sim.run(10_000_000);
                assert!(sim.is_quiet());
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn bench_cpm_roles(c: &mut Criterion) {
    #[expect(clippy::disallowed_methods, reason = "one real epoch for the simulator's virtual clock")]
    let epoch = Instant::now();
    bench_group(c, epoch);
}

/// The criterion group; `criterion_group!` emits an undocumented `pub fn`.
mod group {
    #![allow(unreachable_pub, reason = "criterion_group! always emits a pub fn")]
    criterion::criterion_group!(cpm_roles, super::bench_cpm_roles);
}
criterion_main!(group::cpm_roles);
