//! `cpm-node demo --processes`: the demo network with every entity but A
//! in its own OS process, each a `cpm-node run` of a config generated into
//! `OUT/configs/` (PF-A, the CF, PF-B1..n, B1..n), all on 127.0.0.1.
//!
//! A runs in the demo's own process, sends the message to the group and
//! hears each member's IMDN; each member's process logs the size and
//! CRC-32 of what it delivered, which the demo reads from its standard
//! error. At the end it reads every process's peak resident memory (Linux
//! `VmHWM`), stops them with SIGTERM (each ends its sessions and must exit
//! 0), and prints the member table and the process table. Each process
//! sees only its own hops, so there is no whole ladder here.
//!
//! Non-CPM members run only with `--smtp HOST:PORT` and email: the ISF and
//! an IWF per non-CPM member are processes too, and each IWF submits its
//! member's message to that SMTP server (the demo has no SMSC or MMSC to
//! point an SMS or MMS IWF at).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cpm_negotiation::{AckPolicy, Figure, Preset};
use cpm_roles::scenario::Scenario;
use cpm_roles::sim::crc32;
use cpm_roles::{Event, Output, SessionId, SipTransport};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{random_bytes, DemoOptions};
use crate::config::{NodeConfig, Strategy};
use crate::host::HostEvent;
use crate::serve;

/// How long a process may take to listen after it starts.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long a process may take to stop after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// After A's outcome, how long the last IMDNs may take.
const SETTLE: Duration = Duration::from_secs(5);
/// The group A sends to.
const GROUP: &str = "sip:group@cf.example";

/// What `demo --processes` runs.
#[derive(Debug)]
pub struct ProcessOptions {
    /// The figure (seed 001 FIG. 1, 3 or 5), members, message and files.
    pub demo: DemoOptions,
    /// A member (`B2`) whose process is killed (SIGKILL) when A has sent
    /// half the message.
    pub kill_member: Option<String>,
}

/// A member's URI (`sip:b2@b2.example`): its own host, so the CF and its
/// PF route to it by the host.
fn member_uri(k: usize) -> String {
    format!("sip:b{k}@b{k}.example")
}

/// A non-CPM member's URI: the CF sends `mail.example` to the ISF, which
/// picks IWF `k` for it.
fn non_cpm_uri(k: usize) -> String {
    format!("sip:user{k}@mail.example")
}

/// The config strategy of a scenario, when a node can run it.
fn strategy(scenario: &Scenario) -> Option<Strategy> {
    let strategy = match scenario.name.as_str() {
        "001-fig1" => (Strategy::InviteInitiator, Figure::Seed001Fig1),
        "001-fig3" => (Strategy::InviteReceiver, Figure::Seed001Fig3),
        "001-fig5" => (Strategy::ClientInitiative, Figure::Seed001Fig5),
        _ => return None,
    };
    // A changed trigger has no config field.
    (scenario.preset == Preset::figure(strategy.1)).then_some(strategy.0)
}

/// Why `options` cannot run as processes, if they cannot.
#[must_use]
pub fn unsupported(options: &ProcessOptions) -> Option<String> {
    let scenario = &options.demo.scenario;
    if strategy(scenario).is_none() {
        return Some(format!(
            "--processes runs the strategies of seed 001 (001-fig1, 001-fig3, 001-fig5) with their own triggers, \
             not {} as asked",
            scenario.name
        ));
    }
    let email = scenario.iwf.system == cpm_roles::NonCpmSystem::Email && options.demo.smtp.is_some();
    if scenario.non_cpm > 0 && !email {
        return Some(
            "--processes runs CPM members only, or non-CPM members by email with --smtp HOST:PORT: \
             the demo has no SMSC or MMSC to give an IWF (give --non-cpm 0)"
                .to_owned(),
        );
    }
    if scenario.members == 0 {
        return Some("--processes needs at least one member".to_owned());
    }
    let member = options.kill_member.as_deref();
    if member.is_some_and(|m| !(1..=scenario.members).any(|k| m.eq_ignore_ascii_case(&format!("B{k}")))) {
        return Some(format!("--kill-member {}: no such member (B1..B{})", member.unwrap_or(""), scenario.members));
    }
    None
}

