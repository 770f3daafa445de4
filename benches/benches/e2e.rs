//! `e2e/loopback_5MiB`: the demo's delivery without printing: A, PF-A, CF,
//! PF-B1..3, B1..3, the ISF and an IWF on the `cpm-node` runtime (tokio,
//! 127.0.0.1 sockets) carry 5 MiB from A to three CPM members and one
//! non-CPM member (001-fig1, SIP and MSRP over TCP, 2048-byte chunks as in
//! the figures), from the first INVITE to A's outcome after every member's
//! delivery; starting the entities and stopping them are outside the
//! measured time, and no quiet wait is inside it.
//! `e2e/loopback_5MiB_one_chunk`: the same, the message in one chunk.
//!
//! `e2e/loopback_5MiB_tls`: `loopback_5MiB` with every MSRP link over TLS
//! (`msrps:` URIs, certificates checked against a CA made at start).
//!
//! Reference row `e2e/tcp_forwarders_5MiB`: the same topology of plain TCP
//! forwarders (`std::io::copy`), the same hops (A -> PF-A -> CF, the CF
//! copying to four links, PF-B -> B for the CPM members, straight to the
//! IWF for the non-CPM one) carrying the same bytes, with no protocol.
//! `e2e/tls_forwarders_5MiB`: the same forwarders with every hop over TLS
//! (rustls, the same provider as the runtime), beside the TLS row.

use std::hint::black_box;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use cpm_node::demo::{demo_tls, random_bytes};
use cpm_node::host::{now, Host, HostEvent, HostOptions, Topology};
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::{Event, Input, Outcome, Output};
use criterion::{criterion_main, Criterion, Throughput};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

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
            let mut options = HostOptions::default();
            if scenario.msrp_tls {
                let (client, server) =
                    demo_tls(&topology.hosts(), options.connect_timeout).unwrap_or_else(|e| panic!("{e}"));
                options.tls = client;
                options.tls_server = Some(server);
            }
            let mut host = Host::start(topology, options).await.unwrap_or_else(|e| panic!("{e}"));
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

/// The TLS of the forwarders: what every listener presents, and how every
/// connect checks it (`localhost`, signed by a CA made at start).
#[derive(Clone)]
struct ForwarderTls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl ForwarderTls {
    #[expect(deprecated, reason = "the runtime's provider (ring, classic key exchange), for a like-for-like row")]
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let fail = |e: &dyn std::fmt::Display| -> ! { panic!("forwarder certificates: {e}") };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ca_key = KeyPair::generate().unwrap_or_else(|e| fail(&e));
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| fail(&e));
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap_or_else(|e| fail(&e));
        let key = KeyPair::generate().unwrap_or_else(|e| fail(&e));
        let leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap_or_else(|e| fail(&e));
        let leaf = leaf.signed_by(&key, &ca, &ca_key).unwrap_or_else(|e| fail(&e));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(vec![leaf.der().clone()], key))
            .unwrap_or_else(|e| fail(&e));
        // A forwarder only writes to the next hop: session tickets it never
        // reads would make its close a reset that loses the last bytes.
        server.send_tls13_tickets = 0;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap_or_else(|e| fail(&e));
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|e| fail(&e));
        Self { server: Arc::new(server), client: Arc::new(client) }
    }
}

/// One hop's sending end: written to, then finished (TLS `close_notify`,
/// then the TCP write side shut).
trait Outbound: Write + Send {
    fn finish(&mut self) -> io::Result<()>;
}

impl Outbound for TcpStream {
    fn finish(&mut self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl Outbound for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn finish(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush()?;
        self.sock.shutdown(std::net::Shutdown::Write)
    }
}

/// A connection to `listener`, plain or TLS.
fn outbound(listener: &TcpListener, tls: Option<&ForwarderTls>) -> io::Result<Box<dyn Outbound>> {
    let stream = TcpStream::connect(listener.local_addr()?)?;
    stream.set_nodelay(true)?;
    let Some(tls) = tls else { return Ok(Box::new(stream)) };
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let conn = rustls::ClientConnection::new(Arc::clone(&tls.client), name).map_err(io::Error::other)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, stream)))
}

