//! `e2e/loopback_5MiB`: the demo's delivery without printing: A, PF-A, CF,
//! PF-B1..3, B1..3, the ISF and an IWF on 127.0.0.1 sockets (the examples'
//! driver) carry 5 MiB from A to three CPM members and one non-CPM member
//! (001-fig1, SIP and MSRP over TCP, setup and teardown included, and the
//! driver's 200 ms of quiet that tells the end; 2048-byte chunks as in the
//! figures). `e2e/loopback_5MiB_one_chunk`: the same, the message in one chunk.
//!
//! Reference row `e2e/tcp_forwarders_5MiB`: the same topology of plain TCP
//! forwarders (`std::io::copy`), the same hops (A -> PF-A -> CF, the CF
//! copying to four links, PF-B -> B for the CPM members, straight to the
//! IWF for the non-CPM one) carrying the same bytes, with no protocol.

#[path = "../../cpm-roles/examples/driver/mod.rs"]
mod driver;

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use cpm_roles::sim::{crc32, Scenario};
use criterion::{criterion_main, Criterion, Throughput};

const SIZE: usize = 5 * 1024 * 1024;

fn scenario() -> Scenario {
    let mut scenario = Scenario::figure("001-fig1").unwrap_or_else(|e| panic!("{e}"));
    scenario.members = 3;
    scenario.non_cpm = 1;
    scenario.size = SIZE;
    scenario
}

/// One delivery through the entities; panics unless all four members got
/// the message intact.
fn loopback(scenario: &Scenario, body: &Bytes) -> usize {
    let mut net = driver::Driver::new();
    scenario.populate(&mut net, driver::now(), body.clone()).unwrap_or_else(|e| panic!("{e}"));
    net.run_to_end(Duration::from_secs(60), &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    net.shutdown();
    let expected = (body.len(), crc32(body));
    let intact = driver::deliveries(net.trace()).values().filter(|d| **d == expected).count();
    assert_eq!(intact, 4, "errors {:?}", net.errors());
    intact
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
    let body = driver::random_bytes(1, SIZE);
    let mut group = c.benchmark_group("e2e");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.bench_function("loopback_5MiB", |b| b.iter(|| black_box(loopback(&scenario, &body))));
    // The same with the message in one chunk (the entities' own default,
    // RFC 4975 s.7.1.1) instead of the figures' 2048-byte chunks.
    let mut whole = scenario.clone();
    whole.chunk_size = None;
    group.bench_function("loopback_5MiB_one_chunk", |b| b.iter(|| black_box(loopback(&whole, &body))));
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
