//! `cpm-node demo`: the whole chain of a figure on 127.0.0.1, every entity
//! on the [`Host`] (A, PF-A, the CF, PF-B1..n, B1..n, the ISF and
//! IWF1..m), carrying one large message from A to a group over real TCP.
//!
//! It shows a progress bar per member while the message is relayed (plain
//! lines when stdout is not a terminal), then prints the ladder diagram
//! (first and last rows for a long trace), a table per member and, as its
//! last line, `result: K/N members received the message intact`. It writes
//! the trace as JSON lines and as an SVG sequence diagram. The exit status
//! is 0 only when every member received the message intact.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpm_roles::diagram;
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::sim::{crc32, TraceEvent};
use cpm_roles::{Event, Input, Outcome, Output, SimulationIds};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

pub mod processes;

use crate::host::{now, Host, HostEvent, HostOptions, Topology};
use crate::noncpm::SmtpSubmitter;
use crate::trace::TraceObserver;
use crate::transport::{TlsClient, TlsMode, TlsServerConfig};

/// What `cpm-node demo` runs.
#[derive(Debug)]
pub struct DemoOptions {
    /// The figure, its members and the message.
    pub scenario: Scenario,
    /// Where `trace.jsonl` and `sequence.svg` go.
    pub out: PathBuf,
    /// How long the run may take.
    pub timeout: Duration,
    /// MSRP over TLS (`msrps:`), with a CA and certificates made at start.
    pub tls: bool,
    /// The SMTP server (`host:port`) the email IWFs submit to; `None`: the
    /// non-CPM system is simulated (it takes every message at once).
    pub smtp: Option<String>,
}

/// The non-CPM system of a demo: a real SMTP server, or one simulated.
enum NonCpmSink {
    Smtp(Arc<SmtpSubmitter>),
    Simulated,
}

impl NonCpmSink {
    fn new(options: &DemoOptions) -> Result<Self, String> {
        let Some(target) = &options.smtp else { return Ok(Self::Simulated) };
        if options.scenario.iwf.system != cpm_roles::NonCpmSystem::Email {
            return Err("--smtp needs --non-cpm-system email".to_owned());
        }
        let smtp = SmtpSubmitter::new(target, "127.0.0.1", None, Duration::from_secs(30)).map_err(|e| e.to_string())?;
        Ok(Self::Smtp(Arc::new(smtp)))
    }

    fn describe(&self, options: &DemoOptions) -> String {
        match (self, &options.smtp) {
            (Self::Smtp(_), Some(target)) => format!("the SMTP server at {target}"),
            _ => "simulated (it takes every message at once)".to_owned(),
        }
    }
}

/// A CA made now, and one certificate it signs naming every host (the
/// demo's listeners all present it; a link checks its host against it,
/// RFC 4975 s.5.4): how the demo's links connect, and what its listeners
/// present, over TLS.
///
/// # Errors
///
/// Why the certificates cannot be made.
pub fn demo_tls(hosts: &[String], handshake: Duration) -> Result<(TlsMode, Arc<TlsServerConfig>), String> {
    let made = DemoCertificates::new(hosts)?;
    let failed = |e: &dyn std::fmt::Display| format!("demo certificates: {e}");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.key.serialize_der()));
    let server = TlsServerConfig::new(vec![made.leaf.der().clone()], key, handshake).map_err(|e| failed(&e))?;
    let client = TlsClient::with_roots(vec![made.ca.der().clone()]).map_err(|e| failed(&e))?;
    Ok((TlsMode::Tls(Arc::new(client)), Arc::new(server)))
}

/// A CA made now and one leaf certificate it signed for `hosts`, with the
/// leaf's key: what the demo's listeners present and its links trust.
pub(crate) struct DemoCertificates {
    pub(crate) ca: rcgen::Certificate,
    pub(crate) leaf: rcgen::Certificate,
    pub(crate) key: KeyPair,
}