/// A SIP and an MSRP port, free on 127.0.0.1 for TCP and UDP when asked.
fn free_ports(udp: bool) -> std::io::Result<(u16, u16)> {
    loop {
        let sip = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = sip.local_addr()?.port();
        if udp && std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let msrp = std::net::TcpListener::bind("127.0.0.1:0")?;
        return Ok((port, msrp.local_addr()?.port()));
    }
}

/// One node of the network.
struct Node {
    /// Its name and config file stem (`pf-a`, `cf`, `pf-b1`, `b1`).
    name: String,
    sip: u16,
    msrp: u16,
}

/// Every node of the network.
struct Nodes {
    a: Node,
    pf_a: Node,
    cf: Node,
    pf_b: Vec<Node>,
    b: Vec<Node>,
    isf: Option<Node>,
    iwf: Vec<Node>,
}

impl Nodes {
    fn all(&self) -> impl Iterator<Item = &Node> {
        [&self.a, &self.pf_a, &self.cf].into_iter().chain(&self.pf_b).chain(&self.b).chain(&self.isf).chain(&self.iwf)
    }
}

/// What every config shares, and writes each node's.
struct Network {
    strategy: Strategy,
    preset: Preset,
    udp: bool,
    tls: bool,
    max_size: u64,
    chunk_size: Option<usize>,
    dir: PathBuf,
    /// The SMTP server of the email IWFs.
    smtp: Option<String>,
}

fn ack(policy: AckPolicy) -> &'static str {
    match policy {
        AckPolicy::AfterUpstreamAck => "after-ack",
        AckPolicy::OnDownstreamSuccess => "on-200",
    }
}

impl Network {
    /// The SIP address of `node` as a route or listener.
    fn sip(&self, node: &Node) -> String {
        format!("{}://127.0.0.1:{}", if self.udp { "udp" } else { "tcp" }, node.sip)
    }

    /// The config text of `node`: `role`, its identity and `body` (the
    /// role's tables).
    fn config(&self, node: &Node, role: &str, uri: &str, body: &str) -> String {
        self.config_with(node, role, uri, body, true)
    }

    /// [`Network::config`]; `msrp`: whether the node has an MSRP listener
    /// (the ISF, a SIP proxy, has none).
    fn config_with(&self, node: &Node, role: &str, uri: &str, body: &str, msrp: bool) -> String {
        let mut sip = vec![format!("tcp://127.0.0.1:{}", node.sip)];
        if self.udp {
            sip.insert(0, format!("udp://127.0.0.1:{}", node.sip));
        }
        let sip: Vec<String> = sip.iter().map(|a| format!("{a:?}")).collect();
        let msrp = if msrp {
            format!("msrp_listen = [\"{}://127.0.0.1:{}\"]\n", if self.tls { "tls" } else { "tcp" }, node.msrp)
        } else {
            String::new()
        };
        let strategy = match self.strategy {
            Strategy::InviteInitiator => "invite-initiator",
            Strategy::InviteReceiver => "invite-receiver",
            Strategy::ClientInitiative => "client-initiative",
        };
        let mut text = format!(
            "# Generated by `cpm-node demo --processes`.\nrole = \"{role}\"\nlog = \"info\"\nsip_listen = [{}]\n\
             {msrp}\n[identity]\nname = \"{}\"\nhost = \"127.0.0.1\"\nuri = \"{uri}\"\n\n\
             [policy]\nstrategy = \"{strategy}\"\n",
            sip.join(", "),
            node.name,
        );
        text.push_str(body);
        let _ = write!(text, "\n[limits]\nmax_message_size = {}\n", self.max_size);
        if let Some(chunk) = self.chunk_size {
            let _ = writeln!(text, "chunk_size = {chunk}");
        }
        if self.tls {
            let path = |file: &str| format!("{:?}", self.dir.join(file).display().to_string());
            let _ = write!(
                text,
                "\n[tls]\ncert = {}\nkey = {}\nca = {}\n",
                path("node.crt"),
                path("node.key"),
                path("ca.pem")
            );
        }
        text
    }

