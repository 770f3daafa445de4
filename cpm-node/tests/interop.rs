//! Interop with real peers over loopback, on the runtime. Each test skips
//! with a loud message when its tool is missing (`apt-get install -y
//! sip-tester tshark`; `.ci/run` installs them):
//!
//! - SIPp (`../shared/interop/sipp/uac-msrp.xml`) as a UAC sends INVITE with
//!   an MSRP offer (`a=setup:active`), ACK and BYE to our receiving client,
//!   and to our terminating participating function (with our client behind
//!   it), over TCP and UDP, each entity a served node ([`Host::serve`]).
//!   SIPp never opens the MSRP connection: our side answers `passive`,
//!   waits, and ends that wait at BYE.
//! - SIPp (`uas-msrp.xml`) as a UAS answers our sending client's INVITE.
//! - Wireshark (`../shared/interop/wire-check.sh`) judges every SIP and MSRP
//!   byte the demo's chain writes: no malformed packet.

mod support;

use support::node::free_port;

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use cpm_negotiation::{Figure, Hop, Preset};
use cpm_node::host::{now, Host, HostEvent, HostOptions, HostOutput};
use cpm_node::transport::{ListenAddr, Listener};
use cpm_roles::scenario::Scenario;
use cpm_roles::{
    Client, Downstream, Entity, EntityConfig, Event, FlowId, Input, Output, Participating, SimulationIds, SipTransport,
};
use sip_lite::sip::Message;
use support::net::Net;

use support::{interop_dir, skip, tool};

/// A scratch directory for one test's logs.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpm-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free port")
}

fn addr(text: &str) -> ListenAddr {
    text.parse().expect("an address")
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
    let out = File::create(logs.join("sipp.out")).expect("sipp.out");
    let err = File::create(logs.join("sipp.err")).expect("sipp.err");
    Command::new(sipp)
        .args(args)
        .current_dir(logs)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("SIPp starts")
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

fn fig1() -> Preset {
    Preset::figure(Figure::Seed001Fig1)
}

/// An MSRP listener on loopback, and a config whose URIs name it.
async fn msrp_listener(name: &str) -> (Listener, EntityConfig) {
    let listener = Listener::bind(&addr("tcp://127.0.0.1:0"), None).await.expect("bound");
    let config = EntityConfig::new(name, "127.0.0.1", listener.local_addr().addr.port(), fig1());
    (listener, config)
}

/// `entity` served on SIP listener `sip` (if any) and `msrp`, with `routes`.
async fn serve(
    entity: Box<dyn Entity>,
    sip: Option<ListenAddr>,
    msrp: Listener,
    routes: Vec<(FlowId, ListenAddr)>,
) -> Host {
    let sip: Vec<ListenAddr> = sip.into_iter().collect();
    Host::serve(entity, &sip, vec![msrp], routes, 64, HostOptions::default()).await.expect("served")
}

/// What the served entities said during a SIPp run.
#[derive(Default)]
struct Seen {
    /// Every event, by entity name.
    events: Vec<(String, Event)>,
    /// Every SIP message sent: entity name, flow, method or status code.
    sip: Vec<(String, FlowId, String)>,
    /// SIP this side sent that does not parse.
    errors: Vec<String>,
}

impl Seen {
    fn take(&mut self, name: &str, said: HostOutput) {
        match said.event {
            HostEvent::Output(Output::Event { event, .. }) => self.events.push((name.to_owned(), event)),
            HostEvent::Output(Output::SipTransmit { flow, bytes }) => match Message::parse(bytes) {
                Ok(message) => {
                    let msg = message.method().map_or_else(
                        || message.status_code().map_or_else(String::new, |c| c.to_string()),
                        str::to_owned,
                    );
                    self.sip.push((name.to_owned(), flow, msg));
                }
                Err(error) => self.errors.push(format!("{name}: unparsable SIP: {error}")),
            },
            _ => {}
        }
    }

    /// The events of `name`, without bodies.
    fn events_of(&self, name: &str) -> Vec<String> {
        self.events
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, e)| match e {
                Event::MessageDelivered { body } => format!("MessageDelivered {} bytes", body.len()),
                Event::Submitted { bytes } => format!("Submitted {} bytes", bytes.len()),
                other => format!("{other:?}"),
            })
            .collect()
    }
}