/// The one connection `listener` accepts, plain or TLS, to read.
fn inbound(listener: &TcpListener, tls: Option<&ForwarderTls>) -> io::Result<Box<dyn Read + Send>> {
    let (stream, _) = listener.accept()?;
    let Some(tls) = tls else { return Ok(Box::new(stream)) };
    let conn = rustls::ServerConnection::new(Arc::clone(&tls.server)).map_err(io::Error::other)?;
    Ok(Box::new(rustls::StreamOwned::new(conn, stream)))
}

/// Writes everything read to several streams.
struct Tee(Vec<Box<dyn Outbound>>);

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for stream in &mut self.0 {
            stream.write_all(buf)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        for stream in &mut self.0 {
            stream.flush()?;
        }
        Ok(())
    }
}

/// A hop: where the upstream writes, and the thread carrying it (which
/// returns the bytes it carried).
type Hop = (Box<dyn Outbound>, thread::JoinHandle<io::Result<u64>>);

/// A listener and a thread that accepts one connection and copies it to
/// `next` (every stream of it), finishing them at the end.
fn forwarder(next: Vec<Box<dyn Outbound>>, tls: Option<&ForwarderTls>) -> io::Result<Hop> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let upstream = outbound(&listener, tls)?;
    let tls = tls.cloned();
    let handle = thread::spawn(move || {
        let mut input = inbound(&listener, tls.as_ref())?;
        let mut tee = Tee(next);
        let copied = io::copy(&mut input, &mut tee)?;
        for stream in &mut tee.0 {
            stream.finish()?;
        }
        Ok(copied)
    });
    Ok((upstream, handle))
}

/// A sink: counts what arrives on one connection.
fn sink(tls: Option<&ForwarderTls>) -> io::Result<Hop> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let upstream = outbound(&listener, tls)?;
    let tls = tls.cloned();
    let handle = thread::spawn(move || {
        let mut input = inbound(&listener, tls.as_ref())?;
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

/// The same bytes through forwarders (plain, or TLS on every hop) with the
/// same hops.
fn forwarders(body: &[u8], tls: Option<&ForwarderTls>) -> io::Result<u64> {
    let mut sinks = Vec::new();
    let mut threads = Vec::new();
    let mut cf_out = Vec::new();
    for _ in 0..3 {
        let (to_b, b) = sink(tls)?;
        let (to_pfb, pfb) = forwarder(vec![to_b], tls)?;
        sinks.push(b);
        threads.push(pfb);
        cf_out.push(to_pfb);
    }
    let (to_iwf, iwf) = sink(tls)?;
    sinks.push(iwf);
    cf_out.push(to_iwf);
    let (to_cf, cf) = forwarder(cf_out, tls)?;
    let (mut to_pfa, pfa) = forwarder(vec![to_cf], tls)?;
    threads.extend([cf, pfa]);
    to_pfa.write_all(body)?;
    to_pfa.finish()?;
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
        b.iter(|| black_box(forwarders(&body, None).unwrap_or_else(|e| panic!("{e}"))));
    });
    // Every MSRP link over TLS, beside forwarders with every hop over TLS.
    let mut tls = scenario.clone();
    tls.msrp_tls = true;
    group.bench_function("loopback_5MiB_tls", |b| b.iter_custom(|n| loopback(&runtime, &tls, &body, n)));
    let forwarder_tls = ForwarderTls::new();
    group.bench_function("tls_forwarders_5MiB", |b| {
        b.iter(|| black_box(forwarders(&body, Some(&forwarder_tls)).unwrap_or_else(|e| panic!("{e}"))));
    });
    group.finish();
}

/// The criterion group; `criterion_group!` emits an undocumented `pub fn`.
mod group {
    #![allow(unreachable_pub, reason = "criterion_group! always emits a pub fn")]
    criterion::criterion_group!(e2e, super::e2e);
}
criterion_main!(group::e2e);