    /// Every node's config, A's first.
    fn configs(&self, nodes: &Nodes) -> Vec<(String, String)> {
        let Nodes { a, pf_a, cf, pf_b, b, isf, iwf } = nodes;
        let route =
            |host: &str, to: &Node| format!("\n[[sip_route]]\nhost = \"{host}\"\naddress = \"{}\"\n", self.sip(to));
        let [pf_a_ack, cf_ack, pf_b_ack] = self.preset.ack_policy.map(ack);
        let mut out = vec![
            (a.name.clone(), self.config(a, "sender", "sip:a@a.example", &route("*", pf_a))),
            (
                pf_a.name.clone(),
                self.config(
                    pf_a,
                    "participating",
                    "sip:pf-a@a.example",
                    &format!("ack = \"{pf_a_ack}\"\n\n[participating]\nside = \"originating\"\n{}", route("*", cf)),
                ),
            ),
        ];
        let members: Vec<String> = (1..=b.len()).map(member_uri).chain((1..=iwf.len()).map(non_cpm_uri)).collect();
        let mut cf_body = format!(
            "ack = \"{cf_ack}\"\n\n[[group]]\nuri = \"{GROUP}\"\nmembers = [{}]\n",
            members.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
        );
        for (k, pf) in pf_b.iter().enumerate() {
            cf_body.push_str(&route(&format!("b{}.example", k + 1), pf));
        }
        if let Some(isf) = isf {
            // The non-CPM members' host goes to the ISF.
            cf_body.push_str(&route("mail.example", isf));
            cf_body.push_str("non_cpm = true\n");
        }
        out.push((cf.name.clone(), self.config(cf, "controlling", "sip:cf@cf.example", &cf_body)));
        for (k, (pf, member)) in pf_b.iter().zip(b).enumerate() {
            let user = member_uri(k + 1);
            let body = format!(
                "ack = \"{pf_b_ack}\"\n\n[participating]\nside = \"terminating\"\nusers = [\"{user}\"]\n{}",
                route(&format!("b{}.example", k + 1), member)
            );
            out.push((
                pf.name.clone(),
                self.config(pf, "participating", &format!("sip:pf-b{}@b{}.example", k + 1, k + 1), &body),
            ));
            out.push((member.name.clone(), self.config(member, "receiver", &user, "")));
        }
        if let (Some(isf), Some(smtp)) = (isf, &self.smtp) {
            // The ISF picks IWF k for non-CPM member k, and sends in-dialog
            // requests from the IWFs back to the CF.
            let mut body = String::new();
            for (k, iwf) in iwf.iter().enumerate() {
                let _ = write!(
                    body,
                    "\n[[iwf_rule]]\nreceiver_suffix = \"{}\"\niwf = \"sip:iwf{}@iwf{}.example\"\n",
                    non_cpm_uri(k + 1),
                    k + 1,
                    k + 1
                );
                body.push_str(&route(&format!("iwf{}.example", k + 1), iwf));
            }
            body.push_str(&route("cf.example", cf));
            out.push((isf.name.clone(), self.config_with(isf, "isf", "sip:isf@isf.example", &body, false)));
            for (k, node) in iwf.iter().enumerate() {
                let body = format!("\n[iwf]\nsystem = \"email\"\ntarget = \"{smtp}\"\nreport = \"on-ack\"\n");
                let uri = format!("sip:iwf{}@iwf{}.example", k + 1, k + 1);
                out.push((node.name.clone(), self.config(node, "iwf", &uri, &body)));
            }
        }
        out
    }
}

/// A CA, and one certificate it signs for 127.0.0.1 that every node
/// presents, written as `ca.pem`, `node.crt` and `node.key` into `dir`.
fn write_certificates(dir: &Path) -> Result<(), String> {
    let made = super::DemoCertificates::new(&["127.0.0.1".to_owned()])?;
    for (file, pem) in
        [("ca.pem", made.ca.pem()), ("node.crt", made.leaf.pem()), ("node.key", made.key.serialize_pem())]
    {
        std::fs::write(dir.join(file), pem).map_err(|e| format!("demo certificates: {e}"))?;
    }
    Ok(())
}

