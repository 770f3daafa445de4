//! A deterministic in-memory network for the entities (feature `sim`).
//!
//! - SIP: reliable flows between pairs of entities, each flow one hop; every
//!   message is parsed ([`Message::parse`]) and delivered whole.
//! - MSRP: [`Output::Connect`] is resolved by the host of the connect
//!   parameters to the listening entity, which gets [`Input::Accepted`]
//!   before the opener gets [`Input::Connected`]; frames are delivered in
//!   order, split into reads of at most [`Sim::set_read_split`] bytes.
//! - Time: a virtual clock that jumps to the next delivery or the earliest
//!   `poll_timeout`; every delivery takes [`Sim::set_latency`].
//! - Trace: every SIP message, connect, MSRP request/response, submit,
//!   delivery and close, recorded as outputs are drained ([`TraceEvent`]).
//!
//! Faults, all drawn from one seeded generator ([`Sim::set_seed`]; the seed
//! is printed by the tests that fail): delivery jitter that reorders
//! deliveries between different links while each stream stays in order
//! ([`Sim::set_jitter`]); SIP flows over an unreliable datagram transport
//! ([`Sim::link_sip_with`]) with loss, duplication and reordering
//! ([`Sim::set_datagram_faults`]); an MSRP link reset at any byte
//! ([`Sim::reset_link_at`]); a slow member whose links drain at a given
//! rate ([`Sim::set_slow_host`]); a member that never answers
//! ([`Sim::set_unresponsive`]); refused connections
//! ([`Sim::refuse_connections_to`]); members that refuse
//! ([`Scenario::busy`]); commands at any time ([`Sim::input_at`], e.g.
//! [`Command::End`]); and SIP/IP core proxies on any hop
//! ([`Scenario::sip_proxies`]). An entity reusing one of its links
//! ([`Event::LinkReused`]) is traced as a `connect` with `reuse: true`, and
//! frames on a shared link under the hop whose URI they carry
//! ([`Scenario::shared_pf_b`] puts several hops on one link).
//!
//! [`Scenario`] builds the figures of the seeds (001 FIG1-FIG7, 000 FIG1)
//! with any number of CPM and non-CPM members and runs them
//! ([`Scenario::run`]). An IWF's non-CPM system is simulated: it
//! acknowledges every [`Event::DeliverToNonCpm`] one latency later.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use crate::scenario::{Scenario, ScenarioError};
use sip_lite::sip::Message;

use crate::{Command, ConnId, Entity, Event, FlowId, Input, Output, SessionId, SimulationIds, SipTransport};

mod trace;
pub use trace::{crc32, trigger_name, TraceEvent};

/// What the simulator delivers to an entity at a given time.
enum Scheduled {
    Input(Input),
    /// [`Sim::end_sessions_at`].
    EndSessions,
    /// The entity resumed reading a link: what arrived meanwhile is read.
    Release(ConnId),
}

struct SimConn {
    ends: [usize; 2],
    label: String,
    /// What the opener connected to (a reuse names the same key).
    key: cpm_negotiation::LinkKey,
    /// The hops on the link now (more than one when reused), with the first
    /// URI of each hop's peer path: frames are traced under the hop whose
    /// URI is their To-Path or From-Path.
    hops: Vec<(String, String)>,
    /// Bytes written on the link so far (both directions).
    written: u64,
    /// Reset the link when `written` reaches this.
    reset_at: Option<u64>,
}

/// A stream whose deliveries keep their order (one direction of an MSRP
/// link, or of a reliable SIP flow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Channel {
    Msrp(ConnId, usize),
    Sip(usize, FlowId),
}

impl crate::scenario::Network for Sim {
    fn add(&mut self, host: &str, entity: Box<dyn Entity>) -> usize {
        Self::add(self, host, entity)
    }
    fn link_sip(&mut self, a: usize, b: usize, flow: FlowId, hop: &str) {
        Self::link_sip(self, a, b, flow, hop);
    }
    fn link_sip_with(&mut self, a: usize, b: usize, flow: FlowId, hop: &str, transport: SipTransport) {
        Self::link_sip_with(self, a, b, flow, hop, transport);
    }
    fn input(&mut self, index: usize, input: Input) {
        Self::input(self, index, input);
    }
}

