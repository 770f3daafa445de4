//! A scenario on the [`Host`] over loopback, seen as the simulator sees it:
//! the trace (every SIP message by hop, every link opened or reused, every
//! MSRP frame by hop, every close, every delivery), every entity's events,
//! and A's outcome. The non-CPM system behind each IWF takes every message
//! (status 200), as in the demo.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpm_negotiation::imdn::DeliveryStatus;
use cpm_negotiation::LinkKey;
use cpm_node::host::{now, Host, HostEvent, HostOptions, HostOutput, SipLink, Topology};
use cpm_roles::diagram::TraceRecorder;
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::sim::{crc32, shared_link_hop, TraceEvent};
use cpm_roles::{ConnId, Event, HopId, Input, Outcome, Output};

/// How long nothing may happen once every entity settled before a run
/// counts as over (the last answers cross the sockets meanwhile).
const QUIET: Duration = Duration::from_millis(200);

/// One MSRP connection as the trace names it.
struct TraceLink {
    /// The entity at the other end.
    peer: Option<usize>,
    /// The hop it was opened for.
    label: String,
    /// Opened here: the hops on it (label, first URI of the peer's path) and
    /// the key reuse matches. Accepted here: the opener's end.
    hops: Vec<(String, String)>,
    key: Option<LinkKey>,
    opener: Option<(usize, ConnId)>,
    /// Accepted here: the opener's address (its end may come up later than
    /// this one).
    remote: Option<SocketAddr>,
}

/// A scenario running on a [`Host`], and what it said so far.
pub(crate) struct Net {
    pub(crate) host: Host,
    /// Every entity event: which entity, what.
    pub(crate) events: Vec<(usize, Event)>,
    /// A's outcome for the scenario's message.
    pub(crate) outcome: Option<Outcome>,
    /// SIP this side sent that does not parse.
    pub(crate) errors: Vec<String>,
    names: Vec<String>,
    hosts: HashMap<String, usize>,
    sip: Vec<SipLink>,
    recorder: TraceRecorder,
    inputs: Vec<(usize, Input)>,
    settled: Vec<bool>,
    /// Connects asked for, by entity and hop: label, key, first path URI.
    asked: HashMap<(usize, HopId), (String, LinkKey, String)>,
    links: HashMap<(usize, ConnId), TraceLink>,
    /// Where each opened connection's local end is.
    by_addr: HashMap<SocketAddr, (usize, ConnId)>,
    /// Hops that joined a link still being opened: entity, key, hop and
    /// first path URI.
    joining: Vec<(usize, LinkKey, String, String)>,
}

impl Net {
    /// `scenario` (its message: [`Scenario::body`]) started on a [`Host`].
    pub(crate) async fn start(scenario: &Scenario, options: HostOptions) -> Self {
        let mut net = Self::prepare(scenario, options).await;
        net.go().await;
        net
    }

    /// [`Net::start`], with A's command held back until [`Net::go`].
    pub(crate) async fn prepare(scenario: &Scenario, options: HostOptions) -> Self {
        let body = scenario.body();
        let mut topology = Topology::new();
        let epoch = now();
        scenario.populate(&mut topology, epoch, body.clone()).expect("a scenario");
        let (names, sip) = (topology.names(), topology.sip_links().to_vec());
        let hosts = topology.hosts().into_iter().enumerate().map(|(index, host)| (host, index)).collect();
        let inputs = topology.take_inputs();
        let host = Host::start(topology, options).await.expect("started");
        let mut recorder = TraceRecorder::new();
        recorder.submit(epoch, "A", &body);
        Self {
            host,
            events: Vec::new(),
            outcome: None,
            errors: Vec::new(),
            settled: vec![false; names.len()],
            names,
            hosts,
            sip,
            recorder,
            inputs,
            asked: HashMap::new(),
            links: HashMap::new(),
            by_addr: HashMap::new(),
            joining: Vec::new(),
        }
    }

    /// Hands A its command.
    pub(crate) async fn go(&mut self) {
        for (index, input) in std::mem::take(&mut self.inputs) {
            self.host.input(index, input).await;
        }
    }

