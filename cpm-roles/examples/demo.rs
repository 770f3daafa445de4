//! The whole chain over real TCP on 127.0.0.1: A, PF-A, CF, PF-B1..n,
//! B1..n, the ISF and IWF1..m, each on its own ephemeral SIP and MSRP
//! ports, carry one large message from A to a group.
//!
//! ```text
//! cargo run --release -p cpm-roles --example demo -- [--strategy 001-fig1] [--trigger 200|ack|send]
//!     [--members 3] [--non-cpm 1] [--non-cpm-system email|sms|mms] [--size 5MiB] [--seed 1]
//!     [--sip tcp|udp] [--chunk-size BYTES|whole]
//!     [--out DIR] [--wire-log DIR] [--timeout SECS]
//! ```
//!
//! It shows a progress bar per member while the message is relayed (plain
//! lines when stdout is not a terminal), then prints the ladder diagram
//! (first and last rows for a long trace), a table per member and, as its
//! last line, `result: K/N members received the message intact`. It writes
//! the trace as JSON lines and as an SVG sequence diagram. Exit status 0
//! only when every member received the message intact. `DEMO_DEBUG=1`
//! also prints, on stderr, what is still busy at each tick, the MSRP bytes
//! each entity read, failed writes and every entity event.

mod driver;

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use cpm_negotiation::Trigger;
use cpm_roles::diagram;
use cpm_roles::sim::{crc32, Scenario, TraceEvent};
use cpm_roles::{Event, NonCpmSystem, SipTransport};
use driver::Driver;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

struct Options {
    scenario: Scenario,
    out: PathBuf,
    wire_log: Option<PathBuf>,
    timeout: Duration,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: demo [--strategy 001-fig1..001-fig7|000-fig1] [--trigger 200|ack|send] [--members N] \
         [--non-cpm M] [--non-cpm-system email|sms|mms] [--size BYTES[KiB|MiB]] [--seed S] [--sip tcp|udp] [--chunk-size BYTES|whole] [--out DIR] \
         [--wire-log DIR] [--timeout SECS]"
    );
    ExitCode::from(2)
}