impl Scenario {
    /// Builds the network in a new simulator and submits the message at `epoch`.
    ///
    /// # Errors
    /// [`ScenarioError::NoMembers`] for zero members.
    pub fn build(&self, epoch: Instant) -> Result<Sim, ScenarioError> {
        let mut sim = Sim::new(epoch);
        self.populate(&mut sim, epoch, self.body())?;
        Ok(sim)
    }

    /// Builds and runs the scenario to the end (at most 100 000 steps).
    ///
    /// # Errors
    /// See [`Scenario::build`].
    pub fn run(&self, epoch: Instant) -> Result<Sim, ScenarioError> {
        let mut sim = self.build(epoch)?;
        sim.run(100_000);
        Ok(sim)
    }
}

/// The simulator: entities, SIP flows, MSRP links, a virtual clock, a trace.
pub struct Sim {
    now: Instant,
    latency: Duration,
    read_split: usize,
    entities: Vec<Box<dyn Entity>>,
    hosts: Vec<String>,
    sip: HashMap<(usize, FlowId), (usize, String)>,
    seen_sip: HashSet<(usize, Bytes)>,
    open_frames: HashMap<(ConnId, usize), usize>,
    closed: HashSet<ConnId>,
    dropped: u64,
    capture: Option<Vec<(String, String, Bytes)>>,
    /// Whether MSRP frames are in the trace ([`Sim::set_frame_trace`]).
    frame_trace: bool,
    refused: HashSet<String>,
    refused_connects: u64,
    conns: HashMap<ConnId, SimConn>,
    next_conn: u64,
    queue: BTreeMap<(Instant, u64), (usize, Scheduled)>,
    /// Each entity's next timer, as it said after its last input.
    timers: Vec<Option<Instant>>,
    seq: u64,
    trace: Vec<TraceEvent>,
    times: Vec<Instant>,
    events: Vec<(String, Event)>,
    /// The session of each of `events`.
    event_sessions: Vec<Option<SessionId>>,
    errors: Vec<String>,
    seed: u64,
    rng: SimulationIds,
    jitter: Duration,
    datagram_loss: u32,
    datagram_duplicate: u32,
    unreliable: HashSet<(usize, FlowId)>,
    fifo: HashMap<Channel, Instant>,
    busy: HashMap<Channel, Instant>,
    /// Links an entity stopped reading ([`Output::PauseReading`]), and what
    /// arrived on them meanwhile, in order.
    paused: HashSet<(ConnId, usize)>,
    held: HashMap<(ConnId, usize), VecDeque<Input>>,
    resets: Vec<(String, u64)>,
    resets_done: u64,
    lost_datagrams: u64,
    slow: HashMap<String, u64>,
    silent: HashSet<String>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("entities", &self.hosts).field("trace", &self.trace.len()).finish_non_exhaustive()
    }
}

impl Sim {
    /// An empty network whose clock starts at `epoch` (the caller's).
    #[must_use]
    pub fn new(epoch: Instant) -> Self {
        Self {
            now: epoch,
            latency: Duration::from_millis(1),
            read_split: 1500,
            entities: Vec::new(),
            hosts: Vec::new(),
            sip: HashMap::new(),
            seen_sip: HashSet::new(),
            open_frames: HashMap::new(),
            closed: HashSet::new(),
            dropped: 0,
            capture: None,
            frame_trace: true,
            refused: HashSet::new(),
            refused_connects: 0,
            conns: HashMap::new(),
            next_conn: 1,
            queue: BTreeMap::new(),
            timers: Vec::new(),
            seq: 0,
            trace: Vec::new(),
            times: Vec::new(),
            events: Vec::new(),
            event_sessions: Vec::new(),
            errors: Vec::new(),
            seed: 0,
            rng: SimulationIds::new(0),
            jitter: Duration::ZERO,
            datagram_loss: 0,
            datagram_duplicate: 0,
            unreliable: HashSet::new(),
            fifo: HashMap::new(),
            busy: HashMap::new(),
            paused: HashSet::new(),
            held: HashMap::new(),
            resets: Vec::new(),
            resets_done: 0,
            lost_datagrams: 0,
            slow: HashMap::new(),
            silent: HashSet::new(),
        }
    }