/// What a member's process said it delivered: bytes and CRC-32.
type Delivered = Arc<Mutex<HashMap<String, (usize, u32)>>>;

/// One running node process.
struct Process {
    name: String,
    child: Child,
    pid: u32,
    /// Its last lines of log, for when it fails.
    tail: Arc<Mutex<Vec<String>>>,
}

/// The `bytes=` and `crc32=` fields of a `message delivered` log line.
fn delivered_fields(line: &str) -> Option<(usize, u32)> {
    if !line.contains("message delivered") {
        return None;
    }
    let field = |name: &str| {
        let start = line.find(name)? + name.len();
        line.get(start..)?.split_whitespace().next()
    };
    Some((field("bytes=")?.parse().ok()?, u32::from_str_radix(field("crc32=")?, 16).ok()?))
}

impl Process {
    /// Starts `cpm-node run CONFIG`; its log is read for deliveries.
    fn start(name: &str, config: &Path, delivered: &Delivered) -> std::io::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .arg("run")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().unwrap_or(0);
        let tail = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let (tail, delivered, name) = (Arc::clone(&tail), Arc::clone(delivered), name.to_owned());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(fields) = delivered_fields(&line) {
                        if let Ok(mut delivered) = delivered.lock() {
                            delivered.insert(name.clone(), fields);
                        }
                    }
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == 20 {
                            tail.remove(0);
                        }
                        tail.push(line);
                    }
                }
            });
        }
        Ok(Self { name: name.to_owned(), child, pid, tail })
    }

    /// Waits until its SIP TCP listener takes connections.
    async fn wait_listening(&mut self, sip: u16) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", sip)).await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited at start ({status}):\n{}", self.name, self.log()));
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen within {}s:\n{}",
                    self.name,
                    START_DEADLINE.as_secs(),
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        self.tail.lock().map(|tail| tail.join("\n")).unwrap_or_default()
    }

    /// Its peak resident memory in bytes (Linux `/proc/PID/status` `VmHWM`).
    fn peak_rss(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// SIGTERM, then its exit status within [`STOP_DEADLINE`] (killed
    /// past it). `None`: it had already gone, or had to be killed.
    async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        match tokio::time::timeout(STOP_DEADLINE, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.kill().await;
                None
            }
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs the demo as processes; the exit status says whether every member
/// received the message intact.
pub async fn run(options: &ProcessOptions) -> ExitCode {
    if let Some(why) = unsupported(options) {
        eprintln!("cpm-node demo: {why}");
        return ExitCode::from(crate::cli::EXIT_NOT_IMPLEMENTED);
    }
    match demo(options).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("demo: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn demo(options: &ProcessOptions) -> Result<ExitCode, String> {
    let scenario = &options.demo.scenario;
    let Some(strategy) = strategy(scenario) else { return Err("no such strategy".into()) };
    let body = random_bytes(scenario.seed ^ 0xD3E0, scenario.size);
    let sent_crc = crc32(&body);
    let dir = options.demo.out.join("configs");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let network = Network {
        strategy,
        preset: scenario.preset,
        udp: scenario.sip_transport == SipTransport::Unreliable,
        tls: options.demo.tls,
        max_size: scenario.max_size.unwrap_or(64 << 20),
        chunk_size: scenario.chunk_size,
        dir: dir.clone(),
        smtp: options.demo.smtp.clone(),
    };
    if network.tls {
        write_certificates(&dir)?;
    }
    let node = |name: String| -> Result<Node, String> {
        let (sip, msrp) = free_ports(network.udp).map_err(|e| format!("no free port: {e}"))?;
        Ok(Node { name, sip, msrp })
    };
    let (cpm, non_cpm) = (scenario.members, scenario.non_cpm);
    let nodes = Nodes {
        a: node("a".into())?,
        pf_a: node("pf-a".into())?,
        cf: node("cf".into())?,
        pf_b: (1..=cpm).map(|k| node(format!("pf-b{k}"))).collect::<Result<Vec<_>, _>>()?,
        b: (1..=cpm).map(|k| node(format!("b{k}"))).collect::<Result<Vec<_>, _>>()?,
        isf: if non_cpm > 0 { Some(node("isf".into())?) } else { None },
        iwf: (1..=non_cpm).map(|k| node(format!("iwf{k}"))).collect::<Result<Vec<_>, _>>()?,
    };
    // Each member: its row's name, its process, its URI.
    let member_rows: Vec<(String, String, String)> = (1..=cpm)
        .map(|k| (format!("B{k}"), format!("b{k}"), member_uri(k)))
        .chain((1..=non_cpm).map(|k| (format!("IWF{k}"), format!("iwf{k}"), non_cpm_uri(k))))
        .collect();
    let members = member_rows.len();
    let configs = network.configs(&nodes);
    let ports: HashMap<&str, u16> = nodes.all().map(|n| (n.name.as_str(), n.sip)).collect();
    for (name, text) in &configs {
        std::fs::write(dir.join(format!("{name}.toml")), text).map_err(|e| format!("{name}.toml: {e}"))?;
    }

    println!(
        "demo: {} from A to {cpm} CPM and {non_cpm} non-CPM member(s), {} bytes (crc {sent_crc:08x}), {} processes \
         on 127.0.0.1 (configs in {})",
        scenario.name,
        scenario.size,
        configs.len() - 1,
        dir.display()
    );
    let delivered: Delivered = Arc::default();
    let mut processes = Vec::new();
    for (name, _) in configs.iter().skip(1) {
        let config = dir.join(format!("{name}.toml"));
        let process = Process::start(name, &config, &delivered).map_err(|e| format!("cannot start {name}: {e}"))?;
        processes.push(process);
    }
    for process in &mut processes {
        let sip = ports.get(process.name.as_str()).copied().unwrap_or(0);
        process.wait_listening(sip).await?;
        println!(
            "  {:<6} pid {:<7} SIP {} MSRP {}",
            process.name,
            process.pid,
            sip,
            if network.tls { "tls" } else { "tcp" }
        );
    }

    // A, in this process, from its generated config.
    let a_config = configs.first().map(|(_, text)| text.as_str()).unwrap_or_default();
    let a_config = NodeConfig::parse(a_config).map_err(|e| format!("a.toml: {e}"))?;
    let mut host = serve::start(&a_config, 64).await.map_err(|e| format!("A: {e}"))?;
    let session = SessionId::new(1);
    let send = cpm_roles::Command::SendMessage {
        session,
        target: GROUP.to_owned(),
        recipients: Vec::new(),
        content_type: "text/plain".to_owned(),
        body: body.clone(),
    };
    let started = crate::host::now();
    host.input(0, cpm_roles::Input::Command(send)).await;

    let size = scenario.size.max(1) as u64;
    let mut sent = 0u64;
    let mut reported = 0;
    let mut killed = None;
    let mut imdn: HashMap<String, bool> = HashMap::new();
    let mut outcome = None;
    let deadline = tokio::time::Instant::now() + options.demo.timeout;
    let mut settle = deadline;
    loop {
        let Ok(Some(said)) = tokio::time::timeout_at(settle.min(deadline), host.next_output()).await else { break };
        match said.event {
            HostEvent::Output(Output::MsrpTransmit { transmit, .. }) => {
                sent += transmit.body.len() as u64;
                let quarter = (sent.min(size) * 4 / size) as usize;
                while reported < quarter {
                    reported += 1;
                    println!("progress: A sent {:>3}% ({} bytes)", reported * 25, sent.min(size));
                }
                if killed.is_none() && sent * 2 >= size {
                    if let Some(victim) = options.kill_member.as_deref() {
                        let target = processes.iter_mut().find(|p| p.name.eq_ignore_ascii_case(victim));
                        if let Some(process) = target {
                            let _ = process.child.start_kill();
                            println!("killed: {} (pid {}) after A sent {sent} bytes", process.name, process.pid);
                            killed = Some(process.name.clone());
                        }
                    }
                }
            }
            HostEvent::Output(Output::Event { event: Event::Delivery { member, status }, .. }) => {
                let ok = status == cpm_negotiation::imdn::DeliveryStatus::Delivered;
                println!("member {member}: {}", if ok { "delivered" } else { "failed" });
                imdn.insert(member, ok);
            }
            HostEvent::Output(Output::Event { session: Some(s), event: Event::Outcome { outcome: o } })
                if s == session =>
            {
                outcome = Some((o, crate::host::now().duration_since(started)));
                settle = tokio::time::Instant::now() + SETTLE;
            }
            HostEvent::Settled(true) if outcome.is_some() && imdn.len() >= members => break,
            _ => {}
        }
    }
    host.shutdown().await;
    match outcome {
        Some((outcome, after)) => println!("run: A's outcome {outcome:?} after {:.3} s", after.as_secs_f64()),
        None => println!("run: no outcome at A within {}s", options.demo.timeout.as_secs()),
    }

    // The last log lines may still be on their way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let peaks: Vec<Option<u64>> = processes.iter().map(Process::peak_rss).collect();
    let mut stopped = Vec::new();
    for process in &mut processes {
        stopped.push(process.stop().await);
    }

    println!("\nprocess  pid      peak RSS    exit after SIGTERM");
    for ((process, peak), status) in processes.iter().zip(&peaks).zip(&stopped) {
        let peak = peak.map_or_else(|| "-".to_owned(), |p| format!("{:.1} MiB", mib(p)));
        let exit = match status {
            _ if killed.as_deref() == Some(process.name.as_str()) => "killed mid-message".to_owned(),
            Some(status) if status.success() => "0".to_owned(),
            Some(status) => format!("{status}\n{}", process.log()),
            None => "did not stop in time".to_owned(),
        };
        println!("{:<8} {:<8} {:>10}  {exit}", process.name, process.pid, peak);
    }
    let relays = processes.iter().zip(&peaks).filter(|(p, _)| p.name.starts_with("pf") || p.name == "cf");
    if let Some(largest) = relays.filter_map(|(_, peak)| *peak).max() {
        println!(
            "relays: the largest peak RSS of a PF or the CF is {:.1} MiB for a {:.1} MiB message",
            mib(largest),
            mib(scenario.size as u64)
        );
    }

    println!("\nmember  bytes received  crc-32    intact  IMDN");
    let delivered = delivered.lock().map(|d| d.clone()).unwrap_or_default();
    let mut intact = 0;
    for (name, process, uri) in &member_rows {
        let heard = imdn.get(uri).copied();
        let imdn_text = heard.map_or("-", |ok| if ok { "delivered" } else { "failed" });
        match delivered.get(process) {
            Some(&(bytes, crc)) => {
                let ok = bytes == scenario.size && crc == sent_crc && heard == Some(true);
                intact += usize::from(ok);
                println!("{name:<6}  {bytes:>14}  {crc:08x}  {:<6}  {imdn_text}", if ok { "yes" } else { "NO" });
            }
            None => println!("{name:<6}  {:>14}  {:<8}  {:<6}  {imdn_text}", 0, "-", "NO"),
        }
    }
    let clean = processes
        .iter()
        .zip(&stopped)
        .all(|(p, status)| killed.as_deref() == Some(p.name.as_str()) || status.is_some_and(|s| s.success()));
    if !clean {
        println!("stop: a process did not end cleanly on SIGTERM");
    }
    println!("result: {intact}/{members} members received the message intact");
    Ok(if intact == members && clean { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivered_line_gives_its_size_and_crc() {
        let line = "2026-12-07T18:00:00Z  INFO cpm_node::serve: message delivered session=Some(SessionId(1)) \
                    bytes=5242880 crc32=0badf00d";
        assert_eq!(delivered_fields(line), Some((5_242_880, 0x0bad_f00d)));
        assert_eq!(delivered_fields("INFO cpm_node::serve: message submitted bytes=5"), None);
        assert_eq!(delivered_fields("message delivered bytes=x crc32=1"), None);
    }
}