    /// The entities' names, by index.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of the entity named `name`.
    pub(crate) fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| n == name).unwrap_or_else(|| panic!("no entity {name}"))
    }

    /// The trace so far (the simulator's schema).
    pub(crate) fn trace(&self) -> &[TraceEvent] {
        self.recorder.events()
    }

    /// The next thing an entity said, recorded, before `deadline`.
    pub(crate) async fn next(&mut self, deadline: tokio::time::Instant) -> Option<HostOutput> {
        let said = tokio::time::timeout_at(deadline, self.host.next_output()).await.ok()??;
        self.record(&said).await;
        Some(said)
    }

    /// Runs until A has its outcome and every entity settled with nothing
    /// said for a moment, showing `on` everything said.
    ///
    /// # Errors
    /// Who was still busy when `limit` passed.
    pub(crate) async fn run_to_end(&mut self, limit: Duration, mut on: impl FnMut(&HostOutput)) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let done = self.outcome.is_some() && self.settled.iter().all(|s| *s);
            let wait = if done { deadline.min(tokio::time::Instant::now() + QUIET) } else { deadline };
            match self.next(wait).await {
                Some(said) => on(&said),
                None if done => return Ok(()),
                None => {
                    let busy: Vec<&str> =
                        self.names.iter().zip(&self.settled).filter(|(_, s)| !**s).map(|(n, _)| n.as_str()).collect();
                    return Err(format!("timed out after {limit:?}; outcome {:?}; busy {busy:?}", self.outcome));
                }
            }
        }
    }

    /// Stops every entity.
    pub(crate) async fn shutdown(self) -> Ran {
        self.host.shutdown().await;
        Ran { names: self.names, events: self.events, errors: self.errors, recorder: self.recorder }
    }

    fn name(&self, index: Option<usize>) -> String {
        index.and_then(|i| self.names.get(i)).cloned().unwrap_or_else(|| "peer".to_owned())
    }

    async fn record(&mut self, said: &HostOutput) {
        let (index, at) = (said.entity, said.at);
        match &said.event {
            HostEvent::Settled(settled) => {
                if let Some(s) = self.settled.get_mut(index) {
                    *s = *settled;
                }
            }
            HostEvent::LinkUp { conn, hop: Some(hop), local, .. } => {
                let Some((label, key, uri)) = self.asked.remove(&(index, *hop)) else { return };
                let peer = self.hosts.get(key.host()).copied();
                self.by_addr.insert(*local, (index, *conn));
                let mut hops = vec![(label.clone(), uri)];
                // The hops that joined it while it was being opened.
                let (joined, waiting) = std::mem::take(&mut self.joining)
                    .into_iter()
                    .partition(|(owner, k, _, _)| *owner == index && *k == key);
                self.joining = waiting;
                hops.extend(joined.into_iter().map(|(_, _, hop, uri)| (hop, uri)));
                let link = TraceLink { peer, label, hops, key: Some(key), opener: None, remote: None };
                self.links.insert((index, *conn), link);
            }
            HostEvent::LinkUp { conn, hop: None, peer, .. } => {
                let link = TraceLink {
                    peer: None,
                    label: String::new(),
                    hops: Vec::new(),
                    key: None,
                    opener: None,
                    remote: Some(*peer),
                };
                self.links.insert((index, *conn), link);
            }
            HostEvent::Output(output) => {
                self.output(at, index, output);
                if let Output::Event { session, event } = output {
                    match event {
                        Event::Outcome { outcome } if index == 0 && *session == Some(SCENARIO_SESSION) => {
                            self.outcome = Some(*outcome);
                        }
                        // The non-CPM system takes every message.
                        Event::DeliverToNonCpm { delivery, .. } => {
                            self.host.input(index, Input::NonCpmAck { delivery: *delivery, status: 200 }).await;
                        }
                        _ => {}
                    }
                    self.events.push((index, event.clone()));
                }
            }
            _ => {}
        }
    }

    /// Names connection `conn` that entity `index` accepted after its
    /// opener's end, once that is up.
    fn find_opener(&mut self, index: usize, conn: ConnId) {
        let Some(link) = self.links.get(&(index, conn)) else { return };
        let Some(opener) = link.remote.filter(|_| link.opener.is_none()).and_then(|a| self.by_addr.get(&a).copied())
        else {
            return;
        };
        let label = self.links.get(&opener).map(|l| l.label.clone()).unwrap_or_default();
        if let Some(link) = self.links.get_mut(&(index, conn)) {
            link.opener = Some(opener);
            link.peer = Some(opener.0);
            link.label = label;
        }
    }

    /// The trace of one output (as `cpm-node demo` records it).
    fn output(&mut self, at: Instant, index: usize, output: &Output) {
        let from = self.name(Some(index));
        match output {
            Output::SipTransmit { flow, bytes } => {
                let Some(link) = self.sip.iter().find(|l| l.flow == *flow && l.ends.contains(&index)) else { return };
                let peer = link.ends.iter().copied().find(|&e| e != index).unwrap_or(index);
                let (to, hop) = (self.name(Some(peer)), link.hop.clone());
                if let Err(error) = self.recorder.sip(at, index, [&from, &to, &hop], bytes) {
                    self.errors.push(format!("{from}: unparsable SIP on {hop}: {error}"));
                }
            }
            Output::Connect { hop, label, params, trigger } => {
                let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                let to = self
                    .hosts
                    .get(params.key.host())
                    .map_or_else(|| params.key.host().to_owned(), |&p| self.name(Some(p)));
                self.recorder.connect(at, &from, &to, label, *trigger, false);
                self.asked.insert((index, *hop), (label.clone(), params.key.clone(), uri));
            }
            Output::MsrpTransmit { conn, transmit } => {
                self.find_opener(index, *conn);
                let Some(link) = self.links.get(&(index, *conn)) else { return };
                let to = self.name(link.peer);
                let opener = link.opener.unwrap_or((index, *conn));
                // On a link several hops share (reuse), the frame's own hop.
                let hop = match self.links.get(&opener) {
                    Some(l) if l.hops.len() > 1 => {
                        shared_link_hop(&l.hops, &transmit.head).unwrap_or(&link.label).to_owned()
                    }
                    _ => link.label.clone(),
                };
                self.recorder.msrp(at, index, *conn, [&from, &to, &hop], transmit);
            }
            Output::CloseLink { conn } => {
                self.find_opener(index, *conn);
                if let Some(link) = self.links.get(&(index, *conn)) {
                    // The last hop on the link closes it.
                    let hop = link.hops.first().map_or_else(|| link.label.clone(), |(label, _)| label.clone());
                    self.recorder.close(at, &hop);
                }
            }
            Output::Event { event, .. } => match event {
                Event::MessageDelivered { body } => self.recorder.deliver(at, &from, body),
                Event::LinkReused { hop, trigger, params, conn } => {
                    let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                    match conn.and_then(|conn| self.links.get_mut(&(index, conn))) {
                        Some(link) => link.hops.push((hop.clone(), uri)),
                        // It joins the link once that is up.
                        None => self.joining.push((index, params.key.clone(), hop.clone(), uri)),
                    }
                    let host = params.key.host();
                    let to = self.hosts.get(host).map_or_else(|| host.to_owned(), |&p| self.name(Some(p)));
                    self.recorder.connect(at, &from, &to, hop, *trigger, true);
                }
                Event::LinkReleased { hop, conn } => {
                    if let Some(link) = self.links.get_mut(&(index, *conn)) {
                        link.hops.retain(|(label, _)| label != hop);
                    }
                    self.recorder.close(at, hop);
                }
                Event::DeliverToNonCpm { format, parts, .. } => self.recorder.non_cpm(at, &from, format, parts.len()),
                _ => {}
            },
            _ => {}
        }
    }
}