    /// Seeds the fault generator (jitter, datagram loss and duplication).
    pub fn set_seed(&mut self, seed: u64) -> &mut Self {
        self.seed = seed;
        self.rng = SimulationIds::new(seed);
        self
    }

    /// The seed of the fault generator (print it when a run fails).
    #[must_use]
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// Adds a random delay of up to `jitter` to every delivery; each stream
    /// (an MSRP link direction, a reliable SIP flow) stays in order, so only
    /// deliveries on different streams (and datagrams) are reordered.
    pub fn set_jitter(&mut self, jitter: Duration) -> &mut Self {
        self.jitter = jitter;
        self
    }

    /// Datagram SIP flows ([`Sim::link_sip_with`]) lose `loss` and duplicate
    /// `duplicate` of every 1000 datagrams (with jitter, they also reorder).
    pub fn set_datagram_faults(&mut self, loss: u32, duplicate: u32) -> &mut Self {
        self.datagram_loss = loss.min(1000);
        self.datagram_duplicate = duplicate.min(1000);
        self
    }

    /// Resets the MSRP link named `label` (`L3/B2` ..) once `byte` bytes
    /// crossed it (both directions counted): the bytes after that are lost
    /// and both ends get [`Input::MsrpClosed`].
    pub fn reset_link_at(&mut self, label: &str, byte: u64) -> &mut Self {
        self.resets.push((label.to_owned(), byte));
        self
    }

    /// Links of the entity at `host` drain at `bytes_per_ms` (a slow member):
    /// each MSRP write to or from it takes its length over that rate more.
    pub fn set_slow_host(&mut self, host: &str, bytes_per_ms: u64) -> &mut Self {
        self.slow.insert(host.to_owned(), bytes_per_ms.max(1));
        self
    }

    /// SIP sent to the entity at `host` is lost (a member that never
    /// answers: its caller's INVITE transaction times out, RFC 3261 s.17.1.1.2
    /// Timer B).
    pub fn set_unresponsive(&mut self, host: &str) -> &mut Self {
        self.silent.insert(host.to_owned());
        self
    }

    /// MSRP links reset so far ([`Sim::reset_link_at`]).
    #[must_use]
    pub const fn resets(&self) -> u64 {
        self.resets_done
    }

    /// SIP datagrams lost so far ([`Sim::set_datagram_faults`]).
    #[must_use]
    pub const fn lost_datagrams(&self) -> u64 {
        self.lost_datagrams
    }