fn size(value: &str) -> Option<usize> {
    let (number, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => value.split_at(at),
        None => (value, ""),
    };
    let unit = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1024,
        "m" | "mib" => 1024 * 1024,
        _ => return None,
    };
    number.parse::<usize>().ok()?.checked_mul(unit)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut strategy = "001-fig1".to_owned();
    let (mut trigger, mut members, mut non_cpm, mut bytes, mut seed) = (None, 3, 1, 5 * 1024 * 1024, 1);
    let mut out = PathBuf::from("target/demo");
    let mut wire_log = None;
    let mut timeout = Duration::from_secs(120);
    let (mut transport, mut chunk_size) = (None, None);
    // A 5 MiB message is far over SMS's 255 segments: Email by default.
    let mut system = NonCpmSystem::Email;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = || format!("bad value for {flag}: {value}");
        match flag.as_str() {
            "--strategy" => strategy.clone_from(value),
            "--trigger" => {
                trigger = Some(match value.as_str() {
                    "200" => Trigger::OnSuccessResponse,
                    "ack" => Trigger::OnAck,
                    "send" => Trigger::OnFirstSend,
                    _ => return Err(bad()),
                });
            }
            "--members" => members = value.parse().map_err(|_| bad())?,
            "--non-cpm" => non_cpm = value.parse().map_err(|_| bad())?,
            "--size" => bytes = size(value).ok_or_else(bad)?,
            "--seed" => seed = value.parse().map_err(|_| bad())?,
            "--sip" => {
                transport = Some(match value.as_str() {
                    "tcp" => SipTransport::Reliable,
                    "udp" => SipTransport::Unreliable,
                    _ => return Err(bad()),
                });
            }
            "--chunk-size" => {
                chunk_size = Some(if value == "whole" { None } else { Some(size(value).ok_or_else(bad)?) });
            }
            "--non-cpm-system" => {
                system = match value.as_str() {
                    "sms" => NonCpmSystem::Sms,
                    "mms" => NonCpmSystem::Mms,
                    "email" => NonCpmSystem::Email,
                    _ => return Err(bad()),
                };
            }
            "--out" => out = PathBuf::from(value),
            "--wire-log" => wire_log = Some(PathBuf::from(value)),
            "--timeout" => timeout = Duration::from_secs(value.parse().map_err(|_| bad())?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let mut scenario = Scenario::figure(&strategy).map_err(|e| e.to_string())?;
    scenario.members = members;
    scenario.non_cpm = non_cpm;
    scenario.size = bytes;
    scenario.seed = seed;
    scenario.iwf.system = system;
    if let Some(transport) = transport {
        scenario.sip_transport = transport;
    }
    if let Some(chunk_size) = chunk_size {
        scenario.chunk_size = chunk_size;
    }
    if let Some(trigger) = trigger {
        scenario.preset.pf_trigger = trigger;
        scenario.preset.cf_trigger = trigger;
    }
    Ok(Options { scenario, out, wire_log, timeout })
}

/// The members' entity names (the receivers): B.. and IWF..
fn members(columns: &[String]) -> Vec<String> {
    columns.iter().filter(|c| c.starts_with('B') || c.starts_with("IWF")).cloned().collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            return usage();
        }
    };
    let scenario = &options.scenario;
    let body = driver::random_bytes(scenario.seed ^ 0xD3E0, scenario.size);
    let sent_crc = crc32(&body);
    let columns = diagram::columns(scenario);
    let members = members(&columns);

    let mut net = Driver::new();
    if let Some(dir) = &options.wire_log {
        if let Err(error) = net.set_wire_log(dir.clone()) {
            eprintln!("wire log {}: {error}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    let epoch = driver::now();
    if let Err(error) = scenario.populate(&mut net, epoch, body) {
        eprintln!("{error}");
        return ExitCode::from(2);
    }
    println!(
        "demo: {} from A to {} CPM and {} non-CPM member(s), {} bytes (crc {sent_crc:08x}), {} entities on 127.0.0.1",
        scenario.name,
        scenario.members,
        scenario.non_cpm,
        scenario.size,
        net.names().len()
    );
    for (index, name) in net.names().iter().enumerate() {
        if let (Some(sip), Some(msrp)) = (net.sip_addr(index), net.msrp_addr(index)) {
            println!("  {name:<6} SIP listener tcp {sip}  MSRP listener tcp {msrp}");
        }
    }

    let debug = std::env::var_os("DEMO_DEBUG").is_some();
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
            let index = net.index(name)?;
            let bar = multi.add(ProgressBar::new(scenario.size as u64));
            bar.set_style(style.clone());
            bar.set_prefix(name.clone());
            Some((index, bar))
        })
        .collect();
    let mut reported = vec![0u64; bars.len()];
    let size = scenario.size.max(1) as u64;
    let mut tick = |d: &Driver| {
        if debug {
            eprintln!("busy: {:?}", d.busy());
        }
        for (k, (index, bar)) in bars.iter().enumerate() {
            let got = d.received(*index).min(size);
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
    };
    let started = driver::now();
    let outcome = net.run_to_end(options.timeout, &mut tick);
    let elapsed = driver::now().duration_since(started);
    for (_, bar) in &bars {
        bar.finish();
    }
    drop(multi);
    net.shutdown();
    if let Err(error) = &outcome {
        println!("run: {error}");
    }
    println!("run: {:.3} s wall clock, {} trace events", elapsed.as_secs_f64(), net.trace().len());

    // The ladder (first and last rows when long).
    let ladder = diagram::ladder(&columns, net.trace());
    let lines: Vec<&str> = ladder.lines().collect();
    println!();
    if lines.len() <= 120 {
        print!("{ladder}");
    } else {
        for line in &lines[..60] {
            println!("{line}");
        }
        println!("... {} rows omitted ...", lines.len() - 100);
        for line in &lines[lines.len() - 40..] {
            println!("{line}");
        }
    }

    // Files.
    let written = write_files(&options.out, &columns, net.trace());
    match &written {
        Ok((json, svg)) => println!("\ntrace: {}\ndiagram: {}", json.display(), svg.display()),
        Err(error) => println!("\ntrace files: {error}"),
    }
    if let Some(dir) = &options.wire_log {
        println!("wire log: {} files in {}", net.wire_files().len(), dir.display());
    }
    for error in net.errors() {
        println!("error: {error}");
    }
    if debug {
        for (index, name) in net.names().iter().enumerate() {
            eprintln!("read by {name}: {} MSRP bytes", net.received(index));
        }
        for failure in net.write_failures() {
            eprintln!("write failure: {failure}");
        }
        for (_, index, event) in net.events() {
            match event {
                Event::Submitted { .. } | Event::MessageDelivered { .. } | Event::DeliverToNonCpm { .. } => {}
                other => eprintln!("event {}: {other:?}", net.names()[*index]),
            }
        }
    }

    // The table per member.
    let submitted = submit_time(&net);
    let reports: Vec<(String, u16)> = net
        .events()
        .iter()
        .filter_map(|(_, _, e)| match e {
            Event::MemberOutcome { member, outcome } => Some((member.clone(), outcome.status())),
            _ => None,
        })
        .collect();
    println!("\nmember  bytes received  crc-32    intact  time (ms)  throughput   CF report");
    let mut intact = 0;
    for name in &members {
        let delivered = net.trace().iter().zip(net.trace_times()).find_map(|(e, t)| match e {
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
    let _ = std::io::stdout().flush();
    println!("result: {intact}/{} members received the message intact", members.len());
    if intact == members.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn submit_time(net: &Driver) -> Option<Instant> {
    net.trace().iter().zip(net.trace_times()).find_map(|(e, t)| matches!(e, TraceEvent::Submit { .. }).then_some(*t))
}

fn write_files(dir: &PathBuf, columns: &[String], trace: &[TraceEvent]) -> std::io::Result<(PathBuf, PathBuf)> {
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
    Ok((json, svg))
}