/// What a stopped [`Net`] said.
pub(crate) struct Ran {
    pub(crate) names: Vec<String>,
    /// Every entity event: which entity, what.
    pub(crate) events: Vec<(usize, Event)>,
    /// SIP this side sent that does not parse.
    pub(crate) errors: Vec<String>,
    recorder: TraceRecorder,
}

impl Ran {
    /// The trace (the simulator's schema).
    pub(crate) fn trace(&self) -> &[TraceEvent] {
        self.recorder.events()
    }

    /// The entities that delivered a message, with its length and CRC-32.
    pub(crate) fn deliveries(&self) -> HashMap<String, (usize, u32)> {
        let mut out = HashMap::new();
        for event in self.trace() {
            if let TraceEvent::Deliver { at, bytes, crc32 } = event {
                out.insert(at.clone(), (*bytes, *crc32));
            }
        }
        out
    }

    /// Asserts that every entity of `receivers` delivered `body` intact
    /// (length and CRC-32).
    pub(crate) fn check_delivered(&self, what: &str, body: &Bytes, receivers: &[&str]) {
        let delivered = self.deliveries();
        for name in receivers {
            assert_eq!(
                delivered.get(*name),
                Some(&(body.len(), crc32(body))),
                "{what}: {name} did not deliver the message intact; events {:?}",
                self.described()
            );
        }
    }