    /// The entities' names, in the order they were added.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.entities.iter().map(|e| e.name().to_owned()).collect()
    }

    /// The counters and levels of entity `index` ([`Entity::stats`]).
    #[must_use]
    pub fn stats(&self, index: usize) -> crate::Stats {
        self.entities.get(index).map(|e| e.stats()).unwrap_or_default()
    }

    /// Whether entity `index` is idle with no timer armed.
    #[must_use]
    pub fn is_entity_quiet(&self, index: usize) -> bool {
        self.entities.get(index).is_some_and(|e| e.is_idle() && e.poll_timeout().is_none())
    }

    /// One-way latency of every delivery (default 1 ms).
    pub fn set_latency(&mut self, latency: Duration) -> &mut Self {
        self.latency = latency;
        self
    }

    /// Largest read an MSRP receiver gets (default 1500 bytes; at least 1).
    pub fn set_read_split(&mut self, bytes: usize) -> &mut Self {
        self.read_split = bytes.max(1);
        self
    }

    /// Whether every MSRP frame is recorded in the trace (on by default;
    /// off, the trace keeps SIP, links, submits and deliveries: what a
    /// benchmark of the entities needs without the recorder's own cost).
    pub fn set_frame_trace(&mut self, on: bool) -> &mut Self {
        self.frame_trace = on;
        self
    }

    /// Keeps every MSRP body piece written (sender, hop, the `Bytes` itself),
    /// to check that relays share buffers instead of copying
    /// ([`Sim::captured_bodies`]).
    pub fn set_capture(&mut self, on: bool) -> &mut Self {
        self.capture = on.then(Vec::new);
        self
    }

    /// The captured body pieces (see [`Sim::set_capture`]).
    #[must_use]
    pub fn captured_bodies(&self) -> &[(String, String, Bytes)] {
        self.capture.as_deref().unwrap_or_default()
    }

    /// Refuses every MSRP connection to `host` (a fault: the opener gets
    /// [`Input::ConnectFailed`]).
    pub fn refuse_connections_to(&mut self, host: &str) -> &mut Self {
        self.refused.insert(host.to_owned());
        self
    }

    /// MSRP connects refused so far (see [`Sim::refuse_connections_to`]).
    #[must_use]
    pub const fn refused_connects(&self) -> u64 {
        self.refused_connects
    }

    /// Adds an entity reachable (for MSRP connects) at `host`; returns its index.
    pub fn add(&mut self, host: &str, entity: Box<dyn Entity>) -> usize {
        self.entities.push(entity);
        self.hosts.push(host.to_owned());
        self.entities.len() - 1
    }

    /// A reliable SIP flow `flow` between entities `a` and `b` (the same
    /// number at both ends), named `hop` in the trace.
    pub fn link_sip(&mut self, a: usize, b: usize, flow: FlowId, hop: &str) {
        self.link_sip_with(a, b, flow, hop, SipTransport::Reliable);
    }

    /// A SIP flow as [`Sim::link_sip`], over `transport`: a datagram flow
    /// ([`SipTransport::Unreliable`]) suffers [`Sim::set_datagram_faults`]
    /// and keeps no order. The entities MUST be configured with the same
    /// transport for `flow` ([`crate::EntityConfig::set_flow_transport`]).
    pub fn link_sip_with(&mut self, a: usize, b: usize, flow: FlowId, hop: &str, transport: SipTransport) {
        self.sip.insert((a, flow), (b, hop.to_owned()));
        self.sip.insert((b, flow), (a, hop.to_owned()));
        if transport == SipTransport::Unreliable {
            self.unreliable.insert((a, flow));
            self.unreliable.insert((b, flow));
        }
    }

    /// Schedules `input` for entity `index` now; a [`Command::SendMessage`]
    /// is recorded as the `submit` of the trace.
    pub fn input(&mut self, index: usize, input: Input) {
        if let Input::Command(Command::SendMessage { body, .. }) = &input {
            let at = self.name(index);
            self.push_trace(TraceEvent::Submit { at, bytes: body.len(), crc32: crc32(body) });
        }
        self.schedule(index, input, Duration::ZERO);
    }

    /// Schedules `input` for entity `index` after `delay` (a command later
    /// in the run).
    pub fn input_at(&mut self, index: usize, input: Input, delay: Duration) {
        self.schedule(index, input, delay);
    }

    /// After `delay`, ends every session entity `index` is running then
    /// ([`Command::End`] for each; nothing when it runs none yet).
    pub fn end_sessions_at(&mut self, index: usize, delay: Duration) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), (index, Scheduled::EndSessions));
    }

    fn name(&self, index: usize) -> String {
        self.entities.get(index).map_or_else(String::new, |e| e.name().to_owned())
    }

    fn schedule(&mut self, index: usize, input: Input, delay: Duration) {
        self.seq += 1;
        self.queue.insert((self.now + delay, self.seq), (index, Scheduled::Input(input)));
    }

    /// A random extra delay of up to the jitter.
    fn jitter_delay(&mut self) -> Duration {
        let micros = u64::try_from(self.jitter.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.rng.next_u64() % (micros + 1))
    }

    /// Delivers `input` one latency (plus jitter) after it left, after
    /// everything sent before on `channel` (a stream keeps its order). It
    /// leaves once the channel finished sending what came before and took
    /// `serialize` to send (a slow link drains at its rate).
    fn schedule_on(&mut self, channel: Channel, index: usize, input: Input, serialize: Duration) {
        let mut departure = self.now;
        if serialize > Duration::ZERO {
            let start = self.busy.get(&channel).map_or(self.now, |&b| b.max(self.now));
            departure = start + serialize;
            self.busy.insert(channel, departure);
        }
        let mut at = departure + self.latency + self.jitter_delay();
        if let Some(&last) = self.fifo.get(&channel) {
            at = at.max(last);
        }
        self.fifo.insert(channel, at);
        self.seq += 1;
        self.queue.insert((at, self.seq), (index, Scheduled::Input(input)));
    }

    /// A 1-in-1000 draw.
    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.next_u64() % 1000 < u64::from(per_mille)
    }

    /// The extra time `bytes` take on a link with a slow end.
    fn slow_delay(&self, ends: [usize; 2], bytes: usize) -> Duration {
        let rate = ends.iter().filter_map(|&e| self.hosts.get(e).and_then(|h| self.slow.get(h))).min();
        rate.map_or(Duration::ZERO, |&rate| Duration::from_micros(bytes as u64 * 1000 / rate))
    }

    /// The trace so far.
    #[must_use]
    pub fn trace(&self) -> &[TraceEvent] {
        &self.trace
    }

    /// The virtual time of each [`Sim::trace`] entry (when it was sent).
    #[must_use]
    pub fn trace_times(&self) -> &[Instant] {
        &self.times
    }

    /// The configured one-way latency.
    #[must_use]
    pub const fn latency(&self) -> Duration {
        self.latency
    }

    fn push_trace(&mut self, event: TraceEvent) {
        self.trace.push(event);
        self.times.push(self.now);
    }

    /// Every entity event so far, with the entity's name.
    #[must_use]
    pub fn events(&self) -> &[(String, Event)] {
        &self.events
    }

    /// Every entity event so far, with the entity's name and the session it
    /// belongs to.
    pub fn session_events(&self) -> impl Iterator<Item = (&str, Option<SessionId>, &Event)> + '_ {
        self.events.iter().zip(&self.event_sessions).map(|((at, event), session)| (at.as_str(), *session, event))
    }

    /// The entities where a whole message was reassembled (the `deliver`
    /// trace events), sorted by name.
    #[must_use]
    pub fn delivered_at(&self) -> Vec<String> {
        let mut at: Vec<String> = self
            .trace
            .iter()
            .filter_map(|e| match e {
                TraceEvent::Deliver { at, .. } => Some(at.clone()),
                _ => None,
            })
            .collect();
        at.sort();
        at
    }

    /// The per-member outcomes (IMDN delivery notifications) that entity
    /// `at` surfaced, in arrival order.
    #[must_use]
    pub fn deliveries_at(&self, at: &str) -> Vec<(String, cpm_negotiation::imdn::DeliveryStatus)> {
        self.events
            .iter()
            .filter_map(|(name, e)| match e {
                Event::Delivery { member, status } if name == at => Some((member.clone(), *status)),
                _ => None,
            })
            .collect()
    }

    /// Usage errors and undeliverable outputs seen (empty in a good run).
    #[must_use]
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// MSRP writes lost because they crossed the peer's close (normal at
    /// teardown when a session ends while media is in flight).
    #[must_use]
    pub const fn dropped_writes(&self) -> u64 {
        self.dropped
    }

    /// The virtual time.
    #[must_use]
    pub const fn now(&self) -> Instant {
        self.now
    }

    /// Whether nothing is left anywhere: no delivery in flight, no link, and
    /// every entity idle with no timer.
    #[must_use]
    pub fn is_quiet(&self) -> bool {
        self.queue.is_empty()
            && self.conns.is_empty()
            && self.entities.iter().all(|e| e.is_idle() && e.poll_timeout().is_none())
    }

    /// Runs until nothing is scheduled and no timer is armed, or `max_steps`
    /// inputs were handled. Returns the number of steps.
    pub fn run(&mut self, max_steps: usize) -> usize {
        let mut steps = 0;
        // An entity's next timer changes only when it handles an input.
        self.timers = self.entities.iter().map(|e| e.poll_timeout()).collect();
        while steps < max_steps {
            let next_delivery = self.queue.keys().next().map(|&(at, _)| at);
            let next_timer = self.timers.iter().flatten().min().copied();
            let at = match (next_delivery, next_timer) {
                (None, None) => break,
                (Some(d), Some(t)) => d.min(t),
                (Some(d), None) => d,
                (None, Some(t)) => t,
            };
            self.now = self.now.max(at);
            steps += 1;
            if next_delivery.is_some_and(|d| d <= self.now) {
                match self.queue.pop_first() {
                    Some((_, (index, Scheduled::Input(input)))) => self.deliver(index, input),
                    Some((_, (index, Scheduled::EndSessions))) => {
                        for session in self.entities[index].sessions() {
                            self.deliver(index, Input::Command(Command::End { session }));
                        }
                    }
                    Some((_, (index, Scheduled::Release(conn)))) => {
                        while !self.paused.contains(&(conn, index)) {
                            let Some(input) = self.held.get_mut(&(conn, index)).and_then(VecDeque::pop_front) else {
                                break;
                            };
                            self.handle_now(index, input);
                        }
                        if self.held.get(&(conn, index)).is_some_and(VecDeque::is_empty) {
                            self.held.remove(&(conn, index));
                        }
                    }
                    None => {}
                }
            } else {
                for index in 0..self.entities.len() {
                    if self.timers.get(index).copied().flatten().is_some_and(|t| t <= self.now) {
                        self.deliver(index, Input::Timeout);
                    }
                }
            }
        }
        steps
    }

    fn deliver(&mut self, index: usize, input: Input) {
        // A link the entity does not read keeps what arrives, in order.
        if let Input::MsrpReceived { conn, .. } | Input::MsrpClosed { conn } = &input {
            let key = (*conn, index);
            if self.paused.contains(&key) || self.held.contains_key(&key) {
                self.held.entry(key).or_default().push_back(input);
                return;
            }
        }
        self.handle_now(index, input);
    }

    fn handle_now(&mut self, index: usize, input: Input) {
        let now = self.now;
        if let Err(error) = self.entities[index].handle(now, input) {
            self.errors.push(format!("{}: {error}", self.name(index)));
        }
        while let Some(output) = self.entities[index].poll_output() {
            self.output(index, output);
        }
        if let Some(timer) = self.timers.get_mut(index) {
            *timer = self.entities[index].poll_timeout();
        }
    }

    fn output(&mut self, index: usize, output: Output) {
        let from = self.name(index);
        match output {
            Output::SipTransmit { flow, bytes } => {
                let Some((peer, hop)) = self.sip.get(&(index, flow)).cloned() else {
                    self.errors.push(format!("{from}: no SIP flow {flow}"));
                    return;
                };
                let retransmission = !self.seen_sip.insert((index, bytes.clone()));
                match Message::parse(bytes) {
                    Ok(message) => {
                        let msg = message.method().map_or_else(
                            || message.status_code().map_or_else(String::new, |c| c.to_string()),
                            str::to_owned,
                        );
                        let to = self.name(peer);
                        self.push_trace(TraceEvent::Sip { from, to, msg, hop, retransmission });
                        if self.hosts.get(peer).is_some_and(|h| self.silent.contains(h)) {
                            self.lost_datagrams += 1;
                            return;
                        }
                        if self.unreliable.contains(&(index, flow)) {
                            // A datagram: lost, duplicated or delayed on its own.
                            if self.chance(self.datagram_loss) {
                                self.lost_datagrams += 1;
                                return;
                            }
                            let copies = if self.chance(self.datagram_duplicate) { 2 } else { 1 };
                            for _ in 0..copies {
                                let delay = self.latency + self.jitter_delay();
                                self.schedule(peer, Input::SipReceived { flow, message: message.clone() }, delay);
                            }
                        } else {
                            self.schedule_on(
                                Channel::Sip(index, flow),
                                peer,
                                Input::SipReceived { flow, message },
                                Duration::ZERO,
                            );
                        }
                    }
                    Err(error) => self.errors.push(format!("{from}: unparsable SIP: {error}")),
                }
            }
            Output::Connect { hop, label, params, trigger } => {
                let peer = self.hosts.iter().position(|h| *h == params.key.host());
                let Some(peer) = peer.filter(|_| !self.refused.contains(params.key.host())) else {
                    // Connection refused (or nobody there): the opener learns it one latency later.
                    self.refused_connects += 1;
                    self.schedule(index, Input::ConnectFailed { hop }, self.latency);
                    return;
                };
                let conn = ConnId::new(self.next_conn);
                self.next_conn += 1;
                let reset_at = self.resets.iter().find(|(l, _)| *l == label).map(|(_, at)| *at);
                let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                self.conns.insert(
                    conn,
                    SimConn {
                        ends: [index, peer],
                        label: label.clone(),
                        key: params.key,
                        hops: vec![(label.clone(), uri)],
                        written: 0,
                        reset_at,
                    },
                );
                let to = self.name(peer);
                self.push_trace(TraceEvent::Connect {
                    from,
                    to,
                    hop: label,
                    trigger: trigger_name(trigger),
                    reuse: false,
                });
                self.schedule_on(Channel::Msrp(conn, index), peer, Input::Accepted { conn }, Duration::ZERO);
                self.schedule_on(Channel::Msrp(conn, peer), index, Input::Connected { hop, conn }, Duration::ZERO);
            }
            Output::MsrpTransmit { conn, transmit } => {
                let Some(c) = self.conns.get(&conn) else {
                    // Bytes crossing the peer's close are lost, as on TCP.
                    if self.closed.contains(&conn) {
                        self.dropped += 1;
                    } else {
                        self.errors.push(format!("{from}: write on unknown {conn}"));
                    }
                    return;
                };
                let peer = if c.ends[0] == index { c.ends[1] } else { c.ends[0] };
                let named = self.frame_trace || self.capture.is_some();
                let hop = match named {
                    false => String::new(),
                    true if c.hops.len() > 1 => shared_link_hop(&c.hops, &transmit.head).unwrap_or(&c.label).to_owned(),
                    true => c.label.clone(),
                };
                let (ends, written, reset_at) = (c.ends, c.written, c.reset_at);
                let key = (conn, index);
                if self.frame_trace && !transmit.head.is_empty() {
                    let line = transmit.head.split(|&b| b == b'\r').next().unwrap_or_default();
                    let text = String::from_utf8_lossy(line);
                    let msg = text.split(' ').nth(2).unwrap_or_default().to_owned();
                    let to = self.name(peer);
                    self.push_trace(TraceEvent::Msrp { from, to, hop: hop.clone(), msg, bytes: 0 });
                    self.open_frames.insert(key, self.trace.len() - 1);
                }
                // A chunk may take several transmits (head, then body pieces):
                // the request's body length is summed until its end-line.
                if let Some(&at) = self.open_frames.get(&key) {
                    if let Some(TraceEvent::Msrp { msg, bytes, .. }) = self.trace.get_mut(at) {
                        if msg.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
                            *bytes += transmit.body.len();
                        }
                    }
                    if !transmit.end_line.is_empty() {
                        self.open_frames.remove(&key);
                    }
                }
                if let Some(capture) = self.capture.as_mut() {
                    if !transmit.body.is_empty() {
                        capture.push((self.entities[index].name().to_owned(), hop, transmit.body.clone()));
                    }
                }
                let total = (transmit.head.len() + transmit.body.len() + transmit.end_line.len()) as u64;
                // A reset cuts the stream at its byte: what comes after is lost.
                let mut budget = reset_at.map_or(u64::MAX, |at| at.saturating_sub(written));
                let reset = reset_at.is_some_and(|at| written + total >= at);
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.written += total;
                }
                let extra = self.slow_delay(ends, usize::try_from(total).unwrap_or(usize::MAX));
                for part in [transmit.head, transmit.body, transmit.end_line] {
                    let mut part = part;
                    while !part.is_empty() && budget > 0 {
                        let len = part.len().min(self.read_split).min(usize::try_from(budget).unwrap_or(usize::MAX));
                        budget -= len as u64;
                        let data = part.split_to(len);
                        self.schedule_on(Channel::Msrp(conn, index), peer, Input::MsrpReceived { conn, data }, extra);
                    }
                }
                // The writer learns its bytes were written when they depart
                // (a slow link drains at its rate; no network buffer beyond).
                let departs = self.busy.get(&Channel::Msrp(conn, index)).map_or(self.now, |&b| b.max(self.now));
                let bytes = usize::try_from(total).unwrap_or(usize::MAX);
                self.schedule(index, Input::MsrpWritten { conn, bytes }, departs - self.now);
                if reset {
                    self.resets_done += 1;
                    self.conns.remove(&conn);
                    self.closed.insert(conn);
                    self.schedule_on(Channel::Msrp(conn, index), peer, Input::MsrpClosed { conn }, extra);
                    self.schedule_on(Channel::Msrp(conn, peer), index, Input::MsrpClosed { conn }, Duration::ZERO);
                }
            }
            Output::CloseLink { conn } => {
                let Some(c) = self.conns.remove(&conn) else { return };
                self.closed.insert(conn);
                let peer = if c.ends[0] == index { c.ends[1] } else { c.ends[0] };
                // The last hop on the link closes it.
                let hop = c.hops.first().map_or(c.label, |(label, _)| label.clone());
                self.push_trace(TraceEvent::Close { hop });
                self.schedule_on(Channel::Msrp(conn, index), peer, Input::MsrpClosed { conn }, Duration::ZERO);
            }
            Output::Event { session, event } => {
                match &event {
                    Event::LinkReused { hop, trigger, params, .. } => {
                        // The opener reuses the link it opened to the same key.
                        let found = self.conns.iter_mut().find(|(_, c)| c.ends[0] == index && c.key == params.key);
                        let to = found.map(|(_, c)| {
                            let uri = params.path.first().map(ToString::to_string).unwrap_or_default();
                            c.hops.push((hop.clone(), uri));
                            c.ends[1]
                        });
                        let to = to.map_or_else(|| params.key.host().to_owned(), |peer| self.name(peer));
                        let (hop, trigger) = (hop.clone(), trigger_name(*trigger));
                        self.push_trace(TraceEvent::Connect { from: from.clone(), to, hop, trigger, reuse: true });
                    }
                    Event::LinkReleased { hop, conn } => {
                        if let Some(c) = self.conns.get_mut(conn) {
                            c.hops.retain(|(label, _)| label != hop);
                        }
                        self.push_trace(TraceEvent::Close { hop: hop.clone() });
                    }
                    Event::MessageDelivered { body, .. } => {
                        self.push_trace(TraceEvent::Deliver {
                            at: from.clone(),
                            bytes: body.len(),
                            crc32: crc32(body),
                        });
                    }
                    Event::DeliverToNonCpm { delivery, format, parts, .. } => {
                        let format = (*format).to_owned();
                        self.push_trace(TraceEvent::NonCpm { at: from.clone(), format, parts: parts.len() });
                        // The non-CPM system acknowledges after one latency.
                        self.schedule(index, Input::NonCpmAck { delivery: *delivery, status: 200 }, self.latency);
                    }
                    _ => {}
                }
                self.events.push((from, event));
                self.event_sessions.push(session);
            }
            Output::PauseReading { conn } => {
                self.paused.insert((conn, index));
            }
            Output::ResumeReading { conn } => {
                self.paused.remove(&(conn, index));
                self.seq += 1;
                self.queue.insert((self.now, self.seq), (index, Scheduled::Release(conn)));
            }
        }
    }
}

/// The hop of a frame on a link several hops share (RFC 4975 s.5.4 reuse):
/// of `hops` (each a hop label with the first URI of its peer's path), the
/// one whose URI is the frame's To-Path (a frame toward that peer) or
/// From-Path (a frame from it). `None` when neither names one.
#[must_use]
pub fn shared_link_hop<'a>(hops: &'a [(String, String)], head: &[u8]) -> Option<&'a str> {
    let text = String::from_utf8_lossy(head);
    for name in ["To-Path: ", "From-Path: "] {
        let uri = text.split("\r\n").find_map(|line| line.strip_prefix(name)).and_then(|v| v.split(' ').next());
        if let Some((label, _)) = uri.and_then(|uri| hops.iter().find(|(_, peer)| peer == uri)) {
            return Some(label);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_names() {
        for name in ["001-fig1", "001-fig4", "001-fig7"] {
            let scenario = Scenario::figure(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((scenario.members, scenario.non_cpm, scenario.size), (1, 0, 5000));
        }
        let scenario = Scenario::figure("000-fig1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((scenario.members, scenario.non_cpm), (0, 1));
        assert_eq!(Scenario::figure("001-fig8"), Err(ScenarioError::UnknownName("001-fig8".into())));
    }
}