impl DemoCertificates {
    pub(crate) fn new(hosts: &[String]) -> Result<Self, String> {
        let failed = |e: &dyn std::fmt::Display| format!("demo certificates: {e}");
        let ca_key = KeyPair::generate().map_err(|e| failed(&e))?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed(&e))?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "cpm-node demo CA");
        let ca = ca.self_signed(&ca_key).map_err(|e| failed(&e))?;
        let key = KeyPair::generate().map_err(|e| failed(&e))?;
        let leaf = CertificateParams::new(hosts.to_vec()).map_err(|e| failed(&e))?;
        let leaf = leaf.signed_by(&key, &ca, &ca_key).map_err(|e| failed(&e))?;
        Ok(Self { ca, leaf, key })
    }
}

/// `n` bytes of text (the letters `a` to `z`) from `seed`: a `text/plain`
/// message whose CRC-32 no other run shares, and which every non-CPM system
/// carries byte for byte (an email body of one long line goes base64).
#[must_use]
pub fn random_bytes(seed: u64, n: usize) -> Bytes {
    let mut ids = SimulationIds::new(seed);
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        out.extend(ids.next_u64().to_le_bytes().iter().map(|b| b'a' + b % 26));
    }
    out.truncate(n);
    Bytes::from(out)
}

/// The members' entity names (the receivers): B.. and IWF..
fn members(columns: &[String]) -> Vec<String> {
    columns.iter().filter(|c| c.starts_with('B') || c.starts_with("IWF")).cloned().collect()
}

