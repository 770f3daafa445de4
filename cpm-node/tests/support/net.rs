//! A scenario on the [`Host`] over loopback, seen as the simulator sees it:
//! the trace (every SIP message by hop, every link opened or reused, every
//! MSRP frame by hop, every close, every delivery), every entity's events,
//! and A's outcome. The non-CPM system behind each IWF takes every message
//! (status 200), as in the demo.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use cpm_negotiation::imdn::DeliveryStatus;
use cpm_node::host::{now, Host, HostEvent, HostOptions, HostOutput, Topology};
use cpm_node::trace::TraceObserver;
use cpm_roles::scenario::{Scenario, SCENARIO_SESSION};
use cpm_roles::sim::{crc32, TraceEvent};
use cpm_roles::{Event, Input, Outcome, Output};

/// How long nothing may happen once every entity settled before a run
/// counts as over (the last answers cross the sockets meanwhile).
const QUIET: Duration = Duration::from_millis(200);

/// A scenario running on a [`Host`], and what it said so far.
pub(crate) struct Net {
    pub(crate) host: Host,
    /// Every entity event: which entity, what.
    pub(crate) events: Vec<(usize, Event)>,
    /// A's outcome for the scenario's message.
    pub(crate) outcome: Option<Outcome>,
    names: Vec<String>,
    observer: TraceObserver,
    inputs: Vec<(usize, Input)>,
    settled: Vec<bool>,
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
        let names = topology.names();
        let inputs = topology.take_inputs();
        let mut observer = TraceObserver::new(&topology);
        observer.recorder().submit(epoch, "A", &body);
        let host = Host::start(topology, options).await.expect("started");
        Self { host, events: Vec::new(), outcome: None, settled: vec![false; names.len()], names, observer, inputs }
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
        self.observer.events()
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
        let errors = self.observer.errors().to_vec();
        Ran { names: self.names, events: self.events, errors, observer: self.observer }
    }

    async fn record(&mut self, said: &HostOutput) {
        self.observer.record(said);
        let index = said.entity;
        match &said.event {
            HostEvent::Settled(settled) => {
                if let Some(s) = self.settled.get_mut(index) {
                    *s = *settled;
                }
            }
            HostEvent::Output(Output::Event { session, event }) => {
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
    observer: TraceObserver,
}

impl Ran {
    /// The trace (the simulator's schema).
    pub(crate) fn trace(&self) -> &[TraceEvent] {
        self.observer.events()
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
