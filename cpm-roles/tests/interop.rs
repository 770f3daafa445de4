//! Interop with real peers over loopback, through the examples' socket
//! driver. Each test skips with a loud message when its tool is missing
//! (`apt-get install -y sip-tester tshark`; `.ci/run` installs them):
//!
//! - SIPp (`../shared/interop/sipp/uac-msrp.xml`) as a UAC sends INVITE with
//!   an MSRP offer (`a=setup:active`), ACK and BYE to our receiving client,
//!   and to our terminating participating function (with our client behind
//!   it), over TCP and UDP. SIPp never opens the MSRP connection: our side answers
//!   `passive`, waits, and ends that wait at BYE.
//! - SIPp (`uas-msrp.xml`) as a UAS answers our sending client's INVITE.
//! - Wireshark (`../shared/interop/wire-check.sh`) judges every SIP and MSRP
//!   byte the demo's chain writes: no malformed packet.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "../examples/driver/mod.rs"]
mod driver;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use cpm_negotiation::{Figure, Hop, Preset};
use cpm_roles::sim::Scenario;
use cpm_roles::{Client, Downstream, EntityConfig, Event, FlowId, Input, Participating, SimulationIds};
use driver::Driver;

/// `../shared/interop` beside the work tree (or `$INTEROP_DIR`).
fn interop_dir() -> PathBuf {
    std::env::var_os("INTEROP_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/interop"), PathBuf::from)
}

/// `name` on `$PATH`, if any.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn skip(test: &str, why: &str) {
    eprintln!("\n**************** SKIP {test}: {why} ****************\n");
}

