//! `e2e/loopback_5MiB`: the demo's delivery without printing: A, PF-A, CF,
//! PF-B1..3, B1..3, the ISF and an IWF on the `cpm-node` runtime (tokio,
//! 127.0.0.1 sockets) carry 5 MiB from A to three CPM members and one
//! non-CPM member (001-fig1, SIP and MSRP over TCP, 2048-byte chunks as in
//! the figures), from the first INVITE to A's outcome after every member's
//! delivery; starting the entities and stopping them are outside the
//! measured time, and no quiet wait is inside it.
//! `e2e/loopback_5MiB_one_chunk`: the same, the message in one chunk.
//!
//! Reference row `e2e/tcp_forwarders_5MiB`: the same topology of plain TCP
//! forwarders (`std::io::copy`), the same hops (A -> PF-A -> CF, the CF
//! copying to four links, PF-B -> B for the CPM members, straight to the
//! IWF for the non-CPM one) carrying the same bytes, with no protocol.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use cpm_node::demo::random_bytes;
use cpm_node::host::{now, Host, HostEvent, HostOptions, Topology};
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::{Event, Input, Outcome, Output};
use criterion::{criterion_main, Criterion, Throughput};

const SIZE: usize = 5 * 1024 * 1024;

fn scenario() -> Scenario {
    let mut scenario = Scenario::figure("001-fig1").unwrap_or_else(|e| panic!("{e}"));
    scenario.members = 3;
    scenario.non_cpm = 1;
    scenario.size = SIZE;
    scenario
}

/// `iterations` deliveries through the entities, each timed from the
/// command to A's outcome (every member got the message intact, or it
/// panics).
fn loopback(runtime: &tokio::runtime::Runtime, scenario: &Scenario, body: &Bytes, iterations: u64) -> Duration {
    let mut measured = Duration::ZERO;
    for _ in 0..iterations {
        measured += runtime.block_on(async {
            let mut topology = Topology::new();
            scenario.populate(&mut topology, now(), body.clone()).unwrap_or_else(|e| panic!("{e}"));
            // The scenario's command to A waits until the clock starts.
            let command = topology.take_inputs();
            let mut host = Host::start(topology, HostOptions::default()).await.unwrap_or_else(|e| panic!("{e}"));
            let start = now();
            for (index, input) in command {
                host.input(index, input).await;
            }
            let (mut intact, mut outcome) = (0, None);
            while intact < 4 || outcome.is_none() {
                let said = host.next_output().await.unwrap_or_else(|| panic!("the host stopped"));
                let HostEvent::Output(Output::Event { session, event }) = said.event else { continue };
                match event {
                    Event::MessageDelivered { body: got } => intact += usize::from(got == *body),
                    Event::DeliverToNonCpm { delivery, payload, .. } => {
                        intact += usize::from(payload == *body);
                        host.input(said.entity, Input::NonCpmAck { delivery, status: 200 }).await;
                    }
                    Event::Outcome { outcome: o } if session == Some(SCENARIO_SESSION) => outcome = Some(o),
                    _ => {}
                }
            }
            let elapsed = now().duration_since(start);
            assert_eq!(outcome, Some(Outcome::Delivered));
            host.shutdown().await;
            elapsed
        });
    }
    measured
}

/// Writes everything read to several streams.
struct Tee(Vec<TcpStream>);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for stream in &mut self.0 {
            stream.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listener and a thread that accepts one connection and copies it to
/// `next` (every stream of it), closing them at the end.
fn forwarder(next: Vec<TcpStream>) -> io::Result<(TcpStream, thread::JoinHandle<io::Result<u64>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let upstream = TcpStream::connect(listener.local_addr()?)?;
    let handle = thread::spawn(move || {
        let (mut input, _) = listener.accept()?;
        let mut tee = Tee(next);
        let copied = io::copy(&mut input, &mut tee)?;
        for stream in &tee.0 {
            stream.shutdown(std::net::Shutdown::Write)?;
        }
        Ok(copied)
    });
    Ok((upstream, handle))
}

/// A sink: counts what arrives on one connection.
fn sink() -> io::Result<(TcpStream, thread::JoinHandle<io::Result<u64>>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let upstream = TcpStream::connect(listener.local_addr()?)?;
    let handle = thread::spawn(move || {
        let (mut input, _) = listener.accept()?;
        let mut total = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match input.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    Ok((upstream, handle))
}

/// The same bytes through plain forwarders with the same hops.
fn forwarders(body: &[u8]) -> io::Result<u64> {
    let mut sinks = Vec::new();
    let mut threads = Vec::new();
    let mut cf_out = Vec::new();
    for _ in 0..3 {
        let (to_b, b) = sink()?;
        let (to_pfb, pfb) = forwarder(vec![to_b])?;
        sinks.push(b);
        threads.push(pfb);
        cf_out.push(to_pfb);
    }
    let (to_iwf, iwf) = sink()?;
    sinks.push(iwf);
    cf_out.push(to_iwf);
    let (to_cf, cf) = forwarder(cf_out)?;
    let (mut to_pfa, pfa) = forwarder(vec![to_cf])?;
    threads.extend([cf, pfa]);
    to_pfa.write_all(body)?;
    to_pfa.shutdown(std::net::Shutdown::Write)?;
    let mut received = 0;
    for handle in sinks {
        received += handle.join().map_err(|_| io::Error::other("sink panicked"))??;
    }
    for handle in threads {
        handle.join().map_err(|_| io::Error::other("forwarder panicked"))??;
    }
    assert_eq!(received, 4 * body.len() as u64);
    Ok(received)
}

/// `e2e/loopback_5MiB` and its reference row.
fn e2e(c: &mut Criterion) {
    let scenario = scenario();
    let body = random_bytes(1, SIZE);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("e2e");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("loopback_5MiB", |b| b.iter_custom(|n| loopback(&runtime, &scenario, &body, n)));
    // The same with the message in one chunk (the entities' own default,
    // RFC 4975 s.7.1.1) instead of the figures' 2048-byte chunks.
    let mut whole = scenario.clone();
    whole.chunk_size = None;
    group.bench_function("loopback_5MiB_one_chunk", |b| b.iter_custom(|n| loopback(&runtime, &whole, &body, n)));
    group.bench_function("tcp_forwarders_5MiB", |b| {
        b.iter(|| black_box(forwarders(&body).unwrap_or_else(|e| panic!("{e}"))));
    });
    group.finish();
}

/// The criterion group; `criterion_group!` emits an undocumented `pub fn`.
mod group {
    #![allow(unreachable_pub, reason = "criterion_group! always emits a pub fn")]
    criterion::criterion_group!(e2e, super::e2e);
}
criterion_main!(group::e2e);