/// Runs the demo and prints its report; the exit status says whether every
/// member received the message intact.
#[must_use]
pub fn run(options: &DemoOptions) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(demo(options)),
        Err(error) => {
            eprintln!("demo: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo with every entity but A in its own process
/// ([`processes`]).
#[must_use]
pub fn run_processes(options: &processes::ProcessOptions) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(processes::run(options)),
        Err(error) => {
            eprintln!("demo: cannot start the runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(options: &DemoOptions) -> ExitCode {
    let scenario = &options.scenario;
    let sink = match NonCpmSink::new(options) {
        Ok(sink) => sink,
        Err(error) => {
            eprintln!("cpm-node demo: {error}");
            return ExitCode::from(crate::cli::EXIT_NOT_IMPLEMENTED);
        }
    };
    let body = random_bytes(scenario.seed ^ 0xD3E0, scenario.size);
    let sent_crc = crc32(&body);
    let columns = diagram::columns(scenario);
    let members = members(&columns);

    let mut topology = Topology::new();
    let epoch = now();
    // The IWF's email carries a real Date (RFC 5322 s.3.6.1): the wall clock at the demo's start.
    let mut scenario = scenario.clone();
    scenario.iwf.wall_clock = Some((epoch, crate::host::unix_now()));
    let scenario = &scenario;
    if let Err(error) = scenario.populate(&mut topology, epoch, body.clone()) {
        eprintln!("demo: {error}");
        return ExitCode::from(2);
    }
    let mut observer = TraceObserver::new(&topology);
    let mut host_options = HostOptions::default();
    if options.tls {
        match demo_tls(&topology.hosts(), host_options.connect_timeout) {
            Ok((client, server)) => {
                host_options.tls = client;
                host_options.tls_server = Some(server);
            }
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut host = match Host::start(topology, host_options).await {
        Ok(host) => host,
        Err(error) => {
            eprintln!("demo: cannot start the entities: {error}");
            return ExitCode::FAILURE;
        }
    };
    observer.recorder().submit(epoch, "A", &body);
    println!(
        "demo: {} from A to {} CPM and {} non-CPM member(s), {} bytes (crc {sent_crc:08x}), {} entities on 127.0.0.1",
        scenario.name,
        scenario.members,
        scenario.non_cpm,
        scenario.size,
        host.names().len()
    );
    for (index, name) in host.names().iter().enumerate() {
        if let Some(msrp) = host.msrp_addr(index) {
            println!("  {name:<6} MSRP listener {} {msrp}", if options.tls { "tls" } else { "tcp" });
        }
    }
    if scenario.non_cpm > 0 {
        println!("  non-CPM system: {}", sink.describe(options));
    }

    // Progress: MSRP bytes read by each member (heads included), capped.
    let tty = std::io::stdout().is_terminal();
    let multi =
        MultiProgress::with_draw_target(if tty { ProgressDrawTarget::stdout() } else { ProgressDrawTarget::hidden() });
    let style = ProgressStyle::with_template("{prefix:>5} [{bar:40}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bars: Vec<(usize, ProgressBar)> = members
        .iter()
        .filter_map(|name| {
            let index = host.names().iter().position(|n| n == name)?;
            let bar = multi.add(ProgressBar::new(scenario.size as u64));
            bar.set_style(style.clone());
            bar.set_prefix(name.clone());
            Some((index, bar))
        })
        .collect();
    let mut reported = vec![0u64; bars.len()];
    let size = scenario.size.max(1) as u64;

    let started = now();
    let deadline = tokio::time::Instant::now() + options.timeout;
    let mut settled = vec![false; host.names().len()];
    let mut outcome = None;
    let mut timed_out = false;
    // Submissions to the SMTP server, each answered back to its IWF.
    let mut submissions = tokio::task::JoinSet::new();
    loop {
        let done = outcome.is_some() && settled.iter().all(|s| *s) && submissions.is_empty();
        // Once everything settled, a short quiet spell lets the last
        // answers cross the sockets before the run ends.
        let wait = if done { tokio::time::Instant::now() + Duration::from_millis(100) } else { deadline };
        let next = tokio::select! {
            next = tokio::time::timeout_at(wait.min(deadline), host.next_output()) => next,
            Some(submitted) = submissions.join_next(), if !submissions.is_empty() => {
                if let Ok((entity, delivery, status)) = submitted {
                    host.input(entity, Input::NonCpmAck { delivery, status }).await;
                }
                continue;
            }
        };
        let said = match next {
            Ok(Some(said)) => said,
            Ok(None) => break,
            Err(_) => {
                timed_out = !done;
                break;
            }
        };
        observer.record(&said);
        match &said.event {
            HostEvent::Settled(now_settled) => {
                if let Some(s) = settled.get_mut(said.entity) {
                    *s = *now_settled;
                }
            }
            HostEvent::Output(Output::Event { session, event: Event::Outcome { outcome: o } })
                if said.entity == 0 && *session == Some(SCENARIO_SESSION) =>
            {
                outcome = Some(*o);
            }
            HostEvent::Output(Output::Event {
                event: Event::DeliverToNonCpm { delivery, parts, envelope, .. },
                ..
            }) => {
                match (&sink, envelope, parts.first()) {
                    (NonCpmSink::Smtp(smtp), Some(envelope), Some(mail)) => {
                        let (smtp, entity, delivery) = (Arc::clone(smtp), said.entity, *delivery);
                        let (envelope, mail) = (envelope.clone(), mail.clone());
                        submissions.spawn(async move { (entity, delivery, smtp.submit(&envelope, &mail).await) });
                    }
                    // The simulated system takes every message.
                    _ => host.input(said.entity, Input::NonCpmAck { delivery: *delivery, status: 200 }).await,
                }
            }
            HostEvent::Read { .. } => {
                for (k, (index, bar)) in bars.iter().enumerate() {
                    let got = observer.read(*index).min(size);
                    if tty {
                        bar.set_position(got);
                    } else {
                        // Plain lines: one per quarter.
                        let quarter = got * 4 / size;
                        while reported[k] < quarter {
                            reported[k] += 1;
                            println!("progress: {:<5} {:>3}% ({got} bytes read)", members[k], reported[k] * 25);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let elapsed = now().duration_since(started);
    for (_, bar) in &bars {
        bar.finish();
    }
    drop(multi);
    let busy: Vec<&str> =
        host.names().iter().zip(&settled).filter(|(_, s)| !**s).map(|(name, _)| name.as_str()).collect();
    if timed_out {
        println!("run: timed out after {}s (still busy: {})", options.timeout.as_secs(), busy.join(", "));
    }
    host.shutdown().await;
    let trace = observer.events();
    println!("run: {:.3} s wall clock, {} trace events", elapsed.as_secs_f64(), trace.len());

    // The ladder (first and last rows when long).
    let ladder = diagram::ladder(&columns, trace);
    let lines: Vec<&str> = ladder.lines().collect();
    println!();
    if lines.len() <= 120 {
        print!("{ladder}");
    } else {
        for line in lines.iter().take(60) {
            println!("{line}");
        }
        println!("... {} rows omitted ...", lines.len() - 100);
        for line in lines.iter().skip(lines.len() - 40) {
            println!("{line}");
        }
    }
    match write_files(&options.out, &columns, trace, observer.times()) {
        Ok((json, svg, throughput)) => {
            println!("\ntrace: {}\ndiagram: {}\nthroughput: {}", json.display(), svg.display(), throughput.display())
        }
        Err(error) => println!("\ntrace files: {error}"),
    }

    // The table per member.
    let times = observer.times();
    let submitted = trace.iter().zip(times).find_map(|(e, t)| matches!(e, TraceEvent::Submit { .. }).then_some(*t));
    let reports = observer.member_reports();
    println!("\nmember  bytes received  crc-32    intact  time (ms)  throughput   CF report");
    let mut intact = 0;
    for name in &members {
        let delivered = trace.iter().zip(times).find_map(|(e, t)| match e {
            TraceEvent::Deliver { at, bytes, crc32 } if at == name => Some((*bytes, *crc32, *t)),
            _ => None,
        });
        let uri = scenario.member_uri(name);
        let status = reports.iter().find(|(m, _)| Some(m) == uri.as_ref()).map(|(_, s)| *s);
        let report = status.map_or_else(|| "-".to_owned(), |s| s.to_string());
        match delivered {
            Some((bytes, crc, at)) => {
                // Intact: every byte, and the member's own delivery report
                // (for a non-CPM member: its system took the message).
                let ok = bytes == scenario.size && crc == sent_crc && status == Some(200);
                intact += usize::from(ok);
                let time = submitted.map_or(Duration::ZERO, |s| at.saturating_duration_since(s));
                let rate = bytes as f64 / time.as_secs_f64().max(1e-9) / (1024.0 * 1024.0);
                println!(
                    "{name:<6}  {bytes:>14}  {crc:08x}  {:<6}  {:>9.1}  {rate:>7.1} MiB/s  {report}",
                    if ok { "yes" } else { "NO" },
                    time.as_secs_f64() * 1000.0
                );
            }
            None => println!("{name:<6}  {:>14}  {:<8}  {:<6}  {:>9}  {:>13}  {report}", 0, "-", "NO", "-", "-"),
        }
    }
    if let Some(why) = refusal(scenario, outcome) {
        println!("{why}");
    }
    let _ = std::io::stdout().flush();
    println!("result: {intact}/{} members received the message intact", members.len());
    if intact == members.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Why A's message went nowhere, when a limit refused it.
fn refusal(scenario: &Scenario, outcome: Option<Outcome>) -> Option<String> {
    let Some(Outcome::Refused { status: 488 }) = outcome else { return None };
    let max_size = scenario.max_size?;
    // RFC 4975 s.8.6: an offer for a message over the answerer's max-size
    // is refused (RFC 3261 s.21.4.26, 488 Not Acceptable Here).
    (scenario.size as u64 > max_size).then(|| {
        format!(
            "refused: the INVITE was answered 488 (Not Acceptable Here): the message ({} bytes) is larger than \
             the max-size of {max_size} bytes the entities accept; raise it with --max-size",
            scenario.size
        )
    })
}

fn write_files(
    dir: &Path,
    columns: &[String],
    trace: &[TraceEvent],
    times: &[Instant],
) -> std::io::Result<(PathBuf, PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let json = dir.join("trace.jsonl");
    let mut text = String::new();
    for (seq, event) in trace.iter().enumerate() {
        text.push_str(&event.to_json(seq));
        text.push('\n');
    }
    std::fs::write(&json, text)?;
    let svg = dir.join("sequence.svg");
    std::fs::write(&svg, diagram::svg(columns, trace))?;
    let throughput = dir.join("throughput.svg");
    std::fs::write(&throughput, diagram::throughput_svg(columns, trace, times))?;
    Ok((json, svg, throughput))
}