    /// How many SIP messages `method` (or status) the trace holds.
    pub(crate) fn sip_count(&self, method: &str) -> usize {
        self.trace().iter().filter(|e| matches!(e, TraceEvent::Sip { msg, .. } if msg == method)).count()
    }

    /// How many SIP messages were sent again (a loopback TCP run has none).
    pub(crate) fn retransmissions(&self) -> usize {
        self.trace().iter().filter(|e| matches!(e, TraceEvent::Sip { retransmission: true, .. })).count()
    }

    /// A's per-member delivery outcomes (IMDN), by member URI.
    pub(crate) fn deliveries_at_a(&self) -> Vec<(String, DeliveryStatus)> {
        self.events
            .iter()
            .filter_map(|(i, e)| match e {
                Event::Delivery { member, status } if *i == 0 => Some((member.clone(), *status)),
                _ => None,
            })
            .collect()
    }

    /// The events without the message bodies (for failure messages).
    pub(crate) fn described(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|(_, e)| !matches!(e, Event::Submitted { .. } | Event::MessageDelivered { .. }))
            .map(|(i, e)| format!("{}: {e:?}", self.names[*i]))
            .collect()
    }
}

/// The receivers of `scenario`: its members' entities (`B1`.., `IWF1`..).
pub(crate) fn receivers(scenario: &Scenario) -> Vec<String> {
    cpm_roles::diagram::columns(scenario).into_iter().filter(|c| c.starts_with('B') || c.starts_with("IWF")).collect()
}

/// Runs `scenario` (SIP over TCP) to its end and asserts what a clean run
/// shows: every member got the message intact (length and CRC-32), no SIP
/// message was sent twice, every hop's session was set up and torn down
/// (one INVITE, ACK and BYE per hop), A learned the message was delivered
/// and got a delivered IMDN from every member, and neither the entities nor
/// the runtime complained (`logs`).
pub(crate) async fn assert_clean_delivery(scenario: &Scenario, limit: Duration, logs: &super::logs::Logs) {
    let name = &scenario.name;
    let mut net = Net::start(scenario, HostOptions::default()).await;
    let ended = net.run_to_end(limit, |_| {}).await;
    let outcome = net.outcome;
    let ran = net.shutdown().await;
    assert!(ended.is_ok(), "{name}: {ended:?}; events {:?}; trace {:#?}", ran.described(), ran.trace());
    assert!(ran.errors.is_empty(), "{name}: {:?}", ran.errors);
    assert!(logs.lines().is_empty(), "{name}: the runtime complained: {:#?}", logs.lines());
    let receivers = receivers(scenario);
    let receivers: Vec<&str> = receivers.iter().map(String::as_str).collect();
    assert_eq!(receivers.len(), scenario.members + scenario.non_cpm, "{name}: {receivers:?}");
    ran.check_delivered(name, &scenario.body(), &receivers);
    assert_eq!(ran.retransmissions(), 0, "{name}: SIP retransmitted over TCP");
    // Every hop's session was set up and torn down: A-PF(A), PF(A)-CF, and
    // per member CF-PF(B)-B or CF-ISF-IWF.
    let hops = 2 + 2 * scenario.members + 2 * scenario.non_cpm;
    assert_eq!(ran.sip_count("INVITE"), hops, "{name}: INVITEs");
    assert_eq!(ran.sip_count("ACK"), hops, "{name}: ACKs");
    assert_eq!(ran.sip_count("BYE"), hops, "{name}: BYEs");
    assert_eq!(outcome, Some(Outcome::Delivered), "{name}: A's outcome; events {:?}", ran.described());
    let delivered = ran.deliveries_at_a().iter().filter(|(_, s)| *s == DeliveryStatus::Delivered).count();
    assert_eq!(delivered, receivers.len(), "{name}: per-member outcomes at A: {:?}", ran.described());
}