/// Runs the served `nodes` until SIPp exits (at most 20 s), and a moment
/// more for our side to take in what SIPp sent last, then stops them;
/// returns whether SIPp succeeded.
async fn run_with(mut nodes: Vec<(&str, Host)>, child: &mut Child, logs: &Path, seen: &mut Seen) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut status = None;
    let mut linger = None;
    loop {
        let mut quiet = true;
        for (name, host) in &mut nodes {
            // What is ready now (`recv` is cancel-safe).
            while let Ok(Some(said)) = tokio::time::timeout(Duration::ZERO, host.next_output()).await {
                seen.take(name, said);
                quiet = false;
            }
        }
        if status.is_none() {
            status = child.try_wait().ok().flatten();
            if status.is_some() {
                linger = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            }
        }
        let now = tokio::time::Instant::now();
        if linger.is_some_and(|until| now >= until) || now >= deadline {
            break;
        }
        if quiet {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for (_, host) in nodes {
        host.shutdown().await;
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("SIPp did not finish: {}", sipp_logs(logs));
        return false;
    };
    if !status.success() {
        eprintln!("SIPp failed ({status:?}):\n{}", sipp_logs(logs));
    }
    status.success()
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

/// Where SIPp sends: a free port on loopback, over UDP or TCP.
fn sip_target(udp: bool) -> (ListenAddr, SocketAddr) {
    let (scheme, port) = if udp { ("udp", free_udp_port()) } else { ("tcp", free_port()) };
    let listen = addr(&format!("{scheme}://127.0.0.1:{port}"));
    (listen, listen.addr)
}

async fn uac_to_client(test: &str, udp: bool) {
    let (sipp, dir) = match sipp() {
        Ok(found) => found,
        Err(why) => return skip(test, &why),
    };
    let complaints = support::logs::capture().await;
    let logs = scratch(test);
    let (msrp, config) = msrp_listener("B").await;
    let b = Client::receiver(config, Hop::L4, "L4", now(), SimulationIds::new(11));
    let (listen, target) = sip_target(udp);
    let b = serve(Box::new(b), Some(listen), msrp, Vec::new()).await;
    let mut child = spawn_sipp(&sipp, &logs, &uac_args(&dir, target, udp));
    let mut seen = Seen::default();
    let ok = run_with(vec![("B", b)], &mut child, &logs, &mut seen).await;
    let events = seen.events_of("B");
    assert!(ok, "SIPp UAC against our client; our events {events:?}; errors {:?}", seen.errors);
    assert!(events.iter().any(|e| e.contains("SessionEnded")), "the wait must end at BYE: {events:?}");
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(complaints.lines().is_empty(), "the runtime complained: {:#?}", complaints.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_to_our_receiving_client_tcp() {
    uac_to_client("sipp_uac_to_our_receiving_client_tcp", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_to_our_receiving_client_udp() {
    uac_to_client("sipp_uac_to_our_receiving_client_udp", true).await;
}

/// The PF's flow to B (its one route).
const TO_B: FlowId = FlowId::new(100);

async fn uac_to_pf(test: &str, udp: bool) {
    let (sipp, dir) = match sipp() {
        Ok(found) => found,
        Err(why) => return skip(test, &why),
    };
    let complaints = support::logs::capture().await;
    let logs = scratch(test);
    let mut ids = SimulationIds::new(12);
    let down = Downstream { target: "sip:b@example.com".to_owned(), flow: TO_B, hop: Hop::L4, label: "L4".to_owned() };
    let (msrp, pf_config) = msrp_listener("PF-B").await;
    let pf = Participating::new(pf_config, Hop::L3, "L3", down, now(), ids.fork());
    let (b_msrp, b_config) = msrp_listener("B").await;
    let b = Client::receiver(b_config, Hop::L4, "L4", now(), ids.fork());
    let b_sip = addr(&format!("tcp://127.0.0.1:{}", free_port()));
    let b = serve(Box::new(b), Some(b_sip), b_msrp, Vec::new()).await;
    let (listen, target) = sip_target(udp);
    let pf = serve(Box::new(pf), Some(listen), msrp, vec![(TO_B, b_sip)]).await;
    let mut child = spawn_sipp(&sipp, &logs, &uac_args(&dir, target, udp));
    let mut seen = Seen::default();
    let ok = run_with(vec![("PF-B", pf), ("B", b)], &mut child, &logs, &mut seen).await;
    let (pf_events, b_events) = (seen.events_of("PF-B"), seen.events_of("B"));
    assert!(ok, "SIPp UAC against our PF; PF events {pf_events:?}; B events {b_events:?}; errors {:?}", seen.errors);
    assert!(pf_events.iter().any(|e| e.contains("SessionEnded")), "PF's wait must end at BYE: {pf_events:?}");
    // The PF carried the session on to B (L4: the PF's flow to B, and all B
    // sent) and ended it there too.
    let sip = |msg: &str| seen.sip.iter().filter(|(who, flow, m)| (who == "B" || *flow == TO_B) && m == msg).count();
    assert_eq!((sip("INVITE"), sip("ACK")), (1, 1), "{:?}", seen.sip);
    // PF-B's BYE, and B's own when PF-B closed L4 first (they may cross).
    assert!(sip("BYE") >= 1, "{:?}", seen.sip);
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(complaints.lines().is_empty(), "the runtime complained: {:#?}", complaints.lines());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_to_our_participating_function_tcp() {
    uac_to_pf("sipp_uac_to_our_participating_function_tcp", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_to_our_participating_function_udp() {
    uac_to_pf("sipp_uac_to_our_participating_function_udp", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uas_answers_our_sending_client_tcp() {
    let test = "sipp_uas_answers_our_sending_client_tcp";
    let (sipp, dir) = match sipp() {
        Ok(found) => found,
        Err(why) => return skip(test, &why),
    };
    let _complaints = support::logs::capture().await;
    let logs = scratch(test);
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
    let uas: SocketAddr = format!("127.0.0.1:{port}").parse().expect("an address");
    let mut up = false;
    for _ in 0..100 {
        let probe = tokio::time::timeout(Duration::from_millis(100), tokio::net::TcpStream::connect(uas)).await;
        if matches!(probe, Ok(Ok(_))) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !up {
        let _ = child.kill();
        panic!("SIPp UAS did not listen on {uas}: {}", sipp_logs(&logs));
    }
    // SIPp's TCP server takes the probe above as a first connection: give
    // it a moment to drop it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (msrp, config) = msrp_listener("A").await;
    let route = FlowId::new(1);
    let a = Client::sender(config, route, Hop::L1, "L1", now(), SimulationIds::new(13));
    let a = serve(Box::new(a), None, msrp, vec![(route, addr(&format!("tcp://127.0.0.1:{port}")))]).await;
    a.input(
        0,
        Input::Command(cpm_roles::Command::SendMessage {
            session: cpm_roles::SessionId::new(1),
            target: format!("sip:bob@127.0.0.1:{port}"),
            recipients: Vec::new(),
            // OMA CPM wraps the content in CPIM; SIPp's UAS scenario wants
            // message/cpim among the offer's accept-types.
            content_type: "message/cpim".to_owned(),
            body: cpim(5000),
        }),
    )
    .await;
    let mut seen = Seen::default();
    let ok = run_with(vec![("A", a)], &mut child, &logs, &mut seen).await;
    let events = seen.events_of("A");
    assert!(ok, "SIPp UAS answering our client; our events {events:?}; errors {:?}", seen.errors);
    let sent = |msg: &str| seen.sip.iter().any(|(who, _, m)| who == "A" && m == msg);
    assert!(sent("INVITE") && sent("ACK") && sent("BYE"), "{:?}", seen.sip);
}

/// A CPIM message (RFC 3862) wrapping `n` bytes of text.
fn cpim(n: usize) -> Bytes {
    let mut body = b"From: <sip:a@example.com>\r\nTo: <sip:bob@example.com>\r\nDateTime: 2026-11-27T08:00:00Z\r\n\r\n\
Content-Type: text/plain\r\n\r\n"
        .to_vec();
    body.resize(body.len() + n, b'x');
    Bytes::from(body)
}

/// Every byte each entity writes on each SIP flow and MSRP connection, a
/// file each (`NNN-ENTITY-sip-FLOW.sip`, `NNN-ENTITY-msrp-CONN.msrp`): what
/// the runtime hands its writers, in order.
struct WireLog {
    dir: PathBuf,
    names: Vec<String>,
    files: HashMap<(usize, &'static str, u64), File>,
    paths: Vec<PathBuf>,
}

impl WireLog {
    fn new(dir: PathBuf, names: Vec<String>) -> Self {
        Self { dir, names, files: HashMap::new(), paths: Vec::new() }
    }

    fn record(&mut self, said: &HostOutput) {
        let HostEvent::Output(output) = &said.event else { return };
        match output {
            Output::SipTransmit { flow, bytes } => self.write(said.entity, "sip", flow.get(), &[bytes]),
            Output::MsrpTransmit { conn, transmit } => {
                self.write(said.entity, "msrp", conn.get(), &[&transmit.head, &transmit.body, &transmit.end_line]);
            }
            _ => {}
        }
    }

    fn write(&mut self, entity: usize, kind: &'static str, id: u64, parts: &[&Bytes]) {
        let file = self.files.entry((entity, kind, id)).or_insert_with(|| {
            let name = self.names.get(entity).map_or("peer", String::as_str);
            let path = self.dir.join(format!("{:03}-{name}-{kind}-{id}.{kind}", self.paths.len()));
            let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            self.paths.push(path);
            file
        });
        for part in parts {
            file.write_all(part).expect("a wire log write");
        }
    }
}

/// Runs `wire-check.sh [flags] FILES`; returns its output and success.
fn wire_check(script: &Path, flags: &[&str], files: &[PathBuf]) -> (String, bool) {
    let output = Command::new("bash").arg(script).args(flags).args(files).output().expect("wire-check runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (text, output.status.success())
}

/// Runs `scenario` on the runtime with wire logs and has Wireshark judge
/// every MSRP and SIP byte of it.
async fn wireshark_judges(test: &str, scenario: &Scenario, options: HostOptions) {
    let script = interop_dir().join("wire-check.sh");
    if !script.is_file() {
        return skip(test, &format!("{} is missing", script.display()));
    }
    if tool("tshark").is_none() {
        return skip(test, "tshark is not installed (apt-get install -y tshark)");
    }
    // What it logs stays out of the other tests' capture.
    let _complaints = support::logs::capture().await;
    let mut net = Net::start(scenario, options).await;
    let mut wire = WireLog::new(scratch(test), net.names().to_vec());
    let ended = net.run_to_end(Duration::from_secs(20), |said| wire.record(said)).await;
    net.shutdown().await;
    assert!(ended.is_ok(), "{test}: {ended:?}");
    let files = std::mem::take(&mut wire.paths);
    drop(wire);
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
    // RFC 4975 s.6: over TLS every URI is `msrps`.
    let scheme = if scenario.msrp_tls { "To-Path: msrps://" } else { "To-Path: msrp://" };
    for path in &msrp {
        let bytes = std::fs::read(path).expect("a wire log");
        assert!(bytes.windows(scheme.len()).any(|w| w == scheme.as_bytes()), "{test}: no {scheme:?} in {path:?}");
    }
    let (text, ok) = wire_check(&script, &[], &msrp);
    eprintln!("{test}: {}", text.lines().last().unwrap_or_default());
    assert!(ok, "{test}: Wireshark on our MSRP bytes:\n{text}");
    assert!(text.contains(" 0 error(s)"), "{text}");
    let (text, ok) = wire_check(&script, &["--sip"], &sip);
    eprintln!("{test}: {}", text.lines().last().unwrap_or_default());
    assert!(ok, "{test}: Wireshark on our SIP bytes:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wireshark_judges_the_demo_bytes() {
    // The demo's chain (3 CPM members and a non-CPM one), a small message.
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = 3;
    scenario.non_cpm = 1;
    scenario.size = 30_000;
    wireshark_judges("wireshark_judges_the_demo_bytes", &scenario, HostOptions::default()).await;
}

/// Three members' sessions on one reused L3 connection (frames of several
/// sessions back to back on one stream), and SIP over UDP datagrams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wireshark_judges_a_shared_link_and_sip_over_udp() {
    let mut scenario = Scenario::figure("001-fig5").expect("a figure");
    scenario.members = 3;
    scenario.shared_pf_b = true;
    scenario.size = 30_000;
    scenario.sip_transport = SipTransport::Unreliable;
    wireshark_judges("wireshark_judges_a_shared_link_and_sip_over_udp", &scenario, HostOptions::default()).await;
}

/// The demo over TLS (`msrps:` URIs, every MSRP link TLS with the
/// certificate checked against the URI's host, RFC 4975 s.5.4): what each
/// entity writes into its TLS layer is logged, and Wireshark judges those
/// plaintext bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wireshark_judges_the_plaintext_of_a_tls_demo() {
    let mut scenario = Scenario::figure("001-fig1").expect("a figure");
    scenario.members = 2;
    scenario.size = 30_000;
    scenario.msrp_tls = true;
    let mut topology = cpm_node::Topology::new();
    scenario.populate(&mut topology, now(), scenario.body()).expect("a scenario");
    let hosts = topology.hosts();
    let options = support::tls_host_options(&hosts.iter().map(String::as_str).collect::<Vec<_>>());
    wireshark_judges("wireshark_judges_the_plaintext_of_a_tls_demo", &scenario, options).await;
}