/// A scratch directory for one test's logs.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpm-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[expect(clippy::disallowed_methods, reason = "a test waits for an outside process to listen")]
fn pause(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

/// The SIPp scenarios, or why they cannot run.
fn sipp() -> Result<(PathBuf, PathBuf), String> {
    let dir = interop_dir().join("sipp");
    if !dir.join("uac-msrp.xml").is_file() {
        return Err(format!("no SIPp scenarios in {}", dir.display()));
    }
    let sipp = tool("sipp").ok_or("sipp is not installed (apt-get install -y sip-tester)")?;
    Ok((sipp, dir))
}

/// Starts SIPp with `args` in `logs`; stdout and stderr go to files there.
fn spawn_sipp(sipp: &Path, logs: &Path, args: &[String]) -> Child {
    let out = std::fs::File::create(logs.join("sipp.out")).unwrap();
    let err = std::fs::File::create(logs.join("sipp.err")).unwrap();
    Command::new(sipp)
        .args(args)
        .current_dir(logs)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap()
}

/// SIPp's screen and errors, for a failure message.
fn sipp_logs(logs: &Path) -> String {
    let mut text = String::new();
    for name in ["sipp.out", "sipp.err"] {
        text.push_str(&std::fs::read_to_string(logs.join(name)).unwrap_or_default());
    }
    if let Ok(dir) = std::fs::read_dir(logs) {
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().ends_with("_errors.log") {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    text
}

/// Runs `net` until SIPp exits (at most 20 s), then returns its success.
fn run_with(net: &mut Driver, child: &mut Child, logs: &Path) -> bool {
    let mut status = None;
    let outcome = net.run(
        Duration::from_secs(20),
        &mut |_: &Driver| {
            if status.is_none() {
                status = child.try_wait().ok().flatten();
            }
            status.is_some()
        },
        &mut |_| {},
    );
    // Let our side take in what SIPp sent last.
    let _ = net.run(Duration::from_millis(300), &mut |_: &Driver| false, &mut |_| {});
    if outcome.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("SIPp did not finish: {}", sipp_logs(logs));
        return false;
    }
    let ok = status.is_some_and(|s| s.success());
    if !ok {
        eprintln!("SIPp failed ({status:?}):\n{}", sipp_logs(logs));
    }
    ok
}

fn fig1() -> Preset {
    Preset::figure(Figure::Seed001Fig1)
}

/// Events of entity `index`, without bodies.
fn events_of(net: &Driver, index: usize) -> Vec<String> {
    net.events()
        .iter()
        .filter(|(_, i, _)| *i == index)
        .map(|(_, _, e)| match e {
            Event::MessageDelivered { body } => format!("MessageDelivered {} bytes", body.len()),
            Event::Submitted { bytes } => format!("Submitted {} bytes", bytes.len()),
            other => format!("{other:?}"),
        })
        .collect()
}

fn uac_args(dir: &Path, target: SocketAddr, udp: bool) -> Vec<String> {
    let scenario = dir.join("uac-msrp.xml").display().to_string();
    [
        "-sf",
        &scenario,
        "-s",
        "bob",
        "-m",
        "1",
        "-t",
        if udp { "u1" } else { "t1" },
        "-i",
        "127.0.0.1",
        "-p",
        &free_port().to_string(),
        "-nostdin",
        "-timeout",
        "15s",
        "-timeout_error",
        "-trace_err",
        &target.to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

/// The flow an outside peer's datagrams arrive on.
const UDP_FLOW: FlowId = FlowId::new(7);

/// Where SIPp sends: entity `index`'s TCP listener, or a UDP socket on
/// [`UDP_FLOW`].
fn sip_target(net: &mut Driver, index: usize, udp: bool) -> SocketAddr {
    if udp {
        net.listen_sip_udp(index, UDP_FLOW).unwrap()
    } else {
        net.sip_addr(index).unwrap()
    }
}

fn config(name: &str, host: &str, udp: bool) -> EntityConfig {
    let mut config = EntityConfig::new(name, host, 2855, fig1());
    if udp {
        config.set_flow_transport(UDP_FLOW, cpm_roles::SipTransport::Unreliable);
    }
    config
}

fn uac_to_client(test: &str, udp: bool) {
    let (sipp, dir) = match sipp() {
        Ok(found) => found,
        Err(why) => return skip(test, &why),
    };
    let logs = scratch(test);
    let now = driver::now();
    let mut net = Driver::new();
    let config = config("B", "b.example.com", udp);
    let b = cpm_roles::scenario::Network::add(
        &mut net,
        "b.example.com",
        Box::new(Client::receiver(config, Hop::L4, "L4", now, SimulationIds::new(11))),
    );
    let target = sip_target(&mut net, b, udp);
    let mut child = spawn_sipp(&sipp, &logs, &uac_args(&dir, target, udp));
    let ok = run_with(&mut net, &mut child, &logs);
    net.shutdown();
    let events = events_of(&net, b);
    assert!(ok, "SIPp UAC against our client; our events {events:?}; errors {:?}", net.errors());
    assert!(events.iter().any(|e| e.contains("SessionEnded")), "the wait must end at BYE: {events:?}");
    assert!(net.errors().is_empty(), "{:?}", net.errors());
}

#[test]
fn sipp_uac_to_our_receiving_client_tcp() {
    uac_to_client("sipp_uac_to_our_receiving_client_tcp", false);
}

#[test]
fn sipp_uac_to_our_receiving_client_udp() {
    uac_to_client("sipp_uac_to_our_receiving_client_udp", true);
}

fn uac_to_pf(test: &str, udp: bool) {
    let (sipp, dir) = match sipp() {
        Ok(found) => found,
        Err(why) => return skip(test, &why),
    };
    let logs = scratch(test);
    let now = driver::now();
    let mut net = Driver::new();
    let mut ids = SimulationIds::new(12);
    let down = Downstream {
        target: "sip:b@example.com".to_owned(),
        flow: FlowId::new(100),
        hop: Hop::L4,
        label: "L4".to_owned(),
    };
    let pf_config = config("PF-B", "pfb.example.com", udp);
    let pf = Participating::new(pf_config, Hop::L3, "L3", down, now, ids.fork());
    let pf = cpm_roles::scenario::Network::add(&mut net, "pfb.example.com", Box::new(pf));
    let b_config = EntityConfig::new("B", "b.example.com", 2855, fig1());
    let b = Client::receiver(b_config, Hop::L4, "L4", now, ids.fork());
    let b = cpm_roles::scenario::Network::add(&mut net, "b.example.com", Box::new(b));
    cpm_roles::scenario::Network::link_sip(&mut net, pf, b, FlowId::new(100), "L4");
    let target = sip_target(&mut net, pf, udp);
    let mut child = spawn_sipp(&sipp, &logs, &uac_args(&dir, target, udp));
    let ok = run_with(&mut net, &mut child, &logs);
    net.shutdown();
    let (pf_events, b_events) = (events_of(&net, pf), events_of(&net, b));
    assert!(ok, "SIPp UAC against our PF; PF events {pf_events:?}; B events {b_events:?}; errors {:?}", net.errors());
    assert!(pf_events.iter().any(|e| e.contains("SessionEnded")), "PF's wait must end at BYE: {pf_events:?}");
    // The PF carried the session on to B and ended it there too.
    let sip = |msg: &str| {
        net.trace()
            .iter()
            .filter(|e| matches!(e, cpm_roles::sim::TraceEvent::Sip { hop, msg: m, .. } if hop == "L4" && m == msg))
            .count()
    };
    assert_eq!((sip("INVITE"), sip("ACK")), (1, 1), "{:?}", net.trace());
    // PF-B's BYE, and B's own when PF-B closed L4 first (they may cross).
    assert!(sip("BYE") >= 1, "{:?}", net.trace());
    assert!(net.errors().is_empty(), "{:?}", net.errors());
}

#[test]
fn sipp_uac_to_our_participating_function_tcp() {
    uac_to_pf("sipp_uac_to_our_participating_function_tcp", false);
}

#[test]
fn sipp_uac_to_our_participating_function_udp() {
    uac_to_pf("sipp_uac_to_our_participating_function_udp", true);
}

#[test]
fn sipp_uas_answers_our_sending_client_tcp() {
    let (sipp, dir) = match sipp() {
        Ok(found) => found,
        Err(why) => return skip("sipp_uas_answers_our_sending_client_tcp", &why),
    };
    let logs = scratch("sipp_uas_answers_our_sending_client_tcp");
    let port = free_port();
    let scenario = dir.join("uas-msrp.xml").display().to_string();
    let args: Vec<String> = [
        "-sf",
        &scenario,
        "-m",
        "1",
        "-t",
        "t1",
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-nostdin",
        "-timeout",
        "15s",
        "-timeout_error",
        "-trace_err",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let mut child = spawn_sipp(&sipp, &logs, &args);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut up = false;
    for _ in 0..100 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            up = true;
            break;
        }
        pause(50);
    }
    if !up {
        let _ = child.kill();
        panic!("SIPp UAS did not listen on {addr}: {}", sipp_logs(&logs));
    }
    // SIPp's TCP server takes the probe above as a first connection: give
    // it a moment to drop it.
    pause(100);
    let now = driver::now();
    let mut net = Driver::new();
    let config = EntityConfig::new("A", "a.example.com", 2855, fig1());
    let a = Client::sender(config, FlowId::new(1), Hop::L1, "L1", now, SimulationIds::new(13));
    let a = cpm_roles::scenario::Network::add(&mut net, "a.example.com", Box::new(a));
    net.connect_sip(a, FlowId::new(1), addr, "L1").unwrap();
    cpm_roles::scenario::Network::input(
        &mut net,
        a,
        Input::Command(cpm_roles::Command::SendMessage {
            session: cpm_roles::SessionId::new(1),
            target: format!("sip:bob@127.0.0.1:{port}"),
            recipients: Vec::new(),
            // OMA CPM wraps the content in CPIM; SIPp's UAS scenario wants
            // message/cpim among the offer's accept-types.
            content_type: "message/cpim".to_owned(),
            body: cpim(5000),
        }),
    );
    let ok = run_with(&mut net, &mut child, &logs);
    net.shutdown();
    let events = events_of(&net, a);
    assert!(ok, "SIPp UAS answering our client; our events {events:?}; errors {:?}", net.errors());
    let sent = |msg: &str| {
        net.trace()
            .iter()
            .any(|e| matches!(e, cpm_roles::sim::TraceEvent::Sip { from, msg: m, .. } if from == "A" && m == msg))
    };
    assert!(sent("INVITE") && sent("ACK") && sent("BYE"), "{:?}", net.trace());
}

/// A CPIM message (RFC 3862) wrapping `n` bytes of text.
fn cpim(n: usize) -> Bytes {
    let mut body = b"From: <sip:a@example.com>\r\nTo: <sip:bob@example.com>\r\nDateTime: 2026-11-27T08:00:00Z\r\n\r\n\
Content-Type: text/plain\r\n\r\n"
        .to_vec();
    body.resize(body.len() + n, b'x');
    Bytes::from(body)
}

/// Runs `wire-check.sh [flags] FILES`; returns its output and success.
fn wire_check(script: &Path, flags: &[&str], files: &[PathBuf]) -> (String, bool) {
    let output = Command::new("bash").arg(script).args(flags).args(files).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (text, output.status.success())
}

/// Runs `scenario` on sockets with wire logs and has Wireshark judge every
/// MSRP and SIP byte of it.
fn wireshark_judges(test: &str, scenario: &Scenario) {
    let script = interop_dir().join("wire-check.sh");
    if !script.is_file() {
        return skip(test, &format!("{} is missing", script.display()));
    }
    if tool("tshark").is_none() {
        return skip(test, "tshark is not installed (apt-get install -y tshark)");
    }
    let logs = scratch(test);
    let mut net = Driver::new();
    net.set_wire_log(logs).unwrap();
    scenario.populate(&mut net, driver::now(), scenario.body()).unwrap();
    let outcome = net.run_to_end(Duration::from_secs(10), &mut |_| {});
    net.shutdown();
    assert!(outcome.is_ok(), "{test}: {outcome:?}");
    let files = net.wire_files().to_vec();
    let pick = |ext: &str| -> Vec<PathBuf> {
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
            .cloned()
            .collect()
    };
    let (msrp, sip) = (pick("msrp"), pick("sip"));
    assert!(msrp.len() >= 6 && sip.len() >= 6, "{test}: wire logs: {files:?}");
    let (text, ok) = wire_check(&script, &[], &msrp);
    eprintln!("{test}: {}", text.lines().last().unwrap_or_default());
    assert!(ok, "{test}: Wireshark on our MSRP bytes:\n{text}");
    assert!(text.contains(" 0 error(s)"), "{text}");
    let (text, ok) = wire_check(&script, &["--sip"], &sip);
    eprintln!("{test}: {}", text.lines().last().unwrap_or_default());
    assert!(ok, "{test}: Wireshark on our SIP bytes:\n{text}");
}

#[test]
fn wireshark_judges_the_demo_bytes() {
    // The demo's chain (3 CPM members and a non-CPM one), a small message.
    let mut scenario = Scenario::figure("001-fig1").unwrap();
    scenario.members = 3;
    scenario.non_cpm = 1;
    scenario.size = 30_000;
    wireshark_judges("wireshark_judges_the_demo_bytes", &scenario);
}

/// Three members' sessions on one reused L3 connection (frames of several
/// sessions back to back on one stream), and SIP over UDP datagrams.
#[test]
fn wireshark_judges_a_shared_link_and_sip_over_udp() {
    let mut scenario = Scenario::figure("001-fig5").unwrap();
    scenario.members = 3;
    scenario.shared_pf_b = true;
    scenario.size = 30_000;
    scenario.sip_transport = cpm_roles::SipTransport::Unreliable;
    wireshark_judges("wireshark_judges_a_shared_link_and_sip_over_udp", &scenario);
}
